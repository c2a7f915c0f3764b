//! Posting and listing messages; the `chatd_user_room_message_created` events.

use serde_json::json;
use uuid::Uuid;

use super::model::{Message, MessageQuery, NewMessage};
use super::store::{self, Among, Author};
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};
use crate::chat::errors::unknown_room;
use crate::chat::rooms::store::member_room;
use crate::chat::ChatService;

/// A page of messages with upstream's counts.
pub struct MessagePage {
    pub items: Vec<Message>,
    pub filtered: u64,
    pub total: u64,
}

fn page(conn: &rusqlite::Connection, among: Among, q: &MessageQuery) -> Result<MessagePage, ApiError> {
    let (items, filtered) = store::list(conn, among, q)?;
    let total = store::total(conn, among)?;
    Ok(MessagePage {
        items,
        filtered: filtered.unwrap_or(total),
        total,
    })
}

/// A path's room uuid; anything else is a room that does not exist.
fn room_uuid(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| unknown_room(raw))
}

impl ChatService {
    /// `POST /users/me/rooms/{room_uuid}/messages`: members only (404 otherwise, as for a
    /// room that does not exist); the message goes to every member, the author included.
    pub async fn post_message(&self, scope: &Scope, room: &str, message: NewMessage) -> Result<Message, ApiError> {
        let room_uuid = room_uuid(room)?;
        let caller = scope.caller();
        let (user, tenant, server) = (caller.user_uuid(), caller.token.tenant_uuid, self.uuid);
        let now = crate::chat::time::now_us();
        // Membership check and insert in one transaction: no message lands in a room its
        // author was just removed from.
        let (message, members) = self
            .store
            .write(move |tx| -> Result<(Message, Vec<Uuid>), ApiError> {
                let (room_id, members) =
                    member_room(tx, tenant, room_uuid, user)?.ok_or_else(|| unknown_room(&room_uuid.to_string()))?;
                let author = Author {
                    room_id,
                    room_uuid,
                    user_uuid: user,
                    tenant_uuid: tenant,
                    wazo_uuid: server,
                };
                Ok((store::insert(tx, &author, message, now)?, members))
            })
            .await?;
        let data = json!(message);
        let room_key = escape_key(&room_uuid.to_string());
        for member in members {
            self.bus.publish(
                EventSpec::new(
                    "chatd_user_room_message_created",
                    format!(
                        "chatd.users.{}.rooms.{room_key}.messages.created",
                        escape_key(&member.to_string())
                    ),
                    data.clone(),
                )
                .tenant(tenant)
                .users(vec![member]),
            );
        }
        Ok(message)
    }

    /// `GET /users/me/rooms/{room_uuid}/messages`: members only.
    pub async fn list_room_messages(
        &self,
        scope: &Scope,
        room: &str,
        q: MessageQuery,
    ) -> Result<MessagePage, ApiError> {
        let room_uuid = room_uuid(room)?;
        let caller = scope.caller();
        let (user, tenant) = (caller.user_uuid(), caller.token.tenant_uuid);
        self.store
            .read(move |conn| {
                let (room_id, _) =
                    member_room(conn, tenant, room_uuid, user)?.ok_or_else(|| unknown_room(&room_uuid.to_string()))?;
                page(conn, Among::Room(room_id), &q)
            })
            .await
    }

    /// `GET /users/me/rooms/messages`: across the caller's rooms of the token's tenant.
    pub async fn list_user_messages(&self, scope: &Scope, q: MessageQuery) -> Result<MessagePage, ApiError> {
        let caller = scope.caller();
        let among = Among::UserRooms {
            user: caller.user_uuid(),
            tenant: caller.token.tenant_uuid,
        };
        self.store.read(move |conn| page(conn, among, &q)).await
    }
}
