//! The AMI framer against every session recorded from a real Asterisk 22
//! (`tests/asterisk-fixtures/*/ami.raw`, and the 12 MB burst of scenario 15, gzip-compressed).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use accentd::ami::{drain, frame_all, AmiFramer, AmiMessage, Frame, FrameError, FrameLimits, MessageKind};
use proptest::prelude::*;

const GREETING: &str = "Asterisk Call Manager/11.0.0";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures")
}

/// Reads `name` (or `name.gz`) from a scenario folder.
fn read_fixture(scenario: &Path, name: &str) -> Option<Vec<u8>> {
    if let Ok(bytes) = std::fs::read(scenario.join(name)) {
        return Some(bytes);
    }
    let gz = std::fs::read(scenario.join(format!("{name}.gz"))).ok()?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).expect("gunzip fixture");
    Some(out)
}

/// Every scenario with a recorded AMI session, with the bytes of `name`.
fn recordings(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("tests/asterisk-fixtures")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let out: Vec<_> = dirs
        .iter()
        .filter_map(|dir| {
            let name_of = dir.file_name()?.to_string_lossy().into_owned();
            Some((name_of, read_fixture(dir, name)?))
        })
        .collect();
    assert!(out.len() >= 19, "expected 19 recorded sessions, found {}", out.len());
    out
}

/// One recorded server session and its one-shot framing.
struct Session {
    scenario: String,
    bytes: Vec<u8>,
    frames: Vec<Result<Frame, FrameError>>,
    discarded: u64,
}

/// All recorded sessions, framed once and shared by the tests of this file (the 12 MB burst
/// takes seconds to frame in a debug build).
fn sessions() -> &'static [Session] {
    static SESSIONS: OnceLock<Vec<Session>> = OnceLock::new();
    SESSIONS.get_or_init(|| {
        recordings("ami.raw")
            .into_iter()
            .map(|(scenario, bytes)| {
                let mut framer = AmiFramer::new(FrameLimits::default());
                let frames = frame_all(&mut framer, &bytes);
                Session {
                    scenario,
                    bytes,
                    frames,
                    discarded: framer.discarded_bytes(),
                }
            })
            .collect()
    })
}

fn session(scenario: &str) -> &'static Session {
    sessions()
        .iter()
        .find(|s| s.scenario == scenario)
        .unwrap_or_else(|| panic!("no recording {scenario}"))
}

/// One small recording, read and framed on its own (without the shared cache, so the split
/// tests stay fast when run alone).
fn recording(scenario: &str) -> Vec<u8> {
    read_fixture(&fixtures_dir().join(scenario), "ami.raw").expect("recording")
}

fn framed(scenario: &str) -> (Vec<u8>, Vec<Result<Frame, FrameError>>) {
    let bytes = recording(scenario);
    let frames = frame_all(&mut AmiFramer::new(FrameLimits::default()), &bytes);
    (bytes, frames)
}

fn messages(frames: &[Result<Frame, FrameError>]) -> Vec<&AmiMessage> {
    frames
        .iter()
        .filter_map(|f| match f {
            Ok(Frame::Message(m)) => Some(m),
            _ => None,
        })
        .collect()
}

/// Blank lines after the greeting: each ends exactly one message.
fn blank_lines(bytes: &[u8]) -> usize {
    let body = &bytes[GREETING.len() + 2..];
    usize::from(body.starts_with(b"\r\n")) + body.windows(4).filter(|w| w == b"\r\n\r\n").count()
}

