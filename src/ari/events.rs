//! The ARI websocket messages (`/ari/events`) as one typed enum, [`AriEvent`].
//!
//! Every `Event` subtype of the ARI spec of Asterisk 22.10.1 (`events.json`)
//! has a variant carrying a payload struct of the same name, plus
//! `MissingParams` (the error message the websocket sends when a required
//! parameter is missing). Each payload holds the common fields of the spec's
//! `Message`/`Event` base types (`type`, `timestamp`, `asterisk_id`,
//! `application`) next to its own, so it re-serializes to what Asterisk sent.
//!
//! [`parse_event`] never loses a message: a type we do not know, or a known
//! type whose payload does not match its model (a required field missing, a
//! field of the wrong JSON type), becomes [`AriEvent::Unknown`] with the raw
//! JSON. Only text that is not JSON, or JSON that is not an ARI message
//! (no string `type`), is an error: there is nothing to keep.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::models::{
    parse_ari_timestamp, string_enum, Bridge, Channel, DeviceState, Endpoint, LiveRecording, Playback, TextMessage,
};

/// Why a websocket message could not be turned into an [`AriEvent`].
#[derive(Debug, thiserror::Error)]
pub enum AriEventError {
    /// The text is not JSON (a truncated frame, binary garbage…).
    #[error("ARI message is not valid JSON: {0}")]
    InvalidJson(#[from] serde_json::Error),
    /// Valid JSON, but not an object with a string `type`: not an ARI message.
    #[error("ARI message has no string \"type\" field")]
    NotAMessage,
}

/// Parses one websocket text message. See the module doc for the rules.
pub fn parse_event(text: &str) -> Result<AriEvent, AriEventError> {
    let value: Value = serde_json::from_str(text)?;
    AriEvent::from_value(value)
}

// ------------------------------------------------------------------ refs

/// What an event points at, collected by walking its fields in order.
#[derive(Default)]
struct RefSink<'a> {
    channels: Vec<&'a Channel>,
    bridges: Vec<&'a Bridge>,
    channel_ids: Vec<&'a str>,
    bridge_ids: Vec<&'a str>,
}

/// Implemented by every field type of a payload, so the event macro can walk
/// all fields without knowing which ones carry channels or bridges.
trait Refs {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>);
}

macro_rules! no_refs {
    ($($t:ty),* $(,)?) => { $( impl Refs for $t { fn refs<'a>(&'a self, _: &mut RefSink<'a>) {} } )* };
}
no_refs!(
    String,
    i64,
    bool,
    Vec<String>,
    Value,
    Map<String, Value>,
    Endpoint,
    DeviceState,
    TextMessage,
    ContactInfo,
    Peer,
    RequiredDestination
);

impl<T: Refs> Refs for Option<T> {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
        if let Some(t) = self {
            t.refs(sink);
        }
    }
}

impl Refs for Channel {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
        sink.channels.push(self);
        sink.channel_ids.push(&self.id);
    }
}

impl Refs for Bridge {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
        sink.bridges.push(self);
        sink.bridge_ids.push(&self.id);
    }
}

/// A media target URI (`channel:<id>` / `bridge:<id>`): a playback or a
/// recording concerns that channel or bridge.
fn target_uri_refs<'a>(uri: &'a str, sink: &mut RefSink<'a>) {
    if let Some(id) = uri.strip_prefix("channel:") {
        sink.channel_ids.push(id);
    } else if let Some(id) = uri.strip_prefix("bridge:") {
        sink.bridge_ids.push(id);
    }
}

impl Refs for Playback {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
        target_uri_refs(&self.target_uri, sink);
    }
}

impl Refs for LiveRecording {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
        target_uri_refs(&self.target_uri, sink);
    }
}

/// The common fields, read through one trait so [`AriEvent`]'s accessors are
/// a single match.
trait Payload: Refs {
    fn timestamp(&self) -> Option<&str>;
    fn application(&self) -> Option<&str>;
    fn asterisk_id(&self) -> Option<&str>;
}

// -------------------------------------------------------- payload structs

/// Declares an `Event` payload: the common fields of the spec's `Message` and
/// `Event` base types, then the event's own fields.
macro_rules! ari_event {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            /// The message type, as sent (the name of this struct, except for
            /// the spec's all-caps `REST…` names).
            #[serde(rename = "type")]
            pub event_type: String,
            /// When Asterisk created the event; see [`parse_ari_timestamp`].
            pub timestamp: String,
            /// The Asterisk instance that raised the event (optional in the spec,
            /// always sent by Asterisk 22).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub asterisk_id: Option<String>,
            /// The Stasis application receiving the event.
            pub application: String,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Refs for $name {
            #[allow(unused_variables)]
            fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
                $( Refs::refs(&self.$field, sink); )*
            }
        }

        impl Payload for $name {
            fn timestamp(&self) -> Option<&str> {
                Some(&self.timestamp)
            }
            fn application(&self) -> Option<&str> {
                Some(&self.application)
            }
            fn asterisk_id(&self) -> Option<&str> {
                self.asterisk_id.as_deref()
            }
        }
    };
}

