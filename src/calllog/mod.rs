//! call-logd: call logs generated from CEL, and the `/api/call-logd/1.0` API that reads them.
//!
//! - [`cdr`]: the call log model, its store and the `/cdr` routes (JSON and CSV).
//! - [`live`]: CEL events from the AMI link stored as they come; `LINKEDID_END` generates.
//! - [`batch`]: `accentd call-logs generate|delete` and the daily catch-up and retention.
//! - `generation`: what both share (store CELs, generate, store and publish logs).
//! - [`media`]: recording files (download, delete) confined to `call_logs.recordings_dir`.
//! - [`export`]: ZIP exports of recordings written by a background task.
//! - [`retention`]: `/retention` per tenant and the daily purge applying it.
//!
//! The generator (CEL → call logs) hands its results to [`CallLogService::store_logs`]; each
//! conversation has at most one log, so generating again replaces instead of duplicating.

pub mod batch;
pub mod cdr;
pub mod errors;
pub mod export;
mod generation;
pub mod live;
pub mod media;
pub mod retention;

use std::path::PathBuf;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::api::status::StatusRegistry;
use crate::auth::AuthService;
use crate::bus::Bus;
use crate::config::CallLogsConfig;
use crate::store::Store;

/// Everything the call-logd part needs; one per process.
pub struct CallLogService {
    pub store: Store,
    pub bus: Bus,
    pub auth: Arc<AuthService>,
    pub status: Arc<StatusRegistry>,
    pub config: CallLogsConfig,
    /// Counters of the live path ([`live`]).
    pub live: live::LiveCounters,
    /// Where export ZIP files are written (`<data_dir>/exports`).
    exports_dir: PathBuf,
    /// Sends the "export ready" mail when an export asks for one; `None`: mail is off.
    mailer: Option<crate::mail::Mailer>,
}

impl CallLogService {
    pub fn new(
        store: Store,
        bus: Bus,
        auth: Arc<AuthService>,
        status: Arc<StatusRegistry>,
        config: CallLogsConfig,
        exports_dir: PathBuf,
    ) -> Arc<Self> {
        let mailer = crate::mail::Mailer::from_config(&auth.config.smtp).unwrap_or_else(|e| {
            tracing::error!(error = %e, "outgoing mail is off: bad [smtp] settings");
            None
        });
        Arc::new(CallLogService {
            store,
            bus,
            auth,
            status,
            config,
            live: live::LiveCounters::default(),
            exports_dir,
            mailer,
        })
    }
}

/// Every route under `/api/call-logd/1.0`.
pub fn routes(svc: Arc<CallLogService>) -> BoxedFilter<(Response,)> {
    let status = crate::api::status::route("call-logd.status.read", svc.auth.clone(), svc.status.clone());
    warp::path("api")
        .and(warp::path("call-logd"))
        .and(warp::path("1.0"))
        .and(
            cdr::routes(svc.clone())
                .or(media::routes(svc.clone()))
                .unify()
                .or(export::routes(svc.clone()))
                .unify()
                .or(retention::routes(svc))
                .unify()
                .or(status)
                .unify(),
        )
        .boxed()
}
