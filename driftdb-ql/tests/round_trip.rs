//! Round trip: every syntax tree the parser can produce prints as canonical DriftQL that
//! parses back to the same tree; and for hand-written statements, `parse(print(parse(text)))`
//! equals `parse(text)`.
//!
//! The generator makes only trees the parser can produce: no `Neg` directly over a numeric
//! literal (the parser folds `-5` into `Int(-5)`), finite floats, non-empty names, `COUNT(*)`
//! as the only aggregate without argument, keys that are strings or integers, at least one
//! document per INSERT, times within the years 1970-9999.

use driftdb_core::{AsOf, IsolationLevel, Map, Text, Value};
use driftdb_ql::ast::*;
use driftdb_ql::{next_statement_end, parse_expr, parse_script, parse_statement};
use proptest::prelude::*;

/// Names: plain, reserved words and keywords in any case, and arbitrary text.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        2 => prop::sample::select(vec![
            "select", "FROM", "Where", "and", "NOT", "null", "true", "key", "count", "sum",
            "time", "status", "table", "index", "pk", "as", "of", "now", "seq", "set",
        ])
        .prop_map(str::to_owned),
        1 => "[ -~]{1,6}",
        1 => prop::collection::vec(any::<char>(), 1..5).prop_map(String::from_iter),
    ]
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(name(), 1..4).prop_map(Path)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,8}",
        prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
    ]
}

/// [`text`] as document text (a field name or a string value).
fn doc_text() -> impl Strategy<Value = Text> {
    text().prop_map(Text::from)
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        prop::sample::select(vec![0.0, -0.0, 0.5, -1.5, 1e16, 1e-7, f64::MAX, f64::MIN_POSITIVE]),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        prop::sample::select(vec![0, -1, i64::MIN, i64::MAX]).prop_map(Literal::Int),
        finite().prop_map(Literal::Float),
        text().prop_map(Literal::String),
    ]
}

fn key() -> impl Strategy<Value = Literal> {
    prop_oneof![any::<i64>().prop_map(Literal::Int), text().prop_map(Literal::String)]
}

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

fn aggregate() -> impl Strategy<Value = AggregateFunc> {
    prop::sample::select(vec![
        AggregateFunc::Count,
        AggregateFunc::Sum,
        AggregateFunc::Avg,
        AggregateFunc::Min,
        AggregateFunc::Max,
    ])
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    use BinaryOp::*;
    prop::sample::select(vec![Or, And, Eq, Ne, Lt, Le, Gt, Ge, Add, Sub, Mul, Div, Rem])
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        literal().prop_map(Expr::Literal),
        path().prop_map(Expr::Field),
        Just(Expr::Aggregate { func: AggregateFunc::Count, arg: None }),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Unary { op: UnaryOp::Not, expr: bx(e) }),
            inner.clone().prop_map(|e| match e {
                // `-5` reads as the literal -5: the parser never builds Neg over a number.
                Expr::Literal(Literal::Int(_) | Literal::Float(_)) => e,
                e => Expr::Unary { op: UnaryOp::Neg, expr: bx(e) },
            }),
            (binary_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Binary {
                op,
                left: bx(l),
                right: bx(r)
            }),
            (binary_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Binary {
                op,
                left: bx(l),
                right: bx(r)
            }),
            (inner.clone(), prop::collection::vec(inner.clone(), 1..4), any::<bool>())
                .prop_map(|(e, list, negated)| Expr::InList { expr: bx(e), list, negated }),
            (inner.clone(), inner.clone(), inner.clone(), any::<bool>()).prop_map(
                |(e, low, high, negated)| Expr::Between {
                    expr: bx(e),
                    low: bx(low),
                    high: bx(high),
                    negated
                }
            ),
            (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(e, p, negated)| {
                Expr::Like { expr: bx(e), pattern: bx(p), negated }
            }),
            (inner.clone(), any::<bool>())
                .prop_map(|(e, negated)| Expr::IsNull { expr: bx(e), negated }),
            (aggregate(), inner).prop_map(|(func, e)| Expr::Aggregate { func, arg: Some(bx(e)) }),
        ]
    })
}

fn as_of() -> impl Strategy<Value = AsOf> {
    prop_oneof![
        Just(AsOf::Now),
        any::<u64>().prop_map(AsOf::Seq),
        // 1970-01-01 to 9999-12-31T23:59:59.999Z.
        (0u64..=253_402_300_799_999).prop_map(AsOf::UnixMs),
    ]
}

