//! The contract's `quality` section compiled to SQL and run by DataFusion, over new rows
//! (a batch being ingested, a model's commit) or over the whole product.
//!
//! Every per-row measure (NULLs, values outside a set or range, regex misses, failed
//! expectations), the row count, the newest event time and the anomaly metrics are
//! computed in one aggregate pass (`count(*) FILTER (WHERE …)`); `unique`,
//! `relationships` and custom `sql` checks are one query each. Failing checks add a
//! sample of their failing rows.

use crate::anomaly;
use crate::results::Results;
use crate::store::{ident, lit};
use crate::{Error, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::prelude::SessionContext;
use std::collections::BTreeMap;
use std::sync::Arc;
use trib_core::Clock;
use trib_lake::{Committed, Lake, ProductTable, TableKind};
use trib_spec::{AnomalyMetric, Bound, CheckKind, CheckSeverity, Contract, Project, QualityCheck};

/// Rows of a failing check kept as its sample.
pub const SAMPLE_ROWS: usize = 5;

/// What a check run looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The rows of one batch or model commit.
    NewRows,
    /// The whole product at its newest version.
    Product,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::NewRows => "new_rows",
            Scope::Product => "product",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// The check could not run (bad SQL, a missing referenced product).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The check's name, or its kind and columns (`not_null(order_id)`).
    pub check: String,
    pub kind: &'static str,
    pub severity: CheckSeverity,
    pub block: bool,
    pub status: Status,
    /// Rows looked at.
    pub rows: u64,
    /// Rows that break the check (for row checks), or 0.
    pub failing: u64,
    /// The measured value: failing rows, row count, age in seconds or the anomaly metric.
    pub observed: Option<f64>,
    pub message: String,
    /// Up to [`SAMPLE_ROWS`] failing rows as a JSON array.
    pub sample: Option<String>,
}

impl CheckResult {
    /// An error-severity failure (or a check that could not run).
    pub fn is_error(&self) -> bool {
        self.severity == CheckSeverity::Error && self.status != Status::Pass
    }
}

/// The checks of one product run once.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub id: String,
    pub product: String,
    pub major: u64,
    pub scope: Scope,
    /// Table version looked at, when the rows come from the table.
    pub version: Option<u64>,
    pub at_ms: i64,
    pub results: Vec<CheckResult>,
}

impl CheckRun {
    pub fn failed(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.status != Status::Pass)
    }

    /// Why a model commit must stop, when a blocking error-severity check failed.
    pub fn blocking_reason(&self) -> Option<String> {
        let blocking: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.block && r.is_error())
            .map(|r| format!("`{}`: {}", r.check, r.message))
            .collect();
        (!blocking.is_empty()).then(|| blocking.join("; "))
    }
}

