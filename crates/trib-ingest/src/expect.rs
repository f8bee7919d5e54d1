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
use arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
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
    compiled: std::sync::Mutex<Option<Arc<Compiled>>>,
}

/// The checks as physical expressions over one schema.
struct Compiled {
    schema: SchemaRef,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
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
            compiled: std::sync::Mutex::new(None),
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
        // The common case: every row passes, and nothing per row is built.
        if passed.iter().all(|ok| ok.false_count() == 0) {
            return Ok(warnings);
        }
        let rows = v.batch.num_rows();
        // The first failing drop/quarantine expectation of a row decides its reason.
        let mut removed: Vec<Option<(Reason, &Expectation)>> = vec![None; rows];
        for (check, ok) in self.checks.iter().zip(&passed) {
            if ok.false_count() == 0 {
                continue;
            }
            let failing: Vec<usize> = (0..rows).filter(|&i| ok.is_valid(i) && !ok.value(i)).collect();
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
        let compiled = self.compiled(batch.schema())?;
        let rows = batch.num_rows();
        compiled
            .exprs
            .iter()
            .map(|e| {
                let column = e
                    .evaluate(batch)
                    .and_then(|v| v.into_array(rows))
                    .map_err(|e| self.error(e.to_string()))?;
                Ok(column.as_boolean().clone())
            })
            .collect()
    }

    /// Plans the expectations for `schema` on a thread of its own, so that the first batch
    /// does not wait for it: planning takes tens of milliseconds, once per process. A
    /// plan that fails is planned again, and reported, by the first batch.
    pub fn plan_ahead(self: &Arc<Self>, schema: SchemaRef) {
        if self.checks.is_empty() {
            return;
        }
        let this = self.clone();
        std::thread::spawn(move || {
            let _ = this.compiled(schema);
        });
    }

    /// The expectations planned once for `schema` (the validator's, the same for every
    /// batch): planning SQL per batch cost more than validating a small request.
    fn compiled(&self, schema: SchemaRef) -> Result<Arc<Compiled>> {
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref().filter(|c| c.schema == schema) {
            return Ok(c.clone());
        }
        let err = |e: datafusion::error::DataFusionError| self.error(e.to_string());
        let ctx = SessionContext::new();
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).map_err(err)?;
        let exprs = self
            .checks
            .iter()
            .map(|c| {
                let expr = ctx
                    .parse_sql_expr(&format!("CAST(({}) AS BOOLEAN)", c.sql), &df_schema)
                    .map_err(err)?;
                ctx.create_physical_expr(expr, &df_schema).map_err(err)
            })
            .collect::<Result<Vec<_>>>()?;
        let compiled = Arc::new(Compiled { schema, exprs });
        *cache = Some(compiled.clone());
        Ok(compiled)
    }

    fn error(&self, message: String) -> Error {
        Error::Expectation {
            product: self.product.clone(),
            message,
        }
    }
}
