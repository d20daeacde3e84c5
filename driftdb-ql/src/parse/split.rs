//! Where a statement ends in text that is still being typed or read: the first `;` outside
//! strings, backtick names and comments.

/// The byte offset just past the first `;` that ends a statement in `text`, ignoring `;`
/// inside `'...'` and `"..."` strings (and so inside the strings of JSON documents, the only
/// place a `;` can be inside a valid document), `` `names` ``, `-- comments` and
/// `/* comments */`. `None` when the text holds no complete statement yet, also when it ends
/// inside a string, name or block comment.
///
/// ```
/// use driftdb_ql::next_statement_end;
/// assert_eq!(next_statement_end("SELECT 1; SELECT 2;"), Some(9));
/// assert_eq!(next_statement_end("INSERT INTO t {\"a\": \";\"}"), None);
/// assert_eq!(next_statement_end("SELECT * FROM t -- done;\n"), None);
/// ```
pub fn next_statement_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        match b {
            b';' => return Some(at + 1),
            b'\'' | b'"' => {
                // Backslash escapes; a doubled quote closes and reopens, which is the same here.
                at += 1;
                loop {
                    match bytes.get(at)? {
                        b'\\' => at += 2,
                        &c if c == b => break,
                        _ => at += 1,
                    }
                }
            }
            b'`' => {
                at += 1;
                while *bytes.get(at)? != b'`' {
                    at += 1;
                }
            }
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                at += bytes.get(at..)?.iter().position(|&c| c == b'\n')?;
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                let body = bytes.get(at + 2..)?;
                at += 2 + body.windows(2).position(|w| w == b"*/")? + 1;
            }
            _ => {}
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_only_outside_strings_names_and_comments() {
        assert_eq!(next_statement_end(""), None);
        assert_eq!(next_statement_end("SELECT * FROM t"), None);
        assert_eq!(next_statement_end("COMMIT;"), Some(7));
        assert_eq!(next_statement_end(";"), Some(1));
        assert_eq!(next_statement_end("SELECT 'a;b' FROM t;"), Some(20));
        assert_eq!(next_statement_end("SELECT 'it''s;' FROM t;x"), Some(23));
        assert_eq!(next_statement_end(r#"SELECT "a\";" FROM t;"#), Some(21));
        assert_eq!(next_statement_end("SELECT `a;b` FROM t;"), Some(20));
        assert_eq!(next_statement_end("SELECT 1 -- c;\n;"), Some(16));
        assert_eq!(next_statement_end("SELECT 1 /* ; */;"), Some(17));
        assert_eq!(next_statement_end("SELECT 1 /* ; *"), None);
        assert_eq!(next_statement_end("SELECT 'open;"), None);
        assert_eq!(next_statement_end("SELECT `open;"), None);
        assert_eq!(next_statement_end("INSERT INTO t {\"s\": \"é;\"};"), Some(27));
        assert_eq!(next_statement_end("SELECT 1 /*/ ; */;"), Some(18));
        assert_eq!(next_statement_end("SELECT 1 - -1;"), Some(14));
        assert_eq!(next_statement_end("'\\"), None);
    }
}
