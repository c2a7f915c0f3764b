//! The catch-up: `accentd call-logs generate|delete`, and the daily run inside `serve`.
//!
//! Generation works on linkedids in chunks, so a month of CELs never sits in memory at once,
//! and progress is shown per chunk (a bar on a terminal, log lines otherwise).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::CallLogService;
use crate::api::error::ApiError;
use crate::cel::read::sqlite::SqliteReader;
use crate::cel::{Cel, CelError, EventTime};

/// Linkedids generated per store round trip.
const CHUNK: usize = 500;
/// CEL rows stored per transaction when importing a file.
const IMPORT_CHUNK: usize = 10_000;
/// Problems quoted in the summary (all are counted, and logged).
const QUOTED_PROBLEMS: usize = 20;

/// Which CELs to generate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The stored CELs of the last N days.
    Days(u32),
    /// The calls of the N most recent stored CELs.
    Last(u32),
    /// A CEL file: cel_custom CSV or JSON lines, or a pipe-delimited dump (told apart by
    /// their first line); stored, then generated.
    CelFile(PathBuf),
    /// A cel_sqlite3_custom database.
    CelSqlite(PathBuf),
}

/// What a run did, printed by the command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub dry_run: bool,
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub rows_new: u64,
    pub calls: u64,
    pub logs: u64,
    pub incomplete: u64,
    pub failed: u64,
    /// The first problems (file and line, or the call's linkedid).
    pub problems: Vec<String>,
}

