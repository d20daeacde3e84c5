//! Tokens: whitespace and comments, keywords, identifiers and paths, string and number
//! literals, symbols.
//!
//! Every token parser skips whitespace and comments *before* its token, never after, so the
//! input left after a statement starts right after its last token (the statement's span ends
//! there). A failing token parser records what it expected at the token's start (see
//! [`Ctx::record`]); the `try_*` variants fail silently.

use nom::Parser;
use nom::bytes::complete::take_while;
use nom::character::complete::{char, digit1, one_of, satisfy};
use nom::combinator::{opt, recognize};

use super::context::{Ctx, Expected, PErr, Res};
use super::{IDENTIFIER_BYTES_MAX, STRING_BYTES_MAX};
use crate::ast::{Literal, Path};

/// Words that cannot be bare identifiers (in any case) because they would be ambiguous: they
/// start or continue an expression or begin a clause. Quote them with backticks to use them as
/// names. Every other keyword (`KEY`, `TABLE`, `COUNT`, ...) is an ordinary identifier where a
/// name is expected.
pub const RESERVED: &[&str] = &[
    "AND", "AS", "ASC", "BETWEEN", "DESC", "FALSE", "FOR", "FROM", "GROUP", "HAVING", "IN", "IS",
    "LIKE", "LIMIT", "NOT", "NULL", "OFFSET", "OR", "ORDER", "SELECT", "TRUE", "WHERE",
];

/// Is `word` reserved (case-insensitively)?
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// Is `c` a character of a bare identifier after the first?
pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Is `c` the first character of a bare identifier?
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Skip whitespace, `-- line comments` and `/* block comments */`.
pub(super) fn ws<'a>(cx: &Ctx<'a>, mut i: &'a str) -> Result<&'a str, nom::Err<PErr>> {
    loop {
        i = i.trim_start();
        if let Some(rest) = i.strip_prefix("--") {
            i = rest.find('\n').map_or("", |p| rest.get(p..).unwrap_or(""));
        } else if let Some(rest) = i.strip_prefix("/*") {
            match rest.find("*/") {
                Some(p) => i = rest.get(p + 2..).unwrap_or(""),
                None => {
                    return Err(cx.syntax(
                        i,
                        "`*/` to end the comment opened here",
                        Some("end of input".into()),
                    ));
                }
            }
        } else {
            return Ok(i);
        }
    }
}

/// A bare word `[A-Za-z_][A-Za-z0-9_]*` at the start of `i` (no whitespace skipped).
pub(super) fn word(i: &str) -> Option<(&str, &str)> {
    let res: Res<'_, &str> =
        recognize((satisfy(is_ident_start), take_while(is_ident_char))).parse(i);
    res.ok().map(|(rest, w)| (w, rest))
}

/// The keyword `k` (case-insensitive), silently: `None` when it is not there.
pub(super) fn try_kw<'a>(
    cx: &Ctx<'a>,
    i: &'a str,
    k: &'static str,
) -> Result<Option<&'a str>, nom::Err<PErr>> {
    let j = ws(cx, i)?;
    Ok(match word(j) {
        Some((w, rest)) if w.eq_ignore_ascii_case(k) => Some(rest),
        _ => None,
    })
}

/// The keyword `k` (case-insensitive), or record it as expected.
pub(super) fn kw<'a>(cx: &Ctx<'a>, i: &'a str, k: &'static str) -> Res<'a, ()> {
    let j = ws(cx, i)?;
    match word(j) {
        Some((w, rest)) if w.eq_ignore_ascii_case(k) => Ok((rest, ())),
        _ => cx.fail(j, Expected::Token(k)),
    }
}

/// A phrase of keywords such as `GROUP BY`. A missing first word records the whole phrase as
/// expected, a missing later word just that word.
pub(super) fn phrase<'a>(cx: &Ctx<'a>, i: &'a str, words: &'static str) -> Res<'a, ()> {
    let mut i = i;
    for (n, k) in words.split(' ').enumerate() {
        let j = ws(cx, i)?;
        match word(j) {
            Some((w, rest)) if w.eq_ignore_ascii_case(k) => i = rest,
            _ => return cx.fail(j, Expected::Token(if n == 0 { words } else { k })),
        }
    }
    Ok((i, ()))
}

