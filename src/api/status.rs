//! What is connected: each component reports ok/fail here, `/status` shows it.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub status: Health,
    /// Why it fails, or what it is connected to; never secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Running totals a component reports next to its state (the AMQP publisher's
    /// `published`, `dropped`, `buffered`), shown as fields of its object.
    #[serde(flatten)]
    pub counters: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct StatusRegistry {
    components: RwLock<BTreeMap<&'static str, ComponentStatus>>,
}

impl StatusRegistry {
    pub fn set(&self, name: &'static str, status: Health, detail: Option<String>) {
        self.set_with_counters(name, status, detail, &[]);
    }

    /// [`StatusRegistry::set`] with counters shown next to `status` and `detail`.
    pub fn set_with_counters(
        &self,
        name: &'static str,
        status: Health,
        detail: Option<String>,
        counters: &[(&'static str, u64)],
    ) {
        let counters = counters.iter().copied().collect();
        if let Ok(mut c) = self.components.write() {
            c.insert(
                name,
                ComponentStatus {
                    status,
                    detail,
                    counters,
                },
            );
        }
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, ComponentStatus> {
        self.components.read().map(|c| c.clone()).unwrap_or_default()
    }
}

/// `GET <prefix>/status` of a service, guarded by its `<service>.status.read` ACL.
pub fn route(
    acl: &'static str,
    auth: std::sync::Arc<crate::auth::AuthService>,
    status: std::sync::Arc<StatusRegistry>,
) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    use warp::{Filter, Reply};
    warp::path!("status")
        .and(warp::get())
        .and(crate::auth::caller::authenticated(auth))
        .then(move |caller: crate::auth::caller::Caller| {
            let status = status.clone();
            super::respond(async move {
                caller.require(acl)?;
                Ok(warp::reply::json(&status.snapshot()).into_response())
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_updates() {
        let r = StatusRegistry::default();
        r.set("ari", Health::Fail, Some("connection refused".into()));
        r.set("ari", Health::Ok, None);
        let s = r.snapshot();
        assert_eq!(s["ari"].status, Health::Ok);
        assert_eq!(serde_json::to_value(&s).expect("json")["ari"]["status"], "ok");
    }

    #[test]
    fn counters_are_fields_of_the_component() {
        let r = StatusRegistry::default();
        r.set_with_counters("amqp", Health::Fail, None, &[("dropped", 3), ("published", 7)]);
        let v = serde_json::to_value(r.snapshot()).expect("json");
        assert_eq!(
            v["amqp"],
            serde_json::json!({"status": "fail", "dropped": 3, "published": 7})
        );
    }
}
