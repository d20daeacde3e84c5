//! `ANALYZE TABLE t`: statistics of a table, computed from the data and stored for the planner.
//!
//! File: `tables/<t>/stats.json`, a derived file (JSON, written to a temporary file, fsynced,
//! renamed over the old one, then the directory fsynced). It holds the seq it was computed
//! at, live rows, keys, versions, the most versions of one key, segment files and bytes, and
//! for every top-level field and every indexed field path: in how many live rows it is present
//! and how many distinct values it has. Losing or damaging it loses nothing: a missing or
//! unreadable file means "no statistics" and the planner falls back to its default (use an
//! index when one matches). Statistics are estimates: they are not updated by writes, and
//! `EXPLAIN` shows the seq they were taken at next to the actual counts.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use driftdb_core::{AsOf, Database, Value};
use serde::{Deserialize, Serialize};

use super::eval::field;
use super::seq_value;
use crate::Result;
use crate::ast::Path as FieldPath;
use crate::error::Error;
use crate::outcome::Rows;

/// Presence and distinct values of one field among live rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FieldStats {
    /// Live rows that have the field (not null).
    pub present: u64,
    /// Distinct non-null values.
    pub distinct: u64,
}

/// What `ANALYZE TABLE` stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableStatistics {
    pub table: String,
    pub seq: u64,
    pub live_rows: u64,
    pub keys: u64,
    pub versions: u64,
    pub max_versions_per_key: u64,
    pub segments: u64,
    pub segment_bytes: u64,
    /// By field path (`a.b`).
    pub fields: BTreeMap<String, FieldStats>,
}

impl TableStatistics {
    /// Estimated live rows with `field = some value`: rows with the field / distinct values.
    pub fn rows_per_value(&self, field: &str) -> Option<f64> {
        let f = self.fields.get(field)?;
        Some(f.present as f64 / f.distinct.max(1) as f64)
    }
}

fn stats_path(db: &Database, table: &str) -> PathBuf {
    db.path().join("tables").join(table).join("stats.json")
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Core(driftdb_core::Error::Io { path: path.to_owned(), source })
}

/// The stored statistics of `table`, if any can be read.
pub(crate) fn load(db: &Database, table: &str) -> Option<TableStatistics> {
    let rel = Path::new("tables").join(table).join("stats.json");
    let bytes = db.read_file(&rel).ok()??;
    serde_json::from_slice::<TableStatistics>(&bytes).ok().filter(|s| s.table == table)
}

fn compute(db: &Database, table: &str) -> Result<TableStatistics> {
    let snapshot = db.read(AsOf::Now)?;
    let counts = snapshot.stats(table)?;
    let schema = snapshot.schema(table)?;
    let rows = snapshot.scan(table, |_| true)?;
    let mut paths: Vec<String> = Vec::new();
    for row in &rows {
        for name in row.doc.as_map().into_iter().flat_map(|m| m.keys()) {
            if !paths.iter().any(|p| p == name) {
                paths.push(name.to_string());
            }
        }
    }
    for indexed in schema.indexes.iter().flatten() {
        if !paths.contains(indexed) {
            paths.push(indexed.clone());
        }
    }
    let mut fields = BTreeMap::new();
    for path_text in paths {
        let path = FieldPath(path_text.split('.').map(str::to_owned).collect());
        let mut present = 0u64;
        let mut distinct: HashSet<String> = HashSet::new();
        for row in &rows {
            if let Some(value) = field(&row.doc, &path).filter(|v| **v != Value::Null) {
                present += 1;
                distinct.insert(value.to_string());
            }
        }
        fields.insert(path_text, FieldStats { present, distinct: distinct.len() as u64 });
    }
    let (segments, segment_bytes) = segment_files(db, table)?;
    Ok(TableStatistics {
        table: table.to_owned(),
        seq: snapshot.seq(),
        live_rows: counts.live_rows,
        keys: counts.keys,
        versions: counts.versions,
        max_versions_per_key: counts.max_versions_per_key,
        segments,
        segment_bytes,
        fields,
    })
}

fn store(db: &Database, stats: &TableStatistics) -> Result<PathBuf> {
    // Through the engine: atomic and durable, and sealed in an encrypted database.
    let rel = Path::new("tables").join(&stats.table).join("stats.json");
    let text = serde_json::to_string_pretty(stats).map_err(|e| Error::invalid(e.to_string()))?;
    db.write_file(&rel, text.as_bytes())?;
    Ok(stats_path(db, &stats.table))
}

/// `ANALYZE TABLE t`: compute, store, and return the statistics as rows.
pub(crate) fn analyze(db: &Database, table: &str) -> Result<Rows> {
    let stats = compute(db, table)?;
    let path = store(db, &stats)?;
    let text = |s: String| Some(Value::String(s.into()));
    let int = |n: u64| Some(Value::Int(seq_value(n)));
    let mut out = vec![
        vec![text("table".into()), text(table.into())],
        vec![text("seq".into()), int(stats.seq)],
        vec![text("live_rows".into()), int(stats.live_rows)],
        vec![text("keys".into()), int(stats.keys)],
        vec![text("versions".into()), int(stats.versions)],
        vec![text("max_versions_per_key".into()), int(stats.max_versions_per_key)],
        vec![text("segments".into()), int(stats.segments)],
        vec![text("segment_bytes".into()), int(stats.segment_bytes)],
    ];
    for (name, f) in &stats.fields {
        out.push(vec![
            text(format!("field {name}")),
            text(format!("present in {} row(s), {} distinct value(s)", f.present, f.distinct)),
        ]);
    }
    let stored = path.strip_prefix(db.path()).unwrap_or(&path).display().to_string();
    out.push(vec![text("stored".into()), text(stored)]);
    Ok(Rows { columns: vec!["statistic".into(), "value".into()], rows: out, seq: stats.seq })
}

/// The number and total size of the table's segment files (plain and compressed).
fn segment_files(db: &Database, table: &str) -> Result<(u64, u64)> {
    let dir = db.path().join("tables").join(table).join("segments");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io_error(&dir, e)),
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
