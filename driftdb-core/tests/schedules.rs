//! Deterministic schedules of two transactions, at every schedule point, commit path included.
//!
//! For each scenario (two small programs of reads, scans and writes) and each isolation level,
//! every interleaving is run: T2's steps (begin, each operation, commit) are placed at every
//! point of T1's run — before its begin, between its operations, and inside its commit, which
//! runs on its own thread and is paused by the test-only commit hook at the two points where
//! another transaction can act meanwhile:
//!
//! - `Validated`: T1 passed its conflict checks and holds the writer lock, without a seq yet
//!   (T2 may begin, read and write, but its commit would wait for the lock, so it is not
//!   placed here);
//! - `Queued`: T1 has its seq and is installed but not durable, so invisible (T2 may also
//!   commit: it then leads the group commit that makes T1 durable too);
//!
//! and after T1's commit returns. Every read, scan and commit outcome is compared with a
//! reference model of the documented semantics (below), and the committed transactions are
//! checked against the definitions: SERIALIZABLE histories must equal some serial execution of
//! the committed transactions; REPEATABLE READ must never let two concurrent transactions both
//! commit a write to one key; a read-only transaction never fails.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use driftdb_core::storage::sim::SimFs;
use driftdb_core::{
    AsOf, CommitPoint, Database, Error, IsolationLevel, Key, Options, TableSchema, Transaction,
};
use serde_json::json;

use IsolationLevel::{ReadCommitted as RC, RepeatableRead as RR, Serializable as SER};

const TABLE: &str = "t";
/// Seq of the setup's last commit (1: CREATE TABLE, 2: the two rows).
const SETUP_SEQ: u64 = 2;

/// One operation of a program. A written value is the sum of everything the transaction read
/// so far plus a constant, so what it writes depends on what it saw.
#[derive(Debug, Clone, Copy)]
enum Step {
    Read(i64),
    /// Read every row (its sum counts as one value read).
    Scan,
    /// PATCH `value` of a live key.
    Set(i64, i64),
    /// INSERT a new key.
    Insert(i64, i64),
}

/// What a step or a commit returned.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Begun,
    Value(Option<i64>),
    Rows(Vec<(i64, i64)>),
    Written,
    /// Committed (`Some(seq)`, `None` when it wrote nothing) or failed with a conflict.
    Commit(Result<Option<u64>, ()>),
}

type Rows = BTreeMap<i64, i64>;

// ---- The engine side ----------------------------------------------------------------------

fn value_of(doc: &driftdb_core::Value) -> i64 {
    driftdb_core::from_value(doc.get("value").unwrap()).unwrap()
}

fn int(key: &Key) -> i64 {
    match key {
        Key::Int(i) => *i,
        other => panic!("unexpected key {other}"),
    }
}

fn all_rows(rows: Vec<driftdb_core::Row>) -> Vec<(i64, i64)> {
    rows.iter().map(|r| (int(&r.key), value_of(&r.doc))).collect()
}

/// Run `step` in `tx`, adding what it read to `sum`.
fn run_step(tx: &mut Transaction<'_>, step: Step, sum: &mut i64) -> Seen {
    match step {
        Step::Read(k) => {
            let v = tx.get(TABLE, &Key::Int(k)).unwrap().map(|d| value_of(&d));
            *sum += v.unwrap_or(0);
            Seen::Value(v)
        }
        Step::Scan => {
            let rows = all_rows(tx.scan(TABLE, |_| true).unwrap());
            *sum += rows.iter().map(|(_, v)| v).sum::<i64>();
            Seen::Rows(rows)
        }
        Step::Set(k, c) => {
            tx.patch(TABLE, k, json!({ "value": *sum + c }).into()).unwrap();
            Seen::Written
        }
        Step::Insert(k, c) => {
            tx.insert(TABLE, json!({ "id": k, "value": *sum + c }).into()).unwrap();
            Seen::Written
        }
    }
}

