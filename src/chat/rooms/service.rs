//! Creating and listing rooms; the `chatd_user_room_created` events.

use serde_json::json;
use uuid::Uuid;

use super::model::{Room, RoomBody};
use super::store;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};
use crate::chat::ChatService;

impl ChatService {
    /// `POST /users/me/rooms`: the room of exactly this user set, created when there is
    /// none (then announced to each member). Rooms belong to the token's tenant, as
    /// upstream's do, whatever tenant header the request carries.
    pub async fn create_room(&self, scope: &Scope, body: RoomBody) -> Result<Room, ApiError> {
        let caller = scope.caller();
        let tenant = caller.token.tenant_uuid;
        let room = body.validate(caller.user_uuid(), tenant, self.uuid)?;
        let now = crate::chat::time::now_us();
        // One write transaction: the lookup and the insert cannot interleave with another
        // creation of the same set (the unique members index would refuse it anyway).
        let (room, created) = self
            .store
            .write(move |tx| -> Result<(Room, bool), ApiError> {
                if let Some(i) = store::unknown_member(tx, &room)? {
                    return Err(room.unknown_member(i));
                }
                if let Some(existing) = store::find_by_members(tx, room.tenant_uuid, &room.members_key())? {
                    return Ok((existing, false));
                }
                Ok((store::insert(tx, &room, now)?, true))
            })
            .await?;
        if created {
            self.publish_room_created(&room);
        }
        Ok(room)
    }

    fn publish_room_created(&self, room: &Room) {
        let data = json!(room);
        for user in &room.users {
            self.bus.publish(
                EventSpec::new(
                    "chatd_user_room_created",
                    format!("chatd.users.{}.rooms.created", escape_key(&user.uuid.to_string())),
                    data.clone(),
                )
                .tenant(room.tenant_uuid)
                .users(vec![user.uuid]),
            );
        }
    }

    /// `GET /users/me/rooms`: the caller's rooms, narrowed to those having `users` too.
    pub async fn list_rooms(&self, scope: &Scope, mut users: Vec<Uuid>) -> Result<Vec<Room>, ApiError> {
        let caller = scope.caller();
        let me = caller.user_uuid();
        // The caller first: its rooms are the index range the query starts from.
        users.retain(|u| *u != me);
        users.insert(0, me);
        let tenant = caller.token.tenant_uuid;
        self.store
            .read(move |conn| store::list_having(conn, tenant, &users))
            .await
    }
}
