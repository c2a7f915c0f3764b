//! Applications (`/applications/{uuid}/...`): each confd application is the
//! Stasis application `accent-app-<uuid>` in Asterisk. A channel that enters
//! it (`StasisStart`) is an application call; calld answers, bridges (nodes),
//! plays to and hangs up those calls over ARI, and publishes the
//! `application_*` events.
//!
//! - `state.rs`: what calld knows of each application (its tenant and
//!   destination node), its calls, nodes and playbacks, and their API objects.
//! - `stasis.rs`: one ARI websocket per application and the task applying
//!   their events (and confd's `application_*` events) to the state.
//! - `snoops.rs`: snoops (a supervisor call listening to, whispering into, another).
//! - `service.rs`: the REST operations; `routes.rs`: one route for the whole
//!   `/applications/{uuid}/...` tree, the ACL being the path.

pub mod routes;
mod service;
mod snoops;
pub mod stasis;
pub mod state;

pub use self::state::Applications;

/// The Stasis application name of a confd application.
pub fn stasis_name(uuid: uuid::Uuid) -> String {
    format!("accent-app-{uuid}")
}

/// The application uuid of a Stasis application name, if it is one of ours.
pub fn application_of(stasis: &str) -> Option<uuid::Uuid> {
    stasis
        .strip_prefix("accent-app-")
        .and_then(|u| uuid::Uuid::parse_str(u).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stasis_names_round_trip() {
        let u = uuid::Uuid::new_v4();
        assert_eq!(application_of(&stasis_name(u)), Some(u));
        assert_eq!(application_of("accent"), None);
        assert_eq!(application_of("accent-app-nope"), None);
    }
}
