//! Opening an encrypted root, and key rotation (`driftdb rekey`).
//!
//! **Rekey steps** ([`rekey`]), with the database closed (its `LOCK` held throughout):
//! 1. open and close the database with the old key, so it is checkpointed and its WAL empty;
//! 2. remove a stale `rekey.tmp/`, then write under it a copy of every sealed file,
//!    re-sealed under the new key (new salts), and `rekey.tmp/ENCRYPTION` with the new key
//!    id (old id + 1) and the new key's check value; fsync every file and directory;
//! 3. write the `REKEY` journal atomically (temporary file, fsync, rename, fsync the root).
//!    **This is the switch**: before it is durable the database opens with the old key only
//!    (and open removes `rekey.tmp/`); after it, with the new key only;
//! 4. move every file of `rekey.tmp/` over its original (renames, each directory fsynced),
//!    `ENCRYPTION` last; remove `REKEY`, fsync the root; remove `rekey.tmp/`.
//!
//! Open finishes step 4 whenever it finds `REKEY` (idempotently: a file already moved is
//! simply no longer in `rekey.tmp/`), so a crash at any point leaves a database that opens
//! with exactly one of the two keys.
//!
//! `REKEY` (plaintext, 20 bytes): magic `"DRIFTRKY"`, u32 LE version 1, u32 LE the new key
//! id, CRC-32 of bytes 0..16.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crypto::keycheck::{ENCRYPTION_FILE, KeyCheck};
use crate::crypto::{EncryptedFs, EncryptionKey};
use crate::db::{Database, Options};
use crate::error::{Error, Result};
use crate::storage::fs::{Fs, write_atomic};

/// The rekey journal at the database root.
pub const REKEY_FILE: &str = "REKEY";
/// Where a rekey stages the re-sealed files.
pub const REKEY_TMP_DIR: &str = "rekey.tmp";
const REKEY_MAGIC: [u8; 8] = *b"DRIFTRKY";

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn encode_journal(key_id: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..8].copy_from_slice(&REKEY_MAGIC);
    out[8..12].copy_from_slice(&1u32.to_le_bytes());
    out[12..16].copy_from_slice(&key_id.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_journal(path: &Path, data: &[u8]) -> Result<u32> {
    let bytes: &[u8; 20] =
        data.try_into().map_err(|_| Error::corrupt(path, 0, "REKEY journal is not 20 bytes"))?;
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if bytes[..8] != REKEY_MAGIC || crc != crc32fast::hash(&bytes[..16]) {
        return Err(Error::corrupt(path, 0, "REKEY journal fails its checks"));
    }
    Ok(u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]))
}

/// Read and check the `ENCRYPTION` file at `path` against `key`.
fn check_key(
    fs: &dyn Fs,
    root: &Path,
    path: &Path,
    key: Option<&EncryptionKey>,
) -> Result<KeyCheck> {
    let kc = KeyCheck::decode(path, &fs.read(path).map_err(io_at(path))?)?;
    let key = key.ok_or_else(|| Error::KeyRequired { path: root.to_path_buf() })?;
    if !kc.matches(key) {
        return Err(Error::WrongKey { path: root.to_path_buf() });
    }
    Ok(kc)
}

/// Called by open, after the lock is taken: finish or clean up a key rotation, check the key,
/// and return the sealing file system of an encrypted database (`None`: plaintext).
/// Errors: [`Error::KeyRequired`], [`Error::WrongKey`], [`Error::NotEncrypted`] (a key for a
/// database that has a `CHECKPOINT` and no `ENCRYPTION`), [`Error::BadKey`].
pub(crate) fn open_root(
    fs: &Arc<dyn Fs>,
    root: &Path,
    key: Option<&EncryptionKey>,
) -> Result<Option<EncryptedFs>> {
    let enc_path = root.join(ENCRYPTION_FILE);
    let journal = root.join(REKEY_FILE);
    let staged = root.join(REKEY_TMP_DIR);
    if fs.exists(&journal) {
        let new_id = decode_journal(&journal, &fs.read(&journal).map_err(io_at(&journal))?)?;
        let staged_enc = staged.join(ENCRYPTION_FILE);
        let check_path = if fs.exists(&staged_enc) { staged_enc } else { enc_path.clone() };
        let kc = check_key(fs.as_ref(), root, &check_path, key)?;
        if kc.key_id != new_id {
            return Err(Error::corrupt(&check_path, 0, "key id differs from the REKEY journal's"));
        }
        finish(fs.as_ref(), root)?;
    }
    if !fs.exists(&enc_path) {
        if key.is_some() && fs.exists(&root.join(crate::storage::checkpoint::CHECKPOINT_FILE)) {
            return Err(Error::NotEncrypted { path: root.to_path_buf() });
        }
        return Ok(None);
    }
    let kc = check_key(fs.as_ref(), root, &enc_path, key)?;
    if fs.exists(&staged) {
        // A rekey that never reached its switch: its copies are of no use.
        remove_tree(fs.as_ref(), &staged)?;
        fs.sync_dir(root).map_err(io_at(root))?;
    }
    Ok(Some(EncryptedFs::new(fs.clone(), Arc::new(kc.sealer_for(key)?))))
}

