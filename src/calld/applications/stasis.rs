//! The applications' Stasis side: one ARI websocket per application, and the
//! task that applies their events (and confd's `application_*` events) to
//! the [`Applications`](super::Applications) state.
//!
//! Why one websocket per application rather than more names in the `app=`
//! of accentd's main websocket: a Stasis application exists only while a
//! websocket asks for it (`POST /applications/{name}/subscription` of the
//! ARI spec subscribes an *existing* application to more event sources and
//! answers 404 for an unknown one, so it cannot register a new application).
//! Adding a name to the main websocket would mean closing and reopening it
//! for every new application, a gap in the live state's events and a full
//! resync each time; and with `subscribeAll=true` (which the live state
//! needs) every application of a websocket receives every event, so each
//! event would arrive once per application. A websocket of its own, without
//! `subscribeAll`, gets exactly the events of the application's channels,
//! bridges and playbacks, and opening or closing it touches nothing else.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::state::{AppCall, AppInfo, Node, Publisher};
use super::{application_of, stasis_name};
use crate::api::status::StatusRegistry;
use crate::ari::client::{AddChannelOptions, BridgeParams};
use crate::ari::events::AriEvent;
use crate::ari::models::{Channel, ChannelState};
use crate::ari::{AriEvents, AriEventsOptions};
use crate::calld::CalldService;
use crate::confd::applications::{Application, NodeType};

type Feed = mpsc::UnboundedSender<(Uuid, Arc<AriEvent>)>;

/// Starts the task; it runs until `shutdown`.
pub fn spawn(svc: Arc<CalldService>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(run(svc, shutdown))
}

