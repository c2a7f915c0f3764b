//! The presence object, the update body, the list query, and the pure mappings from the live
//! Asterisk state to line states (chatd.md §2): device state → endpoint state, channel state
//! (and hold) → channel activity, a line's state, the user's merged `line_state`.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::control::model::{ChannelState, DeviceStateValue};
use crate::control::LiveState;

/// What a user says of themself (`state`); `unavailable` until they say otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Available,
    Away,
    #[default]
    Unavailable,
    Invisible,
}

impl PresenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceState::Available => "available",
            PresenceState::Away => "away",
            PresenceState::Unavailable => "unavailable",
            PresenceState::Invisible => "invisible",
        }
    }

    /// A stored value; the table's CHECK allows only the four, anything else is read as the
    /// default rather than failing every read of the user.
    pub fn parse(text: &str) -> PresenceState {
        match text {
            "available" => PresenceState::Available,
            "away" => PresenceState::Away,
            "invisible" => PresenceState::Invisible,
            _ => PresenceState::Unavailable,
        }
    }
}

/// The state of a line, and of the user's lines merged (`line_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    Available,
    Holding,
    Ringing,
    Progressing,
    Talking,
    Unavailable,
}

/// What one channel of a line is doing (chatd's channel state; `Undefined` channels do not
/// count, the line then shows its device's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelActivity {
    Ringing,
    Progressing,
    Holding,
    Talking,
    Undefined,
}

/// Asterisk device state → endpoint state: a device says only whether the phone is
/// reachable; what it is doing comes from its channels.
pub fn endpoint_state(state: &DeviceStateValue) -> LineState {
    match state {
        DeviceStateValue::NotInuse
        | DeviceStateValue::Inuse
        | DeviceStateValue::Ringing
        | DeviceStateValue::Onhold
        | DeviceStateValue::Ringinuse => LineState::Available,
        DeviceStateValue::Unavailable
        | DeviceStateValue::Unknown
        | DeviceStateValue::Busy
        | DeviceStateValue::Invalid
        | DeviceStateValue::Other(_) => LineState::Unavailable,
    }
}

/// Channel state (+ hold, reported on the holding party's channel) → channel activity.
/// `Ring` is our phone calling out, `Ringing` a call coming in.
pub fn channel_activity(state: &ChannelState, on_hold: bool) -> ChannelActivity {
    if on_hold {
        return ChannelActivity::Holding;
    }
    match state {
        ChannelState::Ring => ChannelActivity::Progressing,
        ChannelState::Ringing => ChannelActivity::Ringing,
        ChannelState::Up | ChannelState::Busy => ChannelActivity::Talking,
        ChannelState::Down
        | ChannelState::Rsrved
        | ChannelState::OffHook
        | ChannelState::Dialing
        | ChannelState::DialingOffhook
        | ChannelState::PreRing
        | ChannelState::Unknown
        | ChannelState::Other(_) => ChannelActivity::Undefined,
    }
}

/// One line: the most pressing activity of its channels, else its device's state, else
/// `unavailable` (a device Asterisk never reported).
pub fn line_state<'a>(
    channels: impl IntoIterator<Item = &'a ChannelActivity>,
    device: Option<&DeviceStateValue>,
) -> LineState {
    let seen: HashSet<ChannelActivity> = channels.into_iter().copied().collect();
    for (activity, state) in [
        (ChannelActivity::Ringing, LineState::Ringing),
        (ChannelActivity::Progressing, LineState::Progressing),
        (ChannelActivity::Holding, LineState::Holding),
        (ChannelActivity::Talking, LineState::Talking),
    ] {
        if seen.contains(&activity) {
            return state;
        }
    }
    device.map(endpoint_state).unwrap_or(LineState::Unavailable)
}

