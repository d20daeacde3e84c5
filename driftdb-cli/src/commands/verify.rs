//! `driftdb verify -d DIR`: check every frame of every file of a database without changing
//! anything, and say where anything is wrong.
//!
//! It never opens the database (opening replays the WAL and writes a checkpoint); it reads
//! each file into memory. It takes the database's `LOCK` the same way the engine does, so it
//! never races a process that is writing (that process would make a half-written batch look
//! like damage), and refuses with "in use" while one is.
//!
//! What is checked, by the rules recovery applies (docs/FORMAT.md, "Recovery rules"):
//! - `CHECKPOINT`: one intact CHECKPOINT frame.
//! - `wal/wal.log`: every batch; damage followed by later valid batches is an **error**; a
//!   torn tail is a **warning** (the next open cuts it off; it was never acknowledged);
//!   preallocated zeros are fine. The first transaction after the checkpoint seq must follow
//!   it.
//! - each table's segments: the live set the checkpoint (version 1 or 2) names, in history
//!   order: the compacted segments `compacted-G-1.seg ..= compacted-G-k.seg` once the table has
//!   been compacted, then the plain segments `first..=segment` (`first` is 1 before any
//!   compaction). Every file of the set must exist; every frame must be intact within the
//!   checkpointed length (the last plain segment) or the whole file (the others), including
//!   every block, the trailer and every decompressed frame of a compressed segment (**error**
//!   otherwise, at the damaged frame's or block's offset); a file's first seq must follow the
//!   previous file's last. Bytes past the checkpointed length and plain segments newer than the
//!   checkpoint are rebuilt from the WAL at the next open (a **note**, or a **warning** when
//!   damaged); files a compaction left behind (older plain segments, other generations,
//!   `.tmp` files) are removed by the next open (a **note**). The segments must end exactly at
//!   the checkpoint seq.
//! - snapshot files (`snapshots/NNNNNNNN.snap`): header, index, trailer and every block
//!   (**error** at the damaged part's offset: the database opens, but reads do not use the
//!   snapshot); a `.snap.tmp` file is a **note** (the next open removes it). Index files:
//!   checked when the engine knows their kind.
//! - `meta.json`: parses (a **warning** otherwise: it is derived and rewritten at open).
//!
//! Exit code 1 when there is any error: such a database refuses to open.

use std::path::Path;

use driftdb_core::storage::check_file;
use driftdb_core::storage::checkpoint::CHECKPOINT_FILE;
use driftdb_core::storage::segment::{SEGMENTS_DIR, parse_segment_name, segment_name};
use driftdb_core::storage::segment_set::{compacted_name, is_compaction_tmp, parse_compacted_name};
use driftdb_core::storage::snapshot::{parse_snapshot_name, parse_snapshot_tmp_name};
use driftdb_core::storage::wal::{WAL_DIR, WAL_FILE};
use serde_json::{Value as Json, json};

use crate::error::{CliError, CliResult};
use crate::files::decode::{CheckpointInfo, Content, TablePos};
use crate::files::walk::{FileKind, FileWalk, walk};
use crate::output::{Printer, Report};
use crate::progress;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Expected after a crash; the next open handles it.
    Note,
    /// Not damage the engine refuses, but worth knowing.
    Warning,
    /// The database will not open.
    Error,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding about one file.
#[derive(Debug, Clone)]
pub struct Problem {
    /// How bad.
    pub severity: Severity,
    /// Byte offset in the file, when it is about one place.
    pub offset: Option<u64>,
    /// What is wrong and what happens next.
    pub message: String,
}

/// The result for one file.
#[derive(Debug, Clone)]
pub struct FileCheck {
    /// The path, relative to the database directory.
    pub file: String,
    /// `segment`, `compacted` (a compressed segment), `wal`, `checkpoint`, `meta`, or `other`.
    pub kind: &'static str,
    /// Its size.
    pub bytes: u64,
    /// Intact frames.
    pub frames: usize,
    /// What was found.
    pub problems: Vec<Problem>,
}

