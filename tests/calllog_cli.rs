//! `accentd call-logs generate|delete`, the real binary on a temporary data dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_accentd");

fn fixture(scenario: &str, file: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures");
    let name = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("{scenario}-")))
        .expect("scenario");
    dir.join(name).join(file)
}

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ACCENTD_DATA_DIR", data)
        .env("ACCENTD_ADMIN_PASSWORD", "cli-Admin-pw-1")
        // Cheap hashing: the command hashes the bootstrap admin password on a fresh dir.
        .env("ACCENTD_AUTH_ARGON2_M_COST", "64")
        .env("ACCENTD_AUTH_ARGON2_T_COST", "1")
        .env("ACCENTD_LOG_LEVEL", "warn")
        .output()
        .expect("run accentd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stored_logs(data: &Path) -> i64 {
    let conn = rusqlite::Connection::open(data.join("accentd.sqlite")).expect("db");
    conn.query_row("SELECT COUNT(*) FROM call_log", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn generate_from_a_cel_file_then_again_from_the_table_then_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let csv = fixture("07", "cel.csv");
    let csv = csv.to_str().expect("path");

    let dry = run(data, &["call-logs", "generate", "--cel-csv", csv, "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("would be written (dry run)"), "{}", stdout(&dry));
    assert_eq!(stored_logs(data), 0, "a dry run writes nothing");

    let out = run(data, &["call-logs", "generate", "--cel-csv", csv]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("0 rejected"), "{text}");
    let written = stored_logs(data);
    assert!(written >= 1, "{text}");
    assert!(text.contains(&format!("{written} call logs written")), "{text}");

    // The same file again: nothing new, the logs replaced, not duplicated.
    let again = run(data, &["call-logs", "generate", "--cel-csv", csv]);
    assert!(stdout(&again).contains(" 0 new"), "{}", stdout(&again));
    assert_eq!(stored_logs(data), written);
    // From the stored CELs.
    let table = run(data, &["call-logs", "generate", "--last", "100000"]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert_eq!(stored_logs(data), written);

    let del = run(data, &["call-logs", "delete", "--all"]);
    assert!(del.status.success(), "{}", stderr(&del));
    assert!(
        stdout(&del).contains(&format!("deleted {written} call logs")),
        "{}",
        stdout(&del)
    );
    assert_eq!(stored_logs(data), 0);
}

#[test]
fn json_lines_and_our_dump_format_are_read_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jsonl = fixture("01", "cel.jsonl");
    let out = run(
        dir.path(),
        &["call-logs", "generate", "--cel-csv", jsonl.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 call logs written"), "{}", stdout(&out));
    let dump = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cel-fixtures/inbound-dump.csv");
    let out = run(
        dir.path(),
        &["call-logs", "generate", "--cel-csv", dump.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 call logs written"), "{}", stdout(&out));
}

#[test]
fn bad_files_and_bad_rows_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_cel = dir.path().join("notes.txt");
    std::fs::write(&not_cel, "hello\nthis is not a CEL file\n").expect("write");
    let out = run(
        dir.path(),
        &["call-logs", "generate", "--cel-csv", not_cel.to_str().expect("path")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("notes.txt"), "{}", stderr(&out));

    let missing = run(
        dir.path(),
        &["call-logs", "generate", "--cel-csv", "/nonexistent/cel.csv"],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("/nonexistent/cel.csv"),
        "{}",
        stderr(&missing)
    );

    // A good file with a broken row in the middle: the row is counted and named, the call
    // still generated.
    let good = std::fs::read_to_string(fixture("01", "cel.csv")).expect("read");
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(3, "\"CHAN_START\",\"yesterday\",\"\"");
    let broken = dir.path().join("broken.csv");
    std::fs::write(&broken, lines.join("\n")).expect("write");
    let out = run(
        dir.path(),
        &["call-logs", "generate", "--cel-csv", broken.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 rejected"), "{text}");
    assert!(text.contains("broken.csv") && text.contains("line 4"), "{text}");
    assert!(text.contains("1 call logs written"), "{text}");

    // `delete` needs to be told what.
    let out = run(dir.path(), &["call-logs", "delete"]);
    assert_eq!(out.status.code(), Some(2));
}
