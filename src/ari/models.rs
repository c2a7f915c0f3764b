//! Typed models of the ARI REST resources, as defined by the ARI spec of
//! Asterisk 22.10.1 (`channels.json`, `bridges.json`, `asterisk.json`, …).
//!
//! Rules followed by every model here, and why:
//! - The JSON field names are exactly the spec's, so a model re-serializes to
//!   what Asterisk sent (the fake Asterisk replays them, and the tests compare
//!   the round trip to the recordings).
//! - A field the spec marks required is a plain field; an optional one is an
//!   `Option` that is left out again when serializing (`None` is "absent", not
//!   `null`), so the round trip is exact.
//! - Unknown extra fields are accepted and ignored (no `deny_unknown_fields`):
//!   each Asterisk release adds fields, and a newer one must not break us.
//! - Strings with a closed list of values in the spec (channel state, device
//!   state, …) are enums with an `Other(String)` fallback, for the same reason.
//! - `int`/`long` are `i64` (Asterisk writes some `int` fields, such as RTP
//!   SSRCs, as unsigned 32-bit values that overflow an `i32`), `double` is `f64`.
//! - Spec `Date` values stay `String`: Asterisk's format
//!   (`2026-11-28T12:59:31.184+0000`) is not RFC 3339. [`parse_ari_timestamp`]
//!   turns one into an [`OffsetDateTime`] when a consumer needs arithmetic.
//! - Spec `object` values are kept as JSON maps: their values are not typed by
//!   the spec, and a non-string value must not make the whole model fail.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// Asterisk's `ast_json_timeval` format: `%FT%T.%q%z`, i.e. milliseconds and
/// an offset without a colon. The fraction is read with any number of digits
/// and may be absent, so a change of precision does not break parsing.
const ARI_TIMESTAMP: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]][offset_hour sign:mandatory][offset_minute]"
);

/// Parses an ARI `Date` (`2026-11-28T12:59:31.184+0000`), falling back to
/// RFC 3339 (`…+00:00` or `…Z`) in case a later Asterisk switches to it.
pub fn parse_ari_timestamp(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    match OffsetDateTime::parse(text, ARI_TIMESTAMP) {
        Ok(t) => Ok(t),
        Err(first) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| first),
    }
}

/// Declares a string enum with the spec's values plus `Other(String)`, which
/// (de)serializes as the bare string. The fallback keeps an unexpected value
/// (a newer Asterisk) instead of failing the whole model.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value the spec of Asterisk 22.10.1 does not list, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as Asterisk writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " string"))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::from(v))
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}
pub(crate) use string_enum;

// ---------------------------------------------------------------- channels

string_enum! {
    /// `Channel.state`: the channel's `ast_state`, as text.
    pub enum ChannelState {
        Down => "Down",
        Rsrved => "Rsrved",
        OffHook => "OffHook",
        Dialing => "Dialing",
        Ring => "Ring",
        Ringing => "Ringing",
        Up => "Up",
        Busy => "Busy",
        DialingOffhook => "Dialing Offhook",
        PreRing => "Pre-ring",
        Unknown => "Unknown",
    }
}

/// Caller identification (`CallerID` in the spec).
#[doc(alias = "CallerID")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerId {
    pub name: String,
    pub number: String,
}

/// Dialplan location: context/extension/priority and the application running
/// there (`DialplanCEP` in the spec).
#[doc(alias = "DialplanCEP")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialplanCep {
    pub context: String,
    pub exten: String,
    pub priority: i64,
    /// Name of the current dialplan application.
    pub app_name: String,
    /// Parameter of the current dialplan application.
    pub app_data: String,
}

