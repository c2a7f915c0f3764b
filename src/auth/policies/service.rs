//! Policy logic: visibility, who may modify what, and the rule that nobody
//! hands out an access they do not hold themselves.
//!
//! Deleting a policy or removing an access does not touch live tokens: a
//! token's ACL is computed at login and kept until it expires, as upstream.
//! No bus event is published: the event catalog lists none for policies.

use std::sync::Arc;

use serde_json::{json, Value};
use uuid::Uuid;

use super::model::{access_problem, acl_diff, Policy, PolicyBody};
use super::store::{self, Namespace};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::caller::Scope;
use crate::auth::token::TokenData;
use crate::auth::AuthService;

/// The tenants a lookup by path id covers. A uuid is looked up in the whole
/// sub-tree; a slug is only unique within one tenant, so it is looked up in
/// the selected tenant alone (as upstream does), plus inherited policies.
fn lookup_tenants(scope: &Scope, id: &str) -> Vec<Uuid> {
    if Uuid::parse_str(id).is_ok() {
        viewer_tenants(scope, true)
    } else {
        vec![scope.tenant()]
    }
}

/// `scope.tenants(recurse)` with the selected tenant first: the JSON view
/// shows inherited policies as belonging to the first one.
fn viewer_tenants(scope: &Scope, recurse: bool) -> Vec<Uuid> {
    let selected = scope.tenant();
    let mut tenants = scope.tenants(recurse);
    tenants.retain(|t| *t != selected);
    tenants.insert(0, selected);
    tenants
}

/// Config-managed policies belong to the configuration, and a shared policy
/// of an ancestor tenant belongs to that tenant: both are visible but
/// read-only from here.
fn ensure_modifiable(policy: &Policy, subtree: &[Uuid]) -> Result<(), ApiError> {
    if policy.config_managed {
        return Err(ApiError::Forbidden {
            error_id: "forbidden",
            message: format!("Policy \"{}\" is read-only (config managed)", policy.uuid),
        });
    }
    if !subtree.contains(&policy.tenant_uuid) {
        return Err(ApiError::Forbidden {
            error_id: "forbidden",
            message: format!(
                "Policy \"{}\" is shared by a parent tenant and can only be modified from that tenant",
                policy.uuid
            ),
        });
    }
    Ok(())
}

/// Who calls, for the "only hand out what you hold" rule.
#[derive(Clone)]
struct Grantor {
    token: Arc<TokenData>,
    secret: String,
}

impl Grantor {
    fn of(scope: &Scope) -> Grantor {
        Grantor {
            token: scope.caller().token.clone(),
            secret: scope.caller().secret().to_string(),
        }
    }

    /// Upstream answers 401 naming the access the caller lacks.
    fn denied(&self, access: &str) -> ApiError {
        ApiError::Unauthorized {
            invalid_token: Some(self.secret.clone()),
            required_access: Some(access.to_string()),
            reason: None,
        }
    }

    fn check_add(&self, access: &str) -> Result<(), ApiError> {
        if self.token.check.may_add_access(access) {
            Ok(())
        } else {
            Err(self.denied(access))
        }
    }

    fn check_remove(&self, access: &str) -> Result<(), ApiError> {
        if self.token.check.may_remove_access(access) {
            Ok(())
        } else {
            Err(self.denied(access.strip_prefix('!').unwrap_or(access)))
        }
    }
}

fn parse_read_only(params: &ListParams) -> Result<Option<bool>, ApiError> {
    match params.filter("read_only").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(None),
        Some("true" | "1" | "yes") => Ok(Some(true)),
        Some("false" | "0" | "no") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid_field("read_only", "Not a valid boolean.")),
    }
}

impl AuthService {
    pub async fn list_policies(&self, scope: &Scope, params: ListParams) -> Result<Value, ApiError> {
        let read_only = parse_read_only(&params)?;
        let tenants = viewer_tenants(scope, params.recurse);
        let ancestors = scope.ancestors();
        let t = tenants.clone();
        let (total, filtered, items) = self
            .store
            .read(move |c| store::list(c, &t, &ancestors, read_only, &params))
            .await?;
        let items: Vec<Value> = items.iter().map(|p| p.to_json(&tenants)).collect();
        Ok(json!({ "items": items, "total": total, "filtered": filtered }))
    }

