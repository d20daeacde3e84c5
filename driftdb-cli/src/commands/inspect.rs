//! `driftdb inspect PATH`: decode a segment, WAL or CHECKPOINT file frame by frame.
//!
//! Read-only: the file is read into memory and never opened for writing, so it can be
//! inspected while a database has it open. Damage does not stop the listing: see
//! [`crate::files::walk`] for how the walk gets past it. The exit code is 1 when the engine
//! would refuse the file (any damage in a segment or checkpoint; in a WAL, damage other than a
//! torn tail, which the next open cuts off).

use std::path::Path;

use driftdb_core::storage::check_file;
use driftdb_ql::format_unix_ms;
use serde_json::{Value as Json, json};

use crate::error::{CliError, CliResult};
use crate::files::decode::{Content, short};
use crate::files::walk::{FileKind, FileWalk, FrameEntry, walk};
use crate::output::{Printer, Report};

/// Characters of a payload shown in the table.
const PAYLOAD_CHARS_MAX: usize = 60;

/// Run `inspect`.
pub fn run(path: &Path, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    let data = std::fs::read(path).map_err(|e| CliError::io("read", path, e))?;
    let Some(walked) = walk(&data) else {
        let magic: String = data
            .iter()
            .take(8)
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        return Err(CliError::Input {
            message: format!(
                "{} is not a DriftDB segment, WAL or CHECKPOINT file (it starts with {magic:?}); \
                 inspect reads tables/<t>/segments/*.seg, wal/wal.log and CHECKPOINT",
                path.display()
            ),
            line: None,
        });
    };
    let verdict = check_file(path, &data);
    let table = table_name(path);
    let report = report(path, &walked, table.as_deref(), verdict.as_ref().err());
    printer.report(&report).map_err(|e| CliError::io("write", Path::new("standard output"), e))?;
    match verdict {
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::Damaged(format!(
            "{e}; run `driftdb verify` on the database for the whole picture"
        ))),
    }
}

/// `tables/<t>/segments/N.seg` → `t`.
fn table_name(path: &Path) -> Option<String> {
    let segments = path.parent()?;
    if segments.file_name()? != "segments" {
        return None;
    }
    Some(segments.parent()?.file_name()?.to_string_lossy().into_owned())
}

