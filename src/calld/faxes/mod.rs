//! Outgoing faxes (`POST /faxes`, `POST /users/me/faxes`): a PDF (or a TIFF) sent to an
//! extension of a context.
//!
//! Asterisk's `SendFAX` sends a TIFF file, so a PDF is first turned into one by
//! Ghostscript (`tiffg4`, fax resolution), written where Asterisk reads it. Then ARI
//! originates `Local/<extension>@<context>`; when the recipient answers, the originated
//! channel runs `accent-txfax` (accentd-dialplan.conf): wait, dial the IVR digits, send,
//! and on hangup raise `UserEvent(AccentFaxProgress, FaxID, Status, Error, Pages)`. The
//! watcher turns that into `fax_outbound_succeeded`/`_failed`; a channel that hangs up
//! without it (nobody answered) is a failure with Asterisk's hangup cause. The document is
//! deleted once the fax is over: it is the user's data, not the PBX's.

pub mod routes;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use warp::http::StatusCode;

use super::actions::ari_error;
use super::originate::check_dialplan_word;
use super::CalldService;
use crate::ami::client::AmiClient;
use crate::ami::frame::AmiMessage;
use crate::api::error::ApiError;
use crate::ari::client::OriginateParams;
use crate::ari::error::AriError;
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};
use crate::config::CalldConfig;

/// The `UserEvent` the `accent-txfax` dialplan raises when the fax call ends.
pub const PROGRESS_EVENT: &str = "AccentFaxProgress";
/// The dialplan context the originated channel runs once the recipient answers.
pub const TXFAX_CONTEXT: &str = "accent-txfax";
/// What the recipient sees when the request names no caller id (upstream's default).
const DEFAULT_CALLER_ID: &str = "Accent Fax";
/// How long Ghostscript may take over one document.
const CONVERT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest wait before sending, in seconds.
const MAX_WAIT_TIME: u64 = 300;

/// The query of `POST /faxes` (`context` absent for `/users/me/faxes`: the user's own).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaxQuery {
    pub context: Option<String>,
    pub extension: Option<String>,
    pub caller_id: Option<String>,
    pub ivr_extension: Option<String>,
    pub wait_time: Option<u64>,
}

/// upstream's fax object.
#[derive(Debug, Clone, Serialize)]
pub struct Fax {
    pub id: String,
    pub call_id: String,
    pub context: String,
    pub extension: String,
    pub caller_id: String,
    pub ivr_extension: Option<String>,
    pub wait_time: Option<u64>,
    pub user_uuid: Option<Uuid>,
    pub tenant_uuid: Uuid,
}

/// What a fax document is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Pdf,
    Tiff,
}

impl Document {
    pub fn sniff(bytes: &[u8]) -> Option<Document> {
        if bytes.starts_with(b"%PDF-") {
            Some(Document::Pdf)
        } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            Some(Document::Tiff)
        } else {
            None
        }
    }
}

/// The faxes being sent, by id (the originated channel's uniqueid), with their file.
pub struct Faxes {
    dir: PathBuf,
    ghostscript: PathBuf,
    pub max_bytes: u64,
    sending: DashMap<String, (Fax, PathBuf)>,
}

impl Faxes {
    pub fn new(config: &CalldConfig) -> Faxes {
        Faxes {
            dir: config.fax_dir.clone(),
            ghostscript: config.fax_ghostscript.clone(),
            max_bytes: config.fax_max_bytes,
            sending: DashMap::new(),
        }
    }
}

fn invalid_document(reason: impl Into<String>) -> ApiError {
    ApiError::Custom {
        status: StatusCode::BAD_REQUEST,
        error_id: "invalid-fax-document",
        message: "The fax document must be a PDF or TIFF file".into(),
        details: json!({ "reason": reason.into() }),
    }
}

/// accentd cannot store or convert the document: the PBX's fault, not the client's.
fn fax_unavailable(reason: impl Into<String>) -> ApiError {
    ApiError::Custom {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error_id: "fax-unavailable",
        message: "The fax cannot be prepared for sending".into(),
        details: json!({ "reason": reason.into() }),
    }
}

