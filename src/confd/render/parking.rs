//! res_parking.conf: one `[parkinglot-<id>]` per parking lot that has its
//! extension (a lot without one has no `parkext`/`context` Asterisk could
//! register its slots in, so it is left out until it gets one).

use rusqlite::Connection;
use serde::Serialize;

use super::model::{conf_value, decode, pairs, ModelError};
use crate::confd::extensions::{self, Extension};
use crate::confd::parking_lots::{self, ParkingLot};

/// What the template writes for one lot.
#[derive(Debug, Clone, Serialize)]
pub struct ParkingLotSection {
    pub name: String,
    pub parkext: String,
    pub context: String,
    pub parkpos: String,
    pub parkingtime: i64,
    pub parkedmusicclass: String,
}

/// Every lot with an enabled extension, by id: two queries.
pub fn load(c: &Connection) -> Result<Vec<ParkingLotSection>, ModelError> {
    let exts = pairs(
        c,
        &format!(
            "SELECT pe.parking_lot_id, e.doc FROM confd_parking_lot_extension pe JOIN {} e ON e.id = pe.extension_id",
            extensions::TABLE
        ),
    )?;
    let mut by_lot = std::collections::BTreeMap::new();
    for (lot_id, doc) in exts {
        let x: Extension = decode("extension", lot_id, &doc)?;
        if x.is_enabled() {
            by_lot.insert(lot_id, x);
        }
    }
    let mut out = Vec::new();
    for (id, doc) in pairs(c, &format!("SELECT id, doc FROM {} ORDER BY id", parking_lots::TABLE))? {
        let Some(x) = by_lot.remove(&id) else { continue };
        let lot: ParkingLot = decode("parking lot", id, &doc)?;
        out.push(ParkingLotSection {
            name: parking_lots::asterisk_name(id),
            parkext: x.exten,
            context: x.context,
            parkpos: format!("{}-{}", lot.slots_start, lot.slots_end),
            // res_parking reads 0 as "never time out".
            parkingtime: lot.timeout.unwrap_or(0),
            parkedmusicclass: conf_value(lot.music_on_hold.as_deref().unwrap_or("default")),
        });
    }
    Ok(out)
}
