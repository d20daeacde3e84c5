//! Table compaction: [`Database::compact_table`] rewrites a table's segments into fewer,
//! zstd-compressed ones and loses no history.
//!
//! **Layout.** A table's history is its *live set* (see [`crate::storage::segment_set`]): the
//! compacted segments `compacted-G-1.seg ..= compacted-G-k.seg` of generation G, if the table
//! was ever compacted, then the plain segments `first..=last` (before any compaction `first` is
//! 1). The checkpoint names the set (`compacted: {generation, segments, first}`). A compaction
//! turns the current compacted set and every *sealed* plain segment (all but the one commits
//! append to) into generation G+1, compressed segments of the format in
//! [`crate::storage::compressed`], each at most `segment_size_bytes_max` bytes (a file may pass
//! it by the part of one transaction; blocks are cut at `compaction_block_bytes`).
//!
//! **Invariants.**
//! - Every frame is copied byte for byte: the same seq, commit time, type and payload, in the
//!   same order. Every `AS OF` answer, history and scan is the same before and after; the
//!   in-memory state is not touched at all. The one exception is a *retention fold* (see
//!   [`crate::retention`]): when the table's policy allows, the new set starts with a base at
//!   the horizon H and holds only the frames after H; the state is folded to match at the
//!   switch (step 3, under the writer lock, before the checkpoint), the checkpoint records H,
//!   and reads before H are refused from then on.
//! - Seqs strictly increase from one file of a live set to the next, so the old and the new
//!   set can never both be counted; recovery checks it.
//! - A `compacted-*.seg` name exists only for a complete (trailer written), fsynced file, and
//!   that name is durable before any checkpoint names it.
//! - Files of a live set are never modified; a file leaves the live set only through an
//!   atomically replaced `CHECKPOINT`, and is removed only after that checkpoint is durable.
//!
//! **Steps, locks and fsync order.**
//! 1. *Seal* (the I/O lock, for about one file creation). Hand the open plain segment's buffer
//!    to its file and rotate to plain segment N+1, created and named durably (fsync of
//!    `segments/`) like any rotation; commits append there from now on. (When the open
//!    segment holds no event, it stays open and the segments before it are sealed.) The
//!    inputs are the compacted set and plain segments `first..=N`, never written again.
//! 2. *Write* (no lock; commits and reads run on). Read the inputs, check every frame (CRC,
//!    seq order), pack the frames into blocks and the blocks into
//!    `compacted-(G+1)-n.seg.tmp`: header, blocks, trailer, `fdatasync`, per file. Then rename
//!    each to `compacted-(G+1)-n.seg` and fsync `segments/`. Why: a final name appears only for
//!    a complete, durable file, and the names are durable before step 3 refers to them.
//! 3. *Switch* (the writer lock, then the I/O lock; commits wait, reads do not). Stop new
//!    commits from taking a seq, wait until every commit that has one is durable and in the
//!    segments, record generation G+1 with `first = N+1` and write a checkpoint at the last
//!    seq: fsync the written segments, write `CHECKPOINT.tmp`, fsync, rename over
//!    `CHECKPOINT`, fsync the database directory, reset the WAL. The rename is the commit
//!    point of the compaction. Why the writer lock: a checkpoint must record segment lengths
//!    that hold exactly the transactions up to its seq.
//! 4. *Retire* (no lock). Remove the old compacted set and plain segments `first..=N`, fsync
//!    `segments/`.
//!
//! **Recovery** after a crash at any point (the rules of
//! [`crate::storage::segment_set::table_files`]; the checkpoint names one generation and one
//! plain range, so the old and the new set are never mixed):
//!
//! | crash during | the durable checkpoint | on open |
//! |---|---|---|
//! | 1, 2 | the old one | old set used; the new plain segment N+1 and every `compacted-(G+1)-*` file (final or `.tmp`) removed; the WAL replays what was after the checkpoint |
//! | 3, before the rename of `CHECKPOINT` is durable | the old one | as above |
//! | 3 after it, or 4 | the new one | new set used; the old compacted set and plain segments before N+1 removed |
//!
//! **Concurrency.** Readers never wait for a compaction: they read the in-memory state, which
//! it does not change. Commits are blocked briefly: during step 1 (one segment creation) and
//! step 3 (draining the commits already sequenced, then one checkpoint); step 2, the long
//! one, runs beside them. Compactions run one at a time.
//!
//! **Failures.** A failure in step 1 or 3 poisons the engine like any failed segment write or
//! checkpoint: after a failed fsync nothing can be assumed, and recovery sorts it out from
//! whichever checkpoint is durable (old files are then kept). A failure in step 2 abandons
//! the new files (removed, best effort; at the latest by the next open) and leaves the
//! database as it was, not poisoned: nothing refers to those files. A failure in step 4 is
//! reported, but the compaction has taken effect; a failed fsync there poisons, and the next
//! open removes what is left of the old files.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::commit::{create_segment, table_dir};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::schema::validate_table_name;
use crate::storage::checkpoint::CompactedSet;
use crate::storage::compressed::{self, Block, BlockBuilder, Summary, TRAILER_BYTES};
use crate::storage::frame::FILE_HEADER_BYTES;
use crate::storage::fs::{Fs, FsFile};
use crate::storage::segment::{self, SEGMENTS_DIR};
use crate::storage::segment_set::{
    compacted_name, compacted_paths, is_compaction_tmp, parse_compacted_name, plain_paths, tmp_name,
};

