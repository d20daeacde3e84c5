//! JSON documents (`INSERT`/`UPSERT` bodies, `PATCH ... SET` patches), read straight into
//! [`driftdb_core::Value`].
//!
//! Strict JSON (RFC 8259) inside the document: `"` strings with JSON escapes and no raw
//! control characters, `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?` numbers, `true`,
//! `false`, `null`, and only JSON whitespace (no comments). On top of JSON:
//!
//! - a number without fraction or exponent is an integer and must fit i64 (a larger one is an
//!   error, not silently a float); a float must be finite;
//! - a field name may appear once per object;
//! - objects and arrays nest at most [`DOCUMENT_DEPTH_MAX`] levels (the core's limit); the
//!   reader recurses once per level, so deeper input is an error before any deep recursion.
//!
//! Errors point at the offending character of the script.

use driftdb_core::limits::DOCUMENT_DEPTH_MAX;
use driftdb_core::{Map, Value};

use super::context::{Ctx, Expected, Res};
use super::lexical::{is_ident_char, lex_string, ws};

/// `{...}` or `[{...}, ...]`: the documents of an INSERT or UPSERT.
pub(super) fn documents<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Vec<Value>> {
    let j = ws(cx, i)?;
    if j.starts_with('{') {
        let (rest, doc) = value(cx, j, 0)?;
        return Ok((rest, vec![doc]));
    }
    let Some(mut i) = j.strip_prefix('[') else {
        return cx
            .fail(j, Expected::Thing("a JSON object or a list of JSON objects (the documents)"));
    };
    let mut docs = Vec::new();
    loop {
        let k = json_ws(i);
        if !k.starts_with('{') {
            return cx.fail(k, Expected::Thing("a JSON object (a document)"));
        }
        let (rest, doc) = value(cx, k, 0)?;
        docs.push(doc);
        let k = json_ws(rest);
        if let Some(rest) = k.strip_prefix(',') {
            i = rest;
        } else if let Some(rest) = k.strip_prefix(']') {
            return Ok((rest, docs));
        } else {
            cx.record(k, Expected::Token(","));
            return cx.fail(k, Expected::Token("]"));
        }
    }
}

/// `{...}`: one document (a PATCH's merge patch). `label` names it for errors.
pub(super) fn object<'a>(cx: &Ctx<'a>, i: &'a str, label: &'static str) -> Res<'a, Value> {
    let j = ws(cx, i)?;
    if !j.starts_with('{') {
        return cx.fail(j, Expected::Thing(label));
    }
    value(cx, j, 0)
}

/// JSON whitespace.
fn json_ws(i: &str) -> &str {
    i.trim_start_matches([' ', '\t', '\n', '\r'])
}

/// A JSON value at `j`; `level` is the number of objects and arrays around it.
fn value<'a>(cx: &Ctx<'a>, j: &'a str, level: usize) -> Res<'a, Value> {
    match j.chars().next() {
        Some('{') | Some('[') if level >= DOCUMENT_DEPTH_MAX => Err(cx.too_large(
            j,
            "document nesting",
            format!("{DOCUMENT_DEPTH_MAX} levels of objects and arrays"),
        )),
        Some('{') => members(cx, j.get(1..).unwrap_or(""), level + 1),
        Some('[') => elements(cx, j.get(1..).unwrap_or(""), level + 1),
        Some('"') => lex_string(cx, j, true).map(|(rest, s)| (rest, Value::String(s.into()))),
        Some(c) if c == '-' || c.is_ascii_digit() => json_number(cx, j),
        Some(_) => {
            for (text, v) in
                [("true", Value::Bool(true)), ("false", Value::Bool(false)), ("null", Value::Null)]
            {
                if let Some(rest) = j.strip_prefix(text)
                    && !rest.starts_with(is_ident_char)
                {
                    return Ok((rest, v));
                }
            }
            cx.fail(j, Expected::Thing("a JSON value"))
        }
        None => cx.fail(j, Expected::Thing("a JSON value")),
    }
}

