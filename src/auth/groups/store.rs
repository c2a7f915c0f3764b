//! SQL for groups, their members and their policies.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde_json::{json, Value};
use uuid::Uuid;

use super::model::{parse_bool_filter, Group};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::tokens::store::{parse_uuid, uuid_list};

/// A WHERE clause being built, with its positional arguments (`?1`, `?2`…).
struct Where {
    sql: String,
    args: Vec<String>,
}

impl Where {
    fn new(base: String) -> Self {
        Where {
            sql: base,
            args: Vec::new(),
        }
    }

    /// Appends `AND template` with one new argument; every `?` of the
    /// template stands for that same argument.
    fn and(&mut self, template: &str, arg: String) {
        self.args.push(arg);
        let n = self.args.len();
        self.sql.push_str(" AND ");
        self.sql.push_str(&template.replace('?', &format!("?{n}")));
    }

    fn count(&self, conn: &Connection, from: &str) -> Result<u64, ApiError> {
        let n: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM {from} WHERE {}", self.sql),
            params_from_iter(self.args.iter()),
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

/// UUID filters compare with the stored lowercase form; a value that is not
/// a UUID simply matches nothing.
fn normalize_uuid(value: &str) -> String {
    Uuid::parse_str(value)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| value.to_string())
}

// ---------------------------------------------------------------- groups

const GROUP_COLUMNS: &str = "g.uuid, g.tenant_uuid, g.name, g.slug, g.system_managed";

fn row_to_group(r: &Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        uuid: parse_uuid(&r.get::<_, String>(0)?)?,
        tenant_uuid: parse_uuid(&r.get::<_, String>(1)?)?,
        name: r.get(2)?,
        slug: r.get(3)?,
        system_managed: r.get::<_, i64>(4)? != 0,
    })
}

pub fn get(conn: &Connection, uuid: Uuid) -> Result<Option<Group>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {GROUP_COLUMNS} FROM auth_group g WHERE g.uuid = ?1"),
            [uuid.to_string()],
            row_to_group,
        )
        .optional()?)
}

/// Applies the search and exact filters of GET /groups (and of a user's
/// groups) to `w`.
fn group_filters(w: &mut Where, params: &ListParams) -> Result<(), ApiError> {
    if let Some(p) = params.search_pattern() {
        w.and("g.name LIKE ? ESCAPE '\\'", p);
    }
    if let Some(v) = params.filter("uuid") {
        w.and("g.uuid = ?", normalize_uuid(v));
    }
    if let Some(v) = params.filter("name") {
        w.and("g.name = ?", v.to_string());
    }
    if let Some(v) = params.filter("slug") {
        w.and("g.slug = ?", v.to_string());
    }
    if let Some(v) = params.filter("user_uuid") {
        w.and(
            "g.uuid IN (SELECT group_uuid FROM auth_user_group WHERE user_uuid = ?)",
            normalize_uuid(v),
        );
    }
    if let Some(v) = params.filter("policy_uuid") {
        w.and(
            "g.uuid IN (SELECT group_uuid FROM auth_group_policy WHERE policy_uuid = ?)",
            normalize_uuid(v),
        );
    }
    if let Some(v) = params.filter("policy_slug") {
        w.and(
            "g.uuid IN (SELECT gp.group_uuid FROM auth_group_policy gp
                          JOIN auth_policy p ON p.uuid = gp.policy_uuid WHERE p.slug = ?)",
            v.to_string(),
        );
    }
    if let Some(v) = params.filter("read_only") {
        let flag = parse_bool_filter("read_only", v)?;
        w.and("g.system_managed = ?", i64::from(flag).to_string());
    }
    Ok(())
}

fn group_page(conn: &Connection, w: &Where, params: &ListParams) -> Result<Vec<Group>, ApiError> {
    let order = match params.order.as_deref() {
        Some("uuid") => "g.uuid",
        Some("slug") => "g.slug",
        _ => "g.name",
    };
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM auth_group g WHERE {} ORDER BY {order} {}, g.uuid{}",
        w.sql,
        params.direction.sql(),
        params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(w.args.iter()), row_to_group)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Groups of `tenants`: (total, filtered, page).
