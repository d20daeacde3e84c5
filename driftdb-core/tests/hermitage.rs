//! Hermitage (github.com/ept/hermitage) translated to DriftDB: every anomaly test of its
//! `postgres.md`, run at each isolation level, with the outcome PostgreSQL's column records.
//!
//! Each test interleaves two or three transactions in one thread on a fresh database holding
//! table `test` with rows `{id: 1, value: 10}` and `{id: 2, value: 20}`. SQL maps to the API:
//! `select ... where id = N` is `get`; `select ... where <predicate>` is `scan` with the
//! predicate as filter; `update ... where id = N` is `patch`; an `update`/`delete` with a
//! predicate scans, then patches or soft-deletes each row it found; `insert` is `insert`.
//!
//! Where DriftDB differs from PostgreSQL, and why it still forbids every anomaly PostgreSQL
//! forbids at that level:
//! - **No blocking.** A PostgreSQL write that touches a row another open transaction wrote
//!   waits for it. DriftDB buffers writes and never waits; the race is decided at commit. Under
//!   REPEATABLE READ / SERIALIZABLE the loser fails at `commit` with `Error::Conflict` where
//!   PostgreSQL reports "could not serialize access" at the blocked statement (or at commit).
//!   Under READ COMMITTED, where PostgreSQL applies the blocked write after the other commits,
//!   DriftDB applies it at commit on top of the latest version: the same final state.
//! - **Predicates are evaluated by the reader, not re-checked at commit.** PostgreSQL's READ
//!   COMMITTED re-evaluates an UPDATE/DELETE's WHERE clause on the newest row version after
//!   waiting (EvalPlanQual). A DriftDB write names its key; the predicate was evaluated when
//!   the transaction scanned. This matters only in PMP-write under READ COMMITTED, where
//!   PostgreSQL allows the anomaly anyway; see that test.
//! - **Serializable aborts at commit.** PostgreSQL's SSI may abort at a statement; DriftDB's
//!   SERIALIZABLE validates the read set at commit (see `isolation.rs`), so the failing
//!   statement is the `commit`. The transaction that fails is the one PostgreSQL aborts.

// clippy.toml allows unwrap inside #[test] functions only; the helpers get the same allowance.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use driftdb_core::storage::sim::SimFs;
use driftdb_core::{
    ConflictKind, Database, Error, IsolationLevel, Key, Options, TableSchema, Transaction,
};
use serde_json::json;

use IsolationLevel::{ReadCommitted as RC, RepeatableRead as RR, Serializable as SER};

const LEVELS: [IsolationLevel; 3] = [RC, RR, SER];
const TABLE: &str = "test";

/// A fresh in-memory database with Hermitage's table: `1 => 10`, `2 => 20`.
fn setup() -> Database {
    // A small WAL limit keeps the preallocated WAL chunks (a quarter of it) small in memory.
    let options = Options {
        fs: Arc::new(SimFs::new()),
        wal_size_bytes_max: 256 * 1024,
        ..Options::default()
    };
    let db = Database::open_with("/hermitage", options).unwrap();
    db.create_table(TABLE, TableSchema::new("id")).unwrap();
    let mut tx = db.begin();
    insert(&mut tx, 1, 10);
    insert(&mut tx, 2, 20);
    tx.commit().unwrap();
    db
}

type Rows = Vec<(i64, i64)>;

fn value_of(doc: &driftdb_core::Value) -> i64 {
    driftdb_core::from_value(doc.get("value").unwrap()).unwrap()
}

/// `select * from test where id = N`.
fn get(tx: &Transaction<'_>, id: i64) -> Option<i64> {
    tx.get(TABLE, &Key::Int(id)).unwrap().map(|doc| value_of(&doc))
}

/// `select * from test where <pred(value)>`, in id order.
fn select(tx: &Transaction<'_>, pred: impl Fn(i64) -> bool) -> Rows {
    let rows = tx.scan(TABLE, |doc| pred(value_of(doc))).unwrap();
    let id = |key: &Key| match key {
        Key::Int(id) => *id,
        other => panic!("unexpected key {other}"),
    };
    rows.iter().map(|row| (id(&row.key), value_of(&row.doc))).collect()
}

