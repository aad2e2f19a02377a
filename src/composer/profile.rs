//! The reference family's per-op profile: what the composer draws so its problems have the shape
//! of the paper's corpus. Both tables were measured on the reference generator (GSM-Infinite
//! "realistic", as the paper's scripts run it: `--force`, `number_range = 5`, `ip_max = 20`,
//! `op_max` per tier, zoo template, 300 problems per (mode, op); `REFERENCE_STATS.md`).
//!
//! The reference states every remaining slot of the small location × item structure it sampled
//! for a problem, so its distractor count is the structure's size less the needed instances,
//! and jumps with its `op_max` tiers. The composer draws that count from the reference's own
//! histogram at the op and then places and defines each distractor as `drawUnnecessary` does
//! (see `build`).

use rand::{Rng, RngExt};

use super::problem::Mode;

/// Share of forward questions asking for a location total, op 2..=20.
const P_TOTAL: [f64; 19] = [
    1.000, 0.577, 0.920, 0.830, 0.760, 0.713, 0.703, 0.743, 0.910, 0.820, 0.937, 0.867, 0.760,
    0.787, 0.927, 0.880, 0.860, 0.913, 0.880,
];
/// Problems (of 300) stating 0, 1, ..., 15 distractors, op 2..=20.
const FORWARD_DISTRACTORS: [[u16; 16]; 19] = [
    [0, 27, 86, 23, 54, 38, 36, 13, 7, 6, 6, 2, 2, 0, 0, 0], // op 2
    [28, 94, 30, 43, 31, 26, 17, 10, 14, 5, 0, 0, 2, 0, 0, 0], // op 3
    [13, 29, 151, 24, 21, 20, 15, 9, 6, 8, 3, 0, 0, 1, 0, 0], // op 4
    [33, 11, 132, 17, 22, 22, 13, 9, 9, 9, 4, 4, 6, 7, 1, 1], // op 5
    [27, 12, 12, 19, 15, 22, 106, 13, 13, 14, 15, 7, 4, 14, 3, 4], // op 6
    [65, 35, 23, 16, 24, 26, 53, 18, 7, 10, 7, 10, 4, 1, 0, 1], // op 7
    [80, 16, 20, 15, 18, 45, 27, 14, 18, 13, 10, 9, 13, 1, 0, 1], // op 8
    [103, 10, 19, 23, 18, 43, 7, 17, 14, 8, 10, 10, 11, 3, 4, 0], // op 9
    [230, 5, 12, 6, 7, 12, 6, 4, 4, 3, 1, 4, 4, 0, 2, 0],    // op 10
    [223, 6, 12, 11, 14, 8, 6, 5, 4, 6, 4, 1, 0, 0, 0, 0],   // op 11
    [256, 2, 7, 4, 6, 8, 2, 2, 5, 3, 2, 2, 1, 0, 0, 0],      // op 12
    [229, 8, 14, 9, 12, 6, 4, 3, 2, 4, 3, 3, 2, 1, 0, 0],    // op 13
    [194, 16, 17, 26, 11, 6, 9, 2, 2, 4, 4, 4, 2, 2, 0, 1],  // op 14
    [175, 21, 22, 27, 11, 11, 9, 9, 6, 2, 1, 2, 3, 1, 0, 0], // op 15
    [257, 3, 7, 9, 3, 4, 7, 1, 2, 0, 3, 4, 0, 0, 0, 0],      // op 16
    [243, 4, 10, 12, 4, 5, 6, 2, 5, 3, 2, 2, 2, 0, 0, 0],    // op 17
    [228, 13, 8, 21, 7, 6, 4, 3, 3, 2, 2, 3, 0, 0, 0, 0],    // op 18
    [266, 4, 6, 8, 5, 2, 1, 2, 2, 2, 2, 0, 0, 0, 0, 0],      // op 19
    [255, 6, 8, 11, 4, 9, 2, 0, 2, 0, 1, 2, 0, 0, 0, 0],     // op 20
];
/// The same in reverse mode.
const REVERSE_DISTRACTORS: [[u16; 16]; 19] = [
    [224, 8, 19, 15, 20, 11, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 2
    [21, 109, 70, 68, 21, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 3
    [31, 39, 132, 30, 30, 22, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 4
    [44, 18, 127, 27, 33, 31, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 5
    [13, 9, 9, 14, 14, 44, 197, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 6
    [57, 21, 19, 18, 22, 78, 85, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 7
    [69, 15, 26, 24, 18, 122, 26, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 8
    [92, 9, 33, 21, 15, 130, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // op 9
    [245, 6, 9, 6, 5, 11, 2, 2, 3, 3, 1, 4, 2, 1, 0, 0],    // op 10
    [201, 8, 9, 15, 17, 9, 7, 7, 1, 6, 5, 5, 4, 2, 2, 2],   // op 11
    [257, 4, 5, 7, 7, 4, 1, 2, 4, 1, 2, 2, 2, 0, 1, 1],     // op 12
    [248, 7, 13, 5, 7, 8, 5, 1, 2, 3, 1, 0, 0, 0, 0, 0],    // op 13
    [195, 8, 16, 20, 8, 13, 10, 8, 8, 4, 6, 2, 1, 0, 1, 0], // op 14
    [160, 13, 28, 29, 15, 7, 10, 14, 9, 6, 4, 1, 2, 1, 1, 0], // op 15
    [262, 5, 7, 6, 5, 3, 2, 3, 1, 2, 2, 1, 0, 0, 1, 0],     // op 16
    [239, 12, 12, 13, 5, 3, 2, 3, 2, 2, 3, 2, 1, 1, 0, 0],  // op 17
    [233, 13, 13, 14, 5, 5, 7, 3, 4, 2, 0, 0, 0, 0, 1, 0],  // op 18
    [269, 3, 6, 6, 4, 5, 1, 1, 1, 2, 1, 1, 0, 0, 0, 0],     // op 19
    [245, 12, 9, 7, 3, 2, 7, 6, 3, 2, 3, 0, 1, 0, 0, 0],    // op 20
];

/// Row of op `op` in the tables: ops outside 2..=20 take the nearest measured op.
fn row(op: u32) -> usize {
    (op.clamp(2, 20) - 2) as usize
}

/// Probability that a forward question asks for a location total at `op`.
pub fn p_total(op: u32) -> f64 {
    P_TOTAL[row(op)]
}

/// Draw the number of distractors of one problem at `op` in `mode`, from the reference's
/// histogram.
pub fn draw_distractors<R: Rng>(rng: &mut R, op: u32, mode: Mode) -> usize {
    let h = match mode {
        Mode::Forward => &FORWARD_DISTRACTORS[row(op)],
        Mode::Reverse => &REVERSE_DISTRACTORS[row(op)],
    };
    let total: u32 = h.iter().map(|&w| w as u32).sum();
    let mut x = rng.random_range(0..total);
    for (d, &w) in h.iter().enumerate() {
        if x < w as u32 {
            return d;
        }
        x -= w as u32;
    }
    h.len() - 1
}
