//! Secondary indexes over the version chains, valid at every seq.
//!
//! A table's schema declares indexes as lists of fields (`INDEX(status, customer_id)`); each
//! field listed is indexed on its own, so `WHERE status = ...` and `WHERE customer_id = ...`
//! can both use it. A field index maps `(value, key)` to the seq ranges `[from, to)` in which
//! the key's document held that value; a lookup at seq `s` returns the keys with a range that
//! contains `s`. So an indexed read works `AS OF` any seq, not only now, and an index declared
//! late is built from the whole history and serves old seqs too. Every unique field
//! (`UNIQUE(email)`) is indexed the same way; `unique.rs` looks up a value's holders through
//! it when it checks a write.
//!
//! Invariants:
//! - Every version whose document has a non-null value `v` at `path`, installed at seq `s`,
//!   is covered by a range of `(v, key)` that starts at or before `s` and ends after `s`
//!   unless a later version of the key changed the value. So a lookup never misses a key.
//! - A lookup may return extra keys (a table dropped and re-created keeps the ranges of its
//!   old incarnation open); readers re-check every candidate against the document they read,
//!   so results are exact.
//!
//! Index structures are derived: they live in memory, are written to index files at a clean
//! close and loaded from them on open when they match the segments, and are rebuilt from the
//! version chains otherwise (`index_files.rs`, `storage/index_file.rs`). Numbers are keyed by
//! value, so `1` and `1.0` are the same key, as `=` treats them; missing and null values are
//! not indexed (`= NULL` is never true).

use std::collections::BTreeMap;
use std::sync::Arc;

use foldhash::HashMap;
use indexmap::IndexSet;

use crate::chain::Chain;
use crate::error::Result;
use crate::schema::TableSchema;
use crate::value::{Key, Value};

/// A value as an index key: ordered, and equal exactly when DriftQL's `=` says so for scalars.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexValue {
    /// A boolean.
    Bool(bool),
    /// An integer, or a float with an integral value in range.
    Int(i64),
    /// Any other finite float, by its bits.
    Float(u64),
    /// A string.
    Str(String),
    /// Bytes, arrays and maps, by their JSON text.
    Other(String),
}

impl IndexValue {
    /// The index key of a value; `None` for null.
    pub fn of(value: &Value) -> Option<IndexValue> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(b) => IndexValue::Bool(*b),
            Value::Int(i) => IndexValue::Int(*i),
            Value::Float(f) => {
                let integral = f.fract() == 0.0
                    && *f >= -9.223_372_036_854_776e18
                    && *f < 9.223_372_036_854_776e18;
                if integral { IndexValue::Int(*f as i64) } else { IndexValue::Float(f.to_bits()) }
            }
            Value::String(s) => IndexValue::Str(s.as_str().to_owned()),
            other => IndexValue::Other(other.to_string()),
        })
    }
}

pub(crate) fn at_path<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = doc;
    for name in path {
        current = current.get(name)?;
    }
    Some(current)
}

/// The index key of the value at `path` in `doc`; `None` when missing or null.
pub(crate) fn indexed(doc: Option<&Value>, path: &[String]) -> Option<IndexValue> {
    doc.and_then(|d| at_path(d, path)).and_then(IndexValue::of)
}

/// A key by its number in [`FieldIndex::keys`]: ranges refer to a key without a copy of it.
pub(crate) type KeyId = usize;

/// A seq range `[from, to)` in which `key` held a value, ended by a later version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    pub key: KeyId,
    pub from: u64,
    pub to: u64,
}

/// The set of keys of a [`FieldIndex`], numbered in insertion order.
pub(crate) type KeySet = IndexSet<Key, foldhash::fast::RandomState>;
/// value → key → the start of the key's open range.
pub(crate) type LiveMap = HashMap<IndexValue, HashMap<KeyId, u64>>;
/// value → the ranges that ended, in the order they ended.
pub(crate) type ClosedMap = HashMap<IndexValue, Vec<Closed>>;

