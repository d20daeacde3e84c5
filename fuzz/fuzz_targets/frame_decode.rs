//! Fuzz the frame decoder, the file checkers recovery uses and the open's quick payload
//! decoders (on the input as a payload, and on the payload of the frame it holds): any input
//! must give `Ok` or `Err`, never a panic, a hang or an unbounded allocation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = driftdb_core::storage::frame::decode(data, 1 << 20) {
        driftdb_core::storage::check_payload(frame.payload);
    }
    let _ = driftdb_core::storage::check_file(Path::new("fuzz"), data);
    driftdb_core::storage::check_payload(data);
});
