//! accent-calld: live call control under `/api/calld/1.0`. The calls come from
//! the live state (`control`), fed by both Asterisk links; who owns a channel
//! (line, user, tenant) from confd's store; actions go to Asterisk over ARI.

pub mod calls;
pub mod owners;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::calls::ListQuery;
use crate::api::body::raw_query;
use crate::api::error::ApiError;
use crate::api::respond;
use crate::ari::client::AriClient;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::AuthService;
use crate::control::LiveState;
use crate::store::Store;

pub struct CalldService {
    pub auth: Arc<AuthService>,
    pub store: Store,
    pub live: LiveState,
    /// `None` without Asterisk: actions answer 503.
    pub ari: Option<AriClient>,
}

fn query(raw: &str) -> Result<ListQuery, ApiError> {
    serde_urlencoded::from_str(raw).map_err(|e| ApiError::invalid_field("query", e.to_string()))
}

/// The calls routes, admin and `me`.
pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let list = warp::path!("calls")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("calld.calls.read")?;
                let items = svc.list_calls(&scope, &query(&q)?, None).await?;
                Ok(warp::reply::json(&items).into_response())
            })
        });

    let s = svc.clone();
    let get =
        warp::path!("calls" / String)
            .and(warp::get())
            .and(authed.clone())
            .then(move |id: String, caller: Caller| {
                let svc = s.clone();
                respond(async move {
                    let scope = caller.require(&format!("calld.calls.{}.read", escape_param(&id)))?;
                    Ok(warp::reply::json(&svc.get_call(&scope, &id, None).await?).into_response())
                })
            });

    let s = svc.clone();
    let hangup = warp::path!("calls" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("calld.calls.{}.delete", escape_param(&id)))?;
                svc.hangup(&scope, &id, None).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc.clone();
    let my_list = warp::path!("users" / "me" / "calls")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("calld.users.me.calls.read")?;
                let me = caller.user_uuid();
                let items = svc.list_calls(&scope, &query(&q)?, Some(me)).await?;
                Ok(warp::reply::json(&items).into_response())
            })
        });

    let s = svc;
    let my_hangup = warp::path!("users" / "me" / "calls" / String)
        .and(warp::delete())
        .and(authed)
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("calld.users.me.calls.{}.delete", escape_param(&id)))?;
                // Another user's call is as unknown as a missing one.
                svc.hangup(&scope, &id, Some(caller.user_uuid())).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    warp::path("api")
        .and(warp::path("calld"))
        .and(warp::path("1.0"))
        .and(
            list.or(get)
                .unify()
                .or(hangup)
                .unify()
                .or(my_list)
                .unify()
                .or(my_hangup)
                .unify(),
        )
        .boxed()
}
