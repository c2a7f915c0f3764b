//! CEL event times: one UTC instant in microseconds, whatever the source wrote.
//!
//! Sources disagree on the format: cel_custom writes epoch seconds with six decimals, its JSON
//! writer a float, cel_manager and cel_sqlite3_custom a `YYYY-MM-DD HH:MM:SS` date, and a
//! PostgreSQL dump adds fractions of 1 to 6 digits and an offset (`-04`, `+05:30`). An `i64` of
//! microseconds sorts, compares and stores (SQLite INTEGER) for free, and holds all of them.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime(i64);

/// Why an event time was refused. The text quotes the input so that a message naming a file and
/// line is enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad event time `{input}`: {reason} (expected epoch seconds like 1795874894.647362 or \
     `YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH|+HH:MM]`)"
)]
pub struct TimeError {
    pub input: String,
    pub reason: &'static str,
}

impl EventTime {
    pub const fn from_micros(micros: i64) -> Self {
        EventTime(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// From a float of epoch seconds (cel_custom's JSON writer, a REAL column). Rounded to the
    /// microsecond: the float carries ~0.2 µs of noise at today's epochs, less than half a µs, so
    /// six written decimals come back exactly.
    pub fn from_epoch_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        let micros = (secs * 1e6).round();
        if micros.abs() > 9.0e15 {
            return None;
        }
        Some(EventTime(micros as i64))
    }

    /// The instant as a `time` value (for formatting); `None` only past year ±9999.
    pub fn to_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000).ok()
    }

    /// Parses every form a CEL source writes (see the module doc). A date without an offset is
    /// taken as UTC: the recording Asterisk runs in UTC, and a local date cannot be placed
    /// without knowing the writer's zone.
    pub fn parse(input: &str) -> Result<Self, TimeError> {
        let text = input.trim();
        let fail = |reason| TimeError {
            input: input.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return parse_epoch(text).ok_or_else(|| fail("epoch seconds need 1 to 6 decimals"));
        }
        parse_date(text).map_err(fail)
    }
}

fn parse_epoch(text: &str) -> Option<EventTime> {
    let (secs, frac) = match text.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (text, None),
    };
    if secs.is_empty() || secs.len() > 12 {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let micros = match frac {
        None => 0,
        Some(f) => fraction_micros(f)?,
    };
    Some(EventTime(secs * 1_000_000 + micros))
}

/// `1`..`6` digits after the point, as microseconds.
fn fraction_micros(frac: &str) -> Option<i64> {
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = frac.parse().ok()?;
    Some(value * 10_i64.pow(6 - frac.len() as u32))
}

fn digits(text: &str, at: usize, len: usize) -> Option<u32> {
    let part = text.get(at..at + len)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn parse_date(text: &str) -> Result<EventTime, &'static str> {
    const SHAPE: &str = "not a date of the form YYYY-MM-DD HH:MM:SS";
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(SHAPE);
    }
    let year = digits(text, 0, 4).ok_or(SHAPE)?;
    let month = digits(text, 5, 2).ok_or(SHAPE)?;
    let day = digits(text, 8, 2).ok_or(SHAPE)?;
    let hour = digits(text, 11, 2).ok_or(SHAPE)?;
    let minute = digits(text, 14, 2).ok_or(SHAPE)?;
    let second = digits(text, 17, 2).ok_or(SHAPE)?;
    let mut rest = &text[19..];
    let mut micros = 0;
    if let Some(after) = rest.strip_prefix('.') {
        let end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
        micros = fraction_micros(&after[..end]).ok_or("the fraction of a second needs 1 to 6 digits")?;
        rest = &after[end..];
    }
    let offset = parse_offset(rest.trim_start())?;
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or("no such month")?;
    let date = Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| "no such day")?;
    let time = Time::from_hms_micro(hour as u8, minute as u8, second as u8, micros as u32)
        .map_err(|_| "no such time of day")?;
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    let nanos = at.unix_timestamp_nanos();
    Ok(EventTime((nanos / 1000) as i64))
}

