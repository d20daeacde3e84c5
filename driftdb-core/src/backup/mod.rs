//! Backups: [`Database::backup_to`] (full), [`Database::backup_incremental`], [`verify`] and
//! [`restore`] (optionally point-in-time).
//!
//! **Layout.** A backup directory holds `MANIFEST.json` (see [`manifest`]) and the files of a
//! database at one seq S: `CHECKPOINT` (naming S and each table's live set and lengths), an
//! empty `wal/wal.log`, and every live segment of every table, plain ones cut at the length the
//! checkpoint records. Derived files (`schema.yaml`, `meta.json`) are left out: open rewrites
//! them. A full backup is itself a valid database directory (open a copy, not the backup, or
//! its `LOCK` and derived files make `verify` report strays). An incremental backup stores
//! only what changed since its base: the new files, and the bytes appended to plain segments
//! the base already had; it is restored through its chain of bases.
//!
//! **Consistency while writers go on** (`backup_to`):
//! 1. Take the compaction mutex for the whole backup, so no segment is rewritten or removed
//!    while it is copied.
//! 2. Under the writer lock (commits wait; reads do not), wait until every sequenced commit is
//!    durable, then under the I/O lock write a checkpoint at the last seq S (fsync the segments,
//!    `CHECKPOINT` atomically, reset the WAL) and read that checkpoint back. Every transaction
//!    with seq <= S is now in the segments within the recorded lengths, and none after it.
//!    Release both locks: commits go on.
//! 3. Copy each live file up to its recorded length. Segments are append-only and live files
//!    are removed only by a compaction, which waits for the mutex, so those bytes do not
//!    change while they are read.
//! 4. Write the copies, each fsynced; write the checkpoint bytes and an empty WAL; fsync every
//!    directory written to; then write `MANIFEST.json` atomically. A directory without a
//!    manifest is an incomplete backup, and `verify`/`restore` refuse it.
//!
//! A failed checkpoint in step 2 poisons the engine like any failed checkpoint; a failure in
//! the copy leaves the database as it was and the backup without a manifest.

pub mod manifest;
mod restore;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::commit::{create_dir_durable, now_ms, table_dir};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::storage::checkpoint::{CHECKPOINT_FILE, Checkpoint};
use crate::storage::frame::{FileHeader, WAL_MAGIC};
use crate::storage::fs::{Fs, write_atomic};
use crate::storage::segment::SEGMENTS_DIR;
use crate::storage::segment_set;
use crate::storage::wal::{WAL_DIR, WAL_FILE};

pub use manifest::{
    BaseRef, FileEntry, MANIFEST_FILE, Manifest, Problem, VerifyReport, verify, verify_with,
    verify_with_key,
};
pub use restore::{RestoreReport, restore, restore_with, restore_with_key};

use manifest::sha256_hex;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup directory.
    pub path: PathBuf,
    /// The last transaction in the backup.
    pub seq: u64,
    /// Its commit time (Unix ms; 0 for an empty database).
    pub unix_ms: u64,
    /// Files of the database the backup restores to.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Bytes written into the backup directory (all of them for a full backup).
    pub bytes_copied: u64,
    /// The base of an incremental backup.
    pub base: Option<PathBuf>,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backup at seq {} in {}: {} files, {} bytes",
            self.seq,
            self.path.display(),
            self.files,
            self.bytes
        )?;
        if let Some(base) = &self.base {
            write!(f, " ({} bytes copied; base {})", self.bytes_copied, base.display())?;
        }
        Ok(())
    }
}

/// One file of the database to back up: its relative path and bytes.
struct Captured {
    path: String,
    data: Vec<u8>,
}

impl Database {
    /// Write a consistent full backup of the database into `dir`, which must be absent or
    /// empty, while commits go on (they wait only for one checkpoint). The backup holds
    /// exactly the transactions up to the seq in the report, with a `MANIFEST.json` of
    /// SHA-256 checksums; it is itself a database directory. See the module documentation of
    /// `backup` for the steps.
    ///
    /// Errors: [`Error::InvalidInput`] when `dir` is not empty, [`Error::Poisoned`] after an
    /// earlier write failure, I/O errors.
    pub fn backup_to(&self, dir: &Path) -> Result<BackupReport> {
        self.backup(dir, None)
    }

