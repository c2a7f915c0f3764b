//! The AMI client handle: actions with correlated replies, the event stream, the link state.
//!
//! [`AmiClient`] is a cheap `Clone` handle on one actor task (module `connection`) that owns
//! the TCP socket. The actor connects, logs in, keeps the link alive with pings and reconnects
//! (exponential backoff with jitter) for as long as the process runs; callers never see a
//! socket. Three ways to talk to it:
//!
//! * [`AmiClient::send`]: one action, one reply. The client gives every action a unique
//!   `ActionID` (`accentd-<n>`), so concurrent callers each get their own response, and
//!   collects the events of an event list (`EventList: start` ... `...Complete`).
//! * [`AmiClient::subscribe`]: every event the server sends (list events included, each
//!   carrying the `ActionID` of its list action), in wire order, on a tokio `broadcast`: a slow
//!   subscriber gets `Lagged` instead of silently missing events.
//! * [`AmiClient::link`]: a `watch` of [`LinkState`]. A consumer that keeps state built from
//!   events resyncs (`CoreShowChannels`, `DeviceStateList`) on every `Connected` transition:
//!   events sent while the link was down are lost for good.
//!
//! The component `ami` of the [`StatusRegistry`] is kept up to date (ok while logged in, fail
//! with the reason otherwise).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::frame::{AmiMessage, FrameLimits};
use crate::api::status::StatusRegistry;
use crate::config::AmiConfig;

/// Name of the component in the status registry (`GET /status`).
pub const STATUS_COMPONENT: &str = "ami";

/// Prefix of every `ActionID` this client writes; the recorder used `accent-<n>`.
pub const ACTION_ID_PREFIX: &str = "accentd-";

/// Reconnection delays: `initial`, doubling up to `max`, each multiplied by a random factor in
/// `1 ± jitter` so that many clients restarted together do not hammer Asterisk in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Relative jitter, 0.2 = ±20 %.
    pub jitter: f64,
    /// A link that stayed up this long starts the next series of retries from `initial` again.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 = first retry), jitter included.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max);
        self.jittered(base)
    }

    /// `max` with jitter: the pace of retries after a refused login.
    pub fn max_delay(&self) -> Duration {
        self.jittered(self.max)
    }

    fn jittered(&self, base: Duration) -> Duration {
        let j = self.jitter.clamp(0.0, 1.0);
        if j == 0.0 {
            return base;
        }
        let factor = rand::random_range((1.0 - j)..=(1.0 + j));
        base.mul_f64(factor)
    }
}

/// Tuning of the client; [`Default`] is what production uses.
#[derive(Debug, Clone)]
pub struct AmiClientOptions {
    /// How long an action waits for its response (and the whole event list). Also bounds the
    /// greeting and the login exchange.
    pub action_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// A `Ping` is sent after this long without any byte from Asterisk; no answer within
    /// `action_timeout` means a dead link.
    pub ping_interval: Duration,
    pub backoff: Backoff,
    /// Framing limits. Larger than the framer defaults for the header count: CLI output
    /// (`Action: Command`) arrives as one `Output` header per line and may be long.
    pub limits: FrameLimits,
    /// Capacity of the event broadcast; a subscriber this far behind gets `Lagged`.
    pub event_capacity: usize,
}

impl Default for AmiClientOptions {
    fn default() -> Self {
        Self {
            action_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            backoff: Backoff::default(),
            limits: FrameLimits {
                max_headers: 64 * 1024,
                ..FrameLimits::default()
            },
            event_capacity: 16 * 1024,
        }
    }
}

/// The state of the AMI link, as published on [`AmiClient::link`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Logged in. `session` counts successful logins since the client started (1 for the
    /// first), so a watcher that missed a quick drop-and-reconnect still sees a new value.
    Connected { since: Instant, session: u64 },
    /// Not logged in (connecting, waiting to retry, credentials refused, shut down).
    Disconnected { reason: String },
}

impl LinkState {
    pub fn is_connected(&self) -> bool {
        matches!(self, LinkState::Connected { .. })
    }
}

/// The answer to an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmiReply {
    /// The `ActionID` written on the wire (`accentd-<n>`, or `accentd-<n>-<caller's id>`).
    /// Asynchronous follow-up events (such as `OriginateResponse`) carry it: subscribe
    /// before sending to catch them.
    pub action_id: String,
    /// The `Response:` message.
    pub response: AmiMessage,
    /// For an event list, every event of the list in order, the closing `...Complete` event
    /// included (see [`AmiReply::list_items`]); empty otherwise.
    pub events: Vec<AmiMessage>,
}

