//! The `_trib.*` tables this crate keeps: opened (made on first use), appended to and
//! read with SQL like any product.

use crate::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use trib_lake::{Lake, ProductTable};

/// One system table.
pub(crate) struct SystemTable {
    name: &'static str,
    table: ProductTable,
    /// Appends since the table was last compacted by this process.
    appends: u32,
}

/// Appends between two compactions of a system table: each append is a small file,
/// and every later read of the table costs more with each one.
const COMPACT_EVERY_APPENDS: u32 = 100;

impl SystemTable {
    pub async fn open(lake: &Lake, name: &'static str, schema: SchemaRef) -> Result<Self> {
        let table = ProductTable::open_or_create_system(lake, name, schema).await?;
        Ok(Self {
            name,
            table,
            appends: 0,
        })
    }

    /// Appends rows, with a Delta `txn` when given so that the same work lands once.
    pub async fn append(&mut self, rows: &RecordBatch, txn: Option<(&str, i64)>) -> Result<()> {
        if rows.num_rows() == 0 && txn.is_none() {
            return Ok(());
        }
        self.table.append(rows, txn).await?;
        self.appends += 1;
        if self.appends >= COMPACT_EVERY_APPENDS {
            self.appends = 0;
            match trib_lake::compact(&mut self.table).await {
                Ok(r) => tracing::debug!(
                    table = self.name,
                    files_removed = r.files_removed,
                    "system table compacted"
                ),
                Err(e) => tracing::warn!(table = self.name, error = %e, "compaction failed; the next one retries"),
            }
        }
        Ok(())
    }

    /// The version recorded for `app_id` by [`SystemTable::append`].
    pub async fn txn(&self, app_id: &str) -> Result<Option<i64>> {
        Ok(self.table.txn_version(app_id).await?)
    }

    /// Runs SQL over the newest version, the table registered as `t`.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.table.refresh().await?;
        if self.table.version().is_none() {
            return Ok(Vec::new());
        }
        self.table.query(sql).await.map_err(|e| match e {
            trib_lake::Error::Query { source, .. } => Error::System {
                table: format!("_trib.{}", self.name),
                source,
            },
            other => Error::Lake(other),
        })
    }
}

/// A SQL string literal.
pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier, quoted.
pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Microseconds since the epoch, from the clock's milliseconds.
pub(crate) fn micros(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

pub(crate) fn utc() -> Option<std::sync::Arc<str>> {
    Some("UTC".into())
}

/// A text column as `Utf8`, whichever string type the scan produced.
pub(crate) fn texts(a: &arrow::array::ArrayRef) -> Result<arrow::array::StringArray> {
    let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)?;
    Ok(arrow::array::AsArray::as_string::<i32>(&a).clone())
}

/// A numeric column as `Float64`.
pub(crate) fn numbers(a: &arrow::array::ArrayRef) -> Result<arrow::array::Float64Array> {
    let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Float64)?;
    Ok(arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(&a).clone())
}

/// A timestamp column as milliseconds since the epoch.
pub(crate) fn millis(a: &arrow::array::ArrayRef) -> Result<arrow::array::Int64Array> {
    let a = arrow::compute::cast(
        a,
        &arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
    )?;
    let a = arrow::compute::cast(&a, &arrow::datatypes::DataType::Int64)?;
    Ok(arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&a).clone())
}
