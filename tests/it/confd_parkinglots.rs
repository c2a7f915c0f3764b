//! confd parking lots over HTTP: CRUD with upstream's defaults and checks, the
//! extension association (internal context, slots clear of the context's other
//! extensions and of other lots), extensions refused inside a lot's slots,
//! tenants, ACLs, events, res_parking.conf and its reload seen by the fake AMI.

use std::time::Duration;

use crate::common::{command_success, commands, wait_for, TestServer};
use accentd::confd::render;
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions};
use accentd::fake_asterisk::scenario::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";

fn assert_confd_error(body: &Value, needle: &str) {
    let items = body.as_array().unwrap_or_else(|| panic!("array body: {body}"));
    assert!(!items.is_empty() && items.iter().all(Value::is_string), "{body}");
    assert!(body.to_string().contains(needle), "{needle:?} in {body}");
}

async fn created(s: &TestServer, path: &str, body: Value) -> Value {
    let (code, obj) = s.post(&format!("{C}{path}"), &s.admin_token, body.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "POST {path} {body}: {obj}");
    obj
}

async fn call(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    s.call(method, &format!("{C}{path}"), Some(&s.admin_token), body).await
}

async fn no_content(s: &TestServer, method: Method, path: &str, body: Option<Value>) {
    let (code, resp) = call(s, method.clone(), path, body).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{method} {path}: {resp}");
}

async fn refused(s: &TestServer, method: Method, path: &str, body: Option<Value>, needle: &str) {
    let (code, resp) = call(s, method.clone(), path, body).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{method} {path}: {resp}");
    assert_confd_error(&resp, needle);
}

/// `default` (internal, users 1000-1999) and `from-extern` (incall).
async fn contexts(s: &TestServer) {
    created(
        s,
        "/contexts",
        json!({"name": "default", "label": "Default", "type": "internal",
               "user_ranges": [{"start": "1000", "end": "1999"}]}),
    )
    .await;
    created(
        s,
        "/contexts",
        json!({"name": "from-extern", "label": "In", "type": "incall",
               "incall_ranges": [{"start": "0123456000", "end": "0123456099"}]}),
    )
    .await;
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("id in {v}"))
}

