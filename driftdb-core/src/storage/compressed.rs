//! Compressed segments: the files compaction writes, `compacted-GGGGGGGG-NNNNNNNN.seg`.
//!
//! ```text
//! [file header: "DRIFTSEG", version 2]        16 bytes
//! [block] [block] ...                         one or more
//! [trailer]                                   40 bytes
//!
//! block                                       all integers little-endian
//! offset  size  field
//! 0       4     stored_len  u32: bytes of zstd data after this 32-byte block header
//! 4       4     raw_len     u32: bytes the data decompresses to, 1..=BLOCK_RAW_BYTES_MAX
//! 8       4     events      u32: frames in the decompressed bytes, at least 1
//! 12      8     first_seq   u64: seq of the block's first frame
//! 20      8     last_seq    u64: seq of the block's last frame
//! 28      4     crc32       CRC-32 (IEEE) of bytes 0..28 of this header, then of the data
//! 32      n     data        one zstd frame (level 3); decompressed: `events` segment frames
//!
//! trailer
//! 0       8     magic       "DRIFTEND"
//! 8       4     blocks      u32: blocks in the file
//! 12      8     events      u64: frames in the file
//! 20      8     first_seq   u64: seq of the file's first frame
//! 28      8     last_seq    u64: seq of the file's last frame
//! 36      4     crc32       CRC-32 (IEEE) of bytes 0..36 of the trailer
//! ```
//!
//! The decompressed bytes of a block are ordinary segment frames (`frame.rs`: length, CRC,
//! seq, time, type, payload), byte for byte what a plain segment holds, so compaction keeps
//! every event's seq, time, type and payload exactly.
//!
//! **Invariants**, all checked on read:
//! - a block holds whole frames; the frames fill its decompressed bytes exactly, and each
//!   frame's own CRC is checked again after decompression;
//! - a block is closed before a frame that would take it past the writer's target
//!   ([`BLOCK_RAW_BYTES_TARGET`] by default, `Options::compaction_block_bytes`), so its raw size
//!   is at most that target or one frame; reads refuse more than [`BLOCK_RAW_BYTES_MAX`] before
//!   allocating anything;
//! - seqs never decrease, within a block and from block to block; `first_seq`, `last_seq` and
//!   `events` of a block and of the trailer match the frames;
//! - the trailer ends the file: a file cut at a block boundary, or missing its last block,
//!   is detected.
//!
//! **Validation.** The block's length fields are bounds-checked, then its CRC (over header
//! and data) is checked, and only then is it decompressed, with the output capped at
//! `raw_len`. Any failure is `Corrupt { file, offset }` where `offset` is the start of the
//! block (a damaged frame inside a block is reported at its block, the reason naming the
//! frame's position in the decompressed bytes), of the trailer, or 0 for the header.
//!
//! [`read_trailer`] and [`BlockReader::read_block`] are these checks for the trailer and for
//! one block; the engine's reader (`segment::visit_frames`) runs them over the whole file and
//! stops at the first damage, and `driftdb inspect` runs them block by block to list what is
//! readable past a damaged block.
//!
//! **Durability.** A compressed segment is written once, under a temporary name, fsynced and
//! renamed by compaction (see `compaction.rs`); it is never appended to afterwards. It
//! is trusted whole: there is no torn tail to cut.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::limits::SEGMENT_FRAME_BYTES_MAX;
use crate::storage::frame::{
    self, BODY_OFFSET, FILE_HEADER_BYTES, FileHeader, Frame, SEGMENT_MAGIC,
};
use crate::storage::segment::FrameVisitor;

/// The segment header version of a compressed segment (a plain one is version 1).
pub const COMPRESSED_SEGMENT_VERSION: u32 = 2;
/// Size of a block header.
pub const BLOCK_HEADER_BYTES: usize = 32;
/// Size of the trailer.
pub const TRAILER_BYTES: usize = 40;
/// The trailer's magic.
pub const TRAILER_MAGIC: [u8; 8] = *b"DRIFTEND";
/// By default, a block is closed before a frame that would take its raw size past this.
pub const BLOCK_RAW_BYTES_TARGET: usize = 64 * 1024;
/// The largest raw block a reader accepts: the target, or one frame of the largest size.
pub const BLOCK_RAW_BYTES_MAX: u32 = SEGMENT_FRAME_BYTES_MAX + BODY_OFFSET as u32;
/// The zstd level blocks are compressed with.
pub const ZSTD_LEVEL: i32 = 3;

