//! Transfers (`/transfers`, `/users/me/transfers`): the initiator hands the call it talks to
//! (the transferred call) to another extension (the recipient).
//!
//! Both flows go through AMI, which acts on any channel: a blind transfer is `BlindTransfer`
//! on the initiator's channel (recorded in scenario 07: Asterisk sends the initiator's peer
//! to the extension and answers `Transfer succeeded`); an attended one is `Atxfer`: Asterisk
//! puts the transferred party on hold and calls the recipient for the initiator. The
//! recipient call is the new channel the initiator then talks to; the transfer is `answered`
//! when that channel is up, completed when the transferred call talks to the recipient (the
//! initiator hanging up completes it, which is what `complete` asks Asterisk to do), and
//! cancelled with `CancelAtxfer` (Asterisk's `atxferabort` feature).
//!
//! Transfers live in memory: a transfer is as short-lived as the calls it moves.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::owners::Owner;
use super::CalldService;
use crate::ami::frame::AmiMessage;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};
use crate::control::model::{Channel, ChannelState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    #[default]
    Attended,
    Blind,
}

/// upstream's public statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Starting,
    Ringback,
    Answered,
    BlindTransferred,
    Ready,
    Abandoned,
    Ended,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    pub id: String,
    pub initiator_uuid: Option<Uuid>,
    pub initiator_tenant_uuid: Uuid,
    pub transferred_call: String,
    pub initiator_call: String,
    pub recipient_call: Option<String>,
    pub status: Status,
    pub flow: Flow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub transferred_call: String,
    pub initiator_call: String,
    pub context: String,
    pub exten: String,
    #[serde(default)]
    pub flow: Flow,
    #[serde(default)]
    pub variables: serde_json::Map<String, Value>,
    pub timeout: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTransferRequest {
    pub initiator_call: String,
    pub exten: String,
    #[serde(default)]
    pub flow: Flow,
    pub timeout: Option<u32>,
}

fn error(status: warp::http::StatusCode, error_id: &'static str, message: &str, details: Value) -> ApiError {
    ApiError::Custom {
        status,
        error_id,
        message: message.into(),
        details,
    }
}

fn creation_error(message: &str, details: Value) -> ApiError {
    error(
        warp::http::StatusCode::BAD_REQUEST,
        "transfer-creation-error",
        message,
        details,
    )
}

fn no_such_transfer(id: &str) -> ApiError {
    error(
        warp::http::StatusCode::NOT_FOUND,
        "no-such-transfer",
        "No such transfer",
        json!({ "transfer_id": id }),
    )
}

/// What Asterisk's transfer actions cannot do: set variables on the recipient call, or a ring
/// time of its own (`Atxfer` rings for features.conf's `atxfernoanswertimeout`).
fn unsupported(variables: &serde_json::Map<String, Value>, timeout: Option<u32>) -> Result<(), ApiError> {
    if !variables.is_empty() {
        return Err(ApiError::invalid_field(
            "variables",
            "Not supported: Asterisk's transfer actions cannot set variables on the recipient call.",
        ));
    }
    if timeout.is_some() {
        return Err(ApiError::invalid_field(
            "timeout",
            "Not supported: the ring time is features.conf's atxfernoanswertimeout; send null.",
        ));
    }
    Ok(())
}

impl CalldService {
    fn transfer_event(&self, name: &str, key: &str, t: &Transfer) {
        let mut spec = EventSpec::new(name, key, json!(t)).tenant(t.initiator_tenant_uuid);
        spec = match t.initiator_uuid {
            Some(u) => spec
                .acl(format!("events.transfers.{}", escape_key(&u.to_string())))
                .users(vec![u]),
            None => spec.acl("events.transfers").users(Vec::new()),
        };
        self.bus.publish(spec);
    }

