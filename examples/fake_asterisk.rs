//! Runs a fake Asterisk, AMI and ARI together, replaying one recorded scenario of
//! `tests/asterisk-fixtures/`, so accentd can be run against "an Asterisk" without one:
//!
//! ```text
//! cargo run --example fake_asterisk -- 01                      # replays at the first login/websocket
//! cargo run --example fake_asterisk -- 14 --replay manual      # step with commands on stdin
//! cargo run --example fake_asterisk -- 01 --drop-after-secs 20 # one reconnection to watch
//! ```
//!
//! It prints the `ACCENTD_AMI_*` / `ACCENTD_ARI_*` lines to give accentd (in another
//! terminal), then runs until Ctrl-C. Commands read from stdin (any mode): `ami [N]` and
//! `ari [N]` replay the next N events (default 1) of that side, `all` replays the rest of
//! both, `drop` drops every connection now, `status` shows the replay positions. The AMI and
//! ARI recordings are separate timelines: nothing keeps them in step.

use std::time::Duration;

use accentd::fake_asterisk::ami::{FakeAmi, FakeAmiOptions, Replay as AmiReplay};
use accentd::fake_asterisk::ari::{DropMode, FakeAri, FakeAriOptions, Replay as AriReplay};
use accentd::fake_asterisk::Scenario;
use anyhow::Context;
use clap::{Parser, ValueEnum};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "A fake Asterisk (AMI + ARI) replaying a recorded scenario")]
struct Cli {
    /// Scenario folder under tests/asterisk-fixtures, or its number ("01", "14", "05" …).
    #[arg(default_value = "01")]
    scenario: String,
    /// When the recorded events are sent: all at once at the first AMI login / ARI
    /// websocket, or only on the `ami N`, `ari N`, `all` commands read from stdin.
    #[arg(long, value_enum, default_value_t = ReplayMode::AfterLogin)]
    replay: ReplayMode,
    /// Drop every AMI and ARI connection once, N seconds after start (to watch accentd
    /// reconnect and resync).
    #[arg(long, value_name = "N")]
    drop_after_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReplayMode {
    AfterLogin,
    Manual,
}

/// Both fakes of one scenario.
struct Fakes {
    scenario: String,
    ami: FakeAmi,
    ari: FakeAri,
    ami_user: String,
    ami_secret: String,
    ari_user: String,
    ari_password: String,
}

impl Fakes {
    async fn start(name: &str, replay: ReplayMode) -> anyhow::Result<Fakes> {
        let scenario = Scenario::load(name)?;
        let ami_options = FakeAmiOptions {
            replay: match replay {
                ReplayMode::AfterLogin => AmiReplay::AfterLogin,
                ReplayMode::Manual => AmiReplay::Manual,
            },
            ..FakeAmiOptions::default()
        };
        let ari_options = FakeAriOptions {
            replay: match replay {
                ReplayMode::AfterLogin => AriReplay::OnConnect,
                ReplayMode::Manual => AriReplay::Manual,
            },
            ..FakeAriOptions::default()
        };
        let ami = FakeAmi::start(&scenario, ami_options.clone())
            .await
            .with_context(|| format!("fake AMI for {}", scenario.name))?;
        let ari = FakeAri::start(&scenario, ari_options.clone())
            .await
            .with_context(|| format!("fake ARI for {}", scenario.name))?;
        Ok(Fakes {
            scenario: scenario.name,
            ami,
            ari,
            ami_user: ami_options.user,
            ami_secret: ami_options.secret,
            ari_user: ari_options.user,
            ari_password: ari_options.password,
        })
    }

