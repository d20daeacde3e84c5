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
//! Index structures are derived: they live in memory and are rebuilt from the version chains
//! when the database opens. Numbers are keyed by value, so `1` and `1.0` are the same key, as
//! `=` treats them; missing and null values are not indexed (`= NULL` is never true).

use std::collections::BTreeMap;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::schema::TableSchema;
use crate::state::Version;
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
            Value::String(s) => IndexValue::Str(s.clone()),
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
pub(crate) fn indexed(doc: Option<&Arc<Value>>, path: &[String]) -> Option<IndexValue> {
    doc.and_then(|d| at_path(d, path)).and_then(IndexValue::of)
}

/// Seq ranges `[from, to)`; most keys hold a value once, so one is stored inline.
type Ranges = SmallVec<[(u64, u64); 1]>;

/// The index of one field path.
#[derive(Debug, Clone)]
pub(crate) struct FieldIndex {
    /// The field path, split at dots.
    pub path: Vec<String>,
    /// `(value, key)` → the seq ranges `[from, to)` in which the key held the value
    /// (`to == u64::MAX` while it still does).
    entries: BTreeMap<(IndexValue, Key), Ranges>,
}

impl FieldIndex {
    fn new(path: Vec<String>) -> Self {
        FieldIndex { path, entries: BTreeMap::new() }
    }

    /// Record that `key` changed at `seq` from document `old` to `new`.
    pub fn on_version(
        &mut self,
        key: &Key,
        old: Option<&Arc<Value>>,
        new: Option<&Arc<Value>>,
        seq: u64,
    ) {
        let before = indexed(old, &self.path);
        let after = indexed(new, &self.path);
        if before == after {
            return;
        }
        if let Some(value) = before
            && let Some(ranges) = self.entries.get_mut(&(value, key.clone()))
            && let Some(last) = ranges.last_mut()
            && last.1 == u64::MAX
        {
            last.1 = seq;
        }
        if let Some(value) = after {
            self.entries.entry((value, key.clone())).or_default().push((seq, u64::MAX));
        }
    }

    /// The keys whose document held `value` at `seq` (possibly with extra keys; re-check).
    pub fn lookup(&self, value: &IndexValue, seq: u64) -> Vec<Key> {
        let mut keys = Vec::new();
        let start = (value.clone(), Key::Int(i64::MIN));
        for ((v, key), ranges) in self.entries.range(start..) {
            if v != value {
                break;
            }
            if ranges.iter().any(|(from, to)| *from <= seq && seq < *to) {
                keys.push(key.clone());
            }
        }
        keys
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
    rows: &BTreeMap<Key, SmallVec<[Version; 1]>>,
) {
    let wanted = declared_paths(schema);
    indexes.retain(|i| wanted.contains(&i.path));
    for path in wanted {
        if indexes.iter().any(|i| i.path == path) {
            continue;
        }
        let mut index = FieldIndex::new(path);
        for (key, versions) in rows {
            let mut previous: Option<&Arc<Value>> = None;
            for version in versions {
                index.on_version(key, previous, version.doc.as_ref(), version.seq);
                previous = version.doc.as_ref();
            }
        }
        indexes.push(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(j: serde_json::Value) -> Option<Arc<Value>> {
        Some(Arc::new(j.into()))
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
