//! Index files (`tables/<t>/indexes/*.idx`): written at a clean close, loaded by the next
//! open, and never trusted over the segments. Indexed lookups now and `AS OF` every seq must
//! answer the same with a valid file, with none, with a stale one (commits after it was
//! written by a process that never closed), with a damaged or truncated one, after the table
//! is dropped and re-created with the same name, and through power cuts at every sync point
//! of the close that writes them.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Rng, copy_dir};
use driftdb_core::storage::sim::SimFs;
use driftdb_core::{AsOf, Database, Error, Options, Row, TableSchema, Value};
use serde_json::json;

fn v(j: serde_json::Value) -> Value {
    j.into()
}

fn schema() -> TableSchema {
    let mut schema = TableSchema::new("id");
    schema.indexes.push(vec!["status".into(), "c.n".into()]);
    schema
}

fn values() -> Vec<Value> {
    ["new", "paid", "shipped"]
        .iter()
        .map(|s| v(json!(s)))
        .chain([Value::Int(0), Value::Int(2), Value::Float(2.0), Value::Null])
        .collect()
}

/// Every indexed lookup of table `t` at every seq: (seq, field, value, rows), each checked
/// against a scan.
type Answers = Vec<(u64, &'static str, Value, Option<Vec<Row>>)>;

fn answers(db: &Database) -> Answers {
    let mut out = Vec::new();
    for seq in 0..=db.last_seq() {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        for field in ["status", "c.n"] {
            for value in values() {
                let found = snap.lookup("t", field, &value).ok().flatten();
                if let Some(found) = &found {
                    let scanned = common::scan_equal(&snap, field, &value);
                    assert_eq!(*found, scanned, "{field} = {value} at seq {seq}");
                }
                out.push((seq, field, value, found));
            }
        }
    }
    out
}

/// `steps` random one-write transactions on `table` (the first failed commit ends them).
fn try_history(
    db: &Database,
    table: &str,
    rng: &mut Rng,
    steps: usize,
) -> driftdb_core::Result<()> {
    for _ in 0..steps {
        let key = rng.below(12) as i64;
        let status = ["new", "paid", "shipped"][rng.below(3) as usize];
        let mut tx = db.begin();
        let result = match rng.below(5) {
            0 | 1 => tx.insert(table, v(json!({"id": key, "status": status, "c": {"n": key % 3}}))),
            2 => tx.patch(table, key, v(json!({"status": status}))).map(|_| key.into()),
            3 => tx
                .patch(table, key, v(json!({"status": null, "c": {"n": 2.0}})))
                .map(|_| key.into()),
            _ => tx.soft_delete(table, key).map(|_| key.into()),
        };
        if result.is_ok() {
            tx.commit()?;
        }
    }
    Ok(())
}

fn history(db: &Database, table: &str, rng: &mut Rng, steps: usize) {
    try_history(db, table, rng, steps).unwrap();
}

fn index_files(db_dir: &Path) -> Vec<PathBuf> {
    let dir = db_dir.join("tables/t/indexes");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.sort();
    files
}

/// A database with a history of `t` (and of another table `u`), closed cleanly.
fn built(seed: u64) -> (tempfile::TempDir, PathBuf, Answers) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::open(&path).unwrap();
    db.create_table("t", schema()).unwrap();
    db.create_table("u", schema()).unwrap();
    let mut rng = Rng(seed);
    history(&db, "t", &mut rng, 60);
    history(&db, "u", &mut rng, 10);
    let want = answers(&db);
    db.close().unwrap();
    (dir, path, want)
}

#[test]
fn a_clean_close_writes_files_the_next_open_loads() {
    for seed in 1..4u64 {
        let (_dir, path, want) = built(seed * 7919);
        let files = index_files(&path);
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["c.n.idx", "status.idx"]);
        let db = Database::open(&path).unwrap();
        assert_eq!(db.index_file_notes(), Vec::<String>::new());
        assert_eq!(db.index_files_loaded(), 4, "two indexes of two tables");
        assert_eq!(answers(&db), want, "seed {seed}");
        // Unchanged tables: the close rewrites nothing.
        let before: Vec<_> =
            files.iter().map(|f| std::fs::metadata(f).unwrap().modified().unwrap()).collect();
        db.close().unwrap();
        let after: Vec<_> =
            files.iter().map(|f| std::fs::metadata(f).unwrap().modified().unwrap()).collect();
        assert_eq!(before, after);
    }
}

#[test]
fn without_files_the_indexes_are_rebuilt() {
    let (_dir, path, want) = built(11);
    for file in index_files(&path) {
        std::fs::remove_file(file).unwrap();
    }
    let db = Database::open(&path).unwrap();
    assert_eq!(db.index_files_loaded(), 2, "only u's files are left");
    assert_eq!(answers(&db), want);
    db.close().unwrap();
    assert_eq!(index_files(&path).len(), 2, "written again at close");
}

