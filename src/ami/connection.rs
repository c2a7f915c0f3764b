//! The AMI connection actor: the only code that touches the socket.
//!
//! One task runs [`Actor::run`]: connect, read the greeting, log in, then serve the session
//! (write actions, read responses and events, ping when idle) until the link dies, then wait
//! a backoff delay and start again. Everything the session owns (pending actions, the framer,
//! the output buffer) lives in this one task, so there is no lock; callers reach it through
//! an mpsc of [`Request`]s and get their answer on a oneshot.
//!
//! The session loop is one `select!` over cancel-safe operations only (`read`, `write_buf`,
//! `recv`, a timer): reading never waits for a write to finish and the other way round, so a
//! server that stops reading cannot block the delivery of its events, and the reverse.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{with_action_id, AmiClientOptions, AmiError, AmiReply, LinkState, Request, STATUS_COMPONENT};
use super::frame::{AmiFramer, AmiMessage, Frame, FrameError, MessageKind};
use crate::api::status::{Health, StatusRegistry};
use crate::config::AmiConfig;

/// The `Message` of the `Response: Error` Asterisk sends for a wrong user or secret.
const AUTH_FAILED: &str = "Authentication failed";

/// Size of one socket read.
const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct Actor {
    config: AmiConfig,
    options: AmiClientOptions,
    status: Arc<StatusRegistry>,
    shutdown: CancellationToken,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<Arc<AmiMessage>>,
    link: watch::Sender<LinkState>,
    next_id: Arc<AtomicU64>,
    sessions: u64,
}

/// Why a connection attempt did not end logged in.
#[derive(Debug)]
enum ConnectError {
    Io(std::io::Error),
    Timeout(&'static str),
    Closed(&'static str),
    Protocol(FrameError),
    AuthFailed,
    LoginRejected(String),
    Shutdown,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Io(e) => write!(f, "cannot connect: {e}"),
            ConnectError::Timeout(stage) => write!(f, "timeout waiting for {stage}"),
            ConnectError::Closed(stage) => write!(f, "connection closed by Asterisk before {stage}"),
            ConnectError::Protocol(e) => write!(f, "protocol error: {e}"),
            ConnectError::AuthFailed => f.write_str("authentication failed"),
            ConnectError::LoginRejected(m) => write!(f, "login refused: {m}"),
            ConnectError::Shutdown => f.write_str("shut down"),
        }
    }
}

/// How a logged-in session ended.
enum SessionEnd {
    /// The shutdown token was cancelled.
    Shutdown,
    /// Every [`super::AmiClient`] handle is gone: nobody can send actions any more.
    HandlesGone,
    /// The link is dead; the reason goes to the log, the status and the link state.
    Lost(String),
}

/// A logged-in connection, handed from the login to the session loop. The framer may
/// already hold bytes that followed the login response.
struct Connected {
    stream: TcpStream,
    framer: AmiFramer,
    banner: String,
}

