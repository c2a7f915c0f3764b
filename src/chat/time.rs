//! chatd's times: `created_at` as upstream shows it (UTC, microseconds, `+00:00`) and the
//! `from_date` query parameter, stored and compared as microseconds since the epoch.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::api::error::ApiError;

/// Python's `isoformat()` of an aware UTC datetime: what upstream's `created_at` looks like.
const CREATED_AT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00");

/// A date and time without an offset, seconds and fraction optional.
const NAIVE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute][optional [:[second][optional [.[subsecond]]]]]");

pub fn now_us() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

pub fn created_at(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(CREATED_AT)
        .unwrap_or_default()
}

/// `from_date`: RFC 3339, or a date and time without offset taken as UTC (upstream's
/// parser accepts both). A `+` of an offset sent unencoded reaches us as a space, and
/// a space may separate date and time: both are read as meant.
pub fn parse_from_date(raw: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::invalid_field("from_date", "Not a valid datetime.");
    let mut text = raw.trim().to_string();
    if text.as_bytes().get(10) == Some(&b' ') {
        text.replace_range(10..11, "T");
    }
    let text = text.replace(' ', "+");
    let at = match OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => at,
        Err(_) => PrimitiveDateTime::parse(&text, NAIVE)
            .map_err(|_| invalid())?
            .assume_utc(),
    };
    i64::try_from(at.unix_timestamp_nanos() / 1000).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_is_upstream_isoformat() {
        assert_eq!(created_at(1_560_333_600_123_456), "2019-06-12T10:00:00.123456+00:00");
    }

    #[test]
    fn from_date_forms() {
        let at = 1_560_333_600_000_000;
        for text in [
            "2019-06-12T10:00:00.000+00:00",
            "2019-06-12T10:00:00.000 00:00",
            "2019-06-12T12:00:00+02:00",
            "2019-06-12T10:00:00Z",
            "2019-06-12T10:00:00",
            "2019-06-12 10:00:00.000000",
            "2019-06-12T10:00",
        ] {
            assert_eq!(parse_from_date(text).expect(text), at, "{text}");
        }
        for bad in ["", "yesterday", "2019-13-12T10:00:00", "2019-06-12"] {
            assert!(parse_from_date(bad).is_err(), "{bad}");
        }
    }
}
