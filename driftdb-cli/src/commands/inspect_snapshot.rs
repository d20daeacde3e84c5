//! `driftdb inspect` of a snapshot file (`tables/<t>/snapshots/NNNNNNNN.snap`): its header,
//! then every entry block by block (key and document, or `(not live)` for an incremental
//! snapshot's tombstone). A block that fails its checks is listed as damaged, with the offset
//! and the reason, and the listing goes on with the next block (the index says where it is).
//! A damaged header, index or trailer stops the listing. Exit code 1 on any damage.

use std::path::Path;

use driftdb_core::storage::snapshot::{SnapshotFile, new_decompressor};
use serde_json::{Value as Json, json};

use crate::error::{CliError, CliResult};
use crate::output::{Printer, Report};

/// Characters of a document shown in the table.
const DOC_CHARS_MAX: usize = 60;

/// List the snapshot file `data` read from `path`.
pub fn run(path: &Path, data: &[u8], printer: &mut Printer<impl std::io::Write>) -> CliResult {
    let file = SnapshotFile::open_bytes(path, data)
        .map_err(|e| CliError::Damaged(format!("{e}; the snapshot cannot be listed")))?;
    let h = &file.header;
    let mut decompressor = new_decompressor(path)?;
    let (mut rows, mut blocks, mut entries, mut damage) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut last = None;
    for (i, block) in file.blocks.iter().enumerate() {
        match file.block_in(data, i, last.as_ref(), &mut decompressor) {
            Ok(list) => {
                blocks.push(json!({"offset": block.offset, "bytes": block.len,
                    "entries": list.len(), "ok": true}));
                for (key, doc) in &list {
                    let document = doc.as_ref().map_or(Json::Null, Json::from);
                    let shown = doc.as_ref().map_or_else(
                        || "(not live)".to_string(),
                        |d| short(&Json::from(d).to_string()),
                    );
                    rows.push(vec![
                        Some(Json::from(block.offset)),
                        Some(Json::from(&key.to_value())),
                        Some(Json::from(shown)),
                    ]);
                    entries.push(json!({"block": block.offset, "key": Json::from(&key.to_value()),
                        "document": document}));
                }
                last = list.into_iter().last().map(|(k, _)| k);
            }
            Err(e) => {
                damage += 1;
                last = None;
                let reason = match &e {
                    driftdb_core::Error::Corrupt { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                blocks.push(json!({"offset": block.offset, "bytes": block.len,
                    "entries": block.entries, "ok": false, "error": reason}));
                rows.push(vec![
                    Some(Json::from(block.offset)),
                    None,
                    Some(Json::from(format!("DAMAGED: {reason}"))),
                ]);
            }
        }
    }
    let report = Report {
        json: json!({
            "file": path.display().to_string(),
            "kind": "snapshot",
            "table": h.table,
            "seq": h.seq,
            "snapshot_kind": h.kind.name(),
            "base_seq": h.base_seq,
            "created_seq": h.created_seq,
            "entries": file.entries,
            "bytes": file.bytes,
            "blocks": blocks,
            "rows": entries,
        }),
        columns: vec!["block".into(), "key".into(), "document".into()],
        rows,
        notes: vec![format!(
            "{} snapshot of {} at seq {}{} (incarnation created at seq {}): {} entries in {} \
             block(s), {} bytes{}",
            h.kind,
            h.table,
            h.seq,
            if h.base_seq > 0 { format!(" on seq {}", h.base_seq) } else { String::new() },
            h.created_seq,
            file.entries,
            file.blocks.len(),
            file.bytes,
            if damage > 0 { format!("; {damage} damaged block(s)") } else { String::new() },
        )],
    };
    printer.report(&report).map_err(|e| CliError::io("write", Path::new("standard output"), e))?;
    if damage > 0 {
        return Err(CliError::Damaged(format!(
            "{damage} damaged block(s) in {}; reads do not use this snapshot",
            path.display()
        )));
    }
    Ok(())
}

fn short(text: &str) -> String {
    if text.chars().count() <= DOC_CHARS_MAX {
        return text.to_string();
    }
    let mut out: String = text.chars().take(DOC_CHARS_MAX - 1).collect();
    out.push('…');
    out
}