/// An action waiting for its answer.
struct Pending {
    /// `None` for the keep-alive ping, which nobody awaits.
    reply: Option<oneshot::Sender<Result<AmiReply, AmiError>>>,
    deadline: Instant,
    timeout: Duration,
    /// Set once `Response: Success` with `EventList: start` arrived.
    list_response: Option<AmiMessage>,
    events: Vec<AmiMessage>,
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: AmiConfig,
        options: AmiClientOptions,
        status: Arc<StatusRegistry>,
        shutdown: CancellationToken,
        requests: mpsc::Receiver<Request>,
        events: broadcast::Sender<Arc<AmiMessage>>,
        link: watch::Sender<LinkState>,
        next_id: Arc<AtomicU64>,
    ) -> Self {
        Self {
            config,
            options,
            status,
            shutdown,
            requests,
            events,
            link,
            next_id,
            sessions: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        self.status
            .set(STATUS_COMPONENT, Health::Fail, Some("connecting".into()));
        let mut attempt: u32 = 0;
        let mut ever_connected = false;
        loop {
            let delay = match self.connect().await {
                Ok(conn) => {
                    self.sessions += 1;
                    let since = Instant::now();
                    self.link.send_replace(LinkState::Connected {
                        since: since.into_std(),
                        session: self.sessions,
                    });
                    self.status.set(STATUS_COMPONENT, Health::Ok, None);
                    if ever_connected {
                        tracing::info!(addr = %self.config.addr, user = %self.config.user, banner = %conn.banner,
                            "AMI link restored, logged in again");
                    } else {
                        tracing::info!(addr = %self.config.addr, user = %self.config.user, banner = %conn.banner,
                            "AMI connected and logged in");
                    }
                    ever_connected = true;
                    match self.session(conn).await {
                        SessionEnd::Shutdown | SessionEnd::HandlesGone => break,
                        SessionEnd::Lost(reason) => {
                            tracing::warn!(addr = %self.config.addr, %reason, "AMI link lost; reconnecting");
                            self.set_down(&reason);
                        }
                    }
                    if since.elapsed() >= self.options.backoff.reset_after {
                        attempt = 0;
                    }
                    let d = self.options.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    d
                }
                Err(ConnectError::Shutdown) => break,
                Err(ConnectError::AuthFailed) => {
                    // Not something a retry soon will fix, but an operator may correct the
                    // secret on the Asterisk side: retry slowly, forever.
                    tracing::error!(addr = %self.config.addr, user = %self.config.user,
                        "AMI login refused: authentication failed for user {:?}; check the AMI user and secret \
                         (ACCENTD_AMI_USER / ACCENTD_AMI_PASSWORD) against manager.conf", self.config.user);
                    self.set_down("authentication failed");
                    self.options.backoff.max_delay()
                }
                Err(err) => {
                    let reason = err.to_string();
                    tracing::warn!(addr = %self.config.addr, %reason, attempt, "AMI connection failed; will retry");
                    self.set_down(&reason);
                    let d = self.options.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    d
                }
            };
            if !self.wait(delay).await {
                break;
            }
        }
        self.link.send_replace(LinkState::Disconnected {
            reason: "shut down".into(),
        });
        // Refuse what is still queued; dropping `self` closes the watch, which ends
        // `AmiClient::stopped`.
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            let _ = req.reply.send(Err(AmiError::NotConnected));
        }
        tracing::debug!(addr = %self.config.addr, "AMI client stopped");
    }

    fn set_down(&self, reason: &str) {
        self.link
            .send_replace(LinkState::Disconnected { reason: reason.into() });
        self.status
            .set(STATUS_COMPONENT, Health::Fail, Some(reason.to_string()));
    }

    /// Sleeps `delay` while answering requests with `NotConnected`. False on shutdown.
    async fn wait(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                _ = &mut sleep => return true,
                req = self.requests.recv() => match req {
                    Some(req) => { let _ = req.reply.send(Err(AmiError::NotConnected)); }
                    None => return false,
                },
            }
        }
    }

    /// Connects and logs in, bounded by the timeouts, abandoned on shutdown.
    async fn connect(&mut self) -> Result<Connected, ConnectError> {
        let shutdown = self.shutdown.clone();
        tokio::select! {
            _ = shutdown.cancelled() => Err(ConnectError::Shutdown),
            r = self.connect_inner() => r,
        }
    }

    async fn connect_inner(&self) -> Result<Connected, ConnectError> {
        let addr = self.config.addr.as_str();
        let stream = tokio::time::timeout(self.options.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout("the TCP connection"))?
            .map_err(ConnectError::Io)?;
        let _ = stream.set_nodelay(true);
        let mut conn = Connected {
            stream,
            framer: AmiFramer::new(self.options.limits),
            banner: String::new(),
        };
        let deadline = Instant::now() + self.options.action_timeout;
        let mut buf = vec![0u8; READ_CHUNK];

        // The greeting. Asterisk always sends it first; a server that starts with a message
        // is tolerated (the message is kept for the login step).
        let first = read_frame(&mut conn, &mut buf, deadline, "the AMI greeting").await?;
        let early = match first {
            Frame::Greeting(banner) => {
                if !banner.starts_with("Asterisk Call Manager/") {
                    tracing::warn!(%banner, "unexpected AMI greeting; trying to log in anyway");
                }
                conn.banner = banner;
                None
            }
            Frame::Message(msg) => Some(msg),
        };

        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Same headers, same order as the recorded client (ami-sent.raw). The secret is only
        // ever written to the socket, never logged.
        let login = AmiMessage::new()
            .with("Action", "Login")
            .with("Username", self.config.user.as_str())
            .with("Secret", self.config.password.as_str())
            .with("Events", "on");
        let (login, id) = with_action_id(login, n).map_err(|e| ConnectError::LoginRejected(e.to_string()))?;
        let bytes = login.to_bytes();
        tokio::time::timeout_at(deadline, conn.stream.write_all(&bytes))
            .await
            .map_err(|_| ConnectError::Timeout("the login to be written"))?
            .map_err(ConnectError::Io)?;

        let mut early = early;
        loop {
            let msg = match early.take() {
                Some(m) => m,
                None => match read_frame(&mut conn, &mut buf, deadline, "the login response").await? {
                    Frame::Message(m) => m,
                    Frame::Greeting(_) => continue,
                },
            };
            if msg.kind() != MessageKind::Response || msg.action_id() != Some(id.as_str()) {
                tracing::debug!(kind = ?msg.kind(), "AMI message before the login response ignored");
                continue;
            }
            return match msg.response() {
                Some(r) if r.eq_ignore_ascii_case("Success") => Ok(conn),
                _ => {
                    let message = msg.get("Message").unwrap_or("").to_string();
                    if message.eq_ignore_ascii_case(AUTH_FAILED) {
                        Err(ConnectError::AuthFailed)
                    } else {
                        Err(ConnectError::LoginRejected(message))
                    }
                }
            };
        }
    }

    /// Serves one logged-in connection until it ends.
    async fn session(&mut self, conn: Connected) -> SessionEnd {
        let Connected {
            mut stream, mut framer, ..
        } = conn;
        let (mut reader, mut writer) = stream.split();
        let mut state = Session {
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            out: Vec::new(),
            last_rx: Instant::now(),
            ping: None,
        };
        let mut buf = vec![0u8; READ_CHUNK];
        // Bytes that came with the login response.
        let end = 'run: {
            if let Err(e) = self.drain(&mut framer, &mut state) {
                break 'run SessionEnd::Lost(e);
            }
            loop {
                let wake = state.next_wake(self.options.ping_interval);
                tokio::select! {
                    _ = self.shutdown.cancelled() => break 'run SessionEnd::Shutdown,
                    r = reader.read(&mut buf) => match r {
                        Ok(0) => {
                            let reason = match framer.finish() {
                                Err(e) => {
                                    tracing::error!(error = %e, "AMI stream cut inside a message");
                                    format!("connection closed by Asterisk mid-message: {e}")
                                }
                                Ok(_) => "connection closed by Asterisk".to_string(),
                            };
                            break 'run SessionEnd::Lost(reason);
                        }
                        Ok(n) => {
                            state.last_rx = Instant::now();
                            framer.push(&buf[..n]);
                            if let Err(e) = self.drain(&mut framer, &mut state) {
                                break 'run SessionEnd::Lost(e);
                            }
                        }
                        Err(e) => break 'run SessionEnd::Lost(format!("read error: {e}")),
                    },
                    w = writer.write(&state.out), if !state.out.is_empty() => match w {
                        Ok(0) => break 'run SessionEnd::Lost("connection closed while writing".into()),
                        Ok(n) => { state.out.drain(..n); }
                        Err(e) => break 'run SessionEnd::Lost(format!("write error: {e}")),
                    },
                    req = self.requests.recv() => match req {
                        Some(req) => state.enqueue(req, Instant::now()),
                        None => break 'run SessionEnd::HandlesGone,
                    },
                    _ = tokio::time::sleep_until(wake) => {
                        if let Err(reason) = self.tick(&mut state) {
                            break 'run SessionEnd::Lost(reason);
                        }
                    }
                }
            }
        };
        if matches!(end, SessionEnd::Shutdown) {
            // Polite goodbye, bounded: Asterisk logs a clean logoff instead of a lost client.
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            if let Ok((logoff, _)) = with_action_id(AmiMessage::new().with("Action", "Logoff"), n) {
                let mut bytes = std::mem::take(&mut state.out);
                bytes.extend_from_slice(&logoff.to_bytes());
                let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&bytes)).await;
                let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
            }
        }
        let error = match end {
            SessionEnd::Lost(_) => AmiError::ConnectionLost,
            _ => AmiError::NotConnected,
        };
        for (_, p) in state.pending.drain() {
            if let Some(tx) = p.reply {
                let _ = tx.send(Err(error.clone()));
            }
        }
        end
    }

    /// Handles every complete frame in the framer. A framing error means a message was
    /// lost (maybe a response, maybe an event that live state needed): the link is dropped
    /// so that the reconnect makes every consumer resync.
    fn drain(&self, framer: &mut AmiFramer, state: &mut Session) -> Result<(), String> {
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(msg))) => self.dispatch(msg, state),
                Ok(Some(Frame::Greeting(g))) => tracing::debug!(greeting = %g, "second AMI greeting ignored"),
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::error!(error = %e, "bad data on the AMI link; reconnecting");
                    return Err(format!("protocol error: {e}"));
                }
            }
        }
    }

    fn dispatch(&self, msg: AmiMessage, state: &mut Session) {
        match msg.kind() {
            MessageKind::Event => {
                let msg = Arc::new(msg);
                if let Some(id) = msg.action_id() {
                    if let Some(p) = state.pending.get_mut(id) {
                        if p.list_response.is_some() {
                            p.events.push((*msg).clone());
                            if msg.is_event_list_complete() {
                                let id = id.to_string();
                                state.complete_list(&id);
                            }
                        }
                    }
                }
                // No subscriber is fine: the events are simply not wanted yet.
                let _ = self.events.send(msg);
            }
            MessageKind::Response => {
                let Some(id) = msg.action_id().map(str::to_owned) else {
                    tracing::debug!(response = ?msg.response(), "AMI response without ActionID ignored");
                    return;
                };
                if state.ping.as_deref() == Some(id.as_str()) {
                    state.ping = None;
                }
                state.on_response(&id, msg);
            }
            other => tracing::debug!(kind = ?other, "AMI message that is neither response nor event ignored"),
        }
    }

    /// Timer: expired actions, keep-alive ping.
    fn tick(&self, state: &mut Session) -> Result<(), String> {
        let now = Instant::now();
        while state.deadlines.first().is_some_and(|(d, _)| *d <= now) {
            let Some((_, id)) = state.deadlines.pop_first() else {
                break;
            };
            if let Some(p) = state.pending.remove(&id) {
                match p.reply {
                    Some(tx) => {
                        let _ = tx.send(Err(AmiError::Timeout(p.timeout)));
                    }
                    None => return Err(format!("no answer to Ping within {:?}", p.timeout)),
                }
            }
        }
        if state.ping.is_none() && now >= state.last_rx + self.options.ping_interval {
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            if let Ok((ping, id)) = with_action_id(AmiMessage::new().with("Action", "Ping"), n) {
                tracing::trace!(action_id = %id, "AMI idle, sending keep-alive Ping");
                ping.write_to(&mut state.out);
                let deadline = now + self.options.action_timeout;
                state.deadlines.insert((deadline, id.clone()));
                state.pending.insert(
                    id.clone(),
                    Pending {
                        reply: None,
                        deadline,
                        timeout: self.options.action_timeout,
                        list_response: None,
                        events: Vec::new(),
                    },
                );
                state.ping = Some(id);
            }
        }
        Ok(())
    }
}

