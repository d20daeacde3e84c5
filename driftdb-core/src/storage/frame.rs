//! The frame: the unit of every DriftDB log file (table segments, the WAL, the checkpoint).
//!
//! ```text
//! offset  size  field
//! 0       4     length    u32 LE: number of bytes after the crc field (the body)
//! 4       4     crc32     u32 LE: CRC-32 (IEEE) of the body
//! 8       1..10 seq       unsigned LEB128 varint
//! ..      8     unix_ms   u64 LE: commit time, milliseconds since the Unix epoch
//! ..      1     type      u8: the event type (see [`EventType`])
//! ..      n     payload   msgpack
//! ```
//!
//! Invariants: `BODY_BYTES_MIN <= length <= the file's limit`; the CRC covers every byte after
//! itself up to the end of the frame; integers are little-endian. A frame is decoded only after
//! its length is in bounds and its CRC matches, so a damaged frame is never parsed.
//!
//! Every file starts with a 16-byte [`FileHeader`]: an 8-byte magic naming the file kind, a u32
//! format version and a CRC-32 of those 12 bytes.

use std::fmt;

/// Byte offset of the length field.
pub const LEN_OFFSET: usize = 0;
/// Byte offset of the CRC field.
pub const CRC_OFFSET: usize = LEN_OFFSET + size_of::<u32>();
/// Byte offset of the body (what the CRC covers).
pub const BODY_OFFSET: usize = CRC_OFFSET + size_of::<u32>();
/// Smallest possible body: a one-byte varint, the timestamp and the type.
pub const BODY_BYTES_MIN: u32 = 1 + 8 + 1;
/// Longest LEB128 encoding of a u64.
const VARINT_BYTES_MAX: usize = 10;

/// The type byte of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventType {
    /// A full document (segments).
    Insert = 1,
    /// A merge patch of a document (segments).
    Patch = 2,
    /// The key stops being visible (segments).
    SoftDelete = 3,
    /// The table is created; payload is its schema (segments).
    CreateTable = 4,
    /// The table is dropped (segments).
    DropTable = 5,
    /// The table's schema changes; payload is the whole new schema (segments).
    AlterTable = 6,
    /// One group commit: one or more transaction records (WAL).
    WalBatch = 0x20,
    /// The checkpoint record (CHECKPOINT file).
    Checkpoint = 0x30,
}

impl EventType {
    /// The type of a type byte, if known.
    pub fn from_u8(byte: u8) -> Option<EventType> {
        Some(match byte {
            1 => EventType::Insert,
            2 => EventType::Patch,
            3 => EventType::SoftDelete,
            4 => EventType::CreateTable,
            5 => EventType::DropTable,
            6 => EventType::AlterTable,
            0x20 => EventType::WalBatch,
            0x30 => EventType::Checkpoint,
            _ => return None,
        })
    }

    /// The name used in history listings and `inspect` output.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Insert => "INSERT",
            EventType::Patch => "PATCH",
            EventType::SoftDelete => "SOFT_DELETE",
            EventType::CreateTable => "CREATE_TABLE",
            EventType::DropTable => "DROP_TABLE",
            EventType::AlterTable => "ALTER_TABLE",
            EventType::WalBatch => "WAL_BATCH",
            EventType::Checkpoint => "CHECKPOINT",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded frame, borrowing its payload from the buffer it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The seq of the event (for a WAL batch: the last seq in it).
    pub seq: u64,
    /// Commit time in Unix milliseconds.
    pub unix_ms: u64,
    /// The type byte.
    pub kind: EventType,
    /// The msgpack payload.
    pub payload: &'a [u8],
    /// Total size of the frame on disk, header included.
    pub size: usize,
}