/// `update test set value = V where id = N`.
fn update(tx: &mut Transaction<'_>, id: i64, value: i64) {
    tx.patch(TABLE, id, json!({ "value": value }).into()).unwrap();
}

/// `update test set value = f(value) where <pred(value)>`.
fn update_where(tx: &mut Transaction<'_>, pred: impl Fn(i64) -> bool, f: impl Fn(i64) -> i64) {
    for (id, value) in select(tx, pred) {
        update(tx, id, f(value));
    }
}

/// `delete from test where <pred(value)>`.
fn delete_where(tx: &mut Transaction<'_>, pred: impl Fn(i64) -> bool) {
    for (id, _) in select(tx, pred) {
        tx.soft_delete(TABLE, id).unwrap();
    }
}

/// `insert into test (id, value) values (N, V)`.
fn insert(tx: &mut Transaction<'_>, id: i64, value: i64) {
    tx.insert(TABLE, json!({ "id": id, "value": value }).into()).unwrap();
}

/// What a new transaction sees now.
fn committed(db: &Database) -> Rows {
    select(&db.begin(), |_| true)
}

/// The commit failed with a retryable conflict of `kind` (on `key`, when given) and applied
/// nothing.
fn assert_conflict<T: std::fmt::Debug>(
    result: driftdb_core::Result<T>,
    kind: ConflictKind,
    key: Option<i64>,
) {
    let err = result.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    match err {
        Error::Conflict { kind: k, table, key: got, .. } => {
            assert_eq!((k, table.as_str()), (kind, TABLE));
            assert_eq!(got, key.map(Key::Int));
        }
        other => panic!("want a conflict, got {other}"),
    }
}

/// Run `test` at every level, naming the level when it fails.
fn at_every_level(test: impl Fn(IsolationLevel)) {
    for level in LEVELS {
        eprintln!("isolation level {level:?}");
        test(level);
    }
}

/// G0, write cycles (dirty writes): prevented at every level.
/// PostgreSQL blocks T2's first update until T1 commits; then READ COMMITTED applies T2's
/// updates on top of T1's, and REPEATABLE READ / SERIALIZABLE abort T2.
#[test]
fn g0_write_cycles() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        update(&mut t1, 1, 11);
        update(&mut t2, 1, 12); // PostgreSQL: blocks. DriftDB: buffered.
        update(&mut t1, 2, 21);
        t1.commit().unwrap();
        assert_eq!(committed(&db), [(1, 11), (2, 21)]);
        update(&mut t2, 2, 22);
        let result = t2.commit();
        if level == RC {
            result.unwrap();
            // Both keys in the order T1, T2: no write cycle.
            assert_eq!(committed(&db), [(1, 12), (2, 22)]);
        } else {
            assert_conflict(result, ConflictKind::Write, Some(1));
            assert_eq!(committed(&db), [(1, 11), (2, 21)]);
        }
    });
}

/// G1a, aborted reads: prevented at every level.
#[test]
fn g1a_aborted_reads() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let t2 = db.begin_with(level);
        update(&mut t1, 1, 101);
        assert_eq!(select(&t2, |_| true), [(1, 10), (2, 20)]);
        t1.rollback();
        assert_eq!(select(&t2, |_| true), [(1, 10), (2, 20)]);
        t2.commit().unwrap();
        assert_eq!(committed(&db), [(1, 10), (2, 20)]);
    });
}

/// G1b, intermediate reads: prevented at every level. Under READ COMMITTED T2's second read
/// shows T1's final value; under the snapshot levels it still shows the original.
#[test]
fn g1b_intermediate_reads() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let t2 = db.begin_with(level);
        update(&mut t1, 1, 101);
        assert_eq!(select(&t2, |_| true), [(1, 10), (2, 20)]);
        update(&mut t1, 1, 11);
        t1.commit().unwrap();
        let seen = select(&t2, |_| true);
        if level == RC {
            assert_eq!(seen, [(1, 11), (2, 20)]);
        } else {
            assert_eq!(seen, [(1, 10), (2, 20)]);
        }
        t2.commit().unwrap();
    });
}

