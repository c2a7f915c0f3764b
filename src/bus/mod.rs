//! The in-process event bus: every service publishes here, the websocket and
//! internal consumers subscribe.
//!
//! One envelope for all events, shaped like upstream's bus messages so the
//! websocket can forward them unchanged: headers (`name`, `origin_uuid`,
//! `timestamp`, `required_acl`, `required_access`, `tenant_uuid`,
//! `user_uuid:<uuid>` flags) flattened next to `data`.

pub mod amqp;
pub mod catalog;

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Who may receive an event, upstream's "target kind".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Internal only; never reaches websocket users.
    Service,
    /// Every user of the tenant (header `user_uuid:*`).
    Tenant,
    /// Only these users (one `user_uuid:<uuid>` header each).
    Users(Vec<Uuid>),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub routing_key: String,
    pub origin_uuid: Uuid,
    pub timestamp: String,
    pub required_acl: String,
    pub tenant_uuid: Option<Uuid>,
    pub target: Target,
    pub data: Value,
    /// [`Event::to_json`] serialised, computed once for every consumer
    /// (each websocket client sends the same text).
    pub body: OnceLock<String>,
}

impl Event {
    /// An event as published, for unit tests of its consumers.
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, key: &str, acl: &str, tenant: Option<Uuid>, target: Target) -> Event {
        Event {
            name: name.into(),
            routing_key: key.into(),
            origin_uuid: Uuid::nil(),
            timestamp: String::new(),
            required_acl: acl.into(),
            tenant_uuid: tenant,
            target,
            data: Value::Object(Map::new()),
            body: OnceLock::new(),
        }
    }

    /// The bus message body as JSON text, serialised on first use.
    pub fn body_text(&self) -> &str {
        self.body.get_or_init(|| self.to_json().to_string())
    }

    /// `event.<name>`, upstream's newer access header.
    pub fn required_access(&self) -> String {
        format!("event.{}", self.name)
    }

    /// The bus message body: headers flattened next to `data`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.clone()));
        m.insert("origin_uuid".into(), Value::from(self.origin_uuid.to_string()));
        m.insert("timestamp".into(), Value::from(self.timestamp.clone()));
        m.insert("required_acl".into(), Value::from(self.required_acl.clone()));
        m.insert("required_access".into(), Value::from(self.required_access()));
        if let Some(t) = self.tenant_uuid {
            m.insert("tenant_uuid".into(), Value::from(t.to_string()));
        }
        match &self.target {
            Target::Service => {}
            Target::Tenant => {
                m.insert("user_uuid:*".into(), Value::Bool(true));
            }
            Target::Users(users) => {
                for u in users {
                    m.insert(format!("user_uuid:{u}"), Value::Bool(true));
                }
            }
        }
        m.insert("data".into(), self.data.clone());
        Value::Object(m)
    }
}

/// Escapes a value substituted into a routing key or ACL, as upstream does,
/// so a value can't widen an ACL with `*`/`#` or add segments with `.`.
pub fn escape_key(value: &str) -> String {
    value
        .replace('.', "__DOT__")
        .replace('#', "__HASH__")
        .replace('*', "__STAR__")
}

/// What a publisher describes; the bus fills in origin and timestamp.
#[derive(Debug, Clone)]
pub struct EventSpec {
    name: String,
    routing_key: String,
    acl: Option<String>,
    tenant_uuid: Option<Uuid>,
    target: Target,
    data: Value,
}

impl EventSpec {
    /// `routing_key` must already have its substituted values escaped with
    /// [`escape_key`].
    pub fn new(name: impl Into<String>, routing_key: impl Into<String>, data: Value) -> Self {
        EventSpec {
            name: name.into(),
            routing_key: routing_key.into(),
            acl: None,
            tenant_uuid: None,
            target: Target::Service,
            data,
        }
    }
    pub fn tenant(mut self, tenant_uuid: Uuid) -> Self {
        self.tenant_uuid = Some(tenant_uuid);
        if self.target == Target::Service {
            self.target = Target::Tenant;
        }
        self
    }
    pub fn users(mut self, users: Vec<Uuid>) -> Self {
        self.target = Target::Users(users);
        self
    }
    pub fn acl(mut self, acl: impl Into<String>) -> Self {
        self.acl = Some(acl.into());
        self
    }
}

/// Publish/subscribe handle; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    origin_uuid: Uuid,
}

/// Events buffered per subscriber; a slower one gets `Lagged(n)` rather than
/// holding everyone back.
const CAPACITY: usize = 4096;

impl Bus {
    pub fn new(origin_uuid: Uuid) -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Bus { tx, origin_uuid }
    }

    pub fn origin_uuid(&self) -> Uuid {
        self.origin_uuid
    }

    pub fn publish(&self, spec: EventSpec) -> Arc<Event> {
        let required_acl = spec.acl.unwrap_or_else(|| format!("events.{}", spec.routing_key));
        let event = Arc::new(Event {
            name: spec.name,
            routing_key: spec.routing_key,
            origin_uuid: self.origin_uuid,
            timestamp: crate::time::local_iso_now(),
            required_acl,
            tenant_uuid: spec.tenant_uuid,
            target: spec.target,
            data: spec.data,
            body: OnceLock::new(),
        });
        tracing::debug!(name = %event.name, routing_key = %event.routing_key, "event published");
        // Every integration test run checks every event it causes against upstream's names
        // (the crate's own unit tests feed made-up events to the bus's consumers).
        #[cfg(all(debug_assertions, not(test)))]
        if let Err(e) = catalog::check(&event) {
            panic!("event outside the catalog: {e}");
        }
        // No subscriber is not an error: events are fire-and-forget.
        let _ = self.tx.send(event.clone());
        event
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn envelope_has_upstream_headers() {
        let origin = Uuid::new_v4();
        let tenant = Uuid::new_v4();
        let user = Uuid::new_v4();
        let bus = Bus::new(origin);
        let mut rx = bus.subscribe();
        bus.publish(
            EventSpec::new("auth_session_created", "auth.sessions.s1.created", json!({"a": 1}))
                .tenant(tenant)
                .users(vec![user]),
        );
        let event = rx.recv().await.expect("event");
        let body = event.to_json();
        assert_eq!(body["name"], "auth_session_created");
        assert_eq!(body["origin_uuid"], origin.to_string());
        assert_eq!(body["required_acl"], "events.auth.sessions.s1.created");
        assert_eq!(body["required_access"], "event.auth_session_created");
        assert_eq!(body["tenant_uuid"], tenant.to_string());
        assert_eq!(body[format!("user_uuid:{user}")], true);
        assert!(body.get("user_uuid:*").is_none());
        assert_eq!(body["data"], json!({"a": 1}));
    }

    #[test]
    fn tenant_events_target_every_user() {
        let bus = Bus::new(Uuid::new_v4());
        let e = bus.publish(EventSpec::new("user_created", "config.user.created", json!({})).tenant(Uuid::new_v4()));
        assert_eq!(e.to_json()["user_uuid:*"], true);
    }

    #[test]
    fn escape_key_neutralises_wildcards() {
        assert_eq!(escape_key("a.b#c*"), "a__DOT__b__HASH__c__STAR__");
    }
}
