//! The DriftQL parser (nom 8): text to [`Statement`]s.
//!
//! # Grammar
//!
//! EBNF; `[x]` optional, `{x}` zero or more, `"x"` a keyword (any case) or symbol.
//!
//! ```text
//! script      = [ statement ] { ";" [ statement ] } ;
//! statement   = select | "EXPLAIN" select
//!             | ( "INSERT" | "UPSERT" ) "INTO" name documents
//!             | "PATCH" name ( "KEY" key "SET" object | "SET" object "WHERE" expr )
//!             | "SOFT" "DELETE" "FROM" name ( "KEY" key | "WHERE" expr )
//!             | "CREATE" "TABLE" name "(" "pk" "=" name { "," "INDEX" fields } ")"
//!             | "CREATE" "INDEX" "ON" name fields
//!             | "DROP" "TABLE" [ "IF" "EXISTS" ] name
//!             | "DROP" "INDEX" "ON" name fields
//!             | "ALTER" "TABLE" name ( "ADD" "COLUMN" name [ "DEFAULT" literal ]
//!                                   | "DROP" "COLUMN" name
//!                                   | "SET" "SNAPSHOT" "EVERY" integer )
//!             | "SHOW" "TABLES" [ as_of ]
//!             | "SHOW" "DRIFT" name "KEY" key [ "BETWEEN" point "AND" point ]
//!             | "DESCRIBE" name [ as_of ]
//!             | ( "BEGIN" [ "TRANSACTION" | "WORK" ] | "START" "TRANSACTION" )
//!               [ "ISOLATION" "LEVEL" ( "READ" "COMMITTED" | "REPEATABLE" "READ"
//!                                     | "SERIALIZABLE" ) ]
//!             | ( "COMMIT" | "ROLLBACK" ) [ "TRANSACTION" | "WORK" ]
//!             | ( "SNAPSHOT" | "COMPACT" ) name
//!             | "BACKUP" "TO" string
//!             | "ANALYZE" [ "TABLE" ] name ;
//! select      = "SELECT" ( "*" | item { "," item } ) "FROM" name [ as_of ]
//!               [ "WHERE" expr ] [ "GROUP" "BY" expr { "," expr } ] [ "HAVING" expr ]
//!               [ "ORDER" "BY" order { "," order } ] [ "LIMIT" whole ] [ "OFFSET" whole ]
//!               [ as_of ] ;                      (* at most one of the two as_of *)
//! item        = expr [ "AS" name ] ;
//! order       = expr [ "ASC" | "DESC" ] ;
//! as_of       = ( "AS" "OF" | "FOR" "SYSTEM_TIME" "AS" "OF" ) point ;
//! point       = "@seq:" digits | "NOW" | string ;   (* string: @seq:N, now, RFC 3339 *)
//! key         = string | [ "-" ] digits ;
//! fields      = "(" path { "," path } ")" ;
//! documents   = object | "[" object { "," object } "]" ;
//! object      = (* a JSON object, see `document.rs` *) ;
//!
//! expr        = and_expr { "OR" and_expr } ;
//! and_expr    = not_expr { "AND" not_expr } ;
//! not_expr    = { "NOT" } comparison ;
//! comparison  = additive { cmp_op additive | "IS" [ "NOT" ] "NULL"
//!                        | [ "NOT" ] "IN" "(" expr { "," expr } ")"
//!                        | [ "NOT" ] "BETWEEN" additive "AND" additive
//!                        | [ "NOT" ] "LIKE" additive } ;
//! cmp_op      = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
//! additive    = multiplicative { ( "+" | "-" ) multiplicative } ;
//! multiplicative = unary { ( "*" | "/" | "%" ) unary } ;
//! unary       = { "-" } primary ;
//! primary     = literal | path | "(" expr ")"
//!             | "COUNT" "(" "*" ")" | aggregate "(" expr ")" ;
//! aggregate   = "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" ;
//! literal     = string | number | "TRUE" | "FALSE" | "NULL" | "-" number ;
//! path        = name { "." segment } ;          (* no spaces around the dots *)
//! name        = bare | quoted ;                  (* bare: not a reserved word *)
//! segment     = bare | reserved word | quoted ;
//! bare        = ( letter | "_" ) { letter | digit | "_" } ;     (* ASCII *)
//! quoted      = "`" { any char but "`" | "``" } "`" ;            (* not empty *)
//! string      = '"' { char | escape } '"' | "'" { char | escape | "''" } "'" ;
//! escape      = "\" ( '"' | "'" | "\" | "/" | "b" | "f" | "n" | "r" | "t" | "u" hex hex hex hex ) ;
//! number      = digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ] ;
//! ```
//!
//! # Decisions
//!
//! - **Case and names.** Keywords are case-insensitive; names are case-sensitive. A bare name
//!   is ASCII `[A-Za-z_][A-Za-z0-9_]*`; anything else is written in backticks, a doubled
//!   backtick standing for one. Only the words that start or continue an expression or begin a
//!   clause are reserved ([`RESERVED`]: `AND AS ASC BETWEEN DESC FALSE FOR FROM GROUP
//!   HAVING IN IS LIKE LIMIT NOT NULL OFFSET OR ORDER SELECT TRUE WHERE`); every other keyword
//!   (`KEY`, `TIME`, `STATUS`, `COUNT`, `TABLE`, ...) is an ordinary name where a name is
//!   expected. `COUNT(`...`)` is the aggregate only when `(` follows. After a `.` in a path
//!   any word is a segment.
//! - **Whitespace and comments.** Any Unicode whitespace, `-- to end of line` and
//!   `/* ... */` (not nested) separate tokens. JSON documents follow JSON: JSON whitespace
//!   only, no comments inside.
//! - **Strings.** `"..."` and `'...'` are both string literals (the seed writes
//!   `status="active"` and `BACKUP TO './backups'`). Both take the JSON backslash escapes
//!   (`\" \\ \/ \b \f \n \r \t \uXXXX`, surrogate pairs combined, lone surrogates rejected)
//!   and `\'`; inside `'...'` a doubled `''` is one quote. Any other backslash escape is an
//!   error. Raw newlines are allowed in DriftQL strings (not in JSON strings).
//! - **Numbers.** Digits with an optional `.digits` fraction and exponent. Without fraction or
//!   exponent a number is an integer and must fit i64; a `-` in prefix position before a
//!   number folds into the literal (`-5` is `Int(-5)`, so `-9223372036854775808` parses),
//!   while `-(5)` stays a negation. Floats must be finite. A number running into letters
//!   (`12abc`) is an error.
//! - **Precedence**, loosest first: `OR` < `AND` < `NOT` < comparisons, `IS [NOT] NULL`,
//!   `[NOT] IN`, `[NOT] BETWEEN`, `[NOT] LIKE` < `+ -` < `* / %` < unary `-` < primary.
//!   `!=` and `<>` are both `Ne`. Binary operators are left-associative, except that a chain
//!   of `AND`s (or `OR`s) becomes a balanced tree (see `expr.rs`; the meaning is the same).
//!   The bounds of `BETWEEN` and the pattern of `LIKE` are additive expressions, so
//!   `a BETWEEN 1 AND 2 AND b` is `(a BETWEEN 1 AND 2) AND b`.
//! - **SELECT.** `AS OF` may come right after the table (SQL:2011 style, also as
//!   `FOR SYSTEM_TIME AS OF`) or at the end (the seed's style), not both. `OFFSET` may come
//!   without `LIMIT`. Aliases need `AS`.
//! - **AS OF points.** `@seq:N` (no spaces), `NOW`, or a string holding `@seq:N`, `now`, or
//!   an RFC 3339 time with an offset (`'2025-01-01T00:00:00Z'`), read by
//!   [`crate::parse_as_of`]; a bad time is an error pointing at the string.
//! - **Documents.** `INSERT`/`UPSERT` take one JSON object or a non-empty list of them;
//!   `PATCH ... SET` takes one object. See `document.rs` (i64 integers, finite floats, no
//!   duplicate field names, nesting at most `driftdb_core::limits::DOCUMENT_DEPTH_MAX`).
//! - **Keys.** `KEY k` takes a string or an integer literal.
//! - **Statements.** `parse_statement` takes one statement with an optional `;`;
//!   `parse_script` takes statements separated by `;`, skipping empty ones.
//! - **Errors.** A syntax error points at the start of the offending token (1-based line,
//!   column in characters) and says what was expected there and what was found (the token in
//!   backticks, or `end of input`). The parser records what every failed alternative expected
//!   at the furthest position it reached, so the message lists every continuation that would
//!   have fitted (see `context.rs`). Errors in values (integer range, escapes, times) and
//!   exceeded limits are reported where they are, with their own message.
//!
//! # Limits
//!
//! Nothing in the parser recurses more than a bounded number of times, whatever the input:
//! [`EXPR_NESTING_MAX`], [`EXPR_DEPTH_MAX`], `DOCUMENT_DEPTH_MAX`. Sizes are bounded by
//! [`STRING_BYTES_MAX`], [`IDENTIFIER_BYTES_MAX`], [`IN_LIST_MAX`] and
//! [`SCRIPT_STATEMENTS_MAX`]. Exceeding any is [`Error::TooLarge`].

