//! `/tenants`: the tenant tree.

pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::model::TenantBody;
use crate::api::body::{self, raw_query};
use crate::api::list::ListParams;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::AuthService;

const ORDERABLE: &[&str] = &["name", "slug", "uuid", "phone"];
const FILTERABLE: &[&str] = &["uuid", "name", "slug"];

pub fn routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let limit = auth.config.http.body_limit;
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list = warp::path!("tenants")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.tenants.read")?;
                let params = ListParams::parse(&q, ORDERABLE, FILTERABLE)?;
                Ok(warp::reply::json(&auth.list_tenants(&scope, params).await?).into_response())
            })
        });

    let a = auth.clone();
    let create = warp::path!("tenants")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |caller: Caller, b: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.tenants.create")?;
                let b: TenantBody = body::parse_json(&b)?;
                Ok(warp::reply::json(&auth.create_tenant(&scope, b).await?.to_json()).into_response())
            })
        });

    let a = auth.clone();
    let get = warp::path!("tenants" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.tenants.{}.read", escape_param(&id)))?;
                Ok(warp::reply::json(&auth.get_tenant(&scope, &id).await?.to_json()).into_response())
            })
        });

    let a = auth.clone();
    let update = warp::path!("tenants" / String)
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.tenants.{}.edit", escape_param(&id)))?;
                let b: TenantBody = body::parse_json(&b)?;
                Ok(warp::reply::json(&auth.update_tenant(&scope, &id, b).await?.to_json()).into_response())
            })
        });

    let a = auth.clone();
    let delete = warp::path!("tenants" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.tenants.{}.delete", escape_param(&id)))?;
                auth.delete_tenant(&scope, &id).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let a = auth.clone();
    let domains = warp::path!("tenants" / String / "domains")
        .and(warp::get())
        .and(authed)
        .then(move |id: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.tenants.{}.domains.read", escape_param(&id)))?;
                let t = auth.get_tenant(&scope, &id).await?;
                let items: Vec<_> = t.domain_names.iter().map(|d| json!({ "name": d })).collect();
                let total = items.len();
                Ok(warp::reply::json(&json!({ "items": items, "total": total })).into_response())
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
        .or(domains)
        .unify()
        .boxed()
}