/// G1c, circular information flow: prevented at every level (neither transaction sees the
/// other's write). Under SERIALIZABLE the two commits would form a cycle of two
/// anti-dependencies (T1 read 2 before T2 wrote it, T2 read 1 before T1 wrote it), so the
/// second committer fails, as in PostgreSQL's SSI (`postgres.md` runs this one at READ
/// COMMITTED only).
#[test]
fn g1c_circular_information_flow() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        update(&mut t1, 1, 11);
        update(&mut t2, 2, 22);
        assert_eq!(get(&t1, 2), Some(20));
        assert_eq!(get(&t2, 1), Some(10));
        t1.commit().unwrap();
        let result = t2.commit();
        if level == SER {
            assert_conflict(result, ConflictKind::Read, Some(1));
            assert_eq!(committed(&db), [(1, 11), (2, 20)]);
        } else {
            result.unwrap();
            assert_eq!(committed(&db), [(1, 11), (2, 22)]);
        }
    });
}

/// OTV, observed transaction vanishes: prevented at every level. Under READ COMMITTED T3 sees
/// T1's writes, then T2's; it never sees T1's write to one key and not to the other.
#[test]
fn otv_observed_transaction_vanishes() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        let t3 = db.begin_with(level);
        update(&mut t1, 1, 11);
        update(&mut t1, 2, 19);
        update(&mut t2, 1, 12); // PostgreSQL: blocks until T1 commits.
        t1.commit().unwrap();
        let rc = level == RC;
        assert_eq!(get(&t3, 1), Some(if rc { 11 } else { 10 }));
        update(&mut t2, 2, 18);
        assert_eq!(get(&t3, 2), Some(if rc { 19 } else { 20 }));
        let result = t2.commit();
        if rc {
            result.unwrap();
        } else {
            // PostgreSQL aborts T2 once T1 commits ("could not serialize access").
            assert_conflict(result, ConflictKind::Write, Some(1));
        }
        assert_eq!(get(&t3, 2), Some(if rc { 18 } else { 20 }));
        assert_eq!(get(&t3, 1), Some(if rc { 12 } else { 10 }));
        t3.commit().unwrap();
    });
}

/// PMP, predicate-many-preceders: allowed under READ COMMITTED (T1's second predicate read sees
/// the new row), prevented under REPEATABLE READ and SERIALIZABLE.
#[test]
fn pmp_predicate_many_preceders() {
    at_every_level(|level| {
        let db = setup();
        let t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        assert_eq!(select(&t1, |v| v == 30), []);
        insert(&mut t2, 3, 30);
        t2.commit().unwrap();
        let seen = select(&t1, |v| v % 3 == 0);
        if level == RC {
            assert_eq!(seen, [(3, 30)]);
        } else {
            assert_eq!(seen, []);
        }
        t1.commit().unwrap(); // read-only: never fails
    });
}

/// PMP for write predicates: allowed under READ COMMITTED, prevented under REPEATABLE READ and
/// SERIALIZABLE (T2 fails: it deletes a row T1 changed).
///
/// Under READ COMMITTED the outcome differs from PostgreSQL's. There T2's DELETE blocks, then
/// re-evaluates `value = 20` on T1's new version of row 2 (now 30) and deletes nothing. In
/// DriftDB T2 chose row 2 when it scanned (it still held 20) and the delete names that key, so
/// at commit row 2 (now 30) is deleted. Both are the allowed anomaly: T2 acts on a predicate
/// read that T1 made stale. As in PostgreSQL, T2's next predicate read shows row 1 at 20.
#[test]
fn pmp_write_predicates() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        update_where(&mut t1, |_| true, |v| v + 10);
        delete_where(&mut t2, |v| v == 20); // PostgreSQL: blocks.
        t1.commit().unwrap();
        let seen = select(&t2, |v| v == 20);
        let result = t2.commit();
        if level == RC {
            assert_eq!(seen, [(1, 20)]);
            result.unwrap();
            assert_eq!(committed(&db), [(1, 20)]);
        } else {
            assert_eq!(seen, []);
            assert_conflict(result, ConflictKind::Write, Some(2));
            assert_eq!(committed(&db), [(1, 20), (2, 30)]);
        }
    });
}

