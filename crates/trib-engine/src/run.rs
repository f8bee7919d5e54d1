//! One model run: read what is new in its inputs, run its SQL, write the result the way
//! the contract materialises it, and record the input versions read in the same commit.

use crate::dag::{Dag, Node};
use crate::metrics as m;
use crate::{Error, Result};
use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::prelude::{DataFrame, SessionContext};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use trib_lake::{Lake, MergeSpec, ProductTable, TableKind};
use trib_spec::{Contract, Materialization, Source};

/// Columns the change data feed adds to each row.
const CDF_COLUMNS: [&str; 3] = ["_change_type", "_commit_version", "_commit_timestamp"];
/// The Debezium operation of a CDC bronze row (`trib_spec::cdc_columns`).
const CDC_OP: &str = "_op";
/// The flag column handed to merges: true deletes the row.
const DELETE_FLAG: &str = "__trib_delete";

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub product: String,
    pub major: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No input changed since the last run.
    UpToDate,
    /// A view: computed at query time, nothing stored.
    View,
    /// Written in table `version`: `rows` rows out of the run's SQL, from `read` input rows.
    /// `late`: input rows later than the watermark (dead-lettered or merged, as the
    /// contract says), or for an incremental model the closed windows recomputed for
    /// late input (late updates). `duplicates`: input rows dropped as repeats of an event.
    Committed {
        version: u64,
        rows: u64,
        read: u64,
        late: u64,
        duplicates: u64,
    },
}

/// Runs the models of one project.
pub struct Engine {
    lake: Lake,
    dag: Dag,
    dir: PathBuf,
    gate: Option<Arc<dyn crate::CommitGate>>,
    /// Where OpenLineage run events go, and their namespace.
    lineage: Option<(Arc<dyn crate::openlineage::LineageSink>, String)>,
}

/// What a run wrote; see [`Outcome::Committed`].
struct Written {
    version: u64,
    rows: u64,
    read: u64,
    late: u64,
    duplicates: u64,
}

/// What a streaming model read of its stream input.
struct StreamRead {
    rows: u64,
    late: u64,
    duplicates: u64,
    /// The txn recording the latest event time read, committed with the output so that
    /// the next run's watermark needs no scan of the input.
    watermark: Option<(String, i64)>,
}

/// The txn application id under which a model records the latest event time it read of
/// an input (microseconds, as the txn's version).
fn watermark_id(input: &Node) -> String {
    format!("watermark:{}@v{}", input.0, input.1)
}

/// An input as this run reads it.
struct InputState {
    node: Node,
    table: ProductTable,
    /// Table version now.
    version: u64,
    /// Last version the target has read, from its txn.
    consumed: Option<u64>,
}

impl InputState {
    fn app_id(&self) -> String {
        app_id(&self.node)
    }
}

/// The transaction id under which a model records the version it read of an input.
pub fn app_id(input: &Node) -> String {
    format!("input:{}@v{}", input.0, input.1)
}

impl Engine {
    pub fn new(lake: Lake, project: &trib_spec::Project) -> Self {
        Self {
            lake,
            dag: Dag::new(project),
            dir: project.dir.clone(),
            gate: None,
            lineage: None,
        }
    }

    /// Each run that reads new input sends OpenLineage events to `sink`, with datasets
    /// and the job in `namespace`.
    pub fn with_lineage(
        mut self,
        sink: Arc<dyn crate::openlineage::LineageSink>,
        namespace: impl Into<String>,
    ) -> Self {
        self.lineage = Some((sink, namespace.into()));
        self
    }

