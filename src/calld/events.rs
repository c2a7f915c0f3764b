//! The call events of accent-calld, from the live state's change stream: `call_created`,
//! `call_updated`, `call_answered`, `call_held`/`call_resumed`, `call_dtmf_created` and
//! `call_ended` (with `reason_code`), for every channel of a device confd knows (so its
//! tenant is known). Each goes to the channel's user (`events.calls.<user_uuid>`); a trunk's
//! channel has no user and goes to the tenant under `events.calls`.
//!
//! One task publishes them, in the order the state changed: it remembers the call object it
//! last published per channel and sends `call_updated` only when the object changed. Actions
//! that change what no Asterisk event reports (mute, recording) [poke](CalldService::poke)
//! the task instead of publishing themselves, so the order stays the state's.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::owners::{EndpointKind, Owner};
use super::CalldService;
use crate::bus::{escape_key, EventSpec};
use crate::control::model::{Channel, ChannelState, DeviceStateValue};
use crate::control::StateChange;

/// What was last published for a channel.
struct Last {
    owner: Owner,
    call: Value,
    up: bool,
    on_hold: bool,
    dtmf_count: u64,
}

struct Publisher {
    svc: Arc<CalldService>,
    last: HashMap<String, Last>,
    /// The last status published per line/trunk endpoint.
    statuses: HashMap<(EndpointKind, i64), Value>,
    /// The last snapshot of each channel in the stream, until its end is published: the
    /// state is ahead of this task, and a call object must name the other party as it was
    /// (a talking_to user still known, say) even when the state already ended it.
    seen: HashMap<String, Arc<Channel>>,
}

impl Publisher {
    fn publish(&self, name: &str, key: &str, owner: &Owner, data: Value) {
        let user = owner.user_uuid();
        let acl = match user {
            Some(u) => format!("events.calls.{}", escape_key(&u.to_string())),
            None => "events.calls".to_string(),
        };
        let spec = EventSpec::new(name, key, data).acl(acl).tenant(owner.tenant());
        let spec = match user {
            Some(u) => spec.users(vec![u]),
            None => spec.users(Vec::<Uuid>::new()),
        };
        self.svc.bus.publish(spec);
    }

    /// A channel appeared or changed: the events its new snapshot calls for.
    async fn changed(&mut self, ch: &Channel) {
        let snap = match self.svc.snapshot_seen_from(ch, &self.seen).await {
            Ok(snap) => snap,
            Err(e) => {
                tracing::warn!(error = %e, call_id = %ch.id, "cannot describe a call for its events");
                return;
            }
        };
        let Some(owner) = snap.owner(ch).cloned() else {
            return;
        };
        let call = snap.call(ch);
        let up = ch.state == ChannelState::Up;
        let Some(last) = self.last.get_mut(&ch.id) else {
            self.publish("call_created", "calls.call.created", &owner, call.clone());
            if up {
                self.publish("call_answered", "calls.call.answered", &owner, call.clone());
            }
            if ch.on_hold {
                self.publish("call_held", "calls.hold.created", &owner, hold_data(ch));
            }
            self.last.insert(
                ch.id.clone(),
                Last {
                    owner,
                    call,
                    up,
                    on_hold: ch.on_hold,
                    dtmf_count: ch.dtmf_count,
                },
            );
            return;
        };
        let new_digits = ch.dtmf_count.saturating_sub(last.dtmf_count);
        let digits: Vec<char> = {
            let all: Vec<char> = ch.dtmf_received.chars().collect();
            let n = usize::try_from(new_digits).unwrap_or(usize::MAX).min(all.len());
            all[all.len() - n..].to_vec()
        };
        let updated = last.call != call;
        let answered = up && !last.up;
        let hold_changed = last.on_hold != ch.on_hold;
        *last = Last {
            owner: owner.clone(),
            call: call.clone(),
            up,
            on_hold: ch.on_hold,
            dtmf_count: ch.dtmf_count,
        };
        if updated {
            self.publish("call_updated", "calls.call.updated", &owner, call.clone());
        }
        if answered {
            self.publish("call_answered", "calls.call.answered", &owner, call);
        }
        if hold_changed {
            let (name, key) = if ch.on_hold {
                ("call_held", "calls.hold.created")
            } else {
                ("call_resumed", "calls.hold.deleted")
            };
            self.publish(name, key, &owner, hold_data(ch));
        }
        for digit in digits {
            let mut data = serde_json::json!({ "call_id": ch.id, "digit": digit.to_string() });
            if let Some(u) = owner.user_uuid() {
                data["user_uuid"] = Value::String(u.to_string());
            }
            self.publish("call_dtmf_created", "calls.dtmf.created", &owner, data);
        }
    }