    /// A transfer `scope` may see (and `user` initiated, when given).
    fn visible_transfer(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<Transfer, ApiError> {
        let t = self
            .transfers
            .get(id)
            .map(|t| t.clone())
            .ok_or_else(|| no_such_transfer(id))?;
        if !scope.can_see(t.initiator_tenant_uuid) || user.is_some_and(|u| t.initiator_uuid != Some(u)) {
            return Err(no_such_transfer(id));
        }
        Ok(t)
    }

    /// The status and recipient call of a transfer in progress, for tests and logs.
    pub fn get_transfer_status(&self, id: &str) -> Option<(String, Option<String>)> {
        self.transfers.get(id).map(|t| {
            let status = json!(t.status).as_str().unwrap_or_default().to_string();
            (status, t.recipient_call.clone())
        })
    }

    pub fn get_transfer(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<Value, ApiError> {
        Ok(json!(self.visible_transfer(scope, id, user)?))
    }

    /// The user's transfers in progress.
    pub fn my_transfers(&self, user: Uuid) -> Value {
        let mut items: Vec<Transfer> = self
            .transfers
            .iter()
            .filter(|t| t.initiator_uuid == Some(user))
            .map(|t| t.clone())
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        json!({ "items": items })
    }

    /// `POST /transfers`.
    pub async fn create_transfer(&self, scope: &Scope, req: TransferRequest) -> Result<Value, ApiError> {
        super::originate::check_dialplan_word("context", &req.context)?;
        super::originate::check_dialplan_word("exten", &req.exten)?;
        unsupported(&req.variables, req.timeout)?;
        let (initiator, owner) = self.find(scope, &req.initiator_call, None).await?;
        let (transferred, _) = self.find(scope, &req.transferred_call, None).await?;
        self.start_transfer(initiator, owner, transferred, &req.context, &req.exten, req.flow)
            .await
    }

    /// `POST /users/me/transfers`: the initiator is one of the user's calls, the transferred
    /// call the one it talks to, the recipient in the call's line context.
    pub async fn create_my_transfer(
        &self,
        scope: &Scope,
        user: Uuid,
        req: UserTransferRequest,
    ) -> Result<Value, ApiError> {
        super::originate::check_dialplan_word("exten", &req.exten)?;
        unsupported(&serde_json::Map::new(), req.timeout)?;
        let (initiator, owner) = self.find(scope, &req.initiator_call, Some(user)).await?;
        let peer = match initiator.talking_to.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(creation_error(
                    "The call talks to nobody, or to several parties",
                    json!({ "initiator_call": initiator.id }),
                ))
            }
        };
        let transferred = self
            .live
            .channel(&peer)
            .ok_or_else(|| super::calls::no_such_call(&peer))?;
        let context = initiator.dialplan.context.clone();
        super::originate::check_dialplan_word("context", &context)?;
        self.start_transfer(initiator, owner, transferred, &context, &req.exten, req.flow)
            .await
    }

    async fn start_transfer(
        &self,
        initiator: Channel,
        owner: Owner,
        transferred: Channel,
        context: &str,
        exten: &str,
        flow: Flow,
    ) -> Result<Value, ApiError> {
        if initiator.id == transferred.id {
            return Err(creation_error(
                "A call cannot be transferred to itself",
                json!({ "call_id": initiator.id }),
            ));
        }
        if !initiator.talking_to.contains(&transferred.id) {
            return Err(creation_error(
                "The initiator call does not talk to the transferred call",
                json!({ "initiator_call": initiator.id, "transferred_call": transferred.id }),
            ));
        }
        let busy = self.transfers.iter().any(|t| {
            [&t.initiator_call, &t.transferred_call]
                .iter()
                .any(|c| **c == initiator.id || **c == transferred.id)
        });
        if busy {
            return Err(error(
                warp::http::StatusCode::CONFLICT,
                "transfer-already-started",
                "A transfer is already in progress on this call",
                json!({ "initiator_call": initiator.id }),
            ));
        }
        let action = match flow {
            Flow::Blind => AmiMessage::new().with("Action", "BlindTransfer"),
            Flow::Attended => AmiMessage::new().with("Action", "Atxfer"),
        }
        .with("Channel", initiator.name.as_str())
        .with("Context", context)
        .with("Exten", exten);
        self.ami_send(&initiator.id, action).await?;
        let t = Transfer {
            id: Uuid::new_v4().to_string(),
            initiator_uuid: owner.user_uuid(),
            initiator_tenant_uuid: owner.tenant(),
            transferred_call: transferred.id.clone(),
            initiator_call: initiator.id.clone(),
            recipient_call: None,
            status: match flow {
                Flow::Blind => Status::BlindTransferred,
                Flow::Attended => Status::Starting,
            },
            flow,
        };
        tracing::info!(transfer = %t.id, flow = ?flow, initiator = %t.initiator_call, "transfer started");
        self.transfer_event("transfer_created", "calls.transfer.created", &t);
        if flow == Flow::Blind {
            // Asterisk moved the transferred party already: nothing left to follow.
            self.transfer_event("transfer_completed", "calls.transfer.edited", &t);
            self.transfer_event("transfer_ended", "calls.transfer.deleted", &t);
        } else {
            self.transfers.insert(t.id.clone(), t.clone());
        }
        Ok(json!(t))
    }

