//! Selecting a split's rows. Candidates are composed in parallel, but each cell's candidates
//! are *accepted* sequentially in index order (held-out bucket rule, then the Bloom-filter
//! dedup, or the dedup decisions sizing made), and rows are taken from the cells in a fixed
//! interleaved order. Threads change only how fast this happens, never which rows are chosen.

use std::collections::{BTreeMap, VecDeque};

use rayon::prelude::*;

use super::plan::{candidate_seed, cell_seed_base};
use super::sizing::SizedCell;
use super::GenerateError;
use crate::composer::{compose_noisy, problem_id, ComposeError, Problem, ProblemId};
use crate::dataset::bloom::Bloom;
use crate::dataset::manifest::{Fingerprints, SplitManifest};
use crate::dataset::recipe::SplitSpec;
use crate::dataset::split::{admits, Cell, Interleave};
use crate::template::{Template, TemplateSet};

/// Consecutive rejected candidates after which a cell is declared exhausted.
pub(super) const MAX_CONSECUTIVE_REJECTS: u64 = 200_000;

/// Candidates to compose for `want` more rows, scaled by the expected acceptance rate (a
/// held-out split admits about one candidate in 16).
pub(super) fn candidate_window(held_out: bool, want: u64) -> u64 {
    if held_out {
        want * 17 + 32
    } else {
        want + want / 8 + 8
    }
}

/// One chunk of selected rows: the cell each came from and the problem itself.
pub(super) struct Chunk<'t> {
    pub(super) cells: Vec<u16>,
    pub(super) rows: Vec<(&'t Template, Problem, ProblemId)>,
}

/// A split's selection in progress: every cell's generator state and the interleaving.
pub(super) struct Selection<'t> {
    states: Vec<CellState<'t>>,
    interleave: Interleave,
    split: String,
    held_out: bool,
}

impl<'t> Selection<'t> {
    /// Selection of `cells` of `split`; a sized split replays the dedup decisions sizing made.
    pub(super) fn new(
        recipe_seed: u64,
        split: &SplitSpec,
        cells: Vec<Cell>,
        templates: &'t TemplateSet,
        mut sized: Option<&mut [SizedCell]>,
    ) -> Selection<'t> {
        let states: Vec<CellState> = cells
            .into_iter()
            .enumerate()
            .map(|(ci, cell)| CellState {
                template: templates.get(&cell.template).expect("validated"),
                seed_base: cell_seed_base(
                    recipe_seed,
                    &split.name,
                    &cell.template,
                    cell.op,
                    cell.mode,
                    cell.noise,
                ),
                cell,
                next: 0,
                queue: VecDeque::new(),
                accepted: 0,
                rejects_in_a_row: 0,
                replay: sized.as_mut().map(|s| Replay {
                    duplicates: std::mem::take(&mut s[ci].duplicates),
                    at: 0,
                }),
            })
            .collect();
        let interleave =
            Interleave::new(&states.iter().map(|s| s.cell.clone()).collect::<Vec<_>>());
        Selection {
            states,
            interleave,
            split: split.name.clone(),
            held_out: split.held_out,
        }
    }

    pub(super) fn cells(&self) -> impl Iterator<Item = &Cell> {
        self.states.iter().map(|s| &s.cell)
    }

    /// The next `n` rows in interleaved order, counted into the split's histograms and the
    /// dataset's fingerprints (split `si`).
    pub(super) fn next_chunk(
        &mut self,
        n: usize,
        si: usize,
        bloom: &mut Bloom,
        sm: &mut SplitManifest,
        fingerprints: &mut Fingerprints,
    ) -> Result<Chunk<'t>, GenerateError> {
        let order: Vec<u16> = (0..n).map(|_| self.interleave.next_cell() as u16).collect();
        let mut need = vec![0u64; self.states.len()];
        for &c in &order {
            need[c as usize] += 1;
        }
        fill_queues(
            &mut self.states,
            &need,
            self.held_out,
            &self.split,
            bloom,
            sm,
        )?;
        let mut taken: Vec<(&Template, Problem, ProblemId)> = Vec::with_capacity(n);
        for &c in &order {
            let s = &mut self.states[c as usize];
            let (p, id) = s
                .queue
                .pop_front()
                .expect("queue was filled for this chunk");
            *sm.op_hist.entry(p.op).or_default() += 1;
            bump(&mut sm.template_hist, &s.cell.template);
            bump(&mut sm.mode_hist, p.mode.as_str());
            *sm.distractor_hist.entry(p.n_distractors()).or_default() += 1;
            fingerprints.push(si, id.fingerprint());
            taken.push((s.template, p, id));
        }
        Ok(Chunk {
            cells: order,
            rows: taken,
        })
    }
}

