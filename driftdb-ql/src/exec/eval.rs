//! Expression evaluation over one document, with SQL's three-valued logic.
//!
//! - A field that is missing reads as `NULL`; `a.b` reads field `b` of map `a`.
//! - `=`, `!=`, `<`, ... with a `NULL` operand are `NULL` (unknown); `WHERE` keeps a row only
//!   when its condition is `TRUE`.
//! - Integers and floats compare and compute with each other. `=` between values of different
//!   types (a string and a number) is `FALSE`; an ordering comparison between them is `NULL`,
//!   so a heterogeneous field never fails a query.
//! - Arithmetic on anything but numbers (or `NULL`) is a type mismatch; integer overflow and
//!   division by zero are errors, never wrapped or infinite values.
//! - `LIKE`: `%` matches any run of characters, `_` one character, `\` escapes the next one;
//!   case-sensitive; a non-string value does not match (`NULL`).

use std::cmp::Ordering;

use driftdb_core::Value;

use crate::Result;
use crate::ast::{AggregateFunc, BinaryOp, Expr, Literal, Path, UnaryOp};
use crate::error::Error;

/// The value of a literal.
pub(crate) fn literal_value(literal: &Literal) -> Value {
    match literal {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(i) => Value::Int(*i),
        Literal::Float(f) => Value::Float(*f),
        Literal::String(s) => Value::String(s.as_str().into()),
    }
}

/// The value at `path` in `doc` (`NULL` when any step is missing or not a map).
pub(crate) fn field<'a>(doc: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut current = doc;
    for name in &path.0 {
        current = current.get(name)?;
    }
    Some(current)
}

/// What an expression reads besides the document: the values of aggregates and group keys in
/// a grouped query.
pub(crate) trait Scope {
    /// The value of `expr` when the scope knows it as a whole (a group key or an aggregate).
    fn lookup(&self, expr: &Expr) -> Option<Value>;
    /// The document fields are read from, if any.
    fn doc(&self) -> Option<&Value>;
}

/// A scope of one document.
pub(crate) struct DocScope<'a>(pub &'a Value);

impl Scope for DocScope<'_> {
    fn lookup(&self, _: &Expr) -> Option<Value> {
        None
    }
    fn doc(&self) -> Option<&Value> {
        Some(self.0)
    }
}

/// Evaluate `expr` in `scope`.
pub(crate) fn eval(expr: &Expr, scope: &dyn Scope) -> Result<Value> {
    if let Some(value) = scope.lookup(expr) {
        return Ok(value);
    }
    Ok(match expr {
        Expr::Literal(literal) => literal_value(literal),
        Expr::Field(path) => match scope.doc() {
            Some(doc) => field(doc, path).cloned().unwrap_or(Value::Null),
            None => {
                return Err(Error::invalid(format!(
                    "field `{}` must appear in GROUP BY or inside an aggregate",
                    path_text(path)
                )));
            }
        },
        Expr::Unary { op: UnaryOp::Not, expr } => match truth(&eval(expr, scope)?, "NOT")? {
            Some(b) => Value::Bool(!b),
            None => Value::Null,
        },
        Expr::Unary { op: UnaryOp::Neg, expr } => negate(eval(expr, scope)?)?,
        Expr::Binary { op: BinaryOp::And, left, right } => {
            let l = truth(&eval(left, scope)?, "AND")?;
            if l == Some(false) {
                return Ok(Value::Bool(false));
            }
            let r = truth(&eval(right, scope)?, "AND")?;
            match (l, r) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            }
        }
        Expr::Binary { op: BinaryOp::Or, left, right } => {
            let l = truth(&eval(left, scope)?, "OR")?;
            if l == Some(true) {
                return Ok(Value::Bool(true));
            }
            let r = truth(&eval(right, scope)?, "OR")?;
            match (l, r) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            }
        }
        Expr::Binary { op, left, right } => {
            let l = eval(left, scope)?;
            let r = eval(right, scope)?;
            binary(*op, &l, &r)?
        }
        Expr::InList { expr, list, negated } => {
            let value = eval(expr, scope)?;
            if value == Value::Null {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let candidate = eval(item, scope)?;
                match equals(&value, &candidate) {
                    Some(true) => {
                        found = true;
                        break;
                    }
                    Some(false) => {}
                    None => saw_null = true,
                }
            }
            match (found, saw_null) {
                (true, _) => Value::Bool(!negated),
                (false, true) => Value::Null,
                (false, false) => Value::Bool(*negated),
            }
        }
        Expr::Between { expr, low, high, negated } => {
            let value = eval(expr, scope)?;
            let low = eval(low, scope)?;
            let high = eval(high, scope)?;
            let above = compare(&value, &low).map(|o| o != Ordering::Less);
            let below = compare(&value, &high).map(|o| o != Ordering::Greater);
            match (above, below) {
                (Some(false), _) | (_, Some(false)) => Value::Bool(*negated),
                (Some(true), Some(true)) => Value::Bool(!negated),
                _ => Value::Null,
            }
        }
        Expr::Like { expr, pattern, negated } => {
            let value = eval(expr, scope)?;
            let pattern = eval(pattern, scope)?;
            match (&value, &pattern) {
                (_, Value::Null) => Value::Null,
                (Value::String(s), Value::String(p)) => Value::Bool(like(s, p) != *negated),
                (_, Value::String(_)) => Value::Null,
                (_, other) => {
                    return Err(Error::type_mismatch(format!(
                        "LIKE needs a string pattern, not {}",
                        describe(other)
                    )));
                }
            }
        }
        Expr::IsNull { expr, negated } => {
            let value = eval(expr, scope)?;
            Value::Bool((value == Value::Null) != *negated)
        }
        Expr::Aggregate { func, .. } => {
            return Err(Error::invalid(format!(
                "{} is an aggregate: it may appear in the SELECT list, HAVING and ORDER BY, \
                 not in WHERE or inside another aggregate",
                aggregate_name(*func)
            )));
        }
    })
}

