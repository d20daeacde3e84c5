//! A simulated file system for crash tests: it knows which bytes and which directory entries
//! were made durable, and [`SimFs::crash_image`] returns exactly what a power cut would leave.
//!
//! Model: a file has written bytes and durable bytes, and [`FsFile::sync`] makes them equal.
//! A power cut loses appends past the durable length and undoes overwrites inside it (the
//! durable bytes they replaced are kept aside). A directory entry
//! (creation, rename, removal) is durable only after [`Fs::sync_dir`] of its parent. Every sync
//! point (file sync, directory sync, truncate) is numbered; [`SimFs::crash_at_sync`] makes the
//! n-th one fail without effect, after which every operation fails, as if the machine died.
//! [`SimFs::set_space_bytes`] makes writes that grow files fail with "storage full" past a
//! byte budget.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::fs::{Fs, FsFile, FsLock};

/// A file: its written bytes, how much of them was synced, and the durable bytes that
/// unsynced overwrites have replaced (restored, newest last, by a power cut).
#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable_len: usize,
    undo: Vec<(usize, Vec<u8>)>,
}

impl Inode {
    /// The bytes a power cut leaves.
    fn durable_bytes(&self) -> Vec<u8> {
        let mut out = self.data.get(..self.durable_len).unwrap_or_default().to_vec();
        for (offset, old) in self.undo.iter().rev() {
            if let Some(target) = out.get_mut(*offset..*offset + old.len()) {
                target.copy_from_slice(old);
            }
        }
        out
    }

    fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        let durable_end = end.min(self.durable_len);
        if offset < durable_end {
            let old = self.data.get(offset..durable_end).unwrap_or_default().to_vec();
            self.undo.push((offset, old));
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        if let Some(target) = self.data.get_mut(offset..end) {
            target.copy_from_slice(bytes);
        }
    }

    fn mark_durable(&mut self) {
        self.durable_len = self.data.len();
        self.undo.clear();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    File(u64),
}

#[derive(Debug, Default)]
struct State {
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    live: BTreeMap<PathBuf, Entry>,
    durable: BTreeMap<PathBuf, Entry>,
    syncs: u64,
    crash_at: Option<u64>,
    crashed: bool,
    space_bytes: Option<u64>,
    used_bytes: u64,
    locks: HashSet<PathBuf>,
}

/// The simulated file system. Clones share one state.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn dead() -> io::Error {
    io::Error::other("simulated power loss: the machine is down")
}

impl State {
    fn check_alive(&self) -> io::Result<()> {
        if self.crashed { Err(dead()) } else { Ok(()) }
    }

    /// Count a sync point; fail (and die) if it is the chosen crash point.
    fn sync_point(&mut self) -> io::Result<()> {
        self.check_alive()?;
        self.syncs += 1;
        if self.crash_at == Some(self.syncs) {
            self.crashed = true;
            return Err(dead());
        }
        Ok(())
    }

