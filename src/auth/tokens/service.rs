//! Token, session and refresh-token logic.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::model::{AccessType, Credentials, RefreshTokenRow, SessionRow, ValidTokenRequest};
use super::store::{self, LoginUser};
use crate::api::error::ApiError;
use crate::api::list::{ListParams, ListResponse};
use crate::auth::acl::AccessCheck;
use crate::auth::caller::Scope;
use crate::auth::model::Purpose;
use crate::auth::token::{self, TokenData};
use crate::auth::AuthService;
use crate::bus::{escape_key, EventSpec};

/// Facts about the HTTP request a token is created from.
#[derive(Debug, Clone, Default)]
pub struct LoginContext {
    pub remote_addr: Option<IpAddr>,
    pub user_agent: String,
    pub mobile: bool,
}

fn auth_failed() -> ApiError {
    ApiError::Legacy {
        status: StatusCode::UNAUTHORIZED,
        message: "Authentication Failed".into(),
    }
}

impl AuthService {
    /// POST /token: checks credentials (with throttling) and issues a token.
    pub async fn create_token(self: &Arc<Self>, req: ValidTokenRequest, ctx: LoginContext) -> Result<Value, ApiError> {
        let (user, login, refresh) = match &req.credentials {
            Credentials::Password { login, password } => {
                if let Some(wait) = self.throttle.check(login, ctx.remote_addr) {
                    return Err(ApiError::TooManyRequests {
                        retry_after: wait,
                        legacy: true,
                    });
                }
                let l = login.clone();
                let user = self.store.read(move |c| store::find_login(c, &l)).await?;
                let hash = user
                    .as_ref()
                    .filter(|u| u.enabled)
                    .and_then(|u| u.password_hash.clone());
                let ok = self.hasher.verify_async(password.clone(), hash).await;
                match user {
                    Some(user) if ok => {
                        self.throttle.record_success(login);
                        (user, login.clone(), None)
                    }
                    _ => {
                        self.throttle.record_failure(login, ctx.remote_addr);
                        tracing::info!(login = %login, "authentication failed");
                        return Err(auth_failed());
                    }
                }
            }
            Credentials::Refresh {
                refresh_token,
                client_id,
            } => {
                let throttle_key = format!("refresh:{client_id}");
                if let Some(wait) = self.throttle.check(&throttle_key, ctx.remote_addr) {
                    return Err(ApiError::TooManyRequests {
                        retry_after: wait,
                        legacy: true,
                    });
                }
                let hash = token::hash_secret(refresh_token);
                let cid = client_id.clone();
                let found = self
                    .store
                    .read(move |c| {
                        let Some(row) = store::find_refresh_token(c, &hash, &cid)? else {
                            return Ok(None);
                        };
                        Ok::<_, ApiError>(store::find_user(c, row.user_uuid)?.map(|u| (u, row)))
                    })
                    .await?;
                match found {
                    Some((user, row)) if user.enabled => (user, row.login.clone(), Some(row.uuid)),
                    _ => {
                        self.throttle.record_failure(&throttle_key, ctx.remote_addr);
                        return Err(auth_failed());
                    }
                }
            }
        };
        self.issue_token(user, login, &req, refresh, ctx).await
    }

