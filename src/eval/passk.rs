//! pass@k: the unbiased estimator of Chen et al. (2021) and its aggregation over problems.
//!
//! With `n` samples of one problem of which `c` are correct, the chance that at least one of
//! `k` samples drawn without replacement is correct is `1 − C(n−c, k) / C(n, k)`, computed as
//! `1 − ∏_{i=n−c+1}^{n} (1 − k/i)`: no binomial is ever formed, so n = 128 (or 10⁶) is exact to
//! rounding. [`PassAtK`] groups per-problem counts by (split, op, template, mode) and averages
//! the estimate, for VerifiedCorrect and for answer-only correctness.

use std::collections::BTreeMap;

use crate::composer::Mode;

/// pass@k for one problem with `n` samples, `c` correct; `None` unless `c ≤ n` and
/// `1 ≤ k ≤ n`.
pub fn pass_at_k(n: u32, c: u32, k: u32) -> Option<f64> {
    if c > n || k == 0 || k > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let k = k as f64;
    let miss: f64 = (n - c + 1..=n).map(|i| 1.0 - k / i as f64).product();
    Some(1.0 - miss)
}

/// pass@k for every k in 1..=n (index k − 1); empty if `c > n`.
pub fn pass_at_k_curve(n: u32, c: u32) -> Vec<f64> {
    (1..=n).filter_map(|k| pass_at_k(n, c, k)).collect()
}

/// The sample counts of one problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Samples drawn.
    pub n: u32,
    /// Samples that were VerifiedCorrect.
    pub verified: u32,
    /// Samples whose answer was correct (regardless of the trace).
    pub answer: u32,
}

/// What a problem is grouped by; a `None` field is "all" (after [`GroupKey::project`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub split: Option<String>,
    pub op: Option<u32>,
    pub template: Option<String>,
    pub mode: Option<Mode>,
}

/// Which key fields a report keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct By {
    pub split: bool,
    pub op: bool,
    pub template: bool,
    pub mode: bool,
}

impl By {
    pub const ALL: By = By {
        split: true,
        op: true,
        template: true,
        mode: true,
    };
}

impl GroupKey {
    pub fn new(split: &str, op: u32, template: &str, mode: Mode) -> GroupKey {
        GroupKey {
            split: Some(split.to_string()),
            op: Some(op),
            template: Some(template.to_string()),
            mode: Some(mode),
        }
    }

    /// The key with the fields `by` drops set to `None`.
    pub fn project(&self, by: By) -> GroupKey {
        GroupKey {
            split: self.split.clone().filter(|_| by.split),
            op: self.op.filter(|_| by.op),
            template: self.template.clone().filter(|_| by.template),
            mode: self.mode.filter(|_| by.mode),
        }
    }
}

/// One line of a report: the mean pass@k of a group's problems.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRow {
    pub key: GroupKey,
    pub k: u32,
    /// Problems averaged (those with at least k samples).
    pub problems: usize,
    /// Mean pass@k with VerifiedCorrect as the criterion (the paper's).
    pub verified: f64,
    /// Mean pass@k with answer-only correctness.
    pub answer: f64,
}

/// Per-problem counts collected by key. Problems share a handful of keys, so each distinct key
/// is stored once and a problem holds its index.
#[derive(Debug, Clone, Default)]
pub struct PassAtK {
    keys: Vec<GroupKey>,
    /// (index into `keys`, counts) per problem, in the order added.
    problems: Vec<(usize, Counts)>,
}

impl PassAtK {
    pub fn new() -> PassAtK {
        PassAtK::default()
    }

