//! `GET /parkinglots[/{id}]` (ACL `calld.parkings.read`, `calld.parkings.{id}.read`) and
//! `PUT /calls/{id}/park`, `PUT /users/me/calls/{id}/park`.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::api::body::{limited_bytes, parse_json_object};
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::calld::CalldService;

pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let list = warp::path!("parkinglots")
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("calld.parkings.read")?;
                Ok(warp::reply::json(&svc.parking_lots(&scope).await?).into_response())
            })
        });

    let s = svc.clone();
    let one = warp::path!("parkinglots" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("calld.parkings.{}.read", escape_param(&id)))?;
                Ok(warp::reply::json(&svc.parking_lot(&scope, &id).await?).into_response())
            })
        });

    let s = svc.clone();
    let park = super::super::routes::me_prefix()
        .and(warp::path("calls"))
        .and(warp::path::param::<String>())
        .and(warp::path("park"))
        .and(warp::path::end())
        .and(warp::put())
        .and(authed)
        .and(limited_bytes(svc.body_limit))
        .then(move |mine: bool, id: String, caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let who = if mine { "users.me.calls" } else { "calls" };
                let scope = caller.require(&format!("calld.{who}.{}.park.update", escape_param(&id)))?;
                let body = parse_json_object(&body)?;
                let user = mine.then(|| caller.user_uuid());
                Ok(warp::reply::json(&svc.park(&scope, &id, user, body).await?).into_response())
            })
        });

    list.or(one).unify().or(park).unify().boxed()
}
