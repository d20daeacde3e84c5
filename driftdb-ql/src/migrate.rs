//! Versioned schema migrations: DriftQL files applied in order, each in one transaction.
//!
//! Layout of a migrations directory (by default `./migrations` for the CLI):
//!
//! ```text
//! migrations/
//!   pending/0001_create_orders.driftql   the migrations, NNNN_name.driftql (4+ digits)
//!   pending/0002_add_priority.driftql
//!   history.json                         derived: what has been applied, for people and tools
//! ```
//!
//! Rules:
//! - Files are applied in version order; each runs in ONE transaction together with the
//!   record of its application (a row of the table `_migrations`, key `NNNN_name`, holding the
//!   file's SHA-256). So a migration is applied exactly once and atomically: a crash leaves it
//!   either applied and recorded, or neither.
//! - The `_migrations` table is the source of truth; `history.json` is rewritten from it (via
//!   a temporary file, fsync and rename) after every `apply` and `status`.
//! - An applied migration whose file has changed since (another checksum) or has disappeared
//!   is an error for `apply`: the history would no longer describe the database. A pending
//!   migration numbered below the last applied one is an error too (out of order).
//! - A migration holds only statements that run in a transaction: no BEGIN / COMMIT /
//!   ROLLBACK, SNAPSHOT, COMPACT, BACKUP or ANALYZE.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use driftdb_core::{AsOf, Database, Key, Map, Value};
use sha2::{Digest, Sha256};

use crate::Result;
use crate::ast::Statement;
use crate::error::Error;
use crate::exec::Session;
use crate::parse::parse_script;

/// The table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "_migrations";

/// A migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// `NNNN_name`, the file name without `.driftql`.
    pub id: String,
    /// The number `NNNN`.
    pub version: u64,
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of the file, in hex.
    pub checksum: String,
}

/// A migration recorded as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `NNNN_name`.
    pub id: String,
    /// The number `NNNN`.
    pub version: u64,
    /// SHA-256 of the file when it was applied.
    pub checksum: String,
    /// The seq of the transaction that applied it.
    pub seq: u64,
}

/// Applied and pending migrations, and the problems that stop `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Applied migrations, in version order.
    pub applied: Vec<Applied>,
    /// Files not applied yet, in version order.
    pub pending: Vec<Migration>,
    /// Problems: changed or missing applied files, out-of-order or duplicate versions.
    pub problems: Vec<String>,
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Core(driftdb_core::Error::Io { path: path.to_owned(), source })
}

/// SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The migration files in `dir/pending`, in version order.
pub fn files(dir: &Path) -> Result<Vec<Migration>> {
    let pending = dir.join("pending");
    let entries = match std::fs::read_dir(&pending) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(&pending, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(&pending, e))?.path();
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".driftql"))
            .map(str::to_owned)
        else {
            continue;
        };
        let (digits, name) = id.split_once('_').unwrap_or((id.as_str(), ""));
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let version = digits.parse::<u64>().ok().filter(|_| digits.len() >= 4 && valid_name);
        let Some(version) = version else {
            return Err(Error::invalid(format!(
                "migration file {} must be named NNNN_name.driftql (4 or more digits, then \
                 letters, digits, '_' or '-')",
                path.display()
            )));
        };
        let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        out.push(Migration { id, version, path, checksum: sha256_hex(&bytes) });
    }
    out.sort_by(|a, b| a.version.cmp(&b.version).then(a.id.cmp(&b.id)));
    Ok(out)
}

fn applied(db: &Database) -> Result<Vec<Applied>> {
    let snapshot = db.read(AsOf::Now)?;
    if !snapshot.tables().iter().any(|t| t == MIGRATIONS_TABLE) {
        return Ok(Vec::new());
    }
    let mut out: Vec<Applied> = snapshot
        .scan(MIGRATIONS_TABLE, |_| true)?
        .into_iter()
        .map(|row| Applied {
            id: row.doc.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
            version: row.doc.get("version").and_then(Value::as_i64).unwrap_or(0).max(0) as u64,
            checksum: row
                .doc
                .get("checksum")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            seq: row.doc.get("seq").and_then(Value::as_i64).unwrap_or(0).max(0) as u64,
        })
        .collect();
    out.sort_by(|a, b| a.version.cmp(&b.version).then(a.id.cmp(&b.id)));
    // The seq a migration was applied at is the seq of its row's INSERT.
    for a in &mut out {
        if let Some(first) =
            snapshot.history(MIGRATIONS_TABLE, &Key::Str(a.id.as_str().into()))?.first()
        {
            a.seq = first.seq;
        }
    }
    Ok(out)
}

