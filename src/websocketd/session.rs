//! One websocket connection: authenticate, send `init`, then one `select!`
//! loop over the client's messages, the bus, the token's expiry and the ping
//! timer. Frames go out through a separate writer task fed by a bounded
//! queue, so a client that stops reading never blocks this loop, the bus or
//! any other client: when its queue is full it is closed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use warp::ws::{Message, WebSocket};

use super::filter::{Audience, Subscriptions};
use super::protocol::{decode, event_frame, reply, ClientOp, Close, Version};
use super::WebsocketService;
use crate::auth::token::TokenData;
use crate::bus::Event;

/// How long a closing connection gets to flush its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the client asked for in the upgrade request.
pub(super) struct Handshake {
    pub token: Option<String>,
    pub version: Option<String>,
}

pub(super) async fn run(svc: Arc<WebsocketService>, socket: WebSocket, handshake: Handshake) {
    let (sink, stream) = socket.split();
    let (out_tx, out_rx) = mpsc::channel(svc.config.client_queue);
    let (close_tx, close_rx) = oneshot::channel();
    let mut writer = tokio::spawn(write_loop(sink, out_rx, close_rx));
    svc.connected(1);
    let mut session = Session {
        svc: svc.clone(),
        out: out_tx,
        subs: Subscriptions::default(),
        started: false,
        version: Version::V1,
        secret: String::new(),
    };
    let close = session.serve(stream, handshake).await;
    if let Some(c) = &close {
        tracing::debug!(code = c.code(), reason = %c.reason(), "websocket closed by accentd");
        if *c == Close::TooSlow {
            svc.closed_slow.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = close_tx.send(close);
    // A client that stopped reading may never take the close frame: give
    // up after the grace period, which drops the connection.
    if tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
        writer.abort();
    }
    svc.connected(-1);
}

/// Sends queued frames, several per flush; on the close signal sends the
/// close frame (if accentd closes) and ends.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    mut close_rx: oneshot::Receiver<Option<Close>>,
) {
    loop {
        tokio::select! {
            biased;
            close = &mut close_rx => {
                if let Ok(Some(c)) = close {
                    let _ = sink.send(Message::close_with(c.code(), c.reason())).await;
                }
                let _ = sink.close().await;
                return;
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { return };
                if sink.feed(msg).await.is_err() {
                    return;
                }
                while let Ok(more) = rx.try_recv() {
                    if sink.feed(more).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

struct Session {
    svc: Arc<WebsocketService>,
    out: mpsc::Sender<Message>,
    subs: Subscriptions,
    started: bool,
    version: Version,
    secret: String,
}

impl Session {
    /// Runs the connection; `Some(reason)` when accentd closes it, `None`
    /// when the client went away.
    async fn serve(
        &mut self,
        mut stream: futures_util::stream::SplitStream<WebSocket>,
        hs: Handshake,
    ) -> Option<Close> {
        self.version = match Version::parse(hs.version.as_deref()) {
            Ok(v) => v,
            Err(why) => return Some(Close::Protocol(why)),
        };
        let Some(secret) = hs.token.filter(|t| !t.is_empty()) else {
            return Some(Close::NoToken);
        };
        let Some(token) = self.svc.validate(&secret) else {
            return Some(Close::AuthFailed);
        };
        self.secret = secret;
        let mut audience = Audience::new(token, self.svc.auth.tree.master());
        // Subscribed before `init`: nothing published after the client
        // could have sent `start` is missed.
        let mut bus = self.svc.bus.subscribe();
        if let Err(c) = self.send_text(reply("init", json!({"version": self.version.number()}))) {
            return Some(c);
        }
        let expiry = tokio::time::sleep(until_expiry(audience.token()));
        tokio::pin!(expiry);
        let mut ping = tokio::time::interval(self.svc.config.ping_interval);
        ping.reset();
        loop {
            tokio::select! {
                _ = self.svc.shutdown.cancelled() => return Some(Close::GoingAway),
                _ = &mut expiry => {
                    if self.svc.validate(&self.secret).is_none() {
                        return Some(Close::AuthExpired);
                    }
                    expiry.as_mut().reset(tokio::time::Instant::now() + until_expiry(audience.token()));
                }
                _ = ping.tick() => {
                    if self.svc.validate(&self.secret).is_none() {
                        return Some(Close::AuthExpired);
                    }
                    if let Err(c) = self.send(Message::ping(Vec::new())) {
                        return Some(c);
                    }
                }
                msg = stream.next() => {
                    let msg = match msg {
                        None => return None,
                        Some(Ok(m)) => m,
                        // Oversized or broken frames: tungstenite has already failed the
                        // connection; say why if the socket still takes it.
                        Some(Err(e)) => return Some(Close::Protocol(format!("invalid frame: {e}"))),
                    };
                    if msg.is_close() {
                        return None;
                    }
                    if msg.is_ping() || msg.is_pong() {
                        continue;
                    }
                    let text = match std::str::from_utf8(msg.as_bytes()) {
                        Ok(t) => t,
                        Err(_) => return Some(Close::Protocol("invalid message: not UTF-8".into())),
                    };
                    let op = match decode(text, self.version) {
                        Ok(op) => op,
                        Err(why) => return Some(Close::Protocol(why)),
                    };
                    if let Err(c) = self.handle(op, &mut audience) {
                        return Some(c);
                    }
                    // A `token` op may have changed the expiry.
                    expiry.as_mut().reset(tokio::time::Instant::now() + until_expiry(audience.token()));
                }
                event = bus.recv() => match event {
                    Ok(event) => {
                        if revokes_tokens(&event) && self.svc.validate(&self.secret).is_none() {
                            return Some(Close::AuthExpired);
                        }
                        if let Err(c) = self.deliver(&event, &audience) {
                            return Some(c);
                        }
                    }
                    // This connection missed events: it must reconnect and resync.
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some(Close::TooSlow),
                    Err(broadcast::error::RecvError::Closed) => return Some(Close::GoingAway),
                },
            }
        }
    }

    fn handle(&mut self, op: ClientOp, audience: &mut Audience) -> Result<(), Close> {
        let v2 = self.version == Version::V2;
        match op {
            ClientOp::Subscribe(name) => {
                self.subs.add(name);
                if v2 || !self.started {
                    self.send_text(reply("subscribe", Value::Null))?;
                }
            }
            ClientOp::Start => {
                self.started = true;
                self.send_text(reply("start", Value::Null))?;
            }
            ClientOp::Token(secret) => {
                let token = self.svc.validate(&secret).ok_or(Close::AuthFailed)?;
                // The subscriptions were granted to this user: a token of
                // someone else needs a connection of its own.
                if token.auth_id != audience.token().auth_id {
                    return Err(Close::AuthFailed);
                }
                *audience = Audience::new(token, self.svc.auth.tree.master());
                self.secret = secret;
                if v2 || !self.started {
                    self.send_text(reply("token", Value::Null))?;
                }
            }
            ClientOp::Ping(payload) => self.send_text(reply("pong", json!({"payload": payload})))?,
        }
        Ok(())
    }

    fn deliver(&self, event: &Event, audience: &Audience) -> Result<(), Close> {
        if !self.started || !self.subs.wants(&event.name) || !audience.accepts(event) {
            return Ok(());
        }
        let body = event.body_text();
        let text = match self.version {
            Version::V1 => body.to_string(),
            Version::V2 => event_frame(body),
        };
        self.svc.delivered.fetch_add(1, Ordering::Relaxed);
        self.send_text(text)
    }

    fn send_text(&self, text: String) -> Result<(), Close> {
        self.send(Message::text(text))
    }

    /// Never waits: a full queue means the client is not reading.
    fn send(&self, msg: Message) -> Result<(), Close> {
        self.out.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Close::TooSlow,
            // The writer ended: the socket is gone.
            mpsc::error::TrySendError::Closed(_) => Close::GoingAway,
        })
    }
}

/// Events after which a token may have been revoked: re-checked at once
/// rather than at the next timer.
fn revokes_tokens(event: &Event) -> bool {
    event.name.starts_with("auth_") && event.name.ends_with("_deleted")
}

/// Time left on the token (at least a few milliseconds, so a clock at the
/// boundary cannot spin the loop), capped so the timer stays representable.
fn until_expiry(token: &TokenData) -> Duration {
    let left = token.expire_at - crate::time::now_epoch();
    if left.is_nan() || left <= 0.0 {
        Duration::from_millis(5)
    } else {
        Duration::from_secs_f64(left.clamp(0.005, 86_400.0 * 365.0))
    }
}
