//! The routed part of the dialplan: users' extensions (through the static
//! `accent-user` subroutine), lines without users, incalls (DIDs) and
//! outcalls (patterns dialled out through their trunks in order), plus the
//! trunks' pjsip sections. Loaded with one query per table.
//!
//! Every generated argument either comes from a validated field or goes
//! through [`arg`], so nothing a client stored can end a dialplan argument
//! list or inject a `${...}` expression.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::model::{dialplan_text, pairs, rows, DialExtension, LineInfo, Model, ModelError, Opt};
use super::pjsip::{PjsipSection, Templates};
use crate::confd::endpoints_custom::EndpointCustom;
use crate::confd::endpoints_sip::{self, EndpointSip};
use crate::confd::incalls::model::{CallerIdMode, Destination, Greeting, HangupCause};
use crate::confd::incalls::{self, Incall};
use crate::confd::outcalls::{self, Outcall};
use crate::confd::trunks::{self, Trunk};
use crate::confd::{endpoints_custom, extensions, switchboards, users, voicemails};

/// Ring time of a user without `ring_seconds`, as upstream.
const DEFAULT_RING_SECONDS: i64 = 30;

/// Text safe as one dialplan argument: the characters that end an argument,
/// open an expression or a comment (`,()|$[]{};\"` and control characters) are dropped.
pub fn arg(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_control() && !",()|$[]{};\\\"".contains(*c))
        .collect()
}

/// A user as its extensions and its lines' endpoints need it.
#[derive(Debug, Clone)]
pub struct UserInfo {
    pub id: i64,
    pub uuid: Uuid,
    pub tenant: Uuid,
    /// `firstname lastname`.
    pub name: String,
    pub ring_seconds: i64,
    /// `number@context` of its enabled voicemail.
    pub voicemail: Option<String>,
    /// Line ids, main line first.
    pub lines: Vec<i64>,
    pub outgoing_caller_id: Option<String>,
}

/// Users and who owns which line.
#[derive(Debug, Default)]
pub struct Users {
    pub by_id: BTreeMap<i64, UserInfo>,
    /// line id -> its main user's id.
    pub line_owner: BTreeMap<i64, i64>,
}

