//! The workloads of the time-travel issue as interleaved comparisons, and their targets.
//!
//! | # | workload | contenders (in turn, every round) | target (ratio within a round) |
//! |---|---|---|---|
//! | 1 | point read by primary key, now | DriftDB `get`; SQLite `current` | DriftDB ≤ 1× SQLite's time |
//! | 2 | point read of the hot key (10,000 versions) at an old seq | DriftDB now and AS OF; SQLite `current` and `versions` | AS OF ≤ 2× now |
//! | 3 | full scan (100,000 keys, 1,000,000 events) at the middle seq | DriftDB now and AS OF (documents decoded: copied, and in an `Arc` with `scan_shared`; and as msgpack bytes with `scan_encoded`); SQLite `current` and `versions` (JSON text) | AS OF ≤ 2× now, and faster than SQLite's `versions` |
//! | 4 | indexed equality, now and at the middle seq | DriftDB `lookup`; SQLite with an index | ≤ 2× SQLite |
//! | 5 | `Database::open` at 10k, 100k, 1M events | DriftDB (SQLite's open + first read for reference) | 1M < 1 s |
//! | 6 | bytes on disk per event | both, after close | (reported) |
//! | 7 | resident memory after open, and a streamed scan (`scan_stream`, from the nearest snapshot) AS OF the middle seq | DriftDB, fresh process | < 200 MB; scan < 100 MB more |
//!
//! Point reads rotate over 4,096 pseudo-random keys and lookups over 256 buckets, chosen
//! before the clock starts; every read's answer goes through [`black_box`].

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use driftdb_core::{AsOf, Database, Key};

use crate::engines::Engines;
use crate::fixture::{Built, DiskUsage, open_sqlite};
use crate::history::{Shape, key_name};
use crate::memory::{Resident, resident};
use crate::paired::{Ratio, Table, ns_per_op};
use crate::{Error, Result};

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Rounds of every comparison.
    pub rounds: usize,
    /// Length of one contender's turn for point reads and lookups.
    pub block: Duration,
    /// Length of one contender's turn for scans (at least one scan is always made).
    pub scan_block: Duration,
    /// Rounds of the open comparison (one open per contender per round).
    pub open_rounds: usize,
}

impl Settings {
    /// A real measurement.
    pub fn full() -> Settings {
        Settings {
            rounds: 15,
            block: Duration::from_millis(100),
            scan_block: Duration::from_millis(400),
            open_rounds: 3,
        }
    }

    /// A smoke test of the code paths (`cargo test`).
    pub fn smoke() -> Settings {
        Settings {
            rounds: 1,
            block: Duration::from_millis(2),
            scan_block: Duration::ZERO,
            open_rounds: 1,
        }
    }
}

/// Keeps the first error raised inside a timed closure (which must return a figure).
#[derive(Default)]
struct Failure(RefCell<Option<Error>>);

impl Failure {
    fn keep<T>(&self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.0.borrow_mut().get_or_insert(e);
                None
            }
        }
    }

    fn check(self) -> Result<()> {
        self.0.into_inner().map_or(Ok(()), Err)
    }
}

/// 1. Point reads of the current state by primary key (ns per read).
pub fn point_now(e: &Engines, s: &Settings) -> Result<Table> {
    let keys: Vec<(Key, String)> = (0..4096)
        .map(|i| {
            let name = key_name(e.nth_key(i));
            (Key::from(name.as_str()), name)
        })
        .collect();
    let fail = Failure::default();
    let (mut i, mut j) = (0, 0);
    let mut drift = || {
        ns_per_op(s.block, || {
            let (key, _) = &keys[i % keys.len()];
            i += 1;
            black_box(fail.keep(e.driftdb_get(AsOf::Now, key)));
        })
    };
    let mut sqlite = || {
        ns_per_op(s.block, || {
            let (_, name) = &keys[j % keys.len()];
            j += 1;
            black_box(fail.keep(e.sqlite_current_get(name)));
        })
    };
    let table = Table::run(
        format!("1. point read by primary key, now ({} keys)", e.shape.keys),
        "ns",
        &["driftdb_get", "sqlite_current"],
        s.rounds,
        &mut [&mut drift, &mut sqlite],
    );
    fail.check()?;
    Ok(table)
}

