//! accent-auth groups: CRUD, members, policies, tenant isolation, ACLs and
//! the effect of groups on login (ACL and `metadata.admin`).

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TENANT: &str = "Accent-Tenant";

/// Inserts a policy straight into the store (policies have their own API,
/// built separately; these tests only need rows to link).
async fn create_policy_sql(s: &TestServer, tenant: &str, slug: &str, acl: &[&str], shared: bool) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let (u, t, n) = (uuid.clone(), tenant.to_string(), slug.to_string());
    let acl: Vec<String> = acl.iter().map(|a| a.to_string()).collect();
    s.app()
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO auth_policy (uuid, tenant_uuid, name, slug, description, shared)
                 VALUES (?1, ?2, ?3, ?3, 'test policy', ?4)",
                rusqlite::params![u, t, n, shared],
            )?;
            for (i, access) in acl.iter().enumerate() {
                tx.execute(
                    "INSERT INTO auth_policy_access (policy_uuid, access, position) VALUES (?1, ?2, ?3)",
                    rusqlite::params![u, access, i as i64],
                )?;
            }
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("insert policy");
    uuid
}

/// Gives a user a policy directly (user policies have their own API).
async fn grant_user_policy(s: &TestServer, user: &str, policy: &str) {
    let (u, p) = (user.to_string(), policy.to_string());
    s.app()
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO auth_user_policy (user_uuid, policy_uuid) VALUES (?1, ?2)",
                rusqlite::params![u, p],
            )?;
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("grant");
}

