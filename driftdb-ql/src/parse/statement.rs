//! Statements: dispatch on the first word, then one parser per statement form.

use driftdb_core::IsolationLevel;

use super::context::{Ctx, Expected, Res};
use super::document::{documents, object};
use super::expr::expr;
use super::lexical::{
    ident, kw, lex_string, literal, path, phrase, string, sym, unsigned, word, ws,
};
use super::select::{as_of_clause, as_of_point, comma_list, optional, select_body};
use crate::ast::{AlterAction, Literal, Statement, Target};

/// What may start a statement, for the error when nothing does.
const STATEMENT_START: &str = "a statement (SELECT, INSERT, UPSERT, PATCH, SOFT DELETE, CREATE, \
                               DROP, ALTER, SHOW, DESCRIBE, BEGIN, START, COMMIT, ROLLBACK, \
                               SNAPSHOT, COMPACT, BACKUP, ANALYZE or EXPLAIN)";

const TABLE: &str = "a table name";

/// One statement (no `;`).
pub(super) fn statement<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    let j = ws(cx, i)?;
    let Some((first, i)) = word(j) else {
        return cx.fail(j, Expected::Thing(STATEMENT_START));
    };
    match first.to_ascii_uppercase().as_str() {
        "SELECT" => {
            let (i, s) = select_body(cx, i)?;
            Ok((i, Statement::Select(Box::new(s))))
        }
        "EXPLAIN" => {
            let (i, ()) = kw(cx, i, "SELECT")?;
            let (i, s) = select_body(cx, i)?;
            Ok((i, Statement::Explain(Box::new(s))))
        }
        "INSERT" => insert(cx, i, false),
        "UPSERT" => insert(cx, i, true),
        "PATCH" => patch(cx, i),
        "SOFT" => soft_delete(cx, i),
        "CREATE" => create(cx, i),
        "DROP" => drop(cx, i),
        "ALTER" => alter(cx, i),
        "SHOW" => show(cx, i),
        "DESCRIBE" => {
            let (i, table) = ident(cx, i, TABLE)?;
            let (i, as_of) = opt_as_of(cx, i)?;
            Ok((i, Statement::Describe { table, as_of }))
        }
        "BEGIN" => {
            let (i, ()) = transaction_word(cx, i)?;
            begin_rest(cx, i)
        }
        "START" => {
            let (i, ()) = kw(cx, i, "TRANSACTION")?;
            begin_rest(cx, i)
        }
        "COMMIT" => Ok((transaction_word(cx, i)?.0, Statement::Commit)),
        "ROLLBACK" => Ok((transaction_word(cx, i)?.0, Statement::Rollback)),
        "SNAPSHOT" => {
            let (i, table) = ident(cx, i, TABLE)?;
            Ok((i, Statement::Snapshot { table }))
        }
        "COMPACT" => {
            let (i, table) = ident(cx, i, TABLE)?;
            Ok((i, Statement::Compact { table }))
        }
        "BACKUP" => {
            let (i, ()) = kw(cx, i, "TO")?;
            let (i, path) = string(cx, i, "the backup directory (a string)")?;
            Ok((i, Statement::Backup { path }))
        }
        "ANALYZE" => {
            // `ANALYZE TABLE t`, or `ANALYZE t` (also for a table named `table`).
            let (i, table) = match optional(kw(cx, i, "TABLE"))? {
                Some((rest, ())) => match optional(ident(cx, rest, TABLE))? {
                    Some(found) => found,
                    None => ident(cx, i, TABLE)?,
                },
                None => ident(cx, i, TABLE)?,
            };
            Ok((i, Statement::Analyze { table }))
        }
        _ => cx.fail(j, Expected::Thing(STATEMENT_START)),
    }
}

/// `[AS OF point | FOR SYSTEM_TIME AS OF point]`.
fn opt_as_of<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Option<driftdb_core::AsOf>> {
    Ok(match optional(as_of_clause(cx, i))? {
        Some((rest, point)) => (rest, Some(point)),
        None => (i, None),
    })
}

/// An optional `TRANSACTION` or `WORK` after BEGIN, COMMIT or ROLLBACK.
fn transaction_word<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, ()> {
    for w in ["TRANSACTION", "WORK"] {
        if let Some((rest, ())) = optional(kw(cx, i, w))? {
            return Ok((rest, ()));
        }
    }
    Ok((i, ()))
}

/// `[ISOLATION LEVEL level]` after `BEGIN [TRANSACTION]` / `START TRANSACTION`.
fn begin_rest<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    let Some((i, ())) = optional(phrase(cx, i, "ISOLATION LEVEL"))? else {
        return Ok((i, Statement::Begin { isolation: None }));
    };
    let levels = [
        ("READ COMMITTED", IsolationLevel::ReadCommitted),
        ("REPEATABLE READ", IsolationLevel::RepeatableRead),
        ("SERIALIZABLE", IsolationLevel::Serializable),
    ];
    for (words, level) in levels {
        if let Some((rest, ())) = optional(phrase(cx, i, words))? {
            return Ok((rest, Statement::Begin { isolation: Some(level) }));
        }
    }
    cx.fail(ws(cx, i)?, Expected::Thing("an isolation level"))
}