/// What a compaction did. The segment and byte counts are of the files it rewrote (the old
/// compacted set and the sealed plain segments) and of the files it wrote; the plain segment
/// that receives new commits is in neither.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// The table.
    pub table: String,
    /// Segment files rewritten (0 when there was nothing to compact).
    pub segments_before: usize,
    /// Their total size in bytes.
    pub bytes_before: u64,
    /// Compressed segment files written.
    pub segments_after: usize,
    /// Their total size in bytes.
    pub bytes_after: u64,
    /// Events (frames) in the files written: every event of the table up to the seal.
    pub events: u64,
    /// Wall-clock time of the whole compaction.
    pub duration: Duration,
    /// The retention horizon this compaction folded the table's history to, if it folded
    /// (see `retention.rs`): the oldest seq the table can now be read at.
    pub folded_to: Option<u64>,
}

impl std::fmt::Display for CompactionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.segments_before == 0 {
            return write!(f, "table `{}`: nothing to compact", self.table);
        }
        write!(
            f,
            "table `{}`: {} segments ({} bytes) -> {} compressed segments ({} bytes), \
             {} events, {:.1} ms",
            self.table,
            self.segments_before,
            self.bytes_before,
            self.segments_after,
            self.bytes_after,
            self.events,
            self.duration.as_secs_f64() * 1000.0
        )?;
        if let Some(h) = self.folded_to {
            write!(f, "; history before seq {h} folded into a base (retention)")?;
        }
        Ok(())
    }
}

/// What step 1 decided.
#[derive(Debug)]
struct Plan {
    table: String,
    seg_dir: PathBuf,
    /// The files to rewrite, in history order.
    inputs: Vec<PathBuf>,
    /// The generation to write.
    generation: u32,
    /// The first plain segment after the new compacted set.
    first: u32,
    /// The horizon of the old compacted set (0: none).
    old_horizon: u64,
    /// The clock reading retention windows are measured from.
    now_ms: u64,
}

/// What step 2 wrote.
#[derive(Debug)]
struct Written {
    files: Vec<PathBuf>,
    bytes_before: u64,
    bytes_after: u64,
    events: u64,
    /// The horizon of the new set, and whether this compaction moved it.
    horizon: u64,
    folded: bool,
}

impl Database {
    /// Rewrite the segments of `table` (live or dropped) into fewer, zstd-compressed segments,
    /// keeping every event with its seq and commit time: every read `AS OF` any seq, every
    /// history and every scan answers the same afterwards. New commits go on to a plain
    /// segment as before. Readers are never blocked; commits wait only for two short steps.
    /// Crash-safe at every point: see the module documentation of `compaction.rs`.
    ///
    /// Errors: [`Error::InvalidInput`] for a bad name, [`Error::NoSuchTable`] when the table
    /// was never created, [`Error::Poisoned`] after an earlier write failure, I/O errors.
    pub fn compact_table(&self, table: &str) -> Result<CompactionReport> {
        self.compact_table_at(table, crate::commit::now_ms())
    }

