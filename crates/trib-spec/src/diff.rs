//! Changes between two versions of a contract, classified by what they do to consumers
//! and producers: breaking changes need a new major version.

use crate::model::{CheckKind, Column, Contract};
use crate::yaml::NodeSpan;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// Nothing a reader or writer sees: descriptions, tags, owners.
    Descriptive,
    /// Compatible: readers and writers of the old version keep working.
    NonBreaking,
    /// Readers or writers of the old version break.
    Breaking,
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Impact::Descriptive => "descriptive",
            Impact::NonBreaking => "non-breaking",
            Impact::Breaking => "breaking",
        })
    }
}

/// Which file a change points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Old,
    New,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub impact: Impact,
    /// Stable kind, e.g. `column-removed`.
    pub kind: &'static str,
    /// Where in the contract, e.g. `schema.customer_id`.
    pub path: String,
    pub message: String,
    #[serde(skip)]
    pub at: Option<(Side, NodeSpan)>,
}

/// The version bump a set of changes needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bump {
    None,
    Patch,
    Minor,
    Major,
}

pub fn required_bump(changes: &[Change]) -> Bump {
    changes
        .iter()
        .map(|c| match c.impact {
            Impact::Breaking => Bump::Major,
            Impact::NonBreaking => Bump::Minor,
            Impact::Descriptive => Bump::Patch,
        })
        .max()
        .unwrap_or(Bump::None)
}

/// Whether `new.version` is a large enough step from `old.version` for `changes`.
/// Returns the problem in words, or `None` when the version is fine.
pub fn version_problem(old: &Contract, new: &Contract, changes: &[Change]) -> Option<String> {
    let (ov, nv) = (&old.version.value, &new.version.value);
    if nv < ov {
        return Some(format!("version went backwards from {ov} to {nv}"));
    }
    let bump = required_bump(changes);
    // Before 1.0.0 semver lets minor releases break.
    let major_step = if ov.major == 0 {
        nv.major > 0 || nv.minor > ov.minor
    } else {
        nv.major > ov.major
    };
    if bump == Bump::Major && !major_step {
        let breaking: Vec<&str> = changes
            .iter()
            .filter(|c| c.impact == Impact::Breaking)
            .map(|c| c.path.as_str())
            .collect();
        return Some(format!(
            "breaking changes ({}) need a new major version, but the version went from {ov} to {nv}",
            breaking.join(", ")
        ));
    }
    if bump >= Bump::Minor && nv == ov {
        return Some(format!("the contract changed but its version stayed {nv}"));
    }
    None
}

struct Differ<'a> {
    old: &'a Contract,
    new: &'a Contract,
    out: Vec<Change>,
}

impl Differ<'_> {
    fn push(
        &mut self,
        impact: Impact,
        kind: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
        at: Option<(Side, NodeSpan)>,
    ) {
        self.out.push(Change {
            impact,
            kind,
            path: path.into(),
            message: message.into(),
            at,
        });
    }
}

