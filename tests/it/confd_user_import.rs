//! Users CSV import/export over HTTP: our 100-row file in upstream's format
//! (tests/confd-fixtures/users_100.csv; upstream's own file too when ../shared is
//! there) creates users that log in, with their lines, SIP credentials, extensions,
//! voicemails and incalls; the export gives the same rows back and imports again;
//! bad files and rows are reported by row with nothing written; ACLs and tenants.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";
const FIXTURE: &str = "tests/confd-fixtures/users_100.csv";
const UPSTREAM: &str = "../shared/reference/wazo-benchmark/100entries.csv";

type Events = tokio::sync::broadcast::Receiver<std::sync::Arc<accentd::bus::Event>>;

fn drain(rx: &mut Events) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        seen.push(ev.name.clone());
    }
    seen
}

/// POST /users/import with a raw CSV body.
async fn import(s: &TestServer, t: &str, csv: impl Into<Vec<u8>>, tenant: Option<&str>) -> (StatusCode, Value) {
    let mut req = s
        .client
        .post(format!("{}{C}/users/import", s.base))
        .header("X-Auth-Token", t)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv.into());
    if let Some(tenant) = tenant {
        req = req.header("Accent-Tenant", tenant);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// GET /users/export: status, content type, body.
async fn export(s: &TestServer, t: &str, tenant: Option<&str>) -> (StatusCode, String, String) {
    let mut req = s
        .client
        .get(format!("{}{C}/users/export", s.base))
        .header("X-Auth-Token", t);
    if let Some(tenant) = tenant {
        req = req.header("Accent-Tenant", tenant);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ctype, resp.text().await.unwrap_or_default())
}

async fn created(s: &TestServer, t: &str, path: &str, body: Value, tenant: Option<&str>) -> Value {
    let h: Vec<(&str, &str)> = tenant.map(|t| ("Accent-Tenant", t)).into_iter().collect();
    let (code, obj) = s
        .call_with_headers(Method::POST, &format!("{C}{path}"), Some(t), Some(body.clone()), &h)
        .await;
    assert_eq!(code, StatusCode::CREATED, "POST {path} {body}: {obj}");
    obj
}

/// The contexts upstream's file names: users and voicemails 6000-7999, DIDs 6000-7999.
async fn contexts(s: &TestServer, t: &str, tenant: Option<&str>, suffix: &str) {
    for (name, kind, ranges) in [
        ("INTERNAL_CONTEXT", "internal", "user_ranges"),
        ("INCALL_CONTEXT", "incall", "incall_ranges"),
    ] {
        let mut body = json!({"name": format!("{name}{suffix}"), "label": kind, "type": kind});
        body[ranges] = json!([{"start": "6000", "end": "7999"}]);
        created(s, t, "/contexts", body, tenant).await;
    }
}

/// The rows of a CSV as column -> cell maps.
fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().expect("header").iter().map(str::to_owned).collect();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            header.iter().cloned().zip(rec.iter().map(str::to_owned)).collect()
        })
        .collect()
}

/// Auth users whose username is LIKE `pattern`.
async fn auth_users(s: &TestServer, pattern: &str) -> i64 {
    let pattern = pattern.to_string();
    s.app()
        .store
        .read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM auth_user WHERE username LIKE ?1",
                [pattern],
                |r| r.get(0),
            )
            .map_err(accentd::api::error::ApiError::from)
        })
        .await
        .expect("count")
}

