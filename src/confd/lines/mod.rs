//! `/lines` and their associations: one endpoint (SIP, SCCP or custom) per
//! line, extensions (`/lines/{id}/extensions`), the device a line is
//! provisioned on (`/lines/{id}/devices`, `/devices/{id}/lines`). A line with
//! a SIP endpoint has a row in `calllog_line` (identity `pjsip/<name>`) so
//! call-logd can resolve its calls; it is kept in step here.

pub mod model;

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

pub use self::model::Line;
use super::contexts::{self, ContextType};
use super::devices::{self, Device};
use super::docstore::{self, Key, Row};
use super::endpoints_custom::{self, EndpointCustom};
use super::endpoints_sccp::{self, EndpointSccp};
use super::endpoints_sip::{self, EndpointSip};
use super::error::respond;
use super::extensions::{self, Extension};
use super::reload::Reload;
use super::resource::{self, item_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::{authenticated, Caller, Scope};
use crate::bus::EventSpec;

pub const TABLE: &str = "confd_line";

/// The three kinds of line endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    Sip,
    Sccp,
    Custom,
}

impl EndpointKind {
    pub fn parse(segment: &str) -> Option<EndpointKind> {
        match segment {
            "sip" => Some(EndpointKind::Sip),
            "sccp" => Some(EndpointKind::Sccp),
            "custom" => Some(EndpointKind::Custom),
            _ => None,
        }
    }

    pub fn segment(self) -> &'static str {
        match self {
            EndpointKind::Sip => "sip",
            EndpointKind::Sccp => "sccp",
            EndpointKind::Custom => "custom",
        }
    }

    pub(crate) fn column(self) -> &'static str {
        match self {
            EndpointKind::Sip => "sip_id",
            EndpointKind::Sccp => "sccp_id",
            EndpointKind::Custom => "custom_id",
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            EndpointKind::Sip => endpoints_sip::TABLE,
            EndpointKind::Sccp => endpoints_sccp::TABLE,
            EndpointKind::Custom => endpoints_custom::TABLE,
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            EndpointKind::Sip => "SIPEndpoint",
            EndpointKind::Sccp => "SCCPEndpoint",
            EndpointKind::Custom => "CustomEndpoint",
        }
    }

    /// The key the association events and the line object use.
    pub fn field(self) -> &'static str {
        match self {
            EndpointKind::Sip => "endpoint_sip",
            EndpointKind::Sccp => "endpoint_sccp",
            EndpointKind::Custom => "endpoint_custom",
        }
    }

    pub(crate) fn reloads(self) -> &'static [Reload] {
        match self {
            EndpointKind::Sip => &[Reload::Pjsip, Reload::Dialplan],
            EndpointKind::Sccp => &[Reload::Sccp, Reload::Dialplan],
            EndpointKind::Custom => &[Reload::Dialplan],
        }
    }
}

/// A broken association rule: confd's 400 `Resource Error - ...`.
fn rule(message: impl Into<String>) -> ApiError {
    ApiError::conflict("Line", "", message)
}

/// The line an endpoint is associated with.
pub fn line_of_endpoint(c: &Connection, kind: EndpointKind, endpoint_id: i64) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        &format!("SELECT line_id FROM confd_line_endpoint WHERE {} = ?1", kind.column()),
        [endpoint_id],
        |r| r.get(0),
    )
    .optional()
}

/// An endpoint on a line cannot be deleted (dissociate it first).
pub fn refuse_if_on_line(tx: &Connection, kind: EndpointKind, endpoint_id: i64) -> Result<(), ApiError> {
    if let Some(line_id) = line_of_endpoint(tx, kind, endpoint_id)? {
        return Err(ApiError::conflict(
            kind.kind(),
            "id",
            format!("{} is associated with a Line ('line_id': {line_id})", kind.kind()),
        ));
    }
    Ok(())
}

/// The endpoint of a line: kind and endpoint row id.
pub fn endpoint_of_line(c: &Connection, line_id: i64) -> rusqlite::Result<Option<(EndpointKind, i64)>> {
    c.query_row(
        "SELECT sip_id, sccp_id, custom_id FROM confd_line_endpoint WHERE line_id = ?1",
        [line_id],
        |r| {
            let (sip, sccp, custom): (Option<i64>, Option<i64>, Option<i64>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(match (sip, sccp, custom) {
                (Some(id), _, _) => Some((EndpointKind::Sip, id)),
                (_, Some(id), _) => Some((EndpointKind::Sccp, id)),
                (_, _, Some(id)) => Some((EndpointKind::Custom, id)),
                _ => None,
            })
        },
    )
    .optional()
    .map(Option::flatten)
}

/// The extensions of a line in association order: `(id, exten, context)`.
fn line_extensions(c: &Connection, line_id: i64) -> rusqlite::Result<Vec<(i64, String, String)>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT e.id, e.exten, e.context FROM confd_line_extension le JOIN {} e ON e.id = le.extension_id \
         WHERE le.line_id = ?1 ORDER BY le.position, e.id",
        extensions::TABLE
    ))?;
    let rows = stmt.query_map([line_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// The lines an extension is associated with.
pub fn lines_of_extension(c: &Connection, extension_id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        c.prepare_cached("SELECT line_id FROM confd_line_extension WHERE extension_id = ?1 ORDER BY line_id")?;
    let rows = stmt.query_map([extension_id], |r| r.get(0))?;
    rows.collect()
}

/// The device row id of a line.
pub fn device_of_line(c: &Connection, line_id: i64) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT device_id FROM confd_line_device WHERE line_id = ?1",
        [line_id],
        |r| r.get(0),
    )
    .optional()
}

