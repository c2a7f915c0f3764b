//! `/endpoints/custom`: custom endpoints (a dial interface), as far as lines
//! need them. Interfaces are unique.

pub mod model;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

pub use self::model::EndpointCustom;
use super::docstore::Row;
use super::lines::{self, EndpointKind};
use super::reload::Reload;
use super::resource::{Check, Def, EventDef, Resource};
use crate::api::error::ApiError;

pub const TABLE: &str = "confd_endpoint_custom";

impl Resource for EndpointCustom {
    const DEF: Def = Def {
        path: &["endpoints", "custom"],
        acl: "endpoints.custom",
        table: TABLE,
        kind: "CustomEndpoint",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id", "interface"],
        filterable: &["id", "interface", "enabled"],
        searchable: &["interface"],
        default_order: "interface",
        read_only: &["line", "trunk"],
        created: EventDef {
            name: "custom_endpoint_created",
            routing_key: "config.custom_endpoint.created",
        },
        edited: EventDef {
            name: "custom_endpoint_edited",
            routing_key: "config.custom_endpoint.edited",
        },
        deleted: EventDef {
            name: "custom_endpoint_deleted",
            routing_key: "config.custom_endpoint.deleted",
        },
        reloads: &[Reload::Dialplan],
    };

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        let taken: Option<i64> = ctx
            .tx
            .query_row(
                &format!("SELECT id FROM {TABLE} WHERE interface = ?1 AND id IS NOT ?2"),
                params![self.interface, ctx.id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(ApiError::conflict(
                "CustomEndpoint",
                "interface",
                format!("CustomEndpoint already exists ('interface': '{}')", self.interface),
            ));
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let line = lines::line_of_endpoint(c, EndpointKind::Custom, row.id)?;
        obj.insert("line".into(), line.map(|id| json!({ "id": id })).unwrap_or(Value::Null));
        let trunk = crate::confd::trunks::trunk_of_endpoint(c, EndpointKind::Custom, row.id)?;
        obj.insert(
            "trunk".into(),
            trunk.map(|id| json!({ "id": id })).unwrap_or(Value::Null),
        );
        Ok(())
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        crate::confd::trunks::refuse_if_on_trunk(tx, EndpointKind::Custom, row.id)?;
        lines::refuse_if_on_line(tx, EndpointKind::Custom, row.id)
    }
}
