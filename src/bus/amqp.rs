//! The optional RabbitMQ publisher: every bus event also goes to a headers exchange
//! (`accent-headers` by default), so systems outside this process consume the same events
//! upstream's daemons publish.
//!
//! One task owns the broker link. It subscribes to the [`Bus`] before it starts, so
//! nothing published while it connects is missed, and keeps unsent events in a bounded
//! buffer while the broker is down (the oldest go first when it is full: recent state
//! matters more to consumers than old). Publishing uses publisher confirms: an event
//! leaves the buffer only once the broker acknowledged it, so a connection lost
//! mid-publish re-sends it after the reconnect (at least once; a consumer may see a
//! duplicate, never a silent gap unless the buffer overflowed, which `dropped` counts).
//!
//! `/status` shows component `amqp`: `ok` while connected, `fail` with the reason while
//! not, and the `published`, `dropped` and `buffered` counters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;

use super::{Bus, Event};
use crate::api::status::{Health, StatusRegistry};
use crate::ari::backoff::{Backoff, BackoffPolicy};
use crate::config::AmqpConfig;

/// The component name in `/status`.
pub const STATUS_COMPONENT: &str = "amqp";

/// AMQP delivery mode 2: the broker writes the message to disk (durable queues keep it
/// across a broker restart).
const PERSISTENT: u8 = 2;

/// Tuning of the publisher; the defaults suit production, tests shrink them. The buffer
/// bound is `amqp.buffer` of the config.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// Events published before waiting for their confirms: one round trip per batch
    /// instead of one per event.
    pub batch: usize,
    pub backoff: BackoffPolicy,
    /// Connect, open the channel and declare the exchange within this.
    pub connect_timeout: Duration,
    /// A batch not confirmed within this counts as a lost link (re-sent after reconnecting).
    pub confirm_timeout: Duration,
    /// How often an idle link is checked, so `/status` turns `fail` without waiting for
    /// the next event.
    pub health_interval: Duration,
    /// On shutdown, how long buffered events may take to go out before the link closes.
    pub flush_on_stop: Duration,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            batch: 256,
            backoff: BackoffPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(1),
            flush_on_stop: Duration::from_secs(3),
        }
    }
}

/// The AMQP headers of an event: every envelope field of its body except `data` (strings
/// as long strings, the `user_uuid:` flags as booleans), so a headers-exchange binding
/// matches on exactly what a consumer reads in the body.
pub fn headers_of(body: &Value) -> FieldTable {
    let mut table = FieldTable::default();
    let Some(fields) = body.as_object() else {
        return table;
    };
    for (key, value) in fields {
        if key == "data" {
            continue;
        }
        // Envelope keys are ours and short; a key AMQP cannot carry is skipped, not a panic.
        let Ok(key) = ShortString::try_new(key.as_str()) else {
            continue;
        };
        let value = match value {
            Value::Bool(b) => AMQPValue::Boolean(*b),
            Value::String(s) => AMQPValue::LongString(s.as_str().into()),
            other => AMQPValue::LongString(other.to_string().into()),
        };
        table.insert(key, value);
    }
    table
}

/// The routing key of an event as AMQP carries it. Routing keys hold escaped user values
/// and may exceed AMQP's 255 bytes; the headers exchange routes on headers, so such an
/// event still goes out, with an empty key.
fn routing_key_of(event: &Event) -> ShortString {
    ShortString::try_new(event.routing_key.as_str()).unwrap_or_else(|_| {
        tracing::debug!(name = %event.name, "routing key too long for AMQP, sent empty");
        ShortString::default()
    })
}

