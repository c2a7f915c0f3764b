//! `/endpoints/sip` and `/endpoints/sip/templates`: pjsip endpoints (a line's
//! or a trunk's) and the templates they inherit from. Section names are
//! unique across transports, templates and endpoints (they share pjsip.conf);
//! templates must be in the endpoint's tenant, transports are global.

pub mod model;

use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

pub use self::model::{EndpointSip, SipTemplate, UuidRef};
use super::docstore::{self, Key, Row};
use super::lines;
use super::reload::Reload;
use super::resource::{self, Check, Def, EventDef, Resource};
use super::{options, sip_transports, ConfdService};
use crate::api::error::ApiError;

pub const TABLE: &str = "confd_endpoint_sip";
pub const TEMPLATE_TABLE: &str = "confd_endpoint_sip_template";

const SECTION_TABLES: [(&str, &str); 3] = [
    (sip_transports::TABLE, "Transport"),
    (TEMPLATE_TABLE, "SIPEndpointTemplate"),
    (TABLE, "SIPEndpoint"),
];

/// Fails when `name` is already a pjsip section (other than row `id` of `own_table`).
pub fn check_section_name_free(tx: &Connection, name: &str, own_table: &str, id: Option<i64>) -> Result<(), ApiError> {
    for (table, kind) in SECTION_TABLES {
        let own = if table == own_table { id } else { None };
        let taken: Option<i64> = tx
            .query_row(
                &format!("SELECT id FROM {table} WHERE name = ?1 AND id IS NOT ?2"),
                params![name, own],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(ApiError::conflict(
                "SIPEndpoint",
                "name",
                format!("{kind} already exists ('name': '{name}')"),
            ));
        }
    }
    Ok(())
}

fn name_taken(tx: &Connection, name: &str) -> Result<bool, ApiError> {
    Ok(check_section_name_free(tx, name, "", None).is_err())
}

/// Points every endpoint and template using transport `old` to `new` (or to none).
pub fn replace_transport(tx: &Connection, old: Uuid, new: Option<Uuid>) -> Result<(), ApiError> {
    let value = new
        .map(|u| json!({ "uuid": u }).to_string())
        .unwrap_or_else(|| "null".into());
    for table in [TABLE, TEMPLATE_TABLE] {
        tx.execute(
            &format!("UPDATE {table} SET doc = json_set(doc, '$.transport', json(?2)) WHERE transport = ?1"),
            params![old.to_string(), value],
        )?;
    }
    Ok(())
}

/// Removes template `uuid` from every endpoint and template inheriting from it.
fn remove_template(tx: &Connection, uuid: Uuid) -> Result<(), ApiError> {
    let u = uuid.to_string();
    for table in [TABLE, TEMPLATE_TABLE] {
        let mut stmt = tx.prepare(&format!(
            "SELECT id, doc FROM {table} WHERE EXISTS \
             (SELECT 1 FROM json_each(doc, '$.templates') WHERE json_extract(value, '$.uuid') = ?1)"
        ))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([&u], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, doc) in rows {
            let mut e: EndpointSip =
                serde_json::from_str(&doc).map_err(|e| ApiError::Internal(format!("stored SIP endpoint {id}: {e}")))?;
            e.templates.retain(|t| t.uuid != uuid);
            let doc = resource::to_doc(&SipTemplate(e))?;
            docstore::update(tx, table, id, &doc)?;
        }
    }
    Ok(())
}

/// The stored templates an endpoint or template inherits from, by uuid.
fn stored_templates(tx: &Connection, uuid: Uuid) -> Result<Vec<Uuid>, ApiError> {
    let Some(row) = docstore::get(tx, TEMPLATE_TABLE, Key::Uuid(uuid))? else {
        return Ok(Vec::new());
    };
    let t: EndpointSip = resource::from_map(row.doc)?;
    Ok(t.templates.iter().map(|r| r.uuid).collect())
}

/// Database checks shared by endpoints and templates: free name, templates
/// of the tenant (and no inheritance loop), an existing transport.
fn check_sip(e: &EndpointSip, ctx: &Check<'_>, own_table: &str) -> Result<(), ApiError> {
    e.validate()?;
    check_section_name_free(ctx.tx, &e.name, own_table, ctx.id)?;
    for (i, t) in e.templates.iter().enumerate() {
        let found = docstore::get(ctx.tx, TEMPLATE_TABLE, Key::Uuid(t.uuid))?
            .filter(|r| r.tenant_uuid == ctx.tenant_uuid)
            .is_some();
        if !found {
            return Err(ApiError::invalid_field(
                &format!("templates[{i}]"),
                format!("SIPEndpointTemplate was not found ('uuid': '{}')", t.uuid),
            ));
        }
    }
    if own_table == TEMPLATE_TABLE {
        // No template may (indirectly) inherit from itself.
        let mut seen = HashSet::new();
        let mut todo: Vec<Uuid> = e.templates.iter().map(|t| t.uuid).collect();
        while let Some(u) = todo.pop() {
            if u == ctx.uuid {
                return Err(ApiError::invalid_field(
                    "templates",
                    "A template cannot inherit from itself.",
                ));
            }
            if seen.insert(u) {
                todo.extend(stored_templates(ctx.tx, u)?);
            }
        }
    }
    if let Some(t) = e.transport {
        if docstore::get(ctx.tx, sip_transports::TABLE, Key::Uuid(t.uuid))?.is_none() {
            return Err(ApiError::invalid_field(
                "transport",
                format!("Transport was not found ('uuid': '{}')", t.uuid),
            ));
        }
    }
    Ok(())
}

