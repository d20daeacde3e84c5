//! Damaged files on a real directory: a flipped byte inside the trusted data is reported as
//! `Corrupt { file, offset }` at the start of the damaged frame, a torn WAL tail is cut off,
//! and a second opener (in this process or another) gets a clear `Locked` error.
// clippy.toml allows unwrap/expect/indexing inside #[test] functions only; the helpers of
// this test file get the same allowance, and may panic with a message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use driftdb_core::{AsOf, Database, Error, Key, Options, TableSchema, Value};
use serde_json::json;

const HEADER: usize = 16;

/// Spawning a process copies this process's file descriptors into the child until it execs,
/// including the descriptor that holds a database's `flock`: a database closed meanwhile stays
/// locked for that moment, and an immediate reopen would see `Locked`. Tests that reopen
/// databases take this lock shared; the test that spawns children takes it exclusively.
static SPAWN: RwLock<()> = RwLock::new(());

fn no_spawning() -> RwLockReadGuard<'static, ()> {
    SPAWN.read().unwrap_or_else(PoisonError::into_inner)
}

fn ok<T>(result: driftdb_core::Result<T>, ctx: impl Display) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{ctx}: unexpected error: {e} ({e:?})"),
    }
}

/// `(start, size)` of every frame of a DriftDB file (after its 16-byte header). A WAL may end
/// in preallocated zeros after its last frame.
fn frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER;
    while at + 8 <= data.len() {
        if data[at..].iter().all(|&b| b == 0) {
            return out;
        }
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert!(at + 8 + len <= data.len(), "frame at {at} runs past the end");
        out.push((at, 8 + len));
        at += 8 + len;
    }
    assert_eq!(at, data.len(), "trailing bytes");
    out
}

fn doc(n: i64) -> Value {
    json!({"id": n, "n": n, "text": format!("row {n} ").repeat(8)}).into()
}

/// Commit `count` single-row transactions into table `t` (seqs 2..=count+1; seq 1 creates it).
fn fill(db: &Database, count: i64) {
    for n in 0..count {
        let mut tx = db.begin();
        ok(tx.insert("t", doc(n)), "insert");
        if n > 0 && n % 4 == 0 {
            ok(tx.patch("t", n - 1, json!({"patched": true}).into()), "patch");
        }
        ok(tx.commit(), "commit");
    }
}

