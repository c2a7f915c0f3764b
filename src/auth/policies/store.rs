//! SQL for policies.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::model::{Policy, SLUG_MAX};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
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

const COLUMNS: &str = "uuid, tenant_uuid, name, slug, description, config_managed, shared";

fn row_to_policy(r: &Row<'_>) -> rusqlite::Result<Policy> {
    Ok(Policy {
        uuid: parse_uuid(&r.get::<_, String>(0)?)?,
        tenant_uuid: parse_uuid(&r.get::<_, String>(1)?)?,
        name: r.get(2)?,
        slug: r.get(3)?,
        description: r.get(4)?,
        acl: Vec::new(),
        config_managed: r.get::<_, i64>(5)? != 0,
        shared: r.get::<_, i64>(6)? != 0,
    })
}

fn load_acl(conn: &Connection, p: &mut Policy) -> Result<(), ApiError> {
    let mut stmt =
        conn.prepare_cached("SELECT access FROM auth_policy_access WHERE policy_uuid = ?1 ORDER BY position, access")?;
    p.acl = stmt
        .query_map([p.uuid.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// A policy with its ACL, whatever its tenant (callers check visibility).
pub fn get(conn: &Connection, uuid: Uuid) -> Result<Option<Policy>, ApiError> {
    let found = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM auth_policy WHERE uuid = ?1"),
            [uuid.to_string()],
            row_to_policy,
        )
        .optional()?;
    match found {
        Some(mut p) => {
            load_acl(conn, &mut p)?;
            Ok(Some(p))
        }
        None => Ok(None),
    }
}

/// [`find_visible`], then the whole policy.
pub fn find_full(
    conn: &Connection,
    tenants: &[Uuid],
    ancestors: &[Uuid],
    id_or_slug: &str,
) -> Result<Option<Policy>, ApiError> {
    match find_visible(conn, tenants, ancestors, id_or_slug)? {
        Some(r) => get(conn, r.uuid),
        None => Ok(None),
    }
}

/// `read_only` list filter: `Some(true)` keeps the policies the scope cannot
/// modify (config-managed or inherited), `Some(false)` the others.
pub fn list(
    conn: &Connection,
    tenants: &[Uuid],
    ancestors: &[Uuid],
    read_only: Option<bool>,
    params: &ListParams,
) -> Result<(u64, u64, Vec<Policy>), ApiError> {
    let base = format!("FROM auth_policy WHERE {}", visible_condition(tenants, ancestors));
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) {base}"), [], |r| r.get(0))?;
    let mut filtered = base.clone();
    let mut args: Vec<String> = Vec::new();
    if let Some(p) = params.search_pattern() {
        args.push(p);
        filtered
            .push_str(" AND (name LIKE ?1 ESCAPE '\\' OR slug LIKE ?1 ESCAPE '\\' OR description LIKE ?1 ESCAPE '\\')");
    }
    for key in ["uuid", "name", "slug"] {
        if let Some(v) = params.filter(key) {
            args.push(v.to_string());
            filtered.push_str(&format!(" AND {key} = ?{}", args.len()));
        }
    }
    let own = uuid_list(tenants);
    match read_only {
        Some(true) => filtered.push_str(&format!(" AND (config_managed = 1 OR tenant_uuid NOT IN ({own}))")),
        Some(false) => filtered.push_str(&format!(" AND config_managed = 0 AND tenant_uuid IN ({own})")),
        None => {}
    }
    let count: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {filtered}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    // `order` was checked against the allow-list by ListParams::parse.
    let order = params.order.as_deref().unwrap_or("name");
    let sql = format!(
        "SELECT {COLUMNS} {filtered} ORDER BY {order} {dir}, uuid {dir}{limit}",
        dir = params.direction.sql(),
        limit = params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut items: Vec<Policy> = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), row_to_policy)?
        .collect::<Result<_, _>>()?;
    for p in &mut items {
        load_acl(conn, p)?;
    }
    Ok((total as u64, count as u64, items))
}

/// Where a policy of `tenant` must not share its name or slug with another:
/// its own tenant, the shared policies of the tenant's ancestors (they show
/// up in the tenant as if they were its own), and, for a shared policy, the
/// whole sub-tree it will show up in (`subtree`).
pub struct Namespace<'a> {
    pub tenant: Uuid,
    pub ancestors: &'a [Uuid],
    pub subtree: Option<&'a [Uuid]>,
}

