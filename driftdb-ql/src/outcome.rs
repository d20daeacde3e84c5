//! What a statement returns: rows for queries, a summary for writes, a description for DDL,
//! transaction control and maintenance. The CLI and a network server render the same value;
//! [`Outcome::to_json`] is the one JSON shape both use.

use driftdb_core::{Key, Value};

use crate::as_of::format_unix_ms;

/// The result of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A query (`SELECT`, `SHOW ...`, `DESCRIBE`, `EXPLAIN`): named columns and rows.
    Rows(Rows),
    /// A write (`INSERT`, `UPSERT`, `PATCH`, `SOFT DELETE`).
    Write(WriteSummary),
    /// Anything else: DDL, `BEGIN` / `COMMIT` / `ROLLBACK`, maintenance.
    Done(Done),
}

/// Rows of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// Column names, in output order.
    pub columns: Vec<String>,
    /// Each row has one cell per column; `None` is a field the document does not have (only
    /// for `SELECT *`; a named field that is missing is `Some(Value::Null)`).
    pub rows: Vec<Vec<Option<Value>>>,
    /// The seq the query read at.
    pub seq: u64,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSummary {
    /// `INSERT`, `UPSERT`, `PATCH` or `SOFT DELETE`.
    pub statement: &'static str,
    /// The keys written, in the order written.
    pub affected: Vec<Key>,
    /// The committed seq and time (Unix ms); `None` inside an open transaction, where the
    /// write is pending until `COMMIT`.
    pub committed: Option<(u64, u64)>,
}

/// What a DDL, transaction-control or maintenance statement did.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    /// The statement's name, such as `CREATE TABLE` or `COMMIT`.
    pub statement: &'static str,
    /// One line for people, such as `created table orders`.
    pub message: String,
    /// The committed seq and time (Unix ms), when the statement committed a transaction.
    pub committed: Option<(u64, u64)>,
    /// Further facts, for programs (the table, the number of events, ...).
    pub details: Vec<(String, Value)>,
}

impl Rows {
    /// The rows as JSON objects, cells in column order (absent cells left out).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let mut object = serde_json::Map::new();
                    for (name, cell) in self.columns.iter().zip(row) {
                        if let Some(value) = cell {
                            object.insert(name.clone(), serde_json::Value::from(value));
                        }
                    }
                    serde_json::Value::Object(object)
                })
                .collect(),
        )
    }
}

fn committed_json(object: &mut serde_json::Map<String, serde_json::Value>, c: Option<(u64, u64)>) {
    match c {
        Some((seq, unix_ms)) => {
            object.insert("seq".into(), seq.into());
            object.insert("time".into(), format_unix_ms(unix_ms).into());
        }
        None => {
            object.insert("seq".into(), serde_json::Value::Null);
            object.insert("pending".into(), true.into());
        }
    }
}

impl Outcome {
    /// The one JSON value of this outcome: an array of row objects for a query; for a write
    /// `{"statement", "affected" (count), "keys", "seq", "time"}` (`"seq": null, "pending": true`
    /// inside a transaction); for anything else `{"statement", "message", ...details}` with
    /// `"seq"` and `"time"` when it committed. Times are ISO-8601 UTC.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Outcome::Rows(rows) => rows.to_json(),
            Outcome::Write(w) => {
                let mut object = serde_json::Map::new();
                object.insert("statement".into(), w.statement.into());
                object.insert("affected".into(), w.affected.len().into());
                object.insert(
                    "keys".into(),
                    w.affected.iter().map(|k| serde_json::Value::from(&k.to_value())).collect(),
                );
                committed_json(&mut object, w.committed);
                serde_json::Value::Object(object)
            }
            Outcome::Done(d) => {
                let mut object = serde_json::Map::new();
                object.insert("statement".into(), d.statement.into());
                object.insert("message".into(), d.message.clone().into());
                if d.committed.is_some() {
                    committed_json(&mut object, d.committed);
                }
                for (name, value) in &d.details {
                    object.insert(name.clone(), serde_json::Value::from(value));
                }
                serde_json::Value::Object(object)
            }
        }
    }
}
