//! The calld routes, admin and `me`: one shape for every call action
//! (`PUT /calls/{id}/<action>[/<verb>]`), with upstream's ACL for each.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::actions::RecordOp;
use super::calls::ListQuery;
use super::owners::EndpointKind;
use super::CalldService;
use crate::api::body::{limited_bytes, parse_json_object, raw_query};
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller, Scope};

fn query(raw: &str) -> Result<ListQuery, ApiError> {
    serde_urlencoded::from_str(raw).map_err(|e| ApiError::invalid_field("query", e.to_string()))
}

/// `PUT /calls/{id}/...`: what to do to the call.
#[derive(Debug, Clone, Copy)]
enum Action {
    Answer,
    Dtmf,
    Mute(bool),
    Hold(bool),
    Record(RecordOp),
}

impl Action {
    fn parse(what: &str, verb: Option<&str>) -> Option<Action> {
        Some(match (what, verb) {
            ("answer", None) => Action::Answer,
            ("dtmf", None) => Action::Dtmf,
            ("mute", Some("start")) => Action::Mute(true),
            ("mute", Some("stop")) => Action::Mute(false),
            ("hold", Some("start")) => Action::Hold(true),
            ("hold", Some("stop")) => Action::Hold(false),
            ("record", Some(verb)) => Action::Record(RecordOp::parse(verb)?),
            _ => return None,
        })
    }

    /// The ACL segments after the call id (`mute.start`).
    fn acl(&self) -> String {
        let on = |b: bool| if b { "start" } else { "stop" };
        match self {
            Action::Answer => "answer".into(),
            Action::Dtmf => "dtmf".into(),
            Action::Mute(b) => format!("mute.{}", on(*b)),
            Action::Hold(b) => format!("hold.{}", on(*b)),
            Action::Record(op) => format!(
                "record.{}",
                match op {
                    RecordOp::Start => "start",
                    RecordOp::Stop => "stop",
                    RecordOp::Pause => "pause",
                    RecordOp::Resume => "resume",
                }
            ),
        }
    }
}

/// `/<action>` or `/<action>/<verb>` at the end of the path.
fn action() -> impl Filter<Extract = (Action,), Error = Rejection> + Clone {
    let one = warp::path::param::<String>()
        .and(warp::path::end())
        .and_then(|what: String| async move { Action::parse(&what, None).ok_or_else(warp::reject::not_found) });
    let two = warp::path::param::<String>()
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and_then(|what: String, verb: String| async move {
            Action::parse(&what, Some(&verb)).ok_or_else(warp::reject::not_found)
        });
    one.or(two).unify()
}

#[derive(serde::Deserialize)]
struct DtmfQuery {
    digits: Option<String>,
}

async fn run(
    svc: &CalldService,
    scope: &Scope,
    id: &str,
    me: Option<uuid::Uuid>,
    action: Action,
    q: &str,
) -> Result<(), ApiError> {
    match action {
        Action::Answer => svc.answer(scope, id, me).await,
        Action::Dtmf => {
            let q: DtmfQuery =
                serde_urlencoded::from_str(q).map_err(|e| ApiError::invalid_field("digits", e.to_string()))?;
            svc.dtmf(scope, id, me, q.digits.as_deref()).await
        }
        Action::Mute(on) => svc.mute(scope, id, me, on).await,
        Action::Hold(on) => svc.hold(scope, id, me, on).await,
        Action::Record(op) => svc.record(scope, id, me, op).await,
    }
}

pub(super) fn no_content(r: Result<(), ApiError>) -> Result<Response, ApiError> {
    r.map(|()| StatusCode::NO_CONTENT.into_response())
}

pub(super) fn created(v: &serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(v), StatusCode::CREATED).into_response()
}

/// An optional `users/me` prefix: `true` when the path has it.
pub(super) fn me_prefix() -> impl Filter<Extract = (bool,), Error = std::convert::Infallible> + Clone {
    warp::path("users")
        .and(warp::path("me"))
        .map(|| true)
        .or(warp::any().map(|| false))
        .unify()
}

