//! Installing a transaction read back from the segments when the database opens.
//!
//! Those transactions were validated when they were committed and every frame was checked
//! (CRC) on the way in. A transaction of data events only is installed without decoding its
//! documents ([`Replayer::replay_data`]): each event finds its key's chain by hash (the rows
//! a run of data transactions touches are held aside, keyed by the key bytes as the payloads
//! hold them, and moved into the table's ordered map in one sorted pass before the next
//! schema transaction and at the end: a `BTreeMap` search per event cost a third of the
//! open), the
//! document after a PATCH is the chain's newest encoded document with the encoded patch
//! merged in (`msgpack_merge.rs`; decoded, merged and encoded again only when the bytes are
//! not as DriftDB writes them), index values are read straight from the encoded documents
//! (and kept per row, so a PATCH that does not name an indexed field reads nothing), and
//! only the rules that tell a history that does not replay are checked again (an INSERT
//! of a live key, a PATCH or SOFT_DELETE of a missing one, a table that is not live). A
//! transaction with a schema event is decoded whole and takes the committing path,
//! [`State::prepare`] then [`State::install`]. Both give the same state; the model, chain and
//! crash tests compare reopened databases with the ones that wrote them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::index::{IndexValue, KeyId};
use crate::state::State;
use crate::storage::frame::EventType;
use crate::value::{Key, KeyRef};

/// A data event (INSERT, PATCH, SOFT_DELETE) read back from a segment, decoded only as far as
/// its key: the body stays encoded, as the version keeps it.
pub(crate) struct DataEvent<'a> {
    pub table: &'a Arc<str>,
    pub kind: EventType,
    pub key: KeyRef<'a>,
    /// The encoded body (INSERT: the document; PATCH: the patch; SOFT_DELETE: nil).
    pub body: &'a [u8],
}

impl DataEvent<'_> {
    /// Whether this kind of event is installed by [`Replayer::replay_data`].
    pub fn is_data(kind: EventType) -> bool {
        matches!(kind, EventType::Insert | EventType::Patch | EventType::SoftDelete)
    }
}

/// A row taken out of its table while data transactions replay.
struct Staged {
    table: Arc<str>,
    key: Key,
    /// Its versions, appended with [`Chain::push_staged`] (the newest may lack its document).
    chain: Chain,
    /// The encoded document after the newest version, when that leaves one.
    doc: Vec<u8>,
    /// Where the row stands in each of the table's indexes.
    indexed: SmallVec<[Indexed; 1]>,
}

/// A staged row in one index: its open range is kept here, not in the index's live set, while
/// the row is staged (so a change of value ends a range without searching the index).
struct Indexed {
    /// The value in the row's newest document (as the index saw it: any incarnation, `None`
    /// after a SOFT_DELETE).
    value: Option<IndexValue>,
    /// The start of the row's open range of `value`, when it has one.
    open: Option<u64>,
    /// The row's key number in the index, once it has one.
    id: Option<KeyId>,
}

/// A key as the slot map holds it: a short string in place, so that finding a row compares
/// bytes already in the map's cache line instead of reading the payload the key came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum SlotKey<'a> {
    Int(i64),
    Short(u8, [u8; SHORT_KEY_BYTES]),
    Long(&'a str),
}

const SHORT_KEY_BYTES: usize = 22;

impl<'a> SlotKey<'a> {
    fn of(key: KeyRef<'a>) -> Self {
        match key {
            KeyRef::Int(i) => SlotKey::Int(i),
            KeyRef::Str(s) => match u8::try_from(s.len()) {
                Ok(len) if s.len() <= SHORT_KEY_BYTES => {
                    let mut bytes = [0; SHORT_KEY_BYTES];
                    bytes.get_mut(..s.len()).unwrap_or_default().copy_from_slice(s.as_bytes());
                    SlotKey::Short(len, bytes)
                }
                _ => SlotKey::Long(s),
            },
        }
    }
}

/// Installs the transactions read from the segments, in seq order (see the module header).
/// `'a` is the lifetime of the bytes read at open: staged rows are found by the key as the
/// payload holds it.
#[derive(Default)]
pub(crate) struct Replayer<'a> {
    slots: HashMap<(&'a str, SlotKey<'a>), usize, foldhash::fast::RandomState>,
    rows: Vec<Staged>,
    /// The document after a PATCH, before it becomes its row's `doc`.
    scratch: Vec<u8>,
}

impl<'a> Replayer<'a> {
    /// Install the transaction `events`, read from the segments, as `seq` (one with a schema
    /// event: through the committing path, after the staged rows are back in their tables).
    pub(crate) fn replay(
        &mut self,
        state: &mut State,
        seq: u64,
        unix_ms: u64,
        events: Vec<Event>,
    ) -> Result<()> {
        self.flush(state)?;
        let changes = state.prepare(&events)?;
        state.install(seq, unix_ms, events, changes)
    }

