//! Snapshots: the streaming scan from snapshots and segments must answer exactly what the
//! in-memory state answers, and what a twin database without snapshots answers, at every seq,
//! before and after a reopen; damaged snapshots are reported and never used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use driftdb_core::{AsOf, Database, Error, Key, Options, Row, SnapshotKind, TableSchema, Value};
use proptest::prelude::*;
use serde_json::json;

const TABLES: [&str; 3] = ["a", "b", "c"];

fn doc(v: serde_json::Value) -> Value {
    v.into()
}

fn small_files(snapshot_every: u64, full_every: u32) -> Options {
    Options {
        segment_size_bytes_max: 700,
        wal_size_bytes_max: 2048,
        snapshot_every_events: snapshot_every,
        snapshot_full_every: full_every,
        // Encrypted after `common::encrypt_in_this_thread` (or with DRIFTDB_TEST_ENCRYPT).
        encryption_key: common::test_key(),
        ..Options::default()
    }
}

/// Streamed scans that started from a snapshot (to check that the tests exercise them).
static FROM_SNAPSHOT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn stream(db: &Database, table: &str, seq: u64) -> Result<Vec<Row>, String> {
    let rows = db.scan_stream(table, AsOf::Seq(seq)).map_err(|e| e.to_string())?;
    if rows.snapshot_seq().is_some() {
        FROM_SNAPSHOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

fn memory(db: &Database, table: &str, seq: u64) -> Result<Vec<Row>, String> {
    let snapshot = db.read(AsOf::Seq(seq)).map_err(|e| e.to_string())?;
    snapshot.scan(table, |_| true).map_err(|e| e.to_string())
}

/// Every table at every seq: the streamed scan of `db` equals its in-memory scan and the
/// streamed and in-memory scans of `twin`.
fn check_all(db: &Database, twin: &Database) -> Result<(), TestCaseError> {
    prop_assert_eq!(db.last_seq(), twin.last_seq());
    for seq in 0..=db.last_seq() {
        for table in TABLES {
            let want = memory(twin, table, seq);
            prop_assert_eq!(&stream(db, table, seq), &want, "stream, table {} seq {}", table, seq);
            prop_assert_eq!(&memory(db, table, seq), &want, "memory, table {} seq {}", table, seq);
            prop_assert_eq!(&stream(twin, table, seq), &want, "twin, table {} seq {}", table, seq);
        }
    }
    prop_assert_eq!(db.snapshot_damage(), None);
    prop_assert_eq!(db.auto_snapshot_error(), None);
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Insert(usize, i64, i64),
    Patch(usize, i64, i64, bool),
    Delete(usize, i64),
    Create(usize),
    Drop(usize),
    /// Several writes in one transaction.
    Batch(Vec<(usize, i64, i64)>),
    Snapshot(usize),
    Compact(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TABLES.len();
    let k = 0i64..8;
    prop_oneof![
        6 => (t.clone(), k.clone(), any::<i64>()).prop_map(|(t, k, v)| Op::Insert(t, k, v)),
        5 => (t.clone(), k.clone(), any::<i64>(), any::<bool>())
            .prop_map(|(t, k, v, n)| Op::Patch(t, k, v, n)),
        2 => (t.clone(), k.clone()).prop_map(|(t, k)| Op::Delete(t, k)),
        1 => t.clone().prop_map(Op::Create),
        1 => t.clone().prop_map(Op::Drop),
        2 => prop::collection::vec((t.clone(), k, any::<i64>()), 1..5).prop_map(Op::Batch),
        3 => t.clone().prop_map(Op::Snapshot),
        1 => t.prop_map(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// Apply one write op; errors (duplicate key, missing table, ...) are part of the answer.
fn write(db: &Database, op: &Op) -> Result<u64, String> {
    let mut tx = db.begin();
    let put = |tx: &mut driftdb_core::Transaction<'_>, t: usize, k: i64, v: i64| {
        let d = doc(json!({"id": k, "v": v, "pad": "p".repeat((v as usize) % 40)}));
        match tx.insert(TABLES[t], d.clone()) {
            Err(Error::DuplicateKey { .. }) => tx.patch(TABLES[t], Key::Int(k), d),
            other => other.map(|_| ()),
        }
    };
    let done = match op {
        Op::Insert(t, k, v) => put(&mut tx, *t, *k, *v),
        Op::Patch(t, k, v, null) => {
            let patch = if *null { json!({"w": null, "v": v}) } else { json!({"w": v}) };
            tx.patch(TABLES[*t], Key::Int(*k), doc(patch))
        }
        Op::Delete(t, k) => tx.soft_delete(TABLES[*t], Key::Int(*k)),
        Op::Create(t) => tx.create_table(TABLES[*t], TableSchema::new("id")),
        Op::Drop(t) => tx.drop_table(TABLES[*t]),
        Op::Batch(writes) => writes.iter().try_for_each(|(t, k, v)| put(&mut tx, *t, *k, *v)),
        _ => return Ok(0),
    };
    done.map_err(|e| e.to_string())?;
    tx.commit().map(|c| c.seq).map_err(|e| e.to_string())
}

fn run(ops: &[Op], every: u64, full_every: u32) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let twin_dir = tempfile::tempdir().unwrap();
    let options = || small_files(every, full_every);
    let mut db = Database::open_with(dir.path(), options()).unwrap();
    let twin = Database::open_with(twin_dir.path(), small_files(0, 8)).unwrap();
    for t in TABLES {
        db.create_table(t, TableSchema::new("id")).unwrap();
        twin.create_table(t, TableSchema::new("id")).unwrap();
    }
    for op in ops {
        match op {
            Op::Snapshot(t) => {
                let taken = db.snapshot_table(TABLES[*t]);
                let live = db.tables().iter().any(|n| n == TABLES[*t]);
                prop_assert_eq!(taken.is_ok(), live, "{:?}", taken);
            }
            Op::Compact(t) => {
                prop_assert_eq!(
                    db.compact_table(TABLES[*t]).is_ok(),
                    twin.compact_table(TABLES[*t]).is_ok()
                );
            }
            Op::Reopen => {
                drop(db);
                db = Database::open_with(dir.path(), options()).unwrap();
            }
            _ => prop_assert_eq!(write(&db, op), write(&twin, op), "{:?}", op),
        }
    }
    check_all(&db, &twin)?;
    drop(db);
    drop(twin);
    let db = Database::open_with(dir.path(), options()).unwrap();
    let twin = Database::open_with(twin_dir.path(), small_files(0, 8)).unwrap();
    check_all(&db, &twin)?;
    let (_, damaged) = db.verify_snapshots().unwrap();
    prop_assert!(damaged.is_empty(), "{:?}", damaged);
    Ok(())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(32);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn streamed_scans_match_the_state_and_a_twin_without_snapshots(
        ops in prop::collection::vec(op(), 0..50),
        every in prop_oneof![Just(0u64), 1u64..6],
        full_every in 0u32..4,
    ) {
        run(&ops, every, full_every)?;
    }
}

#[test]
fn a_fixed_history_with_every_kind_of_step() {
    fixed_history();
}

/// The same on encrypted databases: snapshot blocks and segment pieces are read through
/// ranged reads of sealed files.
#[test]
fn a_fixed_history_with_every_kind_of_step_encrypted() {
    common::encrypt_in_this_thread();
    fixed_history();
}

fn fixed_history() {
    let mut ops = Vec::new();
    for i in 0..40i64 {
        let t = (i % 3) as usize;
        ops.push(Op::Insert(t, i % 8, i));
        ops.push(Op::Patch(t, (i + 3) % 8, i, i % 4 == 0));
        match i % 10 {
            2 => ops.push(Op::Snapshot(t)),
            4 => ops.push(Op::Delete(t, i % 8)),
            5 => ops.push(Op::Compact(t)),
            6 => ops.push(Op::Batch(vec![(0, i % 8, i), (1, 7 - i % 8, i), (2, 1, i)])),
            7 => ops.push(Op::Reopen),
            8 if i == 18 => ops.extend([Op::Drop(1), Op::Create(1), Op::Insert(1, 2, 2)]),
            _ => {}
        }
    }
    let before = FROM_SNAPSHOT.load(std::sync::atomic::Ordering::Relaxed);
    run(&ops, 4, 3).unwrap();
    let used = FROM_SNAPSHOT.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(used > 100, "only {used} scans started from a snapshot");
}

fn insert(db: &Database, table: &str, k: i64, v: i64) -> u64 {
    let mut tx = db.begin();
    tx.insert(table, doc(json!({"id": k, "v": v}))).unwrap();
    tx.commit().unwrap().seq
}

fn patch(db: &Database, table: &str, k: i64, v: i64) -> u64 {
    let mut tx = db.begin();
    tx.patch(table, Key::Int(k), doc(json!({"v": v}))).unwrap();
    tx.commit().unwrap().seq
}

#[test]
fn full_and_incremental_snapshots_start_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { snapshot_full_every: 3, ..Options::default() };
    let db = Database::open_with(dir.path(), options).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    for k in 0..100 {
        insert(&db, "t", k, 0);
    }
    let mut taken = Vec::new();
    for round in 1..=4 {
        for k in 0..10 {
            patch(&db, "t", k * round, round);
        }
        taken.push(db.snapshot_table("t").unwrap());
    }
    let kinds: Vec<_> = taken.iter().map(|s| s.kind).collect();
    use SnapshotKind::*;
    assert_eq!(kinds, [Full, Incremental, Incremental, Full]);
    assert_eq!(taken[0].entries, 100);
    assert_eq!(taken[1].entries, 10);
    assert_eq!(taken[1].base_seq, taken[0].seq);
    assert!(taken[1].path.ends_with(format!("tables/t/snapshots/{:08}.snap", taken[1].seq)));
    // Taking one again at the same seq returns the one there.
    assert_eq!(db.snapshot_table("t").unwrap(), taken[3]);
    assert_eq!(db.snapshots("t").unwrap(), taken);

    let mid = taken[2].seq + 3;
    let s = db.scan_stream("t", AsOf::Seq(mid)).unwrap();
    assert_eq!(s.snapshot_seq(), Some(taken[2].seq));
    assert_eq!(s.replayed_events(), 3);
    let rows: Vec<Row> = s.map(Result::unwrap).collect();
    assert_eq!(rows, db.read(AsOf::Seq(mid)).unwrap().scan("t", |_| true).unwrap());
    // Before the first snapshot: a replay of the segments.
    let early = db.scan_stream("t", AsOf::Seq(50)).unwrap();
    assert_eq!(early.snapshot_seq(), None);
    assert_eq!(early.map(Result::unwrap).count(), 49);
}

#[test]
fn automatic_snapshots_every_k_events_per_database_and_per_table() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { snapshot_every_events: 10, ..Options::default() };
    let db = Database::open_with(dir.path(), options.clone()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    let mut every5 = TableSchema::new("id");
    every5.snapshot_every = Some(5);
    db.create_table("u", every5).unwrap();
    let mut off = TableSchema::new("id");
    off.snapshot_every = Some(0);
    db.create_table("v", off).unwrap();
    for k in 0..45 {
        insert(&db, "t", k, 0);
        insert(&db, "u", k, 0);
        insert(&db, "v", k, 0);
    }
    assert_eq!(db.auto_snapshot_error(), None);
    assert_eq!(db.snapshots("t").unwrap().len(), 4); // 1 CREATE + 45 inserts = 46 events
    assert_eq!(db.snapshots("u").unwrap().len(), 9);
    assert!(db.snapshots("v").unwrap().is_empty());
    let kinds: Vec<_> = db.snapshots("u").unwrap().iter().map(|s| s.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == SnapshotKind::Full).count(), 2, "{kinds:?}");
    for table in ["t", "u", "v"] {
        let s = db.scan_stream(table, AsOf::Now).unwrap();
        let bound = if table == "u" {
            5
        } else if table == "t" {
            10
        } else {
            1000
        };
        assert!(s.replayed_events() <= bound, "{table}: {}", s.replayed_events());
        assert_eq!(s.count(), 45);
    }
    // The count survives a reopen: 6 events since the last snapshot of `t`, 4 more make 10.
    drop(db);
    let db = Database::open_with(dir.path(), options).unwrap();
    for k in 45..49 {
        insert(&db, "t", k, 0);
    }
    assert_eq!(db.snapshots("t").unwrap().len(), 5);
}

#[test]
fn a_failed_automatic_snapshot_does_not_fail_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { snapshot_every_events: 2, ..Options::default() };
    let db = Database::open_with(dir.path(), options).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    // Make the snapshots directory impossible to create.
    let snaps = dir.path().join("tables/t/snapshots");
    std::fs::remove_dir(&snaps).unwrap();
    std::fs::write(&snaps, b"in the way").unwrap();
    let seq = insert(&db, "t", 1, 1);
    assert!(db.get("t", &Key::Int(1)).unwrap().is_some());
    let err = db.auto_snapshot_error().expect("the failure is recorded");
    assert!(err.contains("automatic snapshot of `t` failed"), "{err}");
    assert_eq!(db.last_seq(), seq);
}

#[test]
fn a_damaged_snapshot_is_reported_and_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    for k in 0..300 {
        insert(&db, "t", k, k);
    }
    let snap = db.snapshot_table("t").unwrap();
    for k in 0..5 {
        patch(&db, "t", k, -1);
    }
    let want = db.read(AsOf::Now).unwrap().scan("t", |_| true).unwrap();
    drop(db);
    // Damage a byte inside the first block.
    let mut bytes = std::fs::read(&snap.path).unwrap();
    let at = 70;
    bytes[at] ^= 0x40;
    std::fs::write(&snap.path, &bytes).unwrap();

    let db = Database::open(dir.path()).unwrap();
    let (ok, damaged) = db.verify_snapshots().unwrap();
    assert!(ok.is_empty());
    assert_eq!(damaged.len(), 1);
    match &damaged[0] {
        Error::Corrupt { file, offset, .. } => {
            assert_eq!(file, &snap.path);
            assert!(*offset <= at as u64, "{offset}");
        }
        other => panic!("{other:?}"),
    }
    let s = db.scan_stream("t", AsOf::Now).unwrap();
    assert_eq!(s.snapshot_seq(), None, "the damaged snapshot is not used");
    assert_eq!(s.map(Result::unwrap).collect::<Vec<_>>(), want);
    let damage = db.snapshot_damage().unwrap();
    assert!(damage.contains(&snap.path.display().to_string()), "{damage}");
    // A new snapshot at the same seq replaces it.
    let mut tx = db.begin();
    tx.soft_delete("t", Key::Int(7)).unwrap();
    let damaged_at = tx.commit().unwrap().seq;
    let fine = db.snapshot_table("t").unwrap();
    assert_eq!(fine.seq, damaged_at);
    let mut bytes = std::fs::read(&fine.path).unwrap();
    bytes[70] ^= 0x01;
    std::fs::write(&fine.path, &bytes).unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    let again = db.snapshot_table("t").unwrap();
    assert_eq!(again.seq, damaged_at);
    assert_eq!(db.verify_snapshots().unwrap().1.len(), 1, "only the first damaged file is left");
    assert_eq!(again.kind, SnapshotKind::Full);
    assert_eq!(db.scan_stream("t", AsOf::Now).unwrap().snapshot_seq(), Some(again.seq));
}

