//! A line: what a phone registers as. Its writable fields; the endpoint,
//! extensions, device and users are associations (see `mod.rs`).

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// An internal context of the line's tenant.
    pub context: String,
    #[serde(default)]
    pub caller_id_name: Option<String>,
    #[serde(default)]
    pub caller_id_num: Option<String>,
    /// The line's key on its device (1 is the first).
    #[serde(default = "one")]
    pub position: i64,
    /// Six digits a phone is provisioned with; generated when absent, unique.
    #[serde(default)]
    pub provisioning_code: String,
    #[serde(default = "default_registrar")]
    pub registrar: String,
}

fn one() -> i64 {
    1
}

fn default_registrar() -> String {
    "default".into()
}

/// Longest position accepted (no phone has more keys).
pub const MAX_POSITION: i64 = 1000;

pub fn valid_provisioning_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

impl Line {
    /// Checks without the database.
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(name) = &self.caller_id_name {
            if name.chars().count() > 256 || name.chars().any(|c| c.is_control() || c == '"') {
                return Err(ApiError::invalid_field(
                    "caller_id_name",
                    "Length must be at most 256, without control characters or '\"'.",
                ));
            }
        }
        if let Some(num) = &self.caller_id_num {
            let ok = !num.is_empty()
                && num.len() <= 80
                && num
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| b.is_ascii_digit() || b"*#".contains(&b) || (i == 0 && b == b'+'));
            if !ok {
                return Err(ApiError::invalid_field(
                    "caller_id_num",
                    "String does not match expected pattern (digits, '*', '#', a leading '+'; 1 to 80).",
                ));
            }
        }
        if !(1..=MAX_POSITION).contains(&self.position) {
            return Err(ApiError::invalid_field(
                "position",
                format!("Must be between 1 and {MAX_POSITION}."),
            ));
        }
        if !valid_provisioning_code(&self.provisioning_code) {
            return Err(ApiError::invalid_field(
                "provisioning_code",
                "String does not match expected pattern (6 digits).",
            ));
        }
        if self.registrar.is_empty()
            || self.registrar.len() > 128
            || !self
                .registrar
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(ApiError::invalid_field(
                "registrar",
                "String does not match expected pattern (letters, digits, '_', '-', '.'; 1 to 128).",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(v: serde_json::Value) -> Line {
        serde_json::from_value(v).expect("parse")
    }

    #[test]
    fn defaults_and_rules() {
        let mut l = line(serde_json::json!({"context": "default", "provisioning_code": "123456"}));
        assert_eq!((l.position, l.registrar.as_str()), (1, "default"));
        l.validate().expect("valid");
        for (field, bad) in [
            ("caller_id_num", serde_json::json!({"caller_id_num": "12a"})),
            ("caller_id_num", serde_json::json!({"caller_id_num": "1+2"})),
            ("caller_id_name", serde_json::json!({"caller_id_name": "a\nb"})),
            ("position", serde_json::json!({"position": 0})),
            ("provisioning_code", serde_json::json!({"provisioning_code": "12345"})),
            ("registrar", serde_json::json!({"registrar": "a b"})),
        ] {
            let mut v = serde_json::json!({"context": "default", "provisioning_code": "123456"});
            for (k, x) in bad.as_object().expect("object") {
                v[k] = x.clone();
            }
            let err = line(v).validate().expect_err(field);
            assert!(err.body().to_string().contains(field), "{field}");
        }
        l.caller_id_num = Some("+33*12#".into());
        l.validate().expect("valid number");
    }
}
