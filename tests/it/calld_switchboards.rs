//! calld switchboards against the fake Asterisk (scenario 21's phones 2001-2003
//! provisioned as Alice, Bob and Carol's lines; nothing of the recording
//! replayed): a call enters accentd's Stasis application for a switchboard
//! (`switchboard_queue,<uuid>`), is answered and queued in the holding bridge;
//! the operator (a member) answers it (originate into the application, then a
//! mixing bridge), holds it (held bridge, operator hung up), takes it back and
//! transfers it with `/transfers`. Each step's exact ARI requests and events;
//! then unknown ids, tenants, non-members, ACLs and no Asterisk.

use crate::calld_applications::{req, requests, wait_event, wait_request, Req};
use crate::calld_calls::{ami_success, pairs, provisioned, sent};
use crate::common::TestServer;
use crate::confd_switchboards::switchboard;
use accentd::ami::frame::AmiMessage;
use accentd::fake_asterisk::ari::FakeAri;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CALLD: &str = "/api/calld/1.0";
const C: &str = "/api/confd/1.1";
/// The caller's channel (Carol's phone, 2003).
const CALLER: &str = "1764000000.101";
const CALLER_NAME: &str = "PJSIP/2003-00000040";

fn channel(id: &str, name: &str, state: &str, args: &str, cid: (&str, &str)) -> Value {
    json!({"id": id, "name": name, "state": state, "protocol_id": "",
           "caller": {"name": cid.0, "number": cid.1}, "connected": {"name": "", "number": ""},
           "accountcode": "", "dialplan": {"context": "default", "exten": "s", "priority": 1,
           "app_name": "Stasis", "app_data": format!("accent,{args}")},
           "creationtime": "2026-11-29T16:00:00.000+0000", "language": "en"})
}

fn event(kind: &str, mut fields: Value) -> String {
    fields["type"] = json!(kind);
    fields["timestamp"] = json!("2026-11-29T16:00:01.000+0000");
    fields["asterisk_id"] = json!("02:fc:00:00:00:01");
    fields["application"] = json!("accent");
    fields.to_string()
}

/// A channel is created and enters the application with `args`.
fn enters(ari: &FakeAri, ch: &Value, args: &[&str]) {
    ari.inject(&event("ChannelCreated", json!({"channel": ch})));
    ari.inject(&event("StasisStart", json!({"args": args, "channel": ch})));
}

fn bridge(id: &str, kind: &str, channels: &[&str]) -> Value {
    json!({"id": id, "technology": if kind == "holding" { "holding_bridge" } else { "simple_bridge" },
           "bridge_type": kind, "bridge_class": "stasis", "creator": "Stasis", "name": id,
           "channels": channels, "creationtime": "2026-11-29T16:00:00.000+0000", "video_mode": "talker"})
}

/// What Asterisk tells after the bridge requests: the bridge, who entered, who left.
fn bridged(ari: &FakeAri, b: &Value, entered: &[&Value]) {
    ari.inject(&event("BridgeCreated", json!({"bridge": b})));
    for ch in entered {
        ari.inject(&event("ChannelEnteredBridge", json!({"bridge": b, "channel": ch})));
    }
}

/// The mixing bridge calld created after `from`, and the requests since.
fn created_mixing(ari: &FakeAri, from: usize) -> (String, Vec<Req>) {
    let sent: Vec<Req> = requests(ari).into_iter().skip(from).collect();
    let id = sent
        .iter()
        .find(|(m, p, q)| m == "POST" && p == "/ari/bridges" && q.get("type").map(String::as_str) == Some("mixing"))
        .and_then(|(_, _, q)| q.get("bridgeId").cloned())
        .expect("mixing bridge created");
    (id, sent)
}

