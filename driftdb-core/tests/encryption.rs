//! Encryption at rest.
//!
//! - canary strings written through every path (WAL, plain and compressed segments, the
//!   checkpoint, derived files, `write_file`, a full and an incremental backup, a restore) are
//!   found in no file under the directories, while the database answers them back;
//! - a wrong key, a missing key, a key for a plaintext database and a malformed key fail at
//!   open with their own errors;
//! - records swapped, spliced from another file, copied from an older copy of the same file
//!   (truncated and regrown, rolled back), and forged records are detected with file and
//!   offset; bit flips in trusted data are corruption;
//! - after crashes that tear the tail of the WAL, the database recovers and no nonce appears
//!   twice in any file it ever wrote.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftdb_core::crypto::{ENCRYPTION_FILE, EncryptedFs, KeyCheck};
use driftdb_core::storage::fs::{Fs, OsFs};
use driftdb_core::storage::sim::SimFs;
use driftdb_core::{
    AsOf, Database, EncryptionKey, Error, Key, Options, Row, TableSchema, Value, backup,
};
use serde_json::json;

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap()
}

fn options(k: &EncryptionKey) -> Options {
    Options {
        encryption_key: Some(k.clone()),
        segment_size_bytes_max: 4096,
        wal_size_bytes_max: 8192,
        compaction_block_bytes: 1024,
        ..Options::default()
    }
}

fn canary(i: i64) -> String {
    format!("CANARY{i:04}XYZZY")
}

fn doc(i: i64) -> Value {
    json!({"id": i, "secretfieldname": canary(i), "nested": {"deep": format!("DEEP{i}PLUGH")}})
        .into()
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn assert_no_plaintext(dir: &Path, needles: &[String]) -> usize {
    let mut files = Vec::new();
    all_files(dir, &mut files);
    for file in &files {
        let data = std::fs::read(file).unwrap();
        // Nor in a file's name (table names are visible, the needles are not table names).
        let name = file.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        for needle in needles {
            let found = data.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "{needle} in plaintext in {}", file.display());
            assert!(!name.contains(needle.as_str()), "{needle} in the file name {name}");
        }
    }
    files.len()
}

fn write_rows(db: &Database, range: std::ops::Range<i64>) {
    for i in range {
        let mut tx = db.begin();
        tx.insert("people", doc(i)).unwrap();
        tx.insert("notes", json!({"id": i, "text": canary(i + 5000)}).into()).unwrap();
        tx.commit().unwrap();
        if i % 3 == 0 {
            let mut tx = db.begin();
            tx.patch("people", i, json!({"patched": canary(i + 9000)}).into()).unwrap();
            tx.commit().unwrap();
        }
    }
}

