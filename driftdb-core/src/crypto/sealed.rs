//! Sealed files: how every file of an encrypted database is stored.
//!
//! A sealed file holds the bytes the file would hold in a plaintext database (its *logical*
//! bytes) as a sequence of AES-256-GCM records, one per append:
//!
//! ```text
//! header (36 bytes, plaintext)
//! 0   8   magic     "DRIFTENC"
//! 8   4   version   u32 LE, 1
//! 12  4   key_id    u32 LE: the key the records are sealed under (see `ENCRYPTION`)
//! 16  16  salt      random, new for every file written (a copy, a rewrite, a new WAL)
//! 32  4   crc32     CRC-32 (IEEE) of bytes 0..32
//!
//! record (at physical offset `at`)
//! 0   4   len       u32 LE: bytes after this 12-byte record header = 12 + plaintext + 16
//! 4   4   head_crc  CRC-32 of len (4 bytes LE)
//! 8   4   crc32     CRC-32 of the `len` bytes that follow
//! 12  12  nonce     96 random bits from the operating system
//! 24  n   ciphertext
//! ..  16  tag       GCM tag over the ciphertext and the associated data
//! ```
//!
//! **Associated data** (authenticated, not stored): `"DRIFTDB\0"`, the database id (16
//! bytes), the key id (u32 LE), the file's salt (16), the record's physical offset (u64 LE)
//! and the file's identity (u32 LE length, then its path relative to the database root,
//! `/`-separated, without a `.tmp` suffix). A record moved to another offset, another file,
//! another copy of the same file (salt) or another database, or sealed under another key,
//! fails to authenticate.
//!
//! **Nonces** are 96 random bits per record (never a counter, which a torn tail could rewind).
//! With 2^32 records under one key the chance of any repeat stays below 2^-32 (NIST SP
//! 800-38D, 8.3); `driftdb rekey` starts a new key and so a new count.
//!
//! **Reading** ([`Sealer::open_file`]) walks the records. The two CRCs tell damage from tampering:
//! a record whose CRCs hold but whose tag fails was changed on purpose (or moved), and is
//! reported as corruption at its offset; a record whose CRCs fail is damage, as a torn write
//! leaves it. The logical bytes then get [`DAMAGE_MARK`] (eight 0xFF bytes, which no DriftDB
//! frame starts with) in its place, and the walk resumes at the next offset where a valid
//! record starts, so the file format above applies its own rule: a torn tail of the WAL or of
//! an untrusted segment tail is cut, damage in trusted bytes is `Corrupt`. Zeros from a
//! record's offset to the end are unwritten space: the logical bytes end there.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use crate::crypto::{EncryptionKey, fill_random};
use crate::error::Result;

/// Magic of a sealed file.
pub const SEALED_MAGIC: [u8; 8] = *b"DRIFTENC";
/// Version of the sealed-file format.
pub const SEALED_VERSION: u32 = 1;
/// Bytes of the sealed-file header.
pub const SEALED_HEADER_BYTES: usize = 36;
/// Bytes of a record header (len, head_crc, crc32).
pub const RECORD_HEADER_BYTES: usize = 12;
/// Bytes of a nonce.
pub const NONCE_BYTES: usize = 12;
/// Bytes of a GCM tag.
pub const TAG_BYTES: usize = 16;
/// Bytes a record adds to its plaintext.
pub const RECORD_OVERHEAD: usize = RECORD_HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
/// Largest plaintext of one record; longer appends are split.
pub const RECORD_PLAINTEXT_MAX: usize = 16 * 1024 * 1024;
/// What stands for a damaged record in the logical bytes.
pub const DAMAGE_MARK: [u8; 8] = [0xFF; 8];

const LEN_MIN: u32 = (NONCE_BYTES + TAG_BYTES) as u32;
const LEN_MAX: u32 = (NONCE_BYTES + TAG_BYTES + RECORD_PLAINTEXT_MAX) as u32;

/// Why a sealed file cannot be read; becomes [`crate::Error::Corrupt`] with the file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealError {
    /// Physical offset in the file.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for SealError {}

impl SealError {
    fn new(offset: u64, reason: impl Into<String>) -> SealError {
        SealError { offset, reason: reason.into() }
    }

