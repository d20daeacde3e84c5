//! Snapshot files: `tables/<table>/snapshots/NNNNNNNN.snap`, the materialized rows of one
//! table at one seq (`NNNNNNNN` is the seq, zero-padded to 8 digits like segment numbers;
//! longer when the seq needs more).
//!
//! ```text
//! [header]                      44 + name bytes
//! [block] [block] ...           zero or more
//! [index]                       msgpack
//! [trailer]                     40 bytes
//!
//! header                        all integers little-endian
//! offset  size  field
//! 0       8     magic        "DRIFTSNP"
//! 8       4     version      u32: 1
//! 12      1     kind         u8: 1 full, 2 incremental
//! 13      1     reserved     0
//! 14      8     seq          u64: the rows are those of the table right after this seq
//! 22      8     base_seq     u64: incremental: the seq of the snapshot it applies on; full: 0
//! 30      8     created_seq  u64: the seq of the CREATE of the table's incarnation
//! 38      2     name_len     u16: bytes of the table name, 1..=64
//! 40      n     name         the table name (UTF-8)
//! 40+n    4     crc32        CRC-32 (IEEE) of bytes 0..40+n
//!
//! block
//! 0       4     stored_len   u32: bytes of zstd data after this 16-byte block header
//! 4       4     raw_len      u32: bytes the data decompresses to, 1..=BLOCK_RAW_BYTES_MAX
//! 8       4     entries      u32: entries in the block, at least 1
//! 12      4     crc32        CRC-32 of bytes 0..12 of this header, then of the data
//! 16      n     data         one zstd frame (level 3); decompressed: `entries` msgpack
//!                            arrays [key, document] back to back, the document nil for a
//!                            key deleted since the base (incremental snapshots only)
//!
//! index                         msgpack array, one [offset, len, entries] per block
//!
//! trailer
//! 0       8     magic        "DRIFTSNT"
//! 8       8     index_offset u64: where the index starts (= where the blocks end)
//! 16      4     index_len    u32
//! 20      8     entries      u64: entries in the file
//! 28      4     blocks       u32
//! 32      4     index_crc    CRC-32 of the index bytes
//! 36      4     crc32        CRC-32 of bytes 0..36 of the trailer
//! ```
//!
//! **What a snapshot holds.** A *full* snapshot holds every live row of the table's
//! incarnation `created_seq` at `seq`, as `[key, document]`. An *incremental* one holds only
//! the keys whose row changed in `(base_seq, seq]`: the document at `seq`, or nil when the key
//! is not live at `seq`. Its base is the previous snapshot of the same incarnation; the chain
//! of bases ends at a full snapshot. Nothing else is needed to resume: the rows at `seq`, and
//! the events after `seq` from the segments.
//!
//! **Invariants**, all checked on read: keys strictly increase across the whole file (so the
//! entries of several snapshots can be merged in one pass); the blocks start right after the
//! header and follow each other up to `index_offset`; the index names exactly those blocks;
//! the counts of the blocks, the index and the trailer agree; a block is read only after its
//! CRC matched, and decompressed with its output capped at `raw_len`. Any failure is
//! `Corrupt { file, offset }` with the offset of the header (0), the block, the index or the
//! trailer.
//!
//! **Block I/O** is in one function each way: [`write_block`] and [`read_block`], so sealing
//! blocks (encryption at rest) has one place to go.
//!
//! **Durability.** A snapshot is written to `NNNNNNNN.snap.tmp`, fsynced, renamed and the
//! directory fsynced; it is never modified afterwards. Snapshots are derived data: a missing
//! or damaged one costs time (reads replay from the segments instead), never an answer. Open
//! removes `.snap.tmp` files and snapshots past the last committed seq.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::limits::TABLE_NAME_BYTES_MAX;
use crate::storage::compressed::{BLOCK_RAW_BYTES_MAX, ZSTD_LEVEL};
use crate::storage::fs::{Fs, FsFile};
use crate::value::{Key, Value};

