//! Walking a DriftDB file frame by frame, for `inspect` and `verify`, as far as the bytes allow.
//!
//! The file kind comes from the 16-byte header's magic (`DRIFTSEG`, `DRIFTWAL`, `DRIFTCKP`;
//! see docs/FORMAT.md), and its version: a segment of version 2 is a compressed segment, walked
//! block by block by [`super::blocks`]. In every other file, from offset 16 on, each frame is
//! decoded with
//! [`driftdb_core::storage::frame::decode`], which checks the length bounds and the CRC before
//! anything else. What happens at a frame that fails:
//!
//! - **CRC mismatch** (the length fits the file): the frame is listed as damaged, its fields
//!   read without trusting them, and the walk goes on after it. If the length field itself was
//!   the damaged part, the next frame fails too and the rule below applies.
//! - **length out of bounds or past the end**: the walk searches forward, byte by byte, for
//!   the next offset where a whole frame of the file's kind decodes with a matching CRC, and
//!   records the bytes in between as a gap. Frames found that way are real frames or copies of
//!   frames inside a document; the report says they were found by search.
//! - **only zero bytes to the end**: in a WAL that is preallocated, never written space (not
//!   damage); in other files it is a gap.
//!
//! Nothing here writes to the file: the caller reads it into memory first.

use driftdb_core::limits::{SEGMENT_FRAME_BYTES_MAX, WAL_FRAME_BYTES_MAX};
use driftdb_core::storage::checkpoint::{CHECKPOINT_VERSION_COMPACTED, CHECKPOINT_VERSION_PLAIN};
use driftdb_core::storage::compressed::COMPRESSED_SEGMENT_VERSION;
use driftdb_core::storage::frame::{
    self, CHECKPOINT_MAGIC, EventType, FILE_HEADER_BYTES, FORMAT_VERSION, FileHeader, FrameError,
    SEGMENT_MAGIC, WAL_MAGIC,
};

use super::blocks::{Blocks, walk_blocks};
use super::decode::{self, Content};

/// The kinds of file that hold frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A table segment.
    Segment,
    /// The write-ahead log.
    Wal,
    /// The CHECKPOINT file.
    Checkpoint,
}

impl FileKind {
    /// The kind named by a file's first 8 bytes.
    pub fn from_magic(data: &[u8]) -> Option<FileKind> {
        let magic = data.get(..8)?;
        [
            (SEGMENT_MAGIC, FileKind::Segment),
            (WAL_MAGIC, FileKind::Wal),
            (CHECKPOINT_MAGIC, FileKind::Checkpoint),
        ]
        .into_iter()
        .find(|(m, _)| m == magic)
        .map(|(_, k)| k)
    }

    fn magic(self) -> [u8; 8] {
        match self {
            FileKind::Segment => SEGMENT_MAGIC,
            FileKind::Wal => WAL_MAGIC,
            FileKind::Checkpoint => CHECKPOINT_MAGIC,
        }
    }

    /// The largest frame body this kind of file allows.
    fn body_bytes_max(self) -> u32 {
        match self {
            FileKind::Segment => SEGMENT_FRAME_BYTES_MAX,
            FileKind::Wal | FileKind::Checkpoint => WAL_FRAME_BYTES_MAX,
        }
    }

    /// The header versions this build reads for this kind of file.
    fn versions(self) -> (u32, u32) {
        match self {
            FileKind::Segment => (FORMAT_VERSION, COMPRESSED_SEGMENT_VERSION),
            FileKind::Wal => (FORMAT_VERSION, FORMAT_VERSION),
            FileKind::Checkpoint => (CHECKPOINT_VERSION_PLAIN, CHECKPOINT_VERSION_COMPACTED),
        }
    }

    /// Whether a frame type belongs in this kind of file.
    pub fn allows(self, kind: EventType) -> bool {
        match self {
            FileKind::Segment => (kind as u8) < EventType::WalBatch as u8,
            FileKind::Wal => kind == EventType::WalBatch,
            FileKind::Checkpoint => kind == EventType::Checkpoint,
        }
    }

    /// `segment`, `wal` or `checkpoint`.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Segment => "segment",
            FileKind::Wal => "wal",
            FileKind::Checkpoint => "checkpoint",
        }
    }
}