mod context;
mod document;
mod expr;
pub(crate) mod lexical;
mod select;
mod split;
mod statement;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_expr;
#[cfg(test)]
mod tests_statements;

pub use lexical::RESERVED;
pub use split::next_statement_end;

use self::context::{Ctx, Expected, line_column};
use self::lexical::ws;
use crate::Result;
use crate::ast::{Expr, Parsed, Statement};
use crate::error::Error;

/// How deeply parentheses, `NOT`, unary `-`, aggregate arguments and `IN` lists may nest
/// inside one another.
pub const EXPR_NESTING_MAX: usize = 64;
/// The deepest expression tree (operators applied to the results of operators). A chain of
/// `AND`s or `OR`s counts only the logarithm of its length.
pub const EXPR_DEPTH_MAX: usize = 256;
/// The longest string literal in an expression, key or path, in bytes (after escapes).
/// JSON documents are bounded by the core's document limit instead.
pub const STRING_BYTES_MAX: usize = 1 << 20;
/// The longest name (table, field, alias), in bytes.
pub const IDENTIFIER_BYTES_MAX: usize = 1024;
/// The most items in one `IN (...)` list.
pub const IN_LIST_MAX: usize = 10_000;
/// The most statements in one script.
pub const SCRIPT_STATEMENTS_MAX: usize = 1_000_000;

