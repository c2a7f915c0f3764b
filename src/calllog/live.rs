//! The live path: CEL events from the AMI link are stored in the `cel` table as they come, and
//! each `LINKEDID_END` turns its call into a call log at once.
//!
//! Rows are written in small batches (one transaction per batch: at a few hundred events per
//! second a transaction per row would be the bottleneck). A batch is written when it is full,
//! when no event came for [`LiveOptions::flush_after`], and always before a generation, so the
//! generator reads every CEL of the call from the table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::CallLogService;
use crate::ami::AmiClient;
use crate::cel::read::ami::{from_ami, is_cel_event};
use crate::cel::{Cel, EventType};

#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Rows per write.
    pub batch: usize,
    /// A partial batch is written after this much quiet.
    pub flush_after: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            batch: 256,
            flush_after: Duration::from_millis(20),
        }
    }
}

/// What the live path did, for `/status` and tests.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub rejected: AtomicU64,
    /// AMI events missed because the consumer fell behind (the daily catch-up regenerates
    /// from what Asterisk's own CEL files hold).
    pub missed: AtomicU64,
    pub generated: AtomicU64,
}

/// Starts the live path on `ami`'s events until `shutdown`.
pub fn spawn(
    svc: Arc<CallLogService>,
    ami: &AmiClient,
    options: LiveOptions,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let mut events = ami.subscribe();
    tokio::spawn(async move {
        let mut batch: Vec<Cel> = Vec::with_capacity(options.batch);
        let mut ended: Vec<String> = Vec::new();
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => None,
                r = tokio::time::timeout(options.flush_after, events.recv()) => Some(r),
            };
            let Some(next) = next else {
                // Keep what arrived before the shutdown.
                flush(&svc, &mut batch, &mut ended).await;
                return;
            };
            match next {
                Ok(Ok(msg)) => {
                    if !is_cel_event(&msg) {
                        continue;
                    }
                    svc.live.received.fetch_add(1, Ordering::Relaxed);
                    match from_ami(&msg) {
                        Ok(cel) => {
                            if cel.eventtype == EventType::LinkedidEnd {
                                ended.push(cel.linkedid.clone());
                            }
                            batch.push(cel);
                        }
                        Err(e) => {
                            svc.live.rejected.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "CEL event skipped");
                        }
                    }
                    if batch.len() >= options.batch || !ended.is_empty() {
                        flush(&svc, &mut batch, &mut ended).await;
                    }
                }
                Ok(Err(RecvError::Lagged(n))) => {
                    svc.live.missed.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        missed = n,
                        "call logs fell behind the AMI events; the daily catch-up will fill in"
                    );
                }
                Ok(Err(RecvError::Closed)) => {
                    flush(&svc, &mut batch, &mut ended).await;
                    return;
                }
                // Quiet: write what is pending.
                Err(_) => flush(&svc, &mut batch, &mut ended).await,
            }
        }
    })
}

/// Writes the pending rows, then generates the calls that ended.
async fn flush(svc: &Arc<CallLogService>, batch: &mut Vec<Cel>, ended: &mut Vec<String>) {
    if !batch.is_empty() {
        let rows = std::mem::take(batch);
        let n = rows.len();
        match svc.store_cels(rows).await {
            Ok(stored) => {
                svc.live.stored.fetch_add(stored as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, rows = n, "CEL rows not stored"),
        }
    }
    if !ended.is_empty() {
        let linkedids = std::mem::take(ended);
        match svc.generate_linkedids(linkedids, true).await {
            Ok(outcome) => {
                svc.live
                    .generated
                    .fetch_add(outcome.logs.len() as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "call logs not generated"),
        }
    }
}