/// Error message sent when required parameters are missing. It is a
/// `Message` but not an `Event`: it has no `timestamp` nor `application`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingParams {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asterisk_id: Option<String>,
    /// The names of the missing parameters.
    pub params: Vec<String>,
}

impl Refs for MissingParams {
    fn refs<'a>(&'a self, _: &mut RefSink<'a>) {}
}

impl Payload for MissingParams {
    fn timestamp(&self) -> Option<&str> {
        None
    }
    fn application(&self) -> Option<&str> {
        None
    }
    fn asterisk_id(&self) -> Option<&str> {
        self.asterisk_id.as_deref()
    }
}

string_enum! {
    /// `ContactInfo.contact_status`.
    pub enum ContactStatus {
        Unreachable => "Unreachable",
        Reachable => "Reachable",
        Unknown => "Unknown",
        NonQualified => "NonQualified",
        Removed => "Removed",
    }
}

/// A contact of an endpoint (a registered SIP URI), in `ContactStatusChange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInfo {
    pub uri: String,
    pub contact_status: ContactStatus,
    /// The AOR the contact belongs to.
    pub aor: String,
    /// Round trip time of the last qualify, in microseconds. A string, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roundtrip_usec: Option<String>,
}

/// A remote peer's status, in `PeerStatusChange`. Asterisk 22's PJSIP sends
/// only `peer_status` (`Reachable`/`Unreachable`); its values depend on the
/// channel technology, so it stays a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub peer_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// A protocol parameter of a REFER destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdditionalParam {
    pub parameter_name: String,
    pub parameter_value: String,
}

/// The destination asked for by a REFER.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredDestination {
    /// The Call-ID of the referred dialog, for an attended transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_protocol_params: Option<Vec<AdditionalParam>>,
}

/// The Refer-To side of a `ChannelTransfer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferTo {
    pub requested_destination: RequiredDestination,
    /// The channel the transfer targets, when Asterisk found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_channel: Option<Channel>,
    /// The channel connected to the destination channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
}

impl Refs for ReferTo {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
        self.destination_channel.refs(sink);
        self.connected_channel.refs(sink);
        self.bridge.refs(sink);
    }
}

/// The Referred-By side of a `ChannelTransfer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferredBy {
    /// The channel on which the REFER arrived.
    pub source_channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
}

impl Refs for ReferredBy {
    fn refs<'a>(&'a self, sink: &mut RefSink<'a>) {
        self.source_channel.refs(sink);
        self.connected_channel.refs(sink);
        self.bridge.refs(sink);
    }
}

/// A header of a REST-over-websocket request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestHeader {
    pub name: String,
    pub value: String,
}

/// A query parameter of a REST-over-websocket request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestQueryStringParameter {
    pub name: String,
    pub value: String,
}

/// A REST request sent over the websocket (`RESTRequest`): the client's side
/// of the exchange whose answer is [`RestResponse`]. Kept here so a future
/// websocket transport and the fake Asterisk share one model.
#[doc(alias = "RESTRequest")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestRequest {
    /// Always `RESTRequest`.
    #[serde(rename = "type")]
    pub request_type: String,
    pub transaction_id: String,
    pub request_id: String,
    pub method: String,
    /// Resource URI without the `/ari` prefix, e.g. `channels/1234/answer`.
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_strings: Option<Vec<RestQueryStringParameter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

