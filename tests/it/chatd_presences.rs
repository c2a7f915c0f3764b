//! chatd presences over HTTP and their `chatd_presence_updated` events: list/get/update with
//! `me`, the `user_uuid` filter, ACLs, tenants, bad bodies; `connected`/`mobile` following
//! logins and logouts through auth; `do_not_disturb` following confd's DND service; and the
//! line states following a recorded call (scenario 24: ringing, talking, holding, hangup)
//! replayed through the fake Asterisk.

use std::sync::Arc;

use accentd::bus::Event;
use accentd::fake_asterisk::Scenario;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::broadcast::Receiver;

use crate::calld_calls::{default_context, first_resync, manual_ami, user as user_with_line, C};
use crate::chatd_rooms::{token_with_acl, CHATD};
use crate::common::{wait_for, TestServer};
use crate::control_feed::ami_position;

const UPDATED: &str = "chatd_presence_updated";

/// A confd user (with an auth login `login`) of `tenant`, no line: its uuid.
async fn confd_user(s: &TestServer, tenant: &str, login: &str) -> String {
    let (code, u) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/users"),
            Some(&s.admin_token),
            Some(json!({"firstname": login, "auth": {"username": login, "password": format!("pw-{login}-123")}})),
            &[("Accent-Tenant", tenant)],
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{u}");
    u["uuid"].as_str().expect("uuid").to_string()
}

async fn tenant(s: &TestServer, name: &str) -> String {
    let (code, body) = s
        .post("/tenants", &s.admin_token, json!({ "name": name, "slug": name }))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["uuid"].as_str().expect("uuid").to_string()
}

/// `POST /token` for `login`, with the session type header when given: (token, body).
async fn login(s: &TestServer, login: &str, session_type: Option<&str>, body: Value) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{login}:pw-{login}-123"));
    let authz = format!("Basic {basic}");
    let mut headers = vec![("Authorization", authz.as_str())];
    if let Some(t) = session_type {
        headers.push(("Accent-Session-Type", t));
    }
    let (code, body) = s
        .call_with_headers(Method::POST, "/token", None, Some(body), &headers)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["data"]["token"].as_str().expect("token").to_string()
}

/// The next presence event about `user`, skipping others.
async fn next_update(bus: &mut Receiver<Arc<Event>>, user: &str) -> Value {
    loop {
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), bus.recv())
            .await
            .unwrap_or_else(|_| panic!("no presence event for {user}"))
            .expect("bus");
        if e.name == UPDATED && e.data["uuid"] == user {
            return e.to_json();
        }
    }
}

/// Presence events waiting for `user`.
fn drain_updates(bus: &mut Receiver<Arc<Event>>, user: &str) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(e) = bus.try_recv() {
        if e.name == UPDATED && e.data["uuid"] == user {
            out.push(e.data.clone());
        }
    }
    out
}

