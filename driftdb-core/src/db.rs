//! The database handle and its read API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::commit::{IoState, Queue, WriterState};
use crate::error::{Error, Result};
use crate::event::ChangeKind;
use crate::isolation::IsolationLevel;
use crate::schema::TableSchema;
use crate::state::State;
use crate::storage::fs::{Fs, FsLock, OsFs};
use crate::txn::Transaction;
use crate::value::{Key, Value};

/// How to open a database.
#[derive(Debug, Clone)]
pub struct Options {
    /// Create the database when the directory is missing or empty (default: true).
    pub create_if_missing: bool,
    /// A segment is rotated when an append would make it larger than this (default 64 MiB).
    pub segment_size_bytes_max: u64,
    /// A checkpoint runs when the WAL grows past this (default 64 MiB).
    pub wal_size_bytes_max: u64,
    /// Uncompressed bytes of events per zstd block in the segments a compaction writes
    /// (default 64 KiB; values above 8 MiB are treated as 8 MiB). On documents of ~100 bytes
    /// the ratio hardly changes between 16 KiB and 4 MiB; a smaller block is cheaper to read
    /// on its own.
    pub compaction_block_bytes: usize,
    /// Take a snapshot of a table automatically once this many events were committed to it
    /// since its last snapshot (default 0: off). A table's `snapshot_every` overrides it.
    pub snapshot_every_events: u64,
    /// Every this many snapshots of a table, one is full; the others are incremental
    /// (default 8; 0 or 1: every snapshot is full).
    pub snapshot_full_every: u32,
    /// The file system to use (default: the operating system's).
    pub fs: Arc<dyn Fs>,
    /// The key of an encrypted database (default: none). Opening an encrypted database
    /// needs it; creating a database with it makes an encrypted one (see
    /// [`crate::crypto`]); giving it for a plaintext database is [`Error::NotEncrypted`].
    pub encryption_key: Option<crate::crypto::EncryptionKey>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            segment_size_bytes_max: 64 * 1024 * 1024,
            wal_size_bytes_max: 64 * 1024 * 1024,
            compaction_block_bytes: crate::storage::compressed::BLOCK_RAW_BYTES_TARGET,
            snapshot_every_events: 0,
            snapshot_full_every: 8,
            fs: Arc::new(OsFs),
            encryption_key: None,
        }
    }
}

/// Which moment of history a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The last committed transaction.
    Now,
    /// The state right after the transaction with this seq (0: before the first one).
    Seq(u64),
    /// The state after the last transaction committed at or before this time (Unix ms).
    UnixMs(u64),
}

/// What a commit returns once it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// The seq of the transaction (for an empty transaction: the last seq, unchanged).
    pub seq: u64,
    /// Its commit time in Unix milliseconds.
    pub unix_ms: u64,
    /// How many events it wrote (0 for an empty transaction, which writes nothing).
    pub events: usize,
}

/// A row returned by a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The primary key.
    pub key: Key,
    /// The document.
    pub doc: Value,
}

/// The live rows of a scan, each with what its document is finished from (see
/// [`crate::chain::Chain::pending_at`]).
type PendingRows = Vec<(Key, crate::chain::Pending)>;

/// A row returned by [`Snapshot::scan_encoded`]: its document as msgpack bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRow {
    /// The primary key.
    pub key: Key,
    /// The document encoded as msgpack, as DriftDB writes documents (a map, fields in name
    /// order); [`Value::from_msgpack`] decodes it.
    pub doc: Vec<u8>,
}

/// A row returned by [`Snapshot::scan_shared`]: its document is shared, not copied.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedRow {
    /// The primary key.
    pub key: Key,
    /// The document, behind a reference count (cheap to clone and to pass around).
    pub doc: Arc<Value>,
}

/// Counts of one table at one seq (see [`Snapshot::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Keys with at least one version, live or not.
    pub keys: u64,
    /// Keys live at the seq.
    pub live_rows: u64,
    /// Versions (events) of all keys up to the seq.
    pub versions: u64,
    /// The most versions any one key has.
    pub max_versions_per_key: u64,
}

