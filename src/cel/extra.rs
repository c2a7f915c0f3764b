//! The `extra` column of a CEL row, read leniently.
//!
//! Asterisk writes JSON here (`{"hangupcause":16,...}`, `{"bridge_id":...}`, and for user events
//! `{"extra":"<text after the first comma>"}`). The dialplan's user events put `key: value`
//! pairs in that text (`NUM:1002,CONTEXT:default,NAME:Bob` or `type: user, uuid: ..., name: Bob`),
//! and older rows or other backends may hold the pairs without the JSON wrapper. Real data also
//! has broken JSON: nothing here fails, it just finds less.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Extra {
    Empty,
    /// A JSON object.
    Json(Map<String, Value>),
    /// Anything else (pairs without a JSON wrapper, malformed JSON, a bare JSON scalar), as written.
    Text(String),
}

impl Extra {
    pub fn parse(raw: &str) -> Extra {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Extra::Empty;
        }
        if trimmed.starts_with('{') {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
                return Extra::Json(map);
            }
        }
        Extra::Text(trimmed.to_owned())
    }

    /// A top-level JSON value as text (numbers and booleans formatted, strings unquoted).
    pub fn get(&self, key: &str) -> Option<String> {
        match self {
            Extra::Json(map) => match map.get(key)? {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            },
            _ => None,
        }
    }

    /// The user event's text: the `extra` member of the JSON wrapper, or the raw text when there
    /// is no wrapper (or it is broken).
    pub fn user_text(&self) -> Option<&str> {
        match self {
            Extra::Empty => None,
            Extra::Json(map) => map.get("extra").and_then(Value::as_str),
            Extra::Text(text) => Some(salvage_wrapper(text)),
        }
    }

    /// The `key: value` pairs of the user event's text, keys trimmed and as written, values
    /// trimmed. A piece without a colon belongs to the value before it (a name with a comma:
    /// `name: Doe, John`).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let Some(text) = self.user_text() else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for piece in text.split(',') {
            match piece.split_once(':') {
                Some((key, value)) if !key.trim().is_empty() => {
                    out.push((key.trim().to_owned(), value.trim().to_owned()))
                }
                _ => {
                    if let Some((_, value)) = out.last_mut() {
                        value.push(',');
                        value.push_str(piece.trim_end());
                    }
                }
            }
        }
        out
    }

    /// One pair's value, the key compared without case (`NUM` and `num` alike).
    pub fn field(&self, key: &str) -> Option<String> {
        self.pairs()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }
}

/// The text inside a broken `{"extra":"...` wrapper (cut short, unescaped quotes), or the
/// whole text when there is no wrapper.
fn salvage_wrapper(text: &str) -> &str {
    let Some(rest) = text.strip_prefix('{') else {
        return text;
    };
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix("\"extra\"") else {
        return text;
    };
    let Some(rest) = rest.trim_start().strip_prefix(':') else {
        return text;
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let rest = rest.strip_suffix('}').unwrap_or(rest).trim_end();
    rest.strip_suffix('"').unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects() {
        let e = Extra::parse(r#"{"hangupcause":16,"hangupsource":"PJSIP/2001-00000001","dialstatus":"ANSWER"}"#);
        assert_eq!(e.get("hangupcause").as_deref(), Some("16"));
        assert_eq!(e.get("dialstatus").as_deref(), Some("ANSWER"));
        assert_eq!(e.get("nope"), None);
        assert!(e.pairs().is_empty());
    }

    #[test]
    fn user_event_pairs_in_every_spelling() {
        for raw in [
            r#"{"extra":"NUM:1002,CONTEXT:default,NAME:Bob"}"#,
            r#"{"extra":"NUM: 1002, CONTEXT: default, NAME: Bob"}"#,
            "NUM:1002,CONTEXT:default,NAME:Bob",
            "NUM: 1002, CONTEXT: default, NAME: Bob",
        ] {
            let e = Extra::parse(raw);
            assert_eq!(e.field("num").as_deref(), Some("1002"), "{raw}");
            assert_eq!(e.field("CONTEXT").as_deref(), Some("default"), "{raw}");
            assert_eq!(e.field("name").as_deref(), Some("Bob"), "{raw}");
        }
        let dest = Extra::parse(r#"{"extra":"type: user,uuid: 9f1c2b3a-0000-4000-8000-000000002002,name: Doe, John"}"#);
        assert_eq!(
            dest.field("uuid").as_deref(),
            Some("9f1c2b3a-0000-4000-8000-000000002002")
        );
        assert_eq!(dest.field("name").as_deref(), Some("Doe, John"));
        let incall = Extra::parse(r#"{"extra":"3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10"}"#);
        assert_eq!(incall.user_text(), Some("3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10"));
    }

    #[test]
    fn malformed_json_never_fails() {
        for raw in [
            "{",
            r#"{"extra":"NUM:1,CONTEXT:x"#,
            "{\"a\":}",
            "[1,2",
            "\"str\"",
            "5",
            "{{{{",
            "\u{0}",
            ":::,,,",
        ] {
            let e = Extra::parse(raw);
            let _ = e.pairs();
            let _ = e.get("extra");
        }
        let broken = Extra::parse(r#"{"extra":"NUM:1,CONTEXT:x"#);
        assert!(matches!(broken, Extra::Text(_)));
        assert_eq!(broken.field("NUM").as_deref(), Some("1"));
        assert_eq!(broken.field("context").as_deref(), Some("x"));
        assert_eq!(Extra::parse("  "), Extra::Empty);
    }
}
