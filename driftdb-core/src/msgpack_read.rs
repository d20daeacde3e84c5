//! A direct msgpack decoder for [`Value`]: the counterpart of `msgpack.rs`, for the bytes the
//! engine decodes most (version bodies rebuilt by a read, events replayed by an open), without
//! serde's per-value dispatch.
//!
//! It gives exactly what rmp-serde's decoding into [`Value`] gives, or nothing: anything it
//! does not take on itself (an extension type, an unsigned integer above `i64::MAX`, a map
//! key that is not a string, invalid UTF-8, nesting deeper than [`DEPTH_MAX`], trailing or
//! missing bytes) makes [`read_value`] return `None`, and the caller decodes the same bytes with
//! rmp-serde, which then reports the error as before. Lengths are checked against the bytes
//! left before anything is allocated, so a damaged length cannot ask for a huge buffer.
#![allow(clippy::big_endian_bytes)]

use crate::value::{Map, Text, Value};

/// Deeper nesting is left to rmp-serde (documents are limited far below this).
const DEPTH_MAX: usize = 128;

/// Decode the one value that `bytes` holds exactly; `None` when rmp-serde must decide.
pub(crate) fn read_value(bytes: &[u8]) -> Option<Value> {
    let mut reader = Reader::new(bytes);
    let value = reader.value(0)?;
    (reader.at == bytes.len()).then_some(value)
}

/// Decode `bytes` with [`read_value`], or with rmp-serde where it declines (which then
/// reports the error, as before).
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, rmp_serde::decode::Error> {
    match read_value(bytes) {
        Some(value) => Ok(value),
        None => rmp_serde::from_slice(bytes),
    }
}

