//! SQL for users, their email addresses and their direct policies.

use std::collections::HashMap;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde_json::json;
use uuid::Uuid;

use super::model::{Email, EmailUpdate, NewUser, User, UserAuthMethod, UserFields, UserPolicy};
use crate::api::error::ApiError;
use crate::api::list::{Direction, ListParams};
use crate::auth::model::{Purpose, DEFAULT_USER_POLICY};
use crate::auth::tokens::store::{parse_uuid, uuid_list};

const COLUMNS: &str =
    "u.uuid, u.tenant_uuid, u.username, u.firstname, u.lastname, u.purpose, u.enabled, u.authentication_method";

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        uuid: parse_uuid(&r.get::<_, String>(0)?)?,
        tenant_uuid: parse_uuid(&r.get::<_, String>(1)?)?,
        fields: UserFields {
            username: r.get(2)?,
            firstname: r.get(3)?,
            lastname: r.get(4)?,
            purpose: Purpose::parse(&r.get::<_, String>(5)?).unwrap_or_default(),
            enabled: r.get::<_, i64>(6)? != 0,
            authentication_method: UserAuthMethod::parse(&r.get::<_, String>(7)?),
        },
        emails: Vec::new(),
    })
}

/// The emails of `users`, main address first.
fn emails_by_user(conn: &Connection, users: &[Uuid]) -> Result<HashMap<Uuid, Vec<Email>>, ApiError> {
    let mut by_user: HashMap<Uuid, Vec<Email>> = HashMap::new();
    if users.is_empty() {
        return Ok(by_user);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT user_uuid, uuid, address, confirmed, main FROM auth_email
          WHERE user_uuid IN ({}) ORDER BY main DESC, address",
        uuid_list(users)
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            parse_uuid(&r.get::<_, String>(0)?)?,
            Email {
                uuid: parse_uuid(&r.get::<_, String>(1)?)?,
                address: r.get(2)?,
                confirmed: r.get::<_, i64>(3)? != 0,
                main: r.get::<_, i64>(4)? != 0,
            },
        ))
    })?;
    for row in rows {
        let (user, email) = row?;
        by_user.entry(user).or_default().push(email);
    }
    Ok(by_user)
}

/// Fills in the emails of `users` with one query.
fn load_emails(conn: &Connection, users: &mut [User]) -> Result<(), ApiError> {
    let ids: Vec<Uuid> = users.iter().map(|u| u.uuid).collect();
    let mut by_user = emails_by_user(conn, &ids)?;
    for u in users.iter_mut() {
        u.emails = by_user.remove(&u.uuid).unwrap_or_default();
    }
    Ok(())
}

fn emails_of(conn: &Connection, user: Uuid) -> Result<Vec<Email>, ApiError> {
    Ok(emails_by_user(conn, &[user])?.remove(&user).unwrap_or_default())
}

pub fn get(conn: &Connection, uuid: Uuid) -> Result<Option<User>, ApiError> {
    let user = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM auth_user u WHERE u.uuid = ?1"),
            [uuid.to_string()],
            user_row,
        )
        .optional()?;
    let Some(mut user) = user else { return Ok(None) };
    user.emails = emails_of(conn, uuid)?;
    Ok(Some(user))
}

/// A uuid filter value in its stored form; a value that is not a uuid can
/// match nothing, which the raw string achieves.
fn uuid_arg(value: &str) -> String {
    Uuid::parse_str(value)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| value.to_string())
}

/// SQL condition "user `u` holds the policy selected by `policy_cond`",
/// directly, through one of its groups, or (PBX users) as the default user
/// policy every token of theirs carries: the same set `user_acl` flattens.
fn has_policy(policy_cond: &str) -> String {
    format!(
        "EXISTS(SELECT 1 FROM auth_policy p WHERE {policy_cond} AND (
            p.uuid IN (SELECT policy_uuid FROM auth_user_policy WHERE user_uuid = u.uuid)
            OR p.uuid IN (SELECT gp.policy_uuid FROM auth_group_policy gp
                            JOIN auth_user_group ug ON ug.group_uuid = gp.group_uuid
                           WHERE ug.user_uuid = u.uuid)
            OR (u.purpose = 'user' AND p.config_managed = 1 AND p.name = '{DEFAULT_USER_POLICY}')))"
    )
}

