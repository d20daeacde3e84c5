//! Opening a database: lock, initialise or recover, rebuild derived state.
//!
//! | found on open | what happens |
//! |---|---|
//! | directory missing or empty | a new database is created (unless `create_if_missing` is off) |
//! | another handle holds `LOCK` | [`Error::Locked`] |
//! | segment bytes past the checkpointed length, or segments newer than it | cut off / removed, then rebuilt from the WAL (they were never the only copy) |
//! | segment files outside the live set the checkpoint names (retired by a compaction, or from a compaction that never switched, `.tmp` files) | removed (see [`crate::compaction`]) |
//! | damage inside the checkpointed part of a segment, a missing live segment, overlapping segments | [`Error::Corrupt`] with file and offset; the database does not open |
//! | torn WAL tail (no valid batch after the damage) | truncated: it was never acknowledged |
//! | damaged WAL batch followed by a valid one | [`Error::Corrupt`] with file and offset |
//! | WAL transactions after the checkpoint | replayed into the state and the segments, then a checkpoint |
//! | seqs at or below a table's retention horizon with no event left in any table (folded away, see [`crate::retention`]) | installed empty with the commit time of the seq before; each folded table's horizon is set from the checkpoint |
//! | `schema.yaml` / `meta.json` missing or stale | rewritten from the segments |
//! | `ENCRYPTION` (checked before anything else is read) | no key: [`Error::KeyRequired`]; another key: [`Error::WrongKey`]; damaged: [`Error::BadKey`]; from here on every file is read and written through [`crate::crypto::EncryptedFs`] |
//! | a key given, `CHECKPOINT` present, no `ENCRYPTION` | [`Error::NotEncrypted`] |
//! | `REKEY` (a key rotation past its switch) | the given key must be the new one; the staged files are moved into place (see [`crate::crypto::rekey()`]) |
//! | `rekey.tmp/` without `REKEY` | removed (a rotation that never switched) |

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::{Mutex, RwLock};

use crate::commit::{
    IoState, Queue, SegmentWriter, WriterState, create_dir_durable, derived_files, reset_wal,
    table_dir, write_derived,
};
use crate::db::{Database, Options};
use crate::error::{Error, Result};
use crate::event::TxnRecord;
use crate::index_files::IndexFiles;
use crate::replay::{DataEvent, Failed, Replayer};
use crate::schema::validate_table_name;
use crate::state::{Chain, State};
use crate::storage::checkpoint::{CHECKPOINT_FILE, Checkpoint, CompactedSet};
use crate::storage::frame::{EventType, FILE_HEADER_BYTES};
use crate::storage::fs::{Fs, write_atomic};
use crate::storage::segment::{self, SEGMENTS_DIR};
use crate::storage::segment_set;
use crate::storage::wal::{self, WAL_DIR, WAL_FILE};

/// Entries a database directory may hold before its CHECKPOINT exists (a torn `init`; a
/// process that died while writing the first checkpoint leaves `CHECKPOINT.tmp` behind).
const INIT_ENTRIES: [&str; 8] = [
    "LOCK",
    "tables",
    "wal",
    "migrations",
    "backups",
    "CHECKPOINT.tmp",
    "ENCRYPTION",
    "ENCRYPTION.tmp",
];

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