    /// [`Database::compact_table`] with retention windows measured back from `now_ms` instead
    /// of the clock (for tests that fold at chosen points of a history).
    #[doc(hidden)]
    pub fn compact_table_at(&self, table: &str, now_ms: u64) -> Result<CompactionReport> {
        let started = Instant::now();
        validate_table_name(table)?;
        let _one_at_a_time = self.compaction.lock();
        self.check_poison()?;
        let Some(plan) = self.seal(table, now_ms)? else {
            return Ok(CompactionReport {
                table: table.to_owned(),
                segments_before: 0,
                bytes_before: 0,
                segments_after: 0,
                bytes_after: 0,
                events: 0,
                duration: started.elapsed(),
                folded_to: None,
            });
        };
        let written = match write_set(self, &plan) {
            Ok(written) => written,
            Err(e) => {
                abandon(self.fs.as_ref(), &plan);
                return Err(e);
            }
        };
        self.switch(&plan, &written)?;
        self.retire(&plan)?;
        if written.folded {
            crate::retention::drop_snapshots(self, &plan.table)?;
        }
        Ok(CompactionReport {
            table: plan.table,
            segments_before: plan.inputs.len(),
            bytes_before: written.bytes_before,
            segments_after: written.files.len(),
            bytes_after: written.bytes_after,
            events: written.events,
            duration: started.elapsed(),
            folded_to: written.folded.then_some(written.horizon),
        })
    }

    /// Mark the engine poisoned by `cause` (a write-path failure).
    pub(crate) fn poison(&self, cause: String) {
        self.queue.lock().poisoned.get_or_insert(cause);
        self.poisoned.store(true, Ordering::Release);
    }

    /// Step 1: rotate the table's open plain segment (unless it is empty) and list the inputs.
    /// `None` when no plain segment has been sealed since the last compaction.
    fn seal(&self, table: &str, now_ms: u64) -> Result<Option<Plan>> {
        let fs = self.fs.as_ref();
        let seg_dir = table_dir(&self.root, table).join(SEGMENTS_DIR);
        let mut io = self.io.lock();
        let old = io.compacted.get(table).copied();
        let first = old.map_or(1, |c| c.first);
        let Some(writer) = io.segments.get_mut(table) else {
            return Err(Error::NoSuchTable { table: table.to_owned() });
        };
        let open_id = writer.id;
        let has_events = writer.file.len() + writer.buffer.len() as u64 > FILE_HEADER_BYTES as u64;
        let next_first = if has_events { open_id + 1 } else { open_id };
        if next_first == first {
            return Ok(None);
        }
        if has_events {
            let rotated = (|| {
                if !writer.buffer.is_empty() {
                    let path = seg_dir.join(segment::segment_name(open_id));
                    writer.file.append(&writer.buffer).map_err(|e| Error::io(&path, e))?;
                    writer.buffer.clear();
                }
                let next = create_segment(fs, &self.root, table, next_first)?;
                Ok::<_, Error>(std::mem::replace(writer, next))
            })();
            let sealed = match rotated {
                Ok(sealed) => sealed,
                Err(e) => {
                    self.poison(format!("compaction could not rotate a segment: {e}"));
                    return Err(e);
                }
            };
            if sealed.dirty {
                io.rotated.push(sealed.file);
            }
        }
        let mut inputs = old.map(|c| compacted_paths(&seg_dir, &c)).unwrap_or_default();
        inputs.extend(plain_paths(&seg_dir, first, next_first - 1));
        let generation = old.map_or(1, |c| c.generation + 1);
        Ok(Some(Plan {
            table: table.to_owned(),
            seg_dir,
            inputs,
            generation,
            first: next_first,
            old_horizon: old.map_or(0, |c| c.horizon),
            now_ms,
        }))
    }

