//! Ranged reads of sealed files: [`super::EncryptedFs`]'s `read_at` and `file_len`.
//!
//! Readers of large files read them a piece at a time (a snapshot block by block, a segment a
//! 1 MiB piece at a time during a streamed scan), so that memory stays bounded. A sealed file
//! is a sequence of records (see [`super::sealed`]), so a logical range maps to the records
//! that hold it. A [`RecordIndex`] lists where each record of one file copy starts,
//! physically and logically; it is built by walking the 12-byte record headers (their own
//! CRC checked, nothing decrypted) and kept for the next read of the same file. A read then
//! fetches and opens only the records its range touches: every record read is checked and
//! authenticated in full, as `read` does, with the physical offset bound in.
//!
//! **Validity.** An index belongs to one file copy: its salt (header bytes 16..32, new for
//! every copy and rewrite) and physical length. Records are only ever appended to a copy,
//! so an index of a shorter length is extended from where it ended; another salt starts a
//! new one. When the headers do not walk cleanly to the physical end (a header whose CRC
//! fails, a length that runs past the end, unwritten space after the records) the ranged
//! path steps aside: the caller reads the whole file, where the damage rules of `read` apply
//! (torn tail, damage in the middle, tampering). A record whose headers hold but whose body
//! fails its CRC or its tag, when a range touches it, is corruption at its physical offset:
//! ranged reads serve files that recovery has already checked and cut (snapshots, segments),
//! where damage is never a torn tail to be cut. A range that touches only intact records
//! reads the same bytes as a whole read.
//!
//! **Memory.** Per record 24 bytes, for at most [`CACHED_RECORDS`] records over all files
//! (about 24 MiB); beyond that the cache starts over.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::crypto::sealed::{
    NONCE_BYTES, RECORD_HEADER_BYTES, SEALED_HEADER_BYTES, SealError, SealedHeader, Sealer,
    TAG_BYTES, record_len,
};
use crate::storage::fs::Fs;

/// Most records the cache holds over all files.
pub const CACHED_RECORDS: usize = 1 << 20;
/// Bytes read at a time while walking record headers.
const WALK_WINDOW: u64 = 256 * 1024;
/// Bytes a record's body holds besides its plaintext.
const BODY_OVERHEAD: u64 = (NONCE_BYTES + TAG_BYTES) as u64;

/// Where the records of one copy of a sealed file are.
#[derive(Debug, Clone)]
pub(crate) struct RecordIndex {
    physical_len: u64,
    salt: [u8; 16],
    /// `(physical offset, logical offset, plaintext length)` of each record, in file order.
    records: Vec<(u64, u64, u64)>,
    logical_len: u64,
}

/// The indexes of recently read sealed files.
#[derive(Debug, Default)]
pub(crate) struct RecordIndexes {
    map: Mutex<HashMap<PathBuf, Arc<RecordIndex>>>,
}

impl RecordIndexes {
    /// The index of the sealed file at `path` (physical bytes through `inner`), or `None`
    /// when its records do not walk cleanly to its physical end, or it was sealed under
    /// another key: the caller then reads the whole file (see the module documentation).
    pub fn get(
        &self,
        inner: &dyn Fs,
        path: &Path,
        key_id: u32,
    ) -> io::Result<Option<Arc<RecordIndex>>> {
        let physical_len = inner.file_len(path)?;
        if physical_len < SEALED_HEADER_BYTES as u64 {
            return Ok(None);
        }
        let head = inner.read_at(path, 0, SEALED_HEADER_BYTES as u64)?;
        let Ok(header) = SealedHeader::decode(&head) else { return Ok(None) };
        if header.key_id != key_id {
            return Ok(None);
        }
        let cached = self.map.lock().get(path).cloned();
        let start = match cached {
            Some(index) if index.salt == header.salt && index.physical_len == physical_len => {
                return Ok(Some(index));
            }
            // The same copy, grown by appends: go on from where the index ended.
            Some(index) if index.salt == header.salt && index.physical_len < physical_len => {
                (*index).clone()
            }
            _ => RecordIndex {
                physical_len: SEALED_HEADER_BYTES as u64,
                salt: header.salt,
                records: Vec::new(),
                logical_len: 0,
            },
        };
        let Some(index) = walk(inner, path, physical_len, start)? else {
            self.map.lock().remove(path);
            return Ok(None);
        };
        let index = Arc::new(index);
        let mut map = self.map.lock();
        let held: usize = map.values().map(|i| i.records.len()).sum();
        if held + index.records.len() > CACHED_RECORDS {
            map.clear();
        }
        map.insert(path.to_path_buf(), index.clone());
        Ok(Some(index))
    }

