//! `/users`: auth users (PBX users and service accounts), their password,
//! email addresses and directly attached policies.
//!
//! Bodies are read as bytes and parsed after the ACL check, so a caller
//! without the right learns nothing from validation errors.

pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::model::{EmailsBody, PasswordBody, UserBody, UserEditBody};
use crate::api::body::{self, raw_query};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::api::{client_addr, respond};
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::AuthService;

const ORDERABLE: &[&str] = &["username", "firstname", "lastname", "uuid", "purpose"];
const FILTERABLE: &[&str] = &[
    "uuid",
    "username",
    "firstname",
    "lastname",
    "purpose",
    "email_address",
    "group_uuid",
    "policy_uuid",
    "policy_slug",
    "has_policy_uuid",
    "has_policy_slug",
];
const POLICY_ORDERABLE: &[&str] = &["name", "description", "uuid", "slug"];
const POLICY_FILTERABLE: &[&str] = &["uuid", "name", "slug"];

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    body::parse_json(bytes)
}

fn json_reply(v: &serde_json::Value) -> Response {
    warp::reply::json(v).into_response()
}

pub fn routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    user_routes(auth.clone())
        .or(detail_routes(auth.clone()))
        .unify()
        .or(policy_routes(auth))
        .unify()
        .boxed()
}

/// `/users` and `/users/{uuid}`.
fn user_routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let limit = auth.config.http.body_limit;
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list = warp::path!("users")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.users.read")?;
                let params = ListParams::parse(&q, ORDERABLE, FILTERABLE)?;
                Ok(json_reply(&auth.list_users(&scope, params).await?))
            })
        });

    let a = auth.clone();
    let create = warp::path!("users")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |caller: Caller, bytes: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.users.create")?;
                let b: UserBody = parse(&bytes)?;
                Ok(json_reply(&auth.create_user(&scope, b).await?.to_json()))
            })
        });

    let a = auth.clone();
    let get =
        warp::path!("users" / String)
            .and(warp::get())
            .and(authed.clone())
            .then(move |id: String, caller: Caller| {
                let auth = a.clone();
                respond(async move {
                    let scope = caller.require(&format!("auth.users.{}.read", escape_param(&id)))?;
                    Ok(json_reply(&auth.user_in_scope(&scope, &id).await?.to_json()))
                })
            });

    let a = auth.clone();
    let update = warp::path!("users" / String)
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, bytes: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.users.{}.edit", escape_param(&id)))?;
                let user = auth.user_in_scope(&scope, &id).await?;
                let b: UserEditBody = parse(&bytes)?;
                Ok(json_reply(&auth.update_user(&user, b).await?.to_json()))
            })
        });

    let a = auth.clone();
    let delete =
        warp::path!("users" / String)
            .and(warp::delete())
            .and(authed)
            .then(move |id: String, caller: Caller| {
                let auth = a.clone();
                respond(async move {
                    let scope = caller.require(&format!("auth.users.{}.delete", escape_param(&id)))?;
                    auth.delete_user(&scope, &id).await?;
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
        .boxed()
}

/// Password and email addresses.
fn detail_routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let limit = auth.config.http.body_limit;
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let password = warp::path!("users" / String / "password")
        .and(warp::put())
        .and(authed.clone())
        .and(client_addr())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, addr, bytes: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.users.{}.password.edit", escape_param(&id)))?;
                let user = auth.user_in_scope(&scope, &id).await?;
                let b: PasswordBody = parse(&bytes)?;
                auth.change_password(&user, b, addr).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let a = auth.clone();
    let emails = warp::path!("users" / String / "emails")
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, bytes: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.users.{}.emails.edit", escape_param(&id)))?;
                let user = auth.user_in_scope(&scope, &id).await?;
                let b: EmailsBody = parse(&bytes)?;
                Ok(json_reply(&auth.update_user_emails(&user, b, false).await?))
            })
        });

    let a = auth.clone();
    let admin_emails = warp::path!("admin" / "users" / String / "emails")
        .and(warp::put())
        .and(authed)
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, bytes: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.admin.users.{}.emails.edit", escape_param(&id)))?;
                let user = auth.user_in_scope(&scope, &id).await?;
                let b: EmailsBody = parse(&bytes)?;
                Ok(json_reply(&auth.update_user_emails(&user, b, true).await?))
            })
        });

    password.or(emails).unify().or(admin_emails).unify().boxed()
}

/// Attach (`create`) or detach (`delete`) one policy; `policy` is the path
/// value, a uuid or a slug, as it appears in the required ACL.
async fn change_policy(
    auth: Arc<AuthService>,
    caller: Caller,
    user: String,
    policy: String,
    attach: bool,
) -> Result<Response, ApiError> {
    let action = if attach { "create" } else { "delete" };
    let scope = caller.require(&format!(
        "auth.users.{}.policies.{}.{action}",
        escape_param(&user),
        escape_param(&policy)
    ))?;
    if attach {
        auth.attach_user_policy(&scope, &user, &policy).await?;
    } else {
        auth.detach_user_policy(&scope, &user, &policy).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `/users/{uuid}/policies[...]`.
fn policy_routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list = warp::path!("users" / String / "policies")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |id: String, caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.users.{}.policies.read", escape_param(&id)))?;
                let params = ListParams::parse(&q, POLICY_ORDERABLE, POLICY_FILTERABLE)?;
                Ok(json_reply(&auth.list_user_policies(&scope, &id, params).await?))
            })
        });

    let a = auth.clone();
    let by_id = warp::path!("users" / String / "policies" / String)
        .and(warp::put().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authed.clone())
        .then(move |user: String, policy: String, attach: bool, caller: Caller| {
            respond(change_policy(a.clone(), caller, user, policy, attach))
        });

    let a = auth.clone();
    let by_slug = warp::path!("users" / String / "policies" / "slug" / String)
        .and(warp::put().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authed)
        .then(move |user: String, slug: String, attach: bool, caller: Caller| {
            respond(change_policy(a.clone(), caller, user, slug, attach))
        });

    list.or(by_id).unify().or(by_slug).unify().boxed()
}