/// The users of a line (`uuid`, `firstname`, `lastname`), its main user first.
pub fn line_users(c: &Connection, line_id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT u.uuid, json_extract(u.doc, '$.firstname'), json_extract(u.doc, '$.lastname') \
         FROM confd_user_line ul JOIN {} u ON u.id = ul.user_id \
         WHERE ul.line_id = ?1 ORDER BY ul.main_user DESC, ul.user_id",
        super::users::TABLE
    ))?;
    let rows = stmt.query_map([line_id], |r| {
        let (uuid, first, last): (String, Option<String>, Option<String>) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(json!({ "uuid": uuid, "firstname": first, "lastname": last }))
    })?;
    rows.collect()
}

/// The line's main user: `(uuid, "firstname lastname")`.
fn main_user(c: &Connection, line_id: i64) -> rusqlite::Result<Option<(String, String)>> {
    c.query_row(
        &format!(
            "SELECT u.uuid, json_extract(u.doc, '$.firstname'), json_extract(u.doc, '$.lastname') \
             FROM confd_user_line ul JOIN {} u ON u.id = ul.user_id \
             WHERE ul.line_id = ?1 AND ul.main_user = 1",
            super::users::TABLE
        ),
        [line_id],
        |r| {
            let (uuid, first, last): (String, Option<String>, Option<String>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let name = [first, last].into_iter().flatten().filter(|s| !s.is_empty());
            Ok((uuid, name.collect::<Vec<_>>().join(" ")))
        },
    )
    .optional()
}

/// The main user's row id of a line.
pub fn main_user_id(c: &Connection, line_id: i64) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT user_id FROM confd_user_line WHERE line_id = ?1 AND main_user = 1",
        [line_id],
        |r| r.get(0),
    )
    .optional()
}

/// The endpoint fields (`endpoint_sip`, `endpoint_sccp`, `endpoint_custom`:
/// the line's one, nulls for the others) and `extensions` of a line.
fn endpoints_and_extensions(c: &Connection, line_id: i64, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
    let endpoint = endpoint_of_line(c, line_id)?;
    for kind in [EndpointKind::Sip, EndpointKind::Sccp, EndpointKind::Custom] {
        let rel = match endpoint {
            Some((k, id)) if k == kind => endpoint_relation(c, k, id)?,
            _ => None,
        };
        obj.insert(kind.field().into(), rel.unwrap_or(Value::Null));
    }
    let extens: Vec<Value> = line_extensions(c, line_id)?
        .into_iter()
        .map(|(id, exten, context)| json!({ "id": id, "exten": exten, "context": context }))
        .collect();
    obj.insert("extensions".into(), Value::Array(extens));
    Ok(())
}

/// A line as a user shows it: `id`, `name`, its endpoint and extensions.
pub fn user_line_relation(c: &Connection, line_id: i64) -> rusqlite::Result<Value> {
    let mut obj = Map::new();
    obj.insert("id".into(), json!(line_id));
    obj.insert("name".into(), name_and_protocol(c, line_id)?.0);
    endpoints_and_extensions(c, line_id, &mut obj)?;
    Ok(Value::Object(obj))
}

/// A line as the user↔line events carry it: `id`, `name` and its endpoint's key.
pub fn line_event_summary(c: &Connection, line: &Row) -> rusqlite::Result<Value> {
    let (name, _) = name_and_protocol(c, line.id)?;
    let mut obj = json!({ "id": line.id, "name": name, "tenant_uuid": line.tenant_uuid });
    let endpoint = endpoint_of_line(c, line.id)?;
    for kind in [EndpointKind::Sip, EndpointKind::Sccp, EndpointKind::Custom] {
        let key = match endpoint {
            Some((EndpointKind::Sip, id)) if kind == EndpointKind::Sip => {
                docstore::get(c, kind.table(), Key::Id(id))?.map(|r| json!({ "uuid": r.uuid }))
            }
            Some((k, id)) if k == kind => Some(json!({ "id": id })),
            _ => None,
        };
        obj[kind.field()] = key.unwrap_or(Value::Null);
    }
    Ok(obj)
}

/// The SIP endpoint row id of a line, if its endpoint is a SIP one.
pub fn sip_endpoint_of_line(c: &Connection, line_id: i64) -> rusqlite::Result<Option<i64>> {
    Ok(match endpoint_of_line(c, line_id)? {
        Some((EndpointKind::Sip, id)) => Some(id),
        _ => None,
    })
}

