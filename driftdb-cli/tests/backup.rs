//! `driftdb backup`, `verify-backup` and `restore` end to end: a backup restores to the
//! source's answers, a point-in-time restore to the answers at that seq, and a damaged backup
//! makes `verify-backup` exit 1 and `restore` refuse.

mod common;

use common::*;

fn rows(dir: &str, as_of: &str) -> String {
    let q = format!("SELECT * FROM t AS OF {as_of} ORDER BY id");
    let out = driftdb(&["sql", "-d", dir, "--format", "json", "-e", &q]);
    assert_code(&out, 0);
    stdout(&out)
}

#[test]
fn backup_verify_and_restore_from_the_command_line() {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    let script = "CREATE TABLE t (pk=id);\n\
                  INSERT INTO t {\"id\": 1, \"v\": \"a\"};\n\
                  INSERT INTO t {\"id\": 2, \"v\": \"b\"};\n\
                  PATCH t KEY 1 SET {\"v\": \"c\"};\n";
    assert_code(&driftdb(&["sql", "-d", t.d(), "-e", script]), 0);
    let tmp = tempfile::tempdir().unwrap();
    let bk = tmp.path().join("bk");
    let bk = bk.to_str().unwrap();

    let out = driftdb(&["backup", "-d", t.d(), "--to", bk, "--format", "json"]);
    assert_code(&out, 0);
    assert_eq!(json_out(&out)["seq"], 4);
    let out = driftdb(&["verify-backup", bk, "--format", "json"]);
    assert_code(&out, 0);
    assert_eq!(json_out(&out)["ok"], true);

    let restored = tmp.path().join("restored");
    let restored = restored.to_str().unwrap();
    let out = driftdb(&["restore", "--from", bk, "--to", restored, "--format", "json"]);
    assert_code(&out, 0);
    assert_eq!(json_out(&out)["seq"], 4);
    assert_eq!(rows(restored, "@seq:4"), rows(t.d(), "@seq:4"));
    assert_eq!(rows(restored, "@seq:2"), rows(t.d(), "@seq:2"));

    let pit = tmp.path().join("pit");
    let pit = pit.to_str().unwrap();
    let out = driftdb(&["restore", "--from", bk, "--to", pit, "--as-of", "@seq:3"]);
    assert_code(&out, 0);
    assert_eq!(rows(pit, "now"), rows(t.d(), "@seq:3"));
    let out = driftdb(&["sql", "-d", pit, "-e", "SELECT * FROM t AS OF @seq:4"]);
    assert_code(&out, 1);

    // A restore into a directory that is not empty is refused.
    let out = driftdb(&["restore", "--from", bk, "--to", restored]);
    assert_code(&out, 1);

    // Damage: verify-backup names the file and exits 1; restore refuses.
    let seg = std::path::Path::new(bk).join("tables/t/segments/00000001.seg");
    let mut data = std::fs::read(&seg).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0x01;
    std::fs::write(&seg, data).unwrap();
    let out = driftdb(&["verify-backup", bk, "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    assert_eq!(report["ok"], false);
    assert!(report["problems"][0]["file"].as_str().unwrap().ends_with("00000001.seg"));
    let again = tmp.path().join("again");
    let out = driftdb(&["restore", "--from", bk, "--to", again.to_str().unwrap()]);
    assert_code(&out, 1);
    assert!(!again.exists());
}
