//! Compaction of an append-only table beside a writer that commits every few
//! milliseconds without loading the table (`trib serve`'s group commits).
//!
//! delta-rs's optimize cannot land there: each writer commit sends its commit back to
//! reload the table's file list and retry, at most 15 times. Here the small files are
//! rewritten first, and the commit then goes to the log's next free version directly,
//! after checking that every commit it skips only appended: the files it replaces are
//! then still in the table, and the rows land once.
//!
//! ```text
//!   small files of a partition ──read──► one file per 16 MiB (data_change = false)
//!   commit: remove(small files) + add(new files) at the next free version,
//!           giving up if a skipped commit did anything but append
//! ```

use crate::error::{Error, Operation, Result};
use crate::maintain::{Rewrite, Step};
use crate::table::ProductTable;
use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake::logstore::CommitOrBytes;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTableError, Path};
use object_store::ObjectStoreExt as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Commits a compaction skips at most before it gives up for this round.
const MAX_SKIPPED: u64 = 10_000;

/// Packs the files below `target` bytes of each partition into files of about `target`
/// bytes, in one commit. Returns what it rewrote; nothing when a concurrent commit did
/// more than append (another compaction, an expiry), in which case the next round
/// starts from the table as it is then.
pub async fn pack_small_files(table: &mut ProductTable, target: u64) -> Result<Rewrite> {
    table.refresh().await?;
    let name = table.name().to_string();
    let err = |source: DeltaTableError| Error::Delta {
        operation: Operation::Maintain(Step::Compact),
        table: name.clone(),
        source,
    };
    let Some(base) = table.version() else {
        return Ok(Rewrite::default());
    };
    let delta = table.delta().clone();
    if !crate::table::commits_by_put(delta.log_store().as_ref()) {
        // Stores that commit by renaming a temporary file: delta-rs's compaction.
        return crate::maintain::compact(table).await;
    }
    let state = delta.snapshot().map_err(err)?;
    let mut groups: BTreeMap<Vec<(String, Option<String>)>, Vec<_>> = BTreeMap::new();
    for file in state.log_data().iter() {
        if u64::try_from(file.size()).is_ok_and(|s| s < target) {
            let key: Vec<(String, Option<String>)> = file.partition_values_map().into_iter().collect();
            groups.entry(key).or_default().push(file);
        }
    }
    let store = delta.log_store().object_store(None);
    let mut writer = RecordBatchWriter::for_table(&delta)
        .map_err(err)?
        .with_writer_properties(crate::table::writer_properties())
        .with_target_file_size(target);
    let schema = writer.arrow_schema();
    let mut actions = Vec::new();
    let mut rewrite = Rewrite::default();
    for (partition, files) in groups {
        // Bins of at most `target` bytes, each of two files or more.
        let mut bins: Vec<Vec<_>> = vec![Vec::new()];
        let mut size = 0u64;
        for file in files {
            let s = u64::try_from(file.size()).unwrap_or_default();
            if size + s > target && !bins.last().is_some_and(Vec::is_empty) {
                bins.push(Vec::new());
                size = 0;
            }
            size += s;
            bins.last_mut().expect("one bin at least").push(file);
        }
        let values: HashMap<String, Option<String>> = partition.into_iter().collect();
        let mut packed = false;
        for bin in bins.into_iter().filter(|b| b.len() >= 2) {
            for file in &bin {
                let bytes = store
                    .get(&Path::from(file.path().as_ref()))
                    .await
                    .map_err(|e| err(e.into()))?
                    .bytes()
                    .await
                    .map_err(|e| err(e.into()))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .and_then(|b| b.build())
                    .map_err(|e| err(e.into()))?;
                for batch in reader {
                    let batch = batch.map_err(|e| err(e.into()))?;
                    let full = with_partition(&batch, &schema, &values).map_err(|e| err(e.into()))?;
                    writer.write(full).await.map_err(err)?;
                }
                actions.push(Action::Remove(file.remove_action(false)));
            }
            rewrite.files_removed += bin.len() as u64;
            packed = true;
        }
        rewrite.partitions += u64::from(packed);
    }
    if actions.is_empty() {
        return Ok(Rewrite::default());
    }
    let adds = writer.flush().await.map_err(err)?;
    rewrite.files_added = adds.len() as u64;
    actions.extend(adds.into_iter().map(|mut a| {
        // The same rows in new files: readers of changes skip them.
        a.data_change = false;
        Action::Add(a)
    }));
    let log_store = delta.log_store();
    let prepared = CommitBuilder::default()
        .with_actions(actions)
        .build(
            Some(state),
            log_store.clone(),
            DeltaOperation::Optimize {
                predicate: None,
                target_size: i64::try_from(target).unwrap_or(i64::MAX),
            },
        )
        .into_prepared_commit_future()
        .await
        .map_err(err)?;
    let entry = match prepared.commit_or_bytes() {
        e @ CommitOrBytes::LogBytes(_) => e.clone(),
        CommitOrBytes::TmpCommit(_) => {
            return Err(err(DeltaTableError::Generic(
                "the log store committed through a temporary file".to_string(),
            )));
        }
    };
    drop(prepared);
    let mut version = base + 1;
    loop {
        match log_store
            .write_commit_entry(version, entry.clone(), uuid::Uuid::new_v4())
            .await
        {
            Ok(()) => break,
            Err(TransactionError::VersionAlreadyExists(_)) => {
                if !only_appends(log_store.as_ref(), version).await.map_err(err)? || version - base > MAX_SKIPPED {
                    tracing::debug!(table = %name, version, "compaction gave way to a concurrent rewrite");
                    return Ok(Rewrite::default());
                }
                version += 1;
            }
            Err(e) => return Err(err(e.into())),
        }
    }
    tracing::debug!(table = %name, version, files_removed = rewrite.files_removed, files_added = rewrite.files_added, "small files packed");
    table.refresh().await?;
    Ok(rewrite)
}

/// Whether commit `version` holds nothing but appended files and transactions.
async fn only_appends(log_store: &dyn deltalake::logstore::LogStore, version: u64) -> Result<bool, DeltaTableError> {
    let only = crate::table::commit_only(log_store, version, |kind, _| {
        matches!(kind, "add" | "txn" | "commitInfo")
    });
    Ok(only.await? == Some(true))
}

/// A file's rows in the table's columns: the partition values the file's path holds
/// (files do not store them) and nulls for columns added after it was written.
fn with_partition(
    batch: &RecordBatch,
    schema: &SchemaRef,
    values: &HashMap<String, Option<String>>,
) -> std::result::Result<RecordBatch, deltalake::arrow::error::ArrowError> {
    let rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(
            |f| -> std::result::Result<ArrayRef, deltalake::arrow::error::ArrowError> {
                if let Some(c) = batch.column_by_name(f.name()) {
                    return if c.data_type() == f.data_type() {
                        Ok(c.clone())
                    } else {
                        cast(c, f.data_type())
                    };
                }
                match values.get(f.name()) {
                    Some(Some(v)) => cast(
                        &(Arc::new(StringArray::from(vec![v.as_str(); rows])) as ArrayRef),
                        f.data_type(),
                    ),
                    _ => Ok(new_null_array(f.data_type(), rows)),
                }
            },
        )
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}