impl AmiReply {
    /// The items of an event list: [`events`](Self::events) without the closing
    /// `EventList: Complete` event.
    pub fn list_items(&self) -> impl Iterator<Item = &AmiMessage> + '_ {
        self.events.iter().filter(|e| !e.is_event_list_complete())
    }

    /// Consuming form of [`list_items`](Self::list_items).
    pub fn into_list_items(self) -> Vec<AmiMessage> {
        self.events
            .into_iter()
            .filter(|e| !e.is_event_list_complete())
            .collect()
    }
}

/// Why an action did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmiError {
    /// The link is down (or the client is shut down): actions fail fast instead of queueing.
    #[error("AMI is not connected")]
    NotConnected,
    /// No complete answer within the timeout. The link may still be fine (a slow action);
    /// a dead link is detected by the keep-alive ping.
    #[error("no AMI response within {0:?}")]
    Timeout(Duration),
    /// The link went down while the action was waiting for its answer.
    #[error("AMI link lost before the response")]
    ConnectionLost,
    /// Asterisk answered `Response: Error`.
    #[error("AMI action failed: {message}")]
    ActionFailed { message: String },
    /// The request was refused before being sent (no `Action` header, a forbidden value).
    #[error("invalid AMI action: {0}")]
    InvalidAction(String),
}

/// A request to the actor.
pub(crate) struct Request {
    /// The action, `ActionID` already set.
    pub action: AmiMessage,
    pub action_id: String,
    pub timeout: Duration,
    pub reply: oneshot::Sender<Result<AmiReply, AmiError>>,
}

/// The handle. Clone it freely: every clone talks to the same connection.
#[derive(Clone)]
pub struct AmiClient {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<Arc<AmiMessage>>,
    link: watch::Receiver<LinkState>,
    next_id: Arc<AtomicU64>,
    action_timeout: Duration,
    addr: String,
    user: String,
}

impl std::fmt::Debug for AmiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmiClient")
            .field("addr", &self.inner.addr)
            .field("user", &self.inner.user)
            .field("link", &*self.inner.link.borrow())
            .finish()
    }
}

impl AmiClient {
    /// Starts the connection actor with the default options. It runs until `shutdown` is
    /// cancelled (it then sends `Logoff`) or every handle is dropped.
    pub fn spawn(config: AmiConfig, status: Arc<StatusRegistry>, shutdown: CancellationToken) -> AmiClient {
        Self::spawn_with(config, AmiClientOptions::default(), status, shutdown)
    }

    /// [`spawn`](Self::spawn) with explicit options (tests use short timeouts).
    pub fn spawn_with(
        config: AmiConfig,
        options: AmiClientOptions,
        status: Arc<StatusRegistry>,
        shutdown: CancellationToken,
    ) -> AmiClient {
        let (req_tx, req_rx) = mpsc::channel(1024);
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let (link_tx, link_rx) = watch::channel(LinkState::Disconnected {
            reason: "connecting".into(),
        });
        let next_id = Arc::new(AtomicU64::new(1));
        let inner = Inner {
            requests: req_tx,
            events: events.clone(),
            link: link_rx,
            next_id: next_id.clone(),
            action_timeout: options.action_timeout,
            addr: config.addr.clone(),
            user: config.user.clone(),
        };
        let actor = super::connection::Actor::new(config, options, status, shutdown, req_rx, events, link_tx, next_id);
        tokio::spawn(actor.run());
        AmiClient { inner: Arc::new(inner) }
    }

