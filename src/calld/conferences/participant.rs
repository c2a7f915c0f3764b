//! A conference participant as upstream shows it, read from Asterisk's AMI
//! messages: `ConfbridgeJoin` (and the other per-channel ConfBridge events)
//! and the `ConfbridgeList` items, which carry the same channel snapshot.

use serde::Serialize;
use uuid::Uuid;

use crate::ami::frame::AmiMessage;

/// The ConfBridge conference name accentd gives a confd conference (the
/// dialplan joins `ConfBridge(accent-conference-<id>,...)`).
pub fn bridge_name(conference_id: i64) -> String {
    format!("accent-conference-{conference_id}")
}

/// The confd conference behind a ConfBridge name; `None` for any other
/// conference (ad hoc, meetings, hand-written dialplan).
pub fn conference_id(bridge: &str) -> Option<i64> {
    let id = bridge.strip_prefix("accent-conference-")?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Participant {
    /// The channel's unique id, also its `call_id`.
    pub id: String,
    pub caller_id_name: String,
    pub caller_id_number: String,
    pub muted: bool,
    /// Seconds the channel has been up (`AnsweredTime`); 0 in events, as upstream.
    pub join_time: u64,
    pub admin: bool,
    pub language: String,
    pub call_id: String,
    pub user_uuid: Option<Uuid>,
    /// The channel name, for the AMI actions aimed at this participant.
    #[serde(skip)]
    pub channel: String,
}

fn yes(msg: &AmiMessage, header: &str) -> bool {
    msg.get(header).is_some_and(|v| v.eq_ignore_ascii_case("yes"))
}

impl Participant {
    /// `None` without the channel's `Uniqueid` and `Channel`.
    pub fn from_ami(msg: &AmiMessage) -> Option<Participant> {
        let id = msg.get("Uniqueid").filter(|v| !v.is_empty())?;
        let channel = msg.get("Channel").filter(|v| !v.is_empty())?;
        let text = |h: &str| msg.get(h).unwrap_or_default().to_owned();
        Some(Participant {
            id: id.to_owned(),
            caller_id_name: text("CallerIDName"),
            caller_id_number: text("CallerIDNum"),
            muted: yes(msg, "Muted"),
            join_time: msg
                .get("AnsweredTime")
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(0),
            admin: yes(msg, "Admin"),
            language: text("Language"),
            call_id: id.to_owned(),
            user_uuid: None,
            channel: channel.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(bridge_name(7), "accent-conference-7");
        assert_eq!(conference_id("accent-conference-7"), Some(7));
        for other in [
            "100",
            "accent-conference-",
            "accent-conference-1a",
            "accent-conference--1",
            "x-accent-conference-1",
        ] {
            assert_eq!(conference_id(other), None, "{other}");
        }
    }

    #[test]
    fn from_the_recorded_join() {
        // Headers as scenario 10 recorded them.
        let msg = AmiMessage::new()
            .with("Event", "ConfbridgeJoin")
            .with("Conference", "100")
            .with("Channel", "Local/1001@caller-00000016;1")
            .with("CallerIDNum", "1001")
            .with("CallerIDName", "Alice")
            .with("Language", "en")
            .with("Uniqueid", "1795870898.44")
            .with("Admin", "No")
            .with("Muted", "Yes");
        let p = Participant::from_ami(&msg).expect("participant");
        assert_eq!(
            (
                p.id.as_str(),
                p.call_id.as_str(),
                p.caller_id_name.as_str(),
                p.caller_id_number.as_str()
            ),
            ("1795870898.44", "1795870898.44", "Alice", "1001")
        );
        assert!(p.muted && !p.admin);
        assert_eq!(
            (p.language.as_str(), p.join_time, p.channel.as_str()),
            ("en", 0, "Local/1001@caller-00000016;1")
        );
        let no_id = AmiMessage::new().with("Event", "ConfbridgeJoin").with("Channel", "x");
        assert!(Participant::from_ami(&no_id).is_none());
    }
}
