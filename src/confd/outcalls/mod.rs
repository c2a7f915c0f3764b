//! `/outcalls`, `PUT /outcalls/{id}/trunks` (the ordered trunk list) and
//! `PUT/DELETE /outcalls/{id}/extensions/{extension_id}` (a pattern of an
//! `outcall` context with its `prefix`, `external_prefix`, `strip_digits`
//! and `caller_id`). [`outcall_trunks`] and [`outcall_extensions`] are what
//! the dialplan renderer reads.

pub mod model;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

pub use self::model::{Outcall, OutcallExtension, TrunksBody};
use super::contexts::{self, ContextType};
use super::docstore::{self, Key, Row};
use super::error::respond;
use super::extensions::{self, Extension};
use super::reload::Reload;
use super::resource::{self, association_acl, item_acl, Check, Def, EventDef, Resource};
use super::trunks;
use super::ConfdService;
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::{authenticated, Caller};

pub const TABLE: &str = "confd_outcall";

/// A broken association rule: confd's 400 `Resource Error - ...`.
fn rule(message: impl Into<String>) -> ApiError {
    ApiError::conflict("Outcall", "", message)
}

/// The trunk ids of an outcall, in dialling order.
pub fn outcall_trunks(c: &Connection, outcall_id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        c.prepare_cached("SELECT trunk_id FROM confd_outcall_trunk WHERE outcall_id = ?1 ORDER BY position")?;
    let rows = stmt.query_map([outcall_id], |r| r.get(0))?;
    rows.collect()
}

/// One pattern of an outcall.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcallPattern {
    pub extension_id: i64,
    pub exten: String,
    pub context: String,
    pub rewrite: OutcallExtension,
}

/// The patterns of an outcall, by extension id.
pub fn outcall_extensions(c: &Connection, outcall_id: i64) -> rusqlite::Result<Vec<OutcallPattern>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT e.id, e.exten, e.context, oe.prefix, oe.external_prefix, oe.strip_digits, oe.caller_id \
         FROM confd_outcall_extension oe JOIN {} e ON e.id = oe.extension_id \
         WHERE oe.outcall_id = ?1 ORDER BY e.id",
        extensions::TABLE
    ))?;
    let rows = stmt.query_map([outcall_id], |r| {
        Ok(OutcallPattern {
            extension_id: r.get(0)?,
            exten: r.get(1)?,
            context: r.get(2)?,
            rewrite: OutcallExtension {
                prefix: r.get(3)?,
                external_prefix: r.get(4)?,
                strip_digits: r.get(5)?,
                caller_id: r.get(6)?,
            },
        })
    })?;
    rows.collect()
}

/// The outcall a pattern belongs to.
pub fn outcall_of_extension(c: &Connection, extension_id: i64) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT outcall_id FROM confd_outcall_extension WHERE extension_id = ?1",
        [extension_id],
        |r| r.get(0),
    )
    .optional()
}

/// The rule an extension keeps while it is an outcall's: an `outcall`
/// context of the tenant (patterns allowed, no ranges).
pub fn check_outcall_extension(tx: &Connection, tenant: Uuid, ext: &Extension) -> Result<(), ApiError> {
    let context = contexts::of_tenant(tx, &ext.context, tenant)?;
    if context.kind != ContextType::Outcall {
        return Err(rule(format!(
            "Extension '{}@{}' is not in an outcall context (type '{}')",
            ext.exten,
            ext.context,
            context.kind.as_str()
        )));
    }
    Ok(())
}