/// The filter SQL (appended to a `WHERE`) and its positional arguments.
fn filter_sql(params: &ListParams) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut args: Vec<String> = Vec::new();
    let mut add = |cond: &dyn Fn(usize) -> String, value: String| {
        args.push(value);
        sql.push_str(" AND ");
        sql.push_str(&cond(args.len()));
    };
    if let Some(pattern) = params.search_pattern() {
        add(
            &|n| {
                format!(
                    "(u.username LIKE ?{n} ESCAPE '\\' OR u.firstname LIKE ?{n} ESCAPE '\\'
                      OR u.lastname LIKE ?{n} ESCAPE '\\'
                      OR EXISTS(SELECT 1 FROM auth_email e WHERE e.user_uuid = u.uuid AND e.address LIKE ?{n} ESCAPE '\\'))"
                )
            },
            pattern,
        );
    }
    for (key, value) in &params.filters {
        let value = value.clone();
        match key.as_str() {
            "uuid" => add(&|n| format!("u.uuid = ?{n}"), uuid_arg(&value)),
            "username" => add(&|n| format!("u.username = ?{n}"), value),
            "firstname" => add(&|n| format!("u.firstname = ?{n}"), value),
            "lastname" => add(&|n| format!("u.lastname = ?{n}"), value),
            "purpose" => add(&|n| format!("u.purpose = ?{n}"), value),
            "email_address" => add(
                &|n| format!("EXISTS(SELECT 1 FROM auth_email e WHERE e.user_uuid = u.uuid AND e.address = ?{n})"),
                value,
            ),
            "group_uuid" => {
                add(
                    &|n| {
                        format!("EXISTS(SELECT 1 FROM auth_user_group ug WHERE ug.user_uuid = u.uuid AND ug.group_uuid = ?{n})")
                    },
                    uuid_arg(&value),
                )
            }
            "policy_uuid" => add(
                &|n| {
                    format!("EXISTS(SELECT 1 FROM auth_user_policy up WHERE up.user_uuid = u.uuid AND up.policy_uuid = ?{n})")
                },
                uuid_arg(&value),
            ),
            "policy_slug" => add(
                &|n| {
                    format!(
                        "EXISTS(SELECT 1 FROM auth_user_policy up JOIN auth_policy p ON p.uuid = up.policy_uuid
                                 WHERE up.user_uuid = u.uuid AND p.slug = ?{n})"
                    )
                },
                value,
            ),
            "has_policy_uuid" => add(&|n| has_policy(&format!("p.uuid = ?{n}")), uuid_arg(&value)),
            "has_policy_slug" => add(&|n| has_policy(&format!("p.slug = ?{n}")), value),
            _ => {}
        }
    }
    (sql, args)
}

/// Where NULLs sort: as PostgreSQL (upstream's database) does, after every
/// value, so an ascending list starts with named users.
fn nulls_sql(params: &ListParams) -> &'static str {
    match params.direction {
        Direction::Asc => "NULLS LAST",
        Direction::Desc => "NULLS FIRST",
    }
}

/// Users of `tenants`; returns (total, filtered, page).
pub fn list(conn: &Connection, tenants: &[Uuid], params: &ListParams) -> Result<(u64, u64, Vec<User>), ApiError> {
    let base = format!("FROM auth_user u WHERE u.tenant_uuid IN ({})", uuid_list(tenants));
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) {base}"), [], |r| r.get(0))?;
    let (filters, args) = filter_sql(params);
    let filtered_sql = format!("{base}{filters}");
    let filtered: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {filtered_sql}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    // `order` was checked against the allow-list; map it to a column anyway
    // so nothing from the query string reaches the SQL text.
    let order = match params.order.as_deref() {
        Some("firstname") => "u.firstname",
        Some("lastname") => "u.lastname",
        Some("uuid") => "u.uuid",
        Some("purpose") => "u.purpose",
        _ => "u.username",
    };
    let sql = format!(
        "SELECT {COLUMNS} {filtered_sql} ORDER BY {order} {dir} {nulls}, u.uuid {dir}{limit}",
        dir = params.direction.sql(),
        nulls = nulls_sql(params),
        limit = params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut items = stmt
        .query_map(params_from_iter(args.iter()), user_row)?
        .collect::<Result<Vec<_>, _>>()?;
    load_emails(conn, &mut items)?;
    Ok((total as u64, filtered as u64, items))
}

/// Upstream's 409 body for a taken unique value.
pub fn conflict(column: &str, value: &str) -> ApiError {
    let what = if column == "uuid" { "uuid" } else { "login" };
    ApiError::Conflict {
        resource: "users",
        message: "Conflict detected".into(),
        details: json!({ column: {
            "constraint_id": "unique",
            "message": format!("The {what} \"{value}\" is already used"),
        }}),
    }
}

