//! Every statement form, the seed README's examples verbatim, and the printer's canonical
//! form of each.

use driftdb_core::{AsOf, IsolationLevel, Value};
use serde_json::json;

use super::parse_statement;
use crate::ast::*;

fn parse(text: &str) -> Statement {
    match parse_statement(text) {
        Ok(s) => s,
        Err(e) => panic!("{text:?} does not parse:\n{e}"),
    }
}

/// `text` parses; its canonical form is `canonical` and parses to the same tree.
fn canonical(text: &str, canonical: &str) -> Statement {
    let s = parse(text);
    assert_eq!(s.to_string(), canonical, "canonical form of {text:?}");
    assert_eq!(parse(canonical), s, "re-parse of {canonical:?}");
    s
}

fn field(name: &str) -> Expr {
    Expr::Field(Path(name.split('.').map(str::to_owned).collect()))
}

fn string(s: &str) -> Expr {
    Expr::Literal(Literal::String(s.into()))
}

fn int(i: i64) -> Expr {
    Expr::Literal(Literal::Int(i))
}

fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    Expr::Binary { op, left: Box::new(l), right: Box::new(r) }
}

fn doc(v: serde_json::Value) -> Value {
    Value::from(v)
}

fn path(p: &str) -> Path {
    Path(p.split('.').map(str::to_owned).collect())
}

fn select(table: &str) -> Select {
    Select {
        projection: Projection::All,
        table: table.into(),
        filter: None,
        group_by: vec![],
        having: None,
        order_by: vec![],
        limit: None,
        offset: None,
        as_of: None,
    }
}

