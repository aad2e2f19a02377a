//! Constructive sampling of a problem with an exact op count.
//!
//! The necessary DAG is grown bottom-up in topological order, so acyclicity and values come for
//! free: every new node draws its parents from nodes that already exist and its value is fixed
//! the moment it is created (constants are chosen so every value stays in range). The op budget
//! is tracked exactly. `open` holds nodes that nothing consumes yet; they must all become
//! ancestors of the final node. With a total as the final node, instances at the final location
//! ("star" instances) are consumed by the total itself. Each step keeps the invariant "what is
//! left of the budget can still close every open node", and the build ends with a closing step
//! whose cost is exactly the budget left. Only rare corner cases (a value overflow with no way
//! around it, a world too small for the op) abandon an attempt and start again.

use rand::seq::SliceRandom;
use rand::{Rng, RngExt};

use super::noise::Noise;
use super::problem::{Combine, Mode, Node, Outer, Problem, Quantity, FINAL_STATEMENT, MAX_NODES};
use super::profile;
use crate::template::{Template, MAX_WIDTH};

/// Values of needed quantities lie in 0..=MAX_VALUE (SPEC §1).
pub const MAX_VALUE: i64 = 1000;
/// Most parents of one instance sentence ("the sum of A, B, C, and D").
const MAX_INSTANCE_PARENTS: usize = 4;
/// Letters a trace may use: A–Z a–z.
pub const N_LETTERS: usize = 52;
/// How the necessary DAG grows at an op: weights of 0..=4 parents for a new instance (0 = a
/// constant), the chance of an outer "k plus" / "k times", and the percent of steps that add a
/// location total and that add an instance at the final total's location. Set per op 2-20 so
/// the family has the reference's shape (`REFERENCE_STATS.md`, see [`FITTED`]); op 1 keeps the
/// low-op row and ops past 20 (beyond the reference) wider sums that keep the trace within 52
/// letters.
#[derive(Debug, Clone, Copy)]
struct Growth {
    parents: [u32; 5],
    p_outer: f64,
    total_step: u32,
    star_step: u32,
    /// Chance that a parent is drawn from the nodes nothing consumes yet (else from all,
    /// favouring later ones): the reference reuses quantities often, which is what makes its
    /// answers large.
    from_open: f64,
    /// Chance that a star instance's other parent is an earlier star instance.
    from_stars: f64,
}

