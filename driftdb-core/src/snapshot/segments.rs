//! Reading a table's segment files for the streamed scan's replay, a piece at a time.
//!
//! [`first_seq`] reads and checks only a file's first frame (plain) or first block
//! (compressed), so the scan can skip the files wholly before its snapshot. [`visit_segment`]
//! calls back for every frame of a file with the checks of `segment::visit_frames` (frame
//! length bounds and CRC, segment event types, seqs that never decrease; damage is `Corrupt`
//! at the frame's offset): a plain segment is read in pieces of [`CHUNK_BYTES`] (plus one
//! frame), so memory does not grow with the segment; a compressed segment, which compaction
//! writes whole and never appends to, is read whole.

use std::path::Path;

use crate::error::{Error, Result};
use crate::limits::SEGMENT_FRAME_BYTES_MAX;
use crate::storage::compressed::{
    BLOCK_HEADER_BYTES, BlockHeader, BlockReader, COMPRESSED_SEGMENT_VERSION,
};
use crate::storage::frame::{
    self, FILE_HEADER_BYTES, FORMAT_VERSION, FileHeader, Frame, SEGMENT_MAGIC,
};
use crate::storage::fs::Fs;
use crate::storage::segment::{self, FrameVisitor};

/// A plain segment is read in pieces of this size.
pub(crate) const CHUNK_BYTES: u64 = 1024 * 1024;
/// What [`first_seq`] reads of a plain segment at first (more when its first frame is larger).
const FIRST_FRAME_READ_BYTES: u64 = 4096;

/// Check the 16-byte header of a segment file and return its version.
fn header_version(fs: &dyn Fs, path: &Path, len: u64) -> Result<u32> {
    if len < FILE_HEADER_BYTES as u64 {
        return Err(Error::corrupt(path, 0, format!("segment of {len} bytes has no header")));
    }
    let head = fs.read_at(path, 0, FILE_HEADER_BYTES as u64).map_err(|e| Error::io(path, e))?;
    let header = FileHeader::check_kind(&head, SEGMENT_MAGIC)
        .map_err(|e| Error::corrupt(path, 0, format!("bad segment header: {e:?}")))?;
    Ok(header.version)
}

/// The length to read: the trusted length, or the whole file.
fn length(fs: &dyn Fs, path: &Path, trusted_len: Option<u64>) -> Result<u64> {
    match trusted_len {
        Some(len) => Ok(len),
        None => fs.file_len(path).map_err(|e| Error::io(path, e)),
    }
}

/// The seq of the first event of a segment file (`None`: it holds none), read and checked
/// from its first frame (plain) or first block (compressed) alone.
pub(crate) fn first_seq(fs: &dyn Fs, path: &Path, trusted_len: Option<u64>) -> Result<Option<u64>> {
    let len = length(fs, path, trusted_len)?;
    match header_version(fs, path, len)? {
        FORMAT_VERSION => {
            // Read the first frame alone (a small piece, then the rest of the frame if larger).
            let mut reader = PlainReader::new(fs, path, len, FIRST_FRAME_READ_BYTES);
            Ok(reader.next_frame(&mut |_, fr, _| Ok(fr.seq))?)
        }
        COMPRESSED_SEGMENT_VERSION => {
            let io = |e| Error::io(path, e);
            let start = FILE_HEADER_BYTES as u64;
            let bad = |reason: String| Error::corrupt(path, start, reason);
            let head_end = start + BLOCK_HEADER_BYTES as u64;
            if head_end > len {
                return Err(bad("compressed segment has no block".into()));
            }
            let bytes = fs.read_at(path, 0, head_end).map_err(io)?;
            let block = BlockHeader::read(&bytes, FILE_HEADER_BYTES)
                .ok_or_else(|| bad("block header cut short".into()))?;
            let end = start + block.size();
            if end > len {
                return Err(bad(format!("block of {} bytes runs past the file", block.size())));
            }
            let bytes = fs.read_at(path, 0, end).map_err(io)?;
            let mut reader = BlockReader::new(path)?;
            let checked = reader.read_block(
                path,
                &bytes,
                FILE_HEADER_BYTES,
                bytes.len(),
                None,
                &mut |_, _, _| Ok(()),
            )?;
            Ok(Some(checked.first_seq))
        }
        found => Err(Error::UnsupportedVersion {
            file: path.to_path_buf(),
            found,
            supported: COMPRESSED_SEGMENT_VERSION,
        }),
    }
}

/// Call `f(offset, frame, frame_bytes)` for every frame of a segment file of either kind, up to
/// `trusted_len` (`None`: the whole file), with every check of `segment::visit_frames`.
pub(crate) fn visit_segment(
    fs: &dyn Fs,
    path: &Path,
    trusted_len: Option<u64>,
    f: &mut FrameVisitor<'_>,
) -> Result<()> {
    let len = length(fs, path, trusted_len)?;
    if header_version(fs, path, len)? != FORMAT_VERSION {
        let data = fs.read(path).map_err(|e| Error::io(path, e))?;
        return segment::visit_frames(path, &data, len, f);
    }
    visit_plain(fs, path, len, CHUNK_BYTES, f)
}

/// Every frame of the plain segment `path` up to `len`, read `chunk` bytes at a time.
pub(crate) fn visit_plain(
    fs: &dyn Fs,
    path: &Path,
    len: u64,
    chunk: u64,
    f: &mut FrameVisitor<'_>,
) -> Result<()> {
    let mut reader = PlainReader::new(fs, path, len, chunk);
    let mut last_seq = 0;
    let mut checked = |at: u64, fr: &Frame<'_>, bytes: &[u8]| -> Result<()> {
        segment::check_frame(path, at, fr, &mut last_seq)?;
        f(at, fr, bytes)
    };
    while reader.next_frame(&mut checked)?.is_some() {}
    Ok(())
}

