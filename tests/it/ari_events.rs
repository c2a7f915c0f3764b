//! Every ARI websocket message recorded from a real Asterisk 22.10.1 must
//! parse into its typed variant and re-serialize to the same JSON.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::ari_fixtures::{json_diff, name, read_lines, scenarios};
use accentd::ari::events::{AriEvent, ContactStatus};
use accentd::ari::models::{BridgeType, ChannelState, DeviceStateValue, EndpointState, PlaybackState};
use accentd::ari::parse_event;
use serde_json::Value;

/// One recorded event with where it came from.
struct Recorded {
    at: String,
    raw: Value,
    event: AriEvent,
}

/// All recorded events, read and parsed once for the tests of this file.
fn all_recorded() -> &'static [Recorded] {
    static RECORDED: OnceLock<Vec<Recorded>> = OnceLock::new();
    RECORDED.get_or_init(load_recorded)
}

fn load_recorded() -> Vec<Recorded> {
    let mut out = Vec::new();
    for dir in scenarios() {
        let lines =
            read_lines(&dir, "ari-events.jsonl").unwrap_or_else(|| panic!("{}: no ari-events.jsonl(.gz)", name(&dir)));
        for (i, line) in lines.iter().enumerate() {
            let at = format!("{}/ari-events.jsonl:{}", name(&dir), i + 1);
            let raw: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: not JSON: {e}"));
            let event = parse_event(line).unwrap_or_else(|e| panic!("{at}: {e}"));
            out.push(Recorded { at, raw, event });
        }
    }
    out
}

