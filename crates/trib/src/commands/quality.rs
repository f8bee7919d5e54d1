//! `trib quality` (checks over whole products) and `trib slo` (attainment, budgets and
//! certification, with a small chart of the last days).

use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat, QualityArgs, SloArgs};
use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::sync::Arc;
use trib_quality::checks::{CheckRun, Status};
use trib_quality::trust::{Standing, Trust};
use trib_spec::{Contract, Project};

/// The products a command looks at: the one named, or every product with a table.
fn selected<'a>(project: &'a Project, product: Option<&str>) -> Result<Vec<&'a Contract>> {
    match product {
        Some(p) => {
            let name: trib_spec::ProductName = p.parse().map_err(|e: trib_spec::ProductNameError| {
                anyhow::anyhow!("{e}; hint: {}", trib_spec::ProductNameError::HINT)
            })?;
            match project.latest(&name) {
                Some(c) => Ok(vec![c]),
                None => bail!("no product `{name}` in this project; hint: `trib check` lists the products"),
            }
        }
        None => Ok(project
            .contracts()
            .filter(|c| c.layer != trib_spec::Layer::View)
            .collect()),
    }
}

fn load(g: &GlobalArgs) -> Result<(Arc<Project>, trib_lake::Lake)> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    if project.diagnostics.has_errors() {
        eprint!("{}", crate::render::snippets(&project.diagnostics, &project.sources));
        bail!("the project has errors; hint: fix what `trib check` reports first");
    }
    let lake = super::lake(&project)?;
    Ok((Arc::new(project), lake))
}

pub fn run(g: &GlobalArgs, args: &QualityArgs) -> Result<Outcome> {
    let (project, lake) = load(g)?;
    let contracts: Vec<Contract> = selected(&project, args.product.as_deref())?
        .into_iter()
        .filter(|c| !c.quality.is_empty() || args.product.is_some())
        .cloned()
        .collect();
    let runs = super::runtime()?.block_on(async {
        let checker =
            trib_quality::Checker::open(lake.clone(), project.clone(), Arc::new(trib_core::SystemClock)).await?;
        let mut runs = Vec::new();
        for c in &contracts {
            if trib_lake::open_existing(&lake, c, trib_lake::TableKind::Data)
                .await?
                .is_none()
            {
                eprintln!("{}: no table yet (nothing ingested or run)", c.product.value);
                continue;
            }
            runs.push(checker.check_product(c).await?);
        }
        anyhow::Ok(runs)
    })?;
    let problems = runs.iter().any(|r| r.results.iter().any(|x| x.is_error()));
    match args.format {
        OutputFormat::Json => {
            let doc: Vec<serde_json::Value> = runs.iter().map(|r| run_json(r, args.failures)).collect();
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => {
            for r in &runs {
                print!("{}", render_run(r, args.failures));
            }
            let (mut pass, mut fail) = (0, 0);
            for r in &runs {
                for x in &r.results {
                    if x.status == Status::Pass {
                        pass += 1;
                    } else {
                        fail += 1;
                    }
                }
            }
            eprintln!(
                "{} products, {pass} checks passed, {fail} did not; results in `_trib.quality_results`",
                runs.len()
            );
        }
    }
    Ok(if problems { Outcome::Problems } else { Outcome::Ok })
}

/// A check run as lines: one per check, failing ones with a sample.
pub fn render_run(r: &CheckRun, only_failures: bool) -> String {
    let mut out = String::new();
    let rows = r.results.iter().map(|x| x.rows).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "{} v{} ({}{} rows)",
        r.product,
        r.major,
        r.version.map(|v| format!("table version {v}, ")).unwrap_or_default(),
        rows
    );
    for x in &r.results {
        if only_failures && x.status == Status::Pass {
            continue;
        }
        let mark = match (x.status, x.severity) {
            (Status::Pass, _) => "ok  ",
            (Status::Fail, trib_spec::CheckSeverity::Warn) => "warn",
            (Status::Fail, _) => "FAIL",
            (Status::Error, _) => "ERR ",
        };
        let _ = writeln!(out, "  {mark} {:<40} {}", x.check, x.message);
        if let Some(s) = &x.sample {
            let s: String = s.chars().take(300).collect();
            let _ = writeln!(out, "       sample: {s}");
        }
    }
    out
}

fn run_json(r: &CheckRun, only_failures: bool) -> serde_json::Value {
    serde_json::json!({
        "product": r.product,
        "major": r.major,
        "table_version": r.version,
        "results": r.results.iter().filter(|x| !only_failures || x.status != Status::Pass).map(|x| serde_json::json!({
            "check": x.check,
            "kind": x.kind,
            "severity": x.severity.as_str(),
            "status": x.status.as_str(),
            "rows": x.rows,
            "failing": x.failing,
            "observed": x.observed.filter(|v| v.is_finite()),
            "message": x.message,
            "sample": x.sample.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()),
        })).collect::<Vec<_>>(),
    })
}

