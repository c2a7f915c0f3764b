//! The one warp filter every protected route of every service uses: it finds
//! the token (`X-Auth-Token` header, or `?token=`), checks it is live, and
//! resolves the tenant the request acts in (`Accent-Tenant` / `Wazo-Tenant`).
//! The ACL check itself is [`Caller::require`], which handlers call with the
//! route's required access; service functions take the resulting [`Scope`],
//! so a handler cannot reach data without having passed an ACL check.

use std::sync::Arc;

use uuid::Uuid;
use warp::{Filter, Rejection};

use super::token::TokenData;
use super::AuthService;
use crate::api::error::ApiError;

/// An authenticated request: a live token and the tenant it acts in.
#[derive(Clone)]
pub struct Caller {
    pub token: Arc<TokenData>,
    /// The tenant selected by the tenant header, else the token's tenant.
    pub tenant_uuid: Uuid,
    /// Whether the tenant came from a header (some endpoints behave
    /// differently when the caller explicitly chose a tenant).
    pub tenant_from_header: bool,
    secret: Arc<str>,
    auth: Arc<AuthService>,
}

/// Proof that an ACL check passed, plus what the request may see.
#[derive(Clone)]
pub struct Scope {
    pub caller: Caller,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token itself.
        f.debug_struct("Caller")
            .field("auth_id", &self.token.auth_id)
            .field("tenant_uuid", &self.tenant_uuid)
            .finish()
    }
}

impl Caller {
    /// Checks that the token grants `access`; 401 with upstream's body if not.
    pub fn require(&self, access: &str) -> Result<Scope, ApiError> {
        if self.token.check.matches_required_access(access) {
            Ok(Scope { caller: self.clone() })
        } else {
            Err(ApiError::Unauthorized {
                invalid_token: Some(self.secret.to_string()),
                required_access: Some(access.to_string()),
                reason: None,
            })
        }
    }

    /// The token's user uuid, for `/users/me/...` routes.
    pub fn user_uuid(&self) -> Uuid {
        self.token.user_uuid
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn auth(&self) -> &Arc<AuthService> {
        &self.auth
    }
}

impl Scope {
    /// The tenant the request acts in.
    pub fn tenant(&self) -> Uuid {
        self.caller.tenant_uuid
    }

    /// Tenants a list covers: the selected one, or its whole sub-tree with
    /// `recurse`.
    pub fn tenants(&self, recurse: bool) -> Vec<Uuid> {
        if recurse {
            self.caller.auth.tree.subtree(self.caller.tenant_uuid)
        } else {
            vec![self.caller.tenant_uuid]
        }
    }

    /// Whether a resource of `tenant` is visible to this request: it must be
    /// the selected tenant or below it. Anything else answers 404, so other
    /// tenants' resources are indistinguishable from missing ones.
    pub fn can_see(&self, tenant: Uuid) -> bool {
        self.caller.auth.tree.is_within(self.caller.tenant_uuid, tenant)
    }

    /// Strict ancestors of the selected tenant (for `shared` policies).
    pub fn ancestors(&self) -> Vec<Uuid> {
        self.caller.auth.tree.ancestors(self.caller.tenant_uuid)
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// `me` in a path means the token's own user.
    pub fn resolve_me(&self, id: &str) -> String {
        if id == "me" {
            self.caller.user_uuid().to_string()
        } else {
            id.to_string()
        }
    }
}

/// Reads `?token=` out of a raw query string (websocket and download links).
fn token_from_query(query: &str) -> Option<String> {
    query_param(query, "token")
}

/// One parameter of a raw query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The filter: extracts a [`Caller`] or rejects with 401.
pub fn authenticated(auth: Arc<AuthService>) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::header::optional::<String>("x-auth-token")
        .and(crate::api::body::raw_query())
        .and(warp::header::optional::<String>("accent-tenant"))
        .and(warp::header::optional::<String>("wazo-tenant"))
        .and_then(
            move |header: Option<String>, query: String, accent: Option<String>, wazo: Option<String>| {
                let auth = auth.clone();
                async move {
                    let secret = header
                        .filter(|t| !t.is_empty())
                        .or_else(|| token_from_query(&query))
                        .ok_or(ApiError::Unauthorized {
                            invalid_token: None,
                            required_access: None,
                            reason: None,
                        })
                        .map_err(warp::reject::custom)?;
                    // Download links cannot set headers: `?tenant=` stands in for them.
                    let tenant = accent.or(wazo).or_else(|| query_param(&query, "tenant"));
                    resolve(auth, secret, tenant).map_err(warp::reject::custom)
                }
            },
        )
}

fn resolve(auth: Arc<AuthService>, secret: String, tenant_header: Option<String>) -> Result<Caller, ApiError> {
    let token = auth
        .tokens
        .get(&secret, crate::time::now_epoch())
        .ok_or_else(|| ApiError::Unauthorized {
            invalid_token: Some(secret.clone()),
            required_access: None,
            reason: Some("not_found_or_expired"),
        })?;
    let (tenant_uuid, from_header) = match tenant_header.filter(|t| !t.is_empty()) {
        None => (token.tenant_uuid, false),
        Some(raw) => {
            let tenant = Uuid::parse_str(raw.trim()).map_err(|_| ApiError::UnauthorizedTenant {
                tenant_uuid: raw.clone(),
            })?;
            if !auth.tree.is_within(token.tenant_uuid, tenant) {
                return Err(ApiError::UnauthorizedTenant { tenant_uuid: raw });
            }
            (tenant, true)
        }
    };
    Ok(Caller {
        token,
        tenant_uuid,
        tenant_from_header: from_header,
        secret: secret.into(),
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_in_query() {
        assert_eq!(token_from_query("a=1&token=abc").as_deref(), Some("abc"));
        assert_eq!(token_from_query("a=1"), None);
        assert_eq!(token_from_query("%%%"), None);
    }
}