/// The symbol `s`, or record it as expected.
pub(super) fn sym<'a>(cx: &Ctx<'a>, i: &'a str, s: &'static str) -> Res<'a, ()> {
    let j = ws(cx, i)?;
    match j.strip_prefix(s) {
        Some(rest) => Ok((rest, ())),
        None => cx.fail(j, Expected::Token(s)),
    }
}

/// The symbol `s`, silently.
pub(super) fn try_sym<'a>(
    cx: &Ctx<'a>,
    i: &'a str,
    s: &'static str,
) -> Result<Option<&'a str>, nom::Err<PErr>> {
    Ok(ws(cx, i)?.strip_prefix(s))
}

/// A name: a bare identifier that is not reserved, or a backtick-quoted one. `label` says
/// what the name is for ("a table name").
pub(super) fn ident<'a>(cx: &Ctx<'a>, i: &'a str, label: &'static str) -> Res<'a, String> {
    let j = ws(cx, i)?;
    if j.starts_with('`') {
        return quoted_ident(cx, j);
    }
    match word(j) {
        Some((w, rest)) if !is_reserved(w) => {
            check_ident_len(cx, j, w.len())?;
            Ok((rest, w.to_owned()))
        }
        _ => cx.fail(j, Expected::Thing(label)),
    }
}

/// A path segment after `.`: any word (reserved ones too, as nothing else can follow a dot)
/// or a backtick-quoted name; no whitespace before it.
fn segment<'a>(cx: &Ctx<'a>, j: &'a str) -> Res<'a, String> {
    if j.starts_with('`') {
        return quoted_ident(cx, j);
    }
    match word(j) {
        Some((w, rest)) => {
            check_ident_len(cx, j, w.len())?;
            Ok((rest, w.to_owned()))
        }
        None => cx.fail(j, Expected::Thing("a field name after `.`")),
    }
}

fn check_ident_len(cx: &Ctx<'_>, at: &str, len: usize) -> Result<(), nom::Err<PErr>> {
    if len > IDENTIFIER_BYTES_MAX {
        return Err(cx.too_large(at, "a name", format!("{IDENTIFIER_BYTES_MAX} bytes")));
    }
    Ok(())
}

/// `` `name` ``, a doubled backtick standing for one. `j` starts at the opening backtick.
fn quoted_ident<'a>(cx: &Ctx<'a>, j: &'a str) -> Res<'a, String> {
    let mut out = String::new();
    let mut rest = j.get(1..).unwrap_or("");
    loop {
        let Some(p) = rest.find('`') else {
            return Err(cx.syntax(
                j,
                "a closing backtick for this name",
                Some("end of input".into()),
            ));
        };
        out.push_str(rest.get(..p).unwrap_or(""));
        rest = rest.get(p + 1..).unwrap_or("");
        match rest.strip_prefix('`') {
            Some(after) => {
                out.push('`');
                rest = after;
            }
            None => break,
        }
        check_ident_len(cx, j, out.len())?;
    }
    check_ident_len(cx, j, out.len())?;
    if out.is_empty() {
        return Err(cx.syntax(
            j,
            "a name (backticks with nothing between them name nothing)",
            None,
        ));
    }
    Ok((rest, out))
}

/// A field path `a.b.c`: a name, then `.name` segments with no whitespace around the dots.
pub(super) fn path<'a>(cx: &Ctx<'a>, i: &'a str, label: &'static str) -> Res<'a, Path> {
    let (mut i, first) = ident(cx, i, label)?;
    let mut segments = vec![first];
    while let Some(j) = i.strip_prefix('.') {
        let (rest, s) = segment(cx, j)?;
        segments.push(s);
        i = rest;
    }
    Ok((i, Path(segments)))
}

/// A string literal in `"..."` or `'...'` (after whitespace).
pub(super) fn string<'a>(cx: &Ctx<'a>, i: &'a str, label: &'static str) -> Res<'a, String> {
    let j = ws(cx, i)?;
    if j.starts_with(['"', '\'']) {
        lex_string(cx, j, false)
    } else {
        cx.fail(j, Expected::Thing(label))
    }
}

/// The escapes both string forms accept, for messages.
const ESCAPES: &str = "an escape sequence (\\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)";
const JSON_ESCAPES: &str = "a JSON escape sequence (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)";

