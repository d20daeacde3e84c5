//! Measure DriftDB's time travel beside SQLite on your own machine and print the figures of the
//! time-travel issue with a verdict on each target.
//!
//! ```sh
//! cargo run --release -p driftdb-benches --example time_travel_report -- DIR
//! cargo run --release -p driftdb-benches --example time_travel_report -- --events 100000 DIR
//! ```
//!
//! `DIR` must be on the disk you want to measure (not a tmpfs). The histories of N/100, N/10 and
//! N events (N = 1,000,000 by default) are built in `DIR/time-travel-<events>/` the first time
//! (about a minute for 1M events) and reused later; `--rebuild` builds them again. Then the
//! workloads run in turn, round after round (`--rounds`, default 15), each ratio is taken
//! within a round and its median and range are printed. Resident memory is measured in fresh
//! child processes (this program run as `memory [--scan] DIR/time-travel-<N>`), which
//! `/usr/bin/time -v` can also wrap: see `scripts/time-travel-rss.sh`.
//!
//! Subcommands:
//! - `build [--events N] DIR`: only build (or reuse) `DIR/time-travel-<N>`;
//! - `memory [--scan] HISTORY_DIR`: open one built history, print resident memory (and scan AS
//!   OF its middle seq with `--scan`), as `name=value` lines.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use driftdb_benches::engines::Engines;
use driftdb_benches::fixture::{Built, build_or_reuse, disk_usage, rebuild};
use driftdb_benches::history::Shape;
use driftdb_benches::memory::Resident;
use driftdb_benches::suite::{self, DiskRow, MemoryProbe, Settings};

type Res<T> = Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: time_travel_report [--events N] [--rounds R] [--rebuild] DIR
       time_travel_report build [--events N] [--rebuild] DIR
       time_travel_report memory [--scan] HISTORY_DIR";

/// Parsed command line.
#[derive(Debug, Default)]
struct Args {
    command: Option<String>,
    events: Option<u64>,
    rounds: Option<usize>,
    rebuild: bool,
    scan: bool,
    dir: Option<PathBuf>,
}

fn parse_args() -> Res<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> Res<u64> {
        let v = v.ok_or_else(|| format!("{flag} needs a number\n{USAGE}"))?;
        Ok(v.replace('_', "").parse().map_err(|e| format!("{flag} {v}: {e}"))?)
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => args.events = Some(number(it.next(), "--events")?),
            "--rounds" => args.rounds = Some(usize::try_from(number(it.next(), "--rounds")?)?),
            "--rebuild" => args.rebuild = true,
            "--scan" => args.scan = true,
            "-h" | "--help" => return Err(USAGE.into()),
            "build" | "memory" if args.command.is_none() && args.dir.is_none() => {
                args.command = Some(arg);
            }
            _ if arg.starts_with('-') => {
                return Err(format!("unknown option {arg}\n{USAGE}").into());
            }
            _ if args.dir.is_none() => args.dir = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}\n{USAGE}").into()),
        }
    }
    Ok(args)
}

fn history(root: &Path, events: u64, rebuild_all: bool) -> Res<Built> {
    let dir = root.join(format!("time-travel-{events}"));
    let shape = Shape::new(events);
    let start = Instant::now();
    let mut reported = 0;
    let progress = |done: u64| {
        if done >= reported + events / 10 {
            reported = done;
            eprintln!("  {events}: built {done} events ({:.0?})", start.elapsed());
        }
    };
    let built = if rebuild_all {
        rebuild(&dir, shape, progress)?
    } else {
        build_or_reuse(&dir, shape, progress)?
    };
    eprintln!("history of {events} events ready at {} ({:.1?})", dir.display(), start.elapsed());
    Ok(built)
}

fn print_probe(probe: &MemoryProbe) {
    println!("open_ms={}", probe.open_ms);
    println!("index_files_loaded={}", probe.index_files_loaded);
    println!("close_ms={}", probe.close_ms);
    let show = |name: &str, r: Resident| {
        println!("{name}_rss_bytes={}", r.now.unwrap_or(0));
        println!("{name}_peak_bytes={}", r.peak.unwrap_or(0));
    };
    show("after_open", probe.after_open);
    if let Some(after) = probe.after_scan {
        show("after_scan", after);
        println!("scanned_rows={}", probe.scanned_rows);
    }
}

