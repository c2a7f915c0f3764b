//! Tenant logic: visibility, defaults for new tenants, events.

use std::sync::Arc;

use serde_json::{json, Value};
use uuid::Uuid;

use super::model::{Tenant, TenantBody};
use super::store;
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::caller::Scope;
use crate::auth::AuthService;
use crate::bus::EventSpec;

impl Tenant {
    pub fn to_json(&self) -> Value {
        json!({
            "uuid": self.uuid,
            "name": self.name,
            "slug": self.slug,
            "phone": self.phone,
            "contact": self.contact,
            "address": self.address,
            "parent_uuid": self.parent_uuid,
            "domain_names": self.domain_names,
            "default_authentication_method": self.default_authentication_method,
        })
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("tenants", id))
}

impl AuthService {
    pub async fn list_tenants(&self, scope: &Scope, params: ListParams) -> Result<Value, ApiError> {
        // Listing tenants always covers the scoping tenant's sub-tree.
        let tenants = scope.tenants(true);
        let (total, filtered, items) = self.store.read(move |c| store::list(c, &tenants, &params)).await?;
        let items: Vec<Value> = items.iter().map(Tenant::to_json).collect();
        Ok(json!({ "items": items, "total": total, "filtered": filtered }))
    }

    pub async fn get_tenant(&self, scope: &Scope, id: &str) -> Result<Tenant, ApiError> {
        let uuid = parse_id(id)?;
        if !scope.can_see(uuid) {
            return Err(ApiError::not_found("tenants", id));
        }
        self.store
            .read(move |c| store::get(c, uuid))
            .await?
            .ok_or_else(|| ApiError::not_found("tenants", id))
    }

    pub async fn create_tenant(self: &Arc<Self>, scope: &Scope, body: TenantBody) -> Result<Tenant, ApiError> {
        let tenant = body.into_new(scope.tenant())?;
        if !scope.can_see(tenant.parent_uuid) {
            return Err(ApiError::invalid_field("parent_uuid", "Unknown tenant"));
        }
        if let Some(contact) = tenant.contact {
            let visible = scope.tenants(true);
            let ok = self
                .store
                .read(move |c| store::user_exists_in(c, contact, &visible))
                .await?;
            if !ok {
                return Err(ApiError::invalid_field("contact", "Unknown user"));
            }
        }
        let t = tenant.clone();
        self.store
            .write(move |tx| {
                store::insert(tx, &t)?;
                crate::auth::bootstrap::ensure_tenant_defaults(tx, t.uuid)
            })
            .await?;
        self.reload_tree().await?;
        tracing::info!(tenant = %tenant.uuid, "tenant created");
        self.bus.publish(
            EventSpec::new(
                "auth_tenant_added",
                format!("auth.tenants.{}.created", tenant.uuid),
                tenant.to_json(),
            )
            .tenant(tenant.uuid),
        );
        Ok(tenant)
    }

    pub async fn update_tenant(&self, scope: &Scope, id: &str, body: TenantBody) -> Result<Tenant, ApiError> {
        let current = self.get_tenant(scope, id).await?;
        let updated = body.apply_to(current)?;
        let t = updated.clone();
        self.store.write(move |tx| store::update(tx, &t)).await?;
        self.bus.publish(
            EventSpec::new(
                "auth_tenant_updated",
                format!("auth.tenants.{}.updated", updated.uuid),
                json!({ "uuid": updated.uuid, "name": updated.name }),
            )
            .tenant(updated.uuid),
        );
        Ok(updated)
    }

    pub async fn delete_tenant(&self, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let tenant = self.get_tenant(scope, id).await?;
        if tenant.uuid == tenant.parent_uuid {
            return Err(ApiError::Forbidden {
                error_id: "forbidden",
                message: "The top tenant cannot be deleted".into(),
            });
        }
        if tenant.uuid == scope.caller().token.tenant_uuid {
            return Err(ApiError::Forbidden {
                error_id: "forbidden",
                message: "A token cannot delete its own tenant".into(),
            });
        }
        let uuid = tenant.uuid;
        self.store
            .write(move |tx| {
                if store::has_children(tx, uuid)? {
                    return Err(ApiError::conflict(
                        "tenants",
                        "uuid",
                        "The tenant has sub-tenants; delete them first",
                    ));
                }
                store::delete(tx, uuid)
            })
            .await?;
        self.tokens.remove_tenant(uuid);
        self.reload_tree().await?;
        tracing::info!(tenant = %uuid, "tenant deleted");
        self.bus.publish(
            EventSpec::new(
                "auth_tenant_deleted",
                format!("auth.tenants.{uuid}.deleted"),
                json!({ "uuid": uuid }),
            )
            .tenant(uuid),
        );
        Ok(())
    }
}
