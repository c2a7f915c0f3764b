//! The live state of the PBX: channels, bridges, calls, device and hint states, built from the
//! AMI and ARI event streams, readable at any time, with a stream of changes.
//!
//! [`feed`] keeps a [`LiveState`] fed from the running AMI and ARI clients (and resyncs it after
//! each reconnection); accentd's own state is `App::live`.
//!
//! [`LiveState`] takes events from both streams ([`LiveState::apply_ami`],
//! [`LiveState::apply_ari`]) in any interleaving, or from only one of them, and a
//! [`Snapshot`] after a reconnection ([`LiveState::resync`]). It knows nothing of sockets:
//! the AMI and ARI clients feed it, and it is tested by replaying the recordings of
//! `tests/asterisk-fixtures/` directly.
//!
//! # Which source says what
//!
//! Both streams describe the same channels. Where both carry a fact, both are applied, and the
//! per-fact stamp rule keeps the slower stream from undoing newer news (a fact is overwritten
//! by the same stream, or by the other one when its event is not older, in milliseconds). So
//! applying AMI alone, ARI alone, or both in any interleaving converges to the same value for
//! these facts.
//!
//! | Fact | AMI | ARI | Rule |
//! |---|---|---|---|
//! | channel exists | `Newchannel` … `Hangup` | `ChannelCreated` … `ChannelDestroyed` | first sight creates, first death removes; dead ids are remembered (see below) |
//! | name, state, caller id, connected line, context/exten/priority | the channel block of every channel event | the `Channel` snapshot of every event | both, stamped |
//! | dialplan application | `Newexten` `Application`/`AppData` | snapshot `app_name`/`app_data` | both, stamped; AMI only reports an application when it starts |
//! | **linkedid** (the call) | `Linkedid` of every channel event | — (the ARI `Channel` model has no linkedid; checked in the spec) | AMI is authoritative. While AMI feeds the state, a channel first seen through ARI waits (linkedid `""`, in no call) for AMI to name it. Without AMI ([`LiveState::set_ami_link`]`(false)`, or never connected) it is inferred: the caller's for a `Dial` peer; the `;1` half's for a Local `;2` half; its own id for an incoming leg (created in a state other than `Down`) at once, and for an outgoing leg (created `Down`) once a `Dial` without caller, a bridge or Stasis shows nobody dialed it, or once it is `Up`; the oldest one of a two-party bridge (`simple_bridge`/`native_rtp`, as recorded in 05 and 27; ConfBridge keeps separate calls, 10). This avoids one-channel calls that appear and vanish for each dialed leg |
//! | created time | `Newchannel` `Timestamp` | `creationtime` | ARI's is exact and wins |
//! | bridge membership | `BridgeEnter`/`BridgeLeave` | `ChannelEnteredBridge`/`ChannelLeftBridge` | both, stamped; one bridge per channel |
//! | bridge technology / class / creator / name | `BridgeTechnology`, `BridgeType`, `BridgeCreator`, `BridgeName` | `technology`, `bridge_class`, `creator`, `name` | both (`<unknown>` = `""`) |
//! | bridge type (mixing/holding) | — | `bridge_type` | ARI only |
//! | hold (the holding party) | `Hold`/`Unhold` | `ChannelHold`/`ChannelUnhold` | both, stamped |
//! | music on hold | `MusicOnHoldStart`/`Stop` | — | AMI only |
//! | conference mute | `ConfbridgeJoin` `Muted`, `ConfbridgeMute`/`Unmute` | — | AMI only |
//! | queue waited in | `QueueCallerJoin`/`Leave`/`Abandon` | — | AMI only |
//! | Stasis application | — | `StasisStart`/`StasisEnd` | ARI only |
//! | dialed by / dial status | `DialBegin`/`DialState`/`DialEnd` | `Dial` | both, stamped |
//! | DTMF received | `DTMFEnd` `Direction: Received` | `ChannelDtmfReceived` | the first source to report a digit on a channel owns that channel's digits (they are appended, so counting both would double them) |
//! | transfer | `BlindTransfer`/`AttendedTransfer` `Result: Success` | `BridgeBlindTransfer`/`BridgeAttendedTransfer` `result: Success` | both |
//! | device state | `DeviceStateChange` | `DeviceStateChanged` | both, stamped |
//! | hint state | `ExtensionStatus` | — | AMI only |
//!
//! Everything else is ignored (`VarSet`, `CEL`, `Cdr`, … and unknown events). An event missing
//! the fields a fact needs leaves that fact alone; nothing here panics on bad input.
//!
//! Calls are derived: a call is the set of live channels sharing a linkedid, with its caller
//! (the channel whose uniqueid is the linkedid), its callees (the legs dialed for it), who
//! talks to whom (the bridges its channels are in), and a state (see [`CallState`]).
//!
//! # No ghosts
//!
//! A channel is removed on the first `Hangup`/`ChannelDestroyed`, a bridge on the first
//! `BridgeDestroy`/`BridgeDestroyed`, a call when its last channel is gone. Because the other
//! stream may still be describing the channel, dead ids are remembered (bounded, the oldest
//! forgotten first): an event about a dead id is ignored, except a creation event strictly
//! later than the death (an ARI client may reuse a channel id). A channel unknown so far is
//! created by any event that describes it, so a missed creation event does not hide a live
//! channel. After a reconnection, [`LiveState::resync`] removes what Asterisk no longer reports.
//!
//! # Reading
//!
//! [`LiveState`] is a cheap `Clone` handle. Reads ([`LiveState::channels`],
//! [`LiveState::call`], …) return owned copies from concurrent maps and never wait for the
//! appliers; appliers never wait for readers. Nothing is held across an `.await`: every method
//! is synchronous.

mod ami;
mod ari;
pub mod changes;
pub mod feed;
pub mod model;
pub mod state;

pub use changes::StateChange;
pub use feed::{FeedOptions, Links};
pub use model::{
    endpoint_of, Bridge, Call, CallParty, CallState, Channel, Counts, DeviceState, Dialplan, Hint, Party, StateView,
    Talk,
};
pub use state::{LiveState, Mark, Snapshot, DEFAULT_CHANGE_CAPACITY, MAX_DTMF_DIGITS};
