//! One product's Delta table: created from the contract, appended to idempotently,
//! read at any version.

use crate::error::{Error, Operation, Result};
use crate::location::Lake;
use crate::partition::{PartitionColumn, partition_columns, table_schema, with_partition_values};
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::Action;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{StructType, Transaction};
use deltalake::logstore::CommitOrBytes;
use deltalake::protocol::DeltaOperation;
use deltalake::protocol::SaveMode;
use deltalake::table::config::TablePropertiesExt as _;
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use deltalake::{DeltaTable, DeltaTableError, TableProperty};
use std::sync::Arc;
use trib_spec::{Contract, Layer};
use url::Url;

/// Which of a product's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// The product's data.
    Data,
    /// Records rejected on the way in.
    DeadLetters,
    /// A merged product's deleted keys with the sequence of their delete, so that an
    /// older change arriving after the delete does not bring the row back.
    Tombstones,
}

/// How [`ProductTable::merge_txns`] matches and orders rows.
#[derive(Debug, Clone)]
pub struct MergeSpec {
    pub key: Vec<String>,
    /// The column whose larger value wins, whatever the arrival order.
    pub sequence_by: Option<String>,
    /// A boolean column of the incoming rows: true deletes the stored row.
    pub delete_flag: Option<String>,
}

/// An open product table.
pub struct ProductTable {
    table: DeltaTable,
    name: String,
    schema: SchemaRef,
    partitions: Vec<PartitionColumn>,
    /// The contract added columns the table does not have yet: merge them on write.
    evolve: bool,
    /// Bytes a merge may hold in memory before spilling (the lake's setting).
    merge_memory: Option<usize>,
    /// The table's `txn` actions, loaded on the first exactly-once check; `Unreadable`
    /// when the log's layout sends every check to the kernel.
    txns: tokio::sync::Mutex<Txns>,
    /// The last version this handle committed past its loaded state (see
    /// [`ProductTable::append_txns_unsettled`]).
    head: Option<u64>,
}

enum Txns {
    NotLoaded,
    Loaded(crate::txns::TxnIndex),
    Unreadable,
}

/// The outcome of an idempotent append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Written in this table version.
    Committed { version: u64, rows: usize },
    /// The transaction was already committed earlier; nothing written.
    AlreadyCommitted,
    /// Nothing to write.
    Empty,
}

impl ProductTable {
    /// Opens a product's table, creating it from the contract on first use.
    pub async fn open_or_create(lake: &Lake, contract: &Contract, kind: TableKind) -> Result<Self> {
        let (url, schema, partitions, name) = match kind {
            TableKind::Data => {
                let partitions = partition_columns(contract);
                // CDC products keep each change's `_op`, `_source_ts`, `_lsn` and `_source`.
                let schema = table_schema(&contract.data_schema(), &partitions);
                (
                    lake.product_url(&contract.product, contract.major()),
                    schema,
                    partitions,
                    contract.product.value.to_string(),
                )
            }
            TableKind::DeadLetters => (
                lake.dead_letter_url(&contract.product, contract.major()),
                Arc::new(trib_spec::dead_letter_schema()),
                Vec::new(),
                format!("{} (dead letters)", contract.product.value),
            ),
            TableKind::Tombstones => {
                let data = contract.data_schema();
                let wanted: Vec<&str> = contract
                    .key
                    .iter()
                    .map(|k| k.value.as_str())
                    .chain(contract.sequence_by.as_ref().map(|s| s.value.as_str()))
                    .collect();
                let fields: Vec<_> = data
                    .fields()
                    .iter()
                    .filter(|f| wanted.contains(&f.name().as_str()))
                    .cloned()
                    .collect();
                (
                    lake.tombstone_url(&contract.product, contract.major()),
                    Arc::new(deltalake::arrow::datatypes::Schema::new(fields)),
                    Vec::new(),
                    format!("{} (tombstones)", contract.product.value),
                )
            }
        };
        let delta_err = |operation, source| Error::Delta {
            operation,
            table: name.clone(),
            source,
        };
        let mut table = open_at(lake, &url, &name).await?;
        let mut evolve = false;
        if table.version().is_none() {
            table = create(&table, contract, kind, &schema, &partitions)
                .await
                .map_err(|e| delta_err(Operation::Create, e))?;
        } else {
            // Within a major version the schema only grows: added optional columns are
            // merged on the next write; a column the contract no longer has is a
            // breaking change that needs a new major version (a new table).
            let existing: Vec<String> = table
                .snapshot()
                .map_err(|e| delta_err(Operation::Open, e))?
                .schema()
                .fields()
                .map(|f| f.name().to_string())
                .collect();
            let dropped: Vec<String> = existing
                .iter()
                .filter(|c| schema.field_with_name(c).is_err())
                .cloned()
                .collect();
            if !dropped.is_empty() {
                return Err(Error::SchemaDrift {
                    table: name,
                    columns: dropped,
                });
            }
            evolve = schema.fields().iter().any(|f| !existing.contains(f.name()));
        }
        Ok(Self {
            table,
            name,
            schema,
            partitions,
            evolve,
            txns: tokio::sync::Mutex::new(Txns::NotLoaded),
            head: None,
            merge_memory: lake.merge_memory(),
        })
    }