/// The header magic.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"DRIFTSNP";
/// The trailer magic.
pub const SNAPSHOT_TRAILER_MAGIC: [u8; 8] = *b"DRIFTSNT";
/// The snapshot format version.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Size of a block header.
pub const SNAP_BLOCK_HEADER_BYTES: usize = 16;
/// Size of the trailer.
pub const SNAP_TRAILER_BYTES: usize = 40;
/// The fixed part of the header: everything but the name and the CRC.
const HEADER_FIXED_BYTES: usize = 40;
/// A block is closed once its raw entries reach this many bytes.
pub const SNAP_BLOCK_RAW_TARGET: usize = 64 * 1024;
/// The directory of a table's snapshots, relative to the table directory.
pub const SNAPSHOTS_DIR: &str = "snapshots";
const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotKind {
    /// Every live row.
    Full,
    /// The rows changed since the base snapshot (deleted ones as tombstones).
    Incremental,
}

impl SnapshotKind {
    /// `full` or `incremental`.
    pub fn name(self) -> &'static str {
        match self {
            SnapshotKind::Full => "full",
            SnapshotKind::Incremental => "incremental",
        }
    }
    fn byte(self) -> u8 {
        match self {
            SnapshotKind::Full => 1,
            SnapshotKind::Incremental => 2,
        }
    }
}

impl std::fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What a snapshot's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The table.
    pub table: String,
    /// The seq the rows are taken at.
    pub seq: u64,
    /// Full or incremental.
    pub kind: SnapshotKind,
    /// For an incremental snapshot, the seq of its base; 0 for a full one.
    pub base_seq: u64,
    /// The seq of the CREATE of the table's incarnation.
    pub created_seq: u64,
}

impl SnapshotHeader {
    /// The header bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let name = self.table.as_bytes();
        if name.is_empty() || name.len() > TABLE_NAME_BYTES_MAX {
            return Err(Error::invalid(format!("table name {:?} is not valid", self.table)));
        }
        let mut out = Vec::with_capacity(HEADER_FIXED_BYTES + name.len() + 4);
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.push(self.kind.byte());
        out.push(0);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.base_seq.to_le_bytes());
        out.extend_from_slice(&self.created_seq.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Decode and check the header at the start of `data` (which may hold more bytes).
    /// Returns the header and its length.
    pub fn decode(path: &Path, data: &[u8]) -> Result<(SnapshotHeader, usize)> {
        let bad = |reason: String| Error::corrupt(path, 0, format!("snapshot header: {reason}"));
        if data.get(..8) != Some(&SNAPSHOT_MAGIC[..]) {
            return Err(bad("no DRIFTSNP magic (not a snapshot file)".into()));
        }
        let version = u32_at(data, 8).ok_or_else(|| bad("cut short".into()))?;
        let name_len = data
            .get(38..40)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or_else(|| bad("cut short".into()))? as usize;
        if name_len == 0 || name_len > TABLE_NAME_BYTES_MAX {
            return Err(bad(format!("table name length {name_len} is out of bounds")));
        }
        let end = HEADER_FIXED_BYTES + name_len;
        let body = data.get(..end).ok_or_else(|| bad("cut short".into()))?;
        let stored = u32_at(data, end).ok_or_else(|| bad("cut short".into()))?;
        if crc32fast::hash(body) != stored {
            return Err(bad("CRC mismatch".into()));
        }
        if version != SNAPSHOT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: version,
                supported: SNAPSHOT_VERSION,
            });
        }
        let kind = match data.get(12) {
            Some(1) => SnapshotKind::Full,
            Some(2) => SnapshotKind::Incremental,
            other => return Err(bad(format!("unknown kind {other:?}"))),
        };
        let table = std::str::from_utf8(body.get(HEADER_FIXED_BYTES..).unwrap_or_default())
            .map_err(|_| bad("table name is not UTF-8".into()))?
            .to_owned();
        let header = SnapshotHeader {
            table,
            seq: u64_at(data, 14).unwrap_or(0),
            kind,
            base_seq: u64_at(data, 22).unwrap_or(0),
            created_seq: u64_at(data, 30).unwrap_or(0),
        };
        let consistent = match kind {
            SnapshotKind::Full => header.base_seq == 0,
            SnapshotKind::Incremental => header.base_seq > 0 && header.base_seq < header.seq,
        };
        if !consistent || header.created_seq > header.seq {
            return Err(bad(format!(
                "{kind} snapshot at seq {} with base {} and incarnation {}",
                header.seq, header.base_seq, header.created_seq
            )));
        }
        Ok((header, end + 4))
    }
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    buf.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
}

