//! `/policies`: CRUD, lists, visibility across tenants, read-only policies
//! and the "only grant what you hold" rule.

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const DEFAULT_POLICIES: [&str; 3] = [
    "accent_default_admin_policy",
    "accent_default_master_user_policy",
    "accent_default_user_policy",
];

/// Creates a tenant (below the token's tenant, or below `parent`).
async fn tenant(s: &TestServer, name: &str, parent: Option<&str>) -> String {
    let body = match parent {
        Some(p) => json!({ "name": name, "parent_uuid": p }),
        None => json!({ "name": name }),
    };
    let (status, body) = s.post("/tenants", &s.admin_token, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["uuid"].as_str().expect("uuid").to_string()
}

/// A request acting in `tenant` (Accent-Tenant header) when given.
async fn call_in(
    s: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    tenant: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    match tenant {
        Some(t) => {
            s.call_with_headers(method, path, Some(token), body, &[("Accent-Tenant", t)])
                .await
        }
        None => s.call(method, path, Some(token), body).await,
    }
}

async fn create(s: &TestServer, tenant: Option<&str>, body: Value) -> Value {
    let (status, body) = call_in(s, Method::POST, "/policies", &s.admin_token, tenant, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

async fn attach_sql(s: &TestServer, user: &str, policy: &str) {
    let (u, p) = (user.to_string(), policy.to_string());
    s.app()
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO auth_user_policy (user_uuid, policy_uuid) VALUES (?1, ?2)",
                [u, p],
            )?;
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("attach");
}

async fn count_sql(s: &TestServer, sql: &'static str, arg: &str) -> i64 {
    let arg = arg.to_string();
    s.app()
        .store
        .read(move |c| Ok::<_, accentd::api::error::ApiError>(c.query_row(sql, [arg], |r| r.get(0))?))
        .await
        .expect("count")
}

/// A user of `tenant` holding `acl` through a fresh policy; returns a token.
pub(crate) async fn user_with_acl(s: &TestServer, tenant: &str, username: &str, acl: Value) -> String {
    let policy = create(
        s,
        Some(tenant),
        json!({ "name": format!("{username}-rights"), "acl": acl }),
    )
    .await;
    let user = s.create_user_sql(tenant, username, "pw-1234").await;
    attach_sql(s, &user, policy["uuid"].as_str().expect("uuid")).await;
    s.login(username, "pw-1234").await
}

#[tokio::test]
async fn crud_happy_path() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let created = create(
        &s,
        None,
        json!({ "name": "Call center admins", "description": "queues", "acl": ["confd.queues.#", "!confd.queues.*.delete"] }),
    )
    .await;
    let uuid = created["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(created["tenant_uuid"], json!(master));
    assert_eq!(created["slug"], "Call_center_admins");
    assert_eq!(created["description"], "queues");
    assert_eq!(created["acl"], json!(["confd.queues.#", "!confd.queues.*.delete"]));
    assert_eq!(created["read_only"], false);
    assert_eq!(created["shared"], false);

    let (status, got) = s.get(&format!("/policies/{uuid}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, created);
    let (status, by_slug) = s.get("/policies/Call_center_admins", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{by_slug}");
    assert_eq!(by_slug["uuid"], json!(uuid));

    // PUT replaces name, description and the ACL (in the given order).
    let (status, updated) = s
        .put(
            &format!("/policies/{uuid}"),
            &s.admin_token,
            json!({ "name": "Queue admins", "acl": ["b.b", "a.a"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Queue admins");
    assert_eq!(updated["slug"], "Call_center_admins");
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["acl"], json!(["b.b", "a.a"]));
    let (_, got) = s.get(&format!("/policies/{uuid}"), &s.admin_token).await;
    assert_eq!(got, updated);

    let (status, _) = s.delete(&format!("/policies/{uuid}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.get(&format!("/policies/{uuid}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = s.delete(&format!("/policies/{uuid}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_with_explicit_uuid_slug_and_shared() {
    let s = TestServer::start().await;
    let uuid = uuid::Uuid::new_v4().to_string();
    let p = create(
        &s,
        None,
        json!({ "uuid": uuid, "name": "n", "slug": "my_slug", "shared": true, "unknown": 1 }),
    )
    .await;
    assert_eq!(p["uuid"], json!(uuid));
    assert_eq!(p["slug"], "my_slug");
    assert_eq!(p["shared"], true);
    assert_eq!(p["acl"], json!([]));

    // slug and shared cannot change after creation: PUT ignores them.
    let (status, p) = s
        .put(
            &format!("/policies/{uuid}"),
            &s.admin_token,
            json!({ "name": "n2", "slug": "other", "shared": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["slug"], "my_slug");
    assert_eq!(p["shared"], true);
}

#[tokio::test]
async fn list_search_filter_paginate_order() {
    let s = TestServer::start().await;
    for (name, description) in [("alpha", "first one"), ("bravo", "second"), ("charlie", "third one")] {
        create(&s, None, json!({ "name": name, "description": description })).await;
    }
    let (status, all) = s.get("/policies", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 6);
    assert_eq!(all["filtered"], 6);
    let mut expected: Vec<String> = DEFAULT_POLICIES.iter().map(|n| n.to_string()).collect();
    expected.extend(["alpha", "bravo", "charlie"].map(String::from));
    expected.sort();
    assert_eq!(names(&all), expected);

    let (_, found) = s.get("/policies?search=one", &s.admin_token).await;
    assert_eq!(names(&found), ["alpha", "charlie"]);
    assert_eq!(found["total"], 6);
    assert_eq!(found["filtered"], 2);
    let (_, found) = s.get("/policies?search=DEFAULT_USER", &s.admin_token).await;
    assert_eq!(names(&found), ["accent_default_user_policy"]);
    // LIKE wildcards are literal.
    let (_, found) = s.get("/policies?search=%25", &s.admin_token).await;
    assert_eq!(found["filtered"], 0);

    let (_, found) = s.get("/policies?name=bravo", &s.admin_token).await;
    assert_eq!(names(&found), ["bravo"]);
    let (_, found) = s.get("/policies?slug=charlie", &s.admin_token).await;
    assert_eq!(names(&found), ["charlie"]);
    let uuid = found["items"][0]["uuid"].as_str().expect("uuid").to_string();
    let (_, found) = s.get(&format!("/policies?uuid={uuid}"), &s.admin_token).await;
    assert_eq!(names(&found), ["charlie"]);

    let (_, ro) = s.get("/policies?read_only=true", &s.admin_token).await;
    assert_eq!(names(&ro), DEFAULT_POLICIES);
    for p in ro["items"].as_array().expect("items") {
        assert_eq!(p["read_only"], true);
        assert_eq!(p["shared"], true);
        assert!(!p["acl"].as_array().expect("acl").is_empty());
    }
    let (_, rw) = s.get("/policies?read_only=false", &s.admin_token).await;
    assert_eq!(names(&rw), ["alpha", "bravo", "charlie"]);

    let (_, page) = s
        .get("/policies?order=name&direction=desc&limit=2&offset=1", &s.admin_token)
        .await;
    assert_eq!(names(&page), ["bravo", "alpha"]);
    assert_eq!(page["filtered"], 6);
    let (_, page) = s
        .get("/policies?order=description&read_only=false&limit=1", &s.admin_token)
        .await;
    assert_eq!(names(&page), ["alpha"]);

    for bad in [
        "order=acl",
        "direction=sideways",
        "limit=-1",
        "offset=x",
        "read_only=maybe",
        "recurse=perhaps",
    ] {
        let (status, body) = s.get(&format!("/policies?{bad}"), &s.admin_token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error_id"], "invalid-data");
    }
}

#[tokio::test]
async fn default_policies_are_visible_from_sub_tenants_but_read_only() {
    let s = TestServer::start().await;
    let sub = tenant(&s, "sub", None).await;
    let (status, list) = call_in(&s, Method::GET, "/policies", &s.admin_token, Some(&sub), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(names(&list), DEFAULT_POLICIES);
    for p in list["items"].as_array().expect("items") {
        // Shown as the viewer's own, read-only.
        assert_eq!(p["tenant_uuid"], json!(sub));
        assert_eq!(p["read_only"], true);
        assert_eq!(p["shared"], false);
    }
    let default_user = list["items"][2]["uuid"].as_str().expect("uuid").to_string();

    let (status, got) = call_in(
        &s,
        Method::GET,
        "/policies/accent_default_user_policy",
        &s.admin_token,
        Some(&sub),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["uuid"], json!(default_user));

    // Neither from the sub-tenant nor from the master tenant can they change.
    for t in [Some(sub.as_str()), None] {
        let path = format!("/policies/{default_user}");
        let (status, body) = call_in(
            &s,
            Method::PUT,
            &path,
            &s.admin_token,
            t,
            Some(json!({ "name": "mine", "acl": ["#"] })),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = call_in(&s, Method::DELETE, &path, &s.admin_token, t, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        for method in [Method::PUT, Method::DELETE] {
            let (status, _) = call_in(&s, method, &format!("{path}/acl/websocketd"), &s.admin_token, t, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
    }
    let (_, got) = s.get(&format!("/policies/{default_user}"), &s.admin_token).await;
    assert_eq!(got["name"], "accent_default_user_policy");
    assert!(got["acl"].as_array().expect("acl").contains(&json!("websocketd")));
}

#[tokio::test]
async fn tenants_are_isolated() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alpha", None).await;
    let b = tenant(&s, "beta", None).await;
    let pa = create(&s, Some(&a), json!({ "name": "pol-a", "slug": "same" })).await;
    let pb = create(&s, Some(&b), json!({ "name": "pol-b", "slug": "same" })).await;
    assert_eq!(pa["tenant_uuid"], json!(a));
    let (pa, pb) = (
        pa["uuid"].as_str().expect("uuid").to_string(),
        pb["uuid"].as_str().expect("uuid").to_string(),
    );

    let (_, list_a) = call_in(&s, Method::GET, "/policies", &s.admin_token, Some(&a), None).await;
    assert!(names(&list_a).contains(&"pol-a".to_string()));
    assert!(!names(&list_a).contains(&"pol-b".to_string()));
    assert_eq!(list_a["total"], 4);

    // The slug resolves within the selected tenant.
    let (_, got) = call_in(&s, Method::GET, "/policies/same", &s.admin_token, Some(&b), None).await;
    assert_eq!(got["uuid"], json!(pb));

    // B's policy from A: 404 everywhere, exactly like a missing one.
    let path = format!("/policies/{pb}");
    let (status, body) = call_in(&s, Method::GET, &path, &s.admin_token, Some(&a), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = call_in(
        &s,
        Method::PUT,
        &path,
        &s.admin_token,
        Some(&a),
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call_in(&s, Method::DELETE, &path, &s.admin_token, Some(&a), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call_in(
        &s,
        Method::PUT,
        &format!("{path}/acl/x"),
        &s.admin_token,
        Some(&a),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The master tenant sees its sub-tree with recurse, and any of it by uuid.
    let (_, top) = s.get("/policies", &s.admin_token).await;
    assert!(!names(&top).contains(&"pol-a".to_string()));
    let (_, top) = s.get("/policies?recurse=true", &s.admin_token).await;
    assert!(names(&top).contains(&"pol-a".to_string()));
    assert!(names(&top).contains(&"pol-b".to_string()));
    let (status, got) = s.get(&format!("/policies/{pa}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["tenant_uuid"], json!(a));
    assert_eq!(got["read_only"], false);

    // A token of tenant A cannot reach B at all.
    let token_a = user_with_acl(&s, &a, "alice", json!(["auth.policies.#"])).await;
    let (status, _) = s.get(&path, &token_a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call_in(&s, Method::GET, "/policies", &token_a, Some(&b), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error_id"], "unauthorized-tenant");
    let (_, list) = s.get("/policies?recurse=true", &token_a).await;
    assert!(!names(&list).contains(&"pol-b".to_string()));
}

#[tokio::test]
async fn shared_policies_reach_sub_tenants_read_only() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alpha", None).await;
    let a1 = tenant(&s, "alpha1", Some(&a)).await;
    let b = tenant(&s, "beta", None).await;
    let shared = create(&s, Some(&a), json!({ "name": "team", "shared": true, "acl": ["x.y"] })).await;
    let uuid = shared["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(shared["shared"], true);
    assert_eq!(shared["read_only"], false);

    let (_, list) = call_in(
        &s,
        Method::GET,
        "/policies?read_only=true",
        &s.admin_token,
        Some(&a1),
        None,
    )
    .await;
    assert!(names(&list).contains(&"team".to_string()), "{list}");
    let (status, seen) = call_in(&s, Method::GET, "/policies/team", &s.admin_token, Some(&a1), None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["tenant_uuid"], json!(a1));
    assert_eq!(seen["read_only"], true);
    assert_eq!(seen["shared"], false);

    let (_, list) = call_in(&s, Method::GET, "/policies", &s.admin_token, Some(&b), None).await;
    assert!(!names(&list).contains(&"team".to_string()));
    let (status, _) = call_in(
        &s,
        Method::GET,
        &format!("/policies/{uuid}"),
        &s.admin_token,
        Some(&b),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Only its own tenant (or above) may modify it.
    let path = format!("/policies/{uuid}");
    let (status, _) = call_in(
        &s,
        Method::PUT,
        &path,
        &s.admin_token,
        Some(&a1),
        Some(json!({ "name": "t" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call_in(&s, Method::DELETE, &path, &s.admin_token, Some(&a1), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call_in(
        &s,
        Method::PUT,
        &format!("{path}/acl/z"),
        &s.admin_token,
        Some(&a1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call_in(
        &s,
        Method::PUT,
        &path,
        &s.admin_token,
        Some(&a),
        Some(json!({ "name": "team2", "acl": ["x.y"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Its name and slug are taken in the sub-tree it is shared with.
    for body in [json!({ "name": "team2" }), json!({ "name": "other", "slug": "team" })] {
        let (status, conflict) = call_in(&s, Method::POST, "/policies", &s.admin_token, Some(&a1), Some(body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    }
    // ...and a new shared policy may not clash with a sub-tenant's policy.
    create(&s, Some(&a1), json!({ "name": "local" })).await;
    let (status, _) = call_in(
        &s,
        Method::POST,
        "/policies",
        &s.admin_token,
        Some(&a),
        Some(json!({ "name": "local", "shared": true })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A sibling may reuse it.
    create(&s, Some(&b), json!({ "name": "team2", "slug": "team" })).await;
}

#[tokio::test]
async fn plain_user_without_acl_is_refused() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let p = create(&s, None, json!({ "name": "target" })).await;
    let uuid = p["uuid"].as_str().expect("uuid").to_string();
    s.create_user_sql(&master, "bob", "pw-bob-1").await;
    let token = s.login("bob", "pw-bob-1").await;

    let cases = [
        (
            Method::GET,
            "/policies".to_string(),
            None,
            "auth.policies.read".to_string(),
        ),
        (
            Method::POST,
            "/policies".to_string(),
            Some(json!({ "name": "x" })),
            "auth.policies.create".to_string(),
        ),
        (
            Method::GET,
            format!("/policies/{uuid}"),
            None,
            format!("auth.policies.{uuid}.read"),
        ),
        (
            Method::PUT,
            format!("/policies/{uuid}"),
            Some(json!({ "name": "x" })),
            format!("auth.policies.{uuid}.edit"),
        ),
        (
            Method::DELETE,
            format!("/policies/{uuid}"),
            None,
            format!("auth.policies.{uuid}.delete"),
        ),
        (
            Method::PUT,
            format!("/policies/{uuid}/acl/a.b"),
            None,
            format!("auth.policies.{uuid}.edit"),
        ),
        (
            Method::DELETE,
            format!("/policies/{uuid}/acl/a.b"),
            None,
            format!("auth.policies.{uuid}.edit"),
        ),
        (
            Method::GET,
            "/policies/some.slug".to_string(),
            None,
            "auth.policies.some_slug.read".to_string(),
        ),
    ];
    for (method, path, body, required) in cases {
        let (status, err) = s.call(method.clone(), &path, Some(&token), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {err}");
        assert_eq!(err["error_id"], "unauthorized");
        assert_eq!(err["details"]["required_access"], json!(required), "{method} {path}");
    }
    let (status, _) = s.call(Method::GET, "/policies", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.get("/policies", "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn path_acl_uses_the_value_as_given() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let p = create(&s, None, json!({ "name": "target", "slug": "target" })).await;
    let uuid = p["uuid"].as_str().expect("uuid").to_string();
    let token = user_with_acl(&s, &master, "carol", json!(["auth.policies.target.read"])).await;
    let (status, got) = s.get("/policies/target", &token).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, _) = s.get(&format!("/policies/{uuid}"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.put("/policies/target", &token, json!({ "name": "x" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenant_admin_may_only_grant_what_it_holds() {
    let s = TestServer::start().await;
    let sub = tenant(&s, "customer", None).await;
    let token = user_with_acl(&s, &sub, "tadmin", json!(["auth.#"])).await;

    let (status, err) = s
        .post(
            "/policies",
            &token,
            json!({ "name": "too much", "acl": ["auth.users.read", "confd.#"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["error_id"], "unauthorized");
    assert_eq!(err["details"]["required_access"], "confd.#");
    let (_, list) = s.get("/policies?search=too", &token).await;
    assert_eq!(list["filtered"], 0, "nothing was created");

    let (status, p) = s
        .post(
            "/policies",
            &token,
            json!({ "name": "readers", "acl": ["auth.users.read", "!confd.#"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["tenant_uuid"], json!(sub));
    let uuid = p["uuid"].as_str().expect("uuid").to_string();

    // One access at a time follows the same rule.
    let (status, err) = s
        .call(
            Method::PUT,
            &format!("/policies/{uuid}/acl/confd.users.read"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["details"]["required_access"], "confd.users.read");
    let (status, _) = s
        .call(
            Method::PUT,
            &format!("/policies/{uuid}/acl/auth.groups.read"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(
            Method::PUT,
            &format!("/policies/{uuid}/acl/%21calld.%23"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "negatives may always be added");

    // Removing `!confd.#` would widen the policy to confd: refused.
    let (status, err) = s
        .call(
            Method::DELETE,
            &format!("/policies/{uuid}/acl/%21confd.%23"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["details"]["required_access"], "confd.#");
    let (status, err) = s
        .put(
            &format!("/policies/{uuid}"),
            &token,
            json!({ "name": "readers", "acl": ["auth.users.read"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    let (status, err) = s
        .put(
            &format!("/policies/{uuid}"),
            &token,
            json!({ "name": "readers", "acl": ["auth.users.read", "!confd.#", "confd.x"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    // Unchanged entries need nothing; held ones may go.
    let (status, p) = s
        .put(
            &format!("/policies/{uuid}"),
            &token,
            json!({ "name": "renamed", "acl": ["!confd.#", "!calld.#"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["acl"], json!(["!confd.#", "!calld.#"]));

    // The admin (ACL `#`) may do all of it.
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/policies/{uuid}/acl/%21confd.%23"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, p) = s.get(&format!("/policies/{uuid}"), &s.admin_token).await;
    assert_eq!(p["acl"], json!(["!calld.#"]));
}

async fn acl_of(s: &TestServer, uuid: &str) -> Value {
    s.get(&format!("/policies/{uuid}"), &s.admin_token).await.1["acl"].clone()
}

#[tokio::test]
async fn single_access_add_and_remove() {
    let s = TestServer::start().await;
    let p = create(&s, None, json!({ "name": "p", "slug": "pslug", "acl": ["a.a"] })).await;
    let uuid = p["uuid"].as_str().expect("uuid").to_string();

    for _ in 0..2 {
        let (status, body) = s
            .call(
                Method::PUT,
                &format!("/policies/{uuid}/acl/confd.users.%23"),
                Some(&s.admin_token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    assert_eq!(acl_of(&s, &uuid).await, json!(["a.a", "confd.users.#"]));
    let (status, _) = s
        .call(
            Method::PUT,
            "/policies/pslug/acl/calld.*.read",
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(acl_of(&s, &uuid).await, json!(["a.a", "confd.users.#", "calld.*.read"]));

    for _ in 0..2 {
        let (status, _) = s
            .call(
                Method::DELETE,
                &format!("/policies/{uuid}/acl/a.a"),
                Some(&s.admin_token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(acl_of(&s, &uuid).await, json!(["confd.users.#", "calld.*.read"]));
    let (status, _) = s
        .call(
            Method::PUT,
            &format!("/policies/{uuid}/acl/a.a"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(acl_of(&s, &uuid).await, json!(["confd.users.#", "calld.*.read", "a.a"]));

    let (status, body) = s
        .call(
            Method::PUT,
            &format!("/policies/{uuid}/acl/a%20b"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let long = "x".repeat(600);
    let (status, _) = s
        .call(
            Method::PUT,
            &format!("/policies/{uuid}/acl/{long}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let missing = uuid::Uuid::new_v4();
    for method in [Method::PUT, Method::DELETE] {
        let (status, _) = s
            .call(
                method,
                &format!("/policies/{missing}/acl/a.a"),
                Some(&s.admin_token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn bad_input() {
    let s = TestServer::start().await;
    let existing = create(&s, None, json!({ "name": "taken", "slug": "taken_slug" })).await;
    let raw = |body: &'static str| {
        let req = s
            .client
            .post(s.auth_url("/policies"))
            .header("X-Auth-Token", &s.admin_token)
            .header("Content-Type", "application/json")
            .body(body);
        async move {
            let resp = req.send().await.expect("send");
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for body in ["{not json", "", "[1, 2]", "{\"name\": \"a\"} trailing"] {
        let (status, err) = raw(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error_id"], "invalid-data");
    }

    let invalid = [
        json!({}),
        json!({ "name": null }),
        json!({ "name": 3 }),
        json!({ "name": "" }),
        json!({ "name": "n".repeat(81) }),
        json!({ "name": "ok", "slug": "bad-slug" }),
        json!({ "name": "ok", "slug": "s".repeat(81) }),
        json!({ "name": "ok", "slug": 4 }),
        json!({ "name": "ok", "description": "d".repeat(3000) }),
        json!({ "name": "ok", "acl": "confd.#" }),
        json!({ "name": "ok", "acl": [1] }),
        json!({ "name": "ok", "acl": [""] }),
        json!({ "name": "ok", "acl": ["has space"] }),
        json!({ "name": "ok", "acl": ["a".repeat(513)] }),
        json!({ "name": "ok", "shared": "yes" }),
        json!({ "name": "ok", "uuid": "not-a-uuid" }),
    ];
    for body in invalid {
        let (status, err) = s.post("/policies", &s.admin_token, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error_id"], "invalid-data", "{body}");
    }

    let put_invalid = [
        json!({}),
        json!({ "name": "" }),
        json!({ "name": 3 }),
        json!({ "name": "n".repeat(81) }),
        json!({ "name": "ok", "slug": 4 }),
        json!({ "name": "ok", "description": "d".repeat(3000) }),
        json!({ "name": "ok", "acl": ["has space"] }),
        json!({ "name": "ok", "acl": null, "shared": 1 }),
    ];
    let existing_path = format!("/policies/{}", existing["uuid"].as_str().expect("uuid"));
    for body in put_invalid {
        let (status, err) = s.put(&existing_path, &s.admin_token, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {body}: {err}");
    }
    // Visibility is checked before the body.
    let (status, _) = s
        .put(
            &format!("/policies/{}", uuid::Uuid::new_v4()),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let conflicts = [
        json!({ "name": "taken" }),
        json!({ "name": "other", "slug": "taken_slug" }),
        json!({ "name": "other", "slug": "TAKEN_SLUG" }),
        json!({ "name": "other", "uuid": existing["uuid"] }),
        json!({ "name": "accent_default_user_policy" }),
        json!({ "name": "other", "slug": "accent_default_admin_policy" }),
    ];
    for body in conflicts {
        let (status, err) = s.post("/policies", &s.admin_token, body.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}: {err}");
        assert_eq!(err["error_id"], "conflict");
    }
    let second = create(&s, None, json!({ "name": "second" })).await;
    let (status, _) = s
        .put(
            &format!("/policies/{}", second["uuid"].as_str().expect("uuid")),
            &s.admin_token,
            json!({ "name": "taken" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A derived slug that is taken gets a suffix instead of a conflict.
    let derived = create(&s, None, json!({ "name": "taken slug" })).await;
    let slug = derived["slug"].as_str().expect("slug");
    assert!(
        slug.starts_with("taken_slug_") && slug.len() == "taken_slug_".len() + 3,
        "{slug}"
    );

    for id in ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%00"] {
        let (status, err) = s.get(&format!("/policies/{id}"), &s.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {err}");
        let (status, _) = s.delete(&format!("/policies/{id}"), &s.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, err) = s.get("/policies/abc", &s.admin_token).await;
    assert_eq!(err["error_id"], "unknown-policy", "{status} {err}");
}

#[tokio::test]
async fn deleting_a_policy_detaches_it_but_live_tokens_keep_their_acl() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let p = create(
        &s,
        None,
        json!({ "name": "tenant readers", "acl": ["auth.tenants.read"] }),
    )
    .await;
    let uuid = p["uuid"].as_str().expect("uuid").to_string();
    let user = s.create_user_sql(&master, "dave", "pw-dave-1").await;
    attach_sql(&s, &user, &uuid).await;
    let g = uuid.clone();
    s.app()
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO auth_group_policy (group_uuid, policy_uuid) SELECT uuid, ?1 FROM auth_group LIMIT 1",
                [g],
            )?;
            Ok::<_, accentd::api::error::ApiError>(())
        })
        .await
        .expect("group policy");
    let token = s.login("dave", "pw-dave-1").await;
    let (status, _) = s.get("/tenants", &token).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = s.delete(&format!("/policies/{uuid}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let user_links = count_sql(
        &s,
        "SELECT COUNT(*) FROM auth_user_policy WHERE policy_uuid = ?1",
        &uuid,
    )
    .await;
    let group_links = count_sql(
        &s,
        "SELECT COUNT(*) FROM auth_group_policy WHERE policy_uuid = ?1",
        &uuid,
    )
    .await;
    let accesses = count_sql(
        &s,
        "SELECT COUNT(*) FROM auth_policy_access WHERE policy_uuid = ?1",
        &uuid,
    )
    .await;
    assert_eq!((user_links, group_links, accesses), (0, 0, 0));

    // The live token keeps what it was issued with; a new one does not.
    let (status, _) = s.get("/tenants", &token).await;
    assert_eq!(status, StatusCode::OK);
    let fresh = s.login("dave", "pw-dave-1").await;
    let (status, _) = s.get("/tenants", &fresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn policies_survive_a_restart() {
    let s = TestServer::start().await;
    let p = create(&s, None, json!({ "name": "kept", "acl": ["b", "a", "c"] })).await;
    let s = s.restart().await;
    let (status, got) = s
        .get(
            &format!("/policies/{}", p["uuid"].as_str().expect("uuid")),
            &s.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, p);
}
