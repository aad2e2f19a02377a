//! The training configs, every value with a documented default: pre- and mid-training's
//! ([`TrainConfig`], here: model, data, budget, optimiser, checkpointing, evaluation, device)
//! and RL's ([`rl::RlConfig`]), with the pieces they share (device, precision, checkpoint
//! cadence, the compute split). Their errors ([`ConfigError`]) are all the user's input.
//!
//! ```toml
//! seed = 0
//! device = "cpu"                 # cpu | cuda
//! out = "out/pretrain-tiny"      # run folder: checkpoints/, metrics.jsonl, curve.svg
//!
//! [model]
//! preset = "tiny"                # tiny | small | paper, or give every dimension
//! # tokenizer = "tokenizer.json" # default: the domain tokenizer of the built-in templates
//!
//! [data]
//! dir = "out/quickstart"
//! splits = ["train"]
//! eval_split = "test_id"
//! seq_len = 256
//! # [[data.mix]]                 # token shares per (context, op); default: the splits as written
//! # contexts = ["zoo"]
//! # ops = "2-10"
//! # share = 0.8
//!
//! [budget]
//! tokens = 1_000_000
//! batch_size = 8                 # sequences per micro-batch
//! grad_accum = 1                 # micro-batches per optimiser step
//!
//! [optim]                        # SPEC §6 defaults
//! lr = 2e-4
//! min_lr = 3e-5
//! warmup = 0.05
//!
//! [checkpoint]
//! every = 100                    # steps; 0: only at the end
//! keep = 2
//!
//! [eval]
//! every = 50
//! batches = 4
//!
//! # [sft]                        # `train sft` only ([`sft::SftConfig`])
//! # packing = "packed"           # packed | padded
//! ```

mod error;
pub mod rl;
pub mod sft;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use rl::{MaxNewTokens, PoolConfig, RlConfig, RlSettings, RolloutConfig};
pub use sft::{Packing, SftConfig};

use super::data::DataConfig;
use super::optim::OptimConfig;
use crate::model::{ModelConfig, PRESETS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub device: DeviceKind,
    /// `auto`: bf16 on CUDA, f32 on the CPU.
    #[serde(default)]
    pub precision: Precision,
    /// The run folder.
    pub out: PathBuf,
    /// Required for pre-training; mid-training and SFT take the model from its checkpoint.
    #[serde(default)]
    pub model: Option<ModelSpec>,
    pub data: DataConfig,
    pub budget: Budget,
    #[serde(default)]
    pub optim: OptimConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    /// One compute budget split between mid-training and RL (SPEC §6); when set, mid-training
    /// runs for β·total_flops instead of `budget.tokens`.
    #[serde(default)]
    pub compute: Option<ComputeSplit>,
    /// Supervised fine-tuning's settings, read by `train sft` only (absent: the defaults);
    /// not written when absent, so pre-/mid-training checkpoints are as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sft: Option<SftConfig>,
}

/// A compute budget split between mid-training (fraction β) and RL (1 − β): give the same
/// `[compute]` section to `train midtrain` and `train rl`, and each phase stops at its share.
/// β = 0 is full RL (no mid-training), β = 1 full mid-training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeSplit {
    /// FLOPs of mid-training and RL together.
    pub total_flops: f64,
    pub beta: f64,
}

impl ComputeSplit {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.total_flops > 0.0 && self.total_flops.is_finite()) {
            return Err(ConfigError::value(
                "compute.total_flops",
                self.total_flops,
                "must be a positive number",
            ));
        }
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(ConfigError::value(
                "compute.beta",
                self.beta,
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }

    pub fn midtrain_flops(&self) -> f64 {
        self.beta * self.total_flops
    }

    pub fn rl_flops(&self) -> f64 {
        (1.0 - self.beta) * self.total_flops
    }
}

/// Where a phase runs (`device = "cpu" | "cuda"`, or `--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Auto,
    F32,
    Bf16,
}

/// A preset, optionally with dimensions overridden, or all dimensions given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub preset: Option<String>,
    /// A `tokenizer.json`; default: the domain tokenizer of the built-in templates.
    pub tokenizer: Option<PathBuf>,
    /// Templates folder for the domain tokenizer (default: the built-in templates).
    pub templates: Option<PathBuf>,
    pub hidden_size: Option<usize>,
    pub num_hidden_layers: Option<usize>,
    pub num_attention_heads: Option<usize>,
    pub num_key_value_heads: Option<usize>,
    pub intermediate_size: Option<usize>,
    pub max_position_embeddings: Option<usize>,
    pub rope_theta: Option<f64>,
    pub rms_norm_eps: Option<f64>,
}

impl ModelSpec {
    /// Resolves the dimensions for a vocabulary of `vocab_size` tokens.
    pub fn resolve(&self, vocab_size: usize) -> Result<ModelConfig, ConfigError> {
        let mut c = match &self.preset {
            Some(p) => ModelConfig::preset(p, vocab_size).ok_or_else(|| ConfigError::Preset {
                preset: p.clone(),
                known: PRESETS.join(", "),
            })?,
            None => {
                let need =
                    |v: Option<usize>, key: &'static str| v.ok_or(ConfigError::Dimension { key });
                ModelConfig {
                    vocab_size,
                    hidden_size: need(self.hidden_size, "hidden_size")?,
                    num_hidden_layers: need(self.num_hidden_layers, "num_hidden_layers")?,
                    num_attention_heads: need(self.num_attention_heads, "num_attention_heads")?,
                    num_key_value_heads: need(self.num_key_value_heads, "num_key_value_heads")?,
                    intermediate_size: need(self.intermediate_size, "intermediate_size")?,
                    ..ModelConfig::preset("tiny", vocab_size).expect("tiny is a preset")
                }
            }
        };
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        over!(
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            intermediate_size,
            max_position_embeddings,
            rope_theta,
            rms_norm_eps
        );
        c.validate()?;
        c.check_fits(crate::model::config::BYTES_PER_PARAM_TRAIN)?;
        Ok(c)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Training tokens of this phase (input positions; steps = ceil(tokens / tokens per step)).
    pub tokens: u64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_accum")]
    pub grad_accum: usize,
}

fn default_batch() -> usize {
    8
}
fn default_accum() -> usize {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Save every this many steps (0: only at the end).
    pub every: u64,
    /// Step checkpoints kept (the final one is always kept).
    pub keep: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig { every: 0, keep: 2 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Held-out loss every this many steps (0: only at the end).
    pub every: u64,
    /// Batches of held-out sequences evaluated.
    pub batches: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 0,
            batches: 4,
        }
    }
}

