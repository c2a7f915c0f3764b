//! One CEL row, the same whichever source it was read from.

use std::fmt;

use super::eventtime::EventTime;
use super::extra::Extra;

/// The type of a CEL row.
///
/// User events (`CELGenUserEvent`) reach us in two shapes: cel_manager with
/// `show_user_defined = yes` sends `EventName: USER_DEFINED` plus `UserDefType: ACCENT_INCALL`,
/// while cel_custom, the SQL backends and PostgreSQL dumps write the name itself as the event
/// type (`ACCENT_INCALL`, `XIVO_INCALL`, `WAZO_CALL_LOG_DESTINATION`). Both become
/// [`EventType::User`] so that nothing downstream cares where a row came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    ChanStart,
    ChanEnd,
    Answer,
    Hangup,
    AppStart,
    AppEnd,
    ParkStart,
    ParkEnd,
    BridgeEnter,
    BridgeExit,
    BlindTransfer,
    AttendedTransfer,
    Pickup,
    Forward,
    LinkedidEnd,
    LocalOptimize,
    LocalOptimizeBegin,
    StreamBegin,
    StreamEnd,
    Dtmf,
    /// A user event, by its name (`ACCENT_INCALL`, `XIVO_USER_FWD`, `WAZO_CALL_LOG_DESTINATION`…).
    User(String),
    /// A name we do not know (a newer Asterisk, a custom backend): kept so it can be stored and
    /// shown, and ignored by generation.
    Other(String),
}

/// The system types, with the name Asterisk writes.
const KNOWN: [(&str, EventType); 20] = [
    ("CHAN_START", EventType::ChanStart),
    ("CHAN_END", EventType::ChanEnd),
    ("ANSWER", EventType::Answer),
    ("HANGUP", EventType::Hangup),
    ("APP_START", EventType::AppStart),
    ("APP_END", EventType::AppEnd),
    ("PARK_START", EventType::ParkStart),
    ("PARK_END", EventType::ParkEnd),
    ("BRIDGE_ENTER", EventType::BridgeEnter),
    ("BRIDGE_EXIT", EventType::BridgeExit),
    ("BLINDTRANSFER", EventType::BlindTransfer),
    ("ATTENDEDTRANSFER", EventType::AttendedTransfer),
    ("PICKUP", EventType::Pickup),
    ("FORWARD", EventType::Forward),
    ("LINKEDID_END", EventType::LinkedidEnd),
    ("LOCAL_OPTIMIZE", EventType::LocalOptimize),
    ("LOCAL_OPTIMIZE_BEGIN", EventType::LocalOptimizeBegin),
    ("STREAM_BEGIN", EventType::StreamBegin),
    ("STREAM_END", EventType::StreamEnd),
    ("DTMF", EventType::Dtmf),
];

/// Prefixes of the dialplan's user events (Accent, and upstream's XiVO and Wazo spellings):
/// recognised as user events even when a source did not fill `userdeftype`.
const USER_PREFIXES: [&str; 3] = ["ACCENT_", "XIVO_", "WAZO_"];

/// The generic type name of a user event (cel_manager's `EventName`, cel_odbc's `eventenum`).
pub const USER_DEFINED: &str = "USER_DEFINED";

impl EventType {
    /// Reads a type from the event name and the user-defined type of the same row.
    ///
    /// - a system name is that type;
    /// - `USER_DEFINED` is the user event named by `userdeftype`;
    /// - another name is a user event when `userdeftype` repeats it (cel_custom writes both) or
    ///   when it has a dialplan prefix (`ACCENT_`, `XIVO_`, `WAZO_`), otherwise [`Other`](Self::Other).
    pub fn parse(name: &str, userdeftype: &str) -> EventType {
        let name = name.trim();
        let userdeftype = userdeftype.trim();
        if let Some((_, known)) = KNOWN.iter().find(|(n, _)| *n == name) {
            return known.clone();
        }
        if name == USER_DEFINED {
            return if userdeftype.is_empty() {
                EventType::Other(USER_DEFINED.to_owned())
            } else {
                EventType::User(userdeftype.to_owned())
            };
        }
        if (!name.is_empty() && name == userdeftype) || USER_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return EventType::User(name.to_owned());
        }
        EventType::Other(name.to_owned())
    }

    /// The name as written in CEL files and in our `cel` table: the user event's own name for
    /// user events, so that [`parse`](Self::parse) reads it back with its `userdeftype`.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::User(name) | EventType::Other(name) => name,
            known => KNOWN
                .iter()
                .find(|(_, t)| t == known)
                .map(|(n, _)| *n)
                .unwrap_or_default(),
        }
    }

    /// The user event's name, if this is one.
    pub fn user_event(&self) -> Option<&str> {
        match self {
            EventType::User(name) => Some(name),
            _ => None,
        }
    }

    /// True for the user event `suffix` under any of its spellings: `is_user_event("INCALL")`
    /// matches `ACCENT_INCALL`, `XIVO_INCALL` and `WAZO_INCALL`.
    pub fn is_user_event(&self, suffix: &str) -> bool {
        self.user_event()
            .is_some_and(|name| USER_PREFIXES.iter().any(|p| name.strip_prefix(p) == Some(suffix)))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// AMA flags as Asterisk numbers them (`AST_AMA_*`); cel_custom writes the number, cel_manager
/// the name.
pub fn parse_amaflags(text: &str) -> i64 {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return n;
    }
    match text.to_ascii_uppercase().as_str() {
        "OMIT" => 1,
        "BILLING" => 2,
        "DOCUMENTATION" | "DEFAULT" => 3,
        // Not worth refusing a row over: generation never reads it.
        _ => 0,
    }
}

