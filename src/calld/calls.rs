//! `/calls` and `/users/me/calls`: the live calls as accent-calld shows them
//! (one item per channel: `call_id` is the uniqueid, `conversation_id` the
//! linkedid), read from the live state and confd's owners, and hung up over ARI.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::owners::{Owner, Owners};
use super::CalldService;
use crate::api::error::ApiError;
use crate::ari::error::AriError;
use crate::auth::caller::Scope;
use crate::control::model::Channel;

/// `GET /calls` query. Unknown parameters are ignored, as upstream.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub application: Option<String>,
    pub application_instance: Option<String>,
    pub recurse: Option<String>,
}

impl ListQuery {
    pub fn recurse(&self) -> Result<bool, ApiError> {
        match self.recurse.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::invalid_field("recurse", "Not a valid boolean.")),
        }
    }
}

/// upstream's 404 for a call that does not exist (or that the caller may not see).
pub fn no_such_call(id: &str) -> ApiError {
    ApiError::Custom {
        status: warp::http::StatusCode::NOT_FOUND,
        error_id: "no-such-call",
        message: "No such call".into(),
        details: json!({ "call_id": id }),
    }
}

/// 503 while accentd has no ARI link to act through.
fn ari_unreachable(detail: impl Into<String>) -> ApiError {
    ApiError::Custom {
        status: warp::http::StatusCode::SERVICE_UNAVAILABLE,
        error_id: "asterisk-ari-unreachable",
        message: "Asterisk ARI is unreachable".into(),
        details: json!({ "reason": detail.into() }),
    }
}

/// Every channel with its owner, plus the whole channel list (a call object
/// names the other legs).
pub struct Snapshot {
    pub channels: Vec<Channel>,
    pub owners: Owners,
    /// Bridge id -> bridge class (`parking`...).
    pub bridge_class: HashMap<String, String>,
}

impl Snapshot {
    fn by_id(&self) -> HashMap<&str, &Channel> {
        self.channels.iter().map(|c| (c.id.as_str(), c)).collect()
    }

    fn owner(&self, ch: &Channel) -> Option<&Owner> {
        self.owners.of(&ch.endpoint)
    }

    /// `internal`, `inbound` (a trunk called in), `outbound` (a trunk was
    /// called) or `unknown` (a leg whose device accentd does not know).
    fn direction(&self, ch: &Channel) -> &'static str {
        let legs: Vec<&Channel> = if ch.linkedid.is_empty() {
            vec![ch]
        } else {
            self.channels.iter().filter(|c| c.linkedid == ch.linkedid).collect()
        };
        let mut known = true;
        for leg in &legs {
            match self.owner(leg) {
                Some(Owner::Trunk { .. }) => {
                    return if leg.dialed_by.is_none() { "inbound" } else { "outbound" };
                }
                Some(Owner::Line { .. }) => {}
                None => known = false,
            }
        }
        if known {
            "internal"
        } else {
            "unknown"
        }
    }

    /// The call object of one channel (upstream's fields).
    pub fn call(&self, ch: &Channel) -> Value {
        let by_id = self.by_id();
        let owner = self.owner(ch);
        let user_of = |id: &str| {
            by_id
                .get(id)
                .and_then(|c| self.owner(c))
                .and_then(Owner::user_uuid)
                .map(|u| u.to_string())
                .unwrap_or_default()
        };
        let talking_to: Map<String, Value> = ch
            .talking_to
            .iter()
            .map(|id| (id.clone(), Value::String(user_of(id))))
            .collect();
        // A callee leg shows what its caller dialed.
        let dialed = match ch.dialed_by.as_deref().and_then(|id| by_id.get(id)) {
            Some(caller) => caller.dialplan.exten.clone(),
            None => ch.dialplan.exten.clone(),
        };
        let peer_number = if ch.connected.number.is_empty() {
            dialed.clone()
        } else {
            ch.connected.number.clone()
        };
        let parked = ch
            .bridge_id
            .as_deref()
            .and_then(|b| self.bridge_class.get(b))
            .is_some_and(|class| class == "parking");
        json!({
            "call_id": ch.id,
            "conversation_id": ch.linkedid,
            "caller_id_name": ch.caller.name,
            "caller_id_number": ch.caller.number,
            "peer_caller_id_name": ch.connected.name,
            "peer_caller_id_number": peer_number,
            "creation_time": ch.created_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "status": ch.state.as_str(),
            "on_hold": ch.on_hold,
            "muted": ch.muted.unwrap_or(false),
            "parked": parked,
            "talking_to": talking_to,
            "bridges": ch.bridge_id.iter().collect::<Vec<_>>(),
            "user_uuid": owner.and_then(Owner::user_uuid),
            "line_id": match owner { Some(Owner::Line { line_id, .. }) => Some(*line_id), _ => None },
            "is_caller": ch.dialed_by.is_none(),
            "dialed_extension": dialed,
            "direction": self.direction(ch),
        })
    }
}