impl TrainConfig {
    /// Reads and validates a config file; errors name the file and the bad value.
    pub fn from_file(path: &Path) -> Result<TrainConfig, ConfigError> {
        let text = read(path)?;
        // Relative paths are relative to the working directory, as on the command line.
        let cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| ConfigError::from(e).in_file(path))?;
        cfg.validate().map_err(|e| e.in_file(path))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("budget.tokens", self.budget.tokens == 0),
            ("budget.batch_size", self.budget.batch_size == 0),
            ("budget.grad_accum", self.budget.grad_accum == 0),
        ];
        if let Some(&(key, _)) = positive.iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::Missing {
                key,
                rule: "must be positive",
            });
        }
        check_out(&self.out)?;
        if self
            .budget
            .batch_size
            .checked_mul(self.budget.grad_accum)
            .and_then(|x| x.checked_mul(self.data.seq_len))
            .and_then(|x| u64::try_from(x).ok())
            .is_none()
        {
            return Err(ConfigError::Overflow {
                what: format!(
                    "budget.batch_size = {} × budget.grad_accum = {} × data.seq_len = {}",
                    self.budget.batch_size, self.budget.grad_accum, self.data.seq_len
                ),
            });
        }
        if self.data.seq_len < 2 {
            return Err(ConfigError::value(
                "data.seq_len",
                self.data.seq_len,
                "must be at least 2",
            ));
        }
        if self.data.splits.is_empty() {
            return Err(ConfigError::Missing {
                key: "data.splits",
                rule: "name at least one split",
            });
        }
        if self.eval.batches == 0 {
            return Err(ConfigError::Missing {
                key: "eval.batches",
                rule: "must be positive",
            });
        }
        if self.checkpoint.keep == 0 {
            return Err(ConfigError::Missing {
                key: "checkpoint.keep",
                rule: "must be at least 1",
            });
        }
        if let Some(c) = &self.compute {
            c.validate()?;
        }
        self.optim.validate()
    }

    /// Checks that training `model` with this config fits in memory, before anything is
    /// allocated or written: the model with its gradients and optimiser state, one
    /// micro-batch's activations (a lower bound: the logits and one hidden state per layer),
    /// the held-out set and the shuffle block. Errors name the key.
    pub fn check_memory(&self, model: &ModelConfig) -> Result<(), ConfigError> {
        let check_fits =
            |what: &str, bytes| crate::limits::check_fits(what, bytes).map_err(ConfigError::Memory);
        model.check_fits(crate::model::config::BYTES_PER_PARAM_TRAIN)?;
        let w = |x: usize| x as u128;
        let seq = w(self.data.seq_len);
        let per_token = w(model.num_hidden_layers)
            .checked_mul(w(model.hidden_size))
            .and_then(|x| x.checked_add(w(model.vocab_size)))
            .and_then(|x| x.checked_mul(4));
        check_fits(
            &format!(
                "budget.batch_size = {} (sequences of {} tokens)",
                self.budget.batch_size, self.data.seq_len
            ),
            per_token.and_then(|t| t.checked_mul(seq)?.checked_mul(w(self.budget.batch_size))),
        )?;
        check_fits(
            &format!(
                "eval.batches = {} × budget.batch_size = {}",
                self.eval.batches, self.budget.batch_size
            ),
            w(self.eval.batches)
                .checked_mul(w(self.budget.batch_size))
                .and_then(|x| x.checked_mul(seq + 1)?.checked_mul(4)),
        )?;
        check_fits(
            &format!(
                "data.shuffle_block = {} (sequences of {} tokens)",
                self.data.shuffle_block, self.data.seq_len
            ),
            w(self.data.shuffle_block)
                .checked_mul(seq + 1)
                .and_then(|x| x.checked_mul(4)),
        )
    }

    /// Input tokens per optimiser step.
    pub fn tokens_per_step(&self) -> u64 {
        (self.budget.batch_size * self.budget.grad_accum * self.data.seq_len) as u64
    }

    /// Optimiser steps of this phase.
    pub fn total_steps(&self) -> u64 {
        self.budget.tokens.div_ceil(self.tokens_per_step())
    }
}

/// A config file's text.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The run folder `out`: given, and a folder if it exists (every phase writes one).
fn check_out(out: &Path) -> Result<(), ConfigError> {
    if out.as_os_str().is_empty() {
        return Err(ConfigError::value(
            "out",
            "\"\"",
            "give the run folder (checkpoints and metrics go there)",
        ));
    }
    if out.exists() && !out.is_dir() {
        return Err(ConfigError::value(
            "out",
            format!("{out:?}"),
            "is a file, not a folder",
        ));
    }
    Ok(())
}
