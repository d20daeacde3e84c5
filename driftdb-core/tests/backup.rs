//! Backups restore exactly what the source answered at their seq.
//!
//! - a full backup restores to a database answering like the source `AS OF` every seq up to
//!   the backup's (reads, scans, histories, commit times), with compacted and multi-segment
//!   tables and a dropped and re-created one;
//! - point-in-time restores at several seqs and times answer like the source `AS OF` them,
//!   with a compressed segment cut in the middle;
//! - a backup taken while threads commit transfers restores to one consistent seq;
//! - damage to any file of a backup (a flipped byte, a cut, a deletion, a stray file, a
//!   damaged manifest) is found by `verify` and refused by `restore`;
//! - an incremental backup copies only what changed and restores like a full one; damage in
//!   its base is found through the chain.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use common::answers::{Answers, answers, assert_same};
use common::copy_dir;
use driftdb_core::backup::{self, MANIFEST_FILE};
use driftdb_core::{AsOf, Database, Error, Key, Options, TableSchema, Value};
use serde_json::json;

const TABLES: [&str; 3] = ["a", "b", "c"];

fn keys() -> Vec<Key> {
    (0..6).map(Key::Int).collect()
}

fn small_segments() -> Options {
    Options { segment_size_bytes_max: 2048, compaction_block_bytes: 512, ..Options::default() }
}

fn doc(k: i64, v: i64) -> Value {
    json!({"id": k, "v": v, "pad": "x".repeat(40)}).into()
}

/// A history over three tables: inserts, patches, deletes, table `c` dropped and created
/// again, table `a` compacted in the middle. Returns the seq after each round.
fn write_history(db: &Database, rounds: i64) -> Vec<u64> {
    let mut seqs = Vec::new();
    for t in TABLES {
        if db.read(AsOf::Now).unwrap().schema(t).is_err() {
            db.create_table(t, TableSchema::new("id")).unwrap();
        }
    }
    let start = db.last_seq() as i64;
    for round in 0..rounds {
        let r = start + round;
        for (ti, t) in TABLES.iter().enumerate() {
            let mut tx = db.begin();
            let k = (r + ti as i64) % 6;
            if tx.get(t, &Key::Int(k)).unwrap().is_some() {
                if r % 4 == 0 {
                    tx.soft_delete(t, k).unwrap();
                } else {
                    tx.patch(t, k, json!({"v": r}).into()).unwrap();
                }
            } else {
                tx.insert(t, doc(k, r)).unwrap();
            }
            tx.commit().unwrap();
        }
        if round == rounds / 2 {
            db.compact_table("a").unwrap();
            db.drop_table("c").unwrap();
            db.create_table("c", TableSchema::new("id")).unwrap();
        }
        seqs.push(db.last_seq());
    }
    seqs
}

fn all_answers(db: &Database) -> Answers {
    answers(db, &TABLES, &keys())
}

fn restored_answers(dir: &Path) -> Answers {
    let db = Database::open_with(dir, Options { create_if_missing: false, ..Options::default() })
        .unwrap();
    all_answers(&db)
}

#[test]
fn a_restore_answers_like_the_source_at_the_backup_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let db = Database::open_with(&src, small_segments()).unwrap();
    write_history(&db, 30);
    let report = db.backup_to(&tmp.path().join("bk")).unwrap();
    assert_eq!(report.seq, db.last_seq());
    assert!(report.files > 5, "{report}");
    // The source goes on after the backup; the restore must not see it.
    write_history(&db, 6);
    let want = all_answers(&db).up_to(report.seq);
    let verified = backup::verify(&tmp.path().join("bk")).unwrap();
    assert!(verified.is_ok(), "{:?}", verified.problems);
    let restored = backup::restore(&tmp.path().join("bk"), &tmp.path().join("r"), None).unwrap();
    assert_eq!(restored.seq, report.seq);
    assert_same(&want, &restored_answers(&tmp.path().join("r")), "full restore");
    // A full backup is itself a database: a copy of it opens and answers the same.
    let copy = tmp.path().join("copy");
    copy_dir(&tmp.path().join("bk"), &copy);
    assert_same(&want, &restored_answers(&copy), "the backup directory opened");
    // A restore refuses a directory that is not empty.
    let err = backup::restore(&tmp.path().join("bk"), &tmp.path().join("r"), None).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    let err = db.backup_to(&tmp.path().join("bk")).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
}

