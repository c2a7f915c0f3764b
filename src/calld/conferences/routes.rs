//! `/conferences/{id}/participants[/{participant_id}[/mute|/unmute]]` and
//! `/users/me/conferences/{id}/participants`, with upstream's ACLs.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::super::CalldService;
use crate::api::respond;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller};

pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let list = warp::path!("conferences" / String / "participants")
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!("calld.conferences.{}.participants.read", escape_param(&id)))?;
                Ok(warp::reply::json(&svc.list_participants(&scope, &id, None).await?).into_response())
            })
        });

    let s = svc.clone();
    let mine = warp::path!("users" / "me" / "conferences" / String / "participants")
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "calld.users.me.conferences.{}.participants.read",
                    escape_param(&id)
                ))?;
                let me = Some(caller.user_uuid());
                Ok(warp::reply::json(&svc.list_participants(&scope, &id, me).await?).into_response())
            })
        });

    let s = svc.clone();
    let kick = warp::path!("conferences" / String / "participants" / String)
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, participant: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&format!(
                    "calld.conferences.{}.participants.{}.delete",
                    escape_param(&id),
                    escape_param(&participant)
                ))?;
                svc.kick_participant(&scope, &id, &participant).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc.clone();
    let record = warp::path!("conferences" / String / "record")
        .and(warp::post().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authed.clone())
        .then(move |id: String, on: bool, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let verb = if on { "create" } else { "delete" };
                let scope = caller.require(&format!("calld.conferences.{}.record.{verb}", escape_param(&id)))?;
                svc.record_conference(&scope, &id, on).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc;
    let mute = warp::path!("conferences" / String / "participants" / String / String)
        .and(warp::put())
        .and_then(|id: String, participant: String, what: String| async move {
            match what.as_str() {
                "mute" => Ok((id, participant, true)),
                "unmute" => Ok((id, participant, false)),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one()
        .and(authed)
        .then(move |id: String, participant: String, on: bool, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let what = if on { "mute" } else { "unmute" };
                let scope = caller.require(&format!(
                    "calld.conferences.{}.participants.{}.{what}.update",
                    escape_param(&id),
                    escape_param(&participant)
                ))?;
                svc.mute_participant(&scope, &id, &participant, on).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    list.or(mine)
        .unify()
        .or(kick)
        .unify()
        .or(mute)
        .unify()
        .or(record)
        .unify()
        .boxed()
}