/// What is applied, what is pending, and what is wrong; rewrites `history.json`.
pub fn status(db: &Database, dir: &Path) -> Result<Status> {
    let files = files(dir)?;
    let applied = applied(db)?;
    let mut problems = Vec::new();
    for pair in files.windows(2) {
        if let [a, b] = pair
            && a.version == b.version
        {
            problems.push(format!("{} and {} have the same version {}", a.id, b.id, a.version));
        }
    }
    for a in &applied {
        match files.iter().find(|f| f.id == a.id) {
            None => problems.push(format!("applied migration {} has no file any more", a.id)),
            Some(f) if f.checksum != a.checksum => problems.push(format!(
                "applied migration {} has changed since it was applied (checksum {} was {}); \
                 write a new migration instead",
                a.id, f.checksum, a.checksum
            )),
            Some(_) => {}
        }
    }
    let last = applied.iter().map(|a| a.version).max();
    let pending: Vec<Migration> =
        files.into_iter().filter(|f| !applied.iter().any(|a| a.id == f.id)).collect();
    for p in &pending {
        if last.is_some_and(|last| p.version < last) {
            problems.push(format!(
                "pending migration {} is numbered below the last applied one ({}); renumber it",
                p.id,
                last.unwrap_or(0)
            ));
        }
    }
    write_history(db, dir, &applied)?;
    Ok(Status { applied, pending, problems })
}

/// Apply every pending migration in order, each in one transaction. Stops at the first that
/// fails (nothing of it is applied) and returns the error naming the file. Returns the
/// migrations applied by this call.
pub fn apply(db: &Database, dir: &Path) -> Result<Vec<Applied>> {
    let current = status(db, dir)?;
    if !current.problems.is_empty() {
        return Err(Error::invalid(format!(
            "migrations cannot run: {}",
            current.problems.join("; ")
        )));
    }
    let mut done = Vec::new();
    for migration in current.pending {
        done.push(apply_one(db, &migration)?);
    }
    let all = applied(db)?;
    write_history(db, dir, &all)?;
    Ok(done)
}

fn apply_one(db: &Database, migration: &Migration) -> Result<Applied> {
    let file = migration.path.display().to_string();
    let text =
        std::fs::read_to_string(&migration.path).map_err(|e| io_error(&migration.path, e))?;
    if sha256_hex(text.as_bytes()) != migration.checksum {
        return Err(Error::invalid(format!("{file} changed while migrations were running")));
    }
    let parsed = parse_script(&text).map_err(|e| Error::invalid(format!("{file}: {e}")))?;
    let mut session = Session::new(db);
    session.execute(&Statement::Begin { isolation: None })?;
    let fail = |e: Error, line: usize| -> Error {
        Error::invalid(format!("migration {file} failed at line {line}: {e}"))
    };
    if !db.tables().iter().any(|t| t == MIGRATIONS_TABLE) {
        let create = Statement::CreateTable {
            table: MIGRATIONS_TABLE.into(),
            primary_key: "id".into(),
            indexes: Vec::new(),
            unique: Vec::new(),
        };
        session.execute(&create).map_err(|e| fail(e, 0))?;
    }
    for p in &parsed {
        if matches!(
            p.statement,
            Statement::Begin { .. }
                | Statement::Commit
                | Statement::Rollback
                | Statement::Snapshot { .. }
                | Statement::Compact { .. }
                | Statement::Backup { .. }
                | Statement::Analyze { .. }
        ) {
            return Err(fail(
                Error::invalid(
                    "a migration runs in one transaction and cannot hold this statement",
                ),
                p.line,
            ));
        }
        session.execute(&p.statement).map_err(|e| fail(e, p.line))?;
    }
    let mut record = Map::new();
    record.insert("id".into(), Value::String(migration.id.as_str().into()));
    record
        .insert("version".into(), Value::Int(i64::try_from(migration.version).unwrap_or(i64::MAX)));
    record.insert("checksum".into(), Value::String(migration.checksum.as_str().into()));
    let insert = Statement::Insert {
        table: MIGRATIONS_TABLE.into(),
        documents: vec![Value::Map(record)],
        upsert: false,
    };
    session.execute(&insert).map_err(|e| fail(e, 0))?;
    let seq = match session.execute(&Statement::Commit)? {
        crate::Outcome::Done(done) => done.committed.map_or(0, |(seq, _)| seq),
        _ => 0,
    };
    Ok(Applied {
        id: migration.id.clone(),
        version: migration.version,
        checksum: migration.checksum.clone(),
        seq,
    })
}

/// Rewrite `dir/history.json` from the applied list: temporary file, fsync, rename, fsync of
/// the directory. Skipped when `dir` does not exist, and for an encrypted database, whose
/// files hold no plaintext (the `_migrations` table has the same history, sealed).
fn write_history(db: &Database, dir: &Path, applied: &[Applied]) -> Result<()> {
    if !dir.is_dir() || db.is_encrypted() {
        return Ok(());
    }
    let entries: Vec<serde_json::Value> = applied
        .iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "version": a.version,
                "checksum": a.checksum,
                "seq": a.seq,
                "applied_at": db.commit_time(a.seq).map(crate::format_unix_ms),
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({ "applied": entries }))
        .map_err(|e| Error::invalid(e.to_string()))?;
    let path = dir.join("history.json");
    let tmp = dir.join("history.json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    file.write_all(text.as_bytes()).map_err(|e| io_error(&tmp, e))?;
    file.write_all(b"\n").map_err(|e| io_error(&tmp, e))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))?;
    Ok(())
}