    /// Drop what is known of `path` (it was rewritten, renamed over or removed).
    pub fn forget(&self, path: &Path) {
        self.map.lock().remove(path);
    }
}

/// Extend `index` (which ends at its `physical_len`) to the records up to `physical_len`.
fn walk(
    inner: &dyn Fs,
    path: &Path,
    physical_len: u64,
    mut index: RecordIndex,
) -> io::Result<Option<RecordIndex>> {
    let mut at = index.physical_len;
    let mut window: Vec<u8> = Vec::new();
    let mut window_at = at;
    while at < physical_len {
        if at + RECORD_HEADER_BYTES as u64 > physical_len {
            return Ok(None);
        }
        let in_window = at - window_at + RECORD_HEADER_BYTES as u64 <= window.len() as u64;
        if !in_window {
            window = inner.read_at(path, at, WALK_WINDOW.min(physical_len - at))?;
            window_at = at;
        }
        let off = usize::try_from(at - window_at).unwrap_or(usize::MAX);
        let Some(len) =
            window.get(off..off.saturating_add(RECORD_HEADER_BYTES)).and_then(record_len)
        else {
            return Ok(None);
        };
        let plain = u64::from(len) - BODY_OVERHEAD;
        index.records.push((at, index.logical_len, plain));
        index.logical_len += plain;
        at += RECORD_HEADER_BYTES as u64 + u64::from(len);
    }
    if at != physical_len {
        return Ok(None);
    }
    index.physical_len = physical_len;
    Ok(Some(index))
}

impl RecordIndex {
    /// The logical length of the file.
    pub fn logical_len(&self) -> u64 {
        self.logical_len
    }

    /// The logical bytes `offset..offset + len`, opening only the records that hold them.
    /// Errors: a record that is damaged or fails authentication (corruption at its physical
    /// offset), a range past the end.
    pub fn read(
        &self,
        inner: &dyn Fs,
        path: &Path,
        sealer: &Sealer,
        identity: &str,
        offset: u64,
        len: u64,
    ) -> io::Result<Option<Vec<u8>>> {
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= self.logical_len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let first = self.records.partition_point(|&(_, logical, n)| logical + n <= offset);
        for &(physical, logical, plain_len) in self.records.get(first..).unwrap_or_default() {
            if logical >= end {
                break;
            }
            let bytes = inner.read_at(
                path,
                physical,
                RECORD_HEADER_BYTES as u64 + BODY_OVERHEAD + plain_len,
            )?;
            let opened = sealer
                .open_record(&bytes, physical, identity, &self.salt)
                .map_err(SealError::into_io)?;
            let Some(plain) = opened else {
                return Err(SealError {
                    offset: physical,
                    reason: "damaged record (its CRC does not match)".into(),
                }
                .into_io());
            };
            let from = usize::try_from(offset.saturating_sub(logical)).unwrap_or(usize::MAX);
            let to = usize::try_from((end - logical).min(plain_len)).unwrap_or(usize::MAX);
            let Some(piece) = plain.get(from..to) else { return Ok(None) };
            out.extend_from_slice(piece);
        }
        Ok((out.len() as u64 == len).then_some(out))
    }
}