/// A quoted string starting at `j` (at the quote). DriftQL strings (`json == false`) use `"`
/// or `'`, may hold any character, and in `'...'` a doubled `''` is one quote; JSON strings use
/// `"` only and no raw control characters. Both take the JSON backslash escapes; DriftQL
/// strings also `\'`.
pub(super) fn lex_string<'a>(cx: &Ctx<'a>, j: &'a str, json: bool) -> Res<'a, String> {
    let mut chars = j.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('"' | '\''))) if !json || q == '"' => q,
        _ => return cx.fail(j, Expected::Thing("a string")),
    };
    let mut out = String::new();
    while let Some((at, c)) = chars.next() {
        if !json && out.len() > STRING_BYTES_MAX {
            return Err(cx.too_large(j, "a string literal", format!("{STRING_BYTES_MAX} bytes")));
        }
        let here = j.get(at..).unwrap_or("");
        match c {
            c if c == quote => {
                let after = j.get(at + 1..).unwrap_or("");
                if !json && quote == '\'' && after.starts_with('\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                return Ok((after, out));
            }
            '\\' => {
                let (consumed, ch) = escape(cx, here, json)?;
                out.push(ch);
                // Skip what the escape used after the backslash.
                for _ in 1..consumed {
                    chars.next();
                }
            }
            c if json && c < ' ' => {
                return Err(cx.syntax(
                    here,
                    "a JSON string character (write control characters as escapes, like \\n)",
                    Some(format!("the control character U+{:04X}", u32::from(c))),
                ));
            }
            c => out.push(c),
        }
    }
    if !json && out.len() > STRING_BYTES_MAX {
        return Err(cx.too_large(j, "a string literal", format!("{STRING_BYTES_MAX} bytes")));
    }
    Err(cx.syntax(
        j,
        format!("`{quote}` to end the string that starts here"),
        Some("end of input".into()),
    ))
}

/// The escape at `s` (which starts with `\`): how many characters it uses and what it means.
fn escape(cx: &Ctx<'_>, s: &str, json: bool) -> Result<(usize, char), nom::Err<PErr>> {
    let mut chars = s.chars().skip(1);
    let shown = |n: usize| Some(format!("`{}`", s.chars().take(n).collect::<String>()));
    let expected = if json { JSON_ESCAPES } else { ESCAPES };
    let simple = match chars.next() {
        Some('"') => '"',
        Some('\'') if !json => '\'',
        Some('\\') => '\\',
        Some('/') => '/',
        Some('b') => '\u{8}',
        Some('f') => '\u{c}',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('t') => '\t',
        Some('u') => {
            let high = hex4(s.get(2..))
                .ok_or_else(|| cx.syntax(s, "four hexadecimal digits after \\u", shown(6)))?;
            if (0xDC00..=0xDFFF).contains(&high) {
                return Err(cx.syntax(
                    s,
                    "a Unicode escape that is not a lone low surrogate (\\uDC00 to \\uDFFF)",
                    shown(6),
                ));
            }
            if !(0xD800..=0xDBFF).contains(&high) {
                let c = char::from_u32(high)
                    .ok_or_else(|| cx.syntax(s, "a Unicode scalar value", shown(6)))?;
                return Ok((6, c));
            }
            let low = s
                .get(6..)
                .and_then(|r| r.strip_prefix("\\u"))
                .and_then(|r| hex4(Some(r)))
                .filter(|low| (0xDC00..=0xDFFF).contains(low))
                .ok_or_else(|| {
                    cx.syntax(
                        s,
                        "a low surrogate escape (\\uDC00 to \\uDFFF) after a high surrogate",
                        shown(12),
                    )
                })?;
            let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                .ok_or_else(|| cx.syntax(s, "a Unicode scalar value", shown(12)))?;
            return Ok((12, c));
        }
        _ => return Err(cx.syntax(s, expected, shown(2))),
    };
    Ok((2, simple))
}

