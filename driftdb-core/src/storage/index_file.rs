//! Index files: `tables/<table>/indexes/<field>.idx`, one secondary index of one table (see
//! `index.rs`) as it stood at one database seq, so an open can load it instead of rebuilding
//! it during the replay. `<field>` is the dotted field path with every byte other
//! than ASCII letters, digits, `_`, `-` and `.` (and a leading `.`) written `%XX`; a name that
//! would pass [`FILE_NAME_BYTES_MAX`] is `~<16 hex digits of its SHA-256>.idx` instead. The
//! header names the table and the path in full either way.
//!
//! ```text
//! offset  size  field                 all integers little-endian unless a varint
//! 0       8     magic        "DRIFTIDX"
//! 8       4     version      u32: 1
//! 12      1     compression  u8: 0 none, 1 zstd (one frame holding the whole body)
//! 13      3     reserved     0
//! 16      8     body_len     u64: bytes of the body once decompressed
//! 24      8     db_seq       u64: the database's last seq when the file was written
//! 32      8     created_seq  u64: the CREATE seq of the table's newest incarnation
//! 40      8     schema_seq   u64: the seq of the table's newest schema version
//! 48      8     table_seq    u64: the seq of the table's last event (row or schema)
//! 56      8     horizon      u64: the table's retention horizon (0: none)
//! 64      8     keys         u64: keys the table holds (live or not, every incarnation)
//! 72      8     versions     u64: versions of all those keys
//! 80      4     position     u32: which of `paths` this file holds (0-based)
//! 84      4     names_len    u32: bytes of `names`
//! 88      n     names        varint + UTF-8 table name; varint count of the table's index
//!                            paths, in the table's order; per path a varint count of its
//!                            fields, per field a varint length and its UTF-8 bytes
//! 88+n    m     body         raw or one zstd frame (see `compression`)
//! end-4   4     crc32        CRC-32 (IEEE) of every byte before it
//!
//! body (varints are unsigned LEB128; "zigzag" maps i64 to u64 as protobuf does)
//! varint n_keys, then n_keys keys: u8 tag 0 + zigzag varint (integer key)
//!                                  or u8 tag 1 + varint length + UTF-8 (string key)
//! varint n_live, then n_live groups: value, varint count, count × (varint key-id delta,
//!                                    varint from)          key ids strictly increase
//! varint n_closed, then n_closed groups: value, varint count, count × (varint key id,
//!                                    varint from, varint to - from)   in the order they ended
//! value: u8 tag 0 false | 1 true | 2 integer (zigzag varint) | 3 float (8 bytes, its bits)
//!        | 4 string (varint length + UTF-8) | 5 other (varint length + UTF-8 JSON text)
//! ```
//!
//! A key id is a key's place in the key list; a live entry is the open range `[from, ∞)` of
//! a key holding the group's value, a closed one the range `[from, to)` that a later version
//! ended.
//!
//! **Invariants**, all checked on read (any failure is `Corrupt { file, offset }`): the magic,
//! the version and the compression are known; the CRC matches (checked before anything else
//! is decoded); the names fit in the file and are UTF-8, no path listed twice; `position`
//! names one of `paths`; the body decompresses to exactly `body_len` bytes and is read to its
//! last byte; keys are distinct; every key id names a key; no key holds one value in two open
//! ranges; every range has `from <= to` (a value a transaction set and changed again is an
//! empty range) and lies at or before `table_seq`, which is at or before `db_seq`; a float
//! value is not one that the index keys as an integer.
//!
//! **Recovery rules.** An index file is derived state, never trusted over the segments. The
//! open uses a table's files only when all of them are intact and name the table as the
//! segments rebuild it: the same `table_seq` (the table's last event in the segments: no event
//! of the table after the file's seq), the same retention horizon, `db_seq` at or before the
//! checkpoint, one file per listed path; then the replay skips the table's index upkeep, and
//! after the replay the header must also match the table it rebuilt (incarnation, newest
//! schema, counts of keys and versions, the same set of index paths). Any
//! mismatch, a missing, stale, damaged, truncated or newer-version file: the index is built
//! from the version chains instead, and why is recorded (`Database::index_file_notes`).
//! Never an open failure.
//!
//! **Durability.** A file is written to `<name>.idx.tmp`, fsynced, renamed over `<name>.idx`
//! and the directory fsynced ([`crate::storage::fs::write_atomic`]), after the checkpoint that
//! makes `db_seq` durable: a file never claims a seq the segments may lack. A crash leaves the
//! old file or the new one (a torn `.tmp` is never read, and removed when files are next
//! written); the old one names an older `table_seq` or matches still. A write that fails
//! poisons nothing: the next open rebuilds what the file would have held.

