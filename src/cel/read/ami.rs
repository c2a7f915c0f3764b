//! cel_manager's AMI event: `Event: CEL` with `EventName`, `CallerIDnum`, `Channel`, `Extra` …
//!
//! Two things differ from the files:
//! - with `show_user_defined = yes` a user event is `EventName: USER_DEFINED` plus
//!   `UserDefType: <name>` (without it, the name is the `EventName`); both read as
//!   [`EventType::User`](crate::cel::EventType::User);
//! - `EventTime` is the local date to the second (`%Y-%m-%d %T`). With `timestampevents = yes`
//!   every event also has `Timestamp: <epoch.usec>`, taken when cel_manager sent it (within a
//!   millisecond after the CEL), in UTC: we use it, so that rows of one call keep their order
//!   and sub-second durations. `EventTime` (taken as UTC) is the fallback.

use std::sync::Arc;
use std::sync::OnceLock;

use super::{Field, RawRow};
use crate::ami::AmiMessage;
use crate::cel::error::{CelError, Problem};
use crate::cel::eventtime::EventTime;
use crate::cel::record::Cel;

/// The AMI header of each field.
const HEADERS: [(&str, Field); 21] = [
    ("EventName", Field::EventType),
    ("UserDefType", Field::UserDefType),
    ("CallerIDname", Field::CidName),
    ("CallerIDnum", Field::CidNum),
    ("CallerIDani", Field::CidAni),
    ("CallerIDrdnis", Field::CidRdnis),
    ("CallerIDdnid", Field::CidDnid),
    ("Exten", Field::Exten),
    ("Context", Field::Context),
    ("Channel", Field::ChanName),
    ("Application", Field::AppName),
    ("AppData", Field::AppData),
    ("AMAFlags", Field::AmaFlags),
    ("AccountCode", Field::AccountCode),
    ("PeerAccount", Field::PeerAccount),
    ("UniqueID", Field::UniqueId),
    ("LinkedID", Field::LinkedId),
    ("Userfield", Field::Userfield),
    ("Peer", Field::Peer),
    ("Extra", Field::Extra),
    ("TenantID", Field::TenantId),
];

/// True for the messages [`from_ami`] reads.
pub fn is_cel_event(msg: &AmiMessage) -> bool {
    msg.event().is_some_and(|e| e.eq_ignore_ascii_case("CEL"))
}

fn source() -> Arc<str> {
    static AMI: OnceLock<Arc<str>> = OnceLock::new();
    AMI.get_or_init(|| Arc::from("AMI")).clone()
}

/// One `Event: CEL` message as a row. Errors name the source `AMI` (a live event has no line).
pub fn from_ami(msg: &AmiMessage) -> Result<Cel, CelError> {
    let fail = |p| CelError::new(&source(), None, p);
    if !is_cel_event(msg) {
        return Err(fail(Problem::NotCel(format!(
            "an AMI `{}` event, not `CEL`",
            msg.event().unwrap_or("(none)")
        ))));
    }
    let mut raw = RawRow::default();
    for (header, field) in HEADERS {
        if let Some(value) = msg.get(header) {
            raw.set(field, value);
        }
    }
    let event_time = msg.get("EventTime").filter(|t| !t.trim().is_empty());
    let stamp = msg.get("Timestamp").and_then(|t| EventTime::parse(t).ok());
    match (event_time, stamp) {
        // A sub-second EventTime (another cel.conf dateformat) is the CEL's own time.
        (Some(t), _) if t.contains('.') => raw.set(Field::EventTime, t),
        (_, Some(stamp)) => raw.set_time(stamp),
        (Some(t), None) => raw.set(Field::EventTime, t),
        (None, None) => return Err(fail(Problem::Missing("EventTime or Timestamp"))),
    }
    raw.into_cel().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::record::EventType;

    fn user_event(with_userdeftype: bool) -> AmiMessage {
        let mut msg = AmiMessage::new()
            .with("Event", "CEL")
            .with("Privilege", "call,all")
            .with("Timestamp", "1795874894.647944")
            .with(
                "EventName",
                if with_userdeftype {
                    "USER_DEFINED"
                } else {
                    "ACCENT_INCALL"
                },
            )
            .with("CallerIDnum", "0612345678")
            .with("CallerIDname", "PSTN Caller")
            .with("Channel", "PJSIP/pstn-trunk-00000008")
            .with("Application", "CELGenUserEvent")
            .with("AppData", "ACCENT_INCALL,3d0f3a2c")
            .with("EventTime", "2026-11-28 14:08:14")
            .with("AMAFlags", "DOCUMENTATION")
            .with("UniqueID", "1795874894.8")
            .with("LinkedID", "1795874894.8");
        if with_userdeftype {
            msg.push("UserDefType", "ACCENT_INCALL");
        }
        msg.push("Extra", r#"{"extra":"3d0f3a2c"}"#);
        msg
    }

    #[test]
    fn user_events_read_the_same_with_or_without_show_user_defined() {
        let a = from_ami(&user_event(true)).unwrap();
        let b = from_ami(&user_event(false)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.eventtype, EventType::User("ACCENT_INCALL".into()));
        assert_eq!(a.userdeftype, "ACCENT_INCALL");
        assert_eq!(a.eventtime.micros(), 1_795_874_894_647_944);
        assert_eq!(a.cid_num, "0612345678");
        assert_eq!(a.channame, "PJSIP/pstn-trunk-00000008");
        assert_eq!(a.amaflags, 3);
        assert_eq!(a.extra().user_text(), Some("3d0f3a2c"));
    }

    #[test]
    fn times_without_timestamp_and_bad_messages() {
        let msg = AmiMessage::new()
            .with("Event", "CEL")
            .with("EventName", "CHAN_START")
            .with("EventTime", "2026-11-28 14:08:14");
        assert_eq!(from_ami(&msg).unwrap().eventtime.micros(), 1_795_874_894_000_000);
        let precise = msg
            .clone()
            .with("EventTime", "ignored")
            .with("Timestamp", "1795874894.5");
        // The first EventTime header wins in lookups; the Timestamp is more precise than it.
        assert_eq!(from_ami(&precise).unwrap().eventtime.micros(), 1_795_874_894_500_000);
        let none = AmiMessage::new().with("Event", "CEL").with("EventName", "CHAN_START");
        assert_eq!(
            from_ami(&none).unwrap_err().to_string(),
            "AMI: no EventTime or Timestamp"
        );
        let bad = AmiMessage::new()
            .with("Event", "CEL")
            .with("EventName", "X")
            .with("EventTime", "soon");
        assert!(from_ami(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("AMI: bad event time `soon`"));
        let nameless = AmiMessage::new()
            .with("Event", "CEL")
            .with("EventTime", "2026-11-28 14:08:14");
        assert_eq!(from_ami(&nameless).unwrap_err().to_string(), "AMI: no eventtype");
        let other = AmiMessage::new().with("Event", "Newchannel");
        assert!(from_ami(&other).unwrap_err().is_fatal());
    }
}
