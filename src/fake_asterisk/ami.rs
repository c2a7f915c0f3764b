//! A fake AMI server that replays one recorded session of a real Asterisk 22.
//!
//! # What it does, and where each behaviour comes from
//!
//! [`AmiRecording`] splits a scenario's `ami.raw` (what Asterisk sent) using `ami-sent.raw`
//! (what the recorder sent):
//!
//! * the **greeting** line;
//! * one **exchange** per recorded action: the action, then every message of `ami.raw` that
//!   carried its `ActionID` (the response, the events of an event list, an
//!   `OriginateResponse`);
//! * the **login events**: the `FullyBooted` and `SuccessfulAuth` events right after the
//!   Login response. Asterisk sends them to each session that logs in, so the fake sends
//!   them after every successful login;
//! * the **timeline**: every other event (no `ActionID`), in recorded order. The timeline
//!   is the fake Asterisk's clock: it is shared by all connections, and a replayed event goes
//!   to every logged-in connection at that moment, like a real Asterisk where events sent
//!   while a client is away are lost for it.
//!
//! [`FakeAmi`] then serves clients on `127.0.0.1:<random port>`:
//!
//! * sends the recorded greeting; checks `Login` against [`FakeAmiOptions::user`] and
//!   [`FakeAmiOptions::secret`] and answers with the recorded success response, or with
//!   `Response: Error` / `Message: Authentication failed` and closes the connection (what
//!   Asterisk's manager does; no recording has a failed login);
//! * answers `CoreShowChannels`, `DeviceStateList` and `ExtensionStateList` (what accentd
//!   resyncs with after a reconnection) from the state the replayed events describe, like a
//!   real Asterisk at that point of the timeline: the live channels, the current device and
//!   hint states, in the recorded framing ([`AmiModel`], updated
//!   under the same lock as the replay cursor);
//! * answers any other action with the replies of the recorded exchange of the same action
//!   name whose other headers match best, `ActionID` rewritten to the client's. When an
//!   action was recorded several times with the same headers, the fake picks the last one
//!   recorded at or before the current timeline position (the first one if none), so the
//!   answer is the one closest to the state the replayed events describe;
//! * answers `Ping` like the recording (`Ping: Pong` and a `Timestamp`), also in scenarios
//!   that never pinged; `Logoff` with the recorded `Response: Goodbye`, then closes;
//! * answers an action it has no recording for with the `Response: Error` Asterisk uses for
//!   an unknown action (recorded in `14-ami-actions`): `Invalid/unknown command: <name>. Use
//!   Action: ListCommands to show available commands.`; an action before login gets
//!   `Permission denied`, a message without `Action` gets `Missing action in request`
//!   (Asterisk's manager texts);
//! * replays the timeline all at once after the first login ([`Replay::AfterLogin`]) or step
//!   by step under test control ([`Replay::Manual`], [`FakeAmi::replay_next`]);
//! * misbehaves on demand: [`FakeAmi::drop_connections`], [`FakeAmi::pause_accept`]
//!   (connections refused), [`FakeAmi::stall`] (actions read but never answered),
//!   [`FakeAmi::send_raw`] (any bytes, garbage included), [`FakeAmi::respond_with`]
//!   (a scripted answer, which wins over the model and the recording).
//!
//! Garbage from a client is logged and skipped (the framer resynchronizes at the next blank
//! line); nothing a client sends can make it panic.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::ami_model::AmiModel;
use super::scenario::Scenario;
use crate::ami::frame::{AmiFramer, AmiMessage, Frame, FrameLimits, MessageKind};

/// Asterisk's answer to an unknown action (recorded in `14-ami-actions`, `bad-1`).
fn unknown_action_message(name: &str) -> String {
    format!("Invalid/unknown command: {name}. Use Action: ListCommands to show available commands.")
}

/// Bound of [`FakeAmi::received_actions`] (a demo may run for days).
const MAX_RECEIVED: usize = 10_000;

/// Events Asterisk sends to each session right after its login.
const LOGIN_EVENTS: [&str; 2] = ["FullyBooted", "SuccessfulAuth"];

