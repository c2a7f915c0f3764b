//! The users CSV import (issue 5: 100 users in under half a second) over HTTP,
//! next to two baselines measured in the same run: hashing the file's 100 auth
//! passwords alone (argon2id at the configured cost, as many at a time as there
//! are cores: the floor any import with passwords has), and the same 100 users
//! created one `POST /users` at a time (what a client without the import does).
//!
//!     cargo bench --bench confd_import [-- --rounds 5]
//!
//! Each round imports into a new tenant with its own contexts, so every round
//! does the same work.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::arg;

const FILE: &str = "tests/confd-fixtures/users_100.csv";

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, tenant: &str, body: Value) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token)
            .json(&body);
        if !tenant.is_empty() {
            req = req.header("Accent-Tenant", tenant);
        }
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
        Ok(v)
    }

    /// `POST /users/import` into `tenant`: its time and answer (a 201 is required).
    async fn import(&self, tenant: &str, csv: String) -> anyhow::Result<(Duration, Value)> {
        let started = Instant::now();
        let r = self
            .client
            .post(format!("{}/api/confd/1.1/users/import", self.base))
            .header("X-Auth-Token", &self.token)
            .header("Accent-Tenant", tenant)
            .header("content-type", "text/csv; charset=utf-8")
            .body(csv)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        let took = started.elapsed();
        anyhow::ensure!(status.as_u16() == 201, "import: {status} {v}");
        Ok((took, v))
    }

    /// A new tenant with the file's contexts (suffixed by `tag`).
    async fn tenant(&self, tag: &str) -> anyhow::Result<String> {
        let t = self
            .post("/api/auth/0.1/tenants", "", json!({"name": tag, "slug": tag}))
            .await?;
        let tenant = t["uuid"].as_str().unwrap_or_default().to_string();
        for (name, kind, ranges) in [
            ("INTERNAL_CONTEXT", "internal", "user_ranges"),
            ("INCALL_CONTEXT", "incall", "incall_ranges"),
        ] {
            let mut body = json!({"name": format!("{name}_{tag}"), "label": kind, "type": kind});
            body[ranges] = json!([{"start": "6000", "end": "7999"}]);
            self.post("/api/confd/1.1/contexts", &tenant, body).await?;
        }
        Ok(tenant)
    }
}

/// The file for round `tag`: its own contexts and usernames.
fn file_for(text: &str, tag: &str) -> String {
    text.replace("INTERNAL_CONTEXT", &format!("INTERNAL_CONTEXT_{tag}"))
        .replace("INCALL_CONTEXT", &format!("INCALL_CONTEXT_{tag}"))
        .replace(",\"imp", &format!(",\"{tag}"))
}

/// The nested `POST /users` bodies of a file (user, auth, voicemail, line with its
/// endpoint and extension; the incall is left out, a user body has none).
fn user_bodies(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers()?.iter().map(str::to_owned).collect();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec?;
        let get = |k: &str| {
            header
                .iter()
                .position(|h| h == k)
                .and_then(|i| rec.get(i))
                .unwrap_or_default()
                .to_string()
        };
        let ctx = get("context");
        let mut line = json!({"context": ctx, "extensions": [{"exten": get("exten"), "context": ctx}]});
        if get("line_protocol") == "sccp" {
            line["endpoint_sccp"] = json!({});
        } else {
            line["endpoint_sip"] = json!({"auth_section_options": [["username", format!("b{}", get("username"))], ["password", "benchpw12"]]});
        }
        out.push(json!({
            "firstname": get("firstname"),
            "lastname": get("lastname"),
            "auth": {"username": get("username"), "password": get("password")},
            "voicemail": {"name": get("voicemail_name"), "number": get("voicemail_number"),
                          "context": get("voicemail_context"), "password": get("voicemail_password")},
            "lines": [line],
        }));
    }
    Ok(out)
}