#[test]
fn no_user_data_in_any_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("db");
    let k = key(0x42);
    let db = Database::open_with(&root, options(&k)).unwrap();
    assert!(db.is_encrypted());
    let mut schema = TableSchema::new("id");
    schema.indexes.push(vec!["secretfieldname".into()]);
    db.create_table("people", schema).unwrap();
    db.create_table("notes", TableSchema::new("id")).unwrap();
    write_rows(&db, 0..60);
    db.compact_table("people").unwrap();
    // Snapshot files: a full one, then an incremental one after more writes.
    let full_snap = db.snapshot_table("people").unwrap();
    write_rows(&db, 60..80);
    let incr_snap = db.snapshot_table("people").unwrap();
    assert_eq!(incr_snap.base_seq, full_snap.seq, "{incr_snap:?}");
    db.write_file(Path::new("tables/people/stats.json"), canary(7777).as_bytes()).unwrap();
    let full = tmp.path().join("full");
    db.backup_to(&full).unwrap();
    // A backup inside the database directory (`BACKUP TO 'name'`) is rooted at its own copy
    // of ENCRYPTION.
    let inside = root.join("backups/inside");
    db.backup_to(&inside).unwrap();
    assert!(backup::verify_with_key(&inside, &k).unwrap().problems.is_empty());
    write_rows(&db, 80..90);
    let incremental = tmp.path().join("incr");
    db.backup_incremental(&incremental, &full).unwrap();
    write_rows(&db, 90..100);
    // Leave transactions in the WAL: scan while the database is open.
    let mut needles: Vec<String> = (0..100).map(canary).collect();
    needles.extend((0..100).map(|i| canary(i + 5000)));
    needles.extend((0..100).filter(|i| i % 3 == 0).map(|i| canary(i + 9000)));
    needles.extend(["secretfieldname".into(), "PLUGH".into(), canary(7777)]);
    needles.push(String::from_utf8_lossy(&k.to_hex().as_bytes()[..16]).into_owned());
    let files = assert_no_plaintext(tmp.path(), &needles);
    assert!(files > 20, "only {files} files");
    // The WAL holds transactions right now, and compressed segments exist.
    assert!(std::fs::metadata(root.join("wal/wal.log")).unwrap().len() > 200);
    let segs: Vec<String> = std::fs::read_dir(root.join("tables/people/segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(segs.iter().any(|n| n.starts_with("compacted-")), "{segs:?}");
    assert_eq!(
        db.read_file(Path::new("tables/people/stats.json")).unwrap().unwrap(),
        canary(7777).as_bytes()
    );
    let before = common::answers::answers(&db, &["people", "notes"], &keys());
    drop(db);

    let db = Database::open_with(&root, options(&k)).unwrap();
    let after = common::answers::answers(&db, &["people", "notes"], &keys());
    common::answers::assert_same(&before, &after, "reopened");
    // The index file, sealed and named by position, was written at close and used.
    assert!(root.join("tables/people/indexes/index-0.idx").exists());
    assert_eq!((db.index_files_loaded(), db.index_file_notes()), (1, Vec::new()));
    // The sealed snapshots are read back: a streamed scan starts from them and answers like
    // the in-memory state.
    assert_eq!(db.snapshots("people").unwrap().len(), 2);
    for seq in [incr_snap.seq, db.last_seq()] {
        let stream = db.scan_stream("people", AsOf::Seq(seq)).unwrap();
        assert_eq!(stream.snapshot_seq(), Some(incr_snap.seq), "seq {seq}");
        let streamed: Vec<Row> = stream.collect::<Result<_, _>>().unwrap();
        let in_memory = db.read(AsOf::Seq(seq)).unwrap().scan("people", |_| true).unwrap();
        assert_eq!(streamed, in_memory, "seq {seq}");
    }
    let (checked, damaged) = db.verify_snapshots().unwrap();
    assert_eq!((checked.len(), damaged.len()), (2, 0));
    drop(db);

    // Backups: verify needs the key; restore with it answers like the source.
    assert!(matches!(backup::verify(&incremental), Err(Error::KeyRequired { .. })));
    assert!(matches!(backup::verify_with_key(&incremental, &key(1)), Err(Error::WrongKey { .. })));
    let report = backup::verify_with_key(&incremental, &k).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let restored = tmp.path().join("restored");
    assert!(matches!(
        backup::restore(&incremental, &restored, None),
        Err(Error::KeyRequired { .. })
    ));
    let r = backup::restore_with_key(&incremental, &restored, Some(AsOf::Seq(100)), &k).unwrap();
    assert_eq!(r.seq, 100);
    let db = Database::open_with(&restored, options(&k)).unwrap();
    let want = Database::open_with(&root, options(&k)).unwrap();
    for t in ["people", "notes"] {
        assert_eq!(
            db.read(AsOf::Now).unwrap().scan(t, |_| true).unwrap(),
            want.read(AsOf::Seq(100)).unwrap().scan(t, |_| true).unwrap()
        );
    }
    drop((db, want));
    assert_no_plaintext(tmp.path(), &needles);
}

fn keys() -> Vec<Key> {
    (0..100).step_by(7).map(Key::Int).collect()
}

#[test]
fn wrong_missing_and_malformed_keys_fail_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("db");
    let k = key(0x11);
    let db = Database::open_with(&root, options(&k)).unwrap();
    db.create_table("t", TableSchema::new("id")).unwrap();
    db.close().unwrap();
    let wrong = Database::open_with(&root, options(&key(0x12)));
    assert!(matches!(wrong, Err(Error::WrongKey { .. })), "{wrong:?}");
    let missing = Database::open(&root);
    assert!(matches!(missing, Err(Error::KeyRequired { .. })), "{missing:?}");
    assert!(missing.unwrap_err().is_key_error());
    let plain_root = tmp.path().join("plain");
    Database::open(&plain_root).unwrap().close().unwrap();
    let not = Database::open_with(&plain_root, options(&k));
    assert!(matches!(not, Err(Error::NotEncrypted { .. })), "{not:?}");
    // A damaged key-check file: a clear error, not a panic.
    let enc = root.join(ENCRYPTION_FILE);
    let mut bytes = std::fs::read(&enc).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&enc, &bytes).unwrap();
    assert!(matches!(Database::open_with(&root, options(&k)), Err(Error::BadKey { .. })));
    assert!(matches!(EncryptionKey::from_hex("abc"), Err(Error::BadKey { .. })));
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, format!("{}\n", k.to_hex().as_str())).unwrap();
    assert_eq!(EncryptionKey::from_file(&key_file).unwrap(), k);
}