/// One recorded action and everything Asterisk sent with its `ActionID`.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub action: AmiMessage,
    pub action_id: String,
    /// The response first, then the events carrying the same `ActionID`, in recorded order.
    pub replies: Vec<AmiMessage>,
    /// How many timeline events Asterisk had sent before this response.
    pub timeline_pos: usize,
}

impl Exchange {
    fn name(&self) -> &str {
        self.action.action().unwrap_or("")
    }
}

/// One recorded AMI session, split into greeting, exchanges, login events and timeline.
#[derive(Debug, Clone)]
pub struct AmiRecording {
    greeting: String,
    login_response: AmiMessage,
    logoff_response: AmiMessage,
    login_events: Vec<AmiMessage>,
    timeline: Vec<AmiMessage>,
    exchanges: Vec<Exchange>,
}

impl AmiRecording {
    /// Reads `ami.raw` and `ami-sent.raw` of a scenario (not the `.gz` ones: decompress them
    /// and use [`from_bytes`](Self::from_bytes)).
    pub fn load(scenario: &Scenario) -> io::Result<AmiRecording> {
        let missing = |f: &str| io::Error::new(io::ErrorKind::NotFound, format!("{}: no {f}", scenario.name));
        let raw = scenario.read("ami.raw")?.ok_or_else(|| missing("ami.raw"))?;
        let sent = scenario.read("ami-sent.raw")?.ok_or_else(|| missing("ami-sent.raw"))?;
        Self::from_bytes(&raw, &sent)
    }

    /// Builds the recording from the bytes Asterisk sent (`raw`) and the client sent (`sent`).
    pub fn from_bytes(raw: &[u8], sent: &[u8]) -> io::Result<AmiRecording> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let mut framer = AmiFramer::new(FrameLimits::default());
        let mut greeting = None;
        let mut messages = Vec::new();
        for frame in crate::ami::frame_all(&mut framer, raw) {
            match frame.map_err(|e| invalid(format!("ami.raw: {e}")))? {
                Frame::Greeting(g) => greeting = Some(g),
                Frame::Message(m) => messages.push(m),
            }
        }
        let mut framer = AmiFramer::without_greeting(FrameLimits::default());
        let mut exchanges = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for frame in crate::ami::frame_all(&mut framer, sent) {
            if let Frame::Message(action) = frame.map_err(|e| invalid(format!("ami-sent.raw: {e}")))? {
                let Some(id) = action.action_id().map(str::to_owned) else {
                    continue;
                };
                if action.action().is_none() {
                    continue;
                }
                by_id.insert(id.clone(), exchanges.len());
                exchanges.push(Exchange {
                    action,
                    action_id: id,
                    replies: Vec::new(),
                    timeline_pos: 0,
                });
            }
        }

