//! Group commit: many producers' batches of one product in one Delta commit per table,
//! each batch keeping its own exactly-once id.

use super::{BatchId, BatchReport, Ingestor};
use crate::dead_letter::{self, Provenance};
use crate::format::Format;
use crate::{Error, Result, decode};
use arrow::array::RecordBatch;
use std::collections::HashSet;

/// One batch waiting to be committed.
#[derive(Debug)]
pub struct Pending {
    pub format: Format,
    pub body: Vec<u8>,
    pub provenance: Provenance,
    pub id: Option<BatchId>,
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
        self.bronze.refresh().await.map_err(Error::Lake)?;
        self.dead.refresh().await.map_err(Error::Lake)?;
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        let mut prepared: Vec<Result<Prepared>> = Vec::with_capacity(items.len());
        for item in items {
            let key = item.id.as_ref().map(|b| (b.app_id.clone(), b.version));
            let (mut in_bronze, mut in_dead) = (false, false);
            if let Some((app, v)) = &key {
                in_bronze = self
                    .bronze
                    .txn_version(app)
                    .await
                    .map_err(Error::Lake)?
                    .is_some_and(|c| c >= *v);
                in_dead = self
                    .dead
                    .txn_version(app)
                    .await
                    .map_err(Error::Lake)?
                    .is_some_and(|c| c >= *v);
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
            let validated = match decode(item.format, &item.body).and_then(|records| self.validator.validate(records)) {
                Ok(mut v) => self.expectations.apply(&mut v).await.map(|w| (v, w)),
                Err(e) => Err(e),
            };
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
        // batch written now records its id in both tables, rows or not, so a retry is
        // recognised in both.
        let ok: Vec<&Prepared> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let arrow_err = |source| Error::Arrow {
            product: self.product.clone(),
            source,
        };
        let dead_rows: Vec<RecordBatch> = ok.iter().filter(|p| !p.in_dead).map(|p| p.dead.clone()).collect();
        let dead_txns = txns(ok.iter().filter(|p| !p.in_dead).filter_map(|p| p.key.clone()));
        let dead_batch = arrow::compute::concat_batches(&dead_letter::schema(), &dead_rows).map_err(arrow_err)?;
        self.dead
            .append_txns(&dead_batch, &dead_txns)
            .await
            .map_err(Error::Lake)?;
        let bronze_rows: Vec<RecordBatch> = ok.iter().filter(|p| !p.in_bronze).map(|p| p.rows.clone()).collect();
        let bronze_txns = txns(ok.iter().filter(|p| !p.in_bronze).filter_map(|p| p.key.clone()));
        let bronze_batch = arrow::compute::concat_batches(&self.validator.schema(), &bronze_rows).map_err(arrow_err)?;
        let version = match self
            .bronze
            .append_txns(&bronze_batch, &bronze_txns)
            .await
            .map_err(Error::Lake)?
        {
            trib_lake::Appended::Committed { version, .. } => Some(version),
            _ => None,
        };
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

fn txns(keys: impl Iterator<Item = (String, i64)>) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = keys.collect();
    v.sort();
    v.dedup();
    v
}
