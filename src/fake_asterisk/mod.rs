//! A fake Asterisk for tests and demos, built from the recordings of a real one
//! (`tests/asterisk-fixtures/<scenario>/`): it answers the way the recorded Asterisk 22
//! answered and replays what it sent, and can misbehave on demand (drop links, refuse
//! connections, stall) to exercise the clients' recovery paths.
//!
//! - [`scenario`]: finds and reads one recorded scenario folder.
//! - [`ami`]: the AMI TCP server ([`ami::FakeAmi`]).
//! - [`ami_model`]: the channels, device and hint states at the AMI replay position, which
//!   answer the list actions.
//! - [`ari`]: the ARI HTTP + websocket server ([`ari::FakeAri`]).

pub mod ami;
pub mod ami_model;
pub mod ari;
pub mod scenario;

pub use scenario::Scenario;
