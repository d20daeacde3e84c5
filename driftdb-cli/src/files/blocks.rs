//! Walking a compressed segment (`compacted-GGGGGGGG-NNNNNNNN.seg`, segment header version 2)
//! block by block, for `inspect` and `verify`, as far as the bytes allow.
//!
//! The layout is in docs/FORMAT.md ("Compressed segment"): a 16-byte header, zstd blocks of
//! whole segment frames, a 40-byte trailer. Every check is the engine's:
//! [`driftdb_core::storage::compressed::read_trailer`] for the trailer and
//! [`BlockReader::read_block`] for one block (lengths, block CRC before decompressing,
//! decompressed size, every frame's own CRC, seq order, the event count). This module only
//! decides where to look next:
//!
//! - a **block that passes** lists its frames; the next block starts right after it;
//! - a **damaged block** is a gap at the block's offset with the engine's reason. The walk goes
//!   on at the offset its (unverified) length field names when a valid block starts there, or
//!   else searches forward, byte by byte, for the next offset where a whole block passes every
//!   check (its frames are then "found by search"); with none, the rest of the blocks is one gap;
//! - a **damaged trailer** is a gap at the trailer's offset; the blocks are still read up to it;
//! - when every block passed, the trailer's counts and seqs must match them (the engine's last
//!   check: a missing block is found this way).
//!
//! A frame of a compressed file is reported at its block's offset, as the engine reports
//! damage in it, with its offset inside the decompressed block beside it.

use std::path::Path;

use driftdb_core::storage::compressed::{BlockHeader, BlockReader, Summary, read_trailer};
use driftdb_core::storage::frame::{self, FILE_HEADER_BYTES, Frame};

use super::decode;
use super::walk::{FileKind, FileWalk, FrameEntry, Gap};

/// One block as found in the file.
#[derive(Debug, Clone)]
pub struct BlockEntry {
    /// Its byte offset.
    pub offset: u64,
    /// Bytes it occupies (for a damaged block: up to where the walk went on).
    pub bytes: u64,
    /// Its header fields; for a damaged block they are read without trusting them.
    pub header: Option<BlockHeader>,
    /// Why the block fails the engine's checks; `None` when it passes.
    pub error: Option<String>,
    /// Found by searching past damage rather than by following lengths.
    pub found_by_search: bool,
}

/// The trailer as found at the end of the file.
#[derive(Debug, Clone)]
pub struct TrailerEntry {
    /// Its byte offset (the file's length when the file has no room for one).
    pub offset: u64,
    /// What it says, when its magic and CRC are intact.
    pub summary: Option<Summary>,
    /// Why it fails, or why it disagrees with the blocks.
    pub error: Option<String>,
}

/// The blocks and trailer of a compressed segment.
#[derive(Debug, Clone, Default)]
pub struct Blocks {
    /// Every block or damaged region, in file order.
    pub blocks: Vec<BlockEntry>,
    /// The trailer.
    pub trailer: Option<TrailerEntry>,
}

fn reason(e: driftdb_core::Error) -> (Option<u64>, String) {
    match e {
        driftdb_core::Error::Corrupt { offset, reason, .. } => (Some(offset), reason),
        e => (None, e.to_string()),
    }
}

/// The frame entry of one frame of the block at `block`.
fn entry(block: u64, inner: usize, fr: &Frame<'_>, found_by_search: bool) -> FrameEntry {
    FrameEntry {
        offset: block,
        in_block: Some(inner as u64),
        length: u32::try_from(fr.size - frame::BODY_OFFSET).unwrap_or(u32::MAX),
        crc_ok: true,
        found_by_search,
        seq: Some(fr.seq),
        unix_ms: Some(fr.unix_ms),
        kind: Some(fr.kind),
        type_byte: Some(fr.kind as u8),
        content: decode::content(FileKind::Segment, fr.kind, fr.payload),
    }
}

/// Read the block at `offset` with the engine's checks, collecting its frames (those before
/// the damage, when it fails).
fn read(
    reader: &mut BlockReader,
    data: &[u8],
    offset: usize,
    end: usize,
    after: Option<u64>,
    found_by_search: bool,
) -> (Vec<FrameEntry>, Result<BlockHeader, String>) {
    let mut frames = Vec::new();
    let at = offset as u64;
    let result = reader.read_block(Path::new(""), data, offset, end, after, &mut |inner, fr, _| {
        frames.push(entry(at, inner, fr, found_by_search));
        Ok(())
    });
    (frames, result.map_err(|e| reason(e).1))
}

