//! The write-ahead log: `wal/wal.log`.
//!
//! ```text
//! [file header: "DRIFTWAL", version 1]              16 bytes
//! [frame type WAL_BATCH] [frame type WAL_BATCH] ...
//! ```
//! A WAL_BATCH frame is one group commit: the transactions that shared one `fsync`. Its frame
//! seq is the last seq in it, its unix_ms the last commit time, and its payload is the
//! concatenation of msgpack transaction records `[seq, unix_ms, [[table, type, key, body], ...]]`.
//! Seqs are consecutive across the whole file.
//!
//! **Durability.** A batch is appended with one write and made durable with one `fdatasync`;
//! only then are its transactions acknowledged. Since the frame's CRC covers the whole batch,
//! a transaction is in the log whole or not at all: the frame is the commit marker.
//!
//! **Recovery.** Frames are read from the start. At the first frame that fails (short, bad
//! length, bad CRC) the reader looks further on for valid WAL_BATCH frames with later seqs
//! that chain exactly to the end of the file. If there are none, the damage is a torn tail:
//! the batch being written when the process died, never acknowledged; the file is truncated
//! there. If there are, a batch in the middle is damaged, which fsync ordering rules out for a
//! torn write (a later batch is written only after the earlier one was durable), so recovery
//! refuses with `Corrupt { file, offset }`. Requiring the chain keeps a document that happens
//! to contain a copy of a WAL frame from turning an ordinary torn tail into a refusal.
//!
//! **Preallocation.** The file grows in zero-filled chunks (written right after a batch that
//! goes past the file's end, and fsynced with it), so most fsyncs write only data, not a new
//! file size. Zeros after
//! the last batch are that unwritten space: the scan stops there like at a torn tail, and open
//! cuts them off.
//!
//! **Retirement.** At a checkpoint every transaction in the log is already durable in the table
//! segments, so the log is replaced by an empty one (write `wal.log.tmp`, fsync, rename over
//! `wal.log`, fsync `wal/`).

use std::io::Cursor;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::event::TxnRecord;
use crate::limits::WAL_FRAME_BYTES_MAX;
use crate::storage::frame::{self, EventType, FILE_HEADER_BYTES, FileHeader, WAL_MAGIC};

/// The WAL's directory, relative to the database root.
pub const WAL_DIR: &str = "wal";
/// The WAL's file name.
pub const WAL_FILE: &str = "wal.log";

/// Append WAL_BATCH frames holding `records` (each `(seq, unix_ms, bytes)`) to `out`,
/// starting a new frame whenever one would exceed the frame limit. Each record's bytes are
/// copied once, straight into its frame.
pub(crate) fn encode_batches(out: &mut Vec<u8>, records: &[(u64, u64, &[u8])]) {
    let limit = WAL_FRAME_BYTES_MAX as usize - 64;
    let mut parts: Vec<&[u8]> = Vec::with_capacity(records.len());
    let mut size = 0usize;
    let mut last: Option<(u64, u64)> = None;
    for &(seq, unix_ms, bytes) in records {
        if !parts.is_empty() && size + bytes.len() > limit {
            if let Some((s, t)) = last {
                frame::encode_parts(out, s, t, EventType::WalBatch, &parts);
            }
            parts.clear();
            size = 0;
        }
        parts.push(bytes);
        size += bytes.len();
        last = Some((seq, unix_ms));
    }
    if let Some((s, t)) = last {
        frame::encode_parts(out, s, t, EventType::WalBatch, &parts);
    }
}

/// What a scan of the WAL found.
#[derive(Debug, Default)]
pub(crate) struct WalScan {
    pub txns: Vec<TxnRecord>,
    /// Bytes of the file that hold whole, valid frames (header included).
    pub valid_len: u64,
    /// Offset and reason of a torn tail that must be cut off.
    pub torn: Option<(u64, String)>,
}

