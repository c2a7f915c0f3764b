//! `/incalls` and `PUT/DELETE /incalls/{id}/extensions/{extension_id}`: an
//! incoming call route, its destination (a user or voicemail of the same
//! tenant, a hangup, a custom command...) and the DIDs reaching it
//! (extensions of an `incall` context, inside its incall ranges).

pub mod model;

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

pub use self::model::{Destination, Incall};
use super::contexts::{self, ContextType};
use super::docstore::{self, Key, Row};
use super::extensions::{self, Extension};
use super::reload::Reload;
use super::resource::{self, association_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::error::ApiError;
use crate::auth::caller::Caller;

pub const TABLE: &str = "confd_incall";

/// A broken association rule: confd's 400 `Resource Error - ...`.
fn rule(message: impl Into<String>) -> ApiError {
    ApiError::conflict("Incall", "", message)
}

/// The incall an extension routes to.
pub fn incall_of_extension(c: &Connection, extension_id: i64) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT incall_id FROM confd_incall_extension WHERE extension_id = ?1",
        [extension_id],
        |r| r.get(0),
    )
    .optional()
}

/// The extensions (DIDs) of an incall: `(id, exten, context)`.
pub fn incall_extensions(c: &Connection, incall_id: i64) -> rusqlite::Result<Vec<(i64, String, String)>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT e.id, e.exten, e.context FROM confd_incall_extension ie JOIN {} e ON e.id = ie.extension_id \
         WHERE ie.incall_id = ?1 ORDER BY e.id",
        extensions::TABLE
    ))?;
    let rows = stmt.query_map([incall_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// The rules an extension keeps while it is an incall's: an `incall`
/// context of the tenant, inside its incall ranges.
pub fn check_incall_extension(tx: &Connection, tenant: Uuid, ext: &Extension) -> Result<(), ApiError> {
    contexts::check_extension_in(tx, tenant, ext, ContextType::Incall, |c| &c.incall_ranges, rule)
}

/// Creates, in `tx`, an incall to user `user_id` (ringing `ring_time`
/// seconds) reached by a new DID `exten@context`: the user import's
/// `incall_*` columns. Returns the incall and extension rows.
pub fn create_user_incall(
    tx: &Connection,
    tenant: Uuid,
    user_id: i64,
    ring_time: Option<f64>,
    exten: &str,
    context: &str,
) -> Result<(Row, Row), ApiError> {
    let incall = Incall {
        destination: Destination::User {
            user_id,
            ring_time,
            moh_uuid: None,
        },
        preprocess_subroutine: None,
        greeting_sound: None,
        caller_id_mode: None,
        caller_id_name: None,
        description: None,
    };
    let extension: Extension = resource::from_map(
        json!({ "exten": exten, "context": context })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )?;
    check_incall_extension(tx, tenant, &extension)?;
    let incall = resource::insert_tx(tx, tenant, incall)?;
    let ext = resource::insert_tx(tx, tenant, extension)?;
    tx.execute(
        "INSERT INTO confd_incall_extension (incall_id, extension_id) VALUES (?1, ?2)",
        params![incall.id, ext.id],
    )?;
    Ok((incall, ext))
}

/// A user, voicemail or switchboard is deleted: the incalls reaching it end
/// nowhere (`none`), like upstream's dial actions. `key` names the target in
/// the destination (`user_id`, `switchboard_uuid`).
pub fn destination_deleted(tx: &Connection, kind: &str, key: &str, id: &dyn rusqlite::ToSql) -> Result<(), ApiError> {
    tx.execute(
        &format!(
            "UPDATE {TABLE} SET doc = json_set(doc, '$.destination', json('{{\"type\": \"none\"}}')) \
             WHERE destination_type = ?1 AND json_extract(doc, '$.destination.{key}') = ?2"
        ),
        params![kind, id],
    )?;
    Ok(())
}

/// Checks a destination (of an incall, of a fallback) in the write
/// transaction: the user, voicemail or switchboard it names exists in `tenant`.
pub fn check_destination(tx: &Connection, tenant: Uuid, field: &str, d: &Destination) -> Result<(), ApiError> {
    d.validate(field)?;
    let (kind, table, key, shown) = match d {
        Destination::User { user_id, .. } => ("user", super::users::TABLE, Key::Id(*user_id), user_id.to_string()),
        Destination::Voicemail { voicemail_id, .. } => (
            "voicemail",
            super::voicemails::TABLE,
            Key::Id(*voicemail_id),
            voicemail_id.to_string(),
        ),
        Destination::Switchboard { switchboard_uuid } => (
            "switchboard",
            super::switchboards::TABLE,
            Key::Uuid(*switchboard_uuid),
            format!("'{switchboard_uuid}'"),
        ),
        _ => return Ok(()),
    };
    let id_key = if kind == "switchboard" { "uuid" } else { "id" };
    let found = docstore::get(tx, table, key)?.is_some_and(|r| r.tenant_uuid == tenant);
    if !found {
        return Err(ApiError::invalid_field(
            &format!("{field}.{kind}_{id_key}"),
            format!("{kind} was not found ('{id_key}': {shown})"),
        ));
    }
    Ok(())
}

/// The destination with the names clients display (`user_firstname`...).
fn destination_object(c: &Connection, destination: &Value) -> rusqlite::Result<Value> {
    let mut out = destination.clone();
    let Value::Object(obj) = &mut out else {
        return Ok(out);
    };
    let (table, key) = match obj.get("type").and_then(Value::as_str) {
        Some("user") => (super::users::TABLE, "user_id"),
        Some("voicemail") => (super::voicemails::TABLE, "voicemail_id"),
        Some("switchboard") => (super::switchboards::TABLE, "switchboard_uuid"),
        _ => return Ok(out),
    };
    let target = match obj.get(key) {
        Some(Value::String(u)) => Uuid::parse_str(u).ok().map(Key::Uuid),
        v => v.and_then(Value::as_i64).map(Key::Id),
    };
    let row = match target {
        Some(k) => docstore::get(c, table, k)?,
        None => None,
    };
    let field = |k: &str| row.as_ref().and_then(|r| r.doc.get(k).cloned()).unwrap_or(Value::Null);
    if key == "user_id" {
        obj.insert("user_firstname".into(), field("firstname"));
        obj.insert("user_lastname".into(), field("lastname"));
    } else if key == "voicemail_id" {
        obj.insert("voicemail_name".into(), field("name"));
    } else {
        obj.insert("switchboard_name".into(), field("name"));
    }
    Ok(out)
}

impl Resource for Incall {
    const DEF: Def = Def {
        path: &["incalls"],
        acl: "incalls",
        table: TABLE,
        kind: "Incall",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &[
            "id",
            "description",
            "caller_id_mode",
            "caller_id_name",
            "preprocess_subroutine",
        ],
        filterable: &["id", "caller_id_mode", "caller_id_name", "preprocess_subroutine"],
        searchable: &["description", "caller_id_name", "preprocess_subroutine"],
        default_order: "id",
        read_only: &["extensions", "schedules"],
        created: EventDef {
            name: "incall_created",
            routing_key: "config.incalls.created",
        },
        edited: EventDef {
            name: "incall_edited",
            routing_key: "config.incalls.edited",
        },
        deleted: EventDef {
            name: "incall_deleted",
            routing_key: "config.incalls.deleted",
        },
        reloads: &[Reload::Dialplan],
    };

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        check_destination(ctx.tx, ctx.tenant_uuid, "destination", &self.destination)
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        if let Some(d) = row.doc.get("destination") {
            obj.insert("destination".into(), destination_object(c, d)?);
        }
        let extens: Vec<Value> = incall_extensions(c, row.id)?
            .into_iter()
            .map(|(id, exten, context)| json!({ "id": id, "exten": exten, "context": context }))
            .collect();
        obj.insert("extensions".into(), Value::Array(extens));
        obj.insert("schedules".into(), Value::Array(Vec::new()));
        Ok(())
    }

    /// The DIDs are dissociated (kept).
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        tx.execute("DELETE FROM confd_incall_extension WHERE incall_id = ?1", [row.id])?;
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "id": obj.get("id") })
    }
}

