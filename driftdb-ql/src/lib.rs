//! # driftdb-ql
//!
//! DriftQL, DriftDB's query language, over the `driftdb-core` API. This release holds the
//! first piece every statement needs: reading an `AS OF` point of history. The parser,
//! planner and executor for whole statements arrive with the DriftQL release.

mod as_of;
mod error;

pub use as_of::{format_unix_ms, parse_as_of};
pub use error::Error;
