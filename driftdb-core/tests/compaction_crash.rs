//! Crashes inside a compaction: on the simulated file system, a workload of compactions (one
//! that retires an earlier compacted set, one of a table dropped and re-created) and a commit
//! between them dies at its k-th sync point, for every k. The power-loss image and the
//! process-crash image must both open with the same answers as before (plus the commit, whole,
//! if it was acknowledged or in doubt), hold only their live set of segment files (no
//! temporary file, no second generation), and compact and reopen again with the same answers.
//! A power cut during the recovery of such an image must not change that either. And with
//! commits running in two threads beside a compacting one, a crash at any moment (or a power
//! cut right after each compaction) keeps every acknowledged commit and the whole history.
// clippy.toml allows unwrap/expect/indexing inside #[test] functions only; the helpers of
// this test file get the same allowance, and may panic with a message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use common::Rng;
use common::answers::{Answers, answers, assert_same};
use driftdb_core::storage::sim::SimFs;
use driftdb_core::{Database, Error, Key, Options, TableSchema, Value};
use serde_json::json;

const ROOT: &str = "/db";
const TABLES: [&str; 2] = ["a", "b"];

fn options(sim: &SimFs) -> Options {
    Options {
        segment_size_bytes_max: 1024,
        wal_size_bytes_max: 4096,
        compaction_block_bytes: 300,
        fs: Arc::new(sim.clone()),
        encryption_key: common::test_key(),
        ..Options::default()
    }
}

fn keys() -> Vec<Key> {
    (0..6).map(Key::Int).collect()
}

fn all_answers(db: &Database) -> Answers {
    answers(db, &TABLES, &keys())
}

fn doc(k: i64, n: u64) -> Value {
    json!({"id": k, "n": n, "text": format!("key {k} step {n} ").repeat(4)}).into()
}

/// A database with a history over two tables, `a` compacted once already and `b` dropped and
/// re-created, closed cleanly. Returns its durable image and what it answers.
fn base() -> (SimFs, Answers) {
    let sim = SimFs::new();
    let db = Database::open_with(ROOT, options(&sim)).unwrap();
    for t in TABLES {
        db.create_table(t, TableSchema::new("id")).unwrap();
    }
    let mut rng = Rng(0x00c0_ffee_d00d_0005);
    for n in 0..60u64 {
        if n == 20 {
            db.compact_table("a").unwrap();
        }
        if n == 30 {
            db.drop_table("b").unwrap();
            db.create_table("b", TableSchema::new("id")).unwrap();
        }
        let mut tx = db.begin();
        for _ in 0..1 + rng.below(3) {
            let table = TABLES[rng.below(2) as usize];
            let k = rng.below(6) as i64;
            let live = tx.get(table, &Key::Int(k)).unwrap().is_some();
            match (live, rng.below(4)) {
                (false, _) => drop(tx.insert(table, doc(k, n)).unwrap()),
                (true, 0) => tx.soft_delete(table, k).unwrap(),
                (true, _) => tx.patch(table, k, json!({"n": n, "text": null}).into()).unwrap(),
            }
        }
        tx.commit().unwrap();
    }
    db.close().unwrap();
    let image = sim.crash_image();
    let db = Database::open_with(ROOT, options(&image)).unwrap();
    let want = all_answers(&db);
    db.close().unwrap();
    (image.crash_image(), want)
}

fn assert_env_error(e: &Error, ctx: impl Display) {
    assert!(
        matches!(e, Error::Poisoned { .. } | Error::Io { .. }),
        "{ctx}: expected an I/O or poisoned error, got {e:?}"
    );
}

/// How far the workload got.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    /// The commit between the compactions was acknowledged.
    acked: bool,
    /// The commit returned an error: it may or may not be there.
    in_doubt: bool,
}

