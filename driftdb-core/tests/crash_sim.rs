//! Simulated power loss: run a scripted workload on a [`SimFs`] that dies at its k-th sync
//! point, for every k, and check that what the crash leaves behind recovers to exactly the
//! acknowledged history (plus, at most, the one in-doubt commit, whole).
//!
//! The workload is checked against a small in-memory model: the full content of every table
//! at every seq. A recovered database must show, at each seq it has, exactly the model's state
//! at that seq.
// clippy.toml allows unwrap/expect/indexing inside #[test] functions only; the helpers of
// this test file get the same allowance, and may panic with a message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use driftdb_core::storage::sim::SimFs;
use driftdb_core::{AsOf, Database, Error, Key, Map, Options, TableSchema, Value};

const ROOT: &str = "/db";

/// One operation of the scripted workload.
#[derive(Debug, Clone)]
enum Op {
    Create(&'static str),
    /// Replace the schema: the primary key plus these declared indexes.
    Alter(&'static str, Vec<&'static str>),
    Drop(&'static str),
    Insert(&'static str, i64, Map),
    /// A flat merge patch: `Value::Null` removes the field.
    Patch(&'static str, i64, Map),
    Delete(&'static str, i64),
}

/// A live table: its schema and its live rows.
#[derive(Debug, Clone, PartialEq)]
struct ModelTable {
    schema: TableSchema,
    rows: BTreeMap<Key, Value>,
}

/// Every live table by name.
type ModelState = BTreeMap<String, ModelTable>;

fn schema(indexes: &[&str]) -> TableSchema {
    let mut schema = TableSchema::new("id");
    schema.indexes = indexes.iter().map(|f| vec![(*f).to_owned()]).collect();
    schema
}

fn options(sim: &SimFs) -> Options {
    Options {
        segment_size_bytes_max: 1024,
        wal_size_bytes_max: 2048,
        fs: Arc::new(sim.clone()),
        encryption_key: common::test_key(),
        ..Options::default()
    }
}

fn ok<T>(result: driftdb_core::Result<T>, ctx: impl Display) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{ctx}: unexpected error: {e} ({e:?})"),
    }
}

use common::Rng;

fn apply(state: &mut ModelState, op: &Op) {
    match op {
        Op::Create(t) => {
            let table = ModelTable { schema: schema(&[]), rows: BTreeMap::new() };
            assert!(state.insert((*t).to_owned(), table).is_none());
        }
        Op::Alter(t, indexes) => {
            state.get_mut(*t).unwrap().schema = schema(indexes);
        }
        Op::Drop(t) => {
            assert!(state.remove(*t).is_some());
        }
        Op::Insert(t, k, doc) => {
            let rows = &mut state.get_mut(*t).unwrap().rows;
            assert!(rows.insert(Key::Int(*k), Value::Map(doc.clone())).is_none());
        }
        Op::Patch(t, k, patch) => {
            let Some(Value::Map(doc)) = state.get_mut(*t).unwrap().rows.get_mut(&Key::Int(*k))
            else {
                panic!("model: patch of a missing key");
            };
            for (field, value) in patch {
                if *value == Value::Null {
                    doc.remove(field);
                } else {
                    doc.insert(field.clone(), value.clone());
                }
            }
        }
        Op::Delete(t, k) => {
            assert!(state.get_mut(*t).unwrap().rows.remove(&Key::Int(*k)).is_some());
        }
    }
}

/// The workload: transactions, and the model state after each seq (`states[0]` is empty).
struct Script {
    txns: Vec<Vec<Op>>,
    states: Vec<ModelState>,
}

fn doc(table: &str, key: i64, txn: usize) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), Value::Int(key));
    m.insert("table".into(), Value::String(table.into()));
    m.insert("txn".into(), Value::Int(txn as i64));
    m.insert("pad".into(), Value::String(format!("{table}{key}-").repeat(20).into()));
    m
}