    /// Every commit's rows are shown to `gate` first, which may stop it.
    /// Deletes are remembered per key with their sequence (in the product's tombstone
    /// table), and changes older than a remembered delete are dropped: a change that
    /// arrives after its row's delete does not bring the row back, whether the delete
    /// came in this batch or an earlier one. For merges with `sequence_by` whose input
    /// carries deletes (CDC); others pass through.
    async fn tombstones(&self, contract: &Contract, batch: RecordBatch) -> Result<RecordBatch> {
        let product = contract.product.value.to_string();
        let (Some(seq), Ok(idx)) = (
            contract.sequence_by.as_ref().map(|s| s.value.clone()),
            batch.schema().index_of(DELETE_FLAG),
        ) else {
            return Ok(batch);
        };
        let key: Vec<String> = contract.key.iter().map(|k| k.value.clone()).collect();
        let mut tombs = ProductTable::open_or_create(&self.lake, contract, TableKind::Tombstones)
            .await
            .map_err(Error::Lake)?;
        let kept = tombs
            .not_outdated(&batch, &key, &seq, DELETE_FLAG)
            .await
            .map_err(Error::Lake)?;
        let flags = kept
            .column(idx)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .cloned()
            .ok_or_else(|| Error::Internal("the delete flag is not boolean".into()))?;
        if flags.true_count() > 0 {
            let deletes = arrow::compute::filter_record_batch(&kept, &flags).map_err(|e| Error::arrow(&product, e))?;
            let columns = key
                .iter()
                .chain(std::iter::once(&seq))
                .map(|c| deletes.schema().index_of(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::arrow(&product, e))?;
            let deletes = deletes.project(&columns).map_err(|e| Error::arrow(&product, e))?;
            let spec = MergeSpec {
                key,
                sequence_by: Some(seq),
                delete_flag: None,
            };
            tombs.merge_txns(&deletes, &spec, &[]).await.map_err(Error::Lake)?;
        }
        Ok(kept)
    }

    /// Registers the stream input of an append or merge model: the rows that changed
    /// since the last run (every row on a rebuild), after the model's arrival rules
    /// (late events, duplicate event ids; see [`crate::arrival`]). Late rows the contract
    /// dead-letters are written to the model's dead-letter table, once per input commit.
    async fn register_stream(
        &self,
        ctx: &SessionContext,
        contract: &Contract,
        target: &ProductTable,
        input: &InputState,
        rebuild: bool,
    ) -> Result<StreamRead> {
        let product = contract.product.value.to_string();
        let input_contract = self
            .dag
            .contract(&input.node)
            .ok_or_else(|| Error::UnknownProduct(input.node.0.clone()))?;
        let schema = Arc::new(input_contract.data_schema());
        let Some(rules) = crate::arrival::Arrivals::new(contract, input_contract, &schema)? else {
            let rows = register_changes(ctx, input, false).await?;
            return Ok(StreamRead {
                rows,
                late: 0,
                duplicates: 0,
                watermark: None,
            });
        };
        // Arrival order is the input's commit order: a first run or a rebuild reads the
        // whole feed when the table still has it (compaction and vacuum may have taken
        // old files away). Version 0 of a product table is its empty creation.
        let consumed = if rebuild { None } else { input.consumed };
        let from_start = consumed.is_none() && input.version > 0;
        let after = if from_start { Some(0) } else { consumed };
        let (schema, batches) = match input.table.changes(after, input.version).await {
            Ok(r) => r,
            Err(e) if from_start => {
                tracing::warn!(product = %product, input = %input.node.0, error = %e,
                    "the input's change feed from version 0 is gone; late events and duplicates are judged in table order");
                input.table.changes(None, input.version).await.map_err(Error::Lake)?
            }
            Err(e) => return Err(Error::Lake(e)),
        };
        let all = arrow::compute::concat_batches(&schema, &batches).map_err(|e| Error::arrow(&product, e))?;
        let data = table_columns(&schema);
        let id = watermark_id(&input.node);
        let known_max = match consumed {
            Some(_) => target.txn_version(&id).await.map_err(Error::Lake)?,
            None => None,
        };
        let sorted = rules.sort(&input.table, consumed, known_max, all, &data).await?;
        let late_rows: u64 = sorted.late.iter().map(|(b, _, _)| b.num_rows() as u64).sum();
        if !sorted.late.is_empty() {
            self.dead_letter_late(contract, input, &rules, sorted.late).await?;
        }
        if late_rows > 0 {
            metrics::counter!(m::MODEL_LATE_ROWS, "product" => product.clone(), "policy" => "dead_letter")
                .increment(late_rows);
        }
        if sorted.late_kept > 0 {
            metrics::counter!(m::MODEL_LATE_ROWS, "product" => product.clone(), "policy" => "merge")
                .increment(sorted.late_kept);
        }
        if sorted.duplicates > 0 {
            metrics::counter!(m::MODEL_DUPLICATES, "product" => product.clone()).increment(sorted.duplicates);
        }
        let rows = register_batches(ctx, input, schema, vec![sorted.kept], false)?;
        Ok(StreamRead {
            rows,
            late: late_rows + sorted.late_kept,
            duplicates: sorted.duplicates,
            watermark: sorted.max_seen.map(|m| (id, m)),
        })
    }

    /// Appends late rows to the model's dead-letter table. The commit records, per input,
    /// the input version read up to, so rows of input commits already dead-lettered (by a
    /// run that died before its own commit, or before a replay) are not written twice.
    async fn dead_letter_late(
        &self,
        contract: &Contract,
        input: &InputState,
        rules: &crate::arrival::Arrivals,
        late: Vec<(RecordBatch, u64, i64)>,
    ) -> Result<()> {
        let product = contract.product.value.to_string();
        let mut dl = ProductTable::open_or_create(&self.lake, contract, TableKind::DeadLetters)
            .await
            .map_err(Error::Lake)?;
        let app = format!("late:{}", app_id(&input.node));
        let done = dl
            .txn_version(&app)
            .await
            .map_err(Error::Lake)?
            .and_then(|v| u64::try_from(v).ok());
        let now = chrono::Utc::now().timestamp_micros();
        let mut letters = Vec::new();
        for (rows, version, watermark) in late {
            if done.is_some_and(|d| version <= d) {
                continue;
            }
            letters.push(rules.dead_letters(&rows, version, watermark, now)?);
        }
        if letters.is_empty() {
            return Ok(());
        }
        let batch =
            arrow::compute::concat_batches(&letters[0].schema(), &letters).map_err(|e| Error::arrow(&product, e))?;
        dl.append_txns(&batch, &[(app, input.version as i64)])
            .await
            .map_err(Error::Lake)?;
        tracing::info!(product = %product, rows = batch.num_rows(), "late input rows dead-lettered");
        Ok(())
    }

    pub fn with_gate(mut self, gate: Arc<dyn crate::CommitGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    async fn inspect(&self, contract: &Contract, rows: &RecordBatch) -> Result<()> {
        let Some(gate) = &self.gate else {
            return Ok(());
        };
        let product = contract.product.value.to_string();
        // Rows a merge deletes are not part of the product: checks see the rest.
        let rows = match rows.schema().index_of(DELETE_FLAG) {
            Ok(i) => {
                let deleted = rows
                    .column(i)
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| Error::Internal("the delete flag is not boolean".into()))?;
                let kept = arrow::compute::not(deleted).map_err(|e| Error::arrow(&product, e))?;
                let kept = arrow::compute::filter_record_batch(rows, &kept).map_err(|e| Error::arrow(&product, e))?;
                let mut keep: Vec<usize> = (0..kept.num_columns()).collect();
                keep.remove(i);
                kept.project(&keep).map_err(|e| Error::arrow(&product, e))?
            }
            Err(_) => rows.clone(),
        };
        match gate.inspect(contract, &rows).await {
            None => Ok(()),
            Some(reason) => Err(Error::Blocked { product, reason }),
        }
    }

    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Catches one model up with its inputs.
    pub async fn run(&self, node: &Node) -> Result<RunReport> {
        self.run_with(node, false).await
    }

    /// Rebuilds a model from the whole of its inputs (bronze from version 0 up), written
    /// as a new version of its table that replaces every row. The result equals what the
    /// incremental runs built.
    pub async fn replay(&self, node: &Node) -> Result<RunReport> {
        self.run_with(node, true).await
    }

    async fn run_with(&self, node: &Node, rebuild: bool) -> Result<RunReport> {
        let started = Instant::now();
        let contract = self
            .dag
            .contract(node)
            .ok_or_else(|| Error::UnknownProduct(node.0.clone()))?
            .clone();
        let Source::Model(model) = &contract.source else {
            return Err(Error::NotAModel(node.0.clone()));
        };
        let report = |outcome| RunReport {
            product: node.0.clone(),
            major: node.1,
            outcome,
        };
        if model.materialized == Materialization::View {
            return Ok(report(Outcome::View));
        }
        let mut target = ProductTable::open_or_create(&self.lake, &contract, TableKind::Data)
            .await
            .map_err(Error::Lake)?;
        let mut inputs = Vec::new();
        for i in self.dag.inputs(node) {
            let c = self
                .dag
                .contract(i)
                .ok_or_else(|| Error::UnknownProduct(i.0.clone()))?
                .clone();
            let mut table = ProductTable::open_or_create(&self.lake, &c, TableKind::Data)
                .await
                .map_err(Error::Lake)?;
            table.refresh().await.map_err(Error::Lake)?;
            let version = table.version().unwrap_or_default();
            let consumed = if rebuild {
                None
            } else {
                target
                    .txn_version(&app_id(i))
                    .await
                    .map_err(Error::Lake)?
                    .and_then(|v| u64::try_from(v).ok())
            };
            inputs.push(InputState {
                node: i.clone(),
                table,
                version,
                consumed,
            });
        }
        if !rebuild && inputs.iter().all(|i| i.consumed == Some(i.version)) {
            return Ok(report(Outcome::UpToDate));
        }
        let sql = model.read_sql(&self.dir).map_err(|source| Error::Io {
            path: self.dir.join(&model.transform.value),
            source,
        })?;
        let txns: Vec<(String, i64)> = inputs.iter().map(|i| (i.app_id(), i.version as i64)).collect();
        let product = contract.product.value.to_string();
        let events = match &self.lineage {
            Some((sink, namespace)) => {
                let columns = crate::lineage::columns(&self.dag, &self.dir, node).await.ok();
                let input_contracts: Vec<Contract> = inputs
                    .iter()
                    .filter_map(|i| self.dag.contract(&i.node).cloned())
                    .collect();
                Some((
                    sink.clone(),
                    namespace.clone(),
                    uuid::Uuid::new_v4().to_string(),
                    columns,
                    input_contracts,
                ))
            }
            None => None,
        };
        let emit = |phase: crate::openlineage::Phase<'_>| {
            if let Some((sink, namespace, run_id, columns, input_contracts)) = &events {
                let refs: Vec<&Contract> = input_contracts.iter().collect();
                let event = crate::openlineage::RunEvent {
                    namespace,
                    run_id,
                    model: &contract,
                    inputs: &refs,
                    sql: &sql,
                    lineage: columns.as_ref(),
                };
                sink.emit(event.to_json(phase, chrono::Utc::now()));
            }
        };
        emit(crate::openlineage::Phase::Start);
        let result: Result<Written> = async {
            Ok(match model.materialized {
                Materialization::Append | Materialization::Merge => {
                    // The first input is the stream; the others are references read whole.
                    let ctx = session();
                    let stream = self
                        .register_stream(&ctx, &contract, &target, &inputs[0], rebuild)
                        .await?;
                    let read = stream.rows;
                    let txns: Vec<(String, i64)> = txns.iter().cloned().chain(stream.watermark.clone()).collect();
                    let noted = |version, rows| Written {
                        version,
                        rows,
                        read,
                        late: stream.late,
                        duplicates: stream.duplicates,
                    };
                    for i in &inputs[1..] {
                        register_snapshot(&ctx, i).await?;
                    }
                    let out = run_sql(&ctx, &product, &sql).await?;
                    if rebuild {
                        // Every input row at once: for a merge, the latest row of each key
                        // that is not deleted, which is what the merges left.
                        let batch = if model.materialized == Materialization::Append {
                            conform(&contract, out, false).await?
                        } else {
                            let latest = latest_per_key(&ctx, &contract, out).await?;
                            let latest = self.tombstones(&contract, latest).await?;
                            without_deleted(&product, latest)?
                        };
                        let rows = batch.num_rows() as u64;
                        self.inspect(&contract, &batch).await?;
                        let v = target.overwrite_txns(&batch, None, &txns).await.map_err(Error::Lake)?;
                        noted(v, rows)
                    } else if model.materialized == Materialization::Append {
                        let batch = conform(&contract, out, false).await?;
                        let rows = batch.num_rows() as u64;
                        self.inspect(&contract, &batch).await?;
                        let v = match target.append_txns(&batch, &txns).await.map_err(Error::Lake)? {
                            trib_lake::Appended::Committed { version, .. } => version,
                            _ => target.version().unwrap_or_default(),
                        };
                        noted(v, rows)
                    } else {
                        let batch = latest_per_key(&ctx, &contract, out).await?;
                        let batch = self.tombstones(&contract, batch).await?;
                        let rows = batch.num_rows() as u64;
                        let spec = MergeSpec {
                            key: contract.key.iter().map(|k| k.value.clone()).collect(),
                            sequence_by: contract.sequence_by.as_ref().map(|s| s.value.clone()),
                            delete_flag: Some(DELETE_FLAG.into()),
                        };
                        self.inspect(&contract, &batch).await?;
                        let v = target.merge_txns(&batch, &spec, &txns).await.map_err(Error::Lake)?;
                        noted(v, rows)
                    }
                }
                Materialization::Incremental if inputs.iter().all(|i| i.consumed.is_some()) => {
                    self.replace_windows(&contract, &mut target, &inputs, &sql, &txns)
                        .await?
                }
                // Incremental models are built whole on their first run. Windows before
                // an input's retention cutoff were computed from rows since expired: a
                // rebuild keeps them as they are.
                Materialization::Incremental | Materialization::FullRefresh => {
                    let ctx = session();
                    let mut read = 0;
                    for i in &inputs {
                        read += register_snapshot(&ctx, i).await?;
                    }
                    let mut out = run_sql(&ctx, &product, &sql).await?;
                    let mut replace = None;
                    if model.materialized == Materialization::Incremental
                        && let Some(kept) = kept_windows(&contract, &inputs).await?
                    {
                        let only = out.parse_sql_expr(&kept).map_err(|e| Error::sql(&product, e))?;
                        out = out.filter(only).map_err(|e| Error::sql(&product, e))?;
                        replace = Some(kept);
                    }
                    let batch = conform(&contract, out, false).await?;
                    let rows = batch.num_rows() as u64;
                    self.inspect(&contract, &batch).await?;
                    let v = target
                        .overwrite_txns(&batch, replace, &txns)
                        .await
                        .map_err(Error::Lake)?;
                    Written {
                        version: v,
                        rows,
                        read,
                        late: 0,
                        duplicates: 0,
                    }
                }
                Materialization::View => unreachable!("views return early"),
            })
        }
        .await;
        let Written {
            version,
            rows,
            read,
            late,
            duplicates,
        } = match result {
            Ok(r) => {
                emit(crate::openlineage::Phase::Complete { rows: r.rows });
                r
            }
            Err(e) => {
                emit(crate::openlineage::Phase::Fail { error: &e.to_string() });
                return Err(e);
            }
        };
        metrics::histogram!(m::MODEL_RUN_SECONDS, "product" => product.clone()).record(started.elapsed().as_secs_f64());
        metrics::counter!(m::MODEL_ROWS_WRITTEN, "product" => product.clone()).increment(rows);
        tracing::info!(product = %product, version, rows, read, late, duplicates, "model run committed");
        Ok(report(Outcome::Committed {
            version,
            rows,
            read,
            late,
            duplicates,
        }))
    }

