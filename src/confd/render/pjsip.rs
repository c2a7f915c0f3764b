//! The pjsip.conf part of the model: transports, SIP templates as Asterisk
//! templates (`(!)`, one per pjsip type, inherited by name) and the
//! `endpoint`/`auth`/`aor` sections of each line's endpoint. A line's
//! endpoint, auth and aor share the endpoint's name (different pjsip types,
//! as Asterisk allows), so a phone registering as `<name>` finds its aor.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use uuid::Uuid;

use super::model::Opt;
use crate::confd::endpoints_sip::EndpointSip;
use crate::confd::options::KeyValue;
use crate::confd::sip_transports::Transport;

/// One pjsip.conf section.
#[derive(Debug, Clone, Serialize)]
pub struct PjsipSection {
    pub name: String,
    /// `type = ...`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub template: bool,
    /// Template sections this one inherits from, in Asterisk's order (the last applies last).
    pub inherits: Vec<String>,
    pub options: Vec<Opt>,
}

/// The pjsip types a SIP template or a line's endpoint produces.
const LINE_TYPES: [&str; 3] = ["endpoint", "auth", "aor"];

fn template_section(name: &str, kind: &str) -> String {
    format!("{name}-{kind}")
}

fn opts(kv: &[KeyValue]) -> Vec<Opt> {
    kv.iter().map(|(k, v)| Opt::new(k, v)).collect()
}

fn own_options<'a>(e: &'a EndpointSip, kind: &str) -> &'a [KeyValue] {
    match kind {
        "endpoint" => &e.endpoint_section_options,
        "auth" => &e.auth_section_options,
        _ => &e.aor_section_options,
    }
}

/// The stored SIP templates, ordered so a template comes after those it inherits from.
pub struct Templates {
    by_uuid: BTreeMap<Uuid, EndpointSip>,
    order: Vec<Uuid>,
    transports: BTreeMap<Uuid, String>,
}

impl Templates {
    pub fn new(templates: Vec<(Uuid, EndpointSip)>, transports: &[(Uuid, Transport)]) -> Templates {
        let by_uuid: BTreeMap<Uuid, EndpointSip> = templates.into_iter().collect();
        let mut order = Vec::with_capacity(by_uuid.len());
        let mut done = BTreeSet::new();
        // Depth-first, parents first; the API refuses loops, `done` guards anyway.
        fn visit(u: Uuid, all: &BTreeMap<Uuid, EndpointSip>, done: &mut BTreeSet<Uuid>, order: &mut Vec<Uuid>) {
            if !done.insert(u) {
                return;
            }
            if let Some(t) = all.get(&u) {
                for parent in &t.templates {
                    visit(parent.uuid, all, done, order);
                }
                order.push(u);
            }
        }
        let mut names: Vec<(&str, Uuid)> = by_uuid.iter().map(|(u, t)| (t.name.as_str(), *u)).collect();
        names.sort();
        for (_, u) in names {
            visit(u, &by_uuid, &mut done, &mut order);
        }
        Templates {
            by_uuid,
            order,
            transports: transports.iter().map(|(u, t)| (*u, t.name.clone())).collect(),
        }
    }

    /// The template sections inherited for `kind`, Asterisk's order (the
    /// first listed template must apply last, so the list is reversed).
    fn inherits(&self, e: &EndpointSip, kind: &str) -> Vec<String> {
        e.templates
            .iter()
            .rev()
            .filter_map(|r| self.by_uuid.get(&r.uuid))
            .map(|t| template_section(&t.name, kind))
            .collect()
    }

    /// Whether `e` or a template it inherits (transitively) has `kind` options.
    fn has_options(&self, e: &EndpointSip, kind: &str, depth: usize) -> bool {
        !own_options(e, kind).is_empty()
            || (depth < 32
                && e.templates
                    .iter()
                    .filter_map(|r| self.by_uuid.get(&r.uuid))
                    .any(|t| self.has_options(t, kind, depth + 1)))
    }

    fn transport(&self, e: &EndpointSip) -> Option<&str> {
        e.transport
            .as_ref()
            .and_then(|t| self.transports.get(&t.uuid))
            .map(String::as_str)
    }