impl Users {
    pub fn load(c: &Connection) -> Result<Users, ModelError> {
        let mut by_id = BTreeMap::new();
        for (id, uuid, tenant, doc) in rows::<Map<String, Value>>(c, "user", users::TABLE, "id")? {
            let text = |k: &str| {
                doc.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            let name = [text("firstname"), text("lastname")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            by_id.insert(
                id,
                UserInfo {
                    id,
                    uuid,
                    tenant,
                    name,
                    ring_seconds: doc
                        .get("ring_seconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(DEFAULT_RING_SECONDS),
                    voicemail: None,
                    lines: Vec::new(),
                    outgoing_caller_id: doc
                        .get("outgoing_caller_id")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty() && *s != "default")
                        .map(str::to_owned),
                },
            );
        }
        let mut line_owner = BTreeMap::new();
        let mut stmt =
            c.prepare("SELECT user_id, line_id, main_user FROM confd_user_line ORDER BY user_id, position, line_id")?;
        let links: Vec<(i64, i64, bool)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (user_id, line_id, main) in links {
            if let Some(u) = by_id.get_mut(&user_id) {
                u.lines.push(line_id);
            }
            if main {
                line_owner.insert(line_id, user_id);
            }
        }
        let vms = pairs(
            c,
            &format!(
                "SELECT uv.user_id, v.doc FROM confd_user_voicemail uv JOIN {} v ON v.id = uv.voicemail_id",
                voicemails::TABLE
            ),
        )?;
        for (user_id, doc) in vms {
            let vm: voicemails::Voicemail = super::model::decode("voicemail", user_id, &doc)?;
            if let (true, Some(u)) = (vm.enabled, by_id.get_mut(&user_id)) {
                u.voicemail = Some(format!("{}@{}", vm.number, vm.context));
            }
        }
        Ok(Users { by_id, line_owner })
    }

    /// The main user of a line.
    pub fn owner(&self, line_id: i64) -> Option<&UserInfo> {
        self.line_owner.get(&line_id).and_then(|u| self.by_id.get(u))
    }
}

/// What a user's line endpoint carries for the dialplan: who is calling.
pub fn user_endpoint_options(u: &UserInfo) -> Vec<Opt> {
    let mut out = vec![
        Opt::new("set_var", &format!("ACCENT_USERID={}", u.id)),
        Opt::new("set_var", &format!("ACCENT_USERUUID={}", u.uuid)),
    ];
    if let Some(vm) = &u.voicemail {
        out.push(Opt::new("set_var", &format!("ACCENT_VOICEMAIL={vm}")));
    }
    if let Some(cid) = &u.outgoing_caller_id {
        out.push(Opt::new("set_var", &format!("ACCENT_OUTGOING_CALLERID={}", arg(cid))));
    }
    out
}

/// `PJSIP/a&PJSIP/b`: every line of the user that can ring.
fn interfaces(u: &UserInfo, lines: &BTreeMap<i64, &LineInfo>) -> String {
    u.lines
        .iter()
        .filter_map(|id| lines.get(id).and_then(|l| l.interface.as_deref()))
        .map(arg)
        .filter(|i| !i.is_empty())
        .collect::<Vec<_>>()
        .join("&")
}

/// The call to `accent-user` for `u` reached at `exten@context`.
fn user_call(u: &UserInfo, lines: &BTreeMap<i64, &LineInfo>, ring: i64, exten: &str, context: &str) -> String {
    format!(
        "GoSub(accent-user,s,1({},{},{},{},{},{},{},{},{}))",
        u.id,
        u.uuid,
        interfaces(u, lines),
        ring,
        u.voicemail.as_deref().map(arg).unwrap_or_default(),
        u.tenant,
        dialplan_text(&u.name),
        arg(exten),
        arg(context),
    )
}

/// The first extension of the user's main line: where the user is reached.
fn user_extension<'a>(u: &UserInfo, lines: &BTreeMap<i64, &'a LineInfo>) -> Option<&'a (String, String)> {
    u.lines
        .iter()
        .find_map(|id| lines.get(id).and_then(|l| l.extensions.first()))
}

impl Model {
    fn index(&self) -> BTreeMap<String, usize> {
        self.contexts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect()
    }

    fn push_extension(&mut self, index: &BTreeMap<String, usize>, context: &str, ext: DialExtension) {
        if let Some(&i) = index.get(context) {
            self.contexts[i].extensions.push(ext);
        }
    }

    /// Line extensions: the line's main user (through `accent-user`), or the
    /// line alone when nobody has it.
    pub(super) fn add_line_extensions(&mut self, lines: &[LineInfo], users: &Users) {
        let index = self.index();
        let by_id: BTreeMap<i64, &LineInfo> = lines.iter().map(|l| (l.id, l)).collect();
        for l in lines {
            let Some(interface) = &l.interface else { continue };
            for (exten, context) in &l.extensions {
                let ext = match users.owner(l.id) {
                    Some(u) => DialExtension {
                        exten: exten.clone(),
                        hint: Some(interfaces(u, &by_id)).filter(|h| !h.is_empty()),
                        actions: vec![user_call(u, &by_id, u.ring_seconds, exten, context), "Hangup()".into()],
                    },
                    None => DialExtension {
                        exten: exten.clone(),
                        hint: Some(arg(interface)),
                        actions: vec![
                            format!("GoSub(accent-line,s,1({},{}))", arg(interface), l.id),
                            "Hangup()".into(),
                        ],
                    },
                };
                self.push_extension(&index, context, ext);
            }
        }
    }