/// The index of one field path.
#[derive(Debug, Clone)]
pub(crate) struct FieldIndex {
    /// The field path, split at dots.
    pub path: Vec<String>,
    /// Every key the index has seen, once (never removed: ended ranges refer to them).
    keys: KeySet,
    /// value → key → the start of the key's open range `[from, ∞)`.
    live: LiveMap,
    /// value → the ranges in which keys held the value before, in the order they ended
    /// (a list, not a map: it is only ever appended to, and read whole by a lookup).
    closed: ClosedMap,
    /// The largest `to` of any closed range: a lookup at or after it needs only `live`.
    closed_until: u64,
}

impl FieldIndex {
    pub(crate) fn new(path: Vec<String>) -> Self {
        FieldIndex {
            path,
            keys: IndexSet::default(),
            live: HashMap::default(),
            closed: HashMap::default(),
            closed_until: 0,
        }
    }

    /// An index made of its parts, as an index file holds them (`storage/index_file.rs`,
    /// which checked that every range names a key of `keys`).
    pub(crate) fn from_parts(
        path: Vec<String>,
        keys: KeySet,
        live: LiveMap,
        closed: ClosedMap,
    ) -> Self {
        let closed_until = closed.values().flatten().map(|c| c.to).max().unwrap_or(0);
        FieldIndex { path, keys, live, closed, closed_until }
    }

    /// The parts of the index, as an index file stores them: keys, open and ended ranges.
    pub(crate) fn parts(&self) -> (&KeySet, &LiveMap, &ClosedMap) {
        (&self.keys, &self.live, &self.closed)
    }

    /// The number of `key`, given it the first time.
    pub fn id(&mut self, key: &Key) -> KeyId {
        match self.keys.get_index_of(key) {
            Some(id) => id,
            None => self.keys.insert_full(key.clone()).0,
        }
    }

    fn key(&self, id: KeyId) -> Option<Key> {
        self.keys.get_index(id).cloned()
    }

    /// Record that `key` changed at `seq` from document `old` to `new` (called for every
    /// version, in seq order per key).
    pub fn on_version(&mut self, key: &Key, old: Option<&Value>, new: Option<&Value>, seq: u64) {
        let before = indexed(old, &self.path);
        let after = indexed(new, &self.path);
        self.on_values(key, before, after, seq);
    }

    /// [`FieldIndex::on_version`] given the values the old and the new document hold at the
    /// path.
    pub fn on_values(
        &mut self,
        key: &Key,
        before: Option<IndexValue>,
        after: Option<IndexValue>,
        seq: u64,
    ) {
        if before == after {
            // Same value (or none): the open range goes on.
            return;
        }
        let id = self.id(key);
        self.on_values_of(id, before, after, seq);
    }

    /// [`FieldIndex::on_values`] for the key numbered `id` (see [`FieldIndex::id`]).
    fn on_values_of(
        &mut self,
        id: KeyId,
        before: Option<IndexValue>,
        after: Option<IndexValue>,
        seq: u64,
    ) {
        if before == after {
            return;
        }
        if let Some(value) = before
            && let Some(from) = self.take_live(id, &value)
        {
            self.push_closed(id, value, from, seq);
        }
        if let Some(value) = after {
            self.put_live(id, value, seq);
        }
    }

    /// Take `id`'s open range of `value` out of the live set (the open's replay keeps it with
    /// the row while it replays, see `replay.rs`): its start, if it had one.
    pub fn take_live(&mut self, id: KeyId, value: &IndexValue) -> Option<u64> {
        let keys = self.live.get_mut(value)?;
        let from = keys.remove(&id);
        if keys.is_empty() {
            self.live.remove(value);
        }
        from
    }

    /// Put `id`'s open range of `value`, from `from`, into the live set.
    pub fn put_live(&mut self, id: KeyId, value: IndexValue, from: u64) {
        self.live.entry(value).or_default().insert(id, from);
    }

    /// Record that `id` held `value` in `[from, to)`.
    pub fn push_closed(&mut self, id: KeyId, value: IndexValue, from: u64, to: u64) {
        self.closed.entry(value).or_default().push(Closed { key: id, from, to });
        self.closed_until = self.closed_until.max(to);
    }

    /// Give back the spare capacity of the lists of ended ranges (they grow by doubling).
    pub fn shrink_to_fit(&mut self) {
        self.closed.values_mut().for_each(Vec::shrink_to_fit);
    }

