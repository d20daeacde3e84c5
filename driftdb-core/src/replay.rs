//! Installing the transactions read back from the segments when the database opens.
//!
//! Those transactions were validated when they were committed and every frame was checked
//! (CRC) on the way in. A transaction of data events only is checked against its tables at
//! once ([`Replayer::replay_data`]: each table exists and is live) and applied to its rows
//! later, with a batch of up to [`BATCH_EVENTS`] events. A batch is split among partitions
//! (up to [`PARTITIONS_MAX`], one thread each) by a fixed hash of the table and key: each
//! applies its own keys' events in seq order, so every key sees its history in order, and
//! keys do not depend on each other. What a partition changes in the tables themselves is
//! either behind a lock (taking an existing row out, which happens once per key and run) or
//! handed back to the calling thread when the batch is over (the index ranges that ended).
//!
//! A partition finds a row by hash, keyed by the key bytes as the payload holds them (short
//! keys in place): the rows a run of data transactions touches are held aside, each with its
//! newest encoded document and its open index ranges, and go back into the table's ordered
//! map in one sorted bulk build before the next schema transaction and at the end
//! ([`Replayer::flush`]; a `BTreeMap` search per event was a third of the open). No document
//! is decoded: the document after a PATCH is the row's newest one with the encoded patch
//! merged in (`msgpack_merge.rs`; decoded, merged and encoded again only when the bytes are
//! not as DriftDB writes them); index values are read straight from the encoded documents,
//! and not at all after a PATCH that does not name the indexed field; a version keeps its
//! document only on a keyframe until the run ends. Only the rules that tell a history that
//! does not replay are checked again (an INSERT of a live key, a PATCH or SOFT_DELETE of a
//! missing one, a table that is not live); the first failure in seq order is reported ([`Failed`]).
//!
//! A transaction with a schema event is decoded whole and takes the committing path,
//! [`State::prepare`] then [`State::install`], after a flush. Both give the same state; the
//! model, chain, index and replay tests compare reopened databases with the ones that wrote
//! them.

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

/// Data events gathered before they are applied by the partitions at once.
const BATCH_EVENTS: usize = 1 << 16;

/// A batch smaller than this is applied on the calling thread alone.
const SPAWN_MIN_EVENTS: usize = 4096;

/// The most partitions (threads) the replay uses.
const PARTITIONS_MAX: usize = 4;

/// A replay that failed: at which seq, and why.
#[derive(Debug)]
pub(crate) struct Failed {
    pub seq: u64,
    pub error: Error,
}

/// Installs the transactions read from the segments, in seq order (see the module header).
/// `'a` is the lifetime of the bytes read at open: staged rows are found by the key as the
/// payload holds it.
pub(crate) struct Replayer<'a> {
    /// Data events checked against their tables and not applied to their rows yet.
    pending: Vec<(u64, DataEvent<'a>)>,
    /// The rows, split by a hash of the key: each partition applies its own keys' events in
    /// seq order, on its own thread.
    parts: Vec<Partition<'a>>,
}

impl Default for Replayer<'_> {
    fn default() -> Self {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()).min(PARTITIONS_MAX);
        Replayer::with_partitions(n)
    }
}

/// What a partition needs to know of a table while it applies a batch (the tables do not
/// change within a batch: a schema transaction ends one).
struct TableInfo {
    /// The CREATE seq of the live incarnation.
    incarnation: u64,
    /// The field path of each index.
    paths: Vec<Vec<String>>,
    /// Whether the table held rows when the batch began (else nothing is taken from it).
    had_rows: bool,
    /// The table's place in the state's (ordered) tables.
    ordinal: usize,
}

type Tables = std::collections::BTreeMap<String, crate::state::TableState>;

/// The rows of one partition.
#[derive(Default)]
struct Partition<'a> {
    slots: HashMap<(&'a str, SlotKey<'a>), usize, foldhash::fast::RandomState>,
    rows: Vec<Staged>,
    /// The document after a PATCH, before it becomes its row's `doc`.
    scratch: Vec<u8>,
    /// Index ranges that ended in this batch, given to the indexes when it is over.
    ended: Vec<Ended>,
}

/// An index range that ended: row `row` of its partition held `value` in index `index` of
/// its table in `[from, to)`.
struct Ended {
    row: usize,
    /// The table's place in the state's tables ([`TableInfo::ordinal`]).
    table: usize,
    index: usize,
    /// The row's key number in the index, when it had one already.
    id: Option<KeyId>,
    value: IndexValue,
    from: u64,
    to: u64,
}

impl<'a> Replayer<'a> {
    fn with_partitions(n: usize) -> Self {
        let parts = (0..n.max(1)).map(|_| Partition::default()).collect();
        Replayer { pending: Vec::new(), parts }
    }

    /// Install the transaction `events`, read from the segments, as `seq` (one with a schema
    /// event: through the committing path, after the staged rows are back in their tables).
    pub(crate) fn replay(
        &mut self,
        state: &mut State,
        seq: u64,
        unix_ms: u64,
        events: Vec<Event>,
    ) -> std::result::Result<(), Failed> {
        self.flush(state)?;
        let failed = |error| Failed { seq, error };
        crate::index_files::undefer_for(state, &events).map_err(failed)?;
        let (events, changes) = state.prepare(events).map_err(failed)?;
        state.install(seq, unix_ms, events, changes).map_err(failed)
    }

