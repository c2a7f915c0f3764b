//! SQL for tokens, sessions and refresh tokens.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;
use uuid::Uuid;

use super::super::model::{Purpose, DEFAULT_ADMIN_GROUP, DEFAULT_USER_POLICY};
use super::super::token::{self, TokenData, TokenHash};
use super::model::{RefreshTokenRow, SessionRow};
use crate::api::error::ApiError;
use crate::api::list::ListParams;

/// A user as needed to log in.
#[derive(Debug, Clone)]
pub struct LoginUser {
    pub uuid: Uuid,
    pub username: Option<String>,
    pub tenant_uuid: Uuid,
    pub purpose: Purpose,
    pub password_hash: Option<String>,
    pub enabled: bool,
}

pub fn parse_uuid(text: &str) -> Result<Uuid, rusqlite::Error> {
    Uuid::parse_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn login_user(row: &Row<'_>) -> rusqlite::Result<LoginUser> {
    let purpose: String = row.get(3)?;
    Ok(LoginUser {
        uuid: parse_uuid(&row.get::<_, String>(0)?)?,
        username: row.get(1)?,
        tenant_uuid: parse_uuid(&row.get::<_, String>(2)?)?,
        purpose: Purpose::parse(&purpose).unwrap_or_default(),
        password_hash: row.get(4)?,
        enabled: row.get::<_, i64>(5)? != 0,
    })
}

const USER_COLUMNS: &str = "u.uuid, u.username, u.tenant_uuid, u.purpose, u.password_hash, u.enabled";

/// Finds a user by username or by any of its email addresses.
pub fn find_login(conn: &Connection, login: &str) -> Result<Option<LoginUser>, ApiError> {
    let by_name = conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM auth_user u WHERE u.username = ?1"),
            [login],
            login_user,
        )
        .optional()?;
    if by_name.is_some() {
        return Ok(by_name);
    }
    Ok(conn
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS} FROM auth_user u JOIN auth_email e ON e.user_uuid = u.uuid WHERE e.address = ?1"
            ),
            [login],
            login_user,
        )
        .optional()?)
}

pub fn find_user(conn: &Connection, uuid: Uuid) -> Result<Option<LoginUser>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM auth_user u WHERE u.uuid = ?1"),
            [uuid.to_string()],
            login_user,
        )
        .optional()?)
}

/// The flattened ACL of a user: its own policies, its groups' policies and,
/// for PBX users, the default user policy. Order is stable and duplicates
/// are dropped, so tokens are reproducible.
pub fn user_acl(conn: &Connection, user: &LoginUser) -> Result<Vec<String>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT pa.access FROM auth_policy_access pa
           JOIN auth_policy p ON p.uuid = pa.policy_uuid
          WHERE p.uuid IN (
                SELECT policy_uuid FROM auth_user_policy WHERE user_uuid = ?1
                UNION
                SELECT gp.policy_uuid FROM auth_group_policy gp
                  JOIN auth_user_group ug ON ug.group_uuid = gp.group_uuid
                 WHERE ug.user_uuid = ?1
                UNION
                SELECT uuid FROM auth_policy WHERE ?2 AND name = ?3 AND config_managed = 1
          )
          ORDER BY p.name, pa.position",
    )?;
    let rows = stmt.query_map(
        params![
            user.uuid.to_string(),
            user.purpose == Purpose::User,
            DEFAULT_USER_POLICY
        ],
        |r| r.get::<_, String>(0),
    )?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for access in rows {
        let access = access?;
        if seen.insert(access.clone()) {
            out.push(access);
        }
    }
    Ok(out)
}

/// Upstream's `user_admin_status` metadata: member of the admin group of its
/// tenant.
pub fn is_admin(conn: &Connection, user: &LoginUser) -> Result<bool, ApiError> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_user_group ug JOIN auth_group g ON g.uuid = ug.group_uuid
          WHERE ug.user_uuid = ?1 AND g.name = ?2 AND g.tenant_uuid = ?3)",
        params![user.uuid.to_string(), DEFAULT_ADMIN_GROUP, user.tenant_uuid.to_string()],
        |r| r.get::<_, bool>(0),
    )?)
}

