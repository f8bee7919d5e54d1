//! Scenario folders (`tests/scenarios/<name>/`): a small project (`products/`,
//! `models/`, optional `trib.toml`), the input events in arrival order
//! (`input/NN-<product>.<ndjson|debezium>`, one file a batch) and the expected contents of
//! products (`expected/<product>.csv`: a header, then one row a line, values as SQL
//! casts them to text, empty for NULL, in any order). `expected/<product>.dead_letters.csv`
//! holds chosen columns of the product's dead-letter table.
//!
//! Every scenario runs five ways, and each must end with the expected tables:
//! - batches: each input file ingested in its turn, every model run after it;
//! - restart: the same, but each model's first commit is stopped after it read its
//!   input (as a process killed between read and commit would leave it), and a new
//!   engine takes over, as a restarted process would;
//! - one run: each input file ingested in its turn, the models run once at the end;
//! - one batch: each product's inputs ingested at once (in arrival order), models run once;
//! - replay: after the batches, every model rebuilt from bronze version 0.
//!
//! A model's watermark moves per input commit (as Spark's moves per micro-batch), so
//! when every event arrives in one commit, none of them is late: a scenario about
//! model-level lateness says what the one-batch way ends with in `expected-one-batch/`.

use arrow::array::{Array, AsArray, RecordBatch};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use trib_engine::Engine;
use trib_ingest::dead_letter::Provenance;
use trib_ingest::{Format, Ingestor};
use trib_lake::{Lake, ProductTable, TableKind};
use trib_spec::{Contract, Project};

fn scenarios_dir() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("tests/scenarios")
}

/// One input batch: which product, in which format, the bytes.
struct Batch {
    product: String,
    format: Format,
    body: String,
}

struct Scenario {
    name: String,
    dir: PathBuf,
    batches: Vec<Batch>,
    /// Product → (header, rows as sorted lines).
    expected: BTreeMap<String, (String, Vec<String>)>,
    /// What the one-batch way ends with, where it differs.
    expected_one_batch: Option<BTreeMap<String, (String, Vec<String>)>>,
}

fn expectations(name: &str, dir: &Path) -> BTreeMap<String, (String, Vec<String>)> {
    let mut expected = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{name}: {}: {e}", dir.display())) {
        let p = e.expect("entry").path();
        let product = p.file_stem().expect("stem").to_string_lossy().to_string();
        let text = std::fs::read_to_string(&p).expect("expected");
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines
            .next()
            .unwrap_or_else(|| panic!("{name}: `{}` has no header", p.display()));
        let mut rows: Vec<String> = lines.map(str::to_string).collect();
        rows.sort();
        expected.insert(product, (header.to_string(), rows));
    }
    expected
}

fn load(dir: &Path) -> Scenario {
    let name = dir.file_name().expect("name").to_string_lossy().to_string();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir.join("input"))
        .unwrap_or_else(|e| panic!("{name}: input/: {e}"))
        .map(|e| e.expect("entry").path())
        .collect();
    inputs.sort();
    let batches = inputs
        .iter()
        .map(|p| {
            let file = p.file_name().expect("file").to_string_lossy().to_string();
            // `NN-domain.product.ext`
            let (_, rest) = file
                .split_once('-')
                .unwrap_or_else(|| panic!("{name}: `{file}` is not `NN-<product>.<format>`"));
            let (product, ext) = rest.rsplit_once('.').expect("extension");
            let format = match ext {
                "ndjson" => Format::Ndjson,
                "debezium" => Format::Debezium,
                other => panic!("{name}: unknown input format `{other}` in `{file}`"),
            };
            Batch {
                product: product.to_string(),
                format,
                body: std::fs::read_to_string(p).expect("input"),
            }
        })
        .collect();
    let expected = expectations(&name, &dir.join("expected"));
    let one = dir.join("expected-one-batch");
    let expected_one_batch = one.exists().then(|| expectations(&name, &one));
    Scenario {
        name,
        dir: dir.to_path_buf(),
        batches,
        expected,
        expected_one_batch,
    }
}

/// A fresh copy of the scenario's project in a temporary directory.
fn fresh(s: &Scenario) -> (tempfile::TempDir, Project, Lake) {
    let tmp = tempfile::tempdir().expect("tmp");
    for part in ["products", "models"] {
        copy_tree(&s.dir.join(part), &tmp.path().join(part));
    }
    let settings = s.dir.join("trib.toml");
    if settings.exists() {
        std::fs::copy(settings, tmp.path().join("trib.toml")).expect("copy");
    } else {
        std::fs::write(
            tmp.path().join("trib.toml"),
            format!("[project]\nname = \"{}\"\n", s.name),
        )
        .expect("write");
    }
    let project = trib_spec::load_project(tmp.path()).expect("project");
    assert!(
        !project.diagnostics.has_errors(),
        "{}: {:?}",
        s.name,
        project.diagnostics
    );
    let lake = Lake::new(".trib/lake", tmp.path()).expect("lake");
    (tmp, project, lake)
}

fn copy_tree(from: &Path, to: &Path) {
    if !from.exists() {
        return;
    }
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

fn contract<'p>(project: &'p Project, product: &str) -> &'p Contract {
    project
        .contracts()
        .find(|c| c.product.value.to_string() == product)
        .unwrap_or_else(|| panic!("no product `{product}` in the scenario"))
}

async fn ingest(lake: &Lake, project: &Project, product: &str, format: Format, body: &str) {
    let mut ing = Ingestor::open(lake, contract(project, product))
        .await
        .expect("ingestor");
    let p = Provenance {
        received_at_micros: 0,
        source: "scenario".into(),
        batch_id: "b".into(),
    };
    ing.ingest(format, body.as_bytes(), &p, None).await.expect("ingest");
}

