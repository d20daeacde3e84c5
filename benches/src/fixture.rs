//! Building one history into both engines, and opening them again for reading.
//!
//! A built history lives in one directory: `driftdb/` (the DriftDB database), `sqlite.db` (the
//! SQLite database, WAL mode) and `history.json` (its [`Shape`], written last: a directory
//! without it is an unfinished build and is rebuilt).
//!
//! SQLite holds the history the way its users keep time travel: a versions table with one row
//! per version and its validity range `[valid_from_seq, valid_to_seq)` (an open range ends at
//! [`OPEN_END`]), indexed by key and by the indexed field, plus a `current` table for reads of
//! now. The indexed field is a generated column over the JSON document, so the document is the
//! only thing written. Both engines get the same documents; SQLite stores the result of each
//! merge patch, computed with the same RFC 7386 rules DriftDB applies.

use std::path::{Path, PathBuf};

use driftdb_core::{Database, Key, Options, TableSchema, Value};
use rusqlite::Connection;
use serde_json::Value as Json;

use crate::history::{
    Change, INDEXED_FIELD, SNAPSHOT_EVERY_EVENTS, Shape, TABLE, key_name, merge_patch,
};
use crate::{Error, Result};

/// `valid_to_seq` of a version that still holds.
pub const OPEN_END: i64 = i64::MAX;

/// SQLite changes per build transaction (setup speed only; the seqs are columns).
const SQLITE_BATCH: u64 = 200_000;

const SQLITE_SCHEMA: &str = "
CREATE TABLE current (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    bucket INTEGER GENERATED ALWAYS AS (json_extract(doc, '$.bucket')) VIRTUAL
);
CREATE INDEX current_bucket ON current (bucket);
CREATE TABLE versions (
    key TEXT NOT NULL,
    valid_from_seq INTEGER NOT NULL,
    valid_to_seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    bucket INTEGER GENERATED ALWAYS AS (json_extract(doc, '$.bucket')) VIRTUAL
);
CREATE INDEX versions_key ON versions (key, valid_from_seq);
CREATE INDEX versions_bucket ON versions (bucket, valid_from_seq);
";

/// Where the parts of a built history are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The directory holding both databases.
    pub root: PathBuf,
    /// The history's shape.
    pub shape: Shape,
}

impl Built {
    /// The DriftDB database directory.
    pub fn driftdb_dir(&self) -> PathBuf {
        self.root.join("driftdb")
    }

    /// The SQLite database file.
    pub fn sqlite_file(&self) -> PathBuf {
        self.root.join("sqlite.db")
    }

    /// The history of `root` if a build finished there, else `None`.
    pub fn existing(root: &Path) -> Result<Option<Built>> {
        let marker = root.join("history.json");
        let text = match std::fs::read_to_string(&marker) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&marker, e)),
        };
        let json: Json = serde_json::from_str(&text).map_err(|e| Error::Setup {
            reason: format!("{} is not valid JSON: {e}", marker.display()),
        })?;
        let events = json.get("events").and_then(Json::as_u64).ok_or_else(|| Error::Setup {
            reason: format!("{} has no `events` count", marker.display()),
        })?;
        // A history built with other snapshot settings (or before snapshots) is built again.
        if json.get("snapshot_every_events").and_then(Json::as_u64) != Some(SNAPSHOT_EVERY_EVENTS) {
            return Ok(None);
        }
        Ok(Some(Built { root: root.to_owned(), shape: Shape::new(events) }))
    }
}

/// Open a SQLite connection in WAL mode.
pub fn open_sqlite(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        return Err(Error::Setup { reason: format!("SQLite journal_mode is {mode}, not wal") });
    }
    Ok(conn)
}

/// The SQLite side of a build: the connection, the open transaction's size, and the rowid of
/// each key's current version (so closing its range is an update by rowid).
struct SqliteWriter {
    conn: Connection,
    current_rowid: Vec<i64>,
    pending: u64,
}

impl SqliteWriter {
    fn new(path: &Path, keys: u64) -> Result<SqliteWriter> {
        let conn = open_sqlite(path)?;
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        conn.execute_batch(SQLITE_SCHEMA)?;
        conn.execute_batch("BEGIN")?;
        let keys = usize::try_from(keys).map_err(|_| Error::setup("too many keys"))?;
        Ok(SqliteWriter { conn, current_rowid: vec![0; keys], pending: 0 })
    }

