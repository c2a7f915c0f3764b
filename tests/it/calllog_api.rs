//! `/api/call-logd/1.0`: call logs stored by the generator's entry point, read back over HTTP
//! with upstream's filters, ACLs, tenant scoping, CSV, and 400s for bad filters.

use crate::common::TestServer;
use accentd::calllog::cdr::model::{CallDirection, CallLog, CallStatus, Participant, Recording, Role};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

const T0: i64 = 1_795_870_944_000_000; // 2026-11-28T13:02:24Z

fn log(tenant: Uuid, conv: &str, start_s: i64, src: (&str, &str), dst: (&str, &str)) -> CallLog {
    CallLog {
        tenant_uuid: tenant,
        conversation_id: conv.into(),
        start_us: T0 + start_s * 1_000_000,
        end_us: Some(T0 + (start_s + 30) * 1_000_000),
        source_name: src.0.into(),
        source_exten: src.1.into(),
        destination_name: Some(dst.0.into()),
        destination_exten: Some(dst.1.into()),
        requested_exten: Some(dst.1.into()),
        source_line_identity: Some("pjsip/2001".into()),
        destination_line_identity: Some("pjsip/2002".into()),
        ..CallLog::default()
    }
}

fn participant(user: Uuid, role: Role, answered: bool, peer: &str, tags: &[&str]) -> Participant {
    Participant {
        user_uuid: user,
        line_id: Some(if role == Role::Source { 1 } else { 2 }),
        role,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        answered,
        requested: role == Role::Destination,
        peer_exten: peer.into(),
    }
}

async fn cdr(s: &TestServer, path_and_query: &str, token: &str) -> (StatusCode, Value) {
    let resp = s
        .client
        .get(format!("{}/api/call-logd/1.0{path_and_query}", s.base))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("send");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn ids(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["id"].as_i64()).collect())
        .unwrap_or_default()
}

struct World {
    s: TestServer,
    alice: Uuid,
    bob: Uuid,
    alice_token: String,
    other: Uuid,
    /// ids: [alice→bob answered inbound, bob→alice missed, alice→bob again (recorded), other tenant]
    ids: Vec<i64>,
}

