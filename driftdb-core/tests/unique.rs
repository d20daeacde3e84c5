//! Unique indexes: writes that would give two live rows one value at a unique field fail with
//! `Error::UniqueViolation`, within a transaction, across concurrent transactions (checked at
//! commit), when the index is declared on duplicate data, and after reopening.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::{Arc, Barrier};

use driftdb_core::{AsOf, Database, Error, IsolationLevel, Key, TableSchema, Value};
use serde_json::json;

fn v(j: serde_json::Value) -> Value {
    j.into()
}

fn users_schema() -> TableSchema {
    let mut schema = TableSchema::new("id");
    schema.unique.push("email".into());
    schema
}

fn open_users(dir: &std::path::Path) -> Database {
    let db = Database::open(dir).unwrap();
    db.create_table("users", users_schema()).unwrap();
    db
}

fn insert(db: &Database, doc: serde_json::Value) -> Result<(), Error> {
    let mut tx = db.begin();
    tx.insert("users", v(doc))?;
    tx.commit().map(|_| ())
}

/// Asserts `err` is a unique violation on `field` refusing `key` because of `existing`.
fn assert_violation(err: &Error, field: &str, key: Key, existing: Key) {
    match err {
        Error::UniqueViolation(v) => {
            assert_eq!((v.table.as_str(), v.field.as_str()), ("users", field), "{err}");
            assert_eq!((&v.key, &v.existing_key), (&key, &existing), "{err}");
            assert!(err.is_user_error() && !err.is_retryable());
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
}

fn live_emails(db: &Database) -> Vec<(Key, Value)> {
    let rows = db.read(AsOf::Now).unwrap().scan("users", |_| true).unwrap();
    rows.into_iter().map(|r| (r.key, r.doc.get("email").cloned().unwrap_or(Value::Null))).collect()
}

#[test]
fn insert_patch_and_upsert_of_a_held_value_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_users(dir.path());
    insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
    insert(&db, json!({"id": "u2", "email": "b@x"})).unwrap();

    let err = insert(&db, json!({"id": "u3", "email": "a@x"})).unwrap_err();
    assert_violation(&err, "email", "u3".into(), "u1".into());
    assert_eq!(
        err.to_string(),
        "unique index on users.email: value \"a@x\" is already held by key \"u1\", so key \"u3\" \
         cannot hold it"
    );

    // PATCH onto a held value fails; PATCH that keeps its own value, or changes another field,
    // does not.
    let mut tx = db.begin();
    let err = tx.patch("users", "u2", v(json!({"email": "a@x"}))).unwrap_err();
    assert_violation(&err, "email", "u2".into(), "u1".into());
    tx.patch("users", "u2", v(json!({"email": "b@x", "name": "bee"}))).unwrap();
    tx.commit().unwrap();

    // An UPSERT is an INSERT of a key that is not live, or a PATCH of one that is.
    let mut tx = db.begin();
    assert!(tx.get("users", &Key::from("u1")).unwrap().is_some());
    let err = tx.patch("users", "u1", v(json!({"email": "b@x"}))).unwrap_err();
    assert_violation(&err, "email", "u1".into(), "u2".into());
    drop(tx);

    // Null and missing values are not constrained.
    insert(&db, json!({"id": "n1", "email": null})).unwrap();
    insert(&db, json!({"id": "n2", "email": null})).unwrap();
    insert(&db, json!({"id": "n3"})).unwrap();
    assert_eq!(live_emails(&db).len(), 5);
}

#[test]
fn numbers_compare_by_value_and_nested_paths_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut schema = TableSchema::new("id");
    schema.unique.push("n".into());
    schema.unique.push("login.name".into());
    db.create_table("users", schema).unwrap();
    insert(&db, json!({"id": 1, "n": 1, "login": {"name": "ann"}})).unwrap();
    let err = insert(&db, json!({"id": 2, "n": 1.0})).unwrap_err();
    assert_violation(&err, "n", Key::Int(2), Key::Int(1));
    assert!(err.to_string().contains("value 1.0"), "{err}");
    let err = insert(&db, json!({"id": 3, "n": 1.5, "login": {"name": "ann"}})).unwrap_err();
    assert_violation(&err, "login.name", Key::Int(3), Key::Int(1));
    insert(&db, json!({"id": 4, "n": 1.5, "login": {"name": "bob"}})).unwrap();
}