ari_event! {
    /// A device changed state (`PJSIP/2001` → `INUSE`). With `subscribeAll`
    /// this is the only ARI view of PJSIP device states.
    DeviceStateChanged { device_state: DeviceState }
}
ari_event! {
    /// A playback started.
    PlaybackStarted { playback: Playback }
}
ari_event! {
    /// A playback moved on to the next media of its list.
    PlaybackContinuing { playback: Playback }
}
ari_event! {
    /// A playback ended (`done` or `failed`).
    PlaybackFinished { playback: Playback }
}
ari_event! {
    /// A live recording started.
    RecordingStarted { recording: LiveRecording }
}
ari_event! {
    /// A live recording ended normally.
    RecordingFinished { recording: LiveRecording }
}
ari_event! {
    /// A live recording failed.
    RecordingFailed { recording: LiveRecording }
}
ari_event! {
    /// Moving a channel to another Stasis application failed.
    ApplicationMoveFailed {
        channel: Channel,
        /// The application the channel was to move to.
        destination: String,
        /// Arguments to the application.
        args: Vec<String>,
    }
}
ari_event! {
    /// The application was registered (websocket connected).
    ApplicationRegistered {}
}
ari_event! {
    /// The application was unregistered.
    ApplicationUnregistered {}
}
ari_event! {
    /// Another websocket took over this application name: this connection
    /// no longer receives its events.
    ApplicationReplaced {}
}
ari_event! {
    /// A bridge was created.
    BridgeCreated { bridge: Bridge }
}
ari_event! {
    /// A bridge was destroyed.
    BridgeDestroyed { bridge: Bridge }
}
ari_event! {
    /// Two bridges were merged: `bridge_from`'s channels moved into `bridge`.
    BridgeMerged { bridge: Bridge, bridge_from: Bridge }
}
ari_event! {
    /// The video source of a bridge changed.
    BridgeVideoSourceChanged {
        bridge: Bridge,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old_video_source_id: Option<String>,
    }
}
ari_event! {
    /// A blind transfer happened (or was attempted: see `result`).
    BridgeBlindTransfer {
        /// The channel performing the transfer.
        channel: Channel,
        /// The channel replacing the transferer when the transferees cannot be
        /// moved directly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replace_channel: Option<Channel>,
        /// The channel being transferred.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transferee: Option<Channel>,
        exten: String,
        context: String,
        /// `Success`, `Fail`, `Invalid` or `Not Permitted`.
        result: String,
        /// Whether the transfer was requested from outside the bridge
        /// (AMI `BlindTransfer`, a SIP REFER) rather than by DTMF features.
        is_external: bool,
        /// The bridge being transferred.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bridge: Option<Bridge>,
    }
}
ari_event! {
    /// An attended transfer happened (or was attempted: see `result`). How it
    /// ended is in `destination_type` (`bridge`, `application`, `link`,
    /// `threeway` or `fail`) and the matching `destination_*` fields.
    BridgeAttendedTransfer {
        transferer_first_leg: Channel,
        transferer_second_leg: Channel,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replace_channel: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transferee: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transfer_target: Option<Channel>,
        result: String,
        is_external: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transferer_first_leg_bridge: Option<Bridge>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transferer_second_leg_bridge: Option<Bridge>,
        destination_type: String,
        /// Id of the bridge that survived the merge (an id, not a Bridge).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination_bridge: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination_application: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination_link_first_leg: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination_link_second_leg: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination_threeway_channel: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination_threeway_bridge: Option<Bridge>,
    }
}
ari_event! {
    /// A channel was created.
    ChannelCreated { channel: Channel }
}
ari_event! {
    /// A channel was destroyed: the last event of a channel.
    ChannelDestroyed {
        /// Q.850 hangup cause (16 Normal Clearing, 17 User busy, …).
        cause: i64,
        cause_txt: String,
        /// Technology-specific cause (a SIP code). Not sent in the recordings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tech_cause: Option<i64>,
        channel: Channel,
    }
}
ari_event! {
    /// A channel entered a bridge; `bridge.channels` is the membership after.
    ChannelEnteredBridge {
        bridge: Bridge,
        /// Optional in the spec; always sent in the recordings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<Channel>,
    }
}
ari_event! {
    /// A channel left a bridge; `bridge.channels` is the membership after.
    ChannelLeftBridge { bridge: Bridge, channel: Channel }
}
ari_event! {
    /// A channel changed state (`Ring`, `Ringing`, `Up`…).
    ChannelStateChange { channel: Channel }
}
ari_event! {
    /// A DTMF digit ended on a channel.
    ChannelDtmfReceived {
        /// `0-9`, `A-E`, `#` or `*`.
        digit: String,
        duration_ms: i64,
        channel: Channel,
    }
}
ari_event! {
    /// A channel entered a dialplan location (the AMI `Newexten`). The
    /// `CELGenUserEvent` call-log markers are only visible here in ARI.
    ChannelDialplan {
        channel: Channel,
        dialplan_app: String,
        dialplan_app_data: String,
    }
}
ari_event! {
    /// A channel's caller id changed.
    ChannelCallerId {
        caller_presentation: i64,
        caller_presentation_txt: String,
        channel: Channel,
    }
}
ari_event! {
    /// A user event (`UserEvent()` dialplan app or `POST /events/user`).
    ChannelUserevent {
        eventname: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bridge: Option<Bridge>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<Endpoint>,
        /// The user-defined fields.
        userevent: Map<String, Value>,
    }
}
ari_event! {
    /// A hangup was requested on a channel (it is not gone yet).
    ChannelHangupRequest {
        /// Optional in the spec; always sent in the recordings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tech_cause: Option<i64>,
        /// Whether it was a soft hangup; absent for a hard one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        soft: Option<bool>,
        channel: Channel,
    }
}
ari_event! {
    /// A variable changed. Without `channel`, a global variable.
    ChannelVarset {
        variable: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<Channel>,
    }
}
ari_event! {
    /// A tone was detected on a channel (`TONE_DETECT`).
    ChannelToneDetected { channel: Channel }
}
ari_event! {
    /// Talk detection (`TALK_DETECT`) saw a channel start talking.
    ChannelTalkingStarted { channel: Channel }
}
ari_event! {
    /// Talk detection saw a channel stop talking.
    ChannelTalkingFinished {
        channel: Channel,
        /// How long the talking lasted, in milliseconds.
        duration: i64,
    }
}
ari_event! {
    /// A channel put its peer on hold (sent on the **holding** party; the
    /// held one gets the music). Only emitted by a channel driver (PJSIP
    /// re-INVITE) or during a transfer, not by `POST /channels/{id}/hold` on
    /// a Local channel.
    ChannelHold {
        channel: Channel,
        /// The music class asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        musicclass: Option<String>,
    }
}
ari_event! {
    /// A channel took its peer off hold.
    ChannelUnhold { channel: Channel }
}
ari_event! {
    /// A contact of an endpoint changed status (registration, qualify,
    /// removal). `endpoint.state` is the endpoint's state when the event was
    /// built, not the result of this change: use `PeerStatusChange`.
    ContactStatusChange { endpoint: Endpoint, contact_info: ContactInfo }
}
ari_event! {
    /// A peer (a PJSIP contact's endpoint) became reachable or unreachable:
    /// the reliable online/offline signal for registrations.
    PeerStatusChange { endpoint: Endpoint, peer: Peer }
}
ari_event! {
    /// An endpoint's state changed. Asterisk 22 does not send it with
    /// `subscribeAll` (none in the recordings).
    EndpointStateChange { endpoint: Endpoint }
}
ari_event! {
    /// Progress of a dial (`Dial()`, `Queue()`, an originate).
    Dial {
        /// The calling channel; absent when nothing calls (an originate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller: Option<Channel>,
        /// The dialed channel.
        peer: Channel,
        /// Forwarding target requested by the dialed channel (sent as `""`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forward: Option<String>,
        /// The channel the caller was forwarded to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forwarded: Option<Channel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dialstring: Option<String>,
        /// `""` when the dial starts, then `RINGING`, `ANSWER`, `BUSY`,
        /// `NOANSWER`, `CANCEL`, …
        dialstatus: String,
    }
}
ari_event! {
    /// A channel left the Stasis application.
    StasisEnd { channel: Channel }
}
ari_event! {
    /// A channel entered the Stasis application: from here the application
    /// controls it.
    StasisStart {
        /// Arguments given to `Stasis()` or to the originate (`appArgs`).
        args: Vec<String>,
        channel: Channel,
        /// The channel this one replaces (after a masquerade/transfer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replace_channel: Option<Channel>,
    }
}
ari_event! {
    /// A text message (SIP MESSAGE) arrived.
    TextMessageReceived {
        message: TextMessage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<Endpoint>,
    }
}
ari_event! {
    /// A channel's connected line changed (both legs get one when `Dial`
    /// creates the callee).
    ChannelConnectedLine { channel: Channel }
}
ari_event! {
    /// A transfer request (SIP REFER) on a channel, when the endpoint hands
    /// transfers to ARI.
    ChannelTransfer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
        refer_to: ReferTo,
        referred_by: ReferredBy,
    }
}
ari_event! {
    /// The answer to a [`RestRequest`] sent over the websocket (`RESTResponse`).
    #[doc(alias = "RESTResponse")]
    RestResponse {
        transaction_id: String,
        request_id: String,
        status_code: i64,
        reason_phrase: String,
        uri: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_body: Option<String>,
    }
}
ari_event! {
    /// A channel is offered to all ARI applications (`CallBroadcast`); the
    /// first to `POST /events/claim` gets it.
    CallBroadcast {
        channel: Channel,
        /// The caller id number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller: Option<String>,
        /// The called number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        called: Option<String>,
    }
}
ari_event! {
    /// A broadcast channel was claimed.
    CallClaimed { channel: Channel, winner_app: String }
}

