//! From a finished draft to the call log (section 3.7): channels resolved to users through
//! their lines, users named by extras, tenant, recordings, and the discard rule.

use uuid::Uuid;

use super::draft::{Channel, Draft};
use super::lines::{ContextResolver, LineOwner, LineResolver};
use crate::calllog::cdr::model::{CallLog, CallStatus, Participant, Recording, Role};

/// A resolved participant and the line owner behind it (for the internal fields).
struct Resolved {
    participant: Participant,
    owner: Option<LineOwner>,
}

/// Turns the draft into the call log, or `None` when it has no start or no source name nor
/// number (section 3.7: such logs are discarded).
pub(crate) fn finish(
    d: Draft,
    lines: &dyn LineResolver,
    contexts: &dyn ContextResolver,
    default_tenant: Uuid,
) -> Option<CallLog> {
    let start = d.start?;
    if d.log.source_name.is_empty() && d.log.source_exten.is_empty() {
        return None;
    }
    let mut log = d.log;
    log.start_us = start;
    let mut resolved = from_channels(&d.channels, lines);
    add_named_users(&mut resolved, &d.named_users);
    fill_internal(&mut log, &resolved);
    let context_tenant = log.requested_context.as_deref().and_then(|c| contexts.tenant(c));
    log.tenant_uuid = tenant(&resolved, d.extra_tenant, context_tenant, default_tenant);
    let answered = log.answer_us.is_some();
    log.call_status = CallStatus::derive(d.blocked, d.reached_voicemail, answered);
    log.recordings = recordings(d.recordings, answered);
    let (source_peer, destination_peer) = (
        log.destination_exten
            .clone()
            .or_else(|| log.requested_exten.clone())
            .unwrap_or_default(),
        log.source_exten.clone(),
    );
    log.participants = resolved
        .into_iter()
        .map(|mut r| {
            r.participant.peer_exten = match r.participant.role {
                Role::Source => source_peer.clone(),
                Role::Destination => destination_peer.clone(),
            };
            r.participant
        })
        .collect();
    Some(log)
}

/// Each channel's line resolved to its user; several channels of one line keep the answered
/// one, else the last (a user rung twice is one participant).
fn from_channels(channels: &[Channel], lines: &dyn LineResolver) -> Vec<Resolved> {
    let mut out: Vec<Resolved> = Vec::new();
    for channel in channels {
        let Some(owner) = channel.identity.as_deref().and_then(|i| lines.resolve(i)) else {
            continue;
        };
        let participant = Participant {
            user_uuid: owner.user_uuid,
            line_id: Some(owner.line_id),
            role: channel.role,
            tags: owner.tags.clone(),
            answered: channel.answered,
            requested: false,
            peer_exten: String::new(),
        };
        let same_line = out
            .iter()
            .position(|r| r.participant.line_id == participant.line_id && r.participant.role == participant.role);
        match same_line {
            Some(i) if out[i].participant.answered && !participant.answered => {}
            Some(i) => {
                out[i] = Resolved {
                    participant,
                    owner: Some(owner),
                }
            }
            None => out.push(Resolved {
                participant,
                owner: Some(owner),
            }),
        }
    }
    out
}

/// Users named by extras: the requested flag goes to the user's channel participant when it
/// has one; otherwise they join without having answered.
fn add_named_users(resolved: &mut Vec<Resolved>, named: &[super::draft::NamedUser]) {
    for user in named {
        let known = resolved
            .iter_mut()
            .find(|r| r.participant.user_uuid == user.user_uuid && r.participant.role == user.role);
        match known {
            Some(r) => r.participant.requested |= user.requested,
            None => resolved.push(Resolved {
                participant: Participant {
                    user_uuid: user.user_uuid,
                    line_id: None,
                    role: user.role,
                    tags: Vec::new(),
                    answered: false,
                    requested: user.requested,
                    peer_exten: String::new(),
                },
                owner: None,
            }),
        }
    }
}

/// The users' own identities: the source's main extension, the answering destination's, and
/// the requested user's when no forward named it.
fn fill_internal(log: &mut CallLog, resolved: &[Resolved]) {
    let owner_of = |pick: &dyn Fn(&Participant) -> bool| {
        resolved
            .iter()
            .find(|r| pick(&r.participant))
            .and_then(|r| r.owner.as_ref())
    };
    if let Some(o) = owner_of(&|p| p.role == Role::Source) {
        log.source_internal_name = Some(o.user_name.clone()).filter(|n| !n.is_empty());
        log.source_internal_exten = o.exten.clone();
        log.source_internal_context = o.context.clone();
    }
    let destination =
        owner_of(&|p| p.role == Role::Destination && p.answered).or_else(|| owner_of(&|p| p.role == Role::Destination));
    if let Some(o) = destination {
        log.destination_internal_exten = o.exten.clone().or(log.destination_internal_exten.take());
        log.destination_internal_context = o.context.clone().or(log.destination_internal_context.take());
    }
    if log.requested_internal_exten.is_none() {
        if let Some(o) = owner_of(&|p| p.requested) {
            log.requested_internal_exten = o.exten.clone();
            log.requested_internal_context = o.context.clone();
        }
    }
}