/// The file name of the snapshot at `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("{seq:08}{SUFFIX}")
}

/// The seq of a snapshot file name.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&seq| seq > 0 && snapshot_name(seq) == name)
}

/// The seq of a snapshot being written (`NNNNNNNN.snap.tmp`).
pub fn parse_snapshot_tmp_name(name: &str) -> Option<u64> {
    parse_snapshot_name(&format!("{}{SUFFIX}", name.strip_suffix(TMP_SUFFIX)?))
}

/// One entry: a key and its document (`None`: not live, in an incremental snapshot).
pub type Entry = (Key, Option<Value>);

/// Compress `raw` (whole msgpack entries, `entries` of them) into one block's bytes.
/// The one place a block is written.
pub fn write_block(
    compressor: &mut zstd::bulk::Compressor<'static>,
    raw: &[u8],
    entries: u32,
) -> std::io::Result<Vec<u8>> {
    let invalid = |what| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    if raw.is_empty() || raw.len() > BLOCK_RAW_BYTES_MAX as usize || entries == 0 {
        return Err(invalid("snapshot block out of bounds"));
    }
    let data = compressor.compress(raw)?;
    let stored_len = u32::try_from(data.len()).map_err(|_| invalid("block too large"))?;
    let mut bytes = Vec::with_capacity(SNAP_BLOCK_HEADER_BYTES + data.len());
    bytes.extend_from_slice(&stored_len.to_le_bytes());
    bytes.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&entries.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes);
    crc.update(&data);
    bytes.extend_from_slice(&crc.finalize().to_le_bytes());
    bytes.extend_from_slice(&data);
    Ok(bytes)
}

/// The stored length of the block whose first bytes are `head` (`None`: fewer than 4 bytes).
pub fn block_len(head: &[u8]) -> Option<u64> {
    u32_at(head, 0).map(|n| SNAP_BLOCK_HEADER_BYTES as u64 + u64::from(n))
}

