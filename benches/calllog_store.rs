//! call-logd against a large store (issue 4):
//!
//! * the delay from `LINKEDID_END` to `call_log_created` with many CELs stored (goal < 10 ms
//!   with 10 million): one call's generation from the `cel` table (expansion, grouping,
//!   interpretation, storing the log) next to the plain indexed read of that call's rows;
//! * `/cdr` search latency (p50/p99) with many call logs stored, for the queries clients send
//!   (a page, a user's history, "recent calls", a number, a text search), next to reading one
//!   log by id.
//!
//!     cargo bench --bench calllog_store [-- --cels 10000000 --logs 1000000 --samples 200]
//!
//! The store is a real one on disk (SQLite WAL) in a temporary directory; filling it takes a
//! while and shows its progress.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use support::arg;

use accentd::calllog::cdr::model::{CallDirection, CallLog, CdrQuery, Participant, Role, Visibility};
use accentd::calllog::cdr::store as cdr_store;
use accentd::cel::generate::{generate_for_linkedids, StaticContexts, StaticLines};
use accentd::cel::{open_file, store as cel_store, Cel, EventTime};
use uuid::Uuid;

/// The recorded two-party call of scenario 21.
fn recorded_call() -> anyhow::Result<Vec<Cel>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures");
    let dir = std::fs::read_dir(&root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("21-")))
        .ok_or_else(|| anyhow::anyhow!("scenario 21 missing"))?;
    Ok(open_file(&dir.join("cel.csv"))?.collect::<Result<Vec<_>, _>>()?)
}

