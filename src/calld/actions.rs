//! What calld does to a live call: hang up (ARI), answer and hold (a SIP NOTIFY the phone
//! acts on), mute (`MuteAudio`), DTMF (`PlayDTMF`) and recording (`MixMonitor`) over AMI.
//!
//! ARI can only act on channels inside a Stasis application, and a phone's call is not: so
//! everything but the hangup goes through AMI, which acts on any channel. Answer and hold ask
//! the phone itself (upstream relays them to the phone through its phoned plugins): Asterisk
//! sends an in-dialog NOTIFY with `Event: talk` (answer, resume) or `Event: hold`, the
//! BroadSoft remote-control events that Yealink, Polycom, Snom and Grandstream phones obey.

use serde_json::{json, Value};
use uuid::Uuid;

use super::calls::{no_such_call, RecordState};
use super::owners::Owner;
use super::CalldService;
use crate::ami::client::{AmiClient, AmiError};
use crate::ami::frame::AmiMessage;
use crate::api::error::ApiError;
use crate::ari::client::AriClient;
use crate::ari::error::AriError;
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};
use crate::control::model::Channel;

/// The most digits one DTMF request may send (each is one AMI action).
pub const MAX_DTMF_DIGITS: usize = 64;

/// An error with upstream's id and details.
pub(super) fn custom(
    status: warp::http::StatusCode,
    error_id: &'static str,
    message: &str,
    details: Value,
) -> ApiError {
    ApiError::Custom {
        status,
        error_id,
        message: message.into(),
        details,
    }
}

/// 503 while accentd has no Asterisk link to act through.
pub(super) fn unreachable(link: &'static str, reason: impl Into<String>) -> ApiError {
    let (error_id, message) = match link {
        "ari" => ("asterisk-ari-unreachable", "Asterisk ARI is unreachable"),
        _ => ("asterisk-ami-unreachable", "Asterisk AMI is unreachable"),
    };
    custom(
        warp::http::StatusCode::SERVICE_UNAVAILABLE,
        error_id,
        message,
        json!({ "reason": reason.into() }),
    )
}

/// An AMI failure as upstream answers it: the channel is gone (404), the link is down or
/// Asterisk refused (503).
pub(super) fn ami_error(id: &str, e: AmiError) -> ApiError {
    match e {
        AmiError::ActionFailed { message } if channel_missing(&message) => no_such_call(id),
        AmiError::ActionFailed { message } => custom(
            warp::http::StatusCode::SERVICE_UNAVAILABLE,
            "asterisk-ami-error",
            "Asterisk refused the request",
            json!({ "reason": message }),
        ),
        e => unreachable("ami", e.to_string()),
    }
}

/// Asterisk's ways of saying the channel is gone: `No such channel` (MuteAudio, MixMonitor,
/// StopMixMonitor, MixMonitorMute), `Channel not found` (PlayDTMF, PJSIPNotify).
fn channel_missing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("no such channel") || m.contains("channel not found") || m.contains("unable to find channel")
}

/// An ARI failure as upstream answers it: the channel is gone (404), the link is down (503),
/// Asterisk refused (503).
pub(super) fn ari_error(id: &str, e: AriError) -> ApiError {
    match e {
        AriError::NotFound { .. } => no_such_call(id),
        e @ AriError::Transport(_) => unreachable("ari", e.to_string()),
        e => custom(
            warp::http::StatusCode::SERVICE_UNAVAILABLE,
            "asterisk-ari-error",
            "Asterisk refused the request",
            json!({ "reason": e.to_string() }),
        ),
    }
}

/// How a recording changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOp {
    Start,
    Stop,
    Pause,
    Resume,
}

impl RecordOp {
    pub fn parse(verb: &str) -> Option<RecordOp> {
        Some(match verb {
            "start" => RecordOp::Start,
            "stop" => RecordOp::Stop,
            "pause" => RecordOp::Pause,
            "resume" => RecordOp::Resume,
            _ => return None,
        })
    }
}

