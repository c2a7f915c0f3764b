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
    /// Call logs: generate them from CELs (catch-up), or delete them.
    #[command(subcommand)]
    CallLogs(CallLogsCommand),
    /// Render the Asterisk configuration files from the confd store into a directory
    /// (checked first; only changed files are written).
    Render {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CallLogsCommand {
    /// Generate call logs from CELs: stored ones (`--days`, `--last`, default the last 20,000
    /// rows) or a file (stored first, so later runs can use them).
    Generate {
        /// The CELs of the last N days.
        #[arg(long, group = "source")]
        days: Option<u32>,
        /// The calls of the N most recent CEL rows.
        #[arg(long, group = "source")]
        last: Option<u32>,
        /// A CEL file: Asterisk's cel_custom CSV or JSON lines, or a pipe-delimited SQL dump
        /// (told apart by the first line; `.gz` accepted).
        #[arg(long, group = "source", value_name = "FILE")]
        cel_csv: Option<PathBuf>,
        /// An Asterisk cel_sqlite3_custom database.
        #[arg(long, group = "source", value_name = "FILE")]
        cel_sqlite: Option<PathBuf>,
        /// Generate and report, but write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete call logs and their CELs: all of them, or those older than N days.
    #[command(group(clap::ArgGroup::new("what").required(true)))]
    Delete {
        #[arg(long, group = "what")]
        all: bool,
        #[arg(long, group = "what")]
        days: Option<u32>,
    },
}

/// Upstream's default batch: the last 20,000 CELs.
const DEFAULT_LAST: u32 = 20_000;

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

/// The async runtime of a one-off command, or the exit code when it cannot start.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("accentd: cannot start the runtime: {e}");
        ExitCode::from(1)
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
        Command::CallLogs(cmd) => {
            let _ = init_logging(&config);
            match runtime() {
                Ok(runtime) => runtime.block_on(call_logs(config, cmd)),
                Err(code) => code,
            }
        }
        Command::Render { out } => {
            let _ = init_logging(&config);
            match runtime() {
                Ok(runtime) => runtime.block_on(render(config, out)),
                Err(code) => code,
            }
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

async fn render(config: Config, out: PathBuf) -> ExitCode {
    let app = match accentd::app::App::init(config, None).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("accentd: {e:#}");
            return ExitCode::from(1);
        }
    };
    match app.confd.render_to(&out).await {
        Ok(changed) => {
            for name in &changed {
                println!("wrote {}", out.join(name).display());
            }
            println!("{} file(s) changed", changed.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("accentd: {e}");
            ExitCode::from(2)
        }
    }
}

async fn call_logs(config: Config, cmd: CallLogsCommand) -> ExitCode {
    use accentd::calllog::batch::{self, Source};
    let app = match accentd::app::App::init(config, None).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("accentd: {e:#}");
            return ExitCode::from(1);
        }
    };
    match cmd {
        CallLogsCommand::Generate {
            days,
            last,
            cel_csv,
            cel_sqlite,
            dry_run,
        } => {
            let source = match (days, last, cel_csv, cel_sqlite) {
                (Some(d), ..) => Source::Days(d),
                (_, Some(n), ..) => Source::Last(n),
                (_, _, Some(f), _) => Source::CelFile(f),
                (_, _, _, Some(f)) => Source::CelSqlite(f),
                _ => Source::Last(DEFAULT_LAST),
            };
            match batch::generate(&app.calllog, source, dry_run).await {
                Ok(summary) => {
                    print!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("accentd: {e}");
                    ExitCode::from(2)
                }
            }
        }
        CallLogsCommand::Delete { all, days } => match batch::delete(&app.calllog, if all { None } else { days }).await
        {
            Ok(d) => {
                println!(
                    "deleted {} call logs, {} CEL rows and {} recording files",
                    d.call_logs, d.cels, d.recordings
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("accentd: {e}");
                ExitCode::from(1)
            }
        },
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
