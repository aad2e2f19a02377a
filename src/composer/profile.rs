//! The reference family's per-op profile: what the composer draws so its problems have the shape
//! of the paper's corpus (`REFERENCE_STATS.md`).
//!
//! PLACEHOLDER: filled from the reference measurement.

use rand::{Rng, RngExt};

use super::problem::Mode;

/// Share of forward questions asking for a location total, op 2..=20.
const P_TOTAL: [f64; 19] = [
    1.00, 0.58, 0.92, 0.83, 0.76, 0.71, 0.70, 0.80, 0.91, 0.92, 0.94, 0.85, 0.76, 0.80, 0.84,
    0.88, 0.88, 0.88, 0.88,
];

/// Mean distractors per op 2..=20 (forward, reverse).
const MEAN_D: [(f64, f64); 19] = [
    (3.99, 3.5),
    (2.97, 3.0),
    (3.01, 3.0),
    (3.65, 2.55),
    (5.94, 4.0),
    (4.00, 3.0),
    (4.34, 3.0),
    (3.0, 2.0),
    (1.29, 0.93),
    (1.0, 1.0),
    (0.80, 1.2),
    (1.2, 1.4),
    (1.57, 1.6),
    (1.2, 1.74),
    (1.0, 1.5),
    (0.95, 1.3),
    (0.8, 1.2),
    (0.7, 1.1),
    (0.59, 1.06),
];

fn row(op: u32) -> usize {
    (op.clamp(2, 20) - 2) as usize
}

/// Probability that a forward question asks for a location total at `op`.
pub fn p_total(op: u32) -> f64 {
    P_TOTAL[row(op)]
}

/// Draw the number of distractors of one problem at `op` in `mode`.
pub fn draw_distractors<R: Rng>(rng: &mut R, op: u32, mode: Mode) -> usize {
    let (f, r) = MEAN_D[row(op)];
    let m = if mode == Mode::Forward { f } else { r };
    let base = m.floor();
    base as usize + rng.random_bool(m - base) as usize
}
