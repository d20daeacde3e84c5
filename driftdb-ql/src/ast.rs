//! The DriftQL syntax tree. The parser (`parse`) builds it, the printer (`print`, via
//! `Display`) writes it back as canonical DriftQL that parses to the same tree, and the
//! executor (`exec`) runs it over `driftdb-core`.
//!
//! The tree holds no source positions, so two statements that differ only in spacing, case of
//! keywords or quoting style are equal. Parse errors carry positions; see [`crate::Error`].

use driftdb_core::{AsOf, IsolationLevel, Value};

/// One DriftQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE TABLE t (pk=id, INDEX(a, b), UNIQUE(c))`: every `INDEX(...)` declares one
    /// index over the listed fields, every `UNIQUE(...)` a unique index on one field.
    CreateTable {
        /// The table name.
        table: String,
        /// The primary key field.
        primary_key: String,
        /// Declared indexes, each a list of fields.
        indexes: Vec<Vec<Path>>,
        /// Fields with a unique index.
        unique: Vec<Path>,
    },
    /// `DROP TABLE [IF EXISTS] t`.
    DropTable {
        /// The table name.
        table: String,
        /// With `IF EXISTS`, a missing table is not an error.
        if_exists: bool,
    },
    /// `CREATE INDEX ON t(a, b)`, or `CREATE UNIQUE INDEX ON t(a)` (one field).
    CreateIndex {
        /// The table name.
        table: String,
        /// The indexed fields (exactly one when `unique`).
        fields: Vec<Path>,
        /// Whether the index is unique.
        unique: bool,
    },
    /// `DROP INDEX ON t(a, b)`: drops the index on exactly those fields, unique or not.
    DropIndex {
        /// The table name.
        table: String,
        /// The fields of the index to drop.
        fields: Vec<Path>,
    },
    /// `ALTER TABLE t ADD COLUMN c [DEFAULT v]` / `ALTER TABLE t DROP COLUMN c`.
    AlterTable {
        /// The table name.
        table: String,
        /// What changes.
        action: AlterAction,
    },
    /// `SHOW TABLES [AS OF ...]`.
    ShowTables {
        /// The moment of history, `None` for now.
        as_of: Option<AsOf>,
    },
    /// `DESCRIBE t [AS OF ...]`: the schema of a table.
    Describe {
        /// The table name.
        table: String,
        /// The moment of history, `None` for now.
        as_of: Option<AsOf>,
    },
    /// `INSERT INTO t {doc}` or `INSERT INTO t [{doc}, {doc}, ...]`;
    /// `UPSERT INTO t ...` inserts or replaces whole documents.
    Insert {
        /// The table name.
        table: String,
        /// The documents (JSON objects), in order.
        documents: Vec<Value>,
        /// `UPSERT`: a live key is replaced instead of being an error.
        upsert: bool,
    },
    /// `PATCH t KEY k SET {patch}` or `PATCH t SET {patch} WHERE expr`.
    Patch {
        /// The table name.
        table: String,
        /// Which rows.
        target: Target,
        /// The JSON merge patch (a JSON object).
        patch: Value,
    },
    /// `SOFT DELETE FROM t KEY k` or `SOFT DELETE FROM t WHERE expr`.
    SoftDelete {
        /// The table name.
        table: String,
        /// Which rows.
        target: Target,
    },
    /// A query.
    Select(Box<Select>),
    /// `SHOW DRIFT t KEY k [BETWEEN a AND b]`: the history of one key.
    ShowDrift {
        /// The table name.
        table: String,
        /// The primary key.
        key: Literal,
        /// Only events with `from <= seq <= to` (each end an `AS OF` point).
        range: Option<(AsOf, AsOf)>,
    },
    /// `BEGIN [TRANSACTION] [ISOLATION LEVEL ...]`.
    Begin {
        /// The isolation level named, `None` for the default.
        isolation: Option<IsolationLevel>,
    },
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `SNAPSHOT t`.
    Snapshot {
        /// The table name.
        table: String,
    },
    /// `COMPACT t`.
    Compact {
        /// The table name.
        table: String,
    },
    /// `BACKUP TO 'path'`.
    Backup {
        /// The destination directory.
        path: String,
    },
    /// `ANALYZE TABLE t`.
    Analyze {
        /// The table name.
        table: String,
    },
    /// `EXPLAIN <query>`.
    Explain(Box<Select>),
}

