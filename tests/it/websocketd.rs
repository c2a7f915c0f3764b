//! The websocket at `/api/websocketd/` with a real websocket client: the protocol (init,
//! subscribe, start, token, ping; v1 and v2 frames), the close codes, the three filters
//! (tenant, addressing, required_acl) for admin, user and other-tenant tokens, events of
//! every service, token expiry and revocation, and a stalled client dropped without
//! delaying the others.

use std::time::Duration;

use accentd::bus::EventSpec;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::chatd_rooms::{new_tenant, token_with_acl, user};
use crate::common::TestServer;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

fn ws_url(s: &TestServer, query: &str) -> String {
    format!("{}/api/websocketd/?{query}", s.base.replacen("http", "ws", 1))
}

async fn connect(s: &TestServer, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(s, query))
        .await
        .expect("connect");
    ws
}

/// Connects with the token in the query string, waits for `init`.
async fn open(s: &TestServer, token: &str, version: u8) -> Ws {
    let mut ws = connect(s, &format!("token={token}&version={version}")).await;
    let init = next_json(&mut ws).await;
    assert_eq!(init, json!({"op": "init", "code": 0, "data": {"version": version}}));
    ws
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::text(msg.to_string())).await.expect("send");
}

/// The next text frame as JSON (pings skipped); panics on close or timeout.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the server closes: the close code (None when the socket just ended).
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("closed in time") {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// Subscribes to `names` and starts, checking the v2 acks.
async fn subscribe_v2(ws: &mut Ws, names: &[&str]) {
    for n in names {
        send(ws, json!({"op": "subscribe", "data": {"event_name": n}})).await;
        assert_eq!(next_json(ws).await, json!({"op": "subscribe", "code": 0, "data": null}));
    }
    send(ws, json!({"op": "start"})).await;
    assert_eq!(next_json(ws).await, json!({"op": "start", "code": 0, "data": null}));
}

/// Event frames (v2) until one named `name` arrives; its bus body.
async fn event_named(ws: &mut Ws, name: &str) -> Value {
    loop {
        let frame = next_json(ws).await;
        assert_eq!(frame["op"], "event", "{frame}");
        if frame["data"]["name"] == name {
            return frame["data"].clone();
        }
    }
}

/// A marker event each test token receives (users through `events.chatd.users.me.rooms.#`):
/// ends a "nothing else arrived" check.
fn marker(tenant: uuid::Uuid, user: uuid::Uuid) -> EventSpec {
    EventSpec::new(
        "chatd_user_room_created",
        format!("chatd.users.{user}.rooms.created"),
        json!({"marker": true}),
    )
    .tenant(tenant)
    .users(vec![user])
}

/// A tenant event carrying a number and some filler.
fn numbered(tenant: uuid::Uuid, n: i64, filler: &str) -> EventSpec {
    EventSpec::new(
        "chatd_presence_updated",
        format!("chatd.users.{tenant}.presences.updated"),
        json!({"n": n, "filler": filler}),
    )
    .tenant(tenant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_protocol_acks_every_op_and_wraps_events() {
    let s = TestServer::start().await;
    let mut ws = open(&s, &s.admin_token, 2).await;
    // Events published before `start` are dropped.
    send(
        &mut ws,
        json!({"op": "subscribe", "data": {"event_name": "auth_tenant_added"}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["op"], "subscribe");
    let (code, _) = s.post("/tenants", &s.admin_token, json!({"name": "early"})).await;
    assert_eq!(code, StatusCode::OK);
    send(&mut ws, json!({"op": "ping", "data": {"payload": "abc"}})).await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"op": "pong", "code": 0, "data": {"payload": "abc"}})
    );
    send(&mut ws, json!({"op": "start"})).await;
    assert_eq!(next_json(&mut ws).await["op"], "start");
    let (code, tenant) = s.post("/tenants", &s.admin_token, json!({"name": "late"})).await;
    assert_eq!(code, StatusCode::OK);
    let event = event_named(&mut ws, "auth_tenant_added").await;
    assert_eq!(event["data"]["uuid"], tenant["uuid"], "{event}");
    assert_eq!(event["data"]["name"], "late");
    for header in ["origin_uuid", "timestamp", "required_acl", "required_access"] {
        assert!(event[header].is_string(), "{header} in {event}");
    }
    // Subscriptions added after start are acked (v2) and take effect.
    send(
        &mut ws,
        json!({"op": "subscribe", "data": {"event_name": "auth_tenant_deleted"}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["op"], "subscribe");
    let uuid = tenant["uuid"].as_str().expect("uuid");
    let (code, _) = s.delete(&format!("/tenants/{uuid}"), &s.admin_token).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(event_named(&mut ws, "auth_tenant_deleted").await["data"]["uuid"], uuid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_sends_raw_bodies_and_acks_only_before_start() {
    let s = TestServer::start().await;
    // Header token, no version: v1.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url(&s, ""))
        .expect("request");
    req.headers_mut()
        .insert("X-Auth-Token", s.admin_token.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
    assert_eq!(next_json(&mut ws).await["data"]["version"], 1);
    send(&mut ws, json!({"op": "subscribe", "data": {"event_name": "*"}})).await;
    assert_eq!(next_json(&mut ws).await["op"], "subscribe");
    send(&mut ws, json!({"op": "start"})).await;
    assert_eq!(next_json(&mut ws).await["op"], "start");
    // No ack after start in v1: the next frame is the event itself, unwrapped.
    send(
        &mut ws,
        json!({"op": "subscribe", "data": {"event_name": "auth_tenant_added"}}),
    )
    .await;
    let (_, tenant) = s.post("/tenants", &s.admin_token, json!({"name": "v1"})).await;
    let body = next_json(&mut ws).await;
    assert_eq!(body["name"], "auth_tenant_added", "{body}");
    assert_eq!(body["data"]["uuid"], tenant["uuid"]);
    assert!(body.get("op").is_none());
    // v1 has no ping op.
    send(&mut ws, json!({"op": "ping", "data": {"payload": "x"}})).await;
    assert_eq!(close_code(&mut ws).await, Some(4004));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_close_with_upstream_codes() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    // No token, an unknown token, a token without the `websocketd` ACL.
    assert_eq!(close_code(&mut connect(&s, "").await).await, Some(4001));
    assert_eq!(close_code(&mut connect(&s, "token=nope").await).await, Some(4002));
    let narrow = token_with_acl(&s, &master, "narrow", json!(["confd.#"])).await;
    assert_eq!(
        close_code(&mut connect(&s, &format!("token={narrow}")).await).await,
        Some(4002)
    );
    let t = &s.admin_token;
    assert_eq!(
        close_code(&mut connect(&s, &format!("token={t}&version=3")).await).await,
        Some(4004)
    );
    // Malformed messages and unknown ops, before or after start.
    for bad in [
        "not json".to_string(),
        json!({"op": "dance"}).to_string(),
        json!({"op": "subscribe"}).to_string(),
        json!({"op": "subscribe", "data": {"event_name": 7}}).to_string(),
        json!({"op": "token", "data": {}}).to_string(),
    ] {
        let mut ws = open(&s, t, 2).await;
        ws.send(Message::text(bad.clone())).await.expect("send");
        assert_eq!(close_code(&mut ws).await, Some(4004), "{bad}");
    }
    // A subscribe sent before `init` arrived is served after it, as upstream.
    let mut ws = connect(&s, &format!("token={t}&version=2")).await;
    send(&mut ws, json!({"op": "subscribe", "data": {"event_name": "x"}})).await;
    assert_eq!(next_json(&mut ws).await["op"], "init");
    assert_eq!(next_json(&mut ws).await["op"], "subscribe");
    // A plain GET is not a websocket.
    let (code, body) = s.call(Method::GET, "/api/websocketd/", None, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_id"], "websocket-upgrade-required", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_gets_only_what_its_tenant_addressing_and_acl_allow() {
    let s = TestServer::start().await;
    let master: uuid::Uuid = s.master_tenant().await.parse().expect("uuid");
    let acme = new_tenant(&s, "acme").await;
    let other = new_tenant(&s, "other").await;
    let (alice, alice_t) = user(&s, &acme, "alice").await;
    let (bob, bob_t) = user(&s, &acme, "bob").await;
    let (carol, carol_t) = user(&s, &other, "carol").await;
    let acme_admin = token_with_acl(&s, &acme, "acme-admin", json!(["websocketd", "events.#"])).await;
    let (acme, other): (uuid::Uuid, uuid::Uuid) = (acme.parse().expect("uuid"), other.parse().expect("uuid"));
    let (alice, bob, carol): (uuid::Uuid, uuid::Uuid, uuid::Uuid) = (
        alice.parse().expect("uuid"),
        bob.parse().expect("uuid"),
        carol.parse().expect("uuid"),
    );
    let mut clients = Vec::new();
    for t in [&s.admin_token, &acme_admin, &alice_t, &bob_t, &carol_t] {
        let mut ws = open(&s, t, 2).await;
        subscribe_v2(&mut ws, &["*"]).await;
        clients.push(ws);
    }
    let bus = s.app().bus.clone();
    // A call event for alice (her ACL `events.calls.me`), a tenant-wide config event
    // (users lack `events.config...`), carol's tenant's presence event, a service event.
    let call = EventSpec::new("call_created", "calls.call.created", json!({"n": 1}))
        .tenant(acme)
        .users(vec![alice])
        .acl(format!("events.calls.{alice}"));
    let bobs = EventSpec::new("call_created", "calls.call.created", json!({"n": 0}))
        .tenant(acme)
        .users(vec![alice])
        .acl(format!("events.calls.{bob}"));
    let config = EventSpec::new("user_created", "config.user.created", json!({"n": 2})).tenant(acme);
    let presence = EventSpec::new(
        "chatd_presence_updated",
        format!("chatd.users.{carol}.presences.updated"),
        json!({"n": 3}),
    )
    .tenant(other);
    let service = EventSpec::new(
        "sip_transport_created",
        "config.sip.transports.created",
        json!({"n": 4}),
    );
    for spec in [bobs, call, config, presence, service] {
        bus.publish(spec);
    }
    // What each should see, in order, before its own marker.
    let expected: [&[i64]; 5] = [&[0, 1, 2, 3, 4], &[0, 1, 2], &[1], &[], &[3]];
    let owners = [master, acme, acme, acme, other];
    let users = [uuid::Uuid::nil(), uuid::Uuid::nil(), alice, bob, carol];
    for ((ws, want), (tenant, user)) in clients.iter_mut().zip(expected).zip(owners.into_iter().zip(users)) {
        bus.publish(marker(tenant, user));
        let mut got = Vec::new();
        loop {
            let frame = next_json(ws).await;
            if frame["data"]["data"]["marker"] == true {
                break;
            }
            got.push(frame["data"]["data"]["n"].as_i64().expect("n"));
        }
        assert_eq!(got, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_close_with_4003() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    s.create_user_sql(&master, "short", "pw-short-1").await;
    let (code, body) = s.login_with("short", "pw-short-1", json!({"expiration": 2})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let short = body["data"]["token"].as_str().expect("token").to_string();
    let mut ws = open(&s, &short, 2).await;
    subscribe_v2(&mut ws, &["*"]).await;
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut ws).await, Some(4003));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Revoked: closed at once, not at expiry.
    let long = s.login("short", "pw-short-1").await;
    let mut ws = open(&s, &long, 2).await;
    subscribe_v2(&mut ws, &["*"]).await;
    let (code, _) = s.call(Method::DELETE, &format!("/token/{long}"), None, None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(close_code(&mut ws).await, Some(4003));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_op_swaps_the_token_of_the_same_user_only() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let (_, first) = user(&s, &master, "dave").await;
    let second = s.login("dave", "pw-chat-1").await;
    let (_, erin) = user(&s, &master, "erin").await;
    let mut ws = open(&s, &first, 2).await;
    subscribe_v2(&mut ws, &["*"]).await;
    send(&mut ws, json!({"op": "token", "data": {"token": second}})).await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"op": "token", "code": 0, "data": null})
    );
    // The first token no longer matters: revoking it leaves the connection open.
    s.call(Method::DELETE, &format!("/token/{first}"), None, None).await;
    send(&mut ws, json!({"op": "ping", "data": {"payload": 1}})).await;
    assert_eq!(next_json(&mut ws).await["op"], "pong");
    // Someone else's token, or a dead one: 4002.
    send(&mut ws, json!({"op": "token", "data": {"token": erin}})).await;
    assert_eq!(close_code(&mut ws).await, Some(4002));
    let mut ws = open(&s, &second, 2).await;
    send(&mut ws, json!({"op": "token", "data": {"token": "dead"}})).await;
    assert_eq!(close_code(&mut ws).await, Some(4002));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_dropped_and_the_others_get_everything() {
    let s = TestServer::start().await;
    let master: uuid::Uuid = s.master_tenant().await.parse().expect("uuid");
    let mut fast = open(&s, &s.admin_token, 2).await;
    subscribe_v2(&mut fast, &["chatd_presence_updated"]).await;
    let mut stalled = open(&s, &s.admin_token, 2).await;
    subscribe_v2(&mut stalled, &["chatd_presence_updated"]).await;
    // From here `stalled` is never read until the end: its socket buffers fill, then its
    // queue in accentd, and accentd closes it.
    let bus = s.app().bus.clone();
    let filler = "x".repeat(8 * 1024);
    let (batches, per_batch) = (200, 50);
    let mut received = 0;
    for b in 0..batches {
        for i in 0..per_batch {
            bus.publish(numbered(master, b * per_batch + i, &filler));
        }
        // Each batch reaches the fast client before the next is published: the bus
        // itself never lags it.
        for _ in 0..per_batch {
            let frame = next_json(&mut fast).await;
            assert_eq!(frame["data"]["data"]["n"], received, "in order, none lost");
            received += 1;
        }
        if s.app().websocketd.closed_slow() > 0 && b > 20 {
            break;
        }
    }
    assert_eq!(s.app().websocketd.closed_slow(), 1, "the stalled client was closed");
    // Reading now: whatever was buffered, then the end of the connection.
    let mut frames = 0;
    loop {
        match tokio::time::timeout(WAIT, stalled.next()).await.expect("ends in time") {
            Some(Ok(Message::Text(_))) => frames += 1,
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        frames < received,
        "the stalled client did not get everything ({frames})"
    );
    // The fast client is still served.
    bus.publish(numbered(master, -1, ""));
    assert_eq!(next_json(&mut fast).await["data"]["data"]["n"], -1);
    let (_, status) = s.call(Method::GET, "/status", None, None).await;
    assert!(
        status["websocketd"]["detail"]
            .as_str()
            .expect("detail")
            .contains("1 closed"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_auth_confd_calld_and_call_logd_arrive() {
    let (ami, ari, s) = crate::calld_calls::ready().await;
    let mut admin = open(&s, &s.admin_token, 2).await;
    subscribe_v2(&mut admin, &["*"]).await;
    // confd
    let alice = crate::calld_calls::user(&s, "Alice", "alice", "2001").await;
    crate::calld_calls::user(&s, "Bob", "bob", "2002").await;
    let created = event_named(&mut admin, "user_created").await;
    assert_eq!(created["data"]["uuid"], alice["uuid"], "{created}");
    // auth
    let alice_t = s.login("alice", "pw-alice-123").await;
    let session = event_named(&mut admin, "auth_session_created").await;
    assert_eq!(session["data"]["user_uuid"], alice["uuid"], "{session}");
    let mut mine = open(&s, &alice_t, 2).await;
    subscribe_v2(&mut mine, &["call_created", "call_ended"]).await;
    // calld and call-logd, from the recorded call.
    ami.replay_all();
    ari.replay_all();
    let call = event_named(&mut mine, "call_created").await;
    assert_eq!(call["data"]["user_uuid"], alice["uuid"], "{call}");
    assert_eq!(
        call[format!("user_uuid:{}", alice["uuid"].as_str().expect("uuid"))],
        true
    );
    event_named(&mut mine, "call_ended").await;
    let log = event_named(&mut admin, "call_log_created").await;
    assert_eq!(log["data"]["source_extension"], "2001", "{log}");
}
