//! confd routing over HTTP: trunks and their endpoints, incalls (destinations, DIDs),
//! outcalls (ordered trunks, patterns with their rewrite), the feature codes, the
//! `calllog_context` rows call-logd resolves tenants through, with upstream's rules,
//! confd's error bodies, tenants, ACLs, events and the reloads the fake AMI receives.

use std::time::Duration;

use crate::common::{command_success, commands, wait_for, TestServer};
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions};
use accentd::fake_asterisk::scenario::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";

pub(crate) fn assert_confd_error(body: &Value, needle: &str) {
    let items = body.as_array().unwrap_or_else(|| panic!("array body: {body}"));
    assert!(!items.is_empty() && items.iter().all(Value::is_string), "{body}");
    assert!(body.to_string().contains(needle), "{needle:?} in {body}");
}

pub(crate) async fn created(s: &TestServer, t: &str, path: &str, body: Value) -> Value {
    let (code, obj) = s.post(&format!("{C}{path}"), t, body.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "POST {path} {body}: {obj}");
    obj
}

pub(crate) async fn put_ok(s: &TestServer, t: &str, path: &str, body: Option<Value>) {
    let (code, resp) = s.call(Method::PUT, &format!("{C}{path}"), Some(t), body).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "PUT {path}: {resp}");
}

pub(crate) async fn delete_ok(s: &TestServer, t: &str, path: &str) {
    let (code, resp) = s.delete(&format!("{C}{path}"), t).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "DELETE {path}: {resp}");
}

pub(crate) async fn get(s: &TestServer, t: &str, path: &str) -> Value {
    let (code, obj) = s.get(&format!("{C}{path}"), t).await;
    assert_eq!(code, StatusCode::OK, "GET {path}: {obj}");
    obj
}

/// `default` (users 1000-1999), `from-extern` (incall 0123456000-0123456099),
/// `to-extern` (outcall).
async fn contexts(s: &TestServer, t: &str) {
    created(
        s,
        t,
        "/contexts",
        json!({"name": "default", "label": "Default", "type": "internal",
               "user_ranges": [{"start": "1000", "end": "1999"}]}),
    )
    .await;
    created(
        s,
        t,
        "/contexts",
        json!({"name": "from-extern", "label": "In", "type": "incall",
               "incall_ranges": [{"start": "0123456000", "end": "0123456099", "did_length": 4}]}),
    )
    .await;
    created(
        s,
        t,
        "/contexts",
        json!({"name": "to-extern", "label": "Out", "type": "outcall"}),
    )
    .await;
}