pub fn count_live_sessions(conn: &Connection, user: Uuid, now: f64) -> Result<u64, ApiError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM auth_session WHERE user_uuid = ?1 AND expire_at > ?2",
        params![user.to_string(), now],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

pub fn insert_session(conn: &Connection, s: &SessionRow, expire_at: f64) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO auth_session (uuid, tenant_uuid, user_uuid, mobile, expire_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            s.uuid.to_string(),
            s.tenant_uuid.to_string(),
            s.user_uuid.to_string(),
            s.mobile,
            expire_at
        ],
    )?;
    Ok(())
}

pub fn insert_token(conn: &Connection, t: &TokenData) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO auth_token (token_hash, session_uuid, auth_id, pbx_user_uuid, issued_at, expire_at, acl, metadata,
                                 user_agent, remote_addr, refresh_token_uuid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            token::hex(&t.hash),
            t.session_uuid.to_string(),
            t.auth_id,
            t.pbx_user_uuid.map(|u| u.to_string()),
            t.issued_at,
            t.expire_at,
            serde_json::to_string(&t.acl).unwrap_or_else(|_| "[]".into()),
            t.metadata.to_string(),
            t.user_agent,
            t.remote_addr,
            t.refresh_token_uuid.map(|u| u.to_string()),
        ],
    )?;
    Ok(())
}

/// Every unexpired token, to refill the cache at start.
pub fn load_live_tokens(conn: &Connection, now: f64) -> Result<Vec<TokenData>, ApiError> {
    let mut stmt = conn.prepare(
        "SELECT t.token_hash, t.session_uuid, t.auth_id, t.pbx_user_uuid, t.issued_at, t.expire_at, t.acl, t.metadata,
                t.user_agent, t.remote_addr, t.refresh_token_uuid, s.tenant_uuid, s.user_uuid, s.mobile, u.purpose
           FROM auth_token t JOIN auth_session s ON s.uuid = t.session_uuid
           JOIN auth_user u ON u.uuid = s.user_uuid
          WHERE t.expire_at > ?1",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, f64>(4)?,
            r.get::<_, f64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, String>(9)?,
            r.get::<_, Option<String>>(10)?,
            r.get::<_, String>(11)?,
            r.get::<_, String>(12)?,
            r.get::<_, bool>(13)?,
            r.get::<_, String>(14)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (
            hash,
            session,
            auth_id,
            pbx,
            issued,
            expire,
            acl,
            metadata,
            ua,
            addr,
            refresh,
            tenant,
            user,
            mobile,
            purpose,
        ) = row?;
        // A row we cannot read back is skipped, not fatal: the user logs in again.
        let (Some(hash), Ok(session), Ok(tenant), Ok(user)) = (
            token::from_hex(&hash),
            Uuid::parse_str(&session),
            Uuid::parse_str(&tenant),
            Uuid::parse_str(&user),
        ) else {
            tracing::warn!("skipping unreadable token row");
            continue;
        };
        let acl: Vec<String> = serde_json::from_str(&acl).unwrap_or_default();
        let check = super::super::acl::AccessCheck::new(&auth_id, &session.to_string(), &acl);
        out.push(TokenData {
            hash,
            session_uuid: session,
            auth_id,
            user_uuid: user,
            pbx_user_uuid: pbx.and_then(|p| Uuid::parse_str(&p).ok()),
            tenant_uuid: tenant,
            purpose: Purpose::parse(&purpose).unwrap_or_default(),
            issued_at: issued,
            expire_at: expire,
            acl,
            check,
            metadata: serde_json::from_str::<Value>(&metadata).unwrap_or(Value::Null),
            user_agent: ua,
            remote_addr: addr,
            refresh_token_uuid: refresh.and_then(|p| Uuid::parse_str(&p).ok()),
            mobile,
        });
    }
    Ok(out)
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        uuid: parse_uuid(&r.get::<_, String>(0)?)?,
        tenant_uuid: parse_uuid(&r.get::<_, String>(1)?)?,
        user_uuid: parse_uuid(&r.get::<_, String>(2)?)?,
        mobile: r.get(3)?,
    })
}

