//! Golden tests: every `tests/golden/*.dql` script runs statement by statement on a fresh
//! database, and the transcript (each statement, then its JSON outcome or its error kind and
//! message) must equal `tests/golden/*.out`. Commit times vary from run to run, so every
//! `"time"` field is printed as `<time>`.
//!
//! To accept new output, run `DRIFTDB_BLESS=1 cargo test -p driftdb-ql --test golden` and
//! review the change with `git diff driftdb-ql/tests/golden`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use driftdb_core::Database;
use driftdb_ql::Session;

mod common;

fn transcript(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut session = Session::new(&db);
    let mut out = String::new();
    for (text, result) in common::run_script(&mut session, script) {
        let shown: Vec<&str> = text.lines().collect();
        writeln!(out, "> {}", shown.join("\n  ")).unwrap();
        writeln!(out, "{result}").unwrap();
    }
    out
}

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dql"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_scripts() {
    let bless = std::env::var_os("DRIFTDB_BLESS").is_some();
    let files = scripts();
    assert!(!files.is_empty(), "no golden scripts found");
    let mut failures = Vec::new();
    for file in files {
        let script = std::fs::read_to_string(&file).unwrap();
        let actual = transcript(&script);
        let expected_path = file.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            let first = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            failures.push(format!(
                "{}: transcript differs from {} at line {}:\n  expected: {:?}\n  actual:   {:?}",
                file.display(),
                expected_path.display(),
                first + 1,
                expected.lines().nth(first),
                actual.lines().nth(first),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(rerun with DRIFTDB_BLESS=1 to accept, then review `git diff`)",
        failures.join("\n")
    );
}