    /// Write an incremental backup into `dir` that stores only what changed since the backup
    /// in `base` (full or incremental): new segment files whole, and the bytes appended to
    /// plain segments since. Restoring it needs `base` (and its own bases) where they are.
    ///
    /// Errors: as [`Database::backup_to`]; [`Error::Corrupt`] when `base` fails verification.
    pub fn backup_incremental(&self, dir: &Path, base: &Path) -> Result<BackupReport> {
        self.backup(dir, Some(base))
    }

    fn backup(&self, dir: &Path, base: Option<&Path>) -> Result<BackupReport> {
        let fs = self.fs.as_ref();
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid("the backup directory is an empty path"));
        }
        let base = match base {
            Some(base_dir) => {
                let base_dir = absolute(base_dir)?;
                manifest::verify_with(fs, &base_dir)?.into_result()?;
                Some((base_dir.clone(), Manifest::load(fs, &base_dir)?))
            }
            None => None,
        };
        prepare_empty_dir(fs, dir)?;
        create_dir_durable(fs, &dir.join("tables"))?;
        let _no_compaction = self.compaction.lock();
        self.check_poison()?;
        let (cp_bytes, cp) = self.checkpoint_now()?;
        let files = self.capture(&cp)?;
        let mut entries = Vec::new();
        let mut written_dirs = BTreeSet::new();
        let mut bytes_copied = 0;
        // An encrypted database's backup gets its key-check file first: it roots the
        // identities of the sealed files written after it (see `crate::crypto`).
        let key_check = match &self.encryption {
            Some(efs) => {
                let path = self.root.join(crate::crypto::ENCRYPTION_FILE);
                let data = efs.inner().read(&path).map_err(|e| Error::io(&path, e))?;
                vec![Captured { path: crate::crypto::ENCRYPTION_FILE.into(), data }]
            }
            None => Vec::new(),
        };
        let all = key_check.into_iter().chain(files).chain([
            Captured { path: CHECKPOINT_FILE.into(), data: cp_bytes },
            Captured {
                path: format!("{WAL_DIR}/{WAL_FILE}"),
                data: FileHeader::new(WAL_MAGIC).encode().to_vec(),
            },
        ]);
        for file in all {
            let sha256 = sha256_hex(&file.data);
            let base_len = base.as_ref().map_or(0, |(_, m)| unchanged_prefix(m, &file));
            let stored = file.data.get(base_len as usize..).unwrap_or_default();
            if !stored.is_empty() || base_len == 0 {
                let path = dir.join(&file.path);
                write_file_durable(fs, dir, &path, stored, &mut written_dirs)?;
                bytes_copied += stored.len() as u64;
            }
            entries.push(FileEntry {
                path: file.path,
                len: file.data.len() as u64,
                sha256,
                base_len,
                stored_sha256: sha256_hex(stored),
            });
        }
        for d in &written_dirs {
            fs.sync_dir(d).map_err(|e| Error::io(d, e))?;
        }
        let mut manifest = Manifest {
            format_version: manifest::MANIFEST_VERSION,
            seq: cp.seq,
            unix_ms: cp.unix_ms,
            created_unix_ms: now_ms(),
            source: self.root.clone(),
            base: base.as_ref().map(|(d, m)| BaseRef {
                path: d.clone(),
                seq: m.seq,
                manifest_sha256: m.manifest_sha256.clone(),
            }),
            files: entries,
            manifest_sha256: String::new(),
        };
        let json = manifest.seal()?;
        let path = dir.join(MANIFEST_FILE);
        write_atomic(fs, &path, &json).map_err(|e| Error::io(&path, e))?;
        Ok(BackupReport {
            path: dir.to_path_buf(),
            seq: manifest.seq,
            unix_ms: manifest.unix_ms,
            files: manifest.files.len(),
            bytes: manifest.files.iter().map(|f| f.len).sum(),
            bytes_copied,
            base: base.map(|(d, _)| d),
        })
    }

    /// Step 2: a checkpoint at the last sequenced seq, with commits held back; returns the
    /// checkpoint as written.
    fn checkpoint_now(&self) -> Result<(Vec<u8>, Checkpoint)> {
        let writer = self.writer.lock();
        loop {
            let queue = self.queue.lock();
            if let Some(cause) = &queue.poisoned {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            if queue.durable_seq >= writer.last_seq {
                break;
            }
            drop(queue);
            std::thread::sleep(Duration::from_micros(20));
        }
        let mut io = self.io.lock();
        if let Err(e) = io.checkpoint(self, writer.last_seq, writer.last_ms) {
            self.poison(format!("checkpoint for a backup failed: {e}"));
            return Err(e);
        }
        let path = self.root.join(CHECKPOINT_FILE);
        let bytes = self.fs.read(&path).map_err(|e| Error::io(&path, e))?;
        let cp = Checkpoint::decode(&path, &bytes)?;
        if cp.seq != writer.last_seq {
            return Err(Error::corrupt(
                &path,
                0,
                format!(
                    "checkpoint is at seq {} after a checkpoint at {}",
                    cp.seq, writer.last_seq
                ),
            ));
        }
        Ok((bytes, cp))
    }

    /// Step 3: read every live segment up to the length `cp` records.
    fn capture(&self, cp: &Checkpoint) -> Result<Vec<Captured>> {
        let fs = self.fs.as_ref();
        let mut out = Vec::new();
        for (table, pos) in &cp.tables {
            let seg_dir = table_dir(&self.root, table).join(SEGMENTS_DIR);
            for file in segment_set::table_files(fs, &seg_dir, Some(pos))?.live {
                let mut data = fs.read(&file.path).map_err(|e| Error::io(&file.path, e))?;
                if let Some(len) = file.trusted_len {
                    if (data.len() as u64) < len {
                        return Err(Error::corrupt(
                            &file.path,
                            data.len() as u64,
                            format!("segment is shorter than the {len} bytes checkpointed"),
                        ));
                    }
                    data.truncate(len as usize);
                }
                let name = file.path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                out.push(Captured { path: format!("tables/{table}/{SEGMENTS_DIR}/{name}"), data });
            }
        }
        Ok(out)
    }
}