/// Runs checks and records their results in `_trib.quality_results`.
pub struct Checker {
    lake: Lake,
    project: Arc<Project>,
    clock: Arc<dyn Clock>,
    results: tokio::sync::Mutex<Results>,
    /// Runs checked but not yet written, for [`Checker::flush`].
    pending: std::sync::Mutex<Vec<CheckRun>>,
    /// Anomaly checks' past values by (product, major, scope), newest first: read from
    /// the table once, then kept up to date here.
    history: tokio::sync::Mutex<BTreeMap<(String, u64, &'static str), History>>,
}

/// Past values of each anomaly check, by check name, newest first.
type History = BTreeMap<String, Vec<f64>>;

/// How one check is computed.
enum Plan {
    /// Failing rows are those matching `predicate`: counted in the aggregate pass.
    Rows { predicate: String },
    /// A query returning failing rows; `count` is the failing-row count over it.
    Query { sql: String, count: String },
    /// A value from the aggregate pass, judged by the check.
    Value { expr: String },
    /// Not applicable in this scope.
    Skip,
    /// Cannot run: the message says why.
    Broken(String),
}

impl Checker {
    pub async fn open(lake: Lake, project: Arc<Project>, clock: Arc<dyn Clock>) -> Result<Self> {
        let results = Results::open(&lake).await?;
        Ok(Self {
            lake,
            project,
            clock,
            results: tokio::sync::Mutex::new(results),
            pending: std::sync::Mutex::new(Vec::new()),
            history: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// Checks `rows` like [`Checker::check_rows`] but leaves the results to be written
    /// by the next [`Checker::flush`]: a model commit waits for its checks, not for
    /// their bookkeeping.
    pub async fn check_rows_deferred(&self, contract: &Contract, rows: &RecordBatch) -> Result<CheckRun> {
        let run = self.run_rows(contract, rows).await?;
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(run.clone());
        Ok(run)
    }

    async fn run_rows(&self, contract: &Contract, rows: &RecordBatch) -> Result<CheckRun> {
        let provider = MemTable::try_new(rows.schema(), vec![vec![rows.clone()]]).map_err(|e| Error::System {
            table: "batch".into(),
            source: e,
        })?;
        self.run(
            contract,
            Arc::new(provider),
            Scope::NewRows,
            None,
            rows.num_rows() as u64,
        )
        .await
    }

    /// Writes the results of deferred runs, all in one commit.
    pub async fn flush(&self) -> Result<usize> {
        let mut results = self.results.lock().await;
        let runs = std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if runs.is_empty() {
            return Ok(0);
        }
        if let Err(e) = results.record_all(&runs, None).await {
            // Kept for the next flush rather than lost.
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let later = std::mem::take(&mut *pending);
            *pending = runs;
            pending.extend(later);
            return Err(e);
        }
        Ok(runs.len())
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Checks `rows` (a batch or a model commit) and records the results.
    pub async fn check_rows(&self, contract: &Contract, rows: &RecordBatch) -> Result<CheckRun> {
        let run = self.run_rows(contract, rows).await?;
        self.results.lock().await.record(&run, None).await?;
        Ok(run)
    }

    /// Checks the whole product at its newest version, with its schema against the
    /// contract, and records the results.
    pub async fn check_product(&self, contract: &Contract) -> Result<CheckRun> {
        let table = ProductTable::open_or_create(&self.lake, contract, TableKind::Data).await?;
        let version = table.version();
        let provider = trib_lake::snapshot_provider(table.delta())
            .await
            .map_err(|e| Error::System {
                table: contract.product.value.to_string(),
                source: e,
            })?;
        let mut run = self.run(contract, provider, Scope::Product, version, 0).await?;
        run.results.push(schema_check(contract, &table.schema()));
        self.results.lock().await.record(&run, None).await?;
        Ok(run)
    }

    /// Checks the rows committed to the product since the last time this ran (all of
    /// them the first time), and records the results with the version reached, in one
    /// commit: a crash between the two checks them again rather than never.
    pub async fn check_new(&self, contract: &Contract) -> Result<Option<CheckRun>> {
        self.check_since(contract, None).await
    }

    /// [`Checker::check_new`] for a writer that holds the rows it committed: `committed`
    /// are the batches (in the contract's schema) of versions `first..=last`, one version
    /// each. When they are all the table gained since the last check, they are checked
    /// where they are instead of being read back.
    pub async fn check_committed(&self, contract: &Contract, committed: &Committed) -> Result<Option<CheckRun>> {
        self.check_since(contract, Some(committed)).await
    }

    async fn check_since(&self, contract: &Contract, committed: Option<&Committed>) -> Result<Option<CheckRun>> {
        if contract.quality.is_empty() {
            return Ok(None);
        }
        let mut table = ProductTable::open_or_create(&self.lake, contract, TableKind::Data).await?;
        table.refresh().await?;
        let Some(version) = table.version() else {
            return Ok(None);
        };
        let app_id = format!("checked:{}@v{}", contract.product.value, contract.major());
        let checked = self.results.lock().await.checked(&app_id).await?;
        if checked.is_some_and(|c| c >= version as i64) {
            return Ok(None);
        }
        let after = checked.and_then(|c| u64::try_from(c).ok());
        let started = std::time::Instant::now();
        let held = match committed {
            Some(c) if c.last == version && c.first >= 1 && c.first <= c.last => match after {
                Some(a) => a + 1 == c.first,
                None => table.was_empty_at(c.first - 1).await?,
            },
            _ => false,
        };
        let (schema, batches) = match committed.filter(|_| held) {
            Some(c) => {
                let batches = c
                    .batches
                    .iter()
                    .map(|b| table.stored_rows(b))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                (table.schema(), batches)
            }
            None => table.changes(after, version).await?,
        };
        let read = started.elapsed();
        // Only what was added, in the table's own columns.
        let keep: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.name().starts_with("_change_type") && !f.name().starts_with("_commit_"))
            .map(|(i, _)| i)
            .collect();
        let projected = Arc::new(schema.project(&keep)?);
        let mut rows = Vec::with_capacity(batches.len());
        let mut n = 0;
        for b in batches {
            let b = match b.column_by_name("_change_type").map(|c| c.as_string::<i32>().clone()) {
                Some(types) => {
                    let mask = arrow::array::BooleanArray::from_iter(
                        types
                            .iter()
                            .map(|t| Some(matches!(t, Some("insert" | "update_postimage")))),
                    );
                    arrow::compute::filter_record_batch(&b, &mask)?
                }
                None => b,
            };
            n += b.num_rows() as u64;
            rows.push(b.project(&keep)?);
        }
        let provider = MemTable::try_new(projected, vec![rows]).map_err(|e| Error::System {
            table: contract.product.value.to_string(),
            source: e,
        })?;
        let run = self
            .run(contract, Arc::new(provider), Scope::NewRows, Some(version), n)
            .await?;
        let checked = started.elapsed();
        self.results
            .lock()
            .await
            .record(&run, Some((&app_id, version as i64)))
            .await?;
        tracing::debug!(
            product = %contract.product.value,
            rows = n,
            in_memory = held,
            read_ms = read.as_secs_f64() * 1e3,
            checked_ms = (checked - read).as_secs_f64() * 1e3,
            recorded_ms = (started.elapsed() - checked).as_secs_f64() * 1e3,
            "new rows checked"
        );
        Ok(Some(run))
    }

    async fn run(
        &self,
        contract: &Contract,
        this: Arc<dyn TableProvider>,
        scope: Scope,
        version: Option<u64>,
        rows_hint: u64,
    ) -> Result<CheckRun> {
        let started = std::time::Instant::now();
        let product = contract.product.value.to_string();
        let major = contract.major();
        let at_ms = self.clock.now_millis();
        let ctx = SessionContext::new();
        let sys = |e| Error::System {
            table: product.clone(),
            source: e,
        };
        ctx.register_table("this", this).map_err(sys)?;
        let history = if contract
            .quality
            .iter()
            .any(|q| matches!(q.kind, CheckKind::Anomaly { .. }))
        {
            let mut cache = self.history.lock().await;
            let key = (product.clone(), major, scope.as_str());
            if !cache.contains_key(&key) {
                let past = self
                    .results
                    .lock()
                    .await
                    .anomaly_history(&product, major, scope)
                    .await?;
                cache.insert(key.clone(), past);
            }
            cache.get(&key).cloned().unwrap_or_default()
        } else {
            BTreeMap::new()
        };

        let plans: Vec<(String, Plan)> = contract
            .quality
            .iter()
            .enumerate()
            .map(|(i, q)| (check_name(q, i), self.plan(contract, q, scope)))
            .collect();
        // Relationships read other products: registered under `__ref_<i>`.
        for (i, q) in contract.quality.iter().enumerate() {
            if let CheckKind::Relationships { to, .. } = &q.kind
                && let Some(target) = self.project.latest(&to.value)
                && let Some(t) = trib_lake::open_existing(&self.lake, target, TableKind::Data).await?
            {
                let provider = trib_lake::snapshot_provider(t.delta()).await.map_err(sys)?;
                ctx.register_table(format!("__ref_{i}"), provider).map_err(sys)?;
            }
        }

        // One aggregate pass for every row predicate and value.
        let mut select = vec!["count(*) AS __rows".to_string()];
        for (i, (_, plan)) in plans.iter().enumerate() {
            match plan {
                Plan::Rows { predicate } => select.push(format!("count(*) FILTER (WHERE {predicate}) AS __c{i}")),
                Plan::Value { expr } => select.push(format!("CAST({expr} AS DOUBLE) AS __c{i}")),
                _ => {}
            }
        }
        let aggregate = one_row(&ctx, &format!("SELECT {} FROM this", select.join(", "))).await;
        let rows = match &aggregate {
            Ok(row) => row.get("__rows").copied().flatten().map_or(rows_hint, |r| r as u64),
            Err(_) => rows_hint,
        };

        let mut results = Vec::with_capacity(plans.len());
        for (i, ((name, plan), q)) in plans.into_iter().zip(&contract.quality).enumerate() {
            let mut r = CheckResult {
                check: name,
                kind: q.kind.name(),
                severity: q.severity,
                block: q.block,
                status: Status::Pass,
                rows,
                failing: 0,
                observed: None,
                message: String::new(),
                sample: None,
            };
            let col = format!("__c{i}");
            match plan {
                Plan::Skip => continue,
                Plan::Broken(m) => {
                    r.status = Status::Error;
                    r.message = m;
                }
                Plan::Rows { predicate } => match &aggregate {
                    Ok(row) => {
                        let failing = row.get(&col).copied().flatten().unwrap_or(0.0) as u64;
                        r.failing = failing;
                        r.observed = Some(failing as f64);
                        if failing > 0 {
                            r.status = Status::Fail;
                            r.message = format!("{failing} of {rows} rows: {}", describe(q));
                            r.sample = sample(&ctx, &format!("SELECT * FROM this WHERE {predicate}")).await;
                        } else {
                            r.message = format!("all {rows} rows pass");
                        }
                    }
                    Err(e) => {
                        r.status = Status::Error;
                        r.message = first_line(&e.to_string());
                    }
                },
                Plan::Query { sql, count } => {
                    match one_row(
                        &ctx,
                        &format!("SELECT CAST({count} AS DOUBLE) AS n FROM ({sql}) AS failing"),
                    )
                    .await
                    {
                        Ok(row) => {
                            let failing = row.get("n").copied().flatten().unwrap_or(0.0) as u64;
                            r.failing = failing;
                            r.observed = Some(failing as f64);
                            if failing > 0 {
                                r.status = Status::Fail;
                                r.message = format!("{failing} of {rows} rows: {}", describe(q));
                                r.sample = sample(&ctx, &sql).await;
                            } else {
                                r.message = format!("all {rows} rows pass");
                            }
                        }
                        Err(e) => {
                            r.status = Status::Error;
                            r.message = first_line(&e.to_string());
                        }
                    }
                }
                Plan::Value { .. } => match &aggregate {
                    Ok(row) => {
                        let value = row.get(&col).copied().flatten();
                        judge(q, value, rows, self.clock.now_millis(), &history, &mut r);
                    }
                    Err(e) => {
                        r.status = Status::Error;
                        r.message = first_line(&e.to_string());
                    }
                },
            }
            results.push(r);
        }
        let run = CheckRun {
            id: uuid::Uuid::new_v4().to_string(),
            product: product.clone(),
            major,
            scope,
            version,
            at_ms,
            results,
        };
        let anomalies: Vec<&CheckResult> = run
            .results
            .iter()
            .filter(|r| r.kind == "anomaly" && r.status != Status::Error)
            .collect();
        if !anomalies.is_empty() {
            let mut cache = self.history.lock().await;
            let past = cache.entry((product.clone(), major, scope.as_str())).or_default();
            for r in anomalies {
                if let Some(v) = r.observed.filter(|v| v.is_finite()) {
                    let values = past.entry(r.check.clone()).or_default();
                    values.insert(0, v);
                    values.truncate(10_000);
                }
            }
        }
        crate::metrics::record_run(&run, started.elapsed());
        Ok(run)
    }

    fn plan(&self, contract: &Contract, q: &QualityCheck, scope: Scope) -> Plan {
        let index = contract.quality.iter().position(|c| std::ptr::eq(c, q)).unwrap_or(0);
        match &q.kind {
            CheckKind::NotNull(cols) => Plan::Rows {
                predicate: cols
                    .iter()
                    .map(|c| format!("{} IS NULL", ident(&c.value)))
                    .collect::<Vec<_>>()
                    .join(" OR "),
            },
            CheckKind::AcceptedValues { column, values } => Plan::Rows {
                predicate: format!(
                    "{c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({})",
                    values.iter().map(|v| lit(v)).collect::<Vec<_>>().join(", "),
                    c = ident(&column.value)
                ),
            },
            CheckKind::Range { column, min, max } => {
                let c = ident(&column.value);
                let bound = |b: &Bound| match b {
                    Bound::Number(n) => format!("{n}"),
                    Bound::Text(t) => lit(t),
                };
                let mut parts = Vec::new();
                if let Some(b) = min {
                    parts.push(format!("{c} < {}", bound(b)));
                }
                if let Some(b) = max {
                    parts.push(format!("{c} > {}", bound(b)));
                }
                Plan::Rows {
                    predicate: format!("({})", parts.join(" OR ")),
                }
            }
            CheckKind::Regex { column, pattern } => Plan::Rows {
                predicate: format!(
                    "{c} IS NOT NULL AND NOT regexp_like(CAST({c} AS VARCHAR), {})",
                    lit(pattern),
                    c = ident(&column.value)
                ),
            },
            // Like SQL CHECK constraints: a row passes when the expression is true or NULL.
            CheckKind::Expect { sql, .. } => Plan::Rows {
                predicate: format!("NOT coalesce(({}), true)", sql.value),
            },
            CheckKind::Unique(cols) => {
                let list = cols.iter().map(|c| ident(&c.value)).collect::<Vec<_>>().join(", ");
                let not_null = cols
                    .iter()
                    .map(|c| format!("{} IS NOT NULL", ident(&c.value)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                Plan::Query {
                    sql: format!(
                        "SELECT {list}, count(*) AS duplicates FROM this WHERE {not_null} GROUP BY {list} HAVING count(*) > 1"
                    ),
                    count: "coalesce(sum(duplicates), 0)".into(),
                }
            }
            CheckKind::Relationships { column, to, field } => {
                if self.project.latest(&to.value).is_none() {
                    return Plan::Broken(format!("`{}` is not a product of this project", to.value));
                }
                let c = ident(&column.value);
                Plan::Query {
                    sql: format!(
                        "SELECT * FROM this AS t WHERE t.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM __ref_{index} AS r WHERE r.{} = t.{c})",
                        ident(field)
                    ),
                    count: "count(*)".into(),
                }
            }
            CheckKind::Sql(query) => Plan::Query {
                sql: query.value.clone(),
                count: "count(*)".into(),
            },
            // Bounds on the product's size mean nothing for one batch.
            CheckKind::RowCount { .. } if scope == Scope::NewRows => Plan::Skip,
            CheckKind::RowCount { .. } => Plan::Value {
                expr: "count(*)".into(),
            },
            CheckKind::Freshness { column, .. } => {
                match column
                    .as_ref()
                    .map(|c| &c.value)
                    .or(contract.event_time.as_ref().map(|e| &e.value))
                {
                    Some(c) => Plan::Value {
                        expr: format!("to_unixtime(max({}))", ident(c)),
                    },
                    None => Plan::Broken("a freshness check needs a `column`, or the contract's `event_time`".into()),
                }
            }
            CheckKind::Anomaly { metric, .. } => Plan::Value {
                expr: match metric {
                    AnomalyMetric::RowCount => "count(*)".into(),
                    AnomalyMetric::NullRate(c) => {
                        format!("avg(CASE WHEN {} IS NULL THEN 1.0 ELSE 0.0 END)", ident(&c.value))
                    }
                },
            },
        }
    }
}

/// A check's display name: its own, or its kind and columns.
pub fn check_name(q: &QualityCheck, index: usize) -> String {
    if let Some(n) = &q.name {
        return n.clone();
    }
    let cols: Vec<&str> = q.kind.columns().iter().map(|c| c.value.as_str()).collect();
    match &q.kind {
        CheckKind::Relationships { to, .. } => format!("relationships({} → {to})", cols.join(", ")),
        CheckKind::Sql(_) | CheckKind::RowCount { .. } => format!("{}#{}", q.kind.name(), index + 1),
        CheckKind::Anomaly { metric, .. } if cols.is_empty() => format!("anomaly({})", metric.as_str()),
        _ => format!("{}({})", q.kind.name(), cols.join(", ")),
    }
}

/// What a failing row breaks, in words.
fn describe(q: &QualityCheck) -> String {
    match &q.kind {
        CheckKind::NotNull(cols) => format!(
            "NULL in {}",
            cols.iter()
                .map(|c| format!("`{}`", c.value))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        CheckKind::AcceptedValues { column, values } => {
            format!("`{}` is not one of {}", column.value, values.join(", "))
        }
        CheckKind::Range { column, min, max } => format!(
            "`{}` outside [{}, {}]",
            column.value,
            min.as_ref().map_or("-∞".into(), ToString::to_string),
            max.as_ref().map_or("∞".into(), ToString::to_string)
        ),
        CheckKind::Regex { column, pattern } => format!("`{}` does not match `{pattern}`", column.value),
        CheckKind::Expect { sql, .. } => format!("`{}` is false", sql.value),
        CheckKind::Unique(cols) => format!(
            "duplicate {}",
            cols.iter()
                .map(|c| format!("`{}`", c.value))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CheckKind::Relationships { column, to, field } => {
            format!("`{}` has no match in `{to}`.`{field}`", column.value)
        }
        CheckKind::Sql(_) => "returned by the check's query".into(),
        _ => q.kind.name().into(),
    }
}

/// Judges a check measured as one value.
fn judge(
    q: &QualityCheck,
    value: Option<f64>,
    rows: u64,
    now_ms: i64,
    history: &BTreeMap<String, Vec<f64>>,
    r: &mut CheckResult,
) {
    match &q.kind {
        CheckKind::RowCount { min, max } => {
            let n = value.unwrap_or(0.0);
            r.observed = Some(n);
            let low = min.is_some_and(|m| n < m as f64);
            let high = max.is_some_and(|m| n > m as f64);
            if low || high {
                r.status = Status::Fail;
                r.message = format!(
                    "{n} rows, expected {}",
                    match (min, max) {
                        (Some(a), Some(b)) => format!("between {a} and {b}"),
                        (Some(a), None) => format!("at least {a}"),
                        (None, Some(b)) => format!("at most {b}"),
                        (None, None) => String::new(),
                    }
                );
            } else {
                r.message = format!("{n} rows");
            }
        }
        CheckKind::Freshness { .. } if rows == 0 => {
            r.message = "no rows to measure".into();
        }
        CheckKind::Freshness { max_age, .. } => match value {
            Some(newest_s) => {
                let age = (now_ms as f64 / 1000.0 - newest_s).max(0.0);
                r.observed = Some(age);
                if age > max_age.as_secs() as f64 {
                    r.status = Status::Fail;
                    r.message = format!(
                        "newest row is {} old, more than {max_age}",
                        trib_core::duration::human(age as u64)
                    );
                } else {
                    r.message = format!("newest row is {} old", trib_core::duration::human(age as u64));
                }
            }
            None => {
                r.status = Status::Fail;
                r.message = format!("no rows with a time to measure ({rows} rows)");
            }
        },
        CheckKind::Anomaly { window, threshold, .. } => {
            let Some(x) = value else {
                r.message = "no rows to measure".into();
                return;
            };
            r.observed = Some(x);
            let past = history.get(&r.check).map(Vec::as_slice).unwrap_or_default();
            let past = &past[..past.len().min(*window as usize)];
            match anomaly::judge(x, past, *threshold) {
                anomaly::Verdict::Learning { have, need } => {
                    r.message = format!("{x} (learning: {have} of {need} past measurements)");
                }
                anomaly::Verdict::Normal { z, median } => {
                    r.message = format!("{x}, median {median}, robust z {z:.2}");
                }
                anomaly::Verdict::Anomaly { z, median } => {
                    r.status = Status::Fail;
                    r.message = format!(
                        "{x} is an anomaly: median of the last {} is {median}, robust z {z:.2} > {threshold}",
                        past.len()
                    );
                }
            }
        }
        _ => {}
    }
}

/// The contract's columns against the table's: each must be there with its type.
fn schema_check(contract: &Contract, table: &arrow::datatypes::Schema) -> CheckResult {
    let mut problems = Vec::new();
    for f in contract.data_schema().fields() {
        match table.field_with_name(f.name()) {
            Err(_) => problems.push(format!("`{}` is missing", f.name())),
            Ok(t) if !same_type(t.data_type(), f.data_type()) => problems.push(format!(
                "`{}` is {} in the table, {} in the contract",
                f.name(),
                t.data_type(),
                f.data_type()
            )),
            Ok(_) => {}
        }
    }
    CheckResult {
        check: "schema".into(),
        kind: "schema",
        severity: CheckSeverity::Error,
        block: false,
        status: if problems.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        rows: 0,
        failing: 0,
        observed: Some(problems.len() as f64),
        message: if problems.is_empty() {
            format!("{} columns conform to the contract", contract.schema.len())
        } else {
            problems.join("; ")
        },
        sample: None,
    }
}

fn same_type(a: &DataType, b: &DataType) -> bool {
    // Delta stores every timestamp in UTC and strings as Utf8 or its views.
    match (a, b) {
        (DataType::Timestamp(u1, _), DataType::Timestamp(u2, _)) => u1 == u2,
        (
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View,
        ) => true,
        _ => {
            a == b
                || matches!(
                    (a, b),
                    (DataType::List(_), DataType::List(_)) | (DataType::Struct(_), DataType::Struct(_))
                )
        }
    }
}

/// The first row of a query, columns as numbers (NULL as `None`).
async fn one_row(
    ctx: &SessionContext,
    sql: &str,
) -> std::result::Result<BTreeMap<String, Option<f64>>, datafusion::error::DataFusionError> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = BTreeMap::new();
    if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
        for (f, c) in b.schema().fields().iter().zip(b.columns()) {
            let v = if c.is_null(0) {
                None
            } else {
                match c.data_type() {
                    DataType::Float64 => Some(c.as_primitive::<Float64Type>().value(0)),
                    DataType::Int64 => Some(c.as_primitive::<Int64Type>().value(0) as f64),
                    _ => arrow::compute::cast(c, &DataType::Float64)
                        .ok()
                        .map(|a| a.as_primitive::<Float64Type>().value(0)),
                }
            };
            out.insert(f.name().clone(), v);
        }
    }
    Ok(out)
}

/// Up to [`SAMPLE_ROWS`] rows of a query as a JSON array.
async fn sample(ctx: &SessionContext, sql: &str) -> Option<String> {
    let batches = ctx
        .sql(&format!("SELECT * FROM ({sql}) AS s LIMIT {SAMPLE_ROWS}"))
        .await
        .ok()?
        .collect()
        .await
        .ok()?;
    let mut w = arrow::json::ArrayWriter::new(Vec::new());
    for b in &batches {
        w.write(b).ok()?;
    }
    w.finish().ok()?;
    let out = String::from_utf8(w.into_inner()).ok()?;
    Some(if out.is_empty() { "[]".into() } else { out })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