pub fn find_session(conn: &Connection, uuid: Uuid) -> Result<Option<SessionRow>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT uuid, tenant_uuid, user_uuid, mobile FROM auth_session WHERE uuid = ?1",
            [uuid.to_string()],
            session_row,
        )
        .optional()?)
}

pub fn delete_session(conn: &Connection, uuid: Uuid) -> Result<(), ApiError> {
    conn.execute("DELETE FROM auth_session WHERE uuid = ?1", [uuid.to_string()])?;
    Ok(())
}

/// Deletes every session of `user` (its tokens go by cascade) and returns
/// them, for the `auth_session_deleted` events.
pub fn take_user_sessions(conn: &Connection, user: Uuid) -> Result<Vec<SessionRow>, ApiError> {
    let mut stmt =
        conn.prepare("SELECT uuid, tenant_uuid, user_uuid, mobile FROM auth_session WHERE user_uuid = ?1")?;
    let rows = stmt
        .query_map([user.to_string()], session_row)?
        .collect::<Result<Vec<_>, _>>()?;
    conn.execute("DELETE FROM auth_session WHERE user_uuid = ?1", [user.to_string()])?;
    Ok(rows)
}

/// Sessions of `tenants`, optionally of one user; returns (total, filtered, page).
pub fn list_sessions(
    conn: &Connection,
    tenants: &[Uuid],
    user: Option<Uuid>,
    params: &ListParams,
) -> Result<(u64, u64, Vec<SessionRow>), ApiError> {
    let tenant_list = uuid_list(tenants);
    let mut base = format!("FROM auth_session WHERE tenant_uuid IN ({tenant_list}) AND expire_at > ?1");
    if let Some(u) = user {
        base.push_str(&format!(" AND user_uuid = '{u}'"));
    }
    let now = crate::time::now_epoch();
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) {base}"), [now], |r| r.get(0))?;
    let order = match params.order.as_deref() {
        Some("mobile") => "mobile",
        Some("user_uuid") => "user_uuid",
        Some("tenant_uuid") => "tenant_uuid",
        _ => "uuid",
    };
    let sql = format!(
        "SELECT uuid, tenant_uuid, user_uuid, mobile {base} ORDER BY {order} {}{}",
        params.direction.sql(),
        params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let items = stmt.query_map([now], session_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok((total as u64, total as u64, items))
}

/// Sessions (and, by cascade, tokens) whose expiry has passed.
pub fn take_expired_sessions(conn: &Connection, now: f64, batch: u32) -> Result<Vec<SessionRow>, ApiError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT uuid, tenant_uuid, user_uuid, mobile FROM auth_session WHERE expire_at <= ?1 LIMIT {batch}"
    ))?;
    let rows = stmt.query_map([now], session_row)?.collect::<Result<Vec<_>, _>>()?;
    for s in &rows {
        conn.execute("DELETE FROM auth_session WHERE uuid = ?1", [s.uuid.to_string()])?;
    }
    Ok(rows)
}

/// Sessions expiring within `delay` seconds that were not yet warned about.
pub fn take_expiring_sessions(conn: &Connection, now: f64, delay: f64) -> Result<Vec<SessionRow>, ApiError> {
    let mut stmt = conn.prepare(
        "SELECT uuid, tenant_uuid, user_uuid, mobile FROM auth_session
          WHERE expire_soon_sent = 0 AND expire_at > ?1 AND expire_at <= ?2 LIMIT 1000",
    )?;
    let rows = stmt
        .query_map(params![now, now + delay], session_row)?
        .collect::<Result<Vec<_>, _>>()?;
    for s in &rows {
        conn.execute(
            "UPDATE auth_session SET expire_soon_sent = 1 WHERE uuid = ?1",
            [s.uuid.to_string()],
        )?;
    }
    Ok(rows)
}

pub fn uuid_list(uuids: &[Uuid]) -> String {
    // UUIDs render as hex and dashes only, so inlining them is injection-safe.
    uuids.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(",")
}

