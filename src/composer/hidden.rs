//! Reverse mode's hidden leaf: which stated constant becomes the unknown x.
//!
//! The final node's value is stated instead, so the hidden constant must be recoverable from it:
//! the final node must depend on it with a non-zero coefficient, and no partial result the
//! trace writes on the way may have its x-terms cancel (a quantity computed from x that does not
//! change with x).

use rand::{Rng, RngExt};

use super::problem::{Combine, Node, Outer, MAX_NODES};

/// x-coefficient of every needed node (and whether any partial result cancels x) when leaf
/// `h` is the unknown. `None` if some quantity that depends on x does not change with it.
pub(super) fn x_coefficients(nodes: &[Node], h: usize) -> Option<[i64; MAX_NODES]> {
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
pub(super) fn choose_hidden<R: Rng>(needed: &[Node], rng: &mut R) -> Option<usize> {
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