/// 2. The hot key (`k0`, `hot_versions` versions): now and AS OF the old seq (ns per read).
pub fn hot_key(e: &Engines, s: &Settings) -> Result<Table> {
    let key = Key::from(key_name(0));
    let name = key_name(0);
    let old = e.shape.old_seq();
    let fail = Failure::default();
    let mut drift_now = || {
        ns_per_op(s.block, || {
            black_box(fail.keep(e.driftdb_get(AsOf::Now, &key)));
        })
    };
    let mut drift_old = || {
        ns_per_op(s.block, || {
            black_box(fail.keep(e.driftdb_get(AsOf::Seq(old), &key)));
        })
    };
    let mut sqlite_now = || {
        ns_per_op(s.block, || {
            black_box(fail.keep(e.sqlite_current_get(&name)));
        })
    };
    let mut sqlite_old = || {
        ns_per_op(s.block, || {
            black_box(fail.keep(e.sqlite_versions_get(&name, old)));
        })
    };
    let table = Table::run(
        format!(
            "2. point read of a key with {} versions, now and AS OF seq {old} of {}",
            e.shape.hot_versions,
            e.shape.last_seq()
        ),
        "ns",
        &["driftdb_now", "driftdb_as_of_old", "sqlite_current", "sqlite_versions_as_of_old"],
        s.rounds,
        &mut [&mut drift_now, &mut drift_old, &mut sqlite_now, &mut sqlite_old],
    );
    fail.check()?;
    Ok(table)
}

/// 3. Full scans, now and AS OF the middle seq (ms per scan).
pub fn scan(e: &Engines, s: &Settings) -> Result<Table> {
    let mid = e.shape.mid_seq();
    let fail = Failure::default();
    let ms = |ns: f64| ns / 1e6;
    let mut drift_now =
        || ms(ns_per_op(s.scan_block, || drop(black_box(fail.keep(e.driftdb_scan(AsOf::Now))))));
    let mut drift_mid = || {
        ms(ns_per_op(s.scan_block, || drop(black_box(fail.keep(e.driftdb_scan(AsOf::Seq(mid)))))))
    };
    let mut drift_mid_shared = || {
        ms(ns_per_op(s.scan_block, || {
            drop(black_box(fail.keep(e.driftdb_scan_shared(AsOf::Seq(mid)))))
        }))
    };
    let mut drift_mid_encoded = || {
        ms(ns_per_op(s.scan_block, || {
            drop(black_box(fail.keep(e.driftdb_scan_encoded(AsOf::Seq(mid)))))
        }))
    };
    let mut sqlite_now =
        || ms(ns_per_op(s.scan_block, || drop(black_box(fail.keep(e.sqlite_current_scan())))));
    let mut sqlite_mid =
        || ms(ns_per_op(s.scan_block, || drop(black_box(fail.keep(e.sqlite_versions_scan(mid))))));
    let mut sqlite_plain = || {
        ms(ns_per_op(s.scan_block, || {
            drop(black_box(fail.keep(e.sqlite_versions_scan_not_indexed(mid))))
        }))
    };
    let table = Table::run(
        format!(
            "3. full scan of {} keys, now and AS OF seq {mid} (the middle of {} events)",
            e.shape.keys, e.shape.events
        ),
        "ms",
        &[
            "driftdb_now",
            "driftdb_as_of_mid",
            "driftdb_as_of_mid_shared",
            "driftdb_as_of_mid_encoded",
            "sqlite_current",
            "sqlite_versions_as_of_mid",
            "sqlite_versions_not_indexed",
        ],
        s.rounds,
        &mut [
            &mut drift_now,
            &mut drift_mid,
            &mut drift_mid_shared,
            &mut drift_mid_encoded,
            &mut sqlite_now,
            &mut sqlite_mid,
            &mut sqlite_plain,
        ],
    );
    fail.check()?;
    Ok(table)
}

