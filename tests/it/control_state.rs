//! The live state (`accentd::control`) against every scenario recorded from a real Asterisk
//! 22.10.1: the AMI session (`ami.raw`) and the ARI websocket (`ari-events.jsonl`) are replayed
//! straight into `LiveState`, each alone and both interleaved by their timestamps, and the state
//! is checked at points of the scenario against what its README and `facts.json` say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::ari_fixtures::{name, read_lines, scenarios};
use accentd::ami::{frame_all, AmiFramer, AmiMessage, Frame, FrameLimits, MessageKind};
use accentd::ari::models::{BridgeType, CallerId, ChannelState, DeviceStateValue, DialplanCep};
use accentd::ari::{parse_ari_timestamp, parse_event, AriEvent};
use accentd::control::{
    Bridge, Call, CallState, Channel, LiveState, Snapshot, StateChange, StateView, MAX_DTMF_DIGITS,
};
use proptest::prelude::*;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::TryRecvError;

// ------------------------------------------------------------------ loading

/// One recorded event and its time in epoch microseconds.
#[derive(Clone)]
enum Ev {
    Ami(AmiMessage),
    Ari(AriEvent),
}

#[derive(Clone)]
struct Timed {
    us: i64,
    ev: Arc<Ev>,
}

struct Scenario {
    name: String,
    ami: Vec<Timed>,
    ari: Vec<Timed>,
    /// Both streams merged by time, each stream's own order kept.
    merged: Vec<Timed>,
    facts: Vec<Value>,
}

fn read_bytes(dir: &Path, file: &str) -> Vec<u8> {
    if let Ok(b) = std::fs::read(dir.join(file)) {
        return b;
    }
    let gz = std::fs::read(dir.join(format!("{file}.gz"))).unwrap_or_else(|_| panic!("{dir:?}/{file}(.gz)"));
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).expect("gunzip");
    out
}

fn ami_us(m: &AmiMessage) -> Option<i64> {
    let t = m.get("Timestamp")?;
    let (s, f) = t.split_once('.')?;
    let f = format!("{f:0<6}");
    Some(s.parse::<i64>().ok()? * 1_000_000 + f.get(..6)?.parse::<i64>().ok()?)
}

fn iso_us(text: &str) -> i64 {
    let t = parse_ari_timestamp(text)
        .or_else(|_| OffsetDateTime::parse(text, &Rfc3339))
        .unwrap_or_else(|e| panic!("time {text}: {e}"));
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// `HH:MM:SS.mmm` of the scenario's day (all recordings are on 2026-11-28, UTC).
fn at(hms: &str) -> i64 {
    iso_us(&format!("2026-11-28T{hms}+00:00"))
}

/// The burst (scenario 15) is 12 MB of AMI and 21,500 ARI events: framing and parsing all of
/// it takes seconds in a debug build. The events the state ignores or learns nothing new from
/// ([`BURST_AMI_NOISE`], [`BURST_ARI_NOISE`]: `VarSet`, `CEL`, `Cdr`, hangup requests, … and the
/// dialplan steps, which only tell the application, not checked for the burst) are dropped
/// before parsing, to keep its tests fast. Every other scenario replays everything.
fn is_burst(dir: &Path) -> bool {
    name(dir).starts_with("15")
}

const BURST_AMI_NOISE: [&str; 8] = [
    "Event: VarSet\r",
    "Event: CEL\r",
    "Event: Cdr\r",
    "Event: Newexten\r",
    "Event: HangupRequest\r",
    "Event: SoftHangupRequest\r",
    "Event: LocalBridge\r",
    "Event: OriginateResponse\r",
];
const BURST_ARI_NOISE: [&str; 3] = [
    "\"type\":\"ChannelVarset\"",
    "\"type\":\"ChannelDialplan\"",
    "\"type\":\"ChannelHangupRequest\"",
];

fn without_noise(bytes: Vec<u8>) -> Vec<u8> {
    let finder = memchr::memmem::Finder::new(b"\r\n\r\n");
    let mut out = Vec::with_capacity(bytes.len() / 2);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let end = finder.find(rest).map_or(rest.len(), |i| i + 4);
        let (msg, tail) = rest.split_at(end);
        let noise = BURST_AMI_NOISE.iter().any(|p| msg.starts_with(p.as_bytes()));
        if !noise {
            out.extend_from_slice(msg);
        }
        rest = tail;
    }
    out
}

fn load(dir: &Path) -> Scenario {
    let mut framer = AmiFramer::new(FrameLimits::default());
    let mut ami = Vec::new();
    let mut last = 0;
    let mut bytes = read_bytes(dir, "ami.raw");
    if is_burst(dir) {
        bytes = without_noise(bytes);
    }
    for frame in frame_all(&mut framer, &bytes) {
        if let Ok(Frame::Message(m)) = frame {
            if m.kind() != MessageKind::Event {
                continue;
            }
            // Events without a timestamp (list items) happened at the last stamped event.
            last = ami_us(&m).unwrap_or(last);
            ami.push(Timed {
                us: last,
                ev: Arc::new(Ev::Ami(m)),
            });
        }
    }
    let ari: Vec<Timed> = read_lines(dir, "ari-events.jsonl")
        .unwrap_or_default()
        .iter()
        .filter(|line| !(is_burst(dir) && BURST_ARI_NOISE.iter().any(|n| line.contains(n))))
        .map(|line| {
            let ev = parse_event(line).expect("recorded ARI event");
            let us = iso_us(ev.timestamp().expect("timestamp"));
            Timed {
                us,
                ev: Arc::new(Ev::Ari(ev)),
            }
        })
        .collect();
    let merged = merge(&ami, &ari);
    let facts_text = String::from_utf8(read_bytes(dir, "facts.json")).expect("utf8");
    let facts: Vec<Value> = serde_json::from_str(&facts_text).expect("facts.json");
    Scenario {
        name: name(dir),
        ami,
        ari,
        merged,
        facts,
    }
}

/// Merges two streams by time, keeping each one's order (ARI times are in milliseconds and
/// not always increasing: the head with the smaller time goes first).
fn merge(a: &[Timed], b: &[Timed]) -> Vec<Timed> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        let take_a = j >= b.len() || (i < a.len() && a[i].us <= b[j].us);
        if take_a {
            out.push(a[i].clone());
            i += 1;
        } else {
            out.push(b[j].clone());
            j += 1;
        }
    }
    out
}

/// Every scenario, each loaded on first use and shared by the tests of this file.
fn scenario(prefix: &str) -> &'static Scenario {
    static ALL: OnceLock<Vec<(String, OnceLock<Scenario>)>> = OnceLock::new();
    let all = ALL.get_or_init(|| scenarios().iter().map(|d| (name(d), OnceLock::new())).collect());
    let (dir_name, cell) = all
        .iter()
        .find(|(n, _)| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no scenario {prefix}"));
    cell.get_or_init(|| {
        let dir = scenarios().into_iter().find(|d| &name(d) == dir_name).expect("dir");
        load(&dir)
    })
}

fn all_names() -> Vec<String> {
    scenarios().iter().map(|d| name(d)).collect()
}

// ------------------------------------------------------------------ replay

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ami,
    Ari,
    Both,
}

const MODES: [Mode; 3] = [Mode::Ami, Mode::Ari, Mode::Both];

fn apply(state: &LiveState, ev: &Ev) {
    match ev {
        Ev::Ami(m) => state.apply_ami(m),
        Ev::Ari(e) => state.apply_ari(e),
    }
}

/// A replay of one stream (or both) into a fresh state, advanced by time.
struct Replay<'a> {
    state: LiveState,
    events: &'a [Timed],
    pos: usize,
}

impl<'a> Replay<'a> {
    fn new(s: &'a Scenario, mode: Mode) -> Self {
        let events = match mode {
            Mode::Ami => &s.ami[..],
            Mode::Ari => &s.ari[..],
            Mode::Both => &s.merged[..],
        };
        Replay {
            state: LiveState::new(),
            events,
            pos: 0,
        }
    }

    /// Applies every event up to `us` (inclusive).
    fn until(&mut self, us: i64) -> &LiveState {
        while self.pos < self.events.len() && self.events[self.pos].us <= us {
            apply(&self.state, &self.events[self.pos].ev);
            self.pos += 1;
        }
        &self.state
    }

    /// Applies events until no channel waits for AMI to name its linkedid (a point where the
    /// two streams agree, as a real `CoreShowChannels` always names it).
    fn until_settled(&mut self) -> &LiveState {
        while self.pos < self.events.len() && self.state.channels().iter().any(|c| c.linkedid.is_empty()) {
            apply(&self.state, &self.events[self.pos].ev);
            self.pos += 1;
        }
        &self.state
    }

    fn until_end(&mut self) -> &LiveState {
        self.until(i64::MAX)
    }
}

fn assert_empty(state: &LiveState, what: &str) {
    let c = state.counts();
    assert_eq!(
        (c.channels, c.bridges, c.calls),
        (0, 0, 0),
        "{what}: not empty at the end: {:#?}",
        state.view()
    );
}

fn chan(state: &LiveState, name: &str) -> Channel {
    state
        .channel_by_name(name)
        .unwrap_or_else(|| panic!("no channel {name} in {:#?}", state.channels()))
}

fn call_of(state: &LiveState, linkedid: &str) -> Call {
    state
        .call(linkedid)
        .unwrap_or_else(|| panic!("no call {linkedid} in {:#?}", state.calls()))
}

/// The names of the channels a call's talks connect.
fn talk_names(state: &LiveState, call: &Call) -> Vec<Vec<String>> {
    call.talks
        .iter()
        .map(|t| {
            let mut names: Vec<String> = t
                .channels
                .iter()
                .map(|id| state.channel(id).map(|c| c.name).unwrap_or_else(|| id.clone()))
                .collect();
            names.sort();
            names
        })
        .collect()
}

