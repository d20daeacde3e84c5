//! Printing results: a statement's [`Outcome`], or a command's report, in the output format
//! chosen with `--format` (default `table` when standard output is a terminal, `json`
//! otherwise).
//!
//! | format | a query | a write, DDL, maintenance | a report (stats, verify, inspect) |
//! |---|---|---|---|
//! | `json` | `Outcome::to_json()`: an array of row objects, one line | `Outcome::to_json()`, one line | the report's JSON object, one line |
//! | `ndjson` | one row object per line | the same object as `json` | one row object per line |
//! | `csv` | header, then one line per row | header and one line of the object's fields | header, then one line per row |
//! | `table` | aligned columns and a row count | one summary line (`INSERT 1 (seq 5)`) | aligned columns and notes |
//!
//! Every result is flushed as soon as it is printed, so a program reading the output sees
//! each statement's result when that statement is done.

mod cells;
mod csv_out;
mod table;

use std::io::{self, IsTerminal, Write};

use driftdb_ql::Outcome;

use crate::args::OutputFormat;
pub use cells::cell_text;

/// The format to use when none was asked for.
pub fn default_format() -> OutputFormat {
    if io::stdout().is_terminal() { OutputFormat::Table } else { OutputFormat::Json }
}

/// A command's result that is not a statement's: a list of rows for people and CSV, a JSON
/// value for programs, and notes printed under the table.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The JSON value printed with `--format json`.
    pub json: serde_json::Value,
    /// Column names of the rows.
    pub columns: Vec<String>,
    /// The rows (`None` cells are empty).
    pub rows: Vec<Vec<Option<serde_json::Value>>>,
    /// Lines printed after the table in `table` format.
    pub notes: Vec<String>,
}

/// Writes results to an output in one format.
#[derive(Debug)]
pub struct Printer<W: Write> {
    format: OutputFormat,
    out: W,
    /// Wrap wide tables to the terminal's width.
    terminal: bool,
}

impl Printer<io::Stdout> {
    /// A printer to standard output.
    pub fn stdout(format: OutputFormat) -> Self {
        Printer { format, out: io::stdout(), terminal: io::stdout().is_terminal() }
    }
}

impl<W: Write> Printer<W> {
    /// A printer to any writer (never treated as a terminal).
    #[cfg(test)]
    pub fn new(format: OutputFormat, out: W) -> Self {
        Printer { format, out, terminal: false }
    }

    /// The format in use.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Change the format (the REPL's `\format`).
    pub fn set_format(&mut self, format: OutputFormat) {
        self.format = format;
    }

    /// The writer, for tests.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Print one statement's outcome and flush.
    pub fn outcome(&mut self, outcome: &Outcome) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => writeln!(self.out, "{}", outcome.to_json())?,
            OutputFormat::Ndjson => match outcome {
                Outcome::Rows(rows) => {
                    if let serde_json::Value::Array(objects) = rows.to_json() {
                        for object in objects {
                            writeln!(self.out, "{object}")?;
                        }
                    }
                }
                other => writeln!(self.out, "{}", other.to_json())?,
            },
            OutputFormat::Csv => csv_out::outcome(&mut self.out, outcome)?,
            OutputFormat::Table => table::outcome(&mut self.out, outcome, self.terminal)?,
        }
        self.out.flush()
    }

    /// Print a command's report and flush.
    pub fn report(&mut self, report: &Report) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => writeln!(self.out, "{}", report.json)?,
            OutputFormat::Ndjson => {
                for row in &report.rows {
                    let mut object = serde_json::Map::new();
                    for (name, cell) in report.columns.iter().zip(row) {
                        if let Some(value) = cell {
                            object.insert(name.clone(), value.clone());
                        }
                    }
                    writeln!(self.out, "{}", serde_json::Value::Object(object))?;
                }
            }
            OutputFormat::Csv => csv_out::grid(&mut self.out, &report.columns, &report.rows)?,
            OutputFormat::Table => {
                if !report.columns.is_empty() {
                    table::grid(&mut self.out, &report.columns, &report.rows, self.terminal)?;
                }
                for note in &report.notes {
                    writeln!(self.out, "{note}")?;
                }
            }
        }
        self.out.flush()
    }

    /// Print a line of text as it is (used by the REPL for help and timing).
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests;
