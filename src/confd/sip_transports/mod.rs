//! `/sip/transports`: pjsip transports, shared by every tenant. Deleting one
//! moves its endpoints and templates to `?fallback=<uuid>`, or leaves them
//! without a transport.

pub mod model;

use std::sync::Arc;

use rusqlite::Connection;
use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

pub use self::model::Transport;
use super::docstore::{self, Key, Row};
use super::endpoints_sip;
use super::error::respond;
use super::reload::Reload;
use super::resource::{self, item_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::{authenticated, Caller};

pub const TABLE: &str = "confd_sip_transport";

impl Resource for Transport {
    const DEF: Def = Def {
        path: &["sip", "transports"],
        acl: "sip.transports",
        table: TABLE,
        kind: "Transport",
        by_uuid: true,
        show_id: false,
        show_uuid: true,
        orderable: &["uuid", "name"],
        filterable: &["uuid", "name"],
        searchable: &["name"],
        default_order: "name",
        read_only: &[],
        created: EventDef {
            name: "sip_transport_created",
            routing_key: "config.sip.transports.created",
        },
        edited: EventDef {
            name: "sip_transport_edited",
            routing_key: "config.sip.transports.edited",
        },
        deleted: EventDef {
            name: "sip_transport_deleted",
            routing_key: "config.sip.transports.deleted",
        },
        reloads: &[Reload::Pjsip],
    };

    const GLOBAL: bool = true;

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        endpoints_sip::check_section_name_free(ctx.tx, &self.name, TABLE, ctx.id)
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        // What is left after a fallback move loses its transport.
        endpoints_sip::replace_transport(tx, row.uuid, None)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    fallback: Option<String>,
}

impl ConfdService {
    async fn delete_transport(&self, caller: &Caller, id: &str, query: &str) -> Result<(), ApiError> {
        let scope = caller.require(&item_acl("sip.transports", id, "delete"))?;
        let q: DeleteQuery = body::parse_query(query)?;
        let row = self.find::<Transport>(&scope, id).await?;
        if let Some(fallback) = q.fallback {
            let key = Key::parse(&fallback).ok_or_else(|| ApiError::invalid_field("fallback", "Not a valid UUID."))?;
            let old = row.uuid;
            self.store
                .write(move |tx| {
                    let target = docstore::get(tx, TABLE, key)?
                        .filter(|t| t.uuid != old)
                        .ok_or_else(|| ApiError::invalid_field("fallback", "Transport was not found."))?;
                    endpoints_sip::replace_transport(tx, old, Some(target.uuid))
                })
                .await?;
        }
        self.delete::<Transport>(&scope, id).await
    }
}

/// CRUD, the delete taking `?fallback=`.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let s = svc.clone();
    let delete = warp::path!("sip" / "transports" / String)
        .and(warp::delete())
        .and(authenticated(svc.auth.clone()))
        .and(body::raw_query())
        .then(move |id: String, caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                svc.delete_transport(&caller, &id, &q).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });
    delete.or(resource::routes::<Transport>(svc)).unify().boxed()
}
