//! The ARI REST client and events websocket against the fake Asterisk,
//! which replays the recordings of a real Asterisk 22.10.1.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use accentd::api::status::{Health, StatusRegistry};
use accentd::ari::backoff::BackoffPolicy;
use accentd::ari::client::*;
use accentd::ari::models::*;
use accentd::ari::{AriClient, AriError, AriEvent, AriEvents, AriEventsOptions, LinkState};
use accentd::config::{AriConfig, Config};
use accentd::fake_asterisk::ari::{DropMode, FakeAri, FakeAriOptions, Replay};
use accentd::fake_asterisk::scenario::Scenario;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(4);

async fn fake(scenario: &str, replay: Replay) -> FakeAri {
    let scenario = Scenario::load(scenario).expect("scenario");
    FakeAri::start(
        &scenario,
        FakeAriOptions {
            replay,
            ..FakeAriOptions::default()
        },
    )
    .await
    .expect("fake ARI starts")
}

fn config(fake: &FakeAri, password: &str) -> AriConfig {
    AriConfig {
        url: fake.url(),
        user: "accent".into(),
        password: password.into(),
        app: "accentd".into(),
    }
}

fn client(fake: &FakeAri) -> AriClient {
    AriClient::new(&config(fake, "accent")).expect("client")
}

fn fast_options() -> AriEventsOptions {
    AriEventsOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        },
        ..AriEventsOptions::default()
    }
}

struct Events {
    events: AriEvents,
    rx: broadcast::Receiver<Arc<AriEvent>>,
    link: watch::Receiver<LinkState>,
    status: Arc<StatusRegistry>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start_events(config: &AriConfig) -> Events {
    start_events_with(config, fast_options())
}

fn start_events_with(config: &AriConfig, options: AriEventsOptions) -> Events {
    let status = Arc::new(StatusRegistry::default());
    let shutdown = CancellationToken::new();
    let (events, task) = AriEvents::start(config, status.clone(), shutdown.clone(), options);
    let rx = events.subscribe();
    let link = events.link();
    Events {
        events,
        rx,
        link,
        status,
        shutdown,
        task,
    }
}

impl Events {
    async fn recv(&mut self) -> Arc<AriEvent> {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("an event in time")
            .expect("event channel open")
    }

    async fn connected(&mut self) -> LinkState {
        tokio::time::timeout(WAIT, self.link.wait_for(|l| l.is_connected()))
            .await
            .expect("connected in time")
            .expect("link watch open")
            .clone()
    }

    async fn disconnected(&mut self) -> LinkState {
        tokio::time::timeout(WAIT, self.link.wait_for(|l| !l.is_connected()))
            .await
            .expect("disconnected in time")
            .expect("link watch open")
            .clone()
    }

    fn ari_status(&self) -> (Health, String) {
        let snapshot = self.status.snapshot();
        let s = &snapshot["ari"];
        (s.status, s.detail.clone().unwrap_or_default())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("actor stops")
            .expect("actor did not panic");
    }
}

/// Polls `check` until it holds (or fails the test after [`WAIT`]).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The ids of the channels and bridges alive after each recorded event,
/// computed straight from the JSON (independently of the fake's model).
fn alive_after_each_event(lines: &[Arc<str>]) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let mut channels = BTreeSet::new();
    let mut bridges = BTreeSet::new();
    let mut out = vec![(channels.clone(), bridges.clone())];
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("json");
        let channel_id = v["channel"]["id"].as_str().map(str::to_owned);
        let bridge_id = v["bridge"]["id"].as_str().map(str::to_owned);
        match v["type"].as_str() {
            Some("ChannelCreated") => {
                channels.insert(channel_id.expect("channel id"));
            }
            Some("ChannelDestroyed") => {
                channels.remove(&channel_id.expect("channel id"));
            }
            Some("BridgeCreated") => {
                bridges.insert(bridge_id.expect("bridge id"));
            }
            Some("BridgeDestroyed") => {
                bridges.remove(&bridge_id.expect("bridge id"));
            }
            _ => {}
        }
        out.push((channels.clone(), bridges.clone()));
    }
    out
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> BTreeSet<String> {
    items.iter().map(|i| id(i).to_owned()).collect()
}

