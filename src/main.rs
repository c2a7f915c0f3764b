//! The `accentd` binary: command-line parsing and logging set-up only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::sync::Arc;

use accentd::api::config::DebugHook;
use accentd::config::{Config, LogFormat, ENV_VARS};

fn env_help() -> String {
    let mut s = String::from("Environment (overrides the config file):\n");
    for (name, what) in ENV_VARS {
        s.push_str(&format!("  {name:<48} {what}\n"));
    }
    s
}

#[derive(Parser)]
#[command(
    name = "accentd",
    version,
    about = "One process that replaces the Accent platform daemons next to Asterisk",
    after_help = env_help()
)]
struct Cli {
    /// TOML config file; every key has a default and an ACCENTD_* variable.
    #[arg(long, short, global = true, env = "ACCENTD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    #[command(after_help = env_help())]
    Serve,
    /// Check the configuration and print it (secrets omitted).
    CheckConfig,
}

/// Installs the subscriber; returns the hook PATCH /config uses to switch
/// debug logging on and off at run time.
fn init_logging(config: &Config) -> DebugHook {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let configured = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.level.clone());
    let filter = EnvFilter::try_new(&configured).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    match config.log.format {
        LogFormat::Json => registry.with(fmt::layer().json()).init(),
        LogFormat::Text => registry.with(fmt::layer()).init(),
    }
    Arc::new(move |debug: bool| {
        let directive = if debug { "debug" } else { configured.as_str() };
        if let Ok(f) = EnvFilter::try_new(directive) {
            let _ = handle.reload(f);
        }
    })
}

fn main() -> ExitCode {
    accentd::time::init_local_offset();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("accentd: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            match toml::to_string_pretty(&config) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("accentd: {e}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Command::Serve => {
            let hook = init_logging(&config);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("accentd: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(serve(config, hook)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("accentd: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

async fn serve(config: Config, hook: DebugHook) -> anyhow::Result<()> {
    let running = accentd::app::start_with(config, Some(hook)).await?;
    let shutdown = running.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    running.wait().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