pub(crate) fn open(root: &Path, options: Options) -> Result<Database> {
    // A relative path is fixed against the current directory now, so the handle keeps
    // naming the same files if the process changes directory later.
    let absolute;
    let root = if root.is_relative() {
        let cwd = std::env::current_dir().map_err(|e| Error::io(Path::new("."), e))?;
        absolute = cwd.join(root);
        absolute.as_path()
    } else {
        root
    };
    let fs = options.fs.clone();
    let fs: &dyn Fs = fs.as_ref();
    if !fs.exists(root) {
        if !options.create_if_missing {
            return Err(Error::NotADatabase { path: root.to_path_buf() });
        }
        let missing: Vec<&Path> =
            root.ancestors().take_while(|p| !p.as_os_str().is_empty() && !fs.exists(p)).collect();
        for dir in missing.into_iter().rev() {
            create_dir_durable(fs, dir)?;
        }
    }
    let lock_path = root.join("LOCK");
    let lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => {
            Error::Locked { path: root.to_path_buf(), lock: lock_path.clone() }
        }
        _ => Error::io(&lock_path, e),
    })?;
    // Encryption (see `crate::crypto`): finish a key rotation, check the key, and from here on
    // read and write every file through the sealing file system.
    let key = options.encryption_key.as_ref();
    let mut encryption = crate::crypto::rekey::open_root(&options.fs, root, key)?;
    let cp_path = root.join(CHECKPOINT_FILE);
    if !fs.exists(&cp_path) {
        let entries = fs.list(root).map_err(io_at(root))?;
        let foreign = entries.iter().any(|e| !INIT_ENTRIES.contains(&e.as_str()));
        if foreign || !options.create_if_missing {
            return Err(Error::NotADatabase { path: root.to_path_buf() });
        }
        if let (None, Some(key)) = (&encryption, key) {
            encryption = Some(crate::crypto::rekey::create_root(&options.fs, root, key)?);
        }
    }
    let db_fs: std::sync::Arc<dyn Fs> = match &encryption {
        Some(efs) => std::sync::Arc::new(efs.clone()),
        None => options.fs.clone(),
    };
    let fs: &dyn Fs = db_fs.as_ref();
    if !fs.exists(&cp_path) {
        init(fs, root)?;
    }
    let cp = Checkpoint::decode(&cp_path, &fs.read(&cp_path).map_err(io_at(&cp_path))?)?;
    // Scan the WAL before `load_segments` cuts segment tails: when the WAL is damaged, those
    // tails may be the only intact copy of its transactions, so a refused open keeps them.
    let wal_path = root.join(WAL_DIR).join(WAL_FILE);
    let wal_data = fs.read(&wal_path).map_err(io_at(&wal_path))?;
    let scan = wal::scan(&wal_path, &wal_data)?;
    let (state, segments, compacted, index_files) = load_segments(fs, root, &cp)?;
    if scan.torn.is_some() {
        fs.truncate(&wal_path, scan.valid_len).map_err(io_at(&wal_path))?;
    }
    let wal_file = fs.open_append(&wal_path, false).map_err(io_at(&wal_path))?;
    let last_seq = state.last_seq();
    let last_ms = state.commit_ms.last().copied().unwrap_or(0);
    let db = Database {
        root: root.to_path_buf(),
        fs: db_fs.clone(),
        encryption,
        options,
        state: RwLock::new(state),
        visible_seq: AtomicU64::new(last_seq),
        writer: Mutex::new(WriterState { last_seq, last_ms }),
        queue: Mutex::new(Queue { durable_seq: last_seq, durable_ms: last_ms, ..Queue::default() }),
        io: Mutex::new(IoState {
            wal_len: wal_file.len(),
            wal: wal_file,
            segments,
            rotated: Vec::new(),
            compacted,
        }),
        compaction: Mutex::new(()),
        snapshots: crate::snapshot::Snapshots::default(),
        closed: AtomicBool::new(false),
        poisoned: AtomicBool::new(false),
        open_txns: std::sync::atomic::AtomicUsize::new(0),
        hooks: crate::hooks::Hooks::default(),
        index_files: Mutex::new(index_files),
        _lock: lock,
    };
    let replayed = replay_wal(&db, &wal_path, scan.txns)?;
    if replayed || scan.valid_len > crate::storage::frame::FILE_HEADER_BYTES as u64 {
        let (seq, ms) = {
            let w = db.writer.lock();
            (w.last_seq, w.last_ms)
        };
        db.io.lock().checkpoint(&db, seq, ms)?;
    }
    refresh_derived_files(&db)?;
    crate::snapshot::on_open(&db)?;
    Ok(db)
}

/// Create the layout of a new database. The CHECKPOINT file is written last: its presence
/// marks a complete database.
fn init(fs: &dyn Fs, root: &Path) -> Result<()> {
    for dir in ["tables", "wal", "migrations", "migrations/pending", "backups"] {
        create_dir_durable(fs, &root.join(dir))?;
    }
    reset_wal(fs, root)?;
    let path = root.join(CHECKPOINT_FILE);
    write_atomic(fs, &path, &Checkpoint::default().encode()?).map_err(io_at(&path))
}

/// The rebuilt state, each checkpointed table's open segment, each compacted table's set, and
/// what the open found of the index files.
type Loaded = (State, BTreeMap<String, SegmentWriter>, BTreeMap<String, CompactedSet>, IndexFiles);