/// Classifies every difference between two versions of a contract.
pub fn diff(old: &Contract, new: &Contract) -> Vec<Change> {
    let mut d = Differ {
        old,
        new,
        out: Vec::new(),
    };
    let new_at = |span: NodeSpan| Some((Side::New, span));

    if old.product.value != new.product.value {
        d.push(
            Impact::Breaking,
            "product-renamed",
            "product",
            format!(
                "product address changed from `{}` to `{}`; consumers address it by name",
                old.product.value, new.product.value
            ),
            new_at(new.product.span),
        );
    }
    if old.layer != new.layer {
        d.push(
            Impact::Breaking,
            "layer-changed",
            "layer",
            format!("layer changed from {} to {}", old.layer, new.layer),
            None,
        );
    }
    diff_columns(&mut d);
    let names = |v: &[crate::decode::Spanned<String>]| v.iter().map(|s| s.value.clone()).collect::<Vec<_>>();
    if names(&old.key) != names(&new.key) {
        d.push(
            Impact::Breaking,
            "key-changed",
            "key",
            format!(
                "key changed from [{}] to [{}]; rows are identified differently",
                names(&old.key).join(", "),
                names(&new.key).join(", ")
            ),
            new.key.first().and_then(|k| new_at(k.span)),
        );
    }
    let part = |c: &Contract| c.partition_by.iter().map(ToString::to_string).collect::<Vec<_>>();
    if part(old) != part(new) {
        d.push(
            Impact::Breaking,
            "partition-changed",
            "partition_by",
            format!(
                "partitioning changed from [{}] to [{}]; the table must be rewritten",
                part(old).join(", "),
                part(new).join(", ")
            ),
            new.partition_by.first().and_then(|p| new_at(p.column.span)),
        );
    }
    let opt = |s: &Option<crate::decode::Spanned<String>>| s.as_ref().map(|s| s.value.clone());
    if opt(&old.sequence_by) != opt(&new.sequence_by) {
        d.push(
            Impact::Breaking,
            "sequence-changed",
            "sequence_by",
            format!(
                "`sequence_by` changed from {:?} to {:?}; which update wins changes",
                opt(&old.sequence_by),
                opt(&new.sequence_by)
            ),
            new.sequence_by.as_ref().and_then(|s| new_at(s.span)),
        );
    }
    if opt(&old.event_time) != opt(&new.event_time) {
        d.push(
            Impact::Breaking,
            "event-time-changed",
            "event_time",
            format!(
                "`event_time` changed from {:?} to {:?}; windows and watermarks move",
                opt(&old.event_time),
                opt(&new.event_time)
            ),
            new.event_time.as_ref().and_then(|s| new_at(s.span)),
        );
    }
    if opt(&old.event_id) != opt(&new.event_id) {
        d.push(
            Impact::NonBreaking,
            "event-id-changed",
            "event_id",
            format!(
                "`event_id` changed from {:?} to {:?}; which rows count as duplicates changes",
                opt(&old.event_id),
                opt(&new.event_id)
            ),
            new.event_id.as_ref().and_then(|s| new_at(s.span)),
        );
    }
    if names(&old.cluster_by) != names(&new.cluster_by) {
        d.push(
            Impact::NonBreaking,
            "cluster-changed",
            "cluster_by",
            "clustering changed (physical layout only)",
            None,
        );
    }
    diff_checks(&mut d);
    if old.source != new.source {
        d.push(
            Impact::NonBreaking,
            "source-changed",
            "source",
            "source changed (inputs, transform or materialization)",
            None,
        );
    }
    if old.watermark != new.watermark {
        d.push(
            Impact::NonBreaking,
            "watermark-changed",
            "watermark",
            "watermark changed",
            None,
        );
    }
    if old.sla != new.sla {
        d.push(
            Impact::NonBreaking,
            "sla-changed",
            "sla",
            "service levels changed",
            None,
        );
    }
    if old.access != new.access {
        d.push(
            Impact::NonBreaking,
            "access-changed",
            "access",
            "access grants changed",
            None,
        );
    }
    if old.retention != new.retention {
        d.push(
            Impact::NonBreaking,
            "retention-changed",
            "retention",
            format!(
                "retention changed from {} to {}",
                show_opt(&old.retention),
                show_opt(&new.retention)
            ),
            None,
        );
    }
    if old.tiers != new.tiers {
        d.push(
            Impact::NonBreaking,
            "tiers-changed",
            "tiers",
            "retention tiers changed",
            None,
        );
    }
    if old.status != new.status {
        d.push(
            Impact::Descriptive,
            "status-changed",
            "status",
            format!("status changed from {} to {}", old.status, new.status),
            None,
        );
    }
    if old.owner != new.owner || old.contact != new.contact {
        d.push(
            Impact::Descriptive,
            "owner-changed",
            "owner",
            "owner or contact changed",
            None,
        );
    }
    if old.description != new.description || old.tags != new.tags {
        d.push(
            Impact::Descriptive,
            "description-changed",
            "description",
            "description or tags changed",
            None,
        );
    }
    d.out
}

fn show_opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "none".to_string(), ToString::to_string)
}

