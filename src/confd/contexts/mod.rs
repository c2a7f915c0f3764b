//! `/contexts`: dialplan contexts, their ranges and included contexts.

pub mod model;

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

pub use self::model::{Context, ContextType, Range};
use super::docstore::{self, Row};
use super::error::respond;
use super::reload::Reload;
use super::resource::{self, item_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::{authenticated, Caller};
use crate::bus::EventSpec;

pub const TABLE: &str = "confd_context";

impl Resource for Context {
    const DEF: Def = Def {
        path: &["contexts"],
        acl: "contexts",
        table: TABLE,
        kind: "Context",
        by_uuid: false,
        show_id: true,
        show_uuid: true,
        orderable: &["id", "name", "label", "description", "type"],
        filterable: &["id", "uuid", "name", "label", "type", "enabled"],
        searchable: &["name", "label", "description", "type"],
        default_order: "label",
        read_only: &["contexts"],
        created: EventDef {
            name: "context_created",
            routing_key: "config.contexts.created",
        },
        edited: EventDef {
            name: "context_edited",
            routing_key: "config.contexts.edited",
        },
        deleted: EventDef {
            name: "context_deleted",
            routing_key: "config.contexts.deleted",
        },
        reloads: &[Reload::Dialplan],
    };

    fn prepare(&mut self, tenant: Uuid, uuid: Uuid, creating: bool) {
        if creating && self.name.is_empty() {
            self.name = Context::generated_name(tenant, self.kind, uuid);
        }
    }

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        if let Some(id) = ctx.id {
            let stored: Option<String> = ctx
                .tx
                .query_row(&format!("SELECT name FROM {TABLE} WHERE id = ?1"), [id], |r| r.get(0))
                .optional()?;
            if stored.as_deref() != Some(self.name.as_str()) {
                return Err(ApiError::invalid_field(
                    "name",
                    "The name of a context cannot be changed.",
                ));
            }
        }
        let taken: Option<i64> = ctx
            .tx
            .query_row(
                &format!("SELECT id FROM {TABLE} WHERE name = ?1 AND id IS NOT ?2"),
                params![self.name, ctx.id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(ApiError::conflict(
                "Context",
                "name",
                format!("Context already exists ('name': '{}')", self.name),
            ));
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        obj.insert("contexts".into(), Value::Array(included(c, row.id)?));
        Ok(())
    }

    /// call-logd resolves a call's tenant through its context (`calllog_context`).
    fn after_write(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        tx.execute(
            "INSERT INTO calllog_context (name, tenant_uuid) VALUES (?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET tenant_uuid = excluded.tenant_uuid",
            params![row.str("name").unwrap_or_default(), row.tenant_uuid.to_string()],
        )?;
        Ok(())
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        let name = row.str("name").unwrap_or_default().to_string();
        for (what, n) in super::context_users(tx, &name)? {
            if n > 0 {
                return Err(ApiError::conflict(
                    "Context",
                    "name",
                    format!("Context is still associated ('{what}': {n})"),
                ));
            }
        }
        tx.execute("DELETE FROM calllog_context WHERE name = ?1", [&name])?;
        Ok(())
    }
}

/// The contexts `id` includes, in order, as `{id, uuid, name, label}`.
fn included(c: &Connection, id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT c.id, c.uuid, c.name, json_extract(c.doc, '$.label') FROM confd_context_include i \
         JOIN {TABLE} c ON c.id = i.included_id WHERE i.context_id = ?1 ORDER BY i.position"
    ))?;
    let rows = stmt.query_map([id], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "uuid": r.get::<_, String>(1)?,
            "name": r.get::<_, String>(2)?,
            "label": r.get::<_, Option<String>>(3)?,
        }))
    })?;
    rows.collect()
}

/// Every context of the installation by name, with its tenant (for other
/// resources' checks).
pub fn by_name(c: &Connection, name: &str) -> Result<Option<(Row, Context)>, ApiError> {
    let rows = docstore::find_by(c, TABLE, "name", &rusqlite::types::Value::Text(name.to_string()))?;
    match rows.into_iter().next() {
        Some(row) => {
            let ctx: Context = resource::from_map(row.doc.clone())?;
            Ok(Some((row, ctx)))
        }
        None => Ok(None),
    }
}

/// The context `name` of `tenant`, else 400 naming the field `context`.
pub fn of_tenant(c: &Connection, name: &str, tenant: Uuid) -> Result<Context, ApiError> {
    by_name(c, name)?
        .filter(|(row, _)| row.tenant_uuid == tenant)
        .map(|(_, context)| context)
        .ok_or_else(|| ApiError::invalid_field("context", format!("Context was not found ('name': '{name}')")))
}

