//! The history both engines store for the time-travel benchmarks: a deterministic list of
//! transactions, the same for DriftDB and SQLite, described by a [`Shape`].
//!
//! Layout of a history of `events` events (seqs are DriftDB's transaction numbers, and SQLite's
//! versions table stores the same numbers):
//!
//! - seq 1: `CREATE TABLE docs` (pk `id`, `INDEX(bucket)`);
//! - then `insert_txns` transactions of up to [`INSERT_BATCH`] INSERTs: keys `k0` … `k<keys-1>`,
//!   one document each (about 110 bytes of JSON, see [`document`]);
//! - then `hot_versions - 1` patch transactions. Each one PATCHes the hot key `k0` once (so `k0`
//!   ends with `hot_versions` versions, each at its own seq) and about the same number of other
//!   keys, chosen by a stride over `k1` … `k<keys-1>` so that no key appears twice in one
//!   transaction. A patch sets `amount` and moves the key to another `bucket`.
//!
//! With 1,000,000 events: 100,000 keys, 1,000 buckets (about 100 live rows each), the hot key
//! has 10,000 versions, the other keys about 9 each, and the history is 10,010 seqs long.

use serde_json::{Value as Json, json};

/// The table both engines write.
pub const TABLE: &str = "docs";
/// The indexed field.
pub const INDEXED_FIELD: &str = "bucket";
/// INSERTs per insert transaction.
pub const INSERT_BATCH: u64 = 10_000;
/// The most versions the hot key gets (the issue's "a key that has 10,000 versions").
pub const HOT_VERSIONS_MAX: u64 = 10_000;
/// DriftDB writes an automatic snapshot of the table every this many events while the history
/// is built (`Options::snapshot_every_events`), so a streamed scan `AS OF` any seq replays at
/// most this many events after the nearest snapshot. Snapshot files are derived data: the
/// bytes-on-disk figures count them apart.
pub const SNAPSHOT_EVERY_EVENTS: u64 = 10_000;

/// The size and layout of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Events (INSERTs and PATCHes) in the whole history.
    pub events: u64,
    /// Distinct primary keys.
    pub keys: u64,
    /// Versions of the hot key `k0` (its INSERT and its PATCHes).
    pub hot_versions: u64,
}

/// One change of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Insert the document of key number `key`.
    Insert {
        /// The key's number (`k<key>`).
        key: u64,
        /// The whole document.
        doc: Json,
    },
    /// Merge `patch` into the document of key number `key`.
    Patch {
        /// The key's number (`k<key>`).
        key: u64,
        /// A JSON merge patch.
        patch: Json,
    },
}

impl Change {
    /// The key's number.
    pub fn key(&self) -> u64 {
        match self {
            Change::Insert { key, .. } | Change::Patch { key, .. } => *key,
        }
    }
}

/// The primary key of key number `i`.
pub fn key_name(i: u64) -> String {
    format!("k{i}")
}

/// The document inserted for key number `i`, e.g.
/// `{"id":"k42","name":"customer-000042","amount":42,"bucket":42,"active":true,"tags":[…]}`.
pub fn document(i: u64, buckets: u64) -> Json {
    json!({
        "id": key_name(i),
        "name": format!("customer-{i:06}"),
        "amount": i,
        "bucket": i % buckets,
        "active": i.is_multiple_of(2),
        "tags": ["red", "green", "blue"],
    })
}

/// A well-mixed 64-bit hash (splitmix64), so buckets move about without a pattern.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// RFC 7386 JSON merge patch, as DriftDB applies it: a `null` removes the field, a nested map
/// merges, anything else replaces.
pub fn merge_patch(doc: &mut Json, patch: &Json) {
    let Some(fields) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = json!({});
    }
    if let Some(target) = doc.as_object_mut() {
        for (name, value) in fields {
            if value.is_null() {
                target.remove(name);
            } else {
                merge_patch(target.entry(name.clone()).or_insert(Json::Null), value);
            }
        }
    }
}

impl Shape {
    /// The shape of a history of `events` events: `events / 10` keys and a hot key with
    /// `events / 100` versions (at least 2, at most [`HOT_VERSIONS_MAX`]).
    pub fn new(events: u64) -> Shape {
        let keys = (events / 10).max(10);
        let hot_versions = (events / 100).clamp(2, HOT_VERSIONS_MAX);
        let events = events.max(keys + hot_versions - 1);
        Shape { events, keys, hot_versions }
    }

    /// Distinct values of the indexed field: about 100 live rows per value.
    pub fn buckets(&self) -> u64 {
        (self.keys / 100).max(1)
    }

    /// Transactions that insert the keys.
    pub fn insert_txns(&self) -> u64 {
        self.keys.div_ceil(INSERT_BATCH)
    }

    /// Transactions that patch (one per version of the hot key after its insert).
    pub fn patch_txns(&self) -> u64 {
        self.hot_versions - 1
    }

