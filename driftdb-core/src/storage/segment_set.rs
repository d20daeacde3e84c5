//! Which files make up a table's history, and what open does with the others.
//!
//! A table's `segments/` directory holds:
//!
//! | name | what |
//! |---|---|
//! | `NNNNNNNN.seg` | plain segment N (version 1): commits append to the last one |
//! | `compacted-GGGGGGGG-NNNNNNNN.seg` | compressed segment N (from 1) of compaction generation G (version 2) |
//! | `compacted-GGGGGGGG-NNNNNNNN.seg.tmp` | a compressed segment being written |
//!
//! The checkpoint names each table's *live set*: the compacted segments `1..=segments` of one
//! generation (once the table has been compacted), then the plain segments `first..=segment`
//! (`first` is 1 before any compaction), the last one trusted up to the recorded length. Read
//! in that order they are the table's history up to the checkpoint. Seqs strictly increase
//! from one file of the set to the next, because the events of one transaction in one table
//! are never split across files (a plain segment rotates between transactions, a compacted one
//! is cut only between seqs): a file that repeated events of another would break that rule, so
//! an event can never be counted twice.
//!
//! **On open** (`table_files`), for each table directory:
//! 1. every file of the live set must exist, or the open fails with `Corrupt` naming the first
//!    missing file;
//! 2. every other segment file is a *stray* to remove: plain segments outside
//!    `first..=segment` (older ones were retired by a compaction whose cleanup did not finish;
//!    newer ones were written after the checkpoint, and the WAL holds their events), compacted
//!    segments of another generation or numbered past `segments` (an older set retired, or a
//!    newer one whose switch never happened), and every `.tmp` file of a compaction.
//!
//! Files with other names are not ours and are left alone. The caller removes the strays (and
//! fsyncs the directory) only after every live file was read and checked, so a refused open
//! changes no file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::checkpoint::{CompactedSet, SegmentPos};
use crate::storage::fs::Fs;
use crate::storage::segment::{parse_segment_name, segment_name};

const COMPACTED_PREFIX: &str = "compacted-";
const SEGMENT_SUFFIX: &str = ".seg";
const TMP_SUFFIX: &str = ".tmp";

/// The file name of compacted segment `n` of generation `generation`.
pub fn compacted_name(generation: u32, n: u32) -> String {
    format!("{COMPACTED_PREFIX}{generation:08}-{n:08}{SEGMENT_SUFFIX}")
}

/// The generation and number of a compacted segment's file name.
pub fn parse_compacted_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(COMPACTED_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    let (generation, n) = rest.split_once('-')?;
    let number = |digits: &str| -> Option<u32> {
        if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|&v| v > 0)
    };
    Some((number(generation)?, number(n)?))
}

/// The temporary name a file is written under before it is renamed to `name`.
pub fn tmp_name(name: &str) -> String {
    format!("{name}{TMP_SUFFIX}")
}

/// Whether `name` is a compacted segment still being written.
pub fn is_compaction_tmp(name: &str) -> bool {
    name.strip_suffix(TMP_SUFFIX).and_then(parse_compacted_name).is_some()
}

/// The paths of a compacted set's files, in order.
pub(crate) fn compacted_paths(seg_dir: &Path, set: &CompactedSet) -> Vec<PathBuf> {
    (1..=set.segments).map(|n| seg_dir.join(compacted_name(set.generation, n))).collect()
}

/// The paths of plain segments `first..=last`.
pub(crate) fn plain_paths(seg_dir: &Path, first: u32, last: u32) -> Vec<PathBuf> {
    (first..=last).map(|id| seg_dir.join(segment_name(id))).collect()
}

/// One file of a table's live set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveFile {
    pub path: PathBuf,
    /// Bytes trusted; `None`: the whole file.
    pub trusted_len: Option<u64>,
}

/// A table's segment files as the checkpoint sees them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TableFiles {
    /// The live set, in history order.
    pub live: Vec<LiveFile>,
    /// Segment files to remove.
    pub strays: Vec<PathBuf>,
}

