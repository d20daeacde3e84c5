//! Taking a snapshot of a table at the last committed seq.
//!
//! The rows come from the in-memory state at that seq (collected as shared pointers under the
//! state's read lock, which is then released), and are written in key order by
//! [`SnapshotWriter`] (tmp file, fsync, rename, fsync of the directory). A snapshot is
//! *incremental* when the previous snapshot of the same table incarnation and its chain back to
//! a full snapshot are intact (every block checked, once per process) and the chain is shorter
//! than `Options::snapshot_full_every`; it then holds
//! the keys with a version in `(base_seq, seq]`, each with its document at `seq` or a
//! tombstone. Otherwise it is *full*: every live row.

use std::sync::Arc;

use crate::commit::create_dir_durable;
use crate::db::Database;
use crate::error::Result;
use crate::storage::snapshot::{
    SNAP_BLOCK_RAW_TARGET, SnapshotFile, SnapshotHeader, SnapshotKind, SnapshotWriter,
};
use crate::value::{Key, Value};

use super::{SnapshotInfo, list, snapshots_dir};

impl Database {
    /// Write a snapshot of `table` at the last committed seq and return what was written.
    /// When a snapshot at that seq exists already, it is returned unchanged. Commits and reads
    /// go on meanwhile; snapshots of one database are taken one at a time.
    ///
    /// ```
    /// use driftdb_core::{AsOf, Database, TableSchema};
    /// let dir = tempfile::tempdir().unwrap();
    /// let db = Database::open(dir.path()).unwrap();
    /// db.create_table("users", TableSchema::new("id")).unwrap();
    /// let mut tx = db.begin();
    /// tx.insert("users", serde_json::json!({"id": "u1"}).into()).unwrap();
    /// tx.commit().unwrap();
    /// let snap = db.snapshot_table("users").unwrap();
    /// assert_eq!((snap.seq, snap.entries), (2, 1));
    /// let rows: Vec<_> = db.scan_stream("users", AsOf::Now).unwrap().collect();
    /// assert_eq!(rows.len(), 1);
    /// ```
    pub fn snapshot_table(&self, table: &str) -> Result<SnapshotInfo> {
        let _one_at_a_time = self.snapshots.take.lock();
        self.take_snapshot(table)
    }

    /// Take a snapshot; the caller holds `snapshots.take`.
    pub(crate) fn take_snapshot(&self, table: &str) -> Result<SnapshotInfo> {
        crate::schema::validate_table_name(table)?;
        // Read the seq and reset the table's event counter together, under the counters'
        // lock: every commit after `seq` is counted after the reset (a commit is visible
        // before it is counted), so the count never misses one.
        let (seq, counted) = {
            let mut counters = self.snapshots.counters.lock();
            let seq = self.last_seq();
            (seq, counters.insert(table.to_owned(), 0).unwrap_or(0))
        };
        let result = self.write_snapshot(table, seq);
        if result.is_err() {
            *self.snapshots.counters.lock().entry(table.to_owned()).or_default() += counted;
        }
        result
    }

    fn write_snapshot(&self, table: &str, seq: u64) -> Result<SnapshotInfo> {
        let fs = self.fs.as_ref();
        let created_seq = {
            let state = self.state.read();
            let t = state.table(table, seq)?;
            t.schema_at(seq).map_or(0, |s| s.created_seq)
        };
        let existing = list(fs, &self.root, table)?;
        // A snapshot at this seq already: return it when it is intact (else it is replaced).
        if let Some((_, path)) = existing.iter().find(|(s, _)| *s == seq)
            && let Ok(file) = SnapshotFile::open(fs, path)
            && file.header.created_seq == created_seq
            && file.header.table == table
            && (self.snapshots.verified.lock().contains(path) || file.verify(fs).is_ok())
        {
            self.snapshots.verified.lock().insert(path.clone());
            return Ok(SnapshotInfo::of(&file));
        }
        let base = self.incremental_base(&existing, seq, created_seq);
        let kind = if base.is_some() { SnapshotKind::Incremental } else { SnapshotKind::Full };
        let base_seq = base.unwrap_or(0);
        let rows: Vec<(Key, Option<Arc<Value>>)> = {
            let state = self.state.read();
            let t = state.table(table, seq)?;
            let incarnation = t.schema_at(seq).map_or(u64::MAX, |s| s.created_seq);
            let mut rows = Vec::new();
            for (key, chain) in &t.rows {
                // Incremental: only keys with a version in (base_seq, seq] (versions are
                // sorted by seq: the first one after the base decides).
                let versions = chain.versions();
                let changed = base.is_none_or(|b| {
                    let after = versions.partition_point(|v| v.seq <= b);
                    versions.get(after).is_some_and(|v| v.seq <= seq)
                });
                if !changed {
                    continue;
                }
                let doc = chain.doc_at(seq, incarnation)?;
                if doc.is_some() || base.is_some() {
                    rows.push((key.clone(), doc));
                }
            }
            rows
        };
        let dir = snapshots_dir(&self.root, table);
        create_dir_durable(fs, &dir)?;
        let header = SnapshotHeader { table: table.to_owned(), seq, kind, base_seq, created_seq };
        let mut writer = SnapshotWriter::create(fs, &dir, &header, SNAP_BLOCK_RAW_TARGET)?;
        for (key, doc) in &rows {
            if let Err(e) = writer.push(key, doc.as_deref()) {
                writer.abandon();
                return Err(e);
            }
        }
        drop(rows);
        let (path, entries, bytes) = writer.finish()?;
        self.snapshots.verified.lock().insert(path.clone());
        Ok(SnapshotInfo {
            table: table.to_owned(),
            seq,
            kind,
            base_seq,
            created_seq,
            entries,
            bytes,
            path,
        })
    }

    /// The seq of the snapshot a new one at `seq` can be incremental on: the newest one before
    /// `seq` of the same incarnation, when it and its chain back to a full snapshot open
    /// intact and the chain is shorter than `snapshot_full_every`.
    fn incremental_base(
        &self,
        existing: &[(u64, std::path::PathBuf)],
        seq: u64,
        created_seq: u64,
    ) -> Option<u64> {
        let full_every = u64::from(self.options.snapshot_full_every);
        if full_every <= 1 {
            return None;
        }
        let fs = self.fs.as_ref();
        let (prev_seq, _) = existing.iter().rev().find(|(s, _)| *s < seq && *s >= created_seq)?;
        let mut at = *prev_seq;
        let mut chain = 0u64;
        loop {
            let (_, path) = existing.iter().find(|(s, _)| *s == at)?;
            let file = SnapshotFile::open(fs, path).ok()?;
            if file.header.created_seq != created_seq {
                return None;
            }
            if !self.snapshots.verified.lock().contains(path) {
                file.verify(fs).ok()?;
                self.snapshots.verified.lock().insert(path.clone());
            }
            chain += 1;
            match file.header.kind {
                SnapshotKind::Full => break,
                SnapshotKind::Incremental => at = file.header.base_seq,
            }
        }
        (chain < full_every).then_some(*prev_seq)
    }
}