/// One event in the history of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The seq of the transaction that made it.
    pub seq: u64,
    /// The commit time of that transaction (Unix ms).
    pub unix_ms: u64,
    /// INSERT, PATCH or SOFT_DELETE.
    pub kind: ChangeKind,
    /// What the event carried: the document, the patch, or null.
    pub payload: Value,
    /// The document after the event (`None` after a soft delete).
    pub document: Option<Value>,
}

/// An open database. `Send + Sync`: share it between threads with `Arc` or scoped threads.
///
/// ```
/// use driftdb_core::{AsOf, Database, Key, TableSchema, Value};
/// let dir = tempfile::tempdir().unwrap();
/// let db = Database::open(dir.path()).unwrap();
/// db.create_table("users", TableSchema::new("id")).unwrap();
///
/// let mut tx = db.begin();
/// tx.insert("users", serde_json::json!({"id": "u1", "plan": "free"}).into()).unwrap();
/// let first = tx.commit().unwrap();
///
/// let mut tx = db.begin();
/// tx.patch("users", "u1", serde_json::json!({"plan": "pro"}).into()).unwrap();
/// tx.commit().unwrap();
///
/// let now = db.get("users", &Key::from("u1")).unwrap().unwrap();
/// assert_eq!(now.get("plan"), Some(&Value::String("pro".into())));
/// let then = db.read(AsOf::Seq(first.seq)).unwrap().get("users", &"u1".into()).unwrap().unwrap();
/// assert_eq!(then.get("plan"), Some(&Value::String("free".into())));
/// ```
#[derive(Debug)]
pub struct Database {
    pub(crate) root: PathBuf,
    pub(crate) fs: Arc<dyn Fs>,
    /// The sealing file system of an encrypted database (also in `fs`).
    pub(crate) encryption: Option<crate::crypto::EncryptedFs>,
    pub(crate) options: Options,
    pub(crate) state: RwLock<State>,
    /// The last seq whose transaction is durable; readers see nothing after it.
    pub(crate) visible_seq: AtomicU64,
    pub(crate) writer: Mutex<WriterState>,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) io: Mutex<IoState>,
    /// Held for the whole of a compaction, so that compactions run one at a time.
    pub(crate) compaction: Mutex<()>,
    /// Snapshot bookkeeping: event counters, the one-at-a-time lock, errors (`snapshot/`).
    pub(crate) snapshots: crate::snapshot::Snapshots,
    pub(crate) closed: std::sync::atomic::AtomicBool,
    /// Set once `queue.poisoned` is set, so the hot path can check without the queue lock.
    pub(crate) poisoned: std::sync::atomic::AtomicBool,
    /// Transactions begun and not yet queued for commit (nor dropped): the group-commit
    /// leader waits briefly while there are any (`commit.rs`).
    pub(crate) open_txns: std::sync::atomic::AtomicUsize,
    /// Test hooks (feature `test-hooks`; inert without it).
    pub(crate) hooks: crate::hooks::Hooks,
    /// The index files known to be current, and notes on the ones the open did not use.
    pub(crate) index_files: Mutex<crate::index_files::IndexFiles>,
    pub(crate) _lock: Box<dyn FsLock>,
}

/// A consistent view of the database at one seq. Every read through it sees exactly the
/// transactions up to that seq, however many commit meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'db> {
    db: &'db Database,
    seq: u64,
}

