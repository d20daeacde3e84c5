//! The in-memory multi-version state: for each table its schema versions, and for each key the
//! chain of its versions sorted by seq. A read at seq N binary-searches each chain for the last
//! version at or before N, so every read sees whole transactions only.
//!
//! The state is derived: it is rebuilt on open from the segments and the WAL.
//! Memory per version: the seq, the kind and the encoded event body (and the whole document,
//! encoded, on keyframes and on each key's newest version); nothing is held decoded (see
//! [`crate::chain`]).

use std::collections::BTreeMap;

use foldhash::HashMap;
use std::sync::Arc;

pub(crate) use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::index::FieldIndex;
use crate::schema::TableSchema;
use crate::storage::frame::EventType;
use crate::unique::WrittenValues;
use crate::value::{Key, Value, check_document};
use crate::writes::Writes;

/// One version of a table's schema.
#[derive(Debug, Clone)]
pub(crate) struct SchemaVersion {
    pub seq: u64,
    /// `None` after a DROP.
    pub schema: Option<Arc<TableSchema>>,
    /// The seq of the CREATE of this incarnation of the table.
    pub created_seq: u64,
}

#[derive(Debug, Default)]
pub(crate) struct TableState {
    pub schemas: Vec<SchemaVersion>,
    /// Each key's chain of versions.
    pub rows: BTreeMap<Key, Chain>,
    /// The seq of the last change to the table: a row or the schema (for conflict checks).
    pub changed_seq: u64,
    /// The declared secondary indexes, kept in step with `rows` (see `index.rs`).
    pub indexes: Vec<FieldIndex>,
    /// The retention horizon: history before this seq was folded into a base at it (see
    /// [`TableState::fold`]); reads before it fail. 0: the whole history is kept.
    pub horizon: u64,
}

/// All tables, and the commit time of every seq.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub tables: BTreeMap<String, TableState>,
    /// `commit_ms[i]` is the commit time of seq `i + 1`.
    pub commit_ms: Vec<u64>,
    /// The seq of the last CREATE, ALTER or DROP, and its table (for conflict checks).
    pub last_ddl: (u64, String),
    /// Tables whose indexes the open's replay does not keep: they come from index files
    /// once it ends (see `index_files.rs`). Empty outside an open.
    pub index_deferred: foldhash::HashSet<String>,
}

/// A validated change, ready to install at a seq.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub kind: EventType,
    /// The document after a PATCH. (An INSERT's is its event's body, which a transaction
    /// does not keep decoded: see [`crate::writes::Written`].)
    pub doc: Option<Arc<Value>>,
    pub schema: Option<Arc<TableSchema>>,
}

/// What a transaction has changed so far. Its events are validated against the state at
/// `base_seq` plus these changes; reads pass the seq they read at (see [`State::overlay_doc`]).
#[derive(Debug)]
pub(crate) struct Overlay {
    pub base_seq: u64,
    tables: HashMap<String, Option<Arc<TableSchema>>>,
    /// Tables (re)created inside the transaction: their older rows are not live.
    pub(crate) fresh_tables: foldhash::HashSet<String>,
    /// Every event checked, with its change, and the transaction's version of every key it
    /// wrote.
    pub(crate) writes: Writes,
    /// The values its written rows hold at unique fields (see `unique.rs`).
    pub(crate) written_values: WrittenValues,
}

impl Overlay {
    pub fn new(base_seq: u64) -> Self {
        Overlay {
            base_seq,
            tables: HashMap::default(),
            fresh_tables: foldhash::HashSet::default(),
            writes: Writes::default(),
            written_values: WrittenValues::default(),
        }
    }
}

fn last_at<T>(items: &[T], seq: u64, seq_of: impl Fn(&T) -> u64) -> Option<&T> {
    let n = items.partition_point(|item| seq_of(item) <= seq);
    n.checked_sub(1).and_then(|i| items.get(i))
}

