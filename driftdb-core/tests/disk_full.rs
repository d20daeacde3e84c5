//! A full disk: commits fail with a clear error, the engine then refuses writes but keeps
//! serving reads, and nothing acknowledged is lost, whatever the crash that follows.
// clippy.toml allows unwrap/expect/indexing inside #[test] functions only; the helpers of
// this test file get the same allowance, and may panic with a message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Display;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use driftdb_core::storage::sim::SimFs;
use driftdb_core::{AsOf, Database, Error, Key, Options, TableSchema, Value};
use serde_json::json;

const ROOT: &str = "/db";

fn ok<T>(result: driftdb_core::Result<T>, ctx: impl Display) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{ctx}: unexpected error: {e} ({e:?})"),
    }
}

fn sim_options(sim: &SimFs) -> Options {
    Options {
        segment_size_bytes_max: 4096,
        wal_size_bytes_max: 8192,
        fs: Arc::new(sim.clone()),
        ..Options::default()
    }
}

fn doc(table: &str, n: i64) -> Value {
    json!({"id": n, "table": table, "n": n, "pad": "x".repeat(100 + (n % 7) as usize * 30)}).into()
}

/// One transaction of the workload: insert `n` into `a` and `b`, patch an earlier row of `a`,
/// soft-delete an earlier row of `b`.
fn write_txn(db: &Database, n: i64) -> driftdb_core::Result<u64> {
    let mut tx = db.begin();
    tx.insert("a", doc("a", n))?;
    tx.insert("b", doc("b", n))?;
    if n >= 3 && n % 3 == 0 {
        tx.patch("a", n - 3, json!({"patched_by": n}).into())?;
    }
    if n >= 5 && n % 5 == 0 {
        tx.soft_delete("b", n - 5)?;
    }
    Ok(tx.commit()?.seq)
}

/// What the database must show right after the commit of `n` at `seq`.
fn check_txn_at(db: &Database, n: i64, seq: u64, ctx: &str) {
    let snap = ok(db.read(AsOf::Seq(seq)), format!("{ctx}: read at {seq}"));
    let a = ok(snap.get("a", &Key::Int(n)), ctx);
    let b = ok(snap.get("b", &Key::Int(n)), ctx);
    assert_eq!(a.as_ref().and_then(|d| d.get("n")), Some(&Value::Int(n)), "{ctx}: a/{n} at {seq}");
    assert_eq!(b.as_ref().and_then(|d| d.get("n")), Some(&Value::Int(n)), "{ctx}: b/{n} at {seq}");
    if n >= 3 && n % 3 == 0 {
        let patched = ok(snap.get("a", &Key::Int(n - 3)), ctx);
        assert_eq!(
            patched.as_ref().and_then(|d| d.get("patched_by")),
            Some(&Value::Int(n)),
            "{ctx}: patch of a/{} at {seq}",
            n - 3
        );
    }
    if n >= 5 && n % 5 == 0 {
        assert_eq!(ok(snap.get("b", &Key::Int(n - 5)), ctx), None, "{ctx}: delete at {seq}");
    }
}

fn assert_clear_failure(e: &Error, ctx: &str) {
    assert!(
        matches!(e, Error::Poisoned { .. } | Error::Io { .. }),
        "{ctx}: expected a poisoned or I/O error, got {e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("no storage space") || text.contains("File too large"),
        "{ctx}: the message does not say the disk is full: {text:?}"
    );
    if matches!(e, Error::Poisoned { .. }) {
        assert!(text.contains("refuses writes") && text.contains("reopen"), "{ctx}: {text:?}");
    }
}

/// Check a recovered image: every acknowledged commit is there at its seq, and at most the
/// one in-doubt commit after them, whole.
fn check_recovered(image: &SimFs, acked: &[(i64, u64)], ctx: &str) {
    let db = ok(Database::open_with(ROOT, sim_options(image)), format!("{ctx}: reopen"));
    let last_acked = acked.last().map_or(0, |&(_, seq)| seq);
    let last = db.last_seq();
    assert!(last == last_acked || last == last_acked + 1, "{ctx}: last_seq {last} vs {last_acked}");
    for &(n, seq) in acked {
        check_txn_at(&db, n, seq, ctx);
    }
    if last > last_acked {
        let n = acked.last().map_or(0, |&(n, _)| n + 1);
        check_txn_at(&db, n, last, &format!("{ctx}: in-doubt commit"));
    }
    for seq in 1..=last {
        assert!(db.commit_time(seq).is_some(), "{ctx}: no commit time at {seq}");
    }
    // The recovered database takes writes again.
    let mut tx = db.begin();
    ok(tx.insert("a", doc("a", 1_000_000)), ctx);
    ok(tx.insert("b", doc("b", 1_000_000)), ctx);
    let seq = ok(tx.commit(), format!("{ctx}: write after recovery")).seq;
    assert_eq!(seq, last + 1, "{ctx}");
    check_txn_at(&db, 1_000_000, seq, ctx);
    ok(db.close(), format!("{ctx}: close after recovery"));
}

