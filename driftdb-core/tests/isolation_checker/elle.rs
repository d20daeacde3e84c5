//! An Elle-style checker for list-append histories (after Kingsbury and Alvaro, "Elle:
//! Inferring Isolation Anomalies from Experimental Observations", VLDB 2020).
//!
//! A history is a set of transactions. Each reads lists (one per key) and appends unique
//! elements to them; it either committed (with its seq) or aborted. Because every element is
//! unique and every write of a key extends the list it read, a list *names* the version that
//! produced it (its last element names its writer) and *orders* the versions before it (its
//! prefixes). From that the checker infers, per key, the version order, and builds the
//! dependency graph of the committed transactions:
//!
//! - **ww**: T1's version of a key is followed by T2's version;
//! - **wr**: T2 read the version T1 wrote;
//! - **rw** (anti-dependency): T1 read a version that T2's version follows.
//!
//! Anomalies (Adya's phenomena) it reports:
//! - **G1a** (aborted read): a committed transaction read an element of an aborted one;
//! - **G1b** (intermediate read): it read a version that is not its writer's last one;
//! - **Garbage**: it read an element nobody appended;
//! - **LostUpdate**: two lists of one key are not prefixes of each other, so some write did
//!   not extend the version before it (P4). The version order of that key then falls back to
//!   the writers' commit seqs, which the engine reports;
//! - **G0**: a cycle of ww edges; **G1c**: a cycle of ww and wr edges;
//! - **G-single**: a cycle with exactly one rw edge; **G2**: a cycle with rw edges.
//!
//! READ COMMITTED forbids G0, G1a, G1b, G1c (and garbage); REPEATABLE READ (snapshot
//! isolation) also forbids G-single and lost updates; SERIALIZABLE forbids every cycle.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use driftdb_core::IsolationLevel;

/// One operation as the client observed it.
#[derive(Debug, Clone)]
pub enum Op {
    /// Read `key`; the list came back as `list`.
    Read(u32, Vec<u64>),
    /// Append the element to `key`'s list.
    Append(u32, u64),
}

/// One transaction of the history.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub ops: Vec<Op>,
    /// The commit seq, when it committed.
    pub committed: Option<u64>,
    /// For each key it appended to, the whole list it wrote (what it read, plus its appends).
    pub written: BTreeMap<u32, Vec<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    G0,
    G1a,
    G1b,
    G1c,
    Garbage,
    LostUpdate,
    GSingle,
    G2,
}

impl Kind {
    /// Whether `level` forbids this anomaly.
    pub fn forbidden_at(self, level: IsolationLevel) -> bool {
        match self {
            Kind::G0 | Kind::G1a | Kind::G1b | Kind::G1c | Kind::Garbage => true,
            Kind::LostUpdate | Kind::GSingle => level != IsolationLevel::ReadCommitted,
            Kind::G2 => level == IsolationLevel::Serializable,
        }
    }
}

/// What the checker found: how many of each kind, and one example of each.
#[derive(Debug, Default)]
pub struct Report {
    pub counts: BTreeMap<Kind, usize>,
    pub examples: BTreeMap<Kind, String>,
}

impl Report {
    fn add(&mut self, kind: Kind, example: impl FnOnce() -> String) {
        *self.counts.entry(kind).or_default() += 1;
        self.examples.entry(kind).or_insert_with(example);
    }

    /// The anomalies `level` forbids, with an example each.
    pub fn forbidden(&self, level: IsolationLevel) -> Vec<String> {
        self.counts
            .iter()
            .filter(|(kind, _)| kind.forbidden_at(level))
            .map(|(kind, n)| format!("{kind:?} x{n}: {}", self.examples[kind]))
            .collect()
    }
}

const WW: u8 = 1;
const WR: u8 = 2;
const RW: u8 = 4;

fn edge_name(bits: u8) -> &'static str {
    if bits & WW != 0 {
        "ww"
    } else if bits & WR != 0 {
        "wr"
    } else {
        "rw"
    }
}

/// The dependency graph over transaction indexes: `edges[a][b]` holds the edge kinds a -> b.
struct Graph {
    edges: Vec<BTreeMap<usize, u8>>,
}

impl Graph {
    fn add(&mut self, from: usize, to: usize, kind: u8) {
        if from != to {
            *self.edges[from].entry(to).or_default() |= kind;
        }
    }