    /// An incremental model over event time: the windows (values of the contract's
    /// `event_time`) touched by the inputs' changes are recomputed from the whole inputs
    /// and replace the stored ones, in one commit.
    async fn replace_windows(
        &self,
        contract: &Contract,
        target: &mut ProductTable,
        inputs: &[InputState],
        sql: &str,
        txns: &[(String, i64)],
    ) -> Result<Written> {
        let product = contract.product.value.to_string();
        let Some(window) = contract.event_time.as_ref().map(|e| e.value.clone()) else {
            return Err(Error::Model {
                product,
                message: "an incremental model needs `event_time`: the output column whose windows are recomputed"
                    .into(),
                hint: "add `event_time: <column>` naming the time window column of the output, or use `materialized: full_refresh`".into(),
            });
        };
        // Which windows changed: the SQL over one input's changed rows (before and after
        // images and deletes alike), with the other inputs whole, says which output
        // windows they fall in; the union over the inputs that changed.
        let mut read = 0;
        let mut touched = BTreeSet::new();
        for (n, changed) in inputs.iter().enumerate() {
            if changed.consumed == Some(changed.version) {
                continue;
            }
            let ctx = session();
            for (m, i) in inputs.iter().enumerate() {
                if m == n {
                    read += register_changes(&ctx, i, true).await?;
                } else {
                    register_snapshot(&ctx, i).await?;
                }
            }
            let out = run_sql(&ctx, &product, sql).await?;
            touched.extend(distinct_literals(&product, out, &window).await?);
        }
        let touched: Vec<String> = touched.into_iter().collect();
        if touched.is_empty() {
            let empty = RecordBatch::new_empty(Arc::new(contract.data_schema()));
            let v = match target.append_txns(&empty, txns).await.map_err(Error::Lake)? {
                trib_lake::Appended::Committed { version, .. } => version,
                _ => target.version().unwrap_or_default(),
            };
            return Ok(Written {
                version: v,
                rows: 0,
                read,
                late: 0,
                duplicates: 0,
            });
        }
        let ctx = session();
        for i in inputs {
            register_snapshot(&ctx, i).await?;
        }
        let mut predicate = format!("\"{}\" IN ({})", window.replace('"', "\"\""), touched.join(", "));
        if let Some(kept) = kept_windows(contract, inputs).await? {
            predicate = format!("{predicate} AND {kept}");
        }
        let late = late_windows(contract, target, &window, &touched).await?;
        let out = run_sql(&ctx, &product, sql).await?;
        let only_touched = out.parse_sql_expr(&predicate).map_err(|e| Error::sql(&product, e))?;
        let out = out.filter(only_touched).map_err(|e| Error::sql(&product, e))?;
        let batch = conform(contract, out, false).await?;
        let rows = batch.num_rows() as u64;
        self.inspect(contract, &batch).await?;
        let v = target
            .overwrite_txns(&batch, Some(predicate), txns)
            .await
            .map_err(Error::Lake)?;
        if late > 0 {
            metrics::counter!(m::MODEL_LATE_WINDOWS, "product" => product.clone()).increment(late);
            tracing::info!(product = %product, windows = late, "late input re-aggregated closed windows");
        }
        Ok(Written {
            version: v,
            rows,
            read,
            late,
            duplicates: 0,
        })
    }
}