fn fill_name(e: &mut EndpointSip, tx: &Connection) -> Result<(), ApiError> {
    if e.name.is_empty() {
        for _ in 0..16 {
            let name = options::random_name();
            if !name_taken(tx, &name)? {
                e.name = name;
                return Ok(());
            }
        }
        return Err(ApiError::Internal("no free SIP endpoint name".into()));
    }
    Ok(())
}

/// `templates` with their labels.
fn template_relations(c: &Connection, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
    let Some(Value::Array(refs)) = obj.get("templates") else {
        return Ok(());
    };
    let mut out = Vec::new();
    for r in refs {
        let uuid = r.get("uuid").and_then(Value::as_str).unwrap_or_default();
        let label: Option<Option<String>> = c
            .query_row(
                &format!("SELECT json_extract(doc, '$.label') FROM {TEMPLATE_TABLE} WHERE uuid = ?1"),
                [uuid],
                |r| r.get(0),
            )
            .optional()?;
        out.push(json!({ "uuid": uuid, "label": label.flatten() }));
    }
    obj.insert("templates".into(), Value::Array(out));
    Ok(())
}

/// What events carry of an endpoint: never its secrets.
fn event_endpoint(obj: &Map<String, Value>) -> Value {
    let username = obj
        .get("auth_section_options")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|kv| kv.get(0).and_then(Value::as_str) == Some("username"))
        .cloned()
        .collect::<Vec<_>>();
    json!({
        "uuid": obj.get("uuid"),
        "tenant_uuid": obj.get("tenant_uuid"),
        "name": obj.get("name"),
        "label": obj.get("label"),
        "auth_section_options": username,
    })
}

const READ_ONLY: &[&str] = &["line", "trunk", "asterisk_id_view"];

impl Resource for EndpointSip {
    const DEF: Def = Def {
        path: &["endpoints", "sip"],
        acl: "endpoints.sip",
        table: TABLE,
        kind: "SIPEndpoint",
        by_uuid: true,
        show_id: false,
        show_uuid: true,
        orderable: &["uuid", "name", "label"],
        filterable: &["uuid", "name", "label", "asterisk_id"],
        searchable: &["name", "label"],
        default_order: "name",
        read_only: READ_ONLY,
        created: EventDef {
            name: "sip_endpoint_created",
            routing_key: "config.sip_endpoint.created",
        },
        edited: EventDef {
            name: "sip_endpoint_edited",
            routing_key: "config.sip_endpoint.edited",
        },
        deleted: EventDef {
            name: "sip_endpoint_deleted",
            routing_key: "config.sip_endpoint.deleted",
        },
        reloads: &[Reload::Pjsip],
    };

    fn fill(&mut self, ctx: &Check<'_>) -> Result<(), ApiError> {
        fill_name(self, ctx.tx)
    }

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        check_sip(self, ctx, TABLE)
    }

    fn after_write(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        // The line's identity follows the endpoint's name.
        if let Some(line_id) = lines::line_of_endpoint(tx, lines::EndpointKind::Sip, row.id)? {
            lines::sync_calllog_line(tx, line_id)?;
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        template_relations(c, obj)?;
        let line = lines::line_of_endpoint(c, lines::EndpointKind::Sip, row.id)?;
        obj.insert("line".into(), line.map(|id| json!({ "id": id })).unwrap_or(Value::Null));
        let trunk = crate::confd::trunks::trunk_of_endpoint(c, lines::EndpointKind::Sip, row.id)?;
        obj.insert(
            "trunk".into(),
            trunk.map(|id| json!({ "id": id })).unwrap_or(Value::Null),
        );
        Ok(())
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        crate::confd::trunks::refuse_if_on_trunk(tx, lines::EndpointKind::Sip, row.id)?;
        if let Some(line_id) = lines::line_of_endpoint(tx, lines::EndpointKind::Sip, row.id)? {
            return Err(ApiError::conflict(
                "SIPEndpoint",
                "uuid",
                format!("SIPEndpoint is associated with a Line ('line_id': {line_id})"),
            ));
        }
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        event_endpoint(obj)
    }
}

impl Resource for SipTemplate {
    const DEF: Def = Def {
        path: &["endpoints", "sip", "templates"],
        acl: "endpoints.sip.templates",
        table: TEMPLATE_TABLE,
        kind: "SIPEndpointTemplate",
        by_uuid: true,
        show_id: false,
        show_uuid: true,
        orderable: &["uuid", "name", "label"],
        filterable: &["uuid", "name", "label"],
        searchable: &["name", "label"],
        default_order: "name",
        read_only: READ_ONLY,
        created: EventDef {
            name: "sip_endpoint_template_created",
            routing_key: "config.sip_endpoint_template.created",
        },
        edited: EventDef {
            name: "sip_endpoint_template_edited",
            routing_key: "config.sip_endpoint_template.edited",
        },
        deleted: EventDef {
            name: "sip_endpoint_template_deleted",
            routing_key: "config.sip_endpoint_template.deleted",
        },
        reloads: &[Reload::Pjsip],
    };

    fn fill(&mut self, ctx: &Check<'_>) -> Result<(), ApiError> {
        fill_name(&mut self.0, ctx.tx)
    }

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        check_sip(&self.0, ctx, TEMPLATE_TABLE)
    }

    fn relations(c: &Connection, _row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        template_relations(c, obj)
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        remove_template(tx, row.uuid)
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        event_endpoint(obj)
    }
}

/// Templates first: `/endpoints/sip/templates` must not be taken for an endpoint's uuid.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    resource::routes::<SipTemplate>(svc.clone())
        .or(resource::routes::<EndpointSip>(svc))
        .unify()
        .boxed()
}
