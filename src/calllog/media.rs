//! Recording media: `GET|DELETE /cdr/{cdr_id}/recordings/{recording_uuid}/media`,
//! `GET /users/me/cdr/{cdr_id}/recordings/{recording_uuid}/media` and the bulk
//! `DELETE /cdr/recordings/media`.
//!
//! A recording's file is named by the path stored with it (from Asterisk's MIXMONITOR CEL).
//! That path is never trusted: [`confine`] accepts it only inside the configured recordings
//! directory, after resolving `..` and symbolic links, so neither a forged CEL nor a link
//! planted in the directory can make accentd read or delete another file.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::cdr::model::{Recording, Visibility};
use super::errors;
use super::CallLogService;
use crate::api::body::{limited_bytes, parse_json_object};
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller, Scope};

/// Read buffer of a streamed file: the file never sits in memory whole.
const STREAM_CHUNK: usize = 64 * 1024;

/// Why a stored path cannot be used.
#[derive(Debug)]
pub enum FileError {
    /// Outside the directory it must be in (or not an absolute, plain path).
    Outside,
    NotFound,
    Denied,
    Other(io::Error),
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => FileError::NotFound,
            io::ErrorKind::PermissionDenied => FileError::Denied,
            _ => FileError::Other(e),
        }
    }
}

/// The real path of `stored` if it names a regular file inside `root`: the text must be an
/// absolute path under `root` without `.`/`..` parts, and its resolved form (links followed)
/// must still be under the resolved `root`.
pub async fn confine(root: &Path, stored: &str) -> Result<PathBuf, FileError> {
    let path = Path::new(stored);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !path.is_absolute() || !plain || !path.starts_with(root) || stored.contains('\0') {
        return Err(FileError::Outside);
    }
    let real_root = tokio::fs::canonicalize(root).await?;
    let real = tokio::fs::canonicalize(path).await?;
    if !real.starts_with(&real_root) || real == real_root {
        return Err(FileError::Outside);
    }
    if !tokio::fs::metadata(&real).await?.is_file() {
        return Err(FileError::NotFound);
    }
    Ok(real)
}

