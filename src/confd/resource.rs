//! The shape every confd resource shares. A resource is a typed struct of its
//! writable fields (serde, unknown fields refused) plus a static [`Def`]
//! (paths, ACL names, table, list options, events, reloads); this module
//! gives it the five REST operations (list, create, get, update, delete),
//! tenant scoping, body validation, events and reload requests, so each
//! resource module only holds what is particular to it: its fields, its
//! database checks and its relations.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::docstore::{self, Key, ListSpec, Row};
use super::error::respond;
use super::reload::Reload;
use super::ConfdService;
use crate::api::body::{self, raw_query};
use crate::api::error::ApiError;
use crate::api::list::ListParams;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller, Scope};
use crate::bus::EventSpec;

/// One bus event of a resource: its name and routing key.
#[derive(Debug, Clone, Copy)]
pub struct EventDef {
    pub name: &'static str,
    pub routing_key: &'static str,
}

/// Everything static about a resource.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// URL segments under `/api/confd/1.1`, e.g. `["endpoints", "sip"]`.
    pub path: &'static [&'static str],
    /// ACL segment: `confd.<acl>.read`, `confd.<acl>.<id>.update`...
    pub acl: &'static str,
    pub table: &'static str,
    /// The name in error messages ("Context").
    pub kind: &'static str,
    /// Whether the URL and `Location` name items by uuid (else by id).
    /// Both are always accepted in paths.
    pub by_uuid: bool,
    /// Whether `id` / `uuid` appear in the API object.
    pub show_id: bool,
    pub show_uuid: bool,
    pub orderable: &'static [&'static str],
    pub filterable: &'static [&'static str],
    pub searchable: &'static [&'static str],
    pub default_order: &'static str,
    /// Keys accepted in bodies and ignored: relations and other read-only
    /// fields that clients send back after a GET.
    pub read_only: &'static [&'static str],
    pub created: EventDef,
    pub edited: EventDef,
    pub deleted: EventDef,
    pub reloads: &'static [Reload],
}

/// What a database check sees: the write transaction and the resource's identity.
pub struct Check<'a> {
    pub tx: &'a Connection,
    pub tenant_uuid: Uuid,
    /// `None` while creating.
    pub id: Option<i64>,
    pub uuid: Uuid,
}

pub trait Resource: Serialize + DeserializeOwned + Send + Sync + Sized + 'static {
    const DEF: Def;

    /// Shared by every tenant (SIP transports): listed and found whatever the
    /// request's tenant, no `tenant_uuid` in the object, events without tenant.
    const GLOBAL: bool = false;

    /// Server-side values (generated names, derived fields), before every
    /// create (`creating`) and update.
    fn prepare(&mut self, _tenant: Uuid, _uuid: Uuid, _creating: bool) {}

    /// How a PUT body's fields go over the stored document (a plain overlay
    /// unless fields depend on each other).
    fn merge(base: &mut Map<String, Value>, body: Map<String, Value>) {
        base.extend(body);
    }

    /// Server-side values that need the database (a generated name or code
    /// that must be free), in the write transaction, before `check`.
    fn fill(&mut self, _ctx: &Check<'_>) -> Result<(), ApiError> {
        Ok(())
    }

    /// Checks that need the database (uniqueness, references, ranges), run in
    /// the write transaction before the row is written.
    fn check(&self, _ctx: &Check<'_>) -> Result<(), ApiError> {
        Ok(())
    }

    /// Keeps derived tables in step after the row was written (same transaction).
    fn after_write(_tx: &Connection, _row: &Row) -> Result<(), ApiError> {
        Ok(())
    }

    /// Adds relation fields (read-only) to the API object.
    fn relations(_c: &Connection, _row: &Row, _obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        Ok(())
    }

    /// Refuses the delete (still used elsewhere) or removes dependents.
    fn before_delete(_tx: &Connection, _row: &Row) -> Result<(), ApiError> {
        Ok(())
    }

    /// The event payload; by default the API object without relations.
    fn event_data(obj: &Map<String, Value>) -> Value {
        Value::Object(obj.clone())
    }

    /// The bus event of a change (before its tenant is set): by default the
    /// static name and routing key; a resource whose routing key names the item
    /// builds its own.
    fn event(event: EventDef, obj: &Map<String, Value>) -> EventSpec {
        EventSpec::new(event.name, event.routing_key, Self::event_data(obj))
    }

    /// The ACL of an operation: `confd.<acl>.<action>` on the collection
    /// (`id` `None`), `confd.<acl>.<id>.<action>` on an item. Upstream spells a
    /// few differently (switchboards' singular create and delete).
    fn acl(action: &str, id: Option<&str>) -> String {
        match id {
            None => format!("confd.{}.{action}", Self::DEF.acl),
            Some(id) => item_acl(Self::DEF.acl, id, action),
        }
    }
}

