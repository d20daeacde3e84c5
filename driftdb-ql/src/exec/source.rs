//! Where a read gets its rows: a committed snapshot at one seq, or the open transaction's view
//! (its read seq plus its own writes). Declared column defaults are applied here, so every
//! reader sees documents the same way.

use driftdb_core::{ColumnDef, Key, Row, Snapshot, TableSchema, Transaction, Value};

use crate::Result;

/// A consistent view to read from.
pub(crate) enum Source<'s, 'db> {
    /// Committed state at one seq.
    Snapshot(Snapshot<'db>),
    /// The open transaction.
    Txn(&'s Transaction<'db>),
}

impl Source<'_, '_> {
    /// The seq the view reads at (a transaction's read seq).
    pub fn seq(&self) -> u64 {
        match self {
            Source::Snapshot(s) => s.seq(),
            Source::Txn(t) => t.read_seq(),
        }
    }

    /// Whether this is the open transaction's view.
    pub fn is_transaction(&self) -> bool {
        matches!(self, Source::Txn(_))
    }

    pub fn schema(&self, table: &str) -> Result<TableSchema> {
        Ok(match self {
            Source::Snapshot(s) => s.schema(table)?,
            Source::Txn(t) => t.schema(table)?,
        })
    }

    pub fn tables(&self) -> Vec<String> {
        match self {
            Source::Snapshot(s) => s.tables(),
            Source::Txn(t) => t.tables(),
        }
    }

    /// A retention error when some table's history at this source's seq was folded away, so
    /// that a list of tables there would be incomplete.
    pub fn check_all_retained(&self) -> Result<()> {
        match self {
            Source::Snapshot(s) => Ok(s.check_all_retained()?),
            Source::Txn(t) => Ok(t.check_all_retained()?),
        }
    }

    /// Every live row (with defaults applied) for which `keep` returns `Ok(true)`, in primary
    /// key order. The first error of `keep` stops the scan and is returned.
    pub fn scan(
        &self,
        table: &str,
        mut keep: impl FnMut(&Value) -> Result<bool>,
    ) -> Result<Vec<Row>> {
        let schema = self.schema(table)?;
        let defaults: Vec<&ColumnDef> =
            schema.columns.iter().filter(|c| c.default.is_some()).collect();
        let mut failure = None;
        let mut filter = |doc: &Value| {
            if failure.is_some() {
                return false;
            }
            let result = if defaults.is_empty() {
                keep(doc)
            } else {
                keep(&with_defaults(doc.clone(), &defaults))
            };
            result.unwrap_or_else(|e| {
                failure = Some(e);
                false
            })
        };
        let rows = match self {
            Source::Snapshot(s) => s.scan(table, &mut filter)?,
            Source::Txn(t) => t.scan(table, &mut filter)?,
        };
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(if defaults.is_empty() {
            rows
        } else {
            rows.into_iter()
                .map(|row| Row { key: row.key, doc: with_defaults(row.doc, &defaults) })
                .collect()
        })
    }

    /// The live rows whose `field` equals `value`, through an index, with defaults applied;
    /// `None` when no index can answer (no index on the field, a transaction's view, or a
    /// declared default that the index does not see).
    pub fn lookup(&self, table: &str, field: &str, value: &Value) -> Result<Option<Vec<Row>>> {
        let Source::Snapshot(snapshot) = self else {
            return Ok(None);
        };
        let schema = snapshot.schema(table)?;
        let defaults: Vec<&ColumnDef> =
            schema.columns.iter().filter(|c| c.default.is_some()).collect();
        let top = field.split('.').next().unwrap_or(field);
        if defaults.iter().any(|c| c.name == top) {
            return Ok(None);
        }
        Ok(snapshot.lookup(table, field, value)?.map(|rows| {
            rows.into_iter()
                .map(|row| Row { key: row.key, doc: with_defaults(row.doc, &defaults) })
                .collect()
        }))
    }

    /// The live document of `key` with defaults applied.
    pub fn get(&self, table: &str, key: &Key) -> Result<Option<Value>> {
        let schema = self.schema(table)?;
        let doc = match self {
            Source::Snapshot(s) => s.get(table, key)?,
            Source::Txn(t) => t.get(table, key)?,
        };
        let defaults: Vec<&ColumnDef> =
            schema.columns.iter().filter(|c| c.default.is_some()).collect();
        Ok(doc.map(|d| with_defaults(d, &defaults)))
    }
}

/// `doc` with every declared default filled in where the field is missing.
pub(crate) fn with_defaults(mut doc: Value, defaults: &[&ColumnDef]) -> Value {
    if let Value::Map(map) = &mut doc {
        for column in defaults {
            if let Some(default) = &column.default
                && !map.contains_key(column.name.as_str())
            {
                map.insert(column.name.as_str().into(), default.clone());
            }
        }
    }
    doc
}
