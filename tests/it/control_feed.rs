//! The live state fed through the real links (`control::feed`) from the fake Asterisk:
//! what arrives over the wire builds the same state as the recordings applied directly (which
//! `tests/control_state.rs` checks against each scenario's README), and a link dropped
//! mid-call ends, after reconnection and resync, in the state a fresh start sees.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accentd::ami::{AmiClient, AmiClientOptions, Backoff};
use accentd::api::status::StatusRegistry;
use accentd::ari::backoff::BackoffPolicy;
use accentd::ari::{parse_event, AriClient, AriEvents, AriEventsOptions};
use accentd::config::{AmiConfig, AriConfig};
use accentd::control::feed::{self, FeedOptions, Links};
use accentd::control::{LiveState, StateChange, StateView};
use accentd::fake_asterisk::ami::{AmiRecording, FakeAmi, FakeAmiOptions, Replay as AmiReplay};
use accentd::fake_asterisk::ari::{DropMode, FakeAri, FakeAriOptions, Replay as AriReplay};
use accentd::fake_asterisk::Scenario;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// One accentd-side consumer: clients, a live state and its feed.
struct Side {
    state: LiveState,
    changes: broadcast::Receiver<Arc<StateChange>>,
    shutdown: CancellationToken,
}

impl Drop for Side {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn quick_feed() -> FeedOptions {
    FeedOptions {
        settle: Duration::from_millis(10),
        list_timeout: Duration::from_secs(5),
    }
}

fn start_side(links: Links, shutdown: CancellationToken) -> Side {
    let state = LiveState::with_change_capacity(64 * 1024);
    let changes = state.subscribe();
    feed::spawn(state.clone(), links, quick_feed(), shutdown.clone());
    Side {
        state,
        changes,
        shutdown,
    }
}

fn ari_links(fake: &FakeAri, shutdown: &CancellationToken) -> (AriClient, AriEvents) {
    let config = AriConfig {
        url: fake.url(),
        user: "accent".into(),
        password: "accent".into(),
        app: "accent".into(),
    };
    let client = AriClient::new(&config).expect("client");
    let options = AriEventsOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            jitter: 0.0,
            reset_after: Duration::from_secs(30),
        },
        ..AriEventsOptions::default()
    };
    let status = Arc::new(StatusRegistry::default());
    let (events, _task) = AriEvents::start_with_client(client.clone(), "accent", status, shutdown.clone(), options);
    (client, events)
}

fn ami_link(fake: &FakeAmi, shutdown: &CancellationToken) -> AmiClient {
    let config = AmiConfig {
        addr: fake.addr().to_string(),
        user: "accent".into(),
        password: "accent".into(),
    };
    let options = AmiClientOptions {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            jitter: 0.0,
            reset_after: Duration::from_secs(30),
        },
        ..AmiClientOptions::default()
    };
    AmiClient::spawn_with(config, options, Arc::new(StatusRegistry::default()), shutdown.clone())
}

fn ari_side(fake: &FakeAri) -> Side {
    let shutdown = CancellationToken::new();
    let ari = ari_links(fake, &shutdown);
    start_side(
        Links {
            ami: None,
            ari: Some(ari),
        },
        shutdown,
    )
}

fn ami_side(fake: &FakeAmi) -> Side {
    let shutdown = CancellationToken::new();
    let ami = ami_link(fake, &shutdown);
    start_side(
        Links {
            ami: Some(ami),
            ari: None,
        },
        shutdown,
    )
}

async fn fake_ari(name: &str) -> FakeAri {
    let options = FakeAriOptions {
        replay: AriReplay::Manual,
        ..FakeAriOptions::default()
    };
    FakeAri::start(&Scenario::load(name).expect("scenario"), options)
        .await
        .expect("fake ARI")
}

async fn fake_ami(name: &str) -> FakeAmi {
    let options = FakeAmiOptions {
        replay: AmiReplay::Manual,
        ..FakeAmiOptions::default()
    };
    FakeAmi::start(&Scenario::load(name).expect("scenario"), options)
        .await
        .expect("fake AMI")
}

/// Waits for the next `Resynced` change (the initial resync, or the one after a reconnect).
async fn resynced(side: &mut Side, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, side.changes.recv()).await {
            Ok(Ok(change)) if matches!(*change, StateChange::Resynced(_)) => return,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{what}: change stream: {e}"),
            Err(_) => panic!("{what}: no resync within {WAIT:?}"),
        }
    }
}