/// Whether `login` is already somebody's username or email address (both
/// are accepted as login, so they share one namespace), ignoring `except`.
pub fn login_taken(conn: &Connection, login: &str, except: Option<Uuid>) -> Result<bool, ApiError> {
    let except = except.map(|u| u.to_string()).unwrap_or_default();
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_user WHERE username = ?1 AND uuid != ?2)
             OR EXISTS(SELECT 1 FROM auth_email WHERE address = ?1 AND user_uuid != ?2)",
        params![login, except],
        |r| r.get(0),
    )?)
}

fn check_username(conn: &Connection, username: Option<&str>, except: Option<Uuid>) -> Result<(), ApiError> {
    match username {
        Some(name) if login_taken(conn, name, except)? => Err(conflict("username", name)),
        _ => Ok(()),
    }
}

fn check_address(conn: &Connection, address: &str, except: Option<Uuid>) -> Result<(), ApiError> {
    if login_taken(conn, address, except)? {
        return Err(conflict("email_address", address));
    }
    Ok(())
}

/// Creates the user (and its main, confirmed email) in `tenant`.
pub fn insert(conn: &Connection, u: &NewUser, hash: Option<&str>, tenant: Uuid) -> Result<(), ApiError> {
    let uuid_taken: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_user WHERE uuid = ?1)",
        [u.uuid.to_string()],
        |r| r.get(0),
    )?;
    if uuid_taken {
        return Err(conflict("uuid", &u.uuid.to_string()));
    }
    check_username(conn, u.fields.username.as_deref(), None)?;
    if let Some(address) = &u.email_address {
        check_address(conn, address, None)?;
    }
    let f = &u.fields;
    conn.execute(
        "INSERT INTO auth_user (uuid, username, firstname, lastname, password_hash, purpose, authentication_method,
                                enabled, tenant_uuid, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            u.uuid.to_string(),
            f.username,
            f.firstname,
            f.lastname,
            hash,
            f.purpose.as_str(),
            f.authentication_method.as_str(),
            f.enabled,
            tenant.to_string(),
            crate::time::now_epoch(),
        ],
    )?;
    if let Some(address) = &u.email_address {
        // An address given by whoever creates the user is trusted, as upstream.
        conn.execute(
            "INSERT INTO auth_email (uuid, address, confirmed, main, user_uuid) VALUES (?1, ?2, 1, 1, ?3)",
            params![Uuid::new_v4().to_string(), address, u.uuid.to_string()],
        )?;
    }
    Ok(())
}

pub fn update(conn: &Connection, uuid: Uuid, f: &UserFields) -> Result<(), ApiError> {
    check_username(conn, f.username.as_deref(), Some(uuid))?;
    conn.execute(
        "UPDATE auth_user SET username = ?2, firstname = ?3, lastname = ?4, purpose = ?5, authentication_method = ?6,
                              enabled = ?7
          WHERE uuid = ?1",
        params![
            uuid.to_string(),
            f.username,
            f.firstname,
            f.lastname,
            f.purpose.as_str(),
            f.authentication_method.as_str(),
            f.enabled,
        ],
    )?;
    Ok(())
}

pub fn password_hash(conn: &Connection, uuid: Uuid) -> Result<Option<String>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT password_hash FROM auth_user WHERE uuid = ?1",
            [uuid.to_string()],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}

pub fn set_password(conn: &Connection, uuid: Uuid, hash: &str) -> Result<(), ApiError> {
    conn.execute(
        "UPDATE auth_user SET password_hash = ?2 WHERE uuid = ?1",
        params![uuid.to_string(), hash],
    )?;
    Ok(())
}

/// Deletes the user; emails, policy and group links, refresh tokens and
/// sessions (hence tokens) go with it by cascade.
pub fn delete(conn: &Connection, uuid: Uuid) -> Result<(), ApiError> {
    conn.execute(
        "UPDATE auth_tenant SET contact_uuid = NULL WHERE contact_uuid = ?1",
        [uuid.to_string()],
    )?;
    conn.execute("DELETE FROM auth_user WHERE uuid = ?1", [uuid.to_string()])?;
    Ok(())
}

