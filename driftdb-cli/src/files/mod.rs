//! Reading DriftDB's files directly, without opening the database: the frame walker, the
//! compressed-segment block walker and the payload decoder that `inspect` and `verify` share.

pub mod blocks;
pub mod decode;
pub mod walk;