/// Read the live segments of every table (see [`crate::storage::segment_set`]), rebuild the
/// state up to the checkpoint seq, and only then cut untrusted tails and remove stray files,
/// so that a refused open changes no file.
fn load_segments(fs: &dyn Fs, root: &Path, cp: &Checkpoint) -> Result<Loaded> {
    let tables_dir = root.join("tables");
    let names = fs.list(&tables_dir).map_err(io_at(&tables_dir))?;
    if let Some(missing) = cp.tables.keys().find(|t| !names.contains(t)) {
        return Err(Error::corrupt(
            tables_dir.join(missing),
            0,
            "table directory named by the checkpoint is missing",
        ));
    }
    let mut raw_tables: Vec<RawTable> = Vec::new();
    let mut cuts: Vec<(PathBuf, u64)> = Vec::new();
    let mut strays: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    let mut open_segments: Vec<(String, u32, PathBuf)> = Vec::new();
    let mut compacted = BTreeMap::new();
    for name in names {
        let seg_dir = table_dir(root, &name).join(SEGMENTS_DIR);
        if validate_table_name(&name).is_err() || !fs.is_dir(&seg_dir) {
            continue;
        }
        let pos = cp.tables.get(&name);
        let files = segment_set::table_files(fs, &seg_dir, pos)?;
        let mut table_last_seq: Option<u64> = None;
        let mut raw = RawTable { name: Arc::from(name.as_str()), ..RawTable::default() };
        for file in &files.live {
            let path = &file.path;
            let data = fs.read(path).map_err(io_at(path))?;
            let data_len = data.len() as u64;
            let trusted = file.trusted_len.unwrap_or(data_len);
            let first_event = raw.events.len();
            raw.read(path, data, trusted)?;
            if let (Some(previous), Some(first)) = (table_last_seq, raw.events.get(first_event))
                && first.seq <= previous
            {
                return Err(Error::corrupt(
                    path,
                    FILE_HEADER_BYTES as u64,
                    format!(
                        "seq {} follows seq {previous} of the previous segment: segments overlap",
                        first.seq
                    ),
                ));
            }
            table_last_seq = raw.events.last().map(|e| e.seq).or(table_last_seq);
            if data_len > trusted {
                cuts.push((path.clone(), trusted));
            }
        }
        if !files.strays.is_empty() {
            strays.push((seg_dir.clone(), files.strays));
        }
        raw_tables.push(raw);
        if let Some(pos) = pos {
            let path = seg_dir.join(segment::segment_name(pos.segment));
            open_segments.push((name.clone(), pos.segment, path));
            if let Some(set) = pos.compacted {
                compacted.insert(name.clone(), set);
            }
        }
    }
    let mut state = State::default();
    // Tables whose index files hold what the replay would build skip index upkeep in it (see
    // `index_files.rs`).
    let mut index_files = IndexFiles::default();
    let table_ends: Vec<(String, u64)> = raw_tables
        .iter()
        .filter_map(|raw| Some((raw.name.to_string(), raw.events.last()?.seq)))
        .collect();
    let mut candidates = crate::index_files::read_candidates(
        fs,
        root,
        &table_ends,
        &compacted,
        cp.seq,
        &mut index_files.notes,
    );
    state.index_deferred = candidates.keys().cloned().collect();
    let cp_path = root.join(CHECKPOINT_FILE);
    // Seqs below a retention horizon may have lost all their events to the fold (see
    // `retention.rs`): they are installed empty, with the commit time of the seq before.
    let folded_below = compacted.values().map(|c: &CompactedSet| c.horizon).max().unwrap_or(0);
    // Install transaction by transaction, in seq order across the tables (a k-way merge of
    // their event lists): each event is decoded just before its install and its document is
    // freed right after unless it is a key's newest, so the open never holds the history
    // decoded at once.
    let raw_tables = raw_tables;
    let mut positions = vec![0usize; raw_tables.len()];
    let mut replayer = Replayer::default();
    loop {
        let next = raw_tables.iter().zip(&positions).filter_map(|(raw, &pos)| raw.seq_at(pos));
        let Some(seq) = next.min() else { break };
        let mut unix_ms = None;
        let mut items = Vec::new();
        for (raw, pos) in raw_tables.iter().zip(positions.iter_mut()) {
            while let Some(e) = raw.events.get(*pos).filter(|e| e.seq == seq) {
                let path = || raw.paths.get(e.file).cloned().unwrap_or_default();
                if unix_ms.is_some_and(|ms| ms != e.unix_ms) {
                    return Err(Error::corrupt(path(), 0, format!("seq {seq} has two times")));
                }
                unix_ms = Some(e.unix_ms);
                let payload = raw.payload(e);
                items.push((&raw.name, e.kind, payload, path, e.at));
                *pos += 1;
            }
        }
        let unix_ms = unix_ms.unwrap_or(0);
        let failed = |f: Failed| not_replayed(&cp_path, f);
        let replay = |error: Error| failed(Failed { seq, error });
        while state.last_seq() + 1 < seq.min(folded_below + 1) {
            let empty = state.last_seq() + 1;
            let ms = state.commit_ms.last().copied().unwrap_or(0);
            state.install(empty, ms, Vec::new(), Vec::new()).map_err(replay)?;
        }
        // Data events are installed with their bodies still encoded; a transaction with a
        // schema event (or a payload the quick split declines) is decoded whole.
        let data: Option<Vec<DataEvent<'_>>> = items
            .iter()
            .map(|&(table, kind, payload, _, _)| {
                let (key, body) = segment::split_key(payload)?;
                (DataEvent::is_data(kind)).then_some(DataEvent { table, kind, key: key?, body })
            })
            .collect();
        match data {
            Some(events) => {
                replayer.replay_data(&mut state, seq, unix_ms, events).map_err(failed)?;
            }
            None => {
                let mut events = Vec::with_capacity(items.len());
                for (table, kind, payload, path, at) in items {
                    let event = segment::decode_payload_of(table, kind, payload)
                        .map_err(|reason| Error::corrupt(path(), at, reason))?;
                    events.push(event);
                }
                replayer.replay(&mut state, seq, unix_ms, events).map_err(failed)?;
            }
        }
    }
    replayer.flush(&mut state).map_err(|f| not_replayed(&cp_path, f))?;
    for (name, set) in &compacted {
        if let Some(t) = state.tables.get_mut(name) {
            t.horizon = set.horizon;
        }
    }
    // Decoded now (about 30 ms for a million ranges; the replay saved several times that),
    // only for the tables still deferred: one that a replayed schema transaction gave its
    // indexes (`index_files::undefer_for`) has them already.
    candidates.retain(|name, _| state.index_deferred.contains(name));
    let decoded = crate::index_files::decode(candidates);
    crate::index_files::install(&mut state, decoded, &mut index_files)?;
    // The chains and index lists grew by doubling while they were read; give the room back.
    for t in state.tables.values_mut() {
        t.rows.values_mut().for_each(Chain::shrink_to_fit);
        t.indexes.iter_mut().for_each(crate::index::FieldIndex::shrink_to_fit);
    }
    if state.last_seq() != cp.seq {
        return Err(Error::corrupt(
            &cp_path,
            0,
            format!(
                "checkpoint is at seq {} but the segments end at seq {}",
                cp.seq,
                state.last_seq()
            ),
        ));
    }
    // Everything checked: cut the untrusted tails (the WAL holds them) and remove the strays.
    for (path, len) in cuts {
        fs.truncate(&path, len).map_err(io_at(&path))?;
    }
    for (dir, paths) in strays {
        for path in paths {
            fs.remove_file(&path).map_err(io_at(&path))?;
        }
        fs.sync_dir(&dir).map_err(io_at(&dir))?;
    }
    let mut writers = BTreeMap::new();
    for (name, id, path) in open_segments {
        let file = fs.open_append(&path, false).map_err(io_at(&path))?;
        writers.insert(name, SegmentWriter::new(id, file, false));
    }
    Ok((state, writers, compacted, index_files))
}