    fn parent_is_dir(&self, path: &Path) -> bool {
        match path.parent() {
            None => true,
            Some(p) if p.as_os_str().is_empty() || p == Path::new("/") => true,
            Some(p) => self.live.get(p) == Some(&Entry::Dir),
        }
    }

    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        match self.live.get(path) {
            Some(Entry::File(id)) => Ok(*id),
            Some(Entry::Dir) => Err(io::Error::other("is a directory")),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make the `n`-th sync point from now on (1-based, counted since creation) fail and
    /// crash the machine.
    pub fn crash_at_sync(&self, n: u64) {
        self.state.lock().crash_at = Some(n);
    }

    /// Number of sync points so far.
    pub fn sync_count(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Whether the simulated machine has crashed.
    pub fn has_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Appends beyond `bytes` more bytes fail with `StorageFull`.
    pub fn set_space_bytes(&self, bytes: Option<u64>) {
        let mut s = self.state.lock();
        s.used_bytes = 0;
        s.space_bytes = bytes;
    }

    /// What survives a power cut now: durable entries with their durable bytes.
    pub fn crash_image(&self) -> SimFs {
        let s = self.state.lock();
        let mut out = State::default();
        for (path, entry) in &s.durable {
            let entry = match entry {
                Entry::Dir => Entry::Dir,
                Entry::File(id) => {
                    let data = s.inodes.get(id).map(Inode::durable_bytes).unwrap_or_default();
                    let new_id = out.next_inode;
                    out.next_inode += 1;
                    out.inodes
                        .insert(new_id, Inode { durable_len: data.len(), data, undo: Vec::new() });
                    Entry::File(new_id)
                }
            };
            out.live.insert(path.clone(), entry.clone());
            out.durable.insert(path.clone(), entry);
        }
        SimFs { state: Arc::new(Mutex::new(out)) }
    }

    /// A copy of everything written so far, as if the process died but the OS kept its cache.
    pub fn process_crash_image(&self) -> SimFs {
        let s = self.state.lock();
        let mut out =
            State { inodes: s.inodes.clone(), next_inode: s.next_inode, ..State::default() };
        for inode in out.inodes.values_mut() {
            inode.mark_durable();
        }
        out.live = s.live.clone();
        out.durable = s.live.clone();
        SimFs { state: Arc::new(Mutex::new(out)) }
    }

    /// Overwrite bytes of a file in place (to simulate media damage in tests).
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        let id = s.inode_of(path)?;
        let inode = s.inodes.get_mut(&id).ok_or(io::ErrorKind::NotFound)?;
        let end = offset + bytes.len();
        let target = inode.data.get_mut(offset..end).ok_or(io::ErrorKind::InvalidInput)?;
        target.copy_from_slice(bytes);
        Ok(())
    }

    /// Paths of all files (live view), for tests that look at every file.
    pub fn files(&self) -> Vec<PathBuf> {
        let s = self.state.lock();
        s.live.iter().filter(|(_, e)| matches!(e, Entry::File(_))).map(|(p, _)| p.clone()).collect()
    }
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
}

impl FsFile for SimFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let end = self.len();
        self.write_at(end, data)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        let offset = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let len = s.inodes.get(&self.inode).map_or(0, |i| i.data.len());
        let growth = (offset + data.len()).saturating_sub(len) as u64;
        let mut data = data;
        let mut full = false;
        if let Some(space) = s.space_bytes {
            if s.used_bytes + growth > space {
                // Like a real disk, a failed write may leave part of the data behind.
                let room = space.saturating_sub(s.used_bytes) as usize;
                let keep = (len.saturating_sub(offset) + room).min(data.len());
                data = data.get(..keep).unwrap_or_default();
                s.used_bytes = space;
                full = true;
            } else {
                s.used_bytes += growth;
            }
        }
        let inode = s.inodes.get_mut(&self.inode).ok_or(io::ErrorKind::NotFound)?;
        inode.write_at(offset, data);
        if full {
            return Err(io::ErrorKind::StorageFull.into());
        }
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        let mut s = self.state.lock();
        s.sync_point()?;
        let inode = s.inodes.get_mut(&self.inode).ok_or(io::ErrorKind::NotFound)?;
        inode.mark_durable();
        Ok(())
    }
    fn len(&self) -> u64 {
        let s = self.state.lock();
        s.inodes.get(&self.inode).map_or(0, |i| i.data.len() as u64)
    }
}

#[derive(Debug)]
struct SimLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}
impl FsLock for SimLock {}
impl Drop for SimLock {
    fn drop(&mut self) {
        self.state.lock().locks.remove(&self.path);
    }
}

