//! `GET /users/presences` (ACL `chatd.users.presences.read`), `GET /users/{uuid}/presences`
//! (`chatd.users.{uuid}.presences.read`) and `PUT /users/{uuid}/presences`
//! (`chatd.users.{uuid}.presences.update`, 204). `me` stands for the token's user; the
//! default user policy grants `chatd.users.me.presences.update`, which the ACL engine
//! matches against the user's own uuid too. [`events`] publishes `chatd_presence_updated`.

pub mod events;
pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::model::{ListQuery, PresenceBody};
use crate::api::body::{limited_bytes, parse_json_object, raw_query};
use crate::api::respond;
use crate::auth::caller::{authenticated, Caller};
use crate::bus::escape_key;
use crate::chat::{json_reply, ChatService};

/// The ACL of a per-user route, the path's id escaped so it cannot widen the check.
fn user_acl(id: &str, verb: &str) -> String {
    format!("chatd.users.{}.presences.{verb}", escape_key(id))
}

pub fn routes(svc: Arc<ChatService>) -> BoxedFilter<(Response,)> {
    let s = svc.clone();
    let list = warp::path!("users" / "presences")
        .and(warp::get())
        .and(authenticated(svc.auth.clone()))
        .and(raw_query())
        .then(move |caller: Caller, query: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("chatd.users.presences.read")?;
                let q = ListQuery::parse(&query)?;
                let list = svc.list_presences(&scope, q).await?;
                Ok(json_reply(&list, StatusCode::OK))
            })
        });

    let s = svc.clone();
    let get = warp::path!("users" / String / "presences")
        .and(warp::get())
        .and(authenticated(svc.auth.clone()))
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&user_acl(&id, "read"))?;
                let presence = svc.get_presence(&scope, &id).await?;
                Ok(json_reply(&presence, StatusCode::OK))
            })
        });

    let s = svc.clone();
    let update = warp::path!("users" / String / "presences")
        .and(warp::put())
        .and(authenticated(svc.auth.clone()))
        .and(limited_bytes(svc.body_limit))
        .then(move |id: String, caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&user_acl(&id, "update"))?;
                let body: PresenceBody = parse_json_object(&body)?;
                svc.update_presence(&scope, &id, body).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    list.or(get).unify().or(update).unify().boxed()
}
