//! Column types of contracts, and their one mapping to Arrow.
//!
//! Written in contracts as `string`, `bool`, `int32`, `int64`, `float`, `double`,
//! `decimal(18,2)`, `date`, `timestamp` (instant, stored in UTC), `timestamp_ntz` (wall
//! clock, no zone), `binary`, `list<T>` and `struct<name: T, ...>`.

use arrow_schema::{DataType as ArrowType, Field, Fields, TimeUnit};
use std::fmt;
use std::sync::Arc;

/// Largest decimal precision (Arrow `Decimal128`).
pub const MAX_DECIMAL_PRECISION: u8 = 38;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    String,
    Bool,
    Int32,
    Int64,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// An instant; stored as microseconds in UTC.
    Timestamp,
    /// A wall-clock time without zone.
    TimestampNtz,
    Binary,
    List(Box<DataType>),
    Struct(Vec<StructField>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StructField {
    pub name: String,
    pub data_type: DataType,
}

/// A type string that does not parse; `offset` is a byte offset into it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TypeError {
    pub message: String,
    pub offset: usize,
    pub hint: String,
}

const TYPE_HINT: &str = "types are string, bool, int32, int64, float, double, decimal(p,s), date, timestamp, timestamp_ntz, binary, list<T>, struct<name: T, ...>";

/// Type names users write, for suggestions.
pub const TYPE_NAMES: &[&str] = &[
    "string",
    "bool",
    "int32",
    "int64",
    "float",
    "double",
    "decimal",
    "date",
    "timestamp",
    "timestamp_ntz",
    "binary",
    "list",
    "struct",
];

impl DataType {
    pub fn parse(text: &str) -> Result<Self, TypeError> {
        let mut p = TypeParser { text, pos: 0 };
        let t = p.parse_type()?;
        p.skip_ws();
        if p.pos < text.len() {
            return Err(p.error(format!("unexpected `{}` after type", &text[p.pos..]), TYPE_HINT));
        }
        Ok(t)
    }

    /// The Arrow type used for this column in tables and query results.
    pub fn to_arrow(&self) -> ArrowType {
        match self {
            Self::String => ArrowType::Utf8,
            Self::Bool => ArrowType::Boolean,
            Self::Int32 => ArrowType::Int32,
            Self::Int64 => ArrowType::Int64,
            Self::Float => ArrowType::Float32,
            Self::Double => ArrowType::Float64,
            Self::Decimal { precision, scale } => ArrowType::Decimal128(*precision, *scale as i8),
            Self::Date => ArrowType::Date32,
            Self::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            Self::TimestampNtz => ArrowType::Timestamp(TimeUnit::Microsecond, None),
            Self::Binary => ArrowType::Binary,
            Self::List(inner) => ArrowType::List(Arc::new(Field::new("element", inner.to_arrow(), true))),
            Self::Struct(fields) => ArrowType::Struct(Fields::from(
                fields
                    .iter()
                    .map(|f| Field::new(&f.name, f.data_type.to_arrow(), true))
                    .collect::<Vec<_>>(),
            )),
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Self::Int32 | Self::Int64 | Self::Float | Self::Double | Self::Decimal { .. }
        )
    }

    pub fn is_temporal(&self) -> bool {
        matches!(self, Self::Date | Self::Timestamp | Self::TimestampNtz)
    }

    pub fn is_nested(&self) -> bool {
        matches!(self, Self::List(_) | Self::Struct(_))
    }

    /// Whether values sort meaningfully (usable for `sequence_by` and ranges).
    pub fn is_orderable(&self) -> bool {
        self.is_numeric() || self.is_temporal() || matches!(self, Self::String)
    }

