//! The run skeleton every training phase stands on: where it starts (fresh weights, a
//! checkpoint, or its own run folder's latest checkpoint), the run folder's checks, the
//! metrics log, the phase's compute, the checkpoint cadence, the one [`Observer`] and the one
//! backend dispatch ([`dispatch`]). Pre-/mid-training and SFT ([`super::trainer`]) and RL
//! ([`super::rl`]) are loops on it, so a mechanism added here serves both (two copies drift:
//! the bf16/f32 split between pre-training and RL came from exactly that).

use std::ops::Deref;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::checkpoint::{self, Loaded, PhaseRecord, OPTIMIZER_FILE};
use super::config::{CheckpointConfig, DeviceKind, Precision};
use super::device::{self, BackendChoice};
use super::error::{RunError, TrainError};
use super::metrics::{self, Chart, Metrics, MetricsLog};
use super::rl::RlMetrics;
use super::trainer::{SftMetrics, TrainBackend};
use crate::model::{ModelConfig, Weights};
use crate::tokenizer::Tokenizer;

/// How a phase starts.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// Fresh weights from the config's model and seed (pre-training).
    Fresh,
    /// Weights (and the compute record) of a checkpoint or Hugging Face folder.
    From(&'a Path),
    /// Continue this run from its latest checkpoint.
    Resume,
}

