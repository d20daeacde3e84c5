//! Long version chains: keys patched many times (so their documents are rebuilt from
//! keyframes and patches), soft-deleted and re-inserted, read at every seq through `get`,
//! `history`, `scan` and an index, against a plain model of JSON documents; then the same
//! after reopening (the chains rebuilt by the open's replay) and in an encrypted database.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;

use common::Rng;
use driftdb_core::{AsOf, Database, Key, Options, TableSchema, Value};
use serde_json::{Value as Json, json};

/// RFC 7386, as the engine applies a PATCH.
fn merge(doc: &mut Json, patch: &Json) {
    let Some(fields) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    let target = doc.as_object_mut().unwrap();
    for (name, value) in fields {
        if value.is_null() {
            target.remove(name);
        } else if value.is_object() && target.get(name).is_some_and(Json::is_object) {
            merge(target.get_mut(name).unwrap(), value);
        } else {
            target.insert(name.clone(), value.clone());
        }
    }
}

/// seq → key → live document (the model).
type Model = BTreeMap<u64, BTreeMap<i64, Json>>;

fn write_history(db: &Database, rng: &mut Rng, steps: usize) -> Model {
    let mut model: Model = BTreeMap::new();
    let mut now: BTreeMap<i64, Json> = BTreeMap::new();
    model.insert(db.last_seq(), now.clone());
    for step in 0..steps {
        // Few keys, so each gets a long run of patches.
        let key = rng.below(3) as i64;
        let mut tx = db.begin();
        match (now.get(&key), rng.below(40)) {
            (None, _) => {
                let doc = json!({"id": key, "n": 0, "tag": "t0", "nested": {"a": 1}});
                tx.insert("t", Value::from(doc.clone())).unwrap();
                now.insert(key, doc);
            }
            (Some(_), 0) => {
                tx.soft_delete("t", key).unwrap();
                now.remove(&key);
            }
            (Some(_), r) => {
                let patch = match r % 4 {
                    0 => json!({"n": step, "tag": format!("t{}", step % 5)}),
                    1 => json!({"extra": null, "nested": {"b": step}}),
                    2 => json!({"extra": [step, "x"], "nested": {"a": null}}),
                    _ => json!({"tag": format!("t{}", step % 5)}),
                };
                tx.patch("t", key, Value::from(patch.clone())).unwrap();
                merge(now.get_mut(&key).unwrap(), &patch);
            }
        }
        tx.commit().unwrap();
        model.insert(db.last_seq(), now.clone());
    }
    model
}

fn check(db: &Database, model: &Model, label: &str) {
    for (&seq, docs) in model {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        for key in 0..3i64 {
            let want = docs.get(&key).map(|d| Value::from(d.clone()));
            assert_eq!(snap.get("t", &Key::Int(key)).unwrap(), want, "{label}: key {key} at {seq}");
            let history = snap.history("t", &Key::Int(key)).unwrap();
            let last = history.last().and_then(|h| h.document.clone());
            assert_eq!(last, want, "{label}: history of {key} at {seq}");
        }
        let scanned: Vec<Value> =
            snap.scan("t", |_| true).unwrap().into_iter().map(|r| r.doc).collect();
        let wanted: Vec<Value> = docs.values().map(|d| Value::from(d.clone())).collect();
        assert_eq!(scanned, wanted, "{label}: scan at {seq}");
        for tag in 0..5 {
            let tag = Value::String(format!("t{tag}").into());
            let found = snap.lookup("t", "tag", &tag).unwrap().unwrap();
            let found: Vec<Value> = found.into_iter().map(|r| r.doc).collect();
            let expected: Vec<Value> =
                wanted.iter().filter(|d| d.get("tag") == Some(&tag)).cloned().collect();
            assert_eq!(found, expected, "{label}: lookup tag = {tag} at {seq}");
        }
    }
}

fn run(options: impl Fn() -> Options, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(dir.path(), options()).unwrap();
    let mut schema = TableSchema::new("id");
    schema.indexes.push(vec!["tag".into()]);
    db.create_table("t", schema).unwrap();
    let model = write_history(&db, &mut Rng(seed), 150);
    check(&db, &model, "written");
    drop(db);
    let db = Database::open_with(dir.path(), options()).unwrap();
    check(&db, &model, "reopened");
}

#[test]
fn long_chains_read_back_at_every_seq() {
    for seed in [11, 12, 13] {
        run(Options::default, seed);
    }
}

#[test]
fn long_chains_read_back_at_every_seq_encrypted() {
    let key = || driftdb_core::EncryptionKey::from_hex(&"5e".repeat(32)).unwrap();
    run(|| Options { encryption_key: Some(key()), ..Options::default() }, 14);
}
