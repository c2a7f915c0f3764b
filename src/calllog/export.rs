//! Recording exports: `POST /cdr/recordings/media/export` starts a background task that
//! writes the selected recordings into one ZIP file (`<data_dir>/exports/<uuid>.zip`, entries
//! `<cdr_id>/<recording filename>`); `GET /exports/{uuid}` tells its status
//! (`pending` → `processing` → `finished` | `error`) and `GET /exports/{uuid}/download`
//! streams it. Each status change is published as `call_logd_export_created` /
//! `call_logd_export_updated`. Exports cut short by a stop are marked `error` at the next start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::header::LOCATION;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::cdr::model::{iso, CdrQuery, Recording, Visibility, FILENAME_TIME};
use super::errors;
use super::media::{confine, stream_file, FileError};
use super::CallLogService;
use crate::api::body::{limited_bytes, parse_json_object, raw_query};
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller, Scope};
use crate::bus::EventSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    Pending,
    Processing,
    Finished,
    Deleted,
    Error,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Pending => "pending",
            ExportStatus::Processing => "processing",
            ExportStatus::Finished => "finished",
            ExportStatus::Deleted => "deleted",
            ExportStatus::Error => "error",
        }
    }

    fn parse(text: &str) -> ExportStatus {
        match text {
            "pending" => ExportStatus::Pending,
            "processing" => ExportStatus::Processing,
            "finished" => ExportStatus::Finished,
            "deleted" => ExportStatus::Deleted,
            _ => ExportStatus::Error,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub user_uuid: Uuid,
    pub requested_at_us: i64,
    pub status: ExportStatus,
    pub path: Option<String>,
}

impl Export {
    /// Upstream's download name: `<requested, UTC, %Y-%m-%dT%H_%M_%S>UTC-<uuid>.zip`.
    pub fn filename(&self) -> String {
        let at = OffsetDateTime::from_unix_timestamp(self.requested_at_us.div_euclid(1_000_000))
            .ok()
            .and_then(|t| t.format(FILENAME_TIME).ok())
            .unwrap_or_default();
        format!("{at}UTC-{}.zip", self.uuid)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "uuid": self.uuid,
            "tenant_uuid": self.tenant_uuid,
            "user_uuid": self.user_uuid,
            "requested_at": iso(self.requested_at_us),
            "filename": self.filename(),
            "status": self.status.as_str(),
        })
    }
}

// ---- store ----

fn uuid_of(text: String) -> Uuid {
    Uuid::parse_str(&text).unwrap_or_default()
}

fn insert(tx: &rusqlite::Transaction<'_>, e: &Export) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO call_log_export (uuid, tenant_uuid, user_uuid, requested_at_us, status, path)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            e.uuid.to_string(),
            e.tenant_uuid.to_string(),
            e.user_uuid.to_string(),
            e.requested_at_us,
            e.status.as_str(),
            e.path
        ],
    )?;
    Ok(())
}

fn set_status(
    tx: &rusqlite::Transaction<'_>,
    uuid: Uuid,
    status: ExportStatus,
    path: Option<&str>,
) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE call_log_export SET status = ?2, path = ?3 WHERE uuid = ?1",
        params![uuid.to_string(), status.as_str(), path],
    )?;
    Ok(())
}

const COLUMNS: &str = "uuid, tenant_uuid, user_uuid, requested_at_us, status, path";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Export> {
    let status: String = r.get(4)?;
    Ok(Export {
        uuid: uuid_of(r.get(0)?),
        tenant_uuid: uuid_of(r.get(1)?),
        user_uuid: uuid_of(r.get(2)?),
        requested_at_us: r.get(3)?,
        status: ExportStatus::parse(&status),
        path: r.get(5)?,
    })
}

/// One export, if one of `tenants` owns it.
pub fn get(conn: &Connection, tenants: &[Uuid], uuid: Uuid) -> Result<Option<Export>, ApiError> {
    let export = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM call_log_export WHERE uuid = ?1"),
            [uuid.to_string()],
            from_row,
        )
        .optional()?;
    Ok(export.filter(|e| tenants.contains(&e.tenant_uuid)))
}