    async fn issue_token(
        self: &Arc<Self>,
        user: LoginUser,
        login: String,
        req: &ValidTokenRequest,
        from_refresh: Option<Uuid>,
        ctx: LoginContext,
    ) -> Result<Value, ApiError> {
        let now = crate::time::now_epoch();
        let lifetime = req.expiration.unwrap_or(self.config.auth.default_token_lifetime);
        let expire_at = now + lifetime as f64;
        let secret = token::new_secret();
        let secret_hash = token::hash_secret(&secret);
        let session_uuid = Uuid::new_v4();
        // A refresh token is only minted on a password login; a refresh login
        // keeps using the one it came with.
        let new_refresh = (req.access_type == AccessType::Offline && from_refresh.is_none())
            .then(|| req.client_id.clone())
            .flatten()
            .map(|client_id| (token::new_secret(), client_id));
        let max_sessions = self.config.auth.max_user_concurrent_sessions as u64;
        let accent_uuid = self.accent_uuid;
        let remote_addr = ctx.remote_addr.map(|a| a.to_string()).unwrap_or_default();
        let user_agent = ctx.user_agent.clone();
        let mobile = ctx.mobile;
        let refresh_for_tx = new_refresh.clone();
        let user_for_tx = user.clone();
        let service = self.clone();

        let written = self
            .store
            .write(move |tx| {
                // The user may have been disabled or deleted while its
                // password was being checked: decide on its current state.
                if !store::find_user(tx, user_for_tx.uuid)?.is_some_and(|u| u.enabled) {
                    return Err(auth_failed());
                }
                let user = user_for_tx;
                if user.purpose != Purpose::Internal && store::count_live_sessions(tx, user.uuid, now)? >= max_sessions
                {
                    return Err(ApiError::Legacy {
                        status: StatusCode::TOO_MANY_REQUESTS,
                        message: "Too many sessions".into(),
                    });
                }
                let acl = store::user_acl(tx, &user)?;
                let admin = store::is_admin(tx, &user)?;
                let pbx_user_uuid = (user.purpose == Purpose::User).then_some(user.uuid);
                let session = SessionRow {
                    uuid: session_uuid,
                    tenant_uuid: user.tenant_uuid,
                    user_uuid: user.uuid,
                    mobile,
                };
                store::insert_session(tx, &session, expire_at)?;
                let mut replaced = None;
                let mut refresh_row = None;
                let mut refresh_uuid = from_refresh;
                if let Some((refresh_secret, client_id)) = &refresh_for_tx {
                    // Only a digest is stored, so an existing refresh token for
                    // this (user, client_id) cannot be handed out again: it is
                    // replaced by a new one.
                    replaced = store::delete_refresh_token(tx, user.uuid, client_id)?;
                    let row = RefreshTokenRow {
                        uuid: Uuid::new_v4(),
                        client_id: client_id.clone(),
                        user_uuid: user.uuid,
                        tenant_uuid: user.tenant_uuid,
                        login: login.clone(),
                        mobile,
                        created_at: now,
                        user_agent: user_agent.clone(),
                        remote_addr: remote_addr.clone(),
                    };
                    store::insert_refresh_token(tx, &row, &token::hash_secret(refresh_secret), "accent_user")?;
                    refresh_uuid = Some(row.uuid);
                    refresh_row = Some(row);
                }
                let auth_id = user.uuid.to_string();
                let metadata = json!({
                    "uuid": auth_id,
                    "tenant_uuid": user.tenant_uuid.to_string(),
                    "auth_id": auth_id,
                    "pbx_user_uuid": pbx_user_uuid.map(|u| u.to_string()),
                    "accent_uuid": accent_uuid.to_string(),
                    "xivo_uuid": accent_uuid.to_string(),
                    "purpose": user.purpose.as_str(),
                    "admin": admin,
                });
                let data = TokenData {
                    hash: secret_hash,
                    session_uuid,
                    check: AccessCheck::new(&auth_id, &session_uuid.to_string(), &acl),
                    auth_id,
                    user_uuid: user.uuid,
                    pbx_user_uuid,
                    tenant_uuid: user.tenant_uuid,
                    purpose: user.purpose,
                    issued_at: now,
                    expire_at,
                    acl,
                    metadata,
                    user_agent,
                    remote_addr,
                    refresh_token_uuid: refresh_uuid,
                    mobile,
                };
                store::insert_token(tx, &data)?;
                // Cached here, on the writer thread, so that a later write
                // revoking the user's sessions (disable, delete) is ordered
                // after this insert and always clears it.
                let data = Arc::new(data);
                service.tokens.insert(data.clone());
                Ok((data, refresh_row, replaced))
            })
            .await;
        let (token_data, refresh_row, replaced) = match written {
            Ok(w) => w,
            Err(e) => {
                // The commit may have failed after the token was cached.
                self.tokens.remove_session(session_uuid);
                return Err(e);
            }
        };

        tracing::info!(user = %user.uuid, session = %session_uuid, "token created");
        self.publish_session_created(&token_data);
        if let Some(old) = replaced {
            self.publish_refresh_token(&old, "deleted");
        }
        let mut body = token_data.to_json(&secret, self.accent_uuid);
        if let (Some(row), Some((refresh_secret, _))) = (refresh_row, new_refresh) {
            self.publish_refresh_token(&row, "created");
            body["refresh_token"] = json!(refresh_secret);
        }
        Ok(json!({ "data": body }))
    }