/// The error of an open whose segments do not replay (reported at the checkpoint: it names
/// the seqs the segments must hold).
fn not_replayed(cp_path: &Path, f: Failed) -> Error {
    let (seq, e) = (f.seq, f.error);
    Error::corrupt(cp_path, 0, format!("segments do not replay at seq {seq}: {e}"))
}

/// A segment event read but not decoded yet: where its payload is.
struct RawEvent {
    seq: u64,
    unix_ms: u64,
    kind: EventType,
    /// Index of its file in [`RawTable::paths`], and the offset damage in it is reported at.
    file: usize,
    at: u64,
    /// The payload's bytes: `start..start + len` of the file's bytes ([`RawTable::files`]), or
    /// of [`RawTable::arena`] when `in_arena` (a compressed segment's frames are read from
    /// its decompressed blocks, which do not outlive the visit).
    in_arena: bool,
    start: usize,
    len: usize,
}

/// The events of one table's live segments, in order, with the bytes of their files.
#[derive(Default)]
struct RawTable {
    name: Arc<str>,
    paths: Vec<PathBuf>,
    files: Vec<Vec<u8>>,
    arena: Vec<u8>,
    events: Vec<RawEvent>,
}

impl RawTable {
    /// Check every frame in the first `trusted` bytes of one segment file and keep its bytes.
    fn read(&mut self, path: &Path, data: Vec<u8>, trusted: u64) -> Result<()> {
        let file = self.paths.len();
        self.paths.push(path.to_path_buf());
        let whole = data.as_ptr_range();
        let (first, end) = (whole.start as usize, whole.end as usize);
        segment::visit_frames(path, &data, trusted, &mut |at, f, _| {
            // A payload inside the file's bytes is found there again by its offset; any other
            // is copied.
            let (ptr, len) = (f.payload.as_ptr() as usize, f.payload.len());
            let (in_arena, start) = if ptr >= first && ptr + len <= end {
                (false, ptr - first)
            } else {
                self.arena.extend_from_slice(f.payload);
                (true, self.arena.len() - len)
            };
            self.events.push(RawEvent {
                seq: f.seq,
                unix_ms: f.unix_ms,
                kind: f.kind,
                file,
                at,
                in_arena,
                start,
                len,
            });
            Ok(())
        })?;
        self.files.push(data);
        Ok(())
    }