/// The truth of a condition: `Some(bool)`, `None` for `NULL`; anything else is an error.
pub(crate) fn truth(value: &Value, context: &str) -> Result<Option<bool>> {
    match value {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Null => Ok(None),
        other => Err(Error::type_mismatch(format!(
            "{context} needs a boolean (TRUE, FALSE or NULL), not {}",
            describe(other)
        ))),
    }
}

/// Whether a row passes `WHERE expr` / `HAVING expr`.
pub(crate) fn passes(expr: &Expr, scope: &dyn Scope, clause: &str) -> Result<bool> {
    Ok(truth(&eval(expr, scope)?, clause)? == Some(true))
}

fn negate(value: Value) -> Result<Value> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(overflow),
        Value::Float(f) => Ok(Value::Float(-f)),
        other => Err(Error::type_mismatch(format!("cannot negate {}", describe(&other)))),
    }
}

fn overflow() -> Error {
    Error::invalid("integer overflow: the result does not fit in a 64-bit integer")
}

fn binary(op: BinaryOp, l: &Value, r: &Value) -> Result<Value> {
    let cmp = |test: fn(Ordering) -> bool| -> Value {
        if *l == Value::Null || *r == Value::Null {
            return Value::Null;
        }
        compare(l, r).map_or(Value::Null, |o| Value::Bool(test(o)))
    };
    Ok(match op {
        BinaryOp::Eq => equals(l, r).map_or(Value::Null, Value::Bool),
        BinaryOp::Ne => equals(l, r).map_or(Value::Null, |b| Value::Bool(!b)),
        BinaryOp::Lt => cmp(|o| o == Ordering::Less),
        BinaryOp::Le => cmp(|o| o != Ordering::Greater),
        BinaryOp::Gt => cmp(|o| o == Ordering::Greater),
        BinaryOp::Ge => cmp(|o| o != Ordering::Less),
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
            arithmetic(op, l, r)?
        }
        BinaryOp::And | BinaryOp::Or => {
            return Err(Error::invalid("AND / OR are evaluated with short-circuit"));
        }
    })
}

