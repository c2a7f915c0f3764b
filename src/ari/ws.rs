//! The ARI events client: an actor task that holds the `/ari/events`
//! websocket for as long as accentd runs.
//!
//! - It connects to `ws(s)://…/ari/events?app=<app>&subscribeAll=true`,
//!   authenticating with an `Authorization: Basic` header (ARI's other way,
//!   the `api_key` query parameter, would put the secret in URLs and logs).
//! - Before each connection it calls `GET /asterisk/info`: a health check that
//!   also tells a wrong password apart (401 with Asterisk's message) and gives
//!   the Asterisk version for the `ari` status detail.
//! - Each text message is typed with [`parse_event`] and broadcast as an
//!   `Arc<AriEvent>`. A message that is not an ARI message is logged and
//!   skipped: one bad message never costs the link.
//! - It pings Asterisk regularly; a link that stays silent past the pong
//!   timeout is treated as dead (a half-open TCP connection would otherwise
//!   look healthy forever).
//! - On close, error or a frame cut in the middle, it reports `ari` as failed,
//!   flips the [`LinkState`] watch to `Disconnected` and reconnects with
//!   exponential backoff and jitter.
//!
//! Application registration: a Stasis application exists in Asterisk while a
//! websocket asks for it (`app=` of the events URL). When our websocket dies
//! the application is unregistered with it, and the next websocket registers
//! it again: reconnecting is all re-registration takes. Asterisk allows one
//! websocket per application; when a newer one takes the name over, the older
//! receives `ApplicationReplaced` and gets no more events (ARI spec,
//! `events.json`). That means another process uses our application name, so
//! this client treats it as a lost link: it reports the failure and
//! reconnects (with backoff), taking the name back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, BackoffPolicy};
use super::client::{error_chain, AriClient};
use super::error::AriError;
use super::events::{parse_event, AriEvent};
use super::link::LinkState;
use crate::api::status::{Health, StatusRegistry};
use crate::config::AriConfig;

/// The name of the component in the status registry (`GET /status`).
pub const STATUS_COMPONENT: &str = "ari";

/// Tunables of the events client. The defaults suit production; tests
/// shorten the delays.
#[derive(Debug, Clone)]
pub struct AriEventsOptions {
    pub backoff: BackoffPolicy,
    /// How often a ping is sent.
    pub ping_interval: Duration,
    /// A link from which nothing (event, pong) arrived for `ping_interval +
    /// pong_timeout` is dead.
    pub pong_timeout: Duration,
    /// Limit for the health check plus the websocket handshake.
    pub connect_timeout: Duration,
    /// Events buffered per subscriber before it sees `Lagged`. Scenario 15
    /// (200 calls in a burst) has 21,500 events, so keep this generous.
    pub capacity: usize,
    /// `subscribeAll=true`: events of every channel, bridge, endpoint and
    /// device, not only of those in our application (the live state needs
    /// them all).
    pub subscribe_all: bool,
    /// Largest accepted websocket message.
    pub max_message_size: usize,
}

impl Default for AriEventsOptions {
    fn default() -> Self {
        AriEventsOptions {
            backoff: BackoffPolicy::default(),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            capacity: 16 * 1024,
            subscribe_all: true,
            max_message_size: 16 << 20,
        }
    }
}

/// Handle on the events actor; cheap to clone.
#[derive(Clone)]
pub struct AriEvents {
    events: broadcast::Sender<Arc<AriEvent>>,
    link: watch::Receiver<LinkState>,
}

impl std::fmt::Debug for AriEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AriEvents")
            .field("link", &*self.link.borrow())
            .field("subscribers", &self.events.receiver_count())
            .finish()
    }
}

impl AriEvents {
    /// Starts the actor with the default options; it runs until `shutdown`.
    pub fn spawn(config: &AriConfig, status: Arc<StatusRegistry>, shutdown: CancellationToken) -> AriEvents {
        Self::start(config, status, shutdown, AriEventsOptions::default()).0
    }

    /// Starts the actor; the join handle lets the owner wait for its end
    /// after cancelling `shutdown`. A config that cannot make a client (bad
    /// URL) is reported on the status and the link stays `Disconnected`.
    pub fn start(
        config: &AriConfig,
        status: Arc<StatusRegistry>,
        shutdown: CancellationToken,
        options: AriEventsOptions,
    ) -> (AriEvents, JoinHandle<()>) {
        match AriClient::new(config) {
            Ok(client) => Self::start_with_client(client, &config.app, status, shutdown, options),
            Err(e) => {
                let reason = e.to_string();
                status.set(STATUS_COMPONENT, Health::Fail, Some(reason.clone()));
                tracing::error!(error = %reason, "ARI events client not started");
                let (events, _) = broadcast::channel(1);
                let (link_tx, link) = watch::channel(LinkState::Disconnected { reason });
                let task = tokio::spawn(async move {
                    // Keeps the watch sender alive so receivers see a
                    // steady "disconnected", not a closed channel.
                    shutdown.cancelled().await;
                    drop(link_tx);
                });
                (AriEvents { events, link }, task)
            }
        }
    }

