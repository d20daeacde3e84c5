//! `SHOW TABLES`, `DESCRIBE` and `SHOW DRIFT`: facts about tables and history, returned as
//! rows.
//!
//! `SHOW DRIFT` reads committed history (inside a transaction too: pending writes have no seq
//! yet). A range `BETWEEN a AND b` keeps the events with `a <= seq <= b` when both ends are
//! seqs, and compares commit times when an end is a time; a seq beyond the last commit is
//! allowed as an upper end.

use driftdb_core::{AsOf, Database, Key, Value};

use super::seq_value;
use super::source::Source;
use crate::Result;
use crate::as_of::format_unix_ms;
use crate::outcome::Rows;

fn text(s: impl Into<driftdb_core::Text>) -> Option<Value> {
    Some(Value::String(s.into()))
}

fn int(n: u64) -> Option<Value> {
    Some(Value::Int(seq_value(n)))
}

/// `SHOW TABLES`: name, primary key and live rows of each table.
pub(crate) fn tables(source: &Source<'_, '_>) -> Result<Rows> {
    source.check_all_retained()?;
    let mut rows = Vec::new();
    for table in source.tables() {
        let schema = source.schema(&table)?;
        let live = source.scan(&table, |_| Ok(true))?.len();
        rows.push(vec![text(table), text(schema.primary_key), int(live as u64)]);
    }
    Ok(Rows {
        columns: vec!["table".into(), "primary_key".into(), "rows".into()],
        rows,
        seq: source.seq(),
    })
}

/// `DESCRIBE t`: the primary key, declared columns and indexes.
pub(crate) fn describe(source: &Source<'_, '_>, table: &str) -> Result<Rows> {
    let schema = source.schema(table)?;
    let mut rows = vec![vec![text(&schema.primary_key), text("primary key"), Some(Value::Null)]];
    for column in &schema.columns {
        rows.push(vec![
            text(&column.name),
            text("column"),
            Some(column.default.clone().unwrap_or(Value::Null)),
        ]);
    }
    for index in &schema.indexes {
        rows.push(vec![text(index.join(", ")), text("index"), Some(Value::Null)]);
    }
    for field in &schema.unique {
        rows.push(vec![text(field), text("unique index"), Some(Value::Null)]);
    }
    if let Some(ms) = schema.retention_ms {
        rows.push(vec![
            text(driftdb_core::format_retention(ms)),
            text("retention"),
            Some(Value::Null),
        ]);
    }
    Ok(Rows {
        columns: vec!["field".into(), "kind".into(), "default".into()],
        rows,
        seq: source.seq(),
    })
}

/// One end of a `SHOW DRIFT` range: a seq bound or a time bound.
enum Bound {
    Seq(u64),
    Time(u64),
}

fn bound(db: &Database, point: AsOf) -> Bound {
    match point {
        AsOf::Now => Bound::Seq(db.last_seq()),
        AsOf::Seq(seq) => Bound::Seq(seq),
        AsOf::UnixMs(ms) => Bound::Time(ms),
    }
}

/// `SHOW DRIFT t KEY k [BETWEEN a AND b]`: every event of the key.
pub(crate) fn drift(
    db: &Database,
    table: &str,
    key: &Key,
    range: Option<(AsOf, AsOf)>,
) -> Result<Rows> {
    let snapshot = db.read(AsOf::Now)?;
    let history = snapshot.history(table, key)?;
    if let Some((from, _)) = range {
        // A range that starts before the table's retention horizon would be cut silently.
        db.read(AsOf::Seq(db.resolve(from)?))?.check_retained(table)?;
    }
    let bounds = range.map(|(a, b)| (bound(db, a), bound(db, b)));
    let rows = history
        .into_iter()
        .filter(|entry| match &bounds {
            None => true,
            Some((from, to)) => {
                let after = match from {
                    Bound::Seq(s) => entry.seq >= *s,
                    Bound::Time(t) => entry.unix_ms >= *t,
                };
                let before = match to {
                    Bound::Seq(s) => entry.seq <= *s,
                    Bound::Time(t) => entry.unix_ms <= *t,
                };
                after && before
            }
        })
        .map(|entry| {
            vec![
                int(entry.seq),
                text(format_unix_ms(entry.unix_ms)),
                text(entry.kind.name()),
                Some(entry.payload),
                Some(entry.document.unwrap_or(Value::Null)),
            ]
        })
        .collect();
    Ok(Rows {
        columns: ["seq", "time", "kind", "payload", "document"].map(String::from).to_vec(),
        rows,
        seq: snapshot.seq(),
    })
}
