//! The Asterisk file sections confd edits as a whole (`/asterisk/<file>/<section>`):
//! which sections exist, the body shape of each, their defaults, and the
//! checks that keep a client's keys and values from breaking the file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::confd::options::{self, KeyValue};
use crate::confd::reload::Reload;

/// The body shape of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"options": {"k": "v"}}`.
    Options,
    /// `{"options": {...}, "ordered_options": [["k", "v"], ...]}` (repeatable keys).
    OrderedOptions,
    /// `{"items": [{"name", "timezone", "message"}]}` (voicemail.conf `[zonemessages]`).
    ZoneMessages,
    /// `{"items": [{"ip_address", "netmask", "limit"}]}` (iax.conf `[callnumberlimits]`).
    CallNumberLimits,
}

/// One editable section.
#[derive(Debug, Clone, Copy)]
pub struct FileSection {
    /// `["asterisk", <file>, <section>]`.
    pub path: &'static [&'static str],
    pub file: &'static str,
    pub section: &'static str,
    pub shape: Shape,
    pub reload: Reload,
    /// Upstream's event name (`pjsip_global_updated`, `features_general_edited`...).
    pub event: &'static str,
    pub routing_key: &'static str,
    /// What an install starts with (`[[key, value]]`).
    pub defaults: &'static [(&'static str, &'static str)],
}

impl FileSection {
    /// The `confd_setting` key it is stored under.
    pub fn key(&self) -> String {
        format!("asterisk.{}.{}", self.file, self.section)
    }

    /// `confd.asterisk.<file>.<section>.<action>`.
    pub fn acl(&self, action: &str) -> String {
        format!("confd.asterisk.{}.{}.{action}", self.file, self.section)
    }
}

macro_rules! section {
    ($file:literal, $section:literal, $shape:ident, $reload:ident, $verb:literal, $defaults:expr) => {
        FileSection {
            path: &["asterisk", $file, $section],
            file: $file,
            section: $section,
            shape: Shape::$shape,
            reload: Reload::$reload,
            event: concat!($file, "_", $section, "_", $verb),
            routing_key: concat!("config.", $file, "_", $section, ".", $verb),
            defaults: $defaults,
        }
    };
}

/// Every section, as upstream's API lists them.
pub const SECTIONS: &[FileSection] = &[
    section!(
        "pjsip",
        "global",
        Options,
        Pjsip,
        "updated",
        &[
            ("user_agent", "Accent PBX"),
            ("endpoint_identifier_order", "auth_username,username,ip,header"),
        ]
    ),
    section!("pjsip", "system", Options, Pjsip, "updated", &[]),
    section!(
        "voicemail",
        "general",
        Options,
        Voicemail,
        "edited",
        &[
            ("format", "wav"),
            ("serveremail", "accent"),
            ("maxmsg", "100"),
            ("maxsecs", "0"),
            ("minsecs", "0"),
            ("maxlogins", "3"),
            ("attach", "yes"),
            ("saycid", "no"),
        ]
    ),
    section!("voicemail", "zonemessages", ZoneMessages, Voicemail, "edited", &[]),
    section!(
        "features",
        "general",
        Options,
        Features,
        "edited",
        &[("transferdigittimeout", "3"), ("atxfernoanswertimeout", "15")]
    ),
    section!(
        "features",
        "featuremap",
        Options,
        Features,
        "edited",
        &[
            ("blindxfer", "#1"),
            ("atxfer", "*2"),
            ("disconnect", "*0"),
            ("automixmon", "*3"),
        ]
    ),
    section!("features", "applicationmap", Options, Features, "edited", &[]),
    section!(
        "confbridge",
        "accent_default_bridge",
        Options,
        Confbridge,
        "edited",
        &[("max_members", "50")]
    ),
    section!(
        "confbridge",
        "accent_default_user",
        Options,
        Confbridge,
        "edited",
        &[("dsp_drop_silence", "yes")]
    ),
    section!(
        "iax",
        "general",
        OrderedOptions,
        Iax,
        "edited",
        &[("bindport", "4569"), ("bindaddr", "0.0.0.0")]
    ),
    section!("iax", "callnumberlimits", CallNumberLimits, Iax, "edited", &[]),
];

/// The section of `file`/`section`, if the API has it.
pub fn find(file: &str, section: &str) -> Option<&'static FileSection> {
    SECTIONS.iter().find(|s| s.file == file && s.section == section)
}

