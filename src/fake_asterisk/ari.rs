//! A fake Asterisk ARI server (HTTP + websocket) replaying a recorded
//! scenario, for tests and demos.
//!
//! - Every request needs the configured user/password (Basic auth, or the
//!   `api_key=user:password` query parameter ARI also accepts); otherwise it
//!   answers like Asterisk: `401 {"message": "Authentication required"}` with
//!   a `WWW-Authenticate: Basic` challenge, and no websocket upgrade.
//! - `/ari/events` replays `ari-events.jsonl` in order, byte for byte: all of
//!   it as soon as a websocket connects ([`Replay::OnConnect`]), or step by
//!   step under test control ([`Replay::Manual`], [`FakeAri::replay_next`]).
//!   The replay position is the fake Asterisk's clock: a websocket that
//!   connects later only gets the events released after it connected, like a
//!   real one.
//! - REST answers, in this order:
//!   1. the recorded exchange of `ari-rest.jsonl` with the same method, path
//!      and query (in recorded order when a request was recorded several
//!      times, the last one repeating);
//!   2. a live model of channels and bridges built from the events released
//!      so far, so `GET /channels`, `GET /channels/{id}`, `GET /bridges`,
//!      `GET /bridges/{id}` answer what Asterisk would at that point of the
//!      recording, and a vanished channel gets Asterisk's
//!      `404 {"message": "Channel not found"}`; control requests on channels
//!      and bridges get Asterisk's checks (404 unknown, 409 not in Stasis,
//!      412 invalid state) and then 204 (or a queued playback);
//!   3. `GET /asterisk/info` with the recorded Asterisk's facts (22.10.1);
//!   4. `/ari/mailboxes…`: `404 {"message": "Resource not found"}`, as
//!      recorded (res_ari_mailboxes is not built there);
//!   5. other routes of the ARI spec: `501` (nothing recorded to answer
//!      with); anything else: `404 {"message": "Resource not found"}`.
//! - Calls the client makes: a channel originated through the fake joins the
//!   model (`Down`); [`FakeAri::answer`] plays its phone answering
//!   (`ChannelStateChange` `Up`, then `StasisStart` with the originate's
//!   `appArgs` when it was originated into an application, as scenario 27
//!   recorded), [`FakeAri::enter_stasis`] a live channel entering an
//!   application (after an AMI `Redirect` to a `Stasis()` extension, or a
//!   `move`), [`FakeAri::destroy`] its hangup (`ChannelDestroyed`).
//! - Faults on demand: [`FakeAri::drop_connections`] (clean close, abrupt
//!   TCP close, or a frame cut in the middle), [`FakeAri::set_refusing`]
//!   (connections accepted and closed at once, like an Asterisk that is
//!   restarting), [`FakeAri::set_frozen`] (open websockets go silent and
//!   stop answering pings), [`FakeAri::inject`] (any text, e.g. garbage).
//!
//! The server is hyper rather than warp: warp hides the websocket's socket,
//! and cutting a frame in the middle needs to write raw bytes to it.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::scenario::{Scenario, ScenarioError};
use crate::ari::client::decode_component;
use crate::ari::events::{parse_event, AriEvent};
use crate::ari::models::{Bridge, Channel, ChannelState};

/// The Asterisk version of the recordings.
pub const ASTERISK_VERSION: &str = "22.10.1";
/// The `asterisk_id` of the recordings, used when a scenario has no event.
const DEFAULT_ENTITY_ID: &str = "02:fc:00:00:00:01";
/// Asterisk's message for a route no module serves (recorded).
const RESOURCE_NOT_FOUND: &str = "Resource not found";

/// When the events of the scenario are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replay {
    /// Everything not yet released is released when a websocket connects.
    #[default]
    OnConnect,
    /// Only [`FakeAri::replay_next`] / [`FakeAri::replay_all`] release events.
    Manual,
}

/// How [`FakeAri::drop_connections`] ends the websockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropMode {
    /// A websocket close frame (1001 going away), then TCP close.
    Close,
    /// TCP close without a close frame.
    Abort,
    /// The header and first bytes of a text frame, then TCP close: a
    /// message cut in the middle.
    MidMessage,
}

/// Credentials the fake accepts, and the replay mode.
#[derive(Debug, Clone)]
pub struct FakeAriOptions {
    pub user: String,
    pub password: String,
    /// The Stasis application of the recording (`accent`). Informational:
    /// websockets may ask for any application name, and the fake replays the
    /// recorded events to each of them unchanged (as with `subscribeAll`).
    pub app: String,
    pub replay: Replay,
}

impl Default for FakeAriOptions {
    /// The recorded Asterisk's settings: user `accent`, password `accent`,
    /// application `accent`.
    fn default() -> Self {
        FakeAriOptions {
            user: "accent".into(),
            password: "accent".into(),
            app: "accent".into(),
            replay: Replay::OnConnect,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FakeAriError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("scenario {scenario}: ari-rest.jsonl line {line}: {message}")]
    BadRecording {
        scenario: String,
        line: usize,
        message: String,
    },
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
}

/// One request the fake received, as it arrived (for tests that check what
/// the client sends, e.g. that no secret is in a URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    pub method: String,
    /// Path and query, still percent-encoded.
    pub uri: String,
    pub authorized: bool,
    pub websocket: bool,
    /// The request body (the first MiB), as text; `""` without one.
    pub body: String,
}

/// A recorded REST exchange.
#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    status: u16,
    response: Value,
}

/// Channels and bridges alive at the current replay position.
#[derive(Debug, Default)]
struct Model {
    /// In creation order (ids are unique).
    channels: Vec<Channel>,
    bridges: Vec<Bridge>,
    /// Ids of the channels inside a Stasis application.
    in_stasis: Vec<String>,
    /// Ids of the playbacks started through the fake and not finished.
    playbacks: Vec<String>,
    /// Channels originated through the fake into a Stasis application: id -> (application,
    /// arguments), what their `StasisStart` carries once they answer.
    originated_into: HashMap<String, (String, Vec<String>)>,
}

