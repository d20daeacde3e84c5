//! Error positions and messages, and the bounds on documents, strings and scripts.

use super::{parse_expr, parse_script, parse_statement};
use crate::Error;

/// The one-line message of the error `text` gives.
fn message(text: &str) -> String {
    match parse_statement(text) {
        Ok(s) => panic!("{text:?} parsed as {s:?}"),
        Err(e) => e.message(),
    }
}

/// (line, column, expected, found) of the syntax error `text` gives.
fn syntax(text: &str) -> (usize, usize, String, String) {
    match parse_statement(text) {
        Err(Error::Syntax { line, column, expected, found, .. }) => (line, column, expected, found),
        other => panic!("{text:?}: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn representative_messages() {
    assert_eq!(
        message("CREATE UNIQUE INDEX ON t(a, b)"),
        "syntax error at line 1, column 27: expected `)` (a unique index has one field), found `,`"
    );
    assert_eq!(
        message("CREATE TABLE t (pk=id, UNIQUE(a, b))"),
        "syntax error at line 1, column 32: expected `)` (a unique index has one field), found `,`"
    );
    assert_eq!(
        message("CREATE TABLE t (pk=id, KEY(a))"),
        "syntax error at line 1, column 24: expected `UNIQUE` or `INDEX`, found `KEY`"
    );
    assert_eq!(
        message("SELECT * FORM orders"),
        "syntax error at line 1, column 10: expected `FROM`, found `FORM`"
    );
    assert_eq!(
        message("SELEC * FROM t"),
        "syntax error at line 1, column 1: expected a statement (SELECT, INSERT, UPSERT, PATCH, \
         SOFT DELETE, CREATE, DROP, ALTER, SHOW, DESCRIBE, BEGIN, START, COMMIT, ROLLBACK, \
         SNAPSHOT, COMPACT, BACKUP, ANALYZE or EXPLAIN), found `SELEC`"
    );
    assert_eq!(
        message(""),
        "syntax error at line 1, column 1: expected a statement (SELECT, INSERT, UPSERT, PATCH, SOFT DELETE, CREATE, DROP, ALTER, SHOW, DESCRIBE, BEGIN, START, COMMIT, ROLLBACK, SNAPSHOT, COMPACT, BACKUP, ANALYZE or EXPLAIN), found end of input"
    );
    assert_eq!(
        message("PATCH orders \"order1\" SET {}"),
        "syntax error at line 1, column 14: expected `KEY` or `SET`, found `\"order1\"`"
    );
    assert_eq!(
        message("INSERT INTO orders (\"id\")"),
        "syntax error at line 1, column 20: expected a JSON object or a list of JSON objects \
         (the documents), found `(`"
    );
    assert_eq!(
        message("PATCH t KEY 1 SET [1]"),
        "syntax error at line 1, column 19: expected a JSON object (the patch), found `[`"
    );
    assert_eq!(
        message("SELECT * FROM t WHERE a = 1 LIMT 5"),
        "syntax error at line 1, column 29: expected an operator, `GROUP BY`, `HAVING`, \
         `ORDER BY`, `LIMIT`, `OFFSET`, `AS OF`, `FOR SYSTEM_TIME AS OF`, `;` or end of input, \
         found `LIMT`"
    );
    assert_eq!(
        message("SELECT * FROM t WHERE"),
        "syntax error at line 1, column 22: expected an expression, found end of input"
    );
    assert_eq!(
        message("SELECT * FROM where"),
        "syntax error at line 1, column 15: expected a table name, found `where`"
    );
    assert_eq!(
        message("SELECT a FROM t WHERE a IN (1, 2"),
        "syntax error at line 1, column 33: expected an operator, `,` or `)`, found end of input"
    );
    assert_eq!(
        message("SELECT * FROM t; SELECT * FROM u"),
        "syntax error at line 1, column 18: expected end of input, found `SELECT`"
    );
    assert_eq!(
        message("BEGIN ISOLATION LEVEL READ UNCOMMITTED"),
        "syntax error at line 1, column 28: expected `COMMITTED`, found `UNCOMMITTED`"
    );
    assert_eq!(
        message("SELECT * FROM t WHERE a NOT b"),
        "syntax error at line 1, column 29: expected `IN`, `BETWEEN` or `LIKE`, found `b`"
    );
}

#[test]
fn multi_line_script_errors_point_into_the_script() {
    let script =
        "BEGIN;\nINSERT INTO t {\"id\": 1};\n-- a comment\nSELECT *\n  FROM t\n  WHER x = 1;\n";
    let err = parse_script(script).unwrap_err();
    assert_eq!(err.position(), Some((6, 3)));
    assert_eq!(
        err.to_string(),
        "syntax error at line 6, column 3: expected `AS OF`, `FOR SYSTEM_TIME AS OF`, `WHERE`, \
         `GROUP BY`, `HAVING`, `ORDER BY`, `LIMIT`, `OFFSET`, `;` or end of input, found `WHER`\n  \
         \x20 WHER x = 1;\n    ^"
    );
    // JSON errors are placed in the script too, counting characters, not bytes.
    let script = "INSERT INTO t {\"é\": 1};\nINSERT INTO t {\n  \"a\": 1,\n  \"b\" 2\n}";
    let err = parse_script(script).unwrap_err();
    assert_eq!(err.position(), Some((4, 7)));
    assert!(err.to_string().ends_with("expected `:`, found `2`\n    \"b\" 2\n        ^"), "{err}");
    let script = "SELECT * FROM t WHERE s = 'é' AND x = 'a\\q'";
    let err = parse_script(script).unwrap_err();
    assert_eq!(err.position(), Some((1, 41)));
}

#[test]
fn value_errors_have_their_own_messages() {
    assert_eq!(
        syntax("SELECT * FROM t WHERE a = 9223372036854775808"),
        (
            1,
            27,
            "an integer from -9223372036854775808 to 9223372036854775807 (write a larger number \
             with a fraction or an exponent to make it a float)"
                .into(),
            "`9223372036854775808`".into()
        )
    );
    assert_eq!(syntax("SELECT * FROM t WHERE a = -9223372036854775809").1, 27);
    assert_eq!(syntax("SELECT * FROM t WHERE a = 1e999").3, "`1e999`");
    assert_eq!(syntax("SELECT * FROM t WHERE a = 12abc").3, "`12abc`");
    assert_eq!(
        syntax("SELECT * FROM t LIMIT 99999999999999999999").2,
        "a whole number from 0 to 18446744073709551615"
    );
    assert_eq!(syntax("SELECT * FROM t LIMIT -1").3, "`-`");
    assert_eq!(syntax("INSERT INTO t {\"a\": 18446744073709551616}").1, 21);
    assert_eq!(syntax("INSERT INTO t {\"a\": 01}").3, "`01`");
    assert_eq!(syntax("INSERT INTO t {\"a\": -}").2, "a JSON number (like 12, -3, 0.5 or 1e-9)");
    assert_eq!(
        syntax("INSERT INTO t {\"a\": 1e400}").2,
        "a finite number (floats are 64-bit, up to about 1.8e308)"
    );
    let (_, column, expected, found) = syntax("INSERT INTO t {\"a\": 1, \"a\": 2}");
    assert_eq!(
        (column, expected.as_str(), found.as_str()),
        (24, "a field name not already used in this object", "`\"a\"`")
    );
    assert_eq!(syntax("INSERT INTO t {'a': 1}").2, "a field name (a JSON string)");
    assert_eq!(syntax("INSERT INTO t {\"a\": 'x'}").2, "a JSON value");
    assert_eq!(syntax("INSERT INTO t {\"a\": \"x\ty\"}").3, "the control character U+0009");
    assert_eq!(syntax("INSERT INTO t [1]").2, "a JSON object (a document)");
    assert_eq!(syntax("INSERT INTO t []").2, "a JSON object (a document)");
    assert_eq!(syntax("INSERT INTO t {\"a\": [1 2]}").2, "`,` or `]`");
    assert_eq!(syntax("INSERT INTO t {\"a\": tru}").2, "a JSON value");
    assert_eq!(syntax("INSERT INTO t {\"a\": \"\\'\"}").3, "`\\'`");
    assert_eq!(syntax("PATCH t KEY 1.5 SET {}").2, "a key (a string or an integer)");
    assert_eq!(syntax("PATCH t KEY NULL SET {}").1, 13);
    // Escapes.
    assert_eq!(syntax("SELECT * FROM t WHERE a = 'x\\qy'").1, 29);
    assert_eq!(syntax("SELECT * FROM t WHERE a = '\\u12'").2, "four hexadecimal digits after \\u");
    assert_eq!(syntax("SELECT * FROM t WHERE a = '\\uD800x'").3, "`\\uD800x'`");
    assert_eq!(syntax("SELECT * FROM t WHERE a = '\\uDC00'").3, "`\\uDC00`");
    assert_eq!(
        syntax("SELECT * FROM t WHERE a = 'open").2,
        "`'` to end the string that starts here"
    );
    assert_eq!(syntax("SELECT * FROM `open").2, "a closing backtick for this name");
    assert_eq!(
        syntax("SELECT * FROM ``").2,
        "a name (backticks with nothing between them name nothing)"
    );
    assert_eq!(syntax("SELECT * FROM t /* open").3, "end of input");
    // Times.
    let (_, column, expected, found) = syntax("SELECT * FROM t AS OF 'yesterday'");
    assert_eq!(column, 23);
    assert_eq!(
        expected,
        "@seq:N, NOW, or an ISO-8601 time with a UTC offset like 2025-01-01T00:00:00Z"
    );
    assert_eq!(found, "`'yesterday'`");
    assert_eq!(
        syntax("SELECT * FROM t AS OF '1969-12-31T23:59:59Z'").2,
        "a time after 1970-01-01T00:00:00Z"
    );
    assert_eq!(
        syntax("SELECT * FROM t AS OF @seq:x").2,
        "a sequence number (a whole number) after @seq:"
    );
    assert_eq!(syntax("SELECT * FROM t AS OF @sq:1").2, "a sequence number like @seq:42");
    assert_eq!(
        syntax("SELECT * FROM t AS OF yesterday").2,
        "`@seq:N`, `NOW`, or a time in quotes like '2025-01-01T00:00:00Z'"
    );
    // Not two AS OF.
    let (_, column, expected, _) = syntax("SELECT * FROM t AS OF NOW WHERE a AS OF @seq:1");
    assert_eq!(column, 35);
    assert!(expected.contains("has an AS OF after its table name already"), "{expected}");
}

#[test]
fn documents_are_bounded_not_overflowing() {
    use driftdb_core::limits::DOCUMENT_DEPTH_MAX;
    let nested =
        |n: usize| format!("INSERT INTO t {}{}", "{\"a\": ".repeat(n) + "1", "}".repeat(n));
    assert!(parse_statement(&nested(DOCUMENT_DEPTH_MAX)).is_ok());
    let err = parse_statement(&nested(DOCUMENT_DEPTH_MAX + 1)).unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "line 1, column {}: document nesting is too large (the limit is 64 levels of objects and arrays)",
            15 + 6 * DOCUMENT_DEPTH_MAX
        )
    );
    assert!(matches!(parse_statement(&nested(10_000)), Err(Error::TooLarge { .. })));
    let arrays = format!("INSERT INTO t {{\"a\": {}}}", "[".repeat(10_000));
    assert!(matches!(parse_statement(&arrays), Err(Error::TooLarge { .. })));
    let patch = format!("PATCH t KEY 1 SET {}", "{\"a\": ".repeat(100_000));
    assert!(matches!(parse_statement(&patch), Err(Error::TooLarge { .. })));
}