/// Every model, in dependency order.
fn models(engine: &Engine) -> Vec<trib_engine::dag::Node> {
    let dag = engine.dag();
    let all = dag.select(&[]).expect("every product");
    dag.order(&all)
}

async fn run_models(engine: &Engine) -> Result<(), String> {
    for node in models(engine) {
        engine.run(&node).await.map_err(|e| format!("{}: {e}", node.0))?;
    }
    Ok(())
}

/// A product's rows as sorted text lines, columns in the expected header's order.
async fn table(lake: &Lake, project: &Project, product: &str, header: &str) -> Vec<String> {
    let (product, kind) = match product.strip_suffix(".dead_letters") {
        Some(p) => (p, TableKind::DeadLetters),
        None => (product, TableKind::Data),
    };
    let t = ProductTable::open_or_create(lake, contract(project, product), kind)
        .await
        .expect("table");
    let columns: Vec<String> = header
        .split(',')
        .map(|c| format!("CAST(\"{}\" AS VARCHAR)", c.trim()))
        .collect();
    let batches: Vec<RecordBatch> = t
        .query(&format!("SELECT {} FROM t", columns.join(", ")))
        .await
        .expect("query");
    let mut out = Vec::new();
    for b in &batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).expect("utf8"))
            .collect();
        for i in 0..b.num_rows() {
            let row: Vec<String> = cols
                .iter()
                .map(|c| {
                    let s = c.as_string::<i32>();
                    if s.is_valid(i) {
                        s.value(i).to_string()
                    } else {
                        String::new()
                    }
                })
                .collect();
            out.push(row.join(","));
        }
    }
    out.sort();
    out
}

async fn check(s: &Scenario, how: &str, lake: &Lake, project: &Project) {
    let expected = match (how, &s.expected_one_batch) {
        ("in one batch", Some(e)) => e,
        _ => &s.expected,
    };
    for (product, (header, want)) in expected {
        let got = table(lake, project, product, header).await;
        assert_eq!(
            &got, want,
            "scenario `{}`, {how}: `{product}` differs from expected/{product}.csv",
            s.name
        );
    }
}

/// Stops the first commit of each model: the run read its input and fails before its
/// commit, as a process killed there would.
#[derive(Default)]
struct KillOnce(Mutex<BTreeSet<String>>);

#[async_trait::async_trait]
impl trib_engine::CommitGate for KillOnce {
    async fn inspect(&self, contract: &Contract, _rows: &RecordBatch) -> Option<String> {
        let mut killed = self.0.lock().expect("lock");
        killed
            .insert(contract.product.value.to_string())
            .then(|| "killed between read and commit".to_string())
    }
}

async fn run_scenario(s: &Scenario) {
    // Batches, a run after each.
    let (_a, project, lake) = fresh(s);
    let engine = Engine::new(lake.clone(), &project);
    for b in &s.batches {
        ingest(&lake, &project, &b.product, b.format, &b.body).await;
        run_models(&engine).await.unwrap_or_else(|e| panic!("{}: {e}", s.name));
    }
    check(s, "in batches", &lake, &project).await;

    // Replay: every model rebuilt from bronze version 0.
    for node in models(&engine) {
        engine
            .replay(&node)
            .await
            .unwrap_or_else(|e| panic!("{}: replay {}: {e}", s.name, node.0));
    }
    check(s, "replayed", &lake, &project).await;

    // Killed between read and commit, then restarted.
    let (_b, project, lake) = fresh(s);
    let gate = std::sync::Arc::new(KillOnce::default());
    let mut killed = 0;
    for b in &s.batches {
        ingest(&lake, &project, &b.product, b.format, &b.body).await;
        let dying = Engine::new(lake.clone(), &project).with_gate(gate.clone());
        if run_models(&dying).await.is_err() {
            killed += 1;
            // The restarted process: nothing of the failed run was committed.
            run_models(&Engine::new(lake.clone(), &project))
                .await
                .unwrap_or_else(|e| panic!("{}: after the restart: {e}", s.name));
        }
    }
    assert!(killed > 0, "{}: no run was stopped before its commit", s.name);
    check(s, "killed and restarted", &lake, &project).await;

    // The same commits, one run at the end.
    let (_d, project, lake) = fresh(s);
    for b in &s.batches {
        ingest(&lake, &project, &b.product, b.format, &b.body).await;
    }
    run_models(&Engine::new(lake.clone(), &project))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
    check(s, "in one run", &lake, &project).await;

    // One batch per product, in arrival order; one run.
    let (_c, project, lake) = fresh(s);
    let mut order: Vec<(&str, Format)> = Vec::new();
    for b in &s.batches {
        if !order.iter().any(|(p, _)| *p == b.product) {
            order.push((&b.product, b.format));
        }
    }
    for (product, format) in order {
        let body: String = s
            .batches
            .iter()
            .filter(|b| b.product == product)
            .map(|b| {
                let mut t = b.body.clone();
                if !t.ends_with('\n') {
                    t.push('\n');
                }
                t
            })
            .collect();
        ingest(&lake, &project, product, format, &body).await;
    }
    run_models(&Engine::new(lake.clone(), &project))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
    check(s, "in one batch", &lake, &project).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("tests/scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "{dirs:?}");
    for dir in dirs {
        let s = load(&dir);
        eprintln!("scenario {}", s.name);
        run_scenario(&s).await;
    }
}