#[test]
fn a_stale_file_is_not_used() {
    for seed in 1..4u64 {
        // With a checkpoint after every commit the new events reach the checkpointed
        // segments (the files are stale); without, they are only in the WAL, and its replay
        // after the files are loaded brings the indexes up to date.
        for checkpoints in [true, false] {
            let (dir, path, _) = built(seed * 31);
            let mut options = Options::default();
            if checkpoints {
                options.wal_size_bytes_max = 1;
            }
            let db = Database::open_with(&path, options).unwrap();
            let mut rng = Rng(seed);
            history(&db, "t", &mut rng, 30);
            let want = answers(&db);
            // The process dies without closing: the files name t as it was at the last close.
            let copy = dir.path().join("copy");
            copy_dir(&path, &copy);
            drop(db);
            let db = Database::open(&copy).unwrap();
            let notes = db.index_file_notes();
            if checkpoints {
                assert!(notes.iter().any(|n| n.contains("stale")), "{notes:?}");
                assert_eq!(db.index_files_loaded(), 2, "u did not change: its files hold");
            } else {
                assert_eq!(notes, Vec::<String>::new());
                assert_eq!(db.index_files_loaded(), 4);
            }
            assert_eq!(answers(&db), want, "seed {seed}");
            db.close().unwrap();
            let db = Database::open(&copy).unwrap();
            assert_eq!(db.index_file_notes(), Vec::<String>::new());
            assert_eq!(db.index_files_loaded(), 4);
            assert_eq!(answers(&db), want, "seed {seed}");
        }
    }
}

#[test]
fn a_damaged_or_truncated_file_is_rebuilt() {
    let (dir, path, want) = built(5);
    let file = index_files(&path).into_iter().find(|f| f.ends_with("status.idx")).unwrap();
    let good = std::fs::read(&file).unwrap();
    let len = good.len();
    let mut damages: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [0, 9, 12, 30, 50, 85, 90, len / 2, len - 5, len - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x21;
        damages.push((format!("byte {at} flipped"), bytes));
    }
    for cut in [0, 10, 87, len / 2, len - 1] {
        damages.push((format!("cut at {cut}"), good[..cut].to_vec()));
    }
    damages.push(("garbage after it".into(), [good.clone(), vec![7; 9]].concat()));
    for (i, (what, bytes)) in damages.into_iter().enumerate() {
        let copy = dir.path().join(format!("copy{i}"));
        copy_dir(&path, &copy);
        std::fs::write(copy.join("tables/t/indexes/status.idx"), bytes).unwrap();
        let db = Database::open(&copy).unwrap();
        let notes = db.index_file_notes();
        assert!(notes.iter().any(|n| n.contains("status.idx")), "{what}: {notes:?}");
        assert_eq!(db.index_files_loaded(), 2, "{what}: t's indexes were rebuilt");
        assert_eq!(answers(&db), want, "{what}");
        db.close().unwrap();
        // Written again at close (its bytes may differ: hash maps are written in their order).
        let db = Database::open(&copy).unwrap();
        assert_eq!(db.index_file_notes(), Vec::<String>::new(), "{what}");
        assert_eq!(db.index_files_loaded(), 4, "{what}");
        assert_eq!(answers(&db), want, "{what}");
    }
}

#[test]
fn a_file_of_another_table_or_a_foreign_file_is_not_used() {
    let (_dir, path, want) = built(17);
    // u's file put in t's place: a valid file, but of another table.
    std::fs::copy(path.join("tables/u/indexes/c.n.idx"), path.join("tables/t/indexes/c.n.idx"))
        .unwrap();
    std::fs::write(path.join("tables/t/indexes/other.idx"), b"not an index file").unwrap();
    let db = Database::open(&path).unwrap();
    let notes = db.index_file_notes();
    assert!(notes.iter().any(|n| n.contains("names table `u`")), "{notes:?}");
    assert_eq!(db.index_files_loaded(), 2);
    assert_eq!(answers(&db), want);
    db.close().unwrap();
    let names: Vec<_> =
        index_files(&path).iter().map(|f| f.file_name().unwrap().to_owned()).collect();
    assert_eq!(names, ["c.n.idx", "status.idx"], "the foreign file is removed at close");
}

#[test]
fn a_dropped_and_recreated_table_does_not_use_the_old_files() {
    for seed in 1..4u64 {
        let (dir, path, _) = built(seed * 101);
        let db = Database::open(&path).unwrap();
        assert_eq!(db.index_files_loaded(), 4);
        db.drop_table("t").unwrap();
        db.create_table("t", schema()).unwrap();
        let mut rng = Rng(seed);
        history(&db, "t", &mut rng, 40);
        let want = answers(&db);
        let copy = dir.path().join("copy");
        copy_dir(&path, &copy);
        db.close().unwrap();
        for dir in [&path, &copy] {
            let db = Database::open(dir).unwrap();
            assert_eq!(answers(&db), want, "seed {seed}");
            db.close().unwrap();
        }
        // Re-created with another index: the old index's file goes at close.
        let db = Database::open(&path).unwrap();
        db.drop_table("t").unwrap();
        let mut other = TableSchema::new("id");
        other.indexes.push(vec!["status".into()]);
        db.create_table("t", other).unwrap();
        history(&db, "t", &mut rng, 20);
        let want = answers(&db);
        db.close().unwrap();
        let names: Vec<_> =
            index_files(&path).iter().map(|f| f.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["status.idx"]);
        let db = Database::open(&path).unwrap();
        assert_eq!(db.index_file_notes(), Vec::<String>::new());
        assert_eq!(answers(&db), want);
    }
}

