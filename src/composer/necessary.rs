//! Growing the necessary DAG: the nodes the question depends on, built with an exact op count.
//!
//! The DAG is grown bottom-up in topological order, so acyclicity and values come for free:
//! every new node draws its parents from nodes that already exist and its value is fixed the
//! moment it is created (constants are chosen so every value stays in range). The op budget is
//! tracked exactly. `open` holds nodes that nothing consumes yet; they must all become
//! ancestors of the final node. With a total as the final node, instances at the final location
//! ("star" instances) are consumed by the total itself. Each step keeps the invariant "what is
//! left of the budget can still close every open node", and the build ends with a closing step
//! whose cost is exactly the budget left.

use rand::seq::SliceRandom;
use rand::{Rng, RngExt};

use super::build::MAX_VALUE;
use super::growth::growth;
use super::problem::{Combine, Node, Outer, Quantity, MAX_NODES};
use super::values::choose_values;
use crate::template::MAX_WIDTH;

/// Most parents of one instance sentence ("the sum of A, B, C, and D").
pub(super) const MAX_INSTANCE_PARENTS: usize = 4;
/// Chance that a two-parent instance is a difference rather than a sum.
const P_DIFF: f64 = 0.4;

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
pub(super) enum Goal {
    /// The final node is `total(loc)`; its parents are every instance at `loc`.
    Total { loc: u8 },
    /// The final node is a new instance at `loc` (a slot there is kept free for it).
    Instance { loc: u8 },
}

pub(super) struct Builder<'r, R> {
    pub rng: &'r mut R,
    pub op: u32,
    pub nl: usize,
    pub ni: usize,
    pub goal: Goal,
    pub nodes: Vec<Node>,
    /// Bit `loc * MAX_WIDTH + item` set when that instance exists.
    pub occupied: u32,
    /// Bit `loc` set once the location's total exists (no further instances may be added).
    pub closed: u8,
    /// Nodes nothing consumes yet (star instances excluded).
    pub open: u64,
    /// Instances at the goal's location (total goal only) and the sum of their values.
    pub star_count: u32,
    pub star_sum: i64,
    /// Bit `i` set when node `i` is a star instance.
    pub stars: u64,
    pub spent: u32,
    pub letters: usize,
    pub max_letters: usize,
}

/// Letters a node's gold-trace step takes: its own plus its intermediates (SPEC §3).
pub(super) fn letters_of(n_parents: usize, outer: Outer) -> usize {
    let inter = match outer {
        Outer::None => n_parents.saturating_sub(2),
        _ => n_parents.saturating_sub(1).max(1),
    };
    1 + inter
}

/// The set bits of `mask`, lowest first.
pub(super) fn bits(mask: u64) -> impl Iterator<Item = u8> {
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

impl<'r, R: Rng> Builder<'r, R> {
    /// An empty DAG in a world of `nl` locations × `ni` items, to be grown toward `goal`.
    pub fn new(
        rng: &'r mut R,
        op: u32,
        nl: usize,
        ni: usize,
        goal: Goal,
        max_letters: usize,
    ) -> Self {
        Builder {
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
        }
    }

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

    /// Grow the necessary DAG; `None` if this attempt is stuck (the caller starts again).
    pub(super) fn build_needed(&mut self) -> Option<()> {
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
