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
use std::path::Path;
use std::time::{Duration, Instant};

use accentd::ami::{frame_all, AmiFramer, AmiMessage, Frame, FrameLimits, MessageKind};
use accentd::ari::{parse_event, AriEvent};
use accentd::control::LiveState;

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

#[derive(Clone)]
enum Ev {
    Ami(AmiMessage),
    Ari(AriEvent),
}

const CALL_START_US: i64 = 1_795_874_804_600_000; // 14:06:44.600, before the first Newchannel
const CALL_END_US: i64 = 1_795_874_811_800_000; // 14:06:51.800, after the last device update
const BRIDGE: &str = "2f4aaf37-cfcf-4562-bfaa-9beaed494379";

/// Renames what identifies the recorded call so that call `k` is a different call.
fn rename(text: &str, k: usize) -> String {
    let (a, b) = (2 * k, 2 * k + 1);
    text.replace("1795874804.0", &format!("1795874804.{a}"))
        .replace("1795874804.1", &format!("1795874804.{b}"))
        .replace("PJSIP/2001-00000000", &format!("PJSIP/u{a}-{a:08x}"))
        .replace("PJSIP/2002-00000001", &format!("PJSIP/u{b}-{b:08x}"))
        .replace("PJSIP/2001", &format!("PJSIP/u{a}"))
        .replace("PJSIP/2002", &format!("PJSIP/u{b}"))
        .replace(BRIDGE, &format!("2f4aaf37-cfcf-4562-bfaa-{k:012x}"))
}

fn ami_us(m: &AmiMessage) -> Option<i64> {
    let (s, f) = m.get("Timestamp")?.split_once('.')?;
    Some(s.parse::<i64>().ok()? * 1_000_000 + format!("{f:0<6}").get(..6)?.parse::<i64>().ok()?)
}

/// The recorded call's AMI events and ARI lines, each with its time in µs.
struct Recorded {
    ami: Vec<(i64, AmiMessage)>,
    ari: Vec<(i64, String)>,
}

fn recorded() -> Recorded {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures/21-sip-call-answered");
    let bytes = std::fs::read(dir.join("ami.raw")).expect("ami.raw of scenario 21");
    let mut framer = AmiFramer::new(FrameLimits::default());
    let ami = frame_all(&mut framer, &bytes)
        .into_iter()
        .filter_map(|f| match f {
            Ok(Frame::Message(m)) if m.kind() == MessageKind::Event => Some((ami_us(&m)?, m)),
            _ => None,
        })
        .filter(|(us, _)| (CALL_START_US..=CALL_END_US).contains(us))
        .collect();
    let text = std::fs::read_to_string(dir.join("ari-events.jsonl")).expect("ari-events.jsonl of scenario 21");
    let ari = text
        .lines()
        .filter_map(|line| {
            let ev = parse_event(line).ok()?;
            let t = accentd::ari::parse_ari_timestamp(ev.timestamp()?).ok()?;
            Some(((t.unix_timestamp_nanos() / 1000) as i64, line.to_owned()))
        })
        .filter(|(us, _)| (CALL_START_US..=CALL_END_US).contains(us))
        .collect();
    Recorded { ami, ari }
}

/// `calls` copies of the call, shifted by 1 ms each, merged in time order (stable: each
/// stream keeps its order).
fn synthesize(calls: usize, with_ami: bool, with_ari: bool) -> Vec<Ev> {
    let Recorded { ami, ari } = recorded();
    let mut timed: Vec<(i64, usize, Ev)> = Vec::new();
    for k in 0..calls {
        let shift = k as i64 * 1000;
        if with_ami {
            for (us, m) in &ami {
                let mut copy = AmiMessage::new();
                for (key, value) in m.headers() {
                    copy.push(key, rename(value, k));
                }
                timed.push((us + shift, timed.len(), Ev::Ami(copy)));
            }
        }
        if with_ari {
            for (us, line) in &ari {
                let ev = parse_event(&rename(line, k)).expect("renamed ARI event");
                timed.push((us + shift, timed.len(), Ev::Ari(ev)));
            }
        }
    }
    timed.sort_by_key(|(us, seq, _)| (*us, *seq));
    timed.into_iter().map(|(_, _, e)| e).collect()
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
