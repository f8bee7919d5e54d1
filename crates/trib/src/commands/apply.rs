//! `trib apply`: deploys the contracts. After `trib check`'s checks, each product
//! version is compared with what the catalog holds: new, changed (and how: breaking
//! changes within a major version are refused, with the consumers and downstream
//! products they would hurt) or unchanged. The plan is printed, confirmed on a
//! terminal, then tables are created or evolved and the versions registered.

use crate::Outcome;
use crate::cli::{ApplyArgs, GlobalArgs, OutputFormat};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, IsTerminal, Write};
use trib_catalog::{Catalog, ProductRecord};
use trib_spec::Contract;
use trib_spec::diff::Impact;

/// What applying does to one product version.
#[derive(Debug)]
pub(super) enum Step {
    Add,
    Change {
        from: String,
        changes: Vec<trib_spec::diff::Change>,
    },
    Unchanged,
    /// Breaking changes within one major version: not applied.
    Refused {
        from: String,
        reason: String,
        consumers: Vec<String>,
        downstream: Vec<String>,
    },
}

/// The whole plan: product versions to register, and lifecycle changes to versions
/// already in the catalog.
pub(super) struct Plan<'p> {
    pub steps: Vec<(ProductRecord, &'p Contract, Step)>,
    pub lifecycle: Vec<super::lifecycle::Step>,
}