/// The sealing file system for the encrypted backup (or database) in `dir`, after checking
/// `key` against its `ENCRYPTION` file.
pub(crate) fn backup_fs(fs: Arc<dyn Fs>, dir: &Path, key: &EncryptionKey) -> Result<EncryptedFs> {
    let path = dir.join(ENCRYPTION_FILE);
    if !fs.exists(&path) {
        return Err(Error::NotEncrypted { path: dir.to_path_buf() });
    }
    let kc = check_key(fs.as_ref(), dir, &path, Some(key))?;
    Ok(EncryptedFs::new(fs, Arc::new(kc.sealer(key))))
}

/// Make `root` an encrypted database under `key`: write its `ENCRYPTION` file (atomically)
/// before anything else.
pub(crate) fn create_root(
    fs: &Arc<dyn Fs>,
    root: &Path,
    key: &EncryptionKey,
) -> Result<EncryptedFs> {
    let kc = KeyCheck::generate(key)?;
    let path = root.join(ENCRYPTION_FILE);
    write_atomic(fs.as_ref(), &path, &kc.encode()).map_err(io_at(&path))?;
    Ok(EncryptedFs::new(fs.clone(), Arc::new(kc.sealer(key))))
}

impl KeyCheck {
    fn sealer_for(&self, key: Option<&EncryptionKey>) -> Result<crate::crypto::sealed::Sealer> {
        let key = key.ok_or(Error::BadKey { reason: "no key".into() })?;
        Ok(self.sealer(key))
    }
}

