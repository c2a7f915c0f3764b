//! chatd's errors, with upstream's ids, messages and `resource`.

use serde_json::json;
use warp::http::StatusCode;

use crate::api::error::ApiError;

/// 404 for a room that does not exist, is another tenant's, or does not have the caller
/// as a member: the three are indistinguishable on purpose.
pub fn unknown_room(room_uuid: &str) -> ApiError {
    ApiError::Resource {
        status: StatusCode::NOT_FOUND,
        error_id: "unknown-room",
        message: format!("No such room: \"{room_uuid}\""),
        details: json!({ "uuid": room_uuid }),
        resource: "rooms",
    }
}

/// 400: the same user twice in a room's `users`.
pub fn duplicate_user() -> ApiError {
    ApiError::Resource {
        status: StatusCode::BAD_REQUEST,
        error_id: "duplicate-user",
        message: "Duplicate user detected".into(),
        details: json!({}),
        resource: "rooms",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_the_resource() {
        let body = unknown_room("abc").body();
        assert_eq!(body["error_id"], "unknown-room");
        assert_eq!(body["message"], "No such room: \"abc\"");
        assert_eq!(body["details"], json!({"uuid": "abc"}));
        assert_eq!(body["resource"], "rooms");
        assert_eq!(unknown_room("x").status(), StatusCode::NOT_FOUND);
        let body = duplicate_user().body();
        assert_eq!(body["error_id"], "duplicate-user");
        assert_eq!(body["resource"], "rooms");
    }
}
