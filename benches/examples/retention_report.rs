//! Bytes on disk and open time of a long history before and after a retention fold.
//!
//! ```sh
//! cargo run --release -p driftdb-benches --example retention_report -- DIR
//! ```
//!
//! `DIR` must be on the disk you want to measure (not a tmpfs). The table: 2,000 keys, each
//! inserted once (a ~100-byte document) and patched 49 times, one transaction per round (51
//! seqs, 100,000 events), a retention policy of one hour. Three copies are measured: the plain
//! segments as written; compacted without a fold (every event kept); and compacted with the
//! clock set one hour after seq 46, so the fold keeps a base at seq 46 and the 5 rounds after
//! it. For each: segment bytes, and `Database::open` time (median and range of 7 opens).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftdb_benches::sample;
use driftdb_core::{Database, TableSchema};

const TABLE: &str = "docs";
const KEYS: u64 = 2_000;
const VERSIONS: u64 = 50;
const HOUR_MS: u64 = 3_600_000;
const FOLD_AT: u64 = 46;

fn build(dir: &Path) {
    let db = Database::open(dir).expect("open");
    let mut schema = TableSchema::new("id");
    schema.retention_ms = Some(HOUR_MS);
    db.create_table(TABLE, schema).expect("create table");
    sample::write_versions(&db, TABLE, KEYS, VERSIONS).expect("write the history");
    db.close().expect("close");
}

fn segment_bytes(dir: &Path) -> u64 {
    let seg_dir = dir.join("tables").join(TABLE).join("segments");
    std::fs::read_dir(seg_dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

fn open_times(dir: &Path) -> (Duration, Duration, Duration) {
    let mut times: Vec<Duration> = (0..7)
        .map(|_| {
            let started = Instant::now();
            let db = Database::open(dir).expect("open");
            let took = started.elapsed();
            db.close().expect("close");
            took
        })
        .collect();
    times.sort();
    (times[3], times[0], times[6])
}

fn report(name: &str, dir: &Path) {
    let (median, min, max) = open_times(dir);
    println!(
        "{name:<28} segment bytes {:>10}   open {:>7.1} ms [{:.1}-{:.1}]",
        segment_bytes(dir),
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}

fn main() {
    let root: PathBuf = std::env::args().nth(1).map(PathBuf::from).expect("usage: DIR");
    let run = root.join(format!("retention-{}", std::process::id()));
    let (plain, compacted, folded) = (run.join("plain"), run.join("compacted"), run.join("folded"));
    for dir in [&plain, &compacted, &folded] {
        build(dir);
    }
    report("plain segments", &plain);
    let db = Database::open(&compacted).expect("open");
    let r = db.compact_table_at(TABLE, 0).expect("compact");
    assert_eq!(r.folded_to, None);
    db.close().expect("close");
    report("compacted, every event", &compacted);
    let db = Database::open(&folded).expect("open");
    let now = db.commit_time(FOLD_AT).expect("seq") + HOUR_MS;
    let r = db.compact_table_at(TABLE, now).expect("compact");
    println!("fold: {r}");
    db.close().expect("close");
    report(&format!("folded at seq {FOLD_AT}"), &folded);
    std::fs::remove_dir_all(&run).expect("clean up");
}
