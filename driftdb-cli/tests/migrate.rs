//! `driftdb migrate`: applies pending migrations in order, lists them with --status, and
//! refuses to run when an applied file changed.

mod common;

use common::*;

#[test]
fn migrate_applies_lists_and_refuses_changed_files() {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    let migrations = tempfile::tempdir().unwrap();
    let pending = migrations.path().join("pending");
    std::fs::create_dir_all(&pending).unwrap();
    std::fs::write(pending.join("0001_orders.driftql"), "CREATE TABLE orders (pk=id);\n").unwrap();
    std::fs::write(
        pending.join("0002_priority.driftql"),
        "ALTER TABLE orders ADD COLUMN priority DEFAULT 'normal';\n",
    )
    .unwrap();
    let m = migrations.path().to_str().unwrap();

    let out = driftdb(&["migrate", "-d", t.d(), "--dir", m, "--status", "--format", "json"]);
    assert_code(&out, 0);
    let listed = json_out(&out);
    assert_eq!(listed["applied_now"], 0);
    assert_eq!(listed["migrations"][0]["state"], "pending");

    let out = driftdb(&["migrate", "-d", t.d(), "--dir", m, "--format", "json"]);
    assert_code(&out, 0);
    let done = json_out(&out);
    assert_eq!(done["applied_now"], 2);
    assert_eq!(done["migrations"][1]["id"], "0002_priority");
    assert_eq!(done["migrations"][1]["state"], "applied now");
    assert!(migrations.path().join("history.json").exists());

    let out = driftdb(&["sql", "-d", t.d(), "--format", "json", "-e", "DESCRIBE orders"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("priority"), "{}", stdout(&out));

    std::fs::write(pending.join("0001_orders.driftql"), "CREATE TABLE orders (pk=key);\n").unwrap();
    let out = driftdb(&["migrate", "-d", t.d(), "--dir", m, "--format", "json"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("has changed"), "{}", stderr(&out));
}
