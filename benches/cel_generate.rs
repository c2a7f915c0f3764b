//! Batch call-log generation throughput (issue 4: goal >= 200,000 CEL rows/s), on a corpus made
//! as upstream's benchmark does: the recorded scenarios' CEL rows replicated under new
//! linkedids and uniqueids. Run with:
//!
//!     cargo bench --bench cel_generate [-- --rows 200000 --rounds 3]
//!
//! Two numbers in the same run, so that the machine's speed cancels out:
//!
//! * "group only": [`group`] alone (sorting rows into calls, the least any generator does);
//! * "generate": grouping plus every interpreter and participant resolution
//!   ([`generate_all`]), the batch path's real cost.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;
use support::arg;

use accentd::cel::generate::{generate_all, group, LineOwner, StaticContexts, StaticLines};
use accentd::cel::{open_file, Cel};
use uuid::Uuid;

/// The goal of issue 4, in CEL rows per second.
const GOAL_ROWS_PER_SEC: f64 = 200_000.0;

/// Every scenario's `cel.csv` (plain or gzip).
fn recorded() -> anyhow::Result<Vec<Vec<Cel>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let path = [dir.join("cel.csv"), dir.join("cel.csv.gz")]
            .into_iter()
            .find(|p| p.exists());
        if let Some(path) = path {
            let rows: Result<Vec<Cel>, _> = open_file(&path)?.collect();
            out.push(rows?);
        }
    }
    Ok(out)
}

/// Copies of the recorded rows, copy `n` with `-n` appended to every id, until `target` rows.
fn corpus(recorded: &[Vec<Cel>], target: usize) -> Vec<Cel> {
    let mut out = Vec::with_capacity(target + 10_000);
    let mut n = 0usize;
    while out.len() < target {
        for rows in recorded {
            for c in rows {
                let mut c = c.clone();
                c.uniqueid = format!("{}-{n}", c.uniqueid);
                c.linkedid = format!("{}-{n}", c.linkedid);
                out.push(c);
            }
        }
        n += 1;
    }
    out
}

fn lines() -> StaticLines {
    let mut lines = StaticLines::new();
    for i in 1..=3 {
        lines = lines.with(
            &format!("pjsip/200{i}"),
            LineOwner {
                line_id: i,
                user_uuid: Uuid::from_u128(0x2000 + i as u128),
                tenant_uuid: Uuid::from_u128(1),
                tags: Vec::new(),
                user_name: format!("user {i}"),
                exten: Some(format!("200{i}")),
                context: Some("default".into()),
            },
        );
    }
    lines
}

fn main() -> anyhow::Result<()> {
    let target = arg("--rows", 200_000);
    let rounds = arg("--rounds", 3).max(1);
    let rows = corpus(&recorded()?, target);
    let lines = lines();
    println!("corpus: {} CEL rows", rows.len());
    let mut best_group = f64::MAX;
    let mut best_generate = f64::MAX;
    let mut logs = 0;
    for _ in 0..rounds {
        let input = rows.clone();
        let t = Instant::now();
        black_box(group(black_box(input)));
        best_group = best_group.min(t.elapsed().as_secs_f64());

        let input = rows.clone();
        let t = Instant::now();
        let out = generate_all(black_box(input), &lines, &StaticContexts::new(), Uuid::nil());
        best_generate = best_generate.min(t.elapsed().as_secs_f64());
        logs = out.logs.len();
        black_box(out);
    }
    let per_sec = |secs: f64| rows.len() as f64 / secs;
    println!("group only: {:>12.0} rows/s", per_sec(best_group));
    println!(
        "generate:   {:>12.0} rows/s ({logs} call logs; {:.2}x the time of grouping alone)",
        per_sec(best_generate),
        best_generate / best_group
    );
    println!(
        "goal {:.0} rows/s: {}",
        GOAL_ROWS_PER_SEC,
        if per_sec(best_generate) >= GOAL_ROWS_PER_SEC {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
