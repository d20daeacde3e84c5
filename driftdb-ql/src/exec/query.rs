//! `SELECT` and `EXPLAIN`: scan, filter, group and aggregate, order, limit, project.
//!
//! - `SELECT *` returns whole documents: the columns are the primary key, then every other
//!   top-level field in order of first appearance; a field a document lacks is an absent cell.
//! - A named field a document lacks is `NULL`. Column names are the alias or the canonical
//!   text of the expression (`COUNT(*)`, `a.b`).
//! - With aggregates or `GROUP BY`, every selected expression must be a group key, an
//!   aggregate, or built from them. Without `GROUP BY` an aggregate query has one group (so
//!   `COUNT(*)` of an empty table is 0). Groups come out ordered by their key unless
//!   `ORDER BY` says otherwise. `SUM` / `AVG` of no values is `NULL`; `SUM` stays an integer
//!   while every value is one (overflow is an error), `AVG` is a float.
//! - `ORDER BY` accepts expressions and output aliases; the sort is stable and uses one total
//!   order across types (`NULL` first ascending, last descending).

use std::cmp::Ordering;
use std::collections::HashMap;

use driftdb_core::{Database, Key, Row, Value};

use super::eval::{DocScope, Scope, aggregate_name, describe, eval, number, passes, total_order};
use super::source::Source;
use crate::Result;
use crate::ast::{AggregateFunc, BinaryOp, Expr, Literal, OrderBy, Projection, Select, SelectItem};
use crate::error::Error;
use crate::outcome::Rows;

/// Run a query.
pub(crate) fn select(source: &Source<'_, '_>, q: &Select, db: &Database) -> Result<Rows> {
    Ok(run(source, q, db)?.rows)
}

struct Run {
    rows: Rows,
    /// The primary key looked up instead of scanning, if the filter pins one.
    lookup: Option<Key>,
    /// The `field = value` answered through a secondary index, if one was used.
    index_used: Option<(String, Value)>,
    /// The planner's estimate of rows per value for the index used, from ANALYZE.
    estimated: Option<f64>,
    /// The stored statistics consulted: (their seq, live rows then).
    statistics: Option<(u64, u64)>,
    /// Why an index that matched was not used.
    plan_notes: Vec<String>,
    scanned_rows: usize,
    matched_rows: usize,
    groups: Option<usize>,
}

