//! What the templates see: the confd store flattened into plain data, loaded
//! in one read transaction with a few set-based queries (one per table, never
//! one per user) so a render never mixes two states and stays fast with
//! thousands of users. Each resource that reaches Asterisk adds its part here.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::pjsip::{self, PjsipSection};
use super::routing::{self, Users};
use crate::confd::contexts::{self, Context};
use crate::confd::endpoints_sip::{self, EndpointSip};
use crate::confd::resource;
use crate::confd::sip_transports::{self, Transport};
use crate::confd::voicemails::{self, Voicemail};
use crate::confd::{asterisk_files, endpoints_custom, extensions, lines};

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub contexts: Vec<DialContext>,
    /// The API-edited file sections by `<file>_<section>` (`pjsip_global`,
    /// `features_featuremap`...), each a list of lines.
    pub sections: BTreeMap<String, Vec<Opt>>,
    pub transports: Vec<PjsipSection>,
    pub sip_templates: Vec<PjsipSection>,
    /// The sections of every line's SIP endpoint, line by line.
    pub sip_endpoints: Vec<PjsipSection>,
    /// The sections of every trunk's SIP endpoint (with identify/registration).
    pub sip_trunks: Vec<PjsipSection>,
    pub voicemail_contexts: Vec<VoicemailContext>,
    pub parking_lots: Vec<super::parking::ParkingLotSection>,
    /// Every conference's ConfBridge profiles.
    pub conferences: Vec<super::conferences::ConferenceProfiles>,
    /// accentd's own Stasis application (config `ari.app`), where switchboard
    /// calls and the calls calld bridges itself (`accentd-stasis`) go.
    pub stasis_app: String,
}

impl Default for Model {
    /// Nothing provisioned: every file section present and empty.
    fn default() -> Model {
        Model {
            contexts: Vec::new(),
            sections: asterisk_files::SECTIONS
                .iter()
                .map(|s| (format!("{}_{}", s.file, s.section), Vec::new()))
                .collect(),
            transports: Vec::new(),
            sip_templates: Vec::new(),
            sip_endpoints: Vec::new(),
            sip_trunks: Vec::new(),
            voicemail_contexts: Vec::new(),
            parking_lots: Vec::new(),
            conferences: Vec::new(),
            stasis_app: "accentd".into(),
        }
    }
}

/// One `key = value` line. Generated values have `;` escaped; values from
/// the API were checked when written (no line break, no `;`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Opt {
    pub key: String,
    pub value: String,
}

impl Opt {
    pub fn new(key: &str, value: &str) -> Opt {
        Opt {
            key: key.to_string(),
            value: conf_value(value),
        }
    }
}

/// A value safe on one configuration line: no line break, `;` escaped.
pub fn conf_value(v: &str) -> String {
    if !v.contains(|c: char| c == ';' || c.is_control()) {
        return v.to_string();
    }
    v.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| if c == ';' { vec!['\\', ';'] } else { vec![c] })
        .collect()
}

/// Percent-encodes what could end a dialplan argument or an event's
/// `key: value` (call-logd decodes it): anything but letters, digits, space, `.`, `_`, `-`.
pub fn dialplan_text(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b" ._-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct DialContext {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub includes: Vec<String>,
    pub extensions: Vec<DialExtension>,
}

/// One routed extension: its hint, then `exten => <exten>,1,<first action>`
/// and `same => n,<action>` for the others.
#[derive(Debug, Clone, Serialize)]
pub struct DialExtension {
    pub exten: String,
    pub hint: Option<String>,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VoicemailContext {
    pub name: String,
    pub mailboxes: Vec<Mailbox>,
}

/// `<number> => <password>,<name>,<email>,<pager>,<options>`.
#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    pub number: String,
    pub password: String,
    pub name: String,
    pub email: String,
    pub pager: String,
    pub options: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored {kind} {id} is unreadable: {message}")]
    Corrupt {
        kind: &'static str,
        id: String,
        message: String,
    },
}

/// Decodes a stored document.
pub(super) fn decode<T: DeserializeOwned>(kind: &'static str, id: impl ToString, doc: &str) -> Result<T, ModelError> {
    let corrupt = |message: String| ModelError::Corrupt {
        kind,
        id: id.to_string(),
        message,
    };
    let map = serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))?;
    resource::from_map(map).map_err(|e| corrupt(e.to_string()))
}

