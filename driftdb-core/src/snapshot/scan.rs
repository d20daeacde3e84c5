//! The streaming scan: the live rows of a table at a seq, from its snapshot chain and the
//! segment events after it, in primary-key order.
//!
//! 1. **Pick a chain.** Among the table's snapshots at or before the seq `T` that belong to
//!    the table's incarnation at `T` (seq `>=` the CREATE of that incarnation, and the same
//!    `created_seq` in the header), the newest whose chain (it, its base, ... down to a full
//!    snapshot) opens intact. Each file's blocks are checked in full the first time this
//!    process uses it. A chain that fails is skipped and the failure recorded
//!    (`Database::snapshot_damage`); with no usable chain the scan starts from nothing at seq 0.
//! 2. **Replay.** Under the compaction mutex (so no segment file is retired meanwhile), the
//!    table's buffered segment bytes are handed to the file, and the segment files holding
//!    seqs in `(S, T]` (`S` the chain's seq) are found by their first seq (read and checked
//!    from their first frame or block) and read one at a time, every frame checked. The
//!    events in `(S, T]` are folded per key into a change: a document, a deletion, or PATCHes
//!    to apply to the snapshot's document. A CREATE or DROP of the table drops everything
//!    before it.
//! 3. **Merge.** The chain's files (each sorted by key) and the folded changes are merged in
//!    one pass: for each key the newest source wins, and the rows live at `T` are yielded.
//!
//! **Memory.** One decoded block (about 64 KiB of entries) per file of the chain, plus the
//! folded changes of the events replayed, plus a 1 MiB piece of the plain segment being read
//! (a compressed segment, written whole by compaction, is read whole: `segments.rs`). With
//! automatic snapshots every K events the replay holds at most about K events; a table with
//! no snapshot replays its whole history into the change map (its live rows). When the engine
//! is poisoned (a segment write failed, so segments may lack acknowledged events) the scan
//! reads the in-memory state instead.
//!
//! **Damage.** A chain whose header, index, trailer or any block fails its check before the
//! scan starts is not used (the scan falls back, as above). A snapshot block that fails later,
//! while the stream is read (the file changed after it was checked), ends the stream with
//! `Corrupt { file, offset }`: rows already yielded cannot be taken back. Damage in a segment
//! is `Corrupt` as for every read of segments.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::commit::table_dir;
use crate::db::{AsOf, Database, Row};
use crate::error::{Error, Result};
use crate::storage::frame::EventType;
use crate::storage::fs::Fs;
use crate::storage::segment::{self, SEGMENTS_DIR};
use crate::storage::segment_set::{compacted_paths, plain_paths};
use crate::storage::snapshot::{Entry, SnapshotFile, SnapshotKind, new_decompressor};
use crate::value::{Key, Value};

use super::list;
use super::segments::{first_seq, visit_segment};

/// The rows of a table at one seq, in primary-key order, read a block at a time (see
/// [`Database::scan_stream`]). Each item is a row, or the error that ended the stream.
pub struct RowStream {
    inner: Inner,
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.inner {
            Inner::Memory(_) => "memory",
            Inner::Merge(m) => m.describe(),
            Inner::Done => "done",
        };
        f.debug_struct("RowStream").field("source", &what).finish_non_exhaustive()
    }
}

enum Inner {
    /// The in-memory state (a poisoned engine).
    Memory(std::vec::IntoIter<Row>),
    Merge(Box<Merge>),
    Done,
}

impl RowStream {
    /// The seq of the snapshot the scan started from (`None`: it replayed from the start, or
    /// read the in-memory state).
    pub fn snapshot_seq(&self) -> Option<u64> {
        match &self.inner {
            Inner::Merge(m) => m.sources.first().map(|s| s.file.header.seq),
            _ => None,
        }
    }

    /// Segment events replayed after the snapshot to reach the scan's seq.
    pub fn replayed_events(&self) -> u64 {
        match &self.inner {
            Inner::Merge(m) => m.replayed,
            _ => 0,
        }
    }
}

impl Iterator for RowStream {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        let item = match &mut self.inner {
            Inner::Memory(rows) => return rows.next().map(Ok),
            Inner::Merge(merge) => merge.next_row(),
            Inner::Done => return None,
        };
        match item {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.inner = Inner::Done;
                None
            }
            Err(e) => {
                self.inner = Inner::Done;
                Some(Err(e))
            }
        }
    }
}

/// What the replayed events did to one key.
#[derive(Debug)]
enum Change {
    /// The key holds this document (`None`: not live).
    Set(Option<Arc<Value>>),
    /// The key holds the snapshot's document with these patches merged in, in order.
    Patches(Vec<Arc<Value>>),
}

