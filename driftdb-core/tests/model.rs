//! Reference-model property test.
//!
//! Random histories over three tables (INSERT, PATCH, SOFT_DELETE, DROP/CREATE of one table,
//! commit, rollback, reopen, clock ticks, and one-operation transactions committed by another
//! writer while a transaction is open) run against the engine and against a plain in-memory
//! model that keeps the whole state after every seq. Every operation's outcome (success or the
//! exact refusal) must match the model. Transactions run at the default level, REPEATABLE READ:
//! a commit fails with the conflict the model predicts when a key it writes, or a table it
//! writes, changed since it began (first committer wins), and otherwise is re-validated and
//! re-applied on the latest state. After every commit, after every reopen and at the end, reads `AS OF` seqs
//! and times, scans and histories must equal the model.
//!
//! Two back ends: a real directory (clean close and reopen), and the simulated file system,
//! where a reopen is a clean close, a process crash (everything written survives, no final
//! checkpoint) or a power cut (only what was fsynced survives); acknowledged commits must
//! survive all three.
//!
//! `PROPTEST_CASES` overrides the number of cases (default 64 per back end).

// clippy.toml allows unwrap/indexing inside #[test] functions only; the model and the helpers
// of this test file get the same allowance.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use driftdb_core::storage::fs::Fs;
use driftdb_core::storage::sim::SimFs;
use driftdb_core::{
    AsOf, ChangeKind, CommitInfo, ConflictKind, Database, Error, HistoryEntry, Key, Map, Options,
    Row, TableSchema, Text, Transaction, Value,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type TestResult<T = ()> = Result<T, TestCaseError>;

const TABLES: [&str; 3] = ["t0", "t1", "t2"];
/// The table that `DropTable` and `CreateTable` act on.
const DDL_TABLE: usize = 2;

/// Every key the generator can produce (ints and strings; `"0"` is not `0`).
fn key_domain() -> Vec<Key> {
    let mut keys: Vec<Key> = (0..6).map(Key::Int).collect();
    keys.extend(["0", "a", "b"].map(Key::from));
    keys
}

// ---- Generated histories -----------------------------------------------------------------

/// How a patch treats the primary key field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkInPatch {
    /// The patch does not mention it.
    Absent,
    /// The patch repeats the key (allowed).
    Same,
    /// The patch removes it (refused).
    Null,
    /// The patch changes it (refused).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reopen {
    /// `close()` then open (which loads the index files the close wrote).
    Clean,
    /// `close()`, remove every index file, then open (which rebuilds the indexes).
    CleanWithoutIndexFiles,
    /// Open what the process wrote, without the final checkpoint (simulated fs only).
    ProcessCrash,
    /// Open only what was fsynced (simulated fs only).
    PowerCut,
}

/// An operation inside a transaction. With `live`, a PATCH or SOFT_DELETE is aimed at a key
/// that the transaction sees live (the first at or after `key`), if the table has one.
#[derive(Debug, Clone)]
enum Write {
    Insert { table: usize, key: Key, fields: Map },
    Patch { table: usize, key: Key, live: bool, patch: Map, pk: PkInPatch },
    SoftDelete { table: usize, key: Key, live: bool },
    DropTable,
    CreateTable,
}

#[derive(Debug, Clone)]
enum Op {
    /// A write in the open transaction (one is begun when none is open).
    Write(Write),
    /// A transaction of one write, begun and committed at once by another writer; any open
    /// transaction stays open and must be re-validated at its commit.
    Concurrent(Write),
    Commit,
    Rollback,
    Reopen(Reopen),
    /// Let the clock move, so commits get distinct times.
    Tick,
}

impl Write {
    fn table(&self) -> usize {
        match self {
            Write::Insert { table, .. }
            | Write::Patch { table, .. }
            | Write::SoftDelete { table, .. } => *table,
            Write::DropTable | Write::CreateTable => DDL_TABLE,
        }
    }