/// Decode the transaction records of a WAL_BATCH payload.
pub(crate) fn decode_batch(payload: &[u8]) -> std::result::Result<Vec<TxnRecord>, String> {
    let mut cursor = Cursor::new(payload);
    let mut out = Vec::new();
    while (cursor.position() as usize) < payload.len() {
        let mut de = rmp_serde::Deserializer::new(&mut cursor);
        let record = TxnRecord::deserialize(&mut de).map_err(|e| e.to_string())?;
        out.push(record);
    }
    Ok(out)
}

/// Read every transaction of a WAL file, applying the torn-tail rule above.
pub(crate) fn scan(path: &Path, data: &[u8]) -> Result<WalScan> {
    FileHeader::check(data, WAL_MAGIC)
        .map_err(|e| Error::corrupt(path, 0, format!("bad WAL header: {e:?}")))?;
    let mut scan = WalScan { valid_len: FILE_HEADER_BYTES as u64, ..WalScan::default() };
    let mut offset = FILE_HEADER_BYTES;
    let mut last_seq: Option<u64> = None;
    while let Some(rest) = data.get(offset..).filter(|r| !r.is_empty()) {
        let frame = match frame::decode(rest, WAL_FRAME_BYTES_MAX) {
            Ok(frame) => frame,
            Err(err) => {
                // Zeros to the end: the preallocated, never written part of the file.
                let unwritten = rest.iter().all(|&b| b == 0);
                if !unwritten && valid_chain_after(data, offset + 1, last_seq.unwrap_or(0)) {
                    return Err(Error::corrupt(path, offset as u64, err.to_string()));
                }
                scan.torn = Some((offset as u64, err.to_string()));
                break;
            }
        };
        let at = offset as u64;
        if frame.kind != EventType::WalBatch {
            return Err(Error::corrupt(path, at, format!("unexpected {} frame", frame.kind)));
        }
        let records = decode_batch(frame.payload).map_err(|e| Error::corrupt(path, at, e))?;
        for record in &records {
            if let Some(prev) = last_seq
                && record.seq != prev + 1
            {
                return Err(Error::corrupt(
                    path,
                    at,
                    format!("seq {} follows seq {prev}", record.seq),
                ));
            }
            last_seq = Some(record.seq);
        }
        if records.is_empty() || last_seq != Some(frame.seq) {
            return Err(Error::corrupt(path, at, "batch frame seq does not match its records"));
        }
        scan.txns.extend(records);
        offset += frame.size;
        scan.valid_len = offset as u64;
    }
    Ok(scan)
}

