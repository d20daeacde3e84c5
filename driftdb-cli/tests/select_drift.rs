//! `select`, `drift`, `tables`, `snapshot`, `compact` and `init` through the built binary.

mod common;

use common::*;
use serde_json::json;

#[test]
fn select_composes_every_option() {
    let t = sample_db();
    let out = driftdb(&["select", "-d", t.d(), "--table", "orders"]);
    assert_code(&out, 0);
    assert_eq!(json_out(&out).as_array().unwrap().len(), 3);
    let out = driftdb(&[
        "select",
        "-d",
        t.d(),
        "--table",
        "orders",
        "--where",
        "total > 10",
        "--fields",
        "id,total,items",
        "--order-by",
        "total DESC",
        "--limit",
        "1",
    ]);
    assert_code(&out, 0);
    assert_eq!(json_out(&out), json!([{"id": 3, "total": 30, "items": [{"sku": "x"}]}]));
    let out = driftdb(&[
        "select",
        "-d",
        t.d(),
        "--table",
        "orders",
        "--fields",
        "id, total * 2 AS double",
        "--where",
        "id = 2",
    ]);
    assert_eq!(json_out(&out), json!([{"id": 2, "double": 50}]));
    // AS OF a seq, a time, and now.
    let out = driftdb(&[
        "select",
        "-d",
        t.d(),
        "--table",
        "orders",
        "--where",
        "id = 2",
        "--as-of",
        "@seq:6",
    ]);
    assert_eq!(json_out(&out)[0]["total"], 20);
    let out = driftdb(&[
        "select",
        "-d",
        t.d(),
        "--table",
        "users",
        "--as-of",
        "@seq:2",
        "--fields",
        "id,status",
        "--order-by",
        "id",
    ]);
    assert_eq!(
        json_out(&out),
        json!([{"id": "user1", "status": "active"}, {"id": "user2", "status": "active"}])
    );
    let out = driftdb(&[
        "select",
        "-d",
        t.d(),
        "--table",
        "users",
        "--as-of",
        "now",
        "--fields",
        "id,status",
    ]);
    assert_eq!(json_out(&out), json!([{"id": "user1", "status": "away"}]));
    let out =
        driftdb(&["select", "-d", t.d(), "--table", "users", "--as-of", "1970-01-01T00:00:00Z"]);
    assert_code(&out, 1);
    assert_eq!(
        json_err(&out)["kind"],
        "unknown_table",
        "before the first commit the table did not exist"
    );
    let out = driftdb(&[
        "select",
        "-d",
        t.d(),
        "--table",
        "users",
        "--as-of",
        "2999-01-01T00:00:00Z",
        "--fields",
        "id",
    ]);
    assert_eq!(
        json_out(&out),
        json!([{"id": "user1"}]),
        "a time after the last commit reads the last state"
    );
    // Output formats apply.
    let out =
        driftdb(&["select", "-d", t.d(), "--table", "orders", "--fields", "id", "--format", "csv"]);
    assert_eq!(stdout(&out), "id\n1\n2\n3\n");
}

