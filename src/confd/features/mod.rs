//! `/extensions/features`: the feature codes (`*90` voicemail on, `_*21.`
//! forward...), shared by every tenant, listed and edited but never created
//! or deleted. The default set is seeded by `005_routing.sql`; `feature`
//! names the dialplan subroutine and stays, `exten` and `enabled` change.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::docstore::{self, Row};
use super::error::respond;
use super::extensions::valid_exten;
use super::reload::Reload;
use super::resource::{item_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::body::{self, raw_query};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::caller::{authenticated, Caller};

pub const TABLE: &str = "confd_feature_extension";

/// The dialplan context the feature codes live in.
pub const CONTEXT: &str = "accent-features";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionFeature {
    pub feature: String,
    pub exten: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The feature codes read by the dialplan renderer: `(feature, exten)` of
/// the enabled ones.
pub fn enabled_features(c: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT feature, exten FROM {TABLE} WHERE json_extract(doc, '$.enabled') = 1 ORDER BY feature"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

impl Resource for ExtensionFeature {
    const DEF: Def = Def {
        path: &["extensions", "features"],
        acl: "extensions.features",
        table: TABLE,
        kind: "ExtensionFeature",
        by_uuid: true,
        show_id: false,
        show_uuid: true,
        orderable: &["exten", "feature", "enabled"],
        filterable: &["uuid", "exten", "feature", "enabled"],
        searchable: &["exten", "feature"],
        default_order: "exten",
        read_only: &["feature", "context"],
        // Feature codes are never created nor deleted.
        created: EventDef {
            name: "extension_feature_created",
            routing_key: "config.extension_feature.created",
        },
        edited: EventDef {
            name: "extension_feature_edited",
            routing_key: "config.extension_feature.edited",
        },
        deleted: EventDef {
            name: "extension_feature_deleted",
            routing_key: "config.extension_feature.deleted",
        },
        reloads: &[Reload::Dialplan],
    };

    const GLOBAL: bool = true;

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        if !valid_exten(&self.exten) {
            return Err(ApiError::invalid_field(
                "exten",
                "String does not match expected pattern.",
            ));
        }
        // A feature taking digits after its code (`_*21.`) stays a pattern, the others stay plain.
        let stored: Option<String> = ctx
            .tx
            .query_row(&format!("SELECT exten FROM {TABLE} WHERE id = ?1"), [ctx.id], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(stored) = stored {
            if stored.starts_with('_') != self.exten.starts_with('_') {
                let what = if stored.starts_with('_') {
                    "must be a pattern (starting with '_')"
                } else {
                    "must not be a pattern"
                };
                return Err(ApiError::invalid_field(
                    "exten",
                    format!("The extension of feature '{}' {what}", self.feature),
                ));
            }
        }
        if docstore::taken(ctx.tx, TABLE, "exten", &self.exten, ctx.id)?.is_some() {
            return Err(ApiError::conflict(
                "ExtensionFeature",
                "exten",
                format!("ExtensionFeature already exists ('exten': '{}')", self.exten),
            ));
        }
        Ok(())
    }

    fn relations(_c: &Connection, _row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        obj.insert("context".into(), json!(CONTEXT));
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "uuid": obj.get("uuid") })
    }
}

/// GET `/extensions/features`, GET/PUT `/extensions/features/{uuid}` (routed
/// before `/extensions/{id}`).
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let def = ExtensionFeature::DEF;

    let s = svc.clone();
    let list = warp::path!("extensions" / "features")
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("confd.extensions.features.read")?;
                let params = ListParams::parse(&q, def.orderable, def.filterable)?;
                Ok(warp::reply::json(&svc.list::<ExtensionFeature>(&scope, params).await?).into_response())
            })
        });

    let s = svc.clone();
    let get = warp::path!("extensions" / "features" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl(def.acl, &id, "read"))?;
                Ok(warp::reply::json(&svc.get::<ExtensionFeature>(&scope, &id).await?).into_response())
            })
        });

    let s = svc.clone();
    let update = warp::path!("extensions" / "features" / String)
        .and(warp::put())
        .and(authed)
        .and(body::limited_bytes(svc.body_limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl(def.acl, &id, "update"))?;
                svc.update::<ExtensionFeature>(&scope, &id, b).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    list.or(get).unify().or(update).unify().boxed()
}