/// P4, lost update: allowed under READ COMMITTED (T2 overwrites T1), prevented under
/// REPEATABLE READ and SERIALIZABLE (first committer wins).
#[test]
fn p4_lost_update() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        assert_eq!(get(&t1, 1), Some(10));
        assert_eq!(get(&t2, 1), Some(10));
        update(&mut t1, 1, 11);
        update(&mut t2, 1, 11); // PostgreSQL: blocks.
        t1.commit().unwrap();
        let result = t2.commit();
        if level == RC {
            result.unwrap();
        } else {
            assert_conflict(result, ConflictKind::Write, Some(1));
        }
        assert_eq!(committed(&db), [(1, 11), (2, 20)]);
    });
}

/// G-single, read skew: allowed under READ COMMITTED (T1 sees 1 => 10 and then 2 => 18),
/// prevented under REPEATABLE READ and SERIALIZABLE (T1 sees 2 => 20).
#[test]
fn g_single_read_skew() {
    at_every_level(|level| {
        let db = setup();
        let t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        assert_eq!(get(&t1, 1), Some(10));
        assert_eq!(get(&t2, 1), Some(10));
        assert_eq!(get(&t2, 2), Some(20));
        update(&mut t2, 1, 12);
        update(&mut t2, 2, 18);
        t2.commit().unwrap();
        assert_eq!(get(&t1, 2), Some(if level == RC { 18 } else { 20 }));
        t1.commit().unwrap();
    });
}

/// G-single with predicate dependencies: prevented under REPEATABLE READ and SERIALIZABLE
/// (T1's second predicate read returns nothing); READ COMMITTED sees T2's row.
#[test]
fn g_single_dependencies() {
    at_every_level(|level| {
        let db = setup();
        let t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        assert_eq!(select(&t1, |v| v % 5 == 0), [(1, 10), (2, 20)]);
        update_where(&mut t2, |v| v == 10, |_| 12);
        t2.commit().unwrap();
        let seen = select(&t1, |v| v % 3 == 0);
        assert_eq!(seen, if level == RC { vec![(1, 12)] } else { vec![] });
        t1.commit().unwrap();
    });
}

/// G-single with a write predicate (`postgres.md`'s "test using write predicate"):
/// prevented under REPEATABLE READ and SERIALIZABLE, where T1's delete of the row T2 changed
/// fails (at commit in DriftDB; at the DELETE in PostgreSQL). Under READ COMMITTED T1's
/// predicate read sees T2's values, matches nothing and deletes nothing.
#[test]
fn g_single_write_1() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        assert_eq!(get(&t1, 1), Some(10));
        assert_eq!(select(&t2, |_| true), [(1, 10), (2, 20)]);
        update(&mut t2, 1, 12);
        update(&mut t2, 2, 18);
        t2.commit().unwrap();
        delete_where(&mut t1, |v| v == 20);
        let result = t1.commit();
        if level == RC {
            result.unwrap();
        } else {
            assert_conflict(result, ConflictKind::Write, Some(2));
        }
        assert_eq!(committed(&db), [(1, 12), (2, 18)]);
    });
}

/// G-single-write-2: T1 deletes a row T2 is about to update, then rolls back; T2 commits at
/// every level. (PostgreSQL blocks T2's second update on T1's row lock until the rollback;
/// DriftDB does not block, and T1 never committed, so nothing conflicts.)
#[test]
fn g_single_write_2() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        assert_eq!(get(&t1, 1), Some(10));
        assert_eq!(select(&t2, |_| true), [(1, 10), (2, 20)]);
        update(&mut t2, 1, 12);
        delete_where(&mut t1, |v| v == 20);
        assert_eq!(get(&t1, 2), None);
        update(&mut t2, 2, 18);
        t1.rollback();
        t2.commit().unwrap();
        assert_eq!(committed(&db), [(1, 12), (2, 18)]);
    });
}

/// G2-item, write skew on disjoint keys: allowed under READ COMMITTED and REPEATABLE READ,
/// prevented under SERIALIZABLE (the second committer fails: it read a key the first wrote).
#[test]
fn g2_item_write_skew() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        for tx in [&t1, &t2] {
            assert_eq!((get(tx, 1), get(tx, 2)), (Some(10), Some(20)));
        }
        update(&mut t1, 1, 11);
        update(&mut t2, 2, 21);
        t1.commit().unwrap();
        let result = t2.commit();
        if level == SER {
            assert_conflict(result, ConflictKind::Read, Some(1));
            assert_eq!(committed(&db), [(1, 11), (2, 20)]);
        } else {
            result.unwrap();
            assert_eq!(committed(&db), [(1, 11), (2, 21)]);
        }
    });
}