fn refresh_row(r: &Row<'_>) -> rusqlite::Result<RefreshTokenRow> {
    Ok(RefreshTokenRow {
        uuid: parse_uuid(&r.get::<_, String>(0)?)?,
        client_id: r.get(1)?,
        user_uuid: parse_uuid(&r.get::<_, String>(2)?)?,
        tenant_uuid: parse_uuid(&r.get::<_, String>(3)?)?,
        login: r.get(4)?,
        mobile: r.get(5)?,
        created_at: r.get(6)?,
        user_agent: r.get(7)?,
        remote_addr: r.get(8)?,
    })
}

const REFRESH_COLUMNS: &str =
    "uuid, client_id, user_uuid, tenant_uuid, login, mobile, created_at, user_agent, remote_addr";

pub fn find_refresh_token(
    conn: &Connection,
    hash: &TokenHash,
    client_id: &str,
) -> Result<Option<RefreshTokenRow>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {REFRESH_COLUMNS} FROM auth_refresh_token WHERE token_hash = ?1 AND client_id = ?2"),
            params![token::hex(hash), client_id],
            refresh_row,
        )
        .optional()?)
}

pub fn find_refresh_token_of_user(
    conn: &Connection,
    user: Uuid,
    client_id: &str,
) -> Result<Option<RefreshTokenRow>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {REFRESH_COLUMNS} FROM auth_refresh_token WHERE user_uuid = ?1 AND client_id = ?2"),
            params![user.to_string(), client_id],
            refresh_row,
        )
        .optional()?)
}

pub fn insert_refresh_token(
    conn: &Connection,
    row: &RefreshTokenRow,
    hash: &TokenHash,
    backend: &str,
) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO auth_refresh_token (uuid, token_hash, client_id, user_uuid, tenant_uuid, backend, login, user_agent,
                                         remote_addr, mobile, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            row.uuid.to_string(),
            token::hex(hash),
            row.client_id,
            row.user_uuid.to_string(),
            row.tenant_uuid.to_string(),
            backend,
            row.login,
            row.user_agent,
            row.remote_addr,
            row.mobile,
            row.created_at,
        ],
    )?;
    Ok(())
}

pub fn delete_refresh_token(
    conn: &Connection,
    user: Uuid,
    client_id: &str,
) -> Result<Option<RefreshTokenRow>, ApiError> {
    let row = find_refresh_token_of_user(conn, user, client_id)?;
    if row.is_some() {
        conn.execute(
            "DELETE FROM auth_refresh_token WHERE user_uuid = ?1 AND client_id = ?2",
            params![user.to_string(), client_id],
        )?;
    }
    Ok(row)
}

pub fn list_refresh_tokens(
    conn: &Connection,
    tenants: &[Uuid],
    user: Option<Uuid>,
    params: &ListParams,
) -> Result<(u64, u64, Vec<RefreshTokenRow>), ApiError> {
    let mut base = format!("FROM auth_refresh_token WHERE tenant_uuid IN ({})", uuid_list(tenants));
    if let Some(u) = user {
        base.push_str(&format!(" AND user_uuid = '{u}'"));
    }
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) {base}"), [], |r| r.get(0))?;
    let mut filtered_sql = base.clone();
    let mut args: Vec<String> = Vec::new();
    if let Some(pattern) = params.search_pattern() {
        filtered_sql.push_str(" AND (client_id LIKE ?1 ESCAPE '\\' OR login LIKE ?1 ESCAPE '\\')");
        args.push(pattern);
    }
    if let Some(c) = params.filter("client_id") {
        args.push(c.to_string());
        filtered_sql.push_str(&format!(" AND client_id = ?{}", args.len()));
    }
    let filtered: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {filtered_sql}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = match params.order.as_deref() {
        Some("client_id") => "client_id",
        Some("mobile") => "mobile",
        Some("login") => "login",
        _ => "created_at",
    };
    let sql = format!(
        "SELECT {REFRESH_COLUMNS} {filtered_sql} ORDER BY {order} {}{}",
        params.direction.sql(),
        params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let items = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), refresh_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((total as u64, filtered as u64, items))
}