pub fn slo(g: &GlobalArgs, args: &SloArgs) -> Result<Outcome> {
    let (project, lake) = load(g)?;
    let contracts: Vec<Contract> = selected(&project, args.product.as_deref())?
        .into_iter()
        .cloned()
        .collect();
    let (standings, evaluated) = super::runtime()?.block_on(async {
        let trust = Trust::open(lake, project.clone(), Arc::new(trib_core::SystemClock)).await?;
        let mut evaluated = Vec::new();
        if args.evaluate {
            for c in &contracts {
                evaluated.push(trust.evaluate_product(c, true).await?);
            }
        }
        let mut standings = Vec::new();
        for c in &contracts {
            standings.push(trust.standing(c).await?);
        }
        anyhow::Ok((standings, evaluated))
    })?;
    for e in &evaluated {
        if let Some(t) = &e.transition {
            eprintln!(
                "{} v{}: {} → {}: {}",
                e.product,
                e.major,
                t.from.map_or("new", |f| f.as_str()),
                t.to,
                t.reason
            );
        }
        for s in &e.opened {
            eprintln!("{} v{}: incident opened for {s}", e.product, e.major);
        }
        for s in &e.resolved {
            eprintln!("{} v{}: incident resolved for {s}", e.product, e.major);
        }
        for d in &e.deliveries {
            match (&d.error, d.delivered) {
                (_, true) => eprintln!("  alert {} sent to `{}`", d.alert.kind.as_str(), d.alert.team),
                (Some(err), false) => eprintln!("  alert {} not delivered: {err}", d.alert.kind.as_str()),
                (None, false) => {}
            }
        }
    }
    match args.format {
        OutputFormat::Json => {
            let doc: Vec<serde_json::Value> = standings.iter().map(standing_json).collect();
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => {
            for s in &standings {
                print!("{}", render_standing(s));
            }
        }
    }
    let breached = standings
        .iter()
        .any(|s| s.slos.iter().any(|x| x.latest.as_ref().is_some_and(|l| !l.0)));
    Ok(if breached { Outcome::Problems } else { Outcome::Ok })
}

fn time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A day's share of met measurements as one block character; `·` for no measurement.
fn bar(v: Option<f64>) -> char {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    match v {
        None => '·',
        Some(p) => BLOCKS[((p / 100.0) * 7.0).round().clamp(0.0, 7.0) as usize],
    }
}

pub fn render_standing(s: &Standing) -> String {
    let mut out = String::new();
    let state = match s.state {
        Some((st, since)) => format!("{st} since {}", time(since)),
        None => "not evaluated yet (`trib slo --evaluate`, or `trib serve` does it)".into(),
    };
    let _ = writeln!(out, "{} v{}: {state}", s.product, s.major);
    if s.slos.is_empty() {
        let _ = writeln!(
            out,
            "  no SLOs declared: add `sla` (freshness, completeness, validity, availability) or checks to be certified"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  {:<13} {:>7}  {:<44} {:>7} {:>7} {:>7} {:>7}  last {} days",
        "slo",
        "target",
        "latest",
        "1d",
        "7d",
        s.budget_window,
        "budget",
        trib_quality::trust::CHART_DAYS
    );
    for x in &s.slos {
        let latest = match &x.latest {
            Some((met, detail, _)) => format!("{} {detail}", if *met { "ok  " } else { "MISS" }),
            None => "-".into(),
        };
        let latest: String = latest.chars().take(44).collect();
        let pct = |label: &str| {
            x.windows
                .iter()
                .find(|(l, _)| *l == label)
                .and_then(|(_, a)| a.percent())
                .map_or("-".to_string(), |p| format!("{p:.1}%"))
        };
        let budget = x
            .windows
            .iter()
            .find(|(l, _)| *l == "budget")
            .filter(|(_, a)| a.total > 0.0)
            .map_or("-".to_string(), |(_, a)| {
                format!("{:.0}%", 100.0 * a.budget_left().max(0.0))
            });
        let chart: String = x.daily.iter().map(|d| bar(*d)).collect();
        let _ = writeln!(
            out,
            "  {:<13} {:>6}%  {latest:<44} {:>7} {:>7} {:>7} {:>7}  {chart}",
            x.slo.as_str(),
            x.target,
            pct("1d"),
            pct("7d"),
            pct("budget"),
            budget
        );
    }
    if let Some(t) = s.transitions.last() {
        let _ = writeln!(out, "  last change {}: {}", time(t.at_ms), t.reason);
    }
    out
}

fn standing_json(s: &Standing) -> serde_json::Value {
    serde_json::json!({
        "product": s.product,
        "major": s.major,
        "certification": s.state.map(|(st, since)| serde_json::json!({ "state": st.as_str(), "since": time(since) })),
        "slos": s.slos.iter().map(|x| serde_json::json!({
            "slo": x.slo.as_str(),
            "target": x.target,
            "latest": x.latest.as_ref().map(|(met, detail, value)| serde_json::json!({
                "met": met, "detail": detail, "value": value.filter(|v| v.is_finite()),
            })),
            "windows": x.windows.iter().map(|(label, a)| serde_json::json!({
                "window": if *label == "budget" { s.budget_window.clone() } else { label.to_string() }, "attainment": a.percent(), "good": a.good, "total": a.total,
                "budget_left": a.budget_left(),
            })).collect::<Vec<_>>(),
            "daily": x.daily,
        })).collect::<Vec<_>>(),
        "transitions": s.transitions.iter().map(|t| serde_json::json!({
            "from": t.from.map(|f| f.as_str()),
            "to": t.to.as_str(),
            "at": time(t.at_ms),
            "reason": t.reason,
            "evidence": serde_json::from_str::<serde_json::Value>(&t.evidence).ok(),
        })).collect::<Vec<_>>(),
    })
}
