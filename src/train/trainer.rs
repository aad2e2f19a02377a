//! Pre-training, mid-training and supervised fine-tuning: one visible loop on the run skeleton
//! ([`super::run`]), in nanochat's order: evaluate the held-out loss and save when due → batch
//! → forward and backward (the fused host step on the CPU, burn autodiff elsewhere) → clip →
//! AdamW step → log. SFT (phase `sft`) is the same loop on rows with a loss mask (the prompt
//! masked out, [`super::batch`]), packed or padded as its `[sft]` section says.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use serde::Serialize;

use super::batch::{weighted_eval_loss, weighted_loss_and_grads, Batch};
use super::checkpoint::{PhaseRecord, TrainState};
use super::config::{ConfigError, DeviceKind, Packing, Precision, TrainConfig};
use super::data::{Packer, Sequence};
use super::error::{RunError, TrainError};
use super::metrics::{Chart, Metrics};
use super::optim::{clip_factor, AdamW};
use super::run::{self, Begin, Carried, Observer, Phase, Row, Run, Start, Summary};
use crate::model::{weights, ModelConfig, Qwen2, Weights};
use crate::tokenizer::Tokenizer;

/// What a pre-/mid-training run did, beside [`Summary`]'s checkpoint and compute.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Training loss of each step this process ran (step, loss).
    pub losses: Vec<(u64, f64)>,
    pub eval_loss: Option<f64>,
    pub tokens_per_s: f64,
}

pub type TrainSummary = Summary<TrainOutcome>;

/// A pre-training, mid-training or SFT phase (`name`: `pretrain`, `midtrain` or `sft`) of
/// `config`, for [`run::dispatch`].
pub struct LmPhase<'a> {
    pub config: &'a TrainConfig,
    pub name: &'a str,
}

impl Phase for LmPhase<'_> {
    type Outcome = TrainOutcome;
    fn device(&self) -> (DeviceKind, Precision) {
        (self.config.device, self.config.precision)
    }
    fn run<B: TrainBackend>(
        &self,
        start: Start<'_>,
        device: &B::Device,
        obs: &mut dyn Observer,
    ) -> Result<TrainSummary, TrainError> {
        train::<B>(self.config, self.name, start, device, obs)
    }
}

/// The weights, tokenizer and compute record a phase starts from, and on a resume the
/// state and optimiser moments it continues with.
struct Origin {
    model: ModelConfig,
    weights: Weights,
    tokenizer: Tokenizer,
    phases: Vec<PhaseRecord>,
    resumed: Option<(TrainState, Option<Weights>, std::path::PathBuf)>,
}

fn origin(cfg: &TrainConfig, phase: &str, begin: Begin) -> Result<Origin, TrainError> {
    Ok(match begin {
        Begin::Resume(l) => {
            let state = l
                .state
                .clone()
                .ok_or_else(|| RunError::NoState { dir: l.dir.clone() })?;
            run::same_config(&state.config, cfg, &l.dir)?;
            let last = state.phases.last().map(|p| p.name.as_str());
            if last != Some(phase) {
                return Err(RunError::WrongPhase {
                    out: cfg.out.clone(),
                    found: last.unwrap_or("unknown").to_string(),
                    phase: phase.to_string(),
                }
                .into());
            }
            Origin {
                tokenizer: Tokenizer::from_file(&l.tokenizer)?,
                model: l.model,
                weights: l.weights,
                phases: state.phases.clone(),
                resumed: Some((state, l.optimizer, l.dir)),
            }
        }
        Begin::From(l) => Origin {
            tokenizer: Tokenizer::from_file(&l.tokenizer)?,
            model: l.model,
            weights: l.weights,
            phases: l.phases,
            resumed: None,
        },
        Begin::Fresh => {
            let spec = cfg.model.clone().ok_or(RunError::NoModel)?;
            let tokenizer = match &spec.tokenizer {
                Some(p) => Tokenizer::from_file(p)?,
                None => {
                    let set = match &spec.templates {
                        Some(dir) => crate::template::TemplateSet::with_dir(dir)?,
                        None => crate::template::TemplateSet::builtin(),
                    };
                    Tokenizer::domain(&set)
                }
            };
            let model = spec.resolve(tokenizer.vocab_size())?;
            Origin {
                weights: weights::init(&model, cfg.seed),
                model,
                tokenizer,
                phases: Vec::new(),
                resumed: None,
            }
        }
    })
}

