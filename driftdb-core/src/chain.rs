//! One key's version chain, kept compact: what the in-memory state holds per version.
//!
//! Each version keeps its seq, its kind and the msgpack bytes of its event body, as the
//! segment frame carries them (INSERT: the document; PATCH: the merge patch; SOFT_DELETE and
//! the drop marker: nil). No document is held decoded: a read decodes one. A PATCH version
//! may also keep the encoded document after it: the newest version always does (so a read of
//! now decodes one document), and so does every [`KEYFRAME_EVERY`]-th version of a run of
//! patches (a *keyframe*; the newest gives its copy up when a later version arrives, unless it
//! is one). An older document is rebuilt from the nearest version at or before it that holds
//! a whole document (an INSERT, or a PATCH that kept one), then at most `KEYFRAME_EVERY - 1`
//! patches, however long the chain is.
//!
//! Invariant: the newest version of a chain, when it leaves a live document, holds it whole.
//!
//! Memory per version: 32 bytes plus its heap bytes (the body, and on a keyframe or the newest
//! version the encoded document), against two decoded `Value` trees (~2 KB here) before. The
//! numbers are in `docs/ARCHITECTURE.md` ("Memory").

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

    /// Give up the encoded document after the event (a PATCH that is no longer the newest and
    /// is not a keyframe).
    fn strip_full(&mut self) {
        if self.bytes.len() > self.body_len as usize {
            self.bytes = Box::from(self.body_bytes());
        }
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

/// Decode a document kept encoded in memory (by a chain or a transaction).
pub(crate) fn decode_bytes(bytes: &[u8]) -> Result<Value> {
    decode(bytes, 0)
}

fn decode(bytes: &[u8], seq: u64) -> Result<Value> {
    crate::msgpack_read::decode(bytes).map_err(|e| {
        Error::corrupt(
            "(in-memory state)",
            0,
            format!("the version at seq {seq} does not decode: {e}; reopen the database"),
        )
    })
}

/// The versions of one key, in seq order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    /// Most keys have one version: the first is stored inline.
    versions: SmallVec<[Version; 1]>,
}

