//! The study's statistics: pass@k with bootstrap confidence intervals over problems, paired
//! differences between arms, and verdicts that can say no.
//!
//! An arm is one model recipe evaluated once per RL seed (each evaluation a `dagmath eval`
//! folder). Its pass@k on a split is the mean over problems of the unbiased pass@k, averaged over
//! seeds (seeds pooled). The 95% interval resamples problems with replacement (each resampled
//! problem keeps all its seeds), so it covers problem and sampling variation; a difference
//! between two arms resamples the same problems for both (paired). A finding is *reproduced* when
//! the difference has the paper's sign and its interval excludes 0, *not reproduced* when it has
//! the opposite sign and excludes 0, and *inconclusive* otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, Int32Array, StringArray};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::passk::pass_at_k;
use crate::dataset::shard::{read_batches, ShardError};

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 2000;

/// One problem's sample counts in one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemTally {
    pub split: String,
    pub op: u32,
    pub template: String,
    /// Samples drawn.
    pub n: u32,
    /// Samples verified correct (strict or the eval's rule).
    pub verified: u32,
    /// Samples whose final answer was right.
    pub answer: u32,
}

impl ProblemTally {
    /// Samples whose answer was right but whose trace did not verify (reward hacking).
    pub fn hacked(&self) -> u32 {
        self.answer - self.verified
    }
}

/// One evaluation: problem id → tally.
pub type Evaluation = BTreeMap<String, ProblemTally>;

/// Why an evaluation folder's verdicts cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: ShardError },
    #[error("{}: no column `{column}`", path.display())]
    MissingColumn { path: PathBuf, column: String },
    #[error("{}: column `{column}` is not {expected}", path.display())]
    ColumnType {
        path: PathBuf,
        column: String,
        expected: &'static str,
    },
    #[error("{}: no verdicts", path.display())]
    Empty { path: PathBuf },
}

/// Read an evaluation from a `dagmath eval` folder's `verdicts.parquet`.
pub fn read_evaluation(dir: &Path) -> Result<Evaluation, StudyError> {
    let path = dir.join("verdicts.parquet");
    let batches = read_batches(&path).map_err(|source| StudyError::Read {
        path: path.clone(),
        source,
    })?;
    let mut out = Evaluation::new();
    for b in &batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| StudyError::MissingColumn {
                    path: path.clone(),
                    column: name.to_string(),
                })
        };
        let typed = |name: &str, expected| StudyError::ColumnType {
            path: path.clone(),
            column: name.to_string(),
            expected,
        };
        let strs = |name: &str| -> Result<StringArray, StudyError> {
            col(name)?
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| typed(name, "a string"))
        };
        let bools = |name: &str| -> Result<BooleanArray, StudyError> {
            col(name)?
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .ok_or_else(|| typed(name, "boolean"))
        };
        let (id, split, template) = (strs("id")?, strs("split")?, strs("template")?);
        let (verified, answer) = (bools("verified_correct")?, bools("answer_correct")?);
        let op = col("op")?
            .as_any()
            .downcast_ref::<Int32Array>()
            .cloned()
            .ok_or_else(|| typed("op", "int32"))?;
        for i in 0..b.num_rows() {
            let t = out
                .entry(id.value(i).to_string())
                .or_insert_with(|| ProblemTally {
                    split: split.value(i).to_string(),
                    op: op.value(i).max(0) as u32,
                    template: template.value(i).to_string(),
                    n: 0,
                    verified: 0,
                    answer: 0,
                });
            t.n += 1;
            t.verified += u32::from(verified.value(i));
            t.answer += u32::from(answer.value(i));
        }
    }
    if out.is_empty() {
        return Err(StudyError::Empty { path });
    }
    Ok(out)
}

/// What is measured per problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Verified (strict) pass@k.
    Verified(u32),
    /// Answer-only pass@k.
    Answer(u32),
    /// Share of samples whose answer is right and whose trace is wrong.
    Hacking,
}

impl Metric {
    /// The metric of one tally, `None` when k exceeds the samples drawn.
    pub fn of(self, t: &ProblemTally) -> Option<f64> {
        match self {
            Metric::Verified(k) => pass_at_k(t.n, t.verified, k),
            Metric::Answer(k) => pass_at_k(t.n, t.answer, k),
            Metric::Hacking => (t.n > 0).then(|| t.hacked() as f64 / t.n as f64),
        }
    }
}

/// A subset of problems: a split, optionally one op and one template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Slice {
    pub split: String,
    pub op: Option<u32>,
    pub template: Option<String>,
}

impl Slice {
    pub fn split(split: &str) -> Slice {
        Slice {
            split: split.to_string(),
            ..Slice::default()
        }
    }

    fn holds(&self, t: &ProblemTally) -> bool {
        t.split == self.split
            && self.op.is_none_or(|o| o == t.op)
            && self.template.as_deref().is_none_or(|x| x == t.template)
    }
}

/// Per-problem values of an arm (its evaluations, one per seed) on a slice: problem id → the mean
/// over seeds. Only problems every seed evaluated count, so seeds are compared on equal terms.
pub fn per_problem(arm: &[Evaluation], slice: &Slice, m: Metric) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Some(first) = arm.first() else {
        return out;
    };
    'problem: for (id, t) in first {
        if !slice.holds(t) {
            continue;
        }
        let mut sum = 0.0;
        for e in arm {
            match e.get(id).and_then(|t| m.of(t)) {
                Some(v) => sum += v,
                None => continue 'problem,
            }
        }
        out.insert(id.clone(), sum / arm.len() as f64);
    }
    out
}