/// The physical records of a sealed file: `(offset, end)` of each.
fn records(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 36;
    while at + 12 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        out.push((at, at + 12 + len));
        at += 12 + len;
    }
    out
}

/// A closed encrypted database of a few tables on the real file system.
fn closed_db(tmp: &Path, k: &EncryptionKey) -> PathBuf {
    let root = tmp.join("db");
    let db = Database::open_with(&root, options(k)).unwrap();
    db.create_table("people", TableSchema::new("id")).unwrap();
    db.create_table("notes", TableSchema::new("id")).unwrap();
    write_rows(&db, 0..40);
    db.close().unwrap();
    root
}

fn seg(root: &Path, table: &str, n: u32) -> PathBuf {
    root.join(format!("tables/{table}/segments/{n:08}.seg"))
}

fn expect_corrupt(root: &Path, k: &EncryptionKey, file: &Path, offset: Option<u64>, what: &str) {
    match Database::open_with(root, options(k)) {
        Err(Error::Corrupt { file: f, offset: o, reason }) => {
            assert_eq!(f, file, "{what}: {reason}");
            if let Some(offset) = offset {
                assert_eq!(o, offset, "{what}: {reason}");
            }
        }
        other => panic!("{what}: expected corruption in {}, got {other:?}", file.display()),
    }
}

/// Damages the database at the path given; returns the file and offset to be reported.
type Damage = fn(&Path) -> (PathBuf, Option<u64>);