/// `(id, uuid, tenant, doc)` of every row of `table`, decoded.
pub(super) fn rows<T: DeserializeOwned>(
    c: &Connection,
    kind: &'static str,
    table: &str,
    order: &str,
) -> Result<Vec<(i64, Uuid, Uuid, T)>, ModelError> {
    let mut stmt = c.prepare(&format!(
        "SELECT id, uuid, tenant_uuid, doc FROM {table} ORDER BY {order}"
    ))?;
    let raw: Vec<(i64, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    raw.into_iter()
        .map(|(id, uuid, tenant, doc)| {
            let parse = |s: &str| {
                Uuid::parse_str(s).map_err(|e| ModelError::Corrupt {
                    kind,
                    id: id.to_string(),
                    message: e.to_string(),
                })
            };
            Ok((id, parse(&uuid)?, parse(&tenant)?, decode(kind, id, &doc)?))
        })
        .collect()
}

/// `(id, text)` rows of a two-column query: an owner id and a stored document.
pub(super) fn pairs(c: &Connection, sql: &str) -> Result<Vec<(i64, String)>, ModelError> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A line with what the dialplan and pjsip.conf need of it.
pub struct LineInfo {
    pub id: i64,
    pub tenant: Uuid,
    pub line: lines::Line,
    /// What the dialplan dials: `PJSIP/<name>`, a custom interface.
    pub interface: Option<String>,
    pub sip: Option<EndpointSip>,
    /// `(exten, context)` in association order (the first is the main one).
    pub extensions: Vec<(String, String)>,
}

impl Model {
    pub fn load(c: &Connection) -> Result<Model, ModelError> {
        Model::load_for(c, "accentd")
    }

    /// [`Model::load`] for accentd's Stasis application `stasis_app`, which
    /// the dialplan of switchboard incalls names.
    pub fn load_for(c: &Connection, stasis_app: &str) -> Result<Model, ModelError> {
        let mut model = Model {
            stasis_app: stasis_app.to_string(),
            ..Model::default()
        };
        model.load_contexts(c)?;
        model.load_sections(c)?;
        let transports: Vec<(Uuid, Transport)> = rows(c, "transport", sip_transports::TABLE, "name")?
            .into_iter()
            .map(|(_, u, _, t)| (u, t))
            .collect();
        let templates: Vec<(Uuid, EndpointSip)> = rows(c, "SIP template", endpoints_sip::TEMPLATE_TABLE, "id")?
            .into_iter()
            .map(|(_, u, _, t)| (u, t))
            .collect();
        let templates = pjsip::Templates::new(templates, &transports);
        model.transports = pjsip::transport_sections(&transports);
        model.sip_templates = templates.sections();
        let lines = load_lines(c)?;
        let users = Users::load(c)?;
        for l in &lines {
            if let Some(e) = &l.sip {
                let mut generated = line_endpoint_options(l);
                if let Some(u) = users.owner(l.id) {
                    generated.extend(routing::user_endpoint_options(u));
                }
                model.sip_endpoints.extend(templates.line_sections(e, generated));
            }
        }
        let (trunk_sections, trunk_dials) = routing::load_trunks(c, &templates)?;
        model.sip_trunks = trunk_sections;
        model.add_line_extensions(&lines, &users);
        model.add_incalls(c, &lines, &users)?;
        model.add_outcalls(c, &trunk_dials)?;
        model.add_features(c)?;
        model.add_conferences(c)?;
        for ctx in &mut model.contexts {
            // Stable: a context's extensions sorted, each kind in load order.
            ctx.extensions.sort_by(|a, b| a.exten.cmp(&b.exten));
        }
        model.load_voicemails(c)?;
        model.parking_lots = super::parking::load(c)?;
        Ok(model)
    }

    fn load_contexts(&mut self, c: &Connection) -> Result<(), ModelError> {
        let mut includes: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut inc = c.prepare(
            "SELECT i.context_id, c.name FROM confd_context_include i JOIN confd_context c ON c.id = i.included_id \
             ORDER BY i.context_id, i.position",
        )?;
        for r in inc.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (id, name) = r?;
            includes.entry(id).or_default().push(name);
        }
        for (id, _, _, ctx) in rows::<Context>(c, "context", contexts::TABLE, "name")? {
            if !ctx.enabled {
                continue;
            }
            self.contexts.push(DialContext {
                name: ctx.name,
                label: ctx.label.replace(['\n', '\r'], " "),
                kind: ctx.kind.as_str().to_string(),
                includes: includes.remove(&id).unwrap_or_default(),
                extensions: Vec::new(),
            });
        }
        // An include of a disabled (not rendered) context would not load.
        let rendered: std::collections::BTreeSet<String> = self.contexts.iter().map(|c| c.name.clone()).collect();
        for ctx in &mut self.contexts {
            ctx.includes.retain(|i| rendered.contains(i));
        }
        Ok(())
    }

    fn load_sections(&mut self, c: &Connection) -> Result<(), ModelError> {
        let all = asterisk_files::load_all(c).map_err(|e| ModelError::Corrupt {
            kind: "setting",
            id: "asterisk".into(),
            message: e.to_string(),
        })?;
        for (s, stored) in all {
            let lines = stored.lines().iter().map(|(k, v)| Opt::new(k, v)).collect();
            self.sections.insert(format!("{}_{}", s.file, s.section), lines);
        }
        Ok(())
    }

    /// The context named `name`, if rendered.
    pub fn context_mut(&mut self, name: &str) -> Option<&mut DialContext> {
        self.contexts.iter_mut().find(|c| c.name == name)
    }

    fn load_voicemails(&mut self, c: &Connection) -> Result<(), ModelError> {
        let mut by_context: BTreeMap<String, Vec<Mailbox>> = BTreeMap::new();
        for (_, _, _, vm) in rows::<Voicemail>(c, "voicemail", voicemails::TABLE, "context, number")? {
            if !vm.enabled {
                continue;
            }
            let mut options: Vec<String> = Vec::new();
            if let Some(a) = vm.attach_audio {
                options.push(format!("attach={}", if a { "yes" } else { "no" }));
            }
            if vm.delete_messages {
                options.push("delete=yes".into());
            }
            if let Some(tz) = &vm.timezone {
                options.push(format!("tz={tz}"));
            }
            if let Some(m) = vm.max_messages {
                options.push(format!("maxmsg={m}"));
            }
            options.extend(vm.options.iter().map(|(k, v)| format!("{k}={v}")));
            by_context.entry(vm.context.clone()).or_default().push(Mailbox {
                number: vm.number,
                password: vm.password.unwrap_or_default(),
                name: conf_value(&vm.name),
                email: vm.email.unwrap_or_default(),
                pager: vm.pager.unwrap_or_default(),
                options: conf_value(&options.join("|")),
            });
        }
        self.voicemail_contexts = by_context
            .into_iter()
            .map(|(name, mailboxes)| VoicemailContext { name, mailboxes })
            .collect();
        Ok(())
    }
}

