//! A direct msgpack encoder for [`Value`] and [`Key`]: the bytes rmp-serde writes for the same
//! value (smallest integer form, f64 floats, str, bin, arrays, maps), without serde's
//! per-value dispatch. Decoding is in `msgpack_read.rs` (rmp-serde where that one declines). Recursion is bounded: callers
//! check [`depth_exceeds`] first, or encode with [`write_value_within`], which checks the depth
//! as it goes. msgpack is big-endian by definition, hence the allow.
#![allow(clippy::big_endian_bytes, clippy::cast_possible_truncation)]

use crate::error::{Error, Result};
use crate::value::{Key, Value};

/// Where encoded bytes go: a buffer, or a counter of their length.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn byte(&mut self, b: u8) {
        self.put(&[b]);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn byte(&mut self, b: u8) {
        self.push(b);
    }
}

/// Counts the bytes an encoding would take.
pub(crate) struct Counter(pub u64);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len() as u64;
    }
}

fn too_long() -> Error {
    Error::Conversion { reason: "a string, array or map is longer than 2^32".into() }
}

/// A length header: the `fix` marker or'ed with the length when the type has a fix form and
/// the length fits (`fix_max`), else an 8-, 16- or 32-bit length behind its marker (`m8` is 0
/// when the type has no 8-bit form).
fn header<S: Sink>(
    out: &mut S,
    len: usize,
    fix: Option<(u8, usize)>,
    [m8, m16, m32]: [u8; 3],
) -> Result<()> {
    if let Some((fix, _)) = fix.filter(|&(_, fix_max)| len <= fix_max) {
        out.byte(fix | len as u8);
    } else if m8 != 0 && len <= usize::from(u8::MAX) {
        out.put(&[m8, len as u8]);
    } else if let Ok(l) = u16::try_from(len) {
        out.byte(m16);
        out.put(&l.to_be_bytes());
    } else {
        let l = u32::try_from(len).map_err(|_| too_long())?;
        out.byte(m32);
        out.put(&l.to_be_bytes());
    }
    Ok(())
}