impl TableState {
    /// Fold the history before `horizon` into a base at `horizon`, in the shape recovery
    /// builds from a folded compacted set: the schema at `horizon` as a CREATE at `horizon`,
    /// one INSERT version at `horizon` per key live then (sharing its document), every later
    /// version kept; versions before it are dropped (their memory freed) and the indexes are
    /// rebuilt. The caller checked that the table is live at `horizon`. On error the table is
    /// unchanged: the folded table is built aside and swapped in whole.
    pub fn fold(&mut self, horizon: u64) -> Result<()> {
        let Some(base) = self.schema_at(horizon).cloned() else { return Ok(()) };
        let old_incarnation = base.created_seq;
        let later = self.schemas.partition_point(|s| s.seq <= horizon);
        let mut schemas = vec![SchemaVersion { seq: horizon, created_seq: horizon, ..base }];
        for s in self.schemas.iter().skip(later) {
            let mut s = s.clone();
            if s.created_seq == old_incarnation {
                s.created_seq = horizon;
            }
            schemas.push(s);
        }
        let mut rows = BTreeMap::new();
        for (key, chain) in &self.rows {
            let n = chain.versions().partition_point(|v| v.seq <= horizon);
            let mut kept = Chain::default();
            if let Some(doc) = chain.doc_at(horizon, old_incarnation)? {
                let mut body = Vec::new();
                crate::msgpack::write_value(&mut body, &doc)?;
                kept.push(horizon, EventType::Insert, &body, Some(&doc))?;
            }
            for i in n..chain.versions().len() {
                let Some(v) = chain.versions().get(i) else { continue };
                kept.push(v.seq, v.kind, v.body_bytes(), chain.doc_of(i)?.as_deref())?;
            }
            if !kept.versions().is_empty() {
                rows.insert(key.clone(), kept);
            }
        }
        let mut indexes = Vec::new();
        if let Some(schema) = schemas.last().and_then(|s| s.schema.clone()) {
            crate::index::sync(&mut indexes, &schema, &rows)?;
        }
        self.schemas = schemas;
        self.rows = rows;
        self.indexes = indexes;
        self.changed_seq = self.changed_seq.max(horizon);
        self.horizon = horizon;
        Ok(())
    }

    pub fn schema_at(&self, seq: u64) -> Option<&SchemaVersion> {
        last_at(&self.schemas, seq, |s| s.seq).filter(|s| s.schema.is_some())
    }

    /// The live document of `key` at `seq`, if the table and the key are live then.
    pub fn doc_at(&self, key: &Key, seq: u64) -> Result<Option<Arc<Value>>> {
        let Some(incarnation) = self.schema_at(seq).map(|s| s.created_seq) else { return Ok(None) };
        match self.rows.get(key) {
            Some(chain) => chain.doc_at(seq, incarnation),
            None => Ok(None),
        }
    }

    /// Whether `key` is live at `seq` (as [`TableState::doc_at`], without rebuilding it).
    pub fn is_live_at(&self, key: &Key, seq: u64) -> bool {
        let incarnation = self.schema_at(seq).map(|s| s.created_seq);
        incarnation.zip(self.rows.get(key)).is_some_and(|(inc, chain)| chain.live_at(seq, inc))
    }

    /// Every key live at `seq` with its document to finish outside the lock (see
    /// [`Chain::pending_at`]), in primary-key order; nothing when the table is not live then.
    pub fn pending_at<'a>(
        &'a self,
        seq: u64,
        arena: &'a mut Vec<u8>,
    ) -> impl Iterator<Item = (&'a Key, crate::chain::Pending)> {
        let incarnation = self.schema_at(seq).map(|s| s.created_seq);
        self.rows.iter().filter_map(move |(key, chain)| {
            Some((key, chain.pending_at(seq, incarnation?, arena)?))
        })
    }

    /// Every key live at `seq` with its document, in primary-key order (one pass over the
    /// chains, no lookup per key); nothing when the table is not live then.
    pub fn live_at(&self, seq: u64) -> impl Iterator<Item = Result<(&Key, Arc<Value>)>> {
        let incarnation = self.schema_at(seq).map(|s| s.created_seq);
        self.rows.iter().filter_map(move |(key, chain)| {
            chain.doc_at(seq, incarnation?).transpose().map(|doc| doc.map(|d| (key, d)))
        })
    }
}

