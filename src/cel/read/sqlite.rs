//! cel_sqlite3_custom's database: a SQLite file with a `cel` table whose columns are whatever
//! `cel_sqlite3_custom.conf` listed. Asterisk's sample lists
//! `eventtype, eventtime, cidname, cidnum, cidani, cidrdnis, ciddnid, context, exten, channame,
//! appname, appdata, amaflags, accountcode, uniqueid, userfield, peer, userdeftype, eventextra`
//! (no `linkedid`: [`SqliteReader::missing_columns`] says so); columns are matched by name, so
//! our own names and upstream's work too.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{Field, Layout, RawRow};
use crate::cel::error::{CelError, Problem};
use crate::cel::eventtime::EventTime;
use crate::cel::record::Cel;

/// Rows fetched per query: the reader holds no statement between batches (so it owns its
/// connection without borrowing from itself) and memory stays bounded on large files.
const BATCH: i64 = 1000;

pub struct SqliteReader {
    conn: Connection,
    name: Arc<str>,
    table: String,
    layout: Layout,
    last_rowid: i64,
    pending: VecDeque<Result<Cel, CelError>>,
    done: bool,
}

impl SqliteReader {
    /// Opens `path` read-only and checks it has a `cel` table.
    pub fn open(path: &Path) -> Result<Self, CelError> {
        Self::open_table(path, "cel")
    }

    /// The same with another table name (`table =` of cel_sqlite3_custom.conf).
    pub fn open_table(path: &Path, table: &str) -> Result<Self, CelError> {
        let name: Arc<str> = Arc::from(path.display().to_string());
        let not_cel = |why: String| CelError::new(&name, None, Problem::NotCel(why));
        if table.is_empty() || !table.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(not_cel(format!("`{table}` is not a table name")));
        }
        if !path.is_file() {
            return Err(CelError::new(&name, None, Problem::Io("no such file".into())));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| not_cel(e.to_string()))?;
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .and_then(|mut stmt| stmt.query_map([table], |r| r.get(0))?.collect())
            .map_err(|e| not_cel(format!("not a SQLite database ({e})")))?;
        if columns.is_empty() {
            return Err(not_cel(format!("no table `{table}`")));
        }
        let layout = Layout::from_names(columns.iter().map(String::as_str));
        if !layout.is_cel() {
            return Err(not_cel(format!("table `{table}` has {}", layout.refusal())));
        }
        Ok(SqliteReader {
            conn,
            name,
            table: table.to_owned(),
            layout,
            last_rowid: i64::MIN,
            pending: VecDeque::new(),
            done: false,
        })
    }

    /// Columns a call-log generator needs that this table lacks.
    pub fn missing_columns(&self) -> Vec<&'static str> {
        self.layout.missing()
    }

    fn fetch(&mut self) -> Result<usize, rusqlite::Error> {
        let sql = format!(
            "SELECT rowid, * FROM \"{}\" WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            self.table
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params![self.last_rowid, BATCH])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            count += 1;
            let rowid: i64 = row.get(0)?;
            self.last_rowid = rowid;
            let mut raw = RawRow::default();
            for (i, field) in self.layout.fields() {
                set(&mut raw, field, row.get_ref(i + 1)?);
            }
            let cel = raw
                .into_cel()
                .map_err(|p| CelError::new(&self.name, Some(rowid as u64), p));
            self.pending.push_back(cel);
        }
        Ok(count)
    }
}

fn set(raw: &mut RawRow, field: Field, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => {}
        ValueRef::Integer(i) if field == Field::EventTime => match i.checked_mul(1_000_000) {
            Some(micros) => raw.set_time(EventTime::from_micros(micros)),
            None => raw.set(field, &i.to_string()),
        },
        ValueRef::Real(f) if field == Field::EventTime => match EventTime::from_epoch_f64(f) {
            Some(t) => raw.set_time(t),
            None => raw.set(field, &f.to_string()),
        },
        ValueRef::Integer(i) => raw.set(field, &i.to_string()),
        ValueRef::Real(f) => raw.set(field, &f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => raw.set(field, &String::from_utf8_lossy(t)),
    }
}

impl Iterator for SqliteReader {
    type Item = Result<Cel, CelError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(row) = self.pending.pop_front() {
            return Some(row);
        }
        if self.done {
            return None;
        }
        match self.fetch() {
            Ok(n) if (n as i64) < BATCH => self.done = true,
            Ok(_) => {}
            Err(err) => {
                self.done = true;
                return Some(Err(CelError::new(&self.name, None, Problem::Database(err.to_string()))));
            }
        }
        self.pending.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::record::EventType;

