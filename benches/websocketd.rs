//! Websocket fan-out (issue 7: "fan-out of events to 1,000 websocket clients (events/s
//! delivered, p99 latency from publish to receipt)").
//!
//!     cargo bench --bench websocketd [-- --clients 1000 --events 2000 --rate 100]
//!
//! A real accentd on loopback and `--clients` websocket clients (tokio-tungstenite, protocol
//! v2, each subscribed to the event and started), all in this process on the same cores:
//!
//! * throughput: `--events` events published in batches of 50, the next batch once every
//!   client has received the previous one; deliveries per second over the whole run;
//! * latency: events published at `--rate` per second; for every delivery, the time from
//!   `Bus::publish` to the client having the frame (the publish time travels in the event).
//!
//! The baseline, measured in the same run with the same schedules: as many plain tasks each
//! reading its own receiver of the same bus (what any in-process consumer costs, without
//! filters, serialisation, sockets or frames).

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accentd::bus::{Bus, EventSpec};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::arg;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const BATCH: usize = 50;

/// What the receivers share: deliveries so far and every latency seen (ns).
#[derive(Default)]
struct Tally {
    delivered: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

struct Clock(Instant);

impl Clock {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// The publish time carried by an event body, read without parsing the whole frame.
fn sent_ns(text: &str) -> Option<u64> {
    let at = text.find("\"sent_ns\":")? + "\"sent_ns\":".len();
    let digits: String = text[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn event(tenant: Uuid, clock: &Clock, seq: usize) -> EventSpec {
    EventSpec::new(
        "chatd_presence_updated",
        format!("chatd.users.{tenant}.presences.updated"),
        // A presence-sized payload.
        json!({"sent_ns": clock.now_ns(), "seq": seq, "uuid": tenant, "tenant_uuid": tenant,
               "state": "available", "status": "", "last_activity": "2026-11-29T10:00:00.000000+00:00",
               "connected": true, "mobile": false, "do_not_disturb": false, "line_state": "talking",
               "lines": [{"id": 1, "state": "talking"}]}),
    )
    .tenant(tenant)
}

/// Publishes `events` in batches, each once `consumers` received the previous one.
async fn throughput(bus: &Bus, tenant: Uuid, clock: &Clock, tally: &Tally, consumers: usize, events: usize) -> f64 {
    let start = tally.delivered.load(Ordering::Relaxed);
    let began = Instant::now();
    let mut sent = 0;
    while sent < events {
        for _ in 0..BATCH {
            bus.publish(event(tenant, clock, sent));
            sent += 1;
        }
        let target = start + (sent * consumers) as u64;
        while tally.delivered.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    (tally.delivered.load(Ordering::Relaxed) - start) as f64 / began.elapsed().as_secs_f64()
}

/// Publishes `events` at `rate` per second; the latencies of their deliveries.
async fn latency(
    bus: &Bus,
    tenant: Uuid,
    clock: &Clock,
    tally: &Tally,
    consumers: usize,
    events: usize,
    rate: usize,
) -> Vec<u64> {
    tally.latencies.lock().await.clear();
    let start = tally.delivered.load(Ordering::Relaxed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for seq in 0..events {
        tick.tick().await;
        bus.publish(event(tenant, clock, seq));
    }
    let target = start + (events * consumers) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally.delivered.load(Ordering::Relaxed) < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut l = tally.latencies.lock().await.clone();
    l.sort_unstable();
    l
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1_000.0
}

#[allow(clippy::field_reassign_with_default)]
fn main() -> anyhow::Result<()> {
    let clients = arg("--clients", 1000);
    let events = arg("--events", 2000);
    let rate = arg("--rate", 100);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let config = support::bench_config(dir.path());
        let running = accentd::app::start(config).await?;
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("http://{}/api/auth/0.1/token", running.addr))
            .basic_auth("bench", Some("bench-password"))
            .send()
            .await?;
        let body: serde_json::Value = resp.json().await?;
        let token = body["data"]["token"].as_str().unwrap_or_default().to_string();
        let tenant: Uuid = body["data"]["metadata"]["tenant_uuid"]
            .as_str()
            .unwrap_or_default()
            .parse()?;
        let bus = running.app.bus.clone();
        let clock = Arc::new(Clock(Instant::now()));

        println!(
            "accentd websocket fan-out benchmark: {clients} clients, client and server in one process on the same host"
        );

        // Baseline consumers: plain bus receivers.
        let base = Arc::new(Tally::default());
        let mut plain = Vec::new();
        for _ in 0..clients {
            let mut rx = bus.subscribe();
            let (tally, clock) = (base.clone(), clock.clone());
            plain.push(tokio::spawn(async move {
                while let Ok(e) = rx.recv().await {
                    let sent = e.data["sent_ns"].as_u64().unwrap_or(0);
                    let l = clock.now_ns().saturating_sub(sent);
                    tally.latencies.lock().await.push(l);
                    tally.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let base_tp = throughput(&bus, tenant, &clock, &base, clients, events).await;
        let base_lat = latency(&bus, tenant, &clock, &base, clients, events.min(rate * 10), rate).await;
        for t in plain {
            t.abort();
        }

        // Websocket clients.
        let url = format!("ws://{}/api/websocketd/?token={token}&version=2", running.addr);
        let tally = Arc::new(Tally::default());
        let connected = Instant::now();
        let mut sockets = Vec::new();
        for _ in 0..clients {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
            ws.next().await; // init
            ws.send(Message::text(
                json!({"op": "subscribe", "data": {"event_name": "chatd_presence_updated"}}).to_string(),
            ))
            .await?;
            ws.next().await;
            ws.send(Message::text(json!({"op": "start"}).to_string())).await?;
            ws.next().await;
            let (tally, clock) = (tally.clone(), clock.clone());
            sockets.push(tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        if let Some(sent) = sent_ns(t.as_str()) {
                            let l = clock.now_ns().saturating_sub(sent);
                            tally.latencies.lock().await.push(l);
                            tally.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        println!(
            "{clients} clients connected and started in {:.2} s",
            connected.elapsed().as_secs_f64()
        );
        let ws_tp = throughput(&bus, tenant, &clock, &tally, clients, events).await;
        let ws_lat = latency(&bus, tenant, &clock, &tally, clients, events.min(rate * 10), rate).await;
        let closed = running.app.websocketd.closed_slow();

        println!();
        println!("throughput ({events} events x {clients} clients, batches of {BATCH}):");
        println!("  websocket: {ws_tp:>12.0} deliveries/s");
        println!("  baseline : {base_tp:>12.0} deliveries/s (plain bus receivers)");
        println!("  ratio    : {:.2}x slower", base_tp / ws_tp);
        println!(
            "latency publish -> receipt at {rate} events/s ({} deliveries):",
            ws_lat.len()
        );
        println!(
            "  websocket: p50 {:.0} us  p99 {:.0} us  max {:.0} us",
            pct(&ws_lat, 0.5),
            pct(&ws_lat, 0.99),
            pct(&ws_lat, 1.0)
        );
        println!(
            "  baseline : p50 {:.0} us  p99 {:.0} us  max {:.0} us",
            pct(&base_lat, 0.5),
            pct(&base_lat, 0.99),
            pct(&base_lat, 1.0)
        );
        println!("  ratio p99: {:.1}x", pct(&ws_lat, 0.99) / pct(&base_lat, 0.99));
        println!("clients closed as too slow: {closed}");
        for t in sockets {
            t.abort();
        }
        running.stop().await;
        Ok(())
    })
}