/// The user's `line_state`: the first of ringing > progressing > holding > talking >
/// available found among its lines, else `unavailable` (no line, or none reachable).
pub fn merged_line_state(lines: &[LineState]) -> LineState {
    [
        LineState::Ringing,
        LineState::Progressing,
        LineState::Holding,
        LineState::Talking,
        LineState::Available,
    ]
    .into_iter()
    .find(|s| lines.contains(s))
    .unwrap_or(LineState::Unavailable)
}

/// A line of a user as confd has it: its id and the device its channels belong to
/// (`PJSIP/<name>`, `SCCP/<name>`), `None` for endpoints Asterisk has no device state for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLine {
    pub id: i64,
    pub device: Option<String>,
}

/// Everything stored or derived from the store about a user's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub state: PresenceState,
    pub status: Option<String>,
    pub last_activity_us: Option<i64>,
    /// At least one auth session.
    pub connected: bool,
    /// A mobile session or refresh token.
    pub mobile: bool,
    pub do_not_disturb: bool,
    /// The user's lines in confd's order (main line first).
    pub lines: Vec<UserLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinePresence {
    pub id: i64,
    pub state: LineState,
}

/// Upstream's presence object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Presence {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub state: PresenceState,
    pub status: Option<String>,
    pub last_activity: Option<String>,
    pub connected: bool,
    pub mobile: bool,
    pub do_not_disturb: bool,
    pub line_state: LineState,
    pub lines: Vec<LinePresence>,
}

/// What the live state says of each device: the activities of its channels and its device
/// state. Built from [`LiveState`] for a read, or kept up to date from the change stream by
/// the event task.
#[derive(Debug, Default, Clone)]
pub struct LiveIndex {
    devices: HashMap<String, DeviceLive>,
    /// Channel id → its device, to move or drop a channel whatever its new snapshot says.
    channel_device: HashMap<String, String>,
}

#[derive(Debug, Default, Clone)]
struct DeviceLive {
    channels: HashMap<String, ChannelActivity>,
    state: Option<DeviceStateValue>,
}

impl LiveIndex {
    /// The devices in `only` (every device when `None`) as the live state has them now.
    pub fn from_live(live: &LiveState, only: Option<&HashSet<String>>) -> LiveIndex {
        let wanted = |d: &str| only.is_none_or(|set| set.contains(d));
        let mut index = LiveIndex::default();
        for ch in live.channels_shared() {
            if wanted(&ch.endpoint) {
                index.channel(&ch.id, &ch.endpoint, channel_activity(&ch.state, ch.on_hold));
            }
        }
        for ds in live.device_states() {
            if wanted(&ds.device) {
                index.device(&ds.device, Some(ds.state));
            }
        }
        index
    }

    /// A channel appeared or changed; the devices whose state may have changed.
    pub fn channel(&mut self, id: &str, device: &str, activity: ChannelActivity) -> Vec<String> {
        let mut touched = Vec::with_capacity(2);
        if let Some(old) = self.channel_device.get(id).filter(|d| d.as_str() != device).cloned() {
            touched.extend(self.channel_gone(id));
            debug_assert!(touched.contains(&old));
        }
        self.channel_device.insert(id.to_string(), device.to_string());
        self.devices
            .entry(device.to_string())
            .or_default()
            .channels
            .insert(id.to_string(), activity);
        touched.push(device.to_string());
        touched
    }

    /// A channel is gone; the device it belonged to.
    pub fn channel_gone(&mut self, id: &str) -> Option<String> {
        let device = self.channel_device.remove(id)?;
        if let Some(d) = self.devices.get_mut(&device) {
            d.channels.remove(id);
            if d.channels.is_empty() && d.state.is_none() {
                self.devices.remove(&device);
            }
        }
        Some(device)
    }

    /// A device's state changed (`None`: no longer reported).
    pub fn device(&mut self, device: &str, state: Option<DeviceStateValue>) {
        match state {
            Some(s) => self.devices.entry(device.to_string()).or_default().state = Some(s),
            None => {
                if let Some(d) = self.devices.get_mut(device) {
                    d.state = None;
                    if d.channels.is_empty() {
                        self.devices.remove(device);
                    }
                }
            }
        }
    }

