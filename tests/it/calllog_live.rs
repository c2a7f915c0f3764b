//! The live path: accentd linked to the fake Asterisk stores every AMI CEL event, generates
//! the call log on `LINKEDID_END`, publishes `call_log_created`/`call_log_user_created`, and
//! gives the same logs as the batch path over the same call's CEL file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::TestServer;
use accentd::calllog::batch::{self, Source};
use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions, Replay};
use accentd::fake_asterisk::Scenario;
use serde_json::Value;
use uuid::Uuid;

fn fixture(scenario: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures");
    let name = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("{scenario}-")))
        .expect("scenario");
    dir.join(name)
}

/// The recording's PJSIP users, as confd will fill `calllog_line`.
/// Fixed ids, so two servers resolve the same participants.
async fn add_lines(s: &TestServer) -> Vec<Uuid> {
    let tenant = s.master_tenant().await;
    let users: Vec<Uuid> = (1..=3)
        .map(|i| Uuid::parse_str(&format!("0a0a0a0a-0000-4000-8000-00000000000{i}")).expect("uuid"))
        .collect();
    let rows: Vec<(String, i64, String)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (format!("pjsip/200{}", i + 1), i as i64 + 1, u.to_string()))
        .collect();
    s.app()
        .store
        .write(move |tx| {
            for (identity, id, user) in &rows {
                tx.execute(
                    "INSERT INTO calllog_line (identity, line_id, user_uuid, tenant_uuid, tags, user_name, exten, context)
                     VALUES (?1, ?2, ?3, ?4, '[]', 'User', ?5, 'from-internal')",
                    rusqlite::params![identity, id, user, tenant, format!("200{id}")],
                )?;
            }
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("lines");
    users
}

async fn cdr(s: &TestServer) -> Vec<Value> {
    let resp = s
        .client
        .get(format!("{}/api/call-logd/1.0/cdr?direction=asc&order=id", s.base))
        .header("X-Auth-Token", &s.admin_token)
        .send()
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    body["items"].as_array().cloned().unwrap_or_default()
}

fn ms(v: &Value) -> Option<i64> {
    let t = time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Everything but the id, the times, which the AMI events carry as the moment they were sent
/// (0–50 ms after the CEL row's own time), and the tenant (each test server has its own master
/// tenant, the default of calls with no known participant).
fn comparable(mut log: Value) -> Value {
    if let Some(o) = log.as_object_mut() {
        for key in ["id", "start", "answer", "end", "duration"] {
            o.remove(key);
        }
        o.retain(|k, _| !k.ends_with("tenant_uuid"));
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_cels_give_the_batch_logs_and_events() {
    for scenario in ["01", "02", "21", "25"] {
        let dir = fixture(scenario);
        let options = FakeAmiOptions {
            replay: Replay::Manual,
            ..FakeAmiOptions::default()
        };
        let fake = FakeAmi::start(&Scenario::load(scenario).expect("scenario"), options)
            .await
            .expect("fake");
        let addr = fake.addr().to_string();
        let live = TestServer::start_with(|c| {
            c.ami.addr = addr;
            c.ami.user = "accent".into();
            c.ami.password = "accent".into();
        })
        .await;
        let users = add_lines(&live).await;
        let mut bus = live.app().bus.subscribe();
        let start = Instant::now();
        while !live.app().ami.as_ref().is_some_and(|a| a.is_connected()) {
            assert!(start.elapsed() < Duration::from_secs(10), "{scenario}: AMI up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        fake.replay_all();
        let ends = fake
            .recording()
            .timeline()
            .iter()
            .filter(|m| m.get("Event") == Some("CEL") && m.get("EventName") == Some("LINKEDID_END"))
            .count();
        assert!(ends > 0, "{scenario}: the recording ends its calls");

        // The batch path over the same call's CEL file, on a fresh accentd.
        let batch_server = TestServer::start().await;
        let _ = add_lines(&batch_server).await;
        let summary = batch::generate(&batch_server.app().calllog, Source::CelFile(dir.join("cel.csv")), false)
            .await
            .expect("batch");
        assert_eq!(summary.rows_rejected, 0, "{scenario}: {summary}");
        let expected = cdr(&batch_server).await;
        assert!(!expected.is_empty(), "{scenario}: {summary}");

        let start = Instant::now();
        let got = loop {
            let got = cdr(&live).await;
            if got.len() >= expected.len() || start.elapsed() > Duration::from_secs(10) {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(got.len(), expected.len(), "{scenario}: {got:#?}");
        for (g, e) in got.iter().zip(&expected) {
            for key in ["start", "answer", "end"] {
                match (ms(&g[key]), ms(&e[key])) {
                    (Some(a), Some(b)) => assert!((0..=60).contains(&(a - b)), "{scenario} {key}: {a} vs {b}"),
                    (a, b) => assert_eq!(a, b, "{scenario} {key}"),
                }
            }
            assert_eq!(comparable(g.clone()), comparable(e.clone()), "{scenario}");
        }

        // One call_log_created per log, one call_log_user_created per participant user.
        let mut created = 0;
        let mut per_user = Vec::new();
        while let Ok(event) = bus.try_recv() {
            match event.name.as_str() {
                "call_log_created" => created += 1,
                "call_log_user_created" => {
                    assert!(event.data.get("tags").is_none(), "user events carry no tags");
                    per_user.push(event.routing_key.clone());
                }
                _ => {}
            }
        }
        assert_eq!(created, got.len(), "{scenario}");
        let participants: usize = got
            .iter()
            .map(|l| {
                let mut u: Vec<&str> = l["participants"]
                    .as_array()
                    .map(|p| p.iter().filter_map(|x| x["user_uuid"].as_str()).collect())
                    .unwrap_or_default();
                u.sort();
                u.dedup();
                u.len()
            })
            .sum();
        assert_eq!(per_user.len(), participants, "{scenario}: {per_user:?}");
        let participant_keys: Vec<String> = got
            .iter()
            .flat_map(|l| l["participants"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["user_uuid"].as_str().map(|u| format!("call_log.user.{u}.created")))
            .collect();
        for key in &per_user {
            assert!(participant_keys.contains(key), "{key}");
        }
        // Our lines' users are resolved: someone of the recording's PJSIP calls is one of them.
        if scenario == "21" {
            assert!(users
                .iter()
                .any(|u| per_user.contains(&format!("call_log.user.{u}.created"))));
        }

        // Generating again from the stored CELs changes nothing.
        let again = batch::generate(&live.app().calllog, Source::Days(36500), false)
            .await
            .expect("again");
        assert_eq!(again.logs as usize, got.len(), "{scenario}: {again}");
        let after: Vec<Value> = cdr(&live).await.into_iter().map(comparable).collect();
        let before: Vec<Value> = got.into_iter().map(comparable).collect();
        assert_eq!(after, before, "{scenario}: regenerated logs replace the live ones");
    }
}

/// The daily run: what the live path missed is generated from the stored CELs, and call logs
/// and CELs past the retention are purged.
#[tokio::test]
async fn daily_run_generates_what_was_missed_and_applies_retention() {
    let s = TestServer::start().await;
    let svc = &s.app().calllog;
    // A recent call whose CELs were stored but never generated (as if the process had stopped
    // before LINKEDID_END was handled): shift the recorded call to an hour ago.
    let rows: Vec<accentd::cel::Cel> = accentd::cel::open_file(&fixture("01").join("cel.csv"))
        .expect("open")
        .map(|r| r.expect("row"))
        .collect();
    let first = rows[0].eventtime.micros();
    let now = (accentd::time::now_epoch() * 1e6) as i64;
    let shift = |mut c: accentd::cel::Cel, to: i64| {
        c.eventtime = accentd::cel::EventTime::from_micros(c.eventtime.micros() - first + to);
        c
    };
    let recent: Vec<_> = rows.iter().cloned().map(|c| shift(c, now - 3_600_000_000)).collect();
    // The same call 400 days ago, under other ids.
    let old: Vec<_> = rows
        .iter()
        .cloned()
        .map(|mut c| {
            c.linkedid = format!("old-{}", c.linkedid);
            c.uniqueid = format!("old-{}", c.uniqueid);
            shift(c, now - 400 * 86_400_000_000)
        })
        .collect();
    svc.store_cels(recent).await.expect("store");
    svc.store_cels(old.clone()).await.expect("store");
    let old_ids: Vec<String> = vec![old[0].linkedid.clone()];
    svc.generate_linkedids(old_ids, false).await.expect("old log");
    assert_eq!(cdr(&s).await.len(), 1);

    let config = accentd::config::CallLogsConfig {
        retention_days: 30,
        ..Default::default()
    };
    batch::run_daily(svc, &config).await;
    let logs = cdr(&s).await;
    assert_eq!(
        logs.len(),
        1,
        "the missed call generated, the old one purged: {logs:#?}"
    );
    assert_eq!(logs[0]["conversation_id"], rows[0].linkedid.as_str());
    let cels: i64 = s
        .app()
        .store
        .read(|conn| Ok::<_, accentd::api::error::ApiError>(accentd::cel::store::count(conn)?))
        .await
        .expect("count");
    assert_eq!(cels as usize, rows.len(), "only the recent call's CELs are kept");
}
