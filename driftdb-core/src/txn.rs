//! Transactions: events buffered in memory, validated as they are added (against the state the
//! transaction reads plus its own writes) and again at commit (against the latest state, after
//! the conflict checks of its isolation level: see [`crate::isolation`]), then committed
//! atomically with one seq.
//!
//! Reads take the state's shared lock for the duration of one read and never wait for a
//! transaction; what they see is chosen by the [`IsolationLevel`]. SERIALIZABLE reads are
//! recorded in a [`ReadSet`] for the commit to validate.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::commit::TxnCommit;
use crate::db::{CommitInfo, Database, Row};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::isolation::{IsolationLevel, ReadSet};
use crate::schema::{TableSchema, validate_table_name};
use crate::state::Overlay;
use crate::storage::frame::EventType;
use crate::value::{Key, Value, to_value};

/// A transaction. Dropping it without [`commit`](Transaction::commit) rolls it back.
///
/// ```
/// use driftdb_core::{Database, Key, TableSchema};
/// let dir = tempfile::tempdir().unwrap();
/// let db = Database::open(dir.path()).unwrap();
/// db.create_table("orders", TableSchema::new("id")).unwrap();
/// let mut tx = db.begin();
/// tx.insert("orders", serde_json::json!({"id": 1, "status": "new"}).into()).unwrap();
/// // The transaction sees its own writes; nobody else does until commit.
/// assert!(tx.get("orders", &Key::Int(1)).unwrap().is_some());
/// assert!(db.get("orders", &Key::Int(1)).unwrap().is_none());
/// tx.rollback();
/// assert!(db.get("orders", &Key::Int(1)).unwrap().is_none());
/// ```
pub struct Transaction<'db> {
    db: &'db Database,
    /// Own writes: every event, with the change it makes as validated when it was added; its
    /// `base_seq` is the seq the last event was validated against (the start seq, or under
    /// READ COMMITTED the latest commit when the event was added).
    overlay: Overlay,
    /// The seq `changes` were all validated against, if they all were against the same one.
    checked_at: Option<u64>,
    /// The last durable seq when the transaction began.
    start_seq: u64,
    isolation: IsolationLevel,
    /// What the transaction read, for the commit to validate (SERIALIZABLE only). Behind a
    /// mutex because reads take `&self`.
    reads: Option<Mutex<ReadSet>>,
    /// The table name of the last event, shared by the events that follow on the same table.
    last_table: Option<Arc<str>>,
    /// Whether the transaction still counts in `Database::open_txns` (until it is handed to
    /// the commit, which stops counting it once it is queued).
    counted: bool,
    /// Where each event is encoded before it gets its own exact-size copy.
    scratch: Vec<u8>,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("read_seq", &self.start_seq)
            .field("isolation", &self.isolation)
            .field("events", &self.len())
            .finish()
    }
}

impl<'db> Transaction<'db> {
    pub(crate) fn new(db: &'db Database, start_seq: u64, isolation: IsolationLevel) -> Self {
        db.open_txns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reads = (isolation == IsolationLevel::Serializable).then(Mutex::default);
        Transaction {
            db,
            overlay: Overlay::new(start_seq),
            checked_at: None,
            start_seq,
            isolation,
            reads,
            last_table: None,
            counted: true,
            scratch: Vec::new(),
        }
    }

    /// The seq this transaction began at: the last commit it can see at its start.
    /// REPEATABLE READ and SERIALIZABLE read at this seq (plus their own writes) throughout;
    /// READ COMMITTED reads the latest commit at each read.
    pub fn read_seq(&self) -> u64 {
        self.start_seq
    }

    /// [`Snapshot::check_all_retained`](crate::Snapshot::check_all_retained) at the seq reads see.
    pub fn check_all_retained(&self) -> Result<()> {
        self.db.read(crate::AsOf::Seq(self.view_seq()))?.check_all_retained()
    }

    /// The seq reads see now.
    fn view_seq(&self) -> u64 {
        match self.isolation {
            IsolationLevel::ReadCommitted => self.db.last_seq(),
            IsolationLevel::RepeatableRead | IsolationLevel::Serializable => self.start_seq,
        }
    }

