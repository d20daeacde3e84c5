//! End-to-end behaviour of the embedded API on a real directory.

use std::sync::Arc;

use driftdb_core::{AsOf, ChangeKind, Database, Error, Key, Options, TableSchema, Value};
use serde_json::json;

fn v(j: serde_json::Value) -> Value {
    j.into()
}

fn small_files() -> Options {
    Options { segment_size_bytes_max: 2048, wal_size_bytes_max: 4096, ..Options::default() }
}

#[test]
fn constraints_users_expect() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    assert!(matches!(db.create_table("t", TableSchema::new("id")), Err(Error::TableExists { .. })));
    let mut tx = db.begin();
    tx.insert("t", v(json!({"id": 1, "a": 1}))).unwrap();
    tx.commit().unwrap();

    let mut tx = db.begin();
    assert!(matches!(tx.insert("t", v(json!({"id": 1}))), Err(Error::DuplicateKey { .. })));
    assert!(matches!(tx.patch("t", 2, v(json!({"a": 2}))), Err(Error::KeyNotFound { .. })));
    assert!(matches!(tx.soft_delete("t", 2), Err(Error::KeyNotFound { .. })));
    assert!(matches!(tx.insert("t", v(json!({"a": 1}))), Err(Error::InvalidInput { .. })));
    assert!(matches!(tx.insert("t", v(json!({"id": 1.5}))), Err(Error::InvalidInput { .. })));
    assert!(matches!(tx.insert("nope", v(json!({"id": 1}))), Err(Error::NoSuchTable { .. })));
    assert!(matches!(tx.patch("t", 1, v(json!({"id": 9}))), Err(Error::InvalidInput { .. })));
    assert!(matches!(tx.patch("t", 1, v(json!([1]))), Err(Error::InvalidInput { .. })));
    // Refused operations leave the transaction usable.
    tx.patch("t", 1, v(json!({"a": 2}))).unwrap();
    let info = tx.commit().unwrap();
    assert_eq!(info.seq, 3);
    assert_eq!(db.get("t", &Key::Int(1)).unwrap(), Some(v(json!({"id": 1, "a": 2}))));

    let big = "x".repeat(5 * 1024 * 1024);
    let mut tx = db.begin();
    assert!(matches!(tx.insert("t", v(json!({"id": 2, "s": big}))), Err(Error::TooLarge { .. })));
    let long_key = "k".repeat(2000);
    assert!(matches!(tx.insert("t", v(json!({"id": long_key}))), Err(Error::TooLarge { .. })));
    assert!(matches!(
        tx.create_table("bad/name", TableSchema::new("id")),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn reinsert_after_soft_delete_is_a_new_incarnation() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    let put = |doc: serde_json::Value| {
        let mut tx = db.begin();
        tx.insert("t", v(doc)).unwrap();
        tx.commit().unwrap().seq
    };
    let first = put(json!({"id": "k", "n": 1}));
    let mut tx = db.begin();
    tx.soft_delete("t", "k").unwrap();
    let deleted = tx.commit().unwrap().seq;
    let second = put(json!({"id": "k", "n": 2}));
    let snap = db.read(AsOf::Now).unwrap();
    let hist = snap.history("t", &"k".into()).unwrap();
    let kinds: Vec<ChangeKind> = hist.iter().map(|h| h.kind).collect();
    assert_eq!(kinds, [ChangeKind::Insert, ChangeKind::SoftDelete, ChangeKind::Insert]);
    assert_eq!(hist.iter().map(|h| h.seq).collect::<Vec<_>>(), [first, deleted, second]);
    let at = |s| db.read(AsOf::Seq(s)).unwrap().get("t", &"k".into()).unwrap();
    assert_eq!(at(first), Some(v(json!({"id": "k", "n": 1}))));
    assert_eq!(at(deleted), None);
    assert_eq!(at(second), Some(v(json!({"id": "k", "n": 2}))));
}

#[test]
fn schema_is_part_of_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let created = db.create_table("t", TableSchema::new("id")).unwrap().seq;
    let mut tx = db.begin();
    tx.insert("t", v(json!({"id": 1}))).unwrap();
    let inserted = tx.commit().unwrap().seq;
    let mut altered = TableSchema::new("id");
    altered.indexes.push(vec!["email".into()]);
    let mut tx = db.begin();
    tx.alter_table("t", altered.clone()).unwrap();
    let alter_seq = tx.commit().unwrap().seq;
    let dropped = db.drop_table("t").unwrap().seq;
    let recreated = db.create_table("t", TableSchema::new("code")).unwrap().seq;

    let snap = |s| db.read(AsOf::Seq(s)).unwrap();
    assert_eq!(snap(created - 1).tables(), Vec::<String>::new());
    assert_eq!(snap(created).schema("t").unwrap(), TableSchema::new("id"));
    assert_eq!(snap(alter_seq).schema("t").unwrap(), altered);
    assert!(matches!(snap(dropped).get("t", &Key::Int(1)), Err(Error::NoSuchTable { .. })));
    assert_eq!(snap(inserted).get("t", &Key::Int(1)).unwrap(), Some(v(json!({"id": 1}))));
    // The new incarnation of the table starts empty.
    assert_eq!(snap(recreated).scan("t", |_| true).unwrap(), vec![]);
    assert_eq!(snap(recreated).schema("t").unwrap().primary_key, "code");
    // The derived files follow the current schema.
    let yaml = std::fs::read_to_string(dir.path().join("tables/t/schema.yaml")).unwrap();
    assert!(yaml.contains("primary_key: code"), "{yaml}");
    drop(db);
    // And the whole schema history survives a reopen.
    let db = Database::open(dir.path()).unwrap();
    let snap = |s| db.read(AsOf::Seq(s)).unwrap();
    assert_eq!(snap(alter_seq).schema("t").unwrap(), altered);
    assert_eq!(snap(inserted).get("t", &Key::Int(1)).unwrap(), Some(v(json!({"id": 1}))));
    assert_eq!(snap(recreated).scan("t", |_| true).unwrap(), vec![]);
}

