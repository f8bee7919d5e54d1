//! Delta tables read by DataFusion's own Parquet scan.
//!
//! ```text
//!   snapshot (files, sizes, partition values, row counts, value ranges)
//!     └─► the files the filters may find rows in (by partition values and ranges)
//!           └─► DataSourceExec(ParquetSource)   files split over the session's partitions,
//!                                                pushed filters prune row groups and pages,
//!                                                footers cached across sessions
//! ```
//!
//! delta-rs's provider reads every table the protocol allows, and pays for it on every
//! query: it adds a file-id column to each row, transforms each batch in an executor of
//! its own above the Parquet scan, and evaluates its predicate as a Parquet row filter
//! on top of the filter DataFusion pushes there. A table with reader version 1 (no
//! deletion vectors, no column mapping) needs none of it: its rows are exactly the rows
//! of the files its snapshot lists, with the partition values the log records. Such
//! tables are read here with DataFusion's scan; any other table goes to delta-rs.
//!
//! Pushed filters leave out files and prune row groups and pages. Most are inexact:
//! DataFusion still filters the rows above the scan (see `provider.rs` for why that
//! matters). A filter the log's statistics decide for every file, true for all of its
//! rows or for none, is exact: the files it leaves out are all it does (`judge.rs`).
//! The scan fails closed: a filter it receives that it can neither decide nor finds
//! among those it answered inexact (an exact one rewritten on the way) is applied to
//! the rows in the scan, with a warning.

use crate::judge::{Values, judge};
use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, UInt64Array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use deltalake::arrow::datatypes::{Int64Type, TimeUnit, UInt64Type};
use deltalake::datafusion::catalog::{Session, TableProvider};
use deltalake::datafusion::common::pruning::PruningStatistics;
use deltalake::datafusion::common::stats::Precision;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::common::{Column, ColumnStatistics, DFSchema, Result as DfResult, ScalarValue, Statistics};
use deltalake::datafusion::datasource::TableType;
use deltalake::datafusion::datasource::listing::PartitionedFile;
use deltalake::datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use deltalake::datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfigBuilder, ParquetSource, wrap_partition_type_in_dict, wrap_partition_value_in_dict,
};
use deltalake::datafusion::datasource::source::DataSourceExec;
use deltalake::datafusion::datasource::table_schema::TableSchema;
use deltalake::datafusion::execution::object_store::ObjectStoreUrl;
use deltalake::datafusion::logical_expr::simplify::SimplifyContext;
use deltalake::datafusion::logical_expr::utils::conjunction;
use deltalake::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use deltalake::datafusion::optimizer::simplify_expressions::ExprSimplifier;
use deltalake::datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::physical_plan::empty::EmptyExec;
use deltalake::datafusion::physical_plan::filter::FilterExecBuilder;
use deltalake::kernel::LogDataHandler;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow as _;
use deltalake::kernel::scalars::ScalarExt as _;
use deltalake::logstore::LogStore as _;
use object_store::{ObjectMeta, ObjectStore};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The provider every read of a table's loaded snapshot goes through: DataFusion's
/// Parquet scan when the table allows it, else delta-rs's with its filters rechecked.
pub async fn snapshot_provider(table: &DeltaTable) -> DfResult<Arc<dyn TableProvider>> {
    match files_provider(table) {
        Some(provider) => Ok(provider),
        None => Ok(crate::rechecked(table.table_provider().await?)),
    }
}

/// A provider reading `table`'s current snapshot with DataFusion's Parquet scan, or
/// `None` when the table needs delta-rs to be read (a reader version above 1, or data
/// files outside the table's directory).
pub fn files_provider(table: &DeltaTable) -> Option<Arc<dyn TableProvider>> {
    Files::try_new(table).map(|f| Arc::new(DeltaFiles::new(Arc::new(f))) as Arc<dyn TableProvider>)
}

/// `provider` for one query: a provider of [`files_provider`] shares its snapshot's
/// files and statistics, and remembers its own answers (see [`DeltaFiles`]); any other
/// is itself. A provider kept across queries is handed to each through this.
pub fn for_one_query(provider: &Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
    match provider.downcast_ref::<DeltaFiles>() {
        Some(p) => Arc::new(DeltaFiles::new(Arc::clone(&p.snapshot))),
        None => Arc::clone(provider),
    }
}

