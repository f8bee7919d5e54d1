use crate::Outcome;
use crate::cli::{GlobalArgs, MaintainArgs, OutputFormat};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;
use trib_core::SystemClock;
use trib_lake::{Lake, MaintainOptions, MaintenanceReport, ProductTable, Rewrite, Step, TableKind, ZOrder};
use trib_spec::{Contract, Project};

/// One table to maintain.
struct Target<'a> {
    contract: &'a Contract,
    kind: TableKind,
    table: ProductTable,
}

impl Target<'_> {
    fn label(&self) -> String {
        let c = self.contract;
        match self.kind {
            TableKind::Data => format!("{} v{}", c.product.value, c.major()),
            TableKind::DeadLetters => format!("{} v{} (dead letters)", c.product.value, c.major()),
            TableKind::Tombstones => format!("{} v{} (tombstones)", c.product.value, c.major()),
        }
    }
}

pub fn run(g: &GlobalArgs, args: &MaintainArgs) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let contracts = selected(&project, args.product.as_deref())?;
    let lake = super::lake(&project)?;
    let started = Instant::now();
    let done = super::runtime()?.block_on(async {
        let targets = existing_tables(&lake, &contracts).await?;
        maintain_all(targets, args.dry_run).await
    })?;
    print_reports(
        &lake,
        args.product.as_deref(),
        &done,
        args.dry_run,
        started.elapsed(),
        args.format,
    );
    Ok(Outcome::Ok)
}

/// Every major version of the named product, or every product.
fn selected<'a>(project: &'a Project, product: Option<&str>) -> Result<Vec<&'a Contract>> {
    let Some(product) = product else {
        return Ok(project.contracts().collect());
    };
    let name: trib_spec::ProductName = product.parse().map_err(|e: trib_spec::ProductNameError| {
        anyhow::anyhow!("{e}; hint: {}", trib_spec::ProductNameError::HINT)
    })?;
    let found: Vec<&Contract> = project.contracts().filter(|c| c.product.value == name).collect();
    if found.is_empty() {
        if project
            .files
            .iter()
            .any(|f| f.root.as_ref().and_then(|r| r.get("product")).and_then(|n| n.as_str()) == Some(product))
        {
            bail!("the contract of `{name}` has errors; hint: run `trib check`");
        }
        bail!("no product `{name}` in this project; hint: `trib check` lists the products");
    }
    Ok(found)
}

/// The data, dead-letter and tombstone tables that exist; tables nothing was written to
/// are left alone (and not created).
async fn existing_tables<'a>(lake: &Lake, contracts: &[&'a Contract]) -> Result<Vec<Target<'a>>> {
    let mut targets = Vec::new();
    for &contract in contracts {
        for kind in [TableKind::Data, TableKind::DeadLetters, TableKind::Tombstones] {
            if let Some(table) = trib_lake::open_existing(lake, contract, kind).await? {
                targets.push(Target { contract, kind, table });
            }
        }
    }
    Ok(targets)
}

async fn maintain_all(targets: Vec<Target<'_>>, dry_run: bool) -> Result<Vec<(String, Target<'_>, MaintenanceReport)>> {
    let steps = Step::ALL.len() as u64;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(targets.len() as u64 * steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} steps, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut done = Vec::with_capacity(targets.len());
    for (i, mut target) in targets.into_iter().enumerate() {
        let label = target.label();
        let base = i as u64 * steps;
        let mut progress = |step: Step| {
            let n = Step::ALL.iter().position(|s| *s == step).unwrap_or_default() as u64;
            bar.set_position(base + n);
            bar.set_message(format!("{label}: {}", doing(step, dry_run)));
        };
        let cluster_by: Vec<String> = match target.kind {
            TableKind::Data => target.contract.cluster_by.iter().map(|c| c.value.clone()).collect(),
            TableKind::DeadLetters | TableKind::Tombstones => Vec::new(),
        };
        let retention = match target.kind {
            TableKind::Data => trib_lake::Retention::of(target.contract),
            TableKind::DeadLetters | TableKind::Tombstones => None,
        };
        let opts = MaintainOptions {
            dry_run,
            clock: &SystemClock,
            progress: &mut progress,
            retention,
        };
        let report = trib_lake::maintain(&mut target.table, &cluster_by, opts).await;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e).with_context(|| format!("cannot maintain {label}"));
            }
        };
        bar.set_position(base + steps);
        done.push((label, target, report));
    }
    bar.finish_and_clear();
    Ok(done)
}

fn doing(step: Step, dry_run: bool) -> &'static str {
    match (step, dry_run) {
        (Step::Expire, false) => "deleting rows past the retention",
        (Step::Expire, true) => "counting rows past the retention",
        (Step::Compact, false) => "compacting small files",
        (Step::Compact, true) => "planning compaction",
        (Step::ZOrder, false) => "z-ordering by cluster_by",
        (Step::ZOrder, true) => "planning z-order",
        (Step::Checkpoint, _) => "writing a checkpoint",
        (Step::CleanLog, _) => "cleaning the expired log",
        (Step::Vacuum, false) => "vacuuming removed files",
        (Step::Vacuum, true) => "listing files vacuum would delete",
    }
}

