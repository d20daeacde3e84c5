//! [`EncryptedFs`]: the [`Fs`] an encrypted database's engine works through.
//!
//! It shows the engine the *logical* bytes of each sealed file (see [`super::sealed`]):
//! `read` opens the records, `open_append` returns a file whose `append` seals one record per
//! call at the current physical end, `len` is the logical length. So the WAL, segment,
//! checkpoint and every other format work unchanged, with their own recovery rules.
//!
//! **Identity.** A file's identity, bound into every record, is its path relative to the
//! nearest directory above it holding an `ENCRYPTION` file (the database root; a backup
//! directory, which gets a copy of the file first; a rekey's staging directory), with a
//! trailing `.tmp` removed (a file written under a temporary name and renamed keeps its
//! identity). So one wrapper serves a database, its backups and restores. A rename that would
//! change the identity is refused, and so is a path with no `ENCRYPTION` above it: nothing is
//! ever written in plaintext by mistake. Files named `LOCK`, `ENCRYPTION` and `REKEY` (and
//! their temporary names) pass through in plaintext.
//!
//! **Truncation and torn tails rewrite the file under a new salt.** `truncate` (how recovery
//! cuts a torn WAL tail or an untrusted segment tail) writes the kept logical bytes to a new
//! sealed file (temporary name, fsync, rename, fsync of the directory), and `open_append` of
//! a file with anything after its last valid record does the same. Records are therefore
//! only ever written at the end of a file copy, each offset of one salt at most once, and a
//! record cut off earlier cannot be spliced back: it was sealed under the old salt.
//!
//! **Preallocation.** `write_at` of zeros past the logical end (the WAL's preallocation)
//! writes as many zeros after the last record, which readers take for unwritten space; records
//! are then written over them, at the end of the last record. `len` is the logical length
//! including the preallocation asked for. `write_at` at the logical end appends; anywhere else
//! it is refused. Opening a file for appending whose records are followed by zeros (or by
//! anything) first rewrites it under a new salt, as above.

use std::io;
use std::path::{Component, Path};
use std::sync::Arc;

use crate::crypto::keycheck::ENCRYPTION_FILE;
use crate::crypto::ranged::RecordIndexes;
use crate::crypto::rekey::REKEY_FILE;
use crate::crypto::sealed::{
    Opened, SEALED_HEADER_BYTES, SealError, SealedHeader, Sealer, crc_walk,
};
use crate::storage::fs::{Fs, FsFile, FsLock, write_atomic};

/// Files at the root that stay plaintext.
const PLAINTEXT_FILES: [&str; 3] = ["LOCK", ENCRYPTION_FILE, REKEY_FILE];

/// An [`Fs`] that seals every file of an encrypted database (see the module documentation).
#[derive(Debug, Clone)]
pub struct EncryptedFs {
    inner: Arc<dyn Fs>,
    sealer: Arc<Sealer>,
    /// Where the records of recently read files are, for ranged reads.
    indexes: Arc<RecordIndexes>,
}