async fn total(s: &TestServer, t: &str, path: &str) -> u64 {
    let (code, body) = s.get(&format!("{C}{path}"), t).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["total"].as_u64().expect("total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_100_row_file_imports_logs_in_and_exports_back() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t, None, "").await;
    let mut events = s.app().bus.subscribe();
    let file = std::fs::read_to_string(FIXTURE).expect("fixture");
    let input = csv_rows(&file);
    assert_eq!(input.len(), 100);

    let (code, body) = import(&s, &t, file.clone(), None).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let created = body["created"].as_array().expect("created");
    assert_eq!(created.len(), 100);
    for (i, c) in created.iter().enumerate() {
        assert_eq!(c["row_number"], i + 1);
        for key in [
            "user_id",
            "line_id",
            "extension_id",
            "voicemail_id",
            "incall_extension_id",
        ] {
            assert!(c[key].as_i64().is_some(), "{key} in {c}");
        }
        let sip = input[i]["line_protocol"] == "sip";
        assert_eq!(c["sip_uuid"].is_string(), sip, "{c}");
    }
    assert_eq!(total(&s, &t, "/users").await, 100);
    assert_eq!(total(&s, &t, "/lines").await, 100);
    assert_eq!(total(&s, &t, "/voicemails").await, 100);
    assert_eq!(total(&s, &t, "/incalls").await, 100);
    assert_eq!(total(&s, &t, "/extensions").await, 200);

    // Row 2 in detail: the user, its auth login, its line and its DID.
    let row = &input[1];
    let ids = &created[1];
    let (_, user) = s.get(&format!("{C}/users/{}", ids["user_id"]), &t).await;
    assert_eq!(user["firstname"], row["firstname"].as_str());
    assert_eq!(user["lastname"], row["lastname"].as_str());
    assert_eq!(user["outgoing_caller_id"], row["outgoing_caller_id"].as_str());
    assert_eq!(user["language"], row["language"].as_str());
    assert_eq!(user["ring_seconds"].to_string(), row["ring_seconds"]);
    assert_eq!(user["simultaneous_calls"].to_string(), row["simultaneous_calls"]);
    assert_eq!(user["lines"][0]["id"], ids["line_id"]);
    assert_eq!(user["voicemail"]["id"], ids["voicemail_id"]);
    s.login(&row["username"], &row["password"]).await;
    let (_, ext) = s
        .get(&format!("{C}/extensions/{}", ids["incall_extension_id"]), &t)
        .await;
    assert_eq!(ext["exten"], row["incall_exten"].as_str());
    assert_eq!(ext["context"], "INCALL_CONTEXT");
    let incall_id = ext["incall"]["id"].clone();
    let (_, incall) = s.get(&format!("{C}/incalls/{incall_id}"), &t).await;
    assert_eq!(incall["destination"]["type"], "user", "{incall}");
    assert_eq!(incall["destination"]["user_id"], ids["user_id"]);
    assert_eq!(
        incall["destination"]["ring_time"].as_f64(),
        row["incall_ring_seconds"].parse::<f64>().ok()
    );

    // A SIP row with credentials keeps them; one without gets generated ones.
    let with = input
        .iter()
        .position(|r| r["line_protocol"] == "sip" && !r["sip_username"].is_empty());
    let without = input
        .iter()
        .position(|r| r["line_protocol"] == "sip" && r["sip_username"].is_empty());
    for (i, given) in [
        (with.expect("row with creds"), true),
        (without.expect("row without"), false),
    ] {
        let (_, sip) = s
            .get(
                &format!("{C}/endpoints/sip/{}", created[i]["sip_uuid"].as_str().expect("sip")),
                &t,
            )
            .await;
        let opts: BTreeMap<String, String> = sip["auth_section_options"]
            .as_array()
            .expect("options")
            .iter()
            .map(|kv| {
                (
                    kv[0].as_str().unwrap_or_default().into(),
                    kv[1].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        if given {
            assert_eq!(opts["username"], input[i]["sip_username"]);
            assert_eq!(opts["password"], input[i]["sip_secret"]);
        } else {
            assert_eq!(opts["username"].len(), 8, "{sip}");
            assert!(opts["password"].len() >= 8, "{sip}");
        }
    }

    // Every creation is an event; the reloads are asked for.
    let seen = drain(&mut events);
    let count = |n: &str| seen.iter().filter(|e| e.as_str() == n).count();
    assert_eq!(count("user_created"), 100);
    assert_eq!(count("line_created"), 100);
    assert_eq!(count("voicemail_created"), 100);
    assert_eq!(count("incall_created"), 100);
    assert_eq!(count("extension_created"), 200);
    assert_eq!(count("user_line_associated"), 100);
    assert_eq!(count("incall_extension_associated"), 100);

    // The export gives every row back (passwords excepted: only their hashes are kept).
    let (code, ctype, text) = export(&s, &t, None).await;
    assert_eq!(code, StatusCode::OK);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let out = csv_rows(&text);
    assert_eq!(out.len(), 100);
    let skip = ["entity_id", "cti_profile_name", "cti_profile_enabled", "password"];
    for (given, got) in input.iter().zip(&out) {
        for (col, cell) in given {
            if skip.contains(&col.as_str()) || (col.starts_with("sip_") && cell.is_empty()) {
                continue;
            }
            assert_eq!(got.get(col), Some(cell), "column {col} of {given:?}");
        }
        assert!(got["password"].is_empty());
        assert!(!got["uuid"].is_empty());
    }

    // The export imports again into another tenant, once its contexts exist there
    // (usernames are global, so they are renamed).
    let (_, other) = s.post("/tenants", &t, json!({"name": "copy", "slug": "copy"})).await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    contexts(&s, &t, Some(&other), "_COPY").await;
    let copy = text
        .replace("INTERNAL_CONTEXT", "INTERNAL_CONTEXT_COPY")
        .replace("INCALL_CONTEXT", "INCALL_CONTEXT_COPY")
        .replace(",imp", ",cpy");
    let mut rows = csv_rows(&copy);
    // The uuids are taken already: dropped so new ones are made.
    for r in &mut rows {
        r.remove("uuid");
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let cols: Vec<String> = rows[0].keys().cloned().collect();
    w.write_record(&cols).expect("header");
    for r in &rows {
        w.write_record(cols.iter().map(|c| r[c].as_str())).expect("row");
    }
    let (code, body) = import(&s, &t, w.into_inner().expect("csv"), Some(&other)).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (_, _, text2) = export(&s, &t, Some(&other)).await;
    assert_eq!(csv_rows(&text2).len(), 100);
    let (_, _, text1) = export(&s, &t, None).await;
    assert_eq!(csv_rows(&text1).len(), 100, "each tenant exports its own users");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_file_imports_when_present() {
    if !Path::new(UPSTREAM).exists() {
        eprintln!("{UPSTREAM} not here; skipped");
        return;
    }
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t, None, "").await;
    let (code, body) = import(&s, &t, std::fs::read(UPSTREAM).expect("file"), None).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"].as_array().map(Vec::len), Some(100));
    assert_eq!(total(&s, &t, "/users").await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_and_rows_write_nothing_and_name_the_row() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t, None, "").await;
    let header = "firstname,username,password,line_protocol,context,exten,incall_exten,incall_context";
    let good = |n: usize| format!("User{n},bulk{n},pw-bulk-{n}x,sip,INTERNAL_CONTEXT,{},,", 6100 + n);

    let cases: Vec<(&str, String, Option<usize>, &str)> = vec![
        ("empty body", String::new(), None, "not a CSV"),
        ("header only", format!("{header}\n"), None, "no user row"),
        (
            "unknown column",
            "firstname,shoe_size\nAnn,42\n".into(),
            None,
            "shoe_size",
        ),
        (
            "duplicated column",
            "firstname,firstname\nAnn,Bob\n".into(),
            None,
            "duplicated",
        ),
        (
            "ragged row",
            format!("{header}\n{}\nOnly,two\n", good(1)),
            None,
            "row 2",
        ),
        (
            "bad boolean",
            "firstname,enabled\nAnn,1\nBob,maybe\n".to_string(),
            Some(2),
            "enabled",
        ),
        (
            "bad language (row 3)",
            "firstname,language\nAnn,fr_FR\nBob,en_US\nCid,xx_XX\n".to_string(),
            Some(3),
            "language",
        ),
        (
            "extension outside the context's range",
            format!(
                "{header}\n{}\nOut,outx,pw-outx-123,sip,INTERNAL_CONTEXT,9999,,\n",
                good(1)
            ),
            Some(2),
            "range",
        ),
        (
            "unknown context",
            format!("{header}\n{}\nCtx,ctx,pw-ctx-1234,sip,NOWHERE,6200,,\n", good(1)),
            Some(2),
            "NOWHERE",
        ),
        (
            "same extension twice in the file",
            format!("{header}\n{}\n{}\n", good(1), good(1).replace("bulk1", "bulk9")),
            Some(2),
            "6101",
        ),
        (
            "same username twice in the file",
            format!("{header}\n{}\n{}\n", good(1), good(2).replace("bulk2,", "bulk1,")),
            Some(2),
            "username",
        ),
        (
            "incall in an internal context",
            format!(
                "{header}\n{}\nDid,did,pw-did-1234,sip,INTERNAL_CONTEXT,6300,6300,INTERNAL_CONTEXT\n",
                good(1)
            ),
            Some(2),
            "incall",
        ),
        ("not UTF-8", "firstname\n\u{0}".to_string() + "\u{ff}", None, "CSV"),
    ];
    for (what, body, row, needle) in cases {
        let bytes: Vec<u8> = if what == "not UTF-8" {
            vec![
                b'f', b'i', b'r', b's', b't', b'n', b'a', b'm', b'e', b'\n', 0xff, 0xfe, b'\n',
            ]
        } else {
            body.clone().into_bytes()
        };
        let (code, resp) = import(&s, &t, bytes, None).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{what}: {resp}");
        let errors = resp["errors"].as_array().unwrap_or_else(|| panic!("{what}: {resp}"));
        assert!(!errors.is_empty(), "{what}");
        let e = &errors[0];
        assert!(e["timestamp"].is_number(), "{what}: {resp}");
        assert!(
            e["message"].as_str().unwrap_or_default().contains(needle),
            "{what}: {needle:?} in {resp}"
        );
        match row {
            Some(n) => {
                assert_eq!(e["details"]["row_number"], n, "{what}: {resp}");
                assert!(e["details"]["row"].is_object(), "{what}: {resp}");
            }
            None => assert!(e["details"].get("row_number").is_none(), "{what}: {resp}"),
        }
        assert_eq!(total(&s, &t, "/users").await, 0, "{what}: nothing written");
        assert_eq!(total(&s, &t, "/lines").await, 0, "{what}: nothing written");
        assert_eq!(total(&s, &t, "/extensions").await, 0, "{what}: nothing written");
        assert_eq!(auth_users(&s, "bulk%").await, 0, "{what}: no auth user left");
    }

    // Several bad rows are all reported at once.
    let (code, resp) = import(&s, &t, "firstname,ring_seconds\nA,x\nB,10\nC,y\n", None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let rows: Vec<u64> = resp["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["details"]["row_number"].as_u64())
        .collect();
    assert_eq!(rows, vec![1]);
    let (code, resp) = import(&s, &t, "firstname,language\nA,xx\nB,en_US\nC,yy\n", None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let rows: Vec<u64> = resp["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["details"]["row_number"].as_u64())
        .collect();
    assert_eq!(rows, vec![1, 3], "{resp}");

    // An existing user's uuid or extension clashes too, naming the row.
    let (code, _) = import(&s, &t, format!("{header}\n{}\n", good(5)), None).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, resp) = import(
        &s,
        &t,
        format!("{header}\n{}\n{}\n", good(6), good(5).replace("bulk5", "bulk7")),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["errors"][0]["details"]["row_number"], 2);
    assert_eq!(total(&s, &t, "/users").await, 1);

    // PUT is disabled upstream.
    let resp = s
        .client
        .put(format!("{}{C}/users/import", s.base))
        .header("X-Auth-Token", &t)
        .body(format!("{header}\n"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_need_their_acls() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    contexts(&s, &t, None, "").await;
    let master = s.master_tenant().await;
    let csv = "firstname,lastname\nAnn,Able\n";

    let (code, _) = import(&s, "not-a-token", csv, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    s.create_user_sql(&master, "nobody", "pw-nobody-1").await;
    let nobody = s.login("nobody", "pw-nobody-1").await;
    let (code, _) = import(&s, &nobody, csv, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _, _) = export(&s, &nobody, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    // A policy with just the import ACL imports but cannot export.
    let (code, policy) = s
        .post(
            "/policies",
            &t,
            json!({"name": "importer", "acl": ["confd.users.import.create"]}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{policy}");
    let importer = s.create_user_sql(&master, "importer", "pw-importer-1").await;
    let (code, body) = s
        .call(
            Method::PUT,
            &format!("/users/{importer}/policies/{}", policy["uuid"].as_str().expect("uuid")),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let tok = s.login("importer", "pw-importer-1").await;
    let (code, body) = import(&s, &tok, csv, None).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, _, _) = export(&s, &tok, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _, text) = export(&s, &t, None).await;
    assert_eq!(code, StatusCode::OK);
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["firstname"], "Ann");
    assert_eq!(rows[0]["lastname"], "Able");
    assert_eq!(rows[0]["line_protocol"], "");
}