    fn successors(&self, node: usize, mask: u8) -> impl Iterator<Item = usize> + '_ {
        self.edges[node].iter().filter(move |(_, k)| **k & mask != 0).map(|(n, _)| *n)
    }

    /// Strongly connected components over the edges in `mask` (iterative Tarjan). Returns
    /// each node's component; components are numbered in reverse topological order (a
    /// component's successors have smaller numbers).
    fn components(&self, mask: u8) -> (Vec<usize>, usize) {
        let n = self.edges.len();
        let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
        let mut comp = vec![usize::MAX; n];
        let (mut next, mut count, mut stack) = (0, 0, Vec::new());
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, Vec<usize>)> = Vec::new();
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            work.push((root, self.successors(root, mask).collect()));
            while let Some((node, pending)) = work.last_mut() {
                let node = *node;
                if let Some(succ) = pending.pop() {
                    if index[succ] == usize::MAX {
                        index[succ] = next;
                        low[succ] = next;
                        next += 1;
                        stack.push(succ);
                        on_stack[succ] = true;
                        work.push((succ, self.successors(succ, mask).collect()));
                    } else if on_stack[succ] {
                        low[node] = low[node].min(index[succ]);
                    }
                    continue;
                }
                work.pop();
                if let Some((parent, _)) = work.last() {
                    low[*parent] = low[*parent].min(low[node]);
                }
                if low[node] == index[node] {
                    while let Some(member) = stack.pop() {
                        on_stack[member] = false;
                        comp[member] = count;
                        if member == node {
                            break;
                        }
                    }
                    count += 1;
                }
            }
        }
        (comp, count)
    }

    /// A shortest path from `from` to `to` over the edges in `mask`, as a printable cycle
    /// suffix (`T3 -ww-> T5 -wr-> ...`).
    fn path(&self, from: usize, to: usize, mask: u8) -> Option<String> {
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(node) = queue.pop_front() {
            if node == to {
                let mut nodes = vec![to];
                while let Some(&p) = parent.get(nodes.last()?) {
                    nodes.push(p);
                    if p == from {
                        break;
                    }
                }
                nodes.reverse();
                let mut out = format!("T{}", nodes[0]);
                for pair in nodes.windows(2) {
                    let bits = self.edges[pair[0]][&pair[1]] & mask;
                    write!(out, " -{}-> T{}", edge_name(bits), pair[1]).ok()?;
                }
                return Some(out);
            }
            for succ in self.successors(node, mask) {
                if succ != from && !parent.contains_key(&succ) {
                    parent.insert(succ, node);
                    queue.push_back(succ);
                }
            }
        }
        None
    }

    /// One cycle through `node` inside its component, over `mask`.
    fn cycle_through(&self, node: usize, mask: u8) -> String {
        for succ in self.successors(node, mask) {
            if let Some(back) = self.path(succ, node, mask) {
                let bits = self.edges[node][&succ] & mask;
                return format!("T{node} -{}-> {back}", edge_name(bits));
            }
        }
        format!("T{node} (cycle not reconstructed)")
    }
}

fn is_prefix(a: &[u64], b: &[u64]) -> bool {
    a.len() <= b.len() && b[..a.len()] == *a
}