#[test]
fn reads_as_of_time_and_future() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    let mut times = Vec::new();
    for n in 0..5 {
        let mut tx = db.begin();
        tx.insert("t", v(json!({"id": n}))).unwrap();
        let info = tx.commit().unwrap();
        times.push(info);
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    for w in times.windows(2) {
        assert!(w[0].unix_ms <= w[1].unix_ms, "commit time never decreases");
    }
    for info in &times {
        let snap = db.read(AsOf::UnixMs(info.unix_ms)).unwrap();
        assert!(snap.seq() >= info.seq);
        assert_eq!(db.commit_time(snap.seq()), Some(info.unix_ms));
    }
    assert_eq!(db.read(AsOf::UnixMs(0)).unwrap().seq(), 0);
    let last = db.last_seq();
    assert!(matches!(
        db.read(AsOf::Seq(last + 1)),
        Err(Error::FutureSeq { requested, latest }) if requested == last + 1 && latest == last
    ));
    assert_eq!(db.read(AsOf::UnixMs(u64::MAX)).unwrap().seq(), last);
}

#[test]
fn history_survives_reopen_with_rotation_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let db = Database::open_with(dir.path(), small_files()).unwrap();
        db.create_table("t", TableSchema::new("id")).unwrap();
        for n in 0..200i64 {
            let mut tx = db.begin();
            if n % 3 == 2 {
                tx.patch("t", n - 1, v(json!({"p": n}))).unwrap();
            } else {
                tx.insert("t", v(json!({"id": n, "pad": "x".repeat(50)}))).unwrap();
            }
            tx.commit().unwrap();
            expected.push(db.read(AsOf::Now).unwrap().scan("t", |_| true).unwrap());
        }
        // No close: the Drop checkpoint runs, but the WAL had been reset many times already.
    }
    let segs = std::fs::read_dir(dir.path().join("tables/t/segments")).unwrap().count();
    assert!(segs > 5, "segments rotated: {segs}");
    for round in 0..2 {
        let db = Database::open_with(dir.path(), small_files()).unwrap();
        assert_eq!(db.last_seq(), 201, "round {round}");
        for (i, rows) in expected.iter().enumerate() {
            let got = db.read(AsOf::Seq(i as u64 + 2)).unwrap().scan("t", |_| true).unwrap();
            assert_eq!(&got, rows, "seq {}", i + 2);
        }
    }
}

#[test]
fn derived_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        db.create_table("t", TableSchema::new("id")).unwrap();
    }
    let yaml = dir.path().join("tables/t/schema.yaml");
    let meta = dir.path().join("tables/t/meta.json");
    let original = std::fs::read_to_string(&yaml).unwrap();
    std::fs::remove_file(&yaml).unwrap();
    std::fs::write(&meta, "garbage").unwrap();
    drop(Database::open(dir.path()).unwrap());
    assert_eq!(std::fs::read_to_string(&yaml).unwrap(), original);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(meta["primary_key"], "id");
    assert_eq!(meta["created_seq"], 1);
}