/// `INTO t {doc}` or `INTO t [{doc}, ...]` after INSERT / UPSERT.
fn insert<'a>(cx: &Ctx<'a>, i: &'a str, upsert: bool) -> Res<'a, Statement> {
    let (i, ()) = kw(cx, i, "INTO")?;
    let (i, table) = ident(cx, i, TABLE)?;
    let (i, documents) = documents(cx, i)?;
    Ok((i, Statement::Insert { table, documents, upsert }))
}

/// `KEY k` with a string or integer key.
fn key<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Literal> {
    const WHAT: &str = "a key (a string or an integer)";
    let j = ws(cx, i)?;
    let (rest, lit) = literal(cx, j, WHAT)?;
    match lit {
        Literal::String(_) | Literal::Int(_) => Ok((rest, lit)),
        _ => Err(cx.syntax(j, WHAT, None)),
    }
}

/// `t KEY k SET {patch}` or `t SET {patch} WHERE e` after PATCH.
fn patch<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    const PATCH: &str = "a JSON object (the patch)";
    let (i, table) = ident(cx, i, TABLE)?;
    if let Some((i, ())) = optional(kw(cx, i, "KEY"))? {
        let (i, k) = key(cx, i)?;
        let (i, ()) = kw(cx, i, "SET")?;
        let (i, patch) = object(cx, i, PATCH)?;
        return Ok((i, Statement::Patch { table, target: Target::Key(k), patch }));
    }
    let (i, ()) = kw(cx, i, "SET")?;
    let (i, patch) = object(cx, i, PATCH)?;
    let (i, ()) = kw(cx, i, "WHERE")?;
    let (i, e) = expr(cx, i)?;
    Ok((i, Statement::Patch { table, target: Target::Where(e), patch }))
}

/// `DELETE FROM t (KEY k | WHERE e)` after SOFT.
fn soft_delete<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    let (i, ()) = phrase(cx, i, "DELETE FROM")?;
    let (i, table) = ident(cx, i, TABLE)?;
    if let Some((i, ())) = optional(kw(cx, i, "KEY"))? {
        let (i, k) = key(cx, i)?;
        return Ok((i, Statement::SoftDelete { table, target: Target::Key(k) }));
    }
    let (i, ()) = kw(cx, i, "WHERE")?;
    let (i, e) = expr(cx, i)?;
    Ok((i, Statement::SoftDelete { table, target: Target::Where(e) }))
}

/// `( path, ... )`.
fn field_list<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Vec<crate::ast::Path>> {
    let (i, ()) = sym(cx, i, "(")?;
    let (i, fields) = comma_list(cx, i, |cx, i| path(cx, i, "a field name"))?;
    let (i, ()) = sym(cx, i, ")")?;
    Ok((i, fields))
}

/// `( path )`: the one field of a unique index.
fn unique_field<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, crate::ast::Path> {
    let (i, ()) = sym(cx, i, "(")?;
    let (i, field) = path(cx, i, "a field name")?;
    if let Some((_, ())) = optional(sym(cx, i, ","))? {
        return Err(cx.syntax(i, "`)` (a unique index has one field)", None));
    }
    let (i, ()) = sym(cx, i, ")")?;
    Ok((i, field))
}

/// `TABLE t (pk=id, INDEX(a, b), UNIQUE(c), ...)`, `INDEX ON t(a, b)` or
/// `UNIQUE INDEX ON t(a)` after CREATE.
fn create<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    if let Some((i, ())) = optional(phrase(cx, i, "UNIQUE INDEX"))? {
        let (i, ()) = kw(cx, i, "ON")?;
        let (i, table) = ident(cx, i, TABLE)?;
        let (i, field) = unique_field(cx, i)?;
        return Ok((i, Statement::CreateIndex { table, fields: vec![field], unique: true }));
    }
    if let Some((i, ())) = optional(kw(cx, i, "INDEX"))? {
        let (i, ()) = kw(cx, i, "ON")?;
        let (i, table) = ident(cx, i, TABLE)?;
        let (i, fields) = field_list(cx, i)?;
        return Ok((i, Statement::CreateIndex { table, fields, unique: false }));
    }
    let (i, ()) = kw(cx, i, "TABLE")?;
    let (i, table) = ident(cx, i, TABLE)?;
    let (i, ()) = sym(cx, i, "(")?;
    let (i, ()) = kw(cx, i, "pk")?;
    let (i, ()) = sym(cx, i, "=")?;
    let (mut i, primary_key) = ident(cx, i, "the primary key field")?;
    let mut indexes = Vec::new();
    let mut unique = Vec::new();
    while let Some((rest, ())) = optional(sym(cx, i, ","))? {
        if let Some((rest, ())) = optional(kw(cx, rest, "UNIQUE"))? {
            let (rest, field) = unique_field(cx, rest)?;
            unique.push(field);
            i = rest;
            continue;
        }
        let (rest, ()) = kw(cx, rest, "INDEX")?;
        let (rest, fields) = field_list(cx, rest)?;
        indexes.push(fields);
        i = rest;
    }
    let (i, ()) = sym(cx, i, ")")?;
    Ok((i, Statement::CreateTable { table, primary_key, indexes, unique }))
}

