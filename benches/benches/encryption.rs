//! Encryption at rest: what sealing costs on the write path and opening costs on the read
//! path, each beside the same work on a plaintext database.
//!
//! Run with `cargo bench -p driftdb-benches --bench encryption`. Databases are created under
//! `DRIFTDB_BENCH_DIR` if set, else under Cargo's `target/tmp`; never use a tmpfs.
//!
//! Groups (each with a `plain` and an `encrypted` member):
//! - `commit_1`: one transaction of one ~150-byte insert, committed and fsynced (one thread);
//! - `bulk_5000`: one transaction of 5,000 inserts (the WAL batch is sealed as one record,
//!   segment bytes in 1 MiB records); elements/s is rows per second;
//! - `open_50k`: `Database::open` of a closed database of 50,000 events: every segment is read,
//!   opened (encrypted) and checked, and the state rebuilt; elements/s is events per second.
//! - `scan_50k`: a full scan of the open table (in memory: encryption costs nothing here;
//!   measured to show it).
//!
//! Under `cargo test` (Criterion's test mode) the sizes are tiny and each benchmark runs once.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use driftdb_benches::run;
use driftdb_core::{AsOf, Database, EncryptionKey, Options, TableSchema, Value};
use tempfile::TempDir;

const TABLE: &str = "docs";

fn fresh_dir() -> TempDir {
    run::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "driftdb-enc-").expect("tempdir")
}

fn doc(key: u64) -> Value {
    serde_json::json!({
        "id": key,
        "name": format!("customer-{key:06}"),
        "email": format!("customer{key}@example.com"),
        "amount": key * 7,
        "active": key.is_multiple_of(2),
        "tags": ["red", "green", "blue"],
    })
    .into()
}

fn options(encrypted: bool) -> Options {
    let key = EncryptionKey::from_hex(&"3c".repeat(32)).expect("key");
    Options { encryption_key: encrypted.then_some(key), ..Options::default() }
}

const MODES: [(&str, bool); 2] = [("plain", false), ("encrypted", true)];

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit_1");
    group.measurement_time(Duration::from_secs(8)).sample_size(30);
    for (name, encrypted) in MODES {
        let dir = fresh_dir();
        let db = Database::open_with(dir.path().join("db"), options(encrypted)).expect("open");
        db.create_table(TABLE, TableSchema::new("id")).expect("create");
        let mut next = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut tx = db.begin();
                tx.insert(TABLE, doc(next)).expect("insert");
                tx.commit().expect("commit");
                next += 1;
            })
        });
    }
    group.finish();
}

fn bulk(c: &mut Criterion) {
    let rows: u64 = if run::measuring() { 5_000 } else { 50 };
    let mut group = c.benchmark_group("bulk_5000");
    group.throughput(Throughput::Elements(rows)).measurement_time(Duration::from_secs(10));
    group.sample_size(20);
    for (name, encrypted) in MODES {
        let dir = fresh_dir();
        let db = Database::open_with(dir.path().join("db"), options(encrypted)).expect("open");
        db.create_table(TABLE, TableSchema::new("id")).expect("create");
        let mut next = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut tx = db.begin();
                for _ in 0..rows {
                    tx.insert(TABLE, doc(next)).expect("insert");
                    next += 1;
                }
                tx.commit().expect("commit");
            })
        });
    }
    group.finish();
}

fn read_path(c: &mut Criterion) {
    let events: u64 = if run::measuring() { 50_000 } else { 200 };
    let dirs: Vec<(&str, bool, TempDir)> =
        MODES.iter().map(|&(name, enc)| (name, enc, fresh_dir())).collect();
    for (_, encrypted, dir) in &dirs {
        let db = Database::open_with(dir.path().join("db"), options(*encrypted)).expect("open");
        db.create_table(TABLE, TableSchema::new("id")).expect("create");
        for chunk in 0..events.div_ceil(1000) {
            let mut tx = db.begin();
            for key in chunk * 1000..((chunk + 1) * 1000).min(events) {
                tx.insert(TABLE, doc(key)).expect("insert");
            }
            tx.commit().expect("commit");
        }
        db.close().expect("close");
    }
    let mut group = c.benchmark_group("open_50k");
    group.throughput(Throughput::Elements(events)).sample_size(15);
    group.measurement_time(Duration::from_secs(10));
    for (name, encrypted, dir) in &dirs {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let db =
                    Database::open_with(dir.path().join("db"), options(*encrypted)).expect("open");
                assert_eq!(db.last_seq(), events.div_ceil(1000) + 1);
                drop(db);
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("scan_50k");
    group.throughput(Throughput::Elements(events)).sample_size(20);
    for (name, encrypted, dir) in &dirs {
        let db = Database::open_with(dir.path().join("db"), options(*encrypted)).expect("open");
        group.bench_function(*name, |b| {
            b.iter(|| {
                let rows = db.read(AsOf::Now).expect("read").scan(TABLE, |_| true).expect("scan");
                assert_eq!(rows.len() as u64, events);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, commit, bulk, read_path);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
