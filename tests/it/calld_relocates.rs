//! Calls calld bridges itself in accentd's Stasis application, against the fake Asterisk on
//! scenario 21 (Alice 2001 talks to Bob 2002): connecting a call to a user
//! (`PUT /calls/{id}/user/{uuid}`) and relocates (`/users/me/relocates`). The fake answers
//! the originated legs (`StasisStart` with their `appArgs`) and the moved calls enter the
//! application as the `accentd-stasis` dialplan would make them; the tests check the exact
//! ARI and AMI requests, the events and the bad input.

use std::collections::BTreeMap;

use crate::calld_calls::{
    ami_success, collect, drain, other_tenant, pairs, ready, replay_until_bridged, sent, user, ALICE_CALL, BOB_CALL, C,
    CALLD,
};
use crate::common::{wait_for, TestServer};
use accentd::fake_asterisk::ami::FakeAmi;
use accentd::fake_asterisk::ari::FakeAri;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub(crate) const ALICE_CHAN: &str = "PJSIP/2001-00000000";
pub(crate) const BOB_CHAN: &str = "PJSIP/2002-00000001";

/// A request the fake ARI received: method, path, decoded query, body.
type Req = (String, String, BTreeMap<String, String>, String);

/// The control requests the fake ARI received (reads left out).
pub(crate) fn requests(ari: &FakeAri) -> Vec<Req> {
    ari.requests()
        .into_iter()
        .filter(|r| !r.websocket && r.method != "GET")
        .map(|r| {
            let url = reqwest::Url::parse(&format!("http://x{}", r.uri)).expect("uri");
            let query = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            (r.method, url.path().to_string(), query, r.body)
        })
        .collect()
}

/// The control requests after the `from`th, without their bodies.
pub(crate) fn since(ari: &FakeAri, from: usize) -> Vec<(String, String, BTreeMap<String, String>)> {
    requests(ari)
        .into_iter()
        .skip(from)
        .map(|(m, p, q, _)| (m, p, q))
        .collect()
}

pub(crate) fn req(method: &str, path: &str, query: &[(&str, &str)]) -> (String, String, BTreeMap<String, String>) {
    (
        method.to_string(),
        path.to_string(),
        query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    )
}

pub(crate) async fn wait_requests(ari: &FakeAri, from: usize, n: usize) {
    wait_for(&format!("{n} ARI requests"), || since(ari, from).len() >= n).await;
}

struct Setup {
    ami: FakeAmi,
    ari: FakeAri,
    s: TestServer,
    alice: Value,
    carol: Value,
}

