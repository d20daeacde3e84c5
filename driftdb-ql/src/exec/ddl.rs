//! Schema statements. Each is a schema event in the table's history, so `DESCRIBE t AS OF`
//! shows the schema of any past seq.
//!
//! - `CREATE [UNIQUE] INDEX` / `DROP INDEX` change the indexes declared in the schema; the
//!   engine builds each declared index from the whole history. A unique index (one field) is
//!   enforced by the engine: a write that would give two live rows one value there fails with
//!   `unique_violation`, and so does declaring it where two live rows already share a value.
//!   `DROP INDEX ON t(a)` drops every index declared on exactly `(a)`, unique or not.
//! - `ADD COLUMN c DEFAULT v` declares a column: documents without the field read as `v`
//!   (applied at read time, so it costs nothing however large the table). Without `DEFAULT`
//!   the column is only declared.
//! - `DROP COLUMN c` removes the declaration and, in the same transaction, PATCHes the field
//!   out of every live document that has it: history keeps the old values, reads from then on
//!   do not see the field. The primary key cannot be dropped.

use driftdb_core::{ColumnDef, TableSchema, Transaction, Value};
use serde_json::json;

use super::eval::{field, literal_value, path_text};
use super::source::Source;
use crate::Result;
use crate::ast::{AlterAction, Path, Statement};
use crate::error::Error;

