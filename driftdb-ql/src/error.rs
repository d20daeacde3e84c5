//! The error type of `driftdb-ql`.

/// What went wrong reading DriftQL text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not valid at `column` (1-based, in characters).
    #[error("line 1, column {column}: expected {expected}, found {found:?}")]
    Syntax {
        /// 1-based column of the first character that does not fit.
        column: usize,
        /// What would have fit.
        expected: String,
        /// The text found there.
        found: String,
    },
}
