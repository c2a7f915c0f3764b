//! confd's error body: a JSON array of strings such as
//! `["Input Error - field 'exten': ..."]` (the other services answer with an
//! object). The errors themselves are the shared [`ApiError`]; only their
//! rendering differs, here. Authentication failures keep the common object
//! body, as upstream's do.

use std::future::Future;

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use crate::api::error::ApiError;

/// confd's status and body for `err`; `None` for errors rendered as elsewhere.
pub fn confd_error(err: &ApiError) -> Option<(StatusCode, Vec<String>)> {
    let (status, messages) = match err {
        ApiError::InvalidData { details } => (StatusCode::BAD_REQUEST, field_messages(details)),
        ApiError::BadRequest { message, .. } => (StatusCode::BAD_REQUEST, vec![format!("Input Error - {message}")]),
        ApiError::NotFound { resource, id } => (
            StatusCode::NOT_FOUND,
            vec![format!(
                "Resource Error - {resource} was not found ('{resource}': {})",
                show_id(id)
            )],
        ),
        // Upstream's ResourceError (already exists, still associated...) is a 400.
        ApiError::Conflict { message, .. } => (StatusCode::BAD_REQUEST, vec![format!("Resource Error - {message}")]),
        ApiError::Forbidden { message, .. } => (StatusCode::FORBIDDEN, vec![format!("Resource Error - {message}")]),
        ApiError::Custom { status, message, .. } | ApiError::Resource { status, message, .. } => {
            (*status, vec![format!("Resource Error - {message}")])
        }
        ApiError::Unavailable(message) => (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![format!("Service Unavailable - {message}")],
        ),
        ApiError::PayloadTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["Input Error - Request body too large".into()],
        ),
        ApiError::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                vec!["Unexpected error: internal error".into()],
            )
        }
        ApiError::Routing { .. }
        | ApiError::Unauthorized { .. }
        | ApiError::UnauthorizedTenant { .. }
        | ApiError::Legacy { .. }
        | ApiError::TooManyRequests { .. } => return None,
    };
    Some((status, messages))
}

fn show_id(id: &str) -> String {
    if id.parse::<i64>().is_ok() {
        format!("{{'id': {id}}}")
    } else {
        format!("{{'uuid': '{id}'}}")
    }
}

/// `{"field": ["msg", ...]}` -> one `Input Error - field 'f': msg` per message.
fn field_messages(details: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(map) = details.as_object() {
        for (field, msgs) in map {
            let msgs: Vec<String> = match msgs {
                Value::Array(a) => a
                    .iter()
                    .map(|m| m.as_str().map(str::to_owned).unwrap_or_else(|| m.to_string()))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
            for m in msgs {
                if field == "_schema" {
                    out.push(format!("Input Error - {m}"));
                } else {
                    out.push(format!("Input Error - field '{field}': {m}"));
                }
            }
        }
    }
    if out.is_empty() {
        out.push("Input Error - invalid data".into());
    }
    out
}

pub fn into_response(err: ApiError) -> Response {
    match confd_error(&err) {
        Some((status, messages)) => {
            warp::reply::with_status(warp::reply::json(&json!(messages)), status).into_response()
        }
        None => err.into_response(),
    }
}

/// Runs a confd handler, rendering its error the confd way.
pub async fn respond<F>(fut: F) -> Response
where
    F: Future<Output = Result<Response, ApiError>> + Send,
{
    match fut.await {
        Ok(r) => r,
        Err(e) => into_response(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_arrays_of_strings() {
        let (s, m) = confd_error(&ApiError::invalid_field("exten", "Not a valid extension")).expect("confd");
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(m, vec!["Input Error - field 'exten': Not a valid extension"]);
        let (s, m) = confd_error(&ApiError::not_found("Context", "42")).expect("confd");
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            m,
            vec!["Resource Error - Context was not found ('Context': {'id': 42})"]
        );
        let (s, _) = confd_error(&ApiError::conflict("Context", "name", "Context already exists")).expect("confd");
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(confd_error(&ApiError::Unauthorized {
            invalid_token: None,
            required_access: None,
            reason: None
        })
        .is_none());
    }
}