/// What a DDL statement did: its name, a message, and details for programs.
pub(crate) type Report = (&'static str, String, Vec<(String, Value)>);

fn index_name(fields: &[Path]) -> Vec<String> {
    fields.iter().map(path_text).collect()
}

fn details(table: &str, extra: serde_json::Value) -> Vec<(String, Value)> {
    let mut out = vec![("table".to_owned(), Value::String(table.into()))];
    if let serde_json::Value::Object(map) = extra {
        out.extend(map.into_iter().map(|(k, v)| (k, Value::from(v))));
    }
    out
}

/// Buffer the events of a DDL statement in `txn`.
pub(crate) fn apply(txn: &mut Transaction<'_>, statement: &Statement) -> Result<Report> {
    match statement {
        Statement::CreateTable { table, primary_key, indexes, unique } => {
            let mut schema = TableSchema::new(primary_key.clone());
            for fields in indexes {
                let index = index_name(fields);
                if !schema.indexes.contains(&index) {
                    schema.indexes.push(index);
                }
            }
            for field in unique {
                let field = path_text(field);
                if !schema.unique.contains(&field) {
                    schema.unique.push(field);
                }
            }
            txn.create_table(table, schema)?;
            Ok((
                "CREATE TABLE",
                format!("created table {table} (primary key {primary_key})"),
                details(table, json!({"primary_key": primary_key})),
            ))
        }
        Statement::DropTable { table, if_exists } => {
            if *if_exists && !txn.tables().contains(table) {
                return Ok((
                    "DROP TABLE",
                    format!("table {table} does not exist; nothing dropped"),
                    details(table, json!({"dropped": false})),
                ));
            }
            txn.drop_table(table)?;
            Ok((
                "DROP TABLE",
                format!("dropped table {table}; its history stays readable AS OF earlier seqs"),
                details(table, json!({"dropped": true})),
            ))
        }
        Statement::CreateIndex { table, fields, unique: true } => {
            let mut schema = txn.schema(table)?;
            let [field] = fields.as_slice() else {
                return Err(Error::invalid("a unique index has exactly one field"));
            };
            let field = path_text(field);
            if schema.unique.contains(&field) {
                return Err(Error::invalid(format!(
                    "table {table} already has a unique index on ({field})"
                )));
            }
            schema.unique.push(field.clone());
            txn.alter_table(table, schema)?;
            Ok((
                "CREATE INDEX",
                format!("declared unique index on {table}({field})"),
                details(table, json!({"index": [field], "unique": true})),
            ))
        }
        Statement::CreateIndex { table, fields, unique: false } => {
            let mut schema = txn.schema(table)?;
            let index = index_name(fields);
            if schema.indexes.contains(&index) {
                return Err(Error::invalid(format!(
                    "table {table} already has an index on ({})",
                    index.join(", ")
                )));
            }
            schema.indexes.push(index.clone());
            txn.alter_table(table, schema)?;
            Ok((
                "CREATE INDEX",
                format!("declared index on {table}({})", index.join(", ")),
                details(table, json!({"index": index})),
            ))
        }
        Statement::DropIndex { table, fields } => {
            let mut schema = txn.schema(table)?;
            let index = index_name(fields);
            let before = schema.indexes.len() + schema.unique.len();
            schema.indexes.retain(|i| *i != index);
            if let [field] = index.as_slice() {
                schema.unique.retain(|u| u != field);
            }
            if schema.indexes.len() + schema.unique.len() == before {
                return Err(Error::invalid(format!(
                    "table {table} has no index on ({}); DESCRIBE {table} lists its indexes",
                    index.join(", ")
                )));
            }
            txn.alter_table(table, schema)?;
            Ok((
                "DROP INDEX",
                format!("dropped index on {table}({})", index.join(", ")),
                details(table, json!({"index": index})),
            ))
        }
        Statement::AlterTable { table, action: AlterAction::AddColumn { name, default } } => {
            let mut schema = txn.schema(table)?;
            if *name == schema.primary_key || schema.columns.iter().any(|c| c.name == *name) {
                return Err(Error::invalid(format!("table {table} already has a column `{name}`")));
            }
            let default = default.as_ref().map(literal_value);
            schema.columns.push(ColumnDef { name: name.clone(), default: default.clone() });
            txn.alter_table(table, schema)?;
            let message = match &default {
                Some(v) => format!("added column {name} to {table} (default {v})"),
                None => format!("added column {name} to {table}"),
            };
            let default = default.map_or(serde_json::Value::Null, |v| (&v).into());
            Ok((
                "ALTER TABLE",
                message,
                details(table, json!({"column": name, "default": default})),
            ))
        }
        Statement::AlterTable { table, action: AlterAction::DropColumn { name } } => {
            let mut schema = txn.schema(table)?;
            if *name == schema.primary_key {
                return Err(Error::invalid(format!(
                    "`{name}` is the primary key of {table}; it cannot be dropped"
                )));
            }
            let path = Path(vec![name.clone()]);
            let declared = schema.columns.iter().any(|c| c.name == *name);
            schema.columns.retain(|c| c.name != *name);
            // Remove the declaration first, so its default no longer makes the field look
            // present in the documents scanned next.
            if declared {
                txn.alter_table(table, schema)?;
            }
            let rows = Source::Txn(txn).scan(table, |doc| Ok(field(doc, &path).is_some()))?;
            if !declared && rows.is_empty() {
                return Err(Error::UnknownColumn {
                    column: name.clone(),
                    message: format!(
                        "table {table} has no column `{name}`: it is not declared and no live \
                         document has it"
                    ),
                });
            }
            let patch = Value::Map([(name.as_str().into(), Value::Null)].into_iter().collect());
            for row in &rows {
                txn.patch(table, row.key.clone(), patch.clone())?;
            }
            Ok((
                "ALTER TABLE",
                format!("dropped column {name} from {table} ({} document(s) changed)", rows.len()),
                details(table, json!({"column": name, "documents": rows.len()})),
            ))
        }
        Statement::AlterTable { table, action: AlterAction::SetSnapshotEvery { every } } => {
            let mut schema = txn.schema(table)?;
            schema.snapshot_every = Some(*every);
            txn.alter_table(table, schema)?;
            let message = if *every == 0 {
                format!("automatic snapshots of {table} are off")
            } else {
                format!("{table} gets a snapshot every {every} events")
            };
            Ok(("ALTER TABLE", message, details(table, json!({"snapshot_every": every}))))
        }
        Statement::AlterTable { table, action: AlterAction::SetRetention { ms } } => {
            let mut schema = txn.schema(table)?;
            schema.retention_ms = *ms;
            txn.alter_table(table, schema)?;
            let text = ms.map(driftdb_core::format_retention);
            let message = match &text {
                None => format!("{table} keeps all its history"),
                Some(text) => {
                    format!("{table} keeps {text} of history (older history is folded by COMPACT)")
                }
            };
            Ok(("ALTER TABLE", message, details(table, json!({"retention": text}))))
        }
        _ => Err(Error::invalid("not a schema statement")),
    }
}