impl FileCheck {
    fn new(file: String, kind: &'static str, bytes: u64) -> Self {
        FileCheck { file, kind, bytes, frames: 0, problems: Vec::new() }
    }
    fn add(&mut self, severity: Severity, offset: Option<u64>, message: impl Into<String>) {
        self.problems.push(Problem { severity, offset, message: message.into() });
    }
    fn status(&self) -> Severity {
        self.problems.iter().map(|p| p.severity).max().unwrap_or(Severity::Note)
    }
}

/// Everything verify found.
#[derive(Debug, Default)]
pub struct Verification {
    /// One entry per file checked.
    pub files: Vec<FileCheck>,
    /// The checkpoint seq, when the checkpoint is readable.
    pub checkpoint_seq: Option<u64>,
    /// The last seq in the WAL (the database's last committed seq), if any.
    pub wal_last_seq: Option<u64>,
}

impl Verification {
    fn count(&self, severity: Severity) -> usize {
        self.files.iter().flat_map(|f| &f.problems).filter(|p| p.severity == severity).count()
    }
}

/// Run `verify`.
pub fn run(dir: &Path, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    // An encrypted database needs its key, checked once here.
    super::keys::sealing_fs(&dir.join("CHECKPOINT"))?;
    let v = verify(dir)?;
    printer
        .report(&report(dir, &v))
        .map_err(|e| CliError::io("write", Path::new("standard output"), e))?;
    match v.count(Severity::Error) {
        0 => Ok(()),
        n => Err(CliError::Damaged(format!(
            "verify found {n} error(s) in {}: the database will not open until the damaged files \
             are restored from a backup",
            dir.display()
        ))),
    }
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// Hold the database's lock (read-only open of `LOCK`) while checking.
fn lock(dir: &Path) -> CliResult<Option<std::fs::File>> {
    let lock_path = dir.join("LOCK");
    let Ok(file) = std::fs::File::open(&lock_path) else { return Ok(None) };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(CliError::from(driftdb_core::Error::Locked {
                path: dir.to_path_buf(),
                lock: lock_path,
            }))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(CliError::io("lock", &lock_path, e)),
    }
}

/// Check the database in `dir`.
pub fn verify(dir: &Path) -> CliResult<Verification> {
    let cp_path = dir.join(CHECKPOINT_FILE);
    if !cp_path.exists() {
        return Err(super::no_database(dir));
    }
    let _lock = lock(dir)?;
    let total: u64 = walkdir_size(dir);
    let bar = progress::bar(Some(total), "verifying", "bytes");
    let mut v = Verification::default();

    let (check, cp) = checkpoint(dir, &cp_path);
    bar.inc(check.bytes);
    v.files.push(check);
    v.checkpoint_seq = cp.as_ref().map(|c| c.seq);

    let wal_path = dir.join(WAL_DIR).join(WAL_FILE);
    let check = wal(dir, &wal_path, cp.as_ref(), &mut v.wal_last_seq);
    bar.inc(check.bytes);
    v.files.push(check);

    let mut segments_end = 0;
    let tables_dir = dir.join("tables");
    let names = list(&tables_dir);
    if let Some(cp) = &cp {
        for missing in cp.tables.keys().filter(|t| !names.contains(t)) {
            let mut check = FileCheck::new(format!("tables/{missing}"), "table", 0);
            check.add(Severity::Error, None, "table directory named by the checkpoint is missing");
            v.files.push(check);
        }
    }
    for name in names {
        let table_dir = tables_dir.join(&name);
        if !table_dir.is_dir() {
            continue;
        }
        let pos = cp.as_ref().and_then(|c| c.tables.get(&name).copied());
        for check in table(dir, &table_dir, pos, &mut segments_end) {
            bar.inc(check.bytes);
            v.files.push(check);
        }
    }
    let clean = v.count(Severity::Error) == 0;
    if let (Some(cp), Some(check)) = (&cp, v.files.first_mut())
        && clean
        && segments_end != cp.seq
    {
        check.add(
            Severity::Error,
            None,
            format!(
                "the checkpoint is at seq {} but the segments end at seq {segments_end}",
                cp.seq
            ),
        );
    }
    bar.finish_and_clear();
    Ok(v)
}

