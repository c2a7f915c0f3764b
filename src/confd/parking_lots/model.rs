//! A parking lot: the slots calls are parked in, how long they stay and
//! what they hear. Its extension (`parkext`) is an association (see `mod.rs`).

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::confd::fields::{check_digits, check_opt_text};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParkingLot {
    #[serde(default)]
    pub name: Option<String>,
    pub slots_start: String,
    pub slots_end: String,
    /// Seconds before a parked call rings its parker back; `null` never.
    #[serde(default = "default_timeout")]
    pub timeout: Option<i64>,
    #[serde(default = "default_moh")]
    pub music_on_hold: Option<String>,
}

fn default_timeout() -> Option<i64> {
    Some(45)
}

fn default_moh() -> Option<String> {
    Some("default".into())
}

/// A slot or extension as a number, when it is one (`*90` is not).
pub fn slot_number(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl ParkingLot {
    /// Checks without the database.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_opt_text("name", self.name.as_deref(), 128, "")?;
        check_digits("slots_start", &self.slots_start, 1, 40)?;
        check_digits("slots_end", &self.slots_end, 1, 40)?;
        if self.slots().is_none() {
            return Err(ApiError::invalid_field(
                "slots_start",
                "It is not a valid interval: slots_start is greater than slots_end.",
            ));
        }
        if self.timeout.is_some_and(|t| t < 0) {
            return Err(ApiError::invalid_field(
                "timeout",
                "Must be greater than or equal to 0.",
            ));
        }
        // The class name is written into res_parking.conf: nothing that
        // could end the line or start a comment.
        check_opt_text("music_on_hold", self.music_on_hold.as_deref(), 128, ";[]")
    }

    /// The slots as numbers, `None` unless `start <= end`.
    pub fn slots(&self) -> Option<(u128, u128)> {
        let (start, end) = (slot_number(&self.slots_start)?, slot_number(&self.slots_end)?);
        (start <= end).then_some((start, end))
    }

    /// Whether `exten` is one of the lot's slots.
    pub fn holds(&self, exten: &str) -> bool {
        match (self.slots(), slot_number(exten)) {
            (Some((start, end)), Some(n)) => (start..=end).contains(&n),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lot(v: serde_json::Value) -> Result<ParkingLot, String> {
        serde_json::from_value::<ParkingLot>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_checks() {
        let l = lot(json!({"slots_start": "701", "slots_end": "750"})).expect("parses");
        assert_eq!(l.timeout, Some(45));
        assert_eq!(l.music_on_hold.as_deref(), Some("default"));
        l.validate().expect("valid");
        assert!(l.holds("701") && l.holds("750") && !l.holds("700") && !l.holds("*701"));
        let l = lot(json!({"slots_start": "701", "slots_end": "701", "timeout": null})).expect("parses");
        assert_eq!(l.timeout, None);
        l.validate().expect("one slot");
        for invalid in [
            json!({"slots_start": "750", "slots_end": "701"}),
            json!({"slots_start": "7a1", "slots_end": "750"}),
            json!({"slots_start": "", "slots_end": "750"}),
            json!({"slots_start": "701", "slots_end": "750", "timeout": -1}),
            json!({"slots_start": "701", "slots_end": "750", "music_on_hold": "a\nb"}),
            json!({"slots_start": "701", "slots_end": "750", "name": "x".repeat(129)}),
        ] {
            let l = lot(invalid.clone()).expect("parses");
            assert!(l.validate().is_err(), "{invalid}");
        }
        assert!(lot(json!({"slots_start": "701"})).is_err());
        assert!(lot(json!({"slots_start": 701, "slots_end": "750"})).is_err());
        assert!(lot(json!({"slots_start": "701", "slots_end": "750", "bogus": 1})).is_err());
    }
}
