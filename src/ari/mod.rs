//! The ARI side of the Asterisk link.
//!
//! - [`models`] and [`events`]: typed REST resources and websocket events,
//!   written by hand from the ARI spec of Asterisk 22.10.1 and checked
//!   against the recordings of a real Asterisk in `tests/asterisk-fixtures/`
//!   (`tests/ari_events.rs`, `tests/ari_rest.rs`). They never refuse what a
//!   newer Asterisk sends: extra fields are ignored, unexpected enum values
//!   are kept as `Other`, and an event that does not fit its model is kept
//!   whole as [`events::AriEvent::Unknown`].
//! - [`client`]: the REST client ([`AriClient`]), one typed method per route.
//! - [`ws`]: the events client ([`AriEvents`]), an actor holding the
//!   `/ari/events` websocket, broadcasting typed events and publishing the
//!   [`LinkState`] so the live state can resync after a reconnect.

pub mod backoff;
pub mod client;
pub mod error;
pub mod events;
pub mod link;
pub mod models;
pub mod ws;

pub use client::AriClient;
pub use error::AriError;
pub use events::{parse_event, AriEvent, AriEventError};
pub use link::LinkState;
pub use models::parse_ari_timestamp;
pub use ws::{AriEvents, AriEventsOptions};
