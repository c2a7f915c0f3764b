//! Switchboards (`/switchboards/{uuid}/calls/...`): an incall to a switchboard
//! enters accentd's own Stasis application with `switchboard_queue,<uuid>`
//! (rendered by confd); calld answers it and puts it in the switchboard's
//! queue, a holding bridge (`switchboard-<uuid>-queue`) playing the queue's
//! music. An operator (a member user) answers a queued or held call: calld
//! originates to the operator's line into the same application with
//! `switchboard_answer,<uuid>,<call>`; once the operator answers (its
//! `StasisStart`), both are bridged in a mixing bridge. Holding a call moves it
//! to the held bridge (`switchboard-<uuid>-hold`, the waiting room's music) and
//! hangs up the operator.
//!
//! What calld tracks (queued, held, answering, talking) lives in memory and is
//! kept from its own requests and from the channels' `StasisEnd`/`ChannelDestroyed`:
//! a call that leaves the application leaves the switchboard.
//!
//! - `state.rs`: the calls of each switchboard and the events their changes raise.
//! - `routes.rs`: the routes with upstream's ACLs.

pub mod routes;
mod state;

use std::sync::Arc;

use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

pub use self::state::Switchboards;
use self::state::{Answering, Entry, Kind, Talking};
use super::actions::ari_error;
use super::calls::no_such_call;
use super::CalldService;
use crate::api::error::ApiError;
use crate::ari::client::{AddChannelOptions, AriClient, BridgeParams, ContinueParams, OriginateParams};
use crate::ari::error::AriError;
use crate::ari::events::{AriEvent, StasisStart};
use crate::auth::caller::Scope;
use crate::confd::switchboards::{self as confd_switchboards, SwitchboardInfo};

/// The first Stasis argument of a call entering a switchboard's queue.
pub const QUEUE_PURPOSE: &str = "switchboard_queue";
/// The first Stasis argument of an operator's originated call.
pub const ANSWER_PURPOSE: &str = "switchboard_answer";

fn queue_bridge(uuid: Uuid) -> String {
    format!("switchboard-{uuid}-queue")
}

fn held_bridge(uuid: Uuid) -> String {
    format!("switchboard-{uuid}-hold")
}

fn no_such_switchboard(uuid: &str) -> ApiError {
    ApiError::Custom {
        status: StatusCode::NOT_FOUND,
        error_id: "no-such-switchboard",
        message: "No such switchboard".into(),
        details: json!({ "switchboard_uuid": uuid }),
    }
}

fn not_a_member(user: Uuid, switchboard: Uuid) -> ApiError {
    ApiError::Custom {
        status: StatusCode::BAD_REQUEST,
        error_id: "invalid-user",
        message: "The user is not a member of the switchboard".into(),
        details: json!({ "user_uuid": user, "switchboard_uuid": switchboard }),
    }
}

/// The switchboard, read from confd's store.
async fn load(svc: &CalldService, uuid: Uuid) -> Result<Option<SwitchboardInfo>, ApiError> {
    svc.store.read(move |c| confd_switchboards::info(c, uuid)).await
}