    /// Each incall's DIDs: the `ACCENT_INCALL` event call-logd reads (the
    /// tenant as extra), caller id name rewrite, preprocess subroutine,
    /// greeting, then the destination.
    pub(super) fn add_incalls(&mut self, c: &Connection, lines: &[LineInfo], users: &Users) -> Result<(), ModelError> {
        let index = self.index();
        let by_id: BTreeMap<i64, &LineInfo> = lines.iter().map(|l| (l.id, l)).collect();
        let vms: BTreeMap<i64, String> = rows::<voicemails::Voicemail>(c, "voicemail", voicemails::TABLE, "id")?
            .into_iter()
            .filter(|(_, _, _, vm)| vm.enabled)
            .map(|(id, _, _, vm)| (id, format!("{}@{}", vm.number, vm.context)))
            .collect();
        let stasis_app = self.stasis_app.clone();
        let targets = Targets {
            users,
            lines: &by_id,
            vms: &vms,
            switchboards: &load_switchboard_fallbacks(c)?,
            stasis_app: &stasis_app,
        };
        let mut dids: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
        let raw = pairs(c, &format!(
            "SELECT ie.incall_id, x.doc FROM confd_incall_extension ie JOIN {} x ON x.id = ie.extension_id ORDER BY x.id",
            extensions::TABLE
        ))?;
        for (incall_id, doc) in raw {
            let x: extensions::Extension = super::model::decode("extension", incall_id, &doc)?;
            if x.is_enabled() {
                dids.entry(incall_id).or_default().push((x.exten, x.context));
            }
        }
        for (id, _, tenant, incall) in rows::<Incall>(c, "incall", incalls::TABLE, "id")? {
            let Some(dids) = dids.remove(&id) else { continue };
            let mut actions = vec![
                format!("Set(__ACCENT_INCALL_ID={id})"),
                format!("CELGenUserEvent(ACCENT_INCALL,{tenant})"),
            ];
            if let (Some(mode), Some(name)) = (incall.caller_id_mode, incall.caller_id_name.as_deref().map(arg)) {
                actions.push(match mode {
                    CallerIdMode::Prepend => format!("Set(CALLERID(name)={name}${{CALLERID(name)}})"),
                    CallerIdMode::Overwrite => format!("Set(CALLERID(name)={name})"),
                    CallerIdMode::Append => format!("Set(CALLERID(name)=${{CALLERID(name)}}{name})"),
                });
            }
            if let Some(sub) = incall
                .preprocess_subroutine
                .as_deref()
                .map(arg)
                .filter(|s| !s.is_empty())
            {
                actions.push(format!("GoSub({sub},s,1)"));
            }
            if let Some(sound) = incall.greeting_sound.as_deref().map(arg).filter(|s| !s.is_empty()) {
                actions.push("Answer()".into());
                actions.push(format!("Playback({sound})"));
            }
            for (exten, context) in dids {
                let mut acts = actions.clone();
                acts.extend(destination_actions(&incall.destination, &targets, true));
                acts.push("Hangup()".into());
                self.push_extension(
                    &index,
                    &context,
                    DialExtension {
                        exten,
                        hint: None,
                        actions: acts,
                    },
                );
            }
        }
        Ok(())
    }

