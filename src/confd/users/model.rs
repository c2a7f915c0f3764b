//! A confd user (the PBX side of a person: caller id, ring time, call
//! recording...), its forwards, services and fallbacks.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::error::ApiError;
use crate::confd::fields::{check_digits, check_email, check_opt_text, check_range, check_text, Language};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub firstname: String,
    #[serde(default)]
    pub lastname: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// `"Name" <number>` (the number part optional); defaults to the names.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// `default`, `anonymous` or a caller id.
    #[serde(default = "default_outgoing")]
    pub outgoing_caller_id: String,
    #[serde(default)]
    pub mobile_phone_number: Option<String>,
    #[serde(default)]
    pub language: Option<Language>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub music_on_hold: Option<String>,
    #[serde(default)]
    pub preprocess_subroutine: Option<String>,
    /// Always a string (empty when unset), as upstream.
    #[serde(default)]
    pub userfield: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_ring_seconds")]
    pub ring_seconds: i64,
    #[serde(default = "default_simultaneous_calls")]
    pub simultaneous_calls: i64,
    #[serde(default)]
    pub call_transfer_enabled: bool,
    #[serde(default)]
    pub dtmf_hangup_enabled: bool,
    /// Deprecated: when given, sets every `call_record_*_enabled`; reads as
    /// "all of them enabled".
    #[serde(default)]
    pub call_record_enabled: bool,
    #[serde(default)]
    pub call_record_outgoing_external_enabled: bool,
    #[serde(default)]
    pub call_record_incoming_external_enabled: bool,
    #[serde(default)]
    pub call_record_outgoing_internal_enabled: bool,
    #[serde(default)]
    pub call_record_incoming_internal_enabled: bool,
    #[serde(default)]
    pub online_call_record_enabled: bool,
    #[serde(default = "yes")]
    pub supervision_enabled: bool,
    #[serde(default)]
    pub call_permission_password: Option<String>,
    #[serde(default)]
    pub subscription_type: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Set by the server at creation (read-only).
    #[serde(default)]
    pub created_at: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_outgoing() -> String {
    "default".into()
}
fn default_ring_seconds() -> i64 {
    30
}
fn default_simultaneous_calls() -> i64 {
    5
}

const RECORD_FIELDS: [&str; 4] = [
    "call_record_outgoing_external_enabled",
    "call_record_incoming_external_enabled",
    "call_record_outgoing_internal_enabled",
    "call_record_incoming_internal_enabled",
];

