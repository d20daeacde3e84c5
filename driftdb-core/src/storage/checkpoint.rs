//! The checkpoint: `<db>/CHECKPOINT`.
//!
//! ```text
//! [file header: "DRIFTCKP", version 1]      16 bytes
//! [one frame of type CHECKPOINT]            seq = checkpoint seq, unix_ms = its commit time,
//!                                           payload = msgpack map {seq, unix_ms, tables}
//! ```
//! `tables` maps each table name to `{segment, len}`: its last segment and that segment's
//! length at the checkpoint. Invariant: every transaction with seq <= the checkpoint seq is
//! durable in the table segments within those lengths, and nothing beyond them is trusted.
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

/// Where a table's trusted segment data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentPos {
    pub segment: u32,
    pub len: u64,
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
        let mut out = FileHeader::new(CHECKPOINT_MAGIC).encode().to_vec();
        frame::encode(&mut out, self.seq, self.unix_ms, EventType::Checkpoint, &payload);
        Ok(out)
    }

    pub fn decode(path: &Path, data: &[u8]) -> Result<Checkpoint> {
        FileHeader::check(data, CHECKPOINT_MAGIC).map_err(|e| match e {
            frame::HeaderError::Version(found) => Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found,
                supported: frame::FORMAT_VERSION,
            },
            other => Error::corrupt(path, 0, format!("bad checkpoint header: {other:?}")),
        })?;
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
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut cp = Checkpoint { seq: 7, unix_ms: 99, tables: BTreeMap::new() };
        cp.tables.insert("users".into(), SegmentPos { segment: 2, len: 4096 });
        let bytes = cp.encode().unwrap();
        assert_eq!(Checkpoint::decode(Path::new("c"), &bytes).unwrap(), cp);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(Checkpoint::decode(Path::new("c"), &bad).is_err(), "byte {i}");
        }
    }
}
