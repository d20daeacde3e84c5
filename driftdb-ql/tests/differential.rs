//! Differential test: random histories written as DriftQL text (INSERT, UPSERT, PATCH by key
//! and by WHERE, SOFT DELETE by key and by WHERE, transactions that commit or roll back), then
//! `SELECT ... AS OF @seq:N` at every N compared with a plain model: a list of the table's
//! state after each seq, kept with `BTreeMap`s and no engine code.

use std::collections::BTreeMap;

use driftdb_core::Database;
use driftdb_ql::{Outcome, Session, parse_statement};
use serde_json::{Value as Json, json};

/// A small deterministic generator (xorshift64*), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Table = BTreeMap<i64, Json>;

fn run(session: &mut Session<'_>, text: &str) -> Result<Outcome, driftdb_ql::Error> {
    let statement = parse_statement(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    session.execute(&statement)
}

fn rows(outcome: Outcome) -> Vec<Json> {
    match outcome.to_json() {
        Json::Array(rows) => rows,
        other => panic!("not rows: {other}"),
    }
}

fn merge(doc: &mut Json, patch: &Json) {
    if let (Json::Object(d), Json::Object(p)) = (doc, patch) {
        for (k, v) in p {
            if v.is_null() {
                d.remove(k);
            } else {
                d.insert(k.clone(), v.clone());
            }
        }
    }
}

/// One random write: the statement text and what it does to the model (None: it must fail).
fn random_write(rng: &mut Rng, model: &Table) -> (String, Option<Table>) {
    let key = rng.below(12) as i64;
    let v = rng.below(100) as i64;
    let tag = ["red", "green", "blue"][rng.below(3) as usize];
    let live = model.contains_key(&key);
    let mut next = model.clone();
    match rng.below(7) {
        0 | 1 => {
            let doc = json!({"id": key, "v": v, "tag": tag});
            let text = format!("INSERT INTO t {doc}");
            if live {
                return (text, None);
            }
            next.insert(key, doc);
            (text, Some(next))
        }
        2 => {
            let doc = if rng.below(2) == 0 {
                json!({"id": key, "v": v})
            } else {
                json!({"id": key, "v": v, "tag": tag, "extra": {"n": v}})
            };
            next.insert(key, doc.clone());
            (format!("UPSERT INTO t {doc}"), Some(next))
        }
        3 => {
            let patch = if rng.below(3) == 0 { json!({"tag": null}) } else { json!({"v": v}) };
            let text = format!("PATCH t KEY {key} SET {patch}");
            match next.get_mut(&key) {
                Some(doc) => merge(doc, &patch),
                None => return (text, None),
            }
            (text, Some(next))
        }
        4 => {
            let text = format!("SOFT DELETE FROM t KEY {key}");
            if next.remove(&key).is_none() {
                return (text, None);
            }
            (text, Some(next))
        }
        5 => {
            let patch = json!({"tag": tag});
            for doc in next.values_mut() {
                if doc["v"].as_i64().is_some_and(|x| x < v) {
                    merge(doc, &patch);
                }
            }
            (format!("PATCH t SET {patch} WHERE v < {v}"), Some(next))
        }
        _ => {
            next.retain(|_, doc| doc["tag"].as_str() != Some(tag));
            (format!("SOFT DELETE FROM t WHERE tag = '{tag}'"), Some(next))
        }
    }
}

fn check_history(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut session = Session::new(&db);
    run(&mut session, "CREATE TABLE t (pk=id, INDEX(tag))").unwrap();
    // states[n] is the table after seq n (seq 1 created it empty).
    let mut states: Vec<Table> = vec![Table::new(), Table::new()];
    for _ in 0..60 {
        let current = states.last().cloned().unwrap_or_default();
        if rng.below(5) == 0 {
            // A transaction of a few writes that commits or rolls back.
            run(&mut session, "BEGIN").unwrap();
            let mut model = current.clone();
            let mut wrote = false;
            for _ in 0..1 + rng.below(3) {
                let (text, expected) = random_write(&mut rng, &model);
                match (run(&mut session, &text), expected) {
                    (Ok(Outcome::Write(_)), Some(next)) => {
                        wrote |= next != model;
                        model = next;
                    }
                    (Err(_), None) => {}
                    (got, expected) => panic!("seed {seed}: {text}: {got:?} vs {expected:?}"),
                }
            }
            if rng.below(2) == 0 {
                run(&mut session, "COMMIT").unwrap();
                if db.last_seq() as usize == states.len() {
                    states.push(model);
                } else {
                    assert!(!wrote, "seed {seed}: a transaction that changed rows made no seq");
                }
            } else {
                run(&mut session, "ROLLBACK").unwrap();
            }
        } else {
            let (text, expected) = random_write(&mut rng, &current);
            match (run(&mut session, &text), expected) {
                (Ok(Outcome::Write(_)), Some(next)) => {
                    if db.last_seq() as usize == states.len() {
                        states.push(next);
                    } else {
                        assert_eq!(next, current, "seed {seed}: {text} changed rows without a seq");
                    }
                }
                (Err(_), None) => {}
                (got, expected) => panic!("seed {seed}: {text}: {got:?} vs {expected:?}"),
            }
        }
        assert_eq!(db.last_seq() as usize, states.len() - 1, "seed {seed}: seq count");
    }
    for (seq, state) in states.iter().enumerate().skip(1) {
        let all = rows(run(&mut session, &format!("SELECT * FROM t AS OF @seq:{seq}")).unwrap());
        let expected: Vec<Json> = state.values().cloned().collect();
        assert_eq!(all, expected, "seed {seed}: SELECT * AS OF @seq:{seq}");

        let limit = 1 + rng.below(5);
        let query = format!(
            "SELECT id, v * 2 AS double FROM t FOR SYSTEM_TIME AS OF '@seq:{seq}' \
             WHERE v >= 50 OR tag IS NULL ORDER BY double DESC, id LIMIT {limit}"
        );
        let mut model: Vec<(i64, i64)> = state
            .iter()
            .filter(|(_, d)| d["v"].as_i64().is_some_and(|v| v >= 50) || d.get("tag").is_none())
            .map(|(k, d)| (*k, d["v"].as_i64().unwrap_or(0) * 2))
            .collect();
        model.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let expected: Vec<Json> = model
            .into_iter()
            .take(limit as usize)
            .map(|(id, double)| json!({"id": id, "double": double}))
            .collect();
        assert_eq!(rows(run(&mut session, &query).unwrap()), expected, "seed {seed}: {query}");

        let counted =
            rows(run(&mut session, &format!("SELECT tag, COUNT(*) AS n, SUM(v) AS total FROM t GROUP BY tag AS OF @seq:{seq}")).unwrap());
        let mut groups: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for doc in state.values() {
            let tag = doc.get("tag").map_or("~null".to_owned(), |t| t.to_string());
            let g = groups.entry(tag).or_default();
            g.0 += 1;
            g.1 += doc["v"].as_i64().unwrap_or(0);
        }
        let total: i64 = groups.values().map(|g| g.0).sum();
        let counted_total: i64 = counted.iter().map(|r| r["n"].as_i64().unwrap()).sum();
        assert_eq!(counted.len(), groups.len(), "seed {seed}: groups at @seq:{seq}");
        assert_eq!(counted_total, total, "seed {seed}: counts at @seq:{seq}");
        // `tag` is indexed: this reads through the index AS OF the seq.
        let tag = ["red", "green", "blue"][rng.below(3) as usize];
        let via_index = rows(
            run(&mut session, &format!("SELECT * FROM t WHERE tag = '{tag}' AS OF @seq:{seq}"))
                .unwrap(),
        );
        let expected: Vec<Json> =
            state.values().filter(|d| d["tag"].as_str() == Some(tag)).cloned().collect();
        assert_eq!(via_index, expected, "seed {seed}: tag = {tag} @seq:{seq}");
        for key in state.keys().take(3) {
            let one = rows(
                run(&mut session, &format!("SELECT * FROM t WHERE id = {key} AS OF @seq:{seq}"))
                    .unwrap(),
            );
            assert_eq!(one, vec![state[key].clone()], "seed {seed}: point read {key} @seq:{seq}");
        }
    }
}

#[test]
fn random_histories_match_the_model() {
    for seed in 0..40 {
        check_history(seed);
    }
}