    /// Every template section, parents first.
    pub fn sections(&self) -> Vec<PjsipSection> {
        let mut out = Vec::with_capacity(self.order.len() * LINE_TYPES.len());
        for u in &self.order {
            let Some(t) = self.by_uuid.get(u) else { continue };
            for kind in LINE_TYPES {
                let mut options = Vec::new();
                if kind == "endpoint" {
                    if let Some(tr) = self.transport(t) {
                        options.push(Opt::new("transport", tr));
                    }
                }
                options.extend(opts(own_options(t, kind)));
                out.push(PjsipSection {
                    name: template_section(&t.name, kind),
                    kind,
                    template: true,
                    inherits: self.inherits(t, kind),
                    options,
                });
            }
        }
        out
    }

    /// The sections of a line's endpoint: `endpoint` (with the generated
    /// `options` first, then the endpoint's own), `auth` when it has
    /// credentials, `aor`.
    pub fn line_sections(&self, e: &EndpointSip, generated: Vec<Opt>) -> Vec<PjsipSection> {
        let has_auth = self.has_options(e, "auth", 0);
        let mut endpoint = Vec::with_capacity(generated.len() + e.endpoint_section_options.len() + 3);
        if let Some(tr) = self.transport(e) {
            endpoint.push(Opt::new("transport", tr));
        }
        endpoint.push(Opt::new("aors", &e.name));
        if has_auth {
            endpoint.push(Opt::new("auth", &e.name));
        }
        endpoint.extend(generated);
        endpoint.extend(opts(&e.endpoint_section_options));
        let mut out = vec![PjsipSection {
            name: e.name.clone(),
            kind: "endpoint",
            template: false,
            inherits: self.inherits(e, "endpoint"),
            options: endpoint,
        }];
        if has_auth {
            out.push(PjsipSection {
                name: e.name.clone(),
                kind: "auth",
                template: false,
                inherits: self.inherits(e, "auth"),
                options: opts(&e.auth_section_options),
            });
        }
        out.push(PjsipSection {
            name: e.name.clone(),
            kind: "aor",
            template: false,
            inherits: self.inherits(e, "aor"),
            options: opts(&e.aor_section_options),
        });
        out
    }
}

impl Templates {
    /// A trunk's sections: those of a line, plus its outbound auth
    /// (`<name>-outbound`), `identify` (which source addresses are the
    /// trunk) and `registration` (with its own auth, `<name>-registration`)
    /// when it has options for them.
    pub fn trunk_sections(&self, e: &EndpointSip, mut generated: Vec<Opt>) -> Vec<PjsipSection> {
        let plain = |name: String, kind: &'static str, options: Vec<Opt>| PjsipSection {
            name,
            kind,
            template: false,
            inherits: Vec::new(),
            options,
        };
        let outbound = (!e.outbound_auth_section_options.is_empty()).then(|| format!("{}-outbound", e.name));
        if let Some(name) = &outbound {
            generated.push(Opt::new("outbound_auth", name));
        }
        let mut out = self.line_sections(e, generated);
        if let Some(name) = outbound {
            out.push(plain(name, "auth", opts(&e.outbound_auth_section_options)));
        }
        if !e.identify_section_options.is_empty() {
            let mut o = vec![Opt::new("endpoint", &e.name)];
            o.extend(opts(&e.identify_section_options));
            out.push(plain(e.name.clone(), "identify", o));
        }
        if !e.registration_section_options.is_empty() {
            let mut o = Vec::new();
            if let Some(tr) = self.transport(e) {
                o.push(Opt::new("transport", tr));
            }
            let reg_auth =
                (!e.registration_outbound_auth_section_options.is_empty()).then(|| format!("{}-registration", e.name));
            if let Some(name) = &reg_auth {
                o.push(Opt::new("outbound_auth", name));
            }
            o.extend(opts(&e.registration_section_options));
            out.push(plain(e.name.clone(), "registration", o));
            if let Some(name) = reg_auth {
                out.push(plain(name, "auth", opts(&e.registration_outbound_auth_section_options)));
            }
        }
        out
    }
}

/// The transport sections.
pub fn transport_sections(transports: &[(Uuid, Transport)]) -> Vec<PjsipSection> {
    transports
        .iter()
        .map(|(_, t)| PjsipSection {
            name: t.name.clone(),
            kind: "transport",
            template: false,
            inherits: Vec::new(),
            options: opts(&t.options),
        })
        .collect()
}
