//! accent-calld: live call control under `/api/calld/1.0`. The calls come from
//! the live state (`control`), fed by both Asterisk links; who owns a channel
//! (line, user, tenant) from confd's store; actions go to Asterisk over ARI and AMI;
//! every change of a call is published on the bus ([`events`]).

pub mod actions;
pub mod adhoc;
pub mod applications;
pub mod calls;
pub mod conferences;
pub mod connect;
pub mod endpoints;
pub mod events;
pub mod faxes;
pub mod moves;
pub mod originate;
pub mod owners;
pub mod parking;
pub mod relocates;
pub(crate) mod routes;
pub mod stasis;
pub mod switchboards;
pub mod transfers;
pub mod voicemail;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;
use futures_util::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use self::calls::Marks;
use self::owners::OwnersCache;
use crate::ami::client::AmiClient;
use crate::ami::frame::AmiMessage;
use crate::ari::client::AriClient;
use crate::auth::AuthService;
use crate::bus::Bus;
use crate::control::LiveState;
use crate::store::Store;

pub use routes::routes;

pub struct CalldService {
    pub auth: Arc<AuthService>,
    pub store: Store,
    pub bus: Bus,
    pub live: LiveState,
    /// Set once the ARI link is started; unset without Asterisk (actions answer 503).
    pub ari: OnceLock<AriClient>,
    /// Set once the AMI link is started; unset without Asterisk (actions answer 503).
    pub ami: OnceLock<AmiClient>,
    /// accentd's own Stasis application (config `ari.app`), set with the ARI link.
    main_app: OnceLock<String>,
    /// Where Asterisk writes recordings: `<dir>/<tenant>/monitor/<uuid>.wav`, as call-logd
    /// reads them.
    pub recordings_dir: PathBuf,
    /// The largest request body accepted.
    pub body_limit: u64,
    /// Asterisk's voicemail spool (`<dir>/<context>/<number>/INBOX/...`).
    pub voicemail_dir: PathBuf,
    /// The faxes being sent.
    pub faxes: faxes::Faxes,
    /// The Stasis applications: their calls, nodes and playbacks.
    pub applications: applications::Applications,
    /// The switchboards' queued, held and answered calls.
    pub switchboards: Arc<switchboards::Switchboards>,
    voicemail_seen: voicemail::Seen,
    owners: OwnersCache,
    /// Channel id -> what calld did to it (mute, recording); dropped when the channel is gone.
    marks: DashMap<String, Marks>,
    /// Attended transfers in progress, by id.
    transfers: DashMap<String, transfers::Transfer>,
    /// Calls being connected to a user, by the user's new channel.
    connections: DashMap<String, connect::Connection>,
    /// Relocates in progress, by uuid.
    relocates: DashMap<String, relocates::Relocate>,
    /// Adhoc conferences and the calls on their way into one.
    adhocs: adhoc::Adhocs,
    /// Parked calls as res_parking's events told them.
    parking: parking::Parked,
    pokes: mpsc::UnboundedSender<String>,
    pokes_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl CalldService {
    pub fn new(
        auth: Arc<AuthService>,
        store: Store,
        bus: Bus,
        live: LiveState,
        recordings_dir: PathBuf,
        body_limit: u64,
        config: &crate::config::CalldConfig,
    ) -> Self {
        let (pokes, rx) = mpsc::unbounded_channel();
        CalldService {
            auth,
            store,
            bus,
            live,
            ari: OnceLock::new(),
            ami: OnceLock::new(),
            main_app: OnceLock::new(),
            recordings_dir,
            body_limit,
            voicemail_dir: config.voicemail_dir.clone(),
            faxes: faxes::Faxes::new(config),
            applications: applications::Applications::default(),
            switchboards: switchboards::new_state(),
            voicemail_seen: voicemail::Seen::default(),
            owners: OwnersCache::default(),
            marks: DashMap::new(),
            transfers: DashMap::new(),
            connections: DashMap::new(),
            relocates: DashMap::new(),
            adhocs: adhoc::Adhocs::default(),
            parking: parking::Parked::default(),
            pokes,
            pokes_rx: Mutex::new(Some(rx)),
        }
    }

    /// Sets accentd's own Stasis application name (once, with the ARI link).
    pub fn set_main_app(&self, name: &str) {
        let _ = self.main_app.set(name.to_owned());
    }

    /// accentd's own Stasis application, as the ARI websocket registered it.
    pub fn main_app(&self) -> &str {
        self.main_app.get().map(String::as_str).unwrap_or("accentd")
    }

    /// Tells the events task that something calld tracks itself changed on a channel.
    fn poke(&self, call_id: &str) {
        // Without the task (not started), nobody listens: nothing to tell.
        let _ = self.pokes.send(call_id.to_owned());
    }

    /// Runs `on_event` on every AMI event until `shutdown`, in order; a watcher that
    /// falls behind says so (`what` names it).
    pub(crate) fn watch_ami<F>(
        self: Arc<Self>,
        ami: &AmiClient,
        shutdown: CancellationToken,
        what: &'static str,
        on_event: F,
    ) where
        F: for<'a> Fn(&'a CalldService, &'a AmiMessage) -> BoxFuture<'a, ()> + Send + 'static,
    {
        let mut events = ami.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    e = events.recv() => match e {
                        Ok(m) => on_event(&self, &m).await,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, watcher = what, "AMI watcher fell behind");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
        });
    }

    fn take_pokes(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.pokes_rx.lock().ok().and_then(|mut rx| rx.take())
    }
}
