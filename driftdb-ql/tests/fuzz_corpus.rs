//! Replays the parser's fuzz corpus (`fuzz/corpus/parse/`) through the checks of the fuzz
//! target (`fuzz/fuzz_targets/parse.rs`): every input returns without panicking, and whatever
//! parses prints as DriftQL that parses back to the same tree. Also the bounds the fuzzer
//! cannot reach with its 4 KiB inputs: very deep or very long input is an error or parses,
//! never a stack overflow.

use std::path::{Path, PathBuf};

use driftdb_ql::{Error, next_statement_end, parse_expr, parse_script, parse_statement};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/parse")
}

/// The fuzz target's checks; the number of statements that parsed and round-tripped.
fn exercise(data: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(data) else {
        return 0;
    };
    let _ = next_statement_end(text);
    if let Ok(expr) = parse_expr(text) {
        let printed = expr.to_string();
        assert_eq!(parse_expr(&printed).ok(), Some(expr), "printed as {printed}");
    }
    let Ok(parsed) = parse_script(text) else {
        return 0;
    };
    let count = parsed.len();
    for p in parsed {
        let printed = p.statement.to_string();
        assert_eq!(parse_statement(&printed).ok(), Some(p.statement), "printed as {printed}");
    }
    count
}

#[test]
fn corpus_replays_without_panic() {
    let entries: Vec<_> = std::fs::read_dir(corpus_dir()).unwrap().collect();
    assert!(!entries.is_empty(), "the committed corpus is empty");
    let mut round_tripped = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        match std::panic::catch_unwind(|| exercise(&data)) {
            Ok(n) => round_tripped += n,
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
    // The corpus holds valid statements too, so the round-trip check is exercised.
    eprintln!("{round_tripped} statements of the corpus parsed and round-tripped");
    assert!(round_tripped >= 60, "only {round_tripped} statements of the corpus parse");
}

fn is_error(text: &str) -> bool {
    matches!(parse_statement(text), Err(Error::Syntax { .. } | Error::TooLarge { .. }))
}

#[test]
fn huge_inputs_are_errors_not_overflows() {
    let n = 100_000;
    let wrap = |open: &str, close: &str| {
        format!("SELECT * FROM t WHERE {}a{}", open.repeat(n), close.repeat(n))
    };
    assert!(is_error(&wrap("(", ")")));
    assert!(is_error(&wrap("NOT ", "")));
    assert!(is_error(&wrap("- ", "")));
    assert!(is_error(&wrap("-", "")));
    assert!(is_error("SELECT * FROM t WHERE -----1"));
    assert!(is_error(&wrap("COUNT(", ")")));
    assert!(is_error(&wrap("x IN (", ")")));
    assert!(is_error(&format!("SELECT * FROM t WHERE a{}", " = a".repeat(n))));
    assert!(is_error(&format!("SELECT * FROM t WHERE 1{}", " * 1".repeat(n))));
    let doc = |open: &str, close: &str| {
        format!("INSERT INTO t {{\"a\": {}1{}}}", open.repeat(10_000), close.repeat(10_000))
    };
    assert!(is_error(&doc("{\"a\": ", "}")));
    assert!(is_error(&doc("[", "]")));
    assert!(is_error(&format!("PATCH t KEY 1 SET {}", "{\"a\":".repeat(n))));
    // Unterminated everything, at the end of a long text.
    for (tail, still_open) in
        [("'", true), ("\"", true), ("`", true), ("/*", true), ("{\"a\": \"", true), ("[{", false)]
    {
        let text = format!("SELECT * FROM t WHERE {} {tail}", "a = 1 AND ".repeat(10_000));
        assert!(is_error(&text), "{tail}");
        let end = next_statement_end(&format!("{text};"));
        assert_eq!(end.is_none(), still_open, "{tail}");
    }
}

#[test]
fn long_flat_input_parses() {
    let where_ = vec!["a=1"; 10_000].join(" AND ");
    let s = parse_statement(&format!("SELECT * FROM t WHERE {where_}")).unwrap();
    let printed = s.to_string();
    assert_eq!(parse_statement(&printed).unwrap(), s);
    let list = vec!["1"; 10_000].join(",");
    assert!(parse_expr(&format!("a IN ({list})")).is_ok());
    let docs = vec!["{\"id\": 1}"; 10_000].join(",");
    assert!(parse_statement(&format!("INSERT INTO t [{docs}]")).is_ok());
    let script = "SELECT * FROM t;".repeat(10_000);
    assert_eq!(parse_script(&script).unwrap().len(), 10_000);
}
