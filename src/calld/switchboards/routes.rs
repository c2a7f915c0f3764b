//! `/switchboards/{uuid}/calls/...`: one route for the tree, dispatched on
//! the rest of the path; the ACL is the path and the verb
//! (`calld.switchboards.{uuid}.calls.queued.{call_id}.answer.update`), as
//! upstream names them.

use std::sync::Arc;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::state::Kind;
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::calld::CalldService;

pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    warp::path("switchboards")
        .and(warp::path::param::<String>())
        .and(warp::path::tail())
        .and(warp::method())
        .and(crate::api::body::raw_query())
        .and(authenticated(svc.auth.clone()))
        .then(
            move |sb: String, tail: warp::path::Tail, method: Method, query: String, caller: Caller| {
                let svc = svc.clone();
                respond(async move {
                    let segments: Vec<&str> = tail.as_str().split('/').filter(|s| !s.is_empty()).collect();
                    handle(&svc, &sb, &segments, method, &query, &caller).await
                })
            },
        )
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerQuery {
    line_id: Option<i64>,
}

fn kind(s: &str) -> Option<Kind> {
    match s {
        "queued" => Some(Kind::Queued),
        "held" => Some(Kind::Held),
        _ => None,
    }
}

async fn handle(
    svc: &CalldService,
    sb: &str,
    segments: &[&str],
    method: Method,
    query: &str,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let verb = match method {
        Method::GET => "read",
        Method::PUT => "update",
        _ => return Err(not_found()),
    };
    let mut acl = vec![format!("calld.switchboards.{}", escape_param(sb))];
    acl.extend(segments.iter().map(|s| escape_param(s).into_owned()));
    acl.push(verb.to_string());
    let acl = acl.join(".");
    match (segments, &method) {
        (["calls", k], &Method::GET) if kind(k).is_some() => {
            let scope = caller.require(&acl)?;
            let list = svc
                .switchboard_calls(&scope, sb, kind(k).unwrap_or(Kind::Queued))
                .await?;
            Ok(warp::reply::json(&list).into_response())
        }
        (["calls", k, call, "answer"], &Method::PUT) if kind(k).is_some() => {
            let scope = caller.require(&acl)?;
            let q: AnswerQuery =
                serde_urlencoded::from_str(query).map_err(|e| ApiError::invalid_field("line_id", e.to_string()))?;
            let answer = svc
                .switchboard_answer(&scope, sb, call, kind(k).unwrap_or(Kind::Queued), q.line_id)
                .await?;
            Ok(warp::reply::json(&answer).into_response())
        }
        (["calls", "held", call], &Method::PUT) => {
            let scope = caller.require(&acl)?;
            svc.switchboard_hold(&scope, sb, call).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(not_found()),
    }
}

fn not_found() -> ApiError {
    ApiError::Routing {
        status: StatusCode::NOT_FOUND,
        error_id: "not-found",
        message: "Not found",
    }
}
