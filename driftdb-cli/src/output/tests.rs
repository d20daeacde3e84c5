//! Rendering of hand-made outcomes in every format.

use driftdb_core::{Key, Value};
use driftdb_ql::{Done, Outcome, Rows, WriteSummary};
use serde_json::json;

use super::{Printer, Report};
use crate::args::OutputFormat;

fn rows() -> Outcome {
    Outcome::Rows(Rows {
        columns: vec!["id".into(), "status".into(), "address".into()],
        rows: vec![
            vec![
                Some(Value::String("o1".into())),
                Some(Value::String("paid, in full".into())),
                Some(Value::from(json!({"city": "Oslo", "zip": [1, 2]}))),
            ],
            vec![Some(Value::String("o2".into())), Some(Value::Null), None],
        ],
        seq: 7,
    })
}

fn write(committed: Option<(u64, u64)>) -> Outcome {
    Outcome::Write(WriteSummary {
        statement: "INSERT",
        affected: vec![Key::from("o1"), Key::Int(2)],
        committed,
    })
}

fn done() -> Outcome {
    Outcome::Done(Done {
        statement: "CREATE TABLE",
        message: "created table orders".into(),
        committed: Some((1, 1_735_689_600_000)),
        details: vec![("table".into(), Value::String("orders".into()))],
    })
}

fn render(format: OutputFormat, outcome: &Outcome) -> String {
    let mut p = Printer::new(format, Vec::new());
    p.outcome(outcome).unwrap();
    String::from_utf8(p.into_inner()).unwrap()
}

#[test]
fn json_is_exactly_to_json_on_one_line() {
    for o in [rows(), write(Some((5, 0))), write(None), done()] {
        let text = render(OutputFormat::Json, &o);
        assert_eq!(text.lines().count(), 1);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, o.to_json());
    }
    let text = render(OutputFormat::Json, &rows());
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed[1], json!({"id": "o2", "status": null}));
}

#[test]
fn ndjson_prints_one_row_per_line() {
    let text = render(OutputFormat::Ndjson, &rows());
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["address"]["city"], "Oslo");
    let text = render(OutputFormat::Ndjson, &write(Some((5, 0))));
    let value: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(value["affected"], 2);
    assert_eq!(value["seq"], 5);
}

#[test]
fn csv_has_a_header_and_json_for_nested_values() {
    let text = render(OutputFormat::Csv, &rows());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,status,address");
    assert_eq!(lines[1], r#"o1,"paid, in full","{""city"":""Oslo"",""zip"":[1,2]}""#);
    assert_eq!(lines[2], "o2,null,");
    let text = render(OutputFormat::Csv, &write(Some((5, 1000))));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "statement,affected,keys,seq,time");
    assert_eq!(lines[1], r#"INSERT,2,"[""o1"",2]",5,1970-01-01T00:00:01.000Z"#);
}

#[test]
fn table_aligns_columns_and_summarises_writes() {
    let text = render(OutputFormat::Table, &rows());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.contains("paid, in full")), "{text}");
    assert!(text.contains(r#"{"city":"Oslo","zip":[1,2]}"#), "{text}");
    // Every line of the table has the same width.
    let table: Vec<&&str> = lines.iter().filter(|l| !l.starts_with('(')).collect();
    let width = table[0].chars().count();
    assert!(table.iter().all(|l| l.chars().count() == width), "{text}");
    assert_eq!(lines.last().unwrap(), &"(2 rows at seq 7)");
    assert_eq!(render(OutputFormat::Table, &write(Some((5, 0)))), "INSERT 2 (seq 5)\n");
    assert_eq!(render(OutputFormat::Table, &write(None)), "INSERT 2 (pending until COMMIT)\n");
    assert_eq!(render(OutputFormat::Table, &done()), "created table orders (seq 1)\n");
}

#[test]
fn reports_render_in_every_format() {
    let report = Report {
        json: json!({"ok": true, "files": [{"name": "a"}]}),
        columns: vec!["name".into(), "bytes".into()],
        rows: vec![vec![Some(json!("a")), Some(json!(10))], vec![Some(json!("b")), None]],
        notes: vec!["2 files".into()],
    };
    let mut p = Printer::new(OutputFormat::Json, Vec::new());
    p.report(&report).unwrap();
    p.set_format(OutputFormat::Ndjson);
    p.report(&report).unwrap();
    p.set_format(OutputFormat::Csv);
    p.report(&report).unwrap();
    p.set_format(OutputFormat::Table);
    p.report(&report).unwrap();
    let text = String::from_utf8(p.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], r#"{"ok":true,"files":[{"name":"a"}]}"#);
    assert_eq!(lines[1], r#"{"name":"a","bytes":10}"#);
    assert_eq!(lines[2], r#"{"name":"b"}"#);
    assert_eq!(&lines[3..6], ["name,bytes", "a,10", "b,"]);
    assert!(text.ends_with("2 files\n"));
}

#[test]
fn a_message_that_names_its_seq_is_not_repeated() {
    let commit = Outcome::Done(Done {
        statement: "COMMIT",
        message: "committed 3 event(s) at seq 5".into(),
        committed: Some((5, 0)),
        details: vec![],
    });
    assert_eq!(render(OutputFormat::Table, &commit), "committed 3 event(s) at seq 5\n");
}