    /// As an I/O error (for the `Fs` trait), from which the engine recovers it as `Error::Corrupt`.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

/// The cipher and the context every record of one database binds to.
pub struct Sealer {
    cipher: Aes256Gcm,
    db_id: [u8; 16],
    key_id: u32,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The header of a sealed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedHeader {
    /// The key the records are sealed under.
    pub key_id: u32,
    /// The file copy's random salt.
    pub salt: [u8; 16],
}

impl SealedHeader {
    /// The 36 bytes on disk.
    pub fn encode(&self) -> [u8; SEALED_HEADER_BYTES] {
        let mut out = [0u8; SEALED_HEADER_BYTES];
        out[..8].copy_from_slice(&SEALED_MAGIC);
        out[8..12].copy_from_slice(&SEALED_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.key_id.to_le_bytes());
        out[16..32].copy_from_slice(&self.salt);
        let crc = crc32fast::hash(&out[..32]);
        out[32..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parse and check the header at the start of `data`.
    pub fn decode(data: &[u8]) -> std::result::Result<SealedHeader, SealError> {
        let bad = |why: &str| SealError::new(0, format!("bad sealed-file header: {why}"));
        let head = data.get(..SEALED_HEADER_BYTES).ok_or_else(|| bad("truncated"))?;
        let u32_at = |at: usize| {
            head.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| bad("truncated"))
        };
        if u32_at(32)? != crc32fast::hash(head.get(..32).unwrap_or_default()) {
            return Err(bad("CRC mismatch"));
        }
        if head.get(..8) != Some(&SEALED_MAGIC[..]) {
            return Err(bad(
                "not a sealed DriftDB file (plaintext file in an encrypted database?)",
            ));
        }
        let version = u32_at(8)?;
        if version != SEALED_VERSION {
            return Err(bad(&format!("version {version}, this build reads {SEALED_VERSION}")));
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(head.get(16..32).unwrap_or(&[0u8; 16]));
        Ok(SealedHeader { key_id: u32_at(12)?, salt })
    }
}

/// The logical bytes of a sealed file, and where its undamaged records end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    /// The logical bytes ([`DAMAGE_MARK`] where a record was damaged).
    pub plain: Vec<u8>,
    /// The header (`None` for a file shorter than a header or all zeros: an empty file).
    pub header: Option<SealedHeader>,
    /// Logical bytes before the first damaged record (all of them when there is none).
    pub clean_len: u64,
    /// Physical end of the last record before the first damage or unwritten space.
    pub clean_end: u64,
    /// Whether a valid record follows damage (a damaged record in the middle).
    pub damage_in_middle: bool,
    /// Physical offset of the first damaged record.
    pub first_damage: Option<u64>,
    /// The nonces of the valid records (for tests of nonce uniqueness).
    pub nonces: Vec<[u8; NONCE_BYTES]>,
}

impl Sealer {
    /// A sealer for database `db_id` under `key` with id `key_id`.
    pub fn new(key: &EncryptionKey, db_id: [u8; 16], key_id: u32) -> Sealer {
        Sealer { cipher: Aes256Gcm::new(key.bytes().into()), db_id, key_id }
    }

    /// The key id records are sealed under.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The database id.
    pub fn db_id(&self) -> [u8; 16] {
        self.db_id
    }

    /// A header with a fresh random salt.
    pub fn new_header(&self) -> Result<SealedHeader> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        Ok(SealedHeader { key_id: self.key_id, salt })
    }

    fn aad(&self, identity: &str, salt: &[u8; 16], at: u64) -> Vec<u8> {
        let mut aad = Vec::with_capacity(8 + 16 + 4 + 16 + 8 + 4 + identity.len());
        aad.extend_from_slice(b"DRIFTDB\0");
        aad.extend_from_slice(&self.db_id);
        aad.extend_from_slice(&self.key_id.to_le_bytes());
        aad.extend_from_slice(salt);
        aad.extend_from_slice(&at.to_le_bytes());
        aad.extend_from_slice(&(identity.len() as u32).to_le_bytes());
        aad.extend_from_slice(identity.as_bytes());
        aad
    }

