//! What the hand-rolled benchmarks share (included with `#[path]`; not a bench target).

/// The value after `name` on the command line (`-- --rounds 5`), or `default`.
#[allow(dead_code)] // not every bench takes arguments
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A store file with accentd's schema (opened once through `Store`, which migrates it) and a
/// plain connection on it for the bulk work, as the store's writer configures its own.
#[allow(dead_code)] // not every bench stores anything
pub fn open_store(dir: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    let path = dir.join("bench.sqlite");
    drop(accentd::store::Store::open(&path)?);
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// A config for an accentd benchmarked in-process: a random loopback port, `dir` as data
/// dir, and an admin `bench` / `bench-password`.
#[allow(dead_code, clippy::field_reassign_with_default)] // not every bench starts accentd
pub fn bench_config(dir: &std::path::Path) -> accentd::config::Config {
    let mut config = accentd::config::Config::default();
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.data_dir = dir.to_path_buf();
    config.admin.user = Some("bench".into());
    config.admin.password = Some("bench-password".into());
    config
}