fn run(source: &Source<'_, '_>, q: &Select, db: &Database) -> Result<Run> {
    check(q)?;
    let schema = source.schema(&q.table)?;
    let keep = |doc: &Value| match &q.filter {
        Some(filter) => passes(filter, &DocScope(doc), "WHERE"),
        None => Ok(true),
    };
    let mut live = 0usize;
    let lookup = q.filter.as_ref().and_then(|f| key_lookup(f, &schema.primary_key));
    let mut index_used = None;
    let mut estimated = None;
    let mut statistics = None;
    let mut plan_notes = Vec::new();
    let matched = match &lookup {
        Some(key) => {
            let mut rows = Vec::new();
            if let Some(doc) = source.get(&q.table, key)? {
                live = 1;
                if keep(&doc)? {
                    rows.push(Row { key: key.clone(), doc });
                }
            }
            rows
        }
        None => {
            let mut found = None;
            // Index candidates: `field = value` terms on indexed fields. With statistics
            // from ANALYZE the most selective goes first, and an index whose value matches
            // half the rows or more is skipped: re-checking that many candidates costs more
            // than a scan (cost: 2 per candidate, 1 per scanned row).
            let indexed: Vec<&String> =
                schema.indexes.iter().flatten().chain(&schema.unique).collect();
            let mut candidates: Vec<(String, Value)> = equalities(q.filter.as_ref())
                .into_iter()
                .filter(|(f, _)| indexed.contains(&f))
                .collect();
            let stats = if candidates.is_empty() || source.is_transaction() {
                None
            } else {
                super::stats::load(db, &q.table)
            };
            if let Some(st) = &stats {
                statistics = Some((st.seq, st.live_rows));
                candidates.sort_by(|(a, _), (b, _)| {
                    let ea = st.rows_per_value(a).unwrap_or(0.0);
                    let eb = st.rows_per_value(b).unwrap_or(0.0);
                    ea.total_cmp(&eb)
                });
            }
            for (field, value) in candidates {
                let estimate = stats.as_ref().and_then(|st| st.rows_per_value(&field));
                if let (Some(st), Some(e)) = (&stats, estimate)
                    && 2.0 * e >= st.live_rows as f64
                {
                    plan_notes.push(format!(
                        "index on {field} not used: the statistics estimate {e:.1} of {} \
                         live row(s) per value, so a scan is cheaper",
                        st.live_rows
                    ));
                    continue;
                }
                if let Some(rows) = source.lookup(&q.table, &field, &value)? {
                    found = Some(rows);
                    estimated = estimate;
                    index_used = Some((field, value));
                    break;
                }
            }
            match found {
                Some(candidates) => {
                    live = candidates.len();
                    let mut rows = Vec::with_capacity(candidates.len());
                    for row in candidates {
                        if keep(&row.doc)? {
                            rows.push(row);
                        }
                    }
                    rows
                }
                None => source.scan(&q.table, |doc| {
                    live += 1;
                    keep(doc)
                })?,
            }
        }
    };
    let matched_rows = matched.len();
    let grouped = !q.group_by.is_empty()
        || q.having.is_some()
        || matches!(&q.projection, Projection::Items(items) if items.iter().any(|i| has_aggregate(&i.expr)));
    let (columns, mut out, groups) = if grouped {
        let (columns, out, groups) = grouped_rows(q, &matched)?;
        (columns, out, Some(groups))
    } else {
        let (columns, out) = plain_rows(q, &schema.primary_key, &matched)?;
        (columns, out, None)
    };
    let offset = usize::try_from(q.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = q.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let rows: Vec<Vec<Option<Value>>> =
        out.drain(..).skip(offset).take(limit).map(|(cells, _)| cells).collect();
    Ok(Run {
        rows: Rows { columns, rows, seq: source.seq() },
        lookup,
        index_used,
        estimated,
        statistics,
        plan_notes,
        scanned_rows: live,
        matched_rows,
        groups,
    })
}

/// Checks that need no data, so an empty table reports them too.
fn check(q: &Select) -> Result<()> {
    if let Some(filter) = &q.filter
        && has_aggregate(filter)
    {
        return Err(Error::invalid(
            "aggregates are not allowed in WHERE; filter groups with HAVING",
        ));
    }
    for expr in &q.group_by {
        if has_aggregate(expr) {
            return Err(Error::invalid("aggregates are not allowed in GROUP BY"));
        }
    }
    let grouped = !q.group_by.is_empty() || q.having.is_some();
    if let Projection::Items(items) = &q.projection {
        for item in items {
            nested_aggregate(&item.expr, false)?;
        }
    } else if grouped {
        return Err(Error::invalid(
            "SELECT * cannot be grouped; name the GROUP BY fields and aggregates",
        ));
    }
    for order in &q.order_by {
        nested_aggregate(&order.expr, false)?;
    }
    if let Some(having) = &q.having {
        nested_aggregate(having, false)?;
    }
    Ok(())
}

fn children(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Literal(_) | Expr::Field(_) => Vec::new(),
        Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } => vec![expr],
        Expr::Binary { left, right, .. } => vec![left, right],
        Expr::InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
        Expr::Between { expr, low, high, .. } => vec![expr, low, high],
        Expr::Like { expr, pattern, .. } => vec![expr, pattern],
        Expr::Aggregate { arg, .. } => arg.iter().map(|a| &**a).collect(),
    }
}