/// Every file under `dir` (recursively), relative to it, `/`-separated, sorted.
fn walk(fs: &dyn Fs, dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for name in fs.list(dir).map_err(io_at(dir))? {
        let path = dir.join(&name);
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        if fs.is_dir(&path) {
            walk(fs, &path, &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// Every directory under `dir` (recursively), deepest first.
fn dirs_under(fs: &dyn Fs, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for name in fs.list(dir).map_err(io_at(dir))? {
        let path = dir.join(&name);
        if fs.is_dir(&path) {
            dirs_under(fs, &path, out)?;
            out.push(path);
        }
    }
    Ok(())
}

fn remove_tree(fs: &dyn Fs, dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    walk(fs, dir, "", &mut files)?;
    for rel in files {
        let path = dir.join(&rel);
        fs.remove_file(&path).map_err(io_at(&path))?;
    }
    let mut dirs = Vec::new();
    dirs_under(fs, dir, &mut dirs)?;
    for d in dirs {
        fs.remove_dir(&d).map_err(io_at(&d))?;
    }
    fs.remove_dir(dir).map_err(io_at(dir))
}

/// Step 4: move the staged files into place, `ENCRYPTION` last, then drop the journal.
fn finish(fs: &dyn Fs, root: &Path) -> Result<()> {
    let staged = root.join(REKEY_TMP_DIR);
    if fs.exists(&staged) {
        let mut files = Vec::new();
        walk(fs, &staged, "", &mut files)?;
        let (mut targets, mut sources) = (BTreeSet::new(), BTreeSet::new());
        for rel in files.iter().filter(|r| r.as_str() != ENCRYPTION_FILE) {
            let (from, to) = (staged.join(rel), root.join(rel));
            fs.rename(&from, &to).map_err(io_at(&from))?;
            targets.insert(to.parent().unwrap_or(root).to_path_buf());
            sources.insert(from.parent().unwrap_or(&staged).to_path_buf());
        }
        // Targets first: until a new name is durable, the staged name must stay so.
        for d in targets.iter().chain(&sources) {
            fs.sync_dir(d).map_err(io_at(d))?;
        }
        let from = staged.join(ENCRYPTION_FILE);
        if fs.exists(&from) {
            fs.rename(&from, &root.join(ENCRYPTION_FILE)).map_err(io_at(&from))?;
            fs.sync_dir(root).map_err(io_at(root))?;
            fs.sync_dir(&staged).map_err(io_at(&staged))?;
        }
    }
    let journal = root.join(REKEY_FILE);
    fs.remove_file(&journal).map_err(io_at(&journal))?;
    fs.sync_dir(root).map_err(io_at(root))?;
    if fs.exists(&staged) {
        remove_tree(fs, &staged)?;
        fs.sync_dir(root).map_err(io_at(root))?;
    }
    Ok(())
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Files re-sealed under the new key.
    pub files: usize,
    /// Their logical bytes.
    pub bytes: u64,
    /// The new key id.
    pub key_id: u32,
}

/// Re-encrypt the closed database at `root` from `old` to `new` on file system `fs` (see the
/// module documentation for the steps and which key opens the database after a crash).
///
/// Errors: [`Error::WrongKey`] when `old` is not the database's key, [`Error::NotEncrypted`],
/// [`Error::Locked`] when the database is open elsewhere, I/O errors.
pub fn rekey(
    fs: Arc<dyn Fs>,
    root: &Path,
    old: &EncryptionKey,
    new: &EncryptionKey,
) -> Result<RekeyReport> {
    if old == new {
        return Err(Error::invalid("the new key is the old key"));
    }
    let options = Options {
        create_if_missing: false,
        fs: fs.clone(),
        encryption_key: Some(old.clone()),
        ..Options::default()
    };
    let db = Database::open_with(root, options)?;
    let root = db.path().to_path_buf();
    let efs = db.encryption.clone().ok_or(Error::NotEncrypted { path: root.clone() })?;
    db.close()?;
    let lock_path = root.join("LOCK");
    let _lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => {
            Error::Locked { path: root.clone(), lock: lock_path.clone() }
        }
        _ => Error::io(&lock_path, e),
    })?;
    let enc_path = root.join(ENCRYPTION_FILE);
    let kc = check_key(fs.as_ref(), &root, &enc_path, Some(old))?;
    let new_kc = KeyCheck::new(new, kc.db_id, kc.key_id + 1)?;
    let staged = root.join(REKEY_TMP_DIR);
    if fs.exists(&staged) {
        remove_tree(fs.as_ref(), &staged)?;
    }
    crate::commit::create_dir_durable(fs.as_ref(), &staged)?;
    let mut dirs = BTreeSet::new();
    // The staged ENCRYPTION comes first: it roots the identities of the staged files.
    let path = staged.join(ENCRYPTION_FILE);
    crate::backup::write_file_durable(fs.as_ref(), &staged, &path, &new_kc.encode(), &mut dirs)?;
    let new_fs = EncryptedFs::new(fs.clone(), Arc::new(new_kc.sealer(new)));
    let mut files = Vec::new();
    walk(fs.as_ref(), &root, "", &mut files)?;
    let mut report = RekeyReport { files: 0, bytes: 0, key_id: new_kc.key_id };
    for rel in &files {
        let top = rel.split('/').next().unwrap_or_default();
        // Files rooted elsewhere (a backup inside the database directory, with its own
        // ENCRYPTION) keep their key; plaintext files stay as they are.
        let identity = efs.identity(&root.join(rel)).map_err(io_at(&root))?;
        if top == REKEY_TMP_DIR || rel.ends_with(".tmp") || identity.as_deref() != Some(rel) {
            continue;
        }
        let plain = efs.read(&root.join(rel)).map_err(io_at(&root.join(rel)))?;
        let target = staged.join(rel);
        crate::backup::write_file_durable(&new_fs, &staged, &target, &plain, &mut dirs)?;
        report.files += 1;
        report.bytes += plain.len() as u64;
    }
    for d in dirs.iter().rev() {
        fs.sync_dir(d).map_err(io_at(d))?;
    }
    let mut all_dirs = Vec::new();
    dirs_under(fs.as_ref(), &staged, &mut all_dirs)?;
    for d in all_dirs.iter().chain([&staged]) {
        fs.sync_dir(d).map_err(io_at(d))?;
    }
    let journal = root.join(REKEY_FILE);
    write_atomic(fs.as_ref(), &journal, &encode_journal(new_kc.key_id)).map_err(io_at(&journal))?;
    finish(fs.as_ref(), &root)?;
    Ok(report)
}