/// Fill the disk at `space` free bytes and check everything that follows.
fn fill_disk(space: u64) -> (SimFs, Vec<(i64, u64)>) {
    let ctx = format!("space {space}");
    let sim = SimFs::new();
    let db = ok(Database::open_with(ROOT, sim_options(&sim)), &ctx);
    ok(db.create_table("a", TableSchema::new("id")), &ctx);
    ok(db.create_table("b", TableSchema::new("id")), &ctx);
    let mut acked = Vec::new();
    for n in 0..3 {
        acked.push((n, ok(write_txn(&db, n), &ctx)));
    }
    sim.set_space_bytes(Some(space));
    let mut failure = None;
    for n in 3..5000 {
        match write_txn(&db, n) {
            Ok(seq) => acked.push((n, seq)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let Some(err) = failure else { panic!("{ctx}: 5000 commits fit in {space} bytes") };
    assert_clear_failure(&err, &ctx);

    // Later writes are refused with Poisoned, whatever they are.
    let mut tx = db.begin();
    let refused = tx.insert("a", doc("a", 999_999));
    assert!(matches!(refused, Err(Error::Poisoned { .. })), "{ctx}: {refused:?}");
    tx.rollback();
    let refused = db.create_table("c", TableSchema::new("id"));
    assert!(matches!(refused, Err(Error::Poisoned { .. })), "{ctx}: {refused:?}");
    if let Err(e) = &refused {
        assert_clear_failure(e, &ctx);
    }
    // Freeing space does not un-poison the engine: it cannot know what reached the disk.
    sim.set_space_bytes(None);
    let refused = write_txn(&db, 999_999);
    assert!(matches!(refused, Err(Error::Poisoned { .. })), "{ctx}: {refused:?}");

    // Reads still work, at every acknowledged seq, and nothing unacknowledged is visible.
    let last_acked = acked.last().map_or(0, |&(_, seq)| seq);
    assert_eq!(db.last_seq(), last_acked, "{ctx}");
    for &(n, seq) in &acked {
        check_txn_at(&db, n, seq, &ctx);
    }
    let next = acked.last().map_or(0, |&(n, _)| n + 1);
    assert_eq!(ok(db.get("a", &Key::Int(next)), &ctx), None, "{ctx}");
    assert_eq!(db.tables(), vec!["a".to_owned(), "b".to_owned()], "{ctx}");
    assert!(matches!(db.read(AsOf::Seq(last_acked + 1)), Err(Error::FutureSeq { .. })));
    let closed = db.close();
    assert!(matches!(closed, Err(Error::Poisoned { .. })), "{ctx}: close gave {closed:?}");
    (sim, acked)
}

#[test]
fn full_disk_poisons_writes_and_loses_nothing() {
    // From "nothing fits" to "several checkpoints fit".
    for space in [0, 1, 17, 100, 600, 1500, 4000, 9000, 20_000, 50_000, 120_000] {
        let ctx = format!("space {space}");
        let (sim, acked) = fill_disk(space);
        check_recovered(&sim.process_crash_image(), &acked, &format!("{ctx}, process crash"));
        check_recovered(&sim.crash_image(), &acked, &format!("{ctx}, power loss"));
    }
}

#[test]
fn reopening_while_the_disk_is_still_full() {
    // Recovery writes (WAL replay into the segments, a checkpoint): with the disk still full
    // it must fail with an I/O error, not report corruption, and succeed once there is space.
    for space in [600, 4000, 20_000] {
        let (sim, acked) = fill_disk(space);
        for (kind, image) in
            [("process crash", sim.process_crash_image()), ("power loss", sim.crash_image())]
        {
            for budget in [0, 10, 100, 300, 1000, 3000, 10_000] {
                let ctx = format!("space {space}, {kind}, reopened with {budget} bytes free");
                let copy = image.crash_image();
                copy.set_space_bytes(Some(budget));
                match Database::open_with(ROOT, sim_options(&copy)) {
                    Ok(db) => {
                        for &(n, seq) in &acked {
                            check_txn_at(&db, n, seq, &ctx);
                        }
                        drop(db);
                    }
                    Err(e) => {
                        assert!(!e.is_corruption(), "{ctx}: reported as corruption: {e}");
                        assert_clear_failure(&e, &ctx);
                    }
                }
                copy.set_space_bytes(None);
                check_recovered(&copy, &acked, &format!("{ctx}, then with space"));
            }
        }
    }
}

#[test]
fn full_disk_at_every_byte_budget_of_one_commit_cycle() {
    // Every budget over a range that covers WAL writes, segment writes, rotations and a
    // checkpoint: the failure lands at every kind of write.
    for space in (0..12_000).step_by(97) {
        let ctx = format!("space {space}");
        let (sim, acked) = fill_disk(space);
        check_recovered(&sim.process_crash_image(), &acked, &format!("{ctx}, process crash"));
        check_recovered(&sim.crash_image(), &acked, &format!("{ctx}, power loss"));
    }
}

// ---- The real file system, with RLIMIT_FSIZE in a child process. -------------------------

const CHILD_ENV: &str = "DRIFTDB_FSIZE_CHILD_DIR";

/// Runs only as the child of `real_file_size_limit`: write until the file size limit stops
/// the WAL, print every acknowledged commit and the error.
#[test]
fn fsize_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let options = Options {
        segment_size_bytes_max: 4096,
        // Never checkpoint: the WAL grows until it hits the file size limit.
        wal_size_bytes_max: 1 << 30,
        ..Options::default()
    };
    // libtest has printed "test fsize_child ... " without a newline: start a fresh line.
    println!();
    let db = Database::open_with(&dir, options).unwrap();
    db.create_table("a", TableSchema::new("id")).unwrap();
    db.create_table("b", TableSchema::new("id")).unwrap();
    for n in 0..100_000 {
        match write_txn(&db, n) {
            Ok(seq) => println!("ack {seq} {n}"),
            Err(e) => {
                println!("error {}", matches!(e, Error::Poisoned { .. } | Error::Io { .. }));
                println!("message {e}");
                let refused = write_txn(&db, 1_000_000);
                println!("refused {}", matches!(refused, Err(Error::Poisoned { .. })));
                break;
            }
        }
    }
}

#[test]
fn real_file_size_limit() {
    if !Path::new("/bin/sh").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // SIGXFSZ is ignored (ignored signals survive exec), so a write past the limit fails
    // with EFBIG instead of killing the child. `ulimit -f` counts 512- or 1024-byte blocks.
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 64 || exit 99; exec \"$0\" \"$@\"")
        .arg(&exe)
        .args(["--exact", "fsize_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(99) {
        eprintln!("ulimit -f is not available; skipping");
        return;
    }
    assert!(output.status.success(), "child failed: {output:?}");
    let mut acked = Vec::new();
    let mut message = None;
    let (mut clear, mut refused) = (false, false);
    for (tag, rest) in stdout.lines().filter_map(|l| l.split_once(' ')) {
        match tag {
            "ack" => {
                let (seq, n) = rest.split_once(' ').unwrap();
                acked.push((n.parse::<i64>().unwrap(), seq.parse::<u64>().unwrap()));
            }
            "error" => clear = rest == "true",
            "message" => message = Some(rest.to_owned()),
            "refused" => refused = rest == "true",
            _ => {}
        }
    }
    assert!(acked.len() > 10, "too few commits before the limit: {stdout}");
    assert!(clear, "the failure was not an I/O or poisoned error: {stdout}");
    let message = message.unwrap();
    assert!(message.contains("too large"), "unclear message: {message}");
    assert!(refused, "later writes were not refused: {stdout}");

    eprintln!("{} commits before the file size limit: {message}", acked.len());
    let db = ok(Database::open(dir.path()), "reopen after EFBIG");
    let last_acked = acked.last().unwrap().1;
    assert!(db.last_seq() == last_acked || db.last_seq() == last_acked + 1);
    for &(n, seq) in &acked {
        check_txn_at(&db, n, seq, "real fs");
    }
    drop(db);
    let db = ok(Database::open(dir.path()), "second reopen");
    for &(n, seq) in &acked {
        check_txn_at(&db, n, seq, "real fs, second open");
    }
}