fn script() -> Script {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut txns: Vec<Vec<Op>> = vec![vec![Op::Create("a")], vec![Op::Create("b")]];
    let mut state = ModelState::new();
    let mut states = vec![state.clone()];
    for txn in &txns {
        for op in txn {
            apply(&mut state, op);
        }
        states.push(state.clone());
    }
    let mut next_key: BTreeMap<&str, i64> = BTreeMap::new();
    for i in 0..32usize {
        let txn_index = txns.len();
        let mut ops = Vec::new();
        let mut scratch = state.clone();
        let push = |scratch: &mut ModelState, ops: &mut Vec<Op>, op: Op| {
            apply(scratch, &op);
            ops.push(op);
        };
        match i {
            // Drop `b` alone, then re-create it and reuse an old key in the new incarnation.
            18 => push(&mut scratch, &mut ops, Op::Drop("b")),
            19 => {
                push(&mut scratch, &mut ops, Op::Create("b"));
                push(&mut scratch, &mut ops, Op::Insert("b", 1, doc("b", 1, txn_index)));
                push(&mut scratch, &mut ops, Op::Insert("a", 1000, doc("a", 1000, txn_index)));
            }
            8 => {
                push(&mut scratch, &mut ops, Op::Alter("a", vec!["table"]));
                push(&mut scratch, &mut ops, Op::Insert("a", 900, doc("a", 900, txn_index)));
            }
            23 => push(&mut scratch, &mut ops, Op::Alter("b", vec!["txn", "pad"])),
            // Write to `a`, then drop and re-create it inside one transaction, and write to the
            // new incarnation: only that last write is live afterwards.
            26 => {
                let live = scratch["a"].rows.keys().next().cloned();
                if let Some(Key::Int(k)) = live {
                    let mut patch = Map::new();
                    patch.insert("doomed".into(), Value::Bool(true));
                    push(&mut scratch, &mut ops, Op::Patch("a", k, patch));
                }
                push(&mut scratch, &mut ops, Op::Insert("a", 901, doc("a", 901, txn_index)));
                push(&mut scratch, &mut ops, Op::Drop("a"));
                push(&mut scratch, &mut ops, Op::Create("a"));
                push(&mut scratch, &mut ops, Op::Insert("a", 2, doc("a", 2, txn_index)));
            }
            _ => {
                let n = 1 + rng.below(4);
                for _ in 0..n {
                    let table = if rng.below(2) == 0 { "a" } else { "b" };
                    let live: Vec<i64> = scratch[table]
                        .rows
                        .keys()
                        .map(|k| match k {
                            Key::Int(i) => *i,
                            Key::Str(_) => unreachable!(),
                        })
                        .collect();
                    let choice = rng.below(10);
                    if live.is_empty() || choice < 5 {
                        // Insert: usually a fresh key, sometimes a key that was deleted.
                        let reuse = (1..*next_key.get(table).unwrap_or(&1))
                            .find(|k| !live.contains(k) && rng.below(3) == 0);
                        let key = reuse.unwrap_or_else(|| {
                            let k = next_key.entry(table).or_insert(1);
                            *k += 1;
                            *k - 1
                        });
                        push(
                            &mut scratch,
                            &mut ops,
                            Op::Insert(table, key, doc(table, key, txn_index)),
                        );
                    } else if choice < 8 {
                        let key = live[rng.below(live.len() as u64) as usize];
                        let mut patch = Map::new();
                        patch.insert("txn".into(), Value::Int(txn_index as i64));
                        patch.insert(format!("p{}", rng.below(3)).into(), Value::Int(i as i64));
                        if rng.below(3) == 0 {
                            patch.insert("pad".into(), Value::Null);
                        }
                        push(&mut scratch, &mut ops, Op::Patch(table, key, patch));
                    } else {
                        let key = live[rng.below(live.len() as u64) as usize];
                        push(&mut scratch, &mut ops, Op::Delete(table, key));
                    }
                }
            }
        }
        state = scratch;
        states.push(state.clone());
        txns.push(ops);
    }
    Script { txns, states }
}

/// What happened while running the workload on a file system that may die.
#[derive(Debug, Default)]
struct Outcome {
    /// The open itself failed (the crash hit the creation of the database).
    open_failed: bool,
    /// Seqs of the acknowledged commits (always 1..=n).
    acked: Vec<u64>,
    /// A commit returned an error: its transaction is in doubt.
    in_doubt: bool,
}

fn assert_env_error(e: &Error, ctx: impl Display) {
    assert!(
        matches!(e, Error::Poisoned { .. } | Error::Io { .. }),
        "{ctx}: expected an I/O or poisoned error, got {e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("simulated power loss") || text.contains("I/O"),
        "{ctx}: unclear message {text:?}"
    );
}

