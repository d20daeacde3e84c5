//! `verify`, `inspect` and `stats` through the built binary: clean databases, crash images,
//! and damage at known offsets.

mod common;

use common::*;
use serde_json::Value;

/// Frames of a file as `inspect --format json` lists them.
fn frames(path: &std::path::Path) -> Vec<Value> {
    let out = driftdb(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    json_out(&out)["frames"].as_array().unwrap().clone()
}

fn segment(t: &TestDb, table: &str) -> std::path::PathBuf {
    t.dir.join("tables").join(table).join("segments").join("00000001.seg")
}

fn flip(path: &std::path::Path, offset: u64) {
    let mut data = std::fs::read(path).unwrap();
    data[offset as usize] ^= 0x40;
    std::fs::write(path, data).unwrap();
}

/// A crash image: a copy of a database taken while it is open, so its WAL holds batches.
fn crash_image() -> (TestDb, TestDb) {
    let live = TestDb::empty();
    let db = live.open();
    sample_history(&db);
    let image = TestDb::empty();
    copy_dir(&live.dir, &image.dir);
    drop(db);
    (live, image)
}

#[test]
fn verify_checks_snapshots_and_reports_damage_with_file_and_offset() {
    let t = sample_db();
    let out = driftdb(&["snapshot", "-d", t.d(), "--table", "users"]);
    assert_code(&out, 0);
    let rel = json_out(&out)["path"].as_str().unwrap().to_string();
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 0);
    let report = json_out(&out);
    let snap = report["files"].as_array().unwrap().iter().find(|f| f["file"] == rel.as_str());
    assert_eq!(snap.unwrap()["problems"].as_array().unwrap().len(), 0, "{report}");

    // Damage the first block (it starts right after the 40 + 5-byte header and its CRC).
    let path = t.dir.join(&rel);
    let block = 40 + "users".len() as u64 + 4;
    flip(&path, block + 20);
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    let bad = report["files"].as_array().unwrap().iter().find(|f| f["file"] == rel.as_str());
    let problem = &bad.unwrap()["problems"][0];
    assert_eq!(problem["offset"], block, "{report}");
    assert_eq!(problem["severity"], "error");
    assert!(problem["message"].as_str().unwrap().contains("CRC"), "{problem}");
    // The database still opens and reads answer from the segments.
    let out = driftdb(&["export", "-d", t.d(), "--table", "users", "--format", "ndjson"]);
    assert_code(&out, 0);
    assert_eq!(json_lines(&out).len(), 1);
}

#[test]
fn verify_passes_a_clean_database_and_changes_nothing() {
    let t = sample_db();
    let before = tree(&t.dir);
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 0);
    let report = json_out(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["checkpoint_seq"], 7);
    let files: Vec<&str> =
        report["files"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert!(files.contains(&"CHECKPOINT"), "{files:?}");
    assert!(files.contains(&"wal/wal.log"), "{files:?}");
    assert!(files.contains(&"tables/users/segments/00000001.seg"), "{files:?}");
    assert!(files.contains(&"tables/orders/segments/00000001.seg"), "{files:?}");
    // 7 events in users (create, 2 inserts, patch, delete) + 5 in orders, 1 checkpoint frame.
    assert_eq!(report["frames"], 5 + 5 + 1);
    assert_eq!(tree(&t.dir), before, "verify must not change any file");

    let out = driftdb(&["verify", "-d", t.d(), "--format", "table"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("no damage"), "{}", stdout(&out));
}

#[test]
fn verify_reports_a_damaged_segment_frame_with_file_and_offset() {
    let t = sample_db();
    let seg = segment(&t, "orders");
    let third = frames(&seg)[2]["offset"].as_u64().unwrap();
    flip(&seg, third + 12);
    let before = tree(&t.dir);
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    assert_eq!(report["ok"], false);
    let bad = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "tables/orders/segments/00000001.seg")
        .unwrap();
    assert_eq!(bad["status"], "error");
    assert_eq!(bad["problems"][0]["offset"], third);
    assert!(bad["problems"][0]["message"].as_str().unwrap().contains("CRC"), "{bad}");
    assert_eq!(json_err(&out)["kind"], "corrupt");
    assert_eq!(tree(&t.dir), before, "verify must not change a damaged database either");

    let out = driftdb(&["verify", "-d", t.d(), "--format", "table"]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("error: tables/orders/segments/00000001.seg at byte {third}")),
        "{text}"
    );
    assert!(stderr(&out).contains("will not open"), "{}", stderr(&out));
}