/// Polls until `state` shows `want`.
async fn eventually(state: &LiveState, want: &StateView, what: &str) {
    let start = Instant::now();
    loop {
        let got = state.view();
        if &got == want {
            return;
        }
        if start.elapsed() > WAIT {
            assert_eq!(&got, want, "{what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ari_events(name: &str) -> Vec<String> {
    Scenario::load(name)
        .expect("scenario")
        .lines("ari-events.jsonl")
        .expect("ari events")
}

/// The state the first `n` recorded ARI events build when applied directly.
fn direct_ari(events: &[String], n: usize) -> StateView {
    let state = LiveState::new();
    for line in &events[..n] {
        if let Ok(event) = parse_event(line) {
            state.apply_ari(&event);
        }
    }
    state.view()
}

/// The state the first `n` recorded AMI timeline events build when applied directly.
fn direct_ami(recording: &AmiRecording, n: usize) -> StateView {
    let state = LiveState::new();
    for msg in &recording.timeline()[..n] {
        state.apply_ami(msg);
    }
    state.view()
}

fn event_type(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Positions (event counts) worth stopping at: after each event that changes who talks to
/// whom or who is alive.
fn ari_cut_points(events: &[String]) -> Vec<usize> {
    const KEYS: [&str; 6] = [
        "ChannelCreated",
        "ChannelEnteredBridge",
        "ChannelLeftBridge",
        "ChannelDestroyed",
        "ChannelHold",
        "ChannelStateChange",
    ];
    let mut cuts: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, line)| KEYS.contains(&event_type(line).as_str()))
        .map(|(i, _)| i + 1)
        .collect();
    cuts.push(events.len());
    cuts.dedup();
    cuts
}

/// Every call scenario with ARI events, replayed over the websocket step by step: at each cut
/// point the fed state equals the direct replay, and the end is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ari_events_over_the_wire_build_the_same_state_as_the_recording() {
    for name in ["01", "05", "06", "07", "10", "21", "24", "27"] {
        let events = ari_events(name);
        let fake = fake_ari(name).await;
        let mut side = ari_side(&fake);
        resynced(&mut side, name).await;
        let mut at = 0;
        for cut in ari_cut_points(&events) {
            fake.replay_next(cut - at);
            at = cut;
            eventually(
                &side.state,
                &direct_ari(&events, cut),
                &format!("{name} after {cut} events"),
            )
            .await;
        }
        let end = side.state.view();
        assert!(
            end.channels.is_empty() && end.calls.is_empty() && end.bridges.is_empty(),
            "{name}: empty at the end: {end:?}"
        );
    }
}

/// Drops the ARI websocket after `cut` events, releases events up to `resume` while it is
/// down (they are lost for this client), and checks that after the reconnection and resync
/// the state is exactly what a fresh client starting now builds.
async fn ari_drop_case(name: &str, cut: usize, resume: usize) {
    let events = ari_events(name);
    let fake = fake_ari(name).await;
    let mut a = ari_side(&fake);
    resynced(&mut a, name).await;
    fake.replay_next(cut);
    let what = format!("{name}: dropped after {cut}, back at {resume}");
    eventually(&a.state, &direct_ari(&events, cut), &what).await;

    fake.set_refusing(true);
    fake.drop_connections(DropMode::Abort);
    assert!(fake.wait_for_connections(0, WAIT).await, "{what}: link down");
    fake.replay_next(resume - cut);
    fake.set_refusing(false);
    resynced(&mut a, &what).await;

    let mut fresh = ari_side(&fake);
    resynced(&mut fresh, &what).await;
    assert_eq!(
        ari_facts(&a.state.view()),
        ari_facts(&fresh.state.view()),
        "{what}: resynced == fresh start"
    );
    // And the resync removed exactly the channels that died while the link was down.
    let after: BTreeSet<String> = a.state.channels().into_iter().map(|c| c.id).collect();
    let alive_in_recording: BTreeSet<String> = direct_ari(&events, resume).channels.into_iter().map(|c| c.id).collect();
    assert_eq!(after, alive_in_recording, "{what}: no ghost, nobody lost");

    // The rest of the recording flows again and ends empty (the device states that changed
    // while the link was down stay stale on ARI alone: see `ari_facts`).
    fake.replay_all();
    let start = Instant::now();
    loop {
        let v = a.state.view();
        if v.channels.is_empty() && v.bridges.is_empty() && v.calls.is_empty() {
            break;
        }
        assert!(start.elapsed() < WAIT, "{what}: not empty at the end: {v:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What `GET /channels` and `GET /bridges` can tell, which is all a fresh start on ARI alone
/// knows: ARI has no linkedid (so which channels make one call is inferred from events, and
/// the resynced client, which saw the dial, rightly keeps knowing more) and no list of device
/// states (`GET /deviceStates` only lists custom ones). With AMI too, the whole state is
/// compared (see `both_links_dropped_mid_call...`).
fn ari_facts(v: &StateView) -> Vec<String> {
    let mut out: Vec<String> = v
        .channels
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {:?} {:?} {:?} {:?} {:?}",
                c.id, c.name, c.state, c.caller, c.connected, c.dialplan, c.bridge_id, c.created_at
            )
        })
        .collect();
    out.extend(v.bridges.iter().map(|b| format!("{b:?}")));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ari_link_dropped_mid_call_resyncs_to_what_a_fresh_start_sees() {
    for name in ["01", "07", "21"] {
        let events = ari_events(name);
        let cuts = ari_cut_points(&events);
        // In the middle of the call: after the first bridge entry, and a hangup lost while down.
        let bridged = events
            .iter()
            .position(|l| event_type(l) == "ChannelEnteredBridge")
            .map(|i| i + 1)
            .expect("a bridge");
        let destroyed = events
            .iter()
            .position(|l| event_type(l) == "ChannelDestroyed")
            .map(|i| i + 1)
            .expect("a hangup");
        ari_drop_case(name, bridged, bridged).await;
        ari_drop_case(name, bridged, destroyed.max(bridged)).await;
        ari_drop_case(name, cuts[cuts.len() / 2], events.len()).await;
    }
}

/// accentd itself (`App::live`) is fed from both links: a whole scenario replayed through the
/// fake Asterisk creates every recorded channel in the live state, and ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accentd_feeds_its_live_state_from_both_links() {
    for name in ["01", "07", "10"] {
        let ami = fake_ami(name).await;
        let ari = fake_ari(name).await;
        let (ami_addr, ari_url) = (ami.addr().to_string(), ari.url());
        let server = crate::common::TestServer::start_with(|c| {
            c.ami.addr = ami_addr;
            c.ami.user = "accent".into();
            c.ami.password = "accent".into();
            c.ari.url = ari_url;
            c.ari.user = "accent".into();
            c.ari.password = "accent".into();
            c.ari.app = "accent".into();
        })
        .await;
        let app = server.app();
        let mut changes = app.live.subscribe();
        let start = Instant::now();
        while !(app.ami.as_ref().is_some_and(|c| c.is_connected())
            && app.ari.as_ref().is_some_and(|h| h.events.is_connected()))
        {
            assert!(start.elapsed() < WAIT, "{name}: links up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // AMI uniqueids and ARI channel ids are the same ids.
        let mut expected: BTreeSet<String> = ami
            .recording()
            .timeline()
            .iter()
            .filter(|m| m.get("Event") == Some("Newchannel"))
            .filter_map(|m| m.get("Uniqueid").map(str::to_owned))
            .collect();
        for line in ari_events(name) {
            if event_type(&line) == "ChannelCreated" {
                let v: Value = serde_json::from_str(&line).expect("json");
                expected.extend(v["channel"]["id"].as_str().map(str::to_owned));
            }
        }
        ami.replay_all();
        ari.replay_all();
        let mut seen = BTreeSet::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        let busy = || {
            let v = app.live.view();
            !(v.channels.is_empty() && v.bridges.is_empty() && v.calls.is_empty())
        };
        while seen != expected || busy() {
            let next = tokio::time::Instant::now() + Duration::from_millis(100);
            match tokio::time::timeout_at(next.min(deadline), changes.recv()).await {
                Ok(Ok(change)) => {
                    if let StateChange::ChannelCreated(c) = &*change {
                        seen.insert(c.id.clone());
                    }
                }
                Ok(Err(e)) => panic!("{name}: change stream: {e}"),
                // Quiet: the last changes may have been applied after the check above.
                Err(_) if seen == expected && !busy() => break,
                Err(_) if tokio::time::Instant::now() < deadline => continue,
                Err(_) => panic!(
                    "{name}: seen {seen:?}, expected {expected:?}, left {:?}",
                    app.live.view()
                ),
            }
        }
        let end = app.live.view();
        assert!(end.calls.is_empty() && end.bridges.is_empty(), "{name}: {end:?}");
    }
}

/// The AMI side of `ari_events_over_the_wire…`: the AMI timeline replayed over TCP step by
/// step builds, at each cut point, the state of the direct replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_events_over_the_wire_build_the_same_state_as_the_recording() {
    const KEYS: [&str; 6] = ["Newchannel", "Newstate", "BridgeEnter", "BridgeLeave", "Hold", "Hangup"];
    for name in ["01", "06", "07", "09", "10", "13", "24", "25"] {
        let fake = fake_ami(name).await;
        let recording = fake.recording().clone();
        let side = ami_side(&fake);
        let start = Instant::now();
        while fake.logins() == 0 {
            assert!(start.elapsed() < WAIT, "{name}: login");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let timeline = recording.timeline();
        let mut cuts: Vec<usize> = timeline
            .iter()
            .enumerate()
            .filter(|(_, m)| m.get("Event").is_some_and(|e| KEYS.contains(&e)))
            .map(|(i, _)| i + 1)
            .collect();
        cuts.push(timeline.len());
        cuts.dedup();
        let mut at = 0;
        for cut in cuts {
            fake.replay_next(cut - at);
            at = cut;
            eventually(
                &side.state,
                &direct_ami(&recording, cut),
                &format!("{name} after {cut} AMI events"),
            )
            .await;
        }
        let end = side.state.view();
        assert!(
            end.channels.is_empty() && end.calls.is_empty() && end.bridges.is_empty(),
            "{name}: empty at the end: {end:?}"
        );
    }
}
/// The same drop through AMI: `CoreShowChannels` and `DeviceStateList` rebuild the state.
async fn ami_drop_case(name: &str, cut: usize, resume: usize) {
    let fake = fake_ami(name).await;
    let recording = fake.recording().clone();
    let mut a = ami_side(&fake);
    resynced(&mut a, name).await;
    fake.replay_next(cut);
    let what = format!("{name}: AMI dropped after {cut}, back at {resume}");
    let direct = direct_ami(&recording, cut);
    eventually(&a.state, &direct, &what).await;

    fake.pause_accept().await;
    fake.drop_connections();
    let start = Instant::now();
    while fake.open_connections() > 0 {
        assert!(start.elapsed() < WAIT, "{what}: link down");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fake.replay_next(resume - cut);
    fake.resume_accept().await;
    resynced(&mut a, &what).await;

    let mut fresh = ami_side(&fake);
    resynced(&mut fresh, &what).await;
    assert_eq!(
        without_call_history(a.state.view()),
        without_call_history(fresh.state.view()),
        "{what}: resynced == fresh start"
    );
    let alive: BTreeSet<String> = a.state.channels().into_iter().map(|c| c.id).collect();
    let alive_in_recording: BTreeSet<String> = direct_ami(&recording, resume)
        .channels
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(alive, alive_in_recording, "{what}: no ghost, nobody lost");
}

/// The history of a call that no list tells: when it began (`CoreShowChannels` has only a
/// `Duration` in whole seconds), when its legs were answered and whether it was transferred.
/// A fresh start cannot know it; the resynced client, which saw it happen, rightly keeps it.
/// Everything else must be equal.
fn without_call_history(mut v: StateView) -> StateView {
    for call in &mut v.calls {
        call.created_at = None;
        call.transferred = false;
    }
    for ch in &mut v.channels {
        ch.answered_at = None;
    }
    v
}

/// Index just past the first message of the recording's timeline named `event`.
pub(crate) fn ami_position(recording: &AmiRecording, event: &str) -> usize {
    recording
        .timeline()
        .iter()
        .position(|m| m.get("Event") == Some(event))
        .map(|i| i + 1)
        .expect("event in the recording")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_link_dropped_mid_call_resyncs_to_what_a_fresh_start_sees() {
    for name in ["01", "07", "21"] {
        let recording = AmiRecording::load(&Scenario::load(name).expect("scenario")).expect("recording");
        let bridged = ami_position(&recording, "BridgeEnter");
        let hangup = ami_position(&recording, "Hangup");
        let len = recording.timeline().len();
        ami_drop_case(name, bridged, bridged).await;
        ami_drop_case(name, bridged, hangup.max(bridged)).await;
        ami_drop_case(name, bridged, len).await;
    }
}

/// Microseconds of an AMI `Timestamp: 1795870944.908592`.
fn ami_us(m: &accentd::ami::AmiMessage) -> Option<i64> {
    let (s, f) = m.get("Timestamp")?.split_once('.')?;
    let f = format!("{f:0<6}");
    Some(s.parse::<i64>().ok()? * 1_000_000 + f.get(..6)?.parse::<i64>().ok()?)
}

/// Microseconds of an ARI event's `timestamp`.
fn ari_us(line: &str) -> Option<i64> {
    let v: Value = serde_json::from_str(line).ok()?;
    let t = accentd::ari::parse_ari_timestamp(v["timestamp"].as_str()?).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// How many events of each stream happened at or before `t` (both recordings share one clock).
fn counts_at(recording: &AmiRecording, ari: &[String], t: i64) -> (usize, usize) {
    let ami = recording
        .timeline()
        .iter()
        .take_while(|m| ami_us(m).is_none_or(|u| u <= t))
        .count();
    let ari = ari.iter().take_while(|l| ari_us(l).is_none_or(|u| u <= t)).count();
    (ami, ari)
}

fn both_side(ami: &FakeAmi, ari: &FakeAri) -> Side {
    let shutdown = CancellationToken::new();
    let links = Links {
        ami: Some(ami_link(ami, &shutdown)),
        ari: Some(ari_links(ari, &shutdown)),
    };
    start_side(links, shutdown)
}

/// Waits until a resync after both links are up again has finished: the last `Resynced`
/// change once the stream has been quiet for a moment.
async fn settled(side: &mut Side, what: &str) {
    resynced(side, what).await;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), side.changes.recv()).await {}
}

/// Both links, as in production: dropped together mid-call while the call goes on, then the
/// state after reconnection equals a fresh start's (both resync from the same lists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_links_dropped_mid_call_resync_to_what_a_fresh_start_sees() {
    for name in ["01", "07", "21", "24"] {
        let recording = AmiRecording::load(&Scenario::load(name).expect("scenario")).expect("recording");
        let ari_lines = ari_events(name);
        let times: Vec<i64> = recording.timeline().iter().filter_map(ami_us).collect();
        let (first, last) = (times[0], times[times.len() - 1]);
        // Down from 40 % to 70 % of the scenario: whatever happened meanwhile is lost.
        let (down, up) = (first + (last - first) * 2 / 5, first + (last - first) * 7 / 10);
        let (ami_down, ari_down) = counts_at(&recording, &ari_lines, down);
        let (ami_up, ari_up) = counts_at(&recording, &ari_lines, up);
        let what = format!("{name}: both links down from {ami_down}/{ari_down} to {ami_up}/{ari_up}");

        let ami = fake_ami(name).await;
        let ari = fake_ari(name).await;
        let mut a = both_side(&ami, &ari);
        settled(&mut a, &what).await;
        ami.replay_next(ami_down);
        ari.replay_next(ari_down);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before: BTreeSet<String> = a.state.channels().into_iter().map(|c| c.id).collect();

        ami.pause_accept().await;
        ari.set_refusing(true);
        ami.drop_connections();
        ari.drop_connections(DropMode::Abort);
        assert!(ari.wait_for_connections(0, WAIT).await, "{what}: ARI down");
        let start = Instant::now();
        while ami.open_connections() > 0 {
            assert!(start.elapsed() < WAIT, "{what}: AMI down");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ami.replay_next(ami_up - ami_down);
        ari.replay_next(ari_up - ari_down);
        ami.resume_accept().await;
        ari.set_refusing(false);
        settled(&mut a, &what).await;

        let mut fresh = both_side(&ami, &ari);
        settled(&mut fresh, &what).await;
        assert_eq!(
            without_call_history(a.state.view()),
            without_call_history(fresh.state.view()),
            "{what}: resynced == fresh start"
        );
        let after: BTreeSet<String> = a.state.channels().into_iter().map(|c| c.id).collect();
        let truth: BTreeSet<String> = direct_ami(&recording, ami_up)
            .channels
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(after, truth, "{what}: no ghost, nobody lost (was {before:?})");
    }
}
