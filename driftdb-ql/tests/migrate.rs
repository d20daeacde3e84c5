//! Versioned migrations: applied in order, each atomically with its record; changed, missing
//! or out-of-order files stop `apply`; a failing migration applies nothing.

use std::path::Path;

use driftdb_core::{AsOf, Database, Key};
use driftdb_ql::migrate::{self, MIGRATIONS_TABLE};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join("pending")).unwrap();
    std::fs::write(dir.join("pending").join(name), text).unwrap();
}

#[test]
fn migrations_apply_in_order_once_and_record_history() {
    let db_dir = tempfile::tempdir().unwrap();
    let mig = tempfile::tempdir().unwrap();
    let db = Database::open(db_dir.path()).unwrap();
    write(
        mig.path(),
        "0002_add_priority.driftql",
        "ALTER TABLE orders ADD COLUMN priority DEFAULT 'normal';\n",
    );
    write(
        mig.path(),
        "0001_create_orders.driftql",
        "-- the first table\nCREATE TABLE orders (pk=id, INDEX(status));\nINSERT INTO orders {\"id\": \"o1\", \"status\": \"new\"};\n",
    );
    let status = migrate::status(&db, mig.path()).unwrap();
    assert!(status.applied.is_empty());
    assert_eq!(
        status.pending.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["0001_create_orders", "0002_add_priority"]
    );

    let applied = migrate::apply(&db, mig.path()).unwrap();
    assert_eq!(applied.len(), 2);
    // Each migration is one transaction: CREATE + INSERT + its record share one seq.
    assert_eq!(applied[0].seq + 1, applied[1].seq);
    let row = db.get("orders", &Key::from("o1")).unwrap().unwrap();
    assert_eq!(row.get("status").and_then(|v| v.as_str()), Some("new"));
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mig.path().join("history.json")).unwrap())
            .unwrap();
    assert_eq!(history["applied"].as_array().unwrap().len(), 2);
    assert_eq!(history["applied"][0]["id"], "0001_create_orders");
    assert_eq!(history["applied"][0]["checksum"].as_str().unwrap().len(), 64);

    // Nothing pending: applying again does nothing.
    assert!(migrate::apply(&db, mig.path()).unwrap().is_empty());

    // A changed applied file stops everything.
    write(mig.path(), "0001_create_orders.driftql", "CREATE TABLE orders (pk=id);\n");
    write(mig.path(), "0003_more.driftql", "CREATE TABLE more (pk=id);\n");
    let status = migrate::status(&db, mig.path()).unwrap();
    assert_eq!(status.problems.len(), 1, "{:?}", status.problems);
    assert!(status.problems[0].contains("0001_create_orders has changed"));
    let err = migrate::apply(&db, mig.path()).unwrap_err();
    assert!(err.to_string().contains("has changed"), "{err}");
    assert!(!db.tables().contains(&"more".to_owned()));
}

#[test]
fn a_failing_migration_applies_nothing_and_names_its_line() {
    let db_dir = tempfile::tempdir().unwrap();
    let mig = tempfile::tempdir().unwrap();
    let db = Database::open(db_dir.path()).unwrap();
    write(mig.path(), "0001_ok.driftql", "CREATE TABLE t (pk=id);");
    write(
        mig.path(),
        "0002_bad.driftql",
        "INSERT INTO t {\"id\": 1};\nINSERT INTO t {\"id\": 1};\n",
    );
    let err = migrate::apply(&db, mig.path()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("0002_bad.driftql failed at line 2"), "{message}");
    assert!(message.contains("duplicate key"), "{message}");
    // 0001 is applied; nothing of 0002 is.
    let snap = db.read(AsOf::Now).unwrap();
    assert!(snap.scan("t", |_| true).unwrap().is_empty());
    let recorded = snap.scan(MIGRATIONS_TABLE, |_| true).unwrap();
    assert_eq!(recorded.len(), 1);

    // Transaction control inside a migration is refused.
    write(mig.path(), "0002_bad.driftql", "BEGIN;\nINSERT INTO t {\"id\": 1};\nCOMMIT;\n");
    let err = migrate::apply(&db, mig.path()).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");

    // Out of order and badly named files are errors.
    write(mig.path(), "0002_bad.driftql", "INSERT INTO t {\"id\": 1};");
    migrate::apply(&db, mig.path()).unwrap();
    write(mig.path(), "0001_late.driftql", "CREATE TABLE late (pk=id);");
    assert!(migrate::apply(&db, mig.path()).unwrap_err().to_string().contains("numbered below"));
    std::fs::remove_file(mig.path().join("pending/0001_late.driftql")).unwrap();
    write(mig.path(), "7_x.driftql", "");
    assert!(migrate::apply(&db, mig.path()).unwrap_err().to_string().contains("NNNN_name"));
}
