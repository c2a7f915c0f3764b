//! `POST /users/me/rooms` and `GET /users/me/rooms` (ACLs `chatd.users.me.rooms.create`
//! and `.read`).

pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use self::model::{parse_user_filter, RoomBody};
use crate::api::body::{limited_bytes, parse_json_object, raw_query};
use crate::api::list::ListResponse;
use crate::api::respond;
use crate::auth::caller::{authenticated, Caller};
use crate::chat::{json_reply, ChatService};

pub fn routes(svc: Arc<ChatService>) -> BoxedFilter<(Response,)> {
    let s = svc.clone();
    let create = warp::path!("users" / "me" / "rooms")
        .and(warp::post())
        .and(authenticated(svc.auth.clone()))
        .and(limited_bytes(svc.body_limit))
        .then(move |caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("chatd.users.me.rooms.create")?;
                let body: RoomBody = parse_json_object(&body)?;
                let room = svc.create_room(&scope, body).await?;
                // 201 whether created or found: upstream's (deprecated) behaviour.
                Ok(json_reply(&room, StatusCode::CREATED))
            })
        });

    let s = svc.clone();
    let list = warp::path!("users" / "me" / "rooms")
        .and(warp::get())
        .and(authenticated(svc.auth.clone()))
        .and(raw_query())
        .then(move |caller: Caller, query: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("chatd.users.me.rooms.read")?;
                let users = parse_user_filter(&query)?;
                let items = svc.list_rooms(&scope, users).await?;
                // Upstream answers the filtered count as both.
                let count = items.len() as u64;
                Ok(json_reply(
                    &ListResponse {
                        items,
                        total: count,
                        filtered: count,
                    },
                    StatusCode::OK,
                ))
            })
        });

    create.or(list).unify().boxed()
}