use std::path::Path;

use crate::error::{Error, Result};
use crate::index::{Closed, ClosedMap, FieldIndex, IndexValue, KeySet, LiveMap};
use crate::limits::TABLE_NAME_BYTES_MAX;
use crate::storage::frame::{read_varint, write_varint};
use crate::value::Key;

/// The header magic.
pub const INDEX_MAGIC: [u8; 8] = *b"DRIFTIDX";
/// The version this build writes and reads.
pub const INDEX_FORMAT_VERSION: u32 = 1;
/// The directory of a table's index files.
pub const INDEXES_DIR: &str = "indexes";
/// The extension of an index file.
pub const INDEX_EXTENSION: &str = ".idx";
/// Escaped names longer than this are hashed (file names are limited to 255 bytes).
pub const FILE_NAME_BYTES_MAX: usize = 200;

const COMPRESSION_OFFSET: usize = 12;
const BODY_LEN_OFFSET: usize = 16;
const DB_SEQ_OFFSET: usize = 24;
const POSITION_OFFSET: usize = 80;
const NAMES_LEN_OFFSET: usize = 84;
const NAMES_OFFSET: usize = 88;
const CRC_BYTES: usize = 4;
/// A body smaller than this is stored raw.
const COMPRESS_MIN_BYTES: usize = 64 * 1024;
/// zstd's level: the fastest; the body is small next to the segments.
const ZSTD_LEVEL: i32 = 1;
/// The largest body a file may claim (a guard on the allocation; 16 GiB).
const BODY_BYTES_MAX: u64 = 1 << 34;

/// What ties an index file to the table it was written from (see the module header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TableIdentity {
    pub created_seq: u64,
    pub schema_seq: u64,
    pub table_seq: u64,
    pub horizon: u64,
    pub keys: u64,
    pub versions: u64,
}

/// The header of an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexHeader {
    pub db_seq: u64,
    pub table: String,
    pub identity: TableIdentity,
    /// Every index path of the table, in the table's order.
    pub paths: Vec<Vec<String>>,
    /// Which of `paths` the file holds.
    pub position: u32,
}

impl IndexHeader {
    /// The path of the index the file holds.
    pub fn path(&self) -> Option<&Vec<String>> {
        self.paths.get(usize::try_from(self.position).ok()?)
    }
}

/// An index file read and checked (CRC, header), its body not decoded yet.
#[derive(Debug)]
pub(crate) struct IndexFile {
    pub header: IndexHeader,
    compression: u8,
    body_len: u64,
    /// The body as stored.
    body: Vec<u8>,
    body_offset: u64,
}

/// The file name of the index of `path` (see the module header).
pub(crate) fn file_name(path: &[String]) -> String {
    let dotted = path.join(".");
    let mut name = String::with_capacity(dotted.len() + INDEX_EXTENSION.len());
    for (i, b) in dotted.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() > FILE_NAME_BYTES_MAX {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(dotted.as_bytes());
        name = String::from("~");
        digest.iter().take(8).for_each(|b| name.push_str(&format!("{b:02x}")));
    }
    name.push_str(INDEX_EXTENSION);
    name
}

/// The file name of the index at `position` in its table's list of index paths: what an
/// encrypted database names its index files, so that the names do not show its field names
/// (the files themselves are sealed like every other file).
pub(crate) fn position_name(position: usize) -> String {
    format!("index-{position}{INDEX_EXTENSION}")
}

fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    write_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &IndexValue) {
    match value {
        IndexValue::Bool(b) => out.push(u8::from(*b)),
        IndexValue::Int(i) => {
            out.push(2);
            write_varint(out, zigzag(*i));
        }
        IndexValue::Float(bits) => {
            out.push(3);
            out.extend_from_slice(&bits.to_le_bytes());
        }
        IndexValue::Str(s) => {
            out.push(4);
            put_str(out, s);
        }
        IndexValue::Other(s) => {
            out.push(5);
            put_str(out, s);
        }
    }
}