/// An SFT step's metrics line: the step's, plus the completion tokens trained on and the
/// documents skipped so far for not fitting a padded row.
#[derive(Debug, Clone, Serialize)]
pub struct SftMetrics {
    #[serde(flatten)]
    pub step: Metrics,
    /// Targets of this step that counted in the loss (completion tokens and `[EOS]`).
    pub trained_tokens: u64,
    /// Documents longer than `seq_len + 1` tokens skipped so far (`packing = "padded"`).
    pub skipped_docs: u64,
}

/// How phase `phase` cuts its rows: SFT's packing, or `None` (every token counts). Only
/// `train sft` reads an `[sft]` section.
fn sft_packing(cfg: &TrainConfig, phase: &str) -> Result<Option<Packing>, ConfigError> {
    match (phase, &cfg.sft) {
        ("sft", s) => Ok(Some(s.unwrap_or_default().packing)),
        (_, None) => Ok(None),
        (_, Some(s)) => Err(ConfigError::value(
            "sft.packing",
            format!("\"{}\"", s.packing.name()),
            "the [sft] section is read by `train sft` only; remove it from this config",
        )),
    }
}

/// Runs one training phase (`pretrain`, `midtrain` or `sft`) on backend `B`.
pub fn train<B: TrainBackend>(
    cfg: &TrainConfig,
    phase: &str,
    start: Start<'_>,
    device: &B::Device,
    obs: &mut dyn Observer,
) -> Result<TrainSummary, TrainError> {
    let sft = sft_packing(cfg, phase)?;
    if matches!(start, Start::From(_))
        && cfg.model.as_ref().is_some_and(|m| *m != Default::default())
    {
        return Err(RunError::ModelWithFrom.into());
    }
    let Origin {
        model: model_cfg,
        weights: init_weights,
        tokenizer,
        phases: mut earlier,
        resumed,
    } = origin(cfg, phase, run::begin(&cfg.out, start)?)?;
    check_model(cfg, &model_cfg, &tokenizer)?;
    let carried = Carried::new(&model_cfg, &tokenizer)?;
    let pad = carried.pad;

    let mut data = Packer::open(
        &cfg.data,
        &cfg.data.splits,
        tokenizer.clone(),
        cfg.seed,
        false,
        sft,
    )?;
    let eval_set = held_out(cfg, &tokenizer, sft)?;
    let mut model: Qwen2<B> = weights::to_model(&model_cfg, &init_weights, device)?;
    drop(init_weights);
    let mut optim = AdamW::<B>::new(cfg.optim.clone());
    let total = total_steps(cfg, phase, &model_cfg)?;
    let mut step = 0;
    let from = match start {
        Start::From(dir) => Some(dir),
        _ => None,
    };
    let mut current = PhaseRecord::new(phase, from);
    if let Some((state, opt, dir)) = &resumed {
        let recorded = earlier.last().map_or(0, |p| p.steps);
        if state.step > total || state.step != recorded {
            return Err(RunError::StepMismatch {
                step: state.step,
                recorded,
                total,
            }
            .into());
        }
        data.restore(&state.cursor)?;
        let opt = opt
            .as_ref()
            .ok_or_else(|| RunError::NoOptimizer { dir: dir.clone() })?;
        optim
            .load_state_dict(&model, opt, state.step, device)
            .map_err(|source| RunError::Optimizer {
                dir: dir.clone(),
                source,
            })?;
        step = state.step;
        current = earlier.pop().expect("a resumed run has its phase");
    }
    let resumed_at = resumed.as_ref().map(|_| step);
    let mut run = Run::open(
        &cfg.out,
        earlier,
        current,
        resumed_at,
        &cfg.checkpoint,
        carried,
        obs,
    )?;

    let (bs, seq) = (cfg.budget.batch_size, cfg.data.seq_len);
    let tokens_per_step = cfg.tokens_per_step();
    let flops_per_token = model_cfg.train_flops_per_token(seq);
    let mut outcome = TrainOutcome {
        losses: Vec::new(),
        eval_loss: None,
        tokens_per_s: 0.0,
    };
    let (mut timed_tokens, mut timed_secs) = (0u64, 0f64);
    let first = step;
    let mut last_row: Option<Metrics> = None;
    run.start(step, total);
    loop {
        let last = step == total;
        if step > first {
            // Evaluate the weights after `step` steps, then save them, when due.
            let row = last_row.as_ref().expect("a step ran");
            let every = cfg.eval.every;
            if !eval_set.is_empty() && (last || (every > 0 && step % every == 0)) {
                let l = match sft {
                    None => eval_loss(&model.valid(), &eval_set, bs, seq, device),
                    Some(_) => weighted_eval_loss(&model.valid(), &eval_set, bs, pad),
                };
                outcome.eval_loss = Some(l);
                let m = Metrics {
                    loss: None,
                    eval_loss: Some(l),
                    lr: None,
                    grad_norm: None,
                    tokens_per_s: None,
                    ..row.clone()
                };
                run.log(Row::Eval(&m))?;
            }
            if run.due(step, last) {
                let state = TrainState {
                    dagmath_version: env!("CARGO_PKG_VERSION").to_string(),
                    step,
                    total_steps: total,
                    phases: run.phases(),
                    cursor: data.cursor(),
                    config: cfg.clone(),
                    model: model_cfg.clone(),
                    last_loss: row.loss.unwrap_or(f64::NAN),
                };
                run.save(
                    step,
                    &weights::from_model(&model),
                    &optim.state_dict(&model),
                    &state,
                )?;
            }
        }
        if last {
            break;
        }
        // Forward and backward over the step's micro-batches.
        let t0 = std::time::Instant::now();
        let lr = cfg.optim.lr_at(step, total);
        let mut accumulator = GradientsAccumulator::<Qwen2<B>>::new();
        let mut loss_sum = 0.0;
        let batches = (0..cfg.budget.grad_accum)
            .map(|_| next_batch(&mut data, bs, pad))
            .collect::<Result<Vec<_>, _>>()?;
        // SFT: the mean over the step's trained targets (none: no gradient, loss 0).
        let trained: u64 = batches.iter().map(Batch::trained).sum();
        for b in &batches {
            let (loss, grads) = match sft {
                None => {
                    let scale = 1.0 / cfg.budget.grad_accum as f32;
                    loss_and_grads(&model, &b.inputs, &b.targets, bs, seq, scale)
                }
                Some(_) => {
                    let scale = 1.0 / trained.max(1) as f32;
                    let (x, y, w) = (&b.inputs, &b.targets, &b.weights);
                    weighted_loss_and_grads(&model, x, y, w, (b.batch, b.seq), scale)
                }
            };
            loss_sum += loss;
            accumulator.accumulate(&model, grads);
        }
        let grads = accumulator.grads();
        let loss = match sft {
            None => loss_sum / cfg.budget.grad_accum as f64,
            Some(_) => loss_sum / trained.max(1) as f64,
        };
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step, loss, lr });
        }
        // Clip and step.
        let (clip, grad_norm) = clip_factor(&model, &grads, cfg.optim.grad_clip);
        model = optim.step(lr, model, grads, clip);
        step += 1;
        // Log.
        let secs = t0.elapsed().as_secs_f64();
        // Padded rows are as long as their micro-batch's longest; every other row is `seq`.
        let (positions, flops) = match sft {
            Some(Packing::Padded) => batches.iter().fold((0, 0.0), |(p, f), b| {
                let fpt = model_cfg.train_flops_per_token(b.seq);
                (p + b.positions(), f + b.positions() as f64 * fpt)
            }),
            _ => (tokens_per_step, tokens_per_step as f64 * flops_per_token),
        };
        timed_tokens += positions;
        timed_secs += secs;
        run.account(step, positions, flops);
        outcome.losses.push((step, loss));
        let m = Metrics {
            phase: phase.to_string(),
            step,
            tokens: run.current.tokens,
            loss: Some(loss),
            eval_loss: None,
            lr: Some(lr),
            grad_norm: Some(grad_norm),
            tokens_per_s: Some(positions as f64 / secs.max(1e-9)),
            flops: run.current.flops,
            cum_tokens: run.cum_tokens(),
            cum_flops: run.cum_flops(),
        };
        match sft {
            None => run.log(Row::Step(&m))?,
            Some(_) => run.log(Row::Sft(&SftMetrics {
                step: m.clone(),
                trained_tokens: trained,
                skipped_docs: data.skipped_docs(),
            }))?,
        }
        last_row = Some(m);
    }
    // The fused step's buffers are not needed past the last step.
    crate::model::fused::release_buffers();
    outcome.tokens_per_s = timed_tokens as f64 / timed_secs.max(1e-9);
    let title = format!("dagmath {phase}: {}", cfg.out.display());
    run.finish("curve.svg", &Chart::loss(phase, &title), outcome)
}

