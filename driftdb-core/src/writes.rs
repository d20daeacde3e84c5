//! A transaction's writes: every event it has checked, in order, with the change each makes,
//! and for each table the position of the last event on each key it wrote.
//!
//! A key's entry holds no copy of the key and no document: only the key's hash (from which its
//! slot is found again, so growing the table reads no key) and the position of its last event.
//! The transaction's version of the key is read from that event: an INSERT's encoded document,
//! a PATCH's document after it, or nothing after a SOFT_DELETE. A bulk load of n rows keeps
//! n × 16 bytes here (in a table that grows by doubling), not a key, a shared pointer and a
//! map entry per row, and frees nothing per row when the transaction ends.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::state::Change;
use crate::storage::frame::EventType;
use crate::value::{Key, Value};

/// A transaction's version of a key it wrote.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Written<'a> {
    /// Soft-deleted.
    Deleted,
    /// A patched document.
    Doc(&'a Arc<Value>),
    /// An inserted document, kept encoded (its event's `[key, body]` encoding) so that a
    /// transaction of many inserts lets each decoded document go as soon as it is checked.
    Encoded(&'a [u8]),
}

impl Written<'_> {
    /// The document, decoded when kept encoded; `None` when deleted.
    pub fn doc(self) -> Result<Option<Arc<Value>>> {
        Ok(match self {
            Written::Deleted => None,
            Written::Doc(doc) => Some(doc.clone()),
            Written::Encoded(encoded) => {
                Some(Arc::new(crate::chain::decode_bytes(crate::event::body_of(encoded)?)?))
            }
        })
    }
}

/// Hashes a `u64` that is already a hash (a key's, from [`Positions::hasher`]) to itself.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Where the last event on each key of one table is, in the transaction's event list.
#[derive(Debug, Default)]
struct Positions {
    /// Keys are hashed with a seed of their own per table and transaction, so that no one can
    /// choose keys that collide.
    hasher: foldhash::fast::RandomState,
    /// By key hash: the position of the last event on the first key seen with that hash.
    by_hash: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    /// The positions of the keys whose hash another key took first (practically never).
    collided: Vec<u32>,
    /// Tests: give every key the same hash.
    #[cfg(test)]
    collide: bool,
}

impl Positions {
    fn hash(&self, key: &Key) -> u64 {
        #[cfg(test)]
        if self.collide {
            return 0;
        }
        self.hasher.hash_one(key)
    }
}

/// Every event a transaction has checked, with its change, and where each key's last one is.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    pub events: Vec<Event>,
    /// The change each event makes, as validated when it was added.
    pub changes: Vec<Change>,
    tables: foldhash::HashMap<String, Positions>,
}

fn position(at: usize) -> Result<u32> {
    u32::try_from(at).map_err(|_| Error::invalid("a transaction holds at most 2^32 events"))
}

impl Writes {
    /// The position of the last event on `key` of `table`, if the transaction wrote it (since
    /// the table was last created in it).
    fn position_of(&self, table: &str, key: &Key) -> Option<usize> {
        let positions = self.tables.get(table)?;
        let is_key =
            |&at: &u32| self.events.get(at as usize).and_then(|e| e.key.as_ref()) == Some(key);
        let first = *positions.by_hash.get(&positions.hash(key))?;
        if is_key(&first) {
            return Some(first as usize);
        }
        positions.collided.iter().copied().find(is_key).map(|at| at as usize)
    }