/// Whether `s` is `"Name"` or `"Name" <number>` (number: digits, optional `+`).
pub fn valid_caller_id(s: &str) -> bool {
    if s.len() > 160 || s.chars().any(char::is_control) {
        return false;
    }
    let Some(rest) = s.strip_prefix('"') else {
        return false;
    };
    let Some((name, tail)) = rest.split_once('"') else {
        return false;
    };
    if name.trim().is_empty() {
        return false;
    }
    let tail = tail.trim_start();
    if tail.is_empty() {
        return true;
    }
    match tail.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        Some(num) => {
            let digits = num.strip_prefix('+').unwrap_or(num);
            !digits.is_empty() && digits.len() <= 40 && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

impl User {
    /// `Firstname Lastname`.
    pub fn full_name(&self) -> String {
        match self.lastname.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            Some(l) => format!("{} {l}", self.firstname.trim()),
            None => self.firstname.trim().to_string(),
        }
    }

    /// Server-side values: the caller id from the names when none is set,
    /// the deprecated `call_record_enabled` read from the four it stands for.
    pub fn normalize(&mut self) {
        if self.caller_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
            let name: String = self.full_name().chars().filter(|c| *c != '"').collect();
            self.caller_id = Some(format!("\"{name}\""));
        }
        self.call_record_enabled = self.call_record_outgoing_external_enabled
            && self.call_record_incoming_external_enabled
            && self.call_record_outgoing_internal_enabled
            && self.call_record_incoming_internal_enabled;
    }

    /// The checks that need no database.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.firstname.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "firstname",
                "Length must be between 1 and 128.",
            ));
        }
        check_text("firstname", &self.firstname, 1, 128, "\"")?;
        check_opt_text("lastname", self.lastname.as_deref(), 128, "\"")?;
        check_opt_text("email", self.email.as_deref(), 254, "")?;
        check_email("email", self.email.as_deref())?;
        if let Some(u) = &self.username {
            check_text("username", u, 2, 254, " ")?;
        }
        if let Some(c) = &self.caller_id {
            if !valid_caller_id(c) {
                return Err(ApiError::invalid_field(
                    "caller_id",
                    "Invalid caller id: expected '\"Name\" <number>' or '\"Name\"'.",
                ));
            }
        }
        let o = self.outgoing_caller_id.as_str();
        if !(o == "default" || o == "anonymous" || (o.len() <= 80 && valid_caller_id(o))) {
            return Err(ApiError::invalid_field(
                "outgoing_caller_id",
                "Must be 'default', 'anonymous' or '\"Name\" <number>'.",
            ));
        }
        if let Some(m) = &self.mobile_phone_number {
            let digits = m.strip_prefix('+').unwrap_or(m);
            if m.len() > 80 || !digits.bytes().all(|b| b.is_ascii_digit() || b"*#".contains(&b)) {
                return Err(ApiError::invalid_field(
                    "mobile_phone_number",
                    "String does not match expected pattern.",
                ));
            }
        }
        if let Some(tz) = &self.timezone {
            if tz.len() > 128 || !tz.bytes().all(|b| b.is_ascii_alphanumeric() || b"_/+-".contains(&b)) {
                return Err(ApiError::invalid_field(
                    "timezone",
                    "String does not match expected pattern.",
                ));
            }
        }
        for (field, v, max) in [
            ("music_on_hold", &self.music_on_hold, 128),
            ("preprocess_subroutine", &self.preprocess_subroutine, 79),
        ] {
            if let Some(v) = v {
                if v.len() > max || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
                    return Err(ApiError::invalid_field(
                        field,
                        "String does not match expected pattern.",
                    ));
                }
            }
        }
        check_text("userfield", &self.userfield, 0, 128, "")?;
        if self
            .description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(ApiError::invalid_field(
                "description",
                "Must not contain control characters.",
            ));
        }
        check_range("ring_seconds", self.ring_seconds, 0, 10800)?;
        check_range("simultaneous_calls", self.simultaneous_calls, 1, 20)?;
        check_range("subscription_type", self.subscription_type, 0, 10)?;
        if let Some(p) = &self.call_permission_password {
            if !p.is_empty() {
                check_digits("call_permission_password", p, 1, 16)?;
            }
        }
        Ok(())
    }
}

/// `call_record_enabled` in a body sets the four fields it stands for
/// (unless the body names them too).
pub fn merge(base: &mut Map<String, Value>, mut body: Map<String, Value>) {
    if let Some(all) = body.get("call_record_enabled").cloned() {
        if all.is_boolean() {
            for f in RECORD_FIELDS {
                if !body.contains_key(f) {
                    body.insert(f.into(), all.clone());
                }
            }
        }
    }
    base.extend(body);
}

/// The three forwards and their `{enabled, destination}`.
pub const FORWARDS: [&str; 3] = ["busy", "noanswer", "unconditional"];
/// The two services and their `{enabled}`.
pub const SERVICES: [&str; 2] = ["dnd", "incallfilter"];
/// The four fallbacks, each a destination or null.
pub const FALLBACKS: [&str; 4] = [
    "noanswer_destination",
    "busy_destination",
    "congestion_destination",
    "fail_destination",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub destination: Option<String>,
}

