//! A full render of the Asterisk configuration for a large PBX (issue 5: every
//! file for 10,000 users in under a second): users, their lines with SIP
//! endpoints (inheriting a template), extensions and voicemails written
//! directly into a real store, then the model load (one read transaction,
//! set-based queries) and the rendering and checking of every file, next to
//! the baseline of reading every stored document of those tables once.
//!
//!     cargo bench --bench confd_render [-- --users 10000 --rounds 5]

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use accentd::confd::render::{self, model::Model};
use serde_json::json;
use support::arg;
use uuid::Uuid;

const TABLES: [&str; 8] = [
    "confd_context",
    "confd_sip_transport",
    "confd_endpoint_sip_template",
    "confd_endpoint_sip",
    "confd_line",
    "confd_extension",
    "confd_voicemail",
    "confd_user",
];

fn open(dir: &Path) -> anyhow::Result<rusqlite::Connection> {
    let path = dir.join("bench.sqlite");
    drop(accentd::store::Store::open(&path)?);
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    Ok(conn)
}

fn insert(tx: &rusqlite::Transaction<'_>, table: &str, tenant: &str, doc: serde_json::Value) -> anyhow::Result<i64> {
    tx.execute(
        &format!("INSERT INTO {table} (uuid, tenant_uuid, doc) VALUES (?1, ?2, ?3)"),
        rusqlite::params![Uuid::new_v4().to_string(), tenant, doc.to_string()],
    )?;
    Ok(tx.last_insert_rowid())
}

fn provision(conn: &mut rusqlite::Connection, users: usize) -> anyhow::Result<()> {
    let tenant = Uuid::new_v4().to_string();
    let tx = conn.transaction()?;
    insert(
        &tx,
        "confd_context",
        &tenant,
        json!({"name": "default", "label": "Default", "type": "internal",
               "user_ranges": [{"start": "10000", "end": "99999"}]}),
    )?;
    let transport_uuid = Uuid::new_v4();
    tx.execute(
        "INSERT INTO confd_sip_transport (uuid, tenant_uuid, doc) VALUES (?1, ?2, ?3)",
        rusqlite::params![
            transport_uuid.to_string(),
            tenant,
            json!({"name": "transport-udp", "options": [["protocol", "udp"], ["bind", "0.0.0.0:5060"]]}).to_string()
        ],
    )?;
    let template_uuid = Uuid::new_v4();
    tx.execute(
        "INSERT INTO confd_endpoint_sip_template (uuid, tenant_uuid, doc) VALUES (?1, ?2, ?3)",
        rusqlite::params![
            template_uuid.to_string(),
            tenant,
            json!({"name": "tpl-phone", "endpoint_section_options": [["allow", "!all,ulaw"]],
                   "aor_section_options": [["max_contacts", "1"]], "transport": {"uuid": transport_uuid}})
            .to_string()
        ],
    )?;
    for i in 0..users {
        let exten = format!("{}", 10000 + i);
        let name = format!("ep{i:06}");
        let user = insert(
            &tx,
            "confd_user",
            &tenant,
            json!({"firstname": format!("User {i}"), "lastname": "Bench", "ring_seconds": 30}),
        )?;
        let sip = insert(
            &tx,
            "confd_endpoint_sip",
            &tenant,
            json!({"name": name, "templates": [{"uuid": template_uuid}],
                   "auth_section_options": [["username", name], ["password", format!("secret{i}")]],
                   "endpoint_section_options": [["callerid", format!("\"User {i}\" <{exten}>")]]}),
        )?;
        let line = insert(
            &tx,
            "confd_line",
            &tenant,
            json!({"context": "default", "position": 1, "provisioning_code": format!("{:06}", 100000 + i),
                   "registrar": "default"}),
        )?;
        let ext = insert(
            &tx,
            "confd_extension",
            &tenant,
            json!({"exten": exten, "context": "default"}),
        )?;
        tx.execute(
            "INSERT INTO confd_line_endpoint (line_id, sip_id) VALUES (?1, ?2)",
            rusqlite::params![line, sip],
        )?;
        tx.execute(
            "INSERT INTO confd_line_extension (line_id, extension_id, position) VALUES (?1, ?2, 0)",
            rusqlite::params![line, ext],
        )?;
        let vm = insert(
            &tx,
            "confd_voicemail",
            &tenant,
            json!({"name": format!("User {i}"), "number": exten, "context": "default", "password": "1234"}),
        )?;
        // The user owns the line (its extension then goes through accent-user) and the voicemail.
        tx.execute(
            "INSERT INTO confd_user_line (user_id, line_id, position, main_user) VALUES (?1, ?2, 0, 1)",
            rusqlite::params![user, line],
        )?;
        tx.execute(
            "INSERT INTO confd_user_voicemail (user_id, voicemail_id) VALUES (?1, ?2)",
            rusqlite::params![user, vm],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The floor: every stored document of the rendered tables read once.
fn baseline(conn: &rusqlite::Connection) -> anyhow::Result<usize> {
    let mut bytes = 0;
    for table in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT doc FROM {table}"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            bytes += r.get_ref(0)?.as_str()?.len();
        }
    }
    Ok(bytes)
}

fn best<T>(rounds: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        let v = f()?;
        best = best.min(start.elapsed());
        out = Some(v);
    }
    Ok((best, out.ok_or_else(|| anyhow::anyhow!("no round"))?))
}

fn main() -> anyhow::Result<()> {
    let users = arg("--users", 10_000);
    let rounds = arg("--rounds", 5);
    let dir = tempfile::tempdir()?;
    let mut conn = open(dir.path())?;
    let start = Instant::now();
    provision(&mut conn, users)?;
    println!(
        "provisioned {users} users with lines, SIP endpoints, extensions and voicemails in {:.1?}",
        start.elapsed()
    );
    let templates = render::Templates::load(None)?;

    let (base, bytes) = best(rounds, || baseline(&conn))?;
    let (load, model) = best(rounds, || {
        let tx = conn.unchecked_transaction()?;
        let m = Model::load(&tx)?;
        tx.commit()?;
        Ok(m)
    })?;
    let (full, files) = best(rounds, || {
        let tx = conn.unchecked_transaction()?;
        let m = Model::load(&tx)?;
        tx.commit()?;
        Ok(templates.render(&m)?)
    })?;
    let (checked, _) = best(rounds, || Ok(render::check(&files)?))?;
    black_box(&model);
    let size: usize = files.values().map(String::len).sum();
    println!("baseline (read every document once, {bytes} bytes): {base:.1?}");
    println!(
        "model load (one read transaction):                  {load:.1?} ({:.1}x baseline)",
        ratio(load, base)
    );
    println!(
        "full render + check of {} files ({size} bytes):    {full:.1?} ({:.1}x baseline; goal < 1 s)",
        files.len(),
        ratio(full, base)
    );
    println!(
        "  of which the syntax and dialplan check:          {checked:.1?} ({:.1}x baseline)",
        ratio(checked, base)
    );
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
