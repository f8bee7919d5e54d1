//! What a data file's statistics prove about a filter over its rows.
//!
//! A filter decides a file when the statistics show it true for every row of the file,
//! or true for none. When it decides every file of a snapshot, the scan applies it
//! exactly by the files it reads, and DataFusion needs no filter above the scan: a
//! partition filter costs nothing per row, and neither does a row filter that every
//! row of the table meets. Filters that some file leaves open stay inexact: they leave
//! out files and DataFusion filters the rows.
//!
//! Each part of a filter is judged as the set of values SQL may give it over a file's
//! rows, out of true, false and null. A column compared with a value gives what its
//! range and null count allow; `NOT`, `AND` and `OR` combine the sets as SQL's
//! three-valued logic does, value by value. Whatever else a filter holds (functions,
//! arithmetic, floating point, whose ranges leave NaN out) may be anything. The sets
//! are never smaller than the truth, so a filter judged true everywhere is.

use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::datatypes::Schema;
use deltalake::datafusion::common::stats::Precision;
use deltalake::datafusion::common::{ScalarValue, Statistics};
use deltalake::datafusion::logical_expr::expr::InList;
use deltalake::datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, Operator};
use std::cmp::Ordering;

/// Which of SQL's three truth values a filter may take over a file's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Values(u8);

const TRUE: u8 = 1;
const FALSE: u8 = 2;
const NULL: u8 = 4;

impl Values {
    const ANY: Values = Values(TRUE | FALSE | NULL);

    /// True for every row of the file (and the file may have none).
    pub(crate) fn everywhere(self) -> bool {
        self.0 & !TRUE == 0
    }

    /// True for no row of the file.
    pub(crate) fn nowhere(self) -> bool {
        self.0 & TRUE == 0
    }

    pub(crate) fn decided(self) -> bool {
        self.everywhere() || self.nowhere()
    }

    fn each(self) -> impl Iterator<Item = Option<bool>> {
        [(TRUE, Some(true)), (FALSE, Some(false)), (NULL, None)]
            .into_iter()
            .filter(move |(bit, _)| self.0 & bit != 0)
            .map(|(_, v)| v)
    }

    fn of(values: impl Iterator<Item = Option<bool>>) -> Values {
        Values(values.fold(0, |set, v| {
            set | match v {
                Some(true) => TRUE,
                Some(false) => FALSE,
                None => NULL,
            }
        }))
    }

    fn not(self) -> Values {
        Values::of(self.each().map(|v| v.map(|b| !b)))
    }

    fn combine(self, other: Values, f: fn(Option<bool>, Option<bool>) -> Option<bool>) -> Values {
        Values::of(self.each().flat_map(|a| other.each().map(move |b| f(a, b))))
    }
}

/// SQL's `AND` and `OR` over true, false and null (unknown).
fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// The truth values `filter` may take over the rows of a file with `file`'s
/// statistics, whose columns are those of `schema`.
pub(crate) fn judge(filter: &Expr, schema: &Schema, file: &Statistics) -> Values {
    match filter {
        // What the simplifier may leave of a filter: it holds everywhere or nowhere.
        Expr::Literal(ScalarValue::Boolean(v), _) => Values::of(std::iter::once(*v)),
        Expr::Not(e) => judge(e, schema, file).not(),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => judge(left, schema, file).combine(judge(right, schema, file), and),
            Operator::Or => judge(left, schema, file).combine(judge(right, schema, file), or),
            _ => match (
                column(left, schema, file),
                literal(right),
                column(right, schema, file),
                literal(left),
            ) {
                (Some(c), Some(v), ..) => compare(&c, *op, v),
                (_, _, Some(c), Some(v)) => match flipped(*op) {
                    Some(op) => compare(&c, op, v),
                    None => Values::ANY,
                },
                _ => Values::ANY,
            },
        },
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let (Some(c), Some(low), Some(high)) = (column(expr, schema, file), literal(low), literal(high)) else {
                return Values::ANY;
            };
            let within = compare(&c, Operator::GtEq, low).combine(compare(&c, Operator::LtEq, high), and);
            if *negated { within.not() } else { within }
        }
        Expr::InList(InList { expr, list, negated }) => {
            let Some(c) = column(expr, schema, file) else {
                return Values::ANY;
            };
            let Some(values) = list.iter().map(literal).collect::<Option<Vec<_>>>() else {
                return Values::ANY;
            };
            let found = values
                .into_iter()
                .map(|v| compare(&c, Operator::Eq, v))
                .reduce(|a, b| a.combine(b, or))
                // `x IN ()` is false for every row; the planner never makes one.
                .unwrap_or(Values(FALSE));
            if *negated { found.not() } else { found }
        }
        Expr::IsNull(e) | Expr::IsNotNull(e) => {
            let Some(c) = column(e, schema, file) else {
                return Values::ANY;
            };
            let null = match c.nulls {
                Nulls::None => Values(FALSE),
                Nulls::All => Values(TRUE),
                Nulls::Some => Values(TRUE | FALSE),
            };
            if matches!(filter, Expr::IsNull(_)) {
                null
            } else {
                null.not()
            }
        }
        _ => Values::ANY,
    }
}

