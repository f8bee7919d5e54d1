//! `trib catalog search` and `trib consumers request|approve|list`.

use crate::Outcome;
use crate::cli::{CatalogCommand, ConsumersCommand, GlobalArgs, OutputFormat};
use anyhow::{Result, bail};
use trib_catalog::Catalog;

fn open(g: &GlobalArgs) -> Result<(trib_spec::Project, Catalog, tokio::runtime::Runtime)> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let rt = super::runtime()?;
    let catalog = rt.block_on(Catalog::open(&project.settings.catalog.url, &project.dir))?;
    Ok((project, catalog, rt))
}

pub fn run(g: &GlobalArgs, c: CatalogCommand) -> Result<Outcome> {
    match c {
        CatalogCommand::Search(a) => {
            let (project, catalog, rt) = open(g)?;
            let hits = rt.block_on(catalog.search(&a.query, a.limit.max(1)))?;
            // Certification as last evaluated, beside each hit.
            let board = rt.block_on(trib_quality::Board::load(&super::lake(&project)?))?;
            let state = |p: &str, major: i64| {
                board
                    .get(p, u64::try_from(major).unwrap_or_default())
                    .map_or("not evaluated", |s| s.0.as_str())
            };
            if rt.block_on(catalog.count())? == 0 {
                eprintln!("the catalog is empty: `trib apply` registers the project's products");
            }
            match a.format {
                OutputFormat::Json => {
                    let doc: Vec<serde_json::Value> = hits
                        .iter()
                        .map(|h| {
                            serde_json::json!({
                                "product": h.product, "major": h.major, "version": h.version, "owner": h.owner,
                                "domain": h.domain, "description": h.description, "address": h.address,
                                "exact": h.exact, "score": h.score, "certification": state(&h.product, h.major),
                                "status": h.status, "deprecation_date": h.deprecation_date,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&doc)?);
                }
                OutputFormat::Text => {
                    for h in &hits {
                        let lifecycle = match (h.status.as_str(), &h.deprecation_date) {
                            ("deprecated", Some(d)) => format!(" [deprecated, served until {d}]"),
                            ("retired", _) => " [retired]".to_string(),
                            _ => String::new(),
                        };
                        println!(
                            "{:<28} v{:<3} {:<9} {:<20} {:<13} {}{lifecycle}",
                            h.product,
                            h.major,
                            h.version,
                            h.owner,
                            state(&h.product, h.major),
                            h.description.as_deref().unwrap_or_default()
                        );
                    }
                    eprintln!("{} match{}", hits.len(), if hits.len() == 1 { "" } else { "es" });
                }
            }
            Ok(if hits.is_empty() {
                Outcome::Problems
            } else {
                Outcome::Ok
            })
        }
    }
}

/// `product@vN` or `product` (its newest major in the project).
pub(super) fn address(project: &trib_spec::Project, text: &str) -> Result<(String, i64)> {
    let (name, major) = match text.rsplit_once("@v") {
        Some((n, m)) => (
            n,
            Some(m.parse::<u64>().map_err(|_| {
                anyhow::anyhow!(
                    "`{text}`: the major version after `@v` is not a number; hint: write `orders.orders@v1`"
                )
            })?),
        ),
        None => (text, None),
    };
    let product: trib_spec::ProductName = name.parse().map_err(|e: trib_spec::ProductNameError| {
        anyhow::anyhow!("{e}; hint: {}", trib_spec::ProductNameError::HINT)
    })?;
    let Some(latest) = project.latest(&product) else {
        bail!("no product `{product}` in this project; hint: `trib catalog search` finds products");
    };
    let major = major.unwrap_or(latest.major());
    if !project
        .contracts()
        .any(|c| c.product.value == product && c.major() == major)
    {
        bail!(
            "`{product}` has no major version {major}; hint: the newest is v{}",
            latest.major()
        );
    }
    Ok((product.to_string(), major as i64))
}

pub fn consumers(g: &GlobalArgs, c: ConsumersCommand) -> Result<Outcome> {
    let (project, catalog, rt) = open(g)?;
    match c {
        ConsumersCommand::Request(a) => {
            let (product, major) = address(&project, &a.product)?;
            let req = rt.block_on(catalog.request_access(
                &product,
                major,
                &a.consumer,
                &a.contact,
                &a.purpose,
                a.webhook.as_deref(),
            ))?;
            println!("{}", req.id);
            eprintln!(
                "requested `{product}@v{major}` for `{}`; its owner approves with `trib consumers approve {}`",
                a.consumer, req.id
            );
        }
        ConsumersCommand::Approve(a) => {
            let pending = rt.block_on(catalog.consumers(None))?;
            let Some(req) = pending.iter().find(|r| r.id == a.id) else {
                bail!(
                    "no access request `{}`; hint: `trib consumers list` shows the requests and their ids",
                    a.id
                );
            };
            let owner = project
                .contracts()
                .find(|c| c.product.value.to_string() == req.product && c.major() as i64 == req.major)
                .map(|c| c.owner.clone());
            let by = a.by.or(owner).unwrap_or_else(|| "unknown".into());
            let done = rt.block_on(catalog.approve(&a.id, &by))?;
            eprintln!(
                "approved: `{}` consumes `{}@v{}` (by {by})",
                done.consumer, done.product, done.major
            );
        }
        ConsumersCommand::List(a) => {
            let list = rt.block_on(catalog.consumers(a.product.as_deref()))?;
            match a.format {
                OutputFormat::Json => {
                    let doc: Vec<serde_json::Value> = list
                        .iter()
                        .map(|c| {
                            serde_json::json!({
                                "id": c.id, "product": c.product, "major": c.major, "consumer": c.consumer,
                                "contact": c.contact, "purpose": c.purpose, "status": c.status,
                                "requested_at": c.requested_at, "decided_at": c.decided_at, "decided_by": c.decided_by,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&doc)?);
                }
                OutputFormat::Text => {
                    for c in &list {
                        println!(
                            "{:<12} {:<24} v{:<3} {:<20} {:<10} {} ({})",
                            c.id, c.product, c.major, c.consumer, c.status, c.purpose, c.contact
                        );
                    }
                }
            }
        }
    }
    Ok(Outcome::Ok)
}

/// Gives the gateway what the catalog says about access and lifecycle: the approved
/// consumers (each reads its product version) and the versions deprecated or retired
/// since their contracts were written. Without a catalog, a warning and nothing.
pub async fn refresh(gateway: &trib_access::Gateway, project: &trib_spec::Project) {
    let read = async {
        let catalog = Catalog::open(&project.settings.catalog.url, &project.dir).await?;
        Ok::<_, trib_catalog::Error>((catalog.consumers(None).await?, catalog.summaries(None).await?))
    };
    match read.await {
        Ok((consumers, versions)) => {
            gateway.set_consumers(
                consumers
                    .into_iter()
                    .filter(|c| c.status == "approved")
                    .filter_map(|c| Some((c.product, u64::try_from(c.major).ok()?, c.consumer))),
            );
            gateway.set_lifecycle(
                versions
                    .into_iter()
                    .filter(|v| matches!(v.status.as_str(), "deprecated" | "retired"))
                    .filter_map(|v| {
                        Some((
                            (v.product, u64::try_from(v.major).ok()?),
                            trib_access::Lifecycle {
                                status: v.status,
                                sunset: v.sunset,
                                superseded_by: v.superseded_by.and_then(|m| u64::try_from(m).ok()),
                            },
                        ))
                    }),
            );
        }
        Err(e) => eprintln!("warning: consumers and lifecycle are not read, the catalog is not available: {e}"),
    }
}
