//! Sample problems as dependency DAGs with an exact operation count (SPEC §1).
//!
//! Pure and deterministic: a problem is a function of (template, op, mode, noise, seed). The data
//! types live in [`problem`], the constructive sampler in [`build`] (with its parts: `necessary`
//! grows the DAG the question needs, tuned per op by `growth`; `distractors` adds the rest;
//! `values` keeps every value in range; `hidden` picks reverse mode's unknown), the reference
//! family's per-op profile in [`profile`], the distractor axis in [`noise`], the canonical
//! identity in [`identity`] and seed derivation in [`seed`].

pub mod build;
mod distractors;
mod growth;
mod hidden;
pub mod identity;
mod necessary;
pub mod noise;
pub mod problem;
pub mod profile;
pub mod seed;
mod values;

pub use build::{compose, ComposeError, MAX_OP, MAX_VALUE};
pub use identity::{problem_id, ProblemId};
pub use noise::{max_distractors, Noise, NoiseError};
pub use problem::{Combine, Mode, Node, Outer, Problem, Quantity, FINAL_STATEMENT};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Compose the problem of the reference family for one derived seed (the RNG is ChaCha8, stable
/// across platforms).
pub fn compose_seeded(
    t: &crate::template::Template,
    op: u32,
    mode: Mode,
    seed: u64,
) -> Result<Problem, ComposeError> {
    compose_noisy(t, op, mode, Noise::Reference, seed)
}

/// [`compose_seeded`] with a chosen number of distractors.
pub fn compose_noisy(
    t: &crate::template::Template,
    op: u32,
    mode: Mode,
    noise: Noise,
    seed: u64,
) -> Result<Problem, ComposeError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    compose(t, op, mode, noise, &mut rng)
}
