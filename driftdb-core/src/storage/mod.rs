//! The on-disk layer: frames, the WAL, table segments, the checkpoint, and the file-system
//! trait they are written through. `docs/FORMAT.md` describes every format byte by byte.

pub mod checkpoint;
pub mod frame;
pub mod fs;
pub mod segment;
pub mod sim;
pub mod wal;
