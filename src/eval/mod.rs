//! Evaluation. [`passk`] is the pure pass@k math (no model involved): the unbiased estimator
//! and its aggregation over problem groups. [`audit`] verifies sampled completions offline and
//! summarises them (pass@k, failure taxonomy, rewards).

pub mod audit;
pub mod passk;

pub use passk::{pass_at_k, pass_at_k_curve, By, Counts, GroupKey, PassAtK, PassRow};
