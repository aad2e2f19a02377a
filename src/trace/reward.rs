//! Scalar rewards computed from a [`Verdict`] (SPEC §4), for RL.
//!
//! With `o` = outcome (1 if the answer is correct, else 0), `p` = `process_acc`, `|V|` = the
//! number of gold nodes:
//!
//! | reward | formula |
//! |---|---|
//! | [`Reward::Outcome`] | `o` |
//! | [`Reward::Process`] | `p` |
//! | [`Reward::Mixed`] | `alpha·o + (1 − alpha)·p` (the paper's 0.2/0.8 is the default) |
//! | [`Reward::Strict`] | `1` if `verified_correct`, else `0` (outcome only if the process is perfect) |
//! | [`Reward::Penalty`] | `0` if the answer is wrong, else `alpha·o + (1 − alpha)·max(0, 1 − n/|V|)` |
//!
//! where `n` (the reference's penalty count) = wrong values + wrong parent sets + missing
//! nodes + extra nodes + (1 if the answer is wrong). A node wrong in both value and parents
//! counts twice. `p` and `verified_correct` follow the verdict's [`Rule`](super::Rule).
//!
//! An `answer_only` verdict ([`Verdict::outcome_only`]) has no process: every reward falls back
//! to the outcome (`process = mixed = penalty = o`; `strict` = `verified_correct`, the right
//! answer stated consistently), so a process-based reward never credits a process nobody
//! checked, and the verdict's flag says the score is outcome only.

use super::verdict::{NodeStatus, Verdict};

/// Which reward to compute.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reward {
    Outcome,
    Process,
    Mixed { alpha: f64 },
    Strict,
    Penalty { alpha: f64 },
}

impl Default for Reward {
    /// `Mixed { alpha: 0.2 }`: 0.2·outcome + 0.8·process.
    fn default() -> Self {
        Reward::Mixed { alpha: 0.2 }
    }
}

impl Reward {
    /// The reward of one verified completion, in `[0, 1]` for `alpha` in `[0, 1]`.
    pub fn score(self, v: &Verdict) -> f64 {
        let o = if v.answer_correct { 1.0 } else { 0.0 };
        if v.outcome_only {
            return match self {
                Reward::Strict if !v.verified_correct => 0.0,
                _ => o,
            };
        }
        match self {
            Reward::Outcome => o,
            Reward::Process => v.process_acc,
            Reward::Mixed { alpha } => alpha * o + (1.0 - alpha) * v.process_acc,
            Reward::Strict => {
                if v.verified_correct {
                    1.0
                } else {
                    0.0
                }
            }
            Reward::Penalty { alpha } => {
                if !v.answer_correct || v.nodes.is_empty() {
                    return 0.0;
                }
                let p = (1.0 - penalties(v) as f64 / v.nodes.len() as f64).max(0.0);
                alpha * o + (1.0 - alpha) * p
            }
        }
    }
}

/// The reference's penalty count: wrong values, wrong parent sets, missing nodes, extra nodes
/// and a wrong answer.
pub fn penalties(v: &Verdict) -> usize {
    let nodes: usize = v
        .nodes
        .iter()
        .map(|&s| {
            s.value_wrong() as usize
                + s.parents_wrong() as usize
                + (s == NodeStatus::Missing) as usize
        })
        .sum();
    nodes + v.extra.len() + (!v.answer_correct) as usize
}

/// Every reward of one verified completion: what an audit reports per sample and averages.
/// A struct, so a reward is read by name, never by position in an array.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rewards {
    pub outcome: f64,
    pub process: f64,
    pub mixed: f64,
    pub strict: f64,
    pub penalty: f64,
}

impl Rewards {
    /// The five rewards of `v`, the mixed and penalty ones with outcome weight `alpha`.
    pub fn of(v: &Verdict, alpha: f64) -> Rewards {
        Rewards {
            outcome: Reward::Outcome.score(v),
            process: Reward::Process.score(v),
            mixed: Reward::Mixed { alpha }.score(v),
            strict: Reward::Strict.score(v),
            penalty: Reward::Penalty { alpha }.score(v),
        }
    }

    /// Each reward with its name (`outcome`, `process`, `mixed`, `strict`, `penalty`), in
    /// the order tables and summaries list them.
    pub fn named(self) -> [(&'static str, f64); 5] {
        [
            ("outcome", self.outcome),
            ("process", self.process),
            ("mixed", self.mixed),
            ("strict", self.strict),
            ("penalty", self.penalty),
        ]
    }

    /// Add `o` field by field (running sums for means).
    pub fn add(&mut self, o: Rewards) {
        self.outcome += o.outcome;
        self.process += o.process;
        self.mixed += o.mixed;
        self.strict += o.strict;
        self.penalty += o.penalty;
    }
}