    /// Append records holding `plain` to `out`, whose first byte is at physical offset `base`
    /// of the file (so a record's offset is `base + its position in out`).
    pub fn seal_records(
        &self,
        out: &mut Vec<u8>,
        base: u64,
        identity: &str,
        salt: &[u8; 16],
        plain: &[u8],
    ) -> Result<()> {
        for chunk in plain.chunks(RECORD_PLAINTEXT_MAX) {
            let at = base + out.len() as u64;
            let mut nonce = [0u8; NONCE_BYTES];
            fill_random(&mut nonce)?;
            let len = (NONCE_BYTES + chunk.len() + TAG_BYTES) as u32;
            let start = out.len();
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&head_crc(len).to_le_bytes());
            out.extend_from_slice(&[0u8; 4]);
            out.extend_from_slice(&nonce);
            let ct_start = out.len();
            out.extend_from_slice(chunk);
            let aad = self.aad(identity, salt, at);
            let tag = match out.get_mut(ct_start..) {
                Some(buf) => self
                    .cipher
                    .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, buf)
                    .map_err(|_| crate::Error::invalid("AES-GCM refused to seal a record"))?,
                None => return Err(crate::Error::invalid("record buffer vanished")),
            };
            out.extend_from_slice(&tag);
            let crc = crc32fast::hash(out.get(start + RECORD_HEADER_BYTES..).unwrap_or_default());
            if let Some(slot) = out.get_mut(start + 8..start + 12) {
                slot.copy_from_slice(&crc.to_le_bytes());
            }
        }
        Ok(())
    }

    /// A whole sealed file (header with a fresh salt, then records) holding `plain`.
    pub fn seal_file(&self, identity: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let header = self.new_header()?;
        let mut out = header.encode().to_vec();
        let mut records = Vec::with_capacity(plain.len() + RECORD_OVERHEAD);
        self.seal_records(&mut records, out.len() as u64, identity, &header.salt, plain)?;
        out.extend_from_slice(&records);
        Ok(out)
    }

