//! `/conferences` and `PUT/DELETE /conferences/{id}/extensions/{extension_id}`:
//! a conference room (one ConfBridge bridge with its user profiles) and the
//! one extension reaching it (an `internal` context of the tenant, inside
//! its conference room ranges).

pub mod model;

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

pub use self::model::Conference;
use super::contexts::{self, ContextType};
use super::docstore::Row;
use super::extension_link::ExtensionLink;
use super::extensions::{self, Extension};
use super::reload::Reload;
use super::resource::{self, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::error::ApiError;
use crate::auth::caller::Caller;

pub const TABLE: &str = "confd_conference";

/// A broken association rule: confd's 400 `Resource Error - ...`.
fn rule(message: impl Into<String>) -> ApiError {
    ApiError::conflict("Conference", "", message)
}

/// The conference an extension reaches.
pub fn conference_of_extension(c: &Connection, extension_id: i64) -> rusqlite::Result<Option<i64>> {
    EXTENSION.owner_of(c, extension_id)
}

/// The extension of a conference: `(id, exten, context)`.
pub fn conference_extension(c: &Connection, conference_id: i64) -> rusqlite::Result<Option<(i64, String, String)>> {
    c.query_row(
        &format!(
            "SELECT e.id, e.exten, e.context FROM confd_conference_extension ce JOIN {} e ON e.id = ce.extension_id \
             WHERE ce.conference_id = ?1",
            extensions::TABLE
        ),
        [conference_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
}

/// The rules an extension keeps while it reaches a conference: an
/// `internal` context of the tenant, inside its conference room ranges.
pub fn check_conference_extension(tx: &Connection, tenant: Uuid, ext: &Extension) -> Result<(), ApiError> {
    contexts::check_extension_in(
        tx,
        tenant,
        ext,
        ContextType::Internal,
        |c| &c.conference_room_ranges,
        rule,
    )
}

impl Resource for Conference {
    const DEF: Def = Def {
        path: &["conferences"],
        acl: "conferences",
        table: TABLE,
        kind: "Conference",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id", "name", "preprocess_subroutine"],
        filterable: &["id", "name", "preprocess_subroutine"],
        searchable: &["name", "preprocess_subroutine"],
        default_order: "name",
        read_only: &["extensions", "incalls"],
        created: EventDef {
            name: "conference_created",
            routing_key: "config.conferences.created",
        },
        edited: EventDef {
            name: "conference_edited",
            routing_key: "config.conferences.edited",
        },
        deleted: EventDef {
            name: "conference_deleted",
            routing_key: "config.conferences.deleted",
        },
        // The bridge and user profiles live in confbridge.conf, the extension in the dialplan.
        reloads: &[Reload::Confbridge, Reload::Dialplan],
    };

    fn check(&self, _ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let extensions: Vec<Value> = conference_extension(c, row.id)?
            .into_iter()
            .map(|(id, exten, context)| json!({ "id": id, "exten": exten, "context": context }))
            .collect();
        obj.insert("extensions".into(), Value::Array(extensions));
        obj.insert("incalls".into(), Value::Array(Vec::new()));
        Ok(())
    }

    /// The extension is dissociated (kept), as upstream does.
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        Ok(EXTENSION.forget_owner(tx, row.id)?)
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "id": obj.get("id") })
    }
}

/// Where a conference's one extension is kept.
pub static EXTENSION: ExtensionLink = ExtensionLink {
    table: "confd_conference_extension",
    column: "conference_id",
    label: "Conference",
    path: "conferences",
};

impl ConfdService {
    /// PUT (`associate`) or DELETE `/conferences/{id}/extensions/{extension_id}`.
    async fn conference_extension(
        &self,
        caller: &Caller,
        conference_id: &str,
        extension_id: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let linked = self
            .link_extension::<Conference>(
                &EXTENSION,
                caller,
                conference_id,
                extension_id,
                associate,
                |tx, row, _, ext| check_conference_extension(tx, row.tenant_uuid, ext),
            )
            .await?;
        if let Some(l) = linked {
            self.announce_extension_association("conference", l.owner_id, l.extension_id, l.tenant, associate);
        }
        Ok(())
    }
}

/// CRUD plus the extension association.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let extension = resource::association_route(
        svc.clone(),
        "conferences",
        &["extensions"],
        |svc: Arc<ConfdService>, caller: Caller, id: String, other: String, associate: bool, _body| async move {
            svc.conference_extension(&caller, &id, &other, associate).await
        },
    );
    resource::routes::<Conference>(svc).or(extension).unify().boxed()
}
