//! Everything a database answers about its history, collected so that two moments (before and
//! after a compaction, before and after a reopen) or two databases can be compared: per seq
//! the commit time, the tables and their schemas, a full scan of every table and the document
//! of every key of a key domain; the history of every key (read at the last seq: a history
//! `AS OF` an earlier seq is the part of it up to that seq, and also read at seq 0, where the
//! tables do not exist yet); and the seq each commit time resolves to.
#![allow(clippy::unwrap_used)]

use std::fmt::Display;

use driftdb_core::{AsOf, Database, HistoryEntry, Key, Row, TableSchema, Value};

/// What reads at one seq return. Errors are kept as their messages.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqAnswers {
    pub seq: u64,
    pub unix_ms: Option<u64>,
    pub tables: Vec<String>,
    pub schemas: Vec<(String, Result<TableSchema, String>)>,
    pub scans: Vec<(String, Result<Vec<Row>, String>)>,
    pub gets: Vec<(String, Key, Result<Option<Value>, String>)>,
    pub histories: Vec<(String, Key, Result<Vec<HistoryEntry>, String>)>,
}

/// What a database answers about its whole history.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub last_seq: u64,
    pub seqs: Vec<SeqAnswers>,
    /// `(t, seq)`: reads `AS OF` commit time `t` (and `t - 1`) see `seq`.
    pub times: Vec<(u64, u64)>,
}

fn text<T>(r: driftdb_core::Result<T>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// Read everything `db` answers about `tables` and `keys`, at every seq.
pub fn answers(db: &Database, tables: &[&str], keys: &[Key]) -> Answers {
    let last_seq = db.last_seq();
    let mut seqs = Vec::new();
    let mut times = Vec::new();
    for seq in 0..=last_seq {
        let snap = db.read(AsOf::Seq(seq)).unwrap();
        let mut a = SeqAnswers {
            seq,
            unix_ms: db.commit_time(seq),
            tables: snap.tables(),
            schemas: Vec::new(),
            scans: Vec::new(),
            gets: Vec::new(),
            histories: Vec::new(),
        };
        for &table in tables {
            a.schemas.push((table.to_owned(), text(snap.schema(table))));
            a.scans.push((table.to_owned(), text(snap.scan(table, |_| true))));
            for key in keys {
                a.gets.push((table.to_owned(), key.clone(), text(snap.get(table, key))));
                if seq == 0 || seq == last_seq {
                    let history = text(snap.history(table, key));
                    a.histories.push((table.to_owned(), key.clone(), history));
                }
            }
        }
        if let Some(t) = a.unix_ms {
            for probe in [t.saturating_sub(1), t] {
                times.push((probe, db.resolve(AsOf::UnixMs(probe)).unwrap()));
            }
        }
        seqs.push(a);
    }
    Answers { last_seq, seqs, times }
}

impl Answers {
    /// The same answers without commit times (to compare databases that committed the same
    /// transactions at different times).
    pub fn timeless(&self) -> Answers {
        let mut out = self.clone();
        out.times.clear();
        for a in &mut out.seqs {
            a.unix_ms = None;
            for (_, _, history) in &mut a.histories {
                if let Ok(entries) = history {
                    for e in entries {
                        e.unix_ms = 0;
                    }
                }
            }
        }
        out
    }

    /// What a database holding only seqs `0..=seq` of this history answers.
    pub fn up_to(&self, seq: u64) -> Answers {
        let mut out = self.clone();
        out.seqs.truncate(seq as usize + 1);
        // Histories as read at `seq`: those read at the end, cut at `seq`; or, for a table
        // not created yet at `seq`, the refusal its schema read got.
        let created = |table: &str| {
            out.seqs.iter().any(|a| a.schemas.iter().any(|(t, s)| t == table && s.is_ok()))
        };
        let mut histories = self.seqs.last().map(|a| a.histories.clone()).unwrap_or_default();
        for (table, _, history) in &mut histories {
            let at_seq = out.seqs.last().and_then(|a| a.schemas.iter().find(|(t, _)| t == table));
            match (created(table), at_seq) {
                (false, Some((_, Err(refusal)))) => *history = Err(refusal.clone()),
                _ => {
                    if let Ok(entries) = history {
                        entries.retain(|e| e.seq <= seq);
                    }
                }
            }
        }
        if let Some(last) = out.seqs.last_mut().filter(|a| a.seq > 0 && a.histories.is_empty()) {
            last.histories = histories;
        }
        // Two probes per committed seq, in seq order; a later seq with the same commit time
        // does not exist in the shorter history.
        out.times.truncate(2 * seq as usize);
        for (_, s) in &mut out.times {
            *s = (*s).min(seq);
        }
        out.last_seq = seq;
        out
    }
}

/// Assert that two sets of answers are equal, naming the first seq that differs.
pub fn assert_same(want: &Answers, got: &Answers, ctx: impl Display) {
    assert_eq!(want.last_seq, got.last_seq, "{ctx}: last seq");
    for (w, g) in want.seqs.iter().zip(&got.seqs) {
        assert_eq!(w, g, "{ctx}: answers at seq {}", w.seq);
    }
    assert_eq!(want.times, got.times, "{ctx}: reads AS OF commit times");
}
