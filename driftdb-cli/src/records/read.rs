//! Reading documents from a data file. Every record is read before anything is written, each
//! with its record number and line, so a bad one is reported precisely; a record that does
//! not parse is kept as an error in its place, and the importer stops there.

use driftdb_core::{Map, Value};

use crate::args::DataFormat;

/// One record of a data file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based number of the record in the file.
    pub number: usize,
    /// 1-based line where it starts, when the format has lines.
    pub line: Option<usize>,
    /// The document, or why the record is not one.
    pub doc: Result<Value, String>,
}

/// Why a whole file cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct FileError {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub line: Option<usize>,
}

/// Read every record of `text` in `format`.
pub fn records(text: &str, format: DataFormat) -> Result<Vec<Record>, FileError> {
    match format {
        DataFormat::Json => json_array(text),
        DataFormat::Ndjson => Ok(ndjson(text)),
        DataFormat::Csv => csv(text),
    }
}

fn object(value: serde_json::Value) -> Result<Value, String> {
    match value {
        serde_json::Value::Object(_) => Ok(Value::from(value)),
        other => Err(format!("expected a JSON object, found {}", kind_of(&other))),
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn json_array(text: &str) -> Result<Vec<Record>, FileError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| FileError {
        message: format!("the file is not valid JSON: {e}"),
        line: Some(e.line()),
    })?;
    let serde_json::Value::Array(items) = value else {
        return Err(FileError {
            message: format!(
                "expected a JSON array of objects, found {}; for one object per line use --format ndjson",
                kind_of(&value)
            ),
            line: Some(1),
        });
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| Record { number: i + 1, line: None, doc: object(item) })
        .collect())
}

fn ndjson(text: &str) -> Vec<Record> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .enumerate()
        .map(|(number, (line_index, line))| Record {
            number: number + 1,
            line: Some(line_index + 1),
            doc: serde_json::from_str(line)
                .map_err(|e| format!("not valid JSON: {e}"))
                .and_then(object),
        })
        .collect()
}

/// The value a CSV cell stands for; `None` for an empty cell (the field is absent).
pub fn infer_cell(text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    Some(match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => {
            if let Ok(i) = text.parse::<i64>() {
                Value::Int(i)
            } else if looks_like_float(text)
                && let Some(f) = text.parse::<f64>().ok().filter(|f| f.is_finite())
            {
                Value::Float(f)
            } else if (text.starts_with('{') || text.starts_with('['))
                && let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
            {
                Value::from(json)
            } else {
                Value::String(text.into())
            }
        }
    })
}

/// Digits with an optional sign, point and exponent (Rust would also parse `inf` and `NaN`).
fn looks_like_float(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
}

fn csv(text: &str) -> Result<Vec<Record>, FileError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| FileError {
            message: format!("cannot read the CSV header: {e}"),
            line: Some(1),
        })?
        .clone();
    if let Some(dup) =
        headers.iter().enumerate().find_map(|(i, h)| headers.iter().skip(i + 1).find(|o| *o == h))
    {
        return Err(FileError {
            message: format!("the CSV header names field {dup:?} twice"),
            line: Some(1),
        });
    }
    if headers.iter().any(str::is_empty) {
        return Err(FileError {
            message: "the CSV header has an empty field name".into(),
            line: Some(1),
        });
    }
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let number = i + 1;
        let record = match row {
            Ok(row) => {
                let line = row.position().map(|p| p.line() as usize);
                let map: Map = headers
                    .iter()
                    .zip(row.iter())
                    .filter_map(|(name, cell)| infer_cell(cell).map(|v| (name.into(), v)))
                    .collect();
                Record { number, line, doc: Ok(Value::Map(map)) }
            }
            Err(e) => Record {
                number,
                line: e.position().map(|p| p.line() as usize),
                doc: Err(format!("not a valid CSV row: {e}")),
            },
        };
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_cells_are_typed_by_their_text() {
        assert_eq!(infer_cell(""), None);
        assert_eq!(infer_cell("42"), Some(Value::Int(42)));
        assert_eq!(infer_cell("-7"), Some(Value::Int(-7)));
        assert_eq!(infer_cell("1.5"), Some(Value::Float(1.5)));
        assert_eq!(infer_cell("2e3"), Some(Value::Float(2000.0)));
        assert_eq!(infer_cell("true"), Some(Value::Bool(true)));
        assert_eq!(infer_cell("null"), Some(Value::Null));
        assert_eq!(infer_cell("inf"), Some(Value::String("inf".into())));
        assert_eq!(infer_cell("NaN"), Some(Value::String("NaN".into())));
        assert_eq!(infer_cell("1-2"), Some(Value::String("1-2".into())));
        assert_eq!(infer_cell("[1,\"a\"]"), Some(Value::from(json!([1, "a"]))));
        assert_eq!(infer_cell("[not json"), Some(Value::String("[not json".into())));
        assert_eq!(infer_cell("99999999999999999999"), Some(Value::Float(1e20)));
    }

    #[test]
    fn csv_rows_know_their_lines() {
        let recs = records("id,n,tags\na,1,\n\"b\nc\",2,\"[1]\"\nd,x\n", DataFormat::Csv).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].doc, Ok(Value::from(json!({"id": "a", "n": 1}))));
        assert_eq!(recs[1].doc, Ok(Value::from(json!({"id": "b\nc", "n": 2, "tags": [1]}))));
        assert_eq!(recs[1].line, Some(3));
        assert!(recs[2].doc.is_err());
        assert_eq!(recs[2].line, Some(5));
        assert!(records("id,id\n1,2\n", DataFormat::Csv).is_err());
    }

    #[test]
    fn ndjson_skips_blank_lines_and_keeps_line_numbers() {
        let recs = records("{\"id\":1}\n\n  \n[1]\n{bad\n", DataFormat::Ndjson).unwrap();
        assert_eq!(
            recs.iter().map(|r| (r.number, r.line)).collect::<Vec<_>>(),
            [(1, Some(1)), (2, Some(4)), (3, Some(5))]
        );
        assert!(recs[0].doc.is_ok());
        assert_eq!(recs[1].doc, Err("expected a JSON object, found an array".into()));
        assert!(recs[2].doc.as_ref().unwrap_err().starts_with("not valid JSON"));
    }

    #[test]
    fn json_arrays_number_their_records() {
        let recs = records("[{\"id\": 1}, 5]", DataFormat::Json).unwrap();
        assert_eq!(recs[1].number, 2);
        assert!(recs[1].doc.is_err());
        let err = records("{\"id\": 1}", DataFormat::Json).unwrap_err();
        assert!(err.message.contains("ndjson"), "{}", err.message);
        let err = records("[\n{\"id\": 1},\n{oops}]", DataFormat::Json).unwrap_err();
        assert_eq!(err.line, Some(3));
    }
}