fn commit_result(result: driftdb_core::Result<driftdb_core::CommitInfo>) -> Seen {
    match result {
        Ok(info) => Seen::Commit(Ok((info.events > 0).then_some(info.seq))),
        Err(Error::Conflict { .. }) => Seen::Commit(Err(())),
        Err(e) => panic!("commit failed: {e}"),
    }
}

// ---- The model ----------------------------------------------------------------------------

/// The documented semantics: versions per key, the last seq given, the last seq visible.
struct Model {
    versions: BTreeMap<i64, Vec<(u64, i64)>>,
    last_seq: u64,
    visible: u64,
}

struct ModelTx {
    level: IsolationLevel,
    start: u64,
    own: Rows,
    inserts: BTreeSet<i64>,
    reads: BTreeSet<i64>,
    scanned: bool,
    sum: i64,
}

impl Model {
    fn new() -> Self {
        let versions = BTreeMap::from([(1, vec![(SETUP_SEQ, 10)]), (2, vec![(SETUP_SEQ, 20)])]);
        Model { versions, last_seq: SETUP_SEQ, visible: SETUP_SEQ }
    }

    fn value_at(&self, key: i64, seq: u64) -> Option<i64> {
        let versions = self.versions.get(&key)?;
        versions.iter().rev().find(|(s, _)| *s <= seq).map(|(_, v)| *v)
    }

    fn changed_since(&self, key: i64, seq: u64) -> bool {
        self.versions.get(&key).and_then(|v| v.last()).is_some_and(|(s, _)| *s > seq)
    }

    fn begin(&self, level: IsolationLevel) -> ModelTx {
        ModelTx {
            level,
            start: self.visible,
            own: Rows::new(),
            inserts: BTreeSet::new(),
            reads: BTreeSet::new(),
            scanned: false,
            sum: 0,
        }
    }

    fn view(&self, tx: &ModelTx) -> u64 {
        if tx.level == RC { self.visible } else { tx.start }
    }

    fn step(&self, tx: &mut ModelTx, step: Step) -> Seen {
        let view = self.view(tx);
        match step {
            Step::Read(k) => {
                tx.reads.insert(k);
                let v = tx.own.get(&k).copied().or_else(|| self.value_at(k, view));
                tx.sum += v.unwrap_or(0);
                Seen::Value(v)
            }
            Step::Scan => {
                tx.scanned = true;
                let mut rows: Rows = self
                    .versions
                    .keys()
                    .filter_map(|&k| Some((k, self.value_at(k, view)?)))
                    .collect();
                rows.extend(tx.own.iter().map(|(k, v)| (*k, *v)));
                tx.sum += rows.values().sum::<i64>();
                Seen::Rows(rows.into_iter().collect())
            }
            Step::Set(k, c) => {
                tx.own.insert(k, tx.sum + c);
                Seen::Written
            }
            Step::Insert(k, c) => {
                tx.own.insert(k, tx.sum + c);
                tx.inserts.insert(k);
                Seen::Written
            }
        }
    }

    /// Validate and install (not yet visible): the commit's seq, or a conflict.
    fn commit(&mut self, tx: &ModelTx) -> Result<Option<u64>, ()> {
        if tx.own.is_empty() {
            return Ok(None);
        }
        let start = tx.start;
        let conflict = match tx.level {
            // A PATCH applies to the latest version; an INSERT needs its key still free.
            RC => tx.inserts.iter().any(|&k| self.value_at(k, u64::MAX).is_some()),
            RR | SER => {
                let written = tx.own.keys().any(|&k| self.changed_since(k, start));
                let read = tx.reads.iter().any(|&k| self.changed_since(k, start));
                let scanned =
                    tx.scanned && self.versions.keys().any(|&k| self.changed_since(k, start));
                written || (tx.level == SER && (read || scanned))
            }
        };
        if conflict {
            return Err(());
        }
        self.last_seq += 1;
        for (&k, &v) in &tx.own {
            self.versions.entry(k).or_default().push((self.last_seq, v));
        }
        Ok(Some(self.last_seq))
    }

