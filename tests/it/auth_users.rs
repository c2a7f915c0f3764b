//! /users: CRUD, lists, password, emails, user policies, the ACL a user's
//! token gets, service accounts, disabling, and tenant isolation.

use crate::common::TestServer;
use accentd::api::error::ApiError;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// POST /users with the admin token (optionally in a tenant); panics unless 200.
async fn create_user(s: &TestServer, tenant: Option<&str>, body: Value) -> Value {
    let (status, user) = post_in(s, &s.admin_token, tenant, "/users", body).await;
    assert_eq!(status, StatusCode::OK, "create user: {user}");
    user
}

async fn post_in(s: &TestServer, token: &str, tenant: Option<&str>, path: &str, body: Value) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = tenant.map(|t| ("Accent-Tenant", t)).into_iter().collect();
    s.call_with_headers(Method::POST, path, Some(token), Some(body), &headers)
        .await
}

async fn call_in(
    s: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    tenant: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    s.call_with_headers(method, path, Some(token), body, &[("Accent-Tenant", tenant)])
        .await
}

async fn create_tenant(s: &TestServer, name: &str) -> String {
    let (status, t) = s.post("/tenants", &s.admin_token, json!({ "name": name })).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t["uuid"].as_str().expect("uuid").to_string()
}

/// A policy written straight to the store (policy CRUD is another module).
async fn insert_policy(s: &TestServer, tenant: &str, slug: &str, acl: &[&str]) -> String {
    let uuid = Uuid::new_v4().to_string();
    let (u, t, sl) = (uuid.clone(), tenant.to_string(), slug.to_string());
    let acl: Vec<String> = acl.iter().map(|a| a.to_string()).collect();
    s.app()
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO auth_policy (uuid, tenant_uuid, name, slug, description) VALUES (?1, ?2, ?3, ?3, 'test')",
                rusqlite::params![u, t, sl],
            )?;
            for (i, a) in acl.iter().enumerate() {
                tx.execute(
                    "INSERT INTO auth_policy_access (policy_uuid, access, position) VALUES (?1, ?2, ?3)",
                    rusqlite::params![u, a, i as i64],
                )?;
            }
            Ok::<_, ApiError>(())
        })
        .await
        .expect("insert policy");
    uuid
}

/// A group holding `policy`, with `user` as member (group CRUD is another module).
async fn insert_group_with(s: &TestServer, tenant: &str, user: &str, policy: &str) {
    let (g, t, u, p) = (
        Uuid::new_v4().to_string(),
        tenant.to_string(),
        user.to_string(),
        policy.to_string(),
    );
    s.app()
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO auth_group (uuid, tenant_uuid, name, slug) VALUES (?1, ?2, ?1, ?1)",
                rusqlite::params![g, t],
            )?;
            tx.execute(
                "INSERT INTO auth_user_group (user_uuid, group_uuid) VALUES (?1, ?2)",
                rusqlite::params![u, g],
            )?;
            tx.execute(
                "INSERT INTO auth_group_policy (group_uuid, policy_uuid) VALUES (?1, ?2)",
                rusqlite::params![g, p],
            )?;
            Ok::<_, ApiError>(())
        })
        .await
        .expect("insert group");
}

