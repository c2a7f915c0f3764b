//! The call log (CDR) as generated, as stored, and as the API shows it; the `/cdr` query.

use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::list::Direction;

/// Internal by default; inbound/outbound only from the dialplan's incall/outcall user events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    #[default]
    Internal,
    Inbound,
    Outbound,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Internal => "internal",
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
    }

    pub fn parse(text: &str) -> Option<CallDirection> {
        match text {
            "internal" => Some(CallDirection::Internal),
            "inbound" => Some(CallDirection::Inbound),
            "outbound" => Some(CallDirection::Outbound),
            _ => None,
        }
    }
}

/// The call's outcome (upstream's newer `call_status`), in order of precedence: blocked,
/// voicemail (not answered, reached a mailbox), answered, else unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    Answered,
    Blocked,
    Voicemail,
    #[default]
    Unknown,
}

impl CallStatus {
    pub const ALL: [CallStatus; 4] = [
        CallStatus::Answered,
        CallStatus::Blocked,
        CallStatus::Voicemail,
        CallStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Answered => "answered",
            CallStatus::Blocked => "blocked",
            CallStatus::Voicemail => "voicemail",
            CallStatus::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The rule: a blocked call is blocked whatever happened next; an unanswered call that
    /// reached a mailbox is a voicemail.
    pub fn derive(blocked: bool, reached_voicemail: bool, answered: bool) -> CallStatus {
        if blocked {
            CallStatus::Blocked
        } else if reached_voicemail && !answered {
            CallStatus::Voicemail
        } else if answered {
            CallStatus::Answered
        } else {
            CallStatus::Unknown
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Source,
    Destination,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "source" => Some(Role::Source),
            "destination" => Some(Role::Destination),
            _ => None,
        }
    }
}

/// A user taking part in a call, resolved through the line of one of its channels (or named
/// by a user event's extra).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Participant {
    pub user_uuid: Uuid,
    pub line_id: Option<i64>,
    pub role: Role,
    pub tags: Vec<String>,
    pub answered: bool,
    /// The user the caller asked for (the first one rung), even if someone else answered.
    pub requested: bool,
    /// The other party's extension, as this user sees it ("recent calls").
    pub peer_exten: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub uuid: Uuid,
    pub start_us: i64,
    pub end_us: i64,
    pub path: Option<String>,
    pub deleted: bool,
}

impl Recording {
    /// Upstream's download name: `<start, UTC, %Y-%m-%dT%H_%M_%S>UTC-<cdr id>-<uuid>.wav`.
    pub fn filename(&self, cdr_id: i64) -> String {
        let start = OffsetDateTime::from_unix_timestamp(self.start_us.div_euclid(1_000_000))
            .ok()
            .and_then(|t| t.format(FILENAME_TIME).ok())
            .unwrap_or_default();
        format!("{start}UTC-{cdr_id}-{}.wav", self.uuid)
    }

    /// Whether the file is gone (deleted through the API or by retention).
    pub fn media_deleted(&self) -> bool {
        self.deleted || self.path.is_none()
    }

    fn to_json(&self, cdr_id: i64) -> Value {
        serde_json::json!({
            "uuid": self.uuid,
            "start_time": iso(self.start_us),
            "end_time": iso(self.end_us),
            "deleted": self.media_deleted(),
            "filename": self.filename(cdr_id),
        })
    }
}

/// `2026-11-28T13_02_26` (the date part of upstream's download names).
pub const FILENAME_TIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]_[minute]_[second]");