/// Four hex digits at the start of `s`.
fn hex4(s: Option<&str>) -> Option<u32> {
    let digits = s?.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// The text of a number at `j`: digits, an optional `.digits` fraction and an optional
/// exponent. Whether it has a fraction or exponent.
fn number_text(j: &str) -> Option<(&str, &str, bool)> {
    let frac = (char::<&str, PErr>('.'), digit1);
    let exp = (one_of("eE"), opt(one_of("+-")), digit1);
    let (rest, text) = recognize((digit1::<&str, PErr>, opt(frac), opt(exp))).parse(j).ok()?;
    let is_float = text.contains(['.', 'e', 'E']);
    Some((rest, text, is_float))
}

/// The text of an ill-formed number starting at `j`, for messages.
fn bad_number(j: &str) -> String {
    let end = j
        .char_indices()
        .find(|&(_, c)| !(is_ident_char(c) || c == '.'))
        .map_or(j.len(), |(p, _)| p);
    format!("`{}`", j.get(..end).unwrap_or(j))
}

/// A numeric literal at `j` (after whitespace). With `minus`, the literal is negated: `minus`
/// is where the `-` was, for messages. Integers must fit i64; floats must be finite.
pub(super) fn number<'a>(cx: &Ctx<'a>, j: &'a str, minus: Option<&'a str>) -> Res<'a, Literal> {
    let Some((rest, text, is_float)) = number_text(j) else {
        return cx.fail(j, Expected::Thing("a number"));
    };
    if rest.starts_with(|c: char| is_ident_char(c) || c == '.') {
        return Err(cx.syntax(
            j,
            "a number (digits, then an optional fraction and exponent)",
            Some(bad_number(j)),
        ));
    }
    let at = minus.unwrap_or(j);
    let sign = if minus.is_some() { "-" } else { "" };
    if is_float {
        let value: f64 = text.parse().map_err(|_| cx.syntax(at, "a number", None))?;
        if !value.is_finite() {
            return Err(cx.syntax(
                at,
                "a finite number (floats are 64-bit, up to about 1.8e308)",
                Some(format!("`{sign}{text}`")),
            ));
        }
        Ok((rest, Literal::Float(if minus.is_some() { -value } else { value })))
    } else {
        let value: i64 = format!("{sign}{text}").parse().map_err(|_| {
            cx.syntax(
                at,
                "an integer from -9223372036854775808 to 9223372036854775807 (write a larger \
                 number with a fraction or an exponent to make it a float)",
                Some(format!("`{sign}{text}`")),
            )
        })?;
        Ok((rest, Literal::Int(value)))
    }
}

/// A whole number (for `LIMIT`, `OFFSET`, `@seq:`) at `i`, after whitespace.
pub(super) fn unsigned<'a>(cx: &Ctx<'a>, i: &'a str, label: &'static str) -> Res<'a, u64> {
    let j = ws(cx, i)?;
    unsigned_here(cx, j, label)
}

/// A whole number exactly at `j`.
pub(super) fn unsigned_here<'a>(cx: &Ctx<'a>, j: &'a str, label: &'static str) -> Res<'a, u64> {
    let digits: Res<'a, &'a str> = digit1(j);
    let Ok((rest, text)) = digits else {
        return cx.fail(j, Expected::Thing(label));
    };
    if rest.starts_with(|c: char| is_ident_char(c) || c == '.') {
        return Err(cx.syntax(j, label, Some(bad_number(j))));
    }
    let value = text.parse().map_err(|_| {
        cx.syntax(j, "a whole number from 0 to 18446744073709551615", Some(format!("`{text}`")))
    })?;
    Ok((rest, value))
}

/// A literal: a string, a number with an optional leading `-`, `TRUE`, `FALSE` or `NULL`.
pub(super) fn literal<'a>(cx: &Ctx<'a>, i: &'a str, label: &'static str) -> Res<'a, Literal> {
    let j = ws(cx, i)?;
    if let Some(after) = j.strip_prefix('-') {
        let k = ws(cx, after)?;
        if k.starts_with(|c: char| c.is_ascii_digit()) {
            return number(cx, k, Some(j));
        }
        return cx.fail(j, Expected::Thing(label));
    }
    if j.starts_with(|c: char| c.is_ascii_digit()) {
        return number(cx, j, None);
    }
    if j.starts_with(['"', '\'']) {
        let (rest, s) = lex_string(cx, j, false)?;
        return Ok((rest, Literal::String(s)));
    }
    match word(j) {
        Some((w, rest)) if w.eq_ignore_ascii_case("NULL") => Ok((rest, Literal::Null)),
        Some((w, rest)) if w.eq_ignore_ascii_case("TRUE") => Ok((rest, Literal::Bool(true))),
        Some((w, rest)) if w.eq_ignore_ascii_case("FALSE") => Ok((rest, Literal::Bool(false))),
        _ => cx.fail(j, Expected::Thing(label)),
    }
}