    fn write(&mut self, seq: u64, key: u64, doc: &Json) -> Result<()> {
        let seq = i64::try_from(seq).map_err(|_| Error::setup("seq out of range"))?;
        let slot = usize::try_from(key)
            .ok()
            .and_then(|k| self.current_rowid.get_mut(k))
            .ok_or_else(|| Error::setup("key out of range"))?;
        let name = key_name(key);
        let text = doc.to_string();
        if *slot != 0 {
            let mut close = self
                .conn
                .prepare_cached("UPDATE versions SET valid_to_seq = ?1 WHERE rowid = ?2")?;
            close.execute((seq, *slot))?;
        }
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO versions (key, valid_from_seq, valid_to_seq, doc) VALUES (?1, ?2, ?3, ?4)",
        )?;
        insert.execute((&name, seq, OPEN_END, &text))?;
        *slot = self.conn.last_insert_rowid();
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO current (id, doc) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
        )?;
        upsert.execute((&name, &text))?;
        self.pending += 1;
        if self.pending >= SQLITE_BATCH {
            self.conn.execute_batch("COMMIT; BEGIN")?;
            self.pending = 0;
        }
        Ok(())
    }

    /// Commit, gather statistics for the planner, and fold the WAL into the database file.
    fn finish(self) -> Result<()> {
        self.conn.execute_batch("COMMIT; ANALYZE;")?;
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))?;
        Ok(())
    }
}

/// Build `shape` into a fresh `root` (which must not hold a database yet: that is an error): every transaction
/// goes to DriftDB as one transaction (its seq is checked) and to SQLite as version rows.
/// Both databases are closed at the end. `progress` is called after each data transaction with
/// the events committed so far.
pub fn build(root: &Path, shape: Shape, mut progress: impl FnMut(u64)) -> Result<Built> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let built = Built { root: root.to_owned(), shape };
    if built.driftdb_dir().exists() || built.sqlite_file().exists() {
        return Err(Error::setup(format!("{} already holds a database", root.display())));
    }
    let options = Options { snapshot_every_events: SNAPSHOT_EVERY_EVENTS, ..Options::default() };
    let db = Database::open_with(built.driftdb_dir(), options)?;
    let mut schema = TableSchema::new("id");
    schema.indexes = vec![vec![INDEXED_FIELD.to_owned()]];
    let created = db.create_table(TABLE, schema)?;
    if created.seq != 1 {
        return Err(Error::setup(format!("{} already holds a database", root.display())));
    }
    let mut sqlite = SqliteWriter::new(&built.sqlite_file(), shape.keys)?;
    let mut docs: Vec<Json> = Vec::new();
    for t in 0..shape.data_txns() {
        let seq = shape.seq_of_txn(t);
        let mut tx = db.begin();
        for change in shape.transaction(t) {
            let key = change.key();
            match change {
                Change::Insert { doc, .. } => {
                    tx.insert(TABLE, Value::from(doc.clone()))?;
                    docs.push(doc);
                }
                Change::Patch { patch, .. } => {
                    tx.patch(TABLE, Key::from(key_name(key)), Value::from(patch.clone()))?;
                    let doc = usize::try_from(key)
                        .ok()
                        .and_then(|k| docs.get_mut(k))
                        .ok_or_else(|| Error::setup("patch of a key not inserted"))?;
                    merge_patch(doc, &patch);
                }
            }
            let doc = usize::try_from(key).ok().and_then(|k| docs.get(k));
            sqlite.write(seq, key, doc.ok_or_else(|| Error::setup("key out of range"))?)?;
        }
        let info = tx.commit()?;
        if info.seq != seq {
            return Err(Error::setup(format!("DriftDB gave seq {} for seq {seq}", info.seq)));
        }
        progress(shape.events_through_txn(t));
    }
    if let Some(cause) = db.auto_snapshot_error() {
        return Err(Error::setup(format!("an automatic snapshot failed: {cause}")));
    }
    db.close()?;
    sqlite.finish()?;
    let marker = root.join("history.json");
    let text = serde_json::json!({
        "events": shape.events,
        "snapshot_every_events": SNAPSHOT_EVERY_EVENTS,
    })
    .to_string();
    std::fs::write(&marker, text).map_err(|e| Error::io(&marker, e))?;
    Ok(built)
}