/// Compact `a` (generation 2, retiring generation 1), commit one transaction, compact `b`,
/// close; stop at the first failure. `crash_at`: the sync point (counted from the open) at
/// which the machine dies. Returns how far it got and the sync points it passed.
fn workload(image: &SimFs, crash_at: Option<u64>, ctx: &str) -> (Outcome, u64) {
    let db = Database::open_with(ROOT, options(image)).unwrap();
    let start = image.sync_count();
    if let Some(k) = crash_at {
        image.crash_at_sync(start + k);
    }
    let mut out = Outcome::default();
    let mut steps = || -> driftdb_core::Result<()> {
        let report = db.compact_table("a")?;
        assert!(report.segments_before >= 2 && report.events > 0, "{ctx}: {report}");
        let mut tx = db.begin();
        tx.insert("a", doc(100, 100))?;
        tx.patch("b", keys_live(&db, "b")[0].clone(), json!({"n": 100}).into())?;
        match tx.commit() {
            Ok(_) => out.acked = true,
            Err(e) => {
                out.in_doubt = true;
                return Err(e);
            }
        }
        db.compact_table("b")?;
        Ok(())
    };
    if let Err(e) = steps() {
        assert_env_error(&e, ctx);
    }
    match db.close() {
        Ok(()) => assert!(crash_at.is_none() || !image.has_crashed(), "{ctx}"),
        Err(e) => assert_env_error(&e, format!("{ctx}: close")),
    }
    (out, image.sync_count() - start)
}

fn keys_live(db: &Database, table: &str) -> Vec<Key> {
    db.read(driftdb_core::AsOf::Now)
        .unwrap()
        .scan(table, |_| true)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect()
}

