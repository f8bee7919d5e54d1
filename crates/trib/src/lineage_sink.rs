//! Where model runs' OpenLineage events go, from `[lineage]` in `trib.toml`: appended to
//! a file, POSTed to an endpoint, or both.

use std::io::Write;
use std::sync::{Arc, Mutex};
use trib_engine::openlineage::LineageSink;

struct Sinks {
    file: Option<Mutex<std::fs::File>>,
    url: Option<(reqwest::Client, String)>,
}

impl LineageSink for Sinks {
    fn emit(&self, event: serde_json::Value) {
        if let Some(f) = &self.file {
            let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(e) = writeln!(f, "{event}") {
                tracing::warn!(error = %e, "OpenLineage event not written");
            }
        }
        if let Some((client, url)) = &self.url
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let request = client.post(url).json(&event);
            let url = url.clone();
            handle.spawn(async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(url = %url, status = %r.status(), "OpenLineage endpoint refused an event"),
                    Err(e) => tracing::warn!(url = %url, error = %e, "OpenLineage event not sent"),
                }
            });
        }
    }
}

/// The engine with the project's lineage sinks, when any is set.
pub fn engine(engine: trib_engine::Engine, project: &trib_spec::Project) -> anyhow::Result<trib_engine::Engine> {
    let settings = &project.settings.lineage;
    let file = match &settings.openlineage_file {
        Some(rel) => {
            let path = project.dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| anyhow::anyhow!("cannot open `{}` for OpenLineage events: {e}", path.display()))?;
            Some(Mutex::new(f))
        }
        None => None,
    };
    let url = settings.openlineage_url.clone().map(|u| {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        (client, u)
    });
    if file.is_none() && url.is_none() {
        return Ok(engine);
    }
    let namespace = format!("trib://{}", project.settings.project.name);
    Ok(engine.with_lineage(Arc::new(Sinks { file, url }), namespace))
}