    /// Record one problem's counts.
    pub fn add(&mut self, key: GroupKey, counts: Counts) {
        let i = match self.keys.iter().rposition(|k| *k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key);
                self.keys.len() - 1
            }
        };
        self.problems.push((i, counts));
    }

    /// [`PassAtK::add`] for a fully specified key, allocating only for a key not seen before
    /// (an audit adds one problem per gold item).
    pub fn add_key(&mut self, split: &str, op: u32, template: &str, mode: Mode, counts: Counts) {
        let same = |k: &GroupKey| {
            k.op == Some(op)
                && k.mode == Some(mode)
                && k.split.as_deref() == Some(split)
                && k.template.as_deref() == Some(template)
        };
        // Problems usually come grouped by key: try the last key first.
        let last = self
            .problems
            .last()
            .map(|p| p.0)
            .filter(|&i| same(&self.keys[i]));
        match last.or_else(|| self.keys.iter().position(same)) {
            Some(i) => self.problems.push((i, counts)),
            None => self.add(GroupKey::new(split, op, template, mode), counts),
        }
    }

    /// Mean pass@k per group (keys projected by `by`) for each k in `ks`, sorted by key then
    /// k. Problems with fewer than k samples (or inconsistent counts) are left out of that k's
    /// mean; a group with no problem left gets no row.
    pub fn report(&self, ks: &[u32], by: By) -> Vec<PassRow> {
        // Project each distinct key once (not once per problem), keeping every group's
        // counts in problem order.
        let mut groups: BTreeMap<GroupKey, usize> = BTreeMap::new();
        let slot: Vec<usize> = self
            .keys
            .iter()
            .map(|k| {
                let next = groups.len();
                *groups.entry(k.project(by)).or_insert(next)
            })
            .collect();
        let mut lists: Vec<Vec<Counts>> = vec![Vec::new(); groups.len()];
        for &(k, c) in &self.problems {
            lists[slot[k]].push(c);
        }
        let mut rows = Vec::new();
        for (key, i) in groups {
            let counts = &lists[i];
            for &k in ks {
                let (mut m, mut sv, mut sa) = (0usize, 0.0, 0.0);
                for c in counts {
                    if let (Some(v), Some(a)) =
                        (pass_at_k(c.n, c.verified, k), pass_at_k(c.n, c.answer, k))
                    {
                        m += 1;
                        sv += v;
                        sa += a;
                    }
                }
                if m > 0 {
                    rows.push(PassRow {
                        key: key.clone(),
                        k,
                        problems: m,
                        verified: sv / m as f64,
                        answer: sa / m as f64,
                    });
                }
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pass@k by enumerating every k-subset of n samples whose first c are correct.
    fn brute(n: u32, c: u32, k: u32) -> f64 {
        let (mut hit, mut all) = (0u64, 0u64);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() == k {
                all += 1;
                hit += (mask & ((1 << c) - 1) != 0) as u64;
            }
        }
        hit as f64 / all as f64
    }

    #[test]
    fn matches_brute_force_enumeration() {
        for n in 1..=12 {
            for c in 0..=n {
                for k in 1..=n {
                    let p = pass_at_k(n, c, k).unwrap();
                    assert!((p - brute(n, c, k)).abs() < 1e-12, "n={n} c={c} k={k}");
                }
                assert_eq!(pass_at_k_curve(n, c).len(), n as usize);
            }
        }
    }

    #[test]
    fn edge_cases_and_large_n() {
        assert_eq!(pass_at_k(4, 5, 1), None);
        assert_eq!(pass_at_k(4, 1, 0), None);
        assert_eq!(pass_at_k(4, 1, 5), None);
        assert_eq!(pass_at_k(128, 0, 128), Some(0.0));
        assert_eq!(pass_at_k(128, 1, 128), Some(1.0));
        assert!((pass_at_k(128, 32, 1).unwrap() - 0.25).abs() < 1e-12);
        let p = pass_at_k(1_000_000, 1, 1).unwrap();
        assert!((p - 1e-6).abs() < 1e-15);
    }

    #[test]
    fn aggregates_by_key() {
        let mut t = PassAtK::new();
        t.add(
            GroupKey::new("id", 5, "zoo", Mode::Forward),
            Counts {
                n: 4,
                verified: 2,
                answer: 4,
            },
        );
        t.add(
            GroupKey::new("id", 5, "zoo", Mode::Forward),
            Counts {
                n: 4,
                verified: 0,
                answer: 1,
            },
        );
        t.add(
            GroupKey::new("id", 6, "zoo", Mode::Reverse),
            Counts {
                n: 2,
                verified: 2,
                answer: 2,
            },
        );
        let rows = t.report(&[1, 4], By::ALL);
        assert_eq!(rows.len(), 3); // op 6 has only 2 samples: no k = 4 row
        assert_eq!(rows[0].k, 1);
        assert!((rows[0].verified - 0.25).abs() < 1e-12);
        assert!((rows[0].answer - 0.625).abs() < 1e-12);
        assert!((rows[1].verified - 0.5).abs() < 1e-12);
        let by_split = t.report(
            &[1],
            By {
                split: true,
                op: false,
                template: false,
                mode: false,
            },
        );
        assert_eq!(by_split.len(), 1);
        assert_eq!(by_split[0].problems, 3);
        assert!((by_split[0].verified - 0.5).abs() < 1e-12);
    }
}
