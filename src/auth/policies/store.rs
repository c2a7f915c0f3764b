//! SQL for policies.

use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::auth::tokens::store::{parse_uuid, uuid_list};

/// Enough of a policy to attach it to a user or group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub name: String,
    pub slug: String,
}

/// SQL condition selecting the policies visible from `tenants` (the request's
/// scope): policies of those tenants, plus `shared` policies of any of their
/// ancestors (`ancestors`), which is how the default policies of the master
/// tenant reach every sub-tenant.
pub fn visible_condition(tenants: &[Uuid], ancestors: &[Uuid]) -> String {
    let own = uuid_list(tenants);
    if ancestors.is_empty() {
        format!("tenant_uuid IN ({own})")
    } else {
        format!(
            "(tenant_uuid IN ({own}) OR (shared = 1 AND tenant_uuid IN ({})))",
            uuid_list(ancestors)
        )
    }
}

/// Finds a visible policy by uuid or, failing that, by slug (a slug is only
/// unique within one tenant: the scope's own tenants win over shared ones).
pub fn find_visible(
    conn: &Connection,
    tenants: &[Uuid],
    ancestors: &[Uuid],
    id_or_slug: &str,
) -> Result<Option<PolicyRef>, ApiError> {
    let cond = visible_condition(tenants, ancestors);
    let row = |r: &rusqlite::Row<'_>| {
        Ok(PolicyRef {
            uuid: parse_uuid(&r.get::<_, String>(0)?)?,
            tenant_uuid: parse_uuid(&r.get::<_, String>(1)?)?,
            name: r.get(2)?,
            slug: r.get(3)?,
        })
    };
    if let Ok(uuid) = Uuid::parse_str(id_or_slug) {
        let found = conn
            .query_row(
                &format!("SELECT uuid, tenant_uuid, name, slug FROM auth_policy WHERE uuid = ?1 AND {cond}"),
                [uuid.to_string()],
                row,
            )
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(conn
        .query_row(
            &format!(
                "SELECT uuid, tenant_uuid, name, slug FROM auth_policy WHERE slug = ?1 AND {cond}
                 ORDER BY tenant_uuid IN ({}) DESC LIMIT 1",
                uuid_list(tenants)
            ),
            [id_or_slug],
            row,
        )
        .optional()?)
}
