//! calld with 1,000 concurrent calls (2,000 channels, each a user's line). Run with:
//!
//!     cargo bench --bench calld_calls [-- --calls 1000 --rounds 200]
//!
//! The calls are scenario 21's recorded call copied and shifted 1 ms apart (see
//! `support/calls21.rs`), applied AMI and ARI interleaved, as accentd's feed applies them.
//! Measured, each against a baseline of the same run:
//!
//! * event-to-state latency: the time to apply each event to the live state (what an event
//!   waits for before `GET /calls` and the events task see it), p50/p99/max over every event;
//!   baseline: cloning each event;
//! * `GET /calls` with every call up: what the handler does besides HTTP and auth (copy the
//!   channels out of the state, the owners of their devices, one call object per channel,
//!   the JSON body), p50/p99 over the rounds; baseline: serializing that same body alone;
//! * memory per call: bytes the live state holds with every call up (a counting allocator,
//!   before and after applying the events up to that point), per call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accentd::calld::calls::Snapshot;
use accentd::calld::owners::{Owner, Owners};
use accentd::control::LiveState;

#[path = "support/calls21.rs"]
mod calls21;
#[path = "support/mod.rs"]
mod support;
use calls21::{synthesize, Ev};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn apply(state: &LiveState, e: &Ev) {
    match e {
        Ev::Ami(m) => state.apply_ami(m),
        Ev::Ari(a) => state.apply_ari(a),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// Each call's two devices as a user's line of one tenant.
fn owners(calls: usize) -> Arc<Owners> {
    let tenant = uuid::Uuid::new_v4();
    Arc::new(Owners::from_lines((0..2 * calls).map(|i| {
        (
            format!("PJSIP/u{i}"),
            Owner::Line {
                line_id: i as i64 + 1,
                tenant,
                user_uuid: Some(uuid::Uuid::new_v4()),
            },
        )
    })))
}

/// `GET /calls`'s work on the state as it is; returns the JSON body.
fn list_calls(state: &LiveState, owners: &Arc<Owners>) -> Vec<u8> {
    let mut channels = state.channels_shared();
    channels.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    let snap = Snapshot::new(channels, owners.clone(), state.bridge_classes(), HashMap::new());
    let items: Vec<_> = snap.channels.iter().map(|ch| snap.call_object(ch)).collect();
    #[derive(serde::Serialize)]
    struct List<'a> {
        items: Vec<accentd::calld::calls::CallObject<'a>>,
    }
    serde_json::to_vec(&List { items }).unwrap_or_default()
}

fn main() {
    let calls = support::arg("--calls", 1000).max(1);
    let rounds = support::arg("--rounds", 200).max(1);
    println!("command: cargo bench --bench calld_calls -- --calls {calls} --rounds {rounds}");
    println!(
        "settings: {calls} concurrent calls synthesized from scenario 21 (1 ms apart, AMI+ARI), {} build",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let events = synthesize(calls, true, true);
    let owners = owners(calls);

    // Apply until every call is up and talking (all channels bridged), timing each event.
    let before = ALLOCATED.load(Ordering::Relaxed);
    let state = LiveState::new();
    let _subscriber = state.subscribe();
    let mut latencies = Vec::with_capacity(events.len());
    let mut peak_at = None;
    for (i, e) in events.iter().enumerate() {
        let t = Instant::now();
        apply(&state, e);
        latencies.push(t.elapsed());
        if peak_at.is_none() && i % 100 == 0 {
            let c = state.counts();
            if c.calls == calls && c.bridges == calls {
                peak_at = Some(i + 1);
                break;
            }
        }
    }
    let Some(peak_at) = peak_at else {
        println!("the calls were never all up at once; nothing measured");
        return;
    };
    let held = ALLOCATED.load(Ordering::Relaxed) - before - (latencies.capacity() * 16) as isize;
    let counts = state.counts();

    // GET /calls at the peak.
    let mut listing = Vec::with_capacity(rounds);
    let mut serialize = Vec::with_capacity(rounds);
    let mut body_len = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let body = black_box(list_calls(&state, &owners));
        listing.push(t.elapsed());
        body_len = body.len();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let t = Instant::now();
        black_box(serde_json::to_vec(&value).unwrap_or_default());
        serialize.push(t.elapsed());
    }

    // The rest of the events (the calls end), still timed.
    for e in &events[peak_at..] {
        let t = Instant::now();
        apply(&state, e);
        latencies.push(t.elapsed());
    }
    let mut clones = Vec::with_capacity(events.len());
    for e in &events {
        let t = Instant::now();
        black_box(e.clone());
        clones.push(t.elapsed());
    }
    for v in [&mut latencies, &mut listing, &mut serialize, &mut clones] {
        v.sort_unstable();
    }

    println!(
        "at the peak: {} calls, {} channels, {} bridges; GET /calls body {} KB",
        counts.calls,
        counts.channels,
        counts.bridges,
        body_len / 1024
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>14} {:>8}",
        "measure", "p50 µs", "p99 µs", "max µs", "baseline p99", "ratio"
    );
    let row = |name: &str, v: &[Duration], base: &[Duration]| {
        let (p99, b99) = (percentile(v, 0.99), percentile(base, 0.99));
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>10.1} {:>14.1} {:>7.1}x",
            name,
            us(percentile(v, 0.5)),
            us(p99),
            us(percentile(v, 1.0)),
            us(b99),
            us(p99) / us(b99).max(0.001)
        );
    };
    row(
        &format!("event to state ({} events)", events.len()),
        &latencies,
        &clones,
    );
    row(&format!("GET /calls work ({rounds} rounds)"), &listing, &serialize);
    let per_call = held as f64 / calls as f64;
    println!(
        "memory held by the live state at the peak: {:.1} MB, {:.1} KB per call (goal < 20 KB)",
        held as f64 / 1e6,
        per_call / 1024.0
    );
    println!(
        "goals: event-to-state p99 {:.3} ms (< 5 ms): {}",
        us(percentile(&latencies, 0.99)) / 1000.0,
        if percentile(&latencies, 0.99) < Duration::from_millis(5) {
            "met"
        } else {
            "missed"
        }
    );
}