pub fn list(conn: &Connection, tenants: &[Uuid], params: &ListParams) -> Result<(u64, u64, Vec<Group>), ApiError> {
    let mut w = Where::new(format!("g.tenant_uuid IN ({})", uuid_list(tenants)));
    let total = w.count(conn, "auth_group g")?;
    group_filters(&mut w, params)?;
    let filtered = w.count(conn, "auth_group g")?;
    Ok((total, filtered, group_page(conn, &w, params)?))
}

/// Groups `user` is a member of: (total, filtered, page).
pub fn list_of_user(conn: &Connection, user: Uuid, params: &ListParams) -> Result<(u64, u64, Vec<Group>), ApiError> {
    let mut w = Where::new(String::from("1"));
    w.and(
        "g.uuid IN (SELECT group_uuid FROM auth_user_group WHERE user_uuid = ?)",
        user.to_string(),
    );
    let total = w.count(conn, "auth_group g")?;
    group_filters(&mut w, params)?;
    let filtered = w.count(conn, "auth_group g")?;
    Ok((total, filtered, group_page(conn, &w, params)?))
}

fn exists(conn: &Connection, sql: &str, args: &[&str]) -> Result<bool, ApiError> {
    Ok(
        conn.query_row(&format!("SELECT EXISTS({sql})"), params_from_iter(args.iter()), |r| {
            r.get(0)
        })?,
    )
}

pub fn slug_taken(conn: &Connection, tenant: Uuid, slug: &str) -> Result<bool, ApiError> {
    exists(
        conn,
        "SELECT 1 FROM auth_group WHERE tenant_uuid = ?1 AND slug = ?2",
        &[&tenant.to_string(), slug],
    )
}

/// A name is unique within a tenant; `except` is the group being renamed.
fn check_name_free(conn: &Connection, tenant: Uuid, name: &str, except: Option<Uuid>) -> Result<(), ApiError> {
    let except = except.map(|u| u.to_string()).unwrap_or_default();
    let taken = exists(
        conn,
        "SELECT 1 FROM auth_group WHERE tenant_uuid = ?1 AND name = ?2 AND uuid != ?3",
        &[&tenant.to_string(), name, &except],
    )?;
    if taken {
        return Err(ApiError::conflict(
            "groups",
            "name",
            format!("The name \"{name}\" is already used"),
        ));
    }
    Ok(())
}

/// Inserts a new group, answering 409 for a taken uuid, name or slug before
/// SQLite's constraints would fire.
pub fn insert(conn: &Connection, g: &Group) -> Result<(), ApiError> {
    if exists(conn, "SELECT 1 FROM auth_group WHERE uuid = ?1", &[&g.uuid.to_string()])? {
        return Err(ApiError::conflict(
            "groups",
            "uuid",
            format!("The uuid \"{}\" is already used", g.uuid),
        ));
    }
    check_name_free(conn, g.tenant_uuid, &g.name, None)?;
    if slug_taken(conn, g.tenant_uuid, &g.slug)? {
        return Err(ApiError::conflict(
            "groups",
            "slug",
            format!("The slug \"{}\" is already used", g.slug),
        ));
    }
    conn.execute(
        "INSERT INTO auth_group (uuid, tenant_uuid, name, slug, system_managed) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            g.uuid.to_string(),
            g.tenant_uuid.to_string(),
            g.name,
            g.slug,
            g.system_managed
        ],
    )?;
    Ok(())
}

pub fn rename(conn: &Connection, g: &Group) -> Result<(), ApiError> {
    check_name_free(conn, g.tenant_uuid, &g.name, Some(g.uuid))?;
    conn.execute(
        "UPDATE auth_group SET name = ?2 WHERE uuid = ?1",
        params![g.uuid.to_string(), g.name],
    )?;
    Ok(())
}

/// Deletes a group; memberships and policy links cascade.
pub fn delete(conn: &Connection, uuid: Uuid) -> Result<(), ApiError> {
    conn.execute("DELETE FROM auth_group WHERE uuid = ?1", [uuid.to_string()])?;
    Ok(())
}

// ---------------------------------------------------------------- members

/// Adding an existing member is a no-op, as upstream.
pub fn add_user(conn: &Connection, group: Uuid, user: Uuid) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR IGNORE INTO auth_user_group (user_uuid, group_uuid) VALUES (?1, ?2)",
        params![user.to_string(), group.to_string()],
    )?;
    Ok(())
}