fn walkdir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Sorted entry names of a directory (none when it cannot be read).
fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Read a file, recording a failure as an error of `check`.
fn read(path: &Path, check: &mut FileCheck) -> Option<Vec<u8>> {
    // Sealed files of an encrypted database are opened (the key was checked in `run`).
    match super::keys::read_logical(path) {
        Ok(data) => {
            check.bytes = data.len() as u64;
            Some(data)
        }
        Err(e) => {
            check.add(Severity::Error, None, format!("cannot read: {e}"));
            None
        }
    }
}

fn engine_verdict(check: &mut FileCheck, path: &Path, data: &[u8]) -> bool {
    match check_file(path, data) {
        Ok(_) => true,
        Err(driftdb_core::Error::Corrupt { offset, reason, .. }) => {
            check.add(Severity::Error, Some(offset), reason);
            false
        }
        Err(e) => {
            check.add(Severity::Error, None, e.to_string());
            false
        }
    }
}

fn intact_frames(w: &FileWalk, below: u64) -> usize {
    w.frames
        .iter()
        .filter(|f| f.crc_ok && f.offset < below && !matches!(f.content, Content::Invalid(_)))
        .count()
}

fn checkpoint(dir: &Path, path: &Path) -> (FileCheck, Option<CheckpointInfo>) {
    let mut check = FileCheck::new(relative(dir, path), "checkpoint", 0);
    let Some(data) = read(path, &mut check) else { return (check, None) };
    if !engine_verdict(&mut check, path, &data) {
        return (check, None);
    }
    check.frames = 1;
    let info = walk(&data).and_then(|w| {
        w.frames.into_iter().find_map(|f| match f.content {
            Content::Checkpoint(v) => Some(CheckpointInfo::from_value(&v)),
            _ => None,
        })
    });
    match info {
        Some(Ok(info)) => (check, Some(info)),
        Some(Err(why)) => {
            check.add(
                Severity::Error,
                Some(16),
                format!("the checkpoint record is malformed: {why}"),
            );
            (check, None)
        }
        None => {
            check.add(Severity::Error, Some(16), "no checkpoint record");
            (check, None)
        }
    }
}

fn wal(
    dir: &Path,
    path: &Path,
    cp: Option<&CheckpointInfo>,
    last_seq: &mut Option<u64>,
) -> FileCheck {
    let mut check = FileCheck::new(relative(dir, path), "wal", 0);
    let Some(data) = read(path, &mut check) else { return check };
    let engine_ok = engine_verdict(&mut check, path, &data);
    let Some(w) = walk(&data) else { return check };
    let damage = w.first_damage();
    let end = damage.as_ref().map_or(u64::MAX, |d| d.0);
    check.frames = intact_frames(&w, end);
    if let (true, Some((offset, reason))) = (engine_ok, &damage) {
        check.add(
            Severity::Warning,
            Some(*offset),
            format!(
                "torn tail ({reason}; {} bytes): a batch that was never acknowledged; the next \
                 open cuts it off",
                w.len - offset
            ),
        );
    }
    let seqs: Vec<u64> = w
        .frames
        .iter()
        .filter(|f| f.offset < end)
        .filter_map(|f| match &f.content {
            Content::Batch(txns) => Some(txns.iter().map(|t| t.seq)),
            _ => None,
        })
        .flatten()
        .collect();
    *last_seq = seqs.last().copied();
    if let Some(cp) = cp {
        let after: Vec<u64> = seqs.iter().copied().filter(|&s| s > cp.seq).collect();
        match after.first() {
            Some(&first) if first != cp.seq + 1 => check.add(
                Severity::Error,
                None,
                format!("the WAL continues at seq {first} but the checkpoint is at seq {}", cp.seq),
            ),
            Some(_) => check.add(
                Severity::Note,
                None,
                format!(
                    "{} transaction(s) after the checkpoint (seq {}..{}): the next open copies them into the segments",
                    after.len(),
                    cp.seq + 1,
                    after.last().copied().unwrap_or(cp.seq)
                ),
            ),
            None => {}
        }
    }
    check
}

