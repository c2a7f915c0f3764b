//! `/voicemails`: voicemail boxes (`number@context` unique, context of the
//! same tenant). A voicemail still used by a user cannot be deleted.

pub mod model;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

pub use self::model::Voicemail;
use super::contexts;
use super::docstore::Row;
use super::reload::Reload;
use super::resource::{Check, Def, EventDef, Resource};
use crate::api::error::ApiError;

pub const TABLE: &str = "confd_voicemail";

impl Resource for Voicemail {
    const DEF: Def = Def {
        path: &["voicemails"],
        acl: "voicemails",
        table: TABLE,
        kind: "Voicemail",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id", "name", "number", "context", "email", "pager", "language"],
        filterable: &[
            "id", "name", "number", "context", "email", "pager", "language", "enabled",
        ],
        searchable: &["name", "number", "context", "email", "pager", "language"],
        default_order: "number",
        read_only: &["users"],
        created: EventDef {
            name: "voicemail_created",
            routing_key: "config.voicemail.created",
        },
        edited: EventDef {
            name: "voicemail_edited",
            routing_key: "config.voicemail.edited",
        },
        deleted: EventDef {
            name: "voicemail_deleted",
            routing_key: "config.voicemail.deleted",
        },
        reloads: &[Reload::Voicemail, Reload::Dialplan, Reload::Pjsip],
    };

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        contexts::by_name(ctx.tx, &self.context)?
            .filter(|(row, _)| row.tenant_uuid == ctx.tenant_uuid)
            .ok_or_else(|| {
                ApiError::invalid_field("context", format!("Context was not found ('name': '{}')", self.context))
            })?;
        let taken: Option<i64> = ctx
            .tx
            .query_row(
                &format!("SELECT id FROM {TABLE} WHERE number = ?1 AND context = ?2 AND id IS NOT ?3"),
                params![self.number, self.context, ctx.id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(ApiError::conflict(
                "Voicemail",
                "number",
                format!(
                    "Voicemail already exists ('number': '{}', 'context': '{}')",
                    self.number, self.context
                ),
            ));
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        obj.insert("users".into(), Value::Array(users_of(c, row.id)?));
        Ok(())
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        let n = users_of(tx, row.id)?.len();
        if n > 0 {
            return Err(ApiError::conflict(
                "Voicemail",
                "id",
                format!("Voicemail is still associated ('User': {n})"),
            ));
        }
        super::incalls::destination_deleted(tx, "voicemail", "voicemail_id", &row.id)
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "id": obj.get("id") })
    }
}

/// The users of a voicemail as `{id, uuid, firstname, lastname}`.
pub fn users_of(c: &Connection, voicemail_id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare_cached(
        "SELECT u.id, u.uuid, json_extract(u.doc, '$.firstname'), json_extract(u.doc, '$.lastname') \
         FROM confd_user_voicemail uv JOIN confd_user u ON u.id = uv.user_id \
         WHERE uv.voicemail_id = ?1 ORDER BY u.id",
    )?;
    let rows = stmt.query_map([voicemail_id], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "uuid": r.get::<_, String>(1)?,
            "firstname": r.get::<_, Option<String>>(2)?,
            "lastname": r.get::<_, Option<String>>(3)?,
        }))
    })?;
    rows.collect()
}

/// The number of voicemails in context `name` (what keeps a context in use).
pub fn count_in_context(c: &Connection, name: &str) -> rusqlite::Result<i64> {
    c.query_row(
        &format!("SELECT COUNT(*) FROM {TABLE} WHERE context = ?1"),
        [name],
        |r| r.get(0),
    )
}
