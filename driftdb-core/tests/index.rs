//! Secondary indexes answer exactly what a scan answers, at every seq of random histories:
//! with the index declared at creation, declared late (built from history), dropped, and
//! across a table dropped and re-created; also after reopening (rebuilt on open).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::Rng;
use driftdb_core::{AsOf, Database, TableSchema, Value};
use serde_json::json;

fn v(j: serde_json::Value) -> Value {
    j.into()
}

fn check_all_seqs(db: &Database, field: &str, values: &[Value], seed: u64) {
    for seq in 0..=db.last_seq() {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        if snap.schema("t").is_err() {
            continue;
        }
        for value in values {
            let scanned = common::scan_equal(&snap, field, value);
            let Some(found) = snap.lookup("t", field, value).unwrap() else {
                continue;
            };
            assert_eq!(found, scanned, "seed {seed}: {field} = {value} at seq {seq}");
        }
    }
}

fn random_history(db: &Database, rng: &mut Rng, steps: usize) {
    for _ in 0..steps {
        let key = rng.below(10) as i64;
        let status = ["new", "paid", "shipped"][rng.below(3) as usize];
        let mut tx = db.begin();
        let result = match rng.below(5) {
            0 | 1 => tx.insert("t", v(json!({"id": key, "status": status, "c": {"n": key % 3}}))),
            2 => tx.patch("t", key, v(json!({"status": status}))).map(|_| key.into()),
            3 => {
                tx.patch("t", key, v(json!({"status": null, "c": {"n": 2.0}}))).map(|_| key.into())
            }
            _ => tx.soft_delete("t", key).map(|_| key.into()),
        };
        if result.is_ok() {
            tx.commit().unwrap();
        }
    }
}

#[test]
fn index_lookups_equal_scans_at_every_seq() {
    let values: Vec<Value> = ["new", "paid", "shipped", "none"]
        .iter()
        .map(|s| Value::String((*s).into()))
        .chain([Value::Int(2), Value::Float(2.0), Value::Null])
        .collect();
    for seed in 1..7u64 {
        let mut rng = Rng(seed * 7919);
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let mut schema = TableSchema::new("id");
        schema.indexes.push(vec!["status".into()]);
        db.create_table("t", schema.clone()).unwrap();
        random_history(&db, &mut rng, 40);
        check_all_seqs(&db, "status", &values, seed);

        // Declared late: built from the whole history, it answers old seqs too.
        let mut tx = db.begin();
        schema.indexes.push(vec!["c.n".into()]);
        tx.alter_table("t", schema.clone()).unwrap();
        tx.commit().unwrap();
        random_history(&db, &mut rng, 20);
        check_all_seqs(&db, "c.n", &values, seed);

        // Dropped and re-created: the new incarnation starts empty.
        db.drop_table("t").unwrap();
        db.create_table("t", schema.clone()).unwrap();
        random_history(&db, &mut rng, 20);
        check_all_seqs(&db, "status", &values, seed);
        check_all_seqs(&db, "c.n", &values, seed);

        // Rebuilt on open.
        drop(db);
        let db = Database::open(dir.path()).unwrap();
        check_all_seqs(&db, "status", &values, seed);
        check_all_seqs(&db, "c.n", &values, seed);

        // An index no longer declared is not used.
        let mut tx = db.begin();
        schema.indexes.clear();
        tx.alter_table("t", schema.clone()).unwrap();
        tx.commit().unwrap();
        let snap = db.read(AsOf::Now).unwrap();
        assert!(snap.lookup("t", "status", &values[0]).unwrap().is_none());
    }
}