/// Digits a phone can send: `0-9`, `*`, `#` (and `A-D`, which upstream refuses too).
pub fn check_digits(digits: Option<&str>) -> Result<&str, ApiError> {
    let digits = digits.unwrap_or("");
    if digits.is_empty() {
        return Err(ApiError::invalid_field("digits", "Missing data for required field."));
    }
    if digits.len() > MAX_DTMF_DIGITS {
        return Err(ApiError::invalid_field(
            "digits",
            format!("At most {MAX_DTMF_DIGITS} digits."),
        ));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#') {
        return Err(ApiError::invalid_field(
            "digits",
            "Invalid DTMF digits: only 0-9, * and #.",
        ));
    }
    Ok(digits)
}

impl CalldService {
    pub(super) fn ari_link(&self) -> Result<&AriClient, ApiError> {
        self.ari
            .get()
            .ok_or_else(|| unreachable("ari", "ARI is not configured"))
    }

    pub(super) fn ami_link(&self) -> Result<&AmiClient, ApiError> {
        self.ami
            .get()
            .ok_or_else(|| unreachable("ami", "AMI is not configured"))
    }

    pub(super) async fn ami_send(&self, id: &str, action: AmiMessage) -> Result<(), ApiError> {
        self.ami_link()?
            .send(action)
            .await
            .map(drop)
            .map_err(|e| ami_error(id, e))
    }

    /// Answer and hold act on the phone: only a PJSIP channel has a dialog to NOTIFY in.
    async fn notify_phone(&self, ch: &Channel, event: &str) -> Result<(), ApiError> {
        if ch.technology != "PJSIP" {
            return Err(custom(
                warp::http::StatusCode::BAD_REQUEST,
                "call-not-controllable",
                "Only a SIP phone's call can be answered or held remotely",
                json!({ "call_id": ch.id, "channel": ch.name }),
            ));
        }
        let action = AmiMessage::new()
            .with("Action", "PJSIPNotify")
            .with("Channel", ch.name.as_str())
            .with("Variable", format!("Event={event}"));
        self.ami_send(&ch.id, action).await
    }

