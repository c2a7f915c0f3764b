//! User logic: tenant visibility, password hashing, revocation of a disabled
//! or deleted user's sessions, and the "no one grants more than they hold"
//! rule when attaching policies.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::model::{EmailsBody, PasswordBody, User, UserBody, UserEditBody};
use super::store;
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::caller::Scope;
use crate::auth::policies::store::{find_visible, PolicyRef};
use crate::auth::tokens::store::take_user_sessions;
use crate::auth::AuthService;

/// Upstream answers a wrong old password like a failed login.
fn authentication_failed() -> ApiError {
    ApiError::Legacy {
        status: StatusCode::UNAUTHORIZED,
        message: "Authentication Failed".into(),
    }
}

/// The 401 of a caller trying to hand out an access it does not hold
/// (upstream's `Unauthorized(token, required_access=access)`).
fn access_denied(scope: &Scope, access: &str) -> ApiError {
    ApiError::Unauthorized {
        invalid_token: Some(scope.caller().secret().to_string()),
        required_access: Some(access.to_string()),
        reason: None,
    }
}

impl AuthService {
    /// The user named in a path (`me` = the token's user) if the request's
    /// tenant can see it; 404 otherwise, missing or not.
    pub async fn user_in_scope(&self, scope: &Scope, id: &str) -> Result<User, ApiError> {
        let id = scope.resolve_me(id);
        let uuid = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("users", id.clone()))?;
        let user = self.store.read(move |c| store::get(c, uuid)).await?;
        match user {
            Some(u) if scope.can_see(u.tenant_uuid) => Ok(u),
            _ => Err(ApiError::not_found("users", id)),
        }
    }

    pub async fn list_users(&self, scope: &Scope, params: ListParams) -> Result<Value, ApiError> {
        let tenants = scope.tenants(params.recurse);
        let (total, filtered, items) = self.store.read(move |c| store::list(c, &tenants, &params)).await?;
        let items: Vec<Value> = items.iter().map(User::to_json).collect();
        Ok(json!({ "items": items, "total": total, "filtered": filtered }))
    }

    /// POST /users: the user lands in the request's tenant.
    pub async fn create_user(&self, scope: &Scope, body: UserBody) -> Result<User, ApiError> {
        let new = body.into_new()?;
        let hash = match &new.password {
            Some(p) => Some(self.hasher.hash_async(p.clone()).await.map_err(ApiError::Internal)?),
            None => None,
        };
        let tenant = scope.tenant();
        let uuid = new.uuid;
        let user = self
            .store
            .write(move |tx| {
                store::insert(tx, &new, hash.as_deref(), tenant)?;
                store::get(tx, uuid)
            })
            .await?
            .ok_or_else(|| ApiError::Internal("created user not found".into()))?;
        tracing::info!(user = %user.uuid, tenant = %tenant, purpose = user.fields.purpose.as_str(), "user created");
        Ok(user)
    }

    /// PUT /users/{uuid} on a user found by [`Self::user_in_scope`].
    /// Disabling a user also ends all its sessions.
    pub async fn update_user(self: &Arc<Self>, current: &User, body: UserEditBody) -> Result<User, ApiError> {
        let fields = body.validate()?;
        let uuid = current.uuid;
        let service = self.clone();
        let (user, revoked) = self
            .store
            .write(move |tx| {
                store::update(tx, uuid, &fields)?;
                let revoked = if fields.enabled {
                    Vec::new()
                } else {
                    let sessions = take_user_sessions(tx, uuid)?;
                    // On the writer thread: ordered after any login that
                    // cached a token before this write (see issue_token).
                    service.tokens.remove_user(uuid);
                    sessions
                };
                let user = store::get(tx, uuid)?.ok_or_else(|| ApiError::not_found("users", uuid.to_string()))?;
                Ok::<_, ApiError>((user, revoked))
            })
            .await?;
        if !user.fields.enabled {
            self.sessions_revoked(uuid, &revoked);
        }
        Ok(user)
    }

    /// DELETE /users/{uuid}: the user, its emails, links, refresh tokens and
    /// sessions; its live tokens stop working at once.
    pub async fn delete_user(self: &Arc<Self>, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let user = self.user_in_scope(scope, id).await?;
        let uuid = user.uuid;
        let service = self.clone();
        let revoked = self
            .store
            .write(move |tx| {
                let sessions = take_user_sessions(tx, uuid)?;
                store::delete(tx, uuid)?;
                service.tokens.remove_user(uuid);
                Ok::<_, ApiError>(sessions)
            })
            .await?;
        self.sessions_revoked(uuid, &revoked);
        tracing::info!(user = %uuid, "user deleted");
        Ok(())
    }

    /// PUT /users/{uuid}/password: the old password is always required.
    /// Wrong guesses are throttled like failed logins.
    pub async fn change_password(
        &self,
        user: &User,
        body: PasswordBody,
        client: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let (old, new) = body.validate()?;
        let throttle_key = format!("password-change:{}", user.uuid);
        if let Some(wait) = self.throttle.check(&throttle_key, client) {
            return Err(ApiError::TooManyRequests {
                retry_after: wait,
                legacy: true,
            });
        }
        let uuid = user.uuid;
        let hash = self.store.read(move |c| store::password_hash(c, uuid)).await?;
        if !self.hasher.verify_async(old, hash).await {
            self.throttle.record_failure(&throttle_key, client);
            return Err(authentication_failed());
        }
        self.throttle.record_success(&throttle_key);
        let new_hash = self.hasher.hash_async(new).await.map_err(ApiError::Internal)?;
        self.store
            .write(move |tx| store::set_password(tx, uuid, &new_hash))
            .await?;
        tracing::info!(user = %uuid, "password changed");
        Ok(())
    }

    /// PUT /users/{uuid}/emails (`admin` = the /admin variant, which may set
    /// `confirmed`); answers the new list.
    pub async fn update_user_emails(&self, user: &User, body: EmailsBody, admin: bool) -> Result<Value, ApiError> {
        let emails = body.validate(admin)?;
        let uuid = user.uuid;
        let updated = self
            .store
            .write(move |tx| store::replace_emails(tx, uuid, &emails))
            .await?;
        Ok(json!(updated))
    }

    pub async fn list_user_policies(&self, scope: &Scope, id: &str, params: ListParams) -> Result<Value, ApiError> {
        let user = self.user_in_scope(scope, id).await?;
        let uuid = user.uuid;
        let (total, filtered, items) = self.store.read(move |c| store::list_policies(c, uuid, &params)).await?;
        let items: Vec<Value> = items.iter().map(|p| p.to_json()).collect();
        Ok(json!({ "items": items, "total": total, "filtered": filtered }))
    }

    /// A policy (by uuid or slug) visible from the request's tenant, with
    /// its ACL.
    async fn policy_in_scope(&self, scope: &Scope, id: &str) -> Result<(PolicyRef, Vec<String>), ApiError> {
        let tenants = scope.tenants(false);
        let ancestors = scope.ancestors();
        let key = id.to_string();
        self.store
            .read(move |c| {
                let Some(policy) = find_visible(c, &tenants, &ancestors, &key)? else {
                    return Ok(None);
                };
                let acl = store::policy_acl(c, policy.uuid)?;
                Ok::<_, ApiError>(Some((policy, acl)))
            })
            .await?
            .ok_or_else(|| ApiError::not_found("policies", id))
    }

    /// PUT /users/{uuid}/policies/{policy}: the caller must hold every
    /// access the policy grants (negative entries only take rights away),
    /// else 401 naming the first access it lacks, as upstream does for
    /// policy ACLs.
    pub async fn attach_user_policy(&self, scope: &Scope, user_id: &str, policy_id: &str) -> Result<(), ApiError> {
        let user = self.user_in_scope(scope, user_id).await?;
        let (policy, acl) = self.policy_in_scope(scope, policy_id).await?;
        let check = &scope.caller().token.check;
        if let Some(denied) = acl.iter().find(|a| !check.may_add_access(a)) {
            return Err(access_denied(scope, denied));
        }
        let (u, p) = (user.uuid, policy.uuid);
        self.store.write(move |tx| store::attach_policy(tx, u, p)).await?;
        tracing::info!(user = %u, policy = %p, "policy attached to user");
        Ok(())
    }

    /// DELETE /users/{uuid}/policies/{policy}. Dropping a policy only narrows
    /// the user's rights, except for its negative entries: removing `!x`
    /// gives `x` back, so the caller must hold `x`.
    pub async fn detach_user_policy(&self, scope: &Scope, user_id: &str, policy_id: &str) -> Result<(), ApiError> {
        let user = self.user_in_scope(scope, user_id).await?;
        let (policy, acl) = self.policy_in_scope(scope, policy_id).await?;
        let check = &scope.caller().token.check;
        if let Some(denied) = acl.iter().find(|a| a.starts_with('!') && !check.may_remove_access(a)) {
            return Err(access_denied(scope, denied.strip_prefix('!').unwrap_or(denied)));
        }
        let (u, p) = (user.uuid, policy.uuid);
        self.store.write(move |tx| store::detach_policy(tx, u, p)).await?;
        tracing::info!(user = %u, policy = %p, "policy detached from user");
        Ok(())
    }
}
