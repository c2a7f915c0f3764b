//! The ARI side of the Asterisk link: typed models of the REST resources
//! ([`models`]) and of the websocket events ([`events`]).
//!
//! Both are written by hand from the ARI spec of Asterisk 22.10.1 and checked
//! against the recordings of a real Asterisk in `tests/asterisk-fixtures/`
//! (`tests/ari_events.rs`). They never refuse what a newer Asterisk sends:
//! extra fields are ignored, unexpected enum values are kept as `Other`, and
//! an event that does not fit its model is kept whole as
//! [`events::AriEvent::Unknown`].
//!
//! The REST and websocket clients will live next to these modules.

pub mod events;
pub mod models;

pub use events::{parse_event, AriEvent, AriEventError};
pub use models::parse_ari_timestamp;
