//! The ACL matrix: every protected operation of the served OpenAPI document,
//! called by a plain user, by a service account holding exactly the
//! documented ACL, by an account denied exactly that ACL, and by the admin of
//! another tenant on this tenant's resources.

use std::collections::BTreeMap;

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Op {
    method: Method,
    path: String,
    acl: String,
}

fn operations() -> Vec<Op> {
    let doc: Value = yaml_serde::from_str(accentd::api::openapi::AUTH_SPEC).expect("spec parses");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let Some(acl) = op.get("x-accent-acl").and_then(Value::as_str) else {
                continue;
            };
            if acl == "none" {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            ops.push(Op {
                method,
                path: path.clone(),
                acl: acl.to_string(),
            });
        }
    }
    ops
}

/// Replaces `{name}` placeholders in a path or ACL template.
fn fill(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

fn random_values() -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    for k in ["user_uuid", "group_uuid", "policy_uuid", "tenant_uuid", "session_uuid"] {
        m.insert(k, uuid::Uuid::new_v4().to_string());
    }
    m.insert("client_id", "some-client".to_string());
    m.insert("policy_slug", "some_slug".to_string());
    m.insert("access", "some.access.read".to_string());
    m
}

fn body_for(method: &Method) -> Option<Value> {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}))
}

async fn call_as(s: &TestServer, token: &str, method: Method, path: &str, tenant: Option<&str>) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = tenant.map(|t| vec![("Accent-Tenant", t)]).unwrap_or_default();
    let body = body_for(&method);
    s.call_with_headers(method, path, Some(token), body, &headers).await
}