const _: () = assert!(BLOCK_RAW_BYTES_TARGET <= BLOCK_RAW_BYTES_MAX as usize);

// Block header field offsets.
const STORED_LEN_OFFSET: usize = 0;
const RAW_LEN_OFFSET: usize = STORED_LEN_OFFSET + size_of::<u32>();
const EVENTS_OFFSET: usize = RAW_LEN_OFFSET + size_of::<u32>();
const FIRST_SEQ_OFFSET: usize = EVENTS_OFFSET + size_of::<u32>();
const LAST_SEQ_OFFSET: usize = FIRST_SEQ_OFFSET + size_of::<u64>();
const BLOCK_CRC_OFFSET: usize = LAST_SEQ_OFFSET + size_of::<u64>();
const _: () = assert!(BLOCK_CRC_OFFSET + size_of::<u32>() == BLOCK_HEADER_BYTES);

// Trailer field offsets.
const T_BLOCKS_OFFSET: usize = TRAILER_MAGIC.len();
const T_EVENTS_OFFSET: usize = T_BLOCKS_OFFSET + size_of::<u32>();
const T_FIRST_SEQ_OFFSET: usize = T_EVENTS_OFFSET + size_of::<u64>();
const T_LAST_SEQ_OFFSET: usize = T_FIRST_SEQ_OFFSET + size_of::<u64>();
const T_CRC_OFFSET: usize = T_LAST_SEQ_OFFSET + size_of::<u64>();
const _: () = assert!(T_CRC_OFFSET + size_of::<u32>() == TRAILER_BYTES);

/// The 16-byte header of a compressed segment.
pub(crate) fn file_header() -> [u8; FILE_HEADER_BYTES] {
    FileHeader { magic: SEGMENT_MAGIC, version: COMPRESSED_SEGMENT_VERSION }.encode()
}

/// A finished block: its bytes on disk and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub bytes: Vec<u8>,
    pub events: u32,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Collects frames, in seq order, into compressed blocks.
pub(crate) struct BlockBuilder {
    target: usize,
    raw: Vec<u8>,
    events: u32,
    first_seq: u64,
    last_seq: u64,
    compressor: zstd::bulk::Compressor<'static>,
}

impl std::fmt::Debug for BlockBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockBuilder")
            .field("raw_len", &self.raw.len())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl BlockBuilder {
    /// A builder closing blocks at `target` raw bytes (at most [`BLOCK_RAW_BYTES_MAX`]).
    pub fn new(target: usize) -> io::Result<Self> {
        let target = target.clamp(1, BLOCK_RAW_BYTES_MAX as usize);
        Ok(BlockBuilder {
            target,
            raw: Vec::with_capacity(target.min(BLOCK_RAW_BYTES_TARGET)),
            events: 0,
            first_seq: 0,
            last_seq: 0,
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
        })
    }

    /// Add one whole encoded frame with its seq. When the frame would take the open block
    /// past its target, that block is finished and returned, and the frame starts the next.
    pub fn push(&mut self, frame: &[u8], seq: u64) -> io::Result<Option<Block>> {
        debug_assert!(self.events == 0 || seq >= self.last_seq, "frames out of seq order");
        let done = if self.events > 0 && self.raw.len() + frame.len() > self.target {
            self.finish()?
        } else {
            None
        };
        if self.events == 0 {
            self.first_seq = seq;
        }
        self.raw.extend_from_slice(frame);
        self.events += 1;
        self.last_seq = seq;
        Ok(done)
    }

    /// Finish the open block, if it holds any frame.
    pub fn finish(&mut self) -> io::Result<Option<Block>> {
        if self.events == 0 {
            return Ok(None);
        }
        let data = self.compressor.compress(&self.raw)?;
        let too_large = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        let stored_len = u32::try_from(data.len()).map_err(|_| too_large("block too large"))?;
        let raw_len = u32::try_from(self.raw.len()).map_err(|_| too_large("block too large"))?;
        if raw_len > BLOCK_RAW_BYTES_MAX {
            return Err(too_large("block over its raw size limit"));
        }
        let mut bytes = Vec::with_capacity(BLOCK_HEADER_BYTES + data.len());
        bytes.extend_from_slice(&stored_len.to_le_bytes());
        bytes.extend_from_slice(&raw_len.to_le_bytes());
        bytes.extend_from_slice(&self.events.to_le_bytes());
        bytes.extend_from_slice(&self.first_seq.to_le_bytes());
        bytes.extend_from_slice(&self.last_seq.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes);
        crc.update(&data);
        bytes.extend_from_slice(&crc.finalize().to_le_bytes());
        bytes.extend_from_slice(&data);
        let block = Block {
            bytes,
            events: self.events,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
        };
        self.raw.clear();
        self.events = 0;
        Ok(Some(block))
    }
}

