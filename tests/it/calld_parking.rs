//! calld parking against the fake AMI on scenario 21 (2001 calls 2002, answered): the lots
//! confd provisions with the calls res_parking lists (`ParkedCalls`), parking a call
//! (`Park`, confirmed by `ParkedCall`) for the admin and for the user (their peer), the
//! call's `parked`, the parking events from res_parking's, and the refusals.

use crate::calld_calls::{as_tenant, bridged_call, other_tenant, pairs, sent, ALICE_CALL, BOB_CALL, C, CALLD};
use crate::common::wait_for;
use accentd::ami::frame::AmiMessage;
use accentd::fake_asterisk::ami::FakeAmi;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ALICE_CHAN: &str = "PJSIP/2001-00000000";
const BOB_CHAN: &str = "PJSIP/2002-00000001";

/// A lot (slots `start`-`end`) parking through extension 2500 of `default`.
async fn lot(s: &crate::common::TestServer, start: &str, end: &str, exten: &str) -> i64 {
    let (code, lot) = s
        .post(
            &format!("{C}/parkinglots"),
            &s.admin_token,
            json!({"name": "Lot", "slots_start": start, "slots_end": end, "timeout": 45}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{lot}");
    let id = lot["id"].as_i64().expect("lot id");
    let (code, ext) = s
        .post(
            &format!("{C}/extensions"),
            &s.admin_token,
            json!({"exten": exten, "context": "default"}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ext}");
    let (code, _) = s
        .put(
            &format!("{C}/parkinglots/{id}/extensions/{}", ext["id"]),
            &s.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    id
}

/// res_parking's event about Bob's leg parked in `lot` at `slot`, as the AMI docs describe it
/// (the parkee's channel snapshot prefixed `Parkee`), with `extra` headers.
fn parking_event(event: &str, lot: i64, slot: &str, timeout: &str, extra: &[(&str, &str)]) -> String {
    let mut text = format!(
        "Event: {event}\r\nPrivilege: call,all\r\nParkeeChannel: {BOB_CHAN}\r\nParkeeChannelState: 6\r\n\
         ParkeeChannelStateDesc: Up\r\nParkeeCallerIDNum: 2002\r\nParkeeCallerIDName: Bob\r\n\
         ParkeeConnectedLineNum: 2001\r\nParkeeConnectedLineName: <unknown>\r\nParkeeLanguage: en\r\n\
         ParkeeAccountCode: \r\nParkeeContext: default\r\nParkeeExten: 2002\r\nParkeePriority: 1\r\n\
         ParkeeUniqueid: {BOB_CALL}\r\nParkeeLinkedid: {ALICE_CALL}\r\nParkerDialString: PJSIP/2001\r\n\
         Parkinglot: parkinglot-{lot}\r\nParkingSpace: {slot}\r\nParkingTimeout: {timeout}\r\nParkingDuration: 0\r\n"
    );
    for (k, v) in extra {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// The `ParkedCalls` answer: the list start, one `ParkedCall` per `(lot, slot)`, the end, as
/// scenario 14 recorded the list (there empty).
fn parked_calls_reply(calls: &[(i64, &str)]) -> Vec<AmiMessage> {
    let mut out = vec![AmiMessage::new()
        .with("Response", "Success")
        .with("EventList", "start")
        .with("Message", "Parked calls will follow")];
    for (lot, slot) in calls {
        out.push(
            AmiMessage::new()
                .with("Event", "ParkedCall")
                .with("ParkeeChannel", BOB_CHAN)
                .with("ParkeeCallerIDNum", "2002")
                .with("ParkeeCallerIDName", "Bob")
                .with("ParkeeUniqueid", BOB_CALL)
                .with("ParkeeLinkedid", ALICE_CALL)
                .with("ParkerDialString", "PJSIP/2001")
                .with("Parkinglot", format!("parkinglot-{lot}"))
                .with("ParkingSpace", *slot)
                .with("ParkingTimeout", "40")
                .with("ParkingDuration", "5"),
        );
    }
    let n = calls.len().to_string();
    out.push(
        AmiMessage::new()
            .with("Event", "ParkedCallsComplete")
            .with("EventList", "Complete")
            .with("ListItems", n.as_str())
            .with("Total", n.as_str()),
    );
    out
}

/// Every event published so far, as the bus sends it plus its routing key.
fn drain_all(rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<accentd::bus::Event>>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        let mut v = e.to_json();
        v["routing_key"] = json!(e.routing_key);
        out.push(v);
    }
    out
}

/// Sends a park request in the background, answers it with res_parking's event once the
/// fake AMI got the `Park` action, and returns the response.
async fn park_confirmed(
    s: &crate::common::TestServer,
    ami: &FakeAmi,
    path: String,
    token: &str,
    body: Value,
    event: String,
) -> (StatusCode, Value) {
    let before = sent(ami, "Park").len();
    let (client, url, token) = (s.client.clone(), format!("{}{path}", s.base), token.to_string());
    let request = tokio::spawn(async move {
        let resp = client
            .put(url)
            .header("X-Auth-Token", token)
            .json(&body)
            .send()
            .await
            .expect("send");
        let code = resp.status();
        (code, resp.json::<Value>().await.unwrap_or(Value::Null))
    });
    wait_for("Park sent", || sent(ami, "Park").len() > before).await;
    ami.send_raw(event.as_bytes());
    request.await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lots_list_their_parked_calls_and_calls_are_parked_over_ami() {
    let (ami, _ari, s, alice, _bob) = bridged_call().await;
    let t = s.admin_token.clone();
    let lot_id = lot(&s, "701", "710", "2500").await;
    let empty = lot(&s, "801", "801", "2600").await;
    let mut rx = s.app().bus.subscribe();

    // The lots with what res_parking lists.
    ami.respond_with("ParkedCalls", Some(parked_calls_reply(&[(lot_id, "703")])));
    let (code, list) = s.get(&format!("{CALLD}/parkinglots"), &t).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    let one = &items[0];
    assert_eq!(
        (
            one["id"].clone(),
            one["name"].clone(),
            one["slots_start"].clone(),
            one["slots_end"].clone()
        ),
        (json!(lot_id), json!("Lot"), json!("701"), json!("710"))
    );
    assert_eq!(
        (one["slots_total"].clone(), one["slots_remaining"].clone()),
        (json!(10), json!(9))
    );
    assert_eq!(one["default_timeout"], 45);
    let call = &one["calls"][0];
    assert_eq!(call["call_id"], BOB_CALL);
    assert_eq!(call["conversation_id"], ALICE_CALL);
    assert_eq!(
        (call["caller_id_name"].clone(), call["caller_id_num"].clone()),
        (json!("Bob"), json!("2002"))
    );
    assert_eq!(call["slot"], "703");
    // The parker from its dial string: Alice's live channel.
    assert_eq!(call["parker_caller_id_num"], "2001");
    assert!(
        call["parked_at"].is_string() && call["timeout_at"].is_string(),
        "{call}"
    );
    assert_eq!(items[1]["calls"], json!([]));
    assert_eq!(items[1]["id"], empty);
    assert_eq!(sent(&ami, "ParkedCalls").last(), Some(&Vec::new()), "every lot at once");

    let (code, one) = s.get(&format!("{CALLD}/parkinglots/{lot_id}"), &t).await;
    assert_eq!(code, StatusCode::OK, "{one}");
    assert_eq!(one["calls"][0]["slot"], "703");
    assert_eq!(
        sent(&ami, "ParkedCalls").last(),
        Some(&pairs(&[("ParkingLot", &format!("parkinglot-{lot_id}"))]))
    );
    // A lot res_parking does not know (no extension yet) has nothing parked.
    ami.respond_with(
        "ParkedCalls",
        Some(vec![AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "Requested parking lot could not be found.")]),
    );
    let (code, one) = s.get(&format!("{CALLD}/parkinglots/{empty}"), &t).await;
    assert_eq!((code, one["calls"].clone()), (StatusCode::OK, json!([])), "{one}");

    // Parking Bob's leg: Park with the lot, slot, timeout in ms, Alice called back on timeout.
    ami.respond_with("ParkedCalls", Some(parked_calls_reply(&[])));
    ami.respond_with("Park", Some(vec![AmiMessage::new().with("Response", "Success")]));
    let (code, parked) = park_confirmed(
        &s,
        &ami,
        format!("{CALLD}/calls/{BOB_CALL}/park"),
        &t,
        json!({"parking_id": lot_id, "preferred_slot": "705", "timeout": 30}),
        parking_event("ParkedCall", lot_id, "705", "30", &[]),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{parked}");
    assert_eq!(parked["slot"], "705");
    assert!(parked["timeout_at"].is_string(), "{parked}");
    assert_eq!(
        sent(&ami, "Park").last(),
        Some(&pairs(&[
            ("Channel", BOB_CHAN),
            ("Parkinglot", &format!("parkinglot-{lot_id}")),
            ("TimeoutChannel", ALICE_CHAN),
            ("ParkingSpace", "705"),
            ("Timeout", "30000"),
        ]))
    );
    let mut events = Vec::new();
    wait_for("call_parked", || {
        events.extend(drain_all(&mut rx));
        events.iter().any(|e| e["name"] == "call_parked")
    })
    .await;
    let ev = events
        .iter()
        .find(|e| e["name"] == "call_parked")
        .expect("call_parked")
        .clone();
    assert_eq!(ev["data"]["parking_id"], lot_id);
    assert_eq!(ev["data"]["call_id"], BOB_CALL);
    assert_eq!(ev["data"]["slot"], "705");
    assert_eq!(ev["data"]["parker_caller_id_num"], "2001");
    assert_eq!(ev["required_acl"], format!("events.parkings.{lot_id}.calls.updated"));
    assert_eq!(ev["routing_key"], format!("parkings.{lot_id}.calls.updated"));
    assert_eq!(ev["tenant_uuid"], alice["tenant_uuid"]);
    // The call shows it, and its update says so.
    let (_, call) = s.get(&format!("{CALLD}/calls/{BOB_CALL}"), &t).await;
    assert_eq!(call["parked"], true, "{call}");
    wait_for("parked call_updated", || {
        events.extend(drain_all(&mut rx));
        events
            .iter()
            .any(|e| e["name"] == "call_updated" && e["data"]["call_id"] == BOB_CALL && e["data"]["parked"] == true)
    })
    .await;

    // Retrieved, then parked again and timed out, then parked again and hung up.
    for (event, name) in [
        ("UnParkedCall", "call_unparked"),
        ("ParkedCall", "call_parked"),
        ("ParkedCallTimeOut", "parked_call_timed_out"),
        ("ParkedCall", "call_parked"),
        ("ParkedCallGiveUp", "parked_call_hungup"),
    ] {
        let extra: &[(&str, &str)] = if event == "UnParkedCall" {
            &[
                ("RetrieverChannel", ALICE_CHAN),
                ("RetrieverCallerIDNum", "2001"),
                ("RetrieverUniqueid", ALICE_CALL),
            ]
        } else {
            &[]
        };
        events.clear();
        ami.send_raw(parking_event(event, lot_id, "705", "30", extra).as_bytes());
        wait_for(name, || {
            events.extend(drain_all(&mut rx));
            events.iter().any(|e| e["name"] == name)
        })
        .await;
        let ev = events.iter().find(|e| e["name"] == name).expect("event");
        assert_eq!(ev["data"]["call_id"], BOB_CALL, "{ev}");
        assert_eq!(ev["routing_key"], format!("parkings.{lot_id}.calls.updated"));
        if name == "call_unparked" {
            assert_eq!(ev["data"]["retriever_call_id"], ALICE_CALL);
            let (_, call) = s.get(&format!("{CALLD}/calls/{BOB_CALL}"), &t).await;
            assert_eq!(call["parked"], false, "{call}");
        }
    }

    // The user parks whom they talk to: Bob's leg again, Alice's channel called back.
    let me = s.login("alice", "pw-alice-123").await;
    let (code, parked) = park_confirmed(
        &s,
        &ami,
        format!("{CALLD}/users/me/calls/{ALICE_CALL}/park"),
        &me,
        json!({"parking_id": lot_id}),
        parking_event("ParkedCall", lot_id, "701", "0", &[]),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{parked}");
    assert_eq!(parked, json!({"slot": "701", "timeout_at": null}));
    assert_eq!(
        sent(&ami, "Park").last(),
        Some(&pairs(&[
            ("Channel", BOB_CHAN),
            ("Parkinglot", &format!("parkinglot-{lot_id}")),
            ("TimeoutChannel", ALICE_CHAN),
        ]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parks_are_refused_with_nothing_sent() {
    let (ami, _ari, s, _alice, _bob) = bridged_call().await;
    let t = s.admin_token.clone();
    let lot_id = lot(&s, "701", "701", "2500").await;
    ami.respond_with("ParkedCalls", Some(parked_calls_reply(&[])));
    let park = |call: &str| format!("{CALLD}/calls/{call}/park");

    for (call, body, status, needle) in [
        (BOB_CALL, json!({}), StatusCode::BAD_REQUEST, "parking_id"),
        (
            BOB_CALL,
            json!({"parking_id": "1"}),
            StatusCode::BAD_REQUEST,
            "parking_id",
        ),
        (
            BOB_CALL,
            json!({"parking_id": 0}),
            StatusCode::BAD_REQUEST,
            "parking_id",
        ),
        (
            BOB_CALL,
            json!({"parking_id": lot_id, "timeout": -1}),
            StatusCode::BAD_REQUEST,
            "timeout",
        ),
        (
            BOB_CALL,
            json!({"parking_id": lot_id, "bogus": 1}),
            StatusCode::BAD_REQUEST,
            "bogus",
        ),
        (BOB_CALL, json!([]), StatusCode::BAD_REQUEST, "invalid-data"),
        (
            BOB_CALL,
            json!({"parking_id": lot_id, "preferred_slot": "702"}),
            StatusCode::BAD_REQUEST,
            "preferred_slot",
        ),
        (
            BOB_CALL,
            json!({"parking_id": 999}),
            StatusCode::NOT_FOUND,
            "no-such-parking",
        ),
        (
            "1.999",
            json!({"parking_id": lot_id}),
            StatusCode::NOT_FOUND,
            "no-such-call",
        ),
    ] {
        let (code, resp) = s.put(&park(call), &t, body.clone()).await;
        assert_eq!(code, status, "{body}: {resp}");
        assert!(resp.to_string().contains(needle), "{needle} in {resp}");
    }

    // Full: its one slot is taken.
    ami.respond_with("ParkedCalls", Some(parked_calls_reply(&[(lot_id, "701")])));
    let (code, resp) = s.put(&park(BOB_CALL), &t, json!({"parking_id": lot_id})).await;
    assert_eq!(
        (code, resp["error_id"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("parking-full"))
    );
    ami.respond_with("ParkedCalls", Some(parked_calls_reply(&[])));

    // Asterisk refusing the park: 503, the reason kept.
    ami.respond_with(
        "Park",
        Some(vec![AmiMessage::new()
            .with("Response", "Error")
            .with("Message", "Park action failed")]),
    );
    let (code, resp) = s.put(&park(BOB_CALL), &t, json!({"parking_id": lot_id})).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{resp}");
    assert_eq!(resp["details"]["reason"], "Park action failed");
    assert_eq!(sent(&ami, "Park").len(), 1, "only the refused one was sent");

    // Another tenant sees neither the call nor the lot.
    let other = other_tenant(&s).await;
    let (code, resp) = as_tenant(&s, &other, Method::GET, &format!("parkinglots/{lot_id}")).await;
    assert_eq!(
        (code, resp["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-parking"))
    );
    let (code, list) = as_tenant(&s, &other, Method::GET, "parkinglots").await;
    assert_eq!((code, list["items"].clone()), (StatusCode::OK, json!([])));
    let (code, _) = as_tenant(&s, &other, Method::GET, "parkinglots/nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // ACLs: the default user policy reads parkings (`calld.parkings.#`), of its tenant only;
    // parking another's call needs the admin ACL.
    s.create_user_sql(&other, "mallory", "pw-mallory").await;
    let tok = s.login("mallory", "pw-mallory").await;
    let (code, list) = s.get(&format!("{CALLD}/parkinglots"), &tok).await;
    assert_eq!((code, list["items"].clone()), (StatusCode::OK, json!([])));
    let (code, _) = s.get(&format!("{CALLD}/parkinglots/{lot_id}"), &tok).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = s.put(&park(BOB_CALL), &tok, json!({"parking_id": lot_id})).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // A user parking another user's call: unknown to them.
    let bob = s.login("bob", "pw-bob-123").await;
    let (code, resp) = s
        .put(
            &format!("{CALLD}/users/me/calls/{ALICE_CALL}/park"),
            &bob,
            json!({"parking_id": lot_id}),
        )
        .await;
    assert_eq!(
        (code, resp["error_id"].clone()),
        (StatusCode::NOT_FOUND, json!("no-such-call"))
    );

    // AMI down: 503.
    ami.drop_connections();
    ami.pause_accept().await;
    wait_for("AMI down", || !s.app().ami.as_ref().is_some_and(|a| a.is_connected())).await;
    let (code, resp) = s.get(&format!("{CALLD}/parkinglots/{lot_id}"), &t).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{resp}");
    assert_eq!(resp["error_id"], "asterisk-ami-unreachable");
}