    /// A channel is gone: `call_ended` with its last snapshot, if its start was published.
    async fn gone(&mut self, ch: &Channel) {
        self.svc.marks.remove(&ch.id);
        if self.last.remove(&ch.id).is_none() {
            return;
        }
        let snap = match self.svc.snapshot_seen_from(ch, &self.seen).await {
            Ok(snap) => snap,
            Err(e) => {
                tracing::warn!(error = %e, call_id = %ch.id, "cannot describe an ended call");
                return;
            }
        };
        let Some(owner) = snap.owner(ch).cloned() else {
            return;
        };
        let mut call = snap.call(ch);
        call["reason_code"] = ch.hangup_cause.map(Value::from).unwrap_or(Value::Null);
        self.publish("call_ended", "calls.call.ended", &owner, call);
    }

    /// A device changed (state, a channel came or went): its line's or trunk's status, if
    /// that changed.
    async fn endpoint_changed(&mut self, device: &str, state: Option<&DeviceStateValue>) {
        let owners = match self.svc.owners.get(&self.svc.store).await {
            Ok(owners) => owners,
            Err(e) => {
                tracing::warn!(error = %e, device, "cannot read the endpoints");
                return;
            }
        };
        let Some(rec) = owners.endpoint_of(device) else {
            return;
        };
        let counts = self.svc.call_counts();
        let status = self.svc.endpoint_status(rec, &counts, state);
        let key = (rec.kind, rec.id);
        if self.statuses.get(&key) == Some(&status) {
            return;
        }
        self.statuses.insert(key, status.clone());
        let kind = rec.kind.as_str();
        self.svc.bus.publish(
            EventSpec::new(
                format!("{kind}_status_updated"),
                format!("{kind}s.{}.status.updated", rec.id),
                status,
            )
            .tenant(rec.tenant),
        );
    }

    /// After missing changes (lagging behind the stream): compare with the state as it is.
    async fn catch_up(&mut self) {
        let live = self.svc.live.channels();
        let alive: std::collections::HashSet<&str> = live.iter().map(|c| c.id.as_str()).collect();
        // What the stream said is stale now: the state as it is replaces it.
        self.seen.clear();
        let dead: Vec<String> = self
            .last
            .keys()
            .filter(|id| !alive.contains(id.as_str()))
            .cloned()
            .collect();
        for id in dead {
            self.svc.marks.remove(&id);
            if let Some(last) = self.last.remove(&id) {
                // Its last snapshot was missed too: end it with what was last published.
                let mut call = last.call;
                call["reason_code"] = Value::Null;
                self.publish("call_ended", "calls.call.ended", &last.owner, call);
            }
        }
        for ch in &live {
            self.changed(ch).await;
        }
    }
}

fn hold_data(ch: &Channel) -> Value {
    serde_json::json!({ "call_id": ch.id })
}

/// Runs the publisher until shutdown.
pub fn spawn(svc: Arc<CalldService>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let mut changes = svc.live.subscribe();
    let pokes = svc.take_pokes();
    tokio::spawn(async move {
        let mut publisher = Publisher {
            svc: svc.clone(),
            last: HashMap::new(),
            statuses: HashMap::new(),
            seen: HashMap::new(),
        };
        let Some(mut pokes) = pokes else {
            tracing::error!("call events already running");
            return;
        };
        // Channels alive before the task started.
        publisher.catch_up().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                change = changes.recv() => match change {
                    Ok(change) => match &*change {
                        StateChange::ChannelCreated(ch) => {
                            publisher.seen.insert(ch.id.clone(), ch.clone());
                            publisher.changed(ch).await;
                            svc.follow_transfers(ch, false);
                            publisher.endpoint_changed(&ch.endpoint, None).await;
                        }
                        StateChange::ChannelUpdated(ch) => {
                            publisher.seen.insert(ch.id.clone(), ch.clone());
                            publisher.changed(ch).await;
                            svc.follow_transfers(ch, false);
                        }
                        StateChange::ChannelGone(ch) => {
                            publisher.seen.remove(&ch.id);
                            publisher.gone(ch).await;
                            svc.follow_transfers(ch, true);
                            publisher.endpoint_changed(&ch.endpoint, None).await;
                        }
                        StateChange::DeviceStateChanged(ds) => publisher.endpoint_changed(&ds.device, Some(&ds.state)).await,
                        _ => {}
                    },
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "call events fell behind the live state; catching up");
                        publisher.catch_up().await;
                    }
                    Err(RecvError::Closed) => break,
                },
                Some(id) = pokes.recv() => {
                    if let Some(ch) = svc.live.channel(&id) {
                        publisher.changed(&ch).await;
                    }
                }
            }
        }
    })
}
