//! Adhoc conferences (`/users/me/conferences/adhoc`) against the fake Asterisk: Alice has
//! two calls (scenario 21's with Bob, a second one with Carol played on the ARI websocket in
//! the recorded shape) and merges them.

use serde_json::{json, Value};

use crate::calld_calls::{ami_success, collect, ready, replay_until_bridged, sent, user, ALICE_CALL, BOB_CALL};
use crate::calld_relocates::{entered_bridge, left_bridge, req, requests, since, wait_requests, ALICE_CHAN, BOB_CHAN};
use crate::common::{wait_for, TestServer};
use accentd::fake_asterisk::ami::FakeAmi;
use accentd::fake_asterisk::ari::FakeAri;
use reqwest::StatusCode;

const ADHOC: &str = "/api/calld/1.0/users/me/conferences/adhoc";
/// Alice's second call, with Carol.
const ALICE_2: &str = "1795874810.2";
const ALICE_2_CHAN: &str = "PJSIP/2001-00000002";
const CAROL_CALL: &str = "1795874810.3";
const CAROL_CHAN: &str = "PJSIP/2003-00000003";

fn channel(id: &str, name: &str, who: (&str, &str), other: (&str, &str)) -> Value {
    json!({"id": id, "name": name, "state": "Up", "protocol_id": "", "caller": {"name": who.0, "number": who.1},
           "connected": {"name": other.0, "number": other.1}, "accountcode": "",
           "dialplan": {"context": "default", "exten": "2003", "priority": 3, "app_name": "Dial", "app_data": "PJSIP/2003,20"},
           "creationtime": "2026-11-28T14:07:10.000+0000", "language": "en"})
}

fn event(kind: &str, extra: Value) -> String {
    let mut e = json!({"type": kind, "timestamp": "2026-11-28T14:07:12.000+0000",
                       "asterisk_id": "02:fc:00:00:00:01", "application": "accent"});
    if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(extra.clone());
    }
    e.to_string()
}

/// Alice's second call, answered and bridged with Carol, as scenario 21 recorded a call.
fn second_call(ari: &FakeAri) {
    let alice = channel(ALICE_2, ALICE_2_CHAN, ("Alice", "2001"), ("Carol", "2003"));
    let carol = channel(CAROL_CALL, CAROL_CHAN, ("Carol", "2003"), ("Alice", "2001"));
    let bridge = |members: &[&str]| {
        json!({"id": "5d0c9b1e-2f0a-4a44-9d43-6f1b0d7a8c21", "technology": "simple_bridge", "bridge_type": "mixing",
               "bridge_class": "basic", "creator": "", "name": "", "channels": members,
               "creationtime": "2026-11-28T14:07:12.000+0000", "video_mode": "none"})
    };
    ari.inject(&event("ChannelCreated", json!({"channel": alice})));
    ari.inject(&event("ChannelCreated", json!({"channel": carol})));
    ari.inject(&event("BridgeCreated", json!({"bridge": bridge(&[])})));
    ari.inject(&event(
        "ChannelEnteredBridge",
        json!({"bridge": bridge(&[CAROL_CALL]), "channel": carol}),
    ));
    ari.inject(&event(
        "ChannelEnteredBridge",
        json!({"bridge": bridge(&[CAROL_CALL, ALICE_2]), "channel": alice}),
    ));
}

struct Setup {
    ami: FakeAmi,
    ari: FakeAri,
    s: TestServer,
    alice_uuid: String,
    alice: String,
    bob: String,
}

/// Alice (2001) talking to Bob (2002) and to Carol (2003); Redirects answered with success.
async fn setup() -> Setup {
    let (ami, ari, s) = ready().await;
    let alice = user(&s, "Alice", "alice", "2001").await;
    user(&s, "Bob", "bob", "2002").await;
    user(&s, "Carol", "carol", "2003").await;
    replay_until_bridged(&ami, &ari, &s).await;
    second_call(&ari);
    {
        let live = s.app().live.clone();
        wait_for("Alice's second call", || {
            live.channel(ALICE_2)
                .is_some_and(|c| c.talking_to == [CAROL_CALL.to_string()])
        })
        .await;
    }
    ami.respond_with("Redirect", Some(ami_success()));
    let alice_token = s.login("alice", "pw-alice-123").await;
    let bob_token = s.login("bob", "pw-bob-123").await;
    Setup {
        ami,
        ari,
        s,
        alice_uuid: alice["uuid"].as_str().expect("uuid").to_string(),
        alice: alice_token,
        bob: bob_token,
    }
}