    fn key(&self) -> Option<&Key> {
        match self {
            Write::Insert { key, .. }
            | Write::Patch { key, .. }
            | Write::SoftDelete { key, .. } => Some(key),
            Write::DropTable | Write::CreateTable => None,
        }
    }

    /// This write, aimed at a live key of `rows` when it asks to be.
    fn aim(&self, rows: Option<&BTreeMap<Key, Value>>) -> Write {
        let mut write = self.clone();
        if let Write::Patch { key, live, .. } | Write::SoftDelete { key, live, .. } = &mut write
            && *live
            && let Some(rows) = rows
            && let Some(found) = rows.range(&*key..).chain(rows.iter()).next()
        {
            *key = found.0.clone();
        }
        write
    }

    /// The document an INSERT carries.
    fn document(key: &Key, fields: &Map) -> Value {
        let mut doc = fields.clone();
        doc.insert("id".into(), key.to_value());
        Value::Map(doc)
    }

    /// The merge patch a PATCH carries.
    fn patch(key: &Key, patch: &Map, pk: PkInPatch) -> Value {
        let mut patch = patch.clone();
        let id = match pk {
            PkInPatch::Absent => None,
            PkInPatch::Same => Some(key.to_value()),
            PkInPatch::Null => Some(Value::Null),
            PkInPatch::Other => Some(Value::String("other".into())),
        };
        if let Some(id) = id {
            patch.insert("id".into(), id);
        }
        Value::Map(patch)
    }
}

/// Mostly two hot keys, so that writes collide.
fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        8 => prop::sample::select(vec![Key::Int(0), Key::from("a")]),
        2 => (1i64..6).prop_map(Key::Int),
        1 => prop::sample::select(vec!["0", "b"]).prop_map(Key::from),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-2i64..3).prop_map(Value::Int),
        prop::sample::select(vec!["x", "y", ""]).prop_map(|s| Value::String(s.into())),
        Just(Value::Float(0.5)),
        Just(Value::Array(vec![Value::Int(1), Value::String("s".into())])),
    ]
}

/// A small map, whose fields may be null (in a patch: remove that nested field).
fn nested() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![3 => scalar(), 1 => Just(Value::Null)];
    prop::collection::btree_map(
        prop::sample::select(vec!["x", "y"]).prop_map(Text::from),
        leaf,
        0..3,
    )
    .prop_map(Value::Map)
}

fn field_name() -> impl Strategy<Value = Text> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(Text::from)
}

fn doc_fields() -> impl Strategy<Value = Map> {
    let value = prop_oneof![4 => scalar(), 2 => nested(), 1 => Just(Value::Null)];
    prop::collection::btree_map(field_name(), value, 0..4)
}

fn patch_fields() -> impl Strategy<Value = Map> {
    let value = prop_oneof![3 => scalar(), 3 => nested(), 2 => Just(Value::Null)];
    prop::collection::btree_map(field_name(), value, 0..4)
}

fn pk_in_patch() -> impl Strategy<Value = PkInPatch> {
    prop_oneof![
        12 => Just(PkInPatch::Absent),
        1 => Just(PkInPatch::Same),
        1 => Just(PkInPatch::Null),
        1 => Just(PkInPatch::Other),
    ]
}

/// Mostly aim at a live key, sometimes at any key (to be refused).
fn live() -> impl Strategy<Value = bool> {
    prop_oneof![3 => Just(true), 1 => Just(false)]
}

fn a_write() -> impl Strategy<Value = Write> {
    let table = 0..TABLES.len();
    prop_oneof![
        6 => (table.clone(), key(), doc_fields())
            .prop_map(|(table, key, fields)| Write::Insert { table, key, fields }),
        5 => (table.clone(), key(), live(), patch_fields(), pk_in_patch())
            .prop_map(|(table, key, live, patch, pk)| Write::Patch { table, key, live, patch, pk }),
        2 => (table, key(), live())
            .prop_map(|(table, key, live)| Write::SoftDelete { table, key, live }),
        2 => Just(Write::DropTable),
        2 => Just(Write::CreateTable),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        17 => a_write().prop_map(Op::Write),
        3 => a_write().prop_map(Op::Concurrent),
        4 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => prop_oneof![
            Just(Reopen::Clean),
            Just(Reopen::CleanWithoutIndexFiles),
            Just(Reopen::ProcessCrash),
            Just(Reopen::PowerCut)
        ]
            .prop_map(Op::Reopen),
        1 => Just(Op::Tick),
    ]
}

