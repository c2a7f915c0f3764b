//! Invariants of the AMI framer, checked on arbitrary bytes. Shared by the `ami_framer` fuzz
//! target and by `tests/it/ami_fuzz_corpus.rs` (which includes this file with `#[path]`), so the
//! corpus is replayed with exactly the fuzzer's checks in every `cargo test`.

use accentd::ami::{drain, frame_all, AmiFramer, Frame, FrameError, FrameLimits};

/// Limits picked from the input so that the fuzzer also reaches the limit paths; large
/// defaults for half of the inputs.
pub fn limits_for(data: &[u8]) -> FrameLimits {
    match data {
        [flags, a, b, c, ..] if flags & 1 == 1 => FrameLimits {
            max_message_bytes: 16 + usize::from(*a) * 4,
            max_line_bytes: 1 + usize::from(*b) / 2,
            max_headers: 1 + usize::from(*c) % 16,
        },
        _ => FrameLimits::default(),
    }
}

/// Feeds `data` in chunks whose sizes (1 to 97 bytes) follow a small generator seeded from
/// `seed` (seed 0: one byte at a time), draining after each push, then finishes.
pub fn frame_chunked(framer: &mut AmiFramer, data: &[u8], seed: u32) -> Vec<Result<Frame, FrameError>> {
    let mut out = Vec::new();
    let mut state = seed | 1;
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = if seed == 0 {
            1
        } else {
            1 + (state as usize % 97).min(rest.len() - 1)
        };
        let (chunk, tail) = rest.split_at(size);
        framer.push(chunk);
        drain(framer, &mut out);
        rest = tail;
    }
    if let Err(err) = framer.finish() {
        out.push(Err(err));
    }
    out
}

/// Panics if any invariant fails:
/// 1. framing never panics (with and without greeting, any limits);
/// 2. the frames and errors do not depend on how the bytes are split across reads (one
///    push, pseudo-random chunks, one byte at a time);
/// 3. every byte is accounted for: messages' `to_bytes` plus discarded bytes == input;
/// 4. when nothing was discarded, the messages concatenate to the input exactly;
/// 5. each message's `to_bytes`, framed alone, gives back the same message.
pub fn check(data: &[u8]) {
    let limits = limits_for(data);
    let seed = data
        .iter()
        .take(8)
        .fold(0x9e37_79b9_u32, |h, b| h.rotate_left(5) ^ u32::from(*b));

    for greeting in [true, false] {
        let new = || {
            if greeting {
                AmiFramer::new(limits)
            } else {
                AmiFramer::without_greeting(limits)
            }
        };
        let whole = frame_all(&mut new(), data);
        let chunked = frame_chunked(&mut new(), data, seed);
        assert_eq!(whole, chunked, "chunking changed the frames");
        let bytewise = frame_chunked(&mut new(), data, 0);
        assert_eq!(whole, bytewise, "byte-by-byte feeding changed the frames");
    }

    let mut framer = AmiFramer::without_greeting(limits);
    let frames = frame_all(&mut framer, data);
    let mut rebuilt = Vec::with_capacity(data.len());
    for frame in &frames {
        match frame {
            Ok(Frame::Message(msg)) => {
                let bytes = msg.to_bytes();
                let alone = frame_all(&mut AmiFramer::without_greeting(limits), &bytes);
                assert_eq!(alone, [Ok(Frame::Message(msg.clone()))], "re-framing differs");
                rebuilt.extend_from_slice(&bytes);
            }
            Ok(Frame::Greeting(_)) => panic!("greeting from a framer that expects none"),
            Err(_) => {}
        }
    }
    assert_eq!(
        rebuilt.len() as u64 + framer.discarded_bytes(),
        data.len() as u64,
        "bytes lost or duplicated"
    );
    if framer.discarded_bytes() == 0 {
        assert_eq!(rebuilt, data, "messages do not concatenate to the input");
    }
}
