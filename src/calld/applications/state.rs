//! What calld knows of the applications: each one's tenant and destination
//! node (from confd), the calls inside it (from `StasisStart` on), its nodes
//! (bridges), playbacks and snoops; the API objects and the bus events built from them.

use std::collections::HashMap;
use std::sync::Mutex;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::ari::client::SnoopDirection;
use crate::ari::models::Channel;
use crate::bus::{escape_key, Bus, EventSpec};
use crate::confd::applications::NodeOptions;

/// An application as calld needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppInfo {
    pub tenant: Uuid,
    /// The destination node's options, when the destination is `node`.
    pub node: Option<NodeOptions>,
}

/// A channel inside an application.
#[derive(Debug, Clone)]
pub struct AppCall {
    pub app: Uuid,
    /// The latest snapshot Asterisk sent.
    pub channel: Channel,
    pub conversation_id: String,
    /// False for the calls calld originated into the application.
    pub is_caller: bool,
    pub on_hold: bool,
    pub muted: bool,
    pub moh_uuid: Option<String>,
    pub node: Option<String>,
    pub user_uuid: Option<Uuid>,
    pub variables: Map<String, Value>,
    /// The snoops the call takes part in: snoop uuid -> `{uuid, role}`.
    pub snoops: Map<String, Value>,
}

/// A node: a bridge of the application (its id is the node uuid).
#[derive(Debug, Clone)]
pub struct Node {
    pub app: Uuid,
    pub uuid: String,
    /// Call ids, in the order they entered.
    pub calls: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PlaybackRec {
    pub app: Uuid,
    pub call_id: String,
    pub uri: String,
    pub language: String,
    pub state: String,
}

/// Calls originated here, until they enter the application: whether the
/// call goes into a node, and the variables asked for.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    pub node: Option<String>,
    pub variables: Map<String, Value>,
}

/// Which side of a snooped call hears the snooper (the snooper always hears both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhisperMode {
    None,
    In,
    Out,
    Both,
}

impl WhisperMode {
    /// ARI's `whisper` value for the snoop channel.
    pub fn direction(self) -> SnoopDirection {
        match self {
            WhisperMode::None => SnoopDirection::None,
            WhisperMode::In => SnoopDirection::In,
            WhisperMode::Out => SnoopDirection::Out,
            WhisperMode::Both => SnoopDirection::Both,
        }
    }
}

/// A snoop: a supervisor's call (the snooping call) listening to, and perhaps whispering
/// into, another call of the application. Asterisk's snoop channel on the snooped call
/// and the snooping call share a mixing bridge whose id is the snoop's uuid.
#[derive(Debug, Clone)]
pub struct Snoop {
    pub app: Uuid,
    pub uuid: String,
    pub snooped_call_id: String,
    pub snooping_call_id: String,
    pub whisper_mode: WhisperMode,
    /// Asterisk's snoop channel; a new one each time the whisper mode changes.
    pub channel_id: String,
}

#[derive(Default)]
pub struct Applications {
    pub(super) apps: DashMap<Uuid, AppInfo>,
    pub(super) calls: DashMap<String, AppCall>,
    pub(super) nodes: DashMap<String, Node>,
    pub(super) playbacks: DashMap<String, PlaybackRec>,
    pub(super) pending: DashMap<String, Pending>,
    pub(super) snoops: DashMap<String, Snoop>,
    /// The websocket of each application (cancelled to close it).
    pub(super) links: Mutex<HashMap<Uuid, tokio_util::sync::CancellationToken>>,
}

impl Applications {
    pub fn app(&self, uuid: Uuid) -> Option<AppInfo> {
        self.apps.get(&uuid).map(|a| a.clone())
    }

    pub fn call(&self, id: &str) -> Option<AppCall> {
        self.calls.get(id).map(|c| c.clone())
    }

    pub fn node(&self, id: &str) -> Option<Node> {
        self.nodes.get(id).map(|n| n.clone())
    }

    /// The calls of an application, oldest first.
    pub fn calls_of(&self, app: Uuid) -> Vec<AppCall> {
        let mut calls: Vec<AppCall> = self.calls.iter().filter(|c| c.app == app).map(|c| c.clone()).collect();
        calls.sort_by(|a, b| {
            (a.channel.creationtime.as_str(), a.channel.id.as_str())
                .cmp(&(b.channel.creationtime.as_str(), b.channel.id.as_str()))
        });
        calls
    }

    pub fn nodes_of(&self, app: Uuid) -> Vec<Node> {
        let mut nodes: Vec<Node> = self.nodes.iter().filter(|n| n.app == app).map(|n| n.clone()).collect();
        nodes.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        nodes
    }

    /// Updates a call in place; returns the updated call.
    pub fn update_call(&self, id: &str, f: impl FnOnce(&mut AppCall)) -> Option<AppCall> {
        let mut call = self.calls.get_mut(id)?;
        f(&mut call);
        Some(call.clone())
    }
}

