//! The integration-test binary (one binary keeps link time down): composer properties and
//! well-posedness, golden formats, datasets end to end (token budgets included), and the CLI's
//! error handling.

mod audit;
mod cli;
mod composer;
#[cfg(feature = "cuda")]
mod cuda;
mod dataset;
mod engine;
mod family;
mod format_mutations;
mod formats;
#[cfg(feature = "train")]
mod fused;
mod fuzz;
mod golden;
mod layers;
mod regressions;
#[cfg(feature = "train")]
mod rl;
#[cfg(feature = "train")]
mod sft;
mod solver;
#[cfg(feature = "train")]
mod study;
mod tokenizer;
mod tokens;
#[cfg(feature = "train")]
mod train;
mod verifier;
