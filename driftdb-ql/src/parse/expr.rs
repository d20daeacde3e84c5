//! Expressions, by precedence climbing with one function per level (see the grammar in
//! `parse/mod.rs`).
//!
//! Depth is bounded two ways, so no input can overflow the stack here or in code that walks
//! the tree later (the executor, the printer, `Drop`):
//!
//! - The parser's own nesting (parentheses, `NOT`, unary `-`, aggregate arguments, `IN`
//!   lists) is counted and capped at [`EXPR_NESTING_MAX`]. `NOT NOT ...` and `- - ...` are
//!   read by loops, not recursion.
//! - The tree's depth is computed as nodes are built and capped at [`EXPR_DEPTH_MAX`]. Chains
//!   of `AND` (or `OR`) are built as *balanced* trees, so `a AND b AND ...` with thousands of
//!   terms stays shallow (AND and OR are associative, so the grouping does not change the
//!   meaning; evaluation order left to right is kept). Chains of other operators are
//!   left-associative and count fully toward the depth.

use super::context::{Ctx, Expected, Res};
use super::lexical::{is_reserved, kw, lex_string, number, path, sym, try_kw, try_sym, word, ws};
use super::{EXPR_DEPTH_MAX, EXPR_NESTING_MAX, IN_LIST_MAX};
use crate::ast::{AggregateFunc, BinaryOp, Expr, Literal, UnaryOp};

/// An expression with the depth of its tree.
struct Node {
    expr: Expr,
    depth: usize,
}

impl Node {
    fn leaf(expr: Expr) -> Self {
        Node { expr, depth: 1 }
    }
}

/// A whole expression (the `OR` level).
pub(super) fn expr<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Expr> {
    let (rest, node) = or_expr(cx, i)?;
    // Whatever follows, an operator would have fitted here too.
    let j = ws(cx, rest)?;
    cx.record(j, Expected::Thing("an operator"));
    Ok((rest, node.expr))
}

/// A node of `depth`, or `TooLarge` at `at` when that is beyond the limit.
fn checked<'a>(
    cx: &Ctx<'a>,
    at: &'a str,
    expr: Expr,
    depth: usize,
) -> Result<Node, nom::Err<super::context::PErr>> {
    if depth > EXPR_DEPTH_MAX {
        return Err(cx.too_large(
            at,
            "expression depth (operators applied to the results of operators)",
            format!("{EXPR_DEPTH_MAX} levels"),
        ));
    }
    Ok(Node { expr, depth })
}

fn binary<'a>(
    cx: &Ctx<'a>,
    at: &'a str,
    op: BinaryOp,
    l: Node,
    r: Node,
) -> Result<Node, nom::Err<super::context::PErr>> {
    let depth = 1 + l.depth.max(r.depth);
    let expr = Expr::Binary { op, left: Box::new(l.expr), right: Box::new(r.expr) };
    checked(cx, at, expr, depth)
}

type Level = for<'a, 'c> fn(&'c Ctx<'a>, &'a str) -> Res<'a, Node>;

fn or_expr<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Node> {
    chain(cx, i, BinaryOp::Or, "OR", and_expr)
}

fn and_expr<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Node> {
    chain(cx, i, BinaryOp::And, "AND", not_expr)
}

/// `operand (word operand)*`, built as a balanced tree.
fn chain<'a>(
    cx: &Ctx<'a>,
    i: &'a str,
    op: BinaryOp,
    word: &'static str,
    operand: Level,
) -> Res<'a, Node> {
    let start = ws(cx, i)?;
    let (mut i, first) = operand(cx, start)?;
    let mut items = vec![first];
    while let Some(rest) = try_kw(cx, i, word)? {
        let (rest, next) = operand(cx, rest)?;
        items.push(next);
        i = rest;
    }
    let node = balanced(op, items);
    let node = checked(cx, start, node.expr, node.depth)?;
    Ok((i, node))
}

