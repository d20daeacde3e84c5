//! `make demo`: embed the engine, write a small history, and travel through it.
//!
//! Run with `cargo run --release -p driftdb-core --example time_travel [DIR]`.

use std::error::Error;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use driftdb_core::{AsOf, Database, Key, Snapshot, TableSchema, Value};
use serde_json::json;

fn show(title: &str, snap: &Snapshot<'_>, table: &str) -> Result<(), Box<dyn Error>> {
    println!("\n== {title} (seq {}) ==", snap.seq());
    for row in snap.scan(table, |_| true)? {
        println!("  {:<10} {}", row.key.to_string(), row.doc);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("driftdb-demo-{}", std::process::id()))
    });
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let db = Database::open(&dir)?;
    println!("DriftDB demo database at {}", dir.display());

    db.create_table("customers", TableSchema::new("id"))?;
    db.create_table("orders", TableSchema::new("id"))?;

    let mut tx = db.begin();
    for (id, name) in [("c1", "Ada"), ("c2", "Grace"), ("c3", "Edsger")] {
        tx.insert("customers", json!({"id": id, "name": name, "tier": "basic"}).into())?;
    }
    for (id, customer, amount) in [(1, "c1", 120), (2, "c2", 80), (3, "c1", 35)] {
        let doc = json!({"id": id, "customer": customer, "amount": amount, "status": "pending"});
        tx.insert("orders", doc.into())?;
    }
    let loaded = tx.commit()?;
    println!("loaded 3 customers and 3 orders at seq {}", loaded.seq);
    sleep(Duration::from_millis(20));

    let mut tx = db.begin();
    tx.patch("orders", 1, json!({"status": "paid"}).into())?;
    tx.patch("orders", 2, json!({"status": "paid"}).into())?;
    let paid = tx.commit()?;
    sleep(Duration::from_millis(20));

    let mut tx = db.begin();
    tx.patch("orders", 1, json!({"status": "shipped", "carrier": "DHL"}).into())?;
    tx.patch("customers", "c1", json!({"tier": "gold"}).into())?;
    tx.soft_delete("customers", "c3")?;
    tx.commit()?;
    sleep(Duration::from_millis(20));

    let mut tx = db.begin();
    tx.patch("orders", 1, json!({"status": "delivered", "carrier": null}).into())?;
    tx.soft_delete("orders", 3)?;
    let last = tx.commit()?;

    show("orders now", &db.read(AsOf::Now)?, "orders")?;
    show("orders AS OF the load", &db.read(AsOf::Seq(loaded.seq))?, "orders")?;
    show("orders AS OF the payment's time", &db.read(AsOf::UnixMs(paid.unix_ms))?, "orders")?;
    show("customers now", &db.read(AsOf::Now)?, "customers")?;
    show("customers AS OF the load", &db.read(AsOf::Seq(loaded.seq))?, "customers")?;

    println!("\n== drift of order 1 ==");
    for e in db.read(AsOf::Now)?.history("orders", &Key::Int(1))? {
        let doc = e.document.map_or_else(|| "(deleted)".to_string(), |d| d.to_string());
        println!("  seq {:>2}  {:<11} {:<40} -> {}", e.seq, e.kind, e.payload.to_string(), doc);
    }

    let paid_then = db
        .read(AsOf::Seq(paid.seq))?
        .scan("orders", |d| d.get("status") == Some(&Value::String("paid".into())))?;
    println!("\norders with status \"paid\" AS OF seq {}: {}", paid.seq, paid_then.len());
    println!("last seq {}; closing and reopening to show the history is durable", last.seq);
    db.close()?;

    let db = Database::open(&dir)?;
    let back = db.read(AsOf::Seq(loaded.seq))?.get("orders", &Key::Int(1))?;
    println!("after reopen, order 1 AS OF seq {}: {}", loaded.seq, back.unwrap_or_default());
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