/// The body of `index` (see the module header).
fn encode_body(index: &FieldIndex) -> Vec<u8> {
    let (keys, live, closed) = index.parts();
    let mut out = Vec::with_capacity(keys.len() * 16 + closed.len() * 8);
    write_varint(&mut out, keys.len() as u64);
    for key in keys {
        match key {
            Key::Int(i) => {
                out.push(0);
                write_varint(&mut out, zigzag(*i));
            }
            Key::Str(s) => {
                out.push(1);
                put_str(&mut out, s);
            }
        }
    }
    write_varint(&mut out, live.len() as u64);
    let mut ids: Vec<(usize, u64)> = Vec::new();
    for (value, holders) in live {
        put_value(&mut out, value);
        ids.clear();
        ids.extend(holders.iter().map(|(&id, &from)| (id, from)));
        ids.sort_unstable();
        write_varint(&mut out, ids.len() as u64);
        let mut previous = 0;
        for &(id, from) in &ids {
            write_varint(&mut out, (id - previous) as u64);
            write_varint(&mut out, from);
            previous = id;
        }
    }
    write_varint(&mut out, closed.len() as u64);
    for (value, ranges) in closed {
        put_value(&mut out, value);
        write_varint(&mut out, ranges.len() as u64);
        for r in ranges {
            write_varint(&mut out, r.key as u64);
            write_varint(&mut out, r.from);
            write_varint(&mut out, r.to.saturating_sub(r.from));
        }
    }
    out
}

/// The bytes of the index file of `index` with `header`.
pub(crate) fn encode(header: &IndexHeader, index: &FieldIndex) -> Result<Vec<u8>> {
    let raw = encode_body(index);
    let raw_len = raw.len() as u64;
    let packed = match raw.len() >= COMPRESS_MIN_BYTES {
        true => Some(
            zstd::bulk::compress(&raw, ZSTD_LEVEL)
                .map_err(|e| Error::invalid(format!("compressing an index file: {e}")))?,
        ),
        false => None,
    };
    let (compression, body) = match packed {
        Some(packed) if packed.len() < raw.len() / 4 * 3 => (1u8, packed),
        _ => (0u8, raw),
    };
    let mut names = Vec::new();
    put_str(&mut names, &header.table);
    write_varint(&mut names, header.paths.len() as u64);
    for path in &header.paths {
        write_varint(&mut names, path.len() as u64);
        path.iter().for_each(|field| put_str(&mut names, field));
    }
    let names_len = u32::try_from(names.len())
        .map_err(|_| Error::invalid("index paths too long for an index file"))?;
    let id = &header.identity;
    let mut out = Vec::with_capacity(NAMES_OFFSET + names.len() + body.len() + CRC_BYTES);
    out.extend_from_slice(&INDEX_MAGIC);
    out.extend_from_slice(&INDEX_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[compression, 0, 0, 0]);
    out.extend_from_slice(&raw_len.to_le_bytes());
    for n in [
        header.db_seq,
        id.created_seq,
        id.schema_seq,
        id.table_seq,
        id.horizon,
        id.keys,
        id.versions,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&header.position.to_le_bytes());
    out.extend_from_slice(&names_len.to_le_bytes());
    debug_assert_eq!(out.len(), NAMES_OFFSET);
    out.extend_from_slice(&names);
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A cursor over bytes that reports damage at the file offset it happened.
struct Reader<'a> {
    file: &'a Path,
    data: &'a [u8],
    pos: usize,
    /// The file offset of `data[0]`.
    base: u64,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::corrupt(self.file, self.base + self.pos as u64, reason)
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.corrupt("length overflows"))?;
        let bytes = self.data.get(self.pos..end).ok_or_else(|| self.corrupt("truncated"))?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8> {
        self.take(1)?.first().copied().ok_or_else(|| self.corrupt("truncated"))
    }

    fn u64_le(&mut self) -> Result<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| self.corrupt("truncated"))?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn varint(&mut self) -> Result<u64> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let (value, used) = read_varint(rest).ok_or_else(|| self.corrupt("bad varint"))?;
        self.pos += used;
        Ok(value)
    }

    /// A count of items of at least `item_bytes` bytes each, bounded by the bytes left.
    fn count(&mut self, item_bytes: usize) -> Result<usize> {
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(item_bytes) <= self.remaining() => Ok(n),
            _ => Err(self.corrupt(format!("count {n} exceeds the bytes left"))),
        }
    }

    fn str(&mut self) -> Result<&'a str> {
        let len = self.count(1)?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| self.corrupt("a name or value is not UTF-8"))
    }

    fn value(&mut self) -> Result<IndexValue> {
        Ok(match self.u8()? {
            0 => IndexValue::Bool(false),
            1 => IndexValue::Bool(true),
            2 => IndexValue::Int(unzigzag(self.varint()?)),
            3 => {
                let bits = self.u64_le()?;
                let value = crate::value::Value::Float(f64::from_bits(bits));
                if IndexValue::of(&value) != Some(IndexValue::Float(bits)) {
                    return Err(self.corrupt("a float value the index keys otherwise"));
                }
                IndexValue::Float(bits)
            }
            4 => IndexValue::Str(self.str()?.into()),
            5 => IndexValue::Other(self.str()?.into()),
            tag => return Err(self.corrupt(format!("unknown value tag {tag}"))),
        })
    }
}

