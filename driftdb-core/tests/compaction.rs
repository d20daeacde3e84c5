//! Compaction loses no history.
//!
//! Random histories over three tables (multi-write transactions of INSERT, PATCH and SOFT
//! DELETE, DROP and re-CREATE of one table, refused writes, compactions of any table at any
//! point, reopens) run on a database and on a twin that never compacts. Before and after every
//! compaction, and across every reopen, everything the database answers — reads `AS OF` every
//! seq and every commit time, scans, documents and histories of every key — must be the same;
//! and at every compaction and at the end, the twin must answer the same (commit times aside).
//!
//! Also: compacting twice, appending after a compaction, a dropped and re-created table,
//! commits and reads running during compactions, and damage in a compressed segment reported
//! as `Corrupt { file, offset }` at its block.
//!
//! `PROPTEST_CASES` overrides the number of cases (default 24 on the simulated file system,
//! 6 on a real directory).
// clippy.toml allows unwrap/indexing inside #[test] functions only; the helpers of this test
// file get the same allowance, and may panic with a message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::answers::{Answers, answers, assert_same};
use driftdb_core::storage::sim::SimFs;
use driftdb_core::{AsOf, Database, Error, Key, Map, Options, TableSchema, Value};
use proptest::prelude::*;
use serde_json::json;

const TABLES: [&str; 3] = ["a", "b", "c"];
/// The table that is dropped and re-created.
const DDL_TABLE: usize = 2;

fn key_domain() -> Vec<Key> {
    let mut keys: Vec<Key> = (0..5).map(Key::Int).collect();
    keys.push(Key::from("k"));
    keys
}

// ---- Generated histories -----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Write {
    Insert(usize, Key, i64),
    Patch(usize, Key, i64, bool),
    Delete(usize, Key),
    Drop,
    Create,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reopen {
    Clean,
    /// Everything written survives, no final checkpoint (simulated file system only).
    ProcessCrash,
    /// Only what was fsynced survives (simulated file system only).
    PowerCut,
}

#[derive(Debug, Clone)]
enum Op {
    Txn(Vec<Write>),
    Compact(usize),
    Reopen(Reopen),
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![4 => (0i64..5).prop_map(Key::Int), 1 => Just(Key::from("k"))]
}

fn a_write() -> impl Strategy<Value = Write> {
    let table = 0..TABLES.len();
    prop_oneof![
        6 => (table.clone(), key(), 0i64..1000).prop_map(|(t, k, v)| Write::Insert(t, k, v)),
        6 => (table.clone(), key(), 0i64..1000, any::<bool>())
            .prop_map(|(t, k, v, drop_text)| Write::Patch(t, k, v, drop_text)),
        2 => (table, key()).prop_map(|(t, k)| Write::Delete(t, k)),
        1 => Just(Write::Drop),
        1 => Just(Write::Create),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => prop::collection::vec(a_write(), 1..5).prop_map(Op::Txn),
        3 => (0..TABLES.len()).prop_map(Op::Compact),
        1 => prop_oneof![Just(Reopen::Clean), Just(Reopen::ProcessCrash), Just(Reopen::PowerCut)]
            .prop_map(Op::Reopen),
    ]
}

fn document(key: &Key, v: i64) -> Value {
    let text = format!("value {v} of {key} ").repeat(1 + (v % 5) as usize);
    json!({"id": key.to_value(), "v": v, "text": text, "nested": {"v": v, "even": v % 2 == 0}})
        .into()
}

fn patch(v: i64, drop_text: bool) -> Value {
    let mut m = Map::new();
    m.insert("v".into(), Value::Int(v));
    m.insert("nested".into(), json!({"v": v}).into());
    if drop_text {
        m.insert("text".into(), Value::Null);
    }
    Value::Map(m)
}