/// What a compressed segment holds, written as its trailer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Blocks in the file.
    pub blocks: u32,
    /// Frames (events) in the file.
    pub events: u64,
    /// Seq of the file's first frame.
    pub first_seq: u64,
    /// Seq of the file's last frame.
    pub last_seq: u64,
}

impl Summary {
    /// Account for one more block, in order.
    pub(crate) fn add(&mut self, block: &Block) {
        self.add_header(&BlockHeader {
            stored_len: 0,
            raw_len: 0,
            events: block.events,
            first_seq: block.first_seq,
            last_seq: block.last_seq,
        });
    }

    /// Account for one more block, read back, in order.
    pub fn add_header(&mut self, block: &BlockHeader) {
        if self.blocks == 0 {
            self.first_seq = block.first_seq;
        }
        self.blocks += 1;
        self.events += u64::from(block.events);
        self.last_seq = block.last_seq;
    }

    /// The trailer bytes.
    pub(crate) fn trailer(&self) -> [u8; TRAILER_BYTES] {
        let mut out = [0u8; TRAILER_BYTES];
        let mut body = Vec::with_capacity(TRAILER_BYTES);
        body.extend_from_slice(&TRAILER_MAGIC);
        body.extend_from_slice(&self.blocks.to_le_bytes());
        body.extend_from_slice(&self.events.to_le_bytes());
        body.extend_from_slice(&self.first_seq.to_le_bytes());
        body.extend_from_slice(&self.last_seq.to_le_bytes());
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        out.copy_from_slice(&body);
        out
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + 4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    buf.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// Read and check the trailer at the end of `data` (a whole compressed segment): its magic and
/// CRC. Returns the trailer's offset (where the blocks end) and what it says. Damage is
/// `Corrupt` at the trailer's offset (at the file's length when the file is too short to hold
/// a header and a trailer).
pub fn read_trailer(path: &Path, data: &[u8]) -> Result<(usize, Summary)> {
    let min = FILE_HEADER_BYTES + TRAILER_BYTES;
    let Some(at) = data.len().checked_sub(TRAILER_BYTES).filter(|_| data.len() >= min) else {
        return Err(Error::corrupt(
            path,
            data.len() as u64,
            format!("compressed segment of {} bytes has no room for its trailer", data.len()),
        ));
    };
    let trailer = data.get(at..).unwrap_or_default();
    let bad = |reason: &str| {
        Err(Error::corrupt(path, at as u64, format!("compressed segment trailer: {reason}")))
    };
    if trailer.get(..TRAILER_MAGIC.len()) != Some(&TRAILER_MAGIC[..]) {
        return bad("no trailer magic (the file is cut short or damaged)");
    }
    let stored = u32_at(trailer, T_CRC_OFFSET);
    if crc32fast::hash(trailer.get(..T_CRC_OFFSET).unwrap_or_default()) != stored {
        return bad("CRC mismatch");
    }
    let summary = Summary {
        blocks: u32_at(trailer, T_BLOCKS_OFFSET),
        events: u64_at(trailer, T_EVENTS_OFFSET),
        first_seq: u64_at(trailer, T_FIRST_SEQ_OFFSET),
        last_seq: u64_at(trailer, T_LAST_SEQ_OFFSET),
    };
    Ok((at, summary))
}

/// The fields of a block header, as stored (see the layout above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Bytes of zstd data after the 32-byte block header.
    pub stored_len: u32,
    /// Bytes the data decompresses to.
    pub raw_len: u32,
    /// Frames in the decompressed bytes.
    pub events: u32,
    /// Seq of the block's first frame.
    pub first_seq: u64,
    /// Seq of the block's last frame.
    pub last_seq: u64,
}

impl BlockHeader {
    /// The header fields at `offset` of `data`, read without checking anything (`None` when
    /// fewer than [`BLOCK_HEADER_BYTES`] bytes are left). Only a block that
    /// [`BlockReader::read_block`] accepts has trustworthy fields.
    pub fn read(data: &[u8], offset: usize) -> Option<BlockHeader> {
        let header = data.get(offset..offset.checked_add(BLOCK_HEADER_BYTES)?)?;
        Some(BlockHeader {
            stored_len: u32_at(header, STORED_LEN_OFFSET),
            raw_len: u32_at(header, RAW_LEN_OFFSET),
            events: u32_at(header, EVENTS_OFFSET),
            first_seq: u64_at(header, FIRST_SEQ_OFFSET),
            last_seq: u64_at(header, LAST_SEQ_OFFSET),
        })
    }

