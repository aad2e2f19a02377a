//! Distractors: stated quantities the question does not need (SPEC §1).
//!
//! They fill free slots of the problem's location × item world after the necessary DAG is
//! built, and depend on other quantities as the reference's `drawUnnecessary` draws them, so a
//! model cannot tell needed from unneeded facts by their shape. A distractor never sits at a
//! location whose total is needed, because it would change that total.

use rand::{Rng, RngExt};

use super::necessary::{bits, Builder, Goal, MAX_INSTANCE_PARENTS};
use super::problem::{Combine, Node, Outer, Quantity, MAX_NODES};
use super::values::{choose_values, const_value};
use crate::template::MAX_WIDTH;

impl<R: Rng> Builder<'_, R> {
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
    pub(super) fn add_distractors(&mut self, want: usize, gl: usize, gi: usize) {
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