/// The balanced tree over `items` (at least one): the left half gets the extra item, so two
/// and three items give the usual left-associative trees. The printer relies on this exact
/// shape (`print::balanced_len`) to print such a tree as a flat chain.
fn balanced(op: BinaryOp, mut items: Vec<Node>) -> Node {
    if items.len() <= 1 {
        return items.pop().unwrap_or_else(|| Node::leaf(Expr::Literal(Literal::Null)));
    }
    let right = items.split_off(items.len() - items.len() / 2);
    let (l, r) = (balanced(op, items), balanced(op, right));
    Node {
        depth: 1 + l.depth.max(r.depth),
        expr: Expr::Binary { op, left: Box::new(l.expr), right: Box::new(r.expr) },
    }
}

/// Count a prefix operator (`NOT` or `-`) at `at`, failing beyond the nesting limit.
fn enter<'a>(cx: &Ctx<'a>, at: &'a str) -> Result<(), nom::Err<super::context::PErr>> {
    if cx.nesting() >= EXPR_NESTING_MAX {
        return Err(cx.too_large(
            at,
            "expression nesting (parentheses, NOT, unary minus and function calls inside one another)",
            format!("{EXPR_NESTING_MAX} levels"),
        ));
    }
    cx.set_nesting(cx.nesting() + 1);
    Ok(())
}

/// Run `f` one nesting level deeper (entered at `at`).
fn nested<'a, T>(cx: &Ctx<'a>, at: &'a str, f: impl FnOnce() -> Res<'a, T>) -> Res<'a, T> {
    let outer = cx.nesting();
    enter(cx, at)?;
    let r = f();
    cx.set_nesting(outer);
    r
}

/// `NOT* comparison`.
fn not_expr<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Node> {
    let outer = cx.nesting();
    let mut i = i;
    let mut nots = Vec::new();
    loop {
        let j = ws(cx, i)?;
        match try_kw(cx, j, "NOT") {
            Ok(Some(rest)) => {
                if let Err(e) = enter(cx, j) {
                    cx.set_nesting(outer);
                    return Err(e);
                }
                nots.push(j);
                i = rest;
            }
            Ok(None) => break,
            Err(e) => {
                cx.set_nesting(outer);
                return Err(e);
            }
        }
    }
    let r = cmp_expr(cx, i);
    cx.set_nesting(outer);
    let (i, mut node) = r?;
    for at in nots.into_iter().rev() {
        let expr = Expr::Unary { op: UnaryOp::Not, expr: Box::new(node.expr) };
        node = checked(cx, at, expr, node.depth + 1)?;
    }
    Ok((i, node))
}

/// A comparison operator at `j`, longest first.
fn cmp_op(j: &str) -> Option<(&str, BinaryOp)> {
    const OPS: [(&str, BinaryOp); 7] = [
        ("<=", BinaryOp::Le),
        (">=", BinaryOp::Ge),
        ("<>", BinaryOp::Ne),
        ("!=", BinaryOp::Ne),
        ("=", BinaryOp::Eq),
        ("<", BinaryOp::Lt),
        (">", BinaryOp::Gt),
    ];
    OPS.iter().find_map(|(text, op)| j.strip_prefix(text).map(|rest| (rest, *op)))
}

