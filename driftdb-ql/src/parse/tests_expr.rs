//! Expressions: precedence, associativity, every operator, and the depth bounds.

use super::{EXPR_DEPTH_MAX, EXPR_NESTING_MAX, parse_expr, parse_statement};
use crate::Error;
use crate::ast::*;

fn e(text: &str) -> Expr {
    match parse_expr(text) {
        Ok(e) => e,
        Err(err) => panic!("{text:?} does not parse:\n{err}"),
    }
}

/// `text` parses to the same tree as `grouped` (the explicit parenthesization) and prints
/// as `canonical`, which parses back to the same tree.
fn same(text: &str, grouped: &str, canonical: &str) {
    let tree = e(text);
    assert_eq!(tree, e(grouped), "{text:?} vs {grouped:?}");
    assert_eq!(tree.to_string(), canonical, "canonical form of {text:?}");
    assert_eq!(e(canonical), tree, "re-parse of {canonical:?}");
}

fn field(name: &str) -> Expr {
    Expr::Field(Path(vec![name.to_owned()]))
}

fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    Expr::Binary { op, left: Box::new(l), right: Box::new(r) }
}

#[test]
fn precedence_levels() {
    same("a OR b AND c", "a OR (b AND c)", "a OR b AND c");
    same("(a OR b) AND c", "(a OR b) AND c", "(a OR b) AND c");
    same("NOT a AND b", "(NOT a) AND b", "NOT a AND b");
    same("NOT a = 1", "NOT (a = 1)", "NOT a = 1");
    same("NOT (a AND b)", "NOT (a AND b)", "NOT (a AND b)");
    same("a = 1 + 2 * 3", "a = (1 + (2 * 3))", "a = 1 + 2 * 3");
    same("(a + b) * c", "(a + b) * c", "(a + b) * c");
    same("a - b - c", "(a - b) - c", "a - b - c");
    same("a - (b - c)", "a - (b - c)", "a - (b - c)");
    same("a / b * c % d", "((a / b) * c) % d", "a / b * c % d");
    same("-a * b", "(-a) * b", "-a * b");
    same("-(a * b)", "-(a * b)", "-(a * b)");
    same("- - a", "-(-a)", "- -a");
    same("-(-5)", "-(-5)", "-(-5)");
    same("a < b = TRUE", "(a < b) = TRUE", "a < b = TRUE");
    same("a = (b = c)", "a = (b = c)", "a = (b = c)");
    same("a + 1 IS NOT NULL", "(a + 1) IS NOT NULL", "a + 1 IS NOT NULL");
    same("a = b IS NULL", "(a = b) IS NULL", "a = b IS NULL");
    same("a BETWEEN 1 AND 2 AND b", "(a BETWEEN 1 AND 2) AND b", "a BETWEEN 1 AND 2 AND b");
    same(
        "a NOT BETWEEN b - 1 AND b + 1",
        "a NOT BETWEEN (b - 1) AND (b + 1)",
        "a NOT BETWEEN b - 1 AND b + 1",
    );
    same("a BETWEEN (b AND c) AND d", "a BETWEEN (b AND c) AND d", "a BETWEEN (b AND c) AND d");
    same(
        "name LIKE 'a%' OR name NOT LIKE \"_b\"",
        "(name LIKE 'a%') OR (name NOT LIKE '_b')",
        "name LIKE \"a%\" OR name NOT LIKE \"_b\"",
    );
    same(
        "a IN (1, 'x', b + 1, c IN (2))",
        "a IN (1, 'x', (b + 1), (c IN (2)))",
        "a IN (1, \"x\", b + 1, c IN (2))",
    );
    same("a NOT IN (NULL)", "a NOT IN (NULL)", "a NOT IN (NULL)");
    same("a != b OR a <> b", "(a != b) OR (a <> b)", "a != b OR a != b");
    same("a <= b AND a >= b", "(a <= b) AND (a >= b)", "a <= b AND a >= b");
    same("SUM(a + 1) / COUNT(*)", "(SUM(a + 1)) / (COUNT(*))", "SUM(a + 1) / COUNT(*)");
    same("x.y.z=null", "(x.y.z) = NULL", "x.y.z = NULL");
    same("true AND false", "TRUE AND FALSE", "TRUE AND FALSE");
}

#[test]
fn operators_map_to_the_tree() {
    assert_eq!(e("a <> b"), bin(BinaryOp::Ne, field("a"), field("b")));
    assert_eq!(e("a != b"), bin(BinaryOp::Ne, field("a"), field("b")));
    assert_eq!(e("a IS NOT NULL"), Expr::IsNull { expr: Box::new(field("a")), negated: true });
    assert_eq!(
        e("a NOT LIKE 'x'"),
        Expr::Like {
            expr: Box::new(field("a")),
            pattern: Box::new(Expr::Literal(Literal::String("x".into()))),
            negated: true,
        }
    );
    assert_eq!(
        e("count(DISTINCT_x)"),
        Expr::Aggregate { func: AggregateFunc::Count, arg: Some(Box::new(field("DISTINCT_x"))) }
    );
    assert_eq!(e("count"), field("count"));
    assert!(parse_expr("count . x").is_err(), "no whitespace inside a path");
}

