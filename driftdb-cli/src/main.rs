//! The `driftdb` command. This release has `init`, `tables` and `drift`; the full command
//! set (sql, select, REPL, import/export, ...) arrives with the CLI release.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use driftdb_core::{AsOf, Database, Key, Options};

#[derive(Parser, Debug)]
#[command(name = "driftdb", version, about = "DriftDB: an append-only, time-travel database")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new, empty database in DIR.
    Init {
        /// The database directory (created if missing; must be empty or absent).
        dir: PathBuf,
    },
    /// List the tables, now or AS OF a point of history.
    Tables {
        /// The database directory.
        #[arg(short = 'd', long = "data")]
        dir: PathBuf,
        /// `@seq:N`, an ISO-8601 time, or `now`.
        #[arg(long, default_value = "now")]
        as_of: String,
    },
    /// Print every event of one key, one JSON object a line.
    Drift {
        /// The database directory.
        #[arg(short = 'd', long = "data")]
        dir: PathBuf,
        /// The table.
        #[arg(long)]
        table: String,
        /// The primary key (a string; an integer key is written as digits).
        #[arg(long)]
        key: String,
    },
}

fn open_existing(dir: &PathBuf) -> Result<Database, driftdb_core::Error> {
    Database::open_with(dir, Options { create_if_missing: false, ..Options::default() })
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Init { dir } => {
            if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
                return Err(format!("{} exists and is not empty", dir.display()).into());
            }
            let db = Database::open(&dir)?;
            db.close()?;
            println!("initialized an empty DriftDB database in {}", dir.display());
        }
        Command::Tables { dir, as_of } => {
            let db = open_existing(&dir)?;
            let at: AsOf = driftdb_ql::parse_as_of(&as_of)?;
            for name in db.read(at)?.tables() {
                println!("{name}");
            }
        }
        Command::Drift { dir, table, key } => {
            let db = open_existing(&dir)?;
            let snap = db.read(AsOf::Now)?;
            let mut events = snap.history(&table, &Key::Str(key.clone()))?;
            if events.is_empty()
                && let Ok(int) = key.parse::<i64>()
            {
                events = snap.history(&table, &Key::Int(int))?;
            }
            for e in events {
                let line = serde_json::json!({
                    "seq": e.seq,
                    "time": driftdb_ql::format_unix_ms(e.unix_ms),
                    "kind": e.kind.name(),
                    "payload": serde_json::Value::from(&e.payload),
                    "document": e.document.as_ref().map(serde_json::Value::from),
                });
                println!("{line}");
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("driftdb: {e}");
            ExitCode::from(1)
        }
    }
}