/// A forward body: both fields optional (the stored ones stay).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardPatch {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    pub destination: Option<Option<String>>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl ForwardPatch {
    pub fn apply(self, field: &str, f: &mut Forward) -> Result<(), ApiError> {
        if let Some(e) = self.enabled {
            f.enabled = e;
        }
        if let Some(d) = self.destination {
            if let Some(d) = &d {
                // The dialplan dials it: no separators, no control characters.
                if d.len() > 128 || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b"*#+-_.@".contains(&b)) {
                    return Err(ApiError::invalid_field(
                        &format!("{field}.destination"),
                        "String does not match expected pattern.",
                    ));
                }
            }
            f.destination = d.filter(|d| !d.is_empty());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardsBody {
    #[serde(default)]
    pub busy: Option<ForwardPatch>,
    #[serde(default)]
    pub noanswer: Option<ForwardPatch>,
    #[serde(default)]
    pub unconditional: Option<ForwardPatch>,
}

impl ForwardsBody {
    pub fn into_list(self) -> Vec<(&'static str, ForwardPatch)> {
        let mut out = Vec::new();
        for (name, p) in [
            ("busy", self.busy),
            ("noanswer", self.noanswer),
            ("unconditional", self.unconditional),
        ] {
            if let Some(p) = p {
                out.push((name, p));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceBody {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesBody {
    #[serde(default)]
    pub dnd: Option<ServiceBody>,
    #[serde(default)]
    pub incallfilter: Option<ServiceBody>,
}

/// Destination types and the fields each requires (ids are integers, the
/// rest strings).
const DESTINATIONS: &[(&str, &[&str])] = &[
    ("application", &["application"]),
    ("conference", &["conference_id"]),
    ("custom", &["command"]),
    ("extension", &["exten", "context"]),
    ("group", &["group_id"]),
    ("hangup", &["cause"]),
    ("ivr", &["ivr_id"]),
    ("none", &[]),
    ("outcall", &["outcall_id", "exten"]),
    ("queue", &["queue_id"]),
    ("sound", &["filename"]),
    ("switchboard", &["switchboard_uuid"]),
    ("user", &["user_id"]),
    ("voicemail", &["voicemail_id"]),
];

/// Checks a fallback destination's shape: a known `type`, its required
/// fields, integers for `*_id`, no control characters in strings.
pub fn check_destination(field: &str, d: &Value) -> Result<(), ApiError> {
    let Some(obj) = d.as_object() else {
        return Err(ApiError::invalid_field(
            field,
            "Invalid input type: expected an object or null.",
        ));
    };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    let Some((_, required)) = DESTINATIONS.iter().find(|(k, _)| *k == kind) else {
        let known: Vec<&str> = DESTINATIONS.iter().map(|(k, _)| *k).collect();
        return Err(ApiError::invalid_field(
            &format!("{field}.type"),
            format!("Must be one of: {}.", known.join(", ")),
        ));
    };
    for r in *required {
        if !obj.contains_key(*r) {
            return Err(ApiError::invalid_field(
                &format!("{field}.{r}"),
                "Missing data for required field.",
            ));
        }
    }
    for (k, v) in obj {
        let sub = format!("{field}.{k}");
        if k.ends_with("_id") && !v.is_i64() {
            return Err(ApiError::invalid_field(&sub, "Not a valid integer."));
        }
        match v {
            Value::String(s) => check_text(&sub, s, 0, 255, "")?,
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
            _ => return Err(ApiError::invalid_field(&sub, "Invalid value.")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn caller_ids() {
        for ok in ["\"Alice\"", "\"Alice Smith\" <1000>", "\"A\" <+331234>", "\"A\"<1>"] {
            assert!(valid_caller_id(ok), "{ok}");
        }
        for bad in [
            "Alice",
            "\"\" <1000>",
            "\"Alice\" 1000",
            "\"Alice\" <10a0>",
            "\"Al\nice\"",
            "\"Alice",
        ] {
            assert!(!valid_caller_id(bad), "{bad}");
        }
    }

    #[test]
    fn defaults_and_normalize() {
        let mut u: User = serde_json::from_value(json!({"firstname": "Alice", "lastname": "Smith"})).expect("user");
        u.normalize();
        assert_eq!(u.caller_id.as_deref(), Some("\"Alice Smith\""));
        assert_eq!((u.ring_seconds, u.simultaneous_calls), (30, 5));
        assert!(u.validate().is_ok());
        let mut base = Map::new();
        merge(
            &mut base,
            json!({"call_record_enabled": true})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(base["call_record_incoming_internal_enabled"], true);
    }

    #[test]
    fn destinations() {
        assert!(check_destination("f", &json!({"type": "user", "user_id": 1})).is_ok());
        assert!(check_destination("f", &json!({"type": "none"})).is_ok());
        assert!(check_destination("f", &json!({"type": "user"})).is_err());
        assert!(check_destination("f", &json!({"type": "user", "user_id": "1"})).is_err());
        assert!(check_destination("f", &json!({"type": "bogus"})).is_err());
        assert!(check_destination("f", &json!({"type": "custom", "command": "a\nb"})).is_err());
    }
}
