//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod answers;

use std::cell::Cell;

thread_local! {
    static ENCRYPTED: Cell<bool> = const { Cell::new(false) };
}

/// From now on, databases this thread's tests open through [`test_key`] are encrypted: the
/// encrypted variants of the crash tests run the same workloads this way.
pub fn encrypt_in_this_thread() {
    ENCRYPTED.with(|e| e.set(true));
}

/// The key for `Options::encryption_key` in tests that run both ways: `Some` after
/// [`encrypt_in_this_thread`], or for every test when `DRIFTDB_TEST_ENCRYPT` is set.
pub fn test_key() -> Option<driftdb_core::EncryptionKey> {
    let on = ENCRYPTED.with(Cell::get) || std::env::var_os("DRIFTDB_TEST_ENCRYPT").is_some();
    on.then(|| driftdb_core::EncryptionKey::from_hex(&"5e".repeat(32)).unwrap())
}

/// A tiny deterministic xorshift generator: the same seed gives the same run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
