//! call-logd beyond `/cdr`: recording media (download, delete, bulk delete), recording
//! exports (ZIP), `/retention` and the daily purge applying it. Files live in a temporary
//! recordings directory; paths outside it must never be read or deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::TestServer;
use accentd::calllog::cdr::model::{CallLog, Participant, Recording, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const API: &str = "/api/call-logd/1.0";

struct World {
    s: TestServer,
    master: Uuid,
    other: Uuid,
    alice_token: String,
    rec_dir: PathBuf,
    /// [alice→bob recorded, bob→carol recorded (no alice), other tenant recorded, alice→bob with
    /// a missing file]
    ids: Vec<i64>,
    recs: Vec<Uuid>,
}

fn participant(user: Uuid, role: Role) -> Participant {
    Participant {
        user_uuid: user,
        line_id: None,
        role,
        tags: vec![],
        answered: true,
        requested: role == Role::Destination,
        peer_exten: String::new(),
    }
}

fn recorded_log(tenant: Uuid, conv: &str, start_us: i64, users: &[Uuid], path: &Path) -> (CallLog, Uuid) {
    let uuid = Uuid::new_v4();
    let log = CallLog {
        tenant_uuid: tenant,
        conversation_id: conv.into(),
        start_us,
        answer_us: Some(start_us + 1_000_000),
        end_us: Some(start_us + 30_000_000),
        source_name: "A".into(),
        source_exten: "2001".into(),
        participants: users
            .iter()
            .enumerate()
            .map(|(i, u)| participant(*u, if i == 0 { Role::Source } else { Role::Destination }))
            .collect(),
        recordings: vec![Recording {
            uuid,
            start_us: start_us + 2_000_000,
            end_us: start_us + 20_000_000,
            path: Some(path.display().to_string()),
            deleted: false,
        }],
        ..CallLog::default()
    };
    (log, uuid)
}

fn now_us() -> i64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros()) as i64
}