/// One frame as found in the file.
#[derive(Debug, Clone)]
pub struct FrameEntry {
    /// Byte offset of the frame's length field; in a compressed segment, of the block that
    /// holds the frame (where the engine reports damage in it).
    pub offset: u64,
    /// In a compressed segment: the frame's offset in its block's decompressed bytes.
    pub in_block: Option<u64>,
    /// The length field: bytes of the body.
    pub length: u32,
    /// Whether the CRC matched. When it did not, the fields below are read from unverified
    /// bytes and may be garbage.
    pub crc_ok: bool,
    /// Whether the frame was found by searching past damage rather than by following lengths.
    pub found_by_search: bool,
    /// The seq field.
    pub seq: Option<u64>,
    /// The time field (Unix ms).
    pub unix_ms: Option<u64>,
    /// The type byte, if it is a known type.
    pub kind: Option<EventType>,
    /// The type byte as stored.
    pub type_byte: Option<u8>,
    /// The decoded payload, or why it does not decode.
    pub content: Content,
}

impl FrameEntry {
    /// Bytes the frame occupies in the file.
    pub fn size(&self) -> u64 {
        frame::BODY_OFFSET as u64 + u64::from(self.length)
    }
}

/// Bytes that are not frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// Where they start.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
    /// Why the bytes at `offset` are not a frame.
    pub reason: String,
    /// The bytes are all zero and run to the end of the file.
    pub zeros_to_end: bool,
}

/// What a walk over one file found.
#[derive(Debug, Clone)]
pub struct FileWalk {
    /// The file kind from its magic.
    pub kind: FileKind,
    /// The header's version field (read even when the header's CRC fails); `None` when the
    /// file is shorter than a header.
    pub version: Option<u32>,
    /// A compressed segment's blocks and trailer.
    pub blocks: Option<Blocks>,
    /// Why the header is not acceptable (the walk goes on regardless).
    pub header_error: Option<String>,
    /// Every frame found, in file order.
    pub frames: Vec<FrameEntry>,
    /// Damaged regions, and a WAL's preallocated zeros.
    pub gaps: Vec<Gap>,
    /// Frames whose CRC matched but whose content is wrong for the file (wrong type, bad
    /// payload) are in `frames` with `Content::Invalid`.
    pub len: u64,
}

impl FileWalk {
    /// Whether every byte after the header is an intact frame (a WAL's trailing zeros allowed).
    pub fn is_clean(&self) -> bool {
        self.header_error.is_none()
            && self.frames.iter().all(|f| f.crc_ok && !matches!(f.content, Content::Invalid(_)))
            && self.gaps.iter().all(|g| self.kind == FileKind::Wal && g.zeros_to_end)
    }

    /// The first damaged offset, with the reason: a bad header, a frame that fails, or a gap.
    pub fn first_damage(&self) -> Option<(u64, String)> {
        if let Some(e) = &self.header_error {
            return Some((0, e.clone()));
        }
        let frame = self.frames.iter().find_map(|f| match (&f.content, f.crc_ok) {
            (_, false) => Some((f.offset, "CRC mismatch".to_string())),
            (Content::Invalid(why), true) => Some((f.offset, why.clone())),
            _ => None,
        });
        let gap = self
            .gaps
            .iter()
            .find(|g| !(self.kind == FileKind::Wal && g.zeros_to_end))
            .map(|g| (g.offset, g.reason.clone()));
        match (frame, gap) {
            (Some(f), Some(g)) => Some(if f.0 <= g.0 { f } else { g }),
            (f, g) => f.or(g),
        }
    }
}

