//! Request and response types of tokens, sessions and refresh tokens.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::error::ApiError;

/// POST /token body. Unknown keys are ignored, as upstream does.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    pub backend: Option<String>,
    pub expiration: Option<i64>,
    pub access_type: Option<String>,
    pub client_id: Option<String>,
    pub refresh_token: Option<String>,
    pub saml_session_id: Option<String>,
    pub tenant_id: Option<String>,
    pub domain_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessType {
    Online,
    Offline,
}

/// A validated POST /token request: how the caller proves who it is.
#[derive(Debug)]
pub enum Credentials {
    Password { login: String, password: String },
    Refresh { refresh_token: String, client_id: String },
}

#[derive(Debug)]
pub struct ValidTokenRequest {
    pub credentials: Credentials,
    pub expiration: Option<u64>,
    pub access_type: AccessType,
    pub client_id: Option<String>,
}

impl TokenRequest {
    /// Checks field rules; `basic` is the decoded Basic auth pair, if any.
    pub fn validate(self, basic: Option<(String, String)>, max_expiration: u64) -> Result<ValidTokenRequest, ApiError> {
        let expiration = match self.expiration {
            None => None,
            Some(e) if e >= 1 && (e as u64) <= max_expiration => Some(e as u64),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "expiration",
                    format!("Must be greater than or equal to 1 and less than or equal to {max_expiration}."),
                ))
            }
        };
        let access_type = match self.access_type.as_deref() {
            None | Some("online") => AccessType::Online,
            Some("offline") => AccessType::Offline,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "access_type",
                    "Must be one of: online, offline.",
                ))
            }
        };
        if let Some(c) = &self.client_id {
            if c.is_empty() || c.chars().count() > 1024 {
                return Err(ApiError::invalid_field(
                    "client_id",
                    "Length must be between 1 and 1024.",
                ));
            }
        }
        if access_type == AccessType::Offline && self.client_id.is_none() {
            return Err(ApiError::invalid_field(
                "client_id",
                "\"client_id\" must be specified when using \"access_type\": \"offline\"",
            ));
        }
        if self.refresh_token.is_some() && self.saml_session_id.is_some() {
            return Err(ApiError::invalid_field(
                "_schema",
                "refresh_token and saml_session_id are mutually exclusive",
            ));
        }
        if self.tenant_id.is_some() && self.domain_name.is_some() {
            return Err(ApiError::invalid_field(
                "_schema",
                "tenant_id and domain_name are mutually exclusive",
            ));
        }
        if let Some(b) = &self.backend {
            if !matches!(b.as_str(), "accent_user" | "wazo_user") {
                return Err(ApiError::invalid_field("backend", format!("Unknown backend: {b}")));
            }
        }
        let credentials = match (self.refresh_token, basic) {
            (Some(refresh_token), _) => {
                let Some(client_id) = self.client_id.clone() else {
                    return Err(ApiError::invalid_field(
                        "client_id",
                        "\"client_id\" must be specified when using a \"refresh_token\"",
                    ));
                };
                Credentials::Refresh {
                    refresh_token,
                    client_id,
                }
            }
            (None, Some((login, password))) => Credentials::Password { login, password },
            (None, None) => {
                return Err(ApiError::Legacy {
                    status: warp::http::StatusCode::UNAUTHORIZED,
                    message: "Authentication Failed".into(),
                })
            }
        };
        Ok(ValidTokenRequest {
            credentials,
            expiration,
            access_type,
            client_id: self.client_id,
        })
    }
}

/// POST /token/{t}/scopes/check body.
#[derive(Debug, Deserialize)]
pub struct ScopesCheck {
    pub scopes: Vec<String>,
    pub tenant_uuid: Option<Uuid>,
}

/// GET/HEAD /token/{t} query.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub scope: Option<String>,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub user_uuid: Uuid,
    pub mobile: bool,
}

#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub uuid: Uuid,
    pub client_id: String,
    pub user_uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub login: String,
    pub mobile: bool,
    pub created_at: f64,
    pub user_agent: String,
    pub remote_addr: String,
}

impl RefreshTokenRow {
    pub fn to_json(&self) -> Value {
        json!({
            "client_id": self.client_id,
            "created_at": crate::time::rfc3339(self.created_at),
            "mobile": self.mobile,
            "user_uuid": self.user_uuid,
            "tenant_uuid": self.tenant_uuid,
            "metadata": { "user_agent": self.user_agent, "remote_addr": self.remote_addr },
        })
    }
}
