//! Decoding frame payloads for display and checks, by the layouts of docs/FORMAT.md:
//! a segment frame holds the msgpack array `[key, body]`; a WAL_BATCH frame holds transaction
//! records `[seq, unix_ms, [[table, type, key, body], ...]]` back to back; the CHECKPOINT frame
//! holds the map `{seq, unix_ms, tables: {name: {segment, len, compacted?}}}`.

use std::collections::BTreeMap;
use std::io::Cursor;

use driftdb_core::storage::frame::EventType;
use driftdb_core::{Key, Value};
use serde::Deserialize;

use super::walk::FileKind;

/// What a frame's payload holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A segment event.
    Event {
        /// The primary key (none for schema events).
        key: Option<Key>,
        /// The document, patch, schema or nil.
        body: Value,
    },
    /// The transactions of a WAL batch.
    Batch(Vec<WalTxn>),
    /// The checkpoint record.
    Checkpoint(Value),
    /// The CRC did not match, so nothing was decoded.
    Unverified,
    /// The CRC matched but the frame does not belong in the file or does not parse.
    Invalid(String),
}

/// One transaction record of a WAL batch.
#[derive(Debug, Clone, PartialEq)]
pub struct WalTxn {
    /// Its seq.
    pub seq: u64,
    /// Its commit time (Unix ms).
    pub unix_ms: u64,
    /// Its events.
    pub events: Vec<WalEvent>,
}

/// One event of a WAL transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct WalEvent {
    /// The table.
    pub table: String,
    /// The event type byte.
    pub type_byte: u8,
    /// The key (none for schema events).
    pub key: Option<Key>,
    /// The document, patch, schema or nil.
    pub body: Value,
}

impl WalEvent {
    /// The event type's name, or `type N` for an unknown byte.
    pub fn kind_name(&self) -> String {
        EventType::from_u8(self.type_byte)
            .map_or_else(|| format!("type {}", self.type_byte), |k| k.name().to_string())
    }
}

/// Decode `T` from the whole of `payload`; trailing bytes are an error.
fn exactly<'de, T: Deserialize<'de>>(payload: &[u8]) -> Result<T, String> {
    let mut cursor = Cursor::new(payload);
    let value = T::deserialize(&mut rmp_serde::Deserializer::new(&mut cursor))
        .map_err(|e| e.to_string())?;
    if cursor.position() as usize != payload.len() {
        return Err(format!(
            "{} bytes after the payload",
            payload.len() - cursor.position() as usize
        ));
    }
    Ok(value)
}

/// Decode the payload of a frame of type `kind` in a file of kind `file`.
pub fn content(file: FileKind, kind: EventType, payload: &[u8]) -> Content {
    if !file.allows(kind) {
        return Content::Invalid(format!(
            "a {kind} frame does not belong in a {} file",
            file.name()
        ));
    }
    let decoded = match file {
        FileKind::Segment => {
            exactly::<(Option<Key>, Value)>(payload).map(|(key, body)| Content::Event { key, body })
        }
        FileKind::Wal => batch(payload).map(Content::Batch),
        FileKind::Checkpoint => exactly::<Value>(payload).map(Content::Checkpoint),
    };
    decoded.unwrap_or_else(|e| Content::Invalid(format!("payload does not decode: {e}")))
}

type RawTxn = (u64, u64, Vec<(String, u8, Option<Key>, Value)>);

fn batch(payload: &[u8]) -> Result<Vec<WalTxn>, String> {
    let mut cursor = Cursor::new(payload);
    let mut out = Vec::new();
    while (cursor.position() as usize) < payload.len() {
        let (seq, unix_ms, events) =
            RawTxn::deserialize(&mut rmp_serde::Deserializer::new(&mut cursor))
                .map_err(|e| format!("transaction record {}: {e}", out.len() + 1))?;
        let events = events
            .into_iter()
            .map(|(table, type_byte, key, body)| WalEvent { table, type_byte, key, body })
            .collect();
        out.push(WalTxn { seq, unix_ms, events });
    }
    Ok(out)
}