    /// Step 3: make the new set the table's live set with a checkpoint.
    fn switch(&self, plan: &Plan, written: &Written) -> Result<()> {
        let writer = self.writer.lock();
        loop {
            let queue = self.queue.lock();
            if let Some(cause) = &queue.poisoned {
                let e = Error::Poisoned { cause: cause.clone() };
                drop(queue);
                abandon(self.fs.as_ref(), plan);
                return Err(e);
            }
            if queue.durable_seq >= writer.last_seq {
                break;
            }
            drop(queue);
            std::thread::sleep(Duration::from_micros(20));
        }
        if written.folded {
            // Lock order as commits: writer, then state (never state under the I/O lock).
            // Readers see the fold now: the old segments still hold the whole history, so a
            // read from them in between gives the same answers at every seq from the horizon.
            if let Err(e) = self.state.write().fold_table(&plan.table, written.horizon) {
                // Nothing switched yet: the state is unchanged (a fold is all or nothing) and
                // the new files are not named by the checkpoint.
                abandon(self.fs.as_ref(), plan);
                return Err(e);
            }
        }
        let mut io = self.io.lock();
        let segments = u32::try_from(written.files.len())
            .map_err(|_| Error::invalid("too many compacted segments"))?;
        let set = CompactedSet {
            generation: plan.generation,
            segments,
            first: plan.first,
            horizon: written.horizon,
        };
        io.compacted.insert(plan.table.clone(), set);
        if let Some(w) = io.segments.get_mut(&plan.table) {
            w.dirty = true; // so that the checkpoint is not skipped as having nothing to do
        }
        if let Err(e) = io.checkpoint(self, writer.last_seq, writer.last_ms) {
            self.poison(format!("checkpoint of a compaction failed: {e}"));
            return Err(e);
        }
        Ok(())
    }

    /// Step 4: remove the files the new checkpoint no longer names.
    fn retire(&self, plan: &Plan) -> Result<()> {
        let fs = self.fs.as_ref();
        for path in &plan.inputs {
            fs.remove_file(path).map_err(|e| Error::io(path, e))?;
        }
        if let Err(e) = fs.sync_dir(&plan.seg_dir) {
            let e = Error::io(&plan.seg_dir, e);
            self.poison(format!("fsync after a compaction failed: {e}"));
            return Err(e);
        }
        Ok(())
    }
}

/// Step 2: write generation `plan.generation` from the inputs, durably named.
fn write_set(db: &Database, plan: &Plan) -> Result<Written> {
    let fs = db.fs.as_ref();
    remove_leftovers(fs, plan)?;
    let mut files = SetWriter {
        fs,
        plan,
        limit: db.options.segment_size_bytes_max,
        open: None,
        done: Vec::new(),
        bytes: 0,
        events: 0,
    };
    let mut builder = BlockBuilder::new(db.options.compaction_block_bytes)
        .map_err(|e| Error::io(&plan.seg_dir, e))?;
    let base = crate::retention::plan_fold(db, plan.old_horizon, plan.now_ms, &plan.table, || {
        last_input_seq(fs, plan)
    })?;
    let horizon = base.as_ref().map_or(plan.old_horizon, |b| b.horizon);
    if let Some(base) = &base {
        for frame in &base.frames {
            match builder.push(frame, base.horizon) {
                Ok(Some(block)) => files.add(block)?,
                Ok(None) => {}
                Err(e) => return Err(Error::io(&plan.seg_dir, e)),
            }
        }
    }
    let mut last_seq: Option<u64> = None;
    let mut bytes_before = 0;
    for path in &plan.inputs {
        let data = fs.read(path).map_err(|e| Error::io(path, e))?;
        bytes_before += data.len() as u64;
        let mut first_in_file = true;
        segment::visit_frames(path, &data, data.len() as u64, &mut |at, frame, bytes| {
            if first_in_file
                && let Some(previous) = last_seq
                && frame.seq <= previous
            {
                return Err(Error::corrupt(
                    path,
                    at,
                    format!("seq {} follows seq {previous} of the previous segment", frame.seq),
                ));
            }
            first_in_file = false;
            last_seq = Some(frame.seq);
            if base.is_some() && frame.seq <= horizon {
                return Ok(()); // folded into the base
            }
            match builder.push(bytes, frame.seq) {
                Ok(Some(block)) => files.add(block),
                Ok(None) => Ok(()),
                Err(e) => Err(Error::io(&plan.seg_dir, e)),
            }
        })?;
    }
    if let Some(block) = builder.finish().map_err(|e| Error::io(&plan.seg_dir, e))? {
        files.add(block)?;
    }
    let (paths, bytes_after, events) = files.finish()?;
    Ok(Written { files: paths, bytes_before, bytes_after, events, horizon, folded: base.is_some() })
}