enum Nulls {
    /// No row of the file is null.
    None,
    /// Every row is.
    All,
    /// Some may be.
    Some,
}

/// A column's recorded range and nulls in one file.
struct Range<'a> {
    min: Option<&'a ScalarValue>,
    max: Option<&'a ScalarValue>,
    nulls: Nulls,
}

/// `e` as a column of `schema` (or a column cast from text to text), with its range in
/// `file`; `None` for anything else.
fn column<'a>(e: &Expr, schema: &Schema, file: &'a Statistics) -> Option<Range<'a>> {
    let c = match e {
        Expr::Column(c) => c,
        Expr::Cast(Cast { expr, field }) if text(field.data_type()) => match expr.as_ref() {
            Expr::Column(c) if schema.field_with_name(&c.name).is_ok_and(|f| text(f.data_type())) => c,
            _ => return None,
        },
        _ => return None,
    };
    let i = schema.index_of(&c.name).ok()?;
    let stats = file.column_statistics.get(i)?;
    let exact = |p: &'a Precision<ScalarValue>| match p {
        // Floating point ranges leave NaN out, which compares above every number.
        Precision::Exact(v)
            if !v.is_null() && !matches!(v.data_type(), DataType::Float16 | DataType::Float32 | DataType::Float64) =>
        {
            Some(v)
        }
        _ => None,
    };
    let nulls = match (stats.null_count, file.num_rows) {
        (Precision::Exact(0), _) => Nulls::None,
        (Precision::Exact(n), Precision::Exact(rows)) if n == rows => Nulls::All,
        _ => Nulls::Some,
    };
    Some(Range {
        min: exact(&stats.min_value),
        max: exact(&stats.max_value),
        nulls,
    })
}

/// Text, as a partition column of text is read (dictionary-encoded) or cast.
fn text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => true,
        DataType::Dictionary(_, v) => text(v),
        _ => false,
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

