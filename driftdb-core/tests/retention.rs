//! Retention folds history older than a table's window into a base, and nothing else changes.
//!
//! Random histories over two tables, `a` (a retention policy, an index) and `b` (none), run
//! on a database that compacts `a` with a clock set so that it folds at random points, and on
//! a twin that never compacts. After every fold, and after every reopen: at every seq at or
//! after the horizon H, every read of `a` (schema, scan, streamed scan, get, index lookup, and
//! history, whose versions up to H become one INSERT at H) and of `b` answers as on the twin;
//! every read of `a` before H fails with `BeforeRetention` naming H; and everything the
//! database answers is the same before and after a reopen. Snapshots are taken automatically.
//! The same runs encrypted. A crash at every sync point of a folding compaction leaves a
//! database that opens with either the old or the new answers.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::Rng;
use common::answers::{answers, assert_same};
use driftdb_core::storage::sim::SimFs;
use driftdb_core::{AsOf, Database, Error, HistoryEntry, Key, Options, TableSchema, Value};
use serde_json::json;

const WINDOW_MS: u64 = 3_600_000;
const KEYS: i64 = 6;

fn schema(retention: bool) -> TableSchema {
    let mut s = TableSchema::new("id");
    s.indexes.push(vec!["v".into()]);
    if retention {
        s.retention_ms = Some(WINDOW_MS);
    }
    s
}

fn options(fs: &SimFs, snapshots: bool) -> Options {
    Options {
        segment_size_bytes_max: 512,
        wal_size_bytes_max: 2048,
        snapshot_every_events: if snapshots { 4 } else { 0 },
        encryption_key: common::test_key(),
        fs: Arc::new(fs.clone()),
        ..Options::default()
    }
}

fn open(fs: &SimFs, snapshots: bool) -> Database {
    Database::open_with(Path::new("/db"), options(fs, snapshots)).unwrap()
}

fn keys() -> Vec<Key> {
    (0..KEYS).map(Key::Int).collect()
}

/// One random transaction, decided from the twin's state and applied to both databases.
fn random_txn(rng: &mut Rng, dbs: [&Database; 2]) {
    let writes = 1 + rng.below(3);
    let mut plan = Vec::new();
    let mut touched = Vec::new();
    for _ in 0..writes {
        let table = if rng.below(3) == 0 { "b" } else { "a" };
        let key = rng.below(KEYS as u64) as i64;
        if touched.contains(&(table, key)) {
            continue;
        }
        touched.push((table, key));
        let live = dbs[1].get(table, &Key::Int(key)).unwrap().is_some();
        let v = rng.below(3) as i64;
        plan.push((table, key, live, rng.below(3) == 0, v));
    }
    let mut infos = Vec::new();
    for db in dbs {
        let mut tx = db.begin();
        for &(table, key, live, delete, v) in &plan {
            match (live, delete) {
                (false, _) => {
                    tx.insert(table, json!({"id": key, "v": v, "n": key * 10}).into()).unwrap();
                }
                (true, true) => tx.soft_delete(table, key).unwrap(),
                (true, false) => tx.patch(table, key, json!({"v": v}).into()).unwrap(),
            }
        }
        infos.push(tx.commit().unwrap().seq);
    }
    assert_eq!(infos[0], infos[1], "the twins commit the same seqs");
}

fn is_before_retention(r: &driftdb_core::Result<impl std::fmt::Debug>, h: u64, seq: u64) {
    match r {
        Err(Error::BeforeRetention { table, seq: s, oldest, retention }) => {
            assert_eq!((table.as_str(), *s, *oldest), ("a", seq, h));
            assert_eq!(retention, "1 hour");
        }
        other => panic!("read of `a` at seq {seq} before horizon {h}: {other:?}"),
    }
}