fn device(state: &LiveState, d: &str) -> DeviceStateValue {
    state.device_state(d).unwrap_or_else(|| panic!("no device {d}")).state
}

// ------------------------------------------------------ every scenario, facts

fn fact_us(f: &Value, key: &str) -> Option<i64> {
    f.get(key)?.as_str().map(iso_us)
}

/// Checks one scenario, in one mode, against its `facts.json` (the call-log facts derived from
/// CEL) at points of each call's life, and that the state is empty at the end.
fn check_facts(s: &Scenario, mode: Mode) {
    // Checkpoints, sorted, each with its check.
    type Check<'f> = Box<dyn Fn(&LiveState) + 'f>;
    let mut checks: Vec<(i64, Check<'_>)> = Vec::new();
    for f in &s.facts {
        let linkedid = f["linkedid"].as_str().expect("linkedid").to_owned();
        let originating = f["originating_channel"].as_str().expect("originating").to_owned();
        let (start, end) = (fact_us(f, "start").expect("start"), fact_us(f, "end").expect("end"));
        let what = format!("{} [{mode:?}] call {linkedid}", s.name);
        let caller = (
            f["caller_name"].as_str().unwrap_or("").to_owned(),
            f["caller_number"].as_str().unwrap_or("").to_owned(),
        );
        // While the call lives: it exists, shows its caller, and talks when answered.
        let mid = start + (end - start) / 2;
        {
            let (what, linkedid, caller) = (what.clone(), linkedid.clone(), caller.clone());
            let answered = f["answered"].as_bool() == Some(true);
            let answer = fact_us(f, "answer");
            checks.push((
                mid,
                Box::new(move |st| {
                    let call = call_of(st, &linkedid);
                    let party = call
                        .caller
                        .as_ref()
                        .map(|c| (c.party.name.clone(), c.party.number.clone()));
                    assert_eq!(party, Some(caller.clone()), "{what}: caller at mid-call");
                    if !answered || answer.is_some_and(|a| a > mid) {
                        assert!(call.talks.is_empty(), "{what}: talks before an answer: {call:#?}");
                        assert_ne!(call.state, CallState::OnHold, "{what}");
                    }
                }),
            ));
        }
        // Right after the answer: the originating channel talks to the one that answered.
        if let (Some(answer), Some(by)) = (fact_us(f, "answer"), f["answered_by_channel"].as_str()) {
            if !by.contains("CBAnn") {
                let (what, originating, by) = (what.clone(), originating.clone(), by.to_owned());
                // The manager events of the bridge can trail the CEL time by a few ms under load.
                checks.push((
                    (answer + 100_000).min(answer + (end - answer) / 2),
                    Box::new(move |st| {
                        let o = chan(st, &originating);
                        let b = chan(st, &by);
                        assert!(o.bridge_id.is_some(), "{what}: {originating} in no bridge after answer");
                        assert_eq!(o.bridge_id, b.bridge_id, "{what}: {originating} and {by} not bridged");
                        assert!(o.talking_to.contains(&b.id), "{what}: talking_to of {originating}");
                        let call = call_of(st, &o.linkedid);
                        assert!(
                            matches!(call.state, CallState::Up | CallState::OnHold),
                            "{what}: {call:#?}"
                        );
                        assert!(
                            call.talks
                                .iter()
                                .any(|t| t.channels.contains(&o.id) && t.channels.contains(&b.id)),
                            "{what}: talks {call:#?}"
                        );
                    }),
                ));
            }
        }
        // Before the end: the originating channel talks to the last party it was bridged with
        // (after a transfer, the final one).
        if let (Some(answer), Some(last)) = (fact_us(f, "answer"), f["last_connected_channel"].as_str()) {
            let t = end - ((end - answer) / 3).min(500_000);
            let (what, originating, last) = (what.clone(), originating.clone(), last.to_owned());
            checks.push((
                t,
                Box::new(move |st| {
                    // The originating channel may be gone while the call goes on (05: its
                    // linkedid lives on in the channel that adopted it).
                    if let Some(o) = st.channel_by_name(&originating) {
                        let l = chan(st, &last);
                        assert!(
                            o.talking_to.contains(&l.id),
                            "{what}: {originating} not talking to {last}: {o:#?}"
                        );
                    }
                }),
            ));
        }
        // Just after the end: the call is gone.
        {
            let (what, linkedid) = (what.clone(), linkedid.clone());
            checks.push((
                end + 100_000,
                Box::new(move |st| {
                    assert!(st.call(&linkedid).is_none(), "{what}: still there after its end");
                }),
            ));
        }
    }
    checks.sort_by_key(|(t, _)| *t);
    let mut r = Replay::new(s, mode);
    let mut rx = r.state.subscribe();
    let mut created = BTreeSet::new();
    let mut collect = |rx: &mut tokio::sync::broadcast::Receiver<Arc<StateChange>>| {
        for change in drain(rx) {
            if let StateChange::CallCreated(call) = &*change {
                assert!(
                    created.insert(call.linkedid.clone()),
                    "{}: call {} created twice",
                    s.name,
                    call.linkedid
                );
            }
        }
    };
    for (t, check) in &checks {
        check(r.until(*t));
        collect(&mut rx);
    }
    assert_empty(r.until_end(), &format!("{} [{mode:?}]", s.name));
    collect(&mut rx);
    // One CallCreated per call of facts.json: no call is missed, and no transient one-channel
    // call shows up while a dialed leg waits for its linkedid.
    let expected: BTreeSet<String> = s
        .facts
        .iter()
        .filter_map(|f| f["linkedid"].as_str())
        .map(str::to_owned)
        .collect();
    assert_eq!(created, expected, "{} [{mode:?}]: calls created", s.name);
}

#[test]
fn every_scenario_matches_its_facts_in_every_mode() {
    for n in all_names().iter().filter(|n| !n.starts_with("15")) {
        let s = scenario(n);
        for mode in MODES {
            check_facts(s, mode);
        }
    }
}

#[test]
fn burst_of_200_calls_matches_its_facts_and_max_concurrency() {
    let s = scenario("15");
    assert_eq!(s.facts.len(), 200);
    check_facts(s, Mode::Both);
    // The most calls alive at once: from facts (start..end of each linkedid) and as seen.
    let mut edges: Vec<(i64, i32)> = s
        .facts
        .iter()
        .flat_map(|f| {
            [
                (fact_us(f, "start").expect("start"), 1),
                (fact_us(f, "end").expect("end"), -1),
            ]
        })
        .collect();
    edges.sort();
    let (mut now, mut expected_max) = (0, 0);
    for (_, d) in edges {
        now += d;
        expected_max = expected_max.max(now);
    }
    let state = LiveState::new();
    let mut rx = state.subscribe();
    let (mut max_calls, mut max_channels, mut linkedids) = (0, 0, BTreeSet::new());
    for e in &s.merged {
        apply(&state, &e.ev);
        let c = state.counts();
        max_calls = max_calls.max(c.calls);
        max_channels = max_channels.max(c.channels);
        for change in drain(&mut rx) {
            if let StateChange::CallCreated(call) = &*change {
                assert!(
                    linkedids.insert(call.linkedid.clone()),
                    "call {} created twice",
                    call.linkedid
                );
            }
        }
    }
    assert_empty(&state, "15 [Both]");
    let expected: BTreeSet<String> = s
        .facts
        .iter()
        .map(|f| f["linkedid"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        linkedids, expected,
        "one CallCreated per call of facts.json, no transient call"
    );
    assert!(
        (max_calls as i64 - i64::from(expected_max)).abs() <= 1,
        "max concurrent calls {max_calls}, facts say {expected_max}"
    );
    println!("15: max concurrent calls {max_calls} (facts: {expected_max}), max channels {max_channels}");
}

// ------------------------------------------------ convergence of the streams

/// The facts both streams carry, per channel/bridge/call/device (see the module docs of
/// `accentd::control`): what must be the same whichever stream(s) built the state.
#[derive(Debug, PartialEq)]
struct Common {
    channels: Vec<String>,
    bridges: Vec<String>,
    calls: Vec<String>,
    devices: Vec<String>,
}

fn common(state: &LiveState) -> Common {
    let v = state.view();
    let channels = v
        .channels
        .iter()
        .map(|c| {
            format!(
                "{} {} {} caller={:?}/{:?} connected={:?}/{:?} linkedid={} dp={}/{}/{} bridge={:?} talking={:?} hold={} dialed_by={:?} dial={:?} dtmf={}",
                c.id,
                c.name,
                c.state,
                c.caller.name,
                c.caller.number,
                c.connected.name,
                c.connected.number,
                c.linkedid,
                c.dialplan.context,
                c.dialplan.exten,
                c.dialplan.priority,
                c.bridge_id,
                c.talking_to,
                c.on_hold,
                c.dialed_by,
                c.dial_status,
                c.dtmf_received
            )
        })
        .collect();
    let bridges = v
        .bridges
        .iter()
        .map(|b| {
            format!(
                "{} {} {} {:?} {:?} {:?}",
                b.id, b.technology, b.class, b.creator, b.name, b.channels
            )
        })
        .collect();
    let calls = v
        .calls
        .iter()
        .map(|c| {
            // Music on hold is seen by AMI only: the state it implies is left out.
            let on_hold_by_leg = c
                .channels
                .iter()
                .any(|id| state.channel(id).is_some_and(|ch| ch.on_hold));
            let st = match c.state {
                CallState::OnHold if !on_hold_by_leg => CallState::Up,
                s => s,
            };
            let callees: Vec<&str> = c.callees.iter().map(|p| p.channel_id.as_str()).collect();
            format!(
                "{} {:?} caller={:?} callees={:?} channels={:?} talks={:?} transferred={}",
                c.linkedid,
                st,
                c.caller.as_ref().map(|p| (&p.channel_id, &p.party)),
                callees,
                c.channels,
                c.talks,
                c.transferred
            )
        })
        .collect();
    let devices = v.devices.iter().map(|d| format!("{} {}", d.device, d.state)).collect();
    Common {
        channels,
        bridges,
        calls,
        devices,
    }
}

/// Times where neither stream has an event within 50 ms: every event before has arrived on
/// both streams, so the states must agree.
fn quiet_points(s: &Scenario) -> Vec<i64> {
    let mut times: Vec<i64> = s.merged.iter().map(|e| e.us).collect();
    times.sort();
    times
        .windows(2)
        .filter(|w| w[1] - w[0] >= 100_000)
        .map(|w| w[0] + (w[1] - w[0]) / 2)
        .collect()
}

fn check_convergence(s: &Scenario) {
    let points = quiet_points(s);
    assert!(!points.is_empty(), "{}: no quiet point", s.name);
    let mut replays: Vec<Replay<'_>> = MODES.iter().map(|m| Replay::new(s, *m)).collect();
    let mut streams: Vec<_> = replays.iter().map(|r| r.state.subscribe()).collect();
    let mut created: Vec<BTreeSet<String>> = vec![BTreeSet::new(); MODES.len()];
    let mut collect = |streams: &mut Vec<tokio::sync::broadcast::Receiver<Arc<StateChange>>>| {
        for (i, rx) in streams.iter_mut().enumerate() {
            for change in drain(rx) {
                if let StateChange::CallCreated(call) = &*change {
                    let fresh = created[i].insert(call.linkedid.clone());
                    assert!(
                        fresh,
                        "{} [{:?}]: call {} created twice",
                        s.name, MODES[i], call.linkedid
                    );
                }
            }
        }
    };
    for t in points {
        let views: Vec<Common> = replays.iter_mut().map(|r| common(r.until(t))).collect();
        for (mode, view) in MODES.iter().zip(&views).skip(1) {
            assert_eq!(views[0], *view, "{} at {t}: AMI alone vs {mode:?}", s.name);
        }
        collect(&mut streams);
    }
    for r in &mut replays {
        assert_empty(r.until_end(), &s.name);
    }
    collect(&mut streams);
    let expected: BTreeSet<String> = s
        .facts
        .iter()
        .filter_map(|f| f["linkedid"].as_str())
        .map(str::to_owned)
        .collect();
    for (mode, created) in MODES.iter().zip(&created) {
        assert_eq!(
            *created, expected,
            "{} [{mode:?}]: one CallCreated per call, none transient",
            s.name
        );
    }
    let ends: Vec<Common> = replays.iter().map(|r| common(&r.state)).collect();
    assert_eq!(ends[0], ends[1], "{}: final device states, AMI vs ARI", s.name);
    assert_eq!(ends[0], ends[2], "{}: final device states, AMI vs both", s.name);
}

#[test]
fn ami_alone_ari_alone_and_both_agree_at_every_quiet_point() {
    for n in all_names().iter().filter(|n| !n.starts_with("15")) {
        check_convergence(scenario(n));
    }
}

#[test]
fn burst_streams_agree_at_every_quiet_point() {
    check_convergence(scenario("15"));
}

#[test]
fn one_stream_after_the_other_changes_nothing() {
    // The extreme interleavings: all of AMI then all of ARI, and the reverse. The late
    // stream only describes dead channels and older device states: nothing comes back.
    for n in all_names().iter().filter(|n| !n.starts_with("15")) {
        let s = scenario(n);
        let ami_alone = LiveState::new();
        s.ami.iter().for_each(|e| apply(&ami_alone, &e.ev));
        for order in [[&s.ami, &s.ari], [&s.ari, &s.ami]] {
            let state = LiveState::new();
            order.iter().flat_map(|v| v.iter()).for_each(|e| apply(&state, &e.ev));
            assert_empty(&state, n);
            assert_eq!(state.device_states(), ami_alone.device_states(), "{n}");
        }
    }
}

// ------------------------------------------------ scenario by scenario

/// Replays `prefix` in each mode and runs `check` at `hms` (HH:MM:SS.mmm).
fn at_time(prefix: &str, hms: &str, modes: &[Mode], check: impl Fn(Mode, &LiveState)) {
    let s = scenario(prefix);
    for mode in modes {
        let mut r = Replay::new(s, *mode);
        check(*mode, r.until(at(hms)));
    }
}

#[test]
fn s01_ringing_then_answered_then_empty() {
    let caller = "Local/1001@caller-0000001d;1";
    let callee = "Local/1002@dev-0000001e;1";
    at_time("01", "13:02:26.000", &MODES, |mode, st| {
        let c = chan(st, callee);
        assert_eq!(c.state, ChannelState::Ringing, "{mode:?}");
        assert_eq!(c.dial_status.as_deref(), Some("RINGING"), "{mode:?}");
        let call = call_of(st, "1795870944.58");
        assert_eq!(call.state, CallState::Ringing, "{mode:?}");
        assert_eq!(call.channels.len(), 4, "{mode:?}: both Local pairs");
        assert_eq!(call.callees.len(), 1, "{mode:?}");
        assert_eq!(call.callees[0].channel_name, callee);
        assert_eq!(call.caller.as_ref().map(|c| c.channel_name.as_str()), Some(caller));
        assert_eq!(st.counts().bridges, 0);
    });
    at_time("01", "13:02:30.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870944.58");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
        assert_eq!(talk_names(st, &call), vec![vec![caller.to_owned(), callee.to_owned()]]);
        let b = st.bridge(&call.talks[0].bridge_id).expect("bridge");
        assert_eq!(
            (b.technology.as_str(), b.class.as_str()),
            ("simple_bridge", "basic"),
            "{mode:?}"
        );
        assert_eq!(device(st, "Local/1002@dev"), DeviceStateValue::Inuse);
        assert_eq!(call.callees[0].party.number, "1002");
        assert_eq!(st.calls_of_endpoint("Local/1001@caller").len(), 1);
        assert_eq!(st.calls_of_endpoint("local/1002@DEV").len(), 1);
    });
}