#[test]
fn point_in_time_restores_answer_like_the_source_as_of_then() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open_with(tmp.path().join("db"), small_segments()).unwrap();
    let seqs = write_history(&db, 24);
    // Compact again at the end, so the compressed set spans most of the history.
    db.compact_table("b").unwrap();
    db.compact_table("a").unwrap();
    let bk = tmp.path().join("bk");
    let report = db.backup_to(&bk).unwrap();
    let all = all_answers(&db);
    let picks = [0, 1, 3, seqs[5], seqs[11] + 1, seqs[12], seqs[20] - 1, report.seq - 1];
    let mut recompressed = 0;
    for (i, &n) in picks.iter().enumerate() {
        let target = tmp.path().join(format!("at{i}"));
        let r = backup::restore(&bk, &target, Some(AsOf::Seq(n))).unwrap();
        assert_eq!(r.seq, n);
        assert_same(&all.up_to(n), &restored_answers(&target), format!("restore at seq {n}"));
        for rel in files_of(&target) {
            let compacted = rel.to_string_lossy().contains("compacted-");
            if compacted
                && std::fs::read(target.join(&rel)).ok() != std::fs::read(bk.join(&rel)).ok()
            {
                recompressed += 1;
            }
        }
    }
    assert!(recompressed > 0, "some restore cut a compressed segment in the middle");
    // By time: the last seq committed at or before it.
    let t = db.commit_time(seqs[8]).unwrap();
    let want = db.resolve(AsOf::UnixMs(t)).unwrap();
    let r = backup::restore(&bk, &tmp.path().join("time"), Some(AsOf::UnixMs(t))).unwrap();
    assert_eq!(r.seq, want);
    assert_eq!(r.unix_ms, db.commit_time(want).unwrap());
    assert_same(&all.up_to(want), &restored_answers(&tmp.path().join("time")), "by time");
    let err = backup::restore(&bk, &tmp.path().join("future"), Some(AsOf::Seq(report.seq + 1)))
        .unwrap_err();
    assert!(matches!(err, Error::FutureSeq { .. }), "{err}");
}

