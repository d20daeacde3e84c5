//! The concurrency model: readers never wait for writers (nor writers for readers), a
//! long-running transaction does not hold up commits, and commits validated under the writer
//! lock still share one fsync. A committer is paused inside the commit path with the
//! test-only commit hook, so "never waits" is checked deterministically: a read that waited
//! would deadlock the test.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use driftdb_core::storage::sim::SimFs;
use driftdb_core::{AsOf, CommitPoint, Database, IsolationLevel, Key, Options, TableSchema};
use serde_json::json;

const TABLE: &str = "t";

fn open(sim: &SimFs) -> Database {
    let options =
        Options { fs: Arc::new(sim.clone()), wal_size_bytes_max: 256 * 1024, ..Options::default() };
    let db = Database::open_with("/concurrency", options).unwrap();
    db.create_table(TABLE, TableSchema::new("id")).unwrap();
    let mut tx = db.begin();
    for id in 0..4 {
        tx.insert(TABLE, json!({"id": id, "n": 0}).into()).unwrap();
    }
    tx.commit().unwrap();
    db
}

fn n_of(db: &Database, id: i64) -> i64 {
    let doc = db.get(TABLE, &Key::Int(id)).unwrap().unwrap();
    driftdb_core::from_value(doc.get("n").unwrap()).unwrap()
}

/// Commit, on a thread named "paused", a transaction setting row 0 to 1, stopping at each
/// commit point to run `at(point)` on the calling thread.
fn with_paused_commit(db: &Database, level: IsolationLevel, mut at: impl FnMut(CommitPoint)) {
    let (to_main, from_committer) = mpsc::channel::<Option<CommitPoint>>();
    let (go, wait_go) = mpsc::channel::<()>();
    let (hook_tx, wait_go) = (Mutex::new(to_main.clone()), Mutex::new(wait_go));
    db.set_commit_hook(Some(Arc::new(move |point| {
        if std::thread::current().name() == Some("paused") {
            hook_tx.lock().unwrap().send(Some(point)).unwrap();
            wait_go.lock().unwrap().recv().unwrap();
        }
    })));
    let mut tx = db.begin_with(level);
    tx.patch(TABLE, 0, json!({"n": 1}).into()).unwrap();
    std::thread::scope(|s| {
        let committer = std::thread::Builder::new()
            .name("paused".into())
            .spawn_scoped(s, move || {
                let result = tx.commit();
                to_main.send(None).unwrap();
                result
            })
            .unwrap();
        while let Some(point) = from_committer.recv().unwrap() {
            at(point);
            go.send(()).unwrap();
        }
        committer.join().unwrap().unwrap();
    });
    db.set_commit_hook(None);
}

#[test]
fn readers_do_not_wait_for_a_commit_in_progress() {
    for level in [IsolationLevel::ReadCommitted, IsolationLevel::Serializable] {
        let sim = SimFs::new();
        let db = open(&sim);
        let before = db.last_seq();
        let mut points = Vec::new();
        with_paused_commit(&db, level, |point| {
            points.push(point);
            // The committer holds the writer lock (Validated) or is installed but not durable
            // (Queued): every kind of read goes through, and none sees its write.
            assert_eq!(db.last_seq(), before);
            assert_eq!(n_of(&db, 0), 0);
            let snapshot = db.read(AsOf::Now).unwrap();
            assert_eq!(snapshot.scan(TABLE, |_| true).unwrap().len(), 4);
            let mut reader = db.begin_with(level);
            assert_eq!(reader.scan(TABLE, |_| true).unwrap().len(), 4);
            let row0 = reader.get(TABLE, &Key::Int(0)).unwrap().unwrap();
            assert_eq!(row0.get("n"), Some(&driftdb_core::Value::Int(0)));
            // Writing in a transaction does not wait either (only its commit would).
            reader.patch(TABLE, 3, json!({"n": 3}).into()).unwrap();
            reader.rollback();
        });
        assert_eq!(points, [CommitPoint::Validated, CommitPoint::Queued]);
        assert_eq!(n_of(&db, 0), 1);
    }
}

#[test]
fn a_commit_joins_the_batch_of_a_commit_in_progress() {
    // Validation runs under the writer lock, but the fsync does not: a transaction that
    // commits while another is queued (installed, not yet durable) is validated against it,
    // leads the group commit, and one WAL fsync makes both durable.
    let sim = SimFs::new();
    let db = open(&sim);
    let mut syncs = None;
    with_paused_commit(&db, IsolationLevel::Serializable, |point| {
        if point != CommitPoint::Queued {
            return;
        }
        // Disjoint rows: no conflict.
        let mut other = db.begin_with(IsolationLevel::Serializable);
        other.get(TABLE, &Key::Int(1)).unwrap();
        other.patch(TABLE, 2, json!({"n": 2}).into()).unwrap();
        let before = sim.sync_count();
        let info = other.commit().unwrap();
        syncs = Some(sim.sync_count() - before);
        // Both are durable now: the paused one has the smaller seq.
        assert_eq!(db.last_seq(), info.seq);
        assert_eq!((n_of(&db, 0), n_of(&db, 2)), (1, 2));
    });
    assert_eq!(syncs, Some(1), "one fsync for the two commits");
}

#[test]
fn a_queued_commit_conflicts_with_a_transaction_that_began_before_it_was_durable() {
    let sim = SimFs::new();
    let db = open(&sim);
    with_paused_commit(&db, IsolationLevel::RepeatableRead, |point| {
        if point != CommitPoint::Queued {
            return;
        }
        // It began before the paused commit became visible, so that commit is concurrent.
        let mut late = db.begin_with(IsolationLevel::RepeatableRead);
        assert_eq!(
            late.get(TABLE, &Key::Int(0)).unwrap().unwrap().get("n"),
            Some(&driftdb_core::Value::Int(0))
        );
        late.patch(TABLE, 0, json!({"n": 7}).into()).unwrap();
        let err = late.commit().unwrap_err();
        assert!(err.is_retryable(), "{err}");
        // Before reporting the conflict it waited for the winner to be durable (leading the
        // group commit itself, as the winner is still paused), so a retry sees the winner.
        assert_eq!(n_of(&db, 0), 1);
        let mut retry = db.begin_with(IsolationLevel::RepeatableRead);
        retry.patch(TABLE, 0, json!({"n": 7}).into()).unwrap();
        retry.commit().unwrap();
    });
    assert_eq!(n_of(&db, 0), 7);
}

#[test]
fn a_long_running_transaction_does_not_hold_up_commits() {
    let sim = SimFs::new();
    let db = open(&sim);
    for level in [IsolationLevel::RepeatableRead, IsolationLevel::Serializable] {
        let reader = db.begin_with(level);
        let seen = reader.scan(TABLE, |_| true).unwrap();
        // Writers on four threads commit while the reader stays open.
        std::thread::scope(|s| {
            for t in 0..4 {
                let db = &db;
                s.spawn(move || {
                    for i in 0..50 {
                        let mut tx = db.begin_with(level);
                        tx.patch(TABLE, t, json!({"n": i}).into()).unwrap();
                        tx.commit().unwrap();
                    }
                });
            }
        });
        assert_eq!(n_of(&db, 3), 49);
        // The reader still sees its snapshot, and, having written nothing, commits.
        assert_eq!(reader.scan(TABLE, |_| true).unwrap(), seen);
        reader.commit().unwrap();
    }
}