#[test]
fn foreign_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    assert!(matches!(Database::open(dir.path()), Err(Error::NotADatabase { .. })));
    let absent = dir.path().join("absent");
    let opts = Options { create_if_missing: false, ..Options::default() };
    assert!(matches!(Database::open_with(&absent, opts), Err(Error::NotADatabase { .. })));
    assert!(!absent.exists());
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path()).unwrap());
    db.create_table("a", TableSchema::new("id")).unwrap();
    db.create_table("b", TableSchema::new("id")).unwrap();
    let threads = 8;
    let per_thread = 40;
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    let id = t * 1000 + i;
                    let mut tx = db.begin();
                    tx.insert("a", v(json!({"id": id}))).unwrap();
                    tx.insert("b", v(json!({"id": id}))).unwrap();
                    tx.commit().unwrap();
                }
            });
        }
        // Readers: every snapshot shows both halves of every transaction or neither.
        for _ in 0..2 {
            let db = db.clone();
            s.spawn(move || {
                for _ in 0..200 {
                    let snap = db.read(AsOf::Now).unwrap();
                    let a = snap.scan("a", |_| true).unwrap();
                    let b = snap.scan("b", |_| true).unwrap();
                    assert_eq!(
                        a.iter().map(|r| &r.key).collect::<Vec<_>>(),
                        b.iter().map(|r| &r.key).collect::<Vec<_>>()
                    );
                    assert_eq!(a.len() as u64, snap.seq() - 2);
                }
            });
        }
    });
    assert_eq!(db.last_seq(), 2 + (threads * per_thread) as u64);
    let times: Vec<u64> = (1..=db.last_seq()).map(|s| db.commit_time(s).unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn shared_scans_answer_like_copying_scans_and_never_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    for round in 0..4_i64 {
        let mut tx = db.begin();
        for id in 0..20_i64 {
            let result = match (id + round) % 4 {
                0 => tx.insert("t", v(json!({"id": id, "round": round}))).map(|_| ()),
                1 => tx.patch("t", id, v(json!({"round": round, "odd": id % 2}))),
                _ => tx.soft_delete("t", id),
            };
            drop(result); // refused changes (a missing or live key) are part of the mix
        }
        tx.commit().unwrap();
    }
    let held = db.read(AsOf::Seq(3)).unwrap().scan_shared("t", |_| true).unwrap();
    let copied_then = db.read(AsOf::Seq(3)).unwrap().scan("t", |_| true).unwrap();
    db.drop_table("t").unwrap();
    for seq in 0..=db.last_seq() {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        let odd = |d: &Value| d.get("odd") == Some(&Value::Int(1));
        match (snap.scan("t", odd), snap.scan_shared("t", odd)) {
            (Ok(copied), Ok(shared)) => {
                let shared: Vec<(Key, Value)> =
                    shared.into_iter().map(|r| (r.key, (*r.doc).clone())).collect();
                let copied: Vec<(Key, Value)> =
                    copied.into_iter().map(|r| (r.key, r.doc)).collect();
                assert_eq!(shared, copied, "seq {seq}");
            }
            (copied, shared) => {
                let gone = |e: &Error| matches!(e, Error::NoSuchTable { .. });
                assert!(
                    copied.is_err_and(|e| gone(&e)) && shared.is_err_and(|e| gone(&e)),
                    "seq {seq}"
                );
            }
        }
    }
    // Documents handed out earlier are immutable: later commits did not change them.
    let held: Vec<(Key, Value)> =
        held.into_iter().map(|r| (r.key, Arc::unwrap_or_clone(r.doc))).collect();
    let copied_then: Vec<(Key, Value)> = copied_then.into_iter().map(|r| (r.key, r.doc)).collect();
    assert!(!held.is_empty());
    assert_eq!(held, copied_then);
}

/// A transaction of more than a megabyte of frames goes to its segment file directly, after
/// the small frames buffered before it (here the table's creation and one small commit): the
/// file must hold them in seq order, which the reopen checks.
#[test]
fn a_large_transaction_follows_the_buffered_frames_in_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    let mut tx = db.begin();
    tx.insert("t", v(json!({"id": -1, "small": true}))).unwrap();
    let small = tx.commit().unwrap();
    let mut tx = db.begin();
    for i in 0..12_000 {
        tx.insert("t", v(json!({"id": i, "pad": "x".repeat(100)}))).unwrap();
    }
    let large = tx.commit().unwrap();
    db.close().unwrap();

    let db = Database::open(dir.path()).unwrap();
    let snap = db.read(AsOf::Now).unwrap();
    assert_eq!(snap.scan("t", |_| true).unwrap().len(), 12_001);
    let first = db.read(AsOf::Seq(small.seq)).unwrap();
    assert_eq!(first.scan("t", |_| true).unwrap().len(), 1);
    assert_eq!(
        db.read(AsOf::Seq(large.seq))
            .unwrap()
            .get("t", &Key::Int(11_999))
            .unwrap()
            .map(|d| d.get("id").cloned()),
        Some(Some(Value::Int(11_999)))
    );
}
