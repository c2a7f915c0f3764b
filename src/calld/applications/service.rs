//! The REST operations on applications: each checks the application is
//! visible to the request's tenants (else 404 `no-such-application`) and the
//! call, node or playback belongs to it (else its own 404), then asks ARI.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::state::{
    call_object, node_object, playback_object, AppCall, AppInfo, Node, Pending, PlaybackRec, Publisher,
};
use super::{stasis, stasis_name};
use crate::api::error::ApiError;
use crate::ari::client::{AddChannelOptions, BridgeParams, DtmfParams, MuteDirection, OriginateParams, PlayParams};
use crate::ari::error::AriError;
use crate::auth::caller::Scope;
use crate::calld::actions::{ari_error, check_digits};
use crate::calld::calls::no_such_call;
use crate::calld::originate::{check_dialplan_word, check_variables};
use crate::calld::CalldService;

fn not_found(error_id: &'static str, message: &str, details: Value) -> ApiError {
    ApiError::Custom {
        status: StatusCode::NOT_FOUND,
        error_id,
        message: message.into(),
        details,
    }
}

pub fn no_such_application(uuid: &str) -> ApiError {
    not_found(
        "no-such-application",
        "No such application",
        json!({ "application_uuid": uuid }),
    )
}

fn no_such_node(uuid: &str) -> ApiError {
    not_found("no-such-node", "No such node", json!({ "node_uuid": uuid }))
}

fn no_such_playback(uuid: &str) -> ApiError {
    not_found("no-such-playback", "No such playback", json!({ "playback_uuid": uuid }))
}

/// An ARI refusal on an application call: a channel that left Stasis (409)
/// or is not answered yet (412) cannot take the action now (409); a gone
/// channel is 404, an unreachable or failing Asterisk 503.
fn refusal(id: &str, e: AriError) -> ApiError {
    match e {
        AriError::Conflict { message } | AriError::Http { status: 412, message } => ApiError::Custom {
            status: StatusCode::CONFLICT,
            error_id: "call-not-controllable",
            message: "The call cannot take this action now".into(),
            details: json!({ "call_id": id, "reason": message }),
        },
        e => ari_error(id, e),
    }
}

/// What a `PUT /calls/{id}/...` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    Answer,
    Progress(bool),
    Hold(bool),
    Mute(bool),
    /// `Some(moh uuid)` starts, `None` stops.
    Moh(Option<String>),
    Dtmf(Option<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybackBody {
    uri: String,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCall {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeBody {
    #[serde(default)]
    calls: Vec<NodeCall>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginateBody {
    exten: String,
    context: String,
    #[serde(default)]
    autoanswer: bool,
    #[serde(default)]
    variables: Map<String, Value>,
    #[serde(default)]
    displayed_caller_id_name: Option<String>,
    #[serde(default)]
    displayed_caller_id_number: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallUserBody {
    user_uuid: String,
    #[serde(default)]
    autoanswer: bool,
    #[serde(default)]
    variables: Map<String, Value>,
    #[serde(default)]
    displayed_caller_id_name: Option<String>,
    #[serde(default)]
    displayed_caller_id_number: Option<String>,
}

/// A call to place into an application.
struct Target {
    endpoint: String,
    caller_id: Option<String>,
    /// Everything set on the channel.
    variables: Map<String, Value>,
    /// What the request asked to set: the call's `variables`.
    asked: Map<String, Value>,
    user: Option<Uuid>,
}

/// `"name" <number>` from the displayed caller id fields, checked.
fn displayed_caller_id(name: &Option<String>, number: &Option<String>) -> Result<Option<String>, ApiError> {
    for (field, value) in [
        ("displayed_caller_id_name", name),
        ("displayed_caller_id_number", number),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.len() > 80 || v.chars().any(|c| c.is_control() || "<>\"".contains(c)))
        {
            return Err(ApiError::invalid_field(
                field,
                "At most 80 characters, no control characters nor < > \".",
            ));
        }
    }
    Ok(match (name, number) {
        (None, None) => None,
        (name, number) => Some(format!(
            "\"{}\" <{}>",
            name.as_deref().unwrap_or_default(),
            number.as_deref().unwrap_or_default()
        )),
    })
}

/// The most calls one node request may name.
const MAX_NODE_CALLS: usize = 100;

fn check_uri(uri: &str) -> Result<(), ApiError> {
    // `<scheme>:<resource>`, as ARI's `media` takes it; no list separator.
    let ok = uri.len() <= 1024
        && uri.split_once(':').is_some_and(|(scheme, rest)| {
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_lowercase()) && !rest.is_empty()
        })
        && !uri.chars().any(|c| c.is_control() || c == ',');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "uri",
            "Must be a media URI such as sound:hello-world.",
        ))
    }
}