/// The twin's history of a key as the folded database must give it: the versions up to `h`
/// become one INSERT of the document at `h` (if the key is live then).
fn folded_history(twin: &[HistoryEntry], doc_at_h: Option<Value>, h: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    if let Some(doc) = doc_at_h {
        out.push((h, format!("INSERT {doc:?} {:?}", Some(&doc))));
    }
    for e in twin.iter().filter(|e| e.seq > h) {
        let doc = e.document.as_ref();
        out.push((e.seq, format!("{} {:?} {:?}", e.kind.name(), e.payload, doc)));
    }
    out
}

fn shape(history: &[HistoryEntry]) -> Vec<(u64, String)> {
    history
        .iter()
        .map(|e| (e.seq, format!("{} {:?} {:?}", e.kind.name(), e.payload, e.document.as_ref())))
        .collect()
}

/// Every read of both tables at every seq, against the twin.
fn check(db: &Database, twin: &Database, h: u64, ctx: &str) {
    assert_eq!(db.last_seq(), twin.last_seq());
    let last = db.last_seq();
    let twin_last = twin.read(AsOf::Seq(last)).unwrap();
    for seq in 0..=last {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        let want = twin.read(AsOf::Seq(seq)).unwrap();
        let ctx = format!("{ctx}, seq {seq}, horizon {h}");
        // `b` keeps its whole history.
        assert_eq!(snap.scan("b", |_| true).ok(), want.scan("b", |_| true).ok(), "{ctx}");
        for key in keys() {
            let got = snap.history("b", &key).map(|h| shape(&h)).ok();
            assert_eq!(got, want.history("b", &key).map(|h| shape(&h)).ok(), "{ctx}");
        }
        if seq < h {
            is_before_retention(&snap.scan("a", |_| true), h, seq);
            is_before_retention(&snap.schema("a"), h, seq);
            is_before_retention(&snap.get("a", &Key::Int(0)), h, seq);
            is_before_retention(&snap.history("a", &Key::Int(0)), h, seq);
            is_before_retention(&snap.stats("a"), h, seq);
            is_before_retention(&snap.lookup("a", "v", &Value::Int(0)), h, seq);
            is_before_retention(&db.scan_stream("a", AsOf::Seq(seq)).map(|_| ()), h, seq);
            continue;
        }
        assert_eq!(snap.schema("a").ok(), want.schema("a").ok(), "{ctx}");
        let scan = snap.scan("a", |_| true).ok();
        assert_eq!(scan, want.scan("a", |_| true).ok(), "{ctx}: scan");
        let streamed = db
            .scan_stream("a", AsOf::Seq(seq))
            .ok()
            .map(|s| s.collect::<driftdb_core::Result<Vec<_>>>().unwrap());
        assert_eq!(streamed, scan, "{ctx}: streamed scan");
        for v in 0..3 {
            let got = snap.lookup("a", "v", &Value::Int(v)).ok();
            assert_eq!(got, want.lookup("a", "v", &Value::Int(v)).ok(), "{ctx}: lookup");
        }
        for key in keys() {
            assert_eq!(snap.get("a", &key).ok(), want.get("a", &key).ok(), "{ctx}: get");
        }
    }
    if h > 0 {
        let at_h = twin.read(AsOf::Seq(h)).unwrap();
        let snap = db.read(AsOf::Seq(last)).unwrap();
        for key in keys() {
            let twin_history = twin_last.history("a", &key).unwrap();
            let doc = at_h.get("a", &key).unwrap();
            let got = snap.history("a", &key).unwrap();
            assert_eq!(shape(&got), folded_history(&twin_history, doc, h), "{ctx}: history");
            if let Some(first) = got.first().filter(|e| e.seq == h) {
                assert_eq!(first.unix_ms, db.commit_time(h).unwrap(), "{ctx}: base time");
            }
        }
    }
    assert_eq!(db.snapshot_damage(), None, "{ctx}: a snapshot was refused");
}

