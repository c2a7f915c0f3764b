//! A fake Asterisk for tests and demos, replaying the recordings of a real
//! Asterisk 22.10.1 from `tests/asterisk-fixtures/`.
//!
//! - [`scenario`]: finds and reads one recorded scenario folder.
//! - [`ari`]: the ARI HTTP + websocket server ([`ari::FakeAri`]).

pub mod ari;
pub mod scenario;