/// Check one table directory: its segments (the live set the checkpoint names, in history
/// order, then every other file of `segments/`), then its other files.
fn table(
    dir: &Path,
    table_dir: &Path,
    pos: Option<TablePos>,
    segments_end: &mut u64,
) -> Vec<FileCheck> {
    let mut out = Vec::new();
    let seg_dir = table_dir.join(SEGMENTS_DIR);
    let names = list(&seg_dir);
    // The live set with the bytes the checkpoint trusts of each (`None`: the whole file).
    let mut live: Vec<(String, Option<u64>)> = Vec::new();
    if let Some(pos) = pos {
        if let Some(c) = pos.compacted {
            live.extend((1..=c.segments).map(|n| (compacted_name(c.generation, n), None)));
        }
        live.extend(
            (pos.first_plain()..=pos.segment)
                .map(|id| (segment_name(id), (id == pos.segment).then_some(pos.len))),
        );
    }
    let mut last_seq = None;
    for (name, trusted) in &live {
        let path = seg_dir.join(name);
        if names.contains(name) {
            out.push(live_segment(dir, &path, *trusted, &mut last_seq));
        } else {
            let mut check = FileCheck::new(relative(dir, &path), segment_kind(name), 0);
            check.add(Severity::Error, None, "segment file named by the checkpoint is missing");
            out.push(check);
        }
    }
    *segments_end = (*segments_end).max(last_seq.unwrap_or(0));
    for name in names.iter().filter(|n| !live.iter().any(|(l, _)| l == *n)) {
        out.push(not_live(dir, &seg_dir.join(name), name, pos));
    }
    for sub in ["snapshots", "indexes"] {
        let sub_dir = table_dir.join(sub);
        for name in list(&sub_dir) {
            let path = sub_dir.join(&name);
            if path.is_file() {
                out.push(other_file(dir, &path));
            }
        }
    }
    let meta = table_dir.join("meta.json");
    if meta.exists() {
        let mut check = FileCheck::new(relative(dir, &meta), "meta", 0);
        if let Some(data) = read(&meta, &mut check)
            && let Err(e) = serde_json::from_slice::<Json>(&data)
        {
            check.add(
                Severity::Warning,
                None,
                format!("does not parse ({e}); it is derived: the next open rewrites it"),
            );
        }
        out.push(check);
    }
    out
}

/// `compacted` for a compressed segment's name, `segment` for a plain one's.
fn segment_kind(name: &str) -> &'static str {
    if parse_compacted_name(name).is_some() { "compacted" } else { "segment" }
}

/// Check one file of a table's live set: every frame within the bytes the checkpoint trusts
/// (`None`: all of it), and that its first seq follows `last_seq`, the last seq of the file
/// before it in the set (strictly: a transaction's events are never split across files).
fn live_segment(
    dir: &Path,
    path: &Path,
    trusted: Option<u64>,
    last_seq: &mut Option<u64>,
) -> FileCheck {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut check = FileCheck::new(relative(dir, path), segment_kind(&name), 0);
    let Some(data) = read(path, &mut check) else { return check };
    let trusted = trusted.unwrap_or(data.len() as u64);
    if (data.len() as u64) < trusted {
        check.add(
            Severity::Error,
            Some(data.len() as u64),
            format!("the segment is {} bytes but the checkpoint trusts {trusted}", data.len()),
        );
        return check;
    }
    let cut = usize::try_from(trusted).unwrap_or(data.len()).min(data.len());
    let trusted_data = data.get(..cut).unwrap_or_default();
    if engine_verdict(&mut check, path, trusted_data)
        && let Some(w) = walk(trusted_data)
    {
        check.frames = intact_frames(&w, trusted);
        let first = w.frames.iter().find_map(|f| f.seq.map(|seq| (f.offset, seq)));
        if let (Some(previous), Some((offset, seq))) = (*last_seq, first)
            && seq <= previous
        {
            check.add(
                Severity::Error,
                Some(offset),
                format!(
                    "seq {seq} follows seq {previous} of the previous segment: segments overlap"
                ),
            );
        }
        if let Some(last) = w.frames.iter().rev().find_map(|f| f.seq) {
            *last_seq = Some(last);
        }
    }
    if (data.len() as u64) > trusted {
        check.add(
            Severity::Note,
            Some(trusted),
            format!(
                "{} bytes after the checkpointed length: the next open cuts them off and rebuilds them from the WAL",
                data.len() as u64 - trusted
            ),
        );
        untrusted_tail(&mut check, &data, trusted);
    }
    check
}

