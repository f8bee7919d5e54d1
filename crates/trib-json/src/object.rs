//! One line's JSON object, read in place: each member's key and the exact text of its
//! value, without building anything.
//!
//! This is the column path's scanner. It accepts exactly the JSON that `serde_json`
//! accepts for an object, and reports it the same way (`&RawValue` text per member), but
//! stays in one loop over the bytes: NDJSON lines are flat objects of short keys and
//! scalar values, and per-value deserializer calls cost more than the scanning. Nested
//! values and strings with escapes, which are rare in such lines, are handed to
//! `serde_json` to check, so the grammar judged here is only that of plain strings,
//! numbers and literals.

use serde::de::IgnoredAny;

/// Calls `member(key, raw value)` for each member of the object that is the whole of
/// `line`, in order. `false` when `line` is not one JSON object, when a key has an escape
/// (it has no borrowed text), or when `member` returns `false`.
pub fn members<'a>(line: &'a str, mut member: impl FnMut(&'a str, &'a str) -> bool) -> bool {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return skip_ws(b, i + 1) == b.len();
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return false;
        }
        let Some(key_end) = plain_string_end(b, i + 1) else {
            return false;
        };
        let key = &line[i + 1..key_end];
        i = skip_ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(b, i + 1);
        let Some(end) = value_end(line, i) else {
            return false;
        };
        if !member(key, &line[i..end]) {
            return false;
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return skip_ws(b, i + 1) == b.len(),
            _ => return false,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The position of the closing quote of a string that starts at `start` (just after its
/// opening quote) and has neither escapes nor control characters; `None` otherwise.
fn plain_string_end(b: &[u8], start: usize) -> Option<usize> {
    // Keys and values in such lines are short: a plain loop beats a vector search.
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'"' => return Some(i),
            b'\\' | 0..0x20 => return None,
            _ => {}
        }
    }
    None
}

/// Where the JSON value that starts at `i` ends; `None` when it is not one.
fn value_end(line: &str, i: usize) -> Option<usize> {
    let b = line.as_bytes();
    match *b.get(i)? {
        b'"' => match plain_string_end(b, i + 1) {
            Some(end) => Some(end + 1),
            None => checked_end(line, i),
        },
        b'-' | b'0'..=b'9' => number_end(b, i),
        b't' => literal_end(b, i, b"true"),
        b'f' => literal_end(b, i, b"false"),
        b'n' => literal_end(b, i, b"null"),
        b'{' | b'[' => checked_end(line, i),
        _ => None,
    }
}

fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as JSON has it.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b[i] == b'-' {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i += digits(i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

/// The end of a value that `serde_json` checks: a string with escapes, an object or an
/// array.
fn checked_end(line: &str, i: usize) -> Option<usize> {
    let mut values = serde_json::Deserializer::from_str(&line[i..]).into_iter::<IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => Some(i + values.byte_offset()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{Deserializer as _, MapAccess, Visitor};
    use serde_json::value::RawValue;

    /// What `serde_json` makes of a line: its members' keys and raw values, or `None`.
    fn oracle(line: &str) -> Option<Vec<(String, String)>> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<&'de str>()? {
                    out.push((k.to_string(), map.next_value::<&'de RawValue>()?.get().to_string()));
                }
                Ok(out)
            }
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let out = de.deserialize_map(Members).ok()?;
        de.end().ok()?;
        Some(out)
    }

    fn scanned(line: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        members(line, |k, v| {
            out.push((k.to_string(), v.to_string()));
            true
        })
        .then_some(out)
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let lines = [
            r#"{"device_id":"d-0","site":"plant-north","reading_at":1773532800,"temperature_c":19.59,"battery_v":3.03}"#,
            r#" { "a" : 1 , "b" : [1, {"c": "d"}], "e": {"f": null} } "#,
            r#"{}"#,
            r#"{ }"#,
            r#"{"a":"x\"y","b":"\u00e9\n","c":true,"d":false,"e":null}"#,
            r#"{"a":-0.5e+10,"b":0,"c":-0,"d":1E5,"e":12.0e-3}"#,
            r#"{"a":"é ü 漢字"}"#,
            r#"{"a":1,"a":2}"#,
        ];
        for line in lines {
            assert_eq!(scanned(line), oracle(line), "{line}");
            assert!(scanned(line).is_some(), "{line}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let lines = [
            r#"{"a":01}"#,
            r#"{"a":+1}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":nulll}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":"x\q"}"#,
            r#"{"a":"x	y"}"#,
            r#"{"a":[1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"[1]"#,
            r#"{"a":NaN}"#,
            r#"{"a":'x'}"#,
            "",
        ];
        for line in lines {
            assert_eq!(scanned(line), None, "{line}");
            assert_eq!(oracle(line), None, "{line}");
        }
    }

    #[test]
    fn keys_with_escapes_go_elsewhere() {
        assert_eq!(scanned(r#"{"a\u0062":1}"#), None);
        assert!(oracle(r#"{"a\u0062":1}"#).is_none());
    }

    /// Every prefix and every one-byte change of real lines: the scanner never accepts
    /// what `serde_json` refuses, and reads the same members when both accept.
    #[test]
    fn agrees_with_serde_json_on_damaged_lines() {
        let lines = [
            r#"{"device_id":"d-1","site":"plant-north","reading_at":1773532800,"temperature_c":21.02,"humidity_pct":33.09,"battery_v":3.43}"#,
            r#"{"id": "a\"b", "n": [1, 2, {"x": -1.5e3}], "t": true, "u": null, "v": "2026-03-15T14:00:00Z"}"#,
        ];
        let replacements = b"\"\\{}[],:01-+.eE tfnu\t\x01x";
        let mut checked = 0;
        for line in lines {
            let b = line.as_bytes();
            for cut in 0..=b.len() {
                if let Ok(prefix) = std::str::from_utf8(&b[..cut]) {
                    assert_eq!(scanned(prefix), oracle(prefix), "{prefix}");
                    checked += 1;
                }
            }
            for at in 0..b.len() {
                for &r in replacements {
                    let mut m = b.to_vec();
                    m[at] = r;
                    if let Ok(s) = std::str::from_utf8(&m) {
                        let ours = scanned(s);
                        if ours.is_some() {
                            assert_eq!(ours, oracle(s), "{s}");
                        } else {
                            // Only keys with escapes are left to the record path
                            // although serde_json reads them.
                            assert!(oracle(s).is_none() || s.contains('\\'), "{s}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 4000);
    }
}
