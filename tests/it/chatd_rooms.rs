//! chatd rooms over HTTP: creation (the same user set gets its room back), the rules on
//! members (bounds, duplicates, tenants, this server), the list and its `user_uuid`
//! filter, the `chatd_user_room_created` events, ACLs and bad bodies.

use std::sync::Arc;
use std::time::Duration;

use crate::common::TestServer;
use accentd::bus::Event;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::broadcast::Receiver;

pub(crate) const CHATD: &str = "/api/chatd/1.0";

/// A PBX user of `tenant` (default user policy), logged in: (uuid, token).
pub(crate) async fn user(s: &TestServer, tenant: &str, name: &str) -> (String, String) {
    let uuid = s.create_user_sql(tenant, name, "pw-chat-1").await;
    let token = s.login(name, "pw-chat-1").await;
    (uuid, token)
}

/// `n` users of `tenant` straight into the store (no login): their uuids.
pub(crate) async fn bare_users(s: &TestServer, tenant: &str, n: usize) -> Vec<String> {
    let uuids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (all, t) = (uuids.clone(), tenant.to_string());
    s.app()
        .store
        .write(move |tx| {
            for u in &all {
                tx.execute(
                    "INSERT INTO auth_user (uuid, username, purpose, tenant_uuid, created_at) VALUES (?1, ?1, 'user', ?2, 0)",
                    [u, &t],
                )?;
            }
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("users");
    uuids
}

/// A token holding `acl` and nothing else: an `external_api` account (a PBX user would get
/// the default user policy, chatd's ACLs included).
pub(crate) async fn token_with_acl(s: &TestServer, tenant: &str, name: &str, acl: Value) -> String {
    let (code, policy) = s
        .call_with_headers(
            Method::POST,
            "/policies",
            Some(&s.admin_token),
            Some(json!({ "name": format!("{name}-rights"), "acl": acl })),
            &[("Accent-Tenant", tenant)],
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{policy}");
    let user = s.create_user_sql(tenant, name, "pw-chat-1").await;
    let policy = policy["uuid"].as_str().expect("uuid").to_string();
    s.app()
        .store
        .write(move |tx| {
            tx.execute("UPDATE auth_user SET purpose = 'external_api' WHERE uuid = ?1", [&user])?;
            tx.execute(
                "INSERT INTO auth_user_policy (user_uuid, policy_uuid) VALUES (?1, ?2)",
                [&user, &policy],
            )?;
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("service account");
    s.login(name, "pw-chat-1").await
}

pub(crate) async fn new_tenant(s: &TestServer, name: &str) -> String {
    let (code, body) = s.post("/tenants", &s.admin_token, json!({ "name": name })).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["uuid"].as_str().expect("uuid").to_string()
}

/// `POST /users/me/rooms` with members given by uuid.
pub(crate) async fn room_with(s: &TestServer, token: &str, users: &[&str]) -> (StatusCode, Value) {
    let users: Vec<Value> = users.iter().map(|u| json!({ "uuid": u })).collect();
    s.post(&format!("{CHATD}/users/me/rooms"), token, json!({ "users": users }))
        .await
}

/// The next `count` events named `name`, in order.
pub(crate) async fn events(bus: &mut Receiver<Arc<Event>>, name: &str, count: usize) -> Vec<Arc<Event>> {
    let mut out = Vec::new();
    while out.len() < count {
        let e = tokio::time::timeout(Duration::from_secs(5), bus.recv())
            .await
            .unwrap_or_else(|_| panic!("{name} event {} of {count}", out.len() + 1))
            .expect("bus");
        if e.name == name {
            out.push(e);
        }
    }
    out
}

/// No event named `name` waiting.
pub(crate) fn no_more(bus: &mut Receiver<Arc<Event>>, name: &str) {
    while let Ok(e) = bus.try_recv() {
        assert_ne!(e.name, name, "unexpected {}", e.routing_key);
    }
}

fn member(uuid: &str, tenant: &str, server: &str) -> Value {
    json!({ "uuid": uuid, "tenant_uuid": tenant, "wazo_uuid": server })
}

#[tokio::test]
async fn a_user_set_has_one_room_announced_to_each_member() {
    let s = TestServer::start().await;
    let tenant = new_tenant(&s, "chat").await;
    let server = s.app().uuid.to_string();
    let (alice, alice_t) = user(&s, &tenant, "alice").await;
    let (bob, bob_t) = user(&s, &tenant, "bob").await;
    let (carol, _) = user(&s, &tenant, "carol").await;
    let mut bus = s.app().bus.subscribe();

    let (code, room) = s
        .post(
            &format!("{CHATD}/users/me/rooms"),
            &alice_t,
            json!({"name": "team", "users": [{"uuid": bob, "tenant_uuid": tenant, "wazo_uuid": server}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{room}");
    let uuid = room["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(
        room,
        json!({"uuid": uuid, "tenant_uuid": tenant, "name": "team",
               "users": [member(&bob, &tenant, &server), member(&alice, &tenant, &server)]})
    );
    // The server's uuid is the one tokens carry.
    let (_, token) = s.call(Method::GET, &format!("/token/{alice_t}"), None, None).await;
    assert_eq!(token["data"]["xivo_uuid"], json!(server));

    let created = events(&mut bus, "chatd_user_room_created", 2).await;
    for (event, member) in created.iter().zip([&bob, &alice]) {
        let body = event.to_json();
        assert_eq!(event.routing_key, format!("chatd.users.{member}.rooms.created"));
        assert_eq!(
            body["required_acl"],
            format!("events.chatd.users.{member}.rooms.created")
        );
        assert_eq!(body["tenant_uuid"], json!(tenant));
        assert_eq!(body[format!("user_uuid:{member}")], true);
        assert!(body.get("user_uuid:*").is_none(), "members only");
        assert_eq!(body["origin_uuid"], json!(server));
        assert_eq!(body["data"], room);
    }

    // The same set, asked by the other member in the other order: the same room, as it
    // was (name included), still 201, and nothing announced again.
    let (code, again) = s
        .post(
            &format!("{CHATD}/users/me/rooms"),
            &bob_t,
            json!({"name": "other name", "users": [{"uuid": alice}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{again}");
    assert_eq!(again, room);
    let (code, again) = room_with(&s, &alice_t, &[&alice, &bob]).await;
    assert_eq!((code, &again["uuid"]), (StatusCode::CREATED, &json!(uuid)));
    // A larger set is another room.
    let (code, three) = room_with(&s, &alice_t, &[&bob, &carol]).await;
    assert_eq!(code, StatusCode::CREATED, "{three}");
    assert_ne!(three["uuid"], json!(uuid));
    assert_eq!(three["name"], Value::Null);
    let created = events(&mut bus, "chatd_user_room_created", 3).await;
    let keys: Vec<&str> = created.iter().map(|e| e.routing_key.as_str()).collect();
    assert_eq!(
        keys,
        [&bob, &carol, &alice]
            .iter()
            .map(|u| format!("chatd.users.{u}.rooms.created"))
            .collect::<Vec<_>>()
    );
    no_more(&mut bus, "chatd_user_room_created");

    // Rooms are durable.
    let s = s.restart().await;
    let alice_t = s.login("alice", "pw-chat-1").await;
    let (code, list) = s.get(&format!("{CHATD}/users/me/rooms"), &alice_t).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0], room);
    assert_eq!(list["total"], 2);
}

#[tokio::test]
async fn the_list_has_the_callers_rooms_narrowed_by_user_uuid() {
    let s = TestServer::start().await;
    let tenant = new_tenant(&s, "chat").await;
    let (alice, alice_t) = user(&s, &tenant, "alice").await;
    let (bob, bob_t) = user(&s, &tenant, "bob").await;
    let (carol, carol_t) = user(&s, &tenant, "carol").await;
    let mut rooms = Vec::new();
    for (token, members) in [
        (&alice_t, vec![bob.as_str()]),
        (&alice_t, vec![bob.as_str(), carol.as_str()]),
        (&alice_t, vec![carol.as_str()]),
        (&bob_t, vec![carol.as_str()]),
    ] {
        let (code, room) = room_with(&s, token, &members).await;
        assert_eq!(code, StatusCode::CREATED, "{room}");
        rooms.push(room["uuid"].clone());
    }
    let listed = |body: &Value| -> Vec<Value> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|r| r["uuid"].clone())
            .collect()
    };
    let url = format!("{CHATD}/users/me/rooms");
    let (code, all) = s.get(&url, &alice_t).await;
    assert_eq!(code, StatusCode::OK, "{all}");
    assert_eq!(listed(&all), rooms[..3].to_vec());
    assert_eq!((all["total"].clone(), all["filtered"].clone()), (json!(3), json!(3)));
    let (_, with_bob) = s.get(&format!("{url}?user_uuid={bob}"), &alice_t).await;
    assert_eq!(listed(&with_bob), rooms[..2].to_vec());
    assert_eq!(with_bob["total"], 2);
    let (_, both) = s.get(&format!("{url}?user_uuid={bob},{carol}"), &alice_t).await;
    assert_eq!(listed(&both), vec![rooms[1].clone()]);
    // The caller is always one of the users: naming it changes nothing.
    let (_, me_too) = s.get(&format!("{url}?user_uuid={alice},{bob}"), &alice_t).await;
    assert_eq!(listed(&me_too), rooms[..2].to_vec());
    let (_, carols) = s.get(&url, &carol_t).await;
    assert_eq!(listed(&carols), rooms[1..].to_vec());
    // A room alice is not in never shows, whatever she filters on.
    let (_, none) = s.get(&format!("{url}?user_uuid={bob},{carol}"), &carol_t).await;
    assert_eq!(listed(&none), vec![rooms[1].clone(), rooms[3].clone()]);
    let (code, bad) = s.get(&format!("{url}?user_uuid=not-a-uuid"), &alice_t).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["error_id"], "invalid-data");
    assert!(bad["details"]["user_uuid"].is_array(), "{bad}");
}

#[tokio::test]
async fn member_rules() {
    let s = TestServer::start().await;
    let tenant = new_tenant(&s, "chat").await;
    let other_tenant = new_tenant(&s, "elsewhere").await;
    let (alice, alice_t) = user(&s, &tenant, "alice").await;
    let (bob, _) = user(&s, &tenant, "bob").await;
    let (stranger, _) = user(&s, &other_tenant, "stranger").await;
    let url = format!("{CHATD}/users/me/rooms");
    let mut bus = s.app().bus.subscribe();

    // Alone: no users, only the creator, the creator twice (a duplicate first).
    for body in [json!({}), json!({"users": []}), json!({"users": [{"uuid": alice}]})] {
        let (code, err) = s.post(&url, &alice_t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error_id"], "invalid-data");
        assert_eq!(err["details"], json!({"users": ["Length must be between 2 and 100."]}));
    }
    for users in [vec![&bob, &bob], vec![&alice, &bob, &alice]] {
        let (code, err) = room_with(&s, &alice_t, &users.iter().map(|u| u.as_str()).collect::<Vec<_>>()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error_id"], "duplicate-user");
        assert_eq!(err["message"], "Duplicate user detected");
        assert_eq!(err["resource"], "rooms");
    }

    // 100 members with the creator: fine; 101: refused.
    let many = bare_users(&s, &tenant, 100).await;
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let (code, room) = room_with(&s, &alice_t, &refs[..99]).await;
    assert_eq!(code, StatusCode::CREATED, "{room}");
    assert_eq!(room["users"].as_array().map(Vec::len), Some(100));
    let (code, err) = room_with(&s, &alice_t, &refs).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["details"], json!({"users": ["Length must be between 2 and 100."]}));

    // Members are users of the creator's tenant on this server: another tenant's user
    // answers like a user that does not exist, naming the entry.
    let missing = uuid::Uuid::new_v4().to_string();
    for (users, field) in [
        (json!([{"uuid": bob}, {"uuid": stranger}]), "1"),
        (json!([{"uuid": missing}]), "0"),
    ] {
        let (code, err) = s.post(&url, &alice_t, json!({ "users": users })).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error_id"], "invalid-data");
        assert_eq!(
            err["details"]["users"][field]["uuid"],
            json!(["No such user in this tenant."])
        );
    }
    let (code, err) = s
        .post(
            &url,
            &alice_t,
            json!({"users": [{"uuid": bob, "tenant_uuid": other_tenant}]}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["details"]["users"]["0"]["tenant_uuid"].is_array(), "{err}");
    let other_server = uuid::Uuid::new_v4().to_string();
    let (code, err) = s
        .post(
            &url,
            &alice_t,
            json!({"users": [{"uuid": bob, "wazo_uuid": other_server}]}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["details"]["users"]["0"]["wazo_uuid"].is_array(), "{err}");

    // Only the 100-member room was made.
    let created = events(&mut bus, "chatd_user_room_created", 100).await;
    assert!(created.iter().all(|e| e.data["uuid"] == room["uuid"]));
    no_more(&mut bus, "chatd_user_room_created");
    let (_, list) = s.get(&url, &alice_t).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn bad_room_bodies_are_json_400s() {
    let s = TestServer::start().await;
    let tenant = new_tenant(&s, "chat").await;
    let (_, alice_t) = user(&s, &tenant, "alice").await;
    let (bob, _) = user(&s, &tenant, "bob").await;
    let url = format!("{}{CHATD}/users/me/rooms", s.base);
    // Each answer's details name the field (or the unknown key).
    for (raw, needle) in [
        ("{not json".to_string(), "_schema"),
        ("[]".to_string(), "_schema"),
        ("\"users\"".to_string(), "_schema"),
        (json!({"users": [{"uuid": bob}], "bogus": 1}).to_string(), "bogus"),
        (
            json!({"users": [{"uuid": bob, "identity": "+1555"}]}).to_string(),
            "identity",
        ),
        (json!({"users": {"uuid": bob}}).to_string(), "users"),
        (json!({"users": [{"uuid": "bob"}]}).to_string(), "users[0].uuid"),
        (json!({"users": [{"uuid": 42}]}).to_string(), "users[0].uuid"),
        (json!({"users": [{}]}).to_string(), "uuid"),
        (json!({"users": [{"uuid": bob}], "name": 3}).to_string(), "name"),
    ] {
        let r = s
            .client
            .post(&url)
            .header("X-Auth-Token", &alice_t)
            .body(raw.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{raw}");
        let body: Value = r.json().await.expect("a JSON error");
        assert_eq!(body["error_id"], "invalid-data", "{raw}: {body}");
        assert!(body["details"].to_string().contains(needle), "{raw}: {body}");
    }
    // Over the body limit: 413 with a JSON body.
    let huge = json!({"users": [{"uuid": bob}], "name": "x".repeat(2 * 1024 * 1024)});
    let (code, body) = s.post(&format!("{CHATD}/users/me/rooms"), &alice_t, huge).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error_id"], "payload-too-large");
}

#[tokio::test]
async fn rooms_need_their_acls() {
    let s = TestServer::start().await;
    let tenant = new_tenant(&s, "chat").await;
    let (bob, _) = user(&s, &tenant, "bob").await;
    let url = format!("{CHATD}/users/me/rooms");
    let reader = token_with_acl(&s, &tenant, "reader", json!(["chatd.users.me.rooms.read"])).await;
    let writer = token_with_acl(&s, &tenant, "writer", json!(["chatd.users.me.rooms.create"])).await;

    let (code, err) = room_with(&s, &reader, &[&bob]).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["details"]["required_access"], "chatd.users.me.rooms.create");
    let (code, _) = s.get(&url, &reader).await;
    assert_eq!(code, StatusCode::OK);
    let (code, room) = room_with(&s, &writer, &[&bob]).await;
    assert_eq!(code, StatusCode::CREATED, "{room}");
    let (code, err) = s.get(&url, &writer).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["details"]["required_access"], "chatd.users.me.rooms.read");
    let (code, _) = s.call(Method::GET, &url, None, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s.call(Method::GET, &url, Some("not-a-token"), None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rooms_stay_in_their_tenant() {
    let s = TestServer::start().await;
    let tenant = new_tenant(&s, "chat").await;
    let other = new_tenant(&s, "elsewhere").await;
    let (alice, alice_t) = user(&s, &tenant, "alice").await;
    let (bob, _) = user(&s, &tenant, "bob").await;
    let (_, stranger_t) = user(&s, &other, "stranger").await;
    let (code, room) = room_with(&s, &alice_t, &[&bob]).await;
    assert_eq!(code, StatusCode::CREATED, "{room}");
    let url = format!("{CHATD}/users/me/rooms");
    let (_, list) = s.get(&url, &stranger_t).await;
    assert_eq!(list, json!({"items": [], "total": 0, "filtered": 0}));
    let (_, list) = s.get(&format!("{url}?user_uuid={alice}"), &stranger_t).await;
    assert_eq!(list["items"], json!([]));
    // The master tenant's admin is no member either.
    let (_, list) = s.get(&url, &s.admin_token).await;
    assert_eq!(list["total"], 0);
    // A room of the same two users made from the other tenant is the other tenant's
    // business: here, its user cannot name ours.
    let (code, err) = room_with(&s, &stranger_t, &[&alice]).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatd_status_and_config_need_their_acls() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let (_, user_t) = user(&s, &master, "plain").await;
    let (code, status) = s.get(&format!("{CHATD}/status"), &s.admin_token).await;
    assert_eq!(code, StatusCode::OK, "{status}");
    assert_eq!(status["rest_api"]["status"], "ok");
    assert_eq!(status["websocketd"]["status"], "ok");
    let (code, config) = s.get(&format!("{CHATD}/config"), &s.admin_token).await;
    assert_eq!(code, StatusCode::OK, "{config}");
    assert_eq!(config["debug"], false);
    let patch = json!([{"op": "replace", "path": "/debug", "value": true}]);
    let (code, config) = s
        .call(
            Method::PATCH,
            &format!("{CHATD}/config"),
            Some(&s.admin_token),
            Some(patch.clone()),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{config}");
    assert_eq!(config["debug"], true);
    // A user has none of these.
    for (method, path, body) in [
        (Method::GET, "status", None),
        (Method::GET, "config", None),
        (Method::PATCH, "config", Some(patch)),
    ] {
        let (code, _) = s.call(method, &format!("{CHATD}/{path}"), Some(&user_t), body).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{path}");
    }
}
