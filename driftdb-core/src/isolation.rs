//! Isolation levels and the conflict checks a commit runs before it is given a seq.
//!
//! Every transaction has a *start seq*: the last durable commit when it began. What it reads
//! and what it must check at commit depends on its [`IsolationLevel`]:
//!
//! | level | reads see | commit fails with [`Error::Conflict`] when, since the start seq |
//! |---|---|---|
//! | READ COMMITTED | the latest commit, at each read | a write no longer applies (key inserted or deleted, table changed) |
//! | REPEATABLE READ | the start seq | any key it writes, or the schema of a table it writes, changed |
//! | SERIALIZABLE | the start seq | the same, or anything it read changed (keys, scanned tables, schemas, the table list) |
//!
//! The checks ([`validate`]) run in `Database::commit_events` under the writer lock, against
//! the state *including commits that are installed but not yet durable*: those have smaller
//! seqs and are ordered before this transaction. Because the writer lock also assigns the
//! next seq, "validate, then take seq N" is atomic: no commit can slip in between. A loser
//! whose winner is installed but not durable yet waits for it before reporting the conflict
//! (`Database::settle_conflict`), so that a retry sees the winner.
//!
//! Unique fields are not a conflict check: a concurrent commit can take a unique value under a
//! key this transaction never touched. A transaction writing to a table with unique fields is
//! therefore validated again at commit against the latest state, at every level, and fails
//! with [`Error::UniqueViolation`] (not retryable) when its value was taken (see `unique.rs`).
//!
//! # Why SERIALIZABLE is serializable (backward validation)
//!
//! A SERIALIZABLE transaction T that writes reads at its start seq `s` and commits at seq `c`.
//! Validation checks that nothing T read (a key, a scanned table, a schema, the table list) and
//! nothing T writes was changed by any seq in `s+1..c`. So every read of T returns what it
//! would return at `c - 1`, and T's writes apply to the state at `c - 1`: T behaves exactly as
//! if it ran alone, atomically, at its commit seq. Every writing transaction is therefore
//! equivalent to running serially in seq order. A read-only transaction reads the state at its
//! start seq, which is exactly the result of the serial prefix `1..=s`; it is placed there in
//! the serial order and never needs validation — read-only transactions never fail. (This is
//! why the read-only anomaly of snapshot isolation cannot happen: writers are serialized at
//! their commit point, not at their snapshot.)
//!
//! Scans are predicate reads. The predicate is a Rust closure that cannot be kept until commit,
//! so a scan records its whole table: any change to any row of that table after the start seq
//! fails the commit. That is conservative (a change outside the predicate also conflicts) but
//! covers phantoms, which is what the predicate must protect. READ COMMITTED and REPEATABLE
//! READ record no reads.
//!
//! We chose backward validation over SSI (PostgreSQL's serializable snapshot isolation): with
//! all conflicts checked in one place under the writer lock it needs no per-read bookkeeping
//! shared between transactions, and its correctness argument is the short one above. It
//! aborts more than SSI (SSI lets a transaction whose reads went stale commit when no
//! dangerous cycle follows), which the abort rates in `docs/PERFORMANCE.md` show.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{ConflictKind, Error, Result};
use crate::event::Event;
use crate::state::State;
use crate::value::Key;

/// How much a transaction is isolated from the transactions that commit while it runs.
///
/// The default is [`RepeatableRead`](IsolationLevel::RepeatableRead) (snapshot isolation), as
/// in PostgreSQL's "repeatable read". Whatever the level, a transaction sees its own writes,
/// never sees part of another transaction, never sees an uncommitted write, and its own
/// writes are applied all together or not at all. Reads never wait for writers and writers
/// never wait for readers: a transaction that loses a race fails at commit with
/// [`Error::Conflict`] (see [`Error::is_retryable`]) instead of blocking. A transaction that
/// wrote nothing never fails at commit, at any level.
///
/// ```
/// use driftdb_core::{Database, Error, IsolationLevel, Key, TableSchema};
/// let dir = tempfile::tempdir().unwrap();
/// let db = Database::open(dir.path()).unwrap();
/// db.create_table("t", TableSchema::new("id")).unwrap();
/// let mut setup = db.begin();
/// setup.insert("t", serde_json::json!({"id": 1, "n": 0}).into()).unwrap();
/// setup.commit().unwrap();
///
/// // Two transactions read n and write n + 1 (a lost update, if both committed).
/// let mut a = db.begin_with(IsolationLevel::RepeatableRead);
/// let mut b = db.begin_with(IsolationLevel::RepeatableRead);
/// for tx in [&mut a, &mut b] {
///     let n = tx.get("t", &Key::Int(1)).unwrap().unwrap().get("n").cloned().unwrap();
///     let n = driftdb_core::from_value::<i64>(&n).unwrap();
///     tx.patch("t", 1, serde_json::json!({"n": n + 1}).into()).unwrap();
/// }
/// a.commit().unwrap();
/// // First committer wins: b fails, and nothing of it is applied.
/// let err = b.commit().unwrap_err();
/// assert!(matches!(err, Error::Conflict { .. }) && err.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// Each read (`get`, `scan`, `schema`, `tables`) sees the latest committed state plus the
    /// transaction's own writes, so two reads of one key can differ. Writes are checked
    /// against the latest state when they are added and again at commit, where a PATCH is
    /// merged into the latest committed version of its document (two concurrent PATCHes of
    /// one key both apply, the later on top of the earlier: a lost update is possible, as in
    /// PostgreSQL). No dirty reads, no dirty writes. A write that no longer applies at commit
    /// (its key was inserted or deleted, its table changed, by a commit that came first)
    /// fails the commit with [`Error::Conflict`].
    ReadCommitted,
    /// Snapshot isolation: every read sees the state at the transaction's start (plus its own
    /// writes). First committer wins: the commit fails with [`Error::Conflict`] if a row it
    /// writes, or the schema of a table it writes to, was changed by a transaction that
    /// committed after it began. Write skew (two transactions each reading what the other
    /// writes) remains possible.
    #[default]
    RepeatableRead,
    /// Serializable: as REPEATABLE READ, and the commit also fails with [`Error::Conflict`] if
    /// anything the transaction read was changed after it began — a key read with `get`, any
    /// row of a table read with `scan` (the whole table counts), a table's schema, or the
    /// list of tables. Committed transactions are then equivalent to running one at a time
    /// (writers in commit order; read-only transactions at their start).
    Serializable,
}