/// Apply the merge patch (RFC 7386, as [`Value::merge_patch`]) encoded in `bytes` to
/// `target`, without building the patch as a [`Value`]. `None` when rmp-serde must decide: the
/// patch may then be partly applied, and the caller applies the whole decoded patch, which
/// gives the same document (a merge patch applied again changes nothing it already set).
pub(crate) fn merge_patch(target: &mut Value, bytes: &[u8]) -> Option<()> {
    let mut reader = Reader::new(bytes);
    reader.merge_into(target, 0)?;
    (reader.at == bytes.len()).then_some(())
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Whether skipping a value checks what decoding it would (UTF-8, integer range); off
    /// only for bytes already checked (see [`Reader::checked_before`]).
    check: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0, check: true }
    }

    /// A reader of bytes a checking reader has already passed whole (a segment payload after
    /// `segment::split_key`, a document merged from such bytes, an encoding DriftDB made):
    /// skipping a value and reading a map key as bytes ([`Reader::key_bytes`]) check its
    /// structure (markers, lengths, nesting) but not its strings' UTF-8 again. What it
    /// decodes whole ([`read_value`]) is checked as always.
    pub(crate) fn checked_before(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0, check: false }
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// The raw bytes of the next value, skipped without decoding it.
    pub(crate) fn raw(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.skip(0)?;
        self.bytes.get(start..self.at)
    }

    /// Skip the next value, checking what decoding it would check (UTF-8 strings, integers
    /// that fit `i64`, string map keys), without building it.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > DEPTH_MAX {
            return None;
        }
        let marker = self.byte()?;
        match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {}
            0x80..=0x8f => self.skip_map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.skip_array(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => {
                let text = self.take(usize::from(marker & 0x1f))?;
                if self.check {
                    std::str::from_utf8(text).ok()?;
                }
            }
            0xc4..=0xc6 => {
                let len = self.len(1 << (marker - 0xc4))?;
                self.take(len)?;
            }
            0xca | 0xce | 0xd2 => {
                self.take(4)?;
            }
            0xcb | 0xd3 => {
                self.take(8)?;
            }
            0xcf => {
                let n = u64::from_be_bytes(self.be()?);
                if self.check {
                    i64::try_from(n).ok()?;
                }
            }
            0xcc | 0xd0 => {
                self.take(1)?;
            }
            0xcd | 0xd1 => {
                self.take(2)?;
            }
            0xd9..=0xdb => {
                let len = self.len(1 << (marker - 0xd9))?;
                let text = self.take(len)?;
                if self.check {
                    std::str::from_utf8(text).ok()?;
                }
            }
            0xdc | 0xdd => {
                let len = self.len(2 << (marker - 0xdc))?;
                self.skip_array(len, depth)?;
            }
            0xde | 0xdf => {
                let len = self.len(2 << (marker - 0xde))?;
                self.skip_map(len, depth)?;
            }
            _ => return None,
        }
        Some(())
    }

    fn skip_array(&mut self, len: usize, depth: usize) -> Option<()> {
        if len > self.bytes.len().saturating_sub(self.at) {
            return None;
        }
        (0..len).try_for_each(|_| self.skip(depth + 1))
    }

    fn skip_map(&mut self, len: usize, depth: usize) -> Option<()> {
        if len > self.bytes.len().saturating_sub(self.at) / 2 {
            return None;
        }
        (0..len).try_for_each(|_| {
            self.key_bytes()?;
            self.skip(depth + 1)
        })
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn len(&mut self, marker_bytes: usize) -> Option<usize> {
        let n = match marker_bytes {
            1 => u64::from(self.byte()?),
            2 => u64::from(u16::from_be_bytes(self.be()?)),
            _ => u64::from(u32::from_be_bytes(self.be()?)),
        };
        usize::try_from(n).ok()
    }

    fn string(&mut self, len: usize) -> Option<Text> {
        std::str::from_utf8(self.take(len)?).ok().map(Text::from)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > DEPTH_MAX {
            return None;
        }
        let marker = self.byte()?;
        Some(match marker {
            0x00..=0x7f => Value::Int(i64::from(marker)),
            0xe0..=0xff => Value::Int(i64::from(marker as i8)),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => Value::String(self.string(usize::from(marker & 0x1f))?),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (marker - 0xc4))?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Value::Int(i64::from(self.byte()?)),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Value::Int(i64::try_from(u64::from_be_bytes(self.be()?)).ok()?),
            0xd0 => Value::Int(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xd9..=0xdb => {
                let len = self.len(1 << (marker - 0xd9))?;
                Value::String(self.string(len)?)
            }
            0xdc | 0xdd => {
                let len = self.len(2 << (marker - 0xdc))?;
                self.array(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.len(2 << (marker - 0xde))?;
                self.map(len, depth)?
            }
            // 0xc1 (never used) and the extension types.
            _ => return None,
        })
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The length of the map whose header is next, consuming the header; `None` if not a map.
    pub(crate) fn map_header(&mut self) -> Option<usize> {
        let marker = self.peek()?;
        match marker {
            0x80..=0x8f => {
                self.at += 1;
                Some(usize::from(marker & 0x0f))
            }
            0xde | 0xdf => {
                self.at += 1;
                self.len(2 << (marker - 0xde))
            }
            _ => None,
        }
    }

    /// A map key (a string), borrowed from the bytes.
    pub(crate) fn key(&mut self) -> Option<&'a str> {
        let marker = self.byte()?;
        let len = match marker {
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9..=0xdb => self.len(1 << (marker - 0xd9))?,
            _ => return None,
        };
        std::str::from_utf8(self.take(len)?).ok()
    }

    /// A map key (a string) as its UTF-8 bytes, borrowed (checked to be UTF-8 unless the
    /// reader reads bytes checked before).
    pub(crate) fn key_bytes(&mut self) -> Option<&'a [u8]> {
        let marker = self.byte()?;
        let len = match marker {
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9..=0xdb => self.len(1 << (marker - 0xd9))?,
            _ => return None,
        };
        let name = self.take(len)?;
        (!self.check || std::str::from_utf8(name).is_ok()).then_some(name)
    }

    fn merge_into(&mut self, target: &mut Value, depth: usize) -> Option<()> {
        if depth > DEPTH_MAX {
            return None;
        }
        let Some(len) = self.map_header() else {
            *target = self.value(depth)?;
            return Some(());
        };
        if !matches!(target, Value::Map(_)) {
            *target = Value::Map(Map::new());
        }
        let Value::Map(fields) = target else { return None };
        for _ in 0..len {
            let name = self.key()?;
            match self.peek()? {
                0xc0 => {
                    self.at += 1;
                    fields.remove(name);
                }
                // A field the document has is changed in place: no new name is allocated.
                0x80..=0x8f | 0xde | 0xdf => match fields.get_mut(name) {
                    Some(slot) => self.merge_into(slot, depth + 1)?,
                    None => {
                        let mut slot = Value::Null;
                        self.merge_into(&mut slot, depth + 1)?;
                        fields.insert(Text::from(name), slot);
                    }
                },
                _ => {
                    let value = self.value(depth + 1)?;
                    match fields.get_mut(name) {
                        Some(slot) => *slot = value,
                        None => {
                            fields.insert(Text::from(name), value);
                        }
                    }
                }
            }
        }
        Some(())
    }

    fn array(&mut self, len: usize, depth: usize) -> Option<Value> {
        // Every element takes at least one byte.
        if len > self.bytes.len().saturating_sub(self.at) {
            return None;
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Some(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Option<Value> {
        if len > self.bytes.len().saturating_sub(self.at) / 2 {
            return None;
        }
        let mut map = Map::new();
        for _ in 0..len {
            let key = Text::from(self.key()?);
            let value = self.value(depth + 1)?;
            map.insert(key, value);
        }
        Some(Value::Map(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn serde_decode(bytes: &[u8]) -> Option<Value> {
        rmp_serde::from_slice(bytes).ok()
    }

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        crate::msgpack::write_value(&mut out, v).unwrap();
        out
    }

    #[test]
    fn decodes_what_rmp_serde_decodes() {
        let long = "x".repeat(300);
        let values = [
            Value::from(json!({"id": "k42", "n": 42, "neg": -3, "big": 1u64 << 40, "f": 1.5,
                "t": true, "nil": null, "tags": ["red", "green"], "m": {"a": {"b": [1, {"c": []}]}},
                "s": long})),
            Value::Bytes(vec![0, 1, 255]),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Int(-33),
            Value::Int(200),
            Value::Int(-200),
            Value::Int(70_000),
            Value::Int(-70_000),
            Value::Array((0..40).map(Value::Int).collect()),
            Value::Map((0..40).map(|i| (format!("k{i}").into(), Value::Int(i))).collect()),
        ];
        for value in values {
            let bytes = encode(&value);
            assert_eq!(read_value(&bytes), Some(value.clone()));
            assert_eq!(serde_decode(&bytes), Some(value));
        }
        // f32, written by other encoders, and the integer forms rmp-serde accepts.
        for bytes in [&[0xca, 0x3f, 0xc0, 0, 0][..], &[0xcc, 0x05], &[0xd0, 0x05], &[0xd9, 1, b'a']]
        {
            assert_eq!(read_value(bytes), serde_decode(bytes), "{bytes:?}");
        }
    }

    #[test]
    fn merges_patches_like_value_merge_patch() {
        let docs = [
            json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4, "s": "x"}),
            json!({"b": 5}),
            json!([1, 2]),
            json!(null),
        ];
        let patches = [
            json!({"a": null, "b": {"c": 20, "x": 1, "d": null}, "f": [1], "s": {"t": null}}),
            json!({"b": {"c": {"deep": null, "keep": 1}}}),
            json!({}),
            json!([3]),
            json!("replaced"),
        ];
        for doc in &docs {
            for patch in &patches {
                let mut want = Value::from(doc.clone());
                want.merge_patch(&Value::from(patch.clone()));
                let mut got = Value::from(doc.clone());
                assert_eq!(merge_patch(&mut got, &encode(&Value::from(patch.clone()))), Some(()));
                assert_eq!(got, want, "{doc} + {patch}");
            }
        }
        // Left to the caller after a partial merge: applying the whole patch then gives the
        // same document as applying it once.
        let mut bytes = encode(&Value::from(json!({"a": 1, "z": 2})));
        let last = bytes.len() - 1;
        bytes[last] = 0xc1;
        let mut got = Value::from(json!({"a": 0, "z": 0}));
        assert_eq!(merge_patch(&mut got, &bytes), None);
        got.merge_patch(&Value::from(json!({"a": 1, "z": 2})));
        assert_eq!(got, Value::from(json!({"a": 1, "z": 2})));
    }

    #[test]
    fn leaves_the_rest_to_rmp_serde() {
        let cases: [&[u8]; 9] = [
            &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // above i64::MAX
            &[0x81, 0x01, 0x02],                                     // integer map key
            &[0xa2, 0xff, 0xfe],                                     // invalid UTF-8
            &[0xd4, 0x01, 0x02],                                     // extension
            &[0xc1],                                                 // never used
            &[0x92, 0x01],                                           // cut short
            &[0x01, 0x02],                                           // trailing byte
            &[0xdd, 0xff, 0xff, 0xff, 0xff],                         // huge length
            &[],
        ];
        for bytes in cases {
            assert_eq!(read_value(bytes), None, "{bytes:?}");
        }
        let deep = [vec![0x91; 200], vec![0xc0]].concat();
        assert_eq!(read_value(&deep), None);
    }

    #[test]
    fn every_cut_and_flip_of_a_document_is_safe() {
        let bytes = encode(&Value::from(json!({"a": [1, "two", {"x": null}], "b": 2.5})));
        for n in 0..bytes.len() {
            assert_eq!(read_value(&bytes[..n]), None);
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                if let Some(v) = read_value(&b) {
                    assert_eq!(Some(v), serde_decode(&b), "flip of byte {i} bit {bit}");
                }
                // Skipping accepts exactly what decoding accepts.
                let mut reader = Reader::new(&b);
                let skipped = reader.raw().is_some() && reader.at_end();
                assert_eq!(skipped, read_value(&b).is_some(), "skip of flip {i}/{bit}");
                // As a patch: never a panic, and when it applies, what the decoded patch gives.
                let base = Value::from(json!({"a": [0], "b": {"c": 1}}));
                let mut got = base.clone();
                if merge_patch(&mut got, &b).is_some() {
                    let mut want = base;
                    want.merge_patch(&serde_decode(&b).unwrap());
                    assert_eq!(got, want, "patch flip of byte {i} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn short_text_is_decoded_without_allocating() {
        let long = "customer-".repeat(4);
        let doc = Value::from(json!({"id": "k42", "name": "customer-000042", "tags": ["red"],
            "note": long}));
        let decoded = read_value(&encode(&doc));
        let map = decoded.as_ref().and_then(Value::as_map).unwrap();
        for (name, value) in map {
            assert!(!name.is_heap_allocated(), "field name {name} allocated");
            if let Value::String(text) = value {
                assert_eq!(text.is_heap_allocated(), text.len() > 24, "{text}");
            }
        }
        assert!(matches!(map.get("tags"), Some(Value::Array(tags))
            if matches!(tags.first(), Some(Value::String(t)) if !t.is_heap_allocated())));
    }
}
