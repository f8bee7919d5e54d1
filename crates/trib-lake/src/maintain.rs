//! Table maintenance: what keeps a table fast to read and bounded in size after many
//! small commits.
//!
//! ```text
//!   expire ─► compact ─► z-order (cluster_by) ─► checkpoint ─► clean expired log ─► vacuum
//!   rows past   small files   co-locate rows        one parquet     old commit JSON     data files removed
//!   the         into large    for data skipping     file for the    past the log        longer ago than the
//!   retention   ones                                log state       retention           deleted-file retention
//! ```
//!
//! Expiry deletes the rows whose event time is older than the contract keeps them (the
//! `raw` tier's retention when the contract declares tiers, else `retention`); see
//! [`crate::expire`] for how models and rebuilds tell it from other deletes.
//!
//! Compaction and Z-order rewrite files but change no rows (`dataChange: false`): readers,
//! time travel and the txn actions of idempotent appends are unaffected. Only vacuum
//! deletes data files, and never sooner than the table's `delta.deletedFileRetentionDuration`
//! (set from the contract's retention): a shorter retention would break time travel.

use crate::error::{Error, Operation, Result};
use crate::location::Lake;
use crate::table::{ProductTable, TableKind};
use deltalake::checkpoints::{cleanup_expired_logs_for, create_checkpoint};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::optimize::{Metrics, OptimizeType};
use deltalake::table::config::TablePropertiesExt;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;
use trib_core::Clock;
use trib_spec::Contract;

/// Commit metadata key on Z-order commits: the columns they ordered by. A later run finds
/// it in the history and skips rewriting a table that got no new data since.
const ZORDER_MARK: &str = "tributary.zOrderBy";

/// How many recent commits are searched for the last Z-order.
const HISTORY_DEPTH: usize = 100;

/// The steps of [`maintain`], in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Expire,
    Compact,
    ZOrder,
    Checkpoint,
    CleanLog,
    Vacuum,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Expire,
        Step::Compact,
        Step::ZOrder,
        Step::Checkpoint,
        Step::CleanLog,
        Step::Vacuum,
    ];

    /// Stable lowercase name, for reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Expire => "expire",
            Step::Compact => "compact",
            Step::ZOrder => "z-order",
            Step::Checkpoint => "checkpoint",
            Step::CleanLog => "clean-log",
            Step::Vacuum => "vacuum",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to run [`maintain`].
pub struct MaintainOptions<'a> {
    /// Change nothing: no commit, no deletion. Rewrites report the files they would
    /// replace, vacuum the files it would delete; checkpoint and log cleanup do not run.
    pub dry_run: bool,
    /// "Now" for retention decisions (vacuum and log cleanup).
    pub clock: &'a dyn Clock,
    /// Called as each step starts.
    pub progress: &'a mut dyn FnMut(Step),
    /// Rows to expire; `None` keeps every row.
    pub retention: Option<Retention>,
}

/// Which rows a product keeps: those whose `column` (its event time) is no older than
/// `keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub column: String,
    pub keep: std::time::Duration,
}

impl Retention {
    /// The retention of a product's data table: the `raw` tier's when the contract has
    /// tiers, else `retention`; none without an `event_time` to judge rows by.
    pub fn of(contract: &Contract) -> Option<Self> {
        let column = contract.event_time.as_ref()?.value.clone();
        let keep = match contract.tiers.first() {
            Some(t) if t.resolution.is_none() => t.retention,
            _ => contract.retention?,
        };
        Some(Self {
            column,
            keep: std::time::Duration::from_secs(keep.as_secs()),
        })
    }
}

/// Files replaced by a rewrite (compaction or Z-order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// Files taken out of the table (in a dry run: that would be).
    pub files_removed: u64,
    /// Files written in their place (0 in a dry run: only known once written).
    pub files_added: u64,
    /// Partitions touched.
    pub partitions: u64,
}

impl From<&Metrics> for Rewrite {
    fn from(m: &Metrics) -> Self {
        Self {
            files_removed: m.num_files_removed,
            files_added: m.num_files_added,
            partitions: m.partitions_optimized,
        }
    }
}

/// What the Z-order step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZOrder {
    /// The contract clusters by no column that is not a partition column.
    NotClustered,
    /// Fewer than two files: nothing to interleave.
    TooFewFiles,
    /// No data was written since the last Z-order by the same columns.
    UpToDate { columns: Vec<String> },
    /// Rewritten (in a dry run: would be).
    Rewritten { columns: Vec<String>, rewrite: Rewrite },
}

