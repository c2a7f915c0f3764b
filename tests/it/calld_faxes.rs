//! calld faxes against the fake Asterisk: a PDF turned into a TIFF by the real
//! Ghostscript (installed by `.ci/run`), the ARI originate that sends it through
//! `accent-txfax`, the result from the dialplan's `AccentFaxProgress` user event or
//! from a hangup before it, the events to the tenant and the user, and bad input.

use std::time::Duration;

use crate::calld_calls::{default_context, linked, originates, user};
use crate::common::{wait_for, TestServer};
use accentd::bus::Event;
use accentd::fake_asterisk::ami::FakeAmi;
use accentd::fake_asterisk::ari::FakeAri;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::broadcast::Receiver;

const CALLD: &str = "/api/calld/1.0";

/// A one-page PDF with a line of text, its cross-reference table exact.
fn tiny_pdf() -> Vec<u8> {
    let content = "BT /F1 24 Tf 72 720 Td (accentd fax test) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

async fn started(tweak: impl FnOnce(&mut accentd::config::Config)) -> (FakeAmi, FakeAri, TestServer) {
    linked("21", |c| {
        c.calld.fax_max_bytes = 256 * 1024;
        tweak(c);
    })
    .await
}

async fn post(s: &TestServer, path: &str, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = s
        .client
        .post(format!("{}{CALLD}{path}", s.base))
        .header("X-Auth-Token", token)
        .header("Content-Type", "application/pdf")
        .body(body)
        .send()
        .await
        .expect("send");
    let code = r.status();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn next_fax_event(bus: &mut Receiver<std::sync::Arc<Event>>) -> std::sync::Arc<Event> {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), bus.recv())
            .await
            .expect("a fax event")
            .expect("bus");
        if e.name.starts_with("fax_") {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_is_converted_sent_and_reported() {
    let (ami, ari, s) = started(|_| {}).await;
    let tenant = s.master_tenant().await;
    let mut bus = s.app().bus.subscribe();
    let fax_dir = s.app().config.calld.fax_dir.clone();

    let (code, fax) = post(
        &s,
        "/faxes?context=default&extension=5551234&caller_id=Acme%20%3C5550000%3E&ivr_extension=12%23&wait_time=3",
        &s.admin_token,
        tiny_pdf(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{fax}");
    let id = fax["id"].as_str().expect("id").to_string();
    assert_eq!(
        fax,
        json!({"id": id, "call_id": id, "context": "default", "extension": "5551234",
               "caller_id": "Acme <5550000>", "ivr_extension": "12#", "wait_time": 3,
               "user_uuid": null, "tenant_uuid": tenant})
    );
    // The TIFF Asterisk will send, made by Ghostscript from the PDF (which is gone).
    let tiff = fax_dir.join(format!("{id}.tif"));
    let bytes = std::fs::read(&tiff).expect("the converted document");
    assert!(
        bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*"),
        "a TIFF file"
    );
    assert!(!fax_dir.join(format!("{id}.pdf")).exists());
    let sent = originates(&ari);
    assert_eq!(sent.len(), 1);
    let (query, body) = &sent[0];
    let expected: std::collections::BTreeMap<String, String> = [
        ("endpoint", "Local/5551234@default"),
        ("context", "accent-txfax"),
        ("extension", "s"),
        ("priority", "1"),
        ("callerId", "Acme <5550000>"),
        ("channelId", id.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(*query, expected);
    assert_eq!(
        body["variables"],
        json!({"ACCENT_FAX_ID": id, "ACCENT_FAX_PATH": tiff.to_string_lossy(), "ACCENT_FAX_WAIT_TIME": "3",
               "ACCENT_FAX_IVR_EXTENSION": "12#", "ACCENT_TENANT_UUID": tenant, "ACCENT_USERUUID": ""})
    );
    let created = next_fax_event(&mut bus).await;
    assert_eq!(
        (created.name.as_str(), created.routing_key.as_str()),
        ("fax_outbound_created", "faxes.outbound.created")
    );
    assert_eq!(created.data, fax);
    assert_eq!(created.tenant_uuid.map(|t| t.to_string()), Some(tenant.clone()));

    // The dialplan's report: sent. The document is deleted.
    let frame = format!(
        "Event: UserEvent\r\nPrivilege: user,all\r\nChannel: Local/5551234@default-00000001;1\r\nUniqueid: {id}\r\nUserEvent: AccentFaxProgress\r\nFaxID: {id}\r\nStatus: SUCCESS\r\nError: OK\r\nPages: 1\r\n\r\n"
    );
    ami.send_raw(frame.as_bytes());
    let done = next_fax_event(&mut bus).await;
    assert_eq!(done.name, "fax_outbound_succeeded");
    assert_eq!(done.routing_key, format!("faxes.outbound.{id}.succeeded"));
    assert_eq!(done.data, fax);
    wait_for("document deleted", || !tiff.exists()).await;
    // The channel's hangup after it changes nothing.
    let hangup = format!(
        "Event: Hangup\r\nPrivilege: call,all\r\nChannel: Local/5551234@default-00000001;1\r\nUniqueid: {id}\r\nCause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
    );
    ami.send_raw(hangup.as_bytes());

    // A user's TIFF from the user's own context; nobody answers.
    default_context(&s).await;
    let alice_user = user(&s, "Alice", "alice", "2001").await;
    let alice = s.login("alice", "pw-alice-123").await;
    let alice_uuid = alice_user["uuid"].as_str().map(str::to_string);
    let tiff_doc = bytes;
    let (code, mine) = post(&s, "/users/me/faxes?extension=5559999", &alice, tiff_doc.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "{mine}");
    let mine_id = mine["id"].as_str().expect("id").to_string();
    assert_eq!(mine["context"], "default");
    assert_eq!(mine["caller_id"], "Accent Fax");
    assert_eq!(mine["user_uuid"].as_str().map(str::to_string), alice_uuid);
    let copied = std::fs::read(fax_dir.join(format!("{mine_id}.tif"))).expect("stored as sent");
    assert_eq!(copied, tiff_doc, "a TIFF is sent as it is");
    let mut names = Vec::new();
    for _ in 0..2 {
        let e = next_fax_event(&mut bus).await;
        names.push((e.name.clone(), e.routing_key.clone()));
    }
    let user_key = |what: &str| {
        format!(
            "faxes.outbound.users.{}.{what}",
            mine["user_uuid"].as_str().unwrap_or_default()
        )
    };
    assert_eq!(
        names,
        vec![
            ("fax_outbound_created".to_string(), "faxes.outbound.created".to_string()),
            ("fax_outbound_user_created".to_string(), user_key("created")),
        ]
    );
    let hangup = format!(
        "Event: Hangup\r\nPrivilege: call,all\r\nChannel: Local/5559999@default-00000002;1\r\nUniqueid: {mine_id}\r\nCause: 19\r\nCause-txt: No user responding\r\n\r\n"
    );
    ami.send_raw(hangup.as_bytes());
    let failed = next_fax_event(&mut bus).await;
    assert_eq!(failed.name, "fax_outbound_failed");
    assert_eq!(failed.data["error"], "call not answered: No user responding");
    assert_eq!(failed.data["id"], json!(mine_id));
    let failed = next_fax_event(&mut bus).await;
    assert_eq!(
        (failed.name.as_str(), failed.routing_key.clone()),
        ("fax_outbound_user_failed", user_key("failed"))
    );
    wait_for("document deleted", || !fax_dir.join(format!("{mine_id}.tif")).exists()).await;

    // The dialplan's report of a failed send carries Asterisk's reason.
    let (_, third) = post(
        &s,
        "/faxes?context=default&extension=5551234",
        &s.admin_token,
        tiff_doc.clone(),
    )
    .await;
    let third_id = third["id"].as_str().expect("id").to_string();
    next_fax_event(&mut bus).await;
    let frame = format!(
        "Event: UserEvent\r\nPrivilege: user,all\r\nUniqueid: {third_id}\r\nUserEvent: AccentFaxProgress\r\nFaxID: {third_id}\r\nStatus: FAILED\r\nError: NO_FAX\r\nPages: 0\r\n\r\n"
    );
    ami.send_raw(frame.as_bytes());
    let failed = next_fax_event(&mut bus).await;
    assert_eq!(
        (failed.name.as_str(), failed.data["error"].clone()),
        ("fax_outbound_failed", json!("NO_FAX"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_faxes_are_refused() {
    let (_ami, ari, s) = started(|_| {}).await;
    let t = s.admin_token.clone();
    let ok = "/faxes?context=default&extension=5551234";
    for (path, body, status, error_id) in [
        (
            ok,
            b"hello, not a document".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid-fax-document",
        ),
        (ok, Vec::new(), StatusCode::BAD_REQUEST, "invalid-fax-document"),
        (
            ok,
            b"%PDF-1.4\nthis is no PDF at all\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid-fax-document",
        ),
        (
            "/faxes?context=default",
            tiny_pdf(),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            "/faxes?extension=1234",
            tiny_pdf(),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            "/faxes?context=default&extension=12,34",
            tiny_pdf(),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            "/faxes?context=default&extension=1&wait_time=abc",
            tiny_pdf(),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            "/faxes?context=default&extension=1&wait_time=9999",
            tiny_pdf(),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            "/faxes?context=default&extension=1&ivr_extension=1a",
            tiny_pdf(),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
        (
            "/faxes?context=default&extension=1&colour=yes",
            tiny_pdf(),
            StatusCode::BAD_REQUEST,
            "invalid-data",
        ),
    ] {
        let (code, answer) = post(&s, path, &t, body).await;
        assert_eq!(
            (code, answer["error_id"].clone()),
            (status, json!(error_id)),
            "{path}: {answer}"
        );
    }
    // Too big: refused before it is read whole.
    let (code, answer) = post(&s, ok, &t, vec![b'x'; 300 * 1024]).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["message"].is_string());
    // A user: the context is the user's; without a line there is none.
    default_context(&s).await;
    let (code, lineless) = s
        .post(
            "/api/confd/1.1/users",
            &t,
            json!({"firstname": "Bob", "auth": {"username": "bob", "password": "pw-bob-123456"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{lineless}");
    let bob = s.login("bob", "pw-bob-123456").await;
    let (code, answer) = post(&s, "/users/me/faxes?extension=1234", &bob, tiny_pdf()).await;
    assert_eq!(
        (code, answer["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("user-missing-main-line"))
    );
    let (code, _) = post(&s, "/users/me/faxes?extension=1234&context=default", &bob, tiny_pdf()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    // The admin endpoint is not a user's.
    let (code, _) = post(&s, ok, &bob, tiny_pdf()).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = post(&s, ok, "not-a-token", tiny_pdf()).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(
        !ari.requests()
            .iter()
            .any(|r| r.method == "POST" && r.uri.starts_with("/ari/channels?")),
        "nothing was sent"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&s.app().config.calld.fax_dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "no document left behind: {leftovers:?}");

    // Asterisk unreachable: 503, nothing left behind.
    ari.stop().await;
    let (code, answer) = post(&s, ok, &t, tiny_pdf()).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let leftovers = std::fs::read_dir(&s.app().config.calld.fax_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ghostscript_a_pdf_cannot_be_sent() {
    let (_ami, ari, s) = started(|c| c.calld.fax_ghostscript = "/nonexistent/gs".into()).await;
    let (code, answer) = post(&s, "/faxes?context=default&extension=1", &s.admin_token, tiny_pdf()).await;
    assert_eq!(
        (code, answer["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("fax-unavailable"))
    );
    assert!(originates(&ari).is_empty());
}
