//! AMI wire format: message model, incremental framer and serializer.
//!
//! # The format, as the recordings show it
//!
//! Every byte below was checked against the sessions recorded from Asterisk 22.10.1 in
//! `tests/asterisk-fixtures/*/ami.raw` (19 sessions, about 13 MB):
//!
//! * The session starts with one greeting line, `Asterisk Call Manager/11.0.0\r\n`. It has no
//!   colon, which is how the framer tells it from a message.
//! * A message is a run of `Key: Value\r\n` lines ended by an empty line (`\r\n`). The first
//!   header says what it is: `Response:`, `Event:` or (client to server) `Action:`. Only the
//!   first header counts: the `OriginateResponse` event carries a `Response: Success` header.
//! * Asterisk writes every header as `"%s: %s\r\n"`, so the separator is exactly `": "` and
//!   the value is everything after it, *verbatim*. The value may itself begin with spaces: the
//!   RTCP statistics variables of the PJSIP scenarios arrive as
//!   `Value:   minrxlost=000.000000;  maxrxlost=...`. Trimming would corrupt such values and
//!   break the byte-exact round trip, so the parser strips exactly one separator space and
//!   nothing else (no trailing trim either). Empty values arrive as `Key: \r\n` (hundreds per
//!   session: `AccountCode: `, `Extra: `...) and parse to `""`.
//! * `EventList: start` (lower case) is in the response to a list action, and
//!   `EventList: Complete` in the final `...Complete` event, both with the action's `ActionID`.
//! * Keys can repeat (`ChanVariable` when `channelvars` is set, `Variable` in actions), so a
//!   message is an ordered list, not a map.
//! * CLI output (`Action: Command`) in Asterisk 22 is **not** `Response: Follows` any more: it is
//!   `Response: Success`, `Message: Command output follows`, then one `Output: <line>` header
//!   per output line, then the blank line. Old servers (Asterisk <= 13) answered
//!   `Response: Follows`, `Privilege: Command`, `ActionID: ...`, then the raw CLI text with bare
//!   `\n` line endings (it may contain blank lines and colons), then `--END COMMAND--\r\n\r\n`.
//!   The framer understands both; the raw lines of the old form become `Output` headers, so
//!   callers read command output the same way from either server (see
//!   [`AmiMessage::output`]).
//! * The recordings contain no bare `\n`, no line without a colon and no invalid UTF-8, but the
//!   parser accepts them all: bare `\n` line endings, a line without a colon (kept as an `Output`
//!   header, whole line as value), and any non-UTF-8 byte (caller-ID names can be Latin-1; the
//!   text is decoded lossily). Whenever the decoded headers would not serialize back to the very
//!   same bytes, the message keeps its raw bytes, so [`AmiMessage::to_bytes`] is always
//!   byte-exact for a parsed message.
//!
//! # Robustness
//!
//! The framer never panics, whatever the bytes and however they are split across reads: it only
//! consumes complete lines, so a message cut anywhere is finished by the next read. Limits
//! ([`FrameLimits`]) bound the memory one message can take. When one is hit, or a message holds
//! a NUL byte (Asterisk builds its messages from C strings, so a NUL means the stream is not
//! AMI), [`AmiFramer::next_frame`] returns the error once, drops the offending message up to the
//! next blank line and carries on with the following message. The framer's output (frames and
//! errors) depends only on the bytes, never on how they were split.

use bytes::{Buf, Bytes, BytesMut};
use nom::character::complete::char as nom_char;
use nom::combinator::{opt, rest};
use nom::{IResult, Parser};

/// Header used for a line that is not `Key: Value` (command output lines of old servers).
///
/// Asterisk 22 itself sends command output as `Output:` headers, so using the same key keeps
/// one way of reading it.
pub const OUTPUT_KEY: &str = "Output";

/// The line that ends the raw command output of a `Response: Follows` message (old servers).
const END_COMMAND: &[u8] = b"--END COMMAND--";

/// Memory guards for one message. The framer holds at most about
/// `max_message_bytes + max_line_bytes` bytes of an unfinished message, plus what one
/// [`AmiFramer::push`] added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest message, from its first byte to the end of its terminating blank line.
    /// The largest recorded one is 3.3 KB; 1 MiB leaves room for long command output.
    /// Values of 4 GiB and more act as 4 GiB - 1 (header offsets are stored as `u32`).
    pub max_message_bytes: usize,
    /// Longest line, without its line ending. Recorded lines are under 210 bytes.
    pub max_line_bytes: usize,
    /// Most lines in one message, terminator excluded. Recorded messages have up to 144.
    pub max_headers: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
            max_line_bytes: 64 * 1024,
            max_headers: 1024,
        }
    }
}

/// What a message is, from its first header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `Response: ...`: the answer to an action.
    Response,
    /// `Event: ...`: something that happened, or an item of an event list.
    Event,
    /// `Action: ...`: a request from a client (what the fake Asterisk reads).
    Action,
    /// Anything else (no header, or an unexpected first header).
    Other,
}

/// One AMI message: ordered headers, duplicates kept, case-insensitive lookup.
///
/// Keys and values are stored as received (values verbatim after the single `": "` separator;
/// see the module docs for why nothing is trimmed).
///
/// # Representation
///
/// AMI traffic is dominated by events (a busy server sends hundreds of thousands per second),
/// so a parsed message costs two allocations whatever its size: its text, copied once out of
/// the framer's buffer and checked as UTF-8 once, and a table of `(key, value)` byte ranges
/// into it. Lookups compare key bytes in place; nothing is decoded per header. The copy (rather
/// than a shared slice of the read buffer) lets a message live on in a subscriber without
/// pinning the framer's whole buffer.
///
/// A message built by code ([`new`](Self::new), [`with`](Self::with), [`push`](Self::push):
/// actions, rare) and the rare message received with invalid UTF-8 (decoded lossily, its raw
/// bytes kept for an exact round trip) hold owned `(String, String)` pairs instead. Both forms
/// behave the same: two messages are equal when their headers (and [`raw`](Self::raw) bytes)
/// are, whichever form they are in.
#[derive(Clone, Default)]
pub struct AmiMessage {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Parsed from valid UTF-8: the message text and where each header is in it.
    Wire {
        /// The message exactly as received, terminating blank line included.
        text: Box<str>,
        spans: Vec<Span>,
        /// Serializing the headers gives back `text` exactly, so no raw copy is needed (true
        /// for every message of the Asterisk 22 recordings).
        exact: bool,
    },
    /// Built by code, or parsed from invalid UTF-8 (headers decoded lossily).
    Owned {
        headers: Vec<(String, String)>,
        /// The exact bytes this message was parsed from, kept because the lossy headers cannot
        /// reproduce them. `None` for a built (or modified) message.
        raw: Option<Bytes>,
    },
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Owned {
            headers: Vec::new(),
            raw: None,
        }
    }
}