/// 4. Indexed equality on `bucket`, now and AS OF the middle seq (µs per query).
pub fn index_eq(e: &Engines, s: &Settings) -> Result<Table> {
    let mid = e.shape.mid_seq();
    let buckets: Vec<u64> = (0..256).map(|i| e.nth_bucket(i)).collect();
    let next = |i: &mut usize| {
        *i += 1;
        buckets[*i % buckets.len()]
    };
    let fail = Failure::default();
    let us = |ns: f64| ns / 1e3;
    let (mut a, mut b, mut c, mut d) = (0, 0, 0, 0);
    let mut drift_now = || {
        us(ns_per_op(s.block, || {
            drop(black_box(fail.keep(e.driftdb_lookup(AsOf::Now, next(&mut a)))))
        }))
    };
    let mut sqlite_now = || {
        us(ns_per_op(s.block, || drop(black_box(fail.keep(e.sqlite_current_lookup(next(&mut b)))))))
    };
    let mut drift_mid = || {
        us(ns_per_op(s.block, || {
            drop(black_box(fail.keep(e.driftdb_lookup(AsOf::Seq(mid), next(&mut c)))))
        }))
    };
    let mut sqlite_mid = || {
        us(ns_per_op(s.block, || {
            drop(black_box(fail.keep(e.sqlite_versions_lookup(next(&mut d), mid))))
        }))
    };
    let table = Table::run(
        format!(
            "4. indexed equality on bucket ({} values, ~{} rows each), now and AS OF seq {mid}",
            e.shape.buckets(),
            e.shape.keys / e.shape.buckets()
        ),
        "µs",
        &["driftdb_now", "sqlite_current", "driftdb_as_of_mid", "sqlite_versions_as_of_mid"],
        s.rounds,
        &mut [&mut drift_now, &mut sqlite_now, &mut drift_mid, &mut sqlite_mid],
    );
    fail.check()?;
    Ok(table)
}

/// The column name of the open of a history of `events` events.
pub fn open_column(events: u64) -> String {
    match events {
        e if e >= 1_000_000 && e % 1_000_000 == 0 => format!("driftdb_{}M", e / 1_000_000),
        e if e >= 1_000 && e % 1_000 == 0 => format!("driftdb_{}k", e / 1_000),
        e => format!("driftdb_{e}"),
    }
}

/// Workload 5: the time of `Database::open` on each history (closed before; ms per open; the
/// close after each open is not timed), and for the largest, SQLite's open plus one point read.
pub fn open_curve(histories: &[Built], s: &Settings) -> Result<Table> {
    let fail = Failure::default();
    let open_once = |built: &Built| -> f64 {
        let start = Instant::now();
        let db = fail.keep(Database::open(built.driftdb_dir()).map_err(Error::from));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if let Some(db) = db {
            fail.keep(db.close().map_err(Error::from));
        }
        ms
    };
    let largest = histories.iter().max_by_key(|b| b.shape.events);
    let sqlite_once = || -> f64 {
        let Some(built) = largest else { return f64::NAN };
        let start = Instant::now();
        let conn = fail.keep(open_sqlite(&built.sqlite_file()));
        let read = conn.as_ref().map(|c| {
            c.query_row("SELECT doc FROM current WHERE id = 'k0'", [], |r| r.get::<_, String>(0))
        });
        let ms = start.elapsed().as_secs_f64() * 1e3;
        fail.keep(read.transpose().map_err(Error::from));
        ms
    };
    let mut names: Vec<String> = histories.iter().map(|b| open_column(b.shape.events)).collect();
    names.push("sqlite_open_and_read".to_owned());
    let mut runs: Vec<Box<dyn FnMut() -> f64 + '_>> = histories
        .iter()
        .map(|b| Box::new(move || open_once(b)) as Box<dyn FnMut() -> f64>)
        .collect();
    runs.push(Box::new(sqlite_once));
    let mut refs: Vec<&mut dyn FnMut() -> f64> = runs.iter_mut().map(|r| &mut **r as _).collect();
    let names_ref: Vec<&str> = names.iter().map(String::as_str).collect();
    let events: Vec<String> = histories.iter().map(|b| b.shape.events.to_string()).collect();
    let table = Table::run(
        format!(
            "5. Database::open after a clean close, {} events (warm page cache)",
            events.join(" / ")
        ),
        "ms",
        &names_ref,
        s.open_rounds,
        &mut refs,
    );
    drop(refs);
    drop(runs);
    fail.check()?;
    Ok(table)
}

/// Resident memory of a fresh process that opened one history (and maybe scanned it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryProbe {
    /// How long `Database::open` took, in milliseconds.
    pub open_ms: u64,
    /// Right after `Database::open` returned.
    pub after_open: Resident,
    /// After a streamed scan AS OF the middle seq (`Database::scan_stream`, what an export
    /// runs; each row is dropped as soon as it is read, so `peak` is the figure that counts:
    /// the peak of the scan alone, as the peak is started over after the open where Linux
    /// allows it, else of the open and the scan).
    pub after_scan: Option<Resident>,
    /// Rows the scan returned.
    pub scanned_rows: u64,
    /// How long `Database::close` took, in milliseconds (its final checkpoint, and the index
    /// files of every table whose files on disk are not current).
    pub close_ms: u64,
    /// Index files the open loaded instead of rebuilding their indexes.
    pub index_files_loaded: u64,
}

