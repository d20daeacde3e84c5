//! A transaction's reads see its own writes: scans, the table list and schemas, as well as
//! point reads; and table statistics count versions at a seq.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use driftdb_core::{AsOf, Database, Key, TableSchema, Value};
use serde_json::json;

fn v(j: serde_json::Value) -> Value {
    j.into()
}

#[test]
fn scans_tables_and_schemas_see_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    let mut tx = db.begin();
    tx.insert("t", v(json!({"id": 1, "a": 1}))).unwrap();
    tx.insert("t", v(json!({"id": 2, "a": 2}))).unwrap();
    tx.commit().unwrap();

    let mut tx = db.begin();
    tx.insert("t", v(json!({"id": 3, "a": 3}))).unwrap();
    tx.patch("t", 1, v(json!({"a": 10}))).unwrap();
    tx.soft_delete("t", 2).unwrap();
    tx.create_table("u", TableSchema::new("k")).unwrap();
    let rows = tx.scan("t", |_| true).unwrap();
    let seen: Vec<(Key, Option<&Value>)> =
        rows.iter().map(|r| (r.key.clone(), r.doc.get("a"))).collect();
    assert_eq!(
        seen,
        vec![(Key::Int(1), Some(&Value::Int(10))), (Key::Int(3), Some(&Value::Int(3)))]
    );
    assert_eq!(tx.scan("t", |d| d.get("a") == Some(&Value::Int(3))).unwrap().len(), 1);
    assert_eq!(tx.tables(), vec!["t".to_owned(), "u".to_owned()]);
    assert_eq!(tx.schema("u").unwrap().primary_key, "k");
    // Nobody else sees any of it.
    assert_eq!(db.tables(), vec!["t".to_owned()]);
    assert_eq!(db.read(AsOf::Now).unwrap().scan("t", |_| true).unwrap().len(), 2);

    // A table dropped and re-created in the transaction starts empty.
    tx.drop_table("t").unwrap();
    assert!(tx.scan("t", |_| true).is_err());
    tx.create_table("t", TableSchema::new("id")).unwrap();
    assert!(tx.scan("t", |_| true).unwrap().is_empty());
    tx.rollback();
}

#[test]
fn stats_count_versions_at_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    for i in 0..3 {
        let mut tx = db.begin();
        tx.insert("t", v(json!({"id": i}))).unwrap();
        tx.commit().unwrap();
    }
    let mut tx = db.begin();
    tx.patch("t", 0, v(json!({"x": 1}))).unwrap();
    tx.soft_delete("t", 1).unwrap();
    let after = tx.commit().unwrap();
    let now = db.read(AsOf::Now).unwrap().stats("t").unwrap();
    assert_eq!((now.keys, now.live_rows, now.versions, now.max_versions_per_key), (3, 2, 5, 2));
    let before = db.read(AsOf::Seq(after.seq - 1)).unwrap().stats("t").unwrap();
    assert_eq!((before.keys, before.live_rows, before.versions), (3, 3, 3));
}

#[test]
fn a_bare_relative_directory_name_opens() {
    let parent = tempfile::tempdir().unwrap();
    let name = "bare_relative_db";
    // Open by a bare relative name, as a user types it, then change directory: the handle
    // must go on writing where it opened.
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(parent.path()).unwrap();
    let opened = Database::open(name);
    std::env::set_current_dir(previous).unwrap();
    let db = opened.unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    drop(db);
    assert!(parent.path().join(name).join("tables").join("t").is_dir());
    let db = Database::open(parent.path().join(name)).unwrap();
    assert_eq!(db.tables(), vec!["t".to_owned()]);
}
