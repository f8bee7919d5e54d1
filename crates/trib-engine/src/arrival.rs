//! What a streaming model (append or merge) does with the rows its stream input brings,
//! before its SQL sees them: events later than the watermark follow the contract's
//! `late` policy, and repeats of an event id inside the watermark horizon are dropped.
//!
//! ```text
//!   input changes, in arrival order (commit version, then row content)
//!        │  watermark(v) = max event time of every version before v − allowed_lateness
//!        ├─ event time < watermark(v), late: dead_letter ──► model's dead-letter table
//!        ├─ same id as an earlier arrival with event time ≥ watermark(v) ──► dropped (counted)
//!        └─ the rest ──► the model's SQL
//! ```
//!
//! The watermark moves per input commit, never inside one, so how the commits are cut
//! into runs does not change a decision: many small runs, one big run and a replay agree.
//! This is the semantics of Spark's `dropDuplicatesWithinWatermark` and of Flink's
//! late-event side output, decided on the input's commit order. The latest event time
//! read is committed with the model's output (a txn `watermark:<input>`), so a run
//! starts from it without scanning the input.

use crate::{Error, Result};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::{JoinType, ScalarValue};
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::prelude::{SessionContext, col, lit};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use trib_lake::ProductTable;
use trib_spec::{Contract, LatePolicy, Materialization, Source};

/// The arrival rules of one model over its stream input.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    product: String,
    input: String,
    /// The event-time column of the input rows, when the model has one.
    time: Option<String>,
    /// `allowed_lateness` in microseconds, when the model declares a watermark.
    lateness_us: Option<i64>,
    lateness_text: String,
    /// Whether late rows go to the dead-letter table (else they pass, as `merge`).
    dead_letter: bool,
    /// Columns identifying an event: the model's `event_id`, or an append model's `key`.
    ids: Vec<String>,
}

/// The stream input's rows after the arrival rules.
pub(crate) struct Sorted {
    /// Rows for the model's SQL (changes that are not arrivals pass untouched).
    pub kept: RecordBatch,
    /// Late rows to dead-letter, by the input commit version they came in, with the
    /// watermark (microseconds) they were judged by.
    pub late: Vec<(RecordBatch, u64, i64)>,
    /// Late rows that passed, by the `merge` policy.
    pub late_kept: u64,
    pub duplicates: u64,
    /// The latest event time read so far (microseconds), these changes included.
    pub max_seen: Option<i64>,
}

impl Arrivals {
    /// The rules `model` sets for rows of `input` (whose table has `schema`), or `None`
    /// when it sets none.
    pub(crate) fn new(model: &Contract, input: &Contract, schema: &SchemaRef) -> Result<Option<Self>> {
        let product = model.product.value.to_string();
        let Source::Model(m) = &model.source else {
            return Ok(None);
        };
        let has = |c: &str| schema.index_of(c).is_ok();
        let mut ids: Vec<String> = match (&model.event_id, m.materialized) {
            (Some(e), _) => vec![e.value.clone()],
            (None, Materialization::Append) => model.key.iter().map(|k| k.value.clone()).collect(),
            _ => Vec::new(),
        };
        if let Some(missing) = ids.iter().find(|c| !has(c)) {
            if model.event_id.is_none() {
                // A key the SQL computes cannot be looked for in the input: no dedupe.
                ids.clear();
            } else {
                return Err(Error::Model {
                    product,
                    message: format!(
                        "`event_id` column `{missing}` is not a column of the stream input `{}`",
                        input.product.value
                    ),
                    hint: "duplicates are dropped before the SQL runs: name the input's event id column, as the input spells it".into(),
                });
            }
        }
        let time = model
            .event_time
            .as_ref()
            .map(|e| e.value.clone())
            .filter(|c| has(c))
            .or_else(|| input.event_time.as_ref().map(|e| e.value.clone()).filter(|c| has(c)));
        let watermark = model.watermark.as_ref();
        let dead_letter = watermark.is_some_and(|w| w.late == LatePolicy::DeadLetter);
        if dead_letter && time.is_none() {
            return Err(Error::Model {
                product,
                message: format!(
                    "`late: dead_letter` needs the event time of the stream input `{}`, which has no column `{}`",
                    input.product.value,
                    model.event_time.as_ref().map_or("<event_time>", |e| e.value.as_str())
                ),
                hint: "give the model an `event_time` that its stream input also has, or set `event_time` on the input"
                    .into(),
            });
        }
        if !dead_letter && ids.is_empty() {
            return Ok(None);
        }
        let lateness = watermark.filter(|_| time.is_some());
        Ok(Some(Self {
            product,
            input: format!("{}@v{}", input.product.value, input.major()),
            time,
            lateness_us: lateness.map(|w| {
                i64::try_from(w.allowed_lateness.as_millis()).map_or(i64::MAX / 4, |ms| ms.saturating_mul(1000))
            }),
            lateness_text: lateness.map(|w| w.allowed_lateness.to_string()).unwrap_or_default(),
            dead_letter,
            ids,
        }))
    }

