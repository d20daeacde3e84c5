//! End to end: `init --encrypt`, commands with `DRIFTDB_KEY` and `--key-file`, the errors
//! (and exit code 3) for a missing, wrong or malformed key, `rekey`, and backups of an
//! encrypted database. Every file stays free of the plaintext written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{bin, json_out, stderr, stdout};

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const NEW_KEY: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const SECRET: &str = "SECRETVALUE4711";

fn with_key(key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = bin();
    if let Some(key) = key {
        cmd.env("DRIFTDB_KEY", key);
    }
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "failed: {}\n{}", stdout(&out), stderr(&out));
    out
}

fn assert_no_secret(dir: &Path) {
    for (path, data) in common::tree(dir) {
        let found = data.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
        assert!(!found, "plaintext in {}", path.display());
    }
}

fn setup(dir: &Path) -> String {
    let db = dir.join("db").display().to_string();
    ok(with_key(Some(KEY), &["init", "--encrypt", &db, "--format", "json"]));
    let insert = format!(
        "CREATE TABLE users (pk=id); INSERT INTO users {{\"id\": \"u1\", \"email\": \"{SECRET}\"}}"
    );
    ok(with_key(Some(KEY), &["sql", "-d", &db, "-e", &insert, "--format", "json"]));
    db
}

#[test]
fn encrypted_database_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let db = setup(tmp.path());
    let select = ["select", "-d", &db, "--table", "users", "--format", "json"];
    let rows = json_out(&ok(with_key(Some(KEY), &select)));
    assert_eq!(rows[0]["email"], SECRET);
    // --key-file, before or after the command.
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let kf = key_file.display().to_string();
    let mut args = vec!["--key-file", &kf];
    args.extend(select);
    assert_eq!(json_out(&ok(with_key(None, &args)))[0]["email"], SECRET);
    let mut args = select.to_vec();
    args.extend(["--key-file", &kf]);
    assert_eq!(json_out(&ok(with_key(None, &args)))[0]["email"], SECRET);
    let export = ["export", "-d", &db, "--table", "users", "--format", "ndjson"];
    assert!(stdout(&ok(with_key(Some(KEY), &export))).contains(SECRET));
    let verify = ok(with_key(Some(KEY), &["verify", "-d", &db, "--format", "json"]));
    assert_eq!(json_out(&verify)["ok"], true);
    assert_no_secret(tmp.path());

    // No key, a wrong key, a malformed key: exit code 3 and a clear message.
    let missing = with_key(None, &select);
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("is encrypted: give its key"), "{}", stderr(&missing));
    let wrong = with_key(Some(NEW_KEY), &select);
    assert_eq!(wrong.status.code(), Some(3));
    assert!(stderr(&wrong).contains("wrong key"), "{}", stderr(&wrong));
    let bad = with_key(Some("abc"), &select);
    assert_eq!(bad.status.code(), Some(3));
    assert!(stderr(&bad).contains("DRIFTDB_KEY"), "{}", stderr(&bad));
    let verify_no_key = with_key(None, &["verify", "-d", &db]);
    assert_eq!(verify_no_key.status.code(), Some(3), "{}", stderr(&verify_no_key));
    let wal = format!("{db}/wal/wal.log");
    assert_eq!(with_key(None, &["inspect", &wal]).status.code(), Some(3));
    ok(with_key(Some(KEY), &["inspect", &wal]));

    // Backups hold sealed files; verify-backup and restore need the key.
    let bk = tmp.path().join("bk").display().to_string();
    ok(with_key(Some(KEY), &["backup", "-d", &db, "--to", &bk]));
    assert_eq!(with_key(None, &["verify-backup", &bk]).status.code(), Some(3));
    let report = json_out(&ok(with_key(Some(KEY), &["verify-backup", &bk, "--format", "json"])));
    assert_eq!(report["ok"], true);
    let restored = tmp.path().join("restored").display().to_string();
    ok(with_key(Some(KEY), &["restore", "--from", &bk, "--to", &restored]));
    let select_r = ["select", "-d", &restored, "--table", "users", "--format", "json"];
    assert_eq!(json_out(&ok(with_key(Some(KEY), &select_r)))[0]["email"], SECRET);
    assert_no_secret(tmp.path());
}

#[test]
fn rekey_switches_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let db = setup(tmp.path());
    let no_new = with_key(Some(KEY), &["rekey", "-d", &db]);
    assert_eq!(no_new.status.code(), Some(2), "{}", stderr(&no_new));
    let new_file = tmp.path().join("new.key");
    std::fs::write(&new_file, NEW_KEY).unwrap();
    let nf = new_file.display().to_string();
    let out =
        ok(with_key(Some(KEY), &["rekey", "-d", &db, "--new-key-file", &nf, "--format", "json"]));
    assert_eq!(json_out(&out)["key_id"], 2);
    let select = ["select", "-d", &db, "--table", "users", "--format", "json"];
    assert_eq!(with_key(Some(KEY), &select).status.code(), Some(3));
    assert_eq!(json_out(&ok(with_key(Some(NEW_KEY), &select)))[0]["email"], SECRET);
    // DRIFTDB_NEW_KEY works too, and the old key is refused.
    let mut cmd = bin();
    cmd.env("DRIFTDB_KEY", NEW_KEY).env("DRIFTDB_NEW_KEY", KEY);
    let back = cmd.args(["rekey", "-d", &db]).stdin(Stdio::null()).output().unwrap();
    assert!(back.status.success(), "{}", stderr(&back));
    assert_eq!(json_out(&ok(with_key(Some(KEY), &select)))[0]["email"], SECRET);
    assert_no_secret(tmp.path());
}

#[test]
fn init_encrypt_needs_a_key_and_plaintext_databases_refuse_one() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db").display().to_string();
    let out = with_key(None, &["init", "--encrypt", &db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs a key"), "{}", stderr(&out));
    let plain = tmp.path().join("plain").display().to_string();
    ok(with_key(None, &["init", &plain]));
    let out = with_key(Some(KEY), &["tables", "-d", &plain]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("not encrypted"), "{}", stderr(&out));
}

#[test]
fn the_shell_takes_the_key_file_too() {
    let tmp = tempfile::tempdir().unwrap();
    let db = setup(tmp.path());
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let kf = key_file.display().to_string();
    let out = common::driftdb_stdin(&["--key-file", &kf, "-d", &db], "SELECT * FROM users;\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(SECRET), "{}", stdout(&out));
    let out = common::driftdb_stdin(&["-d", &db], "SELECT * FROM users;\n");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
