//! Relocates (`/users/me/relocates`): the user moves a call of theirs to another of their
//! lines or to their mobile phone; the party they talk to (the relocated call) ends up
//! talking to the new leg (the recipient call) and the old leg (the initiator call) is hung
//! up.
//!
//! calld does it in accentd's Stasis application: the recipient is originated into it
//! (`appArgs` `relocate,<uuid>`: its `StasisStart` is its answer), and both parties of the
//! call are moved into it in one AMI `Redirect` ([`moves`](super::moves)) and put back
//! together in a pair bridge, so they go on talking while the recipient rings. Completing
//! adds the recipient to that bridge and hangs up the initiator: at once when it answers
//! (`answer` completion), or on `PUT .../complete` (`api`). If the recipient does not answer
//! within `timeout` (the originate's own ring time), hangs up, or the relocate is cancelled,
//! the relocate ends and the call stays as it was.
//!
//! Relocates live in memory, like transfers.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::actions::{ari_error, custom};
use super::moves::{caller_id_text, PAIR_BRIDGE_PREFIX};
use super::originate::{invalid, originate_error};
use super::CalldService;
use crate::api::error::ApiError;
use crate::ari::client::OriginateParams;
use crate::ari::error::AriError;
use crate::ari::events::{AriEvent, StasisStart};
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};

/// upstream's ring time for the recipient when the request gives none.
const DEFAULT_TIMEOUT: i64 = 30;
const MAX_TIMEOUT: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Completion {
    Answer,
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    Line,
    Mobile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    line_id: Option<i64>,
    contact: Option<String>,
}

fn answer_only() -> Vec<Completion> {
    vec![Completion::Answer]
}

fn default_timeout() -> i64 {
    DEFAULT_TIMEOUT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelocateRequest {
    initiator_call: String,
    destination: Destination,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default = "answer_only")]
    completions: Vec<Completion>,
    #[serde(default = "default_timeout")]
    timeout: i64,
    #[serde(default)]
    auto_answer: bool,
}

/// upstream's relocate object, and what calld follows it by.
#[derive(Debug, Clone, Serialize)]
pub struct Relocate {
    pub uuid: String,
    pub relocated_call: String,
    pub initiator_call: String,
    pub recipient_call: Option<String>,
    pub completions: Vec<Completion>,
    pub initiator: Uuid,
    pub timeout: i64,
    pub auto_answer: bool,
    #[serde(skip)]
    tenant: Uuid,
    /// The recipient answered.
    #[serde(skip)]
    answered: bool,
    /// The pair bridge of the relocated call and the initiator, and whether it exists.
    #[serde(skip)]
    bridge: String,
    #[serde(skip)]
    bridged: bool,
}

impl Relocate {
    fn involves(&self, id: &str) -> bool {
        self.relocated_call == id || self.initiator_call == id || self.recipient_call.as_deref() == Some(id)
    }
}

fn no_such_relocate(id: &str) -> ApiError {
    custom(
        StatusCode::NOT_FOUND,
        "no-such-relocate",
        "No such relocate",
        json!({ "relocate_uuid": id }),
    )
}

/// A SIP contact for `PJSIP/<endpoint>/<contact>`: a SIP URI that cannot end the dial string.
fn check_contact(contact: &str) -> Result<(), ApiError> {
    let ok = (contact.starts_with("sip:") || contact.starts_with("sips:"))
        && contact.len() <= 256
        && !contact
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, ',' | '&' | '|' | '"' | '(' | ')'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "location.contact",
            "Must be a SIP URI (sip:...) without spaces, commas or &.",
        ))
    }
}

impl CalldService {
    fn relocate_event(&self, name: &str, key: &str, r: &Relocate) {
        self.bus.publish(
            EventSpec::new(name, key, json!(r))
                .tenant(r.tenant)
                .acl(format!("events.relocates.{}", escape_key(&r.initiator.to_string())))
                .users(vec![r.initiator]),
        );
    }

    /// The relocate moving a channel (relocated, initiator or recipient), if any.
    pub(super) fn relocate_of_call(&self, id: &str) -> Option<String> {
        self.relocates.iter().find(|r| r.involves(id)).map(|r| r.uuid.clone())
    }

    fn my_relocate(&self, user: Uuid, id: &str) -> Result<Relocate, ApiError> {
        self.relocates
            .get(id)
            .map(|r| r.clone())
            .filter(|r| r.initiator == user)
            .ok_or_else(|| no_such_relocate(id))
    }

    /// `GET /users/me/relocates`.
    pub fn my_relocates(&self, user: Uuid) -> Value {
        let mut items: Vec<Relocate> = self
            .relocates
            .iter()
            .filter(|r| r.initiator == user)
            .map(|r| r.clone())
            .collect();
        items.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        json!({ "items": items })
    }

    /// `GET /users/me/relocates/{uuid}`.
    pub fn get_relocate(&self, user: Uuid, id: &str) -> Result<Value, ApiError> {
        Ok(json!(self.my_relocate(user, id)?))
    }