/// The last seq in the inputs (a first pass over them, made only when a fold is possible):
/// a fold never reaches past what the sealed inputs hold.
fn last_input_seq(fs: &dyn Fs, plan: &Plan) -> Result<u64> {
    let mut last = 0;
    for path in &plan.inputs {
        let data = fs.read(path).map_err(|e| Error::io(path, e))?;
        segment::visit_frames(path, &data, data.len() as u64, &mut |_, frame, _| {
            last = last.max(frame.seq);
            Ok(())
        })?;
    }
    Ok(last)
}

/// Remove what an earlier failed attempt may have left: files of the generation about to be
/// written, and temporary files.
fn remove_leftovers(fs: &dyn Fs, plan: &Plan) -> Result<()> {
    let names = fs.list(&plan.seg_dir).map_err(|e| Error::io(&plan.seg_dir, e))?;
    for name in names {
        let ours = is_compaction_tmp(&name)
            || parse_compacted_name(&name).is_some_and(|(g, _)| g == plan.generation);
        if ours {
            let path = plan.seg_dir.join(&name);
            fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// Remove the files of an abandoned generation, best effort: the next open removes whatever
/// is left, since no checkpoint names them.
fn abandon(fs: &dyn Fs, plan: &Plan) {
    let _ = remove_leftovers(fs, plan);
}

/// A compressed segment being written.
struct OpenFile {
    tmp: PathBuf,
    file: Box<dyn FsFile>,
    summary: Summary,
}

/// Writes blocks into the files of a new compacted set.
struct SetWriter<'a> {
    fs: &'a dyn Fs,
    plan: &'a Plan,
    limit: u64,
    open: Option<OpenFile>,
    /// Finished temporary files, in order.
    done: Vec<PathBuf>,
    bytes: u64,
    events: u64,
}

impl SetWriter<'_> {
    fn add(&mut self, block: Block) -> Result<()> {
        if let Some(open) = &self.open {
            let size = open.file.len() + (block.bytes.len() + TRAILER_BYTES) as u64;
            // Cut only between seqs: a transaction's events stay in one file.
            if size > self.limit && block.first_seq > open.summary.last_seq {
                self.close()?;
            }
        }
        let open = match &mut self.open {
            Some(open) => open,
            None => self.open.insert(self.create()?),
        };
        open.file.append(&block.bytes).map_err(|e| Error::io(&open.tmp, e))?;
        open.summary.add(&block);
        Ok(())
    }

    fn final_path(&self, n: usize) -> PathBuf {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.plan.seg_dir.join(compacted_name(self.plan.generation, n))
    }

    fn create(&self) -> Result<OpenFile> {
        let name = compacted_name(self.plan.generation, (self.done.len() + 1) as u32);
        let tmp = self.plan.seg_dir.join(tmp_name(&name));
        let mut file = self.fs.open_append(&tmp, true).map_err(|e| Error::io(&tmp, e))?;
        file.append(&compressed::file_header()).map_err(|e| Error::io(&tmp, e))?;
        Ok(OpenFile { tmp, file, summary: Summary::default() })
    }

    /// Write the open file's trailer and make its bytes durable.
    fn close(&mut self) -> Result<()> {
        let Some(mut open) = self.open.take() else { return Ok(()) };
        let io = |e| Error::io(&open.tmp, e);
        open.file.append(&open.summary.trailer()).map_err(io)?;
        open.file.sync().map_err(|e| Error::io(&open.tmp, e))?;
        self.bytes += open.file.len();
        self.events += open.summary.events;
        self.done.push(open.tmp);
        Ok(())
    }

    /// Close the last file, give every file its final name, and make the names durable.
    /// Returns the final paths, their total size and the events they hold.
    fn finish(mut self) -> Result<(Vec<PathBuf>, u64, u64)> {
        self.close()?;
        let mut paths = Vec::with_capacity(self.done.len());
        for (i, tmp) in self.done.iter().enumerate() {
            let path = self.final_path(i + 1);
            self.fs.rename(tmp, &path).map_err(|e| Error::io(tmp, e))?;
            paths.push(path);
        }
        let dir: &Path = &self.plan.seg_dir;
        self.fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        Ok((paths, self.bytes, self.events))
    }
}
