//! accent-websocketd: every bus event pushed to authorised websocket clients
//! at `/api/websocketd/` (any path below it), with upstream's protocol
//! (`init`, `subscribe`, `start`, `token`, v2 `ping`; close codes 4001-4004).
//!
//! Upstream binds one RabbitMQ queue per connection; in one process each
//! connection reads the in-process bus instead and applies the same filters
//! (see `filter.rs`).

pub mod filter;
pub mod protocol;
mod session;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::api::error::ApiError;
use crate::api::status::{Health, StatusRegistry};
use crate::auth::token::TokenData;
use crate::auth::AuthService;
use crate::bus::Bus;

/// The ACL a token needs to open a connection.
pub const ACCESS: &str = "websocketd";

/// Largest client message accepted (clients only send small control ops).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct WebsocketConfig {
    /// Websocket pings sent to each client this often; the token is also
    /// re-checked then.
    pub ping_interval: Duration,
    /// Frames queued for one client before it is closed as too slow.
    pub client_queue: usize,
}

impl Default for WebsocketConfig {
    fn default() -> Self {
        WebsocketConfig {
            ping_interval: Duration::from_secs(60),
            client_queue: 1024,
        }
    }
}

pub struct WebsocketService {
    auth: Arc<AuthService>,
    bus: Bus,
    status: Arc<StatusRegistry>,
    config: WebsocketConfig,
    shutdown: CancellationToken,
    clients: AtomicI64,
    /// Connections closed because their queue overflowed or they lagged the bus.
    closed_slow: AtomicU64,
    /// Event frames queued to clients.
    delivered: AtomicU64,
}

impl WebsocketService {
    pub fn new(auth: Arc<AuthService>, bus: Bus, status: Arc<StatusRegistry>, config: WebsocketConfig) -> Arc<Self> {
        let svc = Arc::new(WebsocketService {
            auth,
            bus,
            status,
            config,
            shutdown: CancellationToken::new(),
            clients: AtomicI64::new(0),
            closed_slow: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        });
        svc.report();
        svc
    }

    /// Closes every connection with 1001 (accentd stopping).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn clients(&self) -> i64 {
        self.clients.load(Ordering::Relaxed)
    }

    pub fn closed_slow(&self) -> u64 {
        self.closed_slow.load(Ordering::Relaxed)
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// A live token granting [`ACCESS`].
    fn validate(&self, secret: &str) -> Option<Arc<TokenData>> {
        self.auth
            .tokens
            .get(secret, crate::time::now_epoch())
            .filter(|t| t.check.matches_required_access(ACCESS))
    }

    fn connected(&self, delta: i64) {
        self.clients.fetch_add(delta, Ordering::Relaxed);
        self.report();
    }

    fn report(&self) {
        self.status.set(
            "websocketd",
            Health::Ok,
            Some(format!(
                "{} clients, {} closed for being too slow",
                self.clients(),
                self.closed_slow()
            )),
        );
    }
}

/// `GET /api/websocketd/...` with an upgrade; a plain request gets a 400.
pub fn routes(svc: Arc<WebsocketService>) -> BoxedFilter<(Response,)> {
    let base = warp::path("api")
        .and(warp::path("websocketd"))
        .and(warp::path::tail())
        .and(warp::get());
    let upgrade = base
        .and(warp::ws())
        .and(crate::api::body::raw_query())
        .and(warp::header::optional::<String>("x-auth-token"))
        .map(move |_, ws: warp::ws::Ws, query: String, header: Option<String>| {
            let svc = svc.clone();
            let param = |name: &str| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
                    .ok()
                    .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
            };
            // The query string wins over the header, as upstream.
            let handshake = session::Handshake {
                token: param("token").or(header),
                version: param("version"),
            };
            ws.max_message_size(MAX_CLIENT_MESSAGE)
                .max_frame_size(MAX_CLIENT_MESSAGE)
                .on_upgrade(move |socket| session::run(svc, socket, handshake))
                .into_response()
        });
    let plain = base.map(|_| {
        ApiError::BadRequest {
            error_id: "websocket-upgrade-required",
            message: "This endpoint only accepts websocket connections".into(),
            details: serde_json::json!({}),
        }
        .into_response()
    });
    upgrade.or(plain).unify().boxed()
}
