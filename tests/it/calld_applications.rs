//! calld applications against the fake Asterisk: a confd application opens
//! its own ARI websocket (`app=accent-app-<uuid>`); a channel entering it
//! (scenario 04's StasisStart, delivered to that application) becomes an
//! application call, goes to the destination node; the call actions, nodes,
//! playbacks and originates as the exact ARI requests the fake receives, the
//! `application_*` events, tenants, ACLs and bad input.

use std::collections::BTreeMap;

use crate::common::{wait_for, TestServer};
use accentd::bus::Event;
use accentd::fake_asterisk::ari::{FakeAri, FakeAriOptions, Replay};
use accentd::fake_asterisk::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::broadcast::Receiver;

const CALLD: &str = "/api/calld/1.0";
const C: &str = "/api/confd/1.1";
/// Scenario 04's channel in Stasis.
const CALL: &str = "1795870763.8";

/// A request the fake received: method, path, decoded query.
pub(crate) type Req = (String, String, BTreeMap<String, String>);

/// The control requests the fake received (reads, such as the links' health
/// checks and resyncs, left out).
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
            (r.method, url.path().to_string(), query)
        })
        .collect()
}

pub(crate) fn req(method: &str, path: &str, query: &[(&str, &str)]) -> Req {
    (
        method.to_string(),
        path.to_string(),
        query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    )
}

/// Waits until the fake received `wanted` (after the `from`th request).
pub(crate) async fn wait_request(ari: &FakeAri, from: usize, wanted: Req) {
    wait_for(&format!("ARI request {wanted:?}"), || {
        requests(ari).iter().skip(from).any(|r| *r == wanted)
    })
    .await;
}

async fn started() -> (FakeAri, TestServer) {
    let scenario = Scenario::load("04").expect("scenario");
    let ari = FakeAri::start(
        &scenario,
        FakeAriOptions {
            replay: Replay::Manual,
            ..FakeAriOptions::default()
        },
    )
    .await
    .expect("fake ARI");
    let url = ari.url();
    let s = TestServer::start_with(|c| {
        c.ari.url = url;
        c.ari.user = "accent".into();
        c.ari.password = "accent".into();
        c.ari.app = "accent".into();
    })
    .await;
    {
        let app = s.app();
        wait_for("ARI up", || app.ari.as_ref().is_some_and(|h| h.events.is_connected())).await;
    }
    (ari, s)
}

/// Creates an application and waits for its websocket (no subscribeAll).
async fn application(s: &TestServer, ari: &FakeAri, body: Value) -> String {
    let before = ari.connections();
    let (code, app) = s.post(&format!("{C}/applications"), &s.admin_token, body).await;
    assert_eq!(code, StatusCode::CREATED, "{app}");
    let uuid = app["uuid"].as_str().expect("uuid").to_string();
    assert!(
        ari.wait_for_connections(before + 1, std::time::Duration::from_secs(10))
            .await,
        "application websocket"
    );
    let ws: Vec<String> = ari
        .requests()
        .into_iter()
        .filter(|r| r.websocket)
        .map(|r| r.uri)
        .collect();
    let mine = format!("/ari/events?app=accent-app-{uuid}");
    assert!(ws.contains(&mine), "{mine} in {ws:?}");
    uuid
}

/// A recorded scenario-04 event, delivered to application `uuid`, with `id` as channel id.
fn recorded(ari: &FakeAri, kind: &str, uuid: &str, id: &str) -> String {
    let line = ari
        .events()
        .into_iter()
        .find(|l| l.contains(&format!("\"type\":\"{kind}\"")) && l.contains(CALL))
        .expect("recorded event");
    line.replace(
        "\"application\":\"accent\"",
        &format!("\"application\":\"accent-app-{uuid}\""),
    )
    .replace("\"app_data\":\"accent,", &format!("\"app_data\":\"accent-app-{uuid},"))
    .replace(CALL, id)
}

/// The channel `id` of scenario 04 enters application `uuid`.
fn enter(ari: &FakeAri, uuid: &str, id: &str) {
    ari.inject(&recorded(ari, "ChannelCreated", uuid, id));
    ari.inject(&recorded(ari, "StasisStart", uuid, id));
}

