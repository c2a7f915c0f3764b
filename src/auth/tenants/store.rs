//! SQL for tenants and their domains.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::model::{Address, AuthMethod, Tenant};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::tokens::store::{parse_uuid, uuid_list};

/// (tenant, parent) for the in-memory tree.
pub fn parent_pairs(conn: &Connection) -> Result<Vec<(Uuid, Uuid)>, ApiError> {
    let mut stmt = conn.prepare("SELECT uuid, parent_uuid FROM auth_tenant")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            parse_uuid(&r.get::<_, String>(0)?)?,
            parse_uuid(&r.get::<_, String>(1)?)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const COLUMNS: &str = "uuid, name, slug, phone, contact_uuid, parent_uuid, default_authentication_method, address";

fn row_to_tenant(r: &Row<'_>) -> rusqlite::Result<Tenant> {
    let address: String = r.get(7)?;
    let contact: Option<String> = r.get(4)?;
    Ok(Tenant {
        uuid: parse_uuid(&r.get::<_, String>(0)?)?,
        name: r.get(1)?,
        slug: r.get(2)?,
        phone: r.get(3)?,
        contact: contact.and_then(|c| Uuid::parse_str(&c).ok()),
        parent_uuid: parse_uuid(&r.get::<_, String>(5)?)?,
        default_authentication_method: AuthMethod::parse(&r.get::<_, String>(6)?),
        address: serde_json::from_str::<Address>(&address).unwrap_or_default(),
        domain_names: Vec::new(),
    })
}

fn load_domains(conn: &Connection, t: &mut Tenant) -> Result<(), ApiError> {
    let mut stmt = conn.prepare_cached("SELECT name FROM auth_tenant_domain WHERE tenant_uuid = ?1 ORDER BY name")?;
    t.domain_names = stmt
        .query_map([t.uuid.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(())
}

pub fn get(conn: &Connection, uuid: Uuid) -> Result<Option<Tenant>, ApiError> {
    let t = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM auth_tenant WHERE uuid = ?1"),
            [uuid.to_string()],
            row_to_tenant,
        )
        .optional()?;
    match t {
        Some(mut t) => {
            load_domains(conn, &mut t)?;
            Ok(Some(t))
        }
        None => Ok(None),
    }
}

pub fn list(conn: &Connection, tenants: &[Uuid], params: &ListParams) -> Result<(u64, u64, Vec<Tenant>), ApiError> {
    let base = format!("FROM auth_tenant WHERE uuid IN ({})", uuid_list(tenants));
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) {base}"), [], |r| r.get(0))?;
    let mut filtered = base.clone();
    let mut args: Vec<String> = Vec::new();
    if let Some(p) = params.search_pattern() {
        args.push(p);
        filtered.push_str(" AND (name LIKE ?1 ESCAPE '\\' OR slug LIKE ?1 ESCAPE '\\' OR phone LIKE ?1 ESCAPE '\\')");
    }
    for key in ["uuid", "name", "slug"] {
        if let Some(v) = params.filter(key) {
            args.push(v.to_string());
            filtered.push_str(&format!(" AND {key} = ?{}", args.len()));
        }
    }
    let count: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {filtered}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = params.order.as_deref().unwrap_or("name");
    let sql = format!(
        "SELECT {COLUMNS} {filtered} ORDER BY {order} {}{}",
        params.direction.sql(),
        params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut items: Vec<Tenant> = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), row_to_tenant)?
        .collect::<Result<_, _>>()?;
    for t in &mut items {
        load_domains(conn, t)?;
    }
    Ok((total as u64, count as u64, items))
}

/// Conflicts answered as 409 before SQLite's constraint fires.
pub fn check_unique(conn: &Connection, t: &Tenant) -> Result<(), ApiError> {
    let uuid_taken: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_tenant WHERE uuid = ?1)",
        [t.uuid.to_string()],
        |r| r.get(0),
    )?;
    if uuid_taken {
        return Err(ApiError::conflict(
            "tenants",
            "uuid",
            format!("Tenant {} already exists", t.uuid),
        ));
    }
    let slug_taken: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_tenant WHERE slug = ?1)",
        [&t.slug],
        |r| r.get(0),
    )?;
    if slug_taken {
        return Err(ApiError::conflict(
            "tenants",
            "slug",
            format!("The slug \"{}\" is already used", t.slug),
        ));
    }
    Ok(())
}