/// Whether a line has an endpoint (a user can only be given such a line).
pub fn has_endpoint(c: &Connection, line_id: i64) -> rusqlite::Result<bool> {
    Ok(endpoint_of_line(c, line_id)?.is_some())
}

/// The line's main extension id (the first associated).
pub fn main_extension(c: &Connection, line_id: i64) -> rusqlite::Result<Option<i64>> {
    Ok(line_extensions(c, line_id)?.first().map(|(id, _, _)| *id))
}

/// The reloads a change of the line's users needs (upstream's user↔line notifier).
pub const USER_LINE_RELOADS: &[Reload] = &[Reload::Dialplan, Reload::Pjsip];

/// The endpoint relation a line shows: `(kind, object)`.
pub(crate) fn endpoint_relation(c: &Connection, kind: EndpointKind, id: i64) -> rusqlite::Result<Option<Value>> {
    let Some(row) = docstore::get(c, kind.table(), Key::Id(id))? else {
        return Ok(None);
    };
    Ok(Some(match kind {
        EndpointKind::Sip => {
            let username: Vec<Value> = row
                .doc
                .get("auth_section_options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|kv| kv.get(0).and_then(Value::as_str) == Some("username"))
                .cloned()
                .collect();
            json!({
                "uuid": row.uuid,
                "name": row.doc.get("name"),
                "label": row.doc.get("label"),
                "auth_section_options": username,
            })
        }
        EndpointKind::Sccp => json!({ "id": row.id }),
        EndpointKind::Custom => json!({ "id": row.id, "interface": row.doc.get("interface") }),
    }))
}

/// The line's name (its endpoint's) and protocol.
fn name_and_protocol(c: &Connection, line_id: i64) -> rusqlite::Result<(Value, Value)> {
    let Some((kind, id)) = endpoint_of_line(c, line_id)? else {
        return Ok((Value::Null, Value::Null));
    };
    let row = docstore::get(c, kind.table(), Key::Id(id))?;
    let name = match (kind, &row) {
        (EndpointKind::Sip, Some(r)) => r.doc.get("name").cloned().unwrap_or(Value::Null),
        (EndpointKind::Custom, Some(r)) => r.doc.get("interface").cloned().unwrap_or(Value::Null),
        // An SCCP line is named after its extension.
        (EndpointKind::Sccp, _) => line_extensions(c, line_id)?
            .first()
            .map(|(_, exten, _)| json!(exten))
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Ok((name, json!(kind.segment())))
}

/// Rewrites the line's `calllog_line` row: `pjsip/<name>` while it has a SIP
/// endpoint, with its main extension and its main user (uuid, name); the
/// tags are kept.
pub fn sync_calllog_line(tx: &Connection, line_id: i64) -> Result<(), ApiError> {
    let tags: Option<Option<String>> = tx
        .query_row(
            "SELECT tags FROM calllog_line WHERE line_id = ?1 LIMIT 1",
            [line_id],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute("DELETE FROM calllog_line WHERE line_id = ?1", [line_id])?;
    let Some((EndpointKind::Sip, sip_id)) = endpoint_of_line(tx, line_id)? else {
        return Ok(());
    };
    let Some(sip) = docstore::get(tx, endpoints_sip::TABLE, Key::Id(sip_id))? else {
        return Ok(());
    };
    let Some(line) = docstore::get(tx, TABLE, Key::Id(line_id))? else {
        return Ok(());
    };
    let name = sip.str("name").unwrap_or_default().to_lowercase();
    let main = line_extensions(tx, line_id)?.into_iter().next();
    let (user_uuid, user_name) = main_user(tx, line_id)?.unzip();
    tx.execute(
        "INSERT OR REPLACE INTO calllog_line (identity, line_id, user_uuid, tenant_uuid, tags, user_name, exten, context) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            format!("pjsip/{name}"),
            line_id,
            user_uuid,
            line.tenant_uuid.to_string(),
            tags.flatten().unwrap_or_else(|| "[]".into()),
            user_name,
            main.as_ref().map(|m| m.1.clone()),
            main.as_ref().map(|m| m.2.clone()),
        ],
    )?;
    Ok(())
}

/// An extension's exten or context changed: its lines' identities follow.
pub fn extension_changed(tx: &Connection, extension_id: i64) -> Result<(), ApiError> {
    for line_id in lines_of_extension(tx, extension_id)? {
        sync_calllog_line(tx, line_id)?;
    }
    Ok(())
}

/// The rules an extension must keep while it is a line's: an internal
/// context, inside its user ranges.
pub fn check_line_extension(tx: &Connection, tenant: Uuid, ext: &Extension) -> Result<(), ApiError> {
    contexts::check_extension_in(tx, tenant, ext, ContextType::Internal, |c| &c.user_ranges, rule)
}

impl Resource for Line {
    const DEF: Def = Def {
        path: &["lines"],
        acl: "lines",
        table: TABLE,
        kind: "Line",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &[
            "id",
            "context",
            "caller_id_name",
            "caller_id_num",
            "provisioning_code",
            "position",
        ],
        filterable: &["id", "context", "provisioning_code", "position", "registrar"],
        searchable: &["context", "caller_id_name", "caller_id_num", "provisioning_code"],
        default_order: "caller_id_name",
        read_only: &[
            "name",
            "protocol",
            "device_slot",
            "device_id",
            "provisioning_extension",
            "endpoint_sip",
            "endpoint_sccp",
            "endpoint_custom",
            "extensions",
            "users",
            "application",
            "is_webrtc",
        ],
        created: EventDef {
            name: "line_created",
            routing_key: "config.line.created",
        },
        edited: EventDef {
            name: "line_edited",
            routing_key: "config.line.edited",
        },
        deleted: EventDef {
            name: "line_deleted",
            routing_key: "config.line.deleted",
        },
        reloads: &[Reload::Pjsip, Reload::Dialplan],
    };

    fn fill(&mut self, ctx: &Check<'_>) -> Result<(), ApiError> {
        if self.provisioning_code.is_empty() {
            use rand::Rng;
            let mut rng = rand::rng();
            for _ in 0..64 {
                let code = rng.random_range(100_000..=999_999u32).to_string();
                let taken: Option<i64> = ctx
                    .tx
                    .query_row(
                        &format!("SELECT id FROM {TABLE} WHERE provisioning_code = ?1"),
                        [&code],
                        |r| r.get(0),
                    )
                    .optional()?;
                if taken.is_none() {
                    self.provisioning_code = code;
                    return Ok(());
                }
            }
            return Err(ApiError::Internal("no free provisioning code".into()));
        }
        Ok(())
    }

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        let (_, context) = contexts::by_name(ctx.tx, &self.context)?
            .filter(|(row, _)| row.tenant_uuid == ctx.tenant_uuid)
            .ok_or_else(|| {
                ApiError::invalid_field("context", format!("Context was not found ('name': '{}')", self.context))
            })?;
        if context.kind != ContextType::Internal {
            return Err(ApiError::invalid_field(
                "context",
                format!("Context '{}' is not an internal context", self.context),
            ));
        }
        let taken: Option<i64> = ctx
            .tx
            .query_row(
                &format!("SELECT id FROM {TABLE} WHERE provisioning_code = ?1 AND id IS NOT ?2"),
                params![self.provisioning_code, ctx.id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(ApiError::conflict(
                "Line",
                "provisioning_code",
                format!(
                    "Line already exists ('provisioning_code': '{}')",
                    self.provisioning_code
                ),
            ));
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let (name, protocol) = name_and_protocol(c, row.id)?;
        obj.insert("name".into(), name);
        obj.insert("protocol".into(), protocol);
        obj.insert(
            "provisioning_extension".into(),
            row.doc.get("provisioning_code").cloned().unwrap_or(Value::Null),
        );
        obj.insert(
            "device_slot".into(),
            row.doc.get("position").cloned().unwrap_or(Value::Null),
        );
        let device = match device_of_line(c, row.id)? {
            Some(id) => docstore::get(c, devices::TABLE, Key::Id(id))?.and_then(|d| d.doc.get("id").cloned()),
            None => None,
        };
        obj.insert("device_id".into(), device.unwrap_or(Value::Null));
        endpoints_and_extensions(c, row.id, obj)?;
        obj.insert("users".into(), Value::Array(line_users(c, row.id)?));
        let application = super::applications::application_of_line(c, row.id)?;
        obj.insert("application".into(), application.unwrap_or(Value::Null));
        Ok(())
    }

    /// The endpoint, extensions and device are dissociated (kept); the
    /// line's identity leaves `calllog_line`.
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        if !line_users(tx, row.id)?.is_empty() {
            return Err(ApiError::conflict("Line", "id", "Line is associated with a User"));
        }
        tx.execute("DELETE FROM calllog_line WHERE line_id = ?1", [row.id])?;
        for table in ["confd_line_endpoint", "confd_line_extension", "confd_line_device"] {
            tx.execute(&format!("DELETE FROM {table} WHERE line_id = ?1"), [row.id])?;
        }
        Ok(())
    }
}

/// Deletes a line and the extensions only it had (a user's recursive
/// delete): `(line, extensions)`, to announce; `None` if it was gone.
pub fn delete_line_tx(tx: &Connection, line_id: i64) -> Result<Option<(Row, Vec<Row>)>, ApiError> {
    let Some(line) = docstore::get(tx, TABLE, Key::Id(line_id))? else {
        return Ok(None);
    };
    let extension_ids: Vec<i64> = line_extensions(tx, line_id)?.into_iter().map(|e| e.0).collect();
    Line::before_delete(tx, &line)?;
    docstore::delete(tx, TABLE, line_id)?;
    let mut extensions = Vec::new();
    for id in extension_ids {
        if super::extension_owner(tx, id)?.is_some() {
            continue;
        }
        if let Some(ext) = docstore::get(tx, extensions::TABLE, Key::Id(id))? {
            docstore::delete(tx, extensions::TABLE, id)?;
            extensions.push(ext);
        }
    }
    Ok(Some((line, extensions)))
}

/// `{id, name, tenant_uuid}` of a line, for association events.
fn line_summary(row: &Row, name: &Value) -> Value {
    json!({ "id": row.id, "name": name, "tenant_uuid": row.tenant_uuid })
}

/// What the association routes act on.
#[derive(Clone, Copy)]
enum Assoc {
    Endpoint(EndpointKind),
    Extension,
    Device,
}

impl ConfdService {
    async fn find_endpoint(&self, scope: &Scope, kind: EndpointKind, id: &str) -> Result<Row, ApiError> {
        match kind {
            EndpointKind::Sip => self.find::<EndpointSip>(scope, id).await,
            EndpointKind::Sccp => self.find::<EndpointSccp>(scope, id).await,
            EndpointKind::Custom => self.find::<EndpointCustom>(scope, id).await,
        }
    }

    /// A tenant event of an association (its own name, routing key and payload).
    pub(crate) fn publish_tenant(&self, name: &str, routing_key: String, data: Value, tenant: Uuid) {
        self.bus.publish(EventSpec::new(name, routing_key, data).tenant(tenant));
    }

    /// After an extension association of `kind` (`incall`, `outcall`, `conference`) changed:
    /// `<kind>_extension_associated` (`_dissociated`) with `{<kind>_id, extension_id}` on
    /// `config.<kind>s.extensions.updated` (`.deleted`), and the dialplan reload.
    pub(crate) fn announce_extension_association(
        &self,
        kind: &str,
        id: i64,
        extension_id: i64,
        tenant: Uuid,
        associate: bool,
    ) {
        let (verb, rk) = if associate {
            ("associated", "updated")
        } else {
            ("dissociated", "deleted")
        };
        let mut data = Map::new();
        data.insert(format!("{kind}_id"), json!(id));
        data.insert("extension_id".into(), json!(extension_id));
        self.publish_tenant(
            &format!("{kind}_extension_{verb}"),
            format!("config.{kind}s.extensions.{rk}"),
            Value::Object(data),
            tenant,
        );
        self.reloader.request(&[Reload::Dialplan]);
    }

    /// PUT (`associate`) or DELETE `/lines/{id}/endpoints/{kind}/{endpoint}`.
    async fn line_endpoint(
        &self,
        caller: &Caller,
        line_id: &str,
        kind: EndpointKind,
        endpoint_id: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let action = if associate { "update" } else { "delete" };
        let scope = caller.require(&item_acl(
            "lines",
            line_id,
            &format!(
                "endpoints.{}.{}.{action}",
                kind.segment(),
                crate::auth::acl::escape_param(endpoint_id)
            ),
        ))?;
        let line = self.find::<Line>(&scope, line_id).await?;
        let endpoint = self.find_endpoint(&scope, kind, endpoint_id).await?;
        if line.tenant_uuid != endpoint.tenant_uuid {
            return Err(rule(format!("Line and {} are not in the same tenant", kind.kind())));
        }
        let (line2, ep) = (line.clone(), endpoint.clone());
        let changed = self
            .store
            .write(move |tx| {
                if associate {
                    associate_endpoint_tx(tx, &line2, kind, &ep)
                } else {
                    dissociate_endpoint_tx(tx, &line2, kind, &ep)
                }
            })
            .await?;
        if changed {
            self.announce_line_endpoint(&line, kind, &endpoint, associate).await?;
        }
        Ok(())
    }

    /// The event and reloads of a committed line↔endpoint change.
    pub(crate) async fn announce_line_endpoint(
        &self,
        line: &Row,
        kind: EndpointKind,
        endpoint: &Row,
        associate: bool,
    ) -> Result<(), ApiError> {
        let (line_id, endpoint_id) = (line.id, endpoint.id);
        let (name, ep_obj) = self
            .store
            .read(move |c| {
                let (name, _) = name_and_protocol(c, line_id)?;
                let ep_obj = endpoint_relation(c, kind, endpoint_id)?;
                Ok::<_, ApiError>((name, ep_obj))
            })
            .await?;
        let mut ep_obj = ep_obj.unwrap_or(Value::Null);
        if let Value::Object(m) = &mut ep_obj {
            m.insert("tenant_uuid".into(), json!(line.tenant_uuid));
        }
        let ep_key = match kind {
            EndpointKind::Sip => endpoint.uuid.to_string(),
            _ => endpoint.id.to_string(),
        };
        let verb = if associate { "associated" } else { "dissociated" };
        let rk_verb = if associate { "updated" } else { "deleted" };
        self.publish_tenant(
            &format!("line_endpoint_{}_{verb}", kind.segment()),
            format!(
                "config.lines.{}.endpoints.{}.{ep_key}.{rk_verb}",
                line.id,
                kind.segment()
            ),
            json!({ "line": line_summary(line, &name), kind.field(): ep_obj }),
            line.tenant_uuid,
        );
        self.reloader.request(kind.reloads());
        Ok(())
    }

    /// PUT or DELETE `/lines/{id}/extensions/{extension_id}`.
    async fn line_extension(
        &self,
        caller: &Caller,
        line_id: &str,
        extension_id: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let action = if associate { "update" } else { "delete" };
        let scope = caller.require(&item_acl(
            "lines",
            line_id,
            &format!("extensions.{}.{action}", crate::auth::acl::escape_param(extension_id)),
        ))?;
        let line = self.find::<Line>(&scope, line_id).await?;
        let ext = self.find::<Extension>(&scope, extension_id).await?;
        let (line2, ext2) = (line.clone(), ext.clone());
        let changed = self
            .store
            .write(move |tx| {
                if associate {
                    associate_extension_tx(tx, &line2, &ext2)
                } else {
                    let associated = lines_of_extension(tx, ext2.id)?.contains(&line2.id);
                    if !associated {
                        return Err(rule("Line and Extension are not associated"));
                    }
                    tx.execute(
                        "DELETE FROM confd_line_extension WHERE line_id = ?1 AND extension_id = ?2",
                        params![line2.id, ext2.id],
                    )?;
                    sync_calllog_line(tx, line2.id)?;
                    Ok(true)
                }
            })
            .await?;
        if changed {
            self.announce_line_extension(&line, ext.id, associate).await?;
        }
        Ok(())
    }

    pub(crate) async fn announce_line_extension(
        &self,
        line: &Row,
        extension_id: i64,
        associate: bool,
    ) -> Result<(), ApiError> {
        let (name, verb, rk) = if associate {
            ("line_extension_associated", "associated", "updated")
        } else {
            ("line_extension_dissociated", "dissociated", "deleted")
        };
        let _ = verb;
        self.publish_tenant(
            name,
            format!("config.line_extension_associated.{rk}"),
            json!({ "line_id": line.id, "extension_id": extension_id }),
            line.tenant_uuid,
        );
        let line_id = line.id;
        let kind = self
            .store
            .read(move |c| Ok::<_, ApiError>(endpoint_of_line(c, line_id)?))
            .await?;
        let mut reloads = vec![Reload::Dialplan];
        if let Some((k, _)) = kind {
            reloads.extend_from_slice(k.reloads());
        }
        self.reloader.request(&reloads);
        Ok(())
    }

    /// POST `/lines/{id}/extensions`: creates the extension and associates it,
    /// both or neither.
    async fn create_line_extension(&self, caller: &Caller, line_id: &str, b: Bytes) -> Result<Response, ApiError> {
        let scope = caller.require(&item_acl("lines", line_id, "extensions.create"))?;
        let line = self.find::<Line>(&scope, line_id).await?;
        let ext: Extension = resource::parse_body(&b, None)?;
        let line2 = line.clone();
        let (row, obj) = self
            .store
            .write(move |tx| {
                let row = resource::insert_tx(tx, line2.tenant_uuid, ext)?;
                associate_extension_tx(tx, &line2, &row)?;
                let obj = resource::api_object::<Extension>(tx, &row)?;
                Ok::<_, ApiError>((row, obj))
            })
            .await?;
        self.announce_created::<Extension>(&row);
        self.announce_line_extension(&line, row.id, true).await?;
        Ok(resource::created(&Extension::DEF, obj))
    }

    /// PUT or DELETE `/lines/{id}/devices/{device_id}`.
    async fn line_device(
        &self,
        caller: &Caller,
        line_id: &str,
        device_id: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let action = if associate { "update" } else { "delete" };
        let scope = caller.require(&item_acl(
            "lines",
            line_id,
            &format!("devices.{}.{action}", crate::auth::acl::escape_param(device_id)),
        ))?;
        let line = self.find::<Line>(&scope, line_id).await?;
        let device = self.find::<Device>(&scope, device_id).await?;
        if line.tenant_uuid != device.tenant_uuid {
            return Err(rule("Line and Device are not in the same tenant"));
        }
        let (line2, dev2) = (line.clone(), device.clone());
        let changed = self
            .store
            .write(move |tx| {
                let current = device_of_line(tx, line2.id)?;
                if associate {
                    if current == Some(dev2.id) {
                        return Ok::<_, ApiError>(false);
                    }
                    if current.is_some() {
                        return Err(rule(format!(
                            "Line is already associated with a Device ('line_id': {})",
                            line2.id
                        )));
                    }
                    if endpoint_of_line(tx, line2.id)?.is_none() {
                        return Err(rule("Line must be associated with an endpoint"));
                    }
                    if line_extensions(tx, line2.id)?.is_empty() {
                        return Err(rule("Line must be associated with an extension"));
                    }
                    tx.execute(
                        "INSERT INTO confd_line_device (line_id, device_id) VALUES (?1, ?2)",
                        params![line2.id, dev2.id],
                    )?;
                } else {
                    if current != Some(dev2.id) {
                        return Err(rule("Line and Device are not associated"));
                    }
                    tx.execute("DELETE FROM confd_line_device WHERE line_id = ?1", [line2.id])?;
                }
                Ok(true)
            })
            .await?;
        if changed {
            let (name, rk) = if associate {
                ("line_device_associated", "updated")
            } else {
                ("line_device_dissociated", "deleted")
            };
            let dev_id = device.str("id").unwrap_or_default().to_string();
            let line_id = line.id;
            let line_name = self
                .store
                .read(move |c| Ok::<_, ApiError>(name_and_protocol(c, line_id)?.0))
                .await?;
            self.publish_tenant(
                name,
                format!(
                    "config.lines.{}.devices.{}.{rk}",
                    line.id,
                    crate::bus::escape_key(&dev_id)
                ),
                json!({ "line": line_summary(&line, &line_name), "device": { "id": dev_id } }),
                line.tenant_uuid,
            );
        }
        Ok(())
    }

    /// GET `/lines/{id}/devices`: the line's device, 400 without one.
    async fn get_line_device(&self, caller: &Caller, line_id: &str) -> Result<Value, ApiError> {
        let scope = caller.require(&item_acl("lines", line_id, "devices.read"))?;
        let line = self.find::<Line>(&scope, line_id).await?;
        let id = line.id;
        let device = self
            .store
            .read(move |c| {
                Ok::<_, ApiError>(match device_of_line(c, id)? {
                    Some(d) => docstore::get(c, devices::TABLE, Key::Id(d))?,
                    None => None,
                })
            })
            .await?;
        let device = device.ok_or_else(|| rule(format!("Line is not associated with a Device ('line_id': {id})")))?;
        Ok(json!({ "line_id": id, "device_id": device.doc.get("id") }))
    }

    /// GET `/devices/{id}/lines`.
    async fn get_device_lines(&self, caller: &Caller, device_id: &str) -> Result<Value, ApiError> {
        let scope = caller.require(&item_acl("devices", device_id, "lines.read"))?;
        let device = self.find::<Device>(&scope, device_id).await?;
        let id = device.id;
        let lines: Vec<i64> = self
            .store
            .read(move |c| {
                let mut stmt =
                    c.prepare("SELECT line_id FROM confd_line_device WHERE device_id = ?1 ORDER BY line_id")?;
                let rows = stmt.query_map([id], |r| r.get(0))?;
                Ok::<_, ApiError>(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
            })
            .await?;
        let dev = device.doc.get("id").cloned().unwrap_or(Value::Null);
        let items: Vec<Value> = lines
            .iter()
            .map(|l| json!({ "line_id": l, "device_id": dev }))
            .collect();
        Ok(json!({ "total": items.len(), "items": items }))
    }

    async fn association(
        &self,
        caller: &Caller,
        line_id: &str,
        what: Assoc,
        other: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        match what {
            Assoc::Endpoint(kind) => self.line_endpoint(caller, line_id, kind, other, associate).await,
            Assoc::Extension => self.line_extension(caller, line_id, other, associate).await,
            Assoc::Device => self.line_device(caller, line_id, other, associate).await,
        }
    }
}

/// Puts endpoint `ep` on `line` in `tx` (upstream's rules); false when it
/// already was.
pub fn associate_endpoint_tx(tx: &Connection, line: &Row, kind: EndpointKind, ep: &Row) -> Result<bool, ApiError> {
    if line.tenant_uuid != ep.tenant_uuid {
        return Err(rule(format!("Line and {} are not in the same tenant", kind.kind())));
    }
    let current = endpoint_of_line(tx, line.id)?;
    if current == Some((kind, ep.id)) {
        return Ok(false);
    }
    if current.is_some() {
        return Err(rule(format!(
            "Line is already associated with an endpoint ('line_id': {})",
            line.id
        )));
    }
    if let Some(other) = line_of_endpoint(tx, kind, ep.id)? {
        return Err(rule(format!(
            "{} is already associated with a Line ('line_id': {other})",
            kind.kind()
        )));
    }
    if let Some(trunk) = super::trunks::trunk_of_endpoint(tx, kind, ep.id)? {
        return Err(rule(format!(
            "{} is already associated with a Trunk ('trunk_id': {trunk})",
            kind.kind()
        )));
    }
    tx.execute(
        &format!(
            "INSERT INTO confd_line_endpoint (line_id, {}) VALUES (?1, ?2)",
            kind.column()
        ),
        params![line.id, ep.id],
    )?;
    sync_calllog_line(tx, line.id)?;
    Ok(true)
}

/// Takes endpoint `ep` off `line` in `tx`: not while the line has users.
fn dissociate_endpoint_tx(tx: &Connection, line: &Row, kind: EndpointKind, ep: &Row) -> Result<bool, ApiError> {
    if endpoint_of_line(tx, line.id)? != Some((kind, ep.id)) {
        return Err(rule(format!("Line and {} are not associated", kind.kind())));
    }
    if !line_users(tx, line.id)?.is_empty() {
        return Err(rule("Line is associated with a User"));
    }
    tx.execute("DELETE FROM confd_line_endpoint WHERE line_id = ?1", [line.id])?;
    sync_calllog_line(tx, line.id)?;
    Ok(true)
}

/// Associates extension `ext` with `line` in `tx` (upstream's rules); false
/// when they already were.
pub fn associate_extension_tx(tx: &Connection, line: &Row, ext: &Row) -> Result<bool, ApiError> {
    if line.tenant_uuid != ext.tenant_uuid {
        return Err(rule("Line and Extension are not in the same tenant"));
    }
    let lines = lines_of_extension(tx, ext.id)?;
    if lines.contains(&line.id) {
        return Ok(false);
    }
    if endpoint_of_line(tx, line.id)?.is_none() {
        return Err(rule(format!(
            "Line must be associated with an endpoint ('line_id': {})",
            line.id
        )));
    }
    let extension: Extension = resource::from_map(ext.doc.clone())?;
    check_line_extension(tx, line.tenant_uuid, &extension)?;
    match super::extension_owner(tx, ext.id)? {
        None => {}
        Some("Line") => check_shared_extension(tx, line.id, &lines)?,
        Some(owner) => return Err(rule(format!("Extension is already associated with a {owner}"))),
    }
    if line_extensions(tx, line.id)?
        .iter()
        .any(|(_, _, context)| *context == extension.context)
    {
        return Err(rule(format!(
            "Line already has an extension in context '{}' ('line_id': {})",
            extension.context, line.id
        )));
    }
    tx.execute(
        "INSERT INTO confd_line_extension (line_id, extension_id, position) \
         VALUES (?1, ?2, (SELECT COALESCE(MAX(position), 0) + 1 FROM confd_line_extension WHERE line_id = ?1))",
        params![line.id, ext.id],
    )?;
    sync_calllog_line(tx, line.id)?;
    Ok(true)
}

/// An extension already on `others` may also go on `line_id` only when every
/// one of those lines has the same main user as `line_id` (one user's lines
/// ringing together, as upstream allows); never between lines without users
/// or of different users.
fn check_shared_extension(tx: &Connection, line_id: i64, others: &[i64]) -> Result<(), ApiError> {
    let user = main_user_id(tx, line_id)?;
    for other in others {
        if user.is_none() || main_user_id(tx, *other)? != user {
            return Err(rule(format!(
                "Extension is already associated with a Line of another user ('line_id': {other})"
            )));
        }
    }
    Ok(())
}

/// `PUT` (associate) and `DELETE` (dissociate) `/lines/{line}/<segment>/{other}`.
fn association_route(svc: Arc<ConfdService>, segment: &'static str, assoc: Assoc) -> BoxedFilter<(Response,)> {
    warp::path("lines")
        .and(warp::path::param::<String>())
        .and(warp::path(segment))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::put().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authenticated(svc.auth.clone()))
        .then(move |line: String, other: String, associate: bool, caller: Caller| {
            let svc = svc.clone();
            respond(async move {
                svc.association(&caller, &line, assoc, &other, associate).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        })
        .boxed()
}

/// CRUD plus the association routes.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let limit = svc.body_limit;
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let endpoint = warp::path!("lines" / String / "endpoints" / String / String)
        .and(warp::put().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authed.clone())
        .then(
            move |line: String, kind: String, other: String, associate: bool, caller: Caller| {
                let svc = s.clone();
                respond(async move {
                    let kind =
                        EndpointKind::parse(&kind).ok_or_else(|| ApiError::not_found("Endpoint", kind.clone()))?;
                    svc.association(&caller, &line, Assoc::Endpoint(kind), &other, associate)
                        .await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                })
            },
        );

    let extension = association_route(svc.clone(), "extensions", Assoc::Extension);

    let s = svc.clone();
    let create_extension = warp::path!("lines" / String / "extensions")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |line: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move { svc.create_line_extension(&caller, &line, b).await })
        });

    let device = association_route(svc.clone(), "devices", Assoc::Device);

    let s = svc.clone();
    let line_device = warp::path!("lines" / String / "devices")
        .and(warp::get())
        .and(authed.clone())
        .then(move |line: String, caller: Caller| {
            let svc = s.clone();
            respond(async move { Ok(warp::reply::json(&svc.get_line_device(&caller, &line).await?).into_response()) })
        });

    let s = svc.clone();
    let device_lines = warp::path!("devices" / String / "lines")
        .and(warp::get())
        .and(authed)
        .then(move |device: String, caller: Caller| {
            let svc = s.clone();
            respond(
                async move { Ok(warp::reply::json(&svc.get_device_lines(&caller, &device).await?).into_response()) },
            )
        });

    resource::routes::<Line>(svc)
        .or(endpoint)
        .unify()
        .or(extension)
        .unify()
        .or(create_extension)
        .unify()
        .or(device)
        .unify()
        .or(line_device)
        .unify()
        .or(device_lines)
        .unify()
        .boxed()
}
