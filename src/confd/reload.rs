//! Applying committed configuration to Asterisk: after a change, wait for
//! the burst of writes to settle (debounce), regenerate the config files,
//! then send over AMI only the reload commands the changes need. Reloads
//! that cannot be sent (no AMI link, Asterisk refusing, files not written)
//! stay pending and are retried with backoff; `/status` shows
//! `confd_reload` failing meanwhile, so a change is never silently lost.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::ami::AmiClient;
use crate::api::status::{Health, StatusRegistry};

/// The `/status` component name.
pub const STATUS_COMPONENT: &str = "confd_reload";

/// One thing Asterisk must re-read after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reload {
    Pjsip,
    Dialplan,
    Voicemail,
    Queues,
    Sccp,
    Iax,
    Moh,
    Confbridge,
    Features,
    Parking,
}

impl Reload {
    /// The Asterisk CLI command, as upstream's notifiers send it.
    pub fn command(self) -> &'static str {
        match self {
            Reload::Pjsip => "module reload res_pjsip.so",
            Reload::Dialplan => "dialplan reload",
            Reload::Voicemail => "voicemail reload",
            Reload::Queues => "module reload app_queue.so",
            Reload::Sccp => "module reload chan_sccp.so",
            Reload::Iax => "iax2 reload",
            Reload::Moh => "moh reload",
            Reload::Confbridge => "module reload app_confbridge.so",
            Reload::Features => "module reload features",
            Reload::Parking => "module reload res_parking.so",
        }
    }
}

/// Writes the config files before a reload; an error keeps the reloads
/// pending (Asterisk would re-read stale files otherwise).
pub type BeforeReload =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// Quiet time after the last change before reloading.
    pub debounce: Duration,
    /// Longest a continuous stream of changes may delay a reload.
    pub max_delay: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            debounce: Duration::from_millis(300),
            max_delay: Duration::from_secs(3),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// The handle services use; cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::UnboundedSender<()>,
    pending: Mutex<BTreeSet<Reload>>,
    live: AtomicBool,
    /// Bumped after every successful flush (tests and `/status` wait on it).
    done: watch::Sender<u64>,
}

impl Reloader {
    /// A reloader and the receiver its worker consumes.
    pub fn new(live_reload: bool) -> (Reloader, mpsc::UnboundedReceiver<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done, _) = watch::channel(0);
        (
            Reloader {
                inner: Arc::new(Inner {
                    tx,
                    pending: Mutex::new(BTreeSet::new()),
                    live: AtomicBool::new(live_reload),
                    done,
                }),
            },
            rx,
        )
    }

    /// Queues reloads for a committed change.
    pub fn request(&self, reloads: &[Reload]) {
        if reloads.is_empty() {
            return;
        }
        if let Ok(mut p) = self.inner.pending.lock() {
            p.extend(reloads.iter().copied());
        }
        let _ = self.inner.tx.send(());
    }

    pub fn live_reload(&self) -> bool {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// Turning live reload back on applies what accumulated meanwhile.
    pub fn set_live_reload(&self, enabled: bool) {
        self.inner.live.store(enabled, Ordering::SeqCst);
        if enabled {
            let _ = self.inner.tx.send(());
        }
    }

    /// Reloads waiting to be sent.
    pub fn pending(&self) -> Vec<Reload> {
        self.inner
            .pending
            .lock()
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Number of successful flushes so far.
    pub fn flushes(&self) -> watch::Receiver<u64> {
        self.inner.done.subscribe()
    }

    fn take(&self) -> BTreeSet<Reload> {
        self.inner
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    fn put_back(&self, reloads: BTreeSet<Reload>) {
        if let Ok(mut p) = self.inner.pending.lock() {
            p.extend(reloads);
        }
    }

    /// Runs the worker until `shutdown`.
    pub fn spawn(
        &self,
        mut rx: mpsc::UnboundedReceiver<()>,
        ami: Option<AmiClient>,
        status: Arc<StatusRegistry>,
        before: Option<BeforeReload>,
        options: ReloadOptions,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut backoff = options.retry_min;
            loop {
                // Wait for a change (or a retry tick while something is pending).
                let has_pending = !this.pending().is_empty();
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    got = rx.recv() => if got.is_none() { return },
                    _ = tokio::time::sleep(backoff), if has_pending => {}
                }
                // Debounce: wait until no change arrived for `debounce`, at most `max_delay`.
                let deadline = tokio::time::Instant::now() + options.max_delay;
                loop {
                    let quiet = tokio::time::sleep(options.debounce);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = quiet => break,
                        got = rx.recv() => if got.is_none() { return },
                    }
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                }
                if !this.live_reload() {
                    continue; // kept pending until live reload is turned back on
                }
                let batch = this.take();
                if batch.is_empty() {
                    continue;
                }
                match flush(&batch, ami.as_ref(), before.as_ref()).await {
                    Ok(()) => {
                        status.set(STATUS_COMPONENT, Health::Ok, None);
                        backoff = options.retry_min;
                        this.inner.done.send_modify(|n| *n += 1);
                    }
                    Err(reason) => {
                        tracing::warn!(%reason, pending = ?batch, "Asterisk reload failed; will retry");
                        status.set(STATUS_COMPONENT, Health::Fail, Some(reason));
                        this.put_back(batch);
                        backoff = (backoff * 2).min(options.retry_max);
                    }
                }
            }
        })
    }
}

async fn flush(batch: &BTreeSet<Reload>, ami: Option<&AmiClient>, before: Option<&BeforeReload>) -> Result<(), String> {
    if let Some(before) = before {
        before().await?;
    }
    // Without Asterisk there is nothing to reload: the files are written.
    let Some(ami) = ami else {
        return Ok(());
    };
    for reload in batch {
        tracing::info!(command = reload.command(), "reloading Asterisk");
        ami.command(reload.command())
            .await
            .map_err(|e| format!("{}: {e}", reload.command()))?;
    }
    Ok(())
}