/// `additive (cmp additive | IS [NOT] NULL | [NOT] IN (...) | [NOT] BETWEEN a AND b |
/// [NOT] LIKE p)*`, left-associative.
fn cmp_expr<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Node> {
    let (mut i, mut left) = add_expr(cx, i)?;
    loop {
        let j = ws(cx, i)?;
        if let Some((rest, op)) = cmp_op(j) {
            let (rest, right) = add_expr(cx, rest)?;
            left = binary(cx, j, op, left, right)?;
            i = rest;
            continue;
        }
        if let Some(rest) = try_kw(cx, j, "IS")? {
            let (rest, negated) = match kw(cx, rest, "NOT") {
                Ok((rest, ())) => (rest, true),
                Err(nom::Err::Error(_)) => (rest, false),
                Err(e) => return Err(e),
            };
            let (rest, ()) = kw(cx, rest, "NULL")?;
            let depth = left.depth + 1;
            left = checked(cx, j, Expr::IsNull { expr: Box::new(left.expr), negated }, depth)?;
            i = rest;
            continue;
        }
        let (k, negated) = match try_kw(cx, j, "NOT")? {
            Some(rest) => (rest, true),
            None => (j, false),
        };
        if let Some(rest) = try_kw(cx, k, "IN")? {
            let (rest, (list, depth)) = in_list(cx, rest)?;
            let depth = 1 + left.depth.max(depth);
            let expr = Expr::InList { expr: Box::new(left.expr), list, negated };
            left = checked(cx, j, expr, depth)?;
            i = rest;
        } else if let Some(rest) = try_kw(cx, k, "BETWEEN")? {
            let (rest, low) = add_expr(cx, rest)?;
            let (rest, ()) = kw(cx, rest, "AND")?;
            let (rest, high) = add_expr(cx, rest)?;
            let depth = 1 + left.depth.max(low.depth).max(high.depth);
            let expr = Expr::Between {
                expr: Box::new(left.expr),
                low: Box::new(low.expr),
                high: Box::new(high.expr),
                negated,
            };
            left = checked(cx, j, expr, depth)?;
            i = rest;
        } else if let Some(rest) = try_kw(cx, k, "LIKE")? {
            let (rest, pattern) = add_expr(cx, rest)?;
            let depth = 1 + left.depth.max(pattern.depth);
            let expr =
                Expr::Like { expr: Box::new(left.expr), pattern: Box::new(pattern.expr), negated };
            left = checked(cx, j, expr, depth)?;
            i = rest;
        } else if negated {
            let k = ws(cx, k)?;
            cx.record(k, Expected::Token("IN"));
            cx.record(k, Expected::Token("BETWEEN"));
            return cx.fail(k, Expected::Token("LIKE"));
        } else {
            return Ok((i, left));
        }
    }
}

/// `( expr, ... )` after `IN`: the items and the deepest item's depth.
fn in_list<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, (Vec<Expr>, usize)> {
    let (i, ()) = sym(cx, i, "(")?;
    let at = ws(cx, i)?;
    nested(cx, at, || {
        let mut list = Vec::new();
        let mut depth = 0;
        let mut i = i;
        loop {
            let j = ws(cx, i)?;
            if list.len() >= IN_LIST_MAX {
                return Err(cx.too_large(j, "an IN list", format!("{IN_LIST_MAX} items")));
            }
            let (rest, node) = or_expr(cx, j)?;
            cx.record(ws(cx, rest)?, Expected::Thing("an operator"));
            depth = depth.max(node.depth);
            list.push(node.expr);
            match sym(cx, rest, ",") {
                Ok((rest, ())) => i = rest,
                Err(nom::Err::Error(_)) => {
                    let (rest, ()) = sym(cx, rest, ")")?;
                    return Ok((rest, (list, depth)));
                }
                Err(e) => return Err(e),
            }
        }
    })
}

/// `multiplicative (("+" | "-") multiplicative)*`.
fn add_expr<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Node> {
    let (mut i, mut left) = mul_expr(cx, i)?;
    loop {
        let j = ws(cx, i)?;
        let op = match j.chars().next() {
            Some('+') => BinaryOp::Add,
            Some('-') => BinaryOp::Sub,
            _ => return Ok((i, left)),
        };
        let (rest, right) = mul_expr(cx, j.get(1..).unwrap_or(""))?;
        left = binary(cx, j, op, left, right)?;
        i = rest;
    }
}

/// `unary (("*" | "/" | "%") unary)*`.
fn mul_expr<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Node> {
    let (mut i, mut left) = unary(cx, i)?;
    loop {
        let j = ws(cx, i)?;
        let op = match j.chars().next() {
            Some('*') => BinaryOp::Mul,
            Some('/') => BinaryOp::Div,
            Some('%') => BinaryOp::Rem,
            _ => return Ok((i, left)),
        };
        let (rest, right) = unary(cx, j.get(1..).unwrap_or(""))?;
        left = binary(cx, j, op, left, right)?;
        i = rest;
    }
}