#[test]
fn verify_tells_a_torn_wal_tail_from_damage_in_the_middle() {
    let (_live, image) = crash_image();
    let wal = image.dir.join("wal").join("wal.log");
    let batches = frames(&wal);
    assert!(batches.len() >= 2, "{batches:?}");
    let out = driftdb(&["verify", "-d", image.d(), "--format", "json"]);
    assert_code(&out, 0);
    let report = json_out(&out);
    assert_eq!(report["wal_last_seq"], 7);
    assert_eq!(report["checkpoint_seq"], 0);

    // The last batch torn: a warning, exit 0 (the next open cuts it off).
    let torn = TestDb::empty();
    copy_dir(&image.dir, &torn.dir);
    let last = batches.last().unwrap()["offset"].as_u64().unwrap();
    flip(&torn.dir.join("wal").join("wal.log"), last + 10);
    let out = driftdb(&["verify", "-d", torn.d(), "--format", "json"]);
    assert_code(&out, 0);
    let report = json_out(&out);
    let wal_check =
        report["files"].as_array().unwrap().iter().find(|f| f["file"] == "wal/wal.log").unwrap();
    assert_eq!(wal_check["status"], "warning");
    assert_eq!(wal_check["problems"][0]["offset"], last);
    assert!(wal_check["problems"][0]["message"].as_str().unwrap().contains("torn tail"));

    // The first batch damaged with valid batches after it: an error.
    let first = batches[0]["offset"].as_u64().unwrap();
    flip(&wal, first + 10);
    let out = driftdb(&["verify", "-d", image.d(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    let wal_check =
        report["files"].as_array().unwrap().iter().find(|f| f["file"] == "wal/wal.log").unwrap();
    assert_eq!(wal_check["status"], "error");
    assert_eq!(wal_check["problems"][0]["offset"], first);
}

#[test]
fn verify_refuses_a_database_in_use_and_a_missing_one() {
    let t = sample_db();
    let db = t.open();
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 1);
    assert_eq!(json_err(&out)["kind"], "locked");
    assert!(json_err(&out)["message"].as_str().unwrap().contains("in use"));
    drop(db);
    let missing = TestDb::empty();
    let out = driftdb(&["verify", "-d", missing.d(), "--format", "json"]);
    assert_code(&out, 1);
    assert_eq!(json_err(&out)["kind"], "not_a_database");
    assert!(json_err(&out)["message"].as_str().unwrap().contains("driftdb init"));
}

#[test]
fn verify_finds_a_missing_segment_and_a_truncated_one() {
    let t = sample_db();
    std::fs::remove_file(segment(&t, "users")).unwrap();
    let seg = segment(&t, "orders");
    let data = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &data[..data.len() - 3]).unwrap();
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 1);
    let messages: Vec<String> = json_out(&out)["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            f["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |p| format!("{}: {}", f["file"], p["message"]))
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("users/segments/00000001.seg") && m.contains("missing")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("orders/segments/00000001.seg") && m.contains("checkpoint trusts")),
        "{messages:?}"
    );
}