fn print_reports(
    lake: &Lake,
    product: Option<&str>,
    done: &[(String, Target<'_>, MaintenanceReport)],
    dry_run: bool,
    elapsed: std::time::Duration,
    format: OutputFormat,
) {
    match format {
        OutputFormat::Json => {
            let tables: Vec<serde_json::Value> = done.iter().map(|(_, t, r)| table_json(t, r)).collect();
            let doc = serde_json::json!({
                "dry_run": dry_run,
                "tables": tables,
                "seconds": elapsed.as_secs_f64(),
            });
            println!("{doc}");
        }
        OutputFormat::Text => {
            // Not an error: a product nothing was written to yet has nothing to maintain,
            // and scheduled runs should not fail before the first write.
            match (done.is_empty(), product) {
                (true, Some(p)) => {
                    return eprintln!("`{p}` has no table under `{}` yet; nothing to maintain", lake.root());
                }
                (true, None) => return eprintln!("no product tables under `{}` yet; nothing to maintain", lake.root()),
                _ => {}
            }
            for (label, _, r) in done {
                eprintln!("{label}: {}", summary(r));
            }
            let verb = if dry_run { "planned" } else { "maintained" };
            eprintln!(
                "{verb} {} table{} in {:.2}s{}",
                done.len(),
                if done.len() == 1 { "" } else { "s" },
                elapsed.as_secs_f64(),
                if dry_run { "; nothing was changed" } else { "" }
            );
        }
    }
}

fn rewrite_json(r: &Rewrite) -> serde_json::Value {
    serde_json::json!({
        "files_removed": r.files_removed,
        "files_added": r.files_added,
        "partitions": r.partitions,
    })
}

fn table_json(t: &Target<'_>, r: &MaintenanceReport) -> serde_json::Value {
    let z_order = match &r.z_order {
        ZOrder::NotClustered => serde_json::json!({ "status": "not_clustered" }),
        ZOrder::TooFewFiles => serde_json::json!({ "status": "too_few_files" }),
        ZOrder::UpToDate { columns } => serde_json::json!({ "status": "up_to_date", "columns": columns }),
        ZOrder::Rewritten { columns, rewrite } => {
            let mut doc = rewrite_json(rewrite);
            doc["status"] = "rewritten".into();
            doc["columns"] = serde_json::json!(columns);
            doc
        }
    };
    serde_json::json!({
        "product": t.contract.product.value.to_string(),
        "major": t.contract.major(),
        "table": match t.kind {
            TableKind::Data => "data",
            TableKind::DeadLetters => "dead_letters",
            TableKind::Tombstones => "tombstones",
        },
        "expired": r.expired.map(|e| serde_json::json!({
            "rows": e.rows,
            "before": chrono::DateTime::from_timestamp_micros(e.before_micros).map(|t| t.to_rfc3339()),
        })),
        "version_before": r.version_before,
        "version_after": r.version_after,
        "rows_before": r.rows_before,
        "rows_after": r.rows_after,
        "compaction": rewrite_json(&r.compaction),
        "z_order": z_order,
        "checkpoint_version": r.checkpoint_version,
        "log_files_cleaned": r.log_files_cleaned,
        "vacuum": {
            "files": r.vacuumed.len(),
            "paths": r.vacuumed,
            "retention_seconds": r.vacuum_retention.as_secs(),
        },
    })
}

/// One line per table: what each step did (or, in a dry run, would do).
fn summary(r: &MaintenanceReport) -> String {
    let mut parts = Vec::new();
    if let Some(e) = r.expired
        && e.rows > 0
    {
        let before = chrono::DateTime::from_timestamp_micros(e.before_micros).map_or_else(
            || e.before_micros.to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        );
        parts.push(format!(
            "{} {} rows older than {before} (retention)",
            if r.dry_run { "would expire" } else { "expired" },
            e.rows
        ));
    }
    let c = &r.compaction;
    parts.push(if c.files_removed == 0 {
        "no small files to compact".to_string()
    } else if r.dry_run {
        format!("would compact {} files in {} partitions", c.files_removed, c.partitions)
    } else {
        format!(
            "compacted {} files into {} in {} partitions",
            c.files_removed, c.files_added, c.partitions
        )
    });
    match &r.z_order {
        ZOrder::NotClustered => {}
        ZOrder::TooFewFiles => parts.push("too few files to z-order".into()),
        ZOrder::UpToDate { columns } => parts.push(format!("already z-ordered by {}", columns.join(", "))),
        ZOrder::Rewritten { columns, rewrite } => parts.push(if r.dry_run {
            format!(
                "would z-order {} files by {}",
                rewrite.files_removed,
                columns.join(", ")
            )
        } else {
            format!(
                "z-ordered {} files into {} by {}",
                rewrite.files_removed,
                rewrite.files_added,
                columns.join(", ")
            )
        }),
    }
    if let Some(v) = r.checkpoint_version {
        parts.push(format!("checkpoint at version {v}"));
    }
    if let Some(n) = r.log_files_cleaned {
        parts.push(format!("{n} expired log files removed"));
    }
    parts.push(format!(
        "{} {} files removed more than {} ago",
        if r.dry_run { "would vacuum" } else { "vacuumed" },
        r.vacuumed.len(),
        days(r.vacuum_retention)
    ));
    let versions = match (r.version_before, r.version_after) {
        (Some(a), Some(b)) if a != b => format!("; version {a} → {b}"),
        (_, Some(b)) => format!("; version {b}"),
        _ => String::new(),
    };
    format!("{}{versions}", parts.join(", "))
}

fn days(d: std::time::Duration) -> String {
    let hours = d.as_secs() / 3600;
    if hours.is_multiple_of(24) {
        format!("{}d", hours / 24)
    } else {
        format!("{hours}h")
    }
}
