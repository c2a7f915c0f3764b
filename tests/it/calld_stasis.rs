//! accentd's own Stasis application: a channel that enters it for a purpose no
//! feature claims goes back to the dialplan instead of waiting in silence.

use crate::common::{wait_for, TestServer};
use accentd::fake_asterisk::ari::{FakeAri, FakeAriOptions, Replay};
use accentd::fake_asterisk::Scenario;

/// Scenario 04's channel in Stasis.
const CALL: &str = "1795870763.8";

#[tokio::test]
async fn a_channel_entering_for_an_unknown_purpose_continues_in_the_dialplan() {
    let scenario = Scenario::load("04").expect("scenario");
    let options = FakeAriOptions {
        replay: Replay::Manual,
        ..FakeAriOptions::default()
    };
    let ari = FakeAri::start(&scenario, options).await.expect("fake ARI");
    let url = ari.url();
    let s = TestServer::start_with(|c| {
        c.ari.url = url;
        c.ari.user = "accent".into();
        c.ari.password = "accent".into();
        c.ari.app = "accent".into();
    })
    .await;
    let app = s.app();
    wait_for("ARI up", || app.ari.as_ref().is_some_and(|h| h.events.is_connected())).await;

    let start = ari
        .events()
        .into_iter()
        .find(|l| l.contains("\"type\":\"StasisStart\"") && l.contains(CALL))
        .expect("recorded StasisStart");
    // Another application's channel is none of accentd's business.
    ari.inject(&start.replace("\"application\":\"accent\"", "\"application\":\"someone-else\""));
    // The recording's own arguments (`s04,outbound-playback`) name no calld feature.
    ari.inject(&start);
    let path = format!("/ari/channels/{CALL}/continue");
    wait_for("continue", || {
        ari.requests()
            .iter()
            .any(|r| r.method == "POST" && r.uri.starts_with(&path))
    })
    .await;
    let continues = ari
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.uri.starts_with(&path))
        .count();
    assert_eq!(continues, 1, "only the channel delivered to accentd's application");
}
