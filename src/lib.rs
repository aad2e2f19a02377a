//! dagmath: compose arithmetic reasoning problems as dependency DAGs, verify reasoning traces
//! against them, and write reproducible datasets for the study of arXiv 2512.07783.
//!
//! Layers, drawn bottom-up (arrows point down only; `tests/it/layers.rs` fails on an import
//! that points up):
//!
//! ```text
//! cli (binary)  clap, indicatif, anyhow, stdout: parse flags, call the library, print
//! python        feature `python`: the PyO3 module (verify, rewards, pass@k, compose, generate)
//!   │
//! train         pre-/mid-training and GRPO                                  ┐
//! eval::run, eval::report, eval::plot   sampling a model, REPORT.md, plots  │ feature `train`
//! model         Qwen2 in burn, the fused CPU step, HF weights (no dataset)  │ (burn)
//! engine::model the burn decoder                                            ┘
//!   │
//! eval::audit, eval::study   verify predictions (streamed from files), bootstrap statistics
//! engine        batched sampling over any decoder (token ids only), stop rules
//!   │
//! dataset       arrow + parquet: every file format (shards, manifest, card, predictions,
//!   │           reference gold, verdicts, samples, selections), recipes, splits, generation
//!   │
//! composer graph render trace tokenizer eval::passk family   the data side: pure Rust, no
//!   │           arrow, parquet, burn or terminal; the verifier (trace) checks graphs, never
//!   │           rendered text
//! fs limits template (plot, with `train`: how every SVG is written)   the ground floor
//! ```
//!
//! The burn layers sit behind the cargo feature `train` (on by default), so
//! `cargo test --no-default-features` builds and tests the data side alone.

pub mod composer;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod family;
pub mod fs;
pub mod graph;
pub mod limits;
#[cfg(feature = "train")]
pub mod model;
#[cfg(feature = "train")]
pub mod plot;
#[cfg(feature = "python")]
mod python;
pub mod render;
pub mod template;
pub mod tokenizer;
pub mod trace;
#[cfg(feature = "train")]
pub mod train;
