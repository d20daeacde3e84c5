//! The checkpoint: `<db>/CHECKPOINT`.
//!
//! ```text
//! [file header: "DRIFTCKP", version 1]      16 bytes
//! [one frame of type CHECKPOINT]            seq = checkpoint seq, unix_ms = its commit time,
//!                                           payload = msgpack map {seq, unix_ms, tables}
//! ```
//! `tables` maps each table name to `{segment, len}`: its last segment and that segment's
//! length at the checkpoint, and, once the table has been compacted, `compacted: {generation,
//! segments, first, horizon?}`: its history starts with compacted segments `1..=segments` of that
//! generation, followed by plain segments `first..=segment` (without it: plain segments
//! `1..=segment`). See [`crate::storage::segment_set`]. Invariant: every transaction with seq
//! <= the checkpoint seq is durable in the table segments within those lengths, and nothing
//! beyond them is trusted.
//!
//! **Versions.** A checkpoint is written with header version 1 unless some table has a
//! `compacted` entry; then with version 2, so that a build that does not know compaction
//! refuses the database with `UnsupportedVersion` instead of misreading it; with version 3
//! once some compacted set has a retention `horizon` (the set starts with a base at that seq,
//! see `retention.rs`; absent, it reads as 0). All three are read.
//!
//! **Write order** (so a crash at any point leaves a consistent database): fsync every segment
//! written since the last checkpoint (and the directories of new ones when they were created),
//! then write `CHECKPOINT.tmp`, fsync it, rename it over `CHECKPOINT`, fsync `<db>/`; only then
//! is the WAL replaced by an empty one. A crash before the rename leaves the old checkpoint and
//! the full WAL; a crash after it leaves a WAL whose transactions are all <= the checkpoint seq,
//! which replay skips.
//!
//! The file is replaced atomically, never appended to, so any damage in it is corruption.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::frame::{self, CHECKPOINT_MAGIC, EventType, FILE_HEADER_BYTES, FileHeader};

/// The checkpoint's file name, in the database root.
pub const CHECKPOINT_FILE: &str = "CHECKPOINT";

/// The checkpoint version written when no table is compacted (readable by every build).
pub const CHECKPOINT_VERSION_PLAIN: u32 = 1;
/// The checkpoint version written once a table has a compacted set.
pub const CHECKPOINT_VERSION_COMPACTED: u32 = 2;
/// The checkpoint version written once a table's compacted set has a retention horizon.
pub const CHECKPOINT_VERSION_RETENTION: u32 = 3;

/// Where a table's trusted segment data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentPos {
    pub segment: u32,
    pub len: u64,
    /// The compacted segments that hold the table's history before plain segment
    /// `compacted.first`; absent until the table is compacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted: Option<CompactedSet>,
}

/// A table's compacted segments: `compacted-<generation>-<n>.seg` for `n` in `1..=segments`,
/// holding every event before plain segment `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CompactedSet {
    pub generation: u32,
    pub segments: u32,
    pub first: u32,
    /// The retention horizon: the set starts with a base at this seq (the table's schema as a
    /// CREATE and one INSERT per live key, see `retention.rs`) and holds no event before it.
    /// 0 (absent in the file, as in every checkpoint older than retention): no fold.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub horizon: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The checkpoint record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub seq: u64,
    pub unix_ms: u64,
    pub tables: BTreeMap<String, SegmentPos>,
}

impl Checkpoint {
    pub fn encode(&self) -> Result<Vec<u8>> {
        let payload = rmp_serde::to_vec_named(self)
            .map_err(|e| Error::Conversion { reason: e.to_string() })?;
        let compacted = self.tables.values().any(|t| t.compacted.is_some());
        let folded = self.tables.values().any(|t| t.compacted.is_some_and(|c| c.horizon > 0));
        let version = if folded {
            CHECKPOINT_VERSION_RETENTION
        } else if compacted {
            CHECKPOINT_VERSION_COMPACTED
        } else {
            CHECKPOINT_VERSION_PLAIN
        };
        let mut out = FileHeader { magic: CHECKPOINT_MAGIC, version }.encode().to_vec();
        frame::encode(&mut out, self.seq, self.unix_ms, EventType::Checkpoint, &payload);
        Ok(out)
    }

