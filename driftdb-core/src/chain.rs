//! One key's version chain, kept compact: what the in-memory state holds per version.
//!
//! Each version keeps its seq, its kind and the msgpack bytes of its event body, as the
//! segment frame carries them (INSERT: the document; PATCH: the merge patch; SOFT_DELETE and
//! the drop marker: nil). Documents are not kept per version. Only the newest version's
//! document is held decoded ([`Chain::latest`]), for reads of now, validation and the indexes;
//! an older document is rebuilt when it is read: from the nearest version at or before it
//! that holds a whole document (an INSERT, or a *keyframe*), then the patches after it.
//!
//! A keyframe is a PATCH version that also keeps the encoded document after it. Every
//! [`KEYFRAME_EVERY`]-th version of a run of patches is one, so rebuilding a document decodes
//! one whole document and at most `KEYFRAME_EVERY - 1` patches, however long the chain is.
//!
//! Memory per version: 32 bytes plus its heap bytes (the body, and on a keyframe the encoded
//! document), against two shared `Value` trees before. The numbers are in
//! `docs/ARCHITECTURE.md` ("Memory").

use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::storage::frame::EventType;
use crate::value::Value;

/// Every this many versions of a run of patches, one keeps its whole document encoded.
pub(crate) const KEYFRAME_EVERY: usize = 4;

/// The msgpack encoding of nil: the body of SOFT_DELETE and of the drop marker.
pub(crate) const NIL: &[u8] = &[0xc0];

/// One version of one key.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub seq: u64,
    pub kind: EventType,
    /// How many leading bytes of `bytes` are the event body; on a keyframe the encoded
    /// document after the event follows.
    body_len: u32,
    bytes: Box<[u8]>,
}

// The size the module header and docs/ARCHITECTURE.md state.
const _: () = assert!(std::mem::size_of::<Version>() == 32);

impl Version {
    fn new(seq: u64, kind: EventType, body: &[u8], full: Option<&[u8]>) -> Result<Version> {
        let body_len = u32::try_from(body.len())
            .map_err(|_| Error::invalid("an event body over 4 GiB cannot be kept"))?;
        let bytes = match full {
            None => Box::from(body),
            Some(full) => [body, full].concat().into_boxed_slice(),
        };
        Ok(Version { seq, kind, body_len, bytes })
    }

    /// The encoded event body.
    pub fn body_bytes(&self) -> &[u8] {
        self.bytes.get(..self.body_len as usize).unwrap_or_default()
    }

    /// The event body, decoded (INSERT: the document; PATCH: the patch; else null).
    pub fn body(&self) -> Result<Value> {
        decode(self.body_bytes(), self.seq)
    }

    /// Whether a document is live after this version.
    pub fn has_doc(&self) -> bool {
        matches!(self.kind, EventType::Insert | EventType::Patch)
    }

    /// The encoded whole document after this version, when it holds one.
    fn full_bytes(&self) -> Option<&[u8]> {
        match self.kind {
            EventType::Insert => Some(self.body_bytes()),
            EventType::Patch => self.bytes.get(self.body_len as usize..).filter(|b| !b.is_empty()),
            _ => None,
        }
    }
}

fn decode(bytes: &[u8], seq: u64) -> Result<Value> {
    if let Some(value) = crate::msgpack_read::read_value(bytes) {
        return Ok(value);
    }
    rmp_serde::from_slice(bytes).map_err(|e| {
        Error::corrupt(
            "(in-memory state)",
            0,
            format!("the version at seq {seq} does not decode: {e}; reopen the database"),
        )
    })
}

/// The versions of one key, in seq order, and the document of the newest.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    /// Most keys have one version: the first is stored inline.
    versions: SmallVec<[Version; 1]>,
    /// The document after the newest version, when it is live.
    latest: Option<Arc<Value>>,
}

impl Chain {
    /// A chain of one version.
    pub fn of(seq: u64, kind: EventType, body: &[u8], doc: Option<Arc<Value>>) -> Result<Chain> {
        let mut chain = Chain::default();
        chain.push(seq, kind, body, doc)?;
        Ok(chain)
    }

    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    pub fn last(&self) -> Option<&Version> {
        self.versions.last()
    }

    /// The document after the newest version, when it is live.
    pub fn latest(&self) -> Option<&Arc<Value>> {
        self.latest.as_ref()
    }

    /// Append a version: `body` is its encoded event body, `doc` the document after it
    /// (`Some` exactly for INSERT and PATCH).
    pub fn push(
        &mut self,
        seq: u64,
        kind: EventType,
        body: &[u8],
        doc: Option<Arc<Value>>,
    ) -> Result<()> {
        let full = match (&doc, kind) {
            (Some(doc), EventType::Patch) if self.patches_since_full() + 1 >= KEYFRAME_EVERY => {
                let mut out = Vec::with_capacity(body.len() * 4);
                crate::msgpack::write_value(&mut out, doc)?;
                Some(out)
            }
            _ => None,
        };
        self.versions.push(Version::new(seq, kind, body, full.as_deref())?);
        self.latest = doc;
        Ok(())
    }