/// Check a history. Transaction `i` is node `T<i>` in the examples.
pub fn check(txns: &[Txn]) -> Report {
    let mut report = Report::default();
    // Who appended each element, and each transaction's appends per key, in order.
    let mut appender: HashMap<u64, usize> = HashMap::new();
    let mut appends: Vec<BTreeMap<u32, Vec<u64>>> = vec![BTreeMap::new(); txns.len()];
    for (t, txn) in txns.iter().enumerate() {
        for op in &txn.ops {
            if let Op::Append(key, elem) = op {
                appender.insert(*elem, t);
                appends[t].entry(*key).or_default().push(*elem);
            }
        }
    }
    let committed = |t: usize| txns[t].committed.is_some();

    // Every list observed per key: committed reads and committed writes.
    let mut lists: BTreeMap<u32, Vec<&[u64]>> = BTreeMap::new();
    for txn in txns.iter().filter(|t| t.committed.is_some()) {
        for op in &txn.ops {
            if let Op::Read(key, list) = op {
                lists.entry(*key).or_default().push(list);
            }
        }
        for (key, list) in &txn.written {
            lists.entry(*key).or_default().push(list);
        }
    }

    // Version order per key: the committed writers, in order.
    let mut order: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (key, observed) in &lists {
        let longest = observed.iter().max_by_key(|l| l.len()).copied().unwrap_or_default();
        let clash = observed.iter().find(|l| !is_prefix(l, longest));
        let writers: Vec<usize> = match clash {
            None => {
                let mut writers: Vec<usize> = Vec::new();
                for elem in longest {
                    if let Some(&t) = appender.get(elem)
                        && committed(t)
                        && writers.last() != Some(&t)
                    {
                        writers.push(t);
                    }
                }
                writers
            }
            Some(other) => {
                report.add(Kind::LostUpdate, || {
                    format!("key {key}: {other:?} is not a prefix of {longest:?}")
                });
                let mut writers: Vec<usize> = (0..txns.len())
                    .filter(|&t| committed(t) && appends[t].contains_key(key))
                    .collect();
                writers.sort_by_key(|&t| txns[t].committed);
                writers
            }
        };
        order.insert(*key, writers);
    }

    let mut graph = Graph { edges: vec![BTreeMap::new(); txns.len()] };
    for writers in order.values() {
        for pair in writers.windows(2) {
            graph.add(pair[0], pair[1], WW);
        }
    }
    for (reader, txn) in txns.iter().enumerate().filter(|(_, t)| t.committed.is_some()) {
        for op in &txn.ops {
            let Op::Read(key, list) = op else { continue };
            for elem in list {
                match appender.get(elem) {
                    None => report.add(Kind::Garbage, || format!("T{reader} read {elem} of {key}")),
                    Some(&w) if !committed(w) => report.add(Kind::G1a, || {
                        format!("T{reader} read {elem} of key {key}, appended by aborted T{w}")
                    }),
                    Some(_) => {}
                }
            }
            let version = list.last().and_then(|e| appender.get(e)).copied();
            if version.is_none() && !list.is_empty() || version.is_some_and(|w| !committed(w)) {
                continue; // garbage or an aborted read, reported above: no version to place
            }
            if let (Some(w), Some(last)) = (version, list.last())
                && w != reader
                && appends[w].get(key).and_then(|a| a.last()) != Some(last)
            {
                report.add(Kind::G1b, || {
                    format!("T{reader} read {list:?} of key {key}, an intermediate version of T{w}")
                });
            }
            let writers = order.get(key).map(Vec::as_slice).unwrap_or_default();
            let next = match version {
                Some(w) => {
                    graph.add(w, reader, WR);
                    writers.iter().position(|&t| t == w).and_then(|i| writers.get(i + 1))
                }
                None => writers.first(),
            };
            if let Some(&next) = next {
                graph.add(reader, next, RW);
            }
        }
    }

    // G0 and G1c: cycles without anti-dependencies.
    for (mask, kind) in [(WW, Kind::G0), (WW | WR, Kind::G1c)] {
        let (comp, count) = graph.components(mask);
        let mut size = vec![0usize; count];
        for &c in &comp {
            size[c] += 1;
        }
        for node in 0..txns.len() {
            if size[comp[node]] > 1 {
                report.add(kind, || graph.cycle_through(node, mask));
                size[comp[node]] = 0;
            }
        }
    }

    // G-single: an rw edge a -> b closed by a ww/wr path b ->* a. Reachability over the
    // condensation of the ww/wr graph, as bit sets (components come in reverse topological
    // order, so successors are done first).
    let (comp, count) = graph.components(WW | WR);
    let words = count.div_ceil(64);
    let mut reach = vec![vec![0u64; words]; count];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (node, &c) in comp.iter().enumerate() {
        members[c].push(node);
    }
    for c in 0..count {
        reach[c][c / 64] |= 1 << (c % 64);
        for &node in &members[c] {
            for succ in graph.successors(node, WW | WR) {
                let s = comp[succ];
                if s != c {
                    let (done, current) = reach.split_at_mut(c);
                    for (w, bits) in done[s].iter().enumerate() {
                        current[0][w] |= bits;
                    }
                }
            }
        }
    }
    for a in 0..txns.len() {
        for b in graph.successors(a, RW).collect::<Vec<_>>() {
            let (ca, cb) = (comp[a], comp[b]);
            if reach[cb][ca / 64] & (1 << (ca % 64)) != 0 {
                report.add(Kind::GSingle, || {
                    let back = graph.path(b, a, WW | WR).unwrap_or_default();
                    format!("T{a} -rw-> {back}")
                });
            }
        }
    }

    // G2: any cycle through an anti-dependency.
    let (comp, _) = graph.components(WW | WR | RW);
    let mut reported = vec![false; txns.len()];
    for a in 0..txns.len() {
        for b in graph.successors(a, RW).collect::<Vec<_>>() {
            if comp[a] == comp[b] && !reported[comp[a]] {
                reported[comp[a]] = true;
                report.add(Kind::G2, || {
                    let back = graph.path(b, a, WW | WR | RW).unwrap_or_default();
                    format!("T{a} -rw-> {back}")
                });
            }
        }
    }
    report
}