/// What accentd adds to a line's endpoint section.
fn line_endpoint_options(l: &LineInfo) -> Vec<Opt> {
    let mut out = vec![Opt::new("context", &l.line.context)];
    if let Some(name) = &l.line.caller_id_name {
        let num = l
            .line
            .caller_id_num
            .as_deref()
            .map(|n| format!(" <{n}>"))
            .unwrap_or_default();
        out.push(Opt::new("callerid", &format!("\"{name}\"{num}")));
    }
    out.push(Opt::new("set_var", &format!("ACCENT_LINE_ID={}", l.id)));
    out.push(Opt::new("set_var", &format!("ACCENT_TENANT_UUID={}", l.tenant)));
    out
}

/// Every line with its endpoint and extensions: three queries.
pub fn load_lines(c: &Connection) -> Result<Vec<LineInfo>, ModelError> {
    let mut out: Vec<LineInfo> = Vec::new();
    let mut at: BTreeMap<i64, usize> = BTreeMap::new();
    for (id, _, tenant, line) in rows::<lines::Line>(c, "line", lines::TABLE, "id")? {
        at.insert(id, out.len());
        out.push(LineInfo {
            id,
            tenant,
            line,
            interface: None,
            sip: None,
            extensions: Vec::new(),
        });
    }
    let sip = pairs(
        c,
        &format!(
            "SELECT le.line_id, e.doc FROM confd_line_endpoint le JOIN {} e ON e.id = le.sip_id",
            endpoints_sip::TABLE
        ),
    )?;
    for (line_id, doc) in sip {
        let e: EndpointSip = decode("SIP endpoint", line_id, &doc)?;
        if let Some(l) = at.get(&line_id).and_then(|&i| out.get_mut(i)) {
            l.interface = Some(format!("PJSIP/{}", e.name));
            l.sip = Some(e);
        }
    }
    let custom = pairs(
        c,
        &format!(
            "SELECT le.line_id, e.doc FROM confd_line_endpoint le JOIN {} e ON e.id = le.custom_id",
            endpoints_custom::TABLE
        ),
    )?;
    for (line_id, doc) in custom {
        let e: endpoints_custom::EndpointCustom = decode("custom endpoint", line_id, &doc)?;
        if let Some(l) = at.get(&line_id).and_then(|&i| out.get_mut(i)) {
            if e.enabled {
                l.interface = Some(e.interface);
            }
        }
    }
    let exts = pairs(
        c,
        &format!(
            "SELECT le.line_id, x.doc FROM confd_line_extension le JOIN {} x ON x.id = le.extension_id \
         ORDER BY le.line_id, le.position",
            extensions::TABLE
        ),
    )?;
    for (line_id, doc) in exts {
        let x: extensions::Extension = decode("extension", line_id, &doc)?;
        if !x.is_enabled() {
            continue;
        }
        if let Some(l) = at.get(&line_id).and_then(|&i| out.get_mut(i)) {
            l.extensions.push((x.exten, x.context));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_on_their_line() {
        assert_eq!(conf_value("a;b\nc"), "a\\;bc");
        assert_eq!(conf_value("plain"), "plain");
        assert_eq!(dialplan_text("Doe, John (x)$"), "Doe%2C John %28x%29%24");
    }
}