    fn arrow(&self, e: arrow::error::ArrowError) -> Error {
        Error::arrow(&self.product, e)
    }

    fn sql(&self, e: datafusion::error::DataFusionError) -> Error {
        Error::sql(&self.product, e)
    }

    /// Sorts the input's changes (with the change-feed columns) read after version
    /// `consumed` of `table`. `data` lists the indices of the table's own columns;
    /// `known_max` is the latest event time up to `consumed`, when the target recorded
    /// it (otherwise the input is scanned for it).
    pub(crate) async fn sort(
        &self,
        table: &ProductTable,
        consumed: Option<u64>,
        known_max: Option<i64>,
        changes: RecordBatch,
        data: &[usize],
    ) -> Result<Sorted> {
        let n = changes.num_rows();
        let kinds = changes
            .column_by_name("_change_type")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
            .ok_or_else(|| Error::Internal("the change feed has no `_change_type`".into()))?;
        let versions = changes
            .column_by_name("_commit_version")
            .map(|c| arrow::compute::cast(c, &DataType::Int64))
            .transpose()
            .map_err(|e| self.arrow(e))?
            .ok_or_else(|| Error::Internal("the change feed has no `_commit_version`".into()))?;
        let versions = versions.as_primitive::<arrow::datatypes::Int64Type>();
        let times = match &self.time {
            Some(c) => Some(
                micros(
                    changes
                        .column_by_name(c)
                        .ok_or_else(|| Error::Internal(format!("the change feed has no `{c}`")))?,
                )
                .map_err(|e| self.arrow(e))?,
            ),
            None => None,
        };
        let time_at = |i: usize| times.as_ref().and_then(|t| t.is_valid(i).then(|| t.value(i)));

        // Arrival order: commit version, then the row's content, so that the choice
        // among rows of one commit does not depend on how its files were read.
        // Only dedupe chooses among the rows of one commit; lateness is per commit.
        let mut order: Vec<usize> = (0..n)
            .filter(|&i| matches!(kinds.value(i), "insert" | "update_postimage"))
            .collect();
        if self.ids.is_empty() {
            order.sort_by_key(|&i| versions.value(i));
        } else {
            let data_rows = row_bytes(&changes, data).map_err(|e| self.arrow(e))?;
            order.sort_by(|&a, &b| {
                versions
                    .value(a)
                    .cmp(&versions.value(b))
                    .then_with(|| data_rows.row(a).cmp(&data_rows.row(b)))
            });
        }

        // The watermark each commit version is judged by.
        let mut max_before = match (known_max, consumed, &self.time) {
            (Some(m), Some(_), _) => Some(m),
            (None, Some(c), Some(t)) if self.lateness_us.is_some() => {
                prior_max(table, c, t).await.map_err(|e| self.sql(e))?
            }
            _ => None,
        };
        let mut per_version: BTreeMap<i64, Option<i64>> = BTreeMap::new();
        for &i in &order {
            let e = per_version.entry(versions.value(i)).or_default();
            *e = (*e).max(time_at(i));
        }
        let mut watermark: HashMap<i64, Option<i64>> = HashMap::new();
        for (v, m) in &per_version {
            let w = self.lateness_us.and_then(|l| max_before.map(|m| m.saturating_sub(l)));
            watermark.insert(*v, w);
            max_before = max_before.max(*m);
        }

        // Earlier arrivals of each id, from the versions already read.
        let ids = if self.ids.is_empty() {
            None
        } else {
            let idx: Vec<usize> = self
                .ids
                .iter()
                .map(|c| changes.schema().index_of(c))
                .collect::<Result<_, _>>()
                .map_err(|e| self.arrow(e))?;
            Some((idx.clone(), row_bytes(&changes, &idx).map_err(|e| self.arrow(e))?))
        };
        let mut seen: HashMap<OwnedRow, Option<i64>> = HashMap::new();
        if let (Some((idx, _)), Some(c)) = (&ids, consumed) {
            let horizon = watermark.values().flatten().min().copied();
            seen = self.prior_ids(table, c, &changes, idx, &order, horizon).await?;
        }

        let mut keep = vec![true; n];
        let mut late: BTreeMap<(u64, i64), Vec<usize>> = BTreeMap::new();
        let mut late_kept = 0;
        let mut duplicates = 0;
        for &i in &order {
            let v = versions.value(i);
            let w = watermark.get(&v).copied().flatten();
            let t = time_at(i);
            if let (Some(w), Some(t)) = (w, t)
                && t < w
            {
                if self.dead_letter {
                    keep[i] = false;
                    late.entry((u64::try_from(v).unwrap_or(0), w)).or_default().push(i);
                } else {
                    late_kept += 1;
                }
                continue;
            }
            let Some((idx, id_rows)) = &ids else { continue };
            if idx.iter().any(|&c| changes.column(c).is_null(i)) {
                continue;
            }
            let id = id_rows.row(i).owned();
            // A repeat counts when an earlier arrival is still inside the horizon.
            let inside = |earlier: Option<i64>| match (w, earlier) {
                (Some(w), Some(e)) => e >= w,
                (Some(_), None) => false,
                (None, _) => true,
            };
            match seen.get_mut(&id) {
                Some(earlier) if inside(*earlier) => {
                    keep[i] = false;
                    duplicates += 1;
                }
                Some(earlier) => *earlier = (*earlier).max(t),
                None => {
                    seen.insert(id, t);
                }
            }
        }

        let mask = BooleanArray::from(keep);
        let kept = arrow::compute::filter_record_batch(&changes, &mask).map_err(|e| self.arrow(e))?;
        let mut late_batches = Vec::with_capacity(late.len());
        for ((v, w), rows) in late {
            let idx = arrow::array::UInt32Array::from_iter_values(rows.iter().map(|&r| r as u32));
            let cols = data
                .iter()
                .map(|&c| arrow::compute::take(changes.column(c), &idx, None))
                .collect::<Result<Vec<ArrayRef>, _>>()
                .map_err(|e| self.arrow(e))?;
            let schema = changes.schema().project(data).map_err(|e| self.arrow(e))?;
            late_batches.push((
                RecordBatch::try_new(Arc::new(schema), cols).map_err(|e| self.arrow(e))?,
                v,
                w,
            ));
        }
        Ok(Sorted {
            kept,
            late: late_batches,
            late_kept,
            duplicates,
            max_seen: max_before,
        })
    }