/// Creates a holding bridge of the switchboard once (409: it exists already,
/// e.g. after a restart of accentd) and starts its music.
async fn ensure_holding(ari: &AriClient, id: &str, moh: Option<&str>) -> Result<(), AriError> {
    let params = BridgeParams {
        bridge_type: Some("holding".into()),
        bridge_id: Some(id.to_string()),
        name: Some(id.to_string()),
    };
    match ari.create_bridge(&params).await {
        Ok(_) => {
            if let Some(class) = moh.filter(|m| !m.is_empty()) {
                if let Err(e) = ari.bridge_start_moh(id, Some(class)).await {
                    tracing::warn!(bridge = id, error = %e, "switchboard music on hold not started");
                }
            }
            Ok(())
        }
        Err(AriError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A channel entered the application for a switchboard's queue: answered,
/// then put in the queue bridge. An unknown switchboard sends it back to the
/// dialplan (its fallback).
pub async fn queued(svc: &CalldService, e: &StasisStart) {
    let id = e.channel.id.clone();
    let Some(ari) = svc.ari.get() else { return };
    let sb = match e.args.get(1).and_then(|u| Uuid::parse_str(u).ok()) {
        Some(uuid) => load(svc, uuid).await.ok().flatten(),
        None => None,
    };
    let Some(sb) = sb else {
        tracing::warn!(call_id = %id, args = ?e.args, "call for an unknown switchboard; back to the dialplan");
        if let Err(err) = ari.continue_in_dialplan(&id, &ContinueParams::default()).await {
            tracing::warn!(call_id = %id, error = %err, "cannot send the channel back to the dialplan");
        }
        return;
    };
    if let Err(err) = ari.answer(&id).await {
        tracing::warn!(call_id = %id, error = %err, "switchboard call not answered");
        return;
    }
    let bridge = queue_bridge(sb.uuid);
    if let Err(err) = ensure_holding(ari, &bridge, sb.queue_music_on_hold.as_deref()).await {
        tracing::warn!(switchboard = %sb.uuid, error = %err, "switchboard queue bridge not created");
        return;
    }
    if let Err(err) = ari.add_channels(&bridge, &[&id], &AddChannelOptions::default()).await {
        tracing::warn!(call_id = %id, error = %err, "call not added to the switchboard queue");
        return;
    }
    tracing::info!(switchboard = %sb.uuid, call_id = %id, "call queued in the switchboard");
    svc.switchboards
        .put(Kind::Queued, Entry::new(&sb, &e.channel), &svc.bus);
    if let Some(secs) = sb.timeout.filter(|t| *t > 0) {
        let (state, ari, bus) = (svc.switchboards.clone(), ari.clone(), svc.bus.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(secs.unsigned_abs())).await;
            queue_timeout(&state, &ari, &bus, &id).await;
        });
    }
}

/// The switchboard's `timeout` passed and nobody answered: the call leaves
/// the queue and goes back to the dialplan, where its no-answer fallback
/// follows the Stasis step.
async fn queue_timeout(state: &Switchboards, ari: &AriClient, bus: &crate::bus::Bus, id: &str) {
    // Answered (or gone) meanwhile: nothing to do.
    if state.take(Kind::Queued, id, bus).is_none() {
        return;
    }
    tracing::info!(call_id = id, "switchboard queue timeout: to the no-answer fallback");
    if let Err(err) = ari.continue_in_dialplan(id, &ContinueParams::default()).await {
        tracing::warn!(call_id = id, error = %err, "cannot send the timed-out call back to the dialplan");
    }
}

/// The operator answered (its originated channel entered the application):
/// the call it answers and the operator go into a new mixing bridge.
pub async fn operator_answered(svc: &CalldService, e: &StasisStart) {
    let operator = e.channel.id.clone();
    let Some(answering) = svc.switchboards.answering.remove(&operator).map(|(_, a)| a) else {
        tracing::warn!(call_id = %operator, "operator call for no answer in progress; hung up");
        if let Some(ari) = svc.ari.get() {
            let _ = ari.hangup(&operator, None).await;
        }
        return;
    };
    let Some(ari) = svc.ari.get() else { return };
    // Another operator was quicker, or the caller hung up while this one rang.
    if svc.switchboards.entry(answering.kind, &answering.call_id).is_none() {
        tracing::info!(call_id = %answering.call_id, operator = %operator, "switchboard call no longer waiting; operator hung up");
        if let Err(err) = ari.hangup(&operator, None).await {
            tracing::warn!(operator = %operator, error = %err, "operator not hung up");
        }
        return;
    }
    let bridge = format!("switchboard-{}-{}", answering.switchboard, Uuid::new_v4());
    let params = BridgeParams {
        bridge_type: Some("mixing".into()),
        bridge_id: Some(bridge.clone()),
        name: Some(bridge.clone()),
    };
    let call = answering.call_id.clone();
    let bridged = match ari.create_bridge(&params).await {
        Ok(_) => {
            ari.add_channels(&bridge, &[&call, &operator], &AddChannelOptions::default())
                .await
        }
        Err(err) => Err(err),
    };
    if let Err(err) = bridged {
        // The call stays where it waits; the operator is hung up.
        tracing::warn!(call_id = %call, operator = %operator, error = %err, "switchboard call not bridged to the operator");
        let _ = ari.hangup(&operator, None).await;
        return;
    }
    tracing::info!(switchboard = %answering.switchboard, call_id = %call, operator = %operator, "switchboard call answered");
    svc.switchboards.answered(&answering, &operator, &bridge, &svc.bus);
}

/// Every event of the main websocket: a call leaving the application leaves
/// its switchboard (and the operator talking to it is forgotten).
pub async fn on_event(svc: &CalldService, event: &AriEvent) {
    let id = match event {
        AriEvent::StasisEnd(e) => &e.channel.id,
        AriEvent::ChannelDestroyed(e) => &e.channel.id,
        _ => return,
    };
    svc.switchboards.gone(id, &svc.bus);
}

impl CalldService {
    /// The switchboard, if the request may see it (else 404 `no-such-switchboard`).
    async fn visible_switchboard(&self, scope: &Scope, uuid: &str) -> Result<SwitchboardInfo, ApiError> {
        let parsed = Uuid::parse_str(uuid).map_err(|_| no_such_switchboard(uuid))?;
        match load(self, parsed).await? {
            Some(sb) if scope.can_see(sb.tenant) => Ok(sb),
            _ => Err(no_such_switchboard(uuid)),
        }
    }

    /// `GET /switchboards/{uuid}/calls/queued|held`.
    pub async fn switchboard_calls(&self, scope: &Scope, uuid: &str, kind: Kind) -> Result<Value, ApiError> {
        let sb = self.visible_switchboard(scope, uuid).await?;
        self.ari_link()?;
        Ok(json!({ "items": self.switchboards.items(kind, sb.uuid) }))
    }

    /// `PUT /switchboards/{uuid}/calls/queued|held/{call_id}/answer?line_id=`:
    /// rings the operator's line; the call is bridged when the operator answers.
    pub async fn switchboard_answer(
        &self,
        scope: &Scope,
        uuid: &str,
        call_id: &str,
        kind: Kind,
        line_id: Option<i64>,
    ) -> Result<Value, ApiError> {
        let sb = self.visible_switchboard(scope, uuid).await?;
        let entry = self
            .switchboards
            .entry(kind, call_id)
            .filter(|e| e.switchboard == sb.uuid)
            .ok_or_else(|| no_such_call(call_id))?;
        let user = scope.caller().user_uuid();
        if !sb.members.contains(&user) {
            return Err(not_a_member(user, sb.uuid));
        }
        let operator = self
            .user_lines(user, vec![sb.tenant])
            .await?
            .ok_or_else(|| not_a_member(user, sb.uuid))?;
        let (plan, _) = Self::plan(user, &operator, line_id, false, false, false)?;
        let ari = self.ari_link()?;
        let params = OriginateParams {
            endpoint: plan.endpoint.clone(),
            app: Some(self.main_app().to_string()),
            app_args: Some(format!("{ANSWER_PURPOSE},{},{call_id}", sb.uuid)),
            caller_id: Some(entry.caller_id()),
            variables: Some(plan.variables),
            ..OriginateParams::default()
        };
        let ch = ari.originate(&params).await.map_err(|e| ari_error(&plan.endpoint, e))?;
        tracing::info!(switchboard = %sb.uuid, call_id, operator = %ch.id, "switchboard operator rung");
        self.switchboards.answering.insert(
            ch.id.clone(),
            Answering {
                switchboard: sb.uuid,
                tenant: sb.tenant,
                call_id: call_id.to_string(),
                kind,
            },
        );
        Ok(json!({ "call_id": ch.id }))
    }

    /// `PUT /switchboards/{uuid}/calls/held/{call_id}`: the call (queued, or
    /// talking to an operator) moves to the held bridge; its operator hangs up.
    pub async fn switchboard_hold(&self, scope: &Scope, uuid: &str, call_id: &str) -> Result<(), ApiError> {
        let sb = self.visible_switchboard(scope, uuid).await?;
        let talking: Option<Talking> = self
            .switchboards
            .talking
            .get(call_id)
            .map(|t| t.clone())
            .filter(|t| t.entry.switchboard == sb.uuid);
        let entry = match &talking {
            Some(t) => t.entry.clone(),
            None => self
                .switchboards
                .entry(Kind::Queued, call_id)
                .or_else(|| self.switchboards.entry(Kind::Held, call_id))
                .filter(|e| e.switchboard == sb.uuid)
                .ok_or_else(|| no_such_call(call_id))?,
        };
        let ari = self.ari_link()?;
        let bridge = held_bridge(sb.uuid);
        ensure_holding(ari, &bridge, sb.waiting_room_music_on_hold.as_deref())
            .await
            .map_err(|e| ari_error(&bridge, e))?;
        ari.add_channels(&bridge, &[call_id], &AddChannelOptions::default())
            .await
            .map_err(|e| ari_error(call_id, e))?;
        tracing::info!(switchboard = %sb.uuid, call_id, "switchboard call held");
        let bus = &self.bus;
        self.switchboards.take(Kind::Queued, call_id, bus);
        self.switchboards.talking.remove(call_id);
        self.switchboards.put(Kind::Held, entry, bus);
        if let Some(t) = talking {
            // The operator's leg ends with the conversation, and so does its bridge.
            self.switchboards.talking.remove(&t.operator);
            for (what, result) in [
                ("operator", ari.hangup(&t.operator, None).await),
                ("bridge", ari.destroy_bridge(&t.bridge).await),
            ] {
                match result {
                    Ok(()) | Err(AriError::NotFound { .. }) => {}
                    Err(e) => tracing::warn!(switchboard = %sb.uuid, what, error = %e, "after hold"),
                }
            }
        }
        Ok(())
    }
}

/// The service's switchboard state, shared with nothing else.
pub fn new_state() -> Arc<Switchboards> {
    Arc::new(Switchboards::default())
}
