use crate::Outcome;
use crate::cli::{DiffArgs, GlobalArgs, OutputFormat};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use trib_spec::Contract;
use trib_spec::diff::{Change, Impact, Side};

/// A contract read for comparison, with the text its spans point into.
pub struct Loaded {
    pub name: String,
    pub text: String,
    pub contract: Contract,
}

/// Reads a Tributary contract, or an ODCS contract (imported on the fly).
pub fn load_contract(name: &str, text: String) -> Result<Loaded> {
    let source = trib_spec::yaml::Source::new(name, text.clone());
    if looks_like_odcs(&text) {
        let imported = trib_spec::odcs::import(&source).map_err(|d| super::fatal(*d))?;
        let Some(contract) = imported.contract else {
            bail!(
                "`{name}` is an ODCS contract that does not map to a valid Tributary contract; hint: run `trib contract import {name}` to see why"
            );
        };
        return Ok(Loaded {
            name: name.to_string(),
            text: imported.yaml,
            contract,
        });
    }
    let file = trib_spec::parse_contract(source);
    match file.contract {
        Some(contract) => Ok(Loaded {
            name: name.to_string(),
            text,
            contract,
        }),
        None => {
            let mut sources = std::collections::BTreeMap::new();
            sources.insert(name.to_string(), text);
            bail!(
                "`{name}` is not a valid contract:\n{}",
                crate::render::snippets(&file.diagnostics, &sources).trim_end()
            )
        }
    }
}

fn looks_like_odcs(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("apiVersion:"))
        && text.lines().any(|l| l.trim() == "kind: DataContract")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// A product address or a file path, resolved to a file of the project.
fn resolve(project: &Path, what: &str) -> Result<PathBuf> {
    let p = PathBuf::from(what);
    if p.is_file() {
        return Ok(p);
    }
    if let Ok(name) = what.parse::<trib_spec::ProductName>() {
        let proj = super::project(project).map_err(|d| super::fatal(*d))?;
        if let Some(f) = proj.file_of(&name) {
            return Ok(project.join(&f.source.name));
        }
        bail!(
            "no contract declares `{name}` in `{}`; hint: `trib check` lists the products",
            project.display()
        );
    }
    bail!("`{what}` is neither a file nor a product address")
}