    /// Install the transaction `events` (data events only), read from the segments, as `seq`:
    /// checked against their tables now, applied to their rows with the batch.
    pub(crate) fn replay_data(
        &mut self,
        state: &mut State,
        seq: u64,
        unix_ms: u64,
        events: Vec<DataEvent<'a>>,
    ) -> std::result::Result<(), Failed> {
        let failed = |error| Failed { seq, error };
        if seq != state.last_seq() + 1 {
            let last = state.last_seq();
            return Err(failed(Error::invalid(format!(
                "seq {seq} does not follow the last seq {last}"
            ))));
        }
        for event in events {
            let live = state
                .tables
                .get_mut(&**event.table)
                .filter(|t| t.schemas.last().is_some_and(|s| s.schema.is_some()));
            let Some(table) = live else {
                return Err(failed(Error::NoSuchTable { table: event.table.to_string() }));
            };
            table.changed_seq = seq;
            self.pending.push((seq, event));
        }
        state.commit_ms.push(unix_ms);
        if self.pending.len() >= BATCH_EVENTS {
            self.apply(state)?;
        }
        Ok(())
    }

    /// Apply the pending events, each partition its own keys', on as many threads.
    fn apply(&mut self, state: &mut State) -> std::result::Result<(), Failed> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let infos: HashMap<String, TableInfo> = state
            .tables
            .iter()
            .enumerate()
            .filter_map(|(ordinal, (name, t))| {
                let incarnation =
                    t.schemas.last().filter(|s| s.schema.is_some()).map(|s| s.created_seq)?;
                let paths = t.indexes.iter().map(|i| i.path.clone()).collect();
                let had_rows = !t.rows.is_empty();
                Some((name.clone(), TableInfo { incarnation, paths, had_rows, ordinal }))
            })
            .collect();
        let n = self.parts.len();
        let pending = &self.pending;
        let shared = parking_lot::Mutex::new(&mut state.tables);
        let results: Vec<std::result::Result<(), Failed>> = std::thread::scope(|scope| {
            let (infos, shared) = (&infos, &shared);
            let mut waiting = Vec::new();
            let mut results = Vec::new();
            let spawn = n > 1 && pending.len() >= SPAWN_MIN_EVENTS;
            let (first, rest) = match self.parts.split_first_mut() {
                Some((first, rest)) => (Some(first), rest),
                None => (None, &mut [][..]),
            };
            for (i, part) in rest.iter_mut().enumerate() {
                let me = i + 1;
                let mut run = move || part.run(me, n, pending, infos, shared);
                if spawn {
                    // No thread to be had: the partition runs on this one after the first.
                    match std::thread::Builder::new().spawn_scoped(scope, run) {
                        Ok(handle) => waiting.push(handle),
                        Err(e) => results.push(Err(Failed {
                            seq: pending.first().map_or(0, |p| p.0),
                            error: Error::invalid(format!("no replay thread: {e}")),
                        })),
                    }
                } else {
                    results.push(run());
                }
            }
            if let Some(first) = first {
                results.push(first.run(0, n, pending, infos, shared));
            }
            for handle in waiting {
                results.push(handle.join().unwrap_or_else(|_| {
                    Err(Failed { seq: 0, error: Error::invalid("a replay thread panicked") })
                }));
            }
            results
        });
        // The first failure in seq order is the one reported.
        if let Some(failed) = results.into_iter().filter_map(|r| r.err()).min_by_key(|f| f.seq) {
            return Err(failed);
        }
        let mut tables: Vec<&mut crate::state::TableState> = state.tables.values_mut().collect();
        for part in &mut self.parts {
            part.give_ended(&mut tables);
        }
        self.pending.clear();
        Ok(())
    }

    /// Apply what is pending, then put every staged row back into its table's ordered map:
    /// one sorted bulk build and one merge per table. Called before a schema transaction and
    /// when the replay ends.
    pub(crate) fn flush(&mut self, state: &mut State) -> std::result::Result<(), Failed> {
        self.apply(state)?;
        let seq = state.last_seq();
        let mut by_table: BTreeMap<Arc<str>, Vec<Staged>> = BTreeMap::new();
        for part in &mut self.parts {
            part.slots.clear();
            for row in part.rows.drain(..) {
                by_table.entry(row.table.clone()).or_default().push(row);
            }
        }
        for (name, rows) in by_table {
            // A staged row's table is live until the next schema transaction, which flushes.
            let Some(table) = state.tables.get_mut(&*name) else { continue };
            let mut sorted = Vec::with_capacity(rows.len());
            for mut row in rows {
                if row.chain.last().is_some_and(|v| v.has_doc()) {
                    row.chain.set_latest(&row.doc).map_err(|error| Failed { seq, error })?;
                }
                for (index, at) in table.indexes.iter_mut().zip(row.indexed) {
                    if let (Some(value), Some(from)) = (at.value, at.open) {
                        let id = at.id.unwrap_or_else(|| index.id(&row.key));
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
}

/// Which of `n` partitions applies the events of `key` (a fixed hash: the same key goes to
/// the same partition in every batch).
fn partition_of(table: &str, key: &SlotKey<'_>, n: usize) -> usize {
    use std::hash::BuildHasher;
    if n <= 1 {
        return 0;
    }
    let hash = foldhash::fast::FixedState::with_seed(0x5eed).hash_one((table, key));
    // The high bits: the slot maps use their own hashes.
    usize::try_from(hash >> 32).unwrap_or(0) % n
}

impl<'a> Partition<'a> {
    /// Apply, in order, the events of `pending` whose keys are partition `me`'s of `n`.
    fn run(
        &mut self,
        me: usize,
        n: usize,
        pending: &[(u64, DataEvent<'a>)],
        infos: &HashMap<String, TableInfo>,
        shared: &parking_lot::Mutex<&mut Tables>,
    ) -> std::result::Result<(), Failed> {
        for (seq, event) in pending {
            let key = SlotKey::of(event.key);
            if partition_of(event.table, &key, n) != me {
                continue;
            }
            self.apply(*seq, event, key, infos, shared)
                .map_err(|error| Failed { seq: *seq, error })?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        seq: u64,
        event: &DataEvent<'a>,
        key: SlotKey<'a>,
        infos: &HashMap<String, TableInfo>,
        shared: &parking_lot::Mutex<&mut Tables>,
    ) -> Result<()> {
        let no_table = || Error::NoSuchTable { table: event.table.to_string() };
        let info = infos.get(&**event.table).ok_or_else(no_table)?;
        let slot = match self.slots.entry((&**event.table, key)) {
            std::collections::hash_map::Entry::Occupied(slot) => *slot.get(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let row = stage(event, info, shared)?;
                self.rows.push(row);
                *slot.insert(self.rows.len() - 1)
            }
        };
        let Some(row) = self.rows.get_mut(slot) else {
            return Err(Error::invalid("a staged row is missing"));
        };
        let body = event.body;
        let live = row.chain.last().is_some_and(|v| v.seq >= info.incarnation && v.has_doc());
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
        for (index, (path, at)) in info.paths.iter().zip(row.indexed.iter_mut()).enumerate() {
            let after = match (event.kind, new) {
                (_, None) => None,
                // A patch that does not name the path's first field leaves the value.
                (EventType::Patch, Some(_))
                    if path.first().is_some_and(|field| {
                        crate::msgpack_merge::names_field(body, field) == Some(false)
                    }) =>
                {
                    continue;
                }
                (_, Some(new)) => indexed_bytes(new, path)?,
            };
            if at.value == after {
                continue;
            }
            if let (Some(value), Some(from)) = (at.value.take(), at.open.take()) {
                let (table, id) = (info.ordinal, at.id);
                self.ended.push(Ended { row: slot, table, index, id, value, from, to: seq });
            }
            at.open = after.is_some().then_some(seq);
            at.value = after;
        }
        row.chain.push_staged(seq, event.kind, body, new)
    }

    /// Give the index ranges that ended in the batch to the indexes of `tables` (the state's,
    /// in order), numbering the keys that have no number yet.
    fn give_ended(&mut self, tables: &mut [&mut crate::state::TableState]) {
        for ended in self.ended.drain(..) {
            let Some(table) = tables.get_mut(ended.table) else { continue };
            let Some(index) = table.indexes.get_mut(ended.index) else { continue };
            let id = match ended.id {
                Some(id) => id,
                None => {
                    let Some(row) = self.rows.get_mut(ended.row) else { continue };
                    let Some(at) = row.indexed.get_mut(ended.index) else { continue };
                    *at.id.get_or_insert_with(|| index.id(&row.key))
                }
            };
            index.push_closed(id, ended.value, ended.from, ended.to);
        }
    }
}

/// Take the row of `event`'s key out of its table (a new one when the table has none) with
/// its newest document, its index values and its open index ranges.
fn stage(
    event: &DataEvent<'_>,
    info: &TableInfo,
    shared: &parking_lot::Mutex<&mut Tables>,
) -> Result<Staged> {
    let key = event.key.to_key();
    let mut indexed: SmallVec<[Indexed; 1]> = SmallVec::new();
    let mut chain = Chain::default();
    let mut doc = Vec::new();
    if info.had_rows {
        let mut tables = shared.lock();
        let no_table = || Error::NoSuchTable { table: event.table.to_string() };
        let table = tables.get_mut(&**event.table).ok_or_else(no_table)?;
        chain = table.rows.remove(&key).unwrap_or_default();
        let old = chain.latest_bytes();
        doc = old.map(<[u8]>::to_vec).unwrap_or_default();
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
    } else {
        indexed.extend(info.paths.iter().map(|_| Indexed { value: None, open: None, id: None }));
    }
    let table = event.table.clone();
    Ok(Staged { table, key, chain, doc, indexed })
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
