//! End-to-end tests of the `driftdb` binary.

use std::process::Command;

use driftdb_core::{Database, TableSchema};
use serde_json::json;

fn driftdb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_driftdb")).args(args).output().unwrap()
}

#[test]
fn init_creates_a_database_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mydata");
    let dir_s = dir.to_str().unwrap();
    let out = driftdb(&["init", dir_s]);
    assert!(out.status.success(), "{out:?}");
    assert!(dir.join("CHECKPOINT").exists());
    assert!(dir.join("wal").join("wal.log").exists());
    let again = driftdb(&["init", dir_s]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[test]
fn tables_and_drift_read_history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    {
        let db = Database::open(&dir).unwrap();
        db.create_table("users", TableSchema::new("id")).unwrap();
        let mut tx = db.begin();
        tx.insert("users", json!({"id": "user1", "status": "active"}).into()).unwrap();
        tx.commit().unwrap();
        let mut tx = db.begin();
        tx.patch("users", "user1", json!({"status": "gone"}).into()).unwrap();
        tx.commit().unwrap();
        db.drop_table("users").unwrap();
    }
    let d = dir.to_str().unwrap();
    let now = driftdb(&["tables", "-d", d]);
    assert!(now.status.success());
    assert_eq!(String::from_utf8_lossy(&now.stdout), "");
    let then = driftdb(&["tables", "-d", d, "--as-of", "@seq:2"]);
    assert_eq!(String::from_utf8_lossy(&then.stdout), "users\n");
    let future = driftdb(&["tables", "-d", d, "--as-of", "@seq:99"]);
    assert_eq!(future.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&future.stderr).contains("in the future"));

    let drift = driftdb(&["drift", "-d", d, "--table", "users", "--key", "user1"]);
    assert!(drift.status.success(), "{drift:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&drift.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "INSERT");
    assert_eq!(lines[1]["kind"], "PATCH");
    assert_eq!(lines[1]["payload"], json!({"status": "gone"}));
    assert_eq!(lines[1]["document"], json!({"id": "user1", "status": "gone"}));
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn missing_database_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out = driftdb(&["tables", "-d", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a DriftDB database"));
    assert!(!missing.exists(), "reading must not create a database");
}