async fn put(s: &TestServer, token: &str, path: &str) -> (StatusCode, Value) {
    s.call(Method::PUT, &format!("{CALLD}{path}"), Some(token), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_queued_answered_held_taken_back_and_transferred() {
    let (ami, ari, s, _alice, bob) = provisioned().await;
    ami.respond_with(
        "BlindTransfer",
        Some(vec![AmiMessage::new()
            .with("Response", "Success")
            .with("Message", "Transfer succeeded")]),
    );
    ami.respond_with("Hangup", Some(ami_success()));
    let t = s.admin_token.clone();
    let (code, carol) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"firstname": "Carol", "lines": [{"context": "default",
                   "endpoint_sip": {"name": "2003", "auth_section_options": [["username", "2003"], ["password", "x-secret-3"]]}}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{carol}");
    let uuid = switchboard(
        &s,
        json!({"name": "Reception", "queue_music_on_hold": "jazz", "waiting_room_music_on_hold": "classical"}),
    )
    .await;
    let (code, body) = s
        .put(
            &format!("{C}/switchboards/{uuid}/members/users"),
            &t,
            json!({"users": [{"uuid": bob["uuid"]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let bob_token = s.login("bob", "pw-bob-123").await;
    let mut bus = s.app().bus.subscribe();
    let sb = format!("/switchboards/{uuid}");
    let queue = format!("switchboard-{uuid}-queue");
    let hold = format!("switchboard-{uuid}-hold");

    // 1. Carol's call enters the application for the switchboard: answered, queued.
    let from = requests(&ari).len();
    let caller = channel(
        CALLER,
        CALLER_NAME,
        "Ring",
        &format!("switchboard_queue,{uuid}"),
        ("Carol", "2003"),
    );
    enters(&ari, &caller, &["switchboard_queue", &uuid]);
    let ev = wait_event(&mut bus, "switchboard_queued_calls_updated").await;
    let item = json!({"id": CALLER, "caller_id_name": "Carol", "caller_id_number": "2003"});
    assert_eq!(ev.data, json!({"switchboard_uuid": uuid, "items": [item]}));
    assert_eq!(ev.routing_key, format!("switchboards.{uuid}.calls.queued.updated"));
    assert_eq!(
        ev.required_acl,
        format!("events.switchboards.{uuid}.calls.queued.updated")
    );
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![
            req("POST", &format!("/ari/channels/{CALLER}/answer"), &[]),
            req(
                "POST",
                "/ari/bridges",
                &[("type", "holding"), ("bridgeId", &queue), ("name", &queue)]
            ),
            req("POST", &format!("/ari/bridges/{queue}/moh"), &[("mohClass", "jazz")]),
            req(
                "POST",
                &format!("/ari/bridges/{queue}/addChannel"),
                &[("channel", CALLER)]
            ),
        ]
    );
    let (code, list) = s.get(&format!("{CALLD}{sb}/calls/queued"), &bob_token).await;
    assert_eq!((code, list), (StatusCode::OK, json!({"items": [item]})));

    // 2. Bob answers it: his line rings, into the application; once he answers, both are bridged.
    let from = requests(&ari).len();
    let (code, answer) = put(&s, &bob_token, &format!("{sb}/calls/queued/{CALLER}/answer")).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let operator = answer["call_id"].as_str().expect("call_id").to_string();
    let args = format!("switchboard_answer,{uuid},{CALLER}");
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![req(
            "POST",
            "/ari/channels",
            &[
                ("endpoint", "PJSIP/2002"),
                ("app", "accent"),
                ("appArgs", &args),
                ("callerId", "\"Carol\" <2003>")
            ]
        )]
    );
    let from = requests(&ari).len();
    let op = channel(&operator, "PJSIP/2002-00000041", "Up", &args, ("Carol", "2003"));
    enters(&ari, &op, &["switchboard_answer", &uuid, CALLER]);
    // The call leaves the queue, then the answer is told.
    let ev = wait_event(&mut bus, "switchboard_queued_calls_updated").await;
    assert_eq!(ev.data["items"], json!([]));
    let ev = wait_event(&mut bus, "switchboard_queued_call_answered").await;
    assert_eq!(
        ev.data,
        json!({"switchboard_uuid": uuid, "operator_call_id": operator, "queued_call_id": CALLER})
    );
    let (mixing, first) = created_mixing(&ari, from);
    let both = format!("{CALLER},{operator}");
    assert_eq!(
        first,
        vec![
            req(
                "POST",
                "/ari/bridges",
                &[("type", "mixing"), ("bridgeId", &mixing), ("name", &mixing)]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{mixing}/addChannel"),
                &[("channel", &both)]
            ),
        ]
    );
    bridged(&ari, &bridge(&mixing, "mixing", &[CALLER, &operator]), &[&caller, &op]);

    // 3. Bob holds it: the held bridge with the waiting room's music; Bob's leg hangs up.
    let from = requests(&ari).len();
    let (code, body) = put(&s, &bob_token, &format!("{sb}/calls/held/{CALLER}")).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let ev = wait_event(&mut bus, "switchboard_held_calls_updated").await;
    assert_eq!(ev.data, json!({"switchboard_uuid": uuid, "items": [item]}));
    assert_eq!(
        ev.required_acl,
        format!("events.switchboards.{uuid}.calls.held.updated")
    );
    wait_request(&ari, from, req("DELETE", &format!("/ari/bridges/{mixing}"), &[])).await;
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![
            req(
                "POST",
                "/ari/bridges",
                &[("type", "holding"), ("bridgeId", &hold), ("name", &hold)]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{hold}/moh"),
                &[("mohClass", "classical")]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{hold}/addChannel"),
                &[("channel", CALLER)]
            ),
            req("DELETE", &format!("/ari/channels/{operator}"), &[]),
            req("DELETE", &format!("/ari/bridges/{mixing}"), &[]),
        ]
    );
    let (code, list) = s.get(&format!("{CALLD}{sb}/calls/held"), &bob_token).await;
    assert_eq!((code, list), (StatusCode::OK, json!({"items": [item]})));
    let (_, list) = s.get(&format!("{CALLD}{sb}/calls/queued"), &bob_token).await;
    assert_eq!(list, json!({"items": []}));
    let gone = json!({"channel": op});
    ari.inject(&event(
        "ChannelLeftBridge",
        json!({"bridge": bridge(&mixing, "mixing", &[CALLER]), "channel": caller}),
    ));
    ari.inject(&event("StasisEnd", gone.clone()));
    ari.inject(&event(
        "ChannelDestroyed",
        json!({"channel": op, "cause": 16, "cause_txt": "Normal Clearing"}),
    ));
    bridged(&ari, &bridge(&hold, "holding", &[CALLER]), &[&caller]);

    // 4. Bob takes it back from the held calls.
    let from = requests(&ari).len();
    let (code, answer) = put(&s, &bob_token, &format!("{sb}/calls/held/{CALLER}/answer")).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let operator2 = answer["call_id"].as_str().expect("call_id").to_string();
    assert_ne!(operator2, operator);
    let op2 = channel(&operator2, "PJSIP/2002-00000042", "Up", &args, ("Carol", "2003"));
    enters(&ari, &op2, &["switchboard_answer", &uuid, CALLER]);
    let ev = wait_event(&mut bus, "switchboard_held_calls_updated").await;
    assert_eq!(ev.data["items"], json!([]));
    let ev = wait_event(&mut bus, "switchboard_held_call_answered").await;
    assert_eq!(
        ev.data,
        json!({"switchboard_uuid": uuid, "operator_call_id": operator2, "held_call_id": CALLER})
    );
    assert_eq!(
        ev.routing_key,
        format!(
            "switchboards.{uuid}.calls.held.{}.answer.updated",
            CALLER.replace('.', "__DOT__")
        )
    );
    let (mixing2, since) = created_mixing(&ari, from);
    assert_eq!(since[0].1, "/ari/channels");
    assert_eq!(since[0].2.get("appArgs"), Some(&args));
    let both = format!("{CALLER},{operator2}");
    assert_eq!(
        since[2],
        req(
            "POST",
            &format!("/ari/bridges/{mixing2}/addChannel"),
            &[("channel", &both)]
        )
    );
    ari.inject(&event(
        "ChannelLeftBridge",
        json!({"bridge": bridge(&hold, "holding", &[]), "channel": caller}),
    ));
    bridged(
        &ari,
        &bridge(&mixing2, "mixing", &[CALLER, &operator2]),
        &[&caller, &op2],
    );

    // 5. Bob transfers Carol to Alice (blind): AMI's BlindTransfer on Bob's channel.
    {
        let live = s.app().live.clone();
        let op2_id = operator2.clone();
        crate::common::wait_for("the operator talks to the caller", || {
            live.channel(&op2_id)
                .is_some_and(|c| c.talking_to.iter().any(|p| p == CALLER))
        })
        .await;
    }
    let (code, tr) = s
        .post(
            &format!("{CALLD}/transfers"),
            &t,
            json!({"transferred_call": CALLER, "initiator_call": operator2, "context": "default",
                   "exten": "2001", "flow": "blind"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{tr}");
    assert_eq!(
        sent(&ami, "BlindTransfer"),
        [pairs(&[
            ("Channel", "PJSIP/2002-00000042"),
            ("Context", "default"),
            ("Exten", "2001")
        ])]
    );
    wait_event(&mut bus, "transfer_created").await;

    // The caller hangs up: it leaves every list, nothing is left.
    ari.inject(&event("StasisEnd", json!({"channel": caller})));
    for kind in ["queued", "held"] {
        let (_, list) = s.get(&format!("{CALLD}{sb}/calls/{kind}"), &t).await;
        assert_eq!(list, json!({"items": []}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_non_members_tenants_acls_and_no_asterisk() {
    let (_ami, ari, s, alice, bob) = provisioned().await;
    let t = s.admin_token.clone();
    let uuid = switchboard(&s, json!({"name": "Reception"})).await;
    let (code, _) = s
        .put(
            &format!("{C}/switchboards/{uuid}/members/users"),
            &t,
            json!({"users": [{"uuid": bob["uuid"]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let mut bus = s.app().bus.subscribe();
    let caller = channel(CALLER, CALLER_NAME, "Ring", "", ("Carol", "2003"));
    enters(&ari, &caller, &["switchboard_queue", &uuid]);
    wait_event(&mut bus, "switchboard_queued_calls_updated").await;
    let sb = format!("/switchboards/{uuid}");
    let bob_token = s.login("bob", "pw-bob-123").await;
    let alice_token = s.login("alice", "pw-alice-123").await;
    let _ = alice;

    // A call of an unknown switchboard goes back to the dialplan (its fallback).
    let from = requests(&ari).len();
    let stray = channel("1764000000.102", "PJSIP/2003-00000043", "Ring", "", ("Carol", "2003"));
    let nobody = uuid::Uuid::new_v4().to_string();
    enters(&ari, &stray, &["switchboard_queue", &nobody]);
    wait_request(&ari, from, req("POST", "/ari/channels/1764000000.102/continue", &[])).await;

    let unknown = uuid::Uuid::new_v4();
    for (token, path, want, error) in [
        (
            &t,
            format!("/switchboards/{unknown}/calls/queued"),
            StatusCode::NOT_FOUND,
            "no-such-switchboard",
        ),
        (
            &t,
            "/switchboards/nope/calls/held".to_string(),
            StatusCode::NOT_FOUND,
            "no-such-switchboard",
        ),
        (&t, format!("{sb}/calls/parked"), StatusCode::NOT_FOUND, "not-found"),
    ] {
        let (code, body) = s.get(&format!("{CALLD}{path}"), token).await;
        assert_eq!(code, want, "{path}: {body}");
        assert_eq!(body["error_id"], error, "{path}: {body}");
    }
    for (token, path, want, error) in [
        (
            &bob_token,
            format!("{sb}/calls/queued/nope/answer"),
            StatusCode::NOT_FOUND,
            "no-such-call",
        ),
        (
            &bob_token,
            format!("{sb}/calls/held/{CALLER}/answer"),
            StatusCode::NOT_FOUND,
            "no-such-call",
        ),
        (
            &bob_token,
            format!("{sb}/calls/held/nope"),
            StatusCode::NOT_FOUND,
            "no-such-call",
        ),
        (
            &bob_token,
            format!("/switchboards/{unknown}/calls/queued/{CALLER}/answer"),
            StatusCode::NOT_FOUND,
            "no-such-switchboard",
        ),
        // Alice is no operator of it; the admin is no user with lines at all.
        (
            &alice_token,
            format!("{sb}/calls/queued/{CALLER}/answer"),
            StatusCode::BAD_REQUEST,
            "invalid-user",
        ),
        (
            &t,
            format!("{sb}/calls/queued/{CALLER}/answer"),
            StatusCode::BAD_REQUEST,
            "invalid-user",
        ),
        (
            &bob_token,
            format!("{sb}/calls/queued/{CALLER}/answer?line_id=999"),
            StatusCode::BAD_REQUEST,
            "invalid-user-line",
        ),
        (
            &bob_token,
            format!("{sb}/calls/queued/{CALLER}/answer?line_id=x"),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            &bob_token,
            format!("{sb}/calls/queued/{CALLER}/answer?bogus=1"),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
    ] {
        let (code, body) = put(&s, token, &path).await;
        assert_eq!(code, want, "{path}: {body}");
        assert_eq!(body["error_id"], error, "{path}: {body}");
    }
    // Still queued after all that.
    let (_, list) = s.get(&format!("{CALLD}{sb}/calls/queued"), &t).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");

    // Another tenant sees no such switchboard.
    let (_, other) = s.post("/tenants", &t, json!({"name": "tenant b", "slug": "tb"})).await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    let (code, body) = s
        .call_with_headers(
            Method::GET,
            &format!("{CALLD}{sb}/calls/queued"),
            Some(&t),
            None,
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");

    // A user of that tenant (the default user policy grants `calld.switchboards.#`):
    // 404 on every route.
    s.create_user_sql(&other, "mallory", "pw-mallory").await;
    let tok = s.login("mallory", "pw-mallory").await;
    for (method, path) in [
        (Method::GET, format!("{sb}/calls/queued")),
        (Method::GET, format!("{sb}/calls/held")),
        (Method::PUT, format!("{sb}/calls/queued/{CALLER}/answer")),
        (Method::PUT, format!("{sb}/calls/held/{CALLER}")),
        (Method::PUT, format!("{sb}/calls/held/{CALLER}/answer")),
    ] {
        let (code, body) = s
            .call(method.clone(), &format!("{CALLD}{path}"), Some(&tok), None)
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body["error_id"], "no-such-switchboard", "{method} {path}");
    }

    // Asterisk refusing the operator's line: 503, the call stays queued.
    ari.set_refusing(true);
    drop(ari);
    let (code, body) = put(&s, &bob_token, &format!("{sb}/calls/queued/{CALLER}/answer")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    // No ARI configured at all: 503.
    let plain = TestServer::start().await;
    let uuid = switchboard(&plain, json!({"name": "x"})).await;
    let (code, body) = plain
        .get(&format!("{CALLD}/switchboards/{uuid}/calls/queued"), &plain.admin_token)
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_nobody_answers_goes_to_the_fallback_after_the_timeout() {
    let (_ami, ari, s, _alice, _bob) = provisioned().await;
    let uuid = switchboard(&s, json!({"name": "Reception", "timeout": 1})).await;
    let mut bus = s.app().bus.subscribe();
    let caller = channel(CALLER, CALLER_NAME, "Ring", "", ("Carol", "2003"));
    enters(&ari, &caller, &["switchboard_queue", &uuid]);
    let ev = wait_event(&mut bus, "switchboard_queued_calls_updated").await;
    assert_eq!(ev.data["items"].as_array().map(Vec::len), Some(1));
    let from = requests(&ari).len();
    // After the switchboard's timeout: out of the queue, back to the dialplan (the fallback).
    let ev = wait_event(&mut bus, "switchboard_queued_calls_updated").await;
    assert_eq!(ev.data, json!({"switchboard_uuid": uuid, "items": []}));
    wait_request(
        &ari,
        from,
        req("POST", &format!("/ari/channels/{CALLER}/continue"), &[]),
    )
    .await;
    let (_, list) = s
        .get(&format!("{CALLD}/switchboards/{uuid}/calls/queued"), &s.admin_token)
        .await;
    assert_eq!(list, json!({"items": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_answering_a_call_that_left_is_hung_up() {
    let (_ami, ari, s, _alice, bob) = provisioned().await;
    let uuid = switchboard(&s, json!({"name": "Reception"})).await;
    let (code, _) = s
        .put(
            &format!("{C}/switchboards/{uuid}/members/users"),
            &s.admin_token,
            json!({"users": [{"uuid": bob["uuid"]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let bob_token = s.login("bob", "pw-bob-123").await;
    let mut bus = s.app().bus.subscribe();
    let caller = channel(CALLER, CALLER_NAME, "Ring", "", ("Carol", "2003"));
    enters(&ari, &caller, &["switchboard_queue", &uuid]);
    wait_event(&mut bus, "switchboard_queued_calls_updated").await;
    let (code, answer) = put(
        &s,
        &bob_token,
        &format!("/switchboards/{uuid}/calls/queued/{CALLER}/answer"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let operator = answer["call_id"].as_str().expect("call_id").to_string();
    // Carol hangs up while Bob's phone rings; then Bob picks up.
    ari.inject(&event("StasisEnd", json!({"channel": caller})));
    let ev = wait_event(&mut bus, "switchboard_queued_calls_updated").await;
    assert_eq!(ev.data["items"], json!([]));
    let from = requests(&ari).len();
    let op = channel(&operator, "PJSIP/2002-00000041", "Up", "", ("Carol", "2003"));
    enters(&ari, &op, &["switchboard_answer", &uuid, CALLER]);
    wait_request(&ari, from, req("DELETE", &format!("/ari/channels/{operator}"), &[])).await;
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![req("DELETE", &format!("/ari/channels/{operator}"), &[])],
        "no bridge for a call that left"
    );
}