    /// The keys whose document held `value` at `seq`, in key order, possibly with extra keys
    /// (a table dropped and re-created keeps its old ranges open): readers re-check each
    /// against the document they read.
    pub fn lookup(&self, value: &IndexValue, seq: u64) -> Vec<Key> {
        let mut out: Vec<Key> = Vec::new();
        if let Some(keys) = self.live.get(value) {
            out.extend(
                keys.iter().filter(|&(_, &from)| from <= seq).filter_map(|(&id, _)| self.key(id)),
            );
        }
        if seq < self.closed_until
            && let Some(ranges) = self.closed.get(value)
        {
            let live = out.len();
            out.extend(
                ranges
                    .iter()
                    .filter(|r| r.from <= seq && seq < r.to)
                    .filter_map(|r| self.key(r.key)),
            );
            if out.len() > live {
                // A key may hold the value in several ranges (one of them open): keep it once.
                out.sort_unstable();
                out.dedup();
                return out;
            }
        }
        out.sort_unstable();
        out
    }
}

/// A dotted field name as a path.
pub(crate) fn split_path(field: &str) -> Vec<String> {
    field.split('.').map(str::to_owned).collect()
}

/// The field paths a schema's declared indexes cover, each once: the fields of every
/// `INDEX(...)` and every unique field.
pub(crate) fn declared_paths(schema: &TableSchema) -> Vec<Vec<String>> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    for fields in
        schema.indexes.iter().map(Vec::as_slice).chain(std::iter::once(schema.unique.as_slice()))
    {
        for field in fields {
            let path = split_path(field);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

/// Bring `indexes` in line with `schema`: keep the ones still declared, build the new ones
/// from every version so far, drop the rest.
pub(crate) fn sync(
    indexes: &mut Vec<FieldIndex>,
    schema: &TableSchema,
    rows: &BTreeMap<Key, Chain>,
) -> Result<()> {
    let wanted = declared_paths(schema);
    indexes.retain(|i| wanted.contains(&i.path));
    for path in wanted {
        if indexes.iter().any(|i| i.path == path) {
            continue;
        }
        indexes.push(build(path, rows)?);
    }
    Ok(())
}

/// The index of `path` built from every version of `rows`.
pub(crate) fn build(path: Vec<String>, rows: &BTreeMap<Key, Chain>) -> Result<FieldIndex> {
    let mut index = FieldIndex::new(path);
    for (key, chain) in rows {
        let mut previous: Option<Arc<Value>> = None;
        chain.walk(|version, doc| {
            index.on_version(key, previous.as_deref(), doc.map(|d| &**d), version.seq);
            previous = doc.cloned();
            Ok(())
        })?;
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(j: serde_json::Value) -> Option<Value> {
        Some(j.into())
    }

    #[test]
    fn ranges_answer_every_seq() {
        let mut index = FieldIndex::new(vec!["status".into()]);
        let k = Key::from("k");
        let paid = IndexValue::Str("paid".into());
        let new = IndexValue::Str("new".into());
        index.on_version(&k, None, doc(serde_json::json!({"status": "new"})).as_ref(), 2);
        let d2 = doc(serde_json::json!({"status": "new"}));
        let d5 = doc(serde_json::json!({"status": "paid"}));
        index.on_version(&k, d2.as_ref(), d5.as_ref(), 5);
        index.on_version(&k, d5.as_ref(), None, 9);
        assert!(index.lookup(&new, 1).is_empty());
        assert_eq!(index.lookup(&new, 2), vec![k.clone()]);
        assert_eq!(index.lookup(&new, 4), vec![k.clone()]);
        assert!(index.lookup(&new, 5).is_empty());
        assert_eq!(index.lookup(&paid, 8), vec![k.clone()]);
        assert!(index.lookup(&paid, 9).is_empty());
    }

    #[test]
    fn numbers_key_by_value() {
        assert_eq!(IndexValue::of(&Value::Float(3.0)), Some(IndexValue::Int(3)));
        assert_eq!(IndexValue::of(&Value::Float(-0.0)), Some(IndexValue::Int(0)));
        assert_ne!(IndexValue::of(&Value::Float(3.5)), Some(IndexValue::Int(3)));
        assert_eq!(IndexValue::of(&Value::Null), None);
    }
}
