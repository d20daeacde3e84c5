//! The executor: a [`Session`] runs statements over a `driftdb-core` [`Database`].
//!
//! Outside a transaction every write statement commits on its own (autocommit) and every read
//! sees the last committed state, or the `AS OF` point it names. Between `BEGIN` and `COMMIT`
//! the statements share one core [`Transaction`]: reads without `AS OF` see the transaction's
//! view (its own writes included), and writes are pending until `COMMIT`.
//!
//! A statement inside a transaction is all or nothing: if it fails before it has buffered any
//! event (an unknown table, a syntax error, a missing key on a one-key write) the transaction
//! goes on as if it had not been run; if it fails after buffering part of its events (the
//! third document of a bulk INSERT is a duplicate) the transaction is marked failed, every
//! later statement is refused, and `COMMIT` or `ROLLBACK` ends it without applying anything.

mod ddl;
pub(crate) mod eval;
mod query;
mod show;
mod source;
mod stats;
mod write;

use driftdb_core::{AsOf, Database, IsolationLevel, Key, Transaction};

use crate::Result;
use crate::ast::{Literal, Statement};
use crate::error::Error;
use crate::outcome::{Done, Outcome};
use source::Source;

/// A sequence of statements over one database, with at most one open transaction.
///
/// ```
/// use driftdb_core::Database;
/// use driftdb_ql::{Outcome, Session, parse_statement};
/// let dir = tempfile::tempdir().unwrap();
/// let db = Database::open(dir.path()).unwrap();
/// let mut session = Session::new(&db);
/// for text in [
///     "CREATE TABLE users (pk=id)",
///     r#"INSERT INTO users {"id": "u1", "status": "active"}"#,
/// ] {
///     session.execute(&parse_statement(text).unwrap()).unwrap();
/// }
/// let out = session.execute(&parse_statement("SELECT id FROM users WHERE status='active'").unwrap());
/// let Ok(Outcome::Rows(rows)) = out else { panic!() };
/// assert_eq!(rows.rows.len(), 1);
/// ```
#[derive(Debug)]
pub struct Session<'db> {
    db: &'db Database,
    open: Option<Open<'db>>,
}

#[derive(Debug)]
struct Open<'db> {
    txn: Transaction<'db>,
    /// Set when a statement failed after buffering part of its events.
    failed: Option<String>,
}

impl<'db> Session<'db> {
    /// A session with no open transaction.
    pub fn new(db: &'db Database) -> Self {
        Session { db, open: None }
    }

