//! `driftdb stats -d DIR`: per table the live rows, the versions (events) and the segment
//! files; the WAL's size; the last seq and its time.
//!
//! The database is opened (so a crashed one is recovered first), counted, and closed. Rows,
//! keys and versions come from the engine ([`driftdb_core::Snapshot::stats`]): versions are
//! every INSERT, PATCH and SOFT_DELETE of every key, across its incarnations. Segment files
//! and bytes are what the table's `segments/` directory holds, plain and compressed
//! (`compacted-*.seg`) together; `compacted` says how many of them are compressed. (Opening
//! the database removes the files a crashed compaction left behind, so what is counted is the
//! table's live set.)

use std::path::Path;

use driftdb_core::AsOf;
use driftdb_core::storage::segment::{SEGMENTS_DIR, parse_segment_name};
use driftdb_core::storage::segment_set::parse_compacted_name;
use driftdb_core::storage::wal::{WAL_DIR, WAL_FILE};
use driftdb_ql::format_unix_ms;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::output::{Printer, Report};

/// What one table's segment files hold.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SegmentCounts {
    /// Segment files, plain and compressed.
    files: usize,
    /// Their bytes.
    bytes: u64,
    /// Of those, compressed segment files.
    compacted: usize,
    /// Their bytes.
    compacted_bytes: u64,
}

fn count_segments(dir: &Path) -> CliResult<SegmentCounts> {
    let mut counts = SegmentCounts::default();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CliError::io("read", dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| parse_segment_name(n).is_some() || parse_compacted_name(n).is_some())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::metadata(&path).map_err(|e| CliError::io("read", &path, e))?.len();
        counts.files += 1;
        counts.bytes += bytes;
        if parse_compacted_name(&name).is_some() {
            counts.compacted += 1;
            counts.compacted_bytes += bytes;
        }
    }
    Ok(counts)
}

/// Run `stats`.
pub fn run(dir: &Path, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    let db = super::open(dir)?;
    let snap = db.read(AsOf::Now)?;
    let live_tables = snap.tables();
    let tables_dir = dir.join("tables");
    let mut names: Vec<String> = std::fs::read_dir(&tables_dir)
        .map_err(|e| CliError::io("read", &tables_dir, e))?
        .flatten()
        .filter(|e| e.path().join(SEGMENTS_DIR).is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut rows = Vec::new();
    let mut tables_json = Vec::new();
    for name in &names {
        let counts = count_segments(&tables_dir.join(name).join(SEGMENTS_DIR))?;
        let live = live_tables.contains(name);
        let (stats, primary_key) = if live {
            (Some(snap.stats(name)?), Some(snap.schema(name)?.primary_key))
        } else {
            (None, None)
        };
        rows.push(vec![
            Some(json!(name)),
            Some(json!(if live { "live" } else { "dropped" })),
            primary_key.clone().map(|p| json!(p)),
            stats.map(|s| json!(s.live_rows)),
            stats.map(|s| json!(s.keys)),
            stats.map(|s| json!(s.versions)),
            Some(json!(counts.files)),
            Some(json!(counts.bytes)),
            Some(json!(counts.compacted)),
        ]);
        tables_json.push(json!({
            "table": name,
            "state": if live { "live" } else { "dropped" },
            "primary_key": primary_key,
            "live_rows": stats.map(|s| s.live_rows),
            "keys": stats.map(|s| s.keys),
            "versions": stats.map(|s| s.versions),
            "segments": counts.files,
            "segment_bytes": counts.bytes,
            "compacted_segments": counts.compacted,
            "compacted_bytes": counts.compacted_bytes,
        }));
    }
    let wal_path = dir.join(WAL_DIR).join(WAL_FILE);
    let wal_bytes =
        std::fs::metadata(&wal_path).map_err(|e| CliError::io("read", &wal_path, e))?.len();
    let last_seq = db.last_seq();
    let last_time = db.commit_time(last_seq).filter(|_| last_seq > 0).map(format_unix_ms);
    let notes = vec![
        format!("WAL: {wal_bytes} bytes (preallocated space included)"),
        format!(
            "last seq: {last_seq}{}",
            last_time.as_ref().map_or(String::new(), |t| format!(", committed at {t}"))
        ),
    ];
    let report = Report {
        json: json!({
            "database": dir.display().to_string(),
            "tables": tables_json,
            "wal_bytes": wal_bytes,
            "last_seq": last_seq,
            "last_time": last_time,
        }),
        columns: [
            "table",
            "state",
            "primary_key",
            "live_rows",
            "keys",
            "versions",
            "segments",
            "segment_bytes",
            "compacted",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
    };
    db.close()?;
    printer.report(&report).map_err(|e| CliError::io("write", Path::new("standard output"), e))
}
