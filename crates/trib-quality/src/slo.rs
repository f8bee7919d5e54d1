//! SLOs measured from what the product did, not from what it declares.
//!
//! Each measurement covers what happened since the previous one (a cursor per SLO
//! remembers how far it read) and is a ratio of good to total events:
//!
//! | SLO | good / total | objective |
//! |---|---|---|
//! | freshness | 1 if now − newest event (or commit) ≤ `sla.freshness`, per measurement | `[certification] freshness_objective` |
//! | completeness | rows committed within `sla.completeness.within` of their event time / rows committed | `sla.completeness.target` |
//! | validity | records accepted into the table / records received (accepted + dead-lettered) | `sla.validity` |
//! | availability | serving requests answered / requests that did not fail on our side (from the audit) | `sla.availability` |
//! | checks | error-severity check runs passing / check runs | `[certification] checks_objective` |
//!
//! Over a rolling window the sums give the attainment and the error budget left:
//! `1 − bad / ((1 − objective) · total)`; at or below zero the budget is exhausted.

use crate::Result;
use crate::store::{SystemTable, lit, micros, millis, numbers, texts, utc};
use arrow::array::{
    Array, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;
use trib_core::settings::CertificationSettings;
use trib_lake::{Lake, ProductTable, TableKind};
use trib_spec::{CheckSeverity, Contract, Layer, Source};

pub const TABLE: &str = "slo_measurements";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SloKind {
    Freshness,
    Completeness,
    Validity,
    Availability,
    Checks,
}

impl SloKind {
    pub const ALL: [SloKind; 5] = [
        SloKind::Freshness,
        SloKind::Completeness,
        SloKind::Validity,
        SloKind::Availability,
        SloKind::Checks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SloKind::Freshness => "freshness",
            SloKind::Completeness => "completeness",
            SloKind::Validity => "validity",
            SloKind::Availability => "availability",
            SloKind::Checks => "checks",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One SLO measured once.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub product: String,
    pub major: u64,
    pub slo: SloKind,
    pub at_ms: i64,
    /// The indicator as a user reads it: age in seconds for freshness, a percentage otherwise.
    pub value: Option<f64>,
    /// The objective, in percent.
    pub target: f64,
    pub good: f64,
    pub total: f64,
    /// Whether this measurement meets the SLO.
    pub met: bool,
    /// How far this measurement read, for the next one.
    pub cursor: String,
    pub detail: String,
}

/// An SLO over a rolling window.
#[derive(Debug, Clone, PartialEq)]
pub struct Attainment {
    pub slo: SloKind,
    pub target: f64,
    pub good: f64,
    pub total: f64,
}

impl Attainment {
    /// Percent of good events, when there were any.
    pub fn percent(&self) -> Option<f64> {
        (self.total > 0.0).then(|| 100.0 * self.good / self.total)
    }

    /// Share of the error budget left: 1 untouched, 0 or less exhausted.
    pub fn budget_left(&self) -> f64 {
        if self.total <= 0.0 {
            return 1.0;
        }
        let allowed = (1.0 - self.target / 100.0) * self.total;
        let bad = self.total - self.good;
        if allowed <= 0.0 {
            return if bad > 0.0 { 0.0 } else { 1.0 };
        }
        1.0 - bad / allowed
    }

    pub fn exhausted(&self) -> bool {
        self.total > 0.0 && self.budget_left() <= 0.0
    }
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, utc()), false),
        Field::new("product", DataType::Utf8, false),
        Field::new("major", DataType::UInt64, false),
        Field::new("slo", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("target", DataType::Float64, false),
        Field::new("good", DataType::Float64, false),
        Field::new("total", DataType::Float64, false),
        Field::new("met", DataType::Boolean, false),
        Field::new("cursor", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
    ]))
}

/// The SLOs a contract declares (plus `checks` when it has error-severity checks).
pub fn declared(contract: &Contract, settings: &CertificationSettings) -> Vec<(SloKind, f64)> {
    let mut out = Vec::new();
    if contract.sla.freshness.is_some() {
        out.push((SloKind::Freshness, settings.freshness_objective));
    }
    if let Some(c) = &contract.sla.completeness
        && contract.event_time.is_some()
    {
        out.push((SloKind::Completeness, c.target));
    }
    if let Some(v) = contract.sla.validity
        && matches!(contract.source, Source::Stream(_))
    {
        out.push((SloKind::Validity, v));
    }
    if let Some(a) = contract.sla.availability {
        out.push((SloKind::Availability, a));
    }
    if contract.quality.iter().any(|q| q.severity == CheckSeverity::Error) {
        out.push((SloKind::Checks, settings.checks_objective));
    }
    out
}

