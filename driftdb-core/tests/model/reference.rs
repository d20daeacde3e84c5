//! The reference model of `tests/model.rs`: the whole database after every seq, and a
//! transaction's working copy, changed by the same operations the engine is given.

use super::*;

/// The whole database at one seq: for each table, `None` when it does not exist, else its
/// live rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelState {
    pub(crate) tables: Vec<Option<BTreeMap<Key, Value>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelEvent {
    pub(crate) seq: u64,
    pub(crate) kind: ChangeKind,
    pub(crate) payload: Value,
    pub(crate) document: Option<Value>,
}

#[derive(Debug)]
pub(crate) struct Model {
    /// `states[s]`: the state right after seq `s` (`states[0]`: the empty database).
    pub(crate) states: Vec<ModelState>,
    /// `commit_ms[s - 1]`: the commit time of seq `s`, as `CommitInfo` reported it.
    pub(crate) commit_ms: Vec<u64>,
    /// Every data event of every key, in order, across table incarnations.
    pub(crate) history: BTreeMap<(usize, Key), Vec<ModelEvent>>,
    /// The seq of each table's first CREATE.
    pub(crate) first_created: Vec<Option<u64>>,
    /// The seq of each table's last CREATE or DROP (0: none).
    pub(crate) last_ddl: Vec<u64>,
}

/// A transaction in the model: a working copy of the state it started from, changed by each
/// accepted operation, and the events to log at commit.
#[derive(Debug)]
pub(crate) struct ModelTx {
    /// The seq it read at.
    pub(crate) base_seq: u64,
    /// The accepted writes, in order (replayed on the latest state at commit).
    pub(crate) writes: Vec<Write>,
    pub(crate) state: ModelState,
    pub(crate) events: Vec<(usize, Key, ModelEvent)>,
    pub(crate) created: Vec<usize>,
    /// Tables created or dropped.
    pub(crate) ddl: Vec<usize>,
    /// Accepted operations (data and DDL): the commit's `events`.
    pub(crate) count: usize,
}

/// What the engine must answer to an operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Ok,
    NoSuchTable,
    TableExists,
    DuplicateKey,
    KeyNotFound,
    Invalid,
    /// Anything else (including an error naming the wrong table or key).
    Other(String),
}

/// JSON Merge Patch (RFC 7386), written from the RFC's pseudo-code.
pub(crate) fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Map(patch) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Map(m) => m.clone(),
        _ => Map::new(),
    };
    for (name, value) in patch {
        if *value == Value::Null {
            out.remove(name);
        } else {
            let current = out.get(name).cloned().unwrap_or(Value::Null);
            out.insert(name.clone(), merge_patch(&current, value));
        }
    }
    Value::Map(out)
}

impl Model {
    pub(crate) fn new() -> Self {
        Model {
            states: vec![ModelState { tables: vec![None; TABLES.len()] }],
            commit_ms: Vec::new(),
            history: BTreeMap::new(),
            first_created: vec![None; TABLES.len()],
            last_ddl: vec![0; TABLES.len()],
        }
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.commit_ms.len() as u64
    }

    pub(crate) fn state(&self, seq: u64) -> &ModelState {
        &self.states[usize::try_from(seq).unwrap()]
    }

    pub(crate) fn commit_time(&self, seq: u64) -> Option<u64> {
        if seq == 0 { None } else { self.commit_ms.get(usize::try_from(seq - 1).ok()?).copied() }
    }

    /// The last seq committed at or before `unix_ms` (0 when none was).
    pub(crate) fn seq_at_time(&self, unix_ms: u64) -> u64 {
        let mut seq = 0;
        for (i, &t) in self.commit_ms.iter().enumerate() {
            if t <= unix_ms {
                seq = i as u64 + 1;
            }
        }
        seq
    }

    pub(crate) fn begin(&self) -> ModelTx {
        ModelTx {
            base_seq: self.last_seq(),
            writes: Vec::new(),
            state: self.state(self.last_seq()).clone(),
            events: Vec::new(),
            created: Vec::new(),
            ddl: Vec::new(),
            count: 0,
        }
    }

    /// The first-committer-wins conflict of `tx` (REPEATABLE READ), if any: the first of its
    /// writes, in order, whose table was created or dropped, or whose key was written, after
    /// it began. Returns (table, key or `None` for the table, the seq of that change).
    pub(crate) fn conflict(&self, tx: &ModelTx) -> Option<(usize, Option<Key>, u64)> {
        for write in &tx.writes {
            let table = write.table();
            let ddl = self.last_ddl[table];
            if ddl > tx.base_seq {
                return Some((table, None, ddl));
            }
            if let Some(key) = write.key() {
                let history = self.history.get(&(table, key.clone()));
                let seq = history.and_then(|h| h.last()).map_or(0, |e| e.seq);
                if seq > tx.base_seq {
                    return Some((table, Some(key.clone()), seq));
                }
            }
        }
        None
    }