#[tokio::test]
async fn parking_lots_crud_association_and_events() {
    let s = TestServer::start().await;
    let mut bus = s.app().bus.subscribe();
    contexts(&s).await;

    // Upstream's defaults.
    let lot = created(&s, "/parkinglots", json!({"slots_start": "1501", "slots_end": "1510"})).await;
    let lot_id = id(&lot);
    assert_eq!(
        lot,
        json!({"id": lot_id, "tenant_uuid": s.master_tenant().await, "name": null,
               "slots_start": "1501", "slots_end": "1510", "timeout": 45,
               "music_on_hold": "default", "extensions": []})
    );
    let (code, list) = call(&s, Method::GET, "/parkinglots?search=1501", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], lot_id);

    // Partial PUT.
    no_content(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot_id}"),
        Some(json!({"name": "Sales", "timeout": null, "music_on_hold": "jazz"})),
    )
    .await;
    let (_, lot) = call(&s, Method::GET, &format!("/parkinglots/{lot_id}"), None).await;
    assert_eq!(lot["name"], "Sales");
    assert_eq!(lot["timeout"], Value::Null);
    assert_eq!(lot["music_on_hold"], "jazz");
    assert_eq!(lot["slots_start"], "1501");

    // The parking extension.
    let park = created(&s, "/extensions", json!({"exten": "1500", "context": "default"})).await;
    let park_id = id(&park);
    no_content(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot_id}/extensions/{park_id}"),
        None,
    )
    .await;
    // Twice is fine.
    no_content(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot_id}/extensions/{park_id}"),
        None,
    )
    .await;
    let (_, lot) = call(&s, Method::GET, &format!("/parkinglots/{lot_id}"), None).await;
    assert_eq!(
        lot["extensions"],
        json!([{"id": park_id, "exten": "1500", "context": "default"}])
    );
    let (_, ext) = call(&s, Method::GET, &format!("/extensions/{park_id}"), None).await;
    assert_eq!(ext["parking_lot"], json!({"id": lot_id}));

    // No extension inside the slots afterwards, nor moved into them.
    refused(
        &s,
        Method::POST,
        "/extensions",
        Some(json!({"exten": "1505", "context": "default"})),
        "inside the slots of ParkingLot",
    )
    .await;
    let other = created(&s, "/extensions", json!({"exten": "1600", "context": "default"})).await;
    refused(
        &s,
        Method::PUT,
        &format!("/extensions/{}", id(&other)),
        Some(json!({"exten": "1510"})),
        "inside the slots",
    )
    .await;
    // The lot's slots cannot grow over an extension of the context, nor the
    // parking extension move into its own slots or out of an internal context.
    refused(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot_id}"),
        Some(json!({"slots_end": "1600"})),
        "overlap extension '1600@default'",
    )
    .await;
    refused(
        &s,
        Method::PUT,
        &format!("/extensions/{park_id}"),
        Some(json!({"exten": "1502"})),
        "inside the slots",
    )
    .await;
    refused(
        &s,
        Method::PUT,
        &format!("/extensions/{park_id}"),
        Some(json!({"exten": "0123456010", "context": "from-extern"})),
        "not in an internal context",
    )
    .await;

    // A second lot: slots sharing none with the first, its own extension.
    let lot2 = created(&s, "/parkinglots", json!({"slots_start": "1505", "slots_end": "1520"})).await;
    let lot2_id = id(&lot2);
    let park2 = created(&s, "/extensions", json!({"exten": "1700", "context": "default"})).await;
    refused(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot2_id}/extensions/{park2_id}", park2_id = id(&park2)),
        None,
        &format!("overlap the slots of ParkingLot {lot_id}"),
    )
    .await;
    refused(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot2_id}/extensions/{park_id}"),
        None,
        "already associated with a ParkingLot",
    )
    .await;
    refused(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot_id}/extensions/{}", id(&park2)),
        None,
        "ParkingLot already has an Extension",
    )
    .await;
    let did = created(
        &s,
        "/extensions",
        json!({"exten": "0123456001", "context": "from-extern"}),
    )
    .await;
    refused(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot2_id}/extensions/{}", id(&did)),
        None,
        "not in an internal context",
    )
    .await;
    no_content(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot2_id}"),
        Some(json!({"slots_start": "1511"})),
    )
    .await;
    no_content(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot2_id}/extensions/{}", id(&park2)),
        None,
    )
    .await;

    // The extension of a lot is not deletable; dissociate, then delete.
    refused(
        &s,
        Method::DELETE,
        &format!("/extensions/{park_id}"),
        None,
        "associated with a ParkingLot",
    )
    .await;
    no_content(
        &s,
        Method::DELETE,
        &format!("/parkinglots/{lot_id}/extensions/{park_id}"),
        None,
    )
    .await;
    refused(
        &s,
        Method::DELETE,
        &format!("/parkinglots/{lot_id}/extensions/{park_id}"),
        None,
        "not associated",
    )
    .await;
    // Without its extension the lot no longer holds slots in the context.
    created(&s, "/extensions", json!({"exten": "1502", "context": "default"})).await;
    // Deleting a lot keeps its extension.
    no_content(&s, Method::DELETE, &format!("/parkinglots/{lot2_id}"), None).await;
    let (_, ext) = call(&s, Method::GET, &format!("/extensions/{}", id(&park2)), None).await;
    assert_eq!(ext["parking_lot"], Value::Null);
    let (code, _) = call(&s, Method::GET, &format!("/parkinglots/{lot2_id}"), None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Events: upstream's names, routing keys and payloads.
    let mut seen = Vec::new();
    while let Ok(ev) = bus.try_recv() {
        seen.push((ev.name.clone(), ev.routing_key.clone(), ev.data.clone(), ev.tenant_uuid));
    }
    let find = |name: &str| {
        seen.iter()
            .find(|(n, ..)| n == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>()))
    };
    let master = s.master_tenant().await;
    let (_, rk, data, tenant) = find("parking_lot_created");
    assert_eq!(
        (rk.as_str(), data),
        ("config.parkinglots.created", json!({"id": lot_id}))
    );
    assert_eq!(tenant.map(|t| t.to_string()), Some(master.clone()));
    assert_eq!(find("parking_lot_edited").1, "config.parkinglots.edited");
    assert_eq!(find("parking_lot_deleted").2, json!({"id": lot2_id}));
    let (_, rk, data, tenant) = find("parking_lot_extension_associated");
    assert_eq!(rk, "config.parkinglots.extensions.updated");
    assert_eq!(data, json!({"parking_lot_id": lot_id, "extension_id": park_id}));
    assert_eq!(tenant.map(|t| t.to_string()), Some(master));
    let (_, rk, data, _) = find("parking_lot_extension_dissociated");
    assert_eq!(rk, "config.parkinglots.extensions.deleted");
    assert_eq!(data, json!({"parking_lot_id": lot_id, "extension_id": park_id}));
    let associations = seen
        .iter()
        .filter(|(n, ..)| n == "parking_lot_extension_associated")
        .count();
    assert_eq!(associations, 2, "the repeated PUT publishes nothing");
}

