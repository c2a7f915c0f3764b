//! The Asterisk Manager Interface (AMI) link.
//!
//! AMI is a line-oriented text protocol on TCP (port 5038). This module holds the wire-format
//! layer: [`frame`] turns the raw byte stream into a greeting and a sequence of [`AmiMessage`]s,
//! and turns messages back into bytes. The TCP client (login, actions, event lists, reconnect)
//! is built on top of it.
//!
//! What a real Asterisk 22 sends (see `tests/asterisk-fixtures/*/ami.raw`):
//!
//! ```text
//! Asterisk Call Manager/11.0.0\r\n          <- greeting, once, no colon
//! Response: Success\r\n                     <- first header tells the kind
//! ActionID: accent-1\r\n
//! Message: Authentication accepted\r\n
//! \r\n                                      <- blank line ends the message
//! Event: FullyBooted\r\n
//! ...
//! ```

pub mod frame;

pub use frame::{drain, frame_all, AmiFramer, AmiMessage, Frame, FrameError, FrameLimits, MessageKind, OUTPUT_KEY};
