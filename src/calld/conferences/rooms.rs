//! Who is in which conference, as the AMI events tell it, and the bus
//! events each change raises. Kept apart from the AMI task so the rules
//! are tested without a link: the task feeds [`Rooms::apply`] and publishes
//! what it returns, with the conference's tenant.

use std::collections::HashMap;

use serde_json::json;
use uuid::Uuid;

use super::participant::{conference_id, Participant};
use crate::ami::frame::AmiMessage;
use crate::bus::{escape_key, EventSpec};

/// The participants of every conference seen joining since accentd started.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: HashMap<i64, Vec<Participant>>,
}

impl Rooms {
    /// The confd conference an AMI event is about, if it is one of ours.
    pub fn conference_of(msg: &AmiMessage) -> Option<i64> {
        match msg.get("Event")? {
            "ConfbridgeJoin"
            | "ConfbridgeLeave"
            | "ConfbridgeMute"
            | "ConfbridgeUnmute"
            | "ConfbridgeTalking"
            | "ConfbridgeEnd"
            | "ConfbridgeRecord"
            | "ConfbridgeStopRecord" => conference_id(msg.get("Conference")?),
            _ => None,
        }
    }

    /// The users among a conference's participants (each once).
    fn users(&self, conference: i64) -> Vec<Uuid> {
        let mut users: Vec<Uuid> = self
            .rooms
            .get(&conference)
            .into_iter()
            .flatten()
            .filter_map(|p| p.user_uuid)
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Applies one AMI event; returns the bus events it raises (tenant not set yet).
    /// `user_of(uniqueid)` names the user whose line the joining channel is.
    pub fn apply(&mut self, msg: &AmiMessage, user_of: impl Fn(&str) -> Option<Uuid>) -> Vec<EventSpec> {
        let Some(conference) = Self::conference_of(msg) else {
            return Vec::new();
        };
        let event = msg.get("Event").unwrap_or_default();
        match event {
            "ConfbridgeEnd" => {
                self.rooms.remove(&conference);
                return Vec::new();
            }
            // Upstream's payload names the conference only, to everyone of the tenant.
            "ConfbridgeRecord" | "ConfbridgeStopRecord" => {
                let name = if event == "ConfbridgeRecord" {
                    "conference_record_started"
                } else {
                    "conference_record_stopped"
                };
                return vec![EventSpec::new(
                    name,
                    format!("conferences.{conference}.record"),
                    json!({ "id": conference }),
                )];
            }
            _ => {}
        }
        let Some(from_event) = Participant::from_ami(msg) else {
            tracing::debug!(event, "ConfBridge event without a channel, ignored");
            return Vec::new();
        };
        let room = self.rooms.entry(conference).or_default();
        let known = room.iter().position(|p| p.id == from_event.id);
        let events = match event {
            "ConfbridgeJoin" => {
                let mut p = from_event;
                p.user_uuid = user_of(&p.id);
                match known {
                    Some(i) => room[i] = p.clone(),
                    None => room.push(p.clone()),
                }
                // Everyone in the room hears of it, the newcomer included.
                self.participant_events(conference, "joined", "joined", &p)
            }
            "ConfbridgeLeave" => {
                // The stored one knows the user (the channel may be gone from the live state).
                let p = known.map(|i| room[i].clone()).unwrap_or(from_event);
                // The one leaving is told too, then forgotten.
                let events = self.participant_events(conference, "left", "left", &p);
                if let Some(room) = self.rooms.get_mut(&conference) {
                    room.retain(|q| q.id != p.id);
                }
                events
            }
            "ConfbridgeMute" | "ConfbridgeUnmute" => {
                let muted = event == "ConfbridgeMute";
                let p = match known {
                    Some(i) => {
                        room[i].muted = muted;
                        room[i].clone()
                    }
                    None => Participant { muted, ..from_event },
                };
                // Upstream's routing keys, the unmuted one's misspelling included.
                let (name, key) = if muted {
                    ("conference_participant_muted", "participants")
                } else {
                    ("conference_participant_unmuted", "particpants")
                };
                vec![EventSpec::new(
                    name,
                    format!("conferences.{conference}.{key}.mute"),
                    json!({ "conference_id": conference, "participant": p }),
                )]
            }
            "ConfbridgeTalking" => {
                let p = known.map(|i| room[i].clone()).unwrap_or(from_event);
                match msg.get("TalkingStatus").map(str::to_ascii_lowercase).as_deref() {
                    Some("on") => self.participant_events(conference, "talk_started", "talk", &p),
                    Some("off") => self.participant_events(conference, "talk_stopped", "talk", &p),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        // Events about a room never seen joining (accentd started mid-conference) leave nothing behind.
        if self.rooms.get(&conference).is_some_and(Vec::is_empty) {
            self.rooms.remove(&conference);
        }
        events
    }

    /// `conference_participant_<what>` to every user in the room, and
    /// `conference_user_participant_<what>` to each of them.
    fn participant_events(&self, conference: i64, what: &str, key: &str, p: &Participant) -> Vec<EventSpec> {
        let mut users = self.users(conference);
        if let Some(u) = p.user_uuid.filter(|u| !users.contains(u)) {
            users.push(u);
        }
        let data = json!({ "conference_id": conference, "participant": p });
        let mut out = vec![EventSpec::new(
            format!("conference_participant_{what}"),
            format!("conferences.{conference}.participants.{key}"),
            data.clone(),
        )
        .users(users.clone())];
        for user in users {
            out.push(
                EventSpec::new(
                    format!("conference_user_participant_{what}"),
                    format!("conferences.users.{}.participants.{key}", escape_key(&user.to_string())),
                    data.clone(),
                )
                .users(vec![user]),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, Target};

    /// A ConfbridgeJoin/Leave/... with the headers scenario 10 recorded.
    fn event(name: &str, conference: &str, uniqueid: &str, who: &str) -> AmiMessage {
        AmiMessage::new()
            .with("Event", name)
            .with("Conference", conference)
            .with("Channel", format!("PJSIP/{who}-00000001"))
            .with("CallerIDNum", who)
            .with("CallerIDName", format!("User {who}"))
            .with("Language", "en")
            .with("Uniqueid", uniqueid)
            .with("Admin", "No")
            .with("Muted", "No")
    }

    fn published(specs: Vec<EventSpec>) -> Vec<(String, String, Target)> {
        let bus = Bus::new(Uuid::nil());
        specs
            .into_iter()
            .map(|s| {
                // The watcher sets the conference's tenant before publishing.
                let e = bus.publish(s.tenant(Uuid::nil()));
                (e.name.clone(), e.routing_key.clone(), e.target.clone())
            })
            .collect()
    }

    #[test]
    fn joins_leaves_and_who_hears_of_it() {
        let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let user_of = |id: &str| match id {
            "1.1" => Some(alice),
            "1.2" => Some(bob),
            _ => None,
        };
        let mut rooms = Rooms::default();
        let c = "accent-conference-4";
        let got = published(rooms.apply(&event("ConfbridgeJoin", c, "1.1", "1001"), user_of));
        assert_eq!(
            got,
            vec![
                (
                    "conference_participant_joined".into(),
                    "conferences.4.participants.joined".into(),
                    Target::Users(vec![alice])
                ),
                (
                    "conference_user_participant_joined".into(),
                    format!("conferences.users.{alice}.participants.joined"),
                    Target::Users(vec![alice])
                ),
            ]
        );
        // A guest without a user, then Bob: both users hear of Bob.
        assert_eq!(
            published(rooms.apply(&event("ConfbridgeJoin", c, "1.3", "guest"), user_of))[0].2,
            Target::Users(vec![alice])
        );
        let got = published(rooms.apply(&event("ConfbridgeJoin", c, "1.2", "1002"), user_of));
        assert_eq!(got[0].2, Target::Users(vec![alice, bob]));
        assert_eq!(got.len(), 3);
        // Talking and muting.
        let talk = event("ConfbridgeTalking", c, "1.2", "1002").with("TalkingStatus", "on");
        let got = published(rooms.apply(&talk, user_of));
        assert_eq!(
            (got[0].0.as_str(), got[0].1.as_str()),
            ("conference_participant_talk_started", "conferences.4.participants.talk")
        );
        let got = published(rooms.apply(&event("ConfbridgeMute", c, "1.2", "1002"), user_of));
        assert_eq!(
            got,
            vec![(
                "conference_participant_muted".into(),
                "conferences.4.participants.mute".into(),
                Target::Tenant
            )]
        );
        assert!(rooms.rooms[&4].iter().any(|p| p.id == "1.2" && p.muted));
        let got = published(rooms.apply(&event("ConfbridgeUnmute", c, "1.2", "1002"), user_of));
        assert_eq!(got[0].1, "conferences.4.particpants.mute");
        // Alice leaves: she is told, then only Bob remains to hear of others.
        let got = published(rooms.apply(&event("ConfbridgeLeave", c, "1.1", "1001"), |_| None));
        assert_eq!(got[0].2, Target::Users(vec![alice, bob]));
        let got = published(rooms.apply(&event("ConfbridgeLeave", c, "1.3", "guest"), user_of));
        assert_eq!(got[0].2, Target::Users(vec![bob]));
        rooms.apply(&event("ConfbridgeLeave", c, "1.2", "1002"), user_of);
        assert!(rooms.rooms.is_empty());
    }

    #[test]
    fn other_conferences_and_odd_events_are_ignored() {
        let mut rooms = Rooms::default();
        for msg in [
            event("ConfbridgeJoin", "100", "1.1", "1001"),
            event("ConfbridgeJoin", "accent-conference-x", "1.1", "1001"),
            event("Newchannel", "accent-conference-1", "1.1", "1001"),
            AmiMessage::new()
                .with("Event", "ConfbridgeJoin")
                .with("Conference", "accent-conference-1"),
            event("ConfbridgeTalking", "accent-conference-1", "1.1", "1001").with("TalkingStatus", "maybe"),
        ] {
            assert!(rooms.apply(&msg, |_| None).is_empty(), "{msg:?}");
        }
        rooms.apply(&event("ConfbridgeJoin", "accent-conference-1", "1.1", "1001"), |_| None);
        // Recording is about the room, not a channel: the bridge snapshot is all it carries.
        for (name, wanted) in [
            ("ConfbridgeRecord", "conference_record_started"),
            ("ConfbridgeStopRecord", "conference_record_stopped"),
        ] {
            let msg = AmiMessage::new()
                .with("Event", name)
                .with("Conference", "accent-conference-1")
                .with("BridgeUniqueid", "b-1");
            let got = published(rooms.apply(&msg, |_| None));
            assert_eq!(
                got,
                vec![(wanted.into(), "conferences.1.record".into(), Target::Tenant)]
            );
        }
        let end = AmiMessage::new()
            .with("Event", "ConfbridgeEnd")
            .with("Conference", "accent-conference-1");
        assert!(rooms.apply(&end, |_| None).is_empty());
        assert!(rooms.rooms.is_empty());
    }
}