async fn create_tenant(s: &TestServer, name: &str) -> String {
    let (status, body) = s.post("/tenants", &s.admin_token, json!({ "name": name })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["uuid"].as_str().expect("uuid").to_string()
}

async fn create_group(s: &TestServer, token: &str, tenant: Option<&str>, body: Value) -> Value {
    let headers: Vec<(&str, &str)> = tenant.map(|t| vec![(TENANT, t)]).unwrap_or_default();
    let (status, group) = s
        .call_with_headers(Method::POST, "/groups", Some(token), Some(body), &headers)
        .await;
    assert_eq!(status, StatusCode::OK, "{group}");
    group
}

async fn call_in(s: &TestServer, method: Method, path: &str, token: &str, tenant: &str) -> (StatusCode, Value) {
    s.call_with_headers(method, path, Some(token), None, &[(TENANT, tenant)])
        .await
}

fn uuid_of(v: &Value) -> String {
    v["uuid"].as_str().expect("uuid").to_string()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The uuid of a tenant's `accent_default_admin_group`.
async fn admin_group(s: &TestServer, tenant: &str) -> String {
    let (status, list) = call_in(
        s,
        Method::GET,
        "/groups?name=accent_default_admin_group",
        &s.admin_token,
        tenant,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["filtered"], 1, "{list}");
    uuid_of(&list["items"][0])
}

#[tokio::test]
async fn crud_happy_path() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let t = &s.admin_token;

    let group = create_group(&s, t, None, json!({ "name": "Sales team" })).await;
    let id = uuid_of(&group);
    assert_eq!(group["name"], "Sales team");
    assert_eq!(group["slug"], "Sales_team");
    assert_eq!(group["tenant_uuid"], master.as_str());
    assert_eq!(group["read_only"], false);
    assert_eq!(group["system_managed"], false);

    let (status, got) = s.get(&format!("/groups/{id}"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, group);

    let (status, renamed) = s
        .put(
            &format!("/groups/{id}"),
            t,
            json!({ "name": "Sales", "slug": "ignored" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Sales");
    assert_eq!(renamed["slug"], "Sales_team", "the slug is not editable");
    let (_, got) = s.get(&format!("/groups/{id}"), t).await;
    assert_eq!(got["name"], "Sales");

    // Renaming to its own name is not a conflict.
    let (status, _) = s.put(&format!("/groups/{id}"), t, json!({ "name": "Sales" })).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = s.delete(&format!("/groups/{id}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.get(&format!("/groups/{id}"), t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_id"], "unknown-group");
    assert_eq!(body["resource"], "groups");
    let (status, _) = s.delete(&format!("/groups/{id}"), t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.put(&format!("/groups/{id}"), t, json!({ "name": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_with_uuid_and_slug_and_conflicts() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let uuid = "6a4e1b2c-8d4f-4c39-a1a5-0e6d3c9f1b77";
    let group = create_group(&s, t, None, json!({ "uuid": uuid, "name": "ops", "slug": "ops_slug" })).await;
    assert_eq!(group["uuid"], uuid);
    assert_eq!(group["slug"], "ops_slug");

    for (body, field) in [
        (json!({ "name": "ops" }), "name"),
        (json!({ "name": "other", "slug": "ops_slug" }), "slug"),
        (json!({ "name": "third", "uuid": uuid }), "uuid"),
    ] {
        let (status, err) = s.post("/groups", t, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{err}");
        assert_eq!(err["error_id"], "conflict");
        assert_eq!(err["resource"], "groups");
        assert!(err["details"].get(field).is_some(), "{err}");
    }

    // A rename onto another group's name conflicts too.
    let other = create_group(&s, t, None, json!({ "name": "dev" })).await;
    let (status, _) = s
        .put(&format!("/groups/{}", uuid_of(&other)), t, json!({ "name": "ops" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Two names deriving the same slug: the second gets a made-up one.
    let a = create_group(&s, t, None, json!({ "name": "a b" })).await;
    let b = create_group(&s, t, None, json!({ "name": "a-b" })).await;
    assert_eq!(a["slug"], "a_b");
    let slug = b["slug"].as_str().expect("slug");
    assert_ne!(slug, "a_b");
    assert!(!slug.is_empty() && slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));

    // The same name is fine in another tenant.
    let sub = create_tenant(&s, "sub").await;
    let dup = create_group(&s, t, Some(&sub), json!({ "name": "ops", "slug": "ops_slug" })).await;
    assert_eq!(dup["tenant_uuid"], sub.as_str());
}

#[tokio::test]
async fn bad_input() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let group = create_group(&s, t, None, json!({ "name": "g" })).await;
    let id = uuid_of(&group);

    let bad_bodies = [
        json!({}),
        json!({ "name": null }),
        json!({ "name": 42 }),
        json!({ "name": "" }),
        json!({ "name": "x".repeat(129) }),
        json!({ "name": "ok", "slug": "bad-slug" }),
        json!({ "name": "ok", "slug": "" }),
        json!({ "name": "ok", "slug": "s".repeat(81) }),
        json!({ "name": "ok", "slug": 3 }),
        json!({ "name": "ok", "uuid": "not-a-uuid" }),
        json!(["name"]),
        json!("name"),
    ];
    for body in bad_bodies {
        let (status, err) = s.post("/groups", t, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error_id"], "invalid-data", "{body}: {err}");
    }
    for body in [
        json!({}),
        json!({ "name": 1 }),
        json!({ "name": "" }),
        json!({ "name": "y".repeat(200) }),
    ] {
        let (status, err) = s.put(&format!("/groups/{id}"), t, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
    }

    // Malformed JSON and an empty body.
    for raw in ["{not json", "", "{\"name\": \"a\"} trailing"] {
        let resp = s
            .client
            .post(s.auth_url("/groups"))
            .header("X-Auth-Token", t.as_str())
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{raw:?}");
    }

    // Non-UUID ids are unknown groups.
    for path in [
        "/groups/not-a-uuid",
        "/groups/not-a-uuid/users",
        "/groups/not-a-uuid/policies",
    ] {
        let (status, err) = s.get(path, t).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(err["error_id"], "unknown-group", "{path}");
    }
    let (status, _) = s.put("/groups/x.y", t, json!({ "name": "n" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.delete("/groups/123", t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bad list parameters.
    for q in [
        "order=password",
        "direction=up",
        "limit=-1",
        "offset=x",
        "read_only=maybe",
        "recurse=2",
    ] {
        let (status, _) = s.get(&format!("/groups?{q}"), t).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
    }
    let (status, _) = s.get(&format!("/groups/{id}/users?order=password_hash"), t).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // No token at all.
    let (status, _) = s.call(Method::GET, "/groups", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .call(Method::POST, "/groups", None, Some(json!({ "name": "n" })))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Unknown sub-paths and methods.
    let (status, _) = s.get(&format!("/groups/{id}/bogus"), t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_search_filter_paginate_order() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let master = s.master_tenant().await;
    let mut groups = Vec::new();
    for name in ["bravo", "alpha", "charlie", "alpine"] {
        groups.push(create_group(&s, t, None, json!({ "name": name })).await);
    }
    // Plus the tenant's admin group.
    let (status, all) = s.get("/groups", t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["total"], 5);
    assert_eq!(all["filtered"], 5);
    assert_eq!(
        names(&all),
        ["accent_default_admin_group", "alpha", "alpine", "bravo", "charlie"]
    );

    let (_, found) = s.get("/groups?search=alp", t).await;
    assert_eq!(names(&found), ["alpha", "alpine"]);
    assert_eq!(found["total"], 5);
    assert_eq!(found["filtered"], 2);
    let (_, found) = s.get("/groups?search=ALP", t).await;
    assert_eq!(found["filtered"], 2, "search is case-insensitive");
    let (_, found) = s.get("/groups?search=%25", t).await;
    assert_eq!(found["filtered"], 0, "LIKE wildcards are literal");

    let (_, found) = s.get("/groups?name=bravo", t).await;
    assert_eq!(names(&found), ["bravo"]);
    let (_, found) = s.get(&format!("/groups?uuid={}", uuid_of(&groups[2])), t).await;
    assert_eq!(names(&found), ["charlie"]);
    let (_, found) = s.get("/groups?slug=alpine", t).await;
    assert_eq!(names(&found), ["alpine"]);
    let (_, found) = s.get("/groups?read_only=true", t).await;
    assert_eq!(names(&found), ["accent_default_admin_group"]);
    let (_, found) = s.get("/groups?read_only=false", t).await;
    assert_eq!(found["filtered"], 4);

    // Filters on members and policies.
    let user = s.create_user_sql(&master, "member", "pw-member-1").await;
    let (status, _) = s
        .put(&format!("/groups/{}/users/{user}", uuid_of(&groups[0])), t, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, found) = s.get(&format!("/groups?user_uuid={user}"), t).await;
    assert_eq!(names(&found), ["bravo"]);
    let policy = create_policy_sql(&s, &master, "listpol", &["x.y"], false).await;
    let (status, _) = s
        .put(
            &format!("/groups/{}/policies/{policy}", uuid_of(&groups[3])),
            t,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, found) = s.get(&format!("/groups?policy_uuid={policy}"), t).await;
    assert_eq!(names(&found), ["alpine"]);
    let (_, found) = s.get("/groups?policy_slug=listpol", t).await;
    assert_eq!(names(&found), ["alpine"]);
    let (_, found) = s.get("/groups?policy_slug=accent_default_admin_policy", t).await;
    assert_eq!(names(&found), ["accent_default_admin_group"]);
    let (_, found) = s.get("/groups?user_uuid=garbage", t).await;
    assert_eq!(found["filtered"], 0);

    // Order and pagination.
    let (_, page) = s.get("/groups?order=name&direction=desc&limit=2", t).await;
    assert_eq!(names(&page), ["charlie", "bravo"]);
    assert_eq!(page["filtered"], 5);
    let (_, page) = s.get("/groups?order=name&limit=2&offset=2", t).await;
    assert_eq!(names(&page), ["alpine", "bravo"]);
    let (_, page) = s.get("/groups?offset=4", t).await;
    assert_eq!(names(&page), ["charlie"]);
    let (_, page) = s.get("/groups?order=slug&search=a&limit=1", t).await;
    assert_eq!(names(&page), ["accent_default_admin_group"]);
    let (_, page) = s.get("/groups?order=uuid", t).await;
    let uuids: Vec<String> = page["items"].as_array().expect("items").iter().map(uuid_of).collect();
    let mut sorted = uuids.clone();
    sorted.sort();
    assert_eq!(uuids, sorted);
}

#[tokio::test]
async fn system_managed_admin_group() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let master = s.master_tenant().await;
    let admin = admin_group(&s, &master).await;
    let (_, group) = s.get(&format!("/groups/{admin}"), t).await;
    assert_eq!(group["read_only"], true);
    assert_eq!(group["slug"], "accent_default_admin_group");

    let (status, err) = s
        .put(&format!("/groups/{admin}"), t, json!({ "name": "renamed" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error_id"], "forbidden-group");
    assert!(err["message"].as_str().expect("message").contains(&admin));
    let (status, err) = s.delete(&format!("/groups/{admin}"), t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error_id"], "forbidden-group");
    let (_, group) = s.get(&format!("/groups/{admin}"), t).await;
    assert_eq!(group["name"], "accent_default_admin_group");

    // Each new tenant gets its own.
    let sub = create_tenant(&s, "sub").await;
    let sub_admin = admin_group(&s, &sub).await;
    assert_ne!(sub_admin, admin);
    let (status, _) = s.delete(&format!("/groups/{sub_admin}"), t).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn plain_user_is_denied_every_endpoint() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let group = create_group(&s, &s.admin_token, None, json!({ "name": "g" })).await;
    let g = uuid_of(&group);
    let user = s.create_user_sql(&master, "plain", "plain-pw-1").await;
    let token = s.login("plain", "plain-pw-1").await;
    let policy = create_policy_sql(&s, &master, "p", &["a"], false).await;

    let cases: Vec<(Method, String, &str)> = vec![
        (Method::GET, "/groups".into(), "auth.groups.read"),
        (Method::POST, "/groups".into(), "auth.groups.create"),
        (Method::GET, format!("/groups/{g}"), "read"),
        (Method::PUT, format!("/groups/{g}"), "edit"),
        (Method::DELETE, format!("/groups/{g}"), "delete"),
        (Method::GET, format!("/groups/{g}/users"), "users.read"),
        (Method::PUT, format!("/groups/{g}/users/{user}"), "create"),
        (Method::DELETE, format!("/groups/{g}/users/{user}"), "delete"),
        (Method::GET, format!("/groups/{g}/policies"), "policies.read"),
        (Method::PUT, format!("/groups/{g}/policies/{policy}"), "create"),
        (Method::DELETE, format!("/groups/{g}/policies/{policy}"), "delete"),
        (Method::PUT, format!("/groups/{g}/policies/slug/p"), "policies.p.create"),
        (
            Method::DELETE,
            format!("/groups/{g}/policies/slug/p"),
            "policies.p.delete",
        ),
        (Method::GET, format!("/users/{user}/groups"), "groups.read"),
        (Method::GET, "/users/me/groups".into(), "auth.users.me.groups.read"),
    ];
    for (method, path, acl_part) in cases {
        let (status, err) = s
            .call(method.clone(), &path, Some(&token), Some(json!({ "name": "n" })))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {err}");
        let required = err["details"]["required_access"].as_str().unwrap_or_default();
        assert!(required.contains(acl_part), "{method} {path}: {required}");
    }
    // Nothing changed.
    let (_, got) = s.get(&format!("/groups/{g}"), &s.admin_token).await;
    assert_eq!(got["name"], "g");
    let (_, members) = s.get(&format!("/groups/{g}/users"), &s.admin_token).await;
    assert_eq!(members["total"], 0);

    // With the right ACL, `me` works.
    let reader = create_policy_sql(&s, &master, "reader", &["auth.users.me.groups.read"], false).await;
    grant_user_policy(&s, &user, &reader).await;
    let (status, _) = s
        .put(&format!("/groups/{g}/users/{user}"), &s.admin_token, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let token = s.login("plain", "plain-pw-1").await;
    let (status, mine) = s.get("/users/me/groups", &token).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(names(&mine), ["g"]);
    // `me` in a granted entry also covers the user's own uuid…
    let (status, _) = s.get(&format!("/users/{user}/groups"), &token).await;
    assert_eq!(status, StatusCode::OK);
    // …but nobody else's.
    let other = s.create_user_sql(&master, "other", "other-pw-1").await;
    let (status, _) = s.get(&format!("/users/{other}/groups"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenant_isolation() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let master = s.master_tenant().await;
    let a = create_tenant(&s, "tenant_a").await;
    let b = create_tenant(&s, "tenant_b").await;
    let ga = create_group(&s, t, Some(&a), json!({ "name": "group_a" })).await;
    let gb = create_group(&s, t, Some(&b), json!({ "name": "group_b" })).await;
    assert_eq!(ga["tenant_uuid"], a.as_str());
    assert_eq!(gb["tenant_uuid"], b.as_str());
    let (ga, gb) = (uuid_of(&ga), uuid_of(&gb));

    // Header-scoped lists see one tenant only.
    let (_, list) = call_in(&s, Method::GET, "/groups", t, &a).await;
    assert_eq!(names(&list), ["accent_default_admin_group", "group_a"]);
    assert_eq!(list["total"], 2);
    let (_, list) = call_in(&s, Method::GET, "/groups?recurse=true", t, &a).await;
    assert_eq!(list["total"], 2, "A has no sub-tenant");
    let (_, list) = call_in(&s, Method::GET, &format!("/groups/{gb}"), t, &a).await;
    assert_eq!(list["error_id"], "unknown-group");

    // The master sees its own groups, and everything with recurse.
    let (_, list) = s.get("/groups", t).await;
    assert_eq!(names(&list), ["accent_default_admin_group"]);
    let (_, list) = s.get("/groups?recurse=true", t).await;
    assert_eq!(list["total"], 5);
    let (status, _) = s.get(&format!("/groups/{gb}"), t).await;
    assert_eq!(status, StatusCode::OK, "sub-tenant groups are visible from above");

    // A tenant-A administrator: full auth ACL, but only inside A.
    let admin_a = s.create_user_sql(&a, "admin_a", "admin-a-pw").await;
    let policy = create_policy_sql(&s, &a, "a_admin", &["auth.#"], false).await;
    grant_user_policy(&s, &admin_a, &policy).await;
    let ta = s.login("admin_a", "admin-a-pw").await;

    let (_, list) = s.get("/groups?recurse=true", &ta).await;
    assert_eq!(names(&list), ["accent_default_admin_group", "group_a"]);
    for (method, path) in [
        (Method::GET, format!("/groups/{gb}")),
        (Method::DELETE, format!("/groups/{gb}")),
        (Method::GET, format!("/groups/{gb}/users")),
        (Method::GET, format!("/groups/{gb}/policies")),
        (Method::PUT, format!("/groups/{gb}/users/{admin_a}")),
        (Method::DELETE, format!("/groups/{gb}/users/{admin_a}")),
    ] {
        let (status, err) = s.call(method.clone(), &path, Some(&ta), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {err}");
        assert_eq!(err["error_id"], "unknown-group", "{method} {path}");
    }
    let (status, _) = s.put(&format!("/groups/{gb}"), &ta, json!({ "name": "pwned" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, still) = s.get(&format!("/groups/{gb}"), t).await;
    assert_eq!(still["name"], "group_b");

    // Neither the master's nor B's users and groups are reachable from A.
    let user_b = s.create_user_sql(&b, "user_b", "user-b-pw").await;
    let (status, err) = s.put(&format!("/groups/{ga}/users/{user_b}"), &ta, json!(null)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["error_id"], "unknown-user");
    let (status, _) = s.delete(&format!("/groups/{ga}/users/{user_b}"), &ta).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.get(&format!("/users/{user_b}/groups"), &ta).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let master_admin_group = admin_group(&s, &master).await;
    let (status, _) = s.get(&format!("/groups/{master_admin_group}"), &ta).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call_with_headers(Method::GET, "/groups", Some(&ta), None, &[(TENANT, &b)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "A may not act in B");
    let (status, _) = s
        .call_with_headers(Method::GET, "/groups", Some(&ta), None, &[("Wazo-Tenant", &master)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "nor in its parent");

    // A's group gets created in A, whatever the body says.
    let created = create_group(&s, &ta, None, json!({ "name": "made_by_a", "tenant_uuid": b })).await;
    assert_eq!(created["tenant_uuid"], a.as_str());

    // Policies of B are unknown to A.
    let policy_b = create_policy_sql(&s, &b, "b_policy", &["auth.x"], false).await;
    let (status, err) = s
        .put(&format!("/groups/{ga}/policies/{policy_b}"), &ta, json!(null))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, _) = s
        .put(&format!("/groups/{ga}/policies/slug/b_policy"), &ta, json!(null))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn members() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let master = s.master_tenant().await;
    let group = uuid_of(&create_group(&s, t, None, json!({ "name": "team" })).await);
    let mut users = Vec::new();
    for name in ["foo", "bar", "baz", "ignored"] {
        users.push(s.create_user_sql(&master, name, "member-pw").await);
    }
    for u in &users[..3] {
        let (status, body) = s.put(&format!("/groups/{group}/users/{u}"), t, json!(null)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    // Twice is fine.
    let (status, _) = s
        .put(&format!("/groups/{group}/users/{}", users[0]), t, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let usernames = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|u| u["username"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (status, list) = s.get(&format!("/groups/{group}/users"), t).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(usernames(&list), ["bar", "baz", "foo"]);
    assert_eq!(list["total"], 3);
    let user = &list["items"][2];
    assert_eq!(user["uuid"], users[0].as_str());
    assert_eq!(user["tenant_uuid"], master.as_str());
    assert_eq!(user["enabled"], true);
    assert_eq!(user["purpose"], "user");
    assert!(user["emails"].as_array().is_some_and(|e| e.is_empty()));
    for key in ["firstname", "lastname", "authentication_method"] {
        assert!(user.get(key).is_some(), "{key}");
    }
    assert!(user.get("password_hash").is_none());

    let (_, list) = s.get(&format!("/groups/{group}/users?search=ba"), t).await;
    assert_eq!(usernames(&list), ["bar", "baz"]);
    assert_eq!((list["total"].clone(), list["filtered"].clone()), (json!(3), json!(2)));
    let (_, list) = s.get(&format!("/groups/{group}/users?username=foo"), t).await;
    assert_eq!(usernames(&list), ["foo"]);
    let (_, list) = s
        .get(
            &format!("/groups/{group}/users?order=username&direction=desc&limit=2"),
            t,
        )
        .await;
    assert_eq!(usernames(&list), ["foo", "baz"]);
    let (_, list) = s.get(&format!("/groups/{group}/users?offset=1&limit=1"), t).await;
    assert_eq!(usernames(&list), ["baz"]);

    // The user's side, with `recurse`-free visibility and `me` handling.
    let (status, groups) = s.get(&format!("/users/{}/groups", users[0]), t).await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    assert_eq!(names(&groups), ["team"]);
    let (_, groups) = s.get(&format!("/users/{}/groups", users[3]), t).await;
    assert_eq!(groups["total"], 0);
    let (status, _) = s.get("/users/not-a-uuid/groups", t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.get(&format!("/users/{}/groups", uuid::Uuid::new_v4()), t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.get("/users/me/groups", t).await;
    assert_eq!(status, StatusCode::OK);

    // Removal: idempotent for a known user, 404 for unknown ones.
    let (status, _) = s.delete(&format!("/groups/{group}/users/{}", users[1]), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.delete(&format!("/groups/{group}/users/{}", users[1]), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = s
        .delete(&format!("/groups/{group}/users/{}", uuid::Uuid::new_v4()), t)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error_id"], "unknown-user");
    let (status, _) = s.delete(&format!("/groups/{group}/users/nope"), t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = s.get(&format!("/groups/{group}/users"), t).await;
    assert_eq!(usernames(&list), ["baz", "foo"]);

    // Unknown user or group on add.
    let (status, err) = s
        .put(
            &format!("/groups/{group}/users/{}", uuid::Uuid::new_v4()),
            t,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error_id"], "unknown-user");
    let (status, err) = s
        .put(
            &format!("/groups/{}/users/{}", uuid::Uuid::new_v4(), users[0]),
            t,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error_id"], "unknown-group");

    // A user and a group of different tenants cannot be joined, even by
    // someone who sees both.
    let sub = create_tenant(&s, "sub").await;
    let sub_user = s.create_user_sql(&sub, "sub_user", "sub-pw").await;
    let (status, err) = s
        .put(&format!("/groups/{group}/users/{sub_user}"), t, json!(null))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let sub_group = uuid_of(&create_group(&s, t, Some(&sub), json!({ "name": "sub_group" })).await);
    let (status, _) = s
        .put(&format!("/groups/{sub_group}/users/{}", users[0]), t, json!(null))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Same tenant, from the parent without a header: fine.
    let (status, _) = s
        .put(&format!("/groups/{sub_group}/users/{sub_user}"), t, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Deleting a group drops its memberships.
    let (status, _) = s.delete(&format!("/groups/{group}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, groups) = s.get(&format!("/users/{}/groups", users[0]), t).await;
    assert_eq!(groups["total"], 0);
}

#[tokio::test]
async fn group_policies() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let master = s.master_tenant().await;
    let group = uuid_of(&create_group(&s, t, None, json!({ "name": "team" })).await);
    let foo = create_policy_sql(&s, &master, "foo", &["z.last", "a.first", "!m.neg"], false).await;
    let bar = create_policy_sql(&s, &master, "bar", &["b.b"], false).await;
    let baz = create_policy_sql(&s, &master, "baz", &["c.c"], false).await;
    let _ignored = create_policy_sql(&s, &master, "ignored", &["d.d"], false).await;

    let (status, err) = s.put(&format!("/groups/{group}/policies/{foo}"), t, json!(null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{err}");
    let (status, _) = s.put(&format!("/groups/{group}/policies/{foo}"), t, json!(null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "twice is fine");
    let (status, _) = s
        .put(&format!("/groups/{group}/policies/slug/bar"), t, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.put(&format!("/groups/{group}/policies/baz"), t, json!(null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "a slug in the uuid position works too");

    let (status, list) = s.get(&format!("/groups/{group}/policies"), t).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["bar", "baz", "foo"]);
    assert_eq!(list["total"], 3);
    let p = &list["items"][2];
    assert_eq!(p["uuid"], foo.as_str());
    assert_eq!(p["tenant_uuid"], master.as_str());
    assert_eq!(p["slug"], "foo");
    assert_eq!(p["description"], "test policy");
    assert_eq!(p["acl"], json!(["z.last", "a.first", "!m.neg"]), "ACL keeps its order");
    assert_eq!(p["read_only"], false);
    assert_eq!(p["shared"], false);

    let (_, list) = s.get(&format!("/groups/{group}/policies?search=ba"), t).await;
    assert_eq!(names(&list), ["bar", "baz"]);
    assert_eq!(list["filtered"], 2);
    let (_, list) = s.get(&format!("/groups/{group}/policies?name=foo"), t).await;
    assert_eq!(names(&list), ["foo"]);
    let (_, list) = s.get(&format!("/groups/{group}/policies?uuid={baz}"), t).await;
    assert_eq!(names(&list), ["baz"]);
    let (_, list) = s
        .get(
            &format!("/groups/{group}/policies?order=name&direction=desc&limit=1&offset=1"),
            t,
        )
        .await;
    assert_eq!(names(&list), ["baz"]);

    // Detach by uuid and by slug; detaching twice is fine; unknown is 404.
    let (status, _) = s.delete(&format!("/groups/{group}/policies/{bar}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.delete(&format!("/groups/{group}/policies/{bar}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.delete(&format!("/groups/{group}/policies/slug/baz"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = s
        .delete(&format!("/groups/{group}/policies/{}", uuid::Uuid::new_v4()), t)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, _) = s
        .delete(&format!("/groups/{group}/policies/slug/unknown_slug"), t)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .put(
            &format!("/groups/{group}/policies/{}", uuid::Uuid::new_v4()),
            t,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .put(&format!("/groups/{group}/policies/slug/unknown_slug"), t, json!(null))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, err) = s
        .put(
            &format!("/groups/{}/policies/{foo}", uuid::Uuid::new_v4()),
            t,
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error_id"], "unknown-group");
    let (_, list) = s.get(&format!("/groups/{group}/policies"), t).await;
    assert_eq!(names(&list), ["foo"]);

    // A shared policy of the master reaches a sub-tenant's group, by slug
    // from the sub-tenant itself.
    let sub = create_tenant(&s, "sub").await;
    let sub_group = uuid_of(&create_group(&s, t, Some(&sub), json!({ "name": "sub_group" })).await);
    let (status, err) = s
        .call_with_headers(
            Method::PUT,
            &format!("/groups/{sub_group}/policies/slug/accent_default_user_policy"),
            Some(t),
            None,
            &[(TENANT, &sub)],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{err}");
    let (_, list) = call_in(&s, Method::GET, &format!("/groups/{sub_group}/policies"), t, &sub).await;
    assert_eq!(names(&list), ["accent_default_user_policy"]);
    assert_eq!(list["items"][0]["read_only"], true);
    assert_eq!(list["items"][0]["shared"], true);
    // A non-shared master policy does not.
    let (status, _) = s
        .call_with_headers(
            Method::PUT,
            &format!("/groups/{sub_group}/policies/slug/foo"),
            Some(t),
            None,
            &[(TENANT, &sub)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call_in(
        &s,
        Method::DELETE,
        &format!("/groups/{sub_group}/policies/slug/accent_default_user_policy"),
        t,
        &sub,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn cannot_attach_more_than_the_caller_holds() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let user = s.create_user_sql(&master, "delegate", "delegate-pw").await;
    let own = create_policy_sql(
        &s,
        &master,
        "own",
        &["auth.groups.#", "authorized", "!unauthorized"],
        false,
    )
    .await;
    grant_user_policy(&s, &user, &own).await;
    let token = s.login("delegate", "delegate-pw").await;

    let group = uuid_of(&create_group(&s, &token, None, json!({ "name": "delegated" })).await);
    let ok = create_policy_sql(&s, &master, "ok", &["authorized", "!forbid-access"], false).await;
    let too_much = create_policy_sql(&s, &master, "too_much", &["authorized", "unauthorized"], false).await;
    let other = create_policy_sql(&s, &master, "other", &["confd.#"], false).await;

    let (status, err) = s
        .put(&format!("/groups/{group}/policies/{ok}"), &token, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{err}");
    for (path, access) in [
        (format!("/groups/{group}/policies/{too_much}"), "unauthorized"),
        (format!("/groups/{group}/policies/slug/other"), "confd.#"),
        (format!("/groups/{group}/policies/{other}"), "confd.#"),
    ] {
        let (status, err) = s.put(&path, &token, json!(null)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {err}");
        assert_eq!(err["details"]["required_access"], access, "{path}");
    }
    let (_, list) = s.get(&format!("/groups/{group}/policies"), &s.admin_token).await;
    assert_eq!(names(&list), ["ok"]);
}

#[tokio::test]
async fn group_policies_reach_the_login_acl_and_admin_metadata() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let master = s.master_tenant().await;
    let sub = create_tenant(&s, "sub").await;
    for (tenant, login) in [(&master, "member_m"), (&sub, "member_s")] {
        let user = s.create_user_sql(tenant, login, "member-pw").await;

        let (status, body) = s.login_with(login, "member-pw", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["metadata"]["admin"], false);
        let acl = body["data"]["acl"].as_array().expect("acl").clone();
        assert!(!acl.contains(&json!("custom.group.access")));
        assert!(!acl.contains(&json!("confd.#")));

        // A group's policies reach the member's next token.
        let policy = create_policy_sql(&s, tenant, "grouppol", &["custom.group.access"], false).await;
        let group = uuid_of(&create_group(&s, t, Some(tenant), json!({ "name": "with_policy" })).await);
        let (status, _) = call_in(&s, Method::PUT, &format!("/groups/{group}/users/{user}"), t, tenant).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call_in(
            &s,
            Method::PUT,
            &format!("/groups/{group}/policies/{policy}"),
            t,
            tenant,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = s.login_with(login, "member-pw", json!({})).await;
        let acl = body["data"]["acl"].as_array().expect("acl").clone();
        assert!(acl.contains(&json!("custom.group.access")), "{acl:?}");
        assert_eq!(body["data"]["metadata"]["admin"], false);
        let member_token = body["data"]["token"].as_str().expect("token").to_string();
        let (status, _) = s
            .call(
                Method::HEAD,
                &format!("/token/{member_token}?scope=custom.group.access"),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        // Membership of the tenant's admin group makes a tenant admin.
        let admin = admin_group(&s, tenant).await;
        let (status, err) = call_in(&s, Method::PUT, &format!("/groups/{admin}/users/{user}"), t, tenant).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{err}");
        let (_, body) = s.login_with(login, "member-pw", json!({})).await;
        assert_eq!(body["data"]["metadata"]["admin"], true, "{body}");
        let acl = body["data"]["acl"].as_array().expect("acl").clone();
        assert!(acl.contains(&json!("confd.#")), "{acl:?}");
        let admin_token = body["data"]["token"].as_str().expect("token").to_string();
        let (status, list) = s.get("/groups", &admin_token).await;
        assert_eq!(status, StatusCode::OK, "{list}");

        // Leaving it takes both away again.
        let (status, _) = call_in(&s, Method::DELETE, &format!("/groups/{admin}/users/{user}"), t, tenant).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call_in(
            &s,
            Method::DELETE,
            &format!("/groups/{group}/policies/{policy}"),
            t,
            tenant,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = s.login_with(login, "member-pw", json!({})).await;
        assert_eq!(body["data"]["metadata"]["admin"], false);
        let acl = body["data"]["acl"].as_array().expect("acl").clone();
        assert!(!acl.contains(&json!("custom.group.access")));
        assert!(!acl.contains(&json!("confd.#")));
    }
}

#[tokio::test]
async fn groups_survive_a_restart() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let group = uuid_of(&create_group(&s, &s.admin_token, None, json!({ "name": "durable" })).await);
    let user = s.create_user_sql(&master, "durable_user", "durable-pw").await;
    let (status, _) = s
        .put(&format!("/groups/{group}/users/{user}"), &s.admin_token, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let s = s.restart().await;
    let (status, got) = s.get(&format!("/groups/{group}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["name"], "durable");
    let (_, members) = s.get(&format!("/groups/{group}/users"), &s.admin_token).await;
    assert_eq!(members["items"][0]["uuid"], user.as_str());
}
