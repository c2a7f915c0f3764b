//! The AMI client against the fake Asterisk replaying the recorded sessions.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accentd::ami::{AmiClient, AmiClientOptions, AmiError, AmiMessage, Backoff, FrameLimits, LinkState, Originate};
use accentd::api::status::{Health, StatusRegistry};
use accentd::config::AmiConfig;
use accentd::fake_asterisk::ami::{AmiRecording, FakeAmi, FakeAmiOptions, Replay};
use accentd::fake_asterisk::Scenario;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "Sup3r-S3cret-AMI-pw";
const WAIT: Duration = Duration::from_secs(3);

fn options() -> AmiClientOptions {
    AmiClientOptions {
        action_timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(800),
        ping_interval: Duration::from_secs(30),
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(150),
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        },
        ..AmiClientOptions::default()
    }
}

fn fake_options(replay: Replay) -> FakeAmiOptions {
    FakeAmiOptions {
        user: "accent".into(),
        secret: SECRET.into(),
        replay,
        ..FakeAmiOptions::default()
    }
}

async fn fake(scenario: &str, replay: Replay) -> FakeAmi {
    let scenario = Scenario::load(scenario).expect("scenario");
    FakeAmi::start(&scenario, fake_options(replay))
        .await
        .expect("fake starts")
}

struct Client {
    client: AmiClient,
    status: Arc<StatusRegistry>,
    shutdown: CancellationToken,
    /// Subscribed before the first connection: nothing is missed.
    events: broadcast::Receiver<Arc<AmiMessage>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn spawn(addr: String, secret: &str, options: AmiClientOptions) -> Client {
    let status = Arc::new(StatusRegistry::default());
    let shutdown = CancellationToken::new();
    let config = AmiConfig {
        addr,
        user: "accent".into(),
        password: secret.into(),
    };
    let client = AmiClient::spawn_with(config, options, status.clone(), shutdown.clone());
    let events = client.subscribe();
    Client {
        client,
        status,
        shutdown,
        events,
    }
}

async fn connected(fake: &FakeAmi, options: AmiClientOptions) -> Client {
    let c = spawn(fake.addr().to_string(), SECRET, options);
    wait_session(&mut c.client.link(), 1).await;
    c
}

/// Waits for `Connected` with at least this session number; returns every state seen.
async fn wait_session(link: &mut watch::Receiver<LinkState>, session: u64) -> Vec<LinkState> {
    let mut seen = vec![link.borrow_and_update().clone()];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(LinkState::Connected { session: s, .. }) = seen.last() {
            if *s >= session {
                return seen;
            }
        }
        match tokio::time::timeout_at(deadline, link.changed()).await {
            Ok(Ok(())) => seen.push(link.borrow_and_update().clone()),
            other => panic!("no session {session} (got {other:?}); states seen: {seen:?}"),
        }
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn next_event(rx: &mut broadcast::Receiver<Arc<AmiMessage>>) -> Arc<AmiMessage> {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("event stream open")
}

fn ami_status(status: &StatusRegistry) -> Option<(Health, Option<String>)> {
    status.snapshot().get("ami").map(|c| (c.status, c.detail.clone()))
}

/// Captures every log line (all levels) of this test's thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn login_ok_reports_status_ok_with_the_recorded_login_shape() {
    let fake = fake("01", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    assert_eq!(ami_status(&c.status), Some((Health::Ok, None)));
    assert!(c.client.is_connected());
    assert_eq!(fake.logins(), 1);
    let login = &fake.received_actions()[0];
    // Same headers, same order as the recorded client (ami-sent.raw).
    let keys: Vec<&str> = login.headers().map(|(k, _)| k).collect();
    assert_eq!(keys, ["Action", "ActionID", "Username", "Secret", "Events"]);
    assert_eq!(login.get("Events"), Some("on"));
    assert!(login.action_id().is_some_and(|id| id.starts_with("accentd-")));
    c.client.ping().await.expect("ping");
    assert!(!format!("{:?}", c.client).contains(SECRET));
}

#[tokio::test]
async fn wrong_secret_fails_clearly_keeps_retrying_and_recovers() {
    let logs = Logs::default();
    let _guard = logs.install();
    let fake = fake("01", Replay::Manual).await;
    let c = spawn(fake.addr().to_string(), "wrong-Pa55word", options());
    wait_until("two refused logins", || fake.failed_logins() >= 2).await;
    assert_eq!(
        ami_status(&c.status),
        Some((Health::Fail, Some("authentication failed".into())))
    );
    assert_eq!(
        *c.client.link().borrow(),
        LinkState::Disconnected {
            reason: "authentication failed".into()
        }
    );
    assert_eq!(c.client.ping().await, Err(AmiError::NotConnected));
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("authentication failed") && l.contains("\"accent\"")),
        "{text}"
    );
    assert!(!text.contains("wrong-Pa55word"), "the secret was logged: {text}");