/// Check and decode one block, `bytes` exactly as stored at `offset` of `path`: its lengths,
/// its CRC (before anything is decompressed), its decompressed size, and its entries: exactly
/// as many as the header says, whole, with keys strictly increasing and above `after` (the
/// last key of the block before it). The one place a block is read.
pub fn read_block(
    path: &Path,
    offset: u64,
    bytes: &[u8],
    after: Option<&Key>,
    decompressor: &mut zstd::bulk::Decompressor<'static>,
) -> Result<Vec<Entry>> {
    let bad = |reason: String| Error::corrupt(path, offset, format!("snapshot block: {reason}"));
    let header = bytes.get(..SNAP_BLOCK_HEADER_BYTES).ok_or_else(|| bad("cut short".into()))?;
    let (stored_len, raw_len, entries, stored_crc) = (
        u32_at(header, 0).unwrap_or(0) as usize,
        u32_at(header, 4).unwrap_or(0),
        u32_at(header, 8).unwrap_or(0),
        u32_at(header, 12).unwrap_or(0),
    );
    let data = bytes.get(SNAP_BLOCK_HEADER_BYTES..).unwrap_or_default();
    if data.len() != stored_len {
        return Err(bad(format!("{} data bytes, its header says {stored_len}", data.len())));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(header.get(..12).unwrap_or_default());
    crc.update(data);
    let computed = crc.finalize();
    if computed != stored_crc {
        return Err(bad(format!(
            "CRC mismatch: stored {stored_crc:#010x}, computed {computed:#010x}"
        )));
    }
    if raw_len == 0 || raw_len > BLOCK_RAW_BYTES_MAX || entries == 0 {
        return Err(bad(format!("raw length {raw_len} or {entries} entries out of bounds")));
    }
    let raw = decompressor
        .decompress(data, raw_len as usize)
        .map_err(|e| bad(format!("does not decompress: {e}")))?;
    if raw.len() != raw_len as usize {
        return Err(bad(format!("decompresses to {} bytes, not {raw_len}", raw.len())));
    }
    let mut out: Vec<Entry> = Vec::with_capacity(entries.min(65_536) as usize);
    let mut de = rmp_serde::Deserializer::new(Cursor::new(raw.as_slice()));
    while (de.position() as usize) < raw.len() {
        let at = de.position();
        let (key, doc) = <(Key, Value)>::deserialize(&mut de)
            .map_err(|e| bad(format!("entry at byte {at} does not decode: {e}")))?;
        let previous = out.last().map(|(k, _)| k).or(after);
        if previous.is_some_and(|p| *p >= key) {
            return Err(bad(format!("key {key} at byte {at} is not above the key before it")));
        }
        let doc = if matches!(doc, Value::Null) { None } else { Some(doc) };
        out.push((key, doc));
    }
    if out.len() != entries as usize {
        return Err(bad(format!("holds {} entries, its header says {entries}", out.len())));
    }
    Ok(out)
}

/// What a block index entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Offset of the block in the file.
    pub offset: u64,
    /// Bytes the block takes (header and data).
    pub len: u64,
    /// Entries in it.
    pub entries: u32,
}

/// What the trailer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trailer {
    index_offset: u64,
    index_len: u32,
    entries: u64,
    blocks: u32,
    index_crc: u32,
}

impl Trailer {
    fn encode(&self) -> [u8; SNAP_TRAILER_BYTES] {
        let mut body = Vec::with_capacity(SNAP_TRAILER_BYTES);
        body.extend_from_slice(&SNAPSHOT_TRAILER_MAGIC);
        body.extend_from_slice(&self.index_offset.to_le_bytes());
        body.extend_from_slice(&self.index_len.to_le_bytes());
        body.extend_from_slice(&self.entries.to_le_bytes());
        body.extend_from_slice(&self.blocks.to_le_bytes());
        body.extend_from_slice(&self.index_crc.to_le_bytes());
        body.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        let mut out = [0u8; SNAP_TRAILER_BYTES];
        out.copy_from_slice(&body);
        out
    }

    fn decode(path: &Path, offset: u64, bytes: &[u8]) -> Result<Trailer> {
        let bad =
            |reason: &str| Error::corrupt(path, offset, format!("snapshot trailer: {reason}"));
        if bytes.len() != SNAP_TRAILER_BYTES || bytes.get(..8) != Some(&SNAPSHOT_TRAILER_MAGIC[..])
        {
            return Err(bad("no DRIFTSNT magic (the file is cut short or damaged)"));
        }
        if u32_at(bytes, 36) != Some(crc32fast::hash(bytes.get(..36).unwrap_or_default())) {
            return Err(bad("CRC mismatch"));
        }
        Ok(Trailer {
            index_offset: u64_at(bytes, 8).unwrap_or(0),
            index_len: u32_at(bytes, 16).unwrap_or(0),
            entries: u64_at(bytes, 20).unwrap_or(0),
            blocks: u32_at(bytes, 28).unwrap_or(0),
            index_crc: u32_at(bytes, 32).unwrap_or(0),
        })
    }
}

/// Writes one snapshot file: entries in strictly increasing key order, then [`finish`]
/// (which makes it durable under its final name).
///
/// [`finish`]: SnapshotWriter::finish
pub struct SnapshotWriter<'a> {
    fs: &'a dyn Fs,
    dir: PathBuf,
    name: String,
    tmp: PathBuf,
    file: Box<dyn FsFile>,
    compressor: zstd::bulk::Compressor<'static>,
    raw: Vec<u8>,
    block_target: usize,
    raw_entries: u32,
    index: Vec<BlockRef>,
    entries: u64,
    last_key: Option<Key>,
}

