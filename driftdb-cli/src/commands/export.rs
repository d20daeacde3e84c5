//! `driftdb export -d DIR --table T [--as-of WHEN] [--format F] [-o FILE]`: every live
//! document of a table, now or at a point of history, in primary-key order.
//!
//! To a file, the data is written to `FILE.tmp`, fsynced and renamed over FILE, so FILE is
//! either the old content or the whole export; a one-line summary is then printed. Without
//! `-o` the data itself goes to standard output.
//!
//! The rows are streamed (`Database::scan_stream`: the nearest snapshot at or before the seq,
//! then the segment events after it), and written one at a time; a CSV export reads the
//! stream twice (once for the header's field names). So the export never holds the table.

use std::io::Write;
use std::path::{Path, PathBuf};

use driftdb_core::{AsOf, Value};
use driftdb_ql::{Done, Outcome};

use crate::args::{DataFormat, ExportArgs};
use crate::error::{CliError, CliResult};
use crate::output::Printer;
use crate::records::{
    self,
    write::{WriteError, write_docs},
};

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
    let seq = snap.seq();
    let unix_ms = snap.unix_ms();
    // The rows are streamed from the nearest snapshot and the segment events after it, one
    // block at a time (`Database::scan_stream`): the table need not fit in memory.
    let open = || {
        db.scan_stream(&args.table, AsOf::Seq(seq)).map(|rows| rows.map(|row| row.map(|r| r.doc)))
    };
    let Some(path) = &args.output else {
        let stdout = Path::new("standard output");
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        write_docs(&mut out, format, open, &primary_key).map_err(|e| write_error(e, stdout))?;
        out.flush().map_err(|e| CliError::io("write", stdout, e))?;
        return Ok(db.close()?);
    };
    let written = write_file(path, |out| write_docs(out, format, open, &primary_key))?;
    db.close()?;
    let outcome = Outcome::Done(Done {
        statement: "EXPORT",
        message: format!(
            "exported {written} row(s) of {} at seq {seq} to {}",
            args.table,
            path.display()
        ),
        committed: None,
        details: vec![
            ("table".into(), Value::String(args.table.as_str().into())),
            ("rows".into(), Value::Int(i64::try_from(written).unwrap_or(i64::MAX))),
            ("read_seq".into(), Value::Int(seq as i64)),
            ("read_time".into(), Value::String(driftdb_ql::format_unix_ms(unix_ms).into())),
            ("file".into(), Value::String(path.display().to_string().into())),
            ("format".into(), Value::String(records::name(format).into())),
        ],
    });
    printer.outcome(&outcome).map_err(|e| CliError::io("write", Path::new("standard output"), e))
}

fn write_error(e: WriteError<driftdb_core::Error>, path: &Path) -> CliError {
    match e {
        WriteError::Source(e) => e.into(),
        WriteError::Io(e) => CliError::io("write", path, e),
    }
}

/// Write a file atomically: `path.tmp`, fsync, rename. Returns what `body` returns.
fn write_file(
    path: &Path,
    body: impl FnOnce(
        &mut std::io::BufWriter<std::fs::File>,
    ) -> Result<u64, WriteError<driftdb_core::Error>>,
) -> CliResult<u64> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let file = std::fs::File::create(&tmp).map_err(|e| CliError::io("create", &tmp, e))?;
    let mut out = std::io::BufWriter::new(file);
    let written = body(&mut out).and_then(|count| {
        let file = out.into_inner().map_err(|e| WriteError::Io(e.into_error()))?;
        file.sync_all().map_err(WriteError::Io)?;
        Ok(count)
    });
    let count = match written {
        Ok(count) => count,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(write_error(e, &tmp));
        }
    };
    std::fs::rename(&tmp, path).map_err(|e| CliError::io("rename", path, e))?;
    Ok(count)
}