#[test]
fn moved_spliced_and_rolled_back_records_are_detected() {
    let k = key(0x21);
    let cases: Vec<(&str, Damage)> = vec![
        ("two records swapped", |root| {
            let path = seg(root, "people", 1);
            let data = std::fs::read(&path).unwrap();
            let r = records(&data);
            let (a, b) = (r[0], r[1]);
            let mut out = data[..a.0].to_vec();
            out.extend_from_slice(&data[b.0..b.1]);
            out.extend_from_slice(&data[a.0..a.1]);
            out.extend_from_slice(&data[b.1..]);
            std::fs::write(&path, out).unwrap();
            (path, Some(a.0 as u64))
        }),
        ("a record spliced from another table's segment", |root| {
            let path = seg(root, "people", 1);
            let other = std::fs::read(seg(root, "notes", 1)).unwrap();
            let mut data = std::fs::read(&path).unwrap();
            let (a, _) = (records(&data)[0], ());
            let o = records(&other)[0];
            let mut out = data[..a.0].to_vec();
            out.extend_from_slice(&other[o.0..o.1]);
            out.extend_from_slice(&data[a.1..]);
            data = out;
            std::fs::write(&path, data).unwrap();
            (path, Some(a.0 as u64))
        }),
        ("a whole file copied over another", |root| {
            let path = seg(root, "people", 1);
            std::fs::copy(seg(root, "notes", 1), &path).unwrap();
            (path, Some(36))
        }),
        ("a forged record (CRCs fixed up)", |root| {
            let path = seg(root, "notes", 1);
            let mut data = std::fs::read(&path).unwrap();
            let r = records(&data)[1];
            data[r.0 + 30] ^= 0x40;
            let crc = crc32fast::hash(&data[r.0 + 12..r.1]);
            data[r.0 + 8..r.0 + 12].copy_from_slice(&crc.to_le_bytes());
            std::fs::write(&path, data).unwrap();
            (path, Some(r.0 as u64))
        }),
        ("a bit flip inside a trusted record", |root| {
            let path = seg(root, "notes", 1);
            let mut data = std::fs::read(&path).unwrap();
            let r = records(&data)[1];
            data[r.0 + 40] ^= 0x01;
            std::fs::write(&path, data).unwrap();
            (path, None)
        }),
        ("a damaged sealed-file header", |root| {
            let path = root.join("CHECKPOINT");
            let mut data = std::fs::read(&path).unwrap();
            data[20] ^= 0x01;
            std::fs::write(&path, data).unwrap();
            (path, Some(0))
        }),
    ];
    for (what, damage) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let root = closed_db(tmp.path(), &k);
        let (file, offset) = damage(&root);
        expect_corrupt(&root, &k, &file, offset, what);
    }
}

#[test]
fn truncated_and_regrown_or_rolled_back_files_do_not_authenticate_old_records() {
    let k = key(0x31);
    let tmp = tempfile::tempdir().unwrap();
    let root = closed_db(tmp.path(), &k);
    // A copy of the checkpoint and of a segment as they are now.
    let cp_old = std::fs::read(root.join("CHECKPOINT")).unwrap();
    let db = Database::open_with(&root, options(&k)).unwrap();
    write_rows(&db, 40..50);
    db.close().unwrap();
    // Rolling the CHECKPOINT's record back into the new copy of the file: another salt.
    let cp_path = root.join("CHECKPOINT");
    let mut cp_new = std::fs::read(&cp_path).unwrap();
    let old_rec = records(&cp_old)[0];
    let new_rec = records(&cp_new)[0];
    cp_new.truncate(new_rec.0);
    cp_new.extend_from_slice(&cp_old[old_rec.0..old_rec.1]);
    std::fs::write(&cp_path, &cp_new).unwrap();
    expect_corrupt(&root, &k, &cp_path, Some(new_rec.0 as u64), "rolled-back checkpoint record");

    // Truncated and regrown: a cut (how recovery drops an untrusted segment tail or a torn
    // WAL tail) writes a new copy of the file under a new salt, so the cut records, spliced
    // back at their old offsets, fail.
    let tmp = tempfile::tempdir().unwrap();
    let root = closed_db(tmp.path(), &k);
    let kc = KeyCheck::decode(Path::new("E"), &std::fs::read(root.join(ENCRYPTION_FILE)).unwrap())
        .unwrap();
    let efs = EncryptedFs::new(Arc::new(OsFs), Arc::new(kc.sealer(&k)));
    let path = seg(&root, "people", 1);
    let before = std::fs::read(&path).unwrap();
    let logical = efs.read(&path).unwrap();
    let first = records(&before)[0];
    let first_len = first.1 - first.0 - 40;
    efs.truncate(&path, first_len as u64).unwrap();
    let mut f = efs.open_append(&path, false).unwrap();
    f.append(&logical[first_len..]).unwrap();
    f.sync().unwrap();
    drop(f);
    let after = std::fs::read(&path).unwrap();
    assert_ne!(before[16..32], after[16..32], "a cut file gets a new salt");
    assert_eq!(efs.read(&path).unwrap(), logical);
    Database::open_with(&root, options(&k)).unwrap().close().unwrap();
    let regrown = records(&after)[1];
    assert_eq!(regrown.0, first.1);
    let mut spliced = after[..regrown.0].to_vec();
    spliced.extend_from_slice(&before[first.1..]);
    std::fs::write(&path, spliced).unwrap();
    expect_corrupt(&root, &k, &path, Some(regrown.0 as u64), "old records after a cut");
}

