//! Checks, SLOs, certification and alerts over real Delta tables in a temporary
//! project, with time injected and a real HTTP receiver for the webhooks.

mod checks;
mod trust;

use std::sync::Arc;
pub use std::sync::atomic::Ordering;
pub use trib_core::Clock;
use trib_ingest::dead_letter::Provenance;
use trib_ingest::{Format, Ingestor};
use trib_lake::Lake;
use trib_spec::{Contract, Project};

/// A clock the test moves.
pub struct ManualClock;

impl ManualClock {
    pub fn at(ms: i64) -> Arc<trib_core::ManualClock> {
        Arc::new(trib_core::ManualClock::at(ms))
    }
}

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

/// A project of the given files (path → text) in a temporary directory.
pub fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Arc<Project>, Lake) {
    let tmp = tempfile::tempdir().expect("tmp");
    for (rel, text) in files {
        let p = tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    }
    let project = trib_spec::load_project(tmp.path()).expect("project");
    assert!(!project.diagnostics.has_errors(), "{:?}", project.diagnostics);
    let lake = Lake::new(".trib/lake", tmp.path()).expect("lake");
    (tmp, Arc::new(project), lake)
}

pub fn contract<'a>(project: &'a Project, name: &str) -> &'a Contract {
    project
        .contracts()
        .find(|c| c.product.value.to_string() == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Ingests NDJSON lines into a stream product; returns (accepted, dead-lettered).
pub async fn ingest(lake: &Lake, c: &Contract, lines: &[String]) -> (u64, u64) {
    let mut ing = Ingestor::open(lake, c).await.expect("ingestor");
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let p = Provenance {
        received_at_micros: 0,
        source: "test".into(),
        batch_id: uuid_like(),
    };
    let r = ing
        .ingest(Format::Ndjson, body.as_bytes(), &p, None)
        .await
        .expect("ingest");
    (r.accepted, r.dead_lettered)
}

fn uuid_like() -> String {
    format!("{:?}", std::time::SystemTime::now())
}

pub fn iso(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