async fn run(svc: Arc<CalldService>, shutdown: CancellationToken) {
    // Subscribed before loading, so an application created meanwhile is not missed.
    let mut bus = svc.bus.subscribe();
    let (feed, mut events) = mpsc::unbounded_channel();
    match svc
        .store
        .read(|c| crate::confd::applications::all(c).map_err(crate::api::error::ApiError::from))
        .await
    {
        Ok(apps) => {
            for (uuid, tenant, app) in apps {
                set_app(&svc, uuid, tenant, &app, &feed, &shutdown);
            }
        }
        Err(e) => tracing::error!(error = %e, "applications not loaded"),
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some((app, event)) = events.recv() => on_ari(&svc, app, &event).await,
            received = bus.recv() => match received {
                Ok(event) => on_bus(&svc, &event, &feed, &shutdown),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "applications: bus events missed");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    if let Ok(mut links) = svc.applications.links.lock() {
        for (_, token) in links.drain() {
            token.cancel();
        }
    }
}

/// Records an application (new or changed) and opens its websocket if needed.
fn set_app(svc: &CalldService, uuid: Uuid, tenant: Uuid, app: &Application, feed: &Feed, shutdown: &CancellationToken) {
    let info = AppInfo {
        tenant,
        node: app.node().cloned(),
    };
    svc.applications.apps.insert(uuid, info);
    let Some(client) = svc.ari.get() else { return };
    let Ok(mut links) = svc.applications.links.lock() else {
        return;
    };
    if links.contains_key(&uuid) {
        return;
    }
    let token = shutdown.child_token();
    let options = AriEventsOptions {
        subscribe_all: false,
        ..AriEventsOptions::default()
    };
    // The link reports on a registry of its own: `ari` in /status is the main websocket.
    let (link, _task) = AriEvents::start_with_client(
        client.clone(),
        &stasis_name(uuid),
        Arc::new(StatusRegistry::default()),
        token.clone(),
        options,
    );
    tokio::spawn(forward(uuid, link.subscribe(), feed.clone(), token.clone()));
    links.insert(uuid, token);
    tracing::info!(application = %uuid, "application websocket opened");
}

/// Forwards one application's events to the task, tagged with the application.
async fn forward(app: Uuid, mut rx: broadcast::Receiver<Arc<AriEvent>>, feed: Feed, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            received = rx.recv() => match received {
                Ok(event) => {
                    if feed.send((app, event)).is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(application = %app, missed = n, "application events missed");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}

fn drop_app(svc: &CalldService, uuid: Uuid) {
    svc.applications.apps.remove(&uuid);
    if let Some(token) = svc.applications.links.lock().ok().and_then(|mut l| l.remove(&uuid)) {
        token.cancel();
    }
    svc.applications.calls.retain(|_, c| c.app != uuid);
    svc.applications.nodes.retain(|_, n| n.app != uuid);
    svc.applications.playbacks.retain(|_, p| p.app != uuid);
    svc.applications.snoops.retain(|_, s| s.app != uuid);
}

/// confd's `application_created` / `_edited` / `_deleted`.
fn on_bus(svc: &CalldService, event: &crate::bus::Event, feed: &Feed, shutdown: &CancellationToken) {
    if !matches!(
        event.name.as_str(),
        "application_created" | "application_edited" | "application_deleted"
    ) {
        return;
    }
    let uuid = event
        .data
        .get("uuid")
        .and_then(Value::as_str)
        .and_then(|u| Uuid::parse_str(u).ok());
    let tenant = event.tenant_uuid;
    let (Some(uuid), Some(tenant)) = (uuid, tenant) else {
        tracing::warn!(event = %event.name, "application event without uuid or tenant; ignored");
        return;
    };
    if event.name == "application_deleted" {
        drop_app(svc, uuid);
        return;
    }
    let fields = event.data.as_object().cloned().unwrap_or_default();
    match crate::confd::applications::from_document(fields) {
        Ok(app) => set_app(svc, uuid, tenant, &app, feed, shutdown),
        Err(e) => tracing::warn!(application = %uuid, error = %e, "application event unreadable; ignored"),
    }
}

fn publisher(svc: &CalldService, app: Uuid) -> Option<Publisher<'_>> {
    let info = svc.applications.app(app)?;
    Some(Publisher {
        bus: &svc.bus,
        app,
        tenant: info.tenant,
    })
}

async fn on_ari(svc: &CalldService, app: Uuid, event: &AriEvent) {
    // Asterisk names the application an event is delivered to: anything else
    // (another application's event) is not this application's business.
    if event.application().and_then(application_of) != Some(app) {
        return;
    }
    let apps = &svc.applications;
    match event {
        AriEvent::StasisStart(e) => match super::snoops::snoop_of(&e.args) {
            // A snoop channel is no call of the application: it goes to its snoop's bridge.
            Some(snoop) => svc.snoop_entered(snoop, &e.channel.id).await,
            None => entered(svc, app, e.channel.clone()).await,
        },
        AriEvent::StasisEnd(e) => gone(svc, app, &e.channel.id),
        AriEvent::ChannelDestroyed(e) => gone(svc, app, &e.channel.id),
        AriEvent::ChannelStateChange(e) => {
            let was_up = apps.call(&e.channel.id).map(|c| c.channel.state == ChannelState::Up);
            let Some(call) = apps.update_call(&e.channel.id, |c| c.channel = e.channel.clone()) else {
                return;
            };
            let Some(p) = publisher(svc, app) else { return };
            p.call("application_call_updated", &call);
            if was_up == Some(false) && call.channel.state == ChannelState::Up {
                p.call("application_call_answered", &call);
            }
        }
        AriEvent::ChannelCallerId(e) => snapshot(svc, app, &e.channel),
        AriEvent::ChannelHold(e) => hold(svc, app, &e.channel.id, true),
        AriEvent::ChannelUnhold(e) => hold(svc, app, &e.channel.id, false),
        AriEvent::ChannelDtmfReceived(e) => {
            if let (Some(call), Some(p)) = (apps.call(&e.channel.id), publisher(svc, app)) {
                p.dtmf(&call, &e.digit);
            }
        }
        AriEvent::ChannelEnteredBridge(e) => {
            if let Some(ch) = &e.channel {
                membership(svc, app, &e.bridge.id, &ch.id, true);
            }
        }
        AriEvent::ChannelLeftBridge(e) => membership(svc, app, &e.bridge.id, &e.channel.id, false),
        AriEvent::BridgeDestroyed(e) => {
            if let Some((_, node)) = apps.nodes.remove(&e.bridge.id) {
                node_gone(svc, &node);
            }
        }
        AriEvent::PlaybackStarted(e) => {
            let Some(p) = apps.playbacks.get_mut(&e.playback.id).map(|mut p| {
                p.state = "playing".into();
                p.clone()
            }) else {
                return;
            };
            let conversation = apps.call(&p.call_id).map(|c| c.conversation_id).unwrap_or_default();
            if let Some(publish) = publisher(svc, p.app) {
                publish.playback(true, &e.playback.id, &p, &conversation);
            }
        }
        AriEvent::PlaybackFinished(e) => {
            let Some((_, mut p)) = apps.playbacks.remove(&e.playback.id) else {
                return;
            };
            p.state = e.playback.state.as_str().to_string();
            let conversation = apps.call(&p.call_id).map(|c| c.conversation_id).unwrap_or_default();
            if let Some(publish) = publisher(svc, p.app) {
                publish.playback(false, &e.playback.id, &p, &conversation);
            }
        }
        _ => {}
    }
}

/// A new snapshot of a known call (caller id...).
fn snapshot(svc: &CalldService, app: Uuid, channel: &Channel) {
    if let (Some(call), Some(p)) = (
        svc.applications
            .update_call(&channel.id, |c| c.channel = channel.clone()),
        publisher(svc, app),
    ) {
        p.call("application_call_updated", &call);
    }
}

fn hold(svc: &CalldService, app: Uuid, id: &str, on: bool) {
    if let (Some(call), Some(p)) = (
        svc.applications.update_call(id, |c| c.on_hold = on),
        publisher(svc, app),
    ) {
        p.call("application_call_updated", &call);
    }
}

/// The device of a channel name: `PJSIP/alice-00000001` -> `PJSIP/alice`.
fn device_of(name: &str) -> &str {
    name.rsplit_once('-').map_or(name, |(device, _)| device)
}

/// A channel entered the application: it becomes an application call, and
/// goes to its node (the one it was originated for, else the destination).
async fn entered(svc: &CalldService, app: Uuid, channel: Channel) {
    let Some(info) = svc.applications.app(app) else { return };
    let pending = svc.applications.pending.remove(&channel.id).map(|(_, p)| p);
    let conversation_id = svc
        .live
        .channel(&channel.id)
        .map(|c| c.linkedid)
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| channel.id.clone());
    let user_uuid = match svc.owners.get(&svc.store).await {
        Ok(owners) => owners.of(device_of(&channel.name)).and_then(|o| o.user_uuid()),
        Err(e) => {
            tracing::warn!(error = %e, "application call: owners unavailable");
            None
        }
    };
    let variables = match &pending {
        Some(p) => p.variables.clone(),
        None => channel.channelvars.clone().unwrap_or_default(),
    };
    let id = channel.id.clone();
    let call = AppCall {
        app,
        channel,
        conversation_id,
        is_caller: pending.is_none(),
        on_hold: false,
        muted: false,
        moh_uuid: None,
        node: None,
        user_uuid,
        variables,
        snoops: Default::default(),
    };
    svc.applications.calls.insert(id.clone(), call.clone());
    let p = Publisher {
        bus: &svc.bus,
        app,
        tenant: info.tenant,
    };
    p.call("application_call_entered", &call);
    tracing::info!(application = %app, call_id = %id, "call entered the application");

    let Some(ari) = svc.ari.get() else { return };
    if let Some(node) = pending.and_then(|p| p.node) {
        if let Err(e) = ari.add_channels(&node, &[&id], &AddChannelOptions::default()).await {
            tracing::warn!(call_id = %id, %node, error = %e, "originated call not added to its node");
        }
        return;
    }
    let Some(options) = info.node else { return };
    let node = app.to_string();
    if !svc.applications.nodes.contains_key(&node) {
        let params = BridgeParams {
            bridge_type: Some(options.kind.as_str().to_string()),
            bridge_id: Some(node.clone()),
            name: Some(stasis_name(app)),
        };
        match ari.create_bridge(&params).await {
            Ok(_) => {
                // A holding bridge plays its music to the calls waiting in it.
                if let (NodeType::Holding, Some(class)) = (options.kind, options.music_on_hold.as_deref()) {
                    if let Err(e) = ari.bridge_start_moh(&node, Some(class)).await {
                        tracing::warn!(application = %app, error = %e, "music on hold not started");
                    }
                }
                let created = Node {
                    app,
                    uuid: node.clone(),
                    calls: Vec::new(),
                };
                svc.applications.nodes.insert(node.clone(), created.clone());
                p.node("application_destination_node_created", &created);
            }
            Err(e) => {
                tracing::warn!(application = %app, error = %e, "destination node not created");
                return;
            }
        }
    }
    if options.answer {
        if let Err(e) = ari.answer(&id).await {
            tracing::warn!(call_id = %id, error = %e, "application call not answered");
        }
    }
    if let Err(e) = ari.add_channels(&node, &[&id], &AddChannelOptions::default()).await {
        tracing::warn!(call_id = %id, error = %e, "application call not added to the destination node");
    }
}

/// The call left the application (or is gone): `application_call_deleted`, once.
fn gone(svc: &CalldService, app: Uuid, id: &str) {
    svc.snoops_without(id);
    let Some((_, call)) = svc.applications.calls.remove(id) else {
        return;
    };
    if let Some(node) = &call.node {
        if let Some(updated) = svc.applications.nodes.get_mut(node).map(|mut n| {
            n.calls.retain(|c| c != id);
            n.clone()
        }) {
            if let Some(p) = publisher(svc, app) {
                p.node("application_node_updated", &updated);
            }
        }
    }
    svc.applications.playbacks.retain(|_, p| p.call_id != id);
    if let Some(p) = publisher(svc, app) {
        p.call("application_call_deleted", &call);
    }
    tracing::info!(application = %app, call_id = %id, "call left the application");
}

/// A call entered or left a node's bridge.
fn membership(svc: &CalldService, app: Uuid, bridge: &str, call_id: &str, entered: bool) {
    let apps = &svc.applications;
    let Some(node) = apps.nodes.get_mut(bridge).map(|mut n| {
        n.calls.retain(|c| c != call_id);
        if entered {
            n.calls.push(call_id.to_string());
        }
        n.clone()
    }) else {
        return;
    };
    let call = apps.update_call(call_id, |c| {
        if entered {
            c.node = Some(bridge.to_string());
        } else if c.node.as_deref() == Some(bridge) {
            c.node = None;
        }
    });
    let Some(p) = publisher(svc, app) else { return };
    p.node("application_node_updated", &node);
    if let Some(call) = call {
        p.call("application_call_updated", &call);
    }
}

/// A node's bridge is gone: its calls are in no node any more.
pub(super) fn node_gone(svc: &CalldService, node: &Node) {
    for id in &node.calls {
        svc.applications.update_call(id, |c| c.node = None);
    }
    if let Some(p) = publisher(svc, node.app) {
        p.node("application_node_deleted", node);
    }
}