/// A session with the window functions; inputs are registered into it by address.
fn session() -> SessionContext {
    let ctx = SessionContext::new();
    crate::functions::register(&ctx);
    ctx
}

/// Registers `table` under the input's address, as models read it.
pub(crate) fn register_input(
    ctx: &SessionContext,
    input: &Node,
    table: Arc<dyn datafusion::datasource::TableProvider>,
) -> Result<()> {
    register(ctx, input, table)
}

fn register(ctx: &SessionContext, input: &Node, table: Arc<dyn datafusion::datasource::TableProvider>) -> Result<()> {
    let (domain, name) = input.0.split_once('.').unwrap_or(("", input.0.as_str()));
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Internal("the default catalog is missing".into()))?;
    if catalog.schema(domain).is_none() {
        catalog
            .register_schema(domain, Arc::new(MemorySchemaProvider::new()))
            .map_err(|e| Error::sql(&input.0, e))?;
    }
    ctx.register_table(TableReference::partial(domain, name), table.clone())
        .map_err(|e| Error::sql(&input.0, e))?;
    // A pinned major is written as one quoted name: `"orders.orders_raw@v1"`.
    ctx.register_table(TableReference::bare(format!("{}@v{}", input.0, input.1)), table)
        .map_err(|e| Error::sql(&input.0, e))?;
    Ok(())
}

