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
