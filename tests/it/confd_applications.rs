//! confd `/applications` over HTTP: CRUD by uuid with the node destination and
//! its options as upstream validates them, the events, tenants, ACLs, bad
//! bodies, and the line association (`PUT/DELETE /lines/{id}/applications/{uuid}`).

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";

async fn create(s: &TestServer, t: &str, body: Value) -> Value {
    let (code, obj) = s.post(&format!("{C}/applications"), t, body.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "POST {body}: {obj}");
    obj
}

fn drain(
    bus: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<accentd::bus::Event>>,
) -> Vec<std::sync::Arc<accentd::bus::Event>> {
    std::iter::from_fn(|| bus.try_recv().ok()).collect()
}

#[tokio::test]
async fn applications_crud_with_events() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let tenant = s.master_tenant().await;
    let mut bus = s.app().bus.subscribe();

    let app = create(
        &s,
        &t,
        json!({"name": "ivr", "destination": "node",
               "destination_options": {"type": "holding", "music_on_hold": "default", "answer": true}}),
    )
    .await;
    let uuid = app["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(
        app,
        json!({"uuid": uuid, "tenant_uuid": tenant, "name": "ivr", "destination": "node",
               "destination_options": {"type": "holding", "music_on_hold": "default", "answer": true},
               "lines": []})
    );
    let plain = create(&s, &t, json!({})).await;
    assert_eq!(plain["destination"], Value::Null);
    assert_eq!(plain["destination_options"], json!({}));
    assert_eq!(plain["name"], Value::Null);

    let (code, got) = s.get(&format!("{C}/applications/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(got, app);
    let (_, list) = s.get(&format!("{C}/applications?search=iv"), &t).await;
    assert_eq!(list["total"], json!(1), "{list}");
    assert_eq!(list["items"][0]["uuid"], json!(uuid));

    // Partial PUT: the options stay; dropping the destination drops them.
    let (code, body) = s
        .put(&format!("{C}/applications/{uuid}"), &t, json!({"name": "ivr2"}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (_, got) = s.get(&format!("{C}/applications/{uuid}"), &t).await;
    assert_eq!(got["name"], json!("ivr2"));
    assert_eq!(got["destination_options"]["answer"], json!(true));
    let (code, _) = s
        .put(&format!("{C}/applications/{uuid}"), &t, json!({"destination": null}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/applications/{uuid}"), &t).await;
    assert_eq!(got["destination"], Value::Null);
    assert_eq!(got["destination_options"], json!({}));

    let (code, _) = s.delete(&format!("{C}/applications/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, body) = s.get(&format!("{C}/applications/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");

    let events = drain(&mut bus);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "application_created",
            "application_created",
            "application_edited",
            "application_edited",
            "application_deleted"
        ]
    );
    let first = &events[0];
    assert_eq!(first.routing_key, "config.applications.created");
    assert_eq!(first.tenant_uuid.map(|u| u.to_string()), Some(tenant.clone()));
    // The object without its lines, as upstream's notifier sends it.
    assert_eq!(
        first.data,
        json!({"uuid": uuid, "tenant_uuid": tenant, "name": "ivr", "destination": "node",
               "destination_options": {"type": "holding", "music_on_hold": "default", "answer": true}})
    );
    assert_eq!(events[4].routing_key, "config.applications.deleted");
    assert_eq!(events[4].data["uuid"], json!(uuid));
}

#[tokio::test]
async fn bad_bodies_tenants_and_acls() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let app = create(&s, &t, json!({"name": "a"})).await;
    let uuid = app["uuid"].as_str().expect("uuid").to_string();

    for (body, field) in [
        (json!({"destination": "queue"}), "destination"),
        (json!({"destination": "node"}), "destination_options.type"),
        (json!({"destination": "node", "destination_options": {}}), "type"),
        (
            json!({"destination": "node", "destination_options": {"type": "parking"}}),
            "type",
        ),
        (
            json!({"destination": "node", "destination_options": {"type": "mixing", "answer": "yes"}}),
            "answer",
        ),
        (
            json!({"destination": "node", "destination_options": {"type": "mixing", "loud": true}}),
            "loud",
        ),
        (
            json!({"destination": "node", "destination_options": {"type": "holding", "music_on_hold": "a;b"}}),
            "music_on_hold",
        ),
        (json!({"name": "x".repeat(129)}), "name"),
        (json!({"name": 12}), "name"),
        (json!({"color": "red"}), "color"),
        (json!([1]), "object"),
    ] {
        for (method, path) in [
            (Method::POST, format!("{C}/applications")),
            (Method::PUT, format!("{C}/applications/{uuid}")),
        ] {
            let (code, err) = s.call(method.clone(), &path, Some(&t), Some(body.clone())).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{method} {body}: {err}");
            assert!(err.to_string().contains(field), "{field} in {err}");
        }
    }
    let (code, _) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/applications"),
            Some(&t),
            None,
            &[("Content-Type", "application/json")],
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    // Both node types are accepted.
    for kind in ["holding", "mixing"] {
        let obj = create(
            &s,
            &t,
            json!({"destination": "node", "destination_options": {"type": kind}}),
        )
        .await;
        assert_eq!(
            obj["destination_options"],
            json!({"type": kind, "music_on_hold": null, "answer": false})
        );
    }

    // Another tenant sees nothing of it.
    let (_, other) = s.post("/tenants", &t, json!({"name": "tenant b", "slug": "tb"})).await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    let h = [("Accent-Tenant", other.as_str())];
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let (code, _) = s
            .call_with_headers(
                method.clone(),
                &format!("{C}/applications/{uuid}"),
                Some(&t),
                Some(json!({})),
                &h,
            )
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{method}");
    }
    let (_, list) = s
        .call_with_headers(Method::GET, &format!("{C}/applications"), Some(&t), None, &h)
        .await;
    assert_eq!(list["total"], json!(0), "{list}");

    // Without confd ACLs: 401 everywhere.
    s.create_user_sql(&other, "mallory", "pw-mallory").await;
    let tok = s.login("mallory", "pw-mallory").await;
    for (method, path) in [
        (Method::GET, "/applications".to_string()),
        (Method::POST, "/applications".to_string()),
        (Method::GET, format!("/applications/{uuid}")),
        (Method::PUT, format!("/applications/{uuid}")),
        (Method::DELETE, format!("/applications/{uuid}")),
        (Method::PUT, format!("/lines/1/applications/{uuid}")),
    ] {
        let (code, _) = s
            .call(method.clone(), &format!("{C}{path}"), Some(&tok), Some(json!({})))
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test]
async fn lines_enter_one_application() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let (code, ctx) = s
        .post(
            &format!("{C}/contexts"),
            &t,
            json!({"name": "default", "label": "D", "type": "internal",
                   "user_ranges": [{"start": "1000", "end": "1999"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ctx}");
    let (code, line) = s.post(&format!("{C}/lines"), &t, json!({"context": "default"})).await;
    assert_eq!(code, StatusCode::CREATED, "{line}");
    let line_id = line["id"].as_i64().expect("line");
    let app = create(&s, &t, json!({"name": "a"})).await["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    let app2 = create(&s, &t, json!({"name": "b"})).await["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    let mut bus = s.app().bus.subscribe();

    let path = format!("{C}/lines/{line_id}/applications/{app}");
    let (code, body) = s.call(Method::PUT, &path, Some(&t), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    // Twice is once.
    let (code, _) = s.call(Method::PUT, &path, Some(&t), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/applications/{app}"), &t).await;
    assert_eq!(got["lines"], json!([{"id": line_id, "name": line["name"]}]));
    let (_, got) = s.get(&format!("{C}/lines/{line_id}"), &t).await;
    assert_eq!(got["application"], json!({"uuid": app}));
    // One application per line.
    let (code, err) = s
        .call(
            Method::PUT,
            &format!("{C}/lines/{line_id}/applications/{app2}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
    // Unknown ones.
    for bad in [
        format!("{C}/lines/{line_id}/applications/{}", uuid::Uuid::new_v4()),
        format!("{C}/lines/{line_id}/applications/1"),
        format!("{C}/lines/999/applications/{app}"),
    ] {
        let (code, _) = s.call(Method::PUT, &bad, Some(&t), None).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{bad}");
    }

    let (code, _) = s.delete(&path, &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = s.delete(&path, &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (_, got) = s.get(&format!("{C}/lines/{line_id}"), &t).await;
    assert_eq!(got["application"], Value::Null);

    let events = drain(&mut bus);
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.name.as_str(), e.routing_key.as_str()))
        .collect();
    let updated = format!("config.lines.{line_id}.applications.{app}.updated");
    let deleted = format!("config.lines.{line_id}.applications.{app}.deleted");
    assert_eq!(
        seen,
        [
            ("line_application_associated", updated.as_str()),
            ("line_application_dissociated", deleted.as_str())
        ]
    );
    assert_eq!(events[0].data["line"]["id"], json!(line_id));
    assert_eq!(events[0].data["application"], json!({"uuid": app}));

    // Deleting the application frees the line.
    let (code, _) = s.call(Method::PUT, &path, Some(&t), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = s.delete(&format!("{C}/applications/{app}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/lines/{line_id}"), &t).await;
    assert_eq!(got["application"], Value::Null);
}