impl Resource for Outcall {
    const DEF: Def = Def {
        path: &["outcalls"],
        acl: "outcalls",
        table: TABLE,
        kind: "Outcall",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id", "name", "description", "preprocess_subroutine", "ring_time"],
        filterable: &[
            "id",
            "name",
            "enabled",
            "internal_caller_id",
            "preprocess_subroutine",
            "ring_time",
        ],
        searchable: &["name", "description", "preprocess_subroutine"],
        default_order: "name",
        read_only: &["trunks", "extensions", "schedules", "call_permissions"],
        created: EventDef {
            name: "outcall_created",
            routing_key: "config.outcalls.created",
        },
        edited: EventDef {
            name: "outcall_edited",
            routing_key: "config.outcalls.edited",
        },
        deleted: EventDef {
            name: "outcall_deleted",
            routing_key: "config.outcalls.deleted",
        },
        reloads: &[Reload::Dialplan],
    };

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        if docstore::taken(ctx.tx, TABLE, "name", &self.name, ctx.id)?.is_some() {
            return Err(ApiError::conflict(
                "Outcall",
                "name",
                format!("Outcall already exists ('name': '{}')", self.name),
            ));
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let mut trunks_rel = Vec::new();
        for id in outcall_trunks(c, row.id)? {
            let mut t = Map::new();
            t.insert("id".into(), json!(id));
            trunks::endpoint_relations(c, id, &mut t)?;
            trunks_rel.push(Value::Object(t));
        }
        obj.insert("trunks".into(), Value::Array(trunks_rel));
        let extens: Vec<Value> = outcall_extensions(c, row.id)?
            .into_iter()
            .map(|p| {
                json!({
                    "id": p.extension_id, "exten": p.exten, "context": p.context,
                    "prefix": p.rewrite.prefix, "external_prefix": p.rewrite.external_prefix,
                    "strip_digits": p.rewrite.strip_digits, "caller_id": p.rewrite.caller_id,
                })
            })
            .collect();
        obj.insert("extensions".into(), Value::Array(extens));
        obj.insert("schedules".into(), Value::Array(Vec::new()));
        obj.insert("call_permissions".into(), Value::Array(Vec::new()));
        Ok(())
    }

    /// The trunks and patterns are dissociated (kept).
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        tx.execute("DELETE FROM confd_outcall_trunk WHERE outcall_id = ?1", [row.id])?;
        tx.execute("DELETE FROM confd_outcall_extension WHERE outcall_id = ?1", [row.id])?;
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "id": obj.get("id") })
    }
}

