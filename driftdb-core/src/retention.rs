//! Retention: a per-table policy of how long the table keeps its full history, and the fold
//! that compaction applies under it.
//!
//! **Policy.** [`TableSchema::retention_ms`](crate::TableSchema::retention_ms), set by
//! `ALTER TABLE t SET RETENTION '90 days'` (a schema change event, so the policy itself is in
//! history). Setting a policy changes no data. Duration syntax ([`parse_retention`],
//! [`format_retention`]): a whole number, optional spaces, then a unit: `second(s)`,
//! `minute(s)`, `hour(s)`, `day(s)` or `week(s)`, case-insensitive; at least 1, and the
//! duration must fit in a `u64` of milliseconds.
//!
//! **Fold** (in [`crate::compaction`], which owns the steps, locks and fsync order). A
//! compaction of a table with a policy computes the horizon H ([`plan_fold`]): the last seq
//! committed at or before now minus the window, capped at the last seq of the files it
//! rewrites; it folds only when H is above the table's current horizon and the table is live
//! at H. The new compacted set then starts with a **base**, ordinary segment frames at seq H
//! with H's commit time: the table's schema at H as a CREATE, then one INSERT of the full
//! document per key live at H, in key order; then only the table's frames after H. Layout:
//! `docs/FORMAT.md`, "Retention folds". The checkpoint's compacted set records `horizon: H`.
//!
//! **Invariants.** Every read of the table at a seq >= H answers as before the fold; every read
//! before H fails with [`Error::BeforeRetention`] naming H (the check is in
//! `State::table` and `State::check_retained`); other tables answer the same at every seq.
//! The in-memory state is folded at the switch ([`crate::state::State::fold_table`]) to
//! exactly the shape recovery builds from the base, so nothing changes across a reopen.
//!
//! **Recovery.** The base replays like any frames: a CREATE at H (so the table's incarnation
//! seq becomes H) and INSERTs at H. Seqs at or below the highest horizon left with no event in
//! any table are installed empty with the commit time of the seq before (a folded seq's own
//! time is not kept: no read can tell but a time lookup, which then resolves to a seq with the
//! same answers, since no table has events there and the folded table refuses reads before
//! H). A crash anywhere in a folding compaction leaves the old set and checkpoint, or the new
//! ones: the base is written and durably named in step 2 like every compacted file, and the
//! rename of `CHECKPOINT` is the commit point.
//!
//! **Snapshots** of the table from before the fold (incarnation seq below H) are removed by
//! [`drop_snapshots`]: after the switch, and on open (a crash may come between). Backups copy
//! the compacted set, base included; a point-in-time restore before H fails with
//! [`Error::BeforeRetention`].

use std::sync::Arc;

use crate::db::Database;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::storage::frame::{self, EventType};

const UNITS: [(&str, u64); 5] = [
    ("week", 7 * 24 * 3_600_000),
    ("day", 24 * 3_600_000),
    ("hour", 3_600_000),
    ("minute", 60_000),
    ("second", 1000),
];