/// A call log as the generator builds it and the store keeps it. Times are microseconds since
/// the epoch (UTC).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallLog {
    /// 0 until stored.
    pub id: i64,
    pub tenant_uuid: Uuid,
    pub conversation_id: String,
    pub start_us: i64,
    pub answer_us: Option<i64>,
    pub end_us: Option<i64>,
    pub call_direction: CallDirection,
    pub call_status: CallStatus,
    pub source_name: String,
    pub source_exten: String,
    pub source_internal_name: Option<String>,
    pub source_internal_exten: Option<String>,
    pub source_internal_context: Option<String>,
    pub source_line_identity: Option<String>,
    pub requested_name: Option<String>,
    pub requested_exten: Option<String>,
    pub requested_context: Option<String>,
    pub requested_internal_exten: Option<String>,
    pub requested_internal_context: Option<String>,
    pub destination_name: Option<String>,
    pub destination_exten: Option<String>,
    pub destination_internal_exten: Option<String>,
    pub destination_internal_context: Option<String>,
    pub destination_line_identity: Option<String>,
    /// `{"type": "user", "user_uuid": …, "user_name": …}` and the like; `{}` when unknown.
    pub destination_details: Map<String, Value>,
    pub user_field: Option<String>,
    pub participants: Vec<Participant>,
    pub recordings: Vec<Recording>,
}

/// `2026-11-28T13:02:24.908592+00:00`, upstream's format.
pub fn iso(us: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok()?;
    t.format(&Rfc3339).ok().map(|s| s.replace('Z', "+00:00"))
}

/// Reads an ISO-8601 `from`/`until` value (with an offset, or naive meaning UTC) into
/// microseconds.
pub fn parse_iso(field: &str, text: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid_field(field, "Not a valid datetime.");
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .or_else(|_| OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339))
        .map_err(|_| bad())?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1000).map_err(|_| bad())
}

impl CallLog {
    pub fn answered(&self) -> bool {
        self.answer_us.is_some()
    }

    /// End minus answer, in whole seconds (truncated, as upstream's serializer does); `None`
    /// when unanswered or unended.
    pub fn duration(&self) -> Option<i64> {
        let (answer, end) = (self.answer_us?, self.end_us?);
        Some((end - answer).max(0) / 1_000_000)
    }

    fn participant(&self, pick: impl Fn(&Participant) -> bool) -> Option<&Participant> {
        self.participants.iter().find(|p| pick(p))
    }

    /// Every participant's tags, sorted, once each.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self.participants.iter().flat_map(|p| p.tags.iter().cloned()).collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// The API object: upstream's fields, then ours (`participants`, line identities,
    /// `user_field`). `with_tags: false` is the per-user event's variant.
    pub fn to_json(&self, with_tags: bool) -> Value {
        let source = self.participant(|p| p.role == Role::Source);
        let destination = self
            .participant(|p| p.role == Role::Destination && p.answered)
            .or_else(|| self.participant(|p| p.role == Role::Destination));
        let requested = self.participant(|p| p.requested);
        let tenant = |p: Option<&Participant>| p.map(|_| self.tenant_uuid.to_string());
        let mut v = serde_json::json!({
            "id": self.id,
            "tenant_uuid": self.tenant_uuid,
            "start": iso(self.start_us),
            "answer": self.answer_us.and_then(iso),
            "end": self.end_us.and_then(iso),
            "answered": self.answered(),
            "duration": self.duration(),
            "call_direction": self.call_direction,
            "call_status": self.call_status,
            "conversation_id": self.conversation_id,
            "source_name": self.source_name,
            "source_extension": self.source_exten,
            "source_internal_name": self.source_internal_name,
            "source_internal_extension": self.source_internal_exten,
            "source_internal_context": self.source_internal_context,
            "source_internal_tenant_uuid": tenant(source),
            "source_user_uuid": source.map(|p| p.user_uuid),
            "source_tenant_uuid": tenant(source),
            "source_line_id": source.and_then(|p| p.line_id),
            "requested_name": self.requested_name,
            "requested_extension": self.requested_exten,
            "requested_context": self.requested_context,
            "requested_tenant_uuid": tenant(requested),
            "requested_internal_extension": self.requested_internal_exten,
            "requested_internal_context": self.requested_internal_context,
            "requested_internal_tenant_uuid": tenant(requested),
            "requested_user_uuid": requested.map(|p| p.user_uuid),
            "destination_details": self.destination_details,
            "destination_name": self.destination_name,
            "destination_extension": self.destination_exten,
            "destination_internal_extension": self.destination_internal_exten,
            "destination_internal_context": self.destination_internal_context,
            "destination_internal_tenant_uuid": tenant(destination),
            "destination_user_uuid": destination.map(|p| p.user_uuid),
            "destination_tenant_uuid": tenant(destination),
            "destination_line_id": destination.and_then(|p| p.line_id),
            "recordings": self.recordings.iter().map(|r| r.to_json(self.id)).collect::<Vec<_>>(),
            "participants": self.participants,
            "source_line_identity": self.source_line_identity,
            "destination_line_identity": self.destination_line_identity,
            "user_field": self.user_field,
        });
        if with_tags {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("tags".into(), serde_json::json!(self.tags()));
            }
        }
        v
    }
}

