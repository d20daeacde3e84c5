//! Tab completion in the shell: DriftQL keywords (in the case the word was started in), meta
//! commands after `\`, table names, and field names.
//!
//! Field names are sampled from the first rows of each table (top-level fields and nested
//! paths like `address.city`, up to three levels), for the tables the line names, or for every
//! table when it names none. Samples are cached until the next statement runs.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use driftdb_core::{AsOf, Database, Value};
use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;

/// DriftQL's keywords, as completed.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ALTER",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "AVG",
    "BACKUP",
    "BEGIN",
    "BETWEEN",
    "BY",
    "COLUMN",
    "COMMIT",
    "COMMITTED",
    "COMPACT",
    "COUNT",
    "CREATE",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DRIFT",
    "DROP",
    "EVERY",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FOR",
    "FROM",
    "GROUP",
    "HAVING",
    "IF",
    "IN",
    "INDEX",
    "INSERT",
    "INTO",
    "IS",
    "ISOLATION",
    "KEY",
    "LEVEL",
    "LIKE",
    "LIMIT",
    "MAX",
    "MIN",
    "NOT",
    "NOW",
    "NULL",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "PATCH",
    "READ",
    "REPEATABLE",
    "ROLLBACK",
    "SELECT",
    "SERIALIZABLE",
    "SET",
    "SHOW",
    "SNAPSHOT",
    "SOFT",
    "SUM",
    "SYSTEM_TIME",
    "TABLE",
    "TABLES",
    "TO",
    "TRANSACTION",
    "TRUE",
    "UPSERT",
    "WHERE",
];

/// The meta commands, as completed after `\`.
pub const META_COMMANDS: &[&str] =
    &["\\help", "\\tables", "\\dt", "\\d", "\\timing", "\\format", "\\q", "\\quit"];

/// Rows sampled per table for field names.
const SAMPLE_ROWS: usize = 100;
/// Deepest nested path offered.
const PATH_DEPTH_MAX: usize = 3;

/// The shell's rustyline helper.
#[derive(Debug)]
pub struct ReplHelper<'db> {
    db: &'db Database,
    /// Tables as the session sees them (its open transaction included).
    tables: RefCell<Vec<String>>,
    /// Sampled field paths per table.
    fields: RefCell<BTreeMap<String, Vec<String>>>,
}

impl<'db> ReplHelper<'db> {
    /// A helper completing from `db`.
    pub fn new(db: &'db Database) -> Self {
        ReplHelper { db, tables: RefCell::new(db.tables()), fields: RefCell::new(BTreeMap::new()) }
    }

    /// After a statement ran: take the session's table list and forget sampled fields.
    pub fn refresh(&self, tables: Vec<String>) {
        *self.tables.borrow_mut() = tables;
        self.fields.borrow_mut().clear();
    }

    fn fields_of(&self, table: &str) -> Vec<String> {
        if let Some(f) = self.fields.borrow().get(table) {
            return f.clone();
        }
        let mut paths = BTreeSet::new();
        let mut seen = 0;
        if let Ok(snap) = self.db.read(AsOf::Now) {
            let _ = snap.scan(table, |doc| {
                if seen < SAMPLE_ROWS {
                    seen += 1;
                    collect_paths(doc, "", 1, &mut paths);
                }
                false
            });
        }
        let list: Vec<String> = paths.into_iter().collect();
        self.fields.borrow_mut().insert(table.to_string(), list.clone());
        list
    }

