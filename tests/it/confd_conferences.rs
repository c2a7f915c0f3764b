//! confd conferences over HTTP: the room's fields and defaults, its one
//! extension (internal context, conference room ranges) with the relation
//! both ways, upstream's rules and error bodies, tenants, ACLs, events and
//! the reloads the fake AMI receives.

use std::time::Duration;

use crate::common::{command_success, commands, wait_for, TestServer};
use crate::confd_routing::{assert_confd_error, created, delete_ok, get, put_ok};
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions};
use accentd::fake_asterisk::scenario::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";

/// `default` (users 1000-1099, conferences 4000-4099) and `from-extern` (incall).
async fn contexts(s: &TestServer, t: &str) {
    created(
        s,
        t,
        "/contexts",
        json!({"name": "default", "label": "Default", "type": "internal",
               "user_ranges": [{"start": "1000", "end": "1099"}],
               "conference_room_ranges": [{"start": "4000", "end": "4099"}]}),
    )
    .await;
    created(
        s,
        t,
        "/contexts",
        json!({"name": "from-extern", "label": "In", "type": "incall",
               "incall_ranges": [{"start": "4000", "end": "4099"}]}),
    )
    .await;
}

async fn extension(s: &TestServer, t: &str, exten: &str, context: &str) -> i64 {
    created(s, t, "/extensions", json!({"exten": exten, "context": context})).await["id"]
        .as_i64()
        .expect("extension id")
}

async fn refused(s: &TestServer, t: &str, method: Method, path: &str, body: Option<Value>, needle: &str) {
    let (code, resp) = s.call(method.clone(), &format!("{C}{path}"), Some(t), body).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{method} {path}: {resp}");
    assert_confd_error(&resp, needle);
}

