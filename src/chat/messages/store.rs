//! Messages in SQL (`chat_message`, its trigram index `chat_message_search`).

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, Row};
use uuid::Uuid;

use super::model::{Message, MessageQuery, NewMessage, RoomRef};
use crate::api::error::ApiError;
use crate::api::list::contains_pattern;
use crate::chat::rooms::store::uuid_at;
use crate::chat::time::created_at;

/// Who posts, and where.
pub struct Author {
    pub room_id: i64,
    pub room_uuid: Uuid,
    pub user_uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub wazo_uuid: Uuid,
}

pub fn insert(conn: &Connection, author: &Author, message: NewMessage, now_us: i64) -> Result<Message, ApiError> {
    let uuid = Uuid::new_v4();
    conn.prepare_cached(
        "INSERT INTO chat_message (uuid, room_id, content, alias, user_uuid, tenant_uuid, wazo_uuid, created_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        uuid.to_string(),
        author.room_id,
        message.content,
        message.alias,
        author.user_uuid.to_string(),
        author.tenant_uuid.to_string(),
        author.wazo_uuid.to_string(),
        now_us
    ])?;
    Ok(Message {
        uuid,
        content: message.content,
        alias: message.alias,
        user_uuid: author.user_uuid,
        tenant_uuid: author.tenant_uuid,
        wazo_uuid: author.wazo_uuid,
        created_at: created_at(now_us),
        room: RoomRef { uuid: author.room_uuid },
    })
}

/// Which messages a list covers.
#[derive(Debug, Clone, Copy)]
pub enum Among {
    /// One room (the caller's membership already checked).
    Room(i64),
    /// Every room of this user in this tenant.
    UserRooms { user: Uuid, tenant: Uuid },
}

const COLUMNS: &str = "m.uuid, m.content, m.alias, m.user_uuid, m.tenant_uuid, m.wazo_uuid, m.created_us, r.uuid";

fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        uuid: uuid_at(row, 0)?,
        content: row.get(1)?,
        alias: row.get(2)?,
        user_uuid: uuid_at(row, 3)?,
        tenant_uuid: uuid_at(row, 4)?,
        wazo_uuid: uuid_at(row, 5)?,
        created_at: created_at(row.get(6)?),
        room: RoomRef { uuid: uuid_at(row, 7)? },
    })
}

/// The FTS5 query for the words the trigram index can answer (3 characters and more):
/// each a quoted phrase (so no word is read as query syntax), all required.
fn match_expression(words: &[String]) -> Option<String> {
    let phrases: Vec<String> = words
        .iter()
        .filter(|w| w.chars().count() >= 3)
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" AND "))
}

/// How a search with indexed words finds its messages; both select the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The trigram hits over every room drive, each kept when in the listed rooms: cheap
    /// when the words are rare, whatever the rooms hold.
    Hits,
    /// The listed rooms' messages are walked and each checked: cheap when the words are
    /// common (the hits then outnumber what the rooms hold) and the rooms small.
    Walk,
}

/// How many of the latest messages [`choose`] reads to guess how common the words are.
const SAMPLE: u32 = 200;
/// Measured at 1M messages (benches/chatd.rs): walking costs about 4 times as much a message
/// as the hits plan a hit (a row read out of order against a hit read in rowid order) ...
const WALK_PER_HIT: f64 = 4.0;
/// ... and a message the rowid check of the index has to answer (not plain ASCII) about 40
/// times a plain one (the index is opened anew for each).
const INDEX_CHECK_PER_ROW: f64 = 40.0;

