//! Scalar text as sent by producers: exact decimals, dates, ISO-8601 timestamps and
//! epoch numbers. Shared by the record path (`trib-ingest`'s coercion) and the column
//! path here, so both read the same digits the same way.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Parses decimal text (`-12.30`, `1e3`, `+5`) as an integer scaled by `10^scale`.
/// `None` if it is not a number; `Err` if it needs more decimal places than `scale`.
pub fn exact_decimal(text: &str, scale: u8) -> Option<Result<i128, &'static str>> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, digits) = match mantissa.as_bytes().first()? {
        b'-' => (true, &mantissa[1..]),
        b'+' => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut all: String = format!("{int}{frac}");
    let shift = i64::from(scale) + i64::from(exp) - frac.len() as i64;
    if shift < 0 {
        let cut = (-shift) as usize;
        let keep = all.len().saturating_sub(cut);
        if all[keep..].bytes().any(|b| b != b'0') {
            return Some(Err("it has more decimal places than the column keeps"));
        }
        all.truncate(keep);
    } else {
        if shift > 38 {
            return Some(Err("too large"));
        }
        all.extend(std::iter::repeat_n('0', shift as usize));
    }
    let trimmed = all.trim_start_matches('0');
    if trimmed.len() > 38 {
        return Some(Err("too many digits"));
    }
    let n: i128 = if trimmed.is_empty() { 0 } else { trimmed.parse().ok()? };
    Some(Ok(if neg { -n } else { n }))
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// ISO-8601 / RFC 3339 text; without an offset the time is taken as UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc).timestamp_micros());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&n).timestamp_micros());
        }
    }
    parse_date(s)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n).timestamp_micros())
}

/// Epoch numbers: seconds, milliseconds, microseconds or nanoseconds by magnitude.
pub fn epoch_micros(text: &str) -> Option<i64> {
    // Whole numbers stay exact through i128; the magnitude is judged on the nearest
    // float, as for fractional numbers.
    let whole = match text.parse::<i64>() {
        // The nearest float of an i64, without a conversion from i128.
        Ok(i) => Some((i128::from(i), i as f64)),
        Err(_) => text.parse::<i128>().ok().map(|i| (i, i as f64)),
    };
    if let Some((i, nearest)) = whole {
        let a = nearest.abs();
        let exact = if a < 1e11 {
            i * 1_000_000
        } else if a < 1e14 {
            i * 1_000
        } else if a < 1e17 {
            i
        } else {
            i / 1_000
        };
        return i64::try_from(exact).ok();
    }
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let a = f.abs();
    let micros = if a < 1e11 {
        f * 1e6
    } else if a < 1e14 {
        f * 1e3
    } else if a < 1e17 {
        f
    } else {
        f / 1e3
    };
    if micros.abs() > 9.2e18 {
        return None;
    }
    Some(micros.round() as i64)
}