/// A file of `segments/` outside the live set: what the next open does with it.
fn not_live(dir: &Path, path: &Path, name: &str, pos: Option<TablePos>) -> FileCheck {
    let compacted = pos.and_then(|p| p.compacted);
    let mut check = FileCheck::new(relative(dir, path), segment_kind(name), 0);
    if let Some(id) = parse_segment_name(name) {
        if let Some(pos) = pos
            && id < pos.first_plain()
        {
            check.add(
                Severity::Note,
                None,
                "retired by a compaction whose cleanup did not finish (its events are in the                  compacted segments): the next open removes it",
            );
            read(path, &mut check);
            return check;
        }
        check.add(
            Severity::Note,
            None,
            "written after the checkpoint: the next open removes it and rebuilds its events from the WAL",
        );
        if let Some(data) = read(path, &mut check) {
            untrusted_tail(&mut check, &data, 0);
        }
        return check;
    }
    let why = match (parse_compacted_name(name), compacted) {
        (Some((generation, _)), Some(c)) if generation < c.generation => {
            "an older compacted set, replaced by a later compaction whose cleanup did not finish"
        }
        (Some((generation, _)), Some(c)) if generation == c.generation => {
            "numbered past the compacted set the checkpoint names"
        }
        (Some(_), _) => "written by a compaction that did not reach its checkpoint",
        (None, _) if is_compaction_tmp(name) => {
            "a compacted segment a compaction was still writing when it stopped"
        }
        (None, _) => {
            check.kind = "other";
            check.add(
                Severity::Warning,
                None,
                "not a segment file name (NNNNNNNN.seg or compacted-GGGGGGGG-NNNNNNNN.seg); the                  engine ignores it",
            );
            return check;
        }
    };
    check.add(
        Severity::Note,
        None,
        format!("{why}: not part of the table; the next open removes it"),
    );
    read(path, &mut check);
    check
}

/// Report damage in the part of a segment the checkpoint does not trust.
fn untrusted_tail(check: &mut FileCheck, data: &[u8], from: u64) {
    let Some(w) = walk(data) else {
        check.add(Severity::Warning, Some(0), "not a segment file (bad magic)");
        return;
    };
    if let Some((offset, reason)) = w.first_damage().filter(|d| d.0 >= from) {
        check.add(
            Severity::Warning,
            Some(offset),
            format!("damaged after the checkpointed length ({reason}): the next open cuts it off"),
        );
    }
}