    /// Record a read for SERIALIZABLE validation.
    fn record(&self, f: impl FnOnce(&mut ReadSet)) {
        if let Some(reads) = &self.reads {
            f(&mut reads.lock());
        }
    }

    /// The isolation level the transaction was begun with.
    pub fn isolation(&self) -> IsolationLevel {
        self.isolation
    }

    /// Number of events buffered so far.
    pub fn len(&self) -> usize {
        self.overlay.writes.events.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.overlay.writes.events.is_empty()
    }

    fn push(&mut self, table: &str, kind: EventType, key: Option<Key>, body: Value) -> Result<()> {
        let body = Arc::new(body);
        self.push_event(table, kind, key, &body, Some(body.clone()))
    }

    /// Check the event of `body` and add it to the transaction, which keeps `keep` decoded
    /// (`None`: only the encoded event; an INSERT's document is read back from it).
    fn push_event(
        &mut self,
        table: &str,
        kind: EventType,
        key: Option<Key>,
        body: &Value,
        keep: Option<Arc<Value>>,
    ) -> Result<()> {
        self.db.check_poison()?;
        let name = match &self.last_table {
            Some(name) if &**name == table => name.clone(),
            _ => Arc::from(table),
        };
        self.last_table = Some(name.clone());
        let mut event = Event::encode_with(&mut self.scratch, name, kind, key, body)?;
        event.body = keep;
        self.overlay.base_seq = self.view_seq();
        let first = self.is_empty();
        self.db.state.read().check_with(&mut self.overlay, event, Some(body))?;
        let at = self.overlay.base_seq;
        self.checked_at = if first { Some(at) } else { self.checked_at.filter(|&s| s == at) };
        Ok(())
    }

    /// Create a table.
    pub fn create_table(&mut self, name: &str, schema: TableSchema) -> Result<()> {
        validate_table_name(name)?;
        schema.validate()?;
        let body = to_value(&schema)?;
        self.push(name, EventType::CreateTable, None, body)
    }

    /// Replace a table's schema (the primary key field cannot change).
    pub fn alter_table(&mut self, name: &str, schema: TableSchema) -> Result<()> {
        schema.validate()?;
        let body = to_value(&schema)?;
        self.push(name, EventType::AlterTable, None, body)
    }

    /// Drop a table. Its history stays readable `AS OF` earlier seqs.
    pub fn drop_table(&mut self, name: &str) -> Result<()> {
        self.push(name, EventType::DropTable, None, Value::Null)
    }

    /// Insert a document (a map holding the table's primary key field). Fails with
    /// [`Error::DuplicateKey`] when the key is live. Returns the key.
    pub fn insert(&mut self, table: &str, doc: Value) -> Result<Key> {
        // The transaction keeps the document encoded; the decoded one is freed right after
        // its checks, while it is still in cache.
        self.insert_ref(table, &doc)
    }