/// Whether valid WAL_BATCH frames start somewhere at or after `from`, with a seq after
/// `last_seq`, and follow each other exactly up to the end of the file (or up to the
/// preallocated zeros that end it). That is what a later
/// group commit looks like; bytes that merely contain a frame (a document holding a copy of a
/// DriftDB file, say) almost never also chain to the end of the file.
fn valid_chain_after(data: &[u8], from: usize, last_seq: u64) -> bool {
    let batch_at = |at: usize| {
        data.get(at..)
            .and_then(|rest| frame::decode(rest, WAL_FRAME_BYTES_MAX).ok())
            .filter(|f| f.kind == EventType::WalBatch)
    };
    (from..data.len()).any(|start| {
        let Some(first) = batch_at(start).filter(|f| f.seq > last_seq) else {
            return false;
        };
        let mut at = start + first.size;
        while at < data.len() {
            match batch_at(at) {
                Some(f) => at += f.size,
                // The chain may end in the preallocated zeros after the last batch.
                None => return data.get(at..).is_some_and(|rest| rest.iter().all(|&b| b == 0)),
            }
        }
        at == data.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, encode_txn};
    use crate::value::{Key, Value};

    fn txn(seq: u64) -> Vec<u8> {
        let key = Some(Key::Int(seq as i64));
        let ev =
            Event::new("t".into(), EventType::Insert, key, Value::Int(seq as i64).into()).unwrap();
        encode_txn(seq, 1000 + seq, &[ev]).unwrap()
    }

    fn wal(batches: &[&[u64]]) -> (Vec<u8>, Vec<usize>) {
        let mut out = FileHeader::new(WAL_MAGIC).encode().to_vec();
        let mut starts = Vec::new();
        for batch in batches {
            starts.push(out.len());
            let recs: Vec<Vec<u8>> = batch.iter().map(|&s| txn(s)).collect();
            let refs: Vec<(u64, u64, &[u8])> =
                batch.iter().zip(&recs).map(|(&s, r)| (s, 1000 + s, r.as_slice())).collect();
            encode_batches(&mut out, &refs);
        }
        (out, starts)
    }

    #[test]
    fn reads_back_batches() {
        let (data, _) = wal(&[&[1, 2], &[3], &[4, 5, 6]]);
        let scan = scan(Path::new("w"), &data).unwrap();
        assert_eq!(scan.txns.iter().map(|t| t.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(scan.valid_len, data.len() as u64);
        assert!(scan.torn.is_none());
    }

    #[test]
    fn torn_tail_is_cut_at_any_length() {
        let (data, starts) = wal(&[&[1], &[2, 3]]);
        for cut in starts[1]..data.len() {
            let scan = scan(Path::new("w"), &data[..cut]).unwrap();
            assert_eq!(scan.txns.len(), 1, "cut at {cut}");
            assert_eq!(scan.valid_len, starts[1] as u64);
            assert_eq!(scan.torn.is_some(), cut > starts[1]);
        }
        // Garbage or zeroes over the last batch: still a torn tail.
        let mut zeroed = data.clone();
        zeroed[starts[1] + 3..].fill(0);
        assert_eq!(scan(Path::new("w"), &zeroed).unwrap().txns.len(), 1);
    }

    #[test]
    fn a_frame_inside_the_torn_batch_does_not_look_like_a_later_batch() {
        // The last batch carries a copy of a whole WAL frame in its payload, then is torn.
        let (first, _) = wal(&[&[1]]);
        let embedded = first[FILE_HEADER_BYTES..].to_vec();
        let mut data = first.clone();
        let ev = Event::new(
            "t".into(),
            EventType::Insert,
            Some(Key::Int(2)),
            Value::Map(
                [
                    ("blob".into(), Value::Bytes(embedded.clone())),
                    ("pad".into(), Value::String("x".repeat(100).into())),
                ]
                .into(),
            )
            .into(),
        )
        .unwrap();
        let rec = encode_txn(2, 1002, &[ev]).unwrap();
        encode_batches(&mut data, &[(2, 1002, rec.as_slice())]);
        let torn = &data[..data.len() - 5];
        // The copy is whole inside what is left of the torn batch.
        let copy_at = torn[first.len()..].windows(embedded.len()).position(|w| w == embedded);
        assert!(copy_at.is_some());
        let scan = scan(Path::new("w"), torn).unwrap();
        assert_eq!(scan.txns.len(), 1);
        assert_eq!(scan.valid_len, first.len() as u64);
    }

    #[test]
    fn preallocated_zeros_end_the_log() {
        let (mut data, starts) = wal(&[&[1], &[2], &[3]]);
        let end = data.len();
        data.resize(end + 4096, 0);
        let clean = scan(Path::new("w"), &data).unwrap();
        assert_eq!(clean.txns.len(), 3);
        assert_eq!(clean.valid_len, end as u64);
        // Damage in the middle is still corruption when the later batches end in zeros.
        data[starts[1] + 9] ^= 0x10;
        let result = scan(Path::new("w"), &data);
        assert!(
            matches!(result, Err(Error::Corrupt { offset, .. }) if offset == starts[1] as u64),
            "{result:?}"
        );
    }

    #[test]
    fn damage_before_a_valid_batch_is_corruption() {
        let (data, starts) = wal(&[&[1], &[2], &[3]]);
        for at in starts[1]..starts[2] {
            let mut bad = data.clone();
            bad[at] ^= 0x10;
            let result = scan(Path::new("w"), &bad);
            assert!(
                matches!(result, Err(Error::Corrupt { offset, .. }) if offset == starts[1] as u64),
                "flip at {at}: {result:?}"
            );
        }
    }
}
