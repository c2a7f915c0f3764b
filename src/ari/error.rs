//! The errors of the ARI REST client.
//!
//! Asterisk answers every failed request with a status code and a JSON body
//! `{"message": "..."}` (e.g. `404 {"message": "Channel not found"}`,
//! `422 {"message": "Event source was not subscribed to"}` in the
//! recordings). The status codes the callers branch on get a variant of their
//! own; the message is kept in every variant because it is the only thing that
//! tells `Channel not found` from `Resource not found` (no such route).

/// What an ARI request can fail with. Never carries a secret: URLs hold no
/// credentials (they travel in the `Authorization` header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AriError {
    /// 404: the channel, bridge, playback… does not exist (any more), or the
    /// route does not exist in this Asterisk (`Resource not found`).
    #[error("ARI: not found: {message}")]
    NotFound { message: String },
    /// 409: e.g. `Channel not in a Stasis application`, a duplicate id.
    #[error("ARI: conflict: {message}")]
    Conflict { message: String },
    /// 422: e.g. `Event source was not subscribed to`, channel not in Stasis.
    #[error("ARI: unprocessable: {message}")]
    UnprocessableEntity { message: String },
    /// 400: a missing or invalid parameter.
    #[error("ARI: bad request: {message}")]
    BadRequest { message: String },
    /// 401 (or 403): wrong ARI user or password.
    #[error("ARI: authentication failed ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// The Asterisk module serving this resource is not loaded (its routes
    /// answer `404 Resource not found`): `res_ari_mailboxes` is not built in
    /// the recorded Asterisk, for one.
    #[error("ARI: {resource} not available in this Asterisk ({module} not loaded)")]
    Unsupported {
        resource: &'static str,
        module: &'static str,
    },
    /// Any other status (412 `Channel in invalid state`, 500, 501, 503…).
    #[error("ARI: HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// No answer: connection refused, reset, timeout, TLS failure.
    #[error("ARI: cannot reach Asterisk: {0}")]
    Transport(String),
    /// A 2xx answer whose body is not the model the spec announces.
    #[error("ARI: unexpected response body: {0}")]
    Decode(String),
    /// The configuration cannot produce a client (e.g. an invalid URL).
    #[error("ARI: invalid configuration: {0}")]
    Config(String),
}

impl AriError {
    /// Builds the error of a non-2xx answer from its status and raw body.
    pub fn from_response(status: u16, body: &[u8]) -> AriError {
        let message = error_message(status, body);
        match status {
            400 => AriError::BadRequest { message },
            401 | 403 => AriError::Unauthorized { status, message },
            404 => AriError::NotFound { message },
            409 => AriError::Conflict { message },
            422 => AriError::UnprocessableEntity { message },
            _ => AriError::Http { status, message },
        }
    }

    /// The HTTP status, for the errors that have one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AriError::BadRequest { .. } => Some(400),
            AriError::Unauthorized { status, .. } => Some(*status),
            AriError::NotFound { .. } | AriError::Unsupported { .. } => Some(404),
            AriError::Conflict { .. } => Some(409),
            AriError::UnprocessableEntity { .. } => Some(422),
            AriError::Http { status, .. } => Some(*status),
            AriError::Transport(_) | AriError::Decode(_) | AriError::Config(_) => None,
        }
    }

    /// Asterisk's message (or ours, for the errors without an answer).
    pub fn message(&self) -> String {
        match self {
            AriError::NotFound { message }
            | AriError::Conflict { message }
            | AriError::UnprocessableEntity { message }
            | AriError::BadRequest { message }
            | AriError::Unauthorized { message, .. }
            | AriError::Http { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// True for a 404 whose message says the route itself is unknown, which
    /// is how Asterisk answers for a resource whose module is not loaded.
    pub fn is_unknown_route(&self) -> bool {
        matches!(self, AriError::NotFound { message } if message == UNKNOWN_ROUTE_MESSAGE)
    }
}

/// The message of Asterisk's 404 for a path no loaded module serves
/// (recorded: `GET /ari/mailboxes` without `res_ari_mailboxes`).
pub const UNKNOWN_ROUTE_MESSAGE: &str = "Resource not found";

/// Longest piece of a non-JSON error body kept in an error message.
const MAX_TEXT_MESSAGE: usize = 200;

/// The `message` of Asterisk's JSON error body; a short excerpt of the body
/// when it is not that JSON (a proxy's HTML page…); the canonical reason of
/// the status when the body is empty.
fn error_message(status: u16, body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = value.get("message").and_then(|m| m.as_str()) {
            return m.to_owned();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_owned();
    }
    let mut end = text.len().min(MAX_TEXT_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses_and_reads_asterisk_message() {
        let e = AriError::from_response(404, br#"{"message": "Channel not found"}"#);
        assert_eq!(
            e,
            AriError::NotFound {
                message: "Channel not found".into()
            }
        );
        assert!(!e.is_unknown_route());
        assert!(AriError::from_response(404, br#"{"message": "Resource not found"}"#).is_unknown_route());
        assert!(matches!(
            AriError::from_response(422, br#"{"message":"Event source was not subscribed to"}"#),
            AriError::UnprocessableEntity { message } if message == "Event source was not subscribed to"
        ));
        assert!(matches!(AriError::from_response(409, b""), AriError::Conflict { message } if message == "Conflict"));
        assert!(matches!(
            AriError::from_response(401, br#"{"message": "Authentication required"}"#),
            AriError::Unauthorized { status: 401, .. }
        ));
        assert!(matches!(
            AriError::from_response(412, br#"{"message": "Channel in invalid state"}"#),
            AriError::Http { status: 412, .. }
        ));
        assert_eq!(AriError::from_response(400, b"x").status(), Some(400));
    }

    #[test]
    fn non_json_bodies_are_cut_short_on_a_char_boundary() {
        let body = "é".repeat(300);
        let e = AriError::from_response(502, body.as_bytes());
        let AriError::Http { message, .. } = e else {
            panic!("expected Http")
        };
        assert!(message.len() <= MAX_TEXT_MESSAGE && !message.is_empty());
    }
}