/// Returns whether a membership was removed.
pub fn remove_user(conn: &Connection, group: Uuid, user: Uuid) -> Result<bool, ApiError> {
    let n = conn.execute(
        "DELETE FROM auth_user_group WHERE user_uuid = ?1 AND group_uuid = ?2",
        params![user.to_string(), group.to_string()],
    )?;
    Ok(n > 0)
}

const USER_COLUMNS: &str =
    "u.uuid, u.username, u.firstname, u.lastname, u.enabled, u.purpose, u.authentication_method, u.tenant_uuid";

fn row_to_user(r: &Row<'_>) -> rusqlite::Result<(String, Value)> {
    let uuid: String = r.get(0)?;
    let user = json!({
        "uuid": uuid,
        "username": r.get::<_, Option<String>>(1)?,
        "firstname": r.get::<_, Option<String>>(2)?,
        "lastname": r.get::<_, Option<String>>(3)?,
        "enabled": r.get::<_, i64>(4)? != 0,
        "purpose": r.get::<_, String>(5)?,
        "authentication_method": r.get::<_, String>(6)?,
        "tenant_uuid": r.get::<_, String>(7)?,
        "emails": [],
    });
    Ok((uuid, user))
}

fn user_emails(conn: &Connection, user: &str) -> Result<Value, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT uuid, address, confirmed, main FROM auth_email WHERE user_uuid = ?1 ORDER BY main DESC, address",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok(json!({
            "uuid": r.get::<_, String>(0)?,
            "address": r.get::<_, String>(1)?,
            "confirmed": r.get::<_, i64>(2)? != 0,
            "main": r.get::<_, i64>(3)? != 0,
        }))
    })?;
    Ok(Value::Array(rows.collect::<Result<_, _>>()?))
}

/// Members of `group` as upstream's user objects: (total, filtered, page).
pub fn list_users(conn: &Connection, group: Uuid, params: &ListParams) -> Result<(u64, u64, Vec<Value>), ApiError> {
    let mut w = Where::new(String::from("1"));
    w.and(
        "u.uuid IN (SELECT user_uuid FROM auth_user_group WHERE group_uuid = ?)",
        group.to_string(),
    );
    let total = w.count(conn, "auth_user u")?;
    if let Some(p) = params.search_pattern() {
        w.and(
            "(u.username LIKE ? ESCAPE '\\' OR u.firstname LIKE ? ESCAPE '\\' OR u.lastname LIKE ? ESCAPE '\\'
              OR EXISTS(SELECT 1 FROM auth_email e WHERE e.user_uuid = u.uuid AND e.address LIKE ? ESCAPE '\\'))",
            p,
        );
    }
    for key in ["username", "firstname", "lastname", "purpose"] {
        if let Some(v) = params.filter(key) {
            w.and(&format!("u.{key} = ?"), v.to_string());
        }
    }
    if let Some(v) = params.filter("uuid") {
        w.and("u.uuid = ?", normalize_uuid(v));
    }
    if let Some(v) = params.filter("email_address") {
        w.and(
            "EXISTS(SELECT 1 FROM auth_email e WHERE e.user_uuid = u.uuid AND e.address = ?)",
            v.to_string(),
        );
    }
    let filtered = w.count(conn, "auth_user u")?;
    let order = match params.order.as_deref() {
        Some("firstname") => "u.firstname",
        Some("lastname") => "u.lastname",
        Some("uuid") => "u.uuid",
        Some("purpose") => "u.purpose",
        _ => "u.username",
    };
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM auth_user u WHERE {} ORDER BY {order} {}, u.uuid{}",
        w.sql,
        params.direction.sql(),
        params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows: Vec<(String, Value)> = stmt
        .query_map(params_from_iter(w.args.iter()), row_to_user)?
        .collect::<Result<_, _>>()?;
    let mut items = Vec::with_capacity(rows.len());
    for (uuid, mut user) in rows {
        user["emails"] = user_emails(conn, &uuid)?;
        items.push(user);
    }
    Ok((total, filtered, items))
}

// ---------------------------------------------------------------- policies

/// Attaching an attached policy is a no-op, as upstream.
pub fn add_policy(conn: &Connection, group: Uuid, policy: Uuid) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR IGNORE INTO auth_group_policy (group_uuid, policy_uuid) VALUES (?1, ?2)",
        params![group.to_string(), policy.to_string()],
    )?;
    Ok(())
}