impl Model {
    fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    fn bridge(&self, id: &str) -> Option<&Bridge> {
        self.bridges.iter().find(|b| b.id == id)
    }

    /// Updates the model with one released event. Snapshots embedded in any
    /// event refresh the known channels and bridges (state, bridge
    /// membership…), but only `ChannelCreated`/`BridgeCreated` add one and
    /// only `ChannelDestroyed`/`BridgeDestroyed` remove one, so a late
    /// snapshot never brings back a ghost.
    fn apply(&mut self, event: &AriEvent) {
        match event {
            AriEvent::ChannelCreated(e) => {
                self.channels.retain(|c| c.id != e.channel.id);
                self.channels.push(e.channel.clone());
                return;
            }
            AriEvent::ChannelDestroyed(e) => {
                self.channels.retain(|c| c.id != e.channel.id);
                self.in_stasis.retain(|id| *id != e.channel.id);
                return;
            }
            AriEvent::BridgeCreated(e) => {
                self.bridges.retain(|b| b.id != e.bridge.id);
                self.bridges.push(e.bridge.clone());
                return;
            }
            AriEvent::BridgeDestroyed(e) => {
                self.bridges.retain(|b| b.id != e.bridge.id);
                return;
            }
            AriEvent::StasisStart(e) if !self.in_stasis.contains(&e.channel.id) => {
                self.in_stasis.push(e.channel.id.clone());
            }
            AriEvent::StasisEnd(e) => self.in_stasis.retain(|id| *id != e.channel.id),
            AriEvent::PlaybackFinished(e) => self.playbacks.retain(|id| *id != e.playback.id),
            _ => {}
        }
        for snapshot in event.channels() {
            if let Some(known) = self.channels.iter_mut().find(|c| c.id == snapshot.id) {
                *known = snapshot.clone();
            }
        }
        for snapshot in event.bridges() {
            if let Some(known) = self.bridges.iter_mut().find(|b| b.id == snapshot.id) {
                *known = snapshot.clone();
            }
        }
    }
}

struct State {
    /// The scenario's websocket messages, as recorded (plus injected ones).
    events: Vec<Arc<str>>,
    /// How many of `events` have been released.
    released: usize,
    /// How many of the released events `model` reflects: the model catches
    /// up when a request reads it, so a websocket-only replay (20,000 events
    /// for the burst scenario) does not pay for parsing them twice.
    applied: usize,
    model: Model,
    exchanges: Vec<Exchange>,
    /// How many times each recorded key was answered (by first index).
    served: HashMap<usize, usize>,
    /// Applications of the open websockets, with their subscribeAll flag.
    apps: Vec<(u64, String, bool)>,
    requests: Vec<RequestLog>,
}

#[derive(Debug, Clone, Copy)]
struct DropCmd {
    generation: u64,
    mode: DropMode,
}

struct Shared {
    scenario: String,
    options: FakeAriOptions,
    entity_id: String,
    startup_time: String,
    state: Mutex<State>,
    /// Bumped (to the released count) on every release or injection.
    released: watch::Sender<usize>,
    drops: watch::Sender<DropCmd>,
    connections: watch::Sender<usize>,
    /// While true, open websockets neither read nor write (no pong either):
    /// a half-open link as seen from the client.
    frozen: watch::Sender<bool>,
    refusing: AtomicBool,
    next_socket: std::sync::atomic::AtomicU64,
    /// Channels originated through the model: the sequence in their names and ids.
    originated: std::sync::atomic::AtomicU64,
    shutdown: CancellationToken,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (a bug in a test) must not make
        // every later request panic too.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Releases up to `n` events; returns how many were released.
    fn release(&self, n: usize) -> usize {
        let (count, position) = {
            let mut st = self.state();
            let end = st.released.saturating_add(n).min(st.events.len());
            let start = st.released;
            st.released = end;
            (end - start, end)
        };
        self.released.send_replace(position);
        count
    }
}

impl State {
    /// The model at the current replay position.
    fn model(&mut self) -> &Model {
        while self.applied < self.released {
            if let Ok(event) = parse_event(&self.events[self.applied]) {
                self.model.apply(&event);
            }
            self.applied += 1;
        }
        &self.model
    }
}