    fn durable(&mut self, seq: u64) {
        self.visible = self.visible.max(seq);
    }
}

// ---- Running one schedule -----------------------------------------------------------------

/// One transaction's program and what it observed.
struct Side {
    program: Vec<Step>,
    seen: Vec<Seen>,
    start: u64,
}

fn open() -> Database {
    // A small WAL limit keeps the preallocated WAL chunks (a quarter of it) small in memory.
    let options = Options {
        fs: Arc::new(SimFs::new()),
        wal_size_bytes_max: 256 * 1024,
        ..Options::default()
    };
    let db = Database::open_with("/schedules", options).unwrap();
    db.create_table(TABLE, TableSchema::new("id")).unwrap();
    let mut tx = db.begin();
    tx.insert(TABLE, json!({"id": 1, "value": 10}).into()).unwrap();
    tx.insert(TABLE, json!({"id": 2, "value": 20}).into()).unwrap();
    assert_eq!(tx.commit().unwrap().seq, SETUP_SEQ);
    db
}

/// T2 and its model, stepped by the schedule.
struct Second<'db> {
    side: Side,
    tx: Option<Transaction<'db>>,
    m: Option<ModelTx>,
    sum: i64,
    /// Index of T2's next element: 0 begin, 1..=n steps, n + 1 commit.
    next: usize,
}

impl<'db> Second<'db> {
    fn len(&self) -> usize {
        self.side.program.len() + 2
    }

    /// Run T2's elements scheduled in `slot`.
    fn run(
        &mut self,
        db: &'db Database,
        model: &mut Model,
        slots: &[usize],
        slot: usize,
        level: IsolationLevel,
        ctx: &str,
    ) {
        while self.next < self.len() && slots[self.next] == slot {
            let n = self.side.program.len();
            let (got, want) = if self.next == 0 {
                self.tx = Some(db.begin_with(level));
                self.m = Some(model.begin(level));
                self.side.start = self.tx.as_ref().unwrap().read_seq();
                assert_eq!(self.side.start, model.visible, "{ctx}: T2 begins at the visible seq");
                (Seen::Begun, Seen::Begun)
            } else if self.next <= n {
                let step = self.side.program[self.next - 1];
                let got = run_step(self.tx.as_mut().unwrap(), step, &mut self.sum);
                (got, model.step(self.m.as_mut().unwrap(), step))
            } else {
                let got = commit_result(self.tx.take().unwrap().commit());
                let want = model.commit(self.m.as_ref().unwrap());
                if let Ok(Some(seq)) = want {
                    model.durable(seq);
                }
                (got, Seen::Commit(want))
            };
            assert_eq!(got, want, "{ctx}: T2 element {}", self.next);
            self.side.seen.push(got);
            self.next += 1;
        }
    }
}

