//! The live state's public types: what readers get from [`LiveState`](super::LiveState) and
//! what the change stream carries. They are plain `Clone` structs (no handle into the store),
//! serializable for the websocket and the HTTP APIs that will show them.

use serde::Serialize;
use time::OffsetDateTime;

pub use crate::ari::models::{ChannelState, DeviceStateValue};

/// A caller id or connected line: name and number, `""` when unknown.
///
/// AMI writes an unknown value as `<unknown>` and ARI as `""`; both become `""` here so the two
/// sources agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Party {
    pub name: String,
    pub number: String,
}

/// Where a channel is in the dialplan, and the application running there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dialplan {
    pub context: String,
    pub exten: String,
    pub priority: i64,
    /// The dialplan application (`Dial`, `Queue`, `AppDial` for an outgoing leg…), `""` if none.
    pub app_name: String,
    pub app_data: String,
}

/// One live channel (a call leg), keyed by its uniqueid (= the ARI channel id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    /// The uniqueid (`1795874804.0`, or the id an ARI client chose, `s05-1001`).
    pub id: String,
    /// `PJSIP/2001-00000000`, `Local/1001@caller-0000001d;1`.
    pub name: String,
    /// The channel technology: `PJSIP`, `Local`…
    pub technology: String,
    /// The device the channel belongs to, as device states name it: the name without the
    /// Local half suffix (`;1`) and without the `-<hex sequence>` suffix: `PJSIP/2001`,
    /// `PJSIP/pstn-trunk`, `Local/1001@caller`.
    pub endpoint: String,
    pub state: ChannelState,
    /// The channel's own caller id.
    pub caller: Party,
    /// Who the channel is connected to, as Asterisk reports it.
    pub connected: Party,
    /// The call the channel belongs to. From AMI (every channel event carries `Linkedid`); ARI
    /// has no linkedid, so without AMI it is inferred (see the module documentation). `""`
    /// while unknown: a channel first seen through ARI waits for AMI to name it (a few
    /// milliseconds), or without AMI, an outgoing leg waits for its `Dial` event; such a
    /// channel is in no call yet.
    pub linkedid: String,
    pub dialplan: Dialplan,
    /// The bridge the channel is in, if any.
    pub bridge_id: Option<String>,
    /// The other channels of that bridge: who this channel talks to.
    pub talking_to: Vec<String>,
    /// The channel put its peer on hold (AMI `Hold`, ARI `ChannelHold`: reported on the
    /// **holding** party, e.g. the SIP phone that sent a `sendonly` re-INVITE).
    pub on_hold: bool,
    /// Music on hold is playing on this channel (AMI `MusicOnHoldStart`/`Stop`; ARI has no such
    /// event). On a held SIP call it is the **held** party's channel.
    pub moh: bool,
    /// Muted in a conference (AMI `ConfbridgeJoin` `Muted:`, `ConfbridgeMute`/`Unmute`);
    /// `None` when not observable (not in a ConfBridge).
    pub muted: Option<bool>,
    /// The queue the channel waits in (AMI `QueueCallerJoin`/`Leave`).
    pub queue: Option<String>,
    /// The Stasis application controlling the channel (ARI `StasisStart`/`End`).
    pub stasis_app: Option<String>,
    /// The channel that dialed this one (AMI `DialBegin`, ARI `Dial` with a caller): this
    /// channel is a callee leg. `None` for callers and originated channels.
    pub dialed_by: Option<String>,
    /// The last dial status of this leg (`RINGING`, `ANSWER`, `NOANSWER`, `BUSY`…).
    pub dial_status: Option<String>,
    /// The last DTMF digits received on the channel (at most
    /// [`MAX_DTMF_DIGITS`](super::MAX_DTMF_DIGITS), oldest dropped first).
    pub dtmf_received: String,
    /// How many digits were received in all: a consumer that saw `n` before knows the last
    /// `dtmf_count - n` characters of `dtmf_received` are new.
    pub dtmf_count: u64,
    /// When the channel was first seen `Up`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
    /// The Q.850 hangup cause (AMI `Hangup` `Cause`, ARI `ChannelDestroyed` `cause`); only on
    /// the last snapshot that [`StateChange::ChannelGone`](super::StateChange) carries.
    pub hangup_cause: Option<i64>,
    /// When the channel was hung up; only on the last snapshot, like `hangup_cause`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub hungup_at: Option<OffsetDateTime>,
    /// When Asterisk created the channel (ARI `creationtime`, else the AMI `Newchannel`
    /// timestamp).
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// One live bridge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bridge {
    pub id: String,
    /// `simple_bridge`, `native_rtp`, `softmix`, `holding_bridge`… It changes while the bridge
    /// lives (a two-party SIP bridge moves from `simple_bridge` to `native_rtp`).
    pub technology: String,
    /// The bridge class: `basic` (Dial, Queue), `stasis` (ARI), `base` (ConfBridge), `parking`.
    /// AMI calls it `BridgeType`, ARI `bridge_class`.
    pub class: String,
    /// `mixing` or `holding` (ARI `bridge_type`; AMI does not say).
    pub bridge_type: Option<String>,
    /// Who created it (`ConfBridge`, `Stasis`, `""`).
    pub creator: String,
    pub name: String,
    /// The member channel ids, sorted.
    pub channels: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Being set up: nothing rings yet and nobody answered.
    Dialing,
    /// A leg is ringing (`Ringing` channel state) and no two legs talk yet.
    Ringing,
    /// Answered: either two legs share a bridge, or a leg is up (an application, voicemail…).
    Up,
    /// Two legs share a bridge and one of them holds (or music on hold plays on a leg).
    OnHold,
    /// The last channel is gone; only in [`StateChange::CallEnded`](super::StateChange).
    HungUp,
}

