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
    command(data, args).output().expect("run accentd")
}

fn command(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("ACCENTD_DATA_DIR", data)
        .env("ACCENTD_ADMIN_PASSWORD", "cli-Admin-pw-1")
        // Cheap hashing: the command hashes the bootstrap admin password on a fresh dir.
        .env("ACCENTD_AUTH_ARGON2_M_COST", "64")
        .env("ACCENTD_AUTH_ARGON2_T_COST", "1")
        .env("ACCENTD_LOG_LEVEL", "warn");
    cmd
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

#[test]
fn delete_removes_the_recording_files_of_the_deleted_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let recordings = dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).expect("mkdir");
    let csv = fixture("01", "cel.csv");
    let out = run(
        &data,
        &["call-logs", "generate", "--cel-csv", csv.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A recording of the stored call, its file inside the recordings directory; and one
    // whose path points outside it, which must be left alone.
    let inside = recordings.join("call.wav");
    let outside = dir.path().join("elsewhere.wav");
    std::fs::write(&inside, b"RIFF").expect("write");
    std::fs::write(&outside, b"RIFF").expect("write");
    let conn = rusqlite::Connection::open(data.join("accentd.sqlite")).expect("db");
    let id: i64 = conn
        .query_row("SELECT id FROM call_log LIMIT 1", [], |r| r.get(0))
        .expect("a call log");
    for (uuid, path) in [
        ("8c0c2a5e-7f4b-4e57-9d55-2f1f8f1b0001", &inside),
        ("8c0c2a5e-7f4b-4e57-9d55-2f1f8f1b0002", &outside),
    ] {
        conn.execute(
            "INSERT INTO call_log_recording (uuid, call_log_id, start_us, end_us, path) VALUES (?, ?, 0, 1, ?)",
            rusqlite::params![uuid, id, path.to_str().expect("path")],
        )
        .expect("insert recording");
    }
    drop(conn);

    let del = command(&data, &["call-logs", "delete", "--all"])
        .env("ACCENTD_CALL_LOGS_RECORDINGS_DIR", &recordings)
        .output()
        .expect("run accentd");
    assert!(del.status.success(), "{}", stderr(&del));
    assert!(stdout(&del).contains("1 recording files"), "{}", stdout(&del));
    assert!(!inside.exists(), "the deleted call's recording file is removed");
    assert!(
        outside.exists(),
        "a path outside the recordings directory is never touched"
    );
    assert_eq!(stored_logs(&data), 0);
}
