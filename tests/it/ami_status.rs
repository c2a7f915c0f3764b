//! accentd with (and without) an AMI link: `GET /status` reports `ami`, the API keeps serving.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::TestServer;
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions, Replay};
use accentd::fake_asterisk::Scenario;
use serde_json::Value;

const AMI_SECRET: &str = "ami-Pw-9f3kq-never-logged";

async fn fake() -> FakeAmi {
    let options = FakeAmiOptions {
        secret: AMI_SECRET.into(),
        replay: Replay::AfterLogin,
        ..FakeAmiOptions::default()
    };
    FakeAmi::start(&Scenario::load("01").expect("scenario"), options)
        .await
        .expect("fake")
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn status(client: &reqwest::Client, base: &str) -> Value {
    let resp = client.get(format!("{base}/status")).send().await.expect("GET /status");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// Polls `GET /status` until `ami` has `want` as status.
async fn wait_ami(client: &reqwest::Client, base: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let body = status(client, base).await;
        if body["ami"]["status"] == want {
            return body["ami"].clone();
        }
        assert!(Instant::now() < deadline, "ami never {want}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_linked_to_a_fake_asterisk_reports_ok() {
    let fake = fake().await;
    let addr = fake.addr().to_string();
    let server = TestServer::start_with(|c| {
        c.ami.addr = addr;
        c.ami.user = "accent".into();
        c.ami.password = AMI_SECRET.into();
    })
    .await;
    let ami = wait_ami(&server.client, &server.base, "ok").await;
    assert_eq!(ami, serde_json::json!({"status": "ok"}));
    let client = server.app().ami.clone().expect("AMI client started");
    client.ping().await.expect("ping through the app's client");
    assert_eq!(fake.logins(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_on_a_closed_port_fails_and_the_api_keeps_serving() {
    let port = closed_port();
    let server = TestServer::start_with(|c| {
        c.ami.addr = format!("127.0.0.1:{port}");
        c.ami.user = "accent".into();
        c.ami.password = AMI_SECRET.into();
    })
    .await;
    let ami = wait_ami(&server.client, &server.base, "fail").await;
    let detail = ami["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail == "connecting" || detail.starts_with("cannot connect"), "{ami}");
    // The HTTP API works without Asterisk: a fresh login and an authenticated read.
    let token = server
        .login(crate::common::ADMIN_USER, crate::common::ADMIN_PASSWORD)
        .await;
    let resp = server
        .client
        .get(server.auth_url("/users"))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("GET /users");
    assert_eq!(resp.status(), 200);
    assert_eq!(status(&server.client, &server.base).await["rest_api"]["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_not_configured_is_reported() {
    let server = TestServer::start().await;
    let body = status(&server.client, &server.base).await;
    assert_eq!(
        body["ami"],
        serde_json::json!({"status": "fail", "detail": "not configured"})
    );
    assert!(server.app().ami.is_none());
}

/// Kills the child if the test fails half way.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_uses_accentd_ami_env_and_logs_off_on_sigterm() {
    let fake = fake().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = closed_port();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_accentd"))
            .arg("serve")
            .env("ACCENTD_DATA_DIR", dir.path())
            .env("ACCENTD_LISTEN", format!("127.0.0.1:{port}"))
            .env("ACCENTD_ADMIN_USER", "root")
            .env("ACCENTD_ADMIN_PASSWORD", "s3cr3t-admin-pw")
            .env("ACCENTD_AUTH_ARGON2_M_COST", "64")
            .env("ACCENTD_AUTH_ARGON2_T_COST", "1")
            .env("ACCENTD_AMI_ADDR", fake.addr().to_string())
            .env("ACCENTD_AMI_USER", "accent")
            .env("ACCENTD_AMI_PASSWORD", AMI_SECRET)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn accentd"),
    );
    // Drain the pipes while it runs (trace logs would fill a pipe and block the child).
    let readers: Vec<_> = [
        child.0.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.0.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    })
    .collect();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(4);
    while client.get(format!("{base}/status")).send().await.is_err() {
        assert!(Instant::now() < deadline, "accentd did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        wait_ami(&client, &base, "ok").await,
        serde_json::json!({"status": "ok"})
    );

    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let deadline = Instant::now() + Duration::from_secs(4);
    let exit = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "accentd did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        fake.received_actions().iter().any(|a| a.action() == Some("Logoff")),
        "a clean Logoff on shutdown"
    );
    let log: String = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    assert!(log.contains("AMI connected and logged in"), "{log}");
    assert!(!log.contains(AMI_SECRET), "the AMI secret was logged");
}
