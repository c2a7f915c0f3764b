//! confd lines and endpoints over HTTP: SIP transports, templates and endpoints, SCCP and
//! custom endpoints, lines, devices and the line associations (endpoint, extension, device),
//! with upstream's rules, confd's error bodies, tenants, events, reloads and the
//! `calllog_line` identities call-logd resolves lines through.

use crate::common::TestServer;
use accentd::confd::reload::Reload;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";
const PASSWORD: &str = "Sup3r-s3cret-pw";

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

async fn no_content(s: &TestServer, method: Method, t: &str, path: &str) {
    let (code, body) = s.call(method.clone(), &format!("{C}{path}"), Some(t), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{method} {path}: {body}");
}

/// Sets up the `default` internal context (users 1000-1999, groups 2000-2099)
/// and an outcall context.
async fn contexts(s: &TestServer, t: &str) {
    created(
        s,
        t,
        "/contexts",
        json!({"name": "default", "label": "Default", "type": "internal",
               "user_ranges": [{"start": "1000", "end": "1999"}],
               "group_ranges": [{"start": "2000", "end": "2099"}]}),
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

async fn calllog_rows(s: &TestServer) -> Vec<(String, i64, Option<String>, Option<String>)> {
    s.app()
        .store
        .read(|c| {
            let mut stmt = c.prepare("SELECT identity, line_id, exten, context FROM calllog_line ORDER BY identity")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok::<_, accentd::api::error::ApiError>(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .expect("calllog_line")
}

#[tokio::test]
async fn provisioning_order_events_reloads_and_identities() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();
    contexts(&s, &t).await;

    let transport = created(
        &s,
        &t,
        "/sip/transports",
        json!({"name": "transport-udp", "options": [["protocol", "udp"], ["bind", "0.0.0.0:5060"]]}),
    )
    .await;
    assert!(transport.get("tenant_uuid").is_none(), "{transport}");
    let tpl = created(
        &s,
        &t,
        "/endpoints/sip/templates",
        json!({"label": "global", "endpoint_section_options": [["allow", "ulaw"]]}),
    )
    .await;
    assert_eq!(tpl["name"].as_str().map(str::len), Some(8), "{tpl}");
    // The templates collection is not taken for an endpoint's uuid.
    let (code, list) = s.get(&format!("{C}/endpoints/sip/templates"), &t).await;
    assert_eq!((code, list["total"].clone()), (StatusCode::OK, json!(1)));

    // 1. The line.
    let line = created(&s, &t, "/lines", json!({"context": "default"})).await;
    let line_id = line["id"].as_i64().expect("id");
    let code = line["provisioning_code"].as_str().expect("code");
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{line}");
    assert_eq!(line["provisioning_extension"], line["provisioning_code"]);
    assert_eq!(
        (line["position"].clone(), line["device_slot"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        (line["name"].clone(), line["protocol"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        (line["extensions"].clone(), line["users"].clone()),
        (json!([]), json!([]))
    );
    assert_eq!(line["registrar"], "default");

    // 2. The SIP endpoint, with its credentials.
    let sip = created(
        &s,
        &t,
        "/endpoints/sip",
        json!({"name": "alice-sip", "label": "Alice",
               "auth_section_options": [["username", "alice"], ["password", PASSWORD]],
               "aor_section_options": [["max_contacts", "1"]],
               "templates": [{"uuid": tpl["uuid"]}],
               "transport": {"uuid": transport["uuid"]}}),
    )
    .await;
    let sip_uuid = sip["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(sip["templates"], json!([{"uuid": tpl["uuid"], "label": "global"}]));
    assert_eq!(sip["line"], Value::Null);

    // 3. Line ↔ endpoint.
    no_content(
        &s,
        Method::PUT,
        &t,
        &format!("/lines/{line_id}/endpoints/sip/{sip_uuid}"),
    )
    .await;
    // Again: nothing changes.
    no_content(
        &s,
        Method::PUT,
        &t,
        &format!("/lines/{line_id}/endpoints/sip/{sip_uuid}"),
    )
    .await;
    let (_, got) = s.get(&format!("{C}/lines/{line_id}"), &t).await;
    assert_eq!(
        (got["name"].clone(), got["protocol"].clone()),
        (json!("alice-sip"), json!("sip"))
    );
    assert_eq!(got["endpoint_sip"]["uuid"], sip_uuid.as_str());
    assert_eq!(
        got["endpoint_sip"]["auth_section_options"],
        json!([["username", "alice"]])
    );
    let (_, got_sip) = s.get(&format!("{C}/endpoints/sip/{sip_uuid}"), &t).await;
    assert_eq!(got_sip["line"], json!({"id": line_id}));
    assert_eq!(
        calllog_rows(&s).await,
        vec![("pjsip/alice-sip".to_string(), line_id, None, None)]
    );

    // 4. The extension, 5. line ↔ extension.
    let ext = created(&s, &t, "/extensions", json!({"exten": "1000", "context": "default"})).await;
    let ext_id = ext["id"].as_i64().expect("id");
    no_content(&s, Method::PUT, &t, &format!("/lines/{line_id}/extensions/{ext_id}")).await;
    let (_, got) = s.get(&format!("{C}/lines/{line_id}"), &t).await;
    assert_eq!(
        got["extensions"],
        json!([{"id": ext_id, "exten": "1000", "context": "default"}])
    );
    let (_, got_ext) = s.get(&format!("{C}/extensions/{ext_id}"), &t).await;
    assert_eq!(got_ext["lines"], json!([{"id": line_id}]));
    assert_eq!(
        calllog_rows(&s).await,
        vec![(
            "pjsip/alice-sip".to_string(),
            line_id,
            Some("1000".to_string()),
            Some("default".to_string())
        )]
    );
    // Renaming the endpoint or the extension moves the identity.
    let (code, _) = s
        .put(&format!("{C}/endpoints/sip/{sip_uuid}"), &t, json!({"name": "Alice-2"}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = s
        .put(&format!("{C}/extensions/{ext_id}"), &t, json!({"exten": "1001"}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(
        calllog_rows(&s).await,
        vec![(
            "pjsip/alice-2".to_string(),
            line_id,
            Some("1001".to_string()),
            Some("default".to_string())
        )]
    );
    // The extension of a line stays in the user ranges.
    let (code, body) = s
        .put(&format!("{C}/extensions/{ext_id}"), &t, json!({"exten": "2001"}))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "outside of range");

    // Used extension and context cannot be deleted.
    let (code, body) = s.delete(&format!("{C}/extensions/{ext_id}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "associated with a Line");
    let (code, body) = s.delete(&format!("{C}/endpoints/sip/{sip_uuid}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "associated with a Line");

    // 6. A device.
    let device = created(
        &s,
        &t,
        "/devices",
        json!({"mac": "AA-BB-CC-00-11-22", "ip": "10.0.0.5", "vendor": "Yealink"}),
    )
    .await;
    let device_id = device["id"].as_str().expect("device id").to_string();
    assert_eq!(device_id.len(), 32);
    assert_eq!(
        (device["mac"].clone(), device["status"].clone()),
        (json!("aa:bb:cc:00:11:22"), json!("not_configured"))
    );
    let (code, body) = s.get(&format!("{C}/lines/{line_id}/devices"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    no_content(&s, Method::PUT, &t, &format!("/lines/{line_id}/devices/{device_id}")).await;
    let (_, ld) = s.get(&format!("{C}/lines/{line_id}/devices"), &t).await;
    assert_eq!(ld, json!({"line_id": line_id, "device_id": device_id}));
    let (_, dl) = s.get(&format!("{C}/devices/{device_id}/lines"), &t).await;
    assert_eq!(
        dl,
        json!({"total": 1, "items": [{"line_id": line_id, "device_id": device_id}]})
    );
    let (_, got) = s.get(&format!("{C}/lines/{line_id}"), &t).await;
    assert_eq!(got["device_id"], device_id.as_str());
    let (_, got) = s.get(&format!("{C}/devices/{device_id}"), &t).await;
    assert_eq!(got["status"], "configured");

    // POST /lines/{id}/extensions creates and associates, or does neither.
    let line2 = created(&s, &t, "/lines", json!({"context": "default", "position": 2})).await;
    let line2_id = line2["id"].as_i64().expect("id");
    let (code, body) = s
        .post(
            &format!("{C}/lines/{line2_id}/extensions"),
            &t,
            json!({"exten": "1002", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "endpoint");
    let (_, list) = s.get(&format!("{C}/extensions?exten=1002"), &t).await;
    assert_eq!(list["total"], 0, "nothing created: {list}");
    let custom = created(&s, &t, "/endpoints/custom", json!({"interface": "dahdi/i1"})).await;
    no_content(
        &s,
        Method::PUT,
        &t,
        &format!("/lines/{line2_id}/endpoints/custom/{}", custom["id"]),
    )
    .await;
    let (code, e2) = s
        .post(
            &format!("{C}/lines/{line2_id}/extensions"),
            &t,
            json!({"exten": "1002", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{e2}");
    assert_eq!(e2["lines"], json!([{"id": line2_id}]));
    let (_, got) = s.get(&format!("{C}/lines/{line2_id}"), &t).await;
    assert_eq!(
        (got["name"].clone(), got["protocol"].clone()),
        (json!("dahdi/i1"), json!("custom"))
    );

    // Dissociations.
    no_content(&s, Method::DELETE, &t, &format!("/lines/{line_id}/devices/{device_id}")).await;
    no_content(&s, Method::DELETE, &t, &format!("/lines/{line_id}/extensions/{ext_id}")).await;
    let (code, body) = s.delete(&format!("{C}/lines/{line_id}/extensions/{ext_id}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "not associated");
    no_content(
        &s,
        Method::DELETE,
        &t,
        &format!("/lines/{line_id}/endpoints/sip/{sip_uuid}"),
    )
    .await;
    assert!(calllog_rows(&s).await.is_empty());
    no_content(
        &s,
        Method::PUT,
        &t,
        &format!("/lines/{line_id}/endpoints/sip/{sip_uuid}"),
    )
    .await;
    assert_eq!(calllog_rows(&s).await.len(), 1);

    // Deleting a line frees its endpoint and extension and leaves calllog_line.
    no_content(&s, Method::DELETE, &t, &format!("/lines/{line_id}")).await;
    assert!(calllog_rows(&s).await.is_empty());
    let (_, got_sip) = s.get(&format!("{C}/endpoints/sip/{sip_uuid}"), &t).await;
    assert_eq!(got_sip["line"], Value::Null);
    no_content(&s, Method::DELETE, &t, &format!("/endpoints/sip/{sip_uuid}")).await;
    no_content(&s, Method::DELETE, &t, &format!("/extensions/{ext_id}")).await;
    // A context with lines cannot be deleted.
    let (code, body) = s
        .call(Method::GET, &format!("{C}/contexts?name=default"), Some(&t), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let ctx_id = body["items"][0]["id"].as_i64().expect("context id");
    let (code, body) = s.delete(&format!("{C}/contexts/{ctx_id}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_confd_error(&body, "still associated");

    // Events: names, routing keys, and never the password.
    let mut seen = Vec::new();
    while let Ok(ev) = bus.try_recv() {
        assert!(!ev.to_json().to_string().contains(PASSWORD), "secret in {}", ev.name);
        seen.push((ev.name.clone(), ev.routing_key.clone(), ev.data.clone()));
    }
    let find = |name: &str| {
        seen.iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>()))
            .clone()
    };
    for name in [
        "sip_transport_created",
        "sip_endpoint_template_created",
        "line_created",
        "sip_endpoint_created",
        "sip_endpoint_edited",
        "line_deleted",
        "device_created",
        "custom_endpoint_created",
        "line_endpoint_custom_associated",
        "line_extension_dissociated",
        "line_device_dissociated",
        "line_endpoint_sip_dissociated",
    ] {
        find(name);
    }
    let (_, rk, data) = find("line_endpoint_sip_associated");
    assert_eq!(rk, format!("config.lines.{line_id}.endpoints.sip.{sip_uuid}.updated"));
    assert_eq!(data["line"]["id"], line_id);
    assert_eq!(data["endpoint_sip"]["uuid"], sip_uuid.as_str());
    let (_, rk, data) = find("line_extension_associated");
    assert_eq!(rk, "config.line_extension_associated.updated");
    assert_eq!(data, json!({"line_id": line_id, "extension_id": ext_id}));
    let (_, rk, data) = find("line_device_associated");
    assert_eq!(rk, format!("config.lines.{line_id}.devices.{device_id}.updated"));
    assert_eq!(data["device"]["id"], device_id.as_str());
    let (_, _, data) = find("device_created");
    assert_eq!(data, json!({"device_id": device_id}));
    let (_, _, data) = find("sip_endpoint_created");
    assert_eq!(data["auth_section_options"], json!([["username", "alice"]]));

    // Reloads wait (no Asterisk here): pjsip and the dialplan.
    let pending = s.app().confd.reloader.pending();
    assert!(
        pending.contains(&Reload::Pjsip) && pending.contains(&Reload::Dialplan),
        "{pending:?}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t).await;
    let transport = created(&s, &t, "/sip/transports", json!({"name": "udp", "options": []})).await;
    created(&s, &t, "/endpoints/sip", json!({"name": "taken"})).await;
    created(&s, &t, "/endpoints/custom", json!({"interface": "dahdi/i9"})).await;
    created(&s, &t, "/devices", json!({"mac": "00:11:22:33:44:55"})).await;
    created(
        &s,
        &t,
        "/lines",
        json!({"context": "default", "provisioning_code": "123456"}),
    )
    .await;
    let missing = uuid::Uuid::new_v4();

    let cases: Vec<(&str, Value, &str)> = vec![
        // SIP endpoints.
        ("/endpoints/sip", json!({"name": "bad name"}), "field 'name'"),
        ("/endpoints/sip", json!({"name": "x]y"}), "field 'name'"),
        ("/endpoints/sip", json!({"name": "taken"}), "already exists"),
        ("/endpoints/sip", json!({"name": "udp"}), "already exists"),
        ("/endpoints/sip", json!({"label": "a\nb"}), "field 'label'"),
        (
            "/endpoints/sip",
            json!({"auth_section_options": [["password", "x\ny"]]}),
            "field 'auth_section_options[0]'",
        ),
        (
            "/endpoints/sip",
            json!({"auth_section_options": [["username", "a"], ["password", "p;w"]]}),
            "field 'auth_section_options[1]'",
        ),
        (
            "/endpoints/sip",
            json!({"endpoint_section_options": [["[general]", "x"]]}),
            "field 'endpoint_section_options[0]'",
        ),
        (
            "/endpoints/sip",
            json!({"endpoint_section_options": [["type", "aor"]]}),
            "field 'endpoint_section_options[0]'",
        ),
        (
            "/endpoints/sip",
            json!({"aor_section_options": [["max contacts", "1"]]}),
            "field 'aor_section_options[0]'",
        ),
        (
            "/endpoints/sip",
            json!({"aor_section_options": [["contact", "sip:x\r\n[evil]"]]}),
            "field 'aor_section_options[0]'",
        ),
        (
            "/endpoints/sip",
            json!({"identify_section_options": [["match"]]}),
            "identify_section_options",
        ),
        (
            "/endpoints/sip",
            json!({"templates": [{"uuid": missing}]}),
            "field 'templates[0]'",
        ),
        (
            "/endpoints/sip",
            json!({"templates": [{"uuid": "nope"}]}),
            "templates[0]",
        ),
        (
            "/endpoints/sip",
            json!({"transport": {"uuid": missing}}),
            "field 'transport'",
        ),
        ("/endpoints/sip", json!({"bogus": 1}), "field 'bogus'"),
        // Transports.
        (
            "/sip/transports",
            json!({"name": "udp", "options": []}),
            "already exists",
        ),
        ("/sip/transports", json!({"name": "tcp"}), "field 'options'"),
        (
            "/sip/transports",
            json!({"name": "tcp", "options": [["bind", "0.0.0.0:5060;x"]]}),
            "field 'options[0]'",
        ),
        // SCCP and custom endpoints.
        (
            "/endpoints/sccp",
            json!({"options": [["secret", "x"]]}),
            "field 'options[0]'",
        ),
        ("/endpoints/custom", json!({"interface": "dahdi/i9"}), "already exists"),
        (
            "/endpoints/custom",
            json!({"interface": "dahdi/i1,evil"}),
            "field 'interface'",
        ),
        ("/endpoints/custom", json!({}), "field 'interface'"),
        // Lines.
        ("/lines", json!({}), "field 'context': Missing data"),
        ("/lines", json!({"context": "nowhere"}), "field 'context'"),
        ("/lines", json!({"context": "to-extern"}), "field 'context'"),
        (
            "/lines",
            json!({"context": "default", "provisioning_code": "12345"}),
            "field 'provisioning_code'",
        ),
        (
            "/lines",
            json!({"context": "default", "provisioning_code": "123456"}),
            "already exists",
        ),
        (
            "/lines",
            json!({"context": "default", "position": 0}),
            "field 'position'",
        ),
        (
            "/lines",
            json!({"context": "default", "position": "1"}),
            "field 'position'",
        ),
        (
            "/lines",
            json!({"context": "default", "caller_id_num": "12ab"}),
            "field 'caller_id_num'",
        ),
        (
            "/lines",
            json!({"context": "default", "caller_id_name": "a\nb"}),
            "field 'caller_id_name'",
        ),
        (
            "/lines",
            json!({"context": "default", "registrar": "a b"}),
            "field 'registrar'",
        ),
        // Devices.
        ("/devices", json!({"mac": "00:11:22:33:44"}), "field 'mac'"),
        ("/devices", json!({"mac": "00-11-22-33-44-55"}), "already exists"),
        ("/devices", json!({"ip": "10.0.0.300"}), "field 'ip'"),
        ("/devices", json!({"plugin": "a/b"}), "field 'plugin'"),
    ];
    assert!(cases.len() >= 20);
    for (path, body, needle) in cases {
        let (code, resp) = s.post(&format!("{C}{path}"), &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {body}: {resp}");
        assert_confd_error(&resp, needle);
        // No error echoes an option value (they may be passwords).
        assert!(!resp.to_string().contains("p;w"), "{resp}");
    }
    // A template cannot inherit from itself.
    let tpl = created(&s, &t, "/endpoints/sip/templates", json!({"name": "tpl-a"})).await;
    let (code, body) = s
        .put(
            &format!("{C}/endpoints/sip/templates/{}", tpl["uuid"].as_str().expect("uuid")),
            &t,
            json!({"templates": [{"uuid": tpl["uuid"]}]}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "field 'templates'");
    // Partial PUT keeps the other fields; provisioning code stays unique.
    let (_, lines) = s.get(&format!("{C}/lines"), &t).await;
    let id = lines["items"][0]["id"].as_i64().expect("line");
    let (code, _) = s
        .put(&format!("{C}/lines/{id}"), &t, json!({"caller_id_name": "Alice"}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/lines/{id}"), &t).await;
    assert_eq!(
        (got["caller_id_name"].clone(), got["provisioning_code"].clone()),
        (json!("Alice"), json!("123456"))
    );
    let _ = transport;
}

#[tokio::test]
async fn association_rules_unknown_ids_and_tenants() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t).await;
    let l1 = created(&s, &t, "/lines", json!({"context": "default"})).await["id"].clone();
    let l2 = created(&s, &t, "/lines", json!({"context": "default"})).await["id"].clone();
    let e1 = created(&s, &t, "/endpoints/sip", json!({})).await["uuid"].clone();
    let e1 = e1.as_str().expect("uuid").to_string();
    let sccp = created(&s, &t, "/endpoints/sccp", json!({"options": [["cid_name", "Bob"]]})).await["id"].clone();
    let x_user = created(&s, &t, "/extensions", json!({"exten": "1100", "context": "default"})).await["id"].clone();
    let x_group = created(&s, &t, "/extensions", json!({"exten": "2000", "context": "default"})).await["id"].clone();
    let x_out = created(&s, &t, "/extensions", json!({"exten": "_0X.", "context": "to-extern"})).await["id"].clone();
    let dev = created(&s, &t, "/devices", json!({})).await["id"].clone();
    let dev = dev.as_str().expect("device").to_string();

    let bad = |path: String, needle: &'static str| {
        let s = &s;
        let t = t.clone();
        async move {
            let (code, body) = s.call(Method::PUT, &format!("{C}{path}"), Some(&t), None).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "PUT {path}: {body}");
            assert_confd_error(&body, needle);
        }
    };
    // An extension needs an endpoint on the line; a device needs endpoint and extension.
    bad(format!("/lines/{l1}/extensions/{x_user}"), "endpoint").await;
    bad(format!("/lines/{l1}/devices/{dev}"), "endpoint").await;
    no_content(&s, Method::PUT, &t, &format!("/lines/{l1}/endpoints/sip/{e1}")).await;
    bad(format!("/lines/{l1}/devices/{dev}"), "extension").await;
    // One endpoint per line, an endpoint on one line.
    bad(format!("/lines/{l1}/endpoints/sccp/{sccp}"), "already associated").await;
    bad(format!("/lines/{l2}/endpoints/sip/{e1}"), "already associated").await;
    no_content(&s, Method::PUT, &t, &format!("/lines/{l2}/endpoints/sccp/{sccp}")).await;
    // Extensions: internal context, user ranges, not another line's.
    bad(format!("/lines/{l1}/extensions/{x_group}"), "outside of range").await;
    bad(format!("/lines/{l1}/extensions/{x_out}"), "internal").await;
    no_content(&s, Method::PUT, &t, &format!("/lines/{l1}/extensions/{x_user}")).await;
    bad(
        format!("/lines/{l2}/extensions/{x_user}"),
        "already associated with a Line",
    )
    .await;
    let (_, l2obj) = s.get(&format!("{C}/lines/{l2}"), &t).await;
    assert_eq!(
        (l2obj["protocol"].clone(), l2obj["endpoint_sccp"].clone()),
        (json!("sccp"), json!({"id": sccp}))
    );
    // Wrong endpoint on dissociation.
    let (code, body) = s.delete(&format!("{C}/lines/{l2}/endpoints/sip/{e1}"), &t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "not associated");

    // Unknown ids: 404 naming the resource.
    for (path, needle) in [
        (format!("/lines/999/endpoints/sip/{e1}"), "Line was not found"),
        (
            format!("/lines/{l1}/endpoints/sip/{}", uuid::Uuid::new_v4()),
            "SIPEndpoint was not found",
        ),
        (
            format!("/lines/{l1}/endpoints/custom/999"),
            "CustomEndpoint was not found",
        ),
        (format!("/lines/{l1}/extensions/999"), "Extension was not found"),
        (
            format!("/lines/{l1}/devices/{}", uuid::Uuid::new_v4().simple()),
            "Device was not found",
        ),
        (format!("/lines/{l1}/endpoints/iax/1"), "not found"),
    ] {
        let (code, body) = s.call(Method::PUT, &format!("{C}{path}"), Some(&t), None).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "PUT {path}: {body}");
        assert_confd_error(&body, needle);
    }
    let (code, _) = s.get(&format!("{C}/lines/999"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.get(&format!("{C}/devices/999/lines"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Another tenant: our line is a 404 there, transports are shared, our templates are not.
    let (_, a) = s.post("/tenants", &t, json!({"name": "tenant a", "slug": "ta"})).await;
    let a = a["uuid"].as_str().expect("tenant").to_string();
    let h = [("Accent-Tenant", a.as_str())];
    let (code, _) = s
        .call_with_headers(Method::GET, &format!("{C}/lines/{l1}"), Some(&t), None, &h)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, body) = s
        .call_with_headers(
            Method::PUT,
            &format!("{C}/lines/{l1}/endpoints/sip/{e1}"),
            Some(&t),
            None,
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    let transport = created(
        &s,
        &t,
        "/sip/transports",
        json!({"name": "wss", "options": [["protocol", "wss"]]}),
    )
    .await;
    let (code, list) = s
        .call_with_headers(Method::GET, &format!("{C}/sip/transports"), Some(&t), None, &h)
        .await;
    assert_eq!((code, list["total"].clone()), (StatusCode::OK, json!(1)));
    let tpl = created(&s, &t, "/endpoints/sip/templates", json!({})).await;
    let (code, body) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/endpoints/sip"),
            Some(&t),
            Some(json!({"templates": [{"uuid": tpl["uuid"]}], "transport": {"uuid": transport["uuid"]}})),
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_confd_error(&body, "templates[0]");
    // A line of tenant A cannot use the master tenant's context.
    let (code, body) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/lines"),
            Some(&t),
            Some(json!({"context": "default"})),
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (_, list) = s
        .call_with_headers(Method::GET, &format!("{C}/lines"), Some(&t), None, &h)
        .await;
    assert_eq!(list["total"], 0);

    // Deleting a transport moves its endpoints to the fallback, or leaves them without.
    let udp = created(&s, &t, "/sip/transports", json!({"name": "udp", "options": []})).await;
    let ep = created(
        &s,
        &t,
        "/endpoints/sip",
        json!({"transport": {"uuid": transport["uuid"]}}),
    )
    .await;
    let ep_uuid = ep["uuid"].as_str().expect("uuid").to_string();
    no_content(
        &s,
        Method::DELETE,
        &t,
        &format!(
            "/sip/transports/{}?fallback={}",
            transport["uuid"].as_str().expect("uuid"),
            udp["uuid"].as_str().expect("uuid")
        ),
    )
    .await;
    let (_, got) = s.get(&format!("{C}/endpoints/sip/{ep_uuid}"), &t).await;
    assert_eq!(got["transport"], json!({"uuid": udp["uuid"]}));
    no_content(
        &s,
        Method::DELETE,
        &t,
        &format!("/sip/transports/{}", udp["uuid"].as_str().expect("uuid")),
    )
    .await;
    let (_, got) = s.get(&format!("{C}/endpoints/sip/{ep_uuid}"), &t).await;
    assert_eq!(got["transport"], Value::Null);
    // Deleting a template removes it from its endpoints.
    let ep2 = created(&s, &t, "/endpoints/sip", json!({"templates": [{"uuid": tpl["uuid"]}]})).await;
    no_content(
        &s,
        Method::DELETE,
        &t,
        &format!("/endpoints/sip/templates/{}", tpl["uuid"].as_str().expect("uuid")),
    )
    .await;
    let (_, got) = s
        .get(
            &format!("{C}/endpoints/sip/{}", ep2["uuid"].as_str().expect("uuid")),
            &t,
        )
        .await;
    assert_eq!(got["templates"], json!([]));
}

#[tokio::test]
async fn acls_are_checked_per_association() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let master = s.master_tenant().await;
    let user = s.create_user_sql(&master, "bob", "pw-bob").await;
    let _ = user;
    let tok = s.login("bob", "pw-bob").await;
    for (method, path) in [
        (Method::GET, format!("{C}/lines")),
        (Method::POST, format!("{C}/endpoints/sip")),
        (
            Method::PUT,
            format!("{C}/lines/1/endpoints/sip/{}", uuid::Uuid::new_v4()),
        ),
        (Method::DELETE, format!("{C}/lines/1/extensions/1")),
        (Method::PUT, format!("{C}/lines/1/devices/abc")),
        (Method::GET, format!("{C}/devices/abc/lines")),
        (Method::GET, format!("{C}/sip/transports")),
    ] {
        let (code, body) = s.call(method.clone(), &path, Some(&tok), Some(json!({}))).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let (code, _) = s.get(&format!("{C}/lines"), &t).await;
    assert_eq!(code, StatusCode::OK);
}
