//! `/voicemails/{id}/...` and `/users/me/voicemails/...`: one route for both, dispatched on
//! the rest of the path. The ACL is the path itself (`calld.voicemails.{id}.messages.{m}`
//! or `calld.users.me.voicemails.messages.{m}`) and the verb, as upstream names them.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::{header, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::Target;
use crate::api::body::{limited_bytes, parse_json_object};
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::calld::CalldService;

/// The largest greeting accepted: minutes of 16-bit audio.
pub const GREETING_LIMIT: u64 = 16 * 1024 * 1024;

/// Which mailbox the path names: `voicemails/{id}` or `users/me/voicemails`.
#[derive(Debug, Clone, Copy)]
enum Prefix {
    Id(i64),
    Me,
}

fn prefix() -> impl Filter<Extract = (Prefix,), Error = warp::Rejection> + Clone {
    let id = warp::path("voicemails").and(warp::path::param::<i64>()).map(Prefix::Id);
    let me = warp::path("users")
        .and(warp::path("me"))
        .and(warp::path("voicemails"))
        .map(|| Prefix::Me);
    id.or(me).unify()
}

#[derive(serde::Deserialize)]
struct DownloadQuery {
    download: Option<String>,
}

fn audio(data: Vec<u8>, name: &str, download: bool) -> Response {
    let mut r = Response::new(data.into());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("audio/wav"));
    if download {
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename={name}.wav")) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    r
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    prefix()
        .and(warp::path::tail())
        .and(warp::method())
        .and(crate::api::body::raw_query())
        .and(authenticated(svc.auth.clone()))
        .and(limited_bytes(GREETING_LIMIT))
        .then(
            move |prefix: Prefix,
                  tail: warp::path::Tail,
                  method: Method,
                  query: String,
                  caller: Caller,
                  body: bytes::Bytes| {
                let svc = svc.clone();
                respond(async move {
                    let segments: Vec<&str> = tail.as_str().split('/').filter(|s| !s.is_empty()).collect();
                    handle(&svc, prefix, &segments, method, &query, &caller, body).await
                })
            },
        )
        .boxed()
}

async fn handle(
    svc: &CalldService,
    prefix: Prefix,
    segments: &[&str],
    method: Method,
    query: &str,
    caller: &Caller,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let (acl_prefix, target) = match prefix {
        Prefix::Id(id) => (format!("calld.voicemails.{id}"), Target::Id(id)),
        Prefix::Me => ("calld.users.me.voicemails".to_string(), Target::Me(caller.user_uuid())),
    };
    let verb = match method {
        Method::GET | Method::HEAD => "read",
        Method::PUT => "update",
        Method::DELETE => "delete",
        Method::POST => "create",
        _ => return Err(ApiError::route_not_found()),
    };
    let path_acl: Vec<String> = segments.iter().map(|s| escape_param(s).into_owned()).collect();
    let acl = if path_acl.is_empty() {
        format!("{acl_prefix}.{verb}")
    } else {
        format!("{acl_prefix}.{}.{verb}", path_acl.join("."))
    };
    let json_body = |body: &bytes::Bytes| -> Result<_, ApiError> {
        if body.len() as u64 > svc.body_limit {
            return Err(ApiError::PayloadTooLarge);
        }
        parse_json_object(body)
    };
    match (segments, &method) {
        ([], &Method::GET) => {
            let scope = caller.require(&acl)?;
            Ok(warp::reply::json(&svc.voicemail(&scope, target).await?).into_response())
        }
        (["folders", folder], &Method::GET) => {
            let scope = caller.require(&acl)?;
            Ok(warp::reply::json(&svc.voicemail_folder(&scope, target, folder).await?).into_response())
        }
        (["messages", id], m) => {
            let scope = caller.require(&acl)?;
            match *m {
                Method::GET => Ok(warp::reply::json(&svc.voicemail_message(&scope, target, id).await?).into_response()),
                Method::PUT => {
                    svc.move_voicemail_message(&scope, target, id, json_body(&body)?)
                        .await?;
                    Ok(no_content())
                }
                Method::DELETE => {
                    svc.delete_voicemail_message(&scope, target, id).await?;
                    Ok(no_content())
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        (["messages", id, "recording"], &Method::GET) => {
            let scope = caller.require(&acl)?;
            let q: DownloadQuery =
                serde_urlencoded::from_str(query).map_err(|e| ApiError::invalid_field("download", e.to_string()))?;
            let data = svc.voicemail_recording(&scope, target, id).await?;
            Ok(audio(data, id, q.download.as_deref() == Some("1")))
        }
        (["greetings", g], m) => {
            let scope = caller.require(&acl)?;
            match *m {
                Method::GET => Ok(audio(svc.voicemail_greeting(&scope, target, g).await?, g, false)),
                Method::HEAD => {
                    svc.has_voicemail_greeting(&scope, target, g).await?;
                    Ok(StatusCode::OK.into_response())
                }
                Method::POST | Method::PUT => {
                    svc.put_voicemail_greeting(&scope, target, g, *m == Method::POST, body)
                        .await?;
                    Ok(no_content())
                }
                Method::DELETE => {
                    svc.delete_voicemail_greeting(&scope, target, g).await?;
                    Ok(no_content())
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        (["greetings", g, "copy"], &Method::POST) => {
            let scope = caller.require(&acl)?;
            svc.copy_voicemail_greeting(&scope, target, g, json_body(&body)?)
                .await?;
            Ok(no_content())
        }
        _ => Err(ApiError::route_not_found()),
    }
}