    /// Patches at the end of the chain after its last version holding a whole document.
    fn patches_since_full(&self) -> usize {
        self.versions
            .iter()
            .rev()
            .take(KEYFRAME_EVERY)
            .take_while(|v| v.kind == EventType::Patch && v.full_bytes().is_none())
            .count()
    }

    /// Take the newest document out (to change it in place); the next call must be
    /// [`Chain::push`], which sets the newest document again.
    pub fn take_latest(&mut self) -> Option<Arc<Value>> {
        self.latest.take()
    }

    /// Give back the spare capacity of the version list (it grows by doubling).
    pub fn shrink_to_fit(&mut self) {
        self.versions.shrink_to_fit();
    }

    /// The live document at `seq`, counting only versions at or after `incarnation` (the
    /// CREATE of the table's incarnation live then).
    pub fn doc_at(&self, seq: u64, incarnation: u64) -> Result<Option<Arc<Value>>> {
        let n = self.versions.partition_point(|v| v.seq <= seq);
        let Some(i) = n.checked_sub(1) else { return Ok(None) };
        match self.versions.get(i) {
            Some(v) if v.seq >= incarnation => self.doc_of(i),
            _ => Ok(None),
        }
    }

    /// Whether a live document exists at `seq` (as [`Chain::doc_at`], without rebuilding it).
    pub fn live_at(&self, seq: u64, incarnation: u64) -> bool {
        let n = self.versions.partition_point(|v| v.seq <= seq);
        n.checked_sub(1)
            .and_then(|i| self.versions.get(i))
            .is_some_and(|v| v.seq >= incarnation && v.has_doc())
    }

    /// The document after version `i`: the decoded latest, or rebuilt from the nearest whole
    /// document at or before it and the patches after that.
    pub fn doc_of(&self, i: usize) -> Result<Option<Arc<Value>>> {
        let Some(version) = self.versions.get(i) else { return Ok(None) };
        if !version.has_doc() {
            return Ok(None);
        }
        if i + 1 == self.versions.len() {
            return Ok(self.latest.clone());
        }
        let start = self.versions.get(..=i).unwrap_or_default();
        let Some(from) = start.iter().rposition(|v| v.full_bytes().is_some()) else {
            return Err(missing_base(version.seq));
        };
        let (base, patches) = match start.get(from..).and_then(|s| s.split_first()) {
            Some(split) => split,
            None => return Err(missing_base(version.seq)),
        };
        let mut doc = decode(base.full_bytes().unwrap_or_default(), base.seq)?;
        for patch in patches {
            if crate::msgpack_read::merge_patch(&mut doc, patch.body_bytes()).is_none() {
                doc.merge_patch(&patch.body()?);
            }
        }
        Ok(Some(Arc::new(doc)))
    }

    /// What [`Chain::doc_at`] would give, in a form that can be finished after the state
    /// lock is released: the newest document shared, or the encoded bytes an older one is
    /// rebuilt from, copied to the end of `arena` (so a long scan does not hold up commits
    /// while it decodes, and copies into one buffer for all its rows).
    pub fn pending_at(&self, seq: u64, incarnation: u64, arena: &mut Vec<u8>) -> Option<Pending> {
        let n = self.versions.partition_point(|v| v.seq <= seq);
        let i = n.checked_sub(1)?;
        let version = self.versions.get(i).filter(|v| v.seq >= incarnation && v.has_doc())?;
        if i + 1 == self.versions.len() {
            return self.latest.clone().map(Pending::Ready);
        }
        let start = self.versions.get(..=i).unwrap_or_default();
        let Some(from) = start.iter().rposition(|v| v.full_bytes().is_some()) else {
            return Some(Pending::Broken(version.seq));
        };
        let (base, patches) = start.get(from..).and_then(|s| s.split_first())?;
        let start = arena.len();
        arena.extend_from_slice(base.full_bytes().unwrap_or_default());
        let mut ends = SmallVec::new();
        ends.push(arena.len());
        for patch in patches {
            arena.extend_from_slice(patch.body_bytes());
            ends.push(arena.len());
        }
        Some(Pending::Rebuild { seq: version.seq, start, ends })
    }

    /// Call `f(version, document after it)` for every version in order, rebuilding each
    /// document once from the one before (for history and for building an index).
    pub fn walk(
        &self,
        mut f: impl FnMut(&Version, Option<&Arc<Value>>) -> Result<()>,
    ) -> Result<()> {
        let mut doc: Option<Arc<Value>> = None;
        let last = self.versions.len().saturating_sub(1);
        for (i, v) in self.versions.iter().enumerate() {
            doc = if i == last {
                self.latest.clone()
            } else {
                match v.kind {
                    EventType::Insert => Some(Arc::new(v.body()?)),
                    EventType::Patch => {
                        let Some(mut d) = doc.take() else { return Err(missing_base(v.seq)) };
                        Arc::make_mut(&mut d).merge_patch(&v.body()?);
                        Some(d)
                    }
                    _ => None,
                }
            };
            f(v, doc.as_ref())?;
        }
        Ok(())
    }
}

