//! Time-travel benchmarks: DriftDB beside SQLite (rusqlite, WAL mode) on the same history, in
//! the same process, on the same disk.
//!
//! Run with `make bench-time-travel` or `cargo bench -p driftdb-benches --bench time_travel`.
//! The history (see `driftdb_benches::history`): 1,000,000 events on 100,000 keys in 10,010
//! transactions, a hot key with 10,000 versions, an indexed field with 1,000 values. SQLite
//! keeps it as its users do: a versions table `(key, valid_from_seq, valid_to_seq, doc)` with
//! indexes, and a `current` table for reads of now. Histories of 10k, 100k and 1M events are
//! built once under `DRIFTDB_BENCH_DIR` (else Cargo's `target/tmp`) in `time-travel-<events>/`
//! and reused by later runs while they are complete (`DRIFTDB_BENCH_REBUILD=1` rebuilds them).
//! Building is never timed. Both engines' answers are compared before anything is timed.
//!
//! Groups: `tt_point_now`, `tt_hot_key`, `tt_scan`, `tt_index_eq` (on the 1M history, opened
//! once), then `tt_open` (each size, closed in between; only `Database::open` is timed). After
//! the Criterion groups, a paired section runs the same contenders in turn, round after round,
//! and prints per-round ratios with their medians and the verdict on each target of the issue
//! (`DRIFTDB_BENCH_PAIRED=0` skips it; `-- paired` runs only it). Bytes on disk are printed at
//! the end. Resident memory needs a fresh process: `scripts/time-travel-rss.sh`.
//!
//! Under `cargo test` (Criterion's test mode) the histories hold 250, 500 and 1,000 events in a
//! temporary directory, every benchmark runs once and the paired section one short round.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use driftdb_benches::engines::Engines;
use driftdb_benches::fixture::{Built, build_or_reuse, disk_usage, rebuild};
use driftdb_benches::history::{Shape, key_name};
use driftdb_benches::run;
use driftdb_benches::suite::{self, DiskRow, Settings};
use driftdb_core::{AsOf, Database, Key};

fn listing() -> bool {
    std::env::args().any(|a| a == "--list")
}

/// The paired section runs unless `DRIFTDB_BENCH_PAIRED=0` or a name filter is given that is
/// not part of "paired" (`DRIFTDB_BENCH_PAIRED=1` forces it).
fn paired_enabled() -> bool {
    match std::env::var("DRIFTDB_BENCH_PAIRED").as_deref() {
        Ok("0") => return false,
        Ok("1") => return true,
        _ => {}
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| "paired".contains(f.as_str()))
}

/// Build (or, when measuring, reuse) the histories of `sizes` events under `root`.
fn histories(root: &Path, sizes: &[u64], reuse: bool) -> Vec<Built> {
    sizes
        .iter()
        .map(|&events| {
            let dir = root.join(format!("time-travel-{events}"));
            let shape = Shape::new(events);
            let start = Instant::now();
            let mut reported = 0;
            let progress = |done: u64| {
                if events >= 1_000_000 && done >= reported + events / 10 {
                    reported = done;
                    eprintln!("  built {done} of {events} events ({:.0?})", start.elapsed());
                }
            };
            let built = if reuse {
                build_or_reuse(&dir, shape, progress)
            } else {
                rebuild(&dir, shape, progress)
            };
            let built = built.expect("build the history");
            eprintln!(
                "history of {events} events ready in {:.1?} at {}",
                start.elapsed(),
                dir.display()
            );
            built
        })
        .collect()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    g
}

/// Point reads: now over pseudo-random keys, and the hot key now and AS OF the old seq.
fn point_reads(c: &mut Criterion, e: &Engines) {
    let keys: Vec<(Key, String)> = (0..4096)
        .map(|i| {
            let name = key_name(e.nth_key(i));
            (Key::from(name.as_str()), name)
        })
        .collect();
    let mut g = group(c, "tt_point_now");
    let mut i = 0;
    g.bench_function("driftdb_get", |b| {
        b.iter(|| {
            i += 1;
            e.driftdb_get(AsOf::Now, &keys[i % keys.len()].0).expect("get")
        });
    });
    g.bench_function("sqlite_current", |b| {
        b.iter(|| {
            i += 1;
            e.sqlite_current_get(&keys[i % keys.len()].1).expect("get")
        });
    });
    g.finish();

    let (key, name, old) = (Key::from(key_name(0)), key_name(0), e.shape.old_seq());
    let mut g = group(c, "tt_hot_key");
    g.bench_function("driftdb_now", |b| b.iter(|| e.driftdb_get(AsOf::Now, &key).expect("get")));
    g.bench_function("driftdb_as_of_old", |b| {
        b.iter(|| e.driftdb_get(AsOf::Seq(old), &key).expect("get"));
    });
    g.bench_function("sqlite_current", |b| b.iter(|| e.sqlite_current_get(&name).expect("get")));
    g.bench_function("sqlite_versions_as_of_old", |b| {
        b.iter(|| e.sqlite_versions_get(&name, old).expect("get"));
    });
    g.finish();
}