/// A section's stored content: ordered `[key, value]` lines (`Options`,
/// `OrderedOptions`) or items (the two item shapes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    #[serde(default)]
    pub options: Vec<KeyValue>,
    #[serde(default)]
    pub ordered_options: Vec<KeyValue>,
    #[serde(default)]
    pub zonemessages: Vec<ZoneMessage>,
    #[serde(default)]
    pub callnumberlimits: Vec<CallNumberLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneMessage {
    pub name: String,
    pub timezone: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallNumberLimit {
    pub ip_address: String,
    pub netmask: String,
    pub limit: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsBody {
    options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderedBody {
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default)]
    ordered_options: Vec<KeyValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemsBody<T> {
    items: Vec<T>,
}

impl Stored {
    pub fn defaults(s: &FileSection) -> Stored {
        Stored {
            options: s.defaults.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Stored::default()
        }
    }

    /// Parses and checks a PUT body (the whole section is replaced).
    pub fn from_body(s: &FileSection, body: &[u8]) -> Result<Stored, ApiError> {
        let mut out = Stored::default();
        match s.shape {
            Shape::Options => {
                let b: OptionsBody = parse(body)?;
                out.options = b.options.into_iter().collect();
            }
            Shape::OrderedOptions => {
                let b: OrderedBody = parse(body)?;
                out.options = b.options.into_iter().collect();
                out.ordered_options = b.ordered_options;
            }
            Shape::ZoneMessages => out.zonemessages = parse::<ItemsBody<ZoneMessage>>(body)?.items,
            Shape::CallNumberLimits => out.callnumberlimits = parse::<ItemsBody<CallNumberLimit>>(body)?.items,
        }
        out.validate()?;
        Ok(out)
    }

    fn validate(&self) -> Result<(), ApiError> {
        options::validate("options", &self.options, None)?;
        options::validate("ordered_options", &self.ordered_options, None)?;
        for (i, z) in self.zonemessages.iter().enumerate() {
            let f = |name: &str| format!("items[{i}].{name}");
            if !valid_word(&z.name, b"_-") {
                return Err(ApiError::invalid_field(
                    &f("name"),
                    "Letters, digits, '_' and '-' only (1 to 128).",
                ));
            }
            if !valid_word(&z.timezone, b"_-/+") {
                return Err(ApiError::invalid_field(
                    &f("timezone"),
                    "A time zone name such as Europe/Paris.",
                ));
            }
            if !options::valid_value(&z.message) || z.message.contains('|') {
                return Err(ApiError::invalid_field(
                    &f("message"),
                    "No line break, control character, ';', '|' or brackets.",
                ));
            }
        }
        for (i, l) in self.callnumberlimits.iter().enumerate() {
            let f = |name: &str| format!("items[{i}].{name}");
            if l.ip_address.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(ApiError::invalid_field(&f("ip_address"), "Not a valid IPv4 address."));
            }
            if l.netmask.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(ApiError::invalid_field(&f("netmask"), "Not a valid IPv4 netmask."));
            }
            if l.limit.is_empty() || l.limit.len() > 9 || !l.limit.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid_field(&f("limit"), "Not a valid integer."));
            }
        }
        Ok(())
    }

    /// The API object of `s`.
    pub fn to_api(&self, s: &FileSection) -> Value {
        let object =
            |kv: &[KeyValue]| Value::Object(kv.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect());
        match s.shape {
            Shape::Options => json!({ "options": object(&self.options) }),
            Shape::OrderedOptions => json!({
                "options": object(&self.options),
                "ordered_options": self.ordered_options,
            }),
            Shape::ZoneMessages => json!({ "items": self.zonemessages }),
            Shape::CallNumberLimits => json!({ "items": self.callnumberlimits }),
        }
    }

    /// Every line of the section, in file order: `(key, value)`.
    pub fn lines(&self) -> Vec<KeyValue> {
        let mut out: Vec<KeyValue> = self.options.iter().chain(&self.ordered_options).cloned().collect();
        out.extend(
            self.zonemessages
                .iter()
                .map(|z| (z.name.clone(), format!("{}|{}", z.timezone, z.message))),
        );
        out.extend(
            self.callnumberlimits
                .iter()
                .map(|l| (format!("{}/{}", l.ip_address, l.netmask), l.limit.clone())),
        );
        out
    }
}

