//! The index files of an open database: which ones the open loads instead of rebuilding the
//! indexes during the replay, and writing them when the database closes. The format, its
//! invariants and the rules for using a file are in [`crate::storage::index_file`].
//!
//! 1. Before the replay ([`read_candidates`]): each table's `indexes/*.idx` files are read and
//!    their CRC and header checked against what the segments hold (the table's last event,
//!    its retention horizon, the checkpoint seq). A table whose files all pass, one per index
//!    path they list, is *deferred*: the replay keeps no index for it (a schema change builds
//!    none either). A transaction with a schema event that writes to a deferred table with a
//!    unique field, or alters it, checks unique fields and needs the index: that table gets
//!    its indexes built from its chains first ([`undefer_for`]) and is no longer deferred.
//! 2. After the replay the deferred tables' files are decoded ([`decode`], which checks their
//!    bodies) and used ([`install`]) when their header names the table as the replay rebuilt
//!    it; otherwise (or when a body did not decode) its indexes are built from the version
//!    chains. Every file not used, and why, is noted ([`crate::Database::index_file_notes`]);
//!    none fails the open. The WAL's transactions are replayed after this, with the indexes
//!    in place. (Decoding on a thread during the replay saved no measurable time on two cores
//!    and left 15 MB more resident: the index was built in another allocator arena instead of
//!    the memory the replay had just freed.)
//! 3. At close ([`write_all`]), after the final checkpoint: the index of every table whose
//!    file on disk does not name the table as it is now is written (atomically, through
//!    [`Fs`]); files of indexes that no longer exist are removed. Not at checkpoints: a
//!    checkpoint runs on the commit path, and writing every changed index there (megabytes
//!    for a large table, under the state lock) would stall commits for derived state.
//!
//! A failure to write an index file poisons nothing (the file is derived, and the checkpoint
//! before it made every commit durable): `close` reports it, and the next open rebuilds the
//! index from the segments.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::commit::table_dir;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::index::FieldIndex;
use crate::state::{State, TableState};
use crate::storage::checkpoint::CompactedSet;
use crate::storage::fs::{Fs, write_atomic};
use crate::storage::index_file::{
    self, INDEX_EXTENSION, INDEXES_DIR, IndexFile, IndexHeader, TableIdentity,
};

/// What the database knows of its index files (one per open database).
#[derive(Debug, Default)]
pub(crate) struct IndexFiles {
    /// The files on disk that hold a table's index as it is: by table and file name, the
    /// identity and index paths their header names. A close rewrites no file listed here
    /// whose table still has that identity.
    pub known: HashMap<(String, String), Current>,
    /// Index files not used, and why; index files that could not be written.
    pub notes: Vec<String>,
    /// Index files the open used.
    pub loaded: usize,
}

/// What a file on disk holds the index of: the table's identity and its index paths.
pub(crate) type Current = (TableIdentity, Vec<Vec<String>>);

/// A table's index files decoded: each with its header and its index (or why not).
pub(crate) type Decoded = (String, Vec<(PathBuf, IndexHeader, Result<FieldIndex>)>);

/// A table's index files that passed the checks made before the replay.
#[derive(Debug)]
pub(crate) struct Candidate {
    files: Vec<(PathBuf, IndexFile)>,
}

/// The identity of `t` as an index file header names it.
pub(crate) fn identity_of(t: &TableState) -> TableIdentity {
    let last = t.schemas.last();
    TableIdentity {
        created_seq: last.map_or(0, |s| s.created_seq),
        schema_seq: last.map_or(0, |s| s.seq),
        table_seq: t.changed_seq,
        horizon: t.horizon,
        keys: t.rows.len() as u64,
        versions: t.rows.values().map(|c| c.versions().len() as u64).sum(),
    }
}