#[test]
fn select_errors_show_the_composed_statement() {
    let t = sample_db();
    let out = driftdb(&[
        "select",
        "-d",
        t.d(),
        "--table",
        "orders",
        "--where",
        "total >> 3",
        "--format",
        "table",
    ]);
    assert_code(&out, 1);
    let text = stderr(&out);
    let lines: Vec<&str> = text.lines().collect();
    let source = lines
        .iter()
        .position(|l| l.contains("SELECT * FROM orders WHERE total >> 3"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(lines[source + 1].find('^'), lines[source].find(">> 3").map(|i| i + 1), "{text}");
    let out = driftdb(&["select", "-d", t.d(), "--table", "orders", "--where", "total >> 3"]);
    let err = json_err(&out);
    assert_eq!(err["kind"], "syntax");
    assert_eq!(err["line"], 1);
    let out = driftdb(&["select", "-d", t.d(), "--table", "users", "--as-of", "@seq:100"]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "future_seq");
    assert_eq!(err["message"], "@seq:100 is in the future: the last committed seq is 7");
    let out = driftdb(&["select", "-d", t.d(), "--table", "nope"]);
    assert_code(&out, 1);
    assert_eq!(json_err(&out)["kind"], "unknown_table");
    assert_code(&driftdb(&["select", "-d", t.d()]), 2);
    assert_code(&driftdb(&["select", "-d", t.d(), "--table", "orders", "--limit", "-1"]), 2);
}

#[test]
fn drift_lists_every_event_of_a_key() {
    let t = sample_db();
    let out = driftdb(&["drift", "-d", t.d(), "--table", "users", "--key", "user2"]);
    assert_code(&out, 0);
    let events = json_out(&out);
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["kind"], "INSERT");
    assert_eq!(events[0]["seq"], 2);
    assert_eq!(
        events[0]["payload"],
        json!({"id": "user2", "email": "b@example.com", "status": "active"})
    );
    assert_eq!(events[0]["document"], events[0]["payload"]);
    assert_eq!(events[1]["kind"], "SOFT_DELETE");
    assert!(events[1]["document"].is_null());
    assert!(events[1]["time"].as_str().unwrap().ends_with('Z'));
    // An integer key given as digits.
    let out = driftdb(&["drift", "-d", t.d(), "--table", "orders", "--key", "2"]);
    let events = json_out(&out);
    assert_eq!(events.as_array().unwrap().len(), 2);
    assert_eq!(events[1]["payload"], json!({"total": 25}));
    assert_eq!(events[1]["document"]["total"], 25);
    // Forced to a string, digits find nothing in a table of integer keys.
    let out =
        driftdb(&["drift", "-d", t.d(), "--table", "orders", "--key", "2", "--key-type", "string"]);
    assert_eq!(json_out(&out), json!([]));
    let out =
        driftdb(&["drift", "-d", t.d(), "--table", "orders", "--key", "x", "--key-type", "int"]);
    assert_code(&out, 2);
    let out = driftdb(&["drift", "-d", t.d(), "--table", "nope", "--key", "1"]);
    assert_code(&out, 1);
    assert_eq!(json_err(&out)["kind"], "unknown_table");
    let out =
        driftdb(&["drift", "-d", t.d(), "--table", "users", "--key", "user1", "--format", "table"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("INSERT") && text.contains("PATCH") && text.contains("(2 rows"),
        "{text}"
    );
}

#[test]
fn drift_tries_a_string_key_of_digits_after_the_integer() {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    let setup = r#"CREATE TABLE codes (pk=code); INSERT INTO codes {"code": "007", "n": 1}; INSERT INTO codes {"code": "42"}"#;
    assert_code(&driftdb(&["sql", "-d", t.d(), "-e", setup]), 0);
    let out = driftdb(&["drift", "-d", t.d(), "--table", "codes", "--key", "42"]);
    assert_eq!(json_out(&out)[0]["payload"], json!({"code": "42"}));
    let out = driftdb(&["drift", "-d", t.d(), "--table", "codes", "--key", "007"]);
    assert_eq!(json_out(&out)[0]["payload"]["n"], 1);
}

#[test]
fn tables_lists_names_as_of_a_point() {
    let t = sample_db();
    let out = driftdb(&["tables", "-d", t.d()]);
    assert_eq!(json_out(&out), json!([{"table": "orders"}, {"table": "users"}]));
    let out = driftdb(&["tables", "-d", t.d(), "--as-of", "@seq:4"]);
    assert_eq!(json_out(&out), json!([{"table": "users"}]));
    let out = driftdb(&["tables", "-d", t.d(), "--as-of", "@seq:99", "--format", "table"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("@seq:99 is in the future: the last committed seq is 7"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_creates_once_and_refuses_a_used_directory() {
    let t = TestDb::empty();
    let out = driftdb(&["init", t.d()]);
    assert_code(&out, 0);
    assert_eq!(json_out(&out)["statement"], "INIT");
    assert!(t.dir.join("CHECKPOINT").exists());
    let again = driftdb(&["init", t.d()]);
    assert_code(&again, 1);
    assert!(
        json_err(&again)["message"].as_str().unwrap().contains("already holds a DriftDB database")
    );
    let other = t.file("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "hi").unwrap();
    let out = driftdb(&["init", other.to_str().unwrap(), "--format", "table"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("it is not empty"), "{}", stderr(&out));
    // A bare relative name and a nested relative path.
    for name in ["plain", "nested/deeper/db"] {
        let out = bin().args(["init", name]).current_dir(&other).output().unwrap();
        assert_code(&out, 0);
        assert!(other.join(name).join("CHECKPOINT").exists(), "{name}");
    }
    let out = driftdb(&["tables", "-d", other.to_str().unwrap()]);
    assert!(json_err(&out)["message"].as_str().unwrap().contains("is not a DriftDB database"));
}

#[test]
fn snapshot_and_compact_report_what_they_did_or_why_not() {
    let t = sample_db();
    let out = driftdb(&["snapshot", "-d", t.d(), "--table", "orders"]);
    assert_code(&out, 0);
    let done = json_out(&out);
    assert_eq!(done["statement"], "SNAPSHOT");
    assert_eq!((done["seq"].as_u64(), done["kind"].as_str()), (Some(7), Some("full")));
    assert_eq!(done["entries"], 3);
    assert!(t.dir.join(done["path"].as_str().unwrap()).is_file(), "{done}");
    // Again with nothing committed since: the same snapshot, reported in a table.
    let out = driftdb(&["snapshot", "-d", t.d(), "--table", "orders", "--format", "table"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("full snapshot of orders at seq 7: 3 entries"),
        "{}",
        stdout(&out)
    );

    let out = driftdb(&["compact", "-d", t.d(), "--table", "orders"]);
    assert_code(&out, 0);
    let done = json_out(&out);
    assert_eq!(done["statement"], "COMPACT");
    assert_eq!(done["table"], "orders");
    assert_eq!(done["segments_before"], 1);
    assert_eq!(done["segments_after"], 1);
    // CREATE TABLE, three INSERTs and a PATCH.
    assert_eq!(done["events"], 5);
    assert!(done["bytes_before"].as_u64().unwrap() > 16, "{done}");
    assert!(done["bytes_after"].as_u64().unwrap() > 16, "{done}");
    let out = driftdb(&["compact", "-d", t.d(), "--table", "orders", "--format", "table"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nothing to compact in orders"), "{}", stdout(&out));

    for command in ["snapshot", "compact"] {
        let out = driftdb(&[command, "-d", t.d(), "--table", "nope"]);
        assert_code(&out, 1);
        assert_eq!(json_err(&out)["kind"], "unknown_table", "{command}");
    }
}
