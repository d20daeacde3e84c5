//! `driftdb backup`, `driftdb restore` and `driftdb verify-backup`: the engine's backups
//! (`driftdb_core::backup`) from the command line.
//!
//! - `backup -d DIR --to PATH [--base BACKUP]`: a consistent backup of the database while it
//!   stays usable (full, or incremental against a base backup); prints its seq, files, bytes.
//! - `restore --from PATH --to DIR [--as-of WHEN]`: verifies the backup (and its chain of bases)
//!   first, then restores it into a new or empty directory, up to `@seq:N` or a time if asked.
//! - `verify-backup PATH`: one row per problem (missing, stray, wrong length or checksum,
//!   missing or different base); exit status 1 when there is any.

use std::path::Path;

use driftdb_core::backup;
use driftdb_ql::format_unix_ms;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::output::{Printer, Report};

fn stdout_error(e: std::io::Error) -> CliError {
    CliError::io("write", Path::new("standard output"), e)
}

fn time(ms: u64) -> Option<String> {
    (ms > 0).then(|| format_unix_ms(ms))
}

/// Run `backup`.
pub fn backup(
    dir: &Path,
    to: &Path,
    base: Option<&Path>,
    printer: &mut Printer<impl std::io::Write>,
) -> CliResult {
    let db = super::open(dir)?;
    let r = match base {
        Some(base) => db.backup_incremental(to, base)?,
        None => db.backup_to(to)?,
    };
    db.close()?;
    let report = Report {
        json: json!({
            "backup": r.path.display().to_string(),
            "seq": r.seq,
            "time": time(r.unix_ms),
            "files": r.files,
            "bytes": r.bytes,
            "bytes_copied": r.bytes_copied,
            "base": r.base.as_ref().map(|b| b.display().to_string()),
        }),
        columns: ["backup", "seq", "files", "bytes", "bytes_copied"].map(String::from).to_vec(),
        rows: vec![vec![
            Some(json!(r.path.display().to_string())),
            Some(json!(r.seq)),
            Some(json!(r.files)),
            Some(json!(r.bytes)),
            Some(json!(r.bytes_copied)),
        ]],
        notes: vec![r.to_string()],
    };
    printer.report(&report).map_err(stdout_error)
}

/// Run `restore`.
pub fn restore(
    from: &Path,
    to: &Path,
    as_of: Option<&str>,
    printer: &mut Printer<impl std::io::Write>,
) -> CliResult {
    let upto = as_of.map(driftdb_ql::parse_as_of).transpose()?;
    let r = match super::keys::key()? {
        Some(key) => backup::restore_with_key(from, to, upto, &key)?,
        None => backup::restore(from, to, upto)?,
    };
    let report = Report {
        json: json!({
            "database": r.path.display().to_string(),
            "seq": r.seq,
            "time": time(r.unix_ms),
            "backup_seq": r.backup_seq,
            "files": r.files,
            "bytes": r.bytes,
        }),
        columns: ["database", "seq", "backup_seq", "files", "bytes"].map(String::from).to_vec(),
        rows: vec![vec![
            Some(json!(r.path.display().to_string())),
            Some(json!(r.seq)),
            Some(json!(r.backup_seq)),
            Some(json!(r.files)),
            Some(json!(r.bytes)),
        ]],
        notes: vec![r.to_string()],
    };
    printer.report(&report).map_err(stdout_error)
}

/// Run `verify-backup`: exit status 1 when anything is wrong.
pub fn verify(path: &Path, printer: &mut Printer<impl std::io::Write>) -> CliResult {
    let v = match super::keys::key()? {
        Some(key) => backup::verify_with_key(path, &key)?,
        None => backup::verify(path)?,
    };
    let problems: Vec<_> = v
        .problems
        .iter()
        .map(|p| json!({"file": p.file.display().to_string(), "problem": p.reason}))
        .collect();
    let chain: Vec<String> = v.chain.iter().map(|c| c.display().to_string()).collect();
    let summary = format!(
        "backup at seq {}: {} files, {} bytes, {} backup(s) in the chain, {} problem(s)",
        v.seq,
        v.files,
        v.bytes,
        v.chain.len(),
        v.problems.len()
    );
    let report = Report {
        json: json!({
            "backup": path.display().to_string(),
            "seq": v.seq,
            "files": v.files,
            "bytes": v.bytes,
            "chain": chain,
            "ok": v.is_ok(),
            "problems": problems,
        }),
        columns: ["file", "problem"].map(String::from).to_vec(),
        rows: v
            .problems
            .iter()
            .map(|p| vec![Some(json!(p.file.display().to_string())), Some(json!(p.reason))])
            .collect(),
        notes: vec![summary],
    };
    printer.report(&report).map_err(stdout_error)?;
    if v.is_ok() {
        Ok(())
    } else {
        Err(CliError::Damaged(format!(
            "verify-backup found {} problem(s) in {}: restore from another backup",
            v.problems.len(),
            path.display()
        )))
    }
}
