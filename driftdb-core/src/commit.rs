//! The commit pipeline: validation, seq assignment, group commit, and checkpoints.
//!
//! 1. Under the writer lock a transaction passes the conflict checks of its isolation level
//!    ([`crate::isolation`]) and is validated against the latest state (pending
//!    commits included), given the next seq and a timestamp that never decreases, encoded
//!    (WAL record and segment frames), installed in the in-memory state (invisible to
//!    readers until durable) and queued. Seqs enter the queue in order.
//! 2. Outside the lock the committer waits until its seq is durable. If no commit is being
//!    flushed it becomes the leader: it waits (briefly) for the other open transactions to
//!    queue, takes the whole queue, appends it to the WAL as one batch and fsyncs once, so
//!    concurrent committers share one fsync (group commit). Right after the fsync it
//!    publishes the new durable and visible seq and wakes the committers of the batch; then,
//!    still under the io lock, it appends the events to the table segments (no fsync).
//!    Whatever reads segment files takes the io lock first, and a crash before the appends is
//!    covered by WAL replay. A leader flushes one batch and hands over: the commits that
//!    queued meanwhile are flushed by one of their own committers.
//! 3. A failed WAL write or fsync poisons the engine: the batch is not acknowledged, and every
//!    later write is refused with [`Error::Poisoned`] until the database is reopened, because
//!    after a failed fsync the kernel may have dropped the dirty pages, so a retry could
//!    report success for data that is gone. A failure after the WAL fsync (segments,
//!    checkpoint) still acknowledges the batch, which recovery replays from the WAL, and
//!    poisons the engine for later writes.
//! 4. When the WAL passes its size limit, the leader checkpoints: see
//!    [`crate::storage::checkpoint`] for the fsync order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::db::{CommitInfo, Database};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::isolation::{self, IsolationLevel, ReadSet};
use crate::schema::{TableMeta, TableSchema};
use crate::state::{Change, State};
use crate::storage::checkpoint::{CHECKPOINT_FILE, Checkpoint, CompactedSet, SegmentPos};
use crate::storage::frame::{
    self, EventType, FILE_HEADER_BYTES, FORMAT_VERSION, FileHeader, SEGMENT_MAGIC, WAL_MAGIC,
};
use crate::storage::fs::{Fs, FsFile, write_atomic};
use crate::storage::segment::{self, SEGMENTS_DIR};
use crate::storage::wal::{self, WAL_DIR, WAL_FILE};

/// How long a leader waits for other open transactions to join its batch.
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(60);

/// Seq and time of the last transaction given a seq (durable or not).
#[derive(Debug, Default)]
pub(crate) struct WriterState {
    pub last_seq: u64,
    pub last_ms: u64,
}

/// A transaction handed to [`Database::commit_events`].
#[derive(Debug)]
pub(crate) struct TxnCommit {
    pub events: Vec<Event>,
    /// The changes validated as the events were added.
    pub checked: Vec<Change>,
    /// The seq all of `checked` was validated against, when it was one seq.
    pub checked_at: Option<u64>,
    /// The last durable seq when the transaction began.
    pub start_seq: u64,
    pub isolation: IsolationLevel,
    /// What a SERIALIZABLE transaction read.
    pub reads: Option<ReadSet>,
}

/// A commit waiting for its batch to be made durable.
#[derive(Debug)]
pub(crate) struct Pending {
    seq: u64,
    unix_ms: u64,
    /// A whole WAL_BATCH frame holding this transaction alone: a batch of one commit is
    /// written as it is; a larger batch copies the records out of it into one frame.
    wal_frame: Vec<u8>,
    /// Where the transaction record starts in `wal_frame` (after the frame's header).
    wal_record_at: usize,
    tables: Vec<TableWrite>,
}

impl Pending {
    /// The msgpack transaction record.
    fn wal_record(&self) -> &[u8] {
        self.wal_frame.get(self.wal_record_at..).unwrap_or_default()
    }
}

/// The segment frames of one table in one transaction, and its derived files after DDL.
#[derive(Debug)]
pub(crate) struct TableWrite {
    pub table: String,
    pub frames: Vec<u8>,
    /// Whether the transaction changed the table's schema.
    pub schema_changed: bool,
    /// The derived files to rewrite after a schema change.
    pub derived: Option<DerivedFiles>,
}

