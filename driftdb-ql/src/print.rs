//! The canonical printer: `Display` for the syntax tree, writing DriftQL that parses back to
//! the same tree (`parse_statement(&s.to_string()) == Ok(s)` for every tree the parser can
//! produce; `tests/round_trip.rs` checks it on random trees).
//!
//! Canonical form: upper-case keywords; names bare when they can be, otherwise in backticks;
//! strings in double quotes with JSON escapes; floats in Rust's shortest round-trip form
//! (`1.5`, `1e300`, always with a `.` or an exponent); the fewest parentheses the precedence
//! needs; documents as JSON with sorted field names; `AS OF` at the end of a `SELECT`, as
//! `@seq:N`, `NOW` or a quoted UTC time with milliseconds.
//!
//! A chain of `AND`s or `OR`s is printed flat (`a AND b AND c`) when its tree has exactly the
//! balanced shape the parser builds for a flat chain (see [`balanced_len`]); any other
//! grouping is printed with parentheses, so it too parses back to itself.
//!
//! Trees the parser never builds have no exact text: a non-finite float prints as `NULL`
//! (like JSON), an empty name as ``` `` ```, an `INSERT` without documents as `[]`, bytes in a
//! document as an array of numbers, a time outside years 1970-9999 as `"@ms:N"`; those do not
//! parse back to the same tree.

use std::fmt::{self, Display, Formatter, Write};

use driftdb_core::{AsOf, IsolationLevel, Value};

use crate::ast::{
    AggregateFunc, AlterAction, BinaryOp, Expr, Literal, OrderBy, Path, Projection, Select,
    SelectItem, Statement, Target, UnaryOp,
};
use crate::format_unix_ms;
use crate::parse::lexical::{is_ident_char, is_ident_start, is_reserved};

/// A name, bare when it can be, else in backticks.
struct Name<'a>(&'a str);

impl Display for Name<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let bare = s.starts_with(is_ident_start) && s.chars().all(is_ident_char) && !is_reserved(s);
        if bare {
            return f.write_str(s);
        }
        f.write_char('`')?;
        for c in s.chars() {
            if c == '`' {
                f.write_char('`')?;
            }
            f.write_char(c)?;
        }
        f.write_char('`')
    }
}

/// A string literal in double quotes with JSON escapes.
struct Quoted<'a>(&'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\u{8}' => f.write_str("\\b")?,
                '\u{c}' => f.write_str("\\f")?,
                c if c < ' ' || c == '\u{7f}' => write!(f, "\\u{:04x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// A float in the shortest form that reads back exactly, always with `.` or an exponent.
fn write_float(f: &mut Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_finite() { write!(f, "{x:?}") } else { f.write_str("NULL") }
}

/// A document value as JSON.
struct Json<'a>(&'a Value);

impl Display for Json<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) if x.is_finite() => write!(f, "{x:?}"),
            Value::Float(_) => f.write_str("null"),
            Value::String(s) => Quoted(s).fmt(f),
            Value::Bytes(b) => {
                f.write_char('[')?;
                for (n, byte) in b.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{byte}")?;
                }
                f.write_char(']')
            }
            Value::Array(items) => {
                f.write_char('[')?;
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    Json(item).fmt(f)?;
                }
                f.write_char(']')
            }
            Value::Map(map) => {
                f.write_char('{')?;
                for (n, (k, v)) in map.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", Quoted(k), Json(v))?;
                }
                f.write_char('}')
            }
        }
    }
}

/// An `AS OF` point.
struct Point<'a>(&'a AsOf);

impl Display for Point<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            AsOf::Now => f.write_str("NOW"),
            AsOf::Seq(n) => write!(f, "@seq:{n}"),
            AsOf::UnixMs(ms) => Quoted(&format_unix_ms(*ms)).fmt(f),
        }
    }
}

/// `, `-separated items.
fn comma_list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    item: impl Fn(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (n, x) in items.iter().enumerate() {
        if n > 0 {
            f.write_str(", ")?;
        }
        item(f, x)?;
    }
    Ok(())
}

