//! Key rotation: `crypto::rekey` re-seals every file under a new key, and a power cut at any
//! of its sync points leaves a database that opens with exactly the key the docs name: the
//! old key until the `REKEY` journal is durable, the new key from then on, answering the same
//! as before the rotation.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::answers::{Answers, answers, assert_same};
use driftdb_core::crypto::{ENCRYPTION_FILE, KeyCheck, REKEY_FILE, rekey};
use driftdb_core::storage::fs::Fs;
use driftdb_core::storage::sim::SimFs;
use driftdb_core::{Database, EncryptionKey, Error, Key, Options, TableSchema};
use serde_json::json;

const TABLES: [&str; 2] = ["a", "b"];

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap()
}

fn root() -> PathBuf {
    PathBuf::from("/db")
}

fn options(fs: &SimFs, k: &EncryptionKey) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        encryption_key: Some(k.clone()),
        segment_size_bytes_max: 2048,
        compaction_block_bytes: 512,
        ..Options::default()
    }
}

fn keys() -> Vec<Key> {
    (0..8).map(Key::Int).collect()
}

/// A closed encrypted database with two tables, one compacted; and what it answers.
fn build(old: &EncryptionKey) -> (SimFs, Answers) {
    let sim = SimFs::new();
    let db = Database::open_with(root(), options(&sim, old)).unwrap();
    for t in TABLES {
        db.create_table(t, TableSchema::new("id")).unwrap();
    }
    for i in 0..30i64 {
        let mut tx = db.begin();
        let t = TABLES[(i % 2) as usize];
        let k = i % 8;
        if tx.get(t, &Key::Int(k)).unwrap().is_some() {
            tx.patch(t, k, json!({"v": i, "pad": "y".repeat(60)}).into()).unwrap();
        } else {
            tx.insert(t, json!({"id": k, "v": i, "pad": "x".repeat(60)}).into()).unwrap();
        }
        tx.commit().unwrap();
        if i == 15 {
            db.compact_table("a").unwrap();
        }
        if i == 20 || i == 26 {
            db.snapshot_table("b").unwrap(); // a full snapshot, then an incremental one
        }
    }
    let want = answers(&db, &TABLES, &keys());
    db.close().unwrap();
    (sim.crash_image(), want)
}

fn key_id(fs: &SimFs) -> u32 {
    KeyCheck::decode(Path::new("E"), &fs.read(&root().join(ENCRYPTION_FILE)).unwrap())
        .unwrap()
        .key_id
}

#[test]
fn rekey_reseals_everything_and_only_the_new_key_opens() {
    let (old, new) = (key(1), key(2));
    let (sim, want) = build(&old);
    let before: Vec<(PathBuf, Vec<u8>)> =
        sim.files().into_iter().map(|p| (p.clone(), sim.read(&p).unwrap())).collect();
    let report = rekey(Arc::new(sim.clone()), &root(), &old, &new).unwrap();
    assert_eq!(report.key_id, 2);
    assert!(report.files >= 6, "{report:?}");
    assert_eq!(key_id(&sim), 2);
    assert!(!sim.exists(&root().join(REKEY_FILE)));
    assert!(!sim.exists(&root().join("rekey.tmp")));
    // Every sealed file changed (new key id and salt in its header).
    for (path, bytes) in &before {
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "LOCK" || name == ENCRYPTION_FILE {
            continue;
        }
        let now = sim.read(path).unwrap();
        assert_ne!(&now[..32], &bytes[..32], "{} was not re-sealed", path.display());
    }
    let wrong = Database::open_with(root(), options(&sim, &old));
    assert!(matches!(wrong, Err(Error::WrongKey { .. })), "{wrong:?}");
    let db = Database::open_with(root(), options(&sim, &new)).unwrap();
    assert_same(&want, &answers(&db, &TABLES, &keys()), "after rekey");
    // The re-sealed snapshot files read back under the new key.
    let (checked, damaged) = db.verify_snapshots().unwrap();
    assert_eq!((checked.len(), damaged.len()), (2, 0), "{damaged:?}");
    let stream = db.scan_stream("b", driftdb_core::AsOf::Now).unwrap();
    assert!(stream.snapshot_seq().is_some());
    let streamed: Vec<_> = stream.collect::<Result<_, _>>().unwrap();
    assert_eq!(streamed, db.read(driftdb_core::AsOf::Now).unwrap().scan("b", |_| true).unwrap());
    db.close().unwrap();
    // The same key twice, or the wrong old key: refused, nothing changed.
    assert!(rekey(Arc::new(sim.clone()), &root(), &new, &new).is_err());
    let e = rekey(Arc::new(sim.clone()), &root(), &old, &key(3)).unwrap_err();
    assert!(matches!(e, Error::WrongKey { .. }), "{e:?}");
    assert_eq!(key_id(&sim), 2);
}

#[test]
fn a_crash_at_any_point_of_a_rekey_leaves_one_key_that_opens() {
    let (old, new) = (key(1), key(2));
    let (base, want) = build(&old);
    let total = {
        let sim = base.crash_image();
        rekey(Arc::new(sim.clone()), &root(), &old, &new).unwrap();
        sim.sync_count()
    };
    assert!(total > 10, "{total} sync points");
    let (mut opened_old, mut opened_new) = (0, 0);
    for k in 1..=total {
        let sim = base.crash_image();
        sim.crash_at_sync(k);
        let result = rekey(Arc::new(sim.clone()), &root(), &old, &new);
        assert!(result.is_err(), "crash point {k} of {total} was not reached");
        let image = sim.crash_image();
        // The documented rule: the new key once REKEY is durable (or ENCRYPTION moved).
        let switched = image.exists(&root().join(REKEY_FILE)) || key_id(&image) == 2;
        let (right, wrong) = if switched { (&new, &old) } else { (&old, &new) };
        let refused = Database::open_with(root(), options(&image.crash_image(), wrong));
        assert!(
            matches!(refused, Err(Error::WrongKey { .. })),
            "crash point {k}: the other key gives {refused:?}"
        );
        let db = Database::open_with(root(), options(&image, right))
            .unwrap_or_else(|e| panic!("crash point {k} (switched: {switched}): {e}"));
        assert_same(&want, &answers(&db, &TABLES, &keys()), format!("crash point {k}"));
        db.close().unwrap();
        // Open left it clean: no journal, no staging directory; and it opens again.
        assert!(!image.exists(&root().join(REKEY_FILE)));
        assert!(!image.exists(&root().join("rekey.tmp")));
        let db = Database::open_with(root(), options(&image, right)).unwrap();
        db.close().unwrap();
        if switched {
            opened_new += 1;
        } else {
            opened_old += 1;
            // A rekey run again after the crash completes.
            rekey(Arc::new(image.clone()), &root(), &old, &new).unwrap();
            let db = Database::open_with(root(), options(&image, &new)).unwrap();
            assert_same(&want, &answers(&db, &TABLES, &keys()), format!("rerun after {k}"));
        }
    }
    assert!(opened_old > 0 && opened_new > 0, "old {opened_old}, new {opened_new}");
}
