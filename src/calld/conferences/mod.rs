//! Conference rooms (confd's `/conferences`) as they run in Asterisk's
//! ConfBridge: the participants (`ConfbridgeList`, asked each time as
//! upstream does, so nothing goes stale across reconnections), kick and
//! mute (`ConfbridgeKick`, `ConfbridgeMute`/`Unmute`), recording
//! (`ConfbridgeStartRecord`/`StopRecord`), and the participant and recording
//! events raised from the AMI events ([`rooms`]).

pub mod participant;
pub mod rooms;
pub mod routes;

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use warp::http::StatusCode;

use self::participant::{bridge_name, Participant};
use self::rooms::Rooms;
use super::CalldService;
use crate::ami::client::{AmiClient, AmiError};
use crate::ami::frame::AmiMessage;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::confd::conferences::TABLE;
use crate::confd::docstore::{self, Key};

fn error(status: StatusCode, error_id: &'static str, message: &str, details: Value) -> ApiError {
    ApiError::Custom {
        status,
        error_id,
        message: message.into(),
        details,
    }
}

fn no_such_conference(id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "no-such-conference",
        "No such conference",
        json!({ "conference_id": id }),
    )
}

fn no_such_participant(conference: i64, participant: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "no-such-participant",
        "No such participant",
        json!({ "conference_id": conference, "participant_id": participant }),
    )
}

/// Asterisk refused or could not be asked.
fn conference_error(conference: i64, e: AmiError) -> ApiError {
    match e {
        AmiError::ActionFailed { message } => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "conference-error",
            "Asterisk refused the conference request",
            json!({ "conference_id": conference, "reason": message }),
        ),
        e => super::actions::unreachable("ami", e.to_string()),
    }
}

fn no_participants(conference: i64) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        "conference-has-no-participants",
        "Conference has no participants",
        json!({ "conference_id": conference }),
    )
}

/// What a refused `ConfbridgeStartRecord`/`StopRecord` means to the client: ConfBridge
/// answers `Conference is already being recorded.` to a second start, and fails a stop of
/// a conference that is not recording (`Internal error while stopping recording.`); a room
/// emptied meanwhile is no conference at all to it.
fn record_refused(conference: i64, on: bool, message: &str) -> ApiError {
    let m = message.to_ascii_lowercase();
    if is_empty_conference(&m) {
        if on {
            return no_participants(conference);
        }
        return not_recorded(conference);
    }
    if on && m.contains("already") {
        return error(
            StatusCode::BAD_REQUEST,
            "conference-already-recorded",
            "Conference is already being recorded",
            json!({ "conference_id": conference }),
        );
    }
    if !on && m.contains("stopping recording") {
        return not_recorded(conference);
    }
    conference_error(
        conference,
        AmiError::ActionFailed {
            message: message.to_owned(),
        },
    )
}

fn not_recorded(conference: i64) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        "conference-not-recorded",
        "Conference is not being recorded",
        json!({ "conference_id": conference }),
    )
}

/// ConfBridge's answers for a conference nobody is in.
fn is_empty_conference(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("no active conferences") || m.contains("no conference by that name")
}

impl CalldService {
    /// The confd conference `id` if the scope sees its tenant (another tenant's is a 404).
    async fn conference_tenant(&self, scope: &Scope, id: &str) -> Result<(i64, Uuid), ApiError> {
        let Ok(conference) = id.parse::<i64>() else {
            return Err(no_such_conference(id));
        };
        let row = self
            .store
            .read(move |c| docstore::get(c, TABLE, Key::Id(conference)).map_err(ApiError::from))
            .await?;
        match row {
            Some(row) if scope.can_see(row.tenant_uuid) => Ok((conference, row.tenant_uuid)),
            _ => Err(no_such_conference(id)),
        }
    }

    /// Who is in the conference now (`ConfbridgeList`), with the users of their lines.
    async fn current_participants(&self, conference: i64) -> Result<Vec<Participant>, ApiError> {
        let ami = self.ami_link()?;
        let action = AmiMessage::new()
            .with("Action", "ConfbridgeList")
            .with("Conference", bridge_name(conference));
        let items = match ami.send(action).await {
            Ok(reply) => reply.into_list_items(),
            Err(AmiError::ActionFailed { message }) if is_empty_conference(&message) => Vec::new(),
            Err(e) => return Err(conference_error(conference, e)),
        };
        let owners = self.owners.get(&self.store).await?;
        Ok(items
            .iter()
            .filter(|m| m.get("Event") == Some("ConfbridgeList"))
            .filter_map(Participant::from_ami)
            .map(|mut p| {
                p.user_uuid = self
                    .live
                    .channel(&p.id)
                    .and_then(|ch| owners.of(&ch.endpoint).and_then(|o| o.user_uuid()));
                p
            })
            .collect())
    }

    /// `GET /conferences/{id}/participants`; with `me`, only for a participant (403 otherwise).
    pub async fn list_participants(&self, scope: &Scope, id: &str, me: Option<Uuid>) -> Result<Value, ApiError> {
        let (conference, _) = self.conference_tenant(scope, id).await?;
        let items = self.current_participants(conference).await?;
        if let Some(user) = me {
            if !items.iter().any(|p| p.user_uuid == Some(user)) {
                return Err(error(
                    StatusCode::FORBIDDEN,
                    "user-not-participant",
                    "User is not a participant of the conference",
                    json!({ "conference_id": conference, "user_uuid": user }),
                ));
            }
        }
        Ok(json!({ "items": items, "total": items.len() }))
    }

