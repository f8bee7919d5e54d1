//! The contract's `expect` checks, applied to validated rows before they are committed:
//! `warn` keeps and counts, `drop` and `quarantine` move failing rows to the dead
//! letters (with their own reason), `fail` refuses the whole batch.
//!
//! Expressions are SQL, evaluated by DataFusion over the batch. Like SQL `CHECK`
//! constraints, a row passes when the expression is true or NULL.

use crate::dead_letter::Reason;
use crate::validate::Validated;
use crate::{Error, Result};
use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use std::collections::BTreeMap;
use std::sync::Arc;
use trib_spec::{CheckKind, Contract, OnViolation};

struct Expectation {
    name: String,
    sql: String,
    on_violation: OnViolation,
}

/// The `expect` checks of one contract.
pub struct Expectations {
    product: String,
    checks: Vec<Expectation>,
}

/// Rows that failed a `warn` expectation (kept), by expectation name.
pub type Warnings = BTreeMap<String, u64>;

impl Expectations {
    pub fn new(contract: &Contract) -> Self {
        let checks = contract
            .quality
            .iter()
            .filter_map(|q| match &q.kind {
                CheckKind::Expect { sql, on_violation } => Some(Expectation {
                    name: q.name.clone().unwrap_or_else(|| sql.value.clone()),
                    sql: sql.value.clone(),
                    on_violation: *on_violation,
                }),
                _ => None,
            })
            .collect();
        Self {
            product: contract.product.value.to_string(),
            checks,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Applies every expectation to `v` in place. Errors with
    /// [`Error::ExpectationFailed`] when a `fail` expectation does not hold.
    pub async fn apply(&self, v: &mut Validated) -> Result<Warnings> {
        let mut warnings = Warnings::new();
        if self.checks.is_empty() || v.batch.num_rows() == 0 {
            return Ok(warnings);
        }
        let passed = self.evaluate(&v.batch).await?;
        let rows = v.batch.num_rows();
        // The first failing drop/quarantine expectation of a row decides its reason.
        let mut removed: Vec<Option<(Reason, &Expectation)>> = vec![None; rows];
        for (check, ok) in self.checks.iter().zip(&passed) {
            let failing: Vec<usize> = (0..rows).filter(|&i| ok.is_valid(i) && !ok.value(i)).collect();
            if failing.is_empty() {
                continue;
            }
            match check.on_violation {
                OnViolation::Warn => {
                    warnings.insert(check.name.clone(), failing.len() as u64);
                }
                OnViolation::Fail => {
                    return Err(Error::ExpectationFailed {
                        product: self.product.clone(),
                        name: check.name.clone(),
                        sql: check.sql.clone(),
                        rows: failing.len() as u64,
                        first_position: v.accepted_positions.get(failing[0]).copied().unwrap_or_default(),
                    });
                }
                OnViolation::Drop | OnViolation::Quarantine => {
                    let reason = if check.on_violation == OnViolation::Drop {
                        Reason::ExpectationFailed
                    } else {
                        Reason::Quarantined
                    };
                    for i in failing {
                        removed[i].get_or_insert((reason, check));
                    }
                }
            }
        }
        let verdicts = removed
            .into_iter()
            .map(|r| {
                r.map(|(reason, check)| {
                    let message = format!(
                        "expectation `{}` failed: `{}` is false for this record",
                        check.name, check.sql
                    );
                    (reason, None, message)
                })
            })
            .collect();
        v.reject(verdicts).map_err(|source| Error::Arrow {
            product: self.product.clone(),
            source,
        })?;
        Ok(warnings)
    }

    /// One boolean column per expectation, in row order.
    async fn evaluate(&self, batch: &RecordBatch) -> Result<Vec<BooleanArray>> {
        let err = |e: datafusion::error::DataFusionError| Error::Expectation {
            product: self.product.clone(),
            message: e.to_string(),
        };
        let ctx = SessionContext::new();
        let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).map_err(err)?;
        ctx.register_table("t", Arc::new(table)).map_err(err)?;
        let select: Vec<String> = self
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("CAST(({}) AS BOOLEAN) AS e{i}", c.sql))
            .collect();
        let batches = ctx
            .sql(&format!("SELECT {} FROM t", select.join(", ")))
            .await
            .map_err(err)?
            .collect()
            .await
            .map_err(err)?;
        let out = arrow::compute::concat_batches(
            &batches
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty())),
            &batches,
        )
        .map_err(|source| Error::Arrow {
            product: self.product.clone(),
            source,
        })?;
        Ok((0..self.checks.len())
            .map(|i| out.column(i).as_boolean().clone())
            .collect())
    }
}
