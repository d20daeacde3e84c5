//! Table segments: `tables/<table>/segments/NNNNNNNN.seg`.
//!
//! ```text
//! [file header: "DRIFTSEG", version 1]      16 bytes
//! [frame] [frame] ...                       one frame per event, in seq order
//! ```
//! That is a *plain* segment (version 1), the kind commits append to. Compaction writes
//! *compressed* segments (version 2, [`crate::storage::compressed`]) holding the same frames
//! in zstd blocks; `scan` reads both kinds, choosing by the header version.
//! Frame type is the event type (INSERT, PATCH, SOFT_DELETE, CREATE_TABLE, DROP_TABLE,
//! ALTER_TABLE); the payload is the msgpack array `[key, body]` (key is nil for schema events;
//! body is the document, the merge patch, nil, or the whole schema).
//!
//! **Invariants.** Segments are append-only and never modified in place; seqs never decrease
//! along a table's segments; segment numbers start at 1 and grow by one at each rotation
//! (when the next append would pass the size limit).
//!
//! **Durability.** Segments are written after the WAL batch that holds the same events is
//! durable, without their own fsync; they are fsynced at a checkpoint, which then records, for
//! each table, the last segment and its length. Bytes past that length are not trusted: on
//! open they are cut off and rebuilt from the WAL. Inside the trusted length every frame must
//! be valid, or the database refuses to open with `Corrupt { file, offset }`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::limits::SEGMENT_FRAME_BYTES_MAX;
use crate::storage::compressed::{self, COMPRESSED_SEGMENT_VERSION};
use crate::storage::frame::{self, EventType, FILE_HEADER_BYTES, FileHeader, Frame, SEGMENT_MAGIC};
use crate::value::{Key, KeyRef, Value};

/// The directory of a table's segments, relative to the table directory.
pub const SEGMENTS_DIR: &str = "segments";

/// The file name of segment `id`.
pub fn segment_name(id: u32) -> String {
    format!("{id:08}.seg")
}

/// The id of a segment file name.
pub fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&id| id > 0)
}

/// Append the frame of one event to `out`.
pub(crate) fn encode_event(out: &mut Vec<u8>, seq: u64, unix_ms: u64, event: &Event) -> Result<()> {
    let payload = &event.encoded;
    let size = payload.len() as u64;
    if size > u64::from(SEGMENT_FRAME_BYTES_MAX) - 32 {
        return Err(Error::TooLarge {
            what: "event",
            size,
            limit: u64::from(SEGMENT_FRAME_BYTES_MAX) - 32,
        });
    }
    frame::encode(out, seq, unix_ms, event.kind, payload);
    Ok(())
}

/// One event read back from a segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentEvent {
    pub seq: u64,
    pub unix_ms: u64,
    pub event: Event,
}

/// Decode the payload of a segment frame.
pub(crate) fn decode_payload(
    table: &str,
    kind: EventType,
    payload: &[u8],
) -> std::result::Result<Event, String> {
    decode_payload_of(&std::sync::Arc::from(table), kind, payload)
}

/// [`decode_payload`] for a table name the caller shares among many events.
pub(crate) fn decode_payload_of(
    table: &std::sync::Arc<str>,
    kind: EventType,
    payload: &[u8],
) -> std::result::Result<Event, String> {
    if (kind as u8) >= EventType::WalBatch as u8 {
        return Err(format!("{kind} frame in a segment"));
    }
    if let Some((key, body)) = split_payload(payload) {
        return Ok(Event {
            table: table.clone(),
            kind,
            key,
            body: Some(std::sync::Arc::new(body)),
            encoded: std::sync::Arc::from(payload),
        });
    }
    let mut de = rmp_serde::Deserializer::new(payload);
    let (key, body) = <(Option<Key>, Value)>::deserialize(&mut de).map_err(|e| e.to_string())?;
    Ok(Event {
        table: table.clone(),
        kind,
        key,
        body: Some(std::sync::Arc::new(body)),
        encoded: std::sync::Arc::from(payload),
    })
}

