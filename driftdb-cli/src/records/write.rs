//! Writing documents as a data file. JSON is an array with one compact document per line;
//! NDJSON is one compact document per line; CSV has a header of every top-level field found
//! (the primary key first, then in order of first appearance) and cells written as in
//! [`crate::records`] (strings bare, other values as JSON, absent fields empty).

use std::io::{self, Write};

use driftdb_core::Value;

use crate::args::DataFormat;
use crate::output::cell_text;

/// Why writing documents stopped: the documents' source failed, or the output did.
#[derive(Debug)]
pub enum WriteError<E> {
    /// The source of the documents (a streamed scan) failed.
    Source(E),
    /// Writing the output failed.
    Io(io::Error),
}

impl<E> From<io::Error> for WriteError<E> {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// Write the documents `open()` yields to `out` in `format`, one at a time, and return how
/// many were written. CSV calls `open` twice: once to collect the header's field names, once to
/// write the rows; so neither needs the documents in memory at once.
pub fn write_docs<I, E>(
    out: &mut impl Write,
    format: DataFormat,
    open: impl Fn() -> Result<I, E>,
    primary_key: &str,
) -> Result<u64, WriteError<E>>
where
    I: Iterator<Item = Result<Value, E>>,
{
    let mut count = 0u64;
    match format {
        DataFormat::Json => {
            for doc in open().map_err(WriteError::Source)? {
                let doc = doc.map_err(WriteError::Source)?;
                let lead = if count == 0 { "[\n" } else { ",\n" };
                write!(out, "{lead}{}", serde_json::Value::from(&doc))?;
                count += 1;
            }
            writeln!(out, "{}", if count == 0 { "[]" } else { "\n]" })?;
        }
        DataFormat::Ndjson => {
            for doc in open().map_err(WriteError::Source)? {
                let doc = doc.map_err(WriteError::Source)?;
                writeln!(out, "{}", serde_json::Value::from(&doc))?;
                count += 1;
            }
        }
        DataFormat::Csv => {
            let mut columns: Vec<String> = vec![primary_key.to_string()];
            for doc in open().map_err(WriteError::Source)? {
                let doc = doc.map_err(WriteError::Source)?;
                for name in doc.as_map().into_iter().flat_map(|m| m.keys()) {
                    if !columns.iter().any(|c| c == name) {
                        columns.push(name.to_string());
                    }
                }
            }
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&columns).map_err(io::Error::other)?;
            for doc in open().map_err(WriteError::Source)? {
                let doc = doc.map_err(WriteError::Source)?;
                w.write_record(
                    columns.iter().map(|c| doc.get(c).map(cell_text).unwrap_or_default()),
                )
                .map_err(io::Error::other)?;
                count += 1;
            }
            w.flush()?;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::read::records;
    use serde_json::json;

    fn docs() -> Vec<Value> {
        vec![
            Value::from(json!({"id": "a", "n": 1, "tags": ["x", "y"], "note": "hi, there"})),
            Value::from(json!({"id": "b", "extra": null, "f": 2.5, "ok": true})),
        ]
    }

    #[test]
    fn every_format_reads_back_the_same_documents() {
        for format in [DataFormat::Json, DataFormat::Ndjson, DataFormat::Csv] {
            let mut out = Vec::new();
            write_docs(&mut out, format, || Ok::<_, ()>(docs().into_iter().map(Ok)), "id").unwrap();
            let text = String::from_utf8(out).unwrap();
            let back: Vec<Value> =
                records(&text, format).unwrap().into_iter().map(|r| r.doc.unwrap()).collect();
            assert_eq!(back, docs(), "{format:?}: {text}");
        }
    }

    #[test]
    fn csv_header_starts_with_the_primary_key() {
        let mut out = Vec::new();
        write_docs(&mut out, DataFormat::Csv, || Ok::<_, ()>(docs().into_iter().map(Ok)), "id")
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().next().unwrap(), "id,n,note,tags,extra,f,ok");
        let mut out = Vec::new();
        let none = || Ok::<_, ()>(std::iter::empty());
        assert_eq!(write_docs(&mut out, DataFormat::Json, none, "id").unwrap(), 0);
        assert_eq!(out, b"[]\n");
    }
}