    /// The state of a line whose channels belong to `device`.
    pub fn line(&self, device: Option<&str>) -> LineState {
        match device.and_then(|d| self.devices.get(d)) {
            Some(d) => line_state(d.channels.values(), d.state.as_ref()),
            None => LineState::Unavailable,
        }
    }
}

impl UserInfo {
    /// The presence object of this user given the live state.
    pub fn presence(&self, live: &LiveIndex) -> Presence {
        let lines: Vec<LinePresence> = self
            .lines
            .iter()
            .map(|l| LinePresence {
                id: l.id,
                state: live.line(l.device.as_deref()),
            })
            .collect();
        let states: Vec<LineState> = lines.iter().map(|l| l.state).collect();
        Presence {
            uuid: self.uuid,
            tenant_uuid: self.tenant_uuid,
            state: self.state,
            status: self.status.clone(),
            last_activity: self.last_activity_us.map(crate::chat::time::created_at),
            connected: self.connected,
            mobile: self.mobile,
            do_not_disturb: self.do_not_disturb,
            line_state: merged_line_state(&states),
            lines,
        }
    }

    /// The devices of the user's lines.
    pub fn devices(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| l.device.as_deref())
    }
}

/// `PUT /users/{uuid}/presences`. `status` may be omitted (kept) or null (cleared).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    pub state: PresenceState,
    #[serde(default, deserialize_with = "present")]
    pub status: Option<Option<String>>,
}

/// Tells an absent `status` (outer `None`) from a null one (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `GET /users/presences`: `recurse` and the `user_uuid=a,b` filter (deduplicated, in order);
/// other keys are ignored as upstream does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub recurse: bool,
    pub users: Vec<Uuid>,
}

