//! What calld knows of the switchboards' calls: queued and held calls (in the
//! order they arrived), operators being rung, and the conversations an
//! operator answered; the `switchboard_*` events each change raises.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::ari::models::Channel;
use crate::bus::{escape_key, Bus, EventSpec};
use crate::confd::switchboards::SwitchboardInfo;

/// Where a switchboard call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Queued,
    Held,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Queued => "queued",
            Kind::Held => "held",
        }
    }
}

/// A caller's call of a switchboard.
#[derive(Debug, Clone)]
pub struct Entry {
    pub switchboard: Uuid,
    pub tenant: Uuid,
    pub id: String,
    pub caller_id_name: String,
    pub caller_id_number: String,
    /// Arrival order in its list.
    seq: u64,
}

impl Entry {
    pub fn new(sb: &SwitchboardInfo, ch: &Channel) -> Entry {
        Entry {
            switchboard: sb.uuid,
            tenant: sb.tenant,
            id: ch.id.clone(),
            caller_id_name: ch.caller.name.clone(),
            caller_id_number: ch.caller.number.clone(),
            seq: 0,
        }
    }

    /// What the operator's phone shows: the caller, `"Name" <number>`.
    pub fn caller_id(&self) -> String {
        let name: String = self
            .caller_id_name
            .chars()
            .filter(|c| !matches!(c, '"' | '<' | '>'))
            .collect();
        let number: String = self
            .caller_id_number
            .chars()
            .filter(|c| !matches!(c, '"' | '<' | '>'))
            .collect();
        format!("\"{name}\" <{number}>")
    }

    fn item(&self) -> Value {
        json!({ "id": self.id, "caller_id_name": self.caller_id_name, "caller_id_number": self.caller_id_number })
    }
}

/// An operator's line being rung to answer `call_id`.
#[derive(Debug, Clone)]
pub struct Answering {
    pub switchboard: Uuid,
    pub tenant: Uuid,
    pub call_id: String,
    pub kind: Kind,
}

/// A call an operator talks to.
#[derive(Debug, Clone)]
pub struct Talking {
    pub entry: Entry,
    pub operator: String,
    pub bridge: String,
}

#[derive(Default)]
pub struct Switchboards {
    queued: DashMap<String, Entry>,
    held: DashMap<String, Entry>,
    /// Operator channel id -> what it answers.
    pub(super) answering: DashMap<String, Answering>,
    /// Caller call id -> its conversation with an operator.
    pub(super) talking: DashMap<String, Talking>,
    seq: AtomicU64,
}

impl Switchboards {
    fn list(&self, kind: Kind) -> &DashMap<String, Entry> {
        match kind {
            Kind::Queued => &self.queued,
            Kind::Held => &self.held,
        }
    }

    pub fn entry(&self, kind: Kind, id: &str) -> Option<Entry> {
        self.list(kind).get(id).map(|e| e.clone())
    }

    /// The calls of a switchboard's list as upstream shows them, oldest first.
    pub fn items(&self, kind: Kind, switchboard: Uuid) -> Vec<Value> {
        let mut entries: Vec<Entry> = self
            .list(kind)
            .iter()
            .filter(|e| e.switchboard == switchboard)
            .map(|e| e.clone())
            .collect();
        entries.sort_by_key(|e| e.seq);
        entries.iter().map(Entry::item).collect()
    }

    /// Adds a call to a list and publishes the list.
    pub fn put(&self, kind: Kind, mut entry: Entry, bus: &Bus) {
        entry.seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (switchboard, tenant) = (entry.switchboard, entry.tenant);
        self.list(kind).insert(entry.id.clone(), entry);
        self.publish_list(kind, switchboard, tenant, bus);
    }

    /// Removes a call from a list (publishing the list when it was there).
    pub fn take(&self, kind: Kind, id: &str, bus: &Bus) -> Option<Entry> {
        let (_, entry) = self.list(kind).remove(id)?;
        self.publish_list(kind, entry.switchboard, entry.tenant, bus);
        Some(entry)
    }

    /// The operator answered: the call leaves its list, talks to the operator.
    pub(super) fn answered(&self, a: &Answering, operator: &str, bridge: &str, bus: &Bus) {
        let entry = self.take(a.kind, &a.call_id, bus);
        if let Some(entry) = entry {
            self.talking.insert(
                a.call_id.clone(),
                Talking {
                    entry,
                    operator: operator.to_string(),
                    bridge: bridge.to_string(),
                },
            );
        }
        let kind = a.kind.as_str();
        let key = format!(
            "switchboards.{}.calls.{kind}.{}.answer.updated",
            a.switchboard,
            escape_key(&a.call_id)
        );
        bus.publish(
            EventSpec::new(
                format!("switchboard_{kind}_call_answered"),
                key,
                json!({
                    "switchboard_uuid": a.switchboard,
                    "operator_call_id": operator,
                    format!("{kind}_call_id"): a.call_id,
                }),
            )
            .tenant(a.tenant),
        );
    }

    /// A channel left the application: out of every list and conversation.
    pub fn gone(&self, id: &str, bus: &Bus) {
        for kind in [Kind::Queued, Kind::Held] {
            self.take(kind, id, bus);
        }
        self.talking.remove(id);
        self.talking.retain(|_, t| t.operator != id);
        self.answering.remove(id);
    }

    /// `switchboard_queued_calls_updated` / `switchboard_held_calls_updated`.
    fn publish_list(&self, kind: Kind, switchboard: Uuid, tenant: Uuid, bus: &Bus) {
        let k = kind.as_str();
        bus.publish(
            EventSpec::new(
                format!("switchboard_{k}_calls_updated"),
                format!("switchboards.{switchboard}.calls.{k}.updated"),
                json!({ "switchboard_uuid": switchboard, "items": self.items(kind, switchboard) }),
            )
            .tenant(tenant),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_cannot_break_the_originate_caller_id() {
        let e = Entry {
            switchboard: Uuid::nil(),
            tenant: Uuid::nil(),
            id: "1.1".into(),
            caller_id_name: "Ev\"il <x>".into(),
            caller_id_number: "12<3>".into(),
            seq: 0,
        };
        assert_eq!(e.caller_id(), "\"Evil x\" <123>");
    }

    #[test]
    fn lists_keep_arrival_order_and_forget_gone_calls() {
        let bus = Bus::new(Uuid::nil());
        let mut rx = bus.subscribe();
        let s = Switchboards::default();
        let sb = Uuid::new_v4();
        let entry = |id: &str| Entry {
            switchboard: sb,
            tenant: Uuid::nil(),
            id: id.into(),
            caller_id_name: String::new(),
            caller_id_number: id.into(),
            seq: 0,
        };
        for id in ["b", "a", "c"] {
            s.put(Kind::Queued, entry(id), &bus);
        }
        let ids = |k| -> Vec<Value> { s.items(k, sb).iter().map(|i| i["id"].clone()).collect() };
        assert_eq!(ids(Kind::Queued), [json!("b"), json!("a"), json!("c")]);
        s.gone("a", &bus);
        assert_eq!(ids(Kind::Queued), [json!("b"), json!("c")]);
        s.gone("zz", &bus);
        let names: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(
            names.len(),
            4,
            "one list event per change, none for an unknown call: {names:?}"
        );
        assert!(s.items(Kind::Held, sb).is_empty());
    }
}
