//! Commit benchmarks: DriftDB beside SQLite (rusqlite, WAL mode) on the same documents, in the
//! same process, on the same disk.
//!
//! Run with `cargo bench -p driftdb-benches` (the Makefile's `make bench`). Databases are created
//! under `DRIFTDB_BENCH_DIR` if set, else under Cargo's `target/tmp` (the disk the build lives
//! on); put them on the disk you want to measure, never on a tmpfs.
//!
//! Groups:
//! - `bulk_100k`: 100,000 documents (~100 bytes of JSON each) inserted in ONE transaction into a
//!   fresh database per iteration. Only begin..commit is timed; creating the database, building
//!   the input and closing the database are not. `driftdb` reads the caller's documents by
//!   reference (`Transaction::insert_ref`), as SQLite reads its bound strings; `driftdb_owned`
//!   hands each one over (`insert`), so its timed part also frees them.
//! - `single_commit`: one durable commit per iteration from one thread: DriftDB (one insert per
//!   transaction), SQLite autocommit with `synchronous=FULL`, and the disk's raw rate of
//!   "append ~200 bytes + fdatasync" (the ceiling for an append-only log).
//! - `concurrent_commits`: N threads committing single-document transactions at once on one
//!   shared `Database`; one iteration is one commit per thread, so elements/s is commits/s.
//!
//! After the Criterion groups, a "paired" section (module [`paired`]) runs the same contenders in
//! turn, in short blocks, round after round, and prints per-round ratios and their medians: on a
//! shared VM the disk's fsync rate drifts several-fold within seconds, so the ratio of two
//! Criterion benchmarks that ran a minute apart can be far off. `cargo bench -p driftdb-benches
//! -- paired` runs only that section; `DRIFTDB_BENCH_PAIRED=0` skips it, `=1` forces it.
//!
//! Under `cargo test` (Criterion's test mode) every benchmark runs once, the bulk transaction
//! holds 1,000 documents and the paired section runs one short round: a smoke test.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use driftdb_benches::{run, sample};
use driftdb_core::{Database, TableSchema, Value};
use rusqlite::Connection;
use tempfile::TempDir;

/// Documents in the bulk transaction.
const BULK_DOCS: u64 = 100_000;
/// The table both engines write to.
const TABLE: &str = "docs";
/// Bytes appended per write in the raw fsync measurement (about one WAL record).
const FSYNC_RECORD_BYTES: usize = 200;
/// Records in the preallocated file of the overwrite measurement (it wraps around).
const PREALLOC_SLOTS: u64 = 16 * 1024;

fn fresh_dir() -> TempDir {
    run::fresh_dir(env!("CARGO_TARGET_TMPDIR"), "driftdb-bench-").expect("tempdir")
}

/// The same documents in each engine's input form: a DriftDB [`Value`], and SQLite's
/// `(id, JSON text)` row.
struct Dataset {
    values: Vec<Value>,
    rows: Vec<(String, String)>,
}

impl Dataset {
    fn new(n: u64) -> Self {
        let json: Vec<serde_json::Value> = (0..n).map(sample::customer_json).collect();
        let rows = json.iter().map(|d| (d["id"].as_str().unwrap_or("").to_owned(), d.to_string()));
        let rows = rows.collect();
        let values = json.into_iter().map(Value::from).collect();
        Dataset { values, rows }
    }
}

fn open_driftdb(dir: &Path) -> Database {
    let db = Database::open(dir).expect("open DriftDB");
    db.create_table(TABLE, TableSchema::new("id")).expect("create table");
    db
}

