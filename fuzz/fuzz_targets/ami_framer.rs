//! Fuzz target for the AMI framer: arbitrary bytes, split arbitrarily, with small and default
//! limits. See `../common/ami_check.rs` for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/ami_check.rs"]
mod ami_check;

fuzz_target!(|data: &[u8]| {
    ami_check::check(data);
});
