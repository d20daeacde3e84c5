//! A small driver of the commit path for profiling and standalone rates, outside Criterion.
//!
//! ```sh
//! # CPU per document of one bulk transaction (instruction counts are repeatable under load):
//! cargo build --release -p driftdb-benches --example commit_driver
//! valgrind --tool=callgrind target/release/examples/commit_driver bulk 20000 DIR
//! # the same load ROUNDS times in one process (fresh database each time):
//! target/release/examples/commit_driver bulk 100000 DIR ROUNDS
//! # commits/s of T threads, each making N single-document commits, on a fresh database:
//! target/release/examples/commit_driver threads T N DIR
//! # commits/s of T threads committing for MS milliseconds (like the benchmark's paired
//! # section: no tail where the last threads commit alone, as with a fixed count each):
//! target/release/examples/commit_driver for T MS DIR
//! ```
//!
//! `DIR` must exist and be on the disk to measure (not a tmpfs); each run makes a fresh
//! database under it and removes it afterwards. The documents are those of
//! `benches/benches/commit.rs` (about 100 bytes as JSON).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use driftdb_core::{Database, TableSchema, Value};

const TABLE: &str = "docs";

fn doc(i: u64) -> Value {
    Value::from(serde_json::json!({
        "id": format!("k{i}"),
        "name": format!("customer-{i:06}"),
        "amount": i,
        "active": i.is_multiple_of(2),
        "tags": ["red", "green", "blue"],
    }))
}

fn fresh(dir: &Path) -> Result<(PathBuf, Database), Box<dyn Error>> {
    let path = dir.join(format!("commit-driver-{}", std::process::id()));
    if path.exists() {
        std::fs::remove_dir_all(&path)?;
    }
    let db = Database::open(&path)?;
    db.create_table(TABLE, TableSchema::new("id"))?;
    Ok((path, db))
}

fn bulk(n: u64, dir: &Path, rounds: u64) -> Result<(), Box<dyn Error>> {
    let data: Vec<Value> = (0..n).map(doc).collect();
    for _ in 0..rounds {
        bulk_once(&data, dir)?;
    }
    Ok(())
}

/// One bulk load, the documents read by reference (`insert_ref`), as the benchmark's.
fn bulk_once(docs: &[Value], dir: &Path) -> Result<(), Box<dyn Error>> {
    let n = docs.len();
    let (path, db) = fresh(dir)?;
    let start = Instant::now();
    let mut tx = db.begin();
    for d in docs {
        tx.insert_ref(TABLE, d)?;
    }
    let inserted = start.elapsed();
    let info = tx.commit()?;
    let took = start.elapsed();
    db.close()?;
    std::fs::remove_dir_all(&path)?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "bulk: {n} docs at seq {} in {:.1} ms (inserts {:.1} ms, commit {:.1} ms)",
        info.seq,
        ms(took),
        ms(inserted),
        ms(took - inserted)
    );
    Ok(())
}

/// `t` threads commit until `per_thread` commits each are made, or, with `for_ms`, until
/// that many milliseconds have passed.
fn threads(t: u64, per_thread: u64, for_ms: Option<u64>, dir: &Path) -> Result<(), Box<dyn Error>> {
    let (path, db) = fresh(dir)?;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let limit = for_ms.map(std::time::Duration::from_millis);
    let start = Instant::now();
    std::thread::scope(|s| -> Result<(), String> {
        let handles: Vec<_> = (0..t)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    let mut made = 0;
                    while limit.map_or(made < per_thread, |l| start.elapsed() < l) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let mut tx = db.begin();
                        tx.insert(TABLE, doc(i)).map_err(|e| e.to_string())?;
                        tx.commit().map_err(|e| e.to_string())?;
                        made += 1;
                    }
                    done.fetch_add(made, Ordering::Relaxed);
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "a committer panicked".to_owned())??;
        }
        Ok(())
    })?;
    let took = start.elapsed().as_secs_f64();
    db.close()?;
    std::fs::remove_dir_all(&path)?;
    let total = done.load(Ordering::Relaxed);
    println!(
        "threads: {t} x {} commits in {:.1} ms: {:.0}/s",
        total / t,
        took * 1e3,
        total as f64 / took
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> Result<u64, Box<dyn Error>> {
        Ok(args.get(i).ok_or("missing argument")?.parse()?)
    };
    match args.first().map(String::as_str) {
        Some("bulk") => {
            let rounds = if args.len() > 3 { num(3)? } else { 1 };
            bulk(num(1)?, Path::new(args.get(2).ok_or("missing DIR")?), rounds)
        }
        Some("threads") => {
            threads(num(1)?, num(2)?, None, Path::new(args.get(3).ok_or("missing DIR")?))
        }
        Some("for") => {
            threads(num(1)?, 0, Some(num(2)?), Path::new(args.get(3).ok_or("missing DIR")?))
        }
        _ => {
            Err("usage: commit_driver bulk N DIR [ROUNDS] | threads T N DIR | for T MS DIR".into())
        }
    }
}
