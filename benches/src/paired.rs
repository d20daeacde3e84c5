//! Interleaved ("paired") measurement. On a shared 2-vCPU VM the speed available to one
//! process drifts as other jobs come and go, so two figures measured a minute apart are not
//! comparable. Here the contenders take turns in short blocks, round after round (forwards in
//! even rounds, backwards in odd ones, so that neither always follows the other); every ratio
//! is computed within one round, and the median over rounds is reported with its range. The
//! range is the noise: a wide one says the machine was busy. A warm-up round runs first and
//! is not recorded.

use std::time::{Duration, Instant};

/// Mean nanoseconds per call of `op`, called repeatedly for at least `block` (at least once).
pub fn ns_per_op(block: Duration, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0_u64;
    while n == 0 || start.elapsed() < block {
        op();
        n += 1;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The median of `xs` (NaN when empty).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => xs.get(n / 2).copied().unwrap_or(f64::NAN),
        _ => {
            let a = xs.get(n / 2 - 1).copied().unwrap_or(f64::NAN);
            let b = xs.get(n / 2).copied().unwrap_or(f64::NAN);
            (a + b) / 2.0
        }
    }
}

/// A ratio's median over rounds and its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// The median of the per-round ratios.
    pub median: f64,
    /// The smallest per-round ratio.
    pub min: f64,
    /// The largest per-round ratio.
    pub max: f64,
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} [{:.3}–{:.3}]", self.median, self.min, self.max)
    }
}

/// The results of one interleaved comparison: one row per round, one column per contender.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// What was measured.
    pub title: String,
    /// The unit of every cell (e.g. "µs").
    pub unit: &'static str,
    /// The contenders, in column order.
    pub names: Vec<String>,
    /// Per round, the figure of each contender.
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    /// Run `rounds` rounds of `contenders` (each returns its figure for one turn). When more
    /// than one round is asked for, a warm-up round runs first and is not recorded (cold
    /// caches, lazily prepared statements).
    pub fn run(
        title: impl Into<String>,
        unit: &'static str,
        names: &[&str],
        rounds: usize,
        contenders: &mut [&mut dyn FnMut() -> f64],
    ) -> Table {
        let mut rows = Vec::with_capacity(rounds);
        if rounds > 1 {
            for run in contenders.iter_mut() {
                run();
            }
        }
        for index in 0..rounds {
            let mut out = vec![f64::NAN; contenders.len()];
            let mut order: Vec<usize> = (0..contenders.len()).collect();
            if index % 2 == 1 {
                order.reverse();
            }
            for k in order {
                if let (Some(run), Some(slot)) = (contenders.get_mut(k), out.get_mut(k)) {
                    *slot = run();
                }
            }
            rows.push(out);
        }
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        Table { title: title.into(), unit, names, rows }
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The median figure of contender `name` (NaN if unknown).
    pub fn median(&self, name: &str) -> f64 {
        let Some(col) = self.column(name) else { return f64::NAN };
        median(self.rows.iter().filter_map(|r| r.get(col).copied()).collect())
    }

    /// The per-round ratio `a / b`: its median and range (NaN if a name is unknown).
    pub fn ratio(&self, a: &str, b: &str) -> Ratio {
        self.ratio_to_best(a, &[b])
    }

    /// The per-round ratio of `a` to the lowest figure of `bs` in the same round (NaN if a name
    /// is unknown): `a` against the best of several contenders.
    pub fn ratio_to_best(&self, a: &str, bs: &[&str]) -> Ratio {
        let a = self.column(a);
        let bs: Option<Vec<usize>> = bs.iter().map(|b| self.column(b)).collect();
        let (Some(a), Some(bs)) = (a, bs) else {
            return Ratio { median: f64::NAN, min: f64::NAN, max: f64::NAN };
        };
        let cell = |r: &Vec<f64>, i: usize| r.get(i).copied().unwrap_or(f64::NAN);
        let best = |r: &Vec<f64>| bs.iter().map(|&b| cell(r, b)).fold(f64::INFINITY, f64::min);
        let xs: Vec<f64> = self.rows.iter().map(|r| cell(r, a) / best(r)).collect();
        let (min, max) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        Ratio { median: median(xs), min, max }
    }

    /// Print every round, the medians, and the ratios `(a, b)` as `a/b`.
    pub fn print(&self, ratios: &[(&str, &str)]) {
        println!("\n{} (figures in {}, lower is better)", self.title, self.unit);
        let width = self.names.iter().map(|n| n.len()).max().unwrap_or(8).max(10);
        let mut header = format!("  {:>6}", "round");
        for name in &self.names {
            header.push_str(&format!(" {name:>width$}"));
        }
        println!("{header}");
        let show = |label: String, cells: &[f64]| {
            let mut line = format!("  {label:>6}");
            for x in cells {
                line.push_str(&format!(" {:>width$}", format_figure(*x)));
            }
            println!("{line}");
        };
        for (i, row) in self.rows.iter().enumerate() {
            show((i + 1).to_string(), row);
        }
        let medians: Vec<f64> = self.names.iter().map(|n| self.median(n)).collect();
        show("median".to_owned(), &medians);
        for (a, b) in ratios {
            println!("  {a}/{b}: median {}", self.ratio(a, b));
        }
    }
}

/// A figure with about four significant digits.
pub fn format_figure(x: f64) -> String {
    match x.abs() {
        v if v >= 1000.0 => format!("{x:.0}"),
        v if v >= 100.0 => format!("{x:.1}"),
        v if v >= 10.0 => format!("{x:.2}"),
        _ => format!("{x:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_per_round() {
        let table = Table {
            title: "t".into(),
            unit: "µs",
            names: vec!["a".into(), "b".into()],
            rows: vec![vec![2.0, 1.0], vec![30.0, 10.0], vec![4.0, 4.0]],
        };
        // Per round: 2, 3, 1. The ratio of the medians (4 / 4) would say 1.
        assert_eq!(table.ratio("a", "b"), Ratio { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(table.median("a"), 4.0);
        assert!(table.median("c").is_nan());
        // b is the best in every round: against the best of both, a gives 2, 3, 1 again.
        assert_eq!(table.ratio_to_best("a", &["a", "b"]).median, 2.0);
        assert_eq!(
            table.ratio_to_best("b", &["a", "b"]),
            Ratio { median: 1.0, min: 1.0, max: 1.0 }
        );
    }

    #[test]
    fn rounds_alternate_order() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a = || {
            order.borrow_mut().push('a');
            1.0
        };
        let mut b = || {
            order.borrow_mut().push('b');
            2.0
        };
        let table = Table::run("t", "µs", &["a", "b"], 2, &mut [&mut a, &mut b]);
        // A warm-up round, then forwards, then backwards.
        assert_eq!(order.into_inner(), vec!['a', 'b', 'a', 'b', 'b', 'a']);
        assert_eq!(table.rows, vec![vec![1.0, 2.0], vec![1.0, 2.0]]);
    }
}