#[test]
fn a_recreated_table_never_uses_the_snapshots_of_the_dropped_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    for k in 0..20 {
        insert(&db, "t", k, 1);
    }
    let old = db.snapshot_table("t").unwrap();
    db.drop_table("t").unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    insert(&db, "t", 100, 2);
    let s = db.scan_stream("t", AsOf::Now).unwrap();
    assert_eq!(s.snapshot_seq(), None);
    assert_eq!(s.map(|r| r.unwrap().key).collect::<Vec<_>>(), [Key::Int(100)]);
    // The old incarnation still reads from its snapshot.
    let s = db.scan_stream("t", AsOf::Seq(old.seq)).unwrap();
    assert_eq!(s.snapshot_seq(), Some(old.seq));
    assert_eq!(s.count(), 20);
    let new = db.snapshot_table("t").unwrap();
    assert_eq!((new.kind, new.entries), (SnapshotKind::Full, 1));
    assert!(db.snapshot_table("nope").is_err());
}

#[test]
fn leftover_tmp_files_and_snapshots_past_the_last_seq_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    insert(&db, "t", 1, 1);
    let snap = db.snapshot_table("t").unwrap();
    drop(db);
    let snaps = dir.path().join("tables/t/snapshots");
    std::fs::write(snaps.join("00000003.snap.tmp"), b"half").unwrap();
    std::fs::copy(&snap.path, snaps.join("00000099.snap")).unwrap();
    let db = Database::open(dir.path()).unwrap();
    let names: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [format!("{:08}.snap", snap.seq)]);
    assert_eq!(db.snapshots("t").unwrap(), [snap]);
}

