//! ARI events -> writer operations.
//!
//! Every ARI event about a channel embeds a full `Channel` snapshot (name, state, caller,
//! connected, dialplan location), so each one refreshes those facts. ARI has no linkedid: the
//! writer infers it (see `Writer::dial` and `Writer::infer_bridge_linkedid`).

use serde_json::Value;

use super::state::{parse_ari_ms, BridgeFacts, ChanFacts, Source, Stamp, Writer};
use crate::ari::events::AriEvent;
use crate::ari::models::{Bridge, Channel};

/// The facts of a channel snapshot.
pub(super) fn facts(c: &Channel) -> ChanFacts<'_> {
    ChanFacts {
        id: &c.id,
        name: Some(&c.name),
        state: Some(c.state.as_str()),
        caller: Some((&c.caller.name, &c.caller.number)),
        connected: Some((&c.connected.name, &c.connected.number)),
        dialplan: Some((&c.dialplan.context, &c.dialplan.exten, c.dialplan.priority)),
        app: Some((&c.dialplan.app_name, &c.dialplan.app_data)),
        linkedid: None,
        created_text: Some(&c.creationtime),
        created_ms: None,
    }
}

/// The facts of a bridge snapshot.
pub(super) fn bridge_facts(b: &Bridge) -> BridgeFacts<'_> {
    BridgeFacts {
        id: &b.id,
        technology: Some(&b.technology),
        class: Some(&b.bridge_class),
        bridge_type: Some(b.bridge_type.as_str()),
        creator: Some(&b.creator),
        name: Some(&b.name),
        created_text: Some(&b.creationtime),
        created_ms: None,
    }
}

fn snapshot(w: &mut Writer, c: &Channel, stamp: Stamp) -> bool {
    w.channel(&facts(c), stamp, false)
}

/// Applies one ARI event to the writer.
// Clippy would fold the `if`s into match guards, which would hide the side effects (applying
// the snapshot) inside guards.
#[allow(clippy::collapsible_match)]
pub(super) fn apply(w: &mut Writer, event: &AriEvent) {
    let stamp = Stamp {
        ms: event.timestamp().and_then(parse_ari_ms),
        src: Source::Ari,
    };
    w.begin(stamp.ms);
    match event {
        AriEvent::ChannelCreated(e) => {
            w.channel(&facts(&e.channel), stamp, true);
        }
        AriEvent::ChannelDestroyed(e) => w.destroy_channel(&e.channel.id, stamp, Some(e.cause)),
        AriEvent::ChannelStateChange(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelDialplan(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelCallerId(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelConnectedLine(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelHangupRequest(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelVarset(e) => {
            if let Some(c) = &e.channel {
                snapshot(w, c, stamp);
            }
        }
        AriEvent::ChannelUserevent(e) => {
            if let Some(c) = &e.channel {
                snapshot(w, c, stamp);
            }
        }
        AriEvent::ChannelTalkingStarted(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelTalkingFinished(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelToneDetected(e) => {
            snapshot(w, &e.channel, stamp);
        }
        AriEvent::ChannelDtmfReceived(e) => {
            if snapshot(w, &e.channel, stamp) {
                w.dtmf(&e.channel.id, &e.digit, Source::Ari);
            }
        }
        AriEvent::ChannelHold(e) => {
            if snapshot(w, &e.channel, stamp) {
                w.hold(&e.channel.id, true, stamp);
            }
        }
        AriEvent::ChannelUnhold(e) => {
            if snapshot(w, &e.channel, stamp) {
                w.hold(&e.channel.id, false, stamp);
            }
        }
        AriEvent::StasisStart(e) => {
            if snapshot(w, &e.channel, stamp) {
                w.stasis(&e.channel.id, Some(&e.application));
            }
        }
        AriEvent::StasisEnd(e) => {
            if snapshot(w, &e.channel, stamp) {
                w.stasis(&e.channel.id, None);
            }
        }
        AriEvent::Dial(e) => {
            let caller = e
                .caller
                .as_ref()
                .filter(|c| snapshot(w, c, stamp))
                .map(|c| c.id.as_str());
            if snapshot(w, &e.peer, stamp) {
                w.dial(caller, &e.peer.id, Some(&e.dialstatus), stamp, true);
            }
        }
        AriEvent::BridgeCreated(e) => {
            w.bridge(&bridge_facts(&e.bridge), stamp, true);
        }
        AriEvent::BridgeDestroyed(e) => w.destroy_bridge(&e.bridge.id, stamp),
        AriEvent::ChannelEnteredBridge(e) => {
            if !w.bridge(&bridge_facts(&e.bridge), stamp, false) {
                return;
            }
            if let Some(c) = &e.channel {
                if snapshot(w, c, stamp) {
                    w.enter(&e.bridge.id, &c.id, stamp);
                    w.infer_bridge_linkedid(&e.bridge.id);
                }
            }
        }
        AriEvent::ChannelLeftBridge(e) => {
            if w.bridge(&bridge_facts(&e.bridge), stamp, false) && snapshot(w, &e.channel, stamp) {
                w.leave(&e.bridge.id, &e.channel.id, stamp);
            }
        }
        AriEvent::BridgeMerged(e) => {
            if w.bridge(&bridge_facts(&e.bridge), stamp, false) {
                w.merge(&e.bridge_from.id, &e.bridge.id, stamp);
            }
        }
        AriEvent::BridgeVideoSourceChanged(e) => {
            w.bridge(&bridge_facts(&e.bridge), stamp, false);
        }
        AriEvent::BridgeBlindTransfer(e) => {
            if e.result.eq_ignore_ascii_case("Success") {
                let mut ids = vec![e.channel.id.as_str()];
                ids.extend(e.transferee.as_ref().map(|c| c.id.as_str()));
                w.transferred(&ids);
            }
        }
        AriEvent::BridgeAttendedTransfer(e) => {
            if e.result.eq_ignore_ascii_case("Success") {
                let mut ids = vec![e.transferer_first_leg.id.as_str(), e.transferer_second_leg.id.as_str()];
                ids.extend(e.transferee.as_ref().map(|c| c.id.as_str()));
                ids.extend(e.transfer_target.as_ref().map(|c| c.id.as_str()));
                w.transferred(&ids);
            }
        }
        AriEvent::DeviceStateChanged(e) => {
            w.device(&e.device_state.name, e.device_state.state.as_str(), stamp);
        }
        AriEvent::Unknown { event_type, raw } => {
            // A removal we could not type is still a removal: better than a ghost.
            let id = |field: &str| raw.get(field).and_then(|v| v.get("id")).and_then(Value::as_str);
            match event_type.as_str() {
                "ChannelDestroyed" => {
                    if let Some(id) = id("channel") {
                        let cause = raw.get("cause").and_then(Value::as_i64);
                        w.destroy_channel(id, stamp, cause);
                    }
                }
                "BridgeDestroyed" => {
                    if let Some(id) = id("bridge") {
                        w.destroy_bridge(id, stamp);
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}