    /// Put every staged row back into its table's ordered map: one sorted bulk build and one
    /// merge per table. Called before a schema transaction and when the replay ends.
    pub(crate) fn flush(&mut self, state: &mut State) -> Result<()> {
        self.slots.clear();
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut by_table: BTreeMap<Arc<str>, Vec<Staged>> = BTreeMap::new();
        for row in self.rows.drain(..) {
            by_table.entry(row.table.clone()).or_default().push(row);
        }
        for (name, rows) in by_table {
            // A staged row's table is live until the next schema transaction, which flushes.
            let Some(table) = state.tables.get_mut(&*name) else { continue };
            let mut sorted = Vec::with_capacity(rows.len());
            for mut row in rows {
                if row.chain.last().is_some_and(|v| v.has_doc()) {
                    row.chain.set_latest(&row.doc)?;
                }
                for (index, at) in table.indexes.iter_mut().zip(row.indexed) {
                    if let (Some(value), Some(from), Some(id)) = (at.value, at.open, at.id) {
                        index.put_live(id, value, from);
                    }
                }
                sorted.push((row.key, row.chain));
            }
            // Collecting sorts the list and builds the map bottom up.
            let mut sorted: BTreeMap<Key, Chain> = sorted.into_iter().collect();
            table.rows.append(&mut sorted);
        }
        Ok(())
    }

    /// Install the transaction `events` (data events only), read from the segments, as `seq`.
    pub(crate) fn replay_data(
        &mut self,
        state: &mut State,
        seq: u64,
        unix_ms: u64,
        events: Vec<DataEvent<'a>>,
    ) -> Result<()> {
        if seq != state.last_seq() + 1 {
            return Err(Error::invalid(format!(
                "seq {seq} does not follow the last seq {}",
                state.last_seq()
            )));
        }
        for event in events {
            let Some(table) = state.tables.get_mut(&**event.table) else {
                return Err(Error::NoSuchTable { table: event.table.to_string() });
            };
            let Some(incarnation) =
                table.schemas.last().filter(|s| s.schema.is_some()).map(|s| s.created_seq)
            else {
                return Err(Error::NoSuchTable { table: event.table.to_string() });
            };
            let slot = match self.slots.entry((&**event.table, SlotKey::of(event.key))) {
                std::collections::hash_map::Entry::Occupied(slot) => *slot.get(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let key = event.key.to_key();
                    let chain = match table.rows.is_empty() {
                        true => Chain::default(),
                        false => table.rows.remove(&key).unwrap_or_default(),
                    };
                    let doc = chain.latest_bytes().map(<[u8]>::to_vec).unwrap_or_default();
                    let old = chain.latest_bytes();
                    let mut indexed = SmallVec::new();
                    for index in &mut table.indexes {
                        let value = old.map_or(Ok(None), |old| indexed_bytes(old, &index.path))?;
                        let (mut id, mut open) = (None, None);
                        if let Some(value) = &value {
                            let key_id = index.id(&key);
                            open = index.take_live(key_id, value);
                            id = Some(key_id);
                        }
                        indexed.push(Indexed { value, open, id });
                    }
                    let table = event.table.clone();
                    self.rows.push(Staged { table, key, chain, doc, indexed });
                    *slot.insert(self.rows.len() - 1)
                }
            };
            let Some(row) = self.rows.get_mut(slot) else {
                return Err(Error::invalid("a staged row is missing"));
            };
            let body = event.body;
            let live = row.chain.last().is_some_and(|v| v.seq >= incarnation && v.has_doc());
            match (event.kind, live) {
                (EventType::Insert, false) => {
                    row.doc.clear();
                    row.doc.extend_from_slice(body);
                }
                (EventType::Insert, true) => {
                    let (table, key) = (event.table.to_string(), row.key.clone());
                    return Err(Error::DuplicateKey { table, key });
                }
                (EventType::Patch, true) => {
                    patched(&row.doc, body, &mut self.scratch)?;
                    std::mem::swap(&mut row.doc, &mut self.scratch);
                }
                (_, false) => {
                    let (table, key) = (event.table.to_string(), row.key.clone());
                    return Err(Error::KeyNotFound { table, key });
                }
                (_, true) => row.doc.clear(),
            }
            let new = match event.kind {
                EventType::Insert | EventType::Patch => Some(&row.doc[..]),
                _ => None,
            };
            for (index, at) in table.indexes.iter_mut().zip(row.indexed.iter_mut()) {
                let after = match (event.kind, new) {
                    (_, None) => None,
                    // A patch that does not name the path's first field leaves the value.
                    (EventType::Patch, Some(_))
                        if index.path.first().is_some_and(|field| {
                            crate::msgpack_merge::names_field(body, field) == Some(false)
                        }) =>
                    {
                        continue;
                    }
                    (_, Some(new)) => indexed_bytes(new, &index.path)?,
                };
                if at.value == after {
                    continue;
                }
                let id = *at.id.get_or_insert_with(|| index.id(&row.key));
                if let (Some(value), Some(from)) = (at.value.take(), at.open.take()) {
                    index.push_closed(id, value, from, seq);
                }
                at.open = after.is_some().then_some(seq);
                at.value = after;
            }
            table.changed_seq = seq;
            row.chain.push_staged(seq, event.kind, body, new)?;
        }
        state.commit_ms.push(unix_ms);
        Ok(())
    }
}

/// Write to `out` the encoded document `doc` with the encoded merge patch `body` applied.
fn patched(doc: &[u8], body: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    if crate::msgpack_merge::merge_encoded(doc, body, out).is_none() {
        // Not as DriftDB writes maps: decode, merge, encode.
        let mut merged = crate::chain::decode_bytes(doc)?;
        merged.merge_patch(&crate::chain::decode_bytes(body)?);
        out.clear();
        crate::msgpack::write_value(out, &merged)?;
    }
    Ok(())
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
