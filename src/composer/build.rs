//! Constructive sampling of a problem with an exact op count.
//!
//! One attempt draws a world (location and item names from the template's groups), grows the
//! necessary DAG in it with exactly `op` edges (`necessary`, tuned per op by `growth`), adds
//! distractors (`distractors`), and in reverse mode hides one constant (`hidden`); then it
//! shuffles the statement order and the trace letters. Values are in range by construction
//! (`values`). Only rare corner cases (a value overflow with no way around it, a world too
//! small for the op) abandon an attempt and start again, with the same RNG, so the result is
//! still a function of the seed.

use rand::seq::SliceRandom;
use rand::{Rng, RngExt};

use super::hidden::choose_hidden;
use super::necessary::{Builder, Goal};
use super::noise::Noise;
use super::problem::{Mode, Problem, FINAL_STATEMENT};
use super::profile;
use crate::template::{Template, MAX_WIDTH};

/// Values of needed quantities lie in 0..=MAX_VALUE (SPEC §1).
pub const MAX_VALUE: i64 = 1000;
/// Letters a trace may use: A–Z a–z.
pub const N_LETTERS: usize = 52;

/// Attempts before `compose` gives up (each attempt is a fresh world).
const MAX_ATTEMPTS: u32 = 200;

/// Why no problem could be composed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("op {op} is out of range: ops run from 1 to {max}")]
    OpOutOfRange { op: u32, max: u32 },
    #[error(
        "could not compose a {mode} problem with op {op} on template `{template}` in {attempts} \
         attempts (its world is too small for this op, or the trace would need more than \
         {N_LETTERS} letters)"
    )]
    Exhausted {
        op: u32,
        mode: Mode,
        template: String,
        attempts: u32,
    },
    #[error(transparent)]
    Noise(#[from] super::noise::NoiseError),
}

/// Highest op accepted. Up to 60 every seed composes (past ~45 more attempts are needed as the
/// 52 trace letters and 30 node slots bind); from 62 on some seeds cannot be composed at all.
pub const MAX_OP: u32 = 60;

/// Compose one problem with exactly `op` edges in its necessary subgraph.
pub fn compose<R: Rng>(
    t: &Template,
    op: u32,
    mode: Mode,
    noise: Noise,
    rng: &mut R,
) -> Result<Problem, ComposeError> {
    if op == 0 || op > MAX_OP {
        return Err(ComposeError::OpOutOfRange { op, max: MAX_OP });
    }
    noise.check(t, op).map_err(ComposeError::Noise)?;
    // Drawn once, so attempts that start again keep the reference's share of total questions.
    // A total over one instance costs 2, so op 1 is always an instance question.
    let total_goal = op >= 2 && rng.random_bool(profile::p_total(op));
    for _ in 0..MAX_ATTEMPTS {
        if let Some(p) = attempt(t, op, mode, noise, total_goal, rng) {
            return Ok(p);
        }
    }
    Err(ComposeError::Exhausted {
        op,
        mode,
        template: t.id.clone(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Fewest locations the necessary DAG of an `op` is built in (a world of `gl` locations).
pub(crate) fn world_floor(op: u32, gl: usize) -> usize {
    let lo = match op {
        0..=14 => 2,
        15..=24 => 3,
        25..=32 => 4,
        _ => 5,
    };
    lo.min(gl)
}

fn attempt<R: Rng>(
    t: &Template,
    op: u32,
    mode: Mode,
    noise: Noise,
    total_goal: bool,
    rng: &mut R,
) -> Option<Problem> {
    let loc_group = rng.random_range(0..t.location_groups.len());
    let item_group = rng.random_range(0..t.item_groups.len());
    let gl = t.location_groups[loc_group].names.len().min(MAX_WIDTH);
    let gi = t.item_groups[item_group].names.len().min(MAX_WIDTH);
    let floor = world_floor(op, gl);
    // How many distractors, and how many locations to keep free of needed quantities so a
    // requested count always fits (each free location holds a full row of `gi` items).
    let want = match noise {
        Noise::Reference => profile::draw_distractors(rng, op, mode),
        Noise::Exact(n) => n as usize,
        Noise::Range(lo, hi) => rng.random_range(lo..=hi) as usize,
    };
    let reserve = match noise {
        Noise::Reference => 0,
        _ => want.div_ceil(gi),
    };
    let nl_hi = gl - reserve;
    let nl = rng.random_range(floor.min(nl_hi)..=nl_hi);
    let ni_lo = match op {
        0..=6 => 2,
        7..=14 => 3,
        _ => 4,
    };
    let ni = rng.random_range(ni_lo.min(gi)..=gi);
    // Full shuffled name lists; the world is their first `nl` / `ni` names and may widen when
    // the distractors need room.
    let mut locs: Vec<u8> = (0..gl as u8).collect();
    locs.shuffle(rng);
    let mut items: Vec<u8> = (0..gi as u8).collect();
    items.shuffle(rng);

    let goal_loc = rng.random_range(0..nl) as u8;
    let goal = if total_goal {
        Goal::Total { loc: goal_loc }
    } else {
        Goal::Instance { loc: goal_loc }
    };
    let max_letters = match mode {
        Mode::Forward => N_LETTERS,
        // x and X are reserved; the hidden leaf itself is written x.
        Mode::Reverse => N_LETTERS - 1,
    };
    let mut b = Builder::new(rng, op, nl, ni, goal, max_letters);
    b.build_needed()?;
    let n_needed = b.nodes.len();
    b.add_distractors(want, gl, gi);
    let (nl, ni) = (b.nl, b.ni);
    locs.truncate(nl);
    items.truncate(ni);
    let hidden = match mode {
        Mode::Forward => None,
        Mode::Reverse => Some(choose_hidden(&b.nodes[..n_needed], b.rng)?),
    };
    let mut order: Vec<u8> = (0..b.nodes.len())
        .filter(|&i| !b.nodes[i].is_total())
        .map(|i| i as u8)
        .collect();
    if mode == Mode::Reverse {
        order.push(FINAL_STATEMENT);
    }
    order.shuffle(b.rng);
    let mut letters: Vec<u8> = (b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .filter(|&c| mode == Mode::Forward || (c != b'x' && c != b'X'))
        .collect();
    letters.shuffle(b.rng);
    Some(Problem {
        mode,
        op,
        loc_group: loc_group as u8,
        item_group: item_group as u8,
        locs,
        items,
        nodes: b.nodes,
        n_needed,
        hidden,
        order,
        letters,
    })
}