fn valid_word(s: &str, extra: &[u8]) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let map: serde_json::Map<String, Value> = crate::api::body::parse_json_object(body)?;
    crate::confd::resource::from_map(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(file: &str, section: &str, body: Value) -> Result<Stored, ApiError> {
        let s = find(file, section).expect("section");
        Stored::from_body(s, body.to_string().as_bytes())
    }

    fn field_of(err: ApiError) -> String {
        err.body().to_string()
    }

    #[test]
    fn names_and_keys() {
        let s = find("pjsip", "global").expect("global");
        assert_eq!(s.event, "pjsip_global_updated");
        assert_eq!(s.routing_key, "config.pjsip_global.updated");
        assert_eq!(s.acl("read"), "confd.asterisk.pjsip.global.read");
        let f = find("features", "featuremap").expect("featuremap");
        assert_eq!(f.event, "features_featuremap_edited");
        assert_eq!(f.key(), "asterisk.features.featuremap");
        assert!(find("pjsip", "nope").is_none());
    }

    #[test]
    fn bodies_per_shape() {
        let got = put("features", "general", json!({"options": {"b": "2", "a": "1"}})).expect("ok");
        assert_eq!(got.lines(), vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        let got = put(
            "iax",
            "general",
            json!({"options": {"a": "1"}, "ordered_options": [["allow", "ulaw"], ["allow", "alaw"]]}),
        )
        .expect("ok");
        assert_eq!(got.lines().len(), 3);
        let got = put(
            "voicemail",
            "zonemessages",
            json!({"items": [{"name": "eu-fr", "timezone": "Europe/Paris", "message": "'vm-received' q 'digits/at' kM"}]}),
        )
        .expect("ok");
        assert_eq!(got.lines()[0].1, "Europe/Paris|'vm-received' q 'digits/at' kM");
        let got = put(
            "iax",
            "callnumberlimits",
            json!({"items": [{"ip_address": "10.0.0.1", "netmask": "255.255.255.255", "limit": "10"}]}),
        )
        .expect("ok");
        assert_eq!(got.lines()[0], ("10.0.0.1/255.255.255.255".into(), "10".into()));
    }

    #[test]
    fn what_would_break_the_file_is_refused_naming_the_field() {
        for (file, section, body, field) in [
            (
                "pjsip",
                "global",
                json!({"options": {"user_agent": "a\nb"}}),
                "options[0]",
            ),
            ("pjsip", "global", json!({"options": {"x": "[evil]"}}), "options[0]"),
            ("pjsip", "global", json!({"options": {"x": "a;b"}}), "options[0]"),
            ("pjsip", "global", json!({"options": {"a b": "1"}}), "options[0]"),
            ("pjsip", "global", json!({"options": {"type": "global"}}), "options[0]"),
            ("pjsip", "global", json!({"options": {"x": 1}}), "options"),
            ("pjsip", "global", json!({}), "options"),
            ("pjsip", "global", json!({"options": {}, "other": 1}), "other"),
            (
                "iax",
                "general",
                json!({"ordered_options": [["a", "[x"]]}),
                "ordered_options[0]",
            ),
            (
                "voicemail",
                "zonemessages",
                json!({"items": [{"name": "a]", "timezone": "UTC"}]}),
                "items[0].name",
            ),
            (
                "voicemail",
                "zonemessages",
                json!({"items": [{"name": "a", "timezone": "U|TC"}]}),
                "items[0].timezone",
            ),
            (
                "voicemail",
                "zonemessages",
                json!({"items": [{"name": "a", "timezone": "UTC", "message": "x\ny"}]}),
                "items[0].message",
            ),
            (
                "iax",
                "callnumberlimits",
                json!({"items": [{"ip_address": "x", "netmask": "255.0.0.0", "limit": "1"}]}),
                "items[0].ip_address",
            ),
            (
                "iax",
                "callnumberlimits",
                json!({"items": [{"ip_address": "1.2.3.4", "netmask": "255.0.0.0", "limit": "1\n"}]}),
                "items[0].limit",
            ),
        ] {
            let err = put(file, section, body.clone()).expect_err("refused");
            let text = field_of(err);
            assert!(text.contains(field), "{body}: {text}");
        }
    }
}
