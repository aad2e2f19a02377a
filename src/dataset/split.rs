//! From a split's mixture to an exact, interleaved plan of (template, op, mode) cells, and the
//! rule that keeps evaluation problems out of every training set.
//!
//! Held-out membership is decided by the problem id alone: ids whose 16-bit bucket is below
//! [`HELD_OUT_BUCKETS`] belong to evaluation splits and are never used for training, in any
//! dataset made with any seed. Within a dataset no id appears twice (see `generate`).

use crate::composer::{seed, Mode, Noise, ProblemId};

use super::recipe::SplitSpec;

/// Ids with `bucket() < HELD_OUT_BUCKETS` (1/16 of the id space) are reserved for evaluation.
pub const HELD_OUT_BUCKETS: u16 = 4096;

/// Whether a problem may appear in a split with the given `held_out` flag.
pub fn admits(held_out: bool, id: &ProblemId) -> bool {
    (id.bucket() < HELD_OUT_BUCKETS) == held_out
}

/// One (template, op, mode) cell of a split and its exact row count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub template: String,
    pub op: u32,
    pub mode: Mode,
    /// How many distractors its problems state.
    pub noise: Noise,
    pub rows: u64,
}

/// A cell's share of a split's budget, in the budget's unit (rows or tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub template: String,
    pub op: u32,
    pub mode: Mode,
    pub noise: Noise,
    pub units: u64,
}

impl Share {
    /// The cell with `rows` rows.
    pub fn cell(&self, rows: u64) -> Cell {
        Cell {
            template: self.template.clone(),
            op: self.op,
            mode: self.mode,
            noise: self.noise,
            rows,
        }
    }
}

/// The exact cells of a split of `size` rows (see [`apportion`]).
pub fn plan_cells(split: &SplitSpec, size: u64) -> Vec<Cell> {
    apportion(split, size)
        .iter()
        .map(|s| s.cell(s.units))
        .collect()
}

/// Each cell's share of `total_units` (rows, or tokens for a token budget): weights multiplied
/// out over the mixture's components, then apportioned by largest remainder. Equal remainders
/// are ordered by a fixed hash of the cell, so leftover units spread over templates and ops
/// instead of piling onto the alphabetically first cells. Cells that get nothing are dropped.
pub fn apportion(split: &SplitSpec, total_units: u64) -> Vec<Share> {
    let mut weights: Vec<((String, u32, Mode, Noise), f64)> = Vec::new();
    for c in &split.mix {
        for (t, wt) in &c.templates {
            for (&op, wo) in &c.ops {
                for (&mode, wm) in &c.modes {
                    let key = (t.clone(), op, mode, c.distractors);
                    let w = c.share * wt * wo * wm;
                    match weights.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, acc)) => *acc += w,
                        None => weights.push((key, w)),
                    }
                }
            }
        }
    }
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let mut units: Vec<u64> = Vec::with_capacity(weights.len());
    let mut rema: Vec<(f64, u64, usize)> = Vec::with_capacity(weights.len());
    for (i, (_, w)) in weights.iter().enumerate() {
        let exact = total_units as f64 * w / total;
        let floor = exact.floor();
        units.push(floor as u64);
        let ((t, op, mode, noise), _) = &weights[i];
        let mut tie = seed::derive(&[seed::str_key(t), *op as u64, *mode as u64]);
        if *noise != Noise::Reference {
            tie = seed::derive(&[tie, seed::str_key(&noise.to_string())]);
        }
        rema.push((exact - floor, tie, i));
    }
    let assigned: u64 = units.iter().sum();
    rema.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, _, i) in rema
        .iter()
        .take(total_units.saturating_sub(assigned) as usize)
    {
        units[i] += 1;
    }
    weights
        .into_iter()
        .zip(units)
        .filter(|(_, u)| *u > 0)
        .map(|(((template, op, mode, noise), _), units)| Share {
            template,
            op,
            mode,
            noise,
            units,
        })
        .collect()
}

/// Deterministic smooth interleaving of cells (smooth weighted round robin): row `j` of the
/// split comes from cell `next()`, and over the whole split every cell appears exactly `rows`
/// times, evenly spread, with no shuffle buffer.
#[derive(Debug, Clone)]
pub struct Interleave {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl Interleave {
    pub fn new(cells: &[Cell]) -> Interleave {
        let weights: Vec<i64> = cells.iter().map(|c| c.rows as i64).collect();
        Interleave {
            total: weights.iter().sum(),
            current: vec![0; weights.len()],
            weights,
        }
    }

    /// The cell of the next row.
    pub fn next_cell(&mut self) -> usize {
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::recipe::{Budget, Component};
    use std::collections::BTreeMap;

    fn split(ops: &[(u32, f64)]) -> SplitSpec {
        SplitSpec {
            name: "s".into(),
            budget: Budget::Rows(0),
            held_out: false,
            mix: vec![Component {
                distractors: Noise::Reference,
                share: 1.0,
                ops: ops.iter().copied().collect(),
                templates: BTreeMap::from([("zoo".into(), 1.0)]),
                modes: BTreeMap::from([(Mode::Forward, 0.5), (Mode::Reverse, 0.5)]),
            }],
        }
    }

    #[test]
    fn apportion_exact_and_interleave_counts() {
        let s = split(&[(2, 0.2), (3, 0.3), (4, 0.5)]);
        let cells = plan_cells(&s, 1001);
        assert_eq!(cells.iter().map(|c| c.rows).sum::<u64>(), 1001);
        let mut il = Interleave::new(&cells);
        let mut seen = vec![0u64; cells.len()];
        for _ in 0..1001 {
            seen[il.next_cell()] += 1;
        }
        assert_eq!(seen, cells.iter().map(|c| c.rows).collect::<Vec<_>>());
    }

    #[test]
    fn tiny_shares_still_get_rows_when_size_allows() {
        let s = split(&[(2, 0.999), (3, 0.001)]);
        let cells = plan_cells(&s, 2000);
        let r3: u64 = cells.iter().filter(|c| c.op == 3).map(|c| c.rows).sum();
        assert_eq!(r3, 2);
    }
}