    /// Whether every value of `self` is representable, unchanged, as `to`: the change
    /// `self → to` does not break readers.
    pub fn widens_to(&self, to: &DataType) -> bool {
        use DataType::*;
        if self == to {
            return true;
        }
        match (self, to) {
            (Int32, Int64) | (Int32, Double) | (Float, Double) => true,
            (Int32, Decimal { precision, scale }) => precision.saturating_sub(*scale) >= 10,
            (Int64, Decimal { precision, scale }) => precision.saturating_sub(*scale) >= 19,
            (
                Decimal {
                    precision: p1,
                    scale: s1,
                },
                Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s2 >= s1 && p2.saturating_sub(*s2) >= p1.saturating_sub(*s1),
            (List(a), List(b)) => a.widens_to(b),
            (Struct(a), Struct(b)) => a.iter().all(|fa| {
                b.iter()
                    .find(|fb| fb.name == fa.name)
                    .is_some_and(|fb| fa.data_type.widens_to(&fb.data_type))
            }),
            _ => false,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String => f.write_str("string"),
            Self::Bool => f.write_str("bool"),
            Self::Int32 => f.write_str("int32"),
            Self::Int64 => f.write_str("int64"),
            Self::Float => f.write_str("float"),
            Self::Double => f.write_str("double"),
            Self::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            Self::Date => f.write_str("date"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::TimestampNtz => f.write_str("timestamp_ntz"),
            Self::Binary => f.write_str("binary"),
            Self::List(inner) => write!(f, "list<{inner}>"),
            Self::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", field.name, field.data_type)?;
                }
                f.write_str(">")
            }
        }
    }
}

struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn error(&self, message: String, hint: &str) -> TypeError {
        TypeError {
            message,
            offset: self.pos,
            hint: hint.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.text[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn ident(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.text[self.pos..].chars().next() {
            if c.is_ascii_alphanumeric() || c == '_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.text[start..self.pos]
    }

    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            let seen = self.text[self.pos..]
                .chars()
                .next()
                .map_or("end of type".to_string(), |c| format!("`{c}`"));
            Err(self.error(format!("expected `{c}`, found {seen}"), TYPE_HINT))
        }
    }

    fn number(&mut self) -> Result<u32, TypeError> {
        self.skip_ws();
        let start = self.pos;
        while self.text[self.pos..].starts_with(|c: char| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.text[start..self.pos].parse().map_err(|_| TypeError {
            message: "expected a number".into(),
            offset: start,
            hint: "write decimals as `decimal(precision,scale)`, e.g. `decimal(18,2)`".into(),
        })
    }

    fn parse_type(&mut self) -> Result<DataType, TypeError> {
        self.skip_ws();
        let start = self.pos;
        let name = self.ident().to_ascii_lowercase();
        let t = match name.as_str() {
            "string" | "str" | "text" | "varchar" => DataType::String,
            "bool" | "boolean" => DataType::Bool,
            "int32" | "int" | "integer" => DataType::Int32,
            "int64" | "long" | "bigint" => DataType::Int64,
            "float" | "float32" | "real" => DataType::Float,
            "double" | "float64" => DataType::Double,
            "date" => DataType::Date,
            "timestamp" | "timestamptz" | "timestamp_tz" => DataType::Timestamp,
            "timestamp_ntz" => DataType::TimestampNtz,
            "binary" | "bytes" => DataType::Binary,
            "decimal" | "numeric" => {
                self.expect('(')?;
                let p_at = self.pos;
                let precision = self.number()?;
                self.expect(',')?;
                let scale = self.number()?;
                self.expect(')')?;
                if precision == 0 || precision > u32::from(MAX_DECIMAL_PRECISION) || scale > precision {
                    return Err(TypeError {
                        message: format!("decimal({precision},{scale}) is out of range"),
                        offset: p_at,
                        hint: format!("precision is 1 to {MAX_DECIMAL_PRECISION} and scale at most the precision"),
                    });
                }
                DataType::Decimal {
                    precision: precision as u8,
                    scale: scale as u8,
                }
            }
            "list" | "array" => {
                self.expect('<')?;
                let inner = self.parse_type()?;
                self.expect('>')?;
                DataType::List(Box::new(inner))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields: Vec<StructField> = Vec::new();
                loop {
                    self.skip_ws();
                    let at = self.pos;
                    let fname = self.ident().to_string();
                    if fname.is_empty() {
                        return Err(self.error(
                            "expected a field name".into(),
                            "write structs as `struct<name: type, ...>`",
                        ));
                    }
                    if fields.iter().any(|f| f.name == fname) {
                        return Err(TypeError {
                            message: format!("field `{fname}` appears twice in struct"),
                            offset: at,
                            hint: "give each struct field a distinct name".into(),
                        });
                    }
                    self.expect(':')?;
                    let data_type = self.parse_type()?;
                    fields.push(StructField { name: fname, data_type });
                    self.skip_ws();
                    if self.text[self.pos..].starts_with(',') {
                        self.pos += 1;
                        continue;
                    }
                    self.expect('>')?;
                    break;
                }
                DataType::Struct(fields)
            }
            "" => {
                self.pos = start;
                return Err(self.error("expected a type name".into(), TYPE_HINT));
            }
            other => {
                self.pos = start;
                let hint = match trib_core::diagnostic::did_you_mean(other, TYPE_NAMES.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? {TYPE_HINT}"),
                    None => TYPE_HINT.to_string(),
                };
                return Err(TypeError {
                    message: format!("unknown type `{other}`"),
                    offset: start,
                    hint,
                });
            }
        };
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_type() {
        for t in [
            "string",
            "bool",
            "int32",
            "int64",
            "float",
            "double",
            "decimal(18,2)",
            "date",
            "timestamp",
            "timestamp_ntz",
            "binary",
            "list<string>",
            "struct<a: int32, b: list<decimal(10,0)>>",
        ] {
            let parsed = DataType::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(parsed.to_string(), t);
        }
        assert_eq!(
            DataType::parse(" Decimal( 9 , 3 ) ").map(|t| t.to_string()),
            Ok("decimal(9,3)".into())
        );
    }

    #[test]
    fn maps_to_arrow() {
        assert_eq!(
            DataType::parse("decimal(18,2)").map(|t| t.to_arrow()),
            Ok(ArrowType::Decimal128(18, 2))
        );
        assert_eq!(
            DataType::Timestamp.to_arrow(),
            ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let ArrowType::Struct(fields) = DataType::parse("struct<a: int64>").expect("t").to_arrow() else {
            panic!("struct")
        };
        assert_eq!(fields[0].data_type(), &ArrowType::Int64);
    }

    #[test]
    fn errors_point_into_the_type() {
        let e = DataType::parse("decimal(18 2)").expect_err("bad");
        assert_eq!(e.offset, 11);
        let e = DataType::parse("strng").expect_err("bad");
        assert!(e.hint.contains("did you mean `string`"), "{}", e.hint);
        assert!(DataType::parse("decimal(40,2)").is_err());
        assert!(DataType::parse("list<int32").is_err());
        assert!(DataType::parse("struct<a: int32, a: int32>").is_err());
        assert!(DataType::parse("int32 extra").is_err());
    }

    #[test]
    fn widening_rules() {
        let t = |s: &str| DataType::parse(s).expect(s);
        assert!(t("int32").widens_to(&t("int64")));
        assert!(!t("int64").widens_to(&t("int32")));
        assert!(t("decimal(10,2)").widens_to(&t("decimal(12,2)")));
        assert!(!t("decimal(10,2)").widens_to(&t("decimal(10,3)")));
        assert!(t("float").widens_to(&t("double")));
        assert!(!t("string").widens_to(&t("int64")));
        assert!(t("struct<a: int32>").widens_to(&t("struct<a: int64, b: string>")));
        assert!(!t("struct<a: int32, b: string>").widens_to(&t("struct<a: int32>")));
    }
}