    /// Starts the actor on an existing client, for application `app`.
    pub fn start_with_client(
        client: AriClient,
        app: &str,
        status: Arc<StatusRegistry>,
        shutdown: CancellationToken,
        options: AriEventsOptions,
    ) -> (AriEvents, JoinHandle<()>) {
        let (events, _) = broadcast::channel(options.capacity.max(16));
        let (link_tx, link) = watch::channel(LinkState::Disconnected {
            reason: "not connected yet".into(),
        });
        status.set(STATUS_COMPONENT, Health::Fail, Some("connecting".into()));
        let actor = Actor {
            client,
            app: app.to_owned(),
            status,
            shutdown,
            options,
            events: events.clone(),
            link: link_tx,
        };
        let task = tokio::spawn(actor.run());
        (AriEvents { events, link }, task)
    }

    /// A receiver of every event from now on. A subscriber that falls more
    /// than `capacity` events behind gets `RecvError::Lagged` (and should
    /// resync), never a silent gap.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AriEvent>> {
        self.events.subscribe()
    }

    /// The link state; changes on every connect and disconnect.
    pub fn link(&self) -> watch::Receiver<LinkState> {
        self.link.clone()
    }

    /// True while the websocket is up.
    pub fn is_connected(&self) -> bool {
        self.link.borrow().is_connected()
    }
}

/// Any byte stream the websocket can run on (plain TCP or TLS).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Ws = WebSocketStream<Box<dyn Io>>;

/// Why one connection attempt failed.
struct AttemptError {
    /// For the status detail and the logs; never a secret.
    detail: String,
}

struct Actor {
    client: AriClient,
    app: String,
    status: Arc<StatusRegistry>,
    shutdown: CancellationToken,
    options: AriEventsOptions,
    events: broadcast::Sender<Arc<AriEvent>>,
    link: watch::Sender<LinkState>,
}

