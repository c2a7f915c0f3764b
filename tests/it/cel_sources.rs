//! The CEL readers against recorded data: for every scenario of `tests/asterisk-fixtures/`,
//! cel_custom's CSV, its JSON lines and cel_manager's AMI events must give the same rows; the
//! pipe-delimited dump format against our own file (and upstream's seed when it is there).

use std::path::{Path, PathBuf};

use accentd::ami::{frame_all, AmiFramer, Frame, FrameLimits};
use accentd::cel::read::ami::{from_ami, is_cel_event};
use accentd::cel::read::sqlite::SqliteReader;
use accentd::cel::{detect, open_file, store, Cel, CsvKind, EventType};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures")
}

fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// `file` or `file.gz`.
fn find(dir: &Path, file: &str) -> PathBuf {
    let plain = dir.join(file);
    if plain.exists() {
        return plain;
    }
    let gz = dir.join(format!("{file}.gz"));
    assert!(gz.exists(), "{dir:?} has no {file}(.gz)");
    gz
}

fn read_file(path: &Path) -> Vec<Cel> {
    open_file(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn read_ami(dir: &Path) -> Vec<Cel> {
    let path = find(dir, "ami.raw");
    let mut bytes = std::fs::read(&path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).unwrap();
        bytes = out;
    }
    // Only the CEL events (the burst has 12 MB of others).
    let finder = memchr::memmem::Finder::new(b"\r\n\r\n");
    let mut cel_only = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let end = finder.find(rest).map_or(rest.len(), |i| i + 4);
        let (msg, tail) = rest.split_at(end);
        if msg.starts_with(b"Event: CEL\r\n") {
            cel_only.extend_from_slice(msg);
        }
        rest = tail;
    }
    let mut framer = AmiFramer::without_greeting(FrameLimits::default());
    frame_all(&mut framer, &cel_only)
        .into_iter()
        .filter_map(|f| match f.unwrap() {
            Frame::Message(m) if is_cel_event(&m) => Some(from_ami(&m).unwrap_or_else(|e| panic!("{e}"))),
            _ => None,
        })
        .collect()
}

#[test]
fn csv_jsonl_and_ami_give_the_same_rows_in_every_scenario() {
    let mut total = 0;
    for dir in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let csv = read_file(&find(&dir, "cel.csv"));
        let jsonl = read_file(&find(&dir, "cel.jsonl"));
        let ami = read_ami(&dir);
        assert_eq!(csv, jsonl, "{name}: cel.csv and cel.jsonl differ");
        assert_eq!(
            csv.len(),
            ami.len(),
            "{name}: {} CSV rows, {} AMI CEL events",
            csv.len(),
            ami.len()
        );
        for (i, (c, a)) in csv.iter().zip(&ami).enumerate() {
            let at = format!("{name} row {}", i + 1);
            assert_eq!(c.eventtype, a.eventtype, "{at}");
            assert_eq!(c.uniqueid, a.uniqueid, "{at}");
            assert_eq!(c.linkedid, a.linkedid, "{at}");
            assert_eq!(c.channame, a.channame, "{at}");
            assert_eq!(c.cid_num, a.cid_num, "{at}");
            assert_eq!(c.appdata, a.appdata, "{at}");
            assert_eq!(c.extra, a.extra, "{at}");
            // AMI's Timestamp is when cel_manager sent the event, just after the CEL's own time.
            let late = a.eventtime.micros() - c.eventtime.micros();
            assert!(
                (0..50_000).contains(&late),
                "{at}: AMI {} vs CSV {}",
                a.eventtime,
                c.eventtime
            );
            if let EventType::Other(other) = &c.eventtype {
                panic!("{at}: unknown event type {other}");
            }
        }
        assert!(
            !csv.is_empty() || name.starts_with("20") || name.starts_with("14"),
            "{name}: no CEL"
        );
        total += csv.len();
    }
    assert!(total > 1000, "{total} rows");
}

