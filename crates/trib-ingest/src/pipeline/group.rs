//! Group commit: many producers' batches of one product in one Delta commit per table,
//! each batch keeping its own exactly-once id.

use super::{BatchId, BatchReport, Ingestor};
use crate::dead_letter::{self, Provenance};
use crate::format::Format;
use crate::validate::Validated;
use crate::{Error, Record, Result};
use arrow::array::{BooleanArray, RecordBatch};
use std::collections::HashSet;

/// One batch waiting to be committed.
#[derive(Debug)]
pub struct Pending {
    pub body: Body,
    pub provenance: Provenance,
    pub id: Option<BatchId>,
}

/// What a batch holds: bytes still to decode, or records a source already split.
#[derive(Debug)]
pub enum Body {
    Encoded {
        format: Format,
        bytes: bytes::Bytes,
    },
    Records(Vec<Record>),
    /// Prepared by the sender (an HTTP handler, off the writer's path), or why not.
    Prepared(Result<super::Prepared>),
}

impl Body {
    /// Validated rows and the `warn` expectations they failed.
    async fn prepare(self, ingestor: &Ingestor) -> Result<(Validated, crate::expect::Warnings)> {
        let mut validated = match self {
            Body::Prepared(p) => return p.map(|p| (p.validated, p.warnings)),
            Body::Encoded { format, bytes } => ingestor.validator.validate_body(format, bytes)?,
            Body::Records(records) => ingestor.validator.validate(records)?,
        };
        let warnings = ingestor.expectations.apply(&mut validated).await?;
        Ok((validated, warnings))
    }
}

/// A validated batch and where it already is.
struct Prepared {
    key: Option<(String, i64)>,
    rows: RecordBatch,
    dead: RecordBatch,
    report: BatchReport,
    in_bronze: bool,
    in_dead: bool,
}

