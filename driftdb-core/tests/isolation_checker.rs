//! A randomized, checked workload: many threads run list-append transactions on a shared
//! database, the observed history goes through an Elle-style checker (`elle.rs`), and no
//! anomaly the isolation level forbids may appear.
//!
//! The lists live in documents of table `lists`: `{id: k, items: [...]}`. A transaction does
//! one to four operations on a few hot keys: *read* a list (`get`), or *append* a unique
//! element to one (read the list, then PATCH `items` with the list plus the element). Reads
//! of a key the transaction already appended to are not made, so every recorded read observed
//! a committed version (or, wrongly, an uncommitted one, which the checker would report).
//!
//! The checker is itself tested: synthetic histories with known anomalies, and a run with the
//! engine's conflict checks switched off (the test-only `Database::set_conflict_checks`),
//! where REPEATABLE READ loses updates and SERIALIZABLE lets write skew through: the checker
//! must report them.
//!
//! `DRIFTDB_CHECKER_TXNS` overrides the transactions per thread (default 300).

// clippy.toml allows unwrap/indexing inside #[test] functions only; the workload and the
// checker get the same allowance.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
#[path = "isolation_checker/elle.rs"]
mod elle;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use driftdb_core::{Database, Error, IsolationLevel, Key, TableSchema, Value};
use elle::{Kind, Op, Txn, check};
use serde_json::json;

use common::Rng;

const TABLE: &str = "lists";
const KEYS: u32 = 5;
const THREADS: u64 = 6;

fn txns_per_thread() -> usize {
    std::env::var("DRIFTDB_CHECKER_TXNS").ok().and_then(|s| s.parse().ok()).unwrap_or(300)
}

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table(TABLE, TableSchema::new("id")).unwrap();
    let mut tx = db.begin();
    for k in 0..KEYS {
        tx.insert(TABLE, json!({"id": k, "items": []}).into()).unwrap();
    }
    tx.commit().unwrap();
    (dir, db)
}

fn read_list(tx: &driftdb_core::Transaction<'_>, key: u32) -> Vec<u64> {
    let doc = tx.get(TABLE, &Key::Int(i64::from(key))).unwrap().unwrap();
    driftdb_core::from_value(doc.get("items").unwrap()).unwrap()
}

/// Statistics of one run.
#[derive(Debug, Default)]
struct Stats {
    committed: usize,
    conflicts: usize,
}

