//! `_trib.quality_results`: one row per check per run, with a sample of failing rows.

use crate::Result;
use crate::checks::{CheckRun, Scope};
use crate::store::{SystemTable, lit, micros, numbers, texts, utc};
use arrow::array::{
    Array, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::BTreeMap;
use std::sync::Arc;
use trib_lake::Lake;

pub const TABLE: &str = "quality_results";

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, utc()), false),
        Field::new("product", DataType::Utf8, false),
        Field::new("major", DataType::UInt64, false),
        Field::new("scope", DataType::Utf8, false),
        Field::new("table_version", DataType::Int64, true),
        Field::new("check", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("block", DataType::Boolean, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("failing", DataType::UInt64, false),
        Field::new("observed", DataType::Float64, true),
        Field::new("message", DataType::Utf8, false),
        Field::new("sample", DataType::Utf8, true),
    ]))
}

/// The results table.
pub struct Results {
    table: SystemTable,
}

impl Results {
    pub async fn open(lake: &Lake) -> Result<Self> {
        Ok(Self {
            table: SystemTable::open(lake, TABLE, schema()).await?,
        })
    }

    /// Appends a run's results, with `txn` recording how far a product was checked.
    pub async fn record(&mut self, run: &CheckRun, txn: Option<(&str, i64)>) -> Result<()> {
        self.record_all(std::slice::from_ref(run), txn).await
    }

    /// Appends the results of several runs in one commit.
    pub async fn record_all(&mut self, runs: &[CheckRun], txn: Option<(&str, i64)>) -> Result<()> {
        let n: usize = runs.iter().map(|r| r.results.len()).sum();
        let mut run_id = StringBuilder::new();
        let mut at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut product = StringBuilder::new();
        let mut major = UInt64Builder::new();
        let mut scope = StringBuilder::new();
        let mut version = Int64Builder::new();
        let mut check = StringBuilder::new();
        let mut kind = StringBuilder::new();
        let mut severity = StringBuilder::new();
        let mut block = BooleanBuilder::new();
        let mut status = StringBuilder::new();
        let mut rows = UInt64Builder::new();
        let mut failing = UInt64Builder::new();
        let mut observed = Float64Builder::new();
        let mut message = StringBuilder::new();
        let mut sample = StringBuilder::new();
        for (run, r) in runs.iter().flat_map(|run| run.results.iter().map(move |r| (run, r))) {
            run_id.append_value(&run.id);
            at.append_value(micros(run.at_ms));
            product.append_value(&run.product);
            major.append_value(run.major);
            scope.append_value(run.scope.as_str());
            version.append_option(run.version.map(|v| v as i64));
            check.append_value(&r.check);
            kind.append_value(r.kind);
            severity.append_value(r.severity.as_str());
            block.append_value(r.block);
            status.append_value(r.status.as_str());
            rows.append_value(r.rows);
            failing.append_value(r.failing);
            observed.append_option(r.observed.filter(|v| v.is_finite()));
            message.append_value(&r.message);
            sample.append_option(r.sample.as_deref());
        }
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(run_id.finish()),
                Arc::new(at.finish()),
                Arc::new(product.finish()),
                Arc::new(major.finish()),
                Arc::new(scope.finish()),
                Arc::new(version.finish()),
                Arc::new(check.finish()),
                Arc::new(kind.finish()),
                Arc::new(severity.finish()),
                Arc::new(block.finish()),
                Arc::new(status.finish()),
                Arc::new(rows.finish()),
                Arc::new(failing.finish()),
                Arc::new(observed.finish()),
                Arc::new(message.finish()),
                Arc::new(sample.finish()),
            ],
        )?;
        self.table.append(&batch, txn).await
    }

    /// The table version up to which a product's new rows were checked.
    pub async fn checked(&self, app_id: &str) -> Result<Option<i64>> {
        self.table.txn(app_id).await
    }

    /// Past values of each anomaly check of a product in a scope, newest first.
    pub async fn anomaly_history(
        &mut self,
        product: &str,
        major: u64,
        scope: Scope,
    ) -> Result<BTreeMap<String, Vec<f64>>> {
        let sql = format!(
            "SELECT \"check\", observed FROM t WHERE product = {} AND major = {major} AND scope = {} AND kind = 'anomaly' \
             AND status <> 'error' AND observed IS NOT NULL ORDER BY at DESC LIMIT 10000",
            lit(product),
            lit(scope.as_str())
        );
        let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for b in self.table.query(&sql).await? {
            let checks = texts(b.column(0))?;
            let values = numbers(b.column(1))?;
            for i in 0..b.num_rows() {
                if !values.is_null(i) {
                    out.entry(checks.value(i).to_string())
                        .or_default()
                        .push(values.value(i));
                }
            }
        }
        Ok(out)
    }

    /// Runs SQL over the results, registered as `t`.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.table.query(sql).await
    }
}