/// Why bytes at some offset are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes remain than the frame needs: a torn write, or the end of the file.
    Truncated {
        /// Bytes the frame needs (header, or header plus body).
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The length field is out of bounds.
    BadLength(u32),
    /// The CRC does not match the body.
    BadCrc {
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the body.
        computed: u32,
    },
    /// The CRC matched but the body does not parse (a bug or a forged frame).
    BadBody(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated { needed, available } => {
                write!(f, "truncated frame: needs {needed} bytes, {available} remain")
            }
            FrameError::BadLength(len) => write!(f, "frame length {len} is out of bounds"),
            FrameError::BadCrc { stored, computed } => {
                write!(f, "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            FrameError::BadBody(why) => write!(f, "malformed frame body: {why}"),
        }
    }
}

/// Append one frame to `out`.
pub fn encode(out: &mut Vec<u8>, seq: u64, unix_ms: u64, kind: EventType, payload: &[u8]) {
    encode_parts(out, seq, unix_ms, kind, &[payload]);
}

/// Append one frame whose payload is the concatenation of `parts` (copied once, into `out`).
pub(crate) fn encode_parts(
    out: &mut Vec<u8>,
    seq: u64,
    unix_ms: u64,
    kind: EventType,
    parts: &[&[u8]],
) {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(BODY_OFFSET + 10 + 8 + 1 + payload_len);
    let start = begin(out, seq, unix_ms, kind);
    for part in parts {
        out.extend_from_slice(part);
    }
    finish(out, start);
}

/// Start a frame at the end of `out`: its header with the length and CRC left at zero, then
/// seq, time and type. The caller appends the payload and calls [`finish`] with the returned
/// start.
pub(crate) fn begin(out: &mut Vec<u8>, seq: u64, unix_ms: u64, kind: EventType) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; BODY_OFFSET]);
    write_varint(out, seq);
    out.extend_from_slice(&unix_ms.to_le_bytes());
    out.push(kind as u8);
    start
}

/// Fill in the length and CRC of the frame begun at `start` (it runs to the end of `out`).
pub(crate) fn finish(out: &mut [u8], start: usize) {
    let body = out.get(start + BODY_OFFSET..).unwrap_or_default();
    let body_len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(body);
    let mut header = [0u8; BODY_OFFSET];
    let (len_field, crc_field) = header.split_at_mut(CRC_OFFSET);
    len_field.copy_from_slice(&body_len.to_le_bytes());
    crc_field.copy_from_slice(&crc.to_le_bytes());
    if let Some(slot) = out.get_mut(start..start + BODY_OFFSET) {
        slot.copy_from_slice(&header);
    }
    debug_assert!(decode(out.get(start..).unwrap_or_default(), u32::MAX).is_ok());
}

/// Decode the frame at the start of `buf`, whose body may be at most `body_bytes_max` long.
pub fn decode(buf: &[u8], body_bytes_max: u32) -> Result<Frame<'_>, FrameError> {
    let available = buf.len() as u64;
    let (Some(len_bytes), Some(crc_bytes)) =
        (buf.get(LEN_OFFSET..CRC_OFFSET), buf.get(CRC_OFFSET..BODY_OFFSET))
    else {
        return Err(FrameError::Truncated { needed: BODY_OFFSET as u64, available });
    };
    let len = u32::from_le_bytes(len_bytes.try_into().map_err(|_| FrameError::BadLength(0))?);
    if !(BODY_BYTES_MIN..=body_bytes_max).contains(&len) {
        return Err(FrameError::BadLength(len));
    }
    let stored = u32::from_le_bytes(crc_bytes.try_into().map_err(|_| FrameError::BadLength(0))?);
    let size = BODY_OFFSET + len as usize;
    let Some(body) = buf.get(BODY_OFFSET..size) else {
        return Err(FrameError::Truncated { needed: size as u64, available });
    };
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(FrameError::BadCrc { stored, computed });
    }
    let (seq, used) = read_varint(body).ok_or(FrameError::BadBody("bad seq varint"))?;
    let rest = body.get(used..).ok_or(FrameError::BadBody("body ends in the seq"))?;
    let (ms_bytes, rest) = rest.split_at_checked(8).ok_or(FrameError::BadBody("no timestamp"))?;
    let unix_ms = u64::from_le_bytes(ms_bytes.try_into().map_err(|_| FrameError::BadBody("ts"))?);
    let (&type_byte, payload) = rest.split_first().ok_or(FrameError::BadBody("no type byte"))?;
    let kind = EventType::from_u8(type_byte).ok_or(FrameError::BadBody("unknown event type"))?;
    Ok(Frame { seq, unix_ms, kind, payload, size })
}

/// Append `value` as an unsigned LEB128 varint.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Read an unsigned LEB128 varint; returns the value and the bytes used.
pub fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(VARINT_BYTES_MAX) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        if i == VARINT_BYTES_MAX - 1 && byte > 1 {
            return None; // more than 64 bits
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The 16-byte header at the start of every DriftDB file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// Names the file kind, e.g. `DRIFTSEG`.
    pub magic: [u8; 8],
    /// The format version of the file.
    pub version: u32,
}