/// The provider of one snapshot's files, for the queries of one session.
#[derive(Debug)]
struct DeltaFiles {
    snapshot: Arc<Files>,
    /// The filters this provider answered `Inexact`, which DataFusion applies above the
    /// scan itself. A filter the scan receives that it cannot decide and that is not
    /// among them is applied in the scan (see `scan`). Kept per provider, and so per
    /// query when providers kept across queries go through [`for_one_query`]: a filter
    /// answered inexact in another query says nothing of this one.
    answered_inexact: Mutex<HashSet<Expr>>,
}

impl DeltaFiles {
    fn new(snapshot: Arc<Files>) -> Self {
        Self {
            snapshot,
            answered_inexact: Mutex::new(HashSet::new()),
        }
    }
}

impl std::ops::Deref for DeltaFiles {
    type Target = Files;

    fn deref(&self) -> &Files {
        &self.snapshot
    }
}

/// A snapshot's files, their statistics and the schemas to read them with.
#[derive(Debug)]
struct Files {
    /// The table's columns in the order of its Delta schema, which is what callers see.
    schema: SchemaRef,
    /// What the Parquet scan reads: the data columns, then the partition columns.
    scan_schema: TableSchema,
    /// For each column of `schema`, its index in `scan_schema`.
    to_scan: Vec<usize>,
    files: Vec<PartitionedFile>,
    statistics: Statistics,
    /// By column of the scan schema: each file's minimum and maximum (null where
    /// unknown), for leaving out files. Made once per snapshot from the statistics
    /// above, and for timestamps from the log's ranges widened by the millisecond it
    /// may have cut off (the planner's statistics have no timestamp ranges).
    bounds: Vec<Option<[ArrayRef; 2]>>,
    store_url: ObjectStoreUrl,
    store: Arc<dyn ObjectStore>,
}

/// How many inexact answers a provider remembers. Past it the memory starts again: a
/// filter then forgotten between its answer and its scan costs a second evaluation,
/// never a missing one.
const ANSWERED_LIMIT: usize = 4096;