/// `synchronous` is `FULL` or `NORMAL`; `autocheckpoint` false sets `wal_autocheckpoint=0`.
fn open_sqlite(dir: &Path, synchronous: &str, autocheckpoint: bool) -> Connection {
    let conn = Connection::open(dir.join("bench.sqlite")).expect("open SQLite");
    let mode: String =
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).expect("journal_mode");
    assert_eq!(mode, "wal");
    conn.execute_batch(&format!("PRAGMA synchronous={synchronous};")).expect("synchronous");
    if !autocheckpoint {
        conn.execute_batch("PRAGMA wal_autocheckpoint=0;").expect("wal_autocheckpoint");
    }
    conn.execute_batch(&format!("CREATE TABLE {TABLE} (id TEXT PRIMARY KEY, doc TEXT);"))
        .expect("create table");
    conn
}

fn sqlite_insert(conn: &Connection, id: &str, doc: &str) {
    let mut stmt =
        conn.prepare_cached("INSERT INTO docs (id, doc) VALUES (?1, ?2)").expect("prepare");
    stmt.execute((id, doc)).expect("insert");
}

/// One bulk load into a fresh DriftDB: the time from `begin` until `commit` returns. The
/// documents are the caller's, read by reference (`insert_ref`), as SQLite's bound strings are.
fn driftdb_bulk(data: &Dataset) -> Duration {
    let dir = fresh_dir();
    let db = open_driftdb(dir.path());
    let start = Instant::now();
    let mut tx = db.begin();
    for doc in &data.values {
        tx.insert_ref(TABLE, doc).expect("insert");
    }
    black_box(tx.commit().expect("commit"));
    let timed = start.elapsed();
    db.close().expect("close");
    timed
}

/// [`driftdb_bulk`] with each document handed over (`insert` by value, copies made before the
/// clock starts): the timed part also frees the caller's 100,000 decoded documents.
fn driftdb_bulk_owned(data: &Dataset) -> Duration {
    let dir = fresh_dir();
    let db = open_driftdb(dir.path());
    let docs = data.values.clone();
    let start = Instant::now();
    let mut tx = db.begin();
    for doc in docs {
        tx.insert(TABLE, doc).expect("insert");
    }
    black_box(tx.commit().expect("commit"));
    let timed = start.elapsed();
    db.close().expect("close");
    timed
}

/// One bulk load into a fresh SQLite database: `BEGIN`, a prepared INSERT per row, `COMMIT`.
fn sqlite_bulk(data: &Dataset, synchronous: &str, autocheckpoint: bool) -> Duration {
    let dir = fresh_dir();
    let mut conn = open_sqlite(dir.path(), synchronous, autocheckpoint);
    let start = Instant::now();
    let tx = conn.transaction().expect("begin");
    {
        let mut stmt =
            tx.prepare_cached("INSERT INTO docs (id, doc) VALUES (?1, ?2)").expect("prepare");
        for (id, doc) in &data.rows {
            stmt.execute((id, doc)).expect("insert");
        }
    }
    tx.commit().expect("commit");
    let timed = start.elapsed();
    drop(conn);
    timed
}

fn bulk(c: &mut Criterion) {
    // Criterion's test mode runs each benchmark once, unoptimized under `cargo test`: keep it small.
    let docs = if run::measuring() { BULK_DOCS } else { 1_000 };
    let data = Dataset::new(docs);
    let mut g = c.benchmark_group("bulk_100k");
    g.throughput(Throughput::Elements(docs))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(6));

    g.bench_function("driftdb", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| driftdb_bulk(&data)).sum());
    });
    g.bench_function("driftdb_owned", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| driftdb_bulk_owned(&data)).sum());
    });

    for (name, synchronous, autocheckpoint) in [
        ("sqlite_full", "FULL", true),
        ("sqlite_full_no_autocheckpoint", "FULL", false),
        ("sqlite_normal", "NORMAL", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters).map(|_| sqlite_bulk(&data, synchronous, autocheckpoint)).sum()
            });
        });
    }
    g.finish();
}

