//! Scenario 21's recorded call (2001 calls 2002, answered after 2 s, 5 s of talk) copied into
//! many concurrent calls, for the benchmarks of the live state and calld (included with
//! `#[path]`; not a bench target). Its AMI and ARI events from the first channel to the last
//! device update are copied once per call with the uniqueids, channel names, devices
//! (`PJSIP/u<2k>`, `PJSIP/u<2k+1>`) and bridge id renamed, and call `k` is shifted by `k` ms.

use std::path::Path;

use accentd::ami::{frame_all, AmiFramer, AmiMessage, Frame, FrameLimits, MessageKind};
use accentd::ari::{parse_event, AriEvent};

#[derive(Clone)]
pub enum Ev {
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
pub fn synthesize(calls: usize, with_ami: bool, with_ari: bool) -> Vec<Ev> {
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
