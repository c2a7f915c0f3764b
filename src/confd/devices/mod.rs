//! `/devices`: stored device records (MAC unique). The phones' configuration
//! itself belongs to provd; `status` says whether lines are provisioned on it.

pub mod model;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use self::model::Device;
use super::docstore::Row;
use super::resource::{Check, Def, EventDef, Resource};
use crate::api::error::ApiError;

pub const TABLE: &str = "confd_device";

impl Resource for Device {
    const DEF: Def = Def {
        path: &["devices"],
        acl: "devices",
        table: TABLE,
        kind: "Device",
        // The `id` shown (and in `Location`) is the document's string id.
        by_uuid: false,
        show_id: false,
        show_uuid: false,
        orderable: &["mac", "ip", "sn", "vendor", "model", "version", "plugin", "description"],
        filterable: &["mac", "ip", "sn", "vendor", "model", "version", "plugin", "template_id"],
        searchable: &["mac", "ip", "sn", "vendor", "model", "version", "plugin", "description"],
        default_order: "mac",
        read_only: &["status", "is_new"],
        created: EventDef {
            name: "device_created",
            routing_key: "config.device.created",
        },
        edited: EventDef {
            name: "device_edited",
            routing_key: "config.device.edited",
        },
        deleted: EventDef {
            name: "device_deleted",
            routing_key: "config.device.deleted",
        },
        reloads: &[],
    };

    fn prepare(&mut self, _tenant: Uuid, uuid: Uuid, creating: bool) {
        if creating || self.id.is_empty() {
            self.id = uuid.simple().to_string();
        }
        self.normalize();
    }

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        if let Some(mac) = &self.mac {
            let taken: Option<i64> = ctx
                .tx
                .query_row(
                    &format!("SELECT id FROM {TABLE} WHERE mac = ?1 AND id IS NOT ?2"),
                    params![mac, ctx.id],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(ApiError::conflict(
                    "Device",
                    "mac",
                    format!("Device already exists ('mac': '{mac}')"),
                ));
            }
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let lines: i64 = c.query_row(
            "SELECT COUNT(*) FROM confd_line_device WHERE device_id = ?1",
            [row.id],
            |r| r.get(0),
        )?;
        let status = if lines > 0 { "configured" } else { "not_configured" };
        obj.insert("status".into(), json!(status));
        Ok(())
    }

    /// Lines provisioned on the device lose it.
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        tx.execute("DELETE FROM confd_line_device WHERE device_id = ?1", [row.id])?;
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "device_id": obj.get("id") })
    }
}
