//! The parse context: positions, the furthest failure, the nesting counter, and the mapping of
//! parser failures to [`Error::Syntax`] and [`Error::TooLarge`].
//!
//! Every parser is a nom parser over the remaining `&str`, whose error type is [`PErr`]. Two
//! kinds of failure:
//!
//! - `nom::Err::Error(PErr::Backtrack)`: this alternative does not fit; another may. The
//!   primitive that failed recorded *what it expected* in the [`Ctx`]. The context keeps only
//!   the failures at the furthest offset reached, so that when the whole parse fails the error
//!   names the furthest point the text got to and everything that would have fit there
//!   (including optional clauses that `opt` tried and dropped).
//! - `nom::Err::Failure(PErr::Fatal(..))`: the text is wrong here whatever comes next (an
//!   integer out of range, a bad escape, a limit exceeded); it ends the parse with its own
//!   message and position.

use std::cell::{Cell, RefCell};
use std::fmt;

use crate::error::Error;

/// The result of every parser.
pub(super) type Res<'a, T> = nom::IResult<&'a str, T, PErr>;

/// The error type of the parsers. See the module doc.
#[derive(Debug)]
pub(super) enum PErr {
    /// This alternative does not fit; what was expected is recorded in the context.
    Backtrack,
    /// The parse ends with this error.
    Fatal(Box<Fatal>),
}

/// An error that ends the parse.
#[derive(Debug)]
pub(super) struct Fatal {
    /// Byte offset in the whole text.
    offset: usize,
    kind: FatalKind,
}

#[derive(Debug)]
enum FatalKind {
    Syntax { expected: String, found: Option<String> },
    TooLarge { what: String, limit: String },
}

impl<'a> nom::error::ParseError<&'a str> for PErr {
    fn from_error_kind(_: &'a str, _: nom::error::ErrorKind) -> Self {
        PErr::Backtrack
    }

    fn append(_: &'a str, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        match self {
            PErr::Fatal(_) => self,
            PErr::Backtrack => other,
        }
    }
}

/// One thing that would have fit at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expected {
    /// A keyword, keyword phrase or symbol, shown in backticks.
    Token(&'static str),
    /// A description in words ("a table name").
    Thing(&'static str),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Token(t) => write!(f, "`{t}`"),
            Expected::Thing(t) => f.write_str(t),
        }
    }
}

/// The state shared by the parsers of one text.
#[derive(Debug)]
pub(super) struct Ctx<'a> {
    /// The whole text; every offset is into it.
    src: &'a str,
    /// The furthest offset at which a primitive failed.
    furthest: Cell<usize>,
    /// What was expected there (empty: nothing failed yet).
    expected: RefCell<Vec<Expected>>,
    /// How deep the expression parser is nested (parentheses, NOT, unary minus, calls).
    nesting: Cell<usize>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Ctx {
            src,
            furthest: Cell::new(0),
            expected: RefCell::new(Vec::new()),
            nesting: Cell::new(0),
        }
    }

    /// The offset of `i` (a suffix of the text) in the text.
    pub(super) fn offset(&self, i: &str) -> usize {
        self.src.len().saturating_sub(i.len())
    }

    /// Forget recorded failures (before the next statement of a script).
    pub(super) fn reset(&self) {
        self.furthest.set(0);
        self.expected.borrow_mut().clear();
        self.nesting.set(0);
    }

    /// Record that `what` would have fitted at `i`.
    pub(super) fn record(&self, i: &str, what: Expected) {
        let offset = self.offset(i);
        let mut expected = self.expected.borrow_mut();
        if expected.is_empty() || offset > self.furthest.get() {
            self.furthest.set(offset);
            expected.clear();
            expected.push(what);
        } else if offset == self.furthest.get() && !expected.contains(&what) {
            expected.push(what);
        }
    }

    /// Record `what` at `i` and fail this alternative.
    pub(super) fn fail<T>(&self, i: &'a str, what: Expected) -> Res<'a, T> {
        self.record(i, what);
        Err(nom::Err::Error(PErr::Backtrack))
    }

    /// A syntax error at `i` that ends the parse. `found` defaults to the token at `i`.
    pub(super) fn syntax(
        &self,
        i: &str,
        expected: impl Into<String>,
        found: Option<String>,
    ) -> nom::Err<PErr> {
        nom::Err::Failure(PErr::Fatal(Box::new(Fatal {
            offset: self.offset(i),
            kind: FatalKind::Syntax { expected: expected.into(), found },
        })))
    }

    /// A limit exceeded at `i`; ends the parse.
    pub(super) fn too_large(
        &self,
        i: &str,
        what: impl Into<String>,
        limit: impl Into<String>,
    ) -> nom::Err<PErr> {
        nom::Err::Failure(PErr::Fatal(Box::new(Fatal {
            offset: self.offset(i),
            kind: FatalKind::TooLarge { what: what.into(), limit: limit.into() },
        })))
    }

    /// The current expression nesting.
    pub(super) fn nesting(&self) -> usize {
        self.nesting.get()
    }

    /// Enter (`levels > 0`) or leave nesting levels. Callers pair them on every path.
    pub(super) fn set_nesting(&self, nesting: usize) {
        self.nesting.set(nesting);
    }

    /// The crate error for a failed parse.
    pub(super) fn error(&self, err: nom::Err<PErr>) -> Error {
        match err {
            nom::Err::Failure(PErr::Fatal(fatal)) | nom::Err::Error(PErr::Fatal(fatal)) => {
                match fatal.kind {
                    FatalKind::Syntax { expected, found } => {
                        let found = found.unwrap_or_else(|| describe_token(self.src, fatal.offset));
                        syntax_error(self.src, fatal.offset, expected, found)
                    }
                    FatalKind::TooLarge { what, limit } => {
                        let (line, column, source_line) = line_column(self.src, fatal.offset);
                        Error::TooLarge { line, column, what, limit, source_line }
                    }
                }
            }
            nom::Err::Error(PErr::Backtrack)
            | nom::Err::Failure(PErr::Backtrack)
            | nom::Err::Incomplete(_) => {
                let expected = self.expected.borrow();
                let offset = self.furthest.get();
                let words =
                    if expected.is_empty() { "a statement".to_owned() } else { join_or(&expected) };
                syntax_error(self.src, offset, words, describe_token(self.src, offset))
            }
        }
    }
}