// ------------------------------------------------------------------ enum

/// Declares [`AriEvent`] and everything that needs the full list of
/// variants, so a new event type is added in one place. Payloads are boxed:
/// a `Channel` snapshot is ~500 bytes and an attended transfer carries up to
/// eight of them, so inline payloads would make every event, even a
/// `DeviceStateChanged`, several kilobytes wide as it moves through channels.
macro_rules! ari_event_enum {
    ( $( $variant:ident => $text:literal, )+ ) => {
        /// One ARI websocket message. See the module doc.
        #[derive(Debug, Clone, PartialEq)]
        pub enum AriEvent {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant(Box<$variant>),
            )+
            /// A message we could not type: a type unknown to the spec of
            /// Asterisk 22.10.1, or a known type whose payload did not match
            /// its model. Kept whole so nothing is lost.
            Unknown {
                /// The message's `type`.
                event_type: String,
                /// The message as received.
                raw: Value,
            },
        }

        /// Every message type [`AriEvent`] has a typed variant for.
        pub const KNOWN_EVENT_TYPES: &[&str] = &[ $( $text, )+ ];

        impl AriEvent {
            /// The typed payload for a known type; `None` for an unknown type.
            fn typed(event_type: &str, value: &Value) -> Option<Result<AriEvent, serde_json::Error>> {
                Some(match event_type {
                    $( $text => $variant::deserialize(value).map(|e| AriEvent::$variant(Box::new(e))), )+
                    _ => return None,
                })
            }

            /// The message's `type`, e.g. `ChannelCreated`.
            pub fn event_type(&self) -> &str {
                match self {
                    $( AriEvent::$variant(_) => $text, )+
                    AriEvent::Unknown { event_type, .. } => event_type,
                }
            }

            fn payload(&self) -> Option<&dyn Payload> {
                match self {
                    $( AriEvent::$variant(e) => Some(&**e), )+
                    AriEvent::Unknown { .. } => None,
                }
            }
        }

        /// Writes the message back as Asterisk sent it (the typed payload, or
        /// the raw JSON of `Unknown`).
        impl Serialize for AriEvent {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( AriEvent::$variant(e) => e.serialize(serializer), )+
                    AriEvent::Unknown { raw, .. } => raw.serialize(serializer),
                }
            }
        }
    };
}