/// Ops 2-20, one row each, fitted to the reference (`family::reference`): for every op a
/// local search over these parameters minimised the squared tolerance-normalised distance of
/// every `REFERENCE_STATS.md` figure and sentence kind, in both modes, over 3 × 600 problems,
/// keeping only settings under which 8,000 seeds all compose. The reference's `op_max` tiers
/// make its shape jump between neighbouring ops, so the rows do too.
const FITTED: [Growth; 19] = [
    // op 2
    Growth {
        parents: [20, 50, 15, 10, 5],
        p_outer: 0.70,
        total_step: 10,
        star_step: 45,
        from_open: 0.50,
        from_stars: 0.60,
    },
    // op 3
    Growth {
        parents: [20, 45, 20, 10, 5],
        p_outer: 0.83,
        total_step: 6,
        star_step: 32,
        from_open: 0.52,
        from_stars: 0.60,
    },
    // op 4
    Growth {
        parents: [15, 61, 12, 6, 0],
        p_outer: 0.97,
        total_step: 22,
        star_step: 69,
        from_open: 0.10,
        from_stars: 1.00,
    },
    // op 5
    Growth {
        parents: [27, 43, 11, 3, 5],
        p_outer: 0.94,
        total_step: 19,
        star_step: 81,
        from_open: 0.37,
        from_stars: 0.29,
    },
    // op 6
    Growth {
        parents: [25, 53, 19, 7, 11],
        p_outer: 0.51,
        total_step: 23,
        star_step: 77,
        from_open: 0.52,
        from_stars: 0.99,
    },
    // op 7
    Growth {
        parents: [12, 43, 2, 16, 15],
        p_outer: 0.49,
        total_step: 53,
        star_step: 42,
        from_open: 0.58,
        from_stars: 0.67,
    },
    // op 8
    Growth {
        parents: [11, 39, 6, 26, 19],
        p_outer: 0.54,
        total_step: 53,
        star_step: 37,
        from_open: 0.51,
        from_stars: 0.99,
    },
    // op 9
    Growth {
        parents: [15, 46, 0, 4, 12],
        p_outer: 0.67,
        total_step: 35,
        star_step: 54,
        from_open: 0.33,
        from_stars: 0.02,
    },
    // op 10
    Growth {
        parents: [13, 40, 19, 32, 11],
        p_outer: 0.54,
        total_step: 85,
        star_step: 4,
        from_open: 0.48,
        from_stars: 0.00,
    },
    // op 11
    Growth {
        parents: [12, 42, 14, 23, 13],
        p_outer: 0.59,
        total_step: 61,
        star_step: 21,
        from_open: 0.70,
        from_stars: 0.51,
    },
    // op 12
    Growth {
        parents: [12, 35, 26, 55, 23],
        p_outer: 0.53,
        total_step: 64,
        star_step: 15,
        from_open: 0.40,
        from_stars: 0.59,
    },
    // op 13
    Growth {
        parents: [8, 34, 14, 58, 20],
        p_outer: 0.72,
        total_step: 49,
        star_step: 18,
        from_open: 0.61,
        from_stars: 0.48,
    },
    // op 14
    Growth {
        parents: [12, 43, 11, 14, 11],
        p_outer: 0.57,
        total_step: 37,
        star_step: 4,
        from_open: 0.43,
        from_stars: 0.72,
    },
    // op 15
    Growth {
        parents: [8, 44, 9, 7, 9],
        p_outer: 0.54,
        total_step: 54,
        star_step: 26,
        from_open: 0.88,
        from_stars: 0.49,
    },
    // op 16
    Growth {
        parents: [8, 18, 14, 66, 27],
        p_outer: 0.60,
        total_step: 79,
        star_step: 3,
        from_open: 0.56,
        from_stars: 0.61,
    },
    // op 17
    Growth {
        parents: [12, 40, 18, 23, 13],
        p_outer: 0.56,
        total_step: 62,
        star_step: 11,
        from_open: 0.37,
        from_stars: 0.75,
    },
    // op 18
    Growth {
        parents: [3, 53, 13, 26, 7],
        p_outer: 0.55,
        total_step: 52,
        star_step: 6,
        from_open: 0.60,
        from_stars: 0.54,
    },
    // op 19
    Growth {
        parents: [10, 34, 14, 24, 22],
        p_outer: 0.55,
        total_step: 64,
        star_step: 1,
        from_open: 0.25,
        from_stars: 0.59,
    },
    // op 20
    Growth {
        parents: [12, 43, 9, 30, 10],
        p_outer: 0.58,
        total_step: 58,
        star_step: 16,
        from_open: 0.35,
        from_stars: 0.60,
    },
];

fn growth(op: u32) -> Growth {
    match op {
        2..=20 => FITTED[op as usize - 2],
        0..=1 => Growth {
            parents: [20, 50, 15, 10, 5],
            p_outer: 0.7,
            total_step: 10,
            star_step: 45,
            from_open: 0.5,
            from_stars: 0.6,
        },
        _ => Growth {
            parents: [25, 20, 30, 15, 10],
            p_outer: 0.35,
            total_step: 15,
            star_step: 35,
            from_open: 0.5,
            from_stars: 0.6,
        },
    }
}

/// Chance that a two-parent instance is a difference rather than a sum.
const P_DIFF: f64 = 0.4;
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

/// What a new instance is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An ordinary node; it stays open until something consumes it.
    Open,
    /// An instance at the final total's location: the total consumes it.
    Star,
    /// The final node itself (instance goal).
    Final,
}

/// Where the build ends.
#[derive(Clone, Copy)]
enum Goal {
    /// The final node is `total(loc)`; its parents are every instance at `loc`.
    Total { loc: u8 },
    /// The final node is a new instance at `loc` (a slot there is kept free for it).
    Instance { loc: u8 },
}

struct Builder<'r, R> {
    rng: &'r mut R,
    op: u32,
    nl: usize,
    ni: usize,
    goal: Goal,
    nodes: Vec<Node>,
    /// Bit `loc * MAX_WIDTH + item` set when that instance exists.
    occupied: u32,
    /// Bit `loc` set once the location's total exists (no further instances may be added).
    closed: u8,
    /// Nodes nothing consumes yet (star instances excluded).
    open: u64,
    /// Instances at the goal's location (total goal only) and the sum of their values.
    star_count: u32,
    star_sum: i64,
    /// Bit `i` set when node `i` is a star instance.
    stars: u64,
    spent: u32,
    letters: usize,
    max_letters: usize,
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
    let mut b = Builder {
        rng,
        op,
        nl,
        ni,
        goal,
        nodes: Vec::with_capacity(MAX_NODES),
        occupied: 0,
        closed: 0,
        open: 0,
        star_count: 0,
        star_sum: 0,
        stars: 0,
        spent: 0,
        letters: 0,
        max_letters,
    };
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