    pub fn decode(path: &Path, data: &[u8]) -> Result<Checkpoint> {
        let header = FileHeader::check_kind(data, CHECKPOINT_MAGIC)
            .map_err(|e| Error::corrupt(path, 0, format!("bad checkpoint header: {e:?}")))?;
        if !(CHECKPOINT_VERSION_PLAIN..=CHECKPOINT_VERSION_RETENTION).contains(&header.version) {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: header.version,
                supported: CHECKPOINT_VERSION_RETENTION,
            });
        }
        let at = FILE_HEADER_BYTES as u64;
        let body = data.get(FILE_HEADER_BYTES..).unwrap_or_default();
        let f =
            frame::decode(body, u32::MAX).map_err(|e| Error::corrupt(path, at, e.to_string()))?;
        if f.kind != EventType::Checkpoint || f.size != body.len() {
            return Err(Error::corrupt(path, at, "not a single CHECKPOINT frame"));
        }
        let cp: Checkpoint = rmp_serde::from_slice(f.payload)
            .map_err(|e| Error::corrupt(path, at, e.to_string()))?;
        if cp.seq != f.seq {
            return Err(Error::corrupt(path, at, "checkpoint seq does not match its frame"));
        }
        for (table, pos) in &cp.tables {
            if let Some(c) = pos.compacted
                && c.horizon > cp.seq
            {
                return Err(Error::corrupt(
                    path,
                    at,
                    format!("table `{table}`: horizon {} is after the checkpoint", c.horizon),
                ));
            }
            if let Some(c) = pos.compacted
                && (c.first < 2 || c.first > pos.segment)
            {
                return Err(Error::corrupt(
                    path,
                    at,
                    format!(
                        "table `{table}`: compacted set ends before plain segment {} of 1..={}",
                        c.first, pos.segment
                    ),
                ));
            }
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut cp = Checkpoint { seq: 7, unix_ms: 99, tables: BTreeMap::new() };
        cp.tables.insert("users".into(), SegmentPos { segment: 2, len: 4096, compacted: None });
        let bytes = cp.encode().unwrap();
        assert_eq!(bytes[8], 1, "no compacted table: version 1");
        assert_eq!(Checkpoint::decode(Path::new("c"), &bytes).unwrap(), cp);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(Checkpoint::decode(Path::new("c"), &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_compacted_table_makes_a_version_2_checkpoint() {
        let mut cp = Checkpoint { seq: 9, unix_ms: 5, tables: BTreeMap::new() };
        let compacted = Some(CompactedSet { generation: 3, segments: 2, first: 7, horizon: 0 });
        cp.tables.insert("a".into(), SegmentPos { segment: 8, len: 100, compacted });
        cp.tables.insert("b".into(), SegmentPos { segment: 1, len: 16, compacted: None });
        let bytes = cp.encode().unwrap();
        assert_eq!(bytes[8], 2);
        assert_eq!(Checkpoint::decode(Path::new("c"), &bytes).unwrap(), cp);
        // A compacted set must end inside the plain range.
        let bad = Some(CompactedSet { generation: 3, segments: 2, first: 9, horizon: 0 });
        cp.tables.insert("a".into(), SegmentPos { segment: 8, len: 100, compacted: bad });
        let err = Checkpoint::decode(Path::new("c"), &cp.encode().unwrap()).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
        // A version this build does not know is named as such.
        let mut future = bytes.clone();
        future[..16].copy_from_slice(&FileHeader { magic: CHECKPOINT_MAGIC, version: 4 }.encode());
        let err = Checkpoint::decode(Path::new("c"), &future).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { found: 4, .. }), "{err:?}");
    }

    #[test]
    fn a_horizon_makes_a_version_3_checkpoint_and_old_ones_read_as_horizon_0() {
        let mut cp = Checkpoint { seq: 9, unix_ms: 5, tables: BTreeMap::new() };
        let compacted = Some(CompactedSet { generation: 1, segments: 1, first: 2, horizon: 6 });
        cp.tables.insert("a".into(), SegmentPos { segment: 2, len: 100, compacted });
        let bytes = cp.encode().unwrap();
        assert_eq!(bytes[8], 3);
        assert_eq!(Checkpoint::decode(Path::new("c"), &bytes).unwrap(), cp);
        let compacted = Some(CompactedSet { generation: 1, segments: 1, first: 2, horizon: 0 });
        cp.tables.insert("a".into(), SegmentPos { segment: 2, len: 100, compacted });
        let bytes = cp.encode().unwrap();
        assert_eq!(bytes[8], 2, "no horizon: written as before");
        let decoded = Checkpoint::decode(Path::new("c"), &bytes).unwrap();
        assert_eq!(decoded.tables["a"].compacted.unwrap().horizon, 0);
        let late = Some(CompactedSet { generation: 1, segments: 1, first: 2, horizon: 10 });
        cp.tables.insert("a".into(), SegmentPos { segment: 2, len: 100, compacted: late });
        assert!(Checkpoint::decode(Path::new("c"), &cp.encode().unwrap()).is_err());
    }
}
