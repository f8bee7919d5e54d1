use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;
use trib_engine::{Engine, Outcome as RunOutcome};

/// `trib run` (catch up) and `trib replay` (rebuild from the whole inputs).
pub fn run(g: &GlobalArgs, select: &[String], format: OutputFormat, replay: bool) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    if project.diagnostics.has_errors() {
        eprint!("{}", crate::render::snippets(&project.diagnostics, &project.sources));
        anyhow::bail!("the project has errors; hint: fix what `trib check` reports, then run");
    }
    let lake = super::lake(&project)?;
    let engine = Engine::new(lake, &project);
    let selected = engine.dag().select(select)?;
    let order = engine.dag().order(&selected);
    let bar = if std::io::stderr().is_terminal() && format == OutputFormat::Text {
        let b = ProgressBar::new(order.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut runs = Vec::new();
    let mut failed: Vec<trib_engine::Node> = Vec::new();
    super::runtime()?.block_on(async {
        for node in &order {
            // As dbt does: a model whose input failed is skipped, not run on stale data.
            if let Some(f) = engine.dag().inputs(node).iter().find(|i| failed.contains(i)) {
                bar.inc(1);
                bar.suspend(|| eprintln!("{:<28} skipped: input `{}` failed", format!("{}@v{}", node.0, node.1), f.0));
                failed.push(node.clone());
                runs.push(serde_json::json!({
                    "product": node.0, "major": node.1, "seconds": 0.0,
                    "outcome": {"status": "skipped", "failed_input": f.0},
                }));
                continue;
            }
            bar.set_message(format!("{}@v{}", node.0, node.1));
            let started = Instant::now();
            let result = if replay { engine.replay(node).await } else { engine.run(node).await };
            let seconds = started.elapsed().as_secs_f64();
            bar.inc(1);
            match result {
                Ok(r) => {
                    if format == OutputFormat::Text {
                        let what = match &r.outcome {
                            RunOutcome::UpToDate => "up to date".to_string(),
                            RunOutcome::View => "view (computed at query time)".to_string(),
                            RunOutcome::Committed { version, rows, read } => {
                                format!("{rows} rows from {read} input rows, table version {version}")
                            }
                        };
                        bar.suspend(|| eprintln!("{:<28} {what} ({seconds:.2}s)", format!("{}@v{}", r.product, r.major)));
                    }
                    runs.push(serde_json::json!({
                        "product": r.product, "major": r.major, "seconds": seconds,
                        "outcome": match r.outcome {
                            RunOutcome::UpToDate => serde_json::json!({"status": "up_to_date"}),
                            RunOutcome::View => serde_json::json!({"status": "view"}),
                            RunOutcome::Committed { version, rows, read } =>
                                serde_json::json!({"status": "committed", "version": version, "rows": rows, "read": read}),
                        },
                    }));
                }
                Err(e) => {
                    failed.push(node.clone());
                    bar.suspend(|| eprintln!("error: {}@v{}: {e}", node.0, node.1));
                    runs.push(serde_json::json!({
                        "product": node.0, "major": node.1, "seconds": seconds,
                        "outcome": {"status": "failed", "error": e.to_string()},
                    }));
                }
            }
        }
    });
    bar.finish_and_clear();
    if format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    }
    Ok(if failed.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
