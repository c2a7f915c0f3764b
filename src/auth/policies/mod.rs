//! `/policies`: named ACL lists.

pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::model::PolicyBody;
use crate::api::body::{self, raw_query};
use crate::api::list::ListParams;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::tokens::percent_decode;
use crate::auth::AuthService;

const ORDERABLE: &[&str] = &["name", "slug", "description", "uuid"];
const FILTERABLE: &[&str] = &["uuid", "name", "slug", "read_only"];

pub fn routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let limit = auth.config.http.body_limit;
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list = warp::path!("policies")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.policies.read")?;
                let params = ListParams::parse(&q, ORDERABLE, FILTERABLE)?;
                Ok(warp::reply::json(&auth.list_policies(&scope, params).await?).into_response())
            })
        });

    let a = auth.clone();
    let create = warp::path!("policies")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |caller: Caller, b: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.policies.create")?;
                let b: PolicyBody = body::parse_json(&b)?;
                Ok(warp::reply::json(&auth.create_policy(&scope, b).await?).into_response())
            })
        });

    let a = auth.clone();
    let get = warp::path!("policies" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.policies.{}.read", escape_param(&id)))?;
                Ok(warp::reply::json(&auth.get_policy(&scope, &id).await?).into_response())
            })
        });

    let a = auth.clone();
    let update = warp::path!("policies" / String)
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.policies.{}.edit", escape_param(&id)))?;
                let b: PolicyBody = body::parse_json(&b)?;
                Ok(warp::reply::json(&auth.update_policy(&scope, &id, b).await?).into_response())
            })
        });

    let a = auth.clone();
    let delete = warp::path!("policies" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.policies.{}.delete", escape_param(&id)))?;
                auth.delete_policy(&scope, &id).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    // The access is one path segment, percent-encoded by clients (`#` must
    // travel as `%23`, or it would start the URL's fragment).
    let a = auth.clone();
    let add_access = warp::path!("policies" / String / "acl" / String)
        .and(warp::put())
        .and(authed.clone())
        .then(move |id: String, access: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.policies.{}.edit", escape_param(&id)))?;
                auth.add_policy_access(&scope, &id, percent_decode(&access)).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let a = auth.clone();
    let remove_access = warp::path!("policies" / String / "acl" / String)
        .and(warp::delete())
        .and(authed)
        .then(move |id: String, access: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.policies.{}.edit", escape_param(&id)))?;
                auth.remove_policy_access(&scope, &id, percent_decode(&access)).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(add_access)
        .unify()
        .or(remove_access)
        .unify()
        .boxed()
}