impl State {
    /// Fold the history of `table` before `horizon` (see [`TableState::fold`]), and give every
    /// seq before it that no table holds an event of any more the commit time of the seq
    /// before (0 for seq 1), as recovery does: its own time is not kept on disk. No read can
    /// tell but a time lookup, and that resolves to a seq with the same answers (no table has
    /// events there, and the folded table refuses reads before `horizon`).
    pub fn fold_table(&mut self, table: &str, horizon: u64) -> Result<()> {
        let Some(t) = self.tables.get_mut(table) else { return Ok(()) };
        t.fold(horizon)?;
        if self.last_ddl.0 < horizon {
            // The base's CREATE at the horizon, as recovery installs it.
            self.last_ddl = (horizon, table.to_owned());
        }
        let n = usize::try_from(horizon).unwrap_or(usize::MAX).min(self.commit_ms.len());
        let mut has_events = vec![false; n];
        let mut mark = |seq: u64| {
            if let Some(slot) = seq.checked_sub(1).and_then(|i| has_events.get_mut(i as usize)) {
                *slot = true;
            }
        };
        for t in self.tables.values() {
            t.schemas.iter().for_each(|s| mark(s.seq));
            t.rows.values().flat_map(Chain::versions).for_each(|v| mark(v.seq));
        }
        let mut previous = 0;
        for (ms, has) in self.commit_ms.iter_mut().zip(has_events) {
            if !has {
                *ms = previous;
            }
            previous = *ms;
        }
        Ok(())
    }

    /// The seq of the last change (in any incarnation) to `key` of `table`; 0 if none.
    /// Pending commits count: they are ordered before any transaction still validating.
    pub fn key_changed_seq(&self, table: &str, key: &Key) -> u64 {
        let versions = self.tables.get(table).and_then(|t| t.rows.get(key));
        versions.and_then(Chain::last).map_or(0, |v| v.seq)
    }

    /// The seq of the last CREATE, ALTER or DROP of `table`; 0 if none.
    pub fn schema_changed_seq(&self, table: &str) -> u64 {
        self.tables.get(table).and_then(|t| t.schemas.last()).map_or(0, |s| s.seq)
    }

    /// The seq of the last change to `table`: any row, or its schema; 0 if none.
    pub fn table_changed_seq(&self, table: &str) -> u64 {
        self.tables.get(table).map_or(0, |t| t.changed_seq)
    }

    pub fn last_seq(&self) -> u64 {
        self.commit_ms.len() as u64
    }

    /// The last seq committed at or before `unix_ms` (0 when none was).
    pub fn seq_at_time(&self, unix_ms: u64) -> u64 {
        self.commit_ms.partition_point(|&t| t <= unix_ms) as u64
    }

    pub fn commit_time(&self, seq: u64) -> Option<u64> {
        seq.checked_sub(1).and_then(|i| self.commit_ms.get(usize::try_from(i).ok()?)).copied()
    }

    /// The table `name` if it is live at `seq`. Every read of a table at a seq goes through
    /// here, so this is where a read before the table's retention horizon is refused.
    pub fn table(&self, name: &str, seq: u64) -> Result<&TableState> {
        let t = self.tables.get(name);
        self.check_retained(name, seq)?;
        t.filter(|t| t.schema_at(seq).is_some())
            .ok_or_else(|| Error::NoSuchTable { table: name.to_owned() })
    }