/// The contents of a table's `schema.yaml` and `meta.json`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DerivedFiles {
    pub meta: TableMeta,
    pub schema: Option<TableSchema>,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub pending: Vec<Pending>,
    pub leader: bool,
    pub durable_seq: u64,
    pub durable_ms: u64,
    pub poisoned: Option<String>,
    /// Committers parked until their seq is durable.
    pub waiters: Vec<(u64, std::thread::Thread)>,
}

/// The open segment of a table.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    pub id: u32,
    pub file: Box<dyn FsFile>,
    /// Frames not yet handed to the file (see [`SEGMENT_BUFFER_BYTES`]).
    pub buffer: Vec<u8>,
    pub dirty: bool,
}

/// Segment frames are collected in memory and written in pieces of about this size. Segment
/// bytes are trusted only after a checkpoint, and the WAL holds everything after it, so
/// holding them back costs no durability; it keeps the commit path to one write and one
/// fsync, and on ext4 (data=ordered) it keeps the WAL's fsync from flushing segment data too.
pub(crate) const SEGMENT_BUFFER_BYTES: usize = 1024 * 1024;

impl SegmentWriter {
    pub fn new(id: u32, file: Box<dyn FsFile>, dirty: bool) -> Self {
        SegmentWriter { id, file, buffer: Vec::new(), dirty }
    }

    /// Length of the segment once the buffer is written.
    fn len(&self) -> u64 {
        self.file.len() + self.buffer.len() as u64
    }

    /// Hand the buffered frames to the file.
    pub(crate) fn flush(&mut self, path: &Path) -> Result<()> {
        if !self.buffer.is_empty() {
            self.file.append(&self.buffer).map_err(io_err(path))?;
            self.buffer.clear();
        }
        Ok(())
    }
}

/// Open files; only the group-commit leader (or open/close) touches them.
#[derive(Debug)]
pub(crate) struct IoState {
    pub wal: Box<dyn FsFile>,
    /// End of the last batch in the WAL; the file may be longer (preallocated zeros).
    pub wal_len: u64,
    pub segments: BTreeMap<String, SegmentWriter>,
    /// Rotated-away segments with writes not yet fsynced.
    pub rotated: Vec<Box<dyn FsFile>>,
    /// The compacted set of each compacted table, recorded by every checkpoint
    /// (see [`crate::compaction`]).
    pub compacted: BTreeMap<String, CompactedSet>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn table_dir(root: &Path, table: &str) -> PathBuf {
    root.join("tables").join(table)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// The derived files of `table` as the state says they are now.
pub(crate) fn derived_files(state: &State, table: &str) -> Option<DerivedFiles> {
    let t = state.tables.get(table)?;
    let last = t.schemas.last()?;
    let schema = last.schema.as_deref().cloned();
    let primary_key = t.schemas.iter().rev().find_map(|s| s.schema.as_ref())?.primary_key.clone();
    let meta = TableMeta {
        name: table.to_owned(),
        primary_key,
        created_seq: last.created_seq,
        dropped_seq: if schema.is_none() { Some(last.seq) } else { None },
        format_version: FORMAT_VERSION,
    };
    Some(DerivedFiles { meta, schema })
}

/// Write `schema.yaml` (when the table is live) and `meta.json`, each atomically.
pub(crate) fn write_derived(fs: &dyn Fs, root: &Path, files: &DerivedFiles) -> Result<()> {
    let dir = table_dir(root, &files.meta.name);
    if let Some(schema) = &files.schema {
        let yaml = serde_yaml::to_string(schema).map_err(|e| Error::invalid(e.to_string()))?;
        let path = dir.join("schema.yaml");
        write_atomic(fs, &path, yaml.as_bytes()).map_err(io_err(&path))?;
    }
    let json = serde_json::to_vec_pretty(&files.meta).map_err(|e| Error::invalid(e.to_string()))?;
    let path = dir.join("meta.json");
    write_atomic(fs, &path, &json).map_err(io_err(&path))
}

/// Create a directory and make its entry durable in its parent.
pub(crate) fn create_dir_durable(fs: &dyn Fs, dir: &Path) -> Result<()> {
    if fs.is_dir(dir) {
        return Ok(());
    }
    fs.create_dir(dir).map_err(io_err(dir))?;
    // A relative name like `mydata` has the empty path as its parent: the current directory.
    let parent = match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("/"),
    };
    fs.sync_dir(parent).map_err(io_err(parent))
}

/// Create segment `id` of `table` with its header, durably named.
pub(crate) fn create_segment(
    fs: &dyn Fs,
    root: &Path,
    table: &str,
    id: u32,
) -> Result<SegmentWriter> {
    let dir = table_dir(root, table);
    for d in [root.join("tables"), dir.clone()] {
        create_dir_durable(fs, &d)?;
    }
    for sub in [SEGMENTS_DIR, "snapshots", "indexes"] {
        create_dir_durable(fs, &dir.join(sub))?;
    }
    let seg_dir = dir.join(SEGMENTS_DIR);
    let path = seg_dir.join(segment::segment_name(id));
    let mut file = fs.open_append(&path, true).map_err(io_err(&path))?;
    if file.is_empty() {
        file.append(&FileHeader::new(SEGMENT_MAGIC).encode()).map_err(io_err(&path))?;
    }
    fs.sync_dir(&seg_dir).map_err(io_err(&seg_dir))?;
    Ok(SegmentWriter::new(id, file, true))
}

/// The WAL grows in zero-filled chunks of this size (at most; a quarter of the checkpoint
/// limit, at least 64 KiB), written after the batch that outgrows the file and synced with it.
/// Within a preallocated chunk an fdatasync has only the data to write, not the file size.
const WAL_CHUNK_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Zeros for preallocation, written a piece at a time (no fresh zeroed buffer per chunk).
static ZEROS: [u8; 256 * 1024] = [0; 256 * 1024];

impl IoState {
    /// Write a batch at the end of the WAL's contents and, when it outgrew the file, a
    /// zero-filled chunk after it (the batch's bytes are written once, not first as zeros).
    /// Not synced here.
    fn write_wal(&mut self, bytes: &[u8], wal_size_bytes_max: u64) -> std::io::Result<()> {
        let end = self.wal_len + bytes.len() as u64;
        let allocated = self.wal.len();
        self.wal.write_at(self.wal_len, bytes)?;
        if end > allocated {
            let chunk = (wal_size_bytes_max / 4).clamp(64 * 1024, WAL_CHUNK_BYTES_MAX);
            // Preallocation only saves work: when the disk (or a file size limit) refuses it,
            // any zeros it did write are still just unwritten space after the batch.
            let mut at = end;
            while at < end + chunk {
                let piece = ZEROS.len().min((end + chunk - at) as usize);
                if self.wal.write_at(at, ZEROS.get(..piece).unwrap_or_default()).is_err() {
                    break;
                }
                at += piece as u64;
            }
        }
        Ok(())
    }

