//! AMI events -> writer operations.
//!
//! Every AMI event about a channel carries the same block of headers (`Channel`,
//! `ChannelState`, `ChannelStateDesc`, `CallerIDNum`, `CallerIDName`, `ConnectedLineNum`,
//! `ConnectedLineName`, `Language`, `AccountCode`, `Context`, `Exten`, `Priority`, `Uniqueid`,
//! `Linkedid`), possibly prefixed (`Dest…` for the dialed leg of `DialBegin`). The block is read
//! in one pass over the headers.

use super::model::Hint;
use super::state::{BridgeFacts, ChanFacts, Source, Stamp, Writer};
use crate::ami::AmiMessage;

/// The channel block of an event, borrowed.
#[derive(Debug, Default)]
pub(super) struct Block<'a> {
    channel: Option<&'a str>,
    state: Option<&'a str>,
    state_desc: Option<&'a str>,
    cid_num: Option<&'a str>,
    cid_name: Option<&'a str>,
    cl_num: Option<&'a str>,
    cl_name: Option<&'a str>,
    context: Option<&'a str>,
    exten: Option<&'a str>,
    priority: Option<&'a str>,
    uniqueid: Option<&'a str>,
    linkedid: Option<&'a str>,
}

/// Strips an ASCII-case-insensitive prefix.
fn strip_prefix_ci<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &key[prefix.len()..])
}

/// Reads the channel block whose header names start with `prefix` (`""` for the event's own
/// channel). The first occurrence of a header wins, as with [`AmiMessage::get`].
pub(super) fn block<'a>(msg: &'a AmiMessage, prefix: &str) -> Block<'a> {
    let mut b = Block::default();
    for (k, v) in msg.headers() {
        let key = if prefix.is_empty() {
            k
        } else {
            match strip_prefix_ci(k, prefix) {
                Some(rest) => rest,
                None => continue,
            }
        };
        let slot = match key.len() {
            7 if key.eq_ignore_ascii_case("Channel") => &mut b.channel,
            7 if key.eq_ignore_ascii_case("Context") => &mut b.context,
            5 if key.eq_ignore_ascii_case("Exten") => &mut b.exten,
            8 if key.eq_ignore_ascii_case("Priority") => &mut b.priority,
            8 if key.eq_ignore_ascii_case("Uniqueid") => &mut b.uniqueid,
            8 if key.eq_ignore_ascii_case("Linkedid") => &mut b.linkedid,
            11 if key.eq_ignore_ascii_case("CallerIDNum") => &mut b.cid_num,
            12 if key.eq_ignore_ascii_case("ChannelState") => &mut b.state,
            12 if key.eq_ignore_ascii_case("CallerIDName") => &mut b.cid_name,
            16 if key.eq_ignore_ascii_case("ChannelStateDesc") => &mut b.state_desc,
            16 if key.eq_ignore_ascii_case("ConnectedLineNum") => &mut b.cl_num,
            17 if key.eq_ignore_ascii_case("ConnectedLineName") => &mut b.cl_name,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }
    b
}

/// AMI writes an unknown caller id as `<unknown>`; ARI as `""`.
fn unknown(v: &str) -> &str {
    if v == "<unknown>" {
        ""
    } else {
        v
    }
}

/// `ast_state2str` of the numeric `ChannelState`, for an event without `ChannelStateDesc`.
fn state_name(num: &str) -> Option<&'static str> {
    Some(match num {
        "0" => "Down",
        "1" => "Rsrvd",
        "2" => "OffHook",
        "3" => "Dialing",
        "4" => "Ring",
        "5" => "Ringing",
        "6" => "Up",
        "7" => "Busy",
        "8" => "Dialing Offhook",
        "9" => "Pre-ring",
        "10" => "Unknown",
        _ => return None,
    })
}

