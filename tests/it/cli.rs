//! The binary itself: help, config errors, first start, signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_accentd");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn help_documents_the_environment() {
    for args in [vec!["--help"], vec!["serve", "--help"]] {
        let out = Command::new(BIN).args(&args).output().expect("run");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for var in [
            "ACCENTD_LISTEN",
            "ACCENTD_DATA_DIR",
            "ACCENTD_ADMIN_USER",
            "ACCENTD_ADMIN_PASSWORD",
            "ACCENTD_ARI_URL",
            "ACCENTD_ARI_USER",
            "ACCENTD_ARI_PASSWORD",
            "ACCENTD_AMI_ADDR",
            "ACCENTD_AMI_USER",
            "ACCENTD_AMI_PASSWORD",
            "ACCENTD_TLS_CERT",
            "ACCENTD_TLS_KEY",
        ] {
            assert!(text.contains(var), "{args:?} does not mention {var}");
        }
    }
}

#[test]
fn bad_config_file_names_key_and_line_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("accentd.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:1\"\n[auth]\nmax_user_concurent_sessions = 3\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("max_user_concurent_sessions"), "{err}");

    let out = Command::new(BIN)
        .arg("check-config")
        .env("ACCENTD_AMI_ADDR", "nohostport")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ami.addr"));

    let out = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .arg("check-config")
        .output()
        .expect("run");
    assert!(!out.status.success());
}

#[test]
fn check_config_omits_secrets() {
    let out = Command::new(BIN)
        .arg("check-config")
        .env("ACCENTD_AMI_PASSWORD", "very-secret-ami")
        .env("ACCENTD_ADMIN_PASSWORD", "very-secret-admin")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listen"));
    assert!(!text.contains("very-secret"), "{text}");
}

#[test]
fn first_start_generates_admin_password_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("ACCENTD_DATA_DIR", dir.path())
        .env("ACCENTD_LISTEN", format!("127.0.0.1:{port}"))
        .env("ACCENTD_AUTH_ARGON2_M_COST", "64")
        .env("ACCENTD_AUTH_ARGON2_T_COST", "1")
        .env("RUST_LOG", "info")
        .env_remove("ACCENTD_ADMIN_PASSWORD")
        .env_remove("ACCENTD_ADMIN_USER")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains("accentd listening") {
                    break;
                }
            }
            _ => break,
        }
    }
    assert!(log.contains("accentd listening"), "{log}");
    let pw_file = dir.path().join("admin-password");
    let password = std::fs::read_to_string(&pw_file)
        .expect("password file")
        .trim()
        .to_string();
    assert!(password.len() >= 20);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pw_file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(
        log.contains("admin-password"),
        "the log says where the password is: {log}"
    );
    assert!(!log.contains(&password), "the log must never contain the password");

    // The generated password works.
    let status = reqwest::blocking_login(port, &password);
    assert_eq!(status, 200);

    // SIGTERM: graceful stop, exit code 0.
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "accentd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let rest = rest.join("\n");
    assert!(!rest.contains(&password));
}

mod reqwest {
    /// POST /token with Basic auth on a tiny blocking client (raw HTTP/1.1),
    /// to keep this test free of an async runtime.
    pub fn blocking_login(port: u16, password: &str) -> u16 {
        use base64::Engine;
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"));
        let req = format!(
            "POST /api/auth/0.1/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {creds}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }
}
