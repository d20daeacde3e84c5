//! Retention policies: how long a table keeps its full history.
//!
//! A table's policy is [`TableSchema::retention_ms`](crate::TableSchema::retention_ms), set by
//! `ALTER TABLE t SET RETENTION '90 days'` (a schema change event, so the policy itself is in
//! history). Setting a policy changes no data. This module holds the duration syntax shared
//! by DriftQL, the CLI and error messages: [`parse_retention`] and [`format_retention`].
//!
//! Syntax: a whole number, optional spaces, then a unit: `second(s)`, `minute(s)`, `hour(s)`,
//! `day(s)` or `week(s)`, case-insensitive. The number must be at least 1 and the duration
//! must fit in a `u64` of milliseconds.

use crate::error::{Error, Result};

const UNITS: [(&str, u64); 5] = [
    ("week", 7 * 24 * 3_600_000),
    ("day", 24 * 3_600_000),
    ("hour", 3_600_000),
    ("minute", 60_000),
    ("second", 1000),
];

/// The retention window `text` names (`"90 days"`, `"1 week"`, `"36hours"`), in milliseconds.
///
/// Errors: [`Error::InvalidInput`] naming what is wrong (no number, zero, an unknown unit, too
/// long).
pub fn parse_retention(text: &str) -> Result<u64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad = |why: &str| {
        Error::invalid(format!(
            "retention {text:?} {why}: write a whole number and a unit (seconds, minutes, \
             hours, days or weeks), like '90 days'"
        ))
    };
    if number.is_empty() {
        return Err(bad("does not start with a number"));
    }
    let n: u64 = number.parse().map_err(|_| bad("has a number too large"))?;
    if n == 0 {
        return Err(bad("is zero"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let singular = unit.strip_suffix('s').unwrap_or(&unit);
    let Some((_, ms)) = UNITS.iter().find(|(name, _)| *name == singular) else {
        return Err(bad("has no known unit"));
    };
    n.checked_mul(*ms).ok_or_else(|| bad("is too long"))
}

/// The canonical text of a retention window: the largest unit that divides it exactly
/// (`7776000000` -> `"90 days"`, `604800000` -> `"1 week"`). Windows that are not whole
/// seconds (only possible through the API) are given in seconds with a fraction.
pub fn format_retention(ms: u64) -> String {
    for (name, unit) in UNITS {
        if ms >= unit && ms.is_multiple_of(unit) {
            let n = ms / unit;
            let plural = if n == 1 { "" } else { "s" };
            return format!("{n} {name}{plural}");
        }
    }
    format!("{} seconds", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_singular_and_plural() {
        assert_eq!(parse_retention("90 days").unwrap(), 90 * 86_400_000);
        assert_eq!(parse_retention("1 day").unwrap(), 86_400_000);
        assert_eq!(parse_retention("1 seconds").unwrap(), 1000);
        assert_eq!(parse_retention("2 second").unwrap(), 2000);
        assert_eq!(parse_retention("5 MINUTES").unwrap(), 300_000);
        assert_eq!(parse_retention("36hours").unwrap(), 36 * 3_600_000);
        assert_eq!(parse_retention("  3 Weeks ").unwrap(), 21 * 86_400_000);
    }

    #[test]
    fn refuses_bad_durations() {
        for bad in ["", "days", "0 days", "-1 days", "1.5 days", "10", "10 fortnights", "1 d"] {
            let err = parse_retention(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err:?}");
        }
        let huge = format!("{} weeks", u64::MAX / 1000);
        assert!(parse_retention(&huge).unwrap_err().to_string().contains("too long"));
        assert!(parse_retention("99999999999999999999999 days").is_err());
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        assert_eq!(format_retention(90 * 86_400_000), "90 days");
        assert_eq!(format_retention(604_800_000), "1 week");
        assert_eq!(format_retention(1000), "1 second");
        assert_eq!(format_retention(90_000), "90 seconds");
        assert_eq!(format_retention(1500), "1.5 seconds");
        for text in ["90 days", "1 week", "12 hours", "7 minutes", "1 second"] {
            assert_eq!(format_retention(parse_retention(text).unwrap()), text);
        }
    }
}