/// Registers an input as it is at the version this run reads. Returns its row count.
async fn register_snapshot(ctx: &SessionContext, input: &InputState) -> Result<u64> {
    let t = input.table.at_version(input.version).await.map_err(Error::Lake)?;
    let provider = trib_lake::snapshot_provider(&t)
        .await
        .map_err(|e| Error::sql(&input.node.0, e))?;
    // From the log's file statistics: no scan just to report how much was read.
    let rows = t
        .snapshot()
        .map(|s| s.log_data().iter().map(|f| f.num_records().unwrap_or(0) as u64).sum())
        .unwrap_or(0);
    register(ctx, &input.node, provider)?;
    Ok(rows)
}

/// Registers the rows of an input that changed since the target last read it: inserts
/// and the new images of updates, and with `all_images` also the old images and deletes.
/// For CDC inputs, a Debezium delete (`_op = 'd'`) is a change like any other row.
async fn register_changes(ctx: &SessionContext, input: &InputState, all_images: bool) -> Result<u64> {
    let (schema, batches) = input
        .table
        .changes(input.consumed, input.version)
        .await
        .map_err(Error::Lake)?;
    register_batches(ctx, input, schema, batches, all_images)
}

/// Registers change-feed rows as the input, without the feed's own columns: inserts and
/// the new images of updates, and with `all_images` also old images and deletes.
fn register_batches(
    ctx: &SessionContext,
    input: &InputState,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    all_images: bool,
) -> Result<u64> {
    let mut kept = Vec::with_capacity(batches.len());
    for b in batches {
        let keep = b
            .column_by_name("_change_type")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .map(|types| {
                BooleanArray::from_iter(
                    types
                        .iter()
                        .map(|t| Some(all_images || matches!(t, Some("insert" | "update_postimage")))),
                )
            });
        let b = match keep {
            Some(mask) => arrow::compute::filter_record_batch(&b, &mask).map_err(|e| Error::arrow(&input.node.0, e))?,
            None => b,
        };
        kept.push(b);
    }
    // Only the table's own columns: the feed's bookkeeping stays out of the model's view.
    let projection = table_columns(&schema);
    let projected: SchemaRef = Arc::new(
        schema
            .project(&projection)
            .map_err(|e| Error::arrow(&input.node.0, e))?,
    );
    let mut rows = 0;
    let mut out = Vec::with_capacity(kept.len());
    for b in kept {
        rows += b.num_rows() as u64;
        out.push(b.project(&projection).map_err(|e| Error::arrow(&input.node.0, e))?);
    }
    let mem =
        datafusion::datasource::MemTable::try_new(projected, vec![out]).map_err(|e| Error::sql(&input.node.0, e))?;
    register(ctx, &input.node, Arc::new(mem))?;
    Ok(rows)
}

