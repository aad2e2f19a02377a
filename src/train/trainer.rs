//! The training loop shared by pre-training and mid-training: one visible loop of
//! batch → forward → loss → backward → clip → AdamW step → log → evaluate → checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use super::checkpoint::{self, PhaseRecord, TrainState};
use super::config::TrainConfig;
use super::data::{DataError, Packer};
use super::metrics::{self, Metrics, MetricsLog};
use super::optim::{clip_factor, AdamW};
use crate::model::{weights, Qwen2};
use crate::tokenizer::Tokenizer;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "training diverged: loss is {loss} at step {step} (lr {lr}); the last checkpoint is intact"
    )]
    Diverged { step: u64, loss: f64, lr: f64 },
}

/// What the loop reports as it goes (the CLI draws a progress bar; tests stay silent).
pub trait TrainObserver {
    fn start(&mut self, _phase: &str, _start_step: u64, _total_steps: u64) {}
    fn step(&mut self, _m: &Metrics) {}
    fn eval(&mut self, _m: &Metrics) {}
    fn checkpoint(&mut self, _dir: &Path) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl TrainObserver for Silent {}

/// How a phase starts.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// Fresh weights from the config's model and seed (pre-training).
    Fresh,
    /// Weights (and the compute record) of a checkpoint or Hugging Face folder (mid-training).
    From(&'a Path),
    /// Continue this run from its latest checkpoint.
    Resume,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub final_checkpoint: PathBuf,
    /// Training loss of each step this process ran (step, loss).
    pub losses: Vec<(u64, f64)>,
    pub eval_loss: Option<f64>,
    pub tokens_per_s: f64,
    pub phases: Vec<PhaseRecord>,
}

/// Runs one training phase (`pretrain` or `midtrain`) on backend `B`.
pub fn train<B: TrainBackend>(
    cfg: &TrainConfig,
    phase: &str,
    start: Start<'_>,
    device: &B::Device,
    obs: &mut dyn TrainObserver,
) -> Result<TrainSummary, TrainError> {
    let existing = checkpoint::list(&cfg.out)?;
    // Resolve the starting point: weights, tokenizer, compute so far, optimiser and cursor.
    let (model_cfg, init_weights, tokenizer, mut phases, resumed) = match start {
        Start::Resume => {
            let dir = latest(&cfg.out, &existing)?;
            let l = checkpoint::load(dir)?;
            let state = l
                .state
                .clone()
                .ok_or_else(|| TrainError::Config(format!("{}: no state.json", dir.display())))?;
            if &state.config != cfg {
                return Err(TrainError::Config(format!(
                    "--resume: the config differs from the one in {}/state.json; resume with the same config or start a new run folder",
                    dir.display()
                )));
            }
            let last = state.phases.last().map(|p| p.name.as_str());
            if last != Some(phase) {
                return Err(TrainError::Config(format!(
                    "--resume: {} holds a {} run, not {phase}",
                    cfg.out.display(),
                    last.unwrap_or("unknown")
                )));
            }
            let tok = load_tokenizer(&l.tokenizer)?;
            (
                l.model.clone(),
                l.weights,
                tok,
                state.phases.clone(),
                Some((state, l.optimizer)),
            )
        }
        Start::From(dir) => {
            refuse_existing(&cfg.out, &existing)?;
            if cfg.model.as_ref().is_some_and(|m| *m != Default::default()) {
                return Err(TrainError::Config(
                    "model: mid-training takes the model from --from; remove the [model] section"
                        .into(),
                ));
            }
            let l = checkpoint::load(dir)?;
            let tok = load_tokenizer(&l.tokenizer)?;
            let prior = l.phases;
            (l.model, l.weights, tok, prior, None)
        }
        Start::Fresh => {
            refuse_existing(&cfg.out, &existing)?;
            let spec = cfg.model.clone().ok_or_else(|| {
                TrainError::Config("model: a [model] section is required for pre-training".into())
            })?;
            let tok = match &spec.tokenizer {
                Some(p) => load_tokenizer(p)?,
                None => {
                    let set = match &spec.templates {
                        Some(dir) => crate::template::TemplateSet::with_dir(dir)
                            .map_err(|e| TrainError::Config(e.to_string()))?,
                        None => crate::template::TemplateSet::builtin(),
                    };
                    Tokenizer::domain(&set)
                }
            };
            let mc = spec.resolve(tok.vocab_size()).map_err(TrainError::Config)?;
            let w = weights::init(&mc, cfg.seed);
            (mc, w, tok, Vec::new(), None)
        }
    };
    // Sizes against memory before the data is read or anything is allocated or written.
    cfg.check_memory(&model_cfg).map_err(TrainError::Config)?;
    // Equal, as `import`, `eval` and `export` need them: a padded vocabulary would train here
    // and then be refused by every command that reads the checkpoint.
    if model_cfg.vocab_size != tokenizer.vocab_size() {
        return Err(TrainError::Config(format!(
            "the model's vocab_size {} differs from the tokenizer's {} tokens (a padded vocabulary is not supported)",
            model_cfg.vocab_size,
            tokenizer.vocab_size()
        )));
    }
    if cfg.data.seq_len > model_cfg.max_position_embeddings {
        return Err(TrainError::Config(format!(
            "data.seq_len = {} exceeds the model's max_position_embeddings {}",
            cfg.data.seq_len, model_cfg.max_position_embeddings
        )));
    }
    let eos = tokenizer
        .token_id("[EOS]")
        .ok_or_else(|| TrainError::Config("the tokenizer has no [EOS] token".into()))?;
    let pad = tokenizer.token_id("[PAD]").unwrap_or(eos);

    let mut data = Packer::new(
        &cfg.data,
        &cfg.data.splits,
        tokenizer.clone(),
        cfg.seed,
        false,
    )?;
    let eval_set = match &cfg.data.eval_split {
        Some(split) => {
            let mut p = Packer::new(
                &cfg.data,
                std::slice::from_ref(split),
                tokenizer.clone(),
                cfg.seed,
                true,
            )?;
            let mut v = Vec::new();
            while v.len() < cfg.eval.batches * cfg.budget.batch_size {
                match p.next_sequence()? {
                    Some(s) => v.push(s),
                    None => break,
                }
            }
            if v.is_empty() {
                return Err(TrainError::Config(format!(
                    "data.eval_split \"{split}\" holds fewer tokens than one sequence of {}",
                    cfg.data.seq_len + 1
                )));
            }
            v
        }
        None => Vec::new(),
    };

    let mut model: Qwen2<B> = weights::to_model(&model_cfg, &init_weights, device)?;
    drop(init_weights);
    let mut optim = AdamW::<B>::new(cfg.optim.clone());
    let total = match (&cfg.compute, phase) {
        (Some(c), "midtrain") => {
            let per_step =
                cfg.tokens_per_step() as f64 * model_cfg.train_flops_per_token(cfg.data.seq_len);
            let steps = (c.midtrain_flops() / per_step).floor() as u64;
            if steps == 0 {
                return Err(TrainError::Config(format!(
                    "compute: β·total_flops = {:.3e} FLOPs is less than one mid-training step ({per_step:.3e}); with β = 0 skip mid-training and run `train rl` alone",
                    c.midtrain_flops()
                )));
            }
            steps
        }
        _ => cfg.total_steps(),
    };
    let mut step = 0;
    let mut current = PhaseRecord {
        name: phase.to_string(),
        steps: 0,
        tokens: 0,
        flops: 0.0,
        from: match start {
            Start::From(dir) => Some(dir.display().to_string()),
            _ => None,
        },
    };
    if let Some((state, opt)) = &resumed {
        let done = phases.last().map_or(0, |p| p.steps);
        if state.step > total || state.step != done {
            return Err(TrainError::Config(format!(
                "--resume: state.json says step {} (its phase record says {done}), but this run has {total} steps; the checkpoint's state is inconsistent",
                state.step
            )));
        }
        data.restore(&state.cursor)?;
        let opt = opt.as_ref().ok_or_else(|| {
            TrainError::Config("--resume: the checkpoint has no optimizer.safetensors".into())
        })?;
        optim
            .load_state_dict(&model, opt, state.step, device)
            .map_err(TrainError::Config)?;
        step = state.step;
        current = phases.pop().expect("a resumed run has its phase");
    }
    let prior_tokens: u64 = phases.iter().map(|p| p.tokens).sum();
    let prior_flops: f64 = phases.iter().map(|p| p.flops).sum();

    std::fs::create_dir_all(&cfg.out).map_err(|source| TrainError::Io {
        path: cfg.out.display().to_string(),
        source,
    })?;
    let metrics_path = cfg.out.join("metrics.jsonl");
    let mut log =
        MetricsLog::open(&metrics_path, resumed.as_ref().map(|_| step)).map_err(|source| {
            TrainError::Io {
                path: metrics_path.display().to_string(),
                source,
            }
        })?;
    let io_err = |source| TrainError::Io {
        path: metrics_path.display().to_string(),
        source,
    };

    let (bs, seq) = (cfg.budget.batch_size, cfg.data.seq_len);
    let tokens_per_step = cfg.tokens_per_step();
    let flops_per_token = model_cfg.train_flops_per_token(seq);
    let mut summary = TrainSummary {
        final_checkpoint: PathBuf::new(),
        losses: Vec::new(),
        eval_loss: None,
        tokens_per_s: 0.0,
        phases: Vec::new(),
    };
    let (mut timed_tokens, mut timed_secs) = (0u64, 0f64);
    obs.start(phase, step, total);
    while step < total {
        let t0 = Instant::now();
        let lr = cfg.optim.lr_at(step, total);
        let mut accumulator = GradientsAccumulator::<Qwen2<B>>::new();
        let mut loss_sum = 0.0;
        for _ in 0..cfg.budget.grad_accum {
            let (x, y) = next_batch(&mut data, bs, seq)?;
            let scale = 1.0 / cfg.budget.grad_accum as f32;
            let (loss, grads) = loss_and_grads(&model, &x, &y, bs, seq, scale);
            loss_sum += loss;
            accumulator.accumulate(&model, grads);
        }
        let grads = accumulator.grads();
        let loss = loss_sum / cfg.budget.grad_accum as f64;
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step, loss, lr });
        }
        let (clip, grad_norm) = clip_factor(&model, &grads, cfg.optim.grad_clip);
        model = optim.step(lr, model, grads, clip);
        step += 1;
        let secs = t0.elapsed().as_secs_f64();
        timed_tokens += tokens_per_step;
        timed_secs += secs;
        current.steps = step;
        current.tokens += tokens_per_step;
        current.flops += tokens_per_step as f64 * flops_per_token;
        summary.losses.push((step, loss));
        let m = Metrics {
            phase: phase.to_string(),
            step,
            tokens: current.tokens,
            loss: Some(loss),
            eval_loss: None,
            lr: Some(lr),
            grad_norm: Some(grad_norm),
            tokens_per_s: Some(tokens_per_step as f64 / secs.max(1e-9)),
            flops: current.flops,
            cum_tokens: prior_tokens + current.tokens,
            cum_flops: prior_flops + current.flops,
        };
        log.write(&m).map_err(io_err)?;
        obs.step(&m);

        let due = |every: u64| (every > 0 && step % every == 0) || step == total;
        if !eval_set.is_empty() && due(cfg.eval.every) {
            let l = eval_loss(&model.valid(), &eval_set, bs, seq, device);
            summary.eval_loss = Some(l);
            let m = Metrics {
                loss: None,
                eval_loss: Some(l),
                lr: None,
                grad_norm: None,
                tokens_per_s: None,
                ..m
            };
            log.write(&m).map_err(io_err)?;
            obs.eval(&m);
        }
        if due(cfg.checkpoint.every) {
            let mut all = phases.clone();
            all.push(current.clone());
            let state = TrainState {
                dagmath_version: env!("CARGO_PKG_VERSION").to_string(),
                step,
                total_steps: total,
                phases: all,
                cursor: data.cursor(),
                config: cfg.clone(),
                model: model_cfg.clone(),
                last_loss: loss,
            };
            let dir = checkpoint::save(
                &cfg.out,
                &weights::from_model(&model),
                &optim.state_dict(&model),
                tokenizer.json(),
                pad,
                eos,
                &state,
                cfg.checkpoint.keep,
            )?;
            obs.checkpoint(&dir);
            summary.final_checkpoint = dir;
        }
    }
    // The fused step's buffers are not needed past the last step.
    crate::model::fused::release_buffers();
    if summary.final_checkpoint.as_os_str().is_empty() {
        // Resumed from the final checkpoint: nothing left to do.
        if let Some((_, dir)) = checkpoint::list(&cfg.out)?.last() {
            summary.final_checkpoint = dir.clone();
        }
    }
    phases.push(current);
    summary.phases = phases;
    summary.tokens_per_s = timed_tokens as f64 / timed_secs.max(1e-9);
    if let Ok(all) = metrics::read(&metrics_path) {
        let title = format!("dagmath {phase}: {}", cfg.out.display());
        metrics::plot(&all, &cfg.out.join("curve.svg"), &title).map_err(TrainError::Config)?;
    }
    Ok(summary)
}

