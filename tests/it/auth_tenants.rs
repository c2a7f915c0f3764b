//! /tenants over HTTP: CRUD, the tree, isolation, events.

use crate::common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn create(s: &TestServer, token: &str, tenant_header: Option<&str>, body: Value) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = tenant_header.map(|t| vec![("Accent-Tenant", t)]).unwrap_or_default();
    s.call_with_headers(Method::POST, "/tenants", Some(token), Some(body), &headers)
        .await
}

#[tokio::test]
async fn crud_with_events() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let master = s.master_tenant().await;
    let mut events = s.app().bus.subscribe();
    let (status, body) = create(
        &s,
        &t,
        None,
        json!({"name": "Acme Corp", "slug": "acme", "phone": "555", "domain_names": ["acme.example.com"],
               "address": {"city": "Quebec", "country": "CA"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let uuid = body["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(body["parent_uuid"], master.as_str());
    assert_eq!(body["domain_names"], json!(["acme.example.com"]));
    assert_eq!(body["address"]["city"], "Quebec");
    let e = events.try_recv().expect("created event");
    assert_eq!(e.name, "auth_tenant_added");
    assert_eq!(e.routing_key, format!("auth.tenants.{uuid}.created"));
    assert_eq!(e.required_acl, format!("events.auth.tenants.{uuid}.created"));
    assert_eq!(e.data["slug"], "acme");

    let (status, body) = s.get(&format!("/tenants/{uuid}"), &t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Acme Corp");

    let (status, body) = s
        .put(
            &format!("/tenants/{uuid}"),
            &t,
            json!({"name": "Acme Inc", "domain_names": ["acme.example.org"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Acme Inc");
    assert_eq!(body["slug"], "acme", "slug is not editable");
    let e = events.try_recv().expect("updated event");
    assert_eq!(e.name, "auth_tenant_updated");
    assert_eq!(e.data["name"], "Acme Inc");

    let (_, body) = s.get(&format!("/tenants/{uuid}/domains"), &t).await;
    assert_eq!(body["items"], json!([{"name": "acme.example.org"}]));

    let (_, body) = s.get("/tenants?search=acme", &t).await;
    assert_eq!(body["filtered"], 1);
    assert_eq!(body["total"], 2);
    let (_, body) = s.get("/tenants?order=name&direction=desc&limit=1", &t).await;
    assert_eq!(body["items"].as_array().expect("items").len(), 1);
    assert_eq!(body["items"][0]["name"], "master");

    let (status, _) = s.delete(&format!("/tenants/{uuid}"), &t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let e = events.try_recv().expect("deleted event");
    assert_eq!(e.name, "auth_tenant_deleted");
    let (status, _) = s.get(&format!("/tenants/{uuid}"), &t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn duplicate_domain_is_a_conflict() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let (status, _) = create(&s, &t, None, json!({"name": "a", "domain_names": ["x.example.com"]})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = create(&s, &t, None, json!({"name": "b", "domain_names": ["X.example.com"]})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn sub_tenants_and_the_tenant_header() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let (_, a) = create(&s, &t, None, json!({"name": "a", "slug": "a"})).await;
    let a = a["uuid"].as_str().expect("a").to_string();
    let (_, b) = create(&s, &t, None, json!({"name": "b", "slug": "b"})).await;
    let b = b["uuid"].as_str().expect("b").to_string();
    // A child of `a`, created by selecting `a` with the header.
    let (status, a1) = create(&s, &t, Some(&a), json!({"name": "a1", "slug": "a1"})).await;
    assert_eq!(status, StatusCode::OK, "{a1}");
    assert_eq!(a1["parent_uuid"], a.as_str());
    let a1 = a1["uuid"].as_str().expect("a1").to_string();

    // Listing from `a` shows a and a1 only; Wazo's header name works too.
    let (_, body) = s
        .call_with_headers(Method::GET, "/tenants", Some(&t), None, &[("Wazo-Tenant", a.as_str())])
        .await;
    let mut names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, vec!["a", "a1"]);

    // From `a`, `b` does not exist.
    let (status, _) = s
        .call_with_headers(
            Method::GET,
            &format!("/tenants/{b}"),
            Some(&t),
            None,
            &[("Accent-Tenant", a.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call_with_headers(
            Method::DELETE,
            &format!("/tenants/{b}"),
            Some(&t),
            None,
            &[("Accent-Tenant", a.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A tenant with sub-tenants is not deleted.
    let (status, _) = s.delete(&format!("/tenants/{a}"), &t).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s.delete(&format!("/tenants/{a1}"), &t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.delete(&format!("/tenants/{a}"), &t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Every new tenant got its admin group.
    let count: i64 = s
        .app()
        .store
        .read(move |c| -> Result<i64, accentd::api::error::ApiError> {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM auth_group WHERE tenant_uuid = ?1 AND name = 'accent_default_admin_group'",
                [b],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("count");
    assert_eq!(count, 1);
}

#[tokio::test]
async fn tenants_survive_a_restart() {
    let s = TestServer::start().await;
    let (_, a) = create(&s, &s.admin_token.clone(), None, json!({"name": "persisted"})).await;
    let a = a["uuid"].as_str().expect("a").to_string();
    let s = s.restart().await;
    let (status, body) = s.get(&format!("/tenants/{a}"), &s.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "persisted");
    // The tenant tree is rebuilt: the header still selects it.
    let (status, _) = s
        .call_with_headers(
            Method::GET,
            "/tenants",
            Some(&s.admin_token),
            None,
            &[("Accent-Tenant", a.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