impl ConfdService {
    /// PUT `/outcalls/{id}/trunks`: replaces the ordered list.
    async fn outcall_trunks(&self, caller: &Caller, outcall_id: &str, b: Bytes) -> Result<(), ApiError> {
        let scope = caller.require(&item_acl("outcalls", outcall_id, "trunks.update"))?;
        let outcall = self.find::<Outcall>(&scope, outcall_id).await?;
        let body: TrunksBody = resource::from_map(match body::parse_json::<Value>(&b)? {
            Value::Object(m) => m,
            _ => {
                return Err(ApiError::invalid_field(
                    "_schema",
                    "Invalid input type: expected an object",
                ))
            }
        })?;
        let ids: Vec<i64> = body.trunks.iter().map(|t| t.id).collect();
        let mut seen = HashSet::new();
        if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
            return Err(ApiError::invalid_field(
                "trunks",
                format!("Cannot associate the same trunk more than once ('id': {dup})"),
            ));
        }
        let (o, tenant) = (outcall.id, outcall.tenant_uuid);
        let ids2 = ids.clone();
        self.store
            .write(move |tx| {
                for id in &ids2 {
                    let found =
                        docstore::get(tx, trunks::TABLE, Key::Id(*id))?.is_some_and(|r| r.tenant_uuid == tenant);
                    if !found {
                        return Err(ApiError::invalid_field(
                            "trunks",
                            format!("Trunk was not found ('id': {id})"),
                        ));
                    }
                }
                tx.execute("DELETE FROM confd_outcall_trunk WHERE outcall_id = ?1", [o])?;
                for (pos, id) in ids2.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO confd_outcall_trunk (outcall_id, trunk_id, position) VALUES (?1, ?2, ?3)",
                        params![o, id, pos as i64],
                    )?;
                }
                Ok::<_, ApiError>(())
            })
            .await?;
        self.publish_tenant(
            "outcall_trunks_associated",
            "config.outcalls.trunks.updated".into(),
            json!({ "outcall_id": o, "trunk_ids": ids }),
            tenant,
        );
        self.reloader.request(&[Reload::Dialplan]);
        Ok(())
    }

    /// PUT (`associate`, with the rewrite body) or DELETE
    /// `/outcalls/{id}/extensions/{extension_id}`. A PUT on an associated
    /// pair updates the rewrite.
    async fn outcall_extension(
        &self,
        caller: &Caller,
        outcall_id: &str,
        extension_id: &str,
        associate: bool,
        b: Bytes,
    ) -> Result<(), ApiError> {
        let scope = caller.require(&association_acl(
            "outcalls",
            outcall_id,
            "extensions",
            extension_id,
            associate,
        ))?;
        let outcall = self.find::<Outcall>(&scope, outcall_id).await?;
        let ext = self.find::<Extension>(&scope, extension_id).await?;
        let rewrite: OutcallExtension = if !associate || b.iter().all(u8::is_ascii_whitespace) {
            OutcallExtension::default()
        } else {
            match body::parse_json::<Value>(&b)? {
                Value::Object(m) => resource::from_map(m)?,
                _ => {
                    return Err(ApiError::invalid_field(
                        "_schema",
                        "Invalid input type: expected an object",
                    ))
                }
            }
        };
        rewrite.validate()?;
        if outcall.tenant_uuid != ext.tenant_uuid {
            return Err(rule("Outcall and Extension are not in the same tenant"));
        }
        let (o, e) = (outcall.id, ext.clone());
        let tenant = outcall.tenant_uuid;
        let changed = self
            .store
            .write(move |tx| {
                let current = outcall_of_extension(tx, e.id)?;
                if !associate {
                    if current != Some(o) {
                        return Err(rule("Outcall and Extension are not associated"));
                    }
                    tx.execute("DELETE FROM confd_outcall_extension WHERE extension_id = ?1", [e.id])?;
                    return Ok::<_, ApiError>(true);
                }
                if current != Some(o) {
                    let extension: Extension = resource::from_map(e.doc.clone())?;
                    check_outcall_extension(tx, tenant, &extension)?;
                    if let Some(owner) = super::extension_owner(tx, e.id)? {
                        return Err(rule(format!("Extension is already associated with a {owner}")));
                    }
                }
                tx.execute(
                    "INSERT INTO confd_outcall_extension \
                     (outcall_id, extension_id, prefix, external_prefix, strip_digits, caller_id) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT(outcall_id, extension_id) DO UPDATE SET prefix = excluded.prefix, \
                     external_prefix = excluded.external_prefix, strip_digits = excluded.strip_digits, \
                     caller_id = excluded.caller_id",
                    params![
                        o,
                        e.id,
                        rewrite.prefix,
                        rewrite.external_prefix,
                        rewrite.strip_digits,
                        rewrite.caller_id
                    ],
                )?;
                Ok(true)
            })
            .await?;
        if changed {
            self.announce_extension_association("outcall", outcall.id, ext.id, tenant, associate);
        }
        Ok(())
    }
}

/// CRUD plus the trunk list and the extension association.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let s = svc.clone();
    let trunks_route = warp::path!("outcalls" / String / "trunks")
        .and(warp::put())
        .and(authenticated(svc.auth.clone()))
        .and(body::limited_bytes(svc.body_limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                svc.outcall_trunks(&caller, &id, b).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });
    let extension = resource::association_route(
        svc.clone(),
        "outcalls",
        &["extensions"],
        |svc: Arc<ConfdService>, caller: Caller, id: String, other: String, associate: bool, b: Bytes| async move {
            svc.outcall_extension(&caller, &id, &other, associate, b).await
        },
    );
    resource::routes::<Outcall>(svc)
        .or(trunks_route)
        .unify()
        .or(extension)
        .unify()
        .boxed()
}
