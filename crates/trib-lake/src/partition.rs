//! Partition columns. Delta has no hidden partitioning, so `day(ordered_at)` becomes a
//! real column `ordered_at_day` computed at write time: every engine (Spark, Trino,
//! DuckDB) prunes on it, and filters on it are plain SQL.

use chrono::{DateTime, Datelike, NaiveDate};
use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int32Array, RecordBatch, TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use deltalake::arrow::error::ArrowError;
use std::sync::Arc;
use trib_spec::{Contract, PartitionTransform};

/// One partition column of a product's table.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionColumn {
    /// Name in the table: the column itself, or `<column>_<transform>`.
    pub name: String,
    pub source: String,
    pub transform: PartitionTransform,
}

impl PartitionColumn {
    pub fn is_derived(&self) -> bool {
        self.transform != PartitionTransform::Identity
    }

    fn data_type(&self) -> DataType {
        match self.transform {
            PartitionTransform::Year => DataType::Int32,
            PartitionTransform::Month | PartitionTransform::Day => DataType::Date32,
            PartitionTransform::Hour => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PartitionTransform::Identity => DataType::Null,
        }
    }
}

/// The partition columns a contract asks for, in order.
pub fn partition_columns(contract: &Contract) -> Vec<PartitionColumn> {
    contract
        .partition_by
        .iter()
        .map(|p| PartitionColumn {
            name: match p.transform {
                PartitionTransform::Identity => p.column.value.clone(),
                t => format!("{}_{}", p.column.value, t.as_str()),
            },
            source: p.column.value.clone(),
            transform: p.transform,
        })
        .collect()
}

/// The table schema: the contract's columns plus derived partition columns.
pub fn table_schema(base: &Schema, parts: &[PartitionColumn]) -> SchemaRef {
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    for p in parts.iter().filter(|p| p.is_derived()) {
        fields.push(Field::new(&p.name, p.data_type(), true));
    }
    Arc::new(Schema::new(fields))
}

/// Adds the derived partition columns to a batch of the contract's schema.
pub fn with_partition_values(
    batch: &RecordBatch,
    schema: &SchemaRef,
    parts: &[PartitionColumn],
) -> Result<RecordBatch, ArrowError> {
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for p in parts.iter().filter(|p| p.is_derived()) {
        let source = batch
            .column_by_name(&p.source)
            .ok_or_else(|| ArrowError::SchemaError(format!("partition source column `{}` is missing", p.source)))?;
        columns.push(derive(source.as_ref(), p.transform)?);
    }
    RecordBatch::try_new(schema.clone(), columns)
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn derive(source: &dyn Array, t: PartitionTransform) -> Result<ArrayRef, ArrowError> {
    // Work from days since the epoch (dates) or microseconds (timestamps).
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    match source.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let ts = source.as_primitive::<TimestampMicrosecondType>();
            Ok(match t {
                PartitionTransform::Hour => Arc::new(
                    TimestampMicrosecondArray::from_iter(ts.iter().map(|v| v.map(|m| m - m.rem_euclid(3_600_000_000))))
                        .with_timezone("UTC"),
                ),
                PartitionTransform::Day => Arc::new(Date32Array::from_iter(
                    ts.iter().map(|v| v.map(|m| m.div_euclid(MICROS_PER_DAY) as i32)),
                )),
                PartitionTransform::Month => Arc::new(Date32Array::from_iter(ts.iter().map(|v| {
                    v.and_then(DateTime::from_timestamp_micros)
                        .map(|d| month_start(d.date_naive(), epoch))
                }))),
                PartitionTransform::Year => Arc::new(Int32Array::from_iter(
                    ts.iter()
                        .map(|v| v.and_then(DateTime::from_timestamp_micros).map(|d| d.year())),
                )),
                PartitionTransform::Identity => Arc::new(ts.clone()),
            })
        }
        DataType::Date32 => {
            let days = source.as_primitive::<Date32Type>();
            let date = |d: i32| epoch + chrono::Duration::days(i64::from(d));
            Ok(match t {
                PartitionTransform::Day | PartitionTransform::Identity => Arc::new(days.clone()),
                PartitionTransform::Month => Arc::new(Date32Array::from_iter(
                    days.iter().map(|v| v.map(|d| month_start(date(d), epoch))),
                )),
                PartitionTransform::Year => {
                    Arc::new(Int32Array::from_iter(days.iter().map(|v| v.map(|d| date(d).year()))))
                }
                PartitionTransform::Hour => Arc::new(
                    TimestampMicrosecondArray::from_iter(days.iter().map(|v| v.map(|d| i64::from(d) * MICROS_PER_DAY)))
                        .with_timezone("UTC"),
                ),
            })
        }
        other => Err(ArrowError::SchemaError(format!(
            "cannot partition by {t} of a {other} column"
        ))),
    }
}

fn month_start(d: NaiveDate, epoch: NaiveDate) -> i32 {
    let first = d.with_day(1).unwrap_or(d);
    (first - epoch).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_day_hour_month_year() {
        // 2026-03-15T14:30:00Z and a null.
        let ts: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![Some(1_773_585_000_000_000), None]).with_timezone("UTC"));
        let day = derive(ts.as_ref(), PartitionTransform::Day).expect("day");
        assert_eq!(day.as_primitive::<Date32Type>().value(0), 20527);
        assert!(day.is_null(1));
        let hour = derive(ts.as_ref(), PartitionTransform::Hour).expect("hour");
        assert_eq!(
            hour.as_primitive::<TimestampMicrosecondType>().value(0),
            1_773_583_200_000_000
        );
        let month = derive(ts.as_ref(), PartitionTransform::Month).expect("month");
        assert_eq!(month.as_primitive::<Date32Type>().value(0), 20513);
        let year = derive(ts.as_ref(), PartitionTransform::Year).expect("year");
        assert_eq!(
            year.as_primitive::<deltalake::arrow::datatypes::Int32Type>().value(0),
            2026
        );
    }
}
