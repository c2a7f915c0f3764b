//! confd user ↔ line over HTTP: upstream's provisioning order, the user's `lines` and the
//! line's `users`, `PUT /users/{id}/lines` (order, main line), shared lines and extensions,
//! nested lines in `POST /users` (all or nothing), bad inputs, tenants, events, the reloads
//! the fake AMI receives, and `calllog_line` feeding call-logd (a call log generated from
//! recorded CELs names the users provisioned here).

use std::path::Path;
use std::time::Duration;

use crate::common::{commands, wait_for, TestServer};
use accentd::confd::reload::Reload;
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions};
use accentd::fake_asterisk::scenario::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";
const PASSWORD: &str = "Sup3r-s3cret-pw";

type Events = tokio::sync::broadcast::Receiver<std::sync::Arc<accentd::bus::Event>>;

fn assert_confd_error(body: &Value, needle: &str) {
    let items = body.as_array().unwrap_or_else(|| panic!("array body: {body}"));
    assert!(!items.is_empty() && items.iter().all(Value::is_string), "{body}");
    assert!(body.to_string().contains(needle), "{needle:?} in {body}");
}

async fn created(s: &TestServer, t: &str, path: &str, body: Value) -> Value {
    let (code, obj) = s.post(&format!("{C}{path}"), t, body.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "POST {path} {body}: {obj}");
    obj
}

async fn no_content(s: &TestServer, method: Method, t: &str, path: &str, body: Option<Value>) {
    let (code, resp) = s.call(method.clone(), &format!("{C}{path}"), Some(t), body).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{method} {path}: {resp}");
}

async fn get(s: &TestServer, t: &str, path: &str) -> Value {
    let (code, obj) = s.get(&format!("{C}{path}"), t).await;
    assert_eq!(code, StatusCode::OK, "GET {path}: {obj}");
    obj
}

/// Every event published so far (the receiver is left empty).
fn drain(rx: &mut Events) -> Vec<(String, String, Value)> {
    let mut seen = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        seen.push((ev.name.clone(), ev.routing_key.clone(), ev.data.clone()));
    }
    seen
}

fn named<'a>(events: &'a [(String, String, Value)], name: &str) -> Vec<&'a (String, String, Value)> {
    events.iter().filter(|e| e.0 == name).collect()
}

/// An internal context `name` with user extensions `start`..`end`.
async fn context(s: &TestServer, t: &str, name: &str, start: &str, end: &str) {
    created(
        s,
        t,
        "/contexts",
        json!({"name": name, "label": name, "type": "internal",
               "user_ranges": [{"start": start, "end": end}]}),
    )
    .await;
}

/// A line of `context` with a SIP endpoint `sip_name` and extension `exten`
/// (upstream's order: line, endpoint, line↔endpoint, extension, line↔extension).
/// Returns `(line id, extension id, endpoint uuid)`.
async fn sip_line(
    s: &TestServer,
    t: &str,
    context: &str,
    sip_name: &str,
    exten: Option<&str>,
) -> (i64, Option<i64>, String) {
    let line = created(s, t, "/lines", json!({"context": context})).await["id"]
        .as_i64()
        .expect("line id");
    let sip = created(
        s,
        t,
        "/endpoints/sip",
        json!({"name": sip_name, "auth_section_options": [["username", sip_name], ["password", PASSWORD]]}),
    )
    .await;
    let sip_uuid = sip["uuid"].as_str().expect("uuid").to_string();
    no_content(
        s,
        Method::PUT,
        t,
        &format!("/lines/{line}/endpoints/sip/{sip_uuid}"),
        None,
    )
    .await;
    let mut ext_id = None;
    if let Some(exten) = exten {
        let ext = created(s, t, "/extensions", json!({"exten": exten, "context": context})).await["id"]
            .as_i64()
            .expect("extension id");
        no_content(s, Method::PUT, t, &format!("/lines/{line}/extensions/{ext}"), None).await;
        ext_id = Some(ext);
    }
    (line, ext_id, sip_uuid)
}

async fn user(s: &TestServer, t: &str, firstname: &str) -> (i64, String) {
    let u = created(s, t, "/users", json!({"firstname": firstname})).await;
    (
        u["id"].as_i64().expect("id"),
        u["uuid"].as_str().expect("uuid").to_string(),
    )
}

