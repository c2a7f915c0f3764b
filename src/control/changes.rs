//! The change stream: what changed in the live state, as it happens.
//!
//! [`LiveState::subscribe`](super::LiveState::subscribe) hands out a tokio `broadcast`
//! receiver of `Arc<StateChange>`. Every change carries the **new** snapshot (or the last one,
//! for a `…Gone`/`CallEnded`), so a consumer never has to read the state back. Changes are sent
//! after the state is updated, in the order the events were applied, and one applied event can
//! produce several changes (a channel entering a bridge updates the channel, the bridge, the
//! other members' `talking_to` and the call). A consumer that falls behind gets
//! `RecvError::Lagged` from tokio: it must then re-read the state (e.g.
//! [`LiveState::view`](super::LiveState::view)) instead of assuming it saw everything.

use std::sync::Arc;

use serde::Serialize;

use super::model::{Bridge, Call, Channel, Counts, DeviceState, Hint};

/// One change of the live state. The payloads are shared (`Arc`): cloning a change is cheap,
/// and every subscriber sees the same snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", content = "data", rename_all = "snake_case")]
pub enum StateChange {
    /// A channel appeared.
    ChannelCreated(Arc<Channel>),
    /// A fact of a channel changed; the new snapshot.
    ChannelUpdated(Arc<Channel>),
    /// A channel is gone (hung up, or absent from a resync); its last snapshot.
    ChannelGone(Arc<Channel>),
    /// A bridge appeared.
    BridgeCreated(Arc<Bridge>),
    /// A bridge changed (members, technology…).
    BridgeUpdated(Arc<Bridge>),
    /// A bridge was destroyed (or is absent from a resync); its last snapshot.
    BridgeGone(Arc<Bridge>),
    /// A new linkedid has a live channel.
    CallCreated(Arc<Call>),
    /// A call changed (state, parties, talks, hold…).
    CallUpdated(Arc<Call>),
    /// The last channel of a call is gone; the last snapshot with state `HungUp`.
    CallEnded(Arc<Call>),
    /// A device changed state (or appeared).
    DeviceStateChanged(DeviceState),
    /// A device is no longer reported (absent from a resync's device list).
    DeviceGone(String),
    /// A hint changed state (or appeared).
    HintChanged(Hint),
    /// A hint is no longer reported (absent from a resync's hint list); its last state.
    HintGone(Hint),
    /// A resync finished; the counts after it. The changes it made came before this one.
    Resynced(Counts),
}

impl StateChange {
    /// The change's name, as in the serialized `change` tag (`channel_created`…), for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            StateChange::ChannelCreated(_) => "channel_created",
            StateChange::ChannelUpdated(_) => "channel_updated",
            StateChange::ChannelGone(_) => "channel_gone",
            StateChange::BridgeCreated(_) => "bridge_created",
            StateChange::BridgeUpdated(_) => "bridge_updated",
            StateChange::BridgeGone(_) => "bridge_gone",
            StateChange::CallCreated(_) => "call_created",
            StateChange::CallUpdated(_) => "call_updated",
            StateChange::CallEnded(_) => "call_ended",
            StateChange::DeviceStateChanged(_) => "device_state_changed",
            StateChange::DeviceGone(_) => "device_gone",
            StateChange::HintChanged(_) => "hint_changed",
            StateChange::HintGone(_) => "hint_gone",
            StateChange::Resynced(_) => "resynced",
        }
    }
}
