//! Timestamps as the existing tool writes them: Python's
//! `datetime.now(timezone.utc).isoformat()`, i.e. `2026-11-21T21:30:24.707346+00:00`.

use jiff::{Timestamp, tz::TimeZone};

use crate::FormatError;

/// Formats like Python's `isoformat()` of an aware UTC datetime (microseconds,
/// omitted when zero; `+00:00`, never `Z`).
pub fn format(ts: Timestamp) -> String {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    let micros = dt.subsec_nanosecond() / 1000;
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// Parses a stored or user-given timestamp. Accepts RFC 3339 with an offset or
/// `Z`; a date and time without an offset, or a bare date, are read as UTC.
pub fn parse(s: &str) -> Result<Timestamp, FormatError> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = t.parse::<jiff::civil::DateTime>()
        && let Ok(z) = dt.to_zoned(TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    if let Ok(d) = t.parse::<jiff::civil::Date>()
        && let Ok(z) = d.to_zoned(TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    Err(FormatError::Parse(format!(
        "'{s}' is not a timestamp; use RFC 3339, e.g. 2026-11-21T21:30:00Z or 2026-11-21"
    )))
}

/// Rounds a timestamp down to whole microseconds, the precision we store.
pub fn truncate_micros(ts: Timestamp) -> Timestamp {
    let ns = ts.as_nanosecond();
    Timestamp::from_nanosecond(ns - ns.rem_euclid(1000)).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_isoformat_round_trip() {
        let s = "2026-11-21T21:30:24.707346+00:00";
        assert_eq!(format(parse(s).unwrap()), s);
        assert_eq!(
            format(parse("2026-11-21T21:30:24Z").unwrap()),
            "2026-11-21T21:30:24+00:00"
        );
        assert_eq!(
            format(parse("2026-11-21").unwrap()),
            "2026-11-21T00:00:00+00:00"
        );
        assert!(parse("yesterday").is_err());
    }
}