fn arithmetic(op: BinaryOp, l: &Value, r: &Value) -> Result<Value> {
    let symbol = match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        _ => "%",
    };
    match (l, r) {
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            if matches!(op, BinaryOp::Div | BinaryOp::Rem) && b == 0 {
                return Err(Error::invalid("division by zero"));
            }
            let result = match op {
                BinaryOp::Add => a.checked_add(b),
                BinaryOp::Sub => a.checked_sub(b),
                BinaryOp::Mul => a.checked_mul(b),
                BinaryOp::Div => a.checked_div(b),
                _ => a.checked_rem(b),
            };
            result.map(Value::Int).ok_or_else(overflow)
        }
        _ => match (number(l), number(r)) {
            (Some(a), Some(b)) => {
                if matches!(op, BinaryOp::Div | BinaryOp::Rem) && b == 0.0 {
                    return Err(Error::invalid("division by zero"));
                }
                let result = match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    _ => a % b,
                };
                if result.is_finite() {
                    Ok(Value::Float(result))
                } else {
                    Err(Error::invalid("the result is not a finite number"))
                }
            }
            _ => Err(Error::type_mismatch(format!(
                "`{symbol}` needs numbers, not {} and {}",
                describe(l),
                describe(r)
            ))),
        },
    }
}

/// A number as f64.
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// SQL equality: `None` when either side is `NULL`; numbers compare by value; values of
/// different types are unequal.
pub(crate) fn equals(l: &Value, r: &Value) -> Option<bool> {
    if *l == Value::Null || *r == Value::Null {
        return None;
    }
    Some(match (l, r) {
        (Value::Int(a), Value::Int(b)) => a == b,
        _ => match (number(l), number(r)) {
            (Some(a), Some(b)) => a == b,
            _ => l == r,
        },
    })
}

/// An ordering between two values of comparable types (numbers, strings, booleans, bytes);
/// `None` otherwise.
pub(crate) fn compare(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Bytes(a), Value::Bytes(b)) => Some(a.cmp(b)),
        _ => match (number(l), number(r)) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
    }
}

fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::String(_) => 3,
        Value::Bytes(_) => 4,
        Value::Array(_) => 5,
        Value::Map(_) => 6,
    }
}

/// A total order for sorting and MIN/MAX: `NULL` < booleans < numbers < strings < bytes <
/// arrays < maps; within a type the natural order (arrays and maps element by element).
pub(crate) fn total_order(l: &Value, r: &Value) -> Ordering {
    if let Some(o) = compare(l, r) {
        return o;
    }
    match type_rank(l).cmp(&type_rank(r)) {
        Ordering::Equal => {}
        other => return other,
    }
    match (l, r) {
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter().zip(b) {
                let o = total_order(x, y);
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.len().cmp(&b.len())
        }
        (Value::Map(a), Value::Map(b)) => {
            for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                let o = ka.cmp(kb).then_with(|| total_order(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.len().cmp(&b.len())
        }
        // NaN cannot be stored; equal ranks with no order left are equal.
        _ => Ordering::Equal,
    }
}

/// `LIKE` matching without recursion: `%` any run, `_` one character, `\x` the character x.
pub(crate) fn like(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Any,
        One,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Any) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::One) => {
                t += 1;
                p += 1;
                continue;
            }
            Some(Token::Char(c)) if text.get(t) == Some(c) => {
                t += 1;
                p += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bp, bt)) => {
                backtrack = Some((bp, bt + 1));
                p = bp + 1;
                t = bt + 1;
            }
            None => return false,
        }
    }
    tokens.get(p..).is_some_and(|rest| rest.iter().all(|tok| *tok == Token::Any))
}

/// A short description of a value for error messages: `string "abc"`, `integer 5`, ...
pub(crate) fn describe(value: &Value) -> String {
    let mut text = value.to_string();
    if text.chars().count() > 40 {
        text = text.chars().take(37).collect::<String>() + "...";
    }
    let kind = match value {
        Value::Null => return "NULL".into(),
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "float",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Array(_) => "array",
        Value::Map(_) => "object",
    };
    format!("{kind} {text}")
}

/// `a.b.c`.
pub(crate) fn path_text(path: &Path) -> String {
    path.0.join(".")
}

