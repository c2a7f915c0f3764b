//! Rendering the Asterisk configuration: golden files for a fixture configuration, every file
//! through the Asterisk-syntax checker, written into the configured directory before the
//! reload goes out, and `accentd render --out DIR` on the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{commands, wait_for, TestServer};
use accentd::ami::frame::AmiMessage;
use accentd::confd::render::{self, syntax};
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions};
use accentd::fake_asterisk::scenario::Scenario;
use reqwest::StatusCode;
use serde_json::{json, Value};

const C: &str = "/api/confd/1.1";
const BIN: &str = env!("CARGO_BIN_EXE_accentd");

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/confd")
}

/// Compares with the golden copy; `UPDATE_GOLDEN=1` rewrites it.
fn assert_golden(name: &str, text: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        text, want,
        "{name} differs from its golden copy (UPDATE_GOLDEN=1 to accept)"
    );
}

/// The fixture configuration, through the API.
async fn provision(s: &TestServer) {
    let t = s.admin_token.clone();
    for body in [
        json!({"name": "default", "label": "Default", "user_ranges": [{"start": "1000", "end": "1999"}],
               "conference_room_ranges": [{"start": "4000", "end": "4099"}]}),
        json!({"name": "from-extern", "label": "Incoming calls", "type": "incall",
               "incall_ranges": [{"start": "0123456000", "end": "0123456999"}]}),
        json!({"name": "to-extern", "label": "Outgoing calls", "type": "outcall"}),
        json!({"name": "disabled", "label": "Off", "enabled": false}),
    ] {
        let (code, b) = s.post(&format!("{C}/contexts"), &t, body).await;
        assert_eq!(code, StatusCode::CREATED, "{b}");
    }
    let (_, list) = s.get(&format!("{C}/contexts?order=name"), &t).await;
    let id = |name: &str| {
        list["items"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_i64())
            .expect("context")
    };
    let (code, _) = s
        .put(
            &format!("{C}/contexts/{}/contexts", id("default")),
            &t,
            json!({"contexts": [{"id": id("to-extern")}, {"id": id("disabled")}]}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    provision_lines(s).await;
}

async fn created(s: &TestServer, path: &str, body: Value) -> Value {
    let (code, b) = s.post(&format!("{C}{path}"), &s.admin_token, body).await;
    assert_eq!(code, StatusCode::CREATED, "{path}: {b}");
    b
}

async fn no_content(s: &TestServer, path: &str, body: Value) {
    let (code, b) = s.put(&format!("{C}{path}"), &s.admin_token, body).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{path}: {b}");
}

/// Transports, SIP templates (one inheriting another), two lines with their
/// endpoints and extensions, a voicemail and edited file sections.
async fn provision_lines(s: &TestServer) {
    let transport = created(
        s,
        "/sip/transports",
        json!({"name": "transport-udp", "options": [["protocol", "udp"], ["bind", "0.0.0.0:5060"]]}),
    )
    .await;
    let phone = created(
        s,
        "/endpoints/sip/templates",
        json!({"name": "tpl-phone", "label": "phones",
               "endpoint_section_options": [["allow", "!all,ulaw"], ["direct_media", "no"]],
               "aor_section_options": [["max_contacts", "1"], ["remove_existing", "yes"]],
               "transport": {"uuid": transport["uuid"]}}),
    )
    .await;
    let webrtc = created(
        s,
        "/endpoints/sip/templates",
        json!({"name": "tpl-webrtc", "label": "webrtc",
               "endpoint_section_options": [["webrtc", "yes"]],
               "templates": [{"uuid": phone["uuid"]}]}),
    )
    .await;
    for (name, exten, templates, cid) in [
        (
            "alice-sip",
            "1001",
            json!([{"uuid": webrtc["uuid"]}, {"uuid": phone["uuid"]}]),
            Some("Alice; A."),
        ),
        ("bob-sip", "1002", json!([{"uuid": phone["uuid"]}]), None),
    ] {
        let sip = created(
            s,
            "/endpoints/sip",
            json!({"name": name, "templates": templates,
                   "auth_section_options": [["username", name], ["password", format!("pw-{name}")]],
                   "transport": {"uuid": transport["uuid"]}}),
        )
        .await;
        let mut line = json!({"context": "default"});
        if let Some(cid) = cid {
            line["caller_id_name"] = json!(cid);
            line["caller_id_num"] = json!(exten);
        }
        let line = created(s, "/lines", line).await;
        let id = line["id"].as_i64().expect("line id");
        no_content(
            s,
            &format!("/lines/{id}/endpoints/sip/{}", sip["uuid"].as_str().expect("uuid")),
            json!({}),
        )
        .await;
        created(
            s,
            &format!("/lines/{id}/extensions"),
            json!({"exten": exten, "context": "default"}),
        )
        .await;
    }
    // A line without endpoint is not rendered.
    created(s, "/lines", json!({"context": "default"})).await;
    created(
        s,
        "/voicemails",
        json!({"name": "Alice First", "number": "1001", "context": "default", "password": "1234",
               "email": "alice@example.com", "attach_audio": true, "timezone": "Europe/Paris",
               "options": [["saycid", "yes"]]}),
    )
    .await;
    created(
        s,
        "/voicemails",
        json!({"name": "Off", "number": "1009", "context": "default", "enabled": false}),
    )
    .await;
    provision_routing(s).await;
    no_content(
        s,
        "/asterisk/voicemail/zonemessages",
        json!({"items": [{"name": "eu-fr", "timezone": "Europe/Paris", "message": "'vm-received' q 'digits/at' kM"}]}),
    )
    .await;
    no_content(
        s,
        "/asterisk/features/applicationmap",
        json!({"options": {"monkeys": "#9,peer,Playback,tt-monkeys"}}),
    )
    .await;
}

/// Alice (user 1) owns line alice-sip and voicemail 1001; DIDs reach her, her
/// voicemail and a busy signal; an outcall dials out through two trunks (SIP with
/// registration and identify, then a custom one).
async fn provision_routing(s: &TestServer) {
    let t = s.admin_token.clone();
    let alice = created(
        s,
        "/users",
        json!({"firstname": "Alice", "lastname": "O'Hara (sales)", "ring_seconds": 25,
               "outgoing_caller_id": "\"Sales\" <0123456000>"}),
    )
    .await;
    let alice_id = alice["id"].as_i64().expect("user id");
    let (_, lines) = s.get(&format!("{C}/lines"), &t).await;
    let alice_line = lines["items"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["name"] == "alice-sip"))
        .and_then(|l| l["id"].as_i64())
        .expect("alice's line");
    no_content(s, &format!("/users/{alice_id}/lines/{alice_line}"), json!({})).await;
    let (_, vms) = s.get(&format!("{C}/voicemails"), &t).await;
    let vm_id = vms["items"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["number"] == "1001"))
        .and_then(|v| v["id"].as_i64())
        .expect("voicemail");
    no_content(s, &format!("/users/{alice_id}/voicemails/{vm_id}"), json!({})).await;

    for (did, destination, extra) in [
        (
            "0123456001",
            json!({"type": "user", "user_id": alice_id, "ring_time": 20}),
            json!({"caller_id_mode": "prepend", "caller_id_name": "DID1: "}),
        ),
        (
            "0123456002",
            json!({"type": "voicemail", "voicemail_id": vm_id, "greeting": "unavailable"}),
            json!({}),
        ),
        (
            "0123456003",
            json!({"type": "hangup", "cause": "busy", "timeout": 5}),
            json!({}),
        ),
    ] {
        let mut body = extra;
        body["destination"] = destination;
        let incall = created(s, "/incalls", body).await;
        let ext = created(s, "/extensions", json!({"exten": did, "context": "from-extern"})).await;
        no_content(
            s,
            &format!("/incalls/{}/extensions/{}", incall["id"], ext["id"]),
            json!({}),
        )
        .await;
    }

    // Two rooms: one with a user PIN, one with
    // both PINs (the dialplan picks the admin profile); one has no extension.
    for (exten, body) in [
        (
            Some("4000"),
            json!({"name": "Team", "max_users": 10, "record": true, "pin": "1234",
                   "announce_join_leave": true, "music_on_hold": "default"}),
        ),
        (
            Some("4001"),
            json!({"name": "Board", "pin": "5555", "admin_pin": "8888", "quiet_join_leave": true}),
        ),
        (None, json!({"name": "Unreached"})),
    ] {
        let conf = created(s, "/conferences", body).await;
        if let Some(exten) = exten {
            let ext = created(s, "/extensions", json!({"exten": exten, "context": "default"})).await;
            no_content(
                s,
                &format!("/conferences/{}/extensions/{}", conf["id"], ext["id"]),
                json!({}),
            )
            .await;
        }
    }

    let sip = created(
        s,
        "/endpoints/sip",
        json!({"name": "carrier",
               "endpoint_section_options": [["allow", "!all,alaw"]],
               "outbound_auth_section_options": [["username", "acct"], ["password", "carrier-pw"]],
               "registration_section_options": [["server_uri", "sip:sip.carrier.example"], ["client_uri", "sip:acct@sip.carrier.example"]],
               "registration_outbound_auth_section_options": [["username", "acct"], ["password", "carrier-pw"]],
               "identify_section_options": [["match", "192.0.2.10"]],
               "aor_section_options": [["contact", "sip:sip.carrier.example"]]}),
    )
    .await;
    let trunk = created(s, "/trunks", json!({"context": "from-extern"})).await;
    no_content(
        s,
        &format!(
            "/trunks/{}/endpoints/sip/{}",
            trunk["id"],
            sip["uuid"].as_str().expect("uuid")
        ),
        json!({}),
    )
    .await;
    let custom = created(s, "/endpoints/custom", json!({"interface": "DAHDI/g1"})).await;
    let backup = created(s, "/trunks", json!({"context": "from-extern"})).await;
    no_content(
        s,
        &format!("/trunks/{}/endpoints/custom/{}", backup["id"], custom["id"]),
        json!({}),
    )
    .await;
    let outcall = created(s, "/outcalls", json!({"name": "national", "ring_time": 45})).await;
    no_content(
        s,
        &format!("/outcalls/{}/trunks", outcall["id"]),
        json!({"trunks": [{"id": trunk["id"]}, {"id": backup["id"]}]}),
    )
    .await;
    let pattern = created(
        s,
        "/extensions",
        json!({"exten": "_0XXXXXXXXX", "context": "to-extern"}),
    )
    .await;
    no_content(
        s,
        &format!("/outcalls/{}/extensions/{}", outcall["id"], pattern["id"]),
        json!({"prefix": "9", "external_prefix": "+33", "strip_digits": 2}),
    )
    .await;

    // A parking lot reached through 1500 (slots 1501-1510); one without extension is not written.
    let lot = created(
        s,
        "/parkinglots",
        json!({"name": "Main", "slots_start": "1501", "slots_end": "1510", "music_on_hold": "default"}),
    )
    .await;
    created(s, "/parkinglots", json!({"slots_start": "1601", "slots_end": "1610"})).await;
    let ext = created(s, "/extensions", json!({"exten": "1500", "context": "default"})).await;
    no_content(
        s,
        &format!("/parkinglots/{}/extensions/{}", lot["id"], ext["id"]),
        json!({}),
    )
    .await;
}

