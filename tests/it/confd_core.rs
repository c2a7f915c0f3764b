//! `/api/confd/1.1` foundation: contexts and extensions over HTTP (CRUD, ranges, includes,
//! validation with confd's array-of-strings errors, tenants, ACLs, events), `/infos`,
//! live reload, and the reloads sent to the fake AMI after a change.

use std::time::Duration;

use crate::common::{command_success, commands, wait_for, TestServer};
use accentd::api::status::Health;
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions};
use accentd::fake_asterisk::scenario::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";

fn internal(label: &str, name: &str) -> Value {
    json!({
        "name": name, "label": label, "type": "internal",
        "user_ranges": [{"start": "1000", "end": "1999"}],
        "group_ranges": [{"start": "2000", "end": "2099"}],
    })
}

/// Every confd error body is a non-empty array of strings.
fn assert_confd_error(body: &Value, needle: &str) {
    let items = body.as_array().unwrap_or_else(|| panic!("array body: {body}"));
    assert!(!items.is_empty() && items.iter().all(Value::is_string), "{body}");
    assert!(body.to_string().contains(needle), "{needle:?} in {body}");
}

#[tokio::test]
async fn contexts_crud_with_location_events_and_ranges() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();

    let resp = s
        .client
        .post(format!("{}{C}/contexts", s.base))
        .header("X-Auth-Token", &t)
        .json(&internal("Default", "default"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    let ctx: Value = resp.json().await.expect("json");
    let id = ctx["id"].as_i64().expect("id");
    assert_eq!(location, format!("{C}/contexts/{id}"));
    assert_eq!(ctx["name"], "default");
    assert_eq!(ctx["enabled"], true);
    assert_eq!(ctx["contexts"], json!([]));
    assert!(ctx["uuid"].is_string() && ctx["tenant_uuid"].is_string());
    let ev = bus.recv().await.expect("event");
    assert_eq!(ev.name, "context_created");
    assert_eq!(ev.data["name"], "default");

    // A generated name when none is given; names are unique.
    let (code, gen) = s
        .post(
            &format!("{C}/contexts"),
            &t,
            json!({"label": "Incoming", "type": "incall",
        "incall_ranges": [{"start": "0123456000", "end": "0123456999", "did_length": 4}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{gen}");
    assert!(gen["name"].as_str().expect("name").starts_with("ctx-"), "{gen}");
    let (code, body) = s.post(&format!("{C}/contexts"), &t, internal("Again", "default")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "already exists");

    // GET, list with search and filters, PUT partial, name immutable.
    let (code, got) = s.get(&format!("{C}/contexts/{id}"), &t).await;
    assert_eq!((code, got["label"].clone()), (StatusCode::OK, json!("Default")));
    let (_, list) = s.get(&format!("{C}/contexts?search=incom"), &t).await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["label"], "Incoming");
    let (_, list) = s
        .get(&format!("{C}/contexts?type=internal&order=label&direction=desc"), &t)
        .await;
    assert_eq!(list["total"], 1);
    let (code, _) = s
        .put(
            &format!("{C}/contexts/{id}"),
            &t,
            json!({"description": "main", "contexts": []}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/contexts/{id}"), &t).await;
    assert_eq!(
        (got["description"].clone(), got["label"].clone()),
        (json!("main"), json!("Default"))
    );
    let (code, body) = s
        .put(&format!("{C}/contexts/{id}"), &t, json!({"name": "renamed"}))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "field 'name'");

    // Includes.
    let gen_id = gen["id"].as_i64().expect("id");
    let (code, _) = s
        .put(
            &format!("{C}/contexts/{id}/contexts"),
            &t,
            json!({"contexts": [{"id": gen_id}]}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/contexts/{id}"), &t).await;
    assert_eq!(got["contexts"][0]["id"], gen_id);
    let (code, body) = s
        .put(
            &format!("{C}/contexts/{id}/contexts"),
            &t,
            json!({"contexts": [{"id": id}]}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "itself");

    // Ranges: extensions make numbers unavailable.
    for exten in ["1000", "1005"] {
        let (code, e) = s
            .post(
                &format!("{C}/extensions"),
                &t,
                json!({"exten": exten, "context": "default"}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{e}");
    }
    let (_, r) = s.get(&format!("{C}/contexts/{id}/ranges/user"), &t).await;
    assert_eq!(
        r["items"],
        json!([{"start": "1001", "end": "1004"}, {"start": "1006", "end": "1999"}]),
        "{r}"
    );
    let (_, r) = s
        .get(&format!("{C}/contexts/{id}/ranges/user?availability=all"), &t)
        .await;
    assert_eq!(r["items"], json!([{"start": "1000", "end": "1999"}]));
    let (code, _) = s.get(&format!("{C}/contexts/{id}/ranges/bogus"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // A context with extensions cannot be deleted; without, it can.
    let (code, body) = s.delete(&format!("{C}/contexts/{id}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "still associated");
    let (code, _) = s.delete(&format!("{C}/contexts/{gen_id}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, body) = s.get(&format!("{C}/contexts/{gen_id}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_confd_error(&body, "Context was not found");
    // The include went with it.
    let (_, got) = s.get(&format!("{C}/contexts/{id}"), &t).await;
    assert_eq!(got["contexts"], json!([]));
}

#[tokio::test]
async fn extensions_validation_and_updates() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    s.post(&format!("{C}/contexts"), &t, internal("Default", "default"))
        .await;
    s.post(
        &format!("{C}/contexts"),
        &t,
        json!({"name": "to-extern", "label": "Out", "type": "outcall"}),
    )
    .await;

    let (code, e) = s
        .post(
            &format!("{C}/extensions"),
            &t,
            json!({"exten": "1001", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(
        (e["enabled"].clone(), e["commented"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(e["lines"], json!([]));
    let id = e["id"].as_i64().expect("id");

    let cases: Vec<(Value, &str)> = vec![
        (json!({"exten": "1001", "context": "default"}), "already exists"),
        (json!({"exten": "5000", "context": "default"}), "outside of range"),
        (json!({"exten": "10a1", "context": "default"}), "field 'exten'"),
        (json!({"exten": "1002\n", "context": "default"}), "field 'exten'"),
        (json!({"exten": "_1XXX", "context": "default"}), "outcall"),
        (json!({"exten": "1002", "context": "nowhere"}), "field 'context'"),
        (json!({"exten": "1002"}), "field 'context': Missing data"),
        (json!({"exten": 1002, "context": "default"}), "field 'exten'"),
        (
            json!({"exten": "1002", "context": "default", "bogus": 1}),
            "field 'bogus'",
        ),
        (json!([1, 2]), "Input Error"),
    ];
    for (body, needle) in cases {
        let (code, resp) = s.post(&format!("{C}/extensions"), &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_confd_error(&resp, needle);
    }
    // Malformed JSON.
    let resp = s
        .client
        .post(format!("{}{C}/extensions", s.base))
        .header("X-Auth-Token", &t)
        .header("Content-Type", "application/json")
        .body("{\"exten\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_confd_error(&resp.json().await.expect("json"), "Input Error");

    // Outcall patterns are fine in an outcall context.
    let (code, _) = s
        .post(
            &format!("{C}/extensions"),
            &t,
            json!({"exten": "_0XXXXXXXXX", "context": "to-extern"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);

    // `commented` and `enabled` stay in step whichever the client sends.
    let (code, _) = s
        .put(&format!("{C}/extensions/{id}"), &t, json!({"commented": true}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, e) = s.get(&format!("{C}/extensions/{id}"), &t).await;
    assert_eq!(
        (e["enabled"].clone(), e["commented"].clone()),
        (json!(false), json!(true))
    );
    let (_, list) = s.get(&format!("{C}/extensions?enabled=false"), &t).await;
    assert_eq!(list["total"], 1);
    let (code, resp) = s
        .put(&format!("{C}/extensions/{id}"), &t, json!({"exten": "9999"}))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{resp}");
    let (code, _) = s
        .put(&format!("{C}/extensions/{id}"), &t, json!({"exten": "1999"}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, list) = s.get(&format!("{C}/extensions?exten=1999&context=default"), &t).await;
    assert_eq!(list["total"], 1);
    let (code, _) = s.get(&format!("{C}/extensions/nonsense"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tenants_are_isolated_and_acls_checked() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let (_, a) = s
        .post("/tenants", &admin, json!({"name": "tenant a", "slug": "ta"}))
        .await;
    let a = a["uuid"].as_str().expect("a").to_string();
    let in_a = |method: Method, path: String, body: Option<Value>| {
        let a = a.clone();
        let admin = admin.clone();
        let s = &s;
        async move {
            s.call_with_headers(method, &path, Some(&admin), body, &[("Accent-Tenant", a.as_str())])
                .await
        }
    };
    let (code, ctx_a) = in_a(Method::POST, format!("{C}/contexts"), Some(internal("A", "ctx-a"))).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(ctx_a["tenant_uuid"], a.as_str());
    // The master tenant's own list does not show it without recurse; with recurse it does.
    let (_, list) = s.get(&format!("{C}/contexts"), &admin).await;
    assert_eq!(list["total"], 0);
    let (_, list) = s.get(&format!("{C}/contexts?recurse=true"), &admin).await;
    assert_eq!(list["total"], 1);
    // An extension in tenant A may not use the master tenant's context, and vice versa.
    s.post(&format!("{C}/contexts"), &admin, internal("Master", "ctx-m"))
        .await;
    let (code, body) = in_a(
        Method::POST,
        format!("{C}/extensions"),
        Some(json!({"exten": "1000", "context": "ctx-m"})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, _) = in_a(
        Method::POST,
        format!("{C}/extensions"),
        Some(json!({"exten": "1000", "context": "ctx-a"})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);

    // A user of tenant A with a token and no confd ACL: 401 with the common body.
    let user = s.create_user_sql(&a, "alice", "pw-alice").await;
    let _ = user;
    let tok = s.login("alice", "pw-alice").await;
    let (code, body) = s.get(&format!("{C}/contexts"), &tok).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body["message"].is_string(), "{body}");
    // The default user policy grants `confd.infos.read`, as upstream's.
    let (code, _) = s.get(&format!("{C}/infos"), &tok).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = s.call(Method::GET, &format!("{C}/contexts"), None, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // Tenant A's context is a 404 from a sibling tenant.
    let (_, b) = s
        .post("/tenants", &admin, json!({"name": "tenant b", "slug": "tb"}))
        .await;
    let b = b["uuid"].as_str().expect("b").to_string();
    let id = ctx_a["id"].as_i64().expect("id");
    let (code, _) = s
        .call_with_headers(
            Method::GET,
            &format!("{C}/contexts/{id}"),
            Some(&admin),
            None,
            &[("Accent-Tenant", b.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s
        .call_with_headers(
            Method::DELETE,
            &format!("{C}/contexts/{id}"),
            Some(&admin),
            None,
            &[("Accent-Tenant", b.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    let (code, infos) = s.get(&format!("{C}/infos"), &admin).await;
    assert_eq!(code, StatusCode::OK);
    assert!(infos["accent_version"].is_string() && infos["wazo_version"].is_string() && infos["uuid"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_send_the_reloads_they_need_once_debounced() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with("Command", Some(command_success()));
    let addr = fake.addr().to_string();
    let s = TestServer::start_with(|c| {
        c.ami.addr = addr;
        c.ami.user = "accent".into();
        c.ami.password = "accent".into();
    })
    .await;
    let t = s.admin_token.clone();
    wait_for("AMI up", || s.app().ami.as_ref().is_some_and(|a| a.is_connected())).await;

    // A burst of changes gives one dialplan reload.
    s.post(&format!("{C}/contexts"), &t, internal("Default", "default"))
        .await;
    for exten in ["1000", "1001", "1002"] {
        s.post(
            &format!("{C}/extensions"),
            &t,
            json!({"exten": exten, "context": "default"}),
        )
        .await;
    }
    wait_for("dialplan reload", || !commands(&fake).is_empty()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(commands(&fake), vec!["dialplan reload"]);

    // Live reload off: nothing is sent, the reload waits; back on, it goes out.
    let (code, _) = s
        .put(&format!("{C}/configuration/live_reload"), &t, json!({"enabled": false}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, live) = s.get(&format!("{C}/configuration/live_reload"), &t).await;
    assert_eq!(live, json!({"enabled": false}));
    s.post(
        &format!("{C}/extensions"),
        &t,
        json!({"exten": "1003", "context": "default"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(commands(&fake).len(), 1);
    assert_eq!(s.app().confd.reloader.pending().len(), 1);
    let (code, _) = s
        .put(&format!("{C}/configuration/live_reload"), &t, json!({"enabled": true}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    wait_for("pending reload sent", || commands(&fake).len() == 2).await;
    let (code, body) = s
        .put(&format!("{C}/configuration/live_reload"), &t, json!({"enabled": "yes"}))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_is_reported_and_retried() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    let addr = fake.addr().to_string();
    let s = TestServer::start_with(|c| {
        c.ami.addr = addr;
        c.ami.user = "accent".into();
        c.ami.password = "accent".into();
    })
    .await;
    let t = s.admin_token.clone();
    wait_for("AMI up", || s.app().ami.as_ref().is_some_and(|a| a.is_connected())).await;
    // Asterisk refuses the command at first.
    fake.respond_with(
        "Command",
        Some(vec![accentd::ami::frame::AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "Command output follows")]),
    );
    s.post(&format!("{C}/contexts"), &t, internal("Default", "default"))
        .await;
    wait_for("failure reported", || {
        s.app()
            .status
            .snapshot()
            .get("confd_reload")
            .is_some_and(|c| c.status == Health::Fail)
    })
    .await;
    assert_eq!(
        s.app().confd.reloader.pending(),
        vec![accentd::confd::reload::Reload::Dialplan]
    );
    // Asterisk recovers: the retry succeeds, the status clears.
    fake.respond_with("Command", Some(command_success()));
    wait_for("retried", || {
        s.app()
            .status
            .snapshot()
            .get("confd_reload")
            .is_some_and(|c| c.status == Health::Ok)
    })
    .await;
    assert!(s.app().confd.reloader.pending().is_empty());
}
