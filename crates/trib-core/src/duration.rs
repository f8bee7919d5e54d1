//! Human durations as written in contracts and settings: `30s`, `5m`, `2h`, `7d`, `2w`, `7y`.

use std::fmt;

/// A non-negative duration with second resolution, kept in the unit the user wrote so
/// that it prints back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    amount: u64,
    unit: DurationUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Years,
}

impl DurationUnit {
    fn seconds(self) -> u64 {
        match self {
            Self::Seconds => 1,
            Self::Minutes => 60,
            Self::Hours => 3_600,
            Self::Days => 86_400,
            Self::Weeks => 7 * 86_400,
            Self::Years => 365 * 86_400,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Minutes => "m",
            Self::Hours => "h",
            Self::Days => "d",
            Self::Weeks => "w",
            Self::Years => "y",
        }
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration `{0}` has no number")]
    NoNumber(String),
    #[error("duration `{text}` has unknown unit `{unit}`")]
    UnknownUnit { text: String, unit: String },
    #[error("duration `{0}` is too large")]
    Overflow(String),
}

impl DurationError {
    pub const HINT: &'static str =
        "write a whole number followed by a unit: s, m, h, d, w or y (for example `5m`, `7d`, `7y`)";
}

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            amount: secs,
            unit: DurationUnit::Seconds,
        }
    }

    pub fn as_secs(&self) -> u64 {
        self.amount.saturating_mul(self.unit.seconds())
    }

    pub fn as_millis(&self) -> u64 {
        self.as_secs().saturating_mul(1_000)
    }

    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(DurationError::Empty);
        }
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits_end == 0 {
            return Err(DurationError::NoNumber(text.to_string()));
        }
        let amount: u64 = t[..digits_end]
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_string()))?;
        let unit = match t[digits_end..].trim() {
            "s" | "sec" | "secs" | "second" | "seconds" => DurationUnit::Seconds,
            "m" | "min" | "mins" | "minute" | "minutes" => DurationUnit::Minutes,
            "h" | "hour" | "hours" => DurationUnit::Hours,
            "d" | "day" | "days" => DurationUnit::Days,
            "w" | "week" | "weeks" => DurationUnit::Weeks,
            "y" | "year" | "years" => DurationUnit::Years,
            "" => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_string(),
                    unit: String::new(),
                });
            }
            other => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_string(),
                    unit: other.to_string(),
                });
            }
        };
        if amount.checked_mul(unit.seconds()).is_none() {
            return Err(DurationError::Overflow(text.to_string()));
        }
        Ok(Self { amount, unit })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl PartialOrd for Duration {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Duration {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_secs().cmp(&other.as_secs())
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse(&text).map_err(|e| serde::de::Error::custom(format!("{e}; hint: {}", DurationError::HINT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_prints_back() {
        for (text, secs) in [
            ("30s", 30),
            ("5m", 300),
            ("2h", 7200),
            ("7d", 604_800),
            ("7y", 220_752_000),
        ] {
            let d = Duration::parse(text).expect(text);
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(Duration::parse("5 minutes").map(|d| d.as_secs()), Ok(300));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        assert!(matches!(Duration::parse("m5"), Err(DurationError::NoNumber(_))));
        assert!(matches!(Duration::parse("5"), Err(DurationError::UnknownUnit { .. })));
        assert!(matches!(
            Duration::parse("5 fortnights"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            Duration::parse("99999999999999999999y"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            Duration::parse("9999999999999999y"),
            Err(DurationError::Overflow(_))
        ));
        assert!(Duration::parse("5m").expect("5m") < Duration::parse("1h").expect("1h"));
    }
}

/// A span of seconds as people say it: its two largest units (`5d`, `2h 30m`,
/// `251d 9h`, `45s`).
pub fn human(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in UNITS {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // Units after the first are adjacent: `1d 0h` reads worse than `1d`.
            parts.push(String::new());
        }
        if parts.len() == 2 {
            break;
        }
    }
    let parts: Vec<String> = parts
        .into_iter()
        .filter(|p| !p.is_empty() && !p.starts_with('0'))
        .collect();
    if parts.is_empty() { "0s".into() } else { parts.join(" ") }
}

#[cfg(test)]
mod human_tests {
    #[test]
    fn two_largest_units() {
        assert_eq!(super::human(432_000), "5d");
        assert_eq!(super::human(21_721_340), "251d 9h");
        assert_eq!(super::human(9_000), "2h 30m");
        assert_eq!(super::human(86_460), "1d");
        assert_eq!(super::human(45), "45s");
        assert_eq!(super::human(0), "0s");
    }
}
