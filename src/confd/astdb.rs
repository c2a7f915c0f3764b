//! Live per-user settings (DND, call filter, forwards) reach Asterisk through
//! its database (AstDB), which the dialplan reads at call time
//! (`${DB(accent/users/<id>/dnd)}`), not through a reload: a user toggling
//! DND must not regenerate and re-read the dialplan.
//!
//! Writes are queued per `(family, key)` (only the latest value of a key is
//! kept) and sent over AMI (`DBPut`, `DBDel`, `DBDelTree`) by one worker
//! while the link is up; while it is down, or when Asterisk refuses, they
//! stay queued and are retried with backoff. The first AMI session of the
//! process also re-sends every user's state from the store (a fresh Asterisk
//! has an empty AstDB).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ami::{AmiClient, AmiError, AmiMessage};
use crate::api::error::ApiError;
use crate::store::Store;

/// The AstDB family of a confd user: `accent/users/<id>`.
pub fn user_family(user_id: i64) -> String {
    format!("accent/users/{user_id}")
}

/// One AstDB write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String),
    Del,
    /// The whole family (queued under the empty key, so it sorts before
    /// later writes of the same family).
    DelTree,
}

/// Reads the whole state to push on the first AMI session: `(family, key, value)`.
pub type Snapshot = fn(&Connection) -> Result<Vec<(String, String, String)>, ApiError>;

/// The handle services use; cheap to clone.
#[derive(Clone, Default)]
pub struct AstDb {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<BTreeMap<(String, String), Op>>,
    notify: Notify,
}

impl AstDb {
    pub fn new() -> AstDb {
        AstDb::default()
    }

    fn queue(&self, family: &str, key: &str, op: Op) {
        if let Ok(mut p) = self.inner.pending.lock() {
            if op == Op::DelTree {
                p.retain(|(f, _), _| f != family);
            }
            p.insert((family.to_string(), key.to_string()), op);
        }
        self.inner.notify.notify_one();
    }

    pub fn put(&self, family: &str, key: &str, value: impl Into<String>) {
        self.queue(family, key, Op::Put(value.into()));
    }

    pub fn del(&self, family: &str, key: &str) {
        self.queue(family, key, Op::Del);
    }

    pub fn del_tree(&self, family: &str) {
        self.queue(family, "", Op::DelTree);
    }

    /// Writes not sent yet, in sending order.
    pub fn pending(&self) -> Vec<(String, String, Op)> {
        self.inner
            .pending
            .lock()
            .map(|p| {
                p.iter()
                    .map(|((f, k), op)| (f.clone(), k.clone(), op.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn take(&self) -> Vec<((String, String), Op)> {
        self.inner
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_iter().collect())
            .unwrap_or_default()
    }

    /// Puts back writes that failed, unless a newer write of the same key
    /// was queued meanwhile.
    fn put_back(&self, ops: Vec<((String, String), Op)>) {
        if let Ok(mut p) = self.inner.pending.lock() {
            // What was queued while the batch was out is newer than all of it.
            let newer: std::collections::BTreeSet<(String, String)> = p.keys().cloned().collect();
            for (k, op) in ops {
                let superseded =
                    newer.contains(&k) || (op != Op::DelTree && newer.contains(&(k.0.clone(), String::new())));
                if !superseded {
                    p.insert(k, op);
                }
            }
        }
    }

    /// Runs the sender until `shutdown`.
    pub fn spawn(
        &self,
        ami: Option<AmiClient>,
        snapshot: Option<(Store, Snapshot)>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(ami) = ami else {
                // No Asterisk configured: writes stay queued (visible in `pending`).
                shutdown.cancelled().await;
                return;
            };
            let mut link = ami.link();
            let mut snapshot = snapshot;
            let (retry_min, retry_max) = (Duration::from_millis(200), Duration::from_secs(30));
            let mut backoff = retry_min;
            let mut failing = false;
            loop {
                if ami.is_connected() {
                    if let Some((store, read)) = snapshot.take() {
                        match store.read(read).await {
                            Ok(state) => {
                                for (family, key, value) in state {
                                    // Queued writes are newer than the store's
                                    // snapshot only if queued after it; the
                                    // snapshot never overrides a queued key.
                                    if let Ok(mut p) = this.inner.pending.lock() {
                                        p.entry((family, key)).or_insert(Op::Put(value));
                                    }
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "AstDB snapshot failed"),
                        }
                    }
                    let batch = this.take();
                    if !batch.is_empty() {
                        match send_all(&ami, batch).await {
                            Ok(()) => {
                                failing = false;
                                backoff = retry_min;
                            }
                            Err((rest, e)) => {
                                tracing::warn!(error = %e, left = rest.len(), "AstDB write failed; will retry");
                                this.put_back(rest);
                                failing = true;
                            }
                        }
                    }
                }
                let retry = failing && !this.pending().is_empty();
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = this.inner.notify.notified() => {}
                    changed = link.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(backoff), if retry => {
                        backoff = (backoff * 2).min(retry_max);
                    }
                }
            }
        })
    }
}

/// Sends the batch in order; on the first failure, returns what was not sent.
#[allow(clippy::type_complexity)]
async fn send_all(
    ami: &AmiClient,
    batch: Vec<((String, String), Op)>,
) -> Result<(), (Vec<((String, String), Op)>, AmiError)> {
    let mut iter = batch.into_iter();
    while let Some(((family, key), op)) = iter.next() {
        let action = match &op {
            Op::Put(v) => AmiMessage::new()
                .with("Action", "DBPut")
                .with("Family", family.as_str())
                .with("Key", key.as_str())
                .with("Val", v.as_str()),
            Op::Del => AmiMessage::new()
                .with("Action", "DBDel")
                .with("Family", family.as_str())
                .with("Key", key.as_str()),
            Op::DelTree => AmiMessage::new()
                .with("Action", "DBDelTree")
                .with("Family", family.as_str()),
        };
        match ami.send(action).await {
            Ok(_) => {}
            // Deleting what is not there is done.
            Err(AmiError::ActionFailed { message }) if matches!(op, Op::Del | Op::DelTree) && is_missing(&message) => {}
            Err(e) => {
                let mut rest = vec![((family, key), op)];
                rest.extend(iter);
                return Err((rest, e));
            }
        }
    }
    Ok(())
}

fn is_missing(message: &str) -> bool {
    message.to_ascii_lowercase().contains("not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_write_wins_and_tree_deletes_clear_the_family() {
        let db = AstDb::new();
        db.put("accent/users/1", "dnd", "1");
        db.put("accent/users/1", "dnd", "0");
        db.put("accent/users/2", "dnd", "1");
        assert_eq!(db.pending().len(), 2);
        assert_eq!(db.pending()[0].2, Op::Put("0".into()));
        db.del_tree("accent/users/1");
        db.put("accent/users/1", "dnd", "1");
        let p = db.pending();
        assert_eq!(p.len(), 3);
        // The tree delete goes out before the later write of the same family.
        assert_eq!((p[0].1.as_str(), &p[0].2), ("", &Op::DelTree));
        assert_eq!(p[1].2, Op::Put("1".into()));
        // A failed write does not override a newer one.
        let taken = db.take();
        db.put("accent/users/2", "dnd", "0");
        db.put_back(taken);
        let p = db.pending();
        assert_eq!(p.len(), 3);
        assert!(p.contains(&("accent/users/2".into(), "dnd".into(), Op::Put("0".into()))));
    }
}
