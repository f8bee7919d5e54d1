//! Retention tiers: a product that declares `tiers` keeps its rows at full resolution
//! for the `raw` tier's retention, and each coarser tier is a product of aggregates kept
//! longer (the IoT case: readings for 7 days, minutes for 90 days, hours for 7 years).
//!
//! ```text
//!   iot.sensor_readings  (raw, 7d)
//!     ├──► iot.sensor_readings_1m   generated: count, avg, min, max per group and minute, 90d
//!     └──► iot.sensor_readings_1h   generated: the same per hour, 7y
//! ```
//!
//! A tier with `product:` names a product the team wrote; the others are generated here
//! as ordinary contracts (text parsed like a file, shown as `<file> (tier 1m)`), so that
//! checks, the catalog, lineage, access and serving treat them like any product. Each
//! generated tier aggregates the raw product directly: every window is computed while
//! its raw rows are still kept, and exactly (no averages of averages).

use crate::contract::{ContractFile, parse_contract};
use crate::model::{Contract, Tier};
use crate::types::DataType;
use crate::yaml::Source;
use trib_core::{Diagnostic, Diagnostics};

/// The contracts generated for the tiers of every valid contract in `files`, each with
/// its text.
pub(crate) fn generate(files: &[ContractFile]) -> Vec<(String, ContractFile)> {
    let declared: std::collections::HashSet<String> = files
        .iter()
        .filter_map(|f| f.contract.as_ref().map(|c| c.product.value.to_string()))
        .collect();
    let mut out = Vec::new();
    for file in files {
        let Some(c) = &file.contract else { continue };
        for tier in &c.tiers {
            if tier.resolution.is_none() || tier.product.is_some() {
                continue;
            }
            // A name already taken is reported by `check`.
            if tier_product(c, tier).is_none_or(|n| declared.contains(&n)) {
                continue;
            }
            let Some(text) = tier_yaml(c, tier) else { continue };
            let name = format!(
                "{} (tier {})",
                file.source.name,
                tier.resolution.map(|r| r.to_string()).unwrap_or_default()
            );
            out.push((text.clone(), parse_contract(Source::new(name, text))));
        }
    }
    out
}

/// The address of a generated tier: `<product>_<resolution>`.
pub fn tier_product(c: &Contract, tier: &Tier) -> Option<String> {
    let r = tier.resolution?;
    Some(format!("{}_{r}", c.product.value))
}