/// The file with its `password` column emptied (auth users without a password).
fn without_passwords(text: &str) -> anyhow::Result<String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers()?.clone();
    let at = header.iter().position(|h| h == "password");
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for rec in r.records() {
        let rec = rec?;
        w.write_record(rec.iter().enumerate().map(|(i, v)| if Some(i) == at { "" } else { v }))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[allow(clippy::field_reassign_with_default)]
fn main() -> anyhow::Result<()> {
    let rounds = arg("--rounds", 5);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let config = support::bench_config(dir.path());
        let running = accentd::app::start(config.clone()).await?;
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::new();
        let resp = client
            .post(format!("{base}/api/auth/0.1/token"))
            .basic_auth("bench", Some("bench-password"))
            .send()
            .await?;
        let body: Value = resp.json().await?;
        let token = body["data"]["token"].as_str().unwrap_or_default().to_string();
        let api = Api { client, base, token };
        let text = std::fs::read_to_string(FILE)?;
        let passwords: Vec<String> = user_bodies(&text)?
            .iter()
            .map(|b| b["auth"]["password"].as_str().unwrap_or_default().to_string())
            .collect();
        let hasher = running.app.auth.hasher.clone();
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);

        println!("accentd users CSV import benchmark: {FILE} (100 rows), {rounds} rounds, median");
        println!(
            "argon2id: m_cost={} KiB t_cost={} p_cost={}; {workers} hashes at a time",
            config.auth.argon2.m_cost, config.auth.argon2.t_cost, config.auth.argon2.p_cost
        );
        let (mut hash_t, mut import_t, mut single_t, mut bare_t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Baseline 1: the 100 hashes alone.
            let started = Instant::now();
            let mut pending = passwords.clone();
            while !pending.is_empty() {
                // As the import does: `workers` hashes running at once.
                let batch: Vec<String> = pending.drain(..workers.min(pending.len())).collect();
                let tasks: Vec<_> = batch
                    .into_iter()
                    .map(|p| {
                        let h = hasher.clone();
                        tokio::spawn(async move { h.hash_async(p).await })
                    })
                    .collect();
                for t in tasks {
                    t.await?.map_err(anyhow::Error::msg)?;
                }
            }
            hash_t.push(started.elapsed());

            // The import.
            let tag = format!("i{round}");
            let tenant = api.tenant(&tag).await?;
            let csv = file_for(&text, &tag);
            let (took, v) = api.import(&tenant, csv).await?;
            import_t.push(took);
            anyhow::ensure!(v["created"].as_array().map(Vec::len) == Some(100), "import: {v}");

            // The same import without auth passwords: everything but argon2.
            let tag = format!("n{round}");
            let tenant = api.tenant(&tag).await?;
            let csv = without_passwords(&file_for(&text, &tag))?;
            let (took, _) = api.import(&tenant, csv).await?;
            bare_t.push(took);

            // Baseline 2: one POST /users per row.
            let tag = format!("s{round}");
            let tenant = api.tenant(&tag).await?;
            let bodies = user_bodies(&file_for(&text, &tag))?;
            let started = Instant::now();
            for b in bodies {
                api.post("/api/confd/1.1/users", &tenant, b).await?;
            }
            single_t.push(started.elapsed());
        }
        let (h, i, s, b) = (median(hash_t), median(import_t), median(single_t), median(bare_t));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("{:<52} {:>10} {:>12}", "measure", "ms", "ratio");
        println!(
            "{:<52} {:>10.1} {:>12.3}",
            "100 argon2id hashes alone (baseline)",
            ms(h),
            1.0
        );
        println!(
            "{:<52} {:>10.1} {:>12.3}",
            "POST /users/import, 100 rows",
            ms(i),
            ms(i) / ms(h)
        );
        println!(
            "{:<52} {:>10.1} {:>12.3}",
            "100 x POST /users (nested, one by one)",
            ms(s),
            ms(s) / ms(h)
        );
        println!(
            "{:<52} {:>10.1} {:>12.3}",
            "POST /users/import, 100 rows, no auth passwords",
            ms(b),
            ms(b) / ms(h)
        );
        println!(
            "import / one-by-one = {:.3}; argon2 share of the import = {:.0} %",
            ms(i) / ms(s),
            100.0 * (ms(i) - ms(b)) / ms(i)
        );
        running.stop().await;
        Ok(())
    })
}
