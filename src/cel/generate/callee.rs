//! The rows of every other channel of the call (section 3.5): who was reached, who answered.

use super::draft::{decode_name, is_holding_bridge, non_empty, Draft};
use super::lines::identity;
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

/// CHAN_START: a `destination` participant; its line is the destination line, its caller id
/// the destination (an outbound call's callee shows the caller's own id: no name then). The
/// dialplan's CALL_LOG_DESTINATION, when there was one, is not overridden.
pub(crate) fn chan_start(d: &mut Draft, cel: &Cel) {
    d.add_channel(cel, Role::Destination);
    if let Some(line) = identity(&cel.channame) {
        d.log.destination_line_identity = Some(line);
    }
    if d.log.call_direction == CallDirection::Outbound {
        d.log.destination_name = None;
        return;
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