    /// Data transactions (all but the CREATE TABLE).
    pub fn data_txns(&self) -> u64 {
        self.insert_txns() + self.patch_txns()
    }

    /// The seq of data transaction `t` (0-based): the CREATE TABLE is seq 1.
    pub fn seq_of_txn(&self, t: u64) -> u64 {
        t + 2
    }

    /// The last seq of the history.
    pub fn last_seq(&self) -> u64 {
        1 + self.data_txns()
    }

    /// PATCHes of keys other than the hot key.
    fn other_patches(&self) -> u64 {
        self.events - self.keys - self.patch_txns()
    }

    /// Other-key patches in patch transactions `0..p`.
    fn other_patches_before(&self, p: u64) -> u64 {
        let total = u128::from(self.other_patches());
        let txns = u128::from(self.patch_txns().max(1));
        u64::try_from(total * u128::from(p) / txns).unwrap_or(u64::MAX)
    }

    /// The stride that walks `k1` … `k<keys-1>`: coprime with their count, so any `keys - 1`
    /// consecutive patches touch distinct keys.
    fn stride(&self) -> u64 {
        let n = self.keys - 1;
        let mut s = 7_919 % n.max(2);
        while gcd(s.max(1), n) != 1 {
            s += 1;
        }
        s.max(1)
    }

    /// Events committed by the end of data transaction `t` (0-based).
    pub fn events_through_txn(&self, t: u64) -> u64 {
        if t < self.insert_txns() {
            return ((t + 1) * INSERT_BATCH).min(self.keys);
        }
        let p = t - self.insert_txns() + 1;
        self.keys + p + self.other_patches_before(p)
    }

    /// The first seq by which half of the events are committed: "a seq in the middle".
    pub fn mid_seq(&self) -> u64 {
        let half = self.events / 2;
        let t = (0..self.data_txns())
            .find(|&t| self.events_through_txn(t) >= half)
            .unwrap_or(self.data_txns().saturating_sub(1));
        self.seq_of_txn(t)
    }

    /// An old seq for the hot key: the one of its version number `hot_versions / 10` (10 % into
    /// its history).
    pub fn old_seq(&self) -> u64 {
        let version = (self.hot_versions / 10).max(1);
        // Version 0 is the insert (in the first insert transaction); version v ≥ 1 is patch
        // transaction v - 1.
        self.seq_of_txn(self.insert_txns() + version - 1)
    }

    /// The changes of data transaction `t` (0-based), in the order they are applied.
    pub fn transaction(&self, t: u64) -> Vec<Change> {
        let buckets = self.buckets();
        if t < self.insert_txns() {
            let first = t * INSERT_BATCH;
            let last = ((t + 1) * INSERT_BATCH).min(self.keys);
            return (first..last)
                .map(|i| Change::Insert { key: i, doc: document(i, buckets) })
                .collect();
        }
        let p = t - self.insert_txns();
        let (from, to) = (self.other_patches_before(p), self.other_patches_before(p + 1));
        // The event number makes every patch distinct.
        let base = self.keys + p + from;
        let patch = |g: u64| json!({"amount": g, "bucket": mix(g) % buckets});
        let mut changes = vec![Change::Patch { key: 0, patch: patch(base) }];
        let (stride, others) = (self.stride(), self.keys - 1);
        for j in from..to {
            let key = 1 + (j % others) * stride % others;
            changes.push(Change::Patch { key, patch: patch(base + 1 + j - from) });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_history_has_its_events_and_hot_versions() {
        for events in [1_000, 10_000, 100_000] {
            let shape = Shape::new(events);
            let mut total = 0;
            let mut hot = 0;
            for t in 0..shape.data_txns() {
                let changes = shape.transaction(t);
                let keys: HashSet<u64> = changes.iter().map(Change::key).collect();
                assert_eq!(keys.len(), changes.len(), "a key twice in transaction {t}");
                hot += changes.iter().filter(|c| c.key() == 0).count() as u64;
                total += changes.len() as u64;
                assert_eq!(total, shape.events_through_txn(t));
            }
            assert_eq!(total, shape.events);
            assert_eq!(hot, shape.hot_versions);
            let mid = shape.mid_seq();
            assert!(mid > shape.old_seq() && mid < shape.last_seq(), "{shape:?} mid {mid}");
        }
    }

    #[test]
    fn a_million_events_have_the_issue_shape() {
        let shape = Shape::new(1_000_000);
        assert_eq!((shape.keys, shape.hot_versions, shape.buckets()), (100_000, 10_000, 1_000));
        assert_eq!(shape.last_seq(), 1 + 10 + 9_999);
        let through_mid = shape.events_through_txn(shape.mid_seq() - 2);
        assert!((500_000..500_100).contains(&through_mid), "{through_mid}");
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut doc, &json!({"a": null, "b": {"c": 5}, "e": [1]}));
        assert_eq!(doc, json!({"b": {"c": 5, "d": 3}, "e": [1]}));
    }
}
