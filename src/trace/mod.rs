//! Read model-written traces and verify them against the gold graph (SPEC §3–4).
//!
//! - `read` (internal): a one-pass byte scanner that turns a completion into a
//!   predicted graph, following `grammars/trace.ebnf`, cutting the solution into clauses. Beside
//!   it: `lex` (byte classes, numbers and search, on `memchr`), `names` (the gold name table
//!   that matches a `Define` header to a gold node), `expr` (every arithmetic chain recomputed,
//!   reverse-mode expressions as exact linear forms in x, [`Lin`]) and `equation` (the
//!   reverse-mode equation section, checked line by line).
//! - [`TraceFormat`]: the trace formats a dataset may be written in (`full`, `terse`, `long`,
//!   `answer_only`); the reader reads the clause shapes of the one it is given (`terse` and
//!   `check` hold the shapes `full` lacks) and an `answer_only` verdict is outcome only.
//! - `marks` (internal): bitmaps of the clause delimiters and `<` bytes of a completion, built
//!   in one SIMD pass, which the reader walks instead of scanning bytes.
//! - [`Verifier`] / [`verify`]: the per-node comparison with the gold graph and the scores
//!   (`process_acc`, `answer_correct`, `verified_correct`) under a [`Rule`].
//! - [`Reward`]: the scalar RL rewards derived from a [`Verdict`].
//!
//! The verifier depends on the gold graph only, never on the renderer, so a rendering bug
//! cannot hide a verifier bug.
//!
//! ```
//! use dagmath::trace::{verify, Rule};
//! # use dagmath::graph::{GoldGraph, GoldNode, NodeKind};
//! # use dagmath::composer::Mode;
//! # let node = |name: &str, value, parents: Vec<usize>, kind| GoldNode { name: name.into(), value, parents, kind };
//! let gold = GoldGraph {
//!     mode: Mode::Forward,
//!     nodes: vec![
//!         node("adult owl in South Zoo", 2, vec![], NodeKind::Constant),
//!         node("total number of adult animals in South Zoo", 2, vec![0], NodeKind::Total),
//!     ],
//!     asked: 1,
//!     answer: 2,
//! };
//! let trace = "Define adult owl in South Zoo as K; so K = 2. \
//!              Define total number of adult animals in South Zoo as B; so B = K = 2. Answer: 2.";
//! assert!(verify(&gold, trace, Rule::Strict).verified_correct);
//! ```

mod check;
mod equation;
mod expr;
mod format;
mod lex;
mod marks;
mod names;
mod num;
mod read;
mod reward;
mod terse;
mod verdict;
mod verify;

pub use format::{TraceFormat, UnknownTraceFormat};
pub use num::{Lin, Num};
pub use read::MAX_GOLD_NODES;
pub use reward::{penalties, Reward, Rewards};
pub use verdict::{Issue, IssueKind, NodeStatus, Rule, Verdict};
pub use verify::{verify, Verifier};
