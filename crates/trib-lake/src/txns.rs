//! Every application transaction (`txn` action) of a table, read from its Delta log once
//! and then kept up to date commit by commit.
//!
//! The exactly-once checks ask "has this batch id landed?" for every batch, and most ids
//! are new (an HTTP idempotency key, a file chunk). The kernel answers one id at a time
//! by replaying the log from the last checkpoint, which costs a read of every commit
//! since then, per question. This index reads the checkpoint's `txn` column and the
//! commits after it once, then only the commits that appear later.
//!
//! It understands the classic single-file checkpoint that delta-rs writes; for any other
//! layout (multi-part or V2 checkpoints, a log whose old commits were cleaned up without
//! a checkpoint) [`TxnIndex::load`] returns `None` and callers ask the kernel instead.

use deltalake::arrow::array::{Array, AsArray, StructArray};
use deltalake::arrow::datatypes::Int64Type;
use deltalake::logstore::LogStore;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::{DeltaResult, DeltaTableError, ObjectStoreError, Path};
use object_store::ObjectStoreExt;
use std::collections::HashMap;

pub(crate) struct TxnIndex {
    versions: HashMap<String, i64>,
    /// The table version the index reflects.
    upto: u64,
}

#[derive(serde::Deserialize)]
struct LastCheckpoint {
    version: u64,
    #[serde(default)]
    parts: Option<u64>,
    #[serde(default, rename = "v2Checkpoint")]
    v2_checkpoint: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Action {
    txn: Option<Txn>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Txn {
    app_id: String,
    version: i64,
}

impl TxnIndex {
    /// The transactions of the table as of `version`, or `None` when its log has a
    /// layout this index does not read.
    pub(crate) async fn load(log: &dyn LogStore, version: u64) -> DeltaResult<Option<Self>> {
        let store = log.object_store(None);
        let mut index = TxnIndex {
            versions: HashMap::new(),
            upto: 0,
        };
        let start = match store.get(&Path::from("_delta_log/_last_checkpoint")).await {
            Ok(found) => {
                let bytes = found.bytes().await?;
                let last: LastCheckpoint = serde_json::from_slice(&bytes)
                    .map_err(|e| DeltaTableError::Generic(format!("unreadable `_last_checkpoint`: {e}")))?;
                if last.parts.is_some() || last.v2_checkpoint.is_some() {
                    return Ok(None);
                }
                if last.version > version {
                    // A checkpoint past the version asked for (a writer that has not
                    // loaded the table's later commits): the commits up to it, if kept.
                    return Self::from_commits(log, version).await;
                }
                let path = Path::from(format!("_delta_log/{:020}.checkpoint.parquet", last.version));
                let bytes = match store.get(&path).await {
                    Ok(found) => found.bytes().await?,
                    Err(ObjectStoreError::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                index.read_checkpoint(bytes)?;
                last.version + 1
            }
            Err(ObjectStoreError::NotFound { .. }) => 0,
            Err(e) => return Err(e.into()),
        };
        for v in start..=version {
            let Some(commit) = log.read_commit_entry(v).await? else {
                return Ok(None);
            };
            index.read_commit(&commit)?;
        }
        index.upto = version;
        tracing::debug!(
            version,
            transactions = index.versions.len(),
            from_checkpoint = start > 0,
            "transaction index loaded"
        );
        Ok(Some(index))
    }

    /// The transactions of commits `0..=version`, or `None` when one of them is gone.
    async fn from_commits(log: &dyn LogStore, version: u64) -> DeltaResult<Option<Self>> {
        let mut index = TxnIndex {
            versions: HashMap::new(),
            upto: 0,
        };
        for v in 0..=version {
            let Some(commit) = log.read_commit_entry(v).await? else {
                return Ok(None);
            };
            index.read_commit(&commit)?;
        }
        index.upto = version;
        Ok(Some(index))
    }

    /// Reads the commits after the ones the index holds, up to `version`. `false` when
    /// one of them is gone (the index is then unusable).
    pub(crate) async fn catch_up(&mut self, log: &dyn LogStore, version: u64) -> DeltaResult<bool> {
        while self.upto < version {
            let Some(commit) = log.read_commit_entry(self.upto + 1).await? else {
                return Ok(false);
            };
            self.read_commit(&commit)?;
            self.upto += 1;
        }
        Ok(true)
    }

    pub(crate) fn upto(&self) -> u64 {
        self.upto
    }

    pub(crate) fn get(&self, app_id: &str) -> Option<i64> {
        self.versions.get(app_id).copied()
    }

    fn record(&mut self, app_id: &str, version: i64) {
        let v = self.versions.entry(app_id.to_string()).or_insert(version);
        *v = (*v).max(version);
    }

    fn read_commit(&mut self, commit: &[u8]) -> DeltaResult<()> {
        for line in commit.split(|b| *b == b'\n') {
            // Only lines that can hold a txn action are parsed.
            if memchr_txn(line) {
                let action: Action = serde_json::from_slice(line)
                    .map_err(|e| DeltaTableError::Generic(format!("unreadable commit line: {e}")))?;
                if let Some(t) = action.txn {
                    self.record(&t.app_id, t.version);
                }
            }
        }
        Ok(())
    }

    fn read_checkpoint(&mut self, bytes: bytes::Bytes) -> DeltaResult<()> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
        let Some(txn) = builder.schema().fields().iter().position(|f| f.name() == "txn") else {
            return Ok(());
        };
        let mask = ProjectionMask::roots(builder.parquet_schema(), [txn]);
        for batch in builder.with_projection(mask).build()? {
            let batch = batch?;
            let Some(col) = batch.column_by_name("txn") else {
                continue;
            };
            let txns: &StructArray = col.as_struct();
            let (Some(apps), Some(versions)) = (txns.column_by_name("appId"), txns.column_by_name("version")) else {
                continue;
            };
            let apps = deltalake::arrow::compute::cast(apps, &deltalake::arrow::datatypes::DataType::Utf8)?;
            let apps = apps.as_string::<i32>();
            let versions = versions.as_primitive::<Int64Type>();
            for i in 0..txns.len() {
                if txns.is_valid(i) && apps.is_valid(i) && versions.is_valid(i) {
                    self.record(apps.value(i), versions.value(i));
                }
            }
        }
        Ok(())
    }
}

fn memchr_txn(line: &[u8]) -> bool {
    line.windows(6).any(|w| w == b"\"txn\":")
}
