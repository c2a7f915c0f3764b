//! Every event name accentd publishes, with the routing key, websocket ACL and
//! target kind upstream's bus library gives it. Clients subscribe by name and
//! bind by routing key, so a misspelt name or key silently breaks them: debug
//! builds (every test run) check each published event against this table, and
//! a test compares the table with the upstream catalog when the reference
//! material is there.
//!
//! Templates: `{placeholder}` in a routing key or ACL stands for one non-empty
//! segment without dots; in a name, for a lowercase word (`users_services_{service_name}_updated`).

use std::collections::HashMap;
use std::sync::LazyLock;

use super::{Event, Target};

/// Who an event is addressed to (upstream's event class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Internal only: no tenant, no `user_uuid` header.
    Service,
    /// `user_uuid:*`: every user of the tenant (subject to ACL).
    Tenant,
    /// One `user_uuid:<uuid>`.
    User,
    /// One `user_uuid:<uuid>` per user.
    Users,
    /// A user event when the call has a user, else the tenant's (application calls:
    /// upstream sends them with no user uuid at all in that case).
    UserElseTenant,
}

#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub routing_key: &'static str,
    /// The ACL when it is not `events.<routing key>`.
    pub acl: Option<&'static str>,
    pub kind: Kind,
}

const fn ev(name: &'static str, routing_key: &'static str, acl: Option<&'static str>, kind: Kind) -> Spec {
    Spec {
        name,
        routing_key,
        acl,
        kind,
    }
}

use Kind::*;

