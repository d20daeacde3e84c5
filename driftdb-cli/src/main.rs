//! The `driftdb` command: a database's command-line tool and interactive shell.
//!
//! `main` parses the command line (clap exits with code 2 on a usage error), runs the
//! subcommand, prints its result on standard output in the chosen format, and reports a
//! failure on standard error with exit code 1 (2 for a usage error found after parsing).

mod args;
mod commands;
mod error;
mod files;
mod output;
mod progress;
mod records;
mod repl;
mod script;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, OutputArgs};
use error::{CliError, CliResult, report};
use output::{Printer, default_format};

fn run(cli: Cli, format: args::OutputFormat) -> CliResult {
    let mut printer = Printer::stdout(format);
    commands::keys::set_key_file(cli.key_file);
    let Some(command) = cli.command else {
        return match cli.dir {
            Some(dir) => repl::run(&dir, format),
            None => Err(CliError::Usage(
                "nothing to do: give a command (see `driftdb --help`), or `-d DIR` for the shell"
                    .into(),
            )),
        };
    };
    if cli.dir.is_some() {
        return Err(CliError::Usage(
            "-d DIR goes after the command (driftdb sql -d DIR ...); before it, it starts the shell"
                .into(),
        ));
    }
    match command {
        Command::Init { dir, encrypt, .. } => commands::basic::init(&dir, encrypt, &mut printer),
        Command::Rekey { db, new_key_file, .. } => {
            commands::keys::rekey(&db.dir, new_key_file.as_deref(), &mut printer)
        }
        Command::Tables { db, as_of, .. } => commands::basic::tables(&db.dir, &as_of, &mut printer),
        Command::Import(a) => commands::import::run(&a, &mut printer),
        Command::Export(a) => commands::export::run(&a, &mut printer),
        Command::Verify { db, .. } => commands::verify::run(&db.dir, &mut printer),
        Command::Inspect { path, .. } => commands::inspect::run(&path, &mut printer),
        Command::Stats { db, .. } => commands::stats::run(&db.dir, &mut printer),
        Command::Migrate { db, migrations, status, .. } => {
            let migrations = migrations.unwrap_or_else(|| db.dir.join("migrations"));
            commands::migrate::run(&db.dir, &migrations, status, &mut printer)
        }
        Command::Backup { db, to, base, .. } => {
            commands::backup::backup(&db.dir, &to, base.as_deref(), &mut printer)
        }
        Command::Restore { from, to, as_of, .. } => {
            commands::backup::restore(&from, &to, as_of.as_deref(), &mut printer)
        }
        Command::VerifyBackup { path, .. } => commands::backup::verify(&path, &mut printer),
        Command::Sql(a) => commands::sql::run(&a, printer),
        Command::Select(a) => commands::query::select(&a, &mut printer),
        Command::Drift(a) => commands::query::drift(&a, &mut printer),
        Command::Snapshot(a) => commands::query::maintain(&a, false, &mut printer),
        Command::Compact(a) => commands::query::maintain(&a, true, &mut printer),
        Command::Repl { db, .. } => repl::run(&db.dir, format),
    }
}

/// The `--format` given after the subcommand, if any.
fn sub_format(command: Option<&Command>) -> Option<args::OutputFormat> {
    let output: &OutputArgs = match command? {
        Command::Init { output, .. }
        | Command::Rekey { output, .. }
        | Command::Tables { output, .. }
        | Command::Repl { output, .. }
        | Command::Verify { output, .. }
        | Command::Inspect { output, .. }
        | Command::Stats { output, .. }
        | Command::Migrate { output, .. }
        | Command::Backup { output, .. }
        | Command::Restore { output, .. }
        | Command::VerifyBackup { output, .. } => output,
        Command::Sql(a) => &a.output,
        Command::Select(a) => &a.output,
        Command::Drift(a) => &a.output,
        Command::Snapshot(a) | Command::Compact(a) => &a.output,
        Command::Import(_) | Command::Export(_) => return None,
    };
    output.format
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = sub_format(cli.command.as_ref()).or(cli.format).unwrap_or_else(default_format);
    match run(cli, format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, format);
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