/// A running fake ARI server. Dropping it stops it.
pub struct FakeAri {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeAri {
    /// Loads the scenario and listens on `127.0.0.1:0`.
    pub async fn start(scenario: &Scenario, options: FakeAriOptions) -> Result<FakeAri, FakeAriError> {
        let events: Vec<Arc<str>> = scenario.lines("ari-events.jsonl")?.into_iter().map(Arc::from).collect();
        let exchanges = load_exchanges(scenario)?;
        let first = events.first().and_then(|l| parse_event(l).ok());
        let entity_id = first
            .as_ref()
            .and_then(|e| e.asterisk_id().map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_ENTITY_ID.to_owned());
        let startup_time = first
            .as_ref()
            .and_then(|e| e.timestamp().map(str::to_owned))
            .unwrap_or_else(|| "2026-11-28T12:48:53.000+0000".to_owned());
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(FakeAriError::Listen)?;
        let addr = listener.local_addr().map_err(FakeAriError::Listen)?;
        let shared = Arc::new(Shared {
            scenario: scenario.name.clone(),
            options,
            entity_id,
            startup_time,
            state: Mutex::new(State {
                events,
                released: 0,
                applied: 0,
                model: Model::default(),
                exchanges,
                served: HashMap::new(),
                apps: Vec::new(),
                requests: Vec::new(),
            }),
            released: watch::channel(0).0,
            drops: watch::channel(DropCmd {
                generation: 0,
                mode: DropMode::Close,
            })
            .0,
            connections: watch::channel(0).0,
            frozen: watch::channel(false).0,
            refusing: AtomicBool::new(false),
            next_socket: std::sync::atomic::AtomicU64::new(1),
            originated: std::sync::atomic::AtomicU64::new(0),
            shutdown: CancellationToken::new(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::debug!(%addr, scenario = %scenario.name, "fake ARI listening");
        Ok(FakeAri {
            addr,
            shared,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: what `ari.url` should be set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Releases the next `n` events (to the open websockets and the model);
    /// returns how many there were.
    pub fn replay_next(&self, n: usize) -> usize {
        self.shared.release(n)
    }

    /// Releases every remaining event; returns how many there were.
    pub fn replay_all(&self) -> usize {
        self.shared.release(usize::MAX)
    }

    /// How many events have been released.
    pub fn position(&self) -> usize {
        self.shared.state().released
    }

    /// The scenario's websocket messages (and injected ones), in order.
    pub fn events(&self) -> Vec<Arc<str>> {
        self.shared.state().events.clone()
    }

    /// Sends `text` as the next websocket message at the current position
    /// (and applies it to the model if it is an event).
    pub fn inject(&self, text: &str) {
        let position = {
            let mut st = self.shared.state();
            let at = st.released;
            st.events.insert(at, Arc::from(text));
            st.released = at + 1;
            st.released
        };
        self.shared.released.send_replace(position);
    }

    /// The phone of a channel originated through the fake answers, as scenario 27 recorded
    /// it: `ChannelStateChange` to `Up`, then (originated into an application) `StasisStart`
    /// with the originate's `appArgs`, the dialplan showing `Stasis(<app>,<args>)`. False
    /// if the fake did not originate that channel.
    pub fn answer(&self, id: &str) -> bool {
        let (channel, into) = {
            let mut st = self.shared.state();
            st.model();
            let Some(channel) = st.model.channel(id).cloned() else {
                return false;
            };
            let Some(into) = st.model.originated_into.remove(id) else {
                return false;
            };
            (channel, into)
        };
        let (app, args) = into;
        let mut up = json!(channel);
        up["state"] = json!("Up");
        self.inject(&channel_event("ChannelStateChange", &up, &self.shared.options.app, &[]));
        let mut entered = up;
        let mut data = vec![app.clone()];
        data.extend(args.iter().cloned());
        entered["dialplan"]["app_name"] = json!("Stasis");
        entered["dialplan"]["app_data"] = json!(data.join(","));
        self.inject(&channel_event("StasisStart", &entered, &app, &[("args", json!(args))]));
        true
    }

    /// A live channel enters Stasis application `app` with `args` (what the dialplan's
    /// `Stasis(app,args)` does after an AMI `Redirect`, or `POST /channels/{id}/move`).
    /// False for an unknown channel.
    pub fn enter_stasis(&self, id: &str, app: &str, args: &[&str]) -> bool {
        let Some(channel) = self.channels().into_iter().find(|c| c.id == id) else {
            return false;
        };
        let mut entered = json!(channel);
        let mut data = vec![app.to_string()];
        data.extend(args.iter().map(|a| a.to_string()));
        entered["dialplan"]["app_name"] = json!("Stasis");
        entered["dialplan"]["app_data"] = json!(data.join(","));
        self.inject(&channel_event("StasisStart", &entered, app, &[("args", json!(args))]));
        true
    }

    /// A live channel is hung up (by its phone, or its ring time over): `ChannelDestroyed`
    /// with the Q.850 `cause` (16 normal clearing, 19 no answer), as recorded. False for an
    /// unknown channel.
    pub fn destroy(&self, id: &str, cause: i64, cause_txt: &str) -> bool {
        let Some(channel) = self.channels().into_iter().find(|c| c.id == id) else {
            return false;
        };
        self.inject(&channel_event(
            "ChannelDestroyed",
            &json!(channel),
            &self.shared.options.app,
            &[("cause", json!(cause)), ("cause_txt", json!(cause_txt))],
        ));
        true
    }

    /// Ends every open websocket.
    pub fn drop_connections(&self, mode: DropMode) {
        self.shared.drops.send_modify(|cmd| {
            cmd.generation += 1;
            cmd.mode = mode;
        });
    }

    /// While true, the open websockets go silent: they send nothing and
    /// read nothing, so pings stay unanswered (a half-open connection).
    pub fn set_frozen(&self, frozen: bool) {
        self.shared.frozen.send_replace(frozen);
    }

    /// While true, every new TCP connection (REST or websocket) is closed
    /// as soon as it is accepted. Open websockets are not affected.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Open websockets.
    pub fn connections(&self) -> usize {
        *self.shared.connections.borrow()
    }

    /// Waits until exactly `n` websockets are open; false on timeout.
    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.shared.connections.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c == n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The channels alive at the current replay position.
    pub fn channels(&self) -> Vec<Channel> {
        self.shared.state().model().channels.clone()
    }

    /// The bridges alive at the current replay position.
    pub fn bridges(&self) -> Vec<Bridge> {
        self.shared.state().model().bridges.clone()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.state().requests.clone()
    }

    /// Stops listening and closes every connection.
    pub async fn stop(mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeAri {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

fn load_exchanges(scenario: &Scenario) -> Result<Vec<Exchange>, FakeAriError> {
    let bad = |line: usize, message: String| FakeAriError::BadRecording {
        scenario: scenario.name.clone(),
        line,
        message,
    };
    let mut out = Vec::new();
    for (i, line) in scenario.lines("ari-rest.jsonl")?.iter().enumerate() {
        let v: Value = serde_json::from_str(line).map_err(|e| bad(i + 1, e.to_string()))?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(i + 1, format!("no {k}")))
        };
        let query = match v.get("query") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let status = v
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| bad(i + 1, "no status".into()))?;
        out.push(Exchange {
            method: text("method")?,
            path: text("path")?,
            query,
            status,
            response: v.get("response").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(out)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if shared.refusing.load(Ordering::SeqCst) {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc_shared = shared.clone();
            let service = hyper::service::service_fn(move |req| {
                let shared = svc_shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = shared.shutdown.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

fn reply(status: u16, body: Option<&Value>) -> Response {
    let bytes = body
        .and_then(|b| serde_json::to_vec(b).ok())
        .map(Bytes::from)
        .unwrap_or_default();
    let mut response = Response::new(bytes.into());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("server", HeaderValue::from_static("Asterisk/22.10.1"));
    if body.is_some() {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    response
}

fn error(status: u16, message: &str) -> Response {
    reply(status, Some(&json!({ "message": message })))
}

/// Reads (and discards) a request body, so the connection stays usable.
/// Reads a request body, keeping at most 1 MiB of it.
async fn drain(mut body: Incoming) -> Vec<u8> {
    use hyper::body::Body as _;
    let mut kept = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    if kept.len() + d.len() > 1 << 20 {
                        break;
                    }
                    kept.extend_from_slice(d);
                }
            }
            Err(_) => break,
        }
    }
    kept
}

fn query_pairs(raw: Option<&str>) -> BTreeMap<String, String> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query(k), decode_query(v))
        })
        .collect()
}

/// Query text as Asterisk reads it: `+` is a space, then `%XX` escapes.
fn decode_query(text: &str) -> String {
    decode_component(&text.replace('+', " "))
}

fn authorized(shared: &Shared, req: &hyper::Request<Incoming>, query: &BTreeMap<String, String>) -> bool {
    let expected = format!("{}:{}", shared.options.user, shared.options.password);
    if let Some(key) = query.get("api_key") {
        return *key == expected;
    }
    let Some(header) = req.headers().get("authorization").and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some(encoded) = header.strip_prefix("Basic ") else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .is_ok_and(|decoded| decoded == expected.as_bytes())
}

async fn handle(shared: Arc<Shared>, mut req: hyper::Request<Incoming>) -> Response {
    let method = req.method().as_str().to_owned();
    let raw_path = req.uri().path().to_owned();
    let query = query_pairs(req.uri().query());
    let is_ws = req
        .headers()
        .get("upgrade")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let ok = authorized(&shared, &req, &query);
    let log_index = {
        let mut st = shared.state();
        st.requests.push(RequestLog {
            method: method.clone(),
            uri: req.uri().to_string(),
            authorized: ok,
            websocket: is_ws,
            body: String::new(),
        });
        st.requests.len() - 1
    };
    if !ok {
        let mut r = error(401, "Authentication required");
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"Asterisk REST Interface\""),
        );
        return r;
    }
    let segments: Vec<String> = raw_path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_component)
        .collect();
    if segments.first().map(String::as_str) != Some("ari") {
        return error(404, RESOURCE_NOT_FOUND);
    }
    let segs: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    if segs == ["events"] && method == "GET" {
        if !is_ws {
            return error(400, "WebSocket upgrade required");
        }
        return upgrade(shared, &mut req, &query);
    }
    let body = drain(req.into_body()).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(log) = shared.state().requests.get_mut(log_index) {
        log.body = text.clone();
    }
    let path = format!("/ari/{}", segs.join("/"));
    let response = rest(&shared, &method, &segs, &path, &query, &text);
    // A playback started here can be stopped until it finishes.
    if let ("POST", [_, _, "play"], Some(id)) = (method.as_str(), segs.as_slice(), query.get("playbackId")) {
        if response.status() == StatusCode::CREATED {
            shared.state().model.playbacks.push(id.clone());
        }
    }
    response
}

fn upgrade(shared: Arc<Shared>, req: &mut hyper::Request<Incoming>, query: &BTreeMap<String, String>) -> Response {
    let Some(key) = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
        return error(400, "Missing Sec-WebSocket-Key");
    };
    let Some(app) = query.get("app").filter(|a| !a.is_empty()).cloned() else {
        return error(400, "Missing parameter app");
    };
    let subscribe_all = query
        .get("subscribeAll")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1" || v.eq_ignore_ascii_case("yes"));
    let id = shared.next_socket.fetch_add(1, Ordering::SeqCst);
    // The connection's replay position is taken now, before the automatic
    // release, so it receives the whole remaining scenario.
    let start = {
        let mut st = shared.state();
        st.apps.push((id, app.clone(), subscribe_all));
        st.released
    };
    if shared.options.replay == Replay::OnConnect {
        shared.release(usize::MAX);
    }
    let on_upgrade = hyper::upgrade::on(req);
    let task_shared = shared.clone();
    tokio::spawn(async move {
        let guard = SocketGuard {
            shared: task_shared.clone(),
            id,
        };
        task_shared.connections.send_modify(|c| *c += 1);
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                serve_socket(&task_shared, ws, start).await;
            }
            Err(e) => tracing::debug!(error = %e, "fake ARI: upgrade failed"),
        }
        drop(guard);
    });
    let mut response = Response::new(Bytes::new().into());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("connection", HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(&key)) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

/// Unregisters a websocket's application and counts it out, however its
/// task ends.
struct SocketGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.shared.state().apps.retain(|(id, _, _)| *id != self.id);
        self.shared.connections.send_modify(|c| *c = c.saturating_sub(1));
    }
}