    /// Opens one of the project's own append-only tables (`_trib/<name>`), creating it
    /// with `schema` on first use.
    pub async fn open_or_create_system(lake: &Lake, name: &str, schema: SchemaRef) -> Result<Self> {
        let url = lake.system_url(name);
        let table_name = format!("_trib.{name}");
        let delta_err = |operation, source| Error::Delta {
            operation,
            table: table_name.clone(),
            source,
        };
        let mut table = open_at(lake, &url, &table_name).await?;
        if table.version().is_none() {
            let structure: StructType = schema
                .as_ref()
                .try_into_kernel()
                .map_err(|source| delta_err(Operation::Create, DeltaTableError::Arrow { source }))?;
            table = table
                .create()
                .with_columns(structure.fields().cloned())
                .with_save_mode(SaveMode::Ignore)
                .with_table_name(table_name.clone())
                .with_configuration_property(TableProperty::AppendOnly, Some("true".to_string()))
                .await
                .map_err(|e| delta_err(Operation::Create, e))?;
        }
        Ok(Self {
            table,
            name: table_name,
            schema,
            partitions: Vec::new(),
            evolve: false,
            txns: tokio::sync::Mutex::new(Txns::NotLoaded),
            head: None,
            merge_memory: lake.merge_memory(),
        })
    }

    /// Opens an existing table at a URL without a contract (for reading).
    pub async fn open_url(lake: &Lake, url: Url, name: &str) -> Result<DeltaTable> {
        deltalake::open_table_with_storage_options(url, lake.storage_options().clone())
            .await
            .map_err(|source| Error::Delta {
                operation: Operation::Open,
                table: name.to_string(),
                source,
            })
    }