/// The API object: id/uuid/tenant plus the document.
pub fn base_object<R: Resource>(row: &Row) -> Map<String, Value> {
    let mut obj = Map::new();
    if R::DEF.show_id {
        obj.insert("id".into(), json!(row.id));
    }
    if R::DEF.show_uuid {
        obj.insert("uuid".into(), json!(row.uuid));
    }
    if !R::GLOBAL {
        obj.insert("tenant_uuid".into(), json!(row.tenant_uuid));
    }
    for (k, v) in &row.doc {
        obj.insert(k.clone(), v.clone());
    }
    obj
}

/// The full API object, relations included.
pub fn api_object<R: Resource>(c: &Connection, row: &Row) -> rusqlite::Result<Value> {
    let mut obj = base_object::<R>(row);
    R::relations(c, row, &mut obj)?;
    Ok(Value::Object(obj))
}

fn not_found<R: Resource>(id: &str) -> ApiError {
    ApiError::not_found(R::DEF.kind, id)
}

/// Parses a body into `R`. `base` (the stored document, for PUT) is
/// overlaid with the body's keys, so a PUT only changes what it names.
pub fn parse_body<R: Resource>(bytes: &[u8], base: Option<&Map<String, Value>>) -> Result<R, ApiError> {
    let value: Value = body::parse_json(bytes)?;
    let Value::Object(fields) = value else {
        return Err(ApiError::InvalidData {
            details: json!({ "_schema": ["Invalid input type: expected an object"] }),
        });
    };
    parse_fields(fields, base)
}

/// [`parse_body`] for an object already parsed (a part of a nested body).
pub fn parse_fields<R: Resource>(
    mut fields: Map<String, Value>,
    base: Option<&Map<String, Value>>,
) -> Result<R, ApiError> {
    for key in ["id", "uuid", "tenant_uuid", "links"].iter().chain(R::DEF.read_only) {
        fields.remove(*key);
    }
    let mut merged = base.cloned().unwrap_or_default();
    R::merge(&mut merged, fields);
    from_map(merged)
}

/// Deserializes a document into `R`, naming the field at fault.
pub fn from_map<R: DeserializeOwned>(map: Map<String, Value>) -> Result<R, ApiError> {
    serde_path_to_error::deserialize::<_, R>(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let root = path == "." || path.is_empty();
        // serde says "missing field `name`" at the object holding it.
        if let Some(rest) = message.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or_default();
            let field = if root {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::invalid_field(&field, "Missing data for required field.");
        }
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default();
            return ApiError::invalid_field(field, "Unknown field.");
        }
        let field = if path == "." || path.is_empty() {
            "_schema".to_string()
        } else {
            path
        };
        ApiError::invalid_field(&field, message)
    })
}

/// The resource as a document (what is stored).
pub fn to_doc<R: Resource>(r: &R) -> Result<Map<String, Value>, ApiError> {
    match serde_json::to_value(r) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::Internal(format!("{} is not an object", R::DEF.kind))),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// Maps a unique-constraint failure to upstream's "already exists".
pub fn map_write_error<R: Resource>(e: rusqlite::Error) -> ApiError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            let detail = msg.clone().unwrap_or_default();
            return ApiError::conflict(R::DEF.kind, "", format!("{} already exists ({detail})", R::DEF.kind));
        }
    }
    ApiError::from(e)
}

/// Checks and inserts `resource` inside a write transaction (for services
/// that create several resources at once); `prepare` must have run.
pub fn insert_row<R: Resource>(tx: &Connection, tenant: Uuid, uuid: Uuid, resource: &R) -> Result<Row, ApiError> {
    resource.check(&Check {
        tx,
        tenant_uuid: tenant,
        id: None,
        uuid,
    })?;
    let doc = to_doc(resource)?;
    let id = docstore::insert(tx, R::DEF.table, uuid, tenant, &doc).map_err(map_write_error::<R>)?;
    let row = Row {
        id,
        uuid,
        tenant_uuid: tenant,
        doc,
    };
    R::after_write(tx, &row)?;
    Ok(row)
}