#[tokio::test]
async fn conferences_crud_extension_and_events() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();
    contexts(&s, &t).await;

    // Upstream's defaults for an empty body.
    let conf = created(&s, &t, "/conferences", json!({})).await;
    let id = conf["id"].as_i64().expect("conference id");
    for (field, value) in [
        ("name", Value::Null),
        ("max_users", json!(50)),
        ("record", json!(false)),
        ("pin", Value::Null),
        ("admin_pin", Value::Null),
        ("quiet_join_leave", json!(false)),
        ("announce_join_leave", json!(false)),
        ("announce_user_count", json!(false)),
        ("announce_only_user", json!(true)),
        ("music_on_hold", Value::Null),
        ("preprocess_subroutine", Value::Null),
        ("extensions", json!([])),
        ("incalls", json!([])),
    ] {
        assert_eq!(conf[field], value, "{field} in {conf}");
    }
    assert_eq!(conf["tenant_uuid"], s.master_tenant().await.as_str());

    // A PUT changes what it names; the read-only relations sent back are ignored.
    let mut edited = get(&s, &t, &format!("/conferences/{id}")).await;
    edited["name"] = json!("Team room");
    edited["pin"] = json!("1234");
    edited["admin_pin"] = json!("9999");
    edited["record"] = json!(true);
    put_ok(&s, &t, &format!("/conferences/{id}"), Some(edited)).await;
    put_ok(&s, &t, &format!("/conferences/{id}"), Some(json!({"max_users": 0}))).await;
    let conf = get(&s, &t, &format!("/conferences/{id}")).await;
    assert_eq!(
        (
            &conf["name"],
            &conf["pin"],
            &conf["admin_pin"],
            &conf["record"],
            &conf["max_users"]
        ),
        (
            &json!("Team room"),
            &json!("1234"),
            &json!("9999"),
            &json!(true),
            &json!(0)
        )
    );
    let other = created(&s, &t, "/conferences", json!({"name": "Board"})).await["id"].clone();
    let list = get(&s, &t, "/conferences?search=team").await;
    assert_eq!(
        (list["total"].clone(), list["items"][0]["id"].clone()),
        (json!(1), json!(id)),
        "{list}"
    );
    let list = get(&s, &t, "/conferences?order=name&direction=desc").await;
    let names: Vec<&Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("Team room"), &json!("Board")]);

    // Its extension: shown both ways, edits must stay in the conference ranges.
    let ext = extension(&s, &t, "4000", "default").await;
    put_ok(&s, &t, &format!("/conferences/{id}/extensions/{ext}"), None).await;
    put_ok(&s, &t, &format!("/conferences/{id}/extensions/{ext}"), None).await;
    assert_eq!(
        get(&s, &t, &format!("/conferences/{id}")).await["extensions"],
        json!([{"id": ext, "exten": "4000", "context": "default"}])
    );
    assert_eq!(
        get(&s, &t, &format!("/extensions/{ext}")).await["conference"],
        json!({"id": id, "name": "Team room"})
    );
    refused(
        &s,
        &t,
        Method::PUT,
        &format!("/extensions/{ext}"),
        Some(json!({"exten": "1000"})),
        "outside of range",
    )
    .await;
    refused(
        &s,
        &t,
        Method::DELETE,
        &format!("/extensions/{ext}"),
        None,
        "associated with a Conference",
    )
    .await;
    // One extension per conference, one owner per extension.
    let ext2 = extension(&s, &t, "4001", "default").await;
    refused(
        &s,
        &t,
        Method::PUT,
        &format!("/conferences/{id}/extensions/{ext2}"),
        None,
        "already has an Extension",
    )
    .await;
    refused(
        &s,
        &t,
        Method::PUT,
        &format!("/conferences/{other}/extensions/{ext}"),
        None,
        "already associated with a Conference",
    )
    .await;
    let user_ext = extension(&s, &t, "1000", "default").await;
    refused(
        &s,
        &t,
        Method::PUT,
        &format!("/conferences/{other}/extensions/{user_ext}"),
        None,
        "outside of range",
    )
    .await;
    let did = extension(&s, &t, "4002", "from-extern").await;
    refused(
        &s,
        &t,
        Method::PUT,
        &format!("/conferences/{other}/extensions/{did}"),
        None,
        "not in an internal context",
    )
    .await;
    refused(
        &s,
        &t,
        Method::DELETE,
        &format!("/conferences/{other}/extensions/{ext}"),
        None,
        "not associated",
    )
    .await;

    // Dissociated, then the conference deleted with an extension: the extension stays.
    delete_ok(&s, &t, &format!("/conferences/{id}/extensions/{ext}")).await;
    assert_eq!(
        get(&s, &t, &format!("/extensions/{ext}")).await["conference"],
        Value::Null
    );
    put_ok(&s, &t, &format!("/conferences/{other}/extensions/{ext}"), None).await;
    delete_ok(&s, &t, &format!("/conferences/{other}")).await;
    assert_eq!(
        get(&s, &t, &format!("/extensions/{ext}")).await["conference"],
        Value::Null
    );
    delete_ok(&s, &t, &format!("/extensions/{ext}")).await;
    let (code, _) = s.get(&format!("{C}/conferences/{other}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Events: upstream's names, routing keys and payloads.
    let mut seen = Vec::new();
    while let Ok(ev) = bus.try_recv() {
        seen.push((ev.name.clone(), ev.routing_key.clone(), ev.data.clone()));
    }
    let find = |name: &str| {
        seen.iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, rk, data)| (rk.clone(), data.clone()))
            .unwrap_or_else(|| panic!("{name} in {:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>()))
    };
    assert_eq!(
        find("conference_created"),
        ("config.conferences.created".into(), json!({"id": id}))
    );
    assert_eq!(
        find("conference_edited"),
        ("config.conferences.edited".into(), json!({"id": id}))
    );
    assert_eq!(
        find("conference_deleted"),
        ("config.conferences.deleted".into(), json!({"id": other}))
    );
    assert_eq!(
        find("conference_extension_associated"),
        (
            "config.conferences.extensions.updated".into(),
            json!({"conference_id": id, "extension_id": ext})
        )
    );
    assert_eq!(
        find("conference_extension_dissociated"),
        (
            "config.conferences.extensions.deleted".into(),
            json!({"conference_id": id, "extension_id": ext})
        )
    );
    let associated = seen
        .iter()
        .filter(|(n, _, _)| n == "conference_extension_associated")
        .count();
    assert_eq!(associated, 2, "the repeated PUT changed nothing");
}

#[tokio::test]
async fn bad_inputs_tenants_and_acls() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t).await;
    let conf = created(&s, &t, "/conferences", json!({"name": "Room"})).await["id"].clone();
    let ext = extension(&s, &t, "4010", "default").await;

    for (body, needle) in [
        (json!({"pin": "12a4"}), "field 'pin'"),
        (json!({"admin_pin": ""}), "field 'admin_pin'"),
        (json!({"max_users": -1}), "field 'max_users'"),
        (json!({"max_users": "10"}), "field 'max_users'"),
        (json!({"record": "yes"}), "field 'record'"),
        (json!({"name": "a\nb"}), "field 'name'"),
        (json!({"name": "x".repeat(129)}), "field 'name'"),
        (json!({"preprocess_subroutine": "a,b"}), "field 'preprocess_subroutine'"),
        (json!({"music_on_hold": "moh;x"}), "field 'music_on_hold'"),
        (json!({"bogus": 1}), "field 'bogus': Unknown field"),
        (json!([]), "expected an object"),
    ] {
        refused(&s, &t, Method::POST, "/conferences", Some(body.clone()), needle).await;
        refused(&s, &t, Method::PUT, &format!("/conferences/{conf}"), Some(body), needle).await;
    }
    // Malformed JSON.
    let resp = s
        .client
        .post(format!("{}{C}/conferences", s.base))
        .header("X-Auth-Token", &t)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_confd_error(&resp.json().await.expect("json"), "Input Error");
    for path in [
        "/conferences/999".to_string(),
        "/conferences/abc".to_string(),
        format!("/conferences/999/extensions/{ext}"),
        format!("/conferences/{conf}/extensions/999"),
    ] {
        let (code, body) = s
            .call(Method::PUT, &format!("{C}{path}"), Some(&t), Some(json!({})))
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "PUT {path}: {body}");
    }

    // Another tenant sees neither the conference nor the extension.
    let (_, a) = s.post("/tenants", &t, json!({"name": "tenant a", "slug": "ta"})).await;
    let a = a["uuid"].as_str().expect("tenant").to_string();
    let h = [("Accent-Tenant", a.as_str())];
    for (method, path) in [
        (Method::GET, format!("/conferences/{conf}")),
        (Method::PUT, format!("/conferences/{conf}")),
        (Method::DELETE, format!("/conferences/{conf}")),
        (Method::PUT, format!("/conferences/{conf}/extensions/{ext}")),
    ] {
        let (code, body) = s
            .call_with_headers(method.clone(), &format!("{C}{path}"), Some(&t), Some(json!({})), &h)
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (code, list) = s
        .call_with_headers(Method::GET, &format!("{C}/conferences"), Some(&t), None, &h)
        .await;
    assert_eq!((code, list["total"].clone()), (StatusCode::OK, json!(0)));
    let (code, mine) = s
        .call_with_headers(Method::POST, &format!("{C}/conferences"), Some(&t), Some(json!({})), &h)
        .await;
    assert_eq!(code, StatusCode::CREATED, "{mine}");
    let (code, body) = s
        .call_with_headers(
            Method::PUT,
            &format!("{C}/conferences/{}/extensions/{ext}", mine["id"]),
            Some(&t),
            None,
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");

    // ACLs: a user without confd ACLs gets 401 on every operation.
    s.create_user_sql(&a, "mallory", "pw-mallory").await;
    let tok = s.login("mallory", "pw-mallory").await;
    for (method, path) in [
        (Method::GET, "/conferences".to_string()),
        (Method::POST, "/conferences".to_string()),
        (Method::GET, format!("/conferences/{}", mine["id"])),
        (Method::PUT, format!("/conferences/{}", mine["id"])),
        (Method::DELETE, format!("/conferences/{}", mine["id"])),
        (Method::PUT, format!("/conferences/{}/extensions/{ext}", mine["id"])),
        (Method::DELETE, format!("/conferences/{}/extensions/{ext}", mine["id"])),
    ] {
        let (code, _) = s
            .call(method.clone(), &format!("{C}{path}"), Some(&tok), Some(json!({})))
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reload_confbridge_and_dialplan() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with("Command", Some(command_success()));
    let s = TestServer::start_with_ami(&fake).await;
    let t = s.admin_token.clone();
    contexts(&s, &t).await;
    let ext = extension(&s, &t, "4000", "default").await;
    wait_for("context reloads", || !commands(&fake).is_empty()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    let before = commands(&fake).len();
    let conf = created(&s, &t, "/conferences", json!({"name": "Room"})).await["id"].clone();
    wait_for("conference reloads", || commands(&fake).len() >= before + 2).await;
    let mut got = commands(&fake)[before..].to_vec();
    got.sort();
    assert_eq!(got, ["dialplan reload", "module reload app_confbridge.so"]);

    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = commands(&fake).len();
    put_ok(&s, &t, &format!("/conferences/{conf}/extensions/{ext}"), None).await;
    wait_for("extension reload", || commands(&fake).len() > before).await;
    assert_eq!(commands(&fake)[before..], ["dialplan reload"]);
}