    /// Append one transaction's frames to a table's segment, rotating when it would overflow.
    pub fn append_segment(&mut self, db: &Database, write: &TableWrite) -> Result<()> {
        let fs = db.fs.as_ref();
        let root = &db.root;
        let limit = db.options.segment_size_bytes_max;
        if !self.segments.contains_key(&write.table) {
            let writer = create_segment(fs, root, &write.table, 1)?;
            self.segments.insert(write.table.clone(), writer);
        }
        let Some(writer) = self.segments.get_mut(&write.table) else {
            return Err(Error::invalid("segment writer vanished"));
        };
        let seg_dir = table_dir(root, &write.table).join(SEGMENTS_DIR);
        let len = writer.len();
        if len > FILE_HEADER_BYTES as u64 && len + write.frames.len() as u64 > limit {
            writer.flush(&seg_dir.join(segment::segment_name(writer.id)))?;
            let next = create_segment(fs, root, &write.table, writer.id + 1)?;
            let old = std::mem::replace(writer, next);
            if old.dirty {
                self.rotated.push(old.file);
            }
        }
        let Some(writer) = self.segments.get_mut(&write.table) else {
            return Err(Error::invalid("segment writer vanished"));
        };
        writer.dirty = true;
        if write.frames.len() >= SEGMENT_BUFFER_BYTES {
            // A large transaction goes to the file as it is, after what the buffer holds,
            // not copied through the buffer.
            let path = seg_dir.join(segment::segment_name(writer.id));
            writer.flush(&path)?;
            writer.file.append(&write.frames).map_err(io_err(&path))?;
        } else {
            writer.buffer.extend_from_slice(&write.frames);
            if writer.buffer.len() >= SEGMENT_BUFFER_BYTES {
                writer.flush(&seg_dir.join(segment::segment_name(writer.id)))?;
            }
        }
        if let Some(files) = &write.derived {
            write_derived(fs, root, files)?;
        }
        Ok(())
    }

