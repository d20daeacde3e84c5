//! Process-kill crash test on the real file system.
//!
//! The test binary re-executes itself as a child (`child_writer`), which commits from three
//! threads as fast as it can and prints `ack <seq> <counter> <patched> <deleted>` after every
//! commit that returned Ok. The parent kills it with SIGKILL after a random delay, reopens the
//! database and checks that every acknowledged transaction is there at its seq, that every
//! transaction that is there is whole, that seqs have no gaps, and that a second recovery gives
//! the same answers.
//!
//! `DRIFTDB_CRASH_TRIALS` sets the number of trials (default 200), `DRIFTDB_CRASH_SEED` the
//! seed of the kill delays (default: from the clock; printed either way), and
//! `DRIFTDB_CRASH_TMPDIR` where the databases go (default: /dev/shm when writable, else the
//! temp dir).
// clippy.toml allows unwrap/expect/indexing inside #[test] functions only; the helpers of
// this test file get the same allowance, and may panic with a message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use driftdb_core::{AsOf, ChangeKind, Database, Key, Options, TableSchema, Transaction, Value};
use serde_json::json;

const CHILD_ENV: &str = "DRIFTDB_CRASH_CHILD_DIR";
const TRIALS_ENV: &str = "DRIFTDB_CRASH_TRIALS";
const SEED_ENV: &str = "DRIFTDB_CRASH_SEED";
const TMPDIR_ENV: &str = "DRIFTDB_CRASH_TMPDIR";
const THREADS: usize = 3;
/// An orphaned child (its parent died) stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(10);

fn options() -> Options {
    Options {
        segment_size_bytes_max: 8 * 1024,
        wal_size_bytes_max: 16 * 1024,
        ..Options::default()
    }
}

fn doc(table: &str, counter: i64) -> Value {
    let pad = format!("{table}{counter}.").repeat(12);
    json!({"id": counter, "table": table, "counter": counter, "pad": pad}).into()
}

// ---- The child. -----------------------------------------------------------------------------

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the parent is gone: stop.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// One committer thread: each transaction inserts `counter` into `a` and `b`, sometimes
/// patches the `a` row of one of its earlier counters and soft-deletes the `b` row of another.
fn committer(db: &Database, counter: &AtomicI64, thread: usize, started: Instant) {
    let mut mine: Vec<i64> = Vec::new();
    let mut live_b: Vec<i64> = Vec::new();
    for i in 0usize.. {
        if started.elapsed() > CHILD_LIFETIME {
            return;
        }
        let c = counter.fetch_add(1, Ordering::Relaxed);
        let mut tx: Transaction<'_> = db.begin();
        tx.insert("a", doc("a", c)).unwrap();
        tx.insert("b", doc("b", c)).unwrap();
        let mut patched = -1;
        if i % 3 == 1 && !mine.is_empty() {
            patched = mine[(c as usize + thread) % mine.len()];
            tx.patch("a", patched, json!({"patched_by": c}).into()).unwrap();
        }
        let mut deleted = -1;
        if i % 5 == 4 && !live_b.is_empty() {
            deleted = live_b.remove(0);
            tx.soft_delete("b", deleted).unwrap();
        }
        match tx.commit() {
            Ok(info) => say(&format!("ack {} {c} {patched} {deleted}", info.seq)),
            Err(e) => {
                say(&format!("error {e}"));
                std::process::exit(1);
            }
        }
        mine.push(c);
        live_b.push(c);
    }
}

/// The child: runs only when `DRIFTDB_CRASH_CHILD_DIR` is set.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let started = Instant::now();
    // libtest printed "test child_writer ... " without a newline: start on a fresh line.
    say("");
    say("start");
    let db = Database::open_with(&dir, options()).unwrap();
    let mut tx = db.begin();
    tx.create_table("a", TableSchema::new("id")).unwrap();
    tx.create_table("b", TableSchema::new("id")).unwrap();
    let setup = tx.commit().unwrap();
    say(&format!("ready {}", setup.seq));
    let counter = AtomicI64::new(0);
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let (db, counter) = (&db, &counter);
            s.spawn(move || committer(db, counter, thread, started));
        }
    });
}

// ---- The parent. ----------------------------------------------------------------------------

use common::Rng;

#[derive(Debug, Clone, Copy)]
struct Ack {
    seq: u64,
    counter: i64,
    patched: i64,
    deleted: i64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut it = line.strip_prefix("ack ")?.split(' ');
    let mut next = || it.next()?.parse::<i64>().ok();
    let ack = Ack {
        seq: u64::try_from(next()?).ok()?,
        counter: next()?,
        patched: next()?,
        deleted: next()?,
    };
    Some(ack)
}

/// Run one child and kill it `delay` after it printed `mark` ("start" or "ready"). Returns its
/// complete output lines and whether it was still running when killed.
fn run_child(dir: &std::path::Path, mark: &'static str, delay: Duration) -> (Vec<String>, bool) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (mark_tx, mark_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut by the kill has no newline: it was never fully printed.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    let text = line.trim_end().to_owned();
                    if text.split(' ').next() == Some(mark) {
                        let _ = mark_tx.send(());
                    }
                    lines.push(text);
                }
            }
        }
        lines
    });
    // If the child dies before the mark (it should not), the channel closes and we go on.
    let _ = mark_rx.recv_timeout(Duration::from_secs(30));
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    if running {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "child status {status:?}");
    } else {
        assert!(status.success(), "the child failed: {status:?}, output {lines:?}");
    }
    (lines, running)
}

