//! `driftdb migrate -d DIR [--dir MIGRATIONS] [--status]`: apply pending migrations in order,
//! or list applied and pending ones. The rules (one transaction per migration, recorded in
//! the `_migrations` table, `history.json` derived, changed files refused) are
//! [`driftdb_ql::migrate`]'s.

use std::path::Path;

use driftdb_ql::format_unix_ms;
use driftdb_ql::migrate;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::output::{Printer, Report};

/// Run `migrate`.
pub fn run(
    dir: &Path,
    migrations: &Path,
    status_only: bool,
    printer: &mut Printer<impl std::io::Write>,
) -> CliResult {
    let db = super::open(dir)?;
    let before = migrate::status(&db, migrations)?;
    let applied_now = if status_only { Vec::new() } else { migrate::apply(&db, migrations)? };
    let after = migrate::status(&db, migrations)?;
    let mut rows = Vec::new();
    let mut entries = Vec::new();
    for a in &after.applied {
        let time = db.commit_time(a.seq).map(format_unix_ms);
        let state =
            if applied_now.iter().any(|n| n.id == a.id) { "applied now" } else { "applied" };
        rows.push(vec![
            Some(json!(a.id)),
            Some(json!(state)),
            Some(json!(a.seq)),
            time.clone().map(|t| json!(t)),
            Some(json!(a.checksum.get(..12).unwrap_or(&a.checksum))),
        ]);
        entries.push(
            json!({"id": a.id, "state": state, "seq": a.seq, "time": time, "checksum": a.checksum}),
        );
    }
    for p in &after.pending {
        rows.push(vec![
            Some(json!(p.id)),
            Some(json!("pending")),
            None,
            None,
            Some(json!(p.checksum.get(..12).unwrap_or(&p.checksum))),
        ]);
        entries.push(json!({"id": p.id, "state": "pending", "checksum": p.checksum}));
    }
    let mut notes = vec![format!(
        "{} applied ({} by this run), {} pending, from {}",
        after.applied.len(),
        applied_now.len(),
        after.pending.len(),
        migrations.display()
    )];
    notes.extend(before.problems.iter().map(|p| format!("problem: {p}")));
    let report = Report {
        json: json!({"migrations": entries, "applied_now": applied_now.len(), "problems": after.problems}),
        columns: ["migration", "state", "seq", "time", "checksum"].map(String::from).to_vec(),
        rows,
        notes,
    };
    db.close()?;
    printer.report(&report).map_err(|e| CliError::io("write", Path::new("standard output"), e))
}