/// Run T1 and T2 with T2's element `i` in slot `slots[i]` (see `slot_count`); check each
/// outcome against the model. Returns both sides.
fn run_schedule(
    level: IsolationLevel,
    p1: &[Step],
    p2: &[Step],
    slots: &[usize],
) -> (Side, Side, Rows) {
    let ctx = format!("{level:?} T1 {p1:?} T2 {p2:?} slots {slots:?}");
    let db = open();
    let mut model = Model::new();
    let n1 = p1.len();
    let (validated, queued, after) = (n1 + 2, n1 + 3, n1 + 4);
    let mut t2 = Second {
        side: Side { program: p2.to_vec(), seen: Vec::new(), start: 0 },
        tx: None,
        m: None,
        sum: 0,
        next: 0,
    };
    let mut t1 = Side { program: p1.to_vec(), seen: Vec::new(), start: 0 };

    // T1's begin and steps, T2's elements in the slots before each.
    t2.run(&db, &mut model, slots, 0, level, &ctx);
    let mut tx1 = db.begin_with(level);
    let mut m1 = model.begin(level);
    t1.start = tx1.read_seq();
    t1.seen.push(Seen::Begun);
    let mut sum1 = 0;
    for (i, &step) in p1.iter().enumerate() {
        t2.run(&db, &mut model, slots, i + 1, level, &ctx);
        let got = run_step(&mut tx1, step, &mut sum1);
        assert_eq!(got, model.step(&mut m1, step), "{ctx}: T1 step {i}");
        t1.seen.push(got);
    }
    t2.run(&db, &mut model, slots, n1 + 1, level, &ctx);

    // T1's commit on its own thread, paused at each commit point.
    let want1 = model.commit(&m1);
    let (to_main, from_t1) = mpsc::channel::<Option<CommitPoint>>();
    let (go, wait_go) = mpsc::channel::<()>();
    let wait_go = Mutex::new(wait_go);
    let hook_tx = Mutex::new(to_main.clone());
    db.set_commit_hook(Some(Arc::new(move |point| {
        if std::thread::current().name() == Some("t1-commit") {
            hook_tx.lock().unwrap().send(Some(point)).unwrap();
            wait_go.lock().unwrap().recv().unwrap();
        }
    })));
    let got1 = std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("t1-commit".into())
            .spawn_scoped(s, move || {
                let result = tx1.commit();
                to_main.send(None).unwrap();
                result
            })
            .unwrap();
        let mut points = Vec::new();
        while let Some(point) = from_t1.recv().unwrap() {
            points.push(point);
            let slot = if point == CommitPoint::Validated { validated } else { queued };
            t2.run(&db, &mut model, slots, slot, level, &ctx);
            go.send(()).unwrap();
        }
        let want_points = match want1 {
            Ok(Some(_)) => vec![CommitPoint::Validated, CommitPoint::Queued],
            _ => vec![],
        };
        assert_eq!(points, want_points, "{ctx}: T1's commit points");
        commit_result(handle.join().unwrap())
    });
    db.set_commit_hook(None);
    if let Ok(Some(seq)) = want1 {
        model.durable(seq);
    }
    assert_eq!(got1, Seen::Commit(want1), "{ctx}: T1 commit");
    t1.seen.push(got1);
    // Elements scheduled inside a commit that failed early run now, then the rest.
    for slot in validated..=after {
        t2.run(&db, &mut model, slots, slot, level, &ctx);
    }
    assert_eq!(t2.next, t2.len(), "{ctx}: every T2 element ran");
    let rows = db.read(AsOf::Now).unwrap().scan(TABLE, |_| true).unwrap();
    let rows: Rows = all_rows(rows).into_iter().collect();
    let want: Rows =
        model.versions.keys().filter_map(|&k| Some((k, model.value_at(k, u64::MAX)?))).collect();
    assert_eq!(rows, want, "{ctx}: final state");
    (t1, t2.side, rows)
}

// ---- Checks against the definitions -------------------------------------------------------

fn committed(side: &Side) -> Option<Option<u64>> {
    match side.seen.last() {
        Some(Seen::Commit(Ok(seq))) => Some(*seq),
        _ => None,
    }
}

/// Run `side`'s program alone on `rows`; what it would observe, and the rows after.
fn serial(side: &Side, rows: &mut Rows) -> Vec<Seen> {
    let mut own = rows.clone();
    let mut sum = 0;
    let mut seen = vec![Seen::Begun];
    for &step in &side.program {
        seen.push(match step {
            Step::Read(k) => {
                let v = own.get(&k).copied();
                sum += v.unwrap_or(0);
                Seen::Value(v)
            }
            Step::Scan => {
                sum += own.values().sum::<i64>();
                Seen::Rows(own.iter().map(|(k, v)| (*k, *v)).collect())
            }
            Step::Set(k, c) | Step::Insert(k, c) => {
                own.insert(k, sum + c);
                Seen::Written
            }
        });
    }
    *rows = own;
    seen
}