impl Summary {
    fn problem(&mut self, text: String) {
        tracing::warn!(problem = %text, "call-logs generate");
        if self.problems.len() < QUOTED_PROBLEMS {
            self.problems.push(text);
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rows_read > 0 || self.rows_rejected > 0 {
            writeln!(
                f,
                "CEL rows: {} read, {} rejected, {} new",
                self.rows_read, self.rows_rejected, self.rows_new
            )?;
        }
        writeln!(
            f,
            "calls: {} looked at, {} call logs {}, {} not finished yet, {} failed",
            self.calls,
            self.logs,
            if self.dry_run {
                "would be written (dry run)"
            } else {
                "written"
            },
            self.incomplete,
            self.failed
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        let hidden = (self.rows_rejected + self.failed).saturating_sub(self.problems.len() as u64);
        if hidden > 0 {
            writeln!(f, "  … and {hidden} more (see the log)")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Cel(#[from] CelError),
    #[error("{0}")]
    Store(#[from] ApiError),
}

fn bar(len: Option<u64>, what: &'static str) -> ProgressBar {
    // Hidden when stderr is not a terminal (cron, CI): the log lines then tell the progress.
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})"
    } else {
        "{msg} {pos} ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

fn now() -> EventTime {
    EventTime::from_micros((crate::time::now_epoch() * 1_000_000.0) as i64)
}

fn days_ago(days: u32) -> EventTime {
    EventTime::from_micros(now().micros().saturating_sub(i64::from(days) * 86_400 * 1_000_000))
}

/// Runs one generation.
pub async fn generate(svc: &CallLogService, source: Source, dry_run: bool) -> Result<Summary, BatchError> {
    let mut summary = Summary {
        dry_run,
        ..Summary::default()
    };
    let linkedids = match source {
        Source::Days(days) => {
            let since = days_ago(days);
            svc.store
                .read(move |conn| Ok::<_, ApiError>(crate::cel::store::linkedids_since(conn, since)?))
                .await?
        }
        Source::Last(n) => {
            svc.store
                .read(move |conn| Ok::<_, ApiError>(crate::cel::store::linkedids_of_last(conn, n)?))
                .await?
        }
        Source::CelFile(path) => {
            let rows = crate::cel::read::open_file(&path)?;
            import(svc, rows, dry_run, &mut summary).await?
        }
        Source::CelSqlite(path) => {
            let reader = SqliteReader::open(&path)?;
            let missing = reader.missing_columns();
            if !missing.is_empty() {
                summary.problem(format!("{}: no column {}", path.display(), missing.join(", ")));
            }
            import(svc, reader, dry_run, &mut summary).await?
        }
    };
    generate_linkedids(svc, linkedids, dry_run, &mut summary).await?;
    Ok(summary)
}

/// Reads a CEL source, stores its rows (unless `dry_run`), and returns its linkedids. In a dry
/// run the rows are kept in memory and generated from there (`svc.generate_rows`).
async fn import(
    svc: &CallLogService,
    rows: impl Iterator<Item = Result<Cel, CelError>>,
    dry_run: bool,
    summary: &mut Summary,
) -> Result<Vec<String>, BatchError> {
    let progress = bar(None, "reading CEL rows");
    let mut chunk: Vec<Cel> = Vec::with_capacity(IMPORT_CHUNK);
    let mut kept: Vec<Cel> = Vec::new();
    let mut linkedids = std::collections::BTreeSet::new();
    for row in rows {
        match row {
            Ok(cel) => {
                summary.rows_read += 1;
                if !cel.linkedid.is_empty() {
                    linkedids.insert(cel.linkedid.clone());
                }
                chunk.push(cel);
            }
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                summary.rows_rejected += 1;
                summary.problem(e.to_string());
            }
        }
        if chunk.len() >= IMPORT_CHUNK {
            progress.set_position(summary.rows_read);
            store_chunk(svc, &mut chunk, &mut kept, dry_run, summary).await?;
        }
    }
    store_chunk(svc, &mut chunk, &mut kept, dry_run, summary).await?;
    progress.finish_and_clear();
    tracing::info!(
        rows = summary.rows_read,
        rejected = summary.rows_rejected,
        "CEL rows read"
    );
    if dry_run {
        let outcome = svc.generate_rows(kept).await?;
        summary.calls = (outcome.logs.len() + outcome.failed.len() + outcome.incomplete) as u64;
        summary.logs = outcome.logs.len() as u64;
        summary.incomplete = outcome.incomplete as u64;
        summary.failed = outcome.failed.len() as u64;
        for (linkedid, e) in outcome.failed {
            summary.problem(format!("call {linkedid}: {e}"));
        }
        return Ok(Vec::new());
    }
    Ok(linkedids.into_iter().collect())
}

async fn store_chunk(
    svc: &CallLogService,
    chunk: &mut Vec<Cel>,
    kept: &mut Vec<Cel>,
    dry_run: bool,
    summary: &mut Summary,
) -> Result<(), BatchError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let rows = std::mem::take(chunk);
    if dry_run {
        kept.extend(rows);
    } else {
        summary.rows_new += svc.store_cels(rows).await? as u64;
    }
    Ok(())
}

/// Generates (or previews) the calls of `linkedids` in chunks, with progress.
async fn generate_linkedids(
    svc: &CallLogService,
    linkedids: Vec<String>,
    dry_run: bool,
    summary: &mut Summary,
) -> Result<(), BatchError> {
    if linkedids.is_empty() {
        return Ok(());
    }
    let total = linkedids.len();
    let progress = bar(Some(total as u64), "generating call logs");
    for (i, chunk) in linkedids.chunks(CHUNK).enumerate() {
        let outcome = if dry_run {
            svc.preview_linkedids(chunk.to_vec()).await?
        } else {
            svc.generate_linkedids(chunk.to_vec(), false).await?
        };
        summary.calls += chunk.len() as u64;
        summary.logs += outcome.logs.len() as u64;
        summary.incomplete += outcome.incomplete as u64;
        summary.failed += outcome.failed.len() as u64;
        for (linkedid, e) in outcome.failed {
            summary.problem(format!("call {linkedid}: {e}"));
        }
        progress.inc(chunk.len() as u64);
        let done = (i * CHUNK + chunk.len()).min(total);
        tracing::info!(done, total, logs = summary.logs, "generating call logs");
    }
    progress.finish_and_clear();
    Ok(())
}

/// `accentd call-logs delete`: call logs (and their CELs) older than `days`, or all of them.
/// Their recording files go first (a log without its file is better than an orphan file
/// nobody can find any more). Returns what was deleted.
pub async fn delete(svc: &CallLogService, days: Option<u32>) -> Result<Deleted, BatchError> {
    let cutoff = days.map(days_ago);
    let recordings = svc
        .purge_recordings_before(cutoff.map_or(i64::MAX, EventTime::micros))
        .await?;
    let counts = svc
        .store
        .write(move |tx| {
            let logs = super::cdr::store::delete_before(tx, cutoff.map(EventTime::micros))?;
            let cels = match cutoff {
                Some(t) => crate::cel::store::delete_before(tx, t)?,
                None => crate::cel::store::delete_all(tx)?,
            };
            Ok::<_, ApiError>((logs, cels))
        })
        .await?;
    Ok(Deleted {
        call_logs: counts.0,
        cels: counts.1,
        recordings,
    })
}

/// What `accentd call-logs delete` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub call_logs: usize,
    pub cels: usize,
    pub recordings: usize,
}

/// How long until the next `hh:mm` local time.
fn until_next(hour: u8, minute: u8) -> Duration {
    let offset = crate::time::local_offset();
    let now = time::OffsetDateTime::now_utc().to_offset(offset);
    let Ok(at) = time::Time::from_hms(hour, minute, 0) else {
        return Duration::from_secs(86_400);
    };
    let mut next = now.replace_time(at);
    if next <= now {
        next += time::Duration::days(1);
    }
    Duration::try_from(next - now).unwrap_or(Duration::from_secs(86_400))
}

/// The daily run inside `serve`: generation of the last `generate_days` days (what the live
/// path missed), then the retention purge (each tenant's `/retention`, else the config's).
pub fn spawn_daily(svc: Arc<CallLogService>, shutdown: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let config = svc.config.clone();
    let (hour, minute) = config.generate_time()?;
    Some(tokio::spawn(async move {
        loop {
            let wait = until_next(hour, minute);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            run_daily(&svc, &config).await;
        }
    }))
}

/// One daily run; errors are logged (the next day tries again).
pub async fn run_daily(svc: &CallLogService, config: &crate::config::CallLogsConfig) {
    match generate(svc, Source::Days(config.generate_days.max(1)), false).await {
        Ok(summary) => tracing::info!(
            logs = summary.logs,
            failed = summary.failed,
            "daily call-log generation"
        ),
        Err(e) => tracing::error!(error = %e, "daily call-log generation failed"),
    }
    let now = (crate::time::now_epoch() * 1_000_000.0) as i64;
    match svc.purge(config, now).await {
        Ok(s) => tracing::info!(
            logs = s.call_logs,
            cels = s.cels,
            recordings = s.recordings,
            exports = s.exports,
            "call-log retention"
        ),
        Err(e) => tracing::error!(error = %e, "call-log retention failed"),
    }
}
