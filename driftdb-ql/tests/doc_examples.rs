//! Every ```sql block of docs/DRIFTQL.md runs, in order, in one session on one fresh
//! database; the ```json block right after it must hold exactly what its statements printed
//! (the JSON outcome of each, or `error <kind>: <message>` with a syntax error's caret lines;
//! commit times as `<time>`).
//!
//! `DRIFTDB_BLESS=1 cargo test -p driftdb-ql --test doc_examples` rewrites the output blocks;
//! review the change with `git diff docs/DRIFTQL.md`.

use std::path::Path;

use driftdb_core::Database;
use driftdb_ql::Session;

mod common;

#[test]
fn driftql_reference_examples_print_what_the_reference_shows() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DRIFTQL.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut session = Session::new(&db);

    let lines: Vec<&str> = doc.lines().collect();
    let mut rewritten: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    let mut blocks = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        rewritten.push(line.to_owned());
        i += 1;
        if line.trim() != "```sql" {
            continue;
        }
        blocks += 1;
        let start = i;
        while i < lines.len() && lines[i].trim() != "```" {
            rewritten.push(lines[i].to_owned());
            i += 1;
        }
        let sql = lines[start..i].join("\n");
        let block_line = start + 1;
        rewritten.push("```".to_owned());
        i += 1;

        let actual: Vec<String> = common::run_script(&mut session, &sql)
            .into_iter()
            .flat_map(|(_, result)| result.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();

        // Skip blank lines, then expect a ```json block.
        let mut j = i;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        let expected: Option<Vec<&str>> = if j < lines.len() && lines[j].trim() == "```json" {
            let mut k = j + 1;
            while k < lines.len() && lines[k].trim() != "```" {
                k += 1;
            }
            let block = lines[j + 1..k].to_vec();
            i = k + 1;
            Some(block)
        } else {
            None
        };
        if expected.as_deref() != Some(&actual.iter().map(String::as_str).collect::<Vec<_>>()[..]) {
            failures.push(format!(
                "docs/DRIFTQL.md line {block_line}: output differs\n  expected: {:?}\n  actual:   {:?}",
                expected, actual
            ));
        }
        rewritten.push(String::new());
        rewritten.push("```json".to_owned());
        rewritten.extend(actual);
        rewritten.push("```".to_owned());
    }
    assert!(blocks > 10, "docs/DRIFTQL.md should have many examples, found {blocks}");
    if std::env::var_os("DRIFTDB_BLESS").is_some() {
        let mut text = rewritten.join("\n");
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{}\n(rerun with DRIFTDB_BLESS=1 to accept, then review `git diff docs/DRIFTQL.md`)",
        failures.join("\n")
    );
}
