//! The shell's meta commands: lines starting with `\` when no statement is being typed.

use crate::args::OutputFormat;

/// The text of `\help`.
pub const HELP: &str = "\
Statements end with `;` and may span lines. BEGIN ... COMMIT spans several statements;
the prompt shows `*` while a transaction is open.

  \\help, \\?            this help
  \\tables, \\dt         list the tables (SHOW TABLES)
  \\d TABLE             describe a table (DESCRIBE TABLE)
  \\timing [on|off]     print how long each statement takes
  \\format [FORMAT]     show or set the output format: table, json, ndjson, csv
  \\q, \\quit           leave (also Ctrl-D); an open transaction is rolled back

Ctrl-C abandons the statement being typed. Tab completes keywords, tables and fields.
History is kept in $DRIFTDB_HISTORY (default ~/.driftdb_history).";

/// A meta command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    /// `\help`.
    Help,
    /// `\tables`, `\dt`, or `\d` alone.
    Tables,
    /// `\d TABLE`.
    Describe(String),
    /// `\timing`, `\timing on`, `\timing off` (`None` toggles).
    Timing(Option<bool>),
    /// `\format` (`None` shows the current one).
    Format(Option<OutputFormat>),
    /// `\q`.
    Quit,
}

/// Parse a meta command line (it starts with `\`).
pub fn parse(line: &str) -> Result<Meta, String> {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or_default();
    let arg = words.next();
    if let Some(extra) = words.next() {
        return Err(format!("{command} takes at most one argument; {extra:?} is one too many"));
    }
    match (command, arg) {
        ("\\help" | "\\?" | "\\h", None) => Ok(Meta::Help),
        ("\\tables" | "\\dt" | "\\d", None) => Ok(Meta::Tables),
        ("\\d", Some(table)) => Ok(Meta::Describe(table.to_string())),
        ("\\timing", None) => Ok(Meta::Timing(None)),
        ("\\timing", Some("on")) => Ok(Meta::Timing(Some(true))),
        ("\\timing", Some("off")) => Ok(Meta::Timing(Some(false))),
        ("\\timing", Some(other)) => Err(format!("\\timing takes on or off, not {other:?}")),
        ("\\format", None) => Ok(Meta::Format(None)),
        ("\\format", Some(name)) => match name {
            "table" => Ok(Meta::Format(Some(OutputFormat::Table))),
            "json" => Ok(Meta::Format(Some(OutputFormat::Json))),
            "ndjson" => Ok(Meta::Format(Some(OutputFormat::Ndjson))),
            "csv" => Ok(Meta::Format(Some(OutputFormat::Csv))),
            other => Err(format!("unknown format {other:?}: use table, json, ndjson or csv")),
        },
        ("\\q" | "\\quit", None) => Ok(Meta::Quit),
        (other, _) => Err(format!("unknown command {other}; \\help lists the commands")),
    }
}

/// The name of a format.
pub fn format_name(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Table => "table",
        OutputFormat::Json => "json",
        OutputFormat::Ndjson => "ndjson",
        OutputFormat::Csv => "csv",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("\\?"), Ok(Meta::Help));
        assert_eq!(parse("\\dt"), Ok(Meta::Tables));
        assert_eq!(parse("\\d  users "), Ok(Meta::Describe("users".into())));
        assert_eq!(parse("\\timing off"), Ok(Meta::Timing(Some(false))));
        assert_eq!(parse("\\format csv"), Ok(Meta::Format(Some(OutputFormat::Csv))));
        assert_eq!(parse("\\q"), Ok(Meta::Quit));
        assert!(parse("\\format xml").unwrap_err().contains("table, json"));
        assert!(parse("\\zap").unwrap_err().contains("\\help"));
        assert!(parse("\\d a b").is_err());
    }
}
