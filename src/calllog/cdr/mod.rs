//! `/cdr`, `/cdr/{id}`, `/users/{uuid}/cdr`, `/users/me/cdr`: call logs as JSON or CSV.

pub mod csv_out;
pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::reply::Response;
use warp::{Filter, Reply};

use self::model::{CallLog, CdrPage, CdrQuery};
use crate::api::body::raw_query;
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::calllog::CallLogService;

/// `Accept: text/csv` (or `format=csv`) asks for CSV.
fn wants_csv(accept: Option<&str>, q: &CdrQuery) -> bool {
    q.csv || accept.is_some_and(|a| a.to_ascii_lowercase().contains("text/csv"))
}

fn csv_response(logs: &[CallLog]) -> Result<Response, ApiError> {
    let body = csv_out::render(logs)?;
    let mut resp = Response::new(body.into());
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        CONTENT_DISPOSITION,
        warp::http::HeaderValue::from_static("attachment; filename=cdr.csv"),
    );
    Ok(resp)
}

fn list_response(list: CdrPage, csv: bool) -> Result<Response, ApiError> {
    if csv {
        return csv_response(&list.items);
    }
    let body = serde_json::json!({
        "items": list.items.iter().map(|l| l.to_json(true)).collect::<Vec<_>>(),
        "total": list.total,
        "filtered": list.filtered,
    });
    Ok(warp::reply::json(&body).into_response())
}

pub fn routes(svc: Arc<CallLogService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let accept = warp::header::optional::<String>("accept");

    let s = svc.clone();
    let list = warp::path!("cdr")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .and(accept)
        .then(move |caller: Caller, q: String, accept: Option<String>| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("call-logd.cdr.read")?;
                let q = CdrQuery::parse(&q)?;
                let csv = wants_csv(accept.as_deref(), &q);
                list_response(svc.list_cdr(&scope, q, None).await?, csv)
            })
        });

    let s = svc.clone();
    let get = warp::path!("cdr" / String)
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .and(accept)
        .then(move |id: String, caller: Caller, q: String, accept: Option<String>| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("call-logd.cdr.{}.read", escape_param(&id)))?;
                let q = CdrQuery::parse(&q)?;
                let log = svc.get_cdr(&scope, &id).await?;
                if wants_csv(accept.as_deref(), &q) {
                    csv_response(std::slice::from_ref(&log))
                } else {
                    Ok(warp::reply::json(&log.to_json(true)).into_response())
                }
            })
        });

    let s = svc.clone();
    let user = warp::path!("users" / String / "cdr")
        .and(warp::get())
        .and(authed)
        .and(raw_query())
        .and(accept)
        .then(move |id: String, caller: Caller, q: String, accept: Option<String>| {
            let svc = s.clone();
            respond(async move {
                // `me` has its own ACL; any other id is a user uuid.
                let acl = if id == "me" {
                    "call-logd.users.me.cdr.read".to_string()
                } else {
                    format!("call-logd.users.{}.cdr.read", escape_param(&id))
                };
                let scope = caller.require(&acl)?;
                let mut q = CdrQuery::parse(&q)?;
                let user = if id == "me" {
                    caller.user_uuid()
                } else {
                    Uuid::parse_str(&id).map_err(|_| ApiError::not_found("user", id.as_str()))?
                };
                if id != "me" {
                    // `user_uuid` narrows only the `me` variant (calls shared with them).
                    q.user_uuids.clear();
                }
                let csv = wants_csv(accept.as_deref(), &q);
                list_response(svc.list_cdr(&scope, q, Some(user)).await?, csv)
            })
        });

    list.or(get).unify().or(user).unify().boxed()
}