/// Walk `data`, the whole content of a file. `None` when it does not start with a DriftDB
/// magic.
pub fn walk(data: &[u8]) -> Option<FileWalk> {
    let kind = FileKind::from_magic(data)?;
    let version = data.get(8..12).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let (oldest, newest) = kind.versions();
    let header_error = match FileHeader::check_kind(data, kind.magic()) {
        Ok(h) if (oldest..=newest).contains(&h.version) => None,
        Ok(h) => Some(format!(
            "format version {}; this build reads {} version {}",
            h.version,
            kind.name(),
            if oldest == newest { oldest.to_string() } else { format!("{oldest} to {newest}") }
        )),
        Err(frame::HeaderError::Truncated) => {
            Some("the file is shorter than its 16-byte header".into())
        }
        Err(frame::HeaderError::WrongMagic) => Some("the header's magic is wrong".into()),
        Err(frame::HeaderError::BadCrc) => Some("the header's CRC does not match".into()),
        Err(frame::HeaderError::Version(v)) => Some(format!("format version {v}")),
    };
    let mut walk = FileWalk {
        kind,
        version,
        blocks: None,
        header_error,
        frames: Vec::new(),
        gaps: Vec::new(),
        len: data.len() as u64,
    };
    if kind == FileKind::Segment && version == Some(COMPRESSED_SEGMENT_VERSION) {
        walk.blocks = Some(walk_blocks(data, &mut walk));
        return Some(walk);
    }
    let mut offset = FILE_HEADER_BYTES;
    let mut found_by_search = false;
    while let Some(rest) = data.get(offset..).filter(|r| !r.is_empty()) {
        if rest.iter().all(|&b| b == 0) {
            let reason = if kind == FileKind::Wal {
                "preallocated space (zeros), never written".to_string()
            } else {
                "zero bytes to the end of the file".to_string()
            };
            walk.gaps.push(Gap {
                offset: offset as u64,
                len: rest.len() as u64,
                reason,
                zeros_to_end: true,
            });
            break;
        }
        match frame::decode(rest, kind.body_bytes_max()) {
            Ok(f) => {
                walk.frames.push(FrameEntry {
                    offset: offset as u64,
                    in_block: None,
                    length: (f.size - frame::BODY_OFFSET) as u32,
                    crc_ok: true,
                    found_by_search,
                    seq: Some(f.seq),
                    unix_ms: Some(f.unix_ms),
                    kind: Some(f.kind),
                    type_byte: Some(f.kind as u8),
                    content: decode::content(kind, f.kind, f.payload),
                });
                offset += f.size;
            }
            Err(err @ (FrameError::BadCrc { .. } | FrameError::BadBody(_))) => {
                let crc_ok = matches!(err, FrameError::BadBody(_));
                let entry = unverified(rest, offset as u64, found_by_search, crc_ok);
                offset += entry.size() as usize;
                walk.frames.push(entry);
            }
            Err(err @ (FrameError::Truncated { .. } | FrameError::BadLength(_))) => {
                let next = resync(data, offset + 1, kind);
                let end = next.unwrap_or(data.len());
                let zeros = next.is_none() && rest.iter().all(|&b| b == 0);
                walk.gaps.push(Gap {
                    offset: offset as u64,
                    len: (end - offset) as u64,
                    reason: err.to_string(),
                    zeros_to_end: zeros,
                });
                found_by_search = true;
                match next {
                    Some(n) => offset = n,
                    None => break,
                }
            }
        }
    }
    Some(walk)
}

/// A frame whose length fits but whose CRC (or body) fails: its fields, read without trusting
/// them.
fn unverified(rest: &[u8], offset: u64, found_by_search: bool, crc_ok: bool) -> FrameEntry {
    let length =
        rest.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).unwrap_or_default();
    let body =
        rest.get(frame::BODY_OFFSET..frame::BODY_OFFSET + length as usize).unwrap_or_default();
    let (seq, used) = frame::read_varint(body).map_or((None, 0), |(s, n)| (Some(s), n));
    let unix_ms = body
        .get(used..used + 8)
        .filter(|_| seq.is_some())
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes);
    let type_byte = body.get(used + 8).copied().filter(|_| unix_ms.is_some());
    let kind = type_byte.and_then(EventType::from_u8);
    let content = if crc_ok {
        Content::Invalid(match (kind, type_byte) {
            (None, Some(b)) => format!("unknown frame type {b}"),
            _ => "the body does not parse".into(),
        })
    } else {
        Content::Unverified
    };
    FrameEntry {
        offset,
        in_block: None,
        length,
        crc_ok,
        found_by_search,
        seq,
        unix_ms,
        kind,
        type_byte,
        content,
    }
}

/// The first offset at or after `from` where a whole, CRC-valid frame of this file's kind
/// starts.
fn resync(data: &[u8], from: usize, kind: FileKind) -> Option<usize> {
    (from..data.len()).find(|&start| {
        data.get(start..)
            .and_then(|rest| frame::decode(rest, kind.body_bytes_max()).ok())
            .is_some_and(|f| kind.allows(f.kind))
    })
}
