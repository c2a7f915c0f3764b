//! The room object, the creation body and its rules, and the list query.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::api::error::ApiError;

/// The fewest and most members a room may have, the creator included (upstream's bounds).
pub const MIN_USERS: usize = 2;
pub const MAX_USERS: usize = 100;

/// `POST /users/me/rooms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub users: Vec<RoomUserBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomUserBody {
    pub uuid: Uuid,
    #[serde(default)]
    pub tenant_uuid: Option<Uuid>,
    #[serde(default)]
    pub wazo_uuid: Option<Uuid>,
}

/// A member as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomUser {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub wazo_uuid: Uuid,
}

/// Upstream's room object.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub name: Option<String>,
    pub users: Vec<RoomUser>,
}

/// A room to create once the body passed every rule that needs no database.
#[derive(Debug)]
pub struct NewRoom {
    pub tenant_uuid: Uuid,
    pub name: Option<String>,
    pub users: Vec<RoomUser>,
    /// Index in the request's `users` of each member the request named (the creator,
    /// when added, has none): errors found in the store name that index.
    pub positions: Vec<Option<usize>>,
}

/// `users.<i>.<field>: [message]`, marshmallow's shape for a nested list item.
fn user_error(index: usize, field: &str, message: &str) -> ApiError {
    let mut item = Map::new();
    item.insert(field.into(), json!([message]));
    let mut users = Map::new();
    users.insert(index.to_string(), Value::Object(item));
    ApiError::InvalidData {
        details: json!({ "users": users }),
    }
}

impl RoomBody {
    /// Upstream's order of checks: duplicates as sent (400 `duplicate-user`), then the
    /// creator added when absent, then 2..=100 members. Members default to the creator's
    /// tenant and this server; a room spans one tenant of this server, since neither
    /// another tenant's user nor another server's could ever read it.
    pub fn validate(self, creator: Uuid, tenant: Uuid, server: Uuid) -> Result<NewRoom, ApiError> {
        let mut seen = HashSet::with_capacity(self.users.len());
        if !self.users.iter().all(|u| seen.insert(u.uuid)) {
            return Err(crate::chat::errors::duplicate_user());
        }
        let mut users = Vec::with_capacity(self.users.len() + 1);
        let mut positions = Vec::with_capacity(self.users.len() + 1);
        for (i, u) in self.users.into_iter().enumerate() {
            if u.tenant_uuid.is_some_and(|t| t != tenant) {
                return Err(user_error(
                    i,
                    "tenant_uuid",
                    "Must be the tenant of the room's creator.",
                ));
            }
            if u.wazo_uuid.is_some_and(|w| w != server) {
                return Err(user_error(i, "wazo_uuid", "Must be this server's uuid."));
            }
            users.push(RoomUser {
                uuid: u.uuid,
                tenant_uuid: tenant,
                wazo_uuid: server,
            });
            positions.push(Some(i));
        }
        if !seen.contains(&creator) {
            users.push(RoomUser {
                uuid: creator,
                tenant_uuid: tenant,
                wazo_uuid: server,
            });
            positions.push(None);
        }
        if !(MIN_USERS..=MAX_USERS).contains(&users.len()) {
            return Err(ApiError::invalid_field(
                "users",
                format!("Length must be between {MIN_USERS} and {MAX_USERS}."),
            ));
        }
        Ok(NewRoom {
            tenant_uuid: tenant,
            name: self.name,
            users,
            positions,
        })
    }
}

impl NewRoom {
    /// The member set as one string (sorted uuids): the key that finds the room a set of
    /// users already has.
    pub fn members_key(&self) -> String {
        members_key(self.users.iter().map(|u| u.uuid))
    }

    /// The error for a member the store did not find among the tenant's users.
    pub fn unknown_member(&self, member: usize) -> ApiError {
        match self.positions.get(member).copied().flatten() {
            Some(i) => user_error(i, "uuid", "No such user in this tenant."),
            // The creator is the token's own user: only a deleted user gets here.
            None => ApiError::invalid_field("users", "The token's user no longer exists."),
        }
    }
}

pub fn members_key(uuids: impl Iterator<Item = Uuid>) -> String {
    let mut all: Vec<String> = uuids.map(|u| u.to_string()).collect();
    all.sort_unstable();
    all.join(",")
}

/// `GET /users/me/rooms?user_uuid=a,b`: the rooms having all these users (and the caller).
pub fn parse_user_filter(query: &str) -> Result<Vec<Uuid>, ApiError> {
    let pairs: Vec<(String, String)> = crate::api::body::parse_query(query)?;
    let mut users = Vec::new();
    for (key, value) in pairs {
        if key != "user_uuid" {
            continue; // upstream ignores unknown query keys
        }
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let uuid = Uuid::parse_str(part).map_err(|_| ApiError::invalid_field("user_uuid", "Not a valid UUID."))?;
            if !users.contains(&uuid) {
                users.push(uuid);
            }
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(users: &[Uuid]) -> RoomBody {
        RoomBody {
            name: None,
            users: users
                .iter()
                .map(|u| RoomUserBody {
                    uuid: *u,
                    tenant_uuid: None,
                    wazo_uuid: None,
                })
                .collect(),
        }
    }

    #[test]
    fn creator_is_added_once_and_bounds_count_it() {
        let (me, other, t, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let room = body(&[other]).validate(me, t, s).expect("two members");
        assert_eq!(room.users.iter().map(|u| u.uuid).collect::<Vec<_>>(), vec![other, me]);
        assert_eq!(room.positions, vec![Some(0), None]);
        let room = body(&[me, other]).validate(me, t, s).expect("creator named");
        assert_eq!(room.users.len(), 2);
        assert!(body(&[]).validate(me, t, s).is_err(), "alone");
        assert!(body(&[me]).validate(me, t, s).is_err(), "alone, named");
        let many: Vec<Uuid> = (0..99).map(|_| Uuid::new_v4()).collect();
        assert_eq!(body(&many).validate(me, t, s).expect("100").users.len(), 100);
        let many: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        assert!(body(&many).validate(me, t, s).is_err(), "101");
    }

    #[test]
    fn duplicates_come_first() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let err = body(&[other, other]).validate(me, Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(err.expect_err("dup").body()["error_id"], "duplicate-user");
    }

    #[test]
    fn members_key_ignores_order() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(members_key([a, b].into_iter()), members_key([b, a].into_iter()));
    }

    #[test]
    fn user_filter() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let q = format!("user_uuid={a},{b}&user_uuid={a}&other=1");
        assert_eq!(parse_user_filter(&q).expect("parse"), vec![a, b]);
        assert!(parse_user_filter("user_uuid=nope").is_err());
        assert!(parse_user_filter("").expect("empty").is_empty());
    }
}
