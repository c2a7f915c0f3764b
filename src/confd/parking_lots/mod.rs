//! `/parkinglots` and `PUT/DELETE /parkinglots/{id}/extensions/{extension_id}`:
//! the parking lots res_parking serves (`[parkinglot-<id>]` in
//! res_parking.conf) and the one extension of an internal context that parks
//! into each. A lot's slots are dialplan extensions of that context once
//! Asterisk loads it, so no other extension of the context may sit inside
//! them, and no two lots of a context may share a slot.

pub mod model;

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use self::model::slot_number;
pub use self::model::ParkingLot;
use super::contexts::{self, ContextType};
use super::docstore::Row;
use super::extension_link::ExtensionLink;
use super::extensions::{self, Extension};
use super::reload::Reload;
use super::resource::{self, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::error::ApiError;
use crate::auth::caller::Caller;

pub const TABLE: &str = "confd_parking_lot";

/// The reloads a lot's change needs: res_parking re-reads its file.
const RELOADS: &[Reload] = &[Reload::Parking];

/// A broken association or slot rule: confd's 400 `Resource Error - ...`.
fn rule(message: impl Into<String>) -> ApiError {
    ApiError::conflict("ParkingLot", "", message)
}

/// The name Asterisk knows a lot by (res_parking.conf section, AMI `Parkinglot`).
pub fn asterisk_name(id: i64) -> String {
    format!("parkinglot-{id}")
}

/// The lot id of an Asterisk lot name (`parkinglot-3` -> 3).
pub fn id_of_asterisk_name(name: &str) -> Option<i64> {
    name.strip_prefix("parkinglot-")?.parse().ok()
}

/// The lot an extension parks into.
pub fn lot_of_extension(c: &Connection, extension_id: i64) -> rusqlite::Result<Option<i64>> {
    EXTENSION.owner_of(c, extension_id)
}

/// The extension of a lot: `(id, exten, context)`.
pub fn lot_extension(c: &Connection, lot_id: i64) -> rusqlite::Result<Option<(i64, String, String)>> {
    c.query_row(
        &format!(
            "SELECT e.id, e.exten, e.context FROM confd_parking_lot_extension pe JOIN {} e ON e.id = pe.extension_id \
             WHERE pe.parking_lot_id = ?1",
            extensions::TABLE
        ),
        [lot_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
}

/// The lots parking through an extension of `context`: `(lot id, extension id, lot)`.
fn lots_in_context(c: &Connection, context: &str) -> Result<Vec<(i64, i64, ParkingLot)>, ApiError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT p.id, e.id, p.doc FROM confd_parking_lot_extension pe \
         JOIN {TABLE} p ON p.id = pe.parking_lot_id JOIN {} e ON e.id = pe.extension_id \
         WHERE e.context = ?1 ORDER BY p.id",
        extensions::TABLE
    ))?;
    let rows: Vec<(i64, i64, String)> = stmt
        .query_map([context], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(lot_id, ext_id, doc)| {
            let map = serde_json::from_str(&doc).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok((lot_id, ext_id, resource::from_map::<ParkingLot>(map)?))
        })
        .collect()
}

/// Refuses an extension `exten@context` that would sit inside the slots of
/// a lot of that context (res_parking would shadow it).
pub fn check_not_in_slots(c: &Connection, exten: &str, context: &str) -> Result<(), ApiError> {
    for (lot_id, _, lot) in lots_in_context(c, context)? {
        if lot.holds(exten) {
            return Err(ApiError::conflict(
                "Extension",
                "exten",
                format!(
                    "Extension '{exten}@{context}' is inside the slots of ParkingLot {lot_id} ({}-{})",
                    lot.slots_start, lot.slots_end
                ),
            ));
        }
    }
    Ok(())
}

