//! Writing documents as a data file. JSON is an array with one compact document per line;
//! NDJSON is one compact document per line; CSV has a header of every top-level field found
//! (the primary key first, then in order of first appearance) and cells written as in
//! [`crate::records`] (strings bare, other values as JSON, absent fields empty).

use std::io::{self, Write};

use driftdb_core::Value;

use crate::args::DataFormat;
use crate::output::cell_text;

/// Write `docs` to `out` in `format`.
pub fn write_docs(
    out: &mut impl Write,
    format: DataFormat,
    docs: &[Value],
    primary_key: &str,
) -> io::Result<()> {
    match format {
        DataFormat::Json => {
            if docs.is_empty() {
                return writeln!(out, "[]");
            }
            writeln!(out, "[")?;
            for (i, doc) in docs.iter().enumerate() {
                let comma = if i + 1 < docs.len() { "," } else { "" };
                writeln!(out, "{}{comma}", serde_json::Value::from(doc))?;
            }
            writeln!(out, "]")
        }
        DataFormat::Ndjson => {
            for doc in docs {
                writeln!(out, "{}", serde_json::Value::from(doc))?;
            }
            Ok(())
        }
        DataFormat::Csv => {
            let mut columns: Vec<String> = vec![primary_key.to_string()];
            for doc in docs {
                for name in doc.as_map().into_iter().flat_map(|m| m.keys()) {
                    if !columns.contains(name) {
                        columns.push(name.clone());
                    }
                }
            }
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&columns).map_err(io::Error::other)?;
            for doc in docs {
                w.write_record(
                    columns.iter().map(|c| doc.get(c).map(cell_text).unwrap_or_default()),
                )
                .map_err(io::Error::other)?;
            }
            w.flush()
        }
    }
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
            write_docs(&mut out, format, &docs(), "id").unwrap();
            let text = String::from_utf8(out).unwrap();
            let back: Vec<Value> =
                records(&text, format).unwrap().into_iter().map(|r| r.doc.unwrap()).collect();
            assert_eq!(back, docs(), "{format:?}: {text}");
        }
    }

    #[test]
    fn csv_header_starts_with_the_primary_key() {
        let mut out = Vec::new();
        write_docs(&mut out, DataFormat::Csv, &docs(), "id").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().next().unwrap(), "id,n,note,tags,extra,f,ok");
        let mut out = Vec::new();
        write_docs(&mut out, DataFormat::Json, &[], "id").unwrap();
        assert_eq!(out, b"[]\n");
    }
}