/// One snapshot file being read, a block at a time.
struct SourceFile {
    file: SnapshotFile,
    next_block: usize,
    buf: VecDeque<Entry>,
    last: Option<Key>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl SourceFile {
    fn peek(&mut self, fs: &dyn Fs) -> Result<Option<&Key>> {
        while self.buf.is_empty() && self.next_block < self.file.blocks.len() {
            let entries =
                self.file.block(fs, self.next_block, self.last.as_ref(), &mut self.decompressor)?;
            self.next_block += 1;
            self.last = entries.last().map(|(k, _)| k.clone());
            self.buf = entries.into();
        }
        Ok(self.buf.front().map(|(k, _)| k))
    }
}

struct Merge {
    fs: Arc<dyn Fs>,
    /// The chain, newest first (so the first holding a key wins).
    sources: Vec<SourceFile>,
    changes: std::iter::Peekable<std::collections::btree_map::IntoIter<Key, Change>>,
    replayed: u64,
}

impl Merge {
    fn describe(&self) -> &'static str {
        if self.sources.is_empty() { "segments" } else { "snapshot and segments" }
    }

    fn next_row(&mut self) -> Result<Option<Row>> {
        loop {
            let mut min: Option<Key> = None;
            for source in &mut self.sources {
                if let Some(key) = source.peek(self.fs.as_ref())?
                    && min.as_ref().is_none_or(|m| key < m)
                {
                    min = Some(key.clone());
                }
            }
            if let Some((key, _)) = self.changes.peek()
                && min.as_ref().is_none_or(|m| key < m)
            {
                min = Some(key.clone());
            }
            let Some(key) = min else { return Ok(None) };
            let mut base: Option<Option<Value>> = None;
            for source in &mut self.sources {
                if source.buf.front().is_some_and(|(k, _)| *k == key)
                    && let Some((_, doc)) = source.buf.pop_front()
                    && base.is_none()
                {
                    base = Some(doc);
                }
            }
            let base = base.flatten();
            let doc = match self.changes.next_if(|(k, _)| *k == key) {
                None => base,
                Some((_, Change::Set(doc))) => doc.map(Arc::unwrap_or_clone),
                Some((_, Change::Patches(patches))) => {
                    let Some(mut doc) = base else {
                        let file = self.sources.first().map(|s| s.file.path.clone());
                        return Err(Error::corrupt(
                            file.unwrap_or_default(),
                            0,
                            format!(
                                "the segments PATCH key {key}, which the snapshot chain does \
                                 not hold as live"
                            ),
                        ));
                    };
                    for patch in &patches {
                        doc.merge_patch(patch);
                    }
                    Some(doc)
                }
            };
            if let Some(doc) = doc {
                return Ok(Some(Row { key, doc }));
            }
        }
    }
}

impl Database {
    /// Every live row of `table` at `as_of`, in primary-key order, streamed: from the nearest
    /// intact snapshot at or before that seq, merged with the segment events after it (see the
    /// module `snapshot::scan`). Gives exactly the rows of `read(as_of)?.scan(table, |_| true)`.
    pub fn scan_stream(&self, table: &str, as_of: AsOf) -> Result<RowStream> {
        let seq = self.resolve(as_of)?;
        let created_seq = {
            let state = self.state.read();
            let t = state.table(table, seq)?;
            t.schema_at(seq).map_or(0, |s| s.created_seq)
        };
        // A batch whose segment write failed becomes visible and poisons the engine in one
        // critical section of the queue lock: read the flag under it, so a seq that includes
        // such a batch is never read from segments that may lack it.
        let poisoned = {
            let _queue = self.queue.lock();
            self.poisoned.load(Ordering::Acquire)
        };
        if poisoned {
            let rows = self.read(AsOf::Seq(seq))?.scan(table, |_| true)?;
            return Ok(RowStream { inner: Inner::Memory(rows.into_iter()) });
        }
        let mut sources = self.usable_chain(table, seq, created_seq);
        let from_seq = sources.first().map_or(0, |s| s.file.header.seq);
        let (changes, replayed, reset) = self.replay(table, from_seq, seq)?;
        if reset {
            sources.clear();
        }
        let merge = Merge {
            fs: self.fs.clone(),
            sources,
            changes: changes.into_iter().peekable(),
            replayed,
        };
        Ok(RowStream { inner: Inner::Merge(Box::new(merge)) })
    }

    /// The newest intact snapshot chain of `table`'s incarnation `created_seq` at or before
    /// `seq`, newest file first; empty when there is none.
    fn usable_chain(&self, table: &str, seq: u64, created_seq: u64) -> Vec<SourceFile> {
        let fs = self.fs.as_ref();
        let files = match list(fs, &self.root, table) {
            Ok(files) => files,
            Err(e) => {
                *self.snapshots.damage.lock() = Some(e.to_string());
                return Vec::new();
            }
        };
        for (top, _) in files.iter().rev().filter(|(s, _)| *s <= seq && *s >= created_seq) {
            match self.open_chain(table, &files, *top, created_seq) {
                Ok(chain) => return chain,
                Err(e) => *self.snapshots.damage.lock() = Some(e.to_string()),
            }
        }
        Vec::new()
    }