pub const EVENTS: &[Spec] = &[
    ev(
        "application_call_answered",
        "applications.{application_uuid}.calls.{call[id]}.answered",
        None,
        UserElseTenant,
    ),
    ev(
        "application_call_deleted",
        "applications.{application_uuid}.calls.{call[id]}.deleted",
        None,
        UserElseTenant,
    ),
    ev(
        "application_call_dtmf_received",
        "applications.{application_uuid}.calls.{call_id}.dtmf.created",
        None,
        Tenant,
    ),
    ev(
        "application_call_entered",
        "applications.{application_uuid}.calls.created",
        None,
        UserElseTenant,
    ),
    ev(
        "application_call_initiated",
        "applications.{application_uuid}.calls.created",
        None,
        UserElseTenant,
    ),
    ev(
        "application_call_updated",
        "applications.{application_uuid}.calls.{call[id]}.updated",
        None,
        UserElseTenant,
    ),
    ev("application_created", "config.applications.created", None, Tenant),
    ev("application_deleted", "config.applications.deleted", None, Tenant),
    ev(
        "application_destination_node_created",
        "applications.{application_uuid}.nodes.created",
        None,
        Tenant,
    ),
    ev("application_edited", "config.applications.edited", None, Tenant),
    ev(
        "application_node_created",
        "applications.{application_uuid}.nodes.created",
        None,
        Tenant,
    ),
    ev(
        "application_node_deleted",
        "applications.{application_uuid}.nodes.{node[uuid]}.deleted",
        None,
        Tenant,
    ),
    ev(
        "application_node_updated",
        "applications.{application_uuid}.nodes.{node[uuid]}.updated",
        None,
        Tenant,
    ),
    ev(
        "application_playback_created",
        "applications.{application_uuid}.playbacks.{playback[uuid]}.created",
        None,
        Tenant,
    ),
    ev(
        "application_playback_deleted",
        "applications.{application_uuid}.playbacks.{playback[uuid]}.deleted",
        None,
        Tenant,
    ),
    ev(
        "application_progress_started",
        "applications.{application_uuid}.calls.{call[id]}.progress.started",
        None,
        UserElseTenant,
    ),
    ev(
        "application_progress_stopped",
        "applications.{application_uuid}.calls.{call[id]}.progress.stopped",
        None,
        UserElseTenant,
    ),
    ev(
        "application_snoop_created",
        "applications.{application_uuid}.snoops.{snoop[uuid]}.created",
        None,
        Tenant,
    ),
    ev(
        "application_snoop_deleted",
        "applications.{application_uuid}.snoops.{snoop[uuid]}.deleted",
        None,
        Tenant,
    ),
    ev(
        "application_snoop_updated",
        "applications.{application_uuid}.snoops.{snoop[uuid]}.updated",
        None,
        Tenant,
    ),
    ev(
        "auth_refresh_token_created",
        "auth.users.{user_uuid}.tokens.{client_id}.created",
        None,
        User,
    ),
    ev(
        "auth_refresh_token_deleted",
        "auth.users.{user_uuid}.tokens.{client_id}.deleted",
        None,
        User,
    ),
    ev(
        "auth_session_created",
        "auth.sessions.{session_uuid}.created",
        None,
        User,
    ),
    ev(
        "auth_session_deleted",
        "auth.sessions.{session_uuid}.deleted",
        None,
        User,
    ),
    ev(
        "auth_session_expire_soon",
        "auth.users.{user_uuid}.sessions.{session_uuid}.expire_soon",
        None,
        User,
    ),
    ev("auth_tenant_added", "auth.tenants.{tenant_uuid}.created", None, Tenant),
    ev(
        "auth_tenant_deleted",
        "auth.tenants.{tenant_uuid}.deleted",
        None,
        Tenant,
    ),
    ev(
        "auth_tenant_updated",
        "auth.tenants.{tenant_uuid}.updated",
        None,
        Tenant,
    ),
    ev(
        "call_answered",
        "calls.call.answered",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "call_created",
        "calls.call.created",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "call_dtmf_created",
        "calls.dtmf.created",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev("call_ended", "calls.call.ended", Some("events.calls.{user_uuid}"), User),
    ev(
        "call_held",
        "calls.hold.created",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev("call_log_created", "call_log.created", None, Tenant),
    ev("call_log_user_created", "call_log.user.{user_uuid}.created", None, User),
    ev("call_logd_export_created", "call_logd.export.created", None, Tenant),
    ev("call_logd_export_updated", "call_logd.export.updated", None, Tenant),
    ev(
        "call_logd_retention_updated",
        "call_logd.retention.updated",
        None,
        Tenant,
    ),
    ev(
        "call_parked",
        "parkings.{parking_id}.calls.updated",
        Some("events.parkings.{parking_id}.calls.updated"),
        Tenant,
    ),
    ev(
        "call_resumed",
        "calls.hold.deleted",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "call_unparked",
        "parkings.{parking_id}.calls.updated",
        Some("events.parkings.{parking_id}.calls.updated"),
        Tenant,
    ),
    ev(
        "call_updated",
        "calls.call.updated",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "chatd_presence_updated",
        "chatd.users.{uuid}.presences.updated",
        None,
        Tenant,
    ),
    ev(
        "chatd_user_room_created",
        "chatd.users.{user_uuid}.rooms.created",
        None,
        User,
    ),
    ev(
        "chatd_user_room_message_created",
        "chatd.users.{user_uuid}.rooms.{room_uuid}.messages.created",
        None,
        User,
    ),
    ev(
        "conference_adhoc_created",
        "conferences.users.{user_uuid}.adhoc.created",
        None,
        User,
    ),
    ev(
        "conference_adhoc_deleted",
        "conferences.users.{user_uuid}.adhoc.deleted",
        None,
        User,
    ),
    ev(
        "conference_adhoc_participant_joined",
        "conferences.users.{user_uuid}.adhoc.participants.joined",
        None,
        User,
    ),
    ev(
        "conference_adhoc_participant_left",
        "conferences.users.{user_uuid}.adhoc.participants.left",
        None,
        User,
    ),
    ev("conference_created", "config.conferences.created", None, Tenant),
    ev("conference_deleted", "config.conferences.deleted", None, Tenant),
    ev("conference_edited", "config.conferences.edited", None, Tenant),
    ev(
        "conference_extension_associated",
        "config.conferences.extensions.updated",
        None,
        Tenant,
    ),
    ev(
        "conference_extension_dissociated",
        "config.conferences.extensions.deleted",
        None,
        Tenant,
    ),
    ev(
        "conference_participant_joined",
        "conferences.{conference_id}.participants.joined",
        None,
        Users,
    ),
    ev(
        "conference_participant_left",
        "conferences.{conference_id}.participants.left",
        None,
        Users,
    ),
    ev(
        "conference_participant_muted",
        "conferences.{conference_id}.participants.mute",
        None,
        Tenant,
    ),
    ev(
        "conference_participant_talk_started",
        "conferences.{conference_id}.participants.talk",
        None,
        Users,
    ),
    ev(
        "conference_participant_talk_stopped",
        "conferences.{conference_id}.participants.talk",
        None,
        Users,
    ),
    ev(
        "conference_participant_unmuted",
        "conferences.{conference_id}.particpants.mute",
        None,
        Tenant,
    ),
    ev("conference_record_started", "conferences.{id}.record", None, Tenant),
    ev("conference_record_stopped", "conferences.{id}.record", None, Tenant),
    ev(
        "conference_user_participant_joined",
        "conferences.users.{user_uuid}.participants.joined",
        None,
        User,
    ),
    ev(
        "conference_user_participant_left",
        "conferences.users.{user_uuid}.participants.left",
        None,
        User,
    ),
    ev(
        "conference_user_participant_talk_started",
        "conferences.users.{user_uuid}.participants.talk",
        None,
        User,
    ),
    ev(
        "conference_user_participant_talk_stopped",
        "conferences.users.{user_uuid}.participants.talk",
        None,
        User,
    ),
    ev("context_created", "config.contexts.created", None, Tenant),
    ev("context_deleted", "config.contexts.deleted", None, Tenant),
    ev("context_edited", "config.contexts.edited", None, Tenant),
    ev("contexts_associated", "config.contexts.contexts.updated", None, Tenant),
    ev(
        "custom_endpoint_created",
        "config.custom_endpoint.created",
        None,
        Tenant,
    ),
    ev(
        "custom_endpoint_deleted",
        "config.custom_endpoint.deleted",
        None,
        Tenant,
    ),
    ev("custom_endpoint_edited", "config.custom_endpoint.edited", None, Tenant),
    ev("device_created", "config.device.created", None, Tenant),
    ev("device_deleted", "config.device.deleted", None, Tenant),
    ev("device_edited", "config.device.edited", None, Tenant),
    ev("extension_created", "config.extensions.created", None, Tenant),
    ev("extension_deleted", "config.extensions.deleted", None, Tenant),
    ev("extension_edited", "config.extensions.edited", None, Tenant),
    ev(
        "extension_feature_edited",
        "config.extension_feature.edited",
        None,
        Service,
    ),
    ev("fax_outbound_created", "faxes.outbound.created", None, Tenant),
    ev("fax_outbound_failed", "faxes.outbound.{id}.failed", None, Tenant),
    ev("fax_outbound_succeeded", "faxes.outbound.{id}.succeeded", None, Tenant),
    ev(
        "fax_outbound_user_created",
        "faxes.outbound.users.{user_uuid}.created",
        None,
        User,
    ),
    ev(
        "fax_outbound_user_failed",
        "faxes.outbound.users.{user_uuid}.failed",
        None,
        User,
    ),
    ev(
        "fax_outbound_user_succeeded",
        "faxes.outbound.users.{user_uuid}.succeeded",
        None,
        User,
    ),
    ev(
        "features_applicationmap_edited",
        "config.features_applicationmap.edited",
        None,
        Service,
    ),
    ev(
        "features_featuremap_edited",
        "config.features_featuremap.edited",
        None,
        Service,
    ),
    ev("iax_general_edited", "config.iax_general.edited", None, Service),
    ev("incall_created", "config.incalls.created", None, Tenant),
    ev("incall_deleted", "config.incalls.deleted", None, Tenant),
    ev("incall_edited", "config.incalls.edited", None, Tenant),
    ev(
        "incall_extension_associated",
        "config.incalls.extensions.updated",
        None,
        Tenant,
    ),
    ev(
        "line_application_associated",
        "config.lines.{line[id]}.applications.{application[uuid]}.updated",
        None,
        Tenant,
    ),
    ev(
        "line_application_dissociated",
        "config.lines.{line[id]}.applications.{application[uuid]}.deleted",
        None,
        Tenant,
    ),
    ev("line_created", "config.line.created", None, Tenant),
    ev("line_deleted", "config.line.deleted", None, Tenant),
    ev(
        "line_device_associated",
        "config.lines.{line[id]}.devices.{device[id]}.updated",
        None,
        Tenant,
    ),
    ev(
        "line_device_dissociated",
        "config.lines.{line[id]}.devices.{device[id]}.deleted",
        None,
        Tenant,
    ),
    ev("line_edited", "config.line.edited", None, Tenant),
    ev(
        "line_endpoint_custom_associated",
        "config.lines.{line[id]}.endpoints.custom.{endpoint_custom[id]}.updated",
        None,
        Tenant,
    ),
    ev(
        "line_endpoint_sccp_associated",
        "config.lines.{line[id]}.endpoints.sccp.{endpoint_sccp[id]}.updated",
        None,
        Tenant,
    ),
    ev(
        "line_endpoint_sip_associated",
        "config.lines.{line[id]}.endpoints.sip.{endpoint_sip[uuid]}.updated",
        None,
        Tenant,
    ),
    ev(
        "line_endpoint_sip_dissociated",
        "config.lines.{line[id]}.endpoints.sip.{endpoint_sip[uuid]}.deleted",
        None,
        Tenant,
    ),
    ev(
        "line_extension_associated",
        "config.line_extension_associated.updated",
        None,
        Tenant,
    ),
    ev(
        "line_extension_dissociated",
        "config.line_extension_associated.deleted",
        None,
        Tenant,
    ),
    ev("line_status_updated", "lines.{id}.status.updated", None, Tenant),
    ev("live_reload_edited", "config.live_reload.edited", None, Service),
    ev("outcall_created", "config.outcalls.created", None, Tenant),
    ev("outcall_deleted", "config.outcalls.deleted", None, Tenant),
    ev("outcall_edited", "config.outcalls.edited", None, Tenant),
    ev(
        "outcall_extension_associated",
        "config.outcalls.extensions.updated",
        None,
        Tenant,
    ),
    ev(
        "outcall_trunks_associated",
        "config.outcalls.trunks.updated",
        None,
        Tenant,
    ),
    ev(
        "parked_call_hungup",
        "parkings.{parking_id}.calls.updated",
        Some("events.parkings.{parking_id}.calls.updated"),
        Tenant,
    ),
    ev(
        "parked_call_timed_out",
        "parkings.{parking_id}.calls.updated",
        Some("events.parkings.{parking_id}.calls.updated"),
        Tenant,
    ),
    ev("parking_lot_created", "config.parkinglots.created", None, Tenant),
    ev("parking_lot_deleted", "config.parkinglots.deleted", None, Tenant),
    ev("parking_lot_edited", "config.parkinglots.edited", None, Tenant),
    ev(
        "parking_lot_extension_associated",
        "config.parkinglots.extensions.updated",
        None,
        Tenant,
    ),
    ev(
        "parking_lot_extension_dissociated",
        "config.parkinglots.extensions.deleted",
        None,
        Tenant,
    ),
    ev("pjsip_global_updated", "config.pjsip_global.updated", None, Service),
    ev(
        "recording_paused",
        "calls.recording_paused.created",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "recording_resumed",
        "calls.recording_resumed.created",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "recording_started",
        "calls.recording_started.created",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "recording_stopped",
        "calls.recording_stopped.created",
        Some("events.calls.{user_uuid}"),
        User,
    ),
    ev(
        "relocate_answered",
        "calls.relocate.edited",
        Some("events.relocates.{user_uuid}"),
        User,
    ),
    ev(
        "relocate_completed",
        "calls.relocate.edited",
        Some("events.relocates.{user_uuid}"),
        User,
    ),
    ev(
        "relocate_ended",
        "calls.relocate.deleted",
        Some("events.relocates.{user_uuid}"),
        User,
    ),
    ev(
        "relocate_initiated",
        "calls.relocate.created",
        Some("events.relocates.{user_uuid}"),
        User,
    ),
    ev("sccp_endpoint_created", "config.sccp_endpoint.created", None, Tenant),
    ev("sccp_endpoint_deleted", "config.sccp_endpoint.deleted", None, Tenant),
    ev("sccp_endpoint_edited", "config.sccp_endpoint.edited", None, Tenant),
    ev("sip_endpoint_created", "config.sip_endpoint.created", None, Tenant),
    ev("sip_endpoint_deleted", "config.sip_endpoint.deleted", None, Tenant),
    ev("sip_endpoint_edited", "config.sip_endpoint.edited", None, Tenant),
    ev(
        "sip_endpoint_template_created",
        "config.sip_endpoint_template.created",
        None,
        Tenant,
    ),
    ev(
        "sip_endpoint_template_deleted",
        "config.sip_endpoint_template.deleted",
        None,
        Tenant,
    ),
    ev(
        "sip_endpoint_template_edited",
        "config.sip_endpoint_template.edited",
        None,
        Tenant,
    ),
    ev("sip_transport_created", "config.sip.transports.created", None, Service),
    ev("sip_transport_deleted", "config.sip.transports.deleted", None, Service),
    ev("sip_transport_edited", "config.sip.transports.edited", None, Service),
    ev(
        "switchboard_created",
        "config.switchboards.{switchboard_uuid}.created",
        Some("switchboards.{switchboard_uuid}.created"),
        Tenant,
    ),
    ev(
        "switchboard_deleted",
        "config.switchboards.{switchboard_uuid}.deleted",
        Some("switchboards.{switchboard_uuid}.deleted"),
        Tenant,
    ),
    ev(
        "switchboard_edited",
        "config.switchboards.{switchboard_uuid}.edited",
        Some("switchboards.{switchboard_uuid}.edited"),
        Tenant,
    ),
    ev(
        "switchboard_fallback_edited",
        "config.switchboards.fallbacks.edited",
        Some("switchboards.fallbacks.edited"),
        Tenant,
    ),
    ev(
        "switchboard_held_call_answered",
        "switchboards.{switchboard_uuid}.calls.held.{held_call_id}.answer.updated",
        Some("events.switchboards.{switchboard_uuid}.calls.held.{held_call_id}.answer.updated"),
        Tenant,
    ),
    ev(
        "switchboard_held_calls_updated",
        "switchboards.{switchboard_uuid}.calls.held.updated",
        Some("events.switchboards.{switchboard_uuid}.calls.held.updated"),
        Tenant,
    ),
    ev(
        "switchboard_member_user_associated",
        "config.switchboards.{switchboard_uuid}.members.users.updated",
        Some("switchboards.{switchboard_uuid}.members.users.updated"),
        Users,
    ),
    ev(
        "switchboard_queued_call_answered",
        "switchboards.{switchboard_uuid}.calls.queued.{queued_call_id}.answer.updated",
        Some("events.switchboards.{switchboard_uuid}.calls.queued.{queued_call_id}.answer.updated"),
        Tenant,
    ),
    ev(
        "switchboard_queued_calls_updated",
        "switchboards.{switchboard_uuid}.calls.queued.updated",
        Some("events.switchboards.{switchboard_uuid}.calls.queued.updated"),
        Tenant,
    ),
    ev(
        "transfer_abandoned",
        "calls.transfer.edited",
        Some("events.transfers.{user_uuid}"),
        User,
    ),
    ev(
        "transfer_answered",
        "calls.transfer.edited",
        Some("events.transfers.{user_uuid}"),
        User,
    ),
    ev(
        "transfer_cancelled",
        "calls.transfer.edited",
        Some("events.transfers.{user_uuid}"),
        User,
    ),
    ev(
        "transfer_completed",
        "calls.transfer.edited",
        Some("events.transfers.{user_uuid}"),
        User,
    ),
    ev(
        "transfer_created",
        "calls.transfer.created",
        Some("events.transfers.{user_uuid}"),
        User,
    ),
    ev(
        "transfer_ended",
        "calls.transfer.deleted",
        Some("events.transfers.{user_uuid}"),
        User,
    ),
    ev(
        "transfer_updated",
        "calls.transfer.created",
        Some("events.transfers.{user_uuid}"),
        User,
    ),
    ev("trunk_created", "config.trunk.created", None, Tenant),
    ev("trunk_deleted", "config.trunk.deleted", None, Tenant),
    ev("trunk_edited", "config.trunk.edited", None, Tenant),
    ev(
        "trunk_endpoint_custom_associated",
        "config.trunks.{trunk[id]}.endpoints.custom.{endpoint_custom[id]}.updated",
        None,
        Tenant,
    ),
    ev(
        "trunk_endpoint_sip_associated",
        "config.trunks.{trunk[id]}.endpoints.sip.{endpoint_sip[uuid]}.updated",
        None,
        Tenant,
    ),
    ev(
        "trunk_endpoint_sip_dissociated",
        "config.trunks.{trunk[id]}.endpoints.sip.{endpoint_sip[uuid]}.deleted",
        None,
        Tenant,
    ),
    ev("trunk_status_updated", "trunks.{id}.status.updated", None, Tenant),
    ev("user_created", "config.user.created", None, Tenant),
    ev("user_deleted", "config.user.deleted", None, Tenant),
    ev("user_edited", "config.user.edited", None, Tenant),
    ev("user_fallback_edited", "config.users.fallbacks.edited", None, User),
    ev(
        "user_line_associated",
        "config.users.{user_uuid}.lines.{line[id]}.updated",
        None,
        User,
    ),
    ev(
        "user_line_dissociated",
        "config.users.{user_uuid}.lines.{line[id]}.deleted",
        None,
        User,
    ),
    ev(
        "user_voicemail_associated",
        "config.users.{user_uuid}.voicemails.updated",
        None,
        User,
    ),
    ev(
        "user_voicemail_dissociated",
        "config.users.{user_uuid}.voicemails.deleted",
        None,
        User,
    ),
    ev(
        "user_voicemail_message_created",
        "voicemails.messages.created",
        Some("events.users.{user_uuid}.voicemails"),
        User,
    ),
    ev(
        "user_voicemail_message_deleted",
        "voicemails.messages.deleted",
        Some("events.users.{user_uuid}.voicemails"),
        User,
    ),
    ev(
        "user_voicemail_message_updated",
        "voicemails.messages.updated",
        Some("events.users.{user_uuid}.voicemails"),
        User,
    ),
    ev(
        "users_forwards_{forward_name}_updated",
        "config.users.{user_uuid}.forwards.{forward_name}.updated",
        None,
        User,
    ),
    ev(
        "users_services_{service_name}_updated",
        "config.users.{user_uuid}.services.{service_name}.updated",
        None,
        User,
    ),
    ev("voicemail_created", "config.voicemail.created", None, Tenant),
    ev("voicemail_deleted", "config.voicemail.deleted", None, Tenant),
    ev("voicemail_edited", "config.voicemail.edited", None, Tenant),
    ev(
        "voicemail_general_edited",
        "config.voicemail_general.edited",
        None,
        Service,
    ),
    ev(
        "voicemail_zonemessages_edited",
        "config.voicemail_zonemessages.edited",
        None,
        Service,
    ),
];

struct Index {
    exact: HashMap<&'static str, &'static Spec>,
    templated: Vec<&'static Spec>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut exact = HashMap::new();
    let mut templated = Vec::new();
    for spec in EVENTS {
        if spec.name.contains('{') {
            templated.push(spec);
        } else {
            exact.insert(spec.name, spec);
        }
    }
    Index { exact, templated }
});

/// The table's entry for an event name.
pub fn find(name: &str) -> Option<&'static Spec> {
    let index = &*INDEX;
    index.exact.get(name).copied().or_else(|| {
        index.templated.iter().copied().find(|s| {
            matches(s.name, name, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
            })
        })
    })
}