fn write_int<S: Sink>(out: &mut S, v: i64) {
    if v >= 0 {
        if v < 128 {
            out.byte(v as u8);
        } else if let Ok(b) = u8::try_from(v) {
            out.put(&[0xcc, b]);
        } else if let Ok(h) = u16::try_from(v) {
            out.byte(0xcd);
            out.put(&h.to_be_bytes());
        } else if let Ok(w) = u32::try_from(v) {
            out.byte(0xce);
            out.put(&w.to_be_bytes());
        } else {
            out.byte(0xcf);
            out.put(&(v as u64).to_be_bytes());
        }
    } else if v >= -32 {
        out.byte(v as u8);
    } else if let Ok(b) = i8::try_from(v) {
        out.put(&[0xd0, b as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.byte(0xd1);
        out.put(&h.to_be_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.byte(0xd2);
        out.put(&w.to_be_bytes());
    } else {
        out.byte(0xd3);
        out.put(&v.to_be_bytes());
    }
}

fn write_str<S: Sink>(out: &mut S, s: &str) -> Result<()> {
    header(out, s.len(), Some((0xa0, 31)), [0xd9, 0xda, 0xdb])?;
    out.put(s.as_bytes());
    Ok(())
}

/// The length of the encoded key (nil, an integer or a string) at the start of `bytes`, as
/// [`write_key`] writes it; `None` when `bytes` does not start with one.
pub(crate) fn key_len(bytes: &[u8]) -> Option<usize> {
    let marker = *bytes.first()?;
    let at = |i: usize| bytes.get(i).copied().map(usize::from);
    let len = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 => 1,
        0xcc | 0xd0 => 2,
        0xcd | 0xd1 => 3,
        0xce | 0xd2 => 5,
        0xcf | 0xd3 => 9,
        0xa0..=0xbf => 1 + usize::from(marker & 0x1f),
        0xd9 => 2 + at(1)?,
        0xda => 3 + (at(1)? << 8 | at(2)?),
        0xdb => 5 + (at(1)? << 24 | at(2)? << 16 | at(3)? << 8 | at(4)?),
        _ => return None,
    };
    (len <= bytes.len()).then_some(len)
}

/// Write `key` (nil when absent).
pub(crate) fn write_key<S: Sink>(out: &mut S, key: Option<&Key>) -> Result<()> {
    match key {
        None => out.byte(0xc0),
        Some(Key::Int(i)) => write_int(out, *i),
        Some(Key::Str(s)) => write_str(out, s)?,
    }
    Ok(())
}

/// Write `value` (callers have checked its depth, see [`depth_exceeds`]).
pub(crate) fn write_value<S: Sink>(out: &mut S, value: &Value) -> Result<()> {
    write_value_within(out, value, usize::MAX).map_err(|refusal| match refusal {
        Refusal::TooDeep => Error::invalid("a value nests too deep"),
        Refusal::Error(e) => e,
    })
}

/// Why [`write_value_within`] stopped.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The value nests arrays and maps deeper than allowed.
    TooDeep,
    /// Another encoding error.
    Error(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Error(e)
    }
}

/// Write `value`, refusing one that nests arrays and maps more than `max` levels deep (the
/// check of [`depth_exceeds`], made during the walk the encoding needs anyway; `out` then
/// holds a part of the encoding). Recursion is bounded by `max`.
pub(crate) fn write_value_within<S: Sink>(
    out: &mut S,
    value: &Value,
    max: usize,
) -> std::result::Result<(), Refusal> {
    match value {
        Value::Null => out.byte(0xc0),
        Value::Bool(b) => out.byte(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => write_int(out, *i),
        Value::Float(f) => {
            out.byte(0xcb);
            out.put(&f.to_be_bytes());
        }
        Value::String(s) => write_str(out, s)?,
        Value::Bytes(b) => {
            header(out, b.len(), None, [0xc4, 0xc5, 0xc6])?;
            out.put(b);
        }
        Value::Array(items) => {
            let inner = max.checked_sub(1).ok_or(Refusal::TooDeep)?;
            header(out, items.len(), Some((0x90, 15)), [0, 0xdc, 0xdd])?;
            for item in items {
                write_value_within(out, item, inner)?;
            }
        }
        Value::Map(map) => {
            let inner = max.checked_sub(1).ok_or(Refusal::TooDeep)?;
            header(out, map.len(), Some((0x80, 15)), [0, 0xde, 0xdf])?;
            for (k, v) in map {
                write_str(out, k)?;
                write_value_within(out, v, inner)?;
            }
        }
    }
    Ok(())
}

/// Whether `value` nests arrays and maps more than `max` levels deep (a scalar is level 0).
/// Iterative, so any input is safe.
pub(crate) fn depth_exceeds(value: &Value, max: usize) -> bool {
    let mut stack: smallvec::SmallVec<[(&Value, usize); 16]> = smallvec::smallvec![(value, 0)];
    while let Some((v, level)) = stack.pop() {
        match v {
            Value::Array(items) => {
                if level >= max {
                    return true;
                }
                stack.extend(items.iter().map(|c| (c, level + 1)));
            }
            Value::Map(map) => {
                if level >= max {
                    return true;
                }
                stack.extend(map.values().map(|c| (c, level + 1)));
            }
            _ => {}
        }
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
        for len in [0, 1, 255, 256, 70_000] {
            let bytes = Value::Bytes(vec![1; len]);
            let text = Value::String("x".repeat(len).into());
            let list = Value::Array(vec![Value::Null; len.min(70_000)]);
            for v in [bytes, text, list] {
                let mut mine = Vec::new();
                write_value(&mut mine, &v).unwrap();
                assert_eq!(mine, rmp_serde::to_vec(&v).unwrap(), "len {len}");
                let mut count = Counter(0);
                write_value(&mut count, &v).unwrap();
                assert_eq!(count.0, mine.len() as u64);
            }
        }
        let mut map = crate::value::Map::new();
        for i in 0..40 {
            map.insert(format!("k{i}").into(), Value::Int(i));
        }
        let mut mine = Vec::new();
        write_value(&mut mine, &Value::Map(map.clone())).unwrap();
        assert_eq!(mine, rmp_serde::to_vec(&Value::Map(map)).unwrap());
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

    #[test]
    fn write_within_refuses_exactly_what_depth_exceeds_flags() {
        let mut v = Value::Map(crate::value::Map::new());
        for level in 1..=5 {
            for max in 0..=6 {
                let mut out = Vec::new();
                let refused =
                    matches!(write_value_within(&mut out, &v, max), Err(Refusal::TooDeep));
                assert_eq!(refused, depth_exceeds(&v, max), "depth {level}, max {max}");
                if !refused {
                    assert_eq!(out, rmp_serde::to_vec(&v).unwrap());
                }
            }
            v = Value::Array(vec![Value::Int(1), v]);
        }
    }
}
