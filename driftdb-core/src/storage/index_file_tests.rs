use std::path::Path;

use super::*;
use crate::value::Value;

fn sample() -> FieldIndex {
    let mut index = FieldIndex::new(vec!["a".into(), "b".into()]);
    let docs = [
        serde_json::json!({"a": {"b": "x"}}),
        serde_json::json!({"a": {"b": 2}}),
        serde_json::json!({"a": {"b": 2.5}}),
        serde_json::json!({"a": {"b": [1, "é"]}}),
        serde_json::json!({"a": {"b": true}}),
    ];
    let docs: Vec<Value> = docs.into_iter().map(Value::from).collect();
    for k in 0..40i64 {
        let key = if k % 3 == 0 { Key::Int(k - 20) } else { Key::from(format!("k{k}")) };
        let mut old: Option<&Value> = None;
        for (i, doc) in docs.iter().enumerate().skip(k as usize % 5) {
            let seq = 1 + k as u64 + 50 * i as u64;
            index.on_version(&key, old, Some(doc), seq);
            old = Some(doc);
        }
    }
    index
}

fn header() -> IndexHeader {
    IndexHeader {
        db_seq: 400,
        table: "t".into(),
        identity: TableIdentity {
            created_seq: 1,
            schema_seq: 1,
            table_seq: 300,
            horizon: 0,
            keys: 40,
            versions: 120,
        },
        paths: vec![vec!["x".into()], vec!["a".into(), "b".into()]],
        position: 1,
    }
}

/// Every lookup of every value at every seq, as (value, seq, keys).
fn answers(index: &FieldIndex) -> Vec<(IndexValue, u64, Vec<Key>)> {
    let (_, live, closed) = index.parts();
    let mut values: Vec<IndexValue> = live.keys().chain(closed.keys()).cloned().collect();
    values.sort();
    values.dedup();
    let mut out = Vec::new();
    for value in values {
        for seq in 0..=310 {
            out.push((value.clone(), seq, index.lookup(&value, seq)));
        }
    }
    out
}

#[test]
fn round_trip_answers_the_same() {
    let index = sample();
    let bytes = encode(&header(), &index).unwrap();
    let file = read(Path::new("t.idx"), bytes).unwrap();
    assert_eq!(file.header, header());
    let back = file.decode(Path::new("t.idx")).unwrap();
    assert_eq!(back.path, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(answers(&back), answers(&index));
    assert!(!answers(&index).iter().all(|(_, _, keys)| keys.is_empty()));
}

#[test]
fn a_large_body_is_compressed_and_reads_back() {
    let mut index = FieldIndex::new(vec!["v".into()]);
    for k in 0..20_000i64 {
        let key = Key::from(format!("customer-with-a-long-common-prefix-{k:08}"));
        let v1 = Value::from(serde_json::json!({"v": k % 7}));
        let v2 = Value::from(serde_json::json!({"v": k % 11}));
        index.on_version(&key, None, Some(&v1), 1 + k as u64);
        index.on_version(&key, Some(&v1), Some(&v2), 30_000 + k as u64);
    }
    let mut h = header();
    h.identity.table_seq = 60_000;
    h.db_seq = 60_000;
    let bytes = encode(&h, &index).unwrap();
    assert_eq!(bytes.get(COMPRESSION_OFFSET), Some(&1), "{} bytes", bytes.len());
    let back = read(Path::new("v.idx"), bytes).unwrap().decode(Path::new("v.idx")).unwrap();
    for seq in [0, 1, 500, 29_999, 30_000, 40_000, 60_000] {
        for v in 0..11 {
            let value = IndexValue::Int(v);
            assert_eq!(back.lookup(&value, seq), index.lookup(&value, seq), "{v} at {seq}");
        }
    }
}

#[test]
fn every_flipped_byte_and_every_truncation_is_refused() {
    let bytes = encode(&header(), &sample()).unwrap();
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x5a;
        let result = read(Path::new("t.idx"), damaged).and_then(|f| f.decode(Path::new("t.idx")));
        assert!(matches!(result, Err(Error::Corrupt { .. })), "flip at {at} accepted");
    }
    for len in 0..bytes.len() {
        let result = read(Path::new("t.idx"), bytes[..len].to_vec());
        assert!(matches!(result, Err(Error::Corrupt { .. })), "cut at {len} accepted");
    }
}