impl Display for Path {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_char('.')?;
            }
            Name(segment).fmt(f)?;
        }
        Ok(())
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => write_float(f, *x),
            Literal::String(s) => Quoted(s).fmt(f),
        }
    }
}

// Precedence levels, loosest first (see the grammar in `parse/mod.rs`).
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const CMP: u8 = 4;
const ADD: u8 = 5;
const MUL: u8 = 6;
const NEG: u8 = 7;
const PRIMARY: u8 = 8;

fn binary_prec(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => OR,
        BinaryOp::And => AND,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            CMP
        }
        BinaryOp::Add | BinaryOp::Sub => ADD,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => MUL,
    }
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Binary { op, .. } => binary_prec(*op),
        Expr::Unary { op: UnaryOp::Not, .. } => NOT,
        Expr::Unary { op: UnaryOp::Neg, .. } => NEG,
        Expr::InList { .. } | Expr::Between { .. } | Expr::Like { .. } | Expr::IsNull { .. } => CMP,
        Expr::Literal(_) | Expr::Field(_) | Expr::Aggregate { .. } => PRIMARY,
    }
}

fn binary_symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Or => "OR",
        BinaryOp::And => "AND",
        BinaryOp::Eq => "=",
        BinaryOp::Ne => "!=",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::Ge => ">=",
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Rem => "%",
    }
}

/// `e`, in parentheses when it binds more loosely than `need`.
fn operand(f: &mut Formatter<'_>, e: &Expr, need: u8) -> fmt::Result {
    if prec(e) < need { write!(f, "({e})") } else { e.fmt(f) }
}

/// The number of operands of the `op` chain rooted at `e` when the chain has exactly the
/// balanced shape the parser builds for a flat chain (the left half gets the extra operand),
/// `None` otherwise. A node that is not an `op` node is one operand.
pub(crate) fn balanced_len(op: BinaryOp, e: &Expr) -> Option<usize> {
    match e {
        Expr::Binary { op: o, left, right } if *o == op => {
            let (l, r) = (balanced_len(op, left)?, balanced_len(op, right)?);
            let n = l + r;
            (r == n / 2).then_some(n)
        }
        _ => Some(1),
    }
}

/// Write the operands of a balanced `op` chain, in order.
fn chain_operands(f: &mut Formatter<'_>, op: BinaryOp, e: &Expr, first: &mut bool) -> fmt::Result {
    match e {
        Expr::Binary { op: o, left, right } if *o == op => {
            chain_operands(f, op, left, first)?;
            chain_operands(f, op, right, first)
        }
        _ => {
            if !*first {
                write!(f, " {} ", binary_symbol(op))?;
            }
            *first = false;
            operand(f, e, binary_prec(op) + 1)
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(lit) => lit.fmt(f),
            Expr::Field(path) => path.fmt(f),
            Expr::Unary { op: UnaryOp::Not, expr } => {
                f.write_str("NOT ")?;
                operand(f, expr, NOT)
            }
            Expr::Unary { op: UnaryOp::Neg, expr } => match &**expr {
                // `-5` would read as the literal -5, `--` as a comment.
                Expr::Literal(Literal::Int(_) | Literal::Float(_)) => write!(f, "-({expr})"),
                Expr::Unary { op: UnaryOp::Neg, .. } => write!(f, "- {expr}"),
                _ => {
                    f.write_char('-')?;
                    operand(f, expr, NEG)
                }
            },
            Expr::Binary { op: op @ (BinaryOp::And | BinaryOp::Or), left, right } => {
                if balanced_len(*op, self).is_some() {
                    return chain_operands(f, *op, self, &mut true);
                }
                let p = binary_prec(*op);
                operand(f, left, p + 1)?;
                write!(f, " {} ", binary_symbol(*op))?;
                operand(f, right, p + 1)
            }
            Expr::Binary { op, left, right } => {
                let p = binary_prec(*op);
                operand(f, left, p)?;
                write!(f, " {} ", binary_symbol(*op))?;
                operand(f, right, p + 1)
            }
            Expr::InList { expr, list, negated } => {
                operand(f, expr, CMP)?;
                f.write_str(if *negated { " NOT IN (" } else { " IN (" })?;
                comma_list(f, list, |f, e| e.fmt(f))?;
                f.write_char(')')
            }
            Expr::Between { expr, low, high, negated } => {
                operand(f, expr, CMP)?;
                f.write_str(if *negated { " NOT BETWEEN " } else { " BETWEEN " })?;
                operand(f, low, ADD)?;
                f.write_str(" AND ")?;
                operand(f, high, ADD)
            }
            Expr::Like { expr, pattern, negated } => {
                operand(f, expr, CMP)?;
                f.write_str(if *negated { " NOT LIKE " } else { " LIKE " })?;
                operand(f, pattern, ADD)
            }
            Expr::IsNull { expr, negated } => {
                operand(f, expr, CMP)?;
                f.write_str(if *negated { " IS NOT NULL" } else { " IS NULL" })
            }
            Expr::Aggregate { func, arg } => {
                let name = match func {
                    AggregateFunc::Count => "COUNT",
                    AggregateFunc::Sum => "SUM",
                    AggregateFunc::Avg => "AVG",
                    AggregateFunc::Min => "MIN",
                    AggregateFunc::Max => "MAX",
                };
                match arg {
                    Some(arg) => write!(f, "{name}({arg})"),
                    None => write!(f, "{name}(*)"),
                }
            }
        }
    }
}