// ---- The model: tests/model/reference.rs -------------------------------------------------

#[path = "model/reference.rs"]
mod reference;
use reference::{Model, ModelState, ModelTx, Outcome, merge_patch};

// ---- Comparing the engine with the model -------------------------------------------------

fn ok<T>(result: driftdb_core::Result<T>, what: &str) -> TestResult<T> {
    result.map_err(|e| TestCaseError::fail(format!("{what}: unexpected error: {e}")))
}

/// Classify an engine result, checking that an error names the right table and key.
fn outcome<T>(result: &driftdb_core::Result<T>, table: &str, key: Option<&Key>) -> Outcome {
    let right_key = |k: &Key| key == Some(k);
    match result {
        Ok(_) => Outcome::Ok,
        Err(Error::NoSuchTable { table: t }) if t == table => Outcome::NoSuchTable,
        Err(Error::TableExists { table: t }) if t == table => Outcome::TableExists,
        Err(Error::DuplicateKey { table: t, key: k }) if t == table && right_key(k) => {
            Outcome::DuplicateKey
        }
        Err(Error::KeyNotFound { table: t, key: k }) if t == table && right_key(k) => {
            Outcome::KeyNotFound
        }
        Err(Error::InvalidInput { .. }) => Outcome::Invalid,
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}

fn live_tables(state: &ModelState) -> Vec<String> {
    let mut names: Vec<String> = TABLES
        .iter()
        .zip(&state.tables)
        .filter(|(_, rows)| rows.is_some())
        .map(|(name, _)| (*name).to_owned())
        .collect();
    names.sort();
    names
}

fn rows_of(rows: &BTreeMap<Key, Value>, filter: impl Fn(&Value) -> bool) -> Vec<Row> {
    rows.iter()
        .filter(|(_, doc)| filter(doc))
        .map(|(key, doc)| Row { key: key.clone(), doc: doc.clone() })
        .collect()
}

fn has_field_a(doc: &Value) -> bool {
    doc.get("a").is_some()
}

/// Every table's schema: indexes on `a` and on `b.x` (so lookups are checked too).
fn table_schema() -> TableSchema {
    let mut schema = TableSchema::new("id");
    schema.indexes.push(vec!["a".into(), "b.x".into()]);
    schema
}

/// Values to look up through the indexes.
fn probes() -> Vec<Value> {
    let mut probes: Vec<Value> = vec![Value::Bool(true), Value::Bool(false), Value::Float(0.5)];
    probes.extend((-2..3).map(Value::Int));
    probes.extend(["x", "y", ""].map(|s| Value::from(serde_json::json!(s))));
    probes.push(Value::from(serde_json::json!([1, "s"])));
    probes.push(Value::Null);
    probes
}

/// Indexed lookups of `name` at the snapshot's seq equal the model's rows holding the value.
fn check_lookups(
    snap: &driftdb_core::Snapshot<'_>,
    name: &str,
    rows: &BTreeMap<Key, Value>,
) -> TestResult {
    for field in ["a", "b.x"] {
        let at = |d: &Value| -> Option<Value> {
            field.split('.').try_fold(d, |d, name| d.get(name)).cloned()
        };
        for probe in probes() {
            let found = ok(snap.lookup(name, field, &probe), "lookup")?;
            let want = rows_of(rows, |d| probe != Value::Null && at(d).as_ref() == Some(&probe));
            prop_assert_eq!(
                found,
                Some(want),
                "{} = {} in {} at seq {}",
                field,
                probe,
                name,
                snap.seq()
            );
        }
    }
    Ok(())
}

/// Scans of every table at the snapshot's seq equal the model at `seq`.
fn check_scans(snap: &driftdb_core::Snapshot<'_>, model: &Model, seq: u64) -> TestResult {
    let state = model.state(seq);
    prop_assert_eq!(snap.seq(), seq);
    prop_assert_eq!(snap.tables(), live_tables(state), "tables at seq {}", seq);
    for (t, name) in TABLES.iter().enumerate() {
        match &state.tables[t] {
            Some(rows) => {
                let all = ok(snap.scan(name, |_| true), "scan")?;
                prop_assert_eq!(all, rows_of(rows, |_| true), "scan of {} at seq {}", name, seq);
                let some = ok(snap.scan(name, has_field_a), "scan")?;
                prop_assert_eq!(some, rows_of(rows, has_field_a), "filtered scan of {}", name);
                check_lookups(snap, name, rows)?;
            }
            None => {
                let scan = snap.scan(name, |_| true);
                prop_assert_eq!(outcome(&scan, name, None), Outcome::NoSuchTable, "seq {}", seq);
            }
        }
    }
    Ok(())
}

/// Everything readable at `seq`: tables, scans, every key's document and history.
fn check_seq(db: &Database, model: &Model, seq: u64) -> TestResult {
    let snap = ok(db.read(AsOf::Seq(seq)), "read AS OF seq")?;
    check_scans(&snap, model, seq)?;
    prop_assert_eq!(snap.unix_ms(), model.commit_time(seq).unwrap_or(0));
    let state = model.state(seq);
    for (t, name) in TABLES.iter().enumerate() {
        for key in key_domain() {
            let got = snap.get(name, &key);
            match &state.tables[t] {
                Some(rows) => prop_assert_eq!(
                    ok(got, "get")?,
                    rows.get(&key).cloned(),
                    "get {} {} at seq {}",
                    name,
                    key,
                    seq
                ),
                None => prop_assert_eq!(outcome(&got, name, None), Outcome::NoSuchTable),
            }
            let history = snap.history(name, &key);
            if model.first_created[t].is_some_and(|created| created <= seq) {
                let want: Vec<HistoryEntry> = model
                    .history
                    .get(&(t, key.clone()))
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter(|e| e.seq <= seq)
                    .map(|e| HistoryEntry {
                        seq: e.seq,
                        unix_ms: model.commit_time(e.seq).unwrap_or(0),
                        kind: e.kind,
                        payload: e.payload.clone(),
                        document: e.document.clone(),
                    })
                    .collect();
                prop_assert_eq!(
                    ok(history, "history")?,
                    want,
                    "history of {} {} at seq {}",
                    name,
                    key,
                    seq
                );
            } else {
                prop_assert_eq!(outcome(&history, name, None), Outcome::NoSuchTable);
            }
        }
    }
    Ok(())
}

/// Reads `AS OF` the commit time of `seq`, and one ms either side.
fn check_time(db: &Database, model: &Model, seq: u64) -> TestResult {
    prop_assert_eq!(db.commit_time(seq), model.commit_time(seq), "commit time of seq {}", seq);
    let t = model.commit_time(seq).unwrap_or(0);
    for probe in [t.saturating_sub(1), t, t + 1] {
        let want = model.seq_at_time(probe);
        prop_assert_eq!(ok(db.resolve(AsOf::UnixMs(probe)), "resolve")?, want, "AS OF {}", probe);
        let snap = ok(db.read(AsOf::UnixMs(probe)), "read AS OF time")?;
        check_scans(&snap, model, want)?;
    }
    Ok(())
}

/// The seqs `seqs` read like the model; plus the latest seq and the future.
fn check_db(db: &Database, model: &Model, seqs: &[u64]) -> TestResult {
    let last = model.last_seq();
    prop_assert_eq!(db.last_seq(), last);
    prop_assert_eq!(ok(db.resolve(AsOf::Now), "resolve now")?, last);
    prop_assert_eq!(ok(db.resolve(AsOf::UnixMs(u64::MAX)), "resolve")?, last);
    let future = db.read(AsOf::Seq(last + 1)).map(|s| s.seq());
    prop_assert!(
        matches!(future, Err(Error::FutureSeq { requested, latest })
            if requested == last + 1 && latest == last),
        "read AS OF seq {} gave {:?}",
        last + 1,
        future
    );
    prop_assert_eq!(db.commit_time(last + 1), None);
    prop_assert_eq!(live_tables(model.state(last)), db.tables());
    for &seq in seqs {
        check_seq(db, model, seq)?;
        check_time(db, model, seq)?;
    }
    Ok(())
}

fn all_seqs(model: &Model) -> Vec<u64> {
    (0..=model.last_seq()).collect()
}

/// A few seqs picked at random, and the latest.
fn some_seqs(model: &Model, rng: &mut Rng) -> Vec<u64> {
    let last = model.last_seq();
    let mut seqs: Vec<u64> = (0..3).map(|_| rng.below(last + 1)).collect();
    seqs.push(last);
    seqs
}

/// splitmix64, seeded by the generated case, to pick seqs to check.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

// ---- Running a history -------------------------------------------------------------------

#[derive(Debug)]
enum Backend {
    Os(tempfile::TempDir),
    Sim(SimFs),
}

impl Backend {
    fn path(&self) -> PathBuf {
        match self {
            Backend::Os(dir) => dir.path().join("db"),
            Backend::Sim(_) => PathBuf::from("/db"),
        }
    }

    fn open(&self, small_files: bool) -> TestResult<Database> {
        let mut options = Options { encryption_key: common::test_key(), ..Options::default() };
        if small_files {
            // Rotate segments and checkpoint every few commits.
            options.segment_size_bytes_max = 512;
            options.wal_size_bytes_max = 1024;
        }
        if let Backend::Sim(fs) = self {
            options.fs = Arc::new(fs.clone());
        }
        ok(Database::open_with(self.path(), options), "open")
    }

    fn reopen(&mut self, db: Database, how: Reopen, small_files: bool) -> TestResult<Database> {
        match (&*self, how) {
            (Backend::Sim(fs), Reopen::ProcessCrash) => {
                let image = fs.process_crash_image();
                drop(db); // its final checkpoint goes to the old file system
                *self = Backend::Sim(image);
            }
            (Backend::Sim(fs), Reopen::PowerCut) => {
                let image = fs.crash_image();
                drop(db);
                *self = Backend::Sim(image);
            }
            (_, Reopen::CleanWithoutIndexFiles) => {
                ok(db.close(), "close")?;
                self.remove_index_files();
                let db = self.open(small_files)?;
                prop_assert_eq!(db.index_files_loaded(), 0);
                return Ok(db);
            }
            // A real directory can only be closed cleanly.
            _ => {
                ok(db.close(), "close")?;
                let db = self.open(small_files)?;
                // Every index file the close wrote names its table as the open rebuilt it.
                prop_assert_eq!(db.index_file_notes(), Vec::<String>::new());
                return Ok(db);
            }
        }
        self.open(small_files)
    }

    /// Remove every table's index files (`tables/<t>/indexes/*.idx`).
    fn remove_index_files(&self) {
        let fs: Arc<dyn Fs> = match self {
            Backend::Os(_) => Arc::new(driftdb_core::storage::fs::OsFs),
            Backend::Sim(fs) => Arc::new(fs.clone()),
        };
        for table in TABLES {
            let dir = self.path().join("tables").join(table).join("indexes");
            for name in fs.list(&dir).unwrap_or_default() {
                fs.remove_file(&dir.join(name)).unwrap();
            }
        }
    }
}

/// An open transaction, in the engine and in the model.
struct Open<'db> {
    tx: Transaction<'db>,
    m: ModelTx,
}

