//! The Qwen2-style decoder in burn (SPEC §6): dimensions and presets in [`config`], the modules
//! in [`qwen2`], the decoding cache in [`cache`], Hugging Face-layout weights and safetensors files in [`weights`], and the
//! Hugging Face folder format (`config.json`, `model.safetensors`, `tokenizer.json`) in [`hf`].

pub mod cache;
pub mod config;
pub mod fused;
pub mod hf;
pub mod qwen2;
pub mod weights;

pub use cache::KvCache;
pub use config::{ModelConfig, PRESETS};
pub use qwen2::{token_nll, Qwen2};
pub use weights::{HostTensor, Weights, WeightsError};