pub fn run(g: &GlobalArgs, args: &ApplyArgs) -> Result<Outcome> {
    // Policies run on what is applied ("again when a product is applied"); the
    // contracts the catalog already holds unchanged passed them when they were.
    // Version rules are checked against the catalog below, not against git.
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let rt = super::runtime()?;
    let catalog = rt.block_on(Catalog::open(&project.settings.catalog.url, &project.dir))?;
    let held: std::collections::HashMap<(String, i64), String> = rt
        .block_on(catalog.summaries(None))?
        .into_iter()
        .map(|s| ((s.product, s.major), s.contract_hash))
        .collect();
    let changed = |f: &trib_spec::ContractFile| {
        f.contract.as_ref().is_none_or(|c| {
            held.get(&(c.product.value.to_string(), c.major() as i64))
                != Some(&trib_catalog::contract_hash(&f.source.text))
        })
    };
    let report = match super::check::run_checks_on(project, None, false, changed)? {
        Ok(r) => r,
        Err(d) => return Err(super::fatal(*d)),
    };
    if report.diagnostics.has_errors() {
        eprint!(
            "{}",
            crate::render::snippets(&report.diagnostics, &report.project.sources)
        );
        bail!("the project has errors; hint: fix what `trib check` reports, then apply");
    }
    let project = report.project;
    let commit = crate::git::head(&project.dir);
    let lake = super::lake(&project)?;

    let plan = plan(&project, &catalog, &rt, commit.clone())?;
    let refused = plan.steps.iter().any(|(_, _, s)| matches!(s, Step::Refused { .. }));
    let pending = plan
        .steps
        .iter()
        .filter(|(_, _, s)| matches!(s, Step::Add | Step::Change { .. }))
        .count();
    let changes = pending + plan.lifecycle.len();
    if args.format == OutputFormat::Json {
        let mut doc: Vec<serde_json::Value> = plan
            .steps
            .iter()
            .map(|(r, _, s)| {
                let (action, detail) = match s {
                    Step::Add => ("add", serde_json::Value::Null),
                    Step::Unchanged => ("unchanged", serde_json::Value::Null),
                    Step::Change { from, changes } => (
                        "change",
                        serde_json::json!({ "from": from, "changes": changes.iter().map(|c| serde_json::json!({
                            "impact": format!("{:?}", c.impact).to_lowercase(), "kind": c.kind, "path": c.path, "message": c.message,
                        })).collect::<Vec<_>>() }),
                    ),
                    Step::Refused { from, reason, consumers, downstream } => (
                        "refused",
                        serde_json::json!({ "from": from, "reason": reason, "consumers": consumers, "downstream": downstream }),
                    ),
                };
                serde_json::json!({ "product": r.product, "major": r.major, "version": r.version, "action": action, "detail": detail })
            })
            .collect();
        doc.extend(plan.lifecycle.iter().map(|l| {
            let (action, detail) = match &l.action {
                super::lifecycle::Action::Deprecate { by, sunset, changes } => (
                    "deprecate",
                    serde_json::json!({ "superseded_by": by.as_ref().map(|b| b.0), "deprecation_date": sunset, "changes": changes }),
                ),
                super::lifecycle::Action::Retire { reason } => ("retire", serde_json::json!({ "reason": reason })),
            };
            serde_json::json!({
                "product": l.product, "major": l.major, "version": l.version, "action": action, "detail": detail,
                "consumers": l.consumers.iter().map(|c| &c.consumer).collect::<Vec<_>>(),
                "downstream": l.downstream.iter().map(|d| format!("{}@v{}", d.product, d.major)).collect::<Vec<_>>(),
            })
        }));
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        eprint!("{}", render_plan(&plan));
    }
    if refused {
        bail!(
            "the plan holds changes that cannot be applied; hint: a breaking change needs a new major version (a new table; the old one keeps being served), any other change a new minor or patch version"
        );
    }
    if args.dry_run || changes == 0 {
        if changes == 0 {
            eprintln!("nothing to apply: the catalog is up to date");
        }
        // As at the end: the process ends here, freeing the project would only delay it.
        std::mem::forget(plan);
        std::mem::forget(project);
        return Ok(Outcome::Ok);
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("not on a terminal, so not asking; hint: pass `--yes` to apply this plan");
        }
        eprint!("apply {changes} change{}? [y/N] ", if changes == 1 { "" } else { "s" });
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not applied");
            return Ok(Outcome::Problems);
        }
    }
    let notices = rt.block_on(async {
        for (record, c, step) in &plan.steps {
            if !matches!(step, Step::Add | Step::Change { .. }) {
                continue;
            }
            // Views have no table; the others get theirs made or evolved (added
            // optional columns) now rather than at the first write.
            if c.layer != trib_spec::Layer::View {
                trib_lake::ProductTable::open_or_create(&lake, c, trib_lake::TableKind::Data)
                    .await
                    .with_context(|| format!("cannot create the table of `{}`", record.product))?;
            }
            catalog.register(record).await?;
        }
        super::lifecycle::apply(&project, &catalog, &plan.lifecycle).await
    })?;
    eprintln!(
        "applied {pending} product version{}{}{}",
        if pending == 1 { "" } else { "s" },
        match plan.lifecycle.len() {
            0 => String::new(),
            n => format!(" and {n} lifecycle change{}", if n == 1 { "" } else { "s" }),
        },
        commit
            .map(|c| format!(" at commit {}", &c[..c.len().min(12)]))
            .unwrap_or_default()
    );
    for line in notices {
        eprintln!("{line}");
    }
    // The process ends with this command: freeing a large project (thousands of
    // contracts and their YAML trees) one allocation at a time would only delay it.
    std::mem::forget(plan);
    std::mem::forget(project);
    Ok(Outcome::Ok)
}

