//! chatd's errors, with upstream's ids, messages and `resource`.

use serde_json::json;
use warp::http::StatusCode;

use crate::api::error::ApiError;

/// Upstream's 404 for one missing thing: `No such <what>: "<uuid>"`, the uuid in `details`.
fn no_such(error_id: &'static str, what: &str, uuid: &str, resource: &'static str) -> ApiError {
    ApiError::Resource {
        status: StatusCode::NOT_FOUND,
        error_id,
        message: format!("No such {what}: \"{uuid}\""),
        details: json!({ "uuid": uuid }),
        resource,
    }
}

/// 404 for a room that does not exist, is another tenant's, or does not have the caller
/// as a member: the three are indistinguishable on purpose.
pub fn unknown_room(room_uuid: &str) -> ApiError {
    no_such("unknown-room", "room", room_uuid, "rooms")
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

/// 404 for a user that is not a PBX user of a tenant the request sees (presences): another
/// tenant's user is indistinguishable from a missing one.
pub fn unknown_user(user_uuid: &str) -> ApiError {
    no_such("unknown-user", "user", user_uuid, "users")
}

/// 404 for a presence list filtered on users some of which the request cannot see.
pub fn unknown_users(user_uuids: &[String]) -> ApiError {
    let quoted: Vec<String> = user_uuids.iter().map(|u| format!("\"{u}\"")).collect();
    ApiError::Resource {
        status: StatusCode::NOT_FOUND,
        error_id: "unknown-users",
        message: format!("No such users: {}", quoted.join(", ")),
        details: json!({ "uuids": user_uuids }),
        resource: "users",
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

    #[test]
    fn unknown_users_name_them() {
        let err = unknown_user("u1");
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert_eq!(err.body()["message"], "No such user: \"u1\"");
        assert_eq!(err.body()["resource"], "users");
        let err = unknown_users(&["a".into(), "b".into()]);
        assert_eq!(err.body()["error_id"], "unknown-users");
        assert_eq!(err.body()["message"], "No such users: \"a\", \"b\"");
        assert_eq!(err.body()["details"], json!({"uuids": ["a", "b"]}));
    }
}