/// Letters a node's gold-trace step takes: its own plus its intermediates (SPEC §3).
pub(crate) fn letters_of(n_parents: usize, outer: Outer) -> usize {
    let inter = match outer {
        Outer::None => n_parents.saturating_sub(2),
        _ => n_parents.saturating_sub(1).max(1),
    };
    1 + inter
}

fn bits(mask: u64) -> impl Iterator<Item = u8> {
    let mut m = mask;
    std::iter::from_fn(move || {
        if m == 0 {
            None
        } else {
            let i = m.trailing_zeros() as u8;
            m &= m - 1;
            Some(i)
        }
    })
}

impl<R: Rng> Builder<'_, R> {
    fn remaining(&self) -> u32 {
        let star = match self.goal {
            Goal::Total { .. } => self.star_count,
            Goal::Instance { .. } => 0,
        };
        self.op - self.spent - star
    }

    /// A random earlier node, favouring later ones (the larger of two uniform draws), so
    /// quantities build on what was just computed as the reference's do.
    fn late_node(&mut self, n_nodes: usize) -> u8 {
        let a = self.rng.random_range(0..n_nodes);
        let b = self.rng.random_range(0..n_nodes);
        a.max(b) as u8
    }

    fn goal_loc(&self) -> u8 {
        match self.goal {
            Goal::Total { loc } | Goal::Instance { loc } => loc,
        }
    }

    fn free_slots(&self, loc: u8) -> u32 {
        let row = (self.occupied >> (loc as usize * MAX_WIDTH)) & ((1 << self.ni) - 1);
        self.ni as u32 - row.count_ones()
    }

    fn random_free_item(&mut self, loc: u8) -> u8 {
        let free: u32 = !(self.occupied >> (loc as usize * MAX_WIDTH)) & ((1 << self.ni) - 1);
        let k = self.rng.random_range(0..free.count_ones());
        bits(free as u64)
            .nth(k as usize)
            .expect("a free slot exists")
    }

    /// Smallest budget that can still close `open` (see the module comment); `None` if the
    /// state cannot be closed at all.
    ///
    /// An instance question (op >= 3) also needs a location total on its path, as every
    /// reference problem has one: without one yet, at least one more edge.
    fn need(&self, open: u64, star_count: u32, has_total: bool) -> Option<u32> {
        let n = open.count_ones();
        if n as usize > MAX_INSTANCE_PARENTS {
            return None;
        }
        Some(match self.goal {
            Goal::Total { .. } if n > 0 => n + 1,
            Goal::Total { .. } if star_count == 0 => 2,
            Goal::Total { .. } => 0,
            Goal::Instance { .. } if has_total || self.op < 3 => n.max(1),
            Goal::Instance { .. } => n.max(1) + 1,
        })
    }

    /// A budget left over of `r` after a step is acceptable if it can be closed exactly.
    fn feasible(&self, r: u32, open: u64, star_count: u32, has_total: bool) -> bool {
        match self.need(open, star_count, has_total) {
            None => false,
            // With nothing open and a total goal, no single step costs exactly 1.
            Some(need) => {
                r >= need && !(matches!(self.goal, Goal::Total { .. }) && open == 0 && r == 1)
            }
        }
    }

    fn build_needed(&mut self) -> Option<()> {
        for _ in 0..4 * MAX_NODES {
            if self.try_close() {
                return Some(());
            }
            let mut stepped = false;
            for _ in 0..24 {
                if self.try_step() {
                    stepped = true;
                    break;
                }
            }
            if !stepped {
                return None;
            }
        }
        None
    }

    /// Try to finish the necessary DAG with the budget left, exactly.
    fn try_close(&mut self) -> bool {
        let r = self.remaining();
        let n_open = self.open.count_ones();
        match self.goal {
            Goal::Total { loc } => {
                if r == 0 && self.open == 0 && self.star_count > 0 {
                    return self.push_final_total(loc);
                }
                if r < 2 || self.free_slots(loc) == 0 {
                    return false;
                }
                // One more star instance that consumes everything open, costing r - 1.
                let eager = r - 1 <= n_open + 1 || self.rng.random_bool(0.3);
                eager && self.close_with_instance(loc, r - 1, Role::Star) && self.try_close()
            }
            Goal::Instance { .. } if self.closed == 0 && self.op >= 3 => false,
            Goal::Instance { loc } => {
                let eager = r <= n_open + 1 || self.rng.random_bool(0.3);
                eager && self.close_with_instance(loc, r, Role::Final)
            }
        }
    }

    fn push_final_total(&mut self, loc: u8) -> bool {
        if self.star_sum > MAX_VALUE {
            return false;
        }
        let parents: Vec<u8> = (0..self.nodes.len() as u8)
            .filter(|&i| matches!(self.nodes[i as usize].q, Quantity::Instance { loc: l, .. } if l == loc))
            .collect();
        if self.letters + letters_of(parents.len(), Outer::None) > self.max_letters {
            return false;
        }
        let node = Node::new(
            Quantity::Total { loc },
            Combine::Sum,
            Outer::None,
            &parents,
            self.star_sum,
        );
        self.spent += node.cost();
        self.star_count = 0;
        self.nodes.push(node);
        true
    }

    /// Add an instance at `loc` whose parents include every open node and whose cost is
    /// exactly `cost`: a star instance or the final node (`role`).
    fn close_with_instance(&mut self, loc: u8, cost: u32, role: Role) -> bool {
        let n_open = self.open.count_ones() as usize;
        let n_nodes = self.nodes.len();
        let mut options: [(usize, bool); 2] = [(usize::MAX, false); 2];
        let mut n_opt = 0;
        if cost == 1 && n_open == 0 {
            options[n_opt] = (0, false);
            n_opt += 1;
        }
        for (m, outer) in [(cost as usize, false), (cost as usize - 1, true)] {
            if m >= 1 && m >= n_open && m <= MAX_INSTANCE_PARENTS.min(n_nodes) && n_opt < 2 {
                options[n_opt] = (m, outer);
                n_opt += 1;
            }
        }
        if n_opt == 0 {
            return false;
        }
        let start = self.rng.random_range(0..n_opt);
        for k in 0..n_opt {
            let (m, outer) = options[(start + k) % n_opt];
            let mut parents = [0u8; MAX_INSTANCE_PARENTS];
            let mut np = 0;
            for i in bits(self.open) {
                parents[np] = i;
                np += 1;
            }
            // Top up with random non-open nodes.
            let mut tries = 0;
            while np < m && tries < 32 {
                tries += 1;
                let c = self.late_node(n_nodes);
                if !parents[..np].contains(&c) {
                    parents[np] = c;
                    np += 1;
                }
            }
            if np < m {
                continue;
            }
            parents[..np].shuffle(self.rng);
            if self.push_instance(loc, &mut parents[..np], outer, role) {
                return true;
            }
        }
        false
    }

    /// One random step that keeps the budget closable. Returns false (and changes nothing)
    /// if the drawn step is not acceptable.
    fn try_step(&mut self) -> bool {
        let r = self.remaining();
        let goal_loc = self.goal_loc();
        let roll = self.rng.random_range(0..100u32);
        // Past the reference's ops (20) totals thin out, or they close the world too soon.
        let g = growth(self.op);
        let p_total = g.total_step;
        if roll < p_total {
            // A location total, closing that location: one of those with an instance.
            let mut cands = 0u8;
            for n in &self.nodes {
                if let Quantity::Instance { loc, .. } = n.q {
                    cands |= 1 << loc;
                }
            }
            cands &= !self.closed & !(1 << goal_loc);
            if self.op > 20 {
                // Beyond the reference, any location: a total closes it, and at such ops the
                // world must stay open longer.
                let loc = self.rng.random_range(0..self.nl) as u8;
                cands &= 1 << loc;
            }
            if cands == 0 {
                return false;
            }
            let k = self.rng.random_range(0..cands.count_ones());
            let loc = bits(cands as u64).nth(k as usize).expect("a candidate");
            let parents: Vec<u8> = (0..self.nodes.len() as u8)
                .filter(|&i| matches!(self.nodes[i as usize].q, Quantity::Instance { loc: l, .. } if l == loc))
                .collect();
            let k = parents.len() as u32;
            if k == 0 || k > r {
                return false;
            }
            let value: i64 = parents.iter().map(|&p| self.nodes[p as usize].value).sum();
            let mut open = self.open;
            for &p in &parents {
                open &= !(1u64 << p);
            }
            open |= 1u64 << self.nodes.len();
            if value > MAX_VALUE
                || !self.feasible(r - k, open, self.star_count, true)
                || self.letters + letters_of(parents.len(), Outer::None) > self.max_letters
            {
                return false;
            }
            self.letters += letters_of(parents.len(), Outer::None);
            self.nodes.push(Node::new(
                Quantity::Total { loc },
                Combine::Sum,
                Outer::None,
                &parents,
                value,
            ));
            self.spent += k;
            self.open = open;
            self.closed |= 1 << loc;
            return true;
        }
        // A new instance: at the goal's location (a star instance) or elsewhere.
        let star = matches!(self.goal, Goal::Total { .. }) && roll < p_total + g.star_step;
        let loc = if star {
            goal_loc
        } else {
            self.rng.random_range(0..self.nl) as u8
        };
        if (!star && loc == goal_loc && matches!(self.goal, Goal::Total { .. }))
            || self.closed & (1 << loc) != 0
            // Keep one slot at the goal's location for the closing step.
            || self.free_slots(loc) < 1 + (loc == goal_loc) as u32
        {
            return false;
        }
        let n_nodes = self.nodes.len();
        let max_m = MAX_INSTANCE_PARENTS.min(n_nodes);
        let (weights, p_outer) = (&g.parents, g.p_outer);
        let m = weighted(self.rng, &weights[..=max_m]);
        let outer = m >= 1 && self.rng.random_bool(p_outer);
        let cost = if m == 0 { 1 } else { m as u32 + outer as u32 };
        let mut parents = [0u8; MAX_INSTANCE_PARENTS];
        let mut np = 0;
        let mut tries = 0;
        while np < m && tries < 32 {
            tries += 1;
            let from_open = self.open != 0 && self.rng.random_bool(g.from_open);
            let c = if from_open {
                let k = self.rng.random_range(0..self.open.count_ones());
                bits(self.open).nth(k as usize).expect("open is non-empty")
            } else if star && self.stars != 0 && self.rng.random_bool(g.from_stars) {
                // Instances at the final location build on each other, as the reference's do.
                let k = self.rng.random_range(0..self.stars.count_ones());
                bits(self.stars)
                    .nth(k as usize)
                    .expect("stars is non-empty")
            } else {
                self.late_node(n_nodes)
            };
            if !parents[..np].contains(&c) {
                parents[np] = c;
                np += 1;
            }
        }
        if np < m {
            return false;
        }
        let mut open = self.open;
        for &p in &parents[..np] {
            open &= !(1u64 << p);
        }
        if !star {
            open |= 1u64 << n_nodes;
        }
        let star_count = self.star_count + star as u32;
        let used = cost + star as u32;
        if used > r || !self.feasible(r - used, open, star_count, self.closed != 0) {
            return false;
        }
        self.push_instance(
            loc,
            &mut parents[..np],
            outer,
            if star { Role::Star } else { Role::Open },
        )
    }

    /// Create an instance at `loc` from `parents` (reordered for a difference), choosing its
    /// constants so the value stays in range; false if no choice works.
    fn push_instance(&mut self, loc: u8, parents: &mut [u8], outer: bool, role: Role) -> bool {
        let letters = letters_of(
            parents.len(),
            if outer { Outer::Plus(1) } else { Outer::None },
        );
        if self.letters + letters > self.max_letters {
            return false;
        }
        let Some((combine, outer, value)) =
            choose_values(self.rng, &self.nodes, parents, outer, P_DIFF)
        else {
            return false;
        };
        if role == Role::Star && self.star_sum + value > MAX_VALUE {
            return false;
        }
        let item = self.random_free_item(loc);
        let idx = self.nodes.len();
        let node = Node::new(
            Quantity::Instance { loc, item },
            combine,
            outer,
            parents,
            value,
        );
        self.spent += node.cost();
        self.letters += letters;
        for &p in parents.iter() {
            self.open &= !(1u64 << p);
        }
        match role {
            Role::Star => {
                self.star_count += 1;
                self.star_sum += value;
                self.stars |= 1u64 << idx;
            }
            Role::Open => self.open |= 1u64 << idx,
            Role::Final => {}
        }
        self.occupied |= 1 << (loc as usize * MAX_WIDTH + item as usize);
        self.nodes.push(node);
        true
    }

    /// Free instance slots a distractor may take: at locations whose total is not needed (a
    /// distractor there would change it), bit `loc * MAX_WIDTH + item`.
    fn distractor_slots(&self) -> u32 {
        let star_loc = match self.goal {
            Goal::Total { loc } => Some(loc),
            Goal::Instance { .. } => None,
        };
        let mut slots = 0u32;
        for loc in 0..self.nl as u8 {
            if Some(loc) == star_loc || self.closed & (1 << loc) != 0 {
                continue;
            }
            let row = ((1u32 << self.ni) - 1) << (loc as usize * MAX_WIDTH);
            slots |= row & !self.occupied;
        }
        slots
    }

    /// State `want` distractors in free slots of the world (SPEC §1): the rest of the small
    /// location × item structure the problem lives in. The world widens, first to every item of
    /// the group and then to more locations, when its free slots are too few; the reference
    /// distribution is cut to what the widest world holds (an exact count always fits, see
    /// `attempt`). Each distractor depends as the reference's `drawUnnecessary` draws it.
    fn add_distractors(&mut self, want: usize, gl: usize, gi: usize) {
        let mut slots = self.distractor_slots();
        if (slots.count_ones() as usize) < want && self.ni < gi {
            self.ni = gi;
            slots = self.distractor_slots();
        }
        while (slots.count_ones() as usize) < want && self.nl < gl {
            self.nl += 1;
            slots = self.distractor_slots();
        }
        // Distractors drawn from "independent" pools depend only on earlier such ones.
        let mut independent = [0u8; MAX_NODES];
        let mut n_ind = 0;
        for _ in 0..want.min(slots.count_ones() as usize) {
            let k = self.rng.random_range(0..slots.count_ones());
            let bit = bits(slots as u64).nth(k as usize).expect("a free slot");
            slots &= !(1 << bit);
            let (loc, item) = (bit / MAX_WIDTH as u8, bit % MAX_WIDTH as u8);
            let solo = self.rng.random_bool(0.5);
            let node = if solo {
                self.distractor(loc, item, &independent[..n_ind])
            } else {
                let all: Vec<u8> = (0..self.nodes.len() as u8).collect();
                self.distractor(loc, item, &all)
            };
            if solo {
                independent[n_ind] = self.nodes.len() as u8;
                n_ind += 1;
            }
            self.occupied |= 1 << bit;
            self.nodes.push(node);
        }
    }

    /// One distractor at (`loc`, `item`) over `pool` plus a literal constant, as the
    /// reference draws it: 1–4 dependencies (each further one with probability 1/2); the
    /// constant is taken with probability 1/2 unless the pool is taken whole.
    fn distractor(&mut self, loc: u8, item: u8, pool: &[u8]) -> Node {
        let q = Quantity::Instance { loc, item };
        let with_const_pool = pool.len() + 1;
        let mut dep = 1;
        while dep < MAX_INSTANCE_PARENTS.min(with_const_pool) && self.rng.random_bool(0.5) {
            dep += 1;
        }
        let (constant, m) = if dep == with_const_pool || self.rng.random_bool(0.5) {
            (true, dep - 1)
        } else {
            (false, dep)
        };
        let mut parents = [0u8; MAX_INSTANCE_PARENTS];
        let mut chosen = [0u8; MAX_INSTANCE_PARENTS];
        for _ in 0..4 {
            // m distinct members of the pool, in the order drawn.
            let mut np = 0;
            while np < m {
                let c = pool[self.rng.random_range(0..pool.len())];
                if !chosen[..np].contains(&c) {
                    chosen[np] = c;
                    np += 1;
                }
            }
            parents[..m].copy_from_slice(&chosen[..m]);
            if m == 0 {
                break;
            }
            if let Some((combine, outer, value)) =
                choose_values(self.rng, &self.nodes, &mut parents[..m], constant, 0.5)
            {
                return Node::new(q, combine, outer, &parents[..m], value);
            }
        }
        let k = const_value(self.rng);
        Node::new(q, Combine::Const(k), Outer::None, &[], k as i64)
    }
}

