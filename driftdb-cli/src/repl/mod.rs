//! The interactive shell (`driftdb repl -d DIR`, or `driftdb -d DIR`).
//!
//! Lines are read with rustyline and fed to the same [`Runner`] `sql` uses, so a statement
//! runs when its `;` is typed and may span lines; the prompt changes while one is being
//! continued (`...>`) and while a transaction is open (`driftdb*>`). A line starting with `\`
//! when no statement is being typed is a meta command ([`meta`]). Errors are printed and the
//! shell goes on. Ctrl-C abandons the statement being typed; Ctrl-D (or `\q`) leaves, rolling
//! back an open transaction with a notice. Every line typed is kept in the history file
//! `$DRIFTDB_HISTORY` (default `~/.driftdb_history`).

mod complete;
mod meta;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use driftdb_ql::ast::Statement;
use rustyline::Editor;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;

use crate::args::OutputFormat;
use crate::error::{CliError, CliResult, report};
use crate::output::Printer;
use crate::script::Runner;
use complete::ReplHelper;
use meta::Meta;

/// The history file: `$DRIFTDB_HISTORY`, else `~/.driftdb_history`, else none.
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DRIFTDB_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(".driftdb_history"))
}

fn prompt(in_transaction: bool, continuing: bool) -> &'static str {
    match (in_transaction, continuing) {
        (false, false) => "driftdb> ",
        (true, false) => "driftdb*> ",
        (false, true) => "     ...> ",
        (true, true) => "    *...> ",
    }
}

/// Show a statement error without the script framing (the statement is on screen).
fn show(error: CliError, format: OutputFormat) {
    let error = match error {
        CliError::Statement { error, .. } => CliError::Ql(error),
        other => other,
    };
    report(&error, format);
}

/// Run the shell on the database in `dir`.
pub fn run(dir: &Path, format: OutputFormat) -> CliResult {
    let db = crate::commands::open(dir)?;
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<ReplHelper<'_>, FileHistory> = Editor::with_config(config)
        .map_err(|e| CliError::Usage(format!("cannot start the shell: {e}")))?;
    editor.set_helper(Some(ReplHelper::new(&db)));
    let history = history_path();
    if let Some(path) = &history
        && path.exists()
        && let Err(e) = editor.load_history(path)
    {
        eprintln!("driftdb: cannot read the history file {}: {e}", path.display());
    }
    if std::io::stdin().is_terminal() {
        println!(
            "DriftDB shell on {}. Statements end with `;`. \\help for help, \\q or Ctrl-D to leave.",
            dir.display()
        );
    }
    let mut runner = Runner::new(&db, Printer::stdout(format));
    loop {
        let continuing = runner.has_pending();
        let line = match editor.readline(prompt(runner.in_transaction(), continuing)) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                runner.discard_pending();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                save_history(&mut editor, history.as_deref());
                return Err(CliError::Usage(format!("cannot read the terminal: {e}")));
            }
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        if !continuing {
            runner.restart_position();
        }
        if !continuing && line.trim_start().starts_with('\\') {
            match meta::parse(line.trim()) {
                Ok(Meta::Quit) => break,
                Ok(m) => meta_command(m, &mut runner),
                Err(message) => report(&CliError::Usage(message), runner.printer.format()),
            }
        } else {
            let mut text = format!("{line}\n");
            loop {
                match runner.feed(&text) {
                    Ok(_) => break,
                    Err(e) => show(e, runner.printer.format()),
                }
                text.clear();
            }
        }
        if let Some(helper) = editor.helper() {
            helper.refresh(runner.tables());
        }
    }
    save_history(&mut editor, history.as_deref());
    if runner.in_transaction() {
        eprintln!("driftdb: the open transaction was rolled back (it was not committed)");
    }
    drop(runner);
    db.close()?;
    Ok(())
}

fn save_history(editor: &mut Editor<ReplHelper<'_>, FileHistory>, path: Option<&Path>) {
    if let Some(path) = path
        && let Err(e) = editor.save_history(path)
    {
        eprintln!("driftdb: cannot write the history file {}: {e}", path.display());
    }
}

fn meta_command(m: Meta, runner: &mut Runner<'_, std::io::Stdout>) {
    let format = runner.printer.format();
    let statement = match m {
        Meta::Help => {
            let _ = runner.printer.line(meta::HELP);
            return;
        }
        Meta::Tables => Statement::ShowTables { as_of: None },
        Meta::Describe(table) => Statement::Describe { table, as_of: None },
        Meta::Timing(on) => {
            runner.timing = on.unwrap_or(!runner.timing);
            let _ =
                runner.printer.line(if runner.timing { "Timing is on." } else { "Timing is off." });
            return;
        }
        Meta::Format(None) => {
            let _ =
                runner.printer.line(&format!("Output format is {}.", meta::format_name(format)));
            return;
        }
        Meta::Format(Some(f)) => {
            runner.printer.set_format(f);
            let _ = runner.printer.line(&format!("Output format is {}.", meta::format_name(f)));
            return;
        }
        Meta::Quit => return,
    };
    if let Err(e) = runner.run_statement(&statement) {
        show(e, format);
    }
}