/// `/transfers` and `/users/me/transfers`.
fn transfer_routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let acl = |mine: bool| {
        if mine {
            "calld.users.me.transfers"
        } else {
            "calld.transfers"
        }
    };

    let s = svc.clone();
    let create = me_prefix()
        .and(warp::path!("transfers"))
        .and(warp::post())
        .and(authed.clone())
        .and(limited_bytes(svc.body_limit))
        .then(move |mine: bool, caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("{}.create", acl(mine)))?;
                let t = if mine {
                    svc.create_my_transfer(&scope, caller.user_uuid(), parse_json_object(&body)?)
                        .await?
                } else {
                    svc.create_transfer(&scope, parse_json_object(&body)?).await?
                };
                Ok(created(&t))
            })
        });

    let s = svc.clone();
    let mine_list = warp::path!("users" / "me" / "transfers")
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let svc = s.clone();
            respond(async move {
                caller.require("calld.users.me.transfers.read")?;
                Ok(warp::reply::json(&svc.my_transfers(caller.user_uuid())).into_response())
            })
        });

    let s = svc.clone();
    let one = me_prefix()
        .and(warp::path("transfers"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get().map(|| "read").or(warp::delete().map(|| "delete")).unify())
        .and(authed.clone())
        .then(move |mine: bool, id: String, verb: &'static str, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("{}.{}.{verb}", acl(mine), escape_param(&id)))?;
                let user = mine.then(|| caller.user_uuid());
                if verb == "read" {
                    return Ok(warp::reply::json(&svc.get_transfer(&scope, &id, user)?).into_response());
                }
                no_content(svc.cancel_transfer(&scope, &id, user).await)
            })
        });

    let s = svc;
    let complete = me_prefix()
        .and(warp::path("transfers"))
        .and(warp::path::param::<String>())
        .and(warp::path("complete"))
        .and(warp::path::end())
        .and(warp::put())
        .and(authed)
        .then(move |mine: bool, id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("{}.{}.complete.update", acl(mine), escape_param(&id)))?;
                no_content(
                    svc.complete_transfer(&scope, &id, mine.then(|| caller.user_uuid()))
                        .await,
                )
            })
        });

    create
        .or(mine_list)
        .unify()
        .or(one)
        .unify()
        .or(complete)
        .unify()
        .boxed()
}

/// `PUT /calls/{id}/user/{user_uuid}`: connect a call to a user.
fn connect_route(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    warp::path!("calls" / String / "user" / String)
        .and(warp::put())
        .and(authed)
        .and(limited_bytes(svc.body_limit))
        .then(move |id: String, user: String, caller: Caller, body: bytes::Bytes| {
            let svc = svc.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "calld.calls.{}.user.{}.update",
                    escape_param(&id),
                    escape_param(&user)
                ))?;
                // The body is optional: none means the default ring time.
                let req = if body.iter().all(u8::is_ascii_whitespace) {
                    super::connect::ConnectRequest::default()
                } else {
                    parse_json_object(&body)?
                };
                let call = svc.connect_user(&scope, &id, &user, req).await?;
                Ok(warp::reply::json(&call).into_response())
            })
        })
        .boxed()
}

/// `/users/me/relocates`.
fn relocate_routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let create = warp::path!("users" / "me" / "relocates")
        .and(warp::post())
        .and(authed.clone())
        .and(limited_bytes(svc.body_limit))
        .then(move |caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("calld.users.me.relocates.create")?;
                let r = svc
                    .create_relocate(&scope, caller.user_uuid(), parse_json_object(&body)?)
                    .await?;
                Ok(created(&r))
            })
        });

    let s = svc.clone();
    let list = warp::path!("users" / "me" / "relocates")
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let svc = s.clone();
            respond(async move {
                caller.require("calld.users.me.relocates.read")?;
                Ok(warp::reply::json(&svc.my_relocates(caller.user_uuid())).into_response())
            })
        });

    let s = svc.clone();
    let one = warp::path!("users" / "me" / "relocates" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                // upstream documents this route's ACL spelled this way; the spelling of the
                // other relocate routes (which the default user policy grants) opens it too.
                let id_acl = escape_param(&id);
                if caller
                    .require(&format!("calld.relocates.users.me.{id_acl}.read"))
                    .is_err()
                {
                    caller.require(&format!("calld.users.me.relocates.{id_acl}.read"))?;
                }
                Ok(warp::reply::json(&svc.get_relocate(caller.user_uuid(), &id)?).into_response())
            })
        });

    let s = svc;
    let act = warp::path!("users" / "me" / "relocates" / String / String)
        .and(warp::put())
        .and(authed)
        .then(move |id: String, verb: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                if verb != "complete" && verb != "cancel" {
                    return Err(ApiError::route_not_found());
                }
                caller.require(&format!("calld.users.me.relocates.{}.{verb}.update", escape_param(&id)))?;
                let user = caller.user_uuid();
                if verb == "complete" {
                    no_content(svc.complete_relocate(user, &id).await)
                } else {
                    no_content(svc.cancel_relocate(user, &id).await)
                }
            })
        });

    create.or(list).unify().or(one).unify().or(act).unify().boxed()
}