fn run(seed: u64, steps: usize, snapshots: bool) {
    let mut rng = Rng(seed);
    let (fs, twin_fs) = (SimFs::new(), SimFs::new());
    let mut db = open(&fs, snapshots);
    let twin = open(&twin_fs, snapshots);
    for d in [&db, &twin] {
        d.create_table("a", schema(true)).unwrap();
        d.create_table("b", schema(false)).unwrap();
    }
    let mut h = 0;
    let mut folds = 0;
    for step in 0..steps {
        match rng.below(12) {
            0 | 1 => {
                // Fold as if the clock read the commit time of a random seq plus the window.
                let s = 1 + rng.below(db.last_seq());
                let now = db.commit_time(s).unwrap() + WINDOW_MS;
                let report = db.compact_table_at("a", now).unwrap();
                if let Some(folded) = report.folded_to {
                    assert!(folded > h && folded <= db.last_seq(), "{report}");
                    h = folded;
                    folds += 1;
                }
                check(&db, &twin, h, &format!("seed {seed} step {step} after {report}"));
            }
            2 => {
                db.compact_table("b").unwrap();
            }
            3 => {
                let before = answers(&db, &["a", "b"], &keys());
                drop(db);
                db = open(&fs, snapshots);
                // The index files the close wrote after folds match the folded segments.
                assert_eq!(db.index_file_notes(), Vec::<String>::new(), "seed {seed} step {step}");
                let after = answers(&db, &["a", "b"], &keys());
                assert_same(&before, &after, format!("seed {seed} step {step}: reopen"));
                check(&db, &twin, h, &format!("seed {seed} step {step} after reopen"));
            }
            _ => random_txn(&mut rng, [&db, &twin]),
        }
    }
    assert!(folds >= 2, "seed {seed}: only {folds} folds");
    let before = answers(&db, &["a", "b"], &keys());
    drop(db);
    let db = open(&fs, snapshots);
    assert_eq!(db.index_file_notes(), Vec::<String>::new(), "seed {seed}: end");
    assert!(db.index_files_loaded() >= 1, "seed {seed}: a's index file was not loaded");
    assert_same(&before, &answers(&db, &["a", "b"], &keys()), format!("seed {seed}: end"));
    check(&db, &twin, h, &format!("seed {seed}: end"));
}

#[test]
fn random_folds_answer_like_the_twin_from_the_horizon_on() {
    for seed in 1..=6 {
        run(seed * 7919, 120, seed % 2 == 0);
    }
}

#[test]
fn random_folds_encrypted() {
    common::encrypt_in_this_thread();
    run(4242, 80, true);
}

#[test]
fn a_policy_alone_folds_nothing_and_removing_it_stops_folding() {
    let fs = SimFs::new();
    let db = open(&fs, false);
    db.create_table("a", schema(true)).unwrap();
    for i in 0..20 {
        let mut tx = db.begin();
        tx.insert("a", json!({"id": i, "v": 0}).into()).unwrap();
        tx.commit().unwrap();
    }
    assert!(db.read(AsOf::Seq(1)).unwrap().scan("a", |_| true).is_ok());
    let mut tx = db.begin();
    tx.alter_table("a", schema(false)).unwrap();
    tx.commit().unwrap();
    let far = db.commit_time(db.last_seq()).unwrap() + 100 * WINDOW_MS;
    let report = db.compact_table_at("a", far).unwrap();
    assert_eq!(report.folded_to, None, "{report}");
    assert!(db.read(AsOf::Seq(1)).unwrap().scan("a", |_| true).is_ok());
}

/// A durable image of a database whose table `a` has a policy and a history of 40 commits,
/// and the clock reading that folds `a` near seq 25.
fn crash_base() -> (SimFs, u64) {
    let fs = SimFs::new();
    let db = open(&fs, true);
    db.create_table("a", schema(true)).unwrap();
    db.create_table("b", schema(false)).unwrap();
    let twin_fs = SimFs::new();
    let twin = open(&twin_fs, false);
    twin.create_table("a", schema(true)).unwrap();
    twin.create_table("b", schema(false)).unwrap();
    let mut rng = Rng(0xfeed_5eed);
    for _ in 0..40 {
        random_txn(&mut rng, [&db, &twin]);
    }
    let now = db.commit_time(25).unwrap() + WINDOW_MS;
    db.close().unwrap();
    (fs.crash_image(), now)
}