#[test]
fn a_backup_during_concurrent_transfers_restores_to_one_consistent_seq() {
    const ACCOUNTS: i64 = 8;
    const TOTAL: i64 = ACCOUNTS * 100;
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open_with(tmp.path().join("db"), small_segments()).unwrap();
    db.create_table("acct", TableSchema::new("id")).unwrap();
    let mut tx = db.begin();
    for k in 0..ACCOUNTS {
        tx.insert("acct", json!({"id": k, "balance": 100}).into()).unwrap();
    }
    tx.commit().unwrap();
    let stop = AtomicBool::new(false);
    let reports = std::thread::scope(|s| {
        for thread in 0..3i64 {
            let (db, stop) = (&db, &stop);
            s.spawn(move || {
                let mut n = thread;
                while !stop.load(Ordering::Relaxed) {
                    n += 7;
                    let (from, to) = (n % ACCOUNTS, (n / 3 + 1) % ACCOUNTS);
                    if from == to {
                        continue;
                    }
                    let mut tx = db.begin();
                    let balance = |tx: &driftdb_core::Transaction<'_>, k: i64| {
                        let d = tx.get("acct", &Key::Int(k)).unwrap().unwrap();
                        driftdb_core::from_value::<serde_json::Value>(&d).unwrap()["balance"]
                            .as_i64()
                            .unwrap()
                    };
                    let (a, b) = (balance(&tx, from), balance(&tx, to));
                    tx.patch("acct", from, json!({"balance": a - 5}).into()).unwrap();
                    tx.patch("acct", to, json!({"balance": b + 5}).into()).unwrap();
                    match tx.commit() {
                        Ok(_) => {}
                        Err(e) if e.is_retryable() => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
        let mut reports = Vec::new();
        for i in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(40));
            reports.push(db.backup_to(&tmp.path().join(format!("bk{i}"))).unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        reports
    });
    for (i, report) in reports.iter().enumerate() {
        assert!(report.seq > 1, "the writers committed before backup {i}");
        let target = tmp.path().join(format!("r{i}"));
        let restored = backup::restore(&tmp.path().join(format!("bk{i}")), &target, None).unwrap();
        assert_eq!(restored.seq, report.seq);
        let r = Database::open(&target).unwrap();
        assert_eq!(r.last_seq(), report.seq);
        let rows = r.read(AsOf::Now).unwrap().scan("acct", |_| true).unwrap();
        let source = db.read(AsOf::Seq(report.seq)).unwrap().scan("acct", |_| true).unwrap();
        assert_eq!(rows, source, "backup {i} at seq {}", report.seq);
        let total: i64 = rows
            .iter()
            .map(|row| {
                let d = driftdb_core::from_value::<serde_json::Value>(&row.doc).unwrap();
                d["balance"].as_i64().unwrap()
            })
            .sum();
        assert_eq!(total, TOTAL, "backup {i}");
    }
}

/// Every file of a directory tree, relative paths.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Damage `file` of a copy of the backup in one way; verify must name it and restore refuse.
fn assert_detected(bk: &Path, tmp: &Path, case: &str, damage: impl FnOnce(&Path)) {
    let copy = tmp.join(format!("damaged-{}", case.replace(['/', ' '], "_")));
    copy_dir(bk, &copy);
    damage(&copy);
    let target = tmp.join(format!("target-{}", case.replace(['/', ' '], "_")));
    match backup::verify(&copy) {
        Ok(report) => assert!(!report.is_ok(), "{case}: verify found nothing"),
        Err(e) => assert!(e.is_corruption(), "{case}: {e}"),
    }
    let err = backup::restore(&copy, &target, None).unwrap_err();
    assert!(err.is_corruption(), "{case}: {err}");
    assert!(!target.exists(), "{case}: a refused restore wrote nothing");
}

#[test]
fn damage_to_any_file_of_a_backup_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open_with(tmp.path().join("db"), small_segments()).unwrap();
    write_history(&db, 12);
    let bk = tmp.path().join("bk");
    db.backup_to(&bk).unwrap();
    let files = files_of(&bk);
    assert!(files.iter().any(|f| f.to_string_lossy().contains("compacted-")), "{files:?}");
    for rel in &files {
        let name = rel.to_string_lossy().to_string();
        let len = std::fs::metadata(bk.join(rel)).unwrap().len();
        for at in [0, len / 2, len - 1] {
            assert_detected(&bk, tmp.path(), &format!("flip {name} {at}"), |c| {
                let mut data = std::fs::read(c.join(rel)).unwrap();
                data[at as usize] ^= 0x10;
                std::fs::write(c.join(rel), data).unwrap();
            });
        }
        assert_detected(&bk, tmp.path(), &format!("cut {name}"), |c| {
            let data = std::fs::read(c.join(rel)).unwrap();
            std::fs::write(c.join(rel), &data[..data.len() - 1]).unwrap();
        });
        assert_detected(&bk, tmp.path(), &format!("delete {name}"), |c| {
            std::fs::remove_file(c.join(rel)).unwrap();
        });
        if name != MANIFEST_FILE {
            // verify names the damaged file itself.
            let copy = tmp.path().join("named");
            copy_dir(&bk, &copy);
            std::fs::write(copy.join(rel), b"garbage").unwrap();
            let report = backup::verify(&copy).unwrap();
            assert!(report.problems.iter().any(|p| p.file == copy.join(rel)), "{name}");
            std::fs::remove_dir_all(&copy).unwrap();
        }
    }
    assert_detected(&bk, tmp.path(), "stray file", |c| {
        std::fs::write(c.join("tables/a/segments/00000099.seg"), b"x").unwrap();
    });
    // The backup itself is still sound.
    assert!(backup::verify(&bk).unwrap().is_ok());
}

#[test]
fn an_incremental_backup_copies_only_what_changed_and_restores_like_a_full_one() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open_with(tmp.path().join("db"), small_segments()).unwrap();
    write_history(&db, 16);
    let full = tmp.path().join("full");
    let first = db.backup_to(&full).unwrap();
    write_history(&db, 3); // appends to open segments
    let inc1 = tmp.path().join("inc1");
    let second = db.backup_incremental(&inc1, &full).unwrap();
    assert!(second.bytes_copied < second.bytes / 2, "{second}");
    write_history(&db, 8); // new segments, a compaction: new files
    let inc2 = tmp.path().join("inc2");
    let third = db.backup_incremental(&inc2, &inc1).unwrap();
    assert!(third.bytes_copied < third.bytes, "{third}");
    let all = all_answers(&db);
    for (dir, report) in [(&full, &first), (&inc1, &second), (&inc2, &third)] {
        let v = backup::verify(dir).unwrap();
        assert!(v.is_ok(), "{:?}", v.problems);
        let target = tmp.path().join(format!("r-{}", report.seq));
        backup::restore(dir, &target, None).unwrap();
        assert_same(&all.up_to(report.seq), &restored_answers(&target), dir.display());
    }
    assert_eq!(
        backup::verify(&inc2).unwrap().chain,
        vec![inc2.clone(), inc1.clone(), full.clone()]
    );
    // Point in time through the chain, before the first incremental's seq.
    let n = first.seq - 2;
    let target = tmp.path().join("pit");
    backup::restore(&inc2, &target, Some(AsOf::Seq(n))).unwrap();
    assert_same(&all.up_to(n), &restored_answers(&target), "point in time through a chain");
    // Damage in a base is found through the chain.
    let seg = files_of(&full).into_iter().find(|f| f.ends_with("00000001.seg")).unwrap();
    let mut data = std::fs::read(full.join(&seg)).unwrap();
    data[20] ^= 1;
    std::fs::write(full.join(&seg), data).unwrap();
    let report = backup::verify(&inc2).unwrap();
    assert!(report.problems.iter().any(|p| p.file == full.join(&seg)), "{:?}", report.problems);
    let err = backup::restore(&inc2, &tmp.path().join("bad"), None).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    // A missing base is a problem too.
    std::fs::remove_dir_all(&full).unwrap();
    assert!(!backup::verify(&inc1).unwrap().is_ok());
}