/// The facts of a block: `None` without a `Uniqueid`, or without a channel state (an event
/// that merely names a channel, such as `OriginateResponse`, is not a channel snapshot).
pub(super) fn facts<'a>(b: &Block<'a>) -> Option<ChanFacts<'a>> {
    let id = b.uniqueid.filter(|u| !u.is_empty() && *u != "<null>")?;
    let state = b.state_desc.or_else(|| b.state.and_then(state_name))?;
    let pair = |name: Option<&'a str>, num: Option<&'a str>| Some((unknown(name?), unknown(num?)));
    let dialplan = match (b.context, b.exten, b.priority.and_then(|p| p.trim().parse().ok())) {
        (Some(c), Some(e), Some(p)) => Some((c, e, p)),
        _ => None,
    };
    Some(ChanFacts {
        id,
        name: b.channel,
        state: Some(state),
        caller: pair(b.cid_name, b.cid_num),
        connected: pair(b.cl_name, b.cl_num),
        dialplan,
        linkedid: b.linkedid,
        ..Default::default()
    })
}

/// `Timestamp: 1795874804.673819` (present with `timestampevents = yes`) in epoch ms.
fn timestamp_ms(msg: &AmiMessage) -> Option<i64> {
    let t = msg.get("Timestamp")?;
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: i64 = secs.trim().parse().ok()?;
    let mut ms = 0i64;
    let mut digits = 0;
    for c in frac.bytes().take(3) {
        if !c.is_ascii_digit() {
            return None;
        }
        ms = ms * 10 + i64::from(c - b'0');
        digits += 1;
    }
    for _ in digits..3 {
        ms *= 10;
    }
    secs.checked_mul(1000)?.checked_add(ms)
}

fn bridge_facts<'a>(msg: &'a AmiMessage, prefix: &str) -> Option<BridgeFacts<'a>> {
    let get = |name: &str| -> Option<&'a str> {
        msg.headers()
            .find(|(k, _)| strip_prefix_ci(k, prefix).is_some_and(|rest| rest.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    };
    let id = get("BridgeUniqueid").filter(|id| !id.is_empty())?;
    Some(BridgeFacts {
        id,
        technology: get("BridgeTechnology"),
        class: get("BridgeType"),
        creator: get("BridgeCreator").map(unknown),
        name: get("BridgeName").map(unknown),
        ..Default::default()
    })
}

/// A hint from an `ExtensionStatus` event.
pub(super) fn hint_of(msg: &AmiMessage) -> Option<Hint> {
    Some(Hint {
        exten: msg.get("Exten")?.to_owned(),
        context: msg.get("Context")?.to_owned(),
        hint: msg.get("Hint").unwrap_or("").to_owned(),
        status: msg.get("Status")?.trim().parse().ok()?,
        status_text: msg.get("StatusText").unwrap_or("").to_owned(),
    })
}

/// Applies the event's own channel block; returns its uniqueid when the channel exists after.
fn own_channel<'a>(w: &mut Writer, msg: &'a AmiMessage, stamp: Stamp, create: bool) -> Option<&'a str> {
    let b = block(msg, "");
    let f = facts(&b)?;
    w.channel(&f, stamp, create).then_some(f.id)
}

