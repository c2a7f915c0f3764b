//! Adhoc conferences (`/users/me/conferences/adhoc`): a user merges their calls into one
//! conversation without a conference room. The user's host call (their leg and the party
//! on the other side) and the other side of each participant call go into a mixing bridge
//! of accentd's Stasis application, whose id is the conference id; the user's own legs of
//! the participant calls end (Asterisk hangs them up when their party is redirected away,
//! as scenario 07b recorded, and calld makes sure once the party arrived).
//!
//! The user owns the conference: when the host leaves, everybody is hung up; when the host
//! is left alone, the host is hung up too; the empty bridge is destroyed and
//! `conference_adhoc_deleted` published. Conferences live in memory, like transfers.

pub mod routes;

use dashmap::DashMap;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::actions::{ari_error, custom};
use super::CalldService;
use crate::api::error::ApiError;
use crate::ari::client::{AddChannelOptions, BridgeParams};
use crate::ari::events::{AriEvent, StasisStart};
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};
use crate::control::model::Channel;

/// The Stasis argument of the channels calld brings into a conference.
pub const PURPOSE: &str = "adhoc";
/// The most participant calls one request may merge.
const MAX_PARTICIPANTS: usize = 100;

/// One adhoc conference.
#[derive(Debug, Clone)]
pub struct Adhoc {
    /// The conference id, also its bridge's id.
    pub id: String,
    pub tenant: Uuid,
    /// The user who made it, to whom its events go.
    pub user: Uuid,
    /// The user's channel in the conference.
    pub host: String,
}

/// The conferences, and the channels on their way into one.
#[derive(Debug, Default)]
pub struct Adhocs {
    conferences: DashMap<String, Adhoc>,
    /// Channel id -> (conference id, the user's leg to end once the channel arrived).
    arriving: DashMap<String, (String, Option<String>)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdhocRequest {
    host_call_id: String,
    participant_call_ids: Vec<String>,
}

fn not_found(id: &str) -> ApiError {
    custom(
        warp::http::StatusCode::NOT_FOUND,
        "adhoc-conference-not-found",
        "No such adhoc conference",
        json!({ "conference_id": id }),
    )
}

fn bad_call(error_id: &'static str, message: &str, call_id: &str) -> ApiError {
    custom(
        warp::http::StatusCode::BAD_REQUEST,
        error_id,
        message,
        json!({ "call_id": call_id }),
    )
}

fn already_in(error_id: &'static str, call_id: &str, conference: &str) -> ApiError {
    custom(
        warp::http::StatusCode::CONFLICT,
        error_id,
        "The call is already in an adhoc conference",
        json!({ "call_id": call_id, "conference_id": conference }),
    )
}

impl CalldService {
    fn adhoc_event(&self, name: &str, verb: &str, conf: &Adhoc, data: Value) {
        let user = escape_key(&conf.user.to_string());
        let key = format!("conferences.users.{user}.adhoc.{verb}");
        self.bus.publish(
            EventSpec::new(name, &key, data)
                .tenant(conf.tenant)
                .acl(format!("events.{key}"))
                .users(vec![conf.user]),
        );
    }

    /// The conference a channel is in or on its way to, if any.
    fn adhoc_of(&self, channel: &Channel) -> Option<String> {
        if let Some(b) = channel
            .bridge_id
            .as_deref()
            .filter(|b| self.adhocs.conferences.contains_key(*b))
        {
            return Some(b.to_string());
        }
        self.adhocs.arriving.get(&channel.id).map(|a| a.0.clone())
    }

    /// The user's call `id`, the one party it talks to, and the user's tenant.
    async fn users_two_party_call(
        &self,
        scope: &Scope,
        user: Uuid,
        id: &str,
        missing: &'static str,
    ) -> Result<(Channel, Channel, Uuid), ApiError> {
        let what = if missing == "host-call-not-found" {
            "Host call"
        } else {
            "Participant call"
        };
        let (call, owner) = self
            .find(scope, id, Some(user))
            .await
            .map_err(|_| bad_call(missing, &format!("{what} not found"), id))?;
        let peer = match call.talking_to.as_slice() {
            [peer] => self.live.channel(peer),
            _ => None,
        };
        let peer = peer.ok_or_else(|| bad_call(missing, &format!("{what} is not talking to exactly one party"), id))?;
        Ok((call, peer, owner.tenant()))
    }

