//! Keys of encrypted databases: where a command gets them, reading files of an encrypted
//! database as the engine sees them (`verify`, `inspect`), and `driftdb rekey`.
//!
//! The key is `--key-file FILE` (global, any command), else `DRIFTDB_KEY`; the new key of
//! `rekey` is `--new-key-file FILE`, else `DRIFTDB_NEW_KEY`. Both are 64 hex characters. A
//! key is parsed only when a command needs one, so a malformed `DRIFTDB_KEY` does not get in
//! the way of a plaintext database unless the key is used.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use driftdb_core::crypto::{ENCRYPTION_FILE, EncryptedFs, KeyCheck};
use driftdb_core::storage::fs::{Fs, OsFs};
use driftdb_core::{EncryptionKey, Error};
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::output::{Printer, Report};

static KEY_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Remember `--key-file` (called once, before the command runs).
pub fn set_key_file(path: Option<PathBuf>) {
    let _ = KEY_FILE.set(path);
}

fn key_from(file: Option<&Path>, var: &str) -> CliResult<Option<EncryptionKey>> {
    if let Some(path) = file {
        return Ok(Some(EncryptionKey::from_file(path)?));
    }
    match std::env::var(var) {
        Ok(text) if !text.trim().is_empty() => {
            let key = EncryptionKey::from_hex(&text).map_err(|e| match e {
                Error::BadKey { reason } => Error::BadKey { reason: format!("{var}: {reason}") },
                other => other,
            })?;
            Ok(Some(key))
        }
        _ => Ok(None),
    }
}

/// The key given to this process, if any.
pub fn key() -> CliResult<Option<EncryptionKey>> {
    key_from(KEY_FILE.get().and_then(|p| p.as_deref()), "DRIFTDB_KEY")
}

/// The directory holding the `ENCRYPTION` file nearest above `path`, if any.
fn encrypted_root(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute.ancestors().skip(1).find(|d| d.join(ENCRYPTION_FILE).is_file()).map(Path::to_path_buf)
}

/// The sealing file system for the encrypted database or backup `path` is in (`None`: it is
/// not in one). Errors: no key given, the wrong key.
pub fn sealing_fs(path: &Path) -> CliResult<Option<EncryptedFs>> {
    let Some(root) = encrypted_root(path) else { return Ok(None) };
    let enc = root.join(ENCRYPTION_FILE);
    let bytes = std::fs::read(&enc).map_err(|e| CliError::io("read", &enc, e))?;
    let kc = KeyCheck::decode(&enc, &bytes)?;
    let key = key()?.ok_or_else(|| Error::KeyRequired { path: root.clone() })?;
    if !kc.matches(&key) {
        return Err(Error::WrongKey { path: root }.into());
    }
    Ok(Some(EncryptedFs::new(Arc::new(OsFs), Arc::new(kc.sealer(&key)))))
}

/// The bytes of a database file as the engine sees them: opened when it is sealed.
pub fn read_logical(path: &Path) -> CliResult<Vec<u8>> {
    let data = match sealing_fs(path)? {
        Some(efs) => efs.read(path),
        None => std::fs::read(path),
    };
    data.map_err(|e| CliError::from(Error::Io { path: path.to_path_buf(), source: e }))
}

/// Run `rekey`.
pub fn rekey(
    dir: &Path,
    new_key_file: Option<&Path>,
    printer: &mut Printer<impl std::io::Write>,
) -> CliResult {
    let old = key()?.ok_or_else(|| {
        CliError::Usage("rekey needs the current key: DRIFTDB_KEY or --key-file".into())
    })?;
    let new = key_from(new_key_file, "DRIFTDB_NEW_KEY")?.ok_or_else(|| {
        CliError::Usage("rekey needs the new key: DRIFTDB_NEW_KEY or --new-key-file".into())
    })?;
    let absolute = std::path::absolute(dir).map_err(|e| CliError::io("resolve", dir, e))?;
    let r = driftdb_core::crypto::rekey(Arc::new(OsFs), &absolute, &old, &new).map_err(
        |e| match e {
            Error::NotADatabase { .. } => super::no_database(dir),
            e => e.into(),
        },
    )?;
    let report = Report {
        json: json!({
            "database": dir.display().to_string(),
            "key_id": r.key_id,
            "files": r.files,
            "bytes": r.bytes,
        }),
        columns: ["database", "key_id", "files", "bytes"].map(String::from).to_vec(),
        rows: vec![vec![
            Some(json!(dir.display().to_string())),
            Some(json!(r.key_id)),
            Some(json!(r.files)),
            Some(json!(r.bytes)),
        ]],
        notes: vec![format!(
            "re-encrypted {} files of {} under key id {}: open it with the new key from now on",
            r.files,
            dir.display(),
            r.key_id
        )],
    };
    printer.report(&report).map_err(|e| CliError::io("write", Path::new("standard output"), e))
}
