//! Snapshots: the materialized rows of a table at a seq, so that a scan `AS OF` a seq starts
//! from the nearest snapshot at or before it and replays only the events after it.
//!
//! - [`take`]: `Database::snapshot_table` writes a full snapshot (every live row) or an
//!   incremental one (the keys changed since the previous snapshot), one full in every
//!   `Options::snapshot_full_every`. The file format is `storage/snapshot.rs`.
//! - [`auto`]: after a commit is durable, count events per table; when a table reaches its
//!   threshold (`TableSchema::snapshot_every`, else `Options::snapshot_every_events`), the
//!   committing thread takes a snapshot after its commit is acknowledged, holding no engine
//!   lock but the snapshot mutex. A failure does not fail the commit; it is recorded
//!   (`Database::auto_snapshot_error`).
//! - [`scan`]: `Database::scan_stream` merges the snapshot chain with the segment events after
//!   it, streaming rows in key order.
//!
//! **Snapshots are derived data.** They are never the only copy of anything: the segments are
//! the source. A snapshot is used only when its header names the table's current incarnation
//! (the seq of its CREATE) and every file of its chain opens with intact header, index and
//! trailer and — once per process — every block checks out; otherwise the scan uses an older
//! chain, or replays from the segments, and records why (`Database::snapshot_damage`). On open,
//! `.snap.tmp` files (a snapshot being written when the process stopped) and snapshots past the
//! last committed seq are removed. A dropped table's snapshots stay (its history is still
//! readable); a re-created table of the same name never uses them, because its incarnation
//! starts after them. Compaction keeps every seq, so it leaves snapshots valid. Backups skip
//! snapshots.

pub mod auto;
pub mod scan;
mod segments;
pub mod take;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::commit::table_dir;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::storage::fs::Fs;
use crate::storage::snapshot::{
    SNAPSHOTS_DIR, SnapshotFile, SnapshotKind, parse_snapshot_name, parse_snapshot_tmp_name,
};

pub use scan::RowStream;

/// What a snapshot file holds (see [`Database::snapshot_table`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The table.
    pub table: String,
    /// The seq the rows are taken at.
    pub seq: u64,
    /// Full or incremental.
    pub kind: SnapshotKind,
    /// For an incremental snapshot, the seq of the snapshot it applies on; 0 for a full one.
    pub base_seq: u64,
    /// The seq of the CREATE of the table incarnation it belongs to.
    pub created_seq: u64,
    /// Entries: live rows (full), or changed keys (incremental).
    pub entries: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// The file.
    pub path: PathBuf,
}

impl SnapshotInfo {
    pub(crate) fn of(file: &SnapshotFile) -> SnapshotInfo {
        SnapshotInfo {
            table: file.header.table.clone(),
            seq: file.header.seq,
            kind: file.header.kind,
            base_seq: file.header.base_seq,
            created_seq: file.header.created_seq,
            entries: file.entries,
            bytes: file.bytes,
            path: file.path.clone(),
        }
    }
}

/// The engine's snapshot bookkeeping (one per open database).
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    /// Held while a snapshot is written, so that snapshots of a database are taken one at a
    /// time (an incremental one depends on the previous one).
    pub take: Mutex<()>,
    /// Events committed to each table since its last snapshot (or, after an open, since the
    /// last snapshot on disk).
    pub counters: Mutex<HashMap<String, u64>>,
    /// The last automatic snapshot that failed, and why.
    pub auto_error: Mutex<Option<String>>,
    /// The last damaged snapshot a scan found (and did not use).
    pub damage: Mutex<Option<String>>,
    /// Snapshot files whose every block was checked (or written) by this process. Snapshot
    /// files are never modified once renamed.
    pub verified: Mutex<HashSet<PathBuf>>,
}

/// The snapshots directory of `table`.
pub(crate) fn snapshots_dir(root: &Path, table: &str) -> PathBuf {
    table_dir(root, table).join(SNAPSHOTS_DIR)
}

