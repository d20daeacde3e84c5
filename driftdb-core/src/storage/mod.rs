//! The on-disk layer: frames, the WAL, table segments (plain and compressed) and which of them
//! a table's history is made of, the checkpoint, and the file-system trait they are written
//! through. `docs/FORMAT.md` describes every format byte by byte.

pub mod checkpoint;
pub mod compressed;
pub mod frame;
pub mod fs;
pub mod index_file;
pub mod segment;
pub mod segment_set;
pub mod sim;
pub mod snapshot;
pub mod wal;

use std::path::Path;

use crate::error::{Error, Result};

/// Check every frame of a WAL, segment, checkpoint, snapshot or index file held in memory, by the rules
/// recovery uses (a WAL's torn tail is allowed; any other damage is an error with its offset).
/// Returns the number of transactions (WAL), events (segment), tables (checkpoint),
/// entries (snapshot) or ranges (index file).
/// Never panics on any input; the fuzz targets call it.
pub fn check_file(path: &Path, data: &[u8]) -> Result<usize> {
    match data.get(..8) {
        Some(m) if m == frame::WAL_MAGIC => Ok(wal::scan(path, data)?.txns.len()),
        Some(m) if m == frame::SEGMENT_MAGIC => {
            Ok(segment::scan(path, "fuzz", data, data.len() as u64)?.len())
        }
        Some(m) if m == frame::CHECKPOINT_MAGIC => {
            Ok(checkpoint::Checkpoint::decode(path, data)?.tables.len())
        }
        Some(m) if m == snapshot::SNAPSHOT_MAGIC => {
            Ok(usize::try_from(snapshot::check_bytes(path, data)?.entries).unwrap_or(usize::MAX))
        }
        Some(m) if m == index_file::INDEX_MAGIC => index_file::check_bytes(path, data),
        _ => Err(Error::corrupt(
            path,
            0,
            "not a DriftDB WAL, segment, checkpoint, snapshot or index file",
        )),
    }
}

/// Run the open's quick decoders over one segment event payload, as its replay reads it: the
/// key split (which checks the body is exactly one value that decodes), then, on the body,
/// the byte merge (the body merged into itself and into an empty map), the test of whether a
/// patch names a field, and a field lookup. Returns whether the payload split.
/// Never panics on any input; the fuzz targets call it.
pub fn check_payload(payload: &[u8]) -> bool {
    let Some((key, body)) = segment::split_key(payload) else { return false };
    let _ = key.map(crate::value::KeyRef::to_key);
    let mut out = Vec::new();
    let _ = crate::msgpack_merge::merge_encoded(body, body, &mut out);
    out.clear();
    let _ = crate::msgpack_merge::merge_encoded(&[0x80], body, &mut out);
    let _ = crate::msgpack_merge::names_field(body, "id");
    let _ = crate::msgpack_merge::value_at(body, &["id".to_owned(), "n".to_owned()]);
    true
}