async fn token_data(s: &TestServer, token: &str) -> Value {
    let (status, body) = s.call(Method::GET, &format!("/token/{token}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

async fn token_status(s: &TestServer, token: &str) -> StatusCode {
    s.call(Method::HEAD, &format!("/token/{token}"), None, None).await.0
}

fn uuid_of(v: &Value) -> String {
    v["uuid"].as_str().expect("uuid").to_string()
}

fn usernames(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn crud_happy_path() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let fixed = Uuid::new_v4().to_string();
    let user = create_user(
        &s,
        None,
        json!({
            "uuid": fixed, "username": "alice", "firstname": "Alice", "lastname": "Liddell",
            "password": "pw-alice", "email_address": "alice@example.com",
        }),
    )
    .await;
    assert_eq!(user["uuid"], fixed);
    assert_eq!(user["username"], "alice");
    assert_eq!(user["firstname"], "Alice");
    assert_eq!(user["lastname"], "Liddell");
    assert_eq!(user["enabled"], true);
    assert_eq!(user["purpose"], "user");
    assert_eq!(user["authentication_method"], "default");
    assert_eq!(user["tenant_uuid"], master);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let emails = user["emails"].as_array().expect("emails");
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["address"], "alice@example.com");
    assert_eq!(emails[0]["main"], true);
    assert_eq!(emails[0]["confirmed"], true);
    assert!(Uuid::parse_str(emails[0]["uuid"].as_str().expect("email uuid")).is_ok());

    let (status, got) = s.get(&format!("/users/{fixed}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, user);

    // PUT replaces the editable fields; omitted ones take their defaults.
    let (status, updated) = s
        .put(
            &format!("/users/{fixed}"),
            &s.admin_token,
            json!({ "username": "alice2", "firstname": "Al", "purpose": "external_api", "password": "ignored" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["username"], "alice2");
    assert_eq!(updated["firstname"], "Al");
    assert_eq!(updated["lastname"], Value::Null);
    assert_eq!(updated["purpose"], "external_api");
    assert_eq!(updated["authentication_method"], "native");
    assert_eq!(updated["emails"], user["emails"]);
    // The password is not changed by PUT.
    s.login("alice2", "pw-alice").await;

    let (status, _) = s.delete(&format!("/users/{fixed}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.get(&format!("/users/{fixed}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_id"], "unknown-user");
    let (status, _) = s.delete(&format!("/users/{fixed}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_search_filter_paginate_order() {
    let s = TestServer::start().await;
    for (name, first, last, purpose, email) in [
        ("ann", "Ann", "Zed", "user", "ann@example.com"),
        ("bob", "Bob", "Young", "user", "bob@corp.example"),
        ("carl", "Carl", "Xu", "internal", "carl@example.com"),
        ("dora", "Dora", "Wu", "external_api", "dora@corp.example"),
    ] {
        create_user(
            &s,
            None,
            json!({ "username": name, "firstname": first, "lastname": last, "purpose": purpose, "email_address": email }),
        )
        .await;
    }
    // root + 4
    let (status, all) = s.get("/users", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["total"], 5);
    assert_eq!(all["filtered"], 5);
    assert_eq!(usernames(&all), ["ann", "bob", "carl", "dora", "root"]);

    let (_, found) = s.get("/users?search=corp", &s.admin_token).await;
    assert_eq!(usernames(&found), ["bob", "dora"]);
    assert_eq!(found["total"], 5);
    assert_eq!(found["filtered"], 2);
    let (_, found) = s.get("/users?search=YOU", &s.admin_token).await;
    assert_eq!(usernames(&found), ["bob"]);
    let (_, found) = s.get("/users?search=%25", &s.admin_token).await;
    assert_eq!(found["filtered"], 0, "LIKE wildcards are literal");

    let (_, found) = s.get("/users?purpose=internal", &s.admin_token).await;
    assert_eq!(usernames(&found), ["carl", "root"]);
    let (_, found) = s.get("/users?email_address=ann@example.com", &s.admin_token).await;
    assert_eq!(usernames(&found), ["ann"]);
    let (_, found) = s.get("/users?firstname=Dora&lastname=Wu", &s.admin_token).await;
    assert_eq!(usernames(&found), ["dora"]);
    let (_, found) = s.get("/users?username=bob", &s.admin_token).await;
    let bob = found["items"][0].clone();
    let (_, found) = s.get(&format!("/users?uuid={}", uuid_of(&bob)), &s.admin_token).await;
    assert_eq!(usernames(&found), ["bob"]);
    let (_, found) = s.get("/users?uuid=not-a-uuid", &s.admin_token).await;
    assert_eq!(found["filtered"], 0);

    let (_, page) = s
        .get("/users?order=lastname&direction=desc&limit=2&offset=1", &s.admin_token)
        .await;
    // NULLs sort as largest (PostgreSQL): root, without lastname, comes first.
    assert_eq!(usernames(&page), ["ann", "bob"], "{page}");
    assert_eq!(page["filtered"], 5);
    let (_, page) = s.get("/users?order=firstname&limit=1", &s.admin_token).await;
    assert_eq!(usernames(&page), ["ann"]);

    for bad in [
        "order=password_hash",
        "direction=sideways",
        "limit=-1",
        "offset=x",
        "recurse=perhaps",
    ] {
        let (status, body) = s.get(&format!("/users?{bad}"), &s.admin_token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error_id"], "invalid-data");
    }
}

#[tokio::test]
async fn policy_filters_and_user_policies() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let direct = insert_policy(&s, &master, "direct", &["confd.users.read", "calld.#"]).await;
    let via_group = insert_policy(&s, &master, "viagroup", &["dird.#"]).await;
    let ann = create_user(&s, None, json!({ "username": "ann" })).await;
    let bob = create_user(&s, None, json!({ "username": "bob" })).await;
    let svc = create_user(&s, None, json!({ "username": "svc", "purpose": "internal" })).await;
    let (ann_id, bob_id) = (uuid_of(&ann), uuid_of(&bob));

    let (status, body) = s
        .put(&format!("/users/{ann_id}/policies/{direct}"), &s.admin_token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Attaching twice is fine.
    let (status, _) = s
        .put(&format!("/users/{ann_id}/policies/{direct}"), &s.admin_token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    insert_group_with(&s, &master, &bob_id, &via_group).await;

    let (_, l) = s.get(&format!("/users?policy_uuid={direct}"), &s.admin_token).await;
    assert_eq!(usernames(&l), ["ann"]);
    let (_, l) = s.get("/users?policy_slug=direct", &s.admin_token).await;
    assert_eq!(usernames(&l), ["ann"]);
    let (_, l) = s.get(&format!("/users?policy_uuid={via_group}"), &s.admin_token).await;
    assert_eq!(l["filtered"], 0, "policy_uuid is direct only");
    let (_, l) = s
        .get(&format!("/users?has_policy_uuid={via_group}"), &s.admin_token)
        .await;
    assert_eq!(usernames(&l), ["bob"]);
    let (_, l) = s.get("/users?has_policy_slug=viagroup", &s.admin_token).await;
    assert_eq!(usernames(&l), ["bob"]);
    let (_, l) = s.get("/users?has_policy_slug=direct", &s.admin_token).await;
    assert_eq!(usernames(&l), ["ann"]);
    // PBX users hold the default user policy; service accounts don't.
    let (_, l) = s
        .get("/users?has_policy_slug=accent_default_user_policy", &s.admin_token)
        .await;
    assert_eq!(usernames(&l), ["ann", "bob"]);
    let (_, l) = s
        .get(
            "/users?has_policy_slug=accent_default_master_user_policy",
            &s.admin_token,
        )
        .await;
    assert_eq!(usernames(&l), ["root"]);
    assert_eq!(svc["purpose"], "internal");

    let (status, p) = s.get(&format!("/users/{ann_id}/policies"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["total"], 1);
    assert_eq!(p["filtered"], 1);
    let item = &p["items"][0];
    assert_eq!(item["uuid"], direct);
    assert_eq!(item["tenant_uuid"], master);
    assert_eq!(item["name"], "direct");
    assert_eq!(item["slug"], "direct");
    assert_eq!(item["description"], "test");
    assert_eq!(item["acl"], json!(["confd.users.read", "calld.#"]));
    assert_eq!(item["read_only"], false);
    assert_eq!(item["shared"], false);
    let (_, p) = s
        .get(&format!("/users/{ann_id}/policies?search=nomatch"), &s.admin_token)
        .await;
    assert_eq!((p["total"].clone(), p["filtered"].clone()), (json!(1), json!(0)));

    // Slug variant, attach then detach.
    let (status, _) = s
        .put(
            &format!("/users/{bob_id}/policies/slug/direct"),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, p) = s.get(&format!("/users/{bob_id}/policies"), &s.admin_token).await;
    assert_eq!(p["items"][0]["slug"], "direct");
    let (status, _) = s
        .delete(&format!("/users/{bob_id}/policies/slug/direct"), &s.admin_token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, p) = s.get(&format!("/users/{bob_id}/policies"), &s.admin_token).await;
    assert_eq!(p["total"], 0);
    let (status, _) = s
        .delete(&format!("/users/{ann_id}/policies/{direct}"), &s.admin_token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, l) = s.get(&format!("/users?policy_uuid={direct}"), &s.admin_token).await;
    assert_eq!(l["filtered"], 0);

    // Unknown policy or user: 404.
    let unknown = Uuid::new_v4();
    for path in [
        format!("/users/{ann_id}/policies/{unknown}"),
        format!("/users/{ann_id}/policies/slug/nosuchslug"),
        format!("/users/{unknown}/policies/{direct}"),
        format!("/users/not-a-uuid/policies/{direct}"),
    ] {
        let (status, body) = s.put(&path, &s.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        let (status, _) = s.delete(&path, &s.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, body) = s
        .put(
            &format!("/users/{ann_id}/policies/{unknown}"),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(body["error_id"], "unknown-policy");
    let (status, _) = s.get(&format!("/users/{unknown}/policies"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn token_acl_comes_from_user_and_group_policies() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let direct = insert_policy(&s, &master, "direct", &["confd.users.read", "!confd.users.secret.read"]).await;
    let grouped = insert_policy(&s, &master, "grouped", &["dird.#"]).await;
    let user = create_user(&s, None, json!({ "username": "u1", "password": "pw" })).await;
    let id = uuid_of(&user);

    let before = token_data(&s, &s.login("u1", "pw").await).await;
    let acl: Vec<String> = serde_json::from_value(before["acl"].clone()).expect("acl");
    assert!(
        acl.contains(&"auth.users.me.password.edit".to_string()),
        "default user policy"
    );
    assert!(!acl.contains(&"confd.users.read".to_string()));
    assert_eq!(before["metadata"]["purpose"], "user");

    let (status, _) = s
        .put(&format!("/users/{id}/policies/{direct}"), &s.admin_token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    insert_group_with(&s, &master, &id, &grouped).await;
    let after = token_data(&s, &s.login("u1", "pw").await).await;
    let acl: Vec<String> = serde_json::from_value(after["acl"].clone()).expect("acl");
    for expected in [
        "confd.users.read",
        "!confd.users.secret.read",
        "dird.#",
        "auth.users.me.password.edit",
    ] {
        assert!(acl.contains(&expected.to_string()), "{expected} in {acl:?}");
    }
}

#[tokio::test]
async fn service_accounts_get_only_their_policies() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let policy = insert_policy(&s, &master, "svc-internal", &["confd.#", "calld.calls.read"]).await;
    let svc = create_user(
        &s,
        None,
        json!({ "username": "accent-calld", "password": "service-key", "purpose": "internal" }),
    )
    .await;
    assert_eq!(svc["authentication_method"], "native");
    let (status, _) = s
        .put(
            &format!("/users/{}/policies/{policy}", uuid_of(&svc)),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let token = s.login("accent-calld", "service-key").await;
    let data = token_data(&s, &token).await;
    assert_eq!(data["acl"], json!(["confd.#", "calld.calls.read"]));
    assert_eq!(data["metadata"]["purpose"], "internal");
    assert_eq!(data["metadata"]["uuid"], svc["uuid"]);
    assert_eq!(data["accent_user_uuid"], Value::Null);
    let (status, _) = s
        .call(
            Method::HEAD,
            &format!("/token/{token}?scope=confd.users.read"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(
            Method::HEAD,
            &format!("/token/{token}?scope=auth.users.me.password.edit"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no default user policy for services");

    let ext = create_user(
        &s,
        None,
        json!({ "username": "integration", "password": "k", "purpose": "external_api" }),
    )
    .await;
    let data = token_data(&s, &s.login("integration", "k").await).await;
    assert_eq!(data["acl"], json!([]));
    assert_eq!(data["metadata"]["purpose"], "external_api");
    assert_eq!(data["metadata"]["uuid"], ext["uuid"]);
}

#[tokio::test]
async fn login_by_email_and_disable_revokes_sessions() {
    let s = TestServer::start().await;
    let user = create_user(
        &s,
        None,
        json!({ "username": "eve", "password": "pw-eve", "email_address": "eve@example.com" }),
    )
    .await;
    let id = uuid_of(&user);
    let by_name = s.login("eve", "pw-eve").await;
    let by_email = s.login("eve@example.com", "pw-eve").await;
    assert_eq!(token_data(&s, &by_email).await["metadata"]["uuid"], id);
    assert_eq!(token_status(&s, &by_name).await, StatusCode::NO_CONTENT);

    let mut events = s.app().bus.subscribe();
    let (status, updated) = s
        .put(
            &format!("/users/{id}"),
            &s.admin_token,
            json!({ "username": "eve", "enabled": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["enabled"], false);
    assert_eq!(token_status(&s, &by_name).await, StatusCode::NOT_FOUND);
    assert_eq!(token_status(&s, &by_email).await, StatusCode::NOT_FOUND);
    let (status, body) = s.login_with("eve", "pw-eve", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = s.login_with("eve@example.com", "pw-eve", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The sessions are gone from the store too.
    let (_, sessions) = s.get(&format!("/users/{id}/sessions"), &s.admin_token).await;
    assert_eq!(sessions["total"], 0, "{sessions}");

    let mut deleted = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.name == "auth_session_deleted" {
            assert_eq!(e.data["user_uuid"], id);
            assert!(e.routing_key.starts_with("auth.sessions."), "{}", e.routing_key);
            assert!(e.routing_key.ends_with(".deleted"));
            deleted.push(e.data["uuid"].clone());
        }
    }
    assert_eq!(deleted.len(), 2, "one event per session");

    let (status, _) = s
        .put(&format!("/users/{id}"), &s.admin_token, json!({ "username": "eve" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.login("eve", "pw-eve").await;
}

#[tokio::test]
async fn deleting_a_user_revokes_its_tokens() {
    let s = TestServer::start().await;
    let user = create_user(&s, None, json!({ "username": "gone", "password": "pw" })).await;
    let token = s.login("gone", "pw").await;
    let mut events = s.app().bus.subscribe();
    let (status, _) = s.delete(&format!("/users/{}", uuid_of(&user)), &s.admin_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(token_status(&s, &token).await, StatusCode::NOT_FOUND);
    let (status, _) = s.login_with("gone", "pw", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let e = events.try_recv().expect("session event");
    assert_eq!(e.name, "auth_session_deleted");
    assert_eq!(e.data["user_uuid"], user["uuid"]);
    // The token stays revoked across a restart.
    let s = s.restart().await;
    assert_eq!(token_status(&s, &token).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn password_change() {
    let s = TestServer::start().await;
    let user = create_user(&s, None, json!({ "username": "pat", "password": "old-pw" })).await;
    let id = uuid_of(&user);
    let other = create_user(&s, None, json!({ "username": "other", "password": "x" })).await;
    let token = s.login("pat", "old-pw").await;

    // Wrong old password: upstream's failed-authentication body.
    let (status, body) = s
        .put(
            "/users/me/password",
            &token,
            json!({ "old_password": "nope", "new_password": "new-pw" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["reason"], json!(["Authentication Failed"]));
    assert_eq!(body["status_code"], 401);

    // `me` and the token's own uuid both work with the default user policy.
    let (status, body) = s
        .put(
            "/users/me/password",
            &token,
            json!({ "old_password": "old-pw", "new_password": "mid-pw" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = s
        .put(
            &format!("/users/{id}/password"),
            &token,
            json!({ "old_password": "mid-pw", "new_password": "new-pw" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.login_with("pat", "old-pw", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.login("pat", "new-pw").await;

    // Not someone else's.
    let (status, body) = s
        .put(
            &format!("/users/{}/password", uuid_of(&other)),
            &token,
            json!({ "old_password": "x", "new_password": "y" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["details"]["required_access"],
        format!("auth.users.{}.password.edit", uuid_of(&other))
    );

    for bad in [
        json!({ "old_password": "new-pw" }),
        json!({ "old_password": "new-pw", "new_password": "" }),
        json!({ "old_password": 1, "new_password": "a" }),
        json!([]),
    ] {
        let (status, body) = s.put("/users/me/password", &token, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error_id"], "invalid-data");
    }
    // Admin changes a password: the old one is still required.
    let (status, _) = s
        .put(
            &format!("/users/{id}/password"),
            &s.admin_token,
            json!({ "old_password": "new-pw", "new_password": "admin-set" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.login("pat", "admin-set").await;
    // A user without password can't have one "changed".
    let nopw = create_user(&s, None, json!({ "username": "nopw" })).await;
    let (status, _) = s
        .put(
            &format!("/users/{}/password", uuid_of(&nopw)),
            &s.admin_token,
            json!({ "old_password": "", "new_password": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .put(
            &format!("/users/{}/password", uuid_of(&nopw)),
            &s.admin_token,
            json!({ "old_password": "guess", "new_password": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_old_passwords_are_throttled() {
    let s = TestServer::start_with(|c| {
        c.auth.throttle.max_failures_per_login = 2;
    })
    .await;
    create_user(&s, None, json!({ "username": "t", "password": "right" })).await;
    let token = s.login("t", "right").await;
    let body = json!({ "old_password": "wrong", "new_password": "n" });
    for _ in 0..2 {
        let (status, _) = s.put("/users/me/password", &token, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = s
        .put(
            "/users/me/password",
            &token,
            json!({ "old_password": "right", "new_password": "n" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn me_paths() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let reader = insert_policy(
        &s,
        &master,
        "selfread",
        &["auth.users.me.read", "auth.users.me.policies.read"],
    )
    .await;
    let user = create_user(&s, None, json!({ "username": "mia", "password": "pw" })).await;
    let id = uuid_of(&user);
    let (status, _) = s
        .put(&format!("/users/{id}/policies/{reader}"), &s.admin_token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let token = s.login("mia", "pw").await;

    let (status, me) = s.get("/users/me", &token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["uuid"], id);
    let (status, me) = s.get(&format!("/users/{id}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "mia");
    let (status, p) = s.get("/users/me/policies", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["items"][0]["uuid"], reader);
    // `me` of the admin token is the admin.
    let (status, admin) = s.get("/users/me", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(admin["username"], crate::common::ADMIN_USER);
    assert_eq!(admin["purpose"], "internal");
}

#[tokio::test]
async fn acl_denial_for_plain_users() {
    let s = TestServer::start().await;
    let plain = create_user(&s, None, json!({ "username": "plain", "password": "pw" })).await;
    let other = create_user(&s, None, json!({ "username": "victim", "password": "pw" })).await;
    let (pid, oid) = (uuid_of(&plain), uuid_of(&other));
    let token = s.login("plain", "pw").await;
    let policy = Uuid::new_v4();
    let cases: Vec<(Method, String, Option<Value>, String)> = vec![
        (Method::GET, "/users".into(), None, "auth.users.read".into()),
        (
            Method::POST,
            "/users".into(),
            Some(json!({ "username": "x" })),
            "auth.users.create".into(),
        ),
        (
            Method::GET,
            format!("/users/{oid}"),
            None,
            format!("auth.users.{oid}.read"),
        ),
        (Method::GET, "/users/me".into(), None, "auth.users.me.read".into()),
        (
            Method::PUT,
            format!("/users/{oid}"),
            Some(json!({})),
            format!("auth.users.{oid}.edit"),
        ),
        (
            Method::PUT,
            "/users/me".into(),
            Some(json!({ "username": "plain", "enabled": true })),
            "auth.users.me.edit".into(),
        ),
        (
            Method::DELETE,
            format!("/users/{oid}"),
            None,
            format!("auth.users.{oid}.delete"),
        ),
        (
            Method::PUT,
            format!("/users/{oid}/emails"),
            Some(json!({ "emails": [] })),
            format!("auth.users.{oid}.emails.edit"),
        ),
        (
            Method::PUT,
            format!("/admin/users/{pid}/emails"),
            Some(json!({ "emails": [] })),
            format!("auth.admin.users.{pid}.emails.edit"),
        ),
        (
            Method::GET,
            format!("/users/{pid}/policies"),
            None,
            format!("auth.users.{pid}.policies.read"),
        ),
        (
            Method::PUT,
            format!("/users/{pid}/policies/{policy}"),
            None,
            format!("auth.users.{pid}.policies.{policy}.create"),
        ),
        (
            Method::DELETE,
            format!("/users/{pid}/policies/{policy}"),
            None,
            format!("auth.users.{pid}.policies.{policy}.delete"),
        ),
        (
            Method::PUT,
            format!("/users/{pid}/policies/slug/some_slug"),
            None,
            format!("auth.users.{pid}.policies.some_slug.create"),
        ),
        (
            Method::DELETE,
            "/users/me/policies/slug/some_slug".to_string(),
            None,
            "auth.users.me.policies.some_slug.delete".into(),
        ),
        // Malformed bodies don't get past the ACL check either.
        (
            Method::POST,
            "/users".into(),
            Some(json!("garbage")),
            "auth.users.create".into(),
        ),
    ];
    for (method, path, body, access) in cases {
        let (status, resp) = s.call(method.clone(), &path, Some(&token), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {resp}");
        assert_eq!(resp["error_id"], "unauthorized", "{method} {path}");
        assert_eq!(resp["details"]["required_access"], access, "{method} {path}");
    }
    // No token at all.
    let (status, _) = s.call(Method::GET, "/users", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Nothing changed.
    let (status, _) = s.get(&format!("/users/{oid}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn attaching_a_policy_needs_its_rights() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let manager_policy = insert_policy(&s, &master, "manager", &["auth.users.#", "confd.users.read"]).await;
    let small = insert_policy(&s, &master, "small", &["confd.users.read", "!auth.users.secret.read"]).await;
    let big = insert_policy(&s, &master, "big", &["confd.users.read", "#"]).await;
    let restrict = insert_policy(&s, &master, "restrict", &["!calld.#"]).await;
    let manager = create_user(&s, None, json!({ "username": "mgr", "password": "pw" })).await;
    let target = create_user(&s, None, json!({ "username": "target" })).await;
    let tid = uuid_of(&target);
    let (status, _) = s
        .put(
            &format!("/users/{}/policies/{manager_policy}", uuid_of(&manager)),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let token = s.login("mgr", "pw").await;

    let (status, body) = s.put(&format!("/users/{tid}/policies/{big}"), &token, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error_id"], "unauthorized");
    assert_eq!(body["details"]["required_access"], "#");
    let (_, p) = s.get(&format!("/users/{tid}/policies"), &s.admin_token).await;
    assert_eq!(p["total"], 0, "nothing attached");
    // Self-promotion is the same thing.
    let (status, _) = s.put(&format!("/users/me/policies/{big}"), &token, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = s
        .put(&format!("/users/{tid}/policies/{small}"), &token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = s
        .put(&format!("/users/{tid}/policies/{restrict}"), &token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "negative entries only restrict");
    // Detaching `!calld.#` would give calld back: the manager doesn't hold it.
    let (status, body) = s.delete(&format!("/users/{tid}/policies/{restrict}"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["details"]["required_access"], "calld.#");
    let (status, _) = s.delete(&format!("/users/{tid}/policies/{small}"), &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .delete(&format!("/users/{tid}/policies/{restrict}"), &s.admin_token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn emails() {
    let s = TestServer::start().await;
    let user = create_user(
        &s,
        None,
        json!({ "username": "em", "password": "pw", "email_address": "first@example.com" }),
    )
    .await;
    let id = uuid_of(&user);
    let first_uuid = user["emails"][0]["uuid"].clone();
    create_user(
        &s,
        None,
        json!({ "username": "taken", "email_address": "taken@example.com" }),
    )
    .await;
    // A username shaped like an address is a login too.
    create_user(&s, None, json!({ "username": "login@example.org" })).await;

    let (status, emails) = s
        .put(
            &format!("/users/{id}/emails"),
            &s.admin_token,
            json!({ "emails": [
                { "address": "second@example.com", "main": true, "confirmed": true },
                { "address": "FIRST@example.com", "main": false },
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{emails}");
    let list = emails.as_array().expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["address"], "second@example.com");
    assert_eq!(list[0]["main"], true);
    assert_eq!(list[0]["confirmed"], false, "the user endpoint ignores confirmed");
    assert_eq!(list[1]["uuid"], first_uuid, "an existing address is kept");
    assert_eq!(list[1]["confirmed"], true, "and stays confirmed");
    assert_eq!(list[1]["main"], false);
    s.login("second@example.com", "pw").await;

    let (status, emails) = s
        .put(
            &format!("/admin/users/{id}/emails"),
            &s.admin_token,
            json!({ "emails": [
                { "address": "second@example.com", "main": false, "confirmed": true },
                { "address": "third@example.com", "main": true },
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{emails}");
    let list = emails.as_array().expect("list");
    assert_eq!(list[0]["address"], "third@example.com");
    assert_eq!(list[0]["confirmed"], false);
    assert_eq!(list[1]["address"], "second@example.com");
    assert_eq!(list[1]["confirmed"], true);
    let (_, got) = s.get(&format!("/users/{id}"), &s.admin_token).await;
    assert_eq!(got["emails"], emails);
    let (status, _) = s.login_with("first@example.com", "pw", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "removed address no longer logs in");

    for (body, code) in [
        (
            json!({ "emails": [{ "address": "taken@example.com", "main": true }] }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "emails": [{ "address": "TAKEN@example.com", "main": true }] }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "emails": [{ "address": "login@example.org", "main": true }] }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "emails": [{ "address": "bad address", "main": true }] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "emails": [{ "address": "a@x.com", "main": false }] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "emails": [{ "address": "a@x.com", "main": true }, { "address": "b@x.com", "main": true }] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "emails": [{ "address": "a@x.com", "main": true }, { "address": "a@x.com", "main": false }] }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "emails": [{ "main": true }] }), StatusCode::BAD_REQUEST),
        (json!({ "emails": "a@x.com" }), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
    ] {
        let (status, resp) = s
            .put(&format!("/users/{id}/emails"), &s.admin_token, body.clone())
            .await;
        assert_eq!(status, code, "{body}: {resp}");
    }
    let (_, resp) = s
        .put(
            &format!("/users/{id}/emails"),
            &s.admin_token,
            json!({ "emails": [{ "address": "taken@example.com", "main": true }] }),
        )
        .await;
    assert_eq!(resp["error_id"], "conflict");
    assert_eq!(resp["resource"], "users");
    assert!(resp["details"]["email_address"].is_object(), "{resp}");

    let (status, emails) = s
        .put(&format!("/users/{id}/emails"), &s.admin_token, json!({ "emails": [] }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(emails, json!([]));
}

#[tokio::test]
async fn bad_input() {
    let s = TestServer::start().await;
    create_user(
        &s,
        None,
        json!({ "username": "dup", "email_address": "dup@example.com" }),
    )
    .await;
    let existing = create_user(&s, None, json!({ "username": "fixed" })).await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (json!({ "username": 5 }), StatusCode::BAD_REQUEST, "username"),
        (
            json!({ "username": "a", "enabled": "yes" }),
            StatusCode::BAD_REQUEST,
            "enabled",
        ),
        (
            json!({ "username": "a", "purpose": "root" }),
            StatusCode::BAD_REQUEST,
            "purpose",
        ),
        (
            json!({ "username": "a", "authentication_method": "kerberos" }),
            StatusCode::BAD_REQUEST,
            "authentication_method",
        ),
        (
            json!({ "username": "a", "uuid": "not-a-uuid" }),
            StatusCode::BAD_REQUEST,
            "uuid",
        ),
        (json!({ "username": "" }), StatusCode::BAD_REQUEST, "username"),
        (
            json!({ "username": "u".repeat(257) }),
            StatusCode::BAD_REQUEST,
            "username",
        ),
        (
            json!({ "username": "a", "firstname": "f".repeat(257) }),
            StatusCode::BAD_REQUEST,
            "firstname",
        ),
        (
            json!({ "username": "a", "lastname": "l".repeat(257) }),
            StatusCode::BAD_REQUEST,
            "lastname",
        ),
        (
            json!({ "username": "a", "password": "" }),
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            json!({ "username": "a", "email_address": "nope" }),
            StatusCode::BAD_REQUEST,
            "email_address",
        ),
        (
            json!({ "username": "a", "email_address": format!("{}@x.com", "a".repeat(250)) }),
            StatusCode::BAD_REQUEST,
            "email_address",
        ),
        (json!({ "username": "DUP" }), StatusCode::CONFLICT, "username"),
        (
            json!({ "username": "dup@example.com" }),
            StatusCode::CONFLICT,
            "username",
        ),
        (
            json!({ "username": "new", "email_address": "Dup@Example.com" }),
            StatusCode::CONFLICT,
            "email_address",
        ),
        (
            json!({ "username": "new", "email_address": "dup@example.com" }),
            StatusCode::CONFLICT,
            "email_address",
        ),
        (
            json!({ "username": "new", "uuid": existing["uuid"] }),
            StatusCode::CONFLICT,
            "uuid",
        ),
    ];
    for (body, code, field) in cases {
        let (status, resp) = s.post("/users", &s.admin_token, body.clone()).await;
        assert_eq!(status, code, "{body}: {resp}");
        assert!(resp["details"].get(field).is_some(), "{field} in {resp}");
        if code == StatusCode::CONFLICT {
            assert_eq!(resp["error_id"], "conflict");
            assert_eq!(resp["resource"], "users");
        } else {
            assert_eq!(resp["error_id"], "invalid-data");
        }
    }
    // Unknown keys are ignored, as upstream does.
    let (status, _) = s
        .post("/users", &s.admin_token, json!({ "username": "extra", "bogus": 1 }))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Malformed JSON and non-object bodies.
    for raw in ["{not json", "", "[1,2]", "\"str\"", "{\"username\": \"a\"} trailing"] {
        let resp = s
            .client
            .post(s.auth_url("/users"))
            .header("X-Auth-Token", &s.admin_token)
            .body(raw)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{raw:?}");
    }
    // PUT conflicts and validation.
    let (status, _) = s
        .put(
            &format!("/users/{}", uuid_of(&existing)),
            &s.admin_token,
            json!({ "username": "dup" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .put(
            &format!("/users/{}", uuid_of(&existing)),
            &s.admin_token,
            json!({ "username": "fixed", "enabled": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Keeping one's own username is not a conflict.
    let (status, _) = s
        .put(
            &format!("/users/{}", uuid_of(&existing)),
            &s.admin_token,
            json!({ "username": "FIXED" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Path ids that are not uuids, or unknown ones: 404.
    let unknown = Uuid::new_v4();
    for path in [
        "/users/not-a-uuid".to_string(),
        format!("/users/{unknown}"),
        "/users/'%20OR%201=1".to_string(),
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let body = (method == Method::PUT).then(|| json!({ "username": "zz" }));
            let (status, resp) = s.call(method.clone(), &path, Some(&s.admin_token), body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {resp}");
        }
    }
    for path in [
        format!("/users/{unknown}/password"),
        format!("/users/{unknown}/emails"),
        format!("/admin/users/{unknown}/emails"),
    ] {
        let (status, _) = s.put(&path, &s.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // A huge body.
    let (status, _) = s
        .post(
            "/users",
            &s.admin_token,
            json!({ "username": "x".repeat(10 * 1024 * 1024) }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn tenant_isolation() {
    let s = TestServer::start().await;
    let a = create_tenant(&s, "tenant-a").await;
    let b = create_tenant(&s, "tenant-b").await;
    let ua = create_user(&s, Some(&a), json!({ "username": "in-a", "password": "pw" })).await;
    let ub = create_user(&s, Some(&b), json!({ "username": "in-b", "password": "pw" })).await;
    assert_eq!(ua["tenant_uuid"], a);
    assert_eq!(ub["tenant_uuid"], b);

    // The master admin: own tenant by default, sub-tenants with recurse or the header.
    let (_, l) = s.get("/users", &s.admin_token).await;
    assert_eq!(usernames(&l), ["root"]);
    let (_, l) = s.get("/users?recurse=true", &s.admin_token).await;
    assert_eq!(usernames(&l), ["in-a", "in-b", "root"]);
    let (_, l) = call_in(&s, Method::GET, "/users?recurse=true", &s.admin_token, &a, None).await;
    assert_eq!(usernames(&l), ["in-a"]);
    assert_eq!(l["total"], 1);
    // Sub-tenant users are visible to the master admin by uuid.
    let (status, _) = s.get(&format!("/users/{}", uuid_of(&ub)), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);

    // From tenant A (header), B's user does not exist.
    let bpath = format!("/users/{}", uuid_of(&ub));
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({ "username": "hacked" }))),
        (Method::DELETE, None),
    ] {
        let (status, resp) = call_in(&s, method.clone(), &bpath, &s.admin_token, &a, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {resp}");
    }
    for (path, body) in [
        (
            format!("{bpath}/password"),
            json!({ "old_password": "pw", "new_password": "x" }),
        ),
        (format!("{bpath}/emails"), json!({ "emails": [] })),
        (format!("/admin{bpath}/emails"), json!({ "emails": [] })),
    ] {
        let (status, _) = call_in(&s, Method::PUT, &path, &s.admin_token, &a, Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = call_in(&s, Method::GET, &format!("{bpath}/policies"), &s.admin_token, &a, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An administrator of tenant B.
    let admin_policy_b = insert_policy(&s, &b, "b_admin", &["auth.#"]).await;
    let admin_b = create_user(&s, Some(&b), json!({ "username": "admin-b", "password": "pw" })).await;
    let (status, body) = call_in(
        &s,
        Method::PUT,
        &format!("/users/{}/policies/{admin_policy_b}", uuid_of(&admin_b)),
        &s.admin_token,
        &b,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // B's policy isn't visible from the master tenant itself.
    let (status, _) = s
        .put(
            &format!("/users/{}/policies/{admin_policy_b}", uuid_of(&ub)),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let token_b = s.login("admin-b", "pw").await;

    let (_, l) = s.get("/users?recurse=true", &token_b).await;
    assert_eq!(usernames(&l), ["admin-b", "in-b"]);
    let apath = format!("/users/{}", uuid_of(&ua));
    let (status, _) = s.get(&apath, &token_b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.put(&apath, &token_b, json!({ "username": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.delete(&apath, &token_b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call_in(&s, Method::GET, "/users", &token_b, &a, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_id"], "unauthorized-tenant");
    // The master tenant's users are invisible too.
    let (_, admin) = s.get("/users/me", &s.admin_token).await;
    let (status, _) = s.get(&format!("/users/{}", uuid_of(&admin)), &token_b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // B's admin creates users in B, whatever it tries.
    let (status, created) = s.post("/users", &token_b, json!({ "username": "made-by-b" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["tenant_uuid"], b);
    let (status, _) = post_in(&s, &token_b, Some(&a), "/users", json!({ "username": "sneaky" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Usernames are global logins: a name taken in A is taken for B too.
    let (status, _) = s.post("/users", &token_b, json!({ "username": "in-a" })).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Deleting tenant B's user from B works, A's user is untouched.
    let (status, _) = s.delete(&format!("/users/{}", uuid_of(&created)), &token_b).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.get(&apath, &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
}