/// Checks an event's name, routing key, ACL and addressing against the table.
pub fn check(event: &Event) -> Result<(), String> {
    let spec = find(&event.name).ok_or_else(|| format!("event {:?} is not in the catalog", event.name))?;
    if !matches(spec.routing_key, &event.routing_key, segment_char) {
        return Err(format!(
            "{}: routing key {:?} does not match {:?}",
            event.name, event.routing_key, spec.routing_key
        ));
    }
    let acl = match spec.acl {
        Some(acl) => matches(acl, &event.required_acl, segment_char),
        None => event
            .required_acl
            .strip_prefix("events.")
            .is_some_and(|rest| matches(spec.routing_key, rest, segment_char)),
    };
    if !acl {
        return Err(format!(
            "{}: ACL {:?} is not upstream's",
            event.name, event.required_acl
        ));
    }
    let kind_ok = match (&event.target, spec.kind) {
        (Target::Service, Service) => event.tenant_uuid.is_none(),
        (Target::Tenant, Tenant | UserElseTenant) => event.tenant_uuid.is_some(),
        (Target::Users(u), User | UserElseTenant) => u.len() == 1 && event.tenant_uuid.is_some(),
        (Target::Users(_), Users) => event.tenant_uuid.is_some(),
        _ => false,
    };
    if !kind_ok {
        return Err(format!(
            "{}: addressed to {:?} (tenant {:?}), upstream sends it as {:?}",
            event.name, event.target, event.tenant_uuid, spec.kind
        ));
    }
    Ok(())
}