/// Starts the publisher when `config.url` is set; `None` (and nothing in `/status`)
/// otherwise. It stops when `shutdown` is cancelled, after a short flush.
pub fn spawn(
    bus: &Bus,
    config: &AmqpConfig,
    status: Arc<StatusRegistry>,
    options: AmqpOptions,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if config.url.trim().is_empty() {
        return None;
    }
    let uri = match config.url.parse::<lapin::uri::AMQPUri>() {
        Ok(uri) => uri,
        // Config validation refuses such a URL; a direct caller gets a status, not a panic.
        Err(_) => {
            status.set(STATUS_COMPONENT, Health::Fail, Some("invalid amqp.url".into()));
            return None;
        }
    };
    let target = if uri.vhost == "/" {
        format!("{}:{}", uri.authority.host, uri.authority.port)
    } else {
        format!("{}:{} vhost {}", uri.authority.host, uri.authority.port, uri.vhost)
    };
    let Ok(exchange) = ShortString::try_new(config.exchange.as_str()) else {
        status.set(
            STATUS_COMPONENT,
            Health::Fail,
            Some("amqp.exchange longer than 255 bytes".into()),
        );
        return None;
    };
    let publisher = Publisher::new(
        Broker {
            url: config.url.clone(),
            password: uri.authority.userinfo.password,
            target,
            exchange,
        },
        // Subscribed here, before the task runs: events published while it connects wait
        // in its queue.
        bus.subscribe(),
        config.buffer,
        options,
        status,
    );
    publisher.report();
    Some(tokio::spawn(publisher.run(shutdown)))
}

/// The open broker link: one connection, one channel in confirm mode.
struct Link {
    conn: Connection,
    channel: Channel,
}

impl Link {
    async fn open(url: String, exchange: ShortString) -> Result<Link, lapin::Error> {
        let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        // Durable, like upstream's: bindings of other systems survive a broker restart.
        // An existing exchange of another kind fails here and is reported in `/status`.
        channel
            .exchange_declare(
                exchange,
                ExchangeKind::Headers,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(Link { conn, channel })
    }

    fn alive(&self) -> bool {
        self.conn.status().connected() && self.channel.status().connected()
    }

    /// Bounded: a broker that does not answer the close is left to drop the socket.
    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.close(200, "accentd stopping".into())).await;
    }
}

/// Why a connected period ended.
enum End {
    Stop,
    Lost(String),
}

/// Where events go.
struct Broker {
    url: String,
    /// Scrubbed from error texts before they reach logs or `/status`.
    password: String,
    /// `host:port` (and the vhost unless `/`), what logs and `/status` name.
    target: String,
    exchange: ShortString,
}

struct Publisher {
    broker: Broker,
    rx: Receiver<Arc<Event>>,
    bus_open: bool,
    /// Unsent events, oldest first; the first `in_flight` are published and await their
    /// confirms.
    buffer: VecDeque<Arc<Event>>,
    in_flight: usize,
    published: u64,
    dropped: u64,
    connected: bool,
    last_error: Option<String>,
    /// Most events kept in `buffer`.
    bound: usize,
    options: AmqpOptions,
    status: Arc<StatusRegistry>,
}