/// The seqs and paths of `table`'s snapshot files, oldest first (none when the directory is
/// missing).
pub(crate) fn list(fs: &dyn Fs, root: &Path, table: &str) -> Result<Vec<(u64, PathBuf)>> {
    let dir = snapshots_dir(root, table);
    if !fs.is_dir(&dir) {
        return Ok(Vec::new());
    }
    let names = fs.list(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut out: Vec<(u64, PathBuf)> =
        names.iter().filter_map(|n| Some((parse_snapshot_name(n)?, dir.join(n)))).collect();
    out.sort_by_key(|(seq, _)| *seq);
    Ok(out)
}

impl Database {
    /// Every snapshot file of `table` (live or dropped), oldest first, with what its header
    /// and trailer say. A file whose header, index or trailer is damaged is
    /// [`Error::Corrupt`] (run [`Database::verify_snapshots`] for every block).
    pub fn snapshots(&self, table: &str) -> Result<Vec<SnapshotInfo>> {
        crate::schema::validate_table_name(table)?;
        list(self.fs.as_ref(), &self.root, table)?
            .into_iter()
            .map(|(_, path)| Ok(SnapshotInfo::of(&SnapshotFile::open(self.fs.as_ref(), &path)?)))
            .collect()
    }

    /// Check every block of every snapshot file of every table. Returns the intact ones and,
    /// separately, the damage found (each an [`Error::Corrupt`] naming the file and offset).
    /// A damaged snapshot is never used by a read; it can be removed, or replaced by taking a
    /// new snapshot.
    pub fn verify_snapshots(&self) -> Result<(Vec<SnapshotInfo>, Vec<Error>)> {
        let tables_dir = self.root.join("tables");
        let tables = self.fs.list(&tables_dir).map_err(|e| Error::io(&tables_dir, e))?;
        let (mut ok, mut damaged) = (Vec::new(), Vec::new());
        for table in tables {
            if crate::schema::validate_table_name(&table).is_err() {
                continue;
            }
            for (_, path) in list(self.fs.as_ref(), &self.root, &table)? {
                let checked = SnapshotFile::open(self.fs.as_ref(), &path).and_then(|file| {
                    file.verify(self.fs.as_ref())?;
                    Ok(file)
                });
                match checked {
                    Ok(file) => ok.push(SnapshotInfo::of(&file)),
                    Err(e) => damaged.push(e),
                }
            }
        }
        Ok((ok, damaged))
    }

    /// Why the last automatic snapshot failed, if one did since the database was opened.
    /// Automatic snapshots never fail a commit: the commit is durable before they start.
    pub fn auto_snapshot_error(&self) -> Option<String> {
        self.snapshots.auto_error.lock().clone()
    }

    /// The last damaged snapshot a scan found and did not use (it read from an older snapshot
    /// or the segments instead), if any since the database was opened.
    pub fn snapshot_damage(&self) -> Option<String> {
        self.snapshots.damage.lock().clone()
    }
}

/// At the end of open: remove `.snap.tmp` files and snapshots past the last committed seq
/// (fsyncing each directory changed), and count each table's events since its newest
/// snapshot, for the automatic snapshots.
pub(crate) fn on_open(db: &Database) -> Result<()> {
    // Snapshots of a folded table from before its fold (a crash can come between a fold's
    // switch and their removal): see `retention.rs`.
    let folded: Vec<String> = {
        let state = db.state.read();
        state.tables.iter().filter(|(_, t)| t.horizon > 0).map(|(n, _)| n.clone()).collect()
    };
    for table in folded {
        crate::retention::drop_snapshots(db, &table)?;
    }
    let fs = db.fs.as_ref();
    let last_seq = db.last_seq();
    let tables_dir = db.root.join("tables");
    let tables = if fs.is_dir(&tables_dir) {
        fs.list(&tables_dir).map_err(|e| Error::io(&tables_dir, e))?
    } else {
        Vec::new()
    };
    let mut newest: HashMap<String, u64> = HashMap::new();
    for table in tables {
        let dir = snapshots_dir(&db.root, &table);
        if crate::schema::validate_table_name(&table).is_err() || !fs.is_dir(&dir) {
            continue;
        }
        let mut removed = false;
        for name in fs.list(&dir).map_err(|e| Error::io(&dir, e))? {
            let stale = match (parse_snapshot_name(&name), parse_snapshot_tmp_name(&name)) {
                (Some(seq), _) if seq <= last_seq => {
                    let n = newest.entry(table.clone()).or_default();
                    *n = (*n).max(seq);
                    false
                }
                (Some(_), _) | (_, Some(_)) => true,
                _ => false,
            };
            if stale {
                let path = dir.join(&name);
                fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed = true;
            }
        }
        if removed {
            fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        }
    }
    let counts: Vec<(String, u64)> = {
        let state = db.state.read();
        state
            .tables
            .iter()
            .map(|(name, t)| {
                let since = newest.get(name).copied().unwrap_or(0);
                let rows: usize = t
                    .rows
                    .values()
                    .map(|c| {
                        let v = c.versions();
                        v.len() - v.partition_point(|v| v.seq <= since)
                    })
                    .sum();
                let schemas = t.schemas.len() - t.schemas.partition_point(|s| s.seq <= since);
                (name.clone(), (rows + schemas) as u64)
            })
            .collect()
    };
    db.snapshots.counters.lock().extend(counts);
    Ok(())
}