/// Names of the files in a table's segments directory.
fn segment_files(fs: &SimFs, table: &str) -> Vec<String> {
    let dir = Path::new(ROOT).join("tables").join(table).join("segments");
    fs.files()
        .into_iter()
        .filter(|p| p.parent() == Some(dir.as_path()))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Open a crash image and check it: the base answers, plus the commit if it survived; only
/// live segment files; and a compaction and a reopen change nothing.
fn check_image(image: &SimFs, base: &Answers, full: &Answers, outcome: Outcome, ctx: &str) {
    let db = Database::open_with(ROOT, options(image))
        .unwrap_or_else(|e| panic!("{ctx}: open of the image failed: {e}"));
    let got = all_answers(&db);
    let last = got.last_seq;
    let extra = u64::from(outcome.acked || outcome.in_doubt);
    assert!(
        last >= base.last_seq + u64::from(outcome.acked) && last <= base.last_seq + extra,
        "{ctx}: last seq {last}, base {}, {outcome:?}",
        base.last_seq
    );
    assert_same(base, &got.up_to(base.last_seq), format!("{ctx}: the base history"));
    if last > base.last_seq {
        // That commit ran at another time than in the reference run.
        assert_same(&full.timeless(), &got.timeless(), format!("{ctx}: the extra commit"));
    }
    for table in TABLES {
        let names = segment_files(image, table);
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{ctx}: temporary files: {names:?}");
        let generations: BTreeSet<&str> =
            names.iter().filter_map(|n| n.strip_prefix("compacted-")).map(|n| &n[..8]).collect();
        assert!(generations.len() <= 1, "{ctx}: several generations: {names:?}");
    }
    for table in TABLES {
        db.compact_table(table).unwrap_or_else(|e| panic!("{ctx}: compaction after recovery: {e}"));
    }
    assert_same(&got, &all_answers(&db), format!("{ctx}: compaction after recovery"));
    db.close().unwrap();
    let db = Database::open_with(ROOT, options(&image.crash_image())).unwrap();
    assert_same(&got, &all_answers(&db), format!("{ctx}: reopen after that"));
    db.close().unwrap();
}

/// The base, the answers after a clean run of the workload, and its number of sync points.
fn reference() -> (SimFs, Answers, Answers, u64) {
    let (image, want) = base();
    let run = image.crash_image();
    let (outcome, syncs) = workload(&run, None, "clean run");
    assert!(outcome.acked);
    let db = Database::open_with(ROOT, options(&run.crash_image())).unwrap();
    let full = all_answers(&db);
    assert_eq!(full.last_seq, want.last_seq + 1);
    db.close().unwrap();
    (image, want, full, syncs)
}

fn crashed_run(image: &SimFs, k: u64) -> (SimFs, Outcome) {
    let run = image.crash_image();
    let ctx = format!("crash at sync {k}");
    let outcome = catch_unwind(AssertUnwindSafe(|| workload(&run, Some(k), &ctx).0));
    let Ok(outcome) = outcome else { panic!("{ctx}: the workload panicked") };
    assert!(run.has_crashed(), "{ctx}: the crash point was never reached");
    (run, outcome)
}

#[test]
fn crash_at_every_sync_point_of_a_compaction() {
    crash_at_every_sync_point_of_a_compaction_run();
}

/// [`crash_at_every_sync_point_of_a_compaction`] with every database encrypted.
#[test]
fn crash_at_every_sync_point_of_a_compaction_encrypted() {
    common::encrypt_in_this_thread();
    assert!(Database::open_with(ROOT, options(&SimFs::new())).unwrap().is_encrypted());
    crash_at_every_sync_point_of_a_compaction_run();
}

fn crash_at_every_sync_point_of_a_compaction_run() {
    let (image, base, full, syncs) = reference();
    assert!(syncs >= 16, "only {syncs} sync points");
    let mut acked = 0;
    for k in 1..=syncs {
        let (run, outcome) = crashed_run(&image, k);
        acked += u64::from(outcome.acked);
        for (kind, crashed) in
            [("power loss", run.crash_image()), ("process crash", run.process_crash_image())]
        {
            let ctx = format!("crash at sync {k} of {syncs}, {kind}");
            check_image(&crashed, &base, &full, outcome, &ctx);
        }
    }
    eprintln!("{syncs} crash points; the commit was acknowledged before {acked} of them");
    assert!(acked > 0 && acked < syncs);
}

#[test]
fn power_loss_while_recovering_from_a_crashed_compaction() {
    let (image, base, full, syncs) = reference();
    let mut points = 0;
    for k in (1..=syncs).step_by(3) {
        let (run, outcome) = crashed_run(&image, k);
        let crashed = run.crash_image();
        // The sync points of one recovery (open and close) of this image.
        let probe = crashed.crash_image();
        Database::open_with(ROOT, options(&probe)).unwrap().close().unwrap();
        for j in 1..=probe.sync_count() {
            let ctx = format!("crash at sync {k}, then at recovery sync {j}");
            let copy = crashed.crash_image();
            copy.crash_at_sync(j);
            let opened = catch_unwind(AssertUnwindSafe(|| {
                Database::open_with(ROOT, options(&copy)).and_then(Database::close)
            }));
            let Ok(opened) = opened else { panic!("{ctx}: recovery panicked") };
            let Err(e) = opened else { panic!("{ctx}: the crash point was not reached") };
            assert_env_error(&e, &ctx);
            check_image(&copy.crash_image(), &base, &full, outcome, &ctx);
            points += 1;
        }
    }
    eprintln!("{points} crash points inside recovery");
    assert!(points > 10);
}

/// Commits (one insert each into `a`) from two threads while a third compacts `a` and `b` in a
/// loop, on a file system that dies at sync point `crash_at` (if reached), with checkpoints
/// every few commits so that some fall between a compaction's seal and its switch. After each
/// compaction, `after_compaction` gets the file system. Returns the machine, the acknowledged
/// commits `(n, seq)`, and how many commits are in doubt.
fn concurrent_run(
    image: &SimFs,
    crash_at: Option<u64>,
    after_compaction: &dyn Fn(&SimFs),
) -> (SimFs, Vec<(i64, u64)>, u64) {
    let run = image.crash_image();
    let options = Options { wal_size_bytes_max: 1024, ..options(&run) };
    let db = Database::open_with(ROOT, options).unwrap();
    if let Some(k) = crash_at {
        run.crash_at_sync(run.sync_count() + k);
    }
    let running = std::sync::atomic::AtomicUsize::new(2);
    let commit_some = |thread: i64| {
        let mut acked = Vec::new();
        let mut in_doubt = 0;
        for n in (0..20i64).map(|i| 2 * i + thread) {
            let mut tx = db.begin();
            if tx.insert("a", doc(1000 + n, 0)).is_err() {
                break;
            }
            match tx.commit() {
                Ok(info) => acked.push((n, info.seq)),
                Err(e) => {
                    assert_env_error(&e, "concurrent commit");
                    in_doubt = 1;
                    break;
                }
            }
        }
        running.fetch_sub(1, std::sync::atomic::Ordering::Release);
        (acked, in_doubt)
    };
    let (acked, in_doubt) = std::thread::scope(|s| {
        let committers = [s.spawn(|| commit_some(0)), s.spawn(|| commit_some(1))];
        'compacting: loop {
            for table in TABLES {
                if let Err(e) = db.compact_table(table) {
                    assert_env_error(&e, "concurrent compaction");
                    break 'compacting;
                }
                after_compaction(&run);
            }
            if running.load(std::sync::atomic::Ordering::Acquire) == 0 {
                break;
            }
        }
        let mut all = (Vec::new(), 0);
        for committer in committers {
            let (acked, in_doubt) = committer.join().unwrap();
            all.0.extend(acked);
            all.1 += in_doubt;
        }
        all
    });
    if let Err(e) = db.close() {
        assert_env_error(&e, "close");
    }
    (run, acked, in_doubt)
}