// ---- Running a history on a database and its twin ----------------------------------------

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

    fn options(&self, block_bytes: usize) -> Options {
        let mut options = Options {
            segment_size_bytes_max: 512,
            wal_size_bytes_max: 2048,
            compaction_block_bytes: block_bytes,
            ..Options::default()
        };
        if let Backend::Sim(fs) = self {
            options.fs = Arc::new(fs.clone());
        }
        options
    }

    fn open(&self, block_bytes: usize) -> Database {
        Database::open_with(self.path(), self.options(block_bytes)).unwrap()
    }

    fn reopen(&mut self, db: Database, how: Reopen, block_bytes: usize) -> Database {
        match (&*self, how) {
            (Backend::Sim(fs), Reopen::ProcessCrash) => {
                let image = fs.process_crash_image();
                drop(db);
                *self = Backend::Sim(image);
            }
            (Backend::Sim(fs), Reopen::PowerCut) => {
                let image = fs.crash_image();
                drop(db);
                *self = Backend::Sim(image);
            }
            _ => db.close().unwrap(),
        }
        self.open(block_bytes)
    }

    /// Names of the files in a table's segments directory.
    fn segment_files(&self, table: &str) -> Vec<String> {
        let dir = self.path().join("tables").join(table).join("segments");
        match self {
            Backend::Os(_) => {
                let mut names: Vec<String> = std::fs::read_dir(&dir)
                    .map(|rd| rd.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
                    .unwrap_or_default();
                names.sort();
                names
            }
            Backend::Sim(fs) => fs
                .files()
                .into_iter()
                .filter(|p| p.parent() == Some(&dir))
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect(),
        }
    }
}

/// What an operation returned, to compare the database with its twin.
fn outcome<T>(r: &driftdb_core::Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

fn write(tx: &mut driftdb_core::Transaction<'_>, w: &Write) -> driftdb_core::Result<()> {
    match w {
        Write::Insert(t, k, v) => tx.insert(TABLES[*t], document(k, *v)).map(|_| ()),
        Write::Patch(t, k, v, drop_text) => tx.patch(TABLES[*t], k.clone(), patch(*v, *drop_text)),
        Write::Delete(t, k) => tx.soft_delete(TABLES[*t], k.clone()),
        Write::Drop => tx.drop_table(TABLES[DDL_TABLE]),
        Write::Create => tx.create_table(TABLES[DDL_TABLE], TableSchema::new("id")),
    }
}

/// Run one transaction on both databases: every write and the commit must have the same
/// outcome on both.
fn run_txn(db: &Database, twin: &Database, writes: &[Write]) -> Result<(), TestCaseError> {
    let mut tx = db.begin();
    let mut tx2 = twin.begin();
    for w in writes {
        let (got, want) = (write(&mut tx, w), write(&mut tx2, w));
        prop_assert_eq!(outcome(&got), outcome(&want), "{:?}", w);
    }
    let (got, want) = (tx.commit(), tx2.commit());
    prop_assert_eq!(outcome(&got), outcome(&want), "commit");
    if let (Ok(a), Ok(b)) = (got, want) {
        prop_assert_eq!((a.seq, a.events), (b.seq, b.events));
    }
    Ok(())
}

fn all_answers(db: &Database) -> Answers {
    answers(db, &TABLES, &key_domain())
}

/// The segments directory of a compacted table holds its live set only: one generation of
/// compacted segments, numbered from 1, and no temporary file.
fn check_files(backend: &Backend, table: &str) -> Result<(), TestCaseError> {
    let names = backend.segment_files(table);
    prop_assert!(!names.iter().any(|n| n.ends_with(".tmp")), "temporary files left: {:?}", names);
    let generations: BTreeSet<&str> =
        names.iter().filter_map(|n| n.strip_prefix("compacted-")).map(|n| &n[..8]).collect();
    prop_assert!(generations.len() <= 1, "several generations: {:?}", names);
    Ok(())
}

fn run(mut backend: Backend, block_bytes: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    // The twin is only a reference: it lives on a simulated file system, which is fast.
    let twin_fs = SimFs::new();
    let twin = Database::open_with(
        "/twin",
        Options { segment_size_bytes_max: 1024, fs: Arc::new(twin_fs), ..Options::default() },
    )
    .unwrap();
    let mut db = backend.open(block_bytes);
    for name in TABLES {
        prop_assert_eq!(db.create_table(name, TableSchema::new("id")).unwrap().seq, {
            twin.create_table(name, TableSchema::new("id")).unwrap().seq
        });
    }
    let mut compactions = 0;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Txn(writes) => run_txn(&db, &twin, writes)?,
            Op::Compact(t) => {
                let before = all_answers(&db);
                let report = db.compact_table(TABLES[*t]).unwrap();
                assert_same(&before, &all_answers(&db), format!("op {i}: compaction {report}"));
                assert_same(
                    &all_answers(&twin).timeless(),
                    &before.timeless(),
                    format!("op {i}: twin"),
                );
                check_files(&backend, TABLES[*t])?;
                compactions += usize::from(report.events > 0);
            }
            Op::Reopen(how) => {
                let before = all_answers(&db);
                db = backend.reopen(db, *how, block_bytes);
                assert_same(&before, &all_answers(&db), format!("op {i}: reopen {how:?}"));
                for table in TABLES {
                    check_files(&backend, table)?;
                }
            }
        }
    }
    // Compact everything once more, then close and reopen.
    for table in TABLES {
        let before = all_answers(&db);
        db.compact_table(table).unwrap();
        assert_same(&before, &all_answers(&db), format!("final compaction of {table}"));
    }
    let before = all_answers(&db);
    db = backend.reopen(db, Reopen::Clean, block_bytes);
    let after = all_answers(&db);
    assert_same(&before, &after, "final reopen");
    assert_same(&all_answers(&twin).timeless(), &after.timeless(), "twin at the end");
    for table in TABLES {
        check_files(&backend, table)?;
    }
    prop_assert!(compactions <= ops.len());
    db.close().unwrap();
    Ok(())
}

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok());
    ProptestConfig { cases: cases.unwrap_or(default_cases), ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn random_histories_answer_the_same_after_compaction(
        ops in prop::collection::vec(op(), 0..80),
        block_bytes in prop_oneof![Just(100usize), Just(400), Just(256 * 1024)],
    ) {
        run(Backend::Sim(SimFs::new()), block_bytes, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(6))]

    #[test]
    fn random_histories_on_disk(
        ops in prop::collection::vec(op(), 0..40),
        block_bytes in prop_oneof![Just(300usize), Just(256 * 1024)],
    ) {
        run(Backend::Os(tempfile::tempdir().unwrap()), block_bytes, &ops)?;
    }
}

