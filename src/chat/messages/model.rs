//! The message object, the post body and its rules, and the list queries.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::list::Direction;

/// The longest message, in characters. Upstream stores any length; a bound keeps one
/// message from weighing on every list, search and event it appears in. 64 Ki characters
/// is far above what chat clients send (a 100 KB paste is refused with a clear 400).
pub const MAX_CONTENT_CHARS: usize = 65_536;
/// Upstream's bound of `alias`.
pub const MAX_ALIAS_CHARS: usize = 256;

/// `POST /users/me/rooms/{room_uuid}/messages`. `content` is read as any JSON value so a
/// missing, null and non-string content each get marshmallow's own message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    #[serde(default, deserialize_with = "present")]
    content: Option<Value>,
    #[serde(default)]
    alias: Option<String>,
}

/// A field that is there, `null` included (a plain `Option` reads `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A message body that passed the rules.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub content: String,
    pub alias: Option<String>,
}

impl MessageBody {
    pub fn validate(self) -> Result<NewMessage, ApiError> {
        let content = match self.content {
            None => return Err(ApiError::invalid_field("content", "Missing data for required field.")),
            Some(Value::Null) => return Err(ApiError::invalid_field("content", "Field may not be null.")),
            Some(Value::String(s)) => s,
            Some(_) => return Err(ApiError::invalid_field("content", "Not a valid string.")),
        };
        check_length("content", &content, 1, MAX_CONTENT_CHARS)?;
        if let Some(alias) = &self.alias {
            check_length("alias", alias, 0, MAX_ALIAS_CHARS)?;
        }
        Ok(NewMessage {
            content,
            alias: self.alias,
        })
    }
}

/// marshmallow's `Length` messages, counting characters as it does.
fn check_length(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars < min {
        return Err(ApiError::invalid_field(
            field,
            format!("Shorter than minimum length {min}."),
        ));
    }
    if chars > max {
        return Err(ApiError::invalid_field(
            field,
            format!("Longer than maximum length {max}."),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomRef {
    pub uuid: Uuid,
}

/// Upstream's message object.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub uuid: Uuid,
    pub content: String,
    pub alias: Option<String>,
    pub user_uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub wazo_uuid: Uuid,
    pub created_at: String,
    pub room: RoomRef,
}

/// What a message list asks for. `search` words must all appear in a message (case and
/// accents ignored, anywhere in it).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub limit: Option<u32>,
    pub offset: u32,
    pub direction: Direction,
    pub from_us: Option<i64>,
    pub search: Option<Vec<String>>,
    /// `distinct=room_uuid`: only the latest message of each room.
    pub distinct_room: bool,
}

/// Which list the query is for: the two accept different parameters upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `/users/me/rooms/{room_uuid}/messages`: `from_date`, `search`.
    Room,
    /// `/users/me/rooms/messages`: `search` or `distinct` (one required).
    User,
}

fn integer(field: &str, value: &str) -> Result<u32, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid_field(field, "Not a valid integer."))
}

impl MessageQuery {
    pub fn parse(query: &str, kind: ListKind) -> Result<MessageQuery, ApiError> {
        let pairs: Vec<(String, String)> = crate::api::body::parse_query(query)?;
        let mut q = MessageQuery {
            direction: Direction::Desc,
            ..MessageQuery::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => q.limit = Some(integer("limit", &value)?),
                "offset" => q.offset = integer("offset", &value)?,
                "order" if value != "created_at" => {
                    return Err(ApiError::invalid_field("order", "Must be one of: created_at."));
                }
                "direction" => {
                    q.direction = match value.as_str() {
                        "asc" => Direction::Asc,
                        "desc" => Direction::Desc,
                        _ => return Err(ApiError::invalid_field("direction", "Must be one of: asc, desc.")),
                    }
                }
                "search" if !value.is_empty() => {
                    q.search = Some(value.split_whitespace().map(str::to_owned).collect());
                }
                "from_date" if kind == ListKind::Room => q.from_us = Some(crate::chat::time::parse_from_date(&value)?),
                "distinct" if kind == ListKind::User => {
                    if value != "room_uuid" {
                        return Err(ApiError::invalid_field("distinct", "Must be one of: room_uuid."));
                    }
                    q.distinct_room = true;
                }
                _ => {} // upstream ignores unknown query keys
            }
        }
        if kind == ListKind::User && q.search.is_none() && !q.distinct_room {
            return Err(ApiError::invalid_field("_schema", "Missing search or distinct"));
        }
        Ok(q)
    }

    /// Whether anything narrows the list (else `filtered` is `total`).
    pub fn narrows(&self) -> bool {
        self.from_us.is_some() || self.search.is_some() || self.distinct_room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Result<NewMessage, ApiError> {
        serde_json::from_value::<MessageBody>(v).expect("shape").validate()
    }

    #[test]
    fn content_rules() {
        use serde_json::json;
        assert_eq!(body(json!({"content": "hi"})).expect("ok").content, "hi");
        for (v, msg) in [
            (json!({}), "Missing data for required field."),
            (json!({"content": null}), "Field may not be null."),
            (json!({"content": 3}), "Not a valid string."),
            (json!({"content": ""}), "Shorter than minimum length 1."),
        ] {
            let err = body(v.clone()).expect_err("bad");
            assert_eq!(err.body()["details"]["content"][0], msg, "{v}");
        }
        let max = "é".repeat(MAX_CONTENT_CHARS);
        assert!(body(json!({ "content": max })).is_ok(), "the limit counts characters");
        let over = "a".repeat(MAX_CONTENT_CHARS + 1);
        let err = body(json!({ "content": over })).expect_err("too long");
        assert_eq!(err.body()["details"]["content"][0], "Longer than maximum length 65536.");
        let err = body(json!({"content": "x", "alias": "a".repeat(257)})).expect_err("alias");
        assert!(err.body()["details"]["alias"].is_array());
    }

    #[test]
    fn queries() {
        let q = MessageQuery::parse(
            "limit=2&offset=1&direction=asc&from_date=2019-06-12T10:00:00",
            ListKind::Room,
        )
        .expect("room");
        assert_eq!((q.limit, q.offset, q.direction), (Some(2), 1, Direction::Asc));
        assert!(q.from_us.is_some());
        assert_eq!(
            MessageQuery::parse("", ListKind::Room).expect("defaults").direction,
            Direction::Desc
        );
        assert!(MessageQuery::parse("", ListKind::User).is_err(), "search or distinct");
        assert!(
            MessageQuery::parse("search=", ListKind::User).is_err(),
            "empty search is none"
        );
        let q = MessageQuery::parse("search=hello%20world", ListKind::User).expect("search");
        assert_eq!(q.search, Some(vec!["hello".to_string(), "world".to_string()]));
        assert!(
            MessageQuery::parse("distinct=room_uuid", ListKind::User)
                .expect("distinct")
                .distinct_room
        );
        for bad in [
            "distinct=user_uuid",
            "limit=-1",
            "offset=x",
            "order=content",
            "direction=up",
        ] {
            assert!(
                MessageQuery::parse(&format!("search=a&{bad}"), ListKind::User).is_err(),
                "{bad}"
            );
        }
    }
}
