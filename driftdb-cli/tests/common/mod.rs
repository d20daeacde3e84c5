//! Helpers shared by the end-to-end tests: run the built `driftdb` binary, parse its JSON
//! output, and build databases with a known history.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use driftdb_core::{Database, TableSchema};
use serde_json::{Value, json};

/// The binary under test.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftdb"));
    cmd.env_remove("DRIFTDB_HISTORY");
    // A key in the test runner's environment must not leak into the binaries under test.
    cmd.env_remove("DRIFTDB_KEY");
    cmd.env_remove("DRIFTDB_NEW_KEY");
    cmd
}

/// Run `driftdb ARGS` with no input.
pub fn driftdb(args: &[&str]) -> Output {
    bin().args(args).stdin(Stdio::null()).output().unwrap()
}

/// Run `driftdb ARGS` with `input` on standard input.
pub fn driftdb_stdin(args: &[&str], input: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A process that exits before reading its input (a refused key) closes the pipe first.
    if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every line of standard output as JSON.
pub fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Standard output as one JSON value.
pub fn json_out(out: &Output) -> Value {
    let lines = json_lines(out);
    assert_eq!(lines.len(), 1, "expected one JSON value: {}", stdout(out));
    lines.into_iter().next().unwrap()
}

/// The `{"error": ...}` object on standard error.
pub fn json_err(out: &Output) -> Value {
    let text = stderr(out);
    let line = text
        .lines()
        .find(|l| l.starts_with("{\"error\""))
        .unwrap_or_else(|| panic!("no JSON error in {text:?}"));
    serde_json::from_str::<Value>(line).unwrap()["error"].clone()
}

/// Assert the exit code, showing the output when it differs.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "stdout: {}\nstderr: {}", stdout(out), stderr(out));
}

/// A temporary database directory.
pub struct TestDb {
    _tmp: tempfile::TempDir,
    /// The database directory (not created yet unless a builder made it).
    pub dir: PathBuf,
}

impl TestDb {
    /// A path for a database that does not exist yet.
    pub fn empty() -> TestDb {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        TestDb { _tmp: tmp, dir }
    }

    /// The directory as a string argument.
    pub fn d(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// A path next to the database, for data files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.parent().unwrap().join(name)
    }

    /// Open the database with the engine; dropping the handle closes it.
    pub fn open(&self) -> OpenDb {
        OpenDb { db: Some(Database::open(&self.dir).unwrap()), dir: self.dir.clone() }
    }
}

/// A database opened in the test process. Dropping it closes the database and then waits
/// until its lock is free: a child that another test thread is spawning at that moment holds
/// a copy of the lock's file descriptor until it calls exec, and the binary under test, run
/// right after, would find the database "in use".
pub struct OpenDb {
    db: Option<Database>,
    dir: PathBuf,
}

impl std::ops::Deref for OpenDb {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.db.as_ref().unwrap()
    }
}

impl Drop for OpenDb {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            db.close().unwrap();
        }
        wait_unlocked(&self.dir);
    }
}

/// Wait (up to 10 s) until no process holds the lock of the database in `dir`.
pub fn wait_unlocked(dir: &Path) {
    let lock = dir.join("LOCK");
    for _ in 0..10_000 {
        match std::fs::File::open(&lock).map(|f| f.try_lock()) {
            Ok(Ok(())) | Err(_) => return,
            Ok(Err(_)) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    panic!("{} stayed locked", dir.display());
}

/// Commit the sample history into `db`: table `users` (pk id) with user1 inserted, patched,
/// soft-deleted; table `orders` (pk id, integer keys) with three orders. Seqs 1..=7.
pub fn sample_history(db: &Database) {
    db.create_table("users", TableSchema::new("id")).unwrap(); // 1
    let mut tx = db.begin();
    tx.insert("users", json!({"id": "user1", "email": "a@example.com", "status": "active"}).into())
        .unwrap();
    tx.insert("users", json!({"id": "user2", "email": "b@example.com", "status": "active"}).into())
        .unwrap();
    tx.commit().unwrap(); // 2
    let mut tx = db.begin();
    tx.patch("users", "user1", json!({"status": "away"}).into()).unwrap();
    tx.commit().unwrap(); // 3
    let mut tx = db.begin();
    tx.soft_delete("users", "user2").unwrap();
    tx.commit().unwrap(); // 4
    db.create_table("orders", TableSchema::new("id")).unwrap(); // 5
    let mut tx = db.begin();
    for i in 1..=3 {
        tx.insert("orders", json!({"id": i, "total": i * 10, "items": [{"sku": "x"}]}).into())
            .unwrap();
    }
    tx.commit().unwrap(); // 6
    let mut tx = db.begin();
    tx.patch("orders", 2i64, json!({"total": 25}).into()).unwrap();
    tx.commit().unwrap(); // 7
}

/// A closed database holding [`sample_history`].
pub fn sample_db() -> TestDb {
    let t = TestDb::empty();
    let db = t.open();
    sample_history(&db);
    drop(db);
    t
}

/// Copy a directory tree (used to take the crash image of an open database: its WAL holds
/// every commit, its segments may lag).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` with its content, to check that a command changed nothing.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}