/// The key a filter pins with `pk = literal` (alone or as one term of a top-level AND).
fn key_lookup(filter: &Expr, primary_key: &str) -> Option<Key> {
    let mut stack = vec![filter];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Binary { op: BinaryOp::And, left, right } => {
                stack.push(left);
                stack.push(right);
            }
            Expr::Binary { op: BinaryOp::Eq, left, right } => {
                let (field, literal) = match (&**left, &**right) {
                    (Expr::Field(p), Expr::Literal(l)) | (Expr::Literal(l), Expr::Field(p)) => {
                        (p, l)
                    }
                    _ => continue,
                };
                if field.0.len() != 1 || field.0.first().map(String::as_str) != Some(primary_key) {
                    continue;
                }
                match literal {
                    Literal::String(s) => return Some(Key::Str(s.as_str().into())),
                    Literal::Int(i) => return Some(Key::Int(*i)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    None
}

/// The `field = literal` terms of a filter's top-level AND, in the order written.
fn equalities(filter: Option<&Expr>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut stack: Vec<&Expr> = filter.into_iter().collect();
    while let Some(e) = stack.pop() {
        match e {
            Expr::Binary { op: BinaryOp::And, left, right } => {
                stack.push(right);
                stack.push(left);
            }
            Expr::Binary { op: BinaryOp::Eq, left, right } => {
                if let (Expr::Field(p), Expr::Literal(l)) | (Expr::Literal(l), Expr::Field(p)) =
                    (&**left, &**right)
                    && *l != Literal::Null
                {
                    out.push((p.0.join("."), super::eval::literal_value(l)));
                }
            }
            _ => {}
        }
    }
    out
}

/// The field paths an expression reads, as `a.b` text.
fn fields_of(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        if let Expr::Field(path) = e {
            out.push(path.0.join("."));
        }
        stack.extend(children(e));
    }
    out
}

pub(crate) fn has_aggregate(expr: &Expr) -> bool {
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        if matches!(e, Expr::Aggregate { .. }) {
            return true;
        }
        stack.extend(children(e));
    }
    false
}

fn nested_aggregate(expr: &Expr, inside: bool) -> Result<()> {
    let mut stack = vec![(expr, inside)];
    while let Some((e, inside)) = stack.pop() {
        let is_agg = matches!(e, Expr::Aggregate { .. });
        if is_agg && inside {
            return Err(Error::invalid("an aggregate cannot contain another aggregate"));
        }
        stack.extend(children(e).into_iter().map(|c| (c, inside || is_agg)));
    }
    Ok(())
}

fn column_name(item: &SelectItem) -> String {
    item.alias.clone().unwrap_or_else(|| item.expr.to_string())
}

/// The sort keys of one output row, from the document scope or an output alias.
fn sort_keys(
    order_by: &[OrderBy],
    aliases: &[Option<String>],
    cells: &[Option<Value>],
    scope: &dyn Scope,
) -> Result<Vec<Value>> {
    order_by
        .iter()
        .map(|o| {
            if let Expr::Field(path) = &o.expr
                && let [name] = path.0.as_slice()
                && let Some(i) = aliases.iter().position(|a| a.as_deref() == Some(name))
            {
                return Ok(cells.get(i).cloned().flatten().unwrap_or(Value::Null));
            }
            eval(&o.expr, scope)
        })
        .collect()
}

fn sort(out: &mut [(Vec<Option<Value>>, Vec<Value>)], order_by: &[OrderBy]) {
    if order_by.is_empty() {
        return;
    }
    out.sort_by(|(_, a), (_, b)| {
        for ((x, y), o) in a.iter().zip(b).zip(order_by) {
            let ord = total_order(x, y);
            let ord = if o.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
}

type Output = Vec<(Vec<Option<Value>>, Vec<Value>)>;

fn plain_rows(q: &Select, primary_key: &str, matched: &[Row]) -> Result<(Vec<String>, Output)> {
    let mut out = Vec::with_capacity(matched.len());
    let columns = match &q.projection {
        Projection::All => {
            let mut columns = vec![primary_key.to_owned()];
            let mut seen: HashMap<&str, usize> = HashMap::new();
            seen.insert(primary_key, 0);
            for row in matched {
                for name in row.doc.as_map().into_iter().flat_map(|m| m.keys()) {
                    if !seen.contains_key(name.as_str()) {
                        seen.insert(name, columns.len());
                        columns.push(name.to_string());
                    }
                }
            }
            for row in matched {
                let cells: Vec<Option<Value>> =
                    columns.iter().map(|c| row.doc.get(c).cloned()).collect();
                let keys = sort_keys(&q.order_by, &[], &cells, &DocScope(&row.doc))?;
                out.push((cells, keys));
            }
            columns
        }
        Projection::Items(items) => {
            let aliases: Vec<Option<String>> = items.iter().map(|i| i.alias.clone()).collect();
            for row in matched {
                let scope = DocScope(&row.doc);
                let cells = items
                    .iter()
                    .map(|i| eval(&i.expr, &scope).map(Some))
                    .collect::<Result<Vec<_>>>()?;
                let keys = sort_keys(&q.order_by, &aliases, &cells, &scope)?;
                out.push((cells, keys));
            }
            items.iter().map(column_name).collect()
        }
    };
    sort(&mut out, &q.order_by);
    Ok((columns, out))
}

/// The running state of one aggregate in one group.
#[derive(Debug, Clone)]
enum Acc {
    Count(u64),
    Sum { int: Option<i64>, float: f64, any: bool, all_int: bool },
    Avg { total: f64, n: u64 },
    Extreme { best: Option<Value>, max: bool },
}

impl Acc {
    fn new(func: AggregateFunc) -> Acc {
        match func {
            AggregateFunc::Count => Acc::Count(0),
            AggregateFunc::Sum => Acc::Sum { int: Some(0), float: 0.0, any: false, all_int: true },
            AggregateFunc::Avg => Acc::Avg { total: 0.0, n: 0 },
            AggregateFunc::Min => Acc::Extreme { best: None, max: false },
            AggregateFunc::Max => Acc::Extreme { best: None, max: true },
        }
    }

    fn add(&mut self, func: AggregateFunc, value: Option<Value>) -> Result<()> {
        let Some(value) = value else {
            // COUNT(*): every row counts.
            if let Acc::Count(n) = self {
                *n += 1;
            }
            return Ok(());
        };
        if value == Value::Null {
            return Ok(());
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum { int, float, any, all_int } => {
                let Some(x) = number(&value) else {
                    return Err(not_a_number(func, &value));
                };
                *any = true;
                *float += x;
                match value {
                    Value::Int(i) if *all_int => {
                        *int = int.and_then(|s| s.checked_add(i));
                        if int.is_none() {
                            return Err(Error::invalid(
                                "integer overflow in SUM: the total does not fit in 64 bits",
                            ));
                        }
                    }
                    _ => *all_int = false,
                }
            }
            Acc::Avg { total, n } => {
                let Some(x) = number(&value) else {
                    return Err(not_a_number(func, &value));
                };
                *total += x;
                *n += 1;
            }
            Acc::Extreme { best, max } => {
                let better = match best {
                    None => true,
                    Some(b) => {
                        let o = total_order(&value, b);
                        if *max { o == Ordering::Greater } else { o == Ordering::Less }
                    }
                };
                if better {
                    *best = Some(value);
                }
            }
        }
        Ok(())
    }

    fn finish(&self) -> Value {
        match self {
            Acc::Count(n) => Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
            Acc::Sum { any: false, .. } => Value::Null,
            Acc::Sum { int: Some(i), all_int: true, .. } => Value::Int(*i),
            Acc::Sum { float, .. } => Value::Float(*float),
            Acc::Avg { n: 0, .. } => Value::Null,
            Acc::Avg { total, n } => Value::Float(*total / *n as f64),
            Acc::Extreme { best, .. } => best.clone().unwrap_or(Value::Null),
        }
    }
}

fn not_a_number(func: AggregateFunc, value: &Value) -> Error {
    Error::type_mismatch(format!("{} needs numbers, not {}", aggregate_name(func), describe(value)))
}

/// A group's scope: group keys and aggregate values by expression; no document fields.
struct GroupScope<'a> {
    group_by: &'a [Expr],
    keys: &'a [Value],
    aggregates: &'a [&'a Expr],
    values: &'a [Value],
}

impl Scope for GroupScope<'_> {
    fn lookup(&self, expr: &Expr) -> Option<Value> {
        if let Some(i) = self.group_by.iter().position(|g| g == expr) {
            return self.keys.get(i).cloned();
        }
        if matches!(expr, Expr::Aggregate { .. }) {
            let i = self.aggregates.iter().position(|a| *a == expr)?;
            return self.values.get(i).cloned();
        }
        None
    }
    fn doc(&self) -> Option<&Value> {
        None
    }
}

fn collect_aggregates<'a>(expr: &'a Expr, into: &mut Vec<&'a Expr>) {
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        if matches!(e, Expr::Aggregate { .. }) {
            if !into.contains(&e) {
                into.push(e);
            }
        } else {
            stack.extend(children(e));
        }
    }
}