// ---- Scenarios ---------------------------------------------------------------------------

fn fill(db: &Database, table: &str, keys: i64, rounds: i64) {
    for round in 0..rounds {
        let mut tx = db.begin();
        for k in 0..keys {
            let key = Key::Int(k);
            if round == 0 {
                tx.insert(table, document(&key, k)).unwrap();
            } else {
                tx.patch(table, key, patch(round * 100 + k, round % 3 == 0)).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

#[test]
fn compacting_twice_then_appending() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options { segment_size_bytes_max: 4096, ..Options::default() };
    let db = Database::open_with(dir.path(), options()).unwrap();
    db.create_table("a", TableSchema::new("id")).unwrap();
    fill(&db, "a", 20, 30);
    let seg_dir = dir.path().join("tables/a/segments");
    let names = |dir: &Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    let plain_before = names(&seg_dir).len();
    assert!(plain_before >= 5, "expected rotation: {:?}", names(&seg_dir));
    let before = all_answers(&db);

    let first = db.compact_table("a").unwrap();
    assert_eq!(first.segments_before, plain_before);
    assert!(first.segments_after < first.segments_before, "{first}");
    assert!(first.bytes_after * 3 < first.bytes_before, "{first}");
    assert_eq!(first.events, 1 + 20 * 30, "{first}");
    assert_same(&before, &all_answers(&db), "first compaction");
    // The live set: generation 1, and one empty plain segment for new commits.
    let files = names(&seg_dir);
    assert!(files.iter().all(|n| n.starts_with("compacted-00000001-") || n.ends_with(".seg")));
    assert_eq!(files.iter().filter(|n| !n.starts_with("compacted-")).count(), 1, "{files:?}");

    // Nothing sealed since: nothing to do, nothing touched.
    let again = db.compact_table("a").unwrap();
    assert_eq!((again.segments_before, again.events), (0, 0), "{again}");
    assert_eq!(names(&seg_dir), files);
    assert_eq!(again.to_string(), "table `a`: nothing to compact");

    // Appends go to a plain segment; the next compaction folds them into generation 2.
    fill_more(&db);
    let mid = all_answers(&db);
    assert_same(&before, &mid.up_to(before.last_seq), "old seqs after appending");
    let second = db.compact_table("a").unwrap();
    assert_eq!(second.events, first.events + 25, "{second}");
    assert_same(&mid, &all_answers(&db), "second compaction");
    let files = names(&seg_dir);
    assert!(files.iter().any(|n| n.starts_with("compacted-00000002-")), "{files:?}");
    assert!(!files.iter().any(|n| n.starts_with("compacted-00000001-")), "{files:?}");

    drop(db);
    let db = Database::open_with(dir.path(), options()).unwrap();
    assert_same(&mid, &all_answers(&db), "reopen");
    fill_more(&db);
    assert_eq!(db.last_seq(), mid.last_seq + 5);
    assert_same(&mid, &all_answers(&db).up_to(mid.last_seq), "appends after the reopen");
}

/// Five more transactions on table `a`, five patches each.
fn fill_more(db: &Database) {
    for round in 0..5 {
        let mut tx = db.begin();
        for k in 0..5 {
            tx.patch("a", k, patch(10_000 + round, false)).unwrap();
        }
        tx.commit().unwrap();
    }
}

#[test]
fn a_dropped_and_recreated_table_keeps_both_incarnations() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("c", TableSchema::new("id")).unwrap();
    fill(&db, "c", 4, 3);
    db.drop_table("c").unwrap();
    let dropped = db.last_seq();
    // A dropped table can be compacted: its history stays readable.
    let before = all_answers(&db);
    db.compact_table("c").unwrap();
    assert_same(&before, &all_answers(&db), "compaction of a dropped table");
    let mut schema = TableSchema::new("id");
    schema.indexes = vec![vec!["v".into()]];
    db.create_table("c", schema).unwrap();
    fill(&db, "c", 2, 2);
    let before = all_answers(&db);
    let report = db.compact_table("c").unwrap();
    assert!(report.events > 0, "{report}");
    assert_same(&before, &all_answers(&db), "compaction of the new incarnation");
    // Key 3 existed only in the first incarnation.
    let old = db.read(AsOf::Seq(dropped - 1)).unwrap();
    assert!(old.get("c", &Key::Int(3)).unwrap().is_some());
    assert_eq!(db.get("c", &Key::Int(3)).unwrap(), None);
    assert_eq!(db.read(AsOf::Now).unwrap().history("c", &Key::Int(1)).unwrap().len(), 5);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_same(&before, &all_answers(&db), "reopen");
}

#[test]
fn refused_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert!(matches!(db.compact_table("nope"), Err(Error::NoSuchTable { .. })));
    assert!(matches!(db.compact_table("1bad"), Err(Error::InvalidInput { .. })));
    assert!(matches!(db.compact_table("../x"), Err(Error::InvalidInput { .. })));
    db.create_table("t", TableSchema::new("id")).unwrap();
    let report = db.compact_table("t").unwrap();
    assert_eq!(report.events, 1, "the CREATE event: {report}");
}

#[test]
fn commits_and_reads_go_on_during_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { segment_size_bytes_max: 4096, ..Options::default() };
    let db = Database::open_with(dir.path(), options.clone()).unwrap();
    db.create_table("a", TableSchema::new("id")).unwrap();
    db.create_table("b", TableSchema::new("id")).unwrap();
    fill(&db, "a", 10, 10);
    let fixed = db.last_seq();
    let fixed_answers = all_answers(&db);
    let done = AtomicBool::new(false);
    let committed = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut acked = BTreeMap::new();
            for n in 0..150i64 {
                let mut tx = db.begin();
                let table = if n % 2 == 0 { "a" } else { "b" };
                tx.insert(table, document(&Key::Int(1000 + n), n)).unwrap();
                acked.insert(n, tx.commit().unwrap().seq);
            }
            done.store(true, Ordering::Release);
            acked
        });
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !done.load(Ordering::Acquire) || reads == 0 {
                let snap = db.read(AsOf::Seq(fixed)).unwrap();
                let rows = snap.scan("a", |_| true).unwrap();
                assert_eq!(Ok(rows), fixed_answers.seqs[fixed as usize].scans[0].1.clone());
                reads += 1;
            }
            reads
        });
        loop {
            for table in ["a", "b"] {
                db.compact_table(table).unwrap();
            }
            if done.load(Ordering::Acquire) {
                break;
            }
        }
        assert!(reader.join().unwrap() > 0);
        writer.join().unwrap()
    });
    for (n, seq) in &committed {
        let table = if n % 2 == 0 { "a" } else { "b" };
        let doc = db.read(AsOf::Seq(*seq)).unwrap().get(table, &Key::Int(1000 + n)).unwrap();
        assert_eq!(doc, Some(document(&Key::Int(1000 + n), *n)), "commit {n} at seq {seq}");
    }
    assert_same(&fixed_answers, &all_answers(&db).up_to(fixed), "old seqs");
    let before = all_answers(&db);
    drop(db);
    let db = Database::open_with(dir.path(), options).unwrap();
    assert_same(&before, &all_answers(&db), "reopen");
}

