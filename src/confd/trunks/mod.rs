//! `/trunks` and `PUT/DELETE /trunks/{id}/endpoints/{sip,custom}/{endpoint}`:
//! a trunk has at most one endpoint, and an endpoint serves either one line
//! or one trunk. The outcalls using a trunk are listed on it (the
//! association is owned by outcalls).

pub mod model;

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

pub use self::model::Trunk;
use super::contexts;
use super::docstore::Row;
use super::endpoints_custom::EndpointCustom;
use super::endpoints_sip::EndpointSip;
use super::lines::{self, EndpointKind};
use super::reload::Reload;
use super::resource::{self, association_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::error::ApiError;
use crate::auth::caller::Caller;

pub const TABLE: &str = "confd_trunk";

/// A broken association rule: confd's 400 `Resource Error - ...`.
fn rule(message: impl Into<String>) -> ApiError {
    ApiError::conflict("Trunk", "", message)
}

/// The trunk an endpoint is associated with.
pub fn trunk_of_endpoint(c: &Connection, kind: EndpointKind, endpoint_id: i64) -> rusqlite::Result<Option<i64>> {
    if kind == EndpointKind::Sccp {
        return Ok(None);
    }
    c.query_row(
        &format!("SELECT trunk_id FROM confd_trunk_endpoint WHERE {} = ?1", kind.column()),
        [endpoint_id],
        |r| r.get(0),
    )
    .optional()
}

/// An endpoint on a trunk can neither be deleted nor go on a line.
pub fn refuse_if_on_trunk(tx: &Connection, kind: EndpointKind, endpoint_id: i64) -> Result<(), ApiError> {
    if let Some(trunk_id) = trunk_of_endpoint(tx, kind, endpoint_id)? {
        return Err(ApiError::conflict(
            kind.kind(),
            "id",
            format!("{} is associated with a Trunk ('trunk_id': {trunk_id})", kind.kind()),
        ));
    }
    Ok(())
}

/// The endpoint of a trunk: kind and endpoint row id.
pub fn endpoint_of_trunk(c: &Connection, trunk_id: i64) -> rusqlite::Result<Option<(EndpointKind, i64)>> {
    c.query_row(
        "SELECT sip_id, custom_id FROM confd_trunk_endpoint WHERE trunk_id = ?1",
        [trunk_id],
        |r| {
            let (sip, custom): (Option<i64>, Option<i64>) = (r.get(0)?, r.get(1)?);
            Ok(match (sip, custom) {
                (Some(id), _) => Some((EndpointKind::Sip, id)),
                (_, Some(id)) => Some((EndpointKind::Custom, id)),
                _ => None,
            })
        },
    )
    .optional()
    .map(Option::flatten)
}

/// `endpoint_sip`, `endpoint_custom`, `endpoint_iax` of a trunk into `obj`.
pub fn endpoint_relations(c: &Connection, trunk_id: i64, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
    let endpoint = endpoint_of_trunk(c, trunk_id)?;
    for kind in [EndpointKind::Sip, EndpointKind::Custom] {
        let rel = match endpoint {
            Some((k, id)) if k == kind => lines::endpoint_relation(c, k, id)?,
            _ => None,
        };
        obj.insert(kind.field().into(), rel.unwrap_or(Value::Null));
    }
    obj.insert("endpoint_iax".into(), Value::Null);
    Ok(())
}

/// The outcalls using a trunk, as `{id, name}`.
fn trunk_outcalls(c: &Connection, trunk_id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT o.id, o.name FROM confd_outcall_trunk ot JOIN {} o ON o.id = ot.outcall_id \
         WHERE ot.trunk_id = ?1 ORDER BY o.id",
        super::outcalls::TABLE
    ))?;
    let rows = stmt.query_map([trunk_id], |r| {
        Ok(json!({ "id": r.get::<_, i64>(0)?, "name": r.get::<_, Option<String>>(1)? }))
    })?;
    rows.collect()
}

impl Resource for Trunk {
    const DEF: Def = Def {
        path: &["trunks"],
        acl: "trunks",
        table: TABLE,
        kind: "Trunk",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id", "context", "description", "outgoing_caller_id_format"],
        filterable: &["id", "context", "twilio_incoming", "outgoing_caller_id_format"],
        searchable: &["context", "description"],
        default_order: "context",
        read_only: &[
            "endpoint_sip",
            "endpoint_custom",
            "endpoint_iax",
            "outcalls",
            "register_iax",
            "register_sip",
        ],
        created: EventDef {
            name: "trunk_created",
            routing_key: "config.trunk.created",
        },
        edited: EventDef {
            name: "trunk_edited",
            routing_key: "config.trunk.edited",
        },
        deleted: EventDef {
            name: "trunk_deleted",
            routing_key: "config.trunk.deleted",
        },
        // The trunk's context is its SIP endpoint's; outcalls dial through it.
        reloads: &[Reload::Pjsip, Reload::Dialplan],
    };

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        if let Some(name) = &self.context {
            contexts::of_tenant(ctx.tx, name, ctx.tenant_uuid)?;
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        endpoint_relations(c, row.id, obj)?;
        obj.insert("outcalls".into(), Value::Array(trunk_outcalls(c, row.id)?));
        obj.insert("register_iax".into(), Value::Null);
        obj.insert("register_sip".into(), Value::Null);
        Ok(())
    }