pub fn remove_policy(conn: &Connection, group: Uuid, policy: Uuid) -> Result<bool, ApiError> {
    let n = conn.execute(
        "DELETE FROM auth_group_policy WHERE group_uuid = ?1 AND policy_uuid = ?2",
        params![group.to_string(), policy.to_string()],
    )?;
    Ok(n > 0)
}

/// A policy attached to `group`, named by uuid or slug. Detaching goes
/// through this first so a group's own links can always be removed, even
/// when the policy is not otherwise visible to the caller.
pub fn attached_policy(conn: &Connection, group: Uuid, id_or_slug: &str) -> Result<Option<Uuid>, ApiError> {
    let (column, value) = match Uuid::parse_str(id_or_slug) {
        Ok(u) => ("p.uuid", u.to_string()),
        Err(_) => ("p.slug", id_or_slug.to_string()),
    };
    let found: Option<String> = conn
        .query_row(
            &format!(
                "SELECT p.uuid FROM auth_policy p JOIN auth_group_policy gp ON gp.policy_uuid = p.uuid
                  WHERE gp.group_uuid = ?1 AND {column} = ?2 LIMIT 1"
            ),
            params![group.to_string(), value],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.and_then(|u| Uuid::parse_str(&u).ok()))
}

/// A policy's ACL in its stored order.
pub fn policy_acl(conn: &Connection, policy: Uuid) -> Result<Vec<String>, ApiError> {
    let mut stmt =
        conn.prepare_cached("SELECT access FROM auth_policy_access WHERE policy_uuid = ?1 ORDER BY position")?;
    let rows = stmt.query_map([policy.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const POLICY_COLUMNS: &str = "p.uuid, p.tenant_uuid, p.name, p.slug, p.description, p.config_managed, p.shared";

/// Policies attached to `group` as upstream's policy objects: (total,
/// filtered, page).
pub fn list_policies(conn: &Connection, group: Uuid, params: &ListParams) -> Result<(u64, u64, Vec<Value>), ApiError> {
    let mut w = Where::new(String::from("1"));
    w.and(
        "p.uuid IN (SELECT policy_uuid FROM auth_group_policy WHERE group_uuid = ?)",
        group.to_string(),
    );
    let total = w.count(conn, "auth_policy p")?;
    if let Some(p) = params.search_pattern() {
        w.and("(p.name LIKE ? ESCAPE '\\' OR p.description LIKE ? ESCAPE '\\')", p);
    }
    for key in ["name", "slug"] {
        if let Some(v) = params.filter(key) {
            w.and(&format!("p.{key} = ?"), v.to_string());
        }
    }
    for key in ["uuid", "tenant_uuid"] {
        if let Some(v) = params.filter(key) {
            w.and(&format!("p.{key} = ?"), normalize_uuid(v));
        }
    }
    let filtered = w.count(conn, "auth_policy p")?;
    let order = match params.order.as_deref() {
        Some("slug") => "p.slug",
        Some("uuid") => "p.uuid",
        Some("description") => "p.description",
        _ => "p.name",
    };
    let sql = format!(
        "SELECT {POLICY_COLUMNS} FROM auth_policy p WHERE {} ORDER BY {order} {}, p.uuid{}",
        w.sql,
        params.direction.sql(),
        params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows: Vec<(Uuid, Value)> = stmt
        .query_map(params_from_iter(w.args.iter()), |r| {
            let uuid = parse_uuid(&r.get::<_, String>(0)?)?;
            Ok((
                uuid,
                json!({
                    "uuid": uuid,
                    "tenant_uuid": r.get::<_, String>(1)?,
                    "name": r.get::<_, String>(2)?,
                    "slug": r.get::<_, String>(3)?,
                    "description": r.get::<_, Option<String>>(4)?,
                    "read_only": r.get::<_, i64>(5)? != 0,
                    "shared": r.get::<_, i64>(6)? != 0,
                    "acl": [],
                }),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut items = Vec::with_capacity(rows.len());
    for (uuid, mut policy) in rows {
        policy["acl"] = json!(policy_acl(conn, uuid)?);
        items.push(policy);
    }
    Ok((total, filtered, items))
}
