//! SQL of the call logs: replace by conversation, read one, search with upstream's filters.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::model::{
    CallDirection, CallLog, CallStatus, CdrQuery, NumberMatch, Participant, Recording, Role, Visibility,
};
use crate::api::error::ApiError;

/// `text` backwards, by character: the `*_exten_rev` columns, so "ends with" is a prefix range
/// on an index (migration 003 fills the rows stored before it the same way).
fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}

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
            call_status, source_exten_rev, destination_exten_rev)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
            ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
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
            reversed(&log.source_exten),
            log.destination_exten.as_deref().map(reversed),
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

/// How a search finds its rows.
///
/// `Indexed` (what the API runs) adds the candidate sets the indexes give (the trigram index
/// for `search` and `_12_`, the extension indexes for `number`) next to the LIKE filters, which
/// stay and check every candidate: results are LIKE's whatever an index returns. When such a set
/// or a user drives the query, the scope's tenant and time terms are kept off the
/// (tenant, start) index (unary `+`), which SQLite would otherwise walk for its `ORDER BY` while
/// testing every log of the tenant; and `total` comes from the per-tenant counter.
/// `Scan` is the plain LIKE form the tests compare against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Indexed,
    #[cfg_attr(not(test), allow(dead_code))]
    Scan,
}

/// `+` (no index) when `driven`, nothing otherwise.
fn no_index(driven: bool) -> &'static str {
    if driven {
        "+"
    } else {
        ""
    }
}

