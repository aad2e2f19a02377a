//! Checkpoints: a folder per save, `checkpoints/step-NNNNNNNN/`, that is at once a Hugging Face
//! Qwen2 folder (`config.json`, `model.safetensors`, `tokenizer.json`, ...) and a resumable
//! training state (`optimizer.safetensors` with the AdamW moments by parameter path, and
//! `state.json` with step, compute so far, the data cursor and the resolved config). Written
//! to a temporary folder and renamed, so a killed run never leaves a half checkpoint.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::data::Cursor;
use crate::model::hf;
use crate::model::weights::{load_safetensors, save_safetensors};
use crate::model::{ModelConfig, Weights};

/// Compute spent by one training phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// `pretrain`, `midtrain`, `rl`.
    pub name: String,
    pub steps: u64,
    pub tokens: u64,
    pub flops: f64,
    /// The checkpoint the phase started from.
    pub from: Option<String>,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub dagmath_version: String,
    /// Steps done in the current phase.
    pub step: u64,
    pub total_steps: u64,
    /// Every phase so far, the current one last (its figures up to `step`).
    pub phases: Vec<PhaseRecord>,
    pub cursor: Cursor,
    pub config: TrainConfig,
    pub model: ModelConfig,
    pub last_loss: f64,
}

impl TrainState {
    /// Tokens of every phase together.
    pub fn cumulative_tokens(&self) -> u64 {
        self.phases.iter().map(|p| p.tokens).sum()
    }
    pub fn cumulative_flops(&self) -> f64 {
        self.phases.iter().map(|p| p.flops).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {msg}")]
    Bad { path: String, msg: String },
    #[error(transparent)]
    Hf(#[from] hf::HfError),
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
}

fn bad(path: &Path, msg: impl Into<String>) -> CheckpointError {
    CheckpointError::Bad {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Writes a checkpoint for `state.step` under `out/checkpoints/` and prunes older step
/// checkpoints down to `keep`.
#[allow(clippy::too_many_arguments)]
pub fn save(
    out: &Path,
    weights: &Weights,
    optimizer: &Weights,
    tokenizer_json: &str,
    pad_id: u32,
    eos_id: u32,
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    save_with_state(
        out,
        state.step,
        &state.model,
        weights,
        optimizer,
        tokenizer_json,
        (pad_id, eos_id),
        &json,
        keep,
    )
}

/// [`save`] with any `state.json` text (the RL loop keeps its own state).
#[allow(clippy::too_many_arguments)]
pub fn save_with_state(
    out: &Path,
    step: u64,
    model: &ModelConfig,
    weights: &Weights,
    optimizer: &Weights,
    tokenizer_json: &str,
    (pad_id, eos_id): (u32, u32),
    state_json: &str,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    let root = checkpoints_dir(out);
    let dir = root.join(format!("step-{step:08}"));
    let tmp = root.join(format!(".step-{step:08}.tmp"));
    std::fs::create_dir_all(&root).map_err(|e| bad(&root, e.to_string()))?;
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| bad(&tmp, e.to_string()))?;
    }
    hf::export(&tmp, model, weights, tokenizer_json, pad_id, eos_id)?;
    save_safetensors(&tmp.join("optimizer.safetensors"), optimizer, None)?;
    std::fs::write(tmp.join("state.json"), format!("{state_json}\n"))
        .map_err(|e| bad(&tmp, e.to_string()))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| bad(&dir, e.to_string()))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| bad(&dir, e.to_string()))?;
    // Prune: keep the newest `keep` step checkpoints of this phase.
    let mut all = list(out)?;
    all.retain(|(s, _)| *s < step);
    let excess = (all.len() + 1).saturating_sub(keep);
    for (_, p) in all.into_iter().take(excess) {
        std::fs::remove_dir_all(&p).map_err(|e| bad(&p, e.to_string()))?;
    }
    Ok(dir)
}

/// `(step, path)` of the complete checkpoints of a run, oldest first.
pub fn list(out: &Path) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
    let root = checkpoints_dir(out);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut v = Vec::new();
    for e in std::fs::read_dir(&root).map_err(|e| bad(&root, e.to_string()))? {
        let e = e.map_err(|e| bad(&root, e.to_string()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("step-") {
            if let Ok(step) = n.parse::<u64>() {
                if e.path().join("state.json").exists() {
                    v.push((step, e.path()));
                }
            }
        }
    }
    v.sort();
    Ok(v)
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct Loaded {
    pub dir: PathBuf,
    pub model: ModelConfig,
    pub weights: Weights,
    pub tokenizer: PathBuf,
    /// Present for pre-/mid-training checkpoints; absent for RL checkpoints and plain Hugging
    /// Face folders.
    pub state: Option<TrainState>,
    /// An RL checkpoint's `state.json` (it has an `rl` key).
    pub rl_state: Option<serde_json::Value>,
    /// Compute of every phase behind these weights (empty for a plain Hugging Face folder).
    pub phases: Vec<PhaseRecord>,
    pub optimizer: Option<Weights>,
}

/// Reads a checkpoint folder (or any Hugging Face Qwen2 folder, which then has no state).
pub fn load(dir: &Path) -> Result<Loaded, CheckpointError> {
    if !dir.is_dir() {
        return Err(bad(dir, "no such checkpoint folder"));
    }
    let m = hf::import(dir)?;
    let state_path = dir.join("state.json");
    let (mut state, mut rl_state, mut phases) = (None, None, Vec::new());
    if state_path.exists() {
        let text =
            std::fs::read_to_string(&state_path).map_err(|e| bad(&state_path, e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(&state_path, format!("invalid JSON: {e}")))?;
        if v.get("rl").is_some() {
            phases = serde_json::from_value(v["phases"].clone())
                .map_err(|e| bad(&state_path, format!("invalid phases: {e}")))?;
            rl_state = Some(v);
        } else {
            let s: TrainState = serde_json::from_value(v)
                .map_err(|e| bad(&state_path, format!("invalid state: {e}")))?;
            phases = s.phases.clone();
            state = Some(s);
        }
    }
    let opt_path = dir.join("optimizer.safetensors");
    let optimizer = if opt_path.exists() {
        Some(load_safetensors(&opt_path)?)
    } else {
        None
    };
    Ok(Loaded {
        dir: dir.to_path_buf(),
        model: m.config,
        weights: m.weights,
        tokenizer: m.tokenizer,
        state,
        rl_state,
        phases,
        optimizer,
    })
}