/// A snapshot or index file: checked when the engine knows its kind. A damaged snapshot is an
/// error (exit code 1) although the database opens: reads never use it, and it should be
/// replaced or removed.
fn other_file(dir: &Path, path: &Path) -> FileCheck {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if parse_snapshot_tmp_name(name).is_some() {
        let mut check = FileCheck::new(relative(dir, path), "snapshot", 0);
        check.add(Severity::Note, None, "a snapshot being written; the next open removes it");
        return check;
    }
    let snapshot = parse_snapshot_name(name).is_some();
    let index = name.ends_with(".idx");
    let kind = match (snapshot, index) {
        (true, _) => "snapshot",
        (_, true) => "index",
        _ => "other",
    };
    let mut check = FileCheck::new(relative(dir, path), kind, 0);
    let Some(data) = read(path, &mut check) else { return check };
    if FileKind::from_magic(&data).is_some() {
        if engine_verdict(&mut check, path, &data) {
            check.frames = walk(&data).map_or(0, |w| intact_frames(&w, u64::MAX));
        }
        return check;
    }
    match check_file(path, &data) {
        // An index file's ranges are not frames.
        Ok(_) if index => {}
        Ok(n) => check.frames = n,
        Err(driftdb_core::Error::Corrupt { offset: 0, reason, .. })
            if reason.starts_with("not a DriftDB") =>
        {
            check.add(
                Severity::Note,
                None,
                "not checked: this build does not know this kind of file",
            );
        }
        Err(driftdb_core::Error::Corrupt { offset, reason, .. }) if snapshot => check.add(
            Severity::Error,
            Some(offset),
            format!(
                "{reason}: reads do not use this snapshot (they replay from the segments); \
                 take a new one (driftdb snapshot) or remove the file"
            ),
        ),
        Err(driftdb_core::Error::Corrupt { offset, reason, .. }) if index => check.add(
            Severity::Warning,
            Some(offset),
            format!(
                "{reason}: an index file is derived; the next open rebuilds the index from the \
                 segments and the next close writes the file again"
            ),
        ),
        Err(driftdb_core::Error::Corrupt { offset, reason, .. }) => {
            check.add(Severity::Error, Some(offset), reason)
        }
        Err(e) => check.add(Severity::Error, None, e.to_string()),
    }
    check
}

fn report(dir: &Path, v: &Verification) -> Report {
    let (errors, warnings) = (v.count(Severity::Error), v.count(Severity::Warning));
    let frames: usize = v.files.iter().map(|f| f.frames).sum();
    let mut notes = Vec::new();
    for f in &v.files {
        for p in &f.problems {
            let at = p.offset.map_or(String::new(), |o| format!(" at byte {o}"));
            notes.push(format!("{}: {}{at}: {}", p.severity.name(), f.file, p.message));
        }
    }
    notes.push(match errors {
        0 => format!(
            "{}: {} files, {frames} frames checked: no damage ({warnings} warning(s))",
            dir.display(),
            v.files.len()
        ),
        n => format!(
            "{}: {} files, {frames} frames checked: {n} error(s), {warnings} warning(s)",
            dir.display(),
            v.files.len()
        ),
    });
    let problem_json = |p: &Problem| json!({"severity": p.severity.name(), "offset": p.offset, "message": p.message});
    Report {
        json: json!({
            "ok": errors == 0,
            "database": dir.display().to_string(),
            "errors": errors,
            "warnings": warnings,
            "frames": frames,
            "checkpoint_seq": v.checkpoint_seq,
            "wal_last_seq": v.wal_last_seq,
            "files": v.files.iter().map(|f| json!({
                "file": f.file,
                "kind": f.kind,
                "bytes": f.bytes,
                "frames": f.frames,
                "status": if f.problems.iter().any(|p| p.severity == Severity::Error) { "error" } else if f.problems.iter().any(|p| p.severity == Severity::Warning) { "warning" } else { "ok" },
                "problems": f.problems.iter().map(problem_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
        columns: ["file", "kind", "bytes", "frames", "status"].map(String::from).to_vec(),
        rows: v
            .files
            .iter()
            .map(|f| {
                let status = match f.status() {
                    Severity::Error => "ERROR",
                    Severity::Warning => "warning",
                    Severity::Note => "ok",
                };
                vec![
                    Some(json!(f.file)),
                    Some(json!(f.kind)),
                    Some(json!(f.bytes)),
                    Some(json!(f.frames)),
                    Some(json!(status)),
                ]
            })
            .collect(),
        notes,
    }
}
