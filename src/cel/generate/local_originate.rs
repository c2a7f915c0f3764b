//! Calls originated through a Local channel (section 3.3, first interpreter): calld's
//! `POST /calls` creates `Local/<exten>@<context>;1` and `;2`, rings the user's own phone (the
//! third channel, the real source) and, once it answers, dials `<exten>` from `;2`.

use std::collections::HashSet;

use super::draft::{decode_name, is_holding_bridge, non_empty, Draft};
use super::lines::{identity, is_local};
use super::{callee, caller};
use crate::calllog::cdr::model::Role;
use crate::cel::record::{Cel, EventType};

/// The three channels of the originate, by uniqueid.
struct Legs<'a> {
    local1: &'a str,
    local2: &'a str,
    source: &'a str,
}

/// The first three CHAN_STARTs must be `Local/…;1`, `Local/…;2` and a channel that is not
/// Local (the user's phone).
fn legs(cels: &[Cel]) -> Option<Legs<'_>> {
    let mut starts = cels.iter().filter(|c| c.eventtype == EventType::ChanStart);
    let (one, two, three) = (starts.next()?, starts.next()?, starts.next()?);
    let fits = is_local(&one.channame)
        && one.channame.ends_with(";1")
        && is_local(&two.channame)
        && two.channame.ends_with(";2")
        && !is_local(&three.channame);
    fits.then_some(Legs {
        local1: &one.uniqueid,
        local2: &two.uniqueid,
        source: &three.uniqueid,
    })
}

/// Whether this interpreter applies to a group's rows.
pub(crate) fn applies(cels: &[Cel]) -> bool {
    legs(cels).is_some()
}

fn find<'a>(cels: &'a [Cel], uniqueid: &str, t: EventType) -> Option<&'a Cel> {
    cels.iter().find(|c| c.uniqueid == uniqueid && c.eventtype == t)
}

/// Builds the draft; `None` when the rows the originate must have (the source's ANSWER and
/// CHAN_END, the first Local's CHAN_START) are missing: such a log would be empty.
pub(crate) fn interpret(cels: &[Cel]) -> Option<Draft> {
    let legs = legs(cels)?;
    let local1_start = find(cels, legs.local1, EventType::ChanStart)?;
    let source_answer = find(cels, legs.source, EventType::Answer)?;
    let source_end = find(cels, legs.source, EventType::ChanEnd)?;
    let mut d = Draft {
        start: Some(local1_start.eventtime.micros()),
        ..Draft::default()
    };
    d.log.source_name = decode_name(&source_answer.cid_name);
    d.log.source_exten = source_answer.cid_num.clone();
    d.log.source_line_identity = identity(&source_answer.channame);
    d.log.requested_exten = non_empty(&local1_start.exten);
    d.log.requested_context = non_empty(&local1_start.context);
    d.log.destination_exten = non_empty(&local1_start.exten);
    d.log.end_us = Some(source_end.eventtime.micros());
    d.add_channel(source_answer, Role::Source);
    let originate = [legs.local1, legs.local2, legs.source];
    let started: HashSet<&str> = cels
        .iter()
        .filter(|c| c.eventtype == EventType::ChanStart)
        .map(|c| c.uniqueid.as_str())
        .collect();
    for cel in cels {
        if originate.contains(&cel.uniqueid.as_str()) {
            originate_leg(&mut d, cel);
        } else if started.contains(cel.uniqueid.as_str()) {
            if cel.eventtype == EventType::BridgeEnter && !is_holding_bridge(cel) && d.log.answer_us.is_none() {
                d.log.answer_us = Some(cel.eventtime.micros());
            }
            callee::interpret(&mut d, cel);
        }
    }
    Some(d)
}

/// Rows of the originate's own channels: only the dialplan's user events, recordings and the
/// user field matter (times come from the legs found above).
fn originate_leg(d: &mut Draft, cel: &Cel) {
    if d.recording_event(cel) {
        return;
    }
    match &cel.eventtype {
        EventType::User(_) => caller::user_event(d, cel),
        EventType::AppStart => {
            if let Some(field) = non_empty(&cel.userfield) {
                d.log.user_field = Some(field);
            }
            d.app_start_voicemail(cel);
        }
        _ => {}
    }
}
