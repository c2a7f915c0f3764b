//! AMI parsing throughput on the recorded burst of 200 calls (scenario 15,
//! ~12 MB of real Asterisk 22 AMI traffic), next to a memchr scan for the
//! message separator over the same bytes in the same run. Run with:
//!
//!     cargo bench --bench ami_parse [-- --rounds 5 --chunk 65536]
//!
//! Single-threaded: the framer is fed `chunk`-byte slices as a socket would.

use std::io::Read;
use std::time::Instant;

use accentd::ami::{AmiFramer, Frame, FrameLimits};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn corpus() -> anyhow::Result<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/asterisk-fixtures/15-burst-200-calls/ami.raw.gz"
    );
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut out)?;
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let rounds = arg("--rounds", 5);
    let chunk = arg("--chunk", 65536).max(1);
    let bytes = corpus()?;
    let mb = bytes.len() as f64 / 1e6;

    // Baseline: find every "\r\n\r\n" separator, nothing else.
    let mut best_scan = f64::MAX;
    let mut separators = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        separators = memchr::memmem::find_iter(&bytes, b"\r\n\r\n").count();
        best_scan = best_scan.min(t.elapsed().as_secs_f64());
    }

    // The framer: typed messages with ordered headers.
    let mut best_parse = f64::MAX;
    let (mut messages, mut events) = (0usize, 0usize);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut framer = AmiFramer::new(FrameLimits::default());
        let (mut m, mut e) = (0usize, 0usize);
        for piece in bytes.chunks(chunk) {
            framer.push(piece);
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(msg))) => {
                        m += 1;
                        if msg.event().is_some() {
                            e += 1;
                        }
                    }
                    Ok(Some(Frame::Greeting(_))) => {}
                    Ok(None) => break,
                    Err(err) => anyhow::bail!("framing error: {err}"),
                }
            }
        }
        best_parse = best_parse.min(t.elapsed().as_secs_f64());
        messages = m;
        events = e;
    }

    println!("AMI parse benchmark: {mb:.1} MB, {messages} messages ({events} events), {separators} separators");
    println!("settings: best of {rounds} rounds, {chunk}-byte reads, one thread");
    println!("{:<34} {:>14} {:>10} {:>8}", "", "messages/s", "MB/s", "ratio");
    println!(
        "{:<34} {:>14.0} {:>10.1} {:>8.3}",
        "memchr separator scan (baseline)",
        separators as f64 / best_scan,
        mb / best_scan,
        1.0
    );
    println!(
        "{:<34} {:>14.0} {:>10.1} {:>8.3}",
        "AmiFramer (typed messages)",
        messages as f64 / best_parse,
        mb / best_parse,
        best_scan / best_parse
    );
    println!("events/s through the framer: {:.0}", events as f64 / best_parse);
    Ok(())
}