/// The rule a resource reached by an extension keeps (a line, an incall, a conference):
/// the extension's context is the tenant's, of type `kind`, and the exten lies inside the
/// ranges `ranges` picks from it. `rule` makes the resource's own error of a broken rule.
pub fn check_extension_in(
    tx: &Connection,
    tenant: Uuid,
    ext: &super::extensions::Extension,
    kind: ContextType,
    ranges: impl Fn(&Context) -> &[Range],
    rule: impl Fn(String) -> ApiError,
) -> Result<(), ApiError> {
    let context = of_tenant(tx, &ext.context, tenant)?;
    if context.kind != kind {
        return Err(rule(format!(
            "Extension '{}@{}' is not in an {} context (type '{}')",
            ext.exten,
            ext.context,
            kind.as_str(),
            context.kind.as_str()
        )));
    }
    if !ranges(&context).iter().any(|r| r.contains(&ext.exten)) {
        return Err(rule(format!(
            "Extension '{}' is outside of range for context '{}'",
            ext.exten, ext.context
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludeBody {
    contexts: Vec<IdRef>,
}

#[derive(Deserialize)]
struct IdRef {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    #[serde(default)]
    availability: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    offset: Option<u32>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    search: Option<String>,
    #[serde(default)]
    recurse: Option<String>,
}

impl ConfdService {
    async fn include_contexts(&self, caller: &Caller, id: &str, body: Bytes) -> Result<(), ApiError> {
        let scope = caller.require(&item_acl("contexts", id, "contexts.update"))?;
        let ctx = self.find::<Context>(&scope, id).await?;
        let b: IncludeBody = body::parse_json(&body)?;
        let ids: Vec<i64> = b.contexts.iter().map(|r| r.id).collect();
        let tenant = ctx.tenant_uuid;
        let context_id = ctx.id;
        let ids2 = ids.clone();
        self.store
            .write(move |tx| {
                for inc in &ids2 {
                    let row = docstore::get(tx, TABLE, docstore::Key::Id(*inc))?
                        .filter(|r| r.tenant_uuid == tenant)
                        .ok_or_else(|| ApiError::invalid_field("contexts", format!("Context was not found ('id': {inc})")))?;
                    if row.id == context_id {
                        return Err(ApiError::invalid_field("contexts", "A context cannot include itself"));
                    }
                }
                tx.execute("DELETE FROM confd_context_include WHERE context_id = ?1", [context_id])?;
                for (pos, inc) in ids2.iter().enumerate() {
                    tx.execute(
                        "INSERT OR IGNORE INTO confd_context_include (context_id, included_id, position) VALUES (?1, ?2, ?3)",
                        params![context_id, inc, pos as i64],
                    )?;
                }
                Ok::<_, ApiError>(())
            })
            .await?;
        self.bus.publish(
            EventSpec::new(
                "contexts_associated",
                "config.contexts.contexts.updated",
                json!({ "context": { "id": context_id }, "contexts": ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>() }),
            )
            .tenant(tenant),
        );
        self.reloader.request(&[Reload::Dialplan]);
        Ok(())
    }

    async fn context_ranges(
        &self,
        caller: &Caller,
        id: &str,
        range_type: &str,
        query: &str,
    ) -> Result<Value, ApiError> {
        let scope = caller.require(&item_acl("contexts", id, &format!("ranges.{range_type}.read")))?;
        let q: RangeQuery = body::parse_query(query)?;
        let _ = (&q.order, &q.direction, &q.search, &q.recurse);
        let all = match q.availability.as_deref() {
            None | Some("available") => false,
            Some("all") => true,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "availability",
                    "Must be one of: available, all.",
                ))
            }
        };
        let row = self.find::<Context>(&scope, id).await?;
        let ctx: Context = resource::from_map(row.doc.clone())?;
        let ranges = ctx
            .ranges(range_type)
            .ok_or_else(|| {
                ApiError::invalid_field("range_type", "Must be one of: user, group, queue, conference, incall.")
            })?
            .to_vec();
        let name = ctx.name.clone();
        let taken = if all {
            Vec::new()
        } else {
            self.store.read(move |c| super::taken_extens(c, &name)).await?
        };
        let mut items: Vec<Value> = Vec::new();
        for r in &ranges {
            if all {
                items.push(json!({ "start": r.start, "end": r.end() }));
            } else {
                let width = r.start.len();
                for (s, e) in model::available(r, &taken) {
                    items.push(json!({ "start": format!("{s:0width$}"), "end": format!("{e:0width$}") }));
                }
            }
        }
        let total = items.len();
        let offset = q.offset.unwrap_or(0) as usize;
        let items: Vec<Value> = items
            .into_iter()
            .skip(offset)
            .take(q.limit.map(|l| l as usize).unwrap_or(usize::MAX))
            .collect();
        Ok(json!({ "total": total, "items": items }))
    }
}

/// CRUD plus `PUT /contexts/{id}/contexts` and `GET /contexts/{id}/ranges/{type}`.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let limit = svc.body_limit;
    let authed = authenticated(svc.auth.clone());
    let s = svc.clone();
    let include = warp::path!("contexts" / String / "contexts")
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                svc.include_contexts(&caller, &id, b).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });
    let s = svc.clone();
    let ranges = warp::path!("contexts" / String / "ranges" / String)
        .and(warp::get())
        .and(authed)
        .and(body::raw_query())
        .then(move |id: String, range_type: String, caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                Ok(warp::reply::json(&svc.context_ranges(&caller, &id, &range_type, &q).await?).into_response())
            })
        });
    resource::routes::<Context>(svc)
        .or(include)
        .unify()
        .or(ranges)
        .unify()
        .boxed()
}
