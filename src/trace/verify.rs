//! Verification: compare the predicted graph read from a completion with the gold graph.

use super::format::TraceFormat;
use super::num::{Lin, Num};
use super::read::{Reader, EXTRA, MAX_GOLD_NODES};
use super::verdict::{Issue, IssueKind, NodeStatus, Rule, Verdict};
use crate::composer::Mode;
use crate::graph::{GoldGraph, NodeKind};

/// Reusable verifier: holds the scratch space, so verifying many completions allocates
/// nothing once warm. One per thread. It reads completions in one [`TraceFormat`] (`full`
/// unless made with [`Verifier::for_format`]): the format of the dataset the model learnt
/// from, which its manifest records.
#[derive(Debug)]
pub struct Verifier {
    reader: Reader,
    verdict: Verdict,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

/// Verify one `full`-format completion (see [`Verifier::verify`]); allocates a fresh verifier.
pub fn verify(gold: &GoldGraph, completion: &str, rule: Rule) -> Verdict {
    Verifier::new().verify(gold, completion, rule).clone()
}

impl Verifier {
    /// A verifier of `full`-format traces.
    pub fn new() -> Verifier {
        Verifier::for_format(TraceFormat::Full)
    }

    /// A verifier of traces in `format`.
    pub fn for_format(format: TraceFormat) -> Verifier {
        let mut reader = Reader::new();
        reader.format = format;
        Verifier {
            reader,
            verdict: Verdict::default(),
        }
    }

    /// The format this verifier reads.
    pub fn format(&self) -> TraceFormat {
        self.reader.format
    }

    /// Read `completion` (a bare trace, a model completion, or prompt plus completion) and
    /// judge it against `gold` under `rule`. The verdict borrows this verifier's buffers.
    ///
    /// A gold graph with more than 127 nodes cannot be verified: every node is reported
    /// missing. In the `answer_only` format only the answer is judged, and the verdict says
    /// so ([`Verdict::outcome_only`]).
    pub fn verify(&mut self, gold: &GoldGraph, completion: &str, rule: Rule) -> &Verdict {
        let outcome_only = !self.reader.format.has_process();
        let v = &mut self.verdict;
        v.rule = rule;
        v.outcome_only = outcome_only;
        v.nodes.clear();
        v.extra.clear();
        v.issues.clear();
        v.answer = None;
        v.answer_correct = false;
        v.process_acc = 0.0;
        v.verified_correct = false;
        if gold.nodes.len() > MAX_GOLD_NODES {
            v.nodes.resize(gold.nodes.len(), NodeStatus::Missing);
            return v;
        }
        let r = &mut self.reader;
        r.read(gold, completion);

        // The answer: the tag wins, then the first `Answer:` claim; all must agree with each
        // other and with a solved equation.
        v.answer = match r.tag {
            Some(t) => t,
            None => r.claim,
        };
        let mut conflict = r.conflict;
        if let (Some(Some(t)), Some(c)) = (r.tag, r.claim) {
            conflict |= t != c;
        }
        if let (Some(s), Some(a)) = (r.solved, v.answer) {
            conflict |= s != a;
        }
        if conflict {
            v.issues.push(Issue {
                kind: IssueKind::AnswerConflict,
                at: 0,
            });
        }
        v.answer_correct = v.answer == Some(Num::int(gold.answer));
        if outcome_only {
            // No process to check: keep only what bears on the answer, and let the process
            // score be the outcome, so no reward pretends a process was checked.
            let answer_issues = r.issues.iter().filter(|i| i.kind == IssueKind::BadAnswer);
            v.issues.extend(answer_issues);
            v.process_acc = if v.answer_correct { 1.0 } else { 0.0 };
            v.verified_correct = v.answer_correct
                && match rule {
                    Rule::Strict => v.issues.is_empty(),
                    Rule::Interplay => true,
                };
            return v;
        }
        if gold.mode == Mode::Reverse && !r.equation_seen {
            v.issues.push(Issue {
                kind: IssueKind::MissingEquation,
                at: completion.len(),
            });
        }
        v.issues.extend_from_slice(&r.issues);

        let x = (gold.mode == Mode::Reverse)
            .then(|| gold.nodes.get(gold.asked).map(|n| Num::int(n.value)))
            .flatten();
        let mut correct = 0usize;
        for (g, gn) in gold.nodes.iter().enumerate() {
            let p = r.gold_of[g];
            let status = match r.nodes.get(p as usize) {
                None => NodeStatus::Missing,
                Some(pn) => {
                    let want = Num::int(gn.value);
                    let value_ok = match (gn.kind == NodeKind::Unknown, pn.unknown) {
                        (true, true) => true,
                        (false, false) => pn.val.is_some_and(|l| value_matches(l, want, x)),
                        _ => false,
                    };
                    let mask = gn
                        .parents
                        .iter()
                        .fold(0u128, |m, &q| m | if q < 127 { 1 << q } else { EXTRA });
                    let parents_ok = pn.parents == mask;
                    match (value_ok, parents_ok) {
                        (true, true) if pn.flawed => NodeStatus::Flawed,
                        (true, true) => NodeStatus::Correct,
                        (false, true) => NodeStatus::WrongValue,
                        (true, false) => NodeStatus::WrongParents,
                        (false, false) => NodeStatus::WrongValueAndParents,
                    }
                }
            };
            correct += status.is_correct(rule) as usize;
            v.nodes.push(status);
        }
        for pn in &r.nodes {
            if pn.gold.is_none() {
                v.extra.push(pn.name.clone());
            }
        }
        if !gold.nodes.is_empty() {
            v.process_acc = correct as f64 / gold.nodes.len() as f64;
        }
        let all = correct == gold.nodes.len() && !gold.nodes.is_empty();
        v.verified_correct = all
            && v.answer_correct
            && match rule {
                Rule::Strict => v.extra.is_empty() && v.issues.is_empty(),
                Rule::Interplay => true,
            };
        v
    }
}

/// Whether a predicted value is the gold one: a number directly, a linear form in x at the
/// gold hidden value (reverse mode only).
fn value_matches(l: Lin, want: Num, x: Option<Num>) -> bool {
    if l.is_const() {
        l.b == want
    } else {
        x.and_then(|x| l.eval(x)) == Some(want)
    }
}