/// One line of the metrics log, as an [`Observer`] sees it.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum Row<'a> {
    /// A pre-/mid-training optimiser step.
    Step(&'a Metrics),
    /// An SFT optimiser step.
    Sft(&'a SftMetrics),
    /// A held-out evaluation (`eval_loss` set, `loss` absent).
    Eval(&'a Metrics),
    /// A GRPO step.
    Rl(&'a RlMetrics),
}

/// What a run reports as it goes (the CLI draws a progress bar; tests stay silent).
pub trait Observer {
    fn start(&mut self, _phase: &str, _start_step: u64, _total_steps: u64) {}
    fn row(&mut self, _row: Row<'_>) {}
    fn checkpoint(&mut self, _dir: &Path) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// What a finished phase reports: its last checkpoint, the compute of every phase behind it,
/// and the phase's own figures (`R`, reachable through `Deref`).
#[derive(Debug, Clone)]
pub struct Summary<R> {
    pub final_checkpoint: PathBuf,
    pub phases: Vec<PhaseRecord>,
    pub outcome: R,
}

impl<R> Deref for Summary<R> {
    type Target = R;
    fn deref(&self) -> &R {
        &self.outcome
    }
}

/// A training phase the skeleton runs on whichever backend its device and precision pick.
pub trait Phase {
    type Outcome;
    /// The config's `device` and `precision`.
    fn device(&self) -> (DeviceKind, Precision);
    fn run<B: TrainBackend>(
        &self,
        start: Start<'_>,
        device: &B::Device,
        obs: &mut dyn Observer,
    ) -> Result<Summary<Self::Outcome>, TrainError>;
}

/// The one backend dispatch: `phase` on the backend its device and precision resolve to.
pub fn dispatch<P: Phase>(
    phase: &P,
    start: Start<'_>,
    obs: &mut dyn Observer,
) -> Result<Summary<P::Outcome>, TrainError> {
    let (kind, precision) = phase.device();
    let choice = device::resolve(kind, precision)?;
    if kind == DeviceKind::Cuda {
        device::probe_cuda()?;
    }
    match choice {
        BackendChoice::CpuF32 => phase.run::<device::CpuBackend>(start, &device::cpu_device(), obs),
        #[cfg(feature = "cuda")]
        BackendChoice::CudaF32 => {
            let dev = burn::backend::cuda::CudaDevice::default();
            phase.run::<device::CudaF32Backend>(start, &dev, obs)
        }
        #[cfg(feature = "cuda")]
        BackendChoice::CudaBf16 => {
            let dev = burn::backend::cuda::CudaDevice::default();
            phase.run::<device::CudaBf16Backend>(start, &dev, obs)
        }
        #[cfg(not(feature = "cuda"))]
        BackendChoice::CudaF32 | BackendChoice::CudaBf16 => {
            Err(device::DeviceError::NotBuilt.into())
        }
    }
}

/// Where a phase begins, checked against its run folder `out`: a fresh start refuses a folder
/// that already holds checkpoints; a resume loads the latest of them.
pub enum Begin {
    Fresh,
    From(Loaded),
    Resume(Loaded),
}

pub fn begin(out: &Path, start: Start<'_>) -> Result<Begin, TrainError> {
    let existing = checkpoint::list(out)?;
    if !matches!(start, Start::Resume) && !existing.is_empty() {
        return Err(RunError::Occupied {
            out: out.to_path_buf(),
        }
        .into());
    }
    Ok(match start {
        Start::Fresh => Begin::Fresh,
        Start::From(dir) => Begin::From(checkpoint::load(dir)?),
        Start::Resume => {
            let (_, dir) = existing.last().ok_or_else(|| RunError::NoCheckpoint {
                dir: checkpoint::checkpoints_dir(out),
            })?;
            Begin::Resume(checkpoint::load(dir)?)
        }
    })
}

/// A resume needs the config the run was started with.
pub fn same_config<C: PartialEq>(saved: &C, given: &C, dir: &Path) -> Result<(), RunError> {
    if saved == given {
        Ok(())
    } else {
        Err(RunError::ConfigChanged {
            dir: dir.to_path_buf(),
        })
    }
}

/// What every checkpoint of a run carries beside its weights and state: the model's
/// dimensions, the tokenizer, and its padding and end-of-sequence ids.
pub struct Carried<'a> {
    pub model: &'a ModelConfig,
    pub tokenizer: &'a Tokenizer,
    pub pad: u32,
    pub eos: u32,
}

impl<'a> Carried<'a> {
    /// `[EOS]` is required (rollouts stop at it, sequences are packed with it); `[PAD]`
    /// defaults to it.
    pub fn new(model: &'a ModelConfig, tokenizer: &'a Tokenizer) -> Result<Self, RunError> {
        let eos = tokenizer
            .token_id("[EOS]")
            .ok_or(RunError::NoToken { token: "[EOS]" })?;
        let pad = tokenizer.token_id("[PAD]").unwrap_or(eos);
        Ok(Carried {
            model,
            tokenizer,
            pad,
            eos,
        })
    }
}

/// A phase under way in its run folder: the compute of the phases before it and of this one,
/// the metrics log, the checkpoint cadence and the observer.
pub struct Run<'a> {
    out: PathBuf,
    metrics_path: PathBuf,
    log: MetricsLog,
    obs: &'a mut dyn Observer,
    carried: Carried<'a>,
    cadence: CheckpointConfig,
    /// The phases before this one.
    earlier: Vec<PhaseRecord>,
    /// This phase so far.
    pub current: PhaseRecord,
    final_checkpoint: PathBuf,
}

impl<'a> Run<'a> {
    /// Creates the run folder and opens its metrics log: empty on a fresh start, cut back to
    /// `resumed_at` on a resume (the lines past the checkpoint are redone).
    pub fn open(
        out: &Path,
        earlier: Vec<PhaseRecord>,
        current: PhaseRecord,
        resumed_at: Option<u64>,
        cadence: &CheckpointConfig,
        carried: Carried<'a>,
        obs: &'a mut dyn Observer,
    ) -> Result<Run<'a>, TrainError> {
        std::fs::create_dir_all(out).map_err(TrainError::io(out))?;
        let metrics_path = out.join("metrics.jsonl");
        let log =
            MetricsLog::open(&metrics_path, resumed_at).map_err(TrainError::io(&metrics_path))?;
        Ok(Run {
            out: out.to_path_buf(),
            metrics_path,
            log,
            obs,
            carried,
            cadence: cadence.clone(),
            earlier,
            current,
            final_checkpoint: PathBuf::new(),
        })
    }

    /// Tells the observer the phase is under way at `step` of `total`.
    pub fn start(&mut self, step: u64, total: u64) {
        self.obs.start(&self.current.name, step, total);
    }

    /// Adds a step's tokens and FLOPs to this phase's record; `step` steps are now done.
    pub fn account(&mut self, step: u64, tokens: u64, flops: f64) {
        self.current.steps = step;
        self.current.tokens += tokens;
        self.current.flops += flops;
    }

    /// Tokens of every phase so far, this one included.
    pub fn cum_tokens(&self) -> u64 {
        self.earlier.iter().map(|p| p.tokens).sum::<u64>() + self.current.tokens
    }

    /// FLOPs of every phase so far, this one included.
    pub fn cum_flops(&self) -> f64 {
        self.earlier.iter().map(|p| p.flops).sum::<f64>() + self.current.flops
    }

    /// Appends `row` to the metrics log and shows it to the observer.
    pub fn log(&mut self, row: Row<'_>) -> Result<(), TrainError> {
        self.log
            .write(&row)
            .map_err(TrainError::io(&self.metrics_path))?;
        self.obs.row(row);
        Ok(())
    }

    /// Whether step `step` saves a checkpoint: every `checkpoint.every` steps, and the last.
    pub fn due(&self, step: u64, last: bool) -> bool {
        last || (self.cadence.every > 0 && step % self.cadence.every == 0)
    }

    /// Every phase's record, this one last (what a checkpoint's state holds).
    pub fn phases(&self) -> Vec<PhaseRecord> {
        let mut all = self.earlier.clone();
        all.push(self.current.clone());
        all
    }

    /// Writes the checkpoint of step `step` (weights, optimiser moments and `state` as
    /// `state.json`) and prunes the older ones down to `checkpoint.keep`.
    pub fn save(
        &mut self,
        step: u64,
        weights: &Weights,
        optimizer: &Weights,
        state: &impl Serialize,
    ) -> Result<(), TrainError> {
        self.save_with(step, weights, optimizer, &[], state)
    }

    /// [`Run::save`] with further safetensors files (`(file name, tensors)`) in the checkpoint,
    /// checksummed like the rest.
    pub fn save_with(
        &mut self,
        step: u64,
        weights: &Weights,
        optimizer: &Weights,
        extra: &[(&str, &Weights)],
        state: &impl Serialize,
    ) -> Result<(), TrainError> {
        let mut files = vec![(OPTIMIZER_FILE, optimizer)];
        files.extend_from_slice(extra);
        let json = serde_json::to_string_pretty(state).expect("state serialises");
        let c = &self.carried;
        let dir = checkpoint::save(
            &self.out,
            step,
            c.model,
            weights,
            &files,
            c.tokenizer.json(),
            (c.pad, c.eos),
            &json,
            self.cadence.keep.max(1),
        )?;
        self.obs.checkpoint(&dir);
        self.final_checkpoint = dir;
        Ok(())
    }

    /// Ends the phase: draws its curve (`chart`) as `svg` in the run folder and reports.
    pub fn finish<R>(
        self,
        svg: &str,
        chart: &Chart<'_>,
        outcome: R,
    ) -> Result<Summary<R>, TrainError> {
        let mut final_checkpoint = self.final_checkpoint;
        if final_checkpoint.as_os_str().is_empty() {
            // Resumed from the final checkpoint: nothing was left to do.
            if let Some((_, dir)) = checkpoint::list(&self.out)?.last() {
                final_checkpoint = dir.clone();
            }
        }
        metrics::plot(&self.metrics_path, &self.out.join(svg), chart)?;
        let mut phases = self.earlier;
        phases.push(self.current);
        Ok(Summary {
            final_checkpoint,
            phases,
            outcome,
        })
    }
}