    pub async fn get_policy(&self, scope: &Scope, id: &str) -> Result<Value, ApiError> {
        let tenants = lookup_tenants(scope, id);
        let ancestors = scope.ancestors();
        let key = id.to_string();
        let policy = self
            .store
            .read(move |c| store::find_full(c, &tenants, &ancestors, &key))
            .await?
            .ok_or_else(|| ApiError::not_found("policies", id))?;
        Ok(policy.to_json(&viewer_tenants(scope, true)))
    }

    pub async fn create_policy(&self, scope: &Scope, body: PolicyBody) -> Result<Value, ApiError> {
        let slug_given = body.slug.is_some();
        let mut policy = body.into_new(scope.tenant())?;
        let grantor = Grantor::of(scope);
        for access in &policy.acl {
            grantor.check_add(access)?;
        }
        let ancestors = scope.ancestors();
        let subtree = scope.tenants(true);
        let policy = self
            .store
            .write(move |tx| {
                let ns = Namespace {
                    tenant: policy.tenant_uuid,
                    ancestors: &ancestors,
                    subtree: policy.shared.then_some(subtree.as_slice()),
                };
                store::insert(tx, &mut policy, &ns, slug_given)?;
                Ok::<_, ApiError>(policy)
            })
            .await?;
        tracing::info!(policy = %policy.uuid, tenant = %policy.tenant_uuid, "policy created");
        Ok(policy.to_json(&[policy.tenant_uuid]))
    }

    /// Runs `change` on the visible, modifiable policy `id` inside one write
    /// transaction, so the checks and the write see the same row.
    async fn modify_policy<T, F>(&self, scope: &Scope, id: &str, change: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, Policy, &Namespace<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        let tenants = lookup_tenants(scope, id);
        let ancestors = scope.ancestors();
        let subtree = scope.tenants(true);
        let key = id.to_string();
        // The policy's own tenant may be below the selected one: its place
        // in the (in-memory) tree decides name clashes.
        let auth = scope.caller().auth().clone();
        self.store
            .write(move |tx| {
                let policy = store::find_full(tx, &tenants, &ancestors, &key)?
                    .ok_or_else(|| ApiError::not_found("policies", key.clone()))?;
                ensure_modifiable(&policy, &subtree)?;
                let own_ancestors = auth.tree.ancestors(policy.tenant_uuid);
                let own_subtree = auth.tree.subtree(policy.tenant_uuid);
                let ns = Namespace {
                    tenant: policy.tenant_uuid,
                    ancestors: &own_ancestors,
                    subtree: policy.shared.then_some(own_subtree.as_slice()),
                };
                change(tx, policy, &ns)
            })
            .await
    }

    pub async fn update_policy(&self, scope: &Scope, id: &str, body: PolicyBody) -> Result<Value, ApiError> {
        let grantor = Grantor::of(scope);
        let policy = self
            .modify_policy(scope, id, move |tx, mut policy, ns| {
                let update = body.into_update()?;
                let (added, removed) = acl_diff(&policy.acl, &update.acl);
                for access in added {
                    grantor.check_add(access)?;
                }
                for access in removed {
                    grantor.check_remove(access)?;
                }
                policy.name = update.name;
                policy.description = update.description;
                policy.acl = update.acl;
                store::update(tx, &policy, ns)?;
                Ok(policy)
            })
            .await?;
        Ok(policy.to_json(&viewer_tenants(scope, true)))
    }

    pub async fn delete_policy(&self, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let uuid = self
            .modify_policy(scope, id, |tx, policy, _| {
                store::delete(tx, policy.uuid)?;
                Ok(policy.uuid)
            })
            .await?;
        tracing::info!(policy = %uuid, "policy deleted");
        Ok(())
    }

    pub async fn add_policy_access(&self, scope: &Scope, id: &str, access: String) -> Result<(), ApiError> {
        let grantor = Grantor::of(scope);
        self.modify_policy(scope, id, move |tx, policy, _| {
            if let Some(problem) = access_problem(&access) {
                return Err(ApiError::invalid_field("access", problem));
            }
            if policy.acl.contains(&access) {
                return Ok(());
            }
            grantor.check_add(&access)?;
            store::add_access(tx, policy.uuid, &access)
        })
        .await
    }

    pub async fn remove_policy_access(&self, scope: &Scope, id: &str, access: String) -> Result<(), ApiError> {
        let grantor = Grantor::of(scope);
        self.modify_policy(scope, id, move |tx, policy, _| {
            if !policy.acl.contains(&access) {
                return Ok(());
            }
            grantor.check_remove(&access)?;
            store::remove_access(tx, policy.uuid, &access)
        })
        .await
    }
}
