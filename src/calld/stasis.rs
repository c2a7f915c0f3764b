//! accentd's own Stasis application (config `ari.app`, `accentd` by default): the
//! dialplan and calld's own originates send a channel into it with arguments that say
//! what for (`Stasis(accentd,switchboard_queue,<uuid>)`, an originate's `appArgs`), and
//! this task hands each `StasisStart` to the feature its first argument names.
//!
//! The main websocket subscribes to everything (the live state needs it), so every
//! feature also sees every other event and keeps only those of its own channels and
//! bridges. A channel that enters with arguments no feature claims is sent back to the
//! dialplan rather than left silent in Stasis: a caller stuck in silence is the worst
//! outcome for a PBX.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{switchboards, CalldService};
use crate::ari::client::ContinueParams;
use crate::ari::events::{AriEvent, StasisStart};
use crate::ari::AriEvents;

/// Starts the task on the main websocket's events; it runs until `shutdown`.
pub fn spawn(svc: Arc<CalldService>, events: &AriEvents, shutdown: CancellationToken) -> JoinHandle<()> {
    let rx = events.subscribe();
    tokio::spawn(run(svc, rx, shutdown))
}

async fn run(svc: Arc<CalldService>, mut rx: broadcast::Receiver<Arc<AriEvent>>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            received = rx.recv() => match received {
                Ok(event) => dispatch(&svc, &event).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "Stasis events missed: the task fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}

async fn dispatch(svc: &CalldService, event: &AriEvent) {
    if let AriEvent::StasisStart(e) = event {
        if event.application() == Some(svc.main_app()) {
            entered(svc, e).await;
        }
    }
    super::switchboards::on_event(svc, event).await;
    svc.follow_connections(event).await;
    svc.follow_relocates(event).await;
    svc.follow_pair_bridges(event).await;
    svc.follow_adhocs(event).await;
}

/// A channel entered the main application: the feature its first argument names takes it.
async fn entered(svc: &CalldService, e: &StasisStart) {
    match e.args.first().map(String::as_str).unwrap_or("") {
        "connect" => svc.connect_entered(e).await,
        "relocate" => svc.relocate_entered(e).await,
        super::adhoc::PURPOSE => svc.adhoc_entered(e).await,
        switchboards::QUEUE_PURPOSE => switchboards::queued(svc, e).await,
        switchboards::ANSWER_PURPOSE => switchboards::operator_answered(svc, e).await,
        _ => svc.unclaimed(e).await,
    }
}

impl CalldService {
    /// A channel no feature claims goes back to the dialplan.
    pub(super) async fn unclaimed(&self, e: &StasisStart) {
        let purpose = e.args.first().map(String::as_str).unwrap_or("");
        tracing::warn!(
            call_id = %e.channel.id,
            purpose,
            "a channel entered the Stasis application for nothing calld knows; back to the dialplan"
        );
        let Some(ari) = self.ari.get() else { return };
        if let Err(err) = ari
            .continue_in_dialplan(&e.channel.id, &ContinueParams::default())
            .await
        {
            tracing::warn!(call_id = %e.channel.id, error = %err, "cannot send the channel back to the dialplan");
        }
    }
}