/// A channel: the snapshot Asterisk embeds in nearly every event and returns
/// from `GET /channels` and `GET /channels/{channelId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Unique id (the uniqueid, or the `channelId` given at originate).
    pub id: String,
    /// The protocol's own call id: the SIP Call-ID for PJSIP, empty for Local.
    pub protocol_id: String,
    /// Channel name, e.g. `PJSIP/2001-00000006`.
    pub name: String,
    pub state: ChannelState,
    pub caller: CallerId,
    pub connected: CallerId,
    pub accountcode: String,
    pub dialplan: DialplanCep,
    /// Spec `Date`; see [`parse_ari_timestamp`].
    pub creationtime: String,
    /// Default language of the channel.
    pub language: String,
    /// Variables asked for with `ari.conf` `channelvars`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channelvars: Option<Map<String, Value>>,
    /// The Caller ID RDNIS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_rdnis: Option<String>,
    /// The tenant id of the channel (`CHANNEL(tenantid)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenantid: Option<String>,
}

impl Channel {
    /// The creation time, parsed; `None` if Asterisk sent an unreadable date.
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        parse_ari_timestamp(&self.creationtime).ok()
    }

    /// A variable from `channelvars`, when it is a string.
    pub fn channel_var(&self, name: &str) -> Option<&str> {
        self.channelvars.as_ref()?.get(name)?.as_str()
    }
}

/// `Dialed`: an empty model in the spec (a placeholder for a dialed channel).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialed {}

/// RTP statistics of a channel (`GET /channels/{id}/rtp_statistics`; `RTPstat`
/// in the spec).
#[doc(alias = "RTPstat")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtpStat {
    pub txcount: i64,
    pub rxcount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rxjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_maxjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_minjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_normdevjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_stdevjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_maxjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_minjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_normdevjitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_stdevjitter: Option<f64>,
    pub txploss: i64,
    pub rxploss: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_maxrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_minrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_normdevrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_stdevrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_maxrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_minrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_normdevrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_stdevrxploss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxrtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minrtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normdevrtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdevrtt: Option<f64>,
    pub local_ssrc: i64,
    pub remote_ssrc: i64,
    pub txoctetcount: i64,
    pub rxoctetcount: i64,
    pub channel_uniqueid: String,
}

// ----------------------------------------------------------------- bridges

string_enum! {
    /// `Bridge.bridge_type`.
    pub enum BridgeType {
        Mixing => "mixing",
        Holding => "holding",
    }
}

/// A bridge: Asterisk's own (basic bridges of `Dial`, ConfBridge) or one made
/// through ARI (`bridge_class` `stasis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bridge {
    pub id: String,
    /// Bridging technology, e.g. `simple_bridge`, `native_rtp`, `softmix`.
    /// It changes during the bridge's life (simple_bridge → native_rtp).
    pub technology: String,
    pub bridge_type: BridgeType,
    /// `basic` (Dial), `stasis` (ARI), `base` (ConfBridge), …
    pub bridge_class: String,
    /// Entity that created the bridge (`Stasis`, `ConfBridge`, or empty).
    pub creator: String,
    pub name: String,
    /// Ids of the channels in the bridge.
    pub channels: Vec<String>,
    /// `none`, `talker`, `sfu` or `single`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_mode: Option<String>,
    /// Channel id of the video source in `single` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_source_id: Option<String>,
    /// Spec `Date`; see [`parse_ari_timestamp`].
    pub creationtime: String,
    /// Variables set on the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridgevars: Option<Map<String, Value>>,
}

impl Bridge {
    /// The creation time, parsed; `None` if Asterisk sent an unreadable date.
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        parse_ari_timestamp(&self.creationtime).ok()
    }
}

// ----------------------------------------------------- endpoints, devices

string_enum! {
    /// `Endpoint.state`.
    pub enum EndpointState {
        Unknown => "unknown",
        Offline => "offline",
        Online => "online",
    }
}

/// An endpoint (`PJSIP/2001`). Its `state` is optional in the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub technology: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<EndpointState>,
    /// Ids of the endpoint's channels.
    pub channel_ids: Vec<String>,
}

/// A text message (SIP MESSAGE) to or from an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextMessage {
    pub from: String,
    pub to: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Map<String, Value>>,
}

string_enum! {
    /// `DeviceState.state`: Asterisk's device states.
    pub enum DeviceStateValue {
        Unknown => "UNKNOWN",
        NotInuse => "NOT_INUSE",
        Inuse => "INUSE",
        Busy => "BUSY",
        Invalid => "INVALID",
        Unavailable => "UNAVAILABLE",
        Ringing => "RINGING",
        Ringinuse => "RINGINUSE",
        Onhold => "ONHOLD",
    }
}