/// The exports requested before `before_us`: of `tenant`, or (`None`) of every tenant but
/// `except`.
pub fn requested_before(
    conn: &Connection,
    tenant: Option<Uuid>,
    except: &[Uuid],
    before_us: i64,
) -> Result<Vec<Export>, ApiError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM call_log_export WHERE requested_at_us < ?1
         AND (?2 IS NULL OR tenant_uuid = ?2)
         AND (?2 IS NOT NULL OR tenant_uuid NOT IN (SELECT value FROM json_each(?3)))"
    ))?;
    let except = serde_json::to_string(&except.iter().map(Uuid::to_string).collect::<Vec<_>>())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let rows = stmt
        .query_map(params![before_us, tenant.map(|t| t.to_string()), except], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Forgets exports (their files are removed first).
pub fn delete(tx: &rusqlite::Transaction<'_>, uuids: &[Uuid]) -> Result<usize, ApiError> {
    let mut stmt = tx.prepare_cached("DELETE FROM call_log_export WHERE uuid = ?1")?;
    let mut n = 0;
    for u in uuids {
        n += stmt.execute([u.to_string()])?;
    }
    Ok(n)
}

// ---- writing the ZIP ----

/// Writes `files` (entry name, real path) into `dest` through a `.part` file renamed at the
/// end, so a half-written archive is never served. Each file is copied in chunks.
fn write_zip(dest: &Path, files: &[(String, PathBuf)]) -> std::io::Result<()> {
    use zip::write::SimpleFileOptions;
    let part = dest.with_extension("zip.part");
    let result = (|| {
        let out = std::fs::File::create(&part)?;
        let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(out));
        for (name, real) in files {
            let mut input = std::fs::File::open(real)?;
            let big = input.metadata()?.len() >= u64::from(u32::MAX);
            let options = SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(big);
            zip.start_file(name.as_str(), options).map_err(std::io::Error::other)?;
            std::io::copy(&mut input, &mut zip)?;
        }
        let mut out = zip.finish().map_err(std::io::Error::other)?;
        out.flush()?;
        std::fs::rename(&part, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

// ---- service ----

impl CallLogService {
    /// Where export files go: `<data_dir>/exports`.
    pub fn exports_dir(&self) -> &Path {
        &self.exports_dir
    }

    fn publish_export(&self, name: &str, routing_key: &str, export: &Export) {
        self.bus
            .publish(EventSpec::new(name, routing_key, export.to_json()).tenant(export.tenant_uuid));
    }

    async fn update_export(&self, export: &mut Export, status: ExportStatus, path: Option<String>) {
        export.status = status;
        export.path = path;
        let (uuid, path) = (export.uuid, export.path.clone());
        if let Err(e) = self
            .store
            .write(move |tx| set_status(tx, uuid, status, path.as_deref()))
            .await
        {
            tracing::error!(%uuid, error = %e, "export status not stored");
        }
        self.publish_export("call_logd_export_updated", "call_logd.export.updated", export);
    }

    /// Starts an export of the recordings the filters (and `cdr_ids`, when not empty) select;
    /// 400 `no-recording-to-export` when there is none.
    pub async fn create_export(
        self: &Arc<Self>,
        scope: &Scope,
        q: CdrQuery,
        cdr_ids: Vec<i64>,
        email: Option<lettre::Address>,
    ) -> Result<Export, ApiError> {
        let vis = Visibility {
            tenants: scope.tenants(q.recurse),
            user: None,
        };
        let ids = (!cdr_ids.is_empty()).then_some(cdr_ids);
        let recordings = self
            .store
            .read(move |conn| super::cdr::store::recordings_matching(conn, &vis, &q, ids.as_deref()))
            .await?;
        if recordings.is_empty() {
            return Err(errors::no_recording_to_export());
        }
        let export = Export {
            uuid: Uuid::new_v4(),
            tenant_uuid: scope.tenant(),
            user_uuid: scope.caller().user_uuid(),
            requested_at_us: (crate::time::now_epoch() * 1_000_000.0) as i64,
            status: ExportStatus::Pending,
            path: None,
        };
        let row = export.clone();
        self.store.write(move |tx| insert(tx, &row)).await?;
        self.publish_export("call_logd_export_created", "call_logd.export.created", &export);
        let svc = self.clone();
        let task = export.clone();
        tokio::spawn(async move {
            let done = svc.run_export(task, recordings).await;
            if let (Some(to), Some(export)) = (email, done) {
                svc.mail_export(to, &export).await;
            }
        });
        Ok(export)
    }

    /// Tells the requester where to download a finished export. A mail that cannot go out is
    /// logged: the export itself stays available through the API.
    async fn mail_export(&self, to: lettre::Address, export: &Export) {
        let Some(mailer) = &self.mailer else {
            tracing::warn!(export = %export.uuid, "export mail asked for, but no [smtp] host is configured");
            return;
        };
        let link = format!(
            "{}/api/call-logd/1.0/exports/{}/download",
            self.auth.config.public_url(),
            export.uuid
        );
        let mail = crate::mail::Mail {
            to,
            subject: "Your call recordings export is ready".into(),
            body: format!(
                "The call recordings export you asked for is ready ({}).\n\n\
                 Download it (with your usual credentials, as an X-Auth-Token header or a\n\
                 ?token= parameter) from:\n\n{link}\n",
                export.filename()
            ),
        };
        match mailer.send(mail).await {
            Ok(()) => tracing::info!(export = %export.uuid, "export mail sent"),
            Err(e) => tracing::error!(export = %export.uuid, error = %e, "export mail not sent"),
        }
    }

    /// The export task: confine every file, write the ZIP off the runtime, record the result.
    /// Returns the export when it finished.
    async fn run_export(&self, mut export: Export, recordings: Vec<(i64, Recording)>) -> Option<Export> {
        self.update_export(&mut export, ExportStatus::Processing, None).await;
        let mut files = Vec::with_capacity(recordings.len());
        for (cdr_id, rec) in &recordings {
            let Some(path) = rec.path.as_deref() else { continue };
            match confine(&self.config.recordings_dir, path).await {
                Ok(real) => files.push((format!("{cdr_id}/{}", rec.filename(*cdr_id)), real)),
                Err(e) => {
                    tracing::error!(export = %export.uuid, recording = %rec.uuid, path, error = ?e,
                        "export: recording file not usable");
                    self.update_export(&mut export, ExportStatus::Error, None).await;
                    return None;
                }
            }
        }
        let dest = self.exports_dir.join(format!("{}.zip", export.uuid));
        let dir = self.exports_dir.clone();
        let target = dest.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_zip(&target, &files)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match written {
            Ok(()) => {
                let path = Some(dest.display().to_string());
                self.update_export(&mut export, ExportStatus::Finished, path).await;
                tracing::info!(export = %export.uuid, recordings = recordings.len(), "export finished");
                Some(export)
            }
            Err(e) => {
                tracing::error!(export = %export.uuid, error = %e, "export failed");
                self.update_export(&mut export, ExportStatus::Error, None).await;
                None
            }
        }
    }

    pub async fn get_export(&self, scope: &Scope, id: &str) -> Result<Export, ApiError> {
        let Ok(uuid) = Uuid::parse_str(id) else {
            return Err(errors::export_not_found(id));
        };
        let tenants = scope.tenants(true);
        self.store
            .read(move |conn| get(conn, &tenants, uuid))
            .await?
            .ok_or_else(|| errors::export_not_found(id))
    }

    pub async fn download_export(&self, scope: &Scope, id: &str) -> Result<Response, ApiError> {
        let export = self.get_export(scope, id).await?;
        match export.status {
            ExportStatus::Pending | ExportStatus::Processing => return Err(errors::export_not_done_yet(export.uuid)),
            ExportStatus::Error => return Err(errors::export_error(export.uuid)),
            ExportStatus::Finished | ExportStatus::Deleted => {}
        }
        let Some(path) = export.path.clone().filter(|_| export.status == ExportStatus::Finished) else {
            return Err(errors::export_not_found(id));
        };
        let streamed = match confine(&self.exports_dir, &path).await {
            Ok(real) => stream_file(&real, "application/zip", &export.filename()).await,
            Err(e) => Err(e),
        };
        streamed.map_err(|e| match e {
            FileError::NotFound => {
                tracing::error!(export = %export.uuid, path, "export file not found");
                errors::export_fs_not_found(export.uuid, &path)
            }
            FileError::Outside | FileError::Denied => errors::export_permission_denied(export.uuid, &path),
            FileError::Other(e) => ApiError::Internal(format!("export {}: {e}", export.uuid)),
        })
    }

    /// At start: exports a stop cut short can never finish; marks them `error`.
    pub async fn fail_interrupted_exports(&self) -> Result<usize, ApiError> {
        self.store
            .write(|tx| {
                Ok::<_, ApiError>(tx.execute(
                    "UPDATE call_log_export SET status = 'error' WHERE status IN ('pending', 'processing')",
                    [],
                )?)
            })
            .await
    }
}

/// The optional body `{"cdr_ids": [...]}`; ids as integers or digit strings (upstream
/// documents strings). An empty body selects by the filters alone.
/// The optional `email` query parameter: who is told when the export is ready.
fn export_email(query: &str) -> Result<Option<lettre::Address>, ApiError> {
    let pairs: Vec<(String, String)> = crate::api::body::parse_query(query)?;
    match pairs.into_iter().rev().find(|(k, _)| k == "email") {
        None => Ok(None),
        Some((_, v)) if v.is_empty() => Ok(None),
        Some((_, v)) => crate::mail::parse_address(&v)
            .map(Some)
            .map_err(|_| ApiError::invalid_field("email", "Not a valid email address.")),
    }
}

fn export_ids(bytes: &[u8]) -> Result<Vec<i64>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        cdr_ids: Option<Vec<Value>>,
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let body: Body = parse_json_object(bytes)?;
    body.cdr_ids
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let id = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
                _ => None,
            };
            id.ok_or_else(|| ApiError::InvalidData {
                details: json!({ "cdr_ids": { i.to_string(): ["Not a valid integer."] } }),
            })
        })
        .collect()
}