fn redirect(chan: &str, extra: Option<&str>) -> Vec<(String, String)> {
    let mut items = vec![
        ("Channel", chan),
        ("Context", "accentd-stasis"),
        ("Exten", "adhoc"),
        ("Priority", "1"),
    ];
    if let Some(extra) = extra {
        items.extend([
            ("ExtraChannel", extra),
            ("ExtraContext", "accentd-stasis"),
            ("ExtraExten", "adhoc"),
            ("ExtraPriority", "1"),
        ]);
    }
    items.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_merges_two_calls_adds_and_removes_and_the_conference_ends_with_the_host() {
    let Setup {
        ami,
        ari,
        s,
        alice_uuid,
        alice,
        bob,
    } = setup().await;
    let mut rx = s.app().bus.subscribe();
    let from = requests(&ari).len();

    let (code, conf) = s
        .post(
            ADHOC,
            &alice,
            json!({"host_call_id": ALICE_CALL, "participant_call_ids": [ALICE_2]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{conf}");
    let id = conf["conference_id"].as_str().expect("id").to_string();
    assert_eq!(conf, json!({ "conference_id": id }));
    assert_eq!(
        since(&ari, from),
        [req(
            "POST",
            "/ari/bridges",
            &[
                ("type", "mixing"),
                ("bridgeId", &id),
                ("name", &format!("accentd-adhoc-{id}"))
            ]
        )]
    );
    // The host call's two parties move together; Carol alone (Alice's leg to her ends).
    assert_eq!(
        sent(&ami, "Redirect"),
        [redirect(ALICE_CHAN, Some(BOB_CHAN)), redirect(CAROL_CHAN, None)]
    );
    let events = collect(&mut rx, "conference_adhoc", 1).await;
    assert_eq!(events[0]["name"], "conference_adhoc_created");
    assert_eq!(events[0]["data"], json!({ "conference_id": id }));
    assert_eq!(
        events[0]["required_acl"],
        format!("events.conferences.users.{alice_uuid}.adhoc.created")
    );
    assert_eq!(events[0][format!("user_uuid:{alice_uuid}")], true);

    // One conference per host call; another user's conference is not theirs to touch.
    let (code, err) = s
        .post(
            ADHOC,
            &alice,
            json!({"host_call_id": ALICE_CALL, "participant_call_ids": []}),
        )
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::CONFLICT, json!("host-already-in-conference"))
    );
    let (code, err) = s.delete(&format!("{ADHOC}/{id}"), &bob).await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("adhoc-conference-not-found"))
    );

    // The calls arrive in the application and join the bridge; Alice's leg to Carol ends.
    let from = requests(&ari).len();
    for call in [ALICE_CALL, BOB_CALL, CAROL_CALL] {
        assert!(ari.enter_stasis(call, "accent", &["adhoc"]));
    }
    wait_requests(&ari, from, 4).await;
    let add = |c: &str| req("POST", &format!("/ari/bridges/{id}/addChannel"), &[("channel", c)]);
    assert_eq!(
        since(&ari, from),
        [
            add(ALICE_CALL),
            add(BOB_CALL),
            add(CAROL_CALL),
            req("DELETE", &format!("/ari/channels/{ALICE_2}"), &[]),
        ]
    );
    ari.inject(&entered_bridge(&ari, &id, ALICE_CALL, &[ALICE_CALL]));
    ari.inject(&entered_bridge(&ari, &id, BOB_CALL, &[ALICE_CALL, BOB_CALL]));
    ari.inject(&entered_bridge(
        &ari,
        &id,
        CAROL_CALL,
        &[ALICE_CALL, BOB_CALL, CAROL_CALL],
    ));
    let events = collect(&mut rx, "conference_adhoc", 2).await;
    // The host is not a participant.
    assert_eq!(
        events
            .iter()
            .map(|e| (e["name"].clone(), e["data"].clone()))
            .collect::<Vec<_>>(),
        [
            (
                json!("conference_adhoc_participant_joined"),
                json!({"conference_id": id, "call_id": BOB_CALL})
            ),
            (
                json!("conference_adhoc_participant_joined"),
                json!({"conference_id": id, "call_id": CAROL_CALL})
            ),
        ]
    );
    assert_eq!(
        events[0]["required_acl"],
        format!("events.conferences.users.{alice_uuid}.adhoc.participants.joined")
    );

    // Removing a participant hangs it up; the host is not one.
    {
        let live = s.app().live.clone();
        let id = id.clone();
        wait_for("Carol in the conference", || {
            live.channel(CAROL_CALL)
                .is_some_and(|c| c.bridge_id.as_deref() == Some(id.as_str()))
        })
        .await;
    }
    let (code, err) = s
        .delete(&format!("{ADHOC}/{id}/participants/{ALICE_CALL}"), &alice)
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("participant-call-not-found"))
    );
    let from = requests(&ari).len();
    let (code, _) = s
        .delete(&format!("{ADHOC}/{id}/participants/{CAROL_CALL}"), &alice)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(
        since(&ari, from),
        [req("DELETE", &format!("/ari/channels/{CAROL_CALL}"), &[])]
    );
    ari.inject(&left_bridge(&ari, &id, CAROL_CALL, &[ALICE_CALL, BOB_CALL]));
    let events = collect(&mut rx, "conference_adhoc", 1).await;
    assert_eq!(events[0]["name"], "conference_adhoc_participant_left");
    assert_eq!(events[0]["data"], json!({"conference_id": id, "call_id": CAROL_CALL}));

    // Bob hangs up: the host, alone, is hung up; the empty bridge is destroyed.
    let from = requests(&ari).len();
    ari.inject(&left_bridge(&ari, &id, BOB_CALL, &[ALICE_CALL]));
    wait_requests(&ari, from, 1).await;
    assert_eq!(
        since(&ari, from),
        [req("DELETE", &format!("/ari/channels/{ALICE_CALL}"), &[])]
    );
    ari.inject(&left_bridge(&ari, &id, ALICE_CALL, &[]));
    wait_requests(&ari, from, 2).await;
    assert_eq!(since(&ari, from)[1], req("DELETE", &format!("/ari/bridges/{id}"), &[]));
    let events = collect(&mut rx, "conference_adhoc", 2).await;
    assert_eq!(events[0]["name"], "conference_adhoc_participant_left");
    assert_eq!(events[1]["name"], "conference_adhoc_deleted");
    assert_eq!(events[1]["data"], json!({ "conference_id": id }));
    let (code, _) = s.delete(&format!("{ADHOC}/{id}"), &alice).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_conference_or_its_host_leaving_hangs_everybody_up() {
    let Setup {
        ami: _ami,
        ari,
        s,
        alice,
        ..
    } = setup().await;
    let mut rx = s.app().bus.subscribe();
    let (code, conf) = s
        .post(
            ADHOC,
            &alice,
            json!({"host_call_id": ALICE_2, "participant_call_ids": [ALICE_CALL]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{conf}");
    let id = conf["conference_id"].as_str().expect("id").to_string();
    for call in [ALICE_2, CAROL_CALL, BOB_CALL] {
        assert!(ari.enter_stasis(call, "accent", &["adhoc"]));
    }
    ari.inject(&entered_bridge(&ari, &id, ALICE_2, &[ALICE_2]));
    ari.inject(&entered_bridge(&ari, &id, CAROL_CALL, &[ALICE_2, CAROL_CALL]));
    ari.inject(&entered_bridge(&ari, &id, BOB_CALL, &[ALICE_2, CAROL_CALL, BOB_CALL]));
    collect(&mut rx, "conference_adhoc_participant_joined", 2).await;
    {
        let live = s.app().live.clone();
        let id = id.clone();
        wait_for("the three calls in the conference", || {
            [ALICE_2, CAROL_CALL, BOB_CALL].iter().all(|c| {
                live.channel(c)
                    .is_some_and(|c| c.bridge_id.as_deref() == Some(id.as_str()))
            })
        })
        .await;
    }

    // Deleted by its host: every call in it is hung up.
    let from = requests(&ari).len();
    let (code, _) = s.delete(&format!("{ADHOC}/{id}"), &alice).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let mut hung: Vec<String> = since(&ari, from)
        .into_iter()
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    hung.sort();
    let mut expected = [ALICE_2, BOB_CALL, CAROL_CALL].map(|c| format!("DELETE /ari/channels/{c}"));
    expected.sort();
    assert_eq!(hung, expected);

    // The host's leaving alone ends it too: the others are hung up.
    let from = requests(&ari).len();
    ari.inject(&left_bridge(&ari, &id, ALICE_2, &[CAROL_CALL, BOB_CALL]));
    wait_requests(&ari, from, 2).await;
    assert_eq!(
        since(&ari, from),
        [
            req("DELETE", &format!("/ari/channels/{CAROL_CALL}"), &[]),
            req("DELETE", &format!("/ari/channels/{BOB_CALL}"), &[]),
        ]
    );
    ari.inject(&left_bridge(&ari, &id, CAROL_CALL, &[BOB_CALL]));
    ari.inject(&left_bridge(&ari, &id, BOB_CALL, &[]));
    let events = collect(&mut rx, "conference_adhoc", 3).await;
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "conference_adhoc_participant_left",
            "conference_adhoc_participant_left",
            "conference_adhoc_deleted"
        ]
    );
    assert_eq!(events[2]["data"], json!({ "conference_id": id }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_adhoc_requests_are_refused_with_nothing_sent() {
    let Setup {
        ami,
        ari,
        s,
        alice,
        bob,
        ..
    } = setup().await;
    let from = requests(&ari).len();
    let post = |body: Value, token: String| {
        let s = &s;
        async move { s.post(ADHOC, &token, body).await }
    };
    for (body, token, status, error_id) in [
        (
            json!({"host_call_id": "nope.1", "participant_call_ids": [ALICE_2]}),
            &alice,
            StatusCode::BAD_REQUEST,
            "host-call-not-found",
        ),
        // Bob's call is not Alice's to host.
        (
            json!({"host_call_id": BOB_CALL, "participant_call_ids": [ALICE_2]}),
            &alice,
            StatusCode::BAD_REQUEST,
            "host-call-not-found",
        ),
        (
            json!({"host_call_id": ALICE_CALL, "participant_call_ids": ["nope.2"]}),
            &alice,
            StatusCode::BAD_REQUEST,
            "participant-call-not-found",
        ),
        (
            json!({"host_call_id": ALICE_CALL, "participant_call_ids": [CAROL_CALL]}),
            &alice,
            StatusCode::BAD_REQUEST,
            "participant-call-not-found",
        ),
        // Bob's own call, but Alice's call is not his to merge.
        (
            json!({"host_call_id": BOB_CALL, "participant_call_ids": [ALICE_2]}),
            &bob,
            StatusCode::BAD_REQUEST,
            "participant-call-not-found",
        ),
    ] {
        let (code, err) = post(body.clone(), token.clone()).await;
        assert_eq!((code, err["error_id"].as_str()), (status, Some(error_id)), "{body}");
    }
    for (body, what) in [
        (
            json!({"host_call_id": ALICE_CALL, "participant_call_ids": [ALICE_2, ALICE_2]}),
            "twice",
        ),
        (
            json!({"host_call_id": ALICE_CALL, "participant_call_ids": [ALICE_CALL]}),
            "host",
        ),
        (json!({"host_call_id": ALICE_CALL}), "missing list"),
        (
            json!({"host_call_id": ALICE_CALL, "participant_call_ids": [ALICE_2], "x": 1}),
            "unknown field",
        ),
        (json!({"host_call_id": 7, "participant_call_ids": []}), "wrong type"),
        (json!([ALICE_CALL]), "not an object"),
    ] {
        let (code, err) = post(body, alice.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{what}: {err}");
        assert!(err["message"].is_string(), "{what}: {err}");
    }
    let (code, err) = s
        .put(&format!("{ADHOC}/nope/participants/{ALICE_2}"), &alice, json!({}))
        .await;
    assert_eq!(
        (code, err["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("adhoc-conference-not-found"))
    );
    let (code, _) = s.delete(&format!("{ADHOC}/nope"), &alice).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.post(ADHOC, "not-a-token", json!({})).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(since(&ari, from).is_empty(), "nothing sent to Asterisk");
    assert!(sent(&ami, "Redirect").is_empty());
}
