//! Events: the changes a transaction makes, as they are logged and replayed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::storage::frame::EventType;
use crate::value::{Key, Value};

/// One change inside a transaction. Data events carry a key; schema events do not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub table: String,
    pub kind: EventType,
    pub key: Option<Key>,
    /// INSERT: the document; PATCH: the merge patch; SOFT_DELETE and DROP: null;
    /// CREATE and ALTER: the table's whole schema.
    pub body: Value,
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
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.table, self.kind as u8, &self.key, &self.body).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (table, kind, key, body) = <(String, u8, Option<Key>, Value)>::deserialize(d)?;
        let kind = EventType::from_u8(kind)
            .filter(|k| (*k as u8) < EventType::WalBatch as u8)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {kind}")))?;
        Ok(Event { table, kind, key, body })
    }
}

/// One committed transaction as the WAL stores it: the msgpack array `[seq, unix_ms, [events]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TxnRecord {
    pub seq: u64,
    pub unix_ms: u64,
    pub events: Vec<Event>,
}
