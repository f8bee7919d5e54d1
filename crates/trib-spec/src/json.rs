//! A plain JSON view of a contract, normalized (lists are lists, durations also in
//! seconds), for policies, the API and other tools.

use crate::model::*;
use serde_json::{Map, Value, json};

pub fn contract_json(c: &Contract) -> Value {
    let strings =
        |v: &[crate::decode::Spanned<String>]| Value::from(v.iter().map(|s| s.value.clone()).collect::<Vec<_>>());
    let source = match &c.source {
        Source::Stream(s) => json!({ "kind": s.kind.as_str(), "format": s.format.as_str(), "topic": s.topic }),
        Source::Model(m) => json!({
            "kind": "model",
            "inputs": m.inputs.iter().map(|i| i.value.to_string()).collect::<Vec<_>>(),
            "transform": m.transform.value,
            "sql": m.sql,
            "materialized": m.materialized.as_str(),
        }),
    };
    let schema: Vec<Value> = c
        .schema
        .iter()
        .map(|col| {
            json!({
                "name": col.name.value,
                "type": col.data_type.value.to_string(),
                "required": col.required,
                "pii": col.pii,
                "classification": col.classification.map(Classification::as_str),
                "description": col.description,
                "tags": col.tags,
            })
        })
        .collect();
    let quality: Vec<Value> = c.quality.iter().map(check_json).collect();
    let duration = |d: Option<trib_core::Duration>| d.map(|d| json!({ "text": d.to_string(), "seconds": d.as_secs() }));
    json!({
        "product": c.product.value.to_string(),
        "domain": c.domain(),
        "name": c.product.name(),
        "version": c.version.value.to_string(),
        "major": c.major(),
        "owner": c.owner,
        "contact": { "email": c.contact.email, "slack": c.contact.slack, "webhook": c.contact.webhook },
        "description": c.description,
        "status": c.status.as_str(),
        "layer": c.layer.as_str(),
        "tags": c.tags,
        "source": source,
        "key": strings(&c.key),
        "sequence_by": c.sequence_by.as_ref().map(|s| s.value.clone()),
        "event_id": c.event_id.as_ref().map(|s| s.value.clone()),
        "event_time": c.event_time.as_ref().map(|s| s.value.clone()),
        "watermark": c.watermark.as_ref().map(|w| json!({ "allowed_lateness": w.allowed_lateness.to_string(), "allowed_lateness_seconds": w.allowed_lateness.as_secs(), "late": w.late.as_str() })),
        "partition_by": c.partition_by.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "cluster_by": strings(&c.cluster_by),
        "schema": schema,
        "sla": {
            "freshness": duration(c.sla.freshness),
            "availability": c.sla.availability,
            "validity": c.sla.validity,
            "completeness": c.sla.completeness.as_ref().map(|x| json!({ "within": x.within.to_string(), "within_seconds": x.within.as_secs(), "target": x.target })),
        },
        "access": c.access.iter().map(|g| json!({ "role": g.role.value, "level": g.level.as_str(), "row_filter": g.row_filter.as_ref().map(|f| f.value.clone()) })).collect::<Vec<_>>(),
        "quality": quality,
        "retention": duration(c.retention),
        "tiers": c.tiers.iter().map(|t| json!({ "resolution": t.resolution.map_or_else(|| "raw".to_string(), |r| r.to_string()), "retention": t.retention.to_string(), "retention_seconds": t.retention.as_secs(), "product": t.product.as_ref().map(|p| p.value.to_string()), "group_by": t.group_by.iter().map(|g| g.value.clone()).collect::<Vec<_>>() })).collect::<Vec<_>>(),
    })
}

/// One quality check as JSON; positions are not part of it.
pub fn check_json(q: &QualityCheck) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), q.kind.name().into());
    m.insert("severity".into(), q.severity.as_str().into());
    if let Some(n) = &q.name {
        m.insert("name".into(), n.clone().into());
    }
    let cols: Vec<String> = q.kind.columns().iter().map(|c| c.value.clone()).collect();
    m.insert("columns".into(), cols.into());
    match &q.kind {
        CheckKind::AcceptedValues { values, .. } => {
            m.insert("values".into(), values.clone().into());
        }
        CheckKind::Range { min, max, .. } => {
            m.insert("min".into(), min.as_ref().map(ToString::to_string).into());
            m.insert("max".into(), max.as_ref().map(ToString::to_string).into());
        }
        CheckKind::Regex { pattern, .. } => {
            m.insert("pattern".into(), pattern.clone().into());
        }
        CheckKind::RowCount { min, max } => {
            m.insert("min".into(), (*min).into());
            m.insert("max".into(), (*max).into());
        }
        CheckKind::Freshness { max_age, .. } => {
            m.insert("max_age_seconds".into(), max_age.as_secs().into());
        }
        CheckKind::Relationships { to, field, .. } => {
            m.insert("to".into(), to.value.to_string().into());
            m.insert("field".into(), field.clone().into());
        }
        CheckKind::Expect { sql, on_violation } => {
            m.insert("sql".into(), sql.value.clone().into());
            m.insert("on_violation".into(), on_violation.as_str().into());
        }
        CheckKind::Sql(query) => {
            m.insert("sql".into(), query.value.clone().into());
        }
        CheckKind::Anomaly {
            metric,
            window,
            threshold,
        } => {
            m.insert("metric".into(), metric.as_str().into());
            m.insert("window".into(), (*window).into());
            m.insert("threshold".into(), (*threshold).into());
        }
        CheckKind::Unique(_) | CheckKind::NotNull(_) => {}
    }
    if q.block {
        m.insert("block".into(), true.into());
    }
    Value::Object(m)
}
