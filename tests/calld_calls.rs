//! calld `/calls` and `/users/me/calls` against the fake Asterisk: scenario 21
//! (2001 calls 2002, answered) replayed over AMI and ARI until both legs talk,
//! with confd provisioning the two phones as Alice's and Bob's lines; the call
//! objects, who sees what (users, tenants, ACLs), and the hangup request ARI gets.

mod common;

use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions, Replay as AmiReplay};
use accentd::fake_asterisk::ari::{FakeAri, FakeAriOptions, Replay as AriReplay};
use accentd::fake_asterisk::Scenario;
use common::{wait_for, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CALLD: &str = "/api/calld/1.0";
const C: &str = "/api/confd/1.1";
const ALICE_CALL: &str = "1795874804.0";
const BOB_CALL: &str = "1795874804.1";

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
async fn manual_ami(scenario: &Scenario) -> FakeAmi {
    let ami = FakeAmi::start(
        scenario,
        FakeAmiOptions {
            replay: AmiReplay::Manual,
            ..FakeAmiOptions::default()
        },
    )
    .await
    .expect("fake AMI");
    ami.respond_with("Command", Some(common::command_success()));
    ami
}

/// The internal context of the recording's phones (2001-2003).
async fn default_context(s: &TestServer) {
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
async fn user(s: &TestServer, first: &str, login: &str, device: &str) -> Value {
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
async fn bridged_call() -> (FakeAmi, FakeAri, TestServer, Value, Value) {
    let scenario = Scenario::load("21").expect("scenario");
    let ami = manual_ami(&scenario).await;
    let ari = FakeAri::start(
        &scenario,
        FakeAriOptions {
            replay: AriReplay::Manual,
            ..FakeAriOptions::default()
        },
    )
    .await
    .expect("fake ARI");
    let (ami_addr, ari_url) = (ami.addr().to_string(), ari.url());
    let s = TestServer::start_with(|c| {
        c.ami.addr = ami_addr;
        c.ami.user = "accent".into();
        c.ami.password = "accent".into();
        c.ari.url = ari_url;
        c.ari.user = "accent".into();
        c.ari.password = "accent".into();
        c.ari.app = "accent".into();
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
    default_context(&s).await;
    let alice = user(&s, "Alice", "alice", "2001").await;
    let bob = user(&s, "Bob", "bob", "2002").await;

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
    (ami, ari, s, alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_show_both_legs_with_their_users_and_hang_up_over_ari() {
    let (_ami, ari, s, alice, bob) = bridged_call().await;
    let t = s.admin_token.clone();

    let (code, list) = s.get(&format!("{CALLD}/calls"), &t).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
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
    let (_, other) = s.post("/tenants", &t, json!({"name": "other", "slug": "other"})).await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    let (code, list) = s
        .call_with_headers(
            Method::GET,
            &format!("{CALLD}/calls"),
            Some(&t),
            None,
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["items"], json!([]));
    let (code, _) = s
        .call_with_headers(
            Method::DELETE,
            &format!("{CALLD}/calls/{ALICE_CALL}"),
            Some(&t),
            None,
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
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
