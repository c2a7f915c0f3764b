//! Types shared by the auth resources.

use serde::{Deserialize, Serialize};

/// What an auth user is for. `internal` and `external_api` users are service
/// accounts (service_id/service_key); `user` are PBX users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    #[default]
    User,
    Internal,
    ExternalApi,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::User => "user",
            Purpose::Internal => "internal",
            Purpose::ExternalApi => "external_api",
        }
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        match s {
            "user" => Some(Purpose::User),
            "internal" => Some(Purpose::Internal),
            "external_api" => Some(Purpose::ExternalApi),
            _ => None,
        }
    }

    pub fn is_service(self) -> bool {
        !matches!(self, Purpose::User)
    }
}

/// Names of the policies and groups every installation has.
pub const DEFAULT_USER_POLICY: &str = "accent_default_user_policy";
pub const DEFAULT_ADMIN_POLICY: &str = "accent_default_admin_policy";
pub const DEFAULT_MASTER_USER_POLICY: &str = "accent_default_master_user_policy";
pub const DEFAULT_ADMIN_GROUP: &str = "accent_default_admin_group";

/// The ACL of `accent_default_user_policy`: what every PBX user's token may do.
pub const DEFAULT_USER_ACL: &[&str] = &[
    "agentd.users.me.#",
    "auth.users.me.external.#",
    "auth.users.me.password.edit",
    "auth.users.me.sessions.*.delete",
    "auth.users.me.sessions.read",
    "auth.users.me.tokens.*.delete",
    "auth.users.me.tokens.read",
    "call-logd.users.me.#",
    "calld.lines.*.presences.read",
    "calld.parkings.#",
    "calld.switchboards.#",
    "calld.transfers.*.complete.update",
    "calld.transfers.*.delete",
    "calld.transfers.*.read",
    "calld.users.me.#",
    "chatd.users.*.presences.read",
    "chatd.users.me.presences.update",
    "chatd.users.me.rooms.#",
    "chatd.users.presences.read",
    "confd.infos.read",
    "confd.users.me.#.read",
    "confd.users.me.forwards.*",
    "confd.users.me.forwards.*.*",
    "confd.users.me.funckeys.*",
    "confd.users.me.funckeys.*.*",
    "confd.users.me.read",
    "confd.users.me.services.*.*",
    "confd.users.me.update",
    "events.auth.users.me.external.#",
    "events.auth.users.me.sessions.my_session.expire_soon",
    "events.call_log.user.me.created",
    "events.calls.me",
    "events.chat.message.*.me",
    "events.chat.message.*.me.*",
    "events.chatd.users.*.presences.updated",
    "events.chatd.users.me.rooms.#",
    "events.conferences.users.me.#",
    "events.config.users.me.#",
    "events.faxes.outbound.users.me.*",
    "events.parkings.#",
    "events.relocates.me",
    "events.statuses.*",
    "events.switchboards.#",
    "events.transfers.me",
    "events.users.me.#",
    "websocketd",
];

/// The ACL of `accent_default_admin_policy`: a tenant administrator.
pub const DEFAULT_ADMIN_ACL: &[&str] = &[
    "agentd.#",
    "amid.#",
    "auth.#",
    "call-logd.#",
    "calld.#",
    "chatd.#",
    "confd.#",
    "dird.#",
    "phoned.#",
    "plugind.#",
    "provd.#",
    "webhookd.#",
    "events.#",
    "websocketd",
];

/// Derives a slug (`[a-zA-Z0-9_]`, at most `max` chars) from a name, as
/// upstream does when none is given.
pub fn slugify(name: &str, max: usize) -> String {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(max)
        .collect();
    if slug.is_empty() {
        "_".into()
    } else {
        slug
    }
}

pub fn is_valid_slug(slug: &str, max: usize) -> bool {
    !slug.is_empty() && slug.len() <= max && slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events calld addresses to one user reach that user with the default policy
    /// (the websocket checks each event's `required_acl` against the token's ACL).
    #[test]
    fn the_default_user_policy_receives_the_users_own_call_events() {
        let me = "7f1c6a52-3b57-4c43-9a8e-0d6a2f1c9b11";
        let other = "0b7e2c9a-1d3f-4e5a-8b6c-7d8e9f0a1b2c";
        let acl: Vec<String> = DEFAULT_USER_ACL.iter().map(|a| a.to_string()).collect();
        let check = crate::auth::acl::AccessCheck::new(me, "session", &acl);
        for required in [
            "events.calls.{}",
            "events.transfers.{}",
            "events.relocates.{}",
            "events.conferences.users.{}.adhoc.created",
            "events.faxes.outbound.users.{}.created",
        ] {
            assert!(check.matches_required_access(&required.replace("{}", me)), "{required}");
            assert!(
                !check.matches_required_access(&required.replace("{}", other)),
                "{required}"
            );
        }
    }

    /// A user reads every presence of the tenant and its events, and updates only its own
    /// (by `me` or by its uuid), as upstream's default user policy allows.
    #[test]
    fn the_default_user_policy_covers_presences() {
        let me = "7f1c6a52-3b57-4c43-9a8e-0d6a2f1c9b11";
        let other = "0b7e2c9a-1d3f-4e5a-8b6c-7d8e9f0a1b2c";
        let acl: Vec<String> = DEFAULT_USER_ACL.iter().map(|a| a.to_string()).collect();
        let check = crate::auth::acl::AccessCheck::new(me, "session", &acl);
        for required in [
            "chatd.users.presences.read".to_string(),
            format!("chatd.users.{other}.presences.read"),
            "chatd.users.me.presences.read".to_string(),
            "chatd.users.me.presences.update".to_string(),
            format!("chatd.users.{me}.presences.update"),
            format!("events.chatd.users.{other}.presences.updated"),
        ] {
            assert!(check.matches_required_access(&required), "{required}");
        }
        assert!(!check.matches_required_access(&format!("chatd.users.{other}.presences.update")));
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("My Tenant!", 10), "My_Tenant_");
        assert_eq!(slugify("", 10), "_");
        assert!(is_valid_slug("ab_1", 10));
        assert!(!is_valid_slug("a-b", 10));
        assert!(!is_valid_slug("abcdefghijk", 10));
    }

    #[test]
    fn purpose_round_trip() {
        for p in [Purpose::User, Purpose::Internal, Purpose::ExternalApi] {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(Purpose::parse("root"), None);
    }
}
