//! Runs the fake Asterisk ARI server on a recorded scenario, for demos and
//! manual testing of accentd:
//!
//! ```text
//! cargo run --example fake_ari -- 05            # replays on websocket connect
//! ACCENTD_ARI_URL=<printed url> ACCENTD_ARI_USER=accent ACCENTD_ARI_PASSWORD=accent cargo run
//! ```

use accentd::fake_asterisk::ari::{FakeAri, FakeAriOptions};
use accentd::fake_asterisk::scenario::Scenario;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let name = std::env::args().nth(1).unwrap_or_else(|| "05".into());
    let scenario = Scenario::load(&name)?;
    let options = FakeAriOptions::default();
    let fake = FakeAri::start(&scenario, options.clone()).await?;
    println!(
        "fake ARI for scenario {} on {} (user {:?}, {} events); Ctrl-C to stop",
        scenario.name,
        fake.url(),
        options.user,
        fake.events().len()
    );
    tokio::signal::ctrl_c().await?;
    fake.stop().await;
    Ok(())
}