/// Where one header is inside a parsed message's text (byte offsets; `u32` keeps the table
/// small, the framer refuses messages of 4 GiB or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// Key range; [`Span::OUTPUT`] in `key_start` means the key is [`OUTPUT_KEY`] (a raw
    /// command output line, which has no key of its own on the wire).
    key_start: u32,
    key_end: u32,
    value_start: u32,
    value_end: u32,
}

impl Span {
    const OUTPUT: u32 = u32::MAX;

    fn output(value_start: u32, value_end: u32) -> Self {
        Self {
            key_start: Self::OUTPUT,
            key_end: Self::OUTPUT,
            value_start,
            value_end,
        }
    }

    fn key<'t>(&self, text: &'t [u8]) -> &'t [u8] {
        if self.key_start == Self::OUTPUT {
            return OUTPUT_KEY.as_bytes();
        }
        text.get(self.key_start as usize..self.key_end as usize)
            .unwrap_or_default()
    }

    fn value<'t>(&self, text: &'t [u8]) -> &'t [u8] {
        text.get(self.value_start as usize..self.value_end as usize)
            .unwrap_or_default()
    }

    /// Key and value as text. The framer cuts spans at ASCII bytes (`:`, space, line ends)
    /// of valid UTF-8, so `str::get` always succeeds; it is used to stay panic-free.
    fn key_str<'t>(&self, text: &'t str) -> &'t str {
        if self.key_start == Self::OUTPUT {
            return OUTPUT_KEY;
        }
        text.get(self.key_start as usize..self.key_end as usize)
            .unwrap_or_default()
    }

    fn value_str<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.value_start as usize..self.value_end as usize)
            .unwrap_or_default()
    }
}

/// Iterator over a message's headers, in wire order (see [`AmiMessage::headers`]).
#[derive(Clone)]
enum HeaderIter<'a> {
    Wire {
        text: &'a str,
        spans: std::slice::Iter<'a, Span>,
    },
    Owned(std::slice::Iter<'a, (String, String)>),
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HeaderIter::Wire { text, spans } => spans.next().map(|s| (s.key_str(text), s.value_str(text))),
            HeaderIter::Owned(headers) => headers.next().map(|(k, v)| (k.as_str(), v.as_str())),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            HeaderIter::Wire { spans, .. } => spans.size_hint(),
            HeaderIter::Owned(headers) => headers.size_hint(),
        }
    }
}

impl ExactSizeIterator for HeaderIter<'_> {}

/// Equal when the headers (in order, keys compared exactly) and the [`raw`](AmiMessage::raw)
/// bytes are equal, whether each side was parsed or built.
impl PartialEq for AmiMessage {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.raw() == other.raw() && self.headers().eq(other.headers())
    }
}

impl Eq for AmiMessage {}

impl std::fmt::Debug for AmiMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmiMessage")
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("raw", &self.raw().map(|raw| raw.escape_ascii().to_string()))
            .finish()
    }
}

impl AmiMessage {
    /// An empty message, to build an action.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder form of [`push`](Self::push).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(key, value);
        self
    }

    /// Appends a header (duplicates are kept: `Variable` may appear several times).
    ///
    /// A modified message is serialized from its headers, so any raw bytes kept from parsing
    /// are dropped (a parsed message is first turned into owned headers: rare, not on the
    /// receive path).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        if let Repr::Wire { .. } = self.repr {
            let headers = self.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            self.repr = Repr::Owned { headers, raw: None };
        }
        if let Repr::Owned { headers, raw } = &mut self.repr {
            *raw = None;
            headers.push((key.into(), value.into()));
        }
    }

    /// The value of the first header named `key`, compared ASCII case-insensitively
    /// (Asterisk mixes `Uniqueid`/`UniqueID`, `CallerIDNum`/`CallerIDnum` between events).
    pub fn get(&self, key: &str) -> Option<&str> {
        match &self.repr {
            Repr::Wire { text, spans, .. } => {
                let bytes = text.as_bytes();
                spans
                    .iter()
                    .find(|s| s.key(bytes).eq_ignore_ascii_case(key.as_bytes()))
                    .map(|s| s.value_str(text))
            }
            Repr::Owned { headers, .. } => headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str()),
        }
    }

    /// Every value of the headers named `key`, in order (case-insensitive).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// All headers as `(key, value)` pairs, in wire order, duplicates included.
    ///
    /// An iterator rather than a slice: a parsed message stores byte ranges into its text, not
    /// one `String` pair per header (see the type docs). It knows its length
    /// (`headers().len()`) and is cheap to create; collect it when a `Vec` is needed.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        match &self.repr {
            Repr::Wire { text, spans, .. } => HeaderIter::Wire {
                text,
                spans: spans.iter(),
            },
            Repr::Owned { headers, .. } => HeaderIter::Owned(headers.iter()),
        }
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Wire { spans, .. } => spans.len(),
            Repr::Owned { headers, .. } => headers.len(),
        }
    }

    /// True when the message has no header.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first header, which tells the kind.
    fn first(&self) -> Option<(&str, &str)> {
        self.headers().next()
    }

    /// The kind, from the **first** header only: an `OriginateResponse` event also carries a
    /// `Response:` header, so looking further would misclassify it.
    pub fn kind(&self) -> MessageKind {
        match self.first() {
            Some((k, _)) => kind_of(k),
            None => MessageKind::Other,
        }
    }

    /// `Response:` value (`Success`, `Error`, `Follows`, `Goodbye`) when this is a response.
    pub fn response(&self) -> Option<&str> {
        self.first_if(MessageKind::Response)
    }

    /// Event name when this is an event.
    pub fn event(&self) -> Option<&str> {
        self.first_if(MessageKind::Event)
    }

    /// Action name when this is an action.
    pub fn action(&self) -> Option<&str> {
        self.first_if(MessageKind::Action)
    }

    /// The `ActionID` header, which ties responses and list events to the action.
    pub fn action_id(&self) -> Option<&str> {
        self.get("ActionID")
    }

    fn first_if(&self, kind: MessageKind) -> Option<&str> {
        self.first().filter(|(k, _)| kind_of(k) == kind).map(|(_, v)| v)
    }

    /// True for the response that opens an event list (`EventList: start`). Asterisk 22
    /// writes `start` in lower case but `Complete` capitalized; the match ignores case so that
    /// neither spelling is a contract.
    pub fn is_event_list_start(&self) -> bool {
        self.get("EventList").is_some_and(|v| v.eq_ignore_ascii_case("start"))
    }

    /// True for the event that closes an event list (`EventList: Complete`).
    pub fn is_event_list_complete(&self) -> bool {
        self.get("EventList")
            .is_some_and(|v| v.eq_ignore_ascii_case("Complete"))
    }

    /// Command output lines: the `Output` headers. Asterisk 22 sends one per line; the raw
    /// text of an old `Response: Follows` message is parsed into the same headers.
    pub fn output(&self) -> impl Iterator<Item = &str> + '_ {
        self.get_all(OUTPUT_KEY)
    }

    /// The exact bytes this message was parsed from, when serializing its headers would not
    /// reproduce them (bare `\n`, no space after a colon, a line without colon, invalid UTF-8,
    /// old `Response: Follows` output). `None` when [`to_bytes`](Self::to_bytes) is plain
    /// serialization of the headers: every message of the Asterisk 22 recordings, and every
    /// built or modified message.
    pub fn raw(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Wire { text, exact, .. } => (!exact).then_some(text.as_bytes()),
            Repr::Owned { raw, .. } => raw.as_deref(),
        }
    }

    /// Serializes the message: the bytes it was parsed from when it was not modified since,
    /// else `Key: Value\r\n` lines and the blank line.
    ///
    /// CR and LF inside a key or value are written as spaces: a value coming from outside
    /// (a caller name, an HTTP body) must never be able to end the line and inject headers or
    /// a second action.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.repr {
            // Exact or not, the received text is the answer.
            Repr::Wire { text, .. } => text.as_bytes().to_vec(),
            Repr::Owned { raw: Some(raw), .. } => raw.to_vec(),
            Repr::Owned { headers, raw: None } => {
                let size = headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + 2;
                let mut out = Vec::with_capacity(size);
                self.write_to(&mut out);
                out
            }
        }
    }

    /// Appends [`to_bytes`](Self::to_bytes) to `out` without an intermediate allocation.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.repr {
            Repr::Wire { text, .. } => out.extend_from_slice(text.as_bytes()),
            Repr::Owned { raw: Some(raw), .. } => out.extend_from_slice(raw),
            Repr::Owned { headers, raw: None } => {
                for (k, v) in headers {
                    push_sanitized(out, k);
                    out.extend_from_slice(b": ");
                    push_sanitized(out, v);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn kind_of(first_key: &str) -> MessageKind {
    if first_key.eq_ignore_ascii_case("Event") {
        MessageKind::Event
    } else if first_key.eq_ignore_ascii_case("Response") {
        MessageKind::Response
    } else if first_key.eq_ignore_ascii_case("Action") {
        MessageKind::Action
    } else {
        MessageKind::Other
    }
}

fn push_sanitized(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|b| b == b'\r' || b == b'\n') {
        out.extend(text.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// One item out of the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The banner sent once at connection start, without its line ending
    /// (`Asterisk Call Manager/11.0.0`).
    Greeting(String),
    /// A complete message.
    Message(AmiMessage),
}

/// A framing error. Each is reported once; the framer has already dropped (or is dropping)
/// the offending message and goes on with the next one, so the caller logs it and calls
/// [`AmiFramer::next_frame`] again. Fields depend only on the limits, never on how the bytes
/// were split across reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message grew past [`FrameLimits::max_message_bytes`].
    #[error("AMI message longer than {limit} bytes; dropped up to the next blank line")]
    MessageTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// A line grew past [`FrameLimits::max_line_bytes`] (also a stream with no newline at all).
    #[error("AMI line longer than {limit} bytes; message dropped up to the next blank line")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The message has more lines than [`FrameLimits::max_headers`].
    #[error("AMI message with more than {limit} header lines; dropped up to the next blank line")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// The message is complete but is not AMI text (it holds a NUL byte); it was dropped.
    #[error("malformed AMI message ({len} bytes): {reason}; dropped")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
        /// Size of the dropped message.
        len: usize,
    },
    /// [`AmiFramer::finish`] found an unterminated message at end of stream.
    #[error("AMI stream ended inside a message ({bytes} bytes without the blank line)")]
    Truncated {
        /// Bytes that were waiting for the rest of the message.
        bytes: usize,
    },
}

/// Where an old-style `Response: Follows` message is. Shared by the framer (which must not
/// end such a message at a blank line inside the command output) and the parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Follows {
    /// No line seen yet.
    #[default]
    Start,
    /// An ordinary message: a blank line ends it.
    Normal,
    /// After `Response: Follows`, in the `Privilege`/`ActionID` headers.
    Headers,
    /// In the raw command output, until a line ending in `--END COMMAND--`.
    Body,
}