ari_event_enum! {
    MissingParams => "MissingParams",
    DeviceStateChanged => "DeviceStateChanged",
    PlaybackStarted => "PlaybackStarted",
    PlaybackContinuing => "PlaybackContinuing",
    PlaybackFinished => "PlaybackFinished",
    RecordingStarted => "RecordingStarted",
    RecordingFinished => "RecordingFinished",
    RecordingFailed => "RecordingFailed",
    ApplicationMoveFailed => "ApplicationMoveFailed",
    ApplicationRegistered => "ApplicationRegistered",
    ApplicationUnregistered => "ApplicationUnregistered",
    ApplicationReplaced => "ApplicationReplaced",
    BridgeCreated => "BridgeCreated",
    BridgeDestroyed => "BridgeDestroyed",
    BridgeMerged => "BridgeMerged",
    BridgeBlindTransfer => "BridgeBlindTransfer",
    BridgeAttendedTransfer => "BridgeAttendedTransfer",
    BridgeVideoSourceChanged => "BridgeVideoSourceChanged",
    ChannelCreated => "ChannelCreated",
    ChannelDestroyed => "ChannelDestroyed",
    ChannelEnteredBridge => "ChannelEnteredBridge",
    ChannelLeftBridge => "ChannelLeftBridge",
    ChannelStateChange => "ChannelStateChange",
    ChannelDtmfReceived => "ChannelDtmfReceived",
    ChannelDialplan => "ChannelDialplan",
    ChannelCallerId => "ChannelCallerId",
    ChannelUserevent => "ChannelUserevent",
    ChannelHangupRequest => "ChannelHangupRequest",
    ChannelVarset => "ChannelVarset",
    ChannelToneDetected => "ChannelToneDetected",
    ChannelTalkingStarted => "ChannelTalkingStarted",
    ChannelTalkingFinished => "ChannelTalkingFinished",
    ChannelHold => "ChannelHold",
    ChannelUnhold => "ChannelUnhold",
    ContactStatusChange => "ContactStatusChange",
    EndpointStateChange => "EndpointStateChange",
    Dial => "Dial",
    StasisEnd => "StasisEnd",
    StasisStart => "StasisStart",
    TextMessageReceived => "TextMessageReceived",
    ChannelConnectedLine => "ChannelConnectedLine",
    PeerStatusChange => "PeerStatusChange",
    ChannelTransfer => "ChannelTransfer",
    RestResponse => "RESTResponse",
    CallBroadcast => "CallBroadcast",
    CallClaimed => "CallClaimed",
}

/// Top-level fields that hold a channel or a bridge in some event type,
/// read from the raw JSON of an `Unknown` so that a message we could not type
/// can still be routed to the calls it concerns.
const RAW_CHANNEL_FIELDS: &[&str] = &[
    "channel",
    "peer",
    "caller",
    "forwarded",
    "replace_channel",
    "transferee",
    "transfer_target",
    "transferer_first_leg",
    "transferer_second_leg",
    "destination_link_first_leg",
    "destination_link_second_leg",
    "destination_threeway_channel",
];
const RAW_BRIDGE_FIELDS: &[&str] = &[
    "bridge",
    "bridge_from",
    "transferer_first_leg_bridge",
    "transferer_second_leg_bridge",
    "destination_threeway_bridge",
];

fn raw_ids<'a>(raw: &'a Value, fields: &[&str]) -> Vec<&'a str> {
    fields.iter().filter_map(|f| raw.get(f)?.get("id")?.as_str()).collect()
}

