//! A voicemail box: one `<number> => <password>,<name>,<email>,<pager>,<options>`
//! line of `voicemail.conf` in the section of its context, so no field may
//! break that line (newlines, `,`, `|`, `;`, `[`...).

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::confd::fields::{check_digits, check_email, check_opt_text, check_text, Language};

/// Characters that would split a voicemail.conf line or its options.
const LINE_BREAKERS: &str = ",|;[]";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voicemail {
    pub name: String,
    pub number: String,
    pub context: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub pager: Option<String>,
    #[serde(default)]
    pub language: Option<Language>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub max_messages: Option<u32>,
    #[serde(default)]
    pub attach_audio: Option<bool>,
    #[serde(default)]
    pub delete_messages: bool,
    #[serde(default = "yes")]
    pub ask_password: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `[[name, value], ...]` appended to the line as `name=value|...`.
    #[serde(default)]
    pub options: Vec<(String, String)>,
}

fn yes() -> bool {
    true
}

impl Voicemail {
    /// The checks that need no database.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.name.trim().is_empty() {
            return Err(ApiError::invalid_field("name", "Length must be between 1 and 80."));
        }
        check_text("name", &self.name, 1, 80, LINE_BREAKERS)?;
        check_digits("number", &self.number, 1, 40)?;
        if let Some(p) = &self.password {
            check_digits("password", p, 0, 80)?;
        }
        for (field, v) in [("email", &self.email), ("pager", &self.pager)] {
            check_opt_text(field, v.as_deref(), 80, LINE_BREAKERS)?;
            check_email(field, v.as_deref())?;
        }
        if let Some(tz) = &self.timezone {
            if tz.is_empty() || tz.len() > 128 || !tz.bytes().all(|b| b.is_ascii_alphanumeric() || b"_/+-".contains(&b))
            {
                return Err(ApiError::invalid_field(
                    "timezone",
                    "String does not match expected pattern.",
                ));
            }
        }
        if self.delete_messages
            && (self.email.as_deref().unwrap_or_default().is_empty() || self.attach_audio != Some(true))
        {
            return Err(ApiError::invalid_field(
                "delete_messages",
                "delete_messages requires an email and attach_audio",
            ));
        }
        for (i, (k, v)) in self.options.iter().enumerate() {
            if k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
                return Err(ApiError::invalid_field(
                    &format!("options.{i}.0"),
                    "Option names are letters, digits, '_' and '-' (at most 64).",
                ));
            }
            check_text(&format!("options.{i}.1"), v, 0, 255, ",|;[]=")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vm(extra: serde_json::Value) -> Voicemail {
        let mut base = json!({"name": "Alice", "number": "1000", "context": "default"});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        serde_json::from_value(base).expect("voicemail")
    }

    #[test]
    fn nothing_breaks_the_voicemail_conf_line() {
        assert!(vm(json!({})).validate().is_ok());
        assert!(vm(json!({"options": [["saycid", "yes"]]})).validate().is_ok());
        for bad in [
            json!({"name": "A,B"}),
            json!({"name": "A\nB"}),
            json!({"name": "[general]"}),
            json!({"number": "10a"}),
            json!({"password": "12ab"}),
            json!({"email": "x@y.z|saycid=yes"}),
            json!({"options": [["say cid", "yes"]]}),
            json!({"options": [["saycid", "yes|attach=no"]]}),
            json!({"options": [["saycid", "yes\n[evil]"]]}),
            json!({"delete_messages": true}),
            json!({"timezone": "eu\nx"}),
        ] {
            assert!(vm(bad.clone()).validate().is_err(), "{bad}");
        }
    }
}