/// Open `built`'s DriftDB (nothing else: this is meant to run in a fresh process), measure,
/// and if `scan` is set, scan AS OF the middle seq and measure again.
pub fn memory_probe(built: &Built, scan: bool) -> Result<MemoryProbe> {
    let start = Instant::now();
    let db = Database::open(built.driftdb_dir())?;
    let open_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let after_open = resident();
    let index_files_loaded = db.index_files_loaded() as u64;
    let mut probe =
        MemoryProbe { open_ms, after_open, index_files_loaded, ..MemoryProbe::default() };
    if scan {
        crate::memory::reset_peak();
        // What `driftdb export --as-of` runs: the streamed scan from the nearest snapshot (or
        // the segments), one row at a time.
        for row in db.scan_stream(crate::history::TABLE, AsOf::Seq(built.shape.mid_seq()))? {
            drop(black_box(row?));
            probe.scanned_rows += 1;
        }
        probe.after_scan = Some(resident());
    }
    let start = Instant::now();
    db.close()?;
    probe.close_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(probe)
}

/// One line of the bytes-on-disk comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskRow {
    /// The history.
    pub shape: Shape,
    /// Its bytes on disk.
    pub usage: DiskUsage,
}

impl DiskRow {
    /// DriftDB bytes per event.
    pub fn driftdb_per_event(&self) -> f64 {
        self.usage.driftdb as f64 / self.shape.events as f64
    }

    /// DriftDB bytes per event after `compact_table`.
    pub fn compacted_per_event(&self) -> f64 {
        self.usage.driftdb_compacted as f64 / self.shape.events as f64
    }

    /// SQLite bytes per version row, the whole file (versions and current tables).
    pub fn sqlite_file_per_row(&self) -> f64 {
        self.usage.sqlite_file as f64 / self.shape.events as f64
    }

    /// SQLite bytes per version row, the versions table and its indexes only.
    pub fn sqlite_versions_per_row(&self) -> f64 {
        self.usage.sqlite_versions as f64 / self.shape.events as f64
    }
}

/// Print the bytes-on-disk table.
pub fn print_disk(rows: &[DiskRow]) {
    println!("\n6. bytes on disk per event (after close; SQLite after a TRUNCATE checkpoint)");
    println!(
        "  {:>9} {:>11} {:>8} {:>11} {:>8} {:>11} {:>8} {:>13} {:>8} {:>12} {:>12}",
        "events",
        "driftdb B",
        "B/event",
        "compacted B",
        "B/event",
        "sqlite B",
        "B/row",
        "sqlite vers.B",
        "B/row",
        "plain/vers",
        "compact/vers"
    );
    for r in rows {
        let versions = r.sqlite_versions_per_row();
        println!(
            "  {:>9} {:>11} {:>8.1} {:>11} {:>8.1} {:>11} {:>8.1} {:>13} {:>8.1} {:>12.3} {:>12.3}",
            r.shape.events,
            r.usage.driftdb,
            r.driftdb_per_event(),
            r.usage.driftdb_compacted,
            r.compacted_per_event(),
            r.usage.sqlite_file,
            r.sqlite_file_per_row(),
            r.usage.sqlite_versions,
            versions,
            r.driftdb_per_event() / versions,
            r.compacted_per_event() / versions,
        );
    }
    for r in rows {
        println!(
            "  {:>9} events: snapshot files (derived, every {} events) {} B, {:.1} B/event",
            r.shape.events,
            crate::history::SNAPSHOT_EVERY_EVENTS,
            r.usage.driftdb_snapshots,
            r.usage.driftdb_snapshots as f64 / r.shape.events as f64
        );
    }
}

/// A target and how the measurement compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The target, as the issue states it.
    pub target: String,
    /// The measured figure.
    pub measured: String,
    /// "met", "missed" or "reported".
    pub verdict: &'static str,
}

fn judge(target: &str, ratio: Ratio, limit: f64, strict: bool) -> Verdict {
    let met = if strict { ratio.median < limit } else { ratio.median <= limit };
    Verdict {
        target: target.to_owned(),
        measured: format!("{ratio}×"),
        verdict: if met { "met" } else { "missed" },
    }
}

