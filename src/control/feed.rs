//! Keeps a [`LiveState`] fed from the Asterisk links: every AMI and ARI event is applied as it
//! arrives, and the state is resynced from Asterisk's own lists whenever events may have been
//! lost (a link came up, or a subscriber fell behind its broadcast buffer).
//!
//! One task owns the loop; the resync runs in a task of its own so that events keep being
//! applied while the lists are fetched (the [`Snapshot::mark`] taken first tells the state
//! which of them are newer than the lists). Resync requests that arrive while one runs are
//! folded into one more run after it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::state::{LiveState, Snapshot};
use crate::ami::client::LinkState as AmiLink;
use crate::ami::frame::AmiMessage;
use crate::ami::AmiClient;
use crate::ari::events::AriEvent;
use crate::ari::link::LinkState as AriLink;
use crate::ari::{AriClient, AriEvents};

/// Where the events come from. Either side may be missing (not configured).
#[derive(Clone, Debug, Default)]
pub struct Links {
    pub ami: Option<AmiClient>,
    pub ari: Option<(AriClient, AriEvents)>,
}

/// Tunables; the defaults suit production, tests shorten nothing but may count resyncs.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// Wait this long after a resync request before fetching, so that the AMI and ARI links
    /// coming up together (the usual start) cost one resync, not two.
    pub settle: Duration,
    /// Bound of each list request of a resync.
    pub list_timeout: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            settle: Duration::from_millis(100),
            list_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a resync was asked for, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    AmiConnected,
    AriConnected,
    AmiLagged,
    AriLagged,
}

/// Starts feeding `state` from `links` until `shutdown`. Returns at once.
pub fn spawn(state: LiveState, links: Links, options: FeedOptions, shutdown: CancellationToken) -> JoinHandle<()> {
    let feeder = Feeder {
        ami_events: links.ami.as_ref().map(AmiClient::subscribe),
        ami_link: links.ami.as_ref().map(AmiClient::link),
        ari_events: links.ari.as_ref().map(|(_, events)| events.subscribe()),
        ari_link: links.ari.as_ref().map(|(_, events)| events.link()),
        resyncer: Resyncer {
            state: state.clone(),
            ami: links.ami,
            ari: links.ari.map(|(client, _)| client),
            options,
        },
        state,
        shutdown,
    };
    tokio::spawn(feeder.run())
}

struct Feeder {
    state: LiveState,
    ami_events: Option<broadcast::Receiver<Arc<AmiMessage>>>,
    ami_link: Option<watch::Receiver<AmiLink>>,
    ari_events: Option<broadcast::Receiver<Arc<AriEvent>>>,
    ari_link: Option<watch::Receiver<AriLink>>,
    resyncer: Resyncer,
    shutdown: CancellationToken,
}

/// What woke the loop up.
enum Wake {
    Ami(Result<Arc<AmiMessage>, broadcast::error::RecvError>),
    Ari(Result<Arc<AriEvent>, broadcast::error::RecvError>),
    AmiLink(Option<AmiLink>),
    AriLink(Option<AriLink>),
    ResyncDone,
    Stop,
}