/// G2, anti-dependency cycles over a predicate: allowed under READ COMMITTED and REPEATABLE
/// READ (both inserts commit), prevented under SERIALIZABLE (the second fails: it scanned the
/// table the first changed).
#[test]
fn g2_anti_dependency_cycles() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        assert_eq!(select(&t1, |v| v % 3 == 0), []);
        assert_eq!(select(&t2, |v| v % 3 == 0), []);
        insert(&mut t1, 3, 30);
        insert(&mut t2, 4, 42);
        t1.commit().unwrap();
        let result = t2.commit();
        let seen = select(&db.begin(), |v| v % 3 == 0);
        if level == SER {
            assert_conflict(result, ConflictKind::Scan, None);
            assert_eq!(seen, [(3, 30)]);
        } else {
            result.unwrap();
            assert_eq!(seen, [(3, 30), (4, 42)]);
        }
    });
}

/// G2 with two anti-dependency edges (Fekete et al.): T3, read-only, sees T2's write but not
/// T1's, and T1 read before T2 wrote: T1 -> T2 -> T3 -> T1. Allowed under READ COMMITTED and
/// REPEATABLE READ; under SERIALIZABLE T1 fails (at commit; PostgreSQL fails its UPDATE).
#[test]
fn g2_two_edges() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        assert_eq!(select(&t1, |_| true), [(1, 10), (2, 20)]);
        let mut t2 = db.begin_with(level);
        update_where(&mut t2, |v| v == 20, |v| v + 5);
        t2.commit().unwrap();
        let t3 = db.begin_with(level);
        assert_eq!(select(&t3, |_| true), [(1, 10), (2, 25)]);
        t3.commit().unwrap();
        update(&mut t1, 1, 0);
        let result = t1.commit();
        if level == SER {
            assert_conflict(result, ConflictKind::Scan, None);
            assert_eq!(committed(&db), [(1, 10), (2, 25)]);
        } else {
            result.unwrap();
            assert_eq!(committed(&db), [(1, 0), (2, 25)]);
        }
    });
}

/// Not in Hermitage: a transaction that only reads never fails at commit, at any level,
/// however much changed under it; and one that fails applied nothing.
#[test]
fn read_only_transactions_never_fail() {
    at_every_level(|level| {
        let db = setup();
        let reader = db.begin_with(level);
        assert_eq!(select(&reader, |_| true), [(1, 10), (2, 20)]);
        assert!(reader.tables().contains(&TABLE.to_owned()));
        reader.schema(TABLE).unwrap();
        for v in 0..5 {
            let mut w = db.begin_with(level);
            update(&mut w, 1, v);
            insert(&mut w, 10 + v, v);
            w.commit().unwrap();
        }
        db.drop_table(TABLE).unwrap();
        let after = reader.get(TABLE, &Key::Int(2));
        if level == RC {
            assert!(matches!(after, Err(Error::NoSuchTable { .. })), "{after:?}");
        } else {
            assert_eq!(after.unwrap().map(|doc| value_of(&doc)), Some(20));
        }
        let info = reader.commit().unwrap();
        assert_eq!(info.events, 0);
    });
}

/// Not in Hermitage: concurrent PATCHes of different fields of one row. READ COMMITTED merges
/// each into the latest committed version, so both fields survive (nothing is lost but the
/// order); the snapshot levels let the first committer win.
#[test]
fn patches_merge_into_the_latest_version_under_read_committed() {
    at_every_level(|level| {
        let db = setup();
        let mut t1 = db.begin_with(level);
        let mut t2 = db.begin_with(level);
        t1.patch(TABLE, 1, json!({ "a": 1 }).into()).unwrap();
        t2.patch(TABLE, 1, json!({ "b": 2 }).into()).unwrap();
        t1.commit().unwrap();
        let result = t2.commit();
        let row = db.get(TABLE, &Key::Int(1)).unwrap().unwrap();
        if level == RC {
            result.unwrap();
            assert_eq!(row, json!({ "id": 1, "value": 10, "a": 1, "b": 2 }).into());
        } else {
            assert_conflict(result, ConflictKind::Write, Some(1));
            assert_eq!(row, json!({ "id": 1, "value": 10, "a": 1 }).into());
        }
    });
}