/// Removes a confined file; a file already gone is not an error.
pub async fn remove_confined(root: &Path, stored: &str) -> Result<(), FileError> {
    match confine(root, stored).await {
        Ok(real) => match tokio::fs::remove_file(&real).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        },
        Err(FileError::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A streamed download of a file already confined: `Content-Type`, `Content-Length` and an
/// attachment name.
pub async fn stream_file(real: &Path, content_type: &'static str, filename: &str) -> Result<Response, FileError> {
    let file = tokio::fs::File::open(real).await?;
    let len = file.metadata().await?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, STREAM_CHUNK);
    let mut resp = warp::reply::stream(stream).into_response();
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename={filename}")) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Marks recordings deleted (their path forgotten, as upstream).
pub fn mark_deleted(tx: &rusqlite::Transaction<'_>, uuids: &[Uuid]) -> Result<usize, ApiError> {
    let mut stmt = tx.prepare_cached("UPDATE call_log_recording SET path = NULL, deleted = 1 WHERE uuid = ?1")?;
    let mut n = 0;
    for uuid in uuids {
        n += stmt.execute([uuid.to_string()])?;
    }
    Ok(n)
}

impl CallLogService {
    /// A call log's recording, if the request sees the call log (and, for `me`, the user took
    /// part in it): 404 for an unknown or invisible call log, then for an unknown recording.
    async fn find_recording(
        &self,
        scope: &Scope,
        cdr_id: &str,
        recording: &str,
        user: Option<Uuid>,
    ) -> Result<(i64, Recording), ApiError> {
        let Ok(id) = cdr_id.parse::<i64>() else {
            return Err(errors::cdr_not_found(cdr_id));
        };
        let vis = Visibility {
            tenants: scope.tenants(true),
            user,
        };
        let log = self
            .store
            .read(move |conn| super::cdr::store::get(conn, &vis, id))
            .await?
            .ok_or_else(|| errors::cdr_not_found(cdr_id))?;
        let wanted = Uuid::parse_str(recording).ok();
        let found = log
            .recordings
            .into_iter()
            .find(|r| Some(r.uuid) == wanted)
            .ok_or_else(|| errors::recording_not_found(recording))?;
        Ok((id, found))
    }

    /// The WAV file of a recording, streamed.
    pub async fn recording_media(
        &self,
        scope: &Scope,
        cdr_id: &str,
        recording: &str,
        user: Option<Uuid>,
    ) -> Result<Response, ApiError> {
        let (id, rec) = self.find_recording(scope, cdr_id, recording, user).await?;
        let path = match (&rec.path, rec.media_deleted()) {
            (Some(path), false) => path.clone(),
            _ => return Err(errors::recording_media_not_found(rec.uuid)),
        };
        let real = confine(&self.config.recordings_dir, &path).await;
        let streamed = match real {
            Ok(real) => stream_file(&real, "audio/wav", &rec.filename(id)).await,
            Err(e) => Err(e),
        };
        streamed.map_err(|e| self.media_error(e, None, rec.uuid, &path))
    }

    /// Maps a file problem to upstream's errors (and logs it).
    fn media_error(&self, e: FileError, cdr_id: Option<i64>, uuid: Uuid, path: &str) -> ApiError {
        match e {
            FileError::NotFound => {
                tracing::error!(%uuid, path, "recording file not found");
                errors::recording_media_fs_not_found(uuid, path)
            }
            FileError::Outside => {
                tracing::warn!(
                    %uuid,
                    path,
                    dir = %self.config.recordings_dir.display(),
                    "recording path outside the recordings directory: refused"
                );
                errors::recording_media_permission_denied(cdr_id, uuid, path)
            }
            FileError::Denied => {
                tracing::error!(%uuid, path, "recording file: permission denied");
                errors::recording_media_permission_denied(cdr_id, uuid, path)
            }
            FileError::Other(e) => ApiError::Internal(format!("recording {uuid}: {e}")),
        }
    }

    /// Deletes recordings' files (already gone is fine) and marks them deleted. Stops at the
    /// first file that may not be deleted; the ones deleted before it are marked.
    async fn delete_media(&self, recordings: Vec<(i64, Recording)>, bulk: bool) -> Result<(), ApiError> {
        let mut done = Vec::new();
        let mut failure = None;
        for (cdr_id, rec) in recordings {
            if let Some(path) = rec.path.as_deref() {
                if let Err(e) = remove_confined(&self.config.recordings_dir, path).await {
                    failure = Some(self.media_error(e, bulk.then_some(cdr_id), rec.uuid, path));
                    break;
                }
            }
            done.push(rec.uuid);
        }
        if !done.is_empty() {
            self.store.write(move |tx| mark_deleted(tx, &done)).await?;
        }
        failure.map_or(Ok(()), Err)
    }

    pub async fn delete_recording_media(&self, scope: &Scope, cdr_id: &str, recording: &str) -> Result<(), ApiError> {
        let found = self.find_recording(scope, cdr_id, recording, None).await?;
        self.delete_media(vec![found], false).await
    }

    /// Bulk delete: every call log must be visible, or nothing is deleted.
    pub async fn delete_recordings_media(&self, scope: &Scope, cdr_ids: Vec<i64>) -> Result<(), ApiError> {
        let vis = Visibility {
            tenants: scope.tenants(true),
            user: None,
        };
        let logs = self
            .store
            .read(move |conn| {
                let mut logs = Vec::with_capacity(cdr_ids.len());
                for id in cdr_ids {
                    match super::cdr::store::get(conn, &vis, id)? {
                        Some(log) => logs.push(log),
                        None => return Err(errors::cdr_not_found(&id.to_string())),
                    }
                }
                Ok(logs)
            })
            .await?;
        let recordings = logs
            .into_iter()
            .flat_map(|log| {
                let id = log.id;
                log.recordings.into_iter().map(move |r| (id, r))
            })
            .collect();
        self.delete_media(recordings, true).await
    }
}

/// `DELETE /cdr/recordings/media` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkDelete {
    cdr_ids: Option<Vec<i64>>,
}

fn bulk_ids(bytes: &[u8]) -> Result<Vec<i64>, ApiError> {
    let body: BulkDelete = parse_json_object(bytes)?;
    match body.cdr_ids {
        None => Err(ApiError::invalid_field("cdr_ids", "Missing data for required field.")),
        Some(ids) if ids.is_empty() => Err(ApiError::invalid_field("cdr_ids", "Shorter than minimum length 1.")),
        Some(ids) => Ok(ids),
    }
}

fn media_acl(cdr_id: &str, recording: &str, action: &str) -> String {
    format!(
        "call-logd.cdr.{}.recordings.{}.media.{action}",
        escape_param(cdr_id),
        escape_param(recording)
    )
}

pub fn routes(svc: Arc<CallLogService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let limit = svc.auth.config.http.body_limit;

    let s = svc.clone();
    let get = warp::path!("cdr" / String / "recordings" / String / "media")
        .and(warp::get())
        .and(authed.clone())
        .then(move |cdr_id: String, rec: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&media_acl(&cdr_id, &rec, "read"))?;
                svc.recording_media(&scope, &cdr_id, &rec, None).await
            })
        });

    let s = svc.clone();
    let delete = warp::path!("cdr" / String / "recordings" / String / "media")
        .and(warp::delete())
        .and(authed.clone())
        .then(move |cdr_id: String, rec: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&media_acl(&cdr_id, &rec, "delete"))?;
                svc.delete_recording_media(&scope, &cdr_id, &rec).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc.clone();
    let me = warp::path!("users" / "me" / "cdr" / String / "recordings" / String / "media")
        .and(warp::get())
        .and(authed.clone())
        .then(move |cdr_id: String, rec: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "call-logd.users.me.cdr.{}.recordings.{}.media.read",
                    escape_param(&cdr_id),
                    escape_param(&rec)
                ))?;
                let user = caller.user_uuid();
                svc.recording_media(&scope, &cdr_id, &rec, Some(user)).await
            })
        });

    let s = svc;
    let bulk = warp::path!("cdr" / "recordings" / "media")
        .and(warp::delete())
        .and(authed)
        .and(limited_bytes(limit))
        .then(move |caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("call-logd.cdr.recordings.media.delete")?;
                let ids = bulk_ids(&body)?;
                svc.delete_recordings_media(&scope, ids).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    get.or(delete).unify().or(me).unify().or(bulk).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paths_outside_the_directory_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("rec");
        std::fs::create_dir_all(root.join("t/monitor")).expect("mkdir");
        let inside = root.join("t/monitor/a.wav");
        std::fs::write(&inside, b"RIFF").expect("write");
        let secret = dir.path().join("secret.txt");
        std::fs::write(&secret, b"secret").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&secret, root.join("t/monitor/link.wav")).expect("symlink");
        let r = root.display().to_string();

        assert!(confine(&root, &format!("{r}/t/monitor/a.wav")).await.is_ok());
        // `.` parts are harmless (the path stays inside).
        assert!(confine(&root, &format!("{r}/./t/monitor/a.wav")).await.is_ok());
        for bad in [
            format!("{r}/../secret.txt"),
            format!("{r}/t/monitor/../../../secret.txt"),
            "t/monitor/a.wav".to_string(),
            secret.display().to_string(),
            format!("{r}-other/x.wav"),
            r.clone(),
            format!("{r}/t/monitor/link.wav"),
        ] {
            assert!(matches!(confine(&root, &bad).await, Err(FileError::Outside)), "{bad}");
            assert!(
                matches!(remove_confined(&root, &bad).await, Err(FileError::Outside)),
                "{bad}"
            );
        }
        assert!(secret.exists(), "never deleted");
        assert!(matches!(
            confine(&root, &format!("{r}/t/monitor/missing.wav")).await,
            Err(FileError::NotFound)
        ));
        assert!(matches!(
            confine(&root, &format!("{r}/t/monitor")).await,
            Err(FileError::NotFound)
        ));
        assert!(remove_confined(&root, &format!("{r}/t/monitor/missing.wav"))
            .await
            .is_ok());
    }

    #[test]
    fn bulk_bodies() {
        assert_eq!(bulk_ids(br#"{"cdr_ids": [1, 2]}"#).ok(), Some(vec![1, 2]));
        for bad in [
            &br#"{}"#[..],
            br#"{"cdr_ids": []}"#,
            br#"{"cdr_ids": ["x"]}"#,
            br#"{"cdr_ids": [1], "other": 1}"#,
            b"[1]",
            b"",
        ] {
            assert_eq!(
                bulk_ids(bad).map_err(|e| e.status()).err(),
                Some(StatusCode::BAD_REQUEST)
            );
        }
    }
}