fn select() -> impl Strategy<Value = Select> {
    let projection = prop_oneof![
        Just(Projection::All),
        prop::collection::vec(
            (expr(), prop::option::of(name())).prop_map(|(expr, alias)| SelectItem { expr, alias }),
            1..4
        )
        .prop_map(Projection::Items),
    ];
    let order = (expr(), any::<bool>()).prop_map(|(expr, descending)| OrderBy { expr, descending });
    (
        projection,
        name(),
        prop::option::of(expr()),
        prop::collection::vec(expr(), 0..3),
        prop::option::of(expr()),
        prop::collection::vec(order, 0..3),
        (prop::option::of(any::<u64>()), prop::option::of(any::<u64>())),
        prop::option::of(as_of()),
    )
        .prop_map(
            |(projection, table, filter, group_by, having, order_by, (limit, offset), as_of)| {
                Select {
                    projection,
                    table,
                    filter,
                    group_by,
                    having,
                    order_by,
                    limit,
                    offset,
                    as_of,
                }
            },
        )
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        finite().prop_map(Value::Float),
        doc_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(doc_text(), inner, 0..4).prop_map(Value::Map),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(doc_text(), value(), 0..4).prop_map(|m: Map| Value::Map(m))
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![key().prop_map(Target::Key), expr().prop_map(Target::Where)]
}

