//! A backup's `MANIFEST.json`, and [`verify`]: checking every file of a backup against it.
//!
//! ```text
//! { "format_version": 1,
//!   "seq": S, "unix_ms": T,            the backup holds exactly the transactions 1..=S;
//!                                      T is the commit time of S
//!   "created_unix_ms": C,              when the backup was taken
//!   "source": "/abs/path/of/the/db",
//!   "base": null | { "path": "...", "seq": S0, "manifest_sha256": "hex" },
//!   "files": [ { "path": "tables/t/segments/00000001.seg", "len": n, "sha256": "hex",
//!                "base_len": b, "stored_sha256": "hex" }, ... ],
//!   "manifest_sha256": "hex" }
//! ```
//!
//! `files` lists every file of the database the backup restores to, with its whole length and
//! SHA-256. In a full backup `base_len` is 0 and the file is stored whole under `path`. In an
//! incremental backup (`base` set) a file whose first `base_len` bytes are the base's copy of
//! the same path (append-only plain segments only grow) is stored as its last `len - base_len`
//! bytes; when nothing changed (`base_len == len`) nothing is stored. `stored_sha256` is the
//! SHA-256 of the stored bytes, so one backup can be checked without its base. A backup is
//! checked against its chain by rebuilding each file from the chain and comparing `sha256`.
//!
//! `manifest_sha256` is the SHA-256 of the compact JSON of the manifest without that field (as
//! serde writes this struct: fields in the order above), so a damaged manifest is detected too.
//! The manifest is written last, atomically (`MANIFEST.json.tmp`, fsync, rename, fsync the
//! directory): a backup directory without it is an incomplete backup.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::storage::fs::{Fs, OsFs};

/// The manifest's file name, in the backup directory.
pub const MANIFEST_FILE: &str = "MANIFEST.json";

/// The manifest format this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The base an incremental backup was taken against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    /// The base backup's directory, as given when the backup was taken (absolute).
    pub path: PathBuf,
    /// The base backup's seq.
    pub seq: u64,
    /// The base manifest's `manifest_sha256`: the base must be exactly that backup.
    pub manifest_sha256: String,
}

/// One file of the database a backup restores to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the database directory, with `/` separators.
    pub path: String,
    /// Length of the whole file.
    pub len: u64,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    /// Bytes taken from the base backup's copy of the file (0 in a full backup).
    pub base_len: u64,
    /// SHA-256 of the bytes stored in this backup (`len - base_len` of them).
    pub stored_sha256: String,
}

impl FileEntry {
    /// Bytes of the file stored in this backup.
    pub fn stored_len(&self) -> u64 {
        self.len.saturating_sub(self.base_len)
    }
}

/// The contents of `MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub format_version: u32,
    /// The last transaction in the backup.
    pub seq: u64,
    /// Its commit time (Unix ms; 0 for an empty database).
    pub unix_ms: u64,
    /// When the backup was taken (Unix ms).
    pub created_unix_ms: u64,
    /// The database directory the backup was taken from.
    pub source: PathBuf,
    /// The base backup of an incremental backup.
    pub base: Option<BaseRef>,
    /// Every file of the restored database.
    pub files: Vec<FileEntry>,
    /// SHA-256 of the manifest without this field.
    #[serde(default)]
    pub manifest_sha256: String,
}

/// Lowercase hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

impl Manifest {
    fn body_sha256(&self) -> Result<String> {
        let mut body = self.clone();
        body.manifest_sha256 = String::new();
        let json = serde_json::to_vec(&body).map_err(|e| Error::invalid(e.to_string()))?;
        Ok(sha256_hex(&json))
    }

    /// Fill in `manifest_sha256` and encode as pretty JSON.
    pub(crate) fn seal(&mut self) -> Result<Vec<u8>> {
        self.manifest_sha256 = self.body_sha256()?;
        serde_json::to_vec_pretty(self).map_err(|e| Error::invalid(e.to_string()))
    }