/// Every nonce of every sealed file in `fs` under `root`.
fn nonces(fs: &SimFs, root: &Path, k: &EncryptionKey) -> Vec<[u8; 12]> {
    let kc =
        KeyCheck::decode(Path::new("E"), &fs.read(&root.join(ENCRYPTION_FILE)).unwrap()).unwrap();
    let efs = EncryptedFs::new(Arc::new(fs.clone()), Arc::new(kc.sealer(k)));
    let mut out = Vec::new();
    for path in fs.files() {
        let Some(identity) = efs.identity(&path).unwrap() else { continue };
        let data = fs.read(&path).unwrap();
        let opened = efs.sealer().open_file(&identity, &data).unwrap();
        out.extend(opened.nonces);
    }
    out
}

#[test]
fn torn_wal_tails_recover_and_nonces_never_repeat() {
    let k = key(0x51);
    let root = PathBuf::from("/db");
    let mut all_nonces: Vec<[u8; 12]> = Vec::new();
    let mut crashes = 0;
    for crash_at in [12u64, 15, 19, 23, 31] {
        let sim = SimFs::new();
        let opts = Options { fs: Arc::new(sim.clone()), ..options(&k) };
        let db = Database::open_with(&root, opts).unwrap();
        db.create_table("people", TableSchema::new("id")).unwrap();
        db.create_table("notes", TableSchema::new("id")).unwrap();
        sim.crash_at_sync(sim.sync_count() + crash_at);
        let mut acknowledged = 0;
        for i in 0..40 {
            let mut tx = db.begin();
            tx.insert("people", doc(i)).unwrap();
            if tx.commit().is_err() {
                break;
            }
            acknowledged = i + 1;
        }
        assert!(sim.has_crashed(), "crash point {crash_at} was not reached");
        crashes += 1;
        // A torn tail: the unsynced part of the WAL is garbage after the crash.
        let image = sim.crash_image();
        drop(db);
        let wal = root.join("wal/wal.log");
        let len = image.read(&wal).unwrap().len();
        let mut f = image.open_append(&wal, false).unwrap();
        f.append(&[0x5a; 77]).unwrap();
        f.sync().unwrap();
        drop(f);
        assert!(image.read(&wal).unwrap().len() > len);
        let opts = Options { fs: Arc::new(image.clone()), ..options(&k) };
        let db = Database::open_with(&root, opts.clone()).unwrap();
        let rows = db.read(AsOf::Now).unwrap().scan("people", |_| true).unwrap();
        assert!(rows.len() >= acknowledged as usize, "lost acknowledged rows");
        // Writes go on after recovery; nonces stay unique within and across the files.
        for i in 100..110 {
            let mut tx = db.begin();
            tx.insert("people", doc(i)).unwrap();
            tx.commit().unwrap();
        }
        drop(db);
        let db = Database::open_with(&root, opts).unwrap();
        assert_eq!(db.get("people", &Key::Int(105)).unwrap(), Some(doc(105)));
        let found = nonces(&image, &root, &k);
        assert!(found.len() > 10);
        all_nonces.extend(found);
        let unique: BTreeSet<_> = all_nonces.iter().collect();
        assert_eq!(unique.len(), all_nonces.len(), "a nonce repeats (crash at {crash_at})");
    }
    assert_eq!(crashes, 5);
}