#[tokio::test]
async fn bad_input_tenants_and_acls() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s).await;
    let lot_id = id(&created(&s, "/parkinglots", json!({"slots_start": "701", "slots_end": "750"})).await);
    let ext = id(&created(&s, "/extensions", json!({"exten": "1000", "context": "default"})).await);

    for (body, needle) in [
        (json!({}), "field 'slots_start': Missing data"),
        (json!({"slots_start": "701"}), "field 'slots_end': Missing data"),
        (json!({"slots_start": "7a1", "slots_end": "750"}), "field 'slots_start'"),
        (json!({"slots_start": "701", "slots_end": ""}), "field 'slots_end'"),
        (json!({"slots_start": 701, "slots_end": "750"}), "field 'slots_start'"),
        (
            json!({"slots_start": "750", "slots_end": "701"}),
            "field 'slots_start': It is not a valid interval",
        ),
        (
            json!({"slots_start": "701", "slots_end": "750", "timeout": -1}),
            "field 'timeout'",
        ),
        (
            json!({"slots_start": "701", "slots_end": "750", "timeout": "45"}),
            "field 'timeout'",
        ),
        (
            json!({"slots_start": "701", "slots_end": "750", "music_on_hold": "a\nb"}),
            "field 'music_on_hold'",
        ),
        (
            json!({"slots_start": "701", "slots_end": "750", "name": "x".repeat(129)}),
            "field 'name'",
        ),
        (
            json!({"slots_start": "701", "slots_end": "750", "bogus": 1}),
            "field 'bogus': Unknown field",
        ),
        (json!([]), "expected an object"),
    ] {
        refused(&s, Method::POST, "/parkinglots", Some(body), needle).await;
    }
    refused(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot_id}"),
        Some(json!({"slots_end": "700"})),
        "It is not a valid interval",
    )
    .await;
    let resp = s
        .client
        .post(format!("{}{C}/parkinglots", s.base))
        .header("X-Auth-Token", &t)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let big = json!({"slots_start": "701", "slots_end": "750", "name": "x".repeat(4 << 20)});
    let (code, _) = call(&s, Method::POST, "/parkinglots", Some(big)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    for path in ["/parkinglots/999", "/parkinglots/nope"] {
        let (code, resp) = call(&s, Method::GET, path, None).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{resp}");
        assert_confd_error(&resp, "ParkingLot was not found");
    }
    let (code, _) = call(&s, Method::PUT, &format!("/parkinglots/{lot_id}/extensions/999"), None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Another tenant sees none of it and cannot use it.
    let (_, a) = s.post("/tenants", &t, json!({"name": "tenant a", "slug": "ta"})).await;
    let a = a["uuid"].as_str().expect("tenant").to_string();
    let h = [("Accent-Tenant", a.as_str())];
    let (code, list) = s
        .call_with_headers(Method::GET, &format!("{C}/parkinglots"), Some(&t), None, &h)
        .await;
    assert_eq!((code, list["total"].clone()), (StatusCode::OK, json!(0)));
    for (method, path) in [
        (Method::GET, format!("/parkinglots/{lot_id}")),
        (Method::PUT, format!("/parkinglots/{lot_id}")),
        (Method::DELETE, format!("/parkinglots/{lot_id}")),
        (Method::PUT, format!("/parkinglots/{lot_id}/extensions/{ext}")),
    ] {
        let (code, resp) = s
            .call_with_headers(method.clone(), &format!("{C}{path}"), Some(&t), Some(json!({})), &h)
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{method} {path}: {resp}");
    }
    let (code, other) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/parkinglots"),
            Some(&t),
            Some(json!({"slots_start": "701", "slots_end": "750"})),
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{other}");
    assert_eq!(other["tenant_uuid"], a.as_str());
    let (code, _) = call(
        &s,
        Method::PUT,
        &format!("/parkinglots/{}/extensions/{ext}", id(&other)),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "different tenants");

    // ACLs: nothing without them; exactly the named one is enough.
    s.create_user_sql(&a, "mallory", "pw-mallory").await;
    let tok = s.login("mallory", "pw-mallory").await;
    for (method, path) in [
        (Method::GET, "/parkinglots".to_string()),
        (Method::POST, "/parkinglots".to_string()),
        (Method::GET, format!("/parkinglots/{}", id(&other))),
        (Method::PUT, format!("/parkinglots/{}", id(&other))),
        (Method::DELETE, format!("/parkinglots/{}", id(&other))),
        (Method::PUT, format!("/parkinglots/{}/extensions/{ext}", id(&other))),
        (Method::DELETE, format!("/parkinglots/{}/extensions/{ext}", id(&other))),
    ] {
        let (code, _) = s
            .call(method.clone(), &format!("{C}{path}"), Some(&tok), Some(json!({})))
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn res_parking_conf_and_its_reload() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with("Command", Some(command_success()));
    let s = TestServer::start_with_ami(&fake).await;
    contexts(&s).await;
    wait_for("contexts reload", || !commands(&fake).is_empty()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = commands(&fake).len();

    let lot = id(&created(
        &s,
        "/parkinglots",
        json!({"slots_start": "1501", "slots_end": "1510", "timeout": 30, "music_on_hold": "jazz"}),
    )
    .await);
    created(&s, "/parkinglots", json!({"slots_start": "1601", "slots_end": "1602"})).await;
    let ext = id(&created(&s, "/extensions", json!({"exten": "1500", "context": "default"})).await);
    no_content(&s, Method::PUT, &format!("/parkinglots/{lot}/extensions/{ext}"), None).await;
    wait_for("parking reload", || {
        commands(&fake)[before..]
            .iter()
            .any(|c| c == "module reload res_parking.so")
    })
    .await;

    // Only lots with an extension are written.
    let templates = render::Templates::load(None).expect("templates");
    let files = render::render_store(&s.app().store, &templates).await.expect("render");
    let conf = &files["res_parking.conf"];
    let section = format!(
        "[parkinglot-{lot}]\nparkext = 1500\ncontext = default\nparkpos = 1501-1510\nfindslot = next\n\
         parkingtime = 30\nparkedmusicclass = jazz\ncomebacktoorigin = yes\n"
    );
    assert!(conf.contains(&section), "{conf}");
    assert_eq!(conf.matches("[parkinglot-").count(), 1, "{conf}");
    // No timeout: res_parking's 0.
    no_content(
        &s,
        Method::PUT,
        &format!("/parkinglots/{lot}"),
        Some(json!({"timeout": null})),
    )
    .await;
    let files = render::render_store(&s.app().store, &templates).await.expect("render");
    assert!(files["res_parking.conf"].contains("parkingtime = 0\n"));
}
