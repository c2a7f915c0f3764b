//! The websocket protocol of accent-websocketd: what clients send, what the
//! server answers, and the close codes clients branch on.

use serde::Deserialize;
use serde_json::{json, Value};

/// Protocol version chosen with `?version=` (upstream supports 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Events are sent as the raw bus message body.
    V1,
    /// Events are wrapped in `{"op":"event",...}`; `ping`/`pong`; every op acked.
    V2,
}

impl Version {
    /// `None` (no parameter) is version 1; anything but `1`/`2` is refused.
    pub fn parse(raw: Option<&str>) -> Result<Version, String> {
        match raw.map(str::trim) {
            None | Some("1") => Ok(Version::V1),
            Some("2") => Ok(Version::V2),
            Some(other) => Err(format!("unsupported protocol version: {other:?}")),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }
}

/// Why the server closes a connection, with upstream's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// 4001: neither `?token=` nor `X-Auth-Token`.
    NoToken,
    /// 4002: unknown or expired token, or it lacks the `websocketd` ACL.
    AuthFailed,
    /// 4003: the token expired or was revoked while connected.
    AuthExpired,
    /// 4004: malformed message, unknown op, unsupported version.
    Protocol(String),
    /// 1008: the client did not read its events fast enough and some were
    /// lost; it should reconnect and resynchronise.
    TooSlow,
    /// 1001: accentd is stopping.
    GoingAway,
}

impl Close {
    pub fn code(&self) -> u16 {
        match self {
            Close::NoToken => 4001,
            Close::AuthFailed => 4002,
            Close::AuthExpired => 4003,
            Close::Protocol(_) => 4004,
            Close::TooSlow => 1008,
            Close::GoingAway => 1001,
        }
    }

    /// The close frame's reason (at most 123 bytes on the wire).
    pub fn reason(&self) -> String {
        let text = match self {
            Close::NoToken => "no token".to_string(),
            Close::AuthFailed => "authentication failed".to_string(),
            Close::AuthExpired => "authentication expired".to_string(),
            Close::Protocol(why) => why.clone(),
            Close::TooSlow => "client too slow: events were dropped".to_string(),
            Close::GoingAway => "server shutting down".to_string(),
        };
        truncate_utf8(text, 123)
    }
}

fn truncate_utf8(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A message from the client, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// An event name, or `*` for every event the token may see.
    Subscribe(String),
    Start,
    /// A new token for the same connection (refresh before expiry).
    Token(String),
    /// v2 only; the payload is echoed back.
    Ping(Value),
}

#[derive(Deserialize)]
struct Raw {
    op: String,
    #[serde(default)]
    data: Value,
}

/// Decodes one client message; the error is the close reason (4004).
pub fn decode(text: &str, version: Version) -> Result<ClientOp, String> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| format!("invalid message: {e}"))?;
    let field = |name: &str| -> Result<String, String> {
        match raw.data.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("invalid message: data.{name} must be a string")),
            None => Err(format!("invalid message: data.{name} is missing")),
        }
    };
    match raw.op.as_str() {
        "subscribe" => {
            let name = field("event_name")?;
            if name.is_empty() {
                return Err("invalid message: data.event_name is empty".into());
            }
            Ok(ClientOp::Subscribe(name))
        }
        "start" => Ok(ClientOp::Start),
        "token" => Ok(ClientOp::Token(field("token")?)),
        "ping" if version == Version::V2 => {
            let payload = raw.data.get("payload").cloned().unwrap_or(Value::Null);
            Ok(ClientOp::Ping(payload))
        }
        other => Err(format!("unknown operation: {}", truncate_utf8(other.to_string(), 40))),
    }
}

/// `{"op": op, "code": 0, "data": data}`: every server control message.
pub fn reply(op: &str, data: Value) -> String {
    json!({"op": op, "code": 0, "data": data}).to_string()
}

/// The v2 event frame around an already serialised bus message body.
pub fn event_frame(body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 32);
    s.push_str(r#"{"op":"event","code":0,"data":"#);
    s.push_str(body);
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(Version::parse(None), Ok(Version::V1));
        assert_eq!(Version::parse(Some("1")), Ok(Version::V1));
        assert_eq!(Version::parse(Some("2")), Ok(Version::V2));
        assert!(Version::parse(Some("3")).is_err());
        assert!(Version::parse(Some("two")).is_err());
    }

    #[test]
    fn decodes_each_op() {
        let v2 = Version::V2;
        assert_eq!(
            decode(r#"{"op":"subscribe","data":{"event_name":"call_created"}}"#, v2),
            Ok(ClientOp::Subscribe("call_created".into()))
        );
        assert_eq!(decode(r#"{"op":"start"}"#, v2), Ok(ClientOp::Start));
        assert_eq!(decode(r#"{"op":"start","data":null}"#, v2), Ok(ClientOp::Start));
        assert_eq!(
            decode(r#"{"op":"token","data":{"token":"abc"}}"#, v2),
            Ok(ClientOp::Token("abc".into()))
        );
        assert_eq!(
            decode(r#"{"op":"ping","data":{"payload":"x"}}"#, v2),
            Ok(ClientOp::Ping(json!("x")))
        );
    }

    #[test]
    fn refuses_bad_messages() {
        let v1 = Version::V1;
        for bad in [
            "not json",
            "[]",
            r#"{"data":{}}"#,
            r#"{"op":5}"#,
            r#"{"op":"subscribe"}"#,
            r#"{"op":"subscribe","data":{"event_name":3}}"#,
            r#"{"op":"subscribe","data":{"event_name":""}}"#,
            r#"{"op":"token","data":{}}"#,
            r#"{"op":"dance"}"#,
            // v1 has no ping
            r#"{"op":"ping","data":{"payload":"x"}}"#,
        ] {
            assert!(decode(bad, v1).is_err(), "{bad}");
        }
    }

    #[test]
    fn close_reasons_fit_a_frame() {
        let long = Close::Protocol("é".repeat(200));
        assert!(long.reason().len() <= 123);
        assert_eq!(Close::AuthExpired.code(), 4003);
        assert_eq!(Close::NoToken.code(), 4001);
    }

    #[test]
    fn frames() {
        let r: Value = serde_json::from_str(&reply("start", Value::Null)).expect("json");
        assert_eq!(r, json!({"op": "start", "code": 0, "data": null}));
        let v: Value = serde_json::from_str(&event_frame(r#"{"name":"x","data":{}}"#)).expect("json");
        assert_eq!(v["op"], "event");
        assert_eq!(v["data"]["name"], "x");
    }
}