/// "a", "a or b", "a, b or c".
fn join_or(items: &[Expected]) -> String {
    let mut out = String::new();
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(if n + 1 == items.len() { " or " } else { ", " });
        }
        out.push_str(&item.to_string());
    }
    out
}

fn syntax_error(src: &str, offset: usize, expected: String, found: String) -> Error {
    let (line, column, source_line) = line_column(src, offset);
    Error::Syntax { line, column, expected, found, source_line }
}

/// The 1-based line of `offset`, its 1-based column in characters, and the line's text.
pub(super) fn line_column(src: &str, offset: usize) -> (usize, usize, String) {
    let before = src.get(..offset).unwrap_or(src);
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    let rest = src.get(line_start..).unwrap_or("");
    let line_text = rest.split('\n').next().unwrap_or("").trim_end_matches('\r');
    (line, column, line_text.to_owned())
}

/// Longest token shown in an error's "found".
const FOUND_CHARS_MAX: usize = 40;

/// The token at `offset`, quoted, for an error's "found": `end of input` at the end.
pub(super) fn describe_token(src: &str, offset: usize) -> String {
    let rest = src.get(offset..).unwrap_or("");
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return "end of input".to_owned();
    };
    let len = if first.is_ascii_alphanumeric() || first == '_' || first == '@' {
        let is_tok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':';
        rest.char_indices().skip(1).find(|&(_, c)| !is_tok(c)).map_or(rest.len(), |(p, _)| p)
    } else if matches!(first, '"' | '\'' | '`') {
        // Up to the closing quote (escapes aside), the end of the line, or the end.
        let mut end = rest.len();
        let mut escaped = false;
        for (p, c) in chars {
            if c == '\n' {
                end = p;
                break;
            }
            if c == first && !escaped {
                end = p + c.len_utf8();
                break;
            }
            escaped = c == '\\' && !escaped && first != '`';
        }
        end
    } else if ["<=", ">=", "<>", "!=", "--", "/*", "*/"].iter().any(|op| rest.starts_with(op)) {
        2
    } else {
        first.len_utf8()
    };
    let token = rest.get(..len).unwrap_or(rest);
    let shown: String = token.chars().take(FOUND_CHARS_MAX).collect();
    let ellipsis = if shown.len() < token.len() { "…" } else { "" };
    if shown.contains('`') { format!("{shown}{ellipsis}") } else { format!("`{shown}{ellipsis}`") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_described() {
        assert_eq!(describe_token("", 0), "end of input");
        assert_eq!(describe_token("SELECT x", 0), "`SELECT`");
        assert_eq!(describe_token("a <= b", 2), "`<=`");
        assert_eq!(describe_token("'it\\'s' x", 0), "`'it\\'s'`");
        assert_eq!(describe_token("\"open\nnext", 0), "`\"open`");
        assert_eq!(describe_token("12abc+", 0), "`12abc`");
        assert_eq!(describe_token("@seq:12 x", 0), "`@seq:12`");
        assert_eq!(describe_token("`a b` x", 0), "`a b`");
        let long = "x".repeat(100);
        assert_eq!(describe_token(&long, 0), format!("`{}…`", "x".repeat(40)));
    }

    #[test]
    fn line_and_column_count_characters() {
        let src = "SELECT\r\n  é, ?";
        let offset = src.find('?').unwrap();
        assert_eq!(line_column(src, offset), (2, 6, "  é, ?".to_owned()));
        assert_eq!(line_column("", 0), (1, 1, String::new()));
    }
}