#[test]
fn s02_no_answer_rings_then_ends_without_a_bridge() {
    at_time("02", "12:59:08.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870744.0");
        assert_eq!(call.state, CallState::Ringing, "{mode:?}");
        assert_eq!(call.callees[0].channel_name, "Local/1003@dev-00000001;1");
        assert!(call.talks.is_empty());
    });
    at_time("02", "12:59:13.000", &MODES, |mode, st| {
        assert_empty(st, &format!("02 {mode:?}"))
    });
}

#[test]
fn s04_stasis_channel_up_without_bridge() {
    at_time("04", "12:59:26.000", &MODES, |mode, st| {
        let c = chan(st, "Local/1001@dev-00000004;1");
        assert_eq!(c.state, ChannelState::Up, "{mode:?}");
        assert_eq!(c.caller.number, "8800");
        // Only ARI knows the Stasis application.
        let expected = (mode != Mode::Ami).then_some("accent");
        assert_eq!(c.stasis_app.as_deref(), expected, "{mode:?}");
        let call = call_of(st, "1795870763.8");
        assert_eq!(call.state, CallState::Up);
        assert!(call.talks.is_empty());
        assert_eq!(call.channels.len(), 2);
    });
}

#[test]
fn s05_mixing_bridge_and_linkedid_adoption() {
    at_time("05", "12:59:35.000", &MODES, |mode, st| {
        let b = st.bridge("s05-bridge").expect("s05-bridge");
        assert_eq!(b.channels, vec!["s05-1001", "s05-1002"], "{mode:?}");
        assert_eq!(b.class, "stasis");
        let bridge_type = (mode != Mode::Ami).then(|| "mixing".to_owned());
        assert_eq!(b.bridge_type, bridge_type, "{mode:?}: only ARI says mixing");
        // Bridged with the older call, s05-1002 adopted its linkedid; its ;2 half did not.
        assert_eq!(
            call_of(st, "s05-1001").channels,
            vec!["s05-1001", "s05-1001;2", "s05-1002"],
            "{mode:?}"
        );
        assert_eq!(call_of(st, "s05-1002").channels, vec!["s05-1002;2"], "{mode:?}");
        assert_eq!(chan(st, "Local/1001@dev-00000005;1").talking_to, vec!["s05-1002"]);
    });
    at_time("05", "12:59:39.000", &MODES, |mode, st| {
        assert_eq!(
            st.bridge("s05-bridge").expect("bridge").channels,
            vec!["s05-1002"],
            "{mode:?}"
        );
        assert!(
            st.call("s05-1001").is_some(),
            "s05-1002 still carries linkedid s05-1001"
        );
        assert!(chan(st, "Local/1002@dev-00000006;1").talking_to.is_empty());
    });
    at_time("05", "12:59:40.000", &MODES, |mode, st| {
        // Both hung up; the ARI bridge lives until it is destroyed.
        let c = st.counts();
        assert_eq!((c.channels, c.calls, c.bridges), (0, 0, 1), "{mode:?}");
        assert!(st.bridge("s05-bridge").expect("bridge").channels.is_empty());
    });
    at_time("05", "12:59:41.000", &MODES, |mode, st| {
        assert_empty(st, &format!("05 {mode:?}"))
    });
}