/// Whether a word's matches are exactly `LIKE`'s: the trigram index folds ASCII letters
/// to lower case and nothing else in plain ASCII text, as `LIKE` compares.
fn plain_ascii(word: &str) -> bool {
    word.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The walk's check of one message against the indexed words: plain ASCII text is matched
/// with `LIKE` (the index's folding there is ASCII case folding, which `LIKE` does); other
/// text (accents, other cases, a NUL that `length` stops at) is asked of the index by rowid.
fn walk_check(words: &[String], expr: &str, args: &mut Vec<SqlValue>) -> String {
    let mut likes = Vec::new();
    for word in words.iter().filter(|w| w.chars().count() >= 3) {
        args.push(SqlValue::Text(contains_pattern(word)));
        likes.push(format!("m.content LIKE ?{} ESCAPE '\\'", args.len()));
    }
    args.push(SqlValue::Text(expr.to_string()));
    format!(
        "CASE WHEN octet_length(m.content) = length(m.content) THEN {} ELSE EXISTS (SELECT 1 FROM chat_message_search s WHERE chat_message_search MATCH ?{} AND s.rowid = m.id) END",
        likes.join(" AND "),
        args.len()
    )
}

fn rooms_of_user(args: &mut Vec<SqlValue>, user: Uuid, tenant: Uuid) -> String {
    args.push(SqlValue::Text(user.to_string()));
    args.push(SqlValue::Text(tenant.to_string()));
    format!(
        "SELECT ru.room_id FROM chat_room_user ru JOIN chat_room rr ON rr.id = ru.room_id
         WHERE ru.user_uuid = ?{} AND rr.tenant_uuid = ?{}",
        args.len() - 1,
        args.len()
    )
}

/// The condition keeping the messages of the listed rooms.
fn in_rooms(among: Among, args: &mut Vec<SqlValue>) -> String {
    match among {
        Among::Room(id) => {
            args.push(SqlValue::Integer(id));
            format!("m.room_id = ?{}", args.len())
        }
        Among::UserRooms { user, tenant } => format!("m.room_id IN ({})", rooms_of_user(args, user, tenant)),
    }
}

/// The cheaper plan for this list. The rooms' message total is known (their counters); the
/// hits over every room are guessed from the latest messages stored (what share matches)
/// scaled to every message, so a rare word costs a sample of [`SAMPLE`] rows, not a count
/// of its hits. A wrong guess costs time only: both plans select the same rows.
pub fn choose(conn: &Connection, among: Among, q: &MessageQuery) -> Result<Plan, ApiError> {
    let words = q.search.as_deref().unwrap_or_default();
    let Some(expr) = match_expression(words) else {
        return Ok(Plan::Hits);
    };
    if q.distinct_room || !words.iter().all(|w| plain_ascii(w)) {
        return Ok(Plan::Hits);
    }
    let total = total(conn, among)? as f64;
    // Ids are never reused below the highest: an upper bound of the messages stored.
    let stored: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM chat_message")?
        .query_row([], |r| r.get(0))?;
    if total * WALK_PER_HIT >= stored as f64 {
        // Even if every message matched, walking would cost more.
        return Ok(Plan::Hits);
    }
    let mut args = Vec::new();
    let check = walk_check(words, &expr, &mut args);
    // The latest messages of every room: a few adjacent pages, so the guess costs little
    // next to a rare word's search, and the share is of every room as the hits are. The
    // plain rows are checked only with LIKE (the ELSE branch is never taken for them).
    let (read, plain, matched): (i64, i64, i64) = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*), COALESCE(SUM(octet_length(m.content) = length(m.content)), 0),
                    COALESCE(SUM(octet_length(m.content) = length(m.content) AND ({check})), 0)
             FROM (SELECT id, content FROM chat_message ORDER BY id DESC LIMIT {SAMPLE}) m"
        ))?
        .query_row(params_from_iter(args.iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if read == 0 || plain == 0 {
        return Ok(Plan::Hits);
    }
    let hits = matched as f64 / plain as f64 * stored as f64;
    let others = (read - plain) as f64 / read as f64;
    let walk = total * WALK_PER_HIT * (1.0 + others * INDEX_CHECK_PER_ROW);
    Ok(if walk < hits { Plan::Walk } else { Plan::Hits })
}

/// A list's `FROM` source, its `WHERE` conditions, and their arguments.
struct Parts {
    from: String,
    conds: String,
    args: Vec<SqlValue>,
}

fn parts(among: Among, q: &MessageQuery, plan: Plan) -> Parts {
    let mut args: Vec<SqlValue> = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    let words = q.search.as_deref().unwrap_or_default();
    let fts = match_expression(words);
    // The trigram hits drive the query when there are any, the list is not the few latest
    // messages and the plan says so: a rare word then costs its hits, not a walk of every
    // message.
    let from = match (&fts, q.distinct_room, plan) {
        (Some(expr), false, Plan::Hits) => {
            args.push(SqlValue::Text(expr.clone()));
            format!(
                "(SELECT rowid AS id FROM chat_message_search WHERE chat_message_search MATCH ?{}) hits
                 CROSS JOIN chat_message m ON m.id = hits.id",
                args.len()
            )
        }
        _ => "chat_message m".to_string(),
    };
    match among {
        Among::UserRooms { user, tenant } if q.distinct_room => {
            let rooms = rooms_of_user(&mut args, user, tenant);
            conds.push(format!(
                "m.id IN (SELECT (SELECT l.id FROM chat_message l WHERE l.room_id = x.room_id
                                  ORDER BY l.created_us DESC, l.id DESC LIMIT 1)
                          FROM ({rooms}) x)"
            ));
        }
        _ => conds.push(in_rooms(among, &mut args)),
    }
    match (&fts, q.distinct_room, plan) {
        (Some(expr), true, _) => {
            // A handful of latest messages: each checked against the index by rowid.
            args.push(SqlValue::Text(expr.clone()));
            conds.push(format!(
                "EXISTS (SELECT 1 FROM chat_message_search s WHERE chat_message_search MATCH ?{} AND s.rowid = m.id)",
                args.len()
            ));
        }
        (Some(expr), false, Plan::Walk) => conds.push(walk_check(words, expr, &mut args)),
        _ => {}
    }
    // Words too short for trigrams: a plain LIKE over the messages the rest selected.
    for word in words.iter().filter(|w| w.chars().count() < 3) {
        args.push(SqlValue::Text(contains_pattern(word)));
        conds.push(format!("m.content LIKE ?{} ESCAPE '\\'", args.len()));
    }
    if let Some(from_us) = q.from_us {
        args.push(SqlValue::Integer(from_us));
        conds.push(format!("m.created_us >= ?{}", args.len()));
    }
    Parts {
        from,
        conds: conds.join(" AND "),
        args,
    }
}