    /// Candidates for the word `word` in `line`.
    pub fn candidates(&self, line: &str, word: &str) -> Vec<String> {
        if word.starts_with('\\') {
            return META_COMMANDS
                .iter()
                .filter(|m| m.starts_with(word))
                .map(|m| m.to_string())
                .collect();
        }
        let tables = self.tables.borrow().clone();
        let mut out: BTreeSet<String> = BTreeSet::new();
        if after_table_keyword(line, word) {
            return tables.into_iter().filter(|t| t.starts_with(word)).collect();
        }
        let lower = word.chars().next().is_some_and(char::is_lowercase);
        for kw in KEYWORDS {
            if kw.starts_with(&word.to_ascii_uppercase()) && !word.is_empty() {
                out.insert(if lower { kw.to_ascii_lowercase() } else { kw.to_string() });
            }
        }
        for t in &tables {
            if t.starts_with(word) {
                out.insert(t.clone());
            }
        }
        let named: Vec<&String> = tables
            .iter()
            .filter(|t| {
                line.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == t.as_str())
            })
            .collect();
        let searched: Vec<&String> = if named.is_empty() { tables.iter().collect() } else { named };
        for t in searched {
            for f in self.fields_of(t) {
                if f.starts_with(word) {
                    out.insert(f);
                }
            }
        }
        out.into_iter().collect()
    }
}

/// Keywords that a table name follows.
const BEFORE_TABLE: &[&str] =
    &["FROM", "INTO", "TABLE", "PATCH", "DESCRIBE", "DRIFT", "SNAPSHOT", "COMPACT", "ON", "\\d"];

/// Whether the word being completed follows a keyword that a table name follows.
fn after_table_keyword(line: &str, word: &str) -> bool {
    let before = line.rfind(word).map_or(line, |at| line.get(..at).unwrap_or(line));
    before
        .split_whitespace()
        .next_back()
        .is_some_and(|w| BEFORE_TABLE.iter().any(|k| k.eq_ignore_ascii_case(w)))
}

fn collect_paths(value: &Value, prefix: &str, depth: usize, out: &mut BTreeSet<String>) {
    let Some(map) = value.as_map() else { return };
    for (name, inner) in map {
        let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
        if depth < PATH_DEPTH_MAX {
            collect_paths(inner, &path, depth + 1, out);
        }
        out.insert(path);
    }
}

/// Where the word being completed starts: after the last character that cannot be part of a
/// name, a field path or a meta command.
fn word_start(line: &str, pos: usize) -> usize {
    line.get(..pos)
        .unwrap_or(line)
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '\\')))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

impl Completer for ReplHelper<'_> {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = word_start(line, pos);
        let word = line.get(start..pos).unwrap_or_default();
        let pairs = self
            .candidates(line, word)
            .into_iter()
            .map(|c| Pair { display: c.clone(), replacement: c })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper<'_> {
    type Hint = String;
}
impl Highlighter for ReplHelper<'_> {}
impl Validator for ReplHelper<'_> {}
impl rustyline::Helper for ReplHelper<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use driftdb_core::TableSchema;
    use serde_json::json;

    #[test]
    fn completes_keywords_tables_fields_and_meta_commands() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        db.create_table("orders", TableSchema::new("id")).unwrap();
        db.create_table("owners", TableSchema::new("id")).unwrap();
        let mut tx = db.begin();
        tx.insert("orders", json!({"id": 1, "status": "new", "ship": {"city": "Oslo"}}).into())
            .unwrap();
        tx.commit().unwrap();
        let h = ReplHelper::new(&db);
        assert_eq!(h.candidates("SEL", "SEL"), ["SELECT"]);
        assert_eq!(h.candidates("sel", "sel"), ["select"]);
        assert_eq!(
            h.candidates("SELECT * FROM orders o", "o"),
            ["of", "offset", "on", "or", "order", "orders", "owners"]
        );
        assert_eq!(h.candidates("SELECT * FROM o", "o"), ["orders", "owners"]);
        assert_eq!(h.candidates("\\d ow", "ow"), ["owners"]);
        assert_eq!(h.candidates("SELECT st", "st"), ["status"]);
        assert_eq!(h.candidates("SELECT ship. FROM orders", "ship."), ["ship.city"]);
        assert_eq!(h.candidates("\\t", "\\t"), ["\\tables", "\\timing"]);
        assert_eq!(word_start("SELECT a.b", 10), 7);
        assert_eq!(word_start("x,(y", 4), 3);
        // A table made in the session's transaction is offered after a refresh.
        h.refresh(vec!["orders".into(), "owners".into(), "zebras".into()]);
        assert_eq!(h.candidates("FROM z", "z"), ["zebras"]);
    }
}