/// A party of a call: one of its channels and the identity it shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallParty {
    pub channel_id: String,
    pub channel_name: String,
    pub endpoint: String,
    /// The channel's caller id (for a callee leg: the callee's own id, e.g. `Bob <2002>`).
    pub party: Party,
    pub state: ChannelState,
    pub dial_status: Option<String>,
}

/// Channels that share a bridge: they talk to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Talk {
    pub bridge_id: String,
    /// Every channel of the bridge, sorted (a conference also lists other calls' channels).
    pub channels: Vec<String>,
}

/// A call: the live channels that share one linkedid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub linkedid: String,
    pub state: CallState,
    /// The originating channel (uniqueid == linkedid); kept once seen, even after that channel
    /// is gone while the call goes on.
    pub caller: Option<CallParty>,
    /// The live legs that were dialed for this call (`dialed_by` set), oldest first.
    pub callees: Vec<CallParty>,
    /// The live channel ids of the call, sorted.
    pub channels: Vec<String>,
    /// The bridges holding one of its channels, sorted.
    pub bridges: Vec<String>,
    /// Who talks to whom: the bridges with at least two channels, one of them in this call.
    pub talks: Vec<Talk>,
    /// A leg holds (`on_hold`), or music on hold plays on a leg while the call talks.
    pub on_hold: bool,
    /// A transfer (blind or attended, AMI or ARI) succeeded in this call.
    pub transferred: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// The state of a device (`PJSIP/2001` → `INUSE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceState {
    pub device: String,
    pub state: DeviceStateValue,
}

/// The state of a dialplan hint (AMI `ExtensionStatus`; ARI has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    pub exten: String,
    pub context: String,
    /// The hinted devices, e.g. `PJSIP/2001`.
    pub hint: String,
    /// Asterisk's extension state code: 0 Idle, 1 InUse, 2 Busy, 4 Unavailable, 8 Ringing,
    /// 9 InUse&Ringing, 16 Hold, 17 InUse&Hold, -1 removed.
    pub status: i64,
    /// `Idle`, `InUse`, `Unavailable`, `Ringing`, `Hold`…
    pub status_text: String,
}

/// How many of each thing the state holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub channels: usize,
    pub bridges: usize,
    pub calls: usize,
    pub devices: usize,
    pub hints: usize,
}

/// A copy of the whole state, each list sorted by key: what a websocket client gets first,
/// and what tests compare.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StateView {
    pub channels: Vec<Channel>,
    pub bridges: Vec<Bridge>,
    pub calls: Vec<Call>,
    pub devices: Vec<DeviceState>,
    pub hints: Vec<Hint>,
}

/// The device part of a channel name: `PJSIP/2001-0000000a` → `PJSIP/2001`,
/// `Local/1001@caller-0000001d;2` → `Local/1001@caller`. A name without a `-<hex>` suffix is
/// kept whole.
pub fn endpoint_of(name: &str) -> &str {
    let base = match name.rsplit_once(';') {
        Some((head, tail)) if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => name,
    };
    match base.rsplit_once('-') {
        Some((head, tail)) if !head.is_empty() && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => base,
    }
}

/// The technology part of a channel name (`PJSIP`), `""` without a slash.
pub fn technology_of(name: &str) -> &str {
    name.split_once('/').map(|(t, _)| t).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_recorded_names() {
        assert_eq!(endpoint_of("PJSIP/2001-00000000"), "PJSIP/2001");
        assert_eq!(endpoint_of("PJSIP/pstn-trunk-00000008"), "PJSIP/pstn-trunk");
        assert_eq!(endpoint_of("Local/1001@caller-0000001d;1"), "Local/1001@caller");
        assert_eq!(endpoint_of("Local/1001@caller-ari-00000007;2"), "Local/1001@caller-ari");
        assert_eq!(endpoint_of("CBAnn/100"), "CBAnn/100");
        assert_eq!(endpoint_of(""), "");
        assert_eq!(endpoint_of("-"), "-");
        assert_eq!(technology_of("PJSIP/2001-00000000"), "PJSIP");
        assert_eq!(technology_of("weird"), "");
    }
}