/// Full scans, now and AS OF the middle seq.
fn scans(c: &mut Criterion, e: &Engines) {
    let mid = e.shape.mid_seq();
    let mut g = group(c, "tt_scan");
    g.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(5));
    g.bench_function("driftdb_now", |b| b.iter(|| e.driftdb_scan(AsOf::Now).expect("scan")));
    g.bench_function("driftdb_as_of_mid", |b| {
        b.iter(|| e.driftdb_scan(AsOf::Seq(mid)).expect("scan"));
    });
    g.bench_function("driftdb_as_of_mid_shared", |b| {
        b.iter(|| e.driftdb_scan_shared(AsOf::Seq(mid)).expect("scan"));
    });
    g.bench_function("sqlite_current", |b| b.iter(|| e.sqlite_current_scan().expect("scan")));
    g.bench_function("sqlite_versions_as_of_mid", |b| {
        b.iter(|| e.sqlite_versions_scan(mid).expect("scan"));
    });
    g.bench_function("sqlite_versions_not_indexed", |b| {
        b.iter(|| e.sqlite_versions_scan_not_indexed(mid).expect("scan"));
    });
    g.finish();
}

/// Indexed equality, now and AS OF the middle seq, over pseudo-random buckets.
fn index_eq(c: &mut Criterion, e: &Engines) {
    let mid = e.shape.mid_seq();
    let buckets: Vec<u64> = (0..256).map(|i| e.nth_bucket(i)).collect();
    let mut i = 0;
    let mut next = move || {
        i += 1;
        buckets[i % buckets.len()]
    };
    let mut g = group(c, "tt_index_eq");
    g.sample_size(50);
    g.bench_function("driftdb_now", |b| {
        b.iter(|| e.driftdb_lookup(AsOf::Now, next()).expect("lookup"));
    });
    g.bench_function("sqlite_current", |b| {
        b.iter(|| e.sqlite_current_lookup(next()).expect("lookup"));
    });
    g.bench_function("driftdb_as_of_mid", |b| {
        b.iter(|| e.driftdb_lookup(AsOf::Seq(mid), next()).expect("lookup"));
    });
    g.bench_function("sqlite_versions_as_of_mid", |b| {
        b.iter(|| e.sqlite_versions_lookup(next(), mid).expect("lookup"));
    });
    g.finish();
}

/// `Database::open` of each history; the close after each open is not timed.
fn opens(c: &mut Criterion, histories: &[Built]) {
    let mut g = group(c, "tt_open");
    g.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(10));
    for built in histories {
        g.bench_function(suite::open_column(built.shape.events), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let start = Instant::now();
                        let db = black_box(Database::open(built.driftdb_dir()).expect("open"));
                        let timed = start.elapsed();
                        db.close().expect("close");
                        timed
                    })
                    .sum()
            });
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if listing() {
        c.final_summary();
        return;
    }
    let measuring = run::measuring();
    let (sizes, settings, samples): (&[u64], Settings, u64) = if measuring {
        (&[10_000, 100_000, 1_000_000], Settings::full(), 32)
    } else {
        (&[250, 500, 1_000], Settings::smoke(), 8)
    };
    let temp;
    let root = if measuring {
        run::bench_root(env!("CARGO_TARGET_TMPDIR")).expect("benchmark directory")
    } else {
        temp = tempfile::Builder::new()
            .prefix("driftdb-tt-")
            .tempdir_in(run::bench_root(env!("CARGO_TARGET_TMPDIR")).expect("benchmark directory"))
            .expect("tmp");
        temp.path().to_owned()
    };
    let reuse = measuring && std::env::var("DRIFTDB_BENCH_REBUILD").as_deref() != Ok("1");
    let built = histories(&root, sizes, reuse);
    let largest = built.last().expect("at least one history");

    let engines = Engines::open(largest).expect("open both engines");
    engines.cross_check(samples).expect("both engines give the same answers");
    suite::print_plans(&engines).expect("SQLite query plans");
    point_reads(&mut c, &engines);
    scans(&mut c, &engines);
    index_eq(&mut c, &engines);
    let paired = paired_enabled();
    let mut verdicts = Vec::new();
    if paired {
        let point = suite::point_now(&engines, &settings).expect("paired point reads");
        point.print(&[("driftdb_get", "sqlite_current")]);
        let hot = suite::hot_key(&engines, &settings).expect("paired hot key");
        hot.print(&[
            ("driftdb_as_of_old", "driftdb_now"),
            ("driftdb_as_of_old", "sqlite_versions_as_of_old"),
            ("driftdb_now", "sqlite_current"),
        ]);
        let scan = suite::scan(&engines, &settings).expect("paired scans");
        scan.print(&[
            ("driftdb_as_of_mid", "driftdb_now"),
            ("driftdb_as_of_mid", "sqlite_versions_as_of_mid"),
            ("driftdb_as_of_mid", "sqlite_versions_not_indexed"),
            ("driftdb_as_of_mid_shared", "sqlite_versions_as_of_mid"),
            ("driftdb_as_of_mid_shared", "driftdb_as_of_mid"),
            ("driftdb_now", "sqlite_current"),
        ]);
        let index = suite::index_eq(&engines, &settings).expect("paired lookups");
        index.print(&[
            ("driftdb_now", "sqlite_current"),
            ("driftdb_as_of_mid", "sqlite_versions_as_of_mid"),
            ("driftdb_as_of_mid", "driftdb_now"),
        ]);
        verdicts.extend(suite::read_verdicts(&point, &hot, &scan, &index));
    }
    engines.close().expect("close both engines");

    opens(&mut c, &built);
    if paired {
        let open = suite::open_curve(&built, &settings).expect("paired opens");
        open.print(&[]);
        verdicts.push(suite::open_verdict(&open, largest.shape.events));
    }
    let disk: Vec<DiskRow> = built
        .iter()
        .map(|b| DiskRow { shape: b.shape, usage: disk_usage(b).expect("bytes on disk") })
        .collect();
    suite::print_disk(&disk);
    if paired {
        suite::print_verdicts(&verdicts);
        println!("  (7. memory: run scripts/time-travel-rss.sh; it needs a fresh process)");
    }
    c.final_summary();
}