#[test]
fn seed_readme_examples_parse_as_written() {
    let orders = || "orders".to_owned();
    assert_eq!(
        parse("CREATE TABLE orders (pk=id, INDEX(status, customer_id))"),
        Statement::CreateTable {
            table: orders(),
            primary_key: "id".into(),
            indexes: vec![vec![path("status"), path("customer_id")]],
            unique: vec![],
        }
    );
    assert_eq!(
        parse(r#"INSERT INTO orders {"id": "order1", "status": "pending", "amount": 100}"#),
        Statement::Insert {
            table: orders(),
            documents: vec![doc(json!({"id": "order1", "status": "pending", "amount": 100}))],
            upsert: false,
        }
    );
    assert_eq!(
        parse(r#"PATCH orders KEY "order1" SET {"status": "paid"}"#),
        Statement::Patch {
            table: orders(),
            target: Target::Key(Literal::String("order1".into())),
            patch: doc(json!({"status": "paid"})),
        }
    );
    assert_eq!(
        parse(r#"SOFT DELETE FROM orders KEY "order1""#),
        Statement::SoftDelete {
            table: orders(),
            target: Target::Key(Literal::String("order1".into()))
        }
    );
    assert_eq!(
        parse("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
        Statement::Begin { isolation: Some(IsolationLevel::RepeatableRead) }
    );
    assert_eq!(
        parse(r#"INSERT INTO orders {"id": "order2", "amount": 200}"#).to_string(),
        r#"INSERT INTO orders {"amount": 200, "id": "order2"}"#
    );
    assert_eq!(parse("COMMIT"), Statement::Commit);
    assert_eq!(parse("ROLLBACK"), Statement::Rollback);
    let mut paid = select("orders");
    paid.filter = Some(bin(BinaryOp::Eq, field("status"), string("paid")));
    paid.as_of = Some(AsOf::UnixMs(1_735_689_600_000));
    assert_eq!(
        parse(r#"SELECT * FROM orders WHERE status="paid" AS OF "2025-01-01T00:00:00Z""#),
        Statement::Select(Box::new(paid))
    );
    let mut by_seq = select("orders");
    by_seq.filter = Some(bin(BinaryOp::Eq, field("customer_id"), string("cust1")));
    by_seq.as_of = Some(AsOf::Seq(1000));
    assert_eq!(
        parse(r#"SELECT * FROM orders WHERE customer_id="cust1" AS OF "@seq:1000""#),
        Statement::Select(Box::new(by_seq))
    );
    assert_eq!(
        parse(r#"SHOW DRIFT orders KEY "order1""#),
        Statement::ShowDrift {
            table: orders(),
            key: Literal::String("order1".into()),
            range: None
        }
    );
    assert_eq!(
        parse(r#"ALTER TABLE orders ADD COLUMN priority DEFAULT "normal""#),
        Statement::AlterTable {
            table: orders(),
            action: AlterAction::AddColumn {
                name: "priority".into(),
                default: Some(Literal::String("normal".into())),
            },
        }
    );
    assert_eq!(
        parse("CREATE INDEX ON orders(created_at)"),
        Statement::CreateIndex { table: orders(), fields: vec![path("created_at")], unique: false }
    );
    assert_eq!(
        parse("ALTER TABLE orders DROP COLUMN legacy_field"),
        Statement::AlterTable {
            table: orders(),
            action: AlterAction::DropColumn { name: "legacy_field".into() },
        }
    );
    assert_eq!(parse("SNAPSHOT orders"), Statement::Snapshot { table: orders() });
    assert_eq!(parse("COMPACT orders"), Statement::Compact { table: orders() });
    assert_eq!(
        parse("BACKUP TO './backups/2024-01-15'"),
        Statement::Backup { path: "./backups/2024-01-15".into() }
    );
    assert_eq!(parse("ANALYZE TABLE orders"), Statement::Analyze { table: orders() });
}

#[test]
fn seed_readme_blocks_parse_as_scripts() {
    // The README's code blocks, with `;` between statements, comments included.
    let script = "-- Create table with indexes\n\
        CREATE TABLE orders (pk=id, INDEX(status, customer_id));\n\
        -- Insert full document\n\
        INSERT INTO orders {\"id\": \"order1\", \"status\": \"pending\", \"amount\": 100};\n\
        -- Partial update\n\
        PATCH orders KEY \"order1\" SET {\"status\": \"paid\"};\n\
        -- Soft delete (data remains for audit)\n\
        SOFT DELETE FROM orders KEY \"order1\"\n";
    let parsed = super::parse_script(script).unwrap();
    assert_eq!(parsed.len(), 4);
    assert_eq!(parsed.iter().map(|p| p.line).collect::<Vec<_>>(), [2, 4, 6, 8]);
    assert_eq!(&script[parsed[3].span.clone()], "SOFT DELETE FROM orders KEY \"order1\"");
}

#[test]
fn schema_statements() {
    canonical(
        "create table t ( pk = id , index ( a , b.c ) , INDEX(`x y`) )",
        "CREATE TABLE t (pk=id, INDEX(a, b.c), INDEX(`x y`))",
    );
    canonical("CREATE TABLE t (pk=id)", "CREATE TABLE t (pk=id)");
    assert_eq!(
        canonical("DROP TABLE IF EXISTS t", "DROP TABLE IF EXISTS t"),
        Statement::DropTable { table: "t".into(), if_exists: true }
    );
    canonical("drop table t", "DROP TABLE t");
    // A table named `if`, `key`, `table`: names where they are not ambiguous.
    assert_eq!(
        parse("DROP TABLE if"),
        Statement::DropTable { table: "if".into(), if_exists: false }
    );
    canonical("DROP TABLE IF EXISTS if", "DROP TABLE IF EXISTS if");
    canonical("CREATE INDEX ON t (a, b)", "CREATE INDEX ON t(a, b)");
    assert_eq!(
        canonical("create unique index on t ( a.b )", "CREATE UNIQUE INDEX ON t(a.b)"),
        Statement::CreateIndex { table: "t".into(), fields: vec![path("a.b")], unique: true }
    );
    assert_eq!(
        canonical(
            "CREATE TABLE users (pk=id, unique(email), INDEX(status), UNIQUE(login.name))",
            "CREATE TABLE users (pk=id, INDEX(status), UNIQUE(email), UNIQUE(login.name))",
        ),
        Statement::CreateTable {
            table: "users".into(),
            primary_key: "id".into(),
            indexes: vec![vec![path("status")]],
            unique: vec![path("email"), path("login.name")],
        }
    );
    canonical("DROP INDEX ON t(a.b)", "DROP INDEX ON t(a.b)");
    canonical("ALTER TABLE t ADD COLUMN c", "ALTER TABLE t ADD COLUMN c");
    canonical("alter table t set snapshot every 0050", "ALTER TABLE t SET SNAPSHOT EVERY 50");
    assert_eq!(
        parse("ALTER TABLE orders SET SNAPSHOT EVERY 100"),
        Statement::AlterTable {
            table: "orders".into(),
            action: AlterAction::SetSnapshotEvery { every: 100 }
        }
    );
    canonical("alter table t set retention '90 DAYS'", "ALTER TABLE t SET RETENTION '90 days'");
    canonical("ALTER TABLE t SET RETENTION \"168 hours\"", "ALTER TABLE t SET RETENTION '1 week'");
    canonical("ALTER TABLE t SET RETENTION '1 seconds'", "ALTER TABLE t SET RETENTION '1 second'");
    canonical("ALTER TABLE t SET RETENTION none", "ALTER TABLE t SET RETENTION NONE");
    assert_eq!(
        parse("ALTER TABLE t SET RETENTION '2 minutes'"),
        Statement::AlterTable {
            table: "t".into(),
            action: AlterAction::SetRetention { ms: Some(120_000) }
        }
    );
    for bad in [
        "ALTER TABLE t SET RETENTION '0 days'",
        "ALTER TABLE t SET RETENTION '5 fortnights'",
        "ALTER TABLE t SET RETENTION 90",
        "ALTER TABLE t SET RETENTION",
    ] {
        let err = parse_statement(bad).unwrap_err().to_string();
        assert!(err.contains("'90 days'"), "{bad}: {err}");
    }
    canonical("ALTER TABLE t ADD COLUMN c DEFAULT -5", "ALTER TABLE t ADD COLUMN c DEFAULT -5");
    canonical("ALTER TABLE t ADD COLUMN c DEFAULT null", "ALTER TABLE t ADD COLUMN c DEFAULT NULL");
    canonical(
        "ALTER TABLE t ADD COLUMN c DEFAULT 1.5e3",
        "ALTER TABLE t ADD COLUMN c DEFAULT 1500.0",
    );
    canonical("ALTER TABLE t ADD COLUMN c DEFAULT true", "ALTER TABLE t ADD COLUMN c DEFAULT TRUE");
    assert_eq!(parse("SHOW TABLES"), Statement::ShowTables { as_of: None });
    canonical("show tables as of @seq:5", "SHOW TABLES AS OF @seq:5");
    canonical("SHOW TABLES FOR SYSTEM_TIME AS OF now", "SHOW TABLES AS OF NOW");
    canonical("DESCRIBE t", "DESCRIBE t");
    canonical(
        "DESCRIBE t AS OF '2025-01-01T01:00:00+01:00'",
        "DESCRIBE t AS OF \"2025-01-01T00:00:00.000Z\"",
    );
    canonical("ANALYZE t", "ANALYZE TABLE t");
    assert_eq!(parse("ANALYZE table"), Statement::Analyze { table: "table".into() });
    canonical("ANALYZE TABLE table", "ANALYZE TABLE table");
    canonical("SNAPSHOT `select`", "SNAPSHOT `select`");
}

#[test]
fn write_statements() {
    let s = canonical(
        "upsert into t [ {\"id\": 1}, {\"id\": 2, \"tags\": [1, 2.5, \"x\", null, true]} ]",
        "UPSERT INTO t [{\"id\": 1}, {\"id\": 2, \"tags\": [1, 2.5, \"x\", null, true]}]",
    );
    assert!(
        matches!(s, Statement::Insert { upsert: true, ref documents, .. } if documents.len() == 2)
    );
    // A list of one document prints as the document.
    canonical("INSERT INTO t [{\"id\": 1}]", "INSERT INTO t {\"id\": 1}");
    canonical(
        "INSERT INTO t {\"a\":{\"b\":{}},\"e\":[],\"s\":\"\\u00e9\\n\\\"\",\"f\":-0.5e-3}",
        "INSERT INTO t {\"a\": {\"b\": {}}, \"e\": [], \"f\": -0.0005, \"s\": \"é\\n\\\"\"}",
    );
    canonical("PATCH t KEY 42 SET {\"a\": null}", "PATCH t KEY 42 SET {\"a\": null}");
    canonical("PATCH t KEY -7 SET {}", "PATCH t KEY -7 SET {}");
    canonical(
        "PATCH t SET {\"paid\": true} WHERE amount >= 100",
        "PATCH t SET {\"paid\": true} WHERE amount >= 100",
    );
    canonical("SOFT DELETE FROM t WHERE a IS NULL", "SOFT DELETE FROM t WHERE a IS NULL");
    canonical("soft delete from t key 'k'", "SOFT DELETE FROM t KEY \"k\"");
    // Tables named like keywords that are not reserved.
    canonical("PATCH key KEY 1 SET {}", "PATCH key KEY 1 SET {}");
    canonical("PATCH set SET {} WHERE TRUE", "PATCH set SET {} WHERE TRUE");
    let s = parse("INSERT INTO t {\"big\": 9223372036854775807, \"small\": -9223372036854775808}");
    assert_eq!(
        s,
        Statement::Insert {
            table: "t".into(),
            documents: vec![doc(json!({"big": i64::MAX, "small": i64::MIN}))],
            upsert: false,
        }
    );
}

#[test]
fn history_and_transactions() {
    canonical("SHOW DRIFT t KEY 'k'", "SHOW DRIFT t KEY \"k\"");
    let s = canonical(
        "SHOW DRIFT t KEY 1 BETWEEN @seq:2 AND '2025-01-01T00:00:00.5Z'",
        "SHOW DRIFT t KEY 1 BETWEEN @seq:2 AND \"2025-01-01T00:00:00.500Z\"",
    );
    assert!(matches!(
        s,
        Statement::ShowDrift { range: Some((AsOf::Seq(2), AsOf::UnixMs(1_735_689_600_500))), .. }
    ));
    canonical(
        "SHOW DRIFT t KEY 1 BETWEEN '@seq:1' AND now",
        "SHOW DRIFT t KEY 1 BETWEEN @seq:1 AND NOW",
    );
    assert_eq!(parse("BEGIN"), Statement::Begin { isolation: None });
    assert_eq!(parse("begin work"), Statement::Begin { isolation: None });
    canonical("BEGIN TRANSACTION", "BEGIN");
    canonical(
        "start transaction isolation level read committed",
        "BEGIN ISOLATION LEVEL READ COMMITTED",
    );
    canonical("BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN ISOLATION LEVEL SERIALIZABLE");
    canonical(
        "BEGIN WORK ISOLATION LEVEL REPEATABLE READ",
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
    );
    canonical("COMMIT WORK", "COMMIT");
    canonical("rollback transaction;", "ROLLBACK");
}

#[test]
fn select_clauses() {
    let s = canonical(
        "select a, b.c as bc, count(*) AS n from t as of @seq:3 where a > 1 group by a, b.c \
         having count(*) > 2 order by n desc, a asc limit 10 offset 5",
        "SELECT a, b.c AS bc, COUNT(*) AS n FROM t WHERE a > 1 GROUP BY a, b.c HAVING COUNT(*) > 2 \
         ORDER BY n DESC, a LIMIT 10 OFFSET 5 AS OF @seq:3",
    );
    let Statement::Select(sel) = s else { panic!("not a select") };
    assert_eq!(sel.as_of, Some(AsOf::Seq(3)));
    assert_eq!((sel.limit, sel.offset), (Some(10), Some(5)));
    assert_eq!(sel.order_by.iter().map(|o| o.descending).collect::<Vec<_>>(), [true, false]);
    assert_eq!(
        sel.projection,
        Projection::Items(vec![
            SelectItem { expr: field("a"), alias: None },
            SelectItem { expr: field("b.c"), alias: Some("bc".into()) },
            SelectItem {
                expr: Expr::Aggregate { func: AggregateFunc::Count, arg: None },
                alias: Some("n".into())
            },
        ])
    );
    canonical(
        "SELECT * FROM t FOR SYSTEM_TIME AS OF NOW WHERE x",
        "SELECT * FROM t WHERE x AS OF NOW",
    );
    canonical("SELECT * FROM t OFFSET 3", "SELECT * FROM t OFFSET 3");
    canonical(
        "SELECT * FROM t LIMIT 18446744073709551615",
        "SELECT * FROM t LIMIT 18446744073709551615",
    );
    canonical(
        "SELECT sum(x), AVG(x), min(x) , Max(x), count(x) FROM t",
        "SELECT SUM(x), AVG(x), MIN(x), MAX(x), COUNT(x) FROM t",
    );
    canonical("EXPLAIN SELECT * FROM t WHERE k = 1", "EXPLAIN SELECT * FROM t WHERE k = 1");
    // Non-reserved keywords as field names.
    canonical(
        "SELECT key, time, status, count, table FROM t WHERE key = 1 AND count > 2",
        "SELECT key, time, status, count, table FROM t WHERE key = 1 AND count > 2",
    );
    canonical(
        "SELECT `from`, `a b`.`c``d` FROM `order`",
        "SELECT `from`, `a b`.`c``d` FROM `order`",
    );
    // After a dot, any word is a segment.
    assert_eq!(parse("SELECT a.from FROM t"), parse("SELECT a.`from` FROM t"),);
}

#[test]
fn comments_and_whitespace() {
    let s = parse("/* lead */ SELECT -- the columns\n\t*\r\nFROM /* the table */ t -- end");
    assert_eq!(s, Statement::Select(Box::new(select("t"))));
    assert_eq!(parse("SELECT * FROM t;"), parse("SELECT * FROM t ; -- done"));
}

#[test]
fn strings_and_escapes() {
    let lit = |text: &str| match parse(&format!("SELECT * FROM t WHERE a = {text}")) {
        Statement::Select(s) => match s.filter {
            Some(Expr::Binary { right, .. }) => *right,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(lit(r#""a\"b\\c\/d""#), string("a\"b\\c/d"));
    assert_eq!(lit(r"'it''s'"), string("it's"));
    assert_eq!(lit(r"'it\'s'"), string("it's"));
    assert_eq!(lit(r#"'say "hi"'"#), string("say \"hi\""));
    assert_eq!(lit(r#""\b\f\n\r\t""#), string("\u{8}\u{c}\n\r\t"));
    assert_eq!(lit(r#""\u00e9\uD83D\uDE00""#), string("é😀"));
    assert_eq!(lit("'multi\nline'"), string("multi\nline"));
    assert_eq!(lit("''"), string(""));
    assert_eq!(lit("'ünï'"), string("ünï"));
    // The printer escapes what needs escaping, and it reads back.
    let e = Expr::Literal(Literal::String("q\"\\\u{1}\u{7f}é\n".into()));
    assert_eq!(e.to_string(), r#""q\"\\\u0001\u007fé\n""#);
    assert_eq!(super::parse_expr(&e.to_string()).unwrap(), e);
}

#[test]
fn numbers() {
    let e = |text: &str| super::parse_expr(text).unwrap();
    assert_eq!(e("-5"), int(-5));
    assert_eq!(e("- 5"), int(-5));
    assert_eq!(e("-9223372036854775808"), int(i64::MIN));
    assert_eq!(e("9223372036854775807"), int(i64::MAX));
    assert_eq!(e("007"), int(7));
    assert_eq!(e("1.5"), Expr::Literal(Literal::Float(1.5)));
    assert_eq!(e("-2e3"), Expr::Literal(Literal::Float(-2000.0)));
    assert_eq!(e("1E-2"), Expr::Literal(Literal::Float(0.01)));
    assert_eq!(e("-(5)"), Expr::Unary { op: UnaryOp::Neg, expr: Box::new(int(5)) });
    assert_eq!(e("- -5"), Expr::Unary { op: UnaryOp::Neg, expr: Box::new(int(-5)) });
    assert_eq!(e("a-1"), bin(BinaryOp::Sub, field("a"), int(1)));
    assert_eq!(e("a - -1"), bin(BinaryOp::Sub, field("a"), int(-1)));
    // Floats print in a form that reads back exactly.
    for x in [0.1, 1e300, 1e-300, -0.0, 123456789.125, 1e16, 2.5e-7, f64::MAX, f64::MIN_POSITIVE] {
        let lit = Expr::Literal(Literal::Float(x));
        assert_eq!(super::parse_expr(&lit.to_string()).unwrap(), lit, "{x:?}");
    }
}