#[test]
fn backups_skip_snapshots_and_a_restore_reads_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    for k in 0..30 {
        insert(&db, "t", k, k);
    }
    let snap = db.snapshot_table("t").unwrap();
    patch(&db, "t", 3, -3);
    let backup = tempfile::tempdir().unwrap();
    db.backup_to(&backup.path().join("b")).unwrap();
    assert!(driftdb_core::backup::verify(&backup.path().join("b")).is_ok());
    let restored = backup.path().join("r");
    driftdb_core::backup::restore(&backup.path().join("b"), &restored, None).unwrap();
    let copy = Database::open(&restored).unwrap();
    assert!(copy.snapshots("t").unwrap().is_empty());
    for seq in [snap.seq - 1, snap.seq, db.last_seq()] {
        let rows = |d: &Database| d.scan_stream("t", AsOf::Seq(seq)).unwrap().map(Result::unwrap);
        assert_eq!(rows(&copy).collect::<Vec<_>>(), rows(&db).collect::<Vec<_>>(), "{seq}");
    }
}

/// A power cut or a process crash at every sync point of a workload that takes snapshots
/// (manual and automatic, full and incremental) between commits: every image opens, holds no
/// `.snap.tmp` file and no damaged snapshot, and streams exactly what its state holds at every
/// seq.
#[test]
fn a_crash_at_any_sync_point_of_a_snapshot_leaves_usable_or_no_snapshots() {
    use driftdb_core::storage::sim::SimFs;
    use std::sync::Arc;
    let opts = |sim: &SimFs| Options {
        segment_size_bytes_max: 600,
        snapshot_every_events: 4,
        snapshot_full_every: 3,
        fs: Arc::new(sim.clone()),
        ..Options::default()
    };
    let root = std::path::Path::new("/db");
    let base = SimFs::new();
    {
        let db = Database::open_with(root, opts(&base)).unwrap();
        db.create_table("t", TableSchema::new("id")).unwrap();
        for k in 0..6 {
            insert(&db, "t", k, k);
        }
        db.snapshot_table("t").unwrap();
        db.close().unwrap();
    }
    let base = base.crash_image();
    let workload = |sim: &SimFs, crash_at: Option<u64>| -> u64 {
        let db = Database::open_with(root, opts(sim)).unwrap();
        let start = sim.sync_count();
        if let Some(k) = crash_at {
            sim.crash_at_sync(start + k);
        }
        let _ = (|| -> driftdb_core::Result<()> {
            for k in 0..3 {
                let mut tx = db.begin();
                tx.patch("t", Key::Int(k), doc(json!({"v": 100 + k})))?;
                tx.commit()?;
            }
            db.snapshot_table("t")?;
            let mut tx = db.begin();
            tx.soft_delete("t", Key::Int(5))?;
            tx.insert("t", doc(json!({"id": 9, "v": 9})))?;
            tx.commit()?;
            db.snapshot_table("t")?;
            Ok(())
        })();
        let _ = db.close();
        sim.sync_count() - start
    };
    let total = workload(&base.crash_image(), None);
    assert!(total > 10, "{total}");
    for k in 1..=total {
        let sim = base.crash_image();
        workload(&sim, Some(k));
        for image in [sim.crash_image(), sim.process_crash_image()] {
            let db = Database::open_with(root, opts(&image)).unwrap();
            let snaps = root.join("tables/t/snapshots");
            let tmp: Vec<_> = image
                .files()
                .into_iter()
                .filter(|p| p.parent() == Some(snaps.as_path()))
                .filter(|p| p.to_string_lossy().ends_with(".tmp"))
                .collect();
            assert!(tmp.is_empty(), "crash at sync {k}: {tmp:?}");
            let (ok, damaged) = db.verify_snapshots().unwrap();
            assert!(damaged.is_empty(), "crash at sync {k}: {damaged:?}");
            assert!(!ok.is_empty());
            for seq in 0..=db.last_seq() {
                assert_eq!(stream(&db, "t", seq), memory(&db, "t", seq), "crash at {k}, seq {seq}");
            }
            assert_eq!(db.snapshot_damage(), None);
            db.close().unwrap();
        }
    }
}

