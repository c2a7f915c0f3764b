//! `/endpoints/sccp`: SCCP endpoints, as far as lines need them.

pub mod model;

use rusqlite::Connection;
use serde_json::{json, Map, Value};

pub use self::model::EndpointSccp;
use super::docstore::Row;
use super::lines::{self, EndpointKind};
use super::reload::Reload;
use super::resource::{Check, Def, EventDef, Resource};
use crate::api::error::ApiError;

pub const TABLE: &str = "confd_endpoint_sccp";

impl Resource for EndpointSccp {
    const DEF: Def = Def {
        path: &["endpoints", "sccp"],
        acl: "endpoints.sccp",
        table: TABLE,
        kind: "SCCPEndpoint",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id"],
        filterable: &["id"],
        searchable: &[],
        default_order: "id",
        read_only: &["line", "trunk"],
        created: EventDef {
            name: "sccp_endpoint_created",
            routing_key: "config.sccp_endpoint.created",
        },
        edited: EventDef {
            name: "sccp_endpoint_edited",
            routing_key: "config.sccp_endpoint.edited",
        },
        deleted: EventDef {
            name: "sccp_endpoint_deleted",
            routing_key: "config.sccp_endpoint.deleted",
        },
        reloads: &[Reload::Sccp],
    };

    fn check(&self, _ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let line = lines::line_of_endpoint(c, EndpointKind::Sccp, row.id)?;
        obj.insert("line".into(), line.map(|id| json!({ "id": id })).unwrap_or(Value::Null));
        obj.insert("trunk".into(), Value::Null);
        Ok(())
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        lines::refuse_if_on_line(tx, EndpointKind::Sccp, row.id)
    }
}
