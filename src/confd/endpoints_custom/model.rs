//! A custom endpoint: any Asterisk dial interface (`DAHDI/i1`, `Local/...`).

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointCustom {
    /// Unique; what the dialplan dials.
    pub interface: String,
    #[serde(default)]
    pub interface_suffix: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Dial-string characters only: nothing that separates arguments (`,`, `&`,
/// `|`), quotes, spaces or line breaks.
fn dial_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_-.@:+#*=".contains(&b))
}

impl EndpointCustom {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.interface.is_empty() || self.interface.len() > 128 || !dial_chars(&self.interface) {
            return Err(ApiError::invalid_field(
                "interface",
                "String does not match expected pattern (1 to 128 dial-string characters).",
            ));
        }
        if let Some(s) = &self.interface_suffix {
            if s.len() > 32 || !dial_chars(s) {
                return Err(ApiError::invalid_field(
                    "interface_suffix",
                    "String does not match expected pattern (at most 32 dial-string characters).",
                ));
            }
        }
        Ok(())
    }
}