/// Sort the files of `seg_dir` into the live set named by `pos` (`None`: the checkpoint does
/// not know the table, so nothing is live) and strays. Changes nothing on disk.
pub(crate) fn table_files(
    fs: &dyn Fs,
    seg_dir: &Path,
    pos: Option<&SegmentPos>,
) -> Result<TableFiles> {
    let names = fs.list(seg_dir).map_err(|e| Error::io(seg_dir, e))?;
    let compacted = pos.and_then(|p| p.compacted);
    let first = compacted.map_or(1, |c| c.first);
    let mut out = TableFiles::default();
    if let Some(pos) = pos {
        let compacted_files = compacted.map(|c| compacted_paths(seg_dir, &c)).unwrap_or_default();
        let plain_files = plain_paths(seg_dir, first, pos.segment);
        let count = compacted_files.len() + plain_files.len();
        for (i, path) in compacted_files.into_iter().chain(plain_files).enumerate() {
            let listed = path.file_name().is_some_and(|n| names.iter().any(|m| n == m.as_str()));
            if !listed {
                return Err(Error::corrupt(
                    &path,
                    0,
                    "segment file named by the checkpoint is missing",
                ));
            }
            let trusted_len = if i + 1 == count { Some(pos.len) } else { None };
            out.live.push(LiveFile { path, trusted_len });
        }
    }
    for name in &names {
        let stray = if let Some(id) = parse_segment_name(name) {
            pos.is_none_or(|p| id < first || id > p.segment)
        } else if let Some((generation, n)) = parse_compacted_name(name) {
            compacted.is_none_or(|c| c.generation != generation || n > c.segments)
        } else {
            is_compaction_tmp(name)
        };
        if stray {
            out.strays.push(seg_dir.join(name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimFs;

    #[test]
    fn names() {
        assert_eq!(compacted_name(2, 13), "compacted-00000002-00000013.seg");
        assert_eq!(parse_compacted_name("compacted-00000002-00000013.seg"), Some((2, 13)));
        for bad in [
            "compacted-00000000-00000001.seg",
            "compacted-00000001-0000001.seg",
            "compacted-00000001-00000001.seg.tmp",
            "compacted-0000000x-00000001.seg",
            "00000001.seg",
        ] {
            assert_eq!(parse_compacted_name(bad), None, "{bad}");
        }
        assert!(is_compaction_tmp(&tmp_name(&compacted_name(1, 1))));
        assert!(!is_compaction_tmp("00000001.seg.tmp"));
        assert_eq!(parse_segment_name(&compacted_name(1, 1)), None);
    }

    #[test]
    fn sorts_live_files_from_strays() {
        let fs = SimFs::new();
        let dir = Path::new("/s");
        fs.create_dir(dir).unwrap();
        let files = [
            "00000001.seg",
            "00000004.seg",
            "00000005.seg",
            "00000006.seg",
            "compacted-00000002-00000001.seg",
            "compacted-00000002-00000002.seg",
            "compacted-00000002-00000003.seg",
            "compacted-00000003-00000001.seg",
            "compacted-00000003-00000001.seg.tmp",
            "notes.txt",
        ];
        for name in files {
            let mut f = fs.open_append(&dir.join(name), true).unwrap();
            f.append(b"x").unwrap();
        }
        let compacted = Some(CompactedSet { generation: 2, segments: 2, first: 4, horizon: 0 });
        let pos = SegmentPos { segment: 5, len: 99, compacted };
        let got = table_files(&fs, dir, Some(&pos)).unwrap();
        let live: Vec<_> = got.live.iter().map(|f| (f.path.clone(), f.trusted_len)).collect();
        assert_eq!(
            live,
            vec![
                (dir.join("compacted-00000002-00000001.seg"), None),
                (dir.join("compacted-00000002-00000002.seg"), None),
                (dir.join("00000004.seg"), None),
                (dir.join("00000005.seg"), Some(99)),
            ]
        );
        let strays: Vec<_> = got.strays.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(
            strays,
            [
                "00000001.seg",
                "00000006.seg",
                "compacted-00000002-00000003.seg",
                "compacted-00000003-00000001.seg",
                "compacted-00000003-00000001.seg.tmp",
            ]
        );
        // A table the checkpoint does not know: every segment file is a stray.
        let none = table_files(&fs, dir, None).unwrap();
        assert!(none.live.is_empty());
        assert_eq!(none.strays.len(), files.len() - 1);
        // A missing live file is corruption, named.
        let compacted = Some(CompactedSet { generation: 2, segments: 4, first: 4, horizon: 0 });
        let pos = SegmentPos { segment: 5, len: 99, compacted };
        let err = table_files(&fs, dir, Some(&pos)).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { file, .. } if file.ends_with("compacted-00000002-00000004.seg")),
            "{err:?}"
        );
    }
}