    /// The logical bytes of sealed file `data` whose identity is `identity`; see the module
    /// documentation for the rules. Errors: a bad header, a file sealed under another key,
    /// a record that fails to authenticate.
    pub fn open_file(&self, identity: &str, data: &[u8]) -> std::result::Result<Opened, SealError> {
        let mut opened = Opened::default();
        if data.len() < SEALED_HEADER_BYTES || data.iter().all(|&b| b == 0) {
            // A file created and never synced with its header: an empty file.
            opened.first_damage = (!data.is_empty()).then_some(0);
            return Ok(opened);
        }
        let header = SealedHeader::decode(data)?;
        if header.key_id != self.key_id {
            return Err(SealError::new(
                0,
                format!(
                    "sealed under key id {}, but the database's key is key id {}",
                    header.key_id, self.key_id
                ),
            ));
        }
        opened.header = Some(header);
        let mut at = SEALED_HEADER_BYTES;
        opened.clean_end = at as u64;
        let mut damaged = false;
        while at < data.len() {
            match self.record_at(data, at, identity, &header.salt) {
                Ok(Some((plain, nonce, end))) => {
                    opened.plain.extend_from_slice(&plain);
                    opened.nonces.push(nonce);
                    if damaged {
                        opened.damage_in_middle = true;
                    } else {
                        opened.clean_len = opened.plain.len() as u64;
                        opened.clean_end = end as u64;
                    }
                    at = end;
                }
                Ok(None) => {
                    let rest = data.get(at..).unwrap_or_default();
                    opened.first_damage.get_or_insert(at as u64);
                    if rest.iter().all(|&b| b == 0) {
                        break; // unwritten space
                    }
                    damaged = true;
                    opened.plain.extend_from_slice(&DAMAGE_MARK);
                    // Resume at the next offset where a record starts. A record whose CRCs hold
                    // there but which fails its tag was moved: tampering, reported.
                    let mut next = None;
                    for candidate in at + 1..data.len() {
                        if self.record_at(data, candidate, identity, &header.salt)?.is_some() {
                            next = Some(candidate);
                            break;
                        }
                    }
                    match next {
                        Some(next) => at = next,
                        None => break,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(opened)
    }

    /// The record at `at`: `Ok(None)` when its CRCs fail (damage), an error when they hold
    /// but the tag does not (tampering), else its plaintext, nonce and end offset.
    #[allow(clippy::type_complexity)]
    fn record_at(
        &self,
        data: &[u8],
        at: usize,
        identity: &str,
        salt: &[u8; 16],
    ) -> std::result::Result<Option<(Vec<u8>, [u8; NONCE_BYTES], usize)>, SealError> {
        self.record_in(data, at, at as u64, identity, salt)
    }

    /// The plaintext of the one record that `bytes` holds (header first), which sits at
    /// physical offset `at` of its file: `Ok(None)` when its CRCs fail or `bytes` is short
    /// (damage), an error when they hold but the tag does not (tampering).
    pub(crate) fn open_record(
        &self,
        bytes: &[u8],
        at: u64,
        identity: &str,
        salt: &[u8; 16],
    ) -> std::result::Result<Option<Vec<u8>>, SealError> {
        Ok(self.record_in(bytes, 0, at, identity, salt)?.map(|(plain, _, _)| plain))
    }

    /// [`Self::record_at`] for a record at index `at` of `data` whose physical offset in its
    /// file is `physical`.
    #[allow(clippy::type_complexity)]
    fn record_in(
        &self,
        data: &[u8],
        at: usize,
        physical: u64,
        identity: &str,
        salt: &[u8; 16],
    ) -> std::result::Result<Option<(Vec<u8>, [u8; NONCE_BYTES], usize)>, SealError> {
        let word =
            |o: usize| data.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        let (Some(len), Some(hcrc), Some(crc)) = (word(at), word(at + 4), word(at + 8)) else {
            return Ok(None);
        };
        if !(LEN_MIN..=LEN_MAX).contains(&len) || hcrc != head_crc(len) {
            return Ok(None);
        }
        let body_start = at + RECORD_HEADER_BYTES;
        let end = body_start + len as usize;
        let Some(body) = data.get(body_start..end) else { return Ok(None) };
        if crc32fast::hash(body) != crc {
            return Ok(None);
        }
        let (nonce, rest) = body.split_at(NONCE_BYTES);
        let (ct, tag) = rest.split_at(rest.len() - TAG_BYTES);
        let mut plain = ct.to_vec();
        let aad = self.aad(identity, salt, physical);
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &aad,
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| {
                SealError::new(
                    physical,
                    "record fails authentication: it was changed, moved from another offset \
                     or file, or sealed under another key",
                )
            })?;
        let mut n = [0u8; NONCE_BYTES];
        n.copy_from_slice(nonce);
        Ok(Some((plain, n, end)))
    }
}

/// The `len` field of a record header whose own CRC holds and whose value is in range (what
/// follows the 12-byte header), without reading the record; `None` otherwise.
pub(crate) fn record_len(header: &[u8]) -> Option<u32> {
    let word =
        |o: usize| header.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let (len, hcrc) = (word(0)?, word(4)?);
    ((LEN_MIN..=LEN_MAX).contains(&len) && hcrc == head_crc(len)).then_some(len)
}

fn head_crc(len: u32) -> u32 {
    crc32fast::hash(&len.to_le_bytes())
}

/// Physical end and logical length of the records of `data` as far as their CRCs hold,
/// without decrypting (for opening a file for appending).
pub(crate) fn crc_walk(data: &[u8]) -> (u64, u64) {
    let mut at = SEALED_HEADER_BYTES;
    let mut logical = 0u64;
    loop {
        let word =
            |o: usize| data.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        let (Some(len), Some(hcrc), Some(crc)) = (word(at), word(at + 4), word(at + 8)) else {
            break;
        };
        if !(LEN_MIN..=LEN_MAX).contains(&len) || hcrc != head_crc(len) {
            break;
        }
        let end = at + RECORD_HEADER_BYTES + len as usize;
        match data.get(at + RECORD_HEADER_BYTES..end) {
            Some(body) if crc32fast::hash(body) == crc => {}
            _ => break,
        }
        logical += u64::from(len - LEN_MIN);
        at = end;
    }
    (at as u64, logical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(key_id: u32) -> Sealer {
        Sealer::new(&EncryptionKey::from_hex(&"ab".repeat(32)).unwrap(), [7; 16], key_id)
    }

    #[test]
    fn round_trip_and_binding() {
        let s = sealer(1);
        let file = s.seal_file("wal/wal.log", b"hello sealed world").unwrap();
        let opened = s.open_file("wal/wal.log", &file).unwrap();
        assert_eq!(opened.plain, b"hello sealed world");
        assert_eq!(opened.clean_end, file.len() as u64);
        assert_eq!(crc_walk(&file), (file.len() as u64, 18));
        // Another identity, another key id, another database: refused.
        assert!(s.open_file("CHECKPOINT", &file).is_err());
        assert!(sealer(2).open_file("wal/wal.log", &file).is_err());
        let other = Sealer::new(&EncryptionKey::from_hex(&"ab".repeat(32)).unwrap(), [8; 16], 1);
        assert!(other.open_file("wal/wal.log", &file).is_err());
    }

    #[test]
    fn never_panics_on_damaged_or_random_input() {
        let s = sealer(1);
        let file = s.seal_file("t", &[7u8; 300]).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let mut data = file.clone();
            match round % 4 {
                0 => {
                    let at = (next() as usize) % data.len();
                    data[at] ^= 1 << (next() % 8);
                }
                1 => data.truncate((next() as usize) % data.len()),
                2 => {
                    let at = (next() as usize) % data.len();
                    let len = ((next() as usize) % 16).min(data.len() - at);
                    for b in &mut data[at..at + len] {
                        *b = next() as u8;
                    }
                }
                _ => data = (0..(next() % 200)).map(|_| next() as u8).collect(),
            }
            let _ = s.open_file("t", &data);
            let _ = crc_walk(&data);
            let _ = SealedHeader::decode(&data);
        }
    }

    #[test]
    fn damage_is_marked_and_torn_tails_end_the_file() {
        let s = sealer(1);
        let header = s.new_header().unwrap();
        let mut data = header.encode().to_vec();
        let mut starts = Vec::new();
        for part in [&b"one"[..], b"two", b"three"] {
            starts.push(data.len());
            let mut rec = Vec::new();
            s.seal_records(&mut rec, data.len() as u64, "x", &header.salt, part).unwrap();
            data.extend_from_slice(&rec);
        }
        // Torn tail: the last record cut short.
        let torn = s.open_file("x", &data[..data.len() - 3]).unwrap();
        assert_eq!(torn.plain, [&b"onetwo"[..], &DAMAGE_MARK].concat());
        assert!(!torn.damage_in_middle);
        assert_eq!(torn.clean_end, starts[2] as u64);
        // Zeros after the last record: unwritten space.
        let mut zeros = data.clone();
        zeros.resize(data.len() + 100, 0);
        assert_eq!(s.open_file("x", &zeros).unwrap().plain, b"onetwothree");
        // A bit flip in the middle record: damage followed by a valid record.
        let mut flipped = data.clone();
        flipped[starts[1] + 20] ^= 1;
        let mid = s.open_file("x", &flipped).unwrap();
        assert_eq!(mid.plain, [&b"one"[..], &DAMAGE_MARK, b"three"].concat());
        assert!(mid.damage_in_middle);
        assert_eq!(mid.first_damage, Some(starts[1] as u64));
        // A record with its CRCs fixed up but its bytes changed: tampering.
        let mut forged = data.clone();
        forged[starts[1] + 30] ^= 1;
        let body = forged[starts[1] + 12..starts[2]].to_vec();
        forged[starts[1] + 8..starts[1] + 12]
            .copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        let err = s.open_file("x", &forged).unwrap_err();
        assert_eq!(err.offset, starts[1] as u64);
        // Two records swapped: the first fails to authenticate at its new offset.
        let mut swapped = data[..starts[1]].to_vec();
        swapped.extend_from_slice(&data[starts[2]..]);
        swapped.extend_from_slice(&data[starts[1]..starts[2]]);
        assert_eq!(s.open_file("x", &swapped).unwrap_err().offset, starts[1] as u64);
    }
}
