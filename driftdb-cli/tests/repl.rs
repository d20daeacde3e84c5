//! The interactive shell through a pseudo-terminal (rexpect): prompts, multi-line statements,
//! transactions, meta commands, completion, Ctrl-C, Ctrl-D and the history file.

mod common;

use std::process::Command;

use common::*;
use rexpect::reader::Options;
use rexpect::session::PtySession;

const TIMEOUT_MS: u64 = 20_000;

fn shell(t: &TestDb, history: &std::path::Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftdb"));
    cmd.args(args).env("DRIFTDB_HISTORY", history).env("TERM", "xterm").env_remove("HOME");
    let _ = t;
    rexpect::session::spawn_with_options(
        cmd,
        Options::new().timeout_ms(Some(TIMEOUT_MS)).strip_ansi_escape_codes(true),
    )
    .unwrap()
}

/// Type keys without Enter (flushed, so the shell sees them now).
fn keys(p: &mut PtySession, text: &str) {
    p.send(text).unwrap();
    p.flush().unwrap();
}

fn prepared() -> TestDb {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    let setup = r#"CREATE TABLE orders (pk=id); INSERT INTO orders {"id": 1, "status": "paid", "ship": {"city": "Oslo"}}"#;
    assert_code(&driftdb(&["sql", "-d", t.d(), "-e", setup]), 0);
    t
}

#[test]
fn statements_span_lines_and_transactions_show_in_the_prompt() {
    let t = prepared();
    let history = t.file("history");
    let mut p = shell(&t, &history, &["-d", t.d()]);
    p.exp_string("\\help for help").unwrap();
    p.exp_string("driftdb> ").unwrap();

    // A statement over three lines runs when its `;` arrives.
    p.send_line("SELECT id, status").unwrap();
    p.exp_string("...> ").unwrap();
    p.send_line("FROM orders").unwrap();
    p.exp_string("...> ").unwrap();
    p.send_line("WHERE id = 1;").unwrap();
    p.exp_string("paid").unwrap();
    p.exp_string("(1 row at seq 2)").unwrap();
    p.exp_string("driftdb> ").unwrap();

    // A transaction over several lines: the prompt shows it.
    p.send_line("BEGIN;").unwrap();
    p.exp_string("driftdb*> ").unwrap();
    p.send_line(r#"INSERT INTO orders {"id": 2, "status": "new"};"#).unwrap();
    p.exp_string("INSERT 1 (pending until COMMIT)").unwrap();
    p.exp_string("driftdb*> ").unwrap();
    p.send_line("COMMIT;").unwrap();
    p.exp_string("committed 1 event(s) at seq 3").unwrap();
    p.exp_string("driftdb> ").unwrap();

    // An error is shown with its caret and the shell goes on.
    p.send_line("SELEC * FROM orders;").unwrap();
    p.exp_string("syntax error at line 1, column 1").unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_line("SELECT * FROM nope;").unwrap();
    p.exp_string("table `nope` does not exist").unwrap();
    p.exp_string("driftdb> ").unwrap();

    // Ctrl-D leaves; an open transaction is rolled back with a notice.
    p.send_line("BEGIN;").unwrap();
    p.exp_string("driftdb*> ").unwrap();
    p.send_line(r#"INSERT INTO orders {"id": 99};"#).unwrap();
    p.exp_string("pending until COMMIT").unwrap();
    p.exp_string("driftdb*> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("the open transaction was rolled back").unwrap();
    p.exp_eof().unwrap();

    let out = driftdb(&["sql", "-d", t.d(), "-e", "SELECT id FROM orders ORDER BY id"]);
    assert_eq!(json_out(&out), serde_json::json!([{"id": 1}, {"id": 2}]));
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("WHERE id = 1;"), "{saved}");
    assert!(saved.contains("SELEC * FROM orders;"), "{saved}");
}

#[test]
fn meta_commands_and_ctrl_c() {
    let t = prepared();
    let history = t.file("history");
    let mut p = shell(&t, &history, &["repl", "-d", t.d()]);
    p.exp_string("driftdb> ").unwrap();
    p.send_line("\\help").unwrap();
    p.exp_string("\\timing [on|off]").unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_line("\\dt").unwrap();
    p.exp_string("orders").unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_line("\\d orders").unwrap();
    p.exp_string("primary key").unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_line("\\timing on").unwrap();
    p.exp_string("Timing is on.").unwrap();
    p.send_line("SELECT COUNT(*) AS n FROM orders;").unwrap();
    p.exp_string("Time: ").unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_line("\\timing off").unwrap();
    p.exp_string("Timing is off.").unwrap();
    p.send_line("\\format json").unwrap();
    p.exp_string("Output format is json.").unwrap();
    p.send_line("SELECT id, ship.city AS city FROM orders;").unwrap();
    p.exp_string(r#"[{"id":1,"city":"Oslo"}]"#).unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_line("\\nonsense").unwrap();
    p.exp_string("unknown command").unwrap();
    p.exp_string("driftdb> ").unwrap();

    // Ctrl-C abandons the statement being typed and stays in the shell.
    p.send_line("SELECT * FROM").unwrap();
    p.exp_string("...> ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_line("SELECT COUNT(*) AS n FROM orders;").unwrap();
    p.exp_string(r#"[{"n":1}]"#).unwrap();
    p.exp_string("driftdb> ").unwrap();

    // Tab completes a keyword, a table and a field sampled from the table's rows.
    keys(&mut p, "SEL\t");
    p.exp_string("SELECT").unwrap();
    keys(&mut p, " sta\t");
    p.exp_string("status").unwrap();
    keys(&mut p, " FROM ord\t");
    p.exp_string("FROM orders").unwrap();
    p.send_line(";").unwrap();
    p.exp_string(r#"[{"status":"paid"}]"#).unwrap();
    p.exp_string("driftdb> ").unwrap();

    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn history_persists_between_sessions() {
    let t = prepared();
    let history = t.file("history");
    let mut p = shell(&t, &history, &["-d", t.d()]);
    p.exp_string("driftdb> ").unwrap();
    p.send_line("SELECT 41 + 1 AS answer FROM orders;").unwrap();
    p.exp_string("42").unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();

    let mut p = shell(&t, &history, &["-d", t.d()]);
    p.exp_string("driftdb> ").unwrap();
    // Up arrow recalls the statement typed in the previous session.
    keys(&mut p, "\x1b[A");
    p.send_line("").unwrap();
    p.exp_string("42").unwrap();
    p.exp_string("driftdb> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
