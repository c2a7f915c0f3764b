//! The call object of accent-calld: one item per channel (`call_id` is the uniqueid,
//! `conversation_id` the linkedid), built from the live state, confd's owners and what calld
//! itself did to the channel ([`Marks`]); and the `/calls` reads.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::owners::{Owner, Owners};
use super::CalldService;
use crate::api::error::ApiError;
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

/// Where a MixMonitor recording started by calld stands (`record_state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    #[default]
    Inactive,
    Active,
    Paused,
}

/// What calld did to a channel that no Asterisk event reports: mute through `MuteAudio` and
/// recording through `MixMonitor` (Asterisk raises no event for either).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    pub muted: bool,
    pub record: RecordState,
    /// Parked, as res_parking's events said (its holding bridge is not a call bridge ARI shows).
    pub parked: bool,
}

fn iso(t: Option<OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&Rfc3339).ok())
}

/// A set of channels (all of them, or those around one channel) with what is needed to write
/// their call objects.
pub struct Snapshot {
    /// Shared with the live state: a snapshot of every channel copies none.
    pub channels: Vec<Arc<Channel>>,
    index: HashMap<String, usize>,
    legs: HashMap<String, Vec<usize>>,
    pub owners: Arc<Owners>,
    /// Bridge id -> bridge class (`parking`...).
    bridge_class: HashMap<String, String>,
    marks: HashMap<String, Marks>,
}

