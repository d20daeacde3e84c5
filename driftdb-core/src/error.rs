//! The one error type of `driftdb-core`.
//!
//! Variants are grouped by what the caller can do about them:
//! - **the request was refused** (bad input, a constraint): fix the input; nothing was written;
//! - **the environment is in the way** (lock held, I/O failure, engine poisoned): act on the
//!   environment (close the other process, free disk space, reopen the database);
//! - **the data on disk is damaged or foreign**: run `driftdb verify`, restore from a backup.

use std::path::PathBuf;

use crate::value::Key;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- The request was refused; nothing was written. -------------------------------------
    /// The table does not exist at the seq the operation ran at.
    #[error("table `{table}` does not exist")]
    NoSuchTable {
        /// The table name as given.
        table: String,
    },
    /// `create_table` of a name that is live.
    #[error("table `{table}` already exists")]
    TableExists {
        /// The table name as given.
        table: String,
    },
    /// INSERT of a primary key that is live (not soft-deleted).
    #[error(
        "duplicate key: table `{table}` already has a live row with primary key {key} \
         (PATCH it, or SOFT DELETE it first to start a new incarnation)"
    )]
    DuplicateKey {
        /// The table.
        table: String,
        /// The primary key that is already live.
        key: Key,
    },
    /// PATCH or SOFT DELETE of a key that has no live row.
    #[error("missing key: table `{table}` has no live row with primary key {key}")]
    KeyNotFound {
        /// The table.
        table: String,
        /// The primary key that was not found.
        key: Key,
    },
    /// A document, patch, key or name that the engine cannot store.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong, written for the user.
        reason: String,
    },
    /// A value, document, key or transaction over a size limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large ("document", "key", "transaction", ...).
        what: &'static str,
        /// Its encoded size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A read `AS OF` a seq that has not been committed yet.
    #[error("seq {requested} is in the future: the last committed seq is {latest}")]
    FutureSeq {
        /// The seq asked for.
        requested: u64,
        /// The last committed seq.
        latest: u64,
    },
    /// A document could not be converted to or from the caller's Rust type.
    #[error("cannot convert between a document and a Rust value: {reason}")]
    Conversion {
        /// The serde message.
        reason: String,
    },

    // ---- The environment is in the way. ----------------------------------------------------
    /// Another process (or another handle in this one) holds the database's lock.
    #[error(
        "database {path} is in use: another process holds its lock file {lock}; \
         close that process first"
    )]
    Locked {
        /// The database directory.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// An I/O operation failed. On the write path this also poisons the engine.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A write or fsync failed earlier; the engine refuses writes until it is reopened,
    /// because it can no longer tell what reached the disk.
    #[error(
        "the database refuses writes after an earlier I/O failure ({cause}); \
         reopen it to recover from what reached the disk"
    )]
    Poisoned {
        /// The failure that poisoned the engine.
        cause: String,
    },

    // ---- The data on disk is damaged or not ours. ------------------------------------------
    /// A checksum, length or structure check failed inside a file.
    #[error("corrupt data in {file} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first damaged frame (or header).
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A file written by a newer (or unknown) format version.
    #[error("{file} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found in its header.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The directory exists but is not a DriftDB database.
    #[error(
        "{path} is not a DriftDB database (it has no CHECKPOINT file); \
         create one with `driftdb init` or open it with `create_if_missing`"
    )]
    NotADatabase {
        /// The directory.
        path: PathBuf,
    },
}

impl Error {
    /// True when the request itself was refused and retrying it unchanged will fail again.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::NoSuchTable { .. }
                | Error::TableExists { .. }
                | Error::DuplicateKey { .. }
                | Error::KeyNotFound { .. }
                | Error::InvalidInput { .. }
                | Error::TooLarge { .. }
                | Error::FutureSeq { .. }
                | Error::Conversion { .. }
        )
    }

    /// True when the data on disk is damaged: reopening will not help.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::UnsupportedVersion { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt { file: file.into(), offset, reason: reason.into() }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidInput { reason: reason.into() }
    }
}
