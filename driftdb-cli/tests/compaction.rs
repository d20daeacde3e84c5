//! `compact` through the built binary on a database with a real history, and what `verify`,
//! `inspect` and `stats` make of the compacted files: clean, damaged, and left behind.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

/// Run DriftQL statements, each committed on its own; exit 0.
fn sql(t: &TestDb, text: &str) -> Vec<Value> {
    let out = driftdb(&["sql", "-d", t.d(), "-e", text]);
    assert_code(&out, 0);
    json_lines(&out)
}

/// Run a command that prints one JSON value; exit 0.
fn ok_json(args: &[&str]) -> Value {
    let out = driftdb(args);
    assert_code(&out, 0);
    json_out(&out)
}

fn segments(t: &TestDb, table: &str) -> PathBuf {
    t.dir.join("tables").join(table).join("segments")
}

/// The names in a table's `segments/` directory, sorted.
fn segment_names(t: &TestDb, table: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(segments(t, table))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `orders` (seqs 1-4, 7, 8: a soft delete and a second incarnation) and `notes` (5, 6).
fn history() -> TestDb {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    sql(
        &t,
        r#"CREATE TABLE orders (pk=id, INDEX(status));
INSERT INTO orders [{"id": 1, "status": "new", "total": 10},
                    {"id": 2, "status": "new", "total": 20},
                    {"id": 3, "status": "new", "total": 30}];
PATCH orders KEY 1 SET {"status": "paid"};
SOFT DELETE FROM orders KEY 2;
CREATE TABLE notes (pk=id);
INSERT INTO notes {"id": "a", "text": "hello"};
PATCH orders KEY 3 SET {"status": "shipped", "carrier": "DHL"};
INSERT INTO orders {"id": 2, "status": "new again", "total": 21};"#,
    );
    t
}

/// Every answer the database gives about its past, as printed: each table at every seq it
/// exists at, the drift of every order, the tables at a point, and an indexed query in the past.
fn answers(t: &TestDb, last_seq: u64) -> Vec<String> {
    let mut out = Vec::new();
    for seq in 1..=last_seq {
        for table in ["orders", "notes"] {
            if table == "notes" && seq < 5 {
                continue;
            }
            let text = format!("SELECT * FROM {table} AS OF @seq:{seq} ORDER BY id");
            out.push(stdout(&driftdb(&["sql", "-d", t.d(), "-e", &text])));
        }
    }
    for key in ["1", "2", "3"] {
        out.push(stdout(&driftdb(&["drift", "-d", t.d(), "--table", "orders", "--key", key])));
    }
    out.push(stdout(&driftdb(&["tables", "-d", t.d(), "--as-of", "@seq:4"])));
    let indexed = "SELECT id FROM orders WHERE status = \"new\" AS OF @seq:3";
    out.push(stdout(&driftdb(&["sql", "-d", t.d(), "-e", indexed])));
    assert!(out.iter().all(|a| !a.is_empty()), "{out:?}");
    out
}

/// The `verify --format json` report; exit 0, no error, no warning, and no note either.
fn verify_clean(t: &TestDb) -> Value {
    let report = ok_json(&["verify", "-d", t.d(), "--format", "json"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["warnings"], 0, "{report}");
    for file in report["files"].as_array().unwrap() {
        assert_eq!(file["problems"], json!([]), "{file}");
    }
    report
}

fn file_entry<'a>(report: &'a Value, file: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == file)
        .unwrap_or_else(|| panic!("{file} not in {report}"))
}

