//! An incoming call route: what a DID reaches. Its writable fields and the
//! destination; the extensions (DIDs) are an association (see `mod.rs`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::confd::extensions::valid_exten;
use crate::confd::fields::{check_opt_text, check_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerIdMode {
    Prepend,
    Overwrite,
    Append,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Greeting {
    Busy,
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HangupCause {
    Busy,
    Congestion,
    Normal,
}

/// Where a call goes, as far as the provisioned resources exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Destination {
    User {
        user_id: i64,
        #[serde(default)]
        ring_time: Option<f64>,
        #[serde(default)]
        moh_uuid: Option<Uuid>,
    },
    Voicemail {
        voicemail_id: i64,
        #[serde(default)]
        skip_instructions: bool,
        #[serde(default)]
        greeting: Option<Greeting>,
    },
    Hangup {
        cause: HangupCause,
        #[serde(default)]
        timeout: Option<i64>,
    },
    None,
    Custom {
        command: String,
    },
    Extension {
        exten: String,
        context: String,
    },
    /// The switchboard's queue: calld takes the call in accentd's Stasis application.
    Switchboard {
        switchboard_uuid: Uuid,
    },
}

impl Destination {
    /// Checks without the database; fields named `<field>.<key>`.
    pub fn validate(&self, field: &str) -> Result<(), ApiError> {
        let sub = |k: &str| format!("{field}.{k}");
        match self {
            Destination::User { ring_time, .. } => {
                if ring_time.is_some_and(|t| !(0.0..=86400.0).contains(&t)) {
                    return Err(ApiError::invalid_field(
                        &sub("ring_time"),
                        "Must be between 0 and 86400.",
                    ));
                }
            }
            Destination::Hangup { cause, timeout } => match (cause, timeout) {
                (HangupCause::Normal, Some(_)) => {
                    return Err(ApiError::invalid_field(&sub("timeout"), "Unknown field."));
                }
                (_, Some(t)) if !(0..=300).contains(t) => {
                    return Err(ApiError::invalid_field(&sub("timeout"), "Must be between 0 and 300."));
                }
                _ => {}
            },
            Destination::Custom { command } => check_text(&sub("command"), command, 1, 255, "")?,
            Destination::Extension { exten, context } => {
                if !valid_exten(exten) {
                    return Err(ApiError::invalid_field(
                        &sub("exten"),
                        "String does not match expected pattern.",
                    ));
                }
                check_text(&sub("context"), context, 1, 79, "")?;
            }
            Destination::Voicemail { .. } | Destination::None | Destination::Switchboard { .. } => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incall {
    pub destination: Destination,
    #[serde(default)]
    pub preprocess_subroutine: Option<String>,
    #[serde(default)]
    pub greeting_sound: Option<String>,
    #[serde(default)]
    pub caller_id_mode: Option<CallerIdMode>,
    #[serde(default)]
    pub caller_id_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl Incall {
    /// Checks without the database.
    pub fn validate(&self) -> Result<(), ApiError> {
        self.destination.validate("destination")?;
        check_opt_text(
            "preprocess_subroutine",
            self.preprocess_subroutine.as_deref(),
            79,
            ",()",
        )?;
        check_opt_text("greeting_sound", self.greeting_sound.as_deref(), 255, ",()")?;
        check_opt_text("caller_id_name", self.caller_id_name.as_deref(), 80, "\"")?;
        check_opt_text("description", self.description.as_deref(), 65535, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incall(v: serde_json::Value) -> Result<Incall, String> {
        serde_json::from_value::<Incall>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn destinations() {
        for ok in [
            json!({"type": "user", "user_id": 1, "ring_time": 10.5}),
            json!({"type": "voicemail", "voicemail_id": 1, "greeting": "busy"}),
            json!({"type": "hangup", "cause": "busy", "timeout": 5}),
            json!({"type": "none"}),
            json!({"type": "custom", "command": "Playback(hello)"}),
            json!({"type": "extension", "exten": "1000", "context": "default"}),
            json!({"type": "switchboard", "switchboard_uuid": "3a0b4c6e-0d2f-4b0e-9a57-8c1f1c3a0b4c"}),
        ] {
            let i = incall(json!({ "destination": ok })).expect("parses");
            i.validate().expect("valid");
        }
        for bad in [
            json!({"type": "user"}),
            json!({"type": "user", "user_id": "1"}),
            json!({"type": "user", "user_id": 1, "bogus": 1}),
            json!({"type": "bogus"}),
            json!({"type": "voicemail", "voicemail_id": 1, "greeting": "never"}),
            json!({"type": "hangup", "cause": "later"}),
            json!({"type": "switchboard"}),
            json!({"type": "switchboard", "switchboard_uuid": "nope"}),
        ] {
            assert!(incall(json!({ "destination": bad })).is_err(), "{bad}");
        }
        for invalid in [
            json!({"type": "user", "user_id": 1, "ring_time": -1}),
            json!({"type": "hangup", "cause": "normal", "timeout": 3}),
            json!({"type": "custom", "command": "a\nb"}),
            json!({"type": "extension", "exten": "10 0", "context": "default"}),
        ] {
            let i = incall(json!({ "destination": invalid })).expect("parses");
            assert!(i.validate().is_err(), "{invalid}");
        }
        let i = incall(json!({"destination": {"type": "none"}, "caller_id_mode": "prepend"})).expect("parses");
        assert_eq!(i.caller_id_mode, Some(CallerIdMode::Prepend));
        assert!(incall(json!({"destination": {"type": "none"}, "caller_id_mode": "never"})).is_err());
    }
}
