//! Installing a transaction read back from the segments when the database opens.
//!
//! Those transactions were validated when they were committed and every frame was checked
//! (CRC) on the way in. A transaction of data events only is installed without decoding its
//! documents ([`State::replay_data`]): each event needs one search of its key's chain, the
//! document after a PATCH is the chain's newest encoded document with the encoded patch
//! merged in (`msgpack_merge.rs`; decoded, merged and encoded again only when the bytes are
//! not as DriftDB writes them), index values are read straight from the encoded documents,
//! and only the rules that tell a history that does not replay are checked again (an INSERT
//! of a live key, a PATCH or SOFT_DELETE of a missing one, a table that is not live). A
//! transaction with a schema event is decoded whole and takes the committing path,
//! [`State::prepare`] then [`State::install`]. Both give the same state; the model, chain and
//! crash tests compare reopened databases with the ones that wrote them.

use std::sync::Arc;

use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::index::IndexValue;
use crate::state::State;
use crate::storage::frame::EventType;
use crate::value::{Key, Value};

/// A data event (INSERT, PATCH, SOFT_DELETE) read back from a segment, decoded only as far as
/// its key: the body stays encoded, as the version keeps it.
pub(crate) struct DataEvent<'a> {
    pub table: &'a Arc<str>,
    pub kind: EventType,
    pub key: Key,
    /// The encoded body (INSERT: the document; PATCH: the patch; SOFT_DELETE: nil).
    pub body: &'a [u8],
}

impl DataEvent<'_> {
    /// Whether this kind of event is installed by [`State::replay_data`].
    pub fn is_data(kind: EventType) -> bool {
        matches!(kind, EventType::Insert | EventType::Patch | EventType::SoftDelete)
    }
}

impl State {
    /// Install the transaction `events`, read from the segments, as `seq` (one with a schema
    /// event: through the committing path).
    pub(crate) fn replay(&mut self, seq: u64, unix_ms: u64, events: Vec<Event>) -> Result<()> {
        let (events, changes) = self.prepare(events)?;
        self.install(seq, unix_ms, events, changes)
    }

    /// Install the transaction `events` (data events only), read from the segments, as `seq`.
    pub(crate) fn replay_data(
        &mut self,
        seq: u64,
        unix_ms: u64,
        events: Vec<DataEvent<'_>>,
    ) -> Result<()> {
        if seq != self.last_seq() + 1 {
            return Err(Error::invalid(format!(
                "seq {seq} does not follow the last seq {}",
                self.last_seq()
            )));
        }
        for event in events {
            let Some(table) = self.tables.get_mut(&**event.table) else {
                return Err(Error::NoSuchTable { table: event.table.to_string() });
            };
            let Some(incarnation) =
                table.schemas.last().filter(|s| s.schema.is_some()).map(|s| s.created_seq)
            else {
                return Err(Error::NoSuchTable { table: event.table.to_string() });
            };
            let (key, body) = (event.key, event.body);
            let chain = table.rows.get_mut(&key);
            let live = chain.as_ref().is_some_and(|c| {
                c.last().is_some_and(|v| v.seq >= incarnation) && c.latest_bytes().is_some()
            });
            // The newest document, encoded (any incarnation, as the indexes saw it).
            let old = chain.as_ref().and_then(|c| c.latest_bytes());
            let before: Vec<_> = table
                .indexes
                .iter()
                .map(|i| old.map_or(Ok(None), |old| indexed_bytes(old, &i.path)))
                .collect::<Result<_>>()?;
            let full = match (event.kind, live) {
                (EventType::Insert, false) => None,
                (EventType::Insert, true) => {
                    return Err(Error::DuplicateKey { table: event.table.to_string(), key });
                }
                (EventType::Patch, true) => {
                    let mut full = Vec::with_capacity(old.map_or(0, <[u8]>::len) + body.len());
                    let merged = old
                        .and_then(|old| crate::msgpack_merge::merge_encoded(old, body, &mut full));
                    if merged.is_none() {
                        // Not as DriftDB writes maps: decode, merge, encode.
                        let mut doc = match chain.as_ref() {
                            Some(c) => c.latest()?.unwrap_or_default(),
                            None => Value::Null,
                        };
                        doc.merge_patch(&crate::chain::decode_bytes(body)?);
                        full.clear();
                        crate::msgpack::write_value(&mut full, &doc)?;
                    }
                    Some(full)
                }
                (_, false) => {
                    return Err(Error::KeyNotFound { table: event.table.to_string(), key });
                }
                (_, true) => None,
            };
            let new = match event.kind {
                EventType::Insert => Some(body),
                _ => full.as_deref(),
            };
            for (index, value) in table.indexes.iter_mut().zip(before) {
                let after = match new {
                    Some(new) => indexed_bytes(new, &index.path)?,
                    None => None,
                };
                index.on_values(&key, value, after, seq);
            }
            table.changed_seq = seq;
            match chain {
                Some(chain) => chain.push_encoded(seq, event.kind, body, full.as_deref())?,
                None => {
                    let mut chain = Chain::default();
                    chain.push_encoded(seq, event.kind, body, full.as_deref())?;
                    table.rows.insert(key, chain);
                }
            }
        }
        self.commit_ms.push(unix_ms);
        Ok(())
    }
}

/// The index key at `path` of the encoded document `doc` (decoded whole only when the bytes
/// are not as DriftDB writes them).
fn indexed_bytes(doc: &[u8], path: &[String]) -> Result<Option<IndexValue>> {
    let value = match crate::msgpack_merge::value_at(doc, path) {
        Some(value) => value,
        None => crate::index::at_path(&crate::chain::decode_bytes(doc)?, path).cloned(),
    };
    Ok(value.as_ref().and_then(IndexValue::of))
}
