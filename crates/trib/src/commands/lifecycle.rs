//! The lifecycle half of `trib apply`: a product version is deprecated when a newer
//! major supersedes it (or its contract says so), served until its deprecation date,
//! and retired by the first apply after that date (or when its contract says so).
//! Its consumers and the owners of products built on it are told, by webhook, as alerts
//! are: what changes, which version replaces it, and until when it is served.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use trib_catalog::{Catalog, Consumer, Summary};
use trib_spec::{Contract, Project, Status};

/// What happens to a product version already in the catalog.
#[derive(Debug, Clone)]
pub(super) enum Action {
    /// Served until `sunset`; `by` the newer major (and its version) when one is the reason.
    Deprecate {
        by: Option<(i64, String)>,
        sunset: String,
        changes: Vec<trib_spec::diff::Change>,
    },
    Retire {
        reason: String,
    },
}

/// One lifecycle change, with whom it reaches.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub product: String,
    pub major: i64,
    pub version: String,
    pub action: Action,
    /// Registered consumers of this version (requested or approved).
    pub consumers: Vec<Consumer>,
    /// Products whose models read this version, directly or further down, with owners.
    pub downstream: Vec<Downstream>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Downstream {
    pub product: String,
    pub major: u64,
    pub owner: String,
    pub webhook: Option<String>,
    /// Reads the version directly (pinned or as the newest), not through another product.
    pub direct: bool,
    /// Reads the product unpinned, so from this apply on the new major (this one).
    pub now_reads: Option<u64>,
}

