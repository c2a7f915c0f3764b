//! calld `/calls` and `/users/me/calls` against the fake Asterisk: scenario 21
//! (2001 calls 2002, answered) replayed over AMI and ARI until both legs talk,
//! with confd provisioning the two phones as Alice's and Bob's lines; the call
//! objects, who sees what (users, tenants, ACLs), and the hangup request ARI gets.

use crate::common::{wait_for, TestServer};
use accentd::ami::frame::AmiMessage;
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions, Replay as AmiReplay};
use accentd::fake_asterisk::ari::{FakeAri, FakeAriOptions, Replay as AriReplay};
use accentd::fake_asterisk::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub(crate) const CALLD: &str = "/api/calld/1.0";
pub(crate) const C: &str = "/api/confd/1.1";
pub(crate) const ALICE_CALL: &str = "1795874804.0";
pub(crate) const BOB_CALL: &str = "1795874804.1";

/// Index just past the `n`th item satisfying `f`.
fn past_nth<T>(items: &[T], n: usize, f: impl Fn(&T) -> bool) -> usize {
    items
        .iter()
        .enumerate()
        .filter(|(_, x)| f(x))
        .nth(n - 1)
        .map(|(i, _)| i + 1)
        .expect("event in the recording")
}

/// The recording's AMI side, released step by step by the test.
pub(crate) async fn manual_ami(scenario: &Scenario) -> FakeAmi {
    let ami = FakeAmi::start(
        scenario,
        FakeAmiOptions {
            replay: AmiReplay::Manual,
            ..FakeAmiOptions::default()
        },
    )
    .await
    .expect("fake AMI");
    ami.respond_with("Command", Some(crate::common::command_success()));
    ami
}

/// A new tenant under the master tenant.
pub(crate) async fn other_tenant(s: &TestServer) -> String {
    let (_, other) = s
        .post("/tenants", &s.admin_token, json!({"name": "other", "slug": "other"}))
        .await;
    other["uuid"].as_str().expect("tenant").to_string()
}

/// A calld request by the admin, scoped to `tenant`.
pub(crate) async fn as_tenant(s: &TestServer, tenant: &str, method: Method, path: &str) -> (StatusCode, Value) {
    s.call_with_headers(
        method,
        &format!("{CALLD}/{path}"),
        Some(&s.admin_token),
        None,
        &[("Accent-Tenant", tenant)],
    )
    .await
}

/// The recording's ARI side, released step by step by the test.
async fn manual_ari(scenario: &Scenario) -> FakeAri {
    FakeAri::start(
        scenario,
        FakeAriOptions {
            replay: AriReplay::Manual,
            ..FakeAriOptions::default()
        },
    )
    .await
    .expect("fake ARI")
}