impl ConfdService {
    /// The events and reload of [`create_user_incall`], once committed.
    pub(crate) fn announce_user_incall(&self, incall: &Row, ext: &Row) {
        self.announce_created::<Incall>(incall);
        self.announce_created::<Extension>(ext);
        self.publish_tenant(
            "incall_extension_associated",
            "config.incalls.extensions.updated".into(),
            json!({ "incall_id": incall.id, "extension_id": ext.id }),
            incall.tenant_uuid,
        );
    }
}

impl ConfdService {
    /// PUT (`associate`) or DELETE `/incalls/{id}/extensions/{extension_id}`.
    async fn incall_extension(
        &self,
        caller: &Caller,
        incall_id: &str,
        extension_id: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let scope = caller.require(&association_acl(
            "incalls",
            incall_id,
            "extensions",
            extension_id,
            associate,
        ))?;
        let incall = self.find::<Incall>(&scope, incall_id).await?;
        let ext = self.find::<Extension>(&scope, extension_id).await?;
        if incall.tenant_uuid != ext.tenant_uuid {
            return Err(rule("Incall and Extension are not in the same tenant"));
        }
        let (i, e) = (incall.id, ext.clone());
        let tenant = incall.tenant_uuid;
        let changed = self
            .store
            .write(move |tx| {
                let current = incall_of_extension(tx, e.id)?;
                if associate {
                    if current == Some(i) {
                        return Ok::<_, ApiError>(false);
                    }
                    let extension: Extension = resource::from_map(e.doc.clone())?;
                    check_incall_extension(tx, tenant, &extension)?;
                    if let Some(owner) = super::extension_owner(tx, e.id)? {
                        return Err(rule(format!("Extension is already associated with a {owner}")));
                    }
                    tx.execute(
                        "INSERT INTO confd_incall_extension (incall_id, extension_id) VALUES (?1, ?2)",
                        params![i, e.id],
                    )?;
                } else {
                    if current != Some(i) {
                        return Err(rule("Incall and Extension are not associated"));
                    }
                    tx.execute("DELETE FROM confd_incall_extension WHERE extension_id = ?1", [e.id])?;
                }
                Ok(true)
            })
            .await?;
        if changed {
            self.announce_extension_association("incall", incall.id, ext.id, tenant, associate);
        }
        Ok(())
    }
}

/// CRUD plus the extension association.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let extension = resource::association_route(
        svc.clone(),
        "incalls",
        &["extensions"],
        |svc: Arc<ConfdService>, caller: Caller, id: String, other: String, associate: bool, _body| async move {
            svc.incall_extension(&caller, &id, &other, associate).await
        },
    );
    resource::routes::<Incall>(svc).or(extension).unify().boxed()
}