fn crypto_err(e: crate::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl EncryptedFs {
    /// Seal files with `sealer`, on `inner`.
    pub fn new(inner: Arc<dyn Fs>, sealer: Arc<Sealer>) -> EncryptedFs {
        EncryptedFs { inner, sealer, indexes: Arc::default() }
    }

    /// The file system underneath (physical bytes).
    pub fn inner(&self) -> &Arc<dyn Fs> {
        &self.inner
    }

    /// The sealer.
    pub fn sealer(&self) -> &Arc<Sealer> {
        &self.sealer
    }

    /// The identity of `path`, or `None` for a plaintext file: its path relative to the
    /// nearest directory above it that holds an `ENCRYPTION` file (a database, a backup, a
    /// rekey's staging directory). A path with no such directory above it is refused, so
    /// nothing is ever written in plaintext by mistake.
    pub fn identity(&self, path: &Path) -> io::Result<Option<String>> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name = name.strip_suffix(".tmp").unwrap_or(&name);
        if PLAINTEXT_FILES.contains(&name) {
            return Ok(None);
        }
        let root = path
            .ancestors()
            .skip(1)
            .take_while(|d| !d.as_os_str().is_empty())
            .find(|d| self.inner.exists(&d.join(ENCRYPTION_FILE)))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is not inside an encrypted database or backup (no ENCRYPTION file \
                         above it): refusing to write it in plaintext",
                        path.display()
                    ),
                )
            })?;
        let rel = path.strip_prefix(root).map_err(|_| io::Error::other("path outside its root"))?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "unusual path")),
            }
        }
        if let Some(last) = parts.last_mut()
            && let Some(stem) = last.strip_suffix(".tmp")
        {
            *last = stem.to_owned();
        }
        Ok(Some(parts.join("/")))
    }

    /// The opened records of the sealed file at `path` (physical bytes read from `inner`).
    pub fn open(&self, path: &Path) -> io::Result<Opened> {
        let data = self.inner.read(path)?;
        match self.identity(path)? {
            Some(identity) => self.sealer.open_file(&identity, &data).map_err(SealError::into_io),
            None => Ok(Opened { clean_len: data.len() as u64, plain: data, ..Opened::default() }),
        }
    }

    /// Write `plain` as a new copy of the sealed file at `path` (new salt), atomically.
    fn rewrite(&self, path: &Path, identity: &str, plain: &[u8]) -> io::Result<()> {
        let bytes = self.sealer.seal_file(identity, plain).map_err(crypto_err)?;
        write_atomic(self.inner.as_ref(), path, &bytes)
    }
}

/// A sealed file open for appending.
#[derive(Debug)]
struct SealedFile {
    inner: Box<dyn FsFile>,
    sealer: Arc<Sealer>,
    identity: String,
    header: SealedHeader,
    /// Physical end of the last record (the file may be longer: preallocated zeros).
    end: u64,
    /// Logical length (of the records written).
    written: u64,
    /// Logical length including the preallocation asked for.
    allocated: u64,
}

impl SealedFile {
    fn new(
        inner: Box<dyn FsFile>,
        fs: &EncryptedFs,
        identity: String,
        header: SealedHeader,
        end: u64,
        written: u64,
    ) -> SealedFile {
        SealedFile {
            inner,
            sealer: fs.sealer.clone(),
            identity,
            header,
            end,
            written,
            allocated: written,
        }
    }
}

impl FsFile for SealedFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(data.len() + 64);
        self.sealer
            .seal_records(&mut records, self.end, &self.identity, &self.header.salt, data)
            .map_err(crypto_err)?;
        // At the end of the records, over preallocated zeros if there are any.
        self.inner.write_at(self.end, &records)?;
        self.end += records.len() as u64;
        self.written += data.len() as u64;
        self.allocated = self.allocated.max(self.written);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset >= self.written && data.iter().all(|&b| b == 0) {
            // Preallocation (the WAL's): zeros after the last record, which readers take for
            // unwritten space, as many as asked for past the logical end.
            let want = offset + data.len() as u64;
            let physical = self.end + (want - self.written);
            let have = self.inner.len();
            if physical > have {
                let zeros = data.get(..(physical - have) as usize).unwrap_or(data);
                self.inner.write_at(have, zeros)?;
            }
            self.allocated = self.allocated.max(want);
            return Ok(());
        }
        if offset == self.written {
            return self.append(data);
        }
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a sealed file is append-only: write_at is only possible at its end",
        ))
    }

    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()
    }

    fn len(&self) -> u64 {
        self.allocated
    }
}