#[test]
fn a_crash_at_any_sync_point_of_a_folding_compaction_gives_the_old_or_the_new_answers() {
    let (image, now) = crash_base();
    let all = |db: &Database| answers(db, &["a", "b"], &keys());
    let old = {
        let db = open(&image.crash_image(), true);
        all(&db)
    };
    let (new, syncs) = {
        let fs = image.crash_image();
        let db = open(&fs, true);
        let start = fs.sync_count();
        let report = db.compact_table_at("a", now).unwrap();
        assert!(report.folded_to.is_some(), "{report}");
        let new = all(&db);
        (new, fs.sync_count() - start)
    };
    assert_ne!(old, new);
    assert!(syncs >= 3, "{syncs} sync points");
    let mut failed = 0;
    for k in 0..=syncs {
        let fs = image.crash_image();
        let db = open(&fs, true);
        fs.crash_at_sync(fs.sync_count() + k);
        let result = db.compact_table_at("a", now);
        failed += usize::from(result.is_err());
        drop(db);
        for (kind, after) in
            [("power cut", fs.crash_image()), ("process crash", fs.process_crash_image())]
        {
            let ctx = format!("crash at sync point {k} of {syncs} ({kind}), compaction {result:?}");
            let db = Database::open_with(Path::new("/db"), options(&after, true))
                .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
            let got = all(&db);
            assert!(got == old || got == new, "{ctx}: neither the old nor the new answers");
            if result.is_ok() && kind == "process crash" {
                assert!(got == new, "{ctx}: an acknowledged fold was lost");
            }
            // And the database goes on: fold (again) and reopen to the new answers.
            db.compact_table_at("a", now).unwrap();
            assert_same(&new, &all(&db), format!("{ctx}: fold after recovery"));
        }
    }
    assert!(failed >= 3, "only {failed} of the crashes hit the compaction");
}

/// A backup holds the base; a point-in-time restore to a seq before the horizon is refused
/// with the same error as a read, and one from the horizon on restores the same answers.
#[test]
fn backups_keep_the_base_and_restores_before_the_horizon_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let options = Options { segment_size_bytes_max: 512, ..Options::default() };
    let db = Database::open_with(tmp.path().join("db"), options).unwrap();
    db.create_table("a", schema(true)).unwrap();
    db.create_table("b", schema(false)).unwrap();
    let twin_fs = SimFs::new();
    let twin = open(&twin_fs, false);
    twin.create_table("a", schema(true)).unwrap();
    twin.create_table("b", schema(false)).unwrap();
    let mut rng = Rng(77);
    for _ in 0..30 {
        random_txn(&mut rng, [&db, &twin]);
    }
    let report = db.compact_table_at("a", db.commit_time(20).unwrap() + WINDOW_MS).unwrap();
    let h = report.folded_to.unwrap();
    random_txn(&mut rng, [&db, &twin]);
    let bk = tmp.path().join("bk");
    db.backup_to(&bk).unwrap();
    let err = driftdb_core::backup::restore(&bk, &tmp.path().join("r1"), Some(AsOf::Seq(h - 1)))
        .unwrap_err();
    is_before_retention(&Err::<(), _>(err), h, h - 1);
    assert!(!tmp.path().join("r1").join("CHECKPOINT").exists());
    for (n, dir) in [(h, "r2"), (db.last_seq(), "r3")] {
        let target = tmp.path().join(dir);
        driftdb_core::backup::restore(&bk, &target, Some(AsOf::Seq(n))).unwrap();
        let restored = Database::open(&target).unwrap();
        assert_eq!(restored.last_seq(), n);
        for seq in 0..=n {
            let (got, want) =
                (restored.read(AsOf::Seq(seq)).unwrap(), db.read(AsOf::Seq(seq)).unwrap());
            if seq < h {
                is_before_retention(&got.scan("a", |_| true), h, seq);
            } else {
                assert_eq!(got.scan("a", |_| true).ok(), want.scan("a", |_| true).ok(), "{seq}");
                assert_eq!(
                    got.history("a", &Key::Int(1)).ok(),
                    want.history("a", &Key::Int(1)).ok()
                );
            }
            assert_eq!(got.scan("b", |_| true).ok(), want.scan("b", |_| true).ok(), "{seq}");
        }
    }
}

