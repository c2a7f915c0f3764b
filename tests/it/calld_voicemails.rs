//! calld voicemails against the spool layout scenario 12 recorded (1002 leaves a message
//! in 1000@default: `INBOX/msg0000.{txt,wav,WAV}`, its `.txt` committed as recorded) and its
//! AMI `MessageWaiting`: the mailbox for the admin and its user, reading, moving and deleting
//! messages in the spool (numbered as app_voicemail numbers them), greetings, the events
//! each change produces, what Asterisk is told, and bad input.

use std::path::{Path, PathBuf};

use accentd::ami::frame::AmiMessage;
use accentd::fake_asterisk::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::calld_calls::{as_tenant, default_context, drain, manual_ami, other_tenant, pairs, sent, user, C, CALLD};
use crate::common::{wait_for, TestServer};

const MSG_ID: &str = "1795870976-00000000";

fn recorded_txt() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures/12-voicemail-1000/vm-msg0000.txt");
    std::fs::read_to_string(p).expect("recorded message file")
}

/// A small valid WAV (RIFF/WAVE header, 8 kHz mono 16-bit, `samples` of silence).
fn wav(samples: u32) -> Vec<u8> {
    let data = samples * 2;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    v.resize(v.len() + data as usize, 0);
    v
}

/// What app_voicemail left in the spool after scenario 12 (spool-files.txt).
fn leave_message(spool: &Path) -> PathBuf {
    let inbox = spool.join("default/1000/INBOX");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    std::fs::create_dir_all(spool.join("default/1000/tmp")).expect("mkdir");
    std::fs::write(inbox.join("msg0000.txt"), recorded_txt()).expect("txt");
    std::fs::write(inbox.join("msg0000.wav"), wav(800)).expect("wav");
    std::fs::write(inbox.join("msg0000.WAV"), b"gsm-in-wav49").expect("WAV");
    inbox
}

/// The config of an accentd on this fake AMI and spool.
fn linked_to(
    ami: &accentd::fake_asterisk::ami::FakeAmi,
    spool: &Path,
) -> impl Fn(&mut accentd::config::Config) + Clone {
    let (addr, spool) = (ami.addr().to_string(), spool.to_path_buf());
    move |c| {
        c.ami.addr = addr.clone();
        c.ami.user = "accent".into();
        c.ami.password = "accent".into();
        c.calld.voicemail_dir = spool.clone();
    }
}

