//! Running DriftQL text: statements separated by `;`, each parsed, executed in one session,
//! and its result printed and flushed before the next one is read.
//!
//! Text is fed in pieces (a whole `-e` argument, a file, or whatever standard input has
//! delivered so far). [`driftdb_ql::next_statement_end`] finds where a complete statement ends
//! (a `;` outside strings, names and comments); each complete statement runs at once, so a
//! program piping statements in sees each acknowledgement as soon as that statement is done.
//! At the end of the input, text after the last `;` runs as a final statement.
//!
//! Positions in errors are in the whole input: the runner keeps the line and column where the
//! unread text starts, and parses each statement with the part of its first line before it
//! blanked out, so a caret lands under the right character.

use std::io::Write;
use std::time::Instant;

use driftdb_core::Database;
use driftdb_ql::ast::Statement;
use driftdb_ql::{Session, next_statement_end, parse_script};

use crate::error::{CliError, CliResult};
use crate::output::Printer;

/// Runs statements in one session and prints their results.
#[derive(Debug)]
pub struct Runner<'db, W: Write> {
    session: Session<'db>,
    /// Where results go.
    pub printer: Printer<W>,
    /// Text received and not run yet.
    pending: String,
    /// 1-based line where `pending` starts.
    line: usize,
    /// Characters before `pending` on that line.
    column: usize,
    /// Statements run so far.
    index: usize,
    /// The line of the `BEGIN` of the open transaction.
    begun_at: Option<usize>,
    /// Print how long each statement took.
    pub timing: bool,
}

impl<'db, W: Write> Runner<'db, W> {
    /// A runner with a fresh session over `db`.
    pub fn new(db: &'db Database, printer: Printer<W>) -> Self {
        Runner {
            session: Session::new(db),
            printer,
            pending: String::new(),
            line: 1,
            column: 0,
            index: 0,
            begun_at: None,
            timing: false,
        }
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }

    /// The session's view of the table names (for completion).
    pub fn tables(&self) -> Vec<String> {
        self.session.tables()
    }

    /// Whether text is waiting for the `;` that completes it (ignoring blanks and comments).
    pub fn has_pending(&self) -> bool {
        parse_script(&self.pending).map_or(true, |parsed| !parsed.is_empty())
    }

    /// Number lines from 1 again for the next statement (the shell counts each statement's
    /// lines from its start); text that is only blanks or comments is dropped.
    pub fn restart_position(&mut self) {
        if !self.has_pending() {
            self.pending.clear();
            self.line = 1;
            self.column = 0;
        }
    }

    /// Forget the text waiting for its `;` (the REPL's Ctrl-C).
    pub fn discard_pending(&mut self) {
        let consumed = std::mem::take(&mut self.pending);
        self.advance(&consumed);
    }

    /// Add text and run every statement it completes. Stops at the first failure; the text
    /// after the failed statement stays unread.
    pub fn feed(&mut self, text: &str) -> CliResult<usize> {
        self.pending.push_str(text);
        let mut ran = Ok(0);
        // Walk the pending text by offset and drop what ran once at the end, so a script of
        // many statements costs time in proportion to its length.
        let mut start = 0;
        while let Some(end) = self.pending.get(start..).and_then(next_statement_end) {
            let chunk = self.pending.get(start..start + end).unwrap_or_default().to_string();
            start += end;
            let result = self.run_chunk(&chunk);
            self.advance(&chunk);
            match result {
                Ok(n) => ran = ran.map(|total| total + n),
                Err(e) => {
                    ran = Err(e);
                    break;
                }
            }
        }
        self.pending.drain(..start);
        ran
    }

    /// Run what is left as a final statement (it needs no `;`).
    pub fn finish(&mut self) -> CliResult<usize> {
        let chunk = std::mem::take(&mut self.pending);
        let result = self.run_chunk(&chunk);
        self.advance(&chunk);
        result
    }

    /// The line where an open transaction began, if one is open.
    pub fn open_transaction_line(&self) -> Option<usize> {
        self.session.in_transaction().then_some(self.begun_at).flatten()
    }

    /// Move the position past `consumed`.
    fn advance(&mut self, consumed: &str) {
        match consumed.rfind('\n') {
            Some(at) => {
                self.line += consumed.matches('\n').count();
                self.column = consumed.get(at + 1..).unwrap_or_default().chars().count();
            }
            None => self.column += consumed.chars().count(),
        }
    }

    /// Parse and run the statements of `chunk` (usually one, ending in `;`).
    fn run_chunk(&mut self, chunk: &str) -> CliResult<usize> {
        let first_line = self.line;
        let parsed = parse_script(chunk).map_err(|error| {
            // Parse again with the part of the first line before the chunk blanked out, so the
            // error's column and caret are those of the whole line.
            let padded = format!("{}{chunk}", " ".repeat(self.column));
            let error = parse_script(&padded).err().unwrap_or(error);
            CliError::Statement {
                index: self.index + 1,
                line: first_line + statement_start(chunk),
                error: error.shifted(first_line - 1, 0),
                rolled_back: false,
            }
        })?;
        for p in &parsed {
            self.execute(&p.statement, first_line + p.line - 1)?;
        }
        Ok(parsed.len())
    }

    /// Run a statement built elsewhere (the shell's meta commands).
    pub fn run_statement(&mut self, statement: &Statement) -> CliResult {
        self.execute(statement, self.line)
    }

    /// Run one statement that starts at `line`, print its outcome, and track transactions.
    fn execute(&mut self, statement: &Statement, line: usize) -> CliResult {
        self.index += 1;
        let start = Instant::now();
        let outcome = self.session.execute(statement).map_err(|error| CliError::Statement {
            index: self.index,
            line,
            error,
            rolled_back: false,
        })?;
        let elapsed = start.elapsed();
        match statement {
            Statement::Begin { .. } => self.begun_at = Some(line),
            Statement::Commit | Statement::Rollback => self.begun_at = None,
            _ => {}
        }
        let stdout = std::path::Path::new("standard output");
        self.printer.outcome(&outcome).map_err(|e| CliError::io("write", stdout, e))?;
        if self.timing {
            let ms = elapsed.as_secs_f64() * 1000.0;
            self.printer
                .line(&format!("Time: {ms:.3} ms"))
                .map_err(|e| CliError::io("write", stdout, e))?;
        }
        Ok(())
    }
}

/// Lines before the first line of `chunk` that is not blank or a `--` comment (where a
/// statement that does not parse starts).
fn statement_start(chunk: &str) -> usize {
    chunk.lines().take_while(|l| l.trim().is_empty() || l.trim_start().starts_with("--")).count()
}
