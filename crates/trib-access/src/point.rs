//! The fast read side: rows of a silver or gold product by key, from an in-memory copy
//! of its table refreshed when the table gets a new version, with the same access
//! rules as every query (the caller's row filter, hidden and masked columns).
//!
//! ```text
//!   GET …/rows?order_id=o-42 ──► index (key → row) ──► row filter (compiled once)
//!                                      ▲                  ──► masks ──► 1 row, audited
//!   new table version ──► refresh ─────┘
//! ```
//!
//! A product is indexed on its first point read; products with no key, bronze
//! products and tables over [`MAX_ROWS`] are read through SQL instead.

use crate::grants::{ColumnAccess, ProductView};
use crate::{Error, Result};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Tables larger than this are not held in memory.
pub const MAX_ROWS: usize = 5_000_000;

/// Separates key columns in an index key; it cannot occur in ordinary text keys.
const SEP: char = '\u{1f}';

/// One product version's rows by key.
pub(crate) struct PointIndex {
    pub version: u64,
    batch: RecordBatch,
    rows: HashMap<String, usize>,
    /// Row filters compiled against the table schema, by filter text.
    filters: Mutex<HashMap<String, Arc<dyn PhysicalExpr>>>,
}

impl PointIndex {
    /// Indexes `batch` (the whole table at `version`) by the `key` columns; the last
    /// row wins for a repeated key, as a merge would leave it.
    pub fn build(version: u64, batch: RecordBatch, key: &[String]) -> Result<Self> {
        let texts: Vec<StringArray> = key
            .iter()
            .map(|k| {
                let column = batch
                    .column_by_name(k)
                    .ok_or_else(|| Error::Internal(format!("key column `{k}` is not in the table")))?;
                let text = cast(column, &DataType::Utf8).map_err(|e| Error::Internal(format!("key `{k}`: {e}")))?;
                text.as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .ok_or_else(|| Error::Internal(format!("key `{k}` as text")))
            })
            .collect::<Result<_>>()?;
        let mut rows = HashMap::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            if texts.iter().any(|t| t.is_null(i)) {
                continue;
            }
            let k: Vec<&str> = texts.iter().map(|t| t.value(i)).collect();
            rows.insert(k.join(&SEP.to_string()), i);
        }
        Ok(Self {
            version,
            batch,
            rows,
            filters: Mutex::new(HashMap::new()),
        })
    }

    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.batch.schema()
    }

    /// The row for `key` as `view` shows it: none when absent or filtered out.
    pub fn get(&self, key: &[String], view: &ProductView, mask_key: Option<&[u8]>) -> Result<RecordBatch> {
        let found = self.rows.get(&key.join(&SEP.to_string())).copied();
        let row = match found {
            Some(i) => self.batch.slice(i, 1),
            None => self.batch.slice(0, 0),
        };
        let row = match (&view.row_filter, row.num_rows()) {
            (Some(filter), 1) if !self.passes(filter, &row)? => self.batch.slice(0, 0),
            _ => row,
        };
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (name, access) in &view.columns {
            let Some((idx, field)) = row.schema().column_with_name(name).map(|(i, f)| (i, f.clone())) else {
                continue;
            };
            let column = row.column(idx).clone();
            match access {
                ColumnAccess::Hidden => {}
                ColumnAccess::Clear => {
                    fields.push(field);
                    columns.push(column);
                }
                ColumnAccess::Masked(trib_core::settings::PiiMask::Hash) if mask_key.is_some() => {
                    let hashed = crate::mask::hash_array(mask_key.unwrap_or_default(), &column)
                        .map_err(|e| Error::Internal(format!("mask: {e}")))?;
                    fields.push(Field::new(name, DataType::Utf8, true));
                    columns.push(hashed);
                }
                ColumnAccess::Masked(_) => {
                    fields.push(Field::new(name, field.data_type().clone(), true));
                    columns.push(new_null_array(field.data_type(), row.num_rows()));
                }
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::Internal(format!("point row: {e}")))
    }

    /// Whether the one row of `row` passes the row filter `filter`.
    fn passes(&self, filter: &str, row: &RecordBatch) -> Result<bool> {
        let compiled = {
            let mut filters = self.filters.lock().unwrap_or_else(|e| e.into_inner());
            match filters.get(filter) {
                Some(f) => f.clone(),
                None => {
                    let ctx = SessionContext::new();
                    let schema = DFSchema::try_from(self.batch.schema().as_ref().clone())
                        .map_err(|e| Error::Internal(format!("row filter schema: {e}")))?;
                    let expr = ctx
                        .parse_sql_expr(filter, &schema)
                        .map_err(|e| Error::Internal(format!("row filter `{filter}`: {e}")))?;
                    let physical = ctx
                        .create_physical_expr(expr, &schema)
                        .map_err(|e| Error::Internal(format!("row filter `{filter}`: {e}")))?;
                    filters.insert(filter.to_string(), physical.clone());
                    physical
                }
            }
        };
        let value = compiled
            .evaluate(row)
            .and_then(|v| v.into_array(1))
            .map_err(|e| Error::Internal(format!("row filter `{filter}`: {e}")))?;
        Ok(value
            .as_any()
            .downcast_ref::<BooleanArray>()
            .is_some_and(|b| b.is_valid(0) && b.value(0)))
    }
}