/// The outcome of [`maintain`] on one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub dry_run: bool,
    /// Rows removed for being older than the retention (in a dry run: that would be).
    pub expired: Option<crate::Expired>,
    pub version_before: Option<u64>,
    pub version_after: Option<u64>,
    /// Rows before and after, from the file statistics in the log (no data is read);
    /// `None` when a file has no statistics (e.g. written by an engine that skips them).
    /// Only expiry changes them.
    pub rows_before: Option<u64>,
    pub rows_after: Option<u64>,
    pub compaction: Rewrite,
    pub z_order: ZOrder,
    /// The version checkpointed; `None` in a dry run.
    pub checkpoint_version: Option<u64>,
    /// Commit files deleted from `_delta_log` for being older than the log retention (and
    /// the deleted-file retention); `None` when the step did not run
    /// (dry run, or `delta.enableExpiredLogCleanup = false`).
    pub log_files_cleaned: Option<usize>,
    /// Data files deleted by vacuum (in a dry run: that would be), relative to the table.
    pub vacuumed: Vec<String>,
    /// How long removed files are kept before vacuum deletes them.
    pub vacuum_retention: std::time::Duration,
}

/// Commit attempts of a compaction before it gives up (delta-rs's default is 15).
const COMPACTION_RETRIES: usize = 200;

/// Opens a product's data table and [`compact`]s it: what `trib serve` runs now and
/// then beside its writers.
///
/// With `target_size`, an append-only table's small files are packed into files of
/// that size by a compaction that lands beside a writer committing without loading
/// the table (see `pack`); a writer that compacts often passes a small one, so that
/// each round leaves the files it made before alone, and `trib maintain` packs them
/// further. Without it, delta-rs's compaction to the table's own target.
pub async fn compact_product(
    lake: &Lake,
    contract: &trib_spec::Contract,
    target_size: Option<NonZeroU64>,
) -> Result<Rewrite> {
    let mut table = ProductTable::open_or_create(lake, contract, TableKind::Data).await?;
    let rewrite = match target_size {
        Some(target) => crate::pack::pack_small_files(&mut table, target.get()).await?,
        None => compact(&mut table).await?,
    };
    // A long-running writer neither checkpoints nor cleans the log on its commits (see
    // `ProductTable::append_txns_unsettled` and `table::commit_properties`); its
    // compactions do both, so readers replay few commits and the log stays bounded
    // without `trib maintain`.
    if let Some(version) = table.version() {
        let err = |step: Step| {
            let table = label(table.delta());
            move |source| Error::Delta {
                operation: Operation::Maintain(step),
                table,
                source,
            }
        };
        create_checkpoint(table.delta(), None)
            .await
            .map_err(err(Step::Checkpoint))?;
        let now = chrono::Utc::now().timestamp_millis();
        clean_log(table.delta(), version, now)
            .await
            .map_err(err(Step::CleanLog))?;
    }
    Ok(rewrite)
}

/// Compacts the table's small files (bin-packing within each partition), nothing else:
/// what a long-running writer does now and then so that its many small commits do not
/// make every later commit and read slower. Safe next to concurrent appends, which
/// never conflict with a rewrite of files they did not touch.
pub async fn compact(table: &mut ProductTable) -> Result<Rewrite> {
    compact_to(table, None).await
}

async fn compact_to(table: &mut ProductTable, target_size: Option<NonZeroU64>) -> Result<Rewrite> {
    table.refresh().await?;
    let name = label(table.delta());
    // A writer beside it commits every few milliseconds without loading the table (see
    // `ProductTable::append_txns_unsettled`), and each of its commits sends this one back
    // to check and retry: many retries, so that it lands between two of them.
    let mut optimize = table
        .delta()
        .clone()
        .optimize()
        .with_type(OptimizeType::Compact)
        .with_writer_properties(crate::table::writer_properties())
        .with_commit_properties(CommitProperties::default().with_max_retries(COMPACTION_RETRIES));
    if let Some(size) = target_size {
        optimize = optimize.with_target_size(size);
    }
    let (_, metrics) = optimize.await.map_err(|source| Error::Delta {
        operation: Operation::Maintain(Step::Compact),
        table: name,
        source,
    })?;
    table.refresh().await?;
    Ok(Rewrite::from(&metrics))
}