impl std::fmt::Debug for SnapshotWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter").field("tmp", &self.tmp).finish_non_exhaustive()
    }
}

impl<'a> SnapshotWriter<'a> {
    /// Start `dir/NNNNNNNN.snap.tmp` (replacing a leftover one) with the header. Blocks are
    /// closed once their raw entries reach `block_target` bytes ([`SNAP_BLOCK_RAW_TARGET`]).
    pub fn create(
        fs: &'a dyn Fs,
        dir: &Path,
        header: &SnapshotHeader,
        block_target: usize,
    ) -> Result<Self> {
        let name = snapshot_name(header.seq);
        let tmp = dir.join(format!("{name}.tmp"));
        if fs.exists(&tmp) {
            fs.remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        let mut file = fs.open_append(&tmp, true).map_err(|e| Error::io(&tmp, e))?;
        file.append(&header.encode()?).map_err(|e| Error::io(&tmp, e))?;
        let compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| Error::io(&tmp, e))?;
        Ok(SnapshotWriter {
            fs,
            dir: dir.to_path_buf(),
            name,
            tmp,
            file,
            compressor,
            raw: Vec::new(),
            block_target: block_target.clamp(1, SNAP_BLOCK_RAW_TARGET * 16),
            raw_entries: 0,
            index: Vec::new(),
            entries: 0,
            last_key: None,
        })
    }

    /// Add one entry; keys must strictly increase.
    pub fn push(&mut self, key: &Key, doc: Option<&Value>) -> Result<()> {
        if self.last_key.as_ref().is_some_and(|last| last >= key) {
            return Err(Error::invalid(format!("snapshot entry {key} out of key order")));
        }
        // The block is closed once it reaches the target, so with one document of at most
        // DOCUMENT_BYTES_MAX it stays under BLOCK_RAW_BYTES_MAX (checked by `write_block`).
        self.raw.push(0x92);
        crate::msgpack::write_key(&mut self.raw, Some(key))?;
        crate::msgpack::write_value(&mut self.raw, doc.unwrap_or(&Value::Null))?;
        self.raw_entries += 1;
        self.entries += 1;
        self.last_key = Some(key.clone());
        if self.raw.len() >= self.block_target {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if self.raw_entries == 0 {
            return Ok(());
        }
        let bytes = write_block(&mut self.compressor, &self.raw, self.raw_entries)
            .map_err(|e| Error::io(&self.tmp, e))?;
        let offset = self.file.len();
        self.file.append(&bytes).map_err(|e| Error::io(&self.tmp, e))?;
        self.index.push(BlockRef { offset, len: bytes.len() as u64, entries: self.raw_entries });
        self.raw.clear();
        self.raw_entries = 0;
        Ok(())
    }

    /// Write the last block, the index and the trailer; fsync; rename to the final name;
    /// fsync the directory. Returns the final path, the entries and the file's bytes.
    pub fn finish(mut self) -> Result<(PathBuf, u64, u64)> {
        self.flush_block()?;
        let index: Vec<(u64, u64, u32)> =
            self.index.iter().map(|b| (b.offset, b.len, b.entries)).collect();
        let index = rmp_serde::to_vec(&index).map_err(|e| Error::invalid(e.to_string()))?;
        let trailer = Trailer {
            index_offset: self.file.len(),
            index_len: u32::try_from(index.len())
                .map_err(|_| Error::invalid("snapshot index too large"))?,
            entries: self.entries,
            blocks: u32::try_from(self.index.len())
                .map_err(|_| Error::invalid("too many snapshot blocks"))?,
            index_crc: crc32fast::hash(&index),
        };
        let tmp = self.tmp.clone();
        let io = |e| Error::io(&tmp, e);
        self.file.append(&index).map_err(io)?;
        self.file.append(&trailer.encode()).map_err(io)?;
        self.file.sync().map_err(io)?;
        let bytes = self.file.len();
        drop(self.file);
        let path = self.dir.join(&self.name);
        self.fs.rename(&self.tmp, &path).map_err(|e| Error::io(&path, e))?;
        self.fs.sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        Ok((path, self.entries, bytes))
    }

    /// Give up: remove the temporary file (best effort; open removes leftovers too).
    pub fn abandon(self) {
        let _ = self.fs.remove_file(&self.tmp);
    }
}

/// An open snapshot file whose header, index and trailer were checked; its blocks are read
/// (and checked) one at a time.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// The file.
    pub path: PathBuf,
    /// Its header.
    pub header: SnapshotHeader,
    /// Its blocks, in order.
    pub blocks: Vec<BlockRef>,
    /// Entries in the file.
    pub entries: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

impl SnapshotFile {
    /// Open `path`: read and check the header, the trailer and the index (not the blocks).
    pub fn open(fs: &dyn Fs, path: &Path) -> Result<SnapshotFile> {
        Self::open_from(path, &FsSource { fs, path })
    }

