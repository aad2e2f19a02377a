//! dagmath: compose arithmetic reasoning problems as dependency DAGs, verify reasoning traces
//! against them, and write reproducible datasets for the study of arXiv 2512.07783.
//!
//! Layers (arrows point down only):
//! - [`template`], [`composer`], [`render`]: the data side, pure Rust, no I/O formats;
//! - [`dataset`]: recipes, splits, Arrow schema and crash-safe Parquet shards;
//! - `model` and `train` (cargo feature `train`, on by default): the Qwen2-style decoder in burn,
//!   Hugging Face import/export, and the pre-/mid-training loop;
//! - `cli` (in the binary): argument parsing, progress bars, printing.

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
