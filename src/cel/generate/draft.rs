//! The call log being built while the interpreters read a group's rows, and what caller and
//! callee rules share (voicemail, recordings, user events' extras).

use uuid::Uuid;

use crate::calllog::cdr::model::{CallLog, Recording, Role};
use crate::cel::record::Cel;

/// A channel taking part in the call, before its line is resolved (section 3.7).
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub uniqueid: String,
    /// `PJSIP/2001-0000000a`: BRIDGE_ENTER rows name their peers this way.
    pub channame: String,
    pub identity: Option<String>,
    pub role: Role,
    pub answered: bool,
}

/// A user named by a user event's extra rather than by a channel (missed call, destination).
#[derive(Debug, Clone)]
pub(crate) struct NamedUser {
    pub user_uuid: Uuid,
    pub role: Role,
    pub requested: bool,
    pub name: Option<String>,
}

/// A MIXMONITOR segment not yet stopped.
#[derive(Debug, Clone)]
pub(crate) struct OpenRecording {
    pub uuid: Uuid,
    pub start_us: i64,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub log: CallLog,
    pub start: Option<i64>,
    /// A user forward was seen (`*_USER_FWD`): the source stays who it was and an outcall does
    /// not make the call outbound.
    pub forwarded: bool,
    /// `*_CALL_LOG_DESTINATION` named the destination: channel caller ids no longer change it.
    pub authoritative_destination: bool,
    pub reached_voicemail: bool,
    /// `*_USER_BLOCKED_CALL`: the callee blocks the caller's number.
    pub blocked: bool,
    pub mailbox: Option<String>,
    /// Tenant named by an incall or missed-call extra.
    pub extra_tenant: Option<Uuid>,
    pub channels: Vec<Channel>,
    pub named_users: Vec<NamedUser>,
    pub open_recordings: Vec<OpenRecording>,
    pub recordings: Vec<Recording>,
    /// A callee entered a (non-holding) bridge already.
    pub callee_bridged: bool,
    /// The caller's CHAN_START carried no caller id: an AMI/ARI originate, whose channel only
    /// reaches the dialed extension when it enters the dialplan.
    pub originated: bool,
    /// The caller reached its routing application (Dial, Queue …).
    pub routed: bool,
    /// Endpoints a mobile push is waiting for (`Local/<endpoint>@wazo_wait_for_registration…;2`),
    /// lowercased: the endpoint's next PJSIP channel is the real callee.
    pub pending_mobile: Vec<String>,
    /// Extensions hidden on top of [`HIDDEN_EXTENSIONS`] (a meeting's technical extension).
    pub hidden: Vec<String>,
}

/// Dialplan extensions that say nothing to a user: a channel Asterisk creates (Dial, ARI or AMI
/// originate) starts at `s`, and upstream hides it rather than show "s" as the number called
/// (section 3.4, CHAN_END).
pub(crate) const HIDDEN_EXTENSIONS: [&str; 1] = ["s"];

/// A meeting's extension (`wazo-meeting-<uuid>`, `accent-meeting-<uuid>`): the meeting's name
/// is shown instead (`*_MEETING_NAME`).
pub(crate) fn is_meeting_extension(exten: &str) -> bool {
    ["wazo-meeting-", "accent-meeting-", "xivo-meeting-"]
        .iter()
        .any(|p| exten.starts_with(p))
}

/// The applications that route a call: the first of them on the caller gives the dialed
/// extension of an originated call.
const ROUTING_APPS: [&str; 10] = [
    "Dial",
    "Queue",
    "ConfBridge",
    "VoiceMail",
    "VoiceMailMain",
    "ParkedCall",
    "Park",
    "Stasis",
    "Playback",
    "Echo",
];

pub(crate) fn is_routing_app(app: &str) -> bool {
    ROUTING_APPS.iter().any(|a| a.eq_ignore_ascii_case(app))
}

/// Names are percent-encoded by some dialplans (`Jos%C3%A9`); undo it, keeping the text as is
/// when it is not valid encoding.
pub(crate) fn decode_name(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = bytes.get(i + 1..i + 3).and_then(hex_byte) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| raw.to_owned())
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(text, 16).ok()
}

/// Some(text) when not empty.
pub(crate) fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// True for a CEL of this name, as a system type Asterisk may not know (`MIXMONITOR_START` is
/// not one of ours) or as a user event of any spelling.
pub(crate) fn named(cel: &Cel, name: &str) -> bool {
    cel.eventtype.as_str() == name || cel.eventtype.is_user_event(name)
}

/// A bridge entered for hold music or parking-like waits (`holding_bridge`) is not an answer
/// (section 3.4, BRIDGE_ENTER).
pub(crate) fn is_holding_bridge(cel: &Cel) -> bool {
    cel.extra.contains("holding_bridge") && cel.extra().get("bridge_technology").as_deref() == Some("holding_bridge")
}

/// The recording's uuid is the file name's stem (`…/tenants/<tenant>/monitor/<uuid>.wav`).
fn recording_path(cel: &Cel) -> Option<String> {
    let extra = cel.extra();
    extra
        .get("filename")
        .or_else(|| extra.field("filename"))
        .or_else(|| cel.appdata.split(',').next().and_then(non_empty))
}