/// The scope of a request: its tenants, and the user of a per-user endpoint.
fn scope_clause(vis: &Visibility, alias: &str, driven: bool) -> Where {
    let mut w = Where::default();
    w.push(
        format!(
            "{}{alias}.tenant_uuid IN ({})",
            no_index(driven),
            Where::placeholders(vis.tenants.len())
        ),
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

/// An FTS5 phrase finding `term` as a substring through the trigram index: `None` when the
/// index cannot (under three characters, no trigram; a NUL would end the query text).
fn trigram_phrase(term: &str) -> Option<String> {
    (term.chars().count() >= 3 && !term.contains('\0')).then(|| format!("\"{}\"", term.replace('"', "\"\"")))
}

/// The smallest text above every text starting with `prefix` (ASCII digits here: the last one
/// plus one), for `>= prefix AND < upper` prefix ranges on an index.
fn prefix_upper(prefix: &str) -> Option<String> {
    let last = prefix.chars().last()?;
    let next = char::from_u32(u32::from(last) + 1)?;
    Some(format!("{}{next}", &prefix[..prefix.len() - last.len_utf8()]))
}

/// `number` through the extension indexes: ids of the logs whose source or destination
/// extension may match (`None`: no index helps, e.g. `_12_`).
fn number_candidates(n: &NumberMatch) -> Option<(String, Vec<Sql>)> {
    let either = |src: &str, dst: &str, args: Vec<Sql>| {
        let sql = format!("SELECT id FROM call_log WHERE {src} UNION SELECT id FROM call_log WHERE {dst}");
        (sql, [args.clone(), args].concat())
    };
    match n {
        NumberMatch::Exact(d) => Some(either(
            "source_exten = ?",
            "destination_exten = ?",
            vec![text(d.clone())],
        )),
        NumberMatch::StartsWith(d) => Some(either(
            "source_exten >= ? AND source_exten < ?",
            "destination_exten >= ? AND destination_exten < ?",
            vec![text(d.clone()), text(prefix_upper(d)?)],
        )),
        NumberMatch::EndsWith(d) => {
            let rev = reversed(d);
            Some(either(
                "source_exten_rev >= ? AND source_exten_rev < ?",
                "destination_exten_rev >= ? AND destination_exten_rev < ?",
                vec![text(rev.clone()), text(prefix_upper(&rev)?)],
            ))
        }
        NumberMatch::Contains(d) => trigram_phrase(d).map(|phrase| {
            (
                "SELECT rowid FROM call_log_search WHERE call_log_search MATCH ?".to_string(),
                vec![text(format!("{{source_exten destination_exten}} : {phrase}"))],
            )
        }),
    }
}

/// The `id IN (…)` sets the indexes give for `q`'s text filters (empty under `Plan::Scan`).
fn candidates(q: &CdrQuery, alias: &str, plan: Plan) -> Where {
    let mut w = Where::default();
    if plan == Plan::Scan {
        return w;
    }
    if let Some(phrase) = q.search.as_deref().and_then(trigram_phrase) {
        w.push(
            format!("{alias}.id IN (SELECT rowid FROM call_log_search WHERE call_log_search MATCH ?)"),
            [text(phrase)],
        );
    }
    if let Some((sql, args)) = q.number.as_ref().and_then(number_candidates) {
        w.push(format!("{alias}.id IN ({sql})"), args);
    }
    w
}

/// Scope plus every filter of `q`. `distinct` says the `distinct=peer_exten` set joins this
/// `WHERE` (and leads it).
fn filter_clause(vis: &Visibility, q: &CdrQuery, alias: &str, plan: Plan, distinct: bool) -> Where {
    let candidates = candidates(q, alias, plan);
    // A small set of ids leads: a user's calls, an index's candidates, one conversation.
    let driven = plan == Plan::Indexed
        && (vis.user.is_some()
            || !q.user_uuids.is_empty()
            || !candidates.sql.is_empty()
            || q.conversation_id.is_some()
            || distinct);
    let plus = no_index(driven);
    let mut w = scope_clause(vis, alias, driven);
    w.sql.extend(candidates.sql);
    w.args.extend(candidates.args);
    if let Some(t) = q.from_us {
        w.push(format!("{plus}{alias}.start_us >= ?"), [Sql::Integer(t)]);
    }
    if let Some(t) = q.until_us {
        w.push(format!("{plus}{alias}.start_us < ?"), [Sql::Integer(t)]);
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
        w.push(format!("{plus}{alias}.id >= ?"), [Sql::Integer(id)]);
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
fn distinct_clause(vis: &Visibility, q: &CdrQuery, plan: Plan) -> Where {
    let inner = filter_clause(vis, q, "c2", plan, false);
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

/// `total`: the logs in scope. Without a user, the per-tenant counters kept by triggers
/// (migration 003) answer without counting a million rows.
fn total(conn: &Connection, vis: &Visibility, plan: Plan) -> Result<i64, ApiError> {
    if vis.user.is_none() && plan == Plan::Indexed {
        return Ok(conn.query_row(
            &format!(
                "SELECT COALESCE(SUM(logs), 0) FROM call_log_tenant_count WHERE tenant_uuid IN ({})",
                Where::placeholders(vis.tenants.len())
            ),
            params_from_iter(vis.tenants.iter().map(|t| t.to_string())),
            |r| r.get(0),
        )?);
    }
    let scope = scope_clause(vis, "c", plan == Plan::Indexed && vis.user.is_some());
    Ok(conn.query_row(
        &format!("SELECT COUNT(*) FROM call_log c WHERE {}", scope.text()),
        params_from_iter(scope.args.iter()),
        |r| r.get(0),
    )?)
}

/// The `WHERE` of a search, and whether it filters beyond the scope.
fn search_clause(vis: &Visibility, q: &CdrQuery, plan: Plan) -> (Where, bool) {
    let mut w = filter_clause(vis, q, "c", plan, q.distinct_peer_exten);
    if q.distinct_peer_exten {
        let d = distinct_clause(vis, q, plan);
        w.sql.extend(d.sql);
        w.args.extend(d.args);
    }
    // Only the scope's own terms: the tenants, and the user of a per-user endpoint.
    let scope_terms = 1 + usize::from(vis.user.is_some());
    let filtered = w.sql.len() > scope_terms;
    (w, filtered)
}

/// One page of call logs with upstream's `total` (in scope) and `filtered` counts.
pub fn search(conn: &Connection, vis: &Visibility, q: &CdrQuery) -> Result<(Vec<CallLog>, u64, u64), ApiError> {
    search_with(conn, vis, q, Plan::Indexed)
}

fn search_with(
    conn: &Connection,
    vis: &Visibility,
    q: &CdrQuery,
    plan: Plan,
) -> Result<(Vec<CallLog>, u64, u64), ApiError> {
    let total = total(conn, vis, plan)?;
    let (w, has_filters) = search_clause(vis, q, plan);
    // No filter beyond the scope: a second count would only repeat the first.
    let filtered: i64 = if has_filters {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM call_log c WHERE {}", w.text()),
            params_from_iter(w.args.iter()),
            |r| r.get(0),
        )?
    } else {
        total
    };
    let sql = page_sql(q, &w);
    let mut stmt = conn.prepare(&sql)?;
    let mut logs: Vec<CallLog> = stmt
        .query_map(params_from_iter(w.args.iter()), from_row)?
        .collect::<Result<_, _>>()?;
    attach(conn, &mut logs)?;
    Ok((logs, total.max(0) as u64, filtered.max(0) as u64))
}

fn page_sql(q: &CdrQuery, w: &Where) -> String {
    format!(
        "SELECT {COLUMNS} FROM call_log c WHERE {} ORDER BY {} {}, c.id {} LIMIT {} OFFSET {}",
        w.text(),
        q.order,
        q.direction.sql(),
        q.direction.sql(),
        q.limit,
        q.offset
    )
}

/// One call log, if `vis` may see it.
pub fn get(conn: &Connection, vis: &Visibility, id: i64) -> Result<Option<CallLog>, ApiError> {
    let mut w = scope_clause(vis, "c", false);
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
    let mut w = filter_clause(vis, q, "c", Plan::Indexed, false);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite");
        drop(crate::store::Store::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("connection");
        (dir, conn)
    }

    const NAMES: &[&str] = &[
        "Élise Dupont",
        "élise dupont",
        "ÉLISE",
        "ELISE",
        "elise",
        "Zoë Ω",
        "ZOË",
        "100% sure",
        "100 percent",
        "a_b",
        "axb",
        "back\\slash",
        "O\"Brien",
        "Straße",
        "STRASSE",
        "Ça va",
        "ça",
        "Caller 99",
        "caller 990",
        "日本語テスト",
        "",
    ];
    const EXTENS: &[&str] = &[
        "1234", "91234", "12345", "0012340", "", "+33 1234", "12a34", "1_2", "1%2", "42",
    ];

    fn varied(i: usize, tenants: &[Uuid]) -> CallLog {
        let (n, e) = (NAMES.len(), EXTENS.len());
        let some = |k: usize, v: &str| (!i.is_multiple_of(k)).then(|| v.to_string());
        CallLog {
            tenant_uuid: tenants[i % tenants.len()],
            conversation_id: format!("1700000000.{i}"),
            // Ties on purpose: the order falls back to the id.
            start_us: 1_700_000_000_000_000 + (i as i64 / 3) * 1_000_000,
            source_name: NAMES[i % n].into(),
            source_exten: EXTENS[i % e].into(),
            destination_name: some(4, NAMES[(i * 3 + 1) % n]),
            destination_exten: some(5, EXTENS[(i * 7 + 2) % e]),
            requested_name: some(3, NAMES[(i * 5 + 2) % n]),
            requested_exten: some(6, EXTENS[(i * 3 + 1) % e]),
            source_internal_name: some(2, NAMES[(i * 11 + 3) % n]),
            source_internal_exten: some(7, EXTENS[(i * 5 + 4) % e]),
            destination_internal_exten: some(3, EXTENS[(i * 13 + 5) % e]),
            // Not searched: must never match.
            source_internal_context: Some("hidden-context".into()),
            ..CallLog::default()
        }
    }

    fn fill(conn: &mut Connection, logs: impl IntoIterator<Item = CallLog>) -> Vec<i64> {
        let tx = conn.transaction().expect("tx");
        let ids = logs
            .into_iter()
            .map(|l| replace(&tx, &l, 0).expect("replace"))
            .collect();
        tx.commit().expect("commit");
        ids
    }

    type Outcome = (Vec<i64>, u64, u64);

    fn run(conn: &Connection, vis: &Visibility, q: &CdrQuery, plan: Plan) -> Outcome {
        let (logs, total, filtered) = search_with(conn, vis, q, plan).expect("search");
        (logs.iter().map(|l| l.id).collect(), total, filtered)
    }

    fn query(text: &str) -> CdrQuery {
        CdrQuery::parse(text).expect("query")
    }

    /// Every query shape below, through the indexes and as a plain LIKE scan: same answers.
    fn compare(conn: &Connection, tenants: &[Uuid], users: &[Uuid], set: impl Fn(&mut CdrQuery)) -> usize {
        let scopes = [
            Visibility {
                tenants: tenants.to_vec(),
                user: None,
            },
            Visibility {
                tenants: tenants[..1].to_vec(),
                user: None,
            },
            Visibility {
                tenants: tenants.to_vec(),
                user: Some(users[0]),
            },
        ];
        let mut non_empty = 0;
        for vis in &scopes {
            for shape in [
                "limit=1000",
                "limit=3&offset=2&direction=asc",
                "order=source_name&limit=50",
            ] {
                let mut q = query(shape);
                set(&mut q);
                let indexed = run(conn, vis, &q, Plan::Indexed);
                assert_eq!(indexed, run(conn, vis, &q, Plan::Scan), "{q:?} {vis:?}");
                non_empty += usize::from(!indexed.0.is_empty());
            }
        }
        non_empty
    }

    fn world(conn: &mut Connection, n: usize) -> (Vec<Uuid>, Vec<Uuid>) {
        let tenants = vec![Uuid::new_v4(), Uuid::new_v4()];
        let users = vec![Uuid::new_v4(), Uuid::new_v4()];
        fill(
            conn,
            (0..n).map(|i| {
                let mut log = varied(i, &tenants);
                log.participants = vec![Participant {
                    user_uuid: users[i % 3 % 2],
                    line_id: None,
                    role: Role::Source,
                    tags: vec![],
                    answered: true,
                    requested: false,
                    peer_exten: String::new(),
                }];
                log
            }),
        );
        (tenants, users)
    }

    #[test]
    fn search_through_the_trigram_index_is_like() {
        let (_dir, mut conn) = db();
        let (tenants, users) = world(&mut conn, 300);
        let terms = [
            "eli",
            "ÉLI",
            "éli",
            "Élise",
            "ÉLISE",
            "lise d",
            "LISE DUP",
            "%",
            "0%",
            "100%",
            "0% s",
            "_",
            "a_b",
            "_b",
            "a_",
            "\\",
            "k\\s",
            "\\sl",
            "o\"b",
            "\"",
            "\"br",
            "zoë",
            "ZOË",
            "oë",
            "Ω",
            "ß",
            "straße",
            "STRASSE",
            "ça",
            "ÇA",
            "Ça va",
            "日本",
            "本語テ",
            "xyz",
            "12",
            "1",
            "1234",
            "123",
            "234",
            "caller 99",
            "ller 9",
            " ",
            "  ",
            "e d",
            "a%b",
            "1%2",
            "1_2",
            "%%%",
            "___",
            "ab\0c",
            "hidden",
            "context",
        ];
        let mut non_empty = 0;
        for term in terms {
            non_empty += compare(&conn, &tenants, &users, |q| q.search = Some(term.to_string()));
        }
        assert!(non_empty > 200, "too few terms match anything: {non_empty}");
        // Case folds for ASCII only, as LIKE: É is not é.
        let vis = Visibility {
            tenants: tenants.clone(),
            user: None,
        };
        let mut q = query("limit=1000");
        q.search = Some("ÉLI".into());
        let (logs, _, _) = search(&conn, &vis, &q).expect("search");
        assert!(!logs.is_empty());
        let searched = |l: &CallLog| {
            [
                Some(&l.source_name),
                l.destination_name.as_ref(),
                l.requested_name.as_ref(),
                l.source_internal_name.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|s| s.to_ascii_lowercase().contains("Éli"))
        };
        assert!(logs.iter().all(searched));
    }

    #[test]
    fn number_through_the_extension_indexes_is_like() {
        let (_dir, mut conn) = db();
        let (tenants, users) = world(&mut conn, 300);
        let mut non_empty = 0;
        for d in [
            "1", "2", "0", "9", "12", "34", "42", "00", "123", "234", "340", "1234", "91234", "12345", "33",
        ] {
            for n in [
                NumberMatch::Exact(d.into()),
                NumberMatch::StartsWith(d.into()),
                NumberMatch::EndsWith(d.into()),
                NumberMatch::Contains(d.into()),
            ] {
                non_empty += compare(&conn, &tenants, &users, |q| q.number = Some(n.clone()));
            }
        }
        assert!(non_empty > 100, "too few patterns match anything: {non_empty}");
        // Combined with the other filters.
        non_empty = 0;
        for extra in ["call_direction=internal", "from=2023-11-14T22:14:00Z", "recorded=false"] {
            let base = query(extra);
            non_empty += compare(&conn, &tenants, &users, |q| {
                q.number = Some(NumberMatch::EndsWith("34".into()));
                q.search = Some("lis".into());
                q.call_direction = base.call_direction;
                q.from_us = base.from_us;
                q.recorded = base.recorded;
            });
        }
        assert!(non_empty > 0);
    }

    #[test]
    fn reversed_is_by_character() {
        assert_eq!(reversed("1234"), "4321");
        assert_eq!(reversed("é1x"), "x1é");
        assert_eq!(prefix_upper("4321").as_deref(), Some("4322"));
        assert_eq!(prefix_upper("19").as_deref(), Some("1:"));
        assert_eq!(prefix_upper(""), None);
    }

    fn counts(conn: &Connection) -> Vec<(String, i64)> {
        let mut stmt = conn
            .prepare("SELECT tenant_uuid, logs FROM call_log_tenant_count WHERE logs > 0 ORDER BY tenant_uuid")
            .expect("prepare");
        let kept = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        let mut stmt = conn
            .prepare("SELECT tenant_uuid, COUNT(*) FROM call_log GROUP BY tenant_uuid ORDER BY tenant_uuid")
            .expect("prepare");
        let counted = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        assert_eq!(kept, counted);
        kept
    }

    fn matches(conn: &Connection, phrase: &str) -> Vec<i64> {
        let mut stmt = conn
            .prepare("SELECT rowid FROM call_log_search WHERE call_log_search MATCH ?1 ORDER BY rowid")
            .expect("prepare");
        stmt.query_map([phrase], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn counters_and_search_index_follow_every_write() {
        let (_dir, mut conn) = db();
        let tenants = [Uuid::new_v4(), Uuid::new_v4()];
        let ids = fill(&mut conn, (0..10).map(|i| varied(i, &tenants)));
        assert_eq!(counts(&conn).iter().map(|c| c.1).sum::<i64>(), 10);
        let vis = Visibility {
            tenants: tenants[..1].to_vec(),
            user: None,
        };
        let total = |conn: &Connection| run(conn, &vis, &query("limit=1"), Plan::Indexed).1;
        assert_eq!(total(&conn), 5);

        // Generated again: replaced, not added; the index forgets the old text.
        let mut again = varied(0, &tenants);
        again.source_name = "Quentin Renamed".into();
        let new_id = fill(&mut conn, [again])[0];
        assert_eq!(total(&conn), 5);
        assert_eq!(matches(&conn, "\"renamed\""), vec![new_id]);
        let old = matches(&conn, "{source_name} : \"Élise Dupont\"");
        assert!(!old.contains(&ids[0]) && !old.contains(&new_id), "{old:?}");

        // Updated in place (by hand): the index and the counters follow.
        conn.execute(
            "UPDATE call_log SET source_name = 'Hand Edited', tenant_uuid = ?1 WHERE id = ?2",
            params![tenants[1].to_string(), new_id],
        )
        .expect("update");
        assert_eq!(matches(&conn, "\"hand edit\""), vec![new_id]);
        assert!(matches(&conn, "\"renamed\"").is_empty());
        assert_eq!(total(&conn), 4);
        counts(&conn);

        // Retention and "delete all".
        let tx = conn.transaction().expect("tx");
        assert_eq!(delete_before(&tx, Some(1_700_000_002_000_000)).expect("delete"), 6);
        tx.commit().expect("commit");
        assert_eq!(counts(&conn).iter().map(|c| c.1).sum::<i64>(), 4);
        assert!(matches(&conn, "\"hand edit\"").is_empty());
        let tx = conn.transaction().expect("tx");
        delete_before(&tx, None).expect("delete");
        tx.commit().expect("commit");
        assert!(counts(&conn).is_empty());
        assert_eq!(total(&conn), 0);
        assert!(matches(&conn, "\"lis\"").is_empty());
    }

    fn plan(conn: &Connection, sql: &str, args: &[Sql]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("prepare");
        let lines: Vec<String> = stmt
            .query_map(params_from_iter(args.iter()), |r| r.get(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("rows");
        lines.join("\n")
    }

    /// The page and the `filtered` count of `q` as SQLite plans them.
    fn plans(conn: &Connection, vis: &Visibility, q: &str) -> (String, String) {
        let q = query(q);
        let (w, _) = search_clause(vis, &q, Plan::Indexed);
        let count = format!("SELECT COUNT(*) FROM call_log c WHERE {}", w.text());
        (plan(conn, &page_sql(&q, &w), &w.args), plan(conn, &count, &w.args))
    }

    #[test]
    fn main_queries_use_the_indexes() {
        let (_dir, conn) = db();
        let tenant = Visibility {
            tenants: vec![Uuid::new_v4()],
            user: None,
        };
        let user = Visibility {
            tenants: tenant.tenants.clone(),
            user: Some(Uuid::new_v4()),
        };
        let no_scan = |p: &str| !p.lines().any(|l| l == "SCAN c" || l.starts_with("SCAN c "));

        // A page: the (tenant, start) index in order, no sort, nothing counted.
        let (page, _) = plans(&conn, &tenant, "limit=100");
        assert!(
            page.contains("call_log_tenant_start (tenant_uuid=?)") && !page.contains("TEMP B-TREE"),
            "{page}"
        );
        let (window, count) = plans(&conn, &tenant, "from=2023-11-15T00:00:00Z&until=2023-11-15T01:00:00Z");
        for p in [&window, &count] {
            assert!(
                p.contains("call_log_tenant_start (tenant_uuid=? AND start_us>? AND start_us<?)"),
                "{p}"
            );
        }
        let total = format!(
            "SELECT COALESCE(SUM(logs), 0) FROM call_log_tenant_count WHERE tenant_uuid IN ({})",
            Where::placeholders(1)
        );
        assert!(plan(&conn, &total, &[text("t")]).contains("PRIMARY KEY"));

        // Led by a set of ids, each log then by its rowid.
        for (vis, q, index) in [
            (&user, "limit=100", "call_log_participant_user (user_uuid=?)"),
            (
                &user,
                "distinct=peer_exten&limit=20",
                "call_log_participant_user (user_uuid=?)",
            ),
            (
                &tenant,
                "number=_1042",
                "call_log_source_exten_rev (source_exten_rev>? AND source_exten_rev<?)",
            ),
            (
                &tenant,
                "number=_1042",
                "call_log_destination_exten_rev (destination_exten_rev>? AND",
            ),
            (
                &tenant,
                "number=1042_",
                "call_log_source_exten (source_exten>? AND source_exten<?)",
            ),
            (
                &tenant,
                "number=1042",
                "call_log_destination_exten (destination_exten=?)",
            ),
            (&tenant, "number=_104_", "call_log_search VIRTUAL TABLE"),
            (&tenant, "search=caller%2099", "call_log_search VIRTUAL TABLE"),
            (
                &tenant,
                "search=caller%2099&from=2023-11-15T00:00:00Z",
                "call_log_search VIRTUAL TABLE",
            ),
        ] {
            let (page, count) = plans(&conn, vis, q);
            for p in [&page, &count] {
                assert!(p.contains(index), "{q}: {p}");
                assert!(p.contains("SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"), "{q}: {p}");
                assert!(no_scan(p), "{q}: {p}");
            }
        }
    }
}