#[test]
fn and_or_chains_are_balanced_and_print_flat() {
    // Two and three operands: the usual left-associative trees.
    let (a, b, c, d) = (field("a"), field("b"), field("c"), field("d"));
    assert_eq!(
        e("a AND b AND c"),
        bin(BinaryOp::And, bin(BinaryOp::And, a.clone(), b.clone()), c.clone())
    );
    // Four: balanced.
    assert_eq!(
        e("a OR b OR c OR d"),
        bin(
            BinaryOp::Or,
            bin(BinaryOp::Or, a.clone(), b.clone()),
            bin(BinaryOp::Or, c.clone(), d.clone())
        )
    );
    // Other groupings keep their parentheses and read back to themselves.
    same("a AND (b AND c)", "a AND (b AND c)", "a AND (b AND c)");
    same("(a AND b) AND (c AND d)", "a AND b AND c AND d", "a AND b AND c AND d");
    same("((a AND b) AND c) AND d", "((a AND b) AND c) AND d", "(a AND b AND c) AND d");
    for n in [1, 2, 3, 5, 8, 13, 100, 1000] {
        let text = vec!["x = 1"; n].join(" AND ");
        let tree = e(&text);
        assert_eq!(tree.to_string(), text);
        assert_eq!(crate::print::balanced_len(BinaryOp::And, &tree), Some(n));
    }
}

#[test]
fn long_chains_parse_shallow() {
    let text = vec!["a=1"; 10_000].join(" AND ");
    let tree = e(&text);
    assert_eq!(crate::print::balanced_len(BinaryOp::And, &tree), Some(10_000));
    assert_eq!(e(&tree.to_string()), tree);
    let text = vec!["a = 1 AND b = 2"; 5_000].join(" OR ");
    assert_eq!(e(&text).to_string(), text);
    // A statement too.
    let stmt = format!("SELECT * FROM t WHERE {}", vec!["a = 1"; 10_000].join(" AND "));
    let parsed = parse_statement(&stmt).unwrap();
    assert_eq!(parsed.to_string(), stmt);
}

fn too_large(text: &str) -> Error {
    match parse_expr(text) {
        Err(err @ Error::TooLarge { .. }) => err,
        other => panic!("{:?}: expected TooLarge, got {other:?}", &text[..text.len().min(40)]),
    }
}

#[test]
fn nesting_is_bounded() {
    let deep =
        |open: &str, n: usize, close: &str| format!("{}a{}", open.repeat(n), close.repeat(n));
    // Up to the limit is fine.
    assert!(parse_expr(&deep("(", EXPR_NESTING_MAX, ")")).is_ok());
    assert!(parse_expr(&deep("NOT ", EXPR_NESTING_MAX, "")).is_ok());
    assert!(parse_expr(&deep("- ", EXPR_NESTING_MAX, "")).is_ok());
    // One past it, or 100,000 past it, is an error pointing at the level that is too deep.
    let err = too_large(&deep("(", EXPR_NESTING_MAX + 1, ")"));
    assert_eq!(err.position(), Some((1, EXPR_NESTING_MAX + 1)));
    assert_eq!(
        err.message(),
        "line 1, column 65: expression nesting (parentheses, NOT, unary minus and function calls \
         inside one another) is too large (the limit is 64 levels)"
    );
    too_large(&"(".repeat(100_000));
    too_large(&deep("(", 100_000, ")"));
    too_large(&"NOT ".repeat(100_000));
    // `--` starts a comment, so this is an expression missing: an error all the same.
    assert!(matches!(parse_expr(&format!("{}1", "-".repeat(100_000))), Err(Error::Syntax { .. })));
    too_large(&format!("{}1", "- ".repeat(100_000)));
    too_large(&deep("SUM(", 100_000, ")"));
    too_large(&deep("a IN (", 100_000, ")"));
    too_large(&deep("NOT (", 100_000, ")"));
    // Mixed: each kind counts toward the same limit.
    too_large(&deep("NOT -(", 30, ")"));
}

#[test]
fn tree_depth_is_bounded() {
    let chain = |n: usize| vec!["1"; n].join(" + ");
    assert!(parse_expr(&chain(EXPR_DEPTH_MAX)).is_ok());
    let err = too_large(&chain(100_000));
    assert!(err.message().contains("expression depth"), "{err}");
    too_large(&vec!["a"; 100_000].join(" = "));
    too_large(&format!("a{}", " IS NULL".repeat(100_000)));
}