#[test]
fn every_recording_round_trips_byte_exact() {
    let mut total = 0;
    for Session {
        scenario,
        bytes,
        frames,
        discarded,
    } in sessions()
    {
        assert_eq!(
            frames.first(),
            Some(&Ok(Frame::Greeting(GREETING.into()))),
            "{scenario}: greeting first"
        );
        assert!(frames.iter().all(|f| f.is_ok()), "{scenario}: framing error");
        assert!(
            frames[1..].iter().all(|f| matches!(f, Ok(Frame::Message(_)))),
            "{scenario}: only one greeting"
        );
        let msgs = messages(frames);
        assert_eq!(msgs.len(), blank_lines(bytes), "{scenario}: one message per blank line");
        assert_eq!(*discarded, 0, "{scenario}: nothing skipped");

        let mut rebuilt = format!("{GREETING}\r\n").into_bytes();
        for msg in &msgs {
            // Asterisk 22 output is reproducible from the headers alone: no raw copy kept.
            assert_eq!(msg.raw(), None, "{scenario}: non-canonical message {msg:?}");
            assert_ne!(msg.kind(), MessageKind::Other, "{scenario}: {msg:?}");
            msg.write_to(&mut rebuilt);
        }
        assert!(rebuilt == *bytes, "{scenario}: re-serialized bytes differ");
        total += msgs.len();
    }
    assert!(total > 30_000, "only {total} messages");
}

#[test]
fn every_sent_session_parses_as_actions() {
    for (scenario, bytes) in recordings("ami-sent.raw") {
        let frames = frame_all(&mut AmiFramer::without_greeting(FrameLimits::default()), &bytes);
        let msgs = messages(&frames);
        assert_eq!(msgs.len(), frames.len(), "{scenario}: errors in sent actions");
        assert!(msgs.iter().all(|m| m.kind() == MessageKind::Action), "{scenario}");
        assert_eq!(msgs[0].action(), Some("Login"));
        assert_eq!(msgs.last().and_then(|m| m.action()), Some("Logoff"));
        let rebuilt: Vec<u8> = msgs.iter().flat_map(|m| m.to_bytes()).collect();
        assert!(rebuilt == bytes, "{scenario}: round trip");
    }
}

#[test]
fn event_lists_open_and_close_with_the_same_action_id() {
    let (mut starts, mut completes) = (0, 0);
    for Session { scenario, frames, .. } in sessions() {
        let mut open: Vec<String> = Vec::new();
        for msg in messages(frames) {
            if msg.is_event_list_start() {
                assert_eq!(msg.kind(), MessageKind::Response, "{scenario}");
                open.push(msg.action_id().expect("ActionID").to_owned());
                starts += 1;
            } else if msg.is_event_list_complete() {
                assert_eq!(msg.kind(), MessageKind::Event, "{scenario}");
                let id = msg.action_id().expect("ActionID");
                assert!(open.iter().any(|o| o == id), "{scenario}: Complete for {id}");
                open.retain(|o| o != id);
                completes += 1;
            }
        }
        assert!(open.is_empty(), "{scenario}: unclosed lists {open:?}");
    }
    assert_eq!((starts, completes), (16, 16));
}

#[test]
fn recorded_responses_and_command_output() {
    let msgs = messages(&session("14-ami-actions").frames);
    let by_id = |id: &str| {
        msgs.iter()
            .find(|m| m.kind() == MessageKind::Response && m.action_id() == Some(id))
            .unwrap_or_else(|| panic!("response {id}"))
    };
    let cmd = by_id("cmd-version");
    assert_eq!(cmd.response(), Some("Success"));
    assert_eq!(cmd.get("Message"), Some("Command output follows"));
    assert_eq!(
        cmd.output().collect::<Vec<_>>(),
        ["Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-28 12:48:53 UTC"]
    );
    assert_eq!(by_id("orig-fail").response(), Some("Error"));
    assert_eq!(by_id("bad-1").response(), Some("Error"));
    assert_eq!(by_id("accent-22").response(), Some("Goodbye"));
    // OriginateResponse is an event even though it carries a Response header.
    let orig = msgs
        .iter()
        .find(|m| m.event() == Some("OriginateResponse"))
        .expect("OriginateResponse");
    assert_eq!(orig.kind(), MessageKind::Event);
    assert_eq!(orig.response(), None);
    assert_eq!(orig.get("Response"), Some("Success"));
    // Values with leading spaces are kept (PJSIP RTCP statistics).
    assert!(messages(&session("21-sip-call-answered").frames)
        .iter()
        .flat_map(|m| m.get_all("Value"))
        .any(|v| v.starts_with("   minrxlost=") || v.starts_with("  minrxlost=")));
}