/// Upstream's application call object.
pub fn call_object(call: &AppCall, tenant: Uuid) -> Value {
    let ch = &call.channel;
    json!({
        "id": ch.id,
        "caller_id_name": ch.caller.name,
        "caller_id_number": ch.caller.number,
        "conversation_id": call.conversation_id,
        "creation_time": ch.creationtime,
        "status": ch.state.as_str(),
        "on_hold": call.on_hold,
        "muted": call.muted,
        "moh_uuid": call.moh_uuid,
        "is_caller": call.is_caller,
        "dialed_extension": ch.dialplan.exten,
        "variables": call.variables,
        "node_uuid": call.node,
        "snoops": call.snoops,
        "user_uuid": call.user_uuid,
        "tenant_uuid": tenant,
    })
}

pub fn node_object(node: &Node) -> Value {
    let calls: Vec<Value> = node.calls.iter().map(|id| json!({ "id": id })).collect();
    json!({ "uuid": node.uuid, "calls": calls })
}

pub fn snoop_object(snoop: &Snoop) -> Value {
    json!({
        "uuid": snoop.uuid,
        "snooped_call_id": snoop.snooped_call_id,
        "snooping_call_id": snoop.snooping_call_id,
        "whisper_mode": snoop.whisper_mode,
    })
}

pub fn playback_object(uuid: &str, p: &PlaybackRec) -> Value {
    json!({ "uuid": uuid, "uri": p.uri, "language": p.language, "state": p.state })
}

/// Publishes the application events; `app` and `tenant` route them.
pub struct Publisher<'a> {
    pub bus: &'a Bus,
    pub app: Uuid,
    pub tenant: Uuid,
}

impl Publisher<'_> {
    fn send(&self, name: &str, routing: String, mut data: Map<String, Value>, users: Option<Vec<Uuid>>) {
        data.insert("application_uuid".into(), json!(self.app));
        let spec = EventSpec::new(name, routing, Value::Object(data)).tenant(self.tenant);
        self.bus.publish(match users {
            Some(users) => spec.users(users),
            None => spec,
        });
    }

    /// `application_call_<what>` (entered, initiated, updated, answered,
    /// deleted, progress_*): a user event of the call's user, if it has one.
    pub fn call(&self, name: &str, call: &AppCall) {
        let id = escape_key(&call.channel.id);
        let routing = match name {
            "application_call_entered" | "application_call_initiated" => {
                format!("applications.{}.calls.created", self.app)
            }
            "application_call_answered" => format!("applications.{}.calls.{id}.answered", self.app),
            "application_call_deleted" => format!("applications.{}.calls.{id}.deleted", self.app),
            "application_progress_started" => format!("applications.{}.calls.{id}.progress.started", self.app),
            "application_progress_stopped" => format!("applications.{}.calls.{id}.progress.stopped", self.app),
            _ => format!("applications.{}.calls.{id}.updated", self.app),
        };
        let mut data = Map::new();
        data.insert("call".into(), call_object(call, self.tenant));
        // Without a user, every user of the tenant allowed by the ACL.
        self.send(name, routing, data, call.user_uuid.map(|u| vec![u]));
    }

    pub fn dtmf(&self, call: &AppCall, digit: &str) {
        let mut data = Map::new();
        data.insert("call_id".into(), json!(call.channel.id));
        data.insert("conversation_id".into(), json!(call.conversation_id));
        data.insert("dtmf".into(), json!(digit));
        let routing = format!(
            "applications.{}.calls.{}.dtmf.created",
            self.app,
            escape_key(&call.channel.id)
        );
        self.send("application_call_dtmf_received", routing, data, None);
    }

    /// `application_node_<what>` (created, updated, deleted) and
    /// `application_destination_node_created`.
    pub fn node(&self, name: &str, node: &Node) {
        let routing = match name {
            "application_node_created" | "application_destination_node_created" => {
                format!("applications.{}.nodes.created", self.app)
            }
            "application_node_deleted" => format!("applications.{}.nodes.{}.deleted", self.app, escape_key(&node.uuid)),
            _ => format!("applications.{}.nodes.{}.updated", self.app, escape_key(&node.uuid)),
        };
        let mut data = Map::new();
        data.insert("node".into(), node_object(node));
        self.send(name, routing, data, None);
    }

    /// `application_snoop_<what>` (created, updated, deleted).
    pub fn snoop(&self, what: &str, snoop: &Snoop) {
        let routing = format!("applications.{}.snoops.{}.{what}", self.app, escape_key(&snoop.uuid));
        let mut data = Map::new();
        data.insert("snoop".into(), snoop_object(snoop));
        self.send(&format!("application_snoop_{what}"), routing, data, None);
    }

    /// `application_playback_created` / `_deleted`.
    pub fn playback(&self, created: bool, uuid: &str, p: &PlaybackRec, conversation_id: &str) {
        let (name, verb) = if created {
            ("application_playback_created", "created")
        } else {
            ("application_playback_deleted", "deleted")
        };
        let routing = format!("applications.{}.playbacks.{}.{verb}", self.app, escape_key(uuid));
        let mut data = Map::new();
        data.insert("playback".into(), playback_object(uuid, p));
        data.insert("call_id".into(), json!(p.call_id));
        data.insert("conversation_id".into(), json!(conversation_id));
        self.send(name, routing, data, None);
    }
}