    /// [`Error::BeforeRetention`] when `seq` is before the retention horizon of `name`.
    pub fn check_retained(&self, name: &str, seq: u64) -> Result<()> {
        let Some(t) = self.tables.get(name) else { return Ok(()) };
        if seq >= t.horizon {
            return Ok(());
        }
        let policy = t.schemas.last().and_then(|s| s.schema.as_ref()).and_then(|s| s.retention_ms);
        Err(Error::BeforeRetention {
            table: name.to_owned(),
            seq,
            oldest: t.horizon,
            retention: policy.map_or_else(|| "none".to_owned(), crate::retention::format_retention),
        })
    }

    fn overlay_schema(&self, overlay: &Overlay, seq: u64, table: &str) -> Option<Arc<TableSchema>> {
        match overlay.tables.get(table) {
            Some(schema) => schema.clone(),
            None => self.tables.get(table)?.schema_at(seq)?.schema.clone(),
        }
    }

    /// The live document of a key as the transaction sees it: its own write, else the state at
    /// `seq` (the transaction's snapshot, or under READ COMMITTED the latest commit).
    pub fn overlay_doc(
        &self,
        overlay: &Overlay,
        seq: u64,
        table: &str,
        key: &Key,
    ) -> Result<Option<Arc<Value>>> {
        if let Some(written) = overlay.writes.written(table, key) {
            return written.doc();
        }
        if overlay.fresh_tables.contains(table) {
            return Ok(None);
        }
        match self.tables.get(table) {
            Some(t) => t.doc_at(key, seq),
            None => Ok(None),
        }
    }

    /// Every live row of `table` as the transaction sees it (at `seq`), in primary-key order.
    pub fn overlay_rows(
        &self,
        overlay: &Overlay,
        seq: u64,
        table: &str,
    ) -> Result<Vec<(Key, Arc<Value>)>> {
        self.overlay_schema_of(overlay, seq, table)?;
        let mut rows: BTreeMap<Key, Arc<Value>> = BTreeMap::new();
        if !overlay.fresh_tables.contains(table)
            && let Some(t) = self.tables.get(table)
        {
            for row in t.live_at(seq) {
                let (key, doc) = row?;
                rows.insert(key.clone(), doc);
            }
        }
        for (key, written) in overlay.writes.rows(table) {
            match written.doc()? {
                Some(doc) => rows.insert(key.clone(), doc),
                None => rows.remove(key),
            };
        }
        Ok(rows.into_iter().collect())
    }