/// Applies one AMI message to the writer.
// See `ari::apply` for why the `if`s stay in the arms.
#[allow(clippy::collapsible_match)]
pub(super) fn apply(w: &mut Writer, msg: &AmiMessage) {
    let Some(event) = msg.event() else { return };
    // AMI is here: it will give every channel its linkedid.
    w.ami_linked = true;
    // The bulk of the stream says nothing about the live state: leave before any lookup.
    if matches!(
        event,
        "VarSet" | "CEL" | "Cdr" | "RTCPSent" | "RTCPReceived" | "DTMFBegin" | "SuccessfulAuth" | "ChallengeSent"
    ) {
        return;
    }
    let stamp = Stamp {
        ms: timestamp_ms(msg),
        src: Source::Ami,
    };
    w.begin(stamp.ms);
    match event {
        "Newchannel" => {
            let b = block(msg, "");
            if let Some(mut f) = facts(&b) {
                f.created_ms = stamp.ms;
                w.channel(&f, stamp, true);
            }
        }
        "Newexten" => {
            let b = block(msg, "");
            if let Some(mut f) = facts(&b) {
                if let Some(app) = msg.get("Application") {
                    f.app = Some((app, msg.get("AppData").unwrap_or("")));
                }
                w.channel(&f, stamp, false);
            }
        }
        "Rename" => {
            // The recordings have none; the docs list no fields. Asterisk writes the old name
            // as `Channel`, the new one as `Newname`, and the `Uniqueid`.
            if let (Some(id), Some(name)) = (msg.get("Uniqueid"), msg.get("Newname")) {
                let f = ChanFacts {
                    id,
                    name: Some(name),
                    ..Default::default()
                };
                w.channel(&f, stamp, false);
            }
        }
        "Hangup" => {
            if let Some(id) = msg.get("Uniqueid") {
                let cause = msg.get("Cause").and_then(|c| c.trim().parse().ok());
                w.destroy_channel(id, stamp, cause);
            }
        }
        "DialBegin" | "DialState" | "DialEnd" => {
            let caller = own_channel(w, msg, stamp, false);
            let dest = block(msg, "Dest");
            if let Some(f) = facts(&dest) {
                if w.channel(&f, stamp, false) {
                    w.dial(caller, f.id, msg.get("DialStatus"), stamp, false);
                }
            }
        }
        "BridgeCreate" => {
            if let Some(f) = bridge_facts(msg, "") {
                w.bridge(&f, stamp, true);
            }
        }
        "BridgeEnter" | "BridgeLeave" => {
            let Some(f) = bridge_facts(msg, "") else { return };
            if !w.bridge(&f, stamp, false) {
                return;
            }
            if let Some(id) = own_channel(w, msg, stamp, false) {
                if event == "BridgeEnter" {
                    w.enter(f.id, id, stamp);
                } else {
                    w.leave(f.id, id, stamp);
                }
            }
        }
        "BridgeDestroy" => {
            if let Some(id) = msg.get("BridgeUniqueid") {
                w.destroy_bridge(id, stamp);
            }
        }
        "BridgeMerge" => {
            let (Some(to), Some(from)) = (bridge_facts(msg, "To"), bridge_facts(msg, "From")) else {
                return;
            };
            if w.bridge(&to, stamp, false) {
                w.merge(from.id, to.id, stamp);
            }
        }
        "Hold" | "Unhold" => {
            if let Some(id) = own_channel(w, msg, stamp, false) {
                w.hold(id, event == "Hold", stamp);
            }
        }
        "MusicOnHoldStart" | "MusicOnHoldStop" => {
            if let Some(id) = own_channel(w, msg, stamp, false) {
                w.moh(id, event == "MusicOnHoldStart");
            }
        }
        "ConfbridgeJoin" | "ConfbridgeMute" | "ConfbridgeUnmute" | "ConfbridgeLeave" => {
            if let Some(id) = own_channel(w, msg, stamp, false) {
                let muted = match event {
                    "ConfbridgeJoin" => msg.get("Muted").map(|m| m.eq_ignore_ascii_case("Yes")),
                    "ConfbridgeMute" => Some(true),
                    "ConfbridgeUnmute" => Some(false),
                    _ => None,
                };
                w.mute(id, muted);
            }
        }
        "QueueCallerJoin" | "QueueCallerLeave" | "QueueCallerAbandon" => {
            if let Some(id) = own_channel(w, msg, stamp, false) {
                let queue = (event == "QueueCallerJoin").then(|| msg.get("Queue")).flatten();
                w.queue(id, queue);
            }
        }
        "DTMFEnd" => {
            if let Some(id) = own_channel(w, msg, stamp, false) {
                if msg.get("Direction").is_some_and(|d| d.eq_ignore_ascii_case("Received")) {
                    w.dtmf(id, msg.get("Digit").unwrap_or(""), Source::Ami);
                }
            }
        }
        "BlindTransfer" | "AttendedTransfer" => {
            if msg.get("Result").is_some_and(|r| r.eq_ignore_ascii_case("Success")) {
                let ids: Vec<&str> = [
                    "TransfererUniqueid",
                    "TransfereeUniqueid",
                    "OrigTransfererUniqueid",
                    "SecondTransfererUniqueid",
                    "TransferTargetUniqueid",
                ]
                .iter()
                .filter_map(|k| msg.get(k))
                .collect();
                w.transferred(&ids);
            }
        }
        "DeviceStateChange" => {
            // The items of a DeviceStateList carry the action's ActionID: they belong to a
            // resync snapshot, not to the live stream.
            if msg.action_id().is_none() {
                if let (Some(d), Some(s)) = (msg.get("Device"), msg.get("State")) {
                    w.device(d, s, stamp);
                }
            }
        }
        "ExtensionStatus" => {
            if msg.action_id().is_none() {
                if let Some(h) = hint_of(msg) {
                    w.hint(h);
                }
            }
        }
        // Any other event with a channel block (Newstate, NewCallerid, NewConnectedLine,
        // HangupRequest, …) refreshes that channel's facts. List items (CoreShowChannel,
        // Status) carry an ActionID and are left to resync.
        _ => {
            if msg.action_id().is_none() {
                own_channel(w, msg, stamp, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let m = AmiMessage::new()
            .with("Event", "X")
            .with("Timestamp", "1795874804.673819");
        assert_eq!(timestamp_ms(&m), Some(1_795_874_804_673));
        let m = AmiMessage::new().with("Event", "X").with("Timestamp", "12.5");
        assert_eq!(timestamp_ms(&m), Some(12_500));
        let m = AmiMessage::new().with("Event", "X").with("Timestamp", "12");
        assert_eq!(timestamp_ms(&m), Some(12_000));
        let m = AmiMessage::new().with("Event", "X").with("Timestamp", "x.5");
        assert_eq!(timestamp_ms(&m), None);
        let m = AmiMessage::new()
            .with("Event", "X")
            .with("Timestamp", "99999999999999999999.1");
        assert_eq!(timestamp_ms(&m), None);
    }

    #[test]
    fn blocks_with_and_without_prefix() {
        let m = AmiMessage::new()
            .with("Event", "DialBegin")
            .with("Channel", "PJSIP/2001-00000000")
            .with("ChannelStateDesc", "Ring")
            .with("CallerIDNum", "2001")
            .with("CallerIDName", "Alice")
            .with("ConnectedLineNum", "<unknown>")
            .with("ConnectedLineName", "<unknown>")
            .with("Context", "from-internal")
            .with("Exten", "2002")
            .with("Priority", "3")
            .with("Uniqueid", "1.0")
            .with("Linkedid", "1.0")
            .with("DestChannel", "PJSIP/2002-00000001")
            .with("DestChannelState", "0")
            .with("DestUniqueid", "1.1")
            .with("DestLinkedid", "1.0");
        let own = block(&m, "");
        let f = facts(&own).expect("own block");
        assert_eq!(f.id, "1.0");
        assert_eq!(f.state, Some("Ring"));
        assert_eq!(f.caller, Some(("Alice", "2001")));
        assert_eq!(f.connected, Some(("", "")));
        assert_eq!(f.dialplan, Some(("from-internal", "2002", 3)));
        let dest = block(&m, "Dest");
        let f = facts(&dest).expect("dest block");
        assert_eq!(
            (f.id, f.name, f.state),
            ("1.1", Some("PJSIP/2002-00000001"), Some("Down"))
        );
        assert_eq!(f.caller, None, "no Dest caller id in this message");
        // No state: not a snapshot.
        let m = AmiMessage::new()
            .with("Event", "OriginateResponse")
            .with("Channel", "x")
            .with("Uniqueid", "1.2");
        assert!(facts(&block(&m, "")).is_none());
    }
}