#[test]
fn s06_hold_is_music_on_hold_on_the_stasis_half() {
    let half = "Local/1001@caller-ari-00000007;2";
    at_time("06", "12:59:52.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870784.14");
        // A Local channel put on hold through ARI only shows MusicOnHoldStart, on AMI.
        if mode == Mode::Ari {
            assert!(!chan(st, half).moh);
            assert_eq!(call.state, CallState::Up);
        } else {
            assert!(chan(st, half).moh, "{mode:?}");
            assert!(call.on_hold);
            assert_eq!(call.state, CallState::OnHold, "{mode:?}");
        }
        assert!(
            st.channels().iter().all(|c| !c.on_hold),
            "no Hold event for Local channels"
        );
        assert_eq!(chan(st, half).stasis_app.is_some(), mode != Mode::Ami);
    });
    at_time("06", "12:59:57.000", &MODES, |mode, st| {
        assert!(!chan(st, half).moh, "{mode:?}");
        assert_eq!(call_of(st, "1795870784.14").state, CallState::Up, "{mode:?}");
    });
}

#[test]
fn s07_blind_transfer_moves_alice_to_1003() {
    let alice = "Local/1001@caller-00000009;1";
    at_time("07", "13:00:21.000", &MODES, |mode, st| {
        assert_eq!(
            chan(st, alice).talking_to,
            vec![chan(st, "Local/1002@dev-0000000a;1").id],
            "{mode:?}"
        );
        assert!(!call_of(st, "1795870817.18").transferred);
    });
    at_time("07", "13:00:23.000", &MODES, |mode, st| {
        // Bob's leg is gone, 1003 rings, Alice waits in no bridge.
        assert!(st.channel_by_name("Local/1002@dev-0000000a;1").is_none(), "{mode:?}");
        let call = call_of(st, "1795870817.18");
        assert!(call.transferred, "{mode:?}");
        assert_eq!(call.state, CallState::Ringing, "{mode:?}");
        assert!(chan(st, alice).bridge_id.is_none());
    });
    at_time("07", "13:00:26.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870817.18");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
        assert_eq!(
            talk_names(st, &call),
            vec![vec![alice.to_owned(), "Local/1003@dev-0000000b;1".to_owned()]],
            "{mode:?}"
        );
        assert_eq!(call.channels.len(), 4, "{mode:?}: Alice's pair and 1003's pair");
        assert!(call.transferred);
        assert_eq!(
            call.callees.iter().map(|c| c.channel_name.as_str()).collect::<Vec<_>>(),
            ["Local/1003@dev-0000000b;1"]
        );
    });
}

#[test]
fn s07b_redirect_is_not_a_transfer() {
    let alice = "Local/1001@caller-0000000c;1";
    at_time("07b", "13:00:38.000", &MODES, |mode, st| {
        assert_eq!(
            chan(st, alice).talking_to,
            vec![chan(st, "Local/1002@dev-0000000d;1").id],
            "{mode:?}"
        );
    });
    at_time("07b", "13:00:45.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870834.24");
        assert_eq!(
            talk_names(st, &call),
            vec![vec![alice.to_owned(), "Local/1003@dev-0000000e;1".to_owned()]],
            "{mode:?}"
        );
        assert!(!call.transferred, "{mode:?}: a redirect is not a bridge transfer");
        assert!(st.channel_by_name("Local/1002@dev-0000000d;1").is_none());
    });
}

#[test]
fn s09_queue_rings_two_members_and_bridges_the_one_who_answers() {
    let alice = "Local/1001@caller-00000013;1";
    at_time("09", "13:01:21.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870879.38");
        assert_eq!(call.state, CallState::Ringing, "{mode:?}");
        let callees: Vec<(&str, Option<&str>)> = call
            .callees
            .iter()
            .map(|c| (c.channel_name.as_str(), c.dial_status.as_deref()))
            .collect();
        assert_eq!(
            callees,
            [
                ("Local/1101@dev-00000014;1", Some("RINGING")),
                ("Local/1102@dev-00000015;1", Some("RINGING"))
            ],
            "{mode:?}"
        );
        let a = chan(st, alice);
        assert_eq!(a.dialplan.app_name, "Queue", "{mode:?}");
        // The queue and its music are AMI facts.
        if mode == Mode::Ari {
            assert_eq!((a.queue.as_deref(), a.moh), (None, false));
        } else {
            assert_eq!((a.queue.as_deref(), a.moh), (Some("support"), true), "{mode:?}");
        }
        assert!(!call.on_hold, "waiting music is not hold");
    });
    at_time("09", "13:01:25.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870879.38");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
        assert_eq!(
            talk_names(st, &call),
            vec![vec![alice.to_owned(), "Local/1102@dev-00000015;1".to_owned()]]
        );
        assert!(
            st.channel_by_name("Local/1101@dev-00000014;1").is_none(),
            "{mode:?}: 1101 gave up"
        );
        let a = chan(st, alice);
        assert_eq!((a.queue.as_deref(), a.moh), (None, false), "{mode:?}");
    });
}

#[test]
fn s10_conference_of_three_calls_in_one_bridge() {
    at_time("10", "13:01:45.000", &MODES, |mode, st| {
        let bridges = st.bridges();
        assert_eq!(bridges.len(), 1, "{mode:?}");
        let b = &bridges[0];
        assert_eq!(
            (
                b.technology.as_str(),
                b.class.as_str(),
                b.creator.as_str(),
                b.name.as_str()
            ),
            ("softmix", "base", "ConfBridge", "100")
        );
        assert_eq!(
            b.channels,
            vec!["1795870898.44", "1795870900.48", "1795870902.50"],
            "{mode:?}"
        );
        let calls = st.calls();
        assert_eq!(calls.len(), 3, "{mode:?}: a conference does not merge linkedids");
        for call in &calls {
            assert_eq!(call.state, CallState::Up);
            assert_eq!(call.talks.len(), 1);
            assert_eq!(call.talks[0].channels, b.channels);
            let own = st.channel(&call.linkedid).expect("originating channel");
            assert_eq!(own.talking_to.len(), 2);
            assert_eq!(
                own.muted,
                (mode != Mode::Ari).then_some(false),
                "{mode:?}: mute is an AMI fact"
            );
        }
    });
    at_time("10", "13:01:51.000", &MODES, |mode, st| {
        assert_eq!(
            st.bridges()[0].channels,
            vec!["1795870898.44", "1795870902.50"],
            "{mode:?}"
        );
        assert!(st.call("1795870900.48").is_none(), "Bob left");
    });
    at_time("10", "13:01:53.000", &MODES, |mode, st| {
        // Carol alone with music on hold: up, not on hold, talking to nobody.
        let call = call_of(st, "1795870902.50");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
        assert!(call.talks.is_empty() && !call.on_hold);
        assert_eq!(chan(st, "Local/1003@caller-00000019;1").moh, mode != Mode::Ari);
    });
}

#[test]
fn s12_voicemail_takes_the_unanswered_call() {
    at_time("12", "13:02:41.000", &MODES, |mode, st| {
        assert_eq!(call_of(st, "1795870958.62").state, CallState::Ringing, "{mode:?}");
    });
    at_time("12", "13:02:55.000", &MODES, |mode, st| {
        let call = call_of(st, "1795870958.62");
        assert!(
            call.callees.is_empty() && call.talks.is_empty(),
            "{mode:?}: 1000 gave up"
        );
        assert_eq!(call.state, CallState::Up, "{mode:?}: the voicemail answered");
        let c = chan(st, "Local/1002@caller-0000001f;1");
        assert_eq!(c.dialplan.app_name, "VoiceMail", "{mode:?}");
        assert_eq!(c.dialplan.app_data, "1000@default,u");
    });
}

#[test]
fn s13_dtmf_digits_received_on_each_leg() {
    at_time("13", "13:03:20.000", &MODES, |mode, st| {
        assert_eq!(
            chan(st, "Local/1001@caller-00000021;1").dtmf_received,
            "1234*#",
            "{mode:?}"
        );
        assert_eq!(
            chan(st, "Local/1002@dev-00000022;2").dtmf_received,
            "91234*#",
            "{mode:?}"
        );
        assert_eq!(chan(st, "Local/1002@dev-00000022;2").dtmf_count, 7, "{mode:?}");
        assert_eq!(
            chan(st, "Local/1002@dev-00000022;1").dtmf_received,
            "",
            "{mode:?}: sent, not received"
        );
        assert_eq!(call_of(st, "1795870991.66").state, CallState::Up);
    });
    const { assert!(MAX_DTMF_DIGITS >= 7) };
}

#[test]
fn s14_state_matches_the_recorded_core_show_channels_and_device_list() {
    let s = scenario("14");
    let state = LiveState::new();
    let mut list: Vec<AmiMessage> = Vec::new();
    let mut seen_at = None;
    for e in &s.ami {
        if let Ev::Ami(m) = &*e.ev {
            if m.action_id() == Some("csc-busy") && m.event() == Some("CoreShowChannel") {
                seen_at.get_or_insert_with(|| state.view());
                list.push(m.clone());
            }
        }
        apply(&state, &e.ev);
    }
    let live = seen_at.expect("csc-busy list");
    assert_eq!(list.len(), 4);
    // The AMI replay, at the moment Asterisk listed its channels, has the same channels with
    // the same linkedids and bridges.
    let listed: BTreeMap<String, (String, String, String)> = list
        .iter()
        .map(|m| {
            let get = |k| m.get(k).unwrap_or("").to_owned();
            (get("Uniqueid"), (get("Channel"), get("Linkedid"), get("BridgeId")))
        })
        .collect();
    let replayed: BTreeMap<String, (String, String, String)> = live
        .channels
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                (
                    c.name.clone(),
                    c.linkedid.clone(),
                    c.bridge_id.clone().unwrap_or_default(),
                ),
            )
        })
        .collect();
    assert_eq!(listed, replayed);
    // A fresh state resynced from that recorded list has the same channels, states, parties
    // and bridges.
    let fresh = LiveState::new();
    fresh.resync(Snapshot {
        ami_channels: Some(list),
        ..Default::default()
    });
    let strip = |v: &StateView| -> Vec<String> {
        v.channels
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {:?} {:?} {} {:?} {:?} {}/{}/{}",
                    c.id,
                    c.name,
                    c.state,
                    c.caller,
                    c.connected,
                    c.linkedid,
                    c.bridge_id,
                    c.talking_to,
                    c.dialplan.context,
                    c.dialplan.exten,
                    c.dialplan.priority
                )
            })
            .collect()
    };
    assert_eq!(strip(&fresh.view()), strip(&live));
    assert_eq!(fresh.calls().len(), 1);
    assert_eq!(fresh.calls()[0].state, CallState::Up);
    assert_empty(&state, "14");
}