/// The rules of lot `lot_id` parking through `exten@context` (extension
/// `ext_id`): an internal context of the tenant, the extension outside the
/// slots, no other extension of the context inside them, no slot shared
/// with another lot of the context.
fn check_lot_slots(
    c: &Connection,
    tenant: Uuid,
    lot_id: i64,
    lot: &ParkingLot,
    ext_id: i64,
    exten: &str,
    context: &str,
) -> Result<(), ApiError> {
    let ctx = contexts::of_tenant(c, context, tenant)?;
    if ctx.kind != ContextType::Internal {
        return Err(rule(format!(
            "Extension '{exten}@{context}' is not in an internal context (type '{}')",
            ctx.kind.as_str()
        )));
    }
    let Some((start, end)) = lot.slots() else {
        return Err(ApiError::invalid_field("slots_start", "It is not a valid interval."));
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT id, exten FROM {} WHERE context = ?1 AND id != ?2",
        extensions::TABLE
    ))?;
    let others: Vec<(i64, String)> = stmt
        .query_map(params![context, ext_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let inside = |e: &str| slot_number(e).is_some_and(|n| (start..=end).contains(&n));
    if inside(exten) {
        return Err(rule(format!(
            "Extension '{exten}' is inside the slots of its parking lot ({}-{})",
            lot.slots_start, lot.slots_end
        )));
    }
    if let Some((_, taken)) = others.iter().find(|(_, e)| inside(e)) {
        return Err(rule(format!(
            "Slots {}-{} overlap extension '{taken}@{context}'",
            lot.slots_start, lot.slots_end
        )));
    }
    for (other_id, _, other) in lots_in_context(c, context)? {
        let Some((s, e)) = other.slots() else { continue };
        if other_id != lot_id && s <= end && start <= e {
            return Err(rule(format!(
                "Slots {}-{} overlap the slots of ParkingLot {other_id} ({}-{})",
                lot.slots_start, lot.slots_end, other.slots_start, other.slots_end
            )));
        }
    }
    Ok(())
}

/// An extension of a lot is edited: it keeps the lot's rules in its (maybe new) context.
pub fn check_lot_extension(c: &Connection, tenant: Uuid, ext_id: i64, ext: &Extension) -> Result<(), ApiError> {
    let Some(lot_id) = lot_of_extension(c, ext_id)? else {
        return Ok(());
    };
    let row = super::docstore::get(c, TABLE, super::docstore::Key::Id(lot_id))?
        .ok_or_else(|| ApiError::Internal(format!("parking lot {lot_id} vanished")))?;
    let lot: ParkingLot = resource::from_map(row.doc)?;
    check_lot_slots(c, tenant, lot_id, &lot, ext_id, &ext.exten, &ext.context)
}

impl Resource for ParkingLot {
    const DEF: Def = Def {
        path: &["parkinglots"],
        acl: "parkinglots",
        table: TABLE,
        kind: "ParkingLot",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id", "name", "slots_start", "slots_end", "timeout", "music_on_hold"],
        filterable: &["id", "name"],
        searchable: &["name", "slots_start", "slots_end", "music_on_hold"],
        default_order: "id",
        read_only: &["extensions"],
        created: EventDef {
            name: "parking_lot_created",
            routing_key: "config.parkinglots.created",
        },
        edited: EventDef {
            name: "parking_lot_edited",
            routing_key: "config.parkinglots.edited",
        },
        deleted: EventDef {
            name: "parking_lot_deleted",
            routing_key: "config.parkinglots.deleted",
        },
        reloads: RELOADS,
    };

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        // New slots of a lot already in a context keep its rules.
        if let Some(id) = ctx.id {
            if let Some((ext_id, exten, context)) = lot_extension(ctx.tx, id)? {
                check_lot_slots(ctx.tx, ctx.tenant_uuid, id, self, ext_id, &exten, &context)?;
            }
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let extens: Vec<Value> = lot_extension(c, row.id)?
            .into_iter()
            .map(|(id, exten, context)| json!({ "id": id, "exten": exten, "context": context }))
            .collect();
        obj.insert("extensions".into(), Value::Array(extens));
        Ok(())
    }

    /// The extension is dissociated (kept).
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        Ok(EXTENSION.forget_owner(tx, row.id)?)
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({ "id": obj.get("id") })
    }
}

/// Where a lot's one extension is kept.
pub static EXTENSION: ExtensionLink = ExtensionLink {
    table: "confd_parking_lot_extension",
    column: "parking_lot_id",
    label: "ParkingLot",
    path: "parkinglots",
};

impl ConfdService {
    /// PUT (`associate`) or DELETE `/parkinglots/{id}/extensions/{extension_id}`.
    async fn parking_lot_extension(
        &self,
        caller: &Caller,
        lot_id: &str,
        extension_id: &str,
        associate: bool,
    ) -> Result<(), ApiError> {
        let linked = self
            .link_extension::<ParkingLot>(
                &EXTENSION,
                caller,
                lot_id,
                extension_id,
                associate,
                |tx, row, ext_id, ext| {
                    let lot: ParkingLot = resource::from_map(row.doc.clone())?;
                    check_lot_slots(tx, row.tenant_uuid, row.id, &lot, ext_id, &ext.exten, &ext.context)
                },
            )
            .await?;
        if let Some(l) = linked {
            let (name, rk) = if associate {
                ("parking_lot_extension_associated", "updated")
            } else {
                ("parking_lot_extension_dissociated", "deleted")
            };
            self.publish_tenant(
                name,
                format!("config.parkinglots.extensions.{rk}"),
                json!({ "parking_lot_id": l.owner_id, "extension_id": l.extension_id }),
                l.tenant,
            );
            self.reloader.request(RELOADS);
        }
        Ok(())
    }
}

/// CRUD plus the extension association.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let extension = resource::association_route(
        svc.clone(),
        "parkinglots",
        &["extensions"],
        |svc: Arc<ConfdService>, caller: Caller, id: String, other: String, associate: bool, _body| async move {
            svc.parking_lot_extension(&caller, &id, &other, associate).await
        },
    );
    resource::routes::<ParkingLot>(svc).or(extension).unify().boxed()
}