/// After an operation on (`table`, `key`) inside a transaction: the transaction sees its own
/// writes, and nobody else does.
fn check_views(
    db: &Database,
    model: &Model,
    open: &Open<'_>,
    table: usize,
    key: &Key,
) -> TestResult {
    let name = TABLES[table];
    prop_assert_eq!(open.tx.len(), open.m.count);
    prop_assert_eq!(open.tx.read_seq(), open.m.base_seq);
    let mine = open.tx.get(name, key);
    match open.m.rows(table) {
        Some(rows) => prop_assert_eq!(ok(mine, "tx.get")?, rows.get(key).cloned(), "tx.get"),
        None => prop_assert_eq!(outcome(&mine, name, None), Outcome::NoSuchTable),
    }
    let theirs = db.get(name, key);
    match &model.state(model.last_seq()).tables[table] {
        Some(rows) => prop_assert_eq!(ok(theirs, "db.get")?, rows.get(key).cloned(), "db.get"),
        None => prop_assert_eq!(outcome(&theirs, name, None), Outcome::NoSuchTable),
    }
    Ok(())
}

/// Commit the open transaction (or an empty one), check it against the model, record it.
fn commit(db: &Database, model: &mut Model, open: Option<Open<'_>>, rng: &mut Rng) -> TestResult {
    let Open { tx, m } = open.unwrap_or_else(|| Open { tx: db.begin(), m: model.begin() });
    for (t, name) in TABLES.iter().enumerate() {
        for key in key_domain() {
            let got = tx.get(name, &key);
            match m.rows(t) {
                Some(rows) => prop_assert_eq!(ok(got, "tx.get")?, rows.get(&key).cloned()),
                None => prop_assert_eq!(outcome(&got, name, None), Outcome::NoSuchTable),
            }
        }
    }
    if let Some((table, key, seq)) = model.conflict(&m) {
        let got = tx.commit();
        let want = (TABLES[table].to_owned(), key, m.base_seq, seq);
        match got {
            Err(Error::Conflict { kind: ConflictKind::Write, table, key, read_seq, seq }) => {
                prop_assert_eq!((table, key, read_seq, seq), want, "conflict");
            }
            other => prop_assert!(false, "commit: want the conflict {want:?}, got {other:?}"),
        }
        return check_db(db, model, &some_seqs(model, rng));
    }
    let want = model.replay(&m);
    if m.base_seq == model.last_seq() {
        // Nothing committed meanwhile: the replay is the transaction itself.
        let replayed = want.as_ref().map(|r| &r.state);
        prop_assert_eq!(replayed, Ok(&m.state), "model replay");
    }
    let got = tx.commit();
    match want {
        Ok(replayed) => model.commit(replayed, ok(got, "commit")?)?,
        Err((refusal, table, key)) => {
            // Without a first-committer conflict the writes apply as they did when added.
            prop_assert!(false, "the model refuses {table}/{key:?} ({refusal:?}) at commit");
        }
    }
    check_db(db, model, &some_seqs(model, rng))
}