        let mut timeline = Vec::new();
        let mut login_events = Vec::new();
        let mut after_login = false;
        let mut login_response = None;
        let mut logoff_response = None;
        for msg in messages {
            let exchange = msg.action_id().and_then(|id| by_id.get(id).copied());
            if let Some(i) = exchange {
                after_login = false;
                let ex = &mut exchanges[i];
                if ex.replies.is_empty() {
                    ex.timeline_pos = timeline.len();
                }
                let name = ex.name();
                if msg.kind() == MessageKind::Response {
                    if name.eq_ignore_ascii_case("Login") && login_response.is_none() {
                        login_response = Some(msg.clone());
                        after_login = true;
                    } else if name.eq_ignore_ascii_case("Logoff") && logoff_response.is_none() {
                        logoff_response = Some(msg.clone());
                    }
                }
                ex.replies.push(msg);
                continue;
            }
            if msg.kind() != MessageKind::Event {
                after_login = false;
                continue;
            }
            if after_login && msg.event().is_some_and(|e| LOGIN_EVENTS.contains(&e)) {
                login_events.push(msg);
            } else {
                after_login = false;
                timeline.push(msg);
            }
        }
        Ok(AmiRecording {
            greeting: greeting.unwrap_or_else(|| "Asterisk Call Manager/11.0.0".into()),
            login_response: login_response.unwrap_or_else(|| {
                AmiMessage::new()
                    .with("Response", "Success")
                    .with("ActionID", "")
                    .with("Message", "Authentication accepted")
            }),
            logoff_response: logoff_response.unwrap_or_else(|| {
                AmiMessage::new()
                    .with("Response", "Goodbye")
                    .with("ActionID", "")
                    .with("Message", "Thanks for all the fish.")
            }),
            login_events,
            timeline,
            exchanges,
        })
    }

    /// The banner line, without line ending.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Events sent to each session after its login.
    pub fn login_events(&self) -> &[AmiMessage] {
        &self.login_events
    }

    /// The other unsolicited events, in recorded order.
    pub fn timeline(&self) -> &[AmiMessage] {
        &self.timeline
    }

    /// Every event without `ActionID` in `ami.raw`, in order: what a client logged in with
    /// `Events: on` receives when the whole timeline is replayed and it sends no action.
    pub fn unsolicited_events(&self) -> impl Iterator<Item = &AmiMessage> + '_ {
        self.login_events.iter().chain(self.timeline.iter())
    }

    /// The recorded actions with their replies.
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// The exchange recorded with `action_id` (as in `ami-sent.raw`).
    pub fn exchange(&self, action_id: &str) -> Option<&Exchange> {
        self.exchanges.iter().find(|e| e.action_id == action_id)
    }

    /// The recorded exchange that answers `action` when `cursor` timeline events were
    /// replayed (see the module docs). Login and Logoff are not looked up here.
    pub fn find(&self, action: &AmiMessage, cursor: usize) -> Option<&Exchange> {
        let name = action.action()?;
        let wanted: Vec<(&str, &str)> = action
            .headers()
            .skip(1)
            .filter(|(k, _)| !k.eq_ignore_ascii_case("ActionID"))
            .collect();
        let score = |ex: &Exchange| {
            wanted
                .iter()
                .filter(|(k, v)| ex.action.get_all(k).any(|rv| rv == *v))
                .count()
        };
        let candidates: Vec<(&Exchange, usize)> = self
            .exchanges
            .iter()
            .filter(|ex| ex.name().eq_ignore_ascii_case(name) && !ex.replies.is_empty())
            .map(|ex| (ex, score(ex)))
            .collect();
        let best = candidates.iter().map(|(_, s)| *s).max()?;
        let best: Vec<&Exchange> = candidates
            .into_iter()
            .filter(|(_, s)| *s == best)
            .map(|(ex, _)| ex)
            .collect();
        best.iter()
            .rev()
            .find(|ex| ex.timeline_pos <= cursor)
            .or_else(|| best.first())
            .copied()
    }
}

/// When the timeline is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replay {
    /// All of it, right after the first successful login.
    #[default]
    AfterLogin,
    /// Only when the test calls [`FakeAmi::replay_next`] / [`FakeAmi::replay_all`].
    Manual,
}

/// How the fake behaves.
#[derive(Clone)]
pub struct FakeAmiOptions {
    /// The AMI user (`manager.conf` of the recordings: `accent`).
    pub user: String,
    /// Its secret (recordings: `accent`).
    pub secret: String,
    pub replay: Replay,
    /// Framing limits for what clients send.
    pub limits: FrameLimits,
}

impl Default for FakeAmiOptions {
    fn default() -> Self {
        Self {
            user: "accent".into(),
            secret: "accent".into(),
            replay: Replay::default(),
            limits: FrameLimits::default(),
        }
    }
}

impl std::fmt::Debug for FakeAmiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAmiOptions")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .field("replay", &self.replay)
            .finish()
    }
}

/// What the test side tells a connection task.
enum ConnCmd {
    Write(Bytes),
    Close,
}

struct Conn {
    tx: mpsc::UnboundedSender<ConnCmd>,
    logged_in: bool,
    events: bool,
}

#[derive(Default)]
struct State {
    cursor: usize,
    /// The state the replayed events describe, for the list actions (moves with `cursor`).
    model: AmiModel,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    overrides: HashMap<String, Vec<AmiMessage>>,
    received: Vec<AmiMessage>,
    /// `(user, secret)` accepted now; starts as the options' pair.
    credentials: (String, String),
}