impl Snapshot {
    pub fn new(
        channels: Vec<Arc<Channel>>,
        owners: Arc<Owners>,
        bridge_class: HashMap<String, String>,
        marks: HashMap<String, Marks>,
    ) -> Snapshot {
        let mut index = HashMap::with_capacity(channels.len());
        let mut legs: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, ch) in channels.iter().enumerate() {
            index.insert(ch.id.clone(), i);
            if !ch.linkedid.is_empty() {
                legs.entry(ch.linkedid.clone()).or_default().push(i);
            }
        }
        Snapshot {
            channels,
            index,
            legs,
            owners,
            bridge_class,
            marks,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Channel> {
        self.index.get(id).map(|&i| &*self.channels[i])
    }

    pub fn owner(&self, ch: &Channel) -> Option<&Owner> {
        self.owners.of(&ch.endpoint)
    }

    /// Whether `scope` (restricted to `user`'s own calls when given) may see the channel: it
    /// must belong to a device of one of the scope's tenants.
    pub fn visible(&self, ch: &Channel, scope: &Scope, user: Option<Uuid>) -> bool {
        self.owner(ch)
            .is_some_and(|o| scope.can_see(o.tenant()) && user.is_none_or(|u| o.user_uuid() == Some(u)))
    }

    /// `internal`, `inbound` (a trunk called in), `outbound` (a trunk was
    /// called) or `unknown` (a leg whose device accentd does not know).
    fn direction(&self, ch: &Channel) -> &'static str {
        let mut legs: Vec<&Channel> = match self.legs.get(&ch.linkedid) {
            Some(legs) if !ch.linkedid.is_empty() => legs.iter().map(|&i| &*self.channels[i]).collect(),
            _ => Vec::new(),
        };
        // A channel outside the set (a gone leg's last snapshot) still counts.
        if !legs.iter().any(|c| c.id == ch.id) {
            legs.push(ch);
        }
        let mut known = true;
        for leg in legs {
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

    /// The call object of one channel (upstream's fields), as JSON for the events.
    pub fn call(&self, ch: &Channel) -> Value {
        serde_json::to_value(self.call_object(ch)).unwrap_or_default()
    }

    /// The call object of one channel, borrowing from the snapshot: `GET /calls` serializes
    /// these directly (building a JSON tree first cost ~20x the serialization itself).
    pub fn call_object<'a>(&'a self, ch: &'a Channel) -> CallObject<'a> {
        let owner = self.owner(ch);
        let talking_to = ch
            .talking_to
            .iter()
            .map(|id| {
                let user = self.get(id).and_then(|c| self.owner(c)).and_then(Owner::user_uuid);
                (id.as_str(), user)
            })
            .collect();
        // A callee leg shows what its caller dialed.
        let dialed = match ch.dialed_by.as_deref().and_then(|id| self.get(id)) {
            Some(caller) => caller.dialplan.exten.as_str(),
            None => ch.dialplan.exten.as_str(),
        };
        let peer_number = if ch.connected.number.is_empty() {
            dialed
        } else {
            ch.connected.number.as_str()
        };
        let parked = ch
            .bridge_id
            .as_deref()
            .and_then(|b| self.bridge_class.get(b))
            .is_some_and(|class| class == "parking");
        let marks = self.marks.get(&ch.id);
        CallObject {
            call_id: &ch.id,
            conversation_id: &ch.linkedid,
            caller_id_name: &ch.caller.name,
            caller_id_number: &ch.caller.number,
            peer_caller_id_name: &ch.connected.name,
            peer_caller_id_number: peer_number,
            creation_time: iso(ch.created_at),
            answer_time: iso(ch.answered_at),
            hangup_time: iso(ch.hungup_at),
            status: ch.state.as_str(),
            on_hold: ch.on_hold,
            muted: marks.is_some_and(|m| m.muted) || ch.muted.unwrap_or(false),
            record_state: marks.map(|m| m.record).unwrap_or_default(),
            parked: parked || marks.is_some_and(|m| m.parked),
            talking_to: TalkingTo(talking_to),
            bridges: ch.bridge_id.as_slice(),
            user_uuid: owner.and_then(Owner::user_uuid),
            line_id: match owner {
                Some(Owner::Line { line_id, .. }) => Some(*line_id),
                _ => None,
            },
            is_caller: ch.dialed_by.is_none(),
            dialed_extension: dialed,
            direction: self.direction(ch),
        }
    }
}

/// upstream's call object (section 2 of the calld reference), field order as upstream.
#[derive(Debug, Serialize)]
pub struct CallObject<'a> {
    call_id: &'a str,
    conversation_id: &'a str,
    caller_id_name: &'a str,
    caller_id_number: &'a str,
    peer_caller_id_name: &'a str,
    peer_caller_id_number: &'a str,
    creation_time: Option<String>,
    answer_time: Option<String>,
    hangup_time: Option<String>,
    status: &'a str,
    on_hold: bool,
    muted: bool,
    record_state: RecordState,
    parked: bool,
    talking_to: TalkingTo<'a>,
    bridges: &'a [String],
    user_uuid: Option<Uuid>,
    line_id: Option<i64>,
    is_caller: bool,
    dialed_extension: &'a str,
    direction: &'static str,
}

/// `{"<call_id>": "<user uuid or \"\">"}`.
#[derive(Debug)]
struct TalkingTo<'a>(Vec<(&'a str, Option<Uuid>)>);

impl Serialize for TalkingTo<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (id, user) in &self.0 {
            match user {
                Some(u) => m.serialize_entry(id, u)?,
                None => m.serialize_entry(id, "")?,
            }
        }
        m.end()
    }
}

