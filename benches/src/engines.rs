//! The two engines opened on one built history, and the reads the benchmarks time: each
//! workload has a DriftDB function and a SQLite function that return the same answer (checked
//! by [`Engines::cross_check`] before anything is timed).
//!
//! What each side returns is what its user gets: DriftDB hands out owned [`Value`] documents;
//! SQLite hands out the stored JSON text (`String`), not parsed.

use std::collections::BTreeMap;

use driftdb_core::{AsOf, Database, EncodedRow, Key, Row, SharedRow, Value};
use rusqlite::Connection;
use serde_json::Value as Json;

use crate::fixture::{Built, open_sqlite};
use crate::history::{INDEXED_FIELD, Shape, TABLE, key_name, mix};
use crate::{Error, Result};

/// Point read of the current state.
const SQL_CURRENT_GET: &str = "SELECT doc FROM current WHERE id = ?1";
/// Point read AS OF a seq: the last version of the key that began at or before the seq, if it
/// still held then.
const SQL_VERSIONS_GET: &str = "SELECT doc FROM versions \
     WHERE key = ?1 AND valid_from_seq <= ?2 AND valid_to_seq > ?2 \
     ORDER BY valid_from_seq DESC LIMIT 1";
/// Scan of the current state.
const SQL_CURRENT_SCAN: &str = "SELECT id, doc FROM current";
/// Scan AS OF a seq.
const SQL_VERSIONS_SCAN: &str =
    "SELECT key, doc FROM versions WHERE valid_from_seq <= ?1 AND valid_to_seq > ?1";
/// Scan AS OF a seq, with SQLite told not to use an index (a plain pass over the table).
const SQL_VERSIONS_SCAN_NOT_INDEXED: &str = "SELECT key, doc FROM versions NOT INDEXED \
     WHERE valid_from_seq <= ?1 AND valid_to_seq > ?1";
/// Indexed equality now.
const SQL_CURRENT_LOOKUP: &str = "SELECT id, doc FROM current WHERE bucket = ?1";
/// Indexed equality AS OF a seq.
const SQL_VERSIONS_LOOKUP: &str = "SELECT key, doc FROM versions \
     WHERE bucket = ?1 AND valid_from_seq <= ?2 AND valid_to_seq > ?2";

/// Both engines open on one history.
#[derive(Debug)]
pub struct Engines {
    /// The DriftDB database.
    pub db: Database,
    /// A SQLite connection (WAL mode).
    pub sqlite: Connection,
    /// The history's shape.
    pub shape: Shape,
}

fn seq_param(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| Error::setup("seq out of range"))
}

fn bucket_param(bucket: u64) -> Result<i64> {
    i64::try_from(bucket).map_err(|_| Error::setup("bucket out of range"))
}

impl Engines {
    /// Open both databases of `built`.
    pub fn open(built: &Built) -> Result<Engines> {
        let db = Database::open(built.driftdb_dir())?;
        let sqlite = open_sqlite(&built.sqlite_file())?;
        if db.last_seq() != built.shape.last_seq() {
            return Err(Error::setup(format!(
                "the DriftDB history ends at seq {}, its shape at {}",
                db.last_seq(),
                built.shape.last_seq()
            )));
        }
        Ok(Engines { db, sqlite, shape: built.shape })
    }

    /// Close DriftDB (its checkpoint) and SQLite.
    pub fn close(self) -> Result<()> {
        self.db.close()?;
        self.sqlite.close().map_err(|(_, e)| Error::Sqlite(e))
    }

    /// The `i`-th key of a pseudo-random sequence over all keys.
    pub fn nth_key(&self, i: u64) -> u64 {
        mix(i) % self.shape.keys
    }

    /// The `i`-th bucket of a pseudo-random sequence over all buckets.
    pub fn nth_bucket(&self, i: u64) -> u64 {
        mix(i ^ 0x5bd1_e995) % self.shape.buckets()
    }

    /// DriftDB: the document of `key` at `as_of`.
    pub fn driftdb_get(&self, as_of: AsOf, key: &Key) -> Result<Option<Value>> {
        Ok(self.db.read(as_of)?.get(TABLE, key)?)
    }

