//! confd `/switchboards` over HTTP: CRUD by uuid with upstream's singular
//! create/delete ACLs, the events (routing keys naming the switchboard), member
//! users (same tenant, list replaced), the no-answer fallback, incalls reaching
//! a switchboard and the dialplan rendered for them, tenants and bad bodies.

use crate::auth_policies::user_with_acl;
use crate::common::TestServer;
use accentd::bus::Event;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const C: &str = "/api/confd/1.1";

fn drain(bus: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) -> Vec<Arc<Event>> {
    std::iter::from_fn(|| bus.try_recv().ok()).collect()
}

pub(crate) async fn switchboard(s: &TestServer, body: Value) -> String {
    let (code, sb) = s.post(&format!("{C}/switchboards"), &s.admin_token, body.clone()).await;
    assert_eq!(code, StatusCode::CREATED, "POST {body}: {sb}");
    sb["uuid"].as_str().expect("uuid").to_string()
}

async fn confd_user(s: &TestServer, t: &str, first: &str) -> Value {
    let (code, u) = s.post(&format!("{C}/users"), t, json!({"firstname": first})).await;
    assert_eq!(code, StatusCode::CREATED, "{u}");
    u
}

#[tokio::test]
async fn switchboards_crud_members_and_fallbacks_with_events() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let tenant = s.master_tenant().await;
    let mut bus = s.app().bus.subscribe();

    let (code, sb) = s
        .post(
            &format!("{C}/switchboards"),
            &t,
            json!({"name": "Reception", "timeout": 30, "queue_music_on_hold": "jazz"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{sb}");
    let uuid = sb["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(
        sb,
        json!({"uuid": uuid, "tenant_uuid": tenant, "name": "Reception", "timeout": 30,
               "queue_music_on_hold": "jazz", "waiting_room_music_on_hold": null,
               "members": {"users": []}, "fallbacks": {"noanswer_destination": null}, "incalls": []})
    );
    let (code, got) = s.get(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(got, sb);
    let (_, list) = s.get(&format!("{C}/switchboards?search=recep"), &t).await;
    assert_eq!(list["total"], json!(1), "{list}");

    // Partial PUT; relations sent back are ignored.
    let mut back = got.clone();
    back["waiting_room_music_on_hold"] = json!("classical");
    let (code, body) = s.put(&format!("{C}/switchboards/{uuid}"), &t, back).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (_, got) = s.get(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(got["waiting_room_music_on_hold"], json!("classical"));
    assert_eq!(got["timeout"], json!(30));

    // Members: the list is replaced, in order, duplicates once.
    let alice = confd_user(&s, &t, "Alice").await;
    let bob = confd_user(&s, &t, "Bob").await;
    let (a, b) = (alice["uuid"].clone(), bob["uuid"].clone());
    let members = format!("{C}/switchboards/{uuid}/members/users");
    let (code, body) = s
        .put(&members, &t, json!({"users": [{"uuid": b}, {"uuid": a}, {"uuid": b}]}))
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (_, got) = s.get(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(
        got["members"],
        json!({"users": [{"uuid": b, "firstname": "Bob", "lastname": null},
                         {"uuid": a, "firstname": "Alice", "lastname": null}]})
    );
    let (code, _) = s.put(&members, &t, json!({"users": [{"uuid": a}]})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(got["members"]["users"].as_array().map(Vec::len), Some(1));

    // Fallbacks: GET/PUT, a user of the tenant, then none again.
    let fallbacks = format!("{C}/switchboards/{uuid}/fallbacks");
    let dest = json!({"type": "user", "user_id": alice["id"]});
    let (code, body) = s.put(&fallbacks, &t, json!({"noanswer_destination": dest})).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, got) = s.get(&fallbacks, &t).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        got,
        json!({"noanswer_destination": {"type": "user", "user_id": alice["id"], "ring_time": null, "moh_uuid": null}})
    );
    let (_, shown) = s.get(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(shown["fallbacks"], got);
    let (code, _) = s.put(&fallbacks, &t, json!({})).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, got) = s.get(&fallbacks, &t).await;
    assert_eq!(got, json!({"noanswer_destination": null}));

    let (code, _) = s.delete(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, body) = s.get(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");

    let events: Vec<Arc<Event>> = drain(&mut bus)
        .into_iter()
        .filter(|e| e.name.starts_with("switchboard"))
        .collect();
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.name.as_str(), e.routing_key.as_str(), e.required_acl.as_str()))
        .collect();
    let created = format!("config.switchboards.{uuid}.created");
    let edited = format!("config.switchboards.{uuid}.edited");
    let deleted = format!("config.switchboards.{uuid}.deleted");
    let members_key = format!("config.switchboards.{uuid}.members.users.updated");
    let acl = |k: &str| k.trim_start_matches("config.").to_string();
    let (c_acl, e_acl, d_acl, m_acl) = (acl(&created), acl(&edited), acl(&deleted), acl(&members_key));
    assert_eq!(
        seen,
        [
            ("switchboard_created", created.as_str(), c_acl.as_str()),
            ("switchboard_edited", edited.as_str(), e_acl.as_str()),
            (
                "switchboard_member_user_associated",
                members_key.as_str(),
                m_acl.as_str()
            ),
            (
                "switchboard_member_user_associated",
                members_key.as_str(),
                m_acl.as_str()
            ),
            (
                "switchboard_fallback_edited",
                "config.switchboards.fallbacks.edited",
                "switchboards.fallbacks.edited"
            ),
            (
                "switchboard_fallback_edited",
                "config.switchboards.fallbacks.edited",
                "switchboards.fallbacks.edited"
            ),
            ("switchboard_deleted", deleted.as_str(), d_acl.as_str()),
        ]
    );
    assert_eq!(events[0].tenant_uuid.map(|u| u.to_string()), Some(tenant.clone()));
    assert_eq!(events[0].data["name"], json!("Reception"));
    assert_eq!(
        events[2].data,
        json!({"switchboard_uuid": uuid, "users": [{"uuid": b}, {"uuid": a}]})
    );
    assert_eq!(
        events[2].target,
        accentd::bus::Target::Users(vec![
            b.as_str().and_then(|u| u.parse().ok()).expect("uuid"),
            a.as_str().and_then(|u| u.parse().ok()).expect("uuid")
        ])
    );
    assert_eq!(events[4].data["switchboard_uuid"], json!(uuid));
    assert_eq!(events[4].data["noanswer_destination"]["type"], json!("user"));
}

#[tokio::test]
async fn incalls_reach_a_switchboard_through_the_stasis_application() {
    let s = TestServer::start_with(|c| c.ari.app = "accent".into()).await;
    let t = s.admin_token.clone();
    let (code, ctx) = s
        .post(
            &format!("{C}/contexts"),
            &t,
            json!({"name": "from-extern", "label": "In", "type": "incall",
                   "incall_ranges": [{"start": "5000", "end": "5999"}]}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ctx}");
    let uuid = switchboard(&s, json!({"name": "Reception"})).await;
    let (code, incall) = s
        .post(
            &format!("{C}/incalls"),
            &t,
            json!({"destination": {"type": "switchboard", "switchboard_uuid": uuid}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{incall}");
    assert_eq!(
        incall["destination"],
        json!({"type": "switchboard", "switchboard_uuid": uuid, "switchboard_name": "Reception"})
    );
    let (code, ext) = s
        .post(
            &format!("{C}/extensions"),
            &t,
            json!({"exten": "5001", "context": "from-extern"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ext}");
    let (code, body) = s
        .put(
            &format!("{C}/incalls/{}/extensions/{}", incall["id"], ext["id"]),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (_, sb) = s.get(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(
        sb["incalls"],
        json!([{"id": incall["id"], "extensions": [{"id": ext["id"], "exten": "5001", "context": "from-extern"}]}])
    );
    // A hangup fallback goes after the Stasis step.
    let (code, _) = s
        .put(
            &format!("{C}/switchboards/{uuid}/fallbacks"),
            &t,
            json!({"noanswer_destination": {"type": "hangup", "cause": "busy"}}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);

    let dir = tempfile::tempdir().expect("tmp");
    s.app().confd.render_to(dir.path()).await.expect("render");
    let dialplan = std::fs::read_to_string(dir.path().join("extensions.conf")).expect("extensions.conf");
    let stasis = format!("same => n,Stasis(accent,switchboard_queue,{uuid})\nsame => n,Busy()\nsame => n,Hangup()");
    assert!(dialplan.contains(&stasis), "{stasis} in\n{dialplan}");

    // An unknown switchboard or one of another tenant is refused.
    for bad in [json!(uuid::Uuid::new_v4()), json!("nope")] {
        let (code, err) = s
            .post(
                &format!("{C}/incalls"),
                &t,
                json!({"destination": {"type": "switchboard", "switchboard_uuid": bad}}),
            )
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
        assert!(err.to_string().contains("destination"), "{err}");
    }

    // Deleting the switchboard leaves the incall going nowhere.
    let (code, _) = s.delete(&format!("{C}/switchboards/{uuid}"), &t).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, incall) = s.get(&format!("{C}/incalls/{}", incall["id"]), &t).await;
    assert_eq!(incall["destination"], json!({"type": "none"}));
}

#[tokio::test]
async fn bad_bodies_tenants_and_acls() {
    let s = TestServer::start().await;
    let t = s.admin_token.clone();
    let master = s.master_tenant().await;
    let uuid = switchboard(&s, json!({"name": "a"})).await;

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(129)}), "name"),
        (json!({"name": 3}), "name"),
        (json!({"name": "a", "timeout": -1}), "timeout"),
        (json!({"name": "a", "timeout": "10"}), "timeout"),
        (
            json!({"name": "a", "queue_music_on_hold": "a,b"}),
            "queue_music_on_hold",
        ),
        (
            json!({"name": "a", "waiting_room_music_on_hold": "x;y"}),
            "waiting_room_music_on_hold",
        ),
        (json!({"name": "a", "color": "red"}), "color"),
        (json!([1]), "object"),
    ] {
        for (method, path) in [
            (Method::POST, format!("{C}/switchboards")),
            (Method::PUT, format!("{C}/switchboards/{uuid}")),
        ] {
            let (code, err) = s.call(method.clone(), &path, Some(&t), Some(body.clone())).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{method} {body}: {err}");
            assert!(err.to_string().contains(field), "{field} in {err}");
        }
    }
    let (code, err) = s.post(&format!("{C}/switchboards"), &t, json!({})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "name is required: {err}");

    let members = format!("{C}/switchboards/{uuid}/members/users");
    for body in [
        json!({}),
        json!({"users": [{"uuid": "nope"}]}),
        json!({"users": [{"id": 1}]}),
        json!({"users": {}}),
        json!("x"),
    ] {
        let (code, err) = s.put(&members, &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {err}");
    }
    let (code, err) = s
        .put(&members, &t, json!({"users": [{"uuid": uuid::Uuid::new_v4()}]}))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{err}");
    let fallbacks = format!("{C}/switchboards/{uuid}/fallbacks");
    for body in [
        json!({"noanswer_destination": {"type": "bogus"}}),
        json!({"noanswer_destination": {"type": "user", "user_id": 999}}),
        json!({"noanswer_destination": {"type": "voicemail", "voicemail_id": 999}}),
        json!({"noanswer_destination": {"type": "hangup", "cause": "normal", "timeout": 3}}),
        json!({"other": 1}),
        json!([]),
    ] {
        let (code, err) = s.put(&fallbacks, &t, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {err}");
    }

    // Another tenant: its users are not members, the switchboard is 404 to it.
    let (_, other) = s.post("/tenants", &t, json!({"name": "tenant b", "slug": "tb"})).await;
    let other = other["uuid"].as_str().expect("tenant").to_string();
    let h = [("Accent-Tenant", other.as_str())];
    let (code, stranger) = s
        .call_with_headers(
            Method::POST,
            &format!("{C}/users"),
            Some(&t),
            Some(json!({"firstname": "Eve"})),
            &h,
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{stranger}");
    let (code, err) = s
        .put(&members, &t, json!({"users": [{"uuid": stranger["uuid"]}]}))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{err}");
    let (code, err) = s
        .put(
            &fallbacks,
            &t,
            json!({"noanswer_destination": {"type": "user", "user_id": stranger["id"]}}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{err}");
    for (method, path) in [
        (Method::GET, format!("{C}/switchboards/{uuid}")),
        (Method::PUT, format!("{C}/switchboards/{uuid}")),
        (Method::DELETE, format!("{C}/switchboards/{uuid}")),
        (Method::PUT, members.clone()),
        (Method::GET, fallbacks.clone()),
        (Method::PUT, fallbacks.clone()),
    ] {
        let (code, _) = s
            .call_with_headers(method.clone(), &path, Some(&t), Some(json!({"users": []})), &h)
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, list) = s
        .call_with_headers(Method::GET, &format!("{C}/switchboards"), Some(&t), None, &h)
        .await;
    assert_eq!(list["total"], json!(0), "{list}");

    // Upstream's singular ACLs: `confd.switchboard.create`/`.{uuid}.delete`;
    // the plural spelling grants neither.
    let plural = user_with_acl(
        &s,
        &master,
        "plural",
        json!([
            "confd.switchboards.create",
            "confd.switchboards.*.delete",
            "confd.switchboards.read"
        ]),
    )
    .await;
    let (code, _) = s
        .post(&format!("{C}/switchboards"), &plural, json!({"name": "p"}))
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s.delete(&format!("{C}/switchboards/{uuid}"), &plural).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = s.get(&format!("{C}/switchboards"), &plural).await;
    assert_eq!(code, StatusCode::OK);
    let singular = user_with_acl(
        &s,
        &master,
        "singular",
        json!(["confd.switchboard.create", format!("confd.switchboard.{uuid}.delete")]),
    )
    .await;
    let (code, body) = s
        .post(&format!("{C}/switchboards"), &singular, json!({"name": "s"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    for (method, path) in [
        (Method::GET, format!("{C}/switchboards/{uuid}")),
        (Method::PUT, format!("{C}/switchboards/{uuid}")),
        (Method::PUT, members.clone()),
        (Method::GET, fallbacks.clone()),
        (Method::PUT, fallbacks.clone()),
    ] {
        let (code, _) = s.call(method.clone(), &path, Some(&singular), Some(json!({}))).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let (code, _) = s.delete(&format!("{C}/switchboards/{uuid}"), &singular).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
}
