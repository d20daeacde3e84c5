//! Support code of DriftDB's benchmarks: the time-travel history both engines store, building
//! it into DriftDB and SQLite, the timed reads on each side, and the interleaved ("paired")
//! measurement that the Criterion bench `time_travel` and the example `time_travel_report`
//! share.
//!
//! | module | concept |
//! |---|---|
//! | [`history`] | the deterministic history: shape, documents, transactions |
//! | [`fixture`] | building a history into both engines; bytes on disk |
//! | [`engines`] | both engines open on a history; one function per workload and engine |
//! | [`paired`] | contenders run in turn, round after round; medians and ratios |
//! | [`suite`] | the seven workloads of the time-travel issue and their targets |
//! | [`memory`] | resident memory of this process (Linux `/proc/self/status`) |
//! | [`sample`] | the customer documents and patches of the small benchmarks |
//! | [`run`] | where a bench's databases live; whether it is measuring or only testing |

use std::path::{Path, PathBuf};

pub mod engines;
pub mod fixture;
pub mod history;
pub mod memory;
pub mod paired;
pub mod run;
pub mod sample;
pub mod suite;

/// What can go wrong while building or reading a benchmark history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// DriftDB refused or failed.
    #[error("DriftDB: {0}")]
    DriftDb(#[from] driftdb_core::Error),
    /// SQLite refused or failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The history or its directory is not what the benchmark expects.
    #[error("benchmark setup: {reason}")]
    Setup {
        /// What is wrong.
        reason: String,
    },
    /// The two engines gave different answers to the same read: the comparison would be void.
    #[error("DriftDB and SQLite disagree: {what}")]
    Mismatch {
        /// Which read, and how.
        what: String,
    },
}

impl Error {
    fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_owned(), source }
    }

    fn setup(reason: impl Into<String>) -> Error {
        Error::Setup { reason: reason.into() }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
