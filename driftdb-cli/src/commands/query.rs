//! The commands that run one statement built from options: `select` (a SELECT composed as
//! text, so a mistake in `--where` is shown with a caret under the composed statement),
//! `drift` (SHOW DRIFT), `snapshot` (SNAPSHOT) and `compact` (COMPACT).

use std::io::Write;
use std::path::Path;

use driftdb_ql::ast::{Literal, Statement};
use driftdb_ql::{Outcome, Session, parse_statement};

use crate::args::{DriftArgs, KeyType, SelectArgs, TableArgs};
use crate::error::{CliError, CliResult};
use crate::output::Printer;

fn print(printer: &mut Printer<impl Write>, outcome: &Outcome) -> CliResult {
    printer.outcome(outcome).map_err(|e| CliError::io("write", Path::new("standard output"), e))
}

/// The SELECT statement `select` runs.
pub fn compose_select(args: &SelectArgs) -> String {
    let mut text = format!("SELECT {} FROM {}", args.fields.as_deref().unwrap_or("*"), args.table);
    if let Some(filter) = &args.filter {
        text.push_str(&format!(" WHERE {filter}"));
    }
    if let Some(order) = &args.order_by {
        text.push_str(&format!(" ORDER BY {order}"));
    }
    if let Some(limit) = args.limit {
        text.push_str(&format!(" LIMIT {limit}"));
    }
    if let Some(as_of) = &args.as_of {
        let quoted = as_of.replace('\\', "\\\\").replace('"', "\\\"");
        text.push_str(&format!(" AS OF \"{quoted}\""));
    }
    text
}

/// Run `select`.
pub fn select(args: &SelectArgs, printer: &mut Printer<impl Write>) -> CliResult {
    let text = compose_select(args);
    let statement = parse_statement(&text)?;
    let db = super::open(&args.db.dir)?;
    let outcome = Session::new(&db).execute(&statement)?;
    print(printer, &outcome)?;
    db.close()?;
    Ok(())
}

/// Run `drift`. With `--key-type auto` a key of digits is tried as an integer key first and,
/// when that key has no history, as a string key.
pub fn drift(args: &DriftArgs, printer: &mut Printer<impl Write>) -> CliResult {
    let int = args.key.parse::<i64>().ok();
    let keys: Vec<Literal> = match (args.key_type, int) {
        (KeyType::Int, None) => {
            return Err(CliError::Usage(format!(
                "--key {:?} is not an integer; leave out --key-type int for a string key",
                args.key
            )));
        }
        (KeyType::Int, Some(i)) => vec![Literal::Int(i)],
        (KeyType::String, _) | (KeyType::Auto, None) => vec![Literal::String(args.key.clone())],
        (KeyType::Auto, Some(i)) => vec![Literal::Int(i), Literal::String(args.key.clone())],
    };
    let db = super::open(&args.db.dir)?;
    let mut session = Session::new(&db);
    let mut outcome = None;
    for key in keys {
        let found = session.execute(&Statement::ShowDrift {
            table: args.table.clone(),
            key,
            range: None,
        })?;
        let empty = matches!(&found, Outcome::Rows(rows) if rows.rows.is_empty());
        outcome = Some(found);
        if !empty {
            break;
        }
    }
    if let Some(outcome) = outcome {
        print(printer, &outcome)?;
    }
    drop(session);
    db.close()?;
    Ok(())
}

/// Run `snapshot` or `compact` on one table.
pub fn maintain(args: &TableArgs, compact: bool, printer: &mut Printer<impl Write>) -> CliResult {
    let db = super::open(&args.db.dir)?;
    let table = args.table.clone();
    let statement =
        if compact { Statement::Compact { table } } else { Statement::Snapshot { table } };
    let outcome = Session::new(&db).execute(&statement)?;
    print(printer, &outcome)?;
    db.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::DbArgs;

    #[test]
    fn select_is_composed_in_clause_order() {
        let mut args = SelectArgs {
            db: DbArgs { dir: "x".into() },
            table: "users".into(),
            filter: None,
            fields: None,
            order_by: None,
            limit: None,
            as_of: None,
            output: Default::default(),
        };
        assert_eq!(compose_select(&args), "SELECT * FROM users");
        args.filter = Some("status=\"active\"".into());
        args.fields = Some("id,address.city".into());
        args.order_by = Some("id DESC".into());
        args.limit = Some(5);
        args.as_of = Some("@seq:100".into());
        let text = compose_select(&args);
        assert_eq!(
            text,
            "SELECT id,address.city FROM users WHERE status=\"active\" ORDER BY id DESC LIMIT 5 AS OF \"@seq:100\""
        );
    }
}