    /// What committing `tx` now does: its writes re-validated and re-applied, in order, on the
    /// latest state; or the refusal of the first write that no longer applies.
    pub(crate) fn replay(
        &self,
        tx: &ModelTx,
    ) -> Result<ModelTx, (Outcome, &'static str, Option<Key>)> {
        let mut now = self.begin();
        for write in &tx.writes {
            let outcome = now.apply(write);
            if outcome != Outcome::Ok {
                return Err((outcome, TABLES[write.table()], write.key().cloned()));
            }
        }
        Ok(now)
    }

    /// Check what the engine's commit returned and record the transaction.
    pub(crate) fn commit(&mut self, tx: ModelTx, info: CommitInfo) -> TestResult {
        let last = self.last_seq();
        if tx.count == 0 {
            let unix_ms = self.commit_time(last).unwrap_or(0);
            prop_assert_eq!(info, CommitInfo { seq: last, unix_ms, events: 0 });
            return Ok(());
        }
        prop_assert_eq!(info.seq, last + 1, "a commit takes the next seq");
        prop_assert_eq!(info.events, tx.count);
        if let Some(&previous) = self.commit_ms.last() {
            prop_assert!(info.unix_ms >= previous, "commit times go back: {info:?}");
        }
        self.commit_ms.push(info.unix_ms);
        self.states.push(tx.state);
        for (table, key, mut event) in tx.events {
            event.seq = info.seq;
            self.history.entry((table, key)).or_default().push(event);
        }
        for table in tx.created {
            self.first_created[table].get_or_insert(info.seq);
        }
        for table in tx.ddl {
            self.last_ddl[table] = info.seq;
        }
        Ok(())
    }
}

impl ModelTx {
    /// Apply `write` as the engine must, or say how the engine must refuse it.
    pub(crate) fn apply(&mut self, write: &Write) -> Outcome {
        let outcome = match write {
            Write::Insert { table, key, fields } => {
                self.insert(*table, key, &Write::document(key, fields))
            }
            Write::Patch { table, key, patch, pk, .. } => {
                self.patch(*table, key, &Write::patch(key, patch, *pk))
            }
            Write::SoftDelete { table, key, .. } => self.soft_delete(*table, key),
            Write::DropTable => self.drop_table(DDL_TABLE),
            Write::CreateTable => self.create_table(DDL_TABLE),
        };
        if outcome == Outcome::Ok {
            self.writes.push(write.clone());
        }
        outcome
    }

    pub(crate) fn rows(&self, table: usize) -> Option<&BTreeMap<Key, Value>> {
        self.state.tables[table].as_ref()
    }

    pub(crate) fn log(&mut self, table: usize, key: &Key, kind: ChangeKind, payload: Value) {
        let document = self.rows(table).and_then(|rows| rows.get(key)).cloned();
        let event = ModelEvent { seq: 0, kind, payload, document };
        self.events.push((table, key.clone(), event));
        self.count += 1;
    }

    pub(crate) fn insert(&mut self, table: usize, key: &Key, doc: &Value) -> Outcome {
        let Some(rows) = self.state.tables[table].as_mut() else { return Outcome::NoSuchTable };
        if rows.contains_key(key) {
            return Outcome::DuplicateKey;
        }
        rows.insert(key.clone(), doc.clone());
        self.log(table, key, ChangeKind::Insert, doc.clone());
        Outcome::Ok
    }

    pub(crate) fn patch(&mut self, table: usize, key: &Key, patch: &Value) -> Outcome {
        let Some(rows) = self.state.tables[table].as_mut() else { return Outcome::NoSuchTable };
        let Some(doc) = rows.get_mut(key) else { return Outcome::KeyNotFound };
        if patch.get("id").is_some_and(|pk| *pk != key.to_value()) {
            return Outcome::Invalid;
        }
        *doc = merge_patch(doc, patch);
        self.log(table, key, ChangeKind::Patch, patch.clone());
        Outcome::Ok
    }

    pub(crate) fn soft_delete(&mut self, table: usize, key: &Key) -> Outcome {
        let Some(rows) = self.state.tables[table].as_mut() else { return Outcome::NoSuchTable };
        if rows.remove(key).is_none() {
            return Outcome::KeyNotFound;
        }
        self.log(table, key, ChangeKind::SoftDelete, Value::Null);
        Outcome::Ok
    }

    pub(crate) fn drop_table(&mut self, table: usize) -> Outcome {
        if self.state.tables[table].take().is_none() {
            return Outcome::NoSuchTable;
        }
        self.ddl.push(table);
        self.count += 1;
        Outcome::Ok
    }

    pub(crate) fn create_table(&mut self, table: usize) -> Outcome {
        if self.state.tables[table].is_some() {
            return Outcome::TableExists;
        }
        self.state.tables[table] = Some(BTreeMap::new());
        self.created.push(table);
        self.ddl.push(table);
        self.count += 1;
        Outcome::Ok
    }
}