/// Before the data is read or anything is allocated or written: the model, its training state
/// and a micro-batch fit in memory, and the model fits the tokenizer and the sequence length.
fn check_model(
    cfg: &TrainConfig,
    model: &ModelConfig,
    tokenizer: &Tokenizer,
) -> Result<(), TrainError> {
    cfg.check_memory(model)?;
    // Equal, as `import`, `eval` and `export` need them: a padded vocabulary would train here
    // and then be refused by every command that reads the checkpoint.
    if model.vocab_size != tokenizer.vocab_size() {
        return Err(RunError::Vocab {
            model: model.vocab_size,
            tokenizer: tokenizer.vocab_size(),
        }
        .into());
    }
    if cfg.data.seq_len > model.max_position_embeddings {
        return Err(RunError::SeqLen {
            seq_len: cfg.data.seq_len,
            max: model.max_position_embeddings,
        }
        .into());
    }
    Ok(())
}

/// The held-out rows (`data.eval_split`, `eval.batches` batches, cut as the training rows
/// are), or none.
fn held_out(
    cfg: &TrainConfig,
    tokenizer: &Tokenizer,
    sft: Option<Packing>,
) -> Result<Vec<Sequence>, TrainError> {
    let Some(split) = &cfg.data.eval_split else {
        return Ok(Vec::new());
    };
    let mut p = Packer::open(
        &cfg.data,
        std::slice::from_ref(split),
        tokenizer.clone(),
        cfg.seed,
        true,
        sft,
    )?;
    let mut v = Vec::new();
    while v.len() < cfg.eval.batches * cfg.budget.batch_size {
        match p.next_row()? {
            Some(s) => v.push(s),
            None => break,
        }
    }
    if v.is_empty() {
        return Err(RunError::EvalSplit {
            split: split.clone(),
            tokens: cfg.data.seq_len + 1,
        }
        .into());
    }
    Ok(v)
}