    fn open_from(path: &Path, src: &dyn Source) -> Result<SnapshotFile> {
        let io = |e| Error::io(path, e);
        let len = src.len().map_err(io)?;
        let head_len = (HEADER_FIXED_BYTES + TABLE_NAME_BYTES_MAX + 4) as u64;
        let head = src.read_at(0, head_len.min(len)).map_err(io)?;
        let (header, header_len) = SnapshotHeader::decode(path, &head)?;
        let min = header_len as u64 + SNAP_TRAILER_BYTES as u64;
        if len < min {
            return Err(Error::corrupt(
                path,
                len,
                format!("snapshot of {len} bytes has no room for its trailer"),
            ));
        }
        let trailer_at = len - SNAP_TRAILER_BYTES as u64;
        let trailer_bytes = src.read_at(trailer_at, SNAP_TRAILER_BYTES as u64).map_err(io)?;
        let trailer = Trailer::decode(path, trailer_at, &trailer_bytes)?;
        let index_end = trailer.index_offset.checked_add(u64::from(trailer.index_len));
        if trailer.index_offset < header_len as u64 || index_end != Some(trailer_at) {
            return Err(Error::corrupt(path, trailer_at, "snapshot trailer: index out of place"));
        }
        let index_bytes =
            src.read_at(trailer.index_offset, u64::from(trailer.index_len)).map_err(io)?;
        let bad_index = |reason: String| {
            Error::corrupt(path, trailer.index_offset, format!("snapshot index: {reason}"))
        };
        if crc32fast::hash(&index_bytes) != trailer.index_crc {
            return Err(bad_index("CRC mismatch".into()));
        }
        let index: Vec<(u64, u64, u32)> =
            rmp_serde::from_slice(&index_bytes).map_err(|e| bad_index(e.to_string()))?;
        let mut next = header_len as u64;
        let mut entries = 0u64;
        let mut blocks = Vec::with_capacity(index.len());
        for (offset, block_len, n) in index {
            if offset != next || block_len <= SNAP_BLOCK_HEADER_BYTES as u64 || n == 0 {
                return Err(bad_index(format!(
                    "block at {offset} of {block_len} bytes out of place"
                )));
            }
            next = offset.saturating_add(block_len);
            entries += u64::from(n);
            blocks.push(BlockRef { offset, len: block_len, entries: n });
        }
        if next != trailer.index_offset
            || entries != trailer.entries
            || blocks.len() as u64 != u64::from(trailer.blocks)
        {
            return Err(bad_index(format!(
                "{} blocks of {entries} entries ending at {next}; the trailer says {} of {} ending at {}",
                blocks.len(),
                trailer.blocks,
                trailer.entries,
                trailer.index_offset
            )));
        }
        Ok(SnapshotFile { path: path.to_path_buf(), header, blocks, entries, bytes: len })
    }