    /// SQLite: the current document of `key`.
    pub fn sqlite_current_get(&self, key: &str) -> Result<Option<String>> {
        let mut stmt = self.sqlite.prepare_cached(SQL_CURRENT_GET)?;
        let mut rows = stmt.query([key])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// SQLite: the document of `key` at `seq`, from the versions table.
    pub fn sqlite_versions_get(&self, key: &str, seq: u64) -> Result<Option<String>> {
        let mut stmt = self.sqlite.prepare_cached(SQL_VERSIONS_GET)?;
        let mut rows = stmt.query((key, seq_param(seq)?))?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// DriftDB: every live row at `as_of`.
    pub fn driftdb_scan(&self, as_of: AsOf) -> Result<Vec<Row>> {
        Ok(self.db.read(as_of)?.scan(TABLE, |_| true)?)
    }

    /// DriftDB: every live row at `as_of`, its document shared rather than copied.
    pub fn driftdb_scan_shared(&self, as_of: AsOf) -> Result<Vec<SharedRow>> {
        Ok(self.db.read(as_of)?.scan_shared(TABLE, |_| true)?)
    }

    /// DriftDB: every live row at `as_of`, its document as msgpack bytes (as SQLite's scans
    /// return theirs as JSON text).
    pub fn driftdb_scan_encoded(&self, as_of: AsOf) -> Result<Vec<EncodedRow>> {
        Ok(self.db.read(as_of)?.scan_encoded(TABLE)?)
    }

    fn sqlite_rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(String, String)>> {
        let mut stmt = self.sqlite.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// SQLite: every row of the current table.
    pub fn sqlite_current_scan(&self) -> Result<Vec<(String, String)>> {
        self.sqlite_rows(SQL_CURRENT_SCAN, [])
    }

    /// SQLite: every row live at `seq`, from the versions table.
    pub fn sqlite_versions_scan(&self, seq: u64) -> Result<Vec<(String, String)>> {
        self.sqlite_rows(SQL_VERSIONS_SCAN, [seq_param(seq)?])
    }

    /// SQLite: every row live at `seq`, from the versions table read from end to end
    /// (`NOT INDEXED`), whatever plan the planner would pick.
    pub fn sqlite_versions_scan_not_indexed(&self, seq: u64) -> Result<Vec<(String, String)>> {
        self.sqlite_rows(SQL_VERSIONS_SCAN_NOT_INDEXED, [seq_param(seq)?])
    }

    /// SQLite's query plan of every query it runs here (`EXPLAIN QUERY PLAN`), as
    /// `(query, plan)`; the plans depend on the statistics `ANALYZE` gathered at build time.
    pub fn sqlite_plans(&self) -> Result<Vec<(&'static str, String)>> {
        let mid = seq_param(self.shape.mid_seq())?;
        let queries: [(&'static str, Vec<rusqlite::types::Value>); 7] = [
            (SQL_CURRENT_GET, vec!["k1".to_owned().into()]),
            (SQL_VERSIONS_GET, vec!["k0".to_owned().into(), mid.into()]),
            (SQL_CURRENT_SCAN, vec![]),
            (SQL_VERSIONS_SCAN, vec![mid.into()]),
            (SQL_VERSIONS_SCAN_NOT_INDEXED, vec![mid.into()]),
            (SQL_CURRENT_LOOKUP, vec![1_i64.into()]),
            (SQL_VERSIONS_LOOKUP, vec![1_i64.into(), mid.into()]),
        ];
        let mut plans = Vec::new();
        for (sql, params) in queries {
            let mut stmt = self.sqlite.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let steps =
                stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))?;
            let steps = steps.collect::<rusqlite::Result<Vec<_>>>()?;
            plans.push((sql, steps.join("; ")));
        }
        Ok(plans)
    }

    /// DriftDB: the rows whose indexed field equals `bucket` at `as_of`, through the index.
    pub fn driftdb_lookup(&self, as_of: AsOf, bucket: u64) -> Result<Vec<Row>> {
        let value = Value::Int(bucket_param(bucket)?);
        self.db
            .read(as_of)?
            .lookup(TABLE, INDEXED_FIELD, &value)?
            .ok_or_else(|| Error::setup(format!("DriftDB has no index on {INDEXED_FIELD}")))
    }

    /// SQLite: the current rows whose indexed field equals `bucket`.
    pub fn sqlite_current_lookup(&self, bucket: u64) -> Result<Vec<(String, String)>> {
        self.sqlite_rows(SQL_CURRENT_LOOKUP, [bucket_param(bucket)?])
    }

    /// SQLite: the rows whose indexed field equals `bucket` at `seq`, from the versions table.
    pub fn sqlite_versions_lookup(&self, bucket: u64, seq: u64) -> Result<Vec<(String, String)>> {
        self.sqlite_rows(SQL_VERSIONS_LOOKUP, (bucket_param(bucket)?, seq_param(seq)?))
    }

    /// Check that both engines give the same answers for every workload, at now, the middle
    /// seq and the old seq: scans in full, point reads and lookups on samples.
    pub fn cross_check(&self, samples: u64) -> Result<()> {
        let last = self.shape.last_seq();
        for seq in [last, self.shape.mid_seq(), self.shape.old_seq()] {
            let drift = rows_json(self.driftdb_scan(AsOf::Seq(seq))?);
            let encoded = self.driftdb_scan_encoded(AsOf::Seq(seq))?;
            let encoded = encoded
                .into_iter()
                .map(|r| Ok(Row { key: r.key, doc: Value::from_msgpack(&r.doc)? }))
                .collect::<Result<Vec<Row>>>()?;
            same(&format!("encoded scan at seq {seq}"), &drift, &rows_json(encoded))?;
            let sqlite = if seq == last {
                self.sqlite_current_scan()?
            } else {
                self.sqlite_versions_scan(seq)?
            };
            same(&format!("scan at seq {seq}"), &drift, &text_json(sqlite)?)?;
            let plain = text_json(self.sqlite_versions_scan_not_indexed(seq)?)?;
            same(&format!("scan at seq {seq} (NOT INDEXED)"), &drift, &plain)?;
            for i in 0..samples {
                let bucket = self.nth_bucket(i);
                let drift = rows_json(self.driftdb_lookup(AsOf::Seq(seq), bucket)?);
                let sqlite = if seq == last {
                    self.sqlite_current_lookup(bucket)?
                } else {
                    self.sqlite_versions_lookup(bucket, seq)?
                };
                let sqlite = text_json(sqlite)?;
                same(&format!("lookup of bucket {bucket} at seq {seq}"), &drift, &sqlite)?;
                let key = key_name(if i == 0 { 0 } else { self.nth_key(i) });
                let drift = self.driftdb_get(AsOf::Seq(seq), &Key::from(key.as_str()))?;
                let sqlite = if seq == last {
                    self.sqlite_current_get(&key)?
                } else {
                    self.sqlite_versions_get(&key, seq)?
                };
                let drift = drift.as_ref().map(Json::from);
                let sqlite = sqlite.map(|t| parse(&t)).transpose()?;
                if drift != sqlite {
                    return Err(Error::Mismatch {
                        what: format!(
                            "get {key} at seq {seq}: DriftDB {drift:?}, SQLite {sqlite:?}"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

fn parse(text: &str) -> Result<Json> {
    serde_json::from_str(text)
        .map_err(|e| Error::Mismatch { what: format!("SQLite returned invalid JSON: {e}") })
}

fn rows_json(rows: Vec<Row>) -> BTreeMap<String, Json> {
    rows.into_iter().map(|r| (r.key.to_string(), Json::from(&r.doc))).collect()
}

fn text_json(rows: Vec<(String, String)>) -> Result<BTreeMap<String, Json>> {
    rows.into_iter().map(|(key, doc)| Ok((Json::String(key).to_string(), parse(&doc)?))).collect()
}

fn same(what: &str, drift: &BTreeMap<String, Json>, sqlite: &BTreeMap<String, Json>) -> Result<()> {
    if drift == sqlite {
        return Ok(());
    }
    let differing = drift.iter().find(|(k, v)| sqlite.get(*k) != Some(*v)).map(|(k, _)| k.clone());
    Err(Error::Mismatch {
        what: format!(
            "{what}: DriftDB has {} rows, SQLite {}; first difference at {differing:?}",
            drift.len(),
            sqlite.len()
        ),
    })
}
