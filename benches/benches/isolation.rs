//! Isolation benchmark: throughput of short read-write transactions at 1, 2, 4 and 8 threads
//! under each isolation level, and their abort rate, with uniform and Zipfian (theta 0.99) key
//! choice.
//!
//! One transaction reads two keys and writes the first of them (`n := n_a + n_b + 1`), then
//! commits durably; a transaction that fails with `Error::Conflict` is retried from `begin`
//! until it commits. Measured per cell (distribution, threads, level): committed
//! transactions per second (wall time), and the abort rate = failed commits / commit attempts.
//!
//! All cells of a distribution (thread counts x levels), each on its own database, take turns
//! in blocks (`DRIFTDB_BENCH_BLOCK_MS`, default 400 ms), forwards in even rounds and backwards
//! in odd ones, for `DRIFTDB_BENCH_ROUNDS` rounds (default 6); each round starts with a probe of
//! the disk's raw rate (append 200 bytes + fdatasync, for half a block). Reported: the median
//! of the per-round rates, and the median of rate / probe of the same round, because the
//! disk's fsync rate on a shared VM drifts several-fold within seconds (see `commit.rs`,
//! "paired"). The table holds `KEYS` documents; databases go under `DRIFTDB_BENCH_DIR` or
//! `target/tmp`.
//!
//! Run: `cargo bench -p driftdb-benches --bench isolation` (a name filter not part of
//! "isolation", e.g. `-- paired`, skips it). Under `cargo test` (no `--bench`
//! argument) it runs one short round of a few cells as a smoke test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driftdb_benches::run;
use driftdb_core::{Database, Error, IsolationLevel, Key, TableSchema, Value};
use tempfile::TempDir;

const TABLE: &str = "accounts";
/// Documents in the table.
const KEYS: u64 = 10_000;
/// The Zipf exponent: the skew YCSB uses.
const THETA: f64 = 0.99;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A fresh database holding `KEYS` documents `{id: i, n: 0}`.
fn fresh_db() -> (TempDir, Database) {
    let dir = tempfile::Builder::new()
        .prefix("driftdb-isolation-")
        .tempdir_in(run::bench_root(env!("CARGO_TARGET_TMPDIR")).expect("benchmark directory"))
        .expect("tempdir");
    let db = Database::open(dir.path()).expect("open");
    db.create_table(TABLE, TableSchema::new("id")).expect("create table");
    let mut tx = db.begin();
    for i in 0..KEYS {
        tx.insert(TABLE, serde_json::json!({"id": i, "n": 0}).into()).expect("insert");
    }
    tx.commit().expect("load");
    (dir, db)
}

/// xorshift64*: a small, fast generator; each thread has its own.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dist {
    Uniform,
    Zipf,
}

/// Key choice: uniform, or Zipfian with P(rank i) proportional to 1 / (i + 1)^theta, sampled by
/// binary search over the cumulative distribution. Rank 0 (the hottest) is key 0.
struct KeyChooser {
    cdf: Vec<f64>,
}

impl KeyChooser {
    fn new(dist: Dist) -> Self {
        match dist {
            Dist::Uniform => KeyChooser { cdf: Vec::new() },
            Dist::Zipf => {
                let weights: Vec<f64> = (1..=KEYS).map(|i| (i as f64).powf(-THETA)).collect();
                let total: f64 = weights.iter().sum();
                let mut sum = 0.0;
                let cdf = weights.iter().map(|w| {
                    sum += w / total;
                    sum
                });
                KeyChooser { cdf: cdf.collect() }
            }
        }
    }

    fn pick(&self, rng: &mut Rng) -> u64 {
        if self.cdf.is_empty() {
            return rng.next_u64() % KEYS;
        }
        let u = rng.unit();
        (self.cdf.partition_point(|&c| c < u) as u64).min(KEYS - 1)
    }
}

fn n_of(doc: &Value) -> i64 {
    doc.get("n").and_then(Value::as_i64).expect("n")
}

/// One transaction, retried until it commits. Returns the number of failed attempts.
fn transfer(db: &Database, level: IsolationLevel, keys: &KeyChooser, rng: &mut Rng) -> u64 {
    let (a, mut b) = (keys.pick(rng), keys.pick(rng));
    while b == a {
        b = keys.pick(rng);
    }
    let (a, b) = (Key::Int(a as i64), Key::Int(b as i64));
    let mut aborts = 0;
    loop {
        let mut tx = db.begin_with(level);
        let na = n_of(&tx.get(TABLE, &a).expect("get").expect("row"));
        let nb = n_of(&tx.get(TABLE, &b).expect("get").expect("row"));
        tx.patch(TABLE, a.clone(), serde_json::json!({"n": na + nb + 1}).into()).expect("patch");
        match tx.commit() {
            Ok(_) => return aborts,
            Err(Error::Conflict { .. }) => aborts += 1,
            Err(e) => panic!("commit failed: {e}"),
        }
    }
}

