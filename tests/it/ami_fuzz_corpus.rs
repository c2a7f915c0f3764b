//! Replays the committed fuzz corpus (`fuzz/corpus/ami_framer/`) through the framer with the
//! fuzz target's own checks: no panic, same frames whole / chunked / byte by byte, every byte
//! accounted for. Runs in every `cargo test`, no nightly needed.

#[path = "../../fuzz/common/ami_check.rs"]
mod ami_check;

use std::path::Path;

#[test]
fn fuzz_corpus_never_panics_and_frames_consistently() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ami_framer");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz corpus directory")
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus too small: {}", files.len());
    for path in files {
        let data = std::fs::read(&path).expect("corpus file");
        let result = std::panic::catch_unwind(|| ami_check::check(&data));
        assert!(result.is_ok(), "corpus file {} failed", path.display());
    }
}

#[test]
fn check_also_holds_on_every_prefix_of_the_seeds() {
    // Cut points exercise the truncated-at-EOF path of every seed.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ami_framer");
    for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
        let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
        for cut in (0..data.len()).step_by(7) {
            ami_check::check(&data[..cut]);
        }
    }
}