/// What applying the project would do, product version by product version.
pub(super) fn plan<'p>(
    project: &'p trib_spec::Project,
    catalog: &Catalog,
    rt: &tokio::runtime::Runtime,
    commit: Option<String>,
) -> Result<Plan<'p>> {
    // One query for what the catalog holds; contracts are read only for what changed.
    let summaries = rt.block_on(catalog.summaries(None))?;
    let held: std::collections::HashMap<(&str, i64), &trib_catalog::Summary> =
        summaries.iter().map(|s| ((s.product.as_str(), s.major), s)).collect();
    let mut plan: Vec<(ProductRecord, &Contract, Step)> = Vec::new();
    for f in &project.files {
        let Some(c) = &f.contract else { continue };
        let record = ProductRecord::of(c, &f.source.text, commit.clone());
        let old = match held.get(&(record.product.as_str(), record.major)) {
            None => None,
            Some(s) if s.contract_hash == record.contract_hash => {
                plan.push((record, c, Step::Unchanged));
                continue;
            }
            Some(_) => rt.block_on(catalog.get(&record.product, record.major))?,
        };
        let step = match old {
            None => Step::Add,
            Some(old) => {
                let before =
                    super::diff::load_contract(&format!("{}@{}", old.product, old.version), old.contract.clone())?;
                let changes = trib_spec::diff::diff(&before.contract, c);
                let breaking: Vec<&trib_spec::diff::Change> =
                    changes.iter().filter(|x| x.impact == Impact::Breaking).collect();
                let problem = trib_spec::diff::version_problem(&before.contract, c, &changes);
                if breaking.is_empty() {
                    match problem {
                        None => Step::Change {
                            from: old.version,
                            changes,
                        },
                        Some(reason) => Step::Refused {
                            from: old.version,
                            reason,
                            consumers: Vec::new(),
                            downstream: Vec::new(),
                        },
                    }
                } else {
                    let consumers = rt
                        .block_on(catalog.consumers(Some(&record.product)))?
                        .into_iter()
                        .filter(|x| x.major == record.major)
                        .map(|x| format!("{} ({}, {}, {})", x.consumer, x.contact, x.purpose, x.status))
                        .collect();
                    let downstream = super::lifecycle::downstream(project, &record.product, c.major())
                        .into_iter()
                        .map(|d| {
                            format!(
                                "{} v{} (owner {}{})",
                                d.product,
                                d.major,
                                d.owner,
                                if d.direct { "" } else { ", indirect" }
                            )
                        })
                        .collect();
                    Step::Refused {
                        from: old.version,
                        reason: format!(
                            "breaking: {}",
                            breaking
                                .iter()
                                .map(|b| b.message.clone())
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        consumers,
                        downstream,
                    }
                }
            }
        };
        plan.push((record, c, step));
    }
    let added: Vec<&Contract> = plan
        .iter()
        .filter(|(_, _, s)| matches!(s, Step::Add))
        .map(|(_, c, _)| *c)
        .collect();
    let lifecycle = rt.block_on(super::lifecycle::plan(
        project,
        catalog,
        &summaries,
        &added,
        chrono::Utc::now(),
    ))?;
    Ok(Plan { steps: plan, lifecycle })
}

pub(super) fn render_plan(plan: &Plan<'_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut unchanged = 0;
    for (r, _, s) in &plan.steps {
        match s {
            Step::Add => {
                let _ = writeln!(
                    out,
                    "  + {} v{} {} (new, at {})",
                    r.product, r.major, r.version, r.address
                );
            }
            Step::Change { from, changes } => {
                let _ = writeln!(
                    out,
                    "  ~ {} v{} {from} → {}: {} change{}",
                    r.product,
                    r.major,
                    r.version,
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" }
                );
                for c in changes {
                    let _ = writeln!(
                        out,
                        "      {:<12} {}",
                        format!("{:?}", c.impact).to_lowercase(),
                        c.message
                    );
                }
            }
            Step::Refused {
                from,
                reason,
                consumers,
                downstream,
            } => {
                let _ = writeln!(
                    out,
                    "  ! {} v{} {from} → {}: refused: {reason}",
                    r.product, r.major, r.version
                );
                if consumers.is_empty() && downstream.is_empty() {
                    let _ = writeln!(out, "      no registered consumer or downstream product is affected");
                }
                for c in consumers {
                    let _ = writeln!(out, "      consumer affected: {c}");
                }
                for d in downstream {
                    let _ = writeln!(out, "      downstream product affected: {d}");
                }
            }
            Step::Unchanged => unchanged += 1,
        }
    }
    out.push_str(&super::lifecycle::render(&plan.lifecycle));
    if unchanged > 0 {
        let _ = writeln!(
            out,
            "  = {unchanged} product version{} unchanged",
            if unchanged == 1 { "" } else { "s" }
        );
    }
    out
}
