//! Replays the fuzz corpus (`fuzz/corpus/frame_decode/`) and generated damaged files through
//! the frame decoder, the file checkers and the open's quick payload decoders: every input
//! must return, never panic.
//! `DRIFTDB_WRITE_SEED_CORPUS=1` writes the generated seeds into the corpus directory.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use driftdb_core::storage::{check_file, check_payload, frame};
use driftdb_core::{Database, TableSchema};
use serde_json::json;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/frame_decode")
}

/// Real files of a small database: a segment, a WAL with a batch, a checkpoint; then, after a
/// compaction, a compressed segment and a version-2 checkpoint; then a full and an incremental
/// snapshot.
fn seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    for i in 0..3 {
        let mut tx = db.begin();
        tx.insert("t", json!({"id": i, "tags": ["a", {"n": null}], "f": 1.5}).into()).unwrap();
        tx.commit().unwrap();
    }
    let mut tx = db.begin();
    tx.patch("t", 1, json!({"tags": null}).into()).unwrap();
    tx.soft_delete("t", 2).unwrap();
    tx.commit().unwrap();
    let mut wal = std::fs::read(dir.path().join("wal/wal.log")).unwrap();
    // Keep the batches, not the megabytes of preallocated zeros after them.
    while wal.last() == Some(&0) {
        wal.pop();
    }
    wal.extend_from_slice(&[0; 16]);
    drop(db);
    let seg = std::fs::read(dir.path().join("tables/t/segments/00000001.seg")).unwrap();
    let cp = std::fs::read(dir.path().join("CHECKPOINT")).unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.compact_table("t").unwrap();
    // A full snapshot, then an incremental one (a patch and a tombstone).
    let full = db.snapshot_table("t").unwrap();
    let mut tx = db.begin();
    tx.patch("t", 0, json!({"f": 2.5}).into()).unwrap();
    tx.soft_delete("t", 1).unwrap();
    tx.commit().unwrap();
    let incremental = db.snapshot_table("t").unwrap();
    assert_eq!(incremental.base_seq, full.seq);
    drop(db);
    let compacted = dir.path().join("tables/t/segments/compacted-00000001-00000001.seg");
    let compacted = std::fs::read(compacted).unwrap();
    let cp2 = std::fs::read(dir.path().join("CHECKPOINT")).unwrap();
    let full = std::fs::read(&full.path).unwrap();
    let incremental = std::fs::read(&incremental.path).unwrap();
    vec![wal, seg, cp, compacted, cp2, full, incremental]
}

fn exercise(data: &[u8]) {
    if let Ok(frame) = frame::decode(data, 1 << 20) {
        check_payload(frame.payload);
    }
    let _ = check_file(Path::new("input"), data);
    check_payload(data);
}

#[test]
fn seeds_are_valid_and_every_damaged_variant_returns() {
    let seeds = seeds();
    if std::env::var_os("DRIFTDB_WRITE_SEED_CORPUS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(corpus_dir().join(format!("seed-{i}")), s).unwrap();
        }
    }
    for seed in &seeds {
        assert!(check_file(Path::new("seed"), seed).is_ok());
        for i in 0..seed.len() {
            let mut damaged = seed.clone();
            damaged[i] ^= 0xff;
            exercise(&damaged);
            exercise(&seed[..i]);
        }
    }
}

#[test]
fn corpus_replays_without_panic() {
    let entries: Vec<_> = std::fs::read_dir(corpus_dir()).unwrap().collect();
    assert!(!entries.is_empty(), "the committed corpus is empty");
    for entry in entries {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        exercise(&data);
    }
}
