//! A fake Asterisk for tests and demos, built from the recordings of a real one
//! (`tests/asterisk-fixtures/<scenario>/`): it answers the way the recorded Asterisk 22
//! answered and replays what it sent, and can misbehave on demand (drop links, refuse
//! connections, stall) to exercise the clients' recovery paths.

pub mod ami;
pub mod scenario;

pub use scenario::Scenario;
