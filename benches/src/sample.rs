//! The customer documents and patches of the benchmarks (commit, compaction, snapshots,
//! retention): about 100 bytes of JSON each, keyed `k<n>`.

use driftdb_core::Value;

/// Document `key`: `{"id":"k42","name":"customer-000042","amount":42,"active":true,"tags":[…]}`.
pub fn customer(key: u64) -> Value {
    customer_json(key).into()
}

/// [`customer`] as JSON (what SQLite stores as text).
pub fn customer_json(key: u64) -> serde_json::Value {
    serde_json::json!({
        "id": format!("k{key}"),
        "name": format!("customer-{key:06}"),
        "amount": key,
        "active": key.is_multiple_of(2),
        "tags": ["red", "green", "blue"],
    })
}

/// Patch `version` of document `key`: changes `amount` and `active`, sets `v`.
pub fn customer_patch(key: u64, version: u64) -> Value {
    serde_json::json!({"amount": key * 100 + version, "active": version.is_multiple_of(2), "v": version})
        .into()
}

/// Write `versions` versions of keys `0..keys` into `table` of `db`, one transaction per
/// version: the INSERT of every [`customer`], then [`customer_patch`]es.
pub fn write_versions(
    db: &driftdb_core::Database,
    table: &str,
    keys: u64,
    versions: u64,
) -> crate::Result<()> {
    for version in 0..versions {
        let mut tx = db.begin();
        for key in 0..keys {
            if version == 0 {
                tx.insert(table, customer(key))?;
            } else {
                tx.patch(table, format!("k{key}"), customer_patch(key, version))?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}
