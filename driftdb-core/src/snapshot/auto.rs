//! Automatic snapshots: every K events of a table.
//!
//! After a commit is durable (and before `commit` returns), the committing thread adds the
//! transaction's events to each table's counter. A table whose counter reached its threshold
//! — `TableSchema::snapshot_every` when set (0: never), else `Options::snapshot_every_events`
//! (0: never) — gets a snapshot, taken by that thread with no engine lock held: the writer
//! lock was released before the commit waited for its fsync, so other commits go on. When
//! another thread is taking a snapshot, this one does not wait; the counter stays at or past
//! the threshold and the next commit tries again. A failed automatic snapshot never fails the
//! commit (which is durable already): the error is kept for `Database::auto_snapshot_error`,
//! and the counter keeps counting, so a later commit retries.

use std::sync::Arc;

use crate::db::Database;
use crate::event::Event;

/// How many events of `events` go to each table, in order of first appearance.
pub(crate) fn events_per_table(events: &[Event]) -> Vec<(Arc<str>, u64)> {
    let mut out: Vec<(Arc<str>, u64)> = Vec::new();
    for event in events {
        match out.iter_mut().find(|(t, _)| *t == event.table) {
            Some((_, n)) => *n += 1,
            None => out.push((event.table.clone(), 1)),
        }
    }
    out
}

impl Database {
    /// Count a durable commit's events per table and take the snapshots that came due.
    pub(crate) fn after_commit(&self, events_per_table: &[(Arc<str>, u64)]) {
        let thresholds: Vec<u64> =
            events_per_table.iter().map(|(table, _)| self.snapshot_every(table)).collect();
        let due: Vec<String> = {
            let mut counters = self.snapshots.counters.lock();
            let mut due = Vec::new();
            for ((table, n), every) in events_per_table.iter().zip(thresholds) {
                let count = counters.entry(table.to_string()).or_default();
                *count += n;
                if every > 0 && *count >= every {
                    due.push(table.to_string());
                }
            }
            due
        };
        for table in due {
            let Some(_one_at_a_time) = self.snapshots.take.try_lock() else { return };
            // The table may have been dropped meanwhile: nothing to snapshot then.
            let live = self.state.read().table(&table, self.last_seq()).is_ok();
            if !live {
                self.snapshots.counters.lock().insert(table, 0);
                continue;
            }
            if let Err(e) = self.take_snapshot(&table) {
                *self.snapshots.auto_error.lock() =
                    Some(format!("automatic snapshot of `{table}` failed: {e}"));
            }
        }
    }

    /// The automatic snapshot threshold of `table` (0: off).
    fn snapshot_every(&self, table: &str) -> u64 {
        let state = self.state.read();
        let per_table = state
            .tables
            .get(table)
            .and_then(|t| t.schemas.last())
            .and_then(|s| s.schema.as_ref())
            .and_then(|s| s.snapshot_every);
        per_table.unwrap_or(self.options.snapshot_every_events)
    }
}
