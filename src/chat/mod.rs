//! chatd's rooms and messages under `/api/chatd/1.0` (accent-chatd/wazo-chatd's `rooms`
//! plugin):
//!
//! - [`rooms`]: `POST/GET /users/me/rooms`: a room per set of users, returned again when
//!   the same set asks for one; `chatd_user_room_created` to each member.
//! - [`messages`]: `POST/GET /users/me/rooms/{room_uuid}/messages` (members only) and
//!   `GET /users/me/rooms/messages` (`search` through SQLite FTS5, or the latest message
//!   of each room); `chatd_user_room_message_created` to each member.
//! - [`presences`]: `GET /users/presences`, `GET/PUT /users/{uuid|me}/presences`: the
//!   user's chosen state and status with what auth, confd and the live Asterisk state say
//!   (sessions, DND, line states); `chatd_presence_updated` on every change.
//! - [`errors`]: chatd's errors with upstream's ids.
//! - [`time`]: the `created_at` / `from_date` formats.
//!
//! Everything is stored in the one SQLite store (`sql/001_chat.sql`): rooms survive a
//! restart, and every read runs off the async runtime like the other services'.

pub mod errors;
pub mod messages;
pub mod presences;
pub mod rooms;
pub mod time;

use std::sync::Arc;

use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::auth::AuthService;
use crate::bus::Bus;
use crate::control::LiveState;
use crate::store::Store;

/// Everything the chat part needs; one per process.
pub struct ChatService {
    pub store: Store,
    pub bus: Bus,
    pub auth: Arc<AuthService>,
    /// This server's uuid: the `wazo_uuid` of members and messages.
    pub uuid: Uuid,
    /// The largest request body accepted (`http.body_limit`).
    pub body_limit: u64,
    /// The live state presences read, and the users whose presence to publish again.
    pub presences: presences::service::PresenceHub,
}

impl ChatService {
    pub fn new(
        store: Store,
        bus: Bus,
        auth: Arc<AuthService>,
        live: LiveState,
        uuid: Uuid,
        body_limit: u64,
    ) -> Arc<Self> {
        Arc::new(ChatService {
            store,
            bus,
            auth,
            uuid,
            body_limit,
            presences: presences::service::PresenceHub::new(live),
        })
    }
}

/// The JSON body with a status, the shape every chat route answers with.
pub(crate) fn json_reply(body: &impl serde::Serialize, status: warp::http::StatusCode) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// Every route under `/api/chatd/1.0` this module serves.
pub fn routes(svc: Arc<ChatService>) -> BoxedFilter<(Response,)> {
    warp::path("api")
        .and(warp::path("chatd"))
        .and(warp::path("1.0"))
        // `rooms/messages` before `rooms/{room_uuid}/...`: both start with `rooms`.
        .and(
            messages::routes(svc.clone())
                .or(rooms::routes(svc.clone()))
                .unify()
                .or(presences::routes(svc))
                .unify(),
        )
        .boxed()
}
