//! `SELECT` and the `AS OF` points of time travel.

use driftdb_core::AsOf;

use super::context::{Ctx, Expected, PErr, Res};
use super::expr::expr;
use super::lexical::{
    ident, kw, lex_string, phrase, sym, try_kw, try_sym, unsigned, unsigned_here, word, ws,
};
use crate::ast::{OrderBy, Projection, Select, SelectItem};

/// `Ok(None)` for a recoverable failure of an optional part, the error otherwise.
pub(super) fn optional<'a, T>(r: Res<'a, T>) -> Result<Option<(&'a str, T)>, nom::Err<PErr>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(nom::Err::Error(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The rest of a `SELECT` after the keyword.
pub(super) fn select_body<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Select> {
    let (i, projection) = projection(cx, i)?;
    let (i, ()) = kw(cx, i, "FROM")?;
    let (mut i, table) = ident(cx, i, "a table name")?;
    let mut as_of = None;
    if let Some((rest, point)) = optional(as_of_clause(cx, i))? {
        as_of = Some(point);
        i = rest;
    }
    let mut filter = None;
    if let Some((rest, ())) = optional(kw(cx, i, "WHERE"))? {
        let (rest, e) = expr(cx, rest)?;
        filter = Some(e);
        i = rest;
    }
    let mut group_by = Vec::new();
    if let Some((rest, ())) = optional(phrase(cx, i, "GROUP BY"))? {
        let (rest, list) = comma_list(cx, rest, |cx, i| expr(cx, i))?;
        group_by = list;
        i = rest;
    }
    let mut having = None;
    if let Some((rest, ())) = optional(kw(cx, i, "HAVING"))? {
        let (rest, e) = expr(cx, rest)?;
        having = Some(e);
        i = rest;
    }
    let mut order_by = Vec::new();
    if let Some((rest, ())) = optional(phrase(cx, i, "ORDER BY"))? {
        let (rest, list) = comma_list(cx, rest, order_item)?;
        order_by = list;
        i = rest;
    }
    let mut limit = None;
    if let Some((rest, ())) = optional(kw(cx, i, "LIMIT"))? {
        let (rest, n) = unsigned(cx, rest, "a row count (a whole number)")?;
        limit = Some(n);
        i = rest;
    }
    let mut offset = None;
    if let Some((rest, ())) = optional(kw(cx, i, "OFFSET"))? {
        let (rest, n) = unsigned(cx, rest, "a row count (a whole number)")?;
        offset = Some(n);
        i = rest;
    }
    let j = ws(cx, i)?;
    if let Some((rest, point)) = optional(as_of_clause(cx, i))? {
        if as_of.is_some() {
            return Err(cx.syntax(
                j,
                "end of the statement (this SELECT has an AS OF after its table name already)",
                None,
            ));
        }
        as_of = Some(point);
        i = rest;
    }
    let select =
        Select { projection, table, filter, group_by, having, order_by, limit, offset, as_of };
    Ok((i, select))
}

/// `*` or `item, ...`.
fn projection<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Projection> {
    if let Some(rest) = try_sym(cx, i, "*")? {
        return Ok((rest, Projection::All));
    }
    cx.record(ws(cx, i)?, Expected::Token("*"));
    let (rest, items) = comma_list(cx, i, select_item)?;
    Ok((rest, Projection::Items(items)))
}

/// `expr [AS alias]`.
fn select_item<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, SelectItem> {
    let (i, expr) = expr(cx, i)?;
    match optional(kw(cx, i, "AS"))? {
        Some((rest, ())) => {
            let (rest, alias) = ident(cx, rest, "a column alias")?;
            Ok((rest, SelectItem { expr, alias: Some(alias) }))
        }
        None => Ok((i, SelectItem { expr, alias: None })),
    }
}

/// `expr [ASC | DESC]`.
fn order_item<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, OrderBy> {
    let (i, expr) = expr(cx, i)?;
    if let Some(rest) = try_kw(cx, i, "DESC")? {
        return Ok((rest, OrderBy { expr, descending: true }));
    }
    if let Some(rest) = try_kw(cx, i, "ASC")? {
        return Ok((rest, OrderBy { expr, descending: false }));
    }
    let j = ws(cx, i)?;
    cx.record(j, Expected::Token("ASC"));
    cx.record(j, Expected::Token("DESC"));
    Ok((i, OrderBy { expr, descending: false }))
}

/// `item (, item)*`.
pub(super) fn comma_list<'a, T>(
    cx: &Ctx<'a>,
    i: &'a str,
    mut item: impl FnMut(&Ctx<'a>, &'a str) -> Res<'a, T>,
) -> Res<'a, Vec<T>> {
    let (mut i, first) = item(cx, i)?;
    let mut items = vec![first];
    while let Some((rest, ())) = optional(sym(cx, i, ","))? {
        let (rest, next) = item(cx, rest)?;
        items.push(next);
        i = rest;
    }
    Ok((i, items))
}

/// `AS OF point` or `FOR SYSTEM_TIME AS OF point`.
pub(super) fn as_of_clause<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, AsOf> {
    let i = match optional(phrase(cx, i, "AS OF"))? {
        Some((rest, ())) => rest,
        None => phrase(cx, i, "FOR SYSTEM_TIME AS OF")?.0,
    };
    as_of_point(cx, i)
}

/// A moment: `@seq:N`, `NOW`, or a string holding `@seq:N`, `now` or an RFC 3339 time.
pub(super) fn as_of_point<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, AsOf> {
    const WHAT: &str = "`@seq:N`, `NOW`, or a time in quotes like '2025-01-01T00:00:00Z'";
    let j = ws(cx, i)?;
    if let Some(after_at) = j.strip_prefix('@') {
        let seq = match word(after_at) {
            Some((w, rest)) if w.eq_ignore_ascii_case("seq") => rest.strip_prefix(':'),
            _ => None,
        };
        let Some(digits) = seq else {
            return Err(cx.syntax(j, "a sequence number like @seq:42", None));
        };
        let (rest, n) =
            unsigned_here(cx, digits, "a sequence number (a whole number) after @seq:")?;
        return Ok((rest, AsOf::Seq(n)));
    }
    if j.starts_with(['"', '\'']) {
        let (rest, text) = lex_string(cx, j, false)?;
        return match crate::parse_as_of(&text) {
            Ok(point) => Ok((rest, point)),
            Err(crate::Error::Syntax { expected, .. }) => Err(cx.syntax(j, expected, None)),
            Err(_) => Err(cx.syntax(j, WHAT, None)),
        };
    }
    if let Some((w, rest)) = word(j)
        && w.eq_ignore_ascii_case("NOW")
    {
        return Ok((rest, AsOf::Now));
    }
    cx.fail(j, Expected::Thing(WHAT))
}