    /// Sends `action` (`Hangup`, `CancelAtxfer`) on the initiator's channel of a visible transfer.
    async fn on_initiator(&self, scope: &Scope, id: &str, user: Option<Uuid>, action: &str) -> Result<(), ApiError> {
        let t = self.visible_transfer(scope, id, user)?;
        let initiator = self
            .live
            .channel(&t.initiator_call)
            .ok_or_else(|| super::calls::no_such_call(&t.initiator_call))?;
        let action = AmiMessage::new()
            .with("Action", action)
            .with("Channel", initiator.name.as_str());
        self.ami_send(&initiator.id, action).await
    }

    /// `PUT /transfers/{id}/complete`: the initiator leaves, Asterisk connects the others.
    pub async fn complete_transfer(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<(), ApiError> {
        self.on_initiator(scope, id, user, "Hangup").await?;
        tracing::info!(transfer = id, "transfer completion requested");
        Ok(())
    }

    /// `DELETE /transfers/{id}`: the recipient is hung up, the initiator gets the call back.
    pub async fn cancel_transfer(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<(), ApiError> {
        self.on_initiator(scope, id, user, "CancelAtxfer").await?;
        if let Some((_, t)) = self.transfers.remove(id) {
            self.transfer_event("transfer_cancelled", "calls.transfer.edited", &t);
            self.transfer_event("transfer_ended", "calls.transfer.deleted", &t);
        }
        tracing::info!(transfer = id, "transfer cancelled");
        Ok(())
    }

    /// Follows attended transfers on a channel change: the recipient call appears (the new
    /// party the initiator talks to), answers, gets the transferred call (completed), or the
    /// transferred call ends first (abandoned).
    pub(super) fn follow_transfers(&self, ch: &Channel, gone: bool) {
        let ids: Vec<String> = self
            .transfers
            .iter()
            .filter(|t| {
                t.initiator_call == ch.id
                    || t.transferred_call == ch.id
                    || t.recipient_call.as_deref() == Some(ch.id.as_str())
            })
            .map(|t| t.id.clone())
            .collect();
        for id in ids {
            let Some(mut t) = self.transfers.get(&id).map(|t| t.clone()) else {
                continue;
            };
            let before = (t.status, t.recipient_call.clone());
            if gone && ch.id == t.transferred_call {
                self.transfers.remove(&id);
                t.status = Status::Abandoned;
                self.transfer_event("transfer_abandoned", "calls.transfer.edited", &t);
                t.status = Status::Ended;
                self.transfer_event("transfer_ended", "calls.transfer.deleted", &t);
                continue;
            }
            if !gone && ch.id == t.initiator_call && t.recipient_call.is_none() {
                t.recipient_call = ch.talking_to.iter().find(|c| **c != t.transferred_call).cloned();
            }
            let recipient = t.recipient_call.as_deref().and_then(|r| self.live.channel(r));
            if let Some(r) = &recipient {
                if r.talking_to.contains(&t.transferred_call) {
                    self.transfers.remove(&id);
                    t.status = Status::Ended;
                    self.transfer_event("transfer_completed", "calls.transfer.edited", &t);
                    self.transfer_event("transfer_ended", "calls.transfer.deleted", &t);
                    continue;
                }
                t.status = if r.state == ChannelState::Up {
                    Status::Answered
                } else {
                    Status::Ringback
                };
            }
            if (t.status, t.recipient_call.clone()) != before {
                let answered = t.status == Status::Answered && before.0 != Status::Answered;
                self.transfers.insert(id.clone(), t.clone());
                self.transfer_event("transfer_updated", "calls.transfer.created", &t);
                if answered {
                    self.transfer_event("transfer_answered", "calls.transfer.edited", &t);
                }
            }
        }
    }
}