/// The query, checked: extension and context as dialplan words, a printable caller id, IVR
/// digits, a bounded wait.
fn check(query: &FaxQuery, context: &str) -> Result<(String, String), ApiError> {
    let extension = query
        .extension
        .as_deref()
        .ok_or_else(|| ApiError::invalid_field("extension", "Missing data for required field."))?;
    check_dialplan_word("extension", extension)?;
    check_dialplan_word("context", context)?;
    if extension.contains('@') {
        return Err(ApiError::invalid_field("extension", "Must not contain @."));
    }
    let caller_id = query.caller_id.clone().unwrap_or_else(|| DEFAULT_CALLER_ID.to_string());
    if caller_id.len() > 128 || caller_id.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "caller_id",
            "At most 128 characters, no control characters.",
        ));
    }
    if let Some(ivr) = &query.ivr_extension {
        if ivr.is_empty() || ivr.len() > 64 || !ivr.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
            return Err(ApiError::invalid_field(
                "ivr_extension",
                "Digits, * and # only (at most 64).",
            ));
        }
    }
    if query.wait_time.is_some_and(|w| w > MAX_WAIT_TIME) {
        return Err(ApiError::invalid_field(
            "wait_time",
            format!("At most {MAX_WAIT_TIME} seconds."),
        ));
    }
    Ok((extension.to_string(), caller_id))
}

impl CalldService {
    /// `POST /faxes` (`user`: None) and `POST /users/me/faxes` (the token's user, from the
    /// context of the user's main line).
    pub async fn send_fax(
        &self,
        scope: &Scope,
        user: Option<Uuid>,
        query: FaxQuery,
        document: &[u8],
    ) -> Result<Value, ApiError> {
        let tenant = scope.tenant();
        let context = match user {
            Some(u) => self.user_context(u, vec![tenant]).await?,
            None => query
                .context
                .clone()
                .ok_or_else(|| ApiError::invalid_field("context", "Missing data for required field."))?,
        };
        let (extension, caller_id) = check(&query, &context)?;
        let kind = Document::sniff(document).ok_or_else(|| invalid_document("not a PDF or TIFF document"))?;
        let ari = self.ari_link()?;
        let id = Uuid::new_v4().to_string();
        let file = self.fax_file(&id, kind, document).await?;
        let fax = Fax {
            id: id.clone(),
            call_id: id.clone(),
            context,
            extension,
            caller_id,
            ivr_extension: query.ivr_extension,
            wait_time: query.wait_time,
            user_uuid: user,
            tenant_uuid: tenant,
        };
        let mut variables = Map::new();
        for (name, value) in [
            ("ACCENT_FAX_ID", id.clone()),
            ("ACCENT_FAX_PATH", file.to_string_lossy().into_owned()),
            (
                "ACCENT_FAX_WAIT_TIME",
                fax.wait_time.map(|w| w.to_string()).unwrap_or_default(),
            ),
            (
                "ACCENT_FAX_IVR_EXTENSION",
                fax.ivr_extension.clone().unwrap_or_default(),
            ),
            ("ACCENT_TENANT_UUID", tenant.to_string()),
            ("ACCENT_USERUUID", user.map(|u| u.to_string()).unwrap_or_default()),
        ] {
            variables.insert(name.into(), Value::String(value));
        }
        let params = OriginateParams {
            endpoint: format!("Local/{}@{}", fax.extension, fax.context),
            extension: Some("s".into()),
            context: Some(TXFAX_CONTEXT.into()),
            priority: Some(1),
            caller_id: Some(fax.caller_id.clone()),
            channel_id: Some(id.clone()),
            variables: Some(variables),
            ..OriginateParams::default()
        };
        // Known before the call exists: its end may come before the originate's answer.
        self.faxes.sending.insert(id.clone(), (fax.clone(), file.clone()));
        if let Err(e) = ari.originate(&params).await {
            self.faxes.sending.remove(&id);
            remove_quietly(&file).await;
            return Err(match e {
                AriError::BadRequest { message } => ApiError::invalid_field("extension", message),
                e => ari_error(&id, e),
            });
        }
        self.publish_fax("created", &fax, None);
        tracing::info!(fax = %id, tenant = %tenant, user = ?user, "fax sending");
        Ok(json!(fax))
    }