/// A device and its state (`PJSIP/2001` → `INUSE`). `GET /deviceStates` only
/// lists ARI-controlled `Stasis:` devices; PJSIP ones arrive as events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    pub name: String,
    pub state: DeviceStateValue,
}

/// A voicemail box. `res_ari_mailboxes` is not built in the recorded
/// Asterisk, so `/mailboxes` answers 404 there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: String,
    pub old_messages: i64,
    pub new_messages: i64,
}

// ------------------------------------------------------- media resources

string_enum! {
    /// `Playback.state`.
    pub enum PlaybackState {
        Queued => "queued",
        Playing => "playing",
        Continuing => "continuing",
        Done => "done",
        Failed => "failed",
    }
}

/// A media playback on a channel or bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playback {
    pub id: String,
    /// The URI being played, e.g. `sound:hello-world`.
    pub media_uri: String,
    /// The next URI of a list, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_media_uri: Option<String>,
    /// `channel:<id>` or `bridge:<id>`.
    pub target_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub state: PlaybackState,
}

string_enum! {
    /// `LiveRecording.state`.
    pub enum RecordingState {
        Queued => "queued",
        Recording => "recording",
        Paused => "paused",
        Done => "done",
        Failed => "failed",
        Canceled => "canceled",
    }
}

/// A recording in progress on a channel or bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecording {
    pub name: String,
    pub format: String,
    /// `channel:<id>` or `bridge:<id>`.
    pub target_uri: String,
    pub state: RecordingState,
    /// Seconds of audio recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Seconds of talking, when silence detection is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talking_duration: Option<i64>,
    /// Seconds of silence, when silence detection is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_duration: Option<i64>,
    /// Why the recording failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A finished recording on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecording {
    pub name: String,
    pub format: String,
}

/// One language/format pair of a sound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatLangPair {
    pub language: String,
    pub format: String,
}

/// A sound file known to Asterisk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sound {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub formats: Vec<FormatLangPair>,
}

// ------------------------------------------------------------ applications

/// A Stasis application and its subscriptions. With `subscribeAll` the id
/// lists hold Asterisk's catch-all topics (`__AST_CHANNEL_ALL_TOPIC`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub name: String,
    pub channel_ids: Vec<String>,
    pub bridge_ids: Vec<String>,
    pub endpoint_ids: Vec<String>,
    pub device_names: Vec<String>,
    /// Event filters; objects such as `{"type": "ChannelCreated"}`.
    pub events_allowed: Vec<Value>,
    pub events_disallowed: Vec<Value>,
}

// ---------------------------------------------------------------- asterisk

/// `AsteriskInfo.build`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub os: String,
    pub kernel: String,
    /// Compile-time options (`menuselect` flags).
    pub options: String,
    pub machine: String,
    pub date: String,
    pub user: String,
}

/// `AsteriskInfo.system`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// e.g. `22.10.1`.
    pub version: String,
    /// The `asterisk_id` of the events (a MAC address by default).
    pub entity_id: String,
}

/// `ConfigInfo.setid`: the user/group Asterisk runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetId {
    pub user: String,
    pub group: String,
}

/// `AsteriskInfo.config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigInfo {
    /// `systemname` (empty when not set).
    pub name: String,
    pub default_language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_load: Option<f64>,
    pub setid: SetId,
}

/// `AsteriskInfo.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Spec `Date`; see [`parse_ari_timestamp`].
    pub startup_time: String,
    /// Spec `Date`; see [`parse_ari_timestamp`].
    pub last_reload_time: String,
}

/// `GET /asterisk/info`. Every part is optional: the `only` query parameter
/// selects which ones Asterisk returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsteriskInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusInfo>,
}

/// `GET /asterisk/ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsteriskPing {
    pub asterisk_id: String,
    /// Always `pong`.
    pub ping: String,
    pub timestamp: String,
}

/// A loaded module (`GET /asterisk/modules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    pub name: String,
    pub description: String,
    pub use_count: i64,
    pub status: String,
    pub support_level: String,
}