/// Tenant: the participants' (source first), else the dialplan's extras, else the requested
/// context's, else ours.
fn tenant(resolved: &[Resolved], extra: Option<Uuid>, context: Option<Uuid>, default: Uuid) -> Uuid {
    let of = |role: Role| {
        resolved
            .iter()
            .filter(|r| r.participant.role == role)
            .find_map(|r| r.owner.as_ref().map(|o| o.tenant_uuid))
    };
    of(Role::Source)
        .or_else(|| of(Role::Destination))
        .or(extra)
        .or(context)
        .unwrap_or(default)
}

/// Unanswered calls keep no recordings; segments of the same file (paused and resumed) are
/// merged; segments that never stopped were dropped before (they have no end).
fn recordings(mut segments: Vec<Recording>, answered: bool) -> Vec<Recording> {
    if !answered {
        return Vec::new();
    }
    segments.sort_by_key(|r| (r.start_us, r.uuid));
    let mut out: Vec<Recording> = Vec::new();
    for seg in segments.into_iter().filter(|r| r.end_us >= r.start_us) {
        match out.iter_mut().find(|r| r.uuid == seg.uuid) {
            Some(r) => {
                r.start_us = r.start_us.min(seg.start_us);
                r.end_us = r.end_us.max(seg.end_us);
            }
            None => out.push(seg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::generate::lines::{StaticContexts, StaticLines};

    fn owner(line_id: i64, user: u128) -> LineOwner {
        LineOwner {
            line_id,
            user_uuid: Uuid::from_u128(user),
            tenant_uuid: Uuid::from_u128(99),
            tags: vec!["t".into()],
            user_name: "U".into(),
            exten: Some("1000".into()),
            context: Some("default".into()),
        }
    }

    fn channel(uniqueid: &str, identity: &str, role: Role, answered: bool) -> Channel {
        Channel {
            uniqueid: uniqueid.into(),
            channame: format!("{identity}-0000000{uniqueid}"),
            identity: Some(identity.into()),
            role,
            answered,
        }
    }

    #[test]
    fn one_participant_per_line_keeping_the_answered_channel() {
        let lines = StaticLines::new()
            .with("pjsip/a", owner(1, 1))
            .with("pjsip/b", owner(2, 2));
        let channels = [
            channel("1", "pjsip/a", Role::Source, true),
            channel("2", "pjsip/b", Role::Destination, true),
            channel("3", "pjsip/b", Role::Destination, false),
            channel("4", "pjsip/unknown", Role::Destination, true),
        ];
        let r = from_channels(&channels, &lines);
        assert_eq!(r.len(), 2);
        assert!(r[1].participant.answered);
        let (five, six) = (Some(Uuid::from_u128(5)), Some(Uuid::from_u128(6)));
        assert_eq!(tenant(&r, five, six, Uuid::nil()), Uuid::from_u128(99));
        assert_eq!(tenant(&[], five, six, Uuid::nil()), Uuid::from_u128(5));
        assert_eq!(tenant(&[], None, six, Uuid::nil()), Uuid::from_u128(6));
        assert_eq!(tenant(&[], None, None, Uuid::nil()), Uuid::nil());
    }

    #[test]
    fn recordings_merge_and_vanish_unanswered() {
        let seg = |uuid: u128, start: i64, end: i64| Recording {
            uuid: Uuid::from_u128(uuid),
            start_us: start,
            end_us: end,
            path: None,
            deleted: false,
        };
        let segments = vec![seg(1, 10, 20), seg(2, 15, 30), seg(1, 25, 40)];
        assert!(recordings(segments.clone(), false).is_empty());
        let merged = recordings(segments, true);
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].start_us, merged[0].end_us), (10, 40));
    }

    #[test]
    fn a_draft_without_start_or_source_is_discarded() {
        let lines = StaticLines::new();
        let contexts = StaticContexts::new();
        assert!(finish(Draft::default(), &lines, &contexts, Uuid::nil()).is_none());
        let mut d = Draft {
            start: Some(1),
            ..Draft::default()
        };
        assert!(finish(d.clone(), &lines, &contexts, Uuid::nil()).is_none());
        d.log.source_exten = "1001".into();
        assert_eq!(finish(d, &lines, &contexts, Uuid::nil()).map(|l| l.start_us), Some(1));
    }
}