/// One CEL row. Field names follow the `cel` table of upstream and of cel_custom's headers.
/// Text is kept as written (percent-encoded names included: decoding belongs to generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cel {
    pub eventtype: EventType,
    pub eventtime: EventTime,
    /// The user event's name for user events; other rows may carry text too (DTMF: `Received`).
    pub userdeftype: String,
    pub cid_name: String,
    pub cid_num: String,
    pub cid_ani: String,
    pub cid_rdnis: String,
    pub cid_dnid: String,
    pub exten: String,
    pub context: String,
    pub channame: String,
    pub appname: String,
    pub appdata: String,
    pub amaflags: i64,
    pub accountcode: String,
    pub peeraccount: String,
    pub uniqueid: String,
    pub linkedid: String,
    pub userfield: String,
    pub peer: String,
    /// Raw text, usually JSON; see [`Cel::extra`].
    pub extra: String,
    pub tenantid: String,
}

impl Cel {
    /// An empty row of the given type and time (the other fields are set by the readers).
    pub fn new(eventtype: EventType, eventtime: EventTime) -> Cel {
        Cel {
            eventtype,
            eventtime,
            userdeftype: String::new(),
            cid_name: String::new(),
            cid_num: String::new(),
            cid_ani: String::new(),
            cid_rdnis: String::new(),
            cid_dnid: String::new(),
            exten: String::new(),
            context: String::new(),
            channame: String::new(),
            appname: String::new(),
            appdata: String::new(),
            amaflags: 0,
            accountcode: String::new(),
            peeraccount: String::new(),
            uniqueid: String::new(),
            linkedid: String::new(),
            userfield: String::new(),
            peer: String::new(),
            extra: String::new(),
            tenantid: String::new(),
        }
    }

    /// The `extra` column, parsed leniently (never fails).
    pub fn extra(&self) -> Extra {
        Extra::parse(&self.extra)
    }

    /// A user event's `userdeftype` is its name, whatever the source wrote there.
    pub(crate) fn normalise(mut self) -> Cel {
        if let EventType::User(name) = &self.eventtype {
            if self.userdeftype != *name {
                self.userdeftype = name.clone();
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_round_trips() {
        for (name, t) in KNOWN.iter() {
            assert_eq!(EventType::parse(name, ""), *t);
            assert_eq!(t.as_str(), *name);
        }
    }

    #[test]
    fn user_events_in_both_shapes() {
        let ami = EventType::parse("USER_DEFINED", "ACCENT_INCALL");
        let csv = EventType::parse("ACCENT_INCALL", "ACCENT_INCALL");
        assert_eq!(ami, EventType::User("ACCENT_INCALL".into()));
        assert_eq!(ami, csv);
        assert_eq!(
            EventType::parse("XIVO_INCALL", ""),
            EventType::User("XIVO_INCALL".into())
        );
        assert_eq!(
            EventType::parse("MY_EVENT", "MY_EVENT"),
            EventType::User("MY_EVENT".into())
        );
        assert!(ami.is_user_event("INCALL"));
        assert!(EventType::parse("WAZO_INCALL", "").is_user_event("INCALL"));
        assert!(!EventType::parse("WAZO_INCALLX", "").is_user_event("INCALL"));
        assert_eq!(ami.as_str(), "ACCENT_INCALL");
    }

    #[test]
    fn unknown_names_are_kept() {
        assert_eq!(
            EventType::parse("MIXMONITOR_START", ""),
            EventType::Other("MIXMONITOR_START".into())
        );
        assert_eq!(
            EventType::parse("USER_DEFINED", ""),
            EventType::Other("USER_DEFINED".into())
        );
        assert_eq!(EventType::parse("DTMF", "Received"), EventType::Dtmf);
        assert_eq!(
            EventType::parse("chan_start", ""),
            EventType::Other("chan_start".into())
        );
    }

    #[test]
    fn amaflags_by_number_or_name() {
        assert_eq!(parse_amaflags("3"), 3);
        assert_eq!(parse_amaflags("DOCUMENTATION"), 3);
        assert_eq!(parse_amaflags("billing"), 2);
        assert_eq!(parse_amaflags("OMIT"), 1);
        assert_eq!(parse_amaflags(""), 0);
        assert_eq!(parse_amaflags("what"), 0);
    }
}