/// The calls routes, admin and `me`.
pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let transfers = transfer_routes(svc.clone());
    let connect = connect_route(svc.clone());
    let relocates = relocate_routes(svc.clone());
    let adhoc = super::adhoc::routes::routes(svc.clone());
    let voicemails = super::voicemail::routes::routes(svc.clone());
    let svc_conferences = svc.clone();
    let applications = super::applications::routes::routes(svc.clone());
    let parking = super::parking::routes::routes(svc.clone());
    let faxes = super::faxes::routes::routes(svc.clone());
    let switchboards = super::switchboards::routes::routes(svc.clone());
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
                let body = svc.list_calls(&scope, &query(&q)?, None).await?;
                Ok(json_body(body))
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
    let act = warp::path("calls")
        .and(warp::path::param::<String>())
        .and(action())
        .and(warp::put())
        .and(authed.clone())
        .and(raw_query())
        .then(move |id: String, action: Action, caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("calld.calls.{}.{}.update", escape_param(&id), action.acl()))?;
                run(&svc, &scope, &id, None, action, &q).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc.clone();
    let endpoints = warp::path!(String)
        .and(warp::get())
        .and_then(|what: String| async move {
            match what.as_str() {
                "lines" => Ok(EndpointKind::Line),
                "trunks" => Ok(EndpointKind::Trunk),
                _ => Err(warp::reject::not_found()),
            }
        })
        .and(authed.clone())
        .and(raw_query())
        .then(move |kind: EndpointKind, caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("calld.{}s.read", kind.as_str()))?;
                let items = svc.endpoint_statuses(&scope, kind, &query(&q)?).await?;
                Ok(warp::reply::json(&items).into_response())
            })
        });

    let s = svc.clone();
    let create = me_prefix()
        .and(warp::path!("calls"))
        .and(warp::post())
        .and(authed.clone())
        .and(limited_bytes(svc.body_limit))
        .then(move |mine: bool, caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let call = if mine {
                    let scope = caller.require("calld.users.me.calls.create")?;
                    svc.originate_mine(&scope, caller.user_uuid(), parse_json_object(&body)?)
                        .await?
                } else {
                    let scope = caller.require("calld.calls.create")?;
                    svc.originate(&scope, parse_json_object(&body)?).await?
                };
                Ok(created(&call))
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
                let body = svc.list_calls(&scope, &query(&q)?, Some(me)).await?;
                Ok(json_body(body))
            })
        });

    let s = svc.clone();
    let my_hangup = warp::path!("users" / "me" / "calls" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("calld.users.me.calls.{}.delete", escape_param(&id)))?;
                // Another user's call is as unknown as a missing one.
                svc.hangup(&scope, &id, Some(caller.user_uuid())).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc;
    let my_act = warp::path("users")
        .and(warp::path("me"))
        .and(warp::path("calls"))
        .and(warp::path::param::<String>())
        .and(action())
        .and(warp::put())
        .and(authed)
        .and(raw_query())
        .then(move |id: String, action: Action, caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let id_acl = escape_param(&id);
                let own = format!("calld.users.me.calls.{id_acl}.{}.update", action.acl());
                let scope = match (caller.require(&own), action) {
                    // upstream documents the admin ACL on the user's record routes: both open them.
                    (Err(_), Action::Record(_)) => {
                        caller.require(&format!("calld.calls.{id_acl}.{}.update", action.acl()))?
                    }
                    (scope, _) => scope?,
                };
                run(&svc, &scope, &id, Some(caller.user_uuid()), action, &q).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    // Boxed in groups: one long chain of `or`s nests every route's future in the next
    // one's type, and the compiler's work on that type grew far faster than the chain.
    let calls = list
        .or(get)
        .unify()
        .or(hangup)
        .unify()
        .or(act)
        .unify()
        .or(create)
        .unify()
        .or(endpoints)
        .unify()
        .boxed();
    let mine = my_list.or(my_hangup).unify().or(my_act).unify().boxed();
    let features = transfers
        .or(voicemails)
        .unify()
        .or(super::conferences::routes::routes(svc_conferences))
        .unify()
        .or(applications)
        .unify()
        .or(parking)
        .unify()
        .boxed();
    let moves = faxes
        .or(switchboards)
        .unify()
        .or(connect)
        .unify()
        .or(relocates)
        .unify()
        .or(adhoc)
        .unify()
        .boxed();
    warp::path("api")
        .and(warp::path("calld"))
        .and(warp::path("1.0"))
        .and(calls.or(mine).unify().or(features).unify().or(moves).unify())
        .boxed()
}

/// A JSON body serialized already.
fn json_body(body: Vec<u8>) -> Response {
    warp::reply::with_header(body, "content-type", "application/json").into_response()
}
