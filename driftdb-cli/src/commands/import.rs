//! `driftdb import -d DIR --table T FILE`: load documents in transactions of `--batch` rows
//! (10,000 by default), each committed before the next begins, with a progress bar on a
//! terminal.
//!
//! The whole file is read and parsed first. A record that cannot be inserted (not an object,
//! no primary key, a key that is already live, too large, ...) stops the import: the
//! transaction holding it is rolled back, so **nothing of that batch is committed**, while
//! the batches before it stay committed. The error says which record (and line), and which
//! records were committed, so the rest can be loaded after fixing it.

use std::io::Read;
use std::path::Path;

use driftdb_core::{AsOf, Value};
use driftdb_ql::{Done, Outcome};

use crate::args::ImportArgs;
use crate::error::{CliError, CliResult};
use crate::output::Printer;
use crate::progress;
use crate::records::{self, read::Record};

/// Run `import`.
pub fn run(args: &ImportArgs, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    if args.batch == 0 {
        return Err(CliError::Usage("--batch must be at least 1".into()));
    }
    let stdin = args.file.as_os_str() == "-";
    let format = match (args.format, records::from_extension(&args.file)) {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => {
            return Err(CliError::Usage(format!(
                "cannot tell the format of {} from its extension: pass --format json, ndjson or csv",
                args.file.display()
            )));
        }
    };
    let text = if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::io("read", Path::new("standard input"), e))?;
        text
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| CliError::io("read", &args.file, e))?
    };
    let db = super::open(&args.db.dir)?;
    if let Err(e) = db.read(AsOf::Now)?.schema(&args.table) {
        return Err(match e {
            driftdb_core::Error::NoSuchTable { .. } => CliError::Input {
                message: format!(
                    "table `{}` does not exist; create it first, e.g. driftdb sql -d {} -e 'CREATE TABLE {} (pk=id)'",
                    args.table,
                    args.db.dir.display(),
                    args.table
                ),
                line: None,
            },
            other => other.into(),
        });
    }
    let records = records::read::records(&text, format).map_err(|e| CliError::Input {
        message: format!("{}: {}; nothing was imported", args.file.display(), e.message),
        line: e.line,
    })?;
    let bar = progress::bar(Some(records.len() as u64), "importing", "rows");
    let mut committed_rows = 0usize;
    let mut last = None;
    let mut transactions = 0usize;
    for batch in records.chunks(args.batch) {
        let mut tx = db.begin();
        for record in batch {
            let inserted = match &record.doc {
                Ok(doc) => tx.insert(&args.table, doc.clone()).map_err(|e| {
                    let e = driftdb_ql::Error::from(e);
                    (e.kind(), e.message())
                }),
                Err(why) => Err(("invalid_input", why.clone())),
            };
            if let Err((kind, reason)) = inserted {
                drop(tx);
                bar.abandon();
                return Err(refused(
                    record,
                    batch,
                    committed_rows,
                    last.map(|(s, _)| s),
                    kind,
                    reason,
                ));
            }
        }
        let info = tx.commit()?;
        committed_rows += batch.len();
        transactions += 1;
        last = Some((info.seq, info.unix_ms));
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    db.close()?;
    let outcome = Outcome::Done(Done {
        statement: "IMPORT",
        message: format!(
            "imported {committed_rows} row(s) into {} in {transactions} transaction(s)",
            args.table
        ),
        committed: last,
        details: vec![
            ("table".into(), Value::String(args.table.as_str().into())),
            ("rows".into(), Value::Int(committed_rows as i64)),
            ("transactions".into(), Value::Int(transactions as i64)),
            ("format".into(), Value::String(records::name(format).into())),
        ],
    });
    printer.outcome(&outcome).map_err(|e| CliError::io("write", Path::new("standard output"), e))
}

fn refused(
    record: &Record,
    batch: &[Record],
    committed: usize,
    last_seq: Option<u64>,
    kind: &'static str,
    reason: String,
) -> CliError {
    let at = match record.line {
        Some(line) => format!("record {} (line {line})", record.number),
        None => format!("record {}", record.number),
    };
    let first = batch.first().map_or(record.number, |r| r.number);
    let before = match (committed, last_seq) {
        (0, _) | (_, None) => "nothing was imported".to_string(),
        (n, Some(seq)) => format!("records 1 to {n} were committed before it (up to seq {seq})"),
    };
    CliError::Record {
        kind,
        line: record.line,
        message: format!(
            "{at} was refused: {reason}; its batch (records {first} to {}) was rolled back and {before}",
            batch.last().map_or(record.number, |r| r.number)
        ),
    }
}