/// Apply `write` to the engine's and the model's transaction: same outcome, same views after.
fn apply_write(db: &Database, model: &Model, o: &mut Open<'_>, write: &Write) -> TestResult {
    let write = &write.aim(o.m.rows(write.table()));
    let (table, key) = (write.table(), write.key());
    let name = TABLES[table];
    let want = o.m.apply(write);
    let got = match write {
        Write::Insert { key, fields, .. } => {
            o.tx.insert(name, Write::document(key, fields)).map(|returned| returned == *key)
        }
        Write::Patch { key, patch, pk, .. } => {
            o.tx.patch(name, key.clone(), Write::patch(key, patch, *pk)).map(|()| true)
        }
        Write::SoftDelete { key, .. } => o.tx.soft_delete(name, key.clone()).map(|()| true),
        Write::DropTable => o.tx.drop_table(name).map(|()| true),
        Write::CreateTable => o.tx.create_table(name, table_schema()).map(|()| true),
    };
    prop_assert_eq!(outcome(&got, name, key), want, "{:?}", write);
    prop_assert!(got.unwrap_or(true), "insert returned another key");
    check_views(db, model, o, table, key.unwrap_or(&Key::Int(0)))
}

/// Run operations from `ops[*next..]` until a `Reopen` (returned) or the end (`None`).
/// An open transaction is rolled back (dropped) on return.
fn run_session(
    db: &Database,
    model: &mut Model,
    ops: &[Op],
    next: &mut usize,
    rng: &mut Rng,
) -> TestResult<Option<Reopen>> {
    let mut open: Option<Open<'_>> = None;
    while let Some(op) = ops.get(*next) {
        *next += 1;
        let begin = || Open { tx: db.begin(), m: model.begin() };
        match op {
            Op::Write(w) => apply_write(db, model, open.get_or_insert_with(begin), w)?,
            Op::Concurrent(w) => {
                let mut other = Open { tx: db.begin(), m: model.begin() };
                apply_write(db, model, &mut other, w)?;
                commit(db, model, Some(other), rng)?;
            }
            Op::Commit => commit(db, model, open.take(), rng)?,
            Op::Rollback => {
                if let Some(o) = open.take() {
                    o.tx.rollback();
                }
                let last = model.last_seq();
                check_db(db, model, &[last])?;
            }
            Op::Reopen(how) => return Ok(Some(*how)),
            Op::Tick => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    Ok(None)
}

fn run(mut backend: Backend, small_files: bool, seed: u64, ops: &[Op]) -> TestResult {
    let mut rng = Rng(seed);
    let mut model = Model::new();
    let mut db = backend.open(small_files)?;
    check_db(&db, &model, &[0])?;
    for (t, name) in TABLES.iter().enumerate() {
        let info = ok(db.create_table(name, table_schema()), "create_table")?;
        let mut m = model.begin();
        prop_assert_eq!(m.create_table(t), Outcome::Ok);
        model.commit(m, info)?;
    }
    let mut next = 0;
    loop {
        let reopen = run_session(&db, &mut model, ops, &mut next, &mut rng)?;
        check_db(&db, &model, &all_seqs(&model))?;
        // The end of the history is followed by a clean close and a last reopen.
        db = backend.reopen(db, reopen.unwrap_or(Reopen::Clean), small_files)?;
        check_db(&db, &model, &all_seqs(&model))?;
        if reopen.is_none() {
            break;
        }
    }
    ok(db.close(), "close")
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn engine_matches_model_on_disk(
        ops in prop::collection::vec(op(), 0..60),
        small_files in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        run(Backend::Os(dir), small_files, seed, &ops)?;
    }

    #[test]
    fn engine_matches_model_with_crashes(
        ops in prop::collection::vec(op(), 0..60),
        small_files in any::<bool>(),
        seed in any::<u64>(),
    ) {
        run(Backend::Sim(SimFs::new()), small_files, seed, &ops)?;
    }

    /// The same, every database encrypted.
    #[test]
    fn engine_matches_model_with_crashes_encrypted(
        ops in prop::collection::vec(op(), 0..60),
        small_files in any::<bool>(),
        seed in any::<u64>(),
    ) {
        common::encrypt_in_this_thread();
        run(Backend::Sim(SimFs::new()), small_files, seed, &ops)?;
    }
}

#[test]
fn reference_merge_patch_follows_rfc7386() {
    let doc = Value::from(serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4, "n": null}));
    let patch = Value::from(
        serde_json::json!({"a": null, "b": {"c": null, "x": {"y": null}}, "e": {"z": 1}}),
    );
    let want = Value::from(serde_json::json!({"b": {"d": 3, "x": {}}, "e": {"z": 1}, "n": null}));
    assert_eq!(merge_patch(&doc, &patch), want);
}
