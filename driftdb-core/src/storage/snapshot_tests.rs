//! Tests of the snapshot file format: round trips, every single-byte flip, truncation.

use super::*;
use crate::storage::sim::SimFs;

fn header(kind: SnapshotKind) -> SnapshotHeader {
    let base_seq = if kind == SnapshotKind::Full { 0 } else { 40 };
    SnapshotHeader { table: "orders".into(), seq: 77, kind, base_seq, created_seq: 3 }
}

fn doc(i: i64, pad: usize) -> Value {
    let json = serde_json::json!({"id": i, "name": format!("n{i}"), "pad": "x".repeat(pad)});
    Value::from(json)
}

/// Write a snapshot of `n` keys (every 5th a tombstone when incremental) and return the
/// file's bytes and the entries.
fn build(fs: &SimFs, kind: SnapshotKind, n: i64, pad: usize) -> (PathBuf, Vec<Entry>) {
    let dir = Path::new("/snap");
    fs.create_dir(dir).unwrap();
    let mut w = SnapshotWriter::create(fs, dir, &header(kind), 2048).unwrap();
    let mut entries = Vec::new();
    for i in 0..n {
        let d = (kind == SnapshotKind::Full || i % 5 != 0).then(|| doc(i, pad));
        w.push(&Key::Int(i), d.as_ref()).unwrap();
        entries.push((Key::Int(i), d));
    }
    let (path, count, bytes) = w.finish().unwrap();
    assert_eq!(count, n as u64);
    assert_eq!(bytes, fs.file_len(&path).unwrap());
    assert!(!fs.exists(&dir.join("00000077.snap.tmp")));
    (path, entries)
}

fn read_all(fs: &dyn Fs, path: &Path) -> Result<Vec<Entry>> {
    let file = SnapshotFile::open(fs, path)?;
    file.verify(fs)?;
    let mut d = new_decompressor(path)?;
    let mut out: Vec<Entry> = Vec::new();
    for i in 0..file.blocks.len() {
        let after = out.last().map(|(k, _)| k.clone());
        out.extend(file.block(fs, i, after.as_ref(), &mut d)?);
    }
    Ok(out)
}

#[test]
fn names() {
    assert_eq!(snapshot_name(42), "00000042.snap");
    assert_eq!(parse_snapshot_name("00000042.snap"), Some(42));
    assert_eq!(parse_snapshot_name(&snapshot_name(123_456_789_012)), Some(123_456_789_012));
    for bad in ["0000042.snap", "00000000.snap", "000000042.snap", "00000042.seg", "x.snap"] {
        assert_eq!(parse_snapshot_name(bad), None, "{bad}");
    }
    assert_eq!(parse_snapshot_tmp_name("00000042.snap.tmp"), Some(42));
    assert_eq!(parse_snapshot_tmp_name("00000042.snap"), None);
}

#[test]
fn round_trip_full_incremental_and_empty() {
    for (kind, n) in
        [(SnapshotKind::Full, 5000), (SnapshotKind::Incremental, 300), (SnapshotKind::Full, 0)]
    {
        let fs = SimFs::new();
        let (path, entries) = build(&fs, kind, n, 40);
        let file = SnapshotFile::open(&fs, &path).unwrap();
        assert_eq!(file.header, header(kind));
        assert_eq!(file.entries, n as u64);
        if n == 5000 {
            assert!(file.blocks.len() >= 30, "{}", file.blocks.len());
        }
        assert_eq!(read_all(&fs, &path).unwrap(), entries);
    }
}

#[test]
fn every_single_byte_flip_is_detected() {
    let fs = SimFs::new();
    let (path, entries) = build(&fs, SnapshotKind::Incremental, 400, 30);
    let good = fs.read(&path).unwrap();
    let file = SnapshotFile::open(&fs, &path).unwrap();
    assert!(file.blocks.len() >= 2);
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x04;
        let f = SimFs::new();
        f.create_dir(Path::new("/snap")).unwrap();
        let mut w = f.open_append(&path, true).unwrap();
        w.append(&bad).unwrap();
        assert!(check_bytes(&path, &bad).is_err(), "flip at byte {i} not detected in memory");
        let err = read_all(&f, &path).expect_err(&format!("flip at byte {i} not detected"));
        assert!(
            matches!(err, Error::Corrupt { ref file, .. } if file == &path),
            "byte {i}: {err:?}"
        );
    }
    assert_eq!(read_all(&fs, &path).unwrap(), entries);
}

#[test]
fn truncation_is_detected() {
    let fs = SimFs::new();
    let (path, _) = build(&fs, SnapshotKind::Full, 2000, 30);
    let good = fs.read(&path).unwrap();
    let cuts = [0, 5, 30, 60, good.len() / 2, good.len() - 41, good.len() - 40, good.len() - 1];
    for cut in cuts {
        let f = SimFs::new();
        f.create_dir(Path::new("/snap")).unwrap();
        let mut w = f.open_append(&path, true).unwrap();
        w.append(&good[..cut]).unwrap();
        assert!(read_all(&f, &path).is_err(), "cut at {cut}");
    }
}

#[test]
fn out_of_order_keys_are_refused_by_the_writer() {
    let fs = SimFs::new();
    fs.create_dir(Path::new("/snap")).unwrap();
    let mut w =
        SnapshotWriter::create(&fs, Path::new("/snap"), &header(SnapshotKind::Full), 2048).unwrap();
    w.push(&Key::Int(2), Some(&doc(2, 0))).unwrap();
    assert!(w.push(&Key::Int(2), Some(&doc(2, 0))).is_err());
    assert!(w.push(&Key::Int(1), Some(&doc(1, 0))).is_err());
    w.abandon();
    assert!(!fs.exists(Path::new("/snap/00000077.snap.tmp")));
}

proptest::proptest! {
    /// Any bytes after the magic, and any damage to a real snapshot (a run of bytes
    /// overwritten, the file cut or extended), give an answer or an error, never a panic.
    #[test]
    fn checking_arbitrary_bytes_never_panics(
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        at in 0usize..2000,
        cut in proptest::option::of(0usize..2000),
    ) {
        let mut forged = SNAPSHOT_MAGIC.to_vec();
        forged.extend_from_slice(&noise);
        let _ = check_bytes(Path::new("f"), &forged);
        let fs = SimFs::new();
        let (path, _) = build(&fs, SnapshotKind::Incremental, 60, 10);
        let mut data = fs.read(&path).unwrap();
        let at = at % data.len();
        for (i, b) in noise.iter().take(16).enumerate() {
            if let Some(slot) = data.get_mut(at + i) {
                *slot = *b;
            }
        }
        if let Some(cut) = cut {
            data.truncate(cut.min(data.len()));
            data.extend_from_slice(&noise);
        }
        let _ = check_bytes(&path, &data);
    }
}