    /// `POST /users/me/conferences/adhoc`.
    pub async fn create_adhoc(&self, scope: &Scope, user: Uuid, req: AdhocRequest) -> Result<Value, ApiError> {
        if req.participant_call_ids.len() > MAX_PARTICIPANTS {
            return Err(ApiError::invalid_field(
                "participant_call_ids",
                format!("At most {MAX_PARTICIPANTS} calls."),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = req
            .participant_call_ids
            .iter()
            .find(|c| **c == req.host_call_id || !seen.insert(c.as_str()))
        {
            return Err(ApiError::invalid_field(
                "participant_call_ids",
                format!("{dup} is given twice (or is the host call)."),
            ));
        }
        let (host, host_peer, tenant) = self
            .users_two_party_call(scope, user, &req.host_call_id, "host-call-not-found")
            .await?;
        if let Some(conf) = self.adhoc_of(&host) {
            return Err(already_in("host-already-in-conference", &host.id, &conf));
        }
        let mut participants = Vec::new();
        for id in &req.participant_call_ids {
            let (leg, peer, _) = self
                .users_two_party_call(scope, user, id, "participant-call-not-found")
                .await?;
            if let Some(conf) = self.adhoc_of(&leg) {
                return Err(already_in("participant-call-already-in-conference", &leg.id, &conf));
            }
            participants.push((leg, peer));
        }
        let ari = self.ari_link()?;
        self.ami_link()?;
        let id = Uuid::new_v4().to_string();
        let params = BridgeParams {
            bridge_type: Some("mixing".into()),
            bridge_id: Some(id.clone()),
            name: Some(format!("accentd-adhoc-{id}")),
        };
        ari.create_bridge(&params).await.map_err(|e| ari_error(&host.id, e))?;
        let conf = Adhoc {
            id: id.clone(),
            tenant,
            user,
            host: host.id.clone(),
        };
        self.adhocs.conferences.insert(id.clone(), conf.clone());
        for ch in [&host, &host_peer] {
            self.adhocs.arriving.insert(ch.id.clone(), (id.clone(), None));
        }
        for (leg, peer) in &participants {
            self.adhocs
                .arriving
                .insert(peer.id.clone(), (id.clone(), Some(leg.id.clone())));
        }
        self.adhoc_event(
            "conference_adhoc_created",
            "created",
            &conf,
            json!({ "conference_id": id }),
        );
        // Both parties of the host call move in one Redirect, so neither is hung up.
        if let Err(e) = self.bring_into_stasis(&[&host, &host_peer], PURPOSE).await {
            self.drop_adhoc(&id).await;
            return Err(e);
        }
        for (_, peer) in &participants {
            if let Err(e) = self.bring_into_stasis(&[peer], PURPOSE).await {
                tracing::warn!(conference = %id, call_id = %peer.id, error = %e, "participant not brought into the adhoc conference");
                self.adhocs.arriving.remove(&peer.id);
            }
        }
        tracing::info!(conference = %id, host = %host.id, participants = participants.len(), "adhoc conference created");
        Ok(json!({ "conference_id": id }))
    }

    fn my_adhoc(&self, user: Uuid, id: &str) -> Result<Adhoc, ApiError> {
        self.adhocs
            .conferences
            .get(id)
            .map(|c| c.clone())
            .filter(|c| c.user == user)
            .ok_or_else(|| not_found(id))
    }

    /// The channels in a conference's bridge, as the live state knows them.
    fn adhoc_members(&self, id: &str) -> Vec<String> {
        self.live
            .channels()
            .into_iter()
            .filter(|c| c.bridge_id.as_deref() == Some(id))
            .map(|c| c.id)
            .collect()
    }

    /// `DELETE /users/me/conferences/adhoc/{id}`: every call in it is hung up.
    pub async fn delete_adhoc(&self, user: Uuid, id: &str) -> Result<(), ApiError> {
        let conf = self.my_adhoc(user, id)?;
        self.ari_link()?;
        let members = self.adhoc_members(&conf.id);
        self.end_adhoc(&conf.id, &members, "adhoc conference deleted").await;
        Ok(())
    }

    /// `PUT /users/me/conferences/adhoc/{id}/participants/{call_id}`: the party of the
    /// user's call `call_id` joins; the user's leg ends.
    pub async fn add_adhoc_participant(
        &self,
        scope: &Scope,
        user: Uuid,
        id: &str,
        call_id: &str,
    ) -> Result<(), ApiError> {
        let conf = self.my_adhoc(user, id)?;
        let (leg, peer, _) = self
            .users_two_party_call(scope, user, call_id, "participant-call-not-found")
            .await?;
        if let Some(other) = self.adhoc_of(&leg).or_else(|| self.adhoc_of(&peer)) {
            return Err(already_in("participant-call-already-in-conference", &leg.id, &other));
        }
        self.ari_link()?;
        self.adhocs
            .arriving
            .insert(peer.id.clone(), (conf.id.clone(), Some(leg.id.clone())));
        if let Err(e) = self.bring_into_stasis(&[&peer], PURPOSE).await {
            self.adhocs.arriving.remove(&peer.id);
            return Err(e);
        }
        Ok(())
    }

    /// `DELETE /users/me/conferences/adhoc/{id}/participants/{call_id}`: the participant is
    /// hung up.
    pub async fn remove_adhoc_participant(&self, user: Uuid, id: &str, call_id: &str) -> Result<(), ApiError> {
        let conf = self.my_adhoc(user, id)?;
        if call_id == conf.host || !self.adhoc_members(&conf.id).iter().any(|c| c == call_id) {
            return Err(bad_call(
                "participant-call-not-found",
                "Participant call not found in the conference",
                call_id,
            ));
        }
        let ari = self.ari_link()?;
        ari.hangup(call_id, None).await.map_err(|e| ari_error(call_id, e))
    }

    /// Hangs up every call of a conference (`members`, those in its bridge); the bridge
    /// goes when it is empty.
    async fn end_adhoc(&self, id: &str, members: &[String], why: &str) {
        self.adhocs.arriving.retain(|_, (conf, _)| conf != id);
        if members.is_empty() {
            self.drop_adhoc(id).await;
            return;
        }
        for member in members {
            self.hang_up_quietly(member, why).await;
        }
    }

    /// Forgets a conference: its bridge destroyed, `conference_adhoc_deleted` published.
    async fn drop_adhoc(&self, id: &str) {
        let Some((_, conf)) = self.adhocs.conferences.remove(id) else {
            return;
        };
        self.adhocs.arriving.retain(|_, (c, _)| c != id);
        if let Some(ari) = self.ari.get() {
            if let Err(err) = ari.destroy_bridge(id).await {
                tracing::debug!(conference = id, error = %err, "adhoc bridge not destroyed");
            }
        }
        self.adhoc_event(
            "conference_adhoc_deleted",
            "deleted",
            &conf,
            json!({ "conference_id": id }),
        );
        tracing::info!(conference = id, "adhoc conference over");
    }

    /// A channel entered the application for a conference: it joins the bridge; the user's
    /// leg it talked to ends.
    pub(super) async fn adhoc_entered(&self, e: &StasisStart) {
        let id = e.channel.id.as_str();
        let Some((_, (conf, leg))) = self.adhocs.arriving.remove(id) else {
            return self.unclaimed(e).await;
        };
        let Some(ari) = self.ari.get() else { return };
        if let Err(err) = ari.add_channels(&conf, &[id], &AddChannelOptions::default()).await {
            tracing::warn!(conference = %conf, call_id = id, error = %err, "call not added to its adhoc conference");
            self.hang_up_quietly(id, "cannot join its adhoc conference").await;
        }
        if let Some(leg) = leg {
            self.hang_up_quietly(&leg, "its party joined an adhoc conference").await;
        }
    }

    /// Follows the conferences' bridges: joins and leaves published, the host leaving or
    /// left alone ends the conference, the empty bridge is dropped.
    pub(super) async fn follow_adhocs(&self, event: &AriEvent) {
        let (bridge, channel, entered) = match event {
            AriEvent::ChannelEnteredBridge(e) => match &e.channel {
                Some(channel) => (&e.bridge, channel, true),
                None => return,
            },
            AriEvent::ChannelLeftBridge(e) => (&e.bridge, &e.channel, false),
            _ => return,
        };
        let Some(conf) = self.adhocs.conferences.get(&bridge.id).map(|c| c.clone()) else {
            return;
        };
        let call_id = channel.id.as_str();
        if call_id != conf.host {
            let (name, verb) = if entered {
                ("conference_adhoc_participant_joined", "participants.joined")
            } else {
                ("conference_adhoc_participant_left", "participants.left")
            };
            self.adhoc_event(
                name,
                verb,
                &conf,
                json!({ "conference_id": conf.id, "call_id": call_id }),
            );
        }
        if entered {
            return;
        }
        let arriving = self.adhocs.arriving.iter().any(|a| a.value().0 == conf.id);
        match bridge.channels.as_slice() {
            [] => self.drop_adhoc(&conf.id).await,
            members if call_id == conf.host => {
                self.end_adhoc(&conf.id, members, "the adhoc conference's host left")
                    .await
            }
            [alone] if *alone == conf.host && !arriving => {
                self.hang_up_quietly(alone, "alone in the adhoc conference").await
            }
            _ => {}
        }
    }
}
