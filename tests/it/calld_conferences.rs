//! calld conferences against scenario 10 (three phones in one ConfBridge),
//! its conference renamed as accentd names confd's conference 1: participant
//! events from the AMI events, the participant list from `ConfbridgeList`,
//! kick and mute as AMI actions, Asterisk's refusals, tenants and ACLs.

use std::time::Duration;

use crate::calld_calls::{ami_success, other_tenant, sent};
use crate::common::{wait_for, TestServer};
use accentd::ami::frame::AmiMessage;
use accentd::fake_asterisk::ami::{AmiRecording, FakeAmi, FakeAmiOptions, Replay};
use accentd::fake_asterisk::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CALLD: &str = "/api/calld/1.0";
const CONFERENCE: &str = "accent-conference-1";

/// Scenario 10 with ConfBridge `100` renamed `accent-conference-1`, released by the test.
async fn fake_ami() -> FakeAmi {
    let scenario = Scenario::load("10").expect("scenario");
    let raw = String::from_utf8(scenario.read("ami.raw").expect("read").expect("ami.raw")).expect("utf-8");
    let sent = scenario.read("ami-sent.raw").expect("read").unwrap_or_default();
    let raw = raw
        .replace("Conference: 100\r\n", &format!("Conference: {CONFERENCE}\r\n"))
        .replace("BridgeName: 100\r\n", &format!("BridgeName: {CONFERENCE}\r\n"));
    let recording = AmiRecording::from_bytes(raw.as_bytes(), &sent).expect("recording");
    let options = FakeAmiOptions {
        replay: Replay::Manual,
        ..FakeAmiOptions::default()
    };
    let fake = FakeAmi::start_with(recording, options).await.expect("fake AMI");
    fake.respond_with("Command", Some(crate::common::command_success()));
    fake
}

/// The recorded joins as the `ConfbridgeList` items Asterisk lists for them
/// (the same channel snapshot, plus the list's own headers).
fn confbridge_list(fake: &FakeAmi) -> Vec<AmiMessage> {
    let mut out = vec![AmiMessage::new()
        .with("Response", "Success")
        .with("EventList", "start")
        .with("Message", "Confbridge user list will follow")];
    let joins: Vec<&AmiMessage> = fake
        .recording()
        .timeline()
        .iter()
        .filter(|m| m.get("Event") == Some("ConfbridgeJoin"))
        .collect();
    for (i, join) in joins.iter().enumerate() {
        let mut item = AmiMessage::new()
            .with("Event", "ConfbridgeList")
            .with("Conference", CONFERENCE);
        for h in ["Admin", "Muted"] {
            item.push(h, join.get(h).unwrap_or("No"));
        }
        for (h, v) in [
            ("MarkedUser", "No"),
            ("WaitMarked", "No"),
            ("EndMarked", "No"),
            ("Waiting", "No"),
            ("Talking", "No"),
        ] {
            item.push(h, v);
        }
        item.push("AnsweredTime", format!("{}", 10 - 2 * i));
        for (k, v) in join.headers().filter(|(k, _)| {
            !["Event", "Privilege", "Timestamp", "Conference", "Admin", "Muted"].contains(k) && !k.starts_with("Bridge")
        }) {
            item.push(k, v);
        }
        out.push(item);
    }
    out.push(
        AmiMessage::new()
            .with("Event", "ConfbridgeListComplete")
            .with("EventList", "Complete")
            .with("ListItems", joins.len().to_string()),
    );
    out
}

fn ami_error(message: &str) -> Vec<AmiMessage> {
    vec![AmiMessage::new().with("Response", "Error").with("Message", message)]
}

