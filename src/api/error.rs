//! The one error type of the HTTP API and its mapping to status codes and
//! upstream's body shapes. Every handler returns `Result<_, ApiError>`; warp
//! rejections (unknown route, wrong method, body too large…) are mapped here
//! too, so no client ever sees warp's plain-text errors.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404/405 produced by routing itself.
    #[error("{message}")]
    Routing {
        status: StatusCode,
        error_id: &'static str,
        message: &'static str,
    },
    /// Body or query failed validation: 400 `invalid-data`.
    #[error("Sent data is invalid")]
    InvalidData { details: Value },
    /// Any other 400 with its own error id.
    #[error("{message}")]
    BadRequest {
        error_id: &'static str,
        message: String,
        details: Value,
    },
    /// Missing, unknown or expired token, or the token lacks the ACL.
    #[error("Unauthorized")]
    Unauthorized {
        invalid_token: Option<String>,
        required_access: Option<String>,
        reason: Option<&'static str>,
    },
    /// The `Accent-Tenant` header names a tenant the token may not act in.
    #[error("Unauthorized tenant")]
    UnauthorizedTenant { tenant_uuid: String },
    #[error("No such {resource}: \"{id}\"")]
    NotFound { resource: &'static str, id: String },
    #[error("{message}")]
    Conflict {
        resource: &'static str,
        message: String,
        details: Value,
    },
    #[error("{message}")]
    Forbidden { error_id: &'static str, message: String },
    /// The legacy accent-auth token-endpoint body: `{"reason":[..],"timestamp":[..],"status_code":n}`.
    #[error("{message}")]
    Legacy { status: StatusCode, message: String },
    #[error("Too many requests")]
    TooManyRequests { retry_after: u64, legacy: bool },
    #[error("Request body too large")]
    PayloadTooLarge,
    /// An error with its own status, id and details, for the services whose errors have
    /// fixed ids upstream (call-logd's `cdr-not-found-with-given-id`, `export-not-done-yet`…).
    #[error("{message}")]
    Custom {
        status: StatusCode,
        error_id: &'static str,
        message: String,
        details: Value,
    },
    /// Like `Custom`, for upstream errors whose body also names their `resource` (chatd's
    /// `unknown-room`, `duplicate-user`).
    #[error("{message}")]
    Resource {
        status: StatusCode,
        error_id: &'static str,
        message: String,
        details: Value,
        resource: &'static str,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl warp::reject::Reject for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(format!("database error: {e}"))
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl ApiError {
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidData {
            details: json!({ field: [message.into()] }),
        }
    }

    /// No route for the path (routes that dispatch on the path themselves use it too, so
    /// their answer is the one warp's own routing gives).
    pub fn route_not_found() -> Self {
        ApiError::Routing {
            status: StatusCode::NOT_FOUND,
            error_id: "not-found",
            message: "Not found",
        }
    }

    /// The path exists, not with this method.
    pub fn method_not_allowed() -> Self {
        ApiError::Routing {
            status: StatusCode::METHOD_NOT_ALLOWED,
            error_id: "method-not-allowed",
            message: "Method not allowed",
        }
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        ApiError::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn conflict(resource: &'static str, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Conflict {
            resource,
            details: json!({ field: message.clone() }),
            message,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidData { .. } | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } | ApiError::UnauthorizedTenant { .. } => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Legacy { status, .. } | ApiError::Routing { status, .. } => *status,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Custom { status, .. } | ApiError::Resource { status, .. } => *status,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body in upstream's shape for this error.
    pub fn body(&self) -> Value {
        let timestamp = now_epoch();
        let standard = |error_id: &str, message: String, details: Value| json!({ "message": message, "error_id": error_id, "details": details, "timestamp": timestamp });
        match self {
            ApiError::InvalidData { details } => standard("invalid-data", self.to_string(), details.clone()),
            ApiError::BadRequest {
                error_id,
                message,
                details,
            } => standard(error_id, message.clone(), details.clone()),
            ApiError::Unauthorized {
                invalid_token,
                required_access,
                reason,
            } => {
                let mut details = serde_json::Map::new();
                if let Some(t) = invalid_token {
                    details.insert("invalid_token".into(), json!(t));
                }
                if let Some(a) = required_access {
                    details.insert("required_access".into(), json!(a));
                }
                if let Some(r) = reason {
                    details.insert("reason".into(), json!(r));
                }
                standard("unauthorized", "Unauthorized".into(), Value::Object(details))
            }
            ApiError::UnauthorizedTenant { tenant_uuid } => standard(
                "unauthorized-tenant",
                format!("Unauthorized tenant: {tenant_uuid}"),
                json!({ "tenant_uuid": tenant_uuid }),
            ),
            ApiError::NotFound { resource, id } => {
                let mut body = standard(
                    &format!("unknown-{}", singular(resource)),
                    self.to_string(),
                    json!({ "uuid": id }),
                );
                body["resource"] = json!(resource);
                body
            }
            ApiError::Conflict {
                resource,
                message,
                details,
            } => {
                let mut body = standard("conflict", message.clone(), details.clone());
                body["resource"] = json!(resource);
                body
            }
            ApiError::Forbidden { error_id, message } => standard(error_id, message.clone(), json!({})),
            ApiError::Legacy { status, message } => legacy_body(*status, message),
            ApiError::Routing { error_id, message, .. } => standard(error_id, (*message).into(), json!({})),
            ApiError::TooManyRequests { legacy: true, .. } => {
                legacy_body(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
            }
            ApiError::TooManyRequests {
                retry_after,
                legacy: false,
            } => standard(
                "too-many-requests",
                self.to_string(),
                json!({ "retry_after": retry_after }),
            ),
            ApiError::PayloadTooLarge => standard("payload-too-large", self.to_string(), json!({})),
            ApiError::Custom {
                error_id,
                message,
                details,
                ..
            } => standard(error_id, message.clone(), details.clone()),
            ApiError::Resource {
                error_id,
                message,
                details,
                resource,
                ..
            } => {
                let mut body = standard(error_id, message.clone(), details.clone());
                body["resource"] = json!(resource);
                body
            }
            ApiError::Unavailable(message) => standard("service-unavailable", message.clone(), json!({})),
            // Never leak internals to clients; the cause is logged.
            ApiError::Internal(_) => standard("internal-error", "Internal server error".into(), json!({})),
        }
    }

    pub fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status();
        let mut response = warp::reply::with_status(warp::reply::json(&self.body()), status).into_response();
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// `users` -> `user`, `policies` -> `policy`: upstream's `unknown-<x>` ids.
fn singular(resource: &str) -> String {
    match resource.strip_suffix("ies") {
        Some(stem) => format!("{stem}y"),
        None => resource.strip_suffix('s').unwrap_or(resource).to_string(),
    }
}

fn legacy_body(status: StatusCode, message: &str) -> Value {
    json!({ "reason": [message], "timestamp": [now_epoch()], "status_code": status.as_u16() })
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        ApiError::into_response(self)
    }
}

/// Turns every rejection into a JSON error. Installed once, at the top of the
/// route tree.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(rejection_to_error(&rejection).into_response())
}

pub fn rejection_to_error(rejection: &Rejection) -> ApiError {
    if let Some(e) = rejection.find::<ApiError>() {
        return e.clone();
    }
    if rejection.is_not_found() {
        return ApiError::route_not_found();
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return ApiError::PayloadTooLarge;
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::method_not_allowed();
    }
    if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        return ApiError::InvalidData {
            details: json!({ "query": [e.to_string()] }),
        };
    }
    if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        return ApiError::InvalidData {
            details: json!({ e.name(): ["missing header"] }),
        };
    }
    if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        return ApiError::InvalidData {
            details: json!({ e.name(): ["invalid header"] }),
        };
    }
    if rejection.find::<warp::reject::LengthRequired>().is_some() {
        return ApiError::BadRequest {
            error_id: "length-required",
            message: "Content-Length required".into(),
            details: json!({}),
        };
    }
    if rejection.find::<warp::reject::UnsupportedMediaType>().is_some() {
        return ApiError::BadRequest {
            error_id: "unsupported-media-type",
            message: "Unsupported media type".into(),
            details: json!({}),
        };
    }
    if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        return ApiError::InvalidData {
            details: json!({ "_body": [e.to_string()] }),
        };
    }
    ApiError::Internal(format!("unhandled rejection: {rejection:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_error_ids_are_singular() {
        for (resource, id) in [
            ("users", "unknown-user"),
            ("policies", "unknown-policy"),
            ("tenants", "unknown-tenant"),
        ] {
            let body = ApiError::not_found(resource, "x").body();
            assert_eq!(body["error_id"], id);
            assert_eq!(body["resource"], resource);
        }
    }
}
