//! `driftdb init DIR` and `driftdb tables -d DIR [--as-of WHEN]`.

use std::path::Path;

use driftdb_core::{Database, Value};
use driftdb_ql::{Done, Outcome, Rows};

use crate::error::{CliError, CliResult};
use crate::output::Printer;

fn stdout_error(e: std::io::Error) -> CliError {
    CliError::io("write", Path::new("standard output"), e)
}

/// Run `init`: create an empty database (encrypted with `--encrypt`); refuse a directory that
/// is not empty.
pub fn init(dir: &Path, encrypt: bool, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    let key = match (encrypt, super::keys::key()?) {
        (true, None) => {
            return Err(CliError::Usage(
                "init --encrypt needs a key: set DRIFTDB_KEY to 64 hex characters or give \
                 --key-file FILE"
                    .into(),
            ));
        }
        (true, key) => key,
        (false, _) => None,
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| CliError::io("read", dir, e))?;
        if entries.next().is_some() {
            let what = if dir.join("CHECKPOINT").exists() {
                "it already holds a DriftDB database"
            } else {
                "it is not empty"
            };
            return Err(CliError::Input {
                message: format!(
                    "cannot create a database in {}: {what}; choose a new directory",
                    dir.display()
                ),
                line: None,
            });
        }
    }
    // An absolute path: the engine creates missing parent directories by walking up the path,
    // and a bare relative name like `mydata` has the empty path as its parent.
    let absolute = std::path::absolute(dir).map_err(|e| CliError::io("resolve", dir, e))?;
    let options = driftdb_core::Options { encryption_key: key, ..Default::default() };
    let db = Database::open_with(&absolute, options)?;
    let encrypted = if db.is_encrypted() { "an encrypted" } else { "an" };
    db.close()?;
    let outcome = Outcome::Done(Done {
        statement: "INIT",
        message: format!("initialized {encrypted} empty DriftDB database in {}", dir.display()),
        committed: None,
        details: vec![("database".into(), Value::String(dir.display().to_string().into()))],
    });
    printer.outcome(&outcome).map_err(stdout_error)
}

/// Run `tables`: the table names at a moment of history, as rows of one column.
pub fn tables(dir: &Path, as_of: &str, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    let at = driftdb_ql::parse_as_of(as_of)?;
    let db = super::open(dir)?;
    let snap = db.read(at)?;
    snap.check_all_retained().map_err(driftdb_ql::Error::from)?;
    let outcome = Outcome::Rows(Rows {
        columns: vec!["table".into()],
        rows: snap.tables().into_iter().map(|t| vec![Some(Value::String(t.into()))]).collect(),
        seq: snap.seq(),
    });
    printer.outcome(&outcome).map_err(stdout_error)
}
