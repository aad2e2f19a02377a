//! Datasets: recipes and splits, the Arrow schema, crash-safe Parquet shards, the generation
//! pipeline, the manifest and the dataset card.

pub mod bloom;
pub mod card;
pub mod generate;
pub mod jsonl;
pub mod manifest;
pub mod predictions;
pub mod reader;
pub mod recipe;
pub mod reference;
pub mod schema;
pub mod shard;
pub mod split;
pub mod subset;

pub use generate::{generate, GenerateError, GenerateOptions, Observer, Quiet};
pub use manifest::Manifest;
pub use recipe::{Recipe, RecipeError};