    /// [`Transaction::insert`] of a document the caller keeps: the transaction encodes it
    /// and holds nothing of it decoded.
    ///
    /// ```
    /// # use driftdb_core::{Database, TableSchema, Value};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path())?;
    /// db.create_table("t", TableSchema::new("id"))?;
    /// let docs: Vec<Value> = (0..3).map(|i| serde_json::json!({"id": i}).into()).collect();
    /// let mut tx = db.begin();
    /// for doc in &docs {
    ///     tx.insert_ref("t", doc)?;
    /// }
    /// tx.commit()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert_ref(&mut self, table: &str, doc: &Value) -> Result<Key> {
        let seq = self.view_seq();
        let schema = self.db.state.read().overlay_schema_of(&self.overlay, seq, table)?;
        let key = doc.get(&schema.primary_key).and_then(Key::from_value).ok_or_else(|| {
            Error::invalid(format!(
                "the document needs its primary key field `{}` as a string or an integer",
                schema.primary_key
            ))
        })?;
        self.push_event(table, EventType::Insert, Some(key.clone()), doc, None)?;
        Ok(key)
    }

    /// Insert any serializable value as a document.
    pub fn insert_as<T: Serialize + ?Sized>(&mut self, table: &str, doc: &T) -> Result<Key> {
        self.insert(table, to_value(doc)?)
    }

    /// Merge `patch` into the live document of `key` (JSON Merge Patch: a null field is
    /// removed). Fails with [`Error::KeyNotFound`] when the key is not live.
    pub fn patch(&mut self, table: &str, key: impl Into<Key>, patch: Value) -> Result<()> {
        self.push(table, EventType::Patch, Some(key.into()), patch)
    }

    /// Make `key` invisible from now on; its history stays. Fails with
    /// [`Error::KeyNotFound`] when the key is not live.
    pub fn soft_delete(&mut self, table: &str, key: impl Into<Key>) -> Result<()> {
        self.push(table, EventType::SoftDelete, Some(key.into()), Value::Null)
    }

    /// The document of `key` as this transaction sees it (its own writes included).
    pub fn get(&self, table: &str, key: &Key) -> Result<Option<Value>> {
        self.record(|r| r.key(table, key));
        let seq = self.view_seq();
        let doc = {
            let state = self.db.state.read();
            state.overlay_schema_of(&self.overlay, seq, table)?;
            state.overlay_doc(&self.overlay, seq, table, key)?
        };
        Ok(doc.map(Arc::unwrap_or_clone))
    }

    /// Every live row of `table` for which `filter` returns true, as this transaction sees
    /// it (its own writes included), in primary-key order. Under SERIALIZABLE the scan counts
    /// as a read of the whole table (any later change to any row of it conflicts), since the
    /// filter cannot be re-evaluated at commit.
    pub fn scan(&self, table: &str, mut filter: impl FnMut(&Value) -> bool) -> Result<Vec<Row>> {
        self.record(|r| r.scan(table));
        let seq = self.view_seq();
        // Collect shared pointers under the lock; filter and clone documents after it.
        let rows = self.db.state.read().overlay_rows(&self.overlay, seq, table)?;
        Ok(rows
            .into_iter()
            .filter(|(_, doc)| filter(doc))
            .map(|(key, doc)| Row { key, doc: Arc::unwrap_or_clone(doc) })
            .collect())
    }

    /// The schema of `table` as this transaction sees it.
    pub fn schema(&self, table: &str) -> Result<TableSchema> {
        self.record(|r| r.schema(table));
        let seq = self.view_seq();
        let schema = self.db.state.read().overlay_schema_of(&self.overlay, seq, table)?;
        Ok((*schema).clone())
    }

    /// Names of the tables that exist as this transaction sees them.
    pub fn tables(&self) -> Vec<String> {
        self.record(|r| r.table_list());
        self.db.state.read().overlay_tables(&self.overlay, self.view_seq())
    }

    /// Commit: returns once the transaction is durable, with its seq and time.
    ///
    /// Fails with [`Error::Conflict`] (retryable) when a transaction that committed after this
    /// one began changed what its [`IsolationLevel`] protects; a transaction that wrote
    /// nothing never fails. On any error nothing of the transaction is applied.
    pub fn commit(mut self) -> Result<CommitInfo> {
        // Hold every decoded document of the transaction until the commit is done, so that
        // none is freed under the state's write lock while the commit installs its versions
        // (the state keeps them encoded): they are freed after the commit, with the
        // transaction. (An INSERT's was let go when it was checked: see `push`.)
        let writes = &mut self.overlay.writes;
        let documents: Vec<Arc<Value>> = writes
            .events
            .iter()
            .filter_map(|e| e.body.clone())
            .chain(writes.changes.iter().filter_map(|c| c.doc.clone()))
            .collect();
        let commit = TxnCommit {
            events: std::mem::take(&mut writes.events),
            checked: std::mem::take(&mut writes.changes),
            checked_at: self.checked_at,
            start_seq: self.start_seq,
            isolation: self.isolation,
            reads: self.reads.take().map(Mutex::into_inner),
        };
        self.counted = false;
        let result = self.db.commit_events(commit);
        drop(documents);
        result
    }

    /// Discard every buffered event.
    pub fn rollback(self) {}
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.db.open_txns.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
