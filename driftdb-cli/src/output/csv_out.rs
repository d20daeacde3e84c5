//! The `csv` format: a header row of column names, then one line per row. Cells are written as
//! in a table (strings bare, other values as compact JSON, absent fields empty) and quoted by
//! CSV's rules. A statement that returns no rows prints its JSON object's fields as one row.

use std::io::{self, Write};

use driftdb_ql::Outcome;

use super::cells::{cell_text, json_cell_text};

fn to_io(e: csv::Error) -> io::Error {
    io::Error::other(e)
}

/// Print an outcome as CSV.
pub fn outcome(out: &mut impl Write, outcome: &Outcome) -> io::Result<()> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    match outcome {
        Outcome::Rows(rows) => {
            w.write_record(&rows.columns).map_err(to_io)?;
            for row in &rows.rows {
                w.write_record(row.iter().map(|c| c.as_ref().map(cell_text).unwrap_or_default()))
                    .map_err(to_io)?;
            }
        }
        other => {
            let json = other.to_json();
            if let serde_json::Value::Object(object) = json {
                w.write_record(object.keys()).map_err(to_io)?;
                w.write_record(object.values().map(json_cell_text)).map_err(to_io)?;
            }
        }
    }
    w.flush()
}

/// Print a grid of JSON cells as CSV.
pub fn grid(
    out: &mut impl Write,
    columns: &[String],
    rows: &[Vec<Option<serde_json::Value>>],
) -> io::Result<()> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    w.write_record(columns).map_err(to_io)?;
    for row in rows {
        w.write_record(row.iter().map(|c| c.as_ref().map(json_cell_text).unwrap_or_default()))
            .map_err(to_io)?;
    }
    w.flush()
}
