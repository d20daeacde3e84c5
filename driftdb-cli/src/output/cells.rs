//! How one value is written in a table or CSV cell: a string as its text, anything else
//! (numbers, booleans, `null`, arrays, maps) as compact JSON. An absent field is an empty cell.

use driftdb_core::Value;

/// The cell text of a document value.
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => serde_json::Value::from(other).to_string(),
    }
}

/// The cell text of a JSON value.
pub fn json_cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_bare_everything_else_is_compact_json() {
        assert_eq!(cell_text(&Value::String("a b".into())), "a b");
        assert_eq!(cell_text(&Value::Int(-3)), "-3");
        assert_eq!(cell_text(&Value::Float(1.5)), "1.5");
        assert_eq!(cell_text(&Value::Null), "null");
        assert_eq!(
            cell_text(&Value::from(json!({"a": [1, {"b": true}]}))),
            r#"{"a":[1,{"b":true}]}"#
        );
        assert_eq!(json_cell_text(&json!("x")), "x");
        assert_eq!(json_cell_text(&json!([1, "x"])), r#"[1,"x"]"#);
    }
}
