//! `driftdb sql -d DIR [-e TEXT | -f FILE]`: run statements from the argument, a file, or
//! standard input, in order, stopping at the first that fails.
//!
//! Standard input is read as it arrives (not line by line: whatever the pipe delivers), and
//! every statement runs and prints its result as soon as its `;` has been read, so a program
//! can write one statement, wait for its acknowledgement, and write the next. A transaction
//! still open when the input ends is rolled back, with a warning on standard error.

use std::io::{Read, Write};
use std::path::Path;

use crate::args::SqlArgs;
use crate::error::{CliError, CliResult, warn};
use crate::output::Printer;
use crate::script::Runner;

/// Run `sql`.
pub fn run(args: &SqlArgs, printer: Printer<impl Write>) -> CliResult {
    let text = match (&args.execute, &args.file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => {
            Some(std::fs::read_to_string(path).map_err(|e| CliError::io("read", path, e))?)
        }
        (None, None) => None,
    };
    let db = super::open(&args.db.dir)?;
    let format = printer.format();
    let mut runner = Runner::new(&db, printer);
    let result = match text {
        Some(text) => runner.feed(&text).and_then(|_| runner.finish()).map(|_| ()),
        None => from_stdin(&mut runner),
    };
    match result {
        Ok(()) => {
            if let Some(line) = runner.open_transaction_line() {
                warn(
                    &format!(
                        "the transaction begun at line {line} was not committed; it was rolled back \
                         (end it with COMMIT; to keep its writes)"
                    ),
                    format,
                );
            }
            drop(runner);
            db.close()?;
            Ok(())
        }
        Err(mut e) => {
            if let CliError::Statement { rolled_back, .. } = &mut e {
                *rolled_back = runner.in_transaction();
            }
            Err(e)
        }
    }
}

/// Feed standard input to the runner as it arrives.
fn from_stdin(runner: &mut Runner<'_, impl Write>) -> CliResult {
    let stdin_path = Path::new("standard input");
    let mut stdin = std::io::stdin().lock();
    let mut bytes: Vec<u8> = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut offset = 0usize;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::io("read", stdin_path, e)),
        };
        bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
        let valid = match std::str::from_utf8(&bytes) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => return Err(not_utf8(offset + e.valid_up_to())),
        };
        let text: Vec<u8> = bytes.drain(..valid).collect();
        offset += valid;
        runner.feed(std::str::from_utf8(&text).map_err(|e| not_utf8(offset + e.valid_up_to()))?)?;
    }
    if !bytes.is_empty() {
        return Err(not_utf8(offset));
    }
    runner.finish().map(|_| ())
}

fn not_utf8(at: usize) -> CliError {
    CliError::Input {
        message: format!("standard input is not UTF-8 text (at byte {at})"),
        line: None,
    }
}