    /// Each enabled outcall's patterns in its outcall contexts: the
    /// `ACCENT_OUTCALL` event, the number rewrite, the caller id, then a
    /// `Dial` per trunk in order until one answers.
    pub(super) fn add_outcalls(&mut self, c: &Connection, trunks: &BTreeMap<i64, String>) -> Result<(), ModelError> {
        let index = self.index();
        for (id, _, _, outcall) in rows::<Outcall>(c, "outcall", outcalls::TABLE, "id")? {
            if !outcall.enabled {
                continue;
            }
            let dials: Vec<&String> = outcalls::outcall_trunks(c, id)?
                .iter()
                .filter_map(|t| trunks.get(t))
                .collect();
            for pattern in outcalls::outcall_extensions(c, id)? {
                let rewrite = &pattern.rewrite;
                let prefix = rewrite.prefix.as_deref().map(arg).unwrap_or_default();
                let exten = match pattern.exten.strip_prefix('_') {
                    Some(p) => format!("_{prefix}{p}"),
                    None => format!("{prefix}{}", pattern.exten),
                };
                let external = rewrite.external_prefix.as_deref().map(arg).unwrap_or_default();
                let mut actions = vec![
                    format!("Set(__ACCENT_OUTCALL_ID={id})"),
                    "CELGenUserEvent(ACCENT_OUTCALL,)".to_string(),
                    format!(
                        "Set(ACCENT_DSTNUM={external}${{EXTEN:{}}})",
                        rewrite.strip_digits.max(0)
                    ),
                ];
                match rewrite.caller_id.as_deref().map(arg).filter(|s| !s.is_empty()) {
                    Some(cid) => actions.push(format!("Set(CALLERID(all)={cid})")),
                    None if !outcall.internal_caller_id => {
                        actions.push(
                            "ExecIf($[\"${ACCENT_OUTGOING_CALLERID}\" = \"anonymous\"]?Set(CALLERID(pres)=prohib))"
                                .into(),
                        );
                        actions.push(
                            "ExecIf($[\"${ACCENT_OUTGOING_CALLERID}\" != \"\" & \"${ACCENT_OUTGOING_CALLERID}\" != \"anonymous\"]?Set(CALLERID(all)=${ACCENT_OUTGOING_CALLERID}))".into(),
                        );
                    }
                    None => {}
                }
                if let Some(sub) = outcall
                    .preprocess_subroutine
                    .as_deref()
                    .map(arg)
                    .filter(|s| !s.is_empty())
                {
                    actions.push(format!("GoSub({sub},s,1)"));
                }
                let timeout = outcall.ring_time.map(|t| t.to_string()).unwrap_or_default();
                for dial in &dials {
                    actions.push(format!("Dial({dial},{timeout})"));
                    // The next trunk only when this one could not take the call.
                    actions.push("ExecIf($[\"${DIALSTATUS}\" = \"ANSWER\"]?Hangup())".into());
                }
                actions.push("Hangup()".into());
                self.push_extension(
                    &index,
                    &pattern.context,
                    DialExtension {
                        exten,
                        hint: None,
                        actions,
                    },
                );
            }
        }
        Ok(())
    }
}

/// The literal start of a feature code pattern (`_*21.` -> 3): what `${EXTEN:n}` skips
/// to reach the digits the caller added.
fn literal_len(exten: &str) -> usize {
    match exten.strip_prefix('_') {
        None => exten.chars().count(),
        Some(p) => p.chars().take_while(|c| !"XZN[.!".contains(*c)).count(),
    }
}

/// The dialplan of one feature code, `None` for those not rendered yet (they need
/// resources accentd does not have: agents, groups, queues, paging, pickup groups...).
fn feature_actions(feature: &str, exten: &str) -> Option<Vec<String>> {
    let user_feature = |kind: &str, name: &str, enabled: &str, destination: &str| {
        format!("GoSub(accent-feature,s,1({kind},{name},{enabled},{destination}))")
    };
    let number = format!("${{EXTEN:{}}}", literal_len(exten));
    let first = match feature {
        "enablednd" => user_feature("service", "dnd", "toggle", ""),
        "incallfilter" => user_feature("service", "incallfilter", "toggle", ""),
        "fwdunc" => user_feature("forward", "unconditional", "1", &number),
        "fwdrna" => user_feature("forward", "noanswer", "1", &number),
        "fwdbusy" => user_feature("forward", "busy", "1", &number),
        "fwdundoall" => user_feature("forward", "all", "0", ""),
        "vmusermsg" => {
            return Some(vec![
                "ExecIf($[\"${ACCENT_VOICEMAIL}\" = \"\"]?Hangup())".into(),
                "VoiceMailMain(${ACCENT_VOICEMAIL})".into(),
                "Hangup()".into(),
            ])
        }
        _ => return None,
    };
    Some(vec![first, "Hangup()".into()])
}

