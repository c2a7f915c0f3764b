//! Cost of keeping the live state (`accentd::control::LiveState`) up to date, per applied
//! event, with 1,000 concurrent calls. Run with:
//!
//!     cargo bench --bench control_state [-- --calls 1000 --rounds 5]
//!
//! The calls are synthesized from the recorded two-party SIP call of scenario 21
//! (`tests/asterisk-fixtures/21-sip-call-answered`: 2001 calls 2002, answered after 2 s, 5 s of
//! talk): its AMI and ARI events from the first channel to the last device update are copied
//! once per call with the uniqueids, channel names, devices and bridge id renamed, and call `k`
//! is shifted by `k` ms, so with 1,000 calls (the recorded call lasts 7 s) all of them are up
//! at the same time. The events are applied in time order, AMI alone, ARI alone, and both
//! interleaved (what accentd does), into a fresh state with one change subscriber (not read:
//! the changes are built and sent, as in production).
//!
//! The baseline, measured in the same run over the same events, is cloning each event (what
//! merely touching every event costs): the ratio says how many clones of the event one apply
//! costs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use accentd::control::LiveState;

#[path = "support/calls21.rs"]
mod calls21;
use calls21::{synthesize, Ev};

struct Settings {
    calls: usize,
    rounds: usize,
}

fn settings() -> Settings {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Settings {
        calls: get("--calls", 1000).max(1),
        rounds: get("--rounds", 5).max(1),
    }
}

/// Applies every event to a fresh state; returns the time taken and the peak numbers of
/// calls, channels and bridges (sampled every 1,000 events, each peak on its own).
fn apply_all(events: &[Ev]) -> (Duration, usize, usize, usize) {
    let state = LiveState::new();
    let _subscriber = state.subscribe();
    let mut peak = (0, 0, 0);
    let start = Instant::now();
    for (i, e) in events.iter().enumerate() {
        match e {
            Ev::Ami(m) => state.apply_ami(m),
            Ev::Ari(a) => state.apply_ari(a),
        }
        if i % 1000 == 0 {
            let c = state.counts();
            peak = (peak.0.max(c.calls), peak.1.max(c.channels), peak.2.max(c.bridges));
        }
    }
    let took = start.elapsed();
    let end = state.counts();
    assert_eq!(
        (end.channels, end.bridges, end.calls),
        (0, 0, 0),
        "state not empty at the end"
    );
    (took, peak.0, peak.1, peak.2)
}

/// Clones every event (the baseline).
fn clone_all(events: &[Ev]) -> Duration {
    let start = Instant::now();
    for e in events {
        black_box(e.clone());
    }
    start.elapsed()
}

fn best(mut f: impl FnMut() -> Duration, rounds: usize) -> Duration {
    (0..rounds).map(|_| f()).min().unwrap_or_default()
}

fn main() {
    let s = settings();
    println!(
        "command: cargo bench --bench control_state -- --calls {} --rounds {}",
        s.calls, s.rounds
    );
    println!(
        "settings: {} concurrent calls synthesized from scenario 21 (1 ms apart), best of {} rounds, \
         fresh LiveState per round with one (unread) change subscriber, {} build",
        s.calls,
        s.rounds,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!(
        "{:<10} {:>9} {:>14} {:>10} {:>16} {:>8} {:>22}",
        "stream", "events", "events/s", "ns/event", "baseline ns/ev", "ratio", "peak calls/chans/brs"
    );
    for (label, with_ami, with_ari) in [("AMI", true, false), ("ARI", false, true), ("AMI+ARI", true, true)] {
        let events = synthesize(s.calls, with_ami, with_ari);
        let n = events.len() as f64;
        let mut peak = (0, 0, 0);
        let applied = best(
            || {
                let (t, calls, chans, brs) = apply_all(&events);
                peak = (calls, chans, brs);
                t
            },
            s.rounds,
        );
        let baseline = best(|| clone_all(&events), s.rounds);
        let ns = applied.as_nanos() as f64 / n;
        let base_ns = baseline.as_nanos() as f64 / n;
        println!(
            "{:<10} {:>9} {:>14.0} {:>10.0} {:>16.0} {:>7.1}x {:>22}",
            label,
            events.len(),
            n / applied.as_secs_f64(),
            ns,
            base_ns,
            ns / base_ns,
            format!("{}/{}/{}", peak.0, peak.1, peak.2)
        );
    }
}