/// Compacts, Z-orders by `cluster_by`, checkpoints, cleans the log and vacuums a table.
///
/// `cluster_by` is the contract's `cluster_by` for the data table and empty for dead
/// letters; partition columns among it are left out (Delta cannot Z-order by them, and
/// files never span partitions anyway).
pub async fn maintain(
    table: &mut ProductTable,
    cluster_by: &[String],
    opts: MaintainOptions<'_>,
) -> Result<MaintenanceReport> {
    let MaintainOptions {
        dry_run,
        clock,
        progress,
        retention,
    } = opts;
    // One "now" for the whole run, so every step judges retention alike.
    let now = clock.now_millis();
    table.refresh().await?;
    let name = label(table.delta());
    let err = |step: Step| {
        let name = name.clone();
        move |source: DeltaTableError| Error::Delta {
            operation: Operation::Maintain(step),
            table: name,
            source,
        }
    };
    let version_before = table.version();
    let rows_before = rows(table.delta());

    progress(Step::Expire);
    let expired = match retention {
        Some(r) => {
            let keep = i64::try_from(r.keep.as_millis()).unwrap_or(i64::MAX / 1000);
            let before = now.saturating_sub(keep).saturating_mul(1000);
            Some(table.expire(&r.column, before, dry_run).await?)
        }
        None => None,
    };

    progress(Step::Compact);
    let compaction = if dry_run {
        compaction_plan(table.delta()).map_err(err(Step::Compact))?
    } else {
        compact(table).await?
    };

    progress(Step::ZOrder);
    let z_order = z_order(table.delta(), cluster_by, dry_run)
        .await
        .map_err(err(Step::ZOrder))?;
    if !dry_run && matches!(z_order, ZOrder::Rewritten { .. }) {
        table.refresh().await?;
    }

    progress(Step::Checkpoint);
    let checkpoint_version = if dry_run {
        None
    } else {
        create_checkpoint(table.delta(), None)
            .await
            .map_err(err(Step::Checkpoint))?;
        table.version()
    };

    progress(Step::CleanLog);
    let log_files_cleaned = match (dry_run, table.version()) {
        (false, Some(version)) => clean_log(table.delta(), version, now)
            .await
            .map_err(err(Step::CleanLog))?,
        _ => None,
    };

    progress(Step::Vacuum);
    let vacuum_retention = table
        .delta()
        .snapshot()
        .map_err(err(Step::Vacuum))?
        .table_config()
        .deleted_file_retention_duration();
    // No explicit retention: vacuum takes the table's own, and enforcing it makes a
    // shorter one an error rather than a broken time travel.
    let (_, metrics) = table
        .delta()
        .clone()
        .vacuum()
        .with_enforce_retention_duration(true)
        .with_dry_run(dry_run)
        .with_clock(Arc::new(FixedNow(now)))
        .await
        .map_err(err(Step::Vacuum))?;
    if !dry_run {
        table.refresh().await?;
    }

    Ok(MaintenanceReport {
        dry_run,
        expired,
        version_before,
        version_after: table.version(),
        rows_before,
        rows_after: rows(table.delta()),
        compaction,
        z_order,
        checkpoint_version,
        log_files_cleaned,
        vacuumed: metrics.files_deleted,
        vacuum_retention,
    })
}

/// Opens a product's table if it exists, without creating it: maintenance has nothing to
/// do on a table nothing was written to, and should not leave empty ones behind.
pub async fn open_existing(lake: &Lake, contract: &Contract, kind: TableKind) -> Result<Option<ProductTable>> {
    let url = match kind {
        TableKind::Data => lake.product_url(&contract.product, contract.major()),
        TableKind::DeadLetters => lake.dead_letter_url(&contract.product, contract.major()),
        TableKind::Tombstones => lake.tombstone_url(&contract.product, contract.major()),
    };
    let exists = if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        // Cheaper than asking delta-rs, and does not create the directory.
        path.join("_delta_log").is_dir()
    } else {
        let table = DeltaTable::try_from_url_with_storage_options(url, lake.storage_options().clone())
            .await
            .map_err(|source| Error::Delta {
                operation: Operation::Open,
                table: contract.product.value.to_string(),
                source,
            })?;
        table.version().is_some()
    };
    if !exists {
        return Ok(None);
    }
    Ok(Some(ProductTable::open_or_create(lake, contract, kind).await?))
}

fn rows(table: &DeltaTable) -> Option<u64> {
    let state = table.snapshot().ok()?;
    state.log_data().iter().map(|f| f.num_records().map(|n| n as u64)).sum()
}