#[test]
fn s20_registrations_make_device_and_hint_states_and_no_call() {
    at_time("20", "13:18:12.000", &[Mode::Ami, Mode::Ari, Mode::Both], |mode, st| {
        assert_eq!(device(st, "PJSIP/2001"), DeviceStateValue::NotInuse, "{mode:?}");
        assert_eq!(device(st, "PJSIP/2002"), DeviceStateValue::NotInuse, "{mode:?}");
        assert_eq!(st.counts().channels, 0);
        // Hints are AMI's.
        let hint = st.hint("2001", "from-internal");
        if mode == Mode::Ari {
            assert!(hint.is_none());
        } else {
            let h = hint.expect("hint 2001");
            assert_eq!(
                (h.status, h.status_text.as_str(), h.hint.as_str()),
                (0, "Idle", "PJSIP/2001")
            );
        }
    });
    at_time("20", "13:18:18.000", &MODES, |mode, st| {
        assert_eq!(device(st, "PJSIP/2001"), DeviceStateValue::Unavailable, "{mode:?}");
        assert_eq!(device(st, "PJSIP/2002"), DeviceStateValue::Unavailable, "{mode:?}");
        if mode != Mode::Ari {
            assert_eq!(st.hint("2002", "from-internal").expect("hint").status, 4);
        }
    });
}

#[test]
fn s21_sip_call_ringing_answered_and_bridge_technology() {
    let alice = "PJSIP/2001-00000000";
    let bob = "PJSIP/2002-00000001";
    at_time("21", "14:06:45.500", &MODES, |mode, st| {
        let call = call_of(st, "1795874804.0");
        assert_eq!(call.state, CallState::Ringing, "{mode:?}");
        assert_eq!(chan(st, alice).state, ChannelState::Ring);
        assert_eq!(chan(st, bob).answered_at, None, "{mode:?}: ringing");
        assert_eq!(chan(st, bob).state, ChannelState::Ringing);
        assert_eq!(chan(st, bob).endpoint, "PJSIP/2002");
        assert_eq!(device(st, "PJSIP/2002"), DeviceStateValue::Ringing, "{mode:?}");
        assert_eq!(
            device(st, "PJSIP/2001"),
            DeviceStateValue::Inuse,
            "{mode:?}: the caller never rings"
        );
        assert_eq!(call.callees[0].party.name, "Bob");
    });
    at_time("21", "14:06:48.000", &MODES, |mode, st| {
        let call = call_of(st, "1795874804.0");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
        assert_eq!(talk_names(st, &call), vec![vec![alice.to_owned(), bob.to_owned()]]);
        assert_eq!(chan(st, alice).connected.name, "Bob");
        assert_eq!(device(st, "PJSIP/2002"), DeviceStateValue::Inuse);
        assert_eq!(st.calls_of_endpoint("PJSIP/2001"), vec![call.clone()]);
        assert_eq!(st.calls_of_endpoint("PJSIP/2002"), vec![call]);
        assert!(st.calls_of_endpoint("PJSIP/2003").is_empty());
        if mode != Mode::Ari {
            assert_eq!(st.hint("2002", "from-internal").expect("hint").status_text, "InUse");
        }
    });
    // The bridge moved to native_rtp while up (BridgeLeave / ChannelLeftBridge say so).
    let s = scenario("21");
    for mode in MODES {
        let mut r = Replay::new(s, mode);
        let mut techs = Vec::new();
        let mut gone = Vec::new();
        let rx = r.state.subscribe();
        r.until_end();
        let mut rx = rx;
        while let Ok(change) = rx.try_recv() {
            match &*change {
                StateChange::BridgeCreated(b) | StateChange::BridgeUpdated(b)
                    if techs.last() != Some(&b.technology) =>
                {
                    techs.push(b.technology.clone());
                }
                StateChange::ChannelGone(c) => gone.push(c.clone()),
                _ => {}
            }
        }
        assert_eq!(techs, ["simple_bridge", "native_rtp"], "{mode:?}");
        // The last snapshot of each leg says why and when it ended, and when it was answered.
        assert_eq!(gone.len(), 2, "{mode:?}");
        for c in &gone {
            assert_eq!(c.hangup_cause, Some(16), "{mode:?}: normal clearing");
            let answered = c.answered_at.expect("answered");
            let ended = c.hungup_at.expect("hung up");
            assert!(c.created_at.is_some_and(|t| t <= answered), "{mode:?}");
            assert!(answered < ended, "{mode:?}: {answered} < {ended}");
        }
    }
}

#[test]
fn s22_sip_call_rings_20_seconds_and_ends() {
    at_time("22", "14:07:15.000", &MODES, |mode, st| {
        let call = call_of(st, "1795874823.2");
        assert_eq!(call.state, CallState::Ringing, "{mode:?}");
        assert_eq!(device(st, "PJSIP/2002"), DeviceStateValue::Ringing);
    });
    at_time("22", "14:07:26.000", &MODES, |mode, st| {
        assert_empty(st, &format!("22 {mode:?}"));
        assert_eq!(device(st, "PJSIP/2002"), DeviceStateValue::NotInuse, "{mode:?}");
    });
}

#[test]
fn s24_sip_hold_on_the_holding_party_music_on_the_held_one() {
    let alice = "PJSIP/2001-00000006";
    let bob = "PJSIP/2002-00000007";
    at_time("24", "14:07:52.000", &MODES, |mode, st| {
        assert_eq!(call_of(st, "1795874868.6").state, CallState::Up, "{mode:?}");
        assert!(!chan(st, alice).on_hold);
    });
    at_time("24", "14:07:57.000", &MODES, |mode, st| {
        let call = call_of(st, "1795874868.6");
        assert_eq!(call.state, CallState::OnHold, "{mode:?}");
        assert!(call.on_hold);
        assert!(chan(st, alice).on_hold, "{mode:?}: Hold is on the holding party");
        assert!(!chan(st, bob).on_hold);
        assert_eq!(chan(st, bob).moh, mode != Mode::Ari, "{mode:?}: music is an AMI fact");
        assert_eq!(
            device(st, "PJSIP/2002"),
            DeviceStateValue::Onhold,
            "{mode:?}: the held party"
        );
        assert_eq!(device(st, "PJSIP/2001"), DeviceStateValue::Inuse);
        if mode != Mode::Ari {
            assert_eq!(st.hint("2002", "from-internal").expect("hint").status, 16);
        }
    });
    at_time("24", "14:08:02.000", &MODES, |mode, st| {
        let call = call_of(st, "1795874868.6");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
        assert!(!chan(st, alice).on_hold && !chan(st, bob).moh);
        assert_eq!(device(st, "PJSIP/2002"), DeviceStateValue::Inuse);
    });
}

#[test]
fn s25_inbound_trunk_call_to_2001() {
    at_time("25", "14:08:19.000", &MODES, |mode, st| {
        let call = call_of(st, "1795874894.8");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
        let caller = call.caller.clone().expect("caller");
        assert_eq!(caller.endpoint, "PJSIP/pstn-trunk");
        assert_eq!(
            (caller.party.name.as_str(), caller.party.number.as_str()),
            ("PSTN Caller", "0612345678")
        );
        assert_eq!(call.callees[0].channel_name, "PJSIP/2001-00000009", "{mode:?}");
        assert_eq!(device(st, "PJSIP/pstn-trunk"), DeviceStateValue::Inuse);
        assert_eq!(st.calls_of_endpoint("PJSIP/pstn-trunk").len(), 1);
    });
}

#[test]
fn s27_ari_originated_sip_legs_join_one_call_when_bridged() {
    at_time("27", "13:20:30.000", &MODES, |mode, st| {
        assert_eq!(st.calls().len(), 2, "{mode:?}: two originates, two calls");
        assert_eq!(chan(st, "PJSIP/2003-00000015").state, ChannelState::Ringing, "{mode:?}");
    });
    at_time("27", "13:20:33.000", &MODES, |mode, st| {
        let calls = st.calls();
        assert_eq!(calls.len(), 1, "{mode:?}: s27-2003 adopted s27-2002's linkedid");
        assert_eq!(calls[0].linkedid, "s27-2002");
        assert_eq!(calls[0].channels, vec!["s27-2002", "s27-2003"]);
        assert_eq!(calls[0].state, CallState::Up);
        let b = st.bridge("s27-bridge").expect("bridge");
        assert_eq!(b.class, "stasis");
        for c in st.channels() {
            assert_eq!(c.stasis_app.is_some(), mode != Mode::Ami, "{mode:?}");
        }
    });
}

// ------------------------------------------------------------------ resync

