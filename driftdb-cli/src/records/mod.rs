//! Data files for `import` and `export`: a JSON array of objects, NDJSON (one object per
//! line), or CSV (a header row of field names, then one row per document).
//!
//! CSV cells are typed on import by their text: an integer (`42`, `-7`), a float (`1.5`,
//! `2e3`), `true` / `false`, `null`, a JSON array or object (`[1,2]`, `{"a":1}`), and anything
//! else is a string; an empty cell means the field is absent. Export writes the same forms,
//! so a CSV export imports back to the same documents, except strings that look like one of
//! the other forms (the string `"42"` comes back as the integer 42). Use JSON or NDJSON when
//! that matters.

pub mod read;
pub mod write;

use std::path::Path;

use crate::args::DataFormat;

/// The format named by a file's extension: `.json`, `.ndjson` / `.jsonl`, `.csv`.
pub fn from_extension(path: &Path) -> Option<DataFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "json" => Some(DataFormat::Json),
        "ndjson" | "jsonl" => Some(DataFormat::Ndjson),
        "csv" => Some(DataFormat::Csv),
        _ => None,
    }
}

/// The name of a format, as `--format` spells it.
pub fn name(format: DataFormat) -> &'static str {
    match format {
        DataFormat::Json => "json",
        DataFormat::Ndjson => "ndjson",
        DataFormat::Csv => "csv",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(from_extension(Path::new("a/b.JSON")), Some(DataFormat::Json));
        assert_eq!(from_extension(Path::new("b.jsonl")), Some(DataFormat::Ndjson));
        assert_eq!(from_extension(Path::new("b.ndjson")), Some(DataFormat::Ndjson));
        assert_eq!(from_extension(Path::new("b.csv")), Some(DataFormat::Csv));
        assert_eq!(from_extension(Path::new("b.txt")), None);
        assert_eq!(from_extension(Path::new("-")), None);
    }
}