fn run_op(tx: &mut driftdb_core::Transaction<'_>, op: &Op) -> driftdb_core::Result<()> {
    match op {
        Op::Create(t) => tx.create_table(t, TableSchema::new("id")),
        Op::Alter(t, indexes) => tx.alter_table(t, schema(indexes)),
        Op::Drop(t) => tx.drop_table(t),
        Op::Insert(t, _, doc) => tx.insert(t, Value::Map(doc.clone())).map(|_| ()),
        Op::Patch(t, k, patch) => tx.patch(t, *k, Value::Map(patch.clone())),
        Op::Delete(t, k) => tx.soft_delete(t, *k),
    }
}

/// Run the whole script and close, stopping at the first failure.
fn run_workload(sim: &SimFs, script: &Script, ctx: &str) -> Outcome {
    let mut out = Outcome::default();
    let db = match Database::open_with(ROOT, options(sim)) {
        Ok(db) => db,
        Err(e) => {
            assert_env_error(&e, format!("{ctx}: open"));
            out.open_failed = true;
            return out;
        }
    };
    'txns: for (i, txn) in script.txns.iter().enumerate() {
        let mut tx = db.begin();
        for op in txn {
            if let Err(e) = run_op(&mut tx, op) {
                // Only an earlier failure (after an acknowledged commit) can refuse an op.
                assert!(
                    matches!(e, Error::Poisoned { .. }),
                    "{ctx}: txn {i}: op {op:?} refused with {e:?}"
                );
                break 'txns;
            }
        }
        match tx.commit() {
            Ok(info) => {
                assert_eq!(info.seq, i as u64 + 1, "{ctx}: seq of txn {i}");
                out.acked.push(info.seq);
            }
            Err(e) => {
                assert_env_error(&e, format!("{ctx}: commit of txn {i}"));
                out.in_doubt = true;
                // Later writes are refused, reads still work.
                let mut tx = db.begin();
                let refused = tx.create_table("zz", TableSchema::new("id"));
                assert!(matches!(refused, Err(Error::Poisoned { .. })), "{ctx}: {refused:?}");
                assert_eq!(db.last_seq(), i as u64, "{ctx}");
                break;
            }
        }
    }
    match db.close() {
        Ok(()) => assert!(!sim.has_crashed() && !out.in_doubt, "{ctx}: close succeeded"),
        Err(e) => assert_env_error(&e, format!("{ctx}: close")),
    }
    out
}

/// Everything a database answers about its history: per seq, the commit time and the full
/// content of every table.
fn read_all(db: &Database, ctx: &str) -> Vec<(Option<u64>, ModelState)> {
    (0..=db.last_seq())
        .map(|seq| {
            let snap = ok(db.read(AsOf::Seq(seq)), format!("{ctx}: read at {seq}"));
            let mut state = ModelState::new();
            for table in snap.tables() {
                let rows = ok(snap.scan(&table, |_| true), format!("{ctx}: scan {table} at {seq}"));
                let rows = rows.into_iter().map(|r| (r.key, r.doc)).collect();
                let schema = ok(snap.schema(&table), format!("{ctx}: schema of {table} at {seq}"));
                state.insert(table, ModelTable { schema, rows });
            }
            let time = if seq == 0 { Some(0) } else { db.commit_time(seq) };
            (time, state)
        })
        .collect()
}

/// Open a crash image and check it against the model and what was acknowledged.
/// Returns what the database answers, for idempotency checks.
fn check_image(
    image: &SimFs,
    script: &Script,
    outcome: &Outcome,
    ctx: &str,
) -> Vec<(Option<u64>, ModelState)> {
    let db = ok(Database::open_with(ROOT, options(image)), format!("{ctx}: open of the image"));
    let acked = outcome.acked.last().copied().unwrap_or(0);
    let last = db.last_seq();
    assert!(
        last >= acked && last <= acked + u64::from(outcome.in_doubt),
        "{ctx}: last_seq {last}, acknowledged up to {acked}, in doubt: {}",
        outcome.in_doubt
    );
    let all = read_all(&db, ctx);
    let mut prev_time = 0;
    for (seq, (time, state)) in all.iter().enumerate() {
        let Some(time) = *time else { panic!("{ctx}: seq {seq} has no commit time") };
        assert!(time >= prev_time, "{ctx}: commit time goes back at seq {seq}");
        prev_time = time;
        assert_eq!(state, &script.states[seq], "{ctx}: state at seq {seq}");
    }
    assert_eq!(db.commit_time(last + 1), None, "{ctx}");
    assert!(matches!(db.read(AsOf::Seq(last + 1)), Err(Error::FutureSeq { .. })), "{ctx}");
    ok(db.close(), format!("{ctx}: close of the image"));
    all
}

