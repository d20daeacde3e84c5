//! Reading DriftDB's files directly, without opening the database: the frame walker and
//! payload decoder that `inspect` and `verify` share.

pub mod decode;
pub mod walk;
