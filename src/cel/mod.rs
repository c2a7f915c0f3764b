//! CEL (Channel Event Logging): the rows Asterisk writes as a call happens, from which
//! call-logd builds call logs.
//!
//! - [`record`]: [`Cel`], one row, and [`EventType`] (user events read the same from every source);
//! - [`eventtime`]: [`EventTime`], microseconds UTC, parsed from every time format we meet;
//! - [`extra`]: the `extra` column read leniently (JSON, `KEY: value` pairs, broken JSON);
//! - [`read`]: one reader per source (AMI, cel_custom CSV and JSON lines, cel_sqlite3_custom,
//!   pipe-delimited SQL dumps), each yielding `Result<Cel, CelError>` per row;
//! - [`store`]: the `cel` table (`sql/001_cel.sql`): batch insert without duplicates, rows by
//!   call, by channel, by time, retention.

pub mod error;
pub mod eventtime;
pub mod extra;
pub mod generate;
pub mod read;
pub mod record;
pub mod store;

pub use error::{CelError, Problem};
pub use eventtime::{EventTime, TimeError};
pub use extra::Extra;
pub use read::{detect, open_file, CelRows, CsvKind};
pub use record::{Cel, EventType};
