//! The one error type of `driftdb-core`.
//!
//! Variants are grouped by what the caller can do about them:
//! - **the request was refused** (bad input, a constraint): fix the input; nothing was written;
//! - **the transaction lost a race** with a concurrent one ([`Error::Conflict`]): nothing was
//!   written; run the whole transaction again ([`Error::is_retryable`]);
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
    /// A write (INSERT, PATCH, UPSERT) would give two live rows the same value at a unique
    /// field, or a unique index was declared on a field where two live rows already hold the
    /// same value. Retrying fails again until the other row changes its value or is deleted.
    /// (Boxed: the details would make every `Result` of the crate larger.)
    #[error("{0}")]
    UniqueViolation(Box<UniqueViolation>),
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
    /// A read of `table` at a seq whose history a retention policy has folded away (see
    /// `retention.rs`): the table's history starts with a base at `oldest`.
    #[error(
        "history of `{table}` before seq {oldest} is no longer retained (retention \
         '{retention}'); the oldest readable seq is {oldest} (seq {seq} was asked for)"
    )]
    BeforeRetention {
        /// The table.
        table: String,
        /// The seq asked for.
        seq: u64,
        /// The table's horizon: the oldest seq it can be read at.
        oldest: u64,
        /// The table's current retention window, as text (`90 days`; `none` once removed).
        retention: String,
    },
    /// A document could not be converted to or from the caller's Rust type.
    #[error("cannot convert between a document and a Rust value: {reason}")]
    Conversion {
        /// The serde message.
        reason: String,
    },

    // ---- The transaction lost a race; nothing was written: run it again. -------------------
    /// A transaction that committed after this one's snapshot changed something this one
    /// wrote or (under [`IsolationLevel::Serializable`](crate::IsolationLevel)) read, so
    /// committing it would break its isolation level. Nothing of the transaction was applied.
    ///
    /// Retry: begin a new transaction and run the whole of it again (its reads included: the
    /// decisions it made may depend on what changed). [`Error::is_retryable`] is true.
    #[error(
        "transaction conflict: {} was changed at seq {seq} by a transaction that committed \
         after this one began at seq {read_seq}; nothing was applied, retry the transaction",
        conflict_subject(*kind, table, key.as_ref())
    )]
    Conflict {
        /// What of this transaction the concurrent change touched.
        kind: ConflictKind,
        /// The table involved.
        table: String,
        /// The key involved; `None` when it is the table (its schema, or a scan of it).
        key: Option<Key>,
        /// The seq this transaction began at ([`Transaction::read_seq`](crate::Transaction)).
        read_seq: u64,
        /// The seq of the concurrent change (the last one, when there were several).
        seq: u64,
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

    // ---- The key is missing or wrong: give the right one. ---------------------------------
    /// The database is encrypted and no key was given (`Options::encryption_key`,
    /// `DRIFTDB_KEY`, `--key-file`).
    #[error(
        "database {path} is encrypted: give its key (DRIFTDB_KEY=<64 hex characters> or \
         --key-file FILE)"
    )]
    KeyRequired {
        /// The database directory.
        path: PathBuf,
    },
    /// The key given is not the database's key (its `ENCRYPTION` key check fails). Nothing
    /// was read or written.
    #[error("wrong key for database {path}: the key check in its ENCRYPTION file fails")]
    WrongKey {
        /// The database directory.
        path: PathBuf,
    },
    /// A key was given for a database that is not encrypted.
    #[error("database {path} is not encrypted: open it without a key")]
    NotEncrypted {
        /// The database directory.
        path: PathBuf,
    },
    /// A key that is not 64 hex characters, or an unreadable `ENCRYPTION` file.
    #[error("bad key: {reason}")]
    BadKey {
        /// What is wrong.
        reason: String,
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

/// The details of an [`Error::UniqueViolation`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unique index on {table}.{field}: value {value} is already held by key {existing_key}, \
     so key {key} cannot hold it"
)]
#[non_exhaustive]
pub struct UniqueViolation {
    /// The table.
    pub table: String,
    /// The unique field path (dotted).
    pub field: String,
    /// The value, as JSON text (as the refused document holds it: `1.0` collides with `1`).
    pub value: String,
    /// The key whose write (or, when declaring the index, whose row) was refused.
    pub key: Key,
    /// The key that already holds the value.
    pub existing_key: Key,
}

/// What part of a transaction a concurrent commit changed (see [`Error::Conflict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictKind {
    /// A row this transaction writes (INSERT, PATCH, SOFT_DELETE), or the schema of a table it
    /// writes to or alters: first committer wins (REPEATABLE READ, SERIALIZABLE). Under READ
    /// COMMITTED: a write that no longer applies to the latest state (its key was inserted or
    /// deleted, or its table changed, by a commit that came first).
    Write,
    /// A row this transaction read with `get` (SERIALIZABLE), or the schema of a table it read.
    Read,
    /// A table this transaction scanned (SERIALIZABLE): any change to any of its rows counts.
    Scan,
    /// The list of tables, which this transaction read (SERIALIZABLE).
    TableList,
}

fn conflict_subject(kind: ConflictKind, table: &str, key: Option<&Key>) -> String {
    match (kind, key) {
        (ConflictKind::Write, Some(key)) => {
            format!("the row {key} of table `{table}`, which this transaction writes,")
        }
        (ConflictKind::Write, None) => {
            format!("table `{table}`, whose schema or rows this transaction changes,")
        }
        (ConflictKind::Read, Some(key)) => {
            format!("the row {key} of table `{table}`, which this transaction read,")
        }
        (ConflictKind::Read, None) => {
            format!("the schema of table `{table}`, which this transaction read,")
        }
        (ConflictKind::Scan, _) => format!("table `{table}`, which this transaction scanned,"),
        (ConflictKind::TableList, _) => {
            format!("the list of tables (table `{table}`), which this transaction read,")
        }
    }
}

impl Error {
    /// True when the transaction failed only because a concurrent one committed first
    /// ([`Error::Conflict`]): nothing was applied, and running the whole transaction again
    /// may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// True when the request itself was refused and retrying it unchanged will fail again.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::NoSuchTable { .. }
                | Error::TableExists { .. }
                | Error::DuplicateKey { .. }
                | Error::KeyNotFound { .. }
                | Error::UniqueViolation(_)
                | Error::InvalidInput { .. }
                | Error::TooLarge { .. }
                | Error::FutureSeq { .. }
                | Error::BeforeRetention { .. }
                | Error::Conversion { .. }
        )
    }

    /// True when the key is missing, wrong, malformed, or given for a plaintext database.
    pub fn is_key_error(&self) -> bool {
        matches!(
            self,
            Error::KeyRequired { .. }
                | Error::WrongKey { .. }
                | Error::NotEncrypted { .. }
                | Error::BadKey { .. }
        )
    }

    /// True when the data on disk is damaged: reopening will not help.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::UnsupportedVersion { .. })
    }

    /// An I/O error on `path`; a sealed record that failed its checks
    /// ([`crate::crypto::sealed::SealError`]) becomes [`Error::Corrupt`] at its offset.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if let Some(seal) =
            source.get_ref().and_then(|e| e.downcast_ref::<crate::crypto::sealed::SealError>())
        {
            return Error::Corrupt { file: path, offset: seal.offset, reason: seal.reason.clone() };
        }
        Error::Io { path, source }
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
