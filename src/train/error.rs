//! The training side's errors, one enum per layer (delta-rs's shape): [`RunError`] for where a
//! run starts and whether its folder, checkpoint and config agree, wrapped with the config's,
//! the data's, the device's, the checkpoint's and the system's own into [`TrainError`]. The CLI
//! turns them into exit codes by one rule: the user's input (a config value, a flag, a file or
//! folder the user named) exits 2, the system (I/O, a tokenizer that fails mid-run, a plot,
//! divergence) exits 1.

use std::path::PathBuf;

use super::checkpoint::CheckpointError;
use super::config::ConfigError;
use super::data::DataError;
use super::device::DeviceError;
use super::metrics::CurveError;
use super::optim::MissingMoment;
use super::rl::PoolError;
use crate::model::WeightsError;
use crate::template::TemplateError;
use crate::tokenizer::TokenizerError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// `model.templates`, the folder the domain tokenizer is built from.
    #[error(transparent)]
    Templates(#[from] TemplateError),
    /// Loading the run's tokenizer (the user's file), or decoding a rollout with it.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Plot(#[from] CurveError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "training diverged: loss is {loss} at step {step} (lr {lr}); the last checkpoint is intact"
    )]
    Diverged { step: u64, loss: f64, lr: f64 },
}

impl TrainError {
    /// An I/O failure on `path`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
        move |source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why a run cannot start or continue: its folder, its starting checkpoint, and its config
/// disagree. Always the user's input.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "{}: already holds checkpoints: continue it with --resume, or start over with --force",
        out.display()
    )]
    Occupied { out: PathBuf },
    #[error("--resume: no checkpoint under {}", dir.display())]
    NoCheckpoint { dir: PathBuf },
    #[error("{}: no state.json", dir.display())]
    NoState { dir: PathBuf },
    #[error("{}: not an RL checkpoint", dir.display())]
    NotRl { dir: PathBuf },
    #[error("{}/state.json: {source}", dir.display())]
    BadState {
        dir: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "--resume: the config differs from the one in {}/state.json; resume with the same config or start a new run folder",
        dir.display()
    )]
    ConfigChanged { dir: PathBuf },
    #[error("--resume: {} holds a {found} run, not {phase}", out.display())]
    WrongPhase {
        out: PathBuf,
        found: String,
        phase: String,
    },
    #[error(
        "--resume: state.json says step {step} (its phase record says {recorded}), but this run has {total} steps; the checkpoint's state is inconsistent"
    )]
    StepMismatch {
        step: u64,
        recorded: u64,
        total: u64,
    },
    #[error("--resume: {} has no optimizer.safetensors", dir.display())]
    NoOptimizer { dir: PathBuf },
    #[error("{}: {source}", dir.display())]
    Optimizer { dir: PathBuf, source: MissingMoment },
    #[error(
        "--resume: {}: the synced KL reference cannot be read: {source}",
        dir.display()
    )]
    Reference {
        dir: PathBuf,
        source: crate::model::WeightsError,
    },
    #[error("{phase} starts from a checkpoint: give --from CKPT (or --resume)")]
    NoFrom { phase: String },
    #[error("model: mid-training and SFT take the model from --from; remove the [model] section")]
    ModelWithFrom,
    #[error("model: a [model] section is required for pre-training")]
    NoModel,
    #[error("the tokenizer has no {token} token")]
    NoToken { token: &'static str },
    #[error(
        "the model's vocab_size {model} differs from the tokenizer's {tokenizer} tokens (a padded vocabulary is not supported)"
    )]
    Vocab { model: usize, tokenizer: usize },
    #[error("data.seq_len = {seq_len} exceeds the model's max_position_embeddings {max}")]
    SeqLen { seq_len: usize, max: usize },
    #[error("data.eval_split \"{split}\" holds fewer tokens than one sequence of {tokens}")]
    EvalSplit { split: String, tokens: usize },
    #[error(
        "compute: β·total_flops = {flops:.3e} FLOPs is less than one mid-training step ({per_step:.3e}); with β = 0 skip mid-training and run `train rl` alone"
    )]
    ComputeShare { flops: f64, per_step: f64 },
}
