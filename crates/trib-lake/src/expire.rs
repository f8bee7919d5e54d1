//! Retention: rows whose event time is older than the product keeps them are deleted.
//!
//! An expiry is a Delta DELETE whose commit says so (`tributary.operation = expire` in
//! its commitInfo) and records the cutoff in a txn action (`tributary.expired_before`,
//! microseconds). Readers of the change data feed skip expiry commits: for a model, rows
//! leaving by retention are not a change of the data (a downsampled tier keeps its
//! aggregates after the detail is gone), as Databricks streams skip change commits.
//! A rebuild reads the cutoff to leave what was computed from expired rows in place.
//!
//! Bronze tables are append-only (`delta.appendOnly`); the contract's retention is the
//! one way rows leave them, so an expiry lifts the property for its own commit and sets
//! it again after.

use crate::error::{Error, Operation, Result};
use crate::table::ProductTable;
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::common::ScalarValue;
use deltalake::datafusion::prelude::{SessionContext, col, lit};
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::table::config::TablePropertiesExt;
use std::collections::{BTreeSet, HashMap};

/// Commit metadata key naming Tributary's operation, and the value for expiries.
const OPERATION_KEY: &str = "tributary.operation";
const EXPIRE: &str = "expire";
/// The txn application id whose version is the latest expiry's cutoff (microseconds).
pub const EXPIRED_BEFORE: &str = "tributary.expired_before";

/// What an expiry removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Rows with an event time before this instant (microseconds since the epoch) left.
    pub before_micros: i64,
    pub rows: u64,
}

impl ProductTable {
    /// Deletes the rows whose `column` (a timestamp or date) is before `before_micros`,
    /// in one commit marked as an expiry. In a dry run, only counts them.
    pub async fn expire(&mut self, column: &str, before_micros: i64, dry_run: bool) -> Result<Expired> {
        self.refresh().await?;
        let name = self.name().to_string();
        let err = |source| Error::Delta {
            operation: Operation::Maintain(crate::maintain::Step::Expire),
            table: name.clone(),
            source,
        };
        let schema = self.schema();
        let field = schema.field_with_name(column).map_err(|source| Error::Arrow {
            table: name.clone(),
            source,
        })?;
        let cutoff = match field.data_type() {
            DataType::Date32 => ScalarValue::Date32(Some(
                i32::try_from(before_micros.div_euclid(86_400_000_000)).unwrap_or(i32::MIN),
            )),
            DataType::Timestamp(_, tz) => ScalarValue::TimestampMicrosecond(Some(before_micros), tz.clone()),
            other => {
                return Err(Error::Arrow {
                    table: name,
                    source: deltalake::arrow::error::ArrowError::InvalidArgumentError(format!(
                        "retention needs a timestamp or date event time, `{column}` is {other}"
                    )),
                });
            }
        };
        let expired = col(format!("\"{}\"", column.replace('"', "\"\""))).lt(lit(cutoff));
        let ctx = SessionContext::new();
        let provider = crate::snapshot_provider(self.delta())
            .await
            .map_err(|source| Error::Query {
                table: name.clone(),
                source,
            })?;
        let rows = ctx
            .read_table(provider)
            .and_then(|d| d.filter(expired.clone()))
            .map_err(|source| Error::Query {
                table: name.clone(),
                source,
            })?
            .count()
            .await
            .map_err(|source| Error::Query {
                table: name.clone(),
                source,
            })? as u64;
        let done = Expired { before_micros, rows };
        if dry_run || rows == 0 {
            return Ok(done);
        }
        let append_only = self.delta().snapshot().map_err(err)?.table_config().append_only();
        if append_only {
            self.set_append_only(false).await.map_err(err)?;
        }
        let props = CommitProperties::default()
            .with_metadata([(OPERATION_KEY.to_string(), serde_json::Value::from(EXPIRE))])
            .with_application_transactions(vec![Transaction::new(EXPIRED_BEFORE, before_micros)]);
        let deleted = self
            .delta()
            .clone()
            .delete()
            .with_predicate(expired)
            .with_commit_properties(props)
            .await;
        // Append-only again whatever the delete did.
        if append_only {
            self.refresh().await?;
            self.set_append_only(true).await.map_err(err)?;
        }
        deleted.map_err(err)?;
        self.refresh().await?;
        Ok(done)
    }

    async fn set_append_only(&mut self, on: bool) -> deltalake::DeltaResult<()> {
        self.delta()
            .clone()
            .set_tbl_properties()
            .with_properties(HashMap::from([("delta.appendOnly".to_string(), on.to_string())]))
            .with_commit_properties(
                CommitProperties::default()
                    .with_metadata([(OPERATION_KEY.to_string(), serde_json::Value::from(EXPIRE))]),
            )
            .await?;
        self.refresh()
            .await
            .map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
        Ok(())
    }

    /// The cutoff of the latest expiry: rows with an event time before it may be gone.
    pub async fn expired_before(&self) -> Result<Option<i64>> {
        self.txn_version(EXPIRED_BEFORE).await
    }
}

/// Which of `versions` of the table are expiry commits (a version whose commit file is
/// gone, cleaned from the log, counts as not one).
pub(crate) async fn expiry_commits(
    table: &deltalake::DeltaTable,
    versions: BTreeSet<i64>,
) -> deltalake::DeltaResult<BTreeSet<i64>> {
    let log = table.log_store();
    let mut out = BTreeSet::new();
    for v in versions {
        let Ok(version) = u64::try_from(v) else { continue };
        let Some(bytes) = log.read_commit_entry(version).await? else {
            continue;
        };
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if action["commitInfo"][OPERATION_KEY] == EXPIRE {
                out.insert(v);
            }
        }
    }
    Ok(out)
}
