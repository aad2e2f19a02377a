//! The problem family measured: dagmath's figures per (template, op, mode), counted as
//! `REFERENCE_STATS.md` counts them, and the reference generator's own figures beside them.

pub mod reference;
pub mod stats;

pub use stats::{measure, Kind, Stats};

use std::fmt::Write;

use crate::composer::{ComposeError, Mode, Noise};
use crate::template::Template;

/// Tolerances the default family is held to against the reference (issue 12): relative 15%,
/// or 0.5 absolute where the reference figure is below 3; sentence kinds within 5 points.
pub const REL_TOL: f64 = 0.15;
pub const ABS_TOL: f64 = 0.5;
pub const KIND_TOL: f64 = 0.05;

/// Whether `ours` is within tolerance of `reference`.
pub fn within(ours: f64, reference: f64) -> bool {
    if reference < 3.0 {
        (ours - reference).abs() <= ABS_TOL
    } else {
        (ours - reference).abs() <= REL_TOL * reference
    }
}

/// Each figure of one (mode, op) with its reference value: (name, dagmath, reference).
pub fn figures(s: &Stats, r: &reference::Row) -> Vec<(&'static str, f64, f64)> {
    let mut v = vec![
        ("sentences", s.sentences, r.sentences),
        ("distractors", s.distractors, r.distractors),
        ("trace steps", s.trace_steps, r.trace_steps),
        ("answer median", s.answer_median, r.answer_median),
        ("answer p90", s.answer_p90, r.answer_p90),
        ("problem chars", s.problem_chars, r.problem_chars),
        ("solution chars", s.solution_chars, r.solution_chars),
    ];
    if r.mode == Mode::Forward {
        v.push(("total questions", s.total_questions, r.total_questions));
    }
    v
}

/// The figures of `s` that are out of tolerance against `r`, as readable lines.
pub fn misses(s: &Stats, r: &reference::Row) -> Vec<String> {
    let mut out = Vec::new();
    for (name, ours, theirs) in figures(s, r) {
        if !within(ours, theirs) {
            out.push(format!(
                "{} op {} {name}: dagmath {ours:.2}, reference {theirs:.2}",
                r.mode, r.op
            ));
        }
    }
    if let Some(k) = r.kinds {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            if (s.kinds[i] - k[i]).abs() > KIND_TOL {
                out.push(format!(
                    "{} op {} kind {}: dagmath {:.1}%, reference {:.1}%",
                    r.mode,
                    r.op,
                    kind.label(),
                    100.0 * s.kinds[i],
                    100.0 * k[i]
                ));
            }
        }
    }
    out
}

/// The comparison table for every measured reference row: dagmath / reference and the relative
/// difference per figure, `n` problems per row (seeds derived from `seed`), then the sentence
/// kinds where the reference measured them. Returns the table and the out-of-tolerance lines.
pub fn comparison(
    t: &Template,
    n: usize,
    seed: u64,
) -> Result<(String, Vec<String>), ComposeError> {
    let mut table = String::new();
    let mut all_misses = Vec::new();
    table.push_str(
        "| mode | op | sentences | distractors | trace steps | answer median | answer p90 | problem chars | solution chars | total questions |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut kinds = String::new();
    for r in reference::ROWS {
        let s = measure(t, r.op, r.mode, Noise::Reference, n, seed ^ r.op as u64)?;
        let _ = write!(table, "| {} | {} |", r.mode, r.op);
        for (_, ours, theirs) in figures(&s, r) {
            let rel = if theirs != 0.0 {
                100.0 * (ours - theirs) / theirs
            } else {
                0.0
            };
            let mark = if within(ours, theirs) { "" } else { " ✗" };
            let _ = write!(table, " {ours:.2} / {theirs:.2} ({rel:+.0}%){mark} |");
        }
        if r.mode == Mode::Reverse {
            table.push_str(" – |");
        }
        table.push('\n');
        if let Some(k) = r.kinds {
            let _ = write!(kinds, "| {} | {} |", r.mode, r.op);
            for (ours, theirs) in s.kinds.iter().zip(k) {
                let mark = if (ours - theirs).abs() > KIND_TOL {
                    " ✗"
                } else {
                    ""
                };
                let _ = write!(
                    kinds,
                    " {:.1} / {:.1}{mark} |",
                    100.0 * ours,
                    100.0 * theirs
                );
            }
            kinds.push('\n');
        }
        all_misses.extend(misses(&s, r));
    }
    table.push_str(
        "\nSentence kinds, % of stated definitions (dagmath / reference):\n\n| mode | op |",
    );
    for k in Kind::ALL {
        let _ = write!(table, " {} |", k.label());
    }
    table.push_str("\n|---|---|---|---|---|---|---|---|---|\n");
    table.push_str(&kinds);
    Ok((table, all_misses))
}