/// Writers on three threads with automatic snapshots every few events, a compaction, and a
/// reader streaming scans at the seqs it sees: every streamed scan equals the in-memory scan
/// at its seq, and no automatic snapshot fails.
#[test]
fn streamed_scans_stay_exact_while_commits_snapshot_and_compact() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        snapshot_every_events: 7,
        snapshot_full_every: 4,
        segment_size_bytes_max: 4096,
        ..Options::default()
    };
    let db = Database::open_with(dir.path(), options).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..3i64)
            .map(|w| {
                let db = &db;
                s.spawn(move || {
                    for n in 0..60i64 {
                        let k = w * 100 + n % 10;
                        let mut tx = db.begin();
                        let done = match tx.get("t", &Key::Int(k)).unwrap() {
                            None => tx.insert("t", doc(json!({"id": k, "n": n}))).map(|_| ()),
                            Some(_) if n % 7 == 0 => tx.soft_delete("t", Key::Int(k)),
                            Some(_) => tx.patch("t", Key::Int(k), doc(json!({"n": n}))),
                        };
                        done.unwrap();
                        tx.commit().unwrap();
                        if w == 0 && n == 30 {
                            db.compact_table("t").unwrap();
                        }
                    }
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let mut checked = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let seq = db.last_seq();
                assert_eq!(stream(&db, "t", seq), memory(&db, "t", seq), "seq {seq}");
                checked += 1;
            }
            checked
        });
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    assert_eq!(db.auto_snapshot_error(), None);
    assert!(db.snapshots("t").unwrap().len() >= 10);
    for seq in 0..=db.last_seq() {
        assert_eq!(stream(&db, "t", seq), memory(&db, "t", seq), "seq {seq}");
    }
}
