//! `driftdb export -d DIR --table T [--as-of WHEN] [--format F] [-o FILE]`: every live
//! document of a table, now or at a point of history, in primary-key order.
//!
//! To a file, the data is written to `FILE.tmp`, fsynced and renamed over FILE, so FILE is
//! either the old content or the whole export; a one-line summary is then printed. Without
//! `-o` the data itself goes to standard output.

use std::io::Write;
use std::path::{Path, PathBuf};

use driftdb_core::{AsOf, Value};
use driftdb_ql::{Done, Outcome};

use crate::args::{DataFormat, ExportArgs};
use crate::error::{CliError, CliResult};
use crate::output::Printer;
use crate::records::{self, write::write_docs};

/// Run `export`.
pub fn run(args: &ExportArgs, printer: &mut Printer<impl Write>) -> CliResult {
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(records::from_extension))
        .unwrap_or(DataFormat::Json);
    let as_of = match &args.as_of {
        Some(text) => driftdb_ql::parse_as_of(text)?,
        None => AsOf::Now,
    };
    let db = super::open(&args.db.dir)?;
    let snap = db.read(as_of)?;
    let primary_key = snap.schema(&args.table)?.primary_key;
    let docs: Vec<Value> = snap.scan(&args.table, |_| true)?.into_iter().map(|r| r.doc).collect();
    let seq = snap.seq();
    let unix_ms = snap.unix_ms();
    db.close()?;
    match &args.output {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            write_docs(&mut out, format, &docs, &primary_key)
                .and_then(|()| out.flush())
                .map_err(|e| CliError::io("write", Path::new("standard output"), e))
        }
        Some(path) => {
            write_file(path, |out| write_docs(out, format, &docs, &primary_key))?;
            let outcome = Outcome::Done(Done {
                statement: "EXPORT",
                message: format!(
                    "exported {} row(s) of {} at seq {seq} to {}",
                    docs.len(),
                    args.table,
                    path.display()
                ),
                committed: None,
                details: vec![
                    ("table".into(), Value::String(args.table.clone())),
                    ("rows".into(), Value::Int(docs.len() as i64)),
                    ("read_seq".into(), Value::Int(seq as i64)),
                    ("read_time".into(), Value::String(driftdb_ql::format_unix_ms(unix_ms))),
                    ("file".into(), Value::String(path.display().to_string())),
                    ("format".into(), Value::String(records::name(format).into())),
                ],
            });
            printer
                .outcome(&outcome)
                .map_err(|e| CliError::io("write", Path::new("standard output"), e))
        }
    }
}

/// Write a file atomically: `path.tmp`, fsync, rename.
fn write_file(
    path: &Path,
    body: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> CliResult {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let file = std::fs::File::create(&tmp).map_err(|e| CliError::io("create", &tmp, e))?;
    let mut out = std::io::BufWriter::new(file);
    let written = body(&mut out)
        .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::io("write", &tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| CliError::io("rename", path, e))
}