/// `/cdr` fields `order` may name (upstream: any CDR field but `end`, `tags`, `recordings`),
/// with the SQL expression each sorts by.
pub const ORDERABLE: &[(&str, &str)] = &[
    ("id", "c.id"),
    ("start", "c.start_us"),
    ("answer", "c.answer_us"),
    ("answered", "(c.answer_us IS NOT NULL)"),
    ("duration", "(c.end_us - c.answer_us)"),
    ("call_direction", "c.call_direction"),
    ("call_status", "c.call_status"),
    ("conversation_id", "c.conversation_id"),
    ("source_name", "c.source_name"),
    ("source_extension", "c.source_exten"),
    ("source_internal_name", "c.source_internal_name"),
    ("source_internal_extension", "c.source_internal_exten"),
    ("source_internal_context", "c.source_internal_context"),
    ("requested_name", "c.requested_name"),
    ("requested_extension", "c.requested_exten"),
    ("requested_context", "c.requested_context"),
    ("requested_internal_extension", "c.requested_internal_exten"),
    ("requested_internal_context", "c.requested_internal_context"),
    ("destination_name", "c.destination_name"),
    ("destination_extension", "c.destination_exten"),
    ("destination_internal_extension", "c.destination_internal_exten"),
    ("destination_internal_context", "c.destination_internal_context"),
    ("tenant_uuid", "c.tenant_uuid"),
];

/// A `number` filter: `_` at either end is a wildcard for any digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberMatch {
    Exact(String),
    EndsWith(String),
    StartsWith(String),
    Contains(String),
}

impl NumberMatch {
    pub fn parse(text: &str) -> Result<NumberMatch, ApiError> {
        let bad = || ApiError::invalid_field("number", "String does not match expected pattern.");
        let (head, rest) = match text.strip_prefix('_') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (tail, digits) = match rest.strip_suffix('_') {
            Some(d) => (true, d),
            None => (false, rest),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let d = digits.to_string();
        Ok(match (head, tail) {
            (false, false) => NumberMatch::Exact(d),
            (true, false) => NumberMatch::EndsWith(d),
            (false, true) => NumberMatch::StartsWith(d),
            (true, true) => NumberMatch::Contains(d),
        })
    }

    /// The LIKE pattern (digits need no escaping).
    pub fn like(&self) -> String {
        match self {
            NumberMatch::Exact(d) => d.clone(),
            NumberMatch::EndsWith(d) => format!("%{d}"),
            NumberMatch::StartsWith(d) => format!("{d}%"),
            NumberMatch::Contains(d) => format!("%{d}%"),
        }
    }
}

/// Whose call logs a request may see: the token's tenants, and for the per-user endpoints the
/// user whose history it is.
#[derive(Debug, Clone, Default)]
pub struct Visibility {
    pub tenants: Vec<Uuid>,
    pub user: Option<Uuid>,
}

/// A validated `/cdr` query.
#[derive(Debug, Clone)]
pub struct CdrQuery {
    pub from_us: Option<i64>,
    pub until_us: Option<i64>,
    pub limit: u32,
    pub offset: u32,
    pub order: &'static str,
    pub direction: Direction,
    pub search: Option<String>,
    pub call_direction: Option<CallDirection>,
    pub call_status: Option<CallStatus>,
    pub number: Option<NumberMatch>,
    pub tags: Vec<String>,
    /// Calls with any of these users as participant.
    pub user_uuids: Vec<Uuid>,
    pub from_id: Option<i64>,
    pub recurse: bool,
    pub distinct_peer_exten: bool,
    pub recorded: Option<bool>,
    pub conversation_id: Option<String>,
    pub csv: bool,
}

/// One page of a search, with upstream's counts: `total` in scope, `filtered` after filters.
#[derive(Debug, Clone)]
pub struct CdrPage {
    pub items: Vec<CallLog>,
    pub total: u64,
    pub filtered: u64,
}

/// Default page size, as upstream.
pub const DEFAULT_LIMIT: u32 = 1000;

fn bool_value(field: &str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::invalid_field(field, "Not a valid boolean.")),
    }
}