fn bridge_event(kind: &str, uuid: &str, bridge: &str, id: &str, channels: &[&str]) -> String {
    json!({
        "type": kind,
        "timestamp": "2026-11-28T12:59:33.196+0000",
        "bridge": {"id": bridge, "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
                   "creator": "Stasis", "name": format!("accent-app-{uuid}"), "channels": channels,
                   "creationtime": "2026-11-28T12:59:33.194+0000", "video_mode": "talker"},
        "channel": {"id": id, "name": "Local/1001@dev-00000004;1", "state": "Up", "protocol_id": "",
                    "caller": {"name": "Accent IVR", "number": "8800"}, "connected": {"name": "Accent IVR", "number": "8800"},
                    "accountcode": "", "dialplan": {"context": "dev", "exten": "1001", "priority": 1, "app_name": "Stasis",
                    "app_data": format!("accent-app-{uuid}")}, "creationtime": "2026-11-28T12:59:23.623+0000", "language": "en"},
        "asterisk_id": "02:fc:00:00:00:01",
        "application": format!("accent-app-{uuid}"),
    })
    .to_string()
}

fn playback_event(kind: &str, uuid: &str, id: &str, state: &str) -> String {
    json!({
        "type": kind,
        "timestamp": "2026-11-28T12:59:25.630+0000",
        "playback": {"id": id, "media_uri": "sound:hello-world", "target_uri": format!("channel:{CALL}"),
                     "language": "en", "state": state},
        "asterisk_id": "02:fc:00:00:00:01",
        "application": format!("accent-app-{uuid}"),
    })
    .to_string()
}

pub(crate) async fn wait_event(bus: &mut Receiver<std::sync::Arc<Event>>, name: &str) -> std::sync::Arc<Event> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, bus.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {name}"))
            .expect("bus");
        if ev.name == name {
            return ev;
        }
    }
}

