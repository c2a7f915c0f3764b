//! What the hand-rolled benchmarks share (included with `#[path]`; not a bench target).

/// The value after `name` on the command line (`-- --rounds 5`), or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