    /// Make every segment durable, record the checkpoint, and start an empty WAL.
    pub fn checkpoint(&mut self, db: &Database, seq: u64, unix_ms: u64) -> Result<()> {
        let fs = db.fs.as_ref();
        let wal_empty = self.wal_len <= FILE_HEADER_BYTES as u64;
        if wal_empty && self.rotated.is_empty() && self.segments.values().all(|w| !w.dirty) {
            return Ok(()); // nothing was written since the last checkpoint
        }
        for mut file in self.rotated.drain(..) {
            file.sync().map_err(|e| Error::io(&db.root, e))?;
        }
        let mut tables = BTreeMap::new();
        for (name, writer) in &mut self.segments {
            if writer.dirty {
                let seg_dir = table_dir(&db.root, name).join(SEGMENTS_DIR);
                let path = seg_dir.join(segment::segment_name(writer.id));
                writer.flush(&path)?;
                writer.file.sync().map_err(|e| Error::io(&path, e))?;
                writer.dirty = false;
            }
            let compacted = self.compacted.get(name).copied();
            let pos = SegmentPos { segment: writer.id, len: writer.file.len(), compacted };
            tables.insert(name.clone(), pos);
        }
        let cp = Checkpoint { seq, unix_ms, tables };
        let path = db.root.join(CHECKPOINT_FILE);
        write_atomic(fs, &path, &cp.encode()?).map_err(io_err(&path))?;
        self.wal = reset_wal(fs, &db.root)?;
        self.wal_len = self.wal.len();
        Ok(())
    }
}

/// Replace the WAL with an empty one (atomically) and open it for appending.
pub(crate) fn reset_wal(fs: &dyn Fs, root: &Path) -> Result<Box<dyn FsFile>> {
    let path = root.join(WAL_DIR).join(WAL_FILE);
    write_atomic(fs, &path, &FileHeader::new(WAL_MAGIC).encode()).map_err(io_err(&path))?;
    fs.open_append(&path, false).map_err(io_err(&path))
}

impl Database {
    pub(crate) fn check_poison(&self) -> Result<()> {
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        match &self.queue.lock().poisoned {
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Check, validate, sequence, log durably and apply a transaction's events.
    ///
    /// Under the writer lock, so that no other commit can come between the checks and the seq
    /// this one gets: the conflict checks of the isolation level against every commit after the
    /// start seq (skipped when there was none), then validation. The changes validated as the
    /// events were added are reused when they still hold (nothing committed since the seq they
    /// were validated against, or the conflict checks passed), and recomputed against the
    /// latest state otherwise — under READ COMMITTED, where a PATCH is merged into the latest
    /// version — and always when the transaction writes to a table with unique fields (see
    /// `unique.rs`). The lock is released before waiting for the fsync, so group commit keeps
    /// batching.
    pub(crate) fn commit_events(&self, txn: TxnCommit) -> Result<CommitInfo> {
        // The transaction counts as open (for the leader's commit delay) until it is queued.
        let unqueued = Unqueued(&self.open_txns);
        let TxnCommit { events, checked, checked_at, start_seq, isolation, reads } = txn;
        if events.is_empty() {
            let seq = self.last_seq();
            let unix_ms = self.commit_time(seq).unwrap_or(0);
            return Ok(CommitInfo { seq, unix_ms, events: 0 });
        }
        self.check_poison()?;
        let mut writer = self.writer.lock();
        let validated = (|events: Vec<Event>| {
            let state = self.state.read();
            let checks = isolation != IsolationLevel::ReadCommitted
                && !self.hooks.conflict_checks_off.load(Ordering::Relaxed);
            if checks && writer.last_seq != start_seq {
                isolation::validate(&state, start_seq, &events, reads.as_ref())?;
            }
            // The changes were computed at `checked_at`. They still hold when nothing committed
            // since; and, once the conflict checks passed, when nothing changed the keys and
            // tables written since the start seq they were computed at (a change depends only
            // on its key's document and its table's schema).
            let current = checked_at == Some(writer.last_seq) || checks;
            // A unique field can be taken by a concurrent commit under another key, which
            // no conflict check sees: validate writes to such tables again (`unique.rs`).
            let unique = events.iter().any(|e| state.has_unique(&e.table))
                || checked.iter().any(|c| c.schema.as_ref().is_some_and(|s| !s.unique.is_empty()));
            if current && !unique && checked.len() == events.len() {
                Ok((events, checked))
            } else {
                let prepared = state.prepare(events);
                prepared.map_err(|e| isolation::revalidation_error(e, &state, start_seq))
            }
        })(events);
        let (events, changes) = match validated {
            Ok(validated) => validated,
            Err(error) => {
                let last_seq = writer.last_seq;
                drop(writer);
                return Err(self.settle_conflict(error, last_seq));
            }
        };
        #[cfg(feature = "test-hooks")]
        self.hooks.at(crate::hooks::CommitPoint::Validated);
        let count = events.len();
        let per_table = crate::snapshot::auto::events_per_table(&events);
        let seq = writer.last_seq + 1;
        let unix_ms = now_ms().max(writer.last_ms);
        let pending = self.encode(seq, unix_ms, &events)?;
        let mut state = self.state.write();
        state.install(seq, unix_ms, events, changes)?;
        let mut pending = pending;
        for write in &mut pending.tables {
            if write.schema_changed {
                write.derived = derived_files(&state, &write.table);
            }
        }
        drop(state);
        writer.last_seq = seq;
        writer.last_ms = unix_ms;
        self.queue.lock().pending.push(pending);
        drop(unqueued);
        drop(writer);
        #[cfg(feature = "test-hooks")]
        self.hooks.at(crate::hooks::CommitPoint::Queued);
        self.wait_durable(seq)?;
        self.after_commit(&per_table);
        Ok(CommitInfo { seq, unix_ms, events: count })
    }

    /// A transaction that lost to a commit which is not durable yet waits until it is (as a
    /// PostgreSQL writer waits for the transaction holding its row) before it reports the
    /// conflict: a retry begun right after then sees the winner, instead of losing to it again.
    /// A unique violation found at commit may name a holder whose commit is not durable yet:
    /// it waits for every commit given a seq before it (`last_seq`), for the same reason.
    fn settle_conflict(&self, error: Error, last_seq: u64) -> Error {
        let wait_for = match &error {
            Error::Conflict { seq, .. } => *seq,
            Error::UniqueViolation(_) => last_seq,
            _ => return error,
        };
        if wait_for > self.last_seq()
            && let Err(failure) = self.wait_durable(wait_for)
        {
            return failure;
        }
        error
    }

    fn encode(&self, seq: u64, unix_ms: u64, events: &[Event]) -> Result<Pending> {
        let mut wal_frame = Vec::new();
        let start = frame::begin(&mut wal_frame, seq, unix_ms, EventType::WalBatch);
        let wal_record_at = wal_frame.len();
        let record = crate::event::begin_txn(&mut wal_frame, seq, unix_ms, events);
        let mut tables: Vec<TableWrite> = Vec::new();
        // Room for every frame (the first table gets it: most transactions write one).
        let mut room: usize = events.iter().map(|e| e.encoded.len() + 32).sum();
        // One pass writes each event to the WAL record and to its segment frame, so that each
        // event's bytes are read from memory once.
        for event in events {
            crate::event::push_txn_event(&mut wal_frame, record, event)?;
            let index = match tables.iter().position(|t| *t.table == *event.table) {
                Some(i) => i,
                None => {
                    tables.push(TableWrite {
                        table: event.table.to_string(),
                        frames: Vec::with_capacity(std::mem::take(&mut room)),
                        schema_changed: false,
                        derived: None,
                    });
                    tables.len() - 1
                }
            };
            if let Some(write) = tables.get_mut(index) {
                segment::encode_event(&mut write.frames, seq, unix_ms, event)?;
                write.schema_changed |= event.key.is_none();
            }
        }
        frame::finish(&mut wal_frame, start);
        Ok(Pending { seq, unix_ms, wal_frame, wal_record_at, tables })
    }

    /// Wait until `seq` is durable, leading a group commit when nobody else is.
    ///
    /// Waiters park; a leader wakes exactly the committers its batch made durable (every
    /// waiter after a failure) as soon as the WAL fsync returns, and, when commits queued
    /// meanwhile, one of their committers to lead the next batch. A waiter registers under the
    /// queue lock before parking, so no wake-up is lost.
    ///
    /// A leader flushes one batch and returns: its thread goes back to its caller (in a
    /// busy server, to build its next commit) instead of flushing the commits that queued
    /// during its fsync, which would make the next batches smaller. Measured on 2 vCPUs with
    /// 8 committing threads, batches hold ~6.2 commits this way against ~5.3 when a leader
    /// flushed up to three batches in a row (docs/PERFORMANCE.md).
    fn wait_durable(&self, seq: u64) -> Result<()> {
        loop {
            let mut queue = self.queue.lock();
            if queue.durable_seq >= seq {
                return Ok(());
            }
            if let Some(cause) = &queue.poisoned {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            if queue.leader {
                queue.waiters.push((seq, std::thread::current()));
                drop(queue);
                std::thread::park();
                continue;
            }
            queue.leader = true;
            // Other transactions are open and will likely commit soon: give them a moment to
            // queue up so that one fsync carries them too (like PostgreSQL's commit_delay).
            // `open_txns` counts the transactions begun and not queued yet, so the wait ends
            // as soon as every one of them has queued, and after COMMIT_DELAY at most: an idle
            // open transaction costs others at most that.
            let deadline = std::time::Instant::now() + COMMIT_DELAY;
            while self.open_txns.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline
            {
                drop(queue);
                std::thread::yield_now();
                queue = self.queue.lock();
            }
            let batch = std::mem::take(&mut queue.pending);
            drop(queue);
            self.write_batch(&batch);
            let mut queue = self.queue.lock();
            queue.leader = false;
            // Commits that queued during the fsync have parked behind this leader: wake one
            // of them to lead (unless a new committer takes the lead first).
            let next_leader = if queue.pending.is_empty() || queue.waiters.is_empty() {
                None
            } else {
                Some(queue.waiters.remove(0).1)
            };
            drop(queue);
            if let Some(thread) = next_leader {
                thread.unpark();
            }
        }
    }

    /// Record the outcome of a batch under the queue lock and wake the committers it settled:
    /// those whose seq is now durable, or every waiter after a failure. Takes the queue lock
    /// (callers may hold the io lock: the order is io, then queue).
    fn settle(&self, durable: Option<(u64, u64)>, failure: Option<String>) {
        let mut queue = self.queue.lock();
        if let Some((last_seq, last_ms)) = durable {
            queue.durable_seq = last_seq;
            queue.durable_ms = last_ms;
            self.visible_seq.store(last_seq, Ordering::Release);
        }
        if let Some(cause) = failure {
            queue.poisoned.get_or_insert(cause);
            self.poisoned.store(true, Ordering::Release);
        }
        let (done, failed) = (queue.durable_seq, queue.poisoned.is_some());
        let mut wake = Vec::new();
        queue.waiters.retain(|(waiting, thread)| {
            let release = failed || *waiting <= done;
            if release {
                wake.push(thread.clone());
            }
            !release
        });
        drop(queue);
        for thread in wake {
            thread.unpark();
        }
    }

    /// Write a batch to the WAL and fsync; then publish it as durable and wake its committers
    /// at once; then, still under the io lock, append its events to the segments and
    /// checkpoint when the WAL is over its limit. A failure of the WAL write or fsync poisons
    /// the engine without acknowledging anything; a failure after it acknowledges the batch
    /// (recovery replays it from the WAL) and poisons the engine for later writes.
    ///
    /// Publishing before the segment appends is safe: readers read the in-memory state, and
    /// whatever reads the segments (snapshot scans, compaction, backups, checkpoints) takes
    /// the io lock, which is held until the appends are done.
    fn write_batch(&self, batch: &[Pending]) {
        let Some(last) = batch.last() else { return };
        let durable = Some((last.seq, last.unix_ms));
        let mut io = self.io.lock();
        let mut joined = Vec::new();
        let bytes: &[u8] = match batch {
            [one] => &one.wal_frame,
            _ => {
                let records: Vec<(u64, u64, &[u8])> =
                    batch.iter().map(|p| (p.seq, p.unix_ms, p.wal_record())).collect();
                wal::encode_batches(&mut joined, &records);
                &joined
            }
        };
        if let Err(e) = io.write_wal(bytes, self.options.wal_size_bytes_max) {
            return self.settle(None, Some(format!("write to the WAL failed: {e}")));
        }
        if let Err(e) = io.wal.sync() {
            return self.settle(None, Some(format!("fsync of the WAL failed: {e}")));
        }
        io.wal_len += bytes.len() as u64;
        self.settle(durable, None);
        for pending in batch {
            for write in &pending.tables {
                if let Err(e) = io.append_segment(self, write) {
                    return self.settle(None, Some(format!("segment write failed: {e}")));
                }
            }
        }
        if io.wal_len > self.options.wal_size_bytes_max
            && let Err(e) = io.checkpoint(self, last.seq, last.unix_ms)
        {
            self.settle(None, Some(format!("checkpoint failed: {e}")));
        }
    }

    /// Apply one logged transaction during recovery: state and segments, no WAL write.
    pub(crate) fn replay_one(&self, txn: crate::event::TxnRecord) -> Result<()> {
        let mut pending = self.encode(txn.seq, txn.unix_ms, &txn.events)?;
        let mut state = self.state.write();
        let (events, changes) = state.prepare(txn.events)?;
        state.install(txn.seq, txn.unix_ms, events, changes)?;
        for write in &mut pending.tables {
            if write.schema_changed {
                write.derived = derived_files(&state, &write.table);
            }
        }
        drop(state);
        let mut io = self.io.lock();
        for write in &pending.tables {
            io.append_segment(self, write)?;
        }
        Ok(())
    }

    /// Final checkpoint at close (once).
    pub(crate) fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let queue = self.queue.lock();
        if let Some(cause) = &queue.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        let (seq, unix_ms) = (queue.durable_seq, queue.durable_ms);
        drop(queue);
        self.io.lock().checkpoint(self, seq, unix_ms)?;
        // Every commit is in the segments now: the index files are derived from them, and a
        // failure to write one loses nothing (the next open rebuilds the index).
        if let Err(e) = crate::index_files::write_all(self) {
            self.index_files.lock().notes.push(format!("index files not written: {e}"));
            return Err(e);
        }
        Ok(())
    }
}

/// Stops counting a transaction in `Database::open_txns` when dropped: once it is queued, or
/// when its commit fails before that.
struct Unqueued<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Unqueued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Database, TableSchema};