/// The ids found in the raw JSON under the fields that hold channels or
/// bridges, found independently of the library's own walk.
fn raw_ids(raw: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .filter_map(|f| raw.get(f)?.get("id")?.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_recorded_event_is_typed_and_round_trips() {
    let recorded = all_recorded();
    // Guard against a vacuous pass: the copy of the fixtures must be complete.
    assert!(scenarios().len() >= 19, "scenarios: {}", scenarios().len());
    assert!(recorded.len() >= 23_000, "events: {}", recorded.len());

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for r in recorded {
        let raw_type = r.raw["type"].as_str().unwrap_or_default();
        *counts.entry(raw_type.to_owned()).or_default() += 1;
        if r.event.is_unknown() {
            failures.push(format!("{}: {raw_type} stayed Unknown", r.at));
            continue;
        }
        assert_eq!(r.event.event_type(), raw_type, "{}", r.at);

        // Lossless: what we write back is exactly what Asterisk sent. Every
        // recorded field is a spec field, so this covers "no spec field lost".
        let back = serde_json::to_value(&r.event).expect("serialize");
        let mut diff = Vec::new();
        json_diff("$", &r.raw, &back, &mut diff);
        if !diff.is_empty() {
            failures.push(format!("{}: {}", r.at, diff.join("; ")));
        }

        // The ids the event concerns include every channel/bridge object id.
        let channel_ids = r.event.channel_ids();
        for id in raw_ids(
            &r.raw,
            &[
                "channel",
                "peer",
                "caller",
                "transferee",
                "replace_channel",
                "forwarded",
            ],
        ) {
            assert!(
                channel_ids.contains(&id.as_str()),
                "{}: channel {id} not in {channel_ids:?}",
                r.at
            );
        }
        let bridge_ids = r.event.bridge_ids();
        for id in raw_ids(&r.raw, &["bridge"]) {
            assert!(
                bridge_ids.contains(&id.as_str()),
                "{}: bridge {id} not in {bridge_ids:?}",
                r.at
            );
        }
        assert_eq!(r.event.timestamp(), r.raw["timestamp"].as_str(), "{}", r.at);
        assert!(r.event.time().is_some(), "{}: timestamp does not parse", r.at);
        assert_eq!(r.event.application(), Some("accent"), "{}", r.at);
    }
    assert!(
        failures.is_empty(),
        "{} failures, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );

    // Every event type the recordings hold, so a fixture that goes missing
    // (or a new one) is noticed.
    let seen: Vec<&str> = counts.keys().map(String::as_str).collect();
    assert_eq!(
        seen,
        vec![
            "BridgeBlindTransfer",
            "BridgeCreated",
            "BridgeDestroyed",
            "ChannelCallerId",
            "ChannelConnectedLine",
            "ChannelCreated",
            "ChannelDestroyed",
            "ChannelDialplan",
            "ChannelDtmfReceived",
            "ChannelEnteredBridge",
            "ChannelHangupRequest",
            "ChannelHold",
            "ChannelLeftBridge",
            "ChannelStateChange",
            "ChannelUnhold",
            "ChannelVarset",
            "ContactStatusChange",
            "DeviceStateChanged",
            "Dial",
            "PeerStatusChange",
            "PlaybackFinished",
            "PlaybackStarted",
            "StasisEnd",
            "StasisStart",
        ],
        "{counts:?}"
    );
}

#[test]
fn recorded_enum_values_are_all_known_to_the_spec() {
    for r in all_recorded() {
        for ch in r.event.channels() {
            assert!(!matches!(ch.state, ChannelState::Other(_)), "{}: {}", r.at, ch.state);
            assert!(ch.created_at().is_some(), "{}: {}", r.at, ch.creationtime);
        }
        for b in r.event.bridges() {
            assert!(
                !matches!(b.bridge_type, BridgeType::Other(_)),
                "{}: {}",
                r.at,
                b.bridge_type
            );
            assert!(b.created_at().is_some(), "{}: {}", r.at, b.creationtime);
        }
        match &r.event {
            AriEvent::DeviceStateChanged(e) => {
                assert!(!matches!(e.device_state.state, DeviceStateValue::Other(_)), "{}", r.at)
            }
            AriEvent::ContactStatusChange(e) => {
                assert!(
                    !matches!(e.contact_info.contact_status, ContactStatus::Other(_)),
                    "{}",
                    r.at
                );
                assert!(
                    matches!(e.endpoint.state, Some(EndpointState::Online | EndpointState::Offline)),
                    "{}",
                    r.at
                );
            }
            AriEvent::PlaybackStarted(e) => {
                assert!(!matches!(e.playback.state, PlaybackState::Other(_)), "{}", r.at)
            }
            AriEvent::PlaybackFinished(e) => {
                assert!(!matches!(e.playback.state, PlaybackState::Other(_)), "{}", r.at)
            }
            _ => {}
        }
    }
}

fn in_scenario<'a>(recorded: &'a [Recorded], prefix: &str) -> impl Iterator<Item = &'a Recorded> {
    let prefix = format!("{prefix}/");
    recorded.iter().filter(move |r| r.at.starts_with(&prefix))
}

#[test]
fn recorded_events_carry_what_the_scenarios_describe() {
    let recorded = all_recorded();

    // 07: Bob (the callee leg) blind-transfers Alice's channel to 1003.
    let blind: Vec<_> = in_scenario(recorded, "07-blind-transfer")
        .filter_map(|r| match &r.event {
            AriEvent::BridgeBlindTransfer(e) => Some((e, &r.event)),
            _ => None,
        })
        .collect();
    assert_eq!(blind.len(), 1);
    let (e, ev) = blind[0];
    assert_eq!(
        (e.exten.as_str(), e.result.as_str(), e.is_external),
        ("1003", "Success", true)
    );
    let transferee = e.transferee.as_ref().expect("transferee");
    assert!(transferee.name.starts_with("Local/1001@caller-"), "{}", transferee.name);
    assert_eq!(ev.channel_ids(), vec![e.channel.id.as_str(), transferee.id.as_str()]);
    let bridge = e.bridge.as_ref().expect("bridge");
    assert_eq!(ev.bridge_ids(), vec![bridge.id.as_str()]);

    // 24: PJSIP hold is on the holding party (2001), with the music class.
    let holds: Vec<_> = in_scenario(recorded, "24-sip-hold")
        .filter_map(|r| match &r.event {
            AriEvent::ChannelHold(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(holds.len(), 1);
    assert!(holds[0].channel.name.starts_with("PJSIP/2001-"));
    assert_eq!(holds[0].musicclass.as_deref(), Some("default"));
    assert!(
        !holds[0].channel.protocol_id.is_empty(),
        "PJSIP channels carry the SIP Call-ID"
    );

    // 04: the playback targets the Stasis channel, which channel_ids() reports.
    let pb: Vec<_> = in_scenario(recorded, "04-ari-stasis-playback")
        .filter(|r| matches!(r.event, AriEvent::PlaybackStarted(_)))
        .collect();
    assert_eq!(pb.len(), 1);
    assert_eq!(pb[0].event.channel_ids(), vec!["1795870763.8"]);

    // Dial: an originate has no caller; a Dial() has one, and both ids count.
    for r in recorded {
        if let AriEvent::Dial(d) = &r.event {
            let ids = r.event.channel_ids();
            match &d.caller {
                Some(c) => assert_eq!(ids, vec![c.id.as_str(), d.peer.id.as_str()], "{}", r.at),
                None => assert_eq!(ids, vec![d.peer.id.as_str()], "{}", r.at),
            }
        }
    }

    // 20: registration shows as ContactStatusChange + PeerStatusChange, never
    // EndpointStateChange; roundtrip_usec is a string.
    let s20: Vec<_> = in_scenario(recorded, "20-sip-register").collect();
    assert!(s20.iter().any(|r| matches!(r.event, AriEvent::PeerStatusChange(_))));
    assert!(!s20.iter().any(|r| matches!(r.event, AriEvent::EndpointStateChange(_))));
    for r in &s20 {
        if let AriEvent::ContactStatusChange(e) = &r.event {
            assert!(e.contact_info.roundtrip_usec.is_some(), "{}", r.at);
        }
    }
}
