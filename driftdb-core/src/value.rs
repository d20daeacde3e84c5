//! Documents and primary keys.
//!
//! A [`Value`] is JSON-like data with integers, floats and bytes kept apart, as msgpack stores
//! them. A document is a [`Value::Map`]; its primary key is a [`Key`] (an integer or a string).
//! [`to_value`] and [`from_value`] convert any serde type, so a program stores its own structs.
//!
//! PATCH follows JSON Merge Patch (RFC 7386): maps merge recursively, and a field set to `null`
//! is **removed** from the document.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::limits::{DOCUMENT_BYTES_MAX, DOCUMENT_DEPTH_MAX, KEY_BYTES_MAX};

/// Text in a document: a field name or a string value. Text of up to 24 bytes is held in
/// place, without an allocation (most field names and many values are that short), so
/// building and dropping a decoded document costs a few allocations, not one per string.
/// It dereferences to `&str`; build one with `Text::from("…")`, `"…".into()` or
/// `String::into`.
pub type Text = compact_str::CompactString;

/// A document map: field name to value, in name order.
pub type Map = BTreeMap<Text, Value>;

/// A value stored in a document.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// The absence of a value.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    String(Text),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// An ordered list.
    Array(Vec<Value>),
    /// A map from field names to values.
    Map(Map),
}

/// The primary key of a row: an integer or a string. Integers sort before strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// An integer key.
    Int(i64),
    /// A string key (held in place up to 24 bytes, like [`Text`]).
    Str(Text),
}

/// A [`Key`] borrowed from the bytes it was read from (the open's replay finds rows by it
/// without building a key per event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum KeyRef<'a> {
    Int(i64),
    Str(&'a str),
}

impl KeyRef<'_> {
    pub fn to_key(self) -> Key {
        match self {
            KeyRef::Int(i) => Key::Int(i),
            KeyRef::Str(s) => Key::Str(Text::from(s)),
        }
    }
}

impl Value {
    /// The map inside, if this is a map.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The field `name` of a map (`None` for other values or a missing field).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(name))
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside, if this is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Apply a JSON Merge Patch (RFC 7386) in place: maps merge recursively, `null` removes.
    pub fn merge_patch(&mut self, patch: &Value) {
        let Value::Map(patch_map) = patch else {
            *self = patch.clone();
            return;
        };
        if !matches!(self, Value::Map(_)) {
            *self = Value::Map(Map::new());
        }
        if let Value::Map(target) = self {
            for (name, change) in patch_map {
                if matches!(change, Value::Null) {
                    target.remove(name);
                } else if let Some(slot) = target.get_mut(name) {
                    // A field the document has is changed in place: no name is copied.
                    slot.merge_patch(change);
                } else {
                    let mut slot = Value::Null;
                    slot.merge_patch(change);
                    target.insert(name.clone(), slot);
                }
            }
        }
    }

    /// Decode a value from msgpack, such as a document of [`crate::Snapshot::scan_encoded`].
    pub fn from_msgpack(bytes: &[u8]) -> Result<Value> {
        crate::msgpack_read::decode(bytes).map_err(|e| Error::Conversion { reason: e.to_string() })
    }

    /// Encode as msgpack (maps keep their field names).
    pub(crate) fn to_msgpack(&self) -> Result<Vec<u8>> {
        rmp_serde::to_vec(self).map_err(|e| Error::Conversion { reason: e.to_string() })
    }
}

impl Key {
    /// The key of `value`, when it is an integer or a string.
    pub fn from_value(value: &Value) -> Option<Key> {
        match value {
            Value::Int(i) => Some(Key::Int(*i)),
            Value::String(s) => Some(Key::Str(s.clone())),
            _ => None,
        }
    }

    /// Whether `value` is this key (what [`Key::from_value`] would return for it), without
    /// building a key.
    pub(crate) fn is(&self, value: &Value) -> bool {
        match (self, value) {
            (Key::Int(k), Value::Int(v)) => k == v,
            (Key::Str(k), Value::String(v)) => k == v,
            _ => false,
        }
    }

    /// The key as a document value.
    pub fn to_value(&self) -> Value {
        match self {
            Key::Int(i) => Value::Int(*i),
            Key::Str(s) => Value::String(s.clone()),
        }
    }

    pub(crate) fn check_size(&self) -> Result<()> {
        let size = match self {
            Key::Int(_) => 8,
            Key::Str(s) => s.len() as u64,
        };
        if size > KEY_BYTES_MAX {
            return Err(Error::TooLarge { what: "primary key", size, limit: KEY_BYTES_MAX });
        }
        Ok(())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => write!(f, "{}", serde_json::Value::String(s.to_string())),
        }
    }
}

impl From<i64> for Key {
    fn from(i: i64) -> Self {
        Key::Int(i)
    }
}
impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::Str(Text::from(s))
    }
}
impl From<String> for Key {
    fn from(s: String) -> Self {
        Key::Str(Text::from(s))
    }
}

/// The msgpack size of `value`, without building the bytes.
pub(crate) fn encoded_size(value: &Value) -> Result<u64> {
    let mut counter = crate::msgpack::Counter(0);
    crate::msgpack::write_value(&mut counter, value)?;
    Ok(counter.0)
}