fn inspect(path: &Path) -> (i32, Value) {
    let out = driftdb(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    (out.status.code().unwrap(), json_out(&out))
}

fn flip(path: &Path, offset: u64) {
    let mut data = std::fs::read(path).unwrap();
    data[offset as usize] ^= 0x40;
    std::fs::write(path, data).unwrap();
}

#[test]
fn compaction_keeps_every_answer_and_verify_inspect_and_stats_read_the_new_files() {
    let t = history();
    let before = answers(&t, 8);

    let done = ok_json(&["compact", "-d", t.d(), "--table", "orders"]);
    assert_eq!(done["statement"], "COMPACT");
    assert_eq!(done["table"], "orders");
    assert_eq!(
        (done["segments_before"].as_u64(), done["segments_after"].as_u64()),
        (Some(1), Some(1))
    );
    // CREATE TABLE, three INSERTs, two PATCHes, a SOFT_DELETE and the second INSERT of key 2.
    assert_eq!(done["events"], 8);
    let message = done["message"].as_str().unwrap();
    assert!(message.starts_with("compacted orders: 1 segment(s), "), "{message}");
    assert!(message.ends_with("(8 events, every one kept)"), "{message}");
    assert_eq!(segment_names(&t, "orders"), ["00000002.seg", "compacted-00000001-00000001.seg"]);
    assert_eq!(answers(&t, 8), before, "AS OF answers changed by the compaction");

    // verify: the compacted set and the plain segment after it, nothing stray, nothing damaged.
    let report = verify_clean(&t);
    assert_eq!(report["checkpoint_seq"], 8);
    let compacted = file_entry(&report, "tables/orders/segments/compacted-00000001-00000001.seg");
    assert_eq!(compacted["kind"], "compacted");
    assert_eq!(compacted["frames"], 8);
    assert_eq!(file_entry(&report, "tables/orders/segments/00000002.seg")["frames"], 0);
    // 8 orders events, 2 notes events, the checkpoint frame.
    assert_eq!(report["frames"], 8 + 2 + 1);
    let out = driftdb(&["verify", "-d", t.d(), "--format", "table"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("no damage (0 warning(s))"), "{}", stdout(&out));

    // inspect decodes every frame of the compressed file, and the version 2 checkpoint.
    let file = segments(&t, "orders").join("compacted-00000001-00000001.seg");
    let (code, listing) = inspect(&file);
    assert_eq!(code, 0, "{listing}");
    assert_eq!(
        (listing["compressed"].as_bool(), listing["version"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(listing["ok"], true);
    assert_eq!(listing["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(listing["blocks"][0]["offset"], 16);
    assert_eq!(listing["blocks"][0]["events"], 8);
    assert_eq!(listing["trailer"]["ok"], true);
    assert_eq!(listing["trailer"]["events"], 8);
    assert_eq!(
        (listing["trailer"]["first_seq"].as_u64(), listing["trailer"]["last_seq"].as_u64()),
        (Some(1), Some(8))
    );
    let frames = listing["frames"].as_array().unwrap();
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["CREATE_TABLE", "INSERT", "INSERT", "INSERT", "PATCH", "SOFT_DELETE", "PATCH", "INSERT"]
    );
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 2, 2, 3, 4, 7, 8]);
    assert!(frames.iter().all(|f| f["crc_ok"] == true && f["block"] == 16), "{listing}");
    assert_eq!(frames[0]["offset_in_block"], 0);
    assert_eq!(frames[6]["key"], 3);
    assert_eq!(frames[6]["payload"], json!({"status": "shipped", "carrier": "DHL"}));
    assert_eq!(frames[7]["payload"], json!({"id": 2, "status": "new again", "total": 21}));
    assert!(frames[7]["time"].as_str().unwrap().ends_with('Z'));
    let out = driftdb(&["inspect", file.to_str().unwrap(), "--format", "table"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for needle in [
        "BLOCK",
        "16+0",
        "SOFT_DELETE",
        "TRAILER",
        "compressed segment file (version 2)",
        "every frame is intact",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let (code, checkpoint) = inspect(&t.dir.join("CHECKPOINT"));
    assert_eq!(code, 0, "{checkpoint}");
    assert_eq!(checkpoint["version"], 2);
    assert_eq!(checkpoint["header_error"], Value::Null);
    assert_eq!(
        checkpoint["frames"][0]["payload"]["tables"]["orders"]["compacted"],
        json!({"generation": 1, "segments": 1, "first": 2})
    );

    // stats counts both kinds of segment file.
    let stats = ok_json(&["stats", "-d", t.d(), "--format", "json"]);
    let orders =
        stats["tables"].as_array().unwrap().iter().find(|x| x["table"] == "orders").unwrap();
    let size = |name: &str| std::fs::metadata(segments(&t, "orders").join(name)).unwrap().len();
    assert_eq!(orders["segments"], 2);
    assert_eq!(orders["compacted_segments"], 1);
    assert_eq!(orders["compacted_bytes"], size("compacted-00000001-00000001.seg"));
    assert_eq!(
        orders["segment_bytes"],
        size("compacted-00000001-00000001.seg") + size("00000002.seg")
    );
    assert_eq!(orders["versions"], 7);
    let out = driftdb(&["stats", "-d", t.d(), "--format", "csv"]);
    assert!(stdout(&out).contains("\norders,live,id,3,3,7,2,"), "{}", stdout(&out));
    assert!(stdout(&out).lines().any(|l| l.starts_with("orders,") && l.ends_with(",1")));

    // More history, and a second compaction: generation 2 takes in generation 1 and plain
    // segment 2.
    sql(&t, r#"PATCH orders KEY 1 SET {"status": "delivered"};"#);
    let before = answers(&t, 9);
    let done = ok_json(&["compact", "-d", t.d(), "--table", "orders"]);
    assert_eq!((done["segments_before"].as_u64(), done["events"].as_u64()), (Some(2), Some(9)));
    assert_eq!(segment_names(&t, "orders"), ["00000003.seg", "compacted-00000002-00000001.seg"]);
    assert_eq!(answers(&t, 9), before);
    let report = verify_clean(&t);
    assert_eq!(
        file_entry(&report, "tables/orders/segments/compacted-00000002-00000001.seg")["frames"],
        9
    );
    // Writes go on after it, into plain segment 3, and verify follows them.
    sql(&t, r#"INSERT INTO orders {"id": 4, "status": "new", "total": 40};"#);
    let report = verify_clean(&t);
    assert_eq!(file_entry(&report, "tables/orders/segments/00000003.seg")["frames"], 1);
    assert_eq!(report["checkpoint_seq"], 10);
}

/// A compacted table large enough for several blocks: 3000 rows imported, then compacted.
fn compacted_import() -> (TestDb, PathBuf, Vec<Value>) {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    sql(&t, "CREATE TABLE t (pk=id);");
    let rows: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"id\": {i}, \"name\": \"customer {i}\", \"note\": \"{}\"}}\n",
                "x".repeat(i % 50)
            )
        })
        .collect();
    let data = t.file("rows.ndjson");
    std::fs::write(&data, rows).unwrap();
    let out = driftdb(&[
        "import",
        "-d",
        t.d(),
        "--table",
        "t",
        data.to_str().unwrap(),
        "--batch",
        "1000",
    ]);
    assert_code(&out, 0);
    ok_json(&["compact", "-d", t.d(), "--table", "t"]);
    let file = segments(&t, "t").join("compacted-00000001-00000001.seg");
    let (code, listing) = inspect(&file);
    assert_eq!(code, 0, "{listing}");
    let blocks = listing["blocks"].as_array().unwrap().clone();
    assert!(blocks.len() >= 3, "{blocks:?}");
    assert_eq!(listing["frames"].as_array().unwrap().len(), 3001);
    (t, file, blocks)
}

#[test]
fn a_damaged_compressed_block_is_reported_at_its_offset_and_inspect_reads_past_it() {
    let (t, file, blocks) = compacted_import();
    let name = "tables/t/segments/compacted-00000001-00000001.seg";
    let block = blocks[1]["offset"].as_u64().unwrap();
    let events = |b: &Value| b["events"].as_u64().unwrap();
    // One byte inside the second block's compressed data.
    flip(&file, block + 32 + 10);
    let before = tree(&t.dir);

    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    let bad = file_entry(&report, name);
    assert_eq!(bad["status"], "error");
    assert_eq!(bad["kind"], "compacted");
    assert_eq!(bad["problems"][0]["offset"], block);
    assert!(
        bad["problems"][0]["message"].as_str().unwrap().contains("block CRC mismatch"),
        "{bad}"
    );
    assert_eq!(json_err(&out)["kind"], "corrupt");
    let out = driftdb(&["verify", "-d", t.d(), "--format", "table"]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains(&format!("error: {name} at byte {block}: block CRC")),
        "{}",
        stdout(&out)
    );
    assert_eq!(tree(&t.dir), before, "verify must not change a damaged database");

    // inspect lists the blocks before and after the damaged one, with their frames.
    let (code, listing) = inspect(&file);
    assert_eq!(code, 1);
    assert_eq!(listing["ok"], false);
    assert!(listing["error"].as_str().unwrap().contains(&format!("offset {block}")), "{listing}");
    let got = listing["blocks"].as_array().unwrap();
    assert_eq!(got.len(), blocks.len());
    assert_eq!(got[1]["ok"], false);
    assert!(got[1]["error"].as_str().unwrap().contains("CRC"), "{listing}");
    assert!(got.iter().enumerate().all(|(i, b)| i == 1 || b["ok"] == true), "{listing}");
    assert_eq!(got[2]["offset"], blocks[2]["offset"]);
    assert_eq!(got[2]["found_by_search"], false, "found by following the damaged block's length");
    assert_eq!(listing["frames"].as_array().unwrap().len() as u64, 3001 - events(&blocks[1]));
    assert_eq!(listing["gaps"][0]["offset"], block);
    assert_eq!(listing["trailer"]["ok"], true);
    let out = driftdb(&["inspect", file.to_str().unwrap(), "--format", "table"]);
    assert_code(&out, 1);
    let text = stdout(&out);
    let again = blocks[2]["offset"].as_u64().unwrap();
    assert!(text.contains(&format!("frames found again from offset {again}")), "{text}");
    assert!(text.contains("DAMAGED"), "{text}");
    // The engine refuses to open it, naming the same file and offset.
    let out = driftdb(&["tables", "-d", t.d()]);
    assert_code(&out, 1);
    let err = json_err(&out);
    assert_eq!(err["kind"], "corrupt");
    assert!(err["message"].as_str().unwrap().contains(&format!("at byte offset {block}")), "{err}");
}

#[test]
fn inspect_searches_past_a_damaged_block_length_and_verify_checks_the_trailer() {
    let (t, file, blocks) = compacted_import();
    let pristine = std::fs::read(&file).unwrap();
    let block = blocks[1]["offset"].as_u64().unwrap();
    // The second block's stored length: its length no longer leads to the third block.
    flip(&file, block + 1);
    let (code, listing) = inspect(&file);
    assert_eq!(code, 1);
    let got = listing["blocks"].as_array().unwrap();
    assert_eq!(got[1]["ok"], false);
    assert_eq!(got[1]["bytes"], blocks[1]["bytes"]);
    assert_eq!(got[2]["offset"], blocks[2]["offset"]);
    assert_eq!(got[2]["found_by_search"], true);
    assert!(got[2..].iter().all(|b| b["ok"] == true), "{listing}");

    // The trailer: damage there is reported at its offset, every block still listed.
    std::fs::write(&file, &pristine).unwrap();
    let trailer = pristine.len() as u64 - 40;
    flip(&file, trailer + 20);
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    let bad = file_entry(&report, "tables/t/segments/compacted-00000001-00000001.seg");
    assert_eq!(bad["problems"][0]["offset"], trailer);
    assert!(bad["problems"][0]["message"].as_str().unwrap().contains("trailer"), "{bad}");
    let (code, listing) = inspect(&file);
    assert_eq!(code, 1);
    assert_eq!(listing["trailer"]["ok"], false);
    assert_eq!(listing["trailer"]["offset"], trailer);
    assert_eq!(listing["frames"].as_array().unwrap().len(), 3001);
}

#[test]
fn verify_notes_what_a_crashed_compaction_left_behind_and_finds_a_missing_set() {
    let t = history();
    ok_json(&["compact", "-d", t.d(), "--table", "orders"]);
    let dir = segments(&t, "orders");
    let live = dir.join("compacted-00000001-00000001.seg");
    // What compactions that stopped part-way leave: a retired plain segment, a set of a
    // generation that never reached its checkpoint, a file still being written.
    std::fs::copy(dir.join("00000002.seg"), dir.join("00000001.seg")).unwrap();
    std::fs::copy(&live, dir.join("compacted-00000002-00000001.seg")).unwrap();
    std::fs::write(dir.join("compacted-00000002-00000002.seg.tmp"), b"half written").unwrap();
    let report = ok_json(&["verify", "-d", t.d(), "--format", "json"]);
    assert_eq!((report["errors"].as_u64(), report["warnings"].as_u64()), (Some(0), Some(0)));
    for name in
        ["00000001.seg", "compacted-00000002-00000001.seg", "compacted-00000002-00000002.seg.tmp"]
    {
        let entry = file_entry(&report, &format!("tables/orders/segments/{name}"));
        assert_eq!(entry["status"], "ok", "{entry}");
        let note = &entry["problems"][0];
        assert_eq!(note["severity"], "note");
        assert!(note["message"].as_str().unwrap().contains("the next open removes it"), "{note}");
    }
    assert_eq!(
        file_entry(&report, "tables/orders/segments/compacted-00000001-00000001.seg")["problems"],
        json!([])
    );
    // The next open removes them, as verify said.
    assert_code(&driftdb(&["tables", "-d", t.d()]), 0);
    assert_eq!(segment_names(&t, "orders"), ["00000002.seg", "compacted-00000001-00000001.seg"]);
    verify_clean(&t);

    // A file of the live set missing is an error naming it.
    std::fs::remove_file(&live).unwrap();
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    let missing = file_entry(&report, "tables/orders/segments/compacted-00000001-00000001.seg");
    assert!(missing["problems"][0]["message"].as_str().unwrap().contains("missing"), "{missing}");
}

/// A retention policy of one second, a pause, and `compact` folds the history: reads before
/// the horizon exit 1 with the error naming the oldest readable seq; reads from it still work.
#[test]
fn compact_folds_history_older_than_the_retention_window() {
    let t = TestDb::empty();
    assert_code(&driftdb(&["init", t.d()]), 0);
    sql(&t, "CREATE TABLE t (pk=id)");
    for i in 0..3 {
        sql(&t, &format!(r#"INSERT INTO t {{"id": {i}}}"#));
    }
    sql(&t, r#"PATCH t KEY 0 SET {"n": 1}"#);
    let set = sql(&t, "ALTER TABLE t SET RETENTION '1 seconds'");
    assert_eq!(set[0]["retention"], "1 second");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let done = ok_json(&["compact", "-d", t.d(), "--table", "t"]);
    let h = done["folded_to"].as_u64().unwrap_or_else(|| panic!("no fold: {done}"));
    assert_eq!(h, 6, "the ALTER at seq 6 is the last commit older than a second: {done}");
    let out = driftdb(&["select", "-d", t.d(), "--table", "t", "--as-of", "@seq:1"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("the oldest readable seq is 6"), "{err}");
    assert!(err.contains("retention '1 second'"), "{err}");
    let out = driftdb(&["select", "-d", t.d(), "--table", "t", "--format", "json"]);
    assert_code(&out, 0);
    assert_eq!(json_out(&out).as_array().map(Vec::len), Some(3), "{}", stdout(&out));
}