    /// The database.
    pub fn database(&self) -> &'db Database {
        self.db
    }

    /// Whether a transaction is open (`BEGIN` without `COMMIT` or `ROLLBACK` yet).
    pub fn in_transaction(&self) -> bool {
        self.open.is_some()
    }

    /// The isolation level of the open transaction.
    pub fn isolation(&self) -> Option<IsolationLevel> {
        self.open.as_ref().map(|o| o.txn.isolation())
    }

    /// Names of the tables as the session sees them (inside a transaction: its view).
    pub fn tables(&self) -> Vec<String> {
        self.source(None).map(|s| s.tables()).unwrap_or_default()
    }

    /// Run one statement.
    pub fn execute(&mut self, statement: &Statement) -> Result<Outcome> {
        if let Some(Open { failed: Some(reason), .. }) = &self.open
            && !matches!(statement, Statement::Commit | Statement::Rollback)
        {
            return Err(Error::TransactionState {
                message: format!(
                    "the transaction failed on an earlier statement ({reason}); \
                     ROLLBACK to end it"
                ),
            });
        }
        match statement {
            Statement::Select(select) => {
                query::select(&self.source(select.as_of)?, select, self.db).map(Outcome::Rows)
            }
            Statement::Explain(select) => {
                query::explain(&self.source(select.as_of)?, select, self.db).map(Outcome::Rows)
            }
            Statement::ShowTables { as_of } => {
                show::tables(&self.source(*as_of)?).map(Outcome::Rows)
            }
            Statement::Describe { table, as_of } => {
                show::describe(&self.source(*as_of)?, table).map(Outcome::Rows)
            }
            Statement::ShowDrift { table, key, range } => {
                show::drift(self.db, table, &key_of(key)?, *range).map(Outcome::Rows)
            }
            Statement::Analyze { table } => {
                self.no_transaction("ANALYZE TABLE")?;
                stats::analyze(self.db, table).map(Outcome::Rows)
            }
            Statement::Begin { isolation } => self.begin(*isolation),
            Statement::Commit => self.commit(),
            Statement::Rollback => self.rollback(),
            Statement::Snapshot { table } => {
                self.no_transaction("SNAPSHOT")?;
                let snap = self.db.snapshot_table(table)?;
                let n = |x: u64| driftdb_core::Value::Int(seq_value(x));
                let s = |x: String| driftdb_core::Value::String(x.into());
                Ok(Outcome::Done(Done {
                    statement: "SNAPSHOT",
                    message: format!(
                        "{} snapshot of {table} at seq {}: {} {}, {} bytes",
                        snap.kind,
                        snap.seq,
                        snap.entries,
                        if snap.entries == 1 { "entry" } else { "entries" },
                        snap.bytes
                    ),
                    committed: None,
                    details: vec![
                        ("table".into(), s(table.clone())),
                        ("seq".into(), n(snap.seq)),
                        ("kind".into(), s(snap.kind.name().into())),
                        ("base_seq".into(), n(snap.base_seq)),
                        ("entries".into(), n(snap.entries)),
                        ("bytes".into(), n(snap.bytes)),
                        // Relative to the database directory, like the names in FORMAT.md.
                        (
                            "path".into(),
                            s(snap
                                .path
                                .strip_prefix(self.db.path())
                                .unwrap_or(&snap.path)
                                .display()
                                .to_string()),
                        ),
                    ],
                }))
            }
            Statement::Compact { table } => {
                self.no_transaction("COMPACT")?;
                let report = self.db.compact_table(table)?;
                let n = |x: u64| driftdb_core::Value::Int(seq_value(x));
                let kept = match report.folded_to {
                    None => "every one kept".to_owned(),
                    Some(h) => {
                        format!("history before seq {h} folded into a base by the retention policy")
                    }
                };
                let mut details = vec![
                    ("table".into(), driftdb_core::Value::String(table.as_str().into())),
                    ("segments_before".into(), n(report.segments_before as u64)),
                    ("bytes_before".into(), n(report.bytes_before)),
                    ("segments_after".into(), n(report.segments_after as u64)),
                    ("bytes_after".into(), n(report.bytes_after)),
                    ("events".into(), n(report.events)),
                    (
                        "duration_ms".into(),
                        driftdb_core::Value::Float(report.duration.as_secs_f64() * 1000.0),
                    ),
                ];
                if let Some(h) = report.folded_to {
                    details.push(("folded_to".into(), n(h)));
                }
                Ok(Outcome::Done(Done {
                    statement: "COMPACT",
                    message: if report.segments_before == 0 {
                        format!("nothing to compact in {table}")
                    } else {
                        format!(
                            "compacted {table}: {} segment(s), {} bytes -> {} compressed \
                             segment(s), {} bytes ({} events, {kept})",
                            report.segments_before,
                            report.bytes_before,
                            report.segments_after,
                            report.bytes_after,
                            report.events
                        )
                    },
                    committed: None,
                    details,
                }))
            }
            Statement::Backup { path } => {
                self.no_transaction("BACKUP")?;
                // A relative path names a directory under the database's `backups/`.
                let given = std::path::Path::new(path);
                let dir = if given.is_relative() {
                    self.db.path().join("backups").join(given)
                } else {
                    given.to_path_buf()
                };
                let report = self.db.backup_to(&dir)?;
                let n = |x: u64| driftdb_core::Value::Int(seq_value(x));
                Ok(Outcome::Done(Done {
                    statement: "BACKUP",
                    message: format!(
                        "backup at seq {} in '{path}': {} files, {} bytes",
                        report.seq, report.files, report.bytes
                    ),
                    committed: None,
                    details: vec![
                        ("path".into(), driftdb_core::Value::String(path.as_str().into())),
                        ("seq".into(), n(report.seq)),
                        ("files".into(), n(report.files as u64)),
                        ("bytes".into(), n(report.bytes)),
                    ],
                }))
            }
            Statement::CreateTable { .. }
            | Statement::DropTable { .. }
            | Statement::CreateIndex { .. }
            | Statement::DropIndex { .. }
            | Statement::AlterTable { .. } => self.ddl(statement),
            Statement::Insert { .. } | Statement::Patch { .. } | Statement::SoftDelete { .. } => {
                let name = write::statement_name(statement);
                let (affected, committed) = self.write(|txn| write::apply(txn, statement))?;
                Ok(Outcome::Write(crate::outcome::WriteSummary {
                    statement: name,
                    affected,
                    committed,
                }))
            }
        }
    }

    fn source(&self, as_of: Option<AsOf>) -> Result<Source<'_, 'db>> {
        Ok(match (as_of, &self.open) {
            (None, Some(open)) => Source::Txn(&open.txn),
            (None, None) => Source::Snapshot(self.db.read(AsOf::Now)?),
            (Some(as_of), _) => Source::Snapshot(self.db.read(as_of)?),
        })
    }

    fn no_transaction(&self, what: &str) -> Result<()> {
        if self.open.is_some() {
            return Err(Error::TransactionState {
                message: format!(
                    "{what} cannot run inside a transaction; COMMIT or ROLLBACK first"
                ),
            });
        }
        Ok(())
    }

    /// Run `f` in the open transaction, or in a transaction of its own that commits.
    /// Returns the keys `f` wrote and, when it committed, the seq and time.
    fn write(
        &mut self,
        f: impl FnOnce(&mut Transaction<'db>) -> Result<Vec<Key>>,
    ) -> Result<(Vec<Key>, Option<Committed>)> {
        match &mut self.open {
            Some(open) => {
                let before = open.txn.len();
                match f(&mut open.txn) {
                    Ok(keys) => Ok((keys, None)),
                    Err(e) => {
                        if open.txn.len() != before {
                            open.failed = Some(e.message());
                        }
                        Err(e)
                    }
                }
            }
            None => {
                let mut txn = self.db.begin();
                let keys = f(&mut txn)?;
                let info = txn.commit()?;
                Ok((keys, Some((info.seq, info.unix_ms))))
            }
        }
    }

    fn ddl(&mut self, statement: &Statement) -> Result<Outcome> {
        let mut plan = None;
        let (_, committed) = self.write(|txn| {
            plan = Some(ddl::apply(txn, statement)?);
            Ok(Vec::new())
        })?;
        let (name, message, details) = plan.unwrap_or_default();
        Ok(Outcome::Done(Done { statement: name, message, committed, details }))
    }

    fn begin(&mut self, isolation: Option<IsolationLevel>) -> Result<Outcome> {
        if self.open.is_some() {
            return Err(Error::TransactionState {
                message: "a transaction is already open; COMMIT or ROLLBACK it first".into(),
            });
        }
        let level = isolation.unwrap_or_default();
        let txn = self.db.begin_with(level);
        let message =
            format!("transaction begun at seq {} ({})", txn.read_seq(), level_name(level));
        let details = vec![
            ("read_seq".to_owned(), driftdb_core::Value::Int(seq_value(txn.read_seq()))),
            ("isolation".to_owned(), driftdb_core::Value::String(level_name(level).into())),
        ];
        self.open = Some(Open { txn, failed: None });
        Ok(Outcome::Done(Done { statement: "BEGIN", message, committed: None, details }))
    }

    fn commit(&mut self) -> Result<Outcome> {
        let Some(open) = self.open.take() else {
            return Err(Error::TransactionState {
                message: "no transaction is open; BEGIN starts one".into(),
            });
        };
        if let Some(reason) = open.failed {
            return Err(Error::TransactionState {
                message: format!(
                    "the transaction was rolled back: it failed on an earlier statement ({reason})"
                ),
            });
        }
        let events = open.txn.len();
        let info = open.txn.commit()?;
        let message = if events == 0 {
            "nothing to commit".to_owned()
        } else {
            format!("committed {events} event(s) at seq {}", info.seq)
        };
        Ok(Outcome::Done(Done {
            statement: "COMMIT",
            message,
            committed: Some((info.seq, info.unix_ms)),
            details: vec![("events".into(), driftdb_core::Value::Int(seq_value(events as u64)))],
        }))
    }

    fn rollback(&mut self) -> Result<Outcome> {
        let Some(open) = self.open.take() else {
            return Err(Error::TransactionState {
                message: "no transaction is open; BEGIN starts one".into(),
            });
        };
        let events = open.txn.len();
        open.txn.rollback();
        Ok(Outcome::Done(Done {
            statement: "ROLLBACK",
            message: format!("rolled back {events} event(s)"),
            committed: None,
            details: vec![("events".into(), driftdb_core::Value::Int(seq_value(events as u64)))],
        }))
    }
}

/// The seq and commit time (Unix ms) of a committed transaction.
type Committed = (u64, u64);

/// A seq or count as a document integer (they never exceed i64 in practice; saturate).
pub(crate) fn seq_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The DriftQL name of an isolation level.
pub fn level_name(level: IsolationLevel) -> &'static str {
    match level {
        IsolationLevel::ReadCommitted => "READ COMMITTED",
        IsolationLevel::RepeatableRead => "REPEATABLE READ",
        IsolationLevel::Serializable => "SERIALIZABLE",
    }
}

/// A `KEY` literal as a primary key.
pub(crate) fn key_of(literal: &Literal) -> Result<Key> {
    match literal {
        Literal::String(s) => Ok(Key::Str(s.as_str().into())),
        Literal::Int(i) => Ok(Key::Int(*i)),
        other => Err(Error::type_mismatch(format!(
            "a primary key is a string or an integer, not {}",
            eval::describe(&eval::literal_value(other))
        ))),
    }
}