impl Fs for EncryptedFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        Ok(self.open(path)?.plain)
    }
    fn read_at(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let Some(identity) = self.identity(path)? else {
            return self.inner.read_at(path, offset, len);
        };
        if let Some(index) = self.indexes.get(self.inner.as_ref(), path, self.sealer.key_id())?
            && let Some(bytes) =
                index.read(self.inner.as_ref(), path, &self.sealer, &identity, offset, len)?
        {
            return Ok(bytes);
        }
        // Not a clean sequence of records: the whole file, with the damage rules of `read`.
        let data = self.read(path)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = usize::try_from(offset.saturating_add(len)).unwrap_or(usize::MAX);
        data.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        if self.identity(path)?.is_none() {
            return self.inner.file_len(path);
        }
        match self.indexes.get(self.inner.as_ref(), path, self.sealer.key_id())? {
            Some(index) => Ok(index.logical_len()),
            None => Ok(self.read(path)?.len() as u64),
        }
    }
    fn open_append(&self, path: &Path, create: bool) -> io::Result<Box<dyn FsFile>> {
        let Some(identity) = self.identity(path)? else {
            return self.inner.open_append(path, create);
        };
        let existing = self.inner.exists(path);
        if !existing && !create {
            return Err(io::ErrorKind::NotFound.into());
        }
        let data = if existing { self.inner.read(path)? } else { Vec::new() };
        let header = match SealedHeader::decode(&data) {
            Ok(header) if crc_walk(&data).0 == data.len() as u64 => {
                if header.key_id != self.sealer.key_id() {
                    // Let `open_file` give the error.
                    self.sealer.open_file(&identity, &data).map_err(SealError::into_io)?;
                }
                header
            }
            _ if data.is_empty() => {
                let header = self.sealer.new_header().map_err(crypto_err)?;
                let mut file = self.inner.open_append(path, true)?;
                file.append(&header.encode())?;
                let end = SEALED_HEADER_BYTES as u64;
                return Ok(Box::new(SealedFile::new(file, self, identity, header, end, 0)));
            }
            _ => {
                // A torn tail (or a torn header): keep the valid records, under a new salt.
                let opened = self.sealer.open_file(&identity, &data).map_err(SealError::into_io)?;
                if opened.damage_in_middle {
                    return Err(SealError {
                        offset: opened.first_damage.unwrap_or(0),
                        reason: "damaged record before valid ones".into(),
                    }
                    .into_io());
                }
                let keep = opened.plain.get(..opened.clean_len as usize).unwrap_or_default();
                self.rewrite(path, &identity, keep)?;
                return self.open_append(path, false);
            }
        };
        let (end, len) = crc_walk(&data);
        let file = self.inner.open_append(path, false)?;
        Ok(Box::new(SealedFile::new(file, self, identity, header, end, len)))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let Some(identity) = self.identity(path)? else {
            return self.inner.truncate(path, len);
        };
        let opened = self.open(path)?;
        if len > opened.clean_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot cut a sealed file to {len} bytes: only {} are undamaged",
                    opened.clean_len
                ),
            ));
        }
        let keep = opened.plain.get(..len as usize).unwrap_or_default();
        self.rewrite(path, &identity, keep)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.identity(from)? != self.identity(to)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "renaming {} to {} would change a sealed file's identity",
                    from.display(),
                    to.display()
                ),
            ));
        }
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.indexes.forget(path);
        self.inner.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsLock>> {
        self.inner.lock(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sealed::RECORD_OVERHEAD;
    use crate::crypto::{EncryptionKey, KeyCheck};
    use crate::storage::sim::SimFs;

    fn setup() -> (SimFs, EncryptedFs) {
        let sim = SimFs::new();
        sim.create_dir(Path::new("/db")).unwrap();
        let key = EncryptionKey::generate().unwrap();
        let kc = KeyCheck::generate(&key).unwrap();
        let enc = Path::new("/db").join(ENCRYPTION_FILE);
        write_atomic(&sim, &enc, &kc.encode()).unwrap();
        let efs = EncryptedFs::new(Arc::new(sim.clone()), Arc::new(kc.sealer(&key)));
        (sim, efs)
    }

    #[test]
    fn preallocated_zeros_are_written_over_and_read_as_the_end() {
        let (sim, efs) = setup();
        let path = Path::new("/db/log");
        let mut f = efs.open_append(path, true).unwrap();
        f.append(b"first").unwrap();
        f.write_at(5, &[0u8; 4096]).unwrap();
        assert_eq!(f.len(), 4101);
        let physical = sim.read(path).unwrap().len();
        assert!(physical >= 4096, "{physical}");
        f.write_at(5, b"second").unwrap();
        f.sync().unwrap();
        assert_eq!(sim.read(path).unwrap().len(), physical, "written over the zeros");
        drop(f);
        assert_eq!(efs.read(path).unwrap(), b"firstsecond");
        // Reopened for appending: rewritten without the zeros, under a new salt.
        let salt = sim.read(path).unwrap()[16..32].to_vec();
        let mut f = efs.open_append(path, false).unwrap();
        assert_eq!(f.len(), 11);
        f.append(b"!").unwrap();
        drop(f);
        let data = sim.read(path).unwrap();
        assert_ne!(data[16..32], salt[..]);
        assert!(data.len() < physical);
        assert_eq!(efs.read(path).unwrap(), b"firstsecond!");
        // Writing anywhere else is refused; so is a path outside any encrypted root, and a
        // rename that changes a file's identity.
        let mut f = efs.open_append(path, false).unwrap();
        assert!(f.write_at(3, b"x").is_err());
        assert!(efs.open_append(Path::new("/elsewhere/file"), true).is_err());
        assert!(efs.rename(path, Path::new("/db/other")).is_err());
        assert_eq!(efs.identity(Path::new("/db/a/b.tmp")).unwrap().as_deref(), Some("a/b"));
        assert_eq!(efs.identity(Path::new("/db/x/ENCRYPTION")).unwrap(), None);
    }

    /// Every ranged read answers like the same range of a whole read: on a clean file, a
    /// file grown by appends since it was indexed, a file with a damaged record, and a file
    /// with a tampered one.
    #[test]
    fn ranged_reads_answer_like_whole_reads() {
        let (sim, efs) = setup();
        let path = Path::new("/db/tables/t/big");
        sim.create_dir(Path::new("/db/tables")).unwrap();
        sim.create_dir(Path::new("/db/tables/t")).unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n.max(1)
        };
        let mut f = efs.open_append(path, true).unwrap();
        let mut expected = Vec::new();
        let check = |efs: &EncryptedFs, next: &mut dyn FnMut(u64) -> u64| {
            let whole = efs.read(path).unwrap();
            assert_eq!(efs.file_len(path).unwrap(), whole.len() as u64);
            for _ in 0..300 {
                let offset = next(whole.len() as u64 + 1);
                let len = next(whole.len() as u64 - offset + 1);
                let got = efs.read_at(path, offset, len).unwrap();
                assert_eq!(got, whole[offset as usize..(offset + len) as usize], "{offset}+{len}");
            }
            assert!(efs.read_at(path, whole.len() as u64, 1).is_err(), "past the end");
            whole
        };
        for round in 0..2 {
            for i in 0..40u64 {
                let piece: Vec<u8> =
                    (0..next(3000) + 1).map(|j| (i * 7 + j + round) as u8).collect();
                f.append(&piece).unwrap();
                expected.extend_from_slice(&piece);
            }
            f.sync().unwrap();
            assert_eq!(check(&efs, &mut next), expected);
        }
        drop(f);
        // Damage inside a record in the middle (its CRC fails): a range that touches it is
        // corruption at that record's offset; every other range reads what was written.
        let physical = sim.read(path).unwrap().len();
        sim.corrupt(path, physical / 2, &[0x5A, 0xA5]).unwrap();
        let mut failed = 0;
        for _ in 0..300 {
            let offset = next(expected.len() as u64);
            let len = next(expected.len() as u64 - offset) + 1;
            match efs.read_at(path, offset, len) {
                Ok(got) => assert_eq!(got, expected[offset as usize..(offset + len) as usize]),
                Err(e) => {
                    assert!(e.to_string().contains("damaged record"), "{e}");
                    failed += 1;
                }
            }
        }
        assert!(failed > 0 && failed < 300, "{failed}");
        assert!(efs.read_at(path, 0, expected.len() as u64).is_err());
        // A tampered record (CRCs made to hold, the tag cannot): both reads fail.
        let (sim, efs) = setup();
        let path = Path::new("/db/t2");
        let mut f = efs.open_append(path, true).unwrap();
        for i in 0..5u8 {
            f.append(&[i; 100]).unwrap();
        }
        drop(f);
        let mut data = sim.read(path).unwrap();
        let second = SEALED_HEADER_BYTES + RECORD_OVERHEAD + 100;
        let body = second + crate::crypto::sealed::RECORD_HEADER_BYTES;
        data[body + 20] ^= 1;
        let crc = crc32fast::hash(&data[body..second + RECORD_OVERHEAD + 100]);
        data[second + 8..second + 12].copy_from_slice(&crc.to_le_bytes());
        sim.corrupt(path, 0, &data).unwrap();
        assert!(efs.read(path).is_err());
        assert!(efs.read_at(path, 150, 10).is_err());
        assert_eq!(efs.read_at(path, 10, 20).unwrap(), vec![0u8; 20], "an untouched record");
    }
}