/// A mean with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    /// Problems it was computed over.
    pub problems: usize,
}

/// The mean of `values` and its 95% percentile-bootstrap interval (`RESAMPLES` resamples,
/// deterministic in `seed`). `None` for no values.
pub fn bootstrap(values: &[f64], seed: u64) -> Option<Estimate> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    Some(Estimate {
        mean,
        lo: at(0.025),
        hi: at(0.975),
        problems: n,
    })
}

/// An arm's estimate on a slice.
pub fn estimate(arm: &[Evaluation], slice: &Slice, m: Metric) -> Option<Estimate> {
    let v: Vec<f64> = per_problem(arm, slice, m).into_values().collect();
    bootstrap(&v, 0x5eed)
}

/// The paired difference `better − worse` over the problems both arms evaluated.
pub fn difference(
    better: &[Evaluation],
    worse: &[Evaluation],
    slice: &Slice,
    m: Metric,
) -> Option<Estimate> {
    let a = per_problem(better, slice, m);
    let b = per_problem(worse, slice, m);
    let d: Vec<f64> = a
        .iter()
        .filter_map(|(id, x)| b.get(id).map(|y| x - y))
        .collect();
    bootstrap(&d, 0xd1ff)
}

/// A finding's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    Inconclusive,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Judge a difference whose paper direction is positive (`better` beats `worse`), with the reason.
pub fn judge(d: &Estimate) -> (Verdict, String) {
    let pts = |x: f64| format!("{:+.1}", 100.0 * x);
    let ci = format!("[{}, {}] points", pts(d.lo), pts(d.hi));
    if d.lo > 0.0 {
        (
            Verdict::Reproduced,
            format!("the paper's direction; 95% interval {ci} excludes 0"),
        )
    } else if d.hi < 0.0 {
        (
            Verdict::NotReproduced,
            format!("the opposite direction; 95% interval {ci} excludes 0"),
        )
    } else if d.lo == 0.0 && d.hi == 0.0 {
        (
            Verdict::Inconclusive,
            "both arms score the same on every problem (no signal)".to_string(),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!("95% interval {ci} contains 0"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(split: &str, op: u32, n: u32, verified: u32, answer: u32) -> ProblemTally {
        ProblemTally {
            split: split.into(),
            op,
            template: "zoo".into(),
            n,
            verified,
            answer,
        }
    }

    fn eval(rows: &[(&str, u32, u32)]) -> Evaluation {
        rows.iter()
            .map(|&(id, v, a)| (id.to_string(), tally("s", 2, 4, v, a)))
            .collect()
    }

    #[test]
    fn seeds_are_pooled_per_problem_and_missing_problems_drop() {
        let s0 = eval(&[("a", 4, 4), ("b", 0, 2), ("c", 2, 2)]);
        let s1 = eval(&[("a", 0, 4), ("b", 0, 0)]);
        let v = per_problem(&[s0, s1], &Slice::split("s"), Metric::Verified(1));
        assert_eq!(v.len(), 2, "c is missing from seed 1");
        assert_eq!(v["a"], 0.5);
        assert_eq!(v["b"], 0.0);
    }

    #[test]
    fn hacking_is_right_answers_with_wrong_traces() {
        let e = eval(&[("a", 1, 3)]);
        let v = per_problem(&[e], &Slice::split("s"), Metric::Hacking);
        assert_eq!(v["a"], 0.5);
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_is_deterministic() {
        let v: Vec<f64> = (0..100).map(|i| (i % 4) as f64 / 4.0).collect();
        let e = bootstrap(&v, 1).unwrap();
        assert!(e.lo < e.mean && e.mean < e.hi, "{e:?}");
        assert!((e.mean - 0.375).abs() < 1e-12);
        // The standard error is ~0.028, so the interval is ~±0.055.
        assert!(e.hi - e.lo > 0.06 && e.hi - e.lo < 0.16, "{e:?}");
        assert_eq!(bootstrap(&v, 1), Some(e));
        assert_eq!(bootstrap(&[], 1), None);
    }

    #[test]
    fn verdicts_follow_the_interval_of_the_difference() {
        let hi: Vec<(String, f64)> = (0..60).map(|i| (format!("{i}"), 0.0)).collect();
        let mk = |f: &dyn Fn(usize) -> u32| -> Evaluation {
            hi.iter()
                .enumerate()
                .map(|(i, (id, _))| (id.clone(), tally("s", 2, 8, f(i), f(i))))
                .collect()
        };
        let strong = mk(&|i| (i % 3) as u32 + 5);
        let weak = mk(&|i| (i % 3) as u32);
        let s = Slice::split("s");
        let m = Metric::Verified(1);
        let (strong, weak) = (vec![strong], vec![weak]);
        let d = difference(&strong, &weak, &s, m).unwrap();
        assert_eq!(judge(&d).0, Verdict::Reproduced);
        let d = difference(&weak, &strong, &s, m).unwrap();
        assert_eq!(judge(&d).0, Verdict::NotReproduced);
        let d = difference(&weak, &weak, &s, m).unwrap();
        assert_eq!(judge(&d).0, Verdict::Inconclusive);
    }
}