impl Model {
    /// The `accent-features` context (the enabled feature codes accentd renders),
    /// included by every internal context.
    pub(super) fn add_features(&mut self, c: &Connection) -> Result<(), ModelError> {
        let mut extensions = Vec::new();
        for (feature, exten) in crate::confd::features::enabled_features(c)? {
            if let Some(actions) = feature_actions(&feature, &exten) {
                extensions.push(DialExtension {
                    exten: arg(&exten),
                    hint: None,
                    actions,
                });
            }
        }
        for ctx in &mut self.contexts {
            if ctx.kind == "internal" {
                ctx.includes.push(crate::confd::features::CONTEXT.to_string());
            }
        }
        self.contexts.push(super::model::DialContext {
            name: crate::confd::features::CONTEXT.to_string(),
            label: "Feature codes".into(),
            kind: "features".into(),
            includes: Vec::new(),
            extensions,
        });
        Ok(())
    }
}

/// What incall destinations can reach.
struct Targets<'a> {
    users: &'a Users,
    lines: &'a BTreeMap<i64, &'a LineInfo>,
    vms: &'a BTreeMap<i64, String>,
    /// Each switchboard's no-answer fallback.
    switchboards: &'a BTreeMap<Uuid, Option<Destination>>,
    stasis_app: &'a str,
}

/// Every switchboard and its no-answer fallback.
fn load_switchboard_fallbacks(c: &Connection) -> Result<BTreeMap<Uuid, Option<Destination>>, ModelError> {
    let mut out = BTreeMap::new();
    for (id, uuid, _, _) in rows::<switchboards::Switchboard>(c, "switchboard", switchboards::TABLE, "id")? {
        out.insert(uuid, switchboards::noanswer_destination(c, id)?);
    }
    Ok(out)
}

/// The actions of an incall destination. A switchboard's fallback is rendered
/// after its Stasis step (`fallback`), one level deep: calld sends the call
/// back to the dialplan when it waited too long.
fn destination_actions(d: &Destination, t: &Targets<'_>, fallback: bool) -> Vec<String> {
    let (users, lines, vms) = (t.users, t.lines, t.vms);
    match d {
        Destination::User { user_id, ring_time, .. } => {
            let Some(u) = users.by_id.get(user_id) else {
                return vec![];
            };
            let ring = ring_time.map(|t| t.round() as i64).unwrap_or(u.ring_seconds);
            let (exten, context) = user_extension(u, lines).cloned().unwrap_or_default();
            vec![user_call(u, lines, ring, &exten, &context)]
        }
        Destination::Voicemail {
            voicemail_id,
            skip_instructions,
            greeting,
        } => match vms.get(voicemail_id) {
            None => vec![],
            Some(vm) => {
                let mut opts = String::new();
                if *skip_instructions {
                    opts.push('s');
                }
                match greeting {
                    Some(Greeting::Busy) => opts.push('b'),
                    Some(Greeting::Unavailable) => opts.push('u'),
                    None => {}
                }
                vec![format!("VoiceMail({},{opts})", arg(vm))]
            }
        },
        Destination::Hangup { cause, timeout } => {
            let t = timeout.map(|t| t.to_string()).unwrap_or_default();
            vec![match cause {
                HangupCause::Normal => "Hangup(16)".to_string(),
                HangupCause::Busy => format!("Busy({t})"),
                HangupCause::Congestion => format!("Congestion({t})"),
            }]
        }
        Destination::None => vec![],
        // Checked when stored (no line break, at most 255 characters): an
        // administrator's own application line.
        Destination::Custom { command } => vec![command.replace(['\n', '\r'], " ")],
        Destination::Extension { exten, context } => vec![format!("Goto({},{},1)", arg(context), arg(exten))],
        Destination::Switchboard { switchboard_uuid } => {
            let Some(noanswer) = t.switchboards.get(switchboard_uuid) else {
                return vec![];
            };
            let mut out = vec![format!(
                "Stasis({},switchboard_queue,{switchboard_uuid})",
                arg(t.stasis_app)
            )];
            if let (true, Some(next)) = (fallback, noanswer) {
                out.extend(destination_actions(next, t, false));
            }
            out
        }
    }
}