fn check_domains(conn: &Connection, t: &Tenant) -> Result<(), ApiError> {
    for d in &t.domain_names {
        let owner: Option<String> = conn
            .query_row("SELECT tenant_uuid FROM auth_tenant_domain WHERE name = ?1", [d], |r| {
                r.get(0)
            })
            .optional()?;
        if owner.is_some_and(|o| o != t.uuid.to_string()) {
            return Err(ApiError::conflict(
                "tenants",
                "domain_names",
                format!("The domain \"{d}\" is already used"),
            ));
        }
    }
    Ok(())
}

fn write_domains(conn: &Connection, t: &Tenant) -> Result<(), ApiError> {
    check_domains(conn, t)?;
    conn.execute(
        "DELETE FROM auth_tenant_domain WHERE tenant_uuid = ?1",
        [t.uuid.to_string()],
    )?;
    for d in &t.domain_names {
        conn.execute(
            "INSERT INTO auth_tenant_domain (uuid, name, tenant_uuid) VALUES (?1, ?2, ?3)",
            params![Uuid::new_v4().to_string(), d, t.uuid.to_string()],
        )?;
    }
    Ok(())
}

fn address_json(t: &Tenant) -> String {
    serde_json::to_string(&t.address).unwrap_or_else(|_| "{}".into())
}

pub fn insert(conn: &Connection, t: &Tenant) -> Result<(), ApiError> {
    check_unique(conn, t)?;
    conn.execute(
        "INSERT INTO auth_tenant (uuid, name, slug, phone, contact_uuid, parent_uuid, default_authentication_method, address, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            t.uuid.to_string(),
            t.name,
            t.slug,
            t.phone,
            t.contact.map(|c| c.to_string()),
            t.parent_uuid.to_string(),
            t.default_authentication_method.as_str(),
            address_json(t),
            crate::time::now_epoch(),
        ],
    )?;
    write_domains(conn, t)
}

pub fn update(conn: &Connection, t: &Tenant) -> Result<(), ApiError> {
    conn.execute(
        "UPDATE auth_tenant SET name = ?2, phone = ?3, contact_uuid = ?4, default_authentication_method = ?5, address = ?6
          WHERE uuid = ?1",
        params![
            t.uuid.to_string(),
            t.name,
            t.phone,
            t.contact.map(|c| c.to_string()),
            t.default_authentication_method.as_str(),
            address_json(t),
        ],
    )?;
    write_domains(conn, t)
}

pub fn has_children(conn: &Connection, uuid: Uuid) -> Result<bool, ApiError> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_tenant WHERE parent_uuid = ?1 AND uuid != ?1)",
        [uuid.to_string()],
        |r| r.get(0),
    )?)
}

pub fn delete(conn: &Connection, uuid: Uuid) -> Result<(), ApiError> {
    // Sessions hold no foreign key to the tenant (they outlive nothing but
    // their user), so remove them explicitly with the tenant's users.
    conn.execute("DELETE FROM auth_session WHERE tenant_uuid = ?1", [uuid.to_string()])?;
    conn.execute("DELETE FROM auth_tenant WHERE uuid = ?1", [uuid.to_string()])?;
    Ok(())
}

pub fn user_exists_in(conn: &Connection, user: Uuid, tenants: &[Uuid]) -> Result<bool, ApiError> {
    Ok(conn.query_row(
        &format!(
            "SELECT EXISTS(SELECT 1 FROM auth_user WHERE uuid = ?1 AND tenant_uuid IN ({}))",
            uuid_list(tenants)
        ),
        [user.to_string()],
        |r| r.get(0),
    )?)
}