/// `(user_uuid, user_name, tenant_uuid)` of the `calllog_line` row of `identity`.
async fn calllog_user(s: &TestServer, identity: &str) -> Option<(Option<String>, Option<String>, Option<String>)> {
    let identity = identity.to_string();
    s.app()
        .store
        .read(move |c| {
            use rusqlite::OptionalExtension;
            Ok::<_, accentd::api::error::ApiError>(
                c.query_row(
                    "SELECT user_uuid, user_name, tenant_uuid FROM calllog_line WHERE identity = ?1",
                    [identity],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?,
            )
        })
        .await
        .expect("calllog_line")
}

async fn count(s: &TestServer, t: &str, path: &str) -> i64 {
    get(s, t, path).await["total"].as_i64().expect("total")
}

#[tokio::test]
async fn provisioning_order_shows_the_lines_and_feeds_call_logd() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    context(&s, &t, "default", "1000", "1999").await;
    let mut bus = s.app().bus.subscribe();

    // Upstream's order: user, line, SIP endpoint, extension, the associations, voicemail.
    let (uid, uuid) = user(&s, &t, "Alice").await;
    let (line, ext, sip_uuid) = sip_line(&s, &t, "default", "alice-sip", Some("1000")).await;
    let ext = ext.expect("extension");
    drain(&mut bus);
    // Both spellings of the user: id here, uuid below.
    no_content(&s, Method::PUT, &t, &format!("/users/{uid}/lines/{line}"), None).await;
    created(
        &s,
        &t,
        &format!("/users/{uuid}/voicemails"),
        json!({"name": "Alice", "number": "1000", "context": "default"}),
    )
    .await;

    let events = drain(&mut bus);
    let assoc = named(&events, "user_line_associated");
    assert_eq!(assoc.len(), 1, "{events:?}");
    let (_, rk, data) = assoc[0];
    assert_eq!(rk, &format!("config.users.{uuid}.lines.{line}.updated"));
    assert_eq!(
        data["user"],
        json!({"id": uid, "uuid": uuid, "tenant_uuid": data["tenant_uuid"]})
    );
    assert_eq!(data["line"]["id"], json!(line));
    assert_eq!(data["line"]["name"], json!("alice-sip"));
    assert_eq!(data["line"]["endpoint_sip"], json!({"uuid": sip_uuid}));
    assert_eq!(
        (data["main_user"].clone(), data["main_line"].clone()),
        (json!(true), json!(true))
    );
    assert!(data["tenant_uuid"].is_string(), "{data}");

    // The user shows the line (upstream's summary), the line shows the user.
    let u = get(&s, &t, &format!("/users/{uuid}")).await;
    let lines = u["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "{u}");
    let l0 = &lines[0];
    assert_eq!(
        (l0["id"].clone(), l0["name"].clone()),
        (json!(line), json!("alice-sip"))
    );
    assert_eq!(
        (
            l0["endpoint_sip"]["uuid"].clone(),
            l0["endpoint_sip"]["auth_section_options"].clone()
        ),
        (json!(sip_uuid), json!([["username", "alice-sip"]]))
    );
    assert_eq!(
        (l0["endpoint_sccp"].clone(), l0["endpoint_custom"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        l0["extensions"],
        json!([{"id": ext, "exten": "1000", "context": "default"}])
    );
    assert!(u["voicemail"].is_object(), "{u}");
    assert!(!u.to_string().contains(PASSWORD), "no secret in {u}");
    let l = get(&s, &t, &format!("/lines/{line}")).await;
    assert_eq!(
        l["users"],
        json!([{"uuid": uuid, "firstname": "Alice", "lastname": null}])
    );
    let list = get(&s, &t, "/users").await;
    assert_eq!(list["items"][0]["lines"][0]["id"], json!(line));

    // The same association again changes nothing and says nothing.
    no_content(&s, Method::PUT, &t, &format!("/users/{uuid}/lines/{line}"), None).await;
    assert!(named(&drain(&mut bus), "user_line_associated").is_empty());

    // call-logd resolves the line to the user, and follows a rename.
    let row = calllog_user(&s, "pjsip/alice-sip").await.expect("row");
    assert_eq!(
        (row.0.as_deref(), row.1.as_deref()),
        (Some(uuid.as_str()), Some("Alice"))
    );
    assert_eq!(row.2, u["tenant_uuid"].as_str().map(str::to_owned));
    no_content(
        &s,
        Method::PUT,
        &t,
        &format!("/users/{uuid}"),
        Some(json!({"firstname": "Alicia", "lastname": "Smith"})),
    )
    .await;
    let row = calllog_user(&s, "pjsip/alice-sip").await.expect("row");
    assert_eq!(row.1.as_deref(), Some("Alicia Smith"));

    // The line's endpoint stays while it has a user; the line cannot be deleted.
    let (code, body) = s
        .call(
            Method::DELETE,
            &format!("{C}/lines/{line}/endpoints/sip/{sip_uuid}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "User");
    let (code, body) = s.delete(&format!("{C}/lines/{line}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");

    // Dissociation: event, relations emptied, call-logd no longer names the user.
    no_content(&s, Method::DELETE, &t, &format!("/users/{uuid}/lines/{line}"), None).await;
    let events = drain(&mut bus);
    let gone = named(&events, "user_line_dissociated");
    assert_eq!(gone.len(), 1, "{events:?}");
    assert_eq!(gone[0].1, format!("config.users.{uuid}.lines.{line}.deleted"));
    assert_eq!(get(&s, &t, &format!("/users/{uuid}")).await["lines"], json!([]));
    assert_eq!(get(&s, &t, &format!("/lines/{line}")).await["users"], json!([]));
    let row = calllog_user(&s, "pjsip/alice-sip").await.expect("row");
    assert_eq!((row.0, row.1), (None, None));
    // Not associated: nothing to do (upstream answers 204).
    no_content(&s, Method::DELETE, &t, &format!("/users/{uuid}/lines/{line}"), None).await;
    // (Presences may follow the earlier change; confd publishes nothing more.)
    assert!(named(&drain(&mut bus), "user_line_dissociated").is_empty());

    // A user with a line is deleted only recursively, which takes the line
    // and its extension along.
    no_content(&s, Method::PUT, &t, &format!("/users/{uuid}/lines/{line}"), None).await;
    no_content(&s, Method::DELETE, &t, &format!("/users/{uuid}/voicemails"), None).await;
    let (code, body) = s.delete(&format!("{C}/users/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "Line");
    drain(&mut bus);
    no_content(&s, Method::DELETE, &t, &format!("/users/{uuid}?recursive=true"), None).await;
    let (code, _) = s.get(&format!("{C}/lines/{line}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.get(&format!("{C}/extensions/{ext}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(calllog_user(&s, "pjsip/alice-sip").await.is_none());
    let events = drain(&mut bus);
    for name in [
        "user_line_dissociated",
        "line_deleted",
        "extension_deleted",
        "user_deleted",
    ] {
        assert_eq!(named(&events, name).len(), 1, "{name} in {events:?}");
    }

    // The reloads wait (no Asterisk here): dialplan and pjsip.
    let pending = s.app().confd.reloader.pending();
    assert!(
        pending.contains(&Reload::Pjsip) && pending.contains(&Reload::Dialplan),
        "{pending:?}"
    );
}

#[tokio::test]
async fn ordered_lists_main_lines_shared_lines_and_extensions() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    context(&s, &t, "default", "1000", "1999").await;
    let (_, alice) = user(&s, &t, "Alice").await;
    let (bob_id, bob) = user(&s, &t, "Bob").await;
    let (l1, x1, _) = sip_line(&s, &t, "default", "l1", Some("1001")).await;
    let x1 = x1.expect("extension");
    let (l2, _, _) = sip_line(&s, &t, "default", "l2", None).await;
    let (l3, _, _) = sip_line(&s, &t, "default", "l3", None).await;
    let (l4, _, _) = sip_line(&s, &t, "default", "l4", None).await;
    let mut bus = s.app().bus.subscribe();

    // The whole list, in order: the first is the main line.
    let body = json!({"lines": [{"id": l2}, {"id": l1, "name": "ignored"}]});
    no_content(&s, Method::PUT, &t, &format!("/users/{alice}/lines"), Some(body)).await;
    let ids = |u: &Value| -> Vec<i64> {
        u["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .filter_map(|l| l["id"].as_i64())
            .collect()
    };
    assert_eq!(ids(&get(&s, &t, &format!("/users/{alice}")).await), vec![l2, l1]);
    let events = drain(&mut bus);
    let assoc = named(&events, "user_line_associated");
    let mains: Vec<(Value, Value)> = assoc
        .iter()
        .map(|e| (e.2["line"]["id"].clone(), e.2["main_line"].clone()))
        .collect();
    assert_eq!(mains, vec![(json!(l2), json!(true)), (json!(l1), json!(false))]);

    // Reordered and shortened (the bare list is accepted too).
    no_content(
        &s,
        Method::PUT,
        &t,
        &format!("/users/{alice}/lines"),
        Some(json!([{"id": l1}])),
    )
    .await;
    assert_eq!(ids(&get(&s, &t, &format!("/users/{alice}")).await), vec![l1]);
    let events = drain(&mut bus);
    assert_eq!(named(&events, "user_line_dissociated").len(), 1, "{events:?}");
    assert_eq!(named(&events, "user_line_dissociated")[0].2["line"]["id"], json!(l2));
    // A single PUT goes after the user's other lines.
    no_content(&s, Method::PUT, &t, &format!("/users/{alice}/lines/{l2}"), None).await;
    assert_eq!(ids(&get(&s, &t, &format!("/users/{alice}")).await), vec![l1, l2]);
    let events = drain(&mut bus);
    assert_eq!(named(&events, "user_line_associated")[0].2["main_line"], json!(false));

    // A line shared by two users: the first stays its main user.
    no_content(&s, Method::PUT, &t, &format!("/users/{bob_id}/lines/{l1}"), None).await;
    let events = drain(&mut bus);
    let data = &named(&events, "user_line_associated")[0].2;
    assert_eq!(
        (data["main_user"].clone(), data["main_line"].clone()),
        (json!(false), json!(true))
    );
    let users: Vec<Value> = get(&s, &t, &format!("/lines/{l1}")).await["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["uuid"].clone())
        .collect();
    assert_eq!(users, vec![json!(alice), json!(bob)]);
    // call-logd still names the main user.
    assert_eq!(
        calllog_user(&s, "pjsip/l1").await.expect("row").0.as_deref(),
        Some(alice.as_str())
    );
    // The main user cannot leave while others remain, also through the list.
    for (method, path, body) in [
        (Method::DELETE, format!("/users/{alice}/lines/{l1}"), None),
        (
            Method::PUT,
            format!("/users/{alice}/lines"),
            Some(json!({"lines": [{"id": l2}]})),
        ),
    ] {
        let (code, resp) = s.call(method, &format!("{C}{path}"), Some(&t), body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path}: {resp}");
        assert_confd_error(&resp, "secondary users");
    }
    no_content(&s, Method::DELETE, &t, &format!("/users/{bob}/lines/{l1}"), None).await;

    // One user's lines may share an extension; other users' lines or lines
    // without users may not.
    no_content(&s, Method::PUT, &t, &format!("/lines/{l2}/extensions/{x1}"), None).await;
    no_content(&s, Method::PUT, &t, &format!("/users/{bob}/lines/{l3}"), None).await;
    for l in [l3, l4] {
        let (code, resp) = s
            .call(Method::PUT, &format!("{C}/lines/{l}/extensions/{x1}"), Some(&t), None)
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "line {l}: {resp}");
        assert_confd_error(&resp, "already associated with a Line");
    }
    // No second user behind an extension several lines share.
    let (code, resp) = s
        .call(Method::PUT, &format!("{C}/users/{bob}/lines/{l2}"), Some(&t), None)
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{resp}");
    assert_confd_error(&resp, "shared");

    // A line on a device keeps its users.
    let dev = created(&s, &t, "/devices", json!({})).await["id"]
        .as_str()
        .expect("device")
        .to_string();
    no_content(&s, Method::PUT, &t, &format!("/lines/{l1}/devices/{dev}"), None).await;
    let (code, resp) = s
        .call(Method::DELETE, &format!("{C}/users/{alice}/lines/{l1}"), Some(&t), None)
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{resp}");
    assert_confd_error(&resp, "Device");

    // The SIP endpoint of a user's line, and of the main line.
    let main = get(&s, &t, &format!("/users/{alice}/lines/main/associated/endpoints/sip")).await;
    assert_eq!(main["name"], json!("l1"));
    let second = get(&s, &t, &format!("/users/{alice}/lines/{l2}/associated/endpoints/sip")).await;
    assert_eq!(second["name"], json!("l2"));
    for path in [
        format!("/users/{alice}/lines/{l3}/associated/endpoints/sip"),
        format!("/users/{alice}/lines/nope/associated/endpoints/sip"),
    ] {
        let (code, _) = s.get(&format!("{C}{path}"), &t).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
    }
    let (code, resp) = s
        .get(
            &format!("{C}/users/{alice}/lines/main/associated/endpoints/sip?view=nope"),
            &t,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{resp}");
}

#[tokio::test]
async fn bad_inputs_unknown_ids_and_tenants() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    context(&s, &t, "default", "1000", "1999").await;
    let (uid, uuid) = user(&s, &t, "Alice").await;
    let (line, _, _) = sip_line(&s, &t, "default", "alice", Some("1000")).await;
    let bare = created(&s, &t, "/lines", json!({"context": "default"})).await["id"]
        .as_i64()
        .expect("id");

    // A line of another tenant (visible to the master admin) is refused.
    let (_, other) = s.post("/tenants", &t, json!({"name": "other", "slug": "other"})).await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    let in_other = |method: Method, path: &str, body: Value| {
        let (s, t, other, path) = (&s, t.clone(), other.clone(), format!("{C}{path}"));
        async move {
            let (code, obj) = s
                .call_with_headers(
                    method,
                    &path,
                    Some(&t),
                    Some(body),
                    &[("Accent-Tenant", other.as_str())],
                )
                .await;
            assert!(code.is_success(), "{path}: {obj}");
            obj
        }
    };
    in_other(
        Method::POST,
        "/contexts",
        json!({"name": "other-ctx", "label": "o", "type": "internal",
               "user_ranges": [{"start": "1000", "end": "1999"}]}),
    )
    .await;
    let foreign = in_other(Method::POST, "/lines", json!({"context": "other-ctx"})).await["id"]
        .as_i64()
        .expect("id");
    let sip = in_other(Method::POST, "/endpoints/sip", json!({"name": "foreign"})).await["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    in_other(Method::PUT, &format!("/lines/{foreign}/endpoints/sip/{sip}"), json!({})).await;

    let cases: Vec<(Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::PUT,
            format!("/users/999/lines/{line}"),
            None,
            StatusCode::NOT_FOUND,
            "User",
        ),
        (
            Method::PUT,
            format!("/users/00000000-0000-4000-8000-000000000000/lines/{line}"),
            None,
            StatusCode::NOT_FOUND,
            "User",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines/999"),
            None,
            StatusCode::NOT_FOUND,
            "Line",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines/abc"),
            None,
            StatusCode::NOT_FOUND,
            "Line",
        ),
        (
            Method::DELETE,
            format!("/users/{uid}/lines/999"),
            None,
            StatusCode::NOT_FOUND,
            "Line",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines/{bare}"),
            None,
            StatusCode::BAD_REQUEST,
            "endpoint",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines/{foreign}"),
            None,
            StatusCode::BAD_REQUEST,
            "same tenant",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "lines",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!({"lines": "x"})),
            StatusCode::BAD_REQUEST,
            "lines",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!({"lines": [{"id": "a"}]})),
            StatusCode::BAD_REQUEST,
            "lines[0].id",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!({"lines": [{}]})),
            StatusCode::BAD_REQUEST,
            "id",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!({"lines": [{"id": 999}]})),
            StatusCode::BAD_REQUEST,
            "lines",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!({"lines": [{"id": line}, {"id": line}]})),
            StatusCode::BAD_REQUEST,
            "more than once",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!({"lines": [{"id": bare}]})),
            StatusCode::BAD_REQUEST,
            "endpoint",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!("lines")),
            StatusCode::BAD_REQUEST,
            "expected an object",
        ),
        (
            Method::PUT,
            format!("/users/{uid}/lines"),
            Some(json!(null)),
            StatusCode::BAD_REQUEST,
            "expected an object",
        ),
        (
            Method::PUT,
            "/users/999/lines".to_string(),
            Some(json!({"lines": []})),
            StatusCode::NOT_FOUND,
            "User",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let (code, resp) = s
            .call(method.clone(), &format!("{C}{path}"), Some(&t), body.clone())
            .await;
        assert_eq!(code, status, "{method} {path} {body:?}: {resp}");
        assert_confd_error(&resp, needle);
    }
    // Nothing was associated by the failures; the empty list is fine.
    assert_eq!(get(&s, &t, &format!("/users/{uuid}")).await["lines"], json!([]));
    no_content(
        &s,
        Method::PUT,
        &t,
        &format!("/users/{uid}/lines"),
        Some(json!({"lines": []})),
    )
    .await;

    // The other tenant's admin sees neither the user nor the line.
    let (code, _) = s
        .call_with_headers(
            Method::PUT,
            &format!("{C}/users/{uuid}/lines/{foreign}"),
            Some(&t),
            None,
            &[("Accent-Tenant", other.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nested_lines_in_post_users_all_or_nothing() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    context(&s, &t, "default", "1000", "1999").await;
    let (existing, _, _) = sip_line(&s, &t, "default", "spare", None).await;
    let mut bus = s.app().bus.subscribe();

    let u = created(
        &s,
        &t,
        "/users",
        json!({
            "firstname": "Bob",
            "auth": {"username": "bob", "password": PASSWORD},
            "lines": [
                {"context": "default", "caller_id_name": "Bob",
                 "endpoint_sip": {"name": "bob-sip", "auth_section_options": [["username", "bob"], ["password", PASSWORD]]},
                 "extensions": [{"exten": "1001", "context": "default"}]},
                {"id": existing},
            ],
        }),
    )
    .await;
    let uuid = u["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(u["lines"][0]["name"], json!("bob-sip"));
    assert_eq!(u["lines"][0]["extensions"][0]["exten"], json!("1001"));
    assert_eq!(u["lines"][1]["id"], json!(existing));
    let line = u["lines"][0]["id"].as_i64().expect("line");
    let l = get(&s, &t, &format!("/lines/{line}")).await;
    assert_eq!(l["users"][0]["uuid"], json!(uuid));
    assert_eq!(l["caller_id_name"], json!("Bob"));
    let events = drain(&mut bus);
    for (name, n) in [
        ("user_created", 1),
        ("line_created", 1),
        ("sip_endpoint_created", 1),
        ("extension_created", 1),
        ("line_endpoint_sip_associated", 1),
        ("line_extension_associated", 1),
        ("user_line_associated", 2),
    ] {
        assert_eq!(named(&events, name).len(), n, "{name} in {events:?}");
    }
    assert!(!format!("{events:?}").contains(PASSWORD));
    assert_eq!(
        calllog_user(&s, "pjsip/bob-sip").await.expect("row").0.as_deref(),
        Some(uuid.as_str())
    );
    // The user can read itself through `me`, lines included.
    let me = s.login("bob", PASSWORD).await;
    let mine = get(&s, &me, "/users/me").await;
    assert_eq!(
        (mine["uuid"].clone(), mine["lines"][0]["id"].clone()),
        (json!(uuid), json!(line))
    );

    // Any bad part refuses the whole body, naming the field, and leaves nothing behind.
    let before: Vec<i64> = counts(&s, &t).await;
    let bad = [
        (json!({"firstname": "C", "lines": "x"}), "lines"),
        (json!({"firstname": "C", "lines": ["x"]}), "lines[0]"),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "bogus": 1}]}),
            "lines[0].bogus",
        ),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "endpoint_sip": {"bogus": 1}}]}),
            "lines[0].endpoint_sip.bogus",
        ),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "endpoint_sip": {}, "endpoint_sccp": {}}]}),
            "one endpoint",
        ),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "extensions": "x"}]}),
            "lines[0].extensions",
        ),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "extensions": [{"exten": 5}]}]}),
            "lines[0].extensions[0].exten",
        ),
        (json!({"firstname": "C", "lines": [{"id": "x"}]}), "lines[0].id"),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "device_id": "abc"}]}),
            "lines[0].device_id",
        ),
        // Checked in the transaction, after the user and earlier parts were written:
        (
            json!({"firstname": "C", "lines": [{"context": "nowhere"}]}),
            "lines[0].context",
        ),
        (json!({"firstname": "C", "lines": [{"id": 999}]}), "lines[0].id"),
        (
            json!({"firstname": "C", "lines": [
                {"context": "default", "endpoint_sip": {"name": "c-sip"}, "extensions": [{"exten": "1002", "context": "default"}]},
                {"context": "default", "endpoint_sip": {"name": "c2-sip"}, "extensions": [{"exten": "5000", "context": "default"}]},
            ]}),
            "outside of range",
        ),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "extensions": [{"exten": "1003", "context": "default"}]}]}),
            "endpoint",
        ),
        (
            json!({"firstname": "C", "lines": [{"context": "default", "endpoint_sip": {"name": "bob-sip"}}]}),
            "already exists",
        ),
    ];
    for (body, needle) in bad {
        let (code, resp) = s.post(&format!("{C}/users"), &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_confd_error(&resp, needle);
        assert_eq!(counts(&s, &t).await, before, "nothing left by {body}");
    }
}