type ServerWs = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

async fn serve_socket(shared: &Shared, mut ws: ServerWs, mut position: usize) {
    let mut released = shared.released.subscribe();
    let mut drops = shared.drops.subscribe();
    drops.borrow_and_update();
    let mut frozen = shared.frozen.subscribe();
    loop {
        let is_frozen = *frozen.borrow_and_update();
        if is_frozen {
            // `wait_for` yields a (non-Send) watch guard: keep only whether
            // the watch is still open.
            let thawed = async { frozen.wait_for(|f| !*f).await.is_ok() };
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                open = thawed => if !open { return },
                changed = drops.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let mode = drops.borrow_and_update().mode;
                    drop_socket(ws, mode).await;
                    return;
                }
            }
            continue;
        }
        loop {
            let next = {
                let st = shared.state();
                (position < st.released).then(|| st.events[position].clone())
            };
            let Some(text) = next else { break };
            if ws.feed(Message::text(text.as_ref())).await.is_err() {
                return;
            }
            position += 1;
        }
        if ws.flush().await.is_err() {
            return;
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => {
                let _ = ws.close(None).await;
                return;
            }
            changed = released.changed() => if changed.is_err() { return },
            changed = frozen.changed() => if changed.is_err() { return },
            changed = drops.changed() => {
                if changed.is_err() {
                    return;
                }
                let mode = drops.borrow_and_update().mode;
                drop_socket(ws, mode).await;
                return;
            }
            incoming = ws.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Pings are answered by tungstenite on the next write/flush.
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn drop_socket(mut ws: ServerWs, mode: DropMode) {
    match mode {
        DropMode::Close => {
            let frame = CloseFrame {
                code: CloseCode::Away,
                reason: "fake Asterisk going away".into(),
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
        }
        DropMode::Abort => {
            let _ = ws.get_mut().shutdown().await;
        }
        DropMode::MidMessage => {
            let _ = ws.flush().await;
            // FIN + text opcode, 16-bit length 200, then 20 of the 200 bytes.
            let mut partial = vec![0x81u8, 126, 0x00, 0xC8];
            partial.extend_from_slice(br#"{"type":"ChannelCrea"#);
            let io = ws.get_mut();
            let _ = io.write_all(&partial).await;
            let _ = io.flush().await;
            let _ = io.shutdown().await;
        }
    }
}

/// The ARI routes of the spec of Asterisk 22.10.1 (`*` = one segment).
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("GET", "applications"),
    ("GET", "applications/*"),
    ("POST", "applications/*/subscription"),
    ("DELETE", "applications/*/subscription"),
    ("PUT", "applications/*/eventFilter"),
    ("GET", "asterisk/config/dynamic/*/*/*"),
    ("PUT", "asterisk/config/dynamic/*/*/*"),
    ("DELETE", "asterisk/config/dynamic/*/*/*"),
    ("GET", "asterisk/info"),
    ("GET", "asterisk/ping"),
    ("GET", "asterisk/modules"),
    ("GET", "asterisk/modules/*"),
    ("POST", "asterisk/modules/*"),
    ("DELETE", "asterisk/modules/*"),
    ("PUT", "asterisk/modules/*"),
    ("GET", "asterisk/logging"),
    ("POST", "asterisk/logging/*"),
    ("DELETE", "asterisk/logging/*"),
    ("PUT", "asterisk/logging/*/rotate"),
    ("GET", "asterisk/variable"),
    ("POST", "asterisk/variable"),
    ("GET", "bridges"),
    ("POST", "bridges"),
    ("POST", "bridges/*"),
    ("GET", "bridges/*"),
    ("DELETE", "bridges/*"),
    ("GET", "bridges/*/variable"),
    ("POST", "bridges/*/variable"),
    ("GET", "bridges/*/variables"),
    ("POST", "bridges/*/variables"),
    ("POST", "bridges/*/addChannel"),
    ("POST", "bridges/*/removeChannel"),
    ("POST", "bridges/*/videoSource/*"),
    ("DELETE", "bridges/*/videoSource"),
    ("POST", "bridges/*/moh"),
    ("DELETE", "bridges/*/moh"),
    ("POST", "bridges/*/play"),
    ("POST", "bridges/*/play/*"),
    ("POST", "bridges/*/record"),
    ("GET", "channels"),
    ("POST", "channels"),
    ("POST", "channels/create"),
    ("GET", "channels/*"),
    ("POST", "channels/*"),
    ("DELETE", "channels/*"),
    ("POST", "channels/*/continue"),
    ("POST", "channels/*/move"),
    ("POST", "channels/*/redirect"),
    ("POST", "channels/*/answer"),
    ("POST", "channels/*/ring"),
    ("DELETE", "channels/*/ring"),
    ("POST", "channels/*/progress"),
    ("POST", "channels/*/dtmf"),
    ("POST", "channels/*/mute"),
    ("DELETE", "channels/*/mute"),
    ("POST", "channels/*/hold"),
    ("DELETE", "channels/*/hold"),
    ("POST", "channels/*/moh"),
    ("DELETE", "channels/*/moh"),
    ("POST", "channels/*/silence"),
    ("DELETE", "channels/*/silence"),
    ("POST", "channels/*/play"),
    ("POST", "channels/*/play/*"),
    ("POST", "channels/*/record"),
    ("GET", "channels/*/variable"),
    ("POST", "channels/*/variable"),
    ("GET", "channels/*/variables"),
    ("POST", "channels/*/variables"),
    ("POST", "channels/*/snoop"),
    ("POST", "channels/*/snoop/*"),
    ("POST", "channels/*/dial"),
    ("GET", "channels/*/rtp_statistics"),
    ("POST", "channels/externalMedia"),
    ("POST", "channels/*/transfer_progress"),
    ("GET", "deviceStates"),
    ("GET", "deviceStates/*"),
    ("PUT", "deviceStates/*"),
    ("DELETE", "deviceStates/*"),
    ("GET", "endpoints"),
    ("PUT", "endpoints/sendMessage"),
    ("POST", "endpoints/refer"),
    ("GET", "endpoints/*"),
    ("GET", "endpoints/*/*"),
    ("PUT", "endpoints/*/*/sendMessage"),
    ("POST", "endpoints/*/*/refer"),
    ("GET", "events"),
    ("POST", "events/user/*"),
    ("POST", "events/claim"),
    ("GET", "playbacks/*"),
    ("DELETE", "playbacks/*"),
    ("POST", "playbacks/*/control"),
    ("GET", "recordings/stored"),
    ("GET", "recordings/stored/*"),
    ("DELETE", "recordings/stored/*"),
    ("GET", "recordings/stored/*/file"),
    ("POST", "recordings/stored/*/copy"),
    ("GET", "recordings/live/*"),
    ("DELETE", "recordings/live/*"),
    ("POST", "recordings/live/*/stop"),
    ("POST", "recordings/live/*/pause"),
    ("DELETE", "recordings/live/*/pause"),
    ("POST", "recordings/live/*/mute"),
    ("DELETE", "recordings/live/*/mute"),
    ("GET", "sounds"),
    ("GET", "sounds/*"),
];

/// `POST /channels` that the recording did not make: Asterisk's checks (an endpoint, a
/// dialplan target or an application, a free channel id, a JSON object body), then the new
/// outgoing channel in the shape scenario 27 recorded: `Down`, named `<endpoint>-<8 hex>`
/// (`;1` for a Local channel), showing the caller id asked for, parked in the dialplan's
/// `AppDial2` placeholder until it is answered. Nothing is released on the websocket: the
/// recording's events stay the fake's clock.
fn originate(shared: &Shared, model: &Model, query: &BTreeMap<String, String>, body: &str) -> (u16, Value) {
    let invalid = json!({ "message": "Invalid parameters for originating a channel." });
    let Some(endpoint) = query.get("endpoint").filter(|e| !e.is_empty()) else {
        return (400, json!({ "message": "Endpoint must be specified" }));
    };
    let has = |k: &str| query.get(k).is_some_and(|v| !v.is_empty());
    if has("app") == has("extension") || !endpoint.contains('/') {
        return (400, invalid);
    }
    if !body.trim().is_empty() {
        match serde_json::from_str::<Value>(body) {
            Ok(v) if v.get("variables").is_none_or(Value::is_object) => {}
            _ => return (400, invalid),
        }
    }
    let n = shared.originated.fetch_add(1, Ordering::SeqCst) + 1;
    let id = query
        .get("channelId")
        .cloned()
        .unwrap_or_else(|| format!("{}.{}", time::OffsetDateTime::now_utc().unix_timestamp(), 9000 + n));
    if model.channel(&id).is_some() {
        return (
            409,
            json!({ "message": "Channel with given unique ID already exists." }),
        );
    }
    let local = endpoint.starts_with("Local/");
    let name = format!("{endpoint}-{:08x}{}", 0x100 + n, if local { ";1" } else { "" });
    let (cid_name, cid_number) = match query.get("callerId").map(String::as_str).unwrap_or("") {
        "" => (String::new(), String::new()),
        text => match text.rsplit_once('<') {
            Some((name, number)) => (
                name.trim().trim_matches('"').to_string(),
                number.trim_end_matches('>').trim().to_string(),
            ),
            None => (String::new(), text.trim().to_string()),
        },
    };
    let caller = json!({ "name": cid_name, "number": cid_number });
    (
        200,
        json!({
            "id": id,
            "name": name,
            "state": "Down",
            "protocol_id": if local { String::new() } else { format!("fake-{n}@127.0.0.1") },
            "caller": caller,
            "connected": caller,
            "accountcode": "",
            "dialplan": {"context": "from-internal", "exten": "s", "priority": 1,
                         "app_name": "AppDial2", "app_data": "(Outgoing Line)"},
            "creationtime": now_ari(),
            "language": "en",
        }),
    )
}

/// `POST /channels/{id}/snoop`: Asterisk's checks (an application, known directions), then
/// the snoop channel as `res_stasis_snoop` makes it: `Snoop/<snooped uniqueid>-<8 hex>`,
/// already up, carrying the snooped channel's caller id. Nothing is released on the
/// websocket: the test says when the channel enters Stasis.
fn snoop(shared: &Shared, channel: &Channel, query: &BTreeMap<String, String>) -> (u16, Value) {
    if query.get("app").is_none_or(|a| a.is_empty()) {
        return (400, json!({ "message": "Application name is required" }));
    }
    let known = |k: &str| {
        query
            .get(k)
            .is_none_or(|v| ["none", "both", "out", "in"].contains(&v.as_str()))
    };
    if !known("spy") || !known("whisper") {
        return (400, json!({ "message": "Invalid direction specified" }));
    }
    let n = shared.originated.fetch_add(1, Ordering::SeqCst) + 1;
    let id = query
        .get("snoopId")
        .cloned()
        .unwrap_or_else(|| format!("{}.{}", time::OffsetDateTime::now_utc().unix_timestamp(), 9000 + n));
    let caller = json!({ "name": channel.caller.name, "number": channel.caller.number });
    (
        200,
        json!({
            "id": id,
            "name": format!("Snoop/{}-{:08x}", channel.id, 0x100 + n),
            "state": "Up",
            "protocol_id": "",
            "caller": caller,
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
            "creationtime": now_ari(),
            "language": channel.language,
        }),
    )
}

/// Adds a channel the fake originated to the live model (Asterisk knows it from then on:
/// `GET`, `DELETE` find it), with the Stasis application and arguments it enters once answered.
fn remember_originated(model: &mut Model, query: &BTreeMap<String, String>, answer: &Value) {
    let Ok(channel) = serde_json::from_value::<Channel>(answer.clone()) else {
        return;
    };
    if let Some(app) = query.get("app").filter(|a| !a.is_empty()) {
        // `appArgs` is one comma-separated string, as Stasis() takes its arguments.
        let args = query
            .get("appArgs")
            .filter(|a| !a.is_empty())
            .map(|a| a.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        model.originated_into.insert(channel.id.clone(), (app.clone(), args));
    }
    model.channels.push(channel);
}

/// A channel event in the recorded shape (scenario 27), `channel` as the model has it.
fn channel_event(kind: &str, channel: &Value, application: &str, extra: &[(&str, Value)]) -> String {
    let mut event = serde_json::Map::new();
    event.insert("type".into(), json!(kind));
    event.insert("timestamp".into(), json!(now_ari()));
    for (k, v) in extra {
        event.insert((*k).to_string(), v.clone());
    }
    event.insert("channel".into(), channel.clone());
    event.insert("asterisk_id".into(), json!(DEFAULT_ENTITY_ID));
    event.insert("application".into(), json!(application));
    Value::Object(event).to_string()
}

fn is_spec_route(method: &str, segs: &[&str]) -> bool {
    SPEC_ROUTES.iter().any(|(m, pattern)| {
        let pat: Vec<&str> = pattern.split('/').collect();
        *m == method && pat.len() == segs.len() && pat.iter().zip(segs).all(|(p, s)| *p == "*" || p == s)
    })
}

/// Channel operations that need the channel in Stasis, and whether they
/// also refuse a channel that is not answered yet (Asterisk's
/// `channel_state_invalid`: Down, Rsrved, Ringing).
fn channel_control(method: &str, op: &str) -> Option<bool> {
    match (method, op) {
        ("POST", "answer" | "ring" | "progress" | "hold" | "mute" | "moh" | "silence" | "dtmf")
        | ("POST", "continue" | "redirect" | "play")
        | ("DELETE", "ring" | "hold" | "mute" | "moh" | "silence") => Some(true),
        ("POST", "move") => Some(false),
        _ => None,
    }
}

/// `POST /bridges` that the recording did not make: a new bridge in the shape scenario 05
/// recorded (`simple_bridge`, class `stasis`, created by `Stasis`), added to the live model so
/// the control requests on it find it. Asterisk's checks: the known bridge types, a free id.
fn create_bridge(st: &mut State, query: &BTreeMap<String, String>) -> (u16, Value) {
    let kind = query.get("type").map(String::as_str).unwrap_or("mixing");
    let known = [
        "mixing",
        "holding",
        "dtmf_events",
        "proxy_media",
        "video_sfu",
        "video_single",
        "sdp_label",
    ];
    if !kind.split(',').all(|k| known.contains(&k.trim())) {
        return (400, json!({ "message": "Invalid bridge type" }));
    }
    let id = query
        .get("bridgeId")
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if st.model().bridge(&id).is_some() {
        return (
            409,
            json!({ "message": "Bridge with the same bridgeId already exists" }),
        );
    }
    let bridge_type = if kind.split(',').any(|k| k.trim() == "holding") {
        "holding"
    } else {
        "mixing"
    };
    let answer = json!({
        "id": id,
        "technology": if bridge_type == "holding" { "holding_bridge" } else { "simple_bridge" },
        "bridge_type": bridge_type,
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": query.get("name").cloned().unwrap_or_default(),
        "channels": [],
        "creationtime": now_ari(),
        "video_mode": "talker",
    });
    match serde_json::from_value::<Bridge>(answer.clone()) {
        Ok(bridge) => {
            st.model.bridges.push(bridge);
            (200, answer)
        }
        Err(e) => (500, json!({ "message": format!("fake Asterisk: bridge model: {e}") })),
    }
}

fn rest(
    shared: &Shared,
    method: &str,
    segs: &[&str],
    path: &str,
    query: &BTreeMap<String, String>,
    body: &str,
) -> Response {
    let mut st = shared.state();
    // 1. The recording.
    let matches: Vec<usize> = st
        .exchanges
        .iter()
        .enumerate()
        .filter(|(_, x)| x.method == method && x.path == path && x.query == *query)
        .map(|(i, _)| i)
        .collect();
    if let Some(&first) = matches.first() {
        let served = st.served.entry(first).or_insert(0);
        let index = matches[(*served).min(matches.len() - 1)];
        *served += 1;
        let x = &st.exchanges[index];
        let body = (!x.response.is_null()).then_some(&x.response);
        return reply(x.status, body);
    }
    match (method, segs) {
        ("POST", ["bridges"]) => {
            let (status, answer) = create_bridge(&mut st, query);
            return reply(status, Some(&answer));
        }
        ("POST", ["channels"]) => {
            st.model();
            let (status, answer) = originate(shared, &st.model, query, body);
            if status == 200 {
                remember_originated(&mut st.model, query, &answer);
            }
            return reply(status, Some(&answer));
        }
        ("DELETE", ["playbacks", id]) => {
            st.model();
            let known = st.model.playbacks.iter().any(|p| p == id);
            st.model.playbacks.retain(|p| p != id);
            return if known {
                reply(204, None)
            } else {
                error(404, "Playback not found")
            };
        }
        _ => {}
    }
    let apps = applications(&st.apps);
    let model = st.model();
    // 2. The live model, 3. asterisk info, 4. the missing module.
    match (method, segs) {
        ("GET", ["asterisk", "info"]) => reply(200, Some(&asterisk_info(shared, query.get("only")))),
        ("GET", ["asterisk", "ping"]) => reply(
            200,
            Some(&json!({
                "asterisk_id": shared.entity_id,
                "ping": "pong",
                "timestamp": now_ari(),
            })),
        ),
        ("GET", ["channels"]) => reply(200, Some(&json!(model.channels))),
        ("GET", ["channels", id]) => match model.channel(id) {
            Some(c) => reply(200, Some(&json!(c))),
            None => error(404, "Channel not found"),
        },
        ("DELETE", ["channels", id]) => match model.channel(id) {
            Some(_) => reply(204, None),
            None => error(404, "Channel not found"),
        },
        ("POST", ["channels", id, "snoop"]) => match model.channel(id) {
            Some(channel) => {
                let (status, answer) = snoop(shared, channel, query);
                reply(status, Some(&answer))
            }
            None => error(404, "Channel not found"),
        },
        (_, ["channels", id, op]) if channel_control(method, op).is_some() => {
            let check_state = channel_control(method, op).unwrap_or(false);
            let Some(channel) = model.channel(id) else {
                return error(404, "Channel not found");
            };
            if !model.in_stasis.iter().any(|s| s == id) {
                return error(409, "Channel not in Stasis application");
            }
            if check_state
                && matches!(
                    channel.state,
                    ChannelState::Down | ChannelState::Rsrved | ChannelState::Ringing
                )
            {
                return error(412, "Channel in invalid state");
            }
            match *op {
                "dtmf" if query.get("dtmf").is_none_or(|d| d.is_empty()) => error(400, "DTMF is required"),
                "redirect" if query.get("endpoint").is_none_or(|d| d.is_empty()) => {
                    error(400, "Required parameter 'endpoint' not provided.")
                }
                "play" => play(&format!("channel:{id}"), Some(&channel.language), query),
                _ => reply(204, None),
            }
        }
        ("GET", ["bridges"]) => reply(200, Some(&json!(model.bridges))),
        ("GET", ["bridges", id]) => match model.bridge(id) {
            Some(b) => reply(200, Some(&json!(b))),
            None => error(404, "Bridge not found"),
        },
        ("DELETE", ["bridges", id]) => match model.bridge(id) {
            Some(_) => reply(204, None),
            None => error(404, "Bridge not found"),
        },
        ("POST", ["bridges", id, op @ ("addChannel" | "removeChannel" | "moh" | "play")])
        | ("DELETE", ["bridges", id, op @ "moh"]) => {
            if model.bridge(id).is_none() {
                return error(404, "Bridge not found");
            }
            let channels: Vec<&str> = query
                .get("channel")
                .map(|c| c.split(',').filter(|c| !c.is_empty()).collect())
                .unwrap_or_default();
            match *op {
                "addChannel" | "removeChannel" if channels.is_empty() => error(400, "Missing parameter channel"),
                "addChannel" | "removeChannel" => {
                    // Asterisk's checks (ari/resource_bridges.c): every channel exists (400)
                    // and is in Stasis (422).
                    if channels.iter().any(|c| model.channel(c).is_none()) {
                        return error(400, "Channel not found");
                    }
                    if channels.iter().any(|c| !model.in_stasis.iter().any(|s| s == c)) {
                        return error(422, "Channel not in Stasis application");
                    }
                    reply(204, None)
                }
                "play" => play(&format!("bridge:{id}"), None, query),
                _ => reply(204, None),
            }
        }
        ("GET", ["applications"]) => reply(200, Some(&json!(apps))),
        ("GET", ["applications", name]) => match apps.into_iter().find(|a| a["name"] == *name) {
            Some(app) => reply(200, Some(&app)),
            None => error(404, "Application not found"),
        },
        ("GET", ["deviceStates"]) => reply(200, Some(&json!([]))),
        (_, ["mailboxes", ..]) => error(404, RESOURCE_NOT_FOUND),
        // 5. The rest.
        _ if is_spec_route(method, segs) => error(
            501,
            &format!(
                "fake Asterisk: {method} {path} is not recorded in scenario {}",
                shared.scenario
            ),
        ),
        _ => error(404, RESOURCE_NOT_FOUND),
    }
}

/// A queued playback, shaped like the recorded one of scenario 04.
fn play(target_uri: &str, language: Option<&str>, query: &BTreeMap<String, String>) -> Response {
    let Some(media) = query.get("media").filter(|m| !m.is_empty()) else {
        return error(400, "Missing parameter media");
    };
    let mut uris = media.split(',');
    let first = uris.next().unwrap_or_default();
    let id = query
        .get("playbackId")
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let language = query.get("lang").map(String::as_str).or(language).unwrap_or("en");
    let mut body = json!({
        "id": id,
        "media_uri": first,
        "target_uri": target_uri,
        "language": language,
        "state": "queued",
    });
    if let Some(next) = uris.next() {
        body["next_media_uri"] = json!(next);
    }
    reply(201, Some(&body))
}

/// The applications of the open websockets, shaped like the recorded
/// `Application` of scenario 20 (subscribeAll shows the catch-all topics).
fn applications(apps: &[(u64, String, bool)]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for (_, name, all) in apps {
        if out.iter().any(|a| a["name"] == *name) {
            continue;
        }
        let topic = |t: &str| if *all { json!([t]) } else { json!([]) };
        out.push(json!({
            "name": name,
            "channel_ids": topic("__AST_CHANNEL_ALL_TOPIC"),
            "bridge_ids": topic("__AST_BRIDGE_ALL_TOPIC"),
            "endpoint_ids": topic("__AST_ENDPOINT_ALL_TOPIC"),
            "device_names": topic("__AST_DEVICE_STATE_ALL_TOPIC"),
            "events_allowed": [],
            "events_disallowed": [],
        }));
    }
    out
}

/// `GET /asterisk/info`, from the facts of the recorded Asterisk
/// (`tests/asterisk-fixtures/README.md`), honouring `only`.
fn asterisk_info(shared: &Shared, only: Option<&String>) -> Value {
    let parts = json!({
        "build": {
            "os": "Linux",
            "kernel": "",
            "options": "",
            "machine": "x86_64",
            "date": "2026-11-28 12:48:53 UTC",
            "user": "root",
        },
        "system": {
            "version": ASTERISK_VERSION,
            "entity_id": shared.entity_id,
        },
        "config": {
            "name": "",
            "default_language": "en",
            "setid": { "user": "", "group": "" },
        },
        "status": {
            "startup_time": shared.startup_time,
            "last_reload_time": shared.startup_time,
        },
    });
    match only {
        None => parts,
        Some(list) => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            let mut out = serde_json::Map::new();
            if let Value::Object(all) = parts {
                for (k, v) in all {
                    if wanted.contains(&k.as_str()) {
                        out.insert(k, v);
                    }
                }
            }
            Value::Object(out)
        }
    }
}

/// Now, in ARI's date format.
fn now_ari() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_routes_match_segments() {
        assert!(is_spec_route("GET", &["channels", "x"]));
        assert!(is_spec_route("POST", &["bridges", "b", "addChannel"]));
        assert!(!is_spec_route("GET", &["nothing"]));
        assert!(!is_spec_route("PATCH", &["channels"]));
    }

    #[test]
    fn query_decoding_follows_asterisk() {
        let q = query_pairs(Some("channel=s05-1001%2Cs05-1002&callerId=Alice+%3C1001%3E&flag"));
        assert_eq!(q["channel"], "s05-1001,s05-1002");
        assert_eq!(q["callerId"], "Alice <1001>");
        assert_eq!(q["flag"], "");
    }

    #[test]
    fn model_follows_the_replay_of_scenario_05() {
        let scenario = Scenario::load("05").expect("scenario");
        let mut model = Model::default();
        let mut peak = 0;
        for line in scenario.lines("ari-events.jsonl").expect("events") {
            model.apply(&parse_event(&line).expect("event"));
            peak = peak.max(model.channels.len());
            if let Some(b) = model.bridge("s05-bridge") {
                assert!(b.channels.len() <= 2);
            }
        }
        assert_eq!(peak, 4);
        assert!(model.channels.is_empty() && model.bridges.is_empty() && model.in_stasis.is_empty());
    }
}