    /// The participant's channel, for an action aimed at it.
    async fn participant(&self, scope: &Scope, id: &str, participant: &str) -> Result<(i64, Participant), ApiError> {
        let (conference, _) = self.conference_tenant(scope, id).await?;
        let p = self
            .current_participants(conference)
            .await?
            .into_iter()
            .find(|p| p.id == participant)
            .ok_or_else(|| no_such_participant(conference, participant))?;
        Ok((conference, p))
    }

    /// `ConfbridgeKick`, `ConfbridgeMute`, `ConfbridgeUnmute` on one participant. A
    /// participant gone since the list is a 404, as if it had never been there.
    async fn participant_action(&self, conference: i64, p: &Participant, action: &str) -> Result<(), ApiError> {
        let msg = AmiMessage::new()
            .with("Action", action)
            .with("Conference", bridge_name(conference))
            .with("Channel", p.channel.as_str());
        match self.ami_link()?.send(msg).await {
            Ok(_) => Ok(()),
            Err(AmiError::ActionFailed { message })
                if is_empty_conference(&message) || message.to_ascii_lowercase().contains("no channel") =>
            {
                Err(no_such_participant(conference, &p.id))
            }
            Err(e) => Err(conference_error(conference, e)),
        }
    }

    /// `DELETE /conferences/{id}/participants/{participant_id}`.
    pub async fn kick_participant(&self, scope: &Scope, id: &str, participant: &str) -> Result<(), ApiError> {
        let (conference, p) = self.participant(scope, id, participant).await?;
        self.participant_action(conference, &p, "ConfbridgeKick").await?;
        tracing::info!(conference, participant, "conference participant kicked");
        Ok(())
    }

    /// `PUT /conferences/{id}/participants/{participant_id}/mute` (or `unmute`); the
    /// `conference_participant_muted` event follows from Asterisk's `ConfbridgeMute`.
    pub async fn mute_participant(&self, scope: &Scope, id: &str, participant: &str, on: bool) -> Result<(), ApiError> {
        let (conference, p) = self.participant(scope, id, participant).await?;
        let action = if on { "ConfbridgeMute" } else { "ConfbridgeUnmute" };
        self.participant_action(conference, &p, action).await?;
        tracing::info!(
            conference,
            participant,
            muted = on,
            "conference participant mute changed"
        );
        Ok(())
    }

    /// `POST /conferences/{id}/record` (`on`) and `DELETE` (`!on`). Asterisk is the judge of
    /// whether the room is recording: it refuses a second start and a stop of nothing, and
    /// those answers become upstream's 400s. The `conference_record_*` events follow from
    /// Asterisk's `ConfbridgeRecord`/`ConfbridgeStopRecord`, so a recording started from a
    /// phone's menu is announced too.
    pub async fn record_conference(&self, scope: &Scope, id: &str, on: bool) -> Result<(), ApiError> {
        let (conference, tenant) = self.conference_tenant(scope, id).await?;
        let mut action = AmiMessage::new()
            .with(
                "Action",
                if on {
                    "ConfbridgeStartRecord"
                } else {
                    "ConfbridgeStopRecord"
                },
            )
            .with("Conference", bridge_name(conference));
        if on {
            // ConfBridge only records a running conference; upstream asks first to say so.
            if self.current_participants(conference).await?.is_empty() {
                return Err(no_participants(conference));
            }
            let file = self
                .recordings_dir
                .join(tenant.to_string())
                .join("monitor")
                .join(format!("conference-{conference}-{}.wav", Uuid::new_v4()));
            action.push("RecordFile", file.to_string_lossy().as_ref());
        }
        match self.ami_link()?.send(action).await {
            Ok(_) => {
                tracing::info!(conference, recording = on, "conference recording changed");
                Ok(())
            }
            Err(AmiError::ActionFailed { message }) => Err(record_refused(conference, on, &message)),
            Err(e) => Err(conference_error(conference, e)),
        }
    }

    /// The tenant of a conference an AMI event names (`None`: deleted from confd meanwhile).
    async fn tenant_of(&self, conference: i64) -> Option<Uuid> {
        let row = self
            .store
            .read(move |c| docstore::get(c, TABLE, Key::Id(conference)).map_err(ApiError::from))
            .await;
        match row {
            Ok(row) => row.map(|r| r.tenant_uuid),
            Err(e) => {
                tracing::warn!(conference, error = %e, "conference lookup for an AMI event failed");
                None
            }
        }
    }

    async fn conference_event(&self, rooms: &mut Rooms, msg: &AmiMessage) {
        let Some(conference) = Rooms::conference_of(msg) else {
            return;
        };
        let owners = match self.owners.get(&self.store).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "line owners unavailable for a conference event");
                return;
            }
        };
        let user_of = |uniqueid: &str| {
            self.live
                .channel(uniqueid)
                .and_then(|ch| owners.of(&ch.endpoint).and_then(|o| o.user_uuid()))
        };
        let specs = rooms.apply(msg, user_of);
        if specs.is_empty() {
            return;
        }
        let Some(tenant) = self.tenant_of(conference).await else {
            tracing::debug!(conference, "event of a conference confd does not have, not published");
            return;
        };
        for spec in specs {
            self.bus.publish(spec.tenant(tenant));
        }
    }
}

/// Follows the ConfBridge events of accentd's conferences and publishes upstream's
/// participant events.
pub fn spawn_watcher(svc: Arc<CalldService>, ami: AmiClient, shutdown: CancellationToken) {
    let mut events = ami.subscribe();
    tokio::spawn(async move {
        let mut rooms = Rooms::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                e = events.recv() => match e {
                    Ok(m) => svc.conference_event(&mut rooms, &m).await,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "conference watcher fell behind AMI events");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }
    });
}
