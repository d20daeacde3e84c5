//! The open's replay at scale: a history large enough that its runs of data transactions are
//! applied in several batches, each split among threads by key (see `replay.rs`), with schema
//! transactions between the runs (an index declared late, a table dropped and re-created), two
//! tables, patches that move keys between index values and patches that do not, soft deletes
//! and re-inserts. Everything the database answers is read before closing and compared with
//! what the reopened database answers.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::Rng;
use driftdb_core::{AsOf, Database, HistoryEntry, Key, Row, TableSchema, Value};
use serde_json::json;

/// Keys of table `t`; more than one batch of the replay holds (65,536 events).
const KEYS: i64 = 30_000;

fn doc(key: i64, bucket: u64, name: &str) -> Value {
    Value::from(json!({"id": key, "bucket": bucket, "name": name, "nested": {"n": key % 7}}))
}

/// A run of data transactions over `t` (and a little of `u`): every live key patched, some
/// moved to another bucket, some soft-deleted, deleted ones inserted again.
fn churn(db: &Database, rng: &mut Rng, live: &mut [bool], rounds: usize) {
    for round in 0..rounds {
        let mut tx = db.begin();
        for (key, is_live) in live.iter_mut().enumerate() {
            let key = key as i64;
            let r = rng.below(100);
            if !*is_live {
                if r < 50 {
                    tx.insert("t", doc(key, rng.below(50), "again")).unwrap();
                    *is_live = true;
                }
                continue;
            }
            match r {
                0..=4 => {
                    tx.soft_delete("t", key).unwrap();
                    *is_live = false;
                }
                5..=44 => {
                    tx.patch("t", key, Value::from(json!({"bucket": rng.below(50)}))).unwrap();
                }
                45..=49 => {
                    let patch = json!({"name": format!("n{}", rng.below(4)), "nested": null});
                    tx.patch("t", key, Value::from(patch)).unwrap();
                }
                _ => {
                    tx.patch("t", key, Value::from(json!({"amount": round}))).unwrap();
                }
            }
        }
        let u_key = format!("u-{}", rng.next());
        tx.insert("u", Value::from(json!({"id": u_key, "round": round}))).unwrap();
        tx.commit().unwrap();
    }
}

/// What the database answers: per seq, every index lookup and the documents of sampled keys;
/// full scans at a few seqs; the history of sampled keys.
#[derive(Debug, PartialEq)]
struct Seen {
    lookups: Vec<(u64, String, Option<Vec<Row>>)>,
    gets: Vec<(u64, i64, Option<Value>)>,
    scans: Vec<(u64, String, Vec<Row>)>,
    histories: Vec<(i64, Vec<HistoryEntry>)>,
}

fn seen(db: &Database, samples: &[i64]) -> Seen {
    let last = db.last_seq();
    let mut out = Seen { lookups: vec![], gets: vec![], scans: vec![], histories: vec![] };
    for seq in 1..=last {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        if snap.schema("t").is_err() {
            continue;
        }
        for bucket in [0u64, 7, 49] {
            let found = snap.lookup("t", "bucket", &Value::from(json!(bucket))).unwrap();
            out.lookups.push((seq, format!("bucket={bucket}"), found));
        }
        for name in ["again", "n1"] {
            let found = snap.lookup("t", "name", &Value::from(json!(name))).unwrap();
            out.lookups.push((seq, format!("name={name}"), found));
        }
        for &key in samples {
            out.gets.push((seq, key, snap.get("t", &Key::from(key)).unwrap()));
        }
        if seq % 9 == 0 || seq == last {
            for table in ["t", "u"] {
                if let Ok(rows) = snap.scan(table, |_| true) {
                    // A large scan decodes on several threads: each row is its key's document,
                    // in key order.
                    for row in &rows {
                        let id = row.doc.get("id").and_then(Key::from_value);
                        assert_eq!(id.as_ref(), Some(&row.key), "scan of {table} at {seq}");
                    }
                    assert!(rows.windows(2).all(|w| w[0].key < w[1].key));
                    out.scans.push((seq, table.to_owned(), rows));
                }
            }
        }
    }
    let snap = db.read(AsOf::Now).unwrap();
    for &key in samples {
        out.histories.push((key, snap.history("t", &Key::from(key)).unwrap()));
    }
    out
}

#[test]
fn a_large_history_reads_the_same_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut schema = TableSchema::new("id");
    schema.indexes.push(vec!["bucket".into()]);
    db.create_table("t", schema.clone()).unwrap();
    db.create_table("u", TableSchema::new("id")).unwrap();
    let mut rng = Rng(0x00c0_ffee);
    for first in (0..KEYS).step_by(10_000) {
        let mut tx = db.begin();
        for key in first..(first + 10_000).min(KEYS) {
            tx.insert("t", doc(key, rng.below(50), "first")).unwrap();
        }
        tx.commit().unwrap();
    }
    let mut live = vec![true; KEYS as usize];
    churn(&db, &mut rng, &mut live, 4);

    // A schema transaction between two runs: the rows go back to their table, and the next
    // run takes them out again (with their open index ranges).
    let mut tx = db.begin();
    schema.indexes.push(vec!["name".into()]);
    tx.alter_table("t", schema.clone()).unwrap();
    tx.commit().unwrap();
    churn(&db, &mut rng, &mut live, 3);
    db.drop_table("u").unwrap();
    db.create_table("u", TableSchema::new("id")).unwrap();
    churn(&db, &mut rng, &mut live, 2);

    let samples: Vec<i64> = (0..40).map(|_| rng.below(KEYS as u64) as i64).collect();
    let before = seen(&db, &samples);
    assert!(before.lookups.iter().any(|(_, _, rows)| rows.as_ref().is_some_and(|r| r.len() > 100)));
    db.close().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let after = seen(&db, &samples);
    assert_eq!(before.histories, after.histories);
    assert_eq!(before.gets, after.gets);
    assert_eq!(before.scans, after.scans);
    for (b, a) in before.lookups.iter().zip(&after.lookups) {
        assert_eq!(b, a, "lookup {} at seq {}", b.1, b.0);
    }
    assert_eq!(before.lookups.len(), after.lookups.len());
}