impl Display for SelectItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)?;
        if let Some(alias) = &self.alias {
            write!(f, " AS {}", Name(alias))?;
        }
        Ok(())
    }
}

impl Display for OrderBy {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)?;
        if self.descending {
            f.write_str(" DESC")?;
        }
        Ok(())
    }
}

impl Display for Projection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Projection::All => f.write_char('*'),
            Projection::Items(items) => comma_list(f, items, |f, i| i.fmt(f)),
        }
    }
}

impl Display for Select {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "SELECT {} FROM {}", self.projection, Name(&self.table))?;
        if let Some(e) = &self.filter {
            write!(f, " WHERE {e}")?;
        }
        if !self.group_by.is_empty() {
            f.write_str(" GROUP BY ")?;
            comma_list(f, &self.group_by, |f, e| e.fmt(f))?;
        }
        if let Some(e) = &self.having {
            write!(f, " HAVING {e}")?;
        }
        if !self.order_by.is_empty() {
            f.write_str(" ORDER BY ")?;
            comma_list(f, &self.order_by, |f, o| o.fmt(f))?;
        }
        if let Some(n) = self.limit {
            write!(f, " LIMIT {n}")?;
        }
        if let Some(n) = self.offset {
            write!(f, " OFFSET {n}")?;
        }
        if let Some(point) = &self.as_of {
            write!(f, " AS OF {}", Point(point))?;
        }
        Ok(())
    }
}

impl Display for AlterAction {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AlterAction::AddColumn { name, default } => {
                write!(f, "ADD COLUMN {}", Name(name))?;
                if let Some(v) = default {
                    write!(f, " DEFAULT {v}")?;
                }
                Ok(())
            }
            AlterAction::DropColumn { name } => write!(f, "DROP COLUMN {}", Name(name)),
            AlterAction::SetSnapshotEvery { every } => write!(f, "SET SNAPSHOT EVERY {every}"),
            AlterAction::SetRetention { ms: None } => write!(f, "SET RETENTION NONE"),
            AlterAction::SetRetention { ms: Some(ms) } => {
                write!(f, "SET RETENTION '{}'", driftdb_core::format_retention(*ms))
            }
        }
    }
}

impl Display for Target {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Target::Key(k) => write!(f, "KEY {k}"),
            Target::Where(e) => write!(f, "WHERE {e}"),
        }
    }
}

/// `(a, b.c)`.
fn fields(f: &mut Formatter<'_>, paths: &[Path]) -> fmt::Result {
    f.write_char('(')?;
    comma_list(f, paths, |f, p| p.fmt(f))?;
    f.write_char(')')
}