/// The indices of a change feed's columns that are the table's own.
fn table_columns(schema: &SchemaRef) -> Vec<usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !CDF_COLUMNS.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect()
}

async fn run_sql(ctx: &SessionContext, product: &str, sql: &str) -> Result<DataFrame> {
    ctx.sql(sql).await.map_err(|e| Error::sql(product, e))
}

/// The rows of `out` in the contract's schema: columns by name, cast to the declared
/// types. With `keep_delete`, a trailing [`DELETE_FLAG`] column too.
fn conform_batches(
    contract: &Contract,
    schema: &Schema,
    batches: Vec<RecordBatch>,
    keep_delete: bool,
) -> Result<RecordBatch> {
    let product = contract.product.value.to_string();
    let target = Arc::new(contract.data_schema());
    let mut fields: Vec<arrow::datatypes::Field> = target.fields().iter().map(|f| f.as_ref().clone()).collect();
    if keep_delete {
        fields.push(arrow::datatypes::Field::new(
            DELETE_FLAG,
            arrow::datatypes::DataType::Boolean,
            false,
        ));
    }
    let out_schema = Arc::new(Schema::new(fields.clone()));
    let missing: Vec<String> = fields
        .iter()
        .filter(|f| schema.field_with_name(f.name()).is_err())
        .map(|f| f.name().clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Model {
            product,
            message: format!(
                "the model's SQL does not produce column(s) {}",
                missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            ),
            hint: "select every column the contract declares, with these names (use `AS` to rename)".into(),
        });
    }
    let mut parts = Vec::with_capacity(batches.len());
    for b in batches {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
        for f in &fields {
            let col = b
                .column_by_name(f.name())
                .ok_or_else(|| Error::Internal(format!("column `{}` vanished", f.name())))?;
            let cast = arrow::compute::cast(col, f.data_type()).map_err(|e| Error::Model {
                product: product.clone(),
                message: format!(
                    "column `{}` is {} but the contract declares {}: {e}",
                    f.name(),
                    col.data_type(),
                    f.data_type()
                ),
                hint: "cast it in the SQL, or change the column's type in the contract".into(),
            })?;
            if !f.is_nullable() && cast.null_count() > 0 {
                return Err(Error::Model {
                    product: product.clone(),
                    message: format!(
                        "column `{}` is required but the model's SQL produced {} null(s)",
                        f.name(),
                        cast.null_count()
                    ),
                    hint: "filter those rows out or use `coalesce`, or make the column optional in the contract".into(),
                });
            }
            columns.push(cast);
        }
        parts.push(RecordBatch::try_new(out_schema.clone(), columns).map_err(|e| Error::arrow(&product, e))?);
    }
    arrow::compute::concat_batches(&out_schema, &parts).map_err(|e| Error::arrow(&product, e))
}