/// Keeps the first occurrence of each id, in order.
fn dedup(ids: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

impl AriEvent {
    /// Types a parsed message. See the module doc for what becomes `Unknown`.
    pub fn from_value(value: Value) -> Result<AriEvent, AriEventError> {
        let Some(event_type) = value.get("type").and_then(Value::as_str) else {
            return Err(AriEventError::NotAMessage);
        };
        match AriEvent::typed(event_type, &value) {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => {
                tracing::warn!(
                    event_type,
                    %error,
                    "ARI event does not match its model; kept as Unknown"
                );
                Ok(AriEvent::Unknown {
                    event_type: event_type.to_owned(),
                    raw: value,
                })
            }
            None => {
                // A newer Asterisk may send many of these: not worth a warning each.
                tracing::debug!(event_type, "ARI event of an unknown type; kept as Unknown");
                Ok(AriEvent::Unknown {
                    event_type: event_type.to_owned(),
                    raw: value,
                })
            }
        }
    }

    /// True for [`AriEvent::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, AriEvent::Unknown { .. })
    }

    /// The `timestamp` as sent (absent from `MissingParams`).
    pub fn timestamp(&self) -> Option<&str> {
        match self.payload() {
            Some(p) => p.timestamp(),
            None => self.raw_str("timestamp"),
        }
    }

    /// The `timestamp`, parsed.
    pub fn time(&self) -> Option<OffsetDateTime> {
        parse_ari_timestamp(self.timestamp()?).ok()
    }

    /// The Stasis application the event was sent to.
    pub fn application(&self) -> Option<&str> {
        match self.payload() {
            Some(p) => p.application(),
            None => self.raw_str("application"),
        }
    }

    /// The Asterisk instance that raised the event.
    pub fn asterisk_id(&self) -> Option<&str> {
        match self.payload() {
            Some(p) => p.asterisk_id(),
            None => self.raw_str("asterisk_id"),
        }
    }

    fn raw_str(&self, key: &str) -> Option<&str> {
        match self {
            AriEvent::Unknown { raw, .. } => raw.get(key)?.as_str(),
            _ => None,
        }
    }

    fn refs(&self) -> RefSink<'_> {
        let mut sink = RefSink::default();
        if let Some(p) = self.payload() {
            p.refs(&mut sink);
        }
        sink
    }

    /// Every channel snapshot the event carries (`channel`, `peer`, `caller`,
    /// `replace_channel`, the transfer legs…), in field order. Empty for
    /// `Unknown`.
    pub fn channels(&self) -> Vec<&Channel> {
        self.refs().channels
    }

    /// Every bridge snapshot the event carries, in field order.
    pub fn bridges(&self) -> Vec<&Bridge> {
        self.refs().bridges
    }

    /// The ids of every channel the event concerns, without duplicates: the
    /// channel snapshots it carries, plus the target of a playback or a
    /// recording (`channel:<id>`). Members of a bridge that are not carried
    /// as a channel are not included (see `Bridge::channels`). For
    /// `Unknown`, read from the raw JSON's usual channel fields.
    pub fn channel_ids(&self) -> Vec<&str> {
        match self {
            AriEvent::Unknown { raw, .. } => dedup(raw_ids(raw, RAW_CHANNEL_FIELDS)),
            _ => dedup(self.refs().channel_ids),
        }
    }

    /// The ids of every bridge the event concerns, without duplicates: the
    /// bridge snapshots it carries, an attended transfer's
    /// `destination_bridge`, and the target of a playback or a recording
    /// (`bridge:<id>`).
    pub fn bridge_ids(&self) -> Vec<&str> {
        match self {
            AriEvent::Unknown { raw, .. } => {
                let mut ids = raw_ids(raw, RAW_BRIDGE_FIELDS);
                ids.extend(raw.get("destination_bridge").and_then(Value::as_str));
                dedup(ids)
            }
            AriEvent::BridgeAttendedTransfer(e) => {
                let mut ids = self.refs().bridge_ids;
                ids.extend(e.destination_bridge.as_deref());
                dedup(ids)
            }
            _ => dedup(self.refs().bridge_ids),
        }
    }
}