    /// The sample columns of cel_sqlite3_custom.conf, plus linkedid (which a call log needs).
    const SAMPLE: &str = "CREATE TABLE cel (id INTEGER PRIMARY KEY AUTOINCREMENT, eventtype TEXT, eventtime TEXT, \
        cidname TEXT, cidnum TEXT, cidani TEXT, cidrdnis TEXT, ciddnid TEXT, context TEXT, exten TEXT, channame TEXT, \
        appname TEXT, appdata TEXT, amaflags TEXT, accountcode TEXT, uniqueid TEXT, userfield TEXT, peer TEXT, \
        userdeftype TEXT, eventextra TEXT, linkedid TEXT)";

    fn db(rows: &[&str]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let conn = Connection::open(file.path()).unwrap();
        conn.execute_batch(SAMPLE).unwrap();
        for row in rows {
            conn.execute_batch(&format!("INSERT INTO cel (eventtype, eventtime, cidname, channame, uniqueid, linkedid, userdeftype, eventextra, amaflags) VALUES ({row})")).unwrap();
        }
        file
    }

    #[test]
    fn reads_rows_in_rowid_order_with_any_time_form() {
        let file = db(&[
            "'CHAN_START', '2026-11-28 14:08:14', 'Alice', 'PJSIP/2001-00000001', '1.1', '1.1', '', '', 'DOCUMENTATION'",
            "'ACCENT_INCALL', 1795874894.5, 'Alice', 'PJSIP/2001-00000001', '1.1', '1.1', 'ACCENT_INCALL', '{\"extra\":\"t\"}', 3",
            "'HANGUP', 1795874895, NULL, NULL, '1.1', '1.1', NULL, NULL, NULL",
            "'HANGUP', 'later', NULL, NULL, '1.1', '1.1', NULL, NULL, NULL",
        ]);
        let reader = SqliteReader::open(file.path()).unwrap();
        assert!(reader.missing_columns().is_empty());
        let rows: Vec<_> = reader.collect();
        assert_eq!(rows.len(), 4);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.eventtime.micros(), 1_795_874_894_000_000);
        assert_eq!(first.cid_name, "Alice");
        assert_eq!(first.amaflags, 3);
        let user = rows[1].as_ref().unwrap();
        assert_eq!(user.eventtype, EventType::User("ACCENT_INCALL".into()));
        assert_eq!(user.eventtime.micros(), 1_795_874_894_500_000);
        assert_eq!(user.extra().user_text(), Some("t"));
        assert_eq!(rows[2].as_ref().unwrap().eventtime.micros(), 1_795_874_895_000_000);
        let err = rows[3].as_ref().unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(err.to_string().contains("line 4: bad event time `later`"), "{err}");
    }

    #[test]
    fn many_rows_cross_batches() {
        let file = db(&[]);
        let conn = Connection::open(file.path()).unwrap();
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) \
             INSERT INTO cel (eventtype, eventtime, uniqueid, linkedid) SELECT 'DTMF', 1700000000 + i, i, i FROM n",
        )
        .unwrap();
        let rows: Vec<Cel> = SqliteReader::open(file.path()).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2500);
        assert!(rows.windows(2).all(|w| w[0].eventtime < w[1].eventtime));
    }

    #[test]
    fn refuses_what_is_not_a_cel_database() {
        let text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(text.path(), "eventtype,eventtime\n").unwrap();
        let err = SqliteReader::open(text.path()).err().unwrap();
        assert!(
            err.to_string().contains("not a CEL file: not a SQLite database"),
            "{err}"
        );
        let other = tempfile::NamedTempFile::new().unwrap();
        Connection::open(other.path())
            .unwrap()
            .execute_batch("CREATE TABLE cdr (clid TEXT)")
            .unwrap();
        let err = SqliteReader::open(other.path()).err().unwrap();
        assert!(err.to_string().ends_with("not a CEL file: no table `cel`"), "{err}");
        let sample = tempfile::NamedTempFile::new().unwrap();
        Connection::open(sample.path())
            .unwrap()
            .execute_batch("CREATE TABLE cel (eventtype TEXT, eventtime TEXT, uniqueid TEXT)")
            .unwrap();
        assert_eq!(
            SqliteReader::open(sample.path()).unwrap().missing_columns(),
            vec!["linkedid", "channame"]
        );
        assert!(SqliteReader::open(Path::new("/nonexistent/cel.db")).is_err());
    }
}