pub fn routes(svc: Arc<CallLogService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let limit = svc.auth.config.http.body_limit;

    let s = svc.clone();
    let create = warp::path!("cdr" / "recordings" / "media" / "export")
        .and(warp::post())
        .and(authed.clone())
        .and(raw_query())
        .and(limited_bytes(limit))
        .then(move |caller: Caller, q: String, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("call-logd.cdr.recordings.media.export.create")?;
                let email = export_email(&q)?;
                let q = CdrQuery::parse(&q)?;
                let ids = export_ids(&body)?;
                let export = svc.create_export(&scope, q, ids, email).await?;
                let mut resp = warp::reply::with_status(
                    warp::reply::json(&json!({ "export_uuid": export.uuid })),
                    StatusCode::ACCEPTED,
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("/api/call-logd/1.0/exports/{}", export.uuid)) {
                    resp.headers_mut().insert(LOCATION, v);
                }
                Ok(resp)
            })
        });

    let s = svc.clone();
    let get = warp::path!("exports" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("call-logd.exports.{}.read", escape_param(&id)))?;
                Ok(warp::reply::json(&svc.get_export(&scope, &id).await?.to_json()).into_response())
            })
        });

    let s = svc;
    let download = warp::path!("exports" / String / "download")
        .and(warp::get())
        .and(authed)
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("call-logd.exports.{}.download.read", escape_param(&id)))?;
                svc.download_export(&scope, &id).await
            })
        });

    create.or(get).unify().or(download).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_names() {
        assert_eq!(export_ids(b"").ok(), Some(vec![]));
        assert_eq!(export_ids(br#"{}"#).ok(), Some(vec![]));
        assert_eq!(export_ids(br#"{"cdr_ids": [1, "2"]}"#).ok(), Some(vec![1, 2]));
        for bad in [
            &br#"{"cdr_ids": ["x"]}"#[..],
            br#"{"cdr_ids": [1.5]}"#,
            br#"{"cdr_ids": 3}"#,
            br#"{"ids": [1]}"#,
            b"nope",
        ] {
            assert_eq!(
                export_ids(bad).map_err(|e| e.status()).err(),
                Some(StatusCode::BAD_REQUEST)
            );
        }
        let e = Export {
            uuid: Uuid::nil(),
            tenant_uuid: Uuid::nil(),
            user_uuid: Uuid::nil(),
            requested_at_us: 1_795_870_944_908_592,
            status: ExportStatus::Pending,
            path: None,
        };
        assert_eq!(
            e.filename(),
            "2026-11-28T13_02_24UTC-00000000-0000-0000-0000-000000000000.zip"
        );
        assert_eq!(e.to_json()["status"], "pending");
    }

    #[test]
    fn zip_entries_are_streamed_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.wav");
        std::fs::write(&a, vec![7u8; 300_000]).expect("write");
        let dest = dir.path().join("out.zip");
        write_zip(&dest, &[("12/a.wav".into(), a)]).expect("zip");
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&dest).expect("open")).expect("archive");
        let mut entry = archive.by_name("12/a.wav").expect("entry");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut out).expect("read");
        assert_eq!(out.len(), 300_000);
        assert!(!dir.path().join("out.zip.part").exists());
        // A missing input fails and leaves nothing behind.
        let missing = dir.path().join("missing.wav");
        assert!(write_zip(&dir.path().join("bad.zip"), &[("x".into(), missing)]).is_err());
        assert!(!dir.path().join("bad.zip").exists() && !dir.path().join("bad.zip.part").exists());
    }
}