fn count_syncs(script: &Script) -> u64 {
    let sim = SimFs::new();
    let outcome = run_workload(&sim, script, "clean run");
    assert!(!outcome.open_failed && !outcome.in_doubt);
    assert_eq!(outcome.acked.len(), script.txns.len());
    assert!(!sim.has_crashed());
    // The clean run itself must read back whole.
    check_image(&sim.crash_image(), script, &outcome, "clean run");
    sim.sync_count()
}

/// Run the workload on a file system that dies at sync point `k`.
fn crashed_run(script: &Script, k: u64) -> (SimFs, Outcome) {
    let sim = SimFs::new();
    sim.crash_at_sync(k);
    let ctx = format!("crash at sync {k}");
    let outcome = catch_unwind(AssertUnwindSafe(|| run_workload(&sim, script, &ctx)));
    let Ok(outcome) = outcome else { panic!("{ctx}: the workload panicked") };
    assert!(sim.has_crashed(), "{ctx}: the crash point was never reached");
    (sim, outcome)
}

#[test]
fn the_workload_rotates_segments_and_checkpoints() {
    let script = script();
    let sim = SimFs::new();
    let outcome = run_workload(&sim, &script, "clean run");
    assert_eq!(outcome.acked.len(), script.txns.len());
    let image = sim.crash_image();
    let segments: Vec<_> =
        image.files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).collect();
    assert!(segments.len() >= 6, "too few segments for rotation to be exercised: {segments:?}");
    assert!(sim.sync_count() > 80, "only {} sync points", sim.sync_count());
}

#[test]
fn power_loss_at_every_sync_point() {
    power_loss_at_every_sync_point_run();
}

/// [`power_loss_at_every_sync_point`] with every database encrypted.
#[test]
fn power_loss_at_every_sync_point_encrypted() {
    common::encrypt_in_this_thread();
    assert!(ok(Database::open_with("/db", options(&SimFs::new())), "open").is_encrypted());
    power_loss_at_every_sync_point_run();
}

fn power_loss_at_every_sync_point_run() {
    let script = script();
    let count = count_syncs(&script);
    let mut fresh_dbs = 0;
    let mut in_doubt_present = 0;
    for k in 1..=count {
        let (sim, outcome) = crashed_run(&script, k);
        let ctx = format!("crash at sync {k} of {count}, power loss");
        let all = check_image(&sim.crash_image(), &script, &outcome, &ctx);
        if outcome.open_failed {
            // Died while the database was being created: it opens as a fresh, empty one.
            assert_eq!(all.len(), 1, "{ctx}");
            fresh_dbs += 1;
        }
        if outcome.in_doubt && all.len() as u64 > outcome.acked.len() as u64 + 1 {
            in_doubt_present += 1;
        }
    }
    eprintln!(
        "{count} crash points; {fresh_dbs} during creation; in-doubt commit survived {in_doubt_present} times"
    );
    assert!(fresh_dbs > 0);
}

#[test]
fn process_crash_at_every_sync_point() {
    process_crash_at_every_sync_point_run();
}

/// [`process_crash_at_every_sync_point`] with every database encrypted.
#[test]
fn process_crash_at_every_sync_point_encrypted() {
    common::encrypt_in_this_thread();
    assert!(ok(Database::open_with("/db", options(&SimFs::new())), "open").is_encrypted());
    process_crash_at_every_sync_point_run();
}