/// Role of one non-terminating line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineRole<'a> {
    /// `Key: Value` (or a line without colon outside a Follows body).
    Header,
    /// A raw command output line.
    Body,
    /// The `--END COMMAND--` line; the text glued before the marker, if any, is output.
    EndMarker(&'a [u8]),
}

impl Follows {
    /// Whether an empty line ends the message now. Inside the output of an old
    /// `Response: Follows` it does not: CLI output has blank lines, and the message lasts until
    /// `--END COMMAND--`. A blank line right after the headers is output too (many CLI
    /// commands start with an empty line).
    fn blank_ends_message(self) -> bool {
        !matches!(self, Follows::Headers | Follows::Body)
    }

    /// Advances over one line that does not end the message and tells its role.
    fn step<'l>(&mut self, line: &'l [u8]) -> LineRole<'l> {
        match *self {
            Follows::Start => {
                *self = match parse_header(line) {
                    Some(h) if is_follows_response(h.key, h.value) => Follows::Headers,
                    _ => Follows::Normal,
                };
                LineRole::Header
            }
            Follows::Normal => LineRole::Header,
            Follows::Headers => match parse_header(line) {
                // An old server writes only these two before the raw output.
                Some(RawHeader { key: k, .. })
                    if k.eq_ignore_ascii_case(b"Privilege") || k.eq_ignore_ascii_case(b"ActionID") =>
                {
                    LineRole::Header
                }
                _ => {
                    *self = Follows::Body;
                    self.step(line)
                }
            },
            Follows::Body => match line.strip_suffix(END_COMMAND) {
                Some(before) => {
                    *self = Follows::Normal;
                    LineRole::EndMarker(before)
                }
                None => LineRole::Body,
            },
        }
    }
}

fn is_follows_response(key: &[u8], value: &[u8]) -> bool {
    key.eq_ignore_ascii_case(b"Response") && value.eq_ignore_ascii_case(b"Follows")
}

/// nom: one header line (without its line ending) as key, "exactly one space after the
/// colon", value. The key runs to the first colon, so values may hold colons (`EventTV`,
/// URIs); only one separator space is taken, so a value's own leading spaces survive.
///
/// This runs once per line of every message, so the key is found by [`key`], a word-at-a-time
/// search, rather than a byte loop or a substring search.
#[inline]
fn header_line(line: &[u8]) -> IResult<&[u8], RawHeader<'_>> {
    (key, nom_char(':'), opt(nom_char(' ')), rest)
        .parse(line)
        .map(|(tail, (key, _, space, value))| {
            let one_space = space.is_some();
            (tail, RawHeader { key, one_space, value })
        })
}

/// nom: everything up to the first colon (all of the input when there is none, so that the
/// following `char(':')` fails as it should).
#[inline]
fn key(input: &[u8]) -> IResult<&[u8], &[u8]> {
    let at = find_byte(input, b':').unwrap_or(input.len());
    let (key, tail) = input.split_at(at);
    Ok((tail, key))
}

const LO: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Eight bytes as a little-endian word.
#[inline]
fn word(chunk: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    u64::from_le_bytes(bytes)
}

