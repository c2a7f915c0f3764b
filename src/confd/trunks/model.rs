//! A trunk: a link to a provider. Its writable fields; the endpoint (SIP or
//! custom) and the outcalls using it are associations (see `mod.rs`).

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::confd::fields::{check_opt_text, check_text};

/// How a caller id chosen by an application is formatted on this trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CallerIdFormat {
    #[default]
    #[serde(rename = "+E164")]
    PlusE164,
    #[serde(rename = "E164")]
    E164,
    #[serde(rename = "national")]
    National,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Where calls from the trunk enter the dialplan: a context of the tenant.
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub twilio_incoming: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub outgoing_caller_id_format: CallerIdFormat,
}

impl Trunk {
    /// Checks without the database.
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(context) = &self.context {
            check_text("context", context, 1, 79, "")?;
        }
        check_opt_text("description", self.description.as_deref(), 65535, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_formats() {
        let t: Trunk = serde_json::from_value(serde_json::json!({})).expect("empty body");
        assert_eq!(t.outgoing_caller_id_format, CallerIdFormat::PlusE164);
        assert!(!t.twilio_incoming);
        let t: Trunk =
            serde_json::from_value(serde_json::json!({"outgoing_caller_id_format": "national"})).expect("national");
        assert_eq!(
            serde_json::to_value(t.outgoing_caller_id_format).expect("json"),
            "national"
        );
        assert!(serde_json::from_value::<Trunk>(serde_json::json!({"outgoing_caller_id_format": "e164"})).is_err());
        let bad = Trunk {
            context: Some(String::new()),
            ..t
        };
        assert!(bad.validate().is_err());
    }
}