/// The contract's columns, and with `keep_delete` the merge's delete flag after them.
fn output_schema(contract: &Contract, keep_delete: bool) -> SchemaRef {
    let mut fields: Vec<arrow::datatypes::Field> = contract
        .data_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    if keep_delete {
        fields.push(arrow::datatypes::Field::new(
            DELETE_FLAG,
            arrow::datatypes::DataType::Boolean,
            false,
        ));
    }
    Arc::new(Schema::new(fields))
}

async fn conform(contract: &Contract, out: DataFrame, keep_delete: bool) -> Result<RecordBatch> {
    let product = contract.product.value.to_string();
    let schema = out.schema().as_arrow().clone();
    let batches = out.collect().await.map_err(|e| Error::sql(&product, e))?;
    conform_batches(contract, &schema, batches, keep_delete)
}

/// One row per key: the one with the largest `sequence_by` (the last in arrival order
/// on ties), with the delete flag set for Debezium deletes (`_op = 'd'`).
async fn latest_per_key(ctx: &SessionContext, contract: &Contract, out: DataFrame) -> Result<RecordBatch> {
    let product = contract.product.value.to_string();
    if contract.key.is_empty() {
        return Err(Error::Model {
            product,
            message: "a merge model needs a `key`".into(),
            hint: "add `key: [<column>]` to the contract, or use `materialized: append`".into(),
        });
    }
    let columns: BTreeSet<String> = out.schema().fields().iter().map(|f| f.name().clone()).collect();
    let q = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
    let delete = if columns.contains(CDC_OP) {
        format!("coalesce({} = 'd', false)", q(CDC_OP))
    } else {
        "false".to_string()
    };
    let keys = contract.key.iter().map(|k| q(&k.value)).collect::<Vec<_>>().join(", ");
    let order = contract.sequence_by.as_ref().map_or_else(
        || "__trib_pos DESC".to_string(),
        |s| format!("{} DESC NULLS LAST, __trib_pos DESC", q(&s.value)),
    );
    let batches = out.collect().await.map_err(|e| Error::sql(&product, e))?;
    // Arrival order, for ties.
    let mut numbered = Vec::with_capacity(batches.len());
    let mut pos = 0i64;
    for b in batches {
        let n = b.num_rows() as i64;
        let positions: ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(pos..pos + n));
        pos += n;
        let mut fields: Vec<arrow::datatypes::Field> = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(arrow::datatypes::Field::new(
            "__trib_pos",
            arrow::datatypes::DataType::Int64,
            false,
        ));
        let mut cols = b.columns().to_vec();
        cols.push(positions);
        numbered
            .push(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| Error::arrow(&product, e))?);
    }
    if numbered.is_empty() {
        return Ok(RecordBatch::new_empty(output_schema(contract, true)));
    }
    let mem = datafusion::datasource::MemTable::try_new(numbered[0].schema(), vec![numbered])
        .map_err(|e| Error::sql(&product, e))?;
    ctx.register_table("__trib_out", Arc::new(mem))
        .map_err(|e| Error::sql(&product, e))?;
    let select = columns.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let df = ctx
        .sql(&format!(
            "SELECT {select}, {delete} AS {DELETE_FLAG} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __trib_rn FROM __trib_out) WHERE __trib_rn = 1"
        ))
        .await
        .map_err(|e| Error::sql(&product, e))?;
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(|e| Error::sql(&product, e))?;
    ctx.deregister_table("__trib_out")
        .map_err(|e| Error::sql(&product, e))?;
    conform_batches(contract, &schema, batches, true)
}