/// The change of an `ALTER TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    /// `ADD COLUMN c [DEFAULT v]`: documents without the field read as the default.
    AddColumn {
        /// The field name.
        name: String,
        /// Its default value, if any.
        default: Option<Literal>,
    },
    /// `DROP COLUMN c`: the field is removed from every live document.
    DropColumn {
        /// The field name.
        name: String,
    },
    /// `SET SNAPSHOT EVERY n`: take a snapshot of the table automatically every `n` events
    /// (0: never, whatever the database's default).
    SetSnapshotEvery {
        /// Events between automatic snapshots.
        every: u64,
    },
    /// `SET RETENTION '90 days'` / `SET RETENTION NONE`: the table's retention window in
    /// milliseconds (`None`: keep all history). Compaction folds history older than the
    /// window into a base snapshot.
    SetRetention {
        /// The window in milliseconds; `None` for `NONE`.
        ms: Option<u64>,
    },
}

/// Which rows a `PATCH` or `SOFT DELETE` changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `KEY k`: one row by primary key; it must be live.
    Key(Literal),
    /// `WHERE expr`: every live row that matches (possibly none).
    Where(Expr),
}

/// `SELECT ... FROM t ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// `*` or a list of expressions.
    pub projection: Projection,
    /// The table name.
    pub table: String,
    /// `WHERE expr`.
    pub filter: Option<Expr>,
    /// `GROUP BY e, ...`.
    pub group_by: Vec<Expr>,
    /// `HAVING expr` (only with aggregates or `GROUP BY`).
    pub having: Option<Expr>,
    /// `ORDER BY e [ASC|DESC], ...`.
    pub order_by: Vec<OrderBy>,
    /// `LIMIT n`.
    pub limit: Option<u64>,
    /// `OFFSET m` (after `LIMIT`).
    pub offset: Option<u64>,
    /// `AS OF ...` or `FOR SYSTEM_TIME AS OF ...`; `None` reads now.
    pub as_of: Option<AsOf>,
}

/// What a `SELECT` returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// `*`: whole documents.
    All,
    /// A list of expressions, each with an optional alias.
    Items(Vec<SelectItem>),
}

/// One output column: `expr [AS alias]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    /// The expression.
    pub expr: Expr,
    /// `AS alias`.
    pub alias: Option<String>,
}

/// One `ORDER BY` term.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// The sort expression (may name an output alias).
    pub expr: Expr,
    /// `DESC`.
    pub descending: bool,
}

/// A field path: `a.b.c` is `["a", "b", "c"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(pub Vec<String>);

/// A literal value in an expression or a `KEY`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// An integer (the parser folds a leading `-` into it).
    Int(i64),
    /// A float (finite).
    Float(f64),
    /// A string in `"..."` or `'...'`.
    String(String),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Literal),
    /// A field of the document (a missing field is `NULL`).
    Field(Path),
    /// `NOT e` or `-e`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
    },
    /// `left op right`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `e [NOT] IN (a, b, ...)`.
    InList {
        /// The tested expression.
        expr: Box<Expr>,
        /// The candidates.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `e [NOT] BETWEEN low AND high` (inclusive).
    Between {
        /// The tested expression.
        expr: Box<Expr>,
        /// The lower bound.
        low: Box<Expr>,
        /// The upper bound.
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `e [NOT] LIKE pattern` (`%` any run, `_` one character).
    Like {
        /// The tested expression.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `e IS [NOT] NULL`.
    IsNull {
        /// The tested expression.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `COUNT(*)`, `COUNT(e)`, `SUM(e)`, `AVG(e)`, `MIN(e)`, `MAX(e)`.
    Aggregate {
        /// The function.
        func: AggregateFunc,
        /// The argument; `None` only for `COUNT(*)`.
        arg: Option<Box<Expr>>,
    },
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT`.
    Not,
    /// `-`.
    Neg,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `OR`.
    Or,
    /// `AND`.
    And,
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunc {
    /// `COUNT`.
    Count,
    /// `SUM`.
    Sum,
    /// `AVG`.
    Avg,
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
}

/// A statement parsed from a script, with where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The statement.
    pub statement: Statement,
    /// Byte range of the statement's text in the script (without the `;`).
    pub span: std::ops::Range<usize>,
    /// 1-based line of the statement's first character.
    pub line: usize,
}
