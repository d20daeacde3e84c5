//! The command line: every subcommand, its options and their help text (clap derive).
//!
//! `--format` is accepted before or after the subcommand. For `import` and `export` the
//! subcommand's own `--format` names the data file's format instead of the output's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// DriftDB: an append-only, time-travel document database.
#[derive(Parser, Debug)]
#[command(
    name = "driftdb",
    version,
    about = "DriftDB: an append-only, time-travel database",
    after_help = "With `-d DIR` and no command, driftdb starts the interactive shell (`repl`)."
)]
pub struct Cli {
    /// Output format (default: `table` on a terminal, `json` otherwise).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,
    /// The database directory for the interactive shell when no command is given.
    #[arg(short = 'd', long = "data", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The key of an encrypted database: a file holding 64 hex characters. Without it, the
    /// `DRIFTDB_KEY` environment variable is used when set.
    #[arg(long = "key-file", global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON value per statement, each on its own line.
    Json,
    /// One JSON object per row (per result for statements that return no rows).
    Ndjson,
    /// A header line and one line per row.
    Csv,
}

/// The format of a data file for `import` and `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A header row of field names, then one row per document.
    Csv,
}

/// The output format, accepted after the subcommand too.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Output format (default: `table` on a terminal, `json` otherwise).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,
}

/// The database directory of a command.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The database directory (made by `driftdb init`).
    #[arg(short = 'd', long = "data", value_name = "DIR")]
    pub dir: PathBuf,
}

/// Every subcommand.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new, empty database in DIR.
    Init {
        /// The database directory (created if missing; must be empty or absent).
        dir: PathBuf,
        /// Encrypt every file of the database at rest (AES-256-GCM) with the key from
        /// `--key-file` or `DRIFTDB_KEY`.
        #[arg(long)]
        encrypt: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Run DriftQL statements from -e, -f or standard input, in order, stopping at the first
    /// failure.
    Sql(SqlArgs),
    /// Query one table: composes a SELECT statement from the options and runs it.
    Select(SelectArgs),
    /// Show every event of one key (SHOW DRIFT).
    Drift(DriftArgs),
    /// List the tables, now or AS OF a point of history.
    Tables {
        #[command(flatten)]
        db: DbArgs,
        /// `@seq:N`, an ISO-8601 time, or `now`.
        #[arg(long, default_value = "now", value_name = "WHEN")]
        as_of: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Write a snapshot of a table (SNAPSHOT).
    Snapshot(TableArgs),
    /// Compact a table's segments (COMPACT).
    Compact(TableArgs),
    /// Start the interactive shell.
    Repl {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Load documents from a JSON, NDJSON or CSV file into a table.
    Import(ImportArgs),
    /// Write a table's documents (now or AS OF a point) as JSON, NDJSON or CSV.
    Export(ExportArgs),
    /// Check every frame of every file of a database, without changing anything.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Decode a segment, WAL or CHECKPOINT file frame by frame, or a snapshot file entry by
    /// entry, without changing it.
    Inspect {
        /// The file.
        path: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Apply pending migrations (MIGRATIONS/pending/NNNN_name.driftql) in order, each in one
    /// transaction, or list them with --status.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
        /// The migrations directory (holds `pending/` and `history.json`); by default the
        /// database's own `migrations/`.
        #[arg(long = "dir", value_name = "MIGRATIONS")]
        migrations: Option<PathBuf>,
        /// Only list applied and pending migrations and any problem; apply nothing.
        #[arg(long)]
        status: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Tables, live rows, versions, segment and WAL sizes, and the last seq.
    Stats {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Write a consistent backup of the database (it stays usable meanwhile) into a new or
    /// empty directory, with a MANIFEST.json of SHA-256 checksums.
    Backup {
        #[command(flatten)]
        db: DbArgs,
        /// The backup directory (created if missing; must be empty).
        #[arg(long, value_name = "PATH")]
        to: PathBuf,
        /// An earlier backup: copy only what changed since it (incremental backup).
        #[arg(long, value_name = "BACKUP")]
        base: Option<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Verify a backup, then restore it into a new or empty directory, optionally only up to a
    /// point of history (point-in-time restore).
    Restore {
        /// The backup directory.
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
        /// The database directory to create (must be absent or empty).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Restore only up to `@seq:N` or an ISO-8601 time.
        #[arg(long, value_name = "WHEN")]
        as_of: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Re-encrypt a closed encrypted database under a new key. The old key comes from
    /// `--key-file` / `DRIFTDB_KEY`, the new one from `--new-key-file` / `DRIFTDB_NEW_KEY`.
    Rekey {
        #[command(flatten)]
        db: DbArgs,
        /// A file holding the new key (64 hex characters).
        #[arg(long = "new-key-file", value_name = "FILE")]
        new_key_file: Option<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Check every file of a backup (and of its base backups) against its manifest; exit
    /// status 1 on any missing, extra or damaged file.
    VerifyBackup {
        /// The backup directory.
        path: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// `driftdb sql`.
#[derive(Args, Debug)]
pub struct SqlArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The statements to run (separated by `;`).
    #[arg(short = 'e', long = "execute", value_name = "TEXT", conflicts_with = "file")]
    pub execute: Option<String>,
    /// A file of statements to run (separated by `;`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `driftdb select`.
#[derive(Args, Debug)]
pub struct SelectArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The table.
    #[arg(long)]
    pub table: String,
    /// A DriftQL condition, e.g. `status="active" AND total > 10`.
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// The fields to return, comma-separated (nested with dots: `id,address.city`).
    #[arg(long, value_name = "FIELDS")]
    pub fields: Option<String>,
    /// The sort order, e.g. `total DESC, id`.
    #[arg(long, value_name = "ORDER")]
    pub order_by: Option<String>,
    /// Return at most N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// `@seq:N`, an ISO-8601 time, or `now`.
    #[arg(long, value_name = "WHEN")]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How `drift --key` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum KeyType {
    /// Digits are tried as an integer key first, then as a string key.
    #[default]
    Auto,
    /// An integer key.
    Int,
    /// A string key, even when it is all digits.
    String,
}

/// `driftdb drift`.
#[derive(Args, Debug)]
pub struct DriftArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The table.
    #[arg(long)]
    pub table: String,
    /// The primary key.
    #[arg(long)]
    pub key: String,
    /// How the key is read: `auto` tries digits as an integer key, then as a string key.
    #[arg(long, value_enum, default_value_t = KeyType::Auto)]
    pub key_type: KeyType,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A command on one table (`snapshot`, `compact`).
#[derive(Args, Debug)]
pub struct TableArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The table.
    #[arg(long)]
    pub table: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `driftdb import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The table (it must exist).
    #[arg(long)]
    pub table: String,
    /// The data file (`-` reads standard input).
    pub file: PathBuf,
    /// The file's format (default: from its extension: .json, .ndjson/.jsonl, .csv).
    #[arg(long, value_enum)]
    pub format: Option<DataFormat>,
    /// Documents per transaction.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub batch: usize,
}

/// `driftdb export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The table.
    #[arg(long)]
    pub table: String,
    /// `@seq:N`, an ISO-8601 time, or `now`.
    #[arg(long, value_name = "WHEN")]
    pub as_of: Option<String>,
    /// The format written (default: from the -o file's extension, else json).
    #[arg(long, value_enum)]
    pub format: Option<DataFormat>,
    /// Write to FILE instead of standard output (replaced atomically when done).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}