/// How many leading bytes of `file` the base backup already has: all of the base's copy when
/// the file starts with it (a plain segment only grows), else 0. `CHECKPOINT` and the WAL are
/// always stored whole.
fn unchanged_prefix(base: &Manifest, file: &Captured) -> u64 {
    if !file.path.starts_with("tables/") {
        return 0;
    }
    let Some(entry) = base.files.iter().find(|f| f.path == file.path) else { return 0 };
    match file.data.get(..entry.len as usize) {
        Some(prefix) if entry.len > 0 && sha256_hex(prefix) == entry.sha256 => entry.len,
        _ => 0,
    }
}

/// `path` made absolute against the current directory.
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io(Path::new("."), e))?;
    Ok(cwd.join(path))
}

/// Create `dir` (and missing parents) durably, or check that it exists and is empty.
pub(crate) fn prepare_empty_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    if fs.exists(dir) {
        if !fs.is_dir(dir) {
            return Err(Error::invalid(format!("{} exists and is not a directory", dir.display())));
        }
        let names = fs.list(dir).map_err(|e| Error::io(dir, e))?;
        if !names.is_empty() {
            return Err(Error::invalid(format!(
                "{} is not empty: a backup or restore goes into a new or empty directory",
                dir.display()
            )));
        }
        return Ok(());
    }
    let missing: Vec<&Path> =
        dir.ancestors().take_while(|p| !p.as_os_str().is_empty() && !fs.exists(p)).collect();
    for d in missing.into_iter().rev() {
        create_dir_durable(fs, d)?;
    }
    Ok(())
}

/// Write `data` as a new file at `path` under `root`, creating its directories durably, and
/// fsync it. The directory holding it is added to `dirs`, to be fsynced once all are written.
pub(crate) fn write_file_durable(
    fs: &dyn Fs,
    root: &Path,
    path: &Path,
    data: &[u8],
    dirs: &mut BTreeSet<PathBuf>,
) -> Result<()> {
    let parent = path.parent().unwrap_or(root);
    let missing: Vec<&Path> = parent
        .ancestors()
        .take_while(|p| p.starts_with(root) && *p != root && !fs.exists(p))
        .collect();
    for d in missing.into_iter().rev() {
        create_dir_durable(fs, d)?;
    }
    let mut file = fs.open_append(path, true).map_err(|e| Error::io(path, e))?;
    file.append(data).map_err(|e| Error::io(path, e))?;
    file.sync().map_err(|e| Error::io(path, e))?;
    dirs.insert(parent.to_path_buf());
    Ok(())
}