impl Files {
    fn try_new(table: &DeltaTable) -> Option<Self> {
        let snapshot = table.snapshot().ok()?;
        if snapshot.protocol().min_reader_version() != 1 {
            return None;
        }
        let logical: Schema = snapshot.schema().as_ref().try_into_arrow().ok()?;
        let partition_names = snapshot.metadata().partition_columns().to_vec();
        // The types delta-rs's provider shows, so that a query plans the same through
        // either: text and binary as views, text partition values dictionary-encoded.
        let schema = Arc::new(Schema::new(
            logical
                .fields()
                .iter()
                .map(|f| {
                    let t = if partition_names.contains(f.name()) {
                        match f.data_type() {
                            t @ (DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary) => {
                                wrap_partition_type_in_dict(t.clone())
                            }
                            t => t.clone(),
                        }
                    } else {
                        viewed(f.data_type())
                    };
                    f.as_ref().clone().with_data_type(t)
                })
                .collect::<Vec<_>>(),
        ));
        let partition_fields: Vec<FieldRef> = partition_names
            .iter()
            .map(|n| schema.field_with_name(n).ok().map(|f| Arc::new(f.clone())))
            .collect::<Option<_>>()?;
        let data_fields: Vec<Field> = schema
            .fields()
            .iter()
            .filter(|f| !partition_names.contains(f.name()))
            .map(|f| f.as_ref().clone())
            .collect();
        let data_count = data_fields.len();
        let to_scan = schema
            .fields()
            .iter()
            .map(|f| match partition_names.iter().position(|p| p == f.name()) {
                Some(p) => data_count + p,
                None => data_fields.iter().position(|d| d.name() == f.name()).unwrap_or(0),
            })
            .collect();
        let scan_schema = TableSchema::builder(Arc::new(Schema::new(data_fields)))
            .with_table_partition_cols(partition_fields.clone())
            .build();

        let log = snapshot.log_data();
        let ranges = ColumnRanges::of(&log, scan_schema.table_schema(), &partition_names);
        let mut files = Vec::new();
        let mut file_statistics = Vec::new();
        for (i, view) in log.iter().enumerate() {
            if view.path().contains("://") {
                return None;
            }
            let size = u64::try_from(view.size()).ok()?;
            let values = view.partition_values_map();
            let partition_values = partition_fields
                .iter()
                .map(|f| {
                    let (t, dictionary) = match f.data_type() {
                        DataType::Dictionary(_, t) => (t.as_ref(), true),
                        t => (t, false),
                    };
                    let value = match values.get(f.name()).cloned().flatten() {
                        Some(text) => ScalarValue::try_from_string(text, t).ok()?,
                        None => ScalarValue::try_from(t).ok()?,
                    };
                    Some(if dictionary {
                        wrap_partition_value_in_dict(value)
                    } else {
                        value
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            let rows = view.num_records();
            let columns = (0..scan_schema.table_schema().fields().len())
                .map(|c| match c.checked_sub(data_count) {
                    // A partition column holds one value per file.
                    Some(p) => {
                        let value = &partition_values[p];
                        let (nulls, bound) = if value.is_null() {
                            (rows.map_or(Precision::Absent, Precision::Exact), Precision::Absent)
                        } else {
                            (Precision::Exact(0), Precision::Exact(value.clone()))
                        };
                        ColumnStatistics::new_unknown()
                            .with_null_count(nulls)
                            .with_min_value(bound.clone())
                            .with_max_value(bound)
                    }
                    None => ranges.file(c, i),
                })
                .collect();
            file_statistics.push(Statistics {
                num_rows: rows.map_or(Precision::Absent, Precision::Exact),
                total_byte_size: Precision::Inexact(usize::try_from(size).unwrap_or(usize::MAX)),
                column_statistics: columns,
            });
            let meta = ObjectMeta {
                location: view.object_store_path(),
                last_modified: view.modification_datetime().ok()?,
                size,
                e_tag: None,
                version: None,
            };
            files.push(
                PartitionedFile::new_from_meta(meta)
                    .with_partition_values(partition_values)
                    .with_statistics(Arc::new(file_statistics[i].clone())),
            );
        }
        let statistics = Statistics::try_merge_iter(&file_statistics, scan_schema.table_schema())
            .unwrap_or_else(|_| Statistics::new_unknown(scan_schema.table_schema()));
        let bounds = ranges
            .time_ranges
            .into_iter()
            .enumerate()
            .map(|(c, time)| {
                time.or_else(|| exact_bounds(&file_statistics, c, scan_schema.table_schema().field(c).data_type()))
            })
            .collect();
        let log_store = table.log_store();
        Some(Self {
            schema,
            scan_schema,
            to_scan,
            files,
            statistics,
            bounds,
            store_url: log_store.object_store_url(),
            store: log_store.object_store(None),
        })
    }
}

#[async_trait::async_trait]
impl TableProvider for DeltaFiles {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Exact for a filter the statistics decide for every file (see `judge.rs`): the
    /// scan leaves out the files where it holds for no row, and it holds for every row
    /// of the others. Inexact for the rest.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let answers: Vec<_> = filters
            .iter()
            .map(|f| {
                if self.decides(f) && self.settled(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect();
        let mut answered = self.answered_inexact.lock().unwrap_or_else(PoisonError::into_inner);
        for (f, answer) in filters.iter().zip(&answers) {
            if *answer == TableProviderFilterPushDown::Inexact {
                // The scan receives its filters with their columns unqualified.
                let f = unqualified((*f).clone())?;
                if !answered.contains(&f) {
                    if answered.len() >= ANSWERED_LIMIT {
                        answered.clear();
                    }
                    answered.insert(f);
                }
            }
        }
        Ok(answers)
    }

    fn statistics(&self) -> Option<Statistics> {
        Some(Statistics {
            num_rows: self.statistics.num_rows,
            total_byte_size: self.statistics.total_byte_size,
            column_statistics: self
                .to_scan
                .iter()
                .map(|&i| self.statistics.column_statistics[i].clone())
                .collect(),
        })
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.iter().map(|&i| self.to_scan[i]).collect(),
            None => self.to_scan.clone(),
        };
        // No predicate on the source. Inexact filters stay above the scan, and
        // DataFusion's physical filter pushdown hands them to the Parquet source, which
        // prunes row groups and pages by them; here they only leave out whole files, by
        // their partition values and the log's ranges, before any file is opened. Exact
        // ones are applied here, whole files at a time.
        let mut keep = self
            .kept(state, filters)
            .unwrap_or_else(|| vec![true; self.files.len()]);
        // DataFusion's pruning above leaves most of these files out already; an exact
        // filter does not depend on what it can judge.
        let mut inexact = 0;
        // Filters that are neither decided by the files nor answered inexact: an exact
        // answer DataFusion rewrote on its way here. Nothing above applies them, so
        // the scan does (fail closed; no known rewrite gets here, see `settled`).
        let mut unaccounted = Vec::new();
        for filter in filters {
            match self.verdicts(filter) {
                Some(verdicts) => {
                    for (keep, v) in keep.iter_mut().zip(verdicts) {
                        *keep &= !v.nowhere();
                    }
                }
                None => {
                    inexact += 1;
                    let filter = unqualified(filter.clone())?;
                    if !self
                        .answered_inexact
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains(&filter)
                    {
                        unaccounted.push(filter);
                    }
                }
            }
        }
        let kept: Vec<PartitionedFile> = self
            .files
            .iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|(f, _)| f.clone())
            .collect();
        let (files, statistics) = match kept {
            kept if kept.len() < self.files.len() => {
                let statistics: Vec<Statistics> =
                    kept.iter().filter_map(|f| f.statistics.as_deref().cloned()).collect();
                let merged = Statistics::try_merge_iter(&statistics, self.scan_schema.table_schema())
                    .unwrap_or_else(|_| Statistics::new_unknown(self.scan_schema.table_schema()));
                (kept, merged)
            }
            _ => (self.files.clone(), self.statistics.clone()),
        };
        if files.is_empty() {
            let projected = self.scan_schema.table_schema().project(&indices)?;
            return Ok(Arc::new(EmptyExec::new(Arc::new(projected))));
        }
        let runtime = state.runtime_env();
        runtime.register_object_store(self.store_url.as_ref(), Arc::clone(&self.store));
        let reader = CachedParquetFileReaderFactory::new(
            Arc::clone(&self.store),
            runtime.cache_manager.get_file_metadata_cache(),
        );
        let source = ParquetSource::new(self.scan_schema.clone())
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_parquet_file_reader_factory(Arc::new(reader));
        let groups = FileGroup::new(files).split_files(state.config().target_partitions().max(1));
        // The columns an unaccounted filter needs, read after the projection's.
        let mut read = indices.clone();
        let table_schema = self.scan_schema.table_schema();
        for filter in &unaccounted {
            for column in filter.column_refs() {
                let i = table_schema.index_of(&column.name)?;
                if !read.contains(&i) {
                    read.push(i);
                }
            }
        }
        let config = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
            .with_file_groups(groups)
            .with_statistics(statistics)
            .with_projection_indices(Some(read))?
            // With filters above the scan, a limit on the rows read would cut the answer.
            .with_limit(if inexact == 0 { limit } else { None })
            .build();
        let scan = DataSourceExec::from_data_source(config);
        let Some(predicate) = conjunction(unaccounted) else {
            return Ok(scan);
        };
        tracing::warn!(
            filter = %predicate,
            "the scan received a filter it cannot decide and was never asked about (an exact one rewritten on the way); applying it to the rows in the scan"
        );
        let schema = DFSchema::try_from(scan.schema().as_ref().clone())?;
        let predicate = state.create_physical_expr(predicate, &schema)?;
        let filter = FilterExecBuilder::new(predicate, scan)
            .apply_projection(Some((0..indices.len()).collect()))?
            .with_fetch(limit)
            .build()?;
        Ok(Arc::new(filter))
    }
}

impl Files {
    /// Whether the statistics decide `filter` for every file: true for all of a file's
    /// rows or for none.
    fn decides(&self, filter: &Expr) -> bool {
        self.verdicts(filter).is_some()
    }

    /// What `filter` is over each file's rows, when the statistics decide it for every
    /// file; `None` when some file leaves it open.
    fn verdicts(&self, filter: &Expr) -> Option<Vec<Values>> {
        let schema = self.scan_schema.table_schema();
        self.files
            .iter()
            .map(|f| {
                let v = judge(filter, schema, f.statistics.as_deref()?);
                v.decided().then_some(v)
            })
            .collect()
    }

    /// Whether DataFusion's simplifier leaves `filter` as it is. Later passes of the
    /// optimizer simplify the filters pushed into a scan again, and an exact filter must
    /// reach the scan as it was judged: one the scan could no longer decide would be
    /// applied by nothing.
    fn settled(&self, filter: &Expr) -> bool {
        let (Ok(filter), Ok(schema)) = (
            unqualified(filter.clone()),
            DFSchema::try_from(self.scan_schema.table_schema().as_ref().clone()),
        ) else {
            return false;
        };
        let context = SimplifyContext::builder().with_schema(Arc::new(schema)).build();
        ExprSimplifier::new(context)
            .simplify(filter.clone())
            .is_ok_and(|simplified| simplified == filter)
    }

    /// By file, whether `filters` may find rows in it, judged by each file's partition
    /// values and the ranges the log records; `None` when the filters cannot be judged
    /// so (every file is read then). A file whose statistics are unknown is kept.
    fn kept(&self, state: &dyn Session, filters: &[Expr]) -> Option<Vec<bool>> {
        let predicate = unqualified(conjunction(filters.iter().cloned())?).ok()?;
        let table_schema = self.scan_schema.table_schema();
        let schema = DFSchema::try_from(table_schema.as_ref().clone()).ok()?;
        let physical = state.create_physical_expr(predicate, &schema).ok()?;
        let pruning = PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(table_schema))
            .build(physical)?;
        pruning
            .prune(&FileRanges {
                files: &self.files,
                schema: table_schema,
                bounds: &self.bounds,
            })
            .ok()
    }
}

/// The files' statistics as DataFusion's pruning reads them, one container per file:
/// bounds that hold (partition values, the log's ranges where they are exact, and its
/// timestamp ranges widened to the millisecond).
struct FileRanges<'a> {
    files: &'a [PartitionedFile],
    schema: &'a SchemaRef,
    bounds: &'a [Option<[ArrayRef; 2]>],
}

impl FileRanges<'_> {
    /// The minimums (`end` 0) or maximums (1) of `column`, one per file.
    fn bounds(&self, column: &Column, end: usize) -> Option<ArrayRef> {
        let i = self.schema.index_of(&column.name).ok()?;
        self.bounds.get(i)?.as_ref().map(|b| Arc::clone(&b[end]))
    }

    fn counts(&self, count: impl Fn(&Statistics) -> Option<usize>) -> Option<ArrayRef> {
        let counts: UInt64Array = self
            .files
            .iter()
            .map(|f| f.statistics.as_deref().and_then(&count).map(|n| n as u64))
            .collect();
        Some(Arc::new(counts))
    }
}

impl PruningStatistics for FileRanges<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, 0)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, 1)
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let i = self.schema.index_of(&column.name).ok()?;
        self.counts(|s| match s.column_statistics.get(i).map(|c| &c.null_count) {
            Some(Precision::Exact(n)) => Some(*n),
            _ => None,
        })
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        self.counts(|s| match s.num_rows {
            Precision::Exact(n) => Some(n),
            _ => None,
        })
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// The per-file value ranges and null counts the log records for the data columns.
///
/// Ranges only for types whose recorded bounds are exact: Delta keeps timestamps to the
/// millisecond and may truncate text, delta-rs's writer records decimals through a
/// 64-bit float (exact to 15 digits), and a bound that is off would prune a file that
/// holds matching rows (or prove a filter that does not hold). Timestamp ranges are kept
/// apart, widened by a millisecond each way, for leaving out files (`time_ranges`);
/// text and decimals of more than 15 digits have none.
struct ColumnRanges {
    /// By column of the scan schema: minimums, maximums and null counts, one per file.
    columns: Vec<[Option<ArrayRef>; 3]>,
    /// By column of the scan schema: widened minimums and maximums of timestamps.
    time_ranges: Vec<Option<[ArrayRef; 2]>>,
}

