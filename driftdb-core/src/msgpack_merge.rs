//! A merge patch applied to an encoded document, giving the encoded result, without decoding
//! either (for the open, which replays every PATCH onto its key's newest document), and the
//! value at a field path of an encoded document (for the indexes).
//!
//! DriftDB writes a map's fields in name order (documents are `BTreeMap`s), so a document and
//! a patch are merged like two sorted lists: a field only in the document is copied as it is,
//! a field only in the patch is copied (a map first cleaned of its nulls, a null left out), a
//! field in both takes the patch's value (merged when both are maps, removed when the patch's
//! is null). The result decodes to what [`Value::merge_patch`] gives. Bytes that are not maps
//! of string keys in strictly increasing order, or anything the reader does not take on
//! itself (see `msgpack_read.rs`), make these functions return `None`: the caller then
//! decodes, as before.
//!
//! They read bytes that were checked whole before ([`Reader::checked_before`]): a segment
//! payload the open's key split passed (it checks every string's UTF-8 and every integer's
//! range), a document merged from such bytes, a version DriftDB encoded itself. So they check
//! structure (markers, lengths, nesting, name order) and compare and copy names and values
//! as bytes, without checking their UTF-8 again; a value they decode ([`value_at`]) is
//! checked as always.

use smallvec::SmallVec;

use crate::msgpack_read::Reader;
use crate::value::Value;

/// Deeper nesting is left to the decoding path.
const DEPTH_MAX: usize = 64;

/// Append to `out` the encoding of `doc` (encoded) with the merge patch `patch` (encoded)
/// applied; `None` when the decoding path must decide (then `out` holds a part of a result).
pub(crate) fn merge_encoded(doc: &[u8], patch: &[u8], out: &mut Vec<u8>) -> Option<()> {
    merge(Some(doc), patch, out, 0)
}

/// One entry of a map being merged: its name (UTF-8 bytes) and the raw bytes of its value.
type Entry<'a> = (&'a [u8], &'a [u8]);

/// The entries of a map, on the stack for the usual document.
type Entries<'a> = SmallVec<[Entry<'a>; 16]>;

/// The entries of the encoded map `bytes`, checked to be in strictly increasing name order;
/// `Some(empty)` for `None` (no document) or a document that is not a map (a patch map then
/// replaces it, as `Value::merge_patch` does).
fn entries(bytes: Option<&[u8]>) -> Option<Entries<'_>> {
    let Some(bytes) = bytes else { return Some(Entries::new()) };
    let mut reader = Reader::checked_before(bytes);
    let Some(len) = reader.map_header() else { return Some(Entries::new()) };
    let mut out = Entries::with_capacity(len.min(bytes.len()));
    for _ in 0..len {
        let name = reader.key_bytes()?;
        if out.last().is_some_and(|(last, _)| *last >= name) {
            return None;
        }
        out.push((name, reader.raw()?));
    }
    reader.at_end().then_some(out)
}

fn is_map(raw: &[u8]) -> bool {
    matches!(raw.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// The union of two sorted entry lists, in name order: each name with its value in the
/// document and in the patch, where it has one.
fn union<'a>(
    old: &'a [Entry<'a>],
    new: &'a [Entry<'a>],
) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>, Option<&'a [u8]>)> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let (name, from_doc, from_patch) = match (old.get(i), new.get(j)) {
            (None, None) => return None,
            (Some(&(on, ov)), None) => (on, Some(ov), None),
            (None, Some(&(nn, nv))) => (nn, None, Some(nv)),
            (Some(&(on, ov)), Some(&(nn, nv))) => match on.cmp(nn) {
                std::cmp::Ordering::Less => (on, Some(ov), None),
                std::cmp::Ordering::Greater => (nn, None, Some(nv)),
                std::cmp::Ordering::Equal => (on, Some(ov), Some(nv)),
            },
        };
        i += usize::from(from_doc.is_some());
        j += usize::from(from_patch.is_some());
        Some((name, from_doc, from_patch))
    })
}