/// Re-seal `bytes` with a correct CRC after changing them, so the checks behind it are run.
fn resealed(mut bytes: Vec<u8>, change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    bytes.truncate(bytes.len() - CRC_BYTES);
    change(&mut bytes);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn another_version_or_a_bad_body_is_refused_even_with_a_good_crc() {
    let bytes = encode(&header(), &sample()).unwrap();
    let v2 = resealed(bytes.clone(), |b| b[8] = 2);
    let err = read(Path::new("t.idx"), v2).unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
    // The table's last event put at seq 100: ranges end after it.
    let early = resealed(bytes.clone(), |b| b[48..56].copy_from_slice(&100u64.to_le_bytes()));
    let file = read(Path::new("t.idx"), early).unwrap();
    assert!(matches!(file.decode(Path::new("t.idx")), Err(Error::Corrupt { .. })));
    // A byte more after the body.
    let longer = resealed(bytes, |b| b.push(0));
    let file = read(Path::new("t.idx"), longer).unwrap();
    assert!(matches!(file.decode(Path::new("t.idx")), Err(Error::Corrupt { .. })));
}

#[test]
fn file_names_are_safe_and_name_the_field() {
    let name = |p: &[&str]| file_name(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(name(&["status"]), "status.idx");
    assert_eq!(name(&["customer_id"]), "customer_id.idx");
    assert_eq!(name(&["address", "city"]), "address.city.idx");
    assert_eq!(name(&["a/b", "..", "é"]), "a%2Fb....%C3%A9.idx");
    assert_eq!(name(&["", "x"]), "%2Ex.idx");
    assert_eq!(name(&["%"]), "%25.idx");
    let long = name(&["x".repeat(300).as_str()]);
    assert!(long.starts_with('~') && long.len() == 1 + 16 + 4, "{long}");
    assert_ne!(long, name(&["y".repeat(300).as_str()]));
}

#[test]
fn a_range_ending_after_the_tables_last_event_is_refused() {
    // A key that held a value from seq 0 until seq 1,000: the file says the table's last
    // event is seq 300.
    let mut index = FieldIndex::new(vec!["a".into(), "b".into()]);
    let doc = Value::from(serde_json::json!({"a": {"b": 1}}));
    index.on_version(&Key::Int(1), None, Some(&doc), 0);
    index.on_version(&Key::Int(1), Some(&doc), None, 1_000);
    let file = read(Path::new("t.idx"), encode(&header(), &index).unwrap()).unwrap();
    let err = file.decode(Path::new("t.idx")).unwrap_err();
    assert!(err.to_string().contains("after the table's last event"), "{err}");
}

#[test]
fn a_compressed_body_claiming_a_huge_length_is_refused() {
    let bytes = encode(&header(), &sample()).unwrap();
    let at = read(Path::new("t.idx"), bytes.clone()).unwrap().body_offset as usize;
    let small = zstd::bulk::compress(b"not an index body", 1).unwrap();
    let crafted = resealed(bytes, |b| {
        b.truncate(at);
        b.extend_from_slice(&small);
        b[COMPRESSION_OFFSET] = 1;
        b[BODY_LEN_OFFSET..BODY_LEN_OFFSET + 8].copy_from_slice(&(1u64 << 34).to_le_bytes());
    });
    let file = read(Path::new("t.idx"), crafted).unwrap();
    assert!(matches!(file.decode(Path::new("t.idx")), Err(Error::Corrupt { .. })));
}

/// Damage behind a correct CRC (what a bug in a writer, not the disk, would leave): every
/// byte of the file changed in turn and the CRC made right again, and every truncation of
/// the body. Each must decode or be refused, never panic; an accepted file must give an
/// index (checked by answering every lookup).
#[test]
fn damage_behind_a_good_crc_is_decoded_or_refused() {
    let bytes = encode(&header(), &sample()).unwrap();
    let body_end = bytes.len() - CRC_BYTES;
    for at in 0..body_end {
        for flip in [0x01u8, 0x80, 0xff] {
            let damaged = resealed(bytes.clone(), |b| b[at] ^= flip);
            if let Ok(file) = read(Path::new("t.idx"), damaged)
                && let Ok(index) = file.decode(Path::new("t.idx"))
            {
                let _ = answers(&index);
            }
        }
    }
    let at = read(Path::new("t.idx"), bytes.clone()).unwrap().body_offset as usize;
    for len in at..body_end {
        let cut = resealed(bytes.clone(), |b| b.truncate(len));
        if let Ok(file) = read(Path::new("t.idx"), cut) {
            assert!(file.decode(Path::new("t.idx")).is_err(), "a body cut at {len} decoded");
        }
    }
}