impl Namespace<'_> {
    fn condition(&self) -> String {
        let mut cond = format!("tenant_uuid = '{}'", self.tenant);
        if !self.ancestors.is_empty() {
            cond.push_str(&format!(
                " OR (shared = 1 AND tenant_uuid IN ({}))",
                uuid_list(self.ancestors)
            ));
        }
        if let Some(subtree) = self.subtree.filter(|s| !s.is_empty()) {
            cond.push_str(&format!(" OR tenant_uuid IN ({})", uuid_list(subtree)));
        }
        cond
    }

    /// Whether another policy (not `except`) of the namespace uses `value`
    /// as its name (`slug == false`, exact) or slug (case-insensitive).
    pub fn taken(&self, conn: &Connection, except: Uuid, slug: bool, value: &str) -> Result<bool, ApiError> {
        let column = if slug { "slug = ?2 COLLATE NOCASE" } else { "name = ?2" };
        Ok(conn.query_row(
            &format!(
                "SELECT EXISTS(SELECT 1 FROM auth_policy WHERE uuid != ?1 AND {column} AND ({}))",
                self.condition()
            ),
            params![except.to_string(), value],
            |r| r.get(0),
        )?)
    }
}

fn name_conflict(name: &str) -> ApiError {
    ApiError::conflict("policies", "name", format!("Policy \"{name}\" already exists"))
}

/// Upstream's fallback when a derived slug is taken: a short random suffix.
fn suffixed_slug(base: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..3)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let keep: String = base.chars().take(SLUG_MAX - 4).collect();
    format!("{keep}_{suffix}")
}

/// Inserts a new policy. `slug_given` says whether the client chose the slug
/// (a clash is then a 409) or it was derived from the name (made unique).
pub fn insert(conn: &Connection, p: &mut Policy, ns: &Namespace<'_>, slug_given: bool) -> Result<(), ApiError> {
    let uuid_taken: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_policy WHERE uuid = ?1)",
        [p.uuid.to_string()],
        |r| r.get(0),
    )?;
    if uuid_taken {
        return Err(ApiError::conflict(
            "policies",
            "uuid",
            format!("Policy {} already exists", p.uuid),
        ));
    }
    if ns.taken(conn, p.uuid, false, &p.name)? {
        return Err(name_conflict(&p.name));
    }
    if ns.taken(conn, p.uuid, true, &p.slug)? {
        if slug_given {
            return Err(ApiError::conflict(
                "policies",
                "slug",
                format!("The slug \"{}\" is already used", p.slug),
            ));
        }
        let base = p.slug.clone();
        let mut tries = 0;
        while ns.taken(conn, p.uuid, true, &p.slug)? {
            tries += 1;
            if tries > 20 {
                return Err(ApiError::conflict("policies", "slug", "Could not derive a free slug"));
            }
            p.slug = suffixed_slug(&base);
        }
    }
    conn.execute(
        "INSERT INTO auth_policy (uuid, tenant_uuid, name, slug, description, config_managed, shared)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        params![
            p.uuid.to_string(),
            p.tenant_uuid.to_string(),
            p.name,
            p.slug,
            p.description,
            p.shared
        ],
    )?;
    write_acl(conn, p.uuid, &p.acl)
}

/// Replaces name, description and ACL of an existing policy.
pub fn update(conn: &Connection, p: &Policy, ns: &Namespace<'_>) -> Result<(), ApiError> {
    if ns.taken(conn, p.uuid, false, &p.name)? {
        return Err(name_conflict(&p.name));
    }
    conn.execute(
        "UPDATE auth_policy SET name = ?2, description = ?3 WHERE uuid = ?1",
        params![p.uuid.to_string(), p.name, p.description],
    )?;
    write_acl(conn, p.uuid, &p.acl)
}

fn write_acl(conn: &Connection, policy: Uuid, acl: &[String]) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM auth_policy_access WHERE policy_uuid = ?1",
        [policy.to_string()],
    )?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO auth_policy_access (policy_uuid, access, position) VALUES (?1, ?2, ?3)")?;
    for (i, access) in acl.iter().enumerate() {
        stmt.execute(params![policy.to_string(), access, i as i64])?;
    }
    Ok(())
}

/// Appends `access` to the ACL; already present is a no-op (idempotent PUT).
pub fn add_access(conn: &Connection, policy: Uuid, access: &str) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR IGNORE INTO auth_policy_access (policy_uuid, access, position)
         SELECT ?1, ?2, COALESCE(MAX(position) + 1, 0) FROM auth_policy_access WHERE policy_uuid = ?1",
        params![policy.to_string(), access],
    )?;
    Ok(())
}

/// Removes `access` from the ACL; absent is a no-op, as upstream.
pub fn remove_access(conn: &Connection, policy: Uuid, access: &str) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM auth_policy_access WHERE policy_uuid = ?1 AND access = ?2",
        params![policy.to_string(), access],
    )?;
    Ok(())
}

/// Deletes a policy; the foreign keys detach it from users and groups.
pub fn delete(conn: &Connection, policy: Uuid) -> Result<(), ApiError> {
    conn.execute("DELETE FROM auth_policy WHERE uuid = ?1", [policy.to_string()])?;
    Ok(())
}