impl ConfdService {
    pub fn publish<R: Resource>(&self, event: EventDef, tenant: Uuid, obj: &Map<String, Value>) {
        let spec = R::event(event, obj);
        self.bus.publish(if R::GLOBAL { spec } else { spec.tenant(tenant) });
    }

    /// A visible row by path id (`42` or a uuid), else 404.
    pub async fn find<R: Resource>(&self, scope: &Scope, id: &str) -> Result<Row, ApiError> {
        let key = Key::parse(id).ok_or_else(|| not_found::<R>(id))?;
        let row = self
            .store
            .read(move |c| docstore::get(c, R::DEF.table, key).map_err(ApiError::from))
            .await?
            .ok_or_else(|| not_found::<R>(id))?;
        if !R::GLOBAL && !scope.can_see(row.tenant_uuid) {
            return Err(not_found::<R>(id));
        }
        Ok(row)
    }

    pub async fn list<R: Resource>(&self, scope: &Scope, params: ListParams) -> Result<Value, ApiError> {
        let tenants = (!R::GLOBAL).then(|| scope.tenants(params.recurse));
        self.store
            .read(move |c| {
                let spec = ListSpec {
                    table: R::DEF.table,
                    searchable: R::DEF.searchable,
                    default_order: R::DEF.default_order,
                };
                let (total, rows) = docstore::list(c, &spec, tenants.as_deref(), &params)?;
                let items = rows
                    .iter()
                    .map(|r| api_object::<R>(c, r))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok::<_, ApiError>(json!({ "total": total, "items": items }))
            })
            .await
    }

    pub async fn get<R: Resource>(&self, scope: &Scope, id: &str) -> Result<Value, ApiError> {
        let row = self.find::<R>(scope, id).await?;
        self.store
            .read(move |c| api_object::<R>(c, &row).map_err(ApiError::from))
            .await
    }

    /// Creates `resource` in the scope's tenant; returns the API object.
    pub async fn create<R: Resource>(&self, scope: &Scope, resource: R) -> Result<Value, ApiError> {
        let tenant = scope.tenant();
        let (row, obj) = self
            .store
            .write(move |tx| {
                let row = insert_tx(tx, tenant, resource)?;
                let obj = api_object::<R>(tx, &row)?;
                Ok::<_, ApiError>((row, obj))
            })
            .await?;
        self.announce_created::<R>(&row);
        Ok(obj)
    }

    /// The event and reloads of a created row (after its transaction committed).
    pub fn announce_created<R: Resource>(&self, row: &Row) {
        tracing::info!(kind = R::DEF.kind, id = row.id, "created");
        self.publish::<R>(R::DEF.created, row.tenant_uuid, &base_object::<R>(row));
        self.reloader.request(R::DEF.reloads);
    }

    /// Partial update: the body's fields over the stored ones.
    pub async fn update<R: Resource>(&self, scope: &Scope, id: &str, body: Bytes) -> Result<(), ApiError> {
        let current = self.find::<R>(scope, id).await?;
        let mut resource: R = parse_body(&body, Some(&current.doc))?;
        resource.prepare(current.tenant_uuid, current.uuid, false);
        let row = self
            .store
            .write(move |tx| {
                let ctx = Check {
                    tx,
                    tenant_uuid: current.tenant_uuid,
                    id: Some(current.id),
                    uuid: current.uuid,
                };
                resource.fill(&ctx)?;
                resource.check(&ctx)?;
                let doc = to_doc(&resource)?;
                docstore::update(tx, R::DEF.table, current.id, &doc).map_err(map_write_error::<R>)?;
                let row = Row { doc, ..current };
                R::after_write(tx, &row)?;
                Ok::<_, ApiError>(row)
            })
            .await?;
        self.publish::<R>(R::DEF.edited, row.tenant_uuid, &base_object::<R>(&row));
        self.reloader.request(R::DEF.reloads);
        Ok(())
    }

    pub async fn delete<R: Resource>(&self, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let row = self.find::<R>(scope, id).await?;
        let r = row.clone();
        self.store
            .write(move |tx| {
                R::before_delete(tx, &r)?;
                docstore::delete(tx, R::DEF.table, r.id).map_err(ApiError::from)
            })
            .await?;
        tracing::info!(kind = R::DEF.kind, id = row.id, "deleted");
        self.publish::<R>(R::DEF.deleted, row.tenant_uuid, &base_object::<R>(&row));
        self.reloader.request(R::DEF.reloads);
        Ok(())
    }
}