/// Parse exactly one statement, with an optional trailing `;`.
///
/// ```
/// use driftdb_ql::ast::Statement;
/// use driftdb_ql::parse_statement;
/// let s = parse_statement("SNAPSHOT orders;").unwrap();
/// assert_eq!(s, Statement::Snapshot { table: "orders".into() });
/// let e = parse_statement("SELECT * FORM orders").unwrap_err();
/// assert_eq!(e.position(), Some((1, 10)));
/// ```
pub fn parse_statement(text: &str) -> Result<Statement> {
    let cx = Ctx::new(text);
    let run = || {
        let (rest, statement) = statement::statement(&cx, text)?;
        let mut j = ws(&cx, rest)?;
        match j.strip_prefix(';') {
            Some(after) => j = ws(&cx, after)?,
            None => cx.record(j, Expected::Token(";")),
        }
        if !j.is_empty() {
            return cx.fail(j, Expected::Thing("end of input"));
        }
        Ok((j, statement))
    };
    run().map(|(_, s)| s).map_err(|e| cx.error(e))
}

/// Parse a script: statements separated by `;` (empty statements are skipped). Each comes
/// with its span and line; error positions are in the whole script.
///
/// ```
/// let parsed = driftdb_ql::parse_script("BEGIN;\n\nCOMMIT;;").unwrap();
/// assert_eq!(parsed.len(), 2);
/// assert_eq!((parsed[1].line, parsed[1].span.clone()), (3, 8..14));
/// ```
pub fn parse_script(text: &str) -> Result<Vec<Parsed>> {
    let cx = Ctx::new(text);
    let mut out = Vec::new();
    let mut i = text;
    let (mut line, mut line_at) = (1, 0);
    loop {
        let j = ws(&cx, i).map_err(|e| cx.error(e))?;
        if j.is_empty() {
            return Ok(out);
        }
        if let Some(rest) = j.strip_prefix(';') {
            i = rest;
            continue;
        }
        if out.len() >= SCRIPT_STATEMENTS_MAX {
            let (line, column, source_line) = line_column(text, cx.offset(j));
            return Err(Error::TooLarge {
                line,
                column,
                what: "a script".into(),
                limit: format!("{SCRIPT_STATEMENTS_MAX} statements"),
                source_line,
            });
        }
        cx.reset();
        let start = cx.offset(j);
        let (rest, statement) = statement::statement(&cx, j).map_err(|e| cx.error(e))?;
        let end = cx.offset(rest);
        let k = ws(&cx, rest).map_err(|e| cx.error(e))?;
        i = match k.strip_prefix(';') {
            Some(after) => after,
            None if k.is_empty() => k,
            None => {
                cx.record(k, Expected::Token(";"));
                cx.record(k, Expected::Thing("end of input"));
                return Err(cx.error(nom::Err::Error(context::PErr::Backtrack)));
            }
        };
        line += text.get(line_at..start).unwrap_or("").bytes().filter(|&b| b == b'\n').count();
        line_at = start;
        out.push(Parsed { statement, span: start..end, line });
    }
}

/// Parse one expression (the whole text), e.g. the CLI's `--where`.
///
/// ```
/// let e = driftdb_ql::parse_expr("status = 'paid' AND amount > 100").unwrap();
/// assert_eq!(e.to_string(), "status = \"paid\" AND amount > 100");
/// ```
pub fn parse_expr(text: &str) -> Result<Expr> {
    let cx = Ctx::new(text);
    let run = || {
        let (rest, e) = expr::expr(&cx, text)?;
        let j = ws(&cx, rest)?;
        if !j.is_empty() {
            return cx.fail(j, Expected::Thing("end of input"));
        }
        Ok((j, e))
    };
    run().map(|(_, e)| e).map_err(|e| cx.error(e))
}