#[test]
fn crashes_while_commits_run_beside_compactions() {
    let (image, base) = base();
    // Without a crash: a power cut right after each compaction (commits still running) leaves
    // a database that opens with the base history.
    let images = std::sync::atomic::AtomicUsize::new(0);
    let power_cut_now = |fs: &SimFs| {
        let db = Database::open_with(ROOT, options(&fs.crash_image()))
            .unwrap_or_else(|e| panic!("power cut after a compaction: open failed: {e}"));
        assert_same(&base, &all_answers(&db).up_to(base.last_seq), "power cut after a compaction");
        images.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let (clean, acked, _) = concurrent_run(&image, None, &power_cut_now);
    assert_eq!(acked.len(), 40);
    assert!(images.into_inner() >= 2);
    let syncs = clean.sync_count();
    let mut crashed = 0;
    for k in (1..=syncs).step_by(usize::try_from(syncs / 20).unwrap_or(1).max(1)) {
        let (run, acked, in_doubt) = concurrent_run(&image, Some(k), &|_| ());
        crashed += u64::from(run.has_crashed());
        for (kind, crash) in
            [("power loss", run.crash_image()), ("process crash", run.process_crash_image())]
        {
            let ctx =
                format!("crash at sync {k} of ~{syncs}, {kind}, {} acknowledged", acked.len());
            let db = Database::open_with(ROOT, options(&crash))
                .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
            let last = db.last_seq();
            let want = base.last_seq + acked.len() as u64;
            assert!(last >= want && last <= want + in_doubt, "{ctx}: last seq {last}");
            let got = all_answers(&db);
            assert_same(&base, &got.up_to(base.last_seq), format!("{ctx}: the base history"));
            for &(n, seq) in &acked {
                let snap = db.read(driftdb_core::AsOf::Seq(seq)).unwrap();
                assert_eq!(
                    snap.get("a", &Key::Int(1000 + n)).unwrap(),
                    Some(doc(1000 + n, 0)),
                    "{ctx}"
                );
                let before = db.read(driftdb_core::AsOf::Seq(seq - 1)).unwrap();
                assert_eq!(before.get("a", &Key::Int(1000 + n)).unwrap(), None, "{ctx}");
            }
            for table in TABLES {
                let names = segment_files(&crash, table);
                assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{ctx}: {names:?}");
                db.compact_table(table).unwrap();
            }
            assert_same(&got, &all_answers(&db), format!("{ctx}: compaction after recovery"));
            db.close().unwrap();
        }
    }
    eprintln!("{syncs} sync points in the clean run; {crashed} runs crashed");
    assert!(crashed > 5);
}
