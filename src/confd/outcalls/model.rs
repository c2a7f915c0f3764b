//! An outgoing call route: the trunks it dials through and the patterns
//! (extensions of an `outcall` context) that reach it. Its writable fields
//! and the association bodies.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::confd::fields::{check_opt_text, check_range, check_text};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcall {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub internal_caller_id: bool,
    #[serde(default)]
    pub preprocess_subroutine: Option<String>,
    #[serde(default)]
    pub ring_time: Option<i64>,
}

fn yes() -> bool {
    true
}

impl Outcall {
    /// Checks without the database.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_text("name", &self.name, 1, 128, "")?;
        check_opt_text("description", self.description.as_deref(), 65535, "")?;
        check_opt_text(
            "preprocess_subroutine",
            self.preprocess_subroutine.as_deref(),
            79,
            ",()",
        )?;
        if let Some(t) = self.ring_time {
            check_range("ring_time", t, 0, 86400)?;
        }
        Ok(())
    }
}

/// `PUT /outcalls/{id}/trunks`: the whole ordered list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunksBody {
    pub trunks: Vec<TrunkRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkRef {
    pub id: i64,
}

/// How an outcall rewrites the number dialled through one of its patterns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutcallExtension {
    /// What the caller dials before the pattern.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Added in front of the number sent to the trunk.
    #[serde(default)]
    pub external_prefix: Option<String>,
    /// Leading digits removed before sending.
    #[serde(default)]
    pub strip_digits: i64,
    #[serde(default)]
    pub caller_id: Option<String>,
}

/// Digits, `*`, `#`, a leading `+`; 1 to 64 of them.
fn dial_prefix(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    let Some(v) = value else { return Ok(()) };
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || b"*#".contains(&b) || (i == 0 && b == b'+'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "String does not match expected pattern (digits, '*', '#', a leading '+'; 1 to 64).",
        ))
    }
}

impl OutcallExtension {
    pub fn validate(&self) -> Result<(), ApiError> {
        dial_prefix("prefix", self.prefix.as_deref())?;
        dial_prefix("external_prefix", self.external_prefix.as_deref())?;
        check_range("strip_digits", self.strip_digits, 0, 40)?;
        check_opt_text("caller_id", self.caller_id.as_deref(), 80, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_and_extension_bodies() {
        let o: Outcall = serde_json::from_value(json!({"name": "out"})).expect("parses");
        assert!(o.enabled && !o.internal_caller_id);
        o.validate().expect("valid");
        let bad = Outcall {
            ring_time: Some(-1),
            ..o.clone()
        };
        assert!(bad.validate().is_err());
        let bad = Outcall {
            name: String::new(),
            ..o
        };
        assert!(bad.validate().is_err());
        let e: OutcallExtension =
            serde_json::from_value(json!({"prefix": "0", "external_prefix": "+33", "strip_digits": 1}))
                .expect("parses");
        e.validate().expect("valid");
        for bad in [
            json!({"prefix": "a"}),
            json!({"external_prefix": "3+3"}),
            json!({"strip_digits": -1}),
            json!({"caller_id": "a\nb"}),
        ] {
            let e: OutcallExtension = serde_json::from_value(bad.clone()).expect("parses");
            assert!(e.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<OutcallExtension>(json!({"strip": 1})).is_err());
    }
}