/// Whether a whole block that passes every check starts at `offset`.
fn block_at(reader: &mut BlockReader, data: &[u8], offset: usize, end: usize) -> bool {
    let plausible = BlockHeader::read(data, offset).is_some_and(|h| {
        h.events > 0
            && h.raw_len > 0
            && h.first_seq <= h.last_seq
            && (offset as u64).saturating_add(h.size()) <= end as u64
    });
    plausible
        && reader.read_block(Path::new(""), data, offset, end, None, &mut |_, _, _| Ok(())).is_ok()
}

/// Where to go on after a damaged block at `offset`: the next offset where a valid block
/// starts (`end` when the damaged block's length leads exactly to the blocks' end), and
/// whether it was found by search.
fn next_block(
    reader: &mut BlockReader,
    data: &[u8],
    offset: usize,
    end: usize,
) -> Option<(usize, bool)> {
    let by_length = BlockHeader::read(data, offset)
        .and_then(|h| usize::try_from((offset as u64).saturating_add(h.size())).ok())
        .filter(|&next| next > offset && next <= end);
    if let Some(next) = by_length
        && (next == end || block_at(reader, data, next, end))
    {
        return Some((next, false));
    }
    (offset + 1..end).find(|&start| block_at(reader, data, start, end)).map(|s| (s, true))
}

/// Walk the blocks and trailer of the compressed segment `data` into `walk`: frames go to
/// `walk.frames`, damage to `walk.gaps`.
pub fn walk_blocks(data: &[u8], walk: &mut FileWalk) -> Blocks {
    let len = data.len();
    let mut out = Blocks::default();
    let end = match read_trailer(Path::new(""), data) {
        Ok((at, summary)) => {
            out.trailer =
                Some(TrailerEntry { offset: at as u64, summary: Some(summary), error: None });
            at
        }
        Err(e) => {
            let (offset, why) = reason(e);
            let at = offset.and_then(|o| usize::try_from(o).ok()).filter(|&o| o < len);
            let end = at.unwrap_or(len);
            walk.gaps.push(Gap {
                offset: end as u64,
                len: (len - end) as u64,
                reason: why.clone(),
                zeros_to_end: false,
            });
            out.trailer =
                Some(TrailerEntry { offset: end as u64, summary: None, error: Some(why) });
            end
        }
    };
    let mut reader = match BlockReader::new(Path::new("")) {
        Ok(reader) => reader,
        Err(e) => {
            walk.header_error.get_or_insert(format!("cannot decompress: {e}"));
            return out;
        }
    };
    let mut seen = Summary::default();
    let mut damaged = false;
    let mut found_by_search = false;
    let mut offset = FILE_HEADER_BYTES;
    while offset < end {
        let after = (seen.blocks > 0).then_some(seen.last_seq);
        let (frames, result) = read(&mut reader, data, offset, end, after, found_by_search);
        walk.frames.extend(frames);
        match result {
            Ok(header) => {
                seen.add_header(&header);
                out.blocks.push(BlockEntry {
                    offset: offset as u64,
                    bytes: header.size(),
                    header: Some(header),
                    error: None,
                    found_by_search,
                });
                offset = offset.saturating_add(usize::try_from(header.size()).unwrap_or(len));
            }
            Err(why) => {
                damaged = true;
                let next = next_block(&mut reader, data, offset, end);
                let stop = next.map_or(end, |n| n.0);
                walk.gaps.push(Gap {
                    offset: offset as u64,
                    len: (stop - offset) as u64,
                    reason: why.clone(),
                    zeros_to_end: false,
                });
                out.blocks.push(BlockEntry {
                    offset: offset as u64,
                    bytes: (stop - offset) as u64,
                    header: BlockHeader::read(data, offset),
                    error: Some(why),
                    found_by_search,
                });
                let Some((next, searched)) = next else { break };
                found_by_search |= searched;
                offset = next;
            }
        }
    }
    if let Some(trailer) = out.trailer.as_mut()
        && let Some(expected) = trailer.summary
        && !damaged
        && seen != expected
    {
        let why = format!(
            "compressed segment trailer says {} block(s), {} event(s), seqs {}..={}; the blocks \
             hold {}, {}, {}..={}",
            expected.blocks,
            expected.events,
            expected.first_seq,
            expected.last_seq,
            seen.blocks,
            seen.events,
            seen.first_seq,
            seen.last_seq
        );
        walk.gaps.push(Gap {
            offset: trailer.offset,
            len: (len as u64).saturating_sub(trailer.offset),
            reason: why.clone(),
            zeros_to_end: false,
        });
        trailer.error = Some(why);
    }
    walk.gaps.sort_by_key(|g| g.offset);
    out
}
