use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat};
use anyhow::Result;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::Instant;
use trib_engine::{Engine, Node, Outcome as RunOutcome};

/// `trib run` (catch up) and `trib replay` (rebuild from the whole inputs). Up to
/// `threads` models run at once, each as soon as the selected models it reads are done.
pub fn run(g: &GlobalArgs, select: &[String], format: OutputFormat, replay: bool, threads: usize) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    if project.diagnostics.has_errors() {
        eprint!("{}", crate::render::snippets(&project.diagnostics, &project.sources));
        anyhow::bail!("the project has errors; hint: fix what `trib check` reports, then run");
    }
    let lake = super::lake(&project)?;
    let rt = super::runtime()?;
    // Each commit's rows go through the contract's checks first; blocking ones stop it.
    let checker = rt.block_on(trib_quality::Checker::open(
        lake.clone(),
        std::sync::Arc::new(project.clone()),
        std::sync::Arc::new(trib_core::SystemClock),
    ))?;
    let gate = std::sync::Arc::new(trib_quality::Gate::new(std::sync::Arc::new(checker)));
    let engine = crate::lineage_sink::engine(Engine::new(lake, &project).with_gate(gate.clone()), &project)?;
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
    let mut runs: Vec<(usize, serde_json::Value)> = Vec::new();
    let mut failed: HashSet<Node> = HashSet::new();
    let mut done: HashSet<Node> = HashSet::new();
    let planned: HashSet<&Node> = order.iter().collect();
    rt.block_on(async {
        let mut started = vec![false; order.len()];
        let mut running = FuturesUnordered::new();
        loop {
            // Start what is ready, in dependency order, up to `threads` at once.
            for (i, node) in order.iter().enumerate() {
                if started[i] || running.len() >= threads.max(1) {
                    continue;
                }
                let inputs = engine.dag().inputs(node);
                if inputs.iter().any(|n| planned.contains(n) && !done.contains(n)) {
                    continue;
                }
                started[i] = true;
                // As dbt does: a model whose input failed is skipped, not run on stale data.
                if let Some(f) = inputs.iter().find(|n| failed.contains(*n)) {
                    bar.inc(1);
                    bar.suspend(|| eprintln!("{:<28} skipped: input `{}` failed", label(node), f.0));
                    failed.insert(node.clone());
                    done.insert(node.clone());
                    runs.push((i, serde_json::json!({
                        "product": node.0, "major": node.1, "seconds": 0.0,
                        "outcome": {"status": "skipped", "failed_input": f.0},
                    })));
                    continue;
                }
                let engine = &engine;
                running.push(async move {
                    let t = Instant::now();
                    let result = if replay { engine.replay(node).await } else { engine.run(node).await };
                    (i, node, t.elapsed().as_secs_f64(), result)
                });
            }
            let names: Vec<String> = order
                .iter()
                .enumerate()
                .filter(|(i, n)| started[*i] && !done.contains(*n))
                .map(|(_, n)| label(n))
                .collect();
            bar.set_message(names.join(", "));
            let Some((i, node, seconds, result)) = running.next().await else {
                if started.iter().all(|s| *s) {
                    break;
                }
                continue;
            };
            bar.inc(1);
            done.insert(node.clone());
            match result {
                Ok(r) => {
                    if format == OutputFormat::Text {
                        let what = match &r.outcome {
                            RunOutcome::UpToDate => "up to date".to_string(),
                            RunOutcome::View => "view (computed at query time)".to_string(),
                            RunOutcome::Committed { version, rows, read, late, duplicates } => {
                                let mut notes = String::new();
                                if *duplicates > 0 {
                                    notes.push_str(&format!(", {duplicates} duplicates dropped"));
                                }
                                if *late > 0 {
                                    notes.push_str(&format!(", {late} late"));
                                }
                                format!("{rows} rows from {read} input rows{notes}, table version {version}")
                            }
                        };
                        bar.suspend(|| eprintln!("{:<28} {what} ({seconds:.2}s)", label(node)));
                    }
                    runs.push((i, serde_json::json!({
                        "product": r.product, "major": r.major, "seconds": seconds,
                        "outcome": match r.outcome {
                            RunOutcome::UpToDate => serde_json::json!({"status": "up_to_date"}),
                            RunOutcome::View => serde_json::json!({"status": "view"}),
                            RunOutcome::Committed { version, rows, read, late, duplicates } =>
                                serde_json::json!({"status": "committed", "version": version, "rows": rows, "read": read, "late": late, "duplicates": duplicates}),
                        },
                    })));
                }
                Err(e) => {
                    failed.insert(node.clone());
                    bar.suspend(|| eprintln!("error: {}: {e}", label(node)));
                    runs.push((i, serde_json::json!({
                        "product": node.0, "major": node.1, "seconds": seconds,
                        "outcome": {"status": "failed", "error": e.to_string()},
                    })));
                }
            }
        }
    });
    bar.finish_and_clear();
    // The checks' results of the runs' commits, written before the process ends.
    if let Err(e) = rt.block_on(gate.finish()) {
        eprintln!("warning: the check results of this run could not be written: {e}");
    }
    if format == OutputFormat::Json {
        // In dependency order, whatever order the runs finished in.
        runs.sort_by_key(|(i, _)| *i);
        let runs: Vec<serde_json::Value> = runs.into_iter().map(|(_, r)| r).collect();
        println!("{}", serde_json::to_string_pretty(&runs)?);
    }
    Ok(if failed.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

fn label(node: &Node) -> String {
    format!("{}@v{}", node.0, node.1)
}