/// Every trunk's pjsip sections and what an outcall dials through it
/// (`PJSIP/${ACCENT_DSTNUM}@<endpoint>`, `<interface>/${ACCENT_DSTNUM}`).
pub fn load_trunks(
    c: &Connection,
    templates: &Templates,
) -> Result<(Vec<PjsipSection>, BTreeMap<i64, String>), ModelError> {
    let trunks: BTreeMap<i64, (Uuid, Trunk)> = rows::<Trunk>(c, "trunk", trunks::TABLE, "id")?
        .into_iter()
        .map(|(id, _, tenant, t)| (id, (tenant, t)))
        .collect();
    let mut sections = Vec::new();
    let mut dials = BTreeMap::new();
    let sip = pairs(
        c,
        &format!(
            "SELECT te.trunk_id, e.doc FROM confd_trunk_endpoint te JOIN {} e ON e.id = te.sip_id ORDER BY te.trunk_id",
            endpoints_sip::TABLE
        ),
    )?;
    for (trunk_id, doc) in sip {
        let e: EndpointSip = super::model::decode("SIP endpoint", trunk_id, &doc)?;
        let Some((tenant, trunk)) = trunks.get(&trunk_id) else {
            continue;
        };
        let mut generated = vec![Opt::new(
            "context",
            trunk.context.as_deref().unwrap_or("accent-trunk-nowhere"),
        )];
        generated.push(Opt::new("set_var", &format!("ACCENT_TRUNK_ID={trunk_id}")));
        generated.push(Opt::new("set_var", &format!("ACCENT_TENANT_UUID={tenant}")));
        sections.extend(templates.trunk_sections(&e, generated));
        dials.insert(trunk_id, format!("PJSIP/${{ACCENT_DSTNUM}}@{}", arg(&e.name)));
    }
    let custom = pairs(
        c,
        &format!(
            "SELECT te.trunk_id, e.doc FROM confd_trunk_endpoint te JOIN {} e ON e.id = te.custom_id",
            endpoints_custom::TABLE
        ),
    )?;
    for (trunk_id, doc) in custom {
        let e: EndpointCustom = super::model::decode("custom endpoint", trunk_id, &doc)?;
        if e.enabled {
            let suffix = e.interface_suffix.as_deref().map(arg).unwrap_or_default();
            dials.insert(trunk_id, format!("{}/${{ACCENT_DSTNUM}}{suffix}", arg(&e.interface)));
        }
    }
    Ok((sections, dials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_cannot_break_out() {
        assert_eq!(arg("a,b(c)|d$e[f]{g};h\\i\"j\nk"), "abcdefghijk");
        assert_eq!(arg("PJSIP/alice-sip"), "PJSIP/alice-sip");
        assert_eq!(arg("1001@default"), "1001@default");
    }

    #[test]
    fn feature_codes_pass_the_added_digits() {
        assert_eq!(literal_len("_*21."), 3);
        assert_eq!(literal_len("_#7X."), 2);
        assert_eq!(literal_len("*25"), 3);
        let fwd = feature_actions("fwdunc", "_*21.").expect("rendered");
        assert_eq!(fwd[0], "GoSub(accent-feature,s,1(forward,unconditional,1,${EXTEN:3}))");
        assert_eq!(
            feature_actions("enablednd", "*25").expect("rendered")[0],
            "GoSub(accent-feature,s,1(service,dnd,toggle,))"
        );
        assert!(feature_actions("paging", "_*11.").is_none());
    }
}