/// Check that `doc` can be stored: a map, not too deep, not too large. `known_size` is its
/// encoded size when the caller has it already. Returns the encoded size.
pub(crate) fn check_document(
    what: &'static str,
    doc: &Value,
    known_size: Option<u64>,
) -> Result<u64> {
    if !matches!(doc, Value::Map(_)) {
        return Err(Error::invalid(format!("a {what} must be a map (a JSON object)")));
    }
    // An event's body was checked for depth when the event was made (known_size is set).
    if known_size.is_none() && crate::msgpack::depth_exceeds(doc, DOCUMENT_DEPTH_MAX) {
        return Err(Error::invalid(format!(
            "a {what} may nest at most {DOCUMENT_DEPTH_MAX} levels of arrays and maps"
        )));
    }
    let size = match known_size {
        Some(size) => size,
        None => encoded_size(doc)?,
    };
    if size > DOCUMENT_BYTES_MAX {
        return Err(Error::TooLarge { what, size, limit: DOCUMENT_BYTES_MAX });
    }
    Ok(size)
}

/// Convert any serializable Rust value into a [`Value`].
///
/// ```
/// #[derive(serde::Serialize)]
/// struct User { id: String, age: i64 }
/// let v = driftdb_core::to_value(&User { id: "u1".into(), age: 42 }).unwrap();
/// assert_eq!(v.get("age"), Some(&driftdb_core::Value::Int(42)));
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    let bytes =
        rmp_serde::to_vec_named(value).map_err(|e| Error::Conversion { reason: e.to_string() })?;
    rmp_serde::from_slice(&bytes).map_err(|e| Error::Conversion { reason: e.to_string() })
}

/// Convert a [`Value`] into any deserializable Rust value.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T> {
    let bytes = value.to_msgpack()?;
    rmp_serde::from_slice(&bytes).map_err(|e| Error::Conversion { reason: e.to_string() })
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(Text::from(s)),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (Text::from(k), Value::from(v))).collect())
            }
        }
    }
}

impl From<&Value> for serde_json::Value {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Value::from(*f),
            Value::String(s) => serde_json::Value::String(s.as_str().to_owned()),
            Value::Bytes(b) => serde_json::Value::from(b.clone()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Into::into).collect()),
            Value::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", serde_json::Value::from(self))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Array(a) => s.collect_seq(a),
            Value::Map(m) => s.collect_map(m),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a document value")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} does not fit in a signed 64-bit integer")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(Text::from(v)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(Text::from(v)))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some((k, v)) = map.next_entry::<Text, Value>()? {
            out.insert(k, v);
        }
        Ok(Value::Map(out))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Key::Int(i) => s.serialize_i64(*i),
            Key::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Key, D::Error> {
        let value = Value::deserialize(d)?;
        Key::from_value(&value)
            .ok_or_else(|| de::Error::custom("a primary key must be an integer or a string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut doc = Value::from(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}));
        doc.merge_patch(&Value::from(json!({"a": null, "b": {"c": 20, "x": 1}, "f": [1]})));
        assert_eq!(doc, Value::from(json!({"b": {"c": 20, "d": 3, "x": 1}, "e": 4, "f": [1]})));
    }

    #[test]
    fn msgpack_round_trip_keeps_types() {
        let mut m = Map::new();
        m.insert("bytes".into(), Value::Bytes(vec![0, 1, 255]));
        m.insert("f".into(), Value::Float(1.5));
        m.insert("i".into(), Value::Int(-7));
        m.insert("n".into(), Value::Null);
        m.insert("arr".into(), Value::Array(vec![Value::Bool(true), Value::String("x".into())]));
        let v = Value::Map(m);
        let back: Value = rmp_serde::from_slice(&v.to_msgpack().unwrap()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn structs_round_trip_through_value() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Order {
            id: i64,
            items: Vec<String>,
            note: Option<String>,
        }
        let o = Order { id: 3, items: vec!["a".into()], note: None };
        let v = to_value(&o).unwrap();
        assert_eq!(v.get("id"), Some(&Value::Int(3)));
        assert_eq!(from_value::<Order>(&v).unwrap(), o);
    }

    #[test]
    fn document_limits_are_enforced() {
        assert!(check_document("document", &Value::Int(1), None).is_err());
        let mut deep = Value::Map(Map::new());
        for _ in 0..DOCUMENT_DEPTH_MAX + 1 {
            let mut m = Map::new();
            m.insert("x".into(), deep);
            deep = Value::Map(m);
        }
        assert!(matches!(check_document("document", &deep, None), Err(Error::InvalidInput { .. })));
        let big = Value::from(json!({"s": "x".repeat(DOCUMENT_BYTES_MAX as usize)}));
        assert!(matches!(check_document("document", &big, None), Err(Error::TooLarge { .. })));
        let v = Value::from(json!({"a": [1, 2.5, "x"], "b": null}));
        assert_eq!(encoded_size(&v).unwrap(), v.to_msgpack().unwrap().len() as u64);
        assert!(Key::Str("k".repeat(2000).into()).check_size().is_err());
    }

    #[test]
    fn keys_order_ints_before_strings() {
        assert!(Key::Int(99) < Key::Str("0".into()));
        assert_eq!(Key::Str("a\"b".into()).to_string(), "\"a\\\"b\"");
    }
}