#[test]
fn literals_and_lists_are_bounded() {
    let long = format!("a = '{}'", "x".repeat(super::STRING_BYTES_MAX + 1));
    assert!(matches!(parse_expr(&long), Err(Error::TooLarge { .. })));
    let ok = format!("a = '{}'", "x".repeat(super::STRING_BYTES_MAX));
    assert!(parse_expr(&ok).is_ok());
    let list = format!("a IN ({})", vec!["1"; super::IN_LIST_MAX + 1].join(", "));
    let err = parse_expr(&list).unwrap_err();
    assert!(err.message().contains("an IN list is too large (the limit is 10000 items)"), "{err}");
    let name = format!("SELECT * FROM {}", "t".repeat(super::IDENTIFIER_BYTES_MAX + 1));
    assert!(matches!(parse_statement(&name), Err(Error::TooLarge { .. })));
}

#[test]
fn scripts() {
    let parsed = parse_script(";; BEGIN ;\n\n  SELECT * FROM t -- c\n ; ; COMMIT").unwrap();
    let spans: Vec<_> = parsed.iter().map(|p| (p.line, p.span.clone())).collect();
    assert_eq!(spans, [(1, 3..8), (3, 14..29), (4, 40..46)]);
    assert!(parse_script("").unwrap().is_empty());
    assert!(parse_script("  -- nothing\n;;").unwrap().is_empty());
    let err = parse_script("BEGIN COMMIT").unwrap_err();
    assert_eq!(
        err.message(),
        "syntax error at line 1, column 7: expected `TRANSACTION`, `WORK`, `ISOLATION LEVEL`, `;` or end of input, found `COMMIT`"
    );
}