impl Chain {
    /// A chain of one version (see [`Chain::push`]).
    pub fn of(seq: u64, kind: EventType, body: &[u8], doc: Option<&Value>) -> Result<Chain> {
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

    /// The encoded document after the newest version, when it is live.
    pub fn latest_bytes(&self) -> Option<&[u8]> {
        self.versions.last().filter(|v| v.has_doc()).and_then(Version::full_bytes)
    }

    /// The document after the newest version, when it is live, decoded.
    pub fn latest(&self) -> Result<Option<Value>> {
        match self.versions.last() {
            Some(v) if v.has_doc() => match v.full_bytes() {
                Some(full) => decode(full, v.seq).map(Some),
                None => Err(missing_base(v.seq)),
            },
            _ => Ok(None),
        }
    }

    /// Append a version: `body` is its encoded event body, `doc` the document after it
    /// (`Some` exactly for INSERT and PATCH; a PATCH's is encoded and kept, see
    /// [`Chain::push_encoded`]).
    pub fn push(
        &mut self,
        seq: u64,
        kind: EventType,
        body: &[u8],
        doc: Option<&Value>,
    ) -> Result<()> {
        match (kind, doc) {
            (EventType::Patch, Some(doc)) => {
                let mut full = Vec::with_capacity(body.len() * 4);
                crate::msgpack::write_value(&mut full, doc)?;
                self.push_encoded(seq, kind, body, Some(&full))
            }
            _ => self.push_encoded(seq, kind, body, None),
        }
    }

    /// Append a version given the encoded document after it (`full`, needed for a PATCH; an
    /// INSERT's is its body). The version before it gives up its own copy of its document
    /// unless it is a keyframe.
    pub fn push_encoded(
        &mut self,
        seq: u64,
        kind: EventType,
        body: &[u8],
        full: Option<&[u8]>,
    ) -> Result<()> {
        if kind == EventType::Patch && full.is_none() {
            return Err(missing_base(seq));
        }
        let full = if kind == EventType::Patch { full } else { None };
        let version = Version::new(seq, kind, body, full)?;
        self.push_version(version);
        Ok(())
    }

    /// Append a version while many are appended in a row (the open's replay, see
    /// `replay.rs`): as [`Chain::push_encoded`], except that a PATCH keeps its document
    /// (`full`, the encoded document after it) only when it is a keyframe, so the newest
    /// version may lack it until [`Chain::set_latest`] gives it back.
    pub fn push_staged(
        &mut self,
        seq: u64,
        kind: EventType,
        body: &[u8],
        full: Option<&[u8]>,
    ) -> Result<()> {
        let keyframe = kind == EventType::Patch
            && self.patches_since_full(self.versions.len()) + 1 >= KEYFRAME_EVERY;
        let full = match (kind, full) {
            (EventType::Patch, None) => return Err(missing_base(seq)),
            (EventType::Patch, Some(full)) if keyframe => Some(full),
            _ => None,
        };
        let version = Version::new(seq, kind, body, full)?;
        self.push_version(version);
        Ok(())
    }

    /// Give the newest version, when it is a PATCH without its document, the encoded document
    /// after it (the end of a run of [`Chain::push_staged`]: the chain's invariant holds
    /// again).
    pub fn set_latest(&mut self, full: &[u8]) -> Result<()> {
        if let Some(last) = self.versions.last_mut()
            && last.kind == EventType::Patch
            && last.full_bytes().is_none()
        {
            *last = Version::new(last.seq, last.kind, last.body_bytes(), Some(full))?;
        }
        Ok(())
    }

    /// Append the one version of `other`, a chain made by [`Chain::of`], exactly as
    /// [`Chain::push`] would have appended it (its bytes are moved, not copied).
    pub fn append(&mut self, other: Chain) -> Result<()> {
        let [version] = other.versions.into_inner().map_err(|_| {
            Error::invalid("only a chain of one version can be appended to another")
        })?;
        if version.kind == EventType::Patch && version.full_bytes().is_none() {
            return Err(missing_base(version.seq));
        }
        self.push_version(version);
        Ok(())
    }

    /// Append `version`, which holds its document when it is a PATCH: the version before it
    /// gives up its own copy of its document unless it is a keyframe.
    fn push_version(&mut self, version: Version) {
        let n = self.versions.len();
        if let Some(before) = n.checked_sub(1) {
            let run = self.patches_since_full(before);
            if let Some(last) = self.versions.last_mut()
                && last.kind == EventType::Patch
                && run + 1 < KEYFRAME_EVERY
            {
                last.strip_full();
            }
        }
        self.versions.push(version);
    }

    /// Patches without a whole document right before version `i` (at most
    /// [`KEYFRAME_EVERY`] are counted).
    fn patches_since_full(&self, i: usize) -> usize {
        self.versions
            .get(..i)
            .unwrap_or_default()
            .iter()
            .rev()
            .take(KEYFRAME_EVERY)
            .take_while(|v| v.kind == EventType::Patch && v.full_bytes().is_none())
            .count()
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

    /// The document after version `i`: decoded when the version holds it whole, else rebuilt
    /// from the nearest whole document before it and the patches after that.
    pub fn doc_of(&self, i: usize) -> Result<Option<Arc<Value>>> {
        let Some(version) = self.versions.get(i) else { return Ok(None) };
        if !version.has_doc() {
            return Ok(None);
        }
        let (full, patches) = self.base_of(i)?;
        let doc = rebuild(full, patches.iter().map(Version::body_bytes), version.seq)?;
        Ok(Some(Arc::new(doc)))
    }

    /// The whole encoded document that the document after version `i` is rebuilt from, and
    /// the patch versions after it up to `i`.
    fn base_of(&self, i: usize) -> Result<(&[u8], &[Version])> {
        let seq = self.versions.get(i).map_or(0, |v| v.seq);
        let start = self.versions.get(..=i).unwrap_or_default();
        let from = start.iter().rposition(|v| v.full_bytes().is_some());
        let split = from.and_then(|from| start.get(from..)).and_then(|s| s.split_first());
        let (base, patches) = split.ok_or_else(|| missing_base(seq))?;
        Ok((base.full_bytes().unwrap_or_default(), patches))
    }

    /// What [`Chain::doc_at`] would give, in a form that can be finished after the state
    /// lock is released: the encoded bytes the document is decoded or rebuilt from, copied to
    /// the end of `arena` (so a long scan does not hold up commits while it decodes, and
    /// copies into one buffer for all its rows).
    pub fn pending_at(&self, seq: u64, incarnation: u64, arena: &mut Vec<u8>) -> Option<Pending> {
        let n = self.versions.partition_point(|v| v.seq <= seq);
        let i = n.checked_sub(1)?;
        let version = self.versions.get(i).filter(|v| v.seq >= incarnation && v.has_doc())?;
        let Ok((full, patches)) = self.base_of(i) else {
            return Some(Pending::Broken(version.seq));
        };
        let start = arena.len();
        arena.extend_from_slice(full);
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
        for v in &self.versions {
            doc = match v.kind {
                EventType::Insert => Some(Arc::new(v.body()?)),
                EventType::Patch => {
                    let Some(mut d) = doc.take() else { return Err(missing_base(v.seq)) };
                    Arc::make_mut(&mut d).merge_patch(&v.body()?);
                    Some(d)
                }
                _ => None,
            };
            f(v, doc.as_ref())?;
        }
        Ok(())
    }
}

/// A document to finish outside the state lock (see [`Chain::pending_at`]).
pub(crate) enum Pending {
    /// A whole encoded document, then the patches after it, back to back in the arena from
    /// `start`: `ends` holds where each ends.
    Rebuild { seq: u64, start: usize, ends: SmallVec<[usize; 4]> },
    /// The version at this seq has no document to start from (a damaged state).
    Broken(u64),
}

impl Pending {
    /// The document, given the arena [`Chain::pending_at`] copied into.
    pub fn finish(&self, arena: &[u8]) -> Result<Value> {
        let (seq, full, patches) = self.parts(arena)?;
        rebuild(full, patches, seq)
    }

    /// The seq of the version, the whole encoded document it is rebuilt from and the
    /// encoded patches after it, as slices of `arena`.
    fn parts<'p>(
        &'p self,
        arena: &'p [u8],
    ) -> Result<(u64, &'p [u8], impl Iterator<Item = &'p [u8]> + 'p)> {
        match self {
            Pending::Broken(seq) => Err(missing_base(*seq)),
            Pending::Rebuild { seq, start, ends } => {
                let starts = std::iter::once(*start).chain(ends.iter().copied());
                let mut parts =
                    starts.zip(ends.iter()).map(|(s, &e)| arena.get(s..e).unwrap_or_default());
                let full = parts.next().unwrap_or_default();
                Ok((*seq, full, parts))
            }
        }
    }
}

impl Pending {
    /// The document encoded as msgpack, as DriftDB writes it: the patches are merged into
    /// the whole document byte by byte (decoded, merged and encoded again only where the bytes
    /// are not as DriftDB writes them).
    pub fn finish_encoded(&self, arena: &[u8]) -> Result<Vec<u8>> {
        let (seq, full, patches) = self.parts(arena)?;
        let mut doc = full.to_vec();
        let mut next = Vec::with_capacity(doc.len() + 64);
        for patch in patches {
            next.clear();
            if crate::msgpack_merge::merge_encoded(&doc, patch, &mut next).is_none() {
                let mut merged = decode(&doc, seq)?;
                merged.merge_patch(&decode(patch, seq)?);
                next.clear();
                crate::msgpack::write_value(&mut next, &merged)?;
            }
            std::mem::swap(&mut doc, &mut next);
        }
        Ok(doc)
    }
}

/// Rows in a block of [`finish_all`] per thread.
const FINISH_BLOCK_ROWS: usize = 4096;

/// Finish every pending document of `rows` (a scan's, in key order) and give each, in order,
/// to `keep`. Large scans decode on several threads, a block at a time, so that at most a
/// block of documents waits for `keep` (which may drop most of them: a filter).
pub(crate) fn finish_all<K: Send + Sync, T: Send>(
    rows: Vec<(K, Pending)>,
    arena: &[u8],
    make: impl Fn(Value) -> T + Sync,
    mut keep: impl FnMut(K, T) -> Result<()>,
) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if threads <= 1 || rows.len() < 2 * FINISH_BLOCK_ROWS {
        for (key, pending) in rows {
            keep(key, make(pending.finish(arena)?))?;
        }
        return Ok(());
    }
    // Keys and pendings apart, so that blocks are slices of one list (no list collected per
    // block), and one output list per part, reused by every block: a scan allocates nothing
    // per block but the documents.
    let (keys, pendings): (Vec<K>, Vec<Pending>) = rows.into_iter().unzip();
    let mut keys = keys.into_iter();
    let mut outs: Vec<Vec<Result<T>>> =
        (0..threads).map(|_| Vec::with_capacity(FINISH_BLOCK_ROWS)).collect();
    for block in pendings.chunks(threads * FINISH_BLOCK_ROWS) {
        let decode = |part: &[Pending], out: &mut Vec<Result<T>>| {
            out.extend(part.iter().map(|p| p.finish(arena).map(&make)));
        };
        outs.iter_mut().for_each(Vec::clear);
        std::thread::scope(|scope| {
            let mut parts = block.chunks(FINISH_BLOCK_ROWS).zip(outs.iter_mut());
            let first = parts.next();
            // A part whose thread could not start (or panicked) is short: decoded below.
            let spawned: Vec<_> = parts
                .filter_map(|(part, out)| {
                    std::thread::Builder::new().spawn_scoped(scope, move || decode(part, out)).ok()
                })
                .collect();
            if let Some((part, out)) = first {
                decode(part, out);
            }
            for handle in spawned {
                let _ = handle.join();
            }
        });
        for (part, out) in block.chunks(FINISH_BLOCK_ROWS).zip(outs.iter_mut()) {
            if out.len() != part.len() {
                out.clear();
                decode(part, out);
            }
        }
        for out in outs.iter_mut().take(block.len().div_ceil(FINISH_BLOCK_ROWS)) {
            for doc in out.drain(..) {
                let key = keys.next().ok_or_else(|| Error::invalid("a scan lost a row's key"))?;
                keep(key, doc?)?;
            }
        }
    }
    Ok(())
}

