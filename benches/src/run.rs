//! What every benchmark binary needs: where its databases live, and whether it is measuring.
//!
//! `CARGO_TARGET_TMPDIR` exists only while a bench target compiles, so each bench passes
//! `env!("CARGO_TARGET_TMPDIR")` in as the default directory.

use std::path::PathBuf;

use tempfile::TempDir;

use crate::{Error, Result};

/// The directory benchmark databases go in: `DRIFTDB_BENCH_DIR` when set (put it on the disk
/// to measure, never a tmpfs), else `default`; created if missing.
pub fn bench_root(default: &str) -> Result<PathBuf> {
    let root =
        std::env::var_os("DRIFTDB_BENCH_DIR").map_or_else(|| PathBuf::from(default), PathBuf::from);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    Ok(root)
}

/// A new empty directory under [`bench_root`], removed when dropped.
pub fn fresh_dir(default: &str, prefix: &str) -> Result<TempDir> {
    let root = bench_root(default)?;
    tempfile::Builder::new().prefix(prefix).tempdir_in(&root).map_err(|e| Error::io(&root, e))
}

/// True for a real measurement (`cargo bench`), false for Criterion's test mode
/// (`cargo test --benches`, `cargo bench -- --test`), `--list` and `--profile-time`: the same
/// rule Criterion uses.
pub fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

/// Whether a name filter given on the command line (if any) selects one of `ids`; a bench
/// whose ids are not selected skips building its data (`cargo bench -p driftdb-benches --
/// paired` runs only the paired sections).
pub fn selected(ids: &[&str]) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| ids.iter().any(|id| id.contains(f.as_str())))
}