// ------------------------------------------------------------------- REST

#[tokio::test]
async fn channels_and_bridges_follow_the_replay_of_every_scenario() {
    let root = Scenario::default_root();
    for scenario in Scenario::all_in(&root).expect("scenarios") {
        if scenario.name.starts_with("15-") {
            continue; // the burst: same code path, 20,000 events
        }
        let fake = FakeAri::start(
            &scenario,
            FakeAriOptions {
                replay: Replay::Manual,
                ..FakeAriOptions::default()
            },
        )
        .await
        .expect("fake");
        let client = client(&fake);
        let expected = alive_after_each_event(&fake.events());
        let mut position = 0;
        let mut saw_channels = false;
        loop {
            let (want_channels, want_bridges) = &expected[position];
            let channels = client.channels().await.expect("GET /channels");
            let bridges = client.bridges().await.expect("GET /bridges");
            assert_eq!(
                &ids(&channels, |c| &c.id),
                want_channels,
                "{} @{position}",
                scenario.name
            );
            assert_eq!(&ids(&bridges, |b| &b.id), want_bridges, "{} @{position}", scenario.name);
            saw_channels |= !channels.is_empty();
            if let Some(c) = channels.last() {
                let one = client.channel(&c.id).await.expect("GET /channels/{id}");
                assert_eq!(&one, c, "{}: channel {}", scenario.name, c.id);
            }
            if let Some(b) = bridges.last() {
                assert_eq!(&client.bridge(&b.id).await.expect("GET /bridges/{id}"), b);
            }
            if fake.replay_next(9) == 0 {
                break;
            }
            position = fake.position();
        }
        assert!(
            client.channels().await.expect("channels").is_empty(),
            "{}: ghosts",
            scenario.name
        );
        assert!(saw_channels || scenario.name.starts_with("20-"), "{}", scenario.name);
        fake.stop().await;
    }
}