/// The measurements table and the measuring.
pub struct Slos {
    lake: Lake,
    table: SystemTable,
    settings: CertificationSettings,
}

impl Slos {
    pub async fn open(lake: &Lake, settings: CertificationSettings) -> Result<Self> {
        Ok(Self {
            lake: lake.clone(),
            table: SystemTable::open(lake, TABLE, schema()).await?,
            settings,
        })
    }

    /// Measures every declared SLO of `contract` since its last measurement. SLOs with
    /// nothing new to count (no rows arrived, no requests) give no measurement.
    pub async fn measure(&mut self, contract: &Contract, now_ms: i64) -> Result<Vec<Measurement>> {
        let product = contract.product.value.to_string();
        let major = contract.major();
        let mut out = Vec::new();
        if contract.layer == Layer::View {
            return Ok(out);
        }
        for (slo, target) in declared(contract, &self.settings) {
            let cursor = self.cursor(&product, major, slo).await?;
            let m = match slo {
                SloKind::Freshness => self.freshness(contract, now_ms).await?,
                SloKind::Completeness => self.completeness(contract, cursor.as_deref()).await?,
                SloKind::Validity => self.validity(contract, cursor.as_deref()).await?,
                SloKind::Availability => self.availability(contract, cursor.as_deref()).await?,
                SloKind::Checks => self.checks(contract, cursor.as_deref()).await?,
            };
            let Some(Sample {
                value,
                good,
                total,
                cursor,
                detail,
            }) = m
            else {
                continue;
            };
            let met = match slo {
                // Each freshness measurement is judged on its own.
                SloKind::Freshness => good >= total,
                _ => total <= 0.0 || 100.0 * good / total >= target,
            };
            out.push(Measurement {
                product: product.clone(),
                major,
                slo,
                at_ms: now_ms,
                value,
                target,
                good,
                total,
                met,
                cursor,
                detail,
            });
        }
        Ok(out)
    }