impl ListQuery {
    pub fn parse(query: &str) -> Result<ListQuery, ApiError> {
        let pairs: Vec<(String, String)> = crate::api::body::parse_query(query)?;
        let mut q = ListQuery::default();
        for (key, value) in pairs {
            match key.as_str() {
                "recurse" => q.recurse = crate::api::list::bool_param("recurse", &value)?,
                "user_uuid" => {
                    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let uuid = Uuid::parse_str(part)
                            .map_err(|_| ApiError::invalid_field("user_uuid", "Not a valid UUID."))?;
                        if !q.users.contains(&uuid) {
                            q.users.push(uuid);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_states_say_reachable_or_not() {
        for s in ["NOT_INUSE", "INUSE", "RINGING", "ONHOLD", "RINGINUSE"] {
            assert_eq!(endpoint_state(&DeviceStateValue::from(s)), LineState::Available, "{s}");
        }
        for s in ["UNAVAILABLE", "UNKNOWN", "BUSY", "INVALID", "SOMETHING_NEW"] {
            assert_eq!(
                endpoint_state(&DeviceStateValue::from(s)),
                LineState::Unavailable,
                "{s}"
            );
        }
    }

    #[test]
    fn channel_states_and_hold() {
        let cases = [
            ("Ring", ChannelActivity::Progressing),
            ("Ringing", ChannelActivity::Ringing),
            ("Up", ChannelActivity::Talking),
            ("Busy", ChannelActivity::Talking),
            ("Down", ChannelActivity::Undefined),
            ("Rsrved", ChannelActivity::Undefined),
            ("Rsrvd", ChannelActivity::Undefined),
            ("OffHook", ChannelActivity::Undefined),
            ("Dialing", ChannelActivity::Undefined),
            ("Dialing Offhook", ChannelActivity::Undefined),
            ("Pre-ring", ChannelActivity::Undefined),
            ("Unknown", ChannelActivity::Undefined),
        ];
        for (state, activity) in cases {
            assert_eq!(channel_activity(&ChannelState::from(state), false), activity, "{state}");
        }
        assert_eq!(channel_activity(&ChannelState::Up, true), ChannelActivity::Holding);
    }

    #[test]
    fn a_line_shows_its_busiest_channel_else_its_device() {
        use ChannelActivity::*;
        let ns = DeviceStateValue::NotInuse;
        assert_eq!(line_state(&[Talking, Ringing], Some(&ns)), LineState::Ringing);
        assert_eq!(line_state(&[Talking, Progressing], Some(&ns)), LineState::Progressing);
        assert_eq!(line_state(&[Talking, Holding], Some(&ns)), LineState::Holding);
        assert_eq!(line_state(&[Undefined, Talking], Some(&ns)), LineState::Talking);
        assert_eq!(line_state(&[Undefined], Some(&ns)), LineState::Available);
        assert_eq!(
            line_state(&[], Some(&DeviceStateValue::Unavailable)),
            LineState::Unavailable
        );
        assert_eq!(line_state(&[Undefined], None), LineState::Unavailable);
    }

    #[test]
    fn merged_line_state_priority() {
        use LineState::*;
        let order = [Ringing, Progressing, Holding, Talking, Available, Unavailable];
        for (i, winner) in order.iter().enumerate() {
            // The winner beats everything after it, whatever the order of the lines.
            let mut lines: Vec<LineState> = order[i..].to_vec();
            lines.reverse();
            assert_eq!(merged_line_state(&lines), *winner);
        }
        assert_eq!(merged_line_state(&[]), Unavailable);
    }

    #[test]
    fn index_follows_channels_and_devices() {
        let mut idx = LiveIndex::default();
        let dev = "PJSIP/2001";
        assert_eq!(idx.line(Some(dev)), LineState::Unavailable);
        idx.device(dev, Some(DeviceStateValue::NotInuse));
        assert_eq!(idx.line(Some(dev)), LineState::Available);
        assert_eq!(
            idx.channel("c1", dev, ChannelActivity::Progressing),
            vec![dev.to_string()]
        );
        assert_eq!(idx.line(Some(dev)), LineState::Progressing);
        // The same channel now on another device: both devices are touched.
        let moved = idx.channel("c1", "PJSIP/2002", ChannelActivity::Talking);
        assert_eq!(moved, vec![dev.to_string(), "PJSIP/2002".to_string()]);
        assert_eq!(idx.line(Some(dev)), LineState::Available);
        assert_eq!(idx.line(Some("PJSIP/2002")), LineState::Talking);
        assert_eq!(idx.channel_gone("c1").as_deref(), Some("PJSIP/2002"));
        assert_eq!(idx.line(Some("PJSIP/2002")), LineState::Unavailable);
        idx.device(dev, None);
        assert_eq!(idx.line(Some(dev)), LineState::Unavailable);
        assert_eq!(idx.line(None), LineState::Unavailable);
    }

    #[test]
    fn body_and_query() {
        let b: PresenceBody = serde_json::from_str(r#"{"state": "away"}"#).expect("body");
        assert_eq!((b.state, b.status), (PresenceState::Away, None));
        let b: PresenceBody = serde_json::from_str(r#"{"state": "away", "status": null}"#).expect("null");
        assert_eq!(b.status, Some(None));
        assert!(serde_json::from_str::<PresenceBody>(r#"{"state": "busy"}"#).is_err());
        assert!(serde_json::from_str::<PresenceBody>(r#"{"state": "away", "x": 1}"#).is_err());
        assert!(serde_json::from_str::<PresenceBody>(r#"{"status": "x"}"#).is_err());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let q = ListQuery::parse(&format!("user_uuid={a},{b},{a}&recurse=true&other=1")).expect("query");
        assert_eq!(
            q,
            ListQuery {
                recurse: true,
                users: vec![a, b]
            }
        );
        assert!(ListQuery::parse("user_uuid=nope").is_err());
        assert!(ListQuery::parse("recurse=maybe").is_err());
    }
}