fn diff_columns(d: &mut Differ<'_>) {
    let (old, new) = (d.old, d.new);
    let removed: Vec<(usize, &Column)> = old
        .schema
        .iter()
        .enumerate()
        .filter(|(_, c)| new.column(&c.name).is_none())
        .collect();
    let added: Vec<(usize, &Column)> = new
        .schema
        .iter()
        .enumerate()
        .filter(|(_, c)| old.column(&c.name).is_none())
        .collect();
    let mut renamed_to: Vec<&str> = Vec::new();
    for (i, col) in &removed {
        // A column that disappeared where one of the same type appeared, at the same
        // position, was most likely renamed.
        let rename = added
            .iter()
            .find(|(j, a)| j == i && a.data_type.value == col.data_type.value);
        match rename {
            Some((_, a)) => {
                renamed_to.push(&a.name.value);
                d.push(
                    Impact::Breaking,
                    "column-renamed",
                    format!("schema.{}", col.name.value),
                    format!(
                        "column `{}` renamed to `{}`; queries naming it break",
                        col.name.value, a.name.value
                    ),
                    Some((Side::New, a.name.span)),
                );
            }
            None => d.push(
                Impact::Breaking,
                "column-removed",
                format!("schema.{}", col.name.value),
                format!("column `{}` removed; queries naming it break", col.name.value),
                Some((Side::Old, col.name.span)),
            ),
        }
    }
    for (_, col) in &added {
        if renamed_to.contains(&col.name.value.as_str()) {
            continue;
        }
        if col.required {
            d.push(
                Impact::Breaking,
                "required-column-added",
                format!("schema.{}", col.name.value),
                format!(
                    "required column `{}` added; producers that do not send it are rejected",
                    col.name.value
                ),
                Some((Side::New, col.name.span)),
            );
        } else {
            d.push(
                Impact::NonBreaking,
                "column-added",
                format!("schema.{}", col.name.value),
                format!("optional column `{}` added", col.name.value),
                Some((Side::New, col.name.span)),
            );
        }
    }
    for o in &old.schema {
        let Some(n) = new.column(&o.name) else { continue };
        let path = format!("schema.{}", o.name.value);
        let at = Some((Side::New, n.data_type.span));
        let (ot, nt) = (&o.data_type.value, &n.data_type.value);
        if ot != nt {
            if ot.widens_to(nt) {
                d.push(
                    Impact::NonBreaking,
                    "type-widened",
                    path.clone(),
                    format!("column `{}` widened from `{ot}` to `{nt}`", o.name.value),
                    at,
                );
            } else if nt.widens_to(ot) {
                d.push(
                    Impact::Breaking,
                    "type-narrowed",
                    path.clone(),
                    format!(
                        "column `{}` narrowed from `{ot}` to `{nt}`; existing values may not fit",
                        o.name.value
                    ),
                    at,
                );
            } else {
                d.push(
                    Impact::Breaking,
                    "type-changed",
                    path.clone(),
                    format!("column `{}` changed type from `{ot}` to `{nt}`", o.name.value),
                    at,
                );
            }
        }
        if !o.required && n.required {
            d.push(
                Impact::Breaking,
                "column-now-required",
                path.clone(),
                format!(
                    "column `{}` became required; producers that omit it are rejected",
                    o.name.value
                ),
                Some((Side::New, n.name.span)),
            );
        } else if o.required && !n.required {
            d.push(
                Impact::NonBreaking,
                "column-now-optional",
                path.clone(),
                format!("column `{}` became optional; readers may now see nulls", o.name.value),
                Some((Side::New, n.name.span)),
            );
        }
        if o.pii != n.pii || o.classification != n.classification {
            d.push(
                Impact::NonBreaking,
                "classification-changed",
                path.clone(),
                format!(
                    "PII tag or classification of `{}` changed; who may see it changes",
                    o.name.value
                ),
                Some((Side::New, n.name.span)),
            );
        }
        if o.description != n.description || o.tags != n.tags {
            d.push(
                Impact::Descriptive,
                "column-described",
                path,
                format!("description or tags of `{}` changed", o.name.value),
                None,
            );
        }
    }
}

fn diff_checks(d: &mut Differ<'_>) {
    let (old, new) = (d.old, d.new);
    for o in &old.quality {
        if let CheckKind::AcceptedValues { column, values } = &o.kind {
            let now = new.quality.iter().find_map(|q| match &q.kind {
                CheckKind::AcceptedValues { column: c, values: v } if c.value == column.value => Some(v),
                _ => None,
            });
            match now {
                Some(v) => {
                    let removed: Vec<&String> = values.iter().filter(|x| !v.contains(x)).collect();
                    let added: Vec<&String> = v.iter().filter(|x| !values.contains(x)).collect();
                    if !removed.is_empty() {
                        d.push(Impact::Breaking, "accepted-values-removed", format!("quality.accepted_values.{}", column.value), format!("accepted values of `{}` narrowed: {} removed; producers sending them are rejected", column.value, removed.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")), Some((Side::New, new.quality.iter().find(|q| matches!(&q.kind, CheckKind::AcceptedValues { column: c, .. } if c.value == column.value)).map_or(o.span, |q| q.span))));
                    }
                    if !added.is_empty() {
                        d.push(
                            Impact::NonBreaking,
                            "accepted-values-added",
                            format!("quality.accepted_values.{}", column.value),
                            format!(
                                "accepted values of `{}` widened: {} added",
                                column.value,
                                added.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                            ),
                            None,
                        );
                    }
                }
                None => d.push(
                    Impact::NonBreaking,
                    "check-removed",
                    format!("quality.accepted_values.{}", column.value),
                    format!("accepted values check on `{}` removed", column.value),
                    None,
                ),
            }
        }
    }
    let sig = |c: &Contract| {
        c.quality
            .iter()
            .filter(|q| !matches!(q.kind, CheckKind::AcceptedValues { .. }))
            .map(|q| crate::json::check_json(q).to_string())
            .collect::<Vec<_>>()
    };
    let (so, sn) = (sig(old), sig(new));
    let removed = so.iter().filter(|s| !sn.contains(s)).count();
    let added = sn.iter().filter(|s| !so.contains(s)).count();
    if removed + added > 0 {
        d.push(
            Impact::NonBreaking,
            "checks-changed",
            "quality",
            format!("quality checks changed: {added} added or changed, {removed} removed or changed"),
            None,
        );
    }
}