    // The operator fixes the secret on the Asterisk side: the next retry logs in.
    fake.set_credentials("accent", "wrong-Pa55word");
    wait_session(&mut c.client.link(), 1).await;
    assert_eq!(ami_status(&c.status).map(|s| s.0), Some(Health::Ok));
    assert!(!logs.text().contains("wrong-Pa55word"));
}

#[tokio::test]
async fn concurrent_actions_each_get_their_own_reply() {
    let fake = fake("14", Replay::AfterLogin).await;
    let c = connected(&fake, options()).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let client = c.client.clone();
        tasks.push(tokio::spawn(async move {
            let (action, check): (AmiMessage, fn(&accentd::ami::AmiReply) -> bool) = match i % 5 {
                0 => (
                    AmiMessage::new()
                        .with("Action", "Ping")
                        .with("ActionID", format!("mine-{i}")),
                    |r| r.response.get("Ping") == Some("Pong"),
                ),
                1 => (
                    AmiMessage::new()
                        .with("Action", "Getvar")
                        .with("Channel", "Local/1001@caller-000001bc;1")
                        .with("Variable", "ACCENT_TAG"),
                    |r| r.response.get("Value") == Some("s14"),
                ),
                2 => (AmiMessage::new().with("Action", "CoreSettings"), |r| {
                    r.response.get("AsteriskVersion") == Some("22.10.1")
                }),
                3 => (AmiMessage::new().with("Action", "DeviceStateList"), |r| {
                    r.list_items().count() == 12 && r.events.iter().all(|e| e.action_id() == Some(&r.action_id))
                }),
                _ => (AmiMessage::new().with("Action", "CoreStatus"), |r| {
                    r.response.get("CoreProcessedCalls") == Some("666")
                }),
            };
            let reply = client.send(action).await.expect("reply");
            assert_eq!(reply.response.action_id(), Some(reply.action_id.as_str()));
            assert!(check(&reply), "action {i}: {reply:?}");
            if i % 5 == 0 {
                assert!(reply.action_id.ends_with(&format!("-mine-{i}")), "{}", reply.action_id);
            }
            reply.action_id
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        assert!(ids.insert(t.await.expect("task")), "ActionIDs are unique");
    }
    assert_eq!(ids.len(), 60);
}

#[tokio::test]
async fn event_lists_are_collected_and_follow_the_replayed_state() {
    let fake = fake("14", Replay::Manual).await;
    let mut c = connected(&fake, options()).await;
    // Nothing replayed yet: no channel, as in the idle CoreShowChannels of the recording.
    assert_eq!(c.client.core_show_channels().await.expect("idle"), []);
    fake.replay_until("csc-busy");
    let channels = c.client.core_show_channels().await.expect("busy");
    // The channels the replayed events describe, in creation order (Asterisk listed them in
    // its hash order: ;1, ;2, dev ;2, dev ;1).
    let names: Vec<_> = channels.iter().filter_map(|e| e.get("Channel")).collect();
    assert_eq!(
        names,
        [
            "Local/1001@caller-000001bc;1",
            "Local/1001@caller-000001bc;2",
            "Local/1002@dev-000001bd;1",
            "Local/1002@dev-000001bd;2"
        ]
    );
    assert!(channels.iter().all(|e| e.event() == Some("CoreShowChannel")));
    let devices = c.client.device_state_list().await.expect("devices");
    assert_eq!(devices.len(), 12);
    assert!(devices
        .iter()
        .any(|d| d.get("Device") == Some("MWI:1000@default") && d.get("State") == Some("INUSE")));
    assert_eq!(c.client.extension_state_list().await.expect("hints").len(), 6);
    let reply = c
        .client
        .send(AmiMessage::new().with("Action", "QueueStatus"))
        .await
        .expect("queues");
    assert_eq!(reply.list_items().count(), 6);
    assert_eq!(reply.events.last().and_then(|e| e.event()), Some("QueueStatusComplete"));

    // List events are broadcast too, in order, carrying their ActionID.
    let mut list_events = 0;
    while let Ok(e) = c.events.try_recv() {
        if e.action_id().is_some_and(|id| id.starts_with("accentd-")) {
            list_events += 1;
        }
    }
    assert_eq!(list_events, 1 + 5 + 13 + 7 + 7);
}

/// A list item's headers but `ActionID` and `Duration` (which counts real time).
fn comparable(m: &AmiMessage) -> Vec<(String, String)> {
    m.headers()
        .filter(|(k, _)| *k != "ActionID" && *k != "Duration")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn core_show_channels_mid_call_lists_what_asterisk_listed() {
    let fake = fake("14", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    fake.replay_until("csc-busy");
    let mut got: Vec<_> = c
        .client
        .core_show_channels()
        .await
        .expect("busy")
        .iter()
        .map(comparable)
        .collect();
    let busy = fake.recording().exchange("csc-busy").expect("recorded").clone();
    let mut want: Vec<_> = busy
        .replies
        .iter()
        .filter(|m| m.event() == Some("CoreShowChannel"))
        .map(comparable)
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got.len(), 4);
    assert_eq!(got, want);
    // Duration is there, HH:MM:SS.
    let raw = c
        .client
        .send(AmiMessage::new().with("Action", "CoreShowChannels"))
        .await
        .expect("raw list");
    assert_eq!(raw.response.get("Message"), Some("Channels will follow"));
    let complete = raw.events.last().expect("complete");
    assert_eq!(complete.event(), Some("CoreShowChannelsComplete"));
    assert_eq!(complete.get("ListItems"), Some("4"));
    let hh_mm_ss = regex::Regex::new("^[0-9]{2,}:[0-5][0-9]:[0-5][0-9]$").expect("re");
    for item in raw.list_items() {
        let d = item.get("Duration").expect("duration");
        assert!(hh_mm_ss.is_match(d), "{d}");
    }
}

#[tokio::test]
async fn resync_after_a_reconnection_sees_the_replay_position() {
    let fake = fake("01", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    let timeline = fake.recording().timeline().to_vec();
    // Up to the answer of the call: both Local pairs are up.
    let answered = timeline
        .iter()
        .position(|e| e.event() == Some("BridgeEnter"))
        .expect("a bridge")
        + 1;
    fake.replay_next(answered);
    fake.drop_connections();
    wait_session(&mut c.client.link(), 2).await;
    let live: Vec<String> = {
        let mut alive = Vec::new();
        for e in &timeline[..answered] {
            match e.event() {
                Some("Newchannel") => alive.push(e.get("Uniqueid").expect("id").to_owned()),
                Some("Hangup") => alive.retain(|u| Some(u.as_str()) != e.get("Uniqueid")),
                _ => {}
            }
        }
        alive
    };
    let channels = c.client.core_show_channels().await.expect("mid-call");
    let ids: Vec<_> = channels.iter().filter_map(|e| e.get("Uniqueid")).collect();
    assert_eq!(ids, live);
    assert!(!ids.is_empty());
    let bridged = channels.iter().filter(|e| e.get("BridgeId") != Some("")).count();
    assert_eq!(bridged, 1, "one BridgeEnter replayed so far: {channels:?}");
    // Local devices are not in Asterisk's device state cache: none listed.
    assert_eq!(c.client.device_state_list().await.expect("devices"), []);

    fake.replay_all();
    fake.drop_connections();
    wait_session(&mut c.client.link(), 3).await;
    assert_eq!(c.client.core_show_channels().await.expect("after the call"), []);
}

#[tokio::test]
async fn device_and_hint_lists_follow_the_replayed_changes() {
    let fake = fake("21", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    // No recorded DeviceStateList in 21: nothing known before the first change.
    assert_eq!(c.client.device_state_list().await.expect("devices"), []);
    assert_eq!(c.client.extension_state_list().await.expect("hints"), []);
    let timeline = fake.recording().timeline().to_vec();
    let ringing = timeline
        .iter()
        .position(|e| e.event() == Some("DeviceStateChange") && e.get("State") == Some("RINGING"))
        .expect("a ringing device");
    fake.replay_next(ringing + 1);
    let state_of = |list: &[AmiMessage], device: &str| {
        list.iter()
            .find(|d| d.get("Device") == Some(device))
            .and_then(|d| d.get("State"))
            .map(str::to_owned)
    };
    let devices = c.client.device_state_list().await.expect("devices");
    assert_eq!(
        state_of(&devices, timeline[ringing].get("Device").expect("device")).as_deref(),
        Some("RINGING")
    );
    assert!(devices.iter().all(|d| d.event() == Some("DeviceStateChange")));

    fake.replay_all();
    let devices = c.client.device_state_list().await.expect("devices");
    let last = |device: &str| {
        timeline
            .iter()
            .rev()
            .find(|e| e.event() == Some("DeviceStateChange") && e.get("Device") == Some(device))
            .and_then(|e| e.get("State"))
            .map(str::to_owned)
    };
    assert_eq!(devices.len(), 2);
    for d in ["PJSIP/2001", "PJSIP/2002"] {
        assert_eq!(state_of(&devices, d), last(d), "{d}");
    }
    let hints = c.client.extension_state_list().await.expect("hints");
    let last_hint = timeline
        .iter()
        .rev()
        .find(|e| e.event() == Some("ExtensionStatus"))
        .expect("a hint change");
    let keys: Vec<_> = hints[0].headers().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        ["Event", "ActionID", "Exten", "Context", "Hint", "Status", "StatusText"]
    );
    let same = hints
        .iter()
        .find(|h| h.get("Exten") == last_hint.get("Exten") && h.get("Context") == last_hint.get("Context"))
        .expect("listed");
    assert_eq!(same.get("Status"), last_hint.get("Status"));
    assert_eq!(same.get("StatusText"), last_hint.get("StatusText"));
}

#[tokio::test]
async fn scripted_answers_win_over_the_model() {
    let fake = fake("14", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    fake.replay_until("csc-busy");
    let item = AmiMessage::new()
        .with("Event", "CoreShowChannel")
        .with("ActionID", "x")
        .with("Channel", "PJSIP/scripted-1");
    fake.respond_with(
        "coreshowchannels",
        Some(vec![
            AmiMessage::new()
                .with("Response", "Success")
                .with("ActionID", "x")
                .with("EventList", "start"),
            item,
            AmiMessage::new()
                .with("Event", "CoreShowChannelsComplete")
                .with("ActionID", "x")
                .with("EventList", "Complete")
                .with("ListItems", "1"),
        ]),
    );
    let channels = c.client.core_show_channels().await.expect("scripted");
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].get("Channel"), Some("PJSIP/scripted-1"));
    fake.respond_with("CoreShowChannels", None);
    assert_eq!(c.client.core_show_channels().await.expect("model").len(), 4);
}

#[tokio::test]
async fn command_and_typed_helpers() {
    let fake = fake("14", Replay::Manual).await;
    let mut c = connected(&fake, options()).await;
    let out = c.client.command("core show version").await.expect("command");
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("Asterisk 22.10.1 built by root"));

    let mut o = Originate::to_extension("Local/1001@caller/n", "from-internal", "1002");
    o.caller_id = Some("\"Alice\" <1001>".into());
    let reply = c.client.originate(&o).await.expect("originate");
    assert_eq!(reply.response.get("Message"), Some("Originate successfully queued"));
    let mut follow_up = next_event(&mut c.events).await;
    while follow_up.event() != Some("OriginateResponse") {
        follow_up = next_event(&mut c.events).await;
    }
    assert_eq!(follow_up.event(), Some("OriginateResponse"));
    assert_eq!(follow_up.action_id(), Some(reply.action_id.as_str()));

    c.client
        .hangup("Local/1001@caller-000001bc;1", Some(16))
        .await
        .expect("hangup");
    let sent = fake.received_actions();
    let hangup = sent.last().expect("sent");
    assert_eq!(hangup.get("Cause"), Some("16"));
    assert!(matches!(
        c.client.hangup("/.*/", None).await,
        Err(AmiError::InvalidAction(_))
    ));
    assert_eq!(fake.received_actions().len(), sent.len(), "refused before sending");

    // 07b recorded a Redirect.
    let fake_07b = self::fake("07b", Replay::AfterLogin).await;
    let c07 = connected(&fake_07b, options()).await;
    c07.client
        .redirect("Local/1001@caller-0000000c;1", "from-internal", "1003", 1)
        .await
        .expect("redirect");
    let redirect = fake_07b.received_actions().pop().expect("sent");
    let keys: Vec<&str> = redirect.headers().map(|(k, _)| k).collect();
    assert_eq!(keys, ["Action", "ActionID", "Channel", "Context", "Exten", "Priority"]);
}

#[tokio::test]
async fn error_responses_map_to_action_failed() {
    let fake = fake("14", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    let err = c
        .client
        .send(AmiMessage::new().with("Action", "NoSuchAction"))
        .await
        .expect_err("unknown action");
    assert_eq!(
        err,
        AmiError::ActionFailed {
            message: "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands."
                .into()
        }
    );
    let mut bad = Originate::to_extension("Local/1001@caller/n", "from-internal", "0000");
    bad.caller_id = Some("\"Alice\" <1001>".into());
    assert_eq!(
        c.client.originate(&bad).await,
        Err(AmiError::ActionFailed {
            message: "Extension does not exist.".into()
        })
    );
    fake.respond_with(
        "Reload",
        Some(vec![AmiMessage::new()
            .with("Response", "Error")
            .with("ActionID", "x")
            .with("Message", "No such module")]),
    );
    assert_eq!(
        c.client.reload(Some("nope.so")).await,
        Err(AmiError::ActionFailed {
            message: "No such module".into()
        })
    );
    // The link survives errors.
    c.client.ping().await.expect("still up");
    assert!(matches!(
        c.client.send(AmiMessage::new().with("Channel", "x")).await,
        Err(AmiError::InvalidAction(_))
    ));
}

#[tokio::test]
async fn a_stalled_server_times_out_then_the_ping_drops_the_link() {
    let fake = fake("01", Replay::Manual).await;
    let opts = AmiClientOptions {
        action_timeout: Duration::from_millis(300),
        ping_interval: Duration::from_millis(200),
        ..options()
    };
    let c = connected(&fake, opts).await;
    let mut link = c.client.link();
    fake.stall(true);
    let started = Instant::now();
    assert_eq!(
        c.client.ping().await,
        Err(AmiError::Timeout(Duration::from_millis(300)))
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // The keep-alive gets no answer either: the link is declared dead.
    tokio::time::timeout(WAIT, link.wait_for(|s| !s.is_connected()))
        .await
        .expect("link dropped")
        .expect("watch");
    let reason = match &*link.borrow() {
        LinkState::Disconnected { reason } => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert!(reason.contains("Ping"), "{reason}");
    fake.stall(false);
    wait_session(&mut link, 2).await;
    c.client.ping().await.expect("ping after recovery");
}

#[tokio::test]
async fn not_connected_fails_fast_while_asterisk_is_down() {
    let fake = fake("01", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    let mut link = c.client.link();
    fake.pause_accept().await;
    fake.drop_connections();
    tokio::time::timeout(WAIT, link.wait_for(|s| !s.is_connected()))
        .await
        .expect("down")
        .expect("watch");
    // Let a few refused connection attempts go by.
    wait_until("status fail", || {
        ami_status(&c.status)
            .is_some_and(|(h, d)| h == Health::Fail && d.as_deref().is_some_and(|d| d.starts_with("cannot connect")))
    })
    .await;
    let started = Instant::now();
    assert_eq!(c.client.ping().await, Err(AmiError::NotConnected));
    assert_eq!(c.client.core_show_channels().await, Err(AmiError::NotConnected));
    assert!(started.elapsed() < Duration::from_millis(100));
    fake.resume_accept().await;
    wait_session(&mut link, 2).await;
    c.client.ping().await.expect("back");
}

#[tokio::test]
async fn reconnects_after_drop_and_events_resume() {
    let fake = fake("01", Replay::Manual).await;
    let mut c = connected(&fake, options()).await;
    let events = &mut c.events;
    let mut link = c.client.link();
    let rec = fake.recording().clone();
    // Login events, then the first 10 timeline events.
    for expected in rec.login_events() {
        assert_eq!(next_event(events).await.as_ref(), expected);
    }
    assert_eq!(fake.replay_next(10), 10);
    for expected in &rec.timeline()[..10] {
        assert_eq!(next_event(events).await.as_ref(), expected);
    }
    // A pending action fails with ConnectionLost when the link drops under it.
    fake.stall(true);
    let pending = {
        let client = c.client.clone();
        tokio::spawn(async move { client.ping().await })
    };
    wait_until("ping sent", || {
        fake.received_actions().last().and_then(|a| a.action()) == Some("Ping")
    })
    .await;
    fake.stall(false);
    fake.drop_connections();
    assert_eq!(pending.await.expect("task"), Err(AmiError::ConnectionLost));
    let seen = wait_session(&mut link, 2).await;
    assert!(
        seen.iter().any(|s| matches!(s, LinkState::Disconnected { .. })),
        "{seen:?}"
    );
    assert_eq!(fake.logins(), 2);
    assert_eq!(ami_status(&c.status), Some((Health::Ok, None)));
    // A new login, new login events; then the timeline goes on where Asterisk is.
    for expected in rec.login_events() {
        assert_eq!(next_event(events).await.as_ref(), expected);
    }
    assert_eq!(fake.replay_next(5), 5);
    for expected in &rec.timeline()[10..15] {
        assert_eq!(next_event(events).await.as_ref(), expected);
    }
}

#[tokio::test]
async fn scenario_01_events_arrive_in_recorded_order() {
    let fake = fake("01", Replay::AfterLogin).await;
    let mut c = spawn(fake.addr().to_string(), SECRET, options());
    let events = &mut c.events;
    // Every event of ami.raw without ActionID, byte for byte, in order.
    let scenario = Scenario::load("01").expect("scenario");
    let raw = scenario.read("ami.raw").expect("raw").expect("present");
    let mut framer = accentd::ami::AmiFramer::new(FrameLimits::default());
    let expected: Vec<AmiMessage> = accentd::ami::frame_all(&mut framer, &raw)
        .into_iter()
        .filter_map(|f| match f {
            Ok(accentd::ami::Frame::Message(m)) if m.event().is_some() && m.action_id().is_none() => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(expected.len(), 148);
    for (i, want) in expected.iter().enumerate() {
        let got = next_event(events).await;
        assert_eq!(got.to_bytes(), want.to_bytes(), "event {i}");
    }
    assert!(c.events.try_recv().is_err(), "nothing more");
}

#[tokio::test]
async fn burst_scenario_replays_through_the_client() {
    use std::io::Read;
    let scenario = Scenario::load("15").expect("scenario");
    let gunzip = |file: &str| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&scenario.read(file).expect("read").expect("present")[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    };
    // The first 1.5 MB (~3,500 events; the whole 12 MB takes seconds to frame unoptimized),
    // cut after a message.
    let raw = gunzip("ami.raw.gz");
    let cut = memchr::memmem::rfind(&raw[..1_500_000], b"\r\n\r\n").expect("a message end") + 4;
    let rec = AmiRecording::from_bytes(&raw[..cut], &gunzip("ami-sent.raw.gz")).expect("recording");
    let total = rec.unsolicited_events().count();
    let fake = FakeAmi::start_with(rec, fake_options(Replay::Manual))
        .await
        .expect("fake");
    let opts = AmiClientOptions {
        event_capacity: total + 16,
        ..options()
    };
    let mut c = connected(&fake, opts).await;
    let events = &mut c.events;
    let logins = fake.recording().login_events().len();
    for _ in 0..logins {
        next_event(events).await;
    }
    fake.replay_all();
    let mut n = logins;
    while n < total {
        next_event(events).await;
        n += 1;
    }
    assert!(total > 3_000, "{total}");
    c.client.ping().await.expect("still up");
}

/// Connects, lets the fake send `bad`, and checks: an ERROR log, a reconnect, no panic.
async fn bad_server_input(bad: &[u8], close_after: bool, limits: FrameLimits) -> String {
    let logs = Logs::default();
    let _guard = logs.install();
    let fake = fake("01", Replay::Manual).await;
    let c = connected(&fake, AmiClientOptions { limits, ..options() }).await;
    let mut link = c.client.link();
    fake.send_raw(bad);
    if close_after {
        fake.drop_connections();
    }
    wait_session(&mut link, 2).await;
    assert_eq!(fake.logins(), 2);
    c.client.ping().await.expect("works after reconnect");
    let text = logs.text();
    assert!(!text.contains(SECRET), "secret logged: {text}");
    text
}

#[tokio::test]
async fn garbage_from_the_server_is_logged_and_the_link_reconnects() {
    let mut garbage: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    garbage.extend_from_slice(b"\r\nEvent: X\0Y\r\n\r\n");
    let text = bad_server_input(&garbage, false, FrameLimits::default()).await;
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("bad data on the AMI link")),
        "{text}"
    );
}

#[tokio::test]
async fn an_overlong_line_is_logged_and_the_link_reconnects() {
    let limits = FrameLimits {
        max_line_bytes: 1024,
        ..FrameLimits::default()
    };
    let mut long = b"Event: Big\r\nValue: ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 10_000));
    long.extend_from_slice(b"\r\n\r\n");
    let text = bad_server_input(&long, false, limits).await;
    assert!(text.contains("longer than 1024 bytes"), "{text}");
}

#[tokio::test]
async fn a_server_closing_mid_message_is_logged_and_the_link_reconnects() {
    let text = bad_server_input(
        b"Event: Newchannel\r\nChannel: PJSIP/2001-0000",
        true,
        FrameLimits::default(),
    )
    .await;
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("cut inside a message")),
        "{text}"
    );
    assert!(text.contains("AMI link lost"), "{text}");
}

#[tokio::test]
async fn shutdown_logs_off_and_stops() {
    let fake = fake("01", Replay::Manual).await;
    let c = connected(&fake, options()).await;
    c.shutdown.cancel();
    tokio::time::timeout(WAIT, c.client.stopped()).await.expect("stops");
    assert_eq!(c.client.ping().await, Err(AmiError::NotConnected));
    wait_until("logoff received", || {
        fake.received_actions().last().and_then(|a| a.action()) == Some("Logoff")
    })
    .await;
    wait_until("connection closed", || fake.open_connections() == 0).await;
}

#[tokio::test]
async fn the_fake_survives_garbage_from_a_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = fake("01", Replay::Manual).await;
    let mut s = tokio::net::TcpStream::connect(fake.addr()).await.expect("connect");
    let mut garbage: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(40503) >> 7) as u8).collect();
    garbage.extend_from_slice(b"\0\r\n\r\nno colon line\r\n\r\n");
    s.write_all(&garbage).await.expect("write");
    s.write_all(
        b"Action: Ping\r\nActionID: p\r\n\r\nAction: Login\r\nActionID: l\r\nUsername: accent\r\nSecret: x\r\n\r\n",
    )
    .await
    .expect("write");
    let mut text = String::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .expect("server closes after the failed login");
    assert!(text.starts_with("Asterisk Call Manager/11.0.0\r\n"), "{text}");
    assert!(
        text.contains("Response: Error\r\nActionID: p\r\nMessage: Permission denied\r\n\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Response: Error\r\nActionID: l\r\nMessage: Authentication failed\r\n\r\n"),
        "{text}"
    );
    assert!(text.contains("Message: Missing action in request"), "{text}");
    // Still serving.
    let c = connected(&fake, options()).await;
    c.client.ping().await.expect("ping");
}