    /// Bytes the block takes in the file: its header and its stored data.
    pub fn size(&self) -> u64 {
        BLOCK_HEADER_BYTES as u64 + u64::from(self.stored_len)
    }
}

/// A callback given, for each frame of a block, the frame's offset in the decompressed bytes,
/// the decoded frame and its bytes.
pub type BlockFrameVisitor<'f> = dyn FnMut(usize, &Frame<'_>, &[u8]) -> Result<()> + 'f;

/// Reads and checks the blocks of compressed segments one at a time. The engine reads a file
/// through `visit_frames`, which stops at the first damage; a tool that lists what is readable
/// past a damaged block (`driftdb inspect`) calls [`BlockReader::read_block`] at each offset
/// itself, with the same checks.
pub struct BlockReader {
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl std::fmt::Debug for BlockReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockReader").finish_non_exhaustive()
    }
}

impl BlockReader {
    /// A reader; `path` names the file in the error when zstd cannot start.
    pub fn new(path: &Path) -> Result<Self> {
        let decompressor = zstd::bulk::Decompressor::new().map_err(|e| Error::io(path, e))?;
        Ok(BlockReader { decompressor })
    }

    /// Read the block at `offset` of `data` (a whole compressed segment whose blocks end at
    /// `end`, the trailer's offset) and check it: its lengths are in bounds, its CRC matches
    /// (before anything is decompressed), it decompresses to exactly `raw_len` bytes holding
    /// exactly `events` whole frames, each with a valid CRC, in seq order from `first_seq` to
    /// `last_seq`; and its first seq is not below `after_seq`, the last seq of the block before
    /// it (`None` for the first block). Calls `f` for each frame, in order, as it is checked.
    /// Returns the block's header; the next block starts [`BlockHeader::size`] bytes later.
    ///
    /// Any damage is `Corrupt { file: path, offset }` with `offset` the block's; the reason
    /// names a damaged frame's position in the decompressed bytes. Frame types are not checked
    /// here (the caller knows what the file may hold).
    pub fn read_block(
        &mut self,
        path: &Path,
        data: &[u8],
        offset: usize,
        end: usize,
        after_seq: Option<u64>,
        f: &mut BlockFrameVisitor<'_>,
    ) -> Result<BlockHeader> {
        let at = offset as u64;
        let corrupt = |reason: String| Error::corrupt(path, at, reason);
        let header_bytes = data
            .get(offset..offset.saturating_add(BLOCK_HEADER_BYTES))
            .filter(|_| offset.saturating_add(BLOCK_HEADER_BYTES) <= end)
            .ok_or_else(|| corrupt("block header runs into the trailer".into()))?;
        let header = BlockHeader::read(data, offset)
            .ok_or_else(|| corrupt("block header runs into the trailer".into()))?;
        let BlockHeader { stored_len, raw_len, events, first_seq, last_seq } = header;
        let data_start = offset + BLOCK_HEADER_BYTES;
        let data_end = data_start.saturating_add(stored_len as usize);
        if data_end > end {
            return Err(corrupt(format!("block of {stored_len} bytes runs past the blocks")));
        }
        if raw_len == 0 || raw_len > BLOCK_RAW_BYTES_MAX {
            return Err(corrupt(format!("block raw length {raw_len} is out of bounds")));
        }
        let stored = data.get(data_start..data_end).unwrap_or_default();
        let mut crc = crc32fast::Hasher::new();
        crc.update(header_bytes.get(..BLOCK_CRC_OFFSET).unwrap_or_default());
        crc.update(stored);
        let (computed, expected_crc) = (crc.finalize(), u32_at(header_bytes, BLOCK_CRC_OFFSET));
        if computed != expected_crc {
            return Err(corrupt(format!(
                "block CRC mismatch: stored {expected_crc:#010x}, computed {computed:#010x}"
            )));
        }
        if events == 0 || first_seq > last_seq || after_seq.is_some_and(|s| first_seq < s) {
            return Err(corrupt(format!(
                "block of {events} events, seqs {first_seq}..={last_seq}, after seq {}",
                after_seq.unwrap_or(0)
            )));
        }
        let raw = self
            .decompressor
            .decompress(stored, raw_len as usize)
            .map_err(|e| corrupt(format!("block does not decompress: {e}")))?;
        if raw.len() != raw_len as usize {
            return Err(corrupt(format!(
                "block decompresses to {} bytes, its header says {raw_len}",
                raw.len()
            )));
        }
        let mut inner = 0usize;
        let mut count = 0u32;
        let mut last = first_seq;
        while let Some(rest) = raw.get(inner..).filter(|r| !r.is_empty()) {
            let fr = frame::decode(rest, SEGMENT_FRAME_BYTES_MAX)
                .map_err(|e| corrupt(format!("frame at byte {inner} of the block: {e}")))?;
            let first_ok = count > 0 || fr.seq == first_seq;
            if !first_ok || fr.seq < last || fr.seq > last_seq {
                return Err(corrupt(format!(
                    "frame at byte {inner} of the block has seq {} outside {first_seq}..={last_seq} or out of order",
                    fr.seq
                )));
            }
            f(inner, &fr, rest.get(..fr.size).unwrap_or_default())?;
            last = fr.seq;
            count += 1;
            inner += fr.size;
        }
        if count != events || last != last_seq {
            return Err(corrupt(format!(
                "block holds {count} frames ending at seq {last}; its header says {events} ending at {last_seq}"
            )));
        }
        Ok(header)
    }
}

