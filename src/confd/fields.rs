//! Field types and checks several confd resources share.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;

/// The languages upstream accepts for users and voicemails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "de_DE")]
    DeDe,
    #[serde(rename = "en_US")]
    EnUs,
    #[serde(rename = "es_ES")]
    EsEs,
    #[serde(rename = "fr_FR")]
    FrFr,
    #[serde(rename = "fr_CA")]
    FrCa,
    #[serde(rename = "it_IT")]
    ItIt,
    #[serde(rename = "nl_NL")]
    NlNl,
}

/// A text field: `min..=max` characters, no control characters (a newline
/// would end a line of a generated Asterisk file) and none of `forbidden`.
pub fn check_text(field: &str, value: &str, min: usize, max: usize, forbidden: &str) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::invalid_field(
            field,
            format!("Length must be between {min} and {max}."),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || forbidden.contains(*c)) {
        let shown = if c.is_control() {
            "control characters".to_string()
        } else {
            format!("'{c}'")
        };
        return Err(ApiError::invalid_field(field, format!("Must not contain {shown}.")));
    }
    Ok(())
}

/// An optional text field (see [`check_text`]).
pub fn check_opt_text(field: &str, value: Option<&str>, max: usize, forbidden: &str) -> Result<(), ApiError> {
    match value {
        Some(v) => check_text(field, v, 0, max, forbidden),
        None => Ok(()),
    }
}

/// Digits only, `min..=max` of them.
pub fn check_digits(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    if value.len() < min || value.len() > max || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field(
            field,
            format!("String does not match expected pattern (between {min} and {max} digits)."),
        ));
    }
    Ok(())
}

/// An email address (the same check as auth's).
pub fn check_email(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(v) if !v.is_empty() && !crate::auth::users::model::is_valid_email(v) => {
            Err(ApiError::invalid_field(field, "Not a valid email address."))
        }
        _ => Ok(()),
    }
}

/// An integer within `min..=max`.
pub fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if value < min || value > max {
        return Err(ApiError::invalid_field(
            field,
            format!("Must be greater than or equal to {min} and less than or equal to {max}."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_checks() {
        assert!(check_text("f", "Alice", 1, 10, ",|").is_ok());
        assert!(check_text("f", "", 1, 10, "").is_err());
        assert!(check_text("f", "a\nb", 0, 10, "").is_err());
        assert!(check_text("f", "a,b", 0, 10, ",|").is_err());
        assert!(check_digits("f", "0123", 1, 4).is_ok());
        assert!(check_digits("f", "01234", 1, 4).is_err());
        assert!(check_digits("f", "12a", 1, 4).is_err());
        assert!(check_range("f", 10801, 0, 10800).is_err());
        assert!(check_email("f", Some("a@b.c")).is_ok());
        assert!(check_email("f", Some("nope")).is_err());
    }
}