impl CalldService {
    /// The live channels with their owners, read now.
    pub async fn snapshot(&self) -> Result<Snapshot, ApiError> {
        let owners = self.store.read(|c| Owners::load(c).map_err(ApiError::from)).await?;
        let mut channels = self.live.channels();
        channels.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        let bridge_class = self.live.bridges().into_iter().map(|b| (b.id, b.class)).collect();
        Ok(Snapshot {
            channels,
            owners,
            bridge_class,
        })
    }

    /// The calls `scope` may see (channels of a device of its tenants),
    /// filtered as the query asks; `user` keeps only that user's.
    pub async fn list_calls(&self, scope: &Scope, q: &ListQuery, user: Option<Uuid>) -> Result<Value, ApiError> {
        let tenants = scope.tenants(q.recurse()?);
        let snap = self.snapshot().await?;
        let items: Vec<Value> = snap
            .channels
            .iter()
            .filter(|ch| {
                snap.owner(ch).is_some_and(|o| tenants.contains(&o.tenant()))
                    && user.is_none_or(|u| snap.owner(ch).and_then(Owner::user_uuid) == Some(u))
                    && q.application.as_ref().is_none_or(|a| ch.stasis_app.as_ref() == Some(a))
            })
            .map(|ch| snap.call(ch))
            .collect();
        Ok(json!({ "items": items }))
    }

    /// One visible call, else 404 `no-such-call`.
    pub async fn get_call(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<Value, ApiError> {
        let snap = self.snapshot().await?;
        let ch = snap
            .channels
            .iter()
            .find(|c| c.id == id)
            .filter(|ch| {
                snap.owner(ch)
                    .is_some_and(|o| scope.can_see(o.tenant()) && user.is_none_or(|u| o.user_uuid() == Some(u)))
            })
            .ok_or_else(|| no_such_call(id))?;
        Ok(snap.call(ch))
    }

    /// Hangs a visible call up over ARI.
    pub async fn hangup(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<(), ApiError> {
        self.get_call(scope, id, user).await?;
        let ari = self
            .ari
            .as_ref()
            .ok_or_else(|| ari_unreachable("ARI is not configured"))?;
        match ari.hangup(id, None).await {
            Ok(()) => {
                tracing::info!(call_id = id, "call hung up");
                Ok(())
            }
            // Gone between the check and the request: as if it never was.
            Err(AriError::NotFound { .. }) => Err(no_such_call(id)),
            Err(e @ AriError::Transport(_)) => Err(ari_unreachable(e.to_string())),
            Err(e) => Err(ApiError::Custom {
                status: warp::http::StatusCode::SERVICE_UNAVAILABLE,
                error_id: "asterisk-ari-error",
                message: "Asterisk refused the request".into(),
                details: json!({ "reason": e.to_string() }),
            }),
        }
    }
}
