//! `POST/GET /users/me/rooms/{room_uuid}/messages` (ACL
//! `chatd.users.me.rooms.{room_uuid}.messages.create` / `.read`) and
//! `GET /users/me/rooms/messages` (`chatd.users.me.rooms.messages.read`).

pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use self::model::{ListKind, MessageBody, MessageQuery};
use self::service::MessagePage;
use crate::api::body::{limited_bytes, parse_json_object, raw_query};
use crate::api::list::ListResponse;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::chat::{json_reply, ChatService};

fn page_reply(page: MessagePage) -> Response {
    json_reply(
        &ListResponse {
            items: page.items,
            total: page.total,
            filtered: page.filtered,
        },
        StatusCode::OK,
    )
}

pub fn routes(svc: Arc<ChatService>) -> BoxedFilter<(Response,)> {
    let s = svc.clone();
    let search = warp::path!("users" / "me" / "rooms" / "messages")
        .and(warp::get())
        .and(authenticated(svc.auth.clone()))
        .and(raw_query())
        .then(move |caller: Caller, query: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("chatd.users.me.rooms.messages.read")?;
                let q = MessageQuery::parse(&query, ListKind::User)?;
                Ok(page_reply(svc.list_user_messages(&scope, q).await?))
            })
        });

    let s = svc.clone();
    let post = warp::path!("users" / "me" / "rooms" / String / "messages")
        .and(warp::post())
        .and(authenticated(svc.auth.clone()))
        .and(limited_bytes(svc.body_limit))
        .then(move |room: String, caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("chatd.users.me.rooms.{}.messages.create", escape_param(&room)))?;
                let message = parse_json_object::<MessageBody>(&body)?.validate()?;
                let message = svc.post_message(&scope, &room, message).await?;
                Ok(json_reply(&message, StatusCode::CREATED))
            })
        });

    let s = svc.clone();
    let list = warp::path!("users" / "me" / "rooms" / String / "messages")
        .and(warp::get())
        .and(authenticated(svc.auth.clone()))
        .and(raw_query())
        .then(move |room: String, caller: Caller, query: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("chatd.users.me.rooms.{}.messages.read", escape_param(&room)))?;
                let q = MessageQuery::parse(&query, ListKind::Room)?;
                Ok(page_reply(svc.list_room_messages(&scope, &room, q).await?))
            })
        });

    search.or(post).unify().or(list).unify().boxed()
}