/// The index paths of `t` in the order the replay gives them: `index::sync` at every
/// schema version (a drop keeps the indexes of the last live schema).
fn replayed_paths(t: &TableState) -> Vec<Vec<String>> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    for schema in t.schemas.iter().filter_map(|s| s.schema.as_deref()) {
        let wanted = crate::index::declared_paths(schema);
        paths.retain(|p| wanted.contains(p));
        for path in wanted {
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

fn indexes_dir(root: &Path, table: &str) -> PathBuf {
    table_dir(root, table).join(INDEXES_DIR)
}

/// Before the replay: the tables whose index files may hold the indexes the replay would
/// build. `tables` gives each table's last event seq in the segments; `compacted` their
/// retention horizons. Files that do not pass are noted.
pub(crate) fn read_candidates(
    fs: &dyn Fs,
    root: &Path,
    tables: &[(String, u64)],
    compacted: &BTreeMap<String, CompactedSet>,
    cp_seq: u64,
    notes: &mut Vec<String>,
) -> HashMap<String, Candidate> {
    let mut out = HashMap::new();
    for (name, last_seq) in tables {
        let dir = indexes_dir(root, name);
        if !fs.is_dir(&dir) {
            continue;
        }
        let Ok(entries) = fs.list(&dir) else { continue };
        let horizon = compacted.get(name).map_or(0, |c| c.horizon);
        let mut files: Vec<(PathBuf, IndexFile)> = Vec::new();
        let mut usable = true;
        for entry in entries.iter().filter(|e| e.ends_with(INDEX_EXTENSION)) {
            let path = dir.join(entry);
            let read = fs.read(&path).map_err(|e| Error::io(&path, e));
            match read.and_then(|data| index_file::read(&path, data)) {
                Ok(file) => {
                    let h = &file.header;
                    let why = if h.table != *name {
                        Some(format!("names table `{}`", h.table))
                    } else if h.identity.table_seq != *last_seq {
                        Some(format!(
                            "is stale: written when the table's last event was seq {}, the \
                             segments end it at seq {last_seq}",
                            h.identity.table_seq
                        ))
                    } else if h.identity.horizon != horizon {
                        Some(format!("names retention horizon {}", h.identity.horizon))
                    } else if h.db_seq > cp_seq {
                        Some(format!("names seq {}, past the checkpoint's {cp_seq}", h.db_seq))
                    } else {
                        None
                    };
                    match why {
                        Some(why) => {
                            notes.push(format!("{}: not used: {why}", path.display()));
                            usable = false;
                        }
                        None => files.push((path, file)),
                    }
                }
                Err(e) => {
                    notes.push(format!("{}: not used: {e}", path.display()));
                    usable = false;
                }
            }
        }
        if !usable || files.is_empty() {
            continue;
        }
        // One file per listed path, all naming the same table as the first.
        let Some((_, first)) = files.first() else { continue };
        let (identity, paths) = (first.header.identity, first.header.paths.clone());
        let mut seen = vec![false; paths.len()];
        let consistent = files.iter().all(|(_, f)| {
            let slot = usize::try_from(f.header.position).ok().and_then(|p| seen.get_mut(p));
            let fresh = slot.is_some_and(|s| !std::mem::replace(s, true));
            fresh && f.header.identity == identity && f.header.paths == paths
        });
        if !consistent || seen.contains(&false) {
            notes
                .push(format!("{}: index files not used: they do not make one set", dir.display()));
            continue;
        }
        out.insert(name.clone(), Candidate { files });
    }
    out
}

/// Decode every candidate's files (checking their bodies), in the order of their positions.
pub(crate) fn decode(candidates: HashMap<String, Candidate>) -> Vec<Decoded> {
    candidates
        .into_iter()
        .map(|(name, c)| {
            let mut files: Vec<_> = c
                .files
                .into_iter()
                .map(|(path, file)| {
                    let header = file.header.clone();
                    let index = file.decode(&path);
                    (path, header, index)
                })
                .collect();
            files.sort_by_key(|(_, h, _)| h.position);
            (name, files)
        })
        .collect()
}

/// Whether `a` and `b` list the same paths, each once, in any order.
fn same_set(a: &[Vec<String>], b: &[Vec<String>]) -> bool {
    a.len() == b.len() && a.iter().all(|p| b.contains(p))
}

/// During the replay, before a transaction with a schema event is replayed through the
/// committing path: that path checks unique fields, and a table whose indexes are deferred
/// has none, so the check would read every row for each write (minutes of open for a large
/// migration). A deferred table that such a transaction writes to, and that has a unique
/// field or is altered by it, gets its indexes now, built from its chains, and keeps them up
/// to date for the rest of the replay, like a table without files (its files are not used).
pub(crate) fn undefer_for(state: &mut State, events: &[crate::event::Event]) -> Result<()> {
    if state.index_deferred.is_empty() {
        return Ok(());
    }
    for event in events {
        let name = &*event.table;
        if event.key.is_none() || !state.index_deferred.contains(name) {
            continue;
        }
        let altered = events.iter().any(|e| e.key.is_none() && *e.table == *name);
        let Some(t) = state.tables.get_mut(name) else { continue };
        let schema = t.schemas.last().and_then(|s| s.schema.clone());
        if !(altered || schema.as_ref().is_some_and(|s| !s.unique.is_empty())) {
            continue;
        }
        if let Some(schema) = schema {
            crate::index::sync(&mut t.indexes, &schema, &t.rows)?;
        }
        state.index_deferred.remove(name);
    }
    Ok(())
}

/// After the replay: give every deferred table of `state` its indexes, from its decoded files
/// when they name the table as the replay rebuilt it, else built from its version chains.
pub(crate) fn install(
    state: &mut State,
    decoded: Vec<Decoded>,
    files: &mut IndexFiles,
) -> Result<()> {
    let mut decoded: HashMap<String, _> = decoded.into_iter().collect();
    for name in std::mem::take(&mut state.index_deferred) {
        let Some(t) = state.tables.get_mut(&name) else { continue };
        let identity = identity_of(t);
        let paths = replayed_paths(t);
        let mut loaded = Vec::new();
        let mut why = None;
        for (path, header, index) in decoded.remove(&name).unwrap_or_default() {
            match index {
                Err(e) => why = why.or(Some(format!("{}: not used: {e}", path.display()))),
                Ok(_) if header.identity != identity || !same_set(&header.paths, &paths) => {
                    why = why.or(Some(format!(
                        "{}: not used: its header does not name the table as the segments \
                         rebuild it",
                        path.display()
                    )));
                }
                Ok(index) => {
                    if let Some(file) = path.file_name() {
                        let file = file.to_string_lossy().into_owned();
                        files.known.insert((name.clone(), file), (identity, paths.clone()));
                    }
                    loaded.push(index);
                }
            }
        }
        if why.is_none() && loaded.len() != paths.len() {
            why = Some(format!("{name}: index files not used: they do not cover every index"));
        }
        if let Some(why) = why {
            files.notes.push(format!("{why}; rebuilt from the segments"));
            files.known.retain(|(table, _), _| *table != name);
            t.indexes = paths
                .into_iter()
                .map(|path| crate::index::build(path, &t.rows))
                .collect::<Result<_>>()?;
        } else {
            // In the replay's order (a fold in a running database may have listed the same
            // paths in another order).
            files.loaded += loaded.len();
            loaded.sort_by_key(|i| paths.iter().position(|p| *p == i.path));
            t.indexes = loaded;
        }
    }
    Ok(())
}

/// Write the index files of every table whose files on disk do not hold its indexes as they
/// are, and remove files of indexes that are gone. Called at close, after the final
/// checkpoint (the state is then exactly what the segments hold). Returns the files written.
pub(crate) fn write_all(db: &Database) -> Result<usize> {
    let fs = db.fs.as_ref();
    let state = db.state.read();
    let db_seq = state.last_seq();
    let mut written = 0;
    let mut files = db.index_files.lock();
    for (name, t) in &state.tables {
        let dir = indexes_dir(&db.root, name);
        if !fs.is_dir(&table_dir(&db.root, name)) {
            continue;
        }
        let identity = identity_of(t);
        let paths: Vec<Vec<String>> = t.indexes.iter().map(|i| i.path.clone()).collect();
        let mut wanted = Vec::new();
        for (position, index) in t.indexes.iter().enumerate() {
            let file = match db.encryption {
                Some(_) => index_file::position_name(position),
                None => index_file::file_name(&index.path),
            };
            wanted.push(file.clone());
            let key = (name.clone(), file);
            if files.known.get(&key).is_some_and(|(i, p)| *i == identity && *p == paths) {
                continue;
            }
            let header = IndexHeader {
                db_seq,
                table: name.clone(),
                identity,
                paths: paths.clone(),
                position: u32::try_from(position).unwrap_or(u32::MAX),
            };
            let bytes = index_file::encode(&header, index)?;
            crate::commit::create_dir_durable(fs, &dir)?;
            let path = dir.join(&key.1);
            write_atomic(fs, &path, &bytes).map_err(|e| Error::io(&path, e))?;
            files.known.insert(key, (identity, paths.clone()));
            written += 1;
        }
        if fs.is_dir(&dir) {
            let entries = fs.list(&dir).map_err(|e| Error::io(&dir, e))?;
            let stale = entries.iter().filter(|e| {
                let tmp = e.ends_with(".idx.tmp");
                tmp || (e.ends_with(INDEX_EXTENSION) && !wanted.contains(e))
            });
            let mut removed = false;
            for entry in stale {
                let path = dir.join(entry);
                fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
                files.known.remove(&(name.clone(), entry.clone()));
                removed = true;
            }
            if removed {
                fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            }
        }
    }
    Ok(written)
}

impl Database {
    /// What the open found wrong with index files (`tables/<t>/indexes/*.idx`): each file it
    /// did not use and why (stale, damaged, another version, another incarnation of the
    /// table); those indexes were rebuilt from the segments, so answers are the same. Index
    /// files are derived state: nothing here means data was lost.
    pub fn index_file_notes(&self) -> Vec<String> {
        self.index_files.lock().notes.clone()
    }

    /// How many index files the open loaded instead of rebuilding their indexes during the
    /// replay (0 when every index was rebuilt).
    pub fn index_files_loaded(&self) -> usize {
        self.index_files.lock().loaded
    }
}