/// One block: `threads` threads run transactions for `block`. Returns (commits, aborts, secs).
fn block_run(
    db: &Database,
    level: IsolationLevel,
    keys: &KeyChooser,
    threads: u64,
    block: Duration,
    seed: &AtomicU64,
) -> (u64, u64, f64) {
    let (commits, aborts) = (AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut rng = Rng(seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) | 1);
                while start.elapsed() < block {
                    aborts.fetch_add(transfer(db, level, keys, &mut rng), Ordering::Relaxed);
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    (commits.load(Ordering::Relaxed), aborts.load(Ordering::Relaxed), secs)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

const LEVELS: [(IsolationLevel, &str); 3] = [
    (IsolationLevel::ReadCommitted, "READ COMMITTED"),
    (IsolationLevel::RepeatableRead, "REPEATABLE READ"),
    (IsolationLevel::Serializable, "SERIALIZABLE"),
];

/// Appends of ~200 bytes + `fdatasync` per second for `block`: the disk's rate right now, the
/// ceiling of one thread's durable commits.
fn fsync_rate(block: Duration) -> f64 {
    use std::io::Write;
    let dir = tempfile::Builder::new()
        .prefix("driftdb-fsync-")
        .tempdir_in(run::bench_root(env!("CARGO_TARGET_TMPDIR")).expect("benchmark directory"));
    let dir = dir.expect("tempdir");
    let mut file = std::fs::File::create(dir.path().join("probe")).expect("probe file");
    let record = [0x5Au8; 200];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < block {
        file.write_all(&record).expect("write");
        file.sync_data().expect("fdatasync");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One cell of the table: a key distribution, a thread count, a level, and its database.
struct Cell {
    threads: u64,
    level: usize,
    db: (TempDir, Database),
    /// Per round: committed transactions per second, and that over the round's fsync rate.
    rates: Vec<(f64, f64)>,
    commits: u64,
    aborts: u64,
}

/// A name filter (`cargo bench -p driftdb-benches -- paired`) that is not part of "isolation"
/// skips this benchmark, as it does Criterion's.
fn filtered_out() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    !filters.is_empty() && !filters.iter().any(|f| "isolation".contains(f.as_str()))
}

fn main() {
    if filtered_out() || std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = run::measuring();
    let rounds = if full { env_u64("DRIFTDB_BENCH_ROUNDS", 6) } else { 1 };
    let block =
        Duration::from_millis(if full { env_u64("DRIFTDB_BENCH_BLOCK_MS", 400) } else { 30 });
    let threads_list: &[u64] = if full { &[1, 2, 4, 8] } else { &[2] };
    let seed = AtomicU64::new(0x5EED);
    println!(
        "isolation: read 2 keys, write 1, commit (retry on conflict); {KEYS} keys; {rounds} \
         rounds; in each, a {} ms fsync probe, then every cell in turn for {} ms",
        block.as_millis() / 2,
        block.as_millis()
    );
    println!(
        "{:<8} {:>7} {:<16} {:>12} {:>21} {:>12} {:>9} {:>10}",
        "keys",
        "threads",
        "level",
        "txn/s median",
        "range over rounds",
        "/ fsync rate",
        "aborts",
        "aborts/txn"
    );
    for dist in [Dist::Uniform, Dist::Zipf] {
        let keys = KeyChooser::new(dist);
        let mut cells: Vec<Cell> = Vec::new();
        for &threads in threads_list {
            for level in 0..LEVELS.len() {
                let db = fresh_db();
                cells.push(Cell { threads, level, db, rates: Vec::new(), commits: 0, aborts: 0 });
            }
        }
        let mut probes = Vec::new();
        for round in 0..rounds {
            let probe = fsync_rate(block / 2);
            probes.push(probe);
            let mut order: Vec<usize> = (0..cells.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let cell = &mut cells[i];
                let (level, _) = LEVELS[cell.level];
                let (c, a, secs) = block_run(&cell.db.1, level, &keys, cell.threads, block, &seed);
                let rate = c as f64 / secs;
                cell.rates.push((rate, rate / probe));
                cell.commits += c;
                cell.aborts += a;
            }
        }
        for cell in &cells {
            let rates: Vec<f64> = cell.rates.iter().map(|r| r.0).collect();
            let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let abort_rate = cell.aborts as f64 / (cell.commits + cell.aborts).max(1) as f64;
            println!(
                "{:<8} {:>7} {:<16} {:>12.0} {:>21} {:>12.2} {:>8.1}% {:>10.3}",
                format!("{dist:?}").to_lowercase(),
                cell.threads,
                LEVELS[cell.level].1,
                median(rates),
                format!("[{lo:.0}, {hi:.0}]"),
                median(cell.rates.iter().map(|r| r.1).collect()),
                100.0 * abort_rate,
                cell.aborts as f64 / cell.commits.max(1) as f64,
            );
        }
        let lo = probes.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = probes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "fsync probe (append 200 B + fdatasync): median {:.0}/s, range [{lo:.0}, {hi:.0}]",
            median(probes)
        );
        for cell in cells {
            cell.db.1.close().expect("close");
        }
    }
}