    /// Names of the tables live as the transaction sees them (at `seq`).
    pub fn overlay_tables(&self, overlay: &Overlay, seq: u64) -> Vec<String> {
        let mut names: std::collections::BTreeSet<String> = self
            .tables
            .iter()
            .filter(|(_, t)| t.schema_at(seq).is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for (name, schema) in &overlay.tables {
            if schema.is_some() {
                names.insert(name.clone());
            } else {
                names.remove(name);
            }
        }
        names.into_iter().collect()
    }

    /// The schema of the table as the transaction sees it (at `seq`), if it is live.
    pub fn overlay_schema_of(
        &self,
        overlay: &Overlay,
        seq: u64,
        table: &str,
    ) -> Result<Arc<TableSchema>> {
        if !overlay.tables.contains_key(table) {
            self.check_retained(table, seq)?;
        }
        self.overlay_schema(overlay, seq, table)
            .ok_or_else(|| Error::NoSuchTable { table: table.to_owned() })
    }

    /// Validate `event` against the state seen through `overlay` and record it there with the
    /// change it makes. Nothing is modified on error.
    pub fn check(&self, overlay: &mut Overlay, event: Event) -> Result<()> {
        self.check_with(overlay, event, None)
    }

    /// [`State::check`] given the event's body decoded (`None`: decoded from the event when
    /// it holds none).
    pub fn check_with(
        &self,
        overlay: &mut Overlay,
        event: Event,
        given: Option<&Value>,
    ) -> Result<()> {
        let table: &str = &event.table;
        let seq = overlay.base_seq;
        let decoded;
        let body: &Value = match given {
            Some(body) => body,
            None => {
                decoded = event.body()?;
                &decoded
            }
        };
        let mut change = Change { kind: event.kind, doc: None, schema: None };
        match event.kind {
            EventType::CreateTable | EventType::AlterTable => {
                let schema: TableSchema = crate::value::from_value(body)?;
                schema.validate()?;
                let current = self.overlay_schema(overlay, seq, table);
                if event.kind == EventType::CreateTable {
                    if current.is_some() {
                        return Err(Error::TableExists { table: table.to_owned() });
                    }
                    overlay.fresh_tables.insert(table.to_owned());
                    overlay.writes.forget(table);
                    overlay.written_values.forget(table);
                } else {
                    let current =
                        current.ok_or_else(|| Error::NoSuchTable { table: table.to_owned() })?;
                    if current.primary_key != schema.primary_key {
                        return Err(Error::invalid(format!(
                            "the primary key of `{table}` cannot change (it is `{}`)",
                            current.primary_key
                        )));
                    }
                    self.check_unique_declared(overlay, table, &current, &schema)?;
                }
                let schema = Arc::new(schema);
                overlay.tables.insert(table.to_owned(), Some(schema.clone()));
                change.schema = Some(schema);
            }
            EventType::DropTable => {
                self.overlay_schema_of(overlay, seq, table)?;
                overlay.tables.insert(table.to_owned(), None);
            }
            EventType::Insert | EventType::Patch | EventType::SoftDelete => {
                let schema = self.overlay_schema_of(overlay, seq, table)?;
                let key =
                    event.key.as_ref().ok_or_else(|| Error::invalid("event without a key"))?;
                key.check_size()?;
                let current = self.overlay_doc(overlay, seq, table, key)?;
                let mut patched: Option<Arc<Value>> = None;
                let new_doc: Option<&Value> = match event.kind {
                    EventType::Insert => {
                        // The encoded [key, body] bounds the document's own encoded size.
                        let size = event.encoded.len() as u64;
                        check_document("document", body, Some(size))?;
                        if !body.get(&schema.primary_key).is_some_and(|pk| key.is(pk)) {
                            return Err(Error::invalid(format!(
                                "the document's primary key field `{}` must hold the key {key}",
                                schema.primary_key
                            )));
                        }
                        if current.is_some() {
                            let key = key.clone();
                            return Err(Error::DuplicateKey { table: table.to_owned(), key });
                        }
                        Some(body)
                    }
                    EventType::Patch => {
                        check_document("patch", body, Some(event.encoded.len() as u64))?;
                        let Some(current) = current else {
                            let key = key.clone();
                            return Err(Error::KeyNotFound { table: table.to_owned(), key });
                        };
                        if let Some(pk) = body.get(&schema.primary_key)
                            && !key.is(pk)
                        {
                            return Err(Error::invalid(format!(
                                "PATCH cannot change or remove the primary key field `{}`",
                                schema.primary_key
                            )));
                        }
                        let mut doc = (*current).clone();
                        doc.merge_patch(body);
                        check_document("document", &doc, None)?;
                        Some(&**patched.insert(Arc::new(doc)))
                    }
                    _ => {
                        if current.is_none() {
                            let key = key.clone();
                            return Err(Error::KeyNotFound { table: table.to_owned(), key });
                        }
                        None
                    }
                };
                if let Some(doc) = new_doc
                    && !schema.unique.is_empty()
                {
                    self.check_unique(overlay, table, &schema, key, doc)?;
                }
                if overlay.written_values.tracks(table) {
                    let old = match overlay.writes.written(table, key) {
                        Some(old) => old.doc()?,
                        None => None,
                    };
                    overlay.written_values.on_write(table, key, old.as_deref(), new_doc);
                }
                if event.kind == EventType::Patch {
                    change.doc = patched;
                }
            }
            EventType::WalBatch | EventType::Checkpoint => {
                return Err(Error::invalid("not a transaction event"));
            }
        }
        overlay.writes.record(event, change)
    }

    /// Validate a whole transaction against the latest state (pending commits included):
    /// its events, given back, and the change each makes.
    pub fn prepare(&self, events: Vec<Event>) -> Result<(Vec<Event>, Vec<Change>)> {
        let mut overlay = Overlay::new(u64::MAX);
        overlay.writes.events.reserve(events.len());
        overlay.writes.changes.reserve(events.len());
        for event in events {
            self.check(&mut overlay, event)?;
        }
        let Writes { events, changes, .. } = overlay.writes;
        Ok((events, changes))
    }

    /// Install the validated changes of `events` (one per event) as the next seq.
    pub fn install(
        &mut self,
        seq: u64,
        unix_ms: u64,
        events: Vec<Event>,
        changes: Vec<Change>,
    ) -> Result<()> {
        if seq != self.last_seq() + 1 {
            return Err(Error::invalid(format!(
                "seq {seq} does not follow the last seq {}",
                self.last_seq()
            )));
        }
        if events.len() != changes.len() {
            return Err(Error::invalid("events and changes do not match"));
        }
        if self.bulk_installable(&events) {
            self.install_bulk(seq, events, changes)?;
            self.commit_ms.push(unix_ms);
            return Ok(());
        }
        for (event, change) in events.into_iter().zip(changes) {
            if !self.tables.contains_key(&*event.table) {
                self.tables.insert(event.table.to_string(), TableState::default());
            }
            let Some(table) = self.tables.get_mut(&*event.table) else {
                return Err(Error::NoSuchTable { table: event.table.to_string() });
            };
            table.changed_seq = seq;
            match change.kind {
                EventType::CreateTable | EventType::AlterTable | EventType::DropTable => {
                    if self.last_ddl.0 != seq || self.last_ddl.1 != *event.table {
                        self.last_ddl = (seq, event.table.to_string());
                    }
                    if change.kind == EventType::CreateTable
                        && table.schemas.last().is_some_and(|s| s.seq == seq)
                    {
                        // Dropped and re-created in this transaction: rows written before the
                        // drop, at this same seq, are not live in the new incarnation. Mark
                        // them with a version that has no document (history skips its kind).
                        for (key, chain) in table.rows.iter_mut() {
                            if chain.last().is_some_and(|v| v.seq == seq && v.has_doc()) {
                                if !table.indexes.is_empty() {
                                    let old = chain.latest()?;
                                    for index in &mut table.indexes {
                                        index.on_version(key, old.as_ref(), None, seq);
                                    }
                                }
                                chain.push(seq, EventType::DropTable, crate::chain::NIL, None)?;
                            }
                        }
                    }
                    let created_seq = if change.kind == EventType::CreateTable {
                        seq
                    } else {
                        table.schemas.last().map_or(seq, |s| s.created_seq)
                    };
                    if let Some(schema) = &change.schema
                        && !self.index_deferred.contains(&*event.table)
                    {
                        crate::index::sync(&mut table.indexes, schema, &table.rows)?;
                    }
                    table.schemas.push(SchemaVersion { seq, schema: change.schema, created_seq });
                }
                _ => {
                    if let Some(key) = event.key {
                        if !table.indexes.is_empty() {
                            let old = match table.rows.get(&key) {
                                Some(chain) => chain.latest()?,
                                None => None,
                            };
                            let new = match change.kind {
                                EventType::Insert => Some(Arc::new(crate::chain::decode_bytes(
                                    crate::event::body_of(&event.encoded)?,
                                )?)),
                                _ => change.doc.clone(),
                            };
                            for index in &mut table.indexes {
                                index.on_version(&key, old.as_ref(), new.as_deref(), seq);
                            }
                        }
                        let body = crate::event::body_of(&event.encoded)?;
                        match table.rows.get_mut(&key) {
                            Some(chain) => {
                                chain.push(seq, change.kind, body, change.doc.as_deref())?
                            }
                            None => {
                                let chain =
                                    Chain::of(seq, change.kind, body, change.doc.as_deref())?;
                                table.rows.insert(key, chain);
                            }
                        }
                    }
                }
            }
        }
        self.commit_ms.push(unix_ms);
        Ok(())
    }
}
