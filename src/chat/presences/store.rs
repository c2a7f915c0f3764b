//! Presences in SQL: what a user chose (`chat_presence`) read together with what auth and
//! confd hold about the user (sessions, refresh tokens, the DND service, the lines and their
//! endpoints), for the users confd knows (upstream's chatd follows confd's users).

use std::collections::HashMap;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use uuid::Uuid;

use super::model::{PresenceState, UserInfo, UserLine};
use crate::api::error::ApiError;
use crate::chat::rooms::store::uuid_at;

/// Which users to read.
#[derive(Debug, Clone)]
pub enum Users {
    All,
    OfTenants(Vec<Uuid>),
    /// These users, wherever they are (the caller checks tenants).
    Only(Vec<Uuid>),
}

impl Users {
    /// The `WHERE` on `confd_user u` and its arguments.
    fn clause(&self) -> (String, Vec<String>) {
        let list = |col: &str, values: &[Uuid]| {
            let marks = vec!["?"; values.len()].join(", ");
            (
                format!("WHERE {col} IN ({marks})"),
                values.iter().map(Uuid::to_string).collect(),
            )
        };
        match self {
            Users::All => (String::new(), Vec::new()),
            Users::OfTenants(t) => list("u.tenant_uuid", t),
            Users::Only(u) => list("u.uuid", u),
        }
    }
}

/// The users' presence data, in confd's user order, each with its lines.
pub fn load(conn: &Connection, users: &Users) -> Result<Vec<UserInfo>, ApiError> {
    let (clause, args) = users.clause();
    let sql = format!(
        "SELECT u.uuid, u.tenant_uuid, p.state, p.status, p.last_activity_us,
                EXISTS (SELECT 1 FROM auth_session s WHERE s.user_uuid = u.uuid),
                EXISTS (SELECT 1 FROM auth_session s WHERE s.user_uuid = u.uuid AND s.mobile = 1)
                 OR EXISTS (SELECT 1 FROM auth_refresh_token r WHERE r.user_uuid = u.uuid AND r.mobile = 1),
                COALESCE(json_extract(f.services, '$.dnd.enabled'), 0)
         FROM confd_user u
         LEFT JOIN chat_presence p ON p.user_uuid = u.uuid
         LEFT JOIN confd_user_feature f ON f.user_id = u.id
         {clause} ORDER BY u.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        Ok(UserInfo {
            uuid: uuid_at(r, 0)?,
            tenant_uuid: uuid_at(r, 1)?,
            state: r
                .get::<_, Option<String>>(2)?
                .map(|s| PresenceState::parse(&s))
                .unwrap_or_default(),
            status: r.get(3)?,
            last_activity_us: r.get(4)?,
            connected: r.get(5)?,
            mobile: r.get(6)?,
            do_not_disturb: r.get::<_, i64>(7)? != 0,
            lines: Vec::new(),
        })
    })?;
    let mut out: Vec<UserInfo> = rows.collect::<Result<_, _>>()?;
    let mut lines = lines_of(conn, users)?;
    for user in &mut out {
        user.lines = lines.remove(&user.uuid).unwrap_or_default();
    }
    Ok(out)
}

/// Each user's lines (main line first) with the device their channels belong to.
fn lines_of(conn: &Connection, users: &Users) -> Result<HashMap<Uuid, Vec<UserLine>>, ApiError> {
    let (clause, args) = users.clause();
    let sql = format!(
        "SELECT u.uuid, ul.line_id, json_extract(s.doc, '$.name'), json_extract(sc.doc, '$.name')
         FROM confd_user_line ul
         JOIN confd_user u ON u.id = ul.user_id
         LEFT JOIN confd_line_endpoint le ON le.line_id = ul.line_id
         LEFT JOIN confd_endpoint_sip s ON s.id = le.sip_id
         LEFT JOIN confd_endpoint_sccp sc ON sc.id = le.sccp_id
         {clause} ORDER BY ul.user_id, ul.position, ul.line_id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        let (sip, sccp): (Option<String>, Option<String>) = (r.get(2)?, r.get(3)?);
        // Device states name SIP devices `PJSIP/<endpoint>` and SCCP ones `SCCP/<name>`;
        // a custom endpoint has none chatd follows.
        let device = match (sip, sccp) {
            (Some(name), _) => Some(format!("PJSIP/{name}")),
            (None, Some(name)) => Some(format!("SCCP/{name}")),
            _ => None,
        };
        Ok((uuid_at(r, 0)?, UserLine { id: r.get(1)?, device }))
    })?;
    let mut out: HashMap<Uuid, Vec<UserLine>> = HashMap::new();
    for row in rows {
        let (user, line) = row?;
        out.entry(user).or_default().push(line);
    }
    Ok(out)
}

/// How many users the tenants have (a filtered list's `total`).
pub fn count(conn: &Connection, tenants: &[Uuid]) -> Result<u64, ApiError> {
    let (clause, args) = Users::OfTenants(tenants.to_vec()).clause();
    let n: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM confd_user u {clause}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The tenant of a confd user, if there is one.
pub fn tenant_of(conn: &Connection, user: Uuid) -> Result<Option<Uuid>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT tenant_uuid FROM confd_user WHERE uuid = ?1",
            [user.to_string()],
            |r| uuid_at(r, 0),
        )
        .optional()?)
}

/// Stores what the user chose; `status` `None` keeps the stored one.
pub fn save(
    conn: &Connection,
    user: Uuid,
    state: PresenceState,
    status: Option<Option<String>>,
    now_us: i64,
) -> Result<(), ApiError> {
    let keep_status = status.is_none();
    conn.execute(
        "INSERT INTO chat_presence (user_uuid, state, status, last_activity_us) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_uuid) DO UPDATE SET
             state = excluded.state,
             status = CASE WHEN ?5 THEN chat_presence.status ELSE excluded.status END,
             last_activity_us = excluded.last_activity_us",
        params![user.to_string(), state.as_str(), status.flatten(), now_us, keep_status],
    )?;
    Ok(())
}
