//! Group logic: visibility, the read-only admin group, membership and policy
//! links. Upstream auth publishes no group events, so none are sent here.

use serde_json::{json, Value};
use uuid::Uuid;

use super::model::{derived_slug, random_slug, Group, GroupPutBody, NewGroup};
use super::store;
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::caller::Scope;
use crate::auth::policies::store::find_visible;
use crate::auth::tokens::store::find_user;
use crate::auth::AuthService;

/// How a policy is named in a `/groups/{uuid}/policies/...` path.
#[derive(Debug, Clone, Copy)]
pub enum PolicyId<'a> {
    /// `/policies/{policy_uuid}`: a uuid, or a slug as upstream also accepts.
    UuidOrSlug(&'a str),
    /// `/policies/slug/{policy_slug}`.
    Slug(&'a str),
}

impl PolicyId<'_> {
    fn raw(&self) -> &str {
        match self {
            PolicyId::UuidOrSlug(s) | PolicyId::Slug(s) => s,
        }
    }

    /// Tenants whose policies the lookup covers. A uuid names one policy, so
    /// the scope's whole sub-tree is searched; a slug is only unique within
    /// a tenant, so it is resolved in the scope's own tenant (plus shared
    /// policies of its ancestors), as upstream does.
    fn tenants(&self, scope: &Scope) -> Vec<Uuid> {
        let by_uuid = matches!(self, PolicyId::UuidOrSlug(s) if Uuid::parse_str(s).is_ok());
        scope.tenants(by_uuid)
    }
}

fn envelope(total: u64, filtered: u64, items: Vec<Value>) -> Value {
    json!({ "items": items, "total": total, "filtered": filtered })
}

/// Upstream's 403 for changing a system-managed group.
fn forbidden_group(uuid: Uuid) -> ApiError {
    ApiError::Forbidden {
        error_id: "forbidden-group",
        message: format!(
            "Forbidden group modification: \"{uuid}\" is managed by the system and cannot be renamed or deleted"
        ),
    }
}

fn unknown_policy(id: &str) -> ApiError {
    ApiError::not_found("policies", id)
}

impl AuthService {
    pub async fn list_groups(&self, scope: &Scope, params: ListParams) -> Result<Value, ApiError> {
        let tenants = scope.tenants(params.recurse);
        let (total, filtered, items) = self.store.read(move |c| store::list(c, &tenants, &params)).await?;
        Ok(envelope(total, filtered, items.iter().map(Group::to_json).collect()))
    }

    /// The group named in a path, if the scope can see it; 404 otherwise,
    /// including for groups of tenants outside the scope.
    pub async fn get_group(&self, scope: &Scope, id: &str) -> Result<Group, ApiError> {
        let uuid = Uuid::parse_str(id).map_err(|_| ApiError::not_found("groups", id))?;
        match self.store.read(move |c| store::get(c, uuid)).await? {
            Some(g) if scope.can_see(g.tenant_uuid) => Ok(g),
            _ => Err(ApiError::not_found("groups", id)),
        }
    }

    /// Creates a group in the scope's tenant. Without a slug, one is derived
    /// from the name, or made up when that one is taken (upstream does the
    /// same); an explicit slug that is taken is a conflict.
    pub async fn create_group(&self, scope: &Scope, new: NewGroup) -> Result<Group, ApiError> {
        let tenant = scope.tenant();
        let group = self
            .store
            .write(move |tx| {
                let slug = match new.slug {
                    Some(s) => s,
                    None => {
                        let mut slug = derived_slug(&new.name);
                        while store::slug_taken(tx, tenant, &slug)? {
                            slug = random_slug(3);
                        }
                        slug
                    }
                };
                let group = Group {
                    uuid: new.uuid,
                    tenant_uuid: tenant,
                    name: new.name,
                    slug,
                    system_managed: false,
                };
                store::insert(tx, &group)?;
                Ok::<_, ApiError>(group)
            })
            .await?;
        tracing::info!(group = %group.uuid, tenant = %tenant, "group created");
        Ok(group)
    }

    /// Renames a visible group (`group` comes from [`Self::get_group`]).
    pub async fn update_group(&self, group: Group, body: GroupPutBody) -> Result<Group, ApiError> {
        let name = body.validate()?;
        if group.system_managed {
            return Err(forbidden_group(group.uuid));
        }
        let updated = Group { name, ..group };
        let g = updated.clone();
        self.store.write(move |tx| store::rename(tx, &g)).await?;
        Ok(updated)
    }

    pub async fn delete_group(&self, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let group = self.get_group(scope, id).await?;
        if group.system_managed {
            return Err(forbidden_group(group.uuid));
        }
        let uuid = group.uuid;
        self.store.write(move |tx| store::delete(tx, uuid)).await?;
        tracing::info!(group = %uuid, "group deleted");
        Ok(())
    }

    // ------------------------------------------------------------ members

    /// Members of a visible group (`group` comes from [`Self::get_group`]).
    pub async fn list_group_users(&self, group: &Group, params: ListParams) -> Result<Value, ApiError> {
        let group = group.uuid;
        let (total, filtered, items) = self.store.read(move |c| store::list_users(c, group, &params)).await?;
        Ok(envelope(total, filtered, items))
    }

