//! Shared by the transcript tests (golden scripts and the reference's examples): run a script
//! statement by statement and render each result the way `driftdb sql --format json` prints
//! it, with commit times masked.

use driftdb_ql::{Session, next_statement_end, parse_statement};

/// Replace every `"time"` string field with `<time>`, every `"duration_ms"` with `<ms>` and
/// a compaction's compressed size with `<bytes>`: they vary from run to run.
pub fn mask_times(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            // The compressed size of a compaction depends on the commit times it holds.
            if let Some(bytes) = map.get("bytes_after").map(|b| b.to_string()) {
                if let Some(serde_json::Value::String(m)) = map.get_mut("message") {
                    *m = m.replace(&format!(" {bytes} bytes ("), " <bytes> bytes (");
                }
                map.insert("bytes_after".into(), serde_json::Value::String("<bytes>".into()));
            }
            for (name, v) in map.iter_mut() {
                if name == "time" && v.is_string() {
                    *v = serde_json::Value::String("<time>".into());
                } else if name == "duration_ms" {
                    *v = serde_json::Value::String("<ms>".into());
                } else {
                    mask_times(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_times),
        _ => {}
    }
}

fn only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    })
}

/// Line (count of newlines before) and column offset of byte `at` in `text`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let lines = before.matches('\n').count();
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
    (lines, column)
}

/// Run `script` statement by statement: for each, its text and its rendered result (one JSON
/// line, or `error <kind>: <message>` with the caret lines of a syntax error). A statement
/// that does not parse is reported and the script goes on with the next one.
pub fn run_script(session: &mut Session<'_>, script: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < script.len() {
        let rest = &script[at..];
        let (end, text_end) = match next_statement_end(rest) {
            Some(end) => (end, end - 1),
            None => (rest.len(), rest.len()),
        };
        let raw = &rest[..text_end];
        let lead = raw.len() - raw.trim_start().len();
        // Comment lines before a statement are not part of it.
        let mut text = raw.trim();
        let mut start = at + lead;
        while text.starts_with("--") {
            let skip = text.find('\n').map_or(text.len(), |i| i + 1);
            let rest = &text[skip..];
            start += skip + (rest.len() - rest.trim_start().len());
            text = rest.trim_start();
        }
        at += end;
        if text.is_empty() || only_comments(text) {
            continue;
        }
        let (lines, column) = position(script, start);
        let result = parse_statement(text)
            .map_err(|e| e.shifted(lines, column))
            .and_then(|statement| session.execute(&statement));
        let rendered = match result {
            Ok(outcome) => {
                let mut json = outcome.to_json();
                mask_times(&mut json);
                json.to_string()
            }
            Err(e) => format!("error {}: {e}", e.kind()),
        };
        out.push((text.to_owned(), rendered));
    }
    out
}
