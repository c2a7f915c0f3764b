//! A SIP transport: a `type=transport` section of pjsip.conf.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::confd::options::{self, KeyValue};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    pub name: String,
    pub options: Vec<KeyValue>,
}

impl Transport {
    pub fn validate(&self) -> Result<(), ApiError> {
        if !options::valid_section_name(&self.name) {
            return Err(ApiError::invalid_field(
                "name",
                "String does not match expected pattern (letters, digits, '_', '-', '.', '+', '@'; 1 to 128).",
            ));
        }
        options::validate("options", &self.options, None)
    }
}