/// The phase's optimiser steps: mid-training under a compute split runs for its share
/// (β·total_flops), every other phase for `budget.tokens`.
fn total_steps(cfg: &TrainConfig, phase: &str, model: &ModelConfig) -> Result<u64, TrainError> {
    match (&cfg.compute, phase) {
        (Some(c), "midtrain") => {
            let per_step =
                cfg.tokens_per_step() as f64 * model.train_flops_per_token(cfg.data.seq_len);
            let steps = (c.midtrain_flops() / per_step).floor() as u64;
            if steps == 0 {
                return Err(RunError::ComputeShare {
                    flops: c.midtrain_flops(),
                    per_step,
                }
                .into());
            }
            Ok(steps)
        }
        _ => Ok(cfg.total_steps()),
    }
}

/// The next `batch` rows as a micro-batch (padded rows with `pad`).
fn next_batch(data: &mut Packer, batch: usize, pad: u32) -> Result<Batch, TrainError> {
    let rows = (0..batch)
        .map(|_| {
            let row = data.next_row()?;
            Ok(row.expect("the training stream starts a new pass instead of ending"))
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    Ok(Batch::of(&rows, pad))
}

/// A backend the training loop runs on, and how it computes a micro-batch's gradients.
pub trait TrainBackend: AutodiffBackend {
    /// Whether the tensors live in host memory, where the fused step
    /// ([`crate::model::fused`]) replaces autodiff.
    const FUSED: bool;
}

impl TrainBackend for super::device::CpuBackend {
    const FUSED: bool = true;
}
#[cfg(feature = "cuda")]
impl TrainBackend for super::device::CudaBf16Backend {
    const FUSED: bool = false;
}
#[cfg(feature = "cuda")]
impl TrainBackend for super::device::CudaF32Backend {
    const FUSED: bool = false;
}

/// Mean next-token loss of one micro-batch (`inputs`, `targets`: `[batch, seq]` row-major)
/// and its gradients scaled by `grad_scale`: the fused host step where the backend has one,
/// burn autodiff otherwise.
pub fn loss_and_grads<B: TrainBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    batch: usize,
    seq: usize,
    grad_scale: f32,
) -> (f64, GradientsParams) {
    if B::FUSED {
        crate::model::fused::loss_and_grads(model, inputs, targets, batch, seq, grad_scale)
    } else {
        autodiff_loss_and_grads(model, inputs, targets, batch, seq, grad_scale)
    }
}

/// [`loss_and_grads`] through burn autodiff on any backend (the reference the fused step is
/// tested against).
pub fn autodiff_loss_and_grads<B: AutodiffBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    batch: usize,
    seq: usize,
    grad_scale: f32,
) -> (f64, GradientsParams) {
    let device = model.embed_tokens.weight.val().device();
    let ids = |v: &[u32]| {
        let v: Vec<i64> = v.iter().map(|&t| t as i64).collect();
        Tensor::<B, 2, Int>::from_data(TensorData::new(v, [batch, seq]), &device)
    };
    let loss = Qwen2::loss(model.forward(ids(inputs)), ids(targets));
    let value = loss.clone().into_scalar().elem::<f64>();
    let grads = loss.mul_scalar(grad_scale).backward();
    (value, GradientsParams::from_grads(grads, model))
}

/// Mean next-token loss over held-out sequences (in batches of `batch`).
pub fn eval_loss<B: Backend>(
    model: &Qwen2<B>,
    seqs: &[Sequence],
    batch: usize,
    seq: usize,
    device: &B::Device,
) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for chunk in seqs.chunks(batch) {
        let b = chunk.len();
        let x: Vec<i64> = chunk
            .iter()
            .flat_map(|s| s.ids[..seq].iter().map(|&t| t as i64))
            .collect();
        let y: Vec<i64> = chunk
            .iter()
            .flat_map(|s| s.ids[1..].iter().map(|&t| t as i64))
            .collect();
        let x = Tensor::<B, 2, Int>::from_data(TensorData::new(x, [b, seq]), device);
        let y = Tensor::<B, 2, Int>::from_data(TensorData::new(y, [b, seq]), device);
        let l = Qwen2::loss(model.forward(x), y).into_scalar().elem::<f64>();
        sum += l * b as f64;
        n += b;
    }
    sum / n.max(1) as f64
}
