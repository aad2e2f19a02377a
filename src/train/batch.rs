//! Micro-batches: training rows ([`Sequence`]s) → inputs, next-token targets and, in SFT, each
//! target's loss weight, all `[batch, seq]` row-major; and the weighted loss on them, on the
//! fused host step or through burn autodiff.
//!
//! Pre-/mid-training's rows carry no weights and take the unweighted mean
//! ([`super::trainer::loss_and_grads`]) exactly as before. SFT's loss over an optimiser step
//! is `Σ_t w_t·nll_t / Σ_t w_t` with `w_t = 1` on a completion token (its `[EOS]` included)
//! and 0 on the prompt and on padding: the mean over the trained tokens of the whole step, so
//! cutting a step into more micro-batches (`grad_accum`) does not change it. Here the weights
//! stay 0/1 and the step's `1 / Σ w` comes in as the gradient scale.

use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use super::data::Sequence;
use super::trainer::TrainBackend;
use crate::model::qwen2::token_nll;
use crate::model::Qwen2;

/// One micro-batch, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    /// Each target's weight (1: trained on, 0: prompt or padding); empty when every target
    /// counts (pre-/mid-training).
    pub weights: Vec<f32>,
    pub batch: usize,
    pub seq: usize,
}

impl Batch {
    /// `rows` as one micro-batch: row `s` gives inputs `s[..n-1]` and targets `s[1..]`, padded
    /// with `pad` (weight 0) to the longest row; a target's weight is its token's mask.
    pub fn of(rows: &[Sequence], pad: u32) -> Batch {
        let seq = rows.iter().map(|r| r.ids.len() - 1).max().unwrap_or(0);
        let weighted = rows.iter().any(|r| !r.mask.is_empty());
        let n = rows.len() * seq;
        let mut b = Batch {
            inputs: Vec::with_capacity(n),
            targets: Vec::with_capacity(n),
            weights: Vec::with_capacity(if weighted { n } else { 0 }),
            batch: rows.len(),
            seq,
        };
        for r in rows {
            let (len, fill) = (r.ids.len() - 1, seq - (r.ids.len() - 1));
            b.inputs.extend_from_slice(&r.ids[..len]);
            b.targets.extend_from_slice(&r.ids[1..]);
            b.inputs.extend(std::iter::repeat_n(pad, fill));
            b.targets.extend(std::iter::repeat_n(pad, fill));
            if weighted {
                let w = |m: &bool| if *m { 1.0 } else { 0.0 };
                b.weights.extend(r.mask[1..].iter().map(w));
                b.weights.extend(std::iter::repeat_n(0.0, fill));
            }
        }
        b
    }

    /// Targets trained on: the weights' sum, or every position when unweighted.
    pub fn trained(&self) -> u64 {
        if self.weights.is_empty() {
            self.positions()
        } else {
            self.weights.iter().filter(|&&w| w > 0.0).count() as u64
        }
    }

    /// Positions the model runs (padding included).
    pub fn positions(&self) -> u64 {
        (self.batch * self.seq) as u64
    }
}

/// `Σ_t w_t·nll_t` of one micro-batch (`inputs`, `targets`, `weights`: `[batch, seq]`
/// row-major) and the gradients of `grad_scale ·` that sum: the fused host step where the
/// backend has one, burn autodiff otherwise.
pub fn weighted_loss_and_grads<B: TrainBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    weights: &[f32],
    (batch, seq): (usize, usize),
    grad_scale: f32,
) -> (f64, GradientsParams) {
    if B::FUSED {
        let shape = (batch, seq);
        crate::model::fused::weighted_loss_and_grads(
            model, inputs, targets, weights, shape, grad_scale,
        )
    } else {
        autodiff_weighted_loss_and_grads(model, inputs, targets, weights, (batch, seq), grad_scale)
    }
}

/// [`weighted_loss_and_grads`] through burn autodiff on any backend (the reference the fused
/// step is tested against).
pub fn autodiff_weighted_loss_and_grads<B: AutodiffBackend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    weights: &[f32],
    (batch, seq): (usize, usize),
    grad_scale: f32,
) -> (f64, GradientsParams) {
    let loss = weighted_nll(model, inputs, targets, weights, (batch, seq));
    let value = loss.clone().into_scalar().elem::<f64>();
    let grads = loss.mul_scalar(grad_scale).backward();
    (value, GradientsParams::from_grads(grads, model))
}

/// `Σ_t w_t·nll_t` as a tensor `[1]`.
fn weighted_nll<B: Backend>(
    model: &Qwen2<B>,
    inputs: &[u32],
    targets: &[u32],
    weights: &[f32],
    (batch, seq): (usize, usize),
) -> Tensor<B, 1> {
    let device = model.embed_tokens.weight.val().device();
    let ids = |v: &[u32]| {
        let v: Vec<i64> = v.iter().map(|&t| t as i64).collect();
        Tensor::<B, 2, Int>::from_data(TensorData::new(v, [batch, seq]), &device)
    };
    let w = Tensor::<B, 2>::from_data(TensorData::new(weights.to_vec(), [batch, seq]), &device);
    (token_nll(model.forward(ids(inputs)), ids(targets)) * w).sum()
}

/// Mean loss per trained target over held-out rows (in micro-batches of `batch`, padded with
/// `pad`): SFT's held-out loss, on the completions only.
pub fn weighted_eval_loss<B: Backend>(
    model: &Qwen2<B>,
    rows: &[Sequence],
    batch: usize,
    pad: u32,
) -> f64 {
    let (mut sum, mut n) = (0.0, 0u64);
    for chunk in rows.chunks(batch.max(1)) {
        let b = Batch::of(chunk, pad);
        let l = weighted_nll(model, &b.inputs, &b.targets, &b.weights, (b.batch, b.seq));
        sum += l.into_scalar().elem::<f64>();
        n += b.trained();
    }
    sum / n.max(1) as f64
}