impl ColumnRanges {
    fn of(log: &LogDataHandler<'_>, schema: &Schema, partitions: &[String]) -> Self {
        let time_ranges = schema
            .fields()
            .iter()
            .map(|f| {
                if partitions.contains(f.name()) {
                    return None;
                }
                let column = Column::new_unqualified(f.name());
                let min = widened(log.min_values(&column)?, f.data_type(), -1)?;
                let max = widened(log.max_values(&column)?, f.data_type(), 1)?;
                Some([min, max])
            })
            .collect();
        // delta-rs 1.1 reads null counts in the column's own type and finds none; they
        // are read here from each file's statistics as the log holds them.
        let counts: Vec<Option<serde_json::Value>> =
            log.iter().map(|file| file.null_counts().map(|c| c.to_json())).collect();
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                if partitions.contains(f.name()) {
                    return [None, None, None];
                }
                let nulls: UInt64Array = counts
                    .iter()
                    .map(|c| {
                        c.as_ref()
                            .and_then(|c| c.get(f.name()))
                            .and_then(serde_json::Value::as_u64)
                    })
                    .collect();
                let nulls = (nulls.null_count() < nulls.len()).then(|| Arc::new(nulls) as ArrayRef);
                let column = Column::new_unqualified(f.name());
                let exact = matches!(
                    f.data_type(),
                    DataType::Int8
                        | DataType::Int16
                        | DataType::Int32
                        | DataType::Int64
                        | DataType::Float32
                        | DataType::Float64
                        | DataType::Decimal128(..=15, _)
                        | DataType::Date32
                        | DataType::Boolean
                );
                let (min, max) = if exact {
                    (log.min_values(&column), log.max_values(&column))
                } else {
                    (None, None)
                };
                [min, max, nulls]
            })
            .collect();
        Self { columns, time_ranges }
    }

    fn file(&self, column: usize, file: usize) -> ColumnStatistics {
        let Some([min, max, nulls]) = self.columns.get(column) else {
            return ColumnStatistics::new_unknown();
        };
        let at = |a: &Option<ArrayRef>| a.clone().filter(|a| file < a.len() && a.is_valid(file));
        let value = |a: &Option<ArrayRef>| {
            at(a)
                .and_then(|a| ScalarValue::try_from_array(&a, file).ok())
                .map_or(Precision::Absent, Precision::Exact)
        };
        let nulls = at(nulls)
            .and_then(|a| a.as_primitive_opt::<UInt64Type>().map(|a| a.value(file)))
            .map_or(Precision::Absent, |n| {
                Precision::Exact(usize::try_from(n).unwrap_or(usize::MAX))
            });
        ColumnStatistics::new_unknown()
            .with_min_value(value(min))
            .with_max_value(value(max))
            .with_null_count(nulls)
    }
}