impl Ingestor {
    /// Validates every pending batch and commits them together: one commit to the
    /// dead-letter table, then one to bronze, each recording the ids of the batches
    /// it holds. Per batch, the result is its report or why its body was refused; the
    /// outer error means a commit failed and the group must be retried.
    pub async fn ingest_group(&mut self, items: Vec<Pending>) -> Result<Vec<Result<BatchReport>>> {
        let started = std::time::Instant::now();
        self.bronze.catch_up().await.map_err(Error::Lake)?;
        self.dead.catch_up().await.map_err(Error::Lake)?;
        let refreshed_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        // The latest event time over the group so far, for the watermark.
        let mut latest_event = None;
        let mut prepared: Vec<Result<Prepared>> = Vec::with_capacity(items.len());
        for item in items {
            let key = item.id.as_ref().map(|b| (b.app_id.clone(), b.version));
            let offsets = item.id.as_ref().is_some_and(|b| b.offsets);
            let (mut in_bronze, mut in_dead) = (false, false);
            // For batches positioned by stream offsets: the last offset each table holds.
            let (mut bronze_floor, mut dead_floor) = (None, None);
            if let Some((app, v)) = &key {
                let bronze_has = self.bronze.txn_version(app).await.map_err(Error::Lake)?;
                let dead_has = self.dead.txn_version(app).await.map_err(Error::Lake)?;
                // Dead letters commit before bronze, and only when there are some: what
                // bronze holds, the dead-letter table holds too.
                in_bronze = bronze_has.is_some_and(|c| c >= *v);
                in_dead = in_bronze || dead_has.is_some_and(|c| c >= *v);
                if offsets {
                    (bronze_floor, dead_floor) = (bronze_has, dead_has.max(bronze_has));
                }
                // The same batch twice in one group: the second is a retry of the first.
                if !seen.insert((app.clone(), *v)) {
                    (in_bronze, in_dead) = (true, true);
                }
            }
            if in_bronze && in_dead {
                prepared.push(Ok(Prepared {
                    key,
                    rows: RecordBatch::new_empty(self.validator.schema()),
                    dead: RecordBatch::new_empty(dead_letter::schema()),
                    report: BatchReport {
                        duplicate: true,
                        ..BatchReport::default()
                    },
                    in_bronze,
                    in_dead,
                }));
                continue;
            }
            let mut validated = item.body.prepare(self).await;
            if let (Ok((v, _)), Some(late)) = (&mut validated, self.late.as_mut()) {
                match late.apply(&self.bronze, v, latest_event).await {
                    Ok(m) => latest_event = m,
                    Err(e) => validated = Err(e),
                }
            }
            let validated = validated.and_then(|(v, w)| {
                let v = skip_committed(v, bronze_floor, dead_floor).map_err(|source| Error::Arrow {
                    product: self.product.clone(),
                    source,
                })?;
                Ok((v, w))
            });
            prepared.push(validated.map(|(v, warnings)| {
                let mut report = BatchReport {
                    received: v.received() as u64,
                    accepted: v.batch.num_rows() as u64,
                    dead_lettered: v.dead_letters.len() as u64,
                    skipped_tombstones: v.skipped_tombstones,
                    expectation_warnings: warnings,
                    ..BatchReport::default()
                };
                for d in &v.dead_letters {
                    *report.by_reason.entry(d.reason).or_default() += 1;
                }
                Prepared {
                    key,
                    dead: dead_letter::to_batch(&v.dead_letters, &item.provenance),
                    rows: v.batch,
                    report,
                    in_bronze,
                    in_dead,
                }
            }));
        }

        // Dead letters first; see `Ingestor::ingest` for why that order is safe. Every
        // batch written now records its id in bronze, rows or not, and in the
        // dead-letter table when the group has dead letters, so a retry is recognised.
        let ok: Vec<&Prepared> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let arrow_err = |source| Error::Arrow {
            product: self.product.clone(),
            source,
        };
        let dead_rows: Vec<RecordBatch> = ok.iter().filter(|p| !p.in_dead).map(|p| p.dead.clone()).collect();
        let dead_txns = txns(ok.iter().filter(|p| !p.in_dead).filter_map(|p| p.key.clone()));
        let dead_batch = arrow::compute::concat_batches(&dead_letter::schema(), &dead_rows).map_err(arrow_err)?;
        if dead_batch.num_rows() > 0 {
            self.dead
                .append_txns(&dead_batch, &dead_txns)
                .await
                .map_err(Error::Lake)?;
        }
        let bronze_rows: Vec<RecordBatch> = ok.iter().filter(|p| !p.in_bronze).map(|p| p.rows.clone()).collect();
        let bronze_txns = txns(ok.iter().filter(|p| !p.in_bronze).filter_map(|p| p.key.clone()));
        let bronze_batch = arrow::compute::concat_batches(&self.validator.schema(), &bronze_rows).map_err(arrow_err)?;
        let checked_ms = started.elapsed().as_secs_f64() * 1e3;
        let appended = self
            .bronze
            .append_txns_unsettled(&bronze_batch, &bronze_txns)
            .await
            .map_err(Error::Lake)?;
        if !self.defer_settle {
            self.settle().await?;
        }
        let version = match appended {
            trib_lake::Appended::Committed { version, .. } => Some(version),
            _ => None,
        };
        if let Some(l) = self.late.as_mut() {
            l.advance(latest_event);
        }
        tracing::debug!(
            product = %self.product,
            batches = prepared.len(),
            rows = bronze_batch.num_rows(),
            refreshed_ms,
            checked_ms = checked_ms - refreshed_ms,
            written_ms = started.elapsed().as_secs_f64() * 1e3 - checked_ms,
            "group committed"
        );
        Ok(prepared
            .into_iter()
            .map(|p| {
                p.map(|p| BatchReport {
                    bronze_version: if p.report.duplicate { None } else { version },
                    ..p.report
                })
            })
            .collect())
    }
}

/// Drops what a replayed stream batch shares with the tables: rows at or below the
/// offset bronze holds, dead letters at or below the one the dead-letter table holds.
/// The two differ when a process died between the two commits of a batch.
fn skip_committed(
    mut v: Validated,
    bronze_floor: Option<i64>,
    dead_floor: Option<i64>,
) -> std::result::Result<Validated, arrow::error::ArrowError> {
    let newer = |floor: Option<i64>, position: u64| floor.is_none_or(|f| i64::try_from(position).is_ok_and(|p| p > f));
    if v.accepted_positions.iter().any(|p| !newer(bronze_floor, *p)) {
        let keep: Vec<bool> = v.accepted_positions.iter().map(|p| newer(bronze_floor, *p)).collect();
        v.batch = arrow::compute::filter_record_batch(&v.batch, &BooleanArray::from(keep.clone()))?;
        let mut k = keep.iter();
        v.accepted_positions.retain(|_| k.next().copied().unwrap_or(false));
        v.accepted_raw.retain(&keep);
    }
    v.dead_letters.retain(|d| newer(dead_floor, d.position));
    Ok(v)
}

fn txns(keys: impl Iterator<Item = (String, i64)>) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = keys.collect();
    v.sort();
    v.dedup();
    v
}