/// Creates a service account (purpose internal) holding exactly `acl` and
/// returns a token of it.
async fn service_token(s: &TestServer, n: usize, acl: Vec<String>) -> String {
    let t = s.admin_token.clone();
    let (status, policy) = s
        .post("/policies", &t, json!({"name": format!("matrix-{n}"), "acl": acl}))
        .await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    let username = format!("svc-{n}");
    let (status, user) = s
        .post(
            "/users",
            &t,
            json!({"username": username, "password": "svc-key", "purpose": "internal"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let (status, body) = s
        .put(
            &format!(
                "/users/{}/policies/{}",
                user["uuid"].as_str().expect("u"),
                policy["uuid"].as_str().expect("p")
            ),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    s.login(&username, "svc-key").await
}

fn is_acl_denial(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::UNAUTHORIZED && body["error_id"] == "unauthorized"
}

#[tokio::test]
async fn every_protected_operation_checks_its_documented_acl() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let ops = operations();
    assert!(ops.len() >= 45, "only {} protected operations documented", ops.len());

    // A plain PBX user: only the default user policy.
    let (status, body) = s
        .post("/users", &admin, json!({"username": "plain", "password": "plain-pw"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let plain = s.login("plain", "plain-pw").await;

    let mut failures = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let values = random_values();
        let path = fill(&op.path, &values);
        let required = fill(&op.acl, &values);

        // 1. The plain user is refused every protected operation on another user's ids.
        let (status, body) = call_as(&s, &plain, op.method.clone(), &path, None).await;
        if !is_acl_denial(status, &body) {
            failures.push(format!("plain user {} {}: {status} {body}", op.method, op.path));
        }

        // 2. A service account with exactly the documented ACL gets past the check.
        let allowed = service_token(&s, 2 * n, vec![required.clone()]).await;
        let (status, body) = call_as(&s, &allowed, op.method.clone(), &path, None).await;
        if is_acl_denial(status, &body) {
            failures.push(format!(
                "holder of {required} refused {} {}: {body}",
                op.method, op.path
            ));
        }
        if status.is_server_error() {
            failures.push(format!("{} {} -> {status} {body}", op.method, op.path));
        }

        // 3. Everything but that ACL: refused, naming exactly that ACL.
        let denied = service_token(&s, 2 * n + 1, vec!["auth.#".into(), format!("!{required}")]).await;
        let (status, body) = call_as(&s, &denied, op.method.clone(), &path, None).await;
        let named = body["details"]["required_access"].as_str().unwrap_or_default();
        let alias = named.replace(".update", ".edit");
        if !is_acl_denial(status, &body) || (named != required && alias != required) {
            failures.push(format!(
                "denied {required}: {} {} -> {status} {body}",
                op.method, op.path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn another_tenants_admin_sees_none_of_this_tenants_resources() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let (_, a) = s
        .post("/tenants", &admin, json!({"name": "tenant a", "slug": "ta"}))
        .await;
    let a = a["uuid"].as_str().expect("a").to_string();
    let (_, b) = s
        .post("/tenants", &admin, json!({"name": "tenant b", "slug": "tb"}))
        .await;
    let b = b["uuid"].as_str().expect("b").to_string();

    // Resources of tenant A.
    let in_a = |method, path: &str, body| {
        let a = a.clone();
        let admin = admin.clone();
        let path = path.to_string();
        let s = &s;
        async move {
            s.call_with_headers(
                method,
                &path,
                Some(&admin),
                Some(body),
                &[("Accent-Tenant", a.as_str())],
            )
            .await
        }
    };
    let (_, user) = in_a(
        Method::POST,
        "/users",
        json!({"username": "a-user", "password": "a-pw"}),
    )
    .await;
    let user = user["uuid"].as_str().expect("user").to_string();
    let (_, group) = in_a(Method::POST, "/groups", json!({"name": "a-group"})).await;
    let group = group["uuid"].as_str().expect("group").to_string();
    let (_, policy) = in_a(
        Method::POST,
        "/policies",
        json!({"name": "a-policy", "slug": "a_policy", "acl": []}),
    )
    .await;
    let policy = policy["uuid"].as_str().expect("policy").to_string();
    let (status, login) = s
        .login_with(
            "a-user",
            "a-pw",
            json!({"access_type": "offline", "client_id": "a-client"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let session = login["data"]["session_uuid"].as_str().expect("session").to_string();

    // The admin of tenant B: `auth.#` inside B.
    let in_b = [("Accent-Tenant", b.as_str())];
    let (_, bp) = s
        .call_with_headers(
            Method::POST,
            "/policies",
            Some(&admin),
            Some(json!({"name": "b-admin", "acl": ["auth.#"]})),
            &in_b,
        )
        .await;
    let (_, bu) = s
        .call_with_headers(
            Method::POST,
            "/users",
            Some(&admin),
            Some(json!({"username": "b-admin", "password": "b-pw"})),
            &in_b,
        )
        .await;
    let (status, body) = s
        .call_with_headers(
            Method::PUT,
            &format!(
                "/users/{}/policies/{}",
                bu["uuid"].as_str().expect("bu"),
                bp["uuid"].as_str().expect("bp")
            ),
            Some(&admin),
            Some(json!({})),
            &in_b,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let b_admin = s.login("b-admin", "b-pw").await;

    let values: BTreeMap<&str, String> = [
        ("user_uuid", user.clone()),
        ("group_uuid", group.clone()),
        ("policy_uuid", policy.clone()),
        ("tenant_uuid", a.clone()),
        ("session_uuid", session.clone()),
        ("client_id", "a-client".to_string()),
        ("policy_slug", "a_policy".to_string()),
        ("access", "some.access.read".to_string()),
    ]
    .into_iter()
    .collect();

    let mut failures = Vec::new();
    let mut checked = 0;
    for op in operations() {
        if !op.path.contains('{') || op.path.starts_with("/token/") {
            continue; // lists are covered by the resource tests (filtered to the own tenant)
        }
        let path = fill(&op.path, &values);
        let (status, body) = call_as(&s, &b_admin, op.method.clone(), &path, None).await;
        checked += 1;
        if status != StatusCode::NOT_FOUND {
            failures.push(format!("{} {} -> {status} {body}", op.method, op.path));
        }
        // Selecting tenant A with the header is refused outright.
        let (status, body) = call_as(&s, &b_admin, op.method.clone(), &path, Some(&a)).await;
        if status != StatusCode::UNAUTHORIZED || body["error_id"] != "unauthorized-tenant" {
            failures.push(format!("header A: {} {} -> {status} {body}", op.method, op.path));
        }
    }
    assert!(checked >= 30, "checked {checked}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Lists from B contain nothing of A.
    for list in ["/users", "/groups", "/policies", "/tenants", "/sessions", "/tokens"] {
        let (status, body) = s.get(&format!("{list}?recurse=true"), &b_admin).await;
        assert_eq!(status, StatusCode::OK, "{list}: {body}");
        let text = body.to_string();
        for id in [&user, &group, &policy, &a, &session] {
            assert!(!text.contains(id.as_str()), "{list} from tenant B shows {id}: {text}");
        }
    }
    // And A's resources are all still there.
    let (status, _) = s.get(&format!("/users/{user}"), &admin).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_acl_is_checked_before_the_body_is_read() {
    let s = TestServer::start().await;
    let (status, _) = s
        .post(
            "/users",
            &s.admin_token.clone(),
            json!({"username": "nobody", "password": "pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let t = s.login("nobody", "pw").await;
    for op in operations() {
        if !matches!(op.method, Method::POST | Method::PUT | Method::PATCH) {
            continue;
        }
        let path = fill(&op.path, &random_values());
        let resp = s
            .client
            .request(op.method.clone(), s.auth_url(&path))
            .header("X-Auth-Token", &t)
            .body("{not json")
            .send()
            .await
            .expect("send");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            is_acl_denial(status, &body),
            "{} {}: {status} {body}",
            op.method,
            op.path
        );
    }
}