/// `0x80` in each byte of `x` that is zero, `0` elsewhere (exact, no false positives).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// First `needle` in `hay`, eight bytes per step. AMI keys are short (`Event`, `Uniqueid`,
/// `CallerIDNum`): the colon is nearly always in the first or second word, where a byte loop
/// mispredicts once per key and a SIMD search pays its setup.
#[inline]
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let found = zero_bytes(word(chunk) ^ pattern);
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| offset + i)
}

/// One pass over a complete message: whether it holds a NUL byte, and how many `\r` it holds.
fn nul_and_cr_count(bytes: &[u8]) -> (bool, usize) {
    const CR: u64 = LO * b'\r' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let (mut nul, mut crs) = (0u64, 0usize);
    for chunk in &mut chunks {
        let w = word(chunk);
        nul |= zero_bytes(w);
        crs += zero_bytes(w ^ CR).count_ones() as usize;
    }
    let tail = chunks.remainder();
    let has_nul = nul != 0 || tail.contains(&0);
    (has_nul, crs + tail.iter().filter(|&&b| b == b'\r').count())
}

/// A `Key: Value` line split by [`header_line`].
#[derive(Debug, Clone, Copy)]
struct RawHeader<'a> {
    key: &'a [u8],
    /// The colon was followed by exactly the one space that [`AmiMessage::to_bytes`] writes.
    one_space: bool,
    value: &'a [u8],
}

#[inline]
fn parse_header(line: &[u8]) -> Option<RawHeader<'_>> {
    header_line(line).ok().map(|(_, header)| header)
}

/// Splits `\r` off a line's end. Returns the content and whether the line ended in `\r\n`.
fn strip_cr(line: &[u8]) -> (&[u8], bool) {
    match line.strip_suffix(b"\r") {
        Some(content) => (content, true),
        None => (line, false),
    }
}

/// The header one line of a message contributes, as offsets into the message (`start` is
/// where the line's `content` begins), and whether the line serializes back to itself.
/// `None` for the `--END COMMAND--` line with nothing glued before the marker.
fn line_span(start: u32, content: &[u8], role: LineRole<'_>) -> (Option<Span>, bool) {
    // Offsets fit: the framer refuses messages of 4 GiB or more.
    let end = start + content.len() as u32;
    match role {
        LineRole::Header => match parse_header(content) {
            Some(RawHeader { key, one_space, value }) => {
                let span = Span {
                    key_start: start,
                    key_end: start + key.len() as u32,
                    value_start: end - value.len() as u32,
                    value_end: end,
                };
                // `Key:` without the space does not round-trip (a stray `\r` inside the line
                // is caught on the whole message, see `build_message`).
                (Some(span), one_space)
            }
            None => (Some(Span::output(start, end)), false),
        },
        LineRole::Body => (Some(Span::output(start, end)), false),
        LineRole::EndMarker(before) => {
            let span = (!before.is_empty()).then(|| Span::output(start, start + before.len() as u32));
            (span, false)
        }
    }
}

/// Builds a message from its complete bytes (terminating blank line included) and the header
/// spans the framer recorded line by line. `exact_lines`: every line ended in `\r\n` and
/// serializes back to itself; `lines`: number of lines, terminator included; `crs`: number
/// of `\r` bytes in the message.
///
/// The text is checked as UTF-8 once, here. In the rare invalid case (a Latin-1 caller name)
/// each key and value is decoded lossily and the raw bytes are kept for the round trip.
fn build_message(bytes: &[u8], spans: &[Span], exact_lines: bool, lines: usize, crs: usize) -> AmiMessage {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            // Each `\r\n` line holds one `\r` (`crs` counts them all); any other is inside a
            // key or value, and a `\r` there would not survive serialization (it is written
            // as a space).
            let exact = exact_lines && crs == lines;
            AmiMessage {
                repr: Repr::Wire {
                    text: text.into(),
                    spans: spans.to_vec(),
                    exact,
                },
            }
        }
        Err(_) => {
            let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let headers = spans
                .iter()
                .map(|s| (lossy(s.key(bytes)), lossy(s.value(bytes))))
                .collect();
            AmiMessage {
                repr: Repr::Owned {
                    headers,
                    raw: Some(Bytes::copy_from_slice(bytes)),
                },
            }
        }
    }
}

/// Progress through the message being received; reset after each message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Scan {
    /// End of the last complete line of the current message (offset into the buffer).
    pos: usize,
    /// Bytes from `pos` already searched for `\n`, so a long line arriving in small reads is
    /// not searched again and again.
    searched: usize,
    /// Lines of the current message so far.
    lines: usize,
    follows: Follows,
    /// Some line so far does not serialize back to itself (see [`line_span`]).
    inexact: bool,
}

/// State of the line being thrown away while resynchronizing after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiscardLine {
    /// At the start of a line.
    Empty,
    /// The line so far is a lone `\r` (a blank `\r\n` line may be coming).
    Cr,
    /// The line has content: it is not the blank line we wait for.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Framing,
    /// Dropping bytes up to and including the next blank line.
    Discarding(DiscardLine),
}

/// Incremental framer: feed it bytes as they arrive from the socket; pull complete items.
///
/// ```
/// use accentd::ami::{AmiFramer, Frame, FrameLimits};
///
/// let mut framer = AmiFramer::new(FrameLimits::default());
/// framer.push(b"Asterisk Call Manager/11.0.0\r\nResponse: Succ");
/// assert!(matches!(framer.next_frame(), Ok(Some(Frame::Greeting(_)))));
/// assert_eq!(framer.next_frame(), Ok(None)); // the response is not complete yet
/// framer.push(b"ess\r\nActionID: 1\r\n\r\n");
/// let Ok(Some(Frame::Message(msg))) = framer.next_frame() else { panic!() };
/// assert_eq!(msg.get("actionid"), Some("1"));
/// ```
#[derive(Debug, Clone)]
pub struct AmiFramer {
    buf: BytesMut,
    limits: FrameLimits,
    /// True until the first line is seen, when a banner line may come.
    expect_greeting: bool,
    scan: Scan,
    /// Header spans of the current message, recorded as its lines arrive so that the message
    /// is never scanned twice. Reused from message to message (at most `max_headers` long).
    spans: Vec<Span>,
    mode: Mode,
    discarded: u64,
}

