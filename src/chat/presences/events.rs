//! `chatd_presence_updated`: the one task that publishes a user's presence whenever any of
//! its fields changes.
//!
//! It keeps, in memory, every confd user's stored data ([`UserInfo`]), which users each device
//! belongs to, a [`LiveIndex`] kept up to date from the live state's change stream, and the
//! presence it last published per user. Every input recomputes only the users it concerns and
//! publishes those whose presence differs from the last one published:
//!
//! - the live state's changes: channels and device states of the users' line devices, one
//!   change at a time so each step of a call (ringing, talking, holding...) is seen; a
//!   resync recomputes everybody (its changes came through the stream before it), and this
//!   task falling behind the stream re-reads the whole live state;
//! - auth's session and refresh-token events and confd's DND event: that user is read again;
//! - confd's user and line events (users created/deleted, lines associated, endpoints
//!   changed): everybody is read again, as one read per burst of events;
//! - a `PUT` ([`PresenceHub::touch`](super::service::PresenceHub::touch)): that user;
//! - this task falling behind the bus: everybody is read again.
//!
//! At start the first computation is the baseline and publishes nothing: everything but the
//! stored state and status is derived from live data, so it is right after a restart. A user
//! confd creates later gets its first presence as a baseline too (nothing changed for it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::model::{channel_activity, LiveIndex, Presence, UserInfo};
use super::store::{self, Users};
use crate::api::error::ApiError;
use crate::bus::{escape_key, Event, EventSpec};
use crate::chat::ChatService;
use crate::control::StateChange;

/// What a bus event asks of the task.
#[derive(Debug, Default, PartialEq, Eq)]
struct Todo {
    everybody: bool,
    users: HashSet<Uuid>,
}

impl Todo {
    fn add(&mut self, event: &Event) {
        match event.name.as_str() {
            "auth_session_created"
            | "auth_session_deleted"
            | "auth_refresh_token_created"
            | "auth_refresh_token_deleted"
            | "users_services_dnd_updated" => {
                match event.data["user_uuid"].as_str().and_then(|u| Uuid::parse_str(u).ok()) {
                    Some(user) => {
                        self.users.insert(user);
                    }
                    // A session of no user (a service account without uuid): nobody's presence.
                    None => tracing::debug!(event = %event.name, "event without a user uuid"),
                }
            }
            "user_created"
            | "user_deleted"
            | "user_line_associated"
            | "user_line_dissociated"
            | "line_deleted"
            | "sip_endpoint_edited"
            | "sip_endpoint_deleted"
            | "sccp_endpoint_edited"
            | "sccp_endpoint_deleted" => self.everybody = true,
            name if name.starts_with("line_endpoint_") => self.everybody = true,
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        !self.everybody && self.users.is_empty()
    }
}

struct Watcher {
    svc: Arc<ChatService>,
    users: HashMap<Uuid, UserInfo>,
    /// Device → the users having a line on it.
    by_device: HashMap<String, Vec<Uuid>>,
    live: LiveIndex,
    /// The last presence published (or the baseline) per user. Only this task reads or
    /// writes it, so a plain map is enough: no lock is ever taken.
    last: HashMap<Uuid, Presence>,
    /// The baseline was read (it is read again by the next reload when the first failed).
    based: bool,
}

impl Watcher {
    fn publish_if_changed(&mut self, user: Uuid) {
        let Some(info) = self.users.get(&user) else {
            self.last.remove(&user);
            return;
        };
        let presence = info.presence(&self.live);
        if self.last.get(&user) == Some(&presence) {
            return;
        }
        self.svc.bus.publish(
            EventSpec::new(
                "chatd_presence_updated",
                format!("chatd.users.{}.presences.updated", escape_key(&user.to_string())),
                json!(presence),
            )
            .tenant(presence.tenant_uuid),
        );
        self.last.insert(user, presence);
    }

    fn index(&mut self, info: &UserInfo, add: bool) {
        for device in info.devices() {
            let users = self.by_device.entry(device.to_string()).or_default();
            users.retain(|u| *u != info.uuid);
            if add {
                users.push(info.uuid);
            } else if users.is_empty() {
                self.by_device.remove(device);
            }
        }
    }

    /// Everybody from the store; `baseline` also reads the whole live state and makes the
    /// result the last published without publishing it. Later reloads keep the live index,
    /// which the change stream keeps current: reading the state again would put it ahead of
    /// the changes still queued for this task, and those would then take it back a step.
    /// A user seen for the first time (just created) is a baseline too, unless something
    /// in this round concerned it (`touched`: a login right after the creation).
    async fn reload_all(&mut self, baseline: bool, touched: &HashSet<Uuid>) -> Result<(), ApiError> {
        let infos = self.svc.store.read(|conn| store::load(conn, &Users::All)).await?;
        let baseline = baseline || !self.based;
        self.based = true;
        self.users.clear();
        self.by_device.clear();
        for info in infos {
            self.index(&info, true);
            self.users.insert(info.uuid, info);
        }
        if baseline {
            self.live = LiveIndex::from_live(&self.svc.presences.live, None);
            self.last = self.users.values().map(|u| (u.uuid, u.presence(&self.live))).collect();
            return Ok(());
        }
        self.last.retain(|u, _| self.users.contains_key(u));
        for info in self.users.values() {
            if !self.last.contains_key(&info.uuid) && !touched.contains(&info.uuid) {
                self.last.insert(info.uuid, info.presence(&self.live));
            }
        }
        self.recompute_all();
        Ok(())
    }

    fn recompute_all(&mut self) {
        let all: Vec<Uuid> = self.users.keys().copied().collect();
        for user in all {
            self.publish_if_changed(user);
        }
    }

