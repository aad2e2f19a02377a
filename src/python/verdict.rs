//! The verdict of one completion as a Python object: the scores, each gold node's fate, the
//! extra nodes, the issues with their byte offsets, and the same flat row `dagmath audit`
//! writes to verdicts.parquet (`to_dict`).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::eval::audit::flatten;
use crate::graph::GoldGraph;
use crate::trace::{Issue as TraceIssue, IssueKind, NodeStatus, Verdict as TraceVerdict};

/// One flaw found while reading a completion, and the byte offset where its clause starts.
#[pyclass(frozen, module = "dagmath", name = "Issue")]
#[derive(Clone)]
pub struct PyIssue {
    issue: TraceIssue,
}

/// The snake-case name of an issue kind, and its letter if it has one.
fn kind_name(k: IssueKind) -> (&'static str, Option<char>) {
    match k {
        IssueKind::WrongResult => ("wrong_result", None),
        IssueKind::WrongSubstitution => ("wrong_substitution", None),
        IssueKind::UndefinedLetter(c) => ("undefined_letter", Some(c)),
        IssueKind::RedefinedLetter(c) => ("redefined_letter", Some(c)),
        IssueKind::DuplicateName => ("duplicate_name", None),
        IssueKind::Unassigned => ("unassigned", None),
        IssueKind::Malformed => ("malformed", None),
        IssueKind::BadArithmetic => ("bad_arithmetic", None),
        IssueKind::AnswerConflict => ("answer_conflict", None),
        IssueKind::BadAnswer => ("bad_answer", None),
        IssueKind::MissingEquation => ("missing_equation", None),
        IssueKind::WrongKnown => ("wrong_known", None),
        IssueKind::EquationMismatch => ("equation_mismatch", None),
        IssueKind::Unsolved => ("unsolved", None),
        IssueKind::ExtraUnknown => ("extra_unknown", None),
        IssueKind::CheckMismatch => ("check_mismatch", None),
    }
}

#[pymethods]
impl PyIssue {
    /// The kind, in snake case: `wrong_result`, `undefined_letter`, `answer_conflict`, ...
    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(self.issue.kind).0
    }

    /// The letter of `undefined_letter` / `redefined_letter`, else None.
    #[getter]
    fn letter(&self) -> Option<char> {
        kind_name(self.issue.kind).1
    }

    /// Byte offset (into the completion's UTF-8) where the offending clause starts.
    #[getter]
    fn at(&self) -> usize {
        self.issue.at
    }

    /// The form of verdicts.parquet's `first_issue` column: `WrongResult at byte 120`.
    fn __str__(&self) -> String {
        self.issue.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Issue({})", self.issue)
    }
}

/// The snake-case name of a node status.
fn status_name(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Correct => "correct",
        NodeStatus::Flawed => "flawed",
        NodeStatus::WrongValue => "wrong_value",
        NodeStatus::WrongParents => "wrong_parents",
        NodeStatus::WrongValueAndParents => "wrong_value_and_parents",
        NodeStatus::Missing => "missing",
    }
}

/// The verdict of one completion against its gold graph.
#[pyclass(frozen, module = "dagmath", name = "Verdict")]
pub struct PyVerdict {
    pub verdict: TraceVerdict,
    pub gold: Arc<GoldGraph>,
    /// The trace format the completion was read in (`summarize` reports it).
    pub format: crate::trace::TraceFormat,
}

#[pymethods]
impl PyVerdict {
    /// Every gold node correct, the right answer, and (rule `strict`) no extra node and no issue.
    #[getter]
    fn verified_correct(&self) -> bool {
        self.verdict.verified_correct
    }

    /// Only the outcome was scored (`format="answer_only"`: no trace to check); ProcessAcc and
    /// the process-based rewards then equal the outcome.
    #[getter]
    fn outcome_only(&self) -> bool {
        self.verdict.outcome_only
    }

    /// The final answer equals the gold answer.
    #[getter]
    fn answer_correct(&self) -> bool {
        self.verdict.answer_correct
    }

    /// ProcessAcc: the share of gold nodes correct under the rule.
    #[getter]
    fn process_acc(&self) -> f64 {
        self.verdict.process_acc
    }