/// `op` with its sides swapped: `5 < x` is `x > 5`.
fn flipped(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq | Operator::NotEq => op,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

/// What `column op value` may be over the file's rows.
fn compare(c: &Range<'_>, op: Operator, value: &ScalarValue) -> Values {
    // Only comparisons are null on a null side (`IS DISTINCT FROM` never is).
    if !matches!(
        op,
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
    ) {
        return Values::ANY;
    }
    if value.is_null() {
        return Values(NULL);
    }
    if matches!(c.nulls, Nulls::All) {
        return Values(NULL);
    }
    let nulls = if matches!(c.nulls, Nulls::None) { 0 } else { NULL };
    let cmp = |bound: Option<&ScalarValue>| bound.and_then(|b| order(b, value));
    let (min, max) = (cmp(c.min), cmp(c.max));
    use Ordering::{Equal, Greater, Less};
    // Whether some row may be true, and whether some row may be false.
    let (may_true, may_false) = match op {
        Operator::Eq | Operator::NotEq => {
            let outside = min == Some(Greater) || max == Some(Less);
            let only = min == Some(Equal) && max == Some(Equal);
            let (t, f) = (!outside, !only);
            if op == Operator::Eq { (t, f) } else { (f, t) }
        }
        Operator::Lt => (min != Some(Greater) && min != Some(Equal), max != Some(Less)),
        Operator::LtEq => (min != Some(Greater), max != Some(Less) && max != Some(Equal)),
        Operator::Gt => (max != Some(Less) && max != Some(Equal), min != Some(Greater)),
        Operator::GtEq => (max != Some(Less), min != Some(Greater) && min != Some(Equal)),
        _ => return Values::ANY,
    };
    Values(nulls | if may_true { TRUE } else { 0 } | if may_false { FALSE } else { 0 })
}

/// How a recorded bound compares with a filter's value, when both are of one type.
fn order(bound: &ScalarValue, value: &ScalarValue) -> Option<Ordering> {
    let plain = |v: &ScalarValue| match v {
        ScalarValue::Dictionary(_, inner) => inner.as_ref().clone(),
        other => other.clone(),
    };
    let (b, v) = (plain(bound), plain(value));
    match (b.try_as_str(), v.try_as_str()) {
        (Some(Some(b)), Some(Some(v))) => Some(b.cmp(v)),
        (Some(_), _) | (_, Some(_)) => None,
        _ if b.data_type() == v.data_type() => b.partial_cmp(&v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::datatypes::Field;
    use deltalake::datafusion::common::ColumnStatistics;
    use deltalake::datafusion::prelude::{col, lit};
    use std::ops::Not as _;

    /// A file of `rows` rows whose column `x` of type `t` spans `min..=max` with `nulls`.
    fn file(t: DataType, min: ScalarValue, max: ScalarValue, nulls: usize, rows: usize) -> (Schema, Statistics) {
        let schema = Schema::new(vec![Field::new("x", t, true)]);
        let stats = Statistics {
            num_rows: Precision::Exact(rows),
            total_byte_size: Precision::Absent,
            column_statistics: vec![
                ColumnStatistics::new_unknown()
                    .with_min_value(Precision::Exact(min))
                    .with_max_value(Precision::Exact(max))
                    .with_null_count(Precision::Exact(nulls)),
            ],
        };
        (schema, stats)
    }

    fn binary(left: Expr, op: Operator, right: Expr) -> Expr {
        Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
    }

    fn ints(min: i64, max: i64, nulls: usize) -> (Schema, Statistics) {
        file(
            DataType::Int64,
            ScalarValue::from(min),
            ScalarValue::from(max),
            nulls,
            10,
        )
    }

    #[derive(Debug, PartialEq)]
    enum Said {
        Everywhere,
        Nowhere,
        Open,
    }

    fn said(e: &Expr, (schema, stats): &(Schema, Statistics)) -> Said {
        let v = judge(e, schema, stats);
        match (v.everywhere(), v.nowhere()) {
            (true, false) => Said::Everywhere,
            (false, true) => Said::Nowhere,
            (false, false) => Said::Open,
            (true, true) => panic!("{e}: both everywhere and nowhere"),
        }
    }

    #[test]
    fn comparisons_by_the_range() {
        let f = ints(1, 5, 0);
        for (e, want) in [
            (col("x").gt_eq(lit(1i64)), Said::Everywhere),
            (col("x").gt(lit(1i64)), Said::Open),
            (col("x").gt(lit(0i64)), Said::Everywhere),
            (col("x").lt(lit(1i64)), Said::Nowhere),
            (col("x").lt_eq(lit(5i64)), Said::Everywhere),
            (col("x").lt(lit(5i64)), Said::Open),
            (col("x").gt(lit(5i64)), Said::Nowhere),
            (col("x").eq(lit(3i64)), Said::Open),
            (col("x").eq(lit(9i64)), Said::Nowhere),
            (col("x").not_eq(lit(9i64)), Said::Everywhere),
            (lit(0i64).lt(col("x")), Said::Everywhere),
            (lit(5i64).lt(col("x")), Said::Nowhere),
            (col("x").between(lit(1i64), lit(5i64)), Said::Everywhere),
            (col("x").not_between(lit(1i64), lit(5i64)), Said::Nowhere),
            (col("x").in_list(vec![lit(7i64), lit(8i64)], false), Said::Nowhere),
            (col("x").in_list(vec![lit(7i64), lit(8i64)], true), Said::Everywhere),
            (col("x").gt(lit(3i64)).or(col("x").lt_eq(lit(3i64))), Said::Open),
            (col("x").gt(lit(0i64)).and(col("x").lt(lit(9i64))), Said::Everywhere),
            (col("x").gt(lit(0i64)).and(col("x").gt(lit(3i64))), Said::Open),
            (col("x").gt(lit(0i64)).not(), Said::Nowhere),
            (col("x").is_not_null(), Said::Everywhere),
            (col("x").is_null(), Said::Nowhere),
            // Another type, a NULL, a function: no proof either way, or NULL everywhere.
            (col("x").gt(lit(0i32)), Said::Open),
            (col("x").gt(lit(ScalarValue::Int64(None))), Said::Nowhere),
            (col("x").gt(lit(ScalarValue::Int64(None))).not(), Said::Nowhere),
            ((col("x") + lit(1i64)).gt(lit(0i64)), Said::Open),
            (col("y").gt(lit(0i64)), Said::Open),
            (lit(true), Said::Everywhere),
            (lit(false), Said::Nowhere),
            (lit(ScalarValue::Boolean(None)), Said::Nowhere),
            (lit(false).not(), Said::Everywhere),
            (lit(1i64), Said::Open),
            // Not a comparison: `IS DISTINCT FROM NULL` is true for every value.
            (
                binary(col("x"), Operator::IsDistinctFrom, lit(ScalarValue::Int64(None))),
                Said::Open,
            ),
            (binary(col("x"), Operator::IsNotDistinctFrom, lit(3i64)), Said::Open),
        ] {
            assert_eq!(said(&e, &f), want, "{e}");
        }
        // A single value.
        let one = ints(3, 3, 0);
        assert_eq!(said(&col("x").eq(lit(3i64)), &one), Said::Everywhere);
        assert_eq!(
            said(&col("x").in_list(vec![lit(3i64), lit(4i64)], false), &one),
            Said::Everywhere
        );
        assert_eq!(said(&col("x").not_eq(lit(3i64)), &one), Said::Nowhere);
    }

    #[test]
    fn nulls_are_neither_true_nor_false() {
        // Some nulls: a comparison true for every value is not true for every row, and
        // its negation is true for none.
        let some = ints(1, 5, 2);
        assert_eq!(said(&col("x").gt_eq(lit(0i64)), &some), Said::Open);
        assert_eq!(said(&col("x").gt_eq(lit(0i64)).not(), &some), Said::Nowhere);
        assert_eq!(said(&col("x").lt(lit(0i64)), &some), Said::Nowhere);
        assert_eq!(said(&col("x").lt(lit(0i64)).not(), &some), Said::Open);
        assert_eq!(said(&col("x").is_null(), &some), Said::Open);
        // Parts are judged apart: that the nulls are the rows `IS NULL` holds for is not
        // seen, so this stays open (unproven, never wrongly proven).
        assert_eq!(
            said(&col("x").gt_eq(lit(0i64)).or(col("x").is_null()), &some),
            Said::Open
        );
        // Every row null: comparisons are null, and so are their negations.
        let all = ints(1, 5, 10);
        assert_eq!(said(&col("x").gt_eq(lit(0i64)), &all), Said::Nowhere);
        assert_eq!(said(&col("x").gt_eq(lit(0i64)).not(), &all), Said::Nowhere);
        assert_eq!(said(&col("x").is_null(), &all), Said::Everywhere);
        assert_eq!(said(&col("x").not_eq(lit(3i64)), &all), Said::Nowhere);
        assert_eq!(
            said(
                &binary(col("x"), Operator::IsNotDistinctFrom, lit(ScalarValue::Int64(None))),
                &all
            ),
            Said::Open
        );
    }

    #[test]
    fn text_partitions_floats_and_unknown_counts() {
        let fr = ScalarValue::Dictionary(Box::new(DataType::UInt16), Box::new(ScalarValue::from("FR")));
        let text = file(
            DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8)),
            fr.clone(),
            fr,
            0,
            4,
        );
        assert_eq!(said(&col("x").eq(lit("FR")), &text), Said::Everywhere);
        assert_eq!(said(&col("x").eq(lit("DE")), &text), Said::Nowhere);
        assert_eq!(said(&col("x").gt(lit("E")), &text), Said::Everywhere);
        // Ranges of floating point leave NaN out.
        let floats = file(DataType::Float64, ScalarValue::from(1.0), ScalarValue::from(5.0), 0, 10);
        assert_eq!(said(&col("x").gt_eq(lit(0.0)), &floats), Said::Open);
        assert_eq!(said(&col("x").lt(lit(0.0)), &floats), Said::Open);
        // No null count: a null may be anywhere.
        let (schema, mut stats) = ints(1, 5, 0);
        stats.column_statistics[0].null_count = Precision::Absent;
        assert_eq!(said(&col("x").gt_eq(lit(0i64)), &(schema, stats)), Said::Open);
    }
}
