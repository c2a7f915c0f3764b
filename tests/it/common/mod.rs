//! Test harness: a real accentd on a random loopback port with its own data
//! dir, and a small JSON client.
#![allow(dead_code)]

use std::path::PathBuf;

use accentd::app::{start, Running};
use accentd::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_USER: &str = "root";
pub const ADMIN_PASSWORD: &str = "s3cr3t-admin-pw";

pub struct TestServer {
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// A token of the bootstrap admin (ACL `#`).
    pub admin_token: String,
}

/// A config that is fast to test: cheap argon2, random port, temp data dir.
#[allow(clippy::field_reassign_with_default)]
pub fn test_config(data_dir: PathBuf) -> Config {
    let mut c = Config::default();
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.calld.fax_dir = data_dir.join("fax");
    c.data_dir = data_dir;
    c.admin.user = Some(ADMIN_USER.into());
    c.admin.password = Some(ADMIN_PASSWORD.into());
    c.auth.argon2.m_cost = 64;
    c.auth.argon2.t_cost = 1;
    c.auth.argon2.p_cost = 1;
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path().to_path_buf());
        tweak(&mut config);
        Self::boot(dir, config).await
    }

    /// A server whose AMI link goes to `fake` (scenario 14's `accent` login), once that
    /// link is up.
    pub async fn start_with_ami(fake: &accentd::fake_asterisk::ami::FakeAmi) -> TestServer {
        let addr = fake.addr().to_string();
        let s = Self::start_with(|c| {
            c.ami.addr = addr;
            c.ami.user = "accent".into();
            c.ami.password = "accent".into();
        })
        .await;
        wait_for("AMI up", || s.app().ami.as_ref().is_some_and(|a| a.is_connected())).await;
        s
    }

    /// A server on HTTPS (the harness's own client skips the login).
    pub async fn start_https(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path().to_path_buf());
        tweak(&mut config);
        let running = start(config).await.expect("accentd starts");
        let base = format!("https://{}", running.addr);
        TestServer {
            running: Some(running),
            base,
            client: reqwest::Client::new(),
            dir,
            admin_token: String::new(),
        }
    }

    async fn boot(dir: tempfile::TempDir, config: Config) -> TestServer {
        let running = start(config).await.expect("accentd starts");
        let base = format!("http://{}", running.addr);
        let mut server = TestServer {
            running: Some(running),
            base,
            client: reqwest::Client::new(),
            dir,
            admin_token: String::new(),
        };
        server.admin_token = server.login(ADMIN_USER, ADMIN_PASSWORD).await;
        server
    }

    /// Stops the process-equivalent and starts a new one on the same data dir.
    pub async fn restart(self) -> TestServer {
        self.restart_with(|_| {}).await
    }

    /// Restarts on the same data dir with the test config changed by `tweak`.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        let mut config = test_config(self.dir.path().to_path_buf());
        tweak(&mut config);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let token = self.admin_token.clone();
        let mut s = Self::boot(dir, config).await;
        s.admin_token = token;
        s
    }

    pub fn app(&self) -> &accentd::app::App {
        &self.running.as_ref().expect("running").app
    }

    /// `/api/auth/0.1` + path.
    pub fn auth_url(&self, path: &str) -> String {
        format!("{}/api/auth/0.1{}", self.base, path)
    }

    /// POST /token with Basic auth; panics unless it succeeds.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let (status, body) = self.login_with(user, password, json!({})).await;
        assert_eq!(status, StatusCode::OK, "login {user}: {body}");
        body["data"]["token"].as_str().expect("token").to_string()
    }

    pub async fn login_with(&self, user: &str, password: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.auth_url("/token"))
            .basic_auth(user, Some(password))
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Any request to the auth API; returns status and JSON body (Null when
    /// the body is empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_with_headers(method, path, token, body, &[]).await
    }

    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        // Full service paths (`/api/confd/...`) are taken as they are; the
        // rest are auth paths (auth itself documents `/api/api.yml`).
        let other_service = [
            "/api/auth/",
            "/api/confd/",
            "/api/call-logd/",
            "/api/calld/",
            "/api/chatd/",
            "/api/websocketd",
        ]
        .iter()
        .any(|p| path.starts_with(p));
        let url = if other_service {
            format!("{}{}", self.base, path)
        } else {
            self.auth_url(path)
        };
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Inserts a PBX user (purpose `user`, enabled) straight into the store,
    /// for tests that need users without depending on POST /users.
    pub async fn create_user_sql(&self, tenant: &str, username: &str, password: &str) -> String {
        let hash = self
            .app()
            .auth
            .hasher
            .hash_async(password.to_string())
            .await
            .expect("hash");
        let uuid = uuid::Uuid::new_v4().to_string();
        let (u, t, n) = (uuid.clone(), tenant.to_string(), username.to_string());
        self.app()
            .store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO auth_user (uuid, username, password_hash, purpose, authentication_method, enabled, tenant_uuid, created_at)
                     VALUES (?1, ?2, ?3, 'user', 'default', 1, ?4, 0)",
                    rusqlite::params![u, n, hash, t],
                )?;
                Ok::<_, accentd::api::error::ApiError>(())
            })
            .await
            .expect("insert user");
        uuid
    }

    /// The master tenant's uuid, from the admin token.
    pub async fn master_tenant(&self) -> String {
        let (_, body) = self
            .call(Method::GET, &format!("/token/{}", self.admin_token), None, None)
            .await;
        body["data"]["metadata"]["tenant_uuid"]
            .as_str()
            .expect("tenant")
            .to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown_token().cancel();
        }
    }
}

/// A successful AMI `Command` answer (the shape of scenario 14's recording).
pub fn command_success() -> Vec<accentd::ami::frame::AmiMessage> {
    vec![accentd::ami::frame::AmiMessage::new()
        .with("Response", "Success")
        .with("Message", "Command output follows")
        .with("Output", "")]
}

/// The `Command` actions (reloads) a fake AMI received, in order.
pub fn commands(fake: &accentd::fake_asterisk::ami::FakeAmi) -> Vec<String> {
    fake.received_actions()
        .iter()
        .filter(|a| a.get("Action").is_some_and(|v| v.eq_ignore_ascii_case("Command")))
        .filter_map(|a| a.get("Command").map(str::to_owned))
        .collect()
}

/// Polls `f` until it holds (10 s at most).
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