/// One event found in the recovered history.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    table: &'static str,
    key: i64,
    kind: ChangeKind,
    payload: Value,
}

/// Everything the recovered database says: last seq, commit times, and the events of each seq.
#[derive(Debug, PartialEq)]
struct Summary {
    last_seq: u64,
    times: Vec<Option<u64>>,
    events: BTreeMap<u64, Vec<Found>>,
    tables_at_1: Vec<String>,
}

fn summarize(db: &Database, probe_from: i64, ctx: &str) -> Summary {
    let last_seq = db.last_seq();
    let times = (1..=last_seq).map(|s| db.commit_time(s)).collect();
    let mut events: BTreeMap<u64, Vec<Found>> = BTreeMap::new();
    let now = db.read(AsOf::Now).unwrap();
    let tables_at_1 = if last_seq >= 1 { db.read(AsOf::Seq(1)).unwrap().tables() } else { vec![] };
    if last_seq >= 1 {
        // Probe keys until a long run of keys no transaction wrote (counters can have small
        // gaps: the transactions in flight at the kill).
        let mut missing_run = 0;
        let mut key = 0;
        while key < probe_from || missing_run < 64 {
            let mut any = false;
            for table in ["a", "b"] {
                let history = now.history(table, &Key::Int(key));
                let history =
                    history.unwrap_or_else(|e| panic!("{ctx}: history of {table}/{key}: {e}"));
                for entry in history {
                    any = true;
                    events.entry(entry.seq).or_default().push(Found {
                        table,
                        key,
                        kind: entry.kind,
                        payload: entry.payload,
                    });
                }
            }
            missing_run = if any { 0 } else { missing_run + 1 };
            key += 1;
        }
    }
    Summary { last_seq, times, events, tables_at_1 }
}

fn check_summary(summary: &Summary, ctx: &str) {
    let last = summary.last_seq;
    // Seqs are contiguous: every seq up to the last has a commit time, never going back.
    let mut prev = 0;
    for (i, time) in summary.times.iter().enumerate() {
        let Some(time) = *time else { panic!("{ctx}: seq {} has no commit time", i + 1) };
        assert!(time >= prev, "{ctx}: commit time goes back at seq {}", i + 1);
        prev = time;
    }
    if last == 0 {
        return;
    }
    assert_eq!(summary.tables_at_1, ["a", "b"], "{ctx}: seq 1 must create both tables");
    assert!(!summary.events.contains_key(&1), "{ctx}: rows written at seq 1");
    // Every seq after the setup is one whole transaction of the child.
    for seq in 2..=last {
        let Some(events) = summary.events.get(&seq) else {
            panic!("{ctx}: seq {seq} wrote nothing (a lost or torn transaction)")
        };
        let inserts: Vec<&Found> = events.iter().filter(|e| e.kind == ChangeKind::Insert).collect();
        let [ins_a, ins_b] = inserts[..] else {
            panic!("{ctx}: seq {seq} does not hold exactly two inserts: {events:?}")
        };
        let c = ins_a.key;
        assert!(
            ins_a.table == "a" && ins_b.table == "b" && ins_b.key == c,
            "{ctx}: seq {seq} inserts are not one pair: {events:?}"
        );
        assert_eq!(ins_a.payload, doc("a", c), "{ctx}: seq {seq}");
        assert_eq!(ins_b.payload, doc("b", c), "{ctx}: seq {seq}");
        let patches: Vec<&Found> = events.iter().filter(|e| e.kind == ChangeKind::Patch).collect();
        let deletes: Vec<&Found> =
            events.iter().filter(|e| e.kind == ChangeKind::SoftDelete).collect();
        assert!(patches.len() <= 1 && deletes.len() <= 1, "{ctx}: seq {seq}: {events:?}");
        if let Some(p) = patches.first() {
            assert_eq!(p.table, "a", "{ctx}: seq {seq}");
            // The patch carries the counter of the transaction it belongs to.
            assert_eq!(p.payload, Value::from(json!({"patched_by": c})), "{ctx}: seq {seq}");
        }
        if let Some(d) = deletes.first() {
            assert_eq!(d.table, "b", "{ctx}: seq {seq}");
        }
        assert_eq!(events.len(), 2 + patches.len() + deletes.len(), "{ctx}: seq {seq}");
    }
    assert!(summary.events.keys().all(|&s| s <= last), "{ctx}: events after the last seq");
}