    /// GET/HEAD /token/{t}: the token if live, its scope granted and the
    /// tenant visible; upstream's legacy 404/403 otherwise.
    pub fn check_token(
        &self,
        secret: &str,
        scope: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Arc<TokenData>, ApiError> {
        let token = self
            .tokens
            .get(secret, crate::time::now_epoch())
            .ok_or(ApiError::Legacy {
                status: StatusCode::NOT_FOUND,
                message: "No such token".into(),
            })?;
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            if !token.check.matches_required_access(scope) {
                return Err(ApiError::Legacy {
                    status: StatusCode::FORBIDDEN,
                    message: "Unauthorized access".into(),
                });
            }
        }
        if let Some(tenant) = tenant.filter(|t| !t.is_empty()) {
            self.check_tenant_visible(&token, tenant)?;
        }
        Ok(token)
    }

    fn check_tenant_visible(&self, token: &TokenData, tenant: &str) -> Result<(), ApiError> {
        let visible = Uuid::parse_str(tenant).is_ok_and(|t| self.tree.is_within(token.tenant_uuid, t));
        if visible {
            Ok(())
        } else {
            Err(ApiError::Legacy {
                status: StatusCode::FORBIDDEN,
                message: "Unauthorized tenant".into(),
            })
        }
    }

    /// POST /token/{t}/scopes/check.
    pub fn check_scopes(&self, secret: &str, scopes: &[String], tenant: Option<Uuid>) -> Result<Value, ApiError> {
        let token = self.check_token(secret, None, None)?;
        if let Some(t) = tenant {
            self.check_tenant_visible(&token, &t.to_string())?;
        }
        let result: BTreeMap<&str, bool> = scopes
            .iter()
            .map(|s| (s.as_str(), token.check.matches_required_access(s)))
            .collect();
        Ok(json!({ "scopes": result }))
    }

    /// DELETE /token/{t}: ends the token's session.
    pub async fn revoke_token(self: &Arc<Self>, secret: &str) -> Result<(), ApiError> {
        let Some(token) = self.tokens.get(secret, crate::time::now_epoch()) else {
            // Revoking an unknown token is not an error upstream either.
            return Ok(());
        };
        let session = token.session_uuid;
        let row = self
            .store
            .write(move |tx| {
                let row = store::find_session(tx, session)?;
                store::delete_session(tx, session)?;
                Ok::<_, ApiError>(row)
            })
            .await?;
        self.tokens.remove_session(session);
        if let Some(row) = row {
            self.publish_session_deleted(&row);
        }
        Ok(())
    }