/// Per-connection state of the session loop.
struct Session {
    pending: HashMap<String, Pending>,
    /// Deadlines of `pending`, ordered, so the timer finds the next one in O(log n).
    deadlines: BTreeSet<(Instant, String)>,
    /// Bytes not yet written.
    out: Vec<u8>,
    last_rx: Instant,
    /// ActionID of the keep-alive ping in flight.
    ping: Option<String>,
}

impl Session {
    fn next_wake(&self, ping_interval: Duration) -> Instant {
        let ping_due = if self.ping.is_none() {
            self.last_rx + ping_interval
        } else {
            // The ping's own deadline is in `deadlines`.
            Instant::now() + Duration::from_secs(3600)
        };
        match self.deadlines.first() {
            Some((d, _)) => (*d).min(ping_due),
            None => ping_due,
        }
    }

    fn enqueue(&mut self, req: Request, now: Instant) {
        if req.reply.is_closed() {
            return; // The caller gave up while the request was queued.
        }
        req.action.write_to(&mut self.out);
        let deadline = now + req.timeout;
        self.deadlines.insert((deadline, req.action_id.clone()));
        self.pending.insert(
            req.action_id,
            Pending {
                reply: Some(req.reply),
                deadline,
                timeout: req.timeout,
                list_response: None,
                events: Vec::new(),
            },
        );
    }

