//! The caller's rows (section 3.4): start, source, what was dialed, answer, end, direction and
//! the dialplan's user events.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::draft::{decode_name, is_holding_bridge, is_meeting_extension, is_routing_app, non_empty, Draft, NamedUser};
use crate::calllog::cdr::model::{CallDirection, Role};
use crate::cel::record::{Cel, EventType};

/// Applies one row of the caller's channel.
pub(crate) fn interpret(d: &mut Draft, cel: &Cel) {
    if d.recording_event(cel) {
        return;
    }
    match &cel.eventtype {
        EventType::ChanStart => chan_start(d, cel),
        EventType::AppStart => app_start(d, cel),
        EventType::Answer => answer(d, cel),
        EventType::BridgeEnter => bridge_enter(d, cel),
        EventType::Other(name) if name == "BRIDGE_START" => bridge_enter(d, cel),
        EventType::ChanEnd => chan_end(d, cel),
        EventType::User(_) => user_event(d, cel),
        _ => {}
    }
}

/// CHAN_START: the call starts; the caller id is the source, the extension the channel starts
/// in is what was dialed, the channel is the `source` participant. A channel that starts with
/// no caller id was originated (AMI/ARI) and only reaches the dialed extension in the dialplan:
/// see [`app_start`].
pub(crate) fn chan_start(d: &mut Draft, cel: &Cel) {
    if d.start.is_some() {
        return;
    }
    d.start = Some(cel.eventtime.micros());
    d.log.source_name = decode_name(&cel.cid_name);
    d.log.source_exten = cel.cid_num.clone();
    d.originated = cel.cid_name.is_empty() && cel.cid_num.is_empty();
    d.log.requested_exten = non_empty(&cel.exten);
    d.log.requested_context = non_empty(&cel.context);
    d.log.destination_exten = non_empty(&cel.exten);
    d.log.source_line_identity = super::lines::identity(&cel.channame);
    d.add_channel(cel, Role::Source);
}

/// APP_START: the user field; voicemail; the caller id shown now replaces the source unless
/// the call was forwarded (the forwarding user is not the caller). For an originated caller
/// (no caller id at CHAN_START), the first routing application's extension is the dialed one.
fn app_start(d: &mut Draft, cel: &Cel) {
    if let Some(field) = non_empty(&cel.userfield) {
        d.log.user_field = Some(field);
    }
    d.app_start_voicemail(cel);
    if !d.forwarded {
        if !cel.cid_name.is_empty() {
            d.log.source_name = decode_name(&cel.cid_name);
        }
        if !cel.cid_num.is_empty() {
            d.log.source_exten = cel.cid_num.clone();
        }
    }
    if is_routing_app(&cel.appname) && !d.routed {
        d.routed = true;
        if d.originated && !d.authoritative_destination {
            if let Some(exten) = non_empty(&cel.exten) {
                d.log.requested_exten = Some(exten.clone());
                d.log.destination_exten = Some(exten);
                d.log.requested_context = non_empty(&cel.context);
            }
        }
    }
}

/// ANSWER: what was dialed, if still unknown, is the answering number.
fn answer(d: &mut Draft, cel: &Cel) {
    if d.log.destination_exten.is_none() {
        d.log.destination_exten = non_empty(&cel.cid_num);
    }
    if d.log.requested_exten.is_none() {
        d.log.requested_exten = non_empty(&cel.cid_num);
    }
}

/// BRIDGE_ENTER: the first real bridge is the answer (a holding bridge is music on hold, not
/// an answer); it also fills a source still unknown.
pub(crate) fn bridge_enter(d: &mut Draft, cel: &Cel) {
    if is_holding_bridge(cel) {
        return;
    }
    if d.log.answer_us.is_none() {
        d.log.answer_us = Some(cel.eventtime.micros());
    }
    if let Some(channel) = d.channel_mut(&cel.uniqueid) {
        channel.answered = true;
    }
    if d.log.source_name.is_empty() {
        d.log.source_name = decode_name(&cel.cid_name);
    }
    if d.log.source_exten.is_empty() {
        d.log.source_exten = cel.cid_num.clone();
    }
}

/// CHAN_END of the caller ends the call and whatever is still recording; the extensions the
/// log must not show (`s` …) are removed now, once every caller row has been read (callee rows
/// come after and never bring them back).
pub(crate) fn chan_end(d: &mut Draft, cel: &Cel) {
    let at = cel.eventtime.micros();
    d.log.end_us = Some(at);
    d.close_recordings(at);
    d.hide_extensions();
}

