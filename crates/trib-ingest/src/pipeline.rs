//! One batch from decode to durable commit: validated rows to the product's bronze
//! table and rejects to its dead-letter table, each commit carrying the batch's
//! transaction so that a retry lands nothing twice.

use crate::dead_letter::{self, DeadLetter, Provenance, Reason};
use crate::format::Format;
use crate::validate::Validator;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use trib_lake::{Appended, Lake, ProductTable, TableKind};
use trib_spec::Contract;

mod group;
pub use group::{Body, Pending};

/// Writes batches of one product.
pub struct Ingestor {
    product: String,
    validator: Arc<Validator>,
    expectations: Arc<crate::expect::Expectations>,
    late: Option<crate::late::LateFilter>,
    bronze: ProductTable,
    dead: ProductTable,
    /// Group commits leave bronze's table state behind its log (see
    /// [`trib_lake::ProductTable::append_txns_unsettled`]); otherwise each group loads it.
    defer_settle: bool,
    /// Bronze's commits and their rows, for a caller that checks them in memory.
    kept: Option<Kept>,
}

/// Rows committed to bronze, kept up to a size: see [`Ingestor::keep_committed`].
#[derive(Debug, Default)]
struct Kept {
    /// The first and the last version committed.
    versions: Option<(u64, u64)>,
    batches: Vec<arrow::array::RecordBatch>,
    bytes: usize,
    budget: usize,
    /// Over budget: nothing is kept any more.
    overflowed: bool,
}

impl Kept {
    fn push(&mut self, version: u64, batch: &arrow::array::RecordBatch) {
        if self.overflowed {
            return;
        }
        self.bytes += batch.get_array_memory_size();
        if self.bytes > self.budget {
            self.overflowed = true;
            self.batches = Vec::new();
            return;
        }
        self.versions = Some((self.versions.map_or(version, |(first, _)| first), version));
        self.batches.push(batch.clone());
    }
}

/// Decodes, validates and applies the expectations to batches of one product, on any
/// task: nothing here touches a table.
#[derive(Clone)]
pub struct Preparer {
    validator: Arc<Validator>,
    expectations: Arc<crate::expect::Expectations>,
}

/// A batch ready to commit.
#[derive(Debug)]
pub struct Prepared {
    pub validated: crate::validate::Validated,
    /// Rows kept although a `warn` expectation failed, by expectation.
    pub warnings: crate::expect::Warnings,
}

impl Preparer {
    pub fn new(contract: &Contract) -> Self {
        let validator = Arc::new(Validator::new(contract));
        let expectations = Arc::new(crate::expect::Expectations::new(contract));
        expectations.plan_ahead(validator.schema());
        Self {
            validator,
            expectations,
        }
    }

    /// Validation runs on a blocking thread (in parallel chunks for large bodies), so
    /// the caller's runtime keeps serving while it does.
    pub async fn prepare(&self, format: Format, body: bytes::Bytes) -> Result<Prepared> {
        let started = std::time::Instant::now();
        let validator = self.validator.clone();
        let mut validated = tokio::task::spawn_blocking(move || validator.validate_body(format, body))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        let validated_ms = started.elapsed().as_secs_f64() * 1e3;
        let warnings = self.expectations.apply(&mut validated).await?;
        tracing::debug!(
            rows = validated.received(),
            validated_ms,
            checked_ms = started.elapsed().as_secs_f64() * 1e3 - validated_ms,
            "batch prepared"
        );
        Ok(Prepared { validated, warnings })
    }
}

/// What became of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub received: u64,
    pub accepted: u64,
    pub dead_lettered: u64,
    /// Debezium tombstones: not records, so not in `received`.
    pub skipped_tombstones: u64,
    pub by_reason: BTreeMap<Reason, u64>,
    /// Rows kept although a `warn` expectation failed, by expectation.
    pub expectation_warnings: BTreeMap<String, u64>,
    /// The batch's transaction was already in the tables: nothing was written now.
    pub duplicate: bool,
    /// Bronze table version holding the rows, when written now.
    pub bronze_version: Option<u64>,
}

impl BatchReport {
    /// The report of a batch the tables already held: nothing written now.
    pub fn duplicate() -> Self {
        Self {
            duplicate: true,
            ..Self::default()
        }
    }