fn check_language(language: &str) -> Result<(), ApiError> {
    let ok = !language.is_empty()
        && language.len() <= 16
        && language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "language",
            "Must be a language code such as en or fr_FR.",
        ))
    }
}

impl CalldService {
    /// The application, if the request may see it.
    pub(super) fn visible_app(&self, scope: &Scope, uuid: &str) -> Result<(Uuid, AppInfo), ApiError> {
        let app = Uuid::parse_str(uuid).map_err(|_| no_such_application(uuid))?;
        match self.applications.app(app) {
            Some(info) if scope.can_see(info.tenant) => Ok((app, info)),
            _ => Err(no_such_application(uuid)),
        }
    }

    /// A call of the application (a call of another one is 404).
    pub(super) fn app_call(&self, app: Uuid, id: &str) -> Result<AppCall, ApiError> {
        self.applications
            .call(id)
            .filter(|c| c.app == app)
            .ok_or_else(|| no_such_call(id))
    }

    fn app_node(&self, app: Uuid, uuid: &str) -> Result<Node, ApiError> {
        self.applications
            .node(uuid)
            .filter(|n| n.app == app)
            .ok_or_else(|| no_such_node(uuid))
    }

    pub(super) fn publisher(&self, app: Uuid, info: &AppInfo) -> Publisher<'_> {
        Publisher {
            bus: &self.bus,
            app,
            tenant: info.tenant,
        }
    }

    pub async fn application_show(&self, scope: &Scope, uuid: &str) -> Result<Value, ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        let node = info.node.is_some().then(|| app.to_string());
        Ok(json!({ "destination_node_uuid": node }))
    }

    pub async fn application_calls(&self, scope: &Scope, uuid: &str) -> Result<Value, ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        let items: Vec<Value> = self
            .applications
            .calls_of(app)
            .iter()
            .map(|c| call_object(c, info.tenant))
            .collect();
        Ok(json!({ "items": items }))
    }

    pub async fn application_hangup(&self, scope: &Scope, uuid: &str, id: &str) -> Result<(), ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        self.app_call(app, id)?;
        self.ari_link()?.hangup(id, None).await.map_err(|e| ari_error(id, e))?;
        tracing::info!(application = %app, call_id = id, "application call hung up");
        Ok(())
    }

    pub async fn application_call_action(
        &self,
        scope: &Scope,
        uuid: &str,
        id: &str,
        action: CallAction,
    ) -> Result<(), ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        self.app_call(app, id)?;
        if let CallAction::Dtmf(digits) = &action {
            let digits = check_digits(digits.as_deref())?;
            let params = DtmfParams {
                dtmf: digits.to_string(),
                ..DtmfParams::default()
            };
            let ari = self.ari_link()?;
            return ari.send_dtmf(id, &params).await.map_err(|e| refusal(id, e));
        }
        let ari = self.ari_link()?;
        let result = match &action {
            CallAction::Answer => ari.answer(id).await,
            // "Progress" is the ringing tone played to the caller: ARI's ring
            // indication, the one that can be stopped (`DELETE .../ring`).
            CallAction::Progress(true) => ari.ring(id).await,
            CallAction::Progress(false) => ari.ring_stop(id).await,
            CallAction::Hold(true) => ari.hold(id).await,
            CallAction::Hold(false) => ari.unhold(id).await,
            // What the caller says is not heard: upstream mutes the incoming audio.
            CallAction::Mute(true) => ari.mute(id, MuteDirection::In).await,
            CallAction::Mute(false) => ari.unmute(id, MuteDirection::In).await,
            CallAction::Moh(Some(class)) => ari.start_moh(id, Some(class)).await,
            CallAction::Moh(None) => ari.stop_moh(id).await,
            CallAction::Dtmf(_) => Ok(()),
        };
        result.map_err(|e| refusal(id, e))?;
        tracing::info!(application = %app, call_id = id, ?action, "application call action");
        // What calld tracks itself, and its event.
        let update = |f: &dyn Fn(&mut AppCall)| self.applications.update_call(id, f);
        let p = self.publisher(app, &info);
        match action {
            CallAction::Progress(on) => {
                if let Some(call) = self.applications.call(id) {
                    let name = if on {
                        "application_progress_started"
                    } else {
                        "application_progress_stopped"
                    };
                    p.call(name, &call);
                }
            }
            CallAction::Hold(on) => {
                if let Some(call) = update(&|c| c.on_hold = on) {
                    p.call("application_call_updated", &call);
                }
            }
            CallAction::Mute(on) => {
                if let Some(call) = update(&|c| c.muted = on) {
                    p.call("application_call_updated", &call);
                }
            }
            CallAction::Moh(moh) => {
                if let Some(call) = update(&|c| c.moh_uuid = moh.clone()) {
                    p.call("application_call_updated", &call);
                }
            }
            CallAction::Answer | CallAction::Dtmf(_) => {}
        }
        Ok(())
    }

    pub async fn application_playback(
        &self,
        scope: &Scope,
        uuid: &str,
        id: &str,
        body: PlaybackBody,
    ) -> Result<Value, ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        let call = self.app_call(app, id)?;
        check_uri(&body.uri)?;
        if let Some(language) = &body.language {
            check_language(language)?;
        }
        let playback_id = Uuid::new_v4().to_string();
        let params = PlayParams {
            media: vec![body.uri.clone()],
            lang: body.language.clone(),
            playback_id: Some(playback_id.clone()),
            ..PlayParams::default()
        };
        let played = self
            .ari_link()?
            .play_on_channel(id, &params)
            .await
            .map_err(|e| refusal(id, e))?;
        let rec = PlaybackRec {
            app,
            call_id: id.to_string(),
            uri: body.uri,
            language: played
                .language
                .or(body.language)
                .unwrap_or_else(|| call.channel.language.clone()),
            state: played.state.as_str().to_string(),
        };
        let object = playback_object(&played.id, &rec);
        // PlaybackStarted may already have come and gone: only a playback still
        // running is kept for its events.
        self.applications.playbacks.insert(played.id.clone(), rec);
        Ok(object)
    }

    pub async fn application_stop_playback(&self, scope: &Scope, uuid: &str, playback: &str) -> Result<(), ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        if self.applications.playbacks.get(playback).is_none_or(|p| p.app != app) {
            return Err(no_such_playback(playback));
        }
        match self.ari_link()?.stop_playback(playback).await {
            Ok(()) => Ok(()),
            Err(AriError::NotFound { .. }) => Err(no_such_playback(playback)),
            Err(e) => Err(ari_error(playback, e)),
        }
    }

    pub async fn application_nodes(&self, scope: &Scope, uuid: &str) -> Result<Value, ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        let items: Vec<Value> = self.applications.nodes_of(app).iter().map(node_object).collect();
        Ok(json!({ "items": items }))
    }

    pub async fn application_node(&self, scope: &Scope, uuid: &str, node: &str) -> Result<Value, ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        Ok(node_object(&self.app_node(app, node)?))
    }

    /// A mixing bridge with the given calls in it.
    pub async fn application_create_node(&self, scope: &Scope, uuid: &str, body: NodeBody) -> Result<Value, ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        if body.calls.len() > MAX_NODE_CALLS {
            return Err(ApiError::invalid_field(
                "calls",
                format!("At most {MAX_NODE_CALLS} calls."),
            ));
        }
        let ids: Vec<&str> = body.calls.iter().map(|c| c.id.as_str()).collect();
        for id in &ids {
            self.app_call(app, id)?;
        }
        let ari = self.ari_link()?;
        let node_uuid = Uuid::new_v4().to_string();
        let params = BridgeParams {
            bridge_type: Some("mixing".into()),
            bridge_id: Some(node_uuid.clone()),
            name: Some(stasis_name(app)),
        };
        ari.create_bridge(&params).await.map_err(|e| ari_error(&node_uuid, e))?;
        let node = Node {
            app,
            uuid: node_uuid.clone(),
            calls: Vec::new(),
        };
        self.applications.nodes.insert(node_uuid.clone(), node.clone());
        self.publisher(app, &info).node("application_node_created", &node);
        if !ids.is_empty() {
            ari.add_channels(&node_uuid, &ids, &AddChannelOptions::default())
                .await
                .map_err(|e| refusal(ids.join(",").as_str(), e))?;
        }
        tracing::info!(application = %app, node = %node_uuid, calls = ids.len(), "node created");
        // The calls are members once Asterisk says they entered (ChannelEnteredBridge).
        Ok(json!({ "uuid": node_uuid, "calls": body.calls.iter().map(|c| json!({ "id": c.id })).collect::<Vec<_>>() }))
    }

    /// Hangs up the node's calls and destroys its bridge.
    pub async fn application_delete_node(&self, scope: &Scope, uuid: &str, node: &str) -> Result<(), ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        let found = self.app_node(app, node)?;
        let ari = self.ari_link()?;
        for id in &found.calls {
            match ari.hangup(id, None).await {
                Ok(()) | Err(AriError::NotFound { .. }) => {}
                Err(e) => return Err(ari_error(id, e)),
            }
        }
        match ari.destroy_bridge(node).await {
            Ok(()) | Err(AriError::NotFound { .. }) => {}
            Err(e) => return Err(ari_error(node, e)),
        }
        if let Some((_, gone)) = self.applications.nodes.remove(node) {
            stasis::node_gone(self, &gone);
        }
        Ok(())
    }

    /// `PUT` (add) or `DELETE` (remove) `/nodes/{node}/calls/{call}`.
    pub async fn application_node_call(
        &self,
        scope: &Scope,
        uuid: &str,
        node: &str,
        id: &str,
        add: bool,
    ) -> Result<(), ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        let found = self.app_node(app, node)?;
        let call = self.app_call(app, id)?;
        if !add && !found.calls.iter().any(|c| c == id) && call.node.as_deref() != Some(node) {
            return Err(ApiError::Custom {
                status: StatusCode::BAD_REQUEST,
                error_id: "call-not-in-node",
                message: "The call is not in this node".into(),
                details: json!({ "call_id": id, "node_uuid": node }),
            });
        }
        let ari = self.ari_link()?;
        let result = if add {
            ari.add_channels(node, &[id], &AddChannelOptions::default()).await
        } else {
            ari.remove_channels(node, &[id]).await
        };
        result.map_err(|e| match e {
            AriError::NotFound { .. } => no_such_node(node),
            e => refusal(id, e),
        })
    }

    /// Originates `Local/<exten>@<context>` into the application (and `node`).
    pub async fn application_originate(
        &self,
        scope: &Scope,
        uuid: &str,
        node: Option<&str>,
        body: OriginateBody,
    ) -> Result<Value, ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        if let Some(node) = node {
            self.app_node(app, node)?;
        }
        check_dialplan_word("exten", &body.exten)?;
        check_dialplan_word("context", &body.context)?;
        if body.exten.contains('@') || body.context.contains('@') {
            return Err(ApiError::invalid_field("exten", "Must not contain @."));
        }
        let variables = check_variables(&body.variables)?;
        let caller_id = displayed_caller_id(&body.displayed_caller_id_name, &body.displayed_caller_id_number)?;
        if body.autoanswer {
            // A Local channel has no SIP dialog to carry the auto-answer header, and
            // accentd's dialplan has no auto-answer step for the channel it dials.
            return Err(ApiError::invalid_field(
                "autoanswer",
                "Auto-answer is not supported for calls into an application.",
            ));
        }
        let endpoint = format!("Local/{}@{}/n", body.exten, body.context);
        let target = Target {
            endpoint,
            caller_id,
            asked: variables.clone(),
            variables,
            user: None,
        };
        self.originate_into(app, &info, node, target).await
    }

    /// `POST /nodes/{node}/calls/user`: rings every line of a user of the application's
    /// tenant, into the node.
    pub async fn application_call_user(
        &self,
        scope: &Scope,
        uuid: &str,
        node: &str,
        body: CallUserBody,
    ) -> Result<Value, ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        self.app_node(app, node)?;
        let user =
            Uuid::parse_str(&body.user_uuid).map_err(|_| ApiError::invalid_field("user_uuid", "Not a valid UUID."))?;
        let asked = check_variables(&body.variables)?;
        let caller_id = displayed_caller_id(&body.displayed_caller_id_name, &body.displayed_caller_id_number)?;
        let (endpoint, mut variables) = self.user_endpoint(user, vec![info.tenant], body.autoanswer).await?;
        variables.extend(asked.clone());
        let target = Target {
            endpoint,
            caller_id,
            variables,
            asked,
            user: Some(user),
        };
        self.originate_into(app, &info, Some(node), target).await
    }

    /// Originates `target` into the application; the call joins `node` once it is in.
    async fn originate_into(
        &self,
        app: Uuid,
        info: &AppInfo,
        node: Option<&str>,
        target: Target,
    ) -> Result<Value, ApiError> {
        let channel_id = Uuid::new_v4().to_string();
        self.applications.pending.insert(
            channel_id.clone(),
            Pending {
                node: node.map(str::to_string),
                variables: target.asked.clone(),
            },
        );
        let params = OriginateParams {
            endpoint: target.endpoint.clone(),
            app: Some(stasis_name(app)),
            caller_id: target.caller_id,
            channel_id: Some(channel_id.clone()),
            variables: (!target.variables.is_empty()).then_some(target.variables),
            ..OriginateParams::default()
        };
        let channel = match self.ari_link()?.originate(&params).await {
            Ok(channel) => channel,
            Err(e) => {
                self.applications.pending.remove(&channel_id);
                return Err(match e {
                    AriError::BadRequest { message } => ApiError::invalid_field("exten", message),
                    e => ari_error(&channel_id, e),
                });
            }
        };
        let call = AppCall {
            app,
            channel,
            conversation_id: channel_id.clone(),
            is_caller: false,
            on_hold: false,
            muted: false,
            moh_uuid: None,
            node: None,
            user_uuid: target.user,
            variables: target.asked,
            snoops: Default::default(),
        };
        self.publisher(app, info).call("application_call_initiated", &call);
        tracing::info!(application = %app, call_id = %channel_id, endpoint = %target.endpoint, "call originated into the application");
        Ok(call_object(&call, info.tenant))
    }
}