/// A stated constant as the reference draws it: 1–4 or 2–4, each with probability 1/2.
fn const_value<R: Rng>(rng: &mut R) -> u8 {
    if rng.random_bool(0.5) {
        rng.random_range(1..=4u8)
    } else {
        rng.random_range(2..=4u8)
    }
}

/// Pick an index with the given integer weights.
fn weighted<R: Rng>(rng: &mut R, w: &[u32]) -> usize {
    let total: u32 = w.iter().sum();
    let mut x = rng.random_range(0..total);
    for (i, &wi) in w.iter().enumerate() {
        if x < wi {
            return i;
        }
        x -= wi;
    }
    w.len() - 1
}

/// Choose the combination and constants of an instance over `parents` so its value lies in
/// 1..=MAX_VALUE and every intermediate in 0..=MAX_VALUE. A difference is ordered larger
/// first. Returns `None` when no choice fits.
fn choose_values<R: Rng>(
    rng: &mut R,
    nodes: &[Node],
    parents: &mut [u8],
    outer: bool,
    p_diff: f64,
) -> Option<(Combine, Outer, i64)> {
    let v = |i: u8| nodes[i as usize].value;
    let (combine, base) = match parents.len() {
        0 => {
            let k = const_value(rng);
            return Some((Combine::Const(k), Outer::None, k as i64));
        }
        2 if rng.random_bool(p_diff) => {
            if v(parents[0]) < v(parents[1]) {
                parents.swap(0, 1);
            }
            (Combine::Diff, v(parents[0]) - v(parents[1]))
        }
        _ => {
            // Every partial sum of the left fold is at most the full sum.
            (Combine::Sum, parents.iter().map(|&p| v(p)).sum::<i64>())
        }
    };
    if base > MAX_VALUE {
        return None;
    }
    if !outer {
        return (base >= 1).then_some((combine, Outer::None, base));
    }
    let times = rng.random_bool(0.5);
    let k_times = rng.random_range(2..=4u8);
    let k_plus = rng.random_range(1..=4u8);
    let times_ok = base * k_times as i64 <= MAX_VALUE && base >= 1;
    let plus_ok = base + k_plus as i64 <= MAX_VALUE;
    match (times && times_ok, plus_ok) {
        (true, _) => Some((combine, Outer::Times(k_times), base * k_times as i64)),
        (false, true) => Some((combine, Outer::Plus(k_plus), base + k_plus as i64)),
        (false, false) if times_ok => Some((combine, Outer::Times(k_times), base * k_times as i64)),
        _ => None,
    }
}