impl AmiFramer {
    /// A framer for what a server sends: a greeting line first, then messages.
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            buf: BytesMut::with_capacity(8 * 1024),
            limits,
            expect_greeting: true,
            scan: Scan::default(),
            spans: Vec::new(),
            mode: Mode::Framing,
            discarded: 0,
        }
    }

    /// A framer for what a client sends (actions, no greeting). A first line without colon
    /// is then an `Output` header of a message, not a greeting.
    pub fn without_greeting(limits: FrameLimits) -> Self {
        let mut framer = Self::new(limits);
        framer.expect_greeting = false;
        framer
    }

    /// The limits in force.
    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Appends bytes read from the socket. Nothing is parsed until
    /// [`next_frame`](Self::next_frame).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a frame or dropped.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes thrown away so far: stray blank lines between messages and the messages dropped
    /// after an error. Useful in logs and to account for every byte in tests.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded
    }

    /// Forgets everything buffered and expects a greeting again (for a new connection).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.expect_greeting = true;
        self.restart_message();
        self.mode = Mode::Framing;
    }

    /// Forgets the progress through the current message (after it was taken or dropped).
    fn restart_message(&mut self) {
        self.scan = Scan::default();
        self.spans.clear();
    }

    /// Largest message accepted: the configured limit, and below 4 GiB in any case because
    /// header spans are stored as `u32` offsets.
    fn max_message_bytes(&self) -> usize {
        self.limits.max_message_bytes.min(u32::MAX as usize)
    }

    /// Call at end of stream. Returns [`FrameError::Truncated`] when a message (or the
    /// greeting) was cut off, `Ok(None)` when the stream ended cleanly, and resets the framer.
    /// Frames still complete in the buffer must be taken with [`next_frame`](Self::next_frame)
    /// first; they count as cut off here.
    pub fn finish(&mut self) -> Result<Option<Frame>, FrameError> {
        let bytes = self.buf.len();
        let discarding = matches!(self.mode, Mode::Discarding(_));
        self.discarded += bytes as u64;
        self.reset();
        if bytes == 0 || discarding {
            Ok(None)
        } else {
            Err(FrameError::Truncated { bytes })
        }
    }

    /// The next complete frame: `Ok(None)` when more bytes are needed (nothing is lost: the
    /// partial message stays buffered). After an `Err`, call again: the bad message is being
    /// skipped and the following ones come out normally.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Mode::Discarding(state) = self.mode {
                if !self.discard_until_blank_line(state) {
                    return Ok(None);
                }
            }
            let start = self.scan.pos;
            let from = start.max(self.scan.searched);
            let Some(found) = self.buf.get(from..).and_then(|b| memchr::memchr(b'\n', b)) else {
                return self.incomplete_line(start);
            };
            let end = from + found + 1;
            let (content, crlf) = strip_cr(&self.buf[start..end - 1]);
            let content_len = content.len();
            let is_blank = content.is_empty();

            if content_len > self.limits.max_line_bytes {
                return Err(self.drop_through(
                    end,
                    FrameError::LineTooLong {
                        limit: self.limits.max_line_bytes,
                    },
                ));
            }
            if is_blank && self.scan.follows.blank_ends_message() {
                if start == 0 {
                    // A blank line between messages: nothing to report.
                    self.buf.advance(end);
                    self.discarded += end as u64;
                    self.restart_message();
                    continue;
                }
                return self.take_message(end, crlf);
            }
            if start == 0 && self.expect_greeting {
                self.expect_greeting = false;
                if !self.buf[start..end].contains(&b':') {
                    let line = self.buf.split_to(end);
                    self.restart_message();
                    let (text, _) = strip_cr(&line[..line.len() - 1]);
                    return Ok(Some(Frame::Greeting(String::from_utf8_lossy(text).into_owned())));
                }
            }
            self.scan.lines += 1;
            if self.scan.lines > self.limits.max_headers {
                return Err(self.drop_through(
                    end,
                    FrameError::TooManyHeaders {
                        limit: self.limits.max_headers,
                    },
                ));
            }
            if end > self.max_message_bytes() {
                return Err(self.drop_through(
                    end,
                    FrameError::MessageTooLong {
                        limit: self.limits.max_message_bytes,
                    },
                ));
            }
            // The line is part of the message: record its header now, while it is at hand.
            let (content, _) = strip_cr(&self.buf[start..end - 1]);
            let role = self.scan.follows.step(content);
            // `start < end <= max_message_bytes() <= u32::MAX`.
            let (span, exact) = line_span(start as u32, content, role);
            self.spans.extend(span);
            self.scan.inexact |= !(exact && crlf);
            self.scan.pos = end;
            self.scan.searched = end;
        }
    }

    /// The blank line ending at `end` completes the message in `buf[..end]`: cut it off and
    /// build it from the spans recorded line by line. `crlf`: the blank line was `\r\n`.
    fn take_message(&mut self, end: usize, crlf: bool) -> Result<Option<Frame>, FrameError> {
        let bytes = self.buf.get(..end).unwrap_or_default();
        let result = if end > self.max_message_bytes() {
            Err(FrameError::MessageTooLong {
                limit: self.limits.max_message_bytes,
            })
        } else {
            match nul_and_cr_count(bytes) {
                (true, _) => Err(FrameError::Malformed {
                    reason: "NUL byte in message",
                    len: end,
                }),
                (false, crs) => {
                    let exact_lines = !self.scan.inexact && crlf;
                    Ok(build_message(bytes, &self.spans, exact_lines, self.scan.lines + 1, crs))
                }
            }
        };
        self.buf.advance(end);
        self.restart_message();
        match result {
            Ok(msg) => Ok(Some(Frame::Message(msg))),
            Err(err) => {
                self.discarded += end as u64;
                Err(err)
            }
        }
    }

    /// No `\n` after `start`: wait for more, unless the partial line is already sure to be
    /// too long (a trailing `\r` may still belong to the line ending, so it is not counted).
    fn incomplete_line(&mut self, start: usize) -> Result<Option<Frame>, FrameError> {
        self.scan.searched = self.buf.len();
        let partial = self.buf.get(start..).unwrap_or_default();
        let sure_len = partial.len() - usize::from(partial.last() == Some(&b'\r'));
        if sure_len > self.limits.max_line_bytes {
            // Mid-line: everything buffered belongs to the bad message.
            self.discarded += self.buf.len() as u64;
            self.buf.clear();
            self.restart_message();
            self.expect_greeting = false;
            self.mode = Mode::Discarding(DiscardLine::Other);
            return Err(FrameError::LineTooLong {
                limit: self.limits.max_line_bytes,
            });
        }
        Ok(None)
    }

    /// Drops the current message through the line ending at `end` and skips the rest of it.
    fn drop_through(&mut self, end: usize, err: FrameError) -> FrameError {
        self.buf.advance(end);
        self.discarded += end as u64;
        self.restart_message();
        self.expect_greeting = false;
        self.mode = Mode::Discarding(DiscardLine::Empty);
        err
    }

    /// Throws bytes away up to and including the next blank line. Returns true once found
    /// (framing resumes), false when the buffer ran out first.
    fn discard_until_blank_line(&mut self, mut state: DiscardLine) -> bool {
        loop {
            match memchr::memchr(b'\n', &self.buf) {
                Some(i) => {
                    let blank = match state {
                        DiscardLine::Empty => i == 0 || (i == 1 && self.buf[0] == b'\r'),
                        DiscardLine::Cr => i == 0,
                        DiscardLine::Other => false,
                    };
                    self.buf.advance(i + 1);
                    self.discarded += (i + 1) as u64;
                    if blank {
                        self.mode = Mode::Framing;
                        return true;
                    }
                    state = DiscardLine::Empty;
                }
                None => {
                    let seg: &[u8] = &self.buf;
                    state = match (state, seg) {
                        (state, []) => state,
                        (DiscardLine::Empty, b"\r") => DiscardLine::Cr,
                        _ => DiscardLine::Other,
                    };
                    self.discarded += seg.len() as u64;
                    self.buf.clear();
                    self.mode = Mode::Discarding(state);
                    return false;
                }
            }
        }
    }
}

