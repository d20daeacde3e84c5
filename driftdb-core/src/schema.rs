//! Table schemas. A schema is part of history: CREATE, ALTER and DROP are events with a seq,
//! so the schema of any past seq can be read. `schema.yaml` and `meta.json` in the table's
//! directory are derived copies of the current schema for people and tools; the segments are
//! the source of truth and the files are rewritten from them on open when stale.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::TABLE_NAME_BYTES_MAX;
use crate::value::Value;

/// The schema of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The field that holds each document's primary key (`pk=id`).
    pub primary_key: String,
    /// Declared secondary indexes, as lists of fields; each field listed is indexed on its own
    /// (see `index.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Vec<String>>,
    /// Field paths (dotted) whose non-null values must be unique among the table's live rows
    /// (`UNIQUE(email)`). Each is also indexed. A write that would make two live rows hold
    /// the same value fails with [`Error::UniqueViolation`]; numbers compare by value, so `1`
    /// and `1.0` collide, and null or missing values are not constrained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<String>,
    /// Declared columns with their defaults (from `ALTER TABLE ... ADD COLUMN`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnDef>,
    /// Take a snapshot of the table automatically after this many events since its last one
    /// (`ALTER TABLE t SET SNAPSHOT EVERY n`); 0 turns it off for the table. `None`: the
    /// database's `Options::snapshot_every_events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
    /// How long the table keeps its full history, in milliseconds (`ALTER TABLE t SET
    /// RETENTION '90 days'`; see `retention.rs`). `None`: forever. Setting it folds nothing by
    /// itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
}

/// A declared column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// The field name.
    pub name: String,
    /// The value documents without the field read as.
    #[serde(default)]
    pub default: Option<Value>,
}

impl TableSchema {
    /// A schema with only a primary key field.
    pub fn new(primary_key: impl Into<String>) -> Self {
        TableSchema {
            primary_key: primary_key.into(),
            indexes: Vec::new(),
            unique: Vec::new(),
            columns: Vec::new(),
            snapshot_every: None,
            retention_ms: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.primary_key.is_empty() {
            return Err(Error::invalid("the primary key field name is empty"));
        }
        if self.retention_ms == Some(0) {
            return Err(Error::invalid("a retention window must be longer than zero"));
        }
        for field in &self.unique {
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(Error::invalid(format!("unique field {field:?} is not a field path")));
            }
        }
        Ok(())
    }
}

/// The derived `meta.json` of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableMeta {
    pub name: String,
    pub primary_key: String,
    /// The seq of the CREATE that started the current (or last) incarnation.
    pub created_seq: u64,
    /// The seq of the DROP that ended it, if it is dropped.
    pub dropped_seq: Option<u64>,
    pub format_version: u32,
}

/// Table names are directory names: ASCII letters, digits and `_`, not starting with a digit.
pub(crate) fn validate_table_name(name: &str) -> Result<()> {
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok_start || !ok_chars || name.len() > TABLE_NAME_BYTES_MAX {
        return Err(Error::invalid(format!(
            "table name {name:?} must be 1 to {TABLE_NAME_BYTES_MAX} ASCII letters, digits or '_', \
             not starting with a digit"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for ok in ["users", "_x", "Orders_2024"] {
            assert!(validate_table_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "a-b", "a/b", "..", "é", &"x".repeat(65)] {
            assert!(validate_table_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_yaml_round_trip() {
        let mut s = TableSchema::new("id");
        s.indexes.push(vec!["email".into()]);
        s.unique.push("login.name".into());
        s.columns.push(ColumnDef { name: "prio".into(), default: Some(Value::Int(1)) });
        let text = serde_yaml::to_string(&s).unwrap();
        assert_eq!(serde_yaml::from_str::<TableSchema>(&text).unwrap(), s);
    }

    #[test]
    fn schemas_without_unique_encode_as_before() {
        let s = TableSchema::new("id");
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"primary_key":"id"}"#);
        let old: TableSchema =
            serde_json::from_str(r#"{"primary_key":"id","indexes":[["a"]]}"#).unwrap();
        assert!(old.unique.is_empty());
    }
}
