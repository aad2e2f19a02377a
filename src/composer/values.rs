//! Values in range: the constants of a new instance, chosen so its value and every
//! intermediate the trace writes lie in 0..=MAX_VALUE (SPEC §1).
//!
//! The composer never rejects a finished problem for an out-of-range value; it picks the
//! combination and constants at the moment a node is created, so every attempt that completes
//! is valid by construction.

use rand::{Rng, RngExt};

use super::build::MAX_VALUE;
use super::problem::{Combine, Node, Outer};

/// A stated constant as the reference draws it: 1–4 or 2–4, each with probability 1/2.
pub(super) fn const_value<R: Rng>(rng: &mut R) -> u8 {
    if rng.random_bool(0.5) {
        rng.random_range(1..=4u8)
    } else {
        rng.random_range(2..=4u8)
    }
}

/// Choose the combination and constants of an instance over `parents` so its value lies in
/// 1..=MAX_VALUE and every intermediate in 0..=MAX_VALUE. A difference is ordered larger
/// first. Returns `None` when no choice fits.
pub(super) fn choose_values<R: Rng>(
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