async fn world() -> World {
    let s = TestServer::start().await;
    let master: Uuid = s.master_tenant().await.parse().expect("tenant");
    let alice: Uuid = s
        .create_user_sql(&master.to_string(), "alice", "alice-Pw-1")
        .await
        .parse()
        .expect("uuid");
    let bob: Uuid = s
        .create_user_sql(&master.to_string(), "bob", "bob-Pw-12")
        .await
        .parse()
        .expect("uuid");
    let (st, other) = s
        .post("/tenants", &s.admin_token, serde_json::json!({"name": "other"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{other}");
    let other: Uuid = other["uuid"].as_str().expect("uuid").parse().expect("uuid");

    let mut a = log(master, "1795870944.1", 0, ("Alice", "2001"), ("Bob", "2002"));
    a.answer_us = Some(a.start_us + 5_000_000);
    a.call_direction = CallDirection::Inbound;
    a.call_status = CallStatus::Answered;
    a.participants = vec![
        participant(alice, Role::Source, true, "2002", &["sales"]),
        participant(bob, Role::Destination, true, "2001", &["support"]),
    ];
    let mut b = log(master, "1795870944.2", 100, ("Bob", "2002"), ("Alice", "2001"));
    b.call_status = CallStatus::Voicemail;
    b.participants = vec![
        participant(bob, Role::Source, false, "2001", &[]),
        participant(alice, Role::Destination, false, "2002", &[]),
    ];
    let mut c = log(master, "1795870944.3", 200, ("Alice", "2001"), ("Bob", "2002"));
    c.answer_us = Some(c.start_us + 1_000_000);
    c.call_status = CallStatus::Answered;
    c.participants = vec![
        participant(alice, Role::Source, true, "2002", &[]),
        participant(bob, Role::Destination, true, "2001", &[]),
    ];
    c.recordings = vec![Recording {
        uuid: Uuid::new_v4(),
        start_us: c.start_us + 2_000_000,
        end_us: c.start_us + 9_000_000,
        path: Some("/var/lib/accent/sounds/tenants/x/monitor/rec.wav".into()),
        deleted: false,
    }];
    let d = log(other, "1795870944.4", 300, ("Zed", "3001"), ("Yan", "3002"));
    let stored = s.app().calllog.store_logs(vec![a, b, c, d]).await.expect("store");
    let ids = stored.iter().map(|l| l.id).collect();
    let alice_token = s.login("alice", "alice-Pw-1").await;
    World {
        s,
        alice,
        bob,
        alice_token,
        other,
        ids,
    }
}

#[tokio::test]
async fn list_get_and_the_call_log_fields() {
    let w = world().await;
    let (st, body) = cdr(&w.s, "/cdr", &w.s.admin_token).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // Newest first by default; the other tenant's log is not in the master's scope.
    assert_eq!(ids(&body), vec![w.ids[2], w.ids[1], w.ids[0]]);
    assert_eq!((body["total"].as_i64(), body["filtered"].as_i64()), (Some(3), Some(3)));

    let (st, one) = cdr(&w.s, &format!("/cdr/{}", w.ids[0]), &w.s.admin_token).await;
    assert_eq!(st, StatusCode::OK, "{one}");
    assert_eq!(one["start"], "2026-11-28T13:02:24+00:00");
    assert_eq!(one["answer"], "2026-11-28T13:02:29+00:00");
    assert_eq!(one["end"], "2026-11-28T13:02:54+00:00");
    assert_eq!(one["duration"], 25);
    assert_eq!(one["answered"], true);
    assert_eq!(one["call_direction"], "inbound");
    assert_eq!(one["call_status"], "answered");
    assert_eq!(one["source_extension"], "2001");
    assert_eq!(one["source_user_uuid"], w.alice.to_string());
    assert_eq!(one["source_line_id"], 1);
    assert_eq!(one["destination_user_uuid"], w.bob.to_string());
    assert_eq!(one["requested_user_uuid"], w.bob.to_string());
    assert_eq!(one["tags"], serde_json::json!(["sales", "support"]));
    assert_eq!(one["conversation_id"], "1795870944.1");
    assert_eq!(one["source_line_identity"], "pjsip/2001");
    assert_eq!(one["participants"].as_array().map(Vec::len), Some(2));
    let (_, missed) = cdr(&w.s, &format!("/cdr/{}", w.ids[1]), &w.s.admin_token).await;
    assert_eq!(
        (missed["answered"].clone(), missed["duration"].clone()),
        (Value::Bool(false), Value::Null)
    );

    // Unknown and non-numeric ids are 404s.
    for id in ["999999", "abc", "-1"] {
        let (st, body) = cdr(&w.s, &format!("/cdr/{id}"), &w.s.admin_token).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{id}: {body}");
    }
    let (_, all) = cdr(&w.s, "/cdr?recurse=true", &w.s.admin_token).await;
    assert_eq!(all["total"], 4);
    // Acting in the sub-tenant: only its own log, and the master's are 404s like missing ones.
    let other = w.other.to_string();
    let get = |path: String| {
        w.s.client
            .get(format!("{}/api/call-logd/1.0{path}", w.s.base))
            .header("X-Auth-Token", &w.s.admin_token)
            .header("Accent-Tenant", &other)
            .send()
    };
    let body: Value = get("/cdr".into()).await.expect("send").json().await.expect("json");
    assert_eq!(ids(&body), vec![w.ids[3]]);
    assert_eq!(
        get(format!("/cdr/{}", w.ids[0])).await.expect("send").status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(format!("/cdr/{}", w.ids[3])).await.expect("send").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn filters_order_and_pagination() {
    let w = world().await;
    let t = &w.s.admin_token;
    let cases: Vec<(&str, Vec<i64>)> = vec![
        ("/cdr?direction=asc", vec![w.ids[0], w.ids[1], w.ids[2]]),
        ("/cdr?call_direction=inbound", vec![w.ids[0]]),
        ("/cdr?call_direction=internal", vec![w.ids[2], w.ids[1]]),
        ("/cdr?call_status=answered", vec![w.ids[2], w.ids[0]]),
        ("/cdr?call_status=voicemail", vec![w.ids[1]]),
        ("/cdr?call_status=blocked", vec![]),
        (
            "/cdr?order=call_status&direction=asc",
            vec![w.ids[0], w.ids[2], w.ids[1]],
        ),
        ("/cdr?search=bob", vec![w.ids[2], w.ids[1], w.ids[0]]),
        ("/cdr?number=2002", vec![w.ids[2], w.ids[1], w.ids[0]]),
        ("/cdr?number=_02", vec![w.ids[2], w.ids[1], w.ids[0]]),
        ("/cdr?number=_99", vec![]),
        ("/cdr?tags=sales", vec![w.ids[0]]),
        ("/cdr?tags=sales,support", vec![w.ids[0]]),
        ("/cdr?tags=nope", vec![]),
        ("/cdr?recorded=true", vec![w.ids[2]]),
        ("/cdr?recorded=false", vec![w.ids[1], w.ids[0]]),
        ("/cdr?conversation_id=1795870944.2", vec![w.ids[1]]),
        ("/cdr?limit=1&offset=1", vec![w.ids[1]]),
        // Unanswered calls have no duration: first when ascending.
        ("/cdr?order=duration&direction=asc", vec![w.ids[1], w.ids[0], w.ids[2]]),
        ("/cdr?from=2026-11-28T13:04:00%2B00:00", vec![w.ids[2], w.ids[1]]),
        ("/cdr?until=2026-11-28T13:04:04", vec![w.ids[0]]), // exclusive
        ("/cdr?until=2026-11-28T13:04:05", vec![w.ids[1], w.ids[0]]),
    ];
    let from_id = format!("/cdr?from_id={}", w.ids[1]);
    let user = format!("/cdr?user_uuid={}", w.bob);
    for (q, want) in cases.into_iter().chain([
        (from_id.as_str(), vec![w.ids[2], w.ids[1]]),
        (user.as_str(), vec![w.ids[2], w.ids[1], w.ids[0]]),
    ]) {
        let (st, body) = cdr(&w.s, q, t).await;
        assert_eq!(st, StatusCode::OK, "{q}: {body}");
        assert_eq!(ids(&body), want, "{q}");
        assert_eq!(body["total"], 3, "{q}");
    }
    let (_, body) = cdr(&w.s, "/cdr?limit=1", t).await;
    assert_eq!((body["filtered"].clone(), ids(&body).len()), (Value::from(3), 1));
}

#[tokio::test]
async fn bad_filter_values_are_400_with_the_field_named() {
    let w = world().await;
    for q in [
        "from=yesterday",
        "limit=-1",
        "order=nosuchfield",
        "call_direction=up",
        "call_status=missed",
        "number=12a",
        "user_uuid=x",
    ] {
        let (st, body) = cdr(&w.s, &format!("/cdr?{q}"), &w.s.admin_token).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {body}");
        let field = q.split('=').next().expect("field");
        assert!(body["details"].get(field).is_some(), "{q}: {body}");
    }
}

#[tokio::test]
async fn acls_users_and_me() {
    let w = world().await;
    // A plain user has only `call-logd.users.me.#` (default user policy).
    let (st, _) = cdr(&w.s, "/cdr", &w.alice_token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = cdr(&w.s, &format!("/users/{}/cdr", w.bob), &w.alice_token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = cdr(&w.s, "/cdr", "not-a-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = cdr(&w.s, "/status", &w.alice_token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, status) = cdr(&w.s, "/status", &w.s.admin_token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(status["store"]["status"], "ok");

    let (st, mine) = cdr(&w.s, "/users/me/cdr", &w.alice_token).await;
    assert_eq!(st, StatusCode::OK, "{mine}");
    assert_eq!(ids(&mine), vec![w.ids[2], w.ids[1], w.ids[0]]);
    // The admin reads Bob's history; the other tenant's call is nobody's here.
    let (_, bobs) = cdr(&w.s, &format!("/users/{}/cdr", w.bob), &w.s.admin_token).await;
    assert_eq!(ids(&bobs), vec![w.ids[2], w.ids[1], w.ids[0]]);
    let (_, nobody) = cdr(&w.s, &format!("/users/{}/cdr", Uuid::new_v4()), &w.s.admin_token).await;
    assert_eq!(ids(&nobody), Vec::<i64>::new());
    // Recent calls: the latest call per peer extension (Alice only ever talked with 2002).
    let (_, recent) = cdr(&w.s, "/users/me/cdr?distinct=peer_exten", &w.alice_token).await;
    assert_eq!(ids(&recent), vec![w.ids[2]]);
    assert_eq!(recent["total"], 3);
    // `user_uuid` on `me` narrows to calls shared with those users.
    let (_, shared) = cdr(
        &w.s,
        &format!("/users/me/cdr?user_uuid={}", Uuid::new_v4()),
        &w.alice_token,
    )
    .await;
    assert_eq!(ids(&shared), Vec::<i64>::new());
}

#[tokio::test]
async fn csv_on_accept_header_or_format() {
    let w = world().await;
    for (query, accept) in [
        ("/cdr", "text/csv; charset=utf-8"),
        ("/cdr?format=csv", "application/json"),
    ] {
        let resp =
            w.s.client
                .get(format!("{}/api/call-logd/1.0{query}", w.s.base))
                .header("X-Auth-Token", &w.s.admin_token)
                .header("Accept", accept)
                .send()
                .await
                .expect("send");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/csv; charset=utf-8")
        );
        let text = resp.text().await.expect("text");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_owned).collect();
        assert_eq!(header[0], "id");
        assert!(header.contains(&"recording_1_uuid".to_string()), "{header:?}");
        let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
        assert_eq!(rows.len(), 3);
        let answered = header.iter().position(|h| h == "answered").expect("answered");
        assert_eq!(&rows[2][answered], "True");
        assert_eq!(&rows[1][answered], "False");
        // Upstream's order: call_status right after call_direction.
        let status = header.iter().position(|h| h == "call_status").expect("call_status");
        assert_eq!(header[status - 1], "call_direction");
        assert_eq!(header[status + 1], "requested_name");
        assert_eq!(&rows[1][status], "voicemail");
    }
}

#[tokio::test]
async fn generating_again_replaces_instead_of_duplicating() {
    let w = world().await;
    let master: Uuid = w.s.master_tenant().await.parse().expect("tenant");
    let mut again = log(master, "1795870944.2", 100, ("Bob", "2002"), ("Alice", "2001"));
    again.answer_us = Some(again.start_us + 3_000_000);
    let stored = w.s.app().calllog.store_logs(vec![again]).await.expect("store");
    let (_, body) = cdr(&w.s, "/cdr", &w.s.admin_token).await;
    assert_eq!(body["total"], 3);
    let (_, one) = cdr(&w.s, &format!("/cdr/{}", stored[0].id), &w.s.admin_token).await;
    assert_eq!(one["answered"], true);
    let (st, _) = cdr(&w.s, &format!("/cdr/{}", w.ids[1]), &w.s.admin_token).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "the replaced log is gone");
}
