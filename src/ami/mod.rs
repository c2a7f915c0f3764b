//! The Asterisk Manager Interface (AMI) link.
//!
//! AMI is a line-oriented text protocol on TCP (port 5038). This module holds the whole link:
//! [`frame`] turns the raw byte stream into a greeting and a sequence of [`AmiMessage`]s,
//! and turns messages back into bytes. [`client`] is the handle the rest of accentd uses
//! (actions, event lists, the event broadcast, the link state); `connection` is the actor
//! that owns the TCP socket (login, keep-alive, reconnect with backoff).
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

pub mod client;
mod connection;
pub mod frame;

pub use client::{
    AmiClient, AmiClientOptions, AmiError, AmiReply, Backoff, LinkState, Originate, OriginateTarget, ACTION_ID_PREFIX,
    STATUS_COMPONENT,
};
pub use frame::{drain, frame_all, AmiFramer, AmiMessage, Frame, FrameError, FrameLimits, MessageKind, OUTPUT_KEY};
