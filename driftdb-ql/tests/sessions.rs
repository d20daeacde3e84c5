//! Two sessions on one database: isolation levels through DriftQL, and the retryable
//! `conflict` error kind.

use driftdb_core::Database;
use driftdb_ql::{Outcome, Session, parse_statement};

fn run(session: &mut Session<'_>, text: &str) -> Result<Outcome, driftdb_ql::Error> {
    session.execute(&parse_statement(text).unwrap())
}

fn rows(outcome: Outcome) -> serde_json::Value {
    outcome.to_json()
}

#[test]
fn first_committer_wins_and_the_loser_gets_a_retryable_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut a = Session::new(&db);
    let mut b = Session::new(&db);
    run(&mut a, "CREATE TABLE acct (pk=id)").unwrap();
    run(&mut a, r#"INSERT INTO acct {"id": 1, "balance": 10}"#).unwrap();

    run(&mut a, "BEGIN ISOLATION LEVEL REPEATABLE READ").unwrap();
    run(&mut a, r#"PATCH acct KEY 1 SET {"balance": 11}"#).unwrap();
    run(&mut b, r#"PATCH acct KEY 1 SET {"balance": 20}"#).unwrap();
    // A still reads its snapshot plus its own write.
    let seen = rows(run(&mut a, "SELECT balance FROM acct").unwrap());
    assert_eq!(seen, serde_json::json!([{"balance": 11}]));
    let err = run(&mut a, "COMMIT").unwrap_err();
    assert_eq!(err.kind(), "conflict", "{err}");
    assert!(err.is_retryable());
    assert!(!a.in_transaction());
    let now = rows(run(&mut a, "SELECT balance FROM acct").unwrap());
    assert_eq!(now, serde_json::json!([{"balance": 20}]));

    // READ COMMITTED reads the latest commit inside the transaction.
    run(&mut a, "BEGIN ISOLATION LEVEL READ COMMITTED").unwrap();
    run(&mut b, r#"PATCH acct KEY 1 SET {"balance": 30}"#).unwrap();
    let seen = rows(run(&mut a, "SELECT balance FROM acct").unwrap());
    assert_eq!(seen, serde_json::json!([{"balance": 30}]));
    run(&mut a, "COMMIT").unwrap();

    // SERIALIZABLE: a read that another commit changed fails the writer at commit.
    run(&mut a, "BEGIN ISOLATION LEVEL SERIALIZABLE").unwrap();
    run(&mut a, "SELECT balance FROM acct WHERE id = 1").unwrap();
    run(&mut a, r#"INSERT INTO acct {"id": 2, "balance": 0}"#).unwrap();
    run(&mut b, r#"PATCH acct KEY 1 SET {"balance": 40}"#).unwrap();
    assert_eq!(run(&mut a, "COMMIT").unwrap_err().kind(), "conflict");
}

#[test]
fn a_read_before_a_retention_horizon_is_a_before_retention_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = driftdb_core::Options { segment_size_bytes_max: 256, ..Default::default() };
    let db = Database::open_with(dir.path(), options).unwrap();
    let mut s = Session::new(&db);
    run(&mut s, "CREATE TABLE t (pk=id)").unwrap();
    for i in 0..10 {
        run(&mut s, &format!(r#"INSERT INTO t {{"id": {i}, "n": {i}}}"#)).unwrap();
    }
    run(&mut s, "ALTER TABLE t SET RETENTION '1 hour'").unwrap();
    let described = rows(run(&mut s, "DESCRIBE t").unwrap());
    assert!(described.to_string().contains(r#""field":"1 hour","kind":"retention""#));
    // Fold as if an hour had passed since seq 8 was committed.
    let report = db.compact_table_at("t", db.commit_time(8).unwrap() + 3_600_000).unwrap();
    let h = report.folded_to.unwrap();
    assert!((8..=db.last_seq()).contains(&h), "{report}");
    let err = run(&mut s, "SELECT * FROM t AS OF @seq:3").unwrap_err();
    assert_eq!(err.kind(), "before_retention", "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("the oldest readable seq is {h}")), "{text}");
    assert!(text.contains("retention '1 hour'"), "{text}");
    let at_h = rows(run(&mut s, &format!("SELECT COUNT(*) AS n FROM t AS OF @seq:{h}")).unwrap());
    assert_eq!(at_h, serde_json::json!([{"n": (h - 1).min(10)}]));
    assert_eq!(run(&mut s, "SHOW DRIFT t KEY 9").map(|_| ()).map_err(|e| e.kind()), Ok(()));
    // Neither a list of tables nor a drift range may be cut silently by the fold.
    let err = run(&mut s, "SHOW TABLES AS OF @seq:3").unwrap_err();
    assert_eq!(err.kind(), "before_retention", "{err}");
    let err = run(&mut s, "SHOW DRIFT t KEY 1 BETWEEN @seq:1 AND NOW").unwrap_err();
    assert_eq!(err.kind(), "before_retention", "{err}");
    let from_h = format!("SHOW DRIFT t KEY 1 BETWEEN @seq:{h} AND NOW");
    assert_eq!(rows(run(&mut s, &from_h).unwrap())[0]["kind"], "INSERT");
    assert!(run(&mut s, &format!("SHOW TABLES AS OF @seq:{h}")).is_ok());
    run(&mut s, "BEGIN").unwrap();
    assert!(run(&mut s, "SHOW TABLES").is_ok());
    run(&mut s, "ROLLBACK").unwrap();
}