fn segment_char(c: char) -> bool {
    c != '.'
}

/// `template` with each `{...}` standing for one or more characters accepted by `ok`.
fn matches(template: &str, text: &str, ok: fn(char) -> bool) -> bool {
    match template.find('{') {
        None => template == text,
        Some(open) => {
            let Some(rest) = text.strip_prefix(&template[..open]) else {
                return false;
            };
            let Some(close) = template[open..].find('}') else {
                return false;
            };
            let after = &template[open + close + 1..];
            // Try every non-empty run of acceptable characters (templates are short).
            for (i, c) in rest.char_indices() {
                if !ok(c) {
                    break;
                }
                if matches(after, &rest[i + c.len_utf8()..], ok) {
                    return true;
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn event(name: &str, key: &str, acl: &str, tenant: Option<Uuid>, target: Target) -> Event {
        Event::for_test(name, key, acl, tenant, target)
    }

    #[test]
    fn templates_match_one_segment_per_placeholder() {
        let seg = segment_char;
        assert!(!matches("calls.{id}.created", "calls.1234.5678.created", seg));
        assert!(matches("calls.{id}.created", "calls.12__DOT__34.created", seg));
        assert!(!matches("calls.{id}.created", "calls..created", seg));
        assert!(matches("a.{x}.b.{y}", "a.1.b.2", seg));
        assert!(!matches("a.{x}.b.{y}", "a.1.b.", seg));
        assert!(matches("plain", "plain", seg) && !matches("plain", "plainer", seg));
    }

    #[test]
    fn names_are_unique_and_found() {
        let mut names: Vec<_> = EVENTS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        assert_eq!(
            find("users_services_dnd_updated").map(|s| s.name),
            Some("users_services_{service_name}_updated")
        );
        assert!(find("users_services__updated").is_none());
        assert!(find("call_createdd").is_none());
    }

    #[test]
    fn checks_key_acl_and_addressing() {
        let (t, u) = (Some(Uuid::new_v4()), Uuid::new_v4());
        let acl = format!("events.calls.{u}");
        assert_eq!(
            check(&event(
                "call_created",
                "calls.call.created",
                &acl,
                t,
                Target::Users(vec![u])
            )),
            Ok(())
        );
        // Wrong key, wrong ACL, wrong addressing, no tenant, unknown name.
        assert!(check(&event("call_created", "calls.created", &acl, t, Target::Users(vec![u]))).is_err());
        assert!(check(&event(
            "call_created",
            "calls.call.created",
            "events.calls",
            t,
            Target::Users(vec![u])
        ))
        .is_err());
        assert!(check(&event("call_created", "calls.call.created", &acl, t, Target::Tenant)).is_err());
        assert!(check(&event(
            "call_created",
            "calls.call.created",
            &acl,
            None,
            Target::Users(vec![u])
        ))
        .is_err());
        assert!(check(&event(
            "call_creatd",
            "calls.call.created",
            &acl,
            t,
            Target::Users(vec![u])
        ))
        .is_err());
        // Default ACL: events.<routing key>.
        let key = format!("chatd.users.{u}.presences.updated");
        let ok = event(
            "chatd_presence_updated",
            &key,
            &format!("events.{key}"),
            t,
            Target::Tenant,
        );
        assert_eq!(check(&ok), Ok(()));
        let service = event(
            "sip_transport_created",
            "config.sip.transports.created",
            "events.config.sip.transports.created",
            None,
            Target::Service,
        );
        assert_eq!(check(&service), Ok(()));
    }

    /// Our table against upstream's catalog, when the reference material is next to the
    /// repository (it is not in a fresh clone).
    #[test]
    fn table_agrees_with_the_upstream_catalog() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/api/events-catalog.md");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipped: {} is not here", path.display());
            return;
        };
        let mut upstream = HashMap::new();
        for line in text.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| name")) {
            let cols: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            if cols.len() >= 4 {
                let name = cols[0].replace("wazo", "accent");
                let key = cols[1].trim_matches('`').replace("wazo", "accent");
                upstream.insert(name, (key, cols[2].trim_matches('`').to_string(), cols[3].to_string()));
            }
        }
        for spec in EVENTS {
            let (key, acl, kind) = upstream
                .get(spec.name)
                .unwrap_or_else(|| panic!("{} not upstream", spec.name));
            assert_eq!(spec.routing_key, key, "{}", spec.name);
            assert_eq!(spec.acl.unwrap_or(""), acl, "{}", spec.name);
            let expected = match kind.as_str() {
                "ServiceEvent" => vec![Service],
                "TenantEvent" | "_BaseUserEvent" => vec![Tenant],
                "UserEvent" => vec![User, UserElseTenant],
                "MultiUserEvent" => vec![Users],
                other => panic!("unknown kind {other}"),
            };
            assert!(
                expected.contains(&spec.kind),
                "{}: {:?} vs {kind}",
                spec.name,
                spec.kind
            );
        }
    }
}