#[test]
fn user_events_read_the_same_from_every_source() {
    let dir = fixtures().join("25-sip-inbound-did");
    let sources = [
        read_file(&dir.join("cel.csv")),
        read_file(&dir.join("cel.jsonl")),
        read_ami(&dir),
    ];
    for rows in &sources {
        let users: Vec<(&str, &str, Option<String>)> = rows
            .iter()
            .filter_map(|c| {
                Some((
                    c.eventtype.user_event()?,
                    c.userdeftype.as_str(),
                    c.extra().field("name"),
                ))
            })
            .collect();
        assert_eq!(
            users,
            vec![
                ("ACCENT_INCALL", "ACCENT_INCALL", None),
                (
                    "ACCENT_CALL_LOG_DESTINATION",
                    "ACCENT_CALL_LOG_DESTINATION",
                    Some("Alice".into())
                ),
            ]
        );
        let incall = rows.iter().find(|c| c.eventtype.is_user_event("INCALL")).unwrap();
        assert_eq!(incall.extra().user_text(), Some("3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10"));
    }
}

#[test]
fn kinds_are_told_apart_by_their_first_line() {
    let first = |p: &Path| std::fs::read_to_string(p).unwrap().lines().next().unwrap().to_owned();
    let dir = fixtures().join("01-internal-answered-caller-hangup");
    assert_eq!(detect(&first(&dir.join("cel.csv"))), CsvKind::CustomWithHeader);
    assert_eq!(detect(&first(&dir.join("cel.jsonl"))), CsvKind::JsonLines);
    let second = std::fs::read_to_string(dir.join("cel.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(detect(&second), CsvKind::CustomNoHeader);
    let dump = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cel-fixtures/inbound-dump.csv");
    assert_eq!(detect(&first(&dump)), CsvKind::PipeDump);
    // Not CEL files: refused with their name.
    let cdr = fixtures().join("21-sip-call-answered/facts.json");
    let err = open_file(&cdr).err().unwrap();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: not a CEL file", cdr.display())),
        "{err}"
    );
    let err = open_file(&dir.join("README.md")).err().unwrap();
    assert!(err.to_string().contains("not a CEL file"), "{err}");
}

#[test]
fn a_headerless_cel_custom_file_reads_like_the_recording() {
    let dir = fixtures().join("07-blind-transfer");
    let text = std::fs::read_to_string(dir.join("cel.csv")).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), body).unwrap();
    assert_eq!(read_file(tmp.path()), read_file(&dir.join("cel.csv")));
}

#[test]
fn our_dump_reads_with_every_time_form() {
    let rows = read_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cel-fixtures/inbound-dump.csv"));
    assert_eq!(rows.len(), 16);
    assert!(
        rows.windows(2).all(|w| w[0].eventtime <= w[1].eventtime),
        "times out of order"
    );
    assert_eq!(rows[0].eventtime.to_string(), "2024-03-05T14:12:40.500000Z");
    assert_eq!(rows[8].eventtime.to_string(), "2024-03-05T14:12:45.010000Z");
    assert_eq!(rows[0].userdeftype, "");
    assert!(rows[1].eventtype.is_user_event("INCALL"));
    let dest = rows[3].extra();
    assert_eq!(dest.field("name").as_deref(), Some("Pierre%20Dupont"));
    assert_eq!(
        dest.field("uuid").as_deref(),
        Some("0c4e8a2b-7f19-4d3e-b5a6-1e2d3c4b5a69")
    );
    assert_eq!(rows[10].extra().get("hangupcause").as_deref(), Some("16"));
    assert_eq!(rows[15].eventtype, EventType::LinkedidEnd);
    let talk = rows[15].eventtime.micros() - rows[8].eventtime.micros();
    assert!((17_000_000..17_500_000).contains(&talk), "{talk}");
}

