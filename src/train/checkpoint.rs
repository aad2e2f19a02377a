//! Checkpoints: a folder per save, `checkpoints/step-NNNNNNNN/`, that is at once a Hugging Face
//! Qwen2 folder (`config.json`, `model.safetensors`, `tokenizer.json`, ...) and a resumable
//! training state (`optimizer.safetensors` with the AdamW moments by parameter path, and
//! `state.json` with step, compute so far, the data cursor and the resolved config). Written
//! to a temporary folder and renamed, so a killed run never leaves a half checkpoint.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::data::Cursor;
use crate::dataset::shard::file_sha256;
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

impl PhaseRecord {
    /// A phase about to take its first step, from the checkpoint `from` (if any).
    pub fn new(name: &str, from: Option<&Path>) -> PhaseRecord {
        PhaseRecord {
            name: name.to_string(),
            steps: 0,
            tokens: 0,
            flops: 0.0,
            from: from.map(|d| d.display().to_string()),
        }
    }
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
    /// The checkpoint is missing, malformed, inconsistent or altered (the input's fault).
    #[error("{path}: {msg}")]
    Bad { path: String, msg: String },
    /// Reading or writing failed (the system's fault).
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Hf(#[from] hf::HfError),
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
}

fn io(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn bad(path: &Path, msg: impl Into<String>) -> CheckpointError {
    CheckpointError::Bad {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// The file of a checkpoint holding the AdamW moments.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Writes the checkpoint of step `step` under `out/checkpoints/`: the Hugging Face folder,
/// each of `files` as a safetensors file of that name (the optimiser moments, and an RL run's
/// synced reference), `state_json` as its `state.json` (each phase keeps its own state); then
/// prunes older step checkpoints down to `keep`.
#[allow(clippy::too_many_arguments)]
pub fn save(
    out: &Path,
    step: u64,
    model: &ModelConfig,
    weights: &Weights,
    files: &[(&str, &Weights)],
    tokenizer_json: &str,
    (pad_id, eos_id): (u32, u32),
    state_json: &str,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    let root = checkpoints_dir(out);
    let dir = root.join(format!("step-{step:08}"));
    let tmp = root.join(format!(".step-{step:08}.tmp"));
    std::fs::create_dir_all(&root).map_err(|e| io(&root, e))?;
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    hf::export(&tmp, model, weights, tokenizer_json, pad_id, eos_id)?;
    for (name, tensors) in files {
        save_safetensors(&tmp.join(name), tensors, None)?;
    }
    // state.json records the SHA-256 of every other file, checked on load.
    let mut state: serde_json::Value = serde_json::from_str(state_json)
        .map_err(|e| bad(&tmp, format!("state is not JSON: {e}")))?;
    let mut sums = serde_json::Map::new();
    for e in std::fs::read_dir(&tmp).map_err(|e| io(&tmp, e))? {
        let p = e.map_err(|e| io(&tmp, e))?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name.filter(|n| n != "state.json") {
            let (_, sha) =
                file_sha256(&p).map_err(|e| io(&p, std::io::Error::other(e.to_string())))?;
            sums.insert(name, sha.into());
        }
    }
    state[CHECKSUMS] = serde_json::Value::Object(sums);
    let text = serde_json::to_string_pretty(&state).expect("state serialises");
    crate::fs::write_atomic(&tmp.join("state.json"), format!("{text}\n").as_bytes())
        .map_err(|(p, e)| io(&p, e))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
    // Prune: keep the newest `keep` step checkpoints of this phase.
    let mut all = list(out)?;
    all.retain(|(s, _)| *s < step);
    let excess = (all.len() + 1).saturating_sub(keep);
    for (_, p) in all.into_iter().take(excess) {
        std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
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
    for e in std::fs::read_dir(&root).map_err(|e| io(&root, e))? {
        let e = e.map_err(|e| io(&root, e))?;
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

/// The key of `state.json` holding the SHA-256 of every other file of the checkpoint.
pub const CHECKSUMS: &str = "checksums";

/// Checks every file `state.json` records against its SHA-256. Checkpoints written before
/// checksums were recorded have none and load unchecked.
fn verify_checksums(dir: &Path, state: &serde_json::Value) -> Result<(), CheckpointError> {
    let Some(sums) = state.get(CHECKSUMS) else {
        return Ok(());
    };
    let state_path = dir.join("state.json");
    let sums = sums
        .as_object()
        .ok_or_else(|| bad(&state_path, format!("\"{CHECKSUMS}\" is not an object")))?;
    for (name, want) in sums {
        let path = dir.join(name);
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(bad(
                &state_path,
                format!("bad file name \"{name}\" in checksums"),
            ));
        }
        let (_, got) = file_sha256(&path).map_err(|e| bad(&path, e.to_string()))?;
        if Some(got.as_str()) != want.as_str() {
            return Err(bad(
                &path,
                format!(
                    "sha256 {got} does not match the {} recorded in state.json: the file was changed or corrupted after the checkpoint was written",
                    want.as_str().unwrap_or("(not a string)")
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a checkpoint folder (or any Hugging Face Qwen2 folder, which then has no state).
/// A checkpoint's files are checked against the checksums in its `state.json` first.
pub fn load(dir: &Path) -> Result<Loaded, CheckpointError> {
    if !dir.is_dir() {
        return Err(bad(dir, "no such checkpoint folder"));
    }
    let state_path = dir.join("state.json");
    let state_json = if state_path.exists() {
        let text =
            std::fs::read_to_string(&state_path).map_err(|e| bad(&state_path, e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(&state_path, format!("invalid JSON: {e}")))?;
        verify_checksums(dir, &v)?;
        Some(v)
    } else {
        None
    };
    let m = hf::import(dir)?;
    let (mut state, mut rl_state, mut phases) = (None, None, Vec::new());
    if let Some(mut v) = state_json {
        if let Some(o) = v.as_object_mut() {
            o.remove(CHECKSUMS);
        }
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
    let opt_path = dir.join(OPTIMIZER_FILE);
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