/// The retention window `text` names (`"90 days"`, `"1 week"`, `"36hours"`), in milliseconds.
///
/// Errors: [`Error::InvalidInput`] naming what is wrong (no number, zero, an unknown unit, too
/// long).
pub fn parse_retention(text: &str) -> Result<u64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad = |why: &str| {
        Error::invalid(format!(
            "retention {text:?} {why}: write a whole number and a unit (seconds, minutes, \
             hours, days or weeks), like '90 days'"
        ))
    };
    if number.is_empty() {
        return Err(bad("does not start with a number"));
    }
    let n: u64 = number.parse().map_err(|_| bad("has a number too large"))?;
    if n == 0 {
        return Err(bad("is zero"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let singular = unit.strip_suffix('s').unwrap_or(&unit);
    let Some((_, ms)) = UNITS.iter().find(|(name, _)| *name == singular) else {
        return Err(bad("has no known unit"));
    };
    n.checked_mul(*ms).ok_or_else(|| bad("is too long"))
}

/// The canonical text of a retention window: the largest unit that divides it exactly
/// (`7776000000` -> `"90 days"`, `604800000` -> `"1 week"`). Windows that are not whole
/// seconds (only possible through the API) are given in seconds with a fraction.
pub fn format_retention(ms: u64) -> String {
    for (name, unit) in UNITS {
        if ms >= unit && ms.is_multiple_of(unit) {
            let n = ms / unit;
            let plural = if n == 1 { "" } else { "s" };
            return format!("{n} {name}{plural}");
        }
    }
    format!("{} seconds", ms as f64 / 1000.0)
}

/// The base a folding compaction writes first into the new compacted set.
pub(crate) struct Base {
    /// The horizon H.
    pub horizon: u64,
    /// Whole segment frames, all at seq H with H's commit time: the table's schema at H as a
    /// CREATE, then one INSERT of the full document per key live at H, in key order.
    pub frames: Vec<Vec<u8>>,
}

/// Decide whether this compaction of `table` folds, and build the base if it does. `H` is the
/// last seq committed at or before `now_ms` minus the window of the table's current policy,
/// capped at the last seq of the sealed inputs (`last_input_seq`, only computed when needed);
/// a fold happens only when `H` is above the current horizon and the table is live at `H`.
pub(crate) fn plan_fold(
    db: &Database,
    old_horizon: u64,
    now_ms: u64,
    table: &str,
    last_input_seq: impl FnOnce() -> Result<u64>,
) -> Result<Option<Base>> {
    let candidate = {
        let state = db.state.read();
        let Some(t) = state.tables.get(table) else { return Ok(None) };
        let policy = t.schemas.last().and_then(|s| s.schema.as_ref()).and_then(|s| s.retention_ms);
        let Some(window) = policy else { return Ok(None) };
        state.seq_at_time(now_ms.saturating_sub(window))
    };
    if candidate <= old_horizon {
        return Ok(None);
    }
    let horizon = candidate.min(last_input_seq()?);
    if horizon <= old_horizon {
        return Ok(None);
    }
    let state = db.state.read();
    let Some(t) = state.tables.get(table) else { return Ok(None) };
    let Some(schema) = t.schema_at(horizon).and_then(|s| s.schema.clone()) else {
        return Ok(None);
    };
    let unix_ms = state.commit_time(horizon).unwrap_or(0);
    let name: Arc<str> = Arc::from(table);
    let mut frames = Vec::with_capacity(1);
    let body = Arc::new(crate::value::to_value(&*schema)?);
    let create = Event::new(name.clone(), EventType::CreateTable, None, body)?;
    let mut out = Vec::new();
    frame::encode(&mut out, horizon, unix_ms, EventType::CreateTable, &create.encoded);
    frames.push(out);
    for row in t.live_at(horizon) {
        let (key, doc) = row?;
        let insert = Event::new(name.clone(), EventType::Insert, Some(key.clone()), doc)?;
        let mut out = Vec::new();
        frame::encode(&mut out, horizon, unix_ms, EventType::Insert, &insert.encoded);
        frames.push(out);
    }
    Ok(Some(Base { horizon, frames }))
}

/// After a fold: remove the table's snapshots taken before it. Their rows are of the old
/// incarnation seq, which the base replaced by H, so no read could use them any more (and the
/// ones before H are of history that is gone). Snapshots are derived: removing one never
/// changes an answer.
pub(crate) fn drop_snapshots(db: &Database, table: &str) -> Result<()> {
    let fs = db.fs.as_ref();
    let horizon = db.state.read().tables.get(table).map_or(0, |t| t.horizon);
    let dir = crate::snapshot::snapshots_dir(&db.root, table);
    let mut removed = false;
    for (seq, path) in crate::snapshot::list(fs, &db.root, table)? {
        let stale = seq < horizon
            || crate::storage::snapshot::SnapshotFile::open(fs, &path)
                .is_ok_and(|f| f.header.created_seq < horizon);
        if stale {
            fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_singular_and_plural() {
        assert_eq!(parse_retention("90 days").unwrap(), 90 * 86_400_000);
        assert_eq!(parse_retention("1 day").unwrap(), 86_400_000);
        assert_eq!(parse_retention("1 seconds").unwrap(), 1000);
        assert_eq!(parse_retention("2 second").unwrap(), 2000);
        assert_eq!(parse_retention("5 MINUTES").unwrap(), 300_000);
        assert_eq!(parse_retention("36hours").unwrap(), 36 * 3_600_000);
        assert_eq!(parse_retention("  3 Weeks ").unwrap(), 21 * 86_400_000);
    }

    #[test]
    fn refuses_bad_durations() {
        for bad in ["", "days", "0 days", "-1 days", "1.5 days", "10", "10 fortnights", "1 d"] {
            let err = parse_retention(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err:?}");
        }
        let huge = format!("{} weeks", u64::MAX / 1000);
        assert!(parse_retention(&huge).unwrap_err().to_string().contains("too long"));
        assert!(parse_retention("99999999999999999999999 days").is_err());
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        assert_eq!(format_retention(90 * 86_400_000), "90 days");
        assert_eq!(format_retention(604_800_000), "1 week");
        assert_eq!(format_retention(1000), "1 second");
        assert_eq!(format_retention(90_000), "90 seconds");
        assert_eq!(format_retention(1500), "1.5 seconds");
        for text in ["90 days", "1 week", "12 hours", "7 minutes", "1 second"] {
            assert_eq!(format_retention(parse_retention(text).unwrap()), text);
        }
    }
}