/// Run the workload at `level` and return the history, the last read of every key included
/// (as a final committed read-only transaction).
fn run(db: &Database, level: IsolationLevel, seed: u64) -> (Vec<Txn>, Stats) {
    let next_elem = AtomicU64::new(1);
    let per_thread = txns_per_thread();
    let mut history: Vec<Txn> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let next_elem = &next_elem;
                s.spawn(move || {
                    let mut rng = Rng(seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    (0..per_thread)
                        .map(|_| one_txn(db, level, &mut rng, next_elem))
                        .collect::<Vec<Txn>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<Txn>>()
    });
    let mut stats = Stats::default();
    for txn in &history {
        match txn.committed {
            Some(_) => stats.committed += 1,
            None => stats.conflicts += 1,
        }
    }
    let last = db.begin_with(level);
    let ops = (0..KEYS).map(|k| Op::Read(k, read_list(&last, k))).collect();
    history.push(Txn { ops, committed: Some(db.last_seq() + 1), written: BTreeMap::new() });
    (history, stats)
}

/// One transaction of one to four operations; commit, and record what it observed.
fn one_txn(db: &Database, level: IsolationLevel, rng: &mut Rng, next: &AtomicU64) -> Txn {
    let mut tx = db.begin_with(level);
    let mut txn = Txn::default();
    for _ in 0..1 + rng.below(4) {
        let key = rng.below(u64::from(KEYS)) as u32;
        let mine = txn.written.contains_key(&key);
        if rng.below(2) == 0 {
            if !mine {
                txn.ops.push(Op::Read(key, read_list(&tx, key)));
            }
        } else {
            let mut list = read_list(&tx, key);
            if !mine {
                txn.ops.push(Op::Read(key, list.clone()));
            }
            let elem = next.fetch_add(1, Ordering::Relaxed);
            list.push(elem);
            let items = Value::from(json!(list));
            let mut patch = driftdb_core::Map::new();
            patch.insert("items".into(), items);
            tx.patch(TABLE, i64::from(key), Value::Map(patch)).unwrap();
            txn.ops.push(Op::Append(key, elem));
            txn.written.insert(key, list);
        }
        if rng.below(3) == 0 {
            std::thread::yield_now();
        }
    }
    match tx.commit() {
        Ok(info) => txn.committed = Some(info.seq),
        Err(e @ Error::Conflict { .. }) => {
            // READ COMMITTED re-applies the PATCH on the latest list (no key vanishes here).
            assert_ne!(level, IsolationLevel::ReadCommitted, "{e}");
            assert!(!txn.written.is_empty(), "a read-only transaction failed: {e}");
        }
        Err(e) => panic!("commit failed: {e}"),
    }
    txn
}

/// Run at `level` with conflict checks on: nothing forbidden may show up.
fn run_clean(level: IsolationLevel, seed: u64) {
    let (_dir, db) = open();
    let (history, stats) = run(&db, level, seed);
    let report = check(&history);
    eprintln!("{level:?}: {stats:?}, anomalies {:?}", report.counts);
    let forbidden = report.forbidden(level);
    assert!(forbidden.is_empty(), "{level:?} allowed forbidden anomalies: {forbidden:#?}");
    assert!(stats.committed > history.len() / 4, "too few commits: {stats:?}");
}

#[test]
fn read_committed_has_no_g0_or_g1() {
    run_clean(IsolationLevel::ReadCommitted, 1);
}

#[test]
fn repeatable_read_has_no_g_single_or_lost_update() {
    run_clean(IsolationLevel::RepeatableRead, 2);
}

#[test]
fn serializable_has_no_dependency_cycle() {
    run_clean(IsolationLevel::Serializable, 3);
}

/// With the conflict checks off, REPEATABLE READ and SERIALIZABLE read a snapshot but write
/// as READ COMMITTED does: lost updates and anti-dependency cycles get through, and the
/// checker must see them.
#[test]
fn checker_reports_anomalies_when_conflict_checks_are_off() {
    for (level, seed) in [(IsolationLevel::RepeatableRead, 4), (IsolationLevel::Serializable, 5)] {
        let (_dir, db) = open();
        db.set_conflict_checks(false);
        let (history, stats) = run(&db, level, seed);
        let report = check(&history);
        eprintln!("{level:?} unchecked: {stats:?}, anomalies {:?}", report.counts);
        assert_eq!(stats.conflicts, 0, "no commit may fail with the checks off");
        assert!(!report.forbidden(level).is_empty(), "{level:?}: the checker saw nothing");
        let count = |kind| report.counts.get(&kind).copied().unwrap_or(0);
        assert!(count(Kind::LostUpdate) + count(Kind::GSingle) > 0, "{:?}", report.counts);
        // Nothing the engine still guarantees without the checks is reported.
        let rc = report.forbidden(IsolationLevel::ReadCommitted);
        assert!(rc.is_empty(), "{rc:#?}");
    }
}

// ---- The checker on histories with known anomalies ---------------------------------------

fn txn(ops: Vec<Op>, seq: Option<u64>) -> Txn {
    let mut written: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut last_read: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for op in &ops {
        match op {
            Op::Read(k, list) => {
                last_read.insert(*k, list.clone());
            }
            Op::Append(k, e) => {
                let base = written.get(k).or(last_read.get(k)).cloned().unwrap_or_default();
                let mut list = base;
                list.push(*e);
                written.insert(*k, list);
            }
        }
    }
    Txn { ops, committed: seq, written }
}

fn kinds(txns: &[Txn]) -> Vec<Kind> {
    check(txns).counts.into_keys().collect()
}

#[test]
fn checker_accepts_a_serial_history() {
    let h = [
        txn(vec![Op::Read(0, vec![]), Op::Append(0, 1)], Some(1)),
        txn(vec![Op::Read(0, vec![1]), Op::Append(0, 2), Op::Read(1, vec![])], Some(2)),
        txn(vec![Op::Read(0, vec![1, 2]), Op::Read(1, vec![])], Some(3)),
    ];
    assert_eq!(kinds(&h), []);
}

#[test]
fn checker_finds_write_skew_as_g2_only() {
    // T0 reads x, appends to y; T1 reads y, appends to x: each misses the other's write.
    let h = [
        txn(vec![Op::Read(0, vec![]), Op::Read(1, vec![]), Op::Append(1, 1)], Some(1)),
        txn(vec![Op::Read(1, vec![]), Op::Read(0, vec![]), Op::Append(0, 2)], Some(2)),
        txn(vec![Op::Read(0, vec![2]), Op::Read(1, vec![1])], Some(3)),
    ];
    assert_eq!(kinds(&h), [Kind::G2]);
}

#[test]
fn checker_finds_read_skew_as_g_single() {
    // T1 writes x and y; T0 read x before T1 and y after it.
    let h = [
        txn(vec![Op::Read(0, vec![]), Op::Read(1, vec![2])], Some(2)),
        txn(
            vec![Op::Read(0, vec![]), Op::Append(0, 1), Op::Read(1, vec![]), Op::Append(1, 2)],
            Some(1),
        ),
    ];
    assert_eq!(kinds(&h), [Kind::GSingle, Kind::G2]);
}

#[test]
fn checker_finds_lost_updates() {
    // Both read x = [] and append; the second overwrote the first.
    let h = [
        txn(vec![Op::Read(0, vec![]), Op::Append(0, 1)], Some(1)),
        txn(vec![Op::Read(0, vec![]), Op::Append(0, 2)], Some(2)),
        txn(vec![Op::Read(0, vec![2])], Some(3)),
    ];
    let found = kinds(&h);
    assert!(found.contains(&Kind::LostUpdate) && found.contains(&Kind::GSingle), "{found:?}");
}

#[test]
fn checker_finds_aborted_intermediate_and_garbage_reads() {
    let h = [
        txn(vec![Op::Read(0, vec![]), Op::Append(0, 1)], None),
        txn(vec![Op::Read(1, vec![]), Op::Append(1, 2), Op::Append(1, 3)], Some(1)),
        txn(vec![Op::Read(0, vec![1]), Op::Read(1, vec![2]), Op::Read(2, vec![99])], Some(2)),
    ];
    let found = kinds(&h);
    for kind in [Kind::G1a, Kind::G1b, Kind::Garbage] {
        assert!(found.contains(&kind), "{kind:?} not found in {found:?}");
    }
}

#[test]
fn checker_finds_g0_and_g1c() {
    // Write cycle with blind appends: x = [1, 2] (T0 then T1), y = [3, 4] (T1 then T0).
    let blind = |ops: Vec<Op>, written: [(u32, Vec<u64>); 2], seq| Txn {
        ops,
        committed: Some(seq),
        written: written.into_iter().collect(),
    };
    let g0 = [
        blind(vec![Op::Append(0, 1), Op::Append(1, 4)], [(0, vec![1]), (1, vec![3, 4])], 1),
        blind(vec![Op::Append(0, 2), Op::Append(1, 3)], [(0, vec![1, 2]), (1, vec![3])], 2),
        txn(vec![Op::Read(0, vec![1, 2]), Op::Read(1, vec![3, 4])], Some(3)),
    ];
    assert!(kinds(&g0).contains(&Kind::G0), "{:?}", kinds(&g0));
    // Circular information flow: each read the other's write.
    let g1c = [
        txn(vec![Op::Read(1, vec![2]), Op::Append(0, 1)], Some(1)),
        txn(vec![Op::Read(0, vec![1]), Op::Append(1, 2)], Some(2)),
    ];
    assert!(kinds(&g1c).contains(&Kind::G1c), "{:?}", kinds(&g1c));
}