/// Convenience for tests and tools: frames a whole byte string at once, collecting frames and
/// errors in order, and the end-of-stream check.
pub fn frame_all(framer: &mut AmiFramer, bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
    framer.push(bytes);
    let mut out = Vec::new();
    drain(framer, &mut out);
    if let Err(err) = framer.finish() {
        out.push(Err(err));
    }
    out
}

/// Pulls every frame (and error) available now into `out`.
pub fn drain(framer: &mut AmiFramer, out: &mut Vec<Result<Frame, FrameError>>) {
    loop {
        match framer.next_frame() {
            Ok(Some(frame)) => out.push(Ok(frame)),
            Ok(None) => return,
            Err(err) => out.push(Err(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> FrameLimits {
        FrameLimits::default()
    }

    fn frames(bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
        frame_all(&mut AmiFramer::new(limits()), bytes)
    }

    fn message(frame: &Result<Frame, FrameError>) -> &AmiMessage {
        match frame {
            Ok(Frame::Message(msg)) => msg,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn greeting_then_message() {
        let out = frames(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nActionID: a\r\n\r\n");
        assert_eq!(out[0], Ok(Frame::Greeting("Asterisk Call Manager/11.0.0".into())));
        let msg = message(&out[1]);
        assert_eq!(msg.kind(), MessageKind::Response);
        assert_eq!(msg.response(), Some("Success"));
        assert_eq!(msg.raw(), None);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn truncated_frame_waits_then_completes() {
        let mut framer = AmiFramer::without_greeting(limits());
        framer.push(b"Event: Newchannel\r\nChannel: PJSIP/2001-0000");
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(b"0001\r\n\r");
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(b"\nEvent: Hangup\r\n");
        let Ok(Some(Frame::Message(msg))) = framer.next_frame() else {
            panic!("message expected")
        };
        assert_eq!(msg.get("channel"), Some("PJSIP/2001-00000001"));
        assert_eq!(framer.next_frame(), Ok(None));
        assert_eq!(framer.buffered_len(), b"Event: Hangup\r\n".len());
    }

    #[test]
    fn values_are_kept_verbatim_after_one_space() {
        let out = frames(b"Event: VarSet\r\nValue:   minrxlost=0;  \r\nEmpty: \r\nUrl: sip:a@b:5060\r\n\r\n");
        let msg = message(&out[0]);
        assert_eq!(msg.get("Value"), Some("  minrxlost=0;  "));
        assert_eq!(msg.get("Empty"), Some(""));
        assert_eq!(msg.get("Url"), Some("sip:a@b:5060"));
        assert_eq!(msg.raw(), None, "canonical message keeps no raw copy");
    }

    #[test]
    fn non_canonical_lines_keep_raw_bytes() {
        let bytes = b"Event: X\nKey:nospace\r\nBare:\r\nno colon here\r\n\r\n";
        let out = frames(bytes);
        let msg = message(&out[0]);
        assert_eq!(msg.get("Key"), Some("nospace"));
        assert_eq!(msg.get("Bare"), Some(""));
        assert_eq!(msg.output().collect::<Vec<_>>(), ["no colon here"]);
        assert_eq!(msg.to_bytes(), bytes);
    }

    #[test]
    fn push_drops_raw_and_sanitizes() {
        let out = frames(b"Event: X\nA:b\n\n");
        let mut msg = message(&out[0]).clone();
        assert!(msg.raw().is_some());
        msg.push("Evil", "x\r\nAction: Hangup");
        assert_eq!(msg.raw(), None);
        assert_eq!(msg.to_bytes(), b"Event: X\r\nA: b\r\nEvil: x  Action: Hangup\r\n\r\n");
    }

    #[test]
    fn kind_uses_first_header_only() {
        let msg = AmiMessage::new()
            .with("Event", "OriginateResponse")
            .with("Response", "Success");
        assert_eq!(msg.kind(), MessageKind::Event);
        assert_eq!(msg.response(), None);
        assert_eq!(msg.event(), Some("OriginateResponse"));
        assert_eq!(AmiMessage::new().kind(), MessageKind::Other);
        assert_eq!(AmiMessage::new().with("action", "Ping").action(), Some("Ping"));
    }

    fn small(max_message_bytes: usize, max_line_bytes: usize, max_headers: usize) -> FrameLimits {
        FrameLimits {
            max_message_bytes,
            max_line_bytes,
            max_headers,
        }
    }

    fn next_event() -> &'static [u8] {
        b"Event: Next\r\nA: 1\r\n\r\n"
    }

    #[test]
    fn line_too_long_is_reported_and_framing_resumes() {
        let mut bytes = b"Event: X\r\nLong: ".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 40));
        bytes.extend_from_slice(b"\r\nMore: y\r\n\r\n");
        bytes.extend_from_slice(next_event());
        let out = frame_all(&mut AmiFramer::without_greeting(small(1024, 16, 64)), &bytes);
        assert_eq!(out[0], Err(FrameError::LineTooLong { limit: 16 }));
        assert_eq!(message(&out[1]).event(), Some("Next"));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn endless_line_does_not_grow_the_buffer() {
        let mut framer = AmiFramer::without_greeting(small(1 << 20, 100, 64));
        framer.push(b"Event: X\r\nJunk: ");
        for _ in 0..1000 {
            framer.push(&[b'z'; 64]);
            match framer.next_frame() {
                Ok(None) | Err(FrameError::LineTooLong { limit: 100 }) => {}
                other => panic!("unexpected {other:?}"),
            }
            assert!(framer.buffered_len() <= 200, "buffer grew to {}", framer.buffered_len());
        }
        framer.push(b"\r\n\r\n");
        framer.push(next_event());
        assert_eq!(framer.next_frame().map(|f| f.is_some()), Ok(true));
        assert_eq!(framer.buffered_len(), 0);
    }

    #[test]
    fn message_too_long_is_reported_and_framing_resumes() {
        let mut bytes = b"Event: Big\r\n".to_vec();
        for i in 0..20 {
            bytes.extend_from_slice(format!("Key{i}: value\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(next_event());
        let out = frame_all(&mut AmiFramer::without_greeting(small(64, 1024, 1024)), &bytes);
        assert_eq!(out[0], Err(FrameError::MessageTooLong { limit: 64 }));
        assert_eq!(message(&out[1]).event(), Some("Next"));
        assert_eq!(out.len(), 2);
        // A message whose terminator alone crosses the limit is refused too.
        let exact = b"Event: Y\r\n\r\n";
        let out = frame_all(&mut AmiFramer::without_greeting(small(exact.len() - 1, 64, 8)), exact);
        assert_eq!(out, [Err(FrameError::MessageTooLong { limit: exact.len() - 1 })]);
        let out = frame_all(&mut AmiFramer::without_greeting(small(exact.len(), 64, 8)), exact);
        assert_eq!(message(&out[0]).event(), Some("Y"));
    }

    #[test]
    fn too_many_headers_is_reported_and_framing_resumes() {
        let three = b"Event: A\r\nB: 1\r\nC: 2\r\n\r\n";
        let four = b"Event: A\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n";
        let mut bytes = four.to_vec();
        bytes.extend_from_slice(three);
        let out = frame_all(&mut AmiFramer::without_greeting(small(1024, 64, 3)), &bytes);
        assert_eq!(out[0], Err(FrameError::TooManyHeaders { limit: 3 }));
        assert_eq!(message(&out[1]).len(), 3);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn non_utf8_values_are_decoded_lossily_and_kept_exact() {
        let bytes = b"Event: Newchannel\r\nCallerIDName: Andr\xe9 M\xfcller\r\n\r\n";
        let out = frames(bytes);
        let msg = message(&out[0]);
        assert_eq!(msg.get("CallerIDName"), Some("Andr\u{fffd} M\u{fffd}ller"));
        assert_eq!(msg.to_bytes(), bytes);
    }

    #[test]
    fn binary_garbage_never_panics_and_resyncs() {
        let mut bytes = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..5000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            bytes.push((x >> 16) as u8);
        }
        bytes.extend_from_slice(b"\r\n\r\nEvent: X\0Y\r\n\r\n");
        bytes.extend_from_slice(next_event());
        let mut framer = AmiFramer::new(small(2048, 256, 16));
        let out = frame_all(&mut framer, &bytes);
        let n = out.len();
        assert_eq!(message(&out[n - 1]).event(), Some("Next"));
        assert_eq!(
            out[n - 2],
            Err(FrameError::Malformed {
                reason: "NUL byte in message",
                len: 14
            })
        );
    }

    #[test]
    fn missing_terminator_at_eof_is_reported_by_finish() {
        let mut framer = AmiFramer::new(limits());
        framer.push(b"Asterisk Call Manager/11.0.0\r\nEvent: Hangup\r\nChannel: x\r\n");
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Greeting(_)))));
        assert_eq!(framer.next_frame(), Ok(None));
        assert_eq!(framer.finish(), Err(FrameError::Truncated { bytes: 27 }));
        assert_eq!(framer.buffered_len(), 0);
        // After finish the framer is ready for a new connection, greeting included.
        framer.push(b"Asterisk Call Manager/11.0.0\n");
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Greeting(_)))));
        assert_eq!(framer.finish(), Ok(None));
    }

    #[test]
    fn repeated_keys_are_kept_in_order() {
        let out = frames(b"Event: Hangup\r\nChanVariable: A=1\r\nchanvariable: B=2\r\nCHANVARIABLE: C=\r\n\r\n");
        let msg = message(&out[0]);
        assert_eq!(msg.get("ChanVariable"), Some("A=1"));
        assert_eq!(msg.get_all("ChanVariable").collect::<Vec<_>>(), ["A=1", "B=2", "C="]);
        assert_eq!(msg.headers().len(), 4);
    }

    #[test]
    fn lookup_ignores_ascii_case() {
        let msg = AmiMessage::new()
            .with("Event", "Newchannel")
            .with("UniqueID", "1795870944.58");
        assert_eq!(msg.get("uniqueid"), Some("1795870944.58"));
        assert_eq!(msg.get("UNIQUEID"), Some("1795870944.58"));
        assert_eq!(msg.get("Uniqueid "), None);
        assert_eq!(msg.event(), Some("Newchannel"));
    }

    #[test]
    fn event_list_helpers() {
        // As recorded in 14-ami-actions (lower-case `start`, capitalized `Complete`).
        let out = frames(
            b"Response: Success\r\nActionID: csc-idle\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n\
              Event: CoreShowChannelsComplete\r\nActionID: csc-idle\r\nEventList: Complete\r\nListItems: 0\r\n\r\n",
        );
        let (start, done) = (message(&out[0]), message(&out[1]));
        assert!(start.is_event_list_start() && !start.is_event_list_complete());
        assert!(done.is_event_list_complete() && !done.is_event_list_start());
        assert_eq!(start.action_id(), done.action_id());
        assert!(!AmiMessage::new().with("Response", "Success").is_event_list_start());
    }

    #[test]
    fn asterisk22_command_output_is_output_headers() {
        // Verbatim from 14-ami-actions/ami.raw.
        let bytes = b"Response: Success\r\nActionID: cmd-version\r\nMessage: Command output follows\r\n\
            Output: Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-28 12:48:53 UTC\r\n\r\n";
        let out = frames(bytes);
        let msg = message(&out[0]);
        assert_eq!(msg.response(), Some("Success"));
        assert_eq!(msg.output().count(), 1);
        assert!(msg.output().all(|l| l.starts_with("Asterisk 22.10.1")));
        assert_eq!(msg.raw(), None);
        assert_eq!(msg.to_bytes(), bytes);
    }

    #[test]
    fn legacy_response_follows_output() {
        // Old servers: raw CLI text with bare `\n`, blank lines and colons, then the marker.
        let follows = b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n\
            \nChannel              Location\nSIP/100-01: Up\n\n1 active channel\n--END COMMAND--\r\n\r\n";
        let glued = b"Response: Follows\r\nPrivilege: Command\r\nNo such command 'x'--END COMMAND--\r\n\r\n";
        let mut bytes = follows.to_vec();
        bytes.extend_from_slice(glued);
        bytes.extend_from_slice(next_event());
        let out = frames(&bytes);
        let msg = message(&out[0]);
        assert_eq!(msg.response(), Some("Follows"));
        assert_eq!(msg.action_id(), Some("7"));
        assert_eq!(
            msg.output().collect::<Vec<_>>(),
            [
                "",
                "Channel              Location",
                "SIP/100-01: Up",
                "",
                "1 active channel"
            ]
        );
        assert_eq!(msg.get("SIP/100-01"), None, "output lines are not headers");
        assert_eq!(msg.to_bytes(), follows);
        let msg = message(&out[1]);
        assert_eq!(msg.output().collect::<Vec<_>>(), ["No such command 'x'"]);
        assert_eq!(msg.to_bytes(), glued);
        assert_eq!(message(&out[2]).event(), Some("Next"));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn bare_lf_and_stray_blank_lines() {
        let mut framer = AmiFramer::new(limits());
        let out = frame_all(
            &mut framer,
            b"\r\nAsterisk Call Manager/11.0.0\n\n\r\nEvent: A\nB: c\n\n\r\n\r\nEvent: D\r\n\r\n",
        );
        assert_eq!(out[0], Ok(Frame::Greeting("Asterisk Call Manager/11.0.0".into())));
        let a = message(&out[1]);
        assert_eq!(a.get("B"), Some("c"));
        assert_eq!(a.to_bytes(), b"Event: A\nB: c\n\n");
        assert_eq!(message(&out[2]).event(), Some("D"));
        assert_eq!(out.len(), 3);
        assert_eq!(framer.discarded_bytes(), 2 + 1 + 2 + 2 + 2);
    }

    #[test]
    fn without_greeting_a_colonless_first_line_is_output() {
        let out = frame_all(&mut AmiFramer::without_greeting(limits()), b"hello\r\n\r\n");
        assert_eq!(message(&out[0]).output().collect::<Vec<_>>(), ["hello"]);
        let out = frames(b"Action: Ping\r\n\r\n");
        assert_eq!(message(&out[0]).action(), Some("Ping"), "no greeting is fine too");
    }

    #[test]
    fn parsed_and_built_messages_with_the_same_headers_are_equal() {
        let bytes = b"Event: Hangup\r\nChannel: PJSIP/2001-00000001\r\nUniqueid: 1795870944.58\r\nCause-txt: \r\n\r\n";
        let parsed = message(&frames(bytes)[0]).clone();
        let built = AmiMessage::new()
            .with("Event", "Hangup")
            .with("Channel", "PJSIP/2001-00000001")
            .with("Uniqueid", "1795870944.58")
            .with("Cause-txt", "");
        assert_eq!(parsed, built);
        assert_eq!(built, parsed);
        for msg in [&parsed, &built] {
            assert_eq!(msg.kind(), MessageKind::Event);
            assert_eq!(msg.event(), Some("Hangup"));
            assert_eq!(msg.get("UNIQUEID"), Some("1795870944.58"));
            assert_eq!(msg.get("cause-txt"), Some(""));
            assert_eq!(msg.get("Cause"), None);
            assert_eq!(msg.len(), 4);
            assert_eq!(msg.headers().len(), 4);
            assert_eq!(msg.raw(), None);
            assert_eq!(msg.to_bytes(), bytes);
            let mut out = b"x".to_vec();
            msg.write_to(&mut out);
            assert_eq!(&out[1..], bytes);
        }
        assert!(parsed.headers().eq(built.headers()));
        assert_eq!(
            parsed.headers().collect::<Vec<_>>(),
            [
                ("Event", "Hangup"),
                ("Channel", "PJSIP/2001-00000001"),
                ("Uniqueid", "1795870944.58"),
                ("Cause-txt", "")
            ]
        );
        // Keys compare exactly for equality (case-insensitively only for lookup).
        assert_ne!(parsed, built.clone().with("Extra", "1"));
        let other_case = AmiMessage::new()
            .with("event", "Hangup")
            .with("Channel", "PJSIP/2001-00000001")
            .with("Uniqueid", "1795870944.58")
            .with("Cause-txt", "");
        assert_ne!(parsed, other_case);
        assert_eq!(other_case.get("EVENT"), Some("Hangup"));
    }

    #[test]
    fn parsed_message_can_be_extended() {
        let mut msg = message(&frames(b"Action: Originate\r\nChannel: PJSIP/2001\r\n\r\n")[0]).clone();
        msg.push("Variable", "A=1");
        msg.push("Variable", "B=2");
        assert_eq!(msg.action(), Some("Originate"));
        assert_eq!(msg.get("channel"), Some("PJSIP/2001"));
        assert_eq!(msg.get_all("variable").collect::<Vec<_>>(), ["A=1", "B=2"]);
        assert_eq!(
            msg.to_bytes(),
            b"Action: Originate\r\nChannel: PJSIP/2001\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
        );
        assert_eq!(msg.raw(), None);
    }

    #[test]
    fn invalid_utf8_takes_the_lossy_path_and_keeps_raw_bytes() {
        // An invalid byte in a key, one in a value, and a stray `\r` inside a value.
        let bytes = b"Event: Newchannel\r\nX-\xff: 1\r\nCallerIDName: Jos\xe9\r\nUniqueid: 7\r\n\r\n";
        let msg = message(&frames(bytes)[0]).clone();
        assert_eq!(msg.raw(), Some(&bytes[..]));
        assert_eq!(msg.to_bytes(), bytes);
        assert_eq!(msg.event(), Some("Newchannel"));
        assert_eq!(msg.get("x-\u{fffd}"), Some("1"));
        assert_eq!(msg.get("CALLERIDNAME"), Some("Jos\u{fffd}"));
        assert_eq!(msg.get("uniqueid"), Some("7"));
        assert_eq!(msg.headers().len(), 4);
        // Same headers but built: equal headers, yet not equal (only the parsed one has raw bytes).
        let built = AmiMessage::new()
            .with("Event", "Newchannel")
            .with("X-\u{fffd}", "1")
            .with("CallerIDName", "Jos\u{fffd}")
            .with("Uniqueid", "7");
        assert!(msg.headers().eq(built.headers()));
        assert_ne!(msg, built);
        // Modified, it serializes from its (decoded) headers like a built one.
        let mut modified = msg.clone();
        modified.push("Extra", "x");
        assert_eq!(modified, built.with("Extra", "x"));
    }

    #[test]
    fn stray_cr_inside_a_value_keeps_raw_bytes() {
        let bytes = b"Event: X\r\nA: b\rc\r\n\r\n";
        let msg = message(&frames(bytes)[0]).clone();
        assert_eq!(msg.get("A"), Some("b\rc"));
        assert_eq!(msg.raw(), Some(&bytes[..]));
        assert_eq!(msg.to_bytes(), bytes);
        let mut modified = msg;
        modified.push("B", "d");
        assert_eq!(modified.to_bytes(), b"Event: X\r\nA: b c\r\nB: d\r\n\r\n");
    }

    #[test]
    fn word_at_a_time_helpers_match_byte_loops() {
        let mut x: u32 = 7;
        for len in 0..80 {
            for _ in 0..40 {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        // Few distinct values, so that colons, CRs and NULs are frequent.
                        [b':', b'\r', 0, b'a', 0x80, 0xff, b';', b'\n'][(x >> 16) as usize % 8]
                    })
                    .collect();
                assert_eq!(find_byte(&hay, b':'), hay.iter().position(|&b| b == b':'), "{hay:?}");
                assert_eq!(
                    nul_and_cr_count(&hay),
                    (hay.contains(&0), hay.iter().filter(|&&b| b == b'\r').count()),
                    "{hay:?}"
                );
            }
        }
    }

    #[test]
    fn follows_tracker_ignores_blank_lines_in_output() {
        let mut f = Follows::default();
        assert_eq!(f.step(b"Response: Follows"), LineRole::Header);
        assert!(!f.blank_ends_message());
        assert_eq!(f.step(b"Privilege: Command"), LineRole::Header);
        assert_eq!(f.step(b"Name: x"), LineRole::Body);
        assert_eq!(f.step(b""), LineRole::Body);
        assert_eq!(f.step(b"tail--END COMMAND--"), LineRole::EndMarker(b"tail"));
        assert!(f.blank_ends_message());
    }
}
