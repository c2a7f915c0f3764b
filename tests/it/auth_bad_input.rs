//! Bad input, table-driven: every case gets its 4xx and upstream's error body,
//! never a 500 or a dropped connection.

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Clone, Copy, Debug)]
enum Auth {
    None,
    Admin,
    Garbage,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// `{"message", "error_id", "details", "timestamp"}`
    Standard(&'static str),
    /// accent-auth's legacy `{"reason": [...], "timestamp": [...], "status_code": n}`
    Legacy,
    /// No body (HEAD).
    Empty,
}

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    auth: Auth,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    shape: Shape,
}

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    auth: Auth,
    body: Option<&str>,
    status: u16,
    shape: Shape,
) -> Case {
    Case {
        name,
        method,
        path: path.to_string(),
        auth,
        headers: vec![],
        body: body.map(|b| b.as_bytes().to_vec()),
        status,
        shape,
    }
}

#[tokio::test]
async fn bad_input_table() {
    let s = TestServer::start().await;
    let master = s.master_tenant().await;
    let t = s.admin_token.clone();
    let (status, _) = s
        .post("/tenants", &t, serde_json::json!({"name": "taken", "slug": "taken"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let huge = vec![b'a'; 2 * 1024 * 1024];
    let long_name = format!(r#"{{"name": "{}"}}"#, "x".repeat(1000));
    use Auth::*;
    use Shape::*;
    let mut cases = vec![
        case(
            "token: malformed JSON",
            Method::POST,
            "/token",
            None,
            Some("{nope"),
            400,
            Legacy,
        ),
        case(
            "token: unknown login",
            Method::POST,
            "/token",
            None,
            Some("{}"),
            401,
            Legacy,
        ),
        case(
            "token: no body no auth",
            Method::POST,
            "/token",
            None,
            Option::None,
            401,
            Legacy,
        ),
        case(
            "token: path id garbage",
            Method::GET,
            "/token/%00%01garbage",
            None,
            Option::None,
            404,
            Legacy,
        ),
        case(
            "token: unknown uuid",
            Method::GET,
            "/token/5f0c0c2e-1111-4111-8111-111111111111",
            None,
            Option::None,
            404,
            Legacy,
        ),
        case(
            "token: HEAD unknown",
            Method::HEAD,
            "/token/zzz",
            None,
            Option::None,
            404,
            Empty,
        ),
        case(
            "token: tenant not a uuid",
            Method::GET,
            &format!("/token/{t}?tenant=abc"),
            None,
            Option::None,
            403,
            Legacy,
        ),
        case(
            "token: tenant unknown",
            Method::GET,
            &format!("/token/{t}?tenant={}", uuid::Uuid::new_v4()),
            None,
            Option::None,
            403,
            Legacy,
        ),
        case(
            "scopes: malformed",
            Method::POST,
            &format!("/token/{t}/scopes/check"),
            None,
            Some("[1,"),
            400,
            Standard("invalid-data"),
        ),
        case(
            "scopes: not a list",
            Method::POST,
            &format!("/token/{t}/scopes/check"),
            None,
            Some(r#"{"scopes": "a"}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "scopes: missing field",
            Method::POST,
            &format!("/token/{t}/scopes/check"),
            None,
            Some("{}"),
            400,
            Standard("invalid-data"),
        ),
        case(
            "scopes: tenant not uuid",
            Method::POST,
            &format!("/token/{t}/scopes/check"),
            None,
            Some(r#"{"scopes": [], "tenant_uuid": "x"}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "scopes: unknown token",
            Method::POST,
            "/token/nope/scopes/check",
            None,
            Some(r#"{"scopes": []}"#),
            404,
            Legacy,
        ),
        case(
            "tenants: no token",
            Method::GET,
            "/tenants",
            None,
            Option::None,
            401,
            Standard("unauthorized"),
        ),
        case(
            "tenants: garbage token",
            Method::GET,
            "/tenants",
            Garbage,
            Option::None,
            401,
            Standard("unauthorized"),
        ),
        case(
            "tenants: malformed JSON",
            Method::POST,
            "/tenants",
            Admin,
            Some("{\"name\": "),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: JSON null",
            Method::POST,
            "/tenants",
            Admin,
            Some("null"),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: JSON array",
            Method::POST,
            "/tenants",
            Admin,
            Some("[]"),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: trailing garbage",
            Method::POST,
            "/tenants",
            Admin,
            Some("{} x"),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: name wrong type",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"name": 12}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: slug too long",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"slug": "abcdefghijk"}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: slug bad chars",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"slug": "a-b"}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: name too long",
            Method::POST,
            "/tenants",
            Admin,
            Some(&long_name),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: uuid not a uuid",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"uuid": "nope"}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: domains not a list",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"domain_names": "a.com"}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: bad domain",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"domain_names": ["a b"]}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: address wrong type",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"address": 5}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: bad auth method",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"default_authentication_method": "magic"}"#),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: duplicate slug",
            Method::POST,
            "/tenants",
            Admin,
            Some(r#"{"slug": "taken"}"#),
            409,
            Standard("conflict"),
        ),
        case(
            "tenants: parent unknown",
            Method::POST,
            "/tenants",
            Admin,
            Some(&format!(r#"{{"parent_uuid": "{}"}}"#, uuid::Uuid::new_v4())),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: id not a uuid",
            Method::GET,
            "/tenants/not-a-uuid",
            Admin,
            Option::None,
            404,
            Standard("unknown-tenant"),
        ),
        case(
            "tenants: unknown id",
            Method::GET,
            &format!("/tenants/{}", uuid::Uuid::new_v4()),
            Admin,
            Option::None,
            404,
            Standard("unknown-tenant"),
        ),
        case(
            "tenants: PUT malformed",
            Method::PUT,
            &format!("/tenants/{master}"),
            Admin,
            Some("{"),
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: delete the top tenant",
            Method::DELETE,
            &format!("/tenants/{master}"),
            Admin,
            Option::None,
            403,
            Standard("forbidden"),
        ),
        case(
            "tenants: limit negative",
            Method::GET,
            "/tenants?limit=-1",
            Admin,
            Option::None,
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: offset not a number",
            Method::GET,
            "/tenants?offset=abc",
            Admin,
            Option::None,
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: bad direction",
            Method::GET,
            "/tenants?direction=sideways",
            Admin,
            Option::None,
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: order by a secret column",
            Method::GET,
            "/tenants?order=password_hash",
            Admin,
            Option::None,
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: recurse not a bool",
            Method::GET,
            "/tenants?recurse=perhaps",
            Admin,
            Option::None,
            400,
            Standard("invalid-data"),
        ),
        case(
            "tenants: wrong method",
            Method::PATCH,
            "/tenants",
            Admin,
            Option::None,
            405,
            Standard("method-not-allowed"),
        ),
        case(
            "sessions: id not a uuid",
            Method::DELETE,
            "/sessions/xyz",
            Admin,
            Option::None,
            404,
            Standard("unknown-session"),
        ),
        case(
            "sessions: unknown user",
            Method::GET,
            &format!("/users/{}/sessions", uuid::Uuid::new_v4()),
            Admin,
            Option::None,
            404,
            Standard("unknown-user"),
        ),
        case(
            "tokens: unknown client id",
            Method::DELETE,
            "/users/me/tokens/none",
            Admin,
            Option::None,
            404,
            Standard("unknown-token"),
        ),
        case(
            "unknown route",
            Method::GET,
            "/does/not/exist",
            Admin,
            Option::None,
            404,
            Standard("not-found"),
        ),
        Case {
            body: Some(huge.clone()),
            ..case(
                "token: huge body",
                Method::POST,
                "/token",
                None,
                Option::None,
                413,
                Standard("payload-too-large"),
            )
        },
        Case {
            body: Some(huge),
            ..case(
                "tenants: huge body",
                Method::POST,
                "/tenants",
                Admin,
                Option::None,
                413,
                Standard("payload-too-large"),
            )
        },
    ];
    let mut with_header = |name, header: &'static str, value: String, status, shape| {
        let mut c = case(name, Method::GET, "/tenants", Auth::Admin, Option::None, status, shape);
        c.headers.push((header, value));
        cases.push(c);
    };
    with_header(
        "tenant header not a uuid",
        "Accent-Tenant",
        "abc".into(),
        401,
        Standard("unauthorized-tenant"),
    );
    with_header(
        "tenant header unknown",
        "Accent-Tenant",
        uuid::Uuid::new_v4().to_string(),
        401,
        Standard("unauthorized-tenant"),
    );
    with_header(
        "wazo tenant header unknown",
        "Wazo-Tenant",
        uuid::Uuid::new_v4().to_string(),
        401,
        Standard("unauthorized-tenant"),
    );
    with_header(
        "basic auth garbage",
        "Authorization",
        "Basic ###".into(),
        200,
        Standard(""),
    );
    assert!(cases.len() >= 30);

    let mut failures = Vec::new();
    for c in &cases {
        let mut req = s.client.request(c.method.clone(), s.auth_url(&c.path));
        match c.auth {
            Auth::None => {}
            Auth::Admin => req = req.header("X-Auth-Token", &t),
            Auth::Garbage => req = req.header("X-Auth-Token", "garbage-token"),
        }
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        if let Some(b) = &c.body {
            req = req.body(b.clone());
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let shape_ok = match c.shape {
            Shape::Empty => text.is_empty(),
            Shape::Legacy => body["reason"].is_array() && body["status_code"] == c.status,
            Shape::Standard("") => body.is_object(),
            Shape::Standard(id) => {
                body["error_id"] == id && body["message"].is_string() && body["timestamp"].is_number()
            }
        };
        if status != c.status || !shape_ok {
            failures.push(format!("{}: got {status} {text}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