fn recording_uuid(path: &str) -> Option<Uuid> {
    let file = path.rsplit('/').next()?;
    let stem = file.split('.').next()?;
    Uuid::parse_str(stem).ok()
}

impl Draft {
    /// True for an extension the log must not show ([`HIDDEN_EXTENSIONS`] and the call's own).
    pub fn is_hidden(&self, exten: &str) -> bool {
        HIDDEN_EXTENSIONS.contains(&exten) || self.hidden.iter().any(|h| h == exten)
    }

    /// `Some(exten)` when it is not empty and may be shown.
    pub fn shown(&self, exten: &str) -> Option<String> {
        non_empty(exten).filter(|e| !self.is_hidden(e))
    }

    /// The caller's CHAN_END removes hidden extensions from what the log shows.
    pub fn hide_extensions(&mut self) {
        let hide = |d: &Draft, v: Option<String>| v.filter(|e| !d.is_hidden(e));
        if self.is_hidden(&self.log.source_exten) {
            self.log.source_exten.clear();
        }
        let requested = self.log.requested_exten.take();
        self.log.requested_exten = hide(self, requested);
        let destination = self.log.destination_exten.take();
        self.log.destination_exten = hide(self, destination);
        let internal = self.log.requested_internal_exten.take();
        self.log.requested_internal_exten = hide(self, internal);
    }

    pub fn channel_mut(&mut self, uniqueid: &str) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.uniqueid == uniqueid)
    }

    pub fn add_channel(&mut self, cel: &Cel, role: Role) {
        if self.channel_mut(&cel.uniqueid).is_none() {
            self.channels.push(Channel {
                uniqueid: cel.uniqueid.clone(),
                channame: cel.channame.clone(),
                identity: super::lines::identity(&cel.channame),
                role,
                answered: false,
            });
        }
    }

    /// APP_START `VoiceMail`: the call reached a mailbox (`1000@default,u` → `1000@default`).
    pub fn app_start_voicemail(&mut self, cel: &Cel) {
        if cel.appname.eq_ignore_ascii_case("VoiceMail") {
            self.reached_voicemail = true;
            self.mailbox = cel.appdata.split([',', '&']).next().and_then(non_empty);
        }
    }

    /// MIXMONITOR_START/STOP rows open and close recording segments; returns whether `cel`
    /// was one of them.
    pub fn recording_event(&mut self, cel: &Cel) -> bool {
        if named(cel, "MIXMONITOR_START") {
            let path = recording_path(cel);
            if let Some(uuid) = path.as_deref().and_then(recording_uuid) {
                self.open_recordings.push(OpenRecording {
                    uuid,
                    start_us: cel.eventtime.micros(),
                    path,
                });
            }
            return true;
        }
        if named(cel, "MIXMONITOR_STOP") {
            let uuid = recording_path(cel).as_deref().and_then(recording_uuid);
            let pos = match uuid {
                Some(u) => self.open_recordings.iter().position(|r| r.uuid == u),
                None => self.open_recordings.len().checked_sub(1),
            };
            if let Some(pos) = pos {
                let open = self.open_recordings.remove(pos);
                self.close(open, cel.eventtime.micros());
            }
            return true;
        }
        false
    }

    /// CHAN_END closes what is still recording.
    pub fn close_recordings(&mut self, at: i64) {
        for open in std::mem::take(&mut self.open_recordings) {
            self.close(open, at);
        }
    }

    fn close(&mut self, open: OpenRecording, end_us: i64) {
        self.recordings.push(Recording {
            uuid: open.uuid,
            start_us: open.start_us,
            end_us,
            path: open.path,
            deleted: false,
        });
    }

    /// Adds (once) a user named by an extra.
    pub fn name_user(&mut self, user: NamedUser) {
        match self.named_users.iter_mut().find(|u| u.user_uuid == user.user_uuid) {
            Some(known) => {
                known.requested |= user.requested;
                if known.name.is_none() {
                    known.name = user.name;
                }
            }
            None => self.named_users.push(user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded() {
        assert_eq!(decode_name("Jos%C3%A9%20Garc%C3%ADa"), "José García");
        assert_eq!(decode_name("100%"), "100%");
        assert_eq!(decode_name("%zz%4"), "%zz%4");
        assert_eq!(decode_name("%FF"), "%FF");
        assert_eq!(decode_name("Alice"), "Alice");
    }

    #[test]
    fn recording_uuid_from_path() {
        assert_eq!(
            recording_uuid("/var/lib/wazo/sounds/tenants/t/monitor/6f3b0c2e-1d2a-4c5b-8e9f-0a1b2c3d4e5f.wav"),
            Uuid::parse_str("6f3b0c2e-1d2a-4c5b-8e9f-0a1b2c3d4e5f").ok()
        );
        assert_eq!(recording_uuid("/tmp/x.wav"), None);
    }

    #[test]
    fn routing_apps() {
        assert!(is_routing_app("Dial") && is_routing_app("queue"));
        assert!(!is_routing_app("CELGenUserEvent"));
    }
}