/// What a SERIALIZABLE transaction read, checked at commit.
#[derive(Debug, Default)]
pub(crate) struct ReadSet {
    /// Keys read with `get`, by table.
    keys: BTreeMap<String, BTreeSet<Key>>,
    /// Tables whose schema (or existence) was read.
    schemas: BTreeSet<String>,
    /// Tables scanned: any change to any row conflicts.
    scans: BTreeSet<String>,
    /// Whether the list of tables was read.
    table_list: bool,
}

impl ReadSet {
    pub fn key(&mut self, table: &str, key: &Key) {
        self.schema(table);
        match self.keys.get_mut(table) {
            Some(keys) => {
                if !keys.contains(key) {
                    keys.insert(key.clone());
                }
            }
            None => {
                self.keys.insert(table.to_owned(), BTreeSet::from([key.clone()]));
            }
        }
    }

    pub fn schema(&mut self, table: &str) {
        if !self.schemas.contains(table) {
            self.schemas.insert(table.to_owned());
        }
    }

    pub fn scan(&mut self, table: &str) {
        if !self.scans.contains(table) {
            self.scans.insert(table.to_owned());
        }
    }

    pub fn table_list(&mut self) {
        self.table_list = true;
    }
}

fn conflict(kind: ConflictKind, table: &str, key: Option<&Key>, start: u64, seq: u64) -> Error {
    Error::Conflict { kind, table: table.to_owned(), key: key.cloned(), read_seq: start, seq }
}

/// Check a transaction begun at `start` against every commit after it (see the module docs).
/// `reads` is `Some` for SERIALIZABLE. The caller holds the writer lock.
pub(crate) fn validate(
    state: &State,
    start: u64,
    events: &[Event],
    reads: Option<&ReadSet>,
) -> Result<()> {
    // First committer wins: rows written, and the schema of every table written.
    for event in events {
        let table: &str = &event.table;
        let seq = state.schema_changed_seq(table);
        if seq > start {
            return Err(conflict(ConflictKind::Write, table, None, start, seq));
        }
        if let Some(key) = &event.key {
            let seq = state.key_changed_seq(table, key);
            if seq > start {
                return Err(conflict(ConflictKind::Write, table, Some(key), start, seq));
            }
        }
    }
    let Some(reads) = reads else { return Ok(()) };
    for (table, keys) in &reads.keys {
        for key in keys {
            let seq = state.key_changed_seq(table, key);
            if seq > start {
                return Err(conflict(ConflictKind::Read, table, Some(key), start, seq));
            }
        }
    }
    for table in &reads.schemas {
        let seq = state.schema_changed_seq(table);
        if seq > start {
            return Err(conflict(ConflictKind::Read, table, None, start, seq));
        }
    }
    for table in &reads.scans {
        let seq = state.table_changed_seq(table);
        if seq > start {
            return Err(conflict(ConflictKind::Scan, table, None, start, seq));
        }
    }
    if reads.table_list && state.last_ddl.0 > start {
        return Err(conflict(
            ConflictKind::TableList,
            &state.last_ddl.1,
            None,
            start,
            state.last_ddl.0,
        ));
    }
    Ok(())
}

/// A validation error met when a transaction's events are checked again at commit, against
/// the latest state. The events passed the same checks when they were added, so a missing or
/// duplicate key or table now means a concurrent commit got there first: report it as the
/// retryable [`Error::Conflict`]. Other errors pass through.
pub(crate) fn revalidation_error(error: Error, state: &State, start: u64) -> Error {
    let (table, key) = match &error {
        Error::DuplicateKey { table, key } | Error::KeyNotFound { table, key } => {
            (table.clone(), Some(key.clone()))
        }
        Error::NoSuchTable { table } | Error::TableExists { table } => (table.clone(), None),
        _ => return error,
    };
    let seq = match &key {
        Some(key) => state.key_changed_seq(&table, key).max(state.schema_changed_seq(&table)),
        None => state.schema_changed_seq(&table),
    };
    Error::Conflict { kind: ConflictKind::Write, table, key, read_seq: start, seq }
}
