//! `/asterisk/<file>/<section>`: the sections of Asterisk's files edited as a
//! whole (pjsip.conf `[global]`/`[system]`, voicemail.conf `[general]` and
//! `[zonemessages]`, features.conf, confbridge.conf default profiles,
//! iax.conf). Shared by every tenant, stored in `confd_setting` under
//! `asterisk.<file>.<section>`; `GET` shows the defaults until a `PUT`
//! replaces the whole section. Each change publishes upstream's event and
//! asks for the one reload its file needs.

pub mod model;

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

pub use self::model::{FileSection, Stored, SECTIONS};
use super::error::respond;
use super::resource::path_of;
use super::ConfdService;
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::{authenticated, Caller};
use crate::bus::EventSpec;

/// A section's content: the stored one, else its defaults.
pub fn load(c: &Connection, s: &FileSection) -> Result<Stored, ApiError> {
    let v: Option<String> = c
        .query_row("SELECT value FROM confd_setting WHERE key = ?1", [s.key()], |r| {
            r.get(0)
        })
        .optional()?;
    match v {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| ApiError::Internal(format!("stored {} is unreadable: {e}", s.key()))),
        None => Ok(Stored::defaults(s)),
    }
}

/// Every section, keyed `<file>.<section>` (what the renderer reads).
pub fn load_all(c: &Connection) -> Result<Vec<(&'static FileSection, Stored)>, ApiError> {
    SECTIONS.iter().map(|s| Ok((s, load(c, s)?))).collect()
}

fn store(tx: &Connection, s: &FileSection, value: &Stored) -> Result<(), ApiError> {
    let text = serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO confd_setting (key, value) VALUES (?1, ?2) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        rusqlite::params![s.key(), text],
    )?;
    Ok(())
}

impl ConfdService {
    pub async fn asterisk_section(&self, s: &'static FileSection) -> Result<Stored, ApiError> {
        self.store.read(move |c| load(c, s)).await
    }

    /// Replaces the section; publishes the event and requests the reload.
    pub async fn set_asterisk_section(&self, s: &'static FileSection, value: Stored) -> Result<(), ApiError> {
        self.store.write(move |tx| store(tx, s, &value)).await?;
        tracing::info!(file = s.file, section = s.section, "Asterisk section replaced");
        self.bus.publish(EventSpec::new(s.event, s.routing_key, json!({})));
        self.reloader.request(&[s.reload]);
        Ok(())
    }
}

fn section_routes(svc: Arc<ConfdService>, s: &'static FileSection) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let path = path_of(s.path).and(warp::path::end());
    let svc2 = svc.clone();
    let get = path
        .clone()
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let svc = svc2.clone();
            respond(async move {
                caller.require(&s.acl("read"))?;
                let value = svc.asterisk_section(s).await?;
                Ok(warp::reply::json(&value.to_api(s)).into_response())
            })
        });
    let put = path
        .and(warp::put())
        .and(authed)
        .and(body::limited_bytes(svc.body_limit))
        .then(move |caller: Caller, b: Bytes| {
            let svc = svc.clone();
            respond(async move {
                caller.require(&s.acl("update"))?;
                let value = Stored::from_body(s, &b)?;
                svc.set_asterisk_section(s, value).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });
    get.or(put).unify().boxed()
}

/// `GET`/`PUT` of every section.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let mut all = section_routes(svc.clone(), &SECTIONS[0]);
    for s in &SECTIONS[1..] {
        all = all.or(section_routes(svc.clone(), s)).unify().boxed();
    }
    all
}