    /// Every event, in wire order, from now on. List events are included (they carry the
    /// `ActionID` of their action, e.g. `DeviceStateChange` items of a `DeviceStateList`:
    /// tell them from live events by that header).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AmiMessage>> {
        self.inner.events.subscribe()
    }

    /// The link state; `changed()` wakes on every login and every loss.
    pub fn link(&self) -> watch::Receiver<LinkState> {
        self.inner.link.clone()
    }

    /// True while logged in.
    pub fn is_connected(&self) -> bool {
        self.inner.link.borrow().is_connected()
    }

    /// Waits until the actor has stopped (after shutdown, including the `Logoff`).
    pub async fn stopped(&self) {
        let mut link = self.inner.link.clone();
        while link.changed().await.is_ok() {}
    }

    /// Sends an action and waits for its answer with the default timeout.
    ///
    /// The message must start with `Action:`. Any `ActionID` header it has is replaced by a
    /// unique one (`accentd-<n>-<your id>`, see [`AmiReply::action_id`]). Values cannot
    /// inject headers: CR and LF are written as spaces.
    pub async fn send(&self, action: AmiMessage) -> Result<AmiReply, AmiError> {
        self.send_with_timeout(action, self.inner.action_timeout).await
    }

    /// [`send`](Self::send) with an explicit timeout (a synchronous `Originate` waits for the
    /// call to be answered).
    pub async fn send_with_timeout(&self, action: AmiMessage, timeout: Duration) -> Result<AmiReply, AmiError> {
        if !self.is_connected() {
            return Err(AmiError::NotConnected);
        }
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (action, action_id) = with_action_id(action, n)?;
        let (tx, rx) = oneshot::channel();
        let request = Request {
            action,
            action_id,
            timeout,
            reply: tx,
        };
        let wait = async {
            self.inner
                .requests
                .send(request)
                .await
                .map_err(|_| AmiError::NotConnected)?;
            rx.await.unwrap_or(Err(AmiError::ConnectionLost))
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(AmiError::Timeout(timeout)),
        }
    }

    /// `Ping`: a round trip to Asterisk.
    pub async fn ping(&self) -> Result<(), AmiError> {
        self.send(AmiMessage::new().with("Action", "Ping")).await.map(drop)
    }

    /// `Command`: runs a CLI command, returns its output lines (`Output` headers).
    pub async fn command(&self, command: &str) -> Result<Vec<String>, AmiError> {
        let reply = self
            .send(AmiMessage::new().with("Action", "Command").with("Command", command))
            .await?;
        Ok(reply.response.output().map(str::to_owned).collect())
    }

    /// `CoreShowChannels`: one `CoreShowChannel` event per live channel.
    pub async fn core_show_channels(&self) -> Result<Vec<AmiMessage>, AmiError> {
        self.list("CoreShowChannels").await
    }

    /// `DeviceStateList`: one `DeviceStateChange` event (`Device`, `State`) per known device.
    pub async fn device_state_list(&self) -> Result<Vec<AmiMessage>, AmiError> {
        self.list("DeviceStateList").await
    }

    /// `ExtensionStateList`: one `ExtensionStatus` event (`Exten`, `Context`, `Hint`,
    /// `Status`, `StatusText`) per hint.
    pub async fn extension_state_list(&self) -> Result<Vec<AmiMessage>, AmiError> {
        self.list("ExtensionStateList").await
    }

    /// Any list action without parameters: its items, the closing event left out.
    pub async fn list(&self, action: &str) -> Result<Vec<AmiMessage>, AmiError> {
        let reply = self.send(AmiMessage::new().with("Action", action)).await?;
        Ok(reply.into_list_items())
    }

    /// `Originate`. The reply's [`AmiReply::action_id`] is on the `OriginateResponse` event
    /// that follows (asynchronous originate, the default).
    pub async fn originate(&self, request: &Originate) -> Result<AmiReply, AmiError> {
        let action = request.to_action()?;
        let timeout = if request.asynchronous {
            self.inner.action_timeout
        } else {
            // A synchronous originate answers once the call is answered or has failed.
            self.inner.action_timeout + request.timeout.unwrap_or(Duration::from_secs(30))
        };
        self.send_with_timeout(action, timeout).await
    }

    /// `Redirect`: sends `channel` to `context`,`exten`,`priority` (not a bridge transfer).
    pub async fn redirect(&self, channel: &str, context: &str, exten: &str, priority: u32) -> Result<(), AmiError> {
        let action = AmiMessage::new()
            .with("Action", "Redirect")
            .with("Channel", check_channel(channel)?)
            .with("Context", context)
            .with("Exten", exten)
            .with("Priority", priority.to_string());
        self.send(action).await.map(drop)
    }

    /// `Hangup` of one channel, with an optional Q.850 cause (16 = normal clearing).
    ///
    /// Asterisk reads a `Channel` of the form `/regex/` as a regular expression over every
    /// channel; this helper refuses such names so that a value from outside can never hang
    /// up more than the one channel it names.
    pub async fn hangup(&self, channel: &str, cause: Option<u32>) -> Result<(), AmiError> {
        let mut action = AmiMessage::new()
            .with("Action", "Hangup")
            .with("Channel", check_channel(channel)?);
        if let Some(cause) = cause {
            action.push("Cause", cause.to_string());
        }
        self.send(action).await.map(drop)
    }

    /// `Reload` of one module (`res_pjsip.so`, ...) or, with `None`, of everything.
    pub async fn reload(&self, module: Option<&str>) -> Result<(), AmiError> {
        let mut action = AmiMessage::new().with("Action", "Reload");
        if let Some(module) = module {
            action.push("Module", module);
        }
        self.send(action).await.map(drop)
    }
}