/// The key of a `[key, body]` payload, decoded, and the body's bytes (not checked).
fn key_and_body(payload: &[u8]) -> Option<(Option<Key>, &[u8])> {
    let rest = payload.strip_prefix(&[0x92])?;
    let key_len = crate::msgpack::key_len(rest)?;
    let (key, body) = rest.split_at_checked(key_len)?;
    let key = match crate::msgpack_read::read_value(key)? {
        Value::Null => None,
        other => Some(Key::from_value(&other)?),
    };
    Some((key, body))
}

/// The key of a `[key, body]` payload, borrowed from it (what [`key_and_body`] would give),
/// and the body still encoded (checked to be exactly one value that decodes); `None` when the
/// payload is not that shape (the caller then decodes it whole, which reports the damage).
pub(crate) fn split_key(payload: &[u8]) -> Option<(Option<KeyRef<'_>>, &[u8])> {
    let rest = payload.strip_prefix(&[0x92])?;
    let key_len = crate::msgpack::key_len(rest)?;
    let (key, body) = rest.split_at_checked(key_len)?;
    let key = match key.first()? {
        0xa0..=0xbf | 0xd9..=0xdb => {
            Some(KeyRef::Str(crate::msgpack_read::Reader::new(key).key()?))
        }
        _ => match crate::msgpack_read::read_value(key)? {
            Value::Null => None,
            Value::Int(i) => Some(KeyRef::Int(i)),
            _ => return None,
        },
    };
    let mut reader = crate::msgpack_read::Reader::new(body);
    reader.raw()?;
    reader.at_end().then_some((key, body))
}

/// `[key, body]` decoded without serde (see [`crate::msgpack_read`]); `None` when rmp-serde
/// must decide.
fn split_payload(payload: &[u8]) -> Option<(Option<Key>, Value)> {
    let (key, body) = key_and_body(payload)?;
    Some((key, crate::msgpack_read::read_value(body)?))
}

/// A callback given, for each frame of a segment, the offset at which damage in it is reported,
/// the decoded frame and its bytes.
pub(crate) type FrameVisitor<'f> = dyn FnMut(u64, &Frame<'_>, &[u8]) -> Result<()> + 'f;

/// Call `f(offset, frame, frame_bytes)` for every frame in the first `trusted_len` bytes of a
/// segment of either kind, in order, checking that seqs never decrease and that every frame
/// is a segment event type. `offset` is where damage in that frame is reported: the frame's
/// own offset in a plain segment, its block's in a compressed one. Everything in the trusted
/// part must be valid: any damage is corruption at its offset.
pub(crate) fn visit_frames(
    path: &Path,
    data: &[u8],
    trusted_len: u64,
    f: &mut FrameVisitor<'_>,
) -> Result<()> {
    let trusted = usize::try_from(trusted_len).unwrap_or(usize::MAX);
    let Some(data) = data.get(..trusted) else {
        return Err(Error::corrupt(
            path,
            data.len() as u64,
            format!("segment is {} bytes, the checkpoint says {trusted_len}", data.len()),
        ));
    };
    let header = FileHeader::check_kind(data, SEGMENT_MAGIC)
        .map_err(|e| Error::corrupt(path, 0, format!("bad segment header: {e:?}")))?;
    let mut last_seq = 0;
    let mut checked = |at: u64, fr: &Frame<'_>, bytes: &[u8]| -> Result<()> {
        check_frame(path, at, fr, &mut last_seq)?;
        f(at, fr, bytes)
    };
    match header.version {
        frame::FORMAT_VERSION => {
            let mut offset = FILE_HEADER_BYTES;
            while let Some(rest) = data.get(offset..).filter(|r| !r.is_empty()) {
                let at = offset as u64;
                let fr = frame::decode(rest, SEGMENT_FRAME_BYTES_MAX)
                    .map_err(|e| Error::corrupt(path, at, e.to_string()))?;
                checked(at, &fr, rest.get(..fr.size).unwrap_or_default())?;
                offset += fr.size;
            }
            Ok(())
        }
        COMPRESSED_SEGMENT_VERSION => compressed::visit_frames(path, data, &mut checked),
        found => Err(Error::UnsupportedVersion {
            file: path.to_path_buf(),
            found,
            supported: COMPRESSED_SEGMENT_VERSION,
        }),
    }
}

