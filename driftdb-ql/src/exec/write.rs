//! Write statements: INSERT, UPSERT, PATCH and SOFT DELETE, by key or by `WHERE`.
//!
//! Every write goes through a core transaction, so the constraints are the core's: INSERT of a
//! live key is a duplicate, PATCH and SOFT DELETE need a live key. A `WHERE` write reads the
//! rows it changes through the same transaction, so it sees the transaction's earlier writes.
//!
//! `UPSERT` of a key that is not live is an INSERT. Of a live key it is recorded as a PATCH
//! that turns the old document into the new one: fields missing from the new document are
//! removed, nested objects are diffed field by field. As in every PATCH, a field set to
//! `null` in the new document is removed (JSON Merge Patch); history shows one PATCH event.

use driftdb_core::{Key, Map, Transaction, Value};

use super::eval::{DocScope, passes};
use super::key_of;
use super::source::Source;
use crate::Result;
use crate::ast::{Statement, Target};
use crate::error::Error;

/// The statement's name in outcomes.
pub(crate) fn statement_name(statement: &Statement) -> &'static str {
    match statement {
        Statement::Insert { upsert: true, .. } => "UPSERT",
        Statement::Insert { .. } => "INSERT",
        Statement::Patch { .. } => "PATCH",
        _ => "SOFT DELETE",
    }
}

/// Buffer the events of a write statement in `txn`; returns the keys written, in order.
pub(crate) fn apply(txn: &mut Transaction<'_>, statement: &Statement) -> Result<Vec<Key>> {
    match statement {
        Statement::Insert { table, documents, upsert } => {
            let mut keys = Vec::with_capacity(documents.len());
            for doc in documents {
                if !matches!(doc, Value::Map(_)) {
                    return Err(Error::type_mismatch("a document is a JSON object"));
                }
                let key = if *upsert {
                    upsert_one(txn, table, doc)?
                } else {
                    txn.insert(table, doc.clone())?
                };
                keys.push(key);
            }
            Ok(keys)
        }
        Statement::Patch { table, target, patch } => {
            if !matches!(patch, Value::Map(_)) {
                return Err(Error::type_mismatch("the patch of SET is a JSON object"));
            }
            let keys = target_keys(txn, table, target)?;
            for key in &keys {
                txn.patch(table, key.clone(), patch.clone())?;
            }
            Ok(keys)
        }
        Statement::SoftDelete { table, target } => {
            let keys = target_keys(txn, table, target)?;
            for key in &keys {
                txn.soft_delete(table, key.clone())?;
            }
            Ok(keys)
        }
        _ => Err(Error::invalid("not a write statement")),
    }
}

/// The keys a target names: one key, or every live row matching the condition.
fn target_keys(txn: &Transaction<'_>, table: &str, target: &Target) -> Result<Vec<Key>> {
    match target {
        Target::Key(literal) => Ok(vec![key_of(literal)?]),
        Target::Where(condition) => {
            let rows =
                Source::Txn(txn).scan(table, |doc| passes(condition, &DocScope(doc), "WHERE"))?;
            Ok(rows.into_iter().map(|row| row.key).collect())
        }
    }
}

fn upsert_one(txn: &mut Transaction<'_>, table: &str, doc: &Value) -> Result<Key> {
    let schema = txn.schema(table)?;
    let key = doc.get(&schema.primary_key).and_then(Key::from_value).ok_or_else(|| {
        Error::type_mismatch(format!(
            "the document needs its primary key field `{}` as a string or an integer",
            schema.primary_key
        ))
    })?;
    match txn.get(table, &key)? {
        None => Ok(txn.insert(table, doc.clone())?),
        Some(old) => {
            let patch = diff(&old, doc);
            if !matches!(&patch, Value::Map(m) if m.is_empty()) {
                txn.patch(table, key.clone(), patch)?;
            }
            Ok(key)
        }
    }
}

/// The JSON merge patch that turns `old` into `new` (both objects).
fn diff(old: &Value, new: &Value) -> Value {
    let (Value::Map(old), Value::Map(new)) = (old, new) else {
        return new.clone();
    };
    let mut patch = Map::new();
    for name in old.keys() {
        if !new.contains_key(name) {
            patch.insert(name.clone(), Value::Null);
        }
    }
    for (name, value) in new {
        match old.get(name) {
            Some(before) if before == value => {}
            Some(before @ Value::Map(_)) if matches!(value, Value::Map(_)) => {
                patch.insert(name.clone(), diff(before, value));
            }
            _ => {
                patch.insert(name.clone(), value.clone());
            }
        }
    }
    Value::Map(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_turns_old_into_new() {
        let old: Value =
            serde_json::json!({"id": 1, "a": 1, "gone": true, "n": {"x": 1, "y": 2}}).into();
        let new: Value = serde_json::json!({"id": 1, "a": 2, "n": {"x": 1, "z": 3}}).into();
        let patch = diff(&old, &new);
        let mut merged = old.clone();
        merged.merge_patch(&patch);
        assert_eq!(merged, new);
        assert_eq!(
            patch,
            serde_json::json!({"a": 2, "gone": null, "n": {"y": null, "z": 3}}).into()
        );
    }
}
