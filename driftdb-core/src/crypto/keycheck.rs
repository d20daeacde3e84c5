//! The `ENCRYPTION` file: marks an encrypted database and checks the key before anything else
//! is read.
//!
//! ```text
//! offset  size  field
//! 0       8     magic      "DRIFTKEY"
//! 8       4     version    u32 LE, 1
//! 12      16    db_id      random, fixed for the life of the database (kept by rekey)
//! 28      4     key_id     u32 LE: 1 at init, +1 at each rekey
//! 32      12    nonce      random
//! 44      32    check      AES-256-GCM of "DRIFTDB-KEYCHECK" (16 bytes) under the key,
//!                          associated data bytes 0..32; 16 bytes ciphertext + 16 bytes tag
//! 76      4     crc32      CRC-32 (IEEE) of bytes 0..76
//! ```
//!
//! Plaintext (it holds no user data). Written atomically (temporary file, fsync, rename,
//! fsync of the root) before anything else of a new encrypted database, so a database
//! without it is a plaintext one. Open checks, in order: the CRC and the version (else
//! [`Error::BadKey`] naming the file), that a key was given ([`Error::KeyRequired`]), and the
//! check value ([`Error::WrongKey`]). A key given for a database without the file is
//! [`Error::NotEncrypted`].

use std::path::Path;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use crate::crypto::sealed::Sealer;
use crate::crypto::{EncryptionKey, fill_random};
use crate::error::{Error, Result};

/// The key-check file at the database root.
pub const ENCRYPTION_FILE: &str = "ENCRYPTION";
/// Its magic.
pub const KEYCHECK_MAGIC: [u8; 8] = *b"DRIFTKEY";
/// Its version.
pub const KEYCHECK_VERSION: u32 = 1;
/// Its size in bytes.
pub const KEYCHECK_BYTES: usize = 80;
const CHECK_PLAINTEXT: &[u8; 16] = b"DRIFTDB-KEYCHECK";

/// The contents of an `ENCRYPTION` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck {
    /// The database id.
    pub db_id: [u8; 16],
    /// The id of the key in force.
    pub key_id: u32,
    nonce: [u8; 12],
    check: [u8; 32],
}

impl KeyCheck {
    /// A key check for `key` with id `key_id` in database `db_id`.
    pub fn new(key: &EncryptionKey, db_id: [u8; 16], key_id: u32) -> Result<KeyCheck> {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce)?;
        let mut kc = KeyCheck { db_id, key_id, nonce, check: [0u8; 32] };
        let aad = kc.aad();
        let mut buf = *CHECK_PLAINTEXT;
        let tag = Aes256Gcm::new(key.bytes().into())
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut buf)
            .map_err(|_| Error::invalid("AES-GCM refused the key check"))?;
        kc.check[..16].copy_from_slice(&buf);
        kc.check[16..].copy_from_slice(&tag);
        Ok(kc)
    }

    /// A key check for a new database: a random id, key id 1.
    pub fn generate(key: &EncryptionKey) -> Result<KeyCheck> {
        let mut db_id = [0u8; 16];
        fill_random(&mut db_id)?;
        Self::new(key, db_id, 1)
    }

    fn aad(&self) -> [u8; 32] {
        let mut aad = [0u8; 32];
        aad[..8].copy_from_slice(&KEYCHECK_MAGIC);
        aad[8..12].copy_from_slice(&KEYCHECK_VERSION.to_le_bytes());
        aad[12..28].copy_from_slice(&self.db_id);
        aad[28..32].copy_from_slice(&self.key_id.to_le_bytes());
        aad
    }

    /// The bytes on disk.
    pub fn encode(&self) -> [u8; KEYCHECK_BYTES] {
        let mut out = [0u8; KEYCHECK_BYTES];
        out[..32].copy_from_slice(&self.aad());
        out[32..44].copy_from_slice(&self.nonce);
        out[44..76].copy_from_slice(&self.check);
        let crc = crc32fast::hash(&out[..76]);
        out[76..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parse `data`, read from `path`. Errors: [`Error::BadKey`] when it is not a valid
    /// `ENCRYPTION` file of this version.
    pub fn decode(path: &Path, data: &[u8]) -> Result<KeyCheck> {
        let bad = |why: &str| Error::BadKey {
            reason: format!("{} is not a valid key-check file: {why}", path.display()),
        };
        let bytes: &[u8; KEYCHECK_BYTES] =
            data.try_into().map_err(|_| bad(&format!("{} bytes, not 80", data.len())))?;
        let crc = u32::from_le_bytes([bytes[76], bytes[77], bytes[78], bytes[79]]);
        if crc != crc32fast::hash(&bytes[..76]) {
            return Err(bad("CRC mismatch"));
        }
        if bytes[..8] != KEYCHECK_MAGIC {
            return Err(bad("wrong magic"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != KEYCHECK_VERSION {
            return Err(bad(&format!("version {version}, this build reads {KEYCHECK_VERSION}")));
        }
        let mut kc = KeyCheck {
            db_id: [0u8; 16],
            key_id: u32::from_le_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]),
            nonce: [0u8; 12],
            check: [0u8; 32],
        };
        kc.db_id.copy_from_slice(&bytes[12..28]);
        kc.nonce.copy_from_slice(&bytes[32..44]);
        kc.check.copy_from_slice(&bytes[44..76]);
        Ok(kc)
    }

    /// Whether `key` is the key this file checks.
    pub fn matches(&self, key: &EncryptionKey) -> bool {
        let mut buf = [0u8; 16];
        buf.copy_from_slice(&self.check[..16]);
        let ok = Aes256Gcm::new(key.bytes().into())
            .decrypt_in_place_detached(
                Nonce::from_slice(&self.nonce),
                &self.aad(),
                &mut buf,
                Tag::from_slice(&self.check[16..]),
            )
            .is_ok();
        ok && &buf == CHECK_PLAINTEXT
    }

    /// The sealer for the files of this database under `key` (which must match).
    pub fn sealer(&self, key: &EncryptionKey) -> Sealer {
        Sealer::new(key, self.db_id, self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_tells_the_right_key() {
        let key = EncryptionKey::generate().unwrap();
        let kc = KeyCheck::generate(&key).unwrap();
        let bytes = kc.encode();
        let back = KeyCheck::decode(Path::new("E"), &bytes).unwrap();
        assert_eq!(back, kc);
        assert!(back.matches(&key));
        assert!(!back.matches(&EncryptionKey::generate().unwrap()));
        for i in 0..bytes.len() {
            let mut bad = bytes;
            bad[i] ^= 4;
            let ok = KeyCheck::decode(Path::new("E"), &bad).is_ok_and(|k| k.matches(&key));
            assert!(!ok, "flip at {i}");
        }
        assert!(KeyCheck::decode(Path::new("E"), &bytes[..79]).is_err());
    }
}
