//! Rendering the Asterisk configuration: golden files for a fixture configuration, every file
//! through the Asterisk-syntax checker, written into the configured directory before the
//! reload goes out, and `accentd render --out DIR` on the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use accentd::confd::render::{self, syntax};
use common::TestServer;
use reqwest::StatusCode;
use serde_json::json;

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
        json!({"name": "default", "label": "Default", "user_ranges": [{"start": "1000", "end": "1999"}]}),
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
}

#[tokio::test]
async fn fixture_configuration_renders_to_the_golden_files() {
    let s = TestServer::start().await;
    provision(&s).await;
    let templates = render::Templates::load(None).expect("templates");
    let files = render::render_store(&s.app().store, &templates).await.expect("render");
    for (name, text) in &files {
        syntax::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_golden(name, text);
    }
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
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 file(s) changed"));
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