/// Column `c`'s minimums and maximums over the files' `statistics`, where they hold an
/// exact bound of the column's type `t`, null elsewhere.
fn exact_bounds(statistics: &[Statistics], c: usize, t: &DataType) -> Option<[ArrayRef; 2]> {
    let unknown = ScalarValue::try_from(t).ok()?;
    let end = |bound: fn(&ColumnStatistics) -> &Precision<ScalarValue>| {
        let values = statistics.iter().map(|s| match s.column_statistics.get(c).map(bound) {
            Some(Precision::Exact(v)) if v.data_type() == *t => v.clone(),
            _ => unknown.clone(),
        });
        ScalarValue::iter_to_array(values).ok()
    };
    Some([end(|s| &s.min_value)?, end(|s| &s.max_value)?])
}

/// A timestamp column's bounds from the log, in the column's type `t`, each moved by the
/// millisecond the log may have cut off it: down for minimums (`sign` -1), up for
/// maximums (1). `None` for other types.
fn widened(bounds: ArrayRef, t: &DataType, sign: i64) -> Option<ArrayRef> {
    let DataType::Timestamp(unit, _) = t else {
        return None;
    };
    let step = match unit {
        TimeUnit::Second | TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1_000_000,
    };
    let typed = cast(&bounds, t).ok()?;
    let raw = cast(&typed, &DataType::Int64).ok()?;
    let moved: Int64Array = raw.as_primitive::<Int64Type>().unary(|v| v.saturating_add(sign * step));
    cast(&moved, t).ok()
}

/// `t` with text and binary as their view types, nested ones too.
fn viewed(t: &DataType) -> DataType {
    let field = |f: &FieldRef| Arc::new(f.as_ref().clone().with_data_type(viewed(f.data_type())));
    match t {
        DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
        DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        other => other.clone(),
    }
}

/// `expr` with its columns' table qualifiers removed: the scan's schema has none.
fn unqualified(expr: Expr) -> DfResult<Expr> {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) if c.relation.is_some() => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
}
