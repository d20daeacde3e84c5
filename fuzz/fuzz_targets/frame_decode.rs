//! Fuzz the frame decoder and the file checkers recovery uses: any input must give
//! `Ok` or `Err`, never a panic, a hang or an unbounded allocation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = driftdb_core::storage::frame::decode(data, 1 << 20);
    let _ = driftdb_core::storage::check_file(Path::new("fuzz"), data);
});
