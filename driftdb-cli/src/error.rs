//! The CLI's one error type, and how an error is reported: on standard error, as the
//! `Display` text (with the caret under a syntax error), or with `--format json` as
//! `{"error": {"kind", "message", "line", "column"}}`. Exit codes: 1 when something failed,
//! 2 for a usage error.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::args::OutputFormat;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A statement, or an engine call made for a command, failed.
    #[error("{0}")]
    Ql(#[from] driftdb_ql::Error),
    /// A statement of a script failed; the statements before it ran.
    #[error("statement {index} (line {line}) failed: {error}{}", rolled_back_note(*rolled_back))]
    Statement {
        /// 1-based number of the statement in the script.
        index: usize,
        /// 1-based line where it starts.
        line: usize,
        /// What went wrong.
        error: driftdb_ql::Error,
        /// Whether an open transaction was rolled back because of it.
        rolled_back: bool,
    },
    /// The directory holds no database.
    #[error("no database at {}: run `driftdb init {}` to create one", dir.display(), dir.display())]
    NoDatabase {
        /// The directory asked for.
        dir: PathBuf,
    },
    /// Input data (an import file, a CSV cell, an option value) that cannot be used.
    #[error("{message}")]
    Input {
        /// What is wrong, where, and what to do.
        message: String,
        /// The 1-based line of the input it points at, when it points at one.
        line: Option<usize>,
    },
    /// A record of an import file was refused.
    #[error("{message}")]
    Record {
        /// The kind of the underlying error (`duplicate_key`, `invalid_input`, ...).
        kind: &'static str,
        /// The 1-based line of the record, when the format has lines.
        line: Option<usize>,
        /// Which record, why, and what was committed.
        message: String,
    },
    /// The options do not make sense together (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// `verify` or `inspect` found damage (the report itself went to standard output).
    #[error("{0}")]
    Damaged(String),
}

fn rolled_back_note(rolled_back: bool) -> &'static str {
    if rolled_back { "\n(the open transaction was rolled back)" } else { "" }
}

/// Shorthand for results of the CLI.
pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    /// A stable name of the error's kind, for programs.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::Ql(e) | CliError::Statement { error: e, .. } => e.kind(),
            CliError::NoDatabase { .. } => "not_a_database",
            CliError::Input { .. } => "invalid_input",
            CliError::Record { kind, .. } => kind,
            CliError::Usage(_) => "usage",
            CliError::Io { .. } => "io",
            CliError::Damaged(_) => "corrupt",
        }
    }

    /// The line and column the error points at, when it points at text.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            CliError::Ql(e) | CliError::Statement { error: e, .. } => e.position(),
            _ => None,
        }
    }

    /// The message on one line (no caret display).
    pub fn message(&self) -> String {
        match self {
            CliError::Ql(e) => e.message(),
            CliError::Statement { index, line, error, rolled_back } => {
                let note =
                    if *rolled_back { " (the open transaction was rolled back)" } else { "" };
                format!("statement {index} (line {line}) failed: {}{note}", error.message())
            }
            other => other.to_string(),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Ql(driftdb_ql::Error::Core(e)) if e.is_key_error() => 3,
            _ => 1,
        }
    }

    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> CliError {
        CliError::Io { action, path: path.to_path_buf(), source }
    }

    /// The error as the JSON object printed with `--format json`.
    pub fn to_json(&self) -> serde_json::Value {
        let (line, column) = match self.position() {
            Some((l, c)) => (serde_json::Value::from(l), serde_json::Value::from(c)),
            None => match self {
                CliError::Input { line: Some(l), .. } | CliError::Record { line: Some(l), .. } => {
                    (serde_json::Value::from(*l), serde_json::Value::Null)
                }
                _ => (serde_json::Value::Null, serde_json::Value::Null),
            },
        };
        let mut error = serde_json::json!({
            "kind": self.kind(),
            "message": self.message(),
            "line": line,
            "column": column,
        });
        if let (CliError::Statement { index, line, .. }, Some(object)) =
            (self, error.as_object_mut())
        {
            object.insert("statement".into(), (*index).into());
            object.insert("statement_line".into(), (*line).into());
        }
        serde_json::json!({ "error": error })
    }
}

impl From<driftdb_core::Error> for CliError {
    fn from(e: driftdb_core::Error) -> Self {
        CliError::Ql(driftdb_ql::Error::from(e))
    }
}

/// Write `error` to standard error in the way `format` asks.
pub fn report(error: &CliError, format: OutputFormat) {
    let mut stderr = std::io::stderr().lock();
    let _ = match format {
        OutputFormat::Json | OutputFormat::Ndjson => writeln!(stderr, "{}", error.to_json()),
        OutputFormat::Table | OutputFormat::Csv => writeln!(stderr, "driftdb: {error}"),
    };
}

/// Write a warning or notice to standard error (as `{"warning": ...}` in JSON formats).
pub fn warn(message: &str, format: OutputFormat) {
    let mut stderr = std::io::stderr().lock();
    let _ = match format {
        OutputFormat::Json | OutputFormat::Ndjson => {
            writeln!(stderr, "{}", serde_json::json!({ "warning": message }))
        }
        OutputFormat::Table | OutputFormat::Csv => writeln!(stderr, "driftdb: {message}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax() -> driftdb_ql::Error {
        driftdb_ql::parse_as_of("@seq:x").unwrap_err()
    }

    #[test]
    fn json_shape_has_position_when_the_error_has_one() {
        let e = CliError::Ql(syntax());
        let json = e.to_json();
        assert_eq!(json["error"]["kind"], "syntax");
        assert_eq!(json["error"]["line"], 1);
        assert_eq!(json["error"]["column"], 6);
        assert!(!json["error"]["message"].as_str().unwrap().contains('\n'));
        let e = CliError::NoDatabase { dir: "x".into() };
        let json = e.to_json();
        assert_eq!(json["error"]["kind"], "not_a_database");
        assert!(json["error"]["line"].is_null());
        assert!(json["error"]["column"].is_null());
        assert_eq!(
            json["error"]["message"],
            "no database at x: run `driftdb init x` to create one"
        );
    }

    #[test]
    fn statement_errors_say_where() {
        let e = CliError::Statement { index: 2, line: 3, error: syntax(), rolled_back: true };
        assert!(e.to_string().contains('^'), "{e}");
        assert!(e.message().starts_with("statement 2 (line 3) failed: syntax error"));
        assert!(e.message().ends_with("(the open transaction was rolled back)"));
        assert_eq!(e.to_json()["error"]["statement"], 2);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
    }
}
