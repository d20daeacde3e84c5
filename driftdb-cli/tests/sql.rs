//! `driftdb sql` through the built binary: -e, -f and standard input, several statements,
//! transactions, output formats, errors with positions, and acknowledgements that arrive as
//! each statement completes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::json;

fn init() -> TestDb {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    t
}

#[test]
fn several_statements_print_one_json_value_each() {
    let t = init();
    let out = driftdb(&[
        "sql",
        "-d",
        t.d(),
        "-e",
        r#"CREATE TABLE users (pk=id, INDEX(email)); INSERT INTO users {"id": "u1", "email": "a@x", "n": 1};
           INSERT INTO users [{"id": "u2", "n": 2}, {"id": "u3", "n": 3}]; SELECT id, n FROM users WHERE n >= 2 ORDER BY n DESC"#,
    ]);
    assert_code(&out, 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["statement"], "CREATE TABLE");
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[1]["statement"], "INSERT");
    assert_eq!(lines[1]["affected"], 1);
    assert_eq!(lines[1]["seq"], 2);
    assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[2]["affected"], 2);
    assert_eq!(lines[2]["keys"], json!(["u2", "u3"]));
    assert_eq!(lines[3], json!([{"id": "u3", "n": 3}, {"id": "u2", "n": 2}]));
}

