//! Events later than the watermark, for products whose contract says `late: dead_letter`.
//!
//! The watermark is the largest event time seen so far minus `allowed_lateness`, and it
//! moves record by record in arrival order (within a batch too), so what counts as late
//! does not depend on how arrivals were cut into batches. The largest event time seen
//! is read from the table when the ingestor opens, and kept up to date after each commit.

use crate::Result;
use crate::dead_letter::Reason;
use crate::validate::{Validated, Verdict};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit};
use trib_lake::ProductTable;
use trib_spec::{Contract, LatePolicy};

pub(crate) struct LateFilter {
    product: String,
    column: String,
    lateness_us: i64,
    lateness_text: String,
    /// Largest event time committed, in microseconds; `None` before the first row.
    max_seen: Option<i64>,
    loaded: bool,
}

impl LateFilter {
    pub(crate) fn new(contract: &Contract) -> Option<Self> {
        let w = contract.watermark.as_ref()?;
        if w.late != LatePolicy::DeadLetter {
            return None;
        }
        let column = contract.event_time.as_ref()?.value.clone();
        let ts = contract.schema.iter().find(|c| c.name.value == column)?;
        // Only timestamp event times have a watermark here.
        if !matches!(ts.data_type.value.to_arrow(), DataType::Timestamp(_, _)) {
            return None;
        }
        Some(Self {
            product: contract.product.value.to_string(),
            column,
            lateness_us: i64::try_from(w.allowed_lateness.as_secs()).unwrap_or(i64::MAX / 2_000_000) * 1_000_000,
            lateness_text: w.allowed_lateness.to_string(),
            max_seen: None,
            loaded: false,
        })
    }

    pub(crate) async fn load(&mut self, bronze: &ProductTable) -> Result<()> {
        if self.loaded {
            return Ok(());
        }
        let sql = format!("SELECT max(\"{}\") AS m FROM t", self.column.replace('"', "\"\""));
        let batches = bronze.query(&sql).await.map_err(crate::Error::Lake)?;
        self.max_seen = batches.first().and_then(|b| {
            let c = arrow::compute::cast(b.column(0), &DataType::Timestamp(TimeUnit::Microsecond, None)).ok()?;
            let a = c.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            a.is_valid(0).then(|| a.value(0))
        });
        self.loaded = true;
        Ok(())
    }

    /// Dead-letters the rows behind the watermark; returns the largest event time the
    /// batch would make, to [`LateFilter::advance`] to once the batch is committed.
    pub(crate) async fn apply(
        &mut self,
        bronze: &ProductTable,
        v: &mut Validated,
        from: Option<i64>,
    ) -> Result<Option<i64>> {
        self.load(bronze).await?;
        let mut max = from.or(self.max_seen);
        if v.batch.num_rows() == 0 {
            return Ok(max);
        }
        let arrow_err = |source| crate::Error::Arrow {
            product: self.product.clone(),
            source,
        };
        let col = v
            .batch
            .column_by_name(&self.column)
            .map(|c| arrow::compute::cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None)))
            .transpose()
            .map_err(arrow_err)?;
        let Some(col) = col else { return Ok(max) };
        let times = col.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        // Rows in arrival order: positions only grow within a body. Late rows are rare:
        // they are found first, and only then is a verdict made for each row.
        let mut late: Vec<(usize, i64, i64)> = Vec::new();
        for (i, &t) in times.values().iter().enumerate() {
            if times.is_null(i) {
                continue;
            }
            match max {
                Some(m) if t < m.saturating_sub(self.lateness_us) => late.push((i, t, m)),
                _ => max = Some(max.map_or(t, |m| m.max(t))),
            }
        }
        if late.is_empty() {
            return Ok(max);
        }
        let mut verdicts: Vec<Verdict> = vec![None; times.len()];
        for (i, t, m) in late {
            let wm = m - self.lateness_us;
            verdicts[i] = Some((
                Reason::Late,
                Some(self.column.clone()),
                format!(
                    "`{}` {} is older than the watermark {} (latest event time seen {} minus allowed lateness {})",
                    self.column,
                    micros_text(t),
                    micros_text(wm),
                    micros_text(m),
                    self.lateness_text
                ),
            ));
        }
        v.reject(verdicts).map_err(arrow_err)?;
        Ok(max)
    }

    /// The batch is committed: its event times now count.
    pub(crate) fn advance(&mut self, to: Option<i64>) {
        if let Some(t) = to {
            self.max_seen = Some(self.max_seen.map_or(t, |m| m.max(t)));
        }
    }
}

fn micros_text(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map_or_else(|| us.to_string(), |d| d.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
}
