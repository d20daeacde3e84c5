//! [`restore`]: a backup (and its chain of bases) into a new database directory, whole or up to
//! a seq or a time (point-in-time restore).
//!
//! **Steps.** Verify the backup and its chain (any problem refuses the restore before anything
//! is written); check the target is absent or empty; rebuild every file from the chain; for a
//! point-in-time restore at N, rewrite the tables' live sets to hold exactly the events with
//! seq <= N (below); write the files, each fsynced, then the directories; finally open the
//! restored database once (which checks every frame, replays nothing, and writes the derived
//! files) and check it ends at the seq asked for.
//!
//! **Point in time.** A table's live set is in seq order and seqs strictly increase from file
//! to file, so the events up to N are a prefix of it:
//! - a file whose frames are all <= N is kept as it is (byte for byte);
//! - the plain segment holding the first frame > N is cut before that frame;
//! - a compressed segment holding the first frame > N is written again, compressed, from its
//!   frames <= N (same blocks builder and trailer as compaction);
//! - later files are dropped; a table with no event <= N is dropped whole;
//! - N below a table's retention horizon (its history before it was folded away, see
//!   `retention.rs`) refuses the restore with [`Error::BeforeRetention`];
//! - a compacted table left with no plain segment gets an empty (header-only) plain segment
//!   numbered as the first after its compacted set, as the checkpoint format requires.
//!
//! The new `CHECKPOINT` names seq N, the commit time of N and these files and lengths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::backup::manifest::{self, Manifest};
use crate::backup::{prepare_empty_dir, write_file_durable};
use crate::db::{AsOf, Database, Options};
use crate::error::{Error, Result};
use crate::storage::checkpoint::{CHECKPOINT_FILE, Checkpoint, SegmentPos};
use crate::storage::compressed::{self, BLOCK_RAW_BYTES_TARGET, BlockBuilder, Summary};
use crate::storage::frame::{FILE_HEADER_BYTES, FileHeader, SEGMENT_MAGIC};
use crate::storage::fs::{Fs, OsFs};
use crate::storage::segment::{self, SEGMENTS_DIR};
use crate::storage::segment_set::{compacted_paths, plain_paths};

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The restored database directory.
    pub path: PathBuf,
    /// The last transaction in it.
    pub seq: u64,
    /// Its commit time (Unix ms; 0 when the database is empty).
    pub unix_ms: u64,
    /// The backup's own seq (the restore's is lower for a point-in-time restore).
    pub backup_seq: u64,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

impl std::fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "restored seq {} (backup at seq {}) into {}: {} files, {} bytes",
            self.seq,
            self.backup_seq,
            self.path.display(),
            self.files,
            self.bytes
        )
    }
}

/// Restore the backup in `backup_dir` into `target_dir` (absent or empty): the whole backup,
/// or with `upto` only the transactions up to a seq ([`AsOf::Seq`]) or a commit time
/// ([`AsOf::UnixMs`]: the last seq committed at or before it). The result opens with
/// [`Database::open`] and answers like the source `AS OF` that seq.
///
/// Errors: [`Error::Corrupt`] when the backup or its chain fails verification (nothing is
/// written), [`Error::InvalidInput`] when the target is not empty, [`Error::FutureSeq`] for a
/// seq after the backup's, I/O errors.
///
/// An encrypted backup needs its key: [`Error::KeyRequired`] here, see [`restore_with_key`].
pub fn restore(backup_dir: &Path, target_dir: &Path, upto: Option<AsOf>) -> Result<RestoreReport> {
    if OsFs.exists(&backup_dir.join(crate::crypto::ENCRYPTION_FILE)) {
        return Err(Error::KeyRequired { path: backup_dir.to_path_buf() });
    }
    restore_with(std::sync::Arc::new(OsFs), backup_dir, target_dir, upto)
}