fn merge(doc: Option<&[u8]>, patch: &[u8], out: &mut Vec<u8>, depth: usize) -> Option<()> {
    if depth > DEPTH_MAX {
        return None;
    }
    if !is_map(patch) {
        // A patch that is not a map replaces the document.
        out.extend_from_slice(patch);
        return Some(());
    }
    let old = entries(doc)?;
    let new = entries(Some(patch))?;
    // Every name of either map is written unless the patch sets it to null (removed): count
    // them first, so the map header goes straight before the entries.
    let count = union(&old, &new).filter(|&(_, _, p)| p != Some(&[0xc0][..])).count();
    let _ = rmp::encode::write_map_len(out, u32::try_from(count).ok()?);
    for (name, from_doc, from_patch) in union(&old, &new) {
        match from_patch {
            None => write_entry(out, name, from_doc?),
            Some([0xc0]) => continue, // null: the field is removed
            Some(value) if is_map(value) => {
                write_name(out, name);
                merge(from_doc.filter(|d| is_map(d)), value, out, depth + 1)?;
            }
            Some(value) => write_entry(out, name, value),
        }
    }
    Some(())
}

fn write_name(out: &mut Vec<u8>, name: &[u8]) {
    // A name is a map key read from a document: its length fits a u32.
    let _ = rmp::encode::write_str_len(out, u32::try_from(name.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(name);
}

fn write_entry(out: &mut Vec<u8>, name: &[u8], raw: &[u8]) {
    write_name(out, name);
    out.extend_from_slice(raw);
}

/// The value at `path` in the encoded document `doc`: `Some(None)` when a field on the way is
/// missing (or not a map), `None` when the decoding path must decide.
pub(crate) fn value_at(doc: &[u8], path: &[String]) -> Option<Option<Value>> {
    let mut current = doc;
    'path: for name in path {
        let mut reader = Reader::checked_before(current);
        let Some(len) = reader.map_header() else { return Some(None) };
        for _ in 0..len {
            let field = reader.key_bytes()?;
            let raw = reader.raw()?;
            if field == name.as_bytes() {
                current = raw;
                continue 'path;
            }
        }
        return Some(None);
    }
    crate::msgpack_read::read_value(current).map(Some)
}

/// Whether the encoded merge patch `patch` is a map that names `field` at its top level:
/// `Some(false)` means applying it leaves that field as it was; `None` when it is not a map
/// (it replaces the whole document) or does not read as DriftDB writes maps.
pub(crate) fn names_field(patch: &[u8], field: &str) -> Option<bool> {
    let mut reader = Reader::checked_before(patch);
    let len = reader.map_header()?;
    for _ in 0..len {
        if reader.key_bytes()? == field.as_bytes() {
            return Some(true);
        }
        reader.raw()?;
    }
    reader.at_end().then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(j: serde_json::Value) -> Vec<u8> {
        let mut out = Vec::new();
        crate::msgpack::write_value(&mut out, &Value::from(j)).unwrap();
        out
    }

    #[test]
    fn merges_like_value_merge_patch() {
        let docs = [
            json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4, "s": "x"}),
            json!({"b": 5, "z": {"q": null}}),
            json!({}),
            json!([1, 2]),
            json!(7),
        ];
        let patches = [
            json!({"a": null, "b": {"c": 20, "x": 1, "d": null}, "f": [1], "s": {"t": null}}),
            json!({"b": {"c": {"deep": null, "keep": {"n": null, "m": 1}}}, "0": 0, "zz": null}),
            json!({}),
            json!({"new": {"x": null}}),
            json!([3]),
            json!("replaced"),
            json!(null),
        ];
        for doc in &docs {
            for patch in &patches {
                let mut want = Value::from(doc.clone());
                want.merge_patch(&Value::from(patch.clone()));
                let mut out = Vec::new();
                assert_eq!(
                    merge_encoded(&enc(doc.clone()), &enc(patch.clone()), &mut out),
                    Some(())
                );
                let got: Value = rmp_serde::from_slice(&out).unwrap();
                assert_eq!(got, want, "{doc} + {patch}");
            }
        }
    }

    #[test]
    fn declines_unsorted_or_damaged_maps() {
        // {"b": 1, "a": 2}: names out of order (DriftDB never writes that).
        let unsorted = [0x82, 0xa1, b'b', 0x01, 0xa1, b'a', 0x02];
        let mut out = Vec::new();
        assert_eq!(merge_encoded(&unsorted, &enc(json!({"c": 1})), &mut out), None);
        assert_eq!(merge_encoded(&enc(json!({"c": 1})), &unsorted, &mut Vec::new()), None);
        let doc = enc(json!({"a": [1, 2], "b": {"c": 1}}));
        for n in 0..doc.len() {
            let _ = merge_encoded(&doc[..n], &enc(json!({"b": {"d": 1}})), &mut Vec::new());
            let _ = merge_encoded(&enc(json!({"b": 1})), &doc[..n], &mut Vec::new());
            let _ = value_at(&doc[..n], &["b".into(), "c".into()]);
        }
    }

    #[test]
    fn every_flip_of_a_document_or_patch_is_safe() {
        let doc = enc(json!({"a": [1, "x"], "b": {"c": 1, "d": "y"}, "e": true}));
        let patch = enc(json!({"a": null, "b": {"c": 2, "z": {"q": null}}, "f": 1.5}));
        for (which, bytes) in [(0, &doc), (1, &patch)] {
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut b = bytes.clone();
                    b[i] ^= 1 << bit;
                    let (d, p) = if which == 0 { (&b, &patch) } else { (&doc, &b) };
                    let mut out = Vec::new();
                    if merge_encoded(d, p, &mut out).is_some()
                        && let (Ok(d), Ok(p)) =
                            (rmp_serde::from_slice::<Value>(d), rmp_serde::from_slice::<Value>(p))
                    {
                        // When both still decode, the merge agrees with the decoded one.
                        let mut want = d;
                        want.merge_patch(&p);
                        let got: Value = rmp_serde::from_slice(&out).unwrap();
                        // (Compared as text: a flip may make a float NaN, never equal to itself.)
                        let (got, want) = (format!("{got:?}"), format!("{want:?}"));
                        assert_eq!(got, want, "flip of byte {i} bit {bit} of input {which}");
                    }
                    let _ = value_at(&b, &["b".into(), "c".into()]);
                }
            }
        }
    }

    #[test]
    fn tells_whether_a_patch_names_a_field() {
        let patch = enc(json!({"a": 1, "b": {"c": null}, "n": null}));
        assert_eq!(names_field(&patch, "a"), Some(true));
        assert_eq!(names_field(&patch, "b"), Some(true));
        assert_eq!(names_field(&patch, "n"), Some(true), "a null removes the field: named");
        assert_eq!(names_field(&patch, "c"), Some(false), "only the top level counts");
        assert_eq!(names_field(&enc(json!({})), "a"), Some(false));
        // Not a map: it replaces the whole document.
        assert_eq!(names_field(&enc(json!([1])), "a"), None);
        assert_eq!(names_field(&enc(json!(null)), "a"), None);
        // Cut short: the reader declines rather than guess.
        for n in 1..patch.len() {
            assert_ne!(names_field(&patch[..n], "z"), Some(false), "cut at {n}");
        }
    }

    #[test]
    fn finds_values_at_paths() {
        let doc = enc(json!({"a": 1, "b": {"c": "x", "d": null}, "e": [1]}));
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(value_at(&doc, &path("a")), Some(Some(Value::Int(1))));
        assert_eq!(value_at(&doc, &path("b.c")), Some(Some(Value::String("x".into()))));
        assert_eq!(value_at(&doc, &path("b.d")), Some(Some(Value::Null)));
        assert_eq!(value_at(&doc, &path("b.z")), Some(None));
        assert_eq!(value_at(&doc, &path("e.0")), Some(None));
        assert_eq!(value_at(&doc, &path("zz")), Some(None));
    }
}