fn frame_json(f: &FrameEntry) -> Json {
    let mut object = json!({
        "offset": f.offset,
        "length": f.length,
        "crc_ok": f.crc_ok,
        "seq": f.seq,
        "time": f.unix_ms.map(format_unix_ms),
        "type": f.kind.map(|k| k.name().to_string()).or(f.type_byte.map(|b| format!("type {b}"))),
    });
    let Some(o) = object.as_object_mut() else { return object };
    if f.found_by_search {
        o.insert("found_by_search".into(), true.into());
    }
    match &f.content {
        Content::Event { key, body } => {
            o.insert("key".into(), key.as_ref().map_or(Json::Null, |k| Json::from(&k.to_value())));
            o.insert("payload".into(), Json::from(body));
        }
        Content::Batch(txns) => {
            let list = txns
                .iter()
                .map(|t| {
                    json!({
                        "seq": t.seq,
                        "time": format_unix_ms(t.unix_ms),
                        "events": t.events.iter().map(|e| json!({
                            "table": e.table,
                            "type": e.kind_name(),
                            "key": e.key.as_ref().map_or(Json::Null, |k| Json::from(&k.to_value())),
                            "payload": Json::from(&e.body),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect::<Vec<_>>();
            o.insert("transactions".into(), list.into());
        }
        Content::Checkpoint(v) => {
            o.insert("payload".into(), Json::from(v));
        }
        Content::Unverified => {
            o.insert("error".into(), "CRC mismatch: the frame's fields are not trusted".into());
        }
        Content::Invalid(why) => {
            o.insert("error".into(), why.clone().into());
        }
    }
    object
}

fn cells(f: &FrameEntry, table: Option<&str>) -> Vec<Vec<Option<Json>>> {
    // A frame found by searching past damage says so in its CRC column.
    let crc = match (f.crc_ok, f.found_by_search) {
        (true, false) => "ok",
        (true, true) => "ok, found by search",
        (false, _) => "BAD",
    };
    let kind = f.kind.map(|k| k.name().to_string()).or(f.type_byte.map(|b| format!("type {b}")));
    let head = |key: Option<Json>, table: Option<&str>, payload: String| {
        vec![
            Some(Json::from(f.offset)),
            Some(Json::from(f.length)),
            Some(Json::from(crc)),
            f.seq.map(Json::from),
            f.unix_ms.map(|t| Json::from(format_unix_ms(t))),
            kind.clone().map(Json::from),
            table.map(Json::from),
            key,
            Some(Json::from(payload)),
        ]
    };
    match &f.content {
        Content::Event { key, body } => {
            vec![head(
                key.as_ref().map(|k| Json::from(&k.to_value())),
                table,
                short(body, PAYLOAD_CHARS_MAX),
            )]
        }
        Content::Checkpoint(v) => vec![head(None, None, short(v, PAYLOAD_CHARS_MAX))],
        Content::Unverified => vec![head(None, table, "CRC mismatch: fields not trusted".into())],
        Content::Invalid(why) => vec![head(None, table, why.clone())],
        Content::Batch(txns) => {
            let first = txns.first().map_or(0, |t| t.seq);
            let mut rows = vec![head(
                None,
                None,
                format!("{} transaction(s), seq {first}..{}", txns.len(), f.seq.unwrap_or(0)),
            )];
            for t in txns {
                for e in &t.events {
                    rows.push(vec![
                        None,
                        None,
                        None,
                        Some(Json::from(t.seq)),
                        Some(Json::from(format_unix_ms(t.unix_ms))),
                        Some(Json::from(format!("  {}", e.kind_name()))),
                        Some(Json::from(e.table.clone())),
                        e.key.as_ref().map(|k| Json::from(&k.to_value())),
                        Some(Json::from(short(&e.body, PAYLOAD_CHARS_MAX))),
                    ]);
                }
            }
            rows
        }
    }
}

fn report(
    path: &Path,
    w: &FileWalk,
    table: Option<&str>,
    verdict: Option<&driftdb_core::Error>,
) -> Report {
    let mut notes = vec![format!(
        "{}: {} file, {} bytes, {} frame(s){}",
        path.display(),
        w.kind.name(),
        w.len,
        w.frames.len(),
        w.header_error.as_ref().map_or(String::new(), |e| format!("; bad header: {e}"))
    )];
    for g in &w.gaps {
        notes.push(match (g.zeros_to_end, w.kind) {
            (true, FileKind::Wal) => format!(
                "offset {}: {} bytes of preallocated zeros to the end (not damage)",
                g.offset, g.len
            ),
            _ => format!(
                "offset {}: {} damaged byte(s) ({}){}",
                g.offset,
                g.len,
                g.reason,
                if g.offset + g.len < w.len {
                    format!("; frames found again from offset {}", g.offset + g.len)
                } else {
                    "; nothing readable after it".into()
                }
            ),
        });
    }
    for f in w.frames.iter().filter(|f| !f.crc_ok) {
        notes.push(format!("offset {}: CRC mismatch in a frame of {} bytes", f.offset, f.size()));
    }
    match verdict {
        None if w.is_clean() => notes.push("every frame is intact".into()),
        None => notes.push("the damage is a torn tail: the next open of the database cuts it off (it was never acknowledged)".into()),
        Some(e) => notes.push(format!("DAMAGED: {e}")),
    }
    let rows = w.frames.iter().flat_map(|f| cells(f, table)).collect();
    Report {
        json: json!({
            "file": path.display().to_string(),
            "kind": w.kind.name(),
            "bytes": w.len,
            "header_error": w.header_error,
            "frames": w.frames.iter().map(frame_json).collect::<Vec<_>>(),
            "gaps": w.gaps.iter().map(|g| json!({
                "offset": g.offset, "bytes": g.len, "reason": g.reason, "zeros_to_end": g.zeros_to_end,
            })).collect::<Vec<_>>(),
            "ok": verdict.is_none(),
            "error": verdict.map(|e| e.to_string()),
        }),
        columns: ["offset", "length", "crc", "seq", "time", "type", "table", "key", "payload"]
            .map(String::from)
            .to_vec(),
        rows,
        notes,
    }
}