/// `""` (naive: UTC), `Z`, `+HH`, `-HH`, `+HH:MM`, `+HHMM`.
fn parse_offset(text: &str) -> Result<UtcOffset, &'static str> {
    const BAD: &str = "the offset must be Z, +HH, +HH:MM or nothing";
    if text.is_empty() || text == "Z" || text == "z" {
        return Ok(UtcOffset::UTC);
    }
    let sign: i8 = match text.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(BAD),
    };
    let body = &text[1..];
    let (h, m) = match body.len() {
        2 => (digits(body, 0, 2), Some(0)),
        4 => (digits(body, 0, 2), digits(body, 2, 2)),
        5 if body.as_bytes()[2] == b':' => (digits(body, 0, 2), digits(body, 3, 2)),
        _ => return Err(BAD),
    };
    let (h, m) = (h.ok_or(BAD)?, m.ok_or(BAD)?);
    if h > 23 || m > 59 {
        return Err(BAD);
    }
    UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).map_err(|_| BAD)
}

impl fmt::Display for EventTime {
    /// RFC 3339 in UTC with microseconds (`2026-11-28T14:08:14.647362Z`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(t) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond()
            ),
            None => write!(f, "@{}us", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        EventTime::parse(s).unwrap().micros()
    }

    const T: i64 = 1_795_874_894_647_362;

    #[test]
    fn epoch_seconds_with_1_to_6_decimals() {
        assert_eq!(micros("1795874894.647362"), T);
        assert_eq!(micros("1795874894.6"), 1_795_874_894_600_000);
        assert_eq!(micros("1795874894"), 1_795_874_894_000_000);
        assert_eq!(micros(" 1795874894.64736 "), 1_795_874_894_647_360);
        for bad in ["1795874894.", "1795874894.6473621", ".5", "1.2.3"] {
            assert!(EventTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn float_epochs_round_to_the_microsecond() {
        assert_eq!(EventTime::from_epoch_f64(1795874894.647362).unwrap().micros(), T);
        assert_eq!(
            EventTime::from_epoch_f64(1795874894.000001).unwrap().micros(),
            1_795_874_894_000_001
        );
        assert!(EventTime::from_epoch_f64(f64::NAN).is_none());
        assert!(EventTime::from_epoch_f64(1e300).is_none());
    }

    #[test]
    fn dates_with_and_without_offsets() {
        // 2026-11-28 14:08:14 UTC is 1795874894.
        assert_eq!(micros("2026-11-28 14:08:14.647362"), T);
        assert_eq!(micros("2026-11-28 14:08:14.647362+00"), T);
        assert_eq!(micros("2026-11-28T14:08:14.647362Z"), T);
        assert_eq!(micros("2026-11-28 10:08:14.647362-04"), T);
        assert_eq!(micros("2026-11-28 19:38:14.647362+05:30"), T);
        assert_eq!(micros("2026-11-28 19:38:14.647362+0530"), T);
        assert_eq!(micros("2026-11-28 14:08:14"), 1_795_874_894_000_000);
        assert_eq!(micros("2026-11-28 14:08:14.6"), 1_795_874_894_600_000);
        // The benchmark dump's form.
        assert_eq!(micros("2023-07-19 15:21:33.154974-04"), 1_689_794_493_154_974);
    }

    #[test]
    fn bad_dates_say_why() {
        for bad in [
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-02-30 00:00:00",
            "2026-11-28 24:00:00",
            "2026-11-28 14:08:14.1234567",
            "2026-11-28 14:08:14 CET",
            "2026-11-28 14:08:14+5",
            "2026-11-28",
            "",
            "2026-11-28 14:08:14.+00",
        ] {
            let err = EventTime::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn display_is_utc_with_microseconds() {
        assert_eq!(EventTime::from_micros(T).to_string(), "2026-11-28T14:08:14.647362Z");
    }
}