fn uuid_list(field: &str, v: &str) -> Result<Vec<Uuid>, ApiError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Uuid::parse_str(s).map_err(|_| ApiError::invalid_field(field, "Not a valid UUID.")))
        .collect()
}

fn is_conversation_id(v: &str) -> bool {
    match v.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

impl CdrQuery {
    /// Parses the query string. Bad values are 400s naming the parameter; unknown keys are
    /// ignored as upstream does.
    pub fn parse(query: &str) -> Result<CdrQuery, ApiError> {
        let pairs: Vec<(String, String)> = crate::api::body::parse_query(query)?;
        let mut q = CdrQuery {
            from_us: None,
            until_us: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
            order: "c.start_us",
            direction: Direction::Desc,
            search: None,
            call_direction: None,
            call_status: None,
            number: None,
            tags: Vec::new(),
            user_uuids: Vec::new(),
            from_id: None,
            recurse: false,
            distinct_peer_exten: false,
            recorded: None,
            conversation_id: None,
            csv: false,
        };
        for (key, value) in pairs {
            let v = value.as_str();
            match key.as_str() {
                "from" => q.from_us = Some(parse_iso("from", v)?),
                "until" => q.until_us = Some(parse_iso("until", v)?),
                "limit" => {
                    q.limit = v
                        .parse()
                        .map_err(|_| ApiError::invalid_field("limit", "Not a valid integer."))?
                }
                "offset" => {
                    q.offset = v
                        .parse()
                        .map_err(|_| ApiError::invalid_field("offset", "Not a valid integer."))?
                }
                "order" => {
                    q.order = ORDERABLE
                        .iter()
                        .find(|(name, _)| *name == v)
                        .map(|(_, sql)| *sql)
                        .ok_or_else(|| ApiError::invalid_field("order", format!("Invalid order field: {v}.")))?
                }
                "direction" => {
                    q.direction = match v {
                        "asc" => Direction::Asc,
                        "desc" => Direction::Desc,
                        _ => return Err(ApiError::invalid_field("direction", "Must be one of: asc, desc.")),
                    }
                }
                "search" => q.search = Some(value).filter(|s| !s.is_empty()),
                "call_direction" => {
                    q.call_direction = Some(CallDirection::parse(v).ok_or_else(|| {
                        ApiError::invalid_field("call_direction", "Must be one of: internal, inbound, outbound.")
                    })?)
                }
                "call_status" => {
                    q.call_status = Some(CallStatus::parse(v).ok_or_else(|| {
                        ApiError::invalid_field("call_status", "Must be one of: answered, blocked, voicemail, unknown.")
                    })?)
                }
                "number" => q.number = Some(NumberMatch::parse(v)?),
                "tags" => q
                    .tags
                    .extend(v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)),
                "user_uuid" => q.user_uuids.extend(uuid_list("user_uuid", v)?),
                "from_id" => {
                    q.from_id = Some(
                        v.parse()
                            .map_err(|_| ApiError::invalid_field("from_id", "Not a valid integer."))?,
                    )
                }
                "recurse" => q.recurse = bool_value("recurse", v)?,
                "distinct" => match v {
                    "peer_exten" => q.distinct_peer_exten = true,
                    _ => return Err(ApiError::invalid_field("distinct", "Must be one of: peer_exten.")),
                },
                "recorded" => q.recorded = Some(bool_value("recorded", v)?),
                "format" => match v {
                    "csv" => q.csv = true,
                    "json" => q.csv = false,
                    _ => return Err(ApiError::invalid_field("format", "Must be one of: csv, json.")),
                },
                "conversation_id" => {
                    if !is_conversation_id(v) {
                        return Err(ApiError::invalid_field(
                            "conversation_id",
                            "String does not match expected pattern.",
                        ));
                    }
                    q.conversation_id = Some(value);
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_patterns() {
        assert_eq!(NumberMatch::parse("1234").map(|n| n.like()).ok(), Some("1234".into()));
        assert_eq!(NumberMatch::parse("_1234").map(|n| n.like()).ok(), Some("%1234".into()));
        assert_eq!(NumberMatch::parse("12_").map(|n| n.like()).ok(), Some("12%".into()));
        assert_eq!(NumberMatch::parse("_12_").map(|n| n.like()).ok(), Some("%12%".into()));
        for bad in ["", "_", "__", "12a", "1_2", "%1"] {
            assert!(NumberMatch::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_filters_are_400s() {
        for q in [
            "from=yesterday",
            "until=2026-13-01",
            "limit=-1",
            "offset=x",
            "order=nosuchfield",
            "order=end",
            "direction=up",
            "call_direction=sideways",
            "call_status=missed",
            "user_uuid=nope",
            "from_id=1.5",
            "distinct=name",
            "recorded=maybe",
            "format=xml",
            "conversation_id=abc",
        ] {
            let e = CdrQuery::parse(q).expect_err(q);
            assert_eq!(e.status(), 400, "{q}");
        }
    }

    #[test]
    fn good_filters_parse() {
        let q = CdrQuery::parse(
            "from=2026-11-28T00:00:00&until=2026-11-29T00:00:00%2B01:00&limit=5&order=duration&direction=asc\
             &call_direction=inbound&call_status=voicemail&number=_12&tags=a,b&user_uuid=3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10\
             &distinct=peer_exten&recorded=false&format=csv&conversation_id=1795870944.58",
        )
        .expect("parses");
        assert_eq!(q.from_us, Some(1_795_824_000_000_000));
        assert_eq!(q.until_us, Some(1_795_906_800_000_000));
        assert_eq!(
            (q.limit, q.order, q.direction),
            (5, "(c.end_us - c.answer_us)", Direction::Asc)
        );
        assert_eq!(q.tags, vec!["a", "b"]);
        assert_eq!(q.call_status, Some(CallStatus::Voicemail));
        assert!(q.distinct_peer_exten && q.csv && q.recorded == Some(false));
    }

    #[test]
    fn call_status_precedence() {
        use CallStatus::*;
        assert_eq!(CallStatus::derive(true, true, true), Blocked);
        assert_eq!(CallStatus::derive(false, true, false), Voicemail);
        assert_eq!(
            CallStatus::derive(false, true, true),
            Answered,
            "answered, then a mailbox"
        );
        assert_eq!(CallStatus::derive(false, false, true), Answered);
        assert_eq!(CallStatus::derive(false, false, false), Unknown);
        for s in CallStatus::ALL {
            assert_eq!(CallStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn times_and_duration() {
        assert_eq!(
            iso(1_795_870_944_908_592).as_deref(),
            Some("2026-11-28T13:02:24.908592+00:00")
        );
        let log = CallLog {
            answer_us: Some(1_000_000),
            end_us: Some(15_600_000),
            ..CallLog::default()
        };
        assert_eq!(log.duration(), Some(14));
        let rec = Recording {
            uuid: Uuid::nil(),
            start_us: 1_795_870_946_500_000,
            end_us: 0,
            path: None,
            deleted: false,
        };
        assert_eq!(
            rec.filename(12),
            "2026-11-28T13_02_26UTC-12-00000000-0000-0000-0000-000000000000.wav"
        );
        assert!(rec.media_deleted());
        assert!(CallLog::default().duration().is_none());
    }
}
