//! Encryption at rest: the key, the key-check file, sealed files and key rotation.
//!
//! An encrypted database has a plaintext `ENCRYPTION` file at its root ([`keycheck`]): the
//! database id, the id of the key in force and a key-check value, so that a wrong or missing
//! key is refused at open before anything else is read. Every other file the engine writes
//! under the root (WAL, segments, compacted segments, checkpoint, derived files, statistics,
//! snapshots, backups of it) is a *sealed file* ([`sealed`]): a small plaintext header and
//! AES-256-GCM records. The engine reaches them through [`EncryptedFs`], a wrapper of the
//! [`Fs`](crate::storage::fs::Fs) trait that seals on append and opens on read, so every file
//! format above it is unchanged and sees the same bytes as in a plaintext database.
//!
//! What is not encrypted: directory and file names (table names are visible), file lengths,
//! `LOCK`, `ENCRYPTION` and the `REKEY` journal of a key rotation ([`rekey()`]).

pub mod keycheck;
pub mod rekey;
pub mod sealed;

mod efs;
mod ranged;

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub use efs::EncryptedFs;
pub use keycheck::{ENCRYPTION_FILE, KeyCheck};
pub use rekey::{REKEY_FILE, REKEY_TMP_DIR, RekeyReport, rekey};

/// Bytes of an AES-256 key.
pub const KEY_BYTES: usize = 32;

/// A 256-bit database key. Parsed from 64 hex characters (from `DRIFTDB_KEY` or a key file);
/// its bytes are wiped from memory when it is dropped, and `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(..)")
    }
}

impl EncryptionKey {
    /// A key from its 64 hex characters (surrounding whitespace is ignored).
    ///
    /// Errors: [`Error::BadKey`] when the text is not exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Result<EncryptionKey> {
        let text = text.trim();
        if text.len() != 2 * KEY_BYTES {
            return Err(Error::BadKey {
                reason: format!(
                    "a key is {} hex characters (256 bits), this one has {}",
                    2 * KEY_BYTES,
                    text.chars().count()
                ),
            });
        }
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        for (slot, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            match pair {
                [hi, lo] => match (digit(*hi), digit(*lo)) {
                    (Some(h), Some(l)) => *slot = (h * 16 + l) as u8,
                    _ => {
                        return Err(Error::BadKey {
                            reason: "a key holds only the hex digits 0-9 and a-f".into(),
                        });
                    }
                },
                _ => return Err(Error::BadKey { reason: "odd number of hex digits".into() }),
            }
        }
        Ok(EncryptionKey { bytes })
    }

    /// The key in a key file: 64 hex characters, optionally followed by a newline.
    ///
    /// Errors: [`Error::Io`] when the file cannot be read, [`Error::BadKey`] when it does not
    /// hold a key.
    pub fn from_file(path: &Path) -> Result<EncryptionKey> {
        let text = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
        let text = std::str::from_utf8(&text).map_err(|_| Error::BadKey {
            reason: format!("{} does not hold 64 hex characters", path.display()),
        })?;
        Self::from_hex(text).map_err(|e| match e {
            Error::BadKey { reason } => {
                Error::BadKey { reason: format!("key file {}: {reason}", path.display()) }
            }
            other => other,
        })
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<EncryptionKey> {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        fill_random(bytes.as_mut_slice())?;
        Ok(EncryptionKey { bytes })
    }

    /// The key as 64 lowercase hex characters (wiped when dropped).
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(2 * KEY_BYTES));
        for byte in self.bytes.iter() {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }
}

/// Fill `buf` from the operating system's random generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::io(Path::new("getrandom"), std::io::Error::other(format!("no random bytes: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_hex_only() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let key = EncryptionKey::from_hex(&format!("  {hex}\n")).unwrap();
        assert_eq!(key.to_hex().as_str(), hex.to_lowercase());
        assert_eq!(format!("{key:?}"), "EncryptionKey(..)");
        for bad in ["", "00", &hex[1..], &format!("{hex}0"), &hex.replace('a', "g")] {
            assert!(matches!(EncryptionKey::from_hex(bad), Err(Error::BadKey { .. })), "{bad}");
        }
        let a = EncryptionKey::generate().unwrap();
        let b = EncryptionKey::generate().unwrap();
        assert_ne!(a, b);
    }
}