fn single_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("single_commit");
    g.throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    // The ceiling: append a WAL-record-sized write to a growing file and fdatasync it.
    let dir = fresh_dir();
    let mut file = File::create(dir.path().join("fsync.log")).expect("create");
    let record = [0x5a_u8; FSYNC_RECORD_BYTES];
    g.bench_function("fsync_append_200b", |b| {
        b.iter(|| {
            file.write_all(&record).expect("write");
            file.sync_data().expect("fdatasync");
        });
    });

    // For reference: overwrite inside a preallocated, already-synced file (no size change, so
    // fdatasync has no metadata to flush), the way SQLite reuses its WAL file.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("fsync.prealloc"))
        .expect("create");
    file.write_all(&vec![0_u8; (PREALLOC_SLOTS as usize) * FSYNC_RECORD_BYTES]).expect("fill");
    file.sync_all().expect("sync");
    let mut slot = 0_u64;
    g.bench_function("fsync_overwrite_200b_prealloc", |b| {
        b.iter(|| {
            file.seek(SeekFrom::Start(slot * FSYNC_RECORD_BYTES as u64)).expect("seek");
            file.write_all(&record).expect("write");
            file.sync_data().expect("fdatasync");
            slot = (slot + 1) % PREALLOC_SLOTS;
        });
    });

    let db = open_driftdb(&dir.path().join("driftdb"));
    let mut i = 0_u64;
    g.bench_function("driftdb", |b| {
        b.iter(|| {
            let mut tx = db.begin();
            tx.insert(TABLE, sample::customer(i)).expect("insert");
            i += 1;
            black_box(tx.commit().expect("commit"))
        });
    });
    db.close().expect("close");

    let conn = open_sqlite(dir.path(), "FULL", true);
    let mut i = 0_u64;
    g.bench_function("sqlite_full", |b| {
        b.iter(|| {
            let doc = sample::customer_json(i);
            sqlite_insert(&conn, doc["id"].as_str().unwrap_or(""), &doc.to_string());
            i += 1;
        });
    });
    g.finish();
}

/// `threads` threads each make `per_thread` single-document commits on `db`; returns the wall
/// time from the first spawn to the last commit.
fn commit_in_threads(db: &Database, next: &AtomicU64, threads: u64, per_thread: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let mut tx = db.begin();
                    tx.insert(TABLE, sample::customer(i)).expect("insert");
                    tx.commit().expect("commit");
                }
            });
        }
    });
    start.elapsed()
}

fn concurrent_commits(c: &mut Criterion) {
    let mut g = c.benchmark_group("concurrent_commits");
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for threads in [1_u64, 2, 4, 8] {
        // One iteration = one commit in each thread.
        g.throughput(Throughput::Elements(threads));
        let dir = fresh_dir();
        let db = open_driftdb(dir.path());
        let next = AtomicU64::new(0);
        g.bench_with_input(BenchmarkId::new("driftdb_threads", threads), &threads, |b, &n| {
            b.iter_custom(|iters| commit_in_threads(&db, &next, n, iters));
        });
        db.close().expect("close");
    }
    g.finish();
}

criterion_group!(benches, bulk, single_commit, concurrent_commits);

fn main() {
    benches();
    if paired_enabled() {
        paired::run(run::measuring());
    }
    Criterion::default().configure_from_args().final_summary();
}

/// The interleaved comparison runs unless `DRIFTDB_BENCH_PAIRED=0`, `--list` is given, or a
/// name filter is given that is not part of "paired" (`DRIFTDB_BENCH_PAIRED=1` forces it).
fn paired_enabled() -> bool {
    match std::env::var("DRIFTDB_BENCH_PAIRED").as_deref() {
        Ok("0") => return false,
        Ok("1") => return true,
        _ => {}
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return false;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| "paired".contains(f.as_str()))
}

/// Interleaved ("paired") comparisons. The disk of a shared VM can change its fsync rate
/// several-fold within seconds, so rates measured by benchmarks that run one after another are
/// not comparable. Here the contenders take turns in short blocks, round after round, and each
/// ratio is computed within one round; the median over rounds is reported.
mod paired {
    use super::*;