#[test]
fn a_file_stops_at_the_first_failure_and_says_where() {
    let t = init();
    let file = t.file("script.dql");
    std::fs::write(
        &file,
        "CREATE TABLE t (pk=id);\n-- a comment; with a semicolon\nINSERT INTO t {\"id\": 1};\n\nINSERT INTO t\n  {\"id\": 2, \"x\": 1} oops;\nINSERT INTO t {\"id\": 3};\n",
    )
    .unwrap();
    let out = driftdb(&["sql", "-d", t.d(), "-f", file.to_str().unwrap()]);
    assert_code(&out, 1);
    assert_eq!(json_lines(&out).len(), 2, "the two statements before the failure ran");
    let err = json_err(&out);
    assert_eq!(err["kind"], "syntax");
    assert_eq!(err["line"], 6);
    assert_eq!(err["column"], 21);
    assert_eq!(err["statement"], 3);
    assert_eq!(err["statement_line"], 5);
    let check = driftdb(&["sql", "-d", t.d(), "-e", "SELECT id FROM t"]);
    assert_eq!(json_out(&check), json!([{"id": 1}]), "statement 4 never ran");

    // The same in text: the caret sits under the offending character.
    let fresh = init();
    let out = driftdb(&["sql", "-d", fresh.d(), "--format", "table", "-f", file.to_str().unwrap()]);
    assert_code(&out, 1);
    let text = stderr(&out);
    assert!(
        text.starts_with("driftdb: statement 3 (line 5) failed: syntax error at line 6, column 21"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let source = lines.iter().position(|l| l.ends_with("oops;")).unwrap();
    assert_eq!(lines[source + 1].find('^'), lines[source].find("oops"), "{text}");
}

#[test]
fn a_caret_lands_right_for_a_statement_that_starts_mid_line() {
    let t = init();
    let out = driftdb(&[
        "sql",
        "-d",
        t.d(),
        "--format",
        "table",
        "-e",
        "CREATE TABLE t (pk=id); SELEC * FROM t",
    ]);
    assert_code(&out, 1);
    let text = stderr(&out);
    assert!(text.contains("line 1, column 25"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let source = lines.iter().position(|l| l.contains("SELEC *")).unwrap();
    assert_eq!(lines[source + 1].find('^'), lines[source].find("SELEC"), "{text}");
}

#[test]
fn transactions_span_statements_and_an_open_one_is_rolled_back_at_the_end() {
    let t = init();
    let out = driftdb(&[
        "sql",
        "-d",
        t.d(),
        "-e",
        "CREATE TABLE t (pk=id); BEGIN; INSERT INTO t {\"id\": 1}; INSERT INTO t {\"id\": 2}; COMMIT;",
    ]);
    assert_code(&out, 0);
    let lines = json_lines(&out);
    assert_eq!(lines[2]["pending"], true);
    assert!(lines[2]["seq"].is_null());
    assert_eq!(lines[4]["statement"], "COMMIT");
    assert_eq!(lines[4]["seq"], 2);

    let out = driftdb(&["sql", "-d", t.d(), "-e", "BEGIN;\nINSERT INTO t {\"id\": 3};"]);
    assert_code(&out, 0);
    let warning: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert!(
        warning["warning"]
            .as_str()
            .unwrap()
            .contains("begun at line 1 was not committed; it was rolled back")
    );
    let out = driftdb(&[
        "sql",
        "-d",
        t.d(),
        "--format",
        "table",
        "-e",
        "BEGIN; INSERT INTO t {\"id\": 3}",
    ]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("driftdb: the transaction begun at line 1 was not committed"),
        "{}",
        stderr(&out)
    );

    // A failure inside a transaction: stop, roll back, say so.
    let out = driftdb(&[
        "sql",
        "-d",
        t.d(),
        "-e",
        "BEGIN; INSERT INTO t {\"id\": 4}; INSERT INTO t {\"id\": 1}; COMMIT",
    ]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "duplicate_key");
    assert_eq!(err["statement"], 3);
    assert!(err["message"].as_str().unwrap().ends_with("(the open transaction was rolled back)"));
    let out = driftdb(&["sql", "-d", t.d(), "-e", "SELECT id FROM t ORDER BY id"]);
    assert_eq!(json_out(&out), json!([{"id": 1}, {"id": 2}]));
}

#[test]
fn every_output_format() {
    let t = init();
    let setup = r#"CREATE TABLE t (pk=id); INSERT INTO t [{"id": 1, "tags": ["a", "b"], "who": "x, y"}, {"id": 2}]"#;
    assert_code(&driftdb(&["sql", "-d", t.d(), "-e", setup]), 0);
    let query = "SELECT * FROM t ORDER BY id";
    let out = driftdb(&["sql", "-d", t.d(), "--format", "ndjson", "-e", query]);
    assert_eq!(stdout(&out), "{\"id\":1,\"tags\":[\"a\",\"b\"],\"who\":\"x, y\"}\n{\"id\":2}\n");
    let out = driftdb(&["sql", "-d", t.d(), "--format", "csv", "-e", query]);
    assert_eq!(stdout(&out), "id,tags,who\n1,\"[\"\"a\"\",\"\"b\"\"]\",\"x, y\"\n2,,\n");
    let out = driftdb(&[
        "--format",
        "table",
        "sql",
        "-d",
        t.d(),
        "-e",
        &format!("{query}; INSERT INTO t {{\"id\": 3}}"),
    ]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("│ 1  ┆ [\"a\",\"b\"] ┆ x, y │"), "{text}");
    assert!(text.contains("(2 rows at seq 2)"), "{text}");
    assert!(text.ends_with("INSERT 1 (seq 3)\n"), "{text}");
}

#[test]
fn the_last_statement_needs_no_semicolon_and_blank_input_does_nothing() {
    let t = init();
    let out = driftdb_stdin(&["sql", "-d", t.d()], "CREATE TABLE t (pk=id);\nSHOW TABLES");
    assert_code(&out, 0);
    assert_eq!(json_lines(&out)[1][0]["table"], "t");
    let out = driftdb_stdin(&["sql", "-d", t.d()], "  \n-- nothing here\n;;\n");
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "");
}

#[test]
fn standard_input_is_acknowledged_statement_by_statement() {
    let t = init();
    let mut child = bin()
        .args(["sql", "-d", t.d(), "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let ack = |rx: &mpsc::Receiver<String>| -> serde_json::Value {
        let line =
            rx.recv_timeout(Duration::from_secs(20)).expect("no acknowledgement within 20 s");
        serde_json::from_str(&line).unwrap()
    };
    // Each statement is written without closing stdin; its result must arrive before the next
    // statement is sent. A statement split across two writes runs only when complete.
    stdin.write_all(b"CREATE TABLE t (pk=id);").unwrap();
    stdin.flush().unwrap();
    assert_eq!(ack(&rx)["statement"], "CREATE TABLE");
    stdin.write_all(b"INSERT INTO t {\"id\": 1, \"note\": \"semi;colon\"").unwrap();
    stdin.flush().unwrap();
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "an incomplete statement must not run"
    );
    stdin.write_all(b"};\n").unwrap();
    stdin.flush().unwrap();
    let insert = ack(&rx);
    assert_eq!(insert["affected"], 1);
    assert_eq!(insert["seq"], 2);
    for i in 2..=4 {
        stdin.write_all(format!("INSERT INTO t {{\"id\": {i}}};\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        assert_eq!(ack(&rx)["seq"], i + 1);
    }
    stdin.write_all("SELECT COUNT(*) AS n FROM t; -- é\n".as_bytes()).unwrap();
    stdin.flush().unwrap();
    assert_eq!(ack(&rx), json!([{"n": 4}]));
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn clear_errors_for_the_environment() {
    let t = TestDb::empty();
    let out = driftdb(&["sql", "-d", t.d(), "-e", "SHOW TABLES"]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "not_a_database");
    assert_eq!(
        err["message"],
        format!("no database at {}: run `driftdb init {}` to create one", t.d(), t.d())
    );
    assert!(err["line"].is_null() && err["column"].is_null());
    assert!(!t.dir.exists(), "sql must not create a database");

    let t = init();
    let db = t.open();
    let out = driftdb(&["sql", "-d", t.d(), "-e", "SHOW TABLES"]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "locked");
    assert!(err["message"].as_str().unwrap().contains("is in use"), "{err}");
    drop(db);

    let out = driftdb(&[
        "sql",
        "-d",
        t.d(),
        "-e",
        "CREATE TABLE t (pk=id); SELECT * FROM t AS OF @seq:100",
    ]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "future_seq");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("@seq:100 is in the future: the last committed seq is 1")
    );

    let out = driftdb_stdin(&["sql", "-d", t.d()], "SHOW TABLES; \u{0}");
    assert_code(&out, 1);
    let out = bin()
        .args(["sql", "-d", t.d()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"SHOW TABLES; \xff\xfe;")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_code(&out, 1);
    assert!(json_err(&out)["message"].as_str().unwrap().contains("not UTF-8"));
}

#[test]
fn usage_errors_exit_2() {
    let t = init();
    let f = t.file("x.dql");
    std::fs::write(&f, "SHOW TABLES").unwrap();
    assert_code(&driftdb(&["sql", "-d", t.d(), "-e", "SHOW TABLES", "-f", f.to_str().unwrap()]), 2);
    assert_code(&driftdb(&["sql", "-e", "SHOW TABLES"]), 2);
    assert_code(&driftdb(&["sql", "-d", t.d(), "--format", "xml", "-e", "x"]), 2);
    assert_code(&driftdb(&[]), 2);
    assert_code(&driftdb(&["-d", t.d(), "stats"]), 2);
    assert_code(&driftdb(&["frobnicate"]), 2);
}
