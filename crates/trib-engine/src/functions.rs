//! Event-time window functions for models, registered in every model session:
//!
//! - `tumble(ts, INTERVAL '1 minute')`: the start of the fixed, non-overlapping window
//!   holding `ts` (windows are aligned on the Unix epoch);
//! - `hop(ts, INTERVAL '5 minutes', INTERVAL '1 minute')`: the starts of every window of
//!   the given size, one starting each slide, that holds `ts`, as a list to `unnest`:
//!
//! ```sql
//! SELECT w AS window_start, device_id, avg(temperature_c)
//! FROM (SELECT unnest(hop(reading_at, INTERVAL '5 minutes', INTERVAL '1 minute')) AS w, *
//!       FROM iot.sensor_readings)
//! GROUP BY w, device_id
//! ```
//!
//! Both keep the type (and time zone) of `ts`. Window sizes are fixed durations: months
//! have no fixed length, so `date_trunc('month', ts)` is the way to monthly windows.

use datafusion::arrow::array::{Array, ArrayRef, ListBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Adds the window functions to a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(Tumble {
        signature: Signature::any(2, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(Hop {
        signature: Signature::any(3, Volatility::Immutable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Tumble {
    signature: Signature,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Hop {
    signature: Signature,
}

fn check_timestamp(name: &str, t: &DataType) -> Result<()> {
    match t {
        DataType::Timestamp(_, _) => Ok(()),
        other => plan_err!("`{name}` takes a timestamp as its first argument, found {other}"),
    }
}

/// A fixed interval argument in microseconds.
fn micros(name: &str, what: &str, v: &ColumnarValue) -> Result<i64> {
    let ColumnarValue::Scalar(s) = v else {
        return exec_err!("`{name}`: the {what} must be a constant interval such as INTERVAL '1 minute'");
    };
    let us = match s {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            i64::from(i.days) * 86_400_000_000 + i.nanoseconds / 1_000
        }
        ScalarValue::IntervalDayTime(Some(i)) => i64::from(i.days) * 86_400_000_000 + i64::from(i.milliseconds) * 1_000,
        ScalarValue::IntervalMonthDayNano(Some(_)) | ScalarValue::IntervalYearMonth(Some(_)) => {
            return exec_err!(
                "`{name}`: the {what} must be a fixed duration; months and years vary in length (use date_trunc)"
            );
        }
        other => {
            return exec_err!("`{name}`: the {what} must be an interval such as INTERVAL '1 minute', found {other}");
        }
    };
    if us <= 0 {
        return exec_err!("`{name}`: the {what} must be positive");
    }
    Ok(us)
}

/// The timestamps of `v` in microseconds, keeping the time zone.
fn timestamps(v: &ColumnarValue, rows: usize) -> Result<(TimestampMicrosecondArray, DataType)> {
    let array = v.to_array(rows)?;
    let original = array.data_type().clone();
    let tz = match &original {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    let us = cast(&array, &DataType::Timestamp(TimeUnit::Microsecond, tz))?;
    let us = us
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .cloned()
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("timestamp cast".into()))?;
    Ok((us, original))
}

fn floor(ts: i64, step: i64) -> i64 {
    ts - ts.rem_euclid(step)
}

impl ScalarUDFImpl for Tumble {
    fn name(&self) -> &str {
        "tumble"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        check_timestamp("tumble", &args[0])?;
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let size = micros("tumble", "window size", &args.args[1])?;
        let (ts, original) = timestamps(&args.args[0], args.number_rows)?;
        let tz = ts.timezone().map(Arc::<str>::from);
        let starts: TimestampMicrosecondArray = ts.iter().map(|v| v.map(|t| floor(t, size))).collect();
        let starts: ArrayRef = Arc::new(starts.with_timezone_opt(tz));
        Ok(ColumnarValue::Array(cast(&starts, &original)?))
    }
}

impl ScalarUDFImpl for Hop {
    fn name(&self) -> &str {
        "hop"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        check_timestamp("hop", &args[0])?;
        Ok(DataType::List(Arc::new(Field::new("item", args[0].clone(), true))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let size = micros("hop", "window size", &args.args[1])?;
        let slide = micros("hop", "slide", &args.args[2])?;
        if size / slide > 10_000 {
            return exec_err!("`hop`: more than 10000 windows per row; use a larger slide");
        }
        let (ts, original) = timestamps(&args.args[0], args.number_rows)?;
        let tz = ts.timezone().map(Arc::<str>::from);
        let mut builder = ListBuilder::new(TimestampMicrosecondBuilder::new().with_timezone_opt(tz)).with_field(
            Arc::new(Field::new(
                "item",
                DataType::Timestamp(TimeUnit::Microsecond, ts.timezone().map(Arc::from)),
                true,
            )),
        );
        for v in ts.iter() {
            match v {
                None => builder.append_null(),
                Some(t) => {
                    // Windows [s, s + size) holding t, oldest first.
                    let last = floor(t, slide);
                    let mut starts = Vec::new();
                    let mut s = last;
                    while s > t - size {
                        starts.push(s);
                        s -= slide;
                    }
                    starts.reverse();
                    for s in starts {
                        builder.values().append_value(s);
                    }
                    builder.append(true);
                }
            }
        }
        let list: ArrayRef = Arc::new(builder.finish());
        let target = DataType::List(Arc::new(Field::new("item", original, true)));
        Ok(ColumnarValue::Array(cast(&list, &target)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        register(&ctx);
        let b = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
        datafusion::arrow::util::pretty::pretty_format_batches(&b)
            .expect("fmt")
            .to_string()
    }

    #[tokio::test]
    async fn tumble_aligns_on_the_epoch() {
        let out = one("SELECT tumble(TIMESTAMP '2026-03-15 14:07:42', INTERVAL '5 minutes') AS w").await;
        assert!(out.contains("2026-03-15T14:05:00"), "{out}");
    }

    #[tokio::test]
    async fn hop_lists_every_window_holding_the_time() {
        let out =
            one("SELECT unnest(hop(TIMESTAMP '2026-03-15 14:07:42', INTERVAL '3 minutes', INTERVAL '1 minute')) AS w")
                .await;
        for w in ["14:05:00", "14:06:00", "14:07:00"] {
            assert!(out.contains(w), "{out}");
        }
        assert!(!out.contains("14:04:00") && !out.contains("14:08:00"), "{out}");
    }

    #[tokio::test]
    async fn months_are_refused() {
        let ctx = SessionContext::new();
        register(&ctx);
        let err = match ctx
            .sql("SELECT tumble(TIMESTAMP '2026-03-15 14:07:42', INTERVAL '1 month')")
            .await
        {
            Ok(df) => df.collect().await.expect_err("refused").to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("fixed duration"), "{err}");
    }
}