#[test]
fn one_transaction_cannot_hold_a_value_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_users(dir.path());
    let mut tx = db.begin();
    tx.insert("users", v(json!({"id": "u1", "email": "a@x"}))).unwrap();
    let err = tx.insert("users", v(json!({"id": "u2", "email": "a@x"}))).unwrap_err();
    assert_violation(&err, "email", "u2".into(), "u1".into());
    // The failed write left nothing behind; the transaction goes on.
    tx.insert("users", v(json!({"id": "u2", "email": "b@x"}))).unwrap();
    // Moving u1 away frees its value inside the transaction; deleting u2 frees b@x.
    tx.patch("users", "u1", v(json!({"email": "c@x"}))).unwrap();
    tx.insert("users", v(json!({"id": "u3", "email": "a@x"}))).unwrap();
    tx.soft_delete("users", "u2").unwrap();
    tx.insert("users", v(json!({"id": "u4", "email": "b@x"}))).unwrap();
    let err = tx.patch("users", "u4", v(json!({"email": "c@x"}))).unwrap_err();
    assert_violation(&err, "email", "u4".into(), "u1".into());
    tx.commit().unwrap();
    assert_eq!(
        live_emails(&db),
        vec![
            ("u1".into(), v(json!("c@x"))),
            ("u3".into(), v(json!("a@x"))),
            ("u4".into(), v(json!("b@x")))
        ]
    );
}

#[test]
fn a_transaction_sees_committed_rows_it_rewrote_by_its_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_users(dir.path());
    insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
    // Swap the value to another key within one transaction.
    let mut tx = db.begin();
    tx.patch("users", "u1", v(json!({"email": "old@x"}))).unwrap();
    tx.insert("users", v(json!({"id": "u2", "email": "a@x"}))).unwrap();
    tx.commit().unwrap();
    assert_eq!(
        live_emails(&db),
        vec![("u1".into(), v(json!("old@x"))), ("u2".into(), v(json!("a@x")))]
    );
}

#[test]
fn concurrent_transactions_at_every_level_the_second_to_commit_fails() {
    for level in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead,
        IsolationLevel::Serializable,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = open_users(dir.path());
        let mut a = db.begin_with(level);
        let mut b = db.begin_with(level);
        a.insert("users", v(json!({"id": "a", "email": "same@x"}))).unwrap();
        b.insert("users", v(json!({"id": "b", "email": "same@x"}))).unwrap();
        b.insert("users", v(json!({"id": "b2", "email": "other@x"}))).unwrap();
        a.commit().unwrap();
        let err = b.commit().unwrap_err();
        assert_violation(&err, "email", "b".into(), "a".into());
        // Nothing of b was applied.
        assert_eq!(live_emails(&db), vec![("a".into(), v(json!("same@x")))], "{level:?}");
    }
}

#[test]
fn concurrent_patch_onto_a_value_is_refused_at_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_users(dir.path());
    insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
    let mut a = db.begin();
    let mut b = db.begin();
    a.insert("users", v(json!({"id": "u2", "email": "new@x"}))).unwrap();
    b.patch("users", "u1", v(json!({"email": "new@x"}))).unwrap();
    a.commit().unwrap();
    let err = b.commit().unwrap_err();
    assert_violation(&err, "email", "u1".into(), "u2".into());
}

