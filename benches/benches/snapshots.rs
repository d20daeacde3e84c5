//! Snapshot benchmarks: a streamed scan `AS OF` the middle of a long history, starting from the
//! nearest snapshot, against the same scan replaying the segments from the start, and the
//! in-memory scan for reference.
//!
//! Run with `cargo bench -p driftdb-benches --bench snapshots`. Databases are created under
//! `DRIFTDB_BENCH_DIR` if set, else under Cargo's `target/tmp`; never use a tmpfs.
//!
//! The table: 10,000 keys, each inserted once (a ~100-byte document) and patched 19 times:
//! 200,000 events in 200 transactions of 1,000 events, with automatic snapshots every 10,000
//! events (`snapshot_every_events`; one full in 8). It is built twice: with the default 64 MiB
//! segments (the whole history is one segment file) and with 1 MiB segments.
//!
//! Group `scan_as_of_mid_200k` (the read seq is 105 of 201, so the newest snapshot is at seq
//! 101 and 4,000 events are replayed after it):
//! - `stream_snapshot`: `scan_stream` with the snapshots (64 MiB segments);
//! - `stream_snapshot_1mib_segments`: the same with 1 MiB segments (the replay reads one file);
//! - `stream_no_snapshot`: `scan_stream` on a copy without the snapshot files: every event up
//!   to the read seq is replayed from the segments;
//! - `memory_scan`: `Snapshot::scan` of the in-memory state (no disk, no replay).
//!
//! Under `cargo test` (Criterion's test mode) the table is 200 keys × 4 versions and each
//! benchmark runs once: a smoke test.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use driftdb_benches::{run, sample};
use driftdb_core::{AsOf, Database, Options, TableSchema};
use tempfile::TempDir;

const TABLE: &str = "docs";

fn fresh_dir() -> TempDir {
    run::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "driftdb-snap-").expect("tempdir")
}

fn options(segment_bytes: u64, every: u64) -> Options {
    Options {
        segment_size_bytes_max: segment_bytes,
        snapshot_every_events: every,
        ..Options::default()
    }
}

/// Build the table: every key inserted, then patched `versions - 1` times, `batch` events per
/// transaction. Returns the last seq.
fn build(dir: &Path, options: Options, keys: u64, versions: u64, batch: u64) -> u64 {
    let db = Database::open_with(dir, options).expect("open");
    db.create_table(TABLE, TableSchema::new("id")).expect("create table");
    let mut tx = db.begin();
    let mut in_tx = 0;
    for version in 0..versions {
        for key in 0..keys {
            if version == 0 {
                tx.insert(TABLE, sample::customer(key)).expect("insert");
            } else {
                tx.patch(TABLE, format!("k{key}"), sample::customer_patch(key, version))
                    .expect("patch");
            }
            in_tx += 1;
            if in_tx == batch {
                tx.commit().expect("commit");
                tx = db.begin();
                in_tx = 0;
            }
        }
    }
    tx.commit().expect("commit");
    assert_eq!(db.auto_snapshot_error(), None);
    let last = db.last_seq();
    db.close().expect("close");
    last
}

fn copy_dir(from: &Path, to: &Path, skip: &str) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target, skip);
        } else if !entry.file_name().to_string_lossy().ends_with(skip) {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

const IDS: [&str; 4] = [
    "scan_as_of_mid_200k/stream_snapshot",
    "scan_as_of_mid_200k/stream_snapshot_1mib_segments",
    "scan_as_of_mid_200k/stream_no_snapshot",
    "scan_as_of_mid_200k/memory_scan",
];

fn benches_all(c: &mut Criterion) {
    if !run::selected(&IDS) {
        return;
    }
    let (keys, versions, every, batch) =
        if run::measuring() { (10_000, 20, 10_000, 1_000) } else { (200, 4, 200, 20) };
    let big = fresh_dir();
    let small = fresh_dir();
    let bare = fresh_dir();
    let built = Instant::now();
    let last = build(big.path(), options(64 << 20, every), keys, versions, batch);
    build(small.path(), options(1 << 20, every), keys, versions, batch);
    copy_dir(big.path(), bare.path(), ".snap");
    let events = keys * versions + 1;
    let mid = last / 2 + 5;
    let snaps = Database::open(big.path()).expect("open").snapshots(TABLE).expect("list").len();
    eprintln!(
        "snapshot bench: {events} events in {last} commits, {snaps} snapshots, built in {:.1} s; \
         scans read at seq {mid}",
        built.elapsed().as_secs_f64()
    );

    let mut g = c.benchmark_group("scan_as_of_mid_200k");
    g.throughput(Throughput::Elements(keys))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, dir) in [
        ("stream_snapshot", big.path()),
        ("stream_snapshot_1mib_segments", small.path()),
        ("stream_no_snapshot", bare.path()),
    ] {
        let db = Database::open(dir).expect("open");
        let first = db.scan_stream(TABLE, AsOf::Seq(mid)).expect("scan");
        eprintln!(
            "snapshot bench: {name}: starts at snapshot {:?}, replays {} events",
            first.snapshot_seq(),
            first.replayed_events()
        );
        assert_eq!(first.count() as u64, keys);
        g.bench_function(name, |b| {
            b.iter(|| {
                let rows = db.scan_stream(TABLE, AsOf::Seq(mid)).expect("scan");
                let mut n = 0u64;
                for row in rows {
                    row.expect("row");
                    n += 1;
                }
                assert_eq!(n, keys);
            })
        });
        db.close().expect("close");
    }
    let db = Database::open(big.path()).expect("open");
    g.bench_function("memory_scan", |b| {
        b.iter(|| {
            let rows = db.read(AsOf::Seq(mid)).expect("read").scan(TABLE, |_| true).expect("scan");
            assert_eq!(rows.len() as u64, keys);
        })
    });
    g.finish();
    db.close().expect("close");
}

criterion_group!(benches, benches_all);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
