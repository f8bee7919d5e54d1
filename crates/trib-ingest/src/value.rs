//! One JSON or CSV value → the canonical JSON form Arrow's JSON decoder reads exactly
//! (decimals as exact text, times as integer microseconds), or why it does not fit.

use base64::Engine as _;
use serde_json::{Map, Number, Value};
use trib_json::text::{epoch_micros, exact_decimal, parse_date, parse_timestamp};
use trib_spec::DataType;

/// Why a value does not fit its column.
#[derive(Debug, Clone, PartialEq)]
pub struct Misfit {
    pub out_of_range: bool,
    pub message: String,
}

fn mismatch(expected: &DataType, v: &Value) -> Misfit {
    Misfit {
        out_of_range: false,
        message: format!("expected {expected}, found {} {}", crate::decode::kind(v), preview(v)),
    }
}

fn out_of_range(expected: &DataType, v: &Value, why: &str) -> Misfit {
    Misfit {
        out_of_range: true,
        message: format!("{} does not fit {expected}: {why}", preview(v)),
    }
}

/// A short rendering of a value for messages.
pub fn preview(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Converts `v` to the canonical form of `ty`. `text` is true for CSV cells, whose
/// every value arrives as a string.
pub fn coerce(v: &Value, ty: &DataType, text: bool) -> Result<Value, Misfit> {
    match ty {
        DataType::String => match v {
            Value::String(_) => Ok(v.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(mismatch(ty, v)),
        },
        DataType::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if text || matches!(s.as_str(), "true" | "false") => {
                match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "t" | "1" | "yes" => Ok(Value::Bool(true)),
                    "false" | "f" | "0" | "no" => Ok(Value::Bool(false)),
                    _ => Err(mismatch(ty, v)),
                }
            }
            _ => Err(mismatch(ty, v)),
        },
        DataType::Int32 | DataType::Int64 => {
            let text_value = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) if text => s.trim().to_string(),
                _ => return Err(mismatch(ty, v)),
            };
            let n: i128 = match text_value.parse::<i128>() {
                Ok(n) => n,
                // 3.0 is an integer; 3.5 is not.
                Err(_) => match exact_decimal(&text_value, 0) {
                    Some(Ok(digits)) => digits,
                    Some(Err(_)) => return Err(out_of_range(ty, v, "it has a fractional part")),
                    None => return Err(mismatch(ty, v)),
                },
            };
            let (lo, hi) = if *ty == DataType::Int32 {
                (i32::MIN as i128, i32::MAX as i128)
            } else {
                (i64::MIN as i128, i64::MAX as i128)
            };
            if n < lo || n > hi {
                return Err(out_of_range(ty, v, "too large"));
            }
            Ok(Value::Number(Number::from(n as i64)))
        }
        DataType::Float | DataType::Double => {
            let f = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) if text => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match f {
                Some(f) if f.is_finite() => {
                    if *ty == DataType::Float && f.abs() > f64::from(f32::MAX) {
                        return Err(out_of_range(ty, v, "too large for a 32-bit float"));
                    }
                    Number::from_f64(f).map(Value::Number).ok_or_else(|| mismatch(ty, v))
                }
                Some(_) => Err(out_of_range(ty, v, "not a finite number")),
                None => Err(mismatch(ty, v)),
            }
        }
        DataType::Decimal { precision, scale } => {
            let text_value = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => return Err(mismatch(ty, v)),
            };
            match exact_decimal(&text_value, *scale) {
                None => Err(mismatch(ty, v)),
                Some(Err(why)) => Err(out_of_range(ty, v, why)),
                Some(Ok(unscaled)) => {
                    if unscaled.unsigned_abs() >= 10u128.pow(u32::from(*precision)) {
                        return Err(out_of_range(ty, v, "too many digits"));
                    }
                    Ok(Value::String(render_decimal(unscaled, *scale)))
                }
            }
        }
        DataType::Date => {
            let d = match v {
                Value::String(s) => parse_date(s.trim()),
                _ => None,
            };
            d.map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| mismatch(ty, v))
        }
        DataType::Timestamp | DataType::TimestampNtz => {
            let micros = match v {
                Value::Number(n) => epoch_micros(&n.to_string()),
                Value::String(s) => {
                    let s = s.trim();
                    parse_timestamp(s).or_else(|| {
                        if s.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '.') {
                            epoch_micros(s)
                        } else {
                            None
                        }
                    })
                }
                _ => None,
            };
            micros
                .map(|m| Value::Number(Number::from(m)))
                .ok_or_else(|| mismatch(ty, v))
        }
        DataType::Binary => match v {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map(|bytes| Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect()))
                .map_err(|_| Misfit {
                    out_of_range: false,
                    message: format!("expected base64 text for binary, found {}", preview(v)),
                }),
            _ => Err(mismatch(ty, v)),
        },
        DataType::List(inner) => match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        out.push(Value::Null);
                        continue;
                    }
                    out.push(coerce(item, inner, false).map_err(|m| Misfit {
                        message: format!("item {i}: {}", m.message),
                        ..m
                    })?);
                }
                Ok(Value::Array(out))
            }
            _ => Err(mismatch(ty, v)),
        },
        DataType::Struct(fields) => match v {
            Value::Object(obj) => {
                let mut out = Map::new();
                for f in fields {
                    match obj.get(&f.name) {
                        None | Some(Value::Null) => {
                            out.insert(f.name.clone(), Value::Null);
                        }
                        Some(x) => {
                            let c = coerce(x, &f.data_type, false).map_err(|m| Misfit {
                                message: format!("field `{}`: {}", f.name, m.message),
                                ..m
                            })?;
                            out.insert(f.name.clone(), c);
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            _ => Err(mismatch(ty, v)),
        },
    }
}

fn render_decimal(unscaled: i128, scale: u8) -> String {
    let sign = if unscaled < 0 { "-" } else { "" };
    let digits = unscaled.unsigned_abs().to_string();
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let s = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = s + 1);
    let (i, f) = padded.split_at(padded.len() - s);
    format!("{sign}{i}.{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DataType {
        DataType::parse(s).expect(s)
    }

    fn num(s: &str) -> Value {
        serde_json::from_str(s).expect("number")
    }

    #[test]
    fn decimals_are_exact() {
        let d = t("decimal(12,2)");
        assert_eq!(coerce(&num("19.99"), &d, false), Ok(json!("19.99")));
        assert_eq!(coerce(&num("19.9"), &d, false), Ok(json!("19.90")));
        assert_eq!(coerce(&num("1e3"), &d, false), Ok(json!("1000.00")));
        assert_eq!(coerce(&json!("-0.5"), &d, false), Ok(json!("-0.50")));
        assert_eq!(coerce(&num("0.100"), &d, false), Ok(json!("0.10")));
        assert!(coerce(&num("0.125"), &d, false).is_err_and(|m| m.out_of_range));
        assert!(coerce(&num("12345678901.00"), &d, false).is_err_and(|m| m.out_of_range));
        assert!(coerce(&json!("abc"), &d, false).is_err_and(|m| !m.out_of_range));
        // A number that f64 cannot hold exactly stays exact.
        assert_eq!(
            coerce(&num("1234567890.12"), &t("decimal(38,2)"), false),
            Ok(json!("1234567890.12"))
        );
        assert_eq!(
            coerce(&num("12345678901234567.89"), &t("decimal(38,2)"), false),
            Ok(json!("12345678901234567.89"))
        );
    }

    #[test]
    fn integers_and_floats() {
        assert_eq!(coerce(&num("42"), &t("int32"), false), Ok(json!(42)));
        assert_eq!(coerce(&num("3.0"), &t("int64"), false), Ok(json!(3)));
        assert!(coerce(&num("3.5"), &t("int64"), false).is_err());
        assert!(coerce(&num("3000000000"), &t("int32"), false).is_err_and(|m| m.out_of_range));
        assert!(
            coerce(&json!("42"), &t("int32"), false).is_err(),
            "JSON strings are not numbers"
        );
        assert_eq!(coerce(&json!("42"), &t("int32"), true), Ok(json!(42)), "CSV cells are");
        assert_eq!(
            coerce(&num("1.5"), &t("double"), false).map(|v| v.as_f64()),
            Ok(Some(1.5))
        );
    }

    #[test]
    fn timestamps_from_iso_and_epoch() {
        let ts = t("timestamp");
        let expected = json!(1_700_000_000_000_000i64);
        for v in [
            json!("2023-11-14T22:13:20Z"),
            json!("2023-11-14T23:13:20+01:00"),
            json!("2023-11-14 22:13:20"),
            num("1700000000"),
            num("1700000000000"),
            num("1700000000000000"),
            json!("1700000000"),
        ] {
            assert_eq!(coerce(&v, &ts, false), Ok(expected.clone()), "{v}");
        }
        assert_eq!(
            coerce(&json!("2023-11-14T22:13:20.123456Z"), &ts, false),
            Ok(json!(1_700_000_000_123_456i64))
        );
        assert!(coerce(&json!("yesterday"), &ts, false).is_err());
        assert_eq!(coerce(&json!("2024-02-29"), &t("date"), false), Ok(json!("2024-02-29")));
        assert!(coerce(&json!("2023-02-29"), &t("date"), false).is_err());
    }

    #[test]
    fn nested_values() {
        let ty = t("list<struct<sku: string, qty: int32>>");
        let v = json!([{ "sku": "a", "qty": 2 }, null, { "sku": "b" }]);
        assert_eq!(
            coerce(&v, &ty, false),
            Ok(json!([{ "sku": "a", "qty": 2 }, null, { "sku": "b", "qty": null }]))
        );
        let bad = coerce(&json!([{ "sku": "a", "qty": "x" }]), &ty, false).expect_err("bad");
        assert!(bad.message.starts_with("item 0: field `qty`"), "{}", bad.message);
    }
}
