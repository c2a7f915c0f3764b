//! SQL of the call logs: replace by conversation, read one, search with upstream's filters.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::model::{CallDirection, CallLog, CallStatus, CdrQuery, Participant, Recording, Role, Visibility};
use crate::api::error::ApiError;

/// Stores `log`, replacing the log of the same conversation if there is one (generating the
/// same CELs again must not duplicate). Returns the new id.
pub fn replace(tx: &Transaction<'_>, log: &CallLog, now_us: i64) -> Result<i64, ApiError> {
    // Recordings whose media was deleted stay deleted when the call is generated again.
    let gone: std::collections::HashSet<String> = tx
        .prepare_cached(
            "SELECT r.uuid FROM call_log_recording r JOIN call_log c ON c.id = r.call_log_id
             WHERE c.conversation_id = ?1 AND (r.deleted = 1 OR r.path IS NULL)",
        )?
        .query_map(params![log.conversation_id], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    tx.execute(
        "DELETE FROM call_log WHERE conversation_id = ?1",
        params![log.conversation_id],
    )?;
    tx.execute(
        "INSERT INTO call_log (tenant_uuid, conversation_id, start_us, answer_us, end_us, call_direction,
            source_name, source_exten, source_internal_name, source_internal_exten, source_internal_context,
            source_line_identity, requested_name, requested_exten, requested_context, requested_internal_exten,
            requested_internal_context, destination_name, destination_exten, destination_internal_exten,
            destination_internal_context, destination_line_identity, destination_details, user_field, created_us,
            call_status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
            ?21, ?22, ?23, ?24, ?25, ?26)",
        params![
            log.tenant_uuid.to_string(),
            log.conversation_id,
            log.start_us,
            log.answer_us,
            log.end_us,
            log.call_direction.as_str(),
            log.source_name,
            log.source_exten,
            log.source_internal_name,
            log.source_internal_exten,
            log.source_internal_context,
            log.source_line_identity,
            log.requested_name,
            log.requested_exten,
            log.requested_context,
            log.requested_internal_exten,
            log.requested_internal_context,
            log.destination_name,
            log.destination_exten,
            log.destination_internal_exten,
            log.destination_internal_context,
            log.destination_line_identity,
            serde_json::Value::Object(log.destination_details.clone()).to_string(),
            log.user_field,
            now_us,
            log.call_status.as_str(),
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut participant = tx.prepare_cached(
        "INSERT INTO call_log_participant (call_log_id, user_uuid, line_id, role, tags, answered, requested, peer_exten)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for p in &log.participants {
        participant.execute(params![
            id,
            p.user_uuid.to_string(),
            p.line_id,
            p.role.as_str(),
            serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()),
            p.answered,
            p.requested,
            p.peer_exten,
        ])?;
    }
    let mut recording = tx.prepare_cached(
        "INSERT OR REPLACE INTO call_log_recording (uuid, call_log_id, start_us, end_us, path, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in &log.recordings {
        let uuid = r.uuid.to_string();
        if gone.contains(&uuid) {
            recording.execute(params![uuid, id, r.start_us, r.end_us, None::<String>, true])?;
        } else {
            recording.execute(params![uuid, id, r.start_us, r.end_us, r.path, r.deleted])?;
        }
    }
    Ok(id)
}

/// Deletes the call logs that started before `before_us` (all of them with `None`); returns
/// how many.
pub fn delete_before(tx: &Transaction<'_>, before_us: Option<i64>) -> Result<usize, ApiError> {
    Ok(match before_us {
        Some(t) => tx.execute("DELETE FROM call_log WHERE start_us < ?1", params![t])?,
        None => tx.execute("DELETE FROM call_log", [])?,
    })
}

const COLUMNS: &str = "c.id, c.tenant_uuid, c.conversation_id, c.start_us, c.answer_us, c.end_us, c.call_direction,
    c.source_name, c.source_exten, c.source_internal_name, c.source_internal_exten, c.source_internal_context,
    c.source_line_identity, c.requested_name, c.requested_exten, c.requested_context, c.requested_internal_exten,
    c.requested_internal_context, c.destination_name, c.destination_exten, c.destination_internal_exten,
    c.destination_internal_context, c.destination_line_identity, c.destination_details, c.user_field,
    c.call_status";

fn uuid_of(text: String) -> Uuid {
    // Written by us from a `Uuid`; a hand-edited database gets the nil UUID, not a panic.
    Uuid::parse_str(&text).unwrap_or_default()
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<CallLog> {
    let details: String = row.get(23)?;
    let direction: String = row.get(6)?;
    let status: String = row.get(25)?;
    Ok(CallLog {
        id: row.get(0)?,
        tenant_uuid: uuid_of(row.get(1)?),
        conversation_id: row.get(2)?,
        start_us: row.get(3)?,
        answer_us: row.get(4)?,
        end_us: row.get(5)?,
        call_direction: CallDirection::parse(&direction).unwrap_or_default(),
        call_status: CallStatus::parse(&status).unwrap_or_default(),
        source_name: row.get(7)?,
        source_exten: row.get(8)?,
        source_internal_name: row.get(9)?,
        source_internal_exten: row.get(10)?,
        source_internal_context: row.get(11)?,
        source_line_identity: row.get(12)?,
        requested_name: row.get(13)?,
        requested_exten: row.get(14)?,
        requested_context: row.get(15)?,
        requested_internal_exten: row.get(16)?,
        requested_internal_context: row.get(17)?,
        destination_name: row.get(18)?,
        destination_exten: row.get(19)?,
        destination_internal_exten: row.get(20)?,
        destination_internal_context: row.get(21)?,
        destination_line_identity: row.get(22)?,
        destination_details: serde_json::from_str(&details).unwrap_or_default(),
        user_field: row.get(24)?,
        participants: Vec::new(),
        recordings: Vec::new(),
    })
}

/// Loads the participants and recordings of `logs`.
fn attach(conn: &Connection, logs: &mut [CallLog]) -> Result<(), ApiError> {
    let mut participants = conn.prepare_cached(
        "SELECT user_uuid, line_id, role, tags, answered, requested, peer_exten
         FROM call_log_participant WHERE call_log_id = ?1 ORDER BY id",
    )?;
    let mut recordings = conn.prepare_cached(
        "SELECT uuid, start_us, end_us, path, deleted FROM call_log_recording
         WHERE call_log_id = ?1 ORDER BY start_us, uuid",
    )?;
    for log in logs.iter_mut() {
        log.participants = participants
            .query_map(params![log.id], |r| {
                let role: String = r.get(2)?;
                let tags: String = r.get(3)?;
                Ok(Participant {
                    user_uuid: uuid_of(r.get(0)?),
                    line_id: r.get(1)?,
                    role: Role::parse(&role).unwrap_or(Role::Destination),
                    tags: serde_json::from_str(&tags).unwrap_or_default(),
                    answered: r.get(4)?,
                    requested: r.get(5)?,
                    peer_exten: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        log.recordings = recordings
            .query_map(params![log.id], |r| {
                Ok(Recording {
                    uuid: uuid_of(r.get(0)?),
                    start_us: r.get(1)?,
                    end_us: r.get(2)?,
                    path: r.get(3)?,
                    deleted: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// A `WHERE` clause under construction, with its bound values.
#[derive(Default)]
struct Where {
    sql: Vec<String>,
    args: Vec<Sql>,
}

impl Where {
    fn push(&mut self, clause: impl Into<String>, args: impl IntoIterator<Item = Sql>) {
        self.sql.push(clause.into());
        self.args.extend(args);
    }

    fn placeholders(n: usize) -> String {
        vec!["?"; n].join(", ")
    }

    fn text(&self) -> String {
        if self.sql.is_empty() {
            "1".into()
        } else {
            self.sql.join(" AND ")
        }
    }
}

fn text(s: impl Into<String>) -> Sql {
    Sql::Text(s.into())
}

/// The scope of a request: its tenants, and the user of a per-user endpoint.
fn scope_clause(vis: &Visibility, alias: &str) -> Where {
    let mut w = Where::default();
    w.push(
        format!("{alias}.tenant_uuid IN ({})", Where::placeholders(vis.tenants.len())),
        vis.tenants.iter().map(|t| text(t.to_string())),
    );
    if let Some(user) = vis.user {
        // `IN` over the (user_uuid, call_log_id) index finds a user's calls directly instead of
        // testing every call log of the scope.
        w.push(
            format!("{alias}.id IN (SELECT p.call_log_id FROM call_log_participant p WHERE p.user_uuid = ?)"),
            [text(user.to_string())],
        );
    }
    w
}

/// Scope plus every filter of `q`.
fn filter_clause(vis: &Visibility, q: &CdrQuery, alias: &str) -> Where {
    let mut w = scope_clause(vis, alias);
    if let Some(t) = q.from_us {
        w.push(format!("{alias}.start_us >= ?"), [Sql::Integer(t)]);
    }
    if let Some(t) = q.until_us {
        w.push(format!("{alias}.start_us < ?"), [Sql::Integer(t)]);
    }
    if let Some(d) = q.call_direction {
        w.push(format!("{alias}.call_direction = ?"), [text(d.as_str())]);
    }
    if let Some(s) = q.call_status {
        w.push(format!("{alias}.call_status = ?"), [text(s.as_str())]);
    }
    if let Some(pattern) = q.search.as_deref().map(crate::api::list::contains_pattern) {
        let cols = [
            "source_name",
            "source_exten",
            "destination_name",
            "destination_exten",
            "requested_name",
            "requested_exten",
            "source_internal_name",
            "source_internal_exten",
            "destination_internal_exten",
        ];
        let ors: Vec<String> = cols.iter().map(|c| format!("{alias}.{c} LIKE ? ESCAPE '\\'")).collect();
        w.push(
            format!("({})", ors.join(" OR ")),
            cols.iter().map(|_| text(pattern.clone())),
        );
    }
    if let Some(n) = &q.number {
        let like = n.like();
        w.push(
            format!("({alias}.source_exten LIKE ? OR {alias}.destination_exten LIKE ?)"),
            [text(like.clone()), text(like)],
        );
    }
    for tag in &q.tags {
        w.push(
            format!(
                "EXISTS (SELECT 1 FROM call_log_participant p, json_each(p.tags) j
                 WHERE p.call_log_id = {alias}.id AND j.value = ?)"
            ),
            [text(tag.clone())],
        );
    }
    if !q.user_uuids.is_empty() {
        w.push(
            format!(
                "{alias}.id IN (SELECT p.call_log_id FROM call_log_participant p WHERE p.user_uuid IN ({}))",
                Where::placeholders(q.user_uuids.len())
            ),
            q.user_uuids.iter().map(|u| text(u.to_string())),
        );
    }
    if let Some(id) = q.from_id {
        w.push(format!("{alias}.id >= ?"), [Sql::Integer(id)]);
    }
    match q.recorded {
        Some(true) => w.push(
            format!("EXISTS (SELECT 1 FROM call_log_recording r WHERE r.call_log_id = {alias}.id)"),
            [],
        ),
        Some(false) => w.push(
            format!("NOT EXISTS (SELECT 1 FROM call_log_recording r WHERE r.call_log_id = {alias}.id)"),
            [],
        ),
        None => {}
    }
    if let Some(c) = &q.conversation_id {
        w.push(format!("{alias}.conversation_id = ?"), [text(c.clone())]);
    }
    w
}

/// `distinct=peer_exten`: of the matching logs, only the latest per (participant user, peer
/// extension), for "recent calls" lists.
fn distinct_clause(vis: &Visibility, q: &CdrQuery) -> Where {
    let inner = filter_clause(vis, q, "c2");
    let user = match vis.user {
        Some(u) => {
            let mut w = Where::default();
            w.push("p.user_uuid = ?", [text(u.to_string())]);
            w
        }
        None => Where::default(),
    };
    let clause = format!(
        "c.id IN (SELECT MAX(p.call_log_id) FROM call_log_participant p JOIN call_log c2 ON c2.id = p.call_log_id
          WHERE {} AND {} GROUP BY p.user_uuid, p.peer_exten)",
        inner.text(),
        user.text()
    );
    let mut w = Where::default();
    w.push(clause, inner.args.into_iter().chain(user.args));
    w
}

/// One page of call logs with upstream's `total` (in scope) and `filtered` counts.
pub fn search(conn: &Connection, vis: &Visibility, q: &CdrQuery) -> Result<(Vec<CallLog>, u64, u64), ApiError> {
    let scope = scope_clause(vis, "c");
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM call_log c WHERE {}", scope.text()),
        params_from_iter(scope.args.iter()),
        |r| r.get(0),
    )?;
    let mut w = filter_clause(vis, q, "c");
    if q.distinct_peer_exten {
        let d = distinct_clause(vis, q);
        w.sql.extend(d.sql);
        w.args.extend(d.args);
    }
    // No filter beyond the scope: a second count would only repeat the first.
    let filtered: i64 = if w.sql.len() == scope.sql.len() {
        total
    } else {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM call_log c WHERE {}", w.text()),
            params_from_iter(w.args.iter()),
            |r| r.get(0),
        )?
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM call_log c WHERE {} ORDER BY {} {}, c.id {} LIMIT {} OFFSET {}",
        w.text(),
        q.order,
        q.direction.sql(),
        q.direction.sql(),
        q.limit,
        q.offset
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut logs: Vec<CallLog> = stmt
        .query_map(params_from_iter(w.args.iter()), from_row)?
        .collect::<Result<_, _>>()?;
    attach(conn, &mut logs)?;
    Ok((logs, total.max(0) as u64, filtered.max(0) as u64))
}

/// One call log, if `vis` may see it.
pub fn get(conn: &Connection, vis: &Visibility, id: i64) -> Result<Option<CallLog>, ApiError> {
    let mut w = scope_clause(vis, "c");
    w.push("c.id = ?", [Sql::Integer(id)]);
    let log = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM call_log c WHERE {}", w.text()),
            params_from_iter(w.args.iter()),
            from_row,
        )
        .optional()?;
    let Some(log) = log else { return Ok(None) };
    let mut logs = [log];
    attach(conn, &mut logs)?;
    let [log] = logs;
    Ok(Some(log))
}

/// The recordings with a file (not deleted) of the call logs `vis` sees that match `q`'s
/// filters, without paging (`limit`, `offset`, `order`, `distinct` do not apply), and only of
/// `ids` when given. Each with its call log's id, by call log then start.
pub fn recordings_matching(
    conn: &Connection,
    vis: &Visibility,
    q: &CdrQuery,
    ids: Option<&[i64]>,
) -> Result<Vec<(i64, Recording)>, ApiError> {
    let mut w = filter_clause(vis, q, "c");
    if let Some(ids) = ids {
        // One JSON parameter, whatever the number of ids (SQLite caps bound variables).
        let list = serde_json::to_string(ids).map_err(|e| ApiError::Internal(e.to_string()))?;
        w.push("c.id IN (SELECT value FROM json_each(?))", [text(list)]);
    }
    let sql = format!(
        "SELECT c.id, r.uuid, r.start_us, r.end_us, r.path, r.deleted
         FROM call_log c JOIN call_log_recording r ON r.call_log_id = c.id
         WHERE {} AND r.deleted = 0 AND r.path IS NOT NULL ORDER BY c.id, r.start_us, r.uuid",
        w.text()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(w.args.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Recording {
                    uuid: uuid_of(r.get(1)?),
                    start_us: r.get(2)?,
                    end_us: r.get(3)?,
                    path: r.get(4)?,
                    deleted: r.get(5)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