/// A logger channel (`GET /asterisk/logging`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChannel {
    pub channel: String,
    #[serde(rename = "type")]
    pub log_type: String,
    pub status: String,
    pub configuration: String,
}

/// The value of a global, channel or bridge variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub value: String,
}

/// Several variables at once (`GET /channels/{id}/variables`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variables {
    pub variables: Map<String, Value>,
}

/// One attribute of a dynamic configuration object (sorcery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigTuple {
    pub attribute: String,
    pub value: String,
}

/// The body of an ARI error response (`{"message": "Resource not found"}`).
/// Not a model of the spec, but what every recorded 4xx carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_asterisk_timestamp_with_millis_and_compact_offset() {
        let t = parse_ari_timestamp("2026-11-28T12:59:31.184+0000").expect("parse");
        assert_eq!(t.unix_timestamp(), 1_795_870_771);
        assert_eq!(t.millisecond(), 184);
        assert_eq!(t.offset().whole_seconds(), 0);
    }

    #[test]
    fn parses_non_utc_offsets_and_other_precisions() {
        let t = parse_ari_timestamp("2026-11-28T14:59:31.184+0200").expect("parse");
        assert_eq!(t.unix_timestamp(), 1_795_870_771);
        assert_eq!(t.offset().whole_hours(), 2);
        let t = parse_ari_timestamp("2026-11-28T12:59:31+0000").expect("no fraction");
        assert_eq!(t.millisecond(), 0);
        let t = parse_ari_timestamp("2026-11-28T12:59:31.184123-0130").expect("micros");
        assert_eq!(t.microsecond(), 184_123);
    }

    #[test]
    fn falls_back_to_rfc3339_and_rejects_garbage() {
        let t = parse_ari_timestamp("2026-11-28T12:59:31.184Z").expect("rfc3339");
        assert_eq!(t.unix_timestamp(), 1_795_870_771);
        assert!(parse_ari_timestamp("yesterday").is_err());
        assert!(parse_ari_timestamp("").is_err());
        assert!(parse_ari_timestamp("2026-11-28 12:59:31").is_err());
    }

    #[test]
    fn string_enum_keeps_unknown_values() {
        let s: ChannelState = serde_json::from_str("\"Pre-ring\"").expect("known");
        assert_eq!(s, ChannelState::PreRing);
        let s: ChannelState = serde_json::from_str("\"Teleporting\"").expect("unknown");
        assert_eq!(s, ChannelState::Other("Teleporting".into()));
        assert_eq!(serde_json::to_string(&s).expect("ser"), "\"Teleporting\"");
        assert_eq!(DeviceStateValue::NotInuse.to_string(), "NOT_INUSE");
        assert!(serde_json::from_str::<ChannelState>("3").is_err());
    }

    #[test]
    fn channel_tolerates_extra_fields_and_keeps_optional_ones_absent() {
        let text = r#"{"id":"1.2","protocol_id":"","name":"Local/1@x-1;1","state":"Up",
            "caller":{"name":"A","number":"1"},"connected":{"name":"","number":""},"accountcode":"",
            "dialplan":{"context":"c","exten":"s","priority":1,"app_name":"","app_data":""},
            "creationtime":"2026-11-28T12:59:31.184+0000","language":"en","future_field":{"x":1}}"#;
        let ch: Channel = serde_json::from_str(text).expect("channel");
        assert_eq!(ch.channelvars, None);
        assert!(ch.created_at().is_some());
        let back = serde_json::to_value(&ch).expect("ser");
        assert!(back.get("channelvars").is_none());
        assert!(back.get("tenantid").is_none());
        assert!(back.get("future_field").is_none());
    }

    #[test]
    fn asterisk_info_parts_are_optional() {
        let info: AsteriskInfo =
            serde_json::from_str(r#"{"system":{"version":"22.10.1","entity_id":"02:fc:00:00:00:01"}}"#).expect("info");
        assert_eq!(info.system.map(|s| s.version).as_deref(), Some("22.10.1"));
        assert!(info.build.is_none() && info.config.is_none() && info.status.is_none());
    }
}