fn check_rows(db: &Database, count: i64, ctx: &str) {
    assert_eq!(db.last_seq(), count as u64 + 1, "{ctx}");
    for n in 0..count {
        let seq = n as u64 + 2;
        let got = ok(db.read(AsOf::Seq(seq)), ctx).get("t", &Key::Int(n));
        let got = ok(got, ctx);
        assert_eq!(got.as_ref().and_then(|d| d.get("n")), Some(&Value::Int(n)), "{ctx}: row {n}");
    }
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

fn assert_unchanged(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    ctx: &str,
) {
    let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    let changed: Vec<_> = paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| {
            let len = |m: &BTreeMap<PathBuf, Vec<u8>>| m.get(p).map(Vec::len);
            format!("{} ({:?} -> {:?} bytes)", p.display(), len(before), len(after))
        })
        .collect();
    assert!(changed.is_empty(), "{ctx}: a failed open modified the database: {changed:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, data) in snapshot(from) {
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    for dir in ["tables", "wal", "migrations/pending", "backups"] {
        std::fs::create_dir_all(to.join(dir)).unwrap();
    }
}

fn flip(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x40;
    std::fs::write(path, data).unwrap();
}

fn assert_corrupt_at(result: driftdb_core::Result<Database>, file: &Path, at: usize, ctx: &str) {
    match result {
        Err(Error::Corrupt { file: f, offset, reason }) => {
            assert_eq!(f, file, "{ctx}: wrong file ({reason})");
            assert_eq!(offset, at as u64, "{ctx}: wrong offset ({reason})");
        }
        other => panic!("{ctx}: expected Corrupt at {} offset {at}, got {other:?}", file.display()),
    }
}

#[test]
fn flipped_byte_in_a_checkpointed_segment_is_reported_at_its_frame() {
    let _serial = no_spawning();
    let dir = tempfile::tempdir().unwrap();
    let options =
        || Options { segment_size_bytes_max: 2048, wal_size_bytes_max: 4096, ..Options::default() };
    let db = ok(Database::open_with(dir.path(), options()), "open");
    ok(db.create_table("t", TableSchema::new("id")), "create");
    fill(&db, 60);
    ok(db.close(), "close");

    let seg_dir = dir.path().join("tables/t/segments");
    let mut segments: Vec<_> =
        std::fs::read_dir(&seg_dir).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    assert!(segments.len() >= 3, "expected rotation: {segments:?}");
    let before = snapshot(dir.path());

    // A segment in the middle, and the last one (written up to the checkpoint at close).
    for path in [&segments[segments.len() / 2], segments.last().unwrap()] {
        let data = std::fs::read(path).unwrap();
        let all = frames(&data);
        let (start, size) = all[all.len() / 2];
        // Every byte of the frame: length, CRC, and body.
        for at in start..start + size {
            let ctx = format!("{} byte {at}", path.display());
            flip(path, at);
            let result = Database::open_with(dir.path(), options());
            if let Err(e) = &result {
                let text = e.to_string();
                assert!(text.contains(&path.display().to_string()), "{ctx}: {text}");
                assert!(text.contains(&format!("offset {start}")), "{ctx}: {text}");
            }
            assert_corrupt_at(result, path, start, &ctx);
            flip(path, at);
        }
    }
    // A damaged file header is reported at offset 0.
    let path = &segments[1];
    for at in 0..16 {
        flip(path, at);
        assert_corrupt_at(Database::open_with(dir.path(), options()), path, 0, "header");
        flip(path, at);
    }
    // The failed opens changed nothing, and the repaired database opens whole.
    assert_unchanged(&before, &snapshot(dir.path()), "segment flips");
    let db = ok(Database::open_with(dir.path(), options()), "open after repair");
    check_rows(&db, 60, "after repair");
}

/// A database whose last commits are only in the WAL: written, then the handle leaked (no
/// checkpoint at close) and the directory copied, as a process killed after its commits
/// would leave it. Returns the copy and the start of every WAL batch.
fn wal_only_database(count: i64) -> (tempfile::TempDir, Vec<(usize, usize)>) {
    let live = tempfile::tempdir().unwrap();
    let db = ok(Database::open(live.path()), "open");
    ok(db.create_table("t", TableSchema::new("id")), "create");
    fill(&db, count);
    // Leak the handle: Drop would checkpoint and empty the WAL. The leaked lock stays on the
    // original directory only; the copy is unlocked.
    std::mem::forget(db);
    let copy = tempfile::tempdir().unwrap();
    copy_dir(live.path(), copy.path());
    let wal = std::fs::read(copy.path().join("wal/wal.log")).unwrap();
    let batches = frames(&wal);
    assert_eq!(batches.len() as i64, count + 1, "one batch per commit");
    (copy, batches)
}

#[test]
fn damaged_wal_batch_in_the_middle_is_corruption_at_its_offset() {
    let _serial = no_spawning();
    let (dir, batches) = wal_only_database(6);
    let wal = dir.path().join("wal/wal.log");
    let (start, size) = batches[3];
    for at in start..start + size {
        let ctx = format!("WAL byte {at}");
        flip(&wal, at);
        let before = snapshot(dir.path());
        assert_corrupt_at(Database::open(dir.path()), &wal, start, &ctx);
        // A refused open must not touch the directory: the segment tails written after the
        // checkpoint may now be the only intact copy of the damaged batch.
        assert_unchanged(&before, &snapshot(dir.path()), &ctx);
        flip(&wal, at);
    }
    let db = ok(Database::open(dir.path()), "open after repair");
    check_rows(&db, 6, "after repair");
}

#[test]
fn torn_wal_tail_is_cut_off() {
    let _serial = no_spawning();
    let (original, batches) = wal_only_database(5);
    let (start, size) = *batches.last().unwrap();
    let cuts = [start + 1, start + 4, start + 8, start + 9, start + size / 2, start + size - 1];
    for cut in cuts {
        let ctx = format!("WAL cut at {cut}");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let wal = dir.path().join("wal/wal.log");
        std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(cut as u64).unwrap();

        let db = ok(Database::open(dir.path()), &ctx);
        // The torn batch (the last commit, row 4 at seq 6) is gone; all before it is there.
        check_rows(&db, 4, &ctx);
        assert_eq!(ok(db.get("t", &Key::Int(4)), &ctx), None, "{ctx}");
        // The database continues from there, and that survives another reopen.
        let mut tx = db.begin();
        ok(tx.insert("t", doc(4)), &ctx);
        assert_eq!(ok(tx.commit(), &ctx).seq, 6, "{ctx}");
        drop(db);
        let db = ok(Database::open(dir.path()), &ctx);
        check_rows(&db, 5, &ctx);
    }
    // Zeroes over the tail (a file extended but never written) are a torn tail too.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.path(), dir.path());
    let wal = dir.path().join("wal/wal.log");
    let mut data = std::fs::read(&wal).unwrap();
    data[start + 5..].fill(0);
    data.extend_from_slice(&[0; 4096]);
    std::fs::write(&wal, data).unwrap();
    let db = ok(Database::open(dir.path()), "zeroed tail");
    check_rows(&db, 4, "zeroed tail");
}

#[test]
fn second_open_in_this_process_is_locked() {
    let _serial = no_spawning();
    let dir = tempfile::tempdir().unwrap();
    let db = ok(Database::open(dir.path()), "open");
    let second = Database::open(dir.path());
    let Err(err) = second else { panic!("a second handle opened the database") };
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Locked { path, lock } if path == dir.path() && lock == &dir.path().join("LOCK")),
        "{err:?}"
    );
    assert!(
        text.contains("is in use") && text.contains(&dir.path().display().to_string()),
        "{text}"
    );
    assert!(!err.is_corruption() && !err.is_user_error());
    drop(db);
    let db = ok(Database::open(dir.path()), "open after the first handle closed");
    drop(db);
}

