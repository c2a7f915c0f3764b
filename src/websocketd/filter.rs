//! Who receives which event: the three checks upstream applies to every bus
//! message before a websocket client sees it (tenant scope, addressing, and
//! `required_acl` matched by the token's ACL), plus the client's
//! subscriptions.

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::auth::model::Purpose;
use crate::auth::token::TokenData;
use crate::bus::{Event, Target};

/// What a connection's token allows it to receive.
pub struct Audience {
    token: Arc<TokenData>,
    /// The token's tenant is the top of the tree: its queue is bound on the
    /// main exchange upstream, so it sees every tenant's events.
    master: bool,
    /// Admins (master tenant, `metadata.admin`, service accounts) receive
    /// events whatever user they address; users only their own and their
    /// tenant's.
    admin: bool,
}

impl Audience {
    pub fn new(token: Arc<TokenData>, master_tenant: Option<Uuid>) -> Self {
        let master = master_tenant == Some(token.tenant_uuid);
        let admin = master
            || token.metadata.get("admin").and_then(|v| v.as_bool()) == Some(true)
            || matches!(token.purpose, Purpose::Internal | Purpose::ExternalApi);
        Audience { token, master, admin }
    }

    pub fn token(&self) -> &Arc<TokenData> {
        &self.token
    }

    pub fn accepts(&self, event: &Event) -> bool {
        self.in_tenant(event) && self.addressed(event) && self.token.check.matches_required_access(&event.required_acl)
    }

    fn in_tenant(&self, event: &Event) -> bool {
        self.master || event.tenant_uuid == Some(self.token.tenant_uuid)
    }

    fn addressed(&self, event: &Event) -> bool {
        if self.admin {
            return true;
        }
        match &event.target {
            // No `user_uuid:*` header: never for users.
            Target::Service => false,
            Target::Tenant => true,
            Target::Users(users) => users.contains(&self.token.user_uuid),
        }
    }
}

/// The event names a connection subscribed to.
#[derive(Default)]
pub struct Subscriptions {
    all: bool,
    names: HashSet<String>,
}

impl Subscriptions {
    pub fn add(&mut self, name: String) {
        if name == "*" {
            self.all = true;
        } else {
            self.names.insert(name);
        }
    }

    pub fn wants(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::AccessCheck;
    use serde_json::json;

    fn token(tenant: Uuid, user: Uuid, purpose: Purpose, acl: &[&str], metadata: serde_json::Value) -> Arc<TokenData> {
        let acl: Vec<String> = acl.iter().map(|s| s.to_string()).collect();
        let session = Uuid::new_v4();
        Arc::new(TokenData {
            hash: [0; 32],
            session_uuid: session,
            auth_id: user.to_string(),
            user_uuid: user,
            pbx_user_uuid: Some(user),
            tenant_uuid: tenant,
            purpose,
            issued_at: 0.0,
            expire_at: f64::MAX,
            check: AccessCheck::new(&user.to_string(), &session.to_string(), &acl),
            acl,
            metadata,
            user_agent: String::new(),
            remote_addr: String::new(),
            refresh_token_uuid: None,
            mobile: false,
        })
    }

    fn event(tenant: Option<Uuid>, target: Target, acl: &str) -> Event {
        Event::for_test("call_created", "calls.call.created", acl, tenant, target)
    }

    #[test]
    fn a_user_gets_its_own_and_its_tenants_events_its_acl_allows() {
        let (master, tenant, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let a = Audience::new(
            token(
                tenant,
                alice,
                Purpose::User,
                &["events.calls.me", "events.config.#"],
                json!({}),
            ),
            Some(master),
        );
        let own = format!("events.calls.{alice}");
        assert!(a.accepts(&event(Some(tenant), Target::Users(vec![alice]), &own)));
        // Addressed to bob, even with an ACL alice holds.
        assert!(!a.accepts(&event(Some(tenant), Target::Users(vec![bob]), &own)));
        // Bob's ACL.
        let bobs = format!("events.calls.{bob}");
        assert!(!a.accepts(&event(Some(tenant), Target::Tenant, &bobs)));
        assert!(a.accepts(&event(Some(tenant), Target::Tenant, "events.config.users.created")));
        // Another tenant, a service event.
        assert!(!a.accepts(&event(Some(Uuid::new_v4()), Target::Tenant, "events.config.x")));
        assert!(!a.accepts(&event(None, Target::Service, "events.config.x")));
    }

    #[test]
    fn admins_of_a_tenant_get_every_event_of_that_tenant_only() {
        let (master, tenant, admin, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let a = Audience::new(
            token(tenant, admin, Purpose::User, &["events.#"], json!({"admin": true})),
            Some(master),
        );
        assert!(a.accepts(&event(Some(tenant), Target::Users(vec![bob]), "events.calls.x")));
        assert!(!a.accepts(&event(Some(Uuid::new_v4()), Target::Tenant, "events.calls.x")));
        assert!(!a.accepts(&event(None, Target::Service, "events.x")));
        // Without the ACL, nothing.
        let narrow = Audience::new(
            token(tenant, admin, Purpose::Internal, &["events.config.#"], json!({})),
            Some(master),
        );
        assert!(narrow.accepts(&event(Some(tenant), Target::Users(vec![bob]), "events.config.y")));
        assert!(!narrow.accepts(&event(Some(tenant), Target::Users(vec![bob]), "events.calls.x")));
    }

    #[test]
    fn master_tenant_tokens_see_every_tenant_and_service_events() {
        let (master, other, root) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let a = Audience::new(
            token(master, root, Purpose::User, &["events.#"], json!({})),
            Some(master),
        );
        assert!(a.accepts(&event(Some(other), Target::Users(vec![Uuid::new_v4()]), "events.a")));
        assert!(a.accepts(&event(None, Target::Service, "events.b")));
    }

    #[test]
    fn subscriptions() {
        let mut s = Subscriptions::default();
        assert!(s.is_empty());
        s.add("call_created".into());
        assert!(s.wants("call_created") && !s.wants("call_ended"));
        s.add("*".into());
        assert!(s.wants("anything"));
    }
}