    pub fn add(&mut self, other: &BatchReport) {
        self.received += other.received;
        self.accepted += other.accepted;
        self.dead_lettered += other.dead_lettered;
        self.skipped_tombstones += other.skipped_tombstones;
        for (r, n) in &other.by_reason {
            *self.by_reason.entry(*r).or_default() += n;
        }
        for (e, n) in &other.expectation_warnings {
            *self.expectation_warnings.entry(e.clone()).or_default() += n;
        }
        self.bronze_version = other.bronze_version.or(self.bronze_version);
    }
}

/// Identifies a batch for exactly-once commits: a stream (`app_id`) and its position.
#[derive(Debug, Clone)]
pub struct BatchId {
    pub app_id: String,
    pub version: i64,
    /// Whether record positions are the stream's own offsets and `version` the last of
    /// them (Kafka). A replayed batch that overlaps what a table holds then lands only
    /// its newer records, instead of all or nothing.
    pub offsets: bool,
}

impl BatchId {
    /// A batch that lands whole or not at all.
    pub fn new(app_id: impl Into<String>, version: i64) -> Self {
        Self {
            app_id: app_id.into(),
            version,
            offsets: false,
        }
    }
}

impl Ingestor {
    pub async fn open(lake: &Lake, contract: &Contract) -> Result<Self> {
        let bronze = ProductTable::open_or_create(lake, contract, TableKind::Data)
            .await
            .map_err(Error::Lake)?;
        let dead = ProductTable::open_or_create(lake, contract, TableKind::DeadLetters)
            .await
            .map_err(Error::Lake)?;
        let validator = Arc::new(Validator::new(contract));
        Ok(Self {
            product: contract.product.value.to_string(),
            expectations: {
                let e = Arc::new(crate::expect::Expectations::new(contract));
                e.plan_ahead(validator.schema());
                e
            },
            validator,
            late: crate::late::LateFilter::new(contract),
            bronze,
            dead,
            defer_settle: false,
            kept: None,
        })
    }

    /// Keeps the rows this ingestor commits to bronze, up to `budget` bytes of Arrow
    /// memory, for [`Ingestor::take_committed`].
    pub fn keep_committed(mut self, budget: usize) -> Self {
        self.kept = Some(Kept {
            budget,
            ..Kept::default()
        });
        self
    }

    /// The rows committed since [`Ingestor::keep_committed`], when they fit its budget
    /// and took consecutive versions of bronze (no other writer committed between them).
    pub fn take_committed(&mut self) -> Option<trib_lake::Committed> {
        let k = self.kept.take()?;
        let (first, last) = k.versions?;
        if k.overflowed || last - first + 1 != k.batches.len() as u64 {
            return None;
        }
        Some(trib_lake::Committed {
            first,
            last,
            batches: k.batches,
        })
    }

    /// Makes [`Ingestor::ingest_group`] return once its commits are durable, without
    /// loading bronze's new table state: for a writer that commits often and reads
    /// nothing back (`trib serve`). [`Ingestor::settle`] loads it.
    pub fn with_deferred_settle(mut self) -> Self {
        self.defer_settle = true;
        self
    }

    /// Loads now what the first batch would otherwise wait for: the watermark (a query
    /// of bronze) and both tables' transaction indexes.
    pub async fn warm_up(&mut self) -> Result<()> {
        if let Some(l) = self.late.as_mut() {
            l.load(&self.bronze).await?;
        }
        self.bronze.txn_version("").await.map_err(Error::Lake)?;
        self.dead.txn_version("").await.map_err(Error::Lake)?;
        Ok(())
    }

    /// Loads bronze's state up to its last commit.
    pub async fn settle(&mut self) -> Result<()> {
        self.bronze.settle().await.map_err(Error::Lake)
    }

    pub fn bronze(&self) -> &ProductTable {
        &self.bronze
    }

    pub fn dead_letters(&self) -> &ProductTable {
        &self.dead
    }

    /// Decodes, validates and commits one body. Returns only after both commits are
    /// durable. A body whose framing is broken is an error and writes nothing.
    pub async fn ingest(
        &mut self,
        format: Format,
        body: &[u8],
        provenance: &Provenance,
        id: Option<&BatchId>,
    ) -> Result<BatchReport> {
        self.ingest_bytes(format, bytes::Bytes::copy_from_slice(body), provenance, id)
            .await
    }

