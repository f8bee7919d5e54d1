//! Every read, answered or refused, as a row of `_trib.audit`: an append-only Delta
//! table in the lake that admins query like a product.
//!
//! Entries are buffered and committed together (`flush`): one Delta commit per query
//! would cost more than most queries. The server flushes every second and on stop; the
//! CLI after its query.

use crate::Result;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, Mutex};
use trib_lake::{Lake, ProductTable};

/// The audit table's name under the lake's `_trib/`.
pub(crate) const AUDIT_TABLE: &str = "audit";

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub principal: String,
    pub roles: Vec<String>,
    /// `cli`, `http`, `postgres`.
    pub path: String,
    pub query: String,
    /// Product versions read, as `domain.name@vN`.
    pub products: Vec<String>,
    /// Columns read from storage, as `domain.name.column`.
    pub columns: Vec<String>,
    pub rows: u64,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    pub message: Option<String>,
    pub duration_ms: f64,
}

pub fn audit_schema() -> SchemaRef {
    let list = || DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("principal", DataType::Utf8, false),
        Field::new("roles", list(), true),
        Field::new("path", DataType::Utf8, false),
        Field::new("query", DataType::Utf8, false),
        Field::new("products", list(), true),
        Field::new("columns", list(), true),
        Field::new("rows", DataType::Int64, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, true),
        Field::new("duration_ms", DataType::Float64, false),
    ]))
}

/// The audit log of one lake.
pub struct Auditor {
    lake: Lake,
    table: tokio::sync::Mutex<Option<ProductTable>>,
    pending: Mutex<Vec<AuditEntry>>,
}

impl Auditor {
    pub fn new(lake: Lake) -> Self {
        Self {
            lake,
            table: tokio::sync::Mutex::new(None),
            pending: Mutex::new(Vec::new()),
        }
    }

    pub fn record(&self, entry: AuditEntry) {
        metrics::counter!(crate::gateway::METRIC_QUERIES, "outcome" => entry.outcome.clone()).increment(1);
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }

    /// Commits the buffered entries; on failure they stay buffered for the next flush.
    pub async fn flush(&self) -> Result<usize> {
        let mut table = self.table.lock().await;
        let entries = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if entries.is_empty() {
            return Ok(0);
        }
        let n = entries.len();
        let written = async {
            if table.is_none() {
                *table = Some(ProductTable::open_or_create_system(&self.lake, AUDIT_TABLE, audit_schema()).await?);
            }
            let batch = to_batch(&entries)?;
            if let Some(t) = table.as_mut() {
                t.append(&batch, None).await?;
            }
            Ok::<_, crate::Error>(())
        }
        .await;
        if let Err(e) = written {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let later = std::mem::replace(&mut *pending, entries);
            pending.extend(later);
            return Err(e);
        }
        Ok(n)
    }
}

fn list_builder() -> ListBuilder<StringBuilder> {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("element", DataType::Utf8, true)))
}

fn to_batch(entries: &[AuditEntry]) -> Result<RecordBatch> {
    let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut principal = StringBuilder::new();
    let mut roles = list_builder();
    let mut path = StringBuilder::new();
    let mut query = StringBuilder::new();
    let mut products = list_builder();
    let mut columns = list_builder();
    let mut rows = Int64Builder::new();
    let mut outcome = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut duration = Float64Builder::new();
    let list = |b: &mut ListBuilder<StringBuilder>, values: &[String]| {
        for v in values {
            b.values().append_value(v);
        }
        b.append(true);
    };
    for e in entries {
        at.append_value(e.at.timestamp_micros());
        principal.append_value(&e.principal);
        list(&mut roles, &e.roles);
        path.append_value(&e.path);
        query.append_value(&e.query);
        list(&mut products, &e.products);
        list(&mut columns, &e.columns);
        rows.append_value(i64::try_from(e.rows).unwrap_or(i64::MAX));
        outcome.append_value(&e.outcome);
        message.append_option(e.message.as_deref());
        duration.append_value(e.duration_ms);
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(at.finish()),
        Arc::new(principal.finish()),
        Arc::new(roles.finish()),
        Arc::new(path.finish()),
        Arc::new(query.finish()),
        Arc::new(products.finish()),
        Arc::new(columns.finish()),
        Arc::new(rows.finish()),
        Arc::new(outcome.finish()),
        Arc::new(message.finish()),
        Arc::new(duration.finish()),
    ];
    RecordBatch::try_new(audit_schema(), arrays).map_err(|e| crate::Error::Internal(format!("audit batch: {e}")))
}