/// Run this program as `memory [--scan] DIR` in a child process and read its figures back.
fn probe_in_child(dir: &Path, scan: bool) -> Res<MemoryProbe> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("memory");
    if scan {
        cmd.arg("--scan");
    }
    let out = cmd.arg(dir).output()?;
    if !out.status.success() {
        return Err(format!("memory probe failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8(out.stdout)?;
    let value = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    let resident = |name: &str| Resident {
        now: value(&format!("{name}_rss_bytes")).filter(|&b| b > 0),
        peak: value(&format!("{name}_peak_bytes")).filter(|&b| b > 0),
    };
    let after_scan = scan.then(|| resident("after_scan"));
    Ok(MemoryProbe {
        open_ms: value("open_ms").unwrap_or(0),
        index_files_loaded: value("index_files_loaded").unwrap_or(0),
        close_ms: value("close_ms").unwrap_or(0),
        after_open: resident("after_open"),
        after_scan,
        scanned_rows: value("scanned_rows").unwrap_or(0),
    })
}

fn report(args: &Args, root: &Path) -> Res<()> {
    let events = args.events.unwrap_or(1_000_000);
    let mut settings = Settings::full();
    if let Some(rounds) = args.rounds {
        settings.rounds = rounds.max(1);
        settings.open_rounds = rounds.clamp(1, settings.open_rounds);
    }
    let mut sizes = vec![events / 100, events / 10, events];
    sizes.retain(|&n| n >= 1_000);
    sizes.dedup();
    let built: Vec<Built> =
        sizes.iter().map(|&n| history(root, n, args.rebuild)).collect::<Res<_>>()?;
    let largest = built.last().ok_or("no history to measure")?;

    let engines = Engines::open(largest)?;
    engines.cross_check(32)?;
    println!("DriftDB and SQLite agree on every checked read of {} events.", events);
    suite::print_plans(&engines)?;
    let point = suite::point_now(&engines, &settings)?;
    point.print(&[("driftdb_get", "sqlite_current")]);
    let hot = suite::hot_key(&engines, &settings)?;
    hot.print(&[
        ("driftdb_as_of_old", "driftdb_now"),
        ("driftdb_as_of_old", "sqlite_versions_as_of_old"),
    ]);
    let scan = suite::scan(&engines, &settings)?;
    scan.print(&[
        ("driftdb_as_of_mid", "driftdb_now"),
        ("driftdb_as_of_mid", "sqlite_versions_as_of_mid"),
        ("driftdb_as_of_mid", "sqlite_versions_not_indexed"),
        ("driftdb_as_of_mid_shared", "sqlite_versions_as_of_mid"),
        ("driftdb_as_of_mid_shared", "driftdb_as_of_mid"),
    ]);
    let index = suite::index_eq(&engines, &settings)?;
    index.print(&[
        ("driftdb_now", "sqlite_current"),
        ("driftdb_as_of_mid", "sqlite_versions_as_of_mid"),
    ]);
    engines.close()?;

    let open = suite::open_curve(&built, &settings)?;
    open.print(&[]);
    let disk: Vec<DiskRow> = built
        .iter()
        .map(|b| Ok(DiskRow { shape: b.shape, usage: disk_usage(b)? }))
        .collect::<Res<_>>()?;
    suite::print_disk(&disk);

    let opened = probe_in_child(&largest.root, false)?;
    let scanned = probe_in_child(&largest.root, true)?;
    println!("\n7. resident memory of a fresh process ({} events)", largest.shape.events);
    let mib =
        |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
    println!(
        "  open only:       now {}, peak {}",
        mib(opened.after_open.now),
        mib(opened.after_open.peak)
    );
    if let Some(after) = scanned.after_scan {
        println!(
            "  open, then scan: after open {}, peak after scanning {} rows AS OF seq {}: {}",
            mib(scanned.after_open.now),
            scanned.scanned_rows,
            largest.shape.mid_seq(),
            mib(after.peak)
        );
    }

    let mut verdicts = suite::read_verdicts(&point, &hot, &scan, &index);
    verdicts.push(suite::open_verdict(&open, largest.shape.events));
    if let Some(row) = disk.last() {
        verdicts.push(suite::Verdict {
            target: "6. bytes on disk per event against SQLite's per version row".to_owned(),
            measured: format!(
                "{:.1} B/event ({:.1} compacted) against {:.1} B/row (versions table and its \
                 indexes; {:.1} B/row for the whole file)",
                row.driftdb_per_event(),
                row.compacted_per_event(),
                row.sqlite_versions_per_row(),
                row.sqlite_file_per_row()
            ),
            verdict: "reported",
        });
    }
    verdicts.extend(suite::memory_verdicts(&opened, &scanned));
    suite::print_verdicts(&verdicts);
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("time_travel_report: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let dir = args.dir.clone().ok_or_else(|| format!("a directory is needed\n{USAGE}"))?;
    match args.command.as_deref() {
        Some("build") => {
            history(&dir, args.events.unwrap_or(1_000_000), args.rebuild)?;
            Ok(())
        }
        Some("memory") => {
            let built = Built::existing(&dir)?
                .ok_or_else(|| format!("{} holds no finished history", dir.display()))?;
            print_probe(&suite::memory_probe(&built, args.scan)?);
            Ok(())
        }
        _ => report(&args, &dir),
    }
}
