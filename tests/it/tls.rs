//! HTTPS: a generated self-signed certificate, and operator-supplied PEM files.

use crate::common::{TestServer, ADMIN_PASSWORD, ADMIN_USER};

async fn login_over_https(s: &TestServer) -> reqwest::StatusCode {
    assert!(s.running.as_ref().expect("running").tls);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let url = format!(
        "https://{}/api/auth/0.1/token",
        s.running.as_ref().expect("running").addr
    );
    client
        .post(url)
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("https request")
        .status()
}

#[tokio::test]
async fn self_signed_certificate_is_generated_and_served() {
    let s = TestServer::start_https(|c| c.tls.self_signed = true).await;
    assert_eq!(login_over_https(&s).await, reqwest::StatusCode::OK);
    assert!(s.dir.path().join("tls/self-signed.crt").exists());
    // Plain HTTP on the TLS port fails instead of leaking anything.
    let plain = format!(
        "http://{}/api/auth/0.1/status",
        s.running.as_ref().expect("running").addr
    );
    assert!(!reqwest::get(plain)
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false));
}

#[tokio::test]
async fn operator_certificate_files_are_used() {
    let pem_dir = tempfile::tempdir().expect("tempdir");
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = pem_dir.path().join("c.pem");
    let key = pem_dir.path().join("k.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("write");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write");
    let s = TestServer::start_https(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
    })
    .await;
    assert_eq!(login_over_https(&s).await, reqwest::StatusCode::OK);
}

#[tokio::test]
async fn unreadable_certificate_fails_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = crate::common::test_config(dir.path().to_path_buf());
    c.tls.cert = Some(dir.path().join("nope.pem"));
    c.tls.key = Some(dir.path().join("nope.key"));
    let err = accentd::app::start(c).await.err().expect("must fail");
    assert!(err.to_string().contains("nope.pem"), "{err}");
}