fn as_of_suffix(f: &mut Formatter<'_>, as_of: &Option<AsOf>) -> fmt::Result {
    match as_of {
        Some(point) => write!(f, " AS OF {}", Point(point)),
        None => Ok(()),
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreateTable { table, primary_key, indexes, unique } => {
                write!(f, "CREATE TABLE {} (pk={}", Name(table), Name(primary_key))?;
                for index in indexes {
                    f.write_str(", INDEX")?;
                    fields(f, index)?;
                }
                for field in unique {
                    f.write_str(", UNIQUE")?;
                    fields(f, std::slice::from_ref(field))?;
                }
                f.write_char(')')
            }
            Statement::DropTable { table, if_exists } => {
                let if_exists = if *if_exists { "IF EXISTS " } else { "" };
                write!(f, "DROP TABLE {if_exists}{}", Name(table))
            }
            Statement::CreateIndex { table, fields: paths, unique } => {
                let unique = if *unique { "UNIQUE " } else { "" };
                write!(f, "CREATE {unique}INDEX ON {}", Name(table))?;
                fields(f, paths)
            }
            Statement::DropIndex { table, fields: paths } => {
                write!(f, "DROP INDEX ON {}", Name(table))?;
                fields(f, paths)
            }
            Statement::AlterTable { table, action } => {
                write!(f, "ALTER TABLE {} {action}", Name(table))
            }
            Statement::ShowTables { as_of } => {
                f.write_str("SHOW TABLES")?;
                as_of_suffix(f, as_of)
            }
            Statement::Describe { table, as_of } => {
                write!(f, "DESCRIBE {}", Name(table))?;
                as_of_suffix(f, as_of)
            }
            Statement::Insert { table, documents, upsert } => {
                let verb = if *upsert { "UPSERT" } else { "INSERT" };
                write!(f, "{verb} INTO {} ", Name(table))?;
                match documents.as_slice() {
                    [one] => Json(one).fmt(f),
                    many => {
                        f.write_char('[')?;
                        comma_list(f, many, |f, d| Json(d).fmt(f))?;
                        f.write_char(']')
                    }
                }
            }
            Statement::Patch { table, target: Target::Key(k), patch } => {
                write!(f, "PATCH {} KEY {k} SET {}", Name(table), Json(patch))
            }
            Statement::Patch { table, target: Target::Where(e), patch } => {
                write!(f, "PATCH {} SET {} WHERE {e}", Name(table), Json(patch))
            }
            Statement::SoftDelete { table, target } => {
                write!(f, "SOFT DELETE FROM {} {target}", Name(table))
            }
            Statement::Select(select) => select.fmt(f),
            Statement::ShowDrift { table, key, range } => {
                write!(f, "SHOW DRIFT {} KEY {key}", Name(table))?;
                if let Some((from, to)) = range {
                    write!(f, " BETWEEN {} AND {}", Point(from), Point(to))?;
                }
                Ok(())
            }
            Statement::Begin { isolation } => {
                f.write_str("BEGIN")?;
                match isolation {
                    None => Ok(()),
                    Some(IsolationLevel::ReadCommitted) => {
                        f.write_str(" ISOLATION LEVEL READ COMMITTED")
                    }
                    Some(IsolationLevel::RepeatableRead) => {
                        f.write_str(" ISOLATION LEVEL REPEATABLE READ")
                    }
                    Some(IsolationLevel::Serializable) => {
                        f.write_str(" ISOLATION LEVEL SERIALIZABLE")
                    }
                }
            }
            Statement::Commit => f.write_str("COMMIT"),
            Statement::Rollback => f.write_str("ROLLBACK"),
            Statement::Snapshot { table } => write!(f, "SNAPSHOT {}", Name(table)),
            Statement::Compact { table } => write!(f, "COMPACT {}", Name(table)),
            Statement::Backup { path } => write!(f, "BACKUP TO {}", Quoted(path)),
            Statement::Analyze { table } => write!(f, "ANALYZE TABLE {}", Name(table)),
            Statement::Explain(select) => write!(f, "EXPLAIN {select}"),
        }
    }
}
