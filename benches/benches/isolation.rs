//! Isolation benchmark: throughput of short read-write transactions at 1, 2, 4 and 8 threads
//! under each isolation level, and their abort rate, with uniform and Zipfian (theta 0.99) key
//! choice.
//!
//! One transaction reads two keys and writes the first of them (`n := n_a + n_b + 1`), then
//! commits durably; a transaction that fails with `Error::Conflict` is retried from `begin`
//! until it commits. Measured per cell (distribution, threads, level): committed
//! transactions per second (wall time), and the abort rate = failed commits / commit attempts.
//!
//! The three levels take turns in blocks (`DRIFTDB_BENCH_BLOCK_MS`, default 500 ms), forwards
//! in even rounds and backwards in odd ones, for `DRIFTDB_BENCH_ROUNDS` rounds (default 4),
//! each level on its own database; the median of the per-round rates is reported, because the
//! disk's fsync rate on a shared VM drifts within seconds (see `commit.rs`, "paired"). The
//! table holds `KEYS` documents; databases go under `DRIFTDB_BENCH_DIR` or `target/tmp`.
//!
//! Run: `cargo bench -p driftdb-benches --bench isolation`. Under `cargo test` (no `--bench`
//! argument) it runs one short round of a few cells as a smoke test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driftdb_core::{Database, Error, IsolationLevel, Key, TableSchema, Value};
use tempfile::TempDir;

const TABLE: &str = "accounts";
/// Documents in the table.
const KEYS: u64 = 10_000;
/// The Zipf exponent: the skew YCSB uses.
const THETA: f64 = 0.99;

fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && !has("--list")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn bench_root() -> PathBuf {
    let root = std::env::var_os("DRIFTDB_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&root).expect("create the benchmark directory");
    root
}

/// A fresh database holding `KEYS` documents `{id: i, n: 0}`.
fn fresh_db() -> (TempDir, Database) {
    let dir = tempfile::Builder::new()
        .prefix("driftdb-isolation-")
        .tempdir_in(bench_root())
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

fn main() {
    let full = measuring();
    let rounds = if full { env_u64("DRIFTDB_BENCH_ROUNDS", 4) } else { 1 };
    let block =
        Duration::from_millis(if full { env_u64("DRIFTDB_BENCH_BLOCK_MS", 500) } else { 30 });
    let threads_list: &[u64] = if full { &[1, 2, 4, 8] } else { &[2] };
    let seed = AtomicU64::new(0x5EED);
    println!(
        "isolation: read 2 keys, write 1, commit (retry on conflict); {KEYS} keys; \
         {rounds} rounds of {} ms blocks per level",
        block.as_millis()
    );
    println!(
        "{:<8} {:>7} {:<16} {:>12} {:>21} {:>9} {:>12}",
        "keys", "threads", "level", "txn/s median", "range over rounds", "aborts", "aborts/txn"
    );
    for dist in [Dist::Uniform, Dist::Zipf] {
        let keys = KeyChooser::new(dist);
        for &threads in threads_list {
            let dbs: Vec<(TempDir, Database)> = LEVELS.iter().map(|_| fresh_db()).collect();
            let mut rates = vec![Vec::new(); LEVELS.len()];
            let mut totals = vec![(0u64, 0u64); LEVELS.len()];
            for round in 0..rounds {
                let mut order: Vec<usize> = (0..LEVELS.len()).collect();
                if round % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    let (level, _) = LEVELS[i];
                    let (c, a, secs) = block_run(&dbs[i].1, level, &keys, threads, block, &seed);
                    rates[i].push(c as f64 / secs);
                    totals[i].0 += c;
                    totals[i].1 += a;
                }
            }
            for (i, (_, name)) in LEVELS.iter().enumerate() {
                let lo = rates[i].iter().copied().fold(f64::INFINITY, f64::min);
                let hi = rates[i].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let (commits, aborts) = totals[i];
                let abort_rate = aborts as f64 / (commits + aborts).max(1) as f64;
                println!(
                    "{:<8} {:>7} {:<16} {:>12.0} {:>21} {:>8.1}% {:>12.3}",
                    format!("{dist:?}").to_lowercase(),
                    threads,
                    name,
                    median(rates[i].clone()),
                    format!("[{lo:.0}, {hi:.0}]"),
                    100.0 * abort_rate,
                    aborts as f64 / commits.max(1) as f64,
                );
            }
            for (_, db) in dbs {
                db.close().expect("close");
            }
        }
    }
}