/// The dialplan's user events, under any of the `ACCENT_`/`XIVO_`/`WAZO_` spellings.
pub(crate) fn user_event(d: &mut Draft, cel: &Cel) {
    let t = &cel.eventtype;
    if t.is_user_event("INCALL") {
        incall(d, cel);
    } else if t.is_user_event("OUTCALL") {
        outcall(d, cel);
    } else if t.is_user_event("FROM_S") {
        from_s(d, cel);
    } else if t.is_user_event("USER_FWD") {
        user_forward(d, cel);
    } else if t.is_user_event("USER_MISSED_CALL") {
        missed_call(d, cel);
    } else if t.is_user_event("USER_BLOCKED_CALL") {
        blocked_call(d, cel);
    } else if t.is_user_event("CALL_LOG_DESTINATION") {
        destination(d, cel);
    } else if t.is_user_event("CONFERENCE") {
        let extra = cel.extra();
        let name = extra.field("name").or_else(|| extra.user_text().and_then(non_empty));
        if let Some(name) = name {
            d.log.destination_name = Some(name);
        }
    } else if t.is_user_event("MEETING_NAME") {
        meeting_name(d, cel);
    } else if t.is_user_event("CALL_LOG_REQUESTED_INTERNAL") {
        // Only what the extra names: an event without a number keeps the one known.
        let extra = cel.extra();
        if let Some(exten) = extra.field("requested_internal_exten").or_else(|| extra.field("num")) {
            d.log.requested_internal_exten = Some(exten);
        }
        if let Some(context) = extra
            .field("requested_internal_context")
            .or_else(|| extra.field("context"))
        {
            d.log.requested_internal_context = Some(context);
        }
    } else if t.is_user_event("ORIGINATE_ALL_LINES") {
        originate_all_lines(d, cel);
    }
}

/// MEETING_NAME: the extra is the meeting's name, the destination's name; the meeting's own
/// extension (`wazo-meeting-<uuid>`) is hidden at the caller's CHAN_END.
fn meeting_name(d: &mut Draft, cel: &Cel) {
    if let Some(name) = cel.extra().user_text().and_then(non_empty) {
        d.log.destination_name = Some(name);
    }
    if let Some(exten) = d.log.destination_exten.clone() {
        if is_meeting_extension(&exten) && !d.hidden.contains(&exten) {
            d.hidden.push(exten);
        }
    }
}

/// INCALL: the call came in from outside (section 3.6); its extra is the tenant.
fn incall(d: &mut Draft, cel: &Cel) {
    d.log.call_direction = CallDirection::Inbound;
    let extra = cel.extra();
    let tenant = extra
        .field("tenant_uuid")
        .or_else(|| extra.user_text().map(str::to_owned))
        .and_then(|t| Uuid::parse_str(t.trim()).ok());
    if tenant.is_some() {
        d.extra_tenant = tenant;
    }
}

/// OUTCALL: the call goes out, unless a user's forward sent it there (then the outside number
/// is where it went, and the direction stays).
fn outcall(d: &mut Draft, cel: &Cel) {
    if d.forwarded {
        if let Some(exten) = non_empty(&cel.exten).filter(|e| e != "s") {
            d.log.destination_exten = Some(exten);
        }
        return;
    }
    d.log.call_direction = CallDirection::Outbound;
}

/// FROM_S: a call that entered at `s` names its real extension here.
fn from_s(d: &mut Draft, cel: &Cel) {
    if let Some(exten) = non_empty(&cel.exten) {
        d.log.requested_exten = Some(exten.clone());
        d.log.destination_exten = Some(exten);
    }
    if let Some(context) = non_empty(&cel.context) {
        d.log.requested_context = Some(context);
    }
}

/// USER_FWD: the call is forwarded; the first forward names the user first asked for.
fn user_forward(d: &mut Draft, cel: &Cel) {
    if !d.forwarded {
        let extra = cel.extra();
        d.log.requested_internal_exten = extra.field("num").or(d.log.requested_internal_exten.take());
        d.log.requested_internal_context = extra.field("context").or(d.log.requested_internal_context.take());
        if let Some(name) = extra.field("name") {
            d.log.requested_name = Some(decode_name(&name));
        }
    }
    d.forwarded = true;
}