/// Read the file at `path` from `data`: check the CRC and decode the header (not the body).
pub(crate) fn read(path: &Path, data: Vec<u8>) -> Result<IndexFile> {
    let corrupt = |offset: usize, reason: &str| Error::corrupt(path, offset as u64, reason);
    if data.len() < NAMES_OFFSET + CRC_BYTES {
        return Err(corrupt(0, "truncated: shorter than an index file header"));
    }
    if data.get(..8) != Some(&INDEX_MAGIC[..]) {
        return Err(corrupt(0, "not an index file (bad magic)"));
    }
    let crc_at = data.len() - CRC_BYTES;
    let (covered, stored) = data.split_at(crc_at);
    let stored: [u8; 4] = stored.try_into().map_err(|_| corrupt(crc_at, "truncated"))?;
    if crc32fast::hash(covered) != u32::from_le_bytes(stored) {
        return Err(corrupt(crc_at, "checksum mismatch (damaged or truncated)"));
    }
    let mut r = Reader { file: path, data: covered, pos: 8, base: 0 };
    let version = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| r.corrupt("truncated"))?);
    if version != INDEX_FORMAT_VERSION {
        return Err(corrupt(8, &format!("index file version {version}, this build reads 1")));
    }
    debug_assert_eq!(r.pos, COMPRESSION_OFFSET);
    let compression = r.u8()?;
    if compression > 1 {
        return Err(r.corrupt(format!("unknown compression {compression}")));
    }
    r.take(3)?;
    debug_assert_eq!(r.pos, BODY_LEN_OFFSET);
    let body_len = r.u64_le()?;
    if body_len > BODY_BYTES_MAX {
        return Err(r.corrupt(format!("body of {body_len} bytes is too large")));
    }
    debug_assert_eq!(r.pos, DB_SEQ_OFFSET);
    let db_seq = r.u64_le()?;
    let mut n = [0u64; 6];
    for slot in &mut n {
        *slot = r.u64_le()?;
    }
    let [created_seq, schema_seq, table_seq, horizon, keys, versions] = n;
    let identity = TableIdentity { created_seq, schema_seq, table_seq, horizon, keys, versions };
    debug_assert_eq!(r.pos, POSITION_OFFSET);
    let position = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| r.corrupt("truncated"))?);
    debug_assert_eq!(r.pos, NAMES_OFFSET - 4);
    let names_len = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| r.corrupt("truncated"))?);
    let names_end = usize::try_from(names_len)
        .ok()
        .and_then(|n| NAMES_OFFSET.checked_add(n))
        .filter(|&end| end <= covered.len())
        .ok_or_else(|| corrupt(NAMES_LEN_OFFSET, "names run past the end of the file"))?;
    let names = covered.get(NAMES_OFFSET..names_end).unwrap_or_default();
    let mut r = Reader { file: path, data: names, pos: 0, base: NAMES_OFFSET as u64 };
    let table = r.str()?.to_owned();
    if table.is_empty() || table.len() > TABLE_NAME_BYTES_MAX {
        return Err(r.corrupt("bad table name"));
    }
    let n_paths = r.count(1)?;
    let mut paths = Vec::with_capacity(n_paths);
    for _ in 0..n_paths {
        let n_fields = r.count(1)?;
        let path: Vec<String> =
            (0..n_fields).map(|_| r.str().map(str::to_owned)).collect::<Result<_>>()?;
        if paths.contains(&path) {
            return Err(r.corrupt("an index path listed twice"));
        }
        paths.push(path);
    }
    if r.remaining() != 0 {
        return Err(r.corrupt("bytes after the index paths"));
    }
    if usize::try_from(position).map_or(true, |p| p >= paths.len()) {
        return Err(corrupt(POSITION_OFFSET, "position names no index path"));
    }
    if table_seq > db_seq {
        return Err(corrupt(DB_SEQ_OFFSET, "the table's last event is after the file's seq"));
    }
    let body = covered.get(names_end..).unwrap_or_default().to_vec();
    let header = IndexHeader { db_seq, table, identity, paths, position };
    Ok(IndexFile { header, compression, body_len, body, body_offset: names_end as u64 })
}

