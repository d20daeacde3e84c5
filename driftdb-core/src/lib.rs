//! # driftdb-core
//!
//! DriftDB's storage engine: an append-only document store where every change is an immutable
//! event and any past state can be read back.
//!
//! - A [`Database`] is a directory of tables. A table holds documents ([`Value`] maps) keyed by
//!   a primary-key field ([`Key`]: an integer or a string).
//! - Changes are INSERT (a full document), PATCH (a JSON merge patch) and SOFT_DELETE, made in a
//!   [`Transaction`] and committed atomically across tables with one database-wide `seq`.
//! - A commit returns only after its write-ahead-log record is fsynced; concurrent commits share
//!   one fsync.
//! - Transactions run at an [`IsolationLevel`]: READ COMMITTED, REPEATABLE READ (the default:
//!   snapshot isolation, first committer wins) or SERIALIZABLE. Readers never block; a
//!   transaction that loses a race fails at commit with the retryable [`Error::Conflict`].
//! - Reads see one fixed seq: the latest ([`AsOf::Now`]), a past seq ([`AsOf::Seq`]) or the last
//!   commit at or before a time ([`AsOf::UnixMs`]); [`Snapshot::history`] lists every event
//!   of a key.
//! - [`Database::compact_table`] rewrites a table's segments into fewer, zstd-compressed ones
//!   and keeps every event, so every read answers the same afterwards.
//! - [`Database::backup_to`] writes a consistent backup while commits go on;
//!   [`backup::verify`] checks one and [`backup::restore`] restores it, whole or up to a seq.
//! - [`Database::snapshot_table`] writes a table's rows at the last seq (full or
//!   incremental), also automatically every K events ([`Options::snapshot_every_events`],
//!   [`TableSchema::snapshot_every`]); [`Database::scan_stream`] streams a table `AS OF` a
//!   seq from the nearest snapshot plus the events after it.
//! - A table may keep a retention window (`TableSchema::retention_ms`): a compaction then folds
//!   its history older than the window into a base at the horizon, and reads before the
//!   horizon fail with [`Error::BeforeRetention`] naming the oldest readable seq.
//! - With [`Options::encryption_key`] a database is encrypted at rest: every file is sealed
//!   with AES-256-GCM ([`crypto`]); [`crypto::rekey()`] rotates the key.
//!
//! It is not (yet): a network server or memory-bounded (the state holds every version; only
//! [`Database::scan_stream`] reads in bounded memory); those come in later releases.
//!
//! ```
//! use driftdb_core::{AsOf, Database, Key, TableSchema};
//! # fn main() -> driftdb_core::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let db = Database::open(dir.path())?;
//! db.create_table("users", TableSchema::new("id"))?;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct User { id: String, email: String }
//!
//! let mut tx = db.begin();
//! tx.insert_as("users", &User { id: "u1".into(), email: "a@example.com".into() })?;
//! let created = tx.commit()?;
//!
//! let mut tx = db.begin();
//! tx.soft_delete("users", "u1")?;
//! tx.commit()?;
//!
//! assert_eq!(db.get("users", &Key::from("u1"))?, None);
//! let then = db.read(AsOf::Seq(created.seq))?;
//! let user: User = driftdb_core::from_value(&then.get("users", &"u1".into())?.unwrap())?;
//! assert_eq!(user.email, "a@example.com");
//! assert_eq!(db.read(AsOf::Now)?.history("users", &"u1".into())?.len(), 2);
//! # Ok(()) }
//! ```

pub mod backup;
mod bulk;
mod chain;
mod commit;
mod compaction;
pub mod crypto;
mod db;
mod error;
mod event;
mod hooks;
mod index;
mod index_files;
mod isolation;
pub mod limits;
mod msgpack;
mod msgpack_merge;
mod msgpack_read;
mod recovery;
mod replay;
mod retention;
mod schema;
mod snapshot;
mod state;
pub mod storage;
mod txn;
mod unique;
mod value;
mod writes;

pub use backup::{BackupReport, RestoreReport, VerifyReport};
pub use compaction::CompactionReport;
pub use crypto::EncryptionKey;
pub use db::{
    AsOf, CommitInfo, Database, EncodedRow, HistoryEntry, Options, Row, SharedRow, Snapshot,
    TableStats,
};
pub use error::{ConflictKind, Error, Result, UniqueViolation};
pub use event::ChangeKind;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use hooks::{CommitHook, CommitPoint};
pub use isolation::IsolationLevel;
pub use retention::{format_retention, parse_retention};
pub use schema::{ColumnDef, TableSchema};
pub use snapshot::{RowStream, SnapshotInfo};
pub use storage::snapshot::SnapshotKind;
pub use txn::Transaction;
pub use value::{Key, Map, Text, Value, from_value, to_value};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn database_is_send_and_sync() {
        assert_send_sync::<crate::Database>();
        // A transaction can be handed to another thread (scoped: it borrows the database).
        assert_send_sync::<crate::Transaction<'static>>();
    }
}
