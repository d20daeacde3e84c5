//! `SHOW TABLES`, `DESCRIBE`, `SHOW DRIFT` and `ANALYZE TABLE`: facts about tables and
//! history, returned as rows.
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
use crate::error::Error;
use crate::outcome::Rows;

fn text(s: impl Into<String>) -> Option<Value> {
    Some(Value::String(s.into()))
}

fn int(n: u64) -> Option<Value> {
    Some(Value::Int(seq_value(n)))
}

/// `SHOW TABLES`: name, primary key and live rows of each table.
pub(crate) fn tables(source: &Source<'_, '_>) -> Result<Rows> {
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

/// `ANALYZE TABLE t`: statistics of the table now, computed from the data.
pub(crate) fn analyze(db: &Database, table: &str) -> Result<Rows> {
    let snapshot = db.read(AsOf::Now)?;
    let stats = snapshot.stats(table)?;
    let rows = snapshot.scan(table, |_| true)?;
    let mut fields: std::collections::BTreeMap<&str, (u64, std::collections::HashSet<String>)> =
        std::collections::BTreeMap::new();
    for row in &rows {
        for (name, value) in row.doc.as_map().into_iter().flatten() {
            let entry = fields.entry(name.as_str()).or_default();
            entry.0 += 1;
            entry.1.insert(value.to_string());
        }
    }
    let (segments, bytes) = segment_files(db, table)?;
    let mut out = vec![
        vec![text("table"), text(table)],
        vec![text("seq"), int(snapshot.seq())],
        vec![text("live_rows"), int(stats.live_rows)],
        vec![text("keys"), int(stats.keys)],
        vec![text("versions"), int(stats.versions)],
        vec![text("max_versions_per_key"), int(stats.max_versions_per_key)],
        vec![text("segments"), int(segments)],
        vec![text("segment_bytes"), int(bytes)],
    ];
    for (name, (present, distinct)) in fields {
        out.push(vec![
            text(format!("field {name}")),
            text(format!("present in {present} row(s), {} distinct value(s)", distinct.len())),
        ]);
    }
    Ok(Rows { columns: vec!["statistic".into(), "value".into()], rows: out, seq: snapshot.seq() })
}

/// The number and total size of the table's segment files.
fn segment_files(db: &Database, table: &str) -> Result<(u64, u64)> {
    let dir = db.path().join("tables").join(table).join("segments");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => {
            return Err(Error::Core(driftdb_core::Error::Io { path: dir, source: e }));
        }
    };
    let (mut count, mut bytes) = (0u64, 0u64);
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "seg") {
            count += 1;
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok((count, bytes))
}
