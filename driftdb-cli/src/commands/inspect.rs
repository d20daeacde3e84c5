//! `driftdb inspect PATH`: decode a segment (plain or compressed), WAL or CHECKPOINT file frame
//! by frame, or a snapshot file entry by entry (`inspect_snapshot.rs`).
//!
//! Read-only: the file is read into memory and never opened for writing, so it can be
//! inspected while a database has it open. Damage does not stop the listing: see
//! [`crate::files::walk`] and [`crate::files::blocks`] for how the walk gets past it. A
//! compressed segment (`compacted-*.seg`) is listed block by block: a row per block (offset,
//! stored length, block CRC, seqs), then its frames, whose offset is the block's offset plus
//! the frame's offset in the decompressed block (`16+120`), then the trailer. The exit code is 1 when the engine
//! would refuse the file (any damage in a segment or checkpoint; in a WAL, damage other than a
//! torn tail, which the next open cuts off).

use std::path::Path;

use driftdb_core::storage::check_file;
use driftdb_ql::format_unix_ms;
use serde_json::{Value as Json, json};

use crate::error::{CliError, CliResult};
use crate::files::blocks::{BlockEntry, Blocks, TrailerEntry};
use crate::files::decode::{Content, short};
use crate::files::walk::{FileKind, FileWalk, FrameEntry, walk};
use crate::output::{Printer, Report};

/// Characters of a payload shown in the table.
const PAYLOAD_CHARS_MAX: usize = 60;

