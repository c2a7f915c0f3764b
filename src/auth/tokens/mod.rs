//! `/token`, `/tokens`, `/sessions` and the per-user variants.

pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::model::{ScopesCheck, TokenQuery, TokenRequest};
use self::service::LoginContext;
use crate::api::body::{self, parse_query, raw_query};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::api::{client_addr, respond};
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::AuthService;

/// Decodes `Authorization: Basic base64(login:password)`.
fn parse_basic(header: Option<String>) -> Option<(String, String)> {
    let header = header?;
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (login, password) = text.split_once(':')?;
    Some((login.to_string(), password.to_string()))
}

fn session_type_mobile(accent: Option<String>, wazo: Option<String>) -> bool {
    accent.or(wazo).is_some_and(|v| v.eq_ignore_ascii_case("mobile"))
}

/// On POST /token, body errors use the legacy auth body, as upstream.
fn legacy(e: ApiError) -> ApiError {
    match e {
        ApiError::InvalidData { details } => ApiError::Legacy {
            status: StatusCode::BAD_REQUEST,
            message: format!("Invalid data: {details}"),
        },
        other => other,
    }
}

pub fn routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let limit = auth.config.http.body_limit;
    let a = auth.clone();
    let create = warp::path!("token")
        .and(warp::post())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("user-agent"))
        .and(warp::header::optional::<String>("accent-session-type"))
        .and(warp::header::optional::<String>("wazo-session-type"))
        .and(client_addr())
        .and(body::limited_bytes(limit))
        .then(
            move |authz, ua: Option<String>, st_a, st_w, addr, bytes: bytes::Bytes| {
                let auth = a.clone();
                respond(async move {
                    let req: TokenRequest = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                        TokenRequest::default()
                    } else {
                        body::parse_json(&bytes).map_err(legacy)?
                    };
                    let req = req
                        .validate(parse_basic(authz), auth.config.auth.max_token_lifetime)
                        .map_err(legacy)?;
                    let ctx = LoginContext {
                        remote_addr: addr,
                        user_agent: ua.unwrap_or_default(),
                        mobile: session_type_mobile(st_a, st_w),
                    };
                    let body = auth.create_token(req, ctx).await?;
                    Ok(warp::reply::json(&body).into_response())
                })
            },
        );

    let a = auth.clone();
    let get =
        warp::path!("token" / String)
            .and(warp::get())
            .and(raw_query())
            .then(move |secret: String, query: String| {
                let auth = a.clone();
                respond(async move {
                    let q: TokenQuery = parse_query(&query)?;
                    let token = auth.check_token(&secret, q.scope.as_deref(), q.tenant.as_deref())?;
                    Ok(warp::reply::json(&json!({ "data": token.to_json(&secret, auth.accent_uuid) })).into_response())
                })
            });

    let a = auth.clone();
    let head =
        warp::path!("token" / String)
            .and(warp::head())
            .and(raw_query())
            .then(move |secret: String, query: String| {
                let auth = a.clone();
                respond(async move {
                    let q: TokenQuery = parse_query(&query)?;
                    auth.check_token(&secret, q.scope.as_deref(), q.tenant.as_deref())?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                })
            });

    let a = auth.clone();
    let delete = warp::path!("token" / String)
        .and(warp::delete())
        .then(move |secret: String| {
            let auth = a.clone();
            respond(async move {
                auth.revoke_token(&secret).await?;
                Ok(warp::reply::json(&json!({ "data": { "message": "success" } })).into_response())
            })
        });

    let a = auth.clone();
    let scopes = warp::path!("token" / String / "scopes" / "check")
        .and(warp::post())
        .and(body::json::<ScopesCheck>(limit))
        .then(move |secret: String, req: ScopesCheck| {
            let auth = a.clone();
            respond(async move {
                Ok(warp::reply::json(&auth.check_scopes(&secret, &req.scopes, req.tenant_uuid)?).into_response())
            })
        });

    let tokens_routes = create
        .or(get)
        .unify()
        .or(head)
        .unify()
        .or(delete)
        .unify()
        .or(scopes)
        .unify();
    tokens_routes.or(protected_routes(auth)).unify().boxed()
}

fn list_params(query: &str, orderable: &[&str], filterable: &[&str]) -> Result<ListParams, ApiError> {
    ListParams::parse(query, orderable, filterable)
}

fn json_response(v: Value) -> Response {
    warp::reply::json(&v).into_response()
}

/// Routes that need a token: session and refresh-token administration.
fn protected_routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list_refresh = warp::path!("tokens")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.tokens.read")?;
                let params = list_params(&q, &["client_id", "created_at", "mobile", "login"], &["client_id"])?;
                Ok(json_response(auth.list_refresh_tokens(&scope, None, params).await?))
            })
        });

    let a = auth.clone();
    let user_refresh = warp::path!("users" / String / "tokens")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |user: String, caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.users.{}.tokens.read", escape_param(&user)))?;
                let user = auth.visible_user(&scope, &user).await?;
                let params = list_params(&q, &["client_id", "created_at", "mobile", "login"], &["client_id"])?;
                Ok(json_response(
                    auth.list_refresh_tokens(&scope, Some(user.uuid), params).await?,
                ))
            })
        });

    let a = auth.clone();
    let delete_refresh = warp::path!("users" / String / "tokens" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |user: String, client_id: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let client_id = percent_decode(&client_id);
                let scope = caller.require(&format!(
                    "auth.users.{}.tokens.{}.delete",
                    escape_param(&user),
                    escape_param(&client_id)
                ))?;
                let user = auth.visible_user(&scope, &user).await?;
                auth.delete_refresh_token(user.uuid, client_id).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let a = auth.clone();
    let list_sessions = warp::path!("sessions")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.sessions.read")?;
                let params = list_params(&q, &["mobile", "user_uuid", "tenant_uuid"], &[])?;
                Ok(json_response(auth.list_sessions(&scope, None, params).await?))
            })
        });

    let a = auth.clone();
    let delete_session = warp::path!("sessions" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |session: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.sessions.{}.delete", escape_param(&session)))?;
                auth.delete_session(&scope, &session, None).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let a = auth.clone();
    let user_sessions = warp::path!("users" / String / "sessions")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |user: String, caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.users.{}.sessions.read", escape_param(&user)))?;
                let user = auth.visible_user(&scope, &user).await?;
                let params = list_params(&q, &["mobile", "user_uuid", "tenant_uuid"], &[])?;
                Ok(json_response(
                    auth.list_sessions(&scope, Some(user.uuid), params).await?,
                ))
            })
        });

    let a = auth.clone();
    let delete_user_session = warp::path!("users" / String / "sessions" / String)
        .and(warp::delete())
        .and(authed)
        .then(move |user: String, session: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "auth.users.{}.sessions.{}.delete",
                    escape_param(&user),
                    escape_param(&session)
                ))?;
                let user = auth.visible_user(&scope, &user).await?;
                auth.delete_session(&scope, &session, Some(user.uuid)).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    list_refresh
        .or(user_refresh)
        .unify()
        .or(delete_refresh)
        .unify()
        .or(list_sessions)
        .unify()
        .or(delete_session)
        .unify()
        .or(user_sessions)
        .unify()
        .or(delete_user_session)
        .unify()
        .boxed()
}

/// Path segments arrive percent-encoded; client ids may contain anything.
pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_parsing() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pa:ss")
        );
        assert_eq!(parse_basic(Some(h)), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(parse_basic(Some("Bearer x".into())), None);
        assert_eq!(parse_basic(Some("Basic !!!".into())), None);
        assert_eq!(parse_basic(None), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