/// [`restore`] of an encrypted backup with its key (checked first: [`Error::WrongKey`]). The
/// restored database is encrypted under the same key and database id.
pub fn restore_with_key(
    backup_dir: &Path,
    target_dir: &Path,
    upto: Option<AsOf>,
    key: &crate::crypto::EncryptionKey,
) -> Result<RestoreReport> {
    let efs = crate::crypto::rekey::backup_fs(std::sync::Arc::new(OsFs), backup_dir, key)?;
    // Files are written through the sealing file system; the restored database is opened on
    // the plain one with the key (it seals by itself).
    let plain: std::sync::Arc<dyn Fs> = efs.inner().clone();
    restore_impl(std::sync::Arc::new(efs), Some((plain, key)), backup_dir, target_dir, upto)
}

/// [`restore`] through a given file system (the restored database is opened through it too).
pub fn restore_with(
    fs_handle: std::sync::Arc<dyn Fs>,
    backup_dir: &Path,
    target_dir: &Path,
    upto: Option<AsOf>,
) -> Result<RestoreReport> {
    restore_impl(fs_handle, None, backup_dir, target_dir, upto)
}

/// The file system and key the restored database is opened with, when encrypted.
type OpenWith<'k> = Option<(std::sync::Arc<dyn Fs>, &'k crate::crypto::EncryptionKey)>;

fn restore_impl(
    fs_handle: std::sync::Arc<dyn Fs>,
    encrypted: OpenWith<'_>,
    backup_dir: &Path,
    target_dir: &Path,
    upto: Option<AsOf>,
) -> Result<RestoreReport> {
    let fs = fs_handle.as_ref();
    manifest::verify_with(fs, backup_dir)?.into_result()?;
    let top = Manifest::load(fs, backup_dir)?;
    let backup_seq = top.seq;
    let mut problems = Vec::new();
    let chain = manifest::load_chain(fs, backup_dir, top, &mut problems);
    if let Some(p) = problems.first() {
        return Err(Error::corrupt(&p.file, 0, p.reason.clone()));
    }
    let mut files = BTreeMap::new();
    if let Some((_, m)) = chain.first() {
        for entry in &m.files {
            files.insert(entry.path.clone(), manifest::rebuild(fs, &chain, 0, entry)?);
        }
    }
    let cp_path = backup_dir.join(CHECKPOINT_FILE);
    let cp_bytes = files.get(CHECKPOINT_FILE).ok_or_else(|| {
        Error::corrupt(&cp_path, 0, "the backup's manifest does not list a CHECKPOINT")
    })?;
    let cp = Checkpoint::decode(&cp_path, cp_bytes)?;
    let seq = match upto {
        None | Some(AsOf::Now) => cp.seq,
        Some(AsOf::Seq(n)) if n > cp.seq => {
            return Err(Error::FutureSeq { requested: n, latest: cp.seq });
        }
        Some(AsOf::Seq(n)) => n,
        Some(AsOf::UnixMs(t)) => seq_at_time(backup_dir, &cp, &files, t)?,
    };
    if seq < cp.seq {
        files = cut_at(backup_dir, &cp, files, seq)?;
    }
    let unix_ms = match files.get(CHECKPOINT_FILE) {
        Some(bytes) => Checkpoint::decode(&cp_path, bytes)?.unix_ms,
        None => 0,
    };
    prepare_empty_dir(fs, target_dir)?;
    let mut dirs = BTreeSet::new();
    let mut bytes = 0;
    // The key-check file of an encrypted backup first: it roots the sealed files after it.
    let key_check = crate::crypto::ENCRYPTION_FILE;
    let ordered = files.iter().filter(|(rel, _)| *rel == key_check);
    for (rel, data) in ordered.chain(files.iter().filter(|(rel, _)| *rel != key_check)) {
        write_file_durable(fs, target_dir, &target_dir.join(rel), data, &mut dirs)?;
        bytes += data.len() as u64;
    }
    for d in ["tables", "migrations", "migrations/pending", "backups"] {
        crate::commit::create_dir_durable(fs, &target_dir.join(d))?;
    }
    for d in &dirs {
        fs.sync_dir(d).map_err(|e| Error::io(d, e))?;
    }
    let (open_fs, key) = match encrypted {
        Some((plain, key)) => (plain, Some(key.clone())),
        None => (fs_handle.clone(), None),
    };
    let options = Options {
        create_if_missing: false,
        fs: open_fs,
        encryption_key: key,
        ..Options::default()
    };
    let db = Database::open_with(target_dir, options)?;
    let opened = db.last_seq();
    db.close()?;
    if opened != seq {
        return Err(Error::corrupt(
            target_dir.join(CHECKPOINT_FILE),
            0,
            format!("the restored database ends at seq {opened}, not at seq {seq}"),
        ));
    }
    Ok(RestoreReport {
        path: target_dir.to_path_buf(),
        seq,
        unix_ms,
        backup_seq,
        files: files.len(),
        bytes,
    })
}