/// Refuses empty channel names and the `/regex/` form.
fn check_channel(channel: &str) -> Result<&str, AmiError> {
    if channel.trim().is_empty() {
        return Err(AmiError::InvalidAction("empty channel name".into()));
    }
    if channel.starts_with('/') {
        return Err(AmiError::InvalidAction(
            "channel names cannot start with '/' (Asterisk would read a regex)".into(),
        ));
    }
    Ok(channel)
}

/// Rebuilds `action` with a unique `ActionID` right after the `Action` header (where the
/// recorded clients put it). A caller's own `ActionID` is kept as a suffix.
pub(crate) fn with_action_id(action: AmiMessage, n: u64) -> Result<(AmiMessage, String), AmiError> {
    let Some(name) = action.action() else {
        return Err(AmiError::InvalidAction("the first header must be Action".into()));
    };
    if name.trim().is_empty() {
        return Err(AmiError::InvalidAction("empty Action".into()));
    }
    let id = match action.action_id() {
        Some(own) if !own.is_empty() => format!("{ACTION_ID_PREFIX}{n}-{own}"),
        _ => format!("{ACTION_ID_PREFIX}{n}"),
    };
    let mut out = AmiMessage::new();
    for (i, (k, v)) in action.headers().enumerate() {
        if k.eq_ignore_ascii_case("ActionID") {
            continue;
        }
        out.push(k, v);
        if i == 0 {
            out.push("ActionID", id.as_str());
        }
    }
    Ok((out, id))
}

/// What to dial: an extension or an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginateTarget {
    Extension {
        context: String,
        exten: String,
        priority: u32,
    },
    Application {
        application: String,
        data: String,
    },
}

/// The parameters of `Originate` (see the Asterisk docs of the action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// The channel to call (`PJSIP/2001`, `Local/1001@caller/n`).
    pub channel: String,
    pub target: OriginateTarget,
    /// `"Name" <number>`.
    pub caller_id: Option<String>,
    /// How long to ring (Asterisk's default is 30 s).
    pub timeout: Option<Duration>,
    /// Channel variables (`Variable: name=value`, one header each; `__` prefix to inherit).
    pub variables: Vec<(String, String)>,
    pub account: Option<String>,
    pub channel_id: Option<String>,
    pub other_channel_id: Option<String>,
    pub codecs: Option<String>,
    pub early_media: bool,
    /// `Async: true` (the default): the response comes at once, the outcome later in an
    /// `OriginateResponse` event.
    pub asynchronous: bool,
}

impl Originate {
    /// An asynchronous originate of `channel` to `exten@context` priority 1.
    pub fn to_extension(channel: &str, context: &str, exten: &str) -> Self {
        Self {
            channel: channel.into(),
            target: OriginateTarget::Extension {
                context: context.into(),
                exten: exten.into(),
                priority: 1,
            },
            caller_id: None,
            timeout: None,
            variables: Vec::new(),
            account: None,
            channel_id: None,
            other_channel_id: None,
            codecs: None,
            early_media: false,
            asynchronous: true,
        }
    }

