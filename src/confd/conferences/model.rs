//! A conference room's writable fields (a ConfBridge bridge with its user
//! profiles): upstream's names, defaults and limits.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::confd::fields::{check_digits, check_opt_text, check_range};

fn yes() -> bool {
    true
}

/// Upstream's column default.
fn fifty() -> i64 {
    50
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conference {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub preprocess_subroutine: Option<String>,
    /// Participants allowed (administrators not counted); 0 is no limit.
    #[serde(default = "fifty")]
    pub max_users: i64,
    #[serde(default)]
    pub record: bool,
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub admin_pin: Option<String>,
    #[serde(default)]
    pub quiet_join_leave: bool,
    #[serde(default)]
    pub announce_join_leave: bool,
    #[serde(default)]
    pub announce_user_count: bool,
    #[serde(default = "yes")]
    pub announce_only_user: bool,
    #[serde(default)]
    pub music_on_hold: Option<String>,
}

impl Conference {
    /// Checks without the database. The values end up in `confbridge.conf`
    /// and the dialplan, so nothing that would break a line or an argument
    /// list is accepted.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_opt_text("name", self.name.as_deref(), 128, "")?;
        check_opt_text(
            "preprocess_subroutine",
            self.preprocess_subroutine.as_deref(),
            79,
            ",()",
        )?;
        check_range("max_users", self.max_users, 0, i64::from(i32::MAX))?;
        for (field, pin) in [("pin", &self.pin), ("admin_pin", &self.admin_pin)] {
            if let Some(pin) = pin {
                check_digits(field, pin, 1, 80)?;
            }
        }
        check_opt_text("music_on_hold", self.music_on_hold.as_deref(), 128, ",()[];=")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conference(v: serde_json::Value) -> Result<Conference, String> {
        serde_json::from_value::<Conference>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_limits() {
        let c = conference(json!({})).expect("empty body");
        assert_eq!((c.max_users, c.announce_only_user, c.record), (50, true, false));
        c.validate().expect("valid");
        for ok in [
            json!({"name": "Team", "pin": "1234", "admin_pin": "0000", "max_users": 0}),
            json!({"music_on_hold": "default", "preprocess_subroutine": "sub-conf"}),
        ] {
            conference(ok.clone()).expect("parses").validate().expect("valid");
        }
        for invalid in [
            json!({"pin": "12a4"}),
            json!({"admin_pin": ""}),
            json!({"pin": "1".repeat(81)}),
            json!({"max_users": -1}),
            json!({"name": "x".repeat(129)}),
            json!({"name": "a\nb"}),
            json!({"preprocess_subroutine": "a,b"}),
            json!({"music_on_hold": "a;b"}),
        ] {
            let c = conference(invalid.clone()).expect("parses");
            assert!(c.validate().is_err(), "{invalid}");
        }
        for bad in [json!({"record": "yes"}), json!({"max_users": "5"}), json!({"bogus": 1})] {
            assert!(conference(bad.clone()).is_err(), "{bad}");
        }
    }
}