fn ari_time(t: Option<OffsetDateTime>) -> String {
    let t = t.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// What `GET /channels`, `GET /bridges`, `CoreShowChannels`, `DeviceStateList` and
/// `ExtensionStateList` would answer for this state.
fn snapshot_of(state: &LiveState) -> Snapshot {
    let v = state.view();
    let ari_channels = v
        .channels
        .iter()
        .map(|c| accentd::ari::models::Channel {
            id: c.id.clone(),
            protocol_id: String::new(),
            name: c.name.clone(),
            state: c.state.clone(),
            caller: CallerId {
                name: c.caller.name.clone(),
                number: c.caller.number.clone(),
            },
            connected: CallerId {
                name: c.connected.name.clone(),
                number: c.connected.number.clone(),
            },
            accountcode: String::new(),
            dialplan: DialplanCep {
                context: c.dialplan.context.clone(),
                exten: c.dialplan.exten.clone(),
                priority: c.dialplan.priority,
                app_name: c.dialplan.app_name.clone(),
                app_data: c.dialplan.app_data.clone(),
            },
            creationtime: ari_time(c.created_at),
            language: "en".into(),
            channelvars: None,
            caller_rdnis: None,
            tenantid: None,
        })
        .collect();
    let ari_bridges = v
        .bridges
        .iter()
        .map(|b: &Bridge| accentd::ari::models::Bridge {
            id: b.id.clone(),
            technology: b.technology.clone(),
            bridge_type: BridgeType::from(b.bridge_type.as_deref().unwrap_or("mixing")),
            bridge_class: b.class.clone(),
            creator: b.creator.clone(),
            name: b.name.clone(),
            channels: b.channels.clone(),
            video_mode: None,
            video_source_id: None,
            creationtime: ari_time(b.created_at),
            bridgevars: None,
        })
        .collect();
    let unk = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_owned()
        } else {
            s.to_owned()
        }
    };
    let ami_channels = v
        .channels
        .iter()
        .map(|c| {
            AmiMessage::new()
                .with("Event", "CoreShowChannel")
                .with("ActionID", "resync-1")
                .with("Channel", &c.name)
                .with("ChannelStateDesc", c.state.as_str())
                .with("CallerIDNum", unk(&c.caller.number))
                .with("CallerIDName", unk(&c.caller.name))
                .with("ConnectedLineNum", unk(&c.connected.number))
                .with("ConnectedLineName", unk(&c.connected.name))
                .with("Context", &c.dialplan.context)
                .with("Exten", &c.dialplan.exten)
                .with("Priority", c.dialplan.priority.to_string())
                .with("Uniqueid", &c.id)
                .with("Linkedid", &c.linkedid)
                .with("Application", &c.dialplan.app_name)
                .with("ApplicationData", &c.dialplan.app_data)
                .with("BridgeId", c.bridge_id.clone().unwrap_or_default())
        })
        .collect();
    let ami_device_states = v
        .devices
        .iter()
        .map(|d| {
            AmiMessage::new()
                .with("Event", "DeviceStateChange")
                .with("ActionID", "resync-2")
                .with("Device", &d.device)
                .with("State", d.state.as_str())
        })
        .collect();
    let ami_hints = v
        .hints
        .iter()
        .map(|h| {
            AmiMessage::new()
                .with("Event", "ExtensionStatus")
                .with("ActionID", "resync-3")
                .with("Exten", &h.exten)
                .with("Context", &h.context)
                .with("Hint", &h.hint)
                .with("Status", h.status.to_string())
                .with("StatusText", &h.status_text)
        })
        .collect();
    Snapshot {
        ari_channels: Some(ari_channels),
        ari_bridges: Some(ari_bridges),
        ami_channels: Some(ami_channels),
        ami_device_states: Some(ami_device_states),
        ami_hints: Some(ami_hints),
        mark: None,
    }
}

/// The facts a snapshot carries (so a resynced state and one that saw every event agree).
fn snapshot_facts(v: &StateView) -> Vec<String> {
    let mut out: Vec<String> = v
        .channels
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {:?} {:?} {} {:?} {:?} {:?}",
                c.id, c.name, c.state, c.caller, c.connected, c.linkedid, c.dialplan, c.bridge_id, c.talking_to
            )
        })
        .collect();
    out.extend(
        v.bridges
            .iter()
            .map(|b| format!("{} {} {} {:?}", b.id, b.technology, b.class, b.channels)),
    );
    out.extend(
        v.calls
            .iter()
            .map(|c| format!("{} {:?} {:?}", c.linkedid, c.channels, c.talks)),
    );
    out.extend(v.devices.iter().map(|d| format!("{d:?}")));
    out.extend(v.hints.iter().map(|h| format!("{h:?}")));
    out
}

/// Compares the snapshot facts of two states and shows only what differs.
fn assert_same_facts(a: &LiveState, b: &LiveState, what: &str) {
    let (fa, fb) = (snapshot_facts(&a.view()), snapshot_facts(&b.view()));
    let only_a: Vec<&String> = fa.iter().filter(|x| !fb.contains(x)).collect();
    let only_b: Vec<&String> = fb.iter().filter(|x| !fa.contains(x)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "{what}:\nonly in first: {only_a:#?}\nonly in second: {only_b:#?}"
    );
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Arc<StateChange>>) -> Vec<Arc<StateChange>> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(c) => out.push(c),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("change stream: {e}"),
        }
    }
}

fn ghost(state: &LiveState) {
    let ghost = AmiMessage::new()
        .with("Event", "Newchannel")
        .with("Timestamp", "1795870000.000000")
        .with("Channel", "PJSIP/9999-0000dead")
        .with("ChannelState", "6")
        .with("ChannelStateDesc", "Up")
        .with("CallerIDNum", "9999")
        .with("CallerIDName", "Ghost")
        .with("ConnectedLineNum", "<unknown>")
        .with("ConnectedLineName", "<unknown>")
        .with("Context", "from-internal")
        .with("Exten", "s")
        .with("Priority", "1")
        .with("Uniqueid", "ghost.1")
        .with("Linkedid", "ghost.1");
    state.apply_ami(&ghost);
    let bridge = AmiMessage::new()
        .with("Event", "BridgeCreate")
        .with("BridgeUniqueid", "ghost-bridge")
        .with("BridgeType", "basic")
        .with("BridgeTechnology", "simple_bridge");
    state.apply_ami(&bridge);
    assert!(state.channel("ghost.1").is_some() && state.bridge("ghost-bridge").is_some());
}