    /// Read and check the manifest of the backup in `dir`.
    pub fn load(fs: &dyn Fs, dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        if !fs.exists(&path) {
            return Err(Error::corrupt(
                &path,
                0,
                "no MANIFEST.json: not a backup, or a backup that did not finish",
            ));
        }
        let data = fs.read(&path).map_err(|e| Error::io(&path, e))?;
        let m: Manifest = serde_json::from_slice(&data)
            .map_err(|e| Error::corrupt(&path, e.column() as u64, format!("bad manifest: {e}")))?;
        if m.format_version != MANIFEST_VERSION {
            return Err(Error::UnsupportedVersion {
                file: path,
                found: m.format_version,
                supported: MANIFEST_VERSION,
            });
        }
        if m.body_sha256()? != m.manifest_sha256 {
            return Err(Error::corrupt(&path, 0, "manifest checksum does not match its contents"));
        }
        for f in &m.files {
            if !safe_relative(&f.path) {
                return Err(Error::corrupt(&path, 0, format!("bad file path `{}`", f.path)));
            }
            if f.base_len > f.len || (f.base_len > 0 && m.base.is_none()) {
                return Err(Error::corrupt(&path, 0, format!("bad base length for `{}`", f.path)));
            }
        }
        Ok(m)
    }

    /// The directory of this backup's base, when it has one (a relative base path is taken
    /// relative to the backup directory).
    pub fn base_dir(&self, dir: &Path) -> Option<PathBuf> {
        self.base.as_ref().map(|b| dir.join(&b.path))
    }
}

/// A manifest path names a file inside the backup: relative, no `..`, no empty parts.
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && path != MANIFEST_FILE
}

/// One thing wrong with a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file (or directory) concerned.
    pub file: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The backup's seq.
    pub seq: u64,
    /// The backups checked: this one first, then its base, the base's base, and so on.
    pub chain: Vec<PathBuf>,
    /// Files of the restored database checked.
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// Everything wrong; empty when the backup is sound.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as an error, when something is wrong.
    pub fn into_result(self) -> Result<VerifyReport> {
        match self.problems.first() {
            None => Ok(self),
            Some(first) => Err(Error::corrupt(
                &first.file,
                0,
                format!(
                    "the backup fails verification ({} problem(s)); first: {}",
                    self.problems.len(),
                    first.reason
                ),
            )),
        }
    }
}

/// Check the backup in `dir` and its chain of bases: every file the manifests list is there
/// with the stored length and checksum, no other file is, and every file of the restored
/// database rebuilds from the chain with its length and checksum. Damage is reported per file
/// in [`VerifyReport::problems`]; `Err` only when `dir` has no readable manifest.
///
/// An encrypted backup (one with an `ENCRYPTION` file) needs its key:
/// [`Error::KeyRequired`] here, see [`verify_with_key`].
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    if OsFs.exists(&dir.join(crate::crypto::ENCRYPTION_FILE)) {
        return Err(Error::KeyRequired { path: dir.to_path_buf() });
    }
    verify_with(&OsFs, dir)
}

/// [`verify`] of an encrypted backup: the key is checked against the backup's `ENCRYPTION`
/// file ([`Error::WrongKey`]), then every file is opened (each record authenticated) and
/// checked as [`verify`] does.
pub fn verify_with_key(dir: &Path, key: &crate::crypto::EncryptionKey) -> Result<VerifyReport> {
    let efs = crate::crypto::rekey::backup_fs(std::sync::Arc::new(OsFs), dir, key)?;
    verify_with(&efs, dir)
}

/// [`verify`] through a given file system.
pub fn verify_with(fs: &dyn Fs, dir: &Path) -> Result<VerifyReport> {
    let manifest = Manifest::load(fs, dir)?;
    let mut report = VerifyReport {
        seq: manifest.seq,
        chain: vec![dir.to_path_buf()],
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.len).sum(),
        problems: Vec::new(),
    };
    let chain = load_chain(fs, dir, manifest, &mut report.problems);
    report.chain = chain.iter().map(|(d, _)| d.clone()).collect();
    for (dir, m) in &chain {
        check_stored(fs, dir, m, &mut report.problems);
    }
    if report.problems.is_empty()
        && chain.len() > 1
        && let Some((_, top)) = chain.first()
    {
        for entry in &top.files {
            match rebuild(fs, &chain, 0, entry) {
                Ok(data) if sha256_hex(&data) == entry.sha256 => {}
                Ok(_) => report.problems.push(Problem {
                    file: dir.join(&entry.path),
                    reason: "rebuilt from the chain of backups, the checksum does not match".into(),
                }),
                Err(e) => report
                    .problems
                    .push(Problem { file: dir.join(&entry.path), reason: e.to_string() }),
            }
        }
    }
    Ok(report)
}