impl Database {
    /// Open (or create) the database in directory `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Self::open_with(path, Options::default())
    }

    /// Open (or create) the database in directory `path`.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Database> {
        crate::recovery::open(path.as_ref(), options)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Whether the database is encrypted at rest (see [`crate::crypto`]).
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// Write `data` as the file `rel` (relative to the database directory; its directory must
    /// exist) atomically and durably: temporary file, fsync, rename, fsync of the directory.
    /// In an encrypted database the file is sealed like every other. For files that tools
    /// above the engine keep beside the data (`ANALYZE` statistics).
    pub fn write_file(&self, rel: &Path, data: &[u8]) -> Result<()> {
        let path = self.root.join(rel);
        crate::storage::fs::write_atomic(self.fs.as_ref(), &path, data)
            .map_err(|e| Error::io(&path, e))
    }

    /// The content of the file `rel` written by [`Database::write_file`] (opened in an
    /// encrypted database); `None` when it does not exist.
    pub fn read_file(&self, rel: &Path) -> Result<Option<Vec<u8>>> {
        let path = self.root.join(rel);
        if !self.fs.exists(&path) {
            return Ok(None);
        }
        self.fs.read(&path).map(Some).map_err(|e| Error::io(&path, e))
    }

    /// The seq of the last committed (durable) transaction.
    pub fn last_seq(&self) -> u64 {
        self.visible_seq.load(Ordering::Acquire)
    }

    /// The seq a read `as_of` sees. A seq beyond the last commit is [`Error::FutureSeq`].
    pub fn resolve(&self, as_of: AsOf) -> Result<u64> {
        let latest = self.last_seq();
        match as_of {
            AsOf::Now => Ok(latest),
            AsOf::Seq(seq) if seq > latest => Err(Error::FutureSeq { requested: seq, latest }),
            AsOf::Seq(seq) => Ok(seq),
            AsOf::UnixMs(ms) => Ok(self.state.read().seq_at_time(ms).min(latest)),
        }
    }

    /// A consistent view at `as_of`.
    pub fn read(&self, as_of: AsOf) -> Result<Snapshot<'_>> {
        Ok(Snapshot { db: self, seq: self.resolve(as_of)? })
    }

    /// Start a transaction at the default isolation level,
    /// [`IsolationLevel::RepeatableRead`]: it reads the last committed state as of now.
    pub fn begin(&self) -> Transaction<'_> {
        self.begin_with(IsolationLevel::default())
    }

    /// Start a transaction at the given isolation level. Never blocks: a transaction costs
    /// nothing until it commits, and many can be open at once, on any threads.
    pub fn begin_with(&self, isolation: IsolationLevel) -> Transaction<'_> {
        Transaction::new(self, self.last_seq(), isolation)
    }

    /// The current document of `key`, if live.
    pub fn get(&self, table: &str, key: &Key) -> Result<Option<Value>> {
        self.read(AsOf::Now)?.get(table, key)
    }

    /// Names of the tables that exist now.
    pub fn tables(&self) -> Vec<String> {
        self.read(AsOf::Now).map(|s| s.tables()).unwrap_or_default()
    }

    /// Create a table in a transaction of its own.
    pub fn create_table(&self, name: &str, schema: TableSchema) -> Result<CommitInfo> {
        let mut tx = self.begin();
        tx.create_table(name, schema)?;
        tx.commit()
    }

    /// Drop a table in a transaction of its own. Its history stays readable `AS OF` earlier seqs.
    pub fn drop_table(&self, name: &str) -> Result<CommitInfo> {
        let mut tx = self.begin();
        tx.drop_table(name)?;
        tx.commit()
    }

    /// The commit time of `seq` (Unix ms), if committed.
    pub fn commit_time(&self, seq: u64) -> Option<u64> {
        if seq > self.last_seq() {
            return None;
        }
        self.state.read().commit_time(seq)
    }

    /// Checkpoint and release the database, reporting any error of the final checkpoint. Then
    /// write the index files (`tables/<t>/indexes/*.idx`) of the tables that changed since
    /// theirs were written, so the next open loads the indexes instead of rebuilding them: an
    /// error there is reported too, but every commit is durable by then, nothing is poisoned,
    /// and the next open rebuilds what the file would have held.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Errors are reported by `close`; here the WAL keeps everything a failed checkpoint
        // would have written, so nothing acknowledged is lost either way.
        let _ = self.shutdown();
    }
}

impl<'db> Snapshot<'db> {
    /// The seq this view reads at.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The commit time of the view's seq (Unix ms; 0 before the first commit).
    pub fn unix_ms(&self) -> u64 {
        self.db.state.read().commit_time(self.seq).unwrap_or(0)
    }