    pub async fn record(&mut self, ms: &[Measurement]) -> Result<()> {
        if ms.is_empty() {
            return Ok(());
        }
        let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut product = StringBuilder::new();
        let mut major = UInt64Builder::new();
        let mut slo = StringBuilder::new();
        let mut value = Float64Builder::new();
        let mut target = Float64Builder::new();
        let mut good = Float64Builder::new();
        let mut total = Float64Builder::new();
        let mut met = BooleanBuilder::new();
        let mut cursor = StringBuilder::new();
        let mut detail = StringBuilder::new();
        for m in ms {
            at.append_value(micros(m.at_ms));
            product.append_value(&m.product);
            major.append_value(m.major);
            slo.append_value(m.slo.as_str());
            value.append_option(m.value.filter(|v| v.is_finite()));
            target.append_value(m.target);
            good.append_value(m.good);
            total.append_value(m.total);
            met.append_value(m.met);
            cursor.append_value(&m.cursor);
            detail.append_value(&m.detail);
        }
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(at.finish()),
                Arc::new(product.finish()),
                Arc::new(major.finish()),
                Arc::new(slo.finish()),
                Arc::new(value.finish()),
                Arc::new(target.finish()),
                Arc::new(good.finish()),
                Arc::new(total.finish()),
                Arc::new(met.finish()),
                Arc::new(cursor.finish()),
                Arc::new(detail.finish()),
            ],
        )?;
        self.table.append(&batch, None).await
    }

    /// Sums per SLO of the product's measurements since `since_ms`.
    pub async fn attainment(&mut self, contract: &Contract, since_ms: i64) -> Result<Vec<Attainment>> {
        let sql = format!(
            "SELECT slo, sum(good) AS good, sum(total) AS total FROM t WHERE product = {} AND major = {} \
             AND at >= to_timestamp_micros({}) GROUP BY slo",
            lit(&contract.product.value.to_string()),
            contract.major(),
            micros(since_ms)
        );
        let rows = self.table.query(&sql).await?;
        let mut out = Vec::new();
        for (slo, target) in declared(contract, &self.settings) {
            let mut a = Attainment {
                slo,
                target,
                good: 0.0,
                total: 0.0,
            };
            for b in &rows {
                let names = texts(b.column(0))?;
                let good = numbers(b.column(1))?;
                let total = numbers(b.column(2))?;
                for i in 0..b.num_rows() {
                    if names.value(i) == slo.as_str() {
                        a.good = good.value(i);
                        a.total = total.value(i);
                    }
                }
            }
            out.push(a);
        }
        Ok(out)
    }

    /// When the product last missed an SLO, and when it was first measured.
    pub async fn history_bounds(&mut self, contract: &Contract) -> Result<(Option<i64>, Option<i64>)> {
        let sql = format!(
            "SELECT max(CASE WHEN met THEN NULL ELSE at END) AS breach, min(at) AS first FROM t \
             WHERE product = {} AND major = {}",
            lit(&contract.product.value.to_string()),
            contract.major()
        );
        let rows = self.table.query(&sql).await?;
        let Some(b) = rows.iter().find(|b| b.num_rows() > 0) else {
            return Ok((None, None));
        };
        let breach = millis(b.column(0))?;
        let first = millis(b.column(1))?;
        Ok((
            (!breach.is_null(0)).then(|| breach.value(0)),
            (!first.is_null(0)).then(|| first.value(0)),
        ))
    }

    /// Measurements of one product, oldest first, for charts.
    pub async fn series(
        &mut self,
        contract: &Contract,
        since_ms: i64,
    ) -> Result<Vec<(SloKind, i64, bool, Option<f64>)>> {
        let sql = format!(
            "SELECT slo, at, met, value FROM t WHERE product = {} AND major = {} AND at >= to_timestamp_micros({}) ORDER BY at",
            lit(&contract.product.value.to_string()),
            contract.major(),
            micros(since_ms)
        );
        let mut out = Vec::new();
        for b in self.table.query(&sql).await? {
            let slo = texts(b.column(0))?;
            let at = millis(b.column(1))?;
            let met = arrow::compute::cast(b.column(2), &DataType::Boolean)?;
            let met = arrow::array::AsArray::as_boolean(&met).clone();
            let value = numbers(b.column(3))?;
            for i in 0..b.num_rows() {
                if let Some(k) = SloKind::parse(slo.value(i)) {
                    out.push((
                        k,
                        at.value(i),
                        met.value(i),
                        (!value.is_null(i)).then(|| value.value(i)),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The newest measurement of each SLO of a product: (met, detail, value, target).
    pub async fn latest(
        &mut self,
        contract: &Contract,
    ) -> Result<std::collections::BTreeMap<SloKind, (bool, String, Option<f64>)>> {
        let sql = format!(
            "SELECT slo, last_value(met ORDER BY at) AS met, last_value(detail ORDER BY at) AS detail, \
             last_value(value ORDER BY at) AS value FROM t WHERE product = {} AND major = {} GROUP BY slo",
            lit(&contract.product.value.to_string()),
            contract.major()
        );
        let mut out = std::collections::BTreeMap::new();
        for b in self.table.query(&sql).await? {
            let slo = texts(b.column(0))?;
            let met = arrow::compute::cast(b.column(1), &DataType::Boolean)?;
            let met = arrow::array::AsArray::as_boolean(&met).clone();
            let detail = texts(b.column(2))?;
            let value = numbers(b.column(3))?;
            for i in 0..b.num_rows() {
                if let Some(k) = SloKind::parse(slo.value(i)) {
                    out.insert(
                        k,
                        (
                            met.value(i),
                            detail.value(i).to_string(),
                            (!value.is_null(i)).then(|| value.value(i)),
                        ),
                    );
                }
            }
        }
        Ok(out)
    }

    async fn cursor(&mut self, product: &str, major: u64, slo: SloKind) -> Result<Option<String>> {
        let sql = format!(
            "SELECT cursor FROM t WHERE product = {} AND major = {major} AND slo = {} ORDER BY at DESC LIMIT 1",
            lit(product),
            lit(slo.as_str())
        );
        for b in self.table.query(&sql).await? {
            if b.num_rows() > 0 {
                return Ok(Some(texts(b.column(0))?.value(0).to_string()));
            }
        }
        Ok(None)
    }

    async fn freshness(&self, contract: &Contract, now_ms: i64) -> Result<Option<Sample>> {
        let Some(limit) = contract.sla.freshness else {
            return Ok(None);
        };
        let Some(table) = trib_lake::open_existing(&self.lake, contract, TableKind::Data).await? else {
            return Ok(Some(Sample {
                value: None,
                good: 0.0,
                total: 1.0,
                cursor: String::new(),
                detail: "no table yet".into(),
            }));
        };
        let newest_ms = match &contract.event_time {
            // The files' statistics hold each file's newest value: no scan, unless a
            // file has none.
            Some(col) => match newest_from_stats(&table, &col.value) {
                Some(ms) => Some(ms),
                None => {
                    let sql = format!("SELECT max({}) AS newest FROM t", crate::store::ident(&col.value));
                    let rows = table.query(&sql).await?;
                    match rows.iter().find(|b| b.num_rows() > 0) {
                        Some(b) => {
                            let v = millis(b.column(0))?;
                            (!v.is_null(0)).then(|| v.value(0))
                        }
                        None => None,
                    }
                }
            },
            // Without an event time, the newest commit that added data.
            None => table
                .delta()
                .snapshot()
                .ok()
                .and_then(|s| s.log_data().iter().map(|f| f.modification_time()).max()),
        };
        Ok(Some(match newest_ms {
            Some(newest) => {
                let age_s = ((now_ms - newest) as f64 / 1000.0).max(0.0);
                let good = if age_s <= limit.as_secs() as f64 { 1.0 } else { 0.0 };
                Sample {
                    value: Some(age_s),
                    good,
                    total: 1.0,
                    cursor: String::new(),
                    detail: format!(
                        "newest {} is {} old (limit {limit})",
                        if contract.event_time.is_some() {
                            "event"
                        } else {
                            "commit"
                        },
                        trib_core::duration::human(age_s as u64)
                    ),
                }
            }
            None => Sample {
                value: None,
                good: 0.0,
                total: 1.0,
                cursor: String::new(),
                detail: "no rows yet".into(),
            },
        }))
    }

    async fn completeness(&self, contract: &Contract, cursor: Option<&str>) -> Result<Option<Sample>> {
        let (Some(c), Some(event)) = (&contract.sla.completeness, &contract.event_time) else {
            return Ok(None);
        };
        let Some(mut table) = trib_lake::open_existing(&self.lake, contract, TableKind::Data).await? else {
            return Ok(None);
        };
        table.refresh().await?;
        let version = table.version().unwrap_or(0);
        let after = cursor.and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
        if version <= after {
            return Ok(None);
        }
        let (schema, batches) = table.changes(Some(after), version).await?;
        let (Ok(ev), Ok(ct), Ok(kind)) = (
            schema.index_of(&event.value),
            schema.index_of("_commit_timestamp"),
            schema.index_of("_change_type"),
        ) else {
            return Ok(None);
        };
        let within_ms = c.within.as_millis() as i64;
        let (mut good, mut total) = (0.0, 0.0);
        for b in &batches {
            let events = millis(b.column(ev))?;
            let commits = millis(b.column(ct))?;
            let kinds = texts(b.column(kind))?;
            for i in 0..b.num_rows() {
                if !matches!(kinds.value(i), "insert" | "update_postimage") || events.is_null(i) {
                    continue;
                }
                total += 1.0;
                if commits.value(i) - events.value(i) <= within_ms {
                    good += 1.0;
                }
            }
        }
        if total == 0.0 {
            return Ok(None);
        }
        Ok(Some(Sample {
            value: Some(100.0 * good / total),
            good,
            total,
            cursor: version.to_string(),
            detail: format!(
                "{good} of {total} rows committed within {} of their `{}`",
                c.within, event.value
            ),
        }))
    }

    async fn validity(&self, contract: &Contract, cursor: Option<&str>) -> Result<Option<Sample>> {
        let data = trib_lake::open_existing(&self.lake, contract, TableKind::Data).await?;
        let dead = trib_lake::open_existing(&self.lake, contract, TableKind::DeadLetters).await?;
        let data_rows = rows_now(data.as_ref());
        let dead_rows = rows_now(dead.as_ref());
        let (mut data_before, mut dead_before) = (0.0, 0.0);
        if let Some((a, b)) = cursor.and_then(|c| c.split_once(':')) {
            data_before = a.parse().unwrap_or(0.0);
            dead_before = b.parse().unwrap_or(0.0);
        }
        let accepted = (data_rows - data_before).max(0.0);
        let rejected = (dead_rows - dead_before).max(0.0);
        let total = accepted + rejected;
        if total == 0.0 {
            return Ok(None);
        }
        Ok(Some(Sample {
            value: Some(100.0 * accepted / total),
            good: accepted,
            total,
            cursor: format!("{data_rows}:{dead_rows}"),
            detail: format!("{accepted} records accepted, {rejected} dead-lettered"),
        }))
    }

    async fn availability(&self, contract: &Contract, cursor: Option<&str>) -> Result<Option<Sample>> {
        let Ok(audit) = ProductTable::open_url(&self.lake, self.lake.system_url("audit"), "_trib.audit").await else {
            return Ok(None);
        };
        let label = format!("{}@v{}", contract.product.value, contract.major());
        let since = cursor.and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        let sql = format!(
            "SELECT outcome, count(*) AS n, max(at) AS last FROM t WHERE array_has(products, {}) AND at > to_timestamp_micros({since}) GROUP BY outcome",
            lit(&label)
        );
        let rows = trib_lake::query_table(&audit, "_trib.audit", &sql).await?;
        let (mut ok, mut failed, mut last) = (0.0, 0.0, since);
        for b in &rows {
            let outcome = texts(b.column(0))?;
            let n = numbers(b.column(1))?;
            let at = arrow::compute::cast(b.column(2), &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let at = arrow::compute::cast(&at, &DataType::Int64)?;
            let at = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&at).clone();
            for i in 0..b.num_rows() {
                match outcome.value(i) {
                    "ok" => ok += n.value(i),
                    "error" => failed += n.value(i),
                    // A refusal is the caller's doing, not an outage.
                    _ => {}
                }
                last = last.max(at.value(i));
            }
        }
        let total = ok + failed;
        if total == 0.0 {
            return Ok(None);
        }
        Ok(Some(Sample {
            value: Some(100.0 * ok / total),
            good: ok,
            total,
            cursor: last.to_string(),
            detail: format!("{ok} requests answered, {failed} failed"),
        }))
    }

    async fn checks(&mut self, contract: &Contract, cursor: Option<&str>) -> Result<Option<Sample>> {
        let mut results = crate::results::Results::open(&self.lake).await?;
        let since = cursor.and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        let sql = format!(
            "SELECT status, count(*) AS n, max(at) AS last FROM t WHERE product = {} AND major = {} AND severity = 'error' \
             AND at > to_timestamp_micros({since}) GROUP BY status",
            lit(&contract.product.value.to_string()),
            contract.major()
        );
        let rows = results.query(&sql).await?;
        let (mut pass, mut total, mut last) = (0.0, 0.0, since);
        for b in &rows {
            let status = texts(b.column(0))?;
            let n = numbers(b.column(1))?;
            let at = arrow::compute::cast(b.column(2), &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let at = arrow::compute::cast(&at, &DataType::Int64)?;
            let at = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&at).clone();
            for i in 0..b.num_rows() {
                if status.value(i) == "pass" {
                    pass += n.value(i);
                }
                total += n.value(i);
                last = last.max(at.value(i));
            }
        }
        if total == 0.0 {
            return Ok(None);
        }
        Ok(Some(Sample {
            value: Some(100.0 * pass / total),
            good: pass,
            total,
            cursor: last.to_string(),
            detail: format!("{pass} of {total} error-severity check runs passed"),
        }))
    }
}

struct Sample {
    value: Option<f64>,
    good: f64,
    total: f64,
    cursor: String,
    detail: String,
}

/// The newest value of a timestamp or date column over the table's files, from the
/// statistics in the log (`maxValues`, milliseconds), or `None` when a file with rows
/// has no statistic for it (then the caller scans).
fn newest_from_stats(table: &ProductTable, column: &str) -> Option<i64> {
    let snapshot = table.delta().snapshot().ok()?;
    let mut newest: Option<i64> = None;
    for f in snapshot.log_data().iter() {
        if f.num_records() == Some(0) {
            continue;
        }
        let stats: serde_json::Value = serde_json::from_str(&f.stats()?).ok()?;
        let v = stats.get("maxValues")?.get(column)?.as_str()?;
        let ms = chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| t.timestamp_millis())
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis())
            })
            .ok()?;
        newest = Some(newest.map_or(ms, |n| n.max(ms)));
    }
    newest
}

/// A table's row count from the log's file statistics (0 without a table). Tables fed
/// by ingestion are append-only, so the difference between two counts is what arrived.
fn rows_now(t: Option<&ProductTable>) -> f64 {
    t.and_then(|t| t.delta().snapshot().ok())
        .map(|s| s.log_data().iter().map(|f| f.num_records().unwrap_or(0) as f64).sum())
        .unwrap_or(0.0)
}
