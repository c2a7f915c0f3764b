//! Reading the recorded ARI traffic in `tests/asterisk-fixtures/<scenario>/`
//! (copied from the recordings of a real Asterisk 22.10.1). Large files are
//! gzip-compressed (`*.gz`), as in the shared fixtures.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// The folder holding one sub-folder per recorded scenario.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures")
}

/// Every scenario folder, sorted by name.
pub fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/asterisk-fixtures exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The lines of `<scenario>/<name>` or, failing that, of `<name>.gz`;
/// `None` if neither exists.
pub fn read_lines(scenario: &Path, name: &str) -> Option<Vec<String>> {
    let plain = scenario.join(name);
    let text = if plain.exists() {
        std::fs::read_to_string(&plain).expect("read fixture")
    } else {
        let gz = scenario.join(format!("{name}.gz"));
        if !gz.exists() {
            return None;
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("open fixture"))
            .read_to_string(&mut text)
            .expect("gunzip fixture");
        text
    };
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The scenario's folder name, for messages.
pub fn name(scenario: &Path) -> String {
    scenario
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The paths where two JSON values differ (`$.channel.id`…), to say what a
/// round trip lost or invented.
pub fn json_diff(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => json_diff(&format!("{path}.{k}"), va, vb, out),
                    None => out.push(format!("{path}.{k} lost")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k} added"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} != {b}")),
    }
}