struct Shared {
    recording: AmiRecording,
    options: FakeAmiOptions,
    state: Mutex<State>,
    stalled: AtomicBool,
    paused: watch::Sender<bool>,
    listening: watch::Sender<bool>,
    logins: AtomicUsize,
    failed_logins: AtomicUsize,
    accepted: AtomicUsize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock must not take the fake down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn replay(&self, n: usize) -> usize {
        let mut st = self.state();
        let start = st.cursor;
        let end = start.saturating_add(n).min(self.recording.timeline.len());
        if end <= start {
            return 0;
        }
        let mut bytes = Vec::new();
        for msg in &self.recording.timeline[start..end] {
            msg.write_to(&mut bytes);
            st.model.apply(msg);
        }
        st.cursor = end;
        let bytes = Bytes::from(bytes);
        for conn in st.conns.values() {
            if conn.logged_in && conn.events {
                let _ = conn.tx.send(ConnCmd::Write(bytes.clone()));
            }
        }
        end - start
    }

    fn broadcast(&self, cmd: impl Fn() -> ConnCmd) -> usize {
        let st = self.state();
        st.conns.values().filter(|c| c.tx.send(cmd()).is_ok()).count()
    }
}

/// A running fake AMI server. Dropping it stops it and closes every connection.
pub struct FakeAmi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for FakeAmi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAmi").field("addr", &self.addr).finish()
    }
}

impl Drop for FakeAmi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl FakeAmi {
    /// Loads the scenario's AMI recording and listens on `127.0.0.1:0`.
    pub async fn start(scenario: &Scenario, options: FakeAmiOptions) -> io::Result<FakeAmi> {
        Self::start_with(AmiRecording::load(scenario)?, options).await
    }