/// The members of an object after its `{`.
fn members<'a>(cx: &Ctx<'a>, i: &'a str, level: usize) -> Res<'a, Value> {
    let mut map = Map::new();
    let mut i = json_ws(i);
    if let Some(rest) = i.strip_prefix('}') {
        return Ok((rest, Value::Map(map)));
    }
    loop {
        if !i.starts_with('"') {
            return cx.fail(i, Expected::Thing("a field name (a JSON string)"));
        }
        let at = i;
        let (rest, name) = lex_string(cx, i, true)?;
        let k = json_ws(rest);
        let Some(rest) = k.strip_prefix(':') else {
            return cx.fail(k, Expected::Token(":"));
        };
        let (rest, v) = value(cx, json_ws(rest), level)?;
        if map.contains_key(name.as_str()) {
            return Err(cx.syntax(at, "a field name not already used in this object", None));
        }
        map.insert(name.into(), v);
        let k = json_ws(rest);
        if let Some(rest) = k.strip_prefix(',') {
            i = json_ws(rest);
        } else if let Some(rest) = k.strip_prefix('}') {
            return Ok((rest, Value::Map(map)));
        } else {
            cx.record(k, Expected::Token(","));
            return cx.fail(k, Expected::Token("}"));
        }
    }
}

/// The elements of an array after its `[`.
fn elements<'a>(cx: &Ctx<'a>, i: &'a str, level: usize) -> Res<'a, Value> {
    let mut items = Vec::new();
    let mut i = json_ws(i);
    if let Some(rest) = i.strip_prefix(']') {
        return Ok((rest, Value::Array(items)));
    }
    loop {
        let (rest, v) = value(cx, i, level)?;
        items.push(v);
        let k = json_ws(rest);
        if let Some(rest) = k.strip_prefix(',') {
            i = json_ws(rest);
        } else if let Some(rest) = k.strip_prefix(']') {
            return Ok((rest, Value::Array(items)));
        } else {
            cx.record(k, Expected::Token(","));
            return cx.fail(k, Expected::Token("]"));
        }
    }
}

/// A JSON number at `j`.
fn json_number<'a>(cx: &Ctx<'a>, j: &'a str) -> Res<'a, Value> {
    let bytes = j.as_bytes();
    let digits_from = |start: usize| {
        bytes.get(start..).map_or(0, |b| b.iter().take_while(|b| b.is_ascii_digit()).count())
    };
    let mut end = usize::from(bytes.first() == Some(&b'-'));
    let int_digits = digits_from(end);
    let leading_zero = int_digits > 1 && bytes.get(end) == Some(&b'0');
    end += int_digits;
    let mut is_float = false;
    if bytes.get(end) == Some(&b'.') && digits_from(end + 1) > 0 {
        end += 1 + digits_from(end + 1);
        is_float = true;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exp_digits = digits_from(end + 1 + sign);
        if exp_digits > 0 {
            end += 1 + sign + exp_digits;
            is_float = true;
        }
    }
    let text = j.get(..end).unwrap_or(j);
    let rest = j.get(end..).unwrap_or("");
    if int_digits == 0 || leading_zero || rest.starts_with(|c: char| is_ident_char(c) || c == '.') {
        let shown = j
            .char_indices()
            .find(|&(p, c)| p > 0 && !(is_ident_char(c) || c == '.' || c == '+' || c == '-'))
            .map_or(j, |(p, _)| j.get(..p).unwrap_or(j));
        return Err(cx.syntax(
            j,
            "a JSON number (like 12, -3, 0.5 or 1e-9)",
            Some(format!("`{shown}`")),
        ));
    }
    if is_float {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((rest, Value::Float(f))),
            _ => Err(cx.syntax(
                j,
                "a finite number (floats are 64-bit, up to about 1.8e308)",
                Some(format!("`{text}`")),
            )),
        }
    } else {
        match text.parse::<i64>() {
            Ok(n) => Ok((rest, Value::Int(n))),
            Err(_) => Err(cx.syntax(
                j,
                "an integer from -9223372036854775808 to 9223372036854775807 (write a larger \
                 number with a fraction or an exponent to make it a float)",
                Some(format!("`{text}`")),
            )),
        }
    }
}