    fn open_txns(db: &Database) -> usize {
        db.open_txns.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The leader's commit delay waits while `open_txns` is non-zero: a transaction must stop
    /// counting once it is queued, and on every other way out (failed commit, empty commit,
    /// rollback), or every later batch would wait the whole delay.
    #[test]
    fn transactions_stop_counting_once_queued_or_finished() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        db.create_table("t", TableSchema::new("id")).unwrap();
        assert_eq!(open_txns(&db), 0);
        let mut a = db.begin();
        let mut b = db.begin();
        assert_eq!(open_txns(&db), 2);
        a.insert("t", serde_json::json!({"id": 1}).into()).unwrap();
        b.insert("t", serde_json::json!({"id": 1}).into()).unwrap();
        a.commit().unwrap();
        assert_eq!(open_txns(&db), 1);
        // Both inserted key 1 from the same start: the second commit fails.
        assert!(b.commit().is_err());
        assert_eq!(open_txns(&db), 0);
        db.begin().rollback();
        db.begin().commit().unwrap();
        assert_eq!(open_txns(&db), 0);
    }

    /// A committer waiting for its fsync (here: paused right after queuing) no longer counts
    /// as open, so a leader does not wait for it.
    #[cfg(feature = "test-hooks")]
    #[test]
    fn a_queued_transaction_no_longer_counts_as_open() {
        use crate::hooks::CommitPoint;
        use std::sync::{Arc, Barrier};
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        db.create_table("t", TableSchema::new("id")).unwrap();
        let (queued, go) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let (q, g) = (queued.clone(), go.clone());
        db.set_commit_hook(Some(Arc::new(move |point| {
            if point == CommitPoint::Queued {
                q.wait();
                g.wait();
            }
        })));
        let other = db.begin();
        let seen = std::thread::scope(|s| {
            s.spawn(|| {
                let mut tx = db.begin();
                tx.insert("t", serde_json::json!({"id": 1}).into()).unwrap();
                tx.commit().unwrap();
            });
            queued.wait();
            let seen = open_txns(&db);
            go.wait();
            seen
        });
        // Only `other` was open: the paused commit was queued.
        assert_eq!(seen, 1);
        drop(other);
        assert_eq!(open_txns(&db), 0);
        db.set_commit_hook(None);
    }
}
