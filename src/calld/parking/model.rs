//! What res_parking tells about a parked call (AMI `ParkedCall` list items and the
//! `ParkedCall`/`UnParkedCall`/`ParkedCallGiveUp`/`ParkedCallTimeOut` events: the parkee's
//! channel snapshot prefixed `Parkee`, `Parkinglot`, `ParkingSpace`, `ParkingTimeout`
//! (seconds left), `ParkingDuration` (seconds parked), `ParkerDialString`, and for the
//! events that end a parking the `Parker`/`Retriever` snapshots), and upstream's objects.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::ami::frame::AmiMessage;
use crate::confd::parking_lots::ParkingLot;

/// A caller id (`<prefix>CallerIDName`, `<prefix>CallerIDNum`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub number: String,
}

impl Party {
    /// The caller id of the `<prefix>` channel snapshot, if the message has one.
    pub fn of(m: &AmiMessage, prefix: &str) -> Option<Party> {
        let name = m.get(&format!("{prefix}CallerIDName"));
        let number = m.get(&format!("{prefix}CallerIDNum"));
        if name.is_none() && number.is_none() {
            return None;
        }
        // Asterisk writes `<unknown>` for an empty caller id.
        let clean = |v: Option<&str>| v.filter(|v| *v != "<unknown>").unwrap_or_default().to_string();
        Some(Party {
            name: clean(name),
            number: clean(number),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedCall {
    pub call_id: String,
    pub conversation_id: String,
    pub channel: String,
    pub caller: Party,
    pub parker: Party,
    pub parker_dial_string: String,
    /// The Asterisk lot name (`parkinglot-<id>`).
    pub lot: String,
    pub slot: String,
    pub parked_at: OffsetDateTime,
    pub timeout_at: Option<OffsetDateTime>,
}

fn seconds(m: &AmiMessage, key: &str) -> i64 {
    m.get(key)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0)
        .max(0)
}

impl ParkedCall {
    /// The parked call a message describes, `now` being when it was received; `None` when
    /// the message misses the parkee or the lot.
    pub fn from_ami(m: &AmiMessage, now: OffsetDateTime) -> Option<ParkedCall> {
        let call_id = m.get("ParkeeUniqueid").filter(|v| !v.is_empty())?.to_string();
        let lot = m.get("Parkinglot").filter(|v| !v.is_empty())?.to_string();
        let left = seconds(m, "ParkingTimeout");
        Some(ParkedCall {
            conversation_id: m.get("ParkeeLinkedid").unwrap_or(&call_id).to_string(),
            call_id,
            channel: m.get("ParkeeChannel").unwrap_or_default().to_string(),
            caller: Party::of(m, "Parkee").unwrap_or_default(),
            parker: Party::of(m, "Parker").unwrap_or_default(),
            parker_dial_string: m.get("ParkerDialString").unwrap_or_default().to_string(),
            lot,
            slot: m.get("ParkingSpace").unwrap_or_default().to_string(),
            parked_at: now - Duration::seconds(seconds(m, "ParkingDuration")),
            // res_parking reports 0 seconds left for a lot that never times out.
            timeout_at: (left > 0).then(|| now + Duration::seconds(left)),
        })
    }

    /// upstream's parked call (`calls` items, event payloads with `parking_id`).
    pub fn to_json(&self) -> Value {
        json!({
            "call_id": self.call_id,
            "conversation_id": self.conversation_id,
            "caller_id_name": self.caller.name,
            "caller_id_num": self.caller.number,
            "parker_caller_id_name": self.parker.name,
            "parker_caller_id_num": self.parker.number,
            "slot": self.slot,
            "parked_at": iso(Some(self.parked_at)),
            "timeout_at": iso(self.timeout_at),
        })
    }
}

pub fn iso(t: Option<OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&Rfc3339).ok())
}

/// upstream's parking lot object with its parked calls.
pub fn lot_json(id: i64, lot: &ParkingLot, calls: &[ParkedCall]) -> Value {
    let total = lot
        .slots()
        .map(|(start, end)| i64::try_from(end - start + 1).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let used = i64::try_from(calls.len()).unwrap_or(i64::MAX);
    json!({
        "id": id,
        "name": lot.name,
        "slots_start": lot.slots_start,
        "slots_end": lot.slots_end,
        "slots_total": total,
        "slots_remaining": (total - used).max(0),
        "default_timeout": lot.timeout,
        "calls": calls.iter().map(ParkedCall::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_call_from_its_event() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_100).expect("time");
        let event = |timeout: &str| {
            AmiMessage::new()
                .with("Event", "ParkedCall")
                .with("ParkeeChannel", "PJSIP/2002-00000001")
                .with("ParkeeCallerIDNum", "2002")
                .with("ParkeeCallerIDName", "<unknown>")
                .with("ParkeeUniqueid", "1.2")
                .with("ParkeeLinkedid", "1.1")
                .with("ParkerDialString", "PJSIP/2001")
                .with("Parkinglot", "parkinglot-3")
                .with("ParkingSpace", "701")
                .with("ParkingTimeout", timeout)
                .with("ParkingDuration", "5")
        };
        let p = ParkedCall::from_ami(&event("40"), now).expect("parked call");
        assert_eq!(
            p.caller,
            Party {
                name: String::new(),
                number: "2002".into()
            }
        );
        assert_eq!(p.parked_at, now - Duration::seconds(5));
        assert_eq!(p.timeout_at, Some(now + Duration::seconds(40)));
        assert_eq!(p.to_json()["conversation_id"], "1.1");
        let never = ParkedCall::from_ami(&event("0"), now).expect("parked call");
        assert_eq!(never.timeout_at, None);
        assert!(ParkedCall::from_ami(&AmiMessage::new().with("Parkinglot", "x"), now).is_none());
        let lot: ParkingLot = serde_json::from_value(json!({"slots_start": "701", "slots_end": "710"})).expect("lot");
        let j = lot_json(3, &lot, &[p]);
        assert_eq!(
            (j["slots_total"].clone(), j["slots_remaining"].clone()),
            (json!(10), json!(9))
        );
    }
}
