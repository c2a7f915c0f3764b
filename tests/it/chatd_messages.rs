//! chatd messages over HTTP: posting (members only) with its events, a room's list
//! (paging, direction, `from_date`), the search across the caller's rooms (case and
//! accents folded, short words, other rooms never leaking) and `distinct=room_uuid`,
//! ACLs, tenants and bad bodies.

use crate::chatd_rooms::{events, new_tenant, no_more, room_with, token_with_acl, user, CHATD};
use crate::common::TestServer;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn post(s: &TestServer, token: &str, room: &str, body: Value) -> (StatusCode, Value) {
    s.post(&format!("{CHATD}/users/me/rooms/{room}/messages"), token, body)
        .await
}

/// Posts `content`; panics unless it is created.
async fn say(s: &TestServer, token: &str, room: &str, content: &str) -> Value {
    let (code, m) = post(s, token, room, json!({ "content": content })).await;
    assert_eq!(code, StatusCode::CREATED, "{m}");
    m
}

fn contents(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["content"].as_str().expect("content").to_string())
        .collect()
}

/// A tenant with alice, bob and carol, and alice and bob's room: (tenant, users, room).
async fn pair(s: &TestServer) -> (String, [(String, String); 3], String) {
    let tenant = new_tenant(s, "chat").await;
    let alice = user(s, &tenant, "alice").await;
    let bob = user(s, &tenant, "bob").await;
    let carol = user(s, &tenant, "carol").await;
    let (code, room) = room_with(s, &alice.1, &[&bob.0]).await;
    assert_eq!(code, StatusCode::CREATED, "{room}");
    let room = room["uuid"].as_str().expect("uuid").to_string();
    (tenant, [alice, bob, carol], room)
}