fn process_crash_at_every_sync_point_run() {
    // The process dies at the failed sync, but the OS keeps everything written so far.
    let script = script();
    let count = count_syncs(&script);
    let mut in_doubt_present = 0;
    for k in 1..=count {
        let (sim, outcome) = crashed_run(&script, k);
        let ctx = format!("crash at sync {k} of {count}, process crash");
        let all = check_image(&sim.process_crash_image(), &script, &outcome, &ctx);
        if all.len() as u64 > outcome.acked.len() as u64 + 1 {
            in_doubt_present += 1;
        }
    }
    eprintln!("{count} crash points; in-doubt commit survived {in_doubt_present} times");
    // A failed WAL fsync leaves the batch in the OS cache: it must then be recovered whole.
    assert!(in_doubt_present > 0);
}

#[test]
fn reopening_a_crash_image_twice_gives_the_same_answers() {
    let script = script();
    let count = count_syncs(&script);
    for k in (1..=count).step_by(7) {
        let (sim, outcome) = crashed_run(&script, k);
        for (kind, take) in [
            ("power loss", SimFs::crash_image as fn(&SimFs) -> SimFs),
            ("process crash", SimFs::process_crash_image),
        ] {
            let ctx = format!("crash at sync {k}, {kind}");
            let image = take(&sim);
            let first = check_image(&image, &script, &outcome, &format!("{ctx}, first open"));
            let second = check_image(&image, &script, &outcome, &format!("{ctx}, second open"));
            assert_eq!(first, second, "{ctx}: the second open differs");
            // A power cut right after recovery must not change the answers either.
            let third = check_image(&image.crash_image(), &script, &outcome, &ctx);
            assert_eq!(first, third, "{ctx}: recovery was not durable");
            // And a fresh copy of the same crash recovers to the same history.
            let other = check_image(&take(&sim), &script, &outcome, &ctx);
            assert_eq!(first, other, "{ctx}: two copies of one crash recover differently");
        }
    }
}

#[test]
fn a_recovered_database_continues_the_history() {
    // After recovery, the rest of the script commits at the next seqs and survives another
    // power cut.
    let script = script();
    let count = count_syncs(&script);
    for k in (1..=count).step_by(5) {
        let (sim, _) = crashed_run(&script, k);
        let ctx = format!("crash at sync {k}, continued");
        let image = sim.crash_image();
        let db = ok(Database::open_with(ROOT, options(&image)), &ctx);
        let start = db.last_seq() as usize;
        for (i, txn) in script.txns.iter().enumerate().skip(start) {
            let mut tx = db.begin();
            for op in txn {
                ok(run_op(&mut tx, op), format!("{ctx}: txn {i}: {op:?}"));
            }
            let info = ok(tx.commit(), format!("{ctx}: commit {i}"));
            assert_eq!(info.seq, i as u64 + 1, "{ctx}");
        }
        drop(db);
        let full =
            Outcome { acked: (1..=script.txns.len() as u64).collect(), ..Outcome::default() };
        check_image(&image.crash_image(), &script, &full, &ctx);
    }
}

#[test]
fn power_loss_during_recovery() {
    // Recovery writes too (segment tails cut, WAL replayed into segments, a checkpoint):
    // a power cut at any of its sync points must leave an image that still recovers whole.
    let script = script();
    let count = count_syncs(&script);
    let mut points = 0;
    for k in (1..=count).step_by(6) {
        let (sim, outcome) = crashed_run(&script, k);
        for (kind, image) in
            [("power loss", sim.crash_image()), ("process crash", sim.process_crash_image())]
        {
            // Count the sync points of one full recovery (open and close) of this image.
            let probe = image.crash_image();
            let ctx = format!("crash at sync {k}, {kind}");
            ok(ok(Database::open_with(ROOT, options(&probe)), &ctx).close(), &ctx);
            for j in 1..=probe.sync_count() {
                let ctx = format!("crash at sync {k}, {kind}, then at recovery sync {j}");
                let copy = image.crash_image();
                copy.crash_at_sync(j);
                let opened = catch_unwind(AssertUnwindSafe(|| {
                    Database::open_with(ROOT, options(&copy)).and_then(Database::close)
                }));
                let Ok(opened) = opened else { panic!("{ctx}: recovery panicked") };
                let Err(e) = opened else { panic!("{ctx}: the crash point was not reached") };
                assert_env_error(&e, &ctx);
                check_image(&copy.crash_image(), &script, &outcome, &ctx);
                check_image(&copy.process_crash_image(), &script, &outcome, &ctx);
                points += 1;
            }
        }
    }
    eprintln!("{points} crash points inside recovery");
    assert!(points > 20);
}