/// Same rules as [`parse_event`], for callers that deserialize with serde.
impl<'de> Deserialize<'de> for AriEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        AriEvent::from_value(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL: &str = r#"{"id":"ID","name":"PJSIP/2001-00000006","state":"Up","protocol_id":"1-1@127.0.0.1",
        "caller":{"name":"Alice","number":"2001"},"connected":{"name":"Bob","number":"2002"},"accountcode":"",
        "dialplan":{"context":"from-internal","exten":"2002","priority":3,"app_name":"Dial","app_data":"PJSIP/2002,20"},
        "creationtime":"2026-11-28T14:07:48.908+0000","language":"en"}"#;
    const BRIDGE: &str = r#"{"id":"ID","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"basic",
        "creator":"","name":"","channels":["a","b"],"creationtime":"2026-11-28T13:00:19.454+0000","video_mode":"none"}"#;
    const COMMON: &str =
        r#""timestamp":"2026-11-28T13:00:22.462+0000","asterisk_id":"02:fc:00:00:00:01","application":"accent""#;

    fn channel(id: &str) -> String {
        CHANNEL.replace("\"ID\"", &format!("\"{id}\""))
    }
    fn bridge(id: &str) -> String {
        BRIDGE.replace("\"ID\"", &format!("\"{id}\""))
    }
    fn event(event_type: &str, fields: &str) -> String {
        format!(
            r#"{{"type":"{event_type}",{COMMON}{}{fields}}}"#,
            if fields.is_empty() { "" } else { "," }
        )
    }
    fn parse(text: &str) -> AriEvent {
        parse_event(text).expect("valid ARI message")
    }

    #[test]
    fn unknown_type_keeps_the_raw_json() {
        let text = event("ChannelTeleported", r#""channel":{"id":"c1"},"destination":"mars""#);
        let ev = parse(&text);
        let AriEvent::Unknown { event_type, raw } = &ev else {
            panic!("expected Unknown, got {ev:?}")
        };
        assert_eq!(event_type, "ChannelTeleported");
        assert_eq!(raw, &serde_json::from_str::<Value>(&text).expect("json"));
        assert_eq!(ev.event_type(), "ChannelTeleported");
        assert_eq!(ev.timestamp(), Some("2026-11-28T13:00:22.462+0000"));
        assert_eq!(ev.application(), Some("accent"));
        assert_eq!(ev.channel_ids(), vec!["c1"]);
        assert_eq!(serde_json::to_value(&ev).expect("ser"), *raw);
    }

    #[test]
    fn known_type_with_missing_required_field_becomes_unknown() {
        // ChannelDestroyed without its required `cause_txt`.
        let text = event(
            "ChannelDestroyed",
            &format!(r#""cause":16,"channel":{}"#, channel("c1")),
        );
        let ev = parse(&text);
        assert!(ev.is_unknown(), "{ev:?}");
        assert_eq!(ev.event_type(), "ChannelDestroyed");
        assert_eq!(ev.channel_ids(), vec!["c1"]);
        // A broken nested model (channel without `state`) too.
        let text = event("ChannelCreated", r#""channel":{"id":"c2","name":"x"}"#);
        let ev = parse(&text);
        assert!(ev.is_unknown());
        assert_eq!(ev.channel_ids(), vec!["c2"]);
        // A field of the wrong JSON type.
        let text = event(
            "ChannelDtmfReceived",
            &format!(r#""digit":1,"duration_ms":100,"channel":{}"#, channel("c")),
        );
        assert!(parse(&text).is_unknown());
        // The common fields are required for an Event.
        let text = format!(r#"{{"type":"ChannelCreated","channel":{}}}"#, channel("c3"));
        assert!(parse(&text).is_unknown());
    }

    /// Captures what `tracing` writes while `f` runs.
    fn logs_of(f: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.0.lock().expect("lock").clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_known_type_that_fails_its_model_is_logged_as_a_warning() {
        let logs = logs_of(|| {
            let ev = parse(&event(
                "ChannelDestroyed",
                &format!(r#""cause":16,"channel":{}"#, channel("c1")),
            ));
            assert!(ev.is_unknown());
        });
        assert!(logs.contains("WARN"), "{logs}");
        assert!(
            logs.contains("ChannelDestroyed") && logs.contains("cause_txt"),
            "{logs}"
        );
        // An unknown type is expected from a newer Asterisk: no warning.
        let logs = logs_of(|| assert!(parse(&event("ChannelTeleported", "")).is_unknown()));
        assert!(!logs.contains("WARN"), "{logs}");
    }

    #[test]
    fn invalid_json_and_non_messages_are_errors() {
        assert!(matches!(
            parse_event("{\"type\":\"Dial\""),
            Err(AriEventError::InvalidJson(_))
        ));
        assert!(matches!(parse_event(""), Err(AriEventError::InvalidJson(_))));
        assert!(matches!(
            parse_event("\u{1}\u{2}garbage"),
            Err(AriEventError::InvalidJson(_))
        ));
        assert!(matches!(parse_event("[1,2]"), Err(AriEventError::NotAMessage)));
        assert!(matches!(parse_event("{\"type\":5}"), Err(AriEventError::NotAMessage)));
        assert!(matches!(parse_event("{}"), Err(AriEventError::NotAMessage)));
    }

    #[test]
    fn extra_fields_are_tolerated() {
        let text = event(
            "ChannelCreated",
            &format!(
                r#""channel":{},"brand_new":true"#,
                channel("c1").replace("\"language\"", "\"x\":[1],\"language\"")
            ),
        );
        let ev = parse(&text);
        assert!(matches!(ev, AriEvent::ChannelCreated(_)));
    }

    #[test]
    fn channel_ids_of_bridge_events() {
        let ev = parse(&event(
            "ChannelEnteredBridge",
            &format!(r#""bridge":{},"channel":{}"#, bridge("b1"), channel("c1")),
        ));
        let AriEvent::ChannelEnteredBridge(e) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(e.bridge.channels, vec!["a", "b"]);
        assert_eq!(ev.channel_ids(), vec!["c1"]);
        assert_eq!(ev.bridge_ids(), vec!["b1"]);
        assert_eq!(ev.channels().len(), 1);
        assert_eq!(ev.bridges()[0].id, "b1");

        let ev = parse(&event(
            "BridgeBlindTransfer",
            &format!(
                r#""channel":{},"replace_channel":{},"transferee":{},"exten":"1003","context":"from-internal",
                "result":"Success","is_external":true,"bridge":{}"#,
                channel("t"),
                channel("r"),
                channel("e"),
                bridge("b")
            ),
        ));
        assert!(matches!(ev, AriEvent::BridgeBlindTransfer(_)));
        assert_eq!(ev.channel_ids(), vec!["t", "r", "e"]);
        assert_eq!(ev.bridge_ids(), vec!["b"]);

        let ev = parse(&event(
            "BridgeAttendedTransfer",
            &format!(
                r#""transferer_first_leg":{},"transferer_second_leg":{},"transferee":{},"transfer_target":{},
                "result":"Success","is_external":false,"transferer_first_leg_bridge":{},
                "transferer_second_leg_bridge":{},"destination_type":"bridge","destination_bridge":"b1""#,
                channel("l1"),
                channel("l2"),
                channel("te"),
                channel("tt"),
                bridge("b1"),
                bridge("b2")
            ),
        ));
        assert!(matches!(ev, AriEvent::BridgeAttendedTransfer(_)));
        assert_eq!(ev.channel_ids(), vec!["l1", "l2", "te", "tt"]);
        assert_eq!(ev.bridge_ids(), vec!["b1", "b2"]);

        let ev = parse(&event(
            "BridgeMerged",
            &format!(r#""bridge":{},"bridge_from":{}"#, bridge("into"), bridge("from")),
        ));
        assert_eq!(ev.bridge_ids(), vec!["into", "from"]);
        assert!(ev.channel_ids().is_empty());
    }

    #[test]
    fn channel_ids_of_dial() {
        let ev = parse(&event(
            "Dial",
            &format!(
                r#""caller":{},"peer":{},"forwarded":{},"forward":"1003","dialstring":"PJSIP/2002","dialstatus":"""#,
                channel("caller"),
                channel("peer"),
                channel("fwd")
            ),
        ));
        let AriEvent::Dial(d) = &ev else { panic!("{ev:?}") };
        assert_eq!(d.forward.as_deref(), Some("1003"));
        assert_eq!(ev.channel_ids(), vec!["caller", "peer", "fwd"]);
        // An originate has no caller.
        let ev = parse(&event(
            "Dial",
            &format!(r#""peer":{},"dialstatus":"ANSWER""#, channel("p")),
        ));
        assert_eq!(ev.channel_ids(), vec!["p"]);
        assert!(ev.bridge_ids().is_empty());
    }

    #[test]
    fn channel_ids_of_single_channel_events_and_others() {
        let ev = parse(&event(
            "ChannelHangupRequest",
            &format!(r#""cause":16,"soft":true,"channel":{}"#, channel("h")),
        ));
        let AriEvent::ChannelHangupRequest(h) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!((h.cause, h.soft, h.tech_cause), (Some(16), Some(true), None));
        assert_eq!(ev.channel_ids(), vec!["h"]);

        let ev = parse(&event(
            "StasisStart",
            &format!(
                r#""args":["a"],"channel":{},"replace_channel":{}"#,
                channel("n"),
                channel("o")
            ),
        ));
        assert_eq!(ev.channel_ids(), vec!["n", "o"]);

        // A global variable: no channel.
        let ev = parse(&event("ChannelVarset", r#""variable":"G","value":"1""#));
        assert!(matches!(ev, AriEvent::ChannelVarset(_)));
        assert!(ev.channel_ids().is_empty());

        let ev = parse(&event(
            "PlaybackStarted",
            r#""playback":{"id":"p","media_uri":"sound:x","target_uri":"channel:c9","state":"playing"}"#,
        ));
        assert_eq!(ev.channel_ids(), vec!["c9"]);
        let ev = parse(&event(
            "RecordingStarted",
            r#""recording":{"name":"r","format":"wav","target_uri":"bridge:b9","state":"recording"}"#,
        ));
        assert_eq!(ev.bridge_ids(), vec!["b9"]);
        assert!(ev.channel_ids().is_empty());

        let ev = parse(&event(
            "DeviceStateChanged",
            r#""device_state":{"name":"PJSIP/2001","state":"INUSE"}"#,
        ));
        assert!(ev.channel_ids().is_empty() && ev.bridge_ids().is_empty());
        let ev = parse(&event("ApplicationReplaced", ""));
        assert!(matches!(ev, AriEvent::ApplicationReplaced(_)));
    }

    #[test]
    fn missing_params_is_a_message_without_timestamp() {
        let ev = parse(r#"{"type":"MissingParams","params":["app"]}"#);
        let AriEvent::MissingParams(m) = &ev else {
            panic!("{ev:?}")
        };
        assert_eq!(m.params, vec!["app"]);
        assert_eq!(ev.timestamp(), None);
        assert_eq!(ev.application(), None);
    }

    #[test]
    fn typed_event_round_trips_and_exposes_time() {
        let text = event("ChannelStateChange", &format!(r#""channel":{}"#, channel("c")));
        let ev = parse(&text);
        assert_eq!(ev.asterisk_id(), Some("02:fc:00:00:00:01"));
        assert_eq!(ev.time().map(|t| t.millisecond()), Some(462));
        let back = serde_json::to_value(&ev).expect("ser");
        assert_eq!(back, serde_json::from_str::<Value>(&text).expect("json"));
        let again: AriEvent = serde_json::from_value(back).expect("serde Deserialize");
        assert_eq!(again, ev);
    }

    #[test]
    fn every_known_type_has_a_variant() {
        assert_eq!(KNOWN_EVENT_TYPES.len(), 46);
        for t in KNOWN_EVENT_TYPES {
            // A bare message of each type fails its model (fields missing) and
            // must come back as Unknown, not panic.
            let ev = parse(&format!(r#"{{"type":"{t}"}}"#));
            assert_eq!(ev.event_type(), *t);
        }
    }
}