pub fn run(g: &GlobalArgs, args: &DiffArgs) -> Result<Outcome> {
    let (old, new) = match (&args.new, &args.against) {
        (Some(new), None) => {
            let old = PathBuf::from(&args.old);
            (
                load_contract(&args.old, read(&old)?)?,
                load_contract(&new.display().to_string(), read(new)?)?,
            )
        }
        (None, Some(rev)) => {
            let path = resolve(&g.project, &args.old)?;
            let Some(old_text) = crate::git::show(&path, rev)? else {
                bail!("`{}` did not exist at `{rev}`; nothing to compare", path.display());
            };
            let name = path.display().to_string();
            (
                load_contract(&format!("{rev}:{name}"), old_text)?,
                load_contract(&name, read(&path)?)?,
            )
        }
        (Some(_), Some(_)) => bail!("give either NEW or `--against REV`, not both"),
        (None, None) => bail!(
            "give the new contract file, or `--against REV` to compare with git; e.g. `trib diff old.yaml new.yaml`"
        ),
    };
    let changes = trib_spec::diff::diff(&old.contract, &new.contract);
    let problem = trib_spec::diff::version_problem(&old.contract, &new.contract, &changes);
    let bump = trib_spec::diff::required_bump(&changes);
    let breaking = changes.iter().any(|c| c.impact == Impact::Breaking);
    // Whom a breaking change hurts: the old version's consumers (in the catalog) and the
    // products built on it (in the project), when there is a project to ask.
    let affected = if breaking {
        impact(&g.project, &old.contract)
    } else {
        Affected::default()
    };
    match args.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "affects": {
                    "consumers": affected.consumers.iter().map(|c| serde_json::json!({
                        "consumer": c.consumer, "contact": c.contact, "purpose": c.purpose, "status": c.status,
                    })).collect::<Vec<_>>(),
                    "downstream": affected.downstream.iter().map(|d| serde_json::json!({
                        "product": d.product, "major": d.major, "owner": d.owner, "direct": d.direct,
                    })).collect::<Vec<_>>(),
                },
                "old": { "file": old.name, "product": old.contract.product.value.to_string(), "version": old.contract.version.value.to_string() },
                "new": { "file": new.name, "product": new.contract.product.value.to_string(), "version": new.contract.version.value.to_string() },
                "changes": changes,
                "required_bump": bump,
                "breaking": changes.iter().any(|c| c.impact == Impact::Breaking),
                "version_problem": problem,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => {
            print!("{}", report(&old, &new, &changes, problem.as_deref()));
            for c in &affected.consumers {
                println!(
                    "consumer affected: {} ({}, {}, {})",
                    c.consumer, c.contact, c.purpose, c.status
                );
            }
            for d in &affected.downstream {
                println!(
                    "downstream product affected: {} v{} (owner {}{})",
                    d.product,
                    d.major,
                    d.owner,
                    if d.direct { "" } else { ", indirect" }
                );
            }
        }
    }
    Ok(if problem.is_some() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

/// Who a breaking change to a product version affects.
#[derive(Default)]
struct Affected {
    consumers: Vec<trib_catalog::Consumer>,
    downstream: Vec<super::lifecycle::Downstream>,
}

/// The consumers and downstream products of `contract`'s version, from the project at
/// `dir` and its catalog; nothing when either is not there (two loose files).
fn impact(dir: &Path, contract: &Contract) -> Affected {
    let Ok(project) = super::project(dir) else {
        return Affected::default();
    };
    let product = contract.product.value.to_string();
    let downstream = super::lifecycle::downstream(&project, &product, contract.major());
    // A read-only command does not make the embedded catalog; no file, no consumers.
    let url = &project.settings.catalog.url;
    if url
        .strip_prefix("sqlite://")
        .is_some_and(|path| !project.dir.join(path).exists())
    {
        return Affected {
            consumers: Vec::new(),
            downstream,
        };
    }
    let consumers = super::runtime()
        .ok()
        .and_then(|rt| {
            rt.block_on(async {
                let catalog = trib_catalog::Catalog::open(&project.settings.catalog.url, &project.dir)
                    .await
                    .ok()?;
                catalog.consumers(Some(&product)).await.ok()
            })
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.major == contract.major() as i64)
        .collect();
    Affected { consumers, downstream }
}

/// The human report: one line per change, grouped by impact, then the verdict.
pub fn report(old: &Loaded, new: &Loaded, changes: &[Change], problem: Option<&str>) -> String {
    let mut out = format!(
        "{} {} → {}\n",
        new.contract.product.value, old.contract.version.value, new.contract.version.value
    );
    if changes.is_empty() {
        out.push_str("  no changes\n");
    }
    for impact in [Impact::Breaking, Impact::NonBreaking, Impact::Descriptive] {
        for c in changes.iter().filter(|c| c.impact == impact) {
            let at = match c.at {
                Some((Side::Old, span)) => format!(" ({}:{})", old.name, span.line),
                Some((Side::New, span)) => format!(" ({}:{})", new.name, span.line),
                None => String::new(),
            };
            out.push_str(&format!(
                "  {:<13} {:<24} {}{at}\n",
                impact.to_string(),
                c.kind,
                c.message
            ));
        }
    }
    let bump = trib_spec::diff::required_bump(changes);
    out.push_str(&format!(
        "required version bump: {}\n",
        format!("{bump:?}").to_lowercase()
    ));
    match problem {
        Some(p) => out.push_str(&format!("error: {p}\n")),
        None => out.push_str("version: ok\n"),
    }
    out
}
