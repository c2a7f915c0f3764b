//! The embedded SQLite store.
//!
//! SQLite allows one writer at a time, so every write goes through one
//! dedicated writer thread that owns the write connection and runs each job in
//! its own transaction; reads run on `spawn_blocking` with connections from a
//! small pool. Neither ever blocks a tokio worker thread.

mod migrations;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, Transaction};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("the store is closed")]
    Closed,
    #[error("store task failed: {0}")]
    Join(String),
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: mpsc::UnboundedSender<Job>,
    readers: Mutex<Vec<Connection>>,
    /// Committed write transactions so far: a cache of derived data compares it to know
    /// whether anything may have changed since it was built.
    commits: Arc<AtomicU64>,
}

/// Readers kept open between requests; more are opened on demand under load
/// and closed again when the pool is full.
const MAX_IDLE_READERS: usize = 8;

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // WAL lets readers run while the writer commits; busy_timeout covers the
    // short moments where SQLite still needs a lock (checkpoints).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database file, applies pending
    /// migrations and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        migrations::apply(&mut conn)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let commits = Arc::new(AtomicU64::new(0));
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    job(&mut conn);
                }
                tracing::debug!("sqlite writer stopped");
            })
            .map_err(|e| StoreError::Join(e.to_string()))?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: tx,
                readers: Mutex::new(Vec::new()),
                commits,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many write transactions committed so far. It is bumped before the writer's caller
    /// is answered, so a value read after a write returned includes that write.
    pub fn generation(&self) -> u64 {
        self.inner.commits.load(Ordering::Acquire)
    }

    /// Runs `f` in one transaction on the writer thread; commits when it
    /// returns `Ok`, rolls back otherwise.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let commits = self.inner.commits.clone();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let result = match conn.transaction() {
                Ok(tx) => match f(&tx) {
                    Ok(value) => tx
                        .commit()
                        .map(|_| {
                            commits.fetch_add(1, Ordering::AcqRel);
                            value
                        })
                        .map_err(|e| E::from(e.into())),
                    Err(e) => Err(e), // dropping `tx` rolls back
                },
                Err(e) => Err(E::from(e.into())),
            };
            let _ = reply_tx.send(result);
        });
        self.inner.writer.send(job).map_err(|_| E::from(StoreError::Closed))?;
        reply_rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `f` with a read connection on the blocking pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.take_reader().map_err(E::from)?;
            let result = f(&conn);
            inner.give_back(conn);
            result
        })
        .await
        .map_err(|e| E::from(StoreError::Join(e.to_string())))?
    }
}

impl Inner {
    fn take_reader(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.readers.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut pool) = self.readers.lock() {
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_commits_and_rolls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.sqlite")).expect("open");
        let before = store.generation();
        store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("INSERT INTO accentd_meta (key, value) VALUES ('a', '1')", [])?;
                Ok(())
            })
            .await
            .expect("write");
        assert_eq!(store.generation(), before + 1, "a commit is counted");
        let failed: Result<(), StoreError> = store
            .write(|tx| {
                tx.execute("INSERT INTO accentd_meta (key, value) VALUES ('b', '2')", [])?;
                Err(StoreError::Closed)
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(store.generation(), before + 1, "a rollback is not");
        let keys: Vec<String> = store
            .read(|conn| -> Result<Vec<String>, StoreError> {
                let mut stmt = conn.prepare("SELECT key FROM accentd_meta ORDER BY key")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .expect("read");
        assert_eq!(keys, vec!["a".to_string()]);
    }

    #[tokio::test]
    async fn wal_and_foreign_keys_are_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.sqlite")).expect("open");
        let (mode, fk): (String, i64) = store
            .read(|conn| -> Result<_, StoreError> {
                let mode = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let fk = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                Ok((mode, fk))
            })
            .await
            .expect("read");
        assert_eq!(mode.to_lowercase(), "wal");
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_schema_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite");
        {
            let store = Store::open(&path).expect("open");
            store
                .write(|tx| -> Result<(), StoreError> {
                    tx.execute("INSERT INTO accentd_meta (key, value) VALUES ('k', 'v')", [])?;
                    Ok(())
                })
                .await
                .expect("write");
        }
        let store = Store::open(&path).expect("reopen");
        let v: String = store
            .read(|c| -> Result<String, StoreError> {
                Ok(c.query_row("SELECT value FROM accentd_meta WHERE key='k'", [], |r| r.get(0))?)
            })
            .await
            .expect("read");
        assert_eq!(v, "v");
    }
}