fn grouped_rows(q: &Select, matched: &[Row]) -> Result<(Vec<String>, Output, usize)> {
    let Projection::Items(items) = &q.projection else {
        return Err(Error::invalid("SELECT * cannot be grouped"));
    };
    let mut aggregates: Vec<&Expr> = Vec::new();
    for item in items {
        collect_aggregates(&item.expr, &mut aggregates);
    }
    if let Some(having) = &q.having {
        collect_aggregates(having, &mut aggregates);
    }
    for order in &q.order_by {
        collect_aggregates(&order.expr, &mut aggregates);
    }
    let funcs: Vec<(AggregateFunc, Option<&Expr>)> = aggregates
        .iter()
        .filter_map(|a| match a {
            Expr::Aggregate { func, arg } => Some((*func, arg.as_deref())),
            _ => None,
        })
        .collect();

    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(Vec<Value>, Vec<Acc>)> = Vec::new();
    if q.group_by.is_empty() {
        groups.push((Vec::new(), funcs.iter().map(|(f, _)| Acc::new(*f)).collect()));
    }
    for row in matched {
        let scope = DocScope(&row.doc);
        let slot = if q.group_by.is_empty() {
            0
        } else {
            let keys = q.group_by.iter().map(|g| eval(g, &scope)).collect::<Result<Vec<_>>>()?;
            let id = Value::Array(keys.clone()).to_string();
            *index.entry(id).or_insert_with(|| {
                groups.push((keys, funcs.iter().map(|(f, _)| Acc::new(*f)).collect()));
                groups.len() - 1
            })
        };
        if let Some((_, accs)) = groups.get_mut(slot) {
            for ((func, arg), acc) in funcs.iter().zip(accs.iter_mut()) {
                let value = arg.map(|a| eval(a, &scope)).transpose()?;
                acc.add(*func, value)?;
            }
        }
    }
    if !q.group_by.is_empty() {
        groups.sort_by(|(a, _), (b, _)| {
            a.iter()
                .zip(b)
                .map(|(x, y)| total_order(x, y))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
    }
    let aliases: Vec<Option<String>> = items.iter().map(|i| i.alias.clone()).collect();
    let mut out = Vec::with_capacity(groups.len());
    let group_count = groups.len();
    for (keys, accs) in &groups {
        let values: Vec<Value> = accs.iter().map(Acc::finish).collect();
        let scope =
            GroupScope { group_by: &q.group_by, keys, aggregates: &aggregates, values: &values };
        if let Some(having) = &q.having
            && !passes(having, &scope, "HAVING")?
        {
            continue;
        }
        let cells =
            items.iter().map(|i| eval(&i.expr, &scope).map(Some)).collect::<Result<Vec<_>>>()?;
        let keys = sort_keys(&q.order_by, &aliases, &cells, &scope)?;
        out.push((cells, keys));
    }
    sort(&mut out, &q.order_by);
    Ok((items.iter().map(column_name).collect(), out, group_count))
}

/// `EXPLAIN`: how the query is answered, with the counts of actually running it.
pub(crate) fn explain(source: &Source<'_, '_>, q: &Select, db: &Database) -> Result<Rows> {
    let schema = source.schema(&q.table)?;
    let run = run(source, q, db)?;
    let mut steps: Vec<(&str, String)> = Vec::new();
    let point = match (q.as_of, source.is_transaction()) {
        (_, true) => format!(
            "in the open transaction's view (read seq {}, its own writes included)",
            source.seq()
        ),
        (None, false) => format!("now (seq {})", source.seq()),
        (Some(_), false) => format!("AS OF seq {}", source.seq()),
    };
    steps.push(("read", format!("table {}, {point}", q.table)));
    if let Some((seq, live)) = run.statistics {
        steps.push((
            "statistics",
            format!("from ANALYZE TABLE at seq {seq}: {live} live row(s) then"),
        ));
    }
    for note in &run.plan_notes {
        steps.push(("plan", note.clone()));
    }
    steps.push((
        "access",
        match (&run.lookup, &run.index_used) {
            (Some(key), _) => {
                format!("primary-key lookup of {key} ({} live row(s) read)", run.scanned_rows)
            }
            (None, Some((field, value))) => format!(
                "index lookup {field} = {value}: {}{} candidate row(s) read, each re-checked",
                run.estimated.map_or(String::new(), |e| format!("estimated {e:.1}, actual ")),
                run.scanned_rows
            ),
            (None, None) => {
                format!("full scan of {} live row(s) in primary-key order", run.scanned_rows)
            }
        },
    ));
    let filtered = q.filter.as_ref().map(fields_of).unwrap_or_default();
    let mut unused: Vec<String> = Vec::new();
    for field in schema.indexes.iter().flatten().chain(&schema.unique) {
        if filtered.contains(field) && !unused.contains(field) {
            unused.push(field.clone());
        }
    }
    if run.lookup.is_none()
        && run.index_used.is_none()
        && run.plan_notes.is_empty()
        && !unused.is_empty()
    {
        steps.push((
            "index",
            format!(
                "indexed field(s) {} appear in the filter, but only a `field = value` term of \
                 the top-level AND uses an index (outside transactions, on fields without a \
                 declared default): this query scans",
                unused.join(", ")
            ),
        ));
    }
    steps.push((
        "history",
        "each key's versions are in memory: one binary search per key finds the version at \
         the read seq; 0 events replayed, no snapshot needed"
            .to_owned(),
    ));
    if let Some(filter) = &q.filter {
        steps.push(("filter", format!("{filter}: {} row(s) matched", run.matched_rows)));
    }
    if let Some(groups) = run.groups {
        steps.push(("aggregate", format!("{groups} group(s)")));
    }
    if let Some(having) = &q.having {
        steps.push(("having", having.to_string()));
    }
    if !q.order_by.is_empty() {
        let terms: Vec<String> = q
            .order_by
            .iter()
            .map(|o| format!("{}{}", o.expr, if o.descending { " DESC" } else { "" }))
            .collect();
        steps.push(("sort", terms.join(", ")));
    }
    if q.limit.is_some() || q.offset.is_some() {
        steps.push((
            "limit",
            format!(
                "LIMIT {} OFFSET {}",
                q.limit.map_or("all".to_owned(), |l| l.to_string()),
                q.offset.unwrap_or(0)
            ),
        ));
    }
    steps.push(("result", format!("{} row(s)", run.rows.rows.len())));
    Ok(Rows {
        columns: vec!["step".into(), "detail".into()],
        rows: steps
            .into_iter()
            .map(|(step, detail)| {
                vec![Some(Value::String(step.into())), Some(Value::String(detail.into()))]
            })
            .collect(),
        seq: source.seq(),
    })
}
