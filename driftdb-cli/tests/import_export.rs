//! `import` and `export` through the built binary: every format, batches, bad records,
//! AS OF, files and standard streams.

mod common;

use common::*;
use driftdb_core::{AsOf, Key, TableSchema};
use serde_json::json;

fn db_with_table(table: &str) -> TestDb {
    let t = TestDb::empty();
    let db = t.open();
    db.create_table(table, TableSchema::new("id")).unwrap();
    drop(db);
    t
}

#[test]
fn import_reads_every_format_detected_from_the_extension() {
    let t = db_with_table("people");
    let json_file = t.file("a.json");
    std::fs::write(
        &json_file,
        r#"[{"id": 1, "name": "Ada", "tags": ["x"]}, {"id": 2, "name": "Bob"}]"#,
    )
    .unwrap();
    let ndjson_file = t.file("b.jsonl");
    std::fs::write(
        &ndjson_file,
        "{\"id\": 3, \"name\": \"Cy\"}\n\n{\"id\": 4, \"nested\": {\"a\": 1}}\n",
    )
    .unwrap();
    let csv_file = t.file("c.csv");
    std::fs::write(
        &csv_file,
        "id,name,score,active,extra\n5,Eve,1.5,true,\n6,\"Fay, Jr\",2,false,null\n",
    )
    .unwrap();
    for (file, rows) in [(&json_file, 2), (&ndjson_file, 2), (&csv_file, 2)] {
        let out = driftdb(&["import", "-d", t.d(), "--table", "people", file.to_str().unwrap()]);
        assert_code(&out, 0);
        let summary = json_out(&out);
        assert_eq!(summary["statement"], "IMPORT");
        assert_eq!(summary["rows"], rows);
        assert_eq!(summary["transactions"], 1);
        assert!(summary["seq"].as_u64().unwrap() > 1);
        assert!(summary["time"].as_str().unwrap().ends_with('Z'));
    }
    let db = t.open();
    let get = |k: i64| serde_json::Value::from(&db.get("people", &Key::Int(k)).unwrap().unwrap());
    assert_eq!(get(1), json!({"id": 1, "name": "Ada", "tags": ["x"]}));
    assert_eq!(get(4), json!({"id": 4, "nested": {"a": 1}}));
    assert_eq!(get(5), json!({"id": 5, "name": "Eve", "score": 1.5, "active": true}));
    assert_eq!(
        get(6),
        json!({"id": 6, "name": "Fay, Jr", "score": 2, "active": false, "extra": null})
    );
}

