//! One module per subcommand, and opening a database the way every command does.

pub mod backup;
pub mod basic;
pub mod export;
pub mod import;
pub mod inspect;
pub mod inspect_snapshot;
pub mod keys;
pub mod migrate;
pub mod query;
pub mod sql;
pub mod stats;
pub mod verify;

use std::path::Path;

use driftdb_core::{Database, Options};

use crate::error::{CliError, CliResult};

/// The error for a directory that holds no database: missing, empty, or without CHECKPOINT.
pub fn no_database(dir: &Path) -> CliError {
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true);
    if empty {
        return CliError::NoDatabase { dir: dir.to_path_buf() };
    }
    CliError::Input {
        message: format!(
            "{} is not a DriftDB database (it has no CHECKPOINT file); point -d at a directory made \
             by `driftdb init`",
            dir.display()
        ),
        line: None,
    }
}

/// Open the existing database in `dir` (never creating one).
pub fn open(dir: &Path) -> CliResult<Database> {
    let options =
        Options { create_if_missing: false, encryption_key: keys::key()?, ..Options::default() };
    match Database::open_with(dir, options) {
        Ok(db) => Ok(db),
        Err(driftdb_core::Error::NotADatabase { .. }) => Err(no_database(dir)),
        Err(e) => Err(e.into()),
    }
}