/// The verdicts of workloads 1–4 from their tables.
pub fn read_verdicts(point: &Table, hot: &Table, scan: &Table, index: &Table) -> Vec<Verdict> {
    vec![
        judge(
            "1. point read now: DriftDB time ≤ 1× SQLite's",
            point.ratio("driftdb_get", "sqlite_current"),
            1.0,
            false,
        ),
        judge(
            "2. point read AS OF an old seq of a 10k-version key ≤ 2× the read of now",
            hot.ratio("driftdb_as_of_old", "driftdb_now"),
            2.0,
            false,
        ),
        judge(
            "3a. scan AS OF the middle seq ≤ 2× the scan of now",
            scan.ratio("driftdb_as_of_mid", "driftdb_now"),
            2.0,
            false,
        ),
        judge(
            "3b. scan AS OF the middle seq faster than SQLite's versions table (its faster plan)",
            scan.ratio_to_best(
                "driftdb_as_of_mid",
                &["sqlite_versions_as_of_mid", "sqlite_versions_not_indexed"],
            ),
            1.0,
            true,
        ),
        judge(
            "3b'. the same with each document in an `Arc` (`scan_shared`)",
            scan.ratio_to_best(
                "driftdb_as_of_mid_shared",
                &["sqlite_versions_as_of_mid", "sqlite_versions_not_indexed"],
            ),
            1.0,
            true,
        ),
        judge(
            "3b''. the same with documents as bytes (`scan_encoded`: msgpack, as SQLite's are \
             JSON text)",
            scan.ratio_to_best(
                "driftdb_as_of_mid_encoded",
                &["sqlite_versions_as_of_mid", "sqlite_versions_not_indexed"],
            ),
            1.0,
            true,
        ),
        judge(
            "4a. indexed equality now ≤ 2× SQLite's time",
            index.ratio("driftdb_now", "sqlite_current"),
            2.0,
            false,
        ),
        judge(
            "4b. indexed equality AS OF the middle seq ≤ 2× SQLite's time",
            index.ratio("driftdb_as_of_mid", "sqlite_versions_as_of_mid"),
            2.0,
            false,
        ),
    ]
}

/// The verdict of workload 5 from its table: the median open of the largest history.
pub fn open_verdict(open: &Table, largest_events: u64) -> Verdict {
    let ms = open.median(&open_column(largest_events));
    Verdict {
        target: format!("5. open a database of {largest_events} events in under 1 s"),
        measured: format!("{ms:.0} ms (median)"),
        verdict: if ms < 1000.0 { "met" } else { "missed" },
    }
}

/// The verdicts of workload 7 from two probes: open only, and open plus scan.
pub fn memory_verdicts(open: &MemoryProbe, scanned: &MemoryProbe) -> Vec<Verdict> {
    let mib = |b: Option<u64>| b.map_or(f64::NAN, |b| b as f64 / (1024.0 * 1024.0));
    let after_open = mib(open.after_open.now);
    let peak_open = mib(open.after_open.peak);
    let scan_peak = mib(scanned.after_scan.and_then(|r| r.peak));
    let scan_extra = scan_peak - mib(scanned.after_open.now);
    vec![
        Verdict {
            target: "7a. resident memory after opening under 200 MB".to_owned(),
            measured: format!(
                "{after_open:.0} MiB resident after open (peak during open {peak_open:.0} MiB)"
            ),
            verdict: if after_open * 1.048_576 < 200.0 { "met" } else { "missed" },
        },
        Verdict {
            target: "7b. a scan (export) AS OF the middle seq under 100 MB more".to_owned(),
            measured: format!("peak {scan_peak:.0} MiB, {scan_extra:.0} MiB above the open"),
            verdict: if scan_extra * 1.048_576 < 100.0 { "met" } else { "missed" },
        },
    ]
}

/// Print SQLite's query plans.
pub fn print_plans(e: &Engines) -> Result<()> {
    println!("\nSQLite query plans (EXPLAIN QUERY PLAN, at the middle seq)");
    for (sql, plan) in e.sqlite_plans()? {
        println!("  {sql}\n      -> {plan}");
    }
    Ok(())
}

/// Print verdicts as a table.
pub fn print_verdicts(verdicts: &[Verdict]) {
    println!("\ntargets (ratios: median over rounds [range]; time ratios, lower is better)");
    for v in verdicts {
        println!("  {:<7} {} — {}", v.verdict, v.target, v.measured);
    }
}
