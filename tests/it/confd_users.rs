//! confd users and voicemails over HTTP: user CRUD by id and uuid, HEAD, the
//! nested POST (auth user created in-process, then a login with it; nothing
//! left behind when the confd part fails), forwards and services (also as
//! `/users/me`) and the AstDB writes the fake AMI receives, fallbacks,
//! voicemail CRUD and the user↔voicemail association, a table of bad
//! inputs, 404s, tenant isolation and events.

use std::time::{Duration, Instant};

use crate::common::TestServer;
use accentd::ami::frame::AmiMessage;
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions};
use accentd::fake_asterisk::scenario::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";

fn internal(label: &str, name: &str) -> Value {
    json!({
        "name": name, "label": label, "type": "internal",
        "user_ranges": [{"start": "1000", "end": "1999"}],
    })
}

fn assert_confd_error(body: &Value, needle: &str) {
    let items = body.as_array().unwrap_or_else(|| panic!("array body: {body}"));
    assert!(!items.is_empty() && items.iter().all(Value::is_string), "{body}");
    assert!(body.to_string().contains(needle), "{needle:?} in {body}");
}

async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<accentd::bus::Event>>,
    name: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {name} event"))
            .expect("bus");
        if ev.name == name {
            return json!({"data": ev.data, "routing_key": ev.routing_key, "tenant": ev.tenant_uuid});
        }
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn users_crud_by_id_and_uuid_with_head_and_events() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();

    let resp = s
        .client
        .post(format!("{}{C}/users", s.base))
        .header("X-Auth-Token", &t)
        .json(&json!({"firstname": "Alice", "lastname": "Smith", "email": "alice@example.com"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    let u: Value = resp.json().await.expect("json");
    let id = u["id"].as_i64().expect("id");
    let uuid = u["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(location, format!("{C}/users/{id}"));
    assert_eq!(u["caller_id"], "\"Alice Smith\"");
    assert_eq!(u["outgoing_caller_id"], "default");
    assert_eq!(
        (u["ring_seconds"].clone(), u["simultaneous_calls"].clone()),
        (json!(30), json!(5))
    );
    assert_eq!(
        (u["enabled"].clone(), u["supervision_enabled"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(u["call_transfer_enabled"], false);
    assert_eq!(u["userfield"], "");
    for empty in ["lines", "groups", "incalls"] {
        assert_eq!(u[empty], json!([]), "{empty}");
    }
    assert_eq!(u["voicemail"], Value::Null);
    assert_eq!(u["forwards"]["busy"], json!({"enabled": false, "destination": null}));
    assert_eq!(u["services"]["dnd"], json!({"enabled": false}));
    assert_eq!(u["fallbacks"]["noanswer_destination"], Value::Null);
    let ev = next_event(&mut bus, "user_created").await;
    assert_eq!(ev["routing_key"], "config.user.created");
    assert_eq!(ev["data"]["id"], id);
    assert_eq!(ev["data"]["uuid"], uuid.as_str());
    assert_eq!(ev["data"]["subscription_type"], 0);
    assert!(
        ev["data"]["created_at"].is_string() && ev["data"]["tenant_uuid"].is_string(),
        "{ev}"
    );

    // GET and HEAD by id and by uuid.
    for key in [id.to_string(), uuid.clone()] {
        let (code, got) = s.get(&format!("{C}/users/{key}"), &t).await;
        assert_eq!((code, got["id"].clone()), (StatusCode::OK, json!(id)));
        let (code, _) = s.call(Method::HEAD, &format!("{C}/users/{key}"), Some(&t), None).await;
        assert_eq!(code, StatusCode::OK);
    }
    let (code, _) = s.call(Method::HEAD, &format!("{C}/users/999"), Some(&t), None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, body) = s.get(&format!("{C}/users/999"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_confd_error(&body, "User was not found");
    let (code, _) = s.get(&format!("{C}/users/{}", uuid::Uuid::new_v4()), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Partial PUT by uuid; a GET object sent back as it is is accepted.
    let (code, body) = s
        .put(
            &format!("{C}/users/{uuid}"),
            &t,
            json!({"ring_seconds": 60, "call_record_enabled": true}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let ev = next_event(&mut bus, "user_edited").await;
    assert_eq!(ev["data"]["id"], id);
    let (_, got) = s.get(&format!("{C}/users/{id}"), &t).await;
    assert_eq!(
        (got["ring_seconds"].clone(), got["firstname"].clone()),
        (json!(60), json!("Alice"))
    );
    assert_eq!(got["call_record_incoming_external_enabled"], true);
    assert_eq!(got["created_at"], u["created_at"]);
    let (code, body) = s.put(&format!("{C}/users/{id}"), &t, got.clone()).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, _) = s
        .put(&format!("{C}/users/{id}"), &t, json!({"caller_id": "\"Ally\" <1000>"}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);

    // List: search, filters, order.
    s.post(
        &format!("{C}/users"),
        &t,
        json!({"firstname": "Bob", "username": "bob"}),
    )
    .await;
    let (_, list) = s.get(&format!("{C}/users?search=smi"), &t).await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["caller_id"], "\"Ally\" <1000>");
    let (_, list) = s.get(&format!("{C}/users?username=bob"), &t).await;
    assert_eq!(list["total"], 1);
    let (_, list) = s.get(&format!("{C}/users?order=firstname&direction=desc"), &t).await;
    assert_eq!(list["items"][0]["firstname"], "Bob");

    // Delete by uuid.
    let (code, _) = s.delete(&format!("{C}/users/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let ev = next_event(&mut bus, "user_deleted").await;
    assert_eq!(ev["data"]["uuid"], uuid.as_str());
    let (code, _) = s.get(&format!("{C}/users/{id}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.delete(&format!("{C}/users/{id}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nested_post_creates_the_auth_user_and_voicemail_or_nothing() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    s.post(&format!("{C}/contexts"), &t, internal("Default", "default"))
        .await;
    let mut bus = s.app().bus.subscribe();

    let (code, u) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({
                "firstname": "Carol", "lastname": "Jones", "email": "carol@example.com",
                "auth": {"username": "carol", "password": "carol-pw-1", "enabled": true},
                "voicemail": {"name": "Carol Jones", "number": "1001", "context": "default", "password": "1234"},
                "forwards": {"busy": {"enabled": true, "destination": "1002"}},
                "services": {"dnd": {"enabled": true}},
                "lines": [], "groups": [],
            }),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{u}");
    let uuid = u["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(u["auth"]["uuid"], uuid.as_str());
    assert_eq!(u["auth"]["username"], "carol");
    assert!(u["auth"].get("password").is_none(), "{u}");
    assert_eq!(u["voicemail"]["name"], "Carol Jones");
    assert_eq!(u["forwards"]["busy"], json!({"enabled": true, "destination": "1002"}));
    assert_eq!(u["services"]["dnd"]["enabled"], true);
    next_event(&mut bus, "user_created").await;
    let ev = next_event(&mut bus, "user_voicemail_associated").await;
    assert_eq!(ev["routing_key"], format!("config.users.{uuid}.voicemails.updated"));

    // The auth user: same uuid, same tenant, and its credentials log in.
    let (code, au) = s.get(&format!("/users/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::OK, "{au}");
    assert_eq!(au["tenant_uuid"], u["tenant_uuid"]);
    assert_eq!(au["firstname"], "Carol");
    assert_eq!(au["emails"][0]["address"], "carol@example.com");
    let user_token = s.login("carol", "carol-pw-1").await;
    let (code, f) = s.get(&format!("{C}/users/me/forwards"), &user_token).await;
    assert_eq!(code, StatusCode::OK, "{f}");
    assert_eq!(f["busy"]["destination"], "1002");
    let (_, vms) = s.get(&format!("{C}/voicemails"), &t).await;
    assert_eq!(vms["total"], 1);
    assert_eq!(vms["items"][0]["users"][0]["uuid"], uuid.as_str());

    // The confd part fails (voicemail number taken): no auth user is left.
    let (_, before) = s.get(&format!("{C}/users"), &t).await;
    let (code, body) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({
                "firstname": "Dave",
                "auth": {"username": "dave", "password": "dave-pw-1"},
                "voicemail": {"name": "Dave", "number": "1001", "context": "default"},
            }),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "'number': '1001'");
    let (status, _) = s.login_with("dave", "dave-pw-1", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, auth_users) = s.get("/users?username=dave", &t).await;
    assert_eq!(auth_users["filtered"], 0, "{auth_users}");
    let (_, after) = s.get(&format!("{C}/users"), &t).await;
    assert_eq!(before["total"], after["total"]);

    // The auth part fails (username taken): no confd user is created.
    let (code, body) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"firstname": "Eve", "auth": {"username": "carol", "password": "x-pw-123"}}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "auth.username: The login");
    let (_, after) = s.get(&format!("{C}/users?search=Eve"), &t).await;
    assert_eq!(after["total"], 0);

    // An existing voicemail by id; a given uuid is kept.
    let vm_id = vms["items"][0]["id"].as_i64().expect("vm id");
    let given = uuid::Uuid::new_v4().to_string();
    let (code, u2) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"uuid": given, "firstname": "Frank", "voicemail": {"id": vm_id}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{u2}");
    assert_eq!(u2["uuid"], given.as_str());
    assert_eq!(u2["voicemail"]["id"], vm_id);

    // A nested line without an endpoint cannot be given to the user: a 400,
    // nothing created (tests/confd_user_lines.rs covers nested lines).
    let (_, before) = s.get(&format!("{C}/lines"), &t).await;
    let (code, body) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"firstname": "Gina", "lines": [{"context": "default"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "endpoint");
    let (_, after) = s.get(&format!("{C}/lines"), &t).await;
    assert_eq!(before["total"], after["total"]);
    let (code, body) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"firstname": "Gina", "auth": {"username": "gina", "purpose": "bogus"}}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "field 'auth.purpose'");

    // Deleting a user with a voicemail needs recursive=true, which also
    // removes the auth user.
    let (code, body) = s.delete(&format!("{C}/users/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "Voicemail");
    let (code, _) = s.delete(&format!("{C}/users/{uuid}?recursive=true"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = s.get(&format!("/users/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (status, _) = s.login_with("carol", "carol-pw-1", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn success() -> Vec<AmiMessage> {
    vec![AmiMessage::new()
        .with("Response", "Success")
        .with("Message", "Updated database successfully")]
}

fn command_success() -> Vec<AmiMessage> {
    vec![AmiMessage::new()
        .with("Response", "Success")
        .with("Message", "Command output follows")
        .with("Output", "")]
}

/// `(family, key, value)` of every DBPut the fake received.
fn db_puts(fake: &FakeAmi) -> Vec<(String, String, String)> {
    fake.received_actions()
        .iter()
        .filter(|a| a.get("Action").is_some_and(|v| v.eq_ignore_ascii_case("DBPut")))
        .map(|a| {
            (
                a.get("Family").unwrap_or_default().to_string(),
                a.get("Key").unwrap_or_default().to_string(),
                a.get("Val").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_and_services_reach_astdb_with_me_variants() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with("Command", Some(command_success()));
    fake.respond_with("DBPut", Some(success()));
    fake.respond_with("DBDel", Some(success()));
    let s = TestServer::start_with_ami(&fake).await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();

    let (code, u) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"firstname": "Hugo", "auth": {"username": "hugo", "password": "hugo-pw-1"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{u}");
    let id = u["id"].as_i64().expect("id");
    let uuid = u["uuid"].as_str().expect("uuid").to_string();
    let family = format!("accent/users/{id}");
    // Creation pushes the user's initial state.
    wait_for("initial state", || {
        db_puts(&fake).contains(&(family.clone(), "dnd".into(), "0".into()))
    })
    .await;
    let (_, other) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Other"})).await;
    let other_id = other["id"].as_i64().expect("id");

    // DND through /users/me with the user's own token.
    let me = s.login("hugo", "hugo-pw-1").await;
    let (code, body) = s
        .put(&format!("{C}/users/me/services/dnd"), &me, json!({"enabled": true}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    wait_for("DBPut dnd=1", || {
        db_puts(&fake).contains(&(family.clone(), "dnd".into(), "1".into()))
    })
    .await;
    let ev = next_event(&mut bus, "users_services_dnd_updated").await;
    assert_eq!(ev["routing_key"], format!("config.users.{uuid}.services.dnd.updated"));
    assert_eq!(
        ev["data"],
        json!({"user_id": id, "user_uuid": uuid, "tenant_uuid": u["tenant_uuid"], "enabled": true})
    );
    let (code, svc) = s.get(&format!("{C}/users/me/services"), &me).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        svc,
        json!({"dnd": {"enabled": true}, "incallfilter": {"enabled": false}})
    );
    let (_, one) = s.get(&format!("{C}/users/{id}/services/dnd"), &t).await;
    assert_eq!(one, json!({"enabled": true}));

    // Forwards, by the admin and by the user; both end up in AstDB.
    let (code, _) = s
        .put(
            &format!("{C}/users/{uuid}/forwards/busy"),
            &t,
            json!({"enabled": true, "destination": "1002"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = s
        .put(
            &format!("{C}/users/me/forwards"),
            &me,
            json!({"unconditional": {"enabled": true, "destination": "+33123456789"}}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    for (key, val) in [
        ("fwd_busy", "1"),
        ("fwd_busy_dest", "1002"),
        ("fwd_unconditional", "1"),
        ("fwd_unconditional_dest", "+33123456789"),
    ] {
        wait_for(key, || {
            db_puts(&fake).contains(&(family.clone(), key.into(), val.into()))
        })
        .await;
    }
    let ev = next_event(&mut bus, "users_forwards_busy_updated").await;
    assert_eq!(ev["data"]["destination"], "1002");
    let (_, fw) = s.get(&format!("{C}/users/me/forwards/unconditional"), &me).await;
    assert_eq!(fw, json!({"enabled": true, "destination": "+33123456789"}));
    let (_, all) = s.get(&format!("{C}/users/{id}/forwards"), &t).await;
    assert_eq!(all["busy"]["enabled"], true);
    assert_eq!(all["noanswer"]["enabled"], false);

    // The user's token reaches only its own user.
    let (code, _) = s
        .put(
            &format!("{C}/users/{other_id}/services/dnd"),
            &me,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s.get(&format!("{C}/users/{other_id}/forwards"), &me).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s.get(&format!("{C}/users/me/forwards/sideways"), &me).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // The admin token has no user of its own in confd.
    let (code, _) = s.get(&format!("{C}/users/me/forwards"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Asterisk refuses for a while: the write stays queued and is retried.
    fake.respond_with(
        "DBPut",
        Some(vec![AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "Failed to update entry")]),
    );
    let (code, _) = s
        .put(&format!("{C}/users/me/services/dnd"), &me, json!({"enabled": false}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    wait_for("refused write", || {
        db_puts(&fake).contains(&(family.clone(), "dnd".into(), "0".into()))
            && !s.app().confd.astdb.pending().is_empty()
    })
    .await;
    fake.respond_with("DBPut", Some(success()));
    wait_for("retried", || s.app().confd.astdb.pending().is_empty()).await;
    let tries = db_puts(&fake)
        .iter()
        .filter(|p| **p == (family.clone(), "dnd".to_string(), "0".to_string()))
        .count();
    // The refused write and its successful retry; the first AMI session may
    // also have sent the user's initial `dnd=0`, depending on which came first.
    assert!(tries >= 2, "refused + retried: {tries}");

    // Deleting the user drops its AstDB family.
    fake.respond_with("DBDelTree", Some(success()));
    let (code, _) = s.delete(&format!("{C}/users/{id}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    wait_for("DBDelTree", || {
        fake.received_actions()
            .iter()
            .any(|a| a.get("Action") == Some("DBDelTree") && a.get("Family") == Some(family.as_str()))
    })
    .await;
}

#[tokio::test]
async fn voicemails_crud_and_association() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    s.post(&format!("{C}/contexts"), &t, internal("Default", "default"))
        .await;
    let mut bus = s.app().bus.subscribe();

    let (code, vm) = s
        .post(
            &format!("{C}/voicemails"),
            &t,
            json!({"name": "Sales", "number": "2000", "context": "default", "password": "0000",
                   "email": "sales@example.com", "attach_audio": true, "delete_messages": true,
                   "options": [["saycid", "yes"], ["envelope", "no"]]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{vm}");
    let vm_id = vm["id"].as_i64().expect("id");
    assert_eq!(vm["ask_password"], true);
    assert_eq!(vm["enabled"], true);
    assert_eq!(vm["users"], json!([]));
    assert_eq!(vm["options"], json!([["saycid", "yes"], ["envelope", "no"]]));
    let ev = next_event(&mut bus, "voicemail_created").await;
    assert_eq!(
        (ev["routing_key"].clone(), ev["data"].clone()),
        (json!("config.voicemail.created"), json!({"id": vm_id}))
    );

    let (code, _) = s
        .put(
            &format!("{C}/voicemails/{vm_id}"),
            &t,
            json!({"name": "Sales team", "max_messages": 50}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/voicemails/{vm_id}"), &t).await;
    assert_eq!(
        (got["name"].clone(), got["number"].clone()),
        (json!("Sales team"), json!("2000"))
    );
    let (_, list) = s.get(&format!("{C}/voicemails?search=sales"), &t).await;
    assert_eq!(list["total"], 1);
    let (_, list) = s.get(&format!("{C}/voicemails?number=2000&context=default"), &t).await;
    assert_eq!(list["total"], 1);

    // Users and the association.
    let (_, a) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Ann"})).await;
    let (_, b) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Ben"})).await;
    let (a_id, b_uuid) = (a["id"].as_i64().expect("a"), b["uuid"].as_str().expect("b").to_string());
    let (code, _) = s
        .put(&format!("{C}/users/{a_id}/voicemails/{vm_id}"), &t, json!({}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let ev = next_event(&mut bus, "user_voicemail_associated").await;
    assert_eq!(ev["data"]["voicemail_id"], vm_id);
    // The same again is fine; a second voicemail for the same user is not.
    let (code, _) = s
        .put(&format!("{C}/users/{a_id}/voicemails/{vm_id}"), &t, json!({}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, body) = s
        .post(
            &format!("{C}/users/{a_id}/voicemails"),
            &t,
            json!({"name": "Ann", "number": "2001", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "already associated");
    // Two users may share a voicemail.
    let (code, _) = s
        .put(&format!("{C}/users/{b_uuid}/voicemails/{vm_id}"), &t, json!({}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/voicemails/{vm_id}"), &t).await;
    assert_eq!(got["users"].as_array().map(Vec::len), Some(2));
    let (_, uv) = s.get(&format!("{C}/users/{a_id}/voicemails"), &t).await;
    assert_eq!(
        (uv["total"].clone(), uv["items"][0]["id"].clone()),
        (json!(1), json!(vm_id))
    );
    let (_, got) = s.get(&format!("{C}/users/{a_id}"), &t).await;
    assert_eq!(got["voicemail"], json!({"id": vm_id, "name": "Sales team"}));

    // In use: cannot be deleted.
    let (code, body) = s.delete(&format!("{C}/voicemails/{vm_id}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "still associated");
    let (code, _) = s.delete(&format!("{C}/users/{a_id}/voicemails"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let ev = next_event(&mut bus, "user_voicemail_dissociated").await;
    assert_eq!(ev["data"]["voicemail_id"], vm_id);
    let (code, _) = s.delete(&format!("{C}/users/{a_id}/voicemails"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, uv) = s.get(&format!("{C}/users/{a_id}/voicemails"), &t).await;
    assert_eq!(uv["total"], 0);
    let (code, _) = s.delete(&format!("{C}/users/{b_uuid}/voicemails"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = s.delete(&format!("{C}/voicemails/{vm_id}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = s.get(&format!("{C}/voicemails/{vm_id}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // POST /users/{id}/voicemails creates and associates.
    let (code, created) = s
        .post(
            &format!("{C}/users/{a_id}/voicemails"),
            &t,
            json!({"name": "Ann", "number": "2001", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["users"][0]["id"], a_id);
    // A context holding a voicemail cannot be deleted.
    let (_, ctx) = s.get(&format!("{C}/contexts?name=default"), &t).await;
    let ctx_id = ctx["items"][0]["id"].as_i64().expect("ctx");
    let (code, body) = s.delete(&format!("{C}/contexts/{ctx_id}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "Voicemail");
    // 404s.
    let (code, _) = s.put(&format!("{C}/users/{a_id}/voicemails/999"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.put(&format!("{C}/users/999/voicemails/1"), &t, json!({})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.get(&format!("{C}/users/999/voicemails"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fallbacks_and_outgoing_callerids() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let (_, a) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Ann"})).await;
    let (_, b) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Ben"})).await;
    let (a_id, b_id) = (a["id"].as_i64().expect("a"), b["id"].as_i64().expect("b"));
    let mut bus = s.app().bus.subscribe();
    let (code, body) = s
        .put(
            &format!("{C}/users/{a_id}/fallbacks"),
            &t,
            json!({"noanswer_destination": {"type": "user", "user_id": b_id},
                   "busy_destination": {"type": "hangup", "cause": "busy"}}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    next_event(&mut bus, "user_fallback_edited").await;
    let (_, fb) = s.get(&format!("{C}/users/{a_id}/fallbacks"), &t).await;
    assert_eq!(fb["noanswer_destination"], json!({"type": "user", "user_id": b_id}));
    assert_eq!(fb["fail_destination"], Value::Null);
    // PUT replaces all four.
    let (code, _) = s
        .put(
            &format!("{C}/users/{a_id}/fallbacks"),
            &t,
            json!({"fail_destination": {"type": "none"}}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/users/{a_id}"), &t).await;
    assert_eq!(got["fallbacks"]["noanswer_destination"], Value::Null);
    assert_eq!(got["fallbacks"]["fail_destination"], json!({"type": "none"}));
    for (body, needle) in [
        (
            json!({"busy_destination": {"type": "user", "user_id": 999}}),
            "busy_destination.user_id",
        ),
        (
            json!({"busy_destination": {"type": "teleport"}}),
            "busy_destination.type",
        ),
        (
            json!({"busy_destination": {"type": "group"}}),
            "busy_destination.group_id",
        ),
        (json!({"elsewhere": null}), "field 'elsewhere'"),
    ] {
        let (code, resp) = s.put(&format!("{C}/users/{a_id}/fallbacks"), &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
        assert_confd_error(&resp, needle);
    }
    let (code, ids) = s.get(&format!("{C}/users/{a_id}/callerids/outgoing"), &t).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(ids, json!({"total": 1, "items": [{"type": "anonymous"}]}));
}

#[tokio::test]
async fn bad_inputs_answer_400_naming_the_field() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    s.post(&format!("{C}/contexts"), &t, internal("Default", "default"))
        .await;
    let (_, other) = s.post("/tenants", &t, json!({"name": "other", "slug": "other"})).await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    let (code, _) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/contexts"),
            Some(&t),
            Some(internal("Other", "other-ctx")),
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let (_, u) = s
        .post(
            &format!("{C}/users"),
            &t,
            json!({"firstname": "Taken", "username": "taken"}),
        )
        .await;
    let uid = u["id"].as_i64().expect("id");
    s.post(
        &format!("{C}/voicemails"),
        &t,
        json!({"name": "VM", "number": "3000", "context": "default"}),
    )
    .await;

    let users = format!("{C}/users");
    let vms = format!("{C}/voicemails");
    let vm = |extra: Value| {
        let mut base = json!({"name": "X", "number": "3001", "context": "default"});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        base
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (&users, json!({}), "field 'firstname': Missing data"),
        (&users, json!({"firstname": ""}), "field 'firstname'"),
        (&users, json!({"firstname": 42}), "field 'firstname'"),
        (
            &users,
            json!({"firstname": "A", "caller_id": "Alice <1000>"}),
            "field 'caller_id'",
        ),
        (
            &users,
            json!({"firstname": "A", "caller_id": "\"Alice\" <10a0>"}),
            "field 'caller_id'",
        ),
        (
            &users,
            json!({"firstname": "A", "outgoing_caller_id": "private"}),
            "field 'outgoing_caller_id'",
        ),
        (
            &users,
            json!({"firstname": "A", "ring_seconds": 10801}),
            "field 'ring_seconds'",
        ),
        (
            &users,
            json!({"firstname": "A", "ring_seconds": -1}),
            "field 'ring_seconds'",
        ),
        (
            &users,
            json!({"firstname": "A", "simultaneous_calls": 0}),
            "field 'simultaneous_calls'",
        ),
        (
            &users,
            json!({"firstname": "A", "simultaneous_calls": 21}),
            "field 'simultaneous_calls'",
        ),
        (
            &users,
            json!({"firstname": "A", "ring_seconds": "30"}),
            "field 'ring_seconds'",
        ),
        (&users, json!({"firstname": "A", "enabled": "yes"}), "field 'enabled'"),
        (
            &users,
            json!({"firstname": "A", "language": "xx_XX"}),
            "field 'language'",
        ),
        (
            &users,
            json!({"firstname": "A", "email": "not-an-email"}),
            "field 'email'",
        ),
        (
            &users,
            json!({"firstname": "A", "mobile_phone_number": "06 12"}),
            "field 'mobile_phone_number'",
        ),
        (
            &users,
            json!({"firstname": "A", "preprocess_subroutine": "sub,1"}),
            "field 'preprocess_subroutine'",
        ),
        (
            &users,
            json!({"firstname": "A", "call_permission_password": "12ab"}),
            "field 'call_permission_password'",
        ),
        (&users, json!({"firstname": "A", "bogus": 1}), "field 'bogus'"),
        (
            &users,
            json!({"firstname": "A", "username": "taken"}),
            "'username': 'taken'",
        ),
        (&users, json!({"firstname": "A", "uuid": "nope"}), "field 'uuid'"),
        (
            &users,
            json!({"firstname": "A", "forwards": {"busy": {"destination": "10;02"}}}),
            "field 'forwards.busy.destination'",
        ),
        (
            &users,
            json!({"firstname": "A", "services": {"dnd": {"enabled": 1}}}),
            "field 'services.dnd.enabled'",
        ),
        (
            &users,
            json!({"firstname": "A", "voicemail": {"name": "A", "number": "12x", "context": "default"}}),
            "field 'voicemail.number'",
        ),
        (
            &users,
            json!({"firstname": "A", "voicemail": {"name": "A", "number": "3009", "context": "other-ctx"}}),
            "field 'voicemail.context'",
        ),
        (
            &users,
            json!({"firstname": "A", "incalls": [{"id": 1}]}),
            "field 'incalls'",
        ),
        (&users, json!([1]), "Input Error"),
        (&vms, vm(json!({"number": "3000"})), "'number': '3000'"),
        (&vms, vm(json!({"context": "other-ctx"})), "field 'context'"),
        (&vms, vm(json!({"context": "nowhere"})), "field 'context'"),
        (&vms, vm(json!({"password": "12ab"})), "field 'password'"),
        (&vms, vm(json!({"name": "A,B"})), "field 'name'"),
        (&vms, vm(json!({"name": "A\nB"})), "field 'name'"),
        (
            &vms,
            vm(json!({"options": [["attach", "yes|delete=yes"]]})),
            "field 'options.0.1'",
        ),
        (&vms, vm(json!({"options": [["a b", "yes"]]})), "field 'options.0.0'"),
        (&vms, vm(json!({"options": [["only-one"]]})), "field 'options"),
        (&vms, vm(json!({"delete_messages": true})), "field 'delete_messages'"),
        (&vms, vm(json!({"email": "x@y.z,saycid=yes"})), "field 'email'"),
        (&vms, vm(json!({"max_messages": -1})), "field 'max_messages'"),
        (&vms, json!({"number": "3001", "context": "default"}), "field 'name'"),
    ];
    assert!(cases.len() >= 20);
    for (path, body, needle) in cases {
        let (code, resp) = s.post(path, &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {body}: {resp}");
        assert_confd_error(&resp, needle);
    }
    // PUT validates the merged result too.
    for (body, needle) in [
        (json!({"ring_seconds": 10801}), "field 'ring_seconds'"),
        (json!({"firstname": null}), "field 'firstname'"),
        (json!({"simultaneous_calls": 0}), "field 'simultaneous_calls'"),
    ] {
        let (code, resp) = s.put(&format!("{C}/users/{uid}"), &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_confd_error(&resp, needle);
    }
    for (path, body, needle) in [
        (
            format!("{C}/users/{uid}/forwards/busy"),
            json!({"enabled": "on"}),
            "field 'enabled'",
        ),
        (
            format!("{C}/users/{uid}/forwards"),
            json!({"sideways": {}}),
            "field 'sideways'",
        ),
        (format!("{C}/users/{uid}/services/dnd"), json!({}), "field 'enabled'"),
        (
            format!("{C}/users/{uid}/services"),
            json!({"dnd": {"enabled": true, "x": 1}}),
            "field 'x'",
        ),
    ] {
        let (code, resp) = s.put(&path, &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {body}: {resp}");
        assert_confd_error(&resp, needle);
    }
    // Nothing was created by the failed POSTs.
    let (_, list) = s.get(&users, &t).await;
    assert_eq!(list["total"], 1);
    let (_, list) = s.get(&vms, &t).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let mut tenants = Vec::new();
    for slug in ["ta", "tb"] {
        let (_, t) = s.post("/tenants", &admin, json!({"name": slug, "slug": slug})).await;
        tenants.push(t["uuid"].as_str().expect("tenant").to_string());
    }
    let (a, b) = (tenants[0].clone(), tenants[1].clone());
    let call = |tenant: &str, method: Method, path: String, body: Option<Value>| {
        let tenant = tenant.to_string();
        let admin = admin.clone();
        let s = &s;
        async move {
            s.call_with_headers(method, &path, Some(&admin), body, &[("Accent-Tenant", tenant.as_str())])
                .await
        }
    };
    call(&a, Method::POST, format!("{C}/contexts"), Some(internal("A", "ctx-a"))).await;
    let (code, ua) = call(
        &a,
        Method::POST,
        format!("{C}/users"),
        Some(
            json!({"firstname": "InA", "auth": {"username": "in-a", "password": "in-a-pw-1"},
                    "voicemail": {"name": "InA", "number": "1000", "context": "ctx-a"}}),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{ua}");
    assert_eq!(ua["tenant_uuid"], a.as_str());
    assert_eq!(ua["auth"]["tenant_uuid"], a.as_str());
    let (id, uuid) = (
        ua["id"].as_i64().expect("id"),
        ua["uuid"].as_str().expect("uuid").to_string(),
    );
    let vm_id = ua["voicemail"]["id"].as_i64().expect("vm");

    // From tenant B everything of A is a 404.
    for (method, path, body) in [
        (Method::GET, format!("{C}/users/{id}"), None),
        (Method::GET, format!("{C}/users/{uuid}"), None),
        (Method::HEAD, format!("{C}/users/{uuid}"), None),
        (Method::PUT, format!("{C}/users/{id}"), Some(json!({"firstname": "X"}))),
        (Method::DELETE, format!("{C}/users/{id}"), None),
        (Method::GET, format!("{C}/users/{id}/forwards"), None),
        (
            Method::PUT,
            format!("{C}/users/{id}/services/dnd"),
            Some(json!({"enabled": true})),
        ),
        (Method::GET, format!("{C}/users/{id}/voicemails"), None),
        (Method::GET, format!("{C}/voicemails/{vm_id}"), None),
        (Method::DELETE, format!("{C}/voicemails/{vm_id}"), None),
    ] {
        let (code, _) = call(&b, method.clone(), path.clone(), body).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, list) = call(&b, Method::GET, format!("{C}/users"), None).await;
    assert_eq!(list["total"], 0);
    // A user of B cannot take A's voicemail, nor use A's context.
    let (_, ub) = call(
        &b,
        Method::POST,
        format!("{C}/users"),
        Some(json!({"firstname": "InB"})),
    )
    .await;
    let ub_id = ub["id"].as_i64().expect("b");
    let (code, _) = call(&b, Method::PUT, format!("{C}/users/{ub_id}/voicemails/{vm_id}"), None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, body) = call(
        &b,
        Method::POST,
        format!("{C}/voicemails"),
        Some(json!({"name": "B", "number": "1001", "context": "ctx-a"})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "field 'context'");
    // From the master tenant with recurse, both are listed.
    let (_, list) = s.get(&format!("{C}/users?recurse=true"), &admin).await;
    assert_eq!(list["total"], 2);

    // A user of A logs in and sees only its own data through `me`.
    let tok = s.login("in-a", "in-a-pw-1").await;
    let (code, _) = s.get(&format!("{C}/users/me/services"), &tok).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = s.get(&format!("{C}/users"), &tok).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s.get(&format!("{C}/users/{ub_id}/services"), &tok).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

/// One AMI `UserEvent` as Asterisk writes it for `UserEvent(AccentUserFeature,...)`
/// raised on a channel (the channel snapshot first, then the body's `Key: value` lines).
fn feature_event(body: &[(&str, &str)]) -> Vec<u8> {
    let mut text = String::from(
        "Event: UserEvent\r\nPrivilege: user,all\r\nChannel: PJSIP/hugo-sip-00000002\r\nChannelState: 6\r\n\
         ChannelStateDesc: Up\r\nCallerIDNum: 1001\r\nCallerIDName: Hugo\r\nContext: accent-features\r\n\
         Exten: s\r\nPriority: 3\r\nUniqueid: 1700000000.12\r\nLinkedid: 1700000000.12\r\n\
         UserEvent: AccentUserFeature\r\n",
    );
    for (k, v) in body {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_codes_from_the_dialplan_change_services_and_forwards() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with("Command", Some(command_success()));
    fake.respond_with("DBPut", Some(success()));
    fake.respond_with("DBDel", Some(success()));
    let s = TestServer::start_with_ami(&fake).await;
    let t = s.admin_token.clone();
    let (code, u) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Hugo"})).await;
    assert_eq!(code, StatusCode::CREATED, "{u}");
    let id = u["id"].as_i64().expect("id");
    let id_s = id.to_string();
    let family = format!("accent/users/{id}");
    let mut bus = s.app().bus.subscribe();

    // *25 toggles DND on, then off.
    for (want, val) in [(true, "1"), (false, "0")] {
        fake.send_raw(&feature_event(&[
            ("UserID", &id_s),
            ("Kind", "service"),
            ("Name", "dnd"),
            ("Enabled", "toggle"),
            ("Destination", ""),
        ]));
        let ev = next_event(&mut bus, "users_services_dnd_updated").await;
        assert_eq!(ev["data"]["enabled"], want);
        wait_for("DBPut dnd", || {
            db_puts(&fake)
                .iter()
                .filter(|p| **p == (family.clone(), "dnd".to_string(), val.to_string()))
                .count()
                >= 1
        })
        .await;
        let (_, svc) = s.get(&format!("{C}/users/{id}/services/dnd"), &t).await;
        assert_eq!(svc["enabled"], want);
    }

    // *21<number> forwards everything to the number; *20 turns every forward off
    // and keeps the number.
    fake.send_raw(&feature_event(&[
        ("UserID", &id_s),
        ("Kind", "forward"),
        ("Name", "unconditional"),
        ("Enabled", "1"),
        ("Destination", "0612345678"),
    ]));
    let ev = next_event(&mut bus, "users_forwards_unconditional_updated").await;
    assert_eq!(ev["data"]["destination"], "0612345678");
    let (_, fw) = s.get(&format!("{C}/users/{id}/forwards/unconditional"), &t).await;
    assert_eq!(fw, json!({"enabled": true, "destination": "0612345678"}));
    let start = Instant::now();
    while !db_puts(&fake).contains(&(family.clone(), "fwd_unconditional_dest".into(), "0612345678".into())) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "DBPut fwd: {:?}",
            db_puts(&fake)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Events accentd cannot apply are ignored without stopping the task.
    for bad in [
        vec![
            ("UserID", "999999"),
            ("Kind", "service"),
            ("Name", "dnd"),
            ("Enabled", "1"),
        ],
        vec![("UserID", "x"), ("Kind", "service"), ("Name", "dnd"), ("Enabled", "1")],
        vec![
            ("UserID", id_s.as_str()),
            ("Kind", "service"),
            ("Name", "vacation"),
            ("Enabled", "1"),
        ],
    ] {
        fake.send_raw(&feature_event(&bad));
    }
    fake.send_raw(&feature_event(&[
        ("UserID", &id_s),
        ("Kind", "forward"),
        ("Name", "all"),
        ("Enabled", "0"),
        ("Destination", ""),
    ]));
    let ev = next_event(&mut bus, "users_forwards_unconditional_updated").await;
    assert_eq!(ev["data"]["enabled"], false);
    let (_, fw) = s.get(&format!("{C}/users/{id}/forwards"), &t).await;
    assert_eq!(
        fw["unconditional"],
        json!({"enabled": false, "destination": "0612345678"})
    );
    assert_eq!(fw["busy"]["enabled"], false);
}
