//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod answers;

use std::cell::Cell;
use std::path::Path;

use driftdb_core::{Row, Snapshot, Value};

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

/// Copy the directory tree `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// The rows of table `t` whose `field` (a dotted path) equals `value` as an index compares
/// them (numbers by value, so 1 and 1.0 match; null matches nothing), found by a scan: what
/// an indexed lookup must return.
pub fn scan_equal(snap: &Snapshot, field: &str, value: &Value) -> Vec<Row> {
    let num = |x: &Value| match x {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    snap.scan("t", |d| match field.split('.').try_fold(d, |d, name| d.get(name)) {
        Some(g) if num(g).is_some() => num(g) == num(value),
        Some(g) => g == value && *value != Value::Null,
        None => false,
    })
    .unwrap()
}