impl Actor {
    async fn run(self) {
        let mut backoff = Backoff::new(self.options.backoff);
        // The last failure logged at warn level, so a long outage logs one
        // warning per distinct reason, not one per attempt.
        let mut last_warned: Option<String> = None;
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            let attempt = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                a = tokio::time::timeout(self.options.connect_timeout, self.connect()) => a,
            };
            let attempt = attempt.unwrap_or_else(|_| {
                Err(AttemptError {
                    detail: format!(
                        "no answer from {} within {} s",
                        self.client.base_url(),
                        self.options.connect_timeout.as_secs_f64()
                    ),
                })
            });
            match attempt {
                Ok((ws, version)) => {
                    last_warned = None;
                    let up_since = Instant::now();
                    let since = time::OffsetDateTime::now_utc();
                    let detail = format!(
                        "connected to {} (Asterisk {version}), application {}",
                        self.client.base_url(),
                        self.app
                    );
                    tracing::info!(url = %self.client.base_url(), app = %self.app, %version, "ARI events connected");
                    self.status.set(STATUS_COMPONENT, Health::Ok, Some(detail));
                    self.link.send_replace(LinkState::Connected { since });
                    match self.pump(ws).await {
                        None => break,
                        Some(reason) => {
                            tracing::warn!(%reason, "ARI events link lost; reconnecting");
                            self.status
                                .set(STATUS_COMPONENT, Health::Fail, Some(format!("link lost: {reason}")));
                            self.link.send_replace(LinkState::Disconnected { reason });
                            if up_since.elapsed() >= self.options.backoff.reset_after {
                                backoff.reset();
                            }
                        }
                    }
                }
                Err(AttemptError { detail }) => {
                    if last_warned.as_deref() != Some(detail.as_str()) {
                        tracing::warn!(reason = %detail, "ARI events: cannot connect; retrying");
                        last_warned = Some(detail.clone());
                    } else {
                        tracing::debug!(reason = %detail, "ARI events: cannot connect; retrying");
                    }
                    self.status.set(STATUS_COMPONENT, Health::Fail, Some(detail.clone()));
                    self.link.send_if_modified(|state| {
                        let next = LinkState::Disconnected { reason: detail };
                        if *state == next {
                            false
                        } else {
                            *state = next;
                            true
                        }
                    });
                }
            }
            let delay = backoff.next_delay();
            tracing::debug!(delay_ms = delay.as_millis() as u64, "ARI events: next attempt");
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        self.link.send_replace(LinkState::Disconnected {
            reason: "shut down".into(),
        });
        tracing::debug!("ARI events client stopped");
    }

    /// Health check, then the websocket handshake. Returns the socket and
    /// the Asterisk version.
    async fn connect(&self) -> Result<(Ws, String), AttemptError> {
        let version = match self.client.asterisk_info().await {
            Ok(info) => info
                .system
                .map(|s| s.version)
                .unwrap_or_else(|| "version unknown".into()),
            Err(AriError::Unauthorized { status, message }) => {
                return Err(AttemptError {
                    detail: format!(
                        "authentication failed for ARI user {:?} at {} ({status} {message})",
                        self.client.user(),
                        self.client.base_url()
                    ),
                })
            }
            Err(AriError::Transport(e)) => {
                return Err(AttemptError {
                    detail: format!("cannot reach {}: {e}", self.client.base_url()),
                })
            }
            Err(e) => {
                // The websocket decides; the version is only informative.
                tracing::warn!(error = %e, "ARI: GET /asterisk/info failed");
                "version unknown".into()
            }
        };
        let url = self.client.events_url(&self.app, self.options.subscribe_all);
        let ws = self.handshake(&url).await?;
        Ok((ws, version))
    }

    async fn handshake(&self, url: &str) -> Result<Ws, AttemptError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| AttemptError {
            detail: format!("websocket {url}: {what}: {e}"),
        };
        let mut request = url.into_client_request().map_err(|e| fail("invalid request", &e))?;
        let auth = tungstenite::http::HeaderValue::from_str(self.client.authorization())
            .map_err(|_| fail("invalid request", &"credentials are not valid header text"))?;
        request
            .headers_mut()
            .insert(tungstenite::http::header::AUTHORIZATION, auth);
        let parsed = reqwest::Url::parse(url).map_err(|e| fail("invalid URL", &e))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| fail("invalid URL", &"no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = parsed.scheme() == "wss";
        let port = parsed.port().unwrap_or(if tls { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| fail("cannot connect", &e))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if tls {
            Box::new(tls_connect(&host, tcp).await.map_err(|e| fail("TLS", &e))?)
        } else {
            Box::new(tcp)
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.options.max_message_size))
            .max_frame_size(Some(self.options.max_message_size));
        match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
            Ok((ws, _response)) => Ok(ws),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_deref().unwrap_or_default();
                let error = AriError::from_response(status, body);
                let detail = match error {
                    AriError::Unauthorized { status, message } => format!(
                        "authentication failed for ARI user {:?} at {} ({status} {message})",
                        self.client.user(),
                        self.client.base_url()
                    ),
                    other => format!("websocket {url} refused: {other}"),
                };
                Err(AttemptError { detail })
            }
            Err(e) => Err(fail("handshake failed", &error_chain(&e))),
        }
    }

    /// Reads the websocket until it ends. `None` on shutdown, otherwise why
    /// the link was lost.
    async fn pump(&self, mut ws: Ws) -> Option<String> {
        let period = self.options.ping_interval.max(Duration::from_millis(10));
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rx = Instant::now();
        let silence_limit = self.options.ping_interval + self.options.pong_timeout;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return None;
                }
                _ = ping.tick() => {
                    if last_rx.elapsed() > silence_limit {
                        return Some(format!("no data nor pong from Asterisk for {} s", last_rx.elapsed().as_secs()));
                    }
                    let sent = tokio::time::timeout(self.options.pong_timeout, ws.send(Message::Ping(Default::default()))).await;
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Some(format!("cannot send ping: {}", error_chain(&e))),
                        Err(_) => return Some("cannot send ping: write timed out".into()),
                    }
                }
                message = ws.next() => {
                    last_rx = Instant::now();
                    match message {
                        None => return Some("websocket closed".into()),
                        Some(Err(e)) => return Some(format!("websocket error: {}", error_chain(&e))),
                        Some(Ok(Message::Text(text))) => {
                            if let Some(reason) = self.handle_text(text.as_str()) {
                                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                                return Some(reason);
                            }
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            tracing::warn!(len = bytes.len(), "ARI websocket sent a binary message; ignored");
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame
                                .map(|f| format!(" (code {}, {:?})", u16::from(f.code), f.reason.as_str()))
                                .unwrap_or_default();
                            return Some(format!("closed by Asterisk{why}"));
                        }
                        // Pings are answered by tungstenite on the next read.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    }
                }
            }
        }
    }

    /// Types and broadcasts one message. Returns a reason to drop the link
    /// (only for `ApplicationReplaced` of our application).
    fn handle_text(&self, text: &str) -> Option<String> {
        let event = match parse_event(text) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, message = %excerpt(text, 200), "ARI websocket message ignored");
                return None;
            }
        };
        let replaced = event.event_type() == "ApplicationReplaced" && event.application().is_none_or(|a| a == self.app);
        // No subscriber is fine: the events are only lost for nobody.
        let _ = self.events.send(Arc::new(event));
        replaced.then(|| {
            format!(
                "another websocket took over application {:?} (ApplicationReplaced)",
                self.app
            )
        })
    }
}

/// At most `max` bytes of `text` (on a char boundary), for logs.
fn excerpt(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// TLS for `wss://`, with the webpki root certificates (the ones reqwest
/// uses for the REST calls, so both halves trust the same servers).
async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Box<dyn std::error::Error + Send + Sync>> {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    Ok(connector.connect(name, tcp).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("abc", 10), "abc");
        assert_eq!(excerpt("ééé", 3), "é");
    }
}