/// Replays `prefix` to `t1` (state A, plus a ghost channel and bridge), and to `t2` (state B);
/// resyncs A from B's snapshot, then plays the rest into both.
fn check_resync(prefix: &str, t1: &str, t2: &str) {
    let s = scenario(prefix);
    let mut a = Replay::new(s, Mode::Both);
    a.until(at(t1));
    ghost(&a.state);
    let before: BTreeSet<String> = a.state.channels().into_iter().map(|c| c.id).collect();
    let mut b = Replay::new(s, Mode::Both);
    b.until(at(t2));
    b.until_settled();
    let after: BTreeSet<String> = b.state.channels().into_iter().map(|c| c.id).collect();
    let snap = snapshot_of(&b.state);

    let mut rx = a.state.subscribe();
    a.state.resync(snap.clone());
    let changes = drain(&mut rx);
    let fresh = LiveState::new();
    fresh.resync(snap);
    assert_eq!(
        a.state.view(),
        fresh.view(),
        "{prefix}: resynced state == fresh start from the same snapshot"
    );
    assert_same_facts(
        &a.state,
        &b.state,
        &format!("{prefix}: resynced vs the state that saw every event"),
    );

    let gone: BTreeSet<String> = changes
        .iter()
        .filter_map(|c| match &**c {
            StateChange::ChannelGone(ch) => Some(ch.id.clone()),
            _ => None,
        })
        .collect();
    let created: BTreeSet<String> = changes
        .iter()
        .filter_map(|c| match &**c {
            StateChange::ChannelCreated(ch) => Some(ch.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        gone,
        before.difference(&after).cloned().collect(),
        "{prefix}: Gone = vanished + ghost"
    );
    assert!(gone.contains("ghost.1"));
    assert_eq!(
        created,
        after.difference(&before).cloned().collect(),
        "{prefix}: Created = new ones"
    );
    assert!(changes
        .iter()
        .any(|c| matches!(&**c, StateChange::BridgeGone(b) if b.id == "ghost-bridge")));
    assert!(changes
        .iter()
        .any(|c| matches!(&**c, StateChange::CallEnded(c) if c.linkedid == "ghost.1")));
    assert!(matches!(changes.last().map(|c| &**c), Some(StateChange::Resynced(_))));
    // The ghost stays dead even if an old event about it shows up late.
    ghost_late(&a.state);
    assert!(a.state.channel("ghost.1").is_none());

    // The rest of the recording: both end empty, with the same devices and hints.
    a.pos = b.pos;
    a.until_end();
    b.until_end();
    assert_empty(&a.state, prefix);
    assert_eq!(a.state.view(), b.state.view(), "{prefix}: same end state");
}

#[test]
fn a_marked_resync_mid_call_keeps_who_talks_to_whom() {
    // The feed marks the state, reads Asterisk's lists, then resyncs: the channels it rebuilds
    // from the lists must get their bridge back from the bridge lists.
    for mode in MODES {
        let s = scenario("21");
        let mut r = Replay::new(s, mode);
        r.until(at("14:06:48.000"));
        r.until_settled();
        let mut snap = snapshot_of(&r.state);
        snap.mark = Some(r.state.mark());
        r.state.resync(snap);
        for id in ["1795874804.0", "1795874804.1"] {
            let ch = r.state.channel(id).expect("still there");
            assert!(ch.bridge_id.is_some(), "{mode:?}: {id} keeps its bridge: {ch:?}");
            assert_eq!(ch.talking_to.len(), 1, "{mode:?}: {id}");
        }
        let call = call_of(&r.state, "1795874804.0");
        assert_eq!(call.state, CallState::Up, "{mode:?}");
    }
}

fn ghost_late(state: &LiveState) {
    let late = AmiMessage::new()
        .with("Event", "Newstate")
        .with("Timestamp", "1795870000.500000")
        .with("Channel", "PJSIP/9999-0000dead")
        .with("ChannelStateDesc", "Up")
        .with("Uniqueid", "ghost.1")
        .with("Linkedid", "ghost.1");
    state.apply_ami(&late);
}

#[test]
fn resync_after_a_transfer_removes_the_dead_and_the_ghosts() {
    // Before the transfer, then after 1003 answered: Bob's legs died, 1003's were born.
    check_resync("07-", "13:00:21.000", "13:00:26.000");
}

#[test]
fn resync_in_the_middle_of_the_burst() {
    check_resync("15", "13:04:45.000", "13:04:50.000");
}

#[test]
fn resync_keeps_what_events_changed_after_the_mark() {
    // The lists were requested at t1 (mark) but events up to t1' were applied before the
    // answer came: channels born after the mark survive, the ones that died do not come back.
    let s = scenario("07-");
    let (t1, t1b) = (at("13:00:22.000"), at("13:00:22.470"));
    let mut a = Replay::new(s, Mode::Both);
    a.until(t1);
    let mark = a.state.mark();
    let mut listed = Replay::new(s, Mode::Both);
    let mut snap = snapshot_of(listed.until(t1));
    snap.mark = Some(mark);
    a.until(t1b);
    assert!(a.state.channel_by_name("Local/1003@dev-0000000b;1").is_some());
    assert!(a.state.channel_by_name("Local/1002@dev-0000000a;1").is_none());
    a.state.resync(snap);
    assert!(
        a.state.channel_by_name("Local/1003@dev-0000000b;1").is_some(),
        "born after the mark: kept"
    );
    assert!(
        a.state.channel_by_name("Local/1002@dev-0000000a;1").is_none(),
        "died after the mark: not revived"
    );
    let mut b = Replay::new(s, Mode::Both);
    b.until(t1b);
    assert_same_facts(&a.state, &b.state, "07 resync with mark");
    a.until_end();
    assert_empty(&a.state, "07 after resync with mark");
}

#[test]
fn losing_ami_mid_call_falls_back_to_ari_inference() {
    // Blind transfer (07) with AMI until just before the transfer, then ARI alone: the legs
    // created after (1003's) get their linkedid from ARI's Dial, and nothing is left behind.
    let s = scenario("07-");
    let cut = at("13:00:21.000");
    let state = LiveState::new();
    let mut rx = state.subscribe();
    for e in s.merged.iter().filter(|e| e.us <= cut) {
        apply(&state, &e.ev);
    }
    state.set_ami_link(false);
    for e in s.ari.iter().filter(|e| e.us > cut && e.us <= at("13:00:26.000")) {
        apply(&state, &e.ev);
    }
    let call = call_of(&state, "1795870817.18");
    assert_eq!(call.channels.len(), 4, "{call:#?}");
    assert_eq!(
        talk_names(&state, &call),
        vec![vec![
            "Local/1001@caller-00000009;1".to_owned(),
            "Local/1003@dev-0000000b;1".to_owned()
        ]]
    );
    for e in s.ari.iter().filter(|e| e.us > at("13:00:26.000")) {
        apply(&state, &e.ev);
    }
    assert_empty(&state, "07, AMI lost");
    let created: Vec<String> = drain(&mut rx)
        .iter()
        .filter_map(|c| match &**c {
            StateChange::CallCreated(c) => Some(c.linkedid.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["1795870817.18"]);
}

#[test]
fn a_channel_waiting_for_ami_gets_its_linkedid_when_ami_goes_away() {
    // In the interleaved replay of 21, Bob's leg is first seen through ARI: until AMI names its
    // linkedid it is in no call. If AMI is gone, it is inferred instead.
    let s = scenario("21");
    let state = LiveState::new();
    let mut waited = false;
    for e in &s.merged {
        apply(&state, &e.ev);
        if let Some(bob) = state.channel_by_name("PJSIP/2002-00000001") {
            if bob.linkedid.is_empty() {
                waited = true;
                assert!(state.calls().iter().all(|c| !c.channels.contains(&bob.id)));
                state.set_ami_link(false);
                let bob = chan(&state, "PJSIP/2002-00000001");
                assert!(!bob.linkedid.is_empty());
                break;
            }
        }
    }
    assert!(waited, "the interleaved replay shows Bob's leg through ARI first");
}

#[test]
fn a_partial_resync_keeps_what_the_missing_lists_would_tell() {
    // ARI reconnected, AMI did not: only `GET /channels` was read. The linkedids (AMI's) and
    // the bridges (no bridge list) stay; a ghost still goes.
    let s = scenario("21");
    let mut r = Replay::new(s, Mode::Both);
    let before = r.until(at("14:06:48.000")).view();
    ghost(&r.state);
    let full = snapshot_of(&r.state);
    let ari_channels: Vec<_> = full
        .ari_channels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.id != "ghost.1")
        .collect();
    r.state.resync(Snapshot {
        ari_channels: Some(ari_channels),
        ..Default::default()
    });
    let after = r.state.view();
    assert!(r.state.channel("ghost.1").is_none());
    assert_eq!(after.calls.len(), 1);
    assert_eq!(after.calls[0].talks, before.calls[0].talks);
    assert_eq!(
        after.channels.iter().map(|c| &c.linkedid).collect::<Vec<_>>(),
        ["1795874804.0", "1795874804.0"]
    );
    assert_eq!(after.devices, before.devices, "devices not in the snapshot: untouched");
    assert!(
        r.state.bridge("ghost-bridge").is_some(),
        "bridges not in the snapshot: untouched"
    );
    r.state.apply_ami(
        &AmiMessage::new()
            .with("Event", "BridgeDestroy")
            .with("BridgeUniqueid", "ghost-bridge"),
    );
    r.until_end();
    assert_empty(&r.state, "21 after a partial resync");
}

#[test]
fn resync_from_the_recorded_device_and_hint_lists() {
    let s = scenario("20");
    let lists = |prefix: &str, event: &str| -> Vec<AmiMessage> {
        s.ami
            .iter()
            .filter_map(|e| match &*e.ev {
                Ev::Ami(m) if m.action_id().is_some_and(|a| a.starts_with(prefix)) && m.event() == Some(event) => {
                    Some(m.clone())
                }
                _ => None,
            })
            .collect()
    };
    let devices = lists("dsl-1", "DeviceStateChange");
    let hints = lists("esl-1", "ExtensionStatus");
    assert_eq!((devices.len(), hints.len()), (12, 9));
    let state = LiveState::new();
    // A device that Asterisk no longer lists goes away.
    state.apply_ami(
        &AmiMessage::new()
            .with("Event", "DeviceStateChange")
            .with("Device", "Local/1001@caller")
            .with("State", "INUSE"),
    );
    let mut rx = state.subscribe();
    state.resync(Snapshot {
        ami_device_states: Some(devices),
        ami_hints: Some(hints),
        ..Default::default()
    });
    assert_eq!(device(&state, "PJSIP/2001"), DeviceStateValue::NotInuse);
    assert_eq!(device(&state, "PJSIP/2003"), DeviceStateValue::Unavailable);
    assert_eq!(device(&state, "Queue:support_avail"), DeviceStateValue::Inuse);
    assert!(state.device_state("Local/1001@caller").is_none());
    assert_eq!(state.hint("2001", "from-internal").expect("hint").status, 0);
    assert_eq!(state.hint("2003", "from-internal").expect("hint").status, 4);
    let changes = drain(&mut rx);
    assert!(changes
        .iter()
        .any(|c| matches!(&**c, StateChange::DeviceGone(d) if d == "Local/1001@caller")));
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(&***c, StateChange::HintChanged(_)))
            .count(),
        9
    );
    // The list items on the live stream (they carry an ActionID) are not live updates.
    let live = LiveState::new();
    s.ami.iter().for_each(|e| apply(&live, &e.ev));
    assert!(live.device_state("Queue:support_avail").is_none());
}

// ------------------------------------------------------------ change stream

#[test]
fn change_stream_tells_the_story_of_a_call() {
    let s = scenario("21");
    let state = LiveState::new();
    let mut rx = state.subscribe();
    s.merged.iter().for_each(|e| apply(&state, &e.ev));
    let changes = drain(&mut rx);
    let kinds: Vec<&str> = changes.iter().map(|c| c.kind()).collect();
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count("channel_created"), 2);
    assert_eq!(count("channel_gone"), 2);
    assert_eq!(count("bridge_created"), 1);
    assert_eq!(count("bridge_gone"), 1);
    assert_eq!(count("call_created"), 1, "{kinds:?}");
    assert_eq!(count("call_ended"), 1);
    let states: Vec<CallState> = changes
        .iter()
        .filter_map(|c| match &**c {
            StateChange::CallCreated(c) | StateChange::CallUpdated(c) | StateChange::CallEnded(c) => Some(c.state),
            _ => None,
        })
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        });
    assert_eq!(
        states,
        [CallState::Dialing, CallState::Ringing, CallState::Up, CallState::HungUp],
        "{changes:#?}"
    );
    let ended = changes.iter().find_map(|c| match &**c {
        StateChange::CallEnded(c) => Some(c.clone()),
        _ => None,
    });
    let ended = ended.expect("CallEnded");
    assert!(ended.channels.is_empty() && ended.talks.is_empty());
    assert_eq!(ended.caller.as_ref().map(|c| c.party.name.as_str()), Some("Alice"));
    // A change is serializable for the websocket.
    let json = serde_json::to_value(&*changes[0]).expect("serialize");
    assert!(json.get("change").is_some() && json.get("data").is_some());
}