    /// `POST /users/me/relocates`.
    pub async fn create_relocate(&self, scope: &Scope, user: Uuid, req: RelocateRequest) -> Result<Value, ApiError> {
        if !(1..=MAX_TIMEOUT).contains(&req.timeout) {
            return Err(ApiError::invalid_field(
                "timeout",
                format!("Must be between 1 and {MAX_TIMEOUT}."),
            ));
        }
        let mut completions = if req.completions.is_empty() {
            answer_only()
        } else {
            req.completions.clone()
        };
        completions.dedup();
        let location = req.location.unwrap_or_default();
        let line_id = match (req.destination, &location) {
            (Destination::Line, Location { line_id: Some(id), .. }) => Some(*id),
            (Destination::Line, _) => {
                return Err(ApiError::invalid_field(
                    "location.line_id",
                    "Missing data for required field.",
                ))
            }
            (
                Destination::Mobile,
                Location {
                    line_id: None,
                    contact: None,
                },
            ) => None,
            (Destination::Mobile, _) => {
                return Err(ApiError::invalid_field(
                    "location",
                    "A mobile destination takes no location.",
                ))
            }
        };
        if let Some(contact) = &location.contact {
            check_contact(contact)?;
        }
        let ari = self.ari_link()?;
        let (initiator, owner) = self.find(scope, &req.initiator_call, None).await?;
        if owner.user_uuid() != Some(user) {
            return Err(ApiError::Forbidden {
                error_id: "user-permission-denied",
                message: "The call is not the user's".into(),
            });
        }
        let relocated = match initiator.talking_to.as_slice() {
            [one] => self.live.channel(one).ok_or_else(|| super::calls::no_such_call(one))?,
            _ => {
                return Err(custom(
                    StatusCode::CONFLICT,
                    "relocate-creation-error",
                    "Cannot tell which call to relocate: the call talks to nobody or to several parties",
                    json!({ "initiator_call": initiator.id }),
                ))
            }
        };
        if self.call_busy(&initiator.id) || self.call_busy(&relocated.id) {
            return Err(custom(
                StatusCode::CONFLICT,
                "relocate-already-started",
                "A relocate is already in progress on this call",
                json!({ "initiator_call": initiator.id }),
            ));
        }
        let caller = self
            .user_lines(user, scope.tenants(false))
            .await?
            .ok_or_else(|| invalid("invalid-user", "Invalid user: not found", json!({ "user_uuid": user })))?;
        let mobile = req.destination == Destination::Mobile;
        let (plan, _) = Self::plan(user, &caller, line_id, false, mobile, req.auto_answer)?;
        let endpoint = match &location.contact {
            Some(contact) if plan.endpoint.starts_with("PJSIP/") => format!("{}/{contact}", plan.endpoint),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "location.contact",
                    "Only a SIP line has contacts.",
                ))
            }
            None => plan.endpoint.clone(),
        };

        // Both parties still in the pair bridge of an earlier relocate (cancelled, or not
        // answered): they stay there; nothing to move.
        let main = self.main_app();
        let in_pair = |c: &crate::control::model::Channel| {
            c.stasis_app.as_deref() == Some(main)
                && c.bridge_id
                    .as_deref()
                    .is_some_and(|b| b.starts_with(PAIR_BRIDGE_PREFIX))
        };
        let kept = (in_pair(&relocated) && in_pair(&initiator) && relocated.bridge_id == initiator.bridge_id)
            .then(|| relocated.bridge_id.clone())
            .flatten();
        let uuid = Uuid::new_v4().to_string();
        let mut r = Relocate {
            bridge: kept.clone().unwrap_or_else(|| format!("{PAIR_BRIDGE_PREFIX}{uuid}")),
            bridged: kept.is_some(),
            uuid,
            relocated_call: relocated.id.clone(),
            initiator_call: initiator.id.clone(),
            recipient_call: None,
            completions,
            initiator: user,
            timeout: req.timeout,
            auto_answer: req.auto_answer,
            tenant: owner.tenant(),
            answered: false,
        };
        // Known before Asterisk is asked anything: the channels' StasisStart may come before
        // the answers.
        self.relocates.insert(r.uuid.clone(), r.clone());
        let params = OriginateParams {
            endpoint: endpoint.clone(),
            app: Some(self.main_app().to_string()),
            app_args: Some(format!("relocate,{}", r.uuid)),
            caller_id: caller_id_text(&relocated.caller),
            timeout: Some(req.timeout),
            originator: Some(relocated.id.clone()),
            variables: Some(plan.variables),
            ..OriginateParams::default()
        };
        let recipient = match ari.originate(&params).await {
            Ok(ch) => ch,
            Err(e) => {
                self.relocates.remove(&r.uuid);
                return Err(originate_error("relocate-creation-error", &endpoint, e));
            }
        };
        r.recipient_call = Some(recipient.id.clone());
        if let Some(mut stored) = self.relocates.get_mut(&r.uuid) {
            stored.recipient_call = Some(recipient.id.clone());
        }
        let moved = match kept {
            Some(_) => Ok(()),
            None => self.bring_into_stasis(&[&relocated, &initiator], "relocate").await,
        };
        if let Err(e) = moved {
            self.relocates.remove(&r.uuid);
            self.hang_up_quietly(&recipient.id, "the relocated call cannot be moved")
                .await;
            return Err(e);
        }
        tracing::info!(relocate = %r.uuid, relocated = %r.relocated_call, recipient = %recipient.id, "relocate initiated");
        self.relocate_event("relocate_initiated", "calls.relocate.created", &r);
        Ok(json!(r))
    }

    /// `PUT /users/me/relocates/{uuid}/complete`: only once the recipient answered.
    pub async fn complete_relocate(&self, user: Uuid, id: &str) -> Result<(), ApiError> {
        let r = self.my_relocate(user, id)?;
        if !r.answered {
            return Err(custom(
                StatusCode::BAD_REQUEST,
                "relocate-completion-error",
                "The recipient has not answered yet",
                json!({ "relocate_uuid": id }),
            ));
        }
        self.ari_link()?;
        self.finish_relocate(&r.uuid).await;
        Ok(())
    }

    /// `PUT /users/me/relocates/{uuid}/cancel`: the recipient is hung up, the call goes on.
    pub async fn cancel_relocate(&self, user: Uuid, id: &str) -> Result<(), ApiError> {
        let r = self.my_relocate(user, id)?;
        let ari = self.ari_link()?;
        if let Some(recipient) = &r.recipient_call {
            match ari.hangup(recipient, None).await {
                Ok(()) | Err(AriError::NotFound { .. }) => {}
                Err(e) => return Err(ari_error(recipient, e)),
            }
        }
        self.end_relocate(&r.uuid, "cancelled");
        Ok(())
    }

    fn end_relocate(&self, id: &str, why: &str) {
        if let Some((_, r)) = self.relocates.remove(id) {
            tracing::info!(relocate = id, why, "relocate ended");
            self.relocate_event("relocate_ended", "calls.relocate.deleted", &r);
        }
    }

    /// Completes: the recipient joins the relocated call, the initiator is hung up.
    async fn finish_relocate(&self, id: &str) {
        let Some((_, r)) = self.relocates.remove(id) else {
            return;
        };
        if let Some(recipient) = &r.recipient_call {
            self.join_pair_bridge(&r.bridge, recipient, !r.bridged).await;
        }
        self.hang_up_quietly(&r.initiator_call, "relocated").await;
        tracing::info!(relocate = id, "relocate completed");
        self.relocate_event("relocate_completed", "calls.relocate.edited", &r);
        self.relocate_event("relocate_ended", "calls.relocate.deleted", &r);
    }

    /// A channel entered the application for a relocate: the recipient answered
    /// (`relocate,<uuid>`), or a party of the call arrived (`relocate`).
    pub(super) async fn relocate_entered(&self, e: &StasisStart) {
        let id = e.channel.id.as_str();
        if let Some(uuid) = e.args.get(1) {
            let answered = self.relocates.get_mut(uuid).map(|mut r| {
                r.recipient_call.get_or_insert_with(|| id.to_string());
                r.answered = true;
                r.clone()
            });
            let Some(r) = answered.filter(|r| r.recipient_call.as_deref() == Some(id)) else {
                self.hang_up_quietly(id, "answered a relocate calld does not know")
                    .await;
                return;
            };
            tracing::info!(relocate = %uuid, recipient = id, "relocate answered");
            self.relocate_event("relocate_answered", "calls.relocate.edited", &r);
            if r.completions.contains(&Completion::Answer) {
                self.finish_relocate(uuid).await;
            }
            return;
        }
        let party = self
            .relocates
            .iter_mut()
            .find(|r| r.relocated_call == id || r.initiator_call == id)
            .map(|mut r| {
                let create = !r.bridged;
                r.bridged = true;
                (r.bridge.clone(), create)
            });
        match party {
            Some((bridge, create)) => self.join_pair_bridge(&bridge, id, create).await,
            None => self.unclaimed(e).await,
        }
    }

    /// Follows relocates on the main application's events: a party or the recipient hung up.
    pub(super) async fn follow_relocates(&self, event: &AriEvent) {
        let AriEvent::ChannelDestroyed(e) = event else { return };
        let id = e.channel.id.as_str();
        let Some(uuid) = self.relocate_of_call(id) else { return };
        let Some(r) = self.relocates.get(&uuid).map(|r| r.clone()) else {
            return;
        };
        if r.recipient_call.as_deref() != Some(id) {
            // The call ended under the relocate: nothing left to bring the recipient to.
            if let Some(recipient) = &r.recipient_call {
                self.hang_up_quietly(recipient, "the relocated call ended").await;
            }
        }
        self.end_relocate(&uuid, "a call of the relocate ended");
    }
}
