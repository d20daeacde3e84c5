//! Bounds on everything the engine stores. Each is checked where input enters, with a clear
//! [`Error::TooLarge`](crate::Error::TooLarge) or [`Error::InvalidInput`](crate::Error::InvalidInput).

/// Largest encoded primary key, in bytes.
pub const KEY_BYTES_MAX: u64 = 1024;
/// Largest encoded document (or patch), in bytes.
pub const DOCUMENT_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Deepest nesting of arrays and maps inside a document.
pub const DOCUMENT_DEPTH_MAX: usize = 64;
/// Largest encoded transaction (all its events), in bytes.
pub const TRANSACTION_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Largest body of a segment frame. A frame holds one event, so this is the document limit plus
/// room for the key and framing.
pub const SEGMENT_FRAME_BYTES_MAX: u32 = 8 * 1024 * 1024;
/// Largest body of a WAL frame. A WAL frame holds one group commit: one or more transactions.
pub const WAL_FRAME_BYTES_MAX: u32 = 1024 * 1024 * 1024;
/// Longest table name, in bytes.
pub const TABLE_NAME_BYTES_MAX: usize = 64;