#[tokio::test]
async fn members_post_and_every_member_is_told() {
    let s = TestServer::start().await;
    let (tenant, [(alice, alice_t), (bob, bob_t), (_, carol_t)], room) = pair(&s).await;
    let server = s.app().uuid.to_string();
    let mut bus = s.app().bus.subscribe();

    let (code, m) = post(&s, &alice_t, &room, json!({"content": "hello bob", "alias": "Al"})).await;
    assert_eq!(code, StatusCode::CREATED, "{m}");
    let uuid = m["uuid"].as_str().expect("uuid").to_string();
    let created_at = m["created_at"].as_str().expect("created_at").to_string();
    assert_eq!(
        m,
        json!({"uuid": uuid, "content": "hello bob", "alias": "Al", "user_uuid": alice,
               "tenant_uuid": tenant, "wazo_uuid": server, "created_at": created_at,
               "room": {"uuid": room}})
    );
    // Upstream's isoformat: microseconds and the UTC offset.
    assert!(created_at.ends_with("+00:00") && created_at.len() == 32, "{created_at}");

    let told = events(&mut bus, "chatd_user_room_message_created", 2).await;
    for (event, member) in told.iter().zip([&bob, &alice]) {
        let key = format!("chatd.users.{member}.rooms.{room}.messages.created");
        assert_eq!(event.routing_key, key);
        let body = event.to_json();
        assert_eq!(body["required_acl"], format!("events.{key}"));
        assert_eq!(body["tenant_uuid"], json!(tenant));
        assert_eq!(body[format!("user_uuid:{member}")], true);
        assert_eq!(body["data"], m);
    }

    // Bob answers without alias; both read the same room.
    let reply = say(&s, &bob_t, &room, "hi alice").await;
    assert_eq!(reply["alias"], Value::Null);
    for token in [&alice_t, &bob_t] {
        let (code, list) = s.get(&format!("{CHATD}/users/me/rooms/{room}/messages"), token).await;
        assert_eq!(code, StatusCode::OK, "{list}");
        assert_eq!(list["items"], json!([reply, m]), "newest first");
        assert_eq!((list["total"].clone(), list["filtered"].clone()), (json!(2), json!(2)));
    }
    events(&mut bus, "chatd_user_room_message_created", 2).await;

    // Carol is not a member: the room does not exist for her, as an unknown one.
    let unknown = uuid::Uuid::new_v4().to_string();
    for target in [room.as_str(), unknown.as_str(), "not-a-uuid"] {
        let (code, err) = post(&s, &carol_t, target, json!({"content": "let me in"})).await;
        let (code2, err2) = s
            .get(&format!("{CHATD}/users/me/rooms/{target}/messages"), &carol_t)
            .await;
        for (code, err) in [(code, err), (code2, err2)] {
            assert_eq!(code, StatusCode::NOT_FOUND, "{target}: {err}");
            assert_eq!(err["error_id"], "unknown-room");
            assert_eq!(err["resource"], "rooms");
            assert_eq!(err["message"], format!("No such room: \"{target}\""));
            assert_eq!(err["details"], json!({ "uuid": target }));
        }
    }
    // Nor is the master tenant's admin.
    let (code, _) = post(&s, &s.admin_token, &room, json!({"content": "admin"})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    no_more(&mut bus, "chatd_user_room_message_created");

    // Durable: still there after a restart.
    let s = s.restart().await;
    let bob_t = s.login("bob", "pw-chat-1").await;
    let (_, list) = s.get(&format!("{CHATD}/users/me/rooms/{room}/messages"), &bob_t).await;
    assert_eq!(contents(&list), ["hi alice", "hello bob"]);
}

#[tokio::test]
async fn a_rooms_messages_page_by_page_and_from_a_date() {
    let s = TestServer::start().await;
    let (_, [(_, alice_t), (_, bob_t), _], room) = pair(&s).await;
    let mut posted = Vec::new();
    for i in 0..5 {
        let token = if i % 2 == 0 { &alice_t } else { &bob_t };
        posted.push(say(&s, token, &room, &format!("message {i}")).await);
    }
    let url = format!("{CHATD}/users/me/rooms/{room}/messages");
    let page = |q: &str| {
        let (s, url, t) = (&s, url.clone(), alice_t.clone());
        let q = q.to_string();
        async move {
            let (code, body) = s.get(&format!("{url}?{q}"), &t).await;
            assert_eq!(code, StatusCode::OK, "{q}: {body}");
            body
        }
    };
    let list = page("limit=2&offset=1").await;
    assert_eq!(contents(&list), ["message 3", "message 2"]);
    assert_eq!((list["total"].clone(), list["filtered"].clone()), (json!(5), json!(5)));
    let list = page("direction=asc&order=created_at&limit=2").await;
    assert_eq!(contents(&list), ["message 0", "message 1"]);
    let list = page("offset=4").await;
    assert_eq!(contents(&list), ["message 0"]);
    let list = page("limit=0").await;
    assert_eq!(contents(&list), Vec::<String>::new());

    // from_date: the third message's own time, its `+` encoded and sent as it comes
    // (a raw `+` arrives as a space).
    let at = posted[2]["created_at"].as_str().expect("created_at");
    for q in [
        format!("from_date={}", at.replace('+', "%2B")),
        format!("from_date={at}"),
    ] {
        let list = page(&q).await;
        assert_eq!(contents(&list), ["message 4", "message 3", "message 2"], "{q}");
        assert_eq!((list["total"].clone(), list["filtered"].clone()), (json!(5), json!(3)));
    }
    let list = page("from_date=2999-01-01T00:00:00Z").await;
    assert_eq!((list["items"].clone(), list["filtered"].clone()), (json!([]), json!(0)));
    // A room's list may search too.
    let list = page("search=SAGE%204").await;
    assert_eq!(contents(&list), ["message 4"]);

    for q in [
        "limit=-1",
        "offset=x",
        "order=content",
        "direction=sideways",
        "from_date=yesterday",
    ] {
        let (code, err) = s.get(&format!("{url}?{q}"), &alice_t).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{q}: {err}");
        assert_eq!(err["error_id"], "invalid-data", "{q}");
    }
}

#[tokio::test]
async fn search_and_latest_message_of_each_room() {
    let s = TestServer::start().await;
    let (_, [(alice, alice_t), (bob, bob_t), (carol, carol_t)], ab) = pair(&s).await;
    let (_, ac) = room_with(&s, &alice_t, &[&carol]).await;
    let ac = ac["uuid"].as_str().expect("uuid").to_string();
    let (_, bc) = room_with(&s, &bob_t, &[&carol]).await;
    let bc = bc["uuid"].as_str().expect("uuid").to_string();
    say(&s, &alice_t, &ab, "Réunion à 10h demain").await;
    say(&s, &bob_t, &ab, "lunch at noon?").await;
    say(&s, &carol_t, &ac, "the REUNION moved to 11h").await;
    say(&s, &alice_t, &ac, "ok, see you at 11").await;
    // Not alice's room: never in her results.
    say(&s, &bob_t, &bc, "reunion gossip").await;

    let search = |q: &str| {
        let (s, t) = (&s, alice_t.clone());
        let q = q.to_string();
        async move {
            let (code, body) = s.get(&format!("{CHATD}/users/me/rooms/messages?{q}"), &t).await;
            assert_eq!(code, StatusCode::OK, "{q}: {body}");
            body
        }
    };
    // Case and accents folded, any position in the text.
    let found = search("search=reunion").await;
    assert_eq!(contents(&found), ["the REUNION moved to 11h", "Réunion à 10h demain"]);
    assert_eq!(
        (found["filtered"].clone(), found["total"].clone()),
        (json!(2), json!(4))
    );
    assert_eq!(contents(&search("search=RÉUNI").await).len(), 2);
    // Every word required; words of one or two characters too.
    assert_eq!(
        contents(&search("search=union%20moved").await),
        ["the REUNION moved to 11h"]
    );
    assert_eq!(
        contents(&search("search=at").await),
        ["ok, see you at 11", "lunch at noon?"]
    );
    assert_eq!(contents(&search("search=11%20ok").await), ["ok, see you at 11"]);
    assert_eq!(
        contents(&search("search=nothing%20matches").await),
        Vec::<String>::new()
    );
    // Query syntax is text.
    assert_eq!(
        contents(&search("search=%22noon%22%20OR%20*").await),
        Vec::<String>::new()
    );
    let page = search("search=reunion&direction=asc&limit=1").await;
    assert_eq!(contents(&page), ["Réunion à 10h demain"]);
    assert_eq!(page["filtered"], 2);
    assert_eq!(
        contents(&search("search=reunion&offset=1").await),
        ["Réunion à 10h demain"]
    );
    // Past the end: no item, the count still right.
    let past = search("search=reunion&offset=5").await;
    assert_eq!((past["items"].clone(), past["filtered"].clone()), (json!([]), json!(2)));

    // The latest message of each of alice's rooms, newest first; narrowed by a search.
    let latest = search("distinct=room_uuid").await;
    assert_eq!(contents(&latest), ["ok, see you at 11", "lunch at noon?"]);
    assert_eq!(latest["items"][0]["room"]["uuid"], json!(ac));
    assert_eq!(latest["items"][1]["room"]["uuid"], json!(ab));
    assert_eq!(
        (latest["filtered"].clone(), latest["total"].clone()),
        (json!(2), json!(4))
    );
    let latest = search("distinct=room_uuid&search=noon").await;
    assert_eq!(contents(&latest), ["lunch at noon?"]);
    // Upstream picks the latest first, then searches: an older match does not count.
    assert_eq!(
        contents(&search("distinct=room_uuid&search=reunion").await),
        Vec::<String>::new()
    );

    // One of the two is required; distinct knows one field.
    for q in ["", "search=", "limit=10", "distinct=user_uuid"] {
        let (code, err) = s.get(&format!("{CHATD}/users/me/rooms/messages?{q}"), &alice_t).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{q}: {err}");
        assert_eq!(err["error_id"], "invalid-data");
    }
    let (_, none) = s
        .get(
            &format!("{CHATD}/users/me/rooms/messages?search=reunion"),
            &s.admin_token,
        )
        .await;
    assert_eq!(none, json!({"items": [], "filtered": 0, "total": 0}));
    let _ = (alice, bob);
}

#[tokio::test]
async fn bad_message_bodies_are_json_4xx() {
    let s = TestServer::start().await;
    let (_, [(_, alice_t), _, _], room) = pair(&s).await;
    let mut bus = s.app().bus.subscribe();
    let url = format!("{}{CHATD}/users/me/rooms/{room}/messages", s.base);
    let hundred_kb = "x".repeat(100 * 1024);
    for (raw, field, message) in [
        (
            json!({"content": ""}).to_string(),
            "content",
            "Shorter than minimum length 1.",
        ),
        (json!({}).to_string(), "content", "Missing data for required field."),
        (
            json!({"content": null}).to_string(),
            "content",
            "Field may not be null.",
        ),
        (json!({"content": 7}).to_string(), "content", "Not a valid string."),
        (
            json!({ "content": hundred_kb }).to_string(),
            "content",
            "Longer than maximum length 65536.",
        ),
        (
            json!({"content": "x", "alias": "a".repeat(257)}).to_string(),
            "alias",
            "Longer than maximum length 256.",
        ),
    ] {
        let (code, err) = raw_post(&s, &url, &alice_t, raw.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{field}: {err}");
        assert_eq!(err["error_id"], "invalid-data");
        assert_eq!(err["details"][field], json!([message]), "{err}");
    }
    for (raw, needle) in [
        ("{\"content\": ".to_string(), "Invalid JSON body"),
        ("[\"hi\"]".to_string(), "_schema"),
        (
            json!({"content": "hi", "sender_identity_uuid": "x"}).to_string(),
            "sender_identity_uuid",
        ),
        (json!({"content": "hi", "alias": ["a"]}).to_string(), "alias"),
    ] {
        let (code, err) = raw_post(&s, &url, &alice_t, raw.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{raw}: {err}");
        assert_eq!(err["error_id"], "invalid-data");
        assert!(err["details"].to_string().contains(needle), "{raw}: {err}");
    }
    let (code, err) = raw_post(&s, &url, &alice_t, "x".repeat(2 * 1024 * 1024)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err["error_id"], "payload-too-large");
    no_more(&mut bus, "chatd_user_room_message_created");
    let (_, list) = s
        .get(&format!("{CHATD}/users/me/rooms/{room}/messages"), &alice_t)
        .await;
    assert_eq!(list["total"], 0, "nothing stored");
}

async fn raw_post(s: &TestServer, url: &str, token: &str, body: String) -> (StatusCode, Value) {
    let r = s
        .client
        .post(url)
        .header("X-Auth-Token", token)
        .body(body)
        .send()
        .await
        .expect("send");
    let code = r.status();
    (code, r.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn messages_need_their_acls() {
    let s = TestServer::start().await;
    let (tenant, [(_, alice_t), (bob, _), _], room) = pair(&s).await;
    say(&s, &alice_t, &room, "hello").await;
    // A token that may read one room's messages only, of a user who is in no room: the
    // ACL passes and membership still answers 404.
    let reader = token_with_acl(
        &s,
        &tenant,
        "reader",
        json!([format!("chatd.users.me.rooms.{room}.messages.read")]),
    )
    .await;
    let (code, err) = s.get(&format!("{CHATD}/users/me/rooms/{room}/messages"), &reader).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{err}");
    for (method_get, path, acl) in [
        (
            false,
            format!("/users/me/rooms/{room}/messages"),
            format!("chatd.users.me.rooms.{room}.messages.create"),
        ),
        (
            true,
            "/users/me/rooms/messages?search=x".to_string(),
            "chatd.users.me.rooms.messages.read".to_string(),
        ),
        (
            true,
            format!("/users/me/rooms/{}/messages", uuid::Uuid::new_v4()),
            String::new(),
        ),
    ] {
        let url = format!("{CHATD}{path}");
        let (code, err) = if method_get {
            s.get(&url, &reader).await
        } else {
            s.post(&url, &reader, json!({"content": "x"})).await
        };
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{path}: {err}");
        if !acl.is_empty() {
            assert_eq!(err["details"]["required_access"], json!(acl));
        }
    }
    // A dotted room id cannot reach another ACL: dots become `_` in the required access.
    let (code, err) = s
        .get(&format!("{CHATD}/users/me/rooms/{room}.x/messages"), &reader)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(
        err["details"]["required_access"],
        json!(format!("chatd.users.me.rooms.{room}_x.messages.read"))
    );
    let _ = bob;
}