    /// These users from the store (a user no longer there is forgotten).
    async fn reload_users(&mut self, users: HashSet<Uuid>) -> Result<(), ApiError> {
        let wanted: Vec<Uuid> = users.iter().copied().collect();
        let infos = self
            .svc
            .store
            .read(move |conn| store::load(conn, &Users::Only(wanted)))
            .await?;
        let mut found = HashSet::with_capacity(infos.len());
        for info in infos {
            if let Some(old) = self.users.remove(&info.uuid) {
                self.index(&old, false);
            }
            self.index(&info, true);
            found.insert(info.uuid);
            self.users.insert(info.uuid, info);
        }
        for gone in users.difference(&found) {
            if let Some(old) = self.users.remove(gone) {
                self.index(&old, false);
            }
            self.last.remove(gone);
        }
        for user in found {
            self.publish_if_changed(user);
        }
        Ok(())
    }

    /// This task missed changes: re-reads the whole live state. The caller first empties its
    /// receiver, so what it gets next is newer than this read (or the same news again,
    /// which each change carries whole).
    fn relive(&mut self) {
        self.live = LiveIndex::from_live(&self.svc.presences.live, None);
        self.recompute_all();
    }

    fn live_change(&mut self, change: &StateChange) {
        let touched: Vec<String> = match change {
            StateChange::ChannelCreated(ch) | StateChange::ChannelUpdated(ch) => {
                self.live
                    .channel(&ch.id, &ch.endpoint, channel_activity(&ch.state, ch.on_hold))
            }
            StateChange::ChannelGone(ch) => self.live.channel_gone(&ch.id).into_iter().collect(),
            StateChange::DeviceStateChanged(ds) => {
                self.live.device(&ds.device, Some(ds.state.clone()));
                vec![ds.device.clone()]
            }
            StateChange::DeviceGone(device) => {
                self.live.device(device, None);
                vec![device.clone()]
            }
            // The changes a resync made came before this one: the index has them already.
            StateChange::Resynced(_) => {
                self.recompute_all();
                return;
            }
            _ => return,
        };
        let users: Vec<Uuid> = touched
            .iter()
            .filter_map(|d| self.by_device.get(d))
            .flatten()
            .copied()
            .collect();
        for user in users {
            self.publish_if_changed(user);
        }
    }

    async fn apply(&mut self, todo: Todo) {
        let result = if todo.everybody {
            self.reload_all(false, &todo.users).await
        } else {
            self.reload_users(todo.users).await
        };
        if let Err(e) = result {
            // The next event concerning these users reads them again.
            tracing::warn!(error = %e, "cannot read presences");
        }
    }
}

/// Starts the task; it subscribes before reading the baseline, so nothing that happens
/// while it reads is missed.
pub fn spawn(svc: Arc<ChatService>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let mut bus = svc.bus.subscribe();
    let mut changes = svc.presences.live.subscribe();
    tokio::spawn(async move {
        let mut w = Watcher {
            svc: svc.clone(),
            users: HashMap::new(),
            by_device: HashMap::new(),
            live: LiveIndex::default(),
            last: HashMap::new(),
            based: false,
        };
        if let Err(e) = w.reload_all(true, &HashSet::new()).await {
            tracing::warn!(error = %e, "cannot read the presences' baseline");
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                received = bus.recv() => {
                    let mut todo = Todo::default();
                    match received {
                        Ok(event) => todo.add(&event),
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "presences fell behind the bus; reading everybody again");
                            todo.everybody = true;
                        }
                        Err(RecvError::Closed) => break,
                    }
                    // What else already waits joins this round: a burst costs one read.
                    loop {
                        match bus.try_recv() {
                            Ok(event) => todo.add(&event),
                            Err(TryRecvError::Lagged(_)) => todo.everybody = true,
                            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                        }
                    }
                    if !todo.is_empty() {
                        w.apply(todo).await;
                    }
                }
                received = changes.recv() => match received {
                    Ok(change) => w.live_change(&change),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "presences fell behind the live state; reading it again");
                        while !matches!(changes.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
                        w.relive();
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = svc.presences.wake.notified() => {
                    let users = svc.presences.take();
                    if !users.is_empty() {
                        w.apply(Todo { everybody: false, users }).await;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: serde_json::Value) -> Event {
        Event {
            data,
            ..Event::for_test(name, "", "", None, crate::bus::Target::Service)
        }
    }

    #[test]
    fn events_name_whom_to_read_again() {
        let user = Uuid::new_v4();
        let mut todo = Todo::default();
        for name in [
            "auth_session_created",
            "auth_session_deleted",
            "auth_refresh_token_created",
            "auth_refresh_token_deleted",
            "users_services_dnd_updated",
        ] {
            todo.add(&event(name, json!({ "user_uuid": user.to_string() })));
        }
        assert_eq!(
            todo,
            Todo {
                everybody: false,
                users: [user].into()
            }
        );
        let mut todo = Todo::default();
        todo.add(&event("auth_session_created", json!({ "user_uuid": "nope" })));
        todo.add(&event(
            "users_forwards_busy_updated",
            json!({ "user_uuid": user.to_string() }),
        ));
        todo.add(&event("chatd_presence_updated", json!({ "uuid": user.to_string() })));
        assert!(todo.is_empty());
        for name in [
            "user_created",
            "user_deleted",
            "user_line_associated",
            "user_line_dissociated",
            "line_endpoint_sip_associated",
            "line_endpoint_sccp_dissociated",
            "sip_endpoint_edited",
            "sccp_endpoint_deleted",
            "line_deleted",
        ] {
            let mut todo = Todo::default();
            todo.add(&event(name, json!({})));
            assert!(todo.everybody, "{name}");
        }
    }
}
