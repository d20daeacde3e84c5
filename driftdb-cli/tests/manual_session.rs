//! The seed README's "Manual usage" session, run verbatim (same commands, same relative
//! `./mydata`), checking the documented outcome of every step.

mod common;

use common::*;
use serde_json::json;

#[test]
fn the_seed_manual_session_runs_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| bin().args(args).current_dir(tmp.path()).output().unwrap();

    // Initialize a database
    let out = run(&["init", "./mydata"]);
    assert_code(&out, 0);
    assert!(tmp.path().join("mydata").join("CHECKPOINT").exists());

    // Create a table
    let out =
        run(&["sql", "-d", "./mydata", "-e", "CREATE TABLE users (pk=id, INDEX(email, status))"]);
    assert_code(&out, 0);
    let created = json_out(&out);
    assert_eq!(created["statement"], "CREATE TABLE");
    assert_eq!(created["seq"], 1);

    // Insert data
    let out = run(&[
        "sql",
        "-d",
        "./mydata",
        "-e",
        r#"INSERT INTO users {"id": "user1", "email": "alice@example.com", "status": "active"}"#,
    ]);
    assert_code(&out, 0);
    let inserted = json_out(&out);
    assert_eq!(inserted["affected"], 1);
    assert_eq!(inserted["seq"], 2);

    // Query data
    let out =
        run(&["select", "-d", "./mydata", "--table", "users", "--where", r#"status="active""#]);
    assert_code(&out, 0);
    assert_eq!(
        json_out(&out),
        json!([{"id": "user1", "email": "alice@example.com", "status": "active"}])
    );

    // Time travel query: seq 100 is beyond the last commit (seq 2), a clear error.
    let out = run(&["select", "-d", "./mydata", "--table", "users", "--as-of", "@seq:100"]);
    assert_code(&out, 1);
    assert_eq!(stdout(&out), "");
    let err = json_err(&out);
    assert_eq!(err["kind"], "future_seq");
    assert_eq!(err["message"], "@seq:100 is in the future: the last committed seq is 2");

    // Show row history
    let out = run(&["drift", "-d", "./mydata", "--table", "users", "--key", "user1"]);
    assert_code(&out, 0);
    let events = json_out(&out);
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["seq"], 2);
    assert_eq!(events[0]["kind"], "INSERT");
    assert_eq!(events[0]["document"]["email"], "alice@example.com");
    assert!(events[0]["time"].as_str().unwrap().ends_with('Z'));

    // Create snapshot for faster queries: a full snapshot of `users` at seq 2.
    let out = run(&["snapshot", "-d", "./mydata", "--table", "users"]);
    assert_code(&out, 0);
    let snap = json_out(&out);
    assert_eq!(snap["statement"], "SNAPSHOT");
    assert_eq!(snap["seq"], 2);
    assert_eq!(snap["kind"], "full");
    assert_eq!(snap["entries"], 1);
    assert_eq!(snap["path"], "tables/users/snapshots/00000002.snap");
    let file = tmp.path().join("mydata/tables/users/snapshots/00000002.snap");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), snap["bytes"].as_u64().unwrap());

    // Compact storage: the table's segment is rewritten compressed, and every read answers the
    // same before and after.
    let reads = |run: &dyn Fn(&[&str]) -> std::process::Output| -> Vec<serde_json::Value> {
        ["@seq:1", "@seq:2"]
            .iter()
            .map(|at| {
                let out = run(&["select", "-d", "./mydata", "--table", "users", "--as-of", at]);
                assert_code(&out, 0);
                json_out(&out)
            })
            .chain(std::iter::once(json_out(&run(&[
                "drift", "-d", "./mydata", "--table", "users", "--key", "user1",
            ]))))
            .collect()
    };
    let before = reads(&run);
    assert_eq!(before[0], json!([]));
    assert_eq!(before[1][0]["id"], "user1");
    let out = run(&["compact", "-d", "./mydata", "--table", "users"]);
    assert_code(&out, 0);
    let compacted = json_out(&out);
    assert_eq!(compacted["statement"], "COMPACT");
    assert_eq!(compacted["table"], "users");
    assert_eq!(compacted["segments_before"], 1);
    assert_eq!(compacted["segments_after"], 1);
    assert_eq!(compacted["events"], 2, "CREATE TABLE and the INSERT");
    assert!(
        compacted["message"].as_str().unwrap().starts_with("compacted users: 1 segment(s)"),
        "{compacted}"
    );
    let segments = tmp.path().join("mydata/tables/users/segments");
    assert!(segments.join("compacted-00000001-00000001.seg").exists());
    assert!(!segments.join("00000001.seg").exists());
    assert_eq!(reads(&run), before);

    // Nothing the session did damaged the database.
    assert_code(&run(&["verify", "-d", "./mydata"]), 0);
}
