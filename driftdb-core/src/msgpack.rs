//! A direct msgpack encoder for [`Value`] and [`Key`]: the bytes rmp-serde writes for the same
//! value (smallest integer form, f64 floats, str, bin, arrays, maps), without serde's
//! per-value dispatch. Documents are decoded with rmp-serde. Recursion is bounded: callers
//! check [`depth_exceeds`] first.

use std::io::Write;

use crate::error::{Error, Result};
use crate::value::{Key, Value};

fn failed(e: impl std::fmt::Display) -> Error {
    Error::Conversion { reason: format!("msgpack encoding failed: {e}") }
}

fn len32(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| failed("a string, array or map is longer than 2^32"))
}

/// Write `key` (nil when absent).
pub(crate) fn write_key<W: Write>(out: &mut W, key: Option<&Key>) -> Result<()> {
    match key {
        None => rmp::encode::write_nil(out).map_err(failed),
        Some(Key::Int(i)) => rmp::encode::write_sint(out, *i).map(drop).map_err(failed),
        Some(Key::Str(s)) => rmp::encode::write_str(out, s).map_err(failed),
    }
}

/// Write `value`.
pub(crate) fn write_value<W: Write>(out: &mut W, value: &Value) -> Result<()> {
    match value {
        Value::Null => rmp::encode::write_nil(out).map_err(failed),
        Value::Bool(b) => rmp::encode::write_bool(out, *b).map_err(failed),
        Value::Int(i) => rmp::encode::write_sint(out, *i).map(drop).map_err(failed),
        Value::Float(f) => rmp::encode::write_f64(out, *f).map_err(failed),
        Value::String(s) => rmp::encode::write_str(out, s).map_err(failed),
        Value::Bytes(b) => rmp::encode::write_bin(out, b).map_err(failed),
        Value::Array(items) => {
            rmp::encode::write_array_len(out, len32(items.len())?).map_err(failed)?;
            items.iter().try_for_each(|item| write_value(out, item))
        }
        Value::Map(map) => {
            rmp::encode::write_map_len(out, len32(map.len())?).map_err(failed)?;
            map.iter().try_for_each(|(k, v)| {
                rmp::encode::write_str(out, k).map_err(failed)?;
                write_value(out, v)
            })
        }
    }
}

/// Whether `value` nests arrays and maps more than `max` levels deep (a scalar is level 0).
/// Iterative, so any input is safe.
pub(crate) fn depth_exceeds(value: &Value, max: usize) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((v, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Map(map) => Box::new(map.values()),
            _ => continue,
        };
        if level + 1 > max {
            return true;
        }
        stack.extend(children.map(|c| (c, level + 1)));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_bytes_as_rmp_serde() {
        let v = Value::from(json!({
            "i": [0, 1, -1, 127, 128, -33, 255, 256, 65536, -70000, i64::MAX, i64::MIN],
            "f": [1.5, -0.0, 1e300], "s": ["", "x", "é".repeat(40)], "n": null, "b": true,
            "nested": {"a": {"b": [[]], "c": {}}}
        }));
        let mut mine = Vec::new();
        write_value(&mut mine, &v).unwrap();
        assert_eq!(mine, rmp_serde::to_vec(&v).unwrap());
        let bytes = Value::Bytes(vec![1; 300]);
        let mut mine = Vec::new();
        write_value(&mut mine, &bytes).unwrap();
        assert_eq!(mine, rmp_serde::to_vec(&bytes).unwrap());
        for key in [Key::Int(-5), Key::Int(1 << 40), Key::Str("k".into())] {
            let mut mine = Vec::new();
            write_key(&mut mine, Some(&key)).unwrap();
            assert_eq!(mine, rmp_serde::to_vec(&key).unwrap());
        }
    }

    #[test]
    fn depth() {
        let mut v = Value::Int(1);
        assert!(!depth_exceeds(&v, 0));
        for _ in 0..3 {
            v = Value::Array(vec![Value::Null, v]);
        }
        assert!(!depth_exceeds(&v, 3));
        assert!(depth_exceeds(&v, 2));
        let mut deep = Value::Null;
        for _ in 0..1_000_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(depth_exceeds(&deep, 64));
        std::mem::forget(deep); // dropping a million-deep value would recurse
    }
}
