//! Every ARI REST exchange recorded from a real Asterisk 22.10.1 must have a
//! response body that deserializes into the model the spec names for its
//! route, and re-serializes to the same JSON.
//!
//! `ari-rest.jsonl` lines are `{"ts","method","path","query","body","status",
//! "response"}`; `response` is the parsed JSON body or null.

use crate::ari_fixtures::{json_diff, name, read_lines, scenarios};
use accentd::ari::events::RestResponse;
use accentd::ari::models::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Deserializes a body into `T` and writes it back.
type Check = fn(&Value) -> Result<Value, String>;

fn check<T: DeserializeOwned + Serialize>(body: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(body.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// The routes of the ARI spec that answer with a body, and the model of that
/// body. `{}` matches one path segment; literal routes come before the
/// `{}` routes they would otherwise match (`/channels/create`).
const ROUTES: &[(&str, &str, Check)] = &[
    ("GET", "/applications", check::<Vec<Application>>),
    ("GET", "/applications/{}", check::<Application>),
    ("POST", "/applications/{}/subscription", check::<Application>),
    ("DELETE", "/applications/{}/subscription", check::<Application>),
    ("PUT", "/applications/{}/eventFilter", check::<Application>),
    ("GET", "/asterisk/config/dynamic/{}/{}/{}", check::<Vec<ConfigTuple>>),
    ("PUT", "/asterisk/config/dynamic/{}/{}/{}", check::<Vec<ConfigTuple>>),
    ("GET", "/asterisk/info", check::<AsteriskInfo>),
    ("GET", "/asterisk/ping", check::<AsteriskPing>),
    ("GET", "/asterisk/modules", check::<Vec<Module>>),
    ("GET", "/asterisk/modules/{}", check::<Module>),
    ("GET", "/asterisk/logging", check::<Vec<LogChannel>>),
    ("GET", "/asterisk/variable", check::<Variable>),
    ("GET", "/bridges", check::<Vec<Bridge>>),
    ("POST", "/bridges", check::<Bridge>),
    ("POST", "/bridges/{}", check::<Bridge>),
    ("GET", "/bridges/{}", check::<Bridge>),
    ("GET", "/bridges/{}/variable", check::<Variable>),
    ("GET", "/bridges/{}/variables", check::<Variables>),
    ("POST", "/bridges/{}/play", check::<Playback>),
    ("POST", "/bridges/{}/play/{}", check::<Playback>),
    ("POST", "/bridges/{}/record", check::<LiveRecording>),
    ("GET", "/channels", check::<Vec<Channel>>),
    ("POST", "/channels", check::<Channel>),
    ("POST", "/channels/create", check::<Channel>),
    ("POST", "/channels/externalMedia", check::<Channel>),
    ("GET", "/channels/{}", check::<Channel>),
    ("POST", "/channels/{}", check::<Channel>),
    ("POST", "/channels/{}/play", check::<Playback>),
    ("POST", "/channels/{}/play/{}", check::<Playback>),
    ("POST", "/channels/{}/record", check::<LiveRecording>),
    ("GET", "/channels/{}/variable", check::<Variable>),
    ("GET", "/channels/{}/variables", check::<Variables>),
    ("POST", "/channels/{}/snoop", check::<Channel>),
    ("POST", "/channels/{}/snoop/{}", check::<Channel>),
    ("GET", "/channels/{}/rtp_statistics", check::<RtpStat>),
    ("GET", "/deviceStates", check::<Vec<DeviceState>>),
    ("GET", "/deviceStates/{}", check::<DeviceState>),
    ("GET", "/endpoints", check::<Vec<Endpoint>>),
    ("GET", "/endpoints/{}", check::<Vec<Endpoint>>),
    ("GET", "/endpoints/{}/{}", check::<Endpoint>),
    ("GET", "/mailboxes", check::<Vec<Mailbox>>),
    ("GET", "/mailboxes/{}", check::<Mailbox>),
    ("GET", "/playbacks/{}", check::<Playback>),
    ("GET", "/recordings/stored", check::<Vec<StoredRecording>>),
    ("GET", "/recordings/stored/{}", check::<StoredRecording>),
    ("POST", "/recordings/stored/{}/copy", check::<StoredRecording>),
    ("GET", "/recordings/live/{}", check::<LiveRecording>),
    ("GET", "/sounds", check::<Vec<Sound>>),
    ("GET", "/sounds/{}", check::<Sound>),
];

fn route(method: &str, path: &str) -> Option<(&'static str, Check)> {
    let path = path.strip_prefix("/ari").unwrap_or(path);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    ROUTES.iter().find_map(|(m, pattern, check)| {
        let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
        let same = *m == method && pat.len() == segs.len() && pat.iter().zip(&segs).all(|(p, s)| *p == "{}" || p == s);
        same.then_some((*pattern, *check))
    })
}

/// Checks one exchange; returns the route pattern it was checked against.
fn check_exchange(at: &str, x: &Value) -> String {
    let method = x["method"].as_str().unwrap_or_else(|| panic!("{at}: no method"));
    let path = x["path"].as_str().unwrap_or_else(|| panic!("{at}: no path"));
    let status = x["status"].as_u64().unwrap_or_else(|| panic!("{at}: no status"));
    let response = &x["response"];
    let (label, back) = match status {
        204 => {
            assert!(response.is_null(), "{at}: 204 with a body");
            return format!("{method} {path} -> 204");
        }
        200..=299 => {
            let (pattern, check) = route(method, path)
                .unwrap_or_else(|| panic!("{at}: {method} {path} answered {status} with a body but has no route"));
            (
                format!("{method} {pattern}"),
                check(response).unwrap_or_else(|e| panic!("{at}: {method} {path}: {e}")),
            )
        }
        _ => (
            format!("error {status}"),
            check::<ErrorBody>(response).unwrap_or_else(|e| panic!("{at}: error body {response}: {e}")),
        ),
    };
    let mut diff = Vec::new();
    json_diff("$", response, &back, &mut diff);
    assert!(diff.is_empty(), "{at}: {label}: {}", diff.join("; "));
    label
}

#[test]
fn every_recorded_rest_response_matches_its_model() {
    let mut checked = Vec::new();
    let mut exchanges = 0;
    for dir in scenarios() {
        let lines = read_lines(&dir, "ari-rest.jsonl").unwrap_or_else(|| panic!("{}: no ari-rest.jsonl", name(&dir)));
        for (i, line) in lines.iter().enumerate() {
            let at = format!("{}/ari-rest.jsonl:{}", name(&dir), i + 1);
            let x: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: {e}"));
            exchanges += 1;
            checked.push(check_exchange(&at, &x));
        }
    }
    assert_eq!(exchanges, 29, "recorded REST exchanges");
    // The routes with a body that the recordings exercise.
    let mut with_body: Vec<&str> = checked
        .iter()
        .map(String::as_str)
        .filter(|l| !l.contains("-> 204"))
        .collect();
    with_body.sort();
    with_body.dedup();
    assert_eq!(
        with_body,
        vec![
            "GET /deviceStates",
            "GET /endpoints/{}",
            "GET /endpoints/{}/{}",
            "POST /applications/{}/subscription",
            "POST /bridges",
            "POST /channels",
            "POST /channels/{}/play",
            "error 404",
            "error 422",
        ]
    );
}

#[test]
fn dispatcher_prefers_literal_routes() {
    assert_eq!(
        route("POST", "/ari/channels/create").map(|r| r.0),
        Some("/channels/create")
    );
    assert_eq!(
        route("POST", "/ari/channels/1795870763.8").map(|r| r.0),
        Some("/channels/{}")
    );
    assert_eq!(
        route("GET", "/ari/recordings/stored").map(|r| r.0),
        Some("/recordings/stored")
    );
    assert!(route("DELETE", "/ari/channels/1795870763.8").is_none());
}

/// The routes the recordings do not exercise (no GET of channels, bridges,
/// asterisk info, applications, playbacks or recordings was recorded), with
/// bodies shaped like Asterisk 22's: a recorded channel/bridge/playback where
/// one exists, and every spec field filled in otherwise.
#[test]
fn unrecorded_routes_accept_spec_shaped_bodies() {
    let channel = json!({"id": "s27-2002", "name": "PJSIP/2002-00000014", "state": "Up",
        "protocol_id": "e4886b93-f6dc-4676-8ee5-aa37a0234265", "caller": {"name": "Accent", "number": "8800"},
        "connected": {"name": "Accent", "number": "8800"}, "accountcode": "",
        "dialplan": {"context": "from-internal", "exten": "s", "priority": 1, "app_name": "Stasis",
                     "app_data": "accent,s27,2002"},
        "creationtime": "2026-11-28T13:20:27.243+0000", "language": "en",
        "channelvars": {"CHANNEL(tenantid)": ""}, "caller_rdnis": "", "tenantid": ""});
    let bridge = json!({"id": "s27-bridge", "technology": "simple_bridge", "bridge_type": "mixing",
        "bridge_class": "stasis", "creator": "Stasis", "name": "s27", "channels": ["s27-2002"],
        "creationtime": "2026-11-28T13:20:31.262+0000", "video_mode": "talker"});
    let playback = json!({"id": "s04-pb-1", "media_uri": "sound:hello-world", "target_uri": "channel:1795870763.8",
        "language": "en", "state": "playing"});
    let info = json!({
        "build": {"os": "Linux", "kernel": "6.1.0-28-amd64", "options": "BUILD_NATIVE, OPTIONAL_API",
                  "machine": "x86_64", "date": "2026-11-28 12:48:53 UTC", "user": "root"},
        "system": {"version": "22.10.1", "entity_id": "02:fc:00:00:00:01"},
        "config": {"name": "", "default_language": "en", "max_channels": 0, "max_open_files": 1024,
                   "max_load": 0.0, "setid": {"user": "", "group": ""}},
        "status": {"startup_time": "2026-11-28T12:50:01.002+0000",
                   "last_reload_time": "2026-11-28T12:50:01.002+0000"}});
    let application = json!({"name": "accent", "channel_ids": ["s27-2002"], "bridge_ids": [], "endpoint_ids": [],
        "device_names": [], "events_allowed": [{"type": "ChannelCreated"}], "events_disallowed": []});
    let cases = [
        ("GET", "/ari/channels", json!([channel])),
        ("GET", "/ari/channels/s27-2002", channel.clone()),
        ("GET", "/ari/channels/s27-2002/variable", json!({"value": "1"})),
        ("GET", "/ari/bridges", json!([bridge])),
        ("GET", "/ari/bridges/s27-bridge", bridge.clone()),
        ("GET", "/ari/asterisk/info", info.clone()),
        ("GET", "/ari/asterisk/info", json!({"system": info["system"]})),
        (
            "GET",
            "/ari/asterisk/ping",
            json!({"asterisk_id": "02:fc:00:00:00:01", "ping": "pong",
            "timestamp": "2026-11-28T13:20:31.262+0000"}),
        ),
        ("GET", "/ari/applications", json!([application])),
        (
            "GET",
            "/ari/endpoints",
            json!([{"technology": "PJSIP", "resource": "2001", "state": "online",
            "channel_ids": ["1795874868.6"]}]),
        ),
        (
            "GET",
            "/ari/deviceStates/Stasis:x",
            json!({"name": "Stasis:x", "state": "NOT_INUSE"}),
        ),
        ("GET", "/ari/playbacks/s04-pb-1", playback),
        (
            "GET",
            "/ari/recordings/stored",
            json!([{"name": "rec1", "format": "wav"}]),
        ),
        (
            "GET",
            "/ari/recordings/live/rec1",
            json!({"name": "rec1", "format": "wav", "target_uri": "channel:c1",
            "state": "recording", "duration": 3, "talking_duration": 2, "silence_duration": 1}),
        ),
        (
            "GET",
            "/ari/mailboxes/1000@default",
            json!({"name": "1000@default", "old_messages": 0,
            "new_messages": 1}),
        ),
        (
            "GET",
            "/ari/sounds/hello-world",
            json!({"id": "hello-world", "text": "Hello world.",
            "formats": [{"language": "en", "format": "gsm"}]}),
        ),
    ];
    for (i, (method, path, response)) in cases.into_iter().enumerate() {
        let x = json!({"method": method, "path": path, "status": 200, "response": response});
        check_exchange(&format!("case {i}"), &x);
    }

    let info: AsteriskInfo = serde_json::from_value(info).expect("info");
    let status = info.status.expect("status");
    assert!(parse_ari_timestamp(&status.startup_time).is_ok());
    assert_eq!(info.system.expect("system").version, "22.10.1");
    let channel: Channel = serde_json::from_value(channel).expect("channel");
    assert_eq!(channel.channel_var("CHANNEL(tenantid)"), Some(""));
}

/// The REST-over-websocket answer is an event; make sure it is usable as one.
#[test]
fn rest_response_event_parses() {
    let text = r#"{"type":"RESTResponse","timestamp":"2026-11-28T13:20:31.262+0000","asterisk_id":"02:fc:00:00:00:01",
        "application":"accent","transaction_id":"t1","request_id":"r1","status_code":204,"reason_phrase":"No Content",
        "uri":"channels/s27-2002/answer"}"#;
    let ev = accentd::ari::parse_event(text).expect("parse");
    let accentd::ari::AriEvent::RestResponse(r) = ev else {
        panic!("{ev:?}")
    };
    let RestResponse {
        status_code,
        reason_phrase,
        ..
    } = *r;
    assert_eq!((status_code, reason_phrase.as_str()), (204, "No Content"));
}