    /// The user named in a `/users/{uuid}/...` path, if the scope can see it.
    pub async fn visible_user(&self, scope: &Scope, id: &str) -> Result<LoginUser, ApiError> {
        let id = scope.resolve_me(id);
        let uuid = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("users", id.clone()))?;
        let user = self.store.read(move |c| store::find_user(c, uuid)).await?;
        match user {
            Some(u) if scope.can_see(u.tenant_uuid) => Ok(u),
            _ => Err(ApiError::not_found("users", id)),
        }
    }

    pub async fn list_sessions(
        &self,
        scope: &Scope,
        user: Option<Uuid>,
        params: ListParams,
    ) -> Result<Value, ApiError> {
        let tenants = scope.tenants(params.recurse || user.is_some());
        let (total, filtered, items) = self
            .store
            .read(move |c| store::list_sessions(c, &tenants, user, &params))
            .await?;
        Ok(serde_json::to_value(ListResponse { items, total, filtered }).unwrap_or(Value::Null))
    }

    pub async fn delete_session(
        self: &Arc<Self>,
        scope: &Scope,
        session: &str,
        user: Option<Uuid>,
    ) -> Result<(), ApiError> {
        let uuid = Uuid::parse_str(session).map_err(|_| ApiError::not_found("sessions", session))?;
        let row = self.store.read(move |c| store::find_session(c, uuid)).await?;
        let row = match row {
            Some(r) if scope.can_see(r.tenant_uuid) && user.is_none_or(|u| u == r.user_uuid) => r,
            _ => return Err(ApiError::not_found("sessions", session)),
        };
        self.store.write(move |tx| store::delete_session(tx, uuid)).await?;
        self.tokens.remove_session(uuid);
        self.publish_session_deleted(&row);
        Ok(())
    }

    pub async fn list_refresh_tokens(
        &self,
        scope: &Scope,
        user: Option<Uuid>,
        params: ListParams,
    ) -> Result<Value, ApiError> {
        let tenants = scope.tenants(params.recurse || user.is_some());
        let (total, filtered, items) = self
            .store
            .read(move |c| store::list_refresh_tokens(c, &tenants, user, &params))
            .await?;
        let items: Vec<Value> = items.iter().map(RefreshTokenRow::to_json).collect();
        Ok(json!({ "items": items, "total": total, "filtered": filtered }))
    }

    pub async fn delete_refresh_token(&self, user: Uuid, client_id: String) -> Result<(), ApiError> {
        let cid = client_id.clone();
        let row = self
            .store
            .write(move |tx| store::delete_refresh_token(tx, user, &cid))
            .await?;
        match row {
            Some(row) => {
                self.publish_refresh_token(&row, "deleted");
                Ok(())
            }
            None => Err(ApiError::not_found("tokens", client_id)),
        }
    }

    /// One pass of the background cleanup: warns about sessions about to
    /// expire, deletes expired ones (tokens cascade) in batches.
    pub async fn purge_expired(self: &Arc<Self>) -> Result<usize, ApiError> {
        let now = crate::time::now_epoch();
        let delay = self.config.auth.session_expire_soon_delay as f64;
        let expiring = self
            .store
            .write(move |tx| store::take_expiring_sessions(tx, now, delay))
            .await?;
        for s in &expiring {
            self.publish_session_expire_soon(s);
        }
        let mut purged = 0;
        loop {
            let batch = self
                .store
                .write(move |tx| store::take_expired_sessions(tx, now, 1000))
                .await?;
            for s in &batch {
                self.publish_session_deleted(s);
            }
            purged += batch.len();
            if batch.len() < 1000 {
                break;
            }
        }
        self.tokens.remove_expired(now);
        self.throttle.purge();
        if purged > 0 {
            tracing::info!(purged, "expired sessions purged");
        }
        Ok(purged)
    }

    fn publish_session_created(&self, t: &TokenData) {
        self.bus.publish(
            EventSpec::new(
                "auth_session_created",
                format!("auth.sessions.{}.created", t.session_uuid),
                json!({ "uuid": t.session_uuid, "tenant_uuid": t.tenant_uuid, "user_uuid": t.user_uuid, "mobile": t.mobile }),
            )
            .tenant(t.tenant_uuid)
            .users(vec![t.user_uuid]),
        );
    }

    /// Forgets every cached token of `user` and announces the end of its
    /// sessions, already deleted from the store by
    /// [`store::take_user_sessions`] (disabled or deleted user).
    pub(crate) fn sessions_revoked(&self, user: Uuid, sessions: &[SessionRow]) {
        self.tokens.remove_user(user);
        for s in sessions {
            self.publish_session_deleted(s);
        }
        if !sessions.is_empty() {
            tracing::info!(user = %user, sessions = sessions.len(), "user sessions revoked");
        }
    }

    fn publish_session_deleted(&self, s: &SessionRow) {
        self.bus.publish(
            EventSpec::new(
                "auth_session_deleted",
                format!("auth.sessions.{}.deleted", s.uuid),
                json!({ "uuid": s.uuid, "tenant_uuid": s.tenant_uuid, "user_uuid": s.user_uuid }),
            )
            .tenant(s.tenant_uuid)
            .users(vec![s.user_uuid]),
        );
    }

    fn publish_session_expire_soon(&self, s: &SessionRow) {
        self.bus.publish(
            EventSpec::new(
                "auth_session_expire_soon",
                format!("auth.users.{}.sessions.{}.expire_soon", s.user_uuid, s.uuid),
                json!({ "uuid": s.uuid, "tenant_uuid": s.tenant_uuid, "user_uuid": s.user_uuid }),
            )
            .tenant(s.tenant_uuid)
            .users(vec![s.user_uuid]),
        );
    }

    fn publish_refresh_token(&self, r: &RefreshTokenRow, what: &str) {
        self.bus.publish(
            EventSpec::new(
                format!("auth_refresh_token_{what}"),
                format!("auth.users.{}.tokens.{}.{what}", r.user_uuid, escape_key(&r.client_id)),
                json!({ "client_id": r.client_id, "mobile": r.mobile, "tenant_uuid": r.tenant_uuid, "user_uuid": r.user_uuid }),
            )
            .tenant(r.tenant_uuid)
            .users(vec![r.user_uuid]),
        );
    }
}
