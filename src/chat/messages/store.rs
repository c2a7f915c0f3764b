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

/// A list's `FROM` source, its `WHERE` conditions, and their arguments.
struct Parts {
    from: String,
    conds: String,
    args: Vec<SqlValue>,
}

fn parts(among: Among, q: &MessageQuery) -> Parts {
    let mut args: Vec<SqlValue> = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    let words = q.search.as_deref().unwrap_or_default();
    let fts = match_expression(words);
    let rooms_of_user = |args: &mut Vec<SqlValue>, user: Uuid, tenant: Uuid| {
        args.push(SqlValue::Text(user.to_string()));
        args.push(SqlValue::Text(tenant.to_string()));
        format!(
            "SELECT ru.room_id FROM chat_room_user ru JOIN chat_room rr ON rr.id = ru.room_id
             WHERE ru.user_uuid = ?{} AND rr.tenant_uuid = ?{}",
            args.len() - 1,
            args.len()
        )
    };
    // The trigram hits drive the query when there are any and the list is not the few
    // latest messages: a rare word then costs its hits, not a walk of every message.
    let from = match (&fts, q.distinct_room) {
        (Some(expr), false) => {
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
        Among::Room(id) => {
            args.push(SqlValue::Integer(id));
            conds.push(format!("m.room_id = ?{}", args.len()));
        }
        Among::UserRooms { user, tenant } if q.distinct_room => {
            let rooms = rooms_of_user(&mut args, user, tenant);
            conds.push(format!(
                "m.id IN (SELECT (SELECT l.id FROM chat_message l WHERE l.room_id = x.room_id
                                  ORDER BY l.created_us DESC, l.id DESC LIMIT 1)
                          FROM ({rooms}) x)"
            ));
        }
        Among::UserRooms { user, tenant } => {
            let rooms = rooms_of_user(&mut args, user, tenant);
            conds.push(format!("m.room_id IN ({rooms})"));
        }
    }
    if let (Some(expr), true) = (&fts, q.distinct_room) {
        // A handful of latest messages: each checked against the index by rowid.
        args.push(SqlValue::Text(expr.clone()));
        conds.push(format!(
            "EXISTS (SELECT 1 FROM chat_message_search s WHERE chat_message_search MATCH ?{} AND s.rowid = m.id)",
            args.len()
        ));
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
/// list, so it is the [`total`]).
pub fn list(conn: &Connection, among: Among, q: &MessageQuery) -> Result<(Vec<Message>, Option<u64>), ApiError> {
    let Parts { from, conds, args } = parts(among, q);
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

    #[test]
    fn match_expression_quotes_and_skips_short_words() {
        let words: Vec<String> = ["ab", "héllo", "say\"x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(match_expression(&words).as_deref(), Some("\"héllo\" AND \"say\"\"x\""));
        assert_eq!(match_expression(&["ab".to_string()]), None);
    }
}
