//! dagmath: compose arithmetic reasoning problems as dependency DAGs, verify reasoning traces
//! against them, and write reproducible datasets for the study of arXiv 2512.07783.
//!
//! Layers (arrows point down only; `tests/it/layers.rs` fails on an import that points up):
//! - ground floor: [`fs`] (atomic writes), [`limits`], [`template`];
//! - data side, pure Rust with no arrow, parquet, burn or CLI: [`composer`] (DAGs from a
//!   seed), [`graph`], [`render`] (problem text and gold trace), [`trace`] (parse and verify a
//!   completion against the gold graph, never the rendered text; rewards), [`tokenizer`],
//!   [`eval::passk`] (pass@k math), [`family`] (the problem family's statistics);
//! - [`dataset`] adds arrow/parquet: recipes, splits, schema, crash-safe shards, predictions
//!   and reference-format gold; [`eval::audit`] verifies predictions and writes verdicts;
//! - `model`, [`engine`]'s burn decoder, `train` and `eval`'s model runs (cargo feature
//!   `train`, on by default) add burn: the Qwen2-style decoder, Hugging Face import/export,
//!   batched sampling, pre-/mid-training and GRPO. `model` does not use [`dataset`];
//! - `cli` (in the binary) is the only place for clap, indicatif and stdout.

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
pub mod render;
pub mod template;
pub mod tokenizer;
pub mod trace;
#[cfg(feature = "train")]
pub mod train;