    /// The ids among `order`'s rows that arrived in versions up to `consumed`, with the
    /// latest event time each had (from `horizon` on, when there is a watermark).
    async fn prior_ids(
        &self,
        table: &ProductTable,
        consumed: u64,
        changes: &RecordBatch,
        idx: &[usize],
        order: &[usize],
        horizon: Option<i64>,
    ) -> Result<HashMap<OwnedRow, Option<i64>>> {
        let wanted = arrow::array::UInt32Array::from_iter_values(order.iter().map(|&r| r as u32));
        let id_cols = idx
            .iter()
            .map(|&c| arrow::compute::take(changes.column(c), &wanted, None))
            .collect::<Result<Vec<ArrayRef>, _>>()
            .map_err(|e| self.arrow(e))?;
        let renamed: Vec<arrow::datatypes::Field> = idx
            .iter()
            .enumerate()
            .map(|(n, &c)| changes.schema().field(c).clone().with_name(format!("__id{n}")))
            .collect();
        let ids = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(renamed)), id_cols)
            .map_err(|e| self.arrow(e))?;
        let ctx = SessionContext::new();
        let t = table.at_version(consumed).await.map_err(Error::Lake)?;
        let provider = trib_lake::snapshot_provider(&t).await.map_err(|e| self.sql(e))?;
        let mut prior = ctx.read_table(provider).map_err(|e| self.sql(e))?;
        let time = self.time.as_deref();
        if let (Some(h), Some(t)) = (horizon, time) {
            // Files wholly before the horizon are pruned by their statistics.
            prior = prior
                .filter(col(quoted(t)).gt_eq(lit(ScalarValue::TimestampMicrosecond(Some(h), Some("UTC".into())))))
                .map_err(|e| self.sql(e))?;
        }
        let left: Vec<String> = self.ids.iter().map(|c| quoted(c)).collect();
        let right: Vec<String> = (0..idx.len()).map(|n| format!("__id{n}")).collect();
        let ids_df = ctx
            .read_batch(ids)
            .and_then(|d| d.distinct())
            .map_err(|e| self.sql(e))?;
        let left_refs: Vec<&str> = left.iter().map(String::as_str).collect();
        let right_refs: Vec<&str> = right.iter().map(String::as_str).collect();
        let joined = prior
            .join(ids_df, JoinType::LeftSemi, &left_refs, &right_refs, None)
            .map_err(|e| self.sql(e))?;
        let group: Vec<_> = self.ids.iter().map(|c| col(quoted(c))).collect();
        let aggr = match time {
            Some(t) => vec![max(col(quoted(t))).alias("__t")],
            None => vec![datafusion::functions_aggregate::expr_fn::count(lit(1)).alias("__t")],
        };
        let batches = joined
            .aggregate(group, aggr)
            .map_err(|e| self.sql(e))?
            .collect()
            .await
            .map_err(|e| self.sql(e))?;
        let mut out = HashMap::new();
        for b in batches {
            let k: Vec<usize> = (0..self.ids.len()).collect();
            let rows = row_bytes(&b, &k).map_err(|e| self.arrow(e))?;
            let t = match time {
                Some(_) => Some(micros(b.column(self.ids.len())).map_err(|e| self.arrow(e))?),
                None => None,
            };
            for i in 0..b.num_rows() {
                let latest = t.as_ref().and_then(|t| t.is_valid(i).then(|| t.value(i)));
                out.insert(rows.row(i).owned(), latest);
            }
        }
        Ok(out)
    }

    /// Dead letters for late rows of input commit `version`.
    pub(crate) fn dead_letters(
        &self,
        rows: &RecordBatch,
        version: u64,
        watermark: i64,
        now_micros: i64,
    ) -> Result<RecordBatch> {
        let watermark = chrono::DateTime::from_timestamp_micros(watermark).map_or_else(
            || watermark.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
        let mut raw = Vec::new();
        {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut raw);
            w.write(rows).map_err(|e| self.arrow(e))?;
            w.finish().map_err(|e| self.arrow(e))?;
        }
        let raw = String::from_utf8_lossy(&raw);
        let time = self.time.clone().unwrap_or_default();
        let times = rows
            .column_by_name(&time)
            .map(|c| arrow::compute::cast(c, &DataType::Utf8))
            .transpose()
            .map_err(|e| self.arrow(e))?;
        let lines: Vec<&str> = raw.lines().collect();
        let n = rows.num_rows();
        let mut message = arrow::array::StringBuilder::new();
        for i in 0..n {
            let seen = times
                .as_ref()
                .map(|t| t.as_string::<i32>())
                .filter(|t| t.is_valid(i))
                .map_or("null", |t| t.value(i));
            message.append_value(format!(
                "`{time}` {seen} is older than the watermark {watermark} of `{}`: the latest event time read before input version {version} minus the allowed lateness {}",
                self.product, self.lateness_text
            ));
        }
        let schema = Arc::new(trib_spec::dead_letter_schema());
        let columns: Vec<ArrayRef> = vec![
            Arc::new(arrow::array::TimestampMicrosecondArray::from(vec![now_micros; n]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec![
                format!("model:{} version {version}", self.input);
                n
            ])),
            Arc::new(StringArray::from(vec![format!("{}:{version}", self.product); n])),
            Arc::new(arrow::array::Int64Array::from_iter_values(0..n as i64)),
            Arc::new(StringArray::from(vec!["late"; n])),
            Arc::new(StringArray::from(vec![Some(time.as_str()); n])),
            Arc::new(message.finish()),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| lines.get(i).copied().unwrap_or("")),
            )),
        ];
        RecordBatch::try_new(schema, columns).map_err(|e| self.arrow(e))
    }
}