    /// [`Ingestor::ingest`] of a body the caller hands over.
    pub async fn ingest_bytes(
        &mut self,
        format: Format,
        body: bytes::Bytes,
        provenance: &Provenance,
        id: Option<&BatchId>,
    ) -> Result<BatchReport> {
        if self.holds_any(id).await? {
            return Ok(BatchReport::duplicate());
        }
        let prepared = self.preparer().prepare(format, body).await?;
        self.commit_prepared(prepared, provenance, id).await
    }

    /// Whether the tables already hold batch `id`. Bronze commits last: a batch it
    /// holds is done in both tables.
    pub async fn holds(&self, id: &BatchId) -> Result<bool> {
        Ok(self.bronze.txn_version(&id.app_id).await.map_err(Error::Lake)? >= Some(id.version))
    }

    async fn holds_any(&self, id: Option<&BatchId>) -> Result<bool> {
        match id {
            Some(b) => self.holds(b).await,
            None => Ok(false),
        }
    }

    /// The half of this ingestor that needs no table: it can prepare the next batches
    /// while this one commits.
    pub fn preparer(&self) -> Preparer {
        Preparer {
            validator: self.validator.clone(),
            expectations: self.expectations.clone(),
        }
    }

    /// Commits a batch [`Preparer::prepare`] made: the watermark, then dead letters
    /// and rows. Returns only after both commits are durable.
    pub async fn commit_prepared(
        &mut self,
        prepared: Prepared,
        provenance: &Provenance,
        id: Option<&BatchId>,
    ) -> Result<BatchReport> {
        if self.holds_any(id).await? {
            return Ok(BatchReport::duplicate());
        }
        let started = std::time::Instant::now();
        let Prepared {
            mut validated,
            warnings,
        } = prepared;
        let latest_event = match self.late.as_mut() {
            Some(l) => l.apply(&self.bronze, &mut validated, None).await?,
            None => None,
        };
        let received = validated.received() as u64;
        let txn = id.map(|b| (b.app_id.as_str(), b.version));
        let mut report = BatchReport {
            received,
            accepted: validated.batch.num_rows() as u64,
            dead_lettered: validated.dead_letters.len() as u64,
            skipped_tombstones: validated.skipped_tombstones,
            expectation_warnings: warnings,
            ..BatchReport::default()
        };
        for d in &validated.dead_letters {
            *report.by_reason.entry(d.reason).or_default() += 1;
        }
        // Dead letters first: if the process dies between the two commits, the retry
        // finds the dead letters committed and writes the rows; each table's own txn
        // keeps the other from landing twice. A batch without dead letters commits to
        // bronze only: bronze holding a batch means it is done.
        let dead_outcome = self
            .write_dead_letters(&validated.dead_letters, provenance, txn)
            .await?;
        let outcome = if validated.batch.num_rows() > 0 || txn.is_some() {
            self.bronze.append(&validated.batch, txn).await.map_err(Error::Lake)?
        } else {
            Appended::Empty
        };
        if let Some(l) = self.late.as_mut() {
            l.advance(latest_event);
        }
        match outcome {
            Appended::Committed { version, .. } => {
                report.bronze_version = Some(version);
                if let Some(k) = self.kept.as_mut() {
                    k.push(version, &validated.batch);
                }
            }
            Appended::AlreadyCommitted => report.duplicate = true,
            Appended::Empty => report.duplicate = dead_outcome == Appended::AlreadyCommitted,
        }
        tracing::debug!(product = %self.product, received, accepted = report.accepted, dead = report.dead_lettered, duplicate = report.duplicate, commit_ms = started.elapsed().as_secs_f64() * 1e3, "batch committed");
        Ok(report)
    }

    async fn write_dead_letters(
        &mut self,
        letters: &[DeadLetter],
        provenance: &Provenance,
        txn: Option<(&str, i64)>,
    ) -> Result<Appended> {
        if letters.is_empty() {
            return Ok(Appended::Empty);
        }
        let batch = dead_letter::to_batch(letters, provenance);
        self.dead.append(&batch, txn).await.map_err(Error::Lake)
    }
}