    use driftdb_benches::paired::median;

    fn min_max(xs: &[f64]) -> (f64, f64) {
        xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
    }

    /// Operations per second of `op`, run repeatedly for at least `block`.
    fn rate(block: Duration, mut op: impl FnMut()) -> f64 {
        let start = Instant::now();
        let mut n = 0_u64;
        while start.elapsed() < block {
            op();
            n += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    }

    /// Commits per second of `threads` threads committing on `db` for at least `block`.
    fn threads_rate(db: &Database, next: &AtomicU64, threads: u64, block: Duration) -> f64 {
        let start = Instant::now();
        let total = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while start.elapsed() < block {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let mut tx = db.begin();
                        tx.insert(TABLE, sample::customer(i)).expect("insert");
                        tx.commit().expect("commit");
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
    }

    /// Print one row per round and the medians; `ratios` are (label, numerator, denominator)
    /// column indexes.
    fn report(
        title: &str,
        unit: &str,
        names: &[&str],
        rows: &[Vec<f64>],
        ratios: &[(&str, usize, usize)],
    ) {
        println!("\n{title}");
        let mut header = format!("  {:>6}", "round");
        for name in names {
            header.push_str(&format!(" {:>16}", format!("{name} {unit}")));
        }
        for (label, _, _) in ratios {
            header.push_str(&format!(" {label:>16}"));
        }
        println!("{header}");
        let ratio_of = |row: &Vec<f64>, a: usize, b: usize| {
            row.get(a).copied().unwrap_or(f64::NAN) / row.get(b).copied().unwrap_or(f64::NAN)
        };
        for (i, row) in rows.iter().enumerate() {
            let mut line = format!("  {:>6}", i + 1);
            for x in row {
                line.push_str(&format!(" {x:>16.1}"));
            }
            for &(_, a, b) in ratios {
                line.push_str(&format!(" {:>16.3}", ratio_of(row, a, b)));
            }
            println!("{line}");
        }
        let mut line = format!("  {:>6}", "median");
        for col in 0..names.len() {
            let xs = rows.iter().filter_map(|r| r.get(col).copied()).collect();
            line.push_str(&format!(" {:>16.1}", median(xs)));
        }
        for &(_, a, b) in ratios {
            let xs: Vec<f64> = rows.iter().map(|r| ratio_of(r, a, b)).collect();
            line.push_str(&format!(" {:>16.3}", median(xs)));
        }
        println!("{line}");
        for &(label, a, b) in ratios {
            let xs: Vec<f64> = rows.iter().map(|r| ratio_of(r, a, b)).collect();
            let (lo, hi) = min_max(&xs);
            println!("  {label}: median {:.3}, range over rounds [{lo:.3}, {hi:.3}]", median(xs));
        }
    }

    /// Run every contender once, forwards in even rounds and backwards in odd ones (so that
    /// neither always follows the other), and return the results in contender order.
    fn round(index: usize, contenders: &mut [&mut dyn FnMut() -> f64]) -> Vec<f64> {
        let mut out = vec![f64::NAN; contenders.len()];
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        if index % 2 == 1 {
            order.reverse();
        }
        for k in order {
            if let (Some(run), Some(slot)) = (contenders.get_mut(k), out.get_mut(k)) {
                *slot = run();
            }
        }
        out
    }

    /// 100k documents in one transaction, DriftDB and SQLite (`synchronous=FULL`) in turn, each
    /// into a fresh database.
    fn bulk(rounds: usize, docs: u64) {
        let data = Dataset::new(docs);
        let mut sqlite = || sqlite_bulk(&data, "FULL", true).as_secs_f64() * 1e3;
        // Each DriftDB variant in its own section: freeing the handed-over documents leaves
        // the allocator in another state for whatever runs next.
        for (name, load) in [
            ("driftdb", driftdb_bulk as fn(&Dataset) -> Duration),
            ("driftdb_owned", driftdb_bulk_owned),
        ] {
            let mut drift = || load(&data).as_secs_f64() * 1e3;
            let rows: Vec<Vec<f64>> =
                (0..rounds).map(|r| round(r, &mut [&mut drift, &mut sqlite])).collect();
            report(
                &format!(
                    "paired/bulk ({name}): {docs} docs in one transaction, in turn (time in ms, \
                     lower is better)"
                ),
                "ms",
                &[name, "sqlite_full"],
                &rows,
                &[(&format!("{name}/sqlite"), 0, 1)],
            );
        }
    }

    /// Single-document durable commits from one thread, and the raw append+fdatasync rate.
    fn single(rounds: usize, block: Duration) {
        let dir = fresh_dir();
        let mut file = File::create(dir.path().join("fsync.log")).expect("create");
        let record = [0x5a_u8; FSYNC_RECORD_BYTES];
        let db = open_driftdb(&dir.path().join("driftdb"));
        let conn = open_sqlite(dir.path(), "FULL", true);
        let (mut i, mut j) = (0_u64, 0_u64);
        let mut fsync = || {
            rate(block, || {
                file.write_all(&record).expect("write");
                file.sync_data().expect("fdatasync");
            })
        };
        let mut drift = || {
            rate(block, || {
                let mut tx = db.begin();
                tx.insert(TABLE, sample::customer(i)).expect("insert");
                i += 1;
                tx.commit().expect("commit");
            })
        };
        let mut sqlite = || {
            rate(block, || {
                let doc = sample::customer_json(j);
                sqlite_insert(&conn, doc["id"].as_str().unwrap_or(""), &doc.to_string());
                j += 1;
            })
        };
        let rows: Vec<Vec<f64>> =
            (0..rounds).map(|r| round(r, &mut [&mut fsync, &mut drift, &mut sqlite])).collect();
        report(
            &format!(
                "paired/single_commit: one thread, blocks of {} ms in turn (ops/s, higher is better)",
                block.as_millis()
            ),
            "/s",
            &["fsync_append", "driftdb", "sqlite_full"],
            &rows,
            &[("driftdb/fsync", 1, 0), ("sqlite/fsync", 2, 0), ("driftdb/sqlite", 1, 2)],
        );
        db.close().expect("close");
    }

    /// 1, 2, 4 and 8 threads committing on one database, in turn.
    fn concurrent(rounds: usize, block: Duration) {
        let dir = fresh_dir();
        let db = open_driftdb(dir.path());
        let next = AtomicU64::new(0);
        let mut t1 = || threads_rate(&db, &next, 1, block);
        let mut t2 = || threads_rate(&db, &next, 2, block);
        let mut t4 = || threads_rate(&db, &next, 4, block);
        let mut t8 = || threads_rate(&db, &next, 8, block);
        let rows: Vec<Vec<f64>> =
            (0..rounds).map(|r| round(r, &mut [&mut t1, &mut t2, &mut t4, &mut t8])).collect();
        report(
            &format!(
                "paired/concurrent_commits: DriftDB, blocks of {} ms in turn (commits/s, higher is better)",
                block.as_millis()
            ),
            "/s",
            &["1 thread", "2 threads", "4 threads", "8 threads"],
            &rows,
            &[("2t/1t", 1, 0), ("4t/1t", 2, 0), ("8t/1t", 3, 0)],
        );
        db.close().expect("close");
    }

    pub fn run(measuring: bool) {
        if measuring {
            bulk(5, BULK_DOCS);
            single(20, Duration::from_millis(150));
            concurrent(12, Duration::from_millis(200));
        } else {
            // Smoke test of the code paths (`cargo test --benches`).
            bulk(1, 1_000);
            single(1, Duration::from_millis(20));
            concurrent(1, Duration::from_millis(20));
        }
    }
}