#[test]
fn import_commits_in_batches_and_a_bad_record_rolls_back_only_its_batch() {
    let t = db_with_table("items");
    let file = t.file("items.ndjson");
    let mut text = String::new();
    for i in 1..=25 {
        if i == 23 {
            text.push_str("{\"id\": 3, \"dup\": true}\n"); // key 3 is live already
        } else {
            text.push_str(&format!("{{\"id\": {i}}}\n"));
        }
    }
    std::fs::write(&file, text).unwrap();
    let out = driftdb(&[
        "import",
        "-d",
        t.d(),
        "--table",
        "items",
        file.to_str().unwrap(),
        "--batch",
        "10",
        "--format",
        "ndjson",
    ]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "duplicate_key");
    assert_eq!(err["line"], 23);
    let message = err["message"].as_str().unwrap();
    assert!(message.starts_with("record 23 (line 23) was refused"), "{message}");
    assert!(message.contains("records 21 to 25) was rolled back"), "{message}");
    assert!(message.contains("records 1 to 20 were committed"), "{message}");
    let db = t.open();
    let rows = db.read(AsOf::Now).unwrap().scan("items", |_| true).unwrap();
    assert_eq!(rows.len(), 20, "two batches of 10 committed, the third not at all");
    drop(db);

    // Text format: the message on stderr, nothing on stdout.
    let bad = t.file("bad.json");
    std::fs::write(&bad, r#"[{"id": 100}, "not an object"]"#).unwrap();
    let out = driftdb(&[
        "import",
        "-d",
        t.d(),
        "--table",
        "items",
        bad.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_code(&out, 1);
    assert_eq!(stdout(&out), "");
    let text = stderr(&out);
    assert!(
        text.contains("record 2 was refused: expected a JSON object, found a string"),
        "{text}"
    );
    assert!(text.contains("nothing was imported"), "{text}");
    assert!(t.open().get("items", &Key::Int(100)).unwrap().is_none());
}

#[test]
fn import_explains_what_is_missing() {
    let t = db_with_table("items");
    let file = t.file("data.txt");
    std::fs::write(&file, "{}").unwrap();
    let out = driftdb(&["import", "-d", t.d(), "--table", "items", file.to_str().unwrap()]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--format json, ndjson or csv"), "{}", stderr(&out));

    let file = t.file("data.json");
    std::fs::write(&file, "[{\"id\": 1}]").unwrap();
    let out = driftdb(&[
        "import",
        "-d",
        t.d(),
        "--table",
        "nope",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("CREATE TABLE nope"), "{}", stderr(&out));

    let out = driftdb(&[
        "import",
        "-d",
        t.d(),
        "--table",
        "items",
        t.file("missing.json").to_str().unwrap(),
    ]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));

    std::fs::write(&file, "[{\"id\": 1},\n{\"id\": }]").unwrap();
    let out = driftdb(&[
        "import",
        "-d",
        t.d(),
        "--table",
        "items",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "invalid_input");
    assert_eq!(err["line"], 2);

    // A record without the primary key field.
    std::fs::write(&file, "[{\"name\": \"x\"}]").unwrap();
    let out = driftdb(&[
        "import",
        "-d",
        t.d(),
        "--table",
        "items",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_code(&out, 1);
    assert!(json_err(&out)["message"].as_str().unwrap().starts_with("record 1 was refused"));
}

#[test]
fn import_reads_standard_input() {
    let t = db_with_table("items");
    let out = driftdb_stdin(
        &["import", "-d", t.d(), "--table", "items", "-", "--format", "csv"],
        "id,n\nk1,1\nk2,2\n",
    );
    assert_code(&out, 0);
    assert_eq!(json_out(&out)["rows"], 2);
    assert!(t.open().get("items", &Key::from("k2")).unwrap().is_some());
}

#[test]
fn export_writes_every_format_and_round_trips() {
    let t = sample_db();
    for (format, check) in [
        ("json", "[\n{\"id\":1,\"items\":[{\"sku\":\"x\"}],\"total\":10},\n"),
        ("ndjson", "{\"id\":1,\"items\":[{\"sku\":\"x\"}],\"total\":10}\n{\"id\":2,"),
        ("csv", "id,items,total\n1,\"[{\"\"sku\"\":\"\"x\"\"}]\",10\n2,"),
    ] {
        let out = driftdb(&["export", "-d", t.d(), "--table", "orders", "--format", format]);
        assert_code(&out, 0);
        assert!(stdout(&out).starts_with(check), "{format}: {}", stdout(&out));
    }
    // Round trip through a file into a fresh table, in every format.
    for ext in ["json", "ndjson", "csv"] {
        let file = t.file(&format!("orders.{ext}"));
        let out =
            driftdb(&["export", "-d", t.d(), "--table", "orders", "-o", file.to_str().unwrap()]);
        assert_code(&out, 0);
        let summary = json_out(&out);
        assert_eq!(summary["rows"], 3);
        assert_eq!(summary["read_seq"], 7);
        let copy = TestDb::empty();
        let db = copy.open();
        db.create_table("orders", TableSchema::new("id")).unwrap();
        drop(db);
        let out = driftdb(&["import", "-d", copy.d(), "--table", "orders", file.to_str().unwrap()]);
        assert_code(&out, 0);
        let (a, b) = (t.open(), copy.open());
        let rows = |db: &driftdb_core::Database| {
            db.read(AsOf::Now).unwrap().scan("orders", |_| true).unwrap()
        };
        assert_eq!(rows(&a), rows(&b), "{ext}");
    }
}

#[test]
fn export_as_of_streams_from_snapshots_and_answers_as_select() {
    let t = sample_db();
    // A snapshot at seq 7, then more history after it.
    assert_code(&driftdb(&["snapshot", "-d", t.d(), "--table", "orders"]), 0);
    let out = driftdb(&["sql", "-d", t.d(), "-e", r#"PATCH orders KEY 3 SET {"total": 31}"#]);
    assert_code(&out, 0);
    let out = driftdb(&["sql", "-d", t.d(), "-e", r#"INSERT INTO orders {"id": 4, "total": 40}"#]);
    assert_code(&out, 0);
    for at in ["@seq:6", "@seq:7", "@seq:8", "@seq:9"] {
        for format in ["json", "ndjson", "csv"] {
            let file = t.file(&format!("orders-{}.{format}", &at[5..]));
            let out = driftdb(&[
                "export",
                "-d",
                t.d(),
                "--table",
                "orders",
                "--as-of",
                at,
                "-o",
                file.to_str().unwrap(),
            ]);
            assert_code(&out, 0);
            let select = driftdb(&["select", "-d", t.d(), "--table", "orders", "--as-of", at]);
            let want = json_out(&select).as_array().unwrap().len();
            assert_eq!(json_out(&out)["rows"], want, "{at} {format}");
        }
        let out = driftdb(&[
            "export",
            "-d",
            t.d(),
            "--table",
            "orders",
            "--as-of",
            at,
            "--format",
            "json",
        ]);
        let select = driftdb(&["select", "-d", t.d(), "--table", "orders", "--as-of", at]);
        let exported: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(exported, json_out(&select), "{at}");
    }
}

#[test]
fn export_reads_as_of_and_refuses_the_future() {
    let t = sample_db();
    let out = driftdb(&[
        "export",
        "-d",
        t.d(),
        "--table",
        "users",
        "--as-of",
        "@seq:2",
        "--format",
        "ndjson",
    ]);
    assert_code(&out, 0);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "active");
    let out = driftdb(&["export", "-d", t.d(), "--table", "users", "--as-of", "@seq:100"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("@seq:100 is in the future: the last committed seq is 7"),
        "{}",
        stderr(&out)
    );
    let out = driftdb(&[
        "--format",
        "table",
        "export",
        "-d",
        t.d(),
        "--table",
        "users",
        "--as-of",
        "yesterday",
    ]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains('^'), "{}", stderr(&out));
    let out = driftdb(&["export", "-d", t.d(), "--table", "nope"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn import_draws_a_progress_bar_only_on_a_terminal() {
    let t = db_with_table("items");
    let file = t.file("many.ndjson");
    let text: String = (0..20_000)
        .map(|i| format!("{{\"id\": {i}, \"pad\": \"{}\"}}\n", "x".repeat(40)))
        .collect();
    std::fs::write(&file, text).unwrap();
    // Piped: nothing but the summary.
    let out = driftdb(&[
        "import",
        "--data",
        t.d(),
        "--table",
        "items",
        file.to_str().unwrap(),
        "--batch",
        "5000",
    ]);
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "");
    assert_eq!(json_out(&out)["transactions"], 4);
    // On a terminal (standard error is a pseudo-terminal): the bar is drawn.
    let copy = db_with_table("items");
    let mut cmd = bin();
    cmd.args([
        "import",
        "-d",
        copy.d(),
        "--table",
        "items",
        file.to_str().unwrap(),
        "--format",
        "ndjson",
    ]);
    let options = rexpect::reader::Options::new().timeout_ms(Some(60_000));
    let mut p = rexpect::session::spawn_with_options(cmd, options).unwrap();
    p.exp_string("importing").unwrap();
    p.exp_string("imported 20000 row(s) into items").unwrap();
    p.exp_eof().unwrap();
}