async fn calls(s: &TestServer, uuid: &str) -> Vec<Value> {
    let (code, body) = s
        .get(&format!("{CALLD}/applications/{uuid}/calls"), &s.admin_token)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn put(s: &TestServer, path: &str) -> (StatusCode, Value) {
    s.call(Method::PUT, &format!("{CALLD}{path}"), Some(&s.admin_token), None)
        .await
}

#[tokio::test]
async fn calls_enter_the_destination_node_and_take_actions() {
    let (ari, s) = started().await;
    let tenant = s.master_tenant().await;
    let mut bus = s.app().bus.subscribe();
    let uuid = application(
        &s,
        &ari,
        json!({"name": "ivr", "destination": "node",
               "destination_options": {"type": "holding", "answer": true, "music_on_hold": "jazz"}}),
    )
    .await;
    let app = format!("/applications/{uuid}");
    let (code, shown) = s.get(&format!("{CALLD}{app}"), &s.admin_token).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(shown, json!({"destination_node_uuid": uuid}));

    let from = requests(&ari).len();
    enter(&ari, &uuid, CALL);
    let entered = wait_event(&mut bus, "application_call_entered").await;
    assert_eq!(entered.routing_key, format!("applications.{uuid}.calls.created"));
    assert_eq!(entered.tenant_uuid.map(|t| t.to_string()), Some(tenant.clone()));
    assert_eq!(entered.data["application_uuid"], json!(uuid));
    assert_eq!(entered.data["call"]["id"], json!(CALL));
    let node = wait_event(&mut bus, "application_destination_node_created").await;
    assert_eq!(node.data["node"], json!({"uuid": uuid, "calls": []}));
    assert_eq!(node.routing_key, format!("applications.{uuid}.nodes.created"));
    // The bridge (the application's uuid, the destination's type) with its music, answered, added.
    let stasis = format!("accent-app-{uuid}");
    wait_request(
        &ari,
        from,
        req("POST", &format!("/ari/bridges/{uuid}/addChannel"), &[("channel", CALL)]),
    )
    .await;
    let sent: Vec<Req> = requests(&ari).into_iter().skip(from).collect();
    assert_eq!(
        sent,
        vec![
            req(
                "POST",
                "/ari/bridges",
                &[("type", "holding"), ("bridgeId", &uuid), ("name", &stasis)]
            ),
            req("POST", &format!("/ari/bridges/{uuid}/moh"), &[("mohClass", "jazz")]),
            req("POST", &format!("/ari/channels/{CALL}/answer"), &[]),
            req("POST", &format!("/ari/bridges/{uuid}/addChannel"), &[("channel", CALL)]),
        ]
    );
    ari.inject(&bridge_event("ChannelEnteredBridge", &uuid, &uuid, CALL, &[CALL]));
    wait_event(&mut bus, "application_node_updated").await;

    let items = calls(&s, &uuid).await;
    assert_eq!(
        items,
        vec![json!({
            "id": CALL, "caller_id_name": "Accent IVR", "caller_id_number": "8800",
            "conversation_id": CALL, "creation_time": "2026-11-28T12:59:23.623+0000",
            "status": "Up", "on_hold": false, "muted": false, "moh_uuid": null, "is_caller": true,
            "dialed_extension": "1001", "variables": {}, "node_uuid": uuid, "snoops": {},
            "user_uuid": null, "tenant_uuid": tenant,
        })]
    );
    let (_, nodes) = s.get(&format!("{CALLD}{app}/nodes"), &s.admin_token).await;
    assert_eq!(nodes, json!({"items": [{"uuid": uuid, "calls": [{"id": CALL}]}]}));

    // Actions: each its ARI request, what calld tracks and its event.
    let call = format!("{app}/calls/{CALL}");
    let channel = format!("/ari/channels/{CALL}");
    for (path, method, ari_path, query, event) in [
        ("/answer", "POST", "/answer", vec![], None),
        ("/hold/start", "POST", "/hold", vec![], Some("application_call_updated")),
        (
            "/hold/stop",
            "DELETE",
            "/hold",
            vec![],
            Some("application_call_updated"),
        ),
        (
            "/mute/start",
            "POST",
            "/mute",
            vec![("direction", "in")],
            Some("application_call_updated"),
        ),
        (
            "/mute/stop",
            "DELETE",
            "/mute",
            vec![("direction", "in")],
            Some("application_call_updated"),
        ),
        (
            "/progress/start",
            "POST",
            "/ring",
            vec![],
            Some("application_progress_started"),
        ),
        (
            "/progress/stop",
            "DELETE",
            "/ring",
            vec![],
            Some("application_progress_stopped"),
        ),
        (
            "/moh/classical/start",
            "POST",
            "/moh",
            vec![("mohClass", "classical")],
            Some("application_call_updated"),
        ),
        ("/moh/stop", "DELETE", "/moh", vec![], Some("application_call_updated")),
        ("/dtmf?digits=12%23*", "PUT-DTMF", "/dtmf", vec![("dtmf", "12#*")], None),
    ] {
        let from = requests(&ari).len();
        let (code, body) = put(&s, &format!("{call}{path}")).await;
        assert_eq!(code, StatusCode::NO_CONTENT, "{path}: {body}");
        let method = if method == "PUT-DTMF" { "POST" } else { method };
        assert_eq!(
            requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
            vec![req(method, &format!("{channel}{ari_path}"), &query)],
            "{path}"
        );
        if let Some(name) = event {
            let ev = wait_event(&mut bus, name).await;
            assert_eq!(ev.data["call"]["id"], json!(CALL), "{path}");
        }
        if path == "/hold/start" {
            assert_eq!(calls(&s, &uuid).await[0]["on_hold"], json!(true));
        }
        if path == "/moh/classical/start" {
            assert_eq!(calls(&s, &uuid).await[0]["moh_uuid"], json!("classical"));
        }
    }
    for bad in ["", "12a", "1 2"] {
        let (code, body) = put(&s, &format!("{call}/dtmf?digits={bad}")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
    }

    // Playbacks.
    let (code, pb) = s
        .post(
            &format!("{CALLD}{call}/playbacks"),
            &s.admin_token,
            json!({"uri": "sound:hello-world", "language": "en"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{pb}");
    let pb_id = pb["uuid"].as_str().expect("playback").to_string();
    assert_eq!(
        pb,
        json!({"uuid": pb_id, "uri": "sound:hello-world", "language": "en", "state": "queued"})
    );
    wait_request(
        &ari,
        0,
        req(
            "POST",
            &format!("{channel}/play"),
            &[("media", "sound:hello-world"), ("lang", "en"), ("playbackId", &pb_id)],
        ),
    )
    .await;
    ari.inject(&playback_event("PlaybackStarted", &uuid, &pb_id, "playing"));
    let ev = wait_event(&mut bus, "application_playback_created").await;
    assert_eq!(ev.routing_key, format!("applications.{uuid}.playbacks.{pb_id}.created"));
    assert_eq!(ev.data["playback"]["state"], json!("playing"));
    assert_eq!(ev.data["call_id"], json!(CALL));
    let (code, body) = s
        .delete(&format!("{CALLD}{app}/playbacks/{pb_id}"), &s.admin_token)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    wait_request(&ari, 0, req("DELETE", &format!("/ari/playbacks/{pb_id}"), &[])).await;
    ari.inject(&playback_event("PlaybackFinished", &uuid, &pb_id, "done"));
    let ev = wait_event(&mut bus, "application_playback_deleted").await;
    assert_eq!(ev.data["playback"]["uuid"], json!(pb_id));
    let (code, _) = s
        .delete(&format!("{CALLD}{app}/playbacks/{pb_id}"), &s.admin_token)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    for bad in [
        json!({"uri": ""}),
        json!({"uri": "hello"}),
        json!({"uri": "sound:a,sound:b"}),
        json!({"uri": "sound:x", "language": "e n"}),
        json!({"uri": "sound:x", "volume": 3}),
        json!({"language": "en"}),
        json!([]),
    ] {
        let (code, body) = s
            .post(&format!("{CALLD}{call}/playbacks"), &s.admin_token, bad.clone())
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // Unknown ones, another tenant, no ACL.
    let unknown = uuid::Uuid::new_v4();
    for (path, code_wanted, error_id) in [
        (
            format!("/applications/{unknown}/calls"),
            StatusCode::NOT_FOUND,
            "no-such-application",
        ),
        (
            "/applications/nope".to_string(),
            StatusCode::NOT_FOUND,
            "no-such-application",
        ),
        (format!("{app}/nodes/nope"), StatusCode::NOT_FOUND, "no-such-node"),
    ] {
        let (code, body) = s.get(&format!("{CALLD}{path}"), &s.admin_token).await;
        assert_eq!(code, code_wanted, "{path}: {body}");
        assert_eq!(body["error_id"], json!(error_id), "{path}");
    }
    let (code, body) = put(&s, &format!("{app}/calls/1.2/answer")).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-call"))
    );
    let (_, other) = s
        .post("/tenants", &s.admin_token, json!({"name": "other", "slug": "other"}))
        .await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    let (code, _) = s
        .call_with_headers(
            Method::GET,
            &format!("{CALLD}{app}/calls"),
            Some(&s.admin_token),
            None,
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    s.create_user_sql(&other, "mallory", "pw-mallory").await;
    let tok = s.login("mallory", "pw-mallory").await;
    for (method, path) in [
        (Method::GET, app.clone()),
        (Method::GET, format!("{app}/calls")),
        (Method::DELETE, call.clone()),
        (Method::PUT, format!("{call}/hold/start")),
        (Method::POST, format!("{app}/nodes")),
    ] {
        let (code, _) = s
            .call(method.clone(), &format!("{CALLD}{path}"), Some(&tok), Some(json!({})))
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}");
    }

    // Hangup, then the call leaves.
    let from = requests(&ari).len();
    let (code, body) = s.delete(&format!("{CALLD}{call}"), &s.admin_token).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![req("DELETE", &channel, &[])]
    );
    ari.inject(&recorded(&ari, "StasisEnd", &uuid, CALL));
    let ev = wait_event(&mut bus, "application_call_deleted").await;
    // The call id's dot escaped, as in every routing key.
    assert_eq!(
        ev.routing_key,
        format!("applications.{uuid}.calls.1795870763__DOT__8.deleted")
    );
    assert!(calls(&s, &uuid).await.is_empty());
    let (code, _) = put(&s, &format!("{call}/answer")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn originates_nodes_and_asterisk_down() {
    let (ari, s) = started().await;
    let mut bus = s.app().bus.subscribe();
    let uuid = application(&s, &ari, json!({"name": "conf"})).await;
    let app = format!("/applications/{uuid}");
    let (_, shown) = s.get(&format!("{CALLD}{app}"), &s.admin_token).await;
    assert_eq!(shown, json!({"destination_node_uuid": null}));

    // Originate into the application.
    let from = requests(&ari).len();
    let (code, call) = s
        .post(
            &format!("{CALLD}{app}/calls"),
            &s.admin_token,
            json!({"exten": "1001", "context": "dev", "displayed_caller_id_name": "Accent IVR",
                   "displayed_caller_id_number": "8800", "variables": {"X_ORDER": "42"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{call}");
    let id = call["id"].as_str().expect("id").to_string();
    assert_eq!(call["is_caller"], json!(false));
    assert_eq!(call["status"], json!("Down"));
    assert_eq!(call["variables"], json!({"X_ORDER": "42"}));
    let stasis = format!("accent-app-{uuid}");
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![req(
            "POST",
            "/ari/channels",
            &[
                ("endpoint", "Local/1001@dev/n"),
                ("app", &stasis),
                ("callerId", "\"Accent IVR\" <8800>"),
                ("channelId", &id)
            ]
        )]
    );
    let body = ari
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST" && r.uri.starts_with("/ari/channels?"))
        .map(|r| r.body)
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(&body).ok(),
        Some(json!({"variables": {"X_ORDER": "42"}}))
    );
    let ev = wait_event(&mut bus, "application_call_initiated").await;
    assert_eq!(ev.data["call"]["id"], json!(id));
    enter(&ari, &uuid, &id);
    wait_event(&mut bus, "application_call_entered").await;
    let listed = calls(&s, &uuid).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["is_caller"], json!(false));
    assert_eq!(listed[0]["variables"], json!({"X_ORDER": "42"}));
    for bad in [
        json!({"exten": "1001"}),
        json!({"exten": "10 01", "context": "dev"}),
        json!({"exten": "1001@x", "context": "dev"}),
        json!({"exten": "1001", "context": "dev", "variables": {"FILE(x)": "1"}}),
        json!({"exten": "1001", "context": "dev", "autoanswer": true}),
        json!({"exten": "1001", "context": "dev", "displayed_caller_id_name": "<x>"}),
        json!({"exten": "1001", "context": "dev", "ring": 1}),
    ] {
        let (code, body) = s
            .post(&format!("{CALLD}{app}/calls"), &s.admin_token, bad.clone())
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // A node with the call.
    let from = requests(&ari).len();
    let (code, node) = s
        .post(
            &format!("{CALLD}{app}/nodes"),
            &s.admin_token,
            json!({"calls": [{"id": id}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{node}");
    let node_uuid = node["uuid"].as_str().expect("node").to_string();
    assert_eq!(node, json!({"uuid": node_uuid, "calls": [{"id": id}]}));
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![
            req(
                "POST",
                "/ari/bridges",
                &[("type", "mixing"), ("bridgeId", &node_uuid), ("name", &stasis)]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{node_uuid}/addChannel"),
                &[("channel", &id)]
            ),
        ]
    );
    let ev = wait_event(&mut bus, "application_node_created").await;
    assert_eq!(ev.data["node"]["uuid"], json!(node_uuid));
    ari.inject(&bridge_event("ChannelEnteredBridge", &uuid, &node_uuid, &id, &[&id]));
    let ev = wait_event(&mut bus, "application_node_updated").await;
    assert_eq!(ev.data["node"], json!({"uuid": node_uuid, "calls": [{"id": id}]}));
    let (_, got) = s.get(&format!("{CALLD}{app}/nodes/{node_uuid}"), &s.admin_token).await;
    assert_eq!(got, json!({"uuid": node_uuid, "calls": [{"id": id}]}));
    let (code, _) = s
        .post(
            &format!("{CALLD}{app}/nodes"),
            &s.admin_token,
            json!({"calls": [{"id": "not-mine"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Remove and add the call again.
    let from = requests(&ari).len();
    let path = format!("{CALLD}{app}/nodes/{node_uuid}/calls/{id}");
    let (code, body) = s.delete(&path, &s.admin_token).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    ari.inject(&bridge_event("ChannelLeftBridge", &uuid, &node_uuid, &id, &[]));
    let ev = wait_event(&mut bus, "application_node_updated").await;
    assert_eq!(ev.data["node"]["calls"], json!([]));
    let (code, body) = s.call(Method::PUT, &path, Some(&s.admin_token), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![
            req(
                "POST",
                &format!("/ari/bridges/{node_uuid}/removeChannel"),
                &[("channel", &id)]
            ),
            req(
                "POST",
                &format!("/ari/bridges/{node_uuid}/addChannel"),
                &[("channel", &id)]
            ),
        ]
    );
    ari.inject(&bridge_event("ChannelEnteredBridge", &uuid, &node_uuid, &id, &[&id]));
    wait_event(&mut bus, "application_node_updated").await;

    // Deleting the node hangs its calls up and destroys the bridge.
    let from = requests(&ari).len();
    let (code, body) = s
        .delete(&format!("{CALLD}{app}/nodes/{node_uuid}"), &s.admin_token)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![
            req("DELETE", &format!("/ari/channels/{id}"), &[]),
            req("DELETE", &format!("/ari/bridges/{node_uuid}"), &[]),
        ]
    );
    let ev = wait_event(&mut bus, "application_node_deleted").await;
    assert_eq!(ev.routing_key, format!("applications.{uuid}.nodes.{node_uuid}.deleted"));
    let (code, _) = s.get(&format!("{CALLD}{app}/nodes/{node_uuid}"), &s.admin_token).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Asterisk refuses (the channel left Stasis) then is gone.
    ari.inject(&recorded(&ari, "StasisEnd", &uuid, &id));
    wait_event(&mut bus, "application_call_deleted").await;
    let (code, call2) = s
        .post(
            &format!("{CALLD}{app}/calls"),
            &s.admin_token,
            json!({"exten": "1002", "context": "dev"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{call2}");
    let id2 = call2["id"].as_str().expect("id").to_string();
    enter(&ari, &uuid, &id2);
    wait_event(&mut bus, "application_call_entered").await;
    // Out of Stasis for Asterisk (not yet for calld): 409.
    ari.inject(&recorded(&ari, "StasisEnd", &uuid, &id2).replace(&format!("accent-app-{uuid}\"}}"), "accent\"}"));
    let (code, body) = put(&s, &format!("{app}/calls/{id2}/hold/start")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    ari.stop().await;
    let (code, body) = put(&s, &format!("{app}/calls/{id2}/answer")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn deleted_applications_close_their_websocket() {
    let (ari, s) = started().await;
    let uuid = application(&s, &ari, json!({})).await;
    let (code, _) = s.delete(&format!("{C}/applications/{uuid}"), &s.admin_token).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert!(
        ari.wait_for_connections(1, std::time::Duration::from_secs(10)).await,
        "only the main websocket is left"
    );
    let (code, body) = s.get(&format!("{CALLD}/applications/{uuid}"), &s.admin_token).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
}

/// `StasisStart` of Asterisk's snoop channel `id`, with the arguments calld gave it.
fn snoop_start(ari: &FakeAri, uuid: &str, id: &str, snoop: &str) -> String {
    recorded(ari, "StasisStart", uuid, id).replace(
        "\"args\":[\"s04\",\"outbound-playback\"]",
        &format!("\"args\":[\"snoop\",\"{snoop}\"]"),
    )
}

#[tokio::test]
async fn snoops_listen_whisper_and_end_with_their_calls() {
    const SUPERVISOR: &str = "1795870763.90";
    let (ari, s) = started().await;
    let tenant = s.master_tenant().await;
    let mut bus = s.app().bus.subscribe();
    let uuid = application(&s, &ari, json!({"name": "supervision"})).await;
    let app = format!("/applications/{uuid}");
    let stasis = format!("accent-app-{uuid}");
    for id in [CALL, SUPERVISOR] {
        enter(&ari, &uuid, id);
        wait_event(&mut bus, "application_call_entered").await;
    }

    // Bad input first: nothing reaches Asterisk.
    let from = requests(&ari).len();
    let snoops = format!("{CALLD}{app}/calls/{CALL}/snoops");
    for (body, status) in [
        (
            json!({"snooping_call_id": SUPERVISOR, "whisper_mode": "loud"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"snooping_call_id": SUPERVISOR}), StatusCode::BAD_REQUEST),
        (
            json!({"snooping_call_id": SUPERVISOR, "whisper_mode": "in", "x": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"snooping_call_id": "9.9", "whisper_mode": "in"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"snooping_call_id": CALL, "whisper_mode": "in"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"snooping_call_id": 7, "whisper_mode": "in"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (code, answer) = s.post(&snoops, &s.admin_token, body.clone()).await;
        assert_eq!(code, status, "{body}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (code, answer) = s
        .post(
            &format!("{CALLD}{app}/calls/9.9/snoops"),
            &s.admin_token,
            json!({"snooping_call_id": SUPERVISOR, "whisper_mode": "in"}),
        )
        .await;
    assert_eq!(
        (code, answer["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-call"))
    );
    assert_eq!(requests(&ari).len(), from, "nothing asked of Asterisk");

    // Start: a bridge for the snoop, the supervisor in it, a snoop channel on the call.
    let (code, snoop) = s
        .post(
            &snoops,
            &s.admin_token,
            json!({"snooping_call_id": SUPERVISOR, "whisper_mode": "in"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{snoop}");
    let id = snoop["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(
        snoop,
        json!({"uuid": id, "snooped_call_id": CALL, "snooping_call_id": SUPERVISOR, "whisper_mode": "in"})
    );
    let sent: Vec<Req> = requests(&ari).into_iter().skip(from).collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let bridge_name = format!("accent-app-snoop-{CALL}");
    assert_eq!(
        sent[0],
        req(
            "POST",
            "/ari/bridges",
            &[("type", "mixing"), ("bridgeId", &id), ("name", &bridge_name)]
        )
    );
    assert_eq!(
        sent[1],
        req(
            "POST",
            &format!("/ari/bridges/{id}/addChannel"),
            &[("channel", SUPERVISOR)]
        )
    );
    let (method, path, query) = &sent[2];
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", format!("/ari/channels/{CALL}/snoop").as_str())
    );
    let channel = query.get("snoopId").cloned().expect("snoopId");
    let args = format!("snoop,{id}");
    assert_eq!(
        *query,
        [
            ("spy", "both"),
            ("whisper", "in"),
            ("app", stasis.as_str()),
            ("appArgs", &args),
            ("snoopId", &channel)
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>()
    );
    let created = wait_event(&mut bus, "application_snoop_created").await;
    assert_eq!(created.routing_key, format!("applications.{uuid}.snoops.{id}.created"));
    assert_eq!(created.data, json!({"snoop": snoop, "application_uuid": uuid}));
    assert_eq!(created.tenant_uuid.map(|t| t.to_string()), Some(tenant.clone()));
    let roles: Vec<(Value, Value)> = calls(&s, &uuid)
        .await
        .iter()
        .map(|c| (c["id"].clone(), c["snoops"].clone()))
        .collect();
    assert_eq!(
        roles,
        vec![
            (json!(CALL), json!({ id.clone(): {"uuid": id, "role": "snooped"} })),
            (
                json!(SUPERVISOR),
                json!({ id.clone(): {"uuid": id, "role": "snooper"} })
            ),
        ]
    );

    // The snoop channel enters the application: into the snoop's bridge, no call of its own.
    let from = requests(&ari).len();
    ari.inject(&snoop_start(&ari, &uuid, &channel, &id));
    wait_request(
        &ari,
        from,
        req(
            "POST",
            &format!("/ari/bridges/{id}/addChannel"),
            &[("channel", &channel)],
        ),
    )
    .await;
    assert_eq!(calls(&s, &uuid).await.len(), 2);
    let (code, list) = s.get(&format!("{CALLD}{app}/snoops"), &s.admin_token).await;
    assert_eq!((code, list), (StatusCode::OK, json!({"items": [snoop]})));
    let one = format!("{CALLD}{app}/snoops/{id}");
    let (code, shown) = s.get(&one, &s.admin_token).await;
    assert_eq!((code, shown), (StatusCode::OK, snoop.clone()));

    // A new whisper mode: a new snoop channel, the old one hung up.
    let from = requests(&ari).len();
    let (code, answer) = s
        .call(
            Method::PUT,
            &one,
            Some(&s.admin_token),
            Some(json!({"whisper_mode": "both"})),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{answer}");
    let sent: Vec<Req> = requests(&ari).into_iter().skip(from).collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let new_channel = sent[0].2.get("snoopId").cloned().expect("new snoopId");
    assert_ne!(new_channel, channel);
    assert_eq!(sent[0].2.get("whisper").map(String::as_str), Some("both"));
    assert_eq!(sent[1], req("DELETE", &format!("/ari/channels/{channel}"), &[]));
    let updated = wait_event(&mut bus, "application_snoop_updated").await;
    assert_eq!(updated.data["snoop"]["whisper_mode"], "both");
    // The old channel's end is not the snoop's.
    ari.inject(&recorded(&ari, "ChannelDestroyed", &uuid, &channel));
    let (code, answer) = s
        .call(
            Method::PUT,
            &one,
            Some(&s.admin_token),
            Some(json!({"whisper_mode": "loud"})),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{answer}");
    let (code, shown) = s.get(&one, &s.admin_token).await;
    assert_eq!((code, shown["whisper_mode"].clone()), (StatusCode::OK, json!("both")));

    // Stop: the snoop channel and the bridge go, both calls forget the snoop.
    let from = requests(&ari).len();
    let (code, _) = s.call(Method::DELETE, &one, Some(&s.admin_token), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(
        requests(&ari).into_iter().skip(from).collect::<Vec<_>>(),
        vec![
            req("DELETE", &format!("/ari/channels/{new_channel}"), &[]),
            req("DELETE", &format!("/ari/bridges/{id}"), &[]),
        ]
    );
    let deleted = wait_event(&mut bus, "application_snoop_deleted").await;
    assert_eq!(deleted.routing_key, format!("applications.{uuid}.snoops.{id}.deleted"));
    assert!(calls(&s, &uuid).await.iter().all(|c| c["snoops"] == json!({})));
    let (code, answer) = s.get(&one, &s.admin_token).await;
    assert_eq!(
        (code, answer["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-snoop"))
    );

    // A snoop ends with its supervisor's call.
    let (code, snoop) = s
        .post(
            &snoops,
            &s.admin_token,
            json!({"snooping_call_id": SUPERVISOR, "whisper_mode": "none"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{snoop}");
    let second = snoop["uuid"].as_str().expect("uuid").to_string();
    let from = requests(&ari).len();
    ari.inject(&recorded(&ari, "StasisEnd", &uuid, SUPERVISOR));
    let deleted = wait_event(&mut bus, "application_snoop_deleted").await;
    assert_eq!(deleted.data["snoop"]["uuid"], json!(second));
    wait_request(&ari, from, req("DELETE", &format!("/ari/bridges/{second}"), &[])).await;
    let (_, list) = s.get(&format!("{CALLD}{app}/snoops"), &s.admin_token).await;
    assert_eq!(list, json!({"items": []}));

    // Another tenant's token sees no such application.
    let other = crate::calld_calls::other_tenant(&s).await;
    let (code, _) = s
        .call_with_headers(
            Method::GET,
            &format!("{CALLD}{app}/snoops"),
            Some(&s.admin_token),
            None,
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_user_is_called_into_a_node() {
    let (ari, s) = started().await;
    let mut bus = s.app().bus.subscribe();
    crate::calld_calls::default_context(&s).await;
    let alice = crate::calld_calls::user(&s, "Alice", "alice", "2001").await;
    let alice_uuid = alice["uuid"].as_str().expect("uuid").to_string();
    let uuid = application(&s, &ari, json!({"name": "agents"})).await;
    let app = format!("/applications/{uuid}");
    let (code, node) = s.post(&format!("{CALLD}{app}/nodes"), &s.admin_token, json!({})).await;
    assert_eq!(code, StatusCode::CREATED, "{node}");
    let node = node["uuid"].as_str().expect("node").to_string();
    let path = format!("{CALLD}{app}/nodes/{node}/calls/user");

    // Bad input: nothing reaches Asterisk.
    let from = requests(&ari).len();
    let nobody = uuid::Uuid::new_v4().to_string();
    for (body, error_id) in [
        (json!({}), "invalid-data"),
        (json!({"user_uuid": "not-a-uuid"}), "invalid-data"),
        (json!({"user_uuid": alice_uuid, "extra": 1}), "invalid-data"),
        (
            json!({"user_uuid": alice_uuid, "displayed_caller_id_name": "<x>"}),
            "invalid-data",
        ),
        (json!({"user_uuid": nobody}), "invalid-user"),
    ] {
        let (code, answer) = s.post(&path, &s.admin_token, body.clone()).await;
        assert_eq!(
            (code, answer["error_id"].clone()),
            (StatusCode::BAD_REQUEST, json!(error_id)),
            "{body}: {answer}"
        );
    }
    let (code, answer) = s
        .post(
            &format!("{CALLD}{app}/nodes/nope/calls/user"),
            &s.admin_token,
            json!({"user_uuid": alice_uuid}),
        )
        .await;
    assert_eq!(
        (code, answer["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-node"))
    );
    assert_eq!(requests(&ari).len(), from, "nothing asked of Asterisk");

    // The user's line rings into the application, auto-answered, showing the caller id asked.
    let (code, call) = s
        .post(
            &path,
            &s.admin_token,
            json!({"user_uuid": alice_uuid, "autoanswer": true, "variables": {"TICKET": "7"},
                   "displayed_caller_id_name": "Queue", "displayed_caller_id_number": "8800"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{call}");
    let id = call["id"].as_str().expect("id").to_string();
    assert_eq!(call["user_uuid"], json!(alice_uuid));
    assert_eq!(call["is_caller"], json!(false));
    assert_eq!(call["variables"], json!({"TICKET": "7"}));
    let originate = ari
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.uri.starts_with("/ari/channels?"))
        .expect("originate");
    let url = reqwest::Url::parse(&format!("http://x{}", originate.uri)).expect("uri");
    let query: BTreeMap<String, String> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let stasis = format!("accent-app-{uuid}");
    assert_eq!(query.get("endpoint").map(String::as_str), Some("PJSIP/2001"));
    assert_eq!(query.get("app"), Some(&stasis));
    assert_eq!(query.get("channelId"), Some(&id));
    assert_eq!(query.get("callerId").map(String::as_str), Some("\"Queue\" <8800>"));
    let body: Value = serde_json::from_str(&originate.body).expect("body");
    assert_eq!(body["variables"]["ACCENT_USERUUID"], json!(alice_uuid));
    assert_eq!(body["variables"]["TICKET"], "7");
    assert_eq!(
        body["variables"]["PJSIP_HEADER(add,Call-Info)"],
        "<sip:accentd>;answer-after=0"
    );
    let initiated = wait_event(&mut bus, "application_call_initiated").await;
    assert_eq!(initiated.data["call"]["id"], json!(id));

    // Once in the application, the call joins the node.
    let from = requests(&ari).len();
    enter(&ari, &uuid, &id);
    wait_request(
        &ari,
        from,
        req("POST", &format!("/ari/bridges/{node}/addChannel"), &[("channel", &id)]),
    )
    .await;

    // A user without a line has nothing to ring.
    let (code, lineless) = s
        .post(&format!("{C}/users"), &s.admin_token, json!({"firstname": "Bob"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{lineless}");
    let (code, answer) = s
        .post(&path, &s.admin_token, json!({"user_uuid": lineless["uuid"]}))
        .await;
    assert_eq!(
        (code, answer["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("user-missing-main-line"))
    );

    // Another tenant's user is unknown here.
    let other = crate::calld_calls::other_tenant(&s).await;
    let (code, stranger) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/users"),
            Some(&s.admin_token),
            Some(json!({"firstname": "Mallory"})),
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{stranger}");
    let (code, answer) = s
        .post(&path, &s.admin_token, json!({"user_uuid": stranger["uuid"]}))
        .await;
    assert_eq!(
        (code, answer["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid-user"))
    );
}