    /// Serves an already loaded recording (scenario 15 is gzip-compressed).
    pub async fn start_with(recording: AmiRecording, options: FakeAmiOptions) -> io::Result<FakeAmi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let credentials = (options.user.clone(), options.secret.clone());
        let model = AmiModel::seeded(&recording);
        let shared = Arc::new(Shared {
            recording,
            options,
            state: Mutex::new(State {
                credentials,
                model,
                ..State::default()
            }),
            stalled: AtomicBool::new(false),
            paused: watch::channel(false).0,
            listening: watch::channel(true).0,
            logins: AtomicUsize::new(0),
            failed_logins: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(shared.clone(), listener, addr, shutdown.clone()));
        Ok(FakeAmi { addr, shared, shutdown })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The recording being served.
    pub fn recording(&self) -> &AmiRecording {
        &self.shared.recording
    }

    /// Sends the next `n` timeline events to every logged-in connection; returns how many
    /// there were (fewer at the end of the timeline).
    pub fn replay_next(&self, n: usize) -> usize {
        self.shared.replay(n)
    }

    /// Sends the rest of the timeline.
    pub fn replay_all(&self) -> usize {
        self.shared.replay(usize::MAX)
    }

    /// Replays the timeline up to where the response to the recorded action `action_id` was
    /// sent (so that an action then sees the state Asterisk was in when it answered that one).
    pub fn replay_until(&self, action_id: &str) -> usize {
        let Some(pos) = self.shared.recording.exchange(action_id).map(|e| e.timeline_pos) else {
            return 0;
        };
        let cursor = self.replayed();
        self.shared.replay(pos.saturating_sub(cursor))
    }

    /// How many timeline events were replayed so far.
    pub fn replayed(&self) -> usize {
        self.shared.state().cursor
    }

    /// Timeline events not replayed yet.
    pub fn remaining(&self) -> usize {
        self.shared.recording.timeline.len() - self.replayed()
    }

    /// Closes every client connection (after what was already queued for it).
    /// Returns how many were open.
    pub fn drop_connections(&self) -> usize {
        self.shared.broadcast(|| ConnCmd::Close)
    }

    /// Writes `bytes` verbatim to every open connection, logged in or not.
    pub fn send_raw(&self, bytes: &[u8]) -> usize {
        let bytes = Bytes::copy_from_slice(bytes);
        self.shared.broadcast(|| ConnCmd::Write(bytes.clone()))
    }

    /// Stops listening: new connections are refused (the port is closed) until
    /// [`resume_accept`](Self::resume_accept). Open connections stay.
    pub async fn pause_accept(&self) {
        self.shared.paused.send_replace(true);
        let mut listening = self.shared.listening.subscribe();
        let _ = listening.wait_for(|l| !*l).await;
    }

    /// Listens again on the same address.
    pub async fn resume_accept(&self) {
        self.shared.paused.send_replace(false);
        let mut listening = self.shared.listening.subscribe();
        let _ = listening.wait_for(|l| *l).await;
    }

    /// While stalled, actions (Login and Ping included) are read and never answered;
    /// replayed events still flow.
    pub fn stall(&self, stalled: bool) {
        self.shared.stalled.store(stalled, Ordering::SeqCst);
    }

    /// From now on, answer `action` (any case) with `replies` (`ActionID` rewritten) instead
    /// of the model or the recording; `None` goes back to them. Not for Login and Logoff.
    pub fn respond_with(&self, action: &str, replies: Option<Vec<AmiMessage>>) {
        let key = action.to_ascii_lowercase();
        let mut st = self.shared.state();
        match replies {
            Some(r) => {
                st.overrides.insert(key, r);
            }
            None => {
                st.overrides.remove(&key);
            }
        }
    }

    /// Changes the accepted user and secret (an operator fixing `manager.conf`).
    pub fn set_credentials(&self, user: &str, secret: &str) {
        self.shared.state().credentials = (user.to_string(), secret.to_string());
    }

    /// Every message clients sent, in arrival order (Login included, with its secret: this
    /// is test support).
    pub fn received_actions(&self) -> Vec<AmiMessage> {
        self.shared.state().received.clone()
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// Refused logins so far.
    pub fn failed_logins(&self) -> usize {
        self.shared.failed_logins.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.state().conns.len()
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, addr: SocketAddr, shutdown: CancellationToken) {
    let mut listener = Some(listener);
    let mut paused = shared.paused.subscribe();
    loop {
        if *paused.borrow_and_update() {
            if listener.take().is_some() {
                shared.listening.send_replace(false);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = paused.changed() => if r.is_err() { return },
            }
            continue;
        }
        let Some(l) = &listener else {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    listener = Some(l);
                    shared.listening.send_replace(true);
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "fake AMI cannot listen again yet");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    }
                }
            }
            continue;
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = paused.changed() => if r.is_err() { return },
            r = l.accept() => match r {
                Ok((stream, _peer)) => {
                    shared.accepted.fetch_add(1, Ordering::SeqCst);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let id = {
                        let mut st = shared.state();
                        st.next_conn += 1;
                        let id = st.next_conn;
                        st.conns.insert(id, Conn { tx, logged_in: false, events: false });
                        id
                    };
                    tokio::spawn(serve(shared.clone(), id, stream, rx, shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fake AMI accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// What to do after an action.
enum Flow {
    Continue,
    Close,
}

async fn serve(
    shared: Arc<Shared>,
    id: u64,
    mut stream: TcpStream,
    mut rx: mpsc::UnboundedReceiver<ConnCmd>,
    shutdown: CancellationToken,
) {
    let result = serve_inner(&shared, id, &mut stream, &mut rx, &shutdown).await;
    if let Err(e) = result {
        tracing::debug!(conn = id, error = %e, "fake AMI connection ended with an error");
    }
    shared.state().conns.remove(&id);
}

async fn serve_inner(
    shared: &Shared,
    id: u64,
    stream: &mut TcpStream,
    rx: &mut mpsc::UnboundedReceiver<ConnCmd>,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let (mut reader, mut writer) = stream.split();
    writer
        .write_all(format!("{}\r\n", shared.recording.greeting).as_bytes())
        .await?;
    let mut framer = AmiFramer::without_greeting(shared.options.limits);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            // Queued writes first: an event replayed before an action arrived goes out
            // before that action's response.
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            cmd = rx.recv() => match cmd {
                Some(ConnCmd::Write(bytes)) => writer.write_all(&bytes).await?,
                Some(ConnCmd::Close) | None => return Ok(()),
            },
            r = reader.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                framer.push(&buf[..n]);
                loop {
                    match framer.next_frame() {
                        Ok(Some(Frame::Message(msg))) => {
                            let (reply, flow) = handle(shared, id, msg);
                            if !reply.is_empty() {
                                writer.write_all(&reply).await?;
                            }
                            if let Flow::Close = flow {
                                let _ = writer.shutdown().await;
                                return Ok(());
                            }
                        }
                        Ok(Some(Frame::Greeting(_))) => {}
                        Ok(None) => break,
                        Err(e) => tracing::warn!(conn = id, error = %e, "fake AMI: bad input from client skipped"),
                    }
                }
            }
        }
    }
}

/// `msg` with its `ActionID` set to `id` (removed when the client sent none, as Asterisk
/// does), inserted after the first header when it had none.
fn with_action_id(msg: &AmiMessage, id: Option<&str>) -> AmiMessage {
    let mut out = AmiMessage::new();
    let had = msg.action_id().is_some();
    for (i, (k, v)) in msg.headers().enumerate() {
        if k.eq_ignore_ascii_case("ActionID") {
            if let Some(id) = id {
                out.push(k, id);
            }
            continue;
        }
        out.push(k, v);
        if i == 0 && !had {
            if let Some(id) = id {
                out.push("ActionID", id);
            }
        }
    }
    out
}

fn error_reply(id: Option<&str>, message: &str) -> AmiMessage {
    with_action_id(
        &AmiMessage::new().with("Response", "Error").with("Message", message),
        id,
    )
}

/// Answers one client message; returns the bytes to write and whether to close.
fn handle(shared: &Shared, conn: u64, msg: AmiMessage) -> (Vec<u8>, Flow) {
    let mut st = shared.state();
    if st.received.len() >= MAX_RECEIVED {
        st.received.drain(..MAX_RECEIVED / 2);
    }
    st.received.push(msg.clone());
    if shared.stalled.load(Ordering::SeqCst) {
        return (Vec::new(), Flow::Continue);
    }
    let id = msg.action_id();
    let mut out = Vec::new();
    let Some(name) = msg.action().filter(|n| !n.is_empty()) else {
        error_reply(id, "Missing action in request").write_to(&mut out);
        return (out, Flow::Continue);
    };
    let logged_in = st.conns.get(&conn).is_some_and(|c| c.logged_in);
    let rec = &shared.recording;
    if name.eq_ignore_ascii_case("Login") {
        let (user, secret) = &st.credentials;
        let ok = msg.get("Username") == Some(user.as_str()) && msg.get("Secret") == Some(secret.as_str());
        if !ok {
            shared.failed_logins.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(conn, user = ?msg.get("Username"), "fake AMI: login refused");
            error_reply(id, "Authentication failed").write_to(&mut out);
            return (out, Flow::Close);
        }
        let events = !msg.get("Events").is_some_and(|e| e.eq_ignore_ascii_case("off"));
        with_action_id(&rec.login_response, id).write_to(&mut out);
        if events {
            for e in &rec.login_events {
                e.write_to(&mut out);
            }
        }
        if let Some(c) = st.conns.get_mut(&conn) {
            c.logged_in = true;
            c.events = events;
        }
        let first = shared.logins.fetch_add(1, Ordering::SeqCst) == 0;
        if first && shared.options.replay == Replay::AfterLogin {
            // Queued behind this response (the connection writes its queue after it).
            drop(st);
            // The login response must be on the wire before the timeline: hand it to the
            // queue too, then the timeline.
            if let Some(c) = shared.state().conns.get(&conn) {
                let _ = c.tx.send(ConnCmd::Write(Bytes::from(std::mem::take(&mut out))));
            }
            shared.replay(usize::MAX);
        }
        return (out, Flow::Continue);
    }
    if name.eq_ignore_ascii_case("Logoff") {
        with_action_id(&rec.logoff_response, id).write_to(&mut out);
        return (out, Flow::Close);
    }
    if !logged_in {
        error_reply(id, "Permission denied").write_to(&mut out);
        return (out, Flow::Continue);
    }
    if let Some(replies) = st.overrides.get(&name.to_ascii_lowercase()) {
        for r in replies {
            with_action_id(r, id).write_to(&mut out);
        }
        return (out, Flow::Continue);
    }
    if let Some(replies) = st.model.answer(name) {
        for r in &replies {
            with_action_id(r, id).write_to(&mut out);
        }
        return (out, Flow::Continue);
    }
    if let Some(ex) = rec.find(&msg, st.cursor) {
        for r in &ex.replies {
            with_action_id(r, id).write_to(&mut out);
        }
        return (out, Flow::Continue);
    }
    if name.eq_ignore_ascii_case("Ping") {
        // The shape recorded in 14-ami-actions (ping-1), for scenarios that never pinged.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let pong = AmiMessage::new()
            .with("Response", "Success")
            .with("Ping", "Pong")
            .with("Timestamp", format!("{}.{:06}", now.as_secs(), now.subsec_micros()));
        with_action_id(&pong, id).write_to(&mut out);
        return (out, Flow::Continue);
    }
    error_reply(id, &unknown_action_message(name)).write_to(&mut out);
    (out, Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str) -> AmiRecording {
        AmiRecording::load(&Scenario::load(name).expect("scenario")).expect("recording")
    }

    #[test]
    fn scenario_14_splits_into_exchanges_and_timeline() {
        let r = rec("14");
        assert_eq!(r.greeting(), "Asterisk Call Manager/11.0.0");
        assert_eq!(r.exchanges().len(), 22);
        let names: Vec<_> = r.login_events().iter().filter_map(|e| e.event()).collect();
        assert_eq!(names, ["FullyBooted", "SuccessfulAuth"]);
        let csc = r.exchange("csc-busy").expect("csc-busy");
        assert_eq!(csc.replies.len(), 6);
        assert!(csc.replies[0].is_event_list_start());
        assert!(csc.replies[5].is_event_list_complete());
        let orig = r.exchange("orig-1").expect("orig-1");
        assert_eq!(orig.replies[1].event(), Some("OriginateResponse"));
        assert!(r.timeline().iter().all(|e| e.action_id().is_none()));
        assert!(r.exchange("csc-idle").expect("idle").timeline_pos < csc.timeline_pos);
    }

    #[test]
    fn find_picks_by_headers_and_timeline_position() {
        let r = rec("14");
        let csc = AmiMessage::new()
            .with("Action", "CoreShowChannels")
            .with("ActionID", "x");
        let idle = r.exchange("csc-idle").expect("idle");
        let busy = r.exchange("csc-busy").expect("busy");
        assert_eq!(r.find(&csc, 0).map(|e| e.action_id.as_str()), Some("csc-idle"));
        assert_eq!(
            r.find(&csc, busy.timeline_pos).map(|e| e.action_id.as_str()),
            Some("csc-busy")
        );
        assert_eq!(
            r.find(&csc, busy.timeline_pos - 1).map(|e| e.action_id.as_str()),
            Some("csc-idle"),
            "idle at {} busy at {}",
            idle.timeline_pos,
            busy.timeline_pos
        );
        let fail = AmiMessage::new()
            .with("Action", "originate")
            .with("Exten", "0000")
            .with("Channel", "Local/1001@caller/n");
        assert_eq!(r.find(&fail, 0).map(|e| e.action_id.as_str()), Some("orig-fail"));
        assert!(r.find(&AmiMessage::new().with("Action", "Nope"), 0).is_none());
    }

    #[test]
    fn action_id_rewrite() {
        let m = AmiMessage::new()
            .with("Response", "Success")
            .with("ActionID", "ping-1")
            .with("Ping", "Pong");
        assert_eq!(with_action_id(&m, Some("a-9")).action_id(), Some("a-9"));
        assert_eq!(with_action_id(&m, None).action_id(), None);
        let e = AmiMessage::new().with("Response", "Error").with("Message", "x");
        let e = with_action_id(&e, Some("z"));
        assert_eq!(e.headers().nth(1), Some(("ActionID", "z")));
    }
}