/// Remove `root` with everything in it, then [`build`] `shape` there.
pub fn rebuild(root: &Path, shape: Shape, progress: impl FnMut(u64)) -> Result<Built> {
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(|e| Error::io(root, e))?;
    }
    build(root, shape, progress)
}

/// The history of `shape` in `root`: reused when a finished build of the same shape is there,
/// else rebuilt from scratch (anything in `root` is removed first).
pub fn build_or_reuse(root: &Path, shape: Shape, progress: impl FnMut(u64)) -> Result<Built> {
    if let Some(built) = Built::existing(root)?
        && built.shape == shape
    {
        return Ok(built);
    }
    rebuild(root, shape, progress)
}

/// The sum of the sizes of the files under `path` (a file or a directory), in bytes.
pub fn disk_bytes(path: &Path) -> Result<u64> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        total += disk_bytes(&entry.path())?;
    }
    Ok(total)
}

/// Copy the files of directory `from` into a new directory `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(|e| Error::io(&source, e))?.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(|e| Error::io(&source, e))?;
        }
    }
    Ok(())
}

/// The bytes of `built`'s DriftDB directory after `Database::compact_table`, measured on a copy
/// (`driftdb-compacted/`, replaced each time) so that the history itself stays as built.
pub fn compacted_bytes(built: &Built) -> Result<u64> {
    let copy = built.root.join("driftdb-compacted");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).map_err(|e| Error::io(&copy, e))?;
    }
    copy_dir(&built.driftdb_dir(), &copy)?;
    let db = Database::open(&copy)?;
    db.compact_table(TABLE)?;
    db.close()?;
    Ok(disk_bytes(&copy)? - snapshot_bytes(&copy)?)
}

/// The bytes of the snapshot files of a DriftDB directory (`tables/*/snapshots/`).
pub fn snapshot_bytes(dir: &Path) -> Result<u64> {
    let tables = dir.join("tables");
    let mut total = 0;
    for entry in std::fs::read_dir(&tables).map_err(|e| Error::io(&tables, e))? {
        let snapshots = entry.map_err(|e| Error::io(&tables, e))?.path().join("snapshots");
        if snapshots.is_dir() {
            total += disk_bytes(&snapshots)?;
        }
    }
    Ok(total)
}

/// Bytes on disk of a closed, built history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    /// All files of the DriftDB directory but its snapshot files.
    pub driftdb: u64,
    /// Its snapshot files (derived data, written every [`SNAPSHOT_EVERY_EVENTS`] events).
    pub driftdb_snapshots: u64,
    /// The same after `Database::compact_table` (zstd-compressed segments).
    pub driftdb_compacted: u64,
    /// The SQLite file (and its `-wal`/`-shm` files, if any are left).
    pub sqlite_file: u64,
    /// Pages of the versions table and its two indexes (from `dbstat`).
    pub sqlite_versions: u64,
    /// Pages of the current table and its indexes (from `dbstat`).
    pub sqlite_current: u64,
}

/// Measure the bytes on disk of `built` (both databases must be closed), and of a compacted
/// copy of its DriftDB directory.
pub fn disk_usage(built: &Built) -> Result<DiskUsage> {
    let file = built.sqlite_file();
    let mut sqlite_file = disk_bytes(&file)?;
    for suffix in ["-wal", "-shm"] {
        let extra = PathBuf::from(format!("{}{suffix}", file.display()));
        if extra.exists() {
            sqlite_file += disk_bytes(&extra)?;
        }
    }
    // Sizes first: opening the file may create its `-wal` and `-shm` files again.
    let conn = Connection::open(&file)?;
    let pages = |names: &str| -> Result<u64> {
        let sql = format!("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({names})");
        let bytes: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    };
    let sqlite_versions = pages("'versions', 'versions_key', 'versions_bucket'")?;
    let sqlite_current = pages("'current', 'current_bucket', 'sqlite_autoindex_current_1'")?;
    Ok(DiskUsage {
        driftdb: disk_bytes(&built.driftdb_dir())? - snapshot_bytes(&built.driftdb_dir())?,
        driftdb_snapshots: snapshot_bytes(&built.driftdb_dir())?,
        driftdb_compacted: compacted_bytes(built)?,
        sqlite_file,
        sqlite_versions,
        sqlite_current,
    })
}