/// `TABLE [IF EXISTS] t` or `INDEX ON t(a, b)` after DROP.
fn drop<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    if let Some((i, ())) = optional(kw(cx, i, "INDEX"))? {
        let (i, ()) = kw(cx, i, "ON")?;
        let (i, table) = ident(cx, i, TABLE)?;
        let (i, fields) = field_list(cx, i)?;
        return Ok((i, Statement::DropIndex { table, fields }));
    }
    let (i, ()) = kw(cx, i, "TABLE")?;
    // `IF EXISTS t`, or a table named `if`.
    if let Some((rest, ())) = optional(phrase(cx, i, "IF EXISTS"))?
        && let Some((rest, table)) = optional(ident(cx, rest, TABLE))?
    {
        return Ok((rest, Statement::DropTable { table, if_exists: true }));
    }
    let (i, table) = ident(cx, i, TABLE)?;
    Ok((i, Statement::DropTable { table, if_exists: false }))
}

/// `TABLE t ADD COLUMN c [DEFAULT literal]`, `TABLE t DROP COLUMN c` or
/// `TABLE t SET SNAPSHOT EVERY n`, `TABLE t SET RETENTION 'n unit'` or
/// `TABLE t SET RETENTION NONE` after ALTER.
fn alter<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    let (i, ()) = kw(cx, i, "TABLE")?;
    let (i, table) = ident(cx, i, TABLE)?;
    if let Some((i, ())) = optional(phrase(cx, i, "ADD COLUMN"))? {
        let (i, name) = ident(cx, i, "a column name")?;
        let (i, default) = match optional(kw(cx, i, "DEFAULT"))? {
            Some((i, ())) => {
                let (i, lit) = literal(cx, i, "a literal (the default value)")?;
                (i, Some(lit))
            }
            None => (i, None),
        };
        return Ok((
            i,
            Statement::AlterTable { table, action: AlterAction::AddColumn { name, default } },
        ));
    }
    if let Some((i, ())) = optional(phrase(cx, i, "SET SNAPSHOT EVERY"))? {
        let (i, every) = unsigned(cx, i, "a number of events")?;
        return Ok((
            i,
            Statement::AlterTable { table, action: AlterAction::SetSnapshotEvery { every } },
        ));
    }
    if let Some((i, ())) = optional(phrase(cx, i, "SET RETENTION"))? {
        const WHAT: &str = "a duration in quotes like '90 days' (seconds, minutes, hours, days \
                            or weeks), or NONE";
        let j = ws(cx, i)?;
        if let Some((w, rest)) = word(j)
            && w.eq_ignore_ascii_case("NONE")
        {
            return Ok((
                rest,
                Statement::AlterTable { table, action: AlterAction::SetRetention { ms: None } },
            ));
        }
        if !j.starts_with(['"', '\'']) {
            return cx.fail(j, Expected::Thing(WHAT));
        }
        let (rest, text) = lex_string(cx, j, false)?;
        let ms = driftdb_core::parse_retention(&text)
            .map_err(|_| cx.syntax(j, WHAT, Some(format!("'{text}'"))))?;
        return Ok((
            rest,
            Statement::AlterTable { table, action: AlterAction::SetRetention { ms: Some(ms) } },
        ));
    }
    let (i, ()) = phrase(cx, i, "DROP COLUMN")?;
    let (i, name) = ident(cx, i, "a column name")?;
    Ok((i, Statement::AlterTable { table, action: AlterAction::DropColumn { name } }))
}

/// `TABLES [AS OF point]` or `DRIFT t KEY k [BETWEEN point AND point]` after SHOW.
fn show<'a>(cx: &Ctx<'a>, i: &'a str) -> Res<'a, Statement> {
    if let Some((i, ())) = optional(kw(cx, i, "TABLES"))? {
        let (i, as_of) = opt_as_of(cx, i)?;
        return Ok((i, Statement::ShowTables { as_of }));
    }
    let (i, ()) = kw(cx, i, "DRIFT")?;
    let (i, table) = ident(cx, i, TABLE)?;
    let (i, ()) = kw(cx, i, "KEY")?;
    let (i, key) = key(cx, i)?;
    let Some((i, ())) = optional(kw(cx, i, "BETWEEN"))? else {
        return Ok((i, Statement::ShowDrift { table, key, range: None }));
    };
    let (i, from) = as_of_point(cx, i)?;
    let (i, ()) = kw(cx, i, "AND")?;
    let (i, to) = as_of_point(cx, i)?;
    Ok((i, Statement::ShowDrift { table, key, range: Some((from, to)) }))
}