/// Upstream's benchmark seed, when the shared reference folder is next to the repository.
#[test]
fn upstream_seed_when_present() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/wazo-benchmark/cel_seed.csv");
    if !seed.exists() {
        eprintln!("skipped: {} is absent", seed.display());
        return;
    }
    let rows = read_file(&seed);
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .any(|c| c.eventtype == EventType::User("XIVO_INCALL".into())));
    assert!(rows.iter().any(|c| c.eventtype == EventType::LinkedidEnd));
    assert!(rows.iter().any(|c| c.cid_name == "Alexandre Fournier"));
}

#[test]
fn a_cel_sqlite3_custom_database_reads_like_the_csv() {
    let csv = read_file(&fixtures().join("24-sip-hold/cel.csv"));
    let tmp = tempfile::NamedTempFile::new().unwrap();
    {
        let conn = rusqlite::Connection::open(tmp.path()).unwrap();
        // The sample columns of cel_sqlite3_custom.conf, plus linkedid, peeraccount, tenantid.
        conn.execute_batch(
            "CREATE TABLE cel (id INTEGER PRIMARY KEY AUTOINCREMENT, eventtype TEXT, eventtime TEXT, cidname TEXT, \
             cidnum TEXT, cidani TEXT, cidrdnis TEXT, ciddnid TEXT, context TEXT, exten TEXT, channame TEXT, \
             appname TEXT, appdata TEXT, amaflags TEXT, accountcode TEXT, uniqueid TEXT, userfield TEXT, peer TEXT, \
             userdeftype TEXT, eventextra TEXT, linkedid TEXT, peeracct TEXT, tenantid TEXT)",
        )
        .unwrap();
        for c in &csv {
            conn.execute(
                "INSERT INTO cel (eventtype, eventtime, cidname, cidnum, cidani, cidrdnis, ciddnid, context, exten, \
                 channame, appname, appdata, amaflags, accountcode, uniqueid, userfield, peer, userdeftype, \
                 eventextra, linkedid, peeracct, tenantid) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rusqlite::params![
                    c.eventtype.as_str(),
                    c.eventtime.to_string().replace('T', " "),
                    c.cid_name,
                    c.cid_num,
                    c.cid_ani,
                    c.cid_rdnis,
                    c.cid_dnid,
                    c.context,
                    c.exten,
                    c.channame,
                    c.appname,
                    c.appdata,
                    "DOCUMENTATION",
                    c.accountcode,
                    c.uniqueid,
                    c.userfield,
                    c.peer,
                    c.userdeftype,
                    c.extra,
                    c.linkedid,
                    c.peeraccount,
                    c.tenantid
                ],
            )
            .unwrap();
        }
    }
    let rows: Vec<Cel> = SqliteReader::open(tmp.path()).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows, csv);
}

#[test]
fn storing_every_scenario_twice_keeps_one_copy() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(include_str!("../../src/cel/sql/001_cel.sql"))
        .unwrap();
    let mut all = Vec::new();
    for dir in scenarios() {
        all.extend(read_file(&find(&dir, "cel.csv")));
    }
    let inserted = store::insert_batch(&conn, &all).unwrap();
    assert_eq!(inserted, all.len(), "the recordings have no duplicate rows");
    assert_eq!(store::insert_batch(&conn, &all).unwrap(), 0);
    // The JSON lines are the same rows.
    let jsonl = read_file(&fixtures().join("25-sip-inbound-did/cel.jsonl"));
    assert_eq!(store::insert_batch(&conn, &jsonl).unwrap(), 0);
    assert_eq!(store::count(&conn).unwrap(), all.len() as i64);
    let call = &jsonl[0].linkedid;
    let stored = store::by_linkedids(&conn, &[call]).unwrap();
    assert_eq!(stored.len(), jsonl.iter().filter(|c| &c.linkedid == call).count());
    assert_eq!(stored.last().unwrap().cel.eventtype, EventType::LinkedidEnd);
}
