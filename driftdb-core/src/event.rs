//! Events: the changes a transaction makes, as they are logged and replayed.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::limits::{DOCUMENT_DEPTH_MAX, TRANSACTION_BYTES_MAX};
use crate::msgpack::Refusal;
use crate::storage::frame::EventType;
use crate::value::{Key, Value};

/// One change inside a transaction. Data events carry a key; schema events do not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// Shared by the events of one table in a transaction.
    pub table: Arc<str>,
    pub kind: EventType,
    pub key: Option<Key>,
    /// INSERT: the document; PATCH: the merge patch; SOFT_DELETE and DROP: null;
    /// CREATE and ALTER: the table's whole schema. `None` once a transaction has let the
    /// decoded body go (an INSERT's, after its checks): [`Event::body`] decodes it again from
    /// `encoded` when needed.
    pub body: Option<Arc<Value>>,
    /// msgpack of `[key, body]`: the segment frame payload, and the tail of the WAL event.
    /// Encoded once, when the event is made, into an allocation of its exact size; shared
    /// (not copied) by a transaction's record of what it inserted (`state::Written`).
    pub encoded: Arc<[u8]>,
}

/// msgpack marker of a two-element array (`[key, body]`).
const FIXARRAY_2: u8 = 0x92;

impl Event {
    pub fn new(
        table: Arc<str>,
        kind: EventType,
        key: Option<Key>,
        body: Arc<Value>,
    ) -> Result<Event> {
        Event::new_with(&mut Vec::new(), table, kind, key, body)
    }

    /// [`Event::new`], encoding in `scratch` (cleared first; a caller making many events
    /// passes the same one, so only the event's own exact-size copy is allocated).
    pub fn new_with(
        scratch: &mut Vec<u8>,
        table: Arc<str>,
        kind: EventType,
        key: Option<Key>,
        body: Arc<Value>,
    ) -> Result<Event> {
        let mut event = Event::encode_with(scratch, table, kind, key, &body)?;
        event.body = Some(body);
        Ok(event)
    }

    /// [`Event::new_with`] for a body the caller keeps: the event holds it encoded only.
    pub fn encode_with(
        scratch: &mut Vec<u8>,
        table: Arc<str>,
        kind: EventType,
        key: Option<Key>,
        body: &Value,
    ) -> Result<Event> {
        scratch.clear();
        scratch.push(FIXARRAY_2);
        crate::msgpack::write_key(scratch, key.as_ref())?;
        // The depth is checked during the encoding (one walk of the document, not two).
        match crate::msgpack::write_value_within(scratch, body, DOCUMENT_DEPTH_MAX) {
            Ok(()) => {}
            Err(Refusal::TooDeep) => {
                return Err(Error::invalid(format!(
                    "a document may nest at most {DOCUMENT_DEPTH_MAX} levels of arrays and maps"
                )));
            }
            Err(Refusal::Error(e)) => return Err(e),
        }
        debug_assert_eq!(scratch.first(), Some(&FIXARRAY_2));
        Ok(Event { table, kind, key, body: None, encoded: Arc::from(scratch.as_slice()) })
    }

    /// The body, decoded from `encoded` when it was let go.
    pub fn body(&self) -> Result<Arc<Value>> {
        if let Some(body) = &self.body {
            return Ok(body.clone());
        }
        let value = crate::msgpack_read::decode(body_of(&self.encoded)?)
            .map_err(|e| Error::invalid(format!("an event body does not decode: {e}")))?;
        Ok(Arc::new(value))
    }

    /// Append the WAL form `[table, type, key, body]`, reusing the encoded `[key, body]`.
    fn write_wal(&self, out: &mut Vec<u8>) {
        let _ = rmp::encode::write_array_len(out, 4);
        let _ = rmp::encode::write_str(out, &self.table);
        let _ = rmp::encode::write_uint(out, u64::from(self.kind as u8));
        out.extend_from_slice(self.encoded.get(1..).unwrap_or_default());
    }
}

/// The body in an encoded `[key, body]`.
pub(crate) fn body_of(encoded: &[u8]) -> Result<&[u8]> {
    let rest = encoded.get(1..).unwrap_or_default();
    crate::msgpack::key_len(rest)
        .and_then(|n| rest.get(n..))
        .filter(|body| !body.is_empty())
        .ok_or_else(|| Error::invalid("an event's encoding does not start with its key"))
}

/// Encode one transaction record `[seq, unix_ms, [events]]`, checking the size limit.
#[cfg(test)]
pub(crate) fn encode_txn(seq: u64, unix_ms: u64, events: &[Event]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let start = begin_txn(&mut out, seq, unix_ms, events);
    events.iter().try_for_each(|event| push_txn_event(&mut out, start, event))?;
    Ok(out)
}

/// Append the head of the transaction record of `events` (`[seq, unix_ms, [` and the event
/// count), with room for the events; returns where the record starts. Each event follows
/// with [`push_txn_event`] (a caller may write other things from each event in between).
pub(crate) fn begin_txn(out: &mut Vec<u8>, seq: u64, unix_ms: u64, events: &[Event]) -> usize {
    let size: usize = events.iter().map(|e| e.encoded.len() + e.table.len() + 8).sum();
    out.reserve(size + 32);
    let start = out.len();
    let _ = rmp::encode::write_array_len(out, 3);
    let _ = rmp::encode::write_uint(out, seq);
    let _ = rmp::encode::write_uint(out, unix_ms);
    let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
    let _ = rmp::encode::write_array_len(out, count);
    start
}

/// Append `event` to the transaction record begun at `start` by [`begin_txn`], checking the
/// record's size limit.
pub(crate) fn push_txn_event(out: &mut Vec<u8>, start: usize, event: &Event) -> Result<()> {
    event.write_wal(out);
    let written = (out.len() - start) as u64;
    if written > TRANSACTION_BYTES_MAX {
        return Err(Error::TooLarge {
            what: "transaction",
            size: written,
            limit: TRANSACTION_BYTES_MAX,
        });
    }
    Ok(())
}

/// What kind of change a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    /// A full document was inserted (a new incarnation of the key).
    Insert,
    /// Fields were merged into the document.
    Patch,
    /// The key stopped being visible.
    SoftDelete,
}

impl ChangeKind {
    pub(crate) fn from_event(kind: EventType) -> Option<ChangeKind> {
        match kind {
            EventType::Insert => Some(ChangeKind::Insert),
            EventType::Patch => Some(ChangeKind::Patch),
            EventType::SoftDelete => Some(ChangeKind::SoftDelete),
            _ => None,
        }
    }

    /// The name used in the seed's documentation: `INSERT`, `PATCH`, `SOFT_DELETE`.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Patch => "PATCH",
            ChangeKind::SoftDelete => "SOFT_DELETE",
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// On the wire (WAL): the msgpack array `[table, type, key, body]`.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (table, kind, key, body) = <(String, u8, Option<Key>, Value)>::deserialize(d)?;
        let kind = EventType::from_u8(kind)
            .filter(|k| (*k as u8) < EventType::WalBatch as u8)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {kind}")))?;
        Event::new(table.into(), kind, key, Arc::new(body)).map_err(serde::de::Error::custom)
    }
}

/// One committed transaction as the WAL stores it: the msgpack array `[seq, unix_ms, [events]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct TxnRecord {
    pub seq: u64,
    pub unix_ms: u64,
    pub events: Vec<Event>,
}