    /// The endpoint is dissociated (kept) and the trunk leaves its outcalls.
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        tx.execute("DELETE FROM confd_trunk_endpoint WHERE trunk_id = ?1", [row.id])?;
        tx.execute("DELETE FROM confd_outcall_trunk WHERE trunk_id = ?1", [row.id])?;
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "id": obj.get("id") })
    }
}

impl ConfdService {
    /// PUT (`associate`) or DELETE `/trunks/{id}/endpoints/{kind}/{endpoint}`.
    async fn trunk_endpoint(
        &self,
        caller: &Caller,
        trunk_id: &str,
        kind: EndpointKind,
        endpoint_id: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let what = format!("endpoints.{}", kind.segment());
        let scope = caller.require(&association_acl("trunks", trunk_id, &what, endpoint_id, associate))?;
        let trunk = self.find::<Trunk>(&scope, trunk_id).await?;
        let endpoint = match kind {
            EndpointKind::Sip => self.find::<EndpointSip>(&scope, endpoint_id).await?,
            _ => self.find::<EndpointCustom>(&scope, endpoint_id).await?,
        };
        if trunk.tenant_uuid != endpoint.tenant_uuid {
            return Err(rule(format!("Trunk and {} are not in the same tenant", kind.kind())));
        }
        let (t, ep) = (trunk.clone(), endpoint.clone());
        let changed = self
            .store
            .write(move |tx| {
                let current = endpoint_of_trunk(tx, t.id)?;
                if associate {
                    if current == Some((kind, ep.id)) {
                        return Ok::<_, ApiError>(false);
                    }
                    if current.is_some() {
                        return Err(rule(format!(
                            "Trunk is already associated with an endpoint ('trunk_id': {})",
                            t.id
                        )));
                    }
                    if let Some(line_id) = lines::line_of_endpoint(tx, kind, ep.id)? {
                        return Err(rule(format!(
                            "{} is already associated with a Line ('line_id': {line_id})",
                            kind.kind()
                        )));
                    }
                    if let Some(other) = trunk_of_endpoint(tx, kind, ep.id)? {
                        return Err(rule(format!(
                            "{} is already associated with a Trunk ('trunk_id': {other})",
                            kind.kind()
                        )));
                    }
                    tx.execute(
                        &format!(
                            "INSERT INTO confd_trunk_endpoint (trunk_id, {}) VALUES (?1, ?2)",
                            kind.column()
                        ),
                        params![t.id, ep.id],
                    )?;
                } else {
                    if current != Some((kind, ep.id)) {
                        return Err(rule(format!("Trunk and {} are not associated", kind.kind())));
                    }
                    tx.execute("DELETE FROM confd_trunk_endpoint WHERE trunk_id = ?1", [t.id])?;
                }
                Ok(true)
            })
            .await?;
        if !changed {
            return Ok(());
        }
        let ep_id = endpoint.id;
        let ep_obj = self
            .store
            .read(move |c| Ok::<_, ApiError>(lines::endpoint_relation(c, kind, ep_id)?))
            .await?;
        let mut ep_obj = ep_obj.unwrap_or(Value::Null);
        if let Value::Object(m) = &mut ep_obj {
            m.insert("tenant_uuid".into(), json!(trunk.tenant_uuid));
        }
        let ep_key = match kind {
            EndpointKind::Sip => endpoint.uuid.to_string(),
            _ => endpoint.id.to_string(),
        };
        let (verb, rk_verb) = if associate {
            ("associated", "updated")
        } else {
            ("dissociated", "deleted")
        };
        self.publish_tenant(
            &format!("trunk_endpoint_{}_{verb}", kind.segment()),
            format!(
                "config.trunks.{}.endpoints.{}.{ep_key}.{rk_verb}",
                trunk.id,
                kind.segment()
            ),
            json!({
                "trunk": { "id": trunk.id, "tenant_uuid": trunk.tenant_uuid },
                kind.field(): ep_obj,
            }),
            trunk.tenant_uuid,
        );
        self.reloader.request(kind.reloads());
        Ok(())
    }
}

/// CRUD plus the endpoint associations.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let endpoint = |segment: &'static [&'static str], kind: EndpointKind| {
        resource::association_route(
            svc.clone(),
            "trunks",
            segment,
            move |svc: Arc<ConfdService>, caller: Caller, id: String, other: String, associate: bool, _body| async move {
                svc.trunk_endpoint(&caller, &id, kind, &other, associate).await
            },
        )
    };
    let sip = endpoint(&["endpoints", "sip"], EndpointKind::Sip);
    let custom = endpoint(&["endpoints", "custom"], EndpointKind::Custom);
    resource::routes::<Trunk>(svc)
        .or(sip)
        .unify()
        .or(custom)
        .unify()
        .boxed()
}