/// What compaction would rewrite: in each partition, the files below the target size,
/// when there are at least two of them (the rule delta-rs plans by).
fn compaction_plan(table: &DeltaTable) -> Result<Rewrite, DeltaTableError> {
    let state = table.snapshot()?;
    let target = i64::try_from(state.table_config().target_file_size().get()).unwrap_or(i64::MAX);
    let mut small: BTreeMap<BTreeMap<String, Option<String>>, u64> = BTreeMap::new();
    for file in state.log_data().iter().filter(|f| f.size() <= target) {
        *small
            .entry(file.partition_values_map().into_iter().collect())
            .or_default() += 1;
    }
    let merged = small.values().filter(|n| **n >= 2);
    Ok(Rewrite {
        files_removed: merged.clone().sum(),
        files_added: 0,
        partitions: merged.count() as u64,
    })
}

async fn z_order(table: &DeltaTable, cluster_by: &[String], dry_run: bool) -> Result<ZOrder, DeltaTableError> {
    let state = table.snapshot()?;
    let partitions = state.metadata().partition_columns();
    let columns: Vec<String> = cluster_by.iter().filter(|c| !partitions.contains(c)).cloned().collect();
    if columns.is_empty() {
        return Ok(ZOrder::NotClustered);
    }
    let files = state.log_data().num_files() as u64;
    if files < 2 {
        return Ok(ZOrder::TooFewFiles);
    }
    if !written_since_z_order(table, &columns).await? {
        return Ok(ZOrder::UpToDate { columns });
    }
    if dry_run {
        // Z-order rewrites every file of every partition.
        let partitions = state
            .log_data()
            .iter()
            .map(|f| f.partition_values_map().into_iter().collect::<BTreeMap<_, _>>())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        let rewrite = Rewrite {
            files_removed: files,
            files_added: 0,
            partitions,
        };
        return Ok(ZOrder::Rewritten { columns, rewrite });
    }
    let mark = CommitProperties::default().with_metadata([(ZORDER_MARK.to_string(), serde_json::json!(columns))]);
    let (_, metrics) = table
        .clone()
        .optimize()
        .with_type(OptimizeType::ZOrder(columns.clone()))
        .with_writer_properties(crate::table::writer_properties())
        .with_commit_properties(mark)
        .await?;
    Ok(ZOrder::Rewritten {
        columns,
        rewrite: Rewrite::from(&metrics),
    })
}

/// Whether data was committed after the last Z-order by `columns`: walking back from the
/// newest commit, maintenance commits (compaction, vacuum) change no rows and are passed
/// over; anything else means new data. Without a Z-order in recent history, yes.
async fn written_since_z_order(table: &DeltaTable, columns: &[String]) -> Result<bool, DeltaTableError> {
    let mut history = table.history(Some(HISTORY_DEPTH));
    while let Some(commit) = history.try_next().await? {
        if let Some(marked) = commit.info.get(ZORDER_MARK) {
            if *marked == serde_json::json!(columns) {
                return Ok(false);
            }
            // Ordered by other columns (the contract changed): order again.
            return Ok(true);
        }
        let maintenance = matches!(
            commit.operation.as_deref(),
            Some("OPTIMIZE" | "VACUUM START" | "VACUUM END")
        );
        if !maintenance {
            return Ok(true);
        }
    }
    Ok(true)
}

/// Deletes commit files older than the log retention, up to the newest checkpoint at or
/// below them (so every version inside the retention stays readable).
///
/// Time travel needs both the commit files and the data files of a version, so the log
/// is kept at least as long as removed data files (`delta.logRetentionDuration` defaults to
/// 30 days, shorter than most contract retentions).
async fn clean_log(table: &DeltaTable, version: u64, now: i64) -> Result<Option<usize>, DeltaTableError> {
    let config = table.snapshot()?.table_config();
    if !config.enable_expired_log_cleanup() {
        return Ok(None);
    }
    let retention = config
        .log_retention_duration()
        .max(config.deleted_file_retention_duration());
    let cutoff = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let cleaned = cleanup_expired_logs_for(version, table.log_store().as_ref(), cutoff, None).await?;
    Ok(Some(cleaned))
}

/// The table's name as errors of [`ProductTable`] give it: the product, and whether these
/// are its dead letters (their tables live under `_dead_letters/`).
fn label(table: &DeltaTable) -> String {
    let url = table.table_url().to_string();
    let name = table
        .snapshot()
        .ok()
        .and_then(|s| s.metadata().name().map(str::to_string))
        .unwrap_or_else(|| url.clone());
    if url.contains("/_dead_letters/") {
        format!("{name} (dead letters)")
    } else {
        name
    }
}

/// A fixed "now" for delta-rs's vacuum.
#[derive(Debug)]
struct FixedNow(i64);

impl deltalake::operations::vacuum::Clock for FixedNow {
    fn current_timestamp_millis(&self) -> i64 {
        self.0
    }
}