    /// The table's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn delta(&self) -> &DeltaTable {
        &self.table
    }

    pub fn version(&self) -> Option<u64> {
        self.head.or_else(|| self.table.version())
    }

    /// The table's schema including derived partition columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// A batch of the contract's schema as this table stores it: with its derived
    /// partition columns.
    pub fn stored_rows(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        with_partition_values(batch, &self.schema, &self.partitions)
            .map_err(|source| self.err(Operation::Append, DeltaTableError::Arrow { source }))
    }

    /// Whether the table held no data files at `version`.
    pub async fn was_empty_at(&self, version: u64) -> Result<bool> {
        let t = self.at_version(version).await?;
        let files = t
            .snapshot()
            .map_err(|source| self.err(Operation::Read, source))?
            .log_data()
            .num_files();
        Ok(files == 0)
    }

    /// The last version committed for an application id, from the table's `txn` actions.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>> {
        let Some(version) = self.version() else {
            return Ok(None);
        };
        let log = self.table.log_store();
        let mut txns = self.txns.lock().await;
        if matches!(*txns, Txns::NotLoaded) {
            *txns = match crate::txns::TxnIndex::load(log.as_ref(), version)
                .await
                .map_err(|source| self.err(Operation::Read, source))?
            {
                Some(index) => Txns::Loaded(index),
                None => Txns::Unreadable,
            };
        }
        if let Txns::Loaded(index) = &mut *txns
            && index.upto() <= version
        {
            if index
                .catch_up(log.as_ref(), version)
                .await
                .map_err(|source| self.err(Operation::Read, source))?
            {
                return Ok(index.get(app_id));
            }
            *txns = Txns::Unreadable;
        }
        drop(txns);
        let read = |source| self.err(Operation::Read, source);
        if self.head.is_some() {
            // The loaded state is behind the log (unsettled appends): ask the log as of
            // the version this handle knows.
            let state = deltalake::table::state::DeltaTableState::try_new(log.as_ref(), Some(version))
                .await
                .map_err(read)?;
            return state.transaction_version(log.as_ref(), app_id).await.map_err(read);
        }
        let state = self.table.snapshot().map_err(read)?;
        state.transaction_version(log.as_ref(), app_id).await.map_err(read)
    }

    /// Loads the commits made since this state, if any: one HEAD of the next commit's
    /// file (versions are contiguous) instead of a listing and a log replay, for a writer
    /// that checks before each of many small commits. Unlike [`Self::refresh`] it does not
    /// notice a checkpoint written for the current version.
    pub async fn catch_up(&mut self) -> Result<()> {
        if let Some(version) = self.version() {
            use object_store::ObjectStoreExt as _;
            let next = self
                .table
                .log_store()
                .log_path()
                .clone()
                .join(format!("{:020}.json", version + 1).as_str());
            let store = self.table.log_store().object_store(None);
            if let Err(object_store::Error::NotFound { .. }) = store.head(&next).await {
                return Ok(());
            }
            // A handle that appends without loading (see `append_txns_unsettled`) steps
            // over appends and compactions instead of reloading the whole file list.
            if self.head.is_some()
                && self
                    .step_over()
                    .await
                    .map_err(|source| self.err(Operation::Read, source))?
            {
                return Ok(());
            }
        }
        self.refresh().await
    }

    /// Reloads the latest table state (after other writers committed).
    pub async fn refresh(&mut self) -> Result<()> {
        self.head = None;
        self.table
            .update_incremental(None)
            .await
            .map_err(|source| self.err(Operation::Read, source))
    }

    /// Appends a batch of the contract's schema. With `txn`, the commit records
    /// `(app_id, version)` and a batch whose transaction is already in the table is
    /// skipped: retries and replays never land twice.
    pub async fn append(&mut self, batch: &RecordBatch, txn: Option<(&str, i64)>) -> Result<Appended> {
        if let Some((app_id, version)) = txn {
            self.refresh().await?;
            if self.txn_version(app_id).await?.is_some_and(|v| v >= version) {
                return Ok(Appended::AlreadyCommitted);
            }
        }
        let txns: Vec<(String, i64)> = txn.map(|(app, v)| (app.to_string(), v)).into_iter().collect();
        self.append_txns(batch, &txns).await
    }

    /// Appends a batch in one commit that records several transactions (group commit:
    /// many producers' batches, each with its own id). The caller has checked that none
    /// of them is committed yet; a concurrent writer committing one of them makes this
    /// commit fail with a conflict rather than land twice.
    pub async fn append_txns(&mut self, batch: &RecordBatch, txns: &[(String, i64)]) -> Result<Appended> {
        let appended = self.append_txns_unsettled(batch, txns).await?;
        self.settle().await?;
        Ok(appended)
    }

    /// [`Self::append_txns`], returning as soon as the commit is durable, without loading
    /// the new table state: delta-rs loads a table's whole file list again after each
    /// commit (a cost that grows with every file), which a writer making many small
    /// commits cannot afford on each of them.
    ///
    /// The commit goes straight to the log's next version (a `put` if absent), as the
    /// Delta protocol's optimistic concurrency allows: versions are contiguous, so when the
    /// version after the last one this handle knows is free, no other writer committed in
    /// between and the exactly-once checks made up to that version still hold. When it is
    /// taken, the table is reloaded and the commit goes through delta-rs's conflict
    /// checks. Afterwards [`Self::version`] is the new version while reads see the loaded
    /// state until [`Self::settle`]; [`Self::catch_up`] and the `txn` checks follow the log.
    pub async fn append_txns_unsettled(&mut self, batch: &RecordBatch, txns: &[(String, i64)]) -> Result<Appended> {
        if batch.num_rows() == 0 && txns.is_empty() {
            return Ok(Appended::Empty);
        }
        let rows = batch.num_rows();
        if self.evolve || !self.writes_blind(batch) {
            self.settle().await?;
            let builder = self.writer(batch, SaveMode::Append, txns)?;
            self.table = builder.await.map_err(|source| self.err(Operation::Append, source))?;
            self.evolve = false;
            let version = self.version().unwrap_or_default();
            return Ok(Appended::Committed { version, rows });
        }
        let version = self
            .blind_append(batch, txns)
            .await
            .map_err(|source| self.err(Operation::Append, source))?;
        Ok(Appended::Committed { version, rows })
    }

    /// Loads the table state up to [`Self::version`] after unsettled appends, and writes
    /// the checkpoint delta-rs would have written after one of them.
    pub async fn settle(&mut self) -> Result<()> {
        let Some(head) = self.head.take() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let loaded = self.table.version().unwrap_or_default();
        self.table
            .update_incremental(Some(head))
            .await
            .map_err(|source| self.err(Operation::Read, source))?;
        let interval = self
            .table
            .snapshot()
            .map(|s| s.table_config().checkpoint_interval().get())
            .unwrap_or(100);
        if head / interval > loaded / interval {
            deltalake::checkpoints::create_checkpoint(&self.table, None)
                .await
                .map_err(|source| self.err(Operation::Append, source))?;
        }
        tracing::debug!(table = %self.name, version = head, settle_ms = started.elapsed().as_secs_f64() * 1e3, "table state loaded");
        Ok(())
    }

    /// Number of rows at the current version.
    pub async fn count(&self) -> Result<u64> {
        let sql = "SELECT count(*) AS n FROM t";
        let batches = self.query(sql).await?;
        Ok(batches
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<deltalake::arrow::array::Int64Array>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0) as u64)
    }

    /// Runs SQL over this table, registered as `t`.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        query_table(&self.table, &self.name, sql).await
    }

    /// This table as it was at `version`.
    pub async fn at_version(&self, version: u64) -> Result<DeltaTable> {
        let mut t = self.table.clone();
        t.load_version(version)
            .await
            .map_err(|source| self.err(Operation::TimeTravel, source))?;
        Ok(t)
    }

    /// This table as it was at a point in time (the last version committed at or before it).
    pub async fn at_timestamp(&self, at: chrono::DateTime<chrono::Utc>) -> Result<DeltaTable> {
        let mut t = self.table.clone();
        t.load_with_datetime(at)
            .await
            .map_err(|source| self.err(Operation::TimeTravel, source))?;
        Ok(t)
    }

    /// The rows that changed in the versions after `after` up to `upto`, from the change
    /// data feed, with `_change_type` (`insert`, `update_preimage`, `update_postimage`,
    /// `delete`), `_commit_version` and `_commit_timestamp`. Without `after`, every row
    /// of version `upto` as an insert. Rows removed by retention are not changes
    /// ([`crate::expire`]): expiry commits are left out.
    pub async fn changes(&self, after: Option<u64>, upto: u64) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let ctx = SessionContext::new();
        let Some(after) = after else {
            let t = self.at_version(upto).await?;
            let provider = crate::snapshot_provider(&t)
                .await
                .map_err(|source| self.query_err(source))?;
            let df = ctx.read_table(provider).map_err(|source| self.query_err(source))?;
            let df = df
                .with_column("_change_type", datafusion::prelude::lit("insert"))
                .and_then(|d| d.with_column("_commit_version", datafusion::prelude::lit(upto as i64)))
                .map_err(|source| self.query_err(source))?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await.map_err(|source| self.query_err(source))?;
            return Ok((schema, batches));
        };
        let plan = crate::cdf::readable(&self.table)
            .await
            .map_err(|source| self.err(Operation::Read, source))?
            .scan_cdf()
            .with_starting_version(after + 1)
            .with_ending_version(upto)
            .build(&ctx.state(), None)
            .await
            .map_err(|source| self.err(Operation::Read, source))?;
        let schema = plan.schema();
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .map_err(|source| self.query_err(source))?;
        let batches = self.without_expiries(batches).await?;
        Ok((schema, batches))
    }

    /// `batches` of the change feed without the rows of expiry commits. Only commits that
    /// deleted rows are looked at.
    async fn without_expiries(&self, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        use deltalake::arrow::array::{Array, AsArray};
        use deltalake::arrow::datatypes::Int64Type;
        let columns = |b: &RecordBatch| {
            Some((
                b.column_by_name("_change_type")?.as_string_opt::<i32>()?.clone(),
                b.column_by_name("_commit_version")?
                    .as_primitive_opt::<Int64Type>()?
                    .clone(),
            ))
        };
        let mut deleting = std::collections::BTreeSet::new();
        for b in &batches {
            if let Some((kinds, versions)) = columns(b) {
                for i in 0..b.num_rows() {
                    if kinds.is_valid(i) && kinds.value(i) == "delete" {
                        deleting.insert(versions.value(i));
                    }
                }
            }
        }
        if deleting.is_empty() {
            return Ok(batches);
        }
        let expiries = crate::expire::expiry_commits(&self.table, deleting)
            .await
            .map_err(|source| self.err(Operation::Read, source))?;
        if expiries.is_empty() {
            return Ok(batches);
        }
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            let Some((_, versions)) = columns(&b) else {
                out.push(b);
                continue;
            };
            let keep = deltalake::arrow::array::BooleanArray::from_iter(
                (0..b.num_rows()).map(|i| Some(!expiries.contains(&versions.value(i)))),
            );
            out.push(
                deltalake::arrow::compute::filter_record_batch(&b, &keep).map_err(|source| Error::Arrow {
                    table: self.name.clone(),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    /// Replaces the rows matching `replace_where` (all rows without it) by `batch`, in one
    /// commit that records `txns`. Every row of `batch` must match the predicate.
    pub async fn overwrite_txns(
        &mut self,
        batch: &RecordBatch,
        replace_where: Option<String>,
        txns: &[(String, i64)],
    ) -> Result<u64> {
        let mut builder = self.writer(batch, SaveMode::Overwrite, txns)?;
        if let Some(p) = replace_where {
            builder = builder.with_replace_where(p);
        }
        self.table = builder.await.map_err(|source| self.err(Operation::Write, source))?;
        self.evolve = false;
        Ok(self.version().unwrap_or_default())
    }

    /// Upserts `rows` (the contract's columns) by `spec.key`, in one commit recording
    /// `txns`: a row replaces the stored one unless the stored one is newer by
    /// `spec.sequence_by`; rows flagged in `spec.delete_flag` delete instead. `rows` must
    /// hold at most one row per key.
    pub async fn merge_txns(&mut self, rows: &RecordBatch, spec: &MergeSpec, txns: &[(String, i64)]) -> Result<u64> {
        let arrow_err = |source| Error::Arrow {
            table: self.name.clone(),
            source,
        };
        let rows = match &spec.delete_flag {
            Some(f) => self.without_absent_deletes(rows, f, &spec.key).await?,
            None => rows.clone(),
        };
        let (data, flag) = match &spec.delete_flag {
            Some(f) => {
                let idx = rows.schema().index_of(f).map_err(arrow_err)?;
                let mut data = rows.clone();
                let flag = data.remove_column(idx);
                (data, Some((f.clone(), flag)))
            }
            None => (rows.clone(), None),
        };
        let mut full = with_partition_values(&data, &self.schema, &self.partitions).map_err(arrow_err)?;
        if let Some((name, flag)) = flag {
            let mut fields: Vec<_> = full.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(deltalake::arrow::datatypes::Field::new(
                &name,
                flag.data_type().clone(),
                true,
            ));
            let mut columns = full.columns().to_vec();
            columns.push(flag);
            full = RecordBatch::try_new(Arc::new(deltalake::arrow::datatypes::Schema::new(fields)), columns)
                .map_err(arrow_err)?;
        }
        let ctx = SessionContext::new();
        let source = ctx.read_batch(full).map_err(|source| self.query_err(source))?;
        let q = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
        let on = spec
            .key
            .iter()
            .map(|k| format!("target.{k} = source.{k}", k = q(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let newer = spec
            .sequence_by
            .as_ref()
            .map(|s| format!("source.{s} >= target.{s}", s = q(s)));
        let deleting = spec.delete_flag.as_ref().map(|f| format!("source.{}", q(f)));
        let not_deleting = deleting.as_ref().map(|d| format!("NOT {d}"));
        let both = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => Some(format!("{a} AND {b}")),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let columns: Vec<String> = self.schema.fields().iter().map(|f| f.name().clone()).collect();
        let props = commit_properties(txns);
        let merge_err = |source| self.err(Operation::Merge, source);
        let mut builder = self
            .table
            .clone()
            .merge(source, on)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_writer_properties(writer_properties())
            .with_commit_properties(props);
        if let Some(limit) = self.merge_memory {
            // Past the limit, sorts and aggregations spill to disk; the scan of the
            // target streams, and files outside the source's key range are pruned by
            // their statistics before they are read.
            let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .with_memory_limit(limit, 1.0)
                .build_arc()
                .map_err(|source| self.query_err(source))?;
            // One partition: a bounded pool with the RepartitionExec of a partitioned
            // hash join can deadlock, the merge hanging with no error (delta-rs#4614,
            // apache/datafusion#17334).
            let config = datafusion::prelude::SessionConfig::new().with_target_partitions(1);
            let state = datafusion::execution::SessionStateBuilder::new()
                .with_default_features()
                .with_config(config)
                .with_runtime_env(runtime)
                .build();
            builder = builder.with_session_state(Arc::new(state));
        }
        if let Some(d) = both(&deleting, &newer) {
            builder = builder.when_matched_delete(|del| del.predicate(d)).map_err(merge_err)?;
        }
        let update_when = both(&not_deleting, &newer);
        builder = builder
            .when_matched_update(|u| {
                let u = match update_when {
                    Some(p) => u.predicate(p),
                    None => u,
                };
                columns
                    .iter()
                    .fold(u, |u, c| u.update(c.as_str(), format!("source.{}", q(c))))
            })
            .map_err(merge_err)?
            .when_not_matched_insert(|i| {
                let i = match &not_deleting {
                    Some(p) => i.predicate(p.clone()),
                    None => i,
                };
                columns
                    .iter()
                    .fold(i, |i, c| i.set(c.as_str(), format!("source.{}", q(c))))
            })
            .map_err(merge_err)?;
        let (table, _metrics) = builder.await.map_err(merge_err)?;
        self.table = table;
        self.evolve = false;
        Ok(self.version().unwrap_or_default())
    }

    /// The rows of `batch` that this tombstone table does not outdate: deletes, and
    /// changes newer than any delete recorded for their key (by `sequence`).
    pub async fn not_outdated(
        &self,
        batch: &RecordBatch,
        key: &[String],
        sequence: &str,
        flag: &str,
    ) -> Result<RecordBatch> {
        let query_err = |source| Error::Query {
            table: self.name.clone(),
            source,
        };
        if batch.num_rows() == 0 {
            return Ok(batch.clone());
        }
        let q = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
        let ctx = SessionContext::new();
        self.table
            .update_datafusion_session(&ctx.state())
            .map_err(|source| self.err(Operation::Read, source))?;
        let provider = crate::snapshot_provider(&self.table).await.map_err(query_err)?;
        ctx.register_table("t", provider).map_err(query_err)?;
        ctx.register_batch("b", batch.clone()).map_err(query_err)?;
        let on = key
            .iter()
            .map(|k| format!("b.{k} = t.{k}", k = q(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let sql = format!(
            "SELECT b.* FROM b LEFT JOIN t ON {on} WHERE b.{f} OR t.{s} IS NULL OR b.{s} > t.{s}",
            f = q(flag),
            s = q(sequence)
        );
        let kept = ctx
            .sql(&sql)
            .await
            .map_err(query_err)?
            .collect()
            .await
            .map_err(query_err)?;
        let arrow_err = |source| Error::Arrow {
            table: self.name.clone(),
            source,
        };
        let columns = (0..batch.num_columns())
            .map(|i| {
                let parts: Vec<&dyn deltalake::arrow::array::Array> =
                    kept.iter().map(|b| b.column(i).as_ref()).collect();
                if parts.is_empty() {
                    Ok(deltalake::arrow::array::new_empty_array(batch.column(i).data_type()))
                } else {
                    deltalake::arrow::compute::concat(&parts).map_err(arrow_err)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(batch.schema(), columns).map_err(arrow_err)
    }

    /// `rows` without the deletes of keys the table does not hold: they have nothing to
    /// delete, and delta-rs 1.1 checks the table's NOT NULL constraints on a source row
    /// that no merge clause writes (as an all-NULL row), failing the merge, as when a
    /// row is created and deleted within one batch.
    async fn without_absent_deletes(&self, rows: &RecordBatch, flag: &str, key: &[String]) -> Result<RecordBatch> {
        use deltalake::arrow::array::{Array, AsArray, BooleanArray};
        use deltalake::arrow::compute::{cast, filter_record_batch};
        use deltalake::arrow::datatypes::DataType;
        let arrow_err = |source| Error::Arrow {
            table: self.name.clone(),
            source,
        };
        let idx = rows.schema().index_of(flag).map_err(arrow_err)?;
        let flags = rows
            .column(idx)
            .as_boolean_opt()
            .cloned()
            .unwrap_or_else(|| BooleanArray::from(vec![false; rows.num_rows()]));
        if flags.true_count() == 0 {
            return Ok(rows.clone());
        }
        // Each row's key as text, to compare with the keys the table holds.
        let key_text = |batch: &RecordBatch| -> Result<Vec<String>> {
            let cols = key
                .iter()
                .map(|k| {
                    let c = batch.column(batch.schema().index_of(k).map_err(arrow_err)?);
                    cast(c, &DataType::Utf8).map_err(arrow_err)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((0..batch.num_rows())
                .map(|i| {
                    cols.iter()
                        .map(|c| {
                            let s = c.as_string::<i32>();
                            if s.is_valid(i) { s.value(i) } else { "\u{0}" }
                        })
                        .collect::<Vec<_>>()
                        .join("\u{1f}")
                })
                .collect())
        };
        let deletes = filter_record_batch(rows, &flags).map_err(arrow_err)?;
        let q = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
        let first = q(&key[0]);
        let literals: Vec<String> = {
            let c = cast(
                deletes.column(deletes.schema().index_of(&key[0]).map_err(arrow_err)?),
                &DataType::Utf8,
            )
            .map_err(arrow_err)?;
            let s = c.as_string::<i32>();
            let mut v: Vec<String> = (0..s.len())
                .filter(|i| s.is_valid(*i))
                .map(|i| format!("'{}'", s.value(i).replace('\'', "''")))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let held: std::collections::HashSet<String> = if literals.is_empty() {
            Default::default()
        } else {
            let sql = format!(
                "SELECT {} FROM t WHERE CAST({first} AS VARCHAR) IN ({})",
                key.iter().map(|k| q(k)).collect::<Vec<_>>().join(", "),
                literals.join(", ")
            );
            let batches = self.query(&sql).await?;
            let mut held = std::collections::HashSet::new();
            for b in &batches {
                held.extend(key_text(b)?);
            }
            held
        };
        let all = key_text(rows)?;
        let keep: BooleanArray = (0..rows.num_rows())
            .map(|i| Some(!(flags.is_valid(i) && flags.value(i)) || held.contains(&all[i])))
            .collect();
        filter_record_batch(rows, &keep).map_err(arrow_err)
    }

    /// Whether `batch` has the table's own column types, as [`Self::blind_append`] needs;
    /// other batches (unsigned integers, say) go through delta-rs's write, which casts.
    fn writes_blind(&self, batch: &RecordBatch) -> bool {
        let Ok(snapshot) = self.table.snapshot() else {
            return false;
        };
        let table = snapshot.snapshot().arrow_schema();
        batch.schema().fields().iter().all(|f| {
            table
                .field_with_name(f.name())
                .is_ok_and(|t| t.data_type() == f.data_type())
        })
    }

    /// Writes `batch`'s Parquet files and commits their `add` actions with `txns`, without
    /// planning a DataFusion write: an append needs no scan, no predicate and no schema
    /// change, and the planning cost more than the encoding on small group commits.
    async fn blind_append(&mut self, batch: &RecordBatch, txns: &[(String, i64)]) -> Result<u64, DeltaTableError> {
        let full = with_partition_values(batch, &self.schema, &self.partitions)?;
        let started = std::time::Instant::now();
        let adds: Vec<Action> = write_files(&self.table, full)
            .await?
            .into_iter()
            .map(Action::Add)
            .collect();
        let written = started.elapsed();
        let log_store = self.table.log_store();
        let next = self
            .version()
            .map(|v| v + 1)
            .filter(|_| commits_by_put(log_store.as_ref()));
        let direct = if next.is_none() {
            None
        } else {
            let prepared = CommitBuilder::from(commit_properties(txns))
                .with_actions(adds.clone())
                .build(
                    Some(self.table.snapshot()?),
                    log_store.clone(),
                    append_operation(&self.table)?,
                )
                .into_prepared_commit_future()
                .await?;
            match (prepared.commit_or_bytes(), next) {
                (entry @ CommitOrBytes::LogBytes(_), Some(_)) => {
                    let entry = entry.clone();
                    drop(prepared);
                    self.commit_next(entry, txns).await?
                }
                _ => None,
            }
        };
        let version = match direct {
            Some(version) => version,
            // Another writer committed since (or the store commits through temporary
            // files): the general path, conflict checks included, on the reloaded state.
            None => {
                self.head = None;
                self.table.update_incremental(None).await?;
                let finalized = CommitBuilder::from(commit_properties(txns))
                    .with_actions(adds)
                    .build(Some(self.table.snapshot()?), log_store, append_operation(&self.table)?)
                    .await?;
                self.table.state = Some(finalized.snapshot());
                finalized.version()
            }
        };
        tracing::debug!(
            table = %self.name,
            rows = batch.num_rows(),
            version,
            direct = direct.is_some(),
            write_ms = written.as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - written).as_secs_f64() * 1e3,
            "appended"
        );
        Ok(version)
    }

    /// Writes `entry` at the version after [`Self::version`], stepping over commits that a
    /// blind append does not conflict with (see [`Self::step_over`]) and that did not
    /// record any of `txns`. `None` when a commit in the way changed the table otherwise:
    /// the caller takes the general path.
    async fn commit_next(
        &mut self,
        entry: CommitOrBytes,
        txns: &[(String, i64)],
    ) -> Result<Option<u64>, DeltaTableError> {
        let log_store = self.table.log_store();
        loop {
            let Some(next) = self.version().map(|v| v + 1) else {
                return Ok(None);
            };
            match log_store
                .write_commit_entry(next, entry.clone(), uuid::Uuid::new_v4())
                .await
            {
                Ok(()) => {
                    self.head = Some(next);
                    return Ok(Some(next));
                }
                Err(TransactionError::VersionAlreadyExists(_)) => {
                    if !self.step_over().await? {
                        return Ok(None);
                    }
                    for (app, version) in txns {
                        let held = self
                            .txn_version(app)
                            .await
                            .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
                        if held.is_some_and(|h| h >= *version) {
                            return Err(DeltaTableError::Transaction {
                                source: TransactionError::CommitConflict(
                                    deltalake::kernel::transaction::CommitConflictError::ConcurrentTransaction,
                                ),
                            });
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves [`Self::version`] past the commits after it that leave an appender's view of
    /// the table as it was: appends, transactions, and rewrites of files without a data
    /// change (compactions). Stops at the end of the log (`true`) or at the first commit
    /// that did anything else, such as a schema change or a delete (`false`).
    async fn step_over(&mut self) -> Result<bool, DeltaTableError> {
        let log_store = self.table.log_store();
        loop {
            let Some(next) = self.version().map(|v| v + 1) else {
                return Ok(false);
            };
            match commit_only(log_store.as_ref(), next, |kind, body| match kind {
                "add" | "txn" | "commitInfo" => true,
                "remove" => body.get("dataChange").and_then(serde_json::Value::as_bool) == Some(false),
                _ => false,
            })
            .await?
            {
                None => return Ok(true),
                Some(false) => return Ok(false),
                Some(true) => {}
            }
            self.head = Some(next);
        }
    }

    /// A write of `batch` (the contract's columns; derived partition columns are added)
    /// in one commit that records `txns`, merging added columns into the schema.
    fn writer(
        &self,
        batch: &RecordBatch,
        mode: SaveMode,
        txns: &[(String, i64)],
    ) -> Result<deltalake::operations::write::WriteBuilder> {
        let full = with_partition_values(batch, &self.schema, &self.partitions).map_err(|source| Error::Arrow {
            table: self.name.clone(),
            source,
        })?;
        let props = commit_properties(txns);
        let mut builder = self
            .table
            .clone()
            .write(vec![full])
            .with_writer_properties(writer_properties())
            .with_save_mode(mode)
            .with_commit_properties(props);
        let partition_names: Vec<String> = self.partitions.iter().map(|p| p.name.clone()).collect();
        if !partition_names.is_empty() {
            builder = builder.with_partition_columns(partition_names);
        }
        if self.evolve {
            builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
        }
        Ok(builder)
    }

    fn query_err(&self, source: datafusion::error::DataFusionError) -> Error {
        Error::Query {
            table: self.name.clone(),
            source,
        }
    }

    fn err(&self, operation: Operation, source: DeltaTableError) -> Error {
        Error::Delta {
            operation,
            table: self.name.clone(),
            source,
        }
    }
}

/// Runs SQL over one Delta table registered as `t`.
pub async fn query_table(table: &DeltaTable, name: &str, sql: &str) -> Result<Vec<RecordBatch>> {
    let query_err = |source| Error::Query {
        table: name.to_string(),
        source,
    };
    let ctx = SessionContext::new();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|source| Error::Delta {
            operation: Operation::Read,
            table: name.to_string(),
            source,
        })?;
    let provider = crate::snapshot_provider(table).await.map_err(query_err)?;
    ctx.register_table("t", provider).map_err(query_err)?;
    ctx.sql(sql)
        .await
        .map_err(query_err)?
        .collect()
        .await
        .map_err(query_err)
}

/// The table at `url`, loaded if it exists; a local directory is made first.
async fn open_at(lake: &Lake, url: &Url, name: &str) -> Result<DeltaTable> {
    let delta_err = |operation, source| Error::Delta {
        operation,
        table: name.to_string(),
        source,
    };
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        std::fs::create_dir_all(&path).map_err(|e| {
            delta_err(
                Operation::Create,
                DeltaTableError::Generic(format!("cannot create `{}`: {e}", path.display())),
            )
        })?;
    }
    DeltaTable::try_from_url_with_storage_options(url.clone(), lake.storage_options().clone())
        .await
        .map_err(|e| delta_err(Operation::Open, e))
}

/// Target file size of merged products' tables (bytes).
const MERGE_FILE_SIZE: u64 = 32 * 1024 * 1024;

async fn create(
    table: &DeltaTable,
    contract: &Contract,
    kind: TableKind,
    schema: &SchemaRef,
    partitions: &[PartitionColumn],
) -> Result<DeltaTable, DeltaTableError> {
    let structure: StructType = schema.as_ref().try_into_kernel()?;
    let mut builder = table
        .create()
        .with_columns(structure.fields().cloned())
        .with_save_mode(SaveMode::Ignore)
        .with_table_name(contract.product.value.to_string());
    if let Some(d) = &contract.description {
        builder = builder.with_comment(d.clone());
    }
    if !partitions.is_empty() {
        builder = builder.with_partition_columns(partitions.iter().map(|p| p.name.clone()));
    }
    // Bronze and dead letters are logs: nothing rewrites them.
    let append_only = kind == TableKind::DeadLetters || contract.layer == Layer::Bronze;
    builder = builder.with_configuration_property(TableProperty::AppendOnly, Some(append_only.to_string()));
    // Models read their inputs incrementally from the change data feed.
    if kind == TableKind::Data {
        builder = builder.with_configuration_property(TableProperty::EnableChangeDataFeed, Some("true".to_string()));
    }
    // A merge rewrites every file holding a changed key, and holds one file's rows in
    // memory while it decides; smaller files keep both small (as Databricks'
    // `tuneFileSizesForRewrites` does for tables that take MERGEs).
    if kind == TableKind::Data
        && matches!(&contract.source, trib_spec::Source::Model(m) if m.materialized == trib_spec::Materialization::Merge)
    {
        builder = builder.with_configuration_property(TableProperty::TargetFileSize, Some(MERGE_FILE_SIZE.to_string()));
    }
    if let Some(r) = contract.retention {
        // Removed files stay at least as long as the contract promises to keep data.
        let days = r.as_secs().div_ceil(86_400).max(7);
        builder = builder.with_configuration_property(
            TableProperty::DeletedFileRetentionDuration,
            Some(format!("interval {days} days")),
        );
        // Time travel needs the log as long as the files: keep both for as long.
        builder = builder.with_configuration_property(
            TableProperty::LogRetentionDuration,
            Some(format!("interval {} days", days.max(30))),
        );
    }
    builder.await
}

/// A commit recording `txns`. The log is not cleaned after it: delta-rs's cleanup lists
/// the whole `_delta_log` on every commit, a cost that grows with the table's age and
/// is paid by every group commit; `trib maintain` and the server's compactions clean it.
fn commit_properties(txns: &[(String, i64)]) -> CommitProperties {
    CommitProperties::default()
        .with_application_transactions(txns.iter().map(|(app, v)| Transaction::new(app, *v)).collect())
        .with_cleanup_expired_logs(Some(false))
}

/// Whether the log store commits with a conditional put of the commit's bytes, which a
/// writer can do itself at a version of its choice; other stores rename a temporary
/// file, through delta-rs's commit.
pub(crate) fn commits_by_put(log_store: &dyn deltalake::logstore::LogStore) -> bool {
    matches!(log_store.name().as_str(), "DefaultLogStore" | "LakeFSLogStore")
}

/// A blind append's operation, as `commitInfo` records it.
fn append_operation(table: &DeltaTable) -> Result<DeltaOperation, DeltaTableError> {
    let partition_by = table.snapshot()?.metadata().partition_columns().to_vec();
    Ok(DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: (!partition_by.is_empty()).then_some(partition_by),
        predicate: None,
    })
}

/// Whether every action of commit `version` passes `allowed` (given the action's kind,
/// such as `add`, and its body); `None` when there is no such commit.
pub(crate) async fn commit_only(
    log_store: &dyn deltalake::logstore::LogStore,
    version: u64,
    allowed: impl Fn(&str, &serde_json::Value) -> bool,
) -> Result<Option<bool>, DeltaTableError> {
    let Some(bytes) = log_store.read_commit_entry(version).await? else {
        return Ok(None);
    };
    for line in bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
    {
        let action: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)?;
        if !action.iter().all(|(kind, body)| allowed(kind, body)) {
            return Ok(Some(false));
        }
    }
    Ok(Some(true))
}

/// Rows a writer committed to one table as consecutive versions, one batch (in the
/// contract's schema) per version, kept so that they can be checked without reading
/// them back.
#[derive(Debug, Clone)]
pub struct Committed {
    pub first: u64,
    pub last: u64,
    pub batches: Vec<RecordBatch>,
}

/// Rows per Parquet writer above which a batch is split among several, written at once:
/// encoding is most of an append's time, and one writer uses one core.
const ROWS_PER_WRITER: usize = 100_000;

/// The ranges of consecutive rows of `batch` that share their partition values, when
/// rows of a partition mostly arrive together (a day's events); `None` when they are
/// scattered, and delta-rs's writer groups them instead (by copying each partition's rows).
fn partition_runs(
    batch: &RecordBatch,
    partition_columns: &[String],
) -> Result<Option<Vec<std::ops::Range<usize>>>, DeltaTableError> {
    let rows = batch.num_rows();
    if partition_columns.is_empty() {
        return Ok(Some(std::iter::once(0..rows).collect()));
    }
    let Some(columns) = partition_columns
        .iter()
        .map(|name| batch.column_by_name(name).cloned())
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let runs = deltalake::arrow::compute::partition(&columns)?;
    Ok((runs.len() <= (rows / RUN_ROWS).max(1)).then(|| runs.ranges()))
}

/// Rows per Parquet row group. A scan splits its work across cores by row groups, and
/// skips them by their statistics: a file of one large row group is read by one core,
/// whole. About what DuckDB and Spark write (122,880 rows; 128 MiB).
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;

/// How every data file of a product table is written: Snappy, statistics per page, and
/// row groups of `ROW_GROUP_ROWS` rows.
pub(crate) fn writer_properties() -> deltalake::parquet::file::properties::WriterProperties {
    deltalake::parquet::file::properties::WriterProperties::builder()
        .set_created_by(format!("trib {}", env!("CARGO_PKG_VERSION")))
        .set_compression(deltalake::parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Rows per run of one partition, on average, below which rows count as scattered.
const RUN_ROWS: usize = 1_000;

/// Writes `batch` (with its partition columns) as new data files of `table`, in parallel
/// halves when it is large; returns their add actions, nothing committed.
async fn write_files(table: &DeltaTable, batch: RecordBatch) -> Result<Vec<deltalake::kernel::Add>, DeltaTableError> {
    let rows = batch.num_rows();
    if rows == 0 {
        return RecordBatchWriter::for_table(table)?
            .with_writer_properties(writer_properties())
            .flush()
            .await;
    }
    let writers = (rows / ROWS_PER_WRITER).clamp(1, std::thread::available_parallelism().map_or(1, |n| n.get()));
    let partition_columns: Vec<String> = table.snapshot()?.metadata().partition_columns().to_vec();
    let mut tasks = Vec::with_capacity(writers);
    for i in 0..writers {
        let (from, to) = (rows * i / writers, rows * (i + 1) / writers);
        let mut writer = RecordBatchWriter::for_table(table)?.with_writer_properties(writer_properties());
        let part = batch.slice(from, to - from);
        let partition_columns = partition_columns.clone();
        tasks.push(tokio::spawn(async move {
            match partition_runs(&part, &partition_columns)? {
                // Each run of one partition's rows goes to its file as a slice: no copy.
                Some(runs) => {
                    for run in runs {
                        let values = partition_columns
                            .iter()
                            .map(|name| {
                                let column = part.column_by_name(name).map(|c| c.as_ref());
                                let value = column.and_then(|c| ScalarExt::from_array(c, run.start));
                                value.map(|v| (name.clone(), v)).ok_or_else(|| {
                                    DeltaTableError::generic(format!("no value of partition column `{name}`"))
                                })
                            })
                            .collect::<Result<_, _>>()?;
                        writer
                            .write_partition(part.slice(run.start, run.len()), &values, WriteMode::Default)
                            .await?;
                    }
                }
                None => writer.write(part).await?,
            }
            writer.flush().await
        }));
    }
    let mut adds = Vec::new();
    for t in tasks {
        adds.extend(t.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?);
    }
    Ok(adds)
}
