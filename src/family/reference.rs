//! The reference generator's figures (the GSM-Infinite "realistic" generator as the paper's
//! code drives it, zoo template; `REFERENCE_STATS.md` says how it was run and counted).

use crate::composer::Mode;

/// One (mode, op) row of the reference's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub mode: Mode,
    pub op: u32,
    /// Problems measured.
    pub n: usize,
    pub sentences: f64,
    pub distractors: f64,
    pub trace_steps: f64,
    pub answer_median: i64,
    pub answer_p90: i64,
    pub answer_max: i64,
    pub problem_chars: f64,
    pub solution_chars: f64,
    pub total_questions: f64,
    /// Sentence-kind shares (0–1) in [`super::Kind::ALL`] order, where measured.
    pub kinds: Option<[f64; 7]>,
}

/// Every measured (mode, op), forward then reverse, op ascending.
pub const ROWS: &[Row] = &[
    Row { mode: Mode::Forward, op: 2, n: 300, sentences: 4.99, distractors: 3.99, trace_steps: 2.0, answer_median: 3, answer_p90: 4, answer_max: 4, problem_chars: 438.0, solution_chars: 135.0, total_questions: 1.0, kinds: Some([0.542, 0.155, 0.125, 0.036, 0.035, 0.027, 0.077]) },
    Row { mode: Mode::Forward, op: 3, n: 300, sentences: 4.97, distractors: 2.97, trace_steps: 3.0, answer_median: 3, answer_p90: 4, answer_max: 4, problem_chars: 433.0, solution_chars: 191.0, total_questions: 0.58, kinds: None },
    Row { mode: Mode::Forward, op: 4, n: 300, sentences: 5.01, distractors: 3.01, trace_steps: 3.05, answer_median: 6, answer_p90: 8, answer_max: 16, problem_chars: 425.0, solution_chars: 206.0, total_questions: 0.92, kinds: None },
    Row { mode: Mode::Forward, op: 5, n: 300, sentences: 5.79, distractors: 3.65, trace_steps: 3.18, answer_median: 8, answer_p90: 15, answer_max: 36, problem_chars: 544.0, solution_chars: 235.0, total_questions: 0.83, kinds: None },
    Row { mode: Mode::Forward, op: 6, n: 300, sentences: 8.94, distractors: 5.94, trace_steps: 3.91, answer_median: 8, answer_p90: 14, answer_max: 80, problem_chars: 835.0, solution_chars: 276.0, total_questions: 0.76, kinds: None },
    Row { mode: Mode::Forward, op: 7, n: 300, sentences: 7.2, distractors: 4.0, trace_steps: 4.45, answer_median: 10, answer_p90: 20, answer_max: 64, problem_chars: 680.0, solution_chars: 323.0, total_questions: 0.71, kinds: None },
    Row { mode: Mode::Forward, op: 8, n: 300, sentences: 8.0, distractors: 4.34, trace_steps: 4.98, answer_median: 12, answer_p90: 30, answer_max: 80, problem_chars: 762.0, solution_chars: 362.0, total_questions: 0.7, kinds: None },
    Row { mode: Mode::Forward, op: 10, n: 300, sentences: 5.04, distractors: 1.29, trace_steps: 5.67, answer_median: 17, answer_p90: 44, answer_max: 132, problem_chars: 530.0, solution_chars: 434.0, total_questions: 0.91, kinds: Some([0.366, 0.190, 0.168, 0.030, 0.027, 0.059, 0.160]) },
    Row { mode: Mode::Forward, op: 12, n: 300, sentences: 4.98, distractors: 0.8, trace_steps: 6.27, answer_median: 26, answer_p90: 60, answer_max: 160, problem_chars: 567.0, solution_chars: 497.0, total_questions: 0.94, kinds: None },
    Row { mode: Mode::Forward, op: 14, n: 300, sentences: 6.88, distractors: 1.57, trace_steps: 7.53, answer_median: 29, answer_p90: 112, answer_max: 456, problem_chars: 746.0, solution_chars: 587.0, total_questions: 0.76, kinds: None },
    Row { mode: Mode::Forward, op: 17, n: 300, sentences: 6.76, distractors: 0.95, trace_steps: 8.76, answer_median: 48, answer_p90: 140, answer_max: 507, problem_chars: 804.0, solution_chars: 705.0, total_questions: 0.88, kinds: None },
    Row { mode: Mode::Forward, op: 20, n: 300, sentences: 7.61, distractors: 0.59, trace_steps: 10.11, answer_median: 67, answer_p90: 282, answer_max: 960, problem_chars: 903.0, solution_chars: 817.0, total_questions: 0.88, kinds: Some([0.251, 0.214, 0.195, 0.036, 0.027, 0.111, 0.165]) },
    Row { mode: Mode::Reverse, op: 5, n: 100, sentences: 5.63, distractors: 2.55, trace_steps: 3.18, answer_median: 3, answer_p90: 4, answer_max: 4, problem_chars: 489.0, solution_chars: 599.0, total_questions: 0.0, kinds: None },
    Row { mode: Mode::Reverse, op: 10, n: 100, sentences: 5.7, distractors: 0.93, trace_steps: 5.78, answer_median: 3, answer_p90: 4, answer_max: 4, problem_chars: 545.0, solution_chars: 823.0, total_questions: 0.0, kinds: None },
    Row { mode: Mode::Reverse, op: 15, n: 100, sentences: 9.0, distractors: 1.74, trace_steps: 8.68, answer_median: 3, answer_p90: 4, answer_max: 4, problem_chars: 895.0, solution_chars: 1057.0, total_questions: 0.0, kinds: None },
    Row { mode: Mode::Reverse, op: 20, n: 100, sentences: 8.82, distractors: 1.06, trace_steps: 9.97, answer_median: 3, answer_p90: 4, answer_max: 4, problem_chars: 998.0, solution_chars: 1264.0, total_questions: 0.0, kinds: None },
];

/// The reference's row for (`mode`, `op`), if measured.
pub fn row(mode: Mode, op: u32) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.mode == mode && r.op == op)
}
