//! Compaction benchmarks: how fast a table with many versions per key is compacted, how much
//! smaller it gets, and what reading it back on open costs before and after.
//!
//! Run with `cargo bench -p driftdb-benches --bench compaction`. Databases are created under
//! `DRIFTDB_BENCH_DIR` if set, else under Cargo's `target/tmp`; never use a tmpfs.
//!
//! The table: 2,000 keys, each inserted once (a ~100-byte document) and patched 49 times
//! (a few fields per patch): 100,000 events in 50 transactions, default options (64 MiB
//! segments, 64 KiB blocks). It is built once into a template directory.
//!
//! Groups:
//! - `compact_100k`: `compact_table` on a fresh copy of the template per iteration (copying and
//!   opening are not timed); elements/s is events compacted per second.
//! - `open_100k`: `Database::open` of the template (plain segments) and of a compacted copy:
//!   reading and checking every frame and rebuilding the in-memory state.
//!
//! Before the groups, one line reports the sizes: segment bytes before and after, the ratio,
//! and the segment counts. Under `cargo test` (Criterion's test mode) the table is 100 keys ×
//! 10 versions and each benchmark runs once: a smoke test.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use driftdb_benches::{run, sample};
use driftdb_core::{Database, TableSchema};
use tempfile::TempDir;

const TABLE: &str = "docs";

fn fresh_dir() -> TempDir {
    run::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "driftdb-compact-").expect("tempdir")
}

/// Build the table: every key inserted, then patched `versions - 1` times, one transaction
/// per round.
fn build(dir: &Path, keys: u64, versions: u64) -> u64 {
    let db = Database::open(dir).expect("open");
    db.create_table(TABLE, TableSchema::new("id")).expect("create table");
    sample::write_versions(&db, TABLE, keys, versions).expect("write the history");
    let events = db.last_seq();
    db.close().expect("close");
    events
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Size and count of the table's segment files.
fn segments(dir: &Path) -> (u64, usize) {
    let seg_dir = dir.join("tables").join(TABLE).join("segments");
    let sizes: Vec<u64> = std::fs::read_dir(seg_dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .collect();
    (sizes.iter().sum(), sizes.len())
}

/// A copy of the template in a fresh directory (the database is at `dir/db`).
fn copy_of(template: &Path) -> TempDir {
    let dir = fresh_dir();
    copy_dir(template, &dir.path().join("db"));
    dir
}

/// The benchmark ids, for the name filter.
const IDS: [&str; 3] = ["compact_100k/compact_table", "open_100k/plain", "open_100k/compacted"];

fn benches_all(c: &mut Criterion) {
    if !run::selected(&IDS) {
        return;
    }
    let (keys, versions) = if run::measuring() { (2_000, 50) } else { (100, 10) };
    let template = fresh_dir();
    let built = Instant::now();
    let seqs = build(template.path(), keys, versions);
    let events = keys * versions + 1;
    eprintln!(
        "compaction bench: {events} events ({keys} keys x {versions} versions, {seqs} commits) \
         built in {:.2} s",
        built.elapsed().as_secs_f64()
    );

    // One compaction outside Criterion, for the sizes.
    let compacted = copy_of(template.path());
    let (bytes_before, count_before) = segments(&compacted.path().join("db"));
    let db = Database::open(compacted.path().join("db")).expect("open");
    let report = db.compact_table(TABLE).expect("compact");
    db.close().expect("close");
    let (bytes_after, count_after) = segments(&compacted.path().join("db"));
    eprintln!(
        "compaction bench: {report}; table directory {bytes_before} -> {bytes_after} bytes \
         ({:.2}x smaller), {count_before} -> {count_after} segment files; \
         {:.1} -> {:.1} bytes per event",
        bytes_before as f64 / bytes_after as f64,
        bytes_before as f64 / events as f64,
        bytes_after as f64 / events as f64,
    );

    let mut g = c.benchmark_group("compact_100k");
    g.throughput(Throughput::Elements(events))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("compact_table", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = copy_of(template.path());
                let db = Database::open(dir.path().join("db")).expect("open");
                let start = Instant::now();
                let report = db.compact_table(TABLE).expect("compact");
                total += start.elapsed();
                assert_eq!(report.events, events);
                db.close().expect("close");
            }
            total
        })
    });
    g.finish();

    let mut g = c.benchmark_group("open_100k");
    g.throughput(Throughput::Elements(events))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, dir) in
        [("plain", template.path().to_path_buf()), ("compacted", compacted.path().join("db"))]
    {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let db = Database::open(&dir).expect("open");
                    total += start.elapsed();
                    assert_eq!(db.last_seq(), seqs);
                    db.close().expect("close");
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, benches_all);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