#[test]
fn racing_threads_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open_users(dir.path()));
    for round in 0..20 {
        let barrier = Arc::new(Barrier::new(2));
        let email = format!("r{round}@x");
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (db, barrier, email) = (db.clone(), barrier.clone(), email.clone());
                std::thread::spawn(move || {
                    let mut tx = db.begin();
                    tx.insert("users", v(json!({"id": format!("{round}-{t}"), "email": email})))
                        .unwrap();
                    barrier.wait();
                    tx.commit()
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for result in &results {
            if let Err(err) = result {
                assert!(matches!(err, Error::UniqueViolation(_)), "{err}");
            }
        }
        let holders = live_emails(&db).into_iter().filter(|(_, e)| *e == v(json!(email))).count();
        assert_eq!(holders, 1, "round {round}");
    }
}

#[test]
fn declaring_on_duplicate_data_fails_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("users", TableSchema::new("id")).unwrap();
    insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
    insert(&db, json!({"id": "u2", "email": "b@x"})).unwrap();
    insert(&db, json!({"id": "u3", "email": "a@x"})).unwrap();
    let mut tx = db.begin();
    let err = tx.alter_table("users", users_schema()).unwrap_err();
    assert_violation(&err, "email", "u3".into(), "u1".into());
    drop(tx);
    assert!(db.read(AsOf::Now).unwrap().schema("users").unwrap().unique.is_empty());

    // Once the duplicate is gone (soft delete frees it), the declaration goes through, and a
    // duplicate written in the same transaction as the declaration is refused.
    let mut tx = db.begin();
    tx.soft_delete("users", "u3").unwrap();
    tx.alter_table("users", users_schema()).unwrap();
    let err = tx.insert("users", v(json!({"id": "u4", "email": "b@x"}))).unwrap_err();
    assert_violation(&err, "email", "u4".into(), "u2".into());
    tx.commit().unwrap();

    // A concurrent duplicate committed before the declaration fails the declaration at commit.
    let mut alter = db.begin_with(IsolationLevel::ReadCommitted);
    let mut schema = users_schema();
    schema.unique.push("name".into());
    insert(&db, json!({"id": "u5", "email": "e@x", "name": "x"})).unwrap();
    alter.alter_table("users", schema.clone()).unwrap();
    let mut other = db.begin();
    other.insert("users", v(json!({"id": "u6", "email": "f@x", "name": "x"}))).unwrap();
    other.commit().unwrap();
    let err = alter.commit().unwrap_err();
    assert_violation(&err, "name", "u6".into(), "u5".into());
}

#[test]
fn dropping_the_index_allows_duplicates_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_users(dir.path());
    insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
    assert!(insert(&db, json!({"id": "u2", "email": "a@x"})).is_err());
    let mut tx = db.begin();
    tx.alter_table("users", TableSchema::new("id")).unwrap();
    tx.commit().unwrap();
    insert(&db, json!({"id": "u2", "email": "a@x"})).unwrap();
    assert_eq!(live_emails(&db).len(), 2);
    // Re-declaring it now fails: two live rows hold a@x.
    let mut tx = db.begin();
    let err = tx.alter_table("users", users_schema()).unwrap_err();
    assert_violation(&err, "email", "u2".into(), "u1".into());
}

#[test]
fn soft_delete_frees_the_value_and_as_of_reads_are_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_users(dir.path());
    insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
    let before = db.last_seq();
    let mut tx = db.begin();
    tx.soft_delete("users", "u1").unwrap();
    tx.commit().unwrap();
    insert(&db, json!({"id": "u2", "email": "a@x"})).unwrap();
    // Re-inserting u1 with the value now held by u2 fails.
    let err = insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap_err();
    assert_violation(&err, "email", "u1".into(), "u2".into());
    // History still shows u1 holding it, and lookups through the unique index agree.
    let old = db.read(AsOf::Seq(before)).unwrap();
    let found = old.lookup("users", "email", &v(json!("a@x"))).unwrap().unwrap();
    assert_eq!(found.iter().map(|r| r.key.clone()).collect::<Vec<_>>(), vec![Key::from("u1")]);
    let now = db.read(AsOf::Now).unwrap();
    let found = now.lookup("users", "email", &v(json!("a@x"))).unwrap().unwrap();
    assert_eq!(found.iter().map(|r| r.key.clone()).collect::<Vec<_>>(), vec![Key::from("u2")]);
}

#[test]
fn a_recreated_table_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_users(dir.path());
    insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
    let mut tx = db.begin();
    tx.drop_table("users").unwrap();
    tx.create_table("users", users_schema()).unwrap();
    tx.insert("users", v(json!({"id": "u2", "email": "a@x"}))).unwrap();
    let err = tx.insert("users", v(json!({"id": "u3", "email": "a@x"}))).unwrap_err();
    assert_violation(&err, "email", "u3".into(), "u2".into());
    tx.commit().unwrap();
    assert_eq!(live_emails(&db), vec![("u2".into(), v(json!("a@x")))]);
}

#[test]
fn reopen_keeps_enforcing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_users(dir.path());
        insert(&db, json!({"id": "u1", "email": "a@x"})).unwrap();
        db.close().unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.read(AsOf::Now).unwrap().schema("users").unwrap().unique, vec!["email"]);
    let err = insert(&db, json!({"id": "u2", "email": "a@x"})).unwrap_err();
    assert_violation(&err, "email", "u2".into(), "u1".into());
    insert(&db, json!({"id": "u2", "email": "b@x"})).unwrap();
}