fn quoted(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

/// Event times as microseconds since the epoch (timestamps of any unit, dates).
fn micros(a: &ArrayRef) -> Result<arrow::array::PrimitiveArray<TimestampMicrosecondType>, arrow::error::ArrowError> {
    let tz = match a.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    let c = arrow::compute::cast(a, &DataType::Timestamp(TimeUnit::Microsecond, tz))?;
    Ok(c.as_primitive::<TimestampMicrosecondType>().clone())
}

/// Comparable, hashable encodings of the rows of `batch` over `columns`.
fn row_bytes(batch: &RecordBatch, columns: &[usize]) -> Result<arrow::row::Rows, arrow::error::ArrowError> {
    let fields = columns
        .iter()
        .map(|&c| SortField::new(batch.schema().field(c).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let cols: Vec<ArrayRef> = columns.iter().map(|&c| batch.column(c).clone()).collect();
    converter.convert_columns(&cols)
}

/// The latest event time in `table` as of `version`.
async fn prior_max(table: &ProductTable, version: u64, time: &str) -> datafusion::error::Result<Option<i64>> {
    let t = table
        .at_version(version)
        .await
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let provider = trib_lake::snapshot_provider(&t).await?;
    let ctx = SessionContext::new();
    let batches = ctx
        .read_table(provider)?
        .aggregate(vec![], vec![max(col(quoted(time))).alias("m")])?
        .collect()
        .await?;
    let Some(b) = batches.first().filter(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let m = micros(b.column(0))?;
    Ok(m.is_valid(0).then(|| m.value(0)))
}
