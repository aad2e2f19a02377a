//! The shape of the composed family at one (template, op, mode), counted the way
//! `REFERENCE_STATS.md` counts the reference generator's problems, so the two can be set side by
//! side (`bench_generate`, `tests/it/family.rs`).
//!
//! - sentences: stated sentences of the problem (reverse: the hidden leaf's and the final
//!   value's sentences included);
//! - distractors: sentences about quantities the gold trace never defines;
//! - trace steps: `Define` steps of the gold trace (needed nodes);
//! - answer median / p90 / max;
//! - problem and solution characters: mean lengths of the problem text and the gold trace
//!   (through `Answer: N.`);
//! - total questions: share of questions asking for a location total;
//! - sentence kinds: share of all stated definitions of each [`Kind`].

use crate::composer::{compose_noisy, seed, Combine, ComposeError, Mode, Node, Noise, Outer};
use crate::render::Rendered;
use crate::template::Template;

/// What an instance sentence says, in the categories of `REFERENCE_STATS.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `X equals K`
    Constant,
    /// `X equals REF`
    Copy,
    /// `X equals K plus|times REF`
    OuterCopy,
    /// `X equals the sum of A and B`
    Sum2,
    /// `X equals the difference between A and B`
    Difference,
    /// `X equals the sum of A, B, and C` (three or more)
    SumMany,
    /// `X equals K plus|times` a sum or a difference
    OuterSum,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Constant,
        Kind::Copy,
        Kind::OuterCopy,
        Kind::Sum2,
        Kind::Difference,
        Kind::SumMany,
        Kind::OuterSum,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Constant => "constant",
            Kind::Copy => "copy",
            Kind::OuterCopy => "k plus/times copy",
            Kind::Sum2 => "sum of 2",
            Kind::Difference => "difference",
            Kind::SumMany => "sum of >= 3",
            Kind::OuterSum => "k plus/times (sum or difference)",
        }
    }

    /// The kind of an instance's defining sentence.
    pub fn of(n: &Node) -> Kind {
        let outer = n.outer != Outer::None;
        match (n.combine, n.parents().len(), outer) {
            (Combine::Const(_), _, _) => Kind::Constant,
            (_, 1, false) => Kind::Copy,
            (_, 1, true) => Kind::OuterCopy,
            (_, _, true) => Kind::OuterSum,
            (Combine::Diff, _, false) => Kind::Difference,
            (_, 2, false) => Kind::Sum2,
            _ => Kind::SumMany,
        }
    }
}

/// The figures of one (template, op, mode) sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub sentences: f64,
    pub distractors: f64,
    pub trace_steps: f64,
    /// Median and 90th percentile, interpolated linearly as numpy does.
    pub answer_median: f64,
    pub answer_p90: f64,
    pub answer_max: i64,
    pub problem_chars: f64,
    pub solution_chars: f64,
    pub total_questions: f64,
    /// Needed instances and needed location totals per problem.
    pub needed_instances: f64,
    pub needed_totals: f64,
    /// Share (0–1) of stated definitions of each kind, in [`Kind::ALL`] order.
    pub kinds: [f64; 7],
    /// The same over the needed instances only.
    pub needed_kinds: [f64; 7],
}

/// Measure `n` problems of `t` at `op` in `mode` with noise `noise`, seeds derived from `seed0`.
pub fn measure(
    t: &Template,
    op: u32,
    mode: Mode,
    noise: Noise,
    n: usize,
    seed0: u64,
) -> Result<Stats, ComposeError> {
    let mut r = Rendered::default();
    let mut sentences = 0usize;
    let mut distractors = 0usize;
    let mut steps = 0usize;
    let mut pchars = 0usize;
    let mut schars = 0usize;
    let mut totals = 0usize;
    let mut needed_totals = 0usize;
    let mut kinds = [0usize; 7];
    let mut needed_kinds = [0usize; 7];
    let mut answers = Vec::with_capacity(n);
    for i in 0..n {
        let p = compose_noisy(t, op, mode, noise, seed::derive(&[seed0, i as u64]))?;
        r.fill(t, &p);
        sentences += p.order.len();
        distractors += p.n_distractors();
        steps += p.n_needed;
        pchars += r.problem.len();
        schars += r.solution.len();
        totals += p.asks_total() as usize;
        answers.push(p.answer());
        needed_totals += p.needed().iter().filter(|n| n.is_total()).count();
        if p.hidden.is_some() {
            // The final value's statement, "X equals N", reads as a constant.
            kinds[0] += 1;
        }
        for (k, node) in p.nodes.iter().enumerate() {
            if node.is_total() || p.hidden == Some(k) {
                continue;
            }
            let kind = Kind::of(node);
            let i = Kind::ALL.iter().position(|&x| x == kind).expect("listed");
            kinds[i] += 1;
            if k < p.n_needed {
                needed_kinds[i] += 1;
            }
        }
    }
    answers.sort_unstable();
    let q = |f: f64| {
        let x = (answers.len() - 1) as f64 * f;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        answers[lo] as f64 + (answers[hi] - answers[lo]) as f64 * (x - lo as f64)
    };
    let stated: usize = kinds.iter().sum();
    let nf = n as f64;
    Ok(Stats {
        n,
        sentences: sentences as f64 / nf,
        distractors: distractors as f64 / nf,
        trace_steps: steps as f64 / nf,
        answer_median: q(0.5),
        answer_p90: q(0.9),
        answer_max: *answers.last().expect("n > 0"),
        problem_chars: pchars as f64 / nf,
        solution_chars: schars as f64 / nf,
        total_questions: totals as f64 / nf,
        needed_instances: (steps - needed_totals) as f64 / nf,
        needed_totals: needed_totals as f64 / nf,
        kinds: kinds.map(|k| k as f64 / stated.max(1) as f64),
        needed_kinds: {
            let n: usize = needed_kinds.iter().sum();
            needed_kinds.map(|k| k as f64 / n.max(1) as f64)
        },
    })
}