#[tokio::test]
async fn mid_call_snapshot_shows_the_bridge_members() {
    let fake = fake("05", Replay::Manual).await;
    let client = client(&fake);
    // Release up to the second ChannelEnteredBridge of s05-bridge.
    let events = fake.events();
    let second_enter = events
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(r#""type":"ChannelEnteredBridge""#))
        .nth(1)
        .map(|(i, _)| i)
        .expect("two ChannelEnteredBridge");
    fake.replay_next(second_enter + 1);
    let bridge = client.bridge("s05-bridge").await.expect("bridge");
    let members: BTreeSet<&str> = bridge.channels.iter().map(String::as_str).collect();
    assert_eq!(members, BTreeSet::from(["s05-1001", "s05-1002"]));
    assert_eq!(bridge.bridge_class, "stasis");
    let ch = client.channel("s05-1001;2").await.expect("the ;2 half, id with a ';'");
    assert_eq!(ch.name, "Local/1001@dev-00000005;2");
    assert_eq!(fake.channels().len(), client.channels().await.expect("channels").len());
}

#[tokio::test]
async fn vanished_channels_and_bridges_are_not_found() {
    let fake = fake("05", Replay::Manual).await;
    fake.replay_all();
    let client = client(&fake);
    let not_found = |r: Result<_, AriError>, message: &str| match r {
        Err(AriError::NotFound { message: m }) => assert_eq!(m, message),
        other => panic!("expected NotFound({message}), got {other:?}"),
    };
    not_found(client.channel("s05-1001").await.map(|_| ()), "Channel not found");
    not_found(client.channel("s05-1001;2").await.map(|_| ()), "Channel not found");
    not_found(client.answer("s05-1001;2").await, "Channel not found");
    not_found(client.hold("s05-1002").await, "Channel not found");
    not_found(
        client.hangup("s05-1001;2", Some(HangupReason::Normal)).await,
        "Channel not found",
    );
    not_found(client.bridge("s05-bridge").await.map(|_| ()), "Bridge not found");
    not_found(
        client
            .add_channels("s05-bridge", &["s05-1001"], &AddChannelOptions::default())
            .await,
        "Bridge not found",
    );
    let e = client.channel("nope").await.expect_err("404");
    assert_eq!(e.status(), Some(404));
    assert!(!e.is_unknown_route());
}

#[tokio::test]
async fn an_unrecorded_originate_gets_asterisks_checks_and_a_new_outgoing_channel() {
    let fake = fake("21", Replay::Manual).await;
    let client = client(&fake);
    let mut vars = serde_json::Map::new();
    vars.insert("ACCENT_USERUUID".into(), Value::from("u-1"));
    let ch = client
        .originate(&OriginateParams {
            endpoint: "PJSIP/2001".into(),
            extension: Some("2002".into()),
            context: Some("default".into()),
            priority: Some(1),
            caller_id: Some("\"2002\" <2002>".into()),
            channel_id: Some("o-1".into()),
            variables: Some(vars),
            ..OriginateParams::default()
        })
        .await
        .expect("originate");
    assert_eq!(ch.id, "o-1");
    assert_eq!(ch.state, ChannelState::Down);
    assert!(ch.name.starts_with("PJSIP/2001-"), "{}", ch.name);
    assert_eq!((ch.caller.name.as_str(), ch.caller.number.as_str()), ("2002", "2002"));
    assert!(ch.created_at().is_some());
    let posted = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("logged");
    assert!(posted.uri.contains("endpoint=PJSIP%2F2001"), "{}", posted.uri);
    let body: Value = serde_json::from_str(&posted.body).expect("json body");
    assert_eq!(body["variables"]["ACCENT_USERUUID"], "u-1");

    let local = client
        .originate(&OriginateParams {
            endpoint: "Local/2002@default".into(),
            app: Some("accent".into()),
            ..OriginateParams::default()
        })
        .await
        .expect("Local originate");
    assert!(
        local.name.starts_with("Local/2002@default-") && local.name.ends_with(";1"),
        "{}",
        local.name
    );
    assert_ne!(local.id, ch.id);

    // Asterisk's refusals: no endpoint, no target, both targets.
    let refused = |p: OriginateParams| {
        let client = client.clone();
        async move {
            match client.originate(&p).await {
                Err(AriError::BadRequest { message }) => message,
                other => panic!("expected 400, got {other:?}"),
            }
        }
    };
    assert_eq!(
        refused(OriginateParams {
            app: Some("a".into()),
            ..OriginateParams::default()
        })
        .await,
        "Endpoint must be specified"
    );
    for p in [
        OriginateParams {
            endpoint: "PJSIP/2001".into(),
            ..OriginateParams::default()
        },
        OriginateParams {
            endpoint: "PJSIP/2001".into(),
            app: Some("a".into()),
            extension: Some("1".into()),
            ..OriginateParams::default()
        },
    ] {
        assert_eq!(refused(p).await, "Invalid parameters for originating a channel.");
    }
}

#[tokio::test]
async fn stasis_checks_of_control_requests() {
    let fake = fake("05", Replay::Manual).await;
    let client = client(&fake);
    let events = fake.events();
    let first_stasis = events
        .iter()
        .position(|l| l.contains(r#""type":"StasisStart""#))
        .expect("StasisStart");
    // Before StasisStart: the ;2 half is never in Stasis.
    fake.replay_next(first_stasis + 1);
    match client.answer("s05-1001;2").await {
        Err(AriError::Conflict { message }) => assert_eq!(message, "Channel not in Stasis application"),
        other => panic!("expected 409, got {other:?}"),
    }
    let started = client.channel("s05-1001").await.expect("channel in Stasis");
    assert_eq!(started.state, ChannelState::Up);
    client.answer("s05-1001").await.expect("answer in Stasis");
    client.mute("s05-1001", MuteDirection::Both).await.expect("mute");
    client.unmute("s05-1001", MuteDirection::In).await.expect("unmute");
    match client.send_dtmf("s05-1001", &DtmfParams::default()).await {
        Err(AriError::BadRequest { message }) => assert_eq!(message, "DTMF is required"),
        other => panic!("expected 400, got {other:?}"),
    }
    let pb = client
        .play_on_channel(
            "s05-1001",
            &PlayParams {
                media: vec!["sound:hello-world".into(), "sound:beep".into()],
                playback_id: Some("pb-1".into()),
                ..PlayParams::default()
            },
        )
        .await
        .expect("play");
    assert_eq!(pb.id, "pb-1");
    assert_eq!(pb.target_uri, "channel:s05-1001");
    assert_eq!(pb.next_media_uri.as_deref(), Some("sound:beep"));
    assert_eq!(pb.state, PlaybackState::Queued);
}

#[tokio::test]
async fn recorded_exchanges_return_the_recorded_models() {
    // 04: originate into Stasis, answer, play, hangup with a reason.
    let fake4 = fake("04", Replay::Manual).await;
    let c = client(&fake4);
    let rec = recorded("04");
    let ch = c
        .originate(&OriginateParams {
            endpoint: "Local/1001@dev/n".into(),
            app: Some("accent".into()),
            app_args: Some("s04,outbound-playback".into()),
            caller_id: Some("Accent IVR <8800>".into()),
            timeout: Some(30),
            ..OriginateParams::default()
        })
        .await
        .expect("originate");
    assert_eq!(ch, typed::<Channel>(&rec[0]));
    assert_eq!(ch.id, "1795870763.8");
    c.answer(&ch.id).await.expect("recorded answer");
    let pb = c
        .play_on_channel(
            &ch.id,
            &PlayParams {
                media: vec!["sound:hello-world".into()],
                playback_id: Some("s04-pb-1".into()),
                ..PlayParams::default()
            },
        )
        .await
        .expect("recorded play (201)");
    assert_eq!(pb, typed::<Playback>(&rec[2]));
    c.hangup(&ch.id, Some(HangupReason::Normal))
        .await
        .expect("recorded hangup");

    // 05 and 27: originate with ids, mixing bridge, addChannel, teardown.
    for (scenario, endpoints) in [
        ("05", ["Local/1001@dev/n", "Local/1002@dev/n"]),
        ("27", ["PJSIP/2002", "PJSIP/2003"]),
    ] {
        let fake = fake(scenario, Replay::Manual).await;
        let c = client(&fake);
        let rec = recorded(scenario);
        let mut ids = Vec::new();
        for (i, endpoint) in endpoints.iter().enumerate() {
            let q = &rec[i]["query"];
            let ch = c
                .originate(&OriginateParams {
                    endpoint: endpoint.to_string(),
                    app: Some("accent".into()),
                    app_args: q["appArgs"].as_str().map(str::to_owned),
                    caller_id: q["callerId"].as_str().map(str::to_owned),
                    channel_id: q["channelId"].as_str().map(str::to_owned),
                    timeout: q["timeout"].as_str().and_then(|t| t.parse().ok()),
                    ..OriginateParams::default()
                })
                .await
                .unwrap_or_else(|e| panic!("{scenario}: originate {endpoint}: {e}"));
            assert_eq!(ch, typed::<Channel>(&rec[i]), "{scenario}");
            ids.push(ch.id);
        }
        let bridge_id = format!("s{scenario}-bridge");
        let bridge = c
            .create_bridge(&BridgeParams {
                bridge_type: Some("mixing".into()),
                bridge_id: Some(bridge_id.clone()),
                name: Some(format!("s{scenario}")),
            })
            .await
            .expect("create bridge");
        assert_eq!(bridge, typed::<Bridge>(&rec[2]));
        assert_eq!(bridge.bridge_type, BridgeType::Mixing);
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        c.add_channels(&bridge_id, &refs, &AddChannelOptions::default())
            .await
            .expect("recorded addChannel");
        for id in &ids {
            c.hangup(id, None).await.expect("recorded hangup");
        }
        c.destroy_bridge(&bridge_id).await.expect("recorded destroy");
        // Every request matched a recording: none fell through to a 501.
        let requests = fake.requests();
        assert_eq!(requests.len(), 7, "{scenario}: {requests:?}");
    }

    // 06: hold/unhold on an answered channel.
    let fake6 = fake("06", Replay::Manual).await;
    let c = client(&fake6);
    c.answer("1795870784.15").await.expect("answer");
    c.hold("1795870784.15").await.expect("hold");
    c.unhold("1795870784.15").await.expect("unhold");
    c.hangup("1795870784.15", None).await.expect("hangup");

    // 20: subscriptions, endpoints (online, then offline), device states, 422.
    let fake20 = fake("20", Replay::Manual).await;
    let c = client(&fake20);
    let rec = recorded("20");
    let app = c
        .subscribe("accent", &["endpoint:PJSIP/2001"])
        .await
        .expect("subscribe");
    assert_eq!(app, typed::<Application>(&rec[0]));
    let online = c.endpoint("PJSIP", "2001").await.expect("endpoint");
    assert_eq!(online.state, Some(EndpointState::Online));
    let all = c.endpoints_by_tech("PJSIP").await.expect("by tech");
    assert_eq!(all, typed::<Vec<Endpoint>>(&rec[2]));
    assert!(c.device_states().await.expect("device states").is_empty());
    let offline = c.endpoint("PJSIP", "2001").await.expect("endpoint again");
    assert_eq!(offline.state, Some(EndpointState::Offline));
    match c.unsubscribe("accent", &["endpoint:PJSIP/2001"]).await {
        Err(AriError::UnprocessableEntity { message }) => {
            assert_eq!(message, "Event source was not subscribed to")
        }
        other => panic!("expected 422, got {other:?}"),
    }

    // 12: res_ari_mailboxes is not built.
    let fake12 = fake("12", Replay::Manual).await;
    let c = client(&fake12);
    match c.mailboxes().await {
        Err(e @ AriError::Unsupported { .. }) => {
            assert!(e.to_string().contains("res_ari_mailboxes"), "{e}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(matches!(
        c.mailbox("1000@default").await,
        Err(AriError::Unsupported { .. })
    ));
}

fn recorded(scenario: &str) -> Vec<Value> {
    Scenario::load(scenario)
        .expect("scenario")
        .lines("ari-rest.jsonl")
        .expect("rest")
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn typed<T: serde::de::DeserializeOwned>(exchange: &Value) -> T {
    serde_json::from_value(exchange["response"].clone()).expect("recorded model")
}

#[tokio::test]
async fn asterisk_info_unknown_routes_and_auth() {
    let fake = fake("21", Replay::Manual).await;
    let c = client(&fake);
    let info = c.asterisk_info().await.expect("info");
    let system = info.system.expect("system");
    assert_eq!(system.version, "22.10.1");
    assert_eq!(system.entity_id, "02:fc:00:00:00:01");
    assert!(info.build.is_some() && info.config.is_some() && info.status.is_some());
    let only = c.asterisk_info_only(&[InfoPart::System]).await.expect("only");
    assert!(only.system.is_some() && only.build.is_none() && only.status.is_none());
    assert_eq!(c.ping().await.expect("ping").ping, "pong");

    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/ari/nothing/here", fake.url()))
        .basic_auth("accent", Some("accent"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.expect("json")["message"], "Resource not found");
    let r = http
        .get(format!("{}/ari/channels", fake.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        r.json::<Value>().await.expect("json")["message"],
        "Authentication required"
    );

    let bad = AriClient::new(&config(&fake, "wrong")).expect("client");
    assert!(matches!(
        bad.channels().await,
        Err(AriError::Unauthorized { status: 401, .. })
    ));
    // A spec route with nothing recorded: a clear 501, not a fake success.
    match c.sounds(None, None).await {
        Err(AriError::Http { status: 501, message }) => assert!(message.contains("not recorded"), "{message}"),
        other => panic!("expected 501, got {other:?}"),
    }
}

#[tokio::test]
async fn transport_errors_are_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let c = AriClient::new(&AriConfig {
        url: format!("http://127.0.0.1:{port}"),
        user: "accent".into(),
        password: "accent".into(),
        app: "accentd".into(),
    })
    .expect("client");
    match c.channels().await {
        Err(AriError::Transport(text)) => assert!(!text.is_empty()),
        other => panic!("expected Transport, got {other:?}"),
    }
}

// -------------------------------------------------------------- websocket

#[tokio::test]
async fn websocket_delivers_every_recorded_event_in_order_typed() {
    let root = Scenario::default_root();
    for scenario in Scenario::all_in(&root).expect("scenarios") {
        if scenario.name.starts_with("15-") {
            continue; // see the burst test
        }
        let fake = FakeAri::start(&scenario, FakeAriOptions::default())
            .await
            .expect("fake");
        let mut ev = start_events(&config(&fake, "accent"));
        for (i, line) in fake.events().iter().enumerate() {
            let got = ev.recv().await;
            assert!(!got.is_unknown(), "{} #{i}: {}", scenario.name, got.event_type());
            let want = accentd::ari::parse_event(line).expect("recorded event");
            assert_eq!(*got, want, "{} #{i}", scenario.name);
        }
        assert!(ev.events.is_connected());
        let (health, detail) = ev.ari_status();
        assert_eq!(health, Health::Ok, "{detail}");
        assert!(detail.contains("22.10.1"), "{detail}");
        ev.stop().await;
        fake.stop().await;
    }
}

#[tokio::test]
async fn websocket_keeps_up_with_the_200_call_burst() {
    let fake = fake("15", Replay::OnConnect).await;
    let total = fake.events().len();
    // Everything runs on this test's one thread, so the actor can get the
    // whole burst ahead of the reader: room for all of it, no Lagged.
    let options = AriEventsOptions {
        capacity: total + 16,
        ..fast_options()
    };
    let mut ev = start_events_with(&config(&fake, "accent"), options);
    assert!(total > 20_000);
    let mut unknown = 0;
    for _ in 0..total {
        unknown += usize::from(ev.recv().await.is_unknown());
    }
    assert_eq!(unknown, 0);
    ev.stop().await;
}

#[tokio::test]
async fn link_drop_mid_call_reconnects_and_events_resume() {
    for mode in [DropMode::MidMessage, DropMode::Abort, DropMode::Close] {
        let fake = fake("05", Replay::Manual).await;
        let events = fake.events();
        let mut ev = start_events(&config(&fake, "accent"));
        let first = ev.connected().await;
        assert!(fake.wait_for_connections(1, WAIT).await);
        fake.replay_next(40);
        for line in &events[..40] {
            assert_eq!(*ev.recv().await, accentd::ari::parse_event(line).expect("event"));
        }
        fake.drop_connections(mode);
        let down = ev.disconnected().await;
        let LinkState::Disconnected { reason } = &down else {
            unreachable!()
        };
        assert!(!reason.is_empty());
        assert_eq!(ev.ari_status().0, Health::Fail);
        let again = ev.connected().await;
        assert_ne!(again.since(), first.since(), "{mode:?}: a new connection");
        assert!(fake.wait_for_connections(1, WAIT).await);
        eventually("status ok", || ev.ari_status().0 == Health::Ok).await;
        // The rest of the call arrives on the new websocket, in order.
        fake.replay_all();
        for line in &events[40..] {
            assert_eq!(
                *ev.recv().await,
                accentd::ari::parse_event(line).expect("event"),
                "{mode:?}"
            );
        }
        let upgrades = fake.requests().iter().filter(|r| r.websocket).count();
        assert_eq!(upgrades, 2, "{mode:?}");
        ev.stop().await;
    }
}

#[tokio::test]
async fn refused_connections_are_retried_until_asterisk_is_back() {
    let fake = fake("21", Replay::Manual).await;
    fake.set_refusing(true);
    let mut ev = start_events(&config(&fake, "accent"));
    eventually("a refused attempt", || ev.ari_status().1.contains("cannot reach")).await;
    // Several attempts, none reaching the server, no connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!ev.events.is_connected());
    assert_eq!(ev.ari_status().0, Health::Fail);
    assert!(fake.requests().is_empty());
    fake.set_refusing(false);
    ev.connected().await;
    eventually("status ok", || ev.ari_status().0 == Health::Ok).await;
    ev.stop().await;
}

#[tokio::test]
async fn garbage_and_incomplete_messages_keep_the_link_up() {
    let logs = LogCapture::install();
    let fake = fake("05", Replay::Manual).await;
    let mut ev = start_events(&config(&fake, "accent"));
    let since = ev.connected().await;
    assert!(fake.wait_for_connections(1, WAIT).await);
    fake.inject("this is not JSON {");
    fake.inject(r#"{"no_type": true}"#);
    fake.inject(r#"{"type":"ChannelCreated","timestamp":"2026-11-28T12:59:31.184+0000","application":"accent"}"#);
    fake.inject(
        r#"{"type":"ChannelTeleported","timestamp":"2026-11-28T12:59:31.184+0000","application":"accent","x":1}"#,
    );
    fake.replay_next(1);
    let missing_fields = ev.recv().await;
    match &*missing_fields {
        AriEvent::Unknown { event_type, raw } => {
            assert_eq!(event_type, "ChannelCreated");
            assert!(raw.get("channel").is_none());
        }
        other => panic!("expected Unknown, got {other:?}"),
    }
    let future = ev.recv().await;
    assert!(matches!(&*future, AriEvent::Unknown { event_type, .. } if event_type == "ChannelTeleported"));
    let real = ev.recv().await;
    assert_eq!(real.event_type(), "ChannelCreated");
    assert!(!real.is_unknown());
    // Same connection all along.
    assert_eq!(*ev.link.borrow(), since);
    assert_eq!(fake.requests().iter().filter(|r| r.websocket).count(), 1);
    assert_eq!(ev.ari_status().0, Health::Ok);
    ev.stop().await;
    let text = logs.text();
    assert!(text.contains("ARI websocket message ignored"), "{text}");
}

#[tokio::test]
async fn wrong_password_fails_clearly_retries_and_never_leaks_the_secret() {
    const SECRET: &str = "Wr0ng-s3cret-pw";
    let logs = LogCapture::install();
    let fake = fake("05", Replay::OnConnect).await;
    let ev = start_events(&config(&fake, SECRET));
    eventually("three attempts", || fake.requests().len() >= 3).await;
    let (health, detail) = ev.ari_status();
    assert_eq!(health, Health::Fail);
    assert!(detail.contains("authentication failed"), "{detail}");
    assert!(detail.contains("401"), "{detail}");
    assert!(detail.contains("accent"), "names the user: {detail}");
    let LinkState::Disconnected { reason } = ev.link.borrow().clone() else {
        panic!("must not be connected")
    };
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(fake.requests().iter().all(|r| !r.authorized));
    assert_eq!(fake.connections(), 0);
    ev.stop().await;

    // A good run too, so the logs also cover a connected link.
    let mut ok = start_events(&config(&fake, "accent"));
    ok.connected().await;
    ok.recv().await;
    ok.stop().await;

    let token = base64_basic("accent", SECRET);
    for r in fake.requests() {
        assert!(!r.uri.contains(SECRET) && !r.uri.contains("api_key"), "{r:?}");
    }
    let text = logs.text();
    assert!(text.contains("authentication failed"), "the failure is logged: {text}");
    assert!(!text.contains(SECRET), "password in the logs");
    assert!(!text.contains(&token), "credentials in the logs");
    assert!(
        !text.contains(&base64_basic("accent", "accent")),
        "credentials in the logs"
    );
    assert!(!detail.contains(SECRET));
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Captures every `tracing` record of the current thread (the tests run on
/// tokio's current-thread runtime, so the actor's records too).
struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn install() -> LogCapture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        LogCapture {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().expect("log buffer")).into_owned()
    }
}

// ------------------------------------------------------------------- app

async fn status_of(s: &crate::common::TestServer) -> Value {
    s.client
        .get(format!("{}/status", s.base))
        .send()
        .await
        .expect("GET /status")
        .json()
        .await
        .expect("json")
}

fn ari_from_env(url: String) -> AriConfig {
    Config::load_with_env(None, |name| match name {
        "ACCENTD_ARI_URL" => Some(url.clone()),
        "ACCENTD_ARI_USER" => Some("accent".into()),
        "ACCENTD_ARI_PASSWORD" => Some("accent".into()),
        _ => None,
    })
    .expect("config")
    .ari
}

#[tokio::test]
async fn accentd_reports_ari_ok_against_the_fake_asterisk() {
    let fake = fake("05", Replay::OnConnect).await;
    let ari = ari_from_env(fake.url());
    let s = crate::common::TestServer::start_with(move |c| c.ari = ari).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = status_of(&s).await;
        if status["ari"]["status"] == "ok" {
            assert!(status["ari"]["detail"].as_str().unwrap_or("").contains("22.10.1"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ari never ok: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let handles = s.app().ari.clone().expect("ari handles");
    assert!(handles.events.is_connected());
    assert_eq!(handles.client.channels().await.expect("channels"), fake.channels());
    // The websocket registered the configured application (default accentd).
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.websocket && r.uri.contains("app=accentd") && r.uri.contains("subscribeAll=true")));
}

#[tokio::test]
async fn accentd_without_asterisk_keeps_serving() {
    let s = crate::common::TestServer::start().await;
    let status = status_of(&s).await;
    assert_eq!(status["ari"]["status"], "fail");
    assert_eq!(status["ari"]["detail"], "not configured");
    assert!(s.app().ari.is_none());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let ari = ari_from_env(url);
    let s = crate::common::TestServer::start_with(move |c| c.ari = ari).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = status_of(&s).await;
        let detail = status["ari"]["detail"].as_str().unwrap_or("").to_owned();
        if status["ari"]["status"] == "fail" && detail.contains("cannot reach") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The API keeps answering.
    let (code, body) = s.get("/tenants", &s.admin_token).await;
    assert_eq!(code, reqwest::StatusCode::OK, "{body}");
    assert!(!s.app().ari.as_ref().expect("handles").events.is_connected());
}

#[tokio::test]
async fn pings_keep_a_quiet_link_up_and_a_silent_one_is_replaced() {
    let fake = fake("05", Replay::Manual).await;
    let options = AriEventsOptions {
        ping_interval: Duration::from_millis(40),
        pong_timeout: Duration::from_millis(60),
        ..fast_options()
    };
    let mut ev = start_events_with(&config(&fake, "accent"), options);
    let first = ev.connected().await;
    // No event for many ping periods: the pongs keep the link up.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(*ev.link.borrow(), first);
    // Asterisk stops answering (half-open TCP): the link is declared dead
    // and a new websocket replaces it.
    fake.set_frozen(true);
    let LinkState::Disconnected { reason } = ev.disconnected().await else {
        unreachable!()
    };
    assert!(reason.contains("no data nor pong"), "{reason}");
    fake.set_frozen(false);
    let again = ev.connected().await;
    assert_ne!(again.since(), first.since());
    fake.replay_next(1);
    assert_eq!(ev.recv().await.event_type(), "ChannelCreated");
    ev.stop().await;
}

#[tokio::test]
async fn application_replaced_drops_and_reregisters() {
    let fake = fake("05", Replay::Manual).await;
    let mut ev = start_events(&config(&fake, "accent"));
    let first = ev.connected().await;
    assert!(fake.wait_for_connections(1, WAIT).await);
    fake.inject(r#"{"type":"ApplicationReplaced","timestamp":"2026-11-28T12:59:31.184+0000","application":"accentd","asterisk_id":"02:fc:00:00:00:01"}"#);
    // Subscribers see the event itself…
    assert_eq!(ev.recv().await.event_type(), "ApplicationReplaced");
    // …and the client opens a new websocket, which registers the
    // application again.
    let again = tokio::time::timeout(
        WAIT,
        ev.link.wait_for(|l| l.is_connected() && l.since() != first.since()),
    )
    .await
    .expect("reconnected in time")
    .expect("watch open")
    .clone();
    assert!(again.is_connected());
    eventually("two upgrades", || {
        fake.requests().iter().filter(|r| r.websocket).count() == 2
    })
    .await;
    ev.stop().await;
}