/// The internal context of the recording's phones (2001-2003).
pub(crate) async fn default_context(s: &TestServer) {
    let (code, ctx) = s
        .post(
            &format!("{C}/contexts"),
            &s.admin_token,
            json!({"name": "default", "label": "Default", "user_ranges": [{"start": "2000", "end": "2999"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ctx}");
}

/// A user with a login, a line whose SIP endpoint is the recording's device `name`, and its extension.
pub(crate) async fn user(s: &TestServer, first: &str, login: &str, device: &str) -> Value {
    let (code, u) = s
        .post(
            &format!("{C}/users"),
            &s.admin_token,
            json!({"firstname": first, "auth": {"username": login, "password": format!("pw-{login}-123")},
                   "lines": [{"context": "default",
                              "endpoint_sip": {"name": device, "auth_section_options": [["username", device], ["password", "x-secret-1"]]},
                              "extensions": [{"exten": device, "context": "default"}]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{u}");
    u
}

/// Accentd on scenario 21 with both links, the two phones provisioned, replayed until both legs are bridged.
pub(crate) async fn bridged_call() -> (FakeAmi, FakeAri, TestServer, Value, Value) {
    let (ami, ari, s, alice, bob) = provisioned().await;
    replay_until_bridged(&ami, &ari, &s).await;
    (ami, ari, s, alice, bob)
}

/// Accentd on `scenario` with both links up (the config tweaked by `tweak`); nothing replayed.
pub(crate) async fn linked(
    scenario: &str,
    tweak: impl FnOnce(&mut accentd::config::Config),
) -> (FakeAmi, FakeAri, TestServer) {
    let scenario = Scenario::load(scenario).expect("scenario");
    let ami = manual_ami(&scenario).await;
    let ari = manual_ari(&scenario).await;
    let (ami_addr, ari_url) = (ami.addr().to_string(), ari.url());
    let s = TestServer::start_with(|c| {
        c.ami.addr = ami_addr;
        c.ami.user = "accent".into();
        c.ami.password = "accent".into();
        c.ari.url = ari_url;
        c.ari.user = "accent".into();
        c.ari.password = "accent".into();
        c.ari.app = "accent".into();
        tweak(c);
    })
    .await;
    {
        let app = s.app();
        wait_for("links up", || {
            app.ami.as_ref().is_some_and(|c| c.is_connected())
                && app.ari.as_ref().is_some_and(|h| h.events.is_connected())
        })
        .await;
    }
    (ami, ari, s)
}

/// Accentd on scenario 21 with both links up, resynced, and the default context; nothing
/// provisioned or replayed.
pub(crate) async fn ready() -> (FakeAmi, FakeAri, TestServer) {
    let (ami, ari, s) = linked("21", |_| {}).await;
    first_resync(&s).await;
    default_context(&s).await;
    (ami, ari, s)
}

/// Accentd on scenario 21 with both links up and the two phones provisioned; nothing replayed.
pub(crate) async fn provisioned() -> (FakeAmi, FakeAri, TestServer, Value, Value) {
    let (ami, ari, s) = ready().await;
    let alice = user(&s, "Alice", "alice", "2001").await;
    let bob = user(&s, "Bob", "bob", "2002").await;
    (ami, ari, s, alice, bob)
}

/// Waits for the resyncs after the links came up, which read Asterisk's lists: a replay
/// starts after them, as a real call would start after accentd started (and what the lists
/// said is published before the test provisions or listens). Each link coming up asks for
/// one, 100 ms apart at least: done when none came for 600 ms.
pub(crate) async fn first_resync(s: &TestServer) {
    let live = s.app().live.clone();
    wait_for("first resync", || live.resyncs() > 0).await;
    loop {
        let seen = live.resyncs();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        if live.resyncs() == seen {
            break;
        }
    }
}

pub(crate) async fn replay_until_bridged(ami: &FakeAmi, ari: &FakeAri, s: &TestServer) {
    let ami_upto = past_nth(ami.recording().timeline(), 2, |m| m.get("Event") == Some("BridgeEnter"));
    ami.replay_next(ami_upto);
    let events = ari.events();
    let ari_upto = past_nth(&events, 2, |l| l.contains("\"ChannelEnteredBridge\""));
    ari.replay_next(ari_upto);
    {
        let live = s.app().live.clone();
        wait_for("both legs talk", || {
            let chans = live.channels();
            // Talking (bridged, seen over ARI or AMI) and named by AMI (linkedid).
            chans.len() == 2 && chans.iter().all(|c| !c.talking_to.is_empty() && !c.linkedid.is_empty())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_show_both_legs_with_their_users_and_hang_up_over_ari() {
    let (_ami, ari, s, alice, bob) = bridged_call().await;
    let t = s.admin_token.clone();

    let (code, list) = s.get(&format!("{CALLD}/calls"), &t).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    // The list is serialized straight from the call objects: still a JSON response.
    let raw = s
        .client
        .get(format!("{}{CALLD}/calls", s.base))
        .header("X-Auth-Token", &t)
        .send()
        .await
        .expect("GET /calls");
    assert_eq!(raw.headers()["content-type"], "application/json");
    let caller = items.iter().find(|c| c["call_id"] == ALICE_CALL).expect("Alice's leg");
    let callee = items.iter().find(|c| c["call_id"] == BOB_CALL).expect("Bob's leg");
    assert_eq!(caller["conversation_id"], ALICE_CALL);
    assert_eq!(callee["conversation_id"], ALICE_CALL);
    assert_eq!(caller["user_uuid"], alice["uuid"]);
    assert_eq!(callee["user_uuid"], bob["uuid"]);
    assert_eq!(caller["line_id"], alice["lines"][0]["id"]);
    assert_eq!(caller["caller_id_number"], "2001");
    assert_eq!(caller["status"], "Up");
    assert_eq!(caller["is_caller"], true);
    assert_eq!(callee["is_caller"], false);
    assert_eq!(caller["dialed_extension"], "2002");
    assert_eq!(callee["dialed_extension"], "2002");
    assert_eq!(caller["direction"], "internal");
    assert_eq!(caller["talking_to"], json!({ BOB_CALL: bob["uuid"] }));
    assert_eq!(callee["talking_to"], json!({ ALICE_CALL: alice["uuid"] }));
    assert_eq!(caller["bridges"], callee["bridges"]);
    assert_eq!(caller["bridges"].as_array().map(Vec::len), Some(1));
    assert_eq!(caller["on_hold"], false);
    assert_eq!(caller["parked"], false);
    assert!(caller["creation_time"].is_string(), "{caller}");

    let (code, one) = s.get(&format!("{CALLD}/calls/{BOB_CALL}"), &t).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(&one, callee);
    let (_, lines) = s.get(&format!("{CALLD}/lines"), &t).await;
    let counts: Vec<&Value> = lines["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| &l["current_call_count"])
        .collect();
    assert_eq!(counts, [1, 1], "each line carries one leg: {lines}");
    let (code, body) = s.get(&format!("{CALLD}/calls/1795874804.99"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["error_id"], "no-such-call");

    // A user sees and hangs up only their own calls.
    let me = s.login("alice", "pw-alice-123").await;
    let (code, mine) = s.get(&format!("{CALLD}/users/me/calls"), &me).await;
    assert_eq!(code, StatusCode::OK, "{mine}");
    let ids: Vec<&Value> = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| &c["call_id"])
        .collect();
    assert_eq!(ids, [ALICE_CALL]);
    let (code, body) = s.delete(&format!("{CALLD}/users/me/calls/{BOB_CALL}"), &me).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert!(
        !ari.requests().iter().any(|r| r.method == "DELETE"),
        "nothing sent for another's call"
    );
    // A user's token does not reach the admin routes.
    let (code, _) = s.get(&format!("{CALLD}/calls"), &me).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    let (code, body) = s.delete(&format!("{CALLD}/users/me/calls/{ALICE_CALL}"), &me).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let deletes: Vec<String> = ari
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.uri.clone())
        .collect();
    assert_eq!(deletes, [format!("/ari/channels/{ALICE_CALL}")]);
    let (code, _) = s.delete(&format!("{CALLD}/calls/{BOB_CALL}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);

    // Another tenant sees none of them.
    let other = other_tenant(&s).await;
    assert_eq!(
        as_tenant(&s, &other, Method::GET, "calls").await,
        (StatusCode::OK, json!({"items": []}))
    );
    let (code, _) = as_tenant(&s, &other, Method::DELETE, &format!("calls/{ALICE_CALL}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Bad queries and tokens.
    let (code, body) = s.get(&format!("{CALLD}/calls?recurse=maybe"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, _) = s.get(&format!("{CALLD}/calls"), "not-a-token").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, list) = s.get(&format!("{CALLD}/calls?application=nothing"), &t).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_call_is_a_404_and_without_ari_a_hangup_is_a_503() {
    let (_ami, ari, s, _alice, _bob) = bridged_call().await;
    let t = s.admin_token.clone();
    // The call ended (the recording ran to its end): hanging it up is a 404.
    ari.replay_all();
    let (code, body) = s.delete(&format!("{CALLD}/calls/{BOB_CALL}"), &t).await;
    assert!(
        code == StatusCode::NOT_FOUND && body["error_id"] == "no-such-call",
        "{code} {body}"
    );

    // AMI only: the calls are listed, but nothing can act on them.
    let scenario = Scenario::load("21").expect("scenario");
    let ami = manual_ami(&scenario).await;
    let s2 = TestServer::start_with_ami(&ami).await;
    let t2 = s2.admin_token.clone();
    default_context(&s2).await;
    user(&s2, "Alice", "alice", "2001").await;
    ami.replay_next(past_nth(ami.recording().timeline(), 2, |m| {
        m.get("Event") == Some("BridgeEnter")
    }));
    {
        let live = s2.app().live.clone();
        wait_for("call seen over AMI", || live.channel(ALICE_CALL).is_some()).await;
    }
    let (code, list) = s2.get(&format!("{CALLD}/calls"), &t2).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    let (code, body) = s2.delete(&format!("{CALLD}/calls/{ALICE_CALL}"), &t2).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error_id"], "asterisk-ari-unreachable");
}

/// The events published so far whose name starts with `prefix`.
pub(crate) fn drain(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<accentd::bus::Event>>,
    prefix: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if e.name.starts_with(prefix) {
            out.push(e.to_json());
        }
    }
    out
}

/// Waits for `n` events whose name starts with `prefix`.
pub(crate) async fn collect(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<accentd::bus::Event>>,
    prefix: &str,
    n: usize,
) -> Vec<Value> {
    let mut events = Vec::new();
    wait_for(prefix, || {
        events.extend(drain(rx, prefix));
        events.len() >= n
    })
    .await;
    events
}

/// The names of the events about one call, in order.
fn names_for(events: &[Value], call_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["data"]["call_id"] == call_id)
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_of_a_call_is_an_event_for_its_user() {
    let (ami, ari, s, alice, bob) = provisioned().await;
    let mut rx = s.app().bus.subscribe();
    replay_until_bridged(&ami, &ari, &s).await;
    ami.replay_all();
    ari.replay_all();
    {
        let bus_wait = s.app().live.clone();
        wait_for("both legs gone", || bus_wait.channels().is_empty()).await;
    }
    let mut events = Vec::new();
    wait_for("both call_ended", || {
        events.extend(drain(&mut rx, "call_"));
        events.iter().filter(|e| e["name"] == "call_ended").count() == 2
    })
    .await;

    for (id, who) in [(ALICE_CALL, &alice), (BOB_CALL, &bob)] {
        let names = names_for(&events, id);
        assert_eq!(
            names.first().map(String::as_str),
            Some("call_created"),
            "{id}: {names:?}"
        );
        assert_eq!(names.last().map(String::as_str), Some("call_ended"), "{id}: {names:?}");
        assert_eq!(
            names.iter().filter(|n| *n == "call_answered").count(),
            1,
            "{id}: answered once: {names:?}"
        );
        assert!(names.iter().any(|n| n == "call_updated"), "{id}: {names:?}");
        assert!(
            !names.iter().any(|n| n == "call_held" || n == "call_dtmf_created"),
            "{id}: nothing held, no digit: {names:?}"
        );
        let uuid = who["uuid"].as_str().expect("uuid");
        for e in events.iter().filter(|e| e["data"]["call_id"] == id) {
            // Addressed to the owner only, in the owner's tenant.
            assert_eq!(e["required_acl"], format!("events.calls.{uuid}"), "{e}");
            assert_eq!(e[format!("user_uuid:{uuid}").as_str()], true, "{e}");
            assert_eq!(e["tenant_uuid"], who["tenant_uuid"], "{e}");
            assert_eq!(e["data"]["user_uuid"], uuid, "{e}");
        }
        let answered = events
            .iter()
            .find(|e| e["name"] == "call_answered" && e["data"]["call_id"] == id)
            .expect("answered");
        assert_eq!(answered["data"]["status"], "Up");
        assert!(answered["data"]["answer_time"].is_string(), "{answered}");
        let ended = events
            .iter()
            .find(|e| e["name"] == "call_ended" && e["data"]["call_id"] == id)
            .expect("ended");
        assert_eq!(ended["data"]["reason_code"], 16, "{ended}");
        assert!(ended["data"]["hangup_time"].is_string(), "{ended}");
        assert_eq!(ended["data"]["conversation_id"], ALICE_CALL);
    }
    // The last update before the end shows who each leg talked to.
    let talked = events
        .iter()
        .filter(|e| e["name"] == "call_updated" && e["data"]["call_id"] == ALICE_CALL)
        .any(|e| e["data"]["talking_to"] == json!({ BOB_CALL: bob["uuid"] }));
    assert!(
        talked,
        "{:#?}",
        events
            .iter()
            .filter(|e| e["data"]["call_id"] == ALICE_CALL)
            .map(|e| (
                &e["name"],
                &e["data"]["talking_to"],
                &e["data"]["status"],
                &e["data"]["bridges"]
            ))
            .collect::<Vec<_>>()
    );
    // The same object is never published twice in a row for a leg.
    for id in [ALICE_CALL, BOB_CALL] {
        let updates: Vec<&Value> = events
            .iter()
            .filter(|e| e["name"] == "call_updated" && e["data"]["call_id"] == id)
            .map(|e| &e["data"])
            .collect();
        assert!(updates.windows(2).all(|w| w[0] != w[1]), "{id}: {updates:#?}");
    }
}

pub(crate) fn ami_success() -> Vec<AmiMessage> {
    vec![AmiMessage::new().with("Response", "Success")]
}

/// The actions named `name` the fake AMI received, as (header, value) lists without ActionID.
pub(crate) fn sent(ami: &FakeAmi, name: &str) -> Vec<Vec<(String, String)>> {
    ami.received_actions()
        .iter()
        .filter(|a| a.get("Action") == Some(name))
        .map(|a| {
            a.headers()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("ActionID") && !k.eq_ignore_ascii_case("Action"))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// How many call-control actions the fake AMI got (not the pings and resync lists).
fn control_actions(ami: &FakeAmi) -> usize {
    const CONTROL: [&str; 9] = [
        "MuteAudio",
        "PJSIPNotify",
        "PlayDTMF",
        "MixMonitor",
        "StopMixMonitor",
        "MixMonitorMute",
        "BlindTransfer",
        "Atxfer",
        "CancelAtxfer",
    ];
    ami.received_actions()
        .iter()
        .filter(|a| a.get("Action").is_some_and(|n| CONTROL.contains(&n)))
        .count()
}

pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_hold_answer_dtmf_and_record_go_to_asterisk_over_ami() {
    let (ami, _ari, s, alice, _bob) = bridged_call().await;
    for action in [
        "MuteAudio",
        "PJSIPNotify",
        "PlayDTMF",
        "MixMonitor",
        "StopMixMonitor",
        "MixMonitorMute",
    ] {
        ami.respond_with(action, Some(ami_success()));
    }
    let t = s.admin_token.clone();
    let mut rx = s.app().bus.subscribe();
    let alice_chan = "PJSIP/2001-00000000";
    let call = |path: &str| format!("{CALLD}/calls/{ALICE_CALL}/{path}");

    // Mute: MuteAudio on what the phone sends, shown in the call and its event.
    let (code, body) = s.put(&call("mute/start"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        sent(&ami, "MuteAudio"),
        [pairs(&[("Channel", alice_chan), ("Direction", "in"), ("State", "on")])]
    );
    let (_, one) = s.get(&call(""), &t).await;
    assert_eq!(one["muted"], true, "{one}");
    let mut events = Vec::new();
    wait_for("muted event", || {
        events.extend(drain(&mut rx, "call_updated"));
        events.iter().any(|e| e["data"]["muted"] == true)
    })
    .await;
    let (code, _) = s.put(&call("mute/stop"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(sent(&ami, "MuteAudio")[1][2], ("State".into(), "off".into()));
    let (_, one) = s.get(&call(""), &t).await;
    assert_eq!(one["muted"], false);

    // Answer and hold ask the phone, in the call's SIP dialog.
    for (path, event) in [("answer", "talk"), ("hold/start", "hold"), ("hold/stop", "talk")] {
        let (code, body) = s.put(&call(path), &t, json!({})).await;
        assert_eq!(code, StatusCode::NO_CONTENT, "{path}: {body}");
        assert_eq!(
            sent(&ami, "PJSIPNotify").last(),
            Some(&pairs(&[
                ("Channel", alice_chan),
                ("Variable", &format!("Event={event}"))
            ])),
            "{path}"
        );
    }

    // DTMF: one PlayDTMF per digit, as received from the phone.
    let (code, body) = s.put(&call("dtmf?digits=1*%23"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let digits: Vec<String> = sent(&ami, "PlayDTMF")
        .iter()
        .map(|a| {
            assert!(a.contains(&("Receive".into(), "true".into())), "{a:?}");
            assert!(a.contains(&("Channel".into(), alice_chan.into())), "{a:?}");
            a.iter()
                .find(|(k, _)| k == "Digit")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(digits, ["1", "*", "#"]);
    for bad in [
        "dtmf?digits=12a",
        "dtmf",
        "dtmf?digits=",
        &format!("dtmf?digits={}", "1".repeat(65)),
    ] {
        let (code, body) = s.put(&call(bad), &t, json!({})).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert_eq!(sent(&ami, "PlayDTMF").len(), 3, "nothing sent for bad digits");

    // Recording: MixMonitor into the tenant's monitor directory, pause/resume, stop.
    let (code, body) = s.put(&call("record/pause"), &t, json!({})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "not recording: {body}");
    let (code, body) = s.put(&call("record/start"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let mix = sent(&ami, "MixMonitor");
    assert_eq!(mix.len(), 1);
    let file = &mix[0].iter().find(|(k, _)| k == "File").expect("File").1;
    let tenant = alice["tenant_uuid"].as_str().expect("tenant");
    assert!(
        file.contains(&format!("/{tenant}/monitor/")) && file.ends_with(".wav"),
        "{file}"
    );
    let (_, one) = s.get(&call(""), &t).await;
    assert_eq!(one["record_state"], "active");
    let (code, _) = s.put(&call("record/start"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "starting twice is harmless");
    assert_eq!(sent(&ami, "MixMonitor").len(), 1, "and sends nothing");
    let (code, _) = s.put(&call("record/pause"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, one) = s.get(&call(""), &t).await;
    assert_eq!(one["record_state"], "paused");
    let (code, _) = s.put(&call("record/resume"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let states: Vec<String> = sent(&ami, "MixMonitorMute")
        .iter()
        .map(|a| {
            a.iter()
                .find(|(k, _)| k == "State")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(states, ["1", "0"]);
    let (code, _) = s.put(&call("record/stop"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(sent(&ami, "StopMixMonitor"), [pairs(&[("Channel", alice_chan)])]);
    let (_, one) = s.get(&call(""), &t).await;
    assert_eq!(one["record_state"], "inactive");
    let recording = collect(&mut rx, "recording_", 4).await;
    let names: Vec<&str> = recording.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "recording_started",
            "recording_paused",
            "recording_resumed",
            "recording_stopped"
        ]
    );
    assert_eq!(recording[0]["data"]["record_state"], "active");

    // Unknown actions and verbs are 404s; unknown calls too, with nothing sent.
    let before = control_actions(&ami);
    let (code, _) = s.put(&call("mute/maybe"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.put(&call("fly"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, body) = s.put(&format!("{CALLD}/calls/9.9/mute/start"), &t, json!({})).await;
    assert_eq!(body["error_id"], "no-such-call", "{code} {body}");
    assert_eq!(control_actions(&ami), before);

    // Asterisk says the channel is gone: 404; refuses otherwise: 503.
    ami.respond_with(
        "MuteAudio",
        Some(vec![AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "No such channel")]),
    );
    let (code, body) = s.put(&call("mute/start"), &t, json!({})).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-call"))
    );
    ami.respond_with("PJSIPNotify", None);
    let (code, body) = s.put(&call("answer"), &t, json!({})).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error_id"], "asterisk-ami-error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_control_only_their_own_calls() {
    let (ami, _ari, s, _alice, _bob) = bridged_call().await;
    for action in ["MuteAudio", "MixMonitor", "PlayDTMF"] {
        ami.respond_with(action, Some(ami_success()));
    }
    let me = s.login("alice", "pw-alice-123").await;
    let mine = |path: &str, id: &str| format!("{CALLD}/users/me/calls/{id}/{path}");
    let (code, body) = s.put(&mine("mute/start", ALICE_CALL), &me, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, body) = s.put(&mine("record/start", ALICE_CALL), &me, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, body) = s.put(&mine("dtmf?digits=5", ALICE_CALL), &me, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let before = control_actions(&ami);
    for path in ["mute/start", "record/start", "dtmf?digits=5", "hold/start", "answer"] {
        let (code, body) = s.put(&mine(path, BOB_CALL), &me, json!({})).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert_eq!(control_actions(&ami), before, "nothing sent for Bob's call");
    // A user's token does not open the admin routes.
    let (code, _) = s
        .put(&format!("{CALLD}/calls/{ALICE_CALL}/mute/stop"), &me, json!({}))
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    // Without AMI, nothing can act: 503.
    let scenario = Scenario::load("21").expect("scenario");
    let ari = manual_ari(&scenario).await;
    let url = ari.url();
    let s2 = TestServer::start_with(|c| {
        c.ari.url = url;
        c.ari.user = "accent".into();
        c.ari.password = "accent".into();
        c.ari.app = "accent".into();
    })
    .await;
    default_context(&s2).await;
    user(&s2, "Alice", "alice", "2001").await;
    {
        let app = s2.app();
        wait_for("ARI up", || app.ari.as_ref().is_some_and(|h| h.events.is_connected())).await;
    }
    let events = ari.events();
    ari.replay_next(past_nth(&events, 2, |l| l.contains("\"ChannelEnteredBridge\"")));
    {
        let live = s2.app().live.clone();
        wait_for("call seen over ARI", || live.channel(ALICE_CALL).is_some()).await;
    }
    let (code, body) = s2
        .put(
            &format!("{CALLD}/calls/{ALICE_CALL}/mute/start"),
            &s2.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error_id"], "asterisk-ami-unreachable");
}

/// A `DTMFEnd` event as scenario 13 recorded it, for another channel.
fn dtmf_end(at: &str, channel: &str, uniqueid: &str, linkedid: &str, digit: char) -> String {
    format!(
        "Event: DTMFEnd\r\nPrivilege: dtmf,all\r\nTimestamp: {at}\r\nChannel: {channel}\r\nChannelState: 6\r\n\
         ChannelStateDesc: Up\r\nCallerIDNum: 2001\r\nCallerIDName: Alice\r\nConnectedLineNum: 2002\r\n\
         ConnectedLineName: Bob\r\nLanguage: en\r\nAccountCode: \r\nContext: from-internal\r\nExten: 2002\r\n\
         Priority: 1\r\nUniqueid: {uniqueid}\r\nLinkedid: {linkedid}\r\nDigit: {digit}\r\nDurationMs: 120\r\n\
         Direction: Received\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_resume_and_digits_of_a_sip_call_are_events() {
    // Scenario 24: Alice (2001) calls Bob, holds with a sendonly re-INVITE, resumes, hangs up.
    let scenario = Scenario::load("24").expect("scenario");
    let ami = manual_ami(&scenario).await;
    let s = TestServer::start_with_ami(&ami).await;
    default_context(&s).await;
    let alice = user(&s, "Alice", "alice", "2001").await;
    user(&s, "Bob", "bob", "2002").await;
    let mut rx = s.app().bus.subscribe();
    let timeline = ami.recording().timeline().to_vec();
    let unhold = past_nth(&timeline, 1, |m| m.get("Event") == Some("Unhold"));
    ami.replay_next(unhold);
    let at = timeline[unhold - 1].get("Timestamp").expect("timestamp").to_string();
    let (alice_call, alice_chan) = ("1795874868.6", "PJSIP/2001-00000006");
    {
        let live = s.app().live.clone();
        wait_for("resumed", || live.channel(alice_call).is_some_and(|c| !c.on_hold)).await;
    }
    for digit in ['4', '2', '#'] {
        ami.send_raw(dtmf_end(&at, alice_chan, alice_call, alice_call, digit).as_bytes());
    }
    {
        let live = s.app().live.clone();
        wait_for("digits", || live.channel(alice_call).is_some_and(|c| c.dtmf_count == 3)).await;
    }
    ami.replay_all();
    let mut events = Vec::new();
    wait_for("both ended", || {
        events.extend(drain(&mut rx, "call_"));
        events.iter().filter(|e| e["name"] == "call_ended").count() == 2
    })
    .await;
    let names: Vec<String> = names_for(&events, alice_call)
        .into_iter()
        .filter(|n| n != "call_updated")
        .collect();
    assert_eq!(
        names,
        [
            "call_created",
            "call_answered",
            "call_held",
            "call_resumed",
            "call_dtmf_created",
            "call_dtmf_created",
            "call_dtmf_created",
            "call_ended"
        ],
        "{events:#?}"
    );
    let digits: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "call_dtmf_created")
        .map(|e| &e["data"]["digit"])
        .collect();
    assert_eq!(digits, ["4", "2", "#"]);
    let held = events.iter().find(|e| e["name"] == "call_held").expect("held");
    assert_eq!(held["data"], json!({ "call_id": alice_call }));
    assert_eq!(
        held["required_acl"],
        format!("events.calls.{}", alice["uuid"].as_str().expect("uuid"))
    );
    // The held party is not the one who holds: Bob's leg has no hold event.
    let bob_names = names_for(&events, "1795874868.7");
    assert!(!bob_names.iter().any(|n| n == "call_held"), "{bob_names:?}");
}

/// The status and `error_id` of a refused `POST /users/me/calls`.
async fn my_originate_error(s: &TestServer, token: &str, body: Value) -> (StatusCode, String) {
    let (code, err) = s.post(&format!("{CALLD}/users/me/calls"), token, body).await;
    (code, err["error_id"].as_str().unwrap_or_default().to_string())
}

/// The query and JSON body of the `POST /ari/channels` requests the fake ARI got.
pub(crate) fn originates(ari: &FakeAri) -> Vec<(std::collections::BTreeMap<String, String>, Value)> {
    ari.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.uri.starts_with("/ari/channels?"))
        .map(|r| {
            let query = r.uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
            let pairs: std::collections::BTreeMap<String, String> = serde_urlencoded::from_str(query).expect("query");
            (pairs, serde_json::from_str(&r.body).unwrap_or(Value::Null))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn originate_rings_the_users_line_then_goes_to_the_destination() {
    let (_ami, ari, s, alice, _bob) = provisioned().await;
    let t = s.admin_token.clone();
    let alice_uuid = alice["uuid"].as_str().expect("uuid").to_string();
    let body = |source: Value| json!({"source": source, "destination": {"context": "default", "extension": "2002", "priority": 1}});

    let (code, call) = s
        .post(&format!("{CALLD}/calls"), &t, json!({"source": {"user": alice_uuid}, "destination": {"context": "default", "extension": "2002", "priority": 1}, "variables": {"CUSTOMER": "42", "__TRACK": "yes"}}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{call}");
    assert!(call["call_id"].as_str().is_some_and(|id| !id.is_empty()), "{call}");
    assert_eq!(call["user_uuid"], alice_uuid.as_str());
    assert_eq!(call["line_id"], alice["lines"][0]["id"]);
    assert_eq!(call["status"], "Down");
    assert_eq!(call["dialed_extension"], "2002");
    let sent = originates(&ari);
    assert_eq!(sent.len(), 1);
    let (q, b) = &sent[0];
    assert_eq!(q.get("endpoint").map(String::as_str), Some("PJSIP/2001"));
    assert_eq!(q.get("extension").map(String::as_str), Some("2002"));
    assert_eq!(q.get("context").map(String::as_str), Some("default"));
    assert_eq!(q.get("priority").map(String::as_str), Some("1"));
    assert!(
        q.get("callerId").is_none(),
        "the call keeps the phone's own caller id: {q:?}"
    );
    let vars = &b["variables"];
    assert_eq!(vars["ACCENT_USERUUID"], alice_uuid.as_str());
    assert_eq!(vars["CONNECTEDLINE(num)"], "2002", "the phone shows whom it calls");
    assert_eq!(vars["CUSTOMER"], "42");
    assert_eq!(vars["__TRACK"], "yes");
    assert!(vars.get("PJSIP_HEADER(add,Call-Info)").is_none());

    // Auto-answer asks the phone to pick up by itself.
    let (code, _) = s
        .post(
            &format!("{CALLD}/calls"),
            &t,
            body(json!({"user": alice_uuid, "auto_answer": true})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let last = originates(&ari).pop().expect("sent");
    assert!(
        last.1["variables"]["PJSIP_HEADER(add,Call-Info)"]
            .as_str()
            .is_some_and(|v| v.ends_with(";answer-after=0")),
        "{}",
        last.1
    );

    // The user's own originate goes to the extension in the line's context.
    let me = s.login("alice", "pw-alice-123").await;
    let (code, call) = s
        .post(&format!("{CALLD}/users/me/calls"), &me, json!({"extension": "2002"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{call}");
    let (q, _) = originates(&ari).pop().expect("sent");
    assert_eq!(
        (q["endpoint"].as_str(), q["extension"].as_str(), q["context"].as_str()),
        ("PJSIP/2001", "2002", "default")
    );

    // From the mobile: through the line's context, once the user has a mobile number.
    assert_eq!(
        my_originate_error(&s, &me, json!({"extension": "2002", "from_mobile": true})).await,
        (StatusCode::BAD_REQUEST, "user-missing-mobile".to_string())
    );
    let (code, body_) = s
        .put(
            &format!("{C}/users/{}", alice["id"]),
            &t,
            json!({"firstname": "Alice", "mobile_phone_number": "0611223344"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body_}");
    let (code, call) = s
        .post(
            &format!("{CALLD}/users/me/calls"),
            &me,
            json!({"extension": "2002", "from_mobile": true}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{call}");
    assert_eq!(
        originates(&ari).pop().expect("sent").0["endpoint"],
        "Local/0611223344@default"
    );

    // All lines of a user with two: every line rings through the Local channel.
    let (code, dave) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"firstname": "Dave", "lines": [
                {"context": "default", "endpoint_sip": {"name": "2005", "auth_section_options": [["username", "2005"], ["password", "x-secret-5"]]}},
                {"context": "default", "endpoint_sip": {"name": "2006", "auth_section_options": [["username", "2006"], ["password", "x-secret-6"]]}}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{dave}");
    let (code, _) = s
        .post(
            &format!("{CALLD}/calls"),
            &t,
            body(json!({"user": dave["uuid"], "all_lines": true})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let (q, b) = originates(&ari).pop().expect("sent");
    assert_eq!(q["endpoint"], "Local/s@accent-originate-all-lines");
    assert_eq!(b["variables"]["__ACCENT_ORIGINATE_INTERFACES"], "PJSIP/2005&PJSIP/2006");
    // A given line wins over all_lines.
    let second = dave["lines"][1]["id"].clone();
    let (code, call) = s
        .post(
            &format!("{CALLD}/calls"),
            &t,
            body(json!({"user": dave["uuid"], "all_lines": true, "line_id": second})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{call}");
    assert_eq!(call["line_id"], second);
    assert_eq!(originates(&ari).pop().expect("sent").0["endpoint"], "PJSIP/2006");

    // Bad requests: each refused with nothing sent to Asterisk.
    let (_, carol) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Carol"})).await;
    let before = originates(&ari).len();
    let cases = [
        (body(json!({"user": carol["uuid"]})), "user-missing-main-line"),
        (
            body(json!({"user": alice_uuid, "line_id": second})),
            "invalid-user-line",
        ),
        (
            body(json!({"user": "9f1c2b3a-0000-4000-8000-000000000000"})),
            "invalid-user",
        ),
        (body(json!({"user": "not-a-uuid"})), "invalid-data"),
        (body(json!({"user": alice_uuid, "colour": "red"})), "invalid-data"),
        (json!({"source": {"user": alice_uuid}}), "invalid-data"),
        (
            json!({"source": {"user": alice_uuid}, "destination": {"context": "default", "extension": "20,02)", "priority": 1}}),
            "invalid-data",
        ),
        (
            json!({"source": {"user": alice_uuid}, "destination": {"context": "default", "extension": "2002", "priority": 0}}),
            "invalid-data",
        ),
        (
            json!({"source": {"user": alice_uuid}, "destination": {"context": "default", "extension": "2002", "priority": 1}, "variables": {"FILE(/etc/passwd)": "x"}}),
            "invalid-data",
        ),
        (
            json!({"source": {"user": alice_uuid}, "destination": {"context": "default", "extension": "2002", "priority": 1}, "variables": {"N": 1}}),
            "invalid-data",
        ),
        (json!([1, 2]), "invalid-data"),
    ];
    for (req, error_id) in cases {
        let (code, err) = s.post(&format!("{CALLD}/calls"), &t, req.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{req}: {err}");
        assert_eq!(err["error_id"], error_id, "{req}: {err}");
    }
    let raw = s
        .client
        .post(format!("{}{CALLD}/calls", s.base))
        .header("X-Auth-Token", &t)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"source": {"user": alice_uuid}, "destination": {"context": "default", "extension": "2002", "priority": 1},
                      "variables": {"BIG": "x".repeat(1 << 20)}});
    let (code, _) = s.post(&format!("{CALLD}/calls"), &t, huge).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    // A user originates only from their own lines, with their own ACL.
    assert_eq!(
        my_originate_error(&s, &me, json!({"extension": "2002", "line_id": second})).await,
        (StatusCode::BAD_REQUEST, "invalid-user-line".to_string())
    );
    let (code, _) = s
        .post(&format!("{CALLD}/calls"), &me, body(json!({"user": alice_uuid})))
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(originates(&ari).len(), before, "nothing sent for bad requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_and_trunks_show_registration_and_calls_with_events() {
    // Scenario 20: 2001 and 2002 register, then unregister.
    let scenario = Scenario::load("20").expect("scenario");
    let ami = manual_ami(&scenario).await;
    // The phones are not registered yet when accentd starts: the device list it resyncs with
    // is empty (in the recorded framing), else the registrations would change nothing.
    ami.respond_with(
        "DeviceStateList",
        Some(vec![
            AmiMessage::new()
                .with("Response", "Success")
                .with("EventList", "start")
                .with("Message", "Device State Changes will follow"),
            AmiMessage::new()
                .with("Event", "DeviceStateListComplete")
                .with("EventList", "Complete")
                .with("ListItems", "0"),
        ]),
    );
    let s = TestServer::start_with_ami(&ami).await;
    first_resync(&s).await;
    let t = s.admin_token.clone();
    default_context(&s).await;
    let alice = user(&s, "Alice", "alice", "2001").await;
    let (_, custom) = s
        .post(&format!("{C}/endpoints/custom"), &t, json!({"interface": "dahdi/g1"}))
        .await;
    let (_, dahdi) = s.post(&format!("{C}/trunks"), &t, json!({})).await;
    let (code, _) = s
        .put(
            &format!("{C}/trunks/{}/endpoints/custom/{}", dahdi["id"], custom["id"]),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let bob = user(&s, "Bob", "bob", "2002").await;
    let (code, trunk) = s.post(&format!("{C}/trunks"), &t, json!({})).await;
    assert_eq!(code, StatusCode::CREATED, "{trunk}");
    let (_, sip) = s
        .post(
            &format!("{C}/endpoints/sip"),
            &t,
            json!({"name": "pstn-trunk", "label": "provider"}),
        )
        .await;
    let (code, _) = s
        .put(
            &format!(
                "{C}/trunks/{}/endpoints/sip/{}",
                trunk["id"],
                sip["uuid"].as_str().expect("uuid")
            ),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let mut rx = s.app().bus.subscribe();
    let line_of = |u: &Value| u["lines"][0]["id"].clone();

    let (code, lines) = s.get(&format!("{CALLD}/lines"), &t).await;
    assert_eq!(code, StatusCode::OK, "{lines}");
    assert_eq!(lines["total"], 2);
    assert_eq!(lines["items"][0]["id"], line_of(&alice));
    assert_eq!(lines["items"][0]["name"], "2001");

    // Both register.
    let timeline = ami.recording().timeline().to_vec();
    let registered = past_nth(&timeline, 2, |m| {
        m.get("Event") == Some("DeviceStateChange") && m.get("Device").is_some_and(|d| d.starts_with("PJSIP/"))
    });
    ami.replay_next(registered);
    {
        let live = s.app().live.clone();
        wait_for("registered", || live.device_state("PJSIP/2002").is_some()).await;
    }
    let (_, lines) = s.get(&format!("{CALLD}/lines"), &t).await;
    let regs: Vec<&Value> = lines["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| &l["registered"])
        .collect();
    assert_eq!(regs, [true, true], "{lines}");
    let (code, trunks) = s.get(&format!("{CALLD}/trunks"), &t).await;
    assert_eq!(code, StatusCode::OK);
    let items = trunks["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{trunks}");
    assert_eq!(
        (
            &items[1]["id"],
            &items[1]["technology"],
            &items[1]["name"],
            &items[1]["current_call_count"]
        ),
        (&trunk["id"], &json!("sip"), &json!("pstn-trunk"), &json!(0))
    );
    assert_eq!(
        items[0],
        json!({"id": dahdi["id"], "type": "trunk", "technology": "custom", "name": "dahdi/g1",
               "registered": null, "current_call_count": 0}),
        "no status for what Asterisk's device states do not cover"
    );

    // Both unregister: events for each change.
    ami.replay_all();
    {
        let live = s.app().live.clone();
        wait_for("unregistered", || {
            live.device_state("PJSIP/2001")
                .is_some_and(|d| d.state == accentd::control::model::DeviceStateValue::Unavailable)
        })
        .await;
    }
    let mut events = Vec::new();
    wait_for("status events", || {
        events.extend(drain(&mut rx, "line_status_updated"));
        events.iter().filter(|e| e["data"]["registered"] == false).count() == 2
    })
    .await;
    let alice_regs: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["id"] == line_of(&alice))
        .map(|e| &e["data"]["registered"])
        .collect();
    assert_eq!(alice_regs, [true, false], "{events:#?}");
    let e = &events[0];
    assert_eq!(e["tenant_uuid"], alice["tenant_uuid"]);
    assert_eq!(e["user_uuid:*"], true, "{e}");
    assert!(
        e["required_acl"]
            .as_str()
            .is_some_and(|a| a.starts_with("events.lines.")),
        "{e}"
    );
    assert!(events.iter().any(|e| e["data"]["id"] == line_of(&bob)));

    // Tenants and ACLs.
    let me = s.login("alice", "pw-alice-123").await;
    let (code, _) = s.get(&format!("{CALLD}/lines"), &me).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let other = other_tenant(&s).await;
    let (code, list) = as_tenant(&s, &other, Method::GET, "lines").await;
    assert_eq!((code, &list["items"]), (StatusCode::OK, &json!([])));
}

/// A channel event in the shape scenario 21 recorded (`Newchannel`, `Newstate`,
/// `BridgeEnter`, `Hangup`...): the channel block of `chan`, then `extra` headers.
fn chan_event(event: &str, at: &str, chan: (&str, &str, &str, &str), extra: &[(&str, &str)]) -> String {
    let (name, uniqueid, state, number) = chan;
    let code = match state {
        "Up" => "6",
        "Ringing" => "5",
        _ => "0",
    };
    let mut text = format!(
        "Event: {event}\r\nPrivilege: call,all\r\nTimestamp: {at}\r\nChannel: {name}\r\nChannelState: {code}\r\n\
         ChannelStateDesc: {state}\r\nCallerIDNum: {number}\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\n\
         ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: default\r\nExten: \r\nPriority: 1\r\n\
         Uniqueid: {uniqueid}\r\nLinkedid: {ALICE_CALL}\r\n"
    );
    for (k, v) in extra {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text
}

fn bridge_headers(id: &str) -> Vec<(&str, &str)> {
    vec![
        ("BridgeUniqueid", id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", "1"),
        ("BridgeVideoSourceMode", "none"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_and_attended_transfers_with_their_events() {
    let (ami, _ari, s, alice, bob) = bridged_call().await;
    ami.respond_with(
        "BlindTransfer",
        Some(vec![AmiMessage::new()
            .with("Response", "Success")
            .with("Message", "Transfer succeeded")]),
    );
    for action in ["Atxfer", "CancelAtxfer", "Hangup"] {
        ami.respond_with(action, Some(ami_success()));
    }
    let t = s.admin_token.clone();
    let alice_uuid = alice["uuid"].as_str().expect("uuid").to_string();
    let mut rx = s.app().bus.subscribe();
    let me = s.login("alice", "pw-alice-123").await;
    let bob_token = s.login("bob", "pw-bob-123").await;
    let alice_chan = "PJSIP/2001-00000000";

    // Blind: Asterisk moves Bob at once.
    let (code, tr) = s
        .post(
            &format!("{CALLD}/transfers"),
            &t,
            json!({"transferred_call": BOB_CALL, "initiator_call": ALICE_CALL, "context": "default", "exten": "2003", "flow": "blind"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{tr}");
    assert_eq!(tr["status"], "blind_transferred");
    assert_eq!(tr["initiator_uuid"], alice_uuid.as_str());
    assert_eq!(tr["initiator_tenant_uuid"], alice["tenant_uuid"]);
    assert_eq!(
        sent(&ami, "BlindTransfer"),
        [pairs(&[
            ("Channel", alice_chan),
            ("Context", "default"),
            ("Exten", "2003")
        ])]
    );
    let events = collect(&mut rx, "transfer_", 3).await;
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["transfer_created", "transfer_completed", "transfer_ended"]);
    assert_eq!(events[0]["required_acl"], format!("events.transfers.{alice_uuid}"));

    // Attended by the user, cancelled.
    let (code, tr) = s
        .post(
            &format!("{CALLD}/users/me/transfers"),
            &me,
            json!({"initiator_call": ALICE_CALL, "exten": "2003"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{tr}");
    assert_eq!(
        (tr["status"].as_str(), tr["flow"].as_str()),
        (Some("starting"), Some("attended"))
    );
    assert_eq!(tr["transferred_call"], BOB_CALL);
    assert_eq!(
        sent(&ami, "Atxfer"),
        [pairs(&[
            ("Channel", alice_chan),
            ("Context", "from-internal"),
            ("Exten", "2003")
        ])],
        "in the context the call came from"
    );
    let id = tr["id"].as_str().expect("id").to_string();
    let (_, mine) = s.get(&format!("{CALLD}/users/me/transfers"), &me).await;
    assert_eq!(mine["items"][0]["id"], id.as_str());
    let (code, again) = s
        .post(
            &format!("{CALLD}/users/me/transfers"),
            &me,
            json!({"initiator_call": ALICE_CALL, "exten": "2004"}),
        )
        .await;
    assert_eq!(
        (code, again["error_id"].clone()),
        (StatusCode::CONFLICT, json!("transfer-already-started"))
    );
    let (code, _) = s.get(&format!("{CALLD}/transfers/{id}"), &t).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = s.delete(&format!("{CALLD}/users/me/transfers/{id}"), &bob_token).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "not Bob's transfer");
    let (code, _) = s.delete(&format!("{CALLD}/users/me/transfers/{id}"), &me).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(sent(&ami, "CancelAtxfer"), [pairs(&[("Channel", alice_chan)])]);
    let (code, _) = s.get(&format!("{CALLD}/transfers/{id}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "gone once cancelled");

    // Attended again, followed through Asterisk's events until Bob talks to Carol.
    let (code, tr) = s
        .post(
            &format!("{CALLD}/transfers"),
            &t,
            json!({"transferred_call": BOB_CALL, "initiator_call": ALICE_CALL, "context": "default", "exten": "2003"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{tr}");
    let id = tr["id"].as_str().expect("id").to_string();
    let at = "1795874807.000000";
    let alice_up = (alice_chan, ALICE_CALL, "Up", "2001");
    let carol_ringing = ("PJSIP/2003-00000009", "1795874804.9", "Ringing", "2003");
    let carol_up = ("PJSIP/2003-00000009", "1795874804.9", "Up", "2003");
    let bob_up = ("PJSIP/2002-00000001", BOB_CALL, "Up", "2002");
    let bridge = bridge_headers("xfer-bridge");
    ami.send_raw(chan_event("Newchannel", at, carol_ringing, &[]).as_bytes());
    ami.send_raw(chan_event("BridgeEnter", at, alice_up, &bridge).as_bytes());
    ami.send_raw(chan_event("BridgeEnter", at, carol_ringing, &bridge).as_bytes());
    wait_for("ringback", || {
        s.app()
            .calld
            .get_transfer_status(&id)
            .is_some_and(|(st, r)| st == "ringback" && r.as_deref() == Some("1795874804.9"))
    })
    .await;
    ami.send_raw(chan_event("Newstate", "1795874808.000000", carol_up, &[]).as_bytes());
    wait_for("answered", || {
        s.app()
            .calld
            .get_transfer_status(&id)
            .is_some_and(|(st, _)| st == "answered")
    })
    .await;
    let (code, body) = s.put(&format!("{CALLD}/transfers/{id}/complete"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(sent(&ami, "Hangup"), [pairs(&[("Channel", alice_chan)])]);
    ami.send_raw(
        chan_event(
            "Hangup",
            "1795874809.000000",
            alice_up,
            &[("Cause", "16"), ("Cause-txt", "Normal Clearing")],
        )
        .as_bytes(),
    );
    ami.send_raw(chan_event("BridgeEnter", "1795874809.000000", bob_up, &bridge).as_bytes());
    let mut events = Vec::new();
    wait_for("completed", || {
        events.extend(drain(&mut rx, "transfer_"));
        events
            .iter()
            .any(|e| e["name"] == "transfer_ended" && e["data"]["id"] == id.as_str())
    })
    .await;
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["data"]["id"] == id.as_str())
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "transfer_created",
            "transfer_updated",
            "transfer_updated",
            "transfer_answered",
            "transfer_completed",
            "transfer_ended"
        ]
    );
    let answered = events
        .iter()
        .find(|e| e["name"] == "transfer_answered")
        .expect("answered");
    assert_eq!(answered["data"]["recipient_call"], "1795874804.9");
    let (code, _) = s.get(&format!("{CALLD}/transfers/{id}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let _ = bob;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transfers_are_refused_with_nothing_sent() {
    let (ami, _ari, s, _alice, _bob) = bridged_call().await;
    ami.respond_with("Atxfer", Some(ami_success()));
    let t = s.admin_token.clone();
    let body = |transferred: &str, initiator: &str, extra: Value| {
        let mut b = json!({"transferred_call": transferred, "initiator_call": initiator, "context": "default", "exten": "2003"});
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    };
    let cases = [
        (
            body(ALICE_CALL, ALICE_CALL, json!({})),
            StatusCode::BAD_REQUEST,
            "transfer-creation-error",
        ),
        (
            body("9.9", ALICE_CALL, json!({})),
            StatusCode::NOT_FOUND,
            "no-such-call",
        ),
        (
            body(BOB_CALL, ALICE_CALL, json!({"exten": "20;03"})),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            body(BOB_CALL, ALICE_CALL, json!({"flow": "sideways"})),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            body(BOB_CALL, ALICE_CALL, json!({"variables": {"A": "b"}})),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            body(BOB_CALL, ALICE_CALL, json!({"timeout": 20})),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            body(BOB_CALL, ALICE_CALL, json!({"extra": 1})),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            json!({"initiator_call": ALICE_CALL}),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
    ];
    for (req, status, error_id) in cases {
        let (code, err) = s.post(&format!("{CALLD}/transfers"), &t, req.clone()).await;
        assert_eq!(
            (code, err["error_id"].clone()),
            (status, json!(error_id)),
            "{req}: {err}"
        );
    }
    assert!(sent(&ami, "Atxfer").is_empty());
    // Another user's call cannot be the initiator of a user's transfer.
    let me = s.login("alice", "pw-alice-123").await;
    let (code, _) = s
        .post(
            &format!("{CALLD}/users/me/transfers"),
            &me,
            json!({"initiator_call": BOB_CALL, "exten": "2003"}),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.delete(&format!("{CALLD}/transfers/nope"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.put(&format!("{CALLD}/transfers/nope/complete"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(sent(&ami, "Atxfer").is_empty());
}
