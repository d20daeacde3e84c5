//! `driftdb stats -d DIR`: per table the live rows, the versions (events) and the segment
//! files; the WAL's size; the last seq and its time.
//!
//! The database is opened (so a crashed one is recovered first and every committed event is in
//! the segments), counted, and closed. Versions are counted from the segment frames: every
//! INSERT, PATCH and SOFT_DELETE ever written, across all incarnations of every key.

use std::path::Path;

use driftdb_core::storage::frame::{self, EventType, FILE_HEADER_BYTES};
use driftdb_core::storage::segment::{SEGMENTS_DIR, parse_segment_name};
use driftdb_core::storage::wal::{WAL_DIR, WAL_FILE};
use driftdb_core::{AsOf, limits};
use driftdb_ql::format_unix_ms;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::output::{Printer, Report};

/// What one table's segment files hold.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SegmentCounts {
    files: usize,
    bytes: u64,
    versions: u64,
}

fn count_segments(dir: &Path) -> CliResult<SegmentCounts> {
    let mut counts = SegmentCounts::default();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CliError::io("read", dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| parse_segment_name(n).is_some())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let data = std::fs::read(&path).map_err(|e| CliError::io("read", &path, e))?;
        counts.files += 1;
        counts.bytes += data.len() as u64;
        let mut offset = FILE_HEADER_BYTES;
        while let Some(rest) = data.get(offset..).filter(|r| !r.is_empty()) {
            let Ok(f) = frame::decode(rest, limits::SEGMENT_FRAME_BYTES_MAX) else { break };
            if matches!(f.kind, EventType::Insert | EventType::Patch | EventType::SoftDelete) {
                counts.versions += 1;
            }
            offset += f.size;
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
        let (rows_now, primary_key) = if live {
            let mut n = 0u64;
            snap.scan(name, |_| {
                n += 1;
                false
            })?;
            (Some(n), Some(snap.schema(name)?.primary_key))
        } else {
            (None, None)
        };
        rows.push(vec![
            Some(json!(name)),
            Some(json!(if live { "live" } else { "dropped" })),
            primary_key.clone().map(|p| json!(p)),
            rows_now.map(|n| json!(n)),
            Some(json!(counts.versions)),
            Some(json!(counts.files)),
            Some(json!(counts.bytes)),
        ]);
        tables_json.push(json!({
            "table": name,
            "state": if live { "live" } else { "dropped" },
            "primary_key": primary_key,
            "live_rows": rows_now,
            "versions": counts.versions,
            "segments": counts.files,
            "segment_bytes": counts.bytes,
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
            "versions",
            "segments",
            "segment_bytes",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
    };
    db.close()?;
    printer.report(&report).map_err(|e| CliError::io("write", Path::new("standard output"), e))
}