/// A table dropped and re-created (with a unique field) before the horizon folds to its new
/// incarnation; a table dropped at the horizon is not folded; unique checks and DDL go on
/// after the fold, and a reopen changes nothing.
#[test]
fn folds_across_incarnations_and_unique_fields() {
    let fs = SimFs::new();
    let db = open(&fs, true);
    let mut unique = schema(true);
    unique.unique.push("n".into());
    db.create_table("a", schema(true)).unwrap();
    db.create_table("d", schema(true)).unwrap();
    let put = |db: &Database, table: &str, id: i64, n: i64| {
        let mut tx = db.begin();
        tx.insert(table, json!({"id": id, "n": n, "v": 0}).into()).unwrap();
        tx.commit().unwrap().seq
    };
    put(&db, "a", 1, 10);
    put(&db, "d", 1, 10);
    db.drop_table("a").unwrap();
    db.create_table("a", unique.clone()).unwrap();
    put(&db, "a", 2, 20);
    let h = put(&db, "a", 3, 30);
    std::thread::sleep(std::time::Duration::from_millis(3)); // later commits: later times
    db.drop_table("d").unwrap();
    put(&db, "a", 4, 40);
    let now = db.commit_time(h).unwrap() + WINDOW_MS;
    // `d` is not live any more: no policy in force, nothing folded.
    assert_eq!(db.compact_table_at("d", now + WINDOW_MS).unwrap().folded_to, None);
    let report = db.compact_table_at("a", now).unwrap();
    assert_eq!(report.folded_to, Some(h), "{report}");
    let all = |db: &Database| answers(db, &["a", "d"], &keys());
    let before = all(&db);
    let snap = db.read(AsOf::Seq(h)).unwrap();
    assert_eq!(snap.scan("a", |_| true).unwrap().len(), 2);
    assert_eq!(snap.schema("a").unwrap(), unique);
    is_before_retention(&db.read(AsOf::Seq(h - 1)).unwrap().get("a", &Key::Int(2)), h, h - 1);
    // `d` keeps its whole history, dropped or not.
    assert!(db.read(AsOf::Seq(4)).unwrap().get("d", &Key::Int(1)).unwrap().is_some());
    // The unique field still holds: 20 is taken by key 2 (a base row).
    let mut tx = db.begin();
    let err = tx.insert("a", json!({"id": 5, "n": 20}).into()).unwrap_err();
    assert!(matches!(err, Error::UniqueViolation(_)), "{err:?}");
    drop(tx);
    drop(db);
    let db = open(&fs, true);
    assert_same(&before, &all(&db), "reopen after a fold across incarnations");
    let mut tx = db.begin();
    assert!(matches!(
        tx.insert("a", json!({"id": 5, "n": 30}).into()).unwrap_err(),
        Error::UniqueViolation(_)
    ));
    drop(tx);
    db.drop_table("a").unwrap();
    db.create_table("a", schema(true)).unwrap();
    put(&db, "a", 1, 1);
    let later = db.last_seq();
    is_before_retention(&db.read(AsOf::Seq(1)).unwrap().scan("a", |_| true), h, 1);
    assert_eq!(db.read(AsOf::Seq(later)).unwrap().scan("a", |_| true).unwrap().len(), 1);
}