    /// Writes the document where Asterisk reads it, as a TIFF.
    async fn fax_file(&self, id: &str, kind: Document, document: &[u8]) -> Result<PathBuf, ApiError> {
        let dir = &self.faxes.dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| fax_unavailable(format!("{}: {e}", dir.display())))?;
        let tiff = dir.join(format!("{id}.tif"));
        match kind {
            Document::Tiff => {
                tokio::fs::write(&tiff, document)
                    .await
                    .map_err(|e| fax_unavailable(format!("{}: {e}", tiff.display())))?;
            }
            Document::Pdf => {
                let pdf = dir.join(format!("{id}.pdf"));
                tokio::fs::write(&pdf, document)
                    .await
                    .map_err(|e| fax_unavailable(format!("{}: {e}", pdf.display())))?;
                let converted = self.pdf_to_tiff(&pdf, &tiff).await;
                remove_quietly(&pdf).await;
                if let Err(e) = converted {
                    remove_quietly(&tiff).await;
                    return Err(e);
                }
            }
        }
        Ok(tiff)
    }

    /// Ghostscript's fax device: G4 compression at the fax's 204x196 dpi, A4 pages.
    async fn pdf_to_tiff(&self, pdf: &Path, tiff: &Path) -> Result<(), ApiError> {
        let mut command = tokio::process::Command::new(&self.faxes.ghostscript);
        command
            .args([
                "-q",
                "-dNOPAUSE",
                "-dBATCH",
                "-dSAFER",
                "-sDEVICE=tiffg4",
                "-sPAPERSIZE=a4",
                "-dFIXEDMEDIA",
                "-dPDFFitPage",
                "-r204x196",
            ])
            .arg(format!("-sOutputFile={}", tiff.display()))
            .arg(pdf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(CONVERT_TIMEOUT, command.output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => {
                tracing::error!(ghostscript = %self.faxes.ghostscript.display(), error = %e, "cannot run ghostscript");
                return Err(fax_unavailable(format!("ghostscript: {e}")));
            }
            Err(_) => return Err(invalid_document("the document took too long to convert")),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = || {
            let line = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no page to send");
            invalid_document(line.trim().chars().take(200).collect::<String>())
        };
        if !output.status.success() {
            return Err(reason());
        }
        // Ghostscript repairs what it can and exits 0 even when nothing was left to print:
        // only a TIFF with something in it is a fax.
        let mut head = [0u8; 4];
        let made = match tokio::fs::File::open(tiff).await {
            Ok(mut f) => tokio::io::AsyncReadExt::read_exact(&mut f, &mut head).await.is_ok(),
            Err(_) => false,
        };
        if !made || Document::sniff(&head) != Some(Document::Tiff) {
            return Err(reason());
        }
        Ok(())
    }

    /// `fax_outbound_<what>` to the tenant, and `fax_outbound_user_<what>` to its user.
    fn publish_fax(&self, what: &str, fax: &Fax, error: Option<&str>) {
        let mut data = json!(fax);
        if let Some(error) = error {
            data["error"] = json!(error);
        }
        let key = match what {
            "created" => "faxes.outbound.created".to_string(),
            _ => format!("faxes.outbound.{}.{what}", escape_key(&fax.id)),
        };
        self.bus
            .publish(EventSpec::new(format!("fax_outbound_{what}"), key, data.clone()).tenant(fax.tenant_uuid));
        if let Some(user) = fax.user_uuid {
            let key = format!("faxes.outbound.users.{}.{what}", escape_key(&user.to_string()));
            self.bus.publish(
                EventSpec::new(format!("fax_outbound_user_{what}"), key, data)
                    .tenant(fax.tenant_uuid)
                    .users(vec![user]),
            );
        }
    }

    /// The end of a fax: its result event, its document deleted.
    async fn fax_done(&self, id: &str, error: Option<String>) {
        let Some((_, (fax, file))) = self.faxes.sending.remove(id) else {
            return;
        };
        match &error {
            None => {
                tracing::info!(fax = id, "fax sent");
                self.publish_fax("succeeded", &fax, None);
            }
            Some(e) => {
                tracing::warn!(fax = id, error = %e, "fax failed");
                self.publish_fax("failed", &fax, Some(e));
            }
        }
        remove_quietly(&file).await;
    }

    async fn fax_event(&self, msg: &AmiMessage) {
        match msg.get("Event") {
            Some("UserEvent") if msg.get("UserEvent") == Some(PROGRESS_EVENT) => {
                let Some(id) = msg.get("FaxID") else {
                    tracing::warn!("fax progress without a FaxID, ignored");
                    return;
                };
                let status = msg.get("Status").unwrap_or_default();
                let error = if status.eq_ignore_ascii_case("SUCCESS") {
                    None
                } else {
                    // FAXERROR says why; empty when the call ended before SendFAX ran.
                    Some(match msg.get("Error").filter(|e| !e.trim().is_empty()) {
                        Some(e) => e.trim().to_string(),
                        None => "the call ended before the fax was sent".to_string(),
                    })
                };
                self.fax_done(id, error).await;
            }
            Some("Hangup") => {
                let Some(id) = msg.get("Uniqueid") else { return };
                if self.faxes.sending.contains_key(id) {
                    let cause = msg.get("Cause-txt").filter(|c| !c.is_empty()).unwrap_or("hangup");
                    self.fax_done(id, Some(format!("call not answered: {cause}"))).await;
                }
            }
            _ => {}
        }
    }
}

async fn remove_quietly(file: &Path) {
    if let Err(e) = tokio::fs::remove_file(file).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %file.display(), error = %e, "fax document not deleted");
        }
    }
}