impl Fs for SimFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        match s.live.get(path) {
            Some(Entry::Dir) => return Ok(()),
            Some(Entry::File(_)) => return Err(io::ErrorKind::AlreadyExists.into()),
            None => {}
        }
        if !s.parent_is_dir(path) {
            return Err(io::ErrorKind::NotFound.into());
        }
        s.live.insert(path.to_path_buf(), Entry::Dir);
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        s.check_alive()?;
        if s.live.get(dir) != Some(&Entry::Dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let mut names: Vec<String> = s
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        Ok(names)
    }
    fn exists(&self, path: &Path) -> bool {
        self.state.lock().live.contains_key(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.state.lock().live.get(path) == Some(&Entry::Dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.state.lock();
        s.check_alive()?;
        let id = s.inode_of(path)?;
        Ok(s.inodes.get(&id).map(|i| i.data.clone()).unwrap_or_default())
    }
    fn open_append(&self, path: &Path, create: bool) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.state.lock();
        s.check_alive()?;
        let inode = match s.live.get(path) {
            Some(Entry::File(id)) => *id,
            Some(Entry::Dir) => return Err(io::Error::other("is a directory")),
            None if create && s.parent_is_dir(path) => {
                let id = s.next_inode;
                s.next_inode += 1;
                s.inodes.insert(id, Inode::default());
                s.live.insert(path.to_path_buf(), Entry::File(id));
                id
            }
            None => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(Box::new(SimFile { state: self.state.clone(), inode }))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        s.sync_point()?;
        let id = s.inode_of(path)?;
        let inode = s.inodes.get_mut(&id).ok_or(io::ErrorKind::NotFound)?;
        inode.data.resize(len as usize, 0);
        inode.mark_durable();
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        let entry = s.live.remove(from).ok_or(io::ErrorKind::NotFound)?;
        s.live.insert(to.to_path_buf(), entry);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        s.inode_of(path)?;
        s.live.remove(path);
        Ok(())
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        if s.live.get(path) != Some(&Entry::Dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if s.live.keys().any(|p| p.parent() == Some(path)) {
            return Err(io::Error::other("directory not empty"));
        }
        s.live.remove(path);
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.sync_point()?;
        if s.live.get(path) != Some(&Entry::Dir) && path != Path::new("/") {
            return Err(io::ErrorKind::NotFound.into());
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(path);
        let live: Vec<(PathBuf, Entry)> =
            s.live.iter().filter(|(p, _)| in_dir(p)).map(|(p, e)| (p.clone(), e.clone())).collect();
        s.durable.retain(|p, _| !in_dir(p));
        s.durable.extend(live);
        Ok(())
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsLock>> {
        let mut s = self.state.lock();
        s.check_alive()?;
        if !s.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(SimLock { state: self.state.clone(), path: path.to_path_buf() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_bytes_and_entries_are_lost() {
        let fs = SimFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let mut f = fs.open_append(Path::new("/d/a"), true).unwrap();
        f.append(b"hello").unwrap();
        f.sync().unwrap();
        f.append(b" world").unwrap();
        // File synced but its directory entry is not: gone after a crash.
        assert!(!fs.crash_image().exists(Path::new("/d/a")));
        fs.sync_dir(Path::new("/d")).unwrap();
        let img = fs.crash_image();
        assert_eq!(img.read(Path::new("/d/a")).unwrap(), b"hello");
        assert_eq!(fs.process_crash_image().read(Path::new("/d/a")).unwrap(), b"hello world");
    }

    #[test]
    fn rename_is_durable_only_after_dir_sync() {
        let fs = SimFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        for (name, text) in [("/d/x", &b"old"[..]), ("/d/x.tmp", &b"new"[..])] {
            let mut f = fs.open_append(Path::new(name), true).unwrap();
            f.append(text).unwrap();
            f.sync().unwrap();
        }
        fs.sync_dir(Path::new("/d")).unwrap();
        fs.rename(Path::new("/d/x.tmp"), Path::new("/d/x")).unwrap();
        assert_eq!(fs.crash_image().read(Path::new("/d/x")).unwrap(), b"old");
        fs.sync_dir(Path::new("/d")).unwrap();
        assert_eq!(fs.crash_image().read(Path::new("/d/x")).unwrap(), b"new");
    }

    #[test]
    fn unsynced_overwrites_are_undone_by_a_power_cut() {
        let fs = SimFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let mut f = fs.open_append(Path::new("/d/a"), true).unwrap();
        f.append(&[0u8; 8]).unwrap();
        f.sync().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.write_at(2, b"ab").unwrap();
        f.write_at(3, b"XYZ").unwrap();
        f.write_at(6, b"1234").unwrap(); // overwrites 2 durable bytes, grows by 2
        assert_eq!(fs.process_crash_image().read(Path::new("/d/a")).unwrap(), b"\0\0aXYZ1234");
        assert_eq!(fs.crash_image().read(Path::new("/d/a")).unwrap(), [0u8; 8]);
        f.sync().unwrap();
        assert_eq!(fs.crash_image().read(Path::new("/d/a")).unwrap(), b"\0\0aXYZ1234");
    }

    #[test]
    fn crash_point_fails_and_kills() {
        let fs = SimFs::new();
        fs.crash_at_sync(2);
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        assert!(fs.sync_dir(Path::new("/d")).is_err());
        assert!(fs.has_crashed());
        assert!(fs.create_dir(Path::new("/e")).is_err());
    }
}
