//! Unique indexes: a schema's `unique` fields, whose non-null values no two live rows of the
//! table may share.
//!
//! A write (INSERT, PATCH, or the INSERT or PATCH an UPSERT becomes) is checked twice:
//! - when it is added to its transaction, against the transaction's view (its snapshot, or
//!   the latest commit under READ COMMITTED, plus its own writes), so two writes of one value
//!   in one transaction fail at the second;
//! - at commit, under the writer lock, against the latest state (pending commits included):
//!   `Database::commit_events` validates every transaction that writes to a table with unique
//!   fields again there, at every isolation level, because a concurrent transaction may have
//!   committed the same value under another key (no key or schema conflict to notice). Of two
//!   concurrent transactions writing one value, the second to commit fails and nothing of it
//!   is applied.
//!
//! Values compare as the index keys them ([`IndexValue`]): numbers by value (`1` and `1.0`
//! collide); null and missing values are not constrained. The holders of a value among
//! committed rows are found through the field's index (every unique field is indexed); keys
//! the transaction wrote are judged by its own version, kept per value in [`WrittenValues`]
//! so a transaction of many inserts costs one hash lookup per write, not a pass over its
//! writes. Declaring a unique field (CREATE or ALTER) checks the live rows for duplicates.
//!
//! A violation is [`Error::UniqueViolation`], naming the field, the value, the refused key and
//! the key that holds the value.

use foldhash::HashMap;
use smallvec::SmallVec;

use crate::error::{Error, Result, UniqueViolation};
use crate::index::{IndexValue, at_path, indexed, split_path};
use crate::schema::TableSchema;
use crate::state::{Overlay, State};
use crate::value::{Key, Value};
use crate::writes::Writes;

type Holders = HashMap<IndexValue, SmallVec<[Key; 1]>>;

/// The values the live rows written by a transaction hold at unique fields, by table and path.
/// A `(table, path)` is built from the transaction's writes the first time a write needs it
/// and kept in step with every later write.
#[derive(Debug, Default)]
pub(crate) struct WrittenValues {
    tables: HashMap<String, Vec<(Vec<String>, Holders)>>,
}

impl WrittenValues {
    /// The table was (re)created in the transaction: its earlier writes are gone.
    pub fn forget(&mut self, table: &str) {
        self.tables.remove(table);
    }

    /// The transaction's version of `key` changed from `old` to `new`.
    pub fn on_write(&mut self, table: &str, key: &Key, old: Option<&Value>, new: Option<&Value>) {
        let Some(paths) = self.tables.get_mut(table) else { return };
        for (path, holders) in paths {
            let before = indexed(old, path);
            let after = indexed(new, path);
            if before == after {
                continue;
            }
            if let Some(value) = before
                && let Some(keys) = holders.get_mut(&value)
            {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    holders.remove(&value);
                }
            }
            if let Some(value) = after {
                holders.entry(value).or_default().push(key.clone());
            }
        }
    }

    /// The holders of every value at `path` among `written`, built on first use.
    fn holders(
        &mut self,
        table: &str,
        path: &[String],
        writes: &Writes,
    ) -> Result<Option<&Holders>> {
        let paths = self.tables.entry(table.to_owned()).or_default();
        if !paths.iter().any(|(p, _)| p == path) {
            let mut holders = Holders::default();
            for (key, written) in writes.rows(table) {
                if let Some(value) = indexed(written.doc()?.as_deref(), path) {
                    holders.entry(value).or_default().push(key.clone());
                }
            }
            paths.push((path.to_vec(), holders));
        }
        Ok(paths.iter().find(|(p, _)| p == path).map(|(_, holders)| holders))
    }

    /// Whether the values of `table` are tracked yet (built on first use by a unique check).
    pub fn tracks(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }
}