/// Creates `resource` in `tenant` inside a write transaction: server-side
/// values, checks, the row, derived tables. Nothing is published.
pub fn insert_tx<R: Resource>(tx: &Connection, tenant: Uuid, mut resource: R) -> Result<Row, ApiError> {
    let uuid = Uuid::new_v4();
    resource.prepare(tenant, uuid, true);
    resource.fill(&Check {
        tx,
        tenant_uuid: tenant,
        id: None,
        uuid,
    })?;
    insert_row(tx, tenant, uuid, &resource)
}

/// The collection path (`/contexts`), without the end-of-path check.
pub fn path_of(segments: &'static [&'static str]) -> BoxedFilter<()> {
    let mut filter = warp::any().boxed();
    for seg in segments {
        filter = filter.and(warp::path(*seg)).boxed();
    }
    filter
}

/// `confd.<acl>.<id>.<action>` for an item.
pub fn item_acl(acl: &str, id: &str, action: &str) -> String {
    format!("confd.{acl}.{}.{action}", escape_param(id))
}

/// The five routes of `R`.
pub fn routes<R: Resource>(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let def = R::DEF;
    let limit = svc.body_limit;
    let authed = authenticated(svc.auth.clone());
    let collection = path_of(def.path).and(warp::path::end());
    let item = path_of(def.path)
        .and(warp::path::param::<String>())
        .and(warp::path::end());

    let s = svc.clone();
    let list = collection
        .clone()
        .and(warp::get())
        .and(authed.clone())
        .and(raw_query())
        .then(move |caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&R::acl("read", None))?;
                let params = ListParams::parse(&q, def.orderable, def.filterable)?;
                Ok(warp::reply::json(&svc.list::<R>(&scope, params).await?).into_response())
            })
        });

    let s = svc.clone();
    let create = collection
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&R::acl("create", None))?;
                let resource: R = parse_body(&b, None)?;
                let obj = svc.create::<R>(&scope, resource).await?;
                Ok(created(&def, obj))
            })
        });

    let s = svc.clone();
    let get = item
        .clone()
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&R::acl("read", Some(&id)))?;
                Ok(warp::reply::json(&svc.get::<R>(&scope, &id).await?).into_response())
            })
        });

    let s = svc.clone();
    let update = item
        .clone()
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&R::acl("update", Some(&id)))?;
                svc.update::<R>(&scope, &id, b).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc;
    let delete = item
        .and(warp::delete())
        .and(authed)
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&R::acl("delete", Some(&id)))?;
                svc.delete::<R>(&scope, &id).await?;
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

/// 201 with the object and `Location: /api/confd/1.1/<path>/<id>`.
pub fn created(def: &Def, obj: Value) -> Response {
    let key = if def.by_uuid { obj.get("uuid") } else { obj.get("id") };
    let key = match key {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let location = format!("/api/confd/1.1/{}/{key}", def.path.join("/"));
    let mut response = warp::reply::with_status(warp::reply::json(&obj), StatusCode::CREATED).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// `PUT` (associate, `true`) and `DELETE` (dissociate, `false`)
/// `/<parent>/{id}/<segment>/{other}`: `handler(svc, caller, id, other,
/// associate, body)` answers 204 or the error (the body may be empty).
pub fn association_route<F, Fut>(
    svc: Arc<ConfdService>,
    parent: &'static str,
    segment: &'static [&'static str],
    handler: F,
) -> BoxedFilter<(Response,)>
where
    F: Fn(Arc<ConfdService>, Caller, String, String, bool, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    warp::path(parent)
        .and(warp::path::param::<String>())
        .and(path_of(segment))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::put().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authenticated(svc.auth.clone()))
        .and(body::limited_bytes(svc.body_limit))
        .then(
            move |id: String, other: String, associate: bool, caller: Caller, b: Bytes| {
                let (svc, handler) = (svc.clone(), handler.clone());
                respond(async move {
                    handler(svc, caller, id, other, associate, b).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                })
            },
        )
        .boxed()
}

/// The ACL of an association route: `confd.<acl>.<id>.<what>.<other>.update|delete`.
pub fn association_acl(acl: &str, id: &str, what: &str, other: &str, associate: bool) -> String {
    let action = if associate { "update" } else { "delete" };
    item_acl(acl, id, &format!("{what}.{}.{action}", escape_param(other)))
}