const LOCK_CHILD_ENV: &str = "DRIFTDB_LOCK_CHILD_DIR";

/// Runs only as the child of `second_process_is_locked_out`: try to open and report.
#[test]
fn lock_child() {
    let Ok(dir) = std::env::var(LOCK_CHILD_ENV) else { return };
    // libtest has printed "test lock_child ... " without a newline: start a fresh line.
    println!();
    match Database::open(&dir) {
        Ok(db) => {
            println!("result opened {}", db.last_seq());
        }
        Err(e @ Error::Locked { .. }) => println!("result locked {e}"),
        Err(e) => println!("result other {e:?}"),
    }
}

fn run_lock_child(dir: &Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_child", "--nocapture", "--test-threads=1"])
        .env(LOCK_CHILD_ENV, dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "child failed: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().find_map(|l| l.strip_prefix("result ")).unwrap_or_default().to_owned()
}

#[test]
fn second_process_is_locked_out() {
    let _serial = SPAWN.write().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let db = ok(Database::open(dir.path()), "open");
    ok(db.create_table("t", TableSchema::new("id")), "create");
    let result = run_lock_child(dir.path());
    assert!(result.starts_with("locked "), "child: {result:?}");
    assert!(result.contains("is in use"), "child: {result:?}");
    assert!(result.contains(&dir.path().display().to_string()), "child: {result:?}");
    drop(db);
    let result = run_lock_child(dir.path());
    assert_eq!(result, "opened 1", "child after close");
}