impl CalldService {
    fn marks_of<'a>(&self, ids: impl Iterator<Item = &'a str>) -> HashMap<String, Marks> {
        ids.filter_map(|id| self.marks.get(id).map(|m| (id.to_owned(), m.clone())))
            .collect()
    }

    /// Every live channel with its owner, read now.
    pub async fn snapshot(&self) -> Result<Snapshot, ApiError> {
        let owners = self.owners.get(&self.store).await?;
        let mut channels = self.live.channels_shared();
        channels.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        let bridge_class = self.live.bridge_classes();
        let marks = self.marks_of(channels.iter().map(|c| c.id.as_str()));
        Ok(Snapshot::new(channels, owners, bridge_class, marks))
    }

    /// The channels a call object of `ch` looks at (its call's legs, who it talks to, who
    /// dialed it), read now; `ch` itself as given (it may be a last snapshot).
    pub async fn snapshot_around(&self, ch: &Channel) -> Result<Snapshot, ApiError> {
        self.snapshot_seen_from(ch, &HashMap::new()).await
    }

    /// [`snapshot_around`](Self::snapshot_around) for a reader of the change stream, which
    /// runs behind the live state: the other channels as `seen` last in the stream (the live
    /// state may have ended them already), else as they are now.
    pub(super) async fn snapshot_seen_from(
        &self,
        ch: &Channel,
        seen: &HashMap<String, Arc<Channel>>,
    ) -> Result<Snapshot, ApiError> {
        let owners = self.owners.get(&self.store).await?;
        let mut ids: Vec<String> = ch.talking_to.clone();
        ids.extend(ch.dialed_by.iter().cloned());
        if !ch.linkedid.is_empty() {
            if let Some(call) = self.live.call(&ch.linkedid) {
                ids.extend(call.channels);
            }
        }
        ids.sort();
        ids.dedup();
        let mut channels = vec![Arc::new(ch.clone())];
        channels.extend(
            ids.iter()
                .filter(|id| **id != ch.id)
                .filter_map(|id| match seen.get(id) {
                    Some(c) => Some(c.clone()),
                    None => self.live.channel_shared(id),
                }),
        );
        let bridge_class = ch
            .bridge_id
            .as_deref()
            .and_then(|b| self.live.bridge(b))
            .map(|b| (b.id, b.class))
            .into_iter()
            .collect();
        let marks = self.marks_of(std::iter::once(ch.id.as_str()));
        Ok(Snapshot::new(channels, owners, bridge_class, marks))
    }

    /// The calls `scope` may see (channels of a device of its tenants),
    /// filtered as the query asks; `user` keeps only that user's: the `{"items"}` JSON body.
    pub async fn list_calls(&self, scope: &Scope, q: &ListQuery, user: Option<Uuid>) -> Result<Vec<u8>, ApiError> {
        let tenants = scope.tenants(q.recurse()?);
        let snap = self.snapshot().await?;
        let items: Vec<CallObject> = snap
            .channels
            .iter()
            .filter(|ch| {
                snap.owner(ch).is_some_and(|o| tenants.contains(&o.tenant()))
                    && user.is_none_or(|u| snap.owner(ch).and_then(Owner::user_uuid) == Some(u))
                    && q.application.as_ref().is_none_or(|a| ch.stasis_app.as_ref() == Some(a))
            })
            .map(|ch| snap.call_object(ch))
            .collect();
        #[derive(Serialize)]
        struct List<'a> {
            items: Vec<CallObject<'a>>,
        }
        // Serialized here, while the snapshot the items borrow from is alive.
        serde_json::to_vec(&List { items }).map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// A live channel `scope` may see (restricted to `user`'s own calls when given), with
    /// its owner; else 404 `no-such-call`.
    pub async fn find(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<(Channel, Owner), ApiError> {
        let owners = self.owners.get(&self.store).await?;
        let ch = self.live.channel(id).ok_or_else(|| no_such_call(id))?;
        match owners.of(&ch.endpoint) {
            Some(o) if scope.can_see(o.tenant()) && user.is_none_or(|u| o.user_uuid() == Some(u)) => {
                let o = o.clone();
                Ok((ch, o))
            }
            _ => Err(no_such_call(id)),
        }
    }

    /// One visible call, else 404 `no-such-call`.
    pub async fn get_call(&self, scope: &Scope, id: &str, user: Option<Uuid>) -> Result<Value, ApiError> {
        let (ch, _) = self.find(scope, id, user).await?;
        Ok(self.snapshot_around(&ch).await?.call(&ch))
    }
}