/// The backup in `dir` and its bases, newest first. A base that is missing or is not the one
/// recorded is a problem, and ends the chain.
pub(crate) fn load_chain(
    fs: &dyn Fs,
    dir: &Path,
    manifest: Manifest,
    problems: &mut Vec<Problem>,
) -> Vec<(PathBuf, Manifest)> {
    let mut chain = vec![(dir.to_path_buf(), manifest)];
    while let Some((dir, m)) = chain.last() {
        let Some(base) = &m.base else { break };
        let base_dir = m.base_dir(dir).unwrap_or_default();
        let file = base_dir.join(MANIFEST_FILE);
        let loaded = match Manifest::load(fs, &base_dir) {
            Ok(b) if b.manifest_sha256 != base.manifest_sha256 || b.seq != base.seq => {
                Err("the base backup there is not the one this backup was taken against".into())
            }
            Ok(_) if chain.iter().any(|(d, _)| *d == base_dir) => {
                Err("the chain of base backups loops".into())
            }
            Ok(b) => Ok(b),
            Err(e) => Err(format!("base backup: {e}")),
        };
        match loaded {
            Ok(b) => chain.push((base_dir, b)),
            Err(reason) => {
                problems.push(Problem { file, reason });
                break;
            }
        }
    }
    chain
}

/// Check the files stored in one backup directory against its manifest.
fn check_stored(fs: &dyn Fs, dir: &Path, m: &Manifest, problems: &mut Vec<Problem>) {
    let mut expected = BTreeSet::new();
    for entry in &m.files {
        let path = dir.join(&entry.path);
        if entry.stored_len() == 0 && entry.base_len > 0 {
            continue; // unchanged since the base: nothing stored
        }
        expected.insert(entry.path.clone());
        if !fs.exists(&path) {
            problems.push(Problem { file: path, reason: "missing".into() });
            continue;
        }
        match fs.read(&path) {
            Err(e) => problems.push(Problem { file: path, reason: format!("unreadable: {e}") }),
            Ok(data) if data.len() as u64 != entry.stored_len() => problems.push(Problem {
                file: path,
                reason: format!(
                    "{} bytes, the manifest says {} bytes",
                    data.len(),
                    entry.stored_len()
                ),
            }),
            Ok(data) if sha256_hex(&data) != entry.stored_sha256 => problems
                .push(Problem { file: path, reason: "SHA-256 does not match the manifest".into() }),
            Ok(_) => {}
        }
    }
    let mut found = Vec::new();
    list_files(fs, dir, "", &mut found, problems);
    for rel in found {
        if rel != MANIFEST_FILE && !expected.contains(&rel) {
            problems.push(Problem {
                file: dir.join(&rel),
                reason: "not in the manifest (a stray file)".into(),
            });
        }
    }
}

/// Every file under `dir`, as relative `/`-separated paths.
fn list_files(
    fs: &dyn Fs,
    root: &Path,
    rel: &str,
    out: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let names = match fs.list(&dir) {
        Ok(names) => names,
        Err(e) => {
            problems.push(Problem { file: dir, reason: format!("cannot list: {e}") });
            return;
        }
    };
    for name in names {
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        if fs.is_dir(&root.join(&child)) {
            list_files(fs, root, &child, out, problems);
        } else {
            out.push(child);
        }
    }
}

/// The whole content of `entry` of `chain[at]`, rebuilt from the chain of backups.
pub(crate) fn rebuild(
    fs: &dyn Fs,
    chain: &[(PathBuf, Manifest)],
    at: usize,
    entry: &FileEntry,
) -> Result<Vec<u8>> {
    let Some((dir, _)) = chain.get(at) else {
        return Err(Error::invalid(format!("no base backup holds `{}`", entry.path)));
    };
    let mut data = if entry.base_len > 0 {
        let base_entry = chain
            .get(at + 1)
            .and_then(|(_, m)| m.files.iter().find(|f| f.path == entry.path))
            .ok_or_else(|| {
                Error::corrupt(dir.join(&entry.path), 0, "the base backup does not have this file")
            })?;
        let mut base = rebuild(fs, chain, at + 1, base_entry)?;
        if (base.len() as u64) < entry.base_len {
            return Err(Error::corrupt(
                dir.join(&entry.path),
                0,
                "the base backup's copy is shorter than this backup builds on",
            ));
        }
        base.truncate(entry.base_len as usize);
        base
    } else {
        Vec::new()
    };
    if entry.stored_len() > 0 {
        let path = dir.join(&entry.path);
        data.extend(fs.read(&path).map_err(|e| Error::io(&path, e))?);
    }
    Ok(data)
}