#[test]
fn inspect_decodes_every_kind_of_file() {
    let t = sample_db();
    let users = frames(&segment(&t, "users"));
    let kinds: Vec<&str> = users.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["CREATE_TABLE", "INSERT", "INSERT", "PATCH", "SOFT_DELETE"]);
    assert_eq!(users[0]["offset"], 16);
    assert!(users.iter().all(|f| f["crc_ok"] == true));
    assert_eq!(users[3]["key"], "user1");
    assert_eq!(users[3]["payload"], serde_json::json!({"status": "away"}));
    assert_eq!(users[3]["seq"], 3);
    assert!(users[3]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(users[0]["payload"]["primary_key"], "id");

    let out = driftdb(&["inspect", t.dir.join("CHECKPOINT").to_str().unwrap(), "--format", "json"]);
    assert_code(&out, 0);
    let cp = json_out(&out);
    assert_eq!(cp["kind"], "checkpoint");
    assert_eq!(cp["frames"][0]["payload"]["seq"], 7);

    let (_live, image) = crash_image();
    let wal = image.dir.join("wal").join("wal.log");
    let out = driftdb(&["inspect", wal.to_str().unwrap(), "--format", "json"]);
    assert_code(&out, 0);
    let report = json_out(&out);
    let txns: Vec<&Value> = report["frames"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["transactions"].as_array().unwrap())
        .collect();
    assert_eq!(
        txns.iter().map(|t| t["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(txns[2]["events"][0]["type"], "PATCH");
    assert_eq!(txns[2]["events"][0]["table"], "users");
    // The preallocated zeros after the last batch are reported, not as damage.
    assert!(report["gaps"].as_array().unwrap().iter().all(|g| g["zeros_to_end"] == true));

    let out = driftdb(&["inspect", segment(&t, "orders").to_str().unwrap(), "--format", "table"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for needle in [
        "offset",
        "crc",
        "INSERT",
        "orders",
        r#"{"id":2,"items":[{"sku":"x"}],"total":20}"#,
        "every frame is intact",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
}

#[test]
fn inspect_reads_past_damage_and_stays_read_only() {
    let t = sample_db();
    let seg = segment(&t, "users");
    let listed = frames(&seg);
    // A bad CRC in frame 2: it is listed as damaged and frames 3.. are still decoded.
    let second = listed[1]["offset"].as_u64().unwrap();
    flip(&seg, second + 20);
    let before = std::fs::read(&seg).unwrap();
    let out = driftdb(&["inspect", seg.to_str().unwrap(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    let got = report["frames"].as_array().unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(got[1]["crc_ok"], false);
    assert!(got[2..].iter().all(|f| f["crc_ok"] == true));
    assert_eq!(got[4]["type"], "SOFT_DELETE");
    assert_eq!(report["ok"], false);
    assert!(report["error"].as_str().unwrap().contains(&format!("offset {second}")), "{report}");
    assert_eq!(std::fs::read(&seg).unwrap(), before);

    // A damaged length field: the walk searches forward and finds the next frames again.
    let t = sample_db();
    let seg = segment(&t, "users");
    let mut data = std::fs::read(&seg).unwrap();
    data[second as usize + 3] = 0x7f; // length far beyond the file
    std::fs::write(&seg, &data).unwrap();
    let out = driftdb(&["inspect", seg.to_str().unwrap(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    let gaps = report["gaps"].as_array().unwrap();
    assert_eq!(gaps[0]["offset"], second);
    assert_eq!(gaps[0]["bytes"].as_u64().unwrap(), listed[2]["offset"].as_u64().unwrap() - second);
    let got = report["frames"].as_array().unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(got[1]["found_by_search"], true);
    assert_eq!(got[1]["offset"], listed[2]["offset"]);

    let out = driftdb(&["inspect", seg.to_str().unwrap(), "--format", "table"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("frames found again from offset"), "{}", stdout(&out));
    assert!(stdout(&out).contains("ok, found by search"), "{}", stdout(&out));

    let junk = t.file("junk.bin");
    std::fs::write(&junk, b"hello world, not a segment").unwrap();
    let out = driftdb(&["inspect", junk.to_str().unwrap()]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("not a DriftDB segment, WAL or CHECKPOINT file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stats_counts_rows_versions_and_files() {
    let t = sample_db();
    let out = driftdb(&["stats", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 0);
    let stats = json_out(&out);
    assert_eq!(stats["last_seq"], 7);
    assert!(stats["last_time"].as_str().unwrap().ends_with('Z'));
    let tables = stats["tables"].as_array().unwrap();
    let users = tables.iter().find(|t| t["table"] == "users").unwrap();
    assert_eq!(users["live_rows"], 1);
    assert_eq!(users["versions"], 4);
    assert_eq!(users["segments"], 1);
    assert_eq!(users["compacted_segments"], 0);
    assert!(users["segment_bytes"].as_u64().unwrap() > 16);
    let orders = tables.iter().find(|t| t["table"] == "orders").unwrap();
    assert_eq!(orders["live_rows"], 3);
    assert_eq!(orders["versions"], 4);
    assert!(stats["wal_bytes"].as_u64().unwrap() >= 16);

    let out = driftdb(&["stats", "-d", t.d(), "--format", "csv"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "table,state,primary_key,live_rows,keys,versions,segments,segment_bytes,compacted\n"
        ),
        "{text}"
    );
    assert!(text.contains("users,live,id,1,2,4,1,"), "{text}");
}

#[test]
fn reports_print_rows_as_ndjson_and_csv() {
    let t = sample_db();
    let seg = segment(&t, "users");
    let out = driftdb(&["inspect", seg.to_str().unwrap(), "--format", "ndjson"]);
    assert_code(&out, 0);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["offset"], 16);
    assert_eq!(rows[1]["type"], "INSERT");
    assert_eq!(rows[1]["key"], "user1");
    let out = driftdb(&["--format", "csv", "verify", "--data", t.d()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.starts_with("file,kind,bytes,frames,status\nCHECKPOINT,checkpoint,"), "{text}");
    assert!(text.contains("tables/users/segments/00000001.seg,segment,"), "{text}");
}

#[test]
fn inspect_lists_a_snapshot_entry_by_entry_and_past_a_damaged_block() {
    let t = sample_db();
    let out = driftdb(&["snapshot", "-d", t.d(), "--table", "orders"]);
    assert_code(&out, 0);
    let path = t.dir.join(json_out(&out)["path"].as_str().unwrap());
    let out = driftdb(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    assert_code(&out, 0);
    let report = json_out(&out);
    assert_eq!(report["kind"], "snapshot");
    assert_eq!((report["table"].as_str(), report["seq"].as_u64()), (Some("orders"), Some(7)));
    assert_eq!(report["snapshot_kind"], "full");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["key"], 2);
    assert_eq!(rows[1]["document"]["total"], 25);
    let out = driftdb(&["inspect", path.to_str().unwrap(), "--format", "table"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("full snapshot of orders at seq 7"), "{}", stdout(&out));

    // A flipped byte in the only block: listed as damaged at its offset, exit code 1.
    let block = 40 + "orders".len() as u64 + 4;
    flip(&path, block + 18);
    let out = driftdb(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    assert_code(&out, 1);
    let report = json_out(&out);
    assert_eq!(report["blocks"][0]["ok"], false, "{report}");
    assert_eq!(report["blocks"][0]["offset"], block);
    assert!(report["blocks"][0]["error"].as_str().unwrap().contains("CRC"), "{report}");
    assert_eq!(json_err(&out)["kind"], "corrupt");
}

#[test]
fn verify_checks_index_files_and_calls_damage_there_a_warning() {
    let t = TestDb::empty();
    let db = t.open();
    let mut schema = driftdb_core::TableSchema::new("id");
    schema.indexes.push(vec!["status".into()]);
    db.create_table("orders", schema).unwrap();
    let mut tx = db.begin();
    for (id, status) in [("o1", "new"), ("o2", "paid"), ("o3", "new")] {
        tx.insert("orders", serde_json::json!({"id": id, "status": status}).into()).unwrap();
    }
    tx.commit().unwrap();
    drop(db); // a clean close writes the index file
    let rel = "tables/orders/indexes/status.idx";
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    assert_code(&out, 0);
    let report = json_out(&out);
    let file = report["files"].as_array().unwrap().iter().find(|f| f["file"] == rel);
    assert_eq!(file.unwrap()["kind"], "index", "{report}");
    assert_eq!(file.unwrap()["problems"].as_array().unwrap().len(), 0, "{report}");

    flip(&t.dir.join(rel), 30);
    let out = driftdb(&["verify", "-d", t.d(), "--format", "json"]);
    let report = json_out(&out);
    let file = report["files"].as_array().unwrap().iter().find(|f| f["file"] == rel);
    let problem = &file.unwrap()["problems"][0];
    assert_eq!(problem["severity"], "warning", "{report}");
    assert!(problem["message"].as_str().unwrap().contains("rebuilds the index"), "{problem}");
    assert_eq!(report["errors"], 0, "{report}");
    // The database opens; the index is rebuilt and answers.
    let out = driftdb(&["sql", "-d", t.d(), "-e", "SELECT * FROM orders WHERE status = 'new'"]);
    assert_code(&out, 0);
}
