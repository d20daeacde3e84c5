//! The error type of `driftdb-ql`: one enum, its variants grouped by what the caller can do.

use driftdb_core::Key;

/// What went wrong reading or running DriftQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- The text is not valid DriftQL: fix the statement. ----
    /// The text does not parse. `Display` shows the line with a caret under `column`.
    #[error(
        "syntax error at line {line}, column {column}: expected {expected}, found {found}\n{}",
        caret(source_line, *column)
    )]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What would have fit there.
        expected: String,
        /// What was there (quoted text, or `end of input`).
        found: String,
        /// The whole line, for the caret display.
        source_line: String,
    },
    /// A literal, a document or the nesting of an expression is beyond a limit.
    #[error("line {line}, column {column}: {what} is too large (the limit is {limit})\n{}", caret(source_line, *column))]
    TooLarge {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is too large.
        what: String,
        /// The limit, in words.
        limit: String,
        /// The whole line, for the caret display.
        source_line: String,
    },

    // ---- The statement is valid but does not fit the data or the session: change it. ----
    /// The table does not exist (at the moment read).
    #[error("table `{table}` does not exist; SHOW TABLES lists the tables")]
    UnknownTable {
        /// The table name.
        table: String,
    },
    /// A table of that name exists already.
    #[error("table `{table}` already exists")]
    TableExists {
        /// The table name.
        table: String,
    },
    /// A field named where the statement needs one the table has.
    #[error("{message}")]
    UnknownColumn {
        /// The field.
        column: String,
        /// What was wrong and what to do.
        message: String,
    },
    /// A value of the wrong type for an operator, a function, a key or a document.
    #[error("type mismatch: {message}")]
    TypeMismatch {
        /// What was expected and what was found.
        message: String,
    },
    /// INSERT of a key that is live.
    #[error("duplicate key: `{table}` already has a live row with key {key}; PATCH it, or UPSERT")]
    DuplicateKey {
        /// The table.
        table: String,
        /// The key.
        key: Key,
    },
    /// PATCH or SOFT DELETE of a key that is not live.
    #[error("key not found: `{table}` has no live row with key {key}")]
    KeyNotFound {
        /// The table.
        table: String,
        /// The key.
        key: Key,
    },
    /// `AS OF @seq:N` beyond the last committed seq.
    #[error("@seq:{requested} is in the future: the last committed seq is {latest}")]
    FutureSeq {
        /// The seq asked for.
        requested: u64,
        /// The last committed seq.
        latest: u64,
    },
    /// A statement that is valid DriftQL but cannot run as written (an aggregate in WHERE, a
    /// field outside GROUP BY, a write with AS OF, ...).
    #[error("{message}")]
    Invalid {
        /// What is wrong and what to do.
        message: String,
    },
    /// BEGIN inside a transaction, COMMIT or ROLLBACK outside one, or a statement that cannot
    /// run inside a transaction.
    #[error("{message}")]
    TransactionState {
        /// What is wrong and what to do.
        message: String,
    },
    /// The statement needs a mechanism that is not in this release.
    #[error("{feature} is not available yet: {detail}")]
    NotAvailable {
        /// The statement or feature.
        feature: String,
        /// When it arrives, and what to do meanwhile.
        detail: String,
    },

    // ---- The database refused or failed: see the core error. ----
    /// An error of the storage engine: a unique index refused a write (kind
    /// `unique_violation`), the database is in use by another process, I/O, corruption, ...
    #[error(transparent)]
    Core(driftdb_core::Error),
}

fn caret(line: &str, column: usize) -> String {
    let pad: String = line
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("  {line}\n  {pad}^")
}