async fn raw(s: &TestServer, method: Method, path: &str, token: &str, body: Vec<u8>) -> reqwest::Response {
    s.client
        .request(method, format!("{}{CALLD}{path}", s.base))
        .header("X-Auth-Token", token)
        .body(body)
        .send()
        .await
        .expect("send")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_messages_and_greetings_in_the_spool_with_events() {
    let scenario = Scenario::load("12").expect("scenario");
    let ami = manual_ami(&scenario).await;
    ami.respond_with(
        "VoicemailRefresh",
        Some(vec![AmiMessage::new().with("Response", "Success")]),
    );
    let spool = tempfile::tempdir().expect("spool");
    let tweak = linked_to(&ami, spool.path());
    let s = TestServer::start_with(tweak).await;
    let t = s.admin_token.clone();
    default_context(&s).await;
    let alice = user(&s, "Alice", "alice", "2001").await;
    let (code, vm) = s
        .post(
            &format!("{C}/users/{}/voicemails", alice["uuid"].as_str().expect("uuid")),
            &t,
            json!({"name": "Alice Test", "number": "1000", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{vm}");
    let vm_id = vm["id"].as_i64().expect("id");
    let alice_uuid = alice["uuid"].as_str().expect("uuid").to_string();
    {
        let app = s.app();
        wait_for("AMI up", || app.ami.as_ref().is_some_and(|c| c.is_connected())).await;
    }
    let mut rx = s.app().bus.subscribe();

    // Nothing yet: six empty folders.
    let (code, mailbox) = s.get(&format!("{CALLD}/voicemails/{vm_id}"), &t).await;
    assert_eq!(code, StatusCode::OK, "{mailbox}");
    assert_eq!(
        (&mailbox["id"], &mailbox["name"], &mailbox["number"]),
        (&json!(vm_id), &json!("Alice Test"), &json!("1000"))
    );
    let folders: Vec<(Value, Value, Value)> = mailbox["folders"]
        .as_array()
        .expect("folders")
        .iter()
        .map(|f| (f["id"].clone(), f["name"].clone(), f["type"].clone()))
        .collect();
    assert_eq!(
        folders,
        [
            (json!(1), json!("inbox"), json!("new")),
            (json!(2), json!("old"), json!("old")),
            (json!(3), json!("urgent"), json!("urgent")),
            (json!(4), json!("work"), json!("other")),
            (json!(5), json!("family"), json!("other")),
            (json!(6), json!("friends"), json!("other")),
        ]
    );

    // Bob leaves a message: the recording's spool files, then its MessageWaiting.
    let inbox = leave_message(spool.path());
    ami.replay_all();
    let mut events = Vec::new();
    wait_for("message created", || {
        events.extend(drain(&mut rx, "user_voicemail_message"));
        !events.is_empty()
    })
    .await;
    let e = &events[0];
    assert_eq!(e["name"], "user_voicemail_message_created", "{e}");
    let message = json!({"id": MSG_ID, "caller_id_name": "Bob", "caller_id_num": "1002", "duration": 10,
                         "timestamp": 1795870976, "folder": {"id": 1, "name": "inbox", "type": "new"}});
    assert_eq!(
        e["data"],
        json!({"user_uuid": alice_uuid, "voicemail_id": vm_id, "message_id": MSG_ID, "message": message})
    );
    assert_eq!(e["required_acl"], format!("events.users.{alice_uuid}.voicemails"));
    assert_eq!(e[format!("user_uuid:{alice_uuid}").as_str()], true, "{e}");
    assert_eq!(e["tenant_uuid"], alice["tenant_uuid"]);

    // The admin and Alice see it; the folder alone too.
    let (_, mailbox) = s.get(&format!("{CALLD}/voicemails/{vm_id}"), &t).await;
    let mut listed = message.clone();
    listed.as_object_mut().expect("obj").remove("folder");
    assert_eq!(mailbox["folders"][0]["messages"], json!([listed.clone()]));
    let me = s.login("alice", "pw-alice-123").await;
    let (code, mine) = s.get(&format!("{CALLD}/users/me/voicemails"), &me).await;
    assert_eq!(code, StatusCode::OK, "{mine}");
    assert_eq!(mine, mailbox);
    let (code, folder) = s.get(&format!("{CALLD}/users/me/voicemails/folders/1"), &me).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(folder["messages"], json!([listed]));
    let (code, got) = s
        .get(&format!("{CALLD}/voicemails/{vm_id}/messages/{MSG_ID}"), &t)
        .await;
    assert_eq!((code, &got), (StatusCode::OK, &message));

    // Listening reads it: the audio, then the message is in Old.
    let r = raw(
        &s,
        Method::GET,
        &format!("/users/me/voicemails/messages/{MSG_ID}/recording?download=1"),
        &me,
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .is_ok_and(|d| d.starts_with("attachment")));
    assert_eq!(r.bytes().await.expect("body").to_vec(), wav(800));
    let old = spool.path().join("default/1000/Old");
    assert!(old.join("msg0000.txt").exists() && old.join("msg0000.WAV").exists());
    assert!(!inbox.join("msg0000.txt").exists());
    let (_, got) = s
        .get(&format!("{CALLD}/voicemails/{vm_id}/messages/{MSG_ID}"), &t)
        .await;
    assert_eq!(got["folder"], json!({"id": 2, "name": "old", "type": "old"}));
    let mut updates = Vec::new();
    wait_for("message updated", || {
        updates.extend(drain(&mut rx, "user_voicemail_message"));
        !updates.is_empty()
    })
    .await;
    assert_eq!(updates[0]["name"], "user_voicemail_message_updated");
    assert_eq!(updates[0]["data"]["message"]["folder"]["id"], 2);
    assert_eq!(
        sent(&ami, "VoicemailRefresh"),
        [pairs(&[("Context", "default"), ("Mailbox", "1000")])],
        "Asterisk re-reads the mailbox (message lights)"
    );

    // Moved to Work by the admin; bad moves change nothing.
    for (body, status) in [
        (json!({"folder_id": "work"}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"folder_id": 4, "extra": 1}), StatusCode::BAD_REQUEST),
        (json!({"folder_id": 42}), StatusCode::NOT_FOUND),
    ] {
        let (code, err) = s
            .put(
                &format!("{CALLD}/voicemails/{vm_id}/messages/{MSG_ID}"),
                &t,
                body.clone(),
            )
            .await;
        assert_eq!(code, status, "{body}: {err}");
    }
    let (code, _) = s
        .put(
            &format!("{CALLD}/voicemails/{vm_id}/messages/{MSG_ID}"),
            &t,
            json!({"folder_id": 4}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert!(spool.path().join("default/1000/Work/msg0000.wav").exists());
    let (_, got) = s
        .get(&format!("{CALLD}/voicemails/{vm_id}/messages/{MSG_ID}"), &t)
        .await;
    assert_eq!(got["folder"]["id"], 4);

    // Deleted by Alice: files gone, event.
    let (code, _) = s
        .delete(&format!("{CALLD}/users/me/voicemails/messages/{MSG_ID}"), &me)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert!(!spool.path().join("default/1000/Work/msg0000.txt").exists());
    let mut deletes = Vec::new();
    wait_for("message deleted", || {
        deletes.extend(drain(&mut rx, "user_voicemail_message_deleted"));
        !deletes.is_empty()
    })
    .await;
    assert_eq!(deletes[0]["data"]["message_id"], MSG_ID);
    let (code, err) = s
        .get(&format!("{CALLD}/voicemails/{vm_id}/messages/{MSG_ID}"), &t)
        .await;
    assert_eq!(
        (code, &err["error_id"]),
        (StatusCode::NOT_FOUND, &json!("no-such-voicemail-message"))
    );

    // Greetings.
    let g = |name: &str| format!("/voicemails/{vm_id}/greetings/{name}");
    assert_eq!(
        raw(&s, Method::GET, &g("busy"), &t, vec![]).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&s, Method::HEAD, &g("busy"), &t, vec![]).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = raw(&s, Method::POST, &g("busy"), &t, b"%PDF-1.4 not audio".to_vec()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        raw(&s, Method::PUT, &g("busy"), &t, wav(10)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&s, Method::POST, &g("busy"), &t, wav(10)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        raw(&s, Method::POST, &g("busy"), &t, wav(10)).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        raw(&s, Method::HEAD, &g("busy"), &t, vec![]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        raw(&s, Method::PUT, &g("busy"), &t, wav(20)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        std::fs::read(spool.path().join("default/1000/busy.wav")).expect("busy"),
        wav(20),
        "where app_voicemail plays it from"
    );
    let (code, _) = s
        .post(
            &format!("{CALLD}/users/me/voicemails/greetings/busy/copy"),
            &me,
            json!({"dest_greeting": "unavailable"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let r = raw(
        &s,
        Method::GET,
        "/users/me/voicemails/greetings/unavailable",
        &me,
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("body").to_vec(), wav(20));
    assert!(spool.path().join("default/1000/unavail.wav").exists());
    let (code, _) = s
        .post(
            &format!("{CALLD}/users/me/voicemails/greetings/busy/copy"),
            &me,
            json!({"dest_greeting": "elsewhere"}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        raw(&s, Method::DELETE, &g("busy"), &t, vec![]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        raw(&s, Method::DELETE, &g("busy"), &t, vec![]).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = raw(&s, Method::GET, &g("welcome"), &t, vec![]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let huge = raw(&s, Method::PUT, &g("unavailable"), &t, vec![0; 17 * 1024 * 1024]).await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Other tenants, users without a mailbox, tokens without the ACL, unknown ids.
    let other = other_tenant(&s).await;
    let (code, _) = as_tenant(&s, &other, Method::GET, &format!("voicemails/{vm_id}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let _bob = user(&s, "Bob", "bob", "2002").await;
    let bob_token = s.login("bob", "pw-bob-123").await;
    let (code, err) = s.get(&format!("{CALLD}/users/me/voicemails"), &bob_token).await;
    assert_eq!(
        (code, &err["error_id"]),
        (StatusCode::NOT_FOUND, &json!("no-such-user-voicemail"))
    );
    let (code, _) = s.get(&format!("{CALLD}/voicemails/{vm_id}"), &me).await;
    assert_eq!(
        code,
        StatusCode::UNAUTHORIZED,
        "a user reads her mailbox through `me` only"
    );
    let (code, err) = s.get(&format!("{CALLD}/voicemails/999999"), &t).await;
    assert_eq!(
        (code, &err["error_id"]),
        (StatusCode::NOT_FOUND, &json!("no-such-voicemail"))
    );
    let (code, err) = s.get(&format!("{CALLD}/voicemails/{vm_id}/folders/7"), &t).await;
    assert_eq!(
        (code, &err["error_id"]),
        (StatusCode::NOT_FOUND, &json!("no-such-voicemail-folder"))
    );
}

#[tokio::test]
async fn a_garbled_message_file_hides_nothing_else() {
    let spool = tempfile::tempdir().expect("spool");
    let spool_dir = spool.path().to_path_buf();
    let s = TestServer::start_with(move |c| c.calld.voicemail_dir = spool_dir).await;
    default_context(&s).await;
    let (code, vm) = s
        .post(
            &format!("{C}/voicemails"),
            &s.admin_token,
            json!({"name": "Shared", "number": "1000", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{vm}");
    let inbox = leave_message(spool.path());
    std::fs::write(inbox.join("msg0001.txt"), "[message]\ncallerid=<junk\n").expect("junk");
    let (code, mailbox) = s.get(&format!("{CALLD}/voicemails/{}", vm["id"]), &s.admin_token).await;
    assert_eq!(code, StatusCode::OK, "{mailbox}");
    let ids: Vec<&Value> = mailbox["folders"][0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&json!(MSG_ID)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_already_there_at_start_are_not_announced_as_new() {
    let scenario = Scenario::load("12").expect("scenario");
    let ami = manual_ami(&scenario).await;
    let spool = tempfile::tempdir().expect("spool");
    let tweak = linked_to(&ami, spool.path());
    let s = TestServer::start_with(tweak.clone()).await;
    default_context(&s).await;
    let (code, vm) = s
        .post(
            &format!("{C}/voicemails"),
            &s.admin_token,
            json!({"name": "Alice Test", "number": "1000", "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{vm}");
    let alice = user(&s, "Alice", "alice", "2001").await;
    let (code, _) = s
        .put(
            &format!(
                "{C}/users/{}/voicemails/{}",
                alice["uuid"].as_str().expect("uuid"),
                vm["id"]
            ),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    // The message was left while accentd was down; it starts again and reads the spool.
    leave_message(spool.path());
    let s = s.restart_with(tweak).await;
    let mut rx = s.app().bus.subscribe();
    {
        let app = s.app();
        wait_for("AMI up", || app.ami.as_ref().is_some_and(|c| c.is_connected())).await;
    }
    ami.replay_all();
    wait_for("MessageWaiting replayed", || ami.remaining() == 0).await;
    // The watcher reads the spool before its first event; give it that moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (code, _) = s
        .delete(
            &format!("{CALLD}/voicemails/{}/messages/{MSG_ID}", vm["id"]),
            &s.admin_token,
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let mut events = Vec::new();
    wait_for("deleted", || {
        events.extend(drain(&mut rx, "user_voicemail_message"));
        !events.is_empty()
    })
    .await;
    let names: Vec<&Value> = events.iter().map(|e| &e["name"]).collect();
    assert_eq!(names, [&json!("user_voicemail_message_deleted")], "never `created`");
}