/// One page of messages, and how many the filters select (`None`: nothing narrows the
/// list, so it is the [`total`]); the plan is the cheaper one ([`choose`]).
pub fn list(conn: &Connection, among: Among, q: &MessageQuery) -> Result<(Vec<Message>, Option<u64>), ApiError> {
    let plan = choose(conn, among, q)?;
    list_with(conn, among, q, plan)
}

/// [`list`] with the plan given.
pub fn list_with(
    conn: &Connection,
    among: Among,
    q: &MessageQuery,
    plan: Plan,
) -> Result<(Vec<Message>, Option<u64>), ApiError> {
    let Parts { from, conds, args } = parts(among, q, plan);
    let dir = q.direction.sql();
    let limit = match q.limit {
        Some(l) => format!(" LIMIT {l} OFFSET {}", q.offset),
        None => format!(" LIMIT -1 OFFSET {}", q.offset),
    };
    let join = format!("FROM {from} JOIN chat_room r ON r.id = m.room_id WHERE {conds}");
    let order = format!("ORDER BY m.created_us {dir}, m.id {dir}{limit}");
    if !q.narrows() {
        // The room's index gives the page in order and stops at the limit.
        let items = conn
            .prepare_cached(&format!("SELECT {COLUMNS} {join} {order}"))?
            .query_map(params_from_iter(args.iter()), message)?
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((items, None));
    }
    // Every match is visited to sort it anyway: the count rides along (one pass over the
    // search hits instead of a second query doing it all again).
    let rows = conn
        .prepare_cached(&format!("SELECT {COLUMNS}, COUNT(*) OVER () {join} {order}"))?
        .query_map(params_from_iter(args.iter()), |r| {
            Ok((message(r)?, r.get::<_, i64>(8)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let filtered = match rows.first() {
        Some((_, n)) => *n,
        // A page past the end has no row to carry the count.
        None if q.offset > 0 => conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM {from} WHERE {conds}"))?
            .query_row(params_from_iter(args.iter()), |r| r.get::<_, i64>(0))?,
        None => 0,
    };
    let items = rows.into_iter().map(|(m, _)| m).collect();
    Ok((items, Some(filtered.max(0) as u64)))
}

/// Every message the list covers, unfiltered: the rooms' counters, not a count.
pub fn total(conn: &Connection, among: Among) -> Result<u64, ApiError> {
    let n: i64 = match among {
        Among::Room(id) => conn.query_row("SELECT message_count FROM chat_room WHERE id = ?1", [id], |r| r.get(0))?,
        Among::UserRooms { user, tenant } => conn.query_row(
            "SELECT COALESCE(SUM(r.message_count), 0) FROM chat_room_user ru JOIN chat_room r ON r.id = ru.room_id
             WHERE ru.user_uuid = ?1 AND r.tenant_uuid = ?2",
            params![user.to_string(), tenant.to_string()],
            |r| r.get(0),
        )?,
    };
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::messages::model::ListKind;

    #[test]
    fn match_expression_quotes_and_skips_short_words() {
        let words: Vec<String> = ["ab", "héllo", "say\"x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(match_expression(&words).as_deref(), Some("\"héllo\" AND \"say\"\"x\""));
        assert_eq!(match_expression(&["ab".to_string()]), None);
    }

    /// A store with one user in two rooms of a tenant and a third room without them.
    fn store(dir: &std::path::Path) -> (Connection, Uuid, Uuid, [i64; 3]) {
        let path = dir.join("t.sqlite");
        drop(crate::store::Store::open(&path).expect("store"));
        let conn = Connection::open(&path).expect("open");
        let (tenant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let mut rooms = [0; 3];
        for (i, room) in rooms.iter_mut().enumerate() {
            conn.execute(
                "INSERT INTO chat_room (uuid, tenant_uuid, members_key, created_us) VALUES (?1, ?2, ?3, 0)",
                params![Uuid::new_v4().to_string(), tenant.to_string(), format!("k{i}")],
            )
            .expect("room");
            *room = conn.last_insert_rowid();
            let member = if i < 2 { user } else { Uuid::new_v4() };
            conn.execute(
                "INSERT INTO chat_room_user (room_id, user_uuid, tenant_uuid, wazo_uuid, position) VALUES (?1, ?2, ?3, ?3, 0)",
                params![*room, member.to_string(), tenant.to_string()],
            )
            .expect("member");
        }
        (conn, tenant, user, rooms)
    }

    fn post(conn: &Connection, room_id: i64, user: Uuid, tenant: Uuid, text: &str, at: i64) {
        let author = Author {
            room_id,
            room_uuid: Uuid::nil(),
            user_uuid: user,
            tenant_uuid: tenant,
            wazo_uuid: tenant,
        };
        let message = NewMessage {
            content: text.to_string(),
            alias: None,
        };
        insert(conn, &author, message, at).expect("insert");
    }

    #[test]
    fn both_plans_select_the_same_messages() {
        let dir = tempfile::tempdir().expect("dir");
        let (conn, tenant, user, rooms) = store(dir.path());
        // Plain ASCII in any case, accents both ways, LIKE's own characters, a NUL.
        let texts = [
            "Hello World",
            "hello there",
            "HELLO again",
            "héllo accented",
            "HÉLLO accented upper",
            "Ecole and école",
            "École",
            "100% sure_thing",
            "1000 sure thing",
            "a\0hello after nul",
            "nothing here",
            "say \"quoted\" word",
            "worldwide hello",
        ];
        for (i, text) in texts.iter().cycle().take(60).enumerate() {
            // Times out of id order, some equal, so the order's tie-break counts.
            post(&conn, rooms[i % 3], user, tenant, text, 1_000 + ((i * 7) % 13) as i64);
        }
        let searches = [
            "search=hello",
            "search=HeLLo&limit=3",
            "search=hello&limit=2&offset=4&order=created_at&direction=asc",
            "search=hello&offset=500",
            "search=ecole",
            "search=%C3%89COLE",
            "search=100%25",
            "search=0%25%20sure",
            "search=e_t",
            "search=hello%20wor",
            "search=hello%20he",
            "search=%22quoted%22",
            "search=llo&from_date=1970-01-01T00:00:00.001005%2B00:00",
            "search=nothing%20matches",
        ];
        let amongs = [
            Among::UserRooms { user, tenant },
            Among::Room(rooms[0]),
            Among::Room(rooms[2]),
        ];
        for among in amongs {
            for search in searches {
                for kind in [ListKind::User, ListKind::Room] {
                    let Ok(q) = MessageQuery::parse(search, kind) else {
                        continue;
                    };
                    let hits = list_with(&conn, among, &q, Plan::Hits).expect("hits");
                    let walk = list_with(&conn, among, &q, Plan::Walk).expect("walk");
                    let uuids = |l: &(Vec<Message>, Option<u64>)| l.0.iter().map(|m| m.uuid).collect::<Vec<_>>();
                    assert_eq!(uuids(&hits), uuids(&walk), "{search} in {among:?}");
                    assert_eq!(hits.1, walk.1, "{search} in {among:?}");
                }
            }
        }
        // The searches do find things (the comparison is not between two empty lists).
        let q = MessageQuery::parse("search=hello", ListKind::User).expect("query");
        let (_, filtered) = list_with(&conn, Among::UserRooms { user, tenant }, &q, Plan::Walk).expect("walk");
        assert!(filtered.unwrap_or(0) > 10, "{filtered:?}");
    }

    #[test]
    fn common_words_in_small_rooms_walk_them_and_rare_words_take_the_hits() {
        let dir = tempfile::tempdir().expect("dir");
        let (conn, tenant, user, rooms) = store(dir.path());
        // The user's rooms hold 20 messages of 1,000; "common" is in every one, "rare" once.
        for i in 0..1_000usize {
            let room_id = if i % 50 == 0 { rooms[i % 2] } else { rooms[2] };
            let text = if i == 500 { "common rare" } else { "common" };
            post(&conn, room_id, user, tenant, text, i as i64);
        }
        let among = Among::UserRooms { user, tenant };
        let plan = |search: &str| {
            choose(&conn, among, &MessageQuery::parse(search, ListKind::User).expect("q")).expect("plan")
        };
        assert_eq!(plan("search=common"), Plan::Walk);
        assert_eq!(plan("search=rare"), Plan::Hits);
        // Words the walk cannot match with LIKE, and lists that are not a walk, take the hits.
        assert_eq!(plan("search=c%C3%B4mmon"), Plan::Hits);
        assert_eq!(plan("search=common&distinct=room_uuid"), Plan::Hits);
        assert_eq!(plan("search=co"), Plan::Hits);
        // The whole store is the user's: walking it all never pays.
        let (_, filtered) = list(
            &conn,
            among,
            &MessageQuery::parse("search=common", ListKind::User).expect("q"),
        )
        .expect("list");
        assert_eq!(filtered, Some(20));
        assert_eq!(
            choose(
                &conn,
                Among::Room(rooms[2]),
                &MessageQuery::parse("search=common", ListKind::Room).expect("q")
            )
            .expect("plan"),
            Plan::Hits
        );
    }
}
