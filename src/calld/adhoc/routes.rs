//! `/users/me/conferences/adhoc`: create, delete, add and remove participants. Only the
//! user's own calls and conferences: there is no admin variant upstream.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::api::body::{limited_bytes, parse_json_object};
use crate::api::respond;
use crate::auth::caller::{authenticated, Caller};
use crate::calld::routes::{created, no_content};
use crate::calld::CalldService;

pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let create = warp::path!("users" / "me" / "conferences" / "adhoc")
        .and(warp::post())
        .and(authed.clone())
        .and(limited_bytes(svc.body_limit))
        .then(move |caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("calld.users.me.conferences.adhoc.create")?;
                let conf = svc
                    .create_adhoc(&scope, caller.user_uuid(), parse_json_object(&body)?)
                    .await?;
                Ok(created(&conf))
            })
        });

    let s = svc.clone();
    let delete = warp::path!("users" / "me" / "conferences" / "adhoc" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                caller.require("calld.users.me.conferences.adhoc.delete")?;
                no_content(svc.delete_adhoc(caller.user_uuid(), &id).await)
            })
        });

    let s = svc;
    let participant = warp::path!("users" / "me" / "conferences" / "adhoc" / String / "participants" / String)
        .and(warp::put().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authed)
        .then(move |id: String, call_id: String, add: bool, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let user = caller.user_uuid();
                if add {
                    let scope = caller.require("calld.users.me.conferences.adhoc.participants.update")?;
                    no_content(svc.add_adhoc_participant(&scope, user, &id, &call_id).await)
                } else {
                    caller.require("calld.users.me.conferences.adhoc.participants.delete")?;
                    no_content(svc.remove_adhoc_participant(user, &id, &call_id).await)
                }
            })
        });

    create.or(delete).unify().or(participant).unify().boxed()
}