/// `COUNT`, `SUM`, ...
pub(crate) fn aggregate_name(func: AggregateFunc) -> &'static str {
    match func {
        AggregateFunc::Count => "COUNT",
        AggregateFunc::Sum => "SUM",
        AggregateFunc::Avg => "AVG",
        AggregateFunc::Min => "MIN",
        AggregateFunc::Max => "MAX",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::json!({"a": 5, "f": 2.5, "s": "hello", "n": null, "m": {"x": 1}, "t": true})
            .into()
    }

    fn field_expr(name: &str) -> Expr {
        Expr::Field(Path(name.split('.').map(String::from).collect()))
    }

    fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
        Expr::Binary { op, left: Box::new(l), right: Box::new(r) }
    }

    fn lit(l: Literal) -> Expr {
        Expr::Literal(l)
    }

    #[test]
    fn three_valued_logic() {
        let d = doc();
        let s = DocScope(&d);
        let null_eq = bin(BinaryOp::Eq, field_expr("missing"), lit(Literal::Int(1)));
        assert_eq!(eval(&null_eq, &s).unwrap(), Value::Null);
        let f_and = bin(BinaryOp::And, null_eq.clone(), lit(Literal::Bool(false)));
        assert_eq!(eval(&f_and, &s).unwrap(), Value::Bool(false));
        let t_or = bin(BinaryOp::Or, null_eq.clone(), lit(Literal::Bool(true)));
        assert_eq!(eval(&t_or, &s).unwrap(), Value::Bool(true));
        let not_null = Expr::Unary { op: UnaryOp::Not, expr: Box::new(null_eq) };
        assert_eq!(eval(&not_null, &s).unwrap(), Value::Null);
        assert!(!passes(&not_null, &s, "WHERE").unwrap());
    }

    #[test]
    fn numbers_and_types() {
        let d = doc();
        let s = DocScope(&d);
        let sum = bin(BinaryOp::Add, field_expr("a"), field_expr("f"));
        assert_eq!(eval(&sum, &s).unwrap(), Value::Float(7.5));
        let nested = bin(BinaryOp::Eq, field_expr("m.x"), lit(Literal::Float(1.0)));
        assert_eq!(eval(&nested, &s).unwrap(), Value::Bool(true));
        let mixed = bin(BinaryOp::Lt, field_expr("s"), lit(Literal::Int(1)));
        assert_eq!(eval(&mixed, &s).unwrap(), Value::Null);
        let bad = bin(BinaryOp::Add, field_expr("s"), lit(Literal::Int(1)));
        assert_eq!(eval(&bad, &s).unwrap_err().kind(), "type_mismatch");
        let div0 = bin(BinaryOp::Div, field_expr("a"), lit(Literal::Int(0)));
        assert_eq!(eval(&div0, &s).unwrap_err().kind(), "invalid_statement");
        let over = bin(BinaryOp::Mul, lit(Literal::Int(i64::MAX)), lit(Literal::Int(2)));
        assert!(eval(&over, &s).is_err());
        let not_bool = Expr::Unary { op: UnaryOp::Not, expr: Box::new(field_expr("a")) };
        assert_eq!(eval(&not_bool, &s).unwrap_err().kind(), "type_mismatch");
    }

    #[test]
    fn in_between_like_is_null() {
        let d = doc();
        let s = DocScope(&d);
        let inl = Expr::InList {
            expr: Box::new(field_expr("a")),
            list: vec![lit(Literal::Int(1)), lit(Literal::Null)],
            negated: false,
        };
        assert_eq!(eval(&inl, &s).unwrap(), Value::Null);
        let between = Expr::Between {
            expr: Box::new(field_expr("a")),
            low: Box::new(lit(Literal::Int(5))),
            high: Box::new(lit(Literal::Float(5.5))),
            negated: false,
        };
        assert_eq!(eval(&between, &s).unwrap(), Value::Bool(true));
        let is_null = Expr::IsNull { expr: Box::new(field_expr("n")), negated: false };
        assert_eq!(eval(&is_null, &s).unwrap(), Value::Bool(true));
        for (text, pattern, expected) in [
            ("hello", "h%o", true),
            ("hello", "h_llo", true),
            ("hello", "%ll%", true),
            ("hello", "%x%", false),
            ("", "%", true),
            ("a%b", "a\\%b", true),
            ("axb", "a\\%b", false),
            ("héllo", "h_llo", true),
            ("aaa", "%a%a%a%a", false),
        ] {
            assert_eq!(like(text, pattern), expected, "{text} LIKE {pattern}");
        }
    }

    #[test]
    fn total_order_sorts_mixed_types() {
        let mut values = [
            Value::String("b".into()),
            Value::Int(3),
            Value::Null,
            Value::Float(2.5),
            Value::Bool(true),
            Value::String("a".into()),
        ];
        values.sort_by(total_order);
        assert_eq!(
            values,
            [
                Value::Null,
                Value::Bool(true),
                Value::Float(2.5),
                Value::Int(3),
                Value::String("a".into()),
                Value::String("b".into()),
            ]
        );
    }
}