/// The rows of a merge source that are not deletes, without the delete flag.
fn without_deleted(product: &str, batch: RecordBatch) -> Result<RecordBatch> {
    let Ok(idx) = batch.schema().index_of(DELETE_FLAG) else {
        return Ok(batch);
    };
    let flags = batch
        .column(idx)
        .as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| Error::Internal("the delete flag is not boolean".into()))?;
    let keep = arrow::compute::not(&flags).map_err(|e| Error::arrow(product, e))?;
    let mut kept = arrow::compute::filter_record_batch(&batch, &keep).map_err(|e| Error::arrow(product, e))?;
    kept.remove_column(idx);
    Ok(kept)
}

/// For an incremental model over inputs that expired rows by retention: the predicate
/// of the windows that can be recomputed (those starting at or after the latest cutoff
/// of any input), or `None` when no input expired anything.
async fn kept_windows(contract: &Contract, inputs: &[InputState]) -> Result<Option<String>> {
    let mut cutoff = None;
    for i in inputs {
        cutoff = cutoff.max(i.table.expired_before().await.map_err(Error::Lake)?);
    }
    let (Some(c), Some(window)) = (cutoff, contract.event_time.as_ref()) else {
        return Ok(None);
    };
    let at = chrono::DateTime::from_timestamp_micros(c)
        .ok_or_else(|| Error::Internal(format!("retention cutoff {c} is not a time")))?;
    Ok(Some(format!(
        "\"{}\" >= '{}'",
        window.value.replace('"', "\"\""),
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
    )))
}

/// How many of the `touched` windows were already closed: older than the target's
/// watermark (its latest window minus the allowed lateness) before this run.
async fn late_windows(contract: &Contract, target: &ProductTable, window: &str, touched: &[String]) -> Result<u64> {
    let Some(w) = &contract.watermark else {
        return Ok(0);
    };
    if target.version().is_none() {
        return Ok(0);
    }
    let c = format!("\"{}\"", window.replace('"', "\"\""));
    let sql = format!(
        "SELECT count(DISTINCT {c}) AS n FROM t WHERE {c} IN ({}) AND {c} < (SELECT max({c}) FROM t) - INTERVAL '{} seconds'",
        touched.join(", "),
        w.allowed_lateness.as_secs()
    );
    let batches = target.query(&sql).await.map_err(Error::Lake)?;
    let n = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The distinct values of `column` in `df`, as SQL literals.
async fn distinct_literals(product: &str, df: DataFrame, column: &str) -> Result<Vec<String>> {
    let col = datafusion::prelude::col(format!("\"{}\"", column.replace('"', "\"\"")));
    let batches = df
        .select(vec![col])
        .and_then(DataFrame::distinct)
        .map_err(|e| Error::sql(product, e))?
        .collect()
        .await
        .map_err(|e| Error::sql(product, e))?;
    let mut out = BTreeMap::new();
    for b in &batches {
        let a = b.column(0);
        for i in 0..a.len() {
            if a.is_null(i) {
                continue;
            }
            let v = datafusion::common::ScalarValue::try_from_array(a, i).map_err(|e| Error::sql(product, e))?;
            let lit = match &v {
                datafusion::common::ScalarValue::Utf8(Some(s))
                | datafusion::common::ScalarValue::LargeUtf8(Some(s)) => {
                    format!("'{}'", s.replace('\'', "''"))
                }
                datafusion::common::ScalarValue::TimestampMicrosecond(Some(_), _)
                | datafusion::common::ScalarValue::TimestampNanosecond(Some(_), _)
                | datafusion::common::ScalarValue::TimestampMillisecond(Some(_), _)
                | datafusion::common::ScalarValue::TimestampSecond(Some(_), _)
                | datafusion::common::ScalarValue::Date32(Some(_)) => {
                    let text =
                        arrow::util::display::array_value_to_string(a, i).map_err(|e| Error::arrow(product, e))?;
                    format!("'{text}'")
                }
                other => other.to_string(),
            };
            out.insert(lit, ());
        }
    }
    Ok(out.into_keys().collect())
}