    fn remove(&mut self, id: &str) -> Option<Pending> {
        let p = self.pending.remove(id)?;
        self.deadlines.remove(&(p.deadline, id.to_string()));
        Some(p)
    }

    fn on_response(&mut self, id: &str, msg: AmiMessage) {
        let Some(p) = self.pending.get_mut(id) else {
            tracing::debug!(action_id = %id, "AMI response to no waiting action (late or foreign) ignored");
            return;
        };
        let failed = msg.response().is_some_and(|r| r.eq_ignore_ascii_case("Error"));
        if !failed && msg.is_event_list_start() {
            p.list_response = Some(msg);
            return;
        }
        let Some(p) = self.remove(id) else { return };
        let result = if failed {
            Err(AmiError::ActionFailed {
                message: error_message(&msg),
            })
        } else {
            Ok(AmiReply {
                action_id: id.to_string(),
                response: msg,
                events: Vec::new(),
            })
        };
        if let Some(tx) = p.reply {
            let _ = tx.send(result);
        }
    }

    fn complete_list(&mut self, id: &str) {
        let Some(p) = self.remove(id) else { return };
        let (Some(tx), Some(response)) = (p.reply, p.list_response) else {
            return;
        };
        let _ = tx.send(Ok(AmiReply {
            action_id: id.to_string(),
            response,
            events: p.events,
        }));
    }
}