/// The rendered text with the ids that differ from run to run replaced.
async fn stable(s: &TestServer, text: &str) -> String {
    let mut text = text.replace(&s.master_tenant().await, "<tenant-uuid>");
    let (_, users) = s.get(&format!("{C}/users?order=id"), &s.admin_token).await;
    for u in users["items"].as_array().into_iter().flatten() {
        if let (Some(uuid), Some(id)) = (u["uuid"].as_str(), u["id"].as_i64()) {
            text = text.replace(uuid, &format!("<user-{id}-uuid>"));
        }
    }
    text
}

#[tokio::test]
async fn fixture_configuration_renders_to_the_golden_files() {
    let s = TestServer::start().await;
    provision(&s).await;
    let templates = render::Templates::load(None).expect("templates");
    let files = render::render_store(&s.app().store, &templates).await.expect("render");
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "accentd-dialplan.conf",
            "confbridge.conf",
            "extensions.conf",
            "features.conf",
            "iax.conf",
            "pjsip.conf",
            "res_parking.conf",
            "voicemail.conf"
        ]
    );
    for (name, text) in &files {
        syntax::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_golden(name, &stable(&s, text).await);
    }
    render::check(&files).expect("every file passes the checker");
    let pjsip = &files["pjsip.conf"];
    // Endpoint, auth and aor share the endpoint's name; templates apply first-listed last.
    assert!(
        pjsip.contains("[alice-sip](tpl-phone-endpoint,tpl-webrtc-endpoint)"),
        "{pjsip}"
    );
    assert!(pjsip.contains("[tpl-webrtc-endpoint](!,tpl-phone-endpoint)"), "{pjsip}");
    assert!(pjsip.contains("callerid = \"Alice\\; A.\" <1001>"), "{pjsip}");
    let ext = &files["extensions.conf"];
    assert!(ext.contains("exten => 1001,hint,PJSIP/alice-sip"), "{ext}");
    // Alice's extension and DID go through accent-user with her lines, ring time,
    // voicemail, tenant and percent-encoded name; the outcall tries both trunks.
    assert!(
        ext.contains(",PJSIP/alice-sip,25,1001@default,") && ext.contains(",PJSIP/alice-sip,20,1001@default,"),
        "{ext}"
    );
    assert!(ext.contains(",Alice O%27Hara %28sales%29,1001,default))"), "{ext}");
    assert!(ext.contains("exten => _90XXXXXXXXX,1,"), "{ext}");
    // Feature codes: their own context, included by the internal ones.
    assert!(
        ext.contains("[default]\ninclude => to-extern\ninclude => accent-features\n"),
        "{ext}"
    );
    assert!(
        ext.contains("exten => *25,1,GoSub(accent-feature,s,1(service,dnd,toggle,))"),
        "{ext}"
    );
    assert!(ext.contains("Dial(PJSIP/${ACCENT_DSTNUM}@carrier,45)"), "{ext}");
    assert!(ext.contains("Dial(DAHDI/g1/${ACCENT_DSTNUM},45)"), "{ext}");
    assert!(
        pjsip.contains("[carrier]\ntype = registration\noutbound_auth = carrier-registration\n"),
        "{pjsip}"
    );
    assert!(
        pjsip.contains("[carrier]\ntype = identify\nendpoint = carrier\nmatch = 192.0.2.10\n"),
        "{pjsip}"
    );
    let conf = &files["confbridge.conf"];
    for id in 1..=3 {
        for profile in ["bridge", "user", "admin"] {
            assert!(
                conf.contains(&format!("[accent-{profile}-profile-{id}]\ntype = ")),
                "{conf}"
            );
        }
    }
    assert!(
        conf.contains("[accent-bridge-profile-1]\ntype = bridge\nmax_members = 10\nrecord_conference = yes\n"),
        "{conf}"
    );
    assert!(conf.contains("music_on_hold_class = default\npin = 1234\n"), "{conf}");
    assert!(
        !conf.contains("8888"),
        "the admin PIN is checked by the dialplan: {conf}"
    );
    assert!(
        ext.contains("exten => 4000,1,Set(__ACCENT_CONFERENCE_ID=1)\nsame => n,Answer()\nsame => n,ConfBridge(accent-conference-1,accent-bridge-profile-1,accent-user-profile-1,accent-default-user-menu)\n"),
        "{ext}"
    );
    assert!(
        ext.contains("= \"8888\"]?ConfBridge(accent-conference-2,accent-bridge-profile-2,accent-admin-profile-2,accent-default-admin-menu))"),
        "{ext}"
    );
    let vm = &files["voicemail.conf"];
    assert!(
        vm.contains("1001 => 1234,Alice First,alice@example.com,,attach=yes|tz=Europe/Paris|saycid=yes"),
        "{vm}"
    );
    assert!(!vm.contains("1009"), "disabled voicemail: {vm}");
    // Disabled contexts and includes of them are left out.
    assert!(!files["extensions.conf"].contains("[disabled]"));
    assert!(files["extensions.conf"].contains("include => to-extern"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_written_into_the_asterisk_dir() {
    let out = tempfile::tempdir().expect("dir");
    let dir = out.path().to_path_buf();
    let s = TestServer::start_with(|c| c.confd.asterisk_config_dir = Some(dir.clone())).await;
    provision(&s).await;
    let path = out.path().join("extensions.conf");
    let start = Instant::now();
    while !std::fs::read_to_string(&path).is_ok_and(|t| t.contains("[to-extern]")) {
        assert!(start.elapsed() < Duration::from_secs(10), "extensions.conf written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(out.path().join("accentd-dialplan.conf").exists());
}

#[test]
fn render_command_writes_the_files() {
    let data = tempfile::tempdir().expect("data");
    let out = tempfile::tempdir().expect("out");
    let o = Command::new(BIN)
        .args(["render", "--out"])
        .arg(out.path())
        .env("ACCENTD_DATA_DIR", data.path())
        .env("ACCENTD_ADMIN_PASSWORD", "cli-Admin-pw-1")
        .env("ACCENTD_AUTH_ARGON2_M_COST", "64")
        .env("ACCENTD_AUTH_ARGON2_T_COST", "1")
        .env("ACCENTD_LOG_LEVEL", "warn")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.path().join("extensions.conf")).expect("rendered");
    syntax::parse(&text).expect("valid");
    assert!(String::from_utf8_lossy(&o.stdout).contains("8 file(s) changed"));
    // Nothing changed: nothing rewritten.
    let o = Command::new(BIN)
        .args(["render", "--out"])
        .arg(out.path())
        .env("ACCENTD_DATA_DIR", data.path())
        .env("ACCENTD_ADMIN_PASSWORD", "cli-Admin-pw-1")
        .env("ACCENTD_LOG_LEVEL", "warn")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 file(s) changed"));
}

#[tokio::test]
async fn asterisk_file_sections_are_replaced_whole_and_checked() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let mut bus = s.app().bus.subscribe();
    // Defaults until a PUT.
    let (code, body) = s.get(&format!("{C}/asterisk/features/featuremap"), &t).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["options"]["blindxfer"], "#1");
    let (code, body) = s.get(&format!("{C}/asterisk/voicemail/zonemessages"), &t).await;
    assert_eq!((code, body), (StatusCode::OK, json!({"items": []})));

    // PUT replaces the section: what is not sent is gone.
    let (code, _) = s
        .put(
            &format!("{C}/asterisk/pjsip/global"),
            &t,
            json!({"options": {"max_forwards": "5", "user_agent": "Test PBX"}}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, body) = s.get(&format!("{C}/asterisk/pjsip/global"), &t).await;
    assert_eq!(
        body,
        json!({"options": {"max_forwards": "5", "user_agent": "Test PBX"}})
    );
    let ev = bus.recv().await.expect("event");
    assert_eq!((ev.name.as_str(), ev.data.clone()), ("pjsip_global_updated", json!({})));

    let (code, _) = s
        .put(
            &format!("{C}/asterisk/iax/general"),
            &t,
            json!({"options": {"bindport": "4569"}, "ordered_options": [["allow", "ulaw"], ["allow", "alaw"]]}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, body) = s.get(&format!("{C}/asterisk/iax/general"), &t).await;
    assert_eq!(body["ordered_options"], json!([["allow", "ulaw"], ["allow", "alaw"]]));
    let ev = bus.recv().await.expect("event");
    assert_eq!(ev.name, "iax_general_edited");

    // Values that would break the file: 400 naming the field, nothing stored.
    for (path, body, field) in [
        (
            "pjsip/global",
            json!({"options": {"user_agent": "a\n[evil]"}}),
            "options[0]",
        ),
        ("pjsip/system", json!({"options": {"x": "[general]"}}), "options[0]"),
        (
            "features/featuremap",
            json!({"options": {"blindxfer": "#1;x"}}),
            "options[0]",
        ),
        ("features/general", json!({"options": {"bad key": "1"}}), "options[0]"),
        ("voicemail/general", json!({"options": {"format": 3}}), "options"),
        ("voicemail/general", json!({"opts": {}}), "opts"),
        (
            "voicemail/zonemessages",
            json!({"items": [{"name": "x[", "timezone": "UTC"}]}),
            "items[0].name",
        ),
        (
            "confbridge/accent_default_bridge",
            json!({"options": {"type": "bridge"}}),
            "options[0]",
        ),
        (
            "iax/callnumberlimits",
            json!({"items": [{"ip_address": "1.2.3", "netmask": "255.0.0.0", "limit": "2"}]}),
            "items[0].ip_address",
        ),
    ] {
        let (code, err) = s.put(&format!("{C}/asterisk/{path}"), &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {body}: {err}");
        assert!(err.to_string().contains(field), "{path}: {err}");
        assert!(!err.to_string().contains("evil"), "{err}");
    }
    let (_, body) = s.get(&format!("{C}/asterisk/pjsip/global"), &t).await;
    assert_eq!(body["options"]["user_agent"], "Test PBX");

    // ACLs: a token without `confd.asterisk.*` gets 401.
    let tenant = s.master_tenant().await;
    s.create_user_sql(&tenant, "bob", "pw-bob").await;
    let tok = s.login("bob", "pw-bob").await;
    let (code, _) = s.get(&format!("{C}/asterisk/pjsip/global"), &tok).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s
        .put(&format!("{C}/asterisk/pjsip/global"), &tok, json!({"options": {}}))
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s.get(&format!("{C}/asterisk/pjsip/nope"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_section_change_sends_exactly_its_reload() {
    let fake = FakeAmi::start(&Scenario::load("14").expect("scenario"), FakeAmiOptions::default())
        .await
        .expect("fake");
    fake.respond_with(
        "Command",
        Some(vec![AmiMessage::new()
            .with("Response", "Success")
            .with("Message", "Command output follows")
            .with("Output", "")]),
    );
    let addr = fake.addr().to_string();
    let out = tempfile::tempdir().expect("dir");
    let dir = out.path().to_path_buf();
    let s = TestServer::start_with(|c| {
        c.ami.addr = addr;
        c.ami.user = "accent".into();
        c.ami.password = "accent".into();
        c.confd.asterisk_config_dir = Some(dir.clone());
    })
    .await;
    let t = s.admin_token.clone();
    wait_for("AMI up", || s.app().ami.as_ref().is_some_and(|a| a.is_connected())).await;
    let mut want: Vec<&str> = Vec::new();
    for (path, body, reload, file, text) in [
        (
            "pjsip/global",
            json!({"options": {"user_agent": "Reloaded"}}),
            "module reload res_pjsip.so",
            "pjsip.conf",
            "user_agent = Reloaded",
        ),
        (
            "voicemail/general",
            json!({"options": {"maxmsg": "42"}}),
            "voicemail reload",
            "voicemail.conf",
            "maxmsg = 42",
        ),
        (
            "features/featuremap",
            json!({"options": {"blindxfer": "#9"}}),
            "module reload features",
            "features.conf",
            "blindxfer = #9",
        ),
    ] {
        let (code, b) = s.put(&format!("{C}/asterisk/{path}"), &t, body).await;
        assert_eq!(code, StatusCode::NO_CONTENT, "{b}");
        want.push(reload);
        wait_for(reload, || commands(&fake).len() == want.len()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(commands(&fake), want, "{path}");
        // The file was written before the reload went out.
        let written = std::fs::read_to_string(out.path().join(file)).expect("written");
        assert!(written.contains(text), "{file}: {written}");
    }
    s.post(
        &format!("{C}/contexts"),
        &t,
        json!({"name": "default", "label": "Default", "user_ranges": [{"start": "1000", "end": "1999"}]}),
    )
    .await;
    want.push("dialplan reload");
    wait_for("dialplan reload", || commands(&fake).len() == want.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(commands(&fake), want);

    // A user's fields reach both its extensions (name, ring time) and its lines'
    // endpoints (outgoing caller id): an edit reloads the dialplan and pjsip.
    let (code, user) = s.post(&format!("{C}/users"), &t, json!({"firstname": "Zoe"})).await;
    assert_eq!(code, StatusCode::CREATED, "{user}");
    wait_for("user created", || commands(&fake).len() > want.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = commands(&fake).len();
    let (code, b) = s
        .put(
            &format!("{C}/users/{}", user["id"]),
            &t,
            json!({"firstname": "Zoe", "outgoing_caller_id": "anonymous"}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{b}");
    wait_for("user edit reloads", || commands(&fake).len() >= before + 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent = commands(&fake)[before..].to_vec();
    sent.sort();
    assert_eq!(sent, ["dialplan reload", "module reload res_pjsip.so"]);
}