/// A table's compacted segments, as the checkpoint names them: `compacted-G-N.seg` for N in
/// `1..=segments` of generation G, holding every event before plain segment `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactedInfo {
    /// The compaction generation G.
    pub generation: u32,
    /// How many compacted segments.
    pub segments: u32,
    /// The first plain segment after them.
    pub first: u32,
}

/// Where a table's trusted history ends, by the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePos {
    /// The last plain segment.
    pub segment: u32,
    /// Its trusted length.
    pub len: u64,
    /// The compacted set before the plain segments, once the table has been compacted.
    pub compacted: Option<CompactedInfo>,
}

impl TablePos {
    /// The first plain segment of the live set (1 before any compaction).
    pub fn first_plain(&self) -> u32 {
        self.compacted.map_or(1, |c| c.first)
    }
}

/// The fields of a checkpoint record (version 1 or 2) that `verify` checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointInfo {
    /// Every transaction up to this seq is in the segments.
    pub seq: u64,
    /// Per table: where its live set ends.
    pub tables: BTreeMap<String, TablePos>,
}

fn field_u32(map: &Value, name: &str) -> Option<u32> {
    map.get(name).and_then(Value::as_i64).and_then(|v| u32::try_from(v).ok())
}

impl CheckpointInfo {
    /// Read the fields from a decoded checkpoint record.
    pub fn from_value(value: &Value) -> Result<CheckpointInfo, String> {
        let seq = value.get("seq").and_then(Value::as_i64).ok_or("no seq field")?;
        let mut tables = BTreeMap::new();
        let map = value.get("tables").and_then(Value::as_map).ok_or("no tables field")?;
        for (name, pos) in map {
            let segment = field_u32(pos, "segment");
            let len = pos.get("len").and_then(Value::as_i64).and_then(|l| u64::try_from(l).ok());
            let (Some(segment), Some(len)) = (segment, len) else {
                return Err(format!("table {name} has no valid segment position"));
            };
            let compacted = match pos.get("compacted") {
                None | Some(Value::Null) => None,
                Some(c) => match (
                    field_u32(c, "generation"),
                    field_u32(c, "segments"),
                    field_u32(c, "first"),
                ) {
                    (Some(generation), Some(segments), Some(first)) => {
                        Some(CompactedInfo { generation, segments, first })
                    }
                    _ => return Err(format!("table {name} has a malformed compacted set")),
                },
            };
            tables.insert(name.to_string(), TablePos { segment, len, compacted });
        }
        Ok(CheckpointInfo { seq: u64::try_from(seq).map_err(|_| "negative seq")?, tables })
    }
}

/// Compact JSON of a value, cut to `max` characters with `…`.
pub fn short(value: &Value, max: usize) -> String {
    let text = serde_json::Value::from(value).to_string();
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cuts_long_values() {
        let v = Value::String("x".repeat(100).into());
        assert_eq!(short(&v, 10).chars().count(), 10);
        assert!(short(&v, 10).ends_with('…'));
        assert_eq!(short(&Value::Int(5), 10), "5");
    }

    #[test]
    fn segment_payloads_decode_and_trailing_bytes_are_invalid() {
        let payload = rmp_serde::to_vec(&(Some(Key::from("k")), Value::Int(1))).unwrap();
        assert_eq!(
            content(FileKind::Segment, EventType::Insert, &payload),
            Content::Event { key: Some(Key::from("k")), body: Value::Int(1) }
        );
        let mut longer = payload.clone();
        longer.push(0xc0);
        assert!(matches!(
            content(FileKind::Segment, EventType::Insert, &longer),
            Content::Invalid(_)
        ));
        assert!(matches!(
            content(FileKind::Segment, EventType::WalBatch, &payload),
            Content::Invalid(_)
        ));
    }
}