fn statement() -> impl Strategy<Value = Statement> {
    let fields = || prop::collection::vec(path(), 1..4);
    let isolation = prop::option::of(prop::sample::select(vec![
        IsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead,
        IsolationLevel::Serializable,
    ]));
    let action = prop_oneof![
        (name(), prop::option::of(literal()))
            .prop_map(|(name, default)| AlterAction::AddColumn { name, default }),
        name().prop_map(|name| AlterAction::DropColumn { name }),
    ];
    prop_oneof![
        (
            name(),
            name(),
            prop::collection::vec(fields(), 0..3),
            prop::collection::vec(path(), 0..3)
        )
            .prop_map(|(table, primary_key, indexes, unique)| Statement::CreateTable {
                table,
                primary_key,
                indexes,
                unique
            }),
        (name(), any::<bool>())
            .prop_map(|(table, if_exists)| Statement::DropTable { table, if_exists }),
        (name(), fields()).prop_map(|(table, fields)| Statement::CreateIndex {
            table,
            fields,
            unique: false
        }),
        (name(), path()).prop_map(|(table, field)| Statement::CreateIndex {
            table,
            fields: vec![field],
            unique: true
        }),
        (name(), fields()).prop_map(|(table, fields)| Statement::DropIndex { table, fields }),
        (name(), action).prop_map(|(table, action)| Statement::AlterTable { table, action }),
        prop::option::of(as_of()).prop_map(|as_of| Statement::ShowTables { as_of }),
        (name(), prop::option::of(as_of()))
            .prop_map(|(table, as_of)| Statement::Describe { table, as_of }),
        (name(), prop::collection::vec(document(), 1..4), any::<bool>())
            .prop_map(|(table, documents, upsert)| Statement::Insert { table, documents, upsert }),
        (name(), target(), document()).prop_map(|(table, target, patch)| Statement::Patch {
            table,
            target,
            patch
        }),
        (name(), target()).prop_map(|(table, target)| Statement::SoftDelete { table, target }),
        select().prop_map(|s| Statement::Select(Box::new(s))),
        select().prop_map(|s| Statement::Select(Box::new(s))),
        (name(), key(), prop::option::of((as_of(), as_of())))
            .prop_map(|(table, key, range)| Statement::ShowDrift { table, key, range }),
        isolation.prop_map(|isolation| Statement::Begin { isolation }),
        Just(Statement::Commit),
        Just(Statement::Rollback),
        name().prop_map(|table| Statement::Snapshot { table }),
        name().prop_map(|table| Statement::Compact { table }),
        text().prop_map(|path| Statement::Backup { path }),
        name().prop_map(|table| Statement::Analyze { table }),
        select().prop_map(|s| Statement::Explain(Box::new(s))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn printed_statements_parse_back(s in statement()) {
        let text = s.to_string();
        match parse_statement(&text) {
            Ok(back) => prop_assert_eq!(&back, &s, "printed as {}", text),
            Err(e) => prop_assert!(false, "{:?} printed as {} does not parse:\n{}", s, text, e),
        }
        // The printed text is one statement still being typed until its `;`.
        prop_assert_eq!(next_statement_end(&text), None, "{}", text);
        prop_assert_eq!(next_statement_end(&format!("{text};")), Some(text.len() + 1));
    }

    #[test]
    fn printed_expressions_parse_back(e in expr()) {
        let text = e.to_string();
        match parse_expr(&text) {
            Ok(back) => prop_assert_eq!(&back, &e, "printed as {}", text),
            Err(err) => prop_assert!(false, "{:?} printed as {} does not parse:\n{}", e, text, err),
        }
    }

    #[test]
    fn printed_scripts_parse_back(list in prop::collection::vec(statement(), 0..5)) {
        let text: String = list.iter().map(|s| format!("{s};\n")).collect();
        let parsed = parse_script(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Vec<_> = parsed.iter().map(|p| p.statement.clone()).collect();
        prop_assert_eq!(back, list);
        for p in &parsed {
            let alone = parse_statement(&text[p.span.clone()]).ok();
            prop_assert_eq!(alone.as_ref(), Some(&p.statement));
        }
    }
}

/// Hand-written statements in assorted styles.
const STATEMENTS: &[&str] = &[
    "CREATE TABLE orders (pk=id, INDEX(status, customer_id))",
    "create table `my table` ( pk = `the id`, index(a.b), index ( c , d ) )",
    "INSERT INTO orders {\"id\": \"order1\", \"status\": \"pending\", \"amount\": 100}",
    "upsert into t [{\"id\": 1, \"x\": [1, 2.50, {\"y\": null}]}, {\"id\": 2}]",
    "PATCH orders KEY \"order1\" SET {\"status\": \"paid\"}",
    "PATCH t SET {\"flag\": true} WHERE amount > 100 AND NOT archived",
    "SOFT DELETE FROM orders KEY 'order1'",
    "SOFT DELETE FROM t WHERE created < 5 OR created IS NULL",
    "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "START TRANSACTION",
    "COMMIT WORK",
    "ROLLBACK",
    "SELECT * FROM orders WHERE status=\"paid\" AS OF \"2025-01-01T00:00:00Z\"",
    "SELECT * FROM orders WHERE customer_id='cust1' AS OF '@seq:1000'",
    "SELECT * FROM orders FOR SYSTEM_TIME AS OF @seq:7 WHERE a.b.c <> 'x'",
    "select status, count(*) as n, sum(amount) / count(amount) as avg from t group by status",
    "SELECT status, COUNT(*) AS n FROM t GROUP BY status HAVING COUNT(*) > 1 ORDER BY n DESC \
     LIMIT 5 OFFSET 10",
    "SELECT -a, - -b, -(-3), 1 - -2, (1 + 2) * 3 % 4 FROM t",
    "SELECT * FROM t WHERE a NOT IN (1, 2, 'x') AND b NOT BETWEEN 1 AND 10 AND c NOT LIKE '%z'",
    "SELECT * FROM t WHERE (a OR b) AND (c OR d) AND (e AND f)",
    "SELECT * FROM t WHERE NOT (a = 1) AND NOT NOT b",
    "SELECT key, time, status, count FROM t WHERE key = 'k' -- trailing comment",
    "/* leading */ SELECT `select`, `a``b` FROM `from` WHERE `where` = 1",
    "SELECT * FROM t WHERE x = 1.5e3 OR x = -0.25 OR x = 9223372036854775807",
    "SELECT * FROM t WHERE s = 'it''s' OR s = \"say \\\"hi\\\"\" OR s = '\\u00e9\\n'",
    "SHOW DRIFT orders KEY \"order1\"",
    "SHOW DRIFT orders KEY 42 BETWEEN @seq:1 AND '2030-06-01T12:00:00.123+02:00'",
    "ALTER TABLE orders ADD COLUMN priority DEFAULT \"normal\"",
    "ALTER TABLE orders ADD COLUMN n DEFAULT -1",
    "ALTER TABLE orders DROP COLUMN legacy_field",
    "ALTER TABLE orders SET SNAPSHOT EVERY 1000",
    "ALTER TABLE orders SET RETENTION '90 days'",
    "ALTER TABLE orders SET RETENTION NONE",
    "CREATE INDEX ON orders(created_at)",
    "DROP INDEX ON orders(a, b.c)",
    "DROP TABLE IF EXISTS orders",
    "SHOW TABLES AS OF NOW",
    "DESCRIBE orders AS OF @seq:0",
    "SNAPSHOT orders",
    "COMPACT orders",
    "BACKUP TO './backups/2024-01-15'",
    "ANALYZE TABLE orders",
    "EXPLAIN SELECT * FROM orders WHERE status = 'paid'",
];

#[test]
fn hand_written_statements_round_trip() {
    for text in STATEMENTS {
        let tree = parse_statement(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        let printed = tree.to_string();
        let back = parse_statement(&printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
        assert_eq!(back, tree, "{text}\nprinted as {printed}");
        // The canonical form is a fixed point.
        assert_eq!(back.to_string(), printed);
    }
}
