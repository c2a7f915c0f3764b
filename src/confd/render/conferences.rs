//! Conference rooms in the rendered configuration: per conference a
//! ConfBridge bridge profile, a user profile and an admin profile
//! (`confbridge.conf`), and its extension running `ConfBridge` (extensions.conf).
//!
//! PINs: the user profile carries `pin` so ConfBridge itself asks for it.
//! When the room has an admin PIN the dialplan asks once for a PIN: the
//! admin PIN gives the admin profile (which has no `pin` line, the dialplan
//! already checked it); anything else gives the user profile, whose own PIN
//! (if any) ConfBridge then asks for. PINs only ever reach the rendered files
//! (mode 0640), never a log or an event.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use super::model::{pairs, rows, DialExtension, Model, ModelError, Opt};
use super::routing::arg;
use crate::confd::conferences::{self, Conference};
use crate::confd::extensions;

/// The ConfBridge menus the rendered template defines.
const USER_MENU: &str = "accent-default-user-menu";
const ADMIN_MENU: &str = "accent-default-admin-menu";

/// One conference's profiles in `confbridge.conf`.
#[derive(Debug, Clone, Serialize)]
pub struct ConferenceProfiles {
    pub id: i64,
    pub bridge: Vec<Opt>,
    pub user: Vec<Opt>,
    pub admin: Vec<Opt>,
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `accent-conference-<id>`: the ConfBridge name calld maps back to the id.
pub fn bridge_name(id: i64) -> String {
    format!("accent-conference-{id}")
}

/// The options both user profiles share.
fn participant_options(c: &Conference) -> Vec<Opt> {
    let mut out = vec![
        Opt::new("quiet", yes_no(c.quiet_join_leave)),
        Opt::new("announce_join_leave", yes_no(c.announce_join_leave)),
        Opt::new("announce_user_count", yes_no(c.announce_user_count)),
        Opt::new("announce_only_user", yes_no(c.announce_only_user)),
        Opt::new("dsp_drop_silence", "yes"),
    ];
    if let Some(moh) = c.music_on_hold.as_deref().filter(|m| !m.is_empty()) {
        out.push(Opt::new("music_on_hold_when_empty", "yes"));
        out.push(Opt::new("music_on_hold_class", moh));
    }
    out
}

/// The profiles of one conference.
pub fn profiles(id: i64, c: &Conference) -> ConferenceProfiles {
    let bridge = vec![
        Opt::new("max_members", &c.max_users.to_string()),
        Opt::new("record_conference", yes_no(c.record)),
    ];
    let mut user = participant_options(c);
    if let Some(pin) = c.pin.as_deref().filter(|p| !p.is_empty()) {
        user.push(Opt::new("pin", pin));
    }
    let mut admin = vec![Opt::new("admin", "yes"), Opt::new("marked", "yes")];
    admin.extend(participant_options(c));
    ConferenceProfiles {
        id,
        bridge,
        user,
        admin,
    }
}

/// The dialplan of a conference's extension.
pub fn conference_actions(id: i64, c: &Conference) -> Vec<String> {
    let mut actions = vec![format!("Set(__ACCENT_CONFERENCE_ID={id})")];
    if let Some(sub) = c.preprocess_subroutine.as_deref().map(arg).filter(|s| !s.is_empty()) {
        actions.push(format!("GoSub({sub},s,1)"));
    }
    actions.push("Answer()".into());
    let room = bridge_name(id);
    let user = format!("ConfBridge({room},accent-bridge-profile-{id},accent-user-profile-{id},{USER_MENU})");
    match c.admin_pin.as_deref().filter(|p| !p.is_empty()) {
        None => actions.push(user),
        Some(admin_pin) => {
            // Digits only (checked when stored): safe inside the expression.
            let admin_pin = arg(admin_pin);
            actions.push("Read(ACCENT_CONFERENCE_PIN,conf-getpin,80,,3,10)".into());
            actions.push(format!(
                "ExecIf($[\"${{ACCENT_CONFERENCE_PIN}}\" = \"{admin_pin}\"]?ConfBridge({room},accent-bridge-profile-{id},accent-admin-profile-{id},{ADMIN_MENU}))"
            ));
            // An admin leaving the room must not fall through into the user profile.
            actions.push(format!(
                "ExecIf($[\"${{ACCENT_CONFERENCE_PIN}}\" = \"{admin_pin}\"]?Hangup())"
            ));
            actions.push(user);
        }
    }
    actions.push("Hangup()".into());
    actions
}

impl Model {
    /// Every conference's profiles, and the extension of those that have one.
    pub(super) fn add_conferences(&mut self, c: &Connection) -> Result<(), ModelError> {
        let mut exts: BTreeMap<i64, (String, String)> = BTreeMap::new();
        let raw = pairs(
            c,
            &format!(
                "SELECT ce.conference_id, x.doc FROM confd_conference_extension ce JOIN {} x ON x.id = ce.extension_id",
                extensions::TABLE
            ),
        )?;
        for (conference_id, doc) in raw {
            let x: extensions::Extension = super::model::decode("extension", conference_id, &doc)?;
            if x.is_enabled() {
                exts.insert(conference_id, (x.exten, x.context));
            }
        }
        for (id, _, _, conf) in rows::<Conference>(c, "conference", conferences::TABLE, "id")? {
            if let Some((exten, context)) = exts.remove(&id) {
                let actions = conference_actions(id, &conf);
                if let Some(ctx) = self.context_mut(&context) {
                    ctx.extensions.push(DialExtension {
                        exten,
                        hint: None,
                        actions,
                    });
                }
            }
            self.conferences.push(profiles(id, &conf));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conference(v: serde_json::Value) -> Conference {
        serde_json::from_value(v).expect("conference")
    }

    #[test]
    fn profiles_follow_the_fields() {
        let c = conference(serde_json::json!({"max_users": 5, "record": true, "pin": "1234",
            "admin_pin": "9999", "quiet_join_leave": true, "music_on_hold": "jazz"}));
        let p = profiles(3, &c);
        let has = |opts: &[Opt], k: &str, v: &str| opts.iter().any(|o| o.key == k && o.value == v);
        assert!(has(&p.bridge, "max_members", "5") && has(&p.bridge, "record_conference", "yes"));
        assert!(has(&p.user, "quiet", "yes") && has(&p.user, "pin", "1234"));
        assert!(has(&p.user, "music_on_hold_class", "jazz"));
        assert!(has(&p.admin, "admin", "yes"));
        // The admin PIN is checked by the dialplan, never put in a profile.
        assert!(!p.admin.iter().chain(&p.user).any(|o| o.value == "9999"));
    }

    #[test]
    fn admin_pin_chooses_the_admin_profile() {
        let plain = conference_actions(2, &conference(serde_json::json!({"preprocess_subroutine": "sub-x"})));
        assert_eq!(
            plain,
            [
                "Set(__ACCENT_CONFERENCE_ID=2)",
                "GoSub(sub-x,s,1)",
                "Answer()",
                "ConfBridge(accent-conference-2,accent-bridge-profile-2,accent-user-profile-2,accent-default-user-menu)",
                "Hangup()"
            ]
        );
        let admin = conference_actions(2, &conference(serde_json::json!({"admin_pin": "42"})));
        assert!(admin.iter().any(|a| a.starts_with("Read(ACCENT_CONFERENCE_PIN,")));
        assert!(admin.iter().any(|a| a.contains("= \"42\"]?ConfBridge(accent-conference-2,accent-bridge-profile-2,accent-admin-profile-2,accent-default-admin-menu)")));
        assert_eq!(
            admin[admin.len() - 2],
            "ConfBridge(accent-conference-2,accent-bridge-profile-2,accent-user-profile-2,accent-default-user-menu)"
        );
    }
}
