//! `/groups`: named sets of users sharing policies, their members and
//! policies, and `/users/{uuid}/groups`.
//!
//! Every handler checks its ACL first, then that the group (or user) is
//! visible (404 otherwise), and only then reads and validates the body.

pub mod model;
pub mod service;
pub mod store;

use std::sync::Arc;

use serde_json::Value;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::model::{GroupBody, GroupPutBody};
use self::service::PolicyId;
use crate::api::body::{self, raw_query};
use crate::api::list::ListParams;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::AuthService;

const GROUP_ORDERABLE: &[&str] = &["name", "uuid", "slug"];
const GROUP_FILTERABLE: &[&str] = &[
    "uuid",
    "name",
    "slug",
    "user_uuid",
    "policy_uuid",
    "policy_slug",
    "read_only",
];
const USER_ORDERABLE: &[&str] = &["username", "firstname", "lastname", "uuid", "purpose"];
const USER_FILTERABLE: &[&str] = &["uuid", "username", "firstname", "lastname", "purpose", "email_address"];
const POLICY_ORDERABLE: &[&str] = &["name", "slug", "uuid", "description"];
const POLICY_FILTERABLE: &[&str] = &["uuid", "name", "slug", "tenant_uuid"];

fn json(v: &Value) -> Response {
    warp::reply::json(v).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    group_routes(auth.clone())
        .or(member_routes(auth.clone()))
        .unify()
        .or(policy_routes(auth))
        .unify()
        .boxed()
}

/// CRUD on `/groups`.
fn group_routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let limit = auth.config.http.body_limit;
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list = warp::path!("groups")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.groups.read")?;
                let params = ListParams::parse(&q, GROUP_ORDERABLE, GROUP_FILTERABLE)?;
                Ok(json(&auth.list_groups(&scope, params).await?))
            })
        });

    let a = auth.clone();
    let create = warp::path!("groups")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |caller: Caller, bytes: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require("auth.groups.create")?;
                let new = body::parse_json::<GroupBody>(&bytes)?.validate()?;
                Ok(json(&auth.create_group(&scope, new).await?.to_json()))
            })
        });

    let a = auth.clone();
    let get = warp::path!("groups" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.groups.{}.read", escape_param(&id)))?;
                Ok(json(&auth.get_group(&scope, &id).await?.to_json()))
            })
        });

    let a = auth.clone();
    let update = warp::path!("groups" / String)
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, bytes: bytes::Bytes| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.groups.{}.edit", escape_param(&id)))?;
                let group = auth.get_group(&scope, &id).await?;
                let body = body::parse_json::<GroupPutBody>(&bytes)?;
                Ok(json(&auth.update_group(group, body).await?.to_json()))
            })
        });

    let a = auth.clone();
    let delete =
        warp::path!("groups" / String)
            .and(warp::delete())
            .and(authed)
            .then(move |id: String, caller: Caller| {
                let auth = a.clone();
                respond(async move {
                    let scope = caller.require(&format!("auth.groups.{}.delete", escape_param(&id)))?;
                    auth.delete_group(&scope, &id).await?;
                    Ok(no_content())
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

/// `/groups/{uuid}/users[/{user}]` and `/users/{uuid}/groups`.
fn member_routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list = warp::path!("groups" / String / "users")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |id: String, caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.groups.{}.users.read", escape_param(&id)))?;
                let group = auth.get_group(&scope, &id).await?;
                let params = ListParams::parse(&q, USER_ORDERABLE, USER_FILTERABLE)?;
                Ok(json(&auth.list_group_users(&group, params).await?))
            })
        });

    let a = auth.clone();
    let add = warp::path!("groups" / String / "users" / String)
        .and(warp::put())
        .and(authed.clone())
        .then(move |id: String, user: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "auth.groups.{}.users.{}.create",
                    escape_param(&id),
                    escape_param(&user)
                ))?;
                auth.add_group_user(&scope, &id, &user).await?;
                Ok(no_content())
            })
        });

    let a = auth.clone();
    let remove = warp::path!("groups" / String / "users" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, user: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "auth.groups.{}.users.{}.delete",
                    escape_param(&id),
                    escape_param(&user)
                ))?;
                auth.remove_group_user(&scope, &id, &user).await?;
                Ok(no_content())
            })
        });

    let a = auth.clone();
    let user_groups = warp::path!("users" / String / "groups")
        .and(warp::get())
        .and(authed)
        .and(raw_query())
        .then(move |user: String, caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.users.{}.groups.read", escape_param(&user)))?;
                let user = auth.visible_user(&scope, &user).await?;
                let params = ListParams::parse(&q, GROUP_ORDERABLE, GROUP_FILTERABLE)?;
                Ok(json(&auth.list_user_groups(user.uuid, params).await?))
            })
        });

    list.or(add).unify().or(remove).unify().or(user_groups).unify().boxed()
}

/// `/groups/{uuid}/policies`, by policy uuid and by slug.
fn policy_routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(auth.clone());

    let a = auth.clone();
    let list = warp::path!("groups" / String / "policies")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |id: String, caller: Caller, q: String| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!("auth.groups.{}.policies.read", escape_param(&id)))?;
                let group = auth.get_group(&scope, &id).await?;
                let params = ListParams::parse(&q, POLICY_ORDERABLE, POLICY_FILTERABLE)?;
                Ok(json(&auth.list_group_policies(&group, params).await?))
            })
        });

    let a = auth.clone();
    let add = warp::path!("groups" / String / "policies" / String)
        .and(warp::put())
        .and(authed.clone())
        .then(move |id: String, policy: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "auth.groups.{}.policies.{}.create",
                    escape_param(&id),
                    escape_param(&policy)
                ))?;
                auth.add_group_policy(&scope, &id, PolicyId::UuidOrSlug(&policy))
                    .await?;
                Ok(no_content())
            })
        });

    let a = auth.clone();
    let remove = warp::path!("groups" / String / "policies" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, policy: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "auth.groups.{}.policies.{}.delete",
                    escape_param(&id),
                    escape_param(&policy)
                ))?;
                auth.remove_group_policy(&scope, &id, PolicyId::UuidOrSlug(&policy))
                    .await?;
                Ok(no_content())
            })
        });

    let a = auth.clone();
    let add_slug = warp::path!("groups" / String / "policies" / "slug" / String)
        .and(warp::put())
        .and(authed.clone())
        .then(move |id: String, slug: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "auth.groups.{}.policies.{}.create",
                    escape_param(&id),
                    escape_param(&slug)
                ))?;
                auth.add_group_policy(&scope, &id, PolicyId::Slug(&slug)).await?;
                Ok(no_content())
            })
        });

    let a = auth.clone();
    let remove_slug = warp::path!("groups" / String / "policies" / "slug" / String)
        .and(warp::delete())
        .and(authed)
        .then(move |id: String, slug: String, caller: Caller| {
            let auth = a.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "auth.groups.{}.policies.{}.delete",
                    escape_param(&id),
                    escape_param(&slug)
                ))?;
                auth.remove_group_policy(&scope, &id, PolicyId::Slug(&slug)).await?;
                Ok(no_content())
            })
        });

    list.or(add)
        .unify()
        .or(remove)
        .unify()
        .or(add_slug)
        .unify()
        .or(remove_slug)
        .unify()
        .boxed()
}
