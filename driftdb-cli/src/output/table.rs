//! The `table` format: aligned columns (comfy-table) for rows, one summary line for writes,
//! DDL and maintenance.

use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets};
use driftdb_ql::{Done, Outcome, WriteSummary};

use super::cells::{cell_text, json_cell_text};

/// Narrower terminals (or an unknown width, as in some pseudo-terminals) get unwrapped tables.
const TERMINAL_COLUMNS_MIN: u16 = 40;

/// Print an outcome as a table or a summary line.
pub fn outcome(out: &mut impl Write, outcome: &Outcome, terminal: bool) -> io::Result<()> {
    match outcome {
        Outcome::Rows(rows) => {
            let cells: Vec<Vec<String>> = rows
                .rows
                .iter()
                .map(|row| {
                    row.iter().map(|c| c.as_ref().map(cell_text).unwrap_or_default()).collect()
                })
                .collect();
            write_table(out, &rows.columns, cells, terminal)?;
            let n = rows.rows.len();
            writeln!(out, "({n} row{} at seq {})", if n == 1 { "" } else { "s" }, rows.seq)
        }
        Outcome::Write(w) => writeln!(out, "{}", write_line(w)),
        Outcome::Done(d) => writeln!(out, "{}", done_line(d)),
    }
}

/// Print a grid of JSON cells.
pub fn grid(
    out: &mut impl Write,
    columns: &[String],
    rows: &[Vec<Option<serde_json::Value>>],
    terminal: bool,
) -> io::Result<()> {
    let cells = rows
        .iter()
        .map(|row| row.iter().map(|c| c.as_ref().map(json_cell_text).unwrap_or_default()).collect())
        .collect();
    write_table(out, columns, cells, terminal)
}

fn write_table(
    out: &mut impl Write,
    columns: &[String],
    cells: Vec<Vec<String>>,
    terminal: bool,
) -> io::Result<()> {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    // Wrap to the terminal's width only when it is known and wide enough to be useful.
    table.set_content_arrangement(ContentArrangement::Dynamic);
    if !terminal || table.width().is_none_or(|w| w < TERMINAL_COLUMNS_MIN) {
        table.force_no_tty().set_content_arrangement(ContentArrangement::Disabled);
    }
    table.set_header(columns.to_vec());
    for row in cells {
        table.add_row(row);
    }
    writeln!(out, "{table}")
}

/// `INSERT 2 (seq 7)`, or `INSERT 2 (pending until COMMIT)` inside a transaction.
pub fn write_line(w: &WriteSummary) -> String {
    let n = w.affected.len();
    match w.committed {
        Some((seq, _)) => format!("{} {n} (seq {seq})", w.statement),
        None => format!("{} {n} (pending until COMMIT)", w.statement),
    }
}

/// The statement's message, with the seq it committed at (unless the message says it).
pub fn done_line(d: &Done) -> String {
    match d.committed {
        Some((seq, _)) if !d.message.contains(&format!("seq {seq}")) => {
            format!("{} (seq {seq})", d.message)
        }
        _ => d.message.clone(),
    }
}