/// Read the events in the first `trusted_len` bytes of a segment (plain or compressed).
/// Everything there must be valid: any damage is reported as corruption at its offset.
pub(crate) fn scan(
    path: &Path,
    table: &str,
    data: &[u8],
    trusted_len: u64,
) -> Result<Vec<SegmentEvent>> {
    let mut out = Vec::new();
    visit_frames(path, data, trusted_len, &mut |at, f, _| {
        let event =
            decode_payload(table, f.kind, f.payload).map_err(|e| Error::corrupt(path, at, e))?;
        out.push(SegmentEvent { seq: f.seq, unix_ms: f.unix_ms, event });
        Ok(())
    })?;
    Ok(out)
}

/// The rule every segment frame must meet, whoever reads it (a whole read here, a read in
/// pieces in `snapshot/segments.rs`): a transaction event, and seqs never going back.
pub(crate) fn check_frame(path: &Path, at: u64, fr: &Frame<'_>, last_seq: &mut u64) -> Result<()> {
    if (fr.kind as u8) >= EventType::WalBatch as u8 {
        return Err(Error::corrupt(path, at, format!("{} frame in a segment", fr.kind)));
    }
    if fr.seq < *last_seq {
        return Err(Error::corrupt(path, at, format!("seq {} after seq {last_seq}", fr.seq)));
    }
    *last_seq = fr.seq;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(segment_name(1), "00000001.seg");
        assert_eq!(parse_segment_name("00000042.seg"), Some(42));
        for bad in ["0000001.seg", "00000000.seg", "0000000a.seg", "00000001.snap"] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn split_key_borrows_what_the_decoder_reads() {
        let keys =
            [Some(Key::Int(-7)), Some(Key::Int(1 << 40)), Some(Key::Str("k42".into())), None];
        for key in keys {
            let body = Value::from(serde_json::json!({"a": 1, "s": "x"}));
            let event =
                Event::new("t".into(), EventType::Insert, key.clone(), body.into()).unwrap();
            let payload = &event.encoded;
            assert!(crate::storage::check_payload(payload));
            let (got, body) = split_key(payload).unwrap();
            let decoded = decode_payload("t", EventType::Insert, payload).unwrap();
            assert_eq!(got.map(KeyRef::to_key), decoded.key);
            assert_eq!(crate::msgpack_read::decode(body).unwrap(), *decoded.body().unwrap());
            // Any cut is declined or gives a body that is still exactly one value.
            for n in 0..payload.len() {
                if let Some((_, body)) = split_key(&payload[..n]) {
                    assert!(crate::msgpack_read::decode(body).is_ok(), "cut at {n}");
                }
            }
        }
    }

    #[test]
    fn scan_reports_damage_with_offset() {
        let mut data = FileHeader::new(SEGMENT_MAGIC).encode().to_vec();
        let ev = |k: i64| {
            Event::new("t".into(), EventType::Insert, Some(Key::Int(k)), Value::Int(k).into())
                .unwrap()
        };
        encode_event(&mut data, 1, 10, &ev(1)).unwrap();
        let second = data.len();
        encode_event(&mut data, 2, 11, &ev(2)).unwrap();
        let events = scan(Path::new("s"), "t", &data, data.len() as u64).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].event, ev(2));
        let mut bad = data.clone();
        bad[second + 9] ^= 1;
        let err = scan(Path::new("s"), "t", &bad, bad.len() as u64).unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset, .. } if offset == second as u64));
        assert!(scan(Path::new("s"), "t", &data[..second + 3], second as u64 + 3).is_err());
        assert!(scan(Path::new("s"), "t", &data, data.len() as u64 + 1).is_err());
    }
}