impl Error {
    /// A short, stable name of the error's kind, for programs (`"syntax"`, `"unknown_table"`,
    /// `"duplicate_key"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Syntax { .. } => "syntax",
            Error::TooLarge { .. } => "too_large",
            Error::UnknownTable { .. } => "unknown_table",
            Error::TableExists { .. } => "table_exists",
            Error::UnknownColumn { .. } => "unknown_column",
            Error::TypeMismatch { .. } => "type_mismatch",
            Error::DuplicateKey { .. } => "duplicate_key",
            Error::KeyNotFound { .. } => "key_not_found",
            Error::FutureSeq { .. } => "future_seq",
            Error::Invalid { .. } => "invalid_statement",
            Error::TransactionState { .. } => "transaction_state",
            Error::NotAvailable { .. } => "not_available",
            Error::Core(e) => core_kind(e),
        }
    }

    /// True when the statement (its whole transaction) lost a race with a concurrent commit
    /// and running it again may succeed (kind `conflict`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Core(e) if e.is_retryable())
    }

    /// The 1-based line and column the error points at, when it points at the text.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Error::Syntax { line, column, .. } | Error::TooLarge { line, column, .. } => {
                Some((*line, *column))
            }
            _ => None,
        }
    }

    /// The message without the caret display: one line for syntax errors.
    pub fn message(&self) -> String {
        match self {
            Error::Syntax { line, column, expected, found, .. } => {
                format!(
                    "syntax error at line {line}, column {column}: expected {expected}, found {found}"
                )
            }
            Error::TooLarge { line, column, what, limit, .. } => {
                format!("line {line}, column {column}: {what} is too large (the limit is {limit})")
            }
            other => other.to_string(),
        }
    }

    /// Move a position-carrying error down by `lines` and, on its first line, right by
    /// `columns` (for a statement that started inside a larger script).
    pub fn shifted(mut self, lines: usize, columns: usize) -> Self {
        if let Error::Syntax { line, column, .. } | Error::TooLarge { line, column, .. } = &mut self
        {
            if *line == 1 {
                *column += columns;
            }
            *line += lines;
        }
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid { message: message.into() }
    }

    pub(crate) fn type_mismatch(message: impl Into<String>) -> Self {
        Error::TypeMismatch { message: message.into() }
    }
}

fn core_kind(e: &driftdb_core::Error) -> &'static str {
    use driftdb_core::Error as E;
    match e {
        E::NoSuchTable { .. } => "unknown_table",
        E::TableExists { .. } => "table_exists",
        E::DuplicateKey { .. } => "duplicate_key",
        E::KeyNotFound { .. } => "key_not_found",
        E::UniqueViolation(_) => "unique_violation",
        E::InvalidInput { .. } => "invalid_input",
        E::TooLarge { .. } => "too_large",
        E::FutureSeq { .. } => "future_seq",
        E::BeforeRetention { .. } => "before_retention",
        E::Conversion { .. } => "conversion",
        E::Locked { .. } => "locked",
        E::Io { .. } => "io",
        E::Poisoned { .. } => "poisoned",
        E::Corrupt { .. } => "corrupt",
        E::UnsupportedVersion { .. } => "unsupported_version",
        E::NotADatabase { .. } => "not_a_database",
        E::Conflict { .. } => "conflict",
        E::KeyRequired { .. } => "key_required",
        E::WrongKey { .. } => "wrong_key",
        E::NotEncrypted { .. } => "not_encrypted",
        E::BadKey { .. } => "bad_key",
        _ => "storage",
    }
}

impl From<driftdb_core::Error> for Error {
    fn from(e: driftdb_core::Error) -> Self {
        use driftdb_core::Error as E;
        match e {
            E::NoSuchTable { table } => Error::UnknownTable { table },
            E::TableExists { table } => Error::TableExists { table },
            E::DuplicateKey { table, key } => Error::DuplicateKey { table, key },
            E::KeyNotFound { table, key } => Error::KeyNotFound { table, key },
            // A unique violation keeps the core error (kind `unique_violation`): its message
            // is already written for DriftQL users.
            E::FutureSeq { requested, latest } => Error::FutureSeq { requested, latest },
            other => Error::Core(other),
        }
    }
}