fn frame_in_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Result<Frame, FrameError>> {
    let mut framer = AmiFramer::new(FrameLimits::default());
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        framer.push(&bytes[at..cut]);
        drain(&mut framer, &mut out);
        at = cut;
    }
    framer.push(&bytes[at..]);
    drain(&mut framer, &mut out);
    if let Err(err) = framer.finish() {
        out.push(Err(err));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random chunk splits of real sessions give exactly the one-shot frames.
    #[test]
    fn random_chunking_gives_the_same_frames(
        which in 0usize..3,
        sizes in proptest::collection::vec(1usize..3000, 1..400),
    ) {
        let scenario = ["14-ami-actions", "20-sip-register", "21-sip-call-answered"][which];
        let (bytes, whole) = framed(scenario);
        let mut cuts = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            at += size;
            if at >= bytes.len() {
                break;
            }
            cuts.push(at);
        }
        prop_assert_eq!(frame_in_chunks(&bytes, &cuts), whole);
    }
}

/// Every single split point of a whole recording (the PJSIP registration session: event lists,
/// the largest messages of all recordings, `PJSIPShowEndpoint` details). Feeding `[..k]` then `[k..]` can only change the message that contains `k`:
/// between two messages the framer holds no state but its buffer (asserted below: it is empty
/// after each message), so every message is framed alone, from a fresh framer, split at each
/// of its own offsets. This covers all `N + 1` cut points with `O(sum of message sizes²)`
/// work instead of `O(N²)`, a few seconds in a debug build.
#[test]
fn every_single_split_point_of_a_recording() {
    let (bytes, whole) = framed("20-sip-register");
    // The spans of the greeting and of each message, from the one-shot framing.
    let mut spans = vec![(0, GREETING.len() + 2)];
    for msg in messages(&whole) {
        let start = spans.last().map_or(0, |s| s.1);
        spans.push((start, start + msg.to_bytes().len()));
    }
    assert_eq!(spans.last().map(|s| s.1), Some(bytes.len()));

    let mut splits = 0;
    for (index, &(start, end)) in spans.iter().enumerate() {
        let expected = &whole[index];
        for cut in start..=end {
            let mut framer = if index == 0 {
                AmiFramer::new(FrameLimits::default())
            } else {
                AmiFramer::without_greeting(FrameLimits::default())
            };
            let mut out = Vec::new();
            framer.push(&bytes[start..cut]);
            drain(&mut framer, &mut out);
            framer.push(&bytes[cut..end]);
            drain(&mut framer, &mut out);
            assert_eq!(out.len(), 1, "split at {cut}");
            assert_eq!(&out[0], expected, "split at {cut}");
            assert_eq!(framer.buffered_len(), 0, "state left after the message");
            splits += 1;
        }
    }
    // Each inner boundary was counted twice (end of one span, start of the next).
    assert_eq!(splits, bytes.len() + spans.len());
}

/// The literal version on a real slice (the first 2 KB of complete messages of a session):
/// push `[..k]`, then `[k..]`, for every `k`, against the one-shot framing.
#[test]
fn every_split_point_literally_on_a_session_prefix() {
    let bytes = recording("01-internal-answered-caller-hangup");
    let mut end = 0;
    while end < 2048 {
        end += bytes[end..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("message end")
            + 4;
    }
    let slice = &bytes[..end];
    let whole = frame_all(&mut AmiFramer::new(FrameLimits::default()), slice);
    assert!(messages(&whole).len() > 4);
    for cut in 0..=slice.len() {
        assert_eq!(frame_in_chunks(slice, &[cut]), whole, "split at {cut}");
    }
}