    /// The answer read from the completion (`7`, or `7/2` for a fraction), or None.
    #[getter]
    fn answer(&self) -> Option<String> {
        self.verdict.answer.map(|a| match a.as_int() {
            Some(i) => i.to_string(),
            None => format!("{}/{}", a.numer(), a.denom()),
        })
    }

    /// `strict` or `interplay`.
    #[getter]
    fn rule(&self) -> &'static str {
        super::options::rule_name(self.verdict.rule)
    }

    /// The gold problem's mode: `forward` or `reverse`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.gold.mode.as_str()
    }

    /// Per gold node, in gold order: `(name, status)` with status one of `correct`, `flawed`,
    /// `wrong_value`, `wrong_parents`, `wrong_value_and_parents`, `missing`.
    #[getter]
    fn nodes(&self) -> Vec<(String, &'static str)> {
        self.gold
            .nodes
            .iter()
            .zip(&self.verdict.nodes)
            .map(|(n, &s)| (n.name.clone(), status_name(s)))
            .collect()
    }

    /// Byte ranges `(start, end)` of the names of defined nodes absent from the gold graph.
    #[getter]
    fn extra(&self) -> Vec<(usize, usize)> {
        self.verdict
            .extra
            .iter()
            .map(|r| (r.start, r.end))
            .collect()
    }

    /// Every issue found, in reading order.
    #[getter]
    fn issues(&self) -> Vec<PyIssue> {
        self.verdict
            .issues
            .iter()
            .map(|&issue| PyIssue { issue })
            .collect()
    }

    /// The first issue, or None.
    #[getter]
    fn first_issue(&self) -> Option<PyIssue> {
        self.verdict.issues.first().map(|&issue| PyIssue { issue })
    }

    /// One scalar reward: `kind` is `outcome`, `process`, `mixed`, `strict` or `penalty`;
    /// `alpha` weighs the outcome in `mixed` and `penalty`.
    #[pyo3(signature = (kind = "mixed", alpha = 0.2))]
    fn reward(&self, kind: &str, alpha: f64) -> PyResult<f64> {
        Ok(super::options::parse_reward(kind, alpha)?.score(&self.verdict))
    }

    /// The row `dagmath audit` writes to verdicts.parquet for this verdict (without the gold
    /// keys): `verified_correct`, `answer_correct`, `process_acc`, `answer`, `first_issue`, the
    /// `n_*` counts and one `reward_*` per reward (`alpha` weighs the outcome).
    #[pyo3(signature = (alpha = 0.2))]
    fn to_dict<'py>(&self, py: Python<'py>, alpha: f64) -> PyResult<Bound<'py, PyDict>> {
        super::options::check_alpha(alpha)?;
        let s = flatten(0, 0, &self.verdict, alpha);
        let d = PyDict::new(py);
        d.set_item("verified_correct", s.verified_correct)?;
        d.set_item("answer_correct", s.answer_correct)?;
        d.set_item("process_acc", s.process_acc)?;
        d.set_item("answer", s.answer)?;
        d.set_item("first_issue", s.first_issue)?;
        for (k, v) in [
            ("n_nodes", s.nodes),
            ("n_correct", s.correct),
            ("n_flawed", s.flawed),
            ("n_wrong_value", s.wrong_value),
            ("n_wrong_parents", s.wrong_parents),
            ("n_missing", s.missing),
            ("n_extra", s.extra),
            ("n_issues", s.issues),
            ("n_arithmetic_errors", s.arithmetic_errors),
        ] {
            d.set_item(k, v)?;
        }
        for (k, v) in s.rewards.named() {
            d.set_item(format!("reward_{k}"), v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let v = &self.verdict;
        format!(
            "Verdict(verified_correct={}, answer_correct={}, process_acc={:.3}, answer={}, first_issue={})",
            py_bool(v.verified_correct),
            py_bool(v.answer_correct),
            v.process_acc,
            self.answer().map_or("None".into(), |a| format!("'{a}'")),
            v.issues.first().map_or("None".into(), |i| format!("'{i}'")),
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}