impl Feeder {
    async fn run(mut self) {
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let mut running = false;
        let mut pending: Option<Reason> = None;
        // A link already up when we subscribe is a connection we have not resynced after.
        if let Some(link) = &mut self.ami_link {
            let current = link.borrow_and_update().clone();
            self.on_ami_link(current, &mut pending);
        }
        if let Some(link) = &mut self.ari_link {
            if link.borrow_and_update().is_connected() {
                pending = Some(Reason::AriConnected);
            }
        }
        loop {
            if let (false, Some(reason)) = (running, pending.take()) {
                running = true;
                let resyncer = self.resyncer.clone();
                let done = done_tx.clone();
                let stop = self.shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = resyncer.run(reason) => {}
                        _ = stop.cancelled() => {}
                    }
                    let _ = done.send(()).await;
                });
            }
            match self.next(&mut done_rx).await {
                Wake::Ami(Ok(msg)) => self.state.apply_ami(&msg),
                Wake::Ari(Ok(event)) => self.state.apply_ari(&event),
                Wake::Ami(Err(broadcast::error::RecvError::Lagged(n))) => {
                    tracing::warn!(missed = n, "live state fell behind the AMI events; resyncing");
                    pending = Some(Reason::AmiLagged);
                }
                Wake::Ari(Err(broadcast::error::RecvError::Lagged(n))) => {
                    tracing::warn!(missed = n, "live state fell behind the ARI events; resyncing");
                    pending = Some(Reason::AriLagged);
                }
                // The client is gone (shut down): stop listening to it.
                Wake::Ami(Err(broadcast::error::RecvError::Closed)) => self.ami_events = None,
                Wake::Ari(Err(broadcast::error::RecvError::Closed)) => self.ari_events = None,
                Wake::AmiLink(Some(link)) => self.on_ami_link(link, &mut pending),
                Wake::AmiLink(None) => self.ami_link = None,
                Wake::AriLink(Some(link)) => {
                    if link.is_connected() {
                        pending = Some(Reason::AriConnected);
                    }
                }
                Wake::AriLink(None) => self.ari_link = None,
                Wake::ResyncDone => running = false,
                Wake::Stop => return,
            }
        }
    }

    /// The AMI link changed. Down: the state infers linkedids from ARI alone meanwhile. Up (a
    /// new session): events were lost while it was down.
    fn on_ami_link(&self, link: AmiLink, pending: &mut Option<Reason>) {
        let up = link.is_connected();
        self.state.set_ami_link(up);
        if up {
            *pending = Some(Reason::AmiConnected);
        }
    }

    async fn next(&mut self, done: &mut mpsc::Receiver<()>) -> Wake {
        tokio::select! {
            // Events first: a burst must not be starved by link or timer noise.
            biased;
            _ = self.shutdown.cancelled() => Wake::Stop,
            r = recv(&mut self.ami_events) => Wake::Ami(r),
            r = recv(&mut self.ari_events) => Wake::Ari(r),
            l = changed(&mut self.ami_link) => Wake::AmiLink(l),
            l = changed(&mut self.ari_link) => Wake::AriLink(l),
            _ = done.recv() => Wake::ResyncDone,
        }
    }
}

/// The next message of an optional receiver; pending forever without one.
async fn recv<T: Clone>(rx: &mut Option<broadcast::Receiver<T>>) -> Result<T, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next value of an optional watch; `None` once its sender is gone.
async fn changed<T: Clone>(rx: &mut Option<watch::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Fetches Asterisk's lists and hands them to the state.
#[derive(Clone)]
struct Resyncer {
    state: LiveState,
    ami: Option<AmiClient>,
    ari: Option<AriClient>,
    options: FeedOptions,
}

impl Resyncer {
    async fn run(self, reason: Reason) {
        tokio::time::sleep(self.options.settle).await;
        let ami = self.ami.as_ref().filter(|c| c.is_connected());
        let ari = self.ari.as_ref();
        if ami.is_none() && ari.is_none() {
            return;
        }
        // Taken before the first request: whatever is applied from now on is newer than the
        // lists and is kept as is.
        let mark = self.state.mark();
        let (ari_channels, ari_bridges, ami_channels, ami_device_states, ami_hints) = tokio::join!(
            self.part("GET /channels", ari.map(|c| c.channels())),
            self.part("GET /bridges", ari.map(|c| c.bridges())),
            self.part("CoreShowChannels", ami.map(|c| c.core_show_channels())),
            self.part("DeviceStateList", ami.map(|c| c.device_state_list())),
            self.part("ExtensionStateList", ami.map(|c| c.extension_state_list())),
        );
        // Without either channel list the state cannot tell a live channel from a ghost:
        // keep what the events built rather than erase it.
        if ari_channels.is_none() && ami_channels.is_none() {
            tracing::warn!(?reason, "live state not resynced: no channel list could be read");
            return;
        }
        let snapshot = Snapshot {
            ari_channels,
            ari_bridges,
            ami_channels,
            ami_device_states,
            ami_hints,
            mark: Some(mark),
        };
        self.state.resync(snapshot);
        let counts = self.state.counts();
        tracing::info!(?reason, ?counts, "live state resynced");
    }

    /// One list of the snapshot: `None` when that source is missing, failed or timed out.
    async fn part<T, E: std::fmt::Display>(
        &self,
        what: &'static str,
        request: Option<impl std::future::Future<Output = Result<T, E>>>,
    ) -> Option<T> {
        let request = request?;
        match tokio::time::timeout(self.options.list_timeout, request).await {
            Ok(Ok(list)) => Some(list),
            Ok(Err(e)) => {
                tracing::warn!(request = what, error = %e, "resync list not read");
                None
            }
            Err(_) => {
                tracing::warn!(request = what, "resync list timed out");
                None
            }
        }
    }
}