/// Scenario 21 bridged, Alice with two lines (2001, 2004) and a mobile number, Bob (2002),
/// Carol (2003), Redirects answered with success.
async fn setup() -> Setup {
    let (ami, ari, s) = ready().await;
    let line = |name: &str| {
        json!({"context": "default",
               "endpoint_sip": {"name": name, "auth_section_options": [["username", name], ["password", "x-secret-1"]]},
               "extensions": [{"exten": name, "context": "default"}]})
    };
    let (code, alice) = s
        .post(
            &format!("{C}/users"),
            &s.admin_token,
            json!({"firstname": "Alice", "mobile_phone_number": "0611223344",
                   "auth": {"username": "alice", "password": "pw-alice-123"},
                   "lines": [line("2001"), line("2004")]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{alice}");
    user(&s, "Bob", "bob", "2002").await;
    let carol = user(&s, "Carol", "carol", "2003").await;
    replay_until_bridged(&ami, &ari, &s).await;
    ami.respond_with("Redirect", Some(ami_success()));
    Setup {
        ami,
        ari,
        s,
        alice,
        carol,
    }
}

/// The query of an originate into the application, as the fake decodes it.
fn originate_query(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A channel event the test plays for Asterisk (a bridge member leaving), in scenario 27's shape.
pub(crate) fn left_bridge(ari: &FakeAri, bridge: &str, id: &str, remaining: &[&str]) -> String {
    let channel = ari.channels().into_iter().find(|c| c.id == id).expect("channel");
    json!({
        "type": "ChannelLeftBridge",
        "timestamp": "2026-11-28T14:06:50.000+0000",
        "bridge": {"id": bridge, "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
                   "creator": "Stasis", "name": bridge, "channels": remaining,
                   "creationtime": "2026-11-28T14:06:48.000+0000", "video_mode": "talker"},
        "channel": channel,
        "asterisk_id": "02:fc:00:00:00:01",
        "application": "accent",
    })
    .to_string()
}

pub(crate) fn entered_bridge(ari: &FakeAri, bridge: &str, id: &str, members: &[&str]) -> String {
    left_bridge(ari, bridge, id, members).replace("ChannelLeftBridge", "ChannelEnteredBridge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connected_to_a_user_rings_them_and_is_bridged_when_they_answer() {
    let Setup { ami, ari, s, carol, .. } = setup().await;
    let carol_uuid = carol["uuid"].as_str().expect("uuid").to_string();
    let t = s.admin_token.clone();
    let bob = ari.channels().into_iter().find(|c| c.id == BOB_CALL).expect("Bob");
    let from = requests(&ari).len();

    let (code, call) = s
        .put(
            &format!("{CALLD}/calls/{BOB_CALL}/user/{carol_uuid}"),
            &t,
            json!({"timeout": 20}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{call}");
    let new = call["call_id"].as_str().expect("call id").to_string();
    assert_eq!(call["user_uuid"], carol_uuid.as_str());
    assert_eq!(call["line_id"], carol["lines"][0]["id"]);
    assert_eq!(call["status"], "Down");
    let (_, path, query, body) = requests(&ari).into_iter().nth(from).expect("originate");
    assert_eq!(path, "/ari/channels");
    let expected = originate_query(&[
        ("endpoint", "PJSIP/2003".to_string()),
        ("app", "accent".into()),
        ("appArgs", format!("connect,{BOB_CALL}")),
        ("callerId", format!("\"{}\" <{}>", bob.caller.name, bob.caller.number)),
        ("timeout", "20".into()),
        ("originator", BOB_CALL.into()),
    ]);
    assert_eq!(query, expected);
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["variables"]["ACCENT_USERUUID"], carol_uuid.as_str());
    // While Carol rings, Bob's call is left as it is.
    assert!(sent(&ami, "Redirect").is_empty());
    let (code, again) = s
        .put(&format!("{CALLD}/calls/{BOB_CALL}/user/{carol_uuid}"), &t, json!({}))
        .await;
    assert_eq!(
        (code, again["error_id"].clone()),
        (StatusCode::CONFLICT, json!("call-already-controlled"))
    );

    // Carol answers: her leg goes into a pair bridge, Bob's call comes to the application.
    let from = requests(&ari).len();
    assert!(ari.answer(&new));
    wait_requests(&ari, from, 2).await;
    let bridge = format!("accentd-pair-{new}");
    assert_eq!(
        since(&ari, from),
        [
            req(
                "POST",
                "/ari/bridges",
                &[("type", "mixing"), ("bridgeId", &bridge), ("name", &bridge)]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{bridge}/addChannel"),
                &[("channel", &new)]
            ),
        ]
    );
    wait_for("Redirect", || !sent(&ami, "Redirect").is_empty()).await;
    assert_eq!(
        sent(&ami, "Redirect"),
        [pairs(&[
            ("Channel", BOB_CHAN),
            ("Context", "accentd-stasis"),
            ("Exten", "connect"),
            ("Priority", "1")
        ])]
    );
    let from = requests(&ari).len();
    assert!(ari.enter_stasis(BOB_CALL, "accent", &["connect"]));
    wait_requests(&ari, from, 1).await;
    assert_eq!(
        since(&ari, from),
        [req(
            "POST",
            &format!("/ari/bridges/{bridge}/addChannel"),
            &[("channel", BOB_CALL)]
        )]
    );

    // Carol hangs up: Bob, alone in the bridge, is hung up; the empty bridge destroyed.
    let from = requests(&ari).len();
    ari.inject(&left_bridge(&ari, &bridge, &new, &[BOB_CALL]));
    ari.inject(&left_bridge(&ari, &bridge, BOB_CALL, &[]));
    wait_requests(&ari, from, 2).await;
    assert_eq!(
        since(&ari, from),
        [
            req("DELETE", &format!("/ari/channels/{BOB_CALL}"), &[]),
            req("DELETE", &format!("/ari/bridges/{bridge}"), &[]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_does_not_answer_leaves_the_call_untouched_and_bad_requests_are_refused() {
    let Setup { ami, ari, s, carol, .. } = setup().await;
    let carol_uuid = carol["uuid"].as_str().expect("uuid").to_string();
    let t = s.admin_token.clone();
    let path = format!("{CALLD}/calls/{BOB_CALL}/user/{carol_uuid}");

    // No ring time: ARI's -1. Carol never answers; the originate's end frees the call.
    let from = requests(&ari).len();
    let (code, call) = s.put(&path, &t, json!({"timeout": null})).await;
    assert_eq!(code, StatusCode::OK, "{call}");
    let new = call["call_id"].as_str().expect("call id").to_string();
    assert_eq!(requests(&ari)[from].2["timeout"], "-1");
    assert!(ari.destroy(&new, 19, "No user responding"));
    wait_for("connection over", || !s.app().calld.connection_pending(BOB_CALL)).await;
    // No body at all: the default ring time.
    let (code, call) = s.call(Method::PUT, &path, Some(&t), None).await;
    assert_eq!(code, StatusCode::OK, "{call}");
    let last = requests(&ari).pop().expect("originate");
    assert_eq!(last.2["timeout"], "30");
    let second = call["call_id"].as_str().expect("call id").to_string();
    // Bob hangs up while Carol rings: her ringing leg is hung up.
    let from = requests(&ari).len();
    assert!(ari.destroy(BOB_CALL, 16, "Normal Clearing"));
    wait_requests(&ari, from, 1).await;
    assert_eq!(
        since(&ari, from),
        [req("DELETE", &format!("/ari/channels/{second}"), &[])]
    );
    assert!(sent(&ami, "Redirect").is_empty(), "the call was never moved");

    // Bad input, before anything reaches Asterisk.
    let from = requests(&ari).len();
    let alice_path = format!("{CALLD}/calls/{ALICE_CALL}/user/{carol_uuid}");
    for (body, field) in [
        (json!({"timeout": 0}), "timeout"),
        (json!({"timeout": "30"}), "timeout"),
        (json!({"timeout": 30, "extra": 1}), "extra"),
    ] {
        let (code, err) = s.put(&alice_path, &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert!(err.to_string().contains(field), "{body}: {err}");
    }
    let raw = s
        .client
        .put(format!("{}{alice_path}", s.base))
        .header("X-Auth-Token", &t)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let (code, err) = s
        .put(&format!("{CALLD}/calls/{ALICE_CALL}/user/not-a-uuid"), &t, json!({}))
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid-user"))
    );
    let (code, err) = s
        .put(
            &format!("{CALLD}/calls/{ALICE_CALL}/user/{}", uuid::Uuid::new_v4()),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid-user"))
    );
    let (code, err) = s
        .put(&format!("{CALLD}/calls/nope.1/user/{carol_uuid}"), &t, json!({}))
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-call"))
    );
    // Another tenant sees neither the call nor the user.
    let other = other_tenant(&s).await;
    let (code, _) = s
        .call_with_headers(
            Method::PUT,
            &alice_path,
            Some(&t),
            Some(json!({})),
            &[("Accent-Tenant", &other)],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // A user without the ACL.
    let carol_token = s.login("carol", "pw-carol-123").await;
    let (code, _) = s.put(&alice_path, &carol_token, json!({})).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(since(&ari, from).is_empty(), "{:?}", since(&ari, from));

    // Asterisk unreachable: 503.
    ari.stop().await;
    let (code, err) = s.put(&alice_path, &t, json!({})).await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("asterisk-ari-unreachable"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relocate_to_another_line_completes_when_it_answers() {
    let Setup { ami, ari, s, alice, .. } = setup().await;
    let alice_uuid = alice["uuid"].as_str().expect("uuid").to_string();
    let me = s.login("alice", "pw-alice-123").await;
    let bob_token = s.login("bob", "pw-bob-123").await;
    let mut rx = s.app().bus.subscribe();
    let bob = ari.channels().into_iter().find(|c| c.id == BOB_CALL).expect("Bob");
    let line = alice["lines"][1]["id"].clone();
    let from = requests(&ari).len();

    let (code, r) = s
        .post(
            &format!("{CALLD}/users/me/relocates"),
            &me,
            json!({"initiator_call": ALICE_CALL, "destination": "line", "location": {"line_id": line}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{r}");
    let uuid = r["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(
        r,
        json!({"uuid": uuid, "relocated_call": BOB_CALL, "initiator_call": ALICE_CALL,
               "recipient_call": r["recipient_call"], "completions": ["answer"], "initiator": alice_uuid,
               "timeout": 30, "auto_answer": false})
    );
    let recipient = r["recipient_call"].as_str().expect("recipient").to_string();
    let (_, path, query, _) = requests(&ari).into_iter().nth(from).expect("originate");
    assert_eq!(path, "/ari/channels");
    let expected = originate_query(&[
        ("endpoint", "PJSIP/2004".to_string()),
        ("app", "accent".into()),
        ("appArgs", format!("relocate,{uuid}")),
        ("callerId", format!("\"{}\" <{}>", bob.caller.name, bob.caller.number)),
        ("timeout", "30".into()),
        ("originator", BOB_CALL.into()),
    ]);
    assert_eq!(query, expected);
    // Both parties move in one Redirect, so neither is hung up.
    assert_eq!(
        sent(&ami, "Redirect"),
        [pairs(&[
            ("Channel", BOB_CHAN),
            ("Context", "accentd-stasis"),
            ("Exten", "relocate"),
            ("Priority", "1"),
            ("ExtraChannel", ALICE_CHAN),
            ("ExtraContext", "accentd-stasis"),
            ("ExtraExten", "relocate"),
            ("ExtraPriority", "1")
        ])]
    );
    let events = collect(&mut rx, "relocate_", 1).await;
    assert_eq!(events[0]["name"], "relocate_initiated");
    assert_eq!(events[0]["required_acl"], format!("events.relocates.{alice_uuid}"));
    assert_eq!(events[0]["data"], r);

    // Reads: the user's own only.
    let (_, list) = s.get(&format!("{CALLD}/users/me/relocates"), &me).await;
    assert_eq!(list, json!({"items": [r.clone()]}));
    let (code, one) = s.get(&format!("{CALLD}/users/me/relocates/{uuid}"), &me).await;
    assert_eq!((code, one), (StatusCode::OK, r.clone()));
    let (code, _) = s.get(&format!("{CALLD}/users/me/relocates/{uuid}"), &bob_token).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, list) = s.get(&format!("{CALLD}/users/me/relocates"), &bob_token).await;
    assert_eq!(list, json!({"items": []}));
    // One relocate at a time on a call.
    let (code, err) = s
        .post(
            &format!("{CALLD}/users/me/relocates"),
            &me,
            json!({"initiator_call": ALICE_CALL, "destination": "mobile"}),
        )
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::CONFLICT, json!("relocate-already-started"))
    );

    // The parties enter the application and are bridged again while the line rings.
    let bridge = format!("accentd-pair-{uuid}");
    let from = requests(&ari).len();
    assert!(ari.enter_stasis(BOB_CALL, "accent", &["relocate"]));
    wait_requests(&ari, from, 2).await;
    assert!(ari.enter_stasis(ALICE_CALL, "accent", &["relocate"]));
    wait_requests(&ari, from, 3).await;
    assert_eq!(
        since(&ari, from),
        [
            req(
                "POST",
                "/ari/bridges",
                &[("type", "mixing"), ("bridgeId", &bridge), ("name", &bridge)]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{bridge}/addChannel"),
                &[("channel", BOB_CALL)]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{bridge}/addChannel"),
                &[("channel", ALICE_CALL)]
            ),
        ]
    );

    // The line answers: it joins Bob, Alice's old leg is hung up.
    let from = requests(&ari).len();
    assert!(ari.answer(&recipient));
    wait_requests(&ari, from, 2).await;
    assert_eq!(
        since(&ari, from),
        [
            req(
                "POST",
                &format!("/ari/bridges/{bridge}/addChannel"),
                &[("channel", &recipient)]
            ),
            req("DELETE", &format!("/ari/channels/{ALICE_CALL}"), &[]),
        ]
    );
    let events = collect(&mut rx, "relocate_", 3).await;
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["relocate_answered", "relocate_completed", "relocate_ended"]);
    assert_eq!(events[2][format!("user_uuid:{alice_uuid}")], true);
    let (code, _) = s.get(&format!("{CALLD}/users/me/relocates/{uuid}"), &me).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "over once completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relocates_to_the_mobile_wait_for_the_api_and_end_on_cancel_or_no_answer() {
    let Setup { ami, ari, s, alice, .. } = setup().await;
    let me = s.login("alice", "pw-alice-123").await;
    let mut rx = s.app().bus.subscribe();
    let create = |body: Value| {
        let (s, me) = (&s, me.clone());
        async move { s.post(&format!("{CALLD}/users/me/relocates"), &me, body).await }
    };

    // Mobile, completed through the API once answered; auto_answer is for phones only.
    let from = requests(&ari).len();
    let (code, r) = create(
        json!({"initiator_call": ALICE_CALL, "destination": "mobile", "completions": ["api"],
                                  "timeout": 15}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{r}");
    let uuid = r["uuid"].as_str().expect("uuid").to_string();
    let recipient = r["recipient_call"].as_str().expect("recipient").to_string();
    let (_, _, query, _) = requests(&ari).into_iter().nth(from).expect("originate");
    assert_eq!(query["endpoint"], "Local/0611223344@default");
    assert_eq!(query["timeout"], "15");
    let complete = format!("{CALLD}/users/me/relocates/{uuid}/complete");
    let (code, err) = s.put(&complete, &me, json!({})).await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("relocate-completion-error"))
    );
    let bridge = format!("accentd-pair-{uuid}");
    let from = requests(&ari).len();
    assert!(ari.enter_stasis(BOB_CALL, "accent", &["relocate"]));
    assert!(ari.enter_stasis(ALICE_CALL, "accent", &["relocate"]));
    wait_requests(&ari, from, 3).await;
    assert!(ari.answer(&recipient));
    let events = collect(&mut rx, "relocate_answered", 1).await;
    assert_eq!(events[0]["data"]["uuid"], uuid.as_str());
    let from = requests(&ari).len();
    let (code, _) = s.put(&complete, &me, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    wait_requests(&ari, from, 2).await;
    assert_eq!(
        since(&ari, from),
        [
            req(
                "POST",
                &format!("/ari/bridges/{bridge}/addChannel"),
                &[("channel", &recipient)]
            ),
            req("DELETE", &format!("/ari/channels/{ALICE_CALL}"), &[]),
        ]
    );
    let names: Vec<String> = collect(&mut rx, "relocate_", 2)
        .await
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        ["relocate_initiated", "relocate_completed", "relocate_ended"][1..]
    );

    // The relocated call and the initiator still share a pair bridge (as Asterisk reports
    // it): a new relocate keeps them there, no Redirect.
    ari.inject(&entered_bridge(&ari, &bridge, BOB_CALL, &[ALICE_CALL, BOB_CALL]));
    ari.inject(&entered_bridge(&ari, &bridge, ALICE_CALL, &[ALICE_CALL, BOB_CALL]));
    let live = s.app().live.clone();
    wait_for("both in the pair bridge", || {
        [ALICE_CALL, BOB_CALL].iter().all(|id| {
            live.channel(id)
                .is_some_and(|c| c.bridge_id.as_deref() == Some(bridge.as_str()))
        })
    })
    .await;
    let redirects = sent(&ami, "Redirect").len();
    let line = alice["lines"][1]["id"].clone();
    let (code, r) = create(json!({"initiator_call": ALICE_CALL, "destination": "line",
                                  "location": {"line_id": line, "contact": "sip:2004@10.0.0.4:5060;ob"},
                                  "auto_answer": true}))
    .await;
    assert_eq!(code, StatusCode::CREATED, "{r}");
    assert_eq!(sent(&ami, "Redirect").len(), redirects);
    let (_, _, query, body) = requests(&ari).pop().expect("originate");
    assert_eq!(query["endpoint"], "PJSIP/2004/sip:2004@10.0.0.4:5060;ob");
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(
        body["variables"]["PJSIP_HEADER(add,Call-Info)"],
        "<sip:accentd>;answer-after=0"
    );
    // Cancelled: the ringing line is hung up, the call goes on.
    let uuid = r["uuid"].as_str().expect("uuid").to_string();
    let recipient = r["recipient_call"].as_str().expect("recipient").to_string();
    let from = requests(&ari).len();
    let (code, _) = s
        .put(&format!("{CALLD}/users/me/relocates/{uuid}/cancel"), &me, json!({}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(
        since(&ari, from),
        [req("DELETE", &format!("/ari/channels/{recipient}"), &[])]
    );
    let events = collect(&mut rx, "relocate_", 2).await;
    assert_eq!(events.last().expect("event")["name"], "relocate_ended");

    // Not answered within the timeout: Asterisk ends the originate, the relocate ends,
    // nothing is done to the call.
    let (code, r) = create(json!({"initiator_call": ALICE_CALL, "destination": "mobile"})).await;
    assert_eq!(code, StatusCode::CREATED, "{r}");
    let recipient = r["recipient_call"].as_str().expect("recipient").to_string();
    let from = requests(&ari).len();
    assert!(ari.destroy(&recipient, 19, "No user responding"));
    let events = collect(&mut rx, "relocate_", 2).await;
    assert_eq!(events.last().expect("event")["name"], "relocate_ended");
    assert!(since(&ari, from).is_empty(), "{:?}", since(&ari, from));
    drain(&mut rx, "relocate_");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_relocates_are_refused_with_nothing_sent() {
    let Setup { ami, ari, s, carol, .. } = setup().await;
    let me = s.login("alice", "pw-alice-123").await;
    let bob_token = s.login("bob", "pw-bob-123").await;
    let path = format!("{CALLD}/users/me/relocates");
    let carol_line = carol["lines"][0]["id"].clone();
    let from = requests(&ari).len();
    let cases = [
        (
            json!({"destination": "mobile"}),
            StatusCode::BAD_REQUEST,
            "initiator_call",
        ),
        (
            json!({"initiator_call": ALICE_CALL}),
            StatusCode::BAD_REQUEST,
            "destination",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "fax"}),
            StatusCode::BAD_REQUEST,
            "destination",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "line"}),
            StatusCode::BAD_REQUEST,
            "line_id",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "line", "location": {"line_id": "x"}}),
            StatusCode::BAD_REQUEST,
            "line_id",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "mobile", "location": {"line_id": 1}}),
            StatusCode::BAD_REQUEST,
            "location",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "mobile", "completions": ["never"]}),
            StatusCode::BAD_REQUEST,
            "completions",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "mobile", "timeout": 0}),
            StatusCode::BAD_REQUEST,
            "timeout",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "mobile", "other": 1}),
            StatusCode::BAD_REQUEST,
            "other",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "line", "location": {"line_id": carol_line}}),
            StatusCode::BAD_REQUEST,
            "invalid-user-line",
        ),
        (
            json!({"initiator_call": ALICE_CALL, "destination": "line", "location": {"line_id": 1, "contact": "sip:a,b"}}),
            StatusCode::BAD_REQUEST,
            "contact",
        ),
        (
            json!({"initiator_call": "nope.1", "destination": "mobile"}),
            StatusCode::NOT_FOUND,
            "no-such-call",
        ),
    ];
    for (body, status, words) in cases {
        let (code, err) = s.post(&path, &me, body.clone()).await;
        assert_eq!(code, status, "{body}: {err}");
        assert!(err.to_string().contains(words), "{body}: {err}");
    }
    let raw = s
        .client
        .post(format!("{}{path}", s.base))
        .header("X-Auth-Token", &me)
        .body("[1]")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    // Another user's call: 403; Bob has no mobile.
    let (code, err) = s
        .post(
            &path,
            &bob_token,
            json!({"initiator_call": ALICE_CALL, "destination": "mobile"}),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    let (code, err) = s
        .post(
            &path,
            &bob_token,
            json!({"initiator_call": BOB_CALL, "destination": "mobile"}),
        )
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("user-missing-mobile"))
    );
    // Unknown relocates.
    for (method, p) in [
        (Method::GET, format!("{path}/nope")),
        (Method::PUT, format!("{path}/nope/complete")),
        (Method::PUT, format!("{path}/nope/cancel")),
    ] {
        let (code, err) = s.call(method, &p, Some(&me), None).await;
        assert_eq!(
            (code, err["error_id"].clone()),
            (StatusCode::NOT_FOUND, json!("no-such-relocate")),
            "{p}"
        );
    }
    assert!(since(&ari, from).is_empty(), "{:?}", since(&ari, from));
    assert!(sent(&ami, "Redirect").is_empty());

    // AMI refusing the Redirect: the ringing destination is hung up again, 503.
    ami.respond_with(
        "Redirect",
        Some(vec![accentd::ami::frame::AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "Redirect failed")]),
    );
    let from = requests(&ari).len();
    let (code, err) = s
        .post(
            &path,
            &me,
            json!({"initiator_call": ALICE_CALL, "destination": "mobile"}),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    let sent_now = since(&ari, from);
    assert_eq!(sent_now.len(), 2, "{sent_now:?}");
    assert_eq!(sent_now[1].0, "DELETE");
    let (_, list) = s.get(&path, &me).await;
    assert_eq!(list, json!({"items": []}));

    // Asterisk unreachable: 503, and nothing is left behind.
    ari.stop().await;
    let (code, err) = s
        .post(
            &path,
            &me,
            json!({"initiator_call": ALICE_CALL, "destination": "mobile"}),
        )
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("asterisk-ari-unreachable"))
    );
    let (_, list) = s.get(&path, &me).await;
    assert_eq!(list, json!({"items": []}));
}