/// Frames of a plain segment, read through a window of the file.
struct PlainReader<'a> {
    fs: &'a dyn Fs,
    path: &'a Path,
    /// Bytes of the file to read.
    len: u64,
    chunk: u64,
    /// A window of the file: `buf[0]` is the byte at `buf_at`.
    buf: Vec<u8>,
    buf_at: u64,
    /// The offset of the next frame.
    pos: u64,
}

impl<'a> PlainReader<'a> {
    fn new(fs: &'a dyn Fs, path: &'a Path, len: u64, chunk: u64) -> Self {
        let start = FILE_HEADER_BYTES as u64;
        PlainReader {
            fs,
            path,
            len,
            chunk: chunk.max(1),
            buf: Vec::new(),
            buf_at: start,
            pos: start,
        }
    }

    /// Make the window hold the bytes `pos..pos + n`, dropping what is before `pos` and reading
    /// at least a chunk more. `n` must not run past `len`.
    fn fill(&mut self, n: u64) -> Result<()> {
        let have_end = self.buf_at + self.buf.len() as u64;
        if self.pos + n <= have_end {
            return Ok(());
        }
        let keep_from = usize::try_from(self.pos - self.buf_at).unwrap_or(usize::MAX);
        self.buf.drain(..keep_from.min(self.buf.len()));
        self.buf_at = self.pos;
        let read_from = self.buf_at + self.buf.len() as u64;
        let want = (self.pos + n).max(read_from + self.chunk).min(self.len) - read_from;
        let more =
            self.fs.read_at(self.path, read_from, want).map_err(|e| Error::io(self.path, e))?;
        self.buf.extend_from_slice(&more);
        Ok(())
    }

    /// Check the next frame and call `f` with it; `None` at the end.
    fn next_frame<T>(
        &mut self,
        f: &mut impl FnMut(u64, &Frame<'_>, &[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        let at = self.pos;
        let left = self.len - at;
        let head = frame::BODY_OFFSET as u64;
        // A frame cut short: decode what is there, which reports the truncation.
        let whole = |this: &mut Self, n: u64| -> Result<()> { this.fill(n.min(left)) };
        whole(self, head)?;
        let rel = usize::try_from(at - self.buf_at).unwrap_or(usize::MAX);
        let body = self
            .buf
            .get(rel..rel + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        // Read no more than the largest frame: a damaged length is refused by `decode`.
        let size = head + u64::from(body.min(SEGMENT_FRAME_BYTES_MAX));
        whole(self, size)?;
        let rel = usize::try_from(at - self.buf_at).unwrap_or(usize::MAX);
        let end = usize::try_from(size.min(left)).unwrap_or(usize::MAX);
        let bytes = self.buf.get(rel..rel.saturating_add(end)).unwrap_or_default();
        let fr = frame::decode(bytes, SEGMENT_FRAME_BYTES_MAX)
            .map_err(|e| Error::corrupt(self.path, at, e.to_string()))?;
        let out = f(at, &fr, bytes.get(..fr.size).unwrap_or_default())?;
        self.pos = at + fr.size as u64;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::storage::frame::EventType;
    use crate::storage::sim::SimFs;
    use crate::value::{Key, Value};

    /// A plain segment of `n` events of varied sizes.
    fn segment_bytes(n: i64) -> Vec<u8> {
        let mut data = FileHeader::new(SEGMENT_MAGIC).encode().to_vec();
        for k in 0..n {
            let body = Value::String("x".repeat((k as usize * 37) % 300).into());
            let event =
                Event::new("t".into(), EventType::Insert, Some(Key::Int(k)), body.into()).unwrap();
            segment::encode_event(&mut data, 1 + k as u64 / 3, 1000, &event).unwrap();
        }
        data
    }

    fn frames(fs: &SimFs, path: &Path, len: u64, chunk: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        visit_plain(fs, path, len, chunk, &mut |at, _, bytes| {
            out.push((at, bytes.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    fn whole(data: &[u8], len: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        segment::visit_frames(Path::new("/s"), data, len, &mut |at, _, bytes| {
            out.push((at, bytes.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn chunked_reads_give_the_frames_and_the_errors_of_a_whole_read() {
        let data = segment_bytes(60);
        let fs = SimFs::new();
        let path = Path::new("/s");
        let mut file = fs.open_append(path, true).unwrap();
        file.append(&data).unwrap();
        let len = data.len() as u64;
        let want = whole(&data, len).unwrap();
        assert_eq!(want.len(), 60);
        for chunk in [1, 7, 64, 300, 4096, CHUNK_BYTES] {
            assert_eq!(frames(&fs, path, len, chunk).unwrap(), want, "chunk {chunk}");
        }
        assert_eq!(first_seq(&fs, path, None).unwrap(), Some(1));
        // Cut inside a frame: both report the same offset.
        let cut = want[20].0 + 5;
        let (a, b) = (frames(&fs, path, cut, 64).unwrap_err(), whole(&data, cut).unwrap_err());
        assert_eq!(a.to_string(), b.to_string());
        // A damaged byte anywhere in a frame: the same error as a whole read.
        for i in (FILE_HEADER_BYTES..data.len()).step_by(13) {
            let mut bad = data.clone();
            bad[i] ^= 0x20;
            let fs = SimFs::new();
            fs.open_append(path, true).unwrap().append(&bad).unwrap();
            let got = frames(&fs, path, len, 100).map_err(|e| e.to_string());
            let expected = whole(&bad, len).map_err(|e| e.to_string());
            assert_eq!(got.map(|v| v.len()), expected.map(|v| v.len()), "byte {i}");
        }
    }
}