/// Follows the AMI events that end faxes.
pub fn spawn_watcher(svc: Arc<CalldService>, ami: AmiClient, shutdown: CancellationToken) {
    svc.watch_ami(&ami, shutdown, "faxes", |svc, m| Box::pin(svc.fax_event(m)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_told_by_their_first_bytes() {
        assert_eq!(Document::sniff(b"%PDF-1.4\n..."), Some(Document::Pdf));
        assert_eq!(Document::sniff(b"II*\0\x08\0\0\0"), Some(Document::Tiff));
        assert_eq!(Document::sniff(b"MM\0*\0\0\0\x08"), Some(Document::Tiff));
        for other in [&b""[..], b"%PD", b"GIF89a", b"hello", b"\x89PNG\r\n"] {
            assert_eq!(Document::sniff(other), None, "{other:?}");
        }
    }

    #[test]
    fn queries_are_checked() {
        let q = |extension: Option<&str>, caller_id: Option<&str>, ivr: Option<&str>, wait: Option<u64>| FaxQuery {
            context: None,
            extension: extension.map(str::to_string),
            caller_id: caller_id.map(str::to_string),
            ivr_extension: ivr.map(str::to_string),
            wait_time: wait,
        };
        assert_eq!(
            check(&q(Some("1234"), None, Some("12#"), Some(5)), "default").ok(),
            Some(("1234".to_string(), "Accent Fax".to_string()))
        );
        for bad in [
            q(None, None, None, None),
            q(Some("12,34"), None, None, None),
            q(Some("1@x"), None, None, None),
            q(Some("1"), Some("a\nb"), None, None),
            q(Some("1"), None, Some("12a"), None),
            q(Some("1"), None, Some(""), None),
            q(Some("1"), None, None, Some(301)),
        ] {
            assert!(check(&bad, "default").is_err(), "{bad:?}");
        }
        assert!(check(&q(Some("1"), None, None, None), "bad context").is_err());
    }
}
