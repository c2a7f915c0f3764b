//! Tokens, refresh tokens and sessions over HTTP.

use crate::common::{TestServer, ADMIN_PASSWORD, ADMIN_USER};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn token_object_has_accent_and_wazo_keys() {
    let s = TestServer::start().await;
    let (status, body) = s
        .login_with(ADMIN_USER, ADMIN_PASSWORD, json!({"expiration": 120}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = &body["data"];
    for key in [
        "token",
        "auth_id",
        "accent_user_uuid",
        "xivo_user_uuid",
        "accent_uuid",
        "xivo_uuid",
        "issued_at",
        "expires_at",
        "utc_issued_at",
        "utc_expires_at",
        "acl",
        "metadata",
        "session_uuid",
        "remote_addr",
        "user_agent",
    ] {
        assert!(d.get(key).is_some(), "missing {key}: {d}");
    }
    assert_eq!(d["accent_uuid"], d["xivo_uuid"]);
    assert_eq!(d["acl"], json!(["#"]));
    assert_eq!(d["metadata"]["purpose"], "internal");
    assert_eq!(d["remote_addr"], "127.0.0.1");
    assert!(d.get("refresh_token").is_none());
    // utc_expires_at - utc_issued_at == 120 s
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]");
    let issued = time::PrimitiveDateTime::parse(d["utc_issued_at"].as_str().expect("s"), fmt).expect("parse");
    let expires = time::PrimitiveDateTime::parse(d["utc_expires_at"].as_str().expect("s"), fmt).expect("parse");
    assert_eq!((expires - issued).whole_seconds(), 120);
}

#[tokio::test]
async fn validation_head_get_and_scope_check() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let (status, _) = s.call(Method::HEAD, &format!("/token/{t}"), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Method::HEAD, &format!("/token/{t}?scope=confd.users.read"), None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.call(Method::HEAD, "/token/not-a-token", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s
        .call(Method::GET, "/token/00000000-0000-0000-0000-000000000000", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status_code"], 404);
    assert!(body["reason"].is_array());
    // A tenant outside the token's tree is refused with 403.
    let other = uuid::Uuid::new_v4();
    let (status, _) = s
        .call(Method::HEAD, &format!("/token/{t}?tenant={other}"), None, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let master = s.master_tenant().await;
    let (status, _) = s
        .call(Method::HEAD, &format!("/token/{t}?tenant={master}"), None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = s
        .call(
            Method::POST,
            &format!("/token/{t}/scopes/check"),
            None,
            Some(json!({"scopes": ["confd.users.read", "anything.at.all"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scopes"]["confd.users.read"], true);
    assert_eq!(body["scopes"]["anything.at.all"], true);
    let (status, _) = s
        .call(
            Method::POST,
            "/token/nope/scopes/check",
            None,
            Some(json!({"scopes": ["a"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn limited_token_fails_scope_with_403() {
    let s = TestServer::start().await;
    let user = create_user(
        &s,
        "alice",
        "alice-pw",
        &["confd.users.read", "!confd.users.secret.read"],
    )
    .await;
    let t = s.login("alice", "alice-pw").await;
    let (status, _) = s
        .call(Method::HEAD, &format!("/token/{t}?scope=confd.users.read"), None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/token/{t}?scope=confd.users.secret.read"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The default user policy is part of a PBX user's token.
    let (status, _) = s
        .call(
            Method::HEAD,
            &format!("/token/{t}?scope=auth.users.{user}.password.edit"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = s
        .call(
            Method::POST,
            &format!("/token/{t}/scopes/check"),
            None,
            Some(json!({"scopes": ["confd.users.read", "confd.users.secret.read", "auth.tenants.read"]})),
        )
        .await;
    assert_eq!(
        body["scopes"],
        json!({"confd.users.read": true, "confd.users.secret.read": false, "auth.tenants.read": false})
    );
    // And a protected endpoint refuses it with upstream's 401 body.
    let (status, body) = s.get("/sessions", &t).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_id"], "unauthorized");
    assert_eq!(body["details"]["required_access"], "auth.sessions.read");
}

#[tokio::test]
async fn wrong_password_and_missing_basic_auth_fail() {
    let s = TestServer::start().await;
    let (status, body) = s.login_with(ADMIN_USER, "wrong", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["reason"][0], "Authentication Failed");
    let (status, _) = s.login_with("nobody", "x", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.call(Method::POST, "/token", None, Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_are_throttled_with_retry_after() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        let (status, _) = s.login_with(ADMIN_USER, "wrong", json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let resp = s
        .client
        .post(s.auth_url("/token"))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!((1..=60).contains(&retry));
}

#[tokio::test]
async fn refresh_token_flow() {
    let s = TestServer::start().await;
    let mut events = s.app().bus.subscribe();
    let (status, body) = s
        .login_with(
            ADMIN_USER,
            ADMIN_PASSWORD,
            json!({"access_type": "offline", "client_id": "my-app"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh = body["data"]["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let mut names = vec![];
    while let Ok(e) = events.try_recv() {
        names.push(e.name.clone());
    }
    assert!(names.contains(&"auth_refresh_token_created".to_string()), "{names:?}");
    assert!(names.contains(&"auth_session_created".to_string()), "{names:?}");

    // A new token from the refresh token, without a password.
    let (status, body) = s
        .call(
            Method::POST,
            "/token",
            None,
            Some(json!({"refresh_token": refresh, "client_id": "my-app"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t2 = body["data"]["token"].as_str().expect("token").to_string();
    assert!(body["data"].get("refresh_token").is_none());
    let (status, _) = s.call(Method::HEAD, &format!("/token/{t2}"), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Wrong client_id or refresh token: refused.
    let (status, _) = s
        .call(
            Method::POST,
            "/token",
            None,
            Some(json!({"refresh_token": refresh, "client_id": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .call(Method::POST, "/token", None, Some(json!({"refresh_token": refresh})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Listed, then deleted.
    let (status, body) = s.get("/tokens", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["items"][0]["client_id"], "my-app");
    let user = body["items"][0]["user_uuid"].as_str().expect("uuid").to_string();
    let (_, body) = s.get(&format!("/users/{user}/tokens"), &s.admin_token).await;
    assert_eq!(body["items"][0]["client_id"], "my-app");
    let (_, body) = s.get("/users/me/tokens", &s.admin_token).await;
    assert_eq!(body["total"], 1);
    let (status, _) = s.delete("/users/me/tokens/my-app", &s.admin_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.delete("/users/me/tokens/my-app", &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Method::POST,
            "/token",
            None,
            Some(json!({"refresh_token": refresh, "client_id": "my-app"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn offline_access_requires_client_id_and_expiration_is_bounded() {
    let s = TestServer::start().await;
    for body in [
        json!({"access_type": "offline"}),
        json!({"access_type": "sometimes"}),
        json!({"expiration": 0}),
        json!({"expiration": -5}),
        json!({"expiration": 999_999_999_999i64}),
        json!({"expiration": "soon"}),
        json!({"client_id": ""}),
        json!({"backend": "ldap_unknown"}),
    ] {
        let (status, resp) = s.login_with(ADMIN_USER, ADMIN_PASSWORD, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {resp}");
        assert_eq!(resp["status_code"], 400);
    }
}

#[tokio::test]
async fn revoke_deletes_session_and_emits_event() {
    let s = TestServer::start().await;
    let t = s.login(ADMIN_USER, ADMIN_PASSWORD).await;
    let mut events = s.app().bus.subscribe();
    let (status, body) = s.call(Method::DELETE, &format!("/token/{t}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = s.call(Method::HEAD, &format!("/token/{t}"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let e = events.try_recv().expect("event");
    assert_eq!(e.name, "auth_session_deleted");
    assert!(e.routing_key.starts_with("auth.sessions."));
    // The revoked token no longer opens protected endpoints.
    let (status, body) = s.get("/sessions", &t).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["details"]["reason"], "not_found_or_expired");
}

#[tokio::test]
async fn sessions_list_and_delete() {
    let s = TestServer::start().await;
    let mobile = s
        .client
        .post(s.auth_url("/token"))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .header("Accent-Session-Type", "mobile")
        .send()
        .await
        .expect("send");
    let body: serde_json::Value = mobile.json().await.expect("json");
    let session = body["data"]["session_uuid"].as_str().expect("session").to_string();
    let mobile_token = body["data"]["token"].as_str().expect("token").to_string();

    let (status, body) = s.get("/sessions", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 2);
    let item = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["uuid"] == session.as_str())
        .cloned();
    assert_eq!(item.expect("listed")["mobile"], true);

    let (_, body) = s.get("/users/me/sessions", &s.admin_token).await;
    assert_eq!(body["total"], 2);

    let (status, _) = s.delete(&format!("/users/me/sessions/{session}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Method::HEAD, &format!("/token/{mobile_token}"), None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.delete(&format!("/sessions/{session}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.delete("/sessions/not-a-uuid", &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn max_concurrent_sessions_is_enforced() {
    let s = TestServer::start_with(|c| c.auth.max_user_concurrent_sessions = 2).await;
    create_user(&s, "bob", "bob-pw", &[]).await;
    s.login("bob", "bob-pw").await;
    s.login("bob", "bob-pw").await;
    let (status, body) = s.login_with("bob", "bob-pw", json!({})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test]
async fn tokens_survive_a_restart() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let s = s.restart().await;
    let (status, _) = s
        .call(Method::HEAD, &format!("/token/{t}?scope=auth.tenants.read"), None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.get("/tenants", &t).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn expired_sessions_are_purged_with_events() {
    let s = TestServer::start_with(|c| c.auth.session_expire_soon_delay = 5).await;
    let (_, body) = s.login_with(ADMIN_USER, ADMIN_PASSWORD, json!({"expiration": 2})).await;
    let t = body["data"]["token"].as_str().expect("token").to_string();
    let mut events = s.app().bus.subscribe();
    s.app().auth.purge_expired().await.expect("purge");
    let e = events.try_recv().expect("expire soon event");
    assert_eq!(e.name, "auth_session_expire_soon");
    assert!(e.routing_key.ends_with(".expire_soon"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) = s.call(Method::HEAD, &format!("/token/{t}"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let purged = s.app().auth.purge_expired().await.expect("purge");
    assert_eq!(purged, 1);
    let e = events.try_recv().expect("deleted event");
    assert_eq!(e.name, "auth_session_deleted");
}

#[tokio::test]
async fn status_and_backends_need_no_token() {
    let s = TestServer::start().await;
    let (status, _) = s.call(Method::HEAD, "/status", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.call(Method::GET, "/backends", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"].as_array().expect("list").contains(&json!("accent_user")));
}

/// Creates a PBX user with a personal policy holding `acl`, straight in the
/// store (the users API has its own tests).
async fn create_user(s: &TestServer, username: &str, password: &str, acl: &[&str]) -> String {
    let hash = s
        .app()
        .auth
        .hasher
        .hash_async(password.to_string())
        .await
        .expect("hash");
    let master = s.master_tenant().await;
    let user = uuid::Uuid::new_v4().to_string();
    let policy = uuid::Uuid::new_v4().to_string();
    let username = username.to_string();
    let acl: Vec<String> = acl.iter().map(|a| a.to_string()).collect();
    let u = user.clone();
    s.app()
        .store
        .write(move |tx| -> Result<(), accentd::api::error::ApiError> {
            tx.execute(
                "INSERT INTO auth_user (uuid, username, password_hash, purpose, enabled, tenant_uuid, created_at)
                 VALUES (?1, ?2, ?3, 'user', 1, ?4, 0)",
                rusqlite::params![u, username, hash, master],
            )?;
            tx.execute(
                "INSERT INTO auth_policy (uuid, tenant_uuid, name, slug) VALUES (?1, ?2, ?3, ?3)",
                rusqlite::params![policy, master, format!("p_{username}")],
            )?;
            for (i, a) in acl.iter().enumerate() {
                tx.execute(
                    "INSERT INTO auth_policy_access (policy_uuid, access, position) VALUES (?1, ?2, ?3)",
                    rusqlite::params![policy, a, i as i64],
                )?;
            }
            tx.execute(
                "INSERT INTO auth_user_policy (user_uuid, policy_uuid) VALUES (?1, ?2)",
                rusqlite::params![u, policy],
            )?;
            Ok(())
        })
        .await
        .expect("insert user");
    user
}

#[tokio::test]
async fn config_read_and_debug_patch() {
    let s = TestServer::start().await;
    let (status, body) = s.get("/config", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["debug"], false);
    assert!(body["auth"]["default_token_lifetime"].is_number());
    assert!(
        !body.to_string().contains(crate::common::ADMIN_PASSWORD),
        "secrets must not be shown"
    );
    let (status, body) = s
        .call(
            Method::PATCH,
            "/config",
            Some(&s.admin_token),
            Some(json!([{"op": "replace", "path": "/debug", "value": true}])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["debug"], true);
    assert!(s.app().runtime.debug());
    let (status, _) = s
        .call(
            Method::PATCH,
            "/config",
            Some(&s.admin_token),
            Some(json!([{"op": "replace", "path": "/listen", "value": "x"}])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let user = create_user(&s, "carol", "carol-pw", &["auth.config.read"]).await;
    assert!(!user.is_empty());
    let t = s.login("carol", "carol-pw").await;
    let (status, _) = s.get("/config", &t).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Method::PATCH,
            "/config",
            Some(&t),
            Some(json!([{"op": "replace", "path": "/debug", "value": false}])),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn status_lists_components() {
    let s = TestServer::start().await;
    for url in [format!("{}/status", s.base), s.auth_url("/status")] {
        let body: serde_json::Value = s
            .client
            .get(&url)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(body["rest_api"]["status"], "ok", "{url}: {body}");
        assert_eq!(body["store"]["status"], "ok");
    }
}
