//! Reading and updating presences. A read combines the store (what the user chose, sessions,
//! DND, lines) with the live state read at that moment; an update stores the choice and asks
//! the event task ([`super::events`]) to publish the new presence.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::Notify;
use uuid::Uuid;

use super::model::{ListQuery, LiveIndex, Presence, PresenceBody, UserInfo};
use super::store::{self, Users};
use crate::api::error::ApiError;
use crate::api::list::ListResponse;
use crate::auth::caller::Scope;
use crate::chat::errors::{unknown_user, unknown_users};
use crate::chat::ChatService;
use crate::control::LiveState;

/// What the presence routes share with the event task: the live state, and the users whose
/// stored choice changed and whose presence must be published again.
pub struct PresenceHub {
    pub live: LiveState,
    /// A set rather than a queue: a user updated twice before the task looks is published
    /// once, with the latest value, and the set never outgrows the number of users.
    pending: Mutex<HashSet<Uuid>>,
    pub(super) wake: Notify,
}

impl PresenceHub {
    pub fn new(live: LiveState) -> PresenceHub {
        PresenceHub {
            live,
            pending: Mutex::new(HashSet::new()),
            wake: Notify::new(),
        }
    }

    /// Asks the event task to recompute `user`'s presence.
    pub fn touch(&self, user: Uuid) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(user);
        }
        // Stores a permit when the task is busy: it looks again when it is done.
        self.wake.notify_one();
    }

    pub(super) fn take(&self) -> HashSet<Uuid> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

/// A path's user id: a uuid, or `me` for the token's user. Anything else names no user.
fn path_user(scope: &Scope, id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(&scope.resolve_me(id)).map_err(|_| unknown_user(id))
}

impl ChatService {
    /// The presences of these users, with their lines' states read from the live state now.
    fn presences_of(&self, infos: &[UserInfo]) -> Vec<Presence> {
        let devices: HashSet<String> = infos.iter().flat_map(|u| u.devices().map(str::to_string)).collect();
        let live = LiveIndex::from_live(&self.presences.live, Some(&devices));
        infos.iter().map(|u| u.presence(&live)).collect()
    }

    /// `GET /users/presences`: the users of the request's tenant (or sub-tree with
    /// `recurse`), narrowed to `user_uuid`; any of those not among them is a 404.
    pub async fn list_presences(&self, scope: &Scope, q: ListQuery) -> Result<ListResponse<Presence>, ApiError> {
        let tenants = scope.tenants(q.recurse);
        let wanted = q.users;
        let (total, infos) = self
            .store
            .read(move |conn| -> Result<(u64, Vec<UserInfo>), ApiError> {
                if wanted.is_empty() {
                    let infos = store::load(conn, &Users::OfTenants(tenants))?;
                    return Ok((infos.len() as u64, infos));
                }
                let total = store::count(conn, &tenants)?;
                let mut infos = store::load(conn, &Users::Only(wanted.clone()))?;
                infos.retain(|u| tenants.contains(&u.tenant_uuid));
                let found: HashSet<Uuid> = infos.iter().map(|u| u.uuid).collect();
                let missing: Vec<String> = wanted
                    .iter()
                    .filter(|u| !found.contains(u))
                    .map(Uuid::to_string)
                    .collect();
                if !missing.is_empty() {
                    return Err(unknown_users(&missing));
                }
                Ok((total, infos))
            })
            .await?;
        let items = self.presences_of(&infos);
        Ok(ListResponse {
            filtered: items.len() as u64,
            items,
            total,
        })
    }

    /// `GET /users/{uuid|me}/presences`: a user of the request's tenant or below.
    pub async fn get_presence(&self, scope: &Scope, id: &str) -> Result<Presence, ApiError> {
        let user = path_user(scope, id)?;
        let info = self
            .store
            .read(move |conn| store::load(conn, &Users::Only(vec![user])))
            .await?
            .into_iter()
            .find(|u| scope.can_see(u.tenant_uuid))
            .ok_or_else(|| unknown_user(id))?;
        self.presences_of(std::slice::from_ref(&info))
            .into_iter()
            .next()
            .ok_or_else(|| unknown_user(id))
    }

    /// `PUT /users/{uuid|me}/presences`: stores the state (and status when given), with the
    /// time of this change as `last_activity`.
    pub async fn update_presence(&self, scope: &Scope, id: &str, body: PresenceBody) -> Result<(), ApiError> {
        let user = path_user(scope, id)?;
        let tenant = self.store.read(move |conn| store::tenant_of(conn, user)).await?;
        if !tenant.is_some_and(|t| scope.can_see(t)) {
            return Err(unknown_user(id));
        }
        let now = crate::chat::time::now_us();
        self.store
            .write(move |tx| store::save(tx, user, body.state, body.status, now))
            .await?;
        tracing::debug!(user = %user, state = body.state.as_str(), "presence updated");
        self.presences.touch(user);
        Ok(())
    }
}