    /// Hangs a visible call up over ARI.
    pub async fn hangup(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<(), ApiError> {
        self.find(scope, id, user).await?;
        // Gone between the check and the request: as if it never was (404).
        self.ari_link()?.hangup(id, None).await.map_err(|e| ari_error(id, e))?;
        tracing::info!(call_id = id, "call hung up");
        Ok(())
    }

    /// Asks the ringing phone to pick up.
    pub async fn answer(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<(), ApiError> {
        let (ch, _) = self.find(scope, id, user).await?;
        self.notify_phone(&ch, "talk").await?;
        tracing::info!(call_id = id, "answer requested from the phone");
        Ok(())
    }

    /// Asks the phone to hold (or resume) the call; `call_held`/`call_resumed` follow from
    /// Asterisk's `Hold`/`Unhold` events once the phone did it.
    pub async fn hold(&self, scope: &Scope, id: &str, user: Option<Uuid>, on: bool) -> Result<(), ApiError> {
        let (ch, _) = self.find(scope, id, user).await?;
        self.notify_phone(&ch, if on { "hold" } else { "talk" }).await?;
        tracing::info!(call_id = id, hold = on, "hold requested from the phone");
        Ok(())
    }

    /// Mutes (or unmutes) what the channel sends to the PBX: the others stop hearing it.
    pub async fn mute(&self, scope: &Scope, id: &str, user: Option<Uuid>, on: bool) -> Result<(), ApiError> {
        let (ch, _) = self.find(scope, id, user).await?;
        let action = AmiMessage::new()
            .with("Action", "MuteAudio")
            .with("Channel", ch.name.as_str())
            .with("Direction", "in")
            .with("State", if on { "on" } else { "off" });
        self.ami_send(id, action).await?;
        self.marks.entry(ch.id.clone()).or_default().muted = on;
        self.poke(&ch.id);
        tracing::info!(call_id = id, muted = on, "call mute changed");
        Ok(())
    }

    /// Plays the digits as if the channel's phone had sent them (`Receive`): the other party
    /// and the dialplan hear them.
    pub async fn dtmf(
        &self,
        scope: &Scope,
        id: &str,
        user: Option<Uuid>,
        digits: Option<&str>,
    ) -> Result<(), ApiError> {
        let digits = check_digits(digits)?;
        let (ch, _) = self.find(scope, id, user).await?;
        for digit in digits.chars() {
            let action = AmiMessage::new()
                .with("Action", "PlayDTMF")
                .with("Channel", ch.name.as_str())
                .with("Digit", digit.to_string())
                .with("Receive", "true");
            self.ami_send(id, action).await?;
        }
        tracing::info!(call_id = id, digits = digits.len(), "DTMF sent");
        Ok(())
    }

    /// Starts, stops, pauses or resumes the channel's MixMonitor recording. Starting an active
    /// recording or stopping a stopped one changes nothing (204), like pressing a record
    /// button twice; pausing or resuming nothing is a 400.
    pub async fn record(&self, scope: &Scope, id: &str, user: Option<Uuid>, op: RecordOp) -> Result<(), ApiError> {
        let (ch, owner) = self.find(scope, id, user).await?;
        let state = self.marks.get(&ch.id).map(|m| m.record).unwrap_or_default();
        let (action, next, event) = match (op, state) {
            (RecordOp::Start, RecordState::Inactive) => {
                let file = self
                    .recordings_dir
                    .join(owner.tenant().to_string())
                    .join("monitor")
                    .join(format!("{}.wav", Uuid::new_v4()));
                let action = AmiMessage::new()
                    .with("Action", "MixMonitor")
                    .with("Channel", ch.name.as_str())
                    .with("File", file.to_string_lossy().as_ref());
                (action, RecordState::Active, "started")
            }
            (RecordOp::Stop, RecordState::Active | RecordState::Paused) => {
                let action = AmiMessage::new()
                    .with("Action", "StopMixMonitor")
                    .with("Channel", ch.name.as_str());
                (action, RecordState::Inactive, "stopped")
            }
            (RecordOp::Pause, RecordState::Active) | (RecordOp::Resume, RecordState::Paused) => {
                let pause = op == RecordOp::Pause;
                let action = AmiMessage::new()
                    .with("Action", "MixMonitorMute")
                    .with("Channel", ch.name.as_str())
                    .with("Direction", "both")
                    .with("State", if pause { "1" } else { "0" });
                let (next, event) = if pause {
                    (RecordState::Paused, "paused")
                } else {
                    (RecordState::Active, "resumed")
                };
                (action, next, event)
            }
            (RecordOp::Start, _)
            | (RecordOp::Stop, _)
            | (RecordOp::Pause, RecordState::Paused)
            | (RecordOp::Resume, RecordState::Active) => {
                return Ok(());
            }
            (RecordOp::Pause | RecordOp::Resume, RecordState::Inactive) => {
                return Err(custom(
                    warp::http::StatusCode::BAD_REQUEST,
                    "call-not-recorded",
                    "The call is not being recorded",
                    json!({ "call_id": id }),
                ));
            }
        };
        self.ami_send(id, action).await?;
        self.marks.entry(ch.id.clone()).or_default().record = next;
        self.recording_event(&ch, &owner, event).await;
        self.poke(&ch.id);
        tracing::info!(call_id = id, recording = event, "call recording changed");
        Ok(())
    }

    /// `recording_<what>` with the call object (its `record_state` is the new one).
    async fn recording_event(&self, ch: &Channel, owner: &Owner, what: &str) {
        let Some(user) = owner.user_uuid() else {
            return;
        };
        let call = match self.snapshot_around(ch).await {
            Ok(snap) => snap.call(ch),
            Err(e) => {
                tracing::warn!(error = %e, "cannot describe the recorded call");
                return;
            }
        };
        self.bus.publish(
            EventSpec::new(
                format!("recording_{what}"),
                format!("calls.recording_{what}.created"),
                call,
            )
            .acl(format!("events.calls.{}", escape_key(&user.to_string())))
            .tenant(owner.tenant())
            .users(vec![user]),
        );
    }
}
