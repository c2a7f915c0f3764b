//! A SIP endpoint or endpoint template: a name (the pjsip section), the
//! templates it inherits from, its transport and its option lists, one per
//! pjsip section it produces.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::confd::options::{self, KeyValue};

/// `{"uuid": ...}`; other keys (a template's `label` sent back) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UuidRef {
    pub uuid: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSip {
    /// The pjsip section name; generated when absent.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub asterisk_id: Option<String>,
    /// Inherited in order: the first applies over the next ones.
    #[serde(default)]
    pub templates: Vec<UuidRef>,
    #[serde(default)]
    pub transport: Option<UuidRef>,
    #[serde(default)]
    pub aor_section_options: Vec<KeyValue>,
    #[serde(default)]
    pub auth_section_options: Vec<KeyValue>,
    #[serde(default)]
    pub endpoint_section_options: Vec<KeyValue>,
    #[serde(default)]
    pub identify_section_options: Vec<KeyValue>,
    #[serde(default)]
    pub registration_section_options: Vec<KeyValue>,
    #[serde(default)]
    pub registration_outbound_auth_section_options: Vec<KeyValue>,
    #[serde(default)]
    pub outbound_auth_section_options: Vec<KeyValue>,
}

/// A template has the same fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SipTemplate(pub EndpointSip);

fn text(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    if let Some(v) = value {
        if v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                field,
                format!("Length must be at most {max}, without control characters."),
            ));
        }
    }
    Ok(())
}

impl EndpointSip {
    pub fn sections(&self) -> [(&'static str, &[KeyValue]); 7] {
        [
            ("aor_section_options", &self.aor_section_options),
            ("auth_section_options", &self.auth_section_options),
            ("endpoint_section_options", &self.endpoint_section_options),
            ("identify_section_options", &self.identify_section_options),
            ("registration_section_options", &self.registration_section_options),
            (
                "registration_outbound_auth_section_options",
                &self.registration_outbound_auth_section_options,
            ),
            ("outbound_auth_section_options", &self.outbound_auth_section_options),
        ]
    }

    /// Checks without the database.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !options::valid_section_name(&self.name) {
            return Err(ApiError::invalid_field(
                "name",
                "String does not match expected pattern (letters, digits, '_', '-', '.', '+', '@'; 1 to 128).",
            ));
        }
        text("label", &self.label, 128)?;
        text("asterisk_id", &self.asterisk_id, 64)?;
        for (field, opts) in self.sections() {
            options::validate(field, opts, None)?;
        }
        for (i, t) in self.templates.iter().enumerate() {
            if self.templates[..i].contains(t) {
                return Err(ApiError::invalid_field(
                    &format!("templates[{i}]"),
                    "Template listed twice.",
                ));
            }
        }
        Ok(())
    }

    /// The auth username, if any (what a line shows of its endpoint's auth).
    pub fn username(&self) -> Option<&str> {
        options::get(&self.auth_section_options, "username")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_validate() {
        let e: EndpointSip = serde_json::from_value(serde_json::json!({
            "name": "abc", "label": "Alice",
            "auth_section_options": [["username", "abc"], ["password", "s3cret"]],
            "templates": [{"uuid": Uuid::new_v4(), "label": "sent back"}],
        }))
        .expect("parse");
        e.validate().expect("valid");
        assert_eq!(e.username(), Some("abc"));
        let mut bad = e.clone();
        bad.templates.push(bad.templates[0]);
        assert!(bad.validate().is_err());
        let mut bad = e.clone();
        bad.label = Some("a\nb".into());
        assert!(bad.validate().is_err());
        assert!(serde_json::from_value::<EndpointSip>(serde_json::json!({"aor_section_options": [["a"]]})).is_err());
    }
}