fn q(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The grouping columns of a generated tier.
pub fn dimensions<'c>(c: &'c Contract, tier: &'c Tier) -> Vec<&'c str> {
    let ev = c.event_time.as_ref().map(|e| e.value.as_str());
    if !tier.group_by.is_empty() {
        return tier.group_by.iter().map(|g| g.value.as_str()).collect();
    }
    let key: Vec<&str> = c
        .key
        .iter()
        .map(|k| k.value.as_str())
        .filter(|k| Some(*k) != ev)
        .collect();
    if !key.is_empty() {
        return key;
    }
    c.schema
        .iter()
        .filter(|col| matches!(col.data_type.value, DataType::String | DataType::Bool))
        .map(|col| col.name.value.as_str())
        .filter(|n| Some(*n) != ev)
        .collect()
}

fn tier_yaml(c: &Contract, tier: &Tier) -> Option<String> {
    let ev = c.event_time.as_ref()?.value.as_str();
    let res = tier.resolution?;
    let name = tier_product(c, tier)?;
    let dims = dimensions(c, tier);
    let measures: Vec<&crate::model::Column> = c
        .schema
        .iter()
        .filter(|col| col.data_type.value.is_numeric())
        .filter(|col| col.name.value != ev && !dims.contains(&col.name.value.as_str()))
        .collect();
    let input = format!("{}@v{}", c.product.value, c.major());
    let window = format!("tumble({}, INTERVAL '{} seconds')", ident(ev), res.as_secs());
    let mut select: Vec<String> = dims.iter().map(|d| ident(d)).collect();
    select.push(format!("{window} AS {}", ident(ev)));
    select.push("count(*) AS \"samples\"".into());
    for m in &measures {
        let n = &m.name.value;
        select.push(format!("avg({}) AS {}", ident(n), ident(&format!("{n}_avg"))));
        select.push(format!("min({}) AS {}", ident(n), ident(&format!("{n}_min"))));
        select.push(format!("max({}) AS {}", ident(n), ident(&format!("{n}_max"))));
    }
    let mut group: Vec<String> = dims.iter().map(|d| ident(d)).collect();
    group.push(window);
    let sql = format!(
        "SELECT {}\nFROM {}\nGROUP BY {}\n",
        select.join(", "),
        ident(&input),
        group.join(", ")
    );

    let mut y = String::new();
    let mut line = |s: String| {
        y.push_str(&s);
        y.push('\n');
    };
    line(format!("product: {name}"));
    line(format!("version: {}", q(&c.version.value.to_string())));
    line(format!("owner: {}", q(&c.owner)));
    line(format!(
        "description: {}",
        q(&format!(
            "{} in {res} windows, kept {}: generated from the tiers of `{}`.",
            c.product.value, tier.retention, c.product.value
        ))
    ));
    line(format!("status: {}", c.status.as_str()));
    line("layer: gold".into());
    let mut tags: Vec<String> = c.tags.clone();
    tags.push("tier".into());
    line(format!(
        "tags: [{}]",
        tags.iter().map(|t| q(t)).collect::<Vec<_>>().join(", ")
    ));
    line("source:".into());
    line(format!("  inputs: [{}]", q(&input)));
    line("  materialized: incremental".into());
    line(format!("  sql: {}", q(&sql)));
    let mut key: Vec<String> = dims.iter().map(|d| q(d)).collect();
    key.push(q(ev));
    line(format!("key: [{}]", key.join(", ")));
    line(format!("event_time: {}", q(ev)));
    if let Some(w) = &c.watermark {
        line(format!(
            "watermark: {{ allowed_lateness: {}, late: reaggregate }}",
            w.allowed_lateness
        ));
    }
    let part = if res.as_secs() < 3600 { "day" } else { "month" };
    line(format!("partition_by: [\"{part}({ev})\"]"));
    line("schema:".into());
    for d in &dims {
        let Some(col) = c.column(d) else { continue };
        let mut f = format!(
            "  - {{ name: {}, type: {}, required: {}",
            q(d),
            q(&col.data_type.value.to_string()),
            col.required
        );
        if col.pii {
            f.push_str(", pii: true");
        }
        if let Some(cl) = &col.classification {
            f.push_str(&format!(", classification: {}", cl.as_str()));
        }
        f.push_str(" }");
        line(f);
    }
    line(format!("  - {{ name: {}, type: timestamp, required: true }}", q(ev)));
    line("  - { name: samples, type: int64, required: true }".into());
    for m in &measures {
        let n = &m.name.value;
        let t = q(&m.data_type.value.to_string());
        let class = m
            .classification
            .as_ref()
            .map(|cl| format!(", classification: {}", cl.as_str()))
            .unwrap_or_default();
        let pii = if m.pii { ", pii: true" } else { "" };
        line(format!(
            "  - {{ name: {}, type: double{pii}{class} }}",
            q(&format!("{n}_avg"))
        ));
        line(format!(
            "  - {{ name: {}, type: {t}{pii}{class} }}",
            q(&format!("{n}_min"))
        ));
        line(format!(
            "  - {{ name: {}, type: {t}{pii}{class} }}",
            q(&format!("{n}_max"))
        ));
    }
    if !c.access.is_empty() {
        line("access:".into());
        for g in &c.access {
            let mut f = format!("  - {{ role: {}, level: {}", q(&g.role.value), g.level.as_str());
            // A filter over columns the tier does not have fails its queries: closed,
            // never wider than the raw product.
            if let Some(r) = &g.row_filter {
                f.push_str(&format!(", row_filter: {}", q(&r.value)));
            }
            f.push_str(" }");
            line(f);
        }
    }
    line("quality:".into());
    line(format!("  - unique: [{}]", key.join(", ")));
    line(format!("  - not_null: [{}, samples]", q(ev)));
    line(format!("retention: {}", tier.retention));
    Some(y)
}

/// Checks the tiers of every contract: what they need, the products they name, and the
/// names of the generated ones.
pub(crate) fn check(project: &crate::Project, diags: &mut Diagnostics) {
    for file in &project.files {
        let Some(c) = &file.contract else { continue };
        if c.tiers.is_empty() || file.source.name.contains(" (tier ") {
            continue;
        }
        let at = |span| file.source.location(span);
        let ev = c.event_time.as_ref().and_then(|e| c.column(&e.value));
        if !ev.is_some_and(|col| col.data_type.value == DataType::Timestamp) {
            diags.push(
                Diagnostic::error(
                    "contract::bad-tiers",
                    format!("`{}` declares tiers but has no `timestamp` event time", c.product.value),
                )
                .with_location(at(c.tiers[0].span))
                .with_help("tiers keep rows by age and aggregate by window: set `event_time` to a timestamp column"),
            );
            continue;
        }
        for tier in &c.tiers {
            for g in &tier.group_by {
                if c.column(&g.value).is_none() {
                    diags.push(
                        Diagnostic::error(
                            "contract::unknown-column",
                            format!("tier `group_by` names column `{}`, which is not in the schema", g.value),
                        )
                        .with_location(at(g.span))
                        .with_help("group by columns of this product"),
                    );
                }
            }
            // A product whose contract has errors of its own is reported there.
            let broken = |name: &str| {
                project.files.iter().any(|f| {
                    f.contract.is_none()
                        && f.root
                            .as_ref()
                            .and_then(|r| r.get("product"))
                            .and_then(|n| n.as_str())
                            .is_some_and(|n| n.trim() == name)
                })
            };
            match &tier.product {
                Some(p) if broken(&p.value.to_string()) => {}
                Some(p) => match project.latest(&p.value) {
                    None => diags.push(
                        Diagnostic::error(
                            "project::unknown-tier-product",
                            format!(
                                "tier `{}` names product `{}`, which no contract declares",
                                tier_label(tier),
                                p.value
                            ),
                        )
                        .with_location(at(p.span))
                        .with_help("add the product, or drop `product` to have the tier generated"),
                    ),
                    Some(t) => {
                        if t.event_time.is_none() {
                            diags.push(
                                Diagnostic::error(
                                    "contract::bad-tiers",
                                    format!("tier product `{}` has no `event_time` to expire rows by", p.value),
                                )
                                .with_location(at(p.span))
                                .with_help(format!("set `event_time` on `{}` to its window column", p.value)),
                            );
                        }
                        if t.retention != Some(tier.retention) {
                            diags.push(
                                Diagnostic::error(
                                    "contract::bad-tiers",
                                    format!(
                                        "tier `{}` keeps `{}` for {}, but its contract says retention {}",
                                        tier_label(tier),
                                        p.value,
                                        tier.retention,
                                        t.retention.map_or_else(|| "none".to_string(), |r| r.to_string())
                                    ),
                                )
                                .with_location(at(p.span))
                                .with_help(format!("set `retention: {}` on `{}`", tier.retention, p.value)),
                            );
                        }
                    }
                },
                None if tier.resolution.is_some() => {
                    let Some(name) = tier_product(c, tier) else { continue };
                    let taken = project.files.iter().any(|f| {
                        !f.source.name.contains(" (tier ")
                            && f.contract.as_ref().is_some_and(|o| o.product.value.to_string() == name)
                    });
                    if taken {
                        diags.push(
                            Diagnostic::error(
                                "project::tier-name-taken",
                                format!(
                                    "tier `{}` would generate `{name}`, which a contract already declares",
                                    tier_label(tier)
                                ),
                            )
                            .with_location(at(tier.span))
                            .with_help(format!("link it with `product: {name}`, or rename that product")),
                        );
                    }
                }
                None => {}
            }
        }
    }
}

fn tier_label(t: &Tier) -> String {
    t.resolution.map_or_else(|| "raw".to_string(), |r| r.to_string())
}