/// Call `f(block_offset, frame, frame_bytes)` for every frame of a compressed segment, in
/// order, after checking every invariant above. `data` is the whole file; its header has been
/// checked by the caller.
pub(crate) fn visit_frames(path: &Path, data: &[u8], f: &mut FrameVisitor<'_>) -> Result<()> {
    let (end, expected) = read_trailer(path, data)?;
    let mut reader = BlockReader::new(path)?;
    let mut seen = Summary::default();
    let mut offset = FILE_HEADER_BYTES;
    while offset < end {
        let at = offset as u64;
        let after = (seen.blocks > 0).then_some(seen.last_seq);
        let header = reader
            .read_block(path, data, offset, end, after, &mut |_, fr, bytes| f(at, fr, bytes))?;
        seen.add_header(&header);
        offset = offset.saturating_add(usize::try_from(header.size()).unwrap_or(usize::MAX));
    }
    if seen != expected {
        return Err(Error::corrupt(
            path,
            end as u64,
            format!("compressed segment trailer says {expected:?}, the blocks hold {seen:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::frame::EventType;

    /// A compressed segment of `n` frames (seq i / 2, so seqs repeat), and the frames' bytes.
    fn build(n: u64, payload_len: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut builder = BlockBuilder::new(BLOCK_RAW_BYTES_TARGET).unwrap();
        let mut file = file_header().to_vec();
        let mut summary = Summary::default();
        let mut frames = Vec::new();
        let mut add = |block: Option<Block>, file: &mut Vec<u8>| {
            if let Some(block) = block {
                summary.add(&block);
                file.extend_from_slice(&block.bytes);
            }
        };
        for i in 0..n {
            let mut bytes = Vec::new();
            let payload = vec![0x90 + (i % 7) as u8; payload_len];
            frame::encode(&mut bytes, i / 2 + 1, 1000 + i, EventType::Insert, &payload);
            add(builder.push(&bytes, i / 2 + 1).unwrap(), &mut file);
            frames.push(bytes);
        }
        add(builder.finish().unwrap(), &mut file);
        file.extend_from_slice(&summary.trailer());
        (file, frames)
    }

    fn read(data: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        visit_frames(Path::new("c"), data, &mut |_, _, bytes| {
            out.push(bytes.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn round_trip_over_several_blocks() {
        let (file, frames) = build(3000, 200);
        assert!(file.len() < frames.iter().map(Vec::len).sum::<usize>() / 4, "{}", file.len());
        assert_eq!(read(&file).unwrap(), frames);
        let (_, summary) = read_trailer(Path::new("c"), &file).unwrap();
        assert!(summary.blocks >= 3, "{summary:?}");
        assert_eq!(summary.events, 3000);
        assert_eq!((summary.first_seq, summary.last_seq), (1, 1500));
    }

    #[test]
    fn every_damaged_byte_is_reported_at_its_block_or_trailer() {
        let (file, _) = build(400, 40);
        let (trailer_at, summary) = read_trailer(Path::new("c"), &file).unwrap();
        let mut starts = Vec::new();
        let mut at = FILE_HEADER_BYTES;
        while at < trailer_at {
            starts.push(at);
            at += BLOCK_HEADER_BYTES + u32_at(&file, at) as usize;
        }
        assert_eq!(starts.len() as u32, summary.blocks);
        for i in FILE_HEADER_BYTES..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            let err = read(&bad).unwrap_err();
            let block = starts.iter().rev().find(|&&s| s <= i).copied();
            let want = if i >= trailer_at { trailer_at } else { block.unwrap() };
            assert!(
                matches!(err, Error::Corrupt { offset, .. } if offset == want as u64),
                "byte {i}: expected Corrupt at {want}, got {err:?}"
            );
        }
    }

    #[test]
    fn truncation_and_missing_blocks_are_detected() {
        let (file, _) = build(400, 40);
        for cut in [file.len() - 1, file.len() - TRAILER_BYTES, FILE_HEADER_BYTES + 3, 10] {
            assert!(read(&file[..cut]).is_err(), "cut at {cut}");
        }
        // Drop the last block but keep the trailer: the totals no longer match.
        let (trailer_at, _) = read_trailer(Path::new("c"), &file).unwrap();
        let mut starts = vec![FILE_HEADER_BYTES];
        while let Some(&at) = starts.last().filter(|&&a| a < trailer_at) {
            starts.push(at + BLOCK_HEADER_BYTES + u32_at(&file, at) as usize);
        }
        let last_block = starts[starts.len() - 2];
        let mut short = file[..last_block].to_vec();
        short.extend_from_slice(&file[trailer_at..]);
        let err = read(&short).unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset, .. } if offset == last_block as u64));
    }

    #[test]
    fn the_block_reader_checks_one_block_and_a_reader_can_go_past_a_damaged_one() {
        let (file, frames) = build(1000, 100);
        let path = Path::new("c");
        let (end, summary) = read_trailer(path, &file).unwrap();
        assert!(summary.blocks >= 2, "{summary:?}");
        let first = BlockHeader::read(&file, FILE_HEADER_BYTES).unwrap();
        let second_at = FILE_HEADER_BYTES + first.size() as usize;
        let mut bad = file.clone();
        bad[FILE_HEADER_BYTES + BLOCK_HEADER_BYTES + 5] ^= 0x10;
        let mut reader = BlockReader::new(path).unwrap();
        let mut got = Vec::new();
        let err = reader
            .read_block(path, &bad, FILE_HEADER_BYTES, end, None, &mut |_, _, b| {
                got.push(b.to_vec());
                Ok(())
            })
            .unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { offset, reason, .. } if *offset == FILE_HEADER_BYTES as u64 && reason.contains("CRC")),
            "{err:?}"
        );
        assert!(got.is_empty(), "nothing is decompressed from a block whose CRC fails");
        // The damaged block's length field still leads to the next block, which reads whole.
        let mut inner_offsets = Vec::new();
        let second = reader
            .read_block(path, &bad, second_at, end, Some(first.last_seq), &mut |at, _, b| {
                inner_offsets.push(at);
                got.push(b.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(second.events as usize, got.len());
        assert_eq!(inner_offsets[0], 0);
        assert_eq!(got[0], frames[first.events as usize]);
        // A block whose seqs go back before the block it follows is refused.
        let err = reader
            .read_block(path, &file, second_at, end, Some(second.last_seq + 1), &mut |_, _, _| {
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset, .. } if offset == second_at as u64));
    }

    #[test]
    fn a_forged_raw_length_is_refused_before_allocating() {
        let (mut file, _) = build(10, 10);
        let at = FILE_HEADER_BYTES + RAW_LEN_OFFSET;
        file[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = read(&file).unwrap_err();
        assert!(err.to_string().contains("out of bounds"), "{err}");
    }
}