/// Copy `n` of the call: ids suffixed, times moved by `n` seconds.
fn copy(call: &[Cel], n: usize) -> Vec<Cel> {
    call.iter()
        .map(|c| {
            let mut c = c.clone();
            c.linkedid = format!("{}-{n}", c.linkedid);
            c.uniqueid = format!("{}-{n}", c.uniqueid);
            c.eventtime = EventTime::from_micros(c.eventtime.micros() + n as i64 * 1_000_000);
            c
        })
        .collect()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn fill_cels(conn: &mut rusqlite::Connection, call: &[Cel], target: usize) -> anyhow::Result<usize> {
    let mut stored = 0;
    let mut n = 0;
    let started = Instant::now();
    while stored < target {
        let tx = conn.transaction()?;
        for _ in 0..2_000 {
            stored += cel_store::insert_batch(&tx, &copy(call, n))?;
            n += 1;
        }
        tx.commit()?;
        if n % 100_000 < 2_000 {
            eprintln!("  {stored} CEL rows stored ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    Ok(n)
}

fn log(n: usize, users: &[Uuid], tenant: Uuid) -> CallLog {
    let start = 1_700_000_000_000_000 + n as i64 * 10_000_000;
    let (a, b) = (users[n % users.len()], users[(n * 7 + 1) % users.len()]);
    let exten = |u: usize| format!("{}", 1000 + u % 500);
    CallLog {
        tenant_uuid: tenant,
        conversation_id: format!("{}.{n}", start / 1_000_000),
        start_us: start,
        answer_us: (!n.is_multiple_of(3)).then_some(start + 2_000_000),
        end_us: Some(start + 60_000_000),
        call_direction: [CallDirection::Internal, CallDirection::Inbound, CallDirection::Outbound][n % 3],
        source_name: format!("Caller {}", n % 997),
        source_exten: exten(n),
        destination_name: Some(format!("Callee {}", (n * 7) % 991)),
        destination_exten: Some(exten(n * 7 + 1)),
        participants: vec![
            Participant {
                user_uuid: a,
                line_id: Some(1),
                role: Role::Source,
                tags: vec![],
                answered: true,
                requested: false,
                peer_exten: exten(n * 7 + 1),
            },
            Participant {
                user_uuid: b,
                line_id: Some(2),
                role: Role::Destination,
                tags: vec![],
                answered: !n.is_multiple_of(3),
                requested: true,
                peer_exten: exten(n),
            },
        ],
        ..CallLog::default()
    }
}

fn main() -> anyhow::Result<()> {
    let cels = arg("--cels", 1_000_000);
    let logs = arg("--logs", 1_000_000);
    let samples = arg("--samples", 200).max(10);
    let dir = tempfile::tempdir()?;
    let mut conn = support::open_store(dir.path())?;
    let call = recorded_call()?;
    let tenant = Uuid::new_v4();
    let lines = StaticLines::new();
    let contexts = StaticContexts::new();

    eprintln!("filling {cels} CEL rows …");
    let copies = fill_cels(&mut conn, &call, cels)?;

    // LINKEDID_END -> call log stored: generation of one call, with the table full.
    let mut generate = Vec::with_capacity(samples);
    let mut read = Vec::with_capacity(samples);
    for i in 0..samples {
        let n = copies + i;
        let rows = copy(&call, n);
        let linkedid = rows[0].linkedid.clone();
        cel_store::insert_batch(&conn, &rows)?;
        let t = Instant::now();
        let rows = cel_store::by_linkedids(&conn, &[linkedid.as_str()])?;
        black_box(rows);
        read.push(t.elapsed());
        let t = Instant::now();
        let outcome = generate_for_linkedids(&conn, std::slice::from_ref(&linkedid), &lines, &contexts, tenant)?;
        let tx = conn.transaction()?;
        for log in &outcome.logs {
            cdr_store::replace(&tx, log, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        tx.commit()?;
        generate.push(t.elapsed());
        anyhow::ensure!(outcome.logs.len() == 1, "one log per call");
    }
    let (g50, g99) = (percentile(&mut generate, 0.5), percentile(&mut generate, 0.99));
    let (r50, r99) = (percentile(&mut read, 0.5), percentile(&mut read, 0.99));
    println!("command: cargo bench --bench calllog_store -- --cels {cels} --logs {logs} --samples {samples}");
    println!("LINKEDID_END -> call log stored, {cels} CEL rows in the table ({samples} calls):");
    println!("  baseline: read the call's rows by linkedid   p50 {r50:>10.3?}  p99 {r99:>10.3?}  ratio 1.0");
    println!(
        "  generate + store the log                   p50 {g50:>10.3?}  p99 {g99:>10.3?}  ratio {:.1} (goal: < 10 ms)",
        g50.as_secs_f64() / r50.as_secs_f64().max(1e-9)
    );

    eprintln!("filling {logs} call logs …");
    let users: Vec<Uuid> = (0..2_000).map(|_| Uuid::new_v4()).collect();
    let started = Instant::now();
    let mut n = 0;
    while n < logs {
        let tx = conn.transaction()?;
        for _ in 0..5_000.min(logs - n) {
            cdr_store::replace(&tx, &log(n, &users, tenant), 0).map_err(|e| anyhow::anyhow!("{e}"))?;
            n += 1;
        }
        tx.commit()?;
        if n % 200_000 == 0 {
            eprintln!("  {n} call logs stored ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    conn.execute_batch("ANALYZE")?;

    let vis = Visibility {
        tenants: vec![tenant],
        user: None,
    };
    let user = Visibility {
        tenants: vec![tenant],
        user: Some(users[42]),
    };
    let queries: Vec<(&str, Visibility, CdrQuery)> = vec![
        (
            "GET /cdr?limit=100",
            vis.clone(),
            CdrQuery::parse("limit=100").map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        (
            "GET /users/{uuid}/cdr?limit=100",
            user.clone(),
            CdrQuery::parse("limit=100").map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        (
            "GET /users/me/cdr?distinct=peer_exten&limit=20",
            user.clone(),
            CdrQuery::parse("distinct=peer_exten&limit=20").map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        (
            "GET /cdr?number=_1042&limit=100",
            vis.clone(),
            CdrQuery::parse("number=_1042&limit=100").map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        (
            "GET /cdr?search=caller 99&limit=100",
            vis.clone(),
            CdrQuery::parse("search=caller%2099&limit=100").map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        (
            "GET /cdr?from=…&until=… (one hour)",
            vis.clone(),
            CdrQuery::parse("from=2023-11-15T00:00:00Z&until=2023-11-15T01:00:00Z&limit=100")
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
    ];
    let mut base = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        black_box(
            cdr_store::get(&conn, &vis, (i * 4_999 % logs.max(1)) as i64 + 1).map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        base.push(t.elapsed());
    }
    let b50 = percentile(&mut base, 0.5);
    println!("/cdr with {logs} call logs stored ({samples} samples each):");
    println!(
        "  baseline: GET /cdr/{{id}} (one log by id)          p50 {b50:>10.3?}  p99 {:>10.3?}  ratio 1.0",
        percentile(&mut base, 0.99)
    );
    for (name, vis, q) in &queries {
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            black_box(cdr_store::search(&conn, vis, q).map_err(|e| anyhow::anyhow!("{e}"))?);
            times.push(t.elapsed());
        }
        let (p50, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
        println!(
            "  {name:<48} p50 {p50:>10.3?}  p99 {p99:>10.3?}  ratio {:.0}",
            p50.as_secs_f64() / b50.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
