//! Fuzz the DriftQL parser: any input must give `Ok` or `Err`, never a panic, a stack
//! overflow or a hang; and whatever parses must print as DriftQL that parses back to the same
//! statement. `driftdb-ql/tests/fuzz_corpus.rs` replays the corpus through the same checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = driftdb_ql::next_statement_end(text);
    let _ = driftdb_ql::parse_expr(text);
    if let Ok(expr) = driftdb_ql::parse_expr(text) {
        let printed = expr.to_string();
        assert_eq!(driftdb_ql::parse_expr(&printed).ok(), Some(expr), "printed as {printed}");
    }
    if let Ok(parsed) = driftdb_ql::parse_script(text) {
        for p in parsed {
            let printed = p.statement.to_string();
            let back = driftdb_ql::parse_statement(&printed);
            assert_eq!(back.ok(), Some(p.statement), "printed as {printed}");
        }
    }
});