/// Users, lines, SIP endpoints, extensions.
async fn counts(s: &TestServer, t: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for path in ["/users", "/lines", "/endpoints/sip", "/extensions"] {
        out.push(count(s, t, path).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_line_changes_reload_the_dialplan_and_pjsip() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with(
        "Command",
        Some(vec![accentd::ami::frame::AmiMessage::new()
            .with("Response", "Success")
            .with("Message", "Command output follows")
            .with("Output", "")]),
    );
    let addr = fake.addr().to_string();
    let s = TestServer::start_with(|c| {
        c.ami.addr = addr;
        c.ami.user = "accent".into();
        c.ami.password = "accent".into();
    })
    .await;
    let t = s.admin_token.clone();
    wait_for("AMI up", || s.app().ami.as_ref().is_some_and(|a| a.is_connected())).await;
    context(&s, &t, "default", "1000", "1999").await;
    let (_, uuid) = user(&s, &t, "Alice").await;
    let (line, _, _) = sip_line(&s, &t, "default", "alice", Some("1000")).await;
    wait_for("provisioning reloads sent", || {
        s.app().confd.reloader.pending().is_empty() && !commands(&fake).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for method in [Method::PUT, Method::DELETE] {
        let before = commands(&fake).len();
        no_content(&s, method, &t, &format!("/users/{uuid}/lines/{line}"), None).await;
        wait_for("user↔line reloads", || {
            let sent = commands(&fake);
            let new = &sent[before.min(sent.len())..];
            new.iter().any(|c| c == "dialplan reload") && new.iter().any(|c| c == "module reload res_pjsip.so")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // A no-op association asks for nothing.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let settled = commands(&fake).len();
    no_content(&s, Method::DELETE, &t, &format!("/users/{uuid}/lines/{line}"), None).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(commands(&fake).len(), settled);
}

/// A call recorded on a real Asterisk (PJSIP/2001 calls 2002, answered): once the
/// two users and their lines are provisioned over REST, the call log generated
/// from its CELs names them.
#[tokio::test]
async fn call_logs_from_cels_name_the_users_provisioned_over_rest() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    context(&s, &t, "from-internal", "2000", "2099").await;
    let mut users = Vec::new();
    for (name, exten) in [("Alice", "2001"), ("Bob", "2002")] {
        let (_, uuid) = user(&s, &t, name).await;
        let (line, _, _) = sip_line(&s, &t, "from-internal", exten, Some(exten)).await;
        no_content(&s, Method::PUT, &t, &format!("/users/{uuid}/lines/{line}"), None).await;
        users.push(uuid);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures");
    let scenario = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("21-")))
        .expect("scenario 21");
    let rows: Vec<accentd::cel::Cel> = accentd::cel::open_file(&scenario.join("cel.csv"))
        .expect("cel.csv")
        .map(|r| r.expect("row"))
        .collect();
    let outcome = s.app().calllog.generate_rows(rows).await.expect("generate");
    assert_eq!(outcome.logs.len(), 1, "{:?}", outcome.failed);
    let log = &outcome.logs[0];
    // The participants resolved through their lines (the recording's dialplan
    // also names the user it dialled, with that system's own uuid).
    let mut found: Vec<String> = log
        .participants
        .iter()
        .filter(|p| p.line_id.is_some())
        .map(|p| p.user_uuid.to_string())
        .collect();
    found.sort();
    users.sort();
    assert_eq!(found, users, "{log:?}");
    let tenant = get(&s, &t, &format!("/users/{}", users[0])).await["tenant_uuid"].clone();
    assert_eq!(json!(log.tenant_uuid.to_string()), tenant);
    assert_eq!(
        (log.source_name.as_str(), log.source_line_identity.as_deref()),
        ("Alice", Some("pjsip/2001"))
    );
}