    /// The action, headers in the order of the recorded sessions.
    pub fn to_action(&self) -> Result<AmiMessage, AmiError> {
        let mut a = AmiMessage::new()
            .with("Action", "Originate")
            .with("Channel", check_channel(&self.channel)?);
        match &self.target {
            OriginateTarget::Extension {
                context,
                exten,
                priority,
            } => {
                a.push("Context", context.as_str());
                a.push("Exten", exten.as_str());
                a.push("Priority", priority.to_string());
            }
            OriginateTarget::Application { application, data } => {
                a.push("Application", application.as_str());
                a.push("Data", data.as_str());
            }
        }
        if let Some(cid) = &self.caller_id {
            a.push("CallerID", cid.as_str());
        }
        if self.asynchronous {
            a.push("Async", "true");
        }
        if let Some(t) = self.timeout {
            a.push("Timeout", t.as_millis().to_string());
        }
        for (name, value) in &self.variables {
            if name.is_empty() || name.contains('=') {
                return Err(AmiError::InvalidAction(format!("bad variable name {name:?}")));
            }
            a.push("Variable", format!("{name}={value}"));
        }
        let optional = [
            ("Account", &self.account),
            ("ChannelId", &self.channel_id),
            ("OtherChannelId", &self.other_channel_id),
            ("Codecs", &self.codecs),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                a.push(key, v.as_str());
            }
        }
        if self.early_media {
            a.push("EarlyMedia", "true");
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_id_goes_after_action_and_keeps_callers_id() {
        let (msg, id) = with_action_id(AmiMessage::new().with("Action", "Ping"), 7).expect("ok");
        assert_eq!(id, "accentd-7");
        assert_eq!(msg.to_bytes(), b"Action: Ping\r\nActionID: accentd-7\r\n\r\n");
        let (msg, id) = with_action_id(
            AmiMessage::new()
                .with("Action", "Status")
                .with("Channel", "x")
                .with("ActionID", "mine"),
            8,
        )
        .expect("ok");
        assert_eq!(id, "accentd-8-mine");
        assert_eq!(msg.get_all("ActionID").count(), 1);
        assert_eq!(
            msg.to_bytes(),
            b"Action: Status\r\nActionID: accentd-8-mine\r\nChannel: x\r\n\r\n"
        );
        assert!(with_action_id(AmiMessage::new().with("Channel", "x"), 1).is_err());
        assert!(with_action_id(AmiMessage::new(), 1).is_err());
    }

    #[test]
    fn caller_values_cannot_inject_headers() {
        let (msg, _) = with_action_id(
            AmiMessage::new()
                .with("Action", "Setvar")
                .with("Value", "x\r\nAction: Hangup\r\nChannel: y\r\n\r\n"),
            1,
        )
        .expect("ok");
        let bytes = msg.to_bytes();
        assert_eq!(bytes.windows(2).filter(|w| w == b"\r\n").count(), 4);
    }

    #[test]
    fn originate_matches_the_recorded_shape() {
        // 01-internal-answered-caller-hangup/ami-sent.raw, ActionID aside.
        let mut o = Originate::to_extension("Local/1001@caller/n", "from-internal", "1002");
        o.caller_id = Some("\"Alice\" <1001>".into());
        o.timeout = Some(Duration::from_secs(30));
        o.variables = vec![
            ("__CALLER_HANGUP_AFTER".into(), "9".into()),
            ("__CALLEE_MODE".into(), "answer".into()),
            ("__ANSWER_DELAY".into(), "3".into()),
        ];
        let (msg, _) = with_action_id(o.to_action().expect("ok"), 2).expect("ok");
        let expected = "Action: Originate\r\nActionID: accentd-2\r\nChannel: Local/1001@caller/n\r\n\
            Context: from-internal\r\nExten: 1002\r\nPriority: 1\r\nCallerID: \"Alice\" <1001>\r\n\
            Async: true\r\nTimeout: 30000\r\nVariable: __CALLER_HANGUP_AFTER=9\r\n\
            Variable: __CALLEE_MODE=answer\r\nVariable: __ANSWER_DELAY=3\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&msg.to_bytes()), expected);
        o.variables.push(("A=B".into(), "c".into()));
        assert!(o.to_action().is_err());
    }

    #[test]
    fn channel_regex_form_is_refused() {
        assert!(check_channel("/.*/").is_err());
        assert!(check_channel(" ").is_err());
        assert_eq!(check_channel("PJSIP/2001-00000001").ok(), Some("PJSIP/2001-00000001"));
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.0,
            reset_after: Duration::from_secs(30),
        };
        assert_eq!(b.delay(0), Duration::from_millis(500));
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(3), Duration::from_secs(4));
        assert_eq!(b.delay(10), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
        let j = Backoff { jitter: 0.2, ..b };
        for attempt in 0..20 {
            let d = j.delay(attempt).as_secs_f64();
            let base = b.delay(attempt).as_secs_f64();
            assert!(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9, "{d} vs {base}");
        }
    }
}
