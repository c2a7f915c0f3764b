//! call-logd's own errors, with upstream's fixed ids, messages, statuses and details (the
//! `/cdr` media, exports and retention resources answer exactly these).

use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use crate::api::error::ApiError;

fn custom(status: StatusCode, error_id: &'static str, message: &str, details: Value) -> ApiError {
    ApiError::Custom {
        status,
        error_id,
        message: message.into(),
        details,
    }
}

/// A path id as upstream shows it: the integer when it is one.
fn cdr_id_value(id: &str) -> Value {
    id.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(id))
}

/// 404: unknown call log, or one of a tenant the request does not see.
pub fn cdr_not_found(cdr_id: &str) -> ApiError {
    custom(
        StatusCode::NOT_FOUND,
        "cdr-not-found-with-given-id",
        "No CDR found matching this ID",
        json!({ "cdr_id": cdr_id_value(cdr_id) }),
    )
}

/// 404: the call log has no recording with this uuid.
pub fn recording_not_found(recording_uuid: &str) -> ApiError {
    custom(
        StatusCode::NOT_FOUND,
        "recording-not-found",
        "No recording found",
        json!({ "recording_uuid": recording_uuid }),
    )
}

/// 400 (as upstream): the recording exists but its media was deleted.
pub fn recording_media_not_found(recording_uuid: Uuid) -> ApiError {
    custom(
        StatusCode::BAD_REQUEST,
        "recording-media-not-found",
        "No recording media found",
        json!({ "recording_uuid": recording_uuid }),
    )
}

/// 500 (as upstream): the recording's file is not on disk.
pub fn recording_media_fs_not_found(recording_uuid: Uuid, path: &str) -> ApiError {
    custom(
        StatusCode::INTERNAL_SERVER_ERROR,
        "recording-media-filesystem-not-found",
        "Recording media: not found on filesystem",
        json!({ "recording_uuid": recording_uuid, "recording_path": path }),
    )
}

/// 500: the file may not be read or deleted, by the system or because it lies outside the
/// recordings directory (a path accentd refuses to follow).
pub fn recording_media_permission_denied(cdr_id: Option<i64>, recording_uuid: Uuid, path: &str) -> ApiError {
    let mut details = json!({ "recording_uuid": recording_uuid, "recording_path": path });
    if let (Some(id), Some(obj)) = (cdr_id, details.as_object_mut()) {
        obj.insert("cdr_id".into(), json!(id));
    }
    custom(
        StatusCode::INTERNAL_SERVER_ERROR,
        "recording-media-permission-denied",
        "Recording media: permission denied",
        details,
    )
}

/// 400: an export request that selects no recording file.
pub fn no_recording_to_export() -> ApiError {
    custom(
        StatusCode::BAD_REQUEST,
        "no-recording-to-export",
        "No recording to export",
        json!({}),
    )
}

pub fn export_not_found(export_uuid: &str) -> ApiError {
    custom(
        StatusCode::NOT_FOUND,
        "export-not-found-with-given-uuid",
        "No export found matching this UUID",
        json!({ "export_uuid": export_uuid }),
    )
}

/// 202 with an error body, as upstream: the ZIP is still being written.
pub fn export_not_done_yet(export_uuid: Uuid) -> ApiError {
    custom(
        StatusCode::ACCEPTED,
        "export-not-done-yet",
        "Export: not done yet",
        json!({ "export_uuid": export_uuid }),
    )
}

/// 500: the export failed (a recording file was missing or unreadable).
pub fn export_error(export_uuid: Uuid) -> ApiError {
    custom(
        StatusCode::INTERNAL_SERVER_ERROR,
        "export-error",
        "Export: an error occurred while creating it",
        json!({ "export_uuid": export_uuid }),
    )
}

pub fn export_fs_not_found(export_uuid: Uuid, path: &str) -> ApiError {
    custom(
        StatusCode::INTERNAL_SERVER_ERROR,
        "export-filesystem-not-found",
        "Export: not found on filesystem",
        json!({ "export_uuid": export_uuid, "export_path": path }),
    )
}

pub fn export_permission_denied(export_uuid: Uuid, path: &str) -> ApiError {
    custom(
        StatusCode::INTERNAL_SERVER_ERROR,
        "export-permission-denied",
        "Export: permission denied",
        json!({ "export_uuid": export_uuid, "export_path": path }),
    )
}
