//! An SCCP endpoint: the options of a line's sccp.conf account.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::confd::options::{self, KeyValue};

/// The only options upstream stores for an SCCP line.
pub const ALLOWED: &[&str] = &["cid_name", "cid_num", "allow", "disallow"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSccp {
    #[serde(default)]
    pub options: Vec<KeyValue>,
}

impl EndpointSccp {
    pub fn validate(&self) -> Result<(), ApiError> {
        options::validate("options", &self.options, Some(ALLOWED))
    }
}