/// SERIALIZABLE: some order of the committed transactions, run one at a time, gives the same
/// observations and the same final rows.
fn assert_serializable(sides: [&Side; 2], rows: &Rows, ctx: &str) {
    let done: Vec<&Side> = sides.into_iter().filter(|s| committed(s).is_some()).collect();
    let orders: Vec<Vec<&Side>> = match done.as_slice() {
        [a, b] => vec![vec![a, b], vec![b, a]],
        other => vec![other.to_vec()],
    };
    let initial: Rows = BTreeMap::from([(1, 10), (2, 20)]);
    let ok = orders.iter().any(|order| {
        let mut state = initial.clone();
        order.iter().all(|side| {
            let seen = serial(side, &mut state);
            seen[..] == side.seen[..side.seen.len() - 1]
        }) && state == *rows
    });
    assert!(ok, "{ctx}: not serializable");
}

/// REPEATABLE READ: two transactions that both committed writes to one key were not
/// concurrent (one began after the other's commit was visible).
fn assert_no_concurrent_write_write(t1: &Side, t2: &Side, ctx: &str) {
    let keys = |side: &Side| -> BTreeSet<i64> {
        side.program
            .iter()
            .filter_map(|s| match s {
                Step::Set(k, _) | Step::Insert(k, _) => Some(*k),
                _ => None,
            })
            .collect()
    };
    if let (Some(Some(c1)), Some(Some(c2))) = (committed(t1), committed(t2))
        && !keys(t1).is_disjoint(&keys(t2))
    {
        assert!(t2.start >= c1 || t1.start >= c2, "{ctx}: both concurrent writers committed");
    }
}

// ---- The scenarios ------------------------------------------------------------------------

/// Every way to place `n` elements into `slots` slots, in order (non-decreasing), with the
/// last one (the commit) never in slot `forbidden`.
fn placements(n: usize, slots: usize, forbidden: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    fn go(
        n: usize,
        slots: usize,
        forbidden: usize,
        from: usize,
        cur: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if cur.len() == n {
            if cur.last() != Some(&forbidden) {
                out.push(cur.clone());
            }
            return;
        }
        for s in from..slots {
            cur.push(s);
            go(n, slots, forbidden, s, cur, out);
            cur.pop();
        }
    }
    go(n, slots, forbidden, 0, &mut current, &mut out);
    out
}

fn explore(p1: &[Step], p2: &[Step]) -> usize {
    let slot_count = p1.len() + 5;
    let schedules = placements(p2.len() + 2, slot_count, p1.len() + 2);
    for level in [RC, RR, SER] {
        for slots in &schedules {
            let (t1, t2, rows) = run_schedule(level, p1, p2, slots);
            let ctx = format!("{level:?} T1 {p1:?} T2 {p2:?} slots {slots:?}");
            for side in [&t1, &t2] {
                let wrote =
                    side.program.iter().any(|s| matches!(s, Step::Set(..) | Step::Insert(..)));
                assert!(
                    wrote || committed(side).is_some(),
                    "{ctx}: a read-only transaction failed"
                );
            }
            match level {
                SER => assert_serializable([&t1, &t2], &rows, &ctx),
                RR => assert_no_concurrent_write_write(&t1, &t2, &ctx),
                RC => {}
            }
        }
    }
    schedules.len()
}

use Step::{Insert, Read, Scan, Set};

#[test]
fn lost_update_schedules() {
    let n = explore(&[Read(1), Set(1, 1)], &[Read(1), Set(1, 1)]);
    assert!(n > 100);
}

#[test]
fn write_skew_schedules() {
    explore(&[Read(1), Read(2), Set(1, 1)], &[Read(1), Read(2), Set(2, 2)]);
}

#[test]
fn read_skew_schedules() {
    explore(&[Set(1, 100), Set(2, 200)], &[Read(1), Read(2)]);
    explore(&[Read(1), Read(2)], &[Set(1, 100), Set(2, 200)]);
}

#[test]
fn phantom_schedules() {
    explore(&[Scan, Insert(3, 0)], &[Scan, Insert(4, 0)]);
    explore(&[Scan, Set(1, 0)], &[Read(2), Insert(3, 5)]);
}