/// A fresh start refuses a run folder that already holds checkpoints.
pub(super) fn refuse_existing(out: &Path, existing: &[(u64, PathBuf)]) -> Result<(), TrainError> {
    if existing.is_empty() {
        Ok(())
    } else {
        Err(TrainError::Config(format!(
            "{} already holds checkpoints: continue it with --resume, or start over with --force",
            out.display()
        )))
    }
}

/// The checkpoint `--resume` continues from: the latest under `out`.
pub(super) fn latest<'a>(
    out: &Path,
    existing: &'a [(u64, PathBuf)],
) -> Result<&'a PathBuf, TrainError> {
    existing.last().map(|(_, dir)| dir).ok_or_else(|| {
        TrainError::Config(format!(
            "--resume: no checkpoint under {}",
            checkpoint::checkpoints_dir(out).display()
        ))
    })
}

fn load_tokenizer(path: &Path) -> Result<Tokenizer, TrainError> {
    Tokenizer::from_file(path).map_err(|e| TrainError::Config(e.to_string()))
}

/// `batch` sequences as inputs `[batch, seq]` and next-token targets `[batch, seq]`, row-major.
fn next_batch(
    data: &mut Packer,
    batch: usize,
    seq: usize,
) -> Result<(Vec<u32>, Vec<u32>), TrainError> {
    let mut x = Vec::with_capacity(batch * seq);
    let mut y = Vec::with_capacity(batch * seq);
    for _ in 0..batch {
        let s = data
            .next_sequence()?
            .expect("the training stream starts a new pass instead of ending");
        x.extend_from_slice(&s[..seq]);
        y.extend_from_slice(&s[1..]);
    }
    Ok((x, y))
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
    seqs: &[Vec<u32>],
    batch: usize,
    seq: usize,
    device: &B::Device,
) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for chunk in seqs.chunks(batch) {
        let b = chunk.len();
        let x: Vec<i64> = chunk
            .iter()
            .flat_map(|s| s[..seq].iter().map(|&t| t as i64))
            .collect();
        let y: Vec<i64> = chunk
            .iter()
            .flat_map(|s| s[1..].iter().map(|&t| t as i64))
            .collect();
        let x = Tensor::<B, 2, Int>::from_data(TensorData::new(x, [b, seq]), device);
        let y = Tensor::<B, 2, Int>::from_data(TensorData::new(y, [b, seq]), device);
        let l = Qwen2::loss(model.forward(x), y).into_scalar().elem::<f64>();
        sum += l * b as f64;
        n += b;
    }
    sum / n.max(1) as f64
}