/// Per-cell generator state: the next candidate index and accepted problems not yet used.
struct CellState<'t> {
    cell: Cell,
    template: &'t Template,
    seed_base: [u64; 4],
    next: u64,
    queue: VecDeque<(Problem, ProblemId)>,
    accepted: u64,
    rejects_in_a_row: u64,
    /// Dedup decisions made while sizing (token budgets); `None` consults the Bloom filter.
    replay: Option<Replay>,
}

impl CellState<'_> {
    /// Whether admitted candidate `i` (id `id`) is a duplicate; otherwise it is now taken.
    fn duplicate(&mut self, i: u64, id: &ProblemId, bloom: &mut Bloom) -> bool {
        match self.replay.as_mut() {
            Some(r) => r.duplicate(i),
            None => !bloom.insert(id),
        }
    }
}

/// The candidates sizing found to be duplicates, replayed in index order.
struct Replay {
    duplicates: Vec<u64>,
    at: usize,
}

impl Replay {
    /// Whether candidate `i` was a duplicate; candidates are asked about in increasing order.
    fn duplicate(&mut self, i: u64) -> bool {
        while self.duplicates.get(self.at).is_some_and(|&d| d < i) {
            self.at += 1;
        }
        self.duplicates.get(self.at) == Some(&i)
    }
}

/// Add one to `hist[key]`, allocating the key only the first time it is seen.
fn bump(hist: &mut BTreeMap<String, u64>, key: &str) {
    match hist.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            hist.insert(key.to_string(), 1);
        }
    }
}

/// Compose candidates until every cell's queue holds `need` problems.
fn fill_queues(
    states: &mut [CellState],
    need: &[u64],
    held_out: bool,
    split: &str,
    bloom: &mut Bloom,
    sm: &mut SplitManifest,
) -> Result<(), GenerateError> {
    loop {
        // Candidate windows: the deficit, scaled by the expected acceptance rate.
        let mut tasks: Vec<(usize, u64)> = Vec::new();
        for (ci, s) in states.iter().enumerate() {
            let deficit = need[ci].saturating_sub(s.queue.len() as u64);
            if deficit == 0 {
                continue;
            }
            let window = candidate_window(held_out, deficit);
            tasks.extend((s.next..s.next + window).map(|i| (ci, i)));
        }
        if tasks.is_empty() {
            return Ok(());
        }
        let results: Vec<Result<(Problem, ProblemId), ComposeError>> = tasks
            .par_iter()
            .map_init(Vec::new, |buf, &(ci, i)| {
                let s = &states[ci];
                let p = compose_noisy(
                    s.template,
                    s.cell.op,
                    s.cell.mode,
                    s.cell.noise,
                    candidate_seed(&s.seed_base, i),
                )?;
                let id = problem_id(&s.template.id, &p, buf);
                Ok((p, id))
            })
            .collect();
        for (&(ci, i), r) in tasks.iter().zip(results) {
            let s = &mut states[ci];
            s.next = i + 1;
            sm.candidates += 1;
            let (p, id) = r.map_err(|source| GenerateError::Compose {
                split: split.to_string(),
                template: s.cell.template.clone(),
                op: s.cell.op,
                mode: s.cell.mode,
                source,
            })?;
            if !admits(held_out, &id) {
                sm.rejected_bucket += 1;
                s.rejects_in_a_row += 1;
            } else if s.duplicate(i, &id, bloom) {
                sm.rejected_duplicate += 1;
                s.rejects_in_a_row += 1;
            } else {
                s.queue.push_back((p, id));
                s.accepted += 1;
                s.rejects_in_a_row = 0;
            }
            if s.rejects_in_a_row >= MAX_CONSECUTIVE_REJECTS {
                return Err(GenerateError::Exhausted {
                    split: split.to_string(),
                    template: s.cell.template.clone(),
                    op: s.cell.op,
                    mode: s.cell.mode,
                    accepted: s.accepted,
                    rejected: s.rejects_in_a_row,
                });
            }
        }
    }
}
