//! `/applications` and `PUT/DELETE /lines/{id}/applications/{uuid}`: the
//! Stasis applications calld drives (`accent-app-<uuid>` in Asterisk), their
//! destination node, and the lines whose calls enter one. Asterisk needs no
//! configuration for them (a Stasis application exists once an ARI client
//! subscribes to it), so changes send no reload; calld follows the events.

pub mod model;

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

pub use self::model::{Application, DestinationKind, NodeOptions, NodeType};
use super::docstore::{self, Key, Row};
use super::lines::{self, Line};
use super::resource::{self, association_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::error::ApiError;
use crate::auth::caller::Caller;

pub const TABLE: &str = "confd_application";

/// The application a line's calls enter: `{uuid}`, or `None`.
pub fn application_of_line(c: &Connection, line_id: i64) -> rusqlite::Result<Option<Value>> {
    c.query_row(
        &format!(
            "SELECT a.uuid FROM confd_line_application la JOIN {TABLE} a ON a.id = la.application_id \
             WHERE la.line_id = ?1"
        ),
        [line_id],
        |r| r.get::<_, String>(0),
    )
    .optional()
    .map(|uuid| uuid.map(|uuid| json!({ "uuid": uuid })))
}

/// The lines of an application as upstream shows them: `{id, name}`.
fn application_lines(c: &Connection, application_id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt =
        c.prepare_cached("SELECT line_id FROM confd_line_application WHERE application_id = ?1 ORDER BY line_id")?;
    let ids = stmt
        .query_map([application_id], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    ids.into_iter()
        .map(|id| lines::user_line_relation(c, id).map(|l| json!({ "id": l["id"], "name": l["name"] })))
        .collect()
}

/// Every stored application: `(uuid, tenant, document)`, for calld.
pub fn all(c: &Connection) -> rusqlite::Result<Vec<(Uuid, Uuid, Application)>> {
    let mut stmt = c.prepare_cached(&format!("SELECT id, uuid, tenant_uuid, doc FROM {TABLE} ORDER BY id"))?;
    let rows = stmt.query_map([], |r| {
        let (uuid, tenant, doc): (String, String, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
        Ok((uuid, tenant, doc))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (uuid, tenant, doc) = row?;
        // A row that no longer parses (older shape) is skipped, not fatal.
        let (Ok(uuid), Ok(tenant), Ok(app)) = (
            Uuid::parse_str(&uuid),
            Uuid::parse_str(&tenant),
            serde_json::from_str::<Map<String, Value>>(&doc).and_then(from_document),
        ) else {
            tracing::warn!(%uuid, "stored application skipped: unreadable");
            continue;
        };
        out.push((uuid, tenant, app));
    }
    Ok(out)
}

/// An application from its stored document or its event's fields (the
/// `destination_options` of no destination, `{}`, are dropped).
pub fn from_document(doc: Map<String, Value>) -> serde_json::Result<Application> {
    let mut fields = Map::new();
    let picked = doc
        .into_iter()
        .filter(|(k, _)| matches!(k.as_str(), "name" | "destination" | "destination_options"))
        .collect();
    model::merge(&mut fields, picked);
    serde_json::from_value(Value::Object(fields))
}

impl Resource for Application {
    const DEF: Def = Def {
        path: &["applications"],
        acl: "applications",
        table: TABLE,
        kind: "Application",
        by_uuid: true,
        show_id: false,
        show_uuid: true,
        orderable: &["name", "uuid"],
        filterable: &["name"],
        searchable: &["name"],
        default_order: "name",
        read_only: &["lines"],
        created: EventDef {
            name: "application_created",
            routing_key: "config.applications.created",
        },
        edited: EventDef {
            name: "application_edited",
            routing_key: "config.applications.edited",
        },
        deleted: EventDef {
            name: "application_deleted",
            routing_key: "config.applications.deleted",
        },
        reloads: &[],
    };

    fn merge(base: &mut Map<String, Value>, body: Map<String, Value>) {
        model::merge(base, body);
    }

    fn check(&self, _ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        obj.insert("lines".into(), Value::Array(application_lines(c, row.id)?));
        Ok(())
    }
}

impl ConfdService {
    /// PUT (`associate`) or DELETE `/lines/{line_id}/applications/{uuid}`.
    async fn line_application(
        &self,
        caller: &Caller,
        line_id: &str,
        app_uuid: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let scope = caller.require(&association_acl("lines", line_id, "applications", app_uuid, associate))?;
        let line = self.find::<Line>(&scope, line_id).await?;
        // Applications are named by uuid only.
        if Uuid::parse_str(app_uuid).is_err() {
            return Err(ApiError::not_found("Application", app_uuid));
        }
        let app = self.find::<Application>(&scope, app_uuid).await?;
        if line.tenant_uuid != app.tenant_uuid {
            return Err(ApiError::conflict(
                "Line",
                "",
                "Line and Application are not in the same tenant",
            ));
        }
        let (l, a) = (line.clone(), app.id);
        let summary = self
            .store
            .write(move |tx| {
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT application_id FROM confd_line_application WHERE line_id = ?1",
                        [l.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                match (associate, current) {
                    (true, Some(c)) if c == a => return Ok::<_, ApiError>(None),
                    (true, Some(_)) => {
                        return Err(ApiError::conflict(
                            "Line",
                            "",
                            "Line is already associated with an Application",
                        ))
                    }
                    (true, None) => {
                        tx.execute(
                            "INSERT INTO confd_line_application (line_id, application_id) VALUES (?1, ?2)",
                            params![l.id, a],
                        )?;
                    }
                    (false, Some(c)) if c == a => {
                        tx.execute("DELETE FROM confd_line_application WHERE line_id = ?1", [l.id])?;
                    }
                    (false, _) => {
                        return Err(ApiError::conflict(
                            "Line",
                            "",
                            "Line and Application are not associated",
                        ));
                    }
                }
                Ok(Some(lines::line_event_summary(tx, &l)?))
            })
            .await?;
        if let Some(line_summary) = summary {
            let (name, verb) = if associate {
                ("line_application_associated", "updated")
            } else {
                ("line_application_dissociated", "deleted")
            };
            self.publish_tenant(
                name,
                format!("config.lines.{}.applications.{}.{verb}", line.id, app.uuid),
                json!({ "line": line_summary, "application": { "uuid": app.uuid } }),
                line.tenant_uuid,
            );
        }
        Ok(())
    }
}

/// CRUD plus the line association.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let line = resource::association_route(
        svc.clone(),
        "lines",
        &["applications"],
        |svc: Arc<ConfdService>, caller: Caller, id: String, other: String, associate: bool, _body| async move {
            svc.line_application(&caller, &id, &other, associate).await
        },
    );
    resource::routes::<Application>(svc).or(line).unify().boxed()
}

/// A found application's row by uuid (calld's view: any tenant).
pub fn get(c: &Connection, uuid: Uuid) -> rusqlite::Result<Option<Row>> {
    docstore::get(c, TABLE, Key::Uuid(uuid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_without_a_node_read_back() {
        let doc = json!({"uuid": "x", "name": "a", "destination": null, "destination_options": {}});
        let app = from_document(doc.as_object().cloned().unwrap_or_default()).expect("readable");
        assert!(app.node().is_none());
        let doc = json!({"destination": "node", "destination_options": {"type": "holding", "answer": true}});
        let app = from_document(doc.as_object().cloned().unwrap_or_default()).expect("readable");
        assert_eq!(app.node().map(|n| (n.kind, n.answer)), Some((NodeType::Holding, true)));
    }
}
