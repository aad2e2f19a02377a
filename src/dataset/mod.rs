//! Datasets and every file format dagmath reads or writes: recipes and splits, the Arrow
//! schema, crash-safe Parquet shards and their reader, the generation pipeline, the manifest
//! and the dataset card, and the tables beside them (predictions, reference-format gold,
//! evaluation samples, selections), each with its `schema()`, builder and reader.

/// The finished arrays of typed column builders, in schema order: `finish_columns![b.id,
/// b.split]` is `vec![Arc::new(b.id.finish()) as ArrayRef, Arc::new(b.split.finish()) as …]`.
macro_rules! finish_columns {
    ($($builder:expr),* $(,)?) => {
        vec![$(std::sync::Arc::new($builder.finish()) as arrow::array::ArrayRef),*]
    };
}

pub mod bloom;
pub mod card;
pub mod generate;
pub mod gold_graph;
pub mod jsonl;
pub mod manifest;
pub mod predictions;
pub mod reader;
pub mod recipe;
pub mod reference;
pub mod samples;
pub mod schema;
pub mod selection;
pub mod shard;
pub mod split;
pub mod subset;
pub mod verdicts;

pub use generate::{generate, GenerateError, GenerateOptions, Observer, Quiet};
pub use manifest::Manifest;
pub use recipe::{Recipe, RecipeError};
