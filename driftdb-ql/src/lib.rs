//! # driftdb-ql
//!
//! DriftQL, DriftDB's query language, over the `driftdb-core` API: the syntax tree
//! ([`ast`]), the parser, the canonical printer, and the executor that runs statements in a
//! session and returns an [`Outcome`].

mod as_of;
pub mod ast;
mod error;
mod exec;
pub mod migrate;
mod outcome;
pub mod parse;
mod print;

pub use as_of::{format_unix_ms, parse_as_of};
pub use error::Error;
pub use exec::{Session, level_name};
pub use outcome::{Done, Outcome, Rows, WriteSummary};
pub use parse::{next_statement_end, parse_expr, parse_script, parse_statement};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