impl IndexFile {
    /// Decode the body into the index it holds, checking every invariant of the module header.
    pub fn decode(self, path: &Path) -> Result<FieldIndex> {
        let field_path = self.header.path().cloned().unwrap_or_default();
        let raw;
        let (data, base) = match self.compression {
            0 => (&self.body[..], self.body_offset),
            _ => {
                // Streamed, so memory grows with what the body really holds (at most one byte
                // past the length the header states, which the check below refuses), not
                // with the length a damaged or crafted header claims.
                use std::io::Read;
                let fail = |e: std::io::Error| {
                    Error::corrupt(path, self.body_offset, format!("body does not decompress: {e}"))
                };
                let mut out = Vec::new();
                zstd::stream::read::Decoder::new(&self.body[..])
                    .map_err(fail)?
                    .take(self.body_len.saturating_add(1))
                    .read_to_end(&mut out)
                    .map_err(fail)?;
                raw = out;
                // Offsets in a compressed body count from the start of the body.
                (&raw[..], 0)
            }
        };
        if data.len() as u64 != self.body_len {
            return Err(Error::corrupt(path, self.body_offset, "body length mismatch"));
        }
        let table_seq = self.header.identity.table_seq;
        let mut r = Reader { file: path, data, pos: 0, base };
        let n_keys = r.count(2)?;
        let mut keys = KeySet::with_capacity_and_hasher(n_keys, Default::default());
        for _ in 0..n_keys {
            let key = match r.u8()? {
                0 => Key::Int(unzigzag(r.varint()?)),
                1 => Key::from(r.str()?.to_owned()),
                tag => return Err(r.corrupt(format!("unknown key tag {tag}"))),
            };
            if !keys.insert(key) {
                return Err(r.corrupt("a key appears twice"));
            }
        }
        let check_range = |r: &Reader<'_>, id: u64, from: u64, to: u64| -> Result<usize> {
            let id = usize::try_from(id).ok().filter(|&id| id < n_keys);
            match id {
                Some(id) if from <= to && from <= table_seq => Ok(id),
                Some(_) => Err(r.corrupt("a range that ends before it starts or after the file")),
                None => Err(r.corrupt("a key id names no key")),
            }
        };
        let n_live = r.count(3)?;
        let mut live = LiveMap::with_capacity_and_hasher(n_live, Default::default());
        for _ in 0..n_live {
            let value = r.value()?;
            let n = r.count(2)?;
            let mut holders = foldhash::HashMap::with_capacity_and_hasher(n, Default::default());
            let mut id: u64 = 0;
            for i in 0..n {
                let delta = r.varint()?;
                if i > 0 && delta == 0 {
                    return Err(r.corrupt("a key holds one value in two open ranges"));
                }
                id = id.checked_add(delta).ok_or_else(|| r.corrupt("key id overflows"))?;
                let from = r.varint()?;
                let key = check_range(&r, id, from, u64::MAX)?;
                holders.insert(key, from);
            }
            if holders.is_empty() || live.insert(value, holders).is_some() {
                return Err(r.corrupt("an empty or repeated group of open ranges"));
            }
        }
        let n_closed = r.count(3)?;
        let mut closed = ClosedMap::with_capacity_and_hasher(n_closed, Default::default());
        for _ in 0..n_closed {
            let value = r.value()?;
            let n = r.count(3)?;
            let mut ranges = Vec::with_capacity(n);
            for _ in 0..n {
                let (id, from, len) = (r.varint()?, r.varint()?, r.varint()?);
                let to = from
                    .checked_add(len)
                    .filter(|&to| to <= table_seq)
                    .ok_or_else(|| r.corrupt("a range that ends after the table's last event"))?;
                let key = check_range(&r, id, from, to)?;
                ranges.push(Closed { key, from, to });
            }
            if ranges.is_empty() || closed.insert(value, ranges).is_some() {
                return Err(r.corrupt("an empty or repeated group of ended ranges"));
            }
        }
        if r.remaining() != 0 {
            return Err(r.corrupt("bytes after the last range"));
        }
        Ok(FieldIndex::from_parts(field_path, keys, live, closed))
    }
}

/// Check every invariant of the index file `data` (whether it matches a table is not known
/// here); returns the number of ranges it holds. Never panics on any input.
pub fn check_bytes(path: &Path, data: &[u8]) -> Result<usize> {
    let index = read(path, data.to_vec())?.decode(path)?;
    let (_, live, closed) = index.parts();
    Ok(live.values().map(|l| l.len()).chain(closed.values().map(Vec::len)).sum())
}

#[cfg(test)]
#[path = "index_file_tests.rs"]
mod tests;
