//! A dialplan context and its extension ranges.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ContextType {
    #[default]
    Internal,
    Incall,
    Outcall,
    Services,
    Others,
}

impl ContextType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextType::Internal => "internal",
            ContextType::Incall => "incall",
            ContextType::Outcall => "outcall",
            ContextType::Services => "services",
            ContextType::Others => "others",
        }
    }
}

/// `{start, end}`; numbers as strings (leading zeros matter in a dialplan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Incall ranges only: how many trailing digits of the DID are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did_length: Option<u32>,
}

impl Range {
    pub fn end(&self) -> &str {
        self.end.as_deref().unwrap_or(&self.start)
    }

    /// Whether `exten` (digits) falls within the range: same length as the
    /// bounds (so `0100` is not inside `100-199`) and numerically between.
    pub fn contains(&self, exten: &str) -> bool {
        let (start, end) = (self.start.as_str(), self.end());
        if !exten.bytes().all(|b| b.is_ascii_digit()) || exten.is_empty() {
            return false;
        }
        if exten.len() < start.len() || exten.len() > end.len() {
            return false;
        }
        match (exten.parse::<u128>(), start.parse::<u128>(), end.parse::<u128>()) {
            (Ok(x), Ok(s), Ok(e)) => s <= x && x <= e,
            _ => false,
        }
    }

    fn validate(&self, field: &str, incall: bool) -> Result<(), ApiError> {
        let digits = |s: &str| !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&self.start) {
            return Err(ApiError::invalid_field(
                &format!("{field}.start"),
                "String does not match expected pattern.",
            ));
        }
        if !digits(self.end()) {
            return Err(ApiError::invalid_field(
                &format!("{field}.end"),
                "String does not match expected pattern.",
            ));
        }
        let (s, e) = (self.start.parse::<u128>(), self.end().parse::<u128>());
        if let (Ok(s), Ok(e)) = (s, e) {
            if s > e || self.start.len() > self.end().len() {
                return Err(ApiError::invalid_field(
                    &format!("{field}.end"),
                    "end must be greater than or equal to start",
                ));
            }
        }
        if !incall && self.did_length.is_some() {
            return Err(ApiError::invalid_field(
                &format!("{field}.did_length"),
                "Unknown field.",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// The name Asterisk knows; generated unless given at creation, never
    /// changed afterwards (extensions and lines refer to it).
    #[serde(default)]
    pub name: String,
    pub label: String,
    #[serde(default, rename = "type")]
    pub kind: ContextType,
    #[serde(default)]
    pub user_ranges: Vec<Range>,
    #[serde(default)]
    pub group_ranges: Vec<Range>,
    #[serde(default)]
    pub queue_ranges: Vec<Range>,
    #[serde(default)]
    pub conference_room_ranges: Vec<Range>,
    #[serde(default)]
    pub incall_ranges: Vec<Range>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Asterisk context names: letters, digits, `-`, `_`, `.`; at most 79 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 79
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "general"
        && name != "globals"
}

impl Context {
    pub fn generated_name(tenant: Uuid, kind: ContextType, uuid: Uuid) -> String {
        // Upstream's `ctx-<tenant>-<type>-<uuid>` pattern, with the short
        // forms so the name stays under Asterisk's limit.
        let t = tenant.simple().to_string();
        let u = uuid.simple().to_string();
        format!("ctx-{}-{}-{}", &t[..8], kind.as_str(), &u[..12])
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        if !valid_name(&self.name) {
            return Err(ApiError::invalid_field(
                "name",
                "String does not match expected pattern.",
            ));
        }
        if self.label.trim().is_empty() || self.label.len() > 128 || self.label.contains(['\n', '\r']) {
            return Err(ApiError::invalid_field("label", "Length must be between 1 and 128."));
        }
        for (field, ranges, incall) in [
            ("user_ranges", &self.user_ranges, false),
            ("group_ranges", &self.group_ranges, false),
            ("queue_ranges", &self.queue_ranges, false),
            ("conference_room_ranges", &self.conference_room_ranges, false),
            ("incall_ranges", &self.incall_ranges, true),
        ] {
            for r in ranges {
                r.validate(field, incall)?;
            }
        }
        Ok(())
    }

    /// The ranges of a `/ranges/{type}` path segment.
    pub fn ranges(&self, range_type: &str) -> Option<&[Range]> {
        Some(match range_type {
            "user" => &self.user_ranges,
            "group" => &self.group_ranges,
            "queue" => &self.queue_ranges,
            "conference" => &self.conference_room_ranges,
            "incall" => &self.incall_ranges,
            _ => return None,
        })
    }
}

/// Splits `range` around the taken extensions (sorted numbers), keeping the
/// bounds' width: what `availability=available` shows.
pub fn available(range: &Range, taken: &[u128]) -> Vec<(u128, u128)> {
    let (Ok(mut start), Ok(end)) = (range.start.parse::<u128>(), range.end().parse::<u128>()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &t in taken {
        if t < start || t > end {
            continue;
        }
        if t > start {
            out.push((start, t - 1));
        }
        start = t + 1;
    }
    if start <= end {
        out.push((start, end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, e: &str) -> Range {
        Range {
            start: s.into(),
            end: Some(e.into()),
            did_length: None,
        }
    }

    #[test]
    fn contains_respects_width() {
        let range = r("1000", "1999");
        assert!(range.contains("1000") && range.contains("1999"));
        assert!(!range.contains("999") && !range.contains("2000") && !range.contains("01000"));
        assert!(!range.contains("10a0") && !range.contains(""));
    }

    #[test]
    fn available_splits_around_taken() {
        let got = available(&r("1000", "1010"), &[999, 1000, 1005, 1006, 1010]);
        assert_eq!(got, vec![(1001, 1004), (1007, 1009)]);
        assert_eq!(available(&r("1", "3"), &[]), vec![(1, 3)]);
    }

    #[test]
    fn validation_names_the_field() {
        let mut c: Context = serde_json::from_value(serde_json::json!({
            "name": "default", "label": "Default",
            "user_ranges": [{"start": "2000", "end": "1000"}]
        }))
        .expect("parse");
        let err = c.validate().expect_err("reversed range");
        assert!(err.body().to_string().contains("user_ranges.end"), "{:?}", err.body());
        c.user_ranges.clear();
        c.name = "bad name[".into();
        assert!(c.validate().is_err());
        c.name = "default".into();
        assert!(c.validate().is_ok());
    }
}