/// Replaces the user's addresses with `emails`. An address already held
/// keeps its uuid and, unless `confirmed` is given, its confirmation.
pub fn replace_emails(conn: &Connection, user: Uuid, emails: &[EmailUpdate]) -> Result<Vec<Email>, ApiError> {
    for e in emails {
        check_address(conn, &e.address, Some(user))?;
    }
    let existing: Vec<(String, String, bool)> = {
        let mut stmt = conn.prepare("SELECT uuid, address, confirmed FROM auth_email WHERE user_uuid = ?1")?;
        let rows = stmt.query_map([user.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (uuid, address, _) in &existing {
        if !emails.iter().any(|e| e.address.eq_ignore_ascii_case(address)) {
            conn.execute("DELETE FROM auth_email WHERE uuid = ?1", [uuid])?;
        }
    }
    for e in emails {
        match existing.iter().find(|(_, a, _)| a.eq_ignore_ascii_case(&e.address)) {
            Some((uuid, _, confirmed)) => {
                conn.execute(
                    "UPDATE auth_email SET address = ?2, main = ?3, confirmed = ?4 WHERE uuid = ?1",
                    params![uuid, e.address, e.main, e.confirmed.unwrap_or(*confirmed)],
                )?;
            }
            None => {
                conn.execute(
                    "INSERT INTO auth_email (uuid, address, confirmed, main, user_uuid) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        Uuid::new_v4().to_string(),
                        e.address,
                        e.confirmed.unwrap_or(false),
                        e.main,
                        user.to_string()
                    ],
                )?;
            }
        }
    }
    emails_of(conn, user)
}

/// A policy's ACL, in the order it was given.
pub fn policy_acl(conn: &Connection, policy: Uuid) -> Result<Vec<String>, ApiError> {
    let mut stmt =
        conn.prepare_cached("SELECT access FROM auth_policy_access WHERE policy_uuid = ?1 ORDER BY position")?;
    let rows = stmt.query_map([policy.to_string()], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The policies attached directly to `user`; returns (total, filtered, page).
pub fn list_policies(
    conn: &Connection,
    user: Uuid,
    params: &ListParams,
) -> Result<(u64, u64, Vec<UserPolicy>), ApiError> {
    let base = "FROM auth_policy p JOIN auth_user_policy up ON up.policy_uuid = p.uuid WHERE up.user_uuid = ?1";
    let mut args: Vec<String> = vec![user.to_string()];
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) {base}"), [&args[0]], |r| r.get(0))?;
    let mut filtered_sql = base.to_string();
    if let Some(pattern) = params.search_pattern() {
        args.push(pattern);
        let n = args.len();
        filtered_sql.push_str(&format!(
            " AND (p.name LIKE ?{n} ESCAPE '\\' OR p.slug LIKE ?{n} ESCAPE '\\' OR p.description LIKE ?{n} ESCAPE '\\')"
        ));
    }
    for (key, column) in [("uuid", "p.uuid"), ("name", "p.name"), ("slug", "p.slug")] {
        if let Some(v) = params.filter(key) {
            args.push(if key == "uuid" { uuid_arg(v) } else { v.to_string() });
            filtered_sql.push_str(&format!(" AND {column} = ?{}", args.len()));
        }
    }
    let filtered: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {filtered_sql}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = match params.order.as_deref() {
        Some("description") => "p.description",
        Some("uuid") => "p.uuid",
        Some("slug") => "p.slug",
        _ => "p.name",
    };
    let sql = format!(
        "SELECT p.uuid, p.tenant_uuid, p.name, p.slug, p.description, p.config_managed, p.shared {filtered_sql}
          ORDER BY {order} {dir} {nulls}, p.uuid {dir}{limit}",
        dir = params.direction.sql(),
        nulls = nulls_sql(params),
        limit = params.limit_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut items = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            Ok(UserPolicy {
                uuid: parse_uuid(&r.get::<_, String>(0)?)?,
                tenant_uuid: parse_uuid(&r.get::<_, String>(1)?)?,
                name: r.get(2)?,
                slug: r.get(3)?,
                description: r.get(4)?,
                config_managed: r.get::<_, i64>(5)? != 0,
                shared: r.get::<_, i64>(6)? != 0,
                acl: Vec::new(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for p in &mut items {
        p.acl = policy_acl(conn, p.uuid)?;
    }
    Ok((total as u64, filtered as u64, items))
}

/// Attaching twice is not an error (upstream ignores the duplicate). A user
/// or policy deleted meanwhile makes this a no-op, not a foreign-key error.
pub fn attach_policy(conn: &Connection, user: Uuid, policy: Uuid) -> Result<(), ApiError> {
    conn.execute(
        "INSERT OR IGNORE INTO auth_user_policy (user_uuid, policy_uuid)
         SELECT u.uuid, p.uuid FROM auth_user u, auth_policy p WHERE u.uuid = ?1 AND p.uuid = ?2",
        params![user.to_string(), policy.to_string()],
    )?;
    Ok(())
}

/// Detaching a policy that is not attached is not an error either.
pub fn detach_policy(conn: &Connection, user: Uuid, policy: Uuid) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM auth_user_policy WHERE user_uuid = ?1 AND policy_uuid = ?2",
        params![user.to_string(), policy.to_string()],
    )?;
    Ok(())
}