fn violation(table: &str, field: &str, doc: &Value, key: &Key, existing_key: &Key) -> Error {
    let path = split_path(field);
    let value = at_path(doc, &path).map_or_else(|| "null".to_owned(), Value::to_string);
    Error::UniqueViolation(Box::new(UniqueViolation {
        table: table.to_owned(),
        field: field.to_owned(),
        value,
        key: key.clone(),
        existing_key: existing_key.clone(),
    }))
}

impl State {
    /// Refuse `doc` as the new document of `key` when, as `overlay`'s transaction sees the
    /// table, another live row holds the same value at one of `schema`'s unique fields.
    pub(crate) fn check_unique(
        &self,
        overlay: &mut Overlay,
        table: &str,
        schema: &TableSchema,
        key: &Key,
        doc: &Value,
    ) -> Result<()> {
        for field in &schema.unique {
            let path = split_path(field);
            let Some(value) = indexed(Some(doc), &path) else { continue };
            if let Some(existing) = self.holder(overlay, table, &path, &value, key)? {
                return Err(violation(table, field, doc, key, &existing));
            }
        }
        Ok(())
    }

    /// A live row other than `key` that holds `value` at `path`, as the transaction sees it.
    fn holder(
        &self,
        overlay: &mut Overlay,
        table: &str,
        path: &[String],
        value: &IndexValue,
        key: &Key,
    ) -> Result<Option<Key>> {
        let writes = &overlay.writes;
        let holders = overlay.written_values.holders(table, path, writes)?;
        let mine = holders.and_then(|h| h.get(value));
        if let Some(other) = mine.and_then(|keys| keys.iter().find(|k| *k != key)) {
            return Ok(Some(other.clone()));
        }
        if overlay.fresh_tables.contains(table) {
            return Ok(None);
        }
        let Some(t) = self.tables.get(table) else { return Ok(None) };
        // `prepare` validates against the latest state with a base seq of `u64::MAX`.
        let seq = overlay.base_seq.min(self.last_seq());
        let holds = |k: &Key| -> Result<bool> {
            if k == key || writes.wrote(table, k) {
                return Ok(false);
            }
            Ok(indexed(t.doc_at(k, seq)?.as_deref(), path).as_ref() == Some(value))
        };
        match t.indexes.iter().find(|i| i.path == path) {
            Some(index) => {
                for k in index.lookup(value, seq) {
                    if holds(&k)? {
                        return Ok(Some(k));
                    }
                }
                Ok(None)
            }
            // Declared inside this transaction, or dropped by a commit after its snapshot:
            // the committed state has no index on the path yet.
            None => {
                for k in t.rows.keys() {
                    if holds(k)? {
                        return Ok(Some(k.clone()));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Refuse an ALTER that declares a unique field on which two live rows (as the
    /// transaction sees the table) already hold the same value.
    pub(crate) fn check_unique_declared(
        &self,
        overlay: &Overlay,
        table: &str,
        old: &TableSchema,
        new: &TableSchema,
    ) -> Result<()> {
        let added: Vec<&String> = new.unique.iter().filter(|f| !old.unique.contains(f)).collect();
        if added.is_empty() {
            return Ok(());
        }
        let rows = self.overlay_rows(overlay, overlay.base_seq, table)?;
        for field in added {
            let path = split_path(field);
            let mut seen: HashMap<IndexValue, &Key> = HashMap::default();
            for (key, doc) in &rows {
                let Some(value) = indexed(Some(doc), &path) else { continue };
                if let Some(existing) = seen.get(&value) {
                    return Err(violation(table, field, doc, key, existing));
                }
                seen.insert(value, key);
            }
        }
        Ok(())
    }

    /// Whether `table`'s latest schema declares unique fields (pending commits included).
    pub(crate) fn has_unique(&self, table: &str) -> bool {
        let last = self.tables.get(table).and_then(|t| t.schemas.last());
        last.and_then(|s| s.schema.as_ref()).is_some_and(|s| !s.unique.is_empty())
    }
}
