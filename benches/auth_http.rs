//! HTTP benchmark of accent-auth: token validation (HEAD /token/{t}) and token
//! creation (POST /token) against a no-op endpoint (HEAD /status) of the same
//! server, measured in the same run. Run with:
//!
//!     cargo bench --bench auth_http [-- --seconds 5 --concurrency 32]
//!
//! The server runs in-process on a random loopback port with the default
//! (production) argon2id cost; the load generator is a reqwest client with
//! `concurrency` keep-alive connections, each sending requests back to back.

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

struct Settings {
    seconds: u64,
    concurrency: usize,
}

fn settings() -> Settings {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Settings {
        seconds: get("--seconds", 5),
        concurrency: get("--concurrency", 32) as usize,
    }
}

/// Requests per second for `make_request`, which must answer `expected`.
async fn measure(
    client: &reqwest::Client,
    settings: &Settings,
    seconds: u64,
    make_request: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>,
    expected: StatusCode,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..settings.concurrency {
        let client = client.clone();
        let make = make_request.clone();
        let done = done.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match make(&client).send().await {
                    Ok(r) if r.status() == expected => {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let f = failed.load(Ordering::Relaxed);
    if f > 0 {
        eprintln!("warning: {f} requests failed");
    }
    done.load(Ordering::Relaxed) as f64 / elapsed
}

#[allow(clippy::field_reassign_with_default)]
fn main() -> anyhow::Result<()> {
    let settings = settings();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let mut config = support::bench_config(dir.path());
        // Sessions pile up during the creation benchmark.
        config.auth.max_user_concurrent_sessions = u32::MAX;
        // Keep the throttle out of the way of a benchmark on one login.
        config.auth.throttle.max_failures_per_login = u32::MAX;
        let running = accentd::app::start(config.clone()).await?;
        let base = format!("http://{}/api/auth/0.1", running.addr);
        let client = reqwest::Client::builder().pool_max_idle_per_host(settings.concurrency).build()?;

        let resp = client.post(format!("{base}/token")).basic_auth("bench", Some("bench-password")).send().await?;
        let body: serde_json::Value = resp.json().await?;
        let token = body["data"]["token"].as_str().unwrap_or_default().to_string();

        println!("accentd auth HTTP benchmark");
        println!(
            "load generator: reqwest, {} concurrent keep-alive connections, {} s per measurement, server and client on the same host",
            settings.concurrency, settings.seconds
        );
        println!(
            "argon2id: m_cost={} KiB t_cost={} p_cost={}",
            config.auth.argon2.m_cost, config.auth.argon2.t_cost, config.auth.argon2.p_cost
        );

        let status_url = format!("{base}/status");
        let noop: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c| c.request(Method::HEAD, &status_url));
        let backends_url = format!("{base}/backends");
        let backends: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c| c.get(&backends_url));
        let head_url = format!("{base}/token/{token}?scope=auth.tenants.read");
        let validate: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c| c.request(Method::HEAD, &head_url));
        let token_url = format!("{base}/token");
        let create: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c| c.post(&token_url).basic_auth("bench", Some("bench-password")));

        // Warm-up, then measurements.
        measure(&client, &settings, 1, noop.clone(), StatusCode::OK).await;
        let noop_rps = measure(&client, &settings, settings.seconds, noop.clone(), StatusCode::OK).await;
        let validate_rps = measure(&client, &settings, settings.seconds, validate, StatusCode::NO_CONTENT).await;
        let noop_rps2 = measure(&client, &settings, settings.seconds, noop, StatusCode::OK).await;
        let backends_rps = measure(&client, &settings, settings.seconds, backends, StatusCode::OK).await;
        let create_rps = measure(&client, &settings, settings.seconds, create, StatusCode::OK).await;
        let baseline = (noop_rps + noop_rps2) / 2.0;

        println!("{:<40} {:>12} {:>10}", "endpoint", "req/s", "ratio");
        println!("{:<40} {:>12.0} {:>10.3}", "HEAD /status (no-op baseline)", baseline, 1.0);
        println!("{:<40} {:>12.0} {:>10.3}", "GET /backends (static JSON)", backends_rps, backends_rps / baseline);
        println!("{:<40} {:>12.0} {:>10.3}", "HEAD /token/{t}?scope=... (validate)", validate_rps, validate_rps / baseline);
        println!("{:<40} {:>12.0} {:>10.3}", "POST /token (create, argon2id)", create_rps, create_rps / baseline);
        running.stop().await;
        Ok(())
    })
}