/// Recording bytes: a WAV header then `n` bytes of a pattern (big enough to stream in chunks).
fn wav(n: usize, seed: u8) -> Vec<u8> {
    let mut v = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
    v.extend((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

async fn world() -> World {
    world_with(|_| {}).await
}

async fn world_with(tune: impl FnOnce(&mut accentd::config::Config)) -> World {
    // The recordings directory is read at start: a folder of the server's own data dir.
    let s = TestServer::start_with(|c| {
        c.call_logs.recordings_dir = c.data_dir.join("recordings");
        tune(c);
    })
    .await;
    let rec_dir_final = s.dir.path().join("recordings");
    std::fs::create_dir_all(rec_dir_final.join("t/monitor")).expect("mkdir");
    let master: Uuid = s.master_tenant().await.parse().expect("tenant");
    let alice: Uuid = s
        .create_user_sql(&master.to_string(), "alice", "alice-Pw-1")
        .await
        .parse()
        .expect("uuid");
    let (bob, carol) = (Uuid::new_v4(), Uuid::new_v4());
    let (st, other) = s.post("/tenants", &s.admin_token, json!({"name": "other"})).await;
    assert_eq!(st, StatusCode::OK, "{other}");
    let other: Uuid = other["uuid"].as_str().expect("uuid").parse().expect("uuid");

    let monitor = rec_dir_final.join("t/monitor");
    let t0 = now_us() - 3_600_000_000;
    let files = [monitor.join("a.wav"), monitor.join("b.wav"), monitor.join("c.wav")];
    for (i, f) in files.iter().enumerate() {
        std::fs::write(f, wav(if i == 0 { 3_000_000 } else { 1000 }, i as u8)).expect("write");
    }
    let (a, ra) = recorded_log(master, "1.1", t0, &[alice, bob], &files[0]);
    let (b, rb) = recorded_log(master, "1.2", t0 + 1_000_000, &[bob, carol], &files[1]);
    let (c, rc) = recorded_log(other, "1.3", t0 + 2_000_000, &[carol], &files[2]);
    let (d, rd) = recorded_log(master, "1.4", t0 + 3_000_000, &[alice, bob], &monitor.join("gone.wav"));
    let stored = s.app().calllog.store_logs(vec![a, b, c, d]).await.expect("store");
    let alice_token = s.login("alice", "alice-Pw-1").await;
    World {
        master,
        other,
        alice_token,
        rec_dir: rec_dir_final,
        ids: stored.iter().map(|l| l.id).collect(),
        recs: vec![ra, rb, rc, rd],
        s,
    }
}

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}{API}{path}", self.s.base)
    }

    fn media(&self, i: usize) -> String {
        format!("/cdr/{}/recordings/{}/media", self.ids[i], self.recs[i])
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
        tenant: Option<Uuid>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self
            .s
            .client
            .request(method, self.url(path))
            .header("X-Auth-Token", token);
        if let Some(t) = tenant {
            req = req.header("Accent-Tenant", t.to_string());
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.expect("send");
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.bytes().await.expect("body").to_vec())
    }

    async fn json(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let (st, _, out) = self.call(method, path, token, bytes, None).await;
        (st, serde_json::from_slice(&out).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn download_streams_the_wav_with_upstreams_name() {
    let w = world().await;
    let (st, headers, body) = w.call(Method::GET, &w.media(0), &w.s.admin_token, None, None).await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "audio/wav");
    let expected = std::fs::read(w.rec_dir.join("t/monitor/a.wav")).expect("read");
    assert_eq!(headers["content-length"], expected.len().to_string().as_str());
    assert_eq!(body, expected);
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    let (_, cdr) = w
        .json(Method::GET, &format!("/cdr/{}", w.ids[0]), &w.s.admin_token, None)
        .await;
    let filename = cdr["recordings"][0]["filename"].as_str().expect("filename");
    assert_eq!(disposition, format!("attachment; filename={filename}"));
    assert!(
        filename.ends_with(&format!("UTC-{}-{}.wav", w.ids[0], w.recs[0])),
        "{filename}"
    );
    // A download link: token (and tenant) in the query.
    let resp =
        w.s.client
            .get(w.url(&format!("{}?token={}&tenant={}", w.media(0), w.s.admin_token, w.master)))
            .send()
            .await
            .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.expect("body").len(), expected.len());
}

#[tokio::test]
async fn unknown_other_tenant_and_missing_media() {
    let w = world().await;
    let t = w.s.admin_token.clone();
    let error = |body: &[u8]| -> Value { serde_json::from_slice(body).unwrap_or(Value::Null) };
    for (path, status, id) in [
        (
            format!("/cdr/999999/recordings/{}/media", w.recs[0]),
            404,
            "cdr-not-found-with-given-id",
        ),
        (
            format!("/cdr/abc/recordings/{}/media", w.recs[0]),
            404,
            "cdr-not-found-with-given-id",
        ),
        (
            format!("/cdr/{}/recordings/{}/media", w.ids[0], Uuid::new_v4()),
            404,
            "recording-not-found",
        ),
        (
            format!("/cdr/{}/recordings/{}/media", w.ids[0], w.recs[1]),
            404,
            "recording-not-found",
        ),
        (
            format!("/cdr/{}/recordings/nope/media", w.ids[0]),
            404,
            "recording-not-found",
        ),
        (w.media(3), 500, "recording-media-filesystem-not-found"),
    ] {
        let (st, _, body) = w.call(Method::GET, &path, &t, None, None).await;
        let body = error(&body);
        assert_eq!(st.as_u16(), status, "{path}: {body}");
        assert_eq!(body["error_id"], id, "{path}: {body}");
        assert!(body["timestamp"].is_number() && body["message"].is_string(), "{body}");
    }
    // Acting in the sub-tenant, the master's recording is a 404 like a missing one; the
    // sub-tenant's own is served.
    let (st, _, body) = w.call(Method::GET, &w.media(0), &t, None, Some(w.other)).await;
    assert_eq!(
        (st, error(&body)["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("cdr-not-found-with-given-id"))
    );
    let (st, _, _) = w.call(Method::DELETE, &w.media(0), &t, None, Some(w.other)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(w.rec_dir.join("t/monitor/a.wav").exists());
    let (st, _, _) = w.call(Method::GET, &w.media(2), &t, None, Some(w.other)).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn acls_and_the_users_me_variant() {
    let w = world().await;
    let a = w.alice_token.clone();
    // A plain user (`call-logd.users.me.#`) may not use the admin routes.
    for (method, path) in [
        (Method::GET, w.media(0)),
        (Method::DELETE, w.media(0)),
        (Method::DELETE, "/cdr/recordings/media".to_string()),
        (Method::POST, "/cdr/recordings/media/export".to_string()),
        (Method::GET, "/retention".to_string()),
        (Method::PUT, "/retention".to_string()),
    ] {
        let (st, body) = w
            .json(method.clone(), &path, &a, Some(json!({"cdr_ids": [w.ids[0]]})))
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_eq!(body["error_id"], "unauthorized", "{body}");
        assert!(body["details"]["required_access"].is_string(), "{body}");
    }
    assert!(w.rec_dir.join("t/monitor/a.wav").exists());
    // Her own call's recording, also with the token in the query.
    let me = format!("/users/me{}", w.media(0));
    let (st, headers, body) = w.call(Method::GET, &me, &a, None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers["content-type"], "audio/wav");
    assert_eq!(body.len(), 3_000_000 + 16);
    let resp =
        w.s.client
            .get(w.url(&format!("{me}?token={a}")))
            .send()
            .await
            .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    // A call she took no part in, and another tenant's: 404.
    for i in [1, 2] {
        let (st, _, body) = w
            .call(Method::GET, &format!("/users/me{}", w.media(i)), &a, None, None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&body));
    }
    // The ACL names the call log and the recording.
    let (st, body) = w.json(Method::GET, &w.media(0), "not-a-token", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn paths_outside_the_recordings_dir_are_never_followed() {
    let w = world().await;
    let secret = w.s.dir.path().join("secret.wav");
    std::fs::write(&secret, b"top secret").expect("write");
    let link = w.rec_dir.join("t/monitor/link.wav");
    std::os::unix::fs::symlink(&secret, &link).expect("symlink");
    let dir = w.rec_dir.display().to_string();
    let mut logs = Vec::new();
    let mut recs = Vec::new();
    for (i, path) in [
        format!("{dir}/t/monitor/../../../secret.wav"),
        secret.display().to_string(),
        link.display().to_string(),
        "/etc/passwd".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let (log, rec) = recorded_log(
            w.master,
            &format!("2.{i}"),
            now_us(),
            &[Uuid::new_v4()],
            Path::new(path),
        );
        logs.push(log);
        recs.push(rec);
    }
    let stored = w.s.app().calllog.store_logs(logs).await.expect("store");
    for (log, rec) in stored.iter().zip(&recs) {
        let path = format!("/cdr/{}/recordings/{rec}/media", log.id);
        let (st, _, body) = w.call(Method::GET, &path, &w.s.admin_token, None, None).await;
        let text = String::from_utf8_lossy(&body).to_string();
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {text}");
        assert!(text.contains("recording-media-permission-denied"), "{text}");
        assert!(!text.contains("top secret") && !text.contains("root:"), "{text}");
        let (st, _, _) = w.call(Method::DELETE, &path, &w.s.admin_token, None, None).await;
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let (st, body) = w
            .json(
                Method::POST,
                "/cdr/recordings/media/export",
                &w.s.admin_token,
                Some(json!({"cdr_ids": [log.id]})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let export = body["export_uuid"].as_str().expect("uuid").to_string();
        assert_eq!(wait_export(&w, &export).await["status"], "error");
    }
    let (st, _) = w
        .json(
            Method::DELETE,
            "/cdr/recordings/media",
            &w.s.admin_token,
            Some(json!({"cdr_ids": stored.iter().map(|l| l.id).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(std::fs::read(&secret).expect("still there"), b"top secret");
    assert!(Path::new("/etc/passwd").exists());
    // Still listed as not deleted: nothing was done to them.
    let (_, one) = w
        .json(Method::GET, &format!("/cdr/{}", stored[0].id), &w.s.admin_token, None)
        .await;
    assert_eq!(one["recordings"][0]["deleted"], false);
}

#[tokio::test]
async fn delete_one_marks_it_deleted_and_generating_again_keeps_it_so() {
    let w = world().await;
    let t = w.s.admin_token.clone();
    let file = w.rec_dir.join("t/monitor/a.wav");
    let (st, _, body) = w.call(Method::DELETE, &w.media(0), &t, None, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&body));
    assert!(body.is_empty());
    assert!(!file.exists());
    let (_, cdr) = w.json(Method::GET, &format!("/cdr/{}", w.ids[0]), &t, None).await;
    assert_eq!(cdr["recordings"][0]["deleted"], true);
    let (st, body) = w.json(Method::GET, &w.media(0), &t, None).await;
    assert_eq!(
        (st, body["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("recording-media-not-found"))
    );
    // Deleting again, or a recording whose file is already gone, is fine (as upstream).
    for i in [0, 3] {
        let (st, body) = w.json(Method::DELETE, &w.media(i), &t, None).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    }
    // The same call generated again: its recording stays deleted.
    let (again, _) = recorded_log(w.master, "1.1", now_us(), &[Uuid::new_v4()], &file);
    let mut again = again;
    again.recordings[0].uuid = w.recs[0];
    let stored = w.s.app().calllog.store_logs(vec![again]).await.expect("store");
    let (_, cdr) = w.json(Method::GET, &format!("/cdr/{}", stored[0].id), &t, None).await;
    assert_eq!(cdr["recordings"][0]["deleted"], true, "{cdr}");
}

#[tokio::test]
async fn bulk_delete_all_or_nothing_and_bad_bodies() {
    let w = world().await;
    let t = w.s.admin_token.clone();
    let (a, b) = (w.rec_dir.join("t/monitor/a.wav"), w.rec_dir.join("t/monitor/b.wav"));
    // One unknown (or other tenant's) call log: 404 naming it, and nothing deleted.
    for (ids, tenant) in [
        (vec![w.ids[0], 999_999], None),
        (vec![w.ids[0], w.ids[1]], Some(w.other)),
    ] {
        let body = json!({ "cdr_ids": ids }).to_string().into_bytes();
        let (st, _, out) = w
            .call(Method::DELETE, "/cdr/recordings/media", &t, Some(body), tenant)
            .await;
        let out: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        assert_eq!(st, StatusCode::NOT_FOUND, "{out}");
        assert_eq!(out["error_id"], "cdr-not-found-with-given-id");
        assert!(out["details"]["cdr_id"].is_number(), "{out}");
    }
    assert!(a.exists() && b.exists());
    for (body, field) in [
        (json!({}), "cdr_ids"),
        (json!({"cdr_ids": []}), "cdr_ids"),
        (json!({"cdr_ids": ["x"]}), "cdr_ids"),
        (json!({"cdr_ids": [1], "extra": true}), "extra"),
        (json!([1, 2]), "_schema"),
    ] {
        let (st, out) = w
            .json(Method::DELETE, "/cdr/recordings/media", &t, Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {out}");
        assert_eq!(out["error_id"], "invalid-data", "{out}");
        assert!(out["details"].to_string().contains(field), "{body}: {out}");
    }
    let huge = format!("{{\"cdr_ids\": [{}1]}}", "1,".repeat(600_000)).into_bytes();
    let (st, _, _) = w
        .call(Method::DELETE, "/cdr/recordings/media", &t, Some(huge), None)
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.exists() && b.exists());

    let (st, out) = w
        .json(
            Method::DELETE,
            "/cdr/recordings/media",
            &t,
            Some(json!({"cdr_ids": [w.ids[0], w.ids[1], w.ids[3]]})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{out}");
    assert!(!a.exists() && !b.exists());
    assert!(
        w.rec_dir.join("t/monitor/c.wav").exists(),
        "the other tenant's file stays"
    );
    for i in [0, 1, 3] {
        let (_, cdr) = w.json(Method::GET, &format!("/cdr/{}", w.ids[i]), &t, None).await;
        assert_eq!(cdr["recordings"][0]["deleted"], true, "{cdr}");
    }
}

async fn wait_export(w: &World, uuid: &str) -> Value {
    for _ in 0..200 {
        let (st, body) = w
            .json(Method::GET, &format!("/exports/{uuid}"), &w.s.admin_token, None)
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        if body["status"] == "finished" || body["status"] == "error" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("export {uuid} never ended");
}

#[tokio::test]
async fn export_writes_a_zip_and_publishes_its_progress() {
    let w = world().await;
    let t = w.s.admin_token.clone();
    let mut events = w.s.app().bus.subscribe();
    let (st, _, body) = w
        .call(
            Method::POST,
            "/cdr/recordings/media/export?recurse=true",
            &t,
            Some(
                json!({"cdr_ids": [w.ids[0], w.ids[2].to_string()]})
                    .to_string()
                    .into_bytes(),
            ),
            None,
        )
        .await;
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let uuid = body["export_uuid"].as_str().expect("uuid").to_string();
    let export = wait_export(&w, &uuid).await;
    assert_eq!(export["status"], "finished", "{export}");
    assert_eq!(export["tenant_uuid"], w.master.to_string());
    assert!(export["filename"]
        .as_str()
        .is_some_and(|f| f.ends_with(&format!("UTC-{uuid}.zip"))));
    assert!(export["requested_at"].is_string());

    let (st, headers, zip_bytes) = w
        .call(Method::GET, &format!("/exports/{uuid}/download"), &t, None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/zip");
    assert_eq!(
        headers["content-disposition"].to_str().expect("ascii"),
        format!("attachment; filename={}", export["filename"].as_str().expect("name"))
    );
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("zip");
    let mut names: Vec<String> = archive
        .file_names()
        .map(|n| n.map(|n| n.to_string()))
        .collect::<Result<_, _>>()
        .expect("names");
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with(&format!("{}/", w.ids[0])) && names[0].ends_with(&format!("{}.wav", w.recs[0])));
    let mut entry = archive.by_name(&names[0]).expect("entry");
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut data).expect("read");
    assert_eq!(data, std::fs::read(w.rec_dir.join("t/monitor/a.wav")).expect("read"));

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.name.starts_with("call_logd_export") {
            seen.push((e.name.clone(), e.data["status"].as_str().unwrap_or("").to_string()));
            assert_eq!(e.tenant_uuid, Some(w.master));
        }
    }
    let want: Vec<(String, String)> = [
        ("call_logd_export_created", "pending"),
        ("call_logd_export_updated", "processing"),
        ("call_logd_export_updated", "finished"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, want);

    // Download link with the token in the query; another tenant sees no such export.
    let resp =
        w.s.client
            .get(w.url(&format!("/exports/{uuid}/download?token={t}")))
            .send()
            .await
            .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    for path in [format!("/exports/{uuid}"), format!("/exports/{uuid}/download")] {
        let (st, _, body) = w.call(Method::GET, &path, &t, None, Some(w.other)).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error_id"], "export-not-found-with-given-uuid");
    }
    for path in [
        format!("/exports/{}", Uuid::new_v4()),
        "/exports/nope/download".to_string(),
    ] {
        let (st, _) = w.json(Method::GET, &path, &t, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
    }
    let (st, _) = w
        .json(Method::GET, &format!("/exports/{uuid}"), &w.alice_token, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn export_filters_errors_and_bad_bodies() {
    let w = world().await;
    let t = w.s.admin_token.clone();
    // Filters alone (no body): the master's three recorded calls, one of them without its
    // file: the export ends in error and its download says so.
    let (st, _, body) = w
        .call(Method::POST, "/cdr/recordings/media/export", &t, None, None)
        .await;
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let uuid = body["export_uuid"].as_str().expect("uuid").to_string();
    assert_eq!(wait_export(&w, &uuid).await["status"], "error");
    let (st, body) = w
        .json(Method::GET, &format!("/exports/{uuid}/download"), &t, None)
        .await;
    assert_eq!(
        (st, body["error_id"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!("export-error"))
    );
    // Nothing recorded selected: 400.
    let (st, body) = w
        .json(
            Method::POST,
            "/cdr/recordings/media/export?call_direction=outbound",
            &t,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (st, body["error_id"].clone()),
        (StatusCode::BAD_REQUEST, json!("no-recording-to-export"))
    );
    // The other tenant's call log is not in scope without recurse.
    let (st, _) = w
        .json(
            Method::POST,
            "/cdr/recordings/media/export",
            &t,
            Some(json!({"cdr_ids": [w.ids[2]]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    for (query, body, field) in [
        ("", json!({"cdr_ids": ["abc"]}), "cdr_ids"),
        ("", json!({"cdr_ids": 1}), "cdr_ids"),
        ("", json!({"cdr_ids": [1], "email": "x"}), "email"),
        ("?from=yesterday", json!({}), "from"),
        ("?email=not-an-address", json!({}), "email"),
        ("?email=a%40b%40c", json!({}), "email"),
        ("?call_direction=sideways", json!({}), "call_direction"),
    ] {
        let path = format!("/cdr/recordings/media/export{query}");
        let (st, out) = w.json(Method::POST, &path, &t, Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path} {body}: {out}");
        assert!(out["details"].to_string().contains(field), "{out}");
    }
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (st, _, _) = w
        .call(Method::POST, "/cdr/recordings/media/export", &t, Some(huge), None)
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn retention_get_put_validation_and_tenants() {
    let w = world().await;
    let t = w.s.admin_token.clone();
    let (st, body) = w.json(Method::GET, "/retention", &t, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "tenant_uuid": w.master, "cdr_days": null, "recording_days": null, "export_days": null,
            "default_cdr_days": null, "default_recording_days": null, "default_export_days": 2,
        })
    );
    let mut events = w.s.app().bus.subscribe();
    let (st, out) = w
        .json(
            Method::PUT,
            "/retention",
            &t,
            Some(json!({"cdr_days": 30, "recording_days": 7})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{out}");
    let (_, body) = w.json(Method::GET, "/retention", &t, None).await;
    assert_eq!(
        (
            body["cdr_days"].clone(),
            body["recording_days"].clone(),
            body["export_days"].clone()
        ),
        (json!(30), json!(7), Value::Null)
    );
    let e = events.try_recv().expect("event");
    assert_eq!(
        (e.name.as_str(), e.tenant_uuid),
        ("call_logd_retention_updated", Some(w.master))
    );
    assert_eq!(e.data["cdr_days"], 30);
    // What GET returned may be sent back; missing keys reset to null (upstream's warning).
    let mut back = body.clone();
    back["export_days"] = json!(3);
    let (st, _) = w.json(Method::PUT, "/retention", &t, Some(back)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = w
        .json(Method::PUT, "/retention", &t, Some(json!({"export_days": 1})))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, body) = w.json(Method::GET, "/retention", &t, None).await;
    assert_eq!(
        (body["cdr_days"].clone(), body["export_days"].clone()),
        (Value::Null, json!(1))
    );

    for (body, field) in [
        (json!({"cdr_days": -1}), "cdr_days"),
        (json!({"recording_days": "7"}), "recording_days"),
        (json!({"export_days": 2.5}), "export_days"),
        (json!({"cdr_days": 3, "recording_days": 4}), "recording_days"),
        (json!({"cdr_days": 3, "unknown": 4}), "unknown"),
        (json!("x"), "_schema"),
    ] {
        let (st, out) = w.json(Method::PUT, "/retention", &t, Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {out}");
        assert_eq!(out["error_id"], "invalid-data");
        assert!(out["details"].to_string().contains(field), "{body}: {out}");
    }
    let huge = format!("{{\"cdr_days\": 1{}}}", " ".repeat(2 * 1024 * 1024)).into_bytes();
    let (st, _, _) = w.call(Method::PUT, "/retention", &t, Some(huge), None).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);

    // Per tenant: the sub-tenant's settings are its own.
    let body = json!({"cdr_days": 9}).to_string().into_bytes();
    let (st, _, _) = w.call(Method::PUT, "/retention", &t, Some(body), Some(w.other)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, _, other) = w.call(Method::GET, "/retention", &t, None, Some(w.other)).await;
    let other: Value = serde_json::from_slice(&other).expect("json");
    assert_eq!(
        (other["tenant_uuid"].clone(), other["cdr_days"].clone()),
        (json!(w.other), json!(9))
    );
    let (_, mine) = w.json(Method::GET, "/retention", &t, None).await;
    assert_eq!(mine["cdr_days"], Value::Null);
}

#[tokio::test]
async fn the_daily_run_applies_each_tenants_retention() {
    let w = world().await;
    let t = w.s.admin_token.clone();
    let svc = w.s.app().calllog.clone();
    let monitor = w.rec_dir.join("t/monitor");
    // Calls of 10 days ago in both tenants, with files.
    let old = now_us() - 10 * 86_400_000_000;
    let (f1, f2, f3) = (
        monitor.join("old1.wav"),
        monitor.join("old2.wav"),
        monitor.join("old3.wav"),
    );
    for f in [&f1, &f2, &f3] {
        std::fs::write(f, wav(10, 1)).expect("write");
    }
    let (m_old, _) = recorded_log(w.master, "3.1", old, &[Uuid::new_v4()], &f1);
    let (o_old, _) = recorded_log(w.other, "3.2", old, &[Uuid::new_v4()], &f2);
    let (o_old2, _) = recorded_log(w.other, "3.3", old - 86_400_000_000, &[Uuid::new_v4()], &f3);
    let stored = svc.store_logs(vec![m_old, o_old, o_old2]).await.expect("store");
    // The master keeps call logs 5 days; the sub-tenant keeps recordings 5 days and its call
    // logs by the default (30 days, from the config below).
    let (st, _) = w
        .json(Method::PUT, "/retention", &t, Some(json!({"cdr_days": 5})))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let body = json!({"recording_days": 5, "export_days": 0}).to_string().into_bytes();
    let (st, _, _) = w.call(Method::PUT, "/retention", &t, Some(body), Some(w.other)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // An old export of each tenant (the master's kept by the 2 days default, ...).
    let exports = svc.exports_dir().to_path_buf();
    std::fs::create_dir_all(&exports).expect("mkdir");
    let mut export_files = Vec::new();
    for (tenant, age_days) in [(w.master, 1), (w.master, 3), (w.other, 0)] {
        let uuid = Uuid::new_v4();
        let file = exports.join(format!("{uuid}.zip"));
        std::fs::write(&file, b"PK").expect("write");
        let (f, at) = (
            file.display().to_string(),
            now_us() - age_days * 86_400_000_000 - 1_000_000,
        );
        svc.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO call_log_export (uuid, tenant_uuid, user_uuid, requested_at_us, status, path)
                     VALUES (?1, ?2, ?3, ?4, 'finished', ?5)",
                    rusqlite::params![uuid.to_string(), tenant.to_string(), Uuid::nil().to_string(), at, f],
                )?;
                Ok::<_, accentd::api::error::ApiError>(())
            })
            .await
            .expect("insert");
        export_files.push(file);
    }
    let config = accentd::config::CallLogsConfig {
        retention_days: 30,
        recordings_dir: w.rec_dir.clone(),
        ..Default::default()
    };
    accentd::calllog::batch::run_daily(&svc, &config).await;

    let get = |id: i64| {
        let w = &w;
        let t = t.clone();
        async move { w.json(Method::GET, &format!("/cdr/{id}?recurse=true"), &t, None).await }
    };
    let (st, _) = get(stored[0].id).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "the master's old call log is purged");
    assert!(!f1.exists(), "with its recording file");
    for (i, f) in [(1, &f2), (2, &f3)] {
        let (st, cdr) = get(stored[i].id).await;
        assert_eq!(st, StatusCode::OK, "the sub-tenant keeps its call logs 30 days");
        assert_eq!(cdr["recordings"][0]["deleted"], true, "{cdr}");
        assert!(!f.exists());
    }
    // Recent calls untouched.
    assert!(monitor.join("a.wav").exists() && monitor.join("c.wav").exists());
    let (st, _) = get(w.ids[0]).await;
    assert_eq!(st, StatusCode::OK);
    // Exports: the master's 3-day-old one (default 2 days) and the sub-tenant's (0 days) go.
    assert_eq!(
        export_files.iter().map(|f| f.exists()).collect::<Vec<_>>(),
        vec![true, false, false]
    );
    let left: i64 = svc
        .store
        .read(|c| {
            Ok::<_, accentd::api::error::ApiError>(
                c.query_row("SELECT COUNT(*) FROM call_log_export", [], |r| r.get(0))?,
            )
        })
        .await
        .expect("count");
    assert_eq!(left, 1);
}

#[tokio::test]
async fn exports_cut_short_by_a_stop_are_marked_error_at_start() {
    let s = TestServer::start().await;
    let tenant = s.master_tenant().await;
    let uuid = Uuid::new_v4();
    let (u, t) = (uuid.to_string(), tenant.clone());
    s.app()
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO call_log_export (uuid, tenant_uuid, user_uuid, requested_at_us, status)
                 VALUES (?1, ?2, ?3, 0, 'processing')",
                rusqlite::params![u, t, Uuid::nil().to_string()],
            )?;
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("insert");
    let s = s.restart().await;
    let resp = s
        .client
        .get(format!("{}{API}/exports/{uuid}", s.base))
        .header("X-Auth-Token", &s.admin_token)
        .send()
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "error", "{body}");
}

/// A one-connection SMTP server speaking just enough of RFC 5321 for one mail; gives back
/// the envelope recipients and the DATA it received.
async fn fake_smtp() -> (u16, tokio::task::JoinHandle<(Vec<String>, String)>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.expect("accept");
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"220 fake ESMTP\r\n").await.expect("greet");
        let (mut rcpt, mut data) = (Vec::new(), String::new());
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250 fake\r\n"
            } else if upper.starts_with("RCPT TO:") {
                rcpt.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                b"250 ok\r\n"
            } else if upper == "DATA" {
                w.write_all(b"354 go on\r\n").await.expect("write");
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(&l);
                    data.push('\n');
                }
                b"250 queued\r\n"
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await.expect("write");
                break;
            } else {
                b"250 ok\r\n"
            };
            w.write_all(reply).await.expect("write");
        }
        (rcpt, data)
    });
    (port, task)
}

#[tokio::test]
async fn an_export_with_an_email_mails_its_download_link() {
    let (port, smtp) = fake_smtp().await;
    let w = world_with(|c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.from = "PBX <pbx@example.com>".into();
        c.http.public_url = "https://pbx.example.com/".into();
    })
    .await;
    let (st, body) = w
        .json(
            Method::POST,
            "/cdr/recordings/media/export?recurse=true&email=boss%40example.com",
            &w.s.admin_token,
            Some(json!({"cdr_ids": [w.ids[0]]})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let uuid = body["export_uuid"].as_str().expect("uuid").to_string();
    assert_eq!(wait_export(&w, &uuid).await["status"], "finished");
    let (rcpt, data) = tokio::time::timeout(Duration::from_secs(20), smtp)
        .await
        .expect("a mail within 20 s")
        .expect("smtp task");
    assert_eq!(rcpt, vec!["boss@example.com".to_string()]);
    assert!(data.contains("To: boss@example.com"), "{data}");
    assert!(data.contains("From: PBX <pbx@example.com>"), "{data}");
    assert!(data.contains("Subject: Your call recordings export is ready"), "{data}");
    // The link (the body may be folded, so compare without line breaks).
    let flat = data.replace("=\n", "").replace('\n', "");
    assert!(
        flat.contains(&format!(
            "https://pbx.example.com/api/call-logd/1.0/exports/{uuid}/download"
        )),
        "{data}"
    );
}
