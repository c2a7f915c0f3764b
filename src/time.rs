//! Time formats of the upstream APIs, in one place.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `%Y-%m-%dT%H:%M:%S.%f`: Python's isoformat with microseconds, no offset.
const NAIVE_MICROS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]");

pub fn now_epoch() -> f64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9
}

fn from_epoch(epoch: f64) -> OffsetDateTime {
    // Round to the microsecond first: f64 epochs carry ~0.2 µs of noise.
    let nanos = (epoch * 1e6).round() as i128 * 1000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Naive UTC time, as in `utc_expires_at`.
pub fn utc_naive(epoch: f64) -> String {
    from_epoch(epoch).format(NAIVE_MICROS).unwrap_or_default()
}

/// Naive local time, as in `expires_at` and event timestamps. The local
/// offset is read once: reading it later can fail in a multi-threaded
/// process, and a PBX does not change time zone while running.
pub fn local_naive(epoch: f64) -> String {
    let offset = *LOCAL_OFFSET.get_or_init(|| UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC));
    from_epoch(epoch)
        .to_offset(offset)
        .format(NAIVE_MICROS)
        .unwrap_or_default()
}

static LOCAL_OFFSET: std::sync::OnceLock<UtcOffset> = std::sync::OnceLock::new();

/// The local UTC offset captured at start (UTC if it could not be read).
pub fn local_offset() -> UtcOffset {
    *LOCAL_OFFSET.get_or_init(|| UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC))
}

/// Captures the local offset; call from `main` before the runtime starts.
pub fn init_local_offset() {
    let _ = LOCAL_OFFSET.get_or_init(|| UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC));
}

pub fn local_iso_now() -> String {
    local_naive(now_epoch())
}

/// RFC 3339 with offset, for timezone-aware API fields.
pub fn rfc3339(epoch: f64) -> String {
    from_epoch(epoch)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_naive_has_microseconds_and_no_offset() {
        assert_eq!(utc_naive(1_700_000_000.25), "2023-11-14T22:13:20.250000");
    }
}