async fn presence(s: &TestServer, token: &str, user: &str) -> Value {
    let (code, body) = s.get(&format!("{CHATD}/users/{user}/presences"), token).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn list_get_update_with_me_filters_acls_tenants_and_events() {
    let s = TestServer::start().await;
    let ta = tenant(&s, "ta").await;
    let tb = tenant(&s, "tb").await;
    let alice = confd_user(&s, &ta, "alice").await;
    let bob = confd_user(&s, &ta, "bob").await;
    let zoe = confd_user(&s, &tb, "zoe").await;
    let admin = s.admin_token.clone();
    let alice_t = s.login("alice", "pw-alice-123").await;

    // The whole object, as chatd shows it, for a user who never chose a state.
    let body = presence(&s, &alice_t, &bob).await;
    assert_eq!(
        body,
        json!({
            "uuid": bob, "tenant_uuid": ta, "state": "unavailable", "status": null,
            "last_activity": null, "connected": false, "mobile": false, "do_not_disturb": false,
            "line_state": "unavailable", "lines": []
        })
    );
    assert_eq!(presence(&s, &alice_t, "me").await["uuid"], alice.as_str());
    assert_eq!(presence(&s, &alice_t, "me").await["connected"], true, "alice logged in");

    // The list: the request's tenant, the filter, `recurse` from above.
    let list_as = |tenant: String, query: String| {
        let (s, admin) = (&s, admin.clone());
        async move {
            s.call_with_headers(
                Method::GET,
                &format!("{CHATD}/users/presences{query}"),
                Some(&admin),
                None,
                &[("Accent-Tenant", tenant.as_str())],
            )
            .await
        }
    };
    let (code, list) = list_as(ta.clone(), String::new()).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let uuids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["uuid"].as_str())
        .collect();
    assert_eq!(uuids, [alice.as_str(), bob.as_str()]);
    assert_eq!((list["total"].as_u64(), list["filtered"].as_u64()), (Some(2), Some(2)));
    let (_, list) = list_as(ta.clone(), format!("?user_uuid={bob}")).await;
    assert_eq!(list["items"][0]["uuid"], bob.as_str());
    assert_eq!((list["total"].as_u64(), list["filtered"].as_u64()), (Some(2), Some(1)));
    let (code, err) = list_as(ta.clone(), format!("?user_uuid={bob},{zoe}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "another tenant's user: {err}");
    assert_eq!(err["error_id"], "unknown-users");
    assert_eq!(err["details"]["uuids"], json!([zoe]));
    let (code, err) = list_as(ta.clone(), "?user_uuid=nope".into()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
    let master = s.master_tenant().await;
    let (_, list) = list_as(master.clone(), String::new()).await;
    assert_eq!(list["total"], 0, "no PBX user in the master tenant itself: {list}");
    let (_, list) = list_as(master, "?recurse=true".into()).await;
    assert_eq!(list["total"], 3, "{list}");

    // PUT by `me`: 204, stored, announced to the tenant.
    let mut bus = s.app().bus.subscribe();
    let (code, body) = s
        .put(
            &format!("{CHATD}/users/me/presences"),
            &alice_t,
            json!({"state": "away", "status": "lunch"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let event = next_update(&mut bus, &alice).await;
    assert_eq!(event["name"], UPDATED);
    assert_eq!(
        event["required_acl"],
        format!("events.chatd.users.{alice}.presences.updated")
    );
    assert_eq!(event["tenant_uuid"], ta.as_str());
    assert_eq!(event["user_uuid:*"], true);
    let got = presence(&s, &admin, &alice).await;
    assert_eq!(event["data"], got, "the event carries the presence object");
    assert_eq!(
        (got["state"].as_str(), got["status"].as_str()),
        (Some("away"), Some("lunch"))
    );
    let first_activity = got["last_activity"].as_str().expect("last_activity").to_string();
    assert!(first_activity.ends_with("+00:00"), "{first_activity}");

    // Status omitted: kept; null: cleared. Each PUT is an activity (and an event).
    let put = |token: String, user: String, body: Value| {
        let s = &s;
        async move { s.put(&format!("{CHATD}/users/{user}/presences"), &token, body).await }
    };
    let (code, _) = put(alice_t.clone(), alice.clone(), json!({"state": "available"})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let event = next_update(&mut bus, &alice).await;
    assert_eq!(
        (event["data"]["state"].as_str(), event["data"]["status"].as_str()),
        (Some("available"), Some("lunch"))
    );
    assert_ne!(event["data"]["last_activity"], first_activity.as_str());
    let (code, _) = put(
        alice_t.clone(),
        alice.clone(),
        json!({"state": "invisible", "status": null}),
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let event = next_update(&mut bus, &alice).await;
    assert_eq!(event["data"]["state"], "invisible");
    assert_eq!(event["data"]["status"], Value::Null);

    // A user may not change another user's presence; an admin may, in its tenants only.
    let (code, body) = put(alice_t.clone(), bob.clone(), json!({"state": "away"})).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    let (code, body) = put(admin.clone(), bob.clone(), json!({"state": "away"})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(next_update(&mut bus, &bob).await["data"]["state"], "away");
    let (code, body) = s
        .call_with_headers(
            Method::PUT,
            &format!("{CHATD}/users/{zoe}/presences"),
            Some(&admin),
            Some(json!({"state": "away"})),
            &[("Accent-Tenant", ta.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error_id"], "unknown-user");
    assert_eq!(body["message"], format!("No such user: \"{zoe}\""));

    // Another tenant's user is not found by a user either.
    let (code, body) = s.get(&format!("{CHATD}/users/{zoe}/presences"), &alice_t).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        let (code, body) = s.get(&format!("{CHATD}/users/{missing}/presences"), &admin).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
        let (code, body) = put(admin.clone(), missing, json!({"state": "away"})).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    }

    // Bad bodies: 400 naming the field, nothing stored, no event.
    for bad in [
        json!({"state": "busy"}),
        json!({"state": "away", "color": "red"}),
        json!({"state": "away", "status": 42}),
        json!({"state": 1}),
        json!({"status": "x"}),
        json!({"state": "away", "uuid": alice}),
        json!([{"state": "away"}]),
        json!("away"),
    ] {
        let (code, body) = put(alice_t.clone(), "me".into(), bad.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error_id"], "invalid-data", "{bad}: {body}");
    }
    let (code, body) = s
        .call_with_headers(
            Method::PUT,
            &format!("{CHATD}/users/me/presences"),
            Some(&alice_t),
            None,
            &[("Content-Type", "application/json")],
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "empty body: {body}");
    assert_eq!(presence(&s, &admin, &alice).await["state"], "invisible");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(drain_updates(&mut bus, &alice).is_empty());

    // Without the ACLs: 401 on every route.
    let nobody = token_with_acl(&s, &ta, "nobody", json!(["chatd.users.me.rooms.read"])).await;
    for (method, path) in [
        (Method::GET, format!("{CHATD}/users/presences")),
        (Method::GET, format!("{CHATD}/users/{alice}/presences")),
        (Method::PUT, format!("{CHATD}/users/{alice}/presences")),
    ] {
        let (code, body) = s
            .call(method.clone(), &path, Some(&nobody), Some(json!({"state": "away"})))
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }
    let (code, _) = s.get(&format!("{CHATD}/users/presences"), "not-a-token").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn state_and_status_survive_a_restart() {
    let s = TestServer::start().await;
    let ta = tenant(&s, "ta").await;
    let alice = confd_user(&s, &ta, "alice").await;
    let (code, _) = s
        .put(
            &format!("{CHATD}/users/{alice}/presences"),
            &s.admin_token,
            json!({"state": "away", "status": "back soon"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let before = presence(&s, &s.admin_token, &alice).await;
    let s = s.restart().await;
    assert_eq!(presence(&s, &s.admin_token, &alice).await, before);
}

#[tokio::test]
async fn logins_and_logouts_make_users_connected_and_mobile() {
    let s = TestServer::start().await;
    let ta = tenant(&s, "ta").await;
    let carol = confd_user(&s, &ta, "carol").await;
    let admin = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();

    let token = login(&s, "carol", None, json!({})).await;
    let event = next_update(&mut bus, &carol).await;
    assert_eq!(
        (event["data"]["connected"].as_bool(), event["data"]["mobile"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(presence(&s, &admin, &carol).await["connected"], true);

    let (code, _) = s.call(Method::DELETE, &format!("/token/{token}"), None, None).await;
    assert_eq!(code, StatusCode::OK);
    let event = next_update(&mut bus, &carol).await;
    assert_eq!(event["data"]["connected"], false);
    assert_eq!(presence(&s, &admin, &carol).await["connected"], false);

    // A mobile session with a refresh token: mobile while either lasts.
    let token = login(
        &s,
        "carol",
        Some("mobile"),
        json!({"access_type": "offline", "client_id": "phone-app"}),
    )
    .await;
    let mut seen = next_update(&mut bus, &carol).await["data"].clone();
    // The refresh token and the session are two events; wait for both to be reflected.
    while seen["connected"] != true || seen["mobile"] != true {
        seen = next_update(&mut bus, &carol).await["data"].clone();
    }
    let (code, _) = s.call(Method::DELETE, &format!("/token/{token}"), None, None).await;
    assert_eq!(code, StatusCode::OK);
    let event = next_update(&mut bus, &carol).await;
    assert_eq!(
        (event["data"]["connected"].as_bool(), event["data"]["mobile"].as_bool()),
        (Some(false), Some(true)),
        "the refresh token still says mobile"
    );
}

#[tokio::test]
async fn dnd_is_part_of_the_presence() {
    let s = TestServer::start().await;
    let ta = tenant(&s, "ta").await;
    let dave = confd_user(&s, &ta, "dave").await;
    let mut bus = s.app().bus.subscribe();
    let (code, body) = s
        .put(
            &format!("{C}/users/{dave}/services/dnd"),
            &s.admin_token,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let event = next_update(&mut bus, &dave).await;
    assert_eq!(event["data"]["do_not_disturb"], true);
    assert_eq!(presence(&s, &s.admin_token, &dave).await["do_not_disturb"], true);
    let (code, _) = s
        .put(
            &format!("{C}/users/{dave}/services/dnd"),
            &s.admin_token,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(next_update(&mut bus, &dave).await["data"]["do_not_disturb"], false);
}

/// Accentd on scenario 24's AMI (nothing replayed yet) with the phones' context.
async fn on_scenario_24() -> (accentd::fake_asterisk::ami::FakeAmi, TestServer) {
    let scenario = Scenario::load("24").expect("scenario");
    let ami = manual_ami(&scenario).await;
    let s = TestServer::start_with_ami(&ami).await;
    // The replay starts once accentd has read Asterisk's (empty) lists, as a call would.
    first_resync(&s).await;
    default_context(&s).await;
    (ami, s)
}

/// A user whose line is the recording's phone `device`: its uuid.
async fn phone_user(s: &TestServer, name: &str, device: &str) -> String {
    let u = user_with_line(s, name, &name.to_lowercase(), device).await;
    u["uuid"].as_str().expect("uuid").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_states_follow_a_recorded_call_with_hold() {
    // Scenario 24: Alice (2001) calls Bob (2002), Bob answers, Alice holds, resumes, hangs up;
    // then both phones unregister.
    let (ami, s) = on_scenario_24().await;
    let alice = phone_user(&s, "Alice", "2001").await;
    let bob = phone_user(&s, "Bob", "2002").await;
    let admin = s.admin_token.clone();
    let line = |p: &Value| p["lines"][0]["id"].as_i64().expect("line id");
    let before = presence(&s, &admin, &alice).await;
    assert_eq!(before["line_state"], "unavailable", "nothing registered yet: {before}");
    assert_eq!(before["lines"].as_array().map(Vec::len), Some(1), "{before}");
    let alice_line = line(&before);
    // The provisioning's own events (each new user is published once) are behind us.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut bus = s.app().bus.subscribe();
    let mut events: Vec<Value> = Vec::new();
    let mut collect = |bus: &mut Receiver<Arc<Event>>| {
        while let Ok(e) = bus.try_recv() {
            if e.name == UPDATED {
                events.push(e.data.clone());
            }
        }
        events.clone()
    };
    let of = |events: &[Value], user: &str| -> Vec<Value> {
        let mine = events.iter().filter(|p| p["uuid"] == user).cloned();
        // A provisioning event still on its way only says "unavailable" again.
        mine.skip_while(|p| p["line_state"] == "unavailable").collect()
    };

    // Up to the hold: the held call shows on Alice's line and in her line_state.
    ami.replay_next(ami_position(ami.recording(), "Hold"));
    wait_for("holding published", || {
        of(&collect(&mut bus), &alice)
            .last()
            .is_some_and(|p| p["line_state"] == "holding")
    })
    .await;
    let now = presence(&s, &admin, &alice).await;
    assert_eq!(now["line_state"], "holding", "{now}");
    assert_eq!(now["lines"], json!([{"id": alice_line, "state": "holding"}]));
    assert_eq!(presence(&s, &admin, &bob).await["line_state"], "talking");

    // The rest: resumed, hung up (available again), unregistered.
    ami.replay_all();
    wait_for("both unregistered", || {
        let all = collect(&mut bus);
        [&alice, &bob]
            .iter()
            .all(|u| of(&all, u).last().is_some_and(|p| p["line_state"] == "unavailable"))
    })
    .await;
    let all = collect(&mut bus);
    let states = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|p| p["line_state"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let alice_events = of(&all, &alice);
    assert_eq!(
        states(&alice_events),
        [
            "available",
            "progressing",
            "talking",
            "holding",
            "talking",
            "available",
            "unavailable"
        ],
        "{alice_events:#?}"
    );
    // Bob's phone rings, talks (the hold is Alice's doing), hangs up, unregisters.
    let bob_events = of(&all, &bob);
    assert_eq!(
        states(&bob_events),
        ["available", "ringing", "talking", "available", "unavailable"],
        "{bob_events:#?}"
    );
    for p in alice_events.iter() {
        // Each event is the whole object, its line mirroring the merged state.
        assert_eq!(p["lines"], json!([{"id": alice_line, "state": p["line_state"]}]));
        assert_eq!(p["state"], "unavailable");
    }
    let after = presence(&s, &admin, &alice).await;
    assert_eq!(after["line_state"], "unavailable");
}

/// The AMI link drops while Alice holds; the call ends meanwhile. The resync after the
/// reconnection brings both lines back to available, and that is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnection_to_asterisk_resyncs_line_states() {
    let (ami, s) = on_scenario_24().await;
    let alice = phone_user(&s, "Alice", "2001").await;
    let admin = s.admin_token.clone();
    let hold = ami_position(ami.recording(), "Hold");
    ami.replay_next(hold);
    wait_for("alice holding", || {
        s.app().live.channel("1795874868.6").is_some_and(|c| c.on_hold)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(presence(&s, &admin, &alice).await["line_state"], "holding");
    let mut bus = s.app().bus.subscribe();

    ami.pause_accept().await;
    ami.drop_connections();
    wait_for("AMI down", || ami.open_connections() == 0).await;
    // Everything up to the phones unregistering happens while accentd is away.
    let unregistered = ami
        .recording()
        .timeline()
        .iter()
        .position(|m| m.get("Event") == Some("DeviceStateChange") && m.get("State") == Some("UNAVAILABLE"))
        .expect("unregistration in the recording");
    ami.replay_next(unregistered - hold);
    ami.resume_accept().await;

    let event = next_update(&mut bus, &alice).await;
    assert_eq!(event["data"]["line_state"], "available", "{event}");
    let now = presence(&s, &admin, &alice).await;
    assert_eq!(now["line_state"], "available");
    assert_eq!(now["lines"][0]["state"], "available");
}

/// A line associated with or dissociated from a user changes the user's `lines`: published.
#[tokio::test]
async fn line_associations_change_the_presence() {
    let s = TestServer::start().await;
    default_context(&s).await;
    let ta = s.master_tenant().await;
    let owner = user_with_line(&s, "Owner", "owner", "2001").await;
    let line = owner["lines"][0]["id"].as_i64().expect("line id");
    let erin = confd_user(&s, &ta, "erin").await;
    let mut bus = s.app().bus.subscribe();
    let path = format!("{C}/users/{erin}/lines/{line}");
    let (code, body) = s.call(Method::PUT, &path, Some(&s.admin_token), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let event = next_update(&mut bus, &erin).await;
    assert_eq!(event["data"]["lines"], json!([{"id": line, "state": "unavailable"}]));
    let (code, body) = s.delete(&path, &s.admin_token).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let event = next_update(&mut bus, &erin).await;
    assert_eq!(event["data"]["lines"], json!([]));
    assert_eq!(presence(&s, &s.admin_token, &erin).await["lines"], json!([]));
}