/// Size of [`FileHeader`] on disk.
pub const FILE_HEADER_BYTES: usize = 16;
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Magic of a table segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"DRIFTSEG";
/// Magic of a WAL file.
pub const WAL_MAGIC: [u8; 8] = *b"DRIFTWAL";
/// Magic of the CHECKPOINT file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"DRIFTCKP";

/// Why a file header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than a header.
    Truncated,
    /// Magic differs from the expected kind.
    WrongMagic,
    /// CRC mismatch.
    BadCrc,
    /// A version this build does not read.
    Version(u32),
}

impl FileHeader {
    /// A header of this build's version.
    pub fn new(magic: [u8; 8]) -> Self {
        FileHeader { magic, version: FORMAT_VERSION }
    }

    /// The 16 bytes on disk.
    pub fn encode(&self) -> [u8; FILE_HEADER_BYTES] {
        let mut out = [0u8; FILE_HEADER_BYTES];
        out[..8].copy_from_slice(&self.magic);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        let crc = crc32fast::hash(&out[..12]);
        out[12..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Check the header at the start of `buf` against the expected magic and this build's
    /// [`FORMAT_VERSION`].
    pub fn check(buf: &[u8], magic: [u8; 8]) -> Result<FileHeader, HeaderError> {
        let header = Self::check_kind(buf, magic)?;
        if header.version != FORMAT_VERSION {
            return Err(HeaderError::Version(header.version));
        }
        Ok(header)
    }

    /// Check the magic and the CRC of the header at the start of `buf`, and return it with
    /// whatever version it names: for file kinds that exist in several versions (segments:
    /// 1 plain, 2 compressed), the caller decides which versions it reads.
    pub fn check_kind(buf: &[u8], magic: [u8; 8]) -> Result<FileHeader, HeaderError> {
        let head = buf.get(..FILE_HEADER_BYTES).ok_or(HeaderError::Truncated)?;
        let (body, crc) = head.split_at(12);
        let crc = u32::from_le_bytes(crc.try_into().map_err(|_| HeaderError::Truncated)?);
        if crc32fast::hash(body) != crc {
            return Err(HeaderError::BadCrc);
        }
        let (found_magic, version) = body.split_at(8);
        if found_magic != magic {
            return Err(HeaderError::WrongMagic);
        }
        let version = u32::from_le_bytes(version.try_into().map_err(|_| HeaderError::Truncated)?);
        Ok(FileHeader { magic, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for seq in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            encode(&mut buf, seq, 1_700_000_000_123, EventType::Patch, b"\x81\xa1a\x01");
            let frame = decode(&buf, u32::MAX).unwrap();
            assert_eq!(frame.seq, seq);
            assert_eq!(frame.unix_ms, 1_700_000_000_123);
            assert_eq!(frame.kind, EventType::Patch);
            assert_eq!(frame.payload, b"\x81\xa1a\x01");
            assert_eq!(frame.size, buf.len());
        }
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, 99, EventType::Insert, b"\x82\xa2id\x01\xa1x\xa5hello");
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[i] ^= 1 << bit;
                assert!(decode(&damaged, 1 << 20).is_err(), "flip of bit {bit} of byte {i}");
            }
            let mut damaged = buf.clone();
            damaged[i] = damaged[i].wrapping_add(0x5a);
            assert!(decode(&damaged, 1 << 20).is_err(), "change of byte {i}");
        }
    }

    #[test]
    fn truncation_and_bounds() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, 2, EventType::Insert, &[0x80]);
        for cut in 0..buf.len() {
            assert!(matches!(decode(&buf[..cut], 1 << 20), Err(FrameError::Truncated { .. })));
        }
        assert_eq!(decode(&buf, 4), Err(FrameError::BadLength(11)));
        assert!(decode(&[0u8; 32], 1 << 20).is_err(), "zeroes are not a frame");
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(read_varint(&out), Some((v, out.len())));
        }
        assert_eq!(read_varint(&[0xff; 11]), None);
        assert_eq!(read_varint(&[0x80]), None);
    }

    #[test]
    fn headers() {
        let h = FileHeader::new(WAL_MAGIC).encode();
        assert!(FileHeader::check(&h, WAL_MAGIC).is_ok());
        assert_eq!(FileHeader::check(&h, SEGMENT_MAGIC), Err(HeaderError::WrongMagic));
        assert_eq!(FileHeader::check(&h[..10], WAL_MAGIC), Err(HeaderError::Truncated));
        let mut bad = h;
        bad[3] ^= 1;
        assert_eq!(FileHeader::check(&bad, WAL_MAGIC), Err(HeaderError::BadCrc));
    }
}