    /// Adds a member. The user must be visible and belong to the group's own
    /// tenant (upstream answers 400 for a tenant mismatch). Membership of a
    /// system-managed group is allowed: joining the tenant's admin group is
    /// how a user becomes a tenant administrator.
    pub async fn add_group_user(&self, scope: &Scope, group_id: &str, user_id: &str) -> Result<(), ApiError> {
        let user = self.visible_user(scope, user_id).await?;
        let group = self.get_group(scope, group_id).await?;
        if user.tenant_uuid != group.tenant_uuid {
            return Err(ApiError::BadRequest {
                error_id: "invalid-data",
                message: "The user and the group must belong to the same tenant".into(),
                details: json!({ "user_uuid": user.uuid, "group_uuid": group.uuid }),
            });
        }
        let (g, u) = (group.uuid, user.uuid);
        let group_id = group_id.to_string();
        self.store
            .write(move |tx| {
                // Either may have been deleted since it was looked up.
                if store::get(tx, g)?.is_none() {
                    return Err(ApiError::not_found("groups", group_id));
                }
                if find_user(tx, u)?.is_none() {
                    return Err(ApiError::not_found("users", u.to_string()));
                }
                store::add_user(tx, g, u)
            })
            .await
    }

    /// Removes a member; removing a non-member visible user is a no-op (204)
    /// as upstream, an unknown or invisible user is 404.
    pub async fn remove_group_user(&self, scope: &Scope, group_id: &str, user_id: &str) -> Result<(), ApiError> {
        let group = self.get_group(scope, group_id).await?.uuid;
        let user_id = scope.resolve_me(user_id);
        let user = Uuid::parse_str(&user_id).map_err(|_| ApiError::not_found("users", user_id.clone()))?;
        let scope = scope.clone();
        self.store
            .write(move |tx| {
                if store::remove_user(tx, group, user)? {
                    return Ok(());
                }
                match find_user(tx, user)? {
                    Some(u) if scope.can_see(u.tenant_uuid) => Ok(()),
                    _ => Err(ApiError::not_found("users", user_id)),
                }
            })
            .await
    }

    /// Groups of a visible user (from [`Self::visible_user`], which resolves
    /// `me`).
    pub async fn list_user_groups(&self, user: Uuid, params: ListParams) -> Result<Value, ApiError> {
        let (total, filtered, items) = self.store.read(move |c| store::list_of_user(c, user, &params)).await?;
        Ok(envelope(total, filtered, items.iter().map(Group::to_json).collect()))
    }

    // ------------------------------------------------------------ policies

    /// Policies of a visible group (`group` comes from [`Self::get_group`]).
    pub async fn list_group_policies(&self, group: &Group, params: ListParams) -> Result<Value, ApiError> {
        let group = group.uuid;
        let (total, filtered, items) = self
            .store
            .read(move |c| store::list_policies(c, group, &params))
            .await?;
        Ok(envelope(total, filtered, items))
    }

    /// Attaches a visible policy. Members get the policy's ACL at their next
    /// login, so a caller may only attach a policy whose every entry it could
    /// add itself (`may_add_access`); otherwise 401 naming the entry, as
    /// upstream.
    pub async fn add_group_policy(&self, scope: &Scope, group_id: &str, policy: PolicyId<'_>) -> Result<(), ApiError> {
        let group = self.get_group(scope, group_id).await?.uuid;
        let tenants = policy.tenants(scope);
        let ancestors = scope.ancestors();
        let raw = policy.raw().to_string();
        let caller = scope.caller().clone();
        self.store
            .write(move |tx| {
                let found = find_visible(tx, &tenants, &ancestors, &raw)?.ok_or_else(|| unknown_policy(&raw))?;
                for access in store::policy_acl(tx, found.uuid)? {
                    if !caller.token.check.may_add_access(&access) {
                        return Err(ApiError::Unauthorized {
                            invalid_token: Some(caller.secret().to_string()),
                            required_access: Some(access),
                            reason: None,
                        });
                    }
                }
                if store::get(tx, group)?.is_none() {
                    return Err(ApiError::not_found("groups", group.to_string()));
                }
                store::add_policy(tx, group, found.uuid)
            })
            .await
    }

    /// Detaches a policy. Any policy linked to a visible group can be
    /// detached; detaching a visible policy that is not linked is a no-op
    /// (204), an unknown one is 404, as upstream.
    pub async fn remove_group_policy(
        &self,
        scope: &Scope,
        group_id: &str,
        policy: PolicyId<'_>,
    ) -> Result<(), ApiError> {
        let group = self.get_group(scope, group_id).await?.uuid;
        let tenants = policy.tenants(scope);
        let ancestors = scope.ancestors();
        let raw = policy.raw().to_string();
        self.store
            .write(move |tx| {
                if let Some(linked) = store::attached_policy(tx, group, &raw)? {
                    store::remove_policy(tx, group, linked)?;
                    return Ok(());
                }
                match find_visible(tx, &tenants, &ancestors, &raw)? {
                    Some(_) => Ok(()),
                    None => Err(unknown_policy(&raw)),
                }
            })
            .await
    }
}