    /// Read and check block `i` (see [`read_block`]); `after` is the last key of block `i-1`.
    pub fn block(
        &self,
        fs: &dyn Fs,
        i: usize,
        after: Option<&Key>,
        decompressor: &mut zstd::bulk::Decompressor<'static>,
    ) -> Result<Vec<Entry>> {
        self.block_from(&FsSource { fs, path: &self.path }, i, after, decompressor)
    }

    fn block_from(
        &self,
        src: &dyn Source,
        i: usize,
        after: Option<&Key>,
        decompressor: &mut zstd::bulk::Decompressor<'static>,
    ) -> Result<Vec<Entry>> {
        let Some(block) = self.blocks.get(i) else { return Ok(Vec::new()) };
        let bytes = src.read_at(block.offset, block.len).map_err(|e| Error::io(&self.path, e))?;
        let entries = read_block(&self.path, block.offset, &bytes, after, decompressor)?;
        if entries.len() != block.entries as usize {
            return Err(Error::corrupt(
                &self.path,
                block.offset,
                format!(
                    "snapshot block holds {} entries, the index says {}",
                    entries.len(),
                    block.entries
                ),
            ));
        }
        Ok(entries)
    }

    /// Read and check every block, in order, keeping one in memory at a time.
    /// Returns the number of entries.
    pub fn verify(&self, fs: &dyn Fs) -> Result<u64> {
        self.verify_from(&FsSource { fs, path: &self.path })
    }

    fn verify_from(&self, src: &dyn Source) -> Result<u64> {
        let mut decompressor = new_decompressor(&self.path)?;
        let mut last: Option<Key> = None;
        let mut count = 0u64;
        for i in 0..self.blocks.len() {
            let entries = self.block_from(src, i, last.as_ref(), &mut decompressor)?;
            count += entries.len() as u64;
            if self.header.kind == SnapshotKind::Full
                && let Some((key, None)) = entries.iter().find(|(_, d)| d.is_none())
            {
                let at = self.blocks.get(i).map_or(0, |b| b.offset);
                return Err(Error::corrupt(
                    &self.path,
                    at,
                    format!("full snapshot holds a tombstone for key {key}"),
                ));
            }
            last = entries.into_iter().last().map(|(k, _)| k);
        }
        Ok(count)
    }
}

impl SnapshotFile {
    /// Open a snapshot file held in memory (`data` is the whole file): header, trailer and
    /// index are checked, not the blocks.
    pub fn open_bytes(path: &Path, data: &[u8]) -> Result<SnapshotFile> {
        Self::open_from(path, &data)
    }

    /// Read and check block `i` of the file held in `data` (see [`read_block`]).
    pub fn block_in(
        &self,
        data: &[u8],
        i: usize,
        after: Option<&Key>,
        decompressor: &mut zstd::bulk::Decompressor<'static>,
    ) -> Result<Vec<Entry>> {
        self.block_from(&data, i, after, decompressor)
    }
}

/// Check a whole snapshot file held in memory: header, index, trailer and every block.
/// Returns what it holds. Never panics on any input.
pub fn check_bytes(path: &Path, data: &[u8]) -> Result<SnapshotFile> {
    let file = SnapshotFile::open_from(path, &data)?;
    file.verify_from(&data)?;
    Ok(file)
}

/// Where a snapshot's bytes come from: a file through [`Fs`], or memory.
trait Source {
    fn len(&self) -> std::io::Result<u64>;
    fn read_at(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>>;
}

struct FsSource<'a> {
    fs: &'a dyn Fs,
    path: &'a Path,
}

impl Source for FsSource<'_> {
    fn len(&self) -> std::io::Result<u64> {
        self.fs.file_len(self.path)
    }
    fn read_at(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        self.fs.read_at(self.path, offset, len)
    }
}

impl Source for &[u8] {
    fn len(&self) -> std::io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
    fn read_at(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = usize::try_from(offset.saturating_add(len)).unwrap_or(usize::MAX);
        self.get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }
}

/// A zstd decompressor; `path` names the file in the error when zstd cannot start.
pub fn new_decompressor(path: &Path) -> Result<zstd::bulk::Decompressor<'static>> {
    zstd::bulk::Decompressor::new().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