#[test]
fn a_slow_subscriber_gets_lagged_not_silence() {
    let state = LiveState::with_change_capacity(4);
    let mut rx = state.subscribe();
    scenario("21").merged.iter().for_each(|e| apply(&state, &e.ev));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Lagged(_))));
}

#[test]
fn concurrent_readers_see_consistent_entries_while_events_apply() {
    let state = LiveState::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for call in state.calls() {
                    assert!(!call.channels.is_empty());
                    assert_ne!(call.state, CallState::HungUp);
                }
                let _ = state.counts();
                reads += 1;
            }
            reads
        });
        for _ in 0..5 {
            for prefix in ["07-", "10", "21"] {
                for e in &scenario(prefix).merged {
                    apply(&state, &e.ev);
                }
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().expect("reader") > 0);
    });
}

// ------------------------------------------------------------ bad input

#[test]
fn unknown_and_incomplete_events_are_ignored_without_panic() {
    let state = LiveState::new();
    let msgs = [
        AmiMessage::new().with("Event", "Newchannel"),
        AmiMessage::new().with("Event", "Newchannel").with("Uniqueid", ""),
        AmiMessage::new()
            .with("Event", "Newchannel")
            .with("Uniqueid", "x.1")
            .with("ChannelStateDesc", "Up"),
        AmiMessage::new().with("Event", "Hangup"),
        AmiMessage::new().with("Event", "BridgeEnter").with("Uniqueid", "x.1"),
        AmiMessage::new()
            .with("Event", "BridgeEnter")
            .with("BridgeUniqueid", "b"),
        AmiMessage::new()
            .with("Event", "BridgeLeave")
            .with("BridgeUniqueid", ""),
        AmiMessage::new().with("Event", "DialBegin").with("DestUniqueid", "y"),
        AmiMessage::new()
            .with("Event", "DeviceStateChange")
            .with("Device", "PJSIP/1"),
        AmiMessage::new()
            .with("Event", "ExtensionStatus")
            .with("Exten", "1")
            .with("Status", "x"),
        AmiMessage::new()
            .with("Event", "Newstate")
            .with("Timestamp", "not a time")
            .with("Uniqueid", "z")
            .with("ChannelState", "99"),
        AmiMessage::new().with("Event", "TotallyNew").with("Uniqueid", "q"),
        AmiMessage::new().with("Response", "Success"),
        AmiMessage::new(),
        AmiMessage::new().with("Event", "Hold"),
        AmiMessage::new()
            .with("Event", "BlindTransfer")
            .with("Result", "Success"),
        AmiMessage::new()
            .with("Event", "DTMFEnd")
            .with("Uniqueid", "x.1")
            .with("Direction", "Received"),
    ];
    for m in &msgs {
        state.apply_ami(m);
    }
    // A channel needs a name to exist; a bridge enter without a known channel creates nothing.
    let c = state.counts();
    assert_eq!((c.channels, c.calls), (0, 0), "{:#?}", state.view());
    assert!(
        state.bridge("b").is_some(),
        "a bridge named by an event exists until destroyed"
    );
    state.apply_ami(
        &AmiMessage::new()
            .with("Event", "BridgeDestroy")
            .with("BridgeUniqueid", "b"),
    );

    let ari = [
        r#"{"type":"ChannelTeleported","timestamp":"2026-11-28T13:00:22.462+0000","application":"accent"}"#,
        r#"{"type":"ChannelCreated","timestamp":"2026-11-28T13:00:22.462+0000","application":"accent","channel":{"id":"c1","name":"x"}}"#,
        r#"{"type":"ChannelDestroyed","timestamp":"bad","application":"accent","channel":{"id":"c2"}}"#,
        r#"{"type":"BridgeDestroyed","application":"accent","bridge":{}}"#,
        r#"{"type":"MissingParams","params":["x"]}"#,
        r#"{"type":"Dial","timestamp":"2026-11-28T13:00:22.462+0000","application":"accent","dialstatus":"RINGING"}"#,
    ];
    for text in ari {
        let ev = parse_event(text).expect("an ARI message");
        state.apply_ari(&ev);
    }
    assert_empty(&state, "garbage");
}

#[test]
fn a_channel_destroyed_that_fails_its_model_still_removes_the_channel() {
    let s = scenario("21");
    let state = LiveState::new();
    let mut mangled = 0;
    for e in &s.ari {
        match &*e.ev {
            Ev::Ari(AriEvent::ChannelDestroyed(d)) => {
                // Drop the required `cause_txt`: the event becomes Unknown.
                let mut raw = serde_json::to_value(&**d).expect("ser");
                raw.as_object_mut().expect("object").remove("cause_txt");
                let ev = AriEvent::from_value(raw).expect("message");
                assert!(ev.is_unknown());
                state.apply_ari(&ev);
                mangled += 1;
            }
            Ev::Ari(ev) => state.apply_ari(ev),
            Ev::Ami(_) => unreachable!(),
        }
    }
    assert_eq!(mangled, 2);
    assert_empty(&state, "21 with untyped ChannelDestroyed");
}

#[test]
fn an_ari_client_may_reuse_a_channel_id_after_its_death() {
    // Replaying scenario 05 twice into one state: the second run recreates s05-1001 etc.
    // (their creation is later than the first death) and ends empty again.
    let s = scenario("05");
    let state = LiveState::new();
    for e in &s.ari {
        apply(&state, &e.ev);
    }
    assert_empty(&state, "05 first run");
    let shifted: Vec<AriEvent> = s
        .ari
        .iter()
        .filter_map(|e| match &*e.ev {
            Ev::Ari(ev) => {
                let text = serde_json::to_string(ev)
                    .expect("ser")
                    .replace("2026-11-28T12:59:", "2026-11-28T13:59:");
                Some(parse_event(&text).expect("shifted"))
            }
            Ev::Ami(_) => None,
        })
        .collect();
    let mut max_channels = 0;
    for ev in &shifted {
        state.apply_ari(ev);
        max_channels = max_channels.max(state.counts().channels);
    }
    assert_eq!(max_channels, 4);
    assert_empty(&state, "05 second run");
}

// ------------------------------------------------------------ property tests

/// The events of a scenario, both streams, as one list; and the stream each came from.
fn both_streams(s: &Scenario) -> (Vec<&Timed>, Vec<&Timed>) {
    (s.ami.iter().collect(), s.ari.iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any interleaving of the two streams (each in its own order) ends empty, with the
    /// device states of either stream alone.
    #[test]
    fn any_interleaving_converges(which in 0usize..4, choices in proptest::collection::vec(any::<bool>(), 2000)) {
        let prefix = ["21", "24", "07-", "09"][which];
        let s = scenario(prefix);
        let (ami, ari) = both_streams(s);
        let state = LiveState::new();
        let (mut i, mut j, mut k) = (0, 0, 0);
        while i < ami.len() || j < ari.len() {
            let pick_ami = j >= ari.len() || (i < ami.len() && choices[k % choices.len()]);
            k += 1;
            if pick_ami { apply(&state, &ami[i].ev); i += 1; } else { apply(&state, &ari[j].ev); j += 1; }
        }
        let alone = LiveState::new();
        s.ami.iter().for_each(|e| apply(&alone, &e.ev));
        let c = state.counts();
        prop_assert_eq!((c.channels, c.bridges, c.calls), (0, 0, 0));
        prop_assert_eq!(state.device_states(), alone.device_states());
    }

    /// Any order at all (events shuffled across and within streams) never panics, and leaves
    /// no ghost: every channel and bridge dies once, and a dead id is not revived by older news.
    #[test]
    fn random_event_orders_never_panic_nor_leave_ghosts(which in 0usize..5, seed in any::<u64>()) {
        let prefix = ["01", "07-", "10", "24", "27"][which];
        let s = scenario(prefix);
        let mut events: Vec<&Timed> = s.ami.iter().chain(s.ari.iter()).collect();
        // Fisher-Yates with a small xorshift, so the case is reproducible from the seed.
        let mut x = seed | 1;
        for i in (1..events.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            events.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let state = LiveState::new();
        for e in &events {
            apply(&state, &e.ev);
            let _ = state.counts();
        }
        let c = state.counts();
        prop_assert_eq!((c.channels, c.bridges, c.calls), (0, 0, 0), "{:#?}", state.view());
    }

    /// Arbitrary AMI headers with the event names the state handles never panic.
    #[test]
    fn arbitrary_ami_events_never_panic(
        events in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    "Newchannel", "Newstate", "Hangup", "DialBegin", "DialEnd", "BridgeCreate", "BridgeEnter",
                    "BridgeLeave", "BridgeDestroy", "BridgeMerge", "Hold", "Unhold", "MusicOnHoldStart",
                    "ConfbridgeJoin", "QueueCallerJoin", "DTMFEnd", "BlindTransfer", "Rename",
                    "DeviceStateChange", "ExtensionStatus", "Newexten", "Whatever",
                ]),
                proptest::collection::vec(
                    (
                        prop::sample::select(vec![
                            "Uniqueid", "Linkedid", "Channel", "ChannelState", "ChannelStateDesc", "BridgeUniqueid",
                            "DestUniqueid", "DestChannel", "DestChannelStateDesc", "Timestamp", "Device", "State",
                            "Exten", "Context", "Status", "Priority", "Newname", "Digit", "Direction", "Result",
                            "TransfereeUniqueid", "ToBridgeUniqueid", "FromBridgeUniqueid", "Muted", "Queue",
                        ]),
                        "[a-z0-9.;/ -]{0,6}",
                    ),
                    0..10,
                ),
            ),
            0..60,
        )
    ) {
        let state = LiveState::new();
        for (event, headers) in events {
            let mut m = AmiMessage::new().with("Event", event);
            for (k, v) in headers {
                m.push(k, v);
            }
            state.apply_ami(&m);
        }
        let _ = state.view();
    }
}