/// A table's live set in history order: relative paths and the trusted length of each.
fn live_set(table: &str, pos: &SegmentPos) -> Vec<(String, Option<u64>)> {
    let seg_dir = PathBuf::from(format!("tables/{table}/{SEGMENTS_DIR}"));
    let first = pos.compacted.map_or(1, |c| c.first);
    let mut paths = pos.compacted.map(|c| compacted_paths(&seg_dir, &c)).unwrap_or_default();
    paths.extend(plain_paths(&seg_dir, first, pos.segment));
    let count = paths.len();
    paths
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let rel = p.to_string_lossy().replace('\\', "/");
            (rel, if i + 1 == count { Some(pos.len) } else { None })
        })
        .collect()
}

/// One file's bytes from the rebuilt backup.
fn file<'a>(dir: &Path, files: &'a BTreeMap<String, Vec<u8>>, rel: &str) -> Result<&'a Vec<u8>> {
    files.get(rel).ok_or_else(|| {
        Error::corrupt(dir.join(rel), 0, "segment named by the backup's checkpoint is missing")
    })
}

/// The last seq committed at or before `t`, from the frames of the backup.
fn seq_at_time(
    dir: &Path,
    cp: &Checkpoint,
    files: &BTreeMap<String, Vec<u8>>,
    t: u64,
) -> Result<u64> {
    let mut best = 0;
    for (table, pos) in &cp.tables {
        for (rel, trusted) in live_set(table, pos) {
            let data = file(dir, files, &rel)?;
            let path = dir.join(&rel);
            let len = trusted.unwrap_or(data.len() as u64);
            segment::visit_frames(&path, data, len, &mut |_, f, _| {
                if f.unix_ms <= t {
                    best = best.max(f.seq);
                }
                Ok(())
            })?;
        }
    }
    Ok(best)
}