    /// The transaction's version of `key` of `table`, if it wrote it.
    pub fn written(&self, table: &str, key: &Key) -> Option<Written<'_>> {
        self.position_of(table, key).and_then(|at| self.written_at(at))
    }

    /// Whether the transaction wrote `key` of `table`.
    pub fn wrote(&self, table: &str, key: &Key) -> bool {
        self.position_of(table, key).is_some()
    }

    /// What the event at `at` left of its key.
    fn written_at(&self, at: usize) -> Option<Written<'_>> {
        let event = self.events.get(at)?;
        match event.kind {
            EventType::Insert => Some(Written::Encoded(&event.encoded)),
            EventType::Patch => self.changes.get(at)?.doc.as_ref().map(Written::Doc),
            _ => Some(Written::Deleted),
        }
    }

    /// Every key of `table` the transaction wrote, with its version (in no particular order).
    pub fn rows<'a>(&'a self, table: &str) -> impl Iterator<Item = (&'a Key, Written<'a>)> {
        let positions = self.tables.get(table);
        let all = positions.into_iter().flat_map(|p| p.by_hash.values().chain(&p.collided));
        all.filter_map(|&at| {
            let key = self.events.get(at as usize)?.key.as_ref()?;
            Some((key, self.written_at(at as usize)?))
        })
    }

    /// The table was (re)created in the transaction: its earlier writes are gone.
    pub fn forget(&mut self, table: &str) {
        self.tables.remove(table);
    }

    /// Record a checked event and its change; a data event becomes its key's last.
    pub fn record(&mut self, event: Event, change: Change) -> Result<()> {
        let at = position(self.events.len())?;
        if let Some(key) = &event.key {
            let known = self.position_of(&event.table, key);
            let positions = match self.tables.get_mut(&*event.table) {
                Some(positions) => positions,
                None => self.tables.entry(event.table.to_string()).or_default(),
            };
            let hash = positions.hash(key);
            match known {
                Some(before) => {
                    let before = position(before)?;
                    if let Some(slot) = positions.by_hash.get_mut(&hash).filter(|s| **s == before) {
                        *slot = at;
                    } else if let Some(slot) = positions.collided.iter_mut().find(|s| **s == before)
                    {
                        *slot = at;
                    }
                }
                None => {
                    if let Some(first) = positions.by_hash.get(&hash) {
                        debug_assert_ne!(*first, at);
                        positions.collided.push(at);
                    } else {
                        positions.by_hash.insert(hash, at);
                    }
                }
            }
        }
        self.events.push(event);
        self.changes.push(change);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(writes: &mut Writes, table: &str, key: Key, n: i64) {
        let body = Arc::new(Value::Int(n));
        let event = Event::new(Arc::from(table), EventType::Insert, Some(key), body).unwrap();
        let change = Change { kind: EventType::Insert, doc: None, schema: None };
        writes.record(event, change).unwrap();
    }

    fn doc(writes: &Writes, table: &str, key: &Key) -> Option<i64> {
        let written = writes.written(table, key)?;
        written.doc().unwrap().map(|d| d.as_i64().unwrap())
    }

    /// Keys whose hashes collide are told apart, each key's last write wins, and a table's
    /// writes are forgotten when it is created again.
    #[test]
    fn colliding_hashes_and_rewrites() {
        for collide in [false, true] {
            let mut writes = Writes::default();
            writes.tables.insert("t".into(), Positions { collide, ..Positions::default() });
            for k in 0..50 {
                insert(&mut writes, "t", Key::Int(k), k * 10);
            }
            insert(&mut writes, "t", Key::Int(7), 71);
            insert(&mut writes, "t", Key::Int(0), 1);
            insert(&mut writes, "u", Key::Int(7), 99);
            assert_eq!(doc(&writes, "t", &Key::Int(7)), Some(71));
            assert_eq!(doc(&writes, "t", &Key::Int(0)), Some(1));
            assert_eq!(doc(&writes, "t", &Key::Int(49)), Some(490));
            assert_eq!(doc(&writes, "u", &Key::Int(7)), Some(99));
            assert_eq!(doc(&writes, "t", &Key::Int(50)), None);
            assert_eq!(doc(&writes, "t", &Key::Str("7".into())), None);
            let mut rows: Vec<(Key, i64)> = writes
                .rows("t")
                .map(|(k, w)| (k.clone(), w.doc().unwrap().unwrap().as_i64().unwrap()))
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(rows.len(), 50);
            assert_eq!(rows[7], (Key::Int(7), 71));
            assert_eq!(rows[0], (Key::Int(0), 1));
            assert_eq!(
                writes.tables.get("t").unwrap().collided.len(),
                if collide { 49 } else { 0 }
            );
            writes.forget("t");
            assert!(!writes.wrote("t", &Key::Int(1)));
            assert!(writes.wrote("u", &Key::Int(7)));
            assert_eq!(writes.events.len(), writes.changes.len());
        }
    }
}
