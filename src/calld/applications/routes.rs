//! `/applications/{application_uuid}/...`: one route for the whole tree,
//! dispatched on the rest of the path. The ACL is the path itself and the
//! verb (`calld.applications.{uuid}.calls.{call_id}.hold.start.update`), as
//! upstream names them.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::service::CallAction;
use crate::api::body::{limited_bytes, parse_json_object};
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::calld::CalldService;

pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    warp::path("applications")
        .and(warp::path::param::<String>())
        .and(warp::path::tail())
        .and(warp::method())
        .and(crate::api::body::raw_query())
        .and(authenticated(svc.auth.clone()))
        .and(limited_bytes(svc.body_limit))
        .then(
            move |app: String,
                  tail: warp::path::Tail,
                  method: Method,
                  query: String,
                  caller: Caller,
                  body: bytes::Bytes| {
                let svc = svc.clone();
                respond(async move { handle(&svc, &app, &segments(&tail), method, &query, &caller, &body).await })
            },
        )
        .boxed()
}

/// The path after `/applications/{uuid}`, one item per segment.
fn segments(tail: &warp::path::Tail) -> Vec<&str> {
    tail.as_str().split('/').filter(|s| !s.is_empty()).collect()
}

#[derive(serde::Deserialize)]
struct DtmfQuery {
    digits: Option<String>,
}

fn json(v: &serde_json::Value) -> Response {
    warp::reply::json(v).into_response()
}

fn created(v: &serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(v), StatusCode::CREATED).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `start`/`stop` of `hold`, `mute`, `progress`.
fn on(verb: &str) -> Option<bool> {
    match verb {
        "start" => Some(true),
        "stop" => Some(false),
        _ => None,
    }
}

async fn handle(
    svc: &CalldService,
    app: &str,
    segments: &[&str],
    method: Method,
    query: &str,
    caller: &Caller,
    body: &bytes::Bytes,
) -> Result<Response, ApiError> {
    let verb = match method {
        Method::GET => "read",
        Method::PUT => "update",
        Method::DELETE => "delete",
        Method::POST => "create",
        _ => return Err(not_found()),
    };
    let mut acl = vec![format!("calld.applications.{}", escape_param(app))];
    acl.extend(segments.iter().map(|s| escape_param(s).into_owned()));
    acl.push(verb.to_string());
    let acl = acl.join(".");
    let action = |call: &str, action: CallAction| act(svc, caller, &acl, app, call.to_string(), action);
    match (segments, &method) {
        ([], &Method::GET) => Ok(json(&svc.application_show(&caller.require(&acl)?, app).await?)),
        (["calls"], &Method::GET) => Ok(json(&svc.application_calls(&caller.require(&acl)?, app).await?)),
        (["calls"], &Method::POST) => {
            let scope = caller.require(&acl)?;
            Ok(created(
                &svc.application_originate(&scope, app, None, parse_json_object(body)?)
                    .await?,
            ))
        }
        (["calls", call], &Method::DELETE) => {
            svc.application_hangup(&caller.require(&acl)?, app, call).await?;
            Ok(no_content())
        }
        (["calls", call, "answer"], &Method::PUT) => action(call, CallAction::Answer).await,
        (["calls", call, "progress", v], &Method::PUT) if on(v).is_some() => {
            action(call, CallAction::Progress(on(v) == Some(true))).await
        }
        (["calls", call, "hold", v], &Method::PUT) if on(v).is_some() => {
            action(call, CallAction::Hold(on(v) == Some(true))).await
        }
        (["calls", call, "mute", v], &Method::PUT) if on(v).is_some() => {
            action(call, CallAction::Mute(on(v) == Some(true))).await
        }
        (["calls", call, "moh", moh, "start"], &Method::PUT) => {
            action(call, CallAction::Moh(Some((*moh).to_string()))).await
        }
        (["calls", call, "moh", "stop"], &Method::PUT) => action(call, CallAction::Moh(None)).await,
        (["calls", call, "dtmf"], &Method::PUT) => {
            let q: DtmfQuery =
                serde_urlencoded::from_str(query).map_err(|e| ApiError::invalid_field("digits", e.to_string()))?;
            action(call, CallAction::Dtmf(q.digits)).await
        }
        (["calls", call, "playbacks"], &Method::POST) => {
            let scope = caller.require(&acl)?;
            Ok(created(
                &svc.application_playback(&scope, app, call, parse_json_object(body)?)
                    .await?,
            ))
        }
        (["playbacks", playback], &Method::DELETE) => {
            svc.application_stop_playback(&caller.require(&acl)?, app, playback)
                .await?;
            Ok(no_content())
        }
        (["nodes"], &Method::GET) => Ok(json(&svc.application_nodes(&caller.require(&acl)?, app).await?)),
        (["nodes"], &Method::POST) => {
            let scope = caller.require(&acl)?;
            Ok(created(
                &svc.application_create_node(&scope, app, parse_json_object(body)?)
                    .await?,
            ))
        }
        (["nodes", node], &Method::GET) => Ok(json(&svc.application_node(&caller.require(&acl)?, app, node).await?)),
        (["nodes", node], &Method::DELETE) => {
            svc.application_delete_node(&caller.require(&acl)?, app, node).await?;
            Ok(no_content())
        }
        (["nodes", node, "calls", "user"], &Method::POST) => {
            let scope = caller.require(&acl)?;
            let call = svc
                .application_call_user(&scope, app, node, parse_json_object(body)?)
                .await?;
            Ok(created(&call))
        }
        (["nodes", node, "calls"], &Method::POST) => {
            let scope = caller.require(&acl)?;
            let call = svc
                .application_originate(&scope, app, Some(node), parse_json_object(body)?)
                .await?;
            Ok(created(&call))
        }
        (["nodes", node, "calls", call], m @ (&Method::PUT | &Method::DELETE)) => {
            let scope = caller.require(&acl)?;
            svc.application_node_call(&scope, app, node, call, *m == Method::PUT)
                .await?;
            Ok(no_content())
        }
        (["calls", call, "snoops"], &Method::POST) => {
            let scope = caller.require(&acl)?;
            Ok(created(
                &svc.application_snoop(&scope, app, call, parse_json_object(body)?)
                    .await?,
            ))
        }
        (["snoops"], &Method::GET) => Ok(json(&svc.application_snoops(&caller.require(&acl)?, app).await?)),
        (["snoops", snoop], &Method::GET) => Ok(json(
            &svc.application_show_snoop(&caller.require(&acl)?, app, snoop).await?,
        )),
        (["snoops", snoop], &Method::PUT) => {
            let scope = caller.require(&acl)?;
            svc.application_update_snoop(&scope, app, snoop, parse_json_object(body)?)
                .await?;
            Ok(no_content())
        }
        (["snoops", snoop], &Method::DELETE) => {
            svc.application_delete_snoop(&caller.require(&acl)?, app, snoop).await?;
            Ok(no_content())
        }
        _ => Err(not_found()),
    }
}

async fn act(
    svc: &CalldService,
    caller: &Caller,
    acl: &str,
    app: &str,
    call: String,
    action: CallAction,
) -> Result<Response, ApiError> {
    let scope = caller.require(acl)?;
    svc.application_call_action(&scope, app, &call, action).await?;
    Ok(no_content())
}

fn not_found() -> ApiError {
    ApiError::Routing {
        status: StatusCode::NOT_FOUND,
        error_id: "not-found",
        message: "Not found",
    }
}
