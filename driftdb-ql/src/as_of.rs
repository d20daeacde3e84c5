//! `AS OF` specifiers: `@seq:N`, an ISO-8601 / RFC 3339 time, or `NOW`.

use driftdb_core::AsOf;

use crate::error::Error;

/// Parse an `AS OF` point: `@seq:N`, `NOW` (any case), or an RFC 3339 time such as
/// `2025-01-01T00:00:00Z` (a time with a UTC offset). Surrounding quotes are accepted.
///
/// ```
/// use driftdb_core::AsOf;
/// use driftdb_ql::parse_as_of;
/// assert_eq!(parse_as_of("@seq:100").unwrap(), AsOf::Seq(100));
/// assert_eq!(parse_as_of("now").unwrap(), AsOf::Now);
/// assert_eq!(parse_as_of("\"1970-01-01T00:00:01.5Z\"").unwrap(), AsOf::UnixMs(1500));
/// assert!(parse_as_of("@seq:x").is_err());
/// ```
pub fn parse_as_of(text: &str) -> Result<AsOf, Error> {
    let trimmed = text.trim();
    let lead = text.len() - text.trim_start().len();
    let (inner, quote) = match trimmed.as_bytes().first() {
        Some(q @ (b'"' | b'\'')) if trimmed.len() >= 2 && trimmed.ends_with(*q as char) => {
            (&trimmed[1..trimmed.len() - 1], 1)
        }
        _ => (trimmed, 0),
    };
    let column = lead + quote + 1;
    if inner.eq_ignore_ascii_case("now") {
        return Ok(AsOf::Now);
    }
    if let Some(digits) = inner.strip_prefix("@seq:") {
        return digits.parse::<u64>().map(AsOf::Seq).map_err(|_| Error::Syntax {
            line: 1,
            source_line: text.to_owned(),
            column: column + "@seq:".len(),
            expected: "a sequence number (0 to 18446744073709551615)".into(),
            found: format!("{digits:?}"),
        });
    }
    let time: jiff::Timestamp = inner.parse().map_err(|_| Error::Syntax {
        line: 1,
        source_line: text.to_owned(),
        column,
        expected: "@seq:N, NOW, or an ISO-8601 time with a UTC offset like 2025-01-01T00:00:00Z"
            .into(),
        found: format!("{inner:?}"),
    })?;
    u64::try_from(time.as_millisecond()).map(AsOf::UnixMs).map_err(|_| Error::Syntax {
        line: 1,
        source_line: text.to_owned(),
        column,
        expected: "a time after 1970-01-01T00:00:00Z".into(),
        found: format!("{inner:?}"),
    })
}

/// Format Unix milliseconds as an ISO-8601 UTC time, e.g. `2025-01-01T00:00:00.123Z`.
pub fn format_unix_ms(unix_ms: u64) -> String {
    i64::try_from(unix_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| format!("@ms:{unix_ms}"), |t| format!("{t:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_as_of(" '@seq:0' ").unwrap(), AsOf::Seq(0));
        assert_eq!(parse_as_of("NOW").unwrap(), AsOf::Now);
        assert_eq!(
            parse_as_of("2025-01-01T01:00:00+01:00").unwrap(),
            AsOf::UnixMs(1_735_689_600_000)
        );
        assert!(matches!(parse_as_of("@seq:-1"), Err(Error::Syntax { column: 6, .. })));
        assert!(matches!(parse_as_of("yesterday"), Err(Error::Syntax { column: 1, .. })));
        assert!(parse_as_of("1969-12-31T23:59:59Z").is_err());
        assert!(parse_as_of("\"").is_err());
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_unix_ms(1_735_689_600_123), "2025-01-01T00:00:00.123Z");
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
