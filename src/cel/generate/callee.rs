//! The rows of every other channel of the call (section 3.5): who was reached, who answered.

use super::draft::{decode_name, is_holding_bridge, non_empty, Draft};
use super::lines::{identity, is_local};
use crate::calllog::cdr::model::{CallDirection, Role};
use crate::cel::record::{Cel, EventType};

/// Applies one row of a callee channel.
pub(crate) fn interpret(d: &mut Draft, cel: &Cel) {
    if d.recording_event(cel) {
        return;
    }
    match &cel.eventtype {
        EventType::ChanStart => chan_start(d, cel),
        EventType::AppStart => d.app_start_voicemail(cel),
        EventType::BridgeEnter => bridge_enter(d, cel),
        EventType::Other(name) if name == "BRIDGE_START" => bridge_enter(d, cel),
        EventType::ChanEnd => d.close_recordings(cel.eventtime.micros()),
        _ => {}
    }
}

/// The contexts where a callee's Local channel waits for a mobile application to register
/// (after a push notification), in every spelling.
const WAIT_FOR_REGISTRATION: [&str; 3] = [
    "wazo_wait_for_registration",
    "accent_wait_for_registration",
    "xivo_wait_for_registration",
];

/// The endpoint a mobile push waits for: `Local/<endpoint>@wazo_wait_for_registration-<seq>;2`
/// → `<endpoint>` (lowercased, as line identities are).
pub(crate) fn waits_for_registration(channame: &str) -> Option<String> {
    if !is_local(channame) {
        return None;
    }
    let rest = channame.get(6..)?.strip_suffix(";2")?;
    let (endpoint, context) = rest.split_once('@')?;
    let context = context.rsplit_once('-').map_or(context, |(c, _)| c);
    let waits = WAIT_FOR_REGISTRATION.iter().any(|w| w.eq_ignore_ascii_case(context));
    (waits && !endpoint.is_empty()).then(|| endpoint.to_lowercase())
}

/// A PJSIP channel of an endpoint a mobile push was waiting for: it is the real callee. Takes
/// the endpoint off the waiting list (one channel per push).
fn pairs_with_mobile_push(d: &mut Draft, cel: &Cel) -> bool {
    let Some(line) = identity(&cel.channame) else {
        return false;
    };
    let Some(endpoint) = line.strip_prefix("pjsip/") else {
        return false;
    };
    match d.pending_mobile.iter().position(|p| p == endpoint) {
        Some(i) => {
            d.pending_mobile.remove(i);
            true
        }
        None => false,
    }
}

/// CHAN_START: a `destination` participant; its line is the destination line, its caller id
/// the destination (an outbound call's callee shows the caller's own id: no name then). The
/// dialplan's CALL_LOG_DESTINATION, when there was one, is not overridden.
///
/// Mobile push (section 3.5): the Local channel waiting for the mobile application to register
/// says nothing about the callee; the endpoint's PJSIP channel started later is the callee.
/// Its caller id is the destination for good (the rows of the waiting channels and the mobile
/// leg's later rows carry other parties' ids), and its number and context are the destination's
/// internal extension until the line's user says otherwise.
pub(crate) fn chan_start(d: &mut Draft, cel: &Cel) {
    d.add_channel(cel, Role::Destination);
    if let Some(line) = identity(&cel.channame) {
        d.log.destination_line_identity = Some(line);
    }
    if d.log.call_direction == CallDirection::Outbound {
        d.log.destination_name = None;
        return;
    }
    if let Some(endpoint) = waits_for_registration(&cel.channame) {
        d.pending_mobile.push(endpoint);
        return;
    }
    if pairs_with_mobile_push(d, cel) {
        d.callee_bridged = true;
        d.log.destination_internal_exten = d.shown(&cel.cid_num);
        d.log.destination_internal_context = non_empty(&cel.context);
    }
    if d.authoritative_destination {
        return;
    }
    if let Some(name) = non_empty(&cel.cid_name) {
        d.log.destination_name = Some(decode_name(&name));
    }
    if let Some(num) = d.shown(&cel.cid_num) {
        d.log.destination_exten = Some(num);
    }
}

/// BRIDGE_ENTER (not a holding bridge): this callee answered, and so did the channels already
/// in the bridge (`peer`, comma-separated when there are several, as in a conference); the
/// first callee to do so refines the destination from its caller id.
pub(crate) fn bridge_enter(d: &mut Draft, cel: &Cel) {
    if is_holding_bridge(cel) {
        return;
    }
    if let Some(channel) = d.channel_mut(&cel.uniqueid) {
        channel.answered = true;
    }
    for peer in cel.peer.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        for channel in d.channels.iter_mut().filter(|c| c.channame == peer) {
            channel.answered = true;
        }
    }
    if d.callee_bridged {
        return;
    }
    d.callee_bridged = true;
    if d.authoritative_destination || d.log.call_direction == CallDirection::Outbound {
        return;
    }
    if let Some(name) = non_empty(&cel.cid_name) {
        d.log.destination_name = Some(decode_name(&name));
    }
    if let Some(num) = d.shown(&cel.cid_num) {
        d.log.destination_exten = Some(num);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_push_waiting_channels() {
        let w = waits_for_registration;
        assert_eq!(
            w("Local/ycetqvtr@wazo_wait_for_registration-00000005;2").as_deref(),
            Some("ycetqvtr")
        );
        assert_eq!(
            w("Local/Bob-Mobile@accent_wait_for_registration-0000000a;2").as_deref(),
            Some("bob-mobile")
        );
        assert_eq!(w("Local/ycetqvtr@wazo_wait_for_registration-00000005;1"), None);
        assert_eq!(w("Local/2002@from-internal-00000005;2"), None);
        assert_eq!(w("PJSIP/ycetqvtr-00000019"), None);
        assert_eq!(w("Local/@wazo_wait_for_registration-1;2"), None);
        assert_eq!(w("Local;2"), None);
    }
}