/// The files of the database holding only the transactions up to `n` (< the checkpoint's).
fn cut_at(
    dir: &Path,
    cp: &Checkpoint,
    mut files: BTreeMap<String, Vec<u8>>,
    n: u64,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut tables = BTreeMap::new();
    let mut unix_ms = 0;
    for (table, pos) in &cp.tables {
        if let Some(c) = pos.compacted.filter(|c| c.horizon > n) {
            return Err(before_retention(dir, &files, table, pos, c.horizon, n));
        }
        let mut compacted_kept = 0u32;
        let mut plain_kept: Option<(u32, u64)> = None;
        let first_plain = pos.compacted.map_or(1, |c| c.first);
        let live = live_set(table, pos);
        let plain_count = pos.segment.saturating_sub(first_plain) as usize + 1;
        let compacted_count = live.len().saturating_sub(plain_count);
        for (i, (rel, trusted)) in live.into_iter().enumerate() {
            let data = files.remove(&rel).ok_or_else(|| {
                Error::corrupt(
                    dir.join(&rel),
                    0,
                    "segment named by the backup's checkpoint is missing",
                )
            })?;
            let path = dir.join(&rel);
            let len = trusted.unwrap_or(data.len() as u64);
            let mut keep_end = FILE_HEADER_BYTES as u64;
            let mut kept_frames: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut all_kept = true;
            segment::visit_frames(&path, &data, len, &mut |at, f, bytes| {
                if f.seq <= n {
                    keep_end = at + bytes.len() as u64;
                    kept_frames.push((f.seq, bytes.to_vec()));
                    unix_ms = unix_ms.max(f.unix_ms);
                } else {
                    all_kept = false;
                }
                Ok(())
            })?;
            if kept_frames.is_empty() {
                break; // this file and every later one hold only seqs after n
            }
            let is_compacted = i < compacted_count;
            let kept = if is_compacted {
                compacted_kept += 1;
                if all_kept { data } else { recompress(&path, &kept_frames)? }
            } else {
                let id = first_plain + (i - compacted_count) as u32;
                plain_kept = Some((id, keep_end));
                let mut data = data;
                data.truncate(keep_end as usize);
                data
            };
            out.insert(rel, kept);
            if !all_kept {
                break;
            }
        }
        if compacted_kept == 0 && plain_kept.is_none() {
            continue; // the table did not exist yet at n
        }
        let compacted = pos.compacted.map(|mut c| {
            c.segments = compacted_kept;
            c
        });
        let (segment, len) = match plain_kept {
            Some(kept) => kept,
            None => {
                let rel =
                    format!("tables/{table}/{SEGMENTS_DIR}/{}", segment::segment_name(first_plain));
                out.insert(rel, FileHeader::new(SEGMENT_MAGIC).encode().to_vec());
                (first_plain, FILE_HEADER_BYTES as u64)
            }
        };
        tables.insert(table.clone(), SegmentPos { segment, len, compacted });
    }
    let cp = Checkpoint { seq: n, unix_ms, tables };
    out.insert(CHECKPOINT_FILE.to_owned(), cp.encode()?);
    for (rel, data) in files {
        if !rel.starts_with("tables/") && rel != CHECKPOINT_FILE {
            out.insert(rel, data); // the (empty) WAL
        }
    }
    Ok(out)
}

/// The error for a restore to seq `n`, before the retention horizon of `table`; the policy is
/// read from the base's CREATE, the first event of the table's live set.
fn before_retention(
    dir: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    table: &str,
    pos: &SegmentPos,
    horizon: u64,
    n: u64,
) -> Error {
    let policy = live_set(table, pos).into_iter().next().and_then(|(rel, trusted)| {
        let data = files.get(&rel)?;
        let len = trusted.unwrap_or(data.len() as u64);
        let events = segment::scan(&dir.join(&rel), table, data, len).ok()?;
        let schema: crate::TableSchema =
            crate::value::from_value(&*events.first()?.event.body().ok()?).ok()?;
        schema.retention_ms
    });
    Error::BeforeRetention {
        table: table.to_owned(),
        seq: n,
        oldest: horizon,
        retention: policy.map_or_else(|| "none".to_owned(), crate::retention::format_retention),
    }
}

/// A compressed segment holding `frames` (whole encoded frames, in seq order).
fn recompress(path: &Path, frames: &[(u64, Vec<u8>)]) -> Result<Vec<u8>> {
    let io = |e| Error::io(path, e);
    let mut builder = BlockBuilder::new(BLOCK_RAW_BYTES_TARGET).map_err(io)?;
    let mut out = compressed::file_header().to_vec();
    let mut summary = Summary::default();
    for (seq, bytes) in frames {
        if let Some(block) = builder.push(bytes, *seq).map_err(|e| Error::io(path, e))? {
            summary.add(&block);
            out.extend_from_slice(&block.bytes);
        }
    }
    if let Some(block) = builder.finish().map_err(|e| Error::io(path, e))? {
        summary.add(&block);
        out.extend_from_slice(&block.bytes);
    }
    out.extend_from_slice(&summary.trailer());
    Ok(out)
}