/// The text of a `Response: Error`: its `Message`, followed by any command output (an
/// Asterisk 22 `Command` that fails says what went wrong in its `Output` lines).
fn error_message(msg: &AmiMessage) -> String {
    let mut text = msg.get("Message").unwrap_or("").to_string();
    let output: Vec<&str> = msg.output().collect();
    if !output.is_empty() {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&output.join(" / "));
    }
    if text.is_empty() {
        text = "error without message".into();
    }
    text
}

/// Reads until the framer yields a frame, by `deadline`.
async fn read_frame(
    conn: &mut Connected,
    buf: &mut [u8],
    deadline: Instant,
    what: &'static str,
) -> Result<Frame, ConnectError> {
    loop {
        match conn.framer.next_frame() {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(ConnectError::Protocol(e)),
        }
        let n = tokio::time::timeout_at(deadline, conn.stream.read(buf))
            .await
            .map_err(|_| ConnectError::Timeout(what))?
            .map_err(ConnectError::Io)?;
        if n == 0 {
            return Err(match conn.framer.finish() {
                Err(e) => ConnectError::Protocol(e),
                Ok(_) => ConnectError::Closed(what),
            });
        }
        conn.framer.push(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_joins_output() {
        let m = AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "Command output follows")
            .with("Output", "No such command 'foo'");
        assert_eq!(error_message(&m), "Command output follows: No such command 'foo'");
        let m = AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "Extension does not exist.");
        assert_eq!(error_message(&m), "Extension does not exist.");
        assert_eq!(
            error_message(&AmiMessage::new().with("Response", "Error")),
            "error without message"
        );
    }
}