/// x-coefficient of every needed node (and whether any partial result cancels x) when leaf
/// `h` is the unknown. `None` if some quantity that depends on x does not change with it.
pub(crate) fn x_coefficients(nodes: &[Node], h: usize) -> Option<[i64; MAX_NODES]> {
    let mut coef = [0i64; MAX_NODES];
    let mut dep = [false; MAX_NODES];
    coef[h] = 1;
    dep[h] = true;
    for (i, n) in nodes.iter().enumerate().skip(h + 1) {
        let ps = n.parents();
        if !ps.iter().any(|&p| dep[p as usize]) {
            continue;
        }
        dep[i] = true;
        // Check every partial result of the left fold, as the trace writes each of them.
        let mut acc = coef[ps[0] as usize];
        let mut acc_dep = dep[ps[0] as usize];
        for &p in &ps[1..] {
            acc = if n.combine == Combine::Diff {
                acc - coef[p as usize]
            } else {
                acc + coef[p as usize]
            };
            acc_dep |= dep[p as usize];
            if acc_dep && acc == 0 {
                return None;
            }
        }
        if let Outer::Times(k) = n.outer {
            acc *= k as i64;
        }
        coef[i] = acc;
    }
    Some(coef)
}

/// Pick the hidden leaf for reverse mode: a needed constant instance on which the final node
/// depends with a non-zero coefficient, so the stated final value determines it uniquely.
fn choose_hidden<R: Rng>(needed: &[Node], rng: &mut R) -> Option<usize> {
    let fin = needed.len() - 1;
    let mut cands = [0usize; MAX_NODES];
    let mut n = 0;
    for (i, node) in needed.iter().enumerate() {
        if matches!(node.combine, Combine::Const(_)) && !node.is_total() {
            if let Some(c) = x_coefficients(needed, i) {
                if c[fin] != 0 {
                    cands[n] = i;
                    n += 1;
                }
            }
        }
    }
    (n > 0).then(|| cands[rng.random_range(0..n)])
}