/// Run `inspect`.
pub fn run(path: &Path, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    // A file of an encrypted database is opened with the key (an error without it).
    let data = super::keys::read_logical(path)?;
    if data.starts_with(&driftdb_core::storage::snapshot::SNAPSHOT_MAGIC) {
        return super::inspect_snapshot::run(path, &data, printer);
    }
    let Some(walked) = walk(&data) else {
        let magic: String = data
            .iter()
            .take(8)
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        return Err(CliError::Input {
            message: format!(
                "{} is not a DriftDB segment, WAL or CHECKPOINT file (it starts with {magic:?}); \
                 inspect reads tables/<t>/segments/*.seg (plain and compacted), wal/wal.log, \
                 CHECKPOINT and tables/<t>/snapshots/*.snap",
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
    if let Some(inner) = f.in_block {
        o.insert("block".into(), f.offset.into());
        o.insert("offset_in_block".into(), inner.into());
    }
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
    let offset = match f.in_block {
        Some(inner) => Json::from(format!("{}+{inner}", f.offset)),
        None => Json::from(f.offset),
    };
    let head = |key: Option<Json>, table: Option<&str>, payload: String| {
        vec![
            Some(offset.clone()),
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

/// The row of a compressed segment's block.
fn block_row(b: &BlockEntry) -> Vec<Option<Json>> {
    let what = match (&b.error, &b.header) {
        (Some(why), _) => format!("damaged block ({} bytes): {why}", b.bytes),
        (None, Some(h)) => format!(
            "{} event(s), seq {}..={}, {} bytes decompressed",
            h.events, h.first_seq, h.last_seq, h.raw_len
        ),
        (None, None) => String::new(),
    };
    let crc = match (b.error.is_none(), b.found_by_search) {
        (true, false) => "ok",
        (true, true) => "ok, found by search",
        (false, _) => "BAD",
    };
    vec![
        Some(Json::from(b.offset)),
        Some(Json::from(b.bytes)),
        Some(Json::from(crc)),
        b.header.filter(|_| b.error.is_none()).map(|h| Json::from(h.first_seq)),
        None,
        Some(Json::from("BLOCK")),
        None,
        None,
        Some(Json::from(what)),
    ]
}

/// The row of a compressed segment's trailer.
fn trailer_row(t: &TrailerEntry, len: u64) -> Vec<Option<Json>> {
    let what = match (&t.error, &t.summary) {
        (Some(why), _) => why.clone(),
        (None, Some(s)) => format!(
            "{} block(s), {} event(s), seq {}..={}",
            s.blocks, s.events, s.first_seq, s.last_seq
        ),
        (None, None) => String::new(),
    };
    vec![
        Some(Json::from(t.offset)),
        Some(Json::from(len.saturating_sub(t.offset))),
        Some(Json::from(if t.summary.is_some() { "ok" } else { "BAD" })),
        None,
        None,
        Some(Json::from("TRAILER")),
        None,
        None,
        Some(Json::from(what)),
    ]
}

/// The rows of a compressed segment: each block, then its frames; then the trailer.
fn block_rows(w: &FileWalk, blocks: &Blocks, table: Option<&str>) -> Vec<Vec<Option<Json>>> {
    let mut rows = Vec::new();
    for b in &blocks.blocks {
        rows.push(block_row(b));
        for f in w.frames.iter().filter(|f| f.offset == b.offset) {
            rows.extend(cells(f, table));
        }
    }
    if let Some(t) = &blocks.trailer {
        rows.push(trailer_row(t, w.len));
    }
    rows
}

fn blocks_json(blocks: &Blocks, len: u64) -> Json {
    json!({
        "blocks": blocks.blocks.iter().map(|b| json!({
            "offset": b.offset,
            "bytes": b.bytes,
            "ok": b.error.is_none(),
            "error": b.error,
            "found_by_search": b.found_by_search,
            "stored_len": b.header.map(|h| h.stored_len),
            "raw_len": b.header.map(|h| h.raw_len),
            "events": b.header.map(|h| h.events),
            "first_seq": b.header.map(|h| h.first_seq),
            "last_seq": b.header.map(|h| h.last_seq),
        })).collect::<Vec<_>>(),
        "trailer": blocks.trailer.as_ref().map(|t| json!({
            "offset": t.offset,
            "bytes": len.saturating_sub(t.offset),
            "ok": t.error.is_none(),
            "error": t.error,
            "blocks": t.summary.map(|s| s.blocks),
            "events": t.summary.map(|s| s.events),
            "first_seq": t.summary.map(|s| s.first_seq),
            "last_seq": t.summary.map(|s| s.last_seq),
        })),
    })
}

fn report(
    path: &Path,
    w: &FileWalk,
    table: Option<&str>,
    verdict: Option<&driftdb_core::Error>,
) -> Report {
    let version = w.version.map_or(String::new(), |v| format!(" (version {v})"));
    let what = match &w.blocks {
        Some(b) => format!(
            "compressed segment file{version}, {} bytes, {} block(s),",
            w.len,
            b.blocks.len()
        ),
        None => format!("{} file{version}, {} bytes,", w.kind.name(), w.len),
    };
    let mut notes = vec![format!(
        "{}: {what} {} frame(s){}",
        path.display(),
        w.frames.len(),
        w.header_error.as_ref().map_or(String::new(), |e| format!("; bad header: {e}"))
    )];
    if w.blocks.is_some() {
        notes.push(
            "a frame's offset is its block's offset + its offset in the decompressed block; \
             damage in a frame is reported at its block"
                .into(),
        );
    }
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
    let rows = match &w.blocks {
        Some(blocks) => block_rows(w, blocks, table),
        None => w.frames.iter().flat_map(|f| cells(f, table)).collect(),
    };
    let mut json = json!({
        "file": path.display().to_string(),
        "kind": w.kind.name(),
        "version": w.version,
        "compressed": w.blocks.is_some(),
        "bytes": w.len,
        "header_error": w.header_error,
        "frames": w.frames.iter().map(frame_json).collect::<Vec<_>>(),
        "gaps": w.gaps.iter().map(|g| json!({
            "offset": g.offset, "bytes": g.len, "reason": g.reason, "zeros_to_end": g.zeros_to_end,
        })).collect::<Vec<_>>(),
        "ok": verdict.is_none(),
        "error": verdict.map(|e| e.to_string()),
    });
    if let (Some(blocks), Some(o)) = (&w.blocks, json.as_object_mut())
        && let Json::Object(extra) = blocks_json(blocks, w.len)
    {
        o.extend(extra);
    }
    Report {
        json,
        columns: ["offset", "length", "crc", "seq", "time", "type", "table", "key", "payload"]
            .map(String::from)
            .to_vec(),
        rows,
        notes,
    }
}