/// `"-"* primary`; a `-` right before a number folds into the literal.
fn unary<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Node> {
    let outer = cx.nesting();
    let mut minuses = Vec::new();
    let mut i = i;
    let result = loop {
        let j = match ws(cx, i) {
            Ok(j) => j,
            Err(e) => break Err(e),
        };
        if let Some(rest) = j.strip_prefix('-') {
            if let Err(e) = enter(cx, j) {
                break Err(e);
            }
            minuses.push(j);
            i = rest;
            continue;
        }
        break match (minuses.last(), j.starts_with(|c: char| c.is_ascii_digit())) {
            (Some(&minus), true) => {
                minuses.pop();
                number(cx, j, Some(minus)).map(|(rest, lit)| (rest, Node::leaf(Expr::Literal(lit))))
            }
            _ => primary(cx, j),
        };
    };
    cx.set_nesting(outer);
    let (i, mut node) = result?;
    for at in minuses.into_iter().rev() {
        let expr = Expr::Unary { op: UnaryOp::Neg, expr: Box::new(node.expr) };
        node = checked(cx, at, expr, node.depth + 1)?;
    }
    Ok((i, node))
}

/// An aggregate function name.
fn aggregate(w: &str) -> Option<AggregateFunc> {
    const FUNCS: [(&str, AggregateFunc); 5] = [
        ("COUNT", AggregateFunc::Count),
        ("SUM", AggregateFunc::Sum),
        ("AVG", AggregateFunc::Avg),
        ("MIN", AggregateFunc::Min),
        ("MAX", AggregateFunc::Max),
    ];
    FUNCS.iter().find(|(name, _)| name.eq_ignore_ascii_case(w)).map(|(_, f)| *f)
}

/// A literal, a field path, `( expr )` or an aggregate call, at `j` (after whitespace).
fn primary<'a>(cx: &Ctx<'a>, j: &'a str) -> Res<'a, Node> {
    if let Some(rest) = j.strip_prefix('(') {
        return nested(cx, j, || {
            let (rest, node) = or_expr(cx, rest)?;
            cx.record(ws(cx, rest)?, Expected::Thing("an operator"));
            let (rest, ()) = sym(cx, rest, ")")?;
            Ok((rest, node))
        });
    }
    if j.starts_with(|c: char| c.is_ascii_digit()) {
        let (rest, lit) = number(cx, j, None)?;
        return Ok((rest, Node::leaf(Expr::Literal(lit))));
    }
    if j.starts_with(['"', '\'']) {
        let (rest, s) = lex_string(cx, j, false)?;
        return Ok((rest, Node::leaf(Expr::Literal(Literal::String(s)))));
    }
    if let Some((w, rest)) = word(j) {
        let literal = if w.eq_ignore_ascii_case("NULL") {
            Some(Literal::Null)
        } else if w.eq_ignore_ascii_case("TRUE") {
            Some(Literal::Bool(true))
        } else if w.eq_ignore_ascii_case("FALSE") {
            Some(Literal::Bool(false))
        } else {
            None
        };
        if let Some(lit) = literal {
            return Ok((rest, Node::leaf(Expr::Literal(lit))));
        }
        if let Some(func) = aggregate(w)
            && let Some(args) = try_sym(cx, rest, "(")?
        {
            return nested(cx, j, || call(cx, func, args));
        }
        if is_reserved(w) {
            return cx.fail(j, Expected::Thing("an expression"));
        }
    }
    if j.starts_with(|c: char| c == '`' || super::lexical::is_ident_start(c)) {
        let (rest, p) = path(cx, j, "an expression")?;
        return Ok((rest, Node::leaf(Expr::Field(p))));
    }
    cx.fail(j, Expected::Thing("an expression"))
}

/// The arguments of an aggregate after its `(`: `*` (for COUNT) or one expression, then `)`.
fn call<'a>(cx: &Ctx<'a>, func: AggregateFunc, args: &'a str) -> Res<'a, Node> {
    if func == AggregateFunc::Count {
        if let Some(rest) = try_sym(cx, args, "*")? {
            let (rest, ()) = sym(cx, rest, ")")?;
            return Ok((rest, Node::leaf(Expr::Aggregate { func, arg: None })));
        }
        cx.record(ws(cx, args)?, Expected::Token("*"));
    }
    let (rest, node) = or_expr(cx, args)?;
    cx.record(ws(cx, rest)?, Expected::Thing("an operator"));
    let (rest, ()) = sym(cx, rest, ")")?;
    let expr = Expr::Aggregate { func, arg: Some(Box::new(node.expr)) };
    let node = checked(cx, args, expr, node.depth + 1)?;
    Ok((rest, node))
}