async fn conference(s: &TestServer) -> i64 {
    let (code, conf) = s
        .post("/api/confd/1.1/conferences", &s.admin_token, json!({"name": "Room"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{conf}");
    conf["id"].as_i64().expect("id")
}

async fn call(s: &TestServer, method: Method, path: &str) -> (StatusCode, Value) {
    s.call(method, &format!("{CALLD}{path}"), Some(&s.admin_token), None)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_events_from_the_recorded_conference() {
    let fake = fake_ami().await;
    let s = TestServer::start_with_ami(&fake).await;
    assert_eq!(conference(&s).await, 1);
    let tenant = s.master_tenant().await;
    let mut bus = s.app().bus.subscribe();
    fake.replay_all();

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen
        .iter()
        .filter(|e: &&std::sync::Arc<accentd::bus::Event>| e.name.ends_with("_left"))
        .count()
        < 3
    {
        match tokio::time::timeout_at(deadline, bus.recv()).await {
            Ok(Ok(e)) if e.name.starts_with("conference_") => seen.push(e),
            Ok(Ok(_)) => {}
            other => panic!(
                "three leaves expected, got {:?} after {:?}",
                other.err(),
                seen.iter().map(|e| &e.name).collect::<Vec<_>>()
            ),
        }
    }
    let names: Vec<(&str, &str)> = seen.iter().map(|e| (e.name.as_str(), e.routing_key.as_str())).collect();
    let joined = ("conference_participant_joined", "conferences.1.participants.joined");
    let left = ("conference_participant_left", "conferences.1.participants.left");
    assert_eq!(names, [joined, joined, joined, left, left, left]);
    // The recording's order: Alice, Bob, Carol join; Bob, Alice, Carol leave.
    let who: Vec<&str> = seen
        .iter()
        .map(|e| e.data["participant"]["caller_id_name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(who, ["Alice", "Bob", "Carol", "Bob", "Alice", "Carol"]);
    let alice = &seen[0];
    assert_eq!(
        alice.data,
        json!({"conference_id": 1, "participant": {
            "id": "1795870898.44", "call_id": "1795870898.44", "caller_id_name": "Alice",
            "caller_id_number": "1001", "muted": false, "admin": false, "join_time": 0,
            "language": "en", "user_uuid": null}})
    );
    assert_eq!(alice.tenant_uuid.map(|t| t.to_string()), Some(tenant));
    // The phones are no user's lines: nobody to address the events to.
    assert_eq!(alice.target, accentd::bus::Target::Users(vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_kick_and_mute_over_ami() {
    let fake = fake_ami().await;
    let s = TestServer::start_with_ami(&fake).await;
    let id = conference(&s).await;

    // Nobody there: Asterisk says so, the list is empty.
    fake.respond_with("ConfbridgeList", Some(ami_error("No active conferences.")));
    let (code, list) = call(&s, Method::GET, &format!("/conferences/{id}/participants")).await;
    assert_eq!((code, list), (StatusCode::OK, json!({"items": [], "total": 0})));

    fake.respond_with("ConfbridgeList", Some(confbridge_list(&fake)));
    let (code, list) = call(&s, Method::GET, &format!("/conferences/{id}/participants")).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 3);
    assert_eq!(
        list["items"][1],
        json!({"id": "1795870900.48", "call_id": "1795870900.48", "caller_id_name": "Bob",
               "caller_id_number": "1002", "muted": false, "admin": false, "join_time": 8,
               "language": "en", "user_uuid": null})
    );
    assert_eq!(
        sent(&fake, "ConfbridgeList").last().cloned(),
        Some(vec![("Conference".to_string(), CONFERENCE.to_string())])
    );

    // Kick and mute name the participant's channel.
    for action in ["ConfbridgeKick", "ConfbridgeMute", "ConfbridgeUnmute"] {
        fake.respond_with(action, Some(ami_success()));
    }
    let bob = format!("/conferences/{id}/participants/1795870900.48");
    let (code, body) = call(&s, Method::DELETE, &bob).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, body) = call(&s, Method::PUT, &format!("{bob}/mute")).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, body) = call(&s, Method::PUT, &format!("{bob}/unmute")).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let target = vec![
        ("Conference".to_string(), CONFERENCE.to_string()),
        ("Channel".to_string(), "Local/1002@caller-00000018;1".to_string()),
    ];
    for action in ["ConfbridgeKick", "ConfbridgeMute", "ConfbridgeUnmute"] {
        assert_eq!(sent(&fake, action), vec![target.clone()], "{action}");
    }

    // Unknown participant, gone meanwhile, Asterisk refusing, Asterisk unreachable.
    let (code, body) = call(&s, Method::DELETE, &format!("/conferences/{id}/participants/9.9")).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-participant"))
    );
    fake.respond_with(
        "ConfbridgeKick",
        Some(ami_error("No Channel by that name found in Conference.")),
    );
    let (code, body) = call(&s, Method::DELETE, &bob).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-participant"))
    );
    fake.respond_with("ConfbridgeMute", Some(ami_error("Permission denied")));
    let (code, body) = call(&s, Method::PUT, &format!("{bob}/mute")).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("conference-error"))
    );
    fake.respond_with("ConfbridgeList", Some(ami_error("Permission denied")));
    let (code, body) = call(&s, Method::GET, &format!("/conferences/{id}/participants")).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("conference-error"))
    );
    fake.respond_with("ConfbridgeList", Some(confbridge_list(&fake)));
    let (code, _) = call(&s, Method::PUT, &format!("{bob}/dance")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    fake.drop_connections();
    fake.pause_accept().await;
    wait_for("AMI down", || s.app().ami.as_ref().is_some_and(|a| !a.is_connected())).await;
    let (code, body) = call(&s, Method::GET, &format!("/conferences/{id}/participants")).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("asterisk-ami-unreachable"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_conferences_tenants_and_acls() {
    let fake = fake_ami().await;
    let s = TestServer::start_with_ami(&fake).await;
    let id = conference(&s).await;
    fake.respond_with("ConfbridgeList", Some(confbridge_list(&fake)));
    let before = sent(&fake, "ConfbridgeList").len();

    for path in [
        "/conferences/2/participants",
        "/conferences/abc/participants",
        "/conferences/2/participants/1.1",
    ] {
        let method = if path.ends_with("1.1") {
            Method::DELETE
        } else {
            Method::GET
        };
        let (code, body) = call(&s, method, path).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error_id"], "no-such-conference", "{path}");
    }
    // Another tenant's conference is as unknown as a missing one.
    let other = other_tenant(&s).await;
    let h = [("Accent-Tenant", other.as_str())];
    for (method, path) in [
        (Method::GET, format!("/conferences/{id}/participants")),
        (Method::DELETE, format!("/conferences/{id}/participants/1795870900.48")),
        (
            Method::PUT,
            format!("/conferences/{id}/participants/1795870900.48/mute"),
        ),
    ] {
        let (code, body) = s
            .call_with_headers(
                method.clone(),
                &format!("{CALLD}{path}"),
                Some(&s.admin_token),
                None,
                &h,
            )
            .await;
        assert_eq!(
            (code, body["error_id"].clone()),
            (StatusCode::NOT_FOUND, json!("no-such-conference")),
            "{method} {path}"
        );
    }
    assert_eq!(sent(&fake, "ConfbridgeList").len(), before, "nothing asked of Asterisk");

    // A user without the admin ACLs: 401; the admin on `me`, not a participant: 403.
    s.create_user_sql(&other, "eve", "pw-eve").await;
    let eve = s.login("eve", "pw-eve").await;
    for (method, path) in [
        (Method::GET, format!("/conferences/{id}/participants")),
        (Method::DELETE, format!("/conferences/{id}/participants/1795870900.48")),
        (
            Method::PUT,
            format!("/conferences/{id}/participants/1795870900.48/mute"),
        ),
        (
            Method::PUT,
            format!("/conferences/{id}/participants/1795870900.48/unmute"),
        ),
    ] {
        let (code, _) = s
            .call(method.clone(), &format!("{CALLD}{path}"), Some(&eve), None)
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Users hold `calld.users.me.#` by default: another tenant's conference is unknown to them.
    let (code, body) = s
        .call(
            Method::GET,
            &format!("{CALLD}/users/me/conferences/{id}/participants"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-conference"))
    );
    let (code, body) = call(&s, Method::GET, &format!("/users/me/conferences/{id}/participants")).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error_id"], "user-not-participant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_a_conference_over_ami() {
    let fake = fake_ami().await;
    let s = TestServer::start_with_ami(&fake).await;
    let id = conference(&s).await;
    let tenant = s.master_tenant().await;
    let record = format!("/conferences/{id}/record");

    // Nobody in the room: nothing to record, Asterisk not asked to.
    fake.respond_with("ConfbridgeList", Some(ami_error("No active conferences.")));
    let (code, body) = call(&s, Method::POST, &record).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("conference-has-no-participants")),
        "{body}"
    );
    assert!(sent(&fake, "ConfbridgeStartRecord").is_empty());

    // Start: the file goes where call-logd finds the tenant's recordings.
    fake.respond_with("ConfbridgeList", Some(confbridge_list(&fake)));
    fake.respond_with("ConfbridgeStartRecord", Some(ami_success()));
    fake.respond_with("ConfbridgeStopRecord", Some(ami_success()));
    let (code, body) = call(&s, Method::POST, &record).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let start = sent(&fake, "ConfbridgeStartRecord");
    assert_eq!(start.len(), 1);
    assert_eq!(start[0][0], ("Conference".to_string(), CONFERENCE.to_string()));
    let (key, file) = &start[0][1];
    assert_eq!(key, "RecordFile");
    let dir = s.app().config.call_logs.recordings_dir.join(&tenant).join("monitor");
    let file = std::path::Path::new(file);
    assert_eq!(file.parent(), Some(dir.as_path()), "{file:?}");
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(
        name.starts_with(&format!("conference-{id}-")) && name.ends_with(".wav"),
        "{name}"
    );
    let (code, body) = call(&s, Method::DELETE, &record).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        sent(&fake, "ConfbridgeStopRecord"),
        vec![vec![("Conference".to_string(), CONFERENCE.to_string())]]
    );

    // Asterisk's refusals: a second start, a stop of nothing, anything else.
    for (action, method, message, status, error_id) in [
        (
            "ConfbridgeStartRecord",
            Method::POST,
            "Conference is already being recorded.",
            StatusCode::BAD_REQUEST,
            "conference-already-recorded",
        ),
        (
            "ConfbridgeStopRecord",
            Method::DELETE,
            "Internal error while stopping recording.",
            StatusCode::BAD_REQUEST,
            "conference-not-recorded",
        ),
        (
            "ConfbridgeStopRecord",
            Method::DELETE,
            "No Conference by that name found.",
            StatusCode::BAD_REQUEST,
            "conference-not-recorded",
        ),
        (
            "ConfbridgeStartRecord",
            Method::POST,
            "Permission denied",
            StatusCode::SERVICE_UNAVAILABLE,
            "conference-error",
        ),
    ] {
        fake.respond_with(action, Some(ami_error(message)));
        let (code, body) = call(&s, method.clone(), &record).await;
        assert_eq!((code, body["error_id"].clone()), (status, json!(error_id)), "{message}");
    }

    // The events come from Asterisk's own, to the conference's tenant.
    let mut bus = s.app().bus.subscribe();
    for event in ["ConfbridgeRecord", "ConfbridgeStopRecord", "ConfbridgeRecord"] {
        let frame = format!(
            "Event: {event}\r\nPrivilege: call,all\r\nConference: {CONFERENCE}\r\nBridgeUniqueid: b1\r\nBridgeType: base\r\nBridgeTechnology: softmix\r\nBridgeNumChannels: 3\r\n\r\n"
        );
        fake.send_raw(frame.as_bytes());
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let e = tokio::time::timeout(Duration::from_secs(10), bus.recv())
            .await
            .expect("record events")
            .expect("bus");
        if e.name.starts_with("conference_record_") {
            assert_eq!(e.routing_key, format!("conferences.{id}.record"));
            assert_eq!(e.data, json!({"id": id}));
            assert_eq!(e.tenant_uuid.map(|t| t.to_string()), Some(tenant.clone()));
            seen.push(e.name.clone());
        }
    }
    assert_eq!(
        seen,
        [
            "conference_record_started",
            "conference_record_stopped",
            "conference_record_started"
        ]
    );

    // Unknown and other-tenant conferences, ACLs, Asterisk unreachable.
    let (code, body) = call(&s, Method::POST, "/conferences/99/record").await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-conference"))
    );
    let other = other_tenant(&s).await;
    let (code, _) = s
        .call_with_headers(
            Method::DELETE,
            &format!("{CALLD}{record}"),
            Some(&s.admin_token),
            None,
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    s.create_user_sql(&other, "rec-eve", "pw-eve").await;
    let eve = s.login("rec-eve", "pw-eve").await;
    let (code, _) = s
        .call(Method::POST, &format!("{CALLD}{record}"), Some(&eve), None)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    fake.drop_connections();
    fake.pause_accept().await;
    wait_for("AMI down", || s.app().ami.as_ref().is_some_and(|a| !a.is_connected())).await;
    let (code, body) = call(&s, Method::DELETE, &record).await;
    assert_eq!(
        (code, body["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("asterisk-ami-unreachable"))
    );
}