    /// The payload of `e`.
    fn payload(&self, e: &RawEvent) -> &[u8] {
        let bytes = match e.in_arena {
            true => Some(&self.arena),
            false => self.files.get(e.file),
        };
        bytes.and_then(|b| b.get(e.start..e.start + e.len)).unwrap_or_default()
    }

    /// The seq of the event at `pos`, the next one to install.
    fn seq_at(&self, pos: usize) -> Option<u64> {
        self.events.get(pos).map(|e| e.seq)
    }
}

/// Apply the WAL's transactions that the segments do not hold yet. Returns whether any was.
fn replay_wal(db: &Database, wal_path: &PathBuf, txns: Vec<TxnRecord>) -> Result<bool> {
    let mut replayed = false;
    for txn in txns {
        let mut writer = db.writer.lock();
        if txn.seq <= writer.last_seq {
            continue;
        }
        let corrupt = |reason: String| Error::corrupt(wal_path, 0, reason);
        if txn.seq != writer.last_seq + 1 {
            return Err(corrupt(format!(
                "the WAL continues at seq {} but the segments end at seq {}",
                txn.seq, writer.last_seq
            )));
        }
        // An I/O failure while writing the segments is not damage in the WAL: report it as is.
        let (seq, unix_ms) = (txn.seq, txn.unix_ms);
        db.replay_one(txn).map_err(|e| match e {
            Error::Io { .. } => e,
            e => corrupt(format!("seq {seq} does not replay: {e}")),
        })?;
        writer.last_seq = seq;
        writer.last_ms = writer.last_ms.max(unix_ms);
        let mut queue = db.queue.lock();
        queue.durable_seq = seq;
        queue.durable_ms = writer.last_ms;
        db.visible_seq.store(seq, std::sync::atomic::Ordering::Release);
        replayed = true;
    }
    Ok(replayed)
}

/// Rewrite every table's `schema.yaml` and `meta.json` that differs from the segments.
fn refresh_derived_files(db: &Database) -> Result<()> {
    let wanted: Vec<_> = {
        let state = db.state.read();
        state.tables.keys().filter_map(|t| derived_files(&state, t)).collect()
    };
    for files in wanted {
        let dir = table_dir(&db.root, &files.meta.name);
        let meta_ok = db
            .fs
            .read(&dir.join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .is_some_and(|m: crate::schema::TableMeta| m == files.meta);
        let schema_ok = match &files.schema {
            None => true,
            Some(schema) => db
                .fs
                .read(&dir.join("schema.yaml"))
                .ok()
                .and_then(|b| serde_yaml::from_slice(&b).ok())
                .is_some_and(|s: crate::schema::TableSchema| &s == schema),
        };
        if !meta_ok || !schema_ok {
            write_derived(db.fs.as_ref(), &db.root, &files)?;
        }
    }
    Ok(())
}