/// A whole encoded document with the encoded patches merged in, in order (each straight from
/// its bytes, or decoded where the reader declines).
fn rebuild<'a>(full: &[u8], patches: impl Iterator<Item = &'a [u8]>, seq: u64) -> Result<Value> {
    let mut doc = decode(full, seq)?;
    for patch in patches {
        if crate::msgpack_read::merge_patch(&mut doc, patch).is_none() {
            doc.merge_patch(&decode(patch, seq)?);
        }
    }
    Ok(doc)
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
            chain.push(2, EventType::Insert, &enc(&doc), Some(&doc)).unwrap();
            expected.push((2, Some(doc.clone())));
            for p in 0..patches as u64 {
                let patch = Value::from(
                    json!({"n": p + 1, "extra": if p % 2 == 0 { json!(p) } else { json!(null) }}),
                );
                doc.merge_patch(&patch);
                let seq = 3 + p * 2;
                chain.push(seq, EventType::Patch, &enc(&patch), Some(&doc)).unwrap();
                expected.push((seq, Some(doc.clone())));
            }
            let del = 1000;
            chain.push(del, EventType::SoftDelete, NIL, None).unwrap();
            expected.push((del, None));
            let again = Value::from(json!({"id": 1, "n": -1}));
            chain.push(1001, EventType::Insert, &enc(&again), Some(&again)).unwrap();
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
                let encoded = pending.as_ref().map(|p| p.finish_encoded(&arena).unwrap());
                let pending = pending.map(|p| p.finish(&arena).unwrap());
                assert_eq!(pending.as_ref(), want.as_ref(), "pending at {seq}");
                let encoded = encoded.map(|e| decode_bytes(&e).unwrap());
                assert_eq!(encoded.as_ref(), want.as_ref(), "encoded at {seq}");
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
        chain.push(1, EventType::Insert, &[0xc1], Some(&Value::Null)).unwrap();
        chain.push(2, EventType::Patch, &[0x80], Some(&Value::Null)).unwrap();
        assert!(chain.doc_of(0).is_err());
        assert!(chain.doc_at(1, 0).is_err());
    }
}
