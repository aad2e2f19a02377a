//! What verification reports: per gold node, per extra node, per flaw found while reading, and
//! the three scores (`process_acc`, `answer_correct`, `verified_correct`).

use std::fmt;
use std::ops::Range;

use super::num::Num;

/// How strictly a completion is judged (SPEC §4).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// The default. `verified_correct` needs every gold node correct, the right answer, no
    /// extra node and no [`Issue`] at all: no arithmetic or substitution error (intermediates
    /// included), no undefined or reused letter, no malformed `=` clause, no conflicting answer,
    /// and in reverse mode a consistent equation section. A step whose value and parents are
    /// right but whose work has a flaw counts as incorrect in `process_acc`.
    #[default]
    Strict,
    /// The reference implementation's semantics, for comparing with the paper: a gold node is
    /// correct when its value and parent set are; extra nodes are tolerated; intermediate values,
    /// arithmetic and the equation section are not checked.
    Interplay,
}

/// The fate of one gold node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    /// Defined with the right value and parent set, and its step's work is sound.
    Correct,
    /// Right value and parents, but its step has an [`Issue`] (a wrong intermediate, an
    /// undefined letter, ...). Correct under [`Rule::Interplay`], incorrect under
    /// [`Rule::Strict`].
    Flawed,
    WrongValue,
    WrongParents,
    WrongValueAndParents,
    /// Never defined by name.
    Missing,
}

impl NodeStatus {
    pub fn value_wrong(self) -> bool {
        matches!(
            self,
            NodeStatus::WrongValue | NodeStatus::WrongValueAndParents
        )
    }

    pub fn parents_wrong(self) -> bool {
        matches!(
            self,
            NodeStatus::WrongParents | NodeStatus::WrongValueAndParents
        )
    }

    /// Whether the step counts as correct under `rule`.
    pub fn is_correct(self, rule: Rule) -> bool {
        match self {
            NodeStatus::Correct => true,
            NodeStatus::Flawed => rule == Rule::Interplay,
            _ => false,
        }
    }
}

/// A flaw found while reading a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueKind {
    /// A written result disagrees with the expression before it (`A = 2 + 3 = 6`).
    WrongResult,
    /// A substituted expression disagrees with the values of the letters it replaces
    /// (`A = B + C = 2 + 4` when C is 3).
    WrongSubstitution,
    /// A letter used before it was defined or given a value.
    UndefinedLetter(char),
    /// A letter defined a second time (letters are never reused).
    RedefinedLetter(char),
    /// The same name defined by two steps.
    DuplicateName,
    /// A step whose letter never gets a value (and is not the reverse-mode unknown).
    Unassigned,
    /// A clause containing `=` that is not a well-formed assignment or equation, or a `Define`
    /// without `as LETTER`.
    Malformed,
    /// Overflow, division by zero or a product that is not linear in x.
    BadArithmetic,
    /// `<answer>`, `Answer:` and the solved equation do not all agree.
    AnswerConflict,
    /// The `<answer>` tag holds something other than a number.
    BadAnswer,
    /// Reverse mode: no `We know ...` equation section.
    MissingEquation,
    /// Reverse mode: `We know P = N` where P is not the final node or N not its stated value.
    WrongKnown,
    /// Reverse mode: an equation line with a different solution from the line before, or one
    /// that does not match the final node's expression.
    EquationMismatch,
    /// Reverse mode: the equation section never reaches `x = number`.
    Unsolved,
    /// A second unknown introduced, or one introduced in a forward-mode trace.
    ExtraUnknown,
    /// `long` format: a check (`We know L is NAME, ...`) that contradicts the step it follows (another letter
    /// or name, a sum that is wrong or is not the step's value), or one that follows no step.
    CheckMismatch,
}

/// One flaw and the byte offset in the completion where the offending clause starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Issue {
    pub kind: IssueKind,
    pub at: usize,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at byte {}", self.kind, self.at)
    }
}

/// The result of verifying one completion against a gold graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    pub rule: Rule,
    /// The completion was read as an `answer_only` trace: no process was checked, only the
    /// answer. Then `nodes` is empty, `process_acc` equals the outcome (1 or 0) and
    /// `verified_correct` is the right answer stated consistently (under [`Rule::Strict`],
    /// with no conflicting or unreadable answer); every reward falls back to the outcome
    /// (see [`Reward`](super::Reward)).
    pub outcome_only: bool,
    /// One status per gold node, in gold order (empty when `outcome_only`).
    pub nodes: Vec<NodeStatus>,
    /// Byte ranges (into the completion) of the names of defined nodes absent from the gold
    /// graph.
    pub extra: Vec<Range<usize>>,
    pub issues: Vec<Issue>,
    /// The answer read from `<answer> N </answer>`, else from `Answer: N`.
    pub answer: Option<Num>,
    /// Whether `answer` equals the gold answer.
    pub answer_correct: bool,
    /// Mean over gold nodes of [`NodeStatus::is_correct`] under `rule` (the outcome when
    /// `outcome_only`).
    pub process_acc: f64,
    /// `process_acc == 1` and `answer_correct`, plus, under [`Rule::Strict`], no extra node
    /// and no issue (`answer_correct` and, under Strict, no issue when `outcome_only`).
    pub verified_correct: bool,
}

impl Verdict {
    /// Number of gold nodes with the given status.
    pub fn count(&self, s: NodeStatus) -> usize {
        self.nodes.iter().filter(|&&n| n == s).count()
    }
}