    fn open_chain(
        &self,
        table: &str,
        files: &[(u64, PathBuf)],
        top: u64,
        created_seq: u64,
    ) -> Result<Vec<SourceFile>> {
        let fs = self.fs.as_ref();
        let mut chain = Vec::new();
        let mut at = top;
        loop {
            let Some((_, path)) = files.iter().find(|(s, _)| *s == at) else {
                return Err(Error::corrupt(
                    super::snapshots_dir(&self.root, table)
                        .join(crate::storage::snapshot::snapshot_name(at)),
                    0,
                    format!(
                        "the base snapshot at seq {at} of the snapshot at seq {top} is missing"
                    ),
                ));
            };
            let file = SnapshotFile::open(fs, path)?;
            let h = &file.header;
            if h.table != table || h.seq != at || h.created_seq != created_seq {
                return Err(Error::corrupt(
                    path,
                    0,
                    format!(
                        "snapshot header names table `{}` at seq {} of incarnation {}; \
                         expected `{table}` at seq {at} of incarnation {created_seq}",
                        h.table, h.seq, h.created_seq
                    ),
                ));
            }
            if !self.snapshots.verified.lock().contains(path) {
                file.verify(fs)?;
                self.snapshots.verified.lock().insert(path.clone());
            }
            let (kind, base) = (h.kind, h.base_seq);
            chain.push(SourceFile {
                decompressor: new_decompressor(path)?,
                file,
                next_block: 0,
                buf: VecDeque::new(),
                last: None,
            });
            match kind {
                SnapshotKind::Full => return Ok(chain),
                SnapshotKind::Incremental => at = base,
            }
        }
    }

    /// Fold the events of `table` in `(after, upto]` per key. Returns the changes, how many
    /// events were replayed, and whether a CREATE or DROP of the table came among them
    /// (then nothing before it counts).
    fn replay(
        &self,
        table: &str,
        after: u64,
        upto: u64,
    ) -> Result<(BTreeMap<Key, Change>, u64, bool)> {
        let fs = self.fs.as_ref();
        let mut changes: BTreeMap<Key, Change> = BTreeMap::new();
        let mut replayed = 0u64;
        let mut reset = false;
        if after >= upto {
            return Ok((changes, replayed, reset));
        }
        let _no_compaction = self.compaction.lock();
        let seg_dir = table_dir(&self.root, table).join(SEGMENTS_DIR);
        // The live set, the last plain segment up to what has been handed to it.
        let live: Vec<(PathBuf, Option<u64>)> = {
            let mut io = self.io.lock();
            let compacted = io.compacted.get(table).copied();
            let Some(writer) = io.segments.get_mut(table) else {
                return Ok((changes, replayed, reset));
            };
            writer.flush(&seg_dir.join(segment::segment_name(writer.id)))?;
            let last_len = writer.file.len();
            let first = compacted.map_or(1, |c| c.first);
            let mut files: Vec<(PathBuf, Option<u64>)> = compacted
                .map(|c| compacted_paths(&seg_dir, &c))
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p, None))
                .collect();
            files.extend(plain_paths(&seg_dir, first, writer.id).into_iter().map(|p| (p, None)));
            if let Some(last) = files.last_mut() {
                last.1 = Some(last_len);
            }
            files
        };
        let mut firsts = Vec::with_capacity(live.len());
        for (path, trusted) in &live {
            firsts.push(first_seq(fs, path, *trusted)?);
        }
        let start = firsts.iter().rposition(|f| f.is_some_and(|f| f <= after)).unwrap_or(0);
        let end = firsts.iter().rposition(|f| f.is_some_and(|f| f <= upto));
        let Some(end) = end else { return Ok((changes, replayed, reset)) };
        for (path, trusted) in live.get(start..=end).unwrap_or_default() {
            visit_segment(fs, path, *trusted, &mut |at, fr, _| {
                if fr.seq <= after || fr.seq > upto {
                    return Ok(());
                }
                let event = segment::decode_payload(table, fr.kind, fr.payload)
                    .map_err(|e| Error::corrupt(path, at, e))?;
                replayed += 1;
                // Read from a segment: the body is decoded, and this only shares it.
                let body = event.body()?;
                match (event.kind, event.key) {
                    (EventType::CreateTable | EventType::DropTable, _) => {
                        changes.clear();
                        reset = true;
                    }
                    (EventType::Insert, Some(key)) => {
                        changes.insert(key, Change::Set(Some(body)));
                    }
                    (EventType::SoftDelete, Some(key)) => {
                        changes.insert(key, Change::Set(None));
                    }
                    (EventType::Patch, Some(key)) => fold_patch(&mut changes, key, body, path, at)?,
                    _ => {}
                }
                Ok(())
            })?;
        }
        Ok((changes, replayed, reset))
    }
}

fn fold_patch(
    changes: &mut BTreeMap<Key, Change>,
    key: Key,
    patch: Arc<Value>,
    path: &Path,
    at: u64,
) -> Result<()> {
    match changes.get_mut(&key) {
        None => {
            changes.insert(key, Change::Patches(vec![patch]));
        }
        Some(Change::Patches(patches)) => patches.push(patch),
        Some(Change::Set(Some(doc))) => Arc::make_mut(doc).merge_patch(&patch),
        Some(Change::Set(None)) => {
            return Err(Error::corrupt(path, at, format!("PATCH of key {key}, which is not live")));
        }
    }
    Ok(())
}