fn check_acks(db: &Database, acks: &[Ack], ctx: &str) {
    for ack in acks {
        let ctx = format!("{ctx}: ack {ack:?}");
        assert!(ack.seq <= db.last_seq(), "{ctx}: acknowledged seq lost (last {})", db.last_seq());
        let snap = db.read(AsOf::Seq(ack.seq)).unwrap();
        let get = |table: &str, key: i64| snap.get(table, &Key::Int(key)).unwrap();
        let a = get("a", ack.counter);
        let b = get("b", ack.counter);
        assert_eq!(
            a.as_ref().and_then(|d| d.get("counter")),
            Some(&Value::Int(ack.counter)),
            "{ctx}"
        );
        assert_eq!(b, Some(doc("b", ack.counter)), "{ctx}");
        if ack.patched >= 0 {
            let p = get("a", ack.patched);
            let by = p.as_ref().and_then(|d| d.get("patched_by"));
            assert_eq!(by, Some(&Value::Int(ack.counter)), "{ctx}: patch missing");
        }
        if ack.deleted >= 0 {
            assert_eq!(get("b", ack.deleted), None, "{ctx}: soft delete missing");
            let before = db.read(AsOf::Seq(ack.seq - 1)).unwrap().get("b", &Key::Int(ack.deleted));
            assert!(before.unwrap().is_some(), "{ctx}: deleted row was not live before");
        }
    }
}

/// Keeps the trial's directory for inspection when a check fails.
struct KeepOnPanic(Option<tempfile::TempDir>);
impl Drop for KeepOnPanic {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && std::thread::panicking()
        {
            eprintln!("kept the failing database at {}", dir.keep().display());
        }
    }
}

#[test]
fn kill_during_commits_loses_nothing_acknowledged() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let trials: usize = std::env::var(TRIALS_ENV).ok().and_then(|t| t.parse().ok()).unwrap_or(200);
    let seed: u64 =
        std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
    eprintln!("crash_kill: {trials} trials, seed {seed} (rerun with {SEED_ENV}={seed})");
    let mut rng = Rng(seed);
    // A SIGKILL loses nothing the kernel has: the page cache survives, so fsync speed is
    // irrelevant here. tmpfs lets each trial run thousands of commits and many checkpoints.
    let base = std::env::var_os(TMPDIR_ENV)
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let shm = std::path::Path::new("/dev/shm");
            tempfile::tempdir_in(shm).is_ok().then(|| shm.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    eprintln!("crash_kill: databases under {} (set {TMPDIR_ENV} to change)", base.display());
    let started = Instant::now();
    let (mut acked_total, mut max_seq, mut never_ready, mut exited) = (0, 0, 0, 0);
    for trial in 0..trials {
        // Mostly kill while committing; one trial in eight counts from the child's start, so
        // the kill can also land while the database is being created.
        let mark = if rng.next().is_multiple_of(8) { "start" } else { "ready" };
        let delay = match mark {
            "start" => Duration::from_micros(rng.next() % 3_001),
            _ => Duration::from_micros(2_000 + rng.next() % 38_001),
        };
        let guard = KeepOnPanic(Some(tempfile::tempdir_in(&base).unwrap()));
        let dir = guard.0.as_ref().unwrap().path().to_path_buf();
        let ctx =
            format!("seed {seed} trial {trial} {delay:?} after {mark}, dir {}", dir.display());

        let (lines, running) = run_child(&dir, mark, delay);
        exited += usize::from(!running);
        assert!(!lines.iter().any(|l| l.starts_with("error")), "{ctx}: child error: {lines:?}");
        let acks: Vec<Ack> = lines.iter().filter_map(|l| parse_ack(l)).collect();
        let ready = lines.iter().any(|l| l == "ready 1");
        never_ready += usize::from(!ready);
        assert!(ready || acks.is_empty(), "{ctx}");
        let mut seqs: Vec<u64> = acks.iter().map(|a| a.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), acks.len(), "{ctx}: a seq was acknowledged twice");
        let probe_from = acks.iter().map(|a| a.counter + 1).max().unwrap_or(0);

        let db = Database::open_with(&dir, options())
            .unwrap_or_else(|e| panic!("{ctx}: the killed database does not open: {e}"));
        let last_acked = seqs.last().copied().unwrap_or(if ready { 1 } else { 0 });
        assert!(db.last_seq() >= last_acked, "{ctx}: last_seq {} < {last_acked}", db.last_seq());
        let first = summarize(&db, probe_from, &ctx);
        check_summary(&first, &ctx);
        check_acks(&db, &acks, &ctx);
        drop(db);

        // Recovery is idempotent: a second open gives the same answers.
        let db = Database::open_with(&dir, options())
            .unwrap_or_else(|e| panic!("{ctx}: second open failed: {e}"));
        let second = summarize(&db, probe_from, &ctx);
        assert!(first == second, "{ctx}: the second recovery differs");
        check_acks(&db, &acks, &ctx);
        drop(db);

        acked_total += acks.len();
        max_seq = max_seq.max(first.last_seq);
    }
    eprintln!(
        "crash_kill: {trials} trials in {:?}: {acked_total} acknowledged commits checked, \
         up to seq {max_seq} in one trial; {never_ready} kills before the setup commit; \
         {exited} children exited before the kill",
        started.elapsed()
    );
    assert!(acked_total > trials, "too few commits to be a test: {acked_total}");
}