#[tokio::test]
async fn trunks_incalls_outcalls_end_to_end_with_events() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();
    contexts(&s, &t).await;

    // Trunk + SIP endpoint + association.
    let trunk = created(
        &s,
        &t,
        "/trunks",
        json!({"context": "from-extern", "description": "provider", "outgoing_caller_id_format": "E164"}),
    )
    .await;
    let trunk_id = trunk["id"].as_i64().expect("trunk id");
    assert_eq!(trunk["twilio_incoming"], false);
    assert_eq!(trunk["endpoint_sip"], Value::Null);
    assert_eq!(trunk["outcalls"], json!([]));
    let sip = created(&s, &t, "/endpoints/sip", json!({"label": "provider"})).await;
    let sip_uuid = sip["uuid"].as_str().expect("uuid").to_string();
    put_ok(&s, &t, &format!("/trunks/{trunk_id}/endpoints/sip/{sip_uuid}"), None).await;
    // Twice is fine.
    put_ok(&s, &t, &format!("/trunks/{trunk_id}/endpoints/sip/{sip_uuid}"), None).await;
    let trunk = get(&s, &t, &format!("/trunks/{trunk_id}")).await;
    assert_eq!(trunk["endpoint_sip"]["uuid"], sip_uuid.as_str());
    assert_eq!(trunk["outgoing_caller_id_format"], "E164");
    let sip = get(&s, &t, &format!("/endpoints/sip/{sip_uuid}")).await;
    assert_eq!(sip["trunk"], json!({"id": trunk_id}));
    let trunk2 = created(&s, &t, "/trunks", json!({})).await["id"].as_i64().expect("id");
    let custom = created(&s, &t, "/endpoints/custom", json!({"interface": "dahdi/g1"})).await;
    let custom_id = custom["id"].as_i64().expect("id");
    put_ok(&s, &t, &format!("/trunks/{trunk2}/endpoints/custom/{custom_id}"), None).await;
    assert_eq!(
        get(&s, &t, &format!("/trunks/{trunk2}")).await["endpoint_custom"]["interface"],
        "dahdi/g1"
    );

    // Incall on a DID to a user.
    let user = created(&s, &t, "/users", json!({"firstname": "Alice", "lastname": "Smith"})).await;
    let user_id = user["id"].as_i64().expect("user id");
    let incall = created(
        &s,
        &t,
        "/incalls",
        json!({"destination": {"type": "user", "user_id": user_id, "ring_time": 10.5},
               "caller_id_mode": "prepend", "caller_id_name": "in: ", "description": "main DID"}),
    )
    .await;
    let incall_id = incall["id"].as_i64().expect("incall id");
    assert_eq!(incall["destination"]["user_firstname"], "Alice");
    let did = created(
        &s,
        &t,
        "/extensions",
        json!({"exten": "0123456001", "context": "from-extern"}),
    )
    .await["id"]
        .as_i64()
        .expect("did");
    put_ok(&s, &t, &format!("/incalls/{incall_id}/extensions/{did}"), None).await;
    let incall = get(&s, &t, &format!("/incalls/{incall_id}")).await;
    assert_eq!(
        incall["extensions"],
        json!([{"id": did, "exten": "0123456001", "context": "from-extern"}])
    );
    assert_eq!(
        get(&s, &t, &format!("/extensions/{did}")).await["incall"],
        json!({"id": incall_id})
    );
    // An incall's DID cannot be deleted nor leave its incall range.
    let (code, body) = s.delete(&format!("{C}/extensions/{did}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "Incall");
    let (code, body) = s
        .put(&format!("{C}/extensions/{did}"), &t, json!({"exten": "0123456999"}))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "outside of range");

    // Outcall with ordered trunks and a pattern.
    let outcall = created(&s, &t, "/outcalls", json!({"name": "national", "ring_time": 30})).await;
    let outcall_id = outcall["id"].as_i64().expect("outcall id");
    assert_eq!(
        (outcall["enabled"].clone(), outcall["internal_caller_id"].clone()),
        (json!(true), json!(false))
    );
    put_ok(
        &s,
        &t,
        &format!("/outcalls/{outcall_id}/trunks"),
        Some(json!({"trunks": [{"id": trunk2}, {"id": trunk_id}]})),
    )
    .await;
    let pattern = created(&s, &t, "/extensions", json!({"exten": "_0X.", "context": "to-extern"})).await["id"]
        .as_i64()
        .expect("pattern");
    put_ok(
        &s,
        &t,
        &format!("/outcalls/{outcall_id}/extensions/{pattern}"),
        Some(json!({"prefix": "0", "external_prefix": "+33", "strip_digits": 1, "caller_id": "\"Acme\" <0100>"})),
    )
    .await;
    let outcall = get(&s, &t, &format!("/outcalls/{outcall_id}")).await;
    let trunk_ids: Vec<i64> = outcall["trunks"]
        .as_array()
        .expect("trunks")
        .iter()
        .filter_map(|t| t["id"].as_i64())
        .collect();
    assert_eq!(trunk_ids, vec![trunk2, trunk_id]);
    assert_eq!(outcall["trunks"][1]["endpoint_sip"]["uuid"], sip_uuid.as_str());
    assert_eq!(
        outcall["extensions"],
        json!([{"id": pattern, "exten": "_0X.", "context": "to-extern", "prefix": "0",
                "external_prefix": "+33", "strip_digits": 1, "caller_id": "\"Acme\" <0100>"}])
    );
    assert_eq!(
        get(&s, &t, &format!("/extensions/{pattern}")).await["outcall"],
        json!({"id": outcall_id, "name": "national"})
    );
    assert_eq!(
        get(&s, &t, &format!("/trunks/{trunk_id}")).await["outcalls"],
        json!([{"id": outcall_id, "name": "national"}])
    );
    // The renderer's read functions.
    let (trunks, patterns) = s
        .app()
        .store
        .read(move |c| {
            Ok::<_, accentd::api::error::ApiError>((
                accentd::confd::outcalls::outcall_trunks(c, outcall_id)?,
                accentd::confd::outcalls::outcall_extensions(c, outcall_id)?,
            ))
        })
        .await
        .expect("read");
    assert_eq!(trunks, vec![trunk2, trunk_id]);
    assert_eq!((patterns.len(), patterns[0].rewrite.strip_digits), (1, 1));
    // A second PUT replaces the rewrite; a new list replaces the order.
    put_ok(&s, &t, &format!("/outcalls/{outcall_id}/extensions/{pattern}"), None).await;
    assert_eq!(
        get(&s, &t, &format!("/outcalls/{outcall_id}")).await["extensions"][0]["strip_digits"],
        0
    );
    put_ok(
        &s,
        &t,
        &format!("/outcalls/{outcall_id}/trunks"),
        Some(json!({"trunks": [{"id": trunk_id}]})),
    )
    .await;

    // Search, filters, order.
    let list = get(&s, &t, "/outcalls?search=nation").await;
    assert_eq!(list["total"], 1);
    let list = get(&s, &t, "/trunks?order=id&direction=desc").await;
    assert_eq!(list["items"][0]["id"], trunk2);
    let list = get(&s, &t, "/incalls?caller_id_mode=prepend").await;
    assert_eq!(list["total"], 1);

    // Deleting: the SIP endpoint of a trunk is refused, the trunk leaves its outcalls, the
    // incall and outcall free their extensions.
    let (code, body) = s.delete(&format!("{C}/endpoints/sip/{sip_uuid}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "Trunk");
    delete_ok(&s, &t, &format!("/trunks/{trunk_id}")).await;
    assert_eq!(
        get(&s, &t, &format!("/outcalls/{outcall_id}")).await["trunks"],
        json!([])
    );
    assert_eq!(
        get(&s, &t, &format!("/endpoints/sip/{sip_uuid}")).await["trunk"],
        Value::Null
    );
    delete_ok(&s, &t, &format!("/endpoints/sip/{sip_uuid}")).await;
    delete_ok(&s, &t, &format!("/incalls/{incall_id}")).await;
    assert_eq!(get(&s, &t, &format!("/extensions/{did}")).await["incall"], Value::Null);
    delete_ok(&s, &t, &format!("/outcalls/{outcall_id}")).await;
    delete_ok(&s, &t, &format!("/extensions/{pattern}")).await;

    // A user deleted: an incall reaching them ends nowhere.
    let incall2 = created(
        &s,
        &t,
        "/incalls",
        json!({"destination": {"type": "user", "user_id": user_id}}),
    )
    .await["id"]
        .as_i64()
        .expect("incall");
    delete_ok(&s, &t, &format!("/users/{user_id}")).await;
    assert_eq!(
        get(&s, &t, &format!("/incalls/{incall2}")).await["destination"],
        json!({"type": "none"})
    );

    // Events: upstream's names, routing keys and payloads.
    let mut seen = Vec::new();
    while let Ok(ev) = bus.try_recv() {
        seen.push((ev.name.clone(), ev.routing_key.clone(), ev.data.clone()));
    }
    let find = |name: &str| {
        seen.iter()
            .find(|(n, _, _)| n == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>()))
    };
    assert_eq!(
        find("trunk_created"),
        (
            "trunk_created".into(),
            "config.trunk.created".into(),
            json!({"id": trunk_id})
        )
    );
    assert_eq!(find("trunk_deleted").1, "config.trunk.deleted");
    assert_eq!(find("incall_created").2, json!({"id": incall_id}));
    assert_eq!(find("outcall_created").1, "config.outcalls.created");
    assert_eq!(find("outcall_deleted").2, json!({"id": outcall_id}));
    let (_, rk, data) = find("trunk_endpoint_sip_associated");
    assert_eq!(rk, format!("config.trunks.{trunk_id}.endpoints.sip.{sip_uuid}.updated"));
    assert_eq!(data["trunk"]["id"], trunk_id);
    assert_eq!(data["endpoint_sip"]["uuid"], sip_uuid.as_str());
    let (_, rk, data) = find("trunk_endpoint_custom_associated");
    assert_eq!(
        rk,
        format!("config.trunks.{trunk2}.endpoints.custom.{custom_id}.updated")
    );
    assert_eq!(data["endpoint_custom"]["interface"], "dahdi/g1");
    let (_, rk, data) = find("incall_extension_associated");
    assert_eq!(rk, "config.incalls.extensions.updated");
    assert_eq!(data, json!({"incall_id": incall_id, "extension_id": did}));
    let (_, rk, data) = find("outcall_trunks_associated");
    assert_eq!(rk, "config.outcalls.trunks.updated");
    assert_eq!(data, json!({"outcall_id": outcall_id, "trunk_ids": [trunk2, trunk_id]}));
    let (_, rk, data) = find("outcall_extension_associated");
    assert_eq!(rk, "config.outcalls.extensions.updated");
    assert_eq!(data, json!({"outcall_id": outcall_id, "extension_id": pattern}));
}

#[tokio::test]
async fn bad_inputs_rules_tenants_and_acls() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t).await;
    let user = created(&s, &t, "/users", json!({"firstname": "Bob"})).await["id"].clone();
    let trunk = created(&s, &t, "/trunks", json!({})).await["id"]
        .as_i64()
        .expect("trunk");
    let outcall = created(&s, &t, "/outcalls", json!({"name": "out"})).await["id"]
        .as_i64()
        .expect("outcall");
    let incall = created(&s, &t, "/incalls", json!({"destination": {"type": "none"}})).await["id"]
        .as_i64()
        .expect("incall");
    let x_user = created(&s, &t, "/extensions", json!({"exten": "1000", "context": "default"})).await["id"].clone();
    let x_did = created(
        &s,
        &t,
        "/extensions",
        json!({"exten": "0123456050", "context": "from-extern"}),
    )
    .await["id"]
        .clone();
    let x_pattern =
        created(&s, &t, "/extensions", json!({"exten": "_00.", "context": "to-extern"})).await["id"].clone();

    // Another tenant's user and trunk.
    let (_, a) = s.post("/tenants", &t, json!({"name": "tenant a", "slug": "ta"})).await;
    let a = a["uuid"].as_str().expect("tenant").to_string();
    let h = [("Accent-Tenant", a.as_str())];
    let (code, other_user) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/users"),
            Some(&t),
            Some(json!({"firstname": "Eve"})),
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{other_user}");
    let (code, other_trunk) = s
        .call_with_headers(Method::POST, &format!("{C}/trunks"), Some(&t), Some(json!({})), &h)
        .await;
    assert_eq!(code, StatusCode::CREATED, "{other_trunk}");

    // Bodies: 400 naming the field.
    for (method, path, body, needle) in [
        (
            Method::POST,
            "/trunks".to_string(),
            json!({"context": "nowhere"}),
            "field 'context'",
        ),
        (
            Method::POST,
            "/trunks".to_string(),
            json!({"twilio_incoming": "yes"}),
            "field 'twilio_incoming'",
        ),
        (
            Method::POST,
            "/trunks".to_string(),
            json!({"outgoing_caller_id_format": "e164"}),
            "field 'outgoing_caller_id_format'",
        ),
        (
            Method::POST,
            "/trunks".to_string(),
            json!({"bogus": 1}),
            "field 'bogus': Unknown field",
        ),
        (Method::POST, "/trunks".to_string(), json!([]), "expected an object"),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({}),
            "field 'destination': Missing data",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "user"}}),
            "destination.user_id",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "user", "user_id": other_user["id"]}}),
            "destination.user_id",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "user", "user_id": "1"}}),
            "destination",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "voicemail", "voicemail_id": 999}}),
            "destination.voicemail_id",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "teleport"}}),
            "destination",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "custom", "command": ""}}),
            "destination.command",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "hangup", "cause": "normal", "timeout": 3}}),
            "destination.timeout",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "none"}, "caller_id_mode": "shout"}),
            "caller_id_mode",
        ),
        (
            Method::POST,
            "/incalls".to_string(),
            json!({"destination": {"type": "none"}, "preprocess_subroutine": "a,b"}),
            "preprocess_subroutine",
        ),
        (
            Method::POST,
            "/outcalls".to_string(),
            json!({}),
            "field 'name': Missing data",
        ),
        (
            Method::POST,
            "/outcalls".to_string(),
            json!({"name": "out"}),
            "already exists",
        ),
        (
            Method::POST,
            "/outcalls".to_string(),
            json!({"name": "x", "ring_time": -1}),
            "ring_time",
        ),
        (
            Method::POST,
            "/outcalls".to_string(),
            json!({"name": "x", "enabled": null}),
            "enabled",
        ),
        (
            Method::PUT,
            format!("/incalls/{incall}"),
            json!({"destination": {"type": "user", "user_id": 999}}),
            "destination.user_id",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/trunks"),
            json!({"trunks": [{"id": 999}]}),
            "Trunk was not found",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/trunks"),
            json!({"trunks": [{"id": other_trunk["id"]}]}),
            "Trunk was not found",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/trunks"),
            json!({"trunks": [{"id": trunk}, {"id": trunk}]}),
            "more than once",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/trunks"),
            json!({"trunks": [{"id": "1"}]}),
            "trunks",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/trunks"),
            json!({"trunk": []}),
            "trunk",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/extensions/{x_pattern}"),
            json!({"strip_digits": -1}),
            "strip_digits",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/extensions/{x_pattern}"),
            json!({"prefix": "a"}),
            "prefix",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/extensions/{x_pattern}"),
            json!({"extra": 1}),
            "extra",
        ),
        // Association rules.
        (
            Method::PUT,
            format!("/incalls/{incall}/extensions/{x_user}"),
            json!({}),
            "not in an incall context",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/extensions/{x_user}"),
            json!({}),
            "not in an outcall context",
        ),
        (
            Method::PUT,
            format!("/outcalls/{outcall}/extensions/{x_did}"),
            json!({}),
            "not in an outcall context",
        ),
    ] {
        let (code, resp) = s
            .call(method.clone(), &format!("{C}{path}"), Some(&t), Some(body.clone()))
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{method} {path} {body}: {resp}");
        assert_confd_error(&resp, needle);
    }

    // A pattern outside the incall range cannot even be an extension there; a DID of the
    // range can, then belongs to one incall only.
    let (code, body) = s
        .post(
            &format!("{C}/extensions"),
            &t,
            json!({"exten": "0123457000", "context": "from-extern"}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "outside of range");
    put_ok(&s, &t, &format!("/incalls/{incall}/extensions/{x_did}"), None).await;
    let incall2 = created(&s, &t, "/incalls", json!({"destination": {"type": "none"}})).await["id"].clone();
    let (code, body) = s
        .call(
            Method::PUT,
            &format!("{C}/incalls/{incall2}/extensions/{x_did}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "already associated with a Incall");
    let (code, body) = s.delete(&format!("{C}/incalls/{incall2}/extensions/{x_did}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "not associated");

    // Endpoints: one per trunk, not on a line and a trunk.
    let sip1 = created(&s, &t, "/endpoints/sip", json!({})).await["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    let sip2 = created(&s, &t, "/endpoints/sip", json!({})).await["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    put_ok(&s, &t, &format!("/trunks/{trunk}/endpoints/sip/{sip1}"), None).await;
    let (code, body) = s
        .call(
            Method::PUT,
            &format!("{C}/trunks/{trunk}/endpoints/sip/{sip2}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "already associated with an endpoint");
    let line = created(&s, &t, "/lines", json!({"context": "default"})).await["id"].clone();
    let (code, body) = s
        .call(
            Method::PUT,
            &format!("{C}/lines/{line}/endpoints/sip/{sip1}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "already associated with a Trunk");
    put_ok(&s, &t, &format!("/lines/{line}/endpoints/sip/{sip2}"), None).await;
    let trunk3 = created(&s, &t, "/trunks", json!({})).await["id"].clone();
    let (code, body) = s
        .call(
            Method::PUT,
            &format!("{C}/trunks/{trunk3}/endpoints/sip/{sip2}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "already associated with a Line");
    let (code, body) = s.delete(&format!("{C}/trunks/{trunk3}/endpoints/sip/{sip1}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "not associated");
    delete_ok(&s, &t, &format!("/trunks/{trunk}/endpoints/sip/{sip1}")).await;

    // Unknown ids: 404.
    for path in [
        "/trunks/999".to_string(),
        format!("/trunks/999/endpoints/sip/{sip1}"),
        format!("/trunks/{trunk}/endpoints/sip/{}", uuid::Uuid::new_v4()),
        format!("/trunks/{trunk}/endpoints/iax/1"),
        "/incalls/999/extensions/1".to_string(),
        format!("/outcalls/{outcall}/extensions/999"),
        "/outcalls/999/trunks".to_string(),
    ] {
        let (code, body) = s
            .call(
                Method::PUT,
                &format!("{C}{path}"),
                Some(&t),
                Some(json!({"trunks": []})),
            )
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "PUT {path}: {body}");
    }

    // Tenants: invisible from tenant A; a trunk's context must be the tenant's.
    let (code, _) = s
        .call_with_headers(Method::GET, &format!("{C}/outcalls/{outcall}"), Some(&t), None, &h)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, list) = s
        .call_with_headers(Method::GET, &format!("{C}/trunks"), Some(&t), None, &h)
        .await;
    assert_eq!(list["total"], 1);
    let (code, body) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/trunks"),
            Some(&t),
            Some(json!({"context": "from-extern"})),
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "field 'context'");
    let (code, _) = s
        .call_with_headers(
            Method::PUT,
            &format!("{C}/incalls/{incall}/extensions/{x_did}"),
            Some(&t),
            None,
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let _ = user;

    // ACLs: a user without confd ACLs gets 401 everywhere.
    s.create_user_sql(&a, "mallory", "pw-mallory").await;
    let tok = s.login("mallory", "pw-mallory").await;
    for (method, path) in [
        (Method::GET, "/trunks".to_string()),
        (Method::POST, "/incalls".to_string()),
        (Method::GET, format!("/outcalls/{outcall}")),
        (Method::PUT, format!("/outcalls/{outcall}/trunks")),
        (Method::PUT, format!("/incalls/{incall}/extensions/{x_did}")),
        (Method::DELETE, format!("/trunks/{trunk}")),
        (Method::GET, "/extensions/features".to_string()),
    ] {
        let (code, _) = s
            .call(method.clone(), &format!("{C}{path}"), Some(&tok), Some(json!({})))
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test]
async fn feature_codes_are_listed_and_edited() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();
    let list = get(&s, &t, "/extensions/features?search=fwd&order=feature").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["feature"].as_str())
        .collect();
    assert_eq!(names, vec!["fwdbusy", "fwdrna", "fwdunc", "fwdundoall"]);
    let all = get(&s, &t, "/extensions/features?limit=100").await;
    assert_eq!(all["total"], 40);
    let find = |feature: &str| {
        all["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["feature"] == feature)
            .cloned()
            .unwrap_or_else(|| panic!("{feature}"))
    };
    let vm = find("enablevm");
    assert_eq!(
        (vm["exten"].clone(), vm["enabled"].clone()),
        (json!("*90"), json!(true))
    );
    assert_eq!(vm["context"], "accent-features");
    assert!(vm.get("tenant_uuid").is_none() && vm.get("id").is_none(), "{vm}");
    let uuid = vm["uuid"].as_str().expect("uuid").to_string();
    let fwd = find("fwdunc")["uuid"].as_str().expect("uuid").to_string();

    put_ok(
        &s,
        &t,
        &format!("/extensions/features/{uuid}"),
        Some(json!({"exten": "*95", "enabled": false, "feature": "ignored"})),
    )
    .await;
    let vm = get(&s, &t, &format!("/extensions/features/{uuid}")).await;
    assert_eq!(
        (vm["exten"].clone(), vm["enabled"].clone(), vm["feature"].clone()),
        (json!("*95"), json!(false), json!("enablevm"))
    );
    for (id, body, needle) in [
        (&uuid, json!({"exten": "9 5"}), "field 'exten'"),
        (&uuid, json!({"exten": "_*95."}), "must not be a pattern"),
        (&fwd, json!({"exten": "*21"}), "must be a pattern"),
        (&uuid, json!({"exten": "*98"}), "already exists"),
        (&uuid, json!({"enabled": "no"}), "field 'enabled'"),
        (&uuid, json!({"context": 1, "bogus": true}), "bogus"),
    ] {
        let (code, resp) = s.put(&format!("{C}/extensions/features/{id}"), &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_confd_error(&resp, needle);
    }
    let (code, _) = s
        .get(&format!("{C}/extensions/features/{}", uuid::Uuid::new_v4()), &t)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // Not creatable nor deletable.
    let (code, _) = s
        .post(&format!("{C}/extensions/features"), &t, json!({"exten": "*1"}))
        .await;
    assert!(
        code == StatusCode::METHOD_NOT_ALLOWED || code == StatusCode::NOT_FOUND,
        "{code}"
    );
    let ev = std::iter::from_fn(|| bus.try_recv().ok())
        .find(|e| e.name == "extension_feature_edited")
        .expect("edited event");
    assert_eq!(ev.routing_key, "config.extension_feature.edited");
    assert_eq!(ev.data, json!({"uuid": uuid}));
}

async fn calllog_contexts(s: &TestServer) -> Vec<(String, Option<String>)> {
    s.app()
        .store
        .read(|c| {
            let mut stmt = c.prepare("SELECT name, tenant_uuid FROM calllog_context ORDER BY name")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok::<_, accentd::api::error::ApiError>(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .expect("calllog_context")
}

#[tokio::test]
async fn calllog_contexts_follow_confd_contexts() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let master = s.master_tenant().await;
    let ctx = created(
        &s,
        &t,
        "/contexts",
        json!({"name": "from-extern", "label": "In", "type": "incall"}),
    )
    .await;
    assert_eq!(
        calllog_contexts(&s).await,
        vec![("from-extern".into(), Some(master.clone()))]
    );
    put_ok(
        &s,
        &t,
        &format!("/contexts/{}", ctx["id"]),
        Some(json!({"label": "Incoming"})),
    )
    .await;
    assert_eq!(calllog_contexts(&s).await.len(), 1);
    // call-logd's resolver sees it.
    let resolved = s
        .app()
        .store
        .read(|c| Ok::<_, accentd::api::error::ApiError>(accentd::cel::generate::StoreContexts::load(c)?))
        .await
        .expect("load");
    let _ = resolved;
    // A context used by a trunk cannot go; once free, its row goes with it.
    let trunk = created(&s, &t, "/trunks", json!({"context": "from-extern"})).await["id"].clone();
    let (code, body) = s.delete(&format!("{C}/contexts/{}", ctx["id"]), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "Trunk");
    delete_ok(&s, &t, &format!("/trunks/{trunk}")).await;
    delete_ok(&s, &t, &format!("/contexts/{}", ctx["id"])).await;
    assert!(calllog_contexts(&s).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_send_their_reloads() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with("Command", Some(command_success()));
    let s = TestServer::start_with_ami(&fake).await;
    let t = s.admin_token.clone();
    let settle = |n: usize| {
        let fake = &fake;
        async move {
            wait_for("reloads", || commands(fake).len() >= n).await;
            tokio::time::sleep(Duration::from_millis(600)).await;
            let mut got = commands(fake);
            got.sort();
            got
        }
    };

    // An outcall: the dialplan only.
    let outcall = created(&s, &t, "/outcalls", json!({"name": "out"})).await["id"].clone();
    assert_eq!(settle(1).await, vec!["dialplan reload"]);
    // A trunk's SIP endpoint: PJSIP (and the dialplan the trunk routes through).
    let trunk = created(&s, &t, "/trunks", json!({})).await["id"].clone();
    let sip = created(&s, &t, "/endpoints/sip", json!({})).await["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    put_ok(&s, &t, &format!("/trunks/{trunk}/endpoints/sip/{sip}"), None).await;
    let got = settle(3).await;
    assert!(got.contains(&"module reload res_pjsip.so".to_string()), "{got:?}");
    let before = commands(&fake).len();
    put_ok(
        &s,
        &t,
        &format!("/outcalls/{outcall}/trunks"),
        Some(json!({"trunks": [{"id": trunk}]})),
    )
    .await;
    wait_for("trunks reload", || commands(&fake).len() > before).await;
    assert_eq!(commands(&fake).last().map(String::as_str), Some("dialplan reload"));
}