    /// The document of `key`, if live at this seq.
    pub fn get(&self, table: &str, key: &Key) -> Result<Option<Value>> {
        let doc = {
            let state = self.db.state.read();
            state.table(table, self.seq)?.doc_at(key, self.seq)?
        };
        Ok(doc.map(Arc::unwrap_or_clone))
    }

    /// Every live row for which `filter` returns true, in primary-key order.
    pub fn scan(&self, table: &str, mut filter: impl FnMut(&Value) -> bool) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        self.scan_with(
            table,
            |doc| doc,
            |key, doc| {
                if filter(&doc) {
                    rows.push(Row { key, doc });
                }
                Ok(())
            },
        )?;
        Ok(rows)
    }

    /// Like [`Snapshot::scan`], but each document is behind an `Arc` (made on the thread that
    /// decodes it), so the caller can share rows without copying them. Documents are
    /// immutable, so a shared one never changes under the caller.
    pub fn scan_shared(
        &self,
        table: &str,
        mut filter: impl FnMut(&Value) -> bool,
    ) -> Result<Vec<SharedRow>> {
        let mut rows = Vec::new();
        self.scan_with(table, Arc::new, |key, doc| {
            if filter(&doc) {
                rows.push(SharedRow { key, doc });
            }
            Ok(())
        })?;
        Ok(rows)
    }

    /// Every live row of `table` at this seq, in key order, its document encoded as msgpack
    /// rather than decoded: for a caller that passes documents on as bytes (an export, a
    /// network reply), it costs a copy and, for a document older than the newest, a merge of
    /// the patches byte by byte, not a tree of allocations per document.
    ///
    /// ```
    /// # use driftdb_core::{AsOf, Database, TableSchema, Value};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path())?;
    /// db.create_table("t", TableSchema::new("id"))?;
    /// let mut tx = db.begin();
    /// tx.insert("t", serde_json::json!({"id": 1, "n": 2}).into())?;
    /// tx.commit()?;
    /// let rows = db.read(AsOf::Now)?.scan_encoded("t")?;
    /// assert_eq!(Value::from_msgpack(&rows[0].doc)?, serde_json::json!({"id": 1, "n": 2}).into());
    /// # Ok(())
    /// # }
    /// ```
    pub fn scan_encoded(&self, table: &str) -> Result<Vec<EncodedRow>> {
        let (visible, arena) = self.pending_rows(table)?;
        visible
            .into_iter()
            .map(|(key, pending)| Ok(EncodedRow { key, doc: pending.finish_encoded(&arena)? }))
            .collect()
    }

    /// Every live row of `table` at this seq, in key order, given to `keep`.
    /// Each document is made into a `T` by `make` where it is decoded.
    fn scan_with<T: Send>(
        &self,
        table: &str,
        make: impl Fn(Value) -> T + Sync,
        keep: impl FnMut(Key, T) -> Result<()>,
    ) -> Result<()> {
        // Decoded on several threads when there are many.
        let (visible, arena) = self.pending_rows(table)?;
        crate::chain::finish_all(visible, &arena, make, keep)
    }

    /// Every live row of `table` at this seq, in key order, with what its document is
    /// finished from, and the bytes that refers to: copied under the state lock, so that
    /// decoding or merging after it never holds up commits.
    fn pending_rows(&self, table: &str) -> Result<(PendingRows, Vec<u8>)> {
        let mut arena = Vec::new();
        let state = self.db.state.read();
        let t = state.table(table, self.seq)?;
        let rows = t.pending_at(self.seq, &mut arena).map(|(key, p)| (key.clone(), p)).collect();
        Ok((rows, arena))
    }

    /// Every event of `key` up to this seq, across all its incarnations, oldest first.
    /// Works for soft-deleted keys and for keys of dropped tables.
    pub fn history(&self, table: &str, key: &Key) -> Result<Vec<HistoryEntry>> {
        let state = self.db.state.read();
        state.check_retained(table, self.seq)?;
        let t = state
            .tables
            .get(table)
            .filter(|t| t.schemas.first().is_some_and(|s| s.seq <= self.seq))
            .ok_or_else(|| Error::NoSuchTable { table: table.to_owned() })?;
        let mut entries = Vec::new();
        let Some(chain) = t.rows.get(key) else { return Ok(entries) };
        chain.walk(|v, doc| {
            if v.seq > self.seq {
                return Ok(());
            }
            if let Some(kind) = ChangeKind::from_event(v.kind) {
                entries.push(HistoryEntry {
                    seq: v.seq,
                    unix_ms: state.commit_time(v.seq).unwrap_or(0),
                    kind,
                    payload: v.body()?,
                    document: doc.map(|d| (**d).clone()),
                });
            }
            Ok(())
        })?;
        Ok(entries)
    }

    /// Counts of `table` at this seq: keys ever written (in any incarnation), live rows,
    /// versions, and the most versions of one key.
    pub fn stats(&self, table: &str) -> Result<TableStats> {
        let state = self.db.state.read();
        let t = state.table(table, self.seq)?;
        let mut stats = TableStats::default();
        for (key, chain) in &t.rows {
            let n = chain.versions().partition_point(|v| v.seq <= self.seq);
            if n == 0 {
                continue;
            }
            stats.keys += 1;
            stats.versions += n as u64;
            stats.max_versions_per_key = stats.max_versions_per_key.max(n as u64);
            if t.is_live_at(key, self.seq) {
                stats.live_rows += 1;
            }
        }
        Ok(stats)
    }

    /// The live rows whose field `field` (a dotted path) equals `value`, through the index on
    /// that field, in primary-key order; `Ok(None)` when the table has no index on it.
    /// Numbers compare by value (`1` finds `1.0`); `null` finds nothing.
    pub fn lookup(&self, table: &str, field: &str, value: &Value) -> Result<Option<Vec<Row>>> {
        let state = self.db.state.read();
        let t = state.table(table, self.seq)?;
        let path: Vec<String> = field.split('.').map(str::to_owned).collect();
        let Some(index) = t.indexes.iter().find(|i| i.path == path) else {
            return Ok(None);
        };
        let Some(wanted) = crate::index::IndexValue::of(value) else {
            return Ok(Some(Vec::new()));
        };
        let mut rows = Vec::new();
        for key in index.lookup(&wanted, self.seq) {
            let Some(doc) = t.doc_at(&key, self.seq)? else { continue };
            if crate::index::indexed(Some(&doc), &path).as_ref() == Some(&wanted) {
                rows.push(Row { key, doc: Arc::unwrap_or_clone(doc) });
            }
        }
        Ok(Some(rows))
    }

    /// [`Error::BeforeRetention`] when the history of `table` at this seq was folded away by a
    /// retention policy (every read of the table here fails with it); `Ok` otherwise.
    pub fn check_retained(&self, table: &str) -> Result<()> {
        self.db.state.read().check_retained(table, self.seq)
    }

    /// [`Error::BeforeRetention`] for the first table whose history at this seq was folded
    /// away: then [`Snapshot::tables`] cannot know whether that table existed here (use it
    /// before listing tables `AS OF` a point, as `SHOW TABLES` does).
    pub fn check_all_retained(&self) -> Result<()> {
        let state = self.db.state.read();
        state.tables.keys().try_for_each(|name| state.check_retained(name, self.seq))
    }

    /// Names of the tables that exist at this seq. A table whose history at this seq was
    /// folded away by a retention policy is not listed: see [`Snapshot::check_all_retained`].
    pub fn tables(&self) -> Vec<String> {
        let state = self.db.state.read();
        state
            .tables
            .iter()
            .filter(|(_, t)| t.schema_at(self.seq).is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The schema of `table` at this seq.
    pub fn schema(&self, table: &str) -> Result<TableSchema> {
        let state = self.db.state.read();
        let t = state.table(table, self.seq)?;
        t.schema_at(self.seq)
            .and_then(|s| s.schema.as_deref().cloned())
            .ok_or_else(|| Error::NoSuchTable { table: table.to_owned() })
    }
}