fn uuid_field(extra: &crate::cel::Extra, key: &str) -> Option<Uuid> {
    extra.field(key).and_then(|v| Uuid::parse_str(v.trim()).ok())
}

/// USER_MISSED_CALL: the extra names the tenant and the users; they become participants who
/// did not answer.
fn missed_call(d: &mut Draft, cel: &Cel) {
    let extra = cel.extra();
    if let Some(tenant) = uuid_field(&extra, "wazo_tenant_uuid")
        .or_else(|| uuid_field(&extra, "accent_tenant_uuid"))
        .or_else(|| uuid_field(&extra, "tenant_uuid"))
    {
        d.extra_tenant = Some(tenant);
    }
    if let Some(user_uuid) = uuid_field(&extra, "source_user_uuid") {
        d.name_user(NamedUser {
            user_uuid,
            role: Role::Source,
            requested: false,
            name: extra.field("source_name"),
        });
    }
    if let Some(user_uuid) = uuid_field(&extra, "destination_user_uuid") {
        d.name_user(NamedUser {
            user_uuid,
            role: Role::Destination,
            requested: true,
            name: extra.field("destination_name"),
        });
    }
    if d.log.destination_exten.is_none() {
        d.log.destination_exten = extra.field("destination_exten");
    }
}

/// USER_BLOCKED_CALL: the user called blocks the caller's number (`blocked_caller_id_num: …,
/// blocked_caller_id_name: …, destination_user_uuid: …, blocked_number_uuid: …`); the call is
/// blocked, and that user, who was asked for, takes part without having answered.
fn blocked_call(d: &mut Draft, cel: &Cel) {
    d.blocked = true;
    if let Some(user_uuid) = uuid_field(&cel.extra(), "destination_user_uuid") {
        d.name_user(NamedUser {
            user_uuid,
            role: Role::Destination,
            requested: true,
            name: None,
        });
    }
}

/// CALL_LOG_DESTINATION: the dialplan says who the destination is; this wins over caller ids.
/// A user destination is the requested participant.
fn destination(d: &mut Draft, cel: &Cel) {
    let extra = cel.extra();
    let kind = extra.field("type").unwrap_or_default().to_ascii_lowercase();
    let mut details = Map::new();
    let text = |k: &str| extra.field(k).map(Value::String).unwrap_or(Value::Null);
    match kind.as_str() {
        "user" => {
            let Some(user_uuid) = uuid_field(&extra, "uuid") else {
                return;
            };
            let name = extra.field("name").map(|n| decode_name(&n));
            details.insert("type".into(), "user".into());
            details.insert("user_uuid".into(), user_uuid.to_string().into());
            details.insert(
                "user_name".into(),
                name.clone().map(Value::String).unwrap_or(Value::Null),
            );
            d.name_user(NamedUser {
                user_uuid,
                role: Role::Destination,
                requested: true,
                name: name.clone(),
            });
            d.log.destination_name = name;
        }
        "group" => {
            details.insert("type".into(), "group".into());
            details.insert("group_id".into(), group_id(extra.field("id")));
            details.insert("group_label".into(), text("label"));
            d.log.destination_name = extra.field("label");
        }
        "conference" => {
            details.insert("type".into(), "conference".into());
            details.insert("conference_id".into(), group_id(extra.field("id")));
        }
        "meeting" => {
            details.insert("type".into(), "meeting".into());
            details.insert("meeting_uuid".into(), text("uuid"));
            details.insert("meeting_name".into(), text("name"));
            d.log.destination_name = extra.field("name");
        }
        _ => return,
    }
    d.log.destination_details = details;
    d.authoritative_destination = true;
}

fn group_id(id: Option<String>) -> Value {
    match id {
        Some(text) => text.parse::<i64>().map(Value::from).unwrap_or(Value::String(text)),
        None => Value::Null,
    }
}

/// ORIGINATE_ALL_LINES: the user who originated on all their lines is the source.
fn originate_all_lines(d: &mut Draft, cel: &Cel) {
    let extra = cel.extra();
    if let Some(tenant) = uuid_field(&extra, "tenant_uuid") {
        d.extra_tenant = Some(tenant);
    }
    if let Some(user_uuid) = uuid_field(&extra, "user_uuid") {
        d.name_user(NamedUser {
            user_uuid,
            role: Role::Source,
            requested: false,
            name: None,
        });
    }
}
