//! Rooms in SQL (`chat_room`, `chat_room_user`).

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::model::{NewRoom, Room, RoomUser};
use crate::api::error::ApiError;

/// A uuid column; a malformed one is a broken store, reported as such.
pub(crate) fn uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(idx)?;
    Uuid::parse_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

/// The first member that is not a user of the room's tenant in auth, by index.
pub fn unknown_member(conn: &Connection, room: &NewRoom) -> Result<Option<usize>, ApiError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM auth_user WHERE uuid = ?1 AND tenant_uuid = ?2")?;
    for (i, user) in room.users.iter().enumerate() {
        let found = stmt
            .query_row(params![user.uuid.to_string(), room.tenant_uuid.to_string()], |_| Ok(()))
            .optional()?;
        if found.is_none() {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The room of the tenant whose members are exactly those of `key`.
pub fn find_by_members(conn: &Connection, tenant: Uuid, key: &str) -> Result<Option<Room>, ApiError> {
    let id: Option<i64> = conn
        .query_row(
            "SELECT id FROM chat_room WHERE tenant_uuid = ?1 AND members_key = ?2",
            params![tenant.to_string(), key],
            |r| r.get(0),
        )
        .optional()?;
    match id {
        Some(id) => Ok(Some(load(conn, id)?)),
        None => Ok(None),
    }
}

pub fn insert(conn: &Connection, room: &NewRoom, now_us: i64) -> Result<Room, ApiError> {
    let uuid = Uuid::new_v4();
    conn.execute(
        "INSERT INTO chat_room (uuid, tenant_uuid, name, members_key, created_us) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            uuid.to_string(),
            room.tenant_uuid.to_string(),
            room.name,
            room.members_key(),
            now_us
        ],
    )?;
    let id = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO chat_room_user (room_id, user_uuid, tenant_uuid, wazo_uuid, position) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (position, u) in room.users.iter().enumerate() {
        stmt.execute(params![
            id,
            u.uuid.to_string(),
            u.tenant_uuid.to_string(),
            u.wazo_uuid.to_string(),
            position as i64
        ])?;
    }
    Ok(Room {
        uuid,
        tenant_uuid: room.tenant_uuid,
        name: room.name.clone(),
        users: room.users.clone(),
    })
}

fn members(conn: &Connection, room_id: i64) -> Result<Vec<RoomUser>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_uuid, tenant_uuid, wazo_uuid FROM chat_room_user WHERE room_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([room_id], |r| {
        Ok(RoomUser {
            uuid: uuid_at(r, 0)?,
            tenant_uuid: uuid_at(r, 1)?,
            wazo_uuid: uuid_at(r, 2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn load(conn: &Connection, id: i64) -> Result<Room, ApiError> {
    let (uuid, tenant_uuid, name) = conn.query_row(
        "SELECT uuid, tenant_uuid, name FROM chat_room WHERE id = ?1",
        [id],
        |r| Ok((uuid_at(r, 0)?, uuid_at(r, 1)?, r.get::<_, Option<String>>(2)?)),
    )?;
    Ok(Room {
        uuid,
        tenant_uuid,
        name,
        users: members(conn, id)?,
    })
}

/// The tenant's rooms having every one of `users` as a member, oldest first.
pub fn list_having(conn: &Connection, tenant: Uuid, users: &[Uuid]) -> Result<Vec<Room>, ApiError> {
    let Some(first) = users.first() else {
        return Ok(Vec::new());
    };
    // Start from the first user's rooms (an index range), then require each other user.
    let mut sql = String::from(
        "SELECT r.id FROM chat_room_user ru JOIN chat_room r ON r.id = ru.room_id
         WHERE ru.user_uuid = ?1 AND r.tenant_uuid = ?2",
    );
    let mut args = vec![first.to_string(), tenant.to_string()];
    for other in &users[1..] {
        args.push(other.to_string());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM chat_room_user o WHERE o.room_id = r.id AND o.user_uuid = ?{})",
            args.len()
        ));
    }
    sql.push_str(" ORDER BY r.id");
    let mut stmt = conn.prepare(&sql)?;
    let ids: Vec<i64> = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.into_iter().map(|id| load(conn, id)).collect()
}

/// A room the user may use: of the tenant, with the user as a member. Its id and members.
pub fn member_room(
    conn: &Connection,
    tenant: Uuid,
    room_uuid: Uuid,
    user: Uuid,
) -> Result<Option<(i64, Vec<Uuid>)>, ApiError> {
    let id: Option<i64> = conn
        .query_row(
            "SELECT r.id FROM chat_room r JOIN chat_room_user ru ON ru.room_id = r.id
             WHERE r.uuid = ?1 AND r.tenant_uuid = ?2 AND ru.user_uuid = ?3",
            params![room_uuid.to_string(), tenant.to_string(), user.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    let mut stmt = conn.prepare_cached("SELECT user_uuid FROM chat_room_user WHERE room_id = ?1 ORDER BY position")?;
    let users = stmt.query_map([id], |r| uuid_at(r, 0))?.collect::<Result<_, _>>()?;
    Ok(Some((id, users)))
}