impl Publisher {
    fn new(
        broker: Broker,
        rx: Receiver<Arc<Event>>,
        bound: usize,
        options: AmqpOptions,
        status: Arc<StatusRegistry>,
    ) -> Publisher {
        let bound = bound.max(1);
        // A batch never exceeds the bound, so an older unsent event can always make room.
        let batch = options.batch.clamp(1, bound);
        Publisher {
            broker,
            rx,
            bus_open: true,
            buffer: VecDeque::new(),
            in_flight: 0,
            published: 0,
            dropped: 0,
            connected: false,
            last_error: None,
            bound,
            options: AmqpOptions { batch, ..options },
            status,
        }
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(self.options.backoff);
        loop {
            let Some(opened) = self.connect(&shutdown).await else {
                return;
            };
            match opened {
                Ok(link) => {
                    let since = Instant::now();
                    self.connected = true;
                    self.last_error = None;
                    self.report();
                    tracing::info!(broker = %self.broker.target, "AMQP publisher connected");
                    let end = self.publish_while_up(&link, &shutdown).await;
                    self.connected = false;
                    match end {
                        End::Stop => {
                            self.flush(&link).await;
                            link.close().await;
                            return;
                        }
                        End::Lost(error) => {
                            tracing::warn!(broker = %self.broker.target, %error, "AMQP link lost, reconnecting");
                            self.last_error = Some(error);
                            // A link given up on (no confirm in time, a nack) may still be
                            // open: close it aside, without holding up the bus reads.
                            tokio::spawn(link.close());
                            if since.elapsed() >= backoff.policy().reset_after {
                                backoff.reset();
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(broker = %self.broker.target, %error, "AMQP broker unreachable");
                    self.last_error = Some(error);
                }
            }
            self.report();
            let delay = backoff.next_delay();
            if !self.buffer_for(delay, &shutdown).await {
                return;
            }
        }
    }

    /// Opens the link while events keep arriving in the buffer; `None` on shutdown.
    async fn connect(&mut self, shutdown: &CancellationToken) -> Option<Result<Link, String>> {
        let timeout = self.options.connect_timeout;
        let open = tokio::time::timeout(
            timeout,
            Link::open(self.broker.url.clone(), self.broker.exchange.clone()),
        );
        tokio::pin!(open);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                opened = &mut open => {
                    return Some(match opened {
                        Ok(Ok(link)) => Ok(link),
                        Ok(Err(e)) => Err(self.scrub(e.to_string())),
                        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
                    });
                }
                received = self.rx.recv(), if self.bus_open => self.take(received),
            }
        }
    }

    /// Waits `delay` while buffering; false on shutdown.
    async fn buffer_for(&mut self, delay: Duration, shutdown: &CancellationToken) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = &mut sleep => return true,
                received = self.rx.recv(), if self.bus_open => self.take(received),
            }
        }
    }

    async fn publish_while_up(&mut self, link: &Link, shutdown: &CancellationToken) -> End {
        let mut health = tokio::time::interval(self.options.health_interval);
        loop {
            if shutdown.is_cancelled() {
                return End::Stop;
            }
            if !self.buffer.is_empty() {
                if let Err(error) = self.publish_batch(link, Some(shutdown)).await {
                    return error;
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return End::Stop,
                received = self.rx.recv(), if self.bus_open => self.take(received),
                _ = health.tick() => {
                    if !link.alive() {
                        return End::Lost("connection closed".into());
                    }
                }
            }
        }
    }

    /// Publishes the oldest events (up to a batch) and waits for their confirms, still
    /// buffering new events meanwhile. Confirmed events leave the buffer; on any failure
    /// they stay, to be sent again on the next link. With `shutdown`, a cancellation
    /// shortens the wait to `flush_on_stop` (the flush passes none: it has its own deadline).
    async fn publish_batch(&mut self, link: &Link, shutdown: Option<&CancellationToken>) -> Result<(), End> {
        let count = self.options.batch.min(self.buffer.len());
        let batch: Vec<Arc<Event>> = self.buffer.iter().take(count).cloned().collect();
        self.in_flight = count;
        let result = self.send_and_confirm(link, &batch, shutdown).await;
        // Whatever happened, these are no longer waiting on this link.
        let sent = self.in_flight;
        self.in_flight = 0;
        match result {
            Ok(()) => {
                // `take` never drops in-flight events, so they are still the front ones.
                self.buffer.drain(..sent);
                self.published += sent as u64;
                self.report();
                Ok(())
            }
            Err(end) => {
                self.enforce_bound();
                self.report();
                Err(end)
            }
        }
    }

    async fn send_and_confirm(
        &mut self,
        link: &Link,
        batch: &[Arc<Event>],
        shutdown: Option<&CancellationToken>,
    ) -> Result<(), End> {
        let mut confirms = Vec::with_capacity(batch.len());
        for event in batch {
            let body = event.to_json();
            let properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("utf-8".into())
                .with_delivery_mode(PERSISTENT)
                .with_headers(headers_of(&body));
            let payload = serde_json::to_vec(&body).unwrap_or_default();
            let confirm = link
                .channel
                .basic_publish(
                    self.broker.exchange.clone(),
                    routing_key_of(event),
                    BasicPublishOptions::default(),
                    &payload,
                    properties,
                )
                .await
                .map_err(|e| End::Lost(self.scrub(e.to_string())))?;
            confirms.push(confirm);
        }
        let all = futures_util::future::join_all(confirms);
        let deadline = tokio::time::sleep(self.options.confirm_timeout);
        tokio::pin!(all, deadline);
        let mut health = tokio::time::interval(self.options.health_interval);
        let stopping = async {
            match shutdown {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stopping);
        let mut stop_seen = false;
        let results = loop {
            tokio::select! {
                results = &mut all => break results,
                _ = &mut deadline => return Err(End::Lost("no publisher confirm in time".into())),
                // Giving up now would send the batch again on the flush (a duplicate for
                // every consumer): its confirms get the flush's time instead.
                _ = &mut stopping, if !stop_seen => {
                    stop_seen = true;
                    let by = tokio::time::Instant::now() + self.options.flush_on_stop;
                    if by < deadline.deadline() {
                        deadline.as_mut().reset(by);
                    }
                }
                _ = health.tick() => {
                    if !link.alive() {
                        return Err(End::Lost("connection closed".into()));
                    }
                }
                received = self.rx.recv(), if self.bus_open => self.take(received),
            }
        };
        for result in results {
            match result {
                Ok(Confirmation::Ack(_)) | Ok(Confirmation::NotRequested) => {}
                // The broker could not take it (internal error): resend on a new link.
                Ok(Confirmation::Nack(_)) => return Err(End::Lost("broker refused a message (nack)".into())),
                Err(e) => return Err(End::Lost(self.scrub(e.to_string()))),
            }
        }
        Ok(())
    }

    /// On shutdown: what is buffered (and what the bus still holds) goes out within
    /// `flush_on_stop`; the rest is lost, and said so.
    async fn flush(&mut self, link: &Link) {
        let deadline = Instant::now() + self.options.flush_on_stop;
        loop {
            while self.bus_open {
                match self.rx.try_recv() {
                    Ok(event) => self.take(Ok(event)),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => self.take(Err(RecvError::Lagged(n))),
                    Err(_) => break,
                }
            }
            if self.buffer.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let sent = tokio::time::timeout(left, self.publish_batch(link, None)).await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::warn!(
                    broker = %self.broker.target,
                    unsent = self.buffer.len(),
                    "AMQP publisher stopped with events not sent"
                );
                return;
            }
        }
    }

    /// One bus receive: buffer the event, or count what the bus dropped for us.
    fn take(&mut self, received: Result<Arc<Event>, RecvError>) {
        match received {
            Ok(event) => {
                self.buffer.push_back(event);
                self.enforce_bound();
            }
            Err(RecvError::Lagged(n)) => {
                // The bus overwrote events this task had not read yet: they never reach
                // the broker.
                self.dropped += n;
                tracing::warn!(dropped = n, "AMQP publisher fell behind the bus");
            }
            Err(RecvError::Closed) => self.bus_open = false,
        }
        self.report();
    }

    /// Drops the oldest unsent events beyond the bound, never one awaiting its confirm
    /// (the batch is far smaller than the bound, so there is always an older one to drop).
    fn enforce_bound(&mut self) {
        while self.buffer.len() > self.bound && self.buffer.len() > self.in_flight {
            self.buffer.remove(self.in_flight);
            self.dropped += 1;
        }
    }

    fn scrub(&self, message: String) -> String {
        if self.broker.password.is_empty() {
            message
        } else {
            message.replace(&self.broker.password, "redacted")
        }
    }

    fn report(&self) {
        let (health, detail) = if self.connected {
            (Health::Ok, format!("connected to {}", self.broker.target))
        } else {
            let why = self.last_error.as_deref().unwrap_or("connecting");
            (Health::Fail, format!("{}: {why}", self.broker.target))
        };
        self.status.set_with_counters(
            STATUS_COMPONENT,
            health,
            Some(detail),
            &[
                ("published", self.published),
                ("dropped", self.dropped),
                ("buffered", self.buffer.len() as u64),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::EventSpec;
    use serde_json::json;
    use uuid::Uuid;

    fn string(table: &FieldTable, key: &str) -> Option<String> {
        match table.inner().get(key) {
            Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn headers_carry_the_envelope_without_data() {
        let origin = Uuid::new_v4();
        let tenant = Uuid::new_v4();
        let (u1, u2) = (Uuid::new_v4(), Uuid::new_v4());
        let bus = Bus::new(origin);
        let event = bus.publish(
            EventSpec::new("call_created", "calls.call.created", json!({"call_id": "1.2"}))
                .tenant(tenant)
                .users(vec![u1, u2])
                .acl(format!("events.calls.{u1}")),
        );
        let h = headers_of(&event.to_json());
        assert_eq!(string(&h, "name").as_deref(), Some("call_created"));
        assert_eq!(string(&h, "origin_uuid"), Some(origin.to_string()));
        assert_eq!(string(&h, "tenant_uuid"), Some(tenant.to_string()));
        assert_eq!(string(&h, "required_acl"), Some(format!("events.calls.{u1}")));
        assert_eq!(string(&h, "required_access").as_deref(), Some("event.call_created"));
        assert_eq!(string(&h, "timestamp"), Some(event.timestamp.clone()));
        for u in [u1, u2] {
            assert_eq!(
                h.inner().get(format!("user_uuid:{u}").as_str()),
                Some(&AMQPValue::Boolean(true))
            );
        }
        assert!(!h.contains_key("user_uuid:*"));
        assert!(!h.contains_key("data"), "the payload is the body's, not a header");
        assert_eq!(h.inner().len(), 8);
    }

    #[test]
    fn tenant_events_flag_every_user_and_service_events_no_one() {
        let bus = Bus::new(Uuid::new_v4());
        let tenant = bus.publish(EventSpec::new("x", "a.b", json!({})).tenant(Uuid::new_v4()));
        let h = headers_of(&tenant.to_json());
        assert_eq!(h.inner().get("user_uuid:*"), Some(&AMQPValue::Boolean(true)));
        let service = bus.publish(EventSpec::new("y", "a.c", json!({})));
        let h = headers_of(&service.to_json());
        assert!(h.inner().keys().all(|k| !k.as_str().starts_with("user_uuid:")));
        assert!(!h.contains_key("tenant_uuid"));
    }

    #[test]
    fn an_over_long_routing_key_is_sent_empty() {
        let bus = Bus::new(Uuid::new_v4());
        let long = "k".repeat(300);
        let e = bus.publish(EventSpec::new("x", long, json!({})));
        assert_eq!(routing_key_of(&e).as_str(), "");
        let e = bus.publish(EventSpec::new("x", "users.1.created", json!({})));
        assert_eq!(routing_key_of(&e).as_str(), "users.1.created");
    }

    fn publisher(buffer: usize) -> Publisher {
        let bus = Bus::new(Uuid::new_v4());
        let broker = Broker {
            url: String::new(),
            password: "pw".into(),
            target: "h:5672".into(),
            exchange: "e".into(),
        };
        let options = AmqpOptions {
            batch: 2,
            ..AmqpOptions::default()
        };
        Publisher::new(
            broker,
            bus.subscribe(),
            buffer,
            options,
            Arc::new(StatusRegistry::default()),
        )
    }

    fn event(bus: &Bus, n: usize) -> Arc<Event> {
        bus.publish(EventSpec::new(format!("e{n}"), "k", json!({})))
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_unsent_event_and_counts_it() {
        let bus = Bus::new(Uuid::new_v4());
        let mut p = publisher(3);
        p.in_flight = 1;
        for n in 0..5 {
            p.take(Ok(event(&bus, n)));
        }
        let names: Vec<&str> = p.buffer.iter().map(|e| e.name.as_str()).collect();
        // e0 awaits its confirm and stays; e1 and e2 were the oldest unsent.
        assert_eq!(names, ["e0", "e3", "e4"]);
        assert_eq!(p.dropped, 2);
        p.take(Err(RecvError::Lagged(7)));
        assert_eq!(p.dropped, 9);
        let s = serde_json::to_value(p.status.snapshot()).expect("json");
        assert_eq!(
            s["amqp"],
            json!({"status": "fail", "detail": "h:5672: connecting", "published": 0, "dropped": 9, "buffered": 3})
        );
    }

    #[test]
    fn errors_never_show_the_password() {
        let p = publisher(1);
        assert_eq!(p.scrub("auth failed for pw".into()), "auth failed for redacted");
    }
}