/// A document to finish outside the state lock (see [`Chain::pending_at`]).
pub(crate) enum Pending {
    /// The newest document, shared.
    Ready(Arc<Value>),
    /// A whole encoded document, then the patches after it, back to back in the arena from
    /// `start`: `ends` holds where each ends.
    Rebuild { seq: u64, start: usize, ends: SmallVec<[usize; 4]> },
    /// The version at this seq has no document to start from (a damaged state).
    Broken(u64),
}

impl Pending {
    /// The document, given the arena [`Chain::pending_at`] copied into.
    pub fn finish(self, arena: &[u8]) -> Result<Arc<Value>> {
        match self {
            Pending::Ready(doc) => Ok(doc),
            Pending::Broken(seq) => Err(missing_base(seq)),
            Pending::Rebuild { seq, mut start, ends } => {
                let mut doc = Value::Null;
                for (n, &end) in ends.iter().enumerate() {
                    let part = arena.get(start..end).unwrap_or_default();
                    if n == 0 {
                        doc = decode(part, seq)?;
                    } else if crate::msgpack_read::merge_patch(&mut doc, part).is_none() {
                        doc.merge_patch(&decode(part, seq)?);
                    }
                    start = end;
                }
                Ok(Arc::new(doc))
            }
        }
    }
}

fn missing_base(seq: u64) -> Error {
    Error::corrupt(
        "(in-memory state)",
        0,
        format!("the PATCH at seq {seq} has no document before it; reopen the database"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        crate::msgpack::write_value(&mut out, v).unwrap();
        out
    }

    /// A chain of an INSERT, `patches` PATCHes, a SOFT_DELETE and a re-INSERT, checked at
    /// every seq against the documents computed directly.
    #[test]
    fn every_version_rebuilds_to_its_document() {
        for patches in [0, 1, KEYFRAME_EVERY - 1, KEYFRAME_EVERY, 3 * KEYFRAME_EVERY + 2] {
            let mut chain = Chain::default();
            let mut expected: Vec<(u64, Option<Value>)> = Vec::new();
            let mut doc = Value::from(json!({"id": 1, "n": 0, "tags": ["a"]}));
            chain.push(2, EventType::Insert, &enc(&doc), Some(Arc::new(doc.clone()))).unwrap();
            expected.push((2, Some(doc.clone())));
            for p in 0..patches as u64 {
                let patch = Value::from(
                    json!({"n": p + 1, "extra": if p % 2 == 0 { json!(p) } else { json!(null) }}),
                );
                doc.merge_patch(&patch);
                let seq = 3 + p * 2;
                chain
                    .push(seq, EventType::Patch, &enc(&patch), Some(Arc::new(doc.clone())))
                    .unwrap();
                expected.push((seq, Some(doc.clone())));
            }
            let del = 1000;
            chain.push(del, EventType::SoftDelete, NIL, None).unwrap();
            expected.push((del, None));
            let again = Value::from(json!({"id": 1, "n": -1}));
            chain
                .push(1001, EventType::Insert, &enc(&again), Some(Arc::new(again.clone())))
                .unwrap();
            expected.push((1001, Some(again)));
            for (i, (seq, want)) in expected.iter().enumerate() {
                assert_eq!(
                    chain.doc_of(i).unwrap().as_deref(),
                    want.as_ref(),
                    "{patches} patches, #{i}"
                );
                assert_eq!(chain.doc_at(*seq, 0).unwrap().as_deref(), want.as_ref());
                assert_eq!(chain.live_at(*seq, 0), want.is_some());
            }
            for (seq, want) in &expected {
                let mut arena = vec![7];
                let pending = chain.pending_at(*seq, 0, &mut arena);
                let pending = pending.map(|p| p.finish(&arena).unwrap());
                assert_eq!(pending.as_deref(), want.as_ref(), "pending at {seq}");
            }
            assert_eq!(chain.doc_at(1, 0).unwrap(), None);
            assert_eq!(chain.doc_at(1001, 1002).unwrap(), None, "an older incarnation");
            let mut walked = Vec::new();
            chain
                .walk(|v, d| {
                    walked.push((v.seq, d.map(|d| (**d).clone())));
                    Ok(())
                })
                .unwrap();
            assert_eq!(walked, expected);
            let keyframes = chain
                .versions()
                .iter()
                .filter(|v| v.kind == EventType::Patch && v.full_bytes().is_some())
                .count();
            assert_eq!(keyframes, patches / KEYFRAME_EVERY, "{patches} patches");
        }
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let mut chain = Chain::default();
        chain.push(1, EventType::Insert, &[0xc1], Some(Arc::new(Value::Null))).unwrap();
        chain.push(2, EventType::Patch, &[0x80], Some(Arc::new(Value::Null))).unwrap();
        assert!(chain.doc_of(0).is_err());
        assert!(chain.doc_at(1, 0).is_err());
    }
}