    /// The environment accentd needs to use these fakes (names from `config::ENV_VARS`).
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ACCENTD_AMI_ADDR", self.ami.addr().to_string()),
            ("ACCENTD_AMI_USER", self.ami_user.clone()),
            ("ACCENTD_AMI_PASSWORD", self.ami_secret.clone()),
            ("ACCENTD_ARI_URL", self.ari.url()),
            ("ACCENTD_ARI_USER", self.ari_user.clone()),
            ("ACCENTD_ARI_PASSWORD", self.ari_password.clone()),
        ]
    }

    /// Drops every AMI connection and ARI websocket (clean close, as a restarting Asterisk).
    fn drop_all(&self) -> usize {
        let ami = self.ami.drop_connections();
        let ari = self.ari.connections();
        self.ari.drop_connections(DropMode::Close);
        ami + ari
    }

    fn status(&self) -> String {
        format!(
            "AMI {}/{} events replayed, {} connection(s); ARI {}/{} events released, {} websocket(s)",
            self.ami.replayed(),
            self.ami.recording().timeline().len(),
            self.ami.open_connections(),
            self.ari.position(),
            self.ari.events().len(),
            self.ari.connections(),
        )
    }

    /// Runs one stdin command; returns what to print.
    fn command(&self, line: &str) -> String {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("status");
        let count = words.next().map(str::parse::<usize>);
        let n = match count {
            None => 1,
            Some(Ok(n)) => n,
            Some(Err(_)) => return format!("not a count: {line:?}"),
        };
        match verb {
            "ami" => format!("{} AMI event(s) replayed; {}", self.ami.replay_next(n), self.status()),
            "ari" => format!("{} ARI event(s) released; {}", self.ari.replay_next(n), self.status()),
            "all" => {
                let (ami, ari) = (self.ami.replay_all(), self.ari.replay_all());
                format!("{ami} AMI and {ari} ARI event(s) sent; {}", self.status())
            }
            "drop" => format!("{} connection(s) dropped", self.drop_all()),
            "status" => self.status(),
            _ => "commands: ami [N], ari [N], all, drop, status".to_owned(),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let cli = Cli::parse();
    let fakes = Fakes::start(&cli.scenario, cli.replay).await?;
    println!(
        "fake Asterisk for scenario {} ({:?} replay); give accentd:",
        fakes.scenario, cli.replay
    );
    for (name, value) in fakes.env() {
        println!("export {name}={value}");
    }
    println!("{}", fakes.status());
    println!("commands on stdin: ami [N], ari [N], all, drop, status; Ctrl-C to stop");
    let dropper = cli.drop_after_secs.map(Duration::from_secs).map(tokio::time::sleep);
    run(&fakes, dropper).await?;
    fakes.ari.stop().await;
    Ok(())
}

/// Serves stdin commands and the one-time drop until Ctrl-C.
async fn run(fakes: &Fakes, dropper: Option<tokio::time::Sleep>) -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let dropper = async {
        match dropper {
            Some(sleep) => sleep.await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(dropper);
    let mut dropped = false;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => return r.context("waiting for Ctrl-C"),
            () = &mut dropper, if !dropped => {
                dropped = true;
                println!("--drop-after-secs: {} connection(s) dropped", fakes.drop_all());
            }
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => println!("{}", fakes.command(&line)),
                // No terminal (stdin closed or unreadable): keep serving until Ctrl-C.
                Ok(None) | Err(_) => stdin_open = false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn cli_is_well_formed_and_has_the_documented_defaults() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["fake_asterisk"]).expect("defaults");
        assert_eq!(
            (cli.scenario.as_str(), cli.replay, cli.drop_after_secs),
            ("01", ReplayMode::AfterLogin, None)
        );
        let cli = Cli::try_parse_from(["fake_asterisk", "14", "--replay", "manual", "--drop-after-secs", "5"])
            .expect("options");
        assert_eq!(
            (cli.scenario.as_str(), cli.replay, cli.drop_after_secs),
            ("14", ReplayMode::Manual, Some(5))
        );
        assert!(Cli::try_parse_from(["fake_asterisk", "--replay", "loop"]).is_err());
    }

    #[tokio::test]
    async fn prints_accentd_variables_and_drops_connections() {
        let fakes = Fakes::start("01", ReplayMode::Manual).await.expect("fakes");
        let env = fakes.env();
        for (name, _) in &env {
            assert!(
                accentd::config::ENV_VARS.iter().any(|(known, _)| known == name),
                "{name} is not an accentd variable"
            );
        }
        let addr = &env[0].1;
        let mut ami = tokio::net::TcpStream::connect(addr.as_str()).await.expect("connect");
        let mut buf = [0u8; 64];
        let n = ami.read(&mut buf).await.expect("greeting");
        assert!(buf[..n].starts_with(b"Asterisk Call Manager/"));
        ami.write_all(b"Action: Login\r\nUsername: accent\r\nSecret: accent\r\n\r\n")
            .await
            .expect("login");
        tokio::time::timeout(Duration::from_secs(3), async {
            // Logged in: the login was read, so closing cannot reset the connection.
            while fakes.ami.logins() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("logged in");
        assert!(fakes.command("ami 3").starts_with("3 AMI event(s) replayed"));
        assert!(fakes.command("bogus").starts_with("commands:"));
        assert!(fakes.command("ami x").starts_with("not a count"));
        assert_eq!(fakes.drop_all(), 1);
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), ami.read_to_end(&mut rest))
            .await
            .expect("closed in time")
            .expect("clean close");
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.contains("Authentication accepted") && rest.contains("Event: Newchannel"),
            "{rest}"
        );
    }
}
