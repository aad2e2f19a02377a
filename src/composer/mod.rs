//! Sample problems as dependency DAGs with an exact operation count (SPEC §1).
//!
//! Pure and deterministic: a problem is a function of (template, op, mode, seed). The data types
//! live in [`problem`], the constructive sampler in [`build`], the canonical identity in
//! [`identity`] and seed derivation in [`seed`].

pub mod build;
pub mod identity;
pub mod problem;
pub mod seed;

pub use build::{compose, ComposeError, MAX_OP, MAX_VALUE};
pub use identity::{problem_id, ProblemId};
pub use problem::{Combine, Mode, Node, Outer, Problem, Quantity, FINAL_STATEMENT};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Compose the problem for one derived seed (the RNG is ChaCha8, stable across platforms).
pub fn compose_seeded(
    t: &crate::template::Template,
    op: u32,
    mode: Mode,
    seed: u64,
) -> Result<Problem, ComposeError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    compose(t, op, mode, &mut rng)
}
