//! Errors of the CEL readers: always naming the source (file name, `AMI`) and, for a row, its
//! line (CSV, JSON lines) or rowid (SQLite), so that a summary can point at the bad input.

use std::fmt;
use std::sync::Arc;

use super::eventtime::TimeError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {problem}", AtLine(*line))]
pub struct CelError {
    /// The file (as given), or `AMI`.
    pub source_name: Arc<str>,
    /// 1-based line of a text file, rowid of a database row; `None` for the whole source.
    pub line: Option<u64>,
    pub problem: Problem,
}

struct AtLine(Option<u64>);

impl fmt::Display for AtLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " line {line}"),
            None => Ok(()),
        }
    }
}

impl CelError {
    pub(crate) fn new(source_name: &Arc<str>, line: Option<u64>, problem: Problem) -> Self {
        CelError {
            source_name: source_name.clone(),
            line,
            problem,
        }
    }

    /// True when the whole source was refused (not only one row).
    pub fn is_fatal(&self) -> bool {
        matches!(self.problem, Problem::NotCel(_) | Problem::Io(_) | Problem::Database(_))
    }
}

/// What was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a CEL file: {0}")]
    NotCel(String),
    #[error("expected {expected} columns, found {found}")]
    ColumnCount { expected: usize, found: usize },
    #[error("no {0}")]
    Missing(&'static str),
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error("unreadable CSV: {0}")]
    Csv(String),
    #[error("not a JSON object: {0}")]
    Json(String),
    #[error("read failed: {0}")]
    Io(String),
    #[error("database: {0}")]
    Database(String),
}