#[test]
fn an_index_declared_after_the_files_were_written_is_built() {
    let (_dir, path, _) = built(23);
    let db = Database::open(&path).unwrap();
    let mut schema = schema();
    schema.indexes.push(vec!["id".into()]);
    let mut tx = db.begin();
    tx.alter_table("t", schema).unwrap();
    tx.commit().unwrap();
    let want = answers(&db);
    drop(db);
    let db = Database::open(&path).unwrap();
    assert_eq!(db.index_files_loaded(), 5, "the ALTER made t's files stale; u's and t's new");
    assert_eq!(answers(&db), want);
}

/// One session that commits and closes (writing the index files), then one that commits to
/// the loaded indexes and closes: the answers each gave before closing (`None` once a
/// simulated crash failed an operation).
fn sessions(fs: &SimFs) -> Option<Answers> {
    let options = || Options { fs: Arc::new(fs.clone()), ..Options::default() };
    let db = Database::open_with("/db", options()).ok()?;
    db.create_table("t", schema()).ok()?;
    let mut rng = Rng(77);
    try_history(&db, "t", &mut rng, 25).ok()?;
    db.close().ok()?;
    let db = Database::open_with("/db", options()).ok()?;
    try_history(&db, "t", &mut rng, 10).ok()?;
    let seen = answers(&db);
    db.close().ok()?;
    Some(seen)
}

/// A power cut at every sync point of [`sessions`]: every image opens, and answers as the
/// database did at its last durable seq.
#[test]
fn power_cuts_while_index_files_are_written() {
    let fs = SimFs::new();
    let full = sessions(&fs).unwrap();
    let syncs = fs.sync_count();
    for n in 1..=syncs {
        let fs = SimFs::new();
        fs.crash_at_sync(n);
        let _ = sessions(&fs);
        let options = Options { fs: Arc::new(fs.crash_image()), ..Options::default() };
        let Ok(db) = Database::open_with("/db", options) else {
            panic!("the image after a crash at sync {n} does not open");
        };
        let last = db.last_seq();
        let want: Answers = full.iter().filter(|(s, ..)| *s <= last).cloned().collect();
        assert_eq!(answers(&db), want, "crash at sync {n} of {syncs}");
    }
}

/// A transaction with a schema event is replayed through the committing path, which checks
/// unique fields. A table whose indexes would come from its files has none during the
/// replay, so it gets them built when such a transaction writes to it: the open does not read
/// every row per write (the files of that table are then not used), and lookups and the
/// unique constraint still answer as before.
#[test]
fn a_replayed_schema_transaction_writing_a_unique_table_builds_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let mut users = TableSchema::new("id");
    users.unique.push("email".into());
    db.create_table("users", users).unwrap();
    db.create_table("plain", schema()).unwrap();
    let mut tx = db.begin();
    for i in 0..2_000 {
        tx.insert("users", v(json!({"id": i, "email": format!("u{i}@x")}))).unwrap();
        tx.insert("plain", v(json!({"id": i, "status": "new"}))).unwrap();
    }
    tx.commit().unwrap();
    db.close().unwrap();

    // Files for both tables now; then one transaction creates a table and writes users.
    let db = Database::open(tmp.path()).unwrap();
    assert_eq!(db.index_files_loaded(), 3);
    let mut tx = db.begin();
    tx.create_table("other", TableSchema::new("id")).unwrap();
    for i in 2_000..2_200 {
        tx.insert("users", v(json!({"id": i, "email": format!("u{i}@x")}))).unwrap();
    }
    let migrated = tx.commit().unwrap();
    db.close().unwrap();

    let db = Database::open(tmp.path()).unwrap();
    // `users` got its index during the replay, so its file was not needed; `plain`'s two
    // came from their files.
    assert_eq!(db.index_files_loaded(), 2);
    assert_eq!(db.index_file_notes(), Vec::<String>::new());
    for seq in [migrated.seq - 1, migrated.seq] {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        for i in [0, 1_999, 2_000, 2_199] {
            let email = v(json!(format!("u{i}@x")));
            let found = snap.lookup("users", "email", &email).unwrap().unwrap();
            let want = usize::from(i < 2_000 || seq == migrated.seq);
            assert_eq!(found.len(), want, "u{i} at seq {seq}");
        }
    }
    let mut tx = db.begin();
    let duplicate = tx.insert("users", v(json!({"id": 9_999, "email": "u2100@x"})));
    assert!(matches!(duplicate, Err(Error::UniqueViolation(_))), "{duplicate:?}");
}