/// The deprecation date of a version deprecated now: today plus the settings' period.
pub(super) fn sunset(project: &Project, now: chrono::DateTime<chrono::Utc>) -> String {
    i64::try_from(project.settings.catalog.deprecation_period.as_secs())
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|period| now.checked_add_signed(period))
        .map_or_else(|| "9999-12-31".to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// The lifecycle changes an apply of `project` makes, given what the catalog holds.
/// `added` are the product versions the apply registers for the first time.
pub(super) async fn plan(
    project: &Project,
    catalog: &Catalog,
    summaries: &[Summary],
    added: &[&Contract],
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<Step>> {
    let today = now.format("%Y-%m-%d").to_string();
    let sunset = sunset(project, now);
    let mut steps: Vec<Step> = Vec::new();
    let mut planned: BTreeSet<(String, i64)> = BTreeSet::new();
    let in_project: HashMap<(String, i64), &Contract> = project
        .contracts()
        .map(|c| ((c.product.value.to_string(), c.major() as i64), c))
        .collect();
    // The newest active major of each product that is applied (before, or by this
    // apply) supersedes the older ones still served. Worked out from the state each
    // time, so that a deprecation missed once (a draft made active later, an apply
    // that stopped half-way) is made by the next apply.
    let mut by_product: HashMap<&str, Vec<&Summary>> = HashMap::new();
    for s in summaries {
        by_product.entry(s.product.as_str()).or_default().push(s);
    }
    let added: BTreeSet<(String, u64)> = added.iter().map(|a| (a.product.value.to_string(), a.major())).collect();
    let mut newest: BTreeMap<String, &Contract> = BTreeMap::new();
    for c in project.contracts().filter(|c| c.status == Status::Active) {
        let product = c.product.value.to_string();
        let applied = added.contains(&(product.clone(), c.major()))
            || by_product
                .get(product.as_str())
                .is_some_and(|held| held.iter().any(|s| s.major == c.major() as i64 && s.status == "active"));
        if applied {
            let e = newest.entry(product).or_insert(c);
            if c.major() > e.major() {
                *e = c;
            }
        }
    }
    for (product, new) in &newest {
        for old in by_product
            .get(product.as_str())
            .into_iter()
            .flatten()
            .filter(|s| s.major < new.major() as i64)
            .filter(|s| matches!(s.status.as_str(), "draft" | "active"))
        {
            // A version whose own contract now says deprecated or retired is the
            // second loop's.
            if in_project
                .get(&(old.product.clone(), old.major))
                .is_some_and(|c| matches!(c.status, Status::Deprecated | Status::Retired))
            {
                continue;
            }
            let changes = match catalog.get(&old.product, old.major).await? {
                Some(record) => {
                    let before = super::diff::load_contract(
                        &format!("{}@{}", record.product, record.version),
                        record.contract.clone(),
                    )?;
                    trib_spec::diff::diff(&before.contract, new)
                }
                None => Vec::new(),
            };
            planned.insert((old.product.clone(), old.major));
            steps.push(Step {
                product: old.product.clone(),
                major: old.major,
                version: old.version.clone(),
                action: Action::Deprecate {
                    by: Some((new.major() as i64, new.version.value.to_string())),
                    sunset: sunset.clone(),
                    changes,
                },
                consumers: Vec::new(),
                downstream: Vec::new(),
            });
        }
    }
    for s in summaries {
        let key = (s.product.clone(), s.major);
        if planned.contains(&key) {
            continue;
        }
        let declared = in_project.get(&key).map(|c| c.status);
        let action = match (s.status.as_str(), declared) {
            ("retired", _) => None,
            (_, Some(Status::Retired)) => Some(Action::Retire {
                reason: "its contract says `status: retired`".into(),
            }),
            ("deprecated", _) if s.sunset.as_deref().is_some_and(|d| d < today.as_str()) => Some(Action::Retire {
                reason: format!(
                    "its deprecation date {} has passed",
                    s.sunset.as_deref().unwrap_or_default()
                ),
            }),
            ("draft" | "active", Some(Status::Deprecated)) | ("deprecated", _) if s.sunset.is_none() => {
                Some(Action::Deprecate {
                    by: None,
                    sunset: sunset.clone(),
                    changes: Vec::new(),
                })
            }
            _ => None,
        };
        if let Some(action) = action {
            steps.push(Step {
                product: s.product.clone(),
                major: s.major,
                // The version this apply registers, when the contract changed too.
                version: in_project
                    .get(&key)
                    .map_or_else(|| s.version.clone(), |c| c.version.value.to_string()),
                action,
                consumers: Vec::new(),
                downstream: Vec::new(),
            });
        }
    }
    if steps.is_empty() {
        return Ok(steps);
    }
    let mut consumers: BTreeMap<(String, i64), Vec<Consumer>> = BTreeMap::new();
    for c in catalog.consumers(None).await? {
        consumers.entry((c.product.clone(), c.major)).or_default().push(c);
    }
    for step in &mut steps {
        step.consumers = consumers
            .remove(&(step.product.clone(), step.major))
            .unwrap_or_default();
        step.downstream = downstream(project, &step.product, step.major as u64);
        // Models that read the product unpinned follow the new major from now on.
        if let Action::Deprecate {
            by: Some((major, _)), ..
        } = &step.action
        {
            for c in project.contracts().filter(|c| {
                c.inputs()
                    .iter()
                    .any(|i| i.value.major.is_none() && i.value.product.to_string() == step.product)
            }) {
                step.downstream.push(Downstream {
                    product: c.product.value.to_string(),
                    major: c.major(),
                    owner: c.owner.clone(),
                    webhook: c.contact.webhook.clone(),
                    direct: true,
                    now_reads: Some(*major as u64),
                });
            }
        }
    }
    Ok(steps)
}

/// Products built on `product@v{major}`: those whose models read it (pinned to that
/// major, or unpinned while it is the newest in the project), then theirs, and so on.
pub(super) fn downstream(project: &Project, product: &str, major: u64) -> Vec<Downstream> {
    // An input names its pinned major or the newest, as `trib lineage` resolves it.
    let reads = |c: &Contract, p: &str, m: u64| {
        c.inputs().iter().any(|i| {
            i.value.product.to_string() == p
                && super::lineage::input_contract(project, &i.value).is_some_and(|x| x.major() == m)
        })
    };
    let mut found: BTreeMap<(String, u64), Downstream> = BTreeMap::new();
    let mut frontier = vec![(product.to_string(), major)];
    let mut direct = true;
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for (p, m) in &frontier {
            for c in project.contracts().filter(|c| reads(c, p, *m)) {
                let key = (c.product.value.to_string(), c.major());
                if key.0 == product || found.contains_key(&key) {
                    continue;
                }
                found.insert(
                    key.clone(),
                    Downstream {
                        product: key.0.clone(),
                        major: key.1,
                        owner: c.owner.clone(),
                        webhook: c.contact.webhook.clone(),
                        direct,
                        now_reads: None,
                    },
                );
                next.push(key);
            }
        }
        frontier = next;
        direct = false;
    }
    found.into_values().collect()
}

pub(super) fn render(steps: &[Step]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for s in steps {
        match &s.action {
            Action::Deprecate { by, sunset, changes } => {
                let why = match by {
                    Some((major, version)) => format!("superseded by v{major} {version}"),
                    None => "its contract says `status: deprecated`".into(),
                };
                let _ = writeln!(
                    out,
                    "  ↓ {} v{} {}: deprecated ({why}), served until {sunset}",
                    s.product, s.major, s.version
                );
                for c in changes.iter().filter(|c| c.impact == trib_spec::diff::Impact::Breaking) {
                    let _ = writeln!(out, "      breaking     {}", c.message);
                }
            }
            Action::Retire { reason } => {
                let _ = writeln!(
                    out,
                    "  - {} v{} {}: retired ({reason}); no longer served, its table is kept",
                    s.product, s.major, s.version
                );
            }
        }
        for c in &s.consumers {
            let _ = writeln!(
                out,
                "      consumer notified: {} ({}, {}, {})",
                c.consumer, c.contact, c.purpose, c.status
            );
        }
        for d in &s.downstream {
            let how = match d.now_reads {
                Some(m) => format!(" now reading v{m} (unpinned input)"),
                None if d.direct => String::new(),
                None => " (indirect)".into(),
            };
            let _ = writeln!(
                out,
                "      downstream product{how}: {} v{} (owner {})",
                d.product, d.major, d.owner
            );
        }
    }
    out
}

/// The notices a lifecycle step sends: one per consumer and one per downstream owner.
pub(super) fn notices(step: &Step, at_ms: i64) -> Vec<trib_quality::Alert> {
    use trib_quality::alerts::AlertKind;
    let (kind, message, details) = match &step.action {
        Action::Deprecate { by, sunset, changes } => {
            let instead = by
                .as_ref()
                .map(|(m, v)| format!("; move to v{m} ({v}) at /v1/products/{}/v{m}", step.product))
                .unwrap_or_default();
            (
                AlertKind::VersionDeprecated,
                format!(
                    "{}@v{} ({}) is deprecated and served until {sunset}{instead}",
                    step.product, step.major, step.version
                ),
                serde_json::json!({
                    "deprecation_date": sunset,
                    "successor": by.as_ref().map(|(m, v)| serde_json::json!({
                        "major": m, "version": v, "address": format!("/v1/products/{}/v{m}", step.product),
                    })),
                    "changes": changes,
                }),
            )
        }
        Action::Retire { reason } => (
            AlertKind::VersionRetired,
            format!(
                "{}@v{} ({}) is retired and no longer served: {reason}",
                step.product, step.major, step.version
            ),
            serde_json::json!({ "reason": reason }),
        ),
    };
    let alert = |team: &str, webhook: Option<String>, to: serde_json::Value| trib_quality::Alert {
        id: uuid::Uuid::new_v4().to_string(),
        kind,
        product: step.product.clone(),
        major: step.major as u64,
        team: team.to_string(),
        webhook,
        at_ms,
        message: message.clone(),
        incident: None,
        slo: None,
        measured: None,
        target: None,
        from: Some(step.version.clone()),
        to: match &step.action {
            Action::Deprecate { by: Some((_, v)), .. } => Some(v.clone()),
            _ => None,
        },
        details: Some({
            let mut d = details.clone();
            d["recipient"] = to;
            d
        }),
    };
    // One notice per consumer and webhook, however many requests it made.
    let mut seen = BTreeSet::new();
    let mut out: Vec<trib_quality::Alert> = step
        .consumers
        .iter()
        .filter(|c| seen.insert((c.consumer.clone(), c.webhook.clone())))
        .map(|c| {
            // A consumer's own webhook, else a contact that is one; else the settings'
            // team of that name.
            let webhook = c.webhook.clone().or_else(|| {
                (c.contact.starts_with("http://") || c.contact.starts_with("https://")).then(|| c.contact.clone())
            });
            alert(
                &c.consumer,
                webhook,
                serde_json::json!({ "consumer": c.consumer, "contact": c.contact, "request": c.id }),
            )
        })
        .collect();
    // Owners of downstream products, once each.
    let mut owners: BTreeMap<&str, (Option<String>, Vec<String>)> = BTreeMap::new();
    for d in &step.downstream {
        let e = owners.entry(d.owner.as_str()).or_default();
        e.0 = e.0.take().or_else(|| d.webhook.clone());
        e.1.push(match d.now_reads {
            Some(m) => format!("{}@v{} (now reads v{m})", d.product, d.major),
            None => format!("{}@v{}", d.product, d.major),
        });
    }
    for (owner, (webhook, products)) in owners {
        out.push(alert(
            owner,
            webhook,
            serde_json::json!({ "owner": owner, "downstream_products": products }),
        ));
    }
    out
}

/// Applies the steps to the catalog, then sends their notices; returns the lines to
/// report.
pub(super) async fn apply(project: &Project, catalog: &Catalog, steps: &[Step]) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    if steps.is_empty() {
        return Ok(lines);
    }
    // The notifier first: a step made without a way to announce it would not be
    // announced by the next apply either.
    let lake = super::lake(project)?;
    let notifier = trib_quality::Notifier::open(
        &lake,
        project.settings.teams.clone(),
        project.settings.alerts.clone(),
        std::sync::Arc::new(trib_core::SystemClock),
    )
    .await?;
    let mut notices_to_send = Vec::new();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for s in steps {
        let changed = match &s.action {
            Action::Deprecate { by, sunset, .. } => {
                catalog
                    .deprecate(&s.product, s.major, by.as_ref().map(|b| b.0), sunset)
                    .await?
            }
            Action::Retire { .. } => catalog.retire(&s.product, s.major).await?,
        };
        if changed {
            notices_to_send.extend(notices(s, now_ms));
        }
    }
    if notices_to_send.is_empty() {
        return Ok(lines);
    }
    let total = notices_to_send.len();
    let mut failed = Vec::new();
    for n in notices_to_send {
        let team = n.team.clone();
        match notifier.deliver(n).await {
            Ok(d) if d.delivered => {}
            Ok(d) => failed.push(format!(
                "      {team} not told: {}",
                d.error.unwrap_or_default().lines().next().unwrap_or_default()
            )),
            // The delivery log could not be written: the notice may have gone out.
            Err(e) => failed.push(format!("      {team}: the delivery was not recorded: {e}")),
        }
    }
    lines.push(format!(
        "sent {} of {total} lifecycle notice{} (every attempt is in `_trib.alert_deliveries`)",
        total - failed.len(),
        if total == 1 { "" } else { "s" }
    ));
    lines.extend(failed);
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deprecation date is a promise: the version is retired by the first apply
    /// after it, not on it; its consumers are listed with the step.
    #[tokio::test]
    async fn retired_by_the_first_apply_after_its_deprecation_date() {
        let (dir, project) = trib_test::example(|s| s);
        let catalog = Catalog::open("sqlite://.trib/catalog.db", dir.path())
            .await
            .expect("catalog");
        for f in &project.files {
            if let Some(c) = &f.contract {
                catalog
                    .register(&trib_catalog::ProductRecord::of(c, &f.source.text, None))
                    .await
                    .expect("register");
            }
        }
        catalog
            .request_access("orders.orders", 1, "bi", "bi@example.com", "reports", None)
            .await
            .expect("request");
        assert!(
            catalog
                .deprecate("orders.orders", 1, None, "2026-05-01")
                .await
                .expect("deprecate")
        );
        let at = |day: &str| {
            chrono::DateTime::parse_from_rfc3339(&format!("{day}T12:00:00Z"))
                .expect("time")
                .with_timezone(&chrono::Utc)
        };
        let summaries = catalog.summaries(None).await.expect("summaries");
        let on_the_day = plan(&project, &catalog, &summaries, &[], at("2026-05-01"))
            .await
            .expect("plan");
        assert!(on_the_day.is_empty(), "{on_the_day:?}");
        let after = plan(&project, &catalog, &summaries, &[], at("2026-05-02"))
            .await
            .expect("plan");
        assert_eq!(after.len(), 1, "{after:?}");
        let step = &after[0];
        assert_eq!((step.product.as_str(), step.major), ("orders.orders", 1));
        assert!(
            matches!(&step.action, Action::Retire { reason } if reason == "its deprecation date 2026-05-01 has passed"),
            "{step:?}"
        );
        assert_eq!(step.consumers.len(), 1);
        // orders.daily_revenue reads it; finance.monthly_revenue reads that.
        let down: Vec<(&str, bool)> = step.downstream.iter().map(|d| (d.product.as_str(), d.direct)).collect();
        assert_eq!(
            down,
            [("finance.monthly_revenue", false), ("orders.daily_revenue", true)]
        );
        let notices = notices(step, 0);
        assert_eq!(notices.len(), 3, "the consumer and two owning teams: {notices:?}");
        assert!(
            notices
                .iter()
                .all(|n| n.kind == trib_quality::alerts::AlertKind::VersionRetired)
        );
    }
}