// ---- Damage in compressed segments -------------------------------------------------------

const HEADER: usize = 16;
const BLOCK_HEADER: usize = 32;
const TRAILER: usize = 40;

/// Start of every block of a compressed segment, read from the layout in docs/FORMAT.md.
fn blocks(data: &[u8]) -> Vec<usize> {
    assert_eq!(&data[..8], b"DRIFTSEG");
    assert_eq!(u32::from_le_bytes(data[8..12].try_into().unwrap()), 2, "not compressed");
    let end = data.len() - TRAILER;
    assert_eq!(&data[end..end + 8], b"DRIFTEND");
    let mut out = Vec::new();
    let mut at = HEADER;
    while at < end {
        out.push(at);
        at += BLOCK_HEADER + u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    }
    assert_eq!(at, end, "blocks end at the trailer");
    out
}

fn corrupt_at(result: driftdb_core::Result<Database>, file: &Path, at: usize, ctx: &str) {
    match result {
        Err(Error::Corrupt { file: f, offset, reason }) => {
            assert_eq!(f, file, "{ctx}: wrong file ({reason})");
            assert_eq!(offset, at as u64, "{ctx}: wrong offset ({reason})");
        }
        other => panic!("{ctx}: expected Corrupt at {} offset {at}, got {other:?}", file.display()),
    }
}

fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() != "LOCK" {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn damage_in_a_compressed_segment_is_reported_at_its_block() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        segment_size_bytes_max: 4096,
        compaction_block_bytes: 2048,
        ..Options::default()
    };
    let db = Database::open_with(dir.path(), options()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    fill(&db, "t", 12, 40);
    let report = db.compact_table("t").unwrap();
    assert!(report.segments_after >= 2, "{report}");
    let want = all_answers(&db);
    db.close().unwrap();

    let seg_dir = dir.path().join("tables/t/segments");
    let mut compacted: Vec<PathBuf> = std::fs::read_dir(&seg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("compacted-"))
        .collect();
    compacted.sort();
    let before = tree(dir.path());
    let path = &compacted[0];
    let data = std::fs::read(path).unwrap();
    let starts = blocks(&data);
    assert!(starts.len() >= 3, "expected several blocks: {starts:?}");
    let flip = |at: usize| {
        let mut bad = data.clone();
        bad[at] ^= 0x20;
        std::fs::write(path, bad).unwrap();
    };
    // Every byte of a block in the middle (header and data), some of the others.
    let middle = starts[starts.len() / 2];
    let next = starts[starts.len() / 2 + 1];
    for at in (middle..next).chain([starts[0] + 40, data.len() - TRAILER - 1]) {
        flip(at);
        let block = *starts.iter().rev().find(|&&s| s <= at).unwrap();
        let result = Database::open_with(dir.path(), options());
        if let Err(e) = &result {
            assert!(e.to_string().contains(&format!("offset {block}")), "{e}");
        }
        corrupt_at(result, path, block, &format!("byte {at}"));
    }
    // The trailer, at its offset; the file header, at 0.
    for at in data.len() - TRAILER..data.len() {
        flip(at);
        corrupt_at(
            Database::open_with(dir.path(), options()),
            path,
            data.len() - TRAILER,
            "trailer",
        );
    }
    for at in 0..HEADER {
        flip(at);
        corrupt_at(Database::open_with(dir.path(), options()), path, 0, "header");
    }
    // Cut at a block boundary, with or without the trailer.
    let mut short = data[..next].to_vec();
    std::fs::write(path, &short).unwrap();
    assert!(matches!(Database::open_with(dir.path(), options()), Err(Error::Corrupt { .. })));
    short.extend_from_slice(&data[data.len() - TRAILER..]);
    std::fs::write(path, &short).unwrap();
    corrupt_at(Database::open_with(dir.path(), options()), path, next, "a block missing");
    // A missing compressed segment is named.
    std::fs::remove_file(path).unwrap();
    corrupt_at(Database::open_with(dir.path(), options()), path, 0, "missing file");

    // The failed opens changed nothing else; the repaired database opens whole.
    std::fs::write(path, &data).unwrap();
    assert_eq!(before, tree(dir.path()), "a failed open modified the database");
    let db = Database::open_with(dir.path(), options()).unwrap();
    assert_same(&want, &all_answers(&db), "after repair");
}

#[test]
fn an_older_build_is_told_the_checkpoint_version() {
    // Version 1 without compaction (older builds read it), version 2 with.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    db.close().unwrap();
    let version = || std::fs::read(dir.path().join("CHECKPOINT")).unwrap()[8];
    assert_eq!(version(), 1);
    let db = Database::open(dir.path()).unwrap();
    db.compact_table("t").unwrap();
    assert_eq!(version(), 2);
    db.close().unwrap();
}
